import Core
import Foundation
import GeoRaster
import Tiling

/// A model scored on tile-set chips (the test part of a `TileSplit`): each chip is mapped into
/// a temporary folder (removed afterwards), then the pixels of all chips are scored together
/// by `MapEvaluator` against the chips' masks.
public enum TestChipEvaluator {
    /// `name` and `labels` describe the set in the result (e.g. "MODEL on 40 test chips of ROOT").
    /// Masks are read as in training: colour-coded ones through `ColorMask` (with `colors`, the
    /// model's classes and the colours to ignore), plain ones of the chip's size on its pixel grid.
    public static func evaluate(_ chips: [TileSplit.Chip], predictor: ScenePredictor, ignore: [Int],
                                colors: (classMap: ClassMap, ignore: [RGBA])? = nil, remap: LabelRemap? = nil,
                                name: String, labels: String) throws -> MapEvaluator.Result {
        let maps = FileManager.default.temporaryDirectory.appendingPathComponent("terraseg-test-maps-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: maps) }
        let jobs = chips.enumerated().map { SceneJob(paths: $1.set.imagePaths($1.id), outputName: "chip\($0)") }
        let reports = try predictor.run(jobs: jobs, directory: maps)
        var pairs: [(prediction: String, labels: String)] = []
        for (chip, r) in zip(chips, reports) {
            if case .failed(let why) = r.status {
                throw TerraSegError(.invalidArgument, path: chip.set.imagePaths(chip.id)[0], problem: "the test chip could not be mapped: \(why)",
                                    hint: "Check the chip with `terraseg info`")
            }
            pairs.append((r.outputs.map, chip.set.maskPath(chip.id)))
        }
        return try MapEvaluator.evaluate(pairs: pairs, ignore: ignore, remap: remap, prediction: name, labels: labels) { path, map in
            let mask = try Dataset(path: path)
            let values: any RasterSource = try colors.map { try ColorMask(mask, classMap: $0.classMap, ignore: $0.ignore) } ?? mask
            return try LabelledScene.onImageGrid(values, image: map)
        }
    }
}
