import Core
import Foundation
import Testing
import TestSupport

/// What a crash or a kill at each step of putting an output in place would leave, through the
/// `AtomicFile.observing` seam: every output is flushed before its rename and its directory
/// after, and a directory replaced is never missing.
@Suite struct DurabilityTests {
    @Test func filesAreFlushedBeforeTheRenameAndTheirDirectoryAfter() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("report.html")
        let steps = Recorder<AtomicFile.Step>()
        try AtomicFile.observing(path, { steps.append($0) }) {
            try AtomicFile.write("<html/>", to: path)
        }
        #expect(steps.items == [.flushedFile, .renamed, .flushedDirectory])

        // A file written by name (GDAL's maps) is flushed by moveIntoPlace itself.
        let map = dir.file("map.tif")
        let byName = Recorder<AtomicFile.Step>()
        let tmp = try AtomicFile.reserveTemporaryFile(for: map, suffix: ".tif")
        try "pixels".write(toFile: tmp, atomically: false, encoding: .utf8)
        try AtomicFile.observing(map, { byName.append($0) }) { try AtomicFile.moveIntoPlace(tmp, map) }
        #expect(byName.items == [.flushedFile, .renamed, .flushedDirectory])
        #expect(try String(contentsOfFile: map, encoding: .utf8) == "pixels")
    }

    /// Two directories "model" holding a file `a` with `old`, and a complete temporary with `new`.
    static func oldAndNew(in dir: TemporaryDirectory) throws -> (path: String, temporary: String) {
        let path = dir.file("model")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try "old".write(toFile: path + "/a", atomically: false, encoding: .utf8)
        let tmp = try AtomicFile.createTemporaryDirectory(for: path)
        try "new".write(toFile: tmp + "/a", atomically: false, encoding: .utf8)
        return (path, tmp)
    }

    /// At every step of a replacement, `model/a` reads "old" or "new": a kill anywhere leaves
    /// a whole directory under the name; nothing is left beside it at the end.
    @Test func aReplacedDirectoryIsNeverMissing() throws {
        let dir = TemporaryDirectory()
        let (path, tmp) = try Self.oldAndNew(in: dir)
        let seen = Recorder<String>()
        try AtomicFile.observing(path, { step in
            seen.append("\(step.rawValue): \((try? String(contentsOfFile: path + "/a", encoding: .utf8)) ?? "missing")")
        }) {
            try AtomicFile.replaceDirectory(path, with: tmp)
        }
        #expect(seen.items == ["flushedFile: old", "renamed: new", "flushedDirectory: new", "removedOld: new"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["model"])
    }

    /// Where the filesystem cannot swap two directories, the old one is moved aside first: then
    /// it is whole, under a name the warning gives, until the new one is in place.
    @Test func withoutASwapTheOldDirectoryIsAsideNeverLost() throws {
        let dir = TemporaryDirectory()
        let (path, tmp) = try Self.oldAndNew(in: dir)
        let seen = Recorder<String>(), root = dir.path
        try AtomicFile.observing(path, refuseExchange: true, { step in
            guard step == .movedAside else { return }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
            let aside = names.first { $0.hasPrefix(".model.partial-") && $0.hasSuffix(".old") }
            seen.append(aside.flatMap { try? String(contentsOfFile: root + "/" + $0 + "/a", encoding: .utf8) } ?? "lost")
        }) {
            try AtomicFile.replaceDirectory(path, with: tmp)
        }
        #expect(seen.items == ["old"])
        #expect(try String(contentsOfFile: path + "/a", encoding: .utf8) == "new")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["model"])
    }

    @Test func aNewDirectoryIsRenamedIntoPlace() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("model")
        let tmp = try AtomicFile.createTemporaryDirectory(for: path)
        try "new".write(toFile: tmp + "/a", atomically: false, encoding: .utf8)
        let steps = Recorder<AtomicFile.Step>()
        try AtomicFile.observing(path, { steps.append($0) }) { try AtomicFile.replaceDirectory(path, with: tmp) }
        #expect(steps.items == [.flushedFile, .renamed, .flushedDirectory])
        #expect(try String(contentsOfFile: path + "/a", encoding: .utf8) == "new")
    }
}

/// A file's identity changes with its content even when its size and modification time are
/// kept (a label raster rewritten in place), and only then.
@Suite struct FileIdentityTests {
    @Test func aSmallFileIsHashedWhole() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("labels.tif")
        try Data([UInt8](repeating: 1, count: 10_000)).write(to: URL(fileURLWithPath: path))
        let before = FileIdentity.of(path)
        #expect(FileIdentity.of(path) == before, "reading does not change it")
        try FileChanges.overwriteKeepingTime(path, with: [2], at: 5_000)
        #expect(FileIdentity.of(path) != before, "a byte in the middle, same size and mtime")
        #expect(FileIdentity.of(dir.file("missing.tif")) == "missing")
    }

    @Test func aLargeFileIsSampledFromItsFirstToItsLastBlock() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("scene.tif")
        let size = 5 * FileIdentity.wholeFileLimit + 12_345
        try Data([UInt8](repeating: 7, count: size)).write(to: URL(fileURLWithPath: path))
        var identity = FileIdentity.of(path)
        for offset in [0, size - 1, (size - FileIdentity.blockSize) * 7 / (FileIdentity.sampleCount - 1) + 100] {
            try FileChanges.overwriteKeepingTime(path, with: [9], at: offset)
            let changed = FileIdentity.of(path)
            #expect(changed != identity, "a byte at \(offset), same size and mtime")
            identity = changed
        }
        // Touching the file (same bytes, new time) counts as a change too.
        var times = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 5)]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        #expect(FileIdentity.of(path) != identity)
    }
}
