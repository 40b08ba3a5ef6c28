import Core
import Foundation
import GeoRaster
import Metrics
import Tiling

/// Compares a class map with a reference label raster on the same grid, streaming both in
/// strips: confusion matrix, overall accuracy, kappa, per-class precision, recall, F1, IoU.
public enum MapEvaluator {
    public struct Result: Codable, Sendable {
        public var prediction: String
        public var labels: String
        public var ignoredValues: [Int]
        /// Reference pixels skipped: label nodata, masked, or an ignore value.
        public var ignoredPixels: Int
        /// Labelled pixels where the prediction is nodata (not counted in the scores).
        public var unpredictedPixels: Int
        public var report: SegmentationReport

        enum CodingKeys: String, CodingKey {
            case prediction, labels, ignoredValues = "ignored_values", ignoredPixels = "ignored_pixels"
            case unpredictedPixels = "unpredicted_pixels", report
        }
    }

    /// `include(column, row)`, when given, limits the scores to some pixels (e.g. the
    /// validation part of a spatial split); the others count as skipped. `remap` rewrites the
    /// label values first, as training did (`data.remap`).
    public static func evaluate(prediction: String, labels: String, ignore: [Int] = [],
                                predictionBand: Int = 1, labelBand: Int = 1, remap: LabelRemap? = nil,
                                include: ((Int, Int) -> Bool)? = nil) throws -> Result {
        var tally = Tally(ignore: ignore)
        try tally.add(prediction: prediction, labels: labels, predictionBand: predictionBand, labelBand: labelBand, remap: remap,
                      include: include)
        return try tally.result(prediction: prediction, labels: labels, predictionBand: predictionBand, namesFrom: prediction)
    }

    /// One score over several maps and their labels (e.g. every test chip of a tile set):
    /// the pixels of all pairs are counted together. `prediction` and `labels` name the set.
    /// `openLabels` reads a labels file as label values for a map (e.g. a colour-coded mask
    /// through `ColorMask`); nil reads band 1 of the file.
    public static func evaluate(pairs: [(prediction: String, labels: String)], ignore: [Int] = [], remap: LabelRemap? = nil,
                                prediction: String, labels: String, openLabels: LabelOpener? = nil) throws -> Result {
        var tally = Tally(ignore: ignore)
        for p in pairs { try tally.add(prediction: p.prediction, labels: p.labels, remap: remap, openLabels: openLabels) }
        return try tally.result(prediction: prediction, labels: labels, namesFrom: pairs.first?.prediction)
    }

    /// Opens the labels file (first argument) as label values for the map whose info is given.
    public typealias LabelOpener = (String, RasterInfo) throws -> any RasterSource

    /// Counts of (reference value, predicted value) pairs, streamed strip by strip.
    struct Tally {
        let ignore: Set<Int>
        var ignoreList: [Int]
        var dense = [Int](repeating: 0, count: 256 * 256)
        var sparse: [Int64: Int] = [:]
        var ignored = 0, unpredicted = 0

        init(ignore: [Int]) {
            self.ignore = Set(ignore)
            ignoreList = ignore.sorted()
        }

        mutating func add(prediction: String, labels: String, predictionBand: Int = 1, labelBand: Int = 1,
                          remap: LabelRemap? = nil, include: ((Int, Int) -> Bool)? = nil, openLabels: LabelOpener? = nil) throws {
            let pred = try Dataset(path: prediction)
            let ref: any RasterSource = try openLabels?(labels, pred.info) ?? Dataset(path: labels)
            // An opener puts the labels on the map's grid itself (warped, or a plain mask of its size).
            let diffs = openLabels == nil ? pred.info.grid.differences(from: ref.info.grid) : []
            if !diffs.isEmpty {
                throw RasterError(.gridMismatch, path: labels,
                                  problem: "not on the grid of the prediction \(prediction): " + diffs.joined(separator: "; "),
                                  hint: "Evaluate on the same grid: predict on the label raster's grid, or resample the labels with `gdalwarp -r near` onto the map's grid")
            }
            _ = try pred.resolveBands([predictionBand])
            _ = try ref.resolveBands([labelBand])
            let w = pred.info.width, h = pred.info.height
            var pb = RasterBlock(), lb = RasterBlock()
            let rowsPerStrip = max(1, 1_048_576 / max(1, w))
            for row in stride(from: 0, to: h, by: rowsPerStrip) {
                try StopSignal.check()
                let win = Window(column: 0, row: row, width: w, height: min(rowsPerStrip, h - row))
                try pred.read(window: win, bands: [predictionBand], into: &pb)
                try ref.read(window: win, bands: [labelBand], into: &lb)
                try remap?.apply(to: &lb, labelPath: labels)
                for i in 0..<win.pixelCount {
                    let lv = lb.values[i]
                    guard lb.valid[i] != 0 else { ignored += 1; continue }
                    if let include, !include(i % w, row + i / w) { ignored += 1; continue }
                    guard lv == lv.rounded() else {
                        throw RasterError(.invalidArgument, path: labels, band: labelBand,
                                          problem: "value \(lv) at column \(i % w), row \(row + i / w) is not a class value",
                                          hint: "A label raster holds integer class values")
                    }
                    let t = Int(lv)
                    if ignore.contains(t) { ignored += 1; continue }
                    guard pb.valid[i] != 0 else { unpredicted += 1; continue }
                    let p = Int(pb.values[i])
                    if t >= 0, t < 256, p >= 0, p < 256 {
                        dense[t * 256 + p] += 1
                    } else {
                        sparse[Int64(t) << 32 | Int64(UInt32(truncatingIfNeeded: p)), default: 0] += 1
                    }
                }
            }
        }

        /// The scores; class names from the category names of `namesFrom`'s band (a map; nil: "class V").
        func result(prediction: String, labels: String, predictionBand: Int = 1, namesFrom: String? = nil) throws -> Result {
            // Classes: every value seen in the reference or the prediction.
            var pairs: [(Int, Int, Int)] = []
            for t in 0..<256 { for p in 0..<256 where dense[t * 256 + p] > 0 { pairs.append((t, p, dense[t * 256 + p])) } }
            for (k, n) in sparse { pairs.append((Int(k >> 32), Int(Int32(truncatingIfNeeded: k)), n)) }
            let values = Array(Set(pairs.flatMap { [$0.0, $0.1] })).sorted()
            let index = Dictionary(uniqueKeysWithValues: values.enumerated().map { ($1, $0) })
            var matrix = ConfusionMatrix(classCount: max(1, values.count))
            for (t, p, n) in pairs { matrix.add(truth: index[t]!, predicted: index[p]!, count: n) }
            let categories = try namesFrom.map { try Dataset(path: $0).info.bands[predictionBand - 1].categoryNames } ?? []
            let names = values.map { v in v >= 0 && v < categories.count && !categories[v].isEmpty ? categories[v] : "class \(v)" }
            return Result(prediction: prediction, labels: labels, ignoredValues: ignoreList, ignoredPixels: ignored,
                          unpredictedPixels: unpredicted,
                          report: SegmentationReport(matrix: matrix, values: values.isEmpty ? [0] : values,
                                                     names: names.isEmpty ? ["none"] : names))
        }
    }
}
