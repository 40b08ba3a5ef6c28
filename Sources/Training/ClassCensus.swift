import Core
import GeoRaster
import Tiling

/// Per-class pixel counts of the training and validation areas, taken before the first
/// epoch. Each pixel is counted once (`PatchOwnership`), however many patches cover it.
struct ClassCensus: Equatable {
    var train: [Int]
    var validation: [Int]

    init(train: [Int], validation: [Int]) {
        self.train = train
        self.validation = validation
    }

    /// Counts the labelled pixels of `train` and `validation` patches per class.
    init(scenes: [LabelledScene], train: [PatchRef], validation: [PatchRef], classes: Int) throws {
        self.train = try ClassCensus.count(scenes: scenes, refs: train, classes: classes)
        self.validation = try ClassCensus.count(scenes: scenes, refs: validation, classes: classes)
    }

    static func count(scenes: [LabelledScene], refs: [PatchRef], classes: Int) throws -> [Int] {
        let ownership = PatchOwnership(refs: refs)
        var counts = [Int](repeating: 0, count: classes)
        var patch = Patch(), owned: [UInt8] = []
        for (i, r) in refs.enumerated() {
            try scenes[r.scene].readPatch(r.window, normalizer: nil, into: &patch)
            ownership.ownedMask(i, into: &owned)
            for (p, t) in patch.target.enumerated() where t >= 0 && owned[p] != 0 { counts[Int(t)] += 1 }
        }
        return counts
    }

    /// The table printed before training: one line per class.
    func table(names: [String]) -> [String] {
        let width = max(5, names.map(\.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }
        var out = ["Labelled pixels per class (each pixel once):", "  " + "class".padding(toLength: width, withPad: " ", startingAt: 0)
                   + pad("training", 12) + pad("validation", 12)]
        for (i, n) in names.enumerated() {
            out.append("  " + n.padding(toLength: width, withPad: " ", startingAt: 0) + pad(String(train[i]), 12) + pad(String(validation[i]), 12))
        }
        return out
    }

    /// Classes the model cannot learn from these areas, one line each.
    func warnings(names: [String]) -> [String] {
        names.enumerated().compactMap { i, n in
            guard train[i] == 0 else { return nil }
            if validation[i] > 0 {
                return "class '\(n)' has \(validation[i]) pixels in the validation area but none in the training area: the model cannot learn it, and its validation IoU will be 0; change the split (--split, tiling.split) or add training labels of '\(n)'"
            }
            return "class '\(n)' has no labelled pixel in the training or validation areas: the model will never predict it; check its label value, or remove the class"
        }
    }

    /// Refuses training data in which one class holds every labelled training pixel.
    func checkSeveralClasses(names: [String], path: String) throws {
        let present = train.indices.filter { train[$0] > 0 }
        guard present.count == 1, let only = present.first else { return }
        throw RasterError(.invalidArgument, path: path,
                          problem: "every labelled training pixel (\(train[only])) is class '\(names[only])': a model cannot learn to tell classes apart from one class",
                          hint: "Label pixels of at least one other class; with vector labels of one class, set background: to the class of the pixels outside the polygons")
    }
}
