import Core
import Foundation
import GeoRaster
import Testing
import TestSupport
@testable import Tiling

@Suite struct LabelRemapTests {
    let dir = TemporaryDirectory("terraseg-remap")

    /// Labels 1 and 2 become class "wet" (1), 3 becomes "dry" (2): many-to-one, before the
    /// class map reads them; 0 is ignored. Without the remap, value 3 is not a class.
    @Test func remapRewritesLabelsBeforeTheClassMap() throws {
        let s = try SyntheticScene(in: dir.path, width: 96, height: 80)
        let classes = try ClassMap(values: [(1, "wet"), (2, "dry")], ignoreValues: [0])
        let scene = try LabelledScene(image: Dataset(path: s.image), labels: Dataset(path: s.labels), classMap: classes)
        var patch = Patch()
        let all = Window(width: 96, height: 80)
        #expect(throws: RasterError.self) { try scene.readPatch(all, normalizer: nil, into: &patch) }
        scene.remap = try LabelRemap(rules: [(from: [1, 2], to: 1), (from: [3], to: 2)], ignore: [0])
        try scene.readPatch(all, normalizer: nil, into: &patch)
        for r in 0..<80 {
            for c in 0..<96 {
                let expected: Int32
                switch s.label(column: c, row: r) {
                case 1, 2: expected = 0
                case 3: expected = 1
                default: expected = -1
                }
                #expect(patch.target[r * 96 + c] == expected, "column \(c), row \(r)")
            }
        }
    }

    /// A labelled value no rule maps is an error naming the value, the file and both fixes;
    /// a value in two rules with different targets is refused.
    @Test func unmappedValuesAreRefused() throws {
        let s = try SyntheticScene(in: dir.path, width: 96, height: 80)
        let classes = try ClassMap(values: [(1, "wet"), (2, "dry")], ignoreValues: [0])
        let scene = try LabelledScene(image: Dataset(path: s.image), labels: Dataset(path: s.labels), classMap: classes)
        scene.remap = try LabelRemap(rules: [(from: [1, 2], to: 1)], ignore: [0])
        var patch = Patch()
        let error = #expect(throws: RasterError.self) { try scene.readPatch(Window(width: 96, height: 80), normalizer: nil, into: &patch) }
        let text = error?.description ?? ""
        #expect(text.contains("label value 3") && text.contains("has no remap rule") && text.contains("data.remap") && text.contains("data.ignore"), "\(text)")
        #expect(text.contains("_labels.tif"), "\(text)")
        let twice = #expect(throws: TerraSegError.self) { try LabelRemap(rules: [(from: [1], to: 1), (from: [1, 3], to: 2)]) }
        #expect(twice?.description.contains("label value 1 is mapped both to 1 and to 2") == true, "\(String(describing: twice))")
    }

    /// The sparse-label error names the flag and key to change, and the direction.
    @Test func sparseLabelErrorNamesMaxInvalid() throws {
        let s = try SyntheticScene(in: dir.path, width: 96, height: 80)
        let scene = try LabelledScene(image: Dataset(path: s.image), labels: Dataset(path: s.labels), classMap: TinyModel.classMap)
        let error = #expect(throws: RasterError.self) {
            try scene.candidatePatches(sceneIndex: 0, patchSize: 80, stride: 16, split: .none, minLabelledFraction: 1)
        }
        #expect(error?.description.contains("Raise --max-invalid (tiling.max_invalid, now 0) towards 1") == true, "\(String(describing: error))")
    }
}

@Suite struct PatchOwnershipTests {
    /// Overlapping patches (32 px every 16 px) on two scenes: every covered pixel is owned by
    /// exactly one patch of its scene, and owned pixels form the 16-px cores around centres.
    @Test func everyCoveredPixelHasOneOwner() {
        var refs: [PatchRef] = []
        for scene in 0..<2 {
            for r in stride(from: 0, through: 64, by: 16) {
                for c in stride(from: 0, through: 48, by: 16) {
                    refs.append(PatchRef(scene: scene, window: Window(column: c, row: r, width: 32, height: 32), role: .validation, labelledFraction: 1))
                }
            }
        }
        let ownership = PatchOwnership(refs: refs)
        var owners = [[Int]](repeating: [Int](repeating: 0, count: 80 * 96), count: 2)
        var covered = owners
        var mask: [UInt8] = []
        for (i, ref) in refs.enumerated() {
            ownership.ownedMask(i, into: &mask)
            for y in 0..<32 {
                for x in 0..<32 {
                    let p = (ref.window.row + y) * 80 + ref.window.column + x
                    covered[ref.scene][p] += 1
                    owners[ref.scene][p] += Int(mask[y * 32 + x])
                }
            }
        }
        for scene in 0..<2 {
            #expect(covered[scene].max() == 4, "patches overlap up to 4×")
            #expect(zip(covered[scene], owners[scene]).allSatisfy { $0 == 0 ? $1 == 0 : $1 == 1 })
        }
        // An inner patch owns its central 16×16 core.
        let inner = refs.firstIndex { $0.scene == 0 && $0.window.column == 16 && $0.window.row == 16 }!
        ownership.ownedMask(inner, into: &mask)
        #expect(mask.reduce(0) { $0 + Int($1) } == 256)
        #expect(mask[8 * 32 + 8] == 1 && mask[23 * 32 + 23] == 1 && mask[7 * 32 + 8] == 0)
    }
}
