import Core
import Distributed
import Foundation
import GeoRaster
import Inference
import Logging
import Metrics
import ModelIO
import Models
import Tiling
import Training

/// Runs a pipeline: train → predict → evaluate → report. A stage is skipped when its outputs
/// exist and were made from the same inputs and settings (recorded in `stages.json`).
/// Across the ranks of `communicator` (mpirun/srun) training is data-parallel, prediction shares
/// the scenes out (one scene: bands of rows), and rank 0 alone decides what is up to date, writes
/// the fingerprints, logs, evaluates and reports; the other ranks wait for it at the end.
public final class PipelineRunner {
    public let loaded: PipelineLoader.Loaded
    public var force = false
    public var communicator = Communicator.single
    public var terrasegVersion = "unknown"
    /// The running executable (`FileIdentity`): maps and test-chip scores made by another
    /// version or build of TerraSeg are made again (the model is kept: its data and settings
    /// decide; `--force` retrains).
    public var program = FileIdentity.of("/proc/self/exe")
    private var programStamp: String { terrasegVersion + "@" + program }
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

    public init(_ loaded: PipelineLoader.Loaded) { self.loaded = loaded }

    public var spec: PipelineSpec { loaded.spec }
    public var run: String { loaded.output }
    public var bundlePath: String { run + "/model" }
    public var mapsDirectory: String { run + "/maps" }
    public var reportPath: String { run + "/report.html" }
    public var evaluationPath: String { run + "/evaluation.json" }

    public struct Outcome: Sendable {
        public var bundle: String
        public var maps: [String]
        public var report: String
        public var validationMeanIoU: Double?
        public var validationOverallAccuracy: Double?
        public var mapEvaluation: [MapEvaluator.Result]
        /// One score per tile set over its test chips (`split.test`, a `test/` folder).
        public var testChipEvaluation: [MapEvaluator.Result]
        public var skipped: [String]
    }

    /// The scenes to map: `prediction.scenes`, or every training image.
    var predictionScenes: [[String]] { spec.prediction.scenes ?? spec.data.scenes.map(\.image) }

    /// Runs the stages. SIGINT/SIGTERM (`StopSignal`) stop at the next safe point of any stage
    /// (a training batch, a prediction window, an evaluation strip, between stages) with an
    /// `Interrupted` error listing what was kept complete.
    public func execute() throws -> Outcome {
        var kept: [String] = []
        if !communicator.isRoot { log = { _ in } }
        do {
            return try stages(kept: &kept)
        } catch var stop as Interrupted {
            stop.kept = kept + stop.kept
            throw stop
        }
    }

    func stages(kept: inout [String]) throws -> Outcome {
        if communicator.isRoot {
            try AtomicFile.createDirectory(run)
            for stale in AtomicFile.removeStale(in: run) + AtomicFile.removeStale(in: run + "/quicklooks") { log("Removed \(stale): a partial output of a run that was killed") }
        }
        try communicator.barrier()  // the other ranks start once rank 0 has cleared leftovers
        var stamps = Stamps.read(run + "/stages.json")
        var skipped: [String] = []
        let precision = spec.prediction.precision  // refused before training
        if spec.prediction.enabled, let why = precision == .int8 ? Precision.int8Unavailable : precision == .bf16 ? Precision.bf16Unavailable : nil {
            throw TerraSegError(.invalidArgument, path: "prediction.precision", problem: "\(precision.rawValue) is refused: \(why)",
                                hint: "Set prediction.precision to fp32, or to auto (which falls back to fp32 by itself)")
        }
        guard let trainStamp = try trainStage(stamps: &stamps, skipped: &skipped) else {
            throw Interrupted(kept: ["the training checkpoint in \(bundlePath).training"])
        }
        kept.append("the model bundle \(bundlePath)")
        try StopSignal.check()
        let bundle = try ModelBundle.readChecked(bundlePath)
        let history = Trainer.readHistory(bundlePath + "/metrics.jsonl")
        let maps = try predictStage(bundle: bundle, trainStamp: trainStamp, stamps: &stamps, skipped: &skipped)
        if !maps.isEmpty { kept.append("\(maps.count) map(s) in \(mapsDirectory)") }
        guard communicator.isRoot else {
            try communicator.barrier()  // rank 0 evaluates and reports; its failure ends every rank
            return Outcome(bundle: bundlePath, maps: maps, report: reportPath, validationMeanIoU: nil, validationOverallAccuracy: nil,
                           mapEvaluation: [], testChipEvaluation: [], skipped: skipped)
        }
        try StopSignal.check()
        let evaluations = try evaluateStage(maps: maps, bundle: bundle, trainStamp: trainStamp, stamps: &stamps, skipped: &skipped)
        try StopSignal.check()

        // 4. Report (always: it is cheap and reflects the latest stages).
        let best = bundle.provenance.bestEpoch.flatMap { e in history.first { $0.epoch == e } }
        let report = RunReport(spec: spec, pipelineFile: loaded.file, bundle: bundle, history: history, best: best,
                               maps: maps, scenes: predictionScenes, evaluations: evaluations.maps, region: spec.evaluation.region,
                               bundlePath: bundlePath, testChips: evaluations.testChips)
        try report.write(to: reportPath, assets: run + "/quicklooks")
        try communicator.barrier()
        return Outcome(bundle: bundlePath, maps: maps, report: reportPath, validationMeanIoU: best?.meanIoU,
                       validationOverallAccuracy: best?.overallAccuracy, mapEvaluation: evaluations.maps,
                       testChipEvaluation: evaluations.testChips, skipped: skipped)
    }

    /// 1. Train, unless the bundle is up to date. The checkpoint of an interrupted run is
    /// continued when it is of the same data and settings; otherwise, and always with `force`,
    /// training starts from scratch (the old bundle stays until the new one replaces it).
    /// Returns the stage's stamp; nil when training was interrupted.
    func trainStage(stamps: inout Stamps, skipped: inout [String]) throws -> String? {
        // Tile-set chips that train or validate count as inputs (a chip rewritten in place retrains).
        let chips = try spec.data.tileSets.flatMap { try chipFiles(tileSetChips($0, parts: [.train, .validation])) }
        let trainStamp = stamp(sections: [spec.data], extra: [TrainingSection(model: spec.model, options: spec.trainingOptions)],
                               files: spec.data.scenes.flatMap { $0.image + [$0.labels, $0.vectorLabels].compactMap { $0 } }
                                   + [spec.model.encoderWeights].compactMap { $0 }, chips: chips)
        if try agreed(!force && stamps["train"] == trainStamp && FileManager.default.fileExists(atPath: bundlePath + "/model.json")) {
            skipped.append("train")
            log("train: up to date (\(bundlePath))")
            return trainStamp
        }
        log("train: \(spec.name)\(force ? " (--force: from scratch)" : "")")
        stamps["train"] = nil
        try write(stamps)
        let result = try Trainer.train(data: spec.data, model: spec.model, options: spec.trainingOptions, output: bundlePath,
                                       start: force ? .restart : .resumeIfCurrent, terrasegVersion: terrasegVersion)
        try communicator.barrier()  // rank 0 has written the bundle
        if result.interrupted { return nil }
        stamps["train"] = trainStamp
        try write(stamps)
        return trainStamp
    }

    /// 2. Predict every scene, unless the maps are up to date. Returns the maps (none when
    /// prediction is disabled).
    func predictStage(bundle: ModelBundle, trainStamp: String, stamps: inout Stamps, skipped: inout [String]) throws -> [String] {
        guard spec.prediction.enabled else { return [] }
        let options = try predictionOptions()
        // The bundle's own network (its input bands now known) against the budget, before any work.
        let memory = MemoryBudget(memory: spec.memory).predictionIssues(bundle.architecture, tile: options.tileSize,
                                                                        margin: options.margin, batch: options.batchSize, blend: options.blend)
        if let issue = memory.first { throw TerraSegError(.invalidArgument, path: issue.key, problem: issue.problem, hint: issue.fix) }
        let names = spec.prediction.scenes == nil ? spec.data.scenes.map(\.name) : []
        let jobs = try predictionScenes.enumerated().map { i, paths in
            try SceneJob.scene(paths, outputName: i < names.count ? names[i] : nil, stacBands: bundle.recipe?.bandNames)
        }
        // A STAC Item's band files count as inputs too.
        let inputs = jobs.flatMap { ($0.item.map { [$0.file] } ?? []) + $0.paths }
        let predictStamp = trainStamp + "/" + stamp(sections: [spec.prediction], extra: [programStamp], files: inputs)
        let named = jobs.map { SceneOutputs.named(after: $0, in: mapsDirectory, options: options) }
        let outputs = named.map(\.map)
        if try agreed(!force && stamps["predict"] == predictStamp && named.flatMap(\.all).allSatisfy({ FileManager.default.fileExists(atPath: $0) })) {
            skipped.append("predict")
            log("predict: up to date (\(mapsDirectory))")
            return outputs
        }
        log("predict: \(jobs.count) scene(s) → \(mapsDirectory)")
        if let made = stamps["program"], made != programStamp {
            log("predict: TerraSeg changed since the maps were made (another version or build): mapping again with the same model")
        }
        if let note = options.mapNote { log("predict: " + note) }
        if let note = options.streamingNote { log("predict: " + note) }
        stamps["predict"] = nil
        try write(stamps)
        var o = options
        o.overwrite = true
        let network = try predictionNetwork(bundle, jobs: jobs)
        let model = NetworkSceneModel(bundle: bundle, network: network)
        let predictor = try ScenePredictor(model: model, inputs: model.inputs, options: o)
        predictor.provenance = MapProvenance(bundle: bundle, directory: bundlePath, terrasegVersion: terrasegVersion)
        var progress = BatchProgress(total: jobs.count)
        let reports = try predictor.run(jobs: jobs, directory: mapsDirectory, communicator: communicator) { log("predict: " + progress.line(for: $0)) }
        if let choice = Bf16Inference.summary(of: network) { log("predict: " + choice) }
        // Rank 0 has every report; another rank's failed scene is rank 0's to report (it ends every rank).
        for r in reports where communicator.isRoot {
            if case .failed(let m) = r.status { throw RasterError(.writeFailed, path: r.job.name, problem: "prediction failed: \(m)") }
        }
        stamps["predict"] = predictStamp
        stamps["program"] = programStamp
        try write(stamps)
        return outputs
    }

    /// The trained network at `prediction.precision`. int8 (or auto on a CPU with VNNI) first
    /// calibrates it on the first scene to map, as `terraseg quantize` does (one fp32 pass over
    /// that scene); the bundle on disk stays fp32.
    func predictionNetwork(_ bundle: ModelBundle, jobs: [SceneJob]) throws -> any SegmentationNetwork {
        var calibrated = bundle
        let precision = spec.prediction.precision
        if precision == .int8 || precision == .auto, bundle.quantization == nil, Precision.int8Unavailable == nil, let first = jobs.first {
            log("predict: calibrating int8 on \(first.name) (fp32 windows of \(spec.prediction.tile))")
            calibrated.quantization = try SceneCalibration.quantization(bundle: bundle, network: try bundle.network(directory: bundlePath),
                                                                        jobs: [first], tile: spec.prediction.tile, scratch: run + "/calibration")
        }
        let built = try calibrated.network(directory: bundlePath, precision: precision)
        if let notice = built.notice { log("predict: " + notice) }
        return built.network
    }

    /// Rank 0's answer on every rank (what is up to date is decided once, before any rank writes).
    func agreed(_ decision: Bool) throws -> Bool {
        try communicator.broadcast([decision ? 1 : 0]) == [1]
    }

    /// `stages.json`, by rank 0 alone.
    func write(_ stamps: Stamps) throws {
        guard communicator.isRoot else { return }
        try stamps.write(run + "/stages.json")
    }

    /// 3. Evaluate each map against its labels (always: maps are cheap to score), and each tile
    /// set's test chips (mapped again unless the model and the chips are those of the scores in
    /// `evaluation.json`), written to `evaluation.json` (maps first).
    func evaluateStage(maps: [String], bundle: ModelBundle, trainStamp: String, stamps: inout Stamps,
                       skipped: inout [String]) throws -> (maps: [MapEvaluator.Result], testChips: [MapEvaluator.Result]) {
        guard spec.evaluation.enabled else { return ([], []) }
        let scored = try mapEvaluations(maps)
        let sets = try spec.data.tileSets.map { ($0, try tileSetChips($0, parts: [.test])) }.filter { !$0.1.isEmpty }
        let chipStamp = trainStamp + "/" + stamp(sections: [String](), extra: [programStamp], files: [], chips: chipFiles(sets.flatMap(\.1)))
        var chips: [MapEvaluator.Result]
        if !force && !sets.isEmpty && stamps["test_chips"] == chipStamp, let kept = storedTestChipEvaluations(count: sets.count) {
            skipped.append("test chips")
            log("evaluate: \(sets.count) tile set(s)' test chips up to date (\(evaluationPath))")
            chips = kept
        } else {
            stamps["test_chips"] = nil
            try write(stamps)
            chips = try testChipEvaluations(sets, bundle: bundle)
        }
        guard scored != nil || !chips.isEmpty else { return ([], []) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(encoder.encode((scored ?? []) + chips), to: evaluationPath)
        if !sets.isEmpty {
            stamps["test_chips"] = chipStamp
            try write(stamps)
        }
        return (scored ?? [], chips)
    }

    /// The last `count` scores of `evaluation.json` (test chips come after the maps); nil when
    /// the file is missing or unreadable.
    func storedTestChipEvaluations(count: Int) -> [MapEvaluator.Result]? {
        guard let data = FileManager.default.contents(atPath: evaluationPath),
              let all = try? JSONDecoder().decode([MapEvaluator.Result].self, from: data), all.count >= count else { return nil }
        return Array(all.suffix(count))
    }

    /// The chips of tile set `t` in `parts`, listed (not opened) by its split. A hash split has
    /// no test part; which of the others a chip joins depends on settings the stamps hold.
    func tileSetChips(_ t: TileSetSpec, parts: Set<TileSplit.Part>) throws -> [TileSplit.Chip] {
        let split = try (t.split ?? TileSplitSpec(method: "hash")).split(validationFraction: 0, seed: 0, resolve: { $0 })
        if case .hash = split {
            return parts.isDisjoint(with: [.train, .validation]) ? [] : try split.chips(root: t.root, images: t.images, mask: t.mask).chips
        }
        return try split.chips(root: t.root, images: t.images, mask: t.mask).chips.filter { parts.contains($0.part) }
    }

    func chipFiles(_ chips: [TileSplit.Chip]) -> [String] {
        chips.flatMap { $0.set.imagePaths($0.id) + [$0.set.maskPath($0.id)] }
    }

    /// Each map against its labels; nil when there is nothing to score (no map, no labels).
    func mapEvaluations(_ maps: [String]) throws -> [MapEvaluator.Result]? {
        guard !maps.isEmpty else { return nil }
        // Maps of other scenes (prediction.scenes) are scored only against labels listed for them.
        if spec.prediction.scenes != nil && spec.evaluation.labels == nil {
            log("evaluate: skipped (prediction.scenes are not the training scenes; list their label rasters in evaluation.labels)")
            return nil
        }
        let labels = spec.evaluation.labels ?? spec.data.scenes.compactMap(\.labels)
        guard labels.count == maps.count else {
            log("evaluate: skipped (\(maps.count) maps but \(labels.count) label rasters; list evaluation.labels)")
            return nil
        }
        let remap = try labelRemap()
        var evaluations: [MapEvaluator.Result] = []
        for (i, (map, label)) in zip(maps, labels).enumerated() {
            // A held-out scene is scored whole; a training scene is not scored on the
            // validation region; a split scene only where the split validates.
            let role = spec.prediction.scenes == nil ? spec.data.scenes[i].role : nil
            if spec.evaluation.region == .validation && role == "train" {
                log("evaluate: \(URL(fileURLWithPath: map).lastPathComponent) is a training scene; not scored on validation")
                continue
            }
            let region = try evaluationRegion(map: map, role: role)
            evaluations.append(try MapEvaluator.evaluate(prediction: map, labels: label, ignore: spec.data.ignore, remap: remap,
                                                         include: region))
        }
        return evaluations
    }

    /// The test chips of each tile set in `sets`, mapped and scored together per set as
    /// `terraseg evaluate --tiles` does (colour-coded masks through the model's colours).
    func testChipEvaluations(_ sets: [(TileSetSpec, [TileSplit.Chip])], bundle: ModelBundle) throws -> [MapEvaluator.Result] {
        var out: [MapEvaluator.Result] = []
        var predictor: ScenePredictor?
        for (t, chips) in sets {
            if predictor == nil {
                let model = NetworkSceneModel(bundle: bundle, network: try bundle.network(directory: bundlePath))
                predictor = try ScenePredictor(model: model, inputs: model.inputs, options: PredictionOptions())
            }
            log("evaluate: \(chips.count) test chip(s) of \(t.root)")
            let colors = t.maskColors ? (classMap: bundle.classes, ignore: try spec.data.ignoredMaskColors()) : nil
            out.append(try TestChipEvaluator.evaluate(chips, predictor: predictor!, ignore: spec.data.ignore, colors: colors, remap: try labelRemap(),
                                                      name: "\(chips.count) test chips of \(t.root)", labels: t.mask))
        }
        return out
    }

    /// `data.remap`, applied to labels before they are scored.
    func labelRemap() throws -> LabelRemap? {
        spec.data.remap.isEmpty ? nil : try LabelRemap(rules: spec.data.remap.map { ($0.from, $0.to) }, ignore: spec.data.ignore)
    }

    /// The pixels of `map` to score: with `evaluation.region: validation`, only where the split
    /// validates (a scene without a role under a split); nil = every pixel.
    func evaluationRegion(map: String, role: String?) throws -> ((Int, Int) -> Bool)? {
        guard spec.evaluation.region == .validation, role != "validation", spec.tiling.split.method != .none else { return nil }
        let info = try Dataset(path: map).info
        let w = info.width, h = info.height
        let split = spec.tiling.split.spatialSplit(patchSize: spec.tiling.patch, seed: spec.training.seed)
        return { c, r in split.role(column: c, row: r, width: w, height: h) == .validation }
    }

    func predictionOptions() throws -> PredictionOptions {
        var options = spec.prediction.options
        options.memoryBudget = MemoryBudget.streamBytes(memory: spec.memory)
        if let architecture = try? spec.model.architecture(inputChannels: 1, classes: 2),
           let note = options.windowsForBf16(spec.prediction.bf16Effective, architecture) { log("predict: " + note) }
        return options
    }

    /// A fingerprint of settings and input files: path and content identity (`FileIdentity`:
    /// size, modification time and a hash of sampled blocks), so a file rewritten in place counts.
    /// Tile-set `chips` come by the thousand: `FileIdentity.ofChip`.
    func stamp<A: Encodable, B: Encodable>(sections: [A], extra: [B], files: [String], chips: [String] = []) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var text = sections.map { String(decoding: (try? encoder.encode($0)) ?? Data(), as: UTF8.self) }.joined()
        text += extra.map { String(decoding: (try? encoder.encode($0)) ?? Data(), as: UTF8.self) }.joined()
        for f in files { text += "|\(f):\(FileIdentity.of(f))" }
        for f in chips { text += "|\(f):\(FileIdentity.ofChip(f))" }
        return String(fingerprint(text), radix: 16)
    }
}

struct TrainingSection: Encodable {
    var model: ModelSpec
    var options: TrainingOptions
}

/// Stage fingerprints of a run directory.
struct Stamps {
    var values: [String: String] = [:]
    subscript(_ k: String) -> String? {
        get { values[k] }
        set { values[k] = newValue }
    }

    static func read(_ path: String) -> Stamps {
        guard let d = FileManager.default.contents(atPath: path), let v = try? JSONDecoder().decode([String: String].self, from: d) else { return Stamps() }
        return Stamps(values: v)
    }

    func write(_ path: String) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(e.encode(values), to: path)
    }
}
