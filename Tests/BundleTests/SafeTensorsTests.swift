import Core
import Foundation
import GeoRaster
import ModelIO
import Models
import Testing
import TestSupport

@Suite struct SafeTensorsTests {
    @Test func roundTrip() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("w.safetensors")
        let a = SafeTensors.Entry(shape: [2, 1, 3, 3], values: (0..<18).map { Float($0) * 0.5 - 3 })
        let b = SafeTensors.Entry(shape: [5], values: [1, -2, .pi, 0, 1e-30])
        try SafeTensors.write([("enc1.conv1.weight", a), ("head.bias", b)], metadata: ["arch": "unet"], to: path)
        let (tensors, meta) = try SafeTensors.read(path)
        #expect(tensors["enc1.conv1.weight"] == a)
        #expect(tensors["head.bias"] == b)
        #expect(meta["arch"] == "unet")
        // Header is 8-byte aligned so the data can be memory-mapped.
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(n % 8 == 0)
    }

    @Test func readsWhatPythonWrote() throws {
        let (tensors, meta) = try SafeTensors.read(TestData.fixture("safetensors/python_written.safetensors"))
        #expect(tensors["enc1.conv1.weight"] == SafeTensors.Entry(shape: [2, 3], values: [0, 1, 2, 3, 4, 5]))
        #expect(tensors["head.bias"]?.values == [1.5, -2, 3.25, 0])
        #expect(meta["format"] == "terraseg-test")
    }

    @Test func truncatedFileIsAClearError() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("w.safetensors")
        try SafeTensors.write([("x", SafeTensors.Entry(shape: [100], values: [Float](repeating: 1, count: 100)))], to: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count - 40).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: TerraSegError.self) { try SafeTensors.read(path) }
        #expect(error?.description.contains("not a valid safetensors file") == true)
        #expect(error?.description.contains("'x'") == true)
    }
}
