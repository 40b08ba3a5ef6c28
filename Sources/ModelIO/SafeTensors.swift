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

    /// Reads F32 tensors (other dtypes are refused by name). The whole header is checked
    /// before any value is copied; a problem names the file and the tensor.
    public static func read(_ path: String) throws -> (tensors: [String: Entry], metadata: [String: String]) {
        let data = try InputFile.read(path)
        let (entries, metadata, start) = try Header.parse(data, path: path)
        var tensors: [String: Entry] = [:]
        for e in entries {
            var values = [Float](repeating: 0, count: e.count)
            values.withUnsafeMutableBytes { dst in
                data.withUnsafeBytes { src in
                    dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(start + e.bytes.lowerBound)..<(start + e.bytes.upperBound)]))
                }
            }
            tensors[e.name] = Entry(shape: e.shape, values: values)
        }
        return (tensors, metadata)
    }

    /// The checked header: every tensor's dtype known, shape non-negative with a product that
    /// fits, data_offsets [begin, end] ordered, inside the data section, not overlapping
    /// another tensor's, and exactly count × dtype size bytes long.
    struct Header {
        var name: String
        var shape: [Int]
        var count: Int
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
            guard dtype == "F32" else { throw invalid(path, "tensor '\(name)' has dtype \(dtype); TerraSeg reads F32") }
            return Header(name: name, shape: shape, count: bytes / 4, bytes: begin..<end)
        }
    }
}
