import Core
import Engine
import Foundation
import ModelIO
import Models
import Testing
import TestSupport

/// The `quantization` section of model.json: written, read back, and checked on read like the
/// rest of the bundle (a step reaches a division; every layer listed once, in order).
@Suite struct QuantizationBundleTests {
    let dir = TemporaryDirectory("terraseg-qbundle")

    func bundle() throws -> (ModelBundle, String) {
        let scene = try SyntheticScene(in: dir.path, name: "s", width: 40, height: 40, bands: 4)
        let path = dir.file("model")
        var b = try TinyModel.seeded(scene, output: path)
        #expect(try ModelBundle.read(path).quantization == nil, "bundles without the section still load")
        let names = Int8Calibration.unitNames(b.architecture).dropFirst()
        b.quantization = ModelQuantization(architecture: b.architecture, steps: Dictionary(uniqueKeysWithValues: names.map { ($0, Float(0.5)) }),
                                           scenes: ["s.tif"], patches: 4)
        try b.write(network: b.network(directory: path), to: path)
        return (b, path)
    }

    @Test func roundTrips() throws {
        let (b, path) = try bundle()
        let read = try ModelBundle.read(path)
        #expect(read.quantization == b.quantization)
        #expect(read.quantization?.layers.map(\.name) == Int8Calibration.unitNames(b.architecture) + ["head"])
        let text = try String(contentsOfFile: path + "/model.json", encoding: .utf8)
        #expect(text.contains("\"input_step\""))
    }

    /// Damaged sections are refused with the layer and the problem named.
    @Test(arguments: [
        ("\"input_step\" : 0.5", "\"input_step\" : 0", "input_step 0.0; it must be finite and > 0"),
        ("\"input_step\" : 0.5", "\"input_step\" : -1", "input_step -1.0; it must be finite and > 0"),
        ("\"input_step\" : 0.5", "\"input_step\" : \"nan\"", "input_step nan"),
        ("\"precision\" : \"int8\"", "\"precision\" : \"int4\"", "precision 'int4'"),
        ("\"name\" : \"dec1.conv2\"", "\"name\" : \"dec1.conv9\"", "quantization: layers are"),
        ("\"calibration_patches\" : 4", "\"calibration_patches\" : 0", "calibration_patches is 0"),
    ])
    func damagedSectionsAreRefused(_ edit: (String, String, String)) throws {
        let (_, path) = try bundle()
        let json = path + "/model.json"
        let text = try String(contentsOfFile: json, encoding: .utf8)
        #expect(text.contains(edit.0), "fixture: \(edit.0) in model.json")
        try text.replacingOccurrences(of: edit.0, with: edit.1).write(toFile: json, atomically: true, encoding: .utf8)
        do {
            _ = try ModelBundle.read(path)
            Issue.record("read a bundle with \(edit.1)")
        } catch let e as TerraSegError {
            #expect(e.problem.contains(edit.2), "\(e.problem)")
        }
    }
}
