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
            // 64 random bits as 16 hex digits, then the owner's process id (for stale-file cleanup).
            #expect(name.hasPrefix("/data/.map.png.partial-") && name.hasSuffix("-\(getpid()).png"))
            let tag = name.dropFirst("/data/.map.png.partial-".count).dropLast("-\(getpid()).png".count)
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

    /// Temporary entries of ended processes are removed once untouched for the age; those of a
    /// live process, recent ones and every other name stay.
    @Test func staleTemporaryEntriesOfEndedProcessesAreRemoved() throws {
        let dir = TemporaryDirectory()
        let ended = Process()
        ended.executableURL = URL(fileURLWithPath: "/bin/true")
        try ended.run()
        ended.waitUntilExit()
        let dead = ended.processIdentifier, hex = "0123456789abcdef"
        let hourAgo = Date(timeIntervalSinceNow: -3600), twoDaysAgo = Date(timeIntervalSinceNow: -2 * 86_400)
        func make(_ name: String, modified: Date, directory: Bool = false) throws {
            let path = dir.file(name)
            if directory {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
                try "w".write(toFile: path + "/model.json", atomically: false, encoding: .utf8)
            } else {
                try "x".write(toFile: path, atomically: false, encoding: .utf8)
            }
            try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: path)
        }
        let stale = [".map.tif.partial-\(hex)-\(dead).tif", ".map.tif.partial-\(hex)-\(dead).tif.aux.xml", ".model.partial-\(hex)-\(dead)",
                     ".old.tif.partial-\(hex).tif"]
        try make(stale[0], modified: hourAgo)
        try make(stale[1], modified: hourAgo)
        try make(stale[2], modified: hourAgo, directory: true)
        try make(stale[3], modified: twoDaysAgo)
        let kept = [".live.tif.partial-\(hex)-\(getpid()).tif", ".recent.tif.partial-\(hex)-\(dead).tif", ".new.tif.partial-\(hex).tif",
                    ".hidden", "map.tif", ".x.partial-notahexnumber", ".gone.partial-\(hex)-\(dead).old"]
        try make(kept[0], modified: hourAgo)
        try make(kept[1], modified: Date())
        try make(kept[2], modified: hourAgo)
        for k in kept.dropFirst(3) { try make(k, modified: twoDaysAgo) }
        let removed = AtomicFile.removeStale(in: dir.path)
        #expect(Set(removed) == Set(stale.map(dir.file)))
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)) == Set(kept))
    }

    /// Foundation's errors reach the user in plain words, never as "NSCocoaErrorDomain error 4".
    @Test func foundationErrorsInPlainWords() throws {
        let missing = CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: "/x/model.json"])
        #expect(TerraSegError.isFoundationError(missing) && TerraSegError.plainWords(missing) == "no such file or directory")
        let posix = NSError(domain: NSCocoaErrorDomain, code: 512, userInfo: [NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(ENOSPC))])
        #expect(TerraSegError.plainWords(posix) == String(cString: strerror(ENOSPC)))
        struct Doc: Decodable { var epochs: Int }
        let decoding = #expect(throws: DecodingError.self) { try JSONDecoder().decode(Doc.self, from: Data(#"{"epochs": "ten"}"#.utf8)) }
        let words = TerraSegError.plainWords(try #require(decoding))
        #expect(words.hasPrefix("'epochs' has the wrong type"), "\(words)")
        let e = TerraSegError(.readFailed, path: "/x/model.json", action: "cannot read the bundle", missing)
        #expect(e.description == "/x/model.json: cannot read the bundle: no such file or directory")
        #expect(!TerraSegError.isFoundationError(e))
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
