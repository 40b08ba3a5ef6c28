import Core
import Foundation
import GeoRaster

/// Changes a file the way that fools a size-and-date check: new bytes written over the old ones
/// in place, the size kept and the modification time put back to the nanosecond.
public enum FileChanges {
    /// Writes `bytes` over the start of `path` (no truncation) and restores its access and
    /// modification times.
    public static func overwriteKeepingTime(_ path: String, with bytes: [UInt8], at offset: Int = 0) throws {
        var before = stat()
        guard stat(path, &before) == 0 else { throw CocoaError(.fileNoSuchFile) }
        let fd = open(path, O_WRONLY)
        guard fd >= 0 else { throw CocoaError(.fileWriteNoPermission) }
        let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, off_t(offset)) }
        close(fd)
        guard written == bytes.count else { throw CocoaError(.fileWriteUnknown) }
        var times = [before.st_atim, before.st_mtim]
        guard utimensat(AT_FDCWD, path, &times, 0) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    /// The whole content of `path`.
    public static func bytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

/// Collects what a `@Sendable` observer sees (AtomicFile steps and checks made at each).
public final class Recorder<Item: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [Item] = []

    public init() {}

    public func append(_ item: Item) { lock.withLock { stored.append(item) } }
    public var items: [Item] { lock.withLock { stored } }
}

extension SyntheticScene {
    /// Rewrites the labels uncompressed, so that the version with classes 1 and 2 swapped has
    /// the same size; `inPlace` writes it over the old bytes and keeps the modification time
    /// (what a size-and-date check cannot see).
    public func writeUncompressedLabels(swapped: Bool, inPlace: Bool) throws {
        var profile = try profile(bands: 1, type: .byte, nodata: Double(Self.labelNodata))
        profile.options.compression = .none
        let target = inPlace ? labels + ".new.tif" : labels
        let w = try GeoTIFFWriter(path: target, profile: profile)
        var plane = [UInt8](repeating: 0, count: width * height)
        for r in 0..<height {
            for c in 0..<width {
                let v = label(column: c, row: r)
                plane[r * width + c] = UInt8(swapped && (v == 1 || v == 2) ? 3 - v : v)
            }
        }
        try w.write(plane, window: Window(width: width, height: height), band: 1)
        try w.finish()
        guard inPlace else { return }
        let bytes = try FileChanges.bytes(target)
        try FileManager.default.removeItem(atPath: target)
        guard bytes.count == (try FileChanges.bytes(labels)).count else { throw CocoaError(.fileWriteUnknown) }
        try FileChanges.overwriteKeepingTime(labels, with: bytes)
    }
}
