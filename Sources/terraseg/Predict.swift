import ArgumentParser
import Core
import Distributed
import Foundation
import GeoRaster
import Inference
import ModelIO
import Models
import Pipeline
import Training

extension TerraSegCommand {
    struct Predict: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Map whole scenes with a trained model into georeferenced class maps.",
            discussion: """
                Inputs: paths, folders of chips (their .tif, .png, .jpg, .jp2, .img and .vrt files; a folder of band files when the model names its bands), globs ('scenes/*.tif'), @list.txt (one scene per line), or band files of one \
                scene joined by commas; NAME=… names one scene's outputs (default: the file name, or the product \
                id that band files share). Each scene becomes DIR/<name>_map.tif (Byte class values, nodata 255, \
                colour table, class names, overviews) with its QGIS style DIR/<name>_map.qml, plus _probabilities.tif, \
                _confidence.tif and the class polygons _map.gpkg on request. \
                Scenes stream in full-width strips, each feature computed once, and the map equals a prediction \
                of the whole scene at once. With --blend centre (and for models with learned upsampling, or --tta) \
                windows overlap by a margin and only their centres are written: exact too at the default margin (the \
                model's receptive-field radius); a smaller --margin is faster but may show seams. When several maps are georeferenced in one CRS, \
                DIR/mosaic.vrt joins them (a GDAL VRT; open it as one map; mosaic.qml styles it). \
                A scene may be a local STAC Item (item.json) whose assets are its band files, picked by --bands \
                (default: the model's band names). Every map gets a STAC Item beside it (<name>_map.stac.json).
                """)

        @Option(name: .long, help: "The model bundle directory (from terraseg train).")
        var model: String

        @Option(name: .long, parsing: .upToNextOption, help: "Scenes to map.")
        var input: [String]

        @Option(name: .long, help: "Output directory.")
        var output: String

        @Option(help: "STAC Item inputs: the assets to stack, by asset key or band name (eo:bands), in order, e.g. B04,B03,B02,B08 (default: the model's band names).",
                transform: NameList.parse)
        var bands: [String]?

        @Option(help: keyHelp("Core tile size in pixels (rounded up to the model's alignment).", key: "prediction.tile", showDefault: false))
        var tile = PredictionSpec().tile

        @Option(help: keyHelp("Context around each tile in pixels (exact at the default).", key: "prediction.margin"))
        var margin: Int?

        @Option(name: .customLong("batch-size"), help: keyHelp("Windows per network call.", key: "prediction.batch_size", showDefault: false))
        var batchSize = PredictionSpec().batchSize

        @Option(help: keyHelp("stream (default): full-width strips, each feature computed once, equals one window over the scene (models with learned upsampling, and --tta, use centre); centre: write each window's core (tile, margin; equals predicting the scene at once); hann: weighted mean of overlapping windows.",
                             key: "prediction.blend", showDefault: false))
        var blend = PredictionSpec().blend

        @Flag(help: keyHelp("Average scores over the 8 flips and rotations (8× slower).", key: "prediction.tta", showDefault: false))
        var tta = PredictionSpec().tta

        @Flag(help: keyHelp("Write a Cloud-Optimised GeoTIFF.", key: "prediction.cog", showDefault: false))
        var cog = PredictionSpec().cog

        @Flag(help: keyHelp("Also write per-class probabilities (Byte 0-255).", key: "prediction.probabilities", showDefault: false))
        var probabilities = PredictionSpec().probabilities

        @Flag(help: keyHelp("Also write the maximum class probability (Byte 0-255).", key: "prediction.confidence", showDefault: false))
        var confidence = PredictionSpec().confidence

        @Flag(name: .customLong("allow-mismatch"),
              help: keyHelp("Map scenes whose data type family or pixel size differ from the training scenes', with a warning.",
                            key: "prediction.allow_mismatch", showDefault: false))
        var allowMismatch = PredictionSpec().allowMismatch

        @Option(name: .customLong("min-mapping-unit"),
                help: keyHelp("Class patches smaller than this many pixels take their largest neighbour's class (0: none).",
                              key: "prediction.min_mapping_unit", showDefault: false))
        var minMappingUnit = PredictionSpec().minMappingUnit

        @Option(name: .customLong("mmu-connectedness"),
                help: keyHelp("Pixels joined into one patch: 4 (edges) or 8 (edges and corners).", key: "prediction.mmu_connectedness", showDefault: false))
        var mmuConnectedness = PredictionSpec().mmuConnectedness

        @Flag(help: keyHelp("Also write the map's class polygons beside it (X_map.gpkg).", key: "prediction.polygons", showDefault: false))
        var polygons = PredictionSpec().polygons

        @Option(name: .customLong("polygon-simplify"),
                help: keyHelp("Simplification tolerance of the polygons in CRS units (0: pixel edges).", key: "prediction.polygon_simplify"))
        var polygonSimplify: Double?

        @Flag(help: "Recompute scenes whose outputs already exist.")
        var overwrite = false

        @Option(help: "fp32 (default); bf16: bf16 convolutions with Float32 sums, needs AVX512_BF16 or AMX, predicts in windows; int8: int8 convolutions, needs a bundle from `terraseg quantize` and a CPU with VNNI; auto: int8 where both hold, else bf16 where the CPU has it, else fp32 (says which). bf16 keeps, per layer, the faster of bf16 and fp32 (measured at first use).")
        var precision = Precision.fp32

        @Option(help: keyHelp("GeoTIFF compression.", key: "prediction.compression", showDefault: false))
        var compression = PredictionSpec().compression

        @Option(help: keyHelp("Memory prediction may use, e.g. 8G: settings that need more are refused before any work; streaming strips stay within half of it and GDAL's cache within an eighth (at most 256 MB).", key: "memory"),
                transform: ByteSize.parse)
        var memory: Int?

        @OptionGroup var global: GlobalOptions

        /// The pipeline key each settings flag sets.
        static let flags = ["prediction.tile": "--tile", "prediction.margin": "--margin", "prediction.batch_size": "--batch-size",
                            "memory": "--memory", "prediction.min_mapping_unit": "--min-mapping-unit",
                            "prediction.polygon_simplify": "--polygon-simplify"]

        /// The flags as the pipeline's prediction section, range-checked by the schema.
        func settings() throws -> PredictionOptions {
            var spec = PredictionSpec()
            spec.tile = tile
            spec.margin = margin
            spec.batchSize = batchSize
            spec.blend = blend
            spec.tta = tta
            spec.cog = cog
            spec.probabilities = probabilities
            spec.confidence = confidence
            spec.compression = compression
            spec.allowMismatch = allowMismatch
            spec.minMappingUnit = minMappingUnit
            spec.mmuConnectedness = mmuConnectedness
            spec.polygons = polygons
            if let polygonSimplify { spec.polygonSimplify = polygonSimplify }
            var issues = spec.issues()
            if let memory, let issue = PipelineSchema.check("memory", Double(memory)) { issues.append(issue) }
            try SettingsRefused.check(issues, flags: Self.flags)
            var options = spec.options
            options.overwrite = overwrite
            options.memoryBudget = MemoryBudget.streamBytes(memory: memory)
            if let memory { GDALRuntime.limitCache(bytes: memory / 8) }
            return options
        }

        /// Prints "done/total unit (percent), ETA" on standard error: in place on a terminal (at
        /// most twice a second), else a line every 30 s, and always the last.
        private static func progressLine(unit: String) -> (Int, Int) -> Void {
            let terminal = isatty(STDERR_FILENO) != 0
            var lastReport = Date.distantPast, started = Date()
            return { done, total in
                if done <= 2 { started = Date() }
                let now = Date()
                guard now.timeIntervalSince(lastReport) > (terminal ? 0.5 : 30) || done == total else { return }
                lastReport = now
                let eta = done > 0 ? now.timeIntervalSince(started) / Double(done) * Double(total - done) : 0
                let line = String(format: "  %d/%d \(unit) (%.0f %%), ETA %.0f s", done, total, 100 * Double(done) / Double(max(1, total)), eta)
                FileHandle.standardError.write(Data((terminal ? "\r" + line : line + "\n").utf8))
                if terminal && done == total { FileHandle.standardError.write(Data("\n".utf8)) }
            }
        }

        func run() throws {
            global.bootstrapLogging()
            var options = try settings()
            let bundle = try ModelBundle.readChecked(model)
            _ = options.windowsForBf16(precision.effective(int8Ready: bundle.quantization != nil && Precision.int8Unavailable == nil) == .bf16, bundle.architecture).map { FileHandle.standardError.write(Data("Note: \($0)\n".utf8)) }
            try SettingsRefused.check(MemoryBudget(memory: memory).predictionIssues(bundle.architecture, tile: options.tileSize,
                                                                                    margin: options.margin, batch: options.batchSize,
                                                                                    blend: options.blend),
                                      flags: Self.flags)
            let built = try bundle.network(directory: model, precision: precision)
            if let notice = built.notice { FileHandle.standardError.write(Data((notice + "\n").utf8)) }
            let network = NetworkSceneModel(bundle: bundle, network: built.network)
            let predictor = try ScenePredictor(model: network, inputs: network.inputs, options: options)
            predictor.provenance = MapProvenance(bundle: bundle, directory: model, terrasegVersion: terrasegVersion)
            // Under mpirun/srun the scenes are shared among the ranks; rank 0 alone reports.
            let world = try Communicator.world()
            if world.isRoot { predictor.progress = Self.progressLine(unit: options.blend == .stream ? "strips" : "windows") }
            let jobs = try SceneJob.expand(input, foldersAreScenes: network.inputs.recipe?.bandNames != nil,
                                           stacBands: bands ?? network.inputs.recipe?.bandNames)
            if let bands, !jobs.contains(where: { $0.item != nil }) {
                throw TerraSegError(.invalidArgument, path: "--bands",
                                    problem: "picks a STAC Item's assets (\(bands.joined(separator: ","))), but no input is a STAC Item",
                                    hint: "Leave out --bands for band files (they are stacked in the order given), or give the scene's item.json")
            }
            let grid = predictor.grid(width: options.tileSize, height: options.tileSize)
            let cut = options.blend == .stream && !options.tta && network.bundle.architecture.windowsOnly == nil
                ? "full-width strips, each feature computed once"
                : "windows of \(grid.inputSize) px, \(grid.tileSize) px written from each (margin \(grid.margin) px; smaller for smaller scenes)"
            let ranks = world.size > 1 ? " on \(world.size) ranks" : ""
            if world.isRoot {
                FileHandle.standardError.write(Data("Mapping \(jobs.count) scene(s)\(ranks) with \(network.bundle.architecture.name): \(cut)\n".utf8))
                if let note = options.mapNote { FileHandle.standardError.write(Data("Each map: \(note)\n".utf8)) }
                if let note = options.streamingNote { FileHandle.standardError.write(Data("Note: \(note)\n".utf8)) }
            }
            var batch = BatchProgress(total: jobs.count)
            let reports = try stoppable { try predictor.run(jobs: jobs, directory: output, communicator: world) { r in
                FileHandle.standardError.write(Data((batch.line(for: r) + "\n").utf8))
            } }
            guard world.isRoot else { return }
            if let choice = Bf16Inference.summary(of: built.network) { FileHandle.standardError.write(Data((choice + "\n").utf8)) }
            print(PredictionSummary.render(reports))
            for r in reports { if let p = r.prediction?.polygons { print(String(format: "Polygons: %@ (%d, %.1f s)", p.path, p.polygons, p.seconds)) } }
            if let mosaic = try MapMosaic.write(reports, directory: output) {
                print(mosaic.summary)
                if let path = mosaic.path { try QGISStyle.write(classes: network.inputs.classMap.classes, besideMap: path) }
            }
            if reports.contains(where: { if case .failed = $0.status { return true } else { return false } }) {
                throw ExitCode(1)
            }
        }
    }
}

enum PredictionSummary {
    static func render(_ reports: [SceneReport]) -> String {
        var rows = [["Scene", "Status", "Size", "Seconds", "MP/s", "Map"]]
        for r in reports {
            let status: String
            switch r.status {
            case .written: status = "written"
            case .skipped: status = "skipped"
            case .failed: status = "failed"
            }
            let p = r.prediction
            let name = r.job.paths.count > 1 ? "\(r.job.stem) (\(r.job.paths.count) files)" : URL(fileURLWithPath: r.job.name).lastPathComponent
            rows.append([name, status,
                         p.map { "\($0.width)×\($0.height)" } ?? "-", p.map { String(format: "%.1f", $0.seconds) } ?? "-",
                         p.map { String(format: "%.3f", $0.megapixelsPerSecond) } ?? "-", r.outputs.map])
        }
        let done = reports.filter { $0.status == .written }.count, skipped = reports.filter { $0.status == .skipped }.count
        var out = EvaluationText.table(rows, rightAlignFrom: 99).joined(separator: "\n")
        out += "\n\(reports.count) scene(s): \(done) done, \(skipped) skipped, \(reports.count - done - skipped) failed"
        return out
    }
}
