import Core
import Foundation
import ModelIO
import Pipeline
import Testing
import TestSupport

/// A bundle's model.json is range-checked by the rules of the YAML keys that set it, before
/// the network is built: an empty or negative `widths` stopped the process in the network's
/// constructor.
@Suite struct BundleSettingsTests {
    /// A seeded TinyModel bundle whose model.json's U-Net configuration went through `edit`.
    static func bundle(in dir: TemporaryDirectory, _ edit: (inout [String: Any]) -> Void) throws -> String {
        let scene = try SyntheticScene(in: dir.path, width: 40, height: 40, bands: 4)
        let model = dir.file("model")
        try TinyModel.seeded(scene, output: model)
        let path = model + "/model.json"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        var architecture = json["architecture"] as! [String: Any]
        var unet = architecture["unet"] as! [String: Any]
        edit(&unet)
        architecture["unet"] = unet
        json["architecture"] = architecture
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        return model
    }

    static let cases: [(edit: @Sendable (inout [String: Any]) -> Void, expected: String)] = [
        ({ $0["widths"] = [Int]() }, "model.widths is empty"),
        ({ $0["widths"] = [-8, 16] }, "model.widths[0] must be at least 1, got -8"),
        ({ $0["widths"] = [8, 100_000] }, "model.widths[1] must be at most 4096, got 100000"),
        ({ $0["widths"] = [Int](repeating: 16, count: 70) }, "model.widths has 70 levels, more than 12"),
        ({ $0["bottleneck_dilations"] = [Int]() }, "model.bottleneck_dilations is empty"),
        ({ $0["bottleneck_width"] = 0 }, "model.bottleneck_width must be at least 1, got 0"),
    ]

    @Test(arguments: cases.indices)
    func outOfRangeArchitectureIsRefusedNamingModelJSON(_ i: Int) throws {
        let dir = TemporaryDirectory()
        let model = try Self.bundle(in: dir, Self.cases[i].edit)
        let error = #expect(throws: TerraSegError.self) { try ModelBundle.readChecked(model) }
        #expect(error?.path == model + "/model.json")
        #expect(error?.description.contains(Self.cases[i].expected) == true, "\(error?.description ?? "no error")")
    }

    @Test func aGoodBundleOpens() throws {
        let dir = TemporaryDirectory()
        let model = try Self.bundle(in: dir) { _ in }
        #expect(try ModelBundle.readChecked(model).architecture.inputChannels == 4)
    }
}
