import Core
import Foundation
import GeoRaster
import ModelIO
import Testing
import TestSupport
import Tiling
@testable import Training

/// Tile sets larger than memory: chips are opened when read, a bounded number at a time, and
/// several reader threads (each with its own handles) give the result of patches held in memory.
@Suite struct ChipReadingTests {
    typealias SafeTensorsContent = [String: SafeTensors.Entry]
    let dir = TemporaryDirectory("terraseg-chip-reading")

    func data(_ root: String) throws -> DataSpec {
        DataSpec(tileSets: [TileSetSpec(root: root, images: [ChipSet.imageTemplate], mask: ChipSet.maskTemplate)],
                 classes: try ClassSpec.parseList(ChipSet.classes))
    }

    /// A budget of 3 handles over 8 chips: never more than 3 open, and a chip closed to make
    /// room reads the same patch when opened again.
    @Test func chipsAreOpenedWhenReadWithinABudget() throws {
        let root = dir.file("budget")
        let ids = (0..<8).map { "c\($0)" }
        for id in ids { try ChipSet.write(root: root, id: id, nodataFromRow: 20) }
        let set = try TileSet(root: root, images: [ChipSet.imageTemplate], mask: ChipSet.maskTemplate)
        let map = try data(root).classMap()
        let budget = HandleBudget(limit: 3)
        let scenes = try ids.map { try set.scene($0, bands: nil, classMap: map, budget: budget) }
        #expect(budget.openCount == 3, "opening describes a chip and closes the oldest")
        let window = Window(column: 4, row: 8, width: 16, height: 16)
        var first: [Patch] = [], again = Patch()
        for scene in scenes {
            var p = Patch()
            try scene.readPatch(window, normalizer: nil, into: &p)
            first.append(p)
            #expect(budget.openCount <= 3)
        }
        let open = scenes.filter { ($0.image as? OnDemandRaster)?.isOpen == true }
        #expect(open.count <= 2 && (scenes[0].image as? OnDemandRaster)?.isOpen == false, "the least recently read are closed")
        for (scene, expected) in zip(scenes, first) {
            try scene.readPatch(window, normalizer: nil, into: &again)
            #expect(again.image == expected.image && again.target == expected.target)
        }
        let plain = try set.scene("c0", bands: nil, classMap: map)
        var direct = Patch()
        try plain.readPatch(window, normalizer: nil, into: &direct)
        #expect(direct.image == first[0].image && direct.target == first[0].target && direct.target.contains(-1))
        let reopened = try #require(plain.reopened(budget: budget), "a chip held open is reopened as one file")
        try reopened.readPatch(window, normalizer: nil, into: &direct)
        #expect(direct.image == first[0].image && direct.target == first[0].target)
    }

    /// Scenes of one image file and one label file are read by several threads too (each its own
    /// handles), to the weights of patches held in memory; a scene stacked from several files
    /// cannot be reopened, and the run says that one thread reads instead.
    @Test func readerThreadsReadScenesOrSaySoOnce() throws {
        let scene = try SyntheticScene(in: dir.path, width: 120, height: 100, bands: 3, seed: 9)
        var uncached = TinyModel.options()
        uncached.cacheMegabytes = 0
        uncached.readerThreads = 3
        let held = try TinyModel.trainer([scene], output: dir.file("scene-held")).run()
        let trainer = try TinyModel.trainer([scene], output: dir.file("scene-read"), options: uncached)
        let read = try trainer.run()
        #expect(read.history.map(\.trainLoss) == held.history.map(\.trainLoss))
        let (a, _) = try SafeTensors.read(dir.file("scene-held") + "/model.safetensors")
        let (b, _) = try SafeTensors.read(dir.file("scene-read") + "/model.safetensors")
        #expect(a == b, "three threads reading the scene give the weights of patches held in memory")
        let normalizer = try trainer.prepareData().normalizer
        let plain = BatchAssembler(scenes: trainer.scenes, normalizer: normalizer, patchSize: 32, cacheMegabytes: 0)
        #expect(plain.readerScenes(3).count == 3 && plain.readerShortfall(wanted: 3, got: 3) == nil)
        let stacked = try LabelledScene(name: "stacked", image: BandStack(paths: [scene.image, scene.image]),
                                        labels: Dataset(path: scene.labels), classMap: trainer.scenes[0].classMap)
        let one = BatchAssembler(scenes: [stacked], normalizer: normalizer, patchSize: 32, cacheMegabytes: 0)
        #expect(one.readerScenes(3).count == 1)
        #expect(one.readerShortfall(wanted: 3, got: 1) == "training.reader_threads is 3, but 1 thread reads the patches: scenes such as "
            + "'stacked' (bands stacked from several files, or labels warped or burnt from vectors) cannot be reopened per thread")
        #expect(one.readerShortfall(wanted: 3, got: 1) == nil, "said once per run")
    }

    /// A tile set's epochs report chips/s (the epoch's chips over its seconds) beside patches/s;
    /// scenes report none.
    @Test func progressShowsChipsPerSecond() throws {
        let root = dir.file("rates")
        for i in 0..<6 { try ChipSet.write(root: root, id: "c\(i)", size: 32) }
        let scenes = try data(root).openScenes()
        var options = TinyModel.options(epochs: 1)
        options.patchSize = 16
        options.stride = 16
        let trainer = try Trainer(scenes: scenes, architecture: try TinyModel.model.architecture(inputChannels: 2, classes: 2),
                                  options: options, output: dir.file("rates-model"))
        trainer.progress.quiet = true
        let data = try trainer.prepareData()
        let perPatch = try #require(Trainer.chipsPerPatch(scenes: scenes, train: data.train))
        #expect(perPatch == Double(Set(data.train.map(\.scene)).count) / Double(data.train.count) && perPatch < 1)
        let m = try #require(try trainer.run().history.first)
        #expect(m.chipsPerSecond == perPatch * m.patchesPerSecond)
        #expect(Trainer.summary(m, epochs: 1).contains(String(format: "patches/s, %.1f chips/s, lr", m.chipsPerSecond!)))
        let scene = try SyntheticScene(in: dir.path, name: "plain", width: 64, height: 64, bands: 2)
        #expect(Trainer.chipsPerPatch(scenes: try TinyModel.data([scene]).openScenes(), train: data.train) == nil)
    }

    /// Small patches are read further ahead (reads short against the step), within 8 batches and 32 MiB.
    @Test func readAheadDepthScalesWithPatchSize() {
        #expect(PatchPrefetcher.depth(batchSize: 8, patchBytes: 4 * 64 * 64 * 4) == 64)
        #expect(PatchPrefetcher.depth(batchSize: 8, patchBytes: 4 * 256 * 256 * 4) == 32)
        #expect(PatchPrefetcher.depth(batchSize: 8, patchBytes: 4 * 1024 * 1024 * 4) == 16)
    }

    /// Uncached patches read by three threads, each through its own reopened chips, train to the
    /// weights of the same patches held in memory, bit for bit.
    @Test func readerThreadsGiveTheInMemoryResult() throws {
        let root = dir.file("threads")
        for i in 0..<12 { try ChipSet.write(root: root, id: "c\(i)", size: 48, nodataFromRow: 40 - i) }
        let scenes = try data(root).openScenes()
        let architecture = try TinyModel.model.architecture(inputChannels: 2, classes: 2)
        func run(cache: Int, threads: Int, name: String) throws -> (TrainingResult, SafeTensorsContent) {
            var options = TinyModel.options(epochs: 2)
            options.patchSize = 16
            options.stride = 16
            options.batchSize = 5
            options.cacheMegabytes = cache
            options.readerThreads = threads
            let trainer = try Trainer(scenes: try data(root).openScenes(), architecture: architecture, options: options, output: dir.file(name))
            trainer.progress.quiet = true
            let result = try trainer.run()
            return (result, try SafeTensors.read(dir.file(name) + "/model.safetensors").0)
        }
        let (held, heldWeights) = try run(cache: 1024, threads: 1, name: "held")
        let (read, readWeights) = try run(cache: 0, threads: 3, name: "read")
        #expect(held.trainPatches > 40)
        #expect(read.history.map(\.trainLoss) == held.history.map(\.trainLoss))
        #expect(readWeights == heldWeights, "three reader threads give the weights of patches held in memory")
        let probe = try Trainer(scenes: scenes, architecture: architecture, options: TinyModel.options(), output: dir.file("probe"))
        probe.progress.quiet = true
        let assembler = BatchAssembler(scenes: scenes, normalizer: try probe.prepareData().normalizer, patchSize: 16, cacheMegabytes: 0)
        #expect(assembler.readerScenes(3).count == 3)
        #expect(assembler.readerScenes(3)[1][0] !== scenes[0] && assembler.readerScenes(3)[1][0] === assembler.readerScenes(2)[1][0])
    }

    /// How patches are cached and read does not change the result, so it does not change the
    /// settings fingerprint (a run may resume with another cache or thread count).
    @Test func cachingAndReaderThreadsAreNotInTheFingerprint() throws {
        let root = dir.file("fingerprint")
        for i in 0..<3 { try ChipSet.write(root: root, id: "c\(i)") }
        let scenes = try data(root).openScenes()
        let architecture = try TinyModel.model.architecture(inputChannels: 2, classes: 2)
        func fingerprint(_ change: (inout TrainingOptions) -> Void) throws -> TrainingFingerprint {
            var options = TinyModel.options()
            change(&options)
            let trainer = try Trainer(scenes: scenes, architecture: architecture, options: options, output: dir.file("m"))
            trainer.progress.quiet = true
            return trainer.fingerprint(try trainer.prepareData())
        }
        let base = try fingerprint { _ in }
        #expect(try fingerprint { $0.cacheMegabytes = 0; $0.readerThreads = 5 } == base)
        #expect(try fingerprint { $0.epochs += 1 }.settings != base.settings)
    }
}
