import Foundation

/// The one check in front of every input TerraSeg opens (scenes, labels, vector labels,
/// model bundles, pipeline YAML, lists of scenes): the path must exist and be of the kind
/// expected. A named pipe or a device would block the reader or never end, and a directory
/// is not a file, so they are refused with a message naming the path before anything opens it.
public enum InputFile {
    public enum Expectation: Sendable {
        /// A regular file (or a link to one).
        case file
        /// A directory (a model bundle, a tile set's root).
        case directory
        /// Either: GDAL reads some vector formats from folders (FileGDB, a folder of shapefiles).
        case fileOrDirectory
    }

    /// Why `path` cannot be read as `expected` (problem and fix), or nil when it can.
    /// Links are followed: what matters is what a reader would open.
    public static func problem(_ path: String, expecting expected: Expectation = .file) -> (problem: String, hint: String)? {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let reason = errno == ENOENT ? "not found" : "cannot be read: \(String(cString: strerror(errno)))"
            return (reason, "Check the path (relative paths start from \(FileManager.default.currentDirectoryPath))")
        }
        return problem(mode: st.st_mode, expecting: expected)
    }

    static func problem(mode: mode_t, expecting expected: Expectation) -> (problem: String, hint: String)? {
        let type = mode & S_IFMT
        switch (type, expected) {
        case (S_IFREG, .file), (S_IFREG, .fileOrDirectory), (S_IFDIR, .directory), (S_IFDIR, .fileOrDirectory):
            return nil
        case (S_IFDIR, .file):
            return ("is a directory, not a file", "Give the file inside it")
        case (S_IFREG, .directory):
            return ("is a file, not a directory", "Give the directory that holds it")
        default:
            let kind = type == S_IFIFO ? "a named pipe (FIFO)" : type == S_IFCHR ? "a character device"
                : type == S_IFBLK ? "a block device" : type == S_IFSOCK ? "a socket" : "not a regular file"
            return ("is \(kind); TerraSeg reads only regular files", "Copy the data to a file and give that file's path")
        }
    }

    /// Throws a `TerraSegError` naming `path` when it cannot be read as `expected`.
    public static func check(_ path: String, expecting expected: Expectation = .file) throws {
        if let (problem, hint) = problem(path, expecting: expected) {
            throw TerraSegError(problem == "not found" ? .notFound : .readFailed, path: path, problem: problem, hint: hint)
        }
    }

    /// The whole contents of the regular file `path`. It is opened without blocking and
    /// checked on the open descriptor (fstat), so a pipe swapped in after a check cannot hang it.
    public static func read(_ path: String) throws -> Data {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let missing = errno == ENOENT
            throw TerraSegError(missing ? .notFound : .readFailed, path: path,
                                problem: missing ? "not found" : "cannot be opened: \(String(cString: strerror(errno)))",
                                hint: "Check the path and its permissions")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw TerraSegError(.readFailed, path: path, problem: "cannot be read: \(String(cString: strerror(errno)))")
        }
        if let (problem, hint) = problem(mode: st.st_mode, expecting: .file) {
            throw TerraSegError(.readFailed, path: path, problem: problem, hint: hint)
        }
        // O_NONBLOCK only kept open() from waiting for a pipe's writer; reads of a regular file ignore it.
        var data = Data(count: Int(st.st_size))
        var offset = 0
        var failure: String?
        data.withUnsafeMutableBytes { raw in
            while offset < raw.count {
                let n = Foundation.read(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n < 0 { failure = String(cString: strerror(errno)); return }
                if n == 0 { return }  // the file shrank while being read
                offset += n
            }
        }
        if let failure { throw TerraSegError(.readFailed, path: path, problem: "reading failed: \(failure)") }
        if offset < data.count { data.count = offset }
        return data
    }
}
