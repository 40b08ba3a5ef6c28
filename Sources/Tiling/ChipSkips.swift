import Foundation
import GeoRaster

/// Tile-set chips that cannot give a training patch (unreadable, too small, too much nodata):
/// they are skipped and counted, the first few named with their reason; only a set with no
/// usable chip left is refused.
public struct ChipSkips: Sendable {
    public struct Skip: Sendable, Equatable {
        public var name: String
        public var reason: String
    }
    public private(set) var skipped: [Skip] = []
    /// How many skipped chips a notice names.
    public static let named = 5
    /// Errors that make one chip unusable (and are skipped) rather than the settings wrong.
    public static let unreadable: Set<RasterError.Kind> = [.notFound, .openFailed, .readFailed, .unsupportedType, .gridMismatch]

    public init() {}

    public var count: Int { skipped.count }

    public mutating func skip(_ name: String, reason: String) { skipped.append(Skip(name: name, reason: reason)) }

    /// One line: "skipped 3 of 28 chips (…): a (reason), b (reason), …"; nil when none was skipped.
    public func notice(of total: Int, what: String) -> String? {
        guard !skipped.isEmpty else { return nil }
        let names = skipped.prefix(ChipSkips.named).map { "\($0.name) (\($0.reason))" }.joined(separator: "; ")
        let more = count > ChipSkips.named ? "; and \(count - ChipSkips.named) more" : ""
        return "skipped \(count) of \(total) chips \(what): \(names)\(more)"
    }

    /// The error when no chip is left (`kind`: "training " when the validation chips are usable).
    public func refusal(of total: Int, what: String, path: String, kind: String = "") -> RasterError {
        RasterError(.invalidArgument, path: path, problem: "none of the \(total) \(kind)chips is usable: " + (notice(of: total, what: what) ?? ""),
                    hint: "Check the chips named, their nodata values (`terraseg info`), --max-invalid (tiling.max_invalid) and --patch-size (tiling.patch)"
                        + (kind.isEmpty ? "" : ", or list more training chips"))
    }

    /// The usable patches of all `scenes`: a chip with none is skipped (counted in the result),
    /// any other scene with none is refused, as is a set of chips of which none is usable.
    public static func candidatePatches(of scenes: [LabelledScene], patchSize: Int, stride: Int, split: SpatialSplit,
                                        minLabelledFraction: Double) throws -> (refs: [PatchRef], skips: ChipSkips) {
        var refs: [PatchRef] = [], skips = ChipSkips()
        for (i, s) in scenes.enumerated() {
            guard s.chip else {
                refs += try s.candidatePatches(sceneIndex: i, patchSize: patchSize, stride: stride, split: split,
                                               minLabelledFraction: minLabelledFraction)
                continue
            }
            do {
                let scan = try s.usablePatches(sceneIndex: i, patchSize: patchSize, stride: stride, split: split,
                                               minLabelledFraction: minLabelledFraction)
                if let problem = scan.problem { skips.skip(s.name, reason: problem) } else { refs += scan.refs }
            } catch let e as RasterError where unreadable.contains(e.kind) {
                skips.skip(s.name, reason: e.problem)
            }
        }
        let chips = scenes.filter(\.chip)
        if !chips.isEmpty && skips.count == chips.count && chips.count == scenes.count {
            throw skips.refusal(of: chips.count, what: "that give no patch", path: chips[0].image.info.path)
        }
        // Chips that train, all skipped, while validation chips are usable: say so (not that the
        // split gave every patch to validation).
        let training = Set(chips.filter { $0.role == .train }.map(\.name))
        let skippedTraining = skips.skipped.filter { training.contains($0.name) }
        if !training.isEmpty && skippedTraining.count == training.count && !refs.contains(where: { $0.role == .train }) {
            var only = ChipSkips()
            only.skipped = skippedTraining
            throw only.refusal(of: training.count, what: "that give no patch", path: chips[0].image.info.path, kind: "training ")
        }
        return (refs, skips)
    }
}
