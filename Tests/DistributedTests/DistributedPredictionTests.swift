import Foundation
import Testing
import TestSupport

/// `mpirun -np 2 terraseg predict` on a batch of scenes against one process.
@Suite(.serialized, .enabled(if: MPILaunch.available, "needs mpirun (apt-get install openmpi-bin)"))
struct DistributedPredictionTests {
    let dir = TemporaryDirectory("terraseg-mpi")
    let scenes: [SyntheticScene]
    let model: String

    init() throws {
        // Scenes of different sizes and kinds, so the ranks finish them at different times.
        let folder = dir.path
        scenes = try [(150, 110, 1), (97, 83, 2), (64, 200, 3), (120, 40, 4), (80, 80, 5)].map { w, h, seed in
            try SyntheticScene(in: folder, name: "scene-\(seed)", width: w, height: h, bands: 4,
                               kind: seed % 2 == 0 ? .uint16 : .float32, seed: UInt64(seed))
        }
        model = dir.file("model")
        try TinyModel.seeded(scenes[0], output: model)
    }

    func predict(into output: String, ranks: Int?, _ extra: [String] = []) throws -> Tool.Result {
        let args = ["predict", "--model", model, "--input"] + scenes.map(\.image) + ["--output", output, "--tile", "48", "--confidence"] + extra
        guard let ranks else { return try Tool.run(Tool.terraseg, args, environment: ["TERRASEG_THREADS": "1"]) }
        return try MPILaunch.run(ranks: ranks, Tool.terraseg, args)
    }

    func files(_ folder: String) throws -> [String: Data] {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".tif") }
        return try Dictionary(uniqueKeysWithValues: names.map { ($0, try Data(contentsOf: URL(fileURLWithPath: folder + "/" + $0))) })
    }

    @Test func twoRanksWriteTheSingleProcessMapsByteForByte() throws {
        let one = try predict(into: dir.file("one"), ranks: nil)
        #expect(one.status == 0, "\(one.stderr)")
        let two = try predict(into: dir.file("two"), ranks: 2)
        #expect(two.status == 0, "\(two.stderr)")
        #expect(two.stdout.components(separatedBy: "5 scene(s): 5 done, 0 skipped, 0 failed").count == 2, "\(two.stdout)")
        #expect(two.stderr.components(separatedBy: "] written  ").count == 6, "one line per scene, from rank 0: \(two.stderr)")
        let a = try files(dir.file("one")), b = try files(dir.file("two"))
        #expect(a.count == 10 && a.keys.sorted() == b.keys.sorted())
        for (name, bytes) in a { #expect(b[name] == bytes, "\(name) differs") }
    }

    /// One scene on two ranks is split in bands of rows (windows, and streamed strips with
    /// context rows) and rank 0 writes every output byte-identical to one process's; a second
    /// run skips it. Streamed without a minimum mapping unit, the map's overviews come with its
    /// rows (`GeoTIFFWriter.writeOverviewsWithRows`) on rank 0 as in one process.
    @Test(arguments: [("centre", 3), ("stream", 3), ("stream", 0)])
    func oneSceneSplitAcrossRanksIsByteIdentical(_ blend: String, minimumMappingUnit: Int) throws {
        let tag = "\(blend)-\(minimumMappingUnit)"
        let scene = try SyntheticScene(in: dir.path, name: "large-" + tag, width: 97, height: 560, bands: 4, seed: 9)
        func run(_ output: String, ranks: Int?) throws -> Tool.Result {
            let args = ["predict", "--model", model, "--input", scene.image, "--output", output, "--tile", "48", "--blend", blend,
                        "--probabilities", "--confidence", "--min-mapping-unit", String(minimumMappingUnit)]
            guard let ranks else { return try Tool.run(Tool.terraseg, args, environment: ["TERRASEG_THREADS": "1"]) }
            return try MPILaunch.run(ranks: ranks, Tool.terraseg, args)
        }
        let one = try run(dir.file("one-" + tag), ranks: nil)
        #expect(one.status == 0, "\(one.stderr)")
        let two = try run(dir.file("two-" + tag), ranks: 2)
        #expect(two.status == 0, "\(two.stderr)")
        #expect(two.stderr.contains("One scene on 2 ranks: each predicts a band of rows, rank 0 writes the map"), "\(two.stderr)")
        let a = try files(dir.file("one-" + tag)), b = try files(dir.file("two-" + tag))
        #expect(a.count == 3 && a.keys.sorted() == b.keys.sorted(), "\(a.keys.sorted()) \(b.keys.sorted())")
        for (name, bytes) in a { #expect(b[name] == bytes, "\(name) differs") }
        let again = try run(dir.file("two-" + tag), ranks: 2)
        #expect(again.stdout.contains("1 scene(s): 0 done, 1 skipped, 0 failed"), "\(again.stdout)")
    }

    /// A scene that cannot be predicted on two ranks fails with its rank's message from rank 0,
    /// leaves no map and ends the run non-zero (no rank waits for another's band).
    @Test func aSplitSceneThatFailsIsReportedOnce() throws {
        let broken = dir.file("broken-large.tif")
        try Data("not a raster".utf8).write(to: URL(fileURLWithPath: broken))
        let out = dir.file("split-failed")
        let r = try MPILaunch.run(ranks: 2, Tool.terraseg, ["predict", "--model", model, "--input", broken, "--output", out])
        #expect(r.status != 0 && !r.crashed, "\(r.stderr)")
        #expect(r.stdout.contains("1 scene(s): 0 done, 0 skipped, 1 failed"), "\(r.stdout)")
        #expect(r.stderr.components(separatedBy: "FAILED   \(broken): rank 0: ").count == 2, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out + "/broken-large_map.tif"))
    }

    /// `terraseg evaluate` under mpirun: rank 0 alone scores the map and prints (once, the
    /// others wait and exit 0); its failure ends the job non-zero with one message.
    @Test func evaluateOnTwoRanksScoresOnceOnRankZero() throws {
        let out = dir.file("evaluated")
        let p = try Tool.run(Tool.terraseg, ["predict", "--model", model, "--input", scenes[0].image, "--output", out, "--tile", "48"])
        try #require(p.status == 0, "\(p.stderr)")
        let map = out + "/scene-1_map.tif"
        let r = try MPILaunch.run(ranks: 2, Tool.terraseg, ["evaluate", "--prediction", map, "--labels", scenes[0].labels, "--ignore", "0"])
        #expect(r.status == 0 && !r.crashed, "\(r.stderr)")
        #expect(r.stdout.components(separatedBy: "Overall accuracy").count == 2, "printed once: \(r.stdout)")
        let single = try Tool.run(Tool.terraseg, ["evaluate", "--prediction", map, "--labels", scenes[0].labels, "--ignore", "0"])
        #expect(single.stdout == r.stdout)
        let wrong = try MPILaunch.run(ranks: 2, Tool.terraseg, ["evaluate", "--prediction", map, "--labels", scenes[1].labels])
        #expect(wrong.status != 0 && !wrong.crashed, "\(wrong.stderr)")
        #expect(wrong.stderr.components(separatedBy: "not on the grid of the prediction").count == 2, "\(wrong.stderr)")
    }

    /// Skip and failure isolation hold across ranks: existing maps are skipped, a broken scene
    /// is reported by rank 0 and fails the run, the others are written.
    @Test func skipsExistingMapsAndIsolatesAFailingScene() throws {
        let out = dir.file("maps")
        let first = try predict(into: out, ranks: 2)
        #expect(first.status == 0, "\(first.stderr)")
        try FileManager.default.removeItem(atPath: out + "/scene-3_map.tif")
        let broken = dir.file("broken.tif")
        try Data("not a raster".utf8).write(to: URL(fileURLWithPath: broken))
        let args = ["predict", "--model", model, "--input"] + scenes.map(\.image) + [broken, "--output", out, "--tile", "48", "--confidence"]
        let again = try MPILaunch.run(ranks: 2, Tool.terraseg, args)
        #expect(again.status != 0)
        #expect(again.stdout.contains("6 scene(s): 1 done, 4 skipped, 1 failed"), "\(again.stdout)")
        #expect(again.stderr.contains("FAILED   \(broken)"), "\(again.stderr)")
        #expect(FileManager.default.fileExists(atPath: out + "/scene-3_map.tif"))
    }

    /// SIGINT to one rank in the middle of a batch: the job ends (non-zero) within a bounded
    /// time instead of the other rank waiting for it, the finished maps are kept, and the next
    /// run, on one process, skips them and maps the rest.
    @Test func anInterruptedRankEndsTheJobAndTheNextRunSkipsItsMaps() throws {
        let copies = try (0..<24).map { k in
            let path = dir.file("copy-\(k).tif")
            try FileManager.default.copyItem(atPath: scenes[0].image, toPath: path)
            return path
        }
        let out = dir.file("interrupted")
        let mpirun = Process()
        mpirun.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        mpirun.arguments = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", "-x", "TERRASEG_THREADS=1", Tool.terraseg,
                            "predict", "--model", model, "--input"] + copies + ["--output", out, "--tile", "48"]
        mpirun.standardOutput = FileHandle.nullDevice
        mpirun.standardError = FileHandle.nullDevice
        try mpirun.run()
        func maps() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []).filter { $0.hasSuffix("_map.tif") } }
        let deadline = Date().addingTimeInterval(120)
        while maps().count < 2 && Date() < deadline && mpirun.isRunning { usleep(20_000) }
        let rank1 = try #require(DistributedTrainingTests.processes(withEnvironment: "OMPI_COMM_WORLD_RANK=1", parent: mpirun.processIdentifier).first,
                                 "rank 1 not found")
        kill(rank1, SIGINT)
        #expect(DistributedTrainingTests.waitForJob(mpirun, seconds: 30), "the job did not end within 30 s")
        #expect(mpirun.terminationStatus != 0)
        let kept = maps().count
        #expect(kept >= 2 && kept < 24, "\(kept) maps")
        let again = try Tool.run(Tool.terraseg, ["predict", "--model", model, "--input"] + copies + ["--output", out, "--tile", "48"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("24 scene(s): \(24 - kept) done, \(kept) skipped, 0 failed"), "\(again.stdout)")
    }
}
