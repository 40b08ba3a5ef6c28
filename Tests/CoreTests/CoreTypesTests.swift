import Core
import Foundation
import Testing
import TestSupport

@Suite struct AtomicFileTests {
    @Test func writesAndReplacesLeavingNoTemporaryFile() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("out.json")
        try AtomicFile.write("first", to: path)
        try AtomicFile.write("second", to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "second")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["out.json"])
    }

    @Test func temporaryNamesAreHiddenAndUnpredictable() {
        let names = (0..<100).map { _ in AtomicFile.temporaryName(for: "/data/map.png", suffix: ".png") }
        #expect(Set(names).count == names.count)
        for name in names {
            // 64 random bits as 16 hex digits, nothing derived from the process id or the clock.
            #expect(name.hasPrefix("/data/.map.png.partial-") && name.hasSuffix(".png"))
            let tag = name.dropFirst("/data/.map.png.partial-".count).dropLast(".png".count)
            #expect(tag.count == 16 && tag.allSatisfy(\.isHexDigit), "\(name)")
        }
    }

    @Test func temporaryFilesAndDirectoriesAreNewAndDistinct() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("map.tif")
        let first = try AtomicFile.reserveTemporaryFile(for: path, suffix: ".tif")
        let second = try AtomicFile.reserveTemporaryFile(for: path, suffix: ".tif")
        #expect(first != second)
        #expect(FileManager.default.fileExists(atPath: first) && FileManager.default.fileExists(atPath: second))
        #expect(URL(fileURLWithPath: first).lastPathComponent.hasPrefix(".map.tif.partial-"))
        let tmpDir = try AtomicFile.createTemporaryDirectory(for: dir.file("model"))
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: tmpDir, isDirectory: &isDirectory) && isDirectory.boolValue)
    }

    @Test func aMissingDirectoryIsAClearError() {
        let error = #expect(throws: TerraSegError.self) { try AtomicFile.write("x", to: "/nonexistent-dir/report.html") }
        #expect(error?.kind == .createFailed)
        #expect(error?.description.contains("the output directory /nonexistent-dir does not exist") == true)
    }
}

@Suite struct SplitMix64Tests {
    @Test func matchesTheReferenceSequence() {
        // splitmix64 with seed 0 (Vigna's reference implementation).
        var g = SplitMix64(seed: 0)
        #expect([g.next(), g.next(), g.next()] == [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F])
    }

    @Test func streamsFromOneSeedDiffer() {
        var a = SplitMix64(seed: 42, stream: .parameters), b = SplitMix64(seed: 42, stream: .augmentation)
        #expect(a.next() != b.next())
        #expect(SplitMix64(seed: 42, stream: .epochOrder) == SplitMix64(seed: 42 ^ 0x5EED))
    }
}
