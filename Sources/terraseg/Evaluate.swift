import ArgumentParser
import Core
import Foundation
import GeoRaster
import Inference
import Metrics

extension TerraSegCommand {
    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Score a class map against reference labels on the same grid.",
            discussion: """
                Prints the confusion matrix, overall accuracy, Cohen's kappa, per-class precision, recall, \
                F1 and IoU, and the mean IoU. Label nodata and --ignore values are skipped; labelled pixels \
                the map leaves as nodata are counted apart and not scored.
                """)

        @Option(help: "The predicted class map (GeoTIFF).")
        var prediction: String

        @Option(help: "The reference label raster, on the map's grid.")
        var labels: String

        @Option(name: .customLong("ignore"), help: "A label value to skip (repeatable), e.g. --ignore 0 --ignore -1.")
        var ignore: [Int] = []

        @Flag(help: "Print one JSON object instead of text.")
        var json = false

        @OptionGroup var global: GlobalOptions

        func run() throws {
            global.bootstrapLogging()
            let result = try stoppable { try MapEvaluator.evaluate(prediction: prediction, labels: labels, ignore: ignore) }
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
