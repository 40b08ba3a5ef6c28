import Foundation

/// Writes outputs so that a reader never sees a half-written file under the final name: the
/// data goes to a hidden temporary file in the same directory, is flushed to disk (fsync),
/// renamed over the final name, and the directory is flushed so the rename itself survives a
/// crash (as SQLite and Git do; see AtomicFile+Replace.swift). Rasters (GeoTIFFWriter, Quicklook), model bundles,
/// checkpoints and reports all take their temporary names from here.
///
/// Temporary names carry 64 random bits and the writer's process id
/// (`.name.partial-<16 hex>-<pid>`), so they cannot be guessed, and are created with
/// `O_CREAT | O_EXCL | O_NOFOLLOW` (directories with `mkdir`), so an existing file or a planted
/// symbolic link is never followed or overwritten. A killed run leaves its temporary entries
/// behind; `removeStale(in:)` deletes them once their process has ended.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let (tmp, fd) = try createTemporaryFile(for: path)
        var failure: String? = nil
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                    return
                }
                offset += n
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        close(fd)
        if let failure {
            unlink(tmp)
            throw TerraSegError(.writeFailed, path: path, problem: "writing failed: \(failure)",
                                hint: "Check free space and permissions of \(directory(of: path))")
        }
        Seams.note(.flushedFile, path)
        try renameIntoPlace(tmp, path)
    }

    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }

    /// An unpredictable hidden name beside `path`: `dir/.name.partial-<16 hex digits>-<pid><suffix>`.
    /// Only a name: create it with `createTemporaryFile` or `createTemporaryDirectory`.
    public static func temporaryName(for path: String, suffix: String = "") -> String {
        let url = URL(fileURLWithPath: path)
        let tag = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let padded = String(repeating: "0", count: 16 - tag.count) + tag
        return url.deletingLastPathComponent().path + "/." + url.lastPathComponent + ".partial-" + padded + "-\(getpid())" + suffix
    }

    /// Removes the temporary entries (files, directories, GDAL's sidecars of them) that runs
    /// killed before they could clean up left in `directory`, and returns their paths. An entry
    /// is stale when the process named in it has ended and it was not modified for `age`
    /// seconds (so a writer on another machine sharing the folder is left alone while it
    /// works); an entry without a process id (older versions) when untouched for a day. A
    /// previous version moved aside (`.old`) stays while its final name is missing.
    public static func removeStale(in directory: String, age: TimeInterval = 600) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for name in names.sorted() where name.hasPrefix(".") {
            guard let owner = temporaryOwner(name) else { continue }
            if let pid = owner, kill(pid, 0) == 0 || errno == EPERM { continue }
            let path = (directory as NSString).appendingPathComponent(name)
            // A previous version moved aside (`replaceInTwoSteps`) is the only copy while its final name is missing.
            if name.hasSuffix(".old"), let final = finalName(name), !FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(final)) {
                continue
            }
            let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? Date()
            guard Date().timeIntervalSince(modified) >= (owner == nil ? 86_400 : age) else { continue }
            if (try? FileManager.default.removeItem(atPath: path)) != nil { removed.append(path) }
        }
        return removed
    }

    /// The final name a temporary name stands for (`.x.partial-…` → `x`).
    static func finalName(_ name: String) -> String? {
        guard name.hasPrefix("."), let r = name.range(of: ".partial-", options: .backwards) else { return nil }
        return String(name[name.index(after: name.startIndex)..<r.lowerBound])
    }

    /// For a temporary name (`.x.partial-<16 hex>[-<pid>]…`): its process id, or `.some(nil)`
    /// when it has none; nil for any other name.
    static func temporaryOwner(_ name: String) -> Int32?? {
        guard let r = name.range(of: ".partial-", options: .backwards) else { return nil }
        let rest = name[r.upperBound...]
        let hex = rest.prefix(16)
        guard hex.count == 16, hex.allSatisfy(\.isHexDigit) else { return nil }
        let after = rest.dropFirst(16)
        guard after.first == "-" else { return .some(nil) }
        return .some(Int32(after.dropFirst().prefix { $0.isNumber }))
    }

    /// Creates a new, empty temporary file beside `path` (exclusively, never through a
    /// symbolic link) and returns its name and an open descriptor for writing. Writers
    /// that open files themselves (GDAL) close the descriptor and write to the name.
    public static func createTemporaryFile(for path: String, suffix: String = "") throws -> (path: String, descriptor: Int32) {
        try checkWritableDirectory(directory(of: path), for: path)
        while true {
            let tmp = temporaryName(for: path, suffix: suffix)
            let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            if fd >= 0 { return (tmp, fd) }
            if errno == EEXIST { continue }  // 2^-64 odds; draw another name
            throw TerraSegError(.createFailed, path: path, problem: "cannot create a temporary file: \(String(cString: strerror(errno)))",
                                hint: "Check permissions of \(directory(of: path))")
        }
    }

    /// Creates a new, empty temporary file beside `path` for a writer that opens it by name.
    public static func reserveTemporaryFile(for path: String, suffix: String = "") throws -> String {
        let (tmp, fd) = try createTemporaryFile(for: path, suffix: suffix)
        close(fd)
        return tmp
    }

    /// Creates a new, empty temporary directory beside `path` (mode 0755; `mkdir` neither
    /// follows a link nor reuses an existing entry) and returns its name.
    public static func createTemporaryDirectory(for path: String) throws -> String {
        try checkWritableDirectory(directory(of: path), for: path)
        while true {
            let tmp = temporaryName(for: path)
            if mkdir(tmp, 0o755) == 0 { return tmp }
            if errno == EEXIST { continue }
            throw TerraSegError(.createFailed, path: path, problem: "cannot create a temporary directory: \(String(cString: strerror(errno)))",
                                hint: "Check permissions of \(directory(of: path))")
        }
    }

    /// Creates `directory` (and its parents) for outputs; a failure names it, in plain words.
    public static func createDirectory(_ directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TerraSegError(.createFailed, path: directory, action: "cannot create the output directory", error,
                                hint: "Choose an output directory you can write to")
        }
    }

    /// Throws unless `dir` exists and is writable (checked before any work starts).
    public static func checkWritableDirectory(_ dir: String, for path: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw TerraSegError(.createFailed, path: path, problem: "the output directory \(dir) does not exist",
                                hint: "Create it first (mkdir -p \(dir)) or choose another output")
        }
        guard access(dir, W_OK) == 0 else {
            throw TerraSegError(.createFailed, path: path, problem: "the output directory \(dir) is not writable",
                                hint: "Choose a directory you can write to, or fix its permissions")
        }
    }

    /// The directory that holds `path` ("." style paths resolved as Foundation does).
    public static func directory(of path: String) -> String {
        URL(fileURLWithPath: path).deletingLastPathComponent().path
    }
}
