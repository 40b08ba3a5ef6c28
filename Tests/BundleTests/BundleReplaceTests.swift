import Core
import Foundation
import ModelIO
import Testing
import TestSupport

/// Replacing a model bundle: at every step (where a kill would stop it) `model/` is a whole
/// bundle, the previous one or the new one, never missing or half-written.
@Suite struct BundleReplaceTests {
    /// "seed N" when `path` holds a complete, loadable bundle (its provenance seed), else why not.
    static func bundleState(_ path: String) -> String {
        do {
            let bundle = try ModelBundle.read(path)
            _ = try bundle.network(directory: path)
            return "seed \(bundle.provenance.seed)"
        } catch {
            return "broken: \(error)"
        }
    }

    @Test func aKillWhileReplacingABundleLeavesTheOldOrTheNewOne() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 40, height: 40, bands: 2)
        let path = dir.file("model")
        try TinyModel.seeded(scene, output: path, seed: 5)
        let seen = Recorder<String>()
        try AtomicFile.observing(path, { step in seen.append("\(step.rawValue): \(Self.bundleState(path))") }) {
            try TinyModel.seeded(scene, output: path, seed: 6)
        }
        #expect(seen.items == ["flushedFile: seed 5", "renamed: seed 6", "flushedDirectory: seed 6", "removedOld: seed 6"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains("model") } == ["model"])
    }

    /// On a filesystem that cannot swap directories, the previous bundle is whole beside the
    /// name while `model/` is briefly missing, and is deleted once the new one is in place.
    @Test func withoutASwapThePreviousBundleStaysWholeAside() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 40, height: 40, bands: 2)
        let path = dir.file("model")
        try TinyModel.seeded(scene, output: path, seed: 5)
        let seen = Recorder<String>(), root = dir.path
        try AtomicFile.observing(path, refuseExchange: true, { step in
            guard step == .movedAside else { return }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
            let aside = names.first { $0.hasPrefix(".model.partial-") && $0.hasSuffix(".old") }
            seen.append(aside.map { Self.bundleState(root + "/" + $0) } ?? "lost")
        }) {
            try TinyModel.seeded(scene, output: path, seed: 6)
        }
        #expect(seen.items == ["seed 5"])
        #expect(Self.bundleState(path) == "seed 6")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains("model") } == ["model"])
    }
}
