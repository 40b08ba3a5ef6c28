import ArgumentParser
import Core
import Distributed
import Foundation
import GeoRaster
import Inference
import Metrics
import ModelIO
import Tiling
import Training

extension TerraSegCommand {
    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Score a class map against reference labels on the same grid, or a model on a tile set's test chips.",
            discussion: """
                Prints the confusion matrix, overall accuracy, Cohen's kappa, per-class precision, recall, \
                F1 and IoU, and the mean IoU. Label nodata and --ignore values are skipped; labelled pixels \
                the map leaves as nodata are counted apart and not scored. With --model and --tiles (and \
                --tile-images, --tile-mask, --tile-split lists:… or folders) every test chip is mapped and \
                the scores are over the pixels of all test chips together.
                """)

        @Option(help: "The predicted class map (GeoTIFF).")
        var prediction: String?

        @Option(help: "The reference label raster, on the map's grid.")
        var labels: String?

        @Option(help: "A model bundle to score on the test chips of --tiles.")
        var model: String?

        @OptionGroup var tileSet: TileSetOptions

        @Option(name: .customLong("ignore"), parsing: .unconditionalSingleValue,
                help: "Label values to skip (repeatable, or comma-separated), e.g. --ignore 0 --ignore -1; colours of colour-coded masks quoted: --ignore '#000000'.",
                transform: IgnoreList.parse)
        var ignoreLists: [IgnoreList] = []

        var ignore: [Int] { ignoreLists.flatMap(\.values) }
        var ignoreColors: [String] { ignoreLists.flatMap(\.colors) }

        @Flag(help: "Print one JSON object instead of text.")
        var json = false

        @OptionGroup var global: GlobalOptions

        /// Under mpirun/srun rank 0 alone evaluates and prints, as in `terraseg run` (an evaluation
        /// reads the map once, a small part of predicting it); the other ranks wait for it and exit 0.
        /// A failure on rank 0 ends them (MPI_Abort); an interruption leaves without MPI_Finalize.
        func run() throws {
            global.bootstrapLogging()
            let world = try Communicator.world()
            guard world.isRoot else { return try world.barrier() }
            do {
                try evaluate()
            } catch let code as ExitCode {
                world.abandon()  // the other ranks wait at the barrier
                throw code
            }
            try world.barrier()
        }

        private func evaluate() throws {
            let result: MapEvaluator.Result
            switch (prediction, labels, model, try tileSet.spec()) {
            case let (prediction?, labels?, nil, nil):
                if !ignoreColors.isEmpty { throw ValidationError("--ignore \(ignoreColors[0]): colours are ignored only in colour-coded tile masks (--tile-mask-colors)") }
                result = try stoppable { try MapEvaluator.evaluate(prediction: prediction, labels: labels, ignore: ignore) }
            case let (nil, nil, model?, tiles?):
                if !tiles.maskColors && !ignoreColors.isEmpty {
                    throw ValidationError("--ignore \(ignoreColors[0]): colours are ignored only in colour-coded masks; add --tile-mask-colors or give label values")
                }
                result = try stoppable { try TestChips.evaluate(model: model, tiles: tiles, ignore: ignore, ignoreColors: ignoreColors) }
            default:
                throw ValidationError("give --prediction and --labels (a map), or --model and --tiles with --tile-images, --tile-mask and --tile-split (a tile set's test chips)")
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(result), as: UTF8.self))
            } else {
                print(EvaluationText.render(result))
            }
        }
    }
}

/// The test chips of a tile set given by flags, scored by `TestChipEvaluator`.
enum TestChips {
    static func evaluate(model: String, tiles: TileSetSpec, ignore: [Int], ignoreColors: [String] = []) throws -> MapEvaluator.Result {
        guard let split = tiles.split, split.method != "hash" else {
            throw ValidationError("a seeded hash split has no test chips: give --tile-split lists:TRAIN,VALIDATION,TEST or folders")
        }
        let (all, _) = try split.split(validationFraction: 0, seed: 0, resolve: { $0 })
            .chips(root: tiles.root, images: tiles.images, mask: tiles.mask)
        let chips = all.filter { $0.part == .test }
        guard !chips.isEmpty else {
            throw TerraSegError(.invalidArgument, path: tiles.root, problem: "the split has no test chip",
                                hint: "Give a test list (--tile-split lists:TRAIN,VALIDATION,TEST) or a test/ folder")
        }
        let bundle = try ModelBundle.readChecked(model)
        let network = NetworkSceneModel(bundle: bundle, network: try bundle.network(directory: model))
        let predictor = try ScenePredictor(model: network, inputs: network.inputs, options: PredictionOptions())
        FileHandle.standardError.write(Data("Mapping \(chips.count) test chip(s) of \(tiles.root)\n".utf8))
        // Colour-coded masks are mapped by the colours of the model's classes, as in training.
        let colors = tiles.maskColors ? (classMap: bundle.classes, ignore: ignoreColors.compactMap(RGBA.init(hex:))) : nil
        return try TestChipEvaluator.evaluate(chips, predictor: predictor, ignore: ignore, colors: colors,
                                              name: "\(model) on \(chips.count) test chips of \(tiles.root)", labels: tiles.mask)
    }
}

/// The human-readable evaluation printed by `terraseg evaluate` (and reused by run reports).
enum EvaluationText {
    static func render(_ r: MapEvaluator.Result) -> String {
        let rep = r.report
        var lines: [String] = []
        lines.append("Prediction:  \(r.prediction)")
        lines.append("Labels:      \(r.labels)")
        var skipped = "\(fmtInt(r.ignoredPixels)) reference pixels skipped (nodata"
        if !r.ignoredValues.isEmpty { skipped += " or values " + r.ignoredValues.map(String.init).joined(separator: ", ") }
        skipped += ")"
        if r.unpredictedPixels > 0 { skipped += "; \(fmtInt(r.unpredictedPixels)) labelled pixels have no prediction" }
        lines.append("             " + skipped)
        lines.append("Pixels:      \(fmtInt(rep.pixels)) compared")
        lines.append("")
        lines.append("Overall accuracy \(f3(rep.overallAccuracy))   kappa \(f3(rep.kappa))   mean IoU \(f3(rep.meanIoU))   mean F1 \(f3(rep.meanF1))")
        lines.append("")
        var rows = [["Class", "Value", "Reference", "Predicted", "Precision", "Recall", "F1", "IoU"]]
        for c in rep.classes {
            rows.append([c.name, String(c.value), fmtInt(c.referencePixels), fmtInt(c.predictedPixels),
                         f3(c.precision), f3(c.recall), f3(c.f1), f3(c.iou)])
        }
        lines += table(rows)
        lines.append("")
        lines.append("Confusion matrix (rows: reference, columns: prediction)")
        var cm = [[""] + rep.classes.map { String($0.name.prefix(10)) }]
        for (i, row) in rep.confusionMatrix.enumerated() {
            cm.append([String(rep.classes[i].name.prefix(12))] + row.map(String.init))
        }
        lines += table(cm, rightAlignFrom: 1)
        return lines.joined(separator: "\n")
    }

    static func table(_ rows: [[String]], rightAlignFrom: Int = 1) -> [String] {
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { r in
            r.enumerated().map { i, s in
                let pad = String(repeating: " ", count: widths[i] - s.count)
                return i >= rightAlignFrom ? pad + s : s + pad
            }.joined(separator: "  ")
        }
    }

    static func f3(_ v: Double) -> String { v.isNaN ? "-" : String(format: "%.3f", v) }
    static func fmtInt(_ v: Int) -> String {
        let s = String(v)
        var out = ""
        for (i, ch) in s.reversed().enumerated() {
            if i > 0, i % 3 == 0, ch != "-" { out.append(",") }
            out.append(ch)
        }
        return String(out.reversed())
    }
}
