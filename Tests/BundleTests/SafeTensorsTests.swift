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

    /// I64 scalars (PyTorch's num_batches_tracked, shape [] or [1]) are written before the F32
    /// tensors and read back beside them; `read` returns the F32 tensors alone.
    @Test func int64ScalarsRoundTrip() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("w.safetensors")
        let a = SafeTensors.Entry(shape: [3], values: [1, 2, 3])
        try SafeTensors.write([("bn.weight", a)], integers: [("bn.num_batches_tracked", 123_456_789_012), ("x", -1)], to: path)
        let c = try SafeTensors.contents(path)
        #expect(c.tensors == ["bn.weight": a])
        #expect(c.integers == ["bn.num_batches_tracked": 123_456_789_012, "x": -1])
        #expect(try SafeTensors.read(path).tensors == ["bn.weight": a])
        let header = try SafeTensorsHeaderTests.file(#"{"n": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}"#, in: dir, dataBytes: 8)
        #expect(try SafeTensors.contents(header).integers == ["n": 0])
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

/// Tampered safetensors headers: each is refused with a message naming the file and the
/// tensor before any value is copied (before, negative or overflowing shapes and offsets
/// stopped the process in an allocation or a slice).
@Suite struct SafeTensorsHeaderTests {
    /// A file with `header` (JSON text) and `dataBytes` zero bytes of data.
    static func file(_ header: String, in dir: TemporaryDirectory, dataBytes: Int = 16, headerLength: UInt64? = nil) throws -> String {
        let path = dir.file("w.safetensors")
        var n = (headerLength ?? UInt64(header.utf8.count)).littleEndian
        var data = Data(bytes: &n, count: 8)
        data.append(Data(header.utf8))
        data.append(Data(count: dataBytes))
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    static let cases: [(header: String, expected: String)] = [
        (#"[1, 2]"#, "not a JSON object"),
        (#"{"w": {"dtype": "Q7", "shape": [4], "data_offsets": [0, 16]}}"#, "'w' has unknown dtype 'Q7'"),
        (#"{"w": {"dtype": "F32", "shape": [-4, -1], "data_offsets": [0, 16]}}"#, "'w' has a negative dimension"),
        (#"{"w": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 16]}}"#, "'w' has shape [4611686018427387904, 4], too large"),
        (#"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [-16, 0]}}"#, "'w' has data_offsets [-16, 0] outside the data section"),
        (#"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}}"#, "'w' has data_offsets [16, 0] outside"),
        (#"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [9223372036854775792, 9223372036854775807]}}"#, "'w' has data_offsets"),
        (#"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}"#, "'w' has data_offsets [0, 16] (16 bytes) but shape [2] of F32 takes 8 bytes"),
        (#"{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}"#, "'a' (bytes 0..<12) and 'b' (bytes 8..<16) overlap"),
        (#"{"w": {"dtype": "F32", "shape": "4", "data_offsets": [0, 16]}}"#, "'w' is malformed"),
        (#"{"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 16]}}"#, "'w' is malformed"),
        (#"{"w": {"dtype": "I32", "shape": [4], "data_offsets": [0, 16]}}"#, "'w' has dtype I32; TerraSeg reads F32"),
        (#"{"__metadata__": {"a": 1}}"#, "__metadata__ is not a map of strings"),
        // Half precision: refused with the Python line that converts the file.
        (#"{"w": {"dtype": "F16", "shape": [4], "data_offsets": [0, 8]}}"#,
         #"'w' has dtype F16; TerraSeg reads F32. Convert it to float32 in Python: from safetensors.torch import load_file, save_file; save_file({k: v.float() if v.is_floating_point() else v"#),
        (#"{"w": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}}"#, "'w' has dtype BF16; TerraSeg reads F32. Convert it to float32 in Python"),
        // I64 only as scalars (num_batches_tracked).
        (#"{"w": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}}"#, "'w' is I64 of shape [2]; TerraSeg reads F32 and I64 scalars"),
    ]

    @Test(arguments: cases.indices)
    func tamperedHeaderIsRefusedNamingFileAndTensor(_ i: Int) throws {
        let dir = TemporaryDirectory()
        let path = try Self.file(Self.cases[i].header, in: dir)
        let error = #expect(throws: TerraSegError.self) { try SafeTensors.read(path) }
        #expect(error?.path == path)
        #expect(error?.description.contains(Self.cases[i].expected) == true, "\(error?.description ?? "no error")")
    }

    @Test func headerLengthPastTheFileIsRefused() throws {
        let dir = TemporaryDirectory()
        let path = try Self.file("{}", in: dir, headerLength: UInt64.max)
        let error = #expect(throws: TerraSegError.self) { try SafeTensors.read(path) }
        #expect(error?.description.contains("header length 18446744073709551615 exceeds the file") == true)
    }

    @Test func anEmptyTensorAndUnusedBytesAreFine() throws {
        let dir = TemporaryDirectory()
        let path = try Self.file(#"{"e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [4, 4]}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#, in: dir)
        let (tensors, _) = try SafeTensors.read(path)
        #expect(tensors["e"]?.shape == [0, 3])
        #expect(tensors["w"]?.values == [0, 0])
    }

    @Test func aNamedPipeIsRefusedWithoutBlocking() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("w.safetensors")
        #expect(mkfifo(path, 0o600) == 0)
        let error = #expect(throws: TerraSegError.self) { try SafeTensors.read(path) }
        #expect(error?.description.contains("is a named pipe (FIFO)") == true)
    }
}
