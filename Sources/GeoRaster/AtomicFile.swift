import Foundation

/// Writes non-raster outputs (model bundles, checkpoints, reports) the same way rasters are
/// written: to a hidden temporary file in the same directory, flushed to disk, then renamed
/// over the final name, so a reader never sees a half-written file under the final name.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        try GeoTIFFWriter.checkWritableDirectory(dir, for: path)
        let tmp = dir + "/." + url.lastPathComponent + ".partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else {
            throw RasterError(.writeFailed, path: path, problem: "cannot create a temporary file: \(String(cString: strerror(errno)))",
                              hint: "Check permissions of \(dir)")
        }
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
            throw RasterError(.writeFailed, path: path, problem: "writing failed: \(failure)",
                              hint: "Check free space and permissions of \(dir)")
        }
        guard rename(tmp, path) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(tmp)
            throw RasterError(.writeFailed, path: path, problem: "cannot move the file into place: \(message)")
        }
    }

    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }
}
