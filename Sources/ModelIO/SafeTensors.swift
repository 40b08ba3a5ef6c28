import Core
import Foundation

/// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON
/// header mapping each tensor name to its dtype, shape and byte offsets (plus optional
/// string `__metadata__`), then the raw little-endian data. Readable by Python's
/// `safetensors.numpy.load_file` and `safetensors.torch.load_file`. Values are F32; I64
/// scalars (PyTorch's batch-norm `num_batches_tracked`) are read and written beside them.
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

    /// A file's contents: F32 tensors, I64 scalars (shape [] or [1]) and the metadata.
    public struct Contents: Sendable {
        public var tensors: [String: Entry]
        public var integers: [String: Int64]
        public var metadata: [String: String]
    }

    /// Serialises I64 scalars, then F32 tensors in the given order (names must be unique);
    /// the scalars come first so that every value is aligned to its size.
    public static func encode(_ tensors: [(name: String, entry: Entry)], integers: [(name: String, value: Int64)] = [],
                              metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        for (name, _) in integers {
            header[name] = ["dtype": "I64", "shape": [Int](), "data_offsets": [offset, offset + 8]] as [String: Any]
            offset += 8
        }
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
        for (_, value) in integers {
            var v = value.littleEndian
            withUnsafeBytes(of: &v) { out.append(contentsOf: $0) }
        }
        for (_, e) in tensors {
            e.values.withUnsafeBufferPointer { buf in
                out.append(UnsafeBufferPointer(start: UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: UInt8.self), count: buf.count * 4))
            }
        }
        return out
    }

    public static func write(_ tensors: [(name: String, entry: Entry)], integers: [(name: String, value: Int64)] = [],
                             metadata: [String: String] = [:], to path: String) throws {
        try AtomicFile.write(encode(tensors, integers: integers, metadata: metadata), to: path)
    }

    /// Reads the F32 tensors and the metadata; I64 scalars are left to `contents` (their
    /// readers say what they do with them).
    public static func read(_ path: String) throws -> (tensors: [String: Entry], metadata: [String: String]) {
        let c = try contents(path)
        return (c.tensors, c.metadata)
    }

    /// Reads F32 tensors and I64 scalars; other dtypes, and I64 tensors of more than one
    /// value, are refused by name. The whole header is checked before any value is copied;
    /// a problem names the file and the tensor.
    public static func contents(_ path: String) throws -> Contents {
        let data = try InputFile.read(path)
        let (entries, metadata, start) = try Header.parse(data, path: path)
        var out = Contents(tensors: [:], integers: [:], metadata: metadata)
        data.withUnsafeBytes { src in
            for e in entries {
                let bytes = UnsafeRawBufferPointer(rebasing: src[(start + e.bytes.lowerBound)..<(start + e.bytes.upperBound)])
                if e.isInteger {
                    out.integers[e.name] = Int64(littleEndian: bytes.loadUnaligned(as: Int64.self))
                } else {
                    var values = [Float](repeating: 0, count: e.count)
                    values.withUnsafeMutableBytes { $0.copyMemory(from: bytes) }
                    out.tensors[e.name] = Entry(shape: e.shape, values: values)
                }
            }
        }
        return out
    }

    /// The checked header: every tensor's dtype known, shape non-negative with a product that
    /// fits, data_offsets [begin, end] ordered, inside the data section, not overlapping
    /// another tensor's, and exactly count × dtype size bytes long.
    struct Header {
        var name: String
        var shape: [Int]
        var count: Int
        /// An I64 scalar rather than F32 values.
        var isInteger = false
        /// Byte range within the data section (after the header).
        var bytes: Range<Int>

        static let dtypeSizes = ["F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
                                 "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1]

        static func invalid(_ path: String, _ why: String) -> TerraSegError {
            TerraSegError(.readFailed, path: path, problem: "not a valid safetensors file: \(why)",
                          hint: "The file may be truncated or damaged; retrain or restore it")
        }

        /// The tensors (in data order), the metadata, and where the data section starts.
        static func parse(_ data: Data, path: String) throws -> ([Header], [String: String], Int) {
            guard data.count >= 8 else { throw invalid(path, "too short (\(data.count) bytes)") }
            let n = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
            guard n <= UInt64(data.count - 8) else { throw invalid(path, "header length \(n) exceeds the file (\(data.count) bytes)") }
            let start = 8 + Int(n)
            guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<start)) as? [String: Any] else {
                throw invalid(path, "the header is not a JSON object")
            }
            var metadata: [String: String] = [:]
            var entries: [Header] = []
            for (name, value) in header.sorted(by: { $0.key < $1.key }) {
                if name == "__metadata__" {
                    guard let m = value as? [String: String] else { throw invalid(path, "__metadata__ is not a map of strings") }
                    metadata = m
                } else {
                    entries.append(try entry(name, value, dataSize: data.count - start, path: path))
                }
            }
            entries.sort { ($0.bytes.lowerBound, $0.bytes.upperBound) < ($1.bytes.lowerBound, $1.bytes.upperBound) }
            for (a, b) in zip(entries, entries.dropFirst()) where b.bytes.lowerBound < a.bytes.upperBound {
                throw invalid(path, "tensors '\(a.name)' (bytes \(a.bytes)) and '\(b.name)' (bytes \(b.bytes)) overlap")
            }
            return (entries, metadata, start)
        }

        static func entry(_ name: String, _ value: Any, dataSize: Int, path: String) throws -> Header {
            guard let d = value as? [String: Any], let dtype = d["dtype"] as? String, let shape = d["shape"] as? [Int],
                  let offsets = d["data_offsets"] as? [Int], offsets.count == 2 else {
                throw invalid(path, "tensor '\(name)' is malformed (it needs dtype, shape and data_offsets [begin, end] as integers)")
            }
            guard let size = dtypeSizes[dtype] else { throw invalid(path, "tensor '\(name)' has unknown dtype '\(dtype)'") }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw invalid(path, "tensor '\(name)' has a negative dimension in shape \(shape)") }
            var bytes = size
            for s in shape {
                let (product, overflow) = bytes.multipliedReportingOverflow(by: s)
                guard !overflow else { throw invalid(path, "tensor '\(name)' has shape \(shape), too large to address") }
                bytes = product
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw invalid(path, "tensor '\(name)' has data_offsets \(offsets) outside the data section (0 to \(dataSize))")
            }
            guard end - begin == bytes else {
                throw invalid(path, "tensor '\(name)' has data_offsets \(offsets) (\(end - begin) bytes) but shape \(shape) of \(dtype) takes \(bytes) bytes")
            }
            if dtype == "I64" && bytes == 8 { return Header(name: name, shape: shape, count: 1, isInteger: true, bytes: begin..<end) }
            guard dtype == "F32" else { throw unreadable(path, name: name, dtype: dtype, shape: shape) }
            return Header(name: name, shape: shape, count: bytes / 4, bytes: begin..<end)
        }

        /// A valid tensor of a type TerraSeg does not compute in: half precision says how to
        /// convert the file in Python; I64 is read only as scalars (batch-norm step counts).
        static func unreadable(_ path: String, name: String, dtype: String, shape: [Int]) -> TerraSegError {
            let convert = "Convert it to float32 in Python: from safetensors.torch import load_file, save_file; "
                + "save_file({k: v.float() if v.is_floating_point() else v for k, v in load_file(\"in.safetensors\").items()}, \"out.safetensors\")"
            switch dtype {
            case "F16", "BF16", "F64", "F8_E4M3", "F8_E5M2":
                return TerraSegError(.readFailed, path: path, problem: "tensor '\(name)' has dtype \(dtype); TerraSeg reads F32", hint: convert)
            case "I64":
                return TerraSegError(.readFailed, path: path, problem: "tensor '\(name)' is I64 of shape \(shape); TerraSeg reads F32 and I64 scalars (num_batches_tracked)",
                                     hint: "Remove the tensor, or save it as float32")
            default:
                return TerraSegError(.readFailed, path: path, problem: "tensor '\(name)' has dtype \(dtype); TerraSeg reads F32 (and I64 scalars such as num_batches_tracked)",
                                     hint: "Save the weights as float32")
            }
        }
    }
}
