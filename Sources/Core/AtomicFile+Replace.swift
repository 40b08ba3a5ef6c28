import Foundation

/// Putting a complete temporary output in place. The order is SQLite's and Git's: the file
/// (or directory) is flushed to disk before the rename, and the directory holding the final
/// name after it, so that after a crash the final name holds the old output or the whole new
/// one, never an empty or half-written file.
extension AtomicFile {
    /// The steps of putting an output in place, in the order they happen. Tests watch them
    /// through `observing(_:refuseExchange:_:_:)`: what is on disk when a step is reported is
    /// what a kill at that moment would leave.
    public enum Step: String, Sendable, Equatable {
        /// The temporary file or directory is on disk (fsync).
        case flushedFile
        /// The previous directory was moved aside (only where the filesystem cannot swap).
        case movedAside
        /// The new output has the final name (a rename, or a swap with the previous directory).
        case renamed
        /// The directory holding the final name is on disk, the rename included (fsync).
        case flushedDirectory
        /// The replaced directory was deleted.
        case removedOld
    }

    /// Renames the complete file or directory `temporary` over `path`: flushed before, the
    /// directory flushed after. On failure deletes `temporary` and throws, naming `path`.
    /// Writers that write by name (GDAL) finish here.
    public static func moveIntoPlace(_ temporary: String, _ path: String) throws {
        do {
            try flush(temporary, for: path)
        } catch {
            unlink(temporary)
            throw error
        }
        Seams.note(.flushedFile, path)
        try renameIntoPlace(temporary, path)
    }

    /// Puts the complete directory `temporary` at `path`. A directory already there is swapped
    /// with it in one step (`renameat2` with `RENAME_EXCHANGE`), so `path` always names a whole
    /// directory, old or new, and the old one is then deleted. Where the filesystem cannot swap
    /// (some network and FUSE filesystems), the old one is moved aside first, with a warning
    /// that names where it is until the new one is in place. `temporary` is the caller's to
    /// delete when this throws.
    public static func replaceDirectory(_ path: String, with temporary: String) throws {
        try flush(temporary, for: path)
        Seams.note(.flushedFile, path)
        var st = stat()
        guard lstat(path, &st) == 0 else { return try renameIntoPlace(temporary, path) }
        let refusal = exchange(temporary, path)
        guard refusal == 0 else { return try replaceInTwoSteps(path, with: temporary, refusal: refusal) }
        Seams.note(.renamed, path)
        try flushDirectory(of: path)
        Seams.note(.flushedDirectory, path)
        removeReplaced(temporary, of: path)
    }

    /// The fallback of `replaceDirectory`: old aside, new in, old deleted.
    static func replaceInTwoSteps(_ path: String, with temporary: String, refusal: Int32) throws {
        guard refusal == EINVAL || refusal == ENOSYS || refusal == ENOTSUP || refusal == EOPNOTSUPP else {
            throw TerraSegError(.writeFailed, path: path, problem: "cannot swap the new directory into place: \(String(cString: strerror(refusal)))",
                                hint: "Check permissions of \(directory(of: path))")
        }
        let aside = temporaryName(for: path, suffix: ".old")
        guard rename(path, aside) == 0 else {
            throw TerraSegError(.writeFailed, path: path, problem: "cannot move the previous directory aside: \(String(cString: strerror(errno)))",
                                hint: "Check permissions of \(directory(of: path))")
        }
        Seams.note(.movedAside, path)
        warn("\(path): this filesystem cannot swap directories in one step (\(String(cString: strerror(refusal)))); "
             + "the previous version is at \(aside) until the new one is in place")
        do {
            try renameIntoPlace(temporary, path)
        } catch {
            _ = rename(aside, path)  // best effort: the previous version back under its name
            throw error
        }
        removeReplaced(aside, of: path)
    }

    /// Renames `temporary` over `path` and flushes the directory; on failure deletes a
    /// temporary file and throws, naming `path`.
    static func renameIntoPlace(_ temporary: String, _ path: String) throws {
        guard rename(temporary, path) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(temporary)
            throw TerraSegError(.writeFailed, path: path, problem: "cannot move the output into place: \(message)",
                                hint: "Check permissions of \(directory(of: path))")
        }
        Seams.note(.renamed, path)
        try flushDirectory(of: path)
        Seams.note(.flushedDirectory, path)
    }

    /// Deletes the directory that `path` replaced; one left behind is reported, not fatal
    /// (the new output is complete and in place).
    static func removeReplaced(_ old: String, of path: String) {
        do {
            try FileManager.default.removeItem(atPath: old)
            Seams.note(.removedOld, path)
        } catch {
            warn("\(path): replaced, but the previous version could not be deleted from \(old): \(TerraSegError.plainWords(error)); delete it by hand")
        }
    }

    /// fsync(2) of a file or directory by name (the data, and for a directory its entries).
    static func flush(_ name: String, for path: String) throws {
        let fd = open(name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            throw TerraSegError(.writeFailed, path: path, problem: "cannot open \(name) to flush it: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            throw TerraSegError(.writeFailed, path: path, problem: "cannot flush the output to disk: \(String(cString: strerror(errno)))",
                                hint: "Check free space of \(directory(of: path))")
        }
    }

    /// fsync(2) of the directory holding `path`, so a rename in it survives a crash. A
    /// filesystem that cannot flush directories (EINVAL) has nothing more to do.
    static func flushDirectory(of path: String) throws {
        let dir = directory(of: path)
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw TerraSegError(.writeFailed, path: path, problem: "cannot open the directory \(dir) to flush it: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        guard fsync(fd) == 0 || errno == EINVAL || errno == ENOTSUP else {
            throw TerraSegError(.writeFailed, path: path, problem: "cannot flush the directory \(dir) to disk: \(String(cString: strerror(errno)))",
                                hint: "Check free space of \(dir)")
        }
    }

    /// Swaps two names in one step: renameat2(2) with RENAME_EXCHANGE (Linux 3.15, glibc 2.28).
    /// Swift's Glibc module does not declare it, so it is looked up by name once. Returns 0, or
    /// the errno (ENOSYS where the C library lacks it).
    static func exchange(_ a: String, _ b: String) -> Int32 {
        guard let renameat2 = Renameat2.function, !Seams.refusesExchange(b) else { return ENOSYS }
        return renameat2(AT_FDCWD, a, AT_FDCWD, b, Renameat2.exchange) == 0 ? 0 : errno
    }

    static func warn(_ text: String) {
        FileHandle.standardError.write(Data(("warning: " + text + "\n").utf8))
    }

    /// Runs `body` with `observer` told every `Step` of outputs written to exactly `path`
    /// (a fault-injection seam for tests); with `refuseExchange`, directory replacements at
    /// `path` take the fallback as on a filesystem without RENAME_EXCHANGE.
    public static func observing<T>(_ path: String, refuseExchange: Bool = false, _ observer: @escaping @Sendable (Step) -> Void,
                                    _ body: () throws -> T) rethrows -> T {
        Seams.set(path, Seams.Entry(observer: observer, refuseExchange: refuseExchange))
        defer { Seams.set(path, nil) }
        return try body()
    }
}

/// The C function `renameat2`, looked up in the running process.
private enum Renameat2 {
    typealias Function = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
    static let exchange: UInt32 = 1 << 1  // RENAME_EXCHANGE, <linux/fs.h>
    nonisolated(unsafe) static let function: Function? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "renameat2") else { return nil }
        return unsafeBitCast(symbol, to: Function.self)
    }()
}

/// The observers of `AtomicFile.observing`, by destination path.
enum Seams {
    struct Entry {
        var observer: @Sendable (AtomicFile.Step) -> Void
        var refuseExchange: Bool
    }

    private final class Table: @unchecked Sendable {
        let lock = NSLock()
        var entries: [String: Entry] = [:]
    }

    private static let table = Table()

    static func set(_ path: String, _ entry: Entry?) {
        table.lock.withLock { table.entries[path] = entry }
    }

    static func note(_ step: AtomicFile.Step, _ path: String) {
        let entry = table.lock.withLock { table.entries.isEmpty ? nil : table.entries[path] }
        entry?.observer(step)
    }

    static func refusesExchange(_ path: String) -> Bool {
        table.lock.withLock { table.entries[path]?.refuseExchange ?? false }
    }
}
