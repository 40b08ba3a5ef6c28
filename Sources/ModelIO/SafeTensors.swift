import Core
import Foundation

/// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON
/// header mapping each tensor name to its dtype, shape and byte offsets (plus optional
/// string `__metadata__`), then the raw little-endian data. Readable by Python's
/// `safetensors.numpy.load_file` and `safetensors.torch.load_file`.
public enum SafeTensors {
    public struct Entry: Sendable, Equatable {
        public var shape: [Int]
        public var values: [Float]
        public init(shape: [Int], values: [Float]) {
            precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
            self.shape = shape
            self.values = values
        }
    }

    /// Serialises F32 tensors in the given order (names must be unique).
    public static func encode(_ tensors: [(name: String, entry: Entry)], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        for (name, e) in tensors {
            let bytes = e.values.count * 4
            header[name] = ["dtype": "F32", "shape": e.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }  // pad with spaces so data is 8-byte aligned
        var out = Data(capacity: 8 + json.count + offset)
        var n = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(json)
        for (_, e) in tensors {
            e.values.withUnsafeBufferPointer { buf in
                out.append(UnsafeBufferPointer(start: UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: UInt8.self), count: buf.count * 4))
            }
        }
        return out
    }

    public static func write(_ tensors: [(name: String, entry: Entry)], metadata: [String: String] = [:], to path: String) throws {
        try AtomicFile.write(encode(tensors, metadata: metadata), to: path)
    }

    /// Reads F32 tensors (other dtypes are refused by name).
    public static func read(_ path: String) throws -> (tensors: [String: Entry], metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TerraSegError(.notFound, path: path, problem: "cannot read the weights file", hint: "Check the model bundle's path")
        }
        func bad(_ why: String) -> TerraSegError {
            TerraSegError(.readFailed, path: path, problem: "not a valid safetensors file: \(why)",
                          hint: "The bundle may be truncated; retrain or restore it")
        }
        guard data.count >= 8 else { throw bad("too short") }
        let n = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
        guard n <= UInt64(data.count - 8) else { throw bad("header length \(n) exceeds the file") }
        let start = 8 + Int(n)
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<start)) as? [String: Any] else {
            throw bad("the header is not a JSON object")
        }
        var tensors: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = value as? [String: String] ?? [:]
                continue
            }
            guard let d = value as? [String: Any], let dtype = d["dtype"] as? String,
                  let shape = d["shape"] as? [Int], let offsets = d["data_offsets"] as? [Int], offsets.count == 2 else {
                throw bad("entry '\(name)' is malformed")
            }
            guard dtype == "F32" else { throw bad("tensor '\(name)' has dtype \(dtype); TerraSeg reads F32") }
            let count = shape.reduce(1, *)
            guard offsets[1] - offsets[0] == count * 4, start + offsets[1] <= data.count, offsets[0] >= 0 else {
                throw bad("tensor '\(name)' has offsets \(offsets) that do not match its shape \(shape)")
            }
            var values = [Float](repeating: 0, count: count)
            values.withUnsafeMutableBytes { dst in
                data.withUnsafeBytes { src in
                    dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(start + offsets[0])..<(start + offsets[1])]))
                }
            }
            tensors[name] = Entry(shape: shape, values: values)
        }
        return (tensors, metadata)
    }
}
