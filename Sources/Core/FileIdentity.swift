import Foundation

/// What stage stamps and training checkpoints know of an input file, so that a file changed in
/// place is never taken for the one a result was made from: its size, its modification time
/// (nanoseconds) and a hash of its content — all of it up to `wholeFileLimit`, else
/// `sampleCount` blocks of `blockSize` spread evenly from the first block to the last.
///
/// Why samples and not the whole file: a scene can be gigabytes, and every `terraseg run` would
/// read it all to decide that nothing changed; 1 MiB per file costs milliseconds. Size and
/// mtime catch ordinary rewrites; the first and last blocks catch what keeps both (a GeoTIFF's
/// header, tile offsets and appended tiles live there), and the blocks between catch most of
/// the rest. An edit that keeps size and mtime and touches only unsampled bytes is not seen:
/// `terraseg run --force` reruns regardless.
public enum FileIdentity {
    public static let blockSize = 64 * 1024
    public static let sampleCount = 16
    public static var wholeFileLimit: Int { blockSize * sampleCount }

    /// "size:mtime-ns:hash" of the file at `path`; "missing" when it cannot be read (a GDAL
    /// virtual path such as /vsimem/… is named as it is).
    public static func of(_ path: String) -> String { of(path, samples: sampleCount, block: blockSize) }

    /// The identity of an input that comes by the thousand (a tile-set chip, read whole by
    /// training anyway): size, mtime and a hash of its first and last 4 KiB (the header and
    /// tail of a GeoTIFF or PNG), so checking a set of 10,000 chips reads 80 MB, not 10 GB.
    public static func ofChip(_ path: String) -> String { of(path, samples: 2, block: 4096) }

    static func of(_ path: String, samples: Int, block: Int) -> String {
        if path.hasPrefix("/vsi") { return "virtual" }
        var st = stat()
        guard stat(path, &st) == 0 else { return "missing" }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "unreadable" }
        defer { close(fd) }
        let size = Int(st.st_size)
        let mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        guard let hash = contentHash(fd, size: size, samples: samples, block: block) else { return "unreadable" }
        return "\(size):\(mtime):\(String(hash, radix: 16))"
    }

    /// FNV-1a over the whole file when small, else over the sampled blocks.
    static func contentHash(_ fd: Int32, size: Int, samples: Int = sampleCount, block: Int = blockSize) -> UInt64? {
        var hash = FNV1a()
        let offsets: [Int]
        let length: Int
        if size <= samples * block {
            offsets = [0]
            length = size
        } else {
            let last = size - block
            offsets = (0..<samples).map { last * $0 / (samples - 1) }
            length = block
        }
        var buffer = [UInt8](repeating: 0, count: max(length, 1))
        for offset in offsets {
            let ok = buffer.withUnsafeMutableBytes { raw -> Bool in
                var done = 0
                while done < length {
                    let n = pread(fd, raw.baseAddress! + done, length - done, off_t(offset + done))
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { return false }
                    done += n
                }
                hash.add(UnsafeRawBufferPointer(rebasing: raw[0..<length]))
                return true
            }
            guard ok else { return nil }
        }
        return hash.value
    }
}

/// FNV-1a, 64 bits: a stable hash (stage stamps, checkpoints, chip assignment, file
/// identities), unlike Swift's per-process-seeded `Hasher`.
public struct FNV1a: Sendable {
    public private(set) var value: UInt64

    public init(seed: UInt64 = 0) { value = 0xcbf2_9ce4_8422_2325 ^ seed }

    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var h = value
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        value = h
    }

    public mutating func add(_ text: String) {
        var h = value
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        value = h
    }
}
