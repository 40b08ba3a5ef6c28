import Core
import Foundation
import ModelIO
import Testing
import TestSupport

/// Seeded mutation fuzzing of the safetensors reader (the toolchain's libFuzzer needs its own
/// build; this runs in every `swift test`): thousands of damaged variants of valid files must
/// each be read or refused with a `TerraSegError` naming the file, never crash the process.
@Suite struct SafeTensorsFuzzTests {
    static let iterations = 2000
    static let timeBudget: TimeInterval = 10

    @Test func damagedFilesAreReadOrRefused() throws {
        let dir = TemporaryDirectory("terraseg-fuzz")
        let a = SafeTensors.Entry(shape: [2, 1, 2, 2], values: (0..<8).map { Float($0) - 3 })
        let b = SafeTensors.Entry(shape: [3], values: [1, -2, .pi])
        let seeds = [try SafeTensors.encode([("enc1.conv1.weight", a), ("head.bias", b)], metadata: ["arch": "unet"]),
                     try Data(contentsOf: URL(fileURLWithPath: TestData.fixture("safetensors/python_written.safetensors")))]
        var mutator = Mutator(seeds: seeds, tokens: ["\"shape\"", "\"data_offsets\"", "\"dtype\"", "\"F32\"", "\"F64\"", "\"__metadata__\""],
                              seed: 0x5AFE)
        // Half the inputs damage only the JSON header and keep its length prefix right; half of
        // those keep the JSON valid and change its numbers, so the checks behind the JSON
        // (shapes, offsets, sizes) are reached.
        let parts = seeds.map(Self.split)
        var headers = Mutator(seeds: parts.map(\.header), tokens: ["\"shape\"", "\"data_offsets\"", "\"F32\"", "9223372036854775807", "4611686018427387904"],
                              seed: 0x4EAD)
        let path = dir.file("fuzz.safetensors")
        let start = Date()
        var refused = 0, read = 0
        for i in 0..<Self.iterations where Date().timeIntervalSince(start) < Self.timeBudget {
            let part = parts[i / 4 % parts.count]
            let input = switch i % 4 {
            case 0, 2: mutator.next()
            case 1: Self.frame(header: headers.next(), data: part.data)
            default: Self.frame(header: Self.replacingNumbers(in: part.header, using: &headers.rng), data: part.data)
            }
            try input.write(to: URL(fileURLWithPath: path))
            do {
                let (tensors, _) = try SafeTensors.read(path)
                for (name, t) in tensors {
                    #expect(t.values.count == t.shape.reduce(1, *), "\(name): \(t.shape) holds \(t.values.count) values")
                }
                read += 1
            } catch let error as TerraSegError {
                #expect(error.path == path, "\(error)")
                refused += 1
            }
        }
        print("safetensors fuzz: \(read) read, \(refused) refused in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        #expect(refused > 0 && read + refused > 100, "read \(read), refused \(refused)")
    }

    /// A safetensors file's JSON header and data section.
    static func split(_ file: Data) -> (header: Data, data: Data) {
        let n = Int(file.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        return (file.subdata(in: 8..<(8 + n)), file.subdata(in: (8 + n)..<file.count))
    }

    /// A file from a header and a data section, with the header's length in front.
    static func frame(header: Data, data: Data) -> Data {
        var out = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Data($0) }
        out += header
        out += data
        return out
    }

    static let numbers = ["-1", "0", "-8", "1", "3", "4611686018427387904", "9223372036854775807", "-9223372036854775807", "2147483648", "1000000"]

    /// `header` with one or two of its integers replaced by extreme ones.
    static func replacingNumbers(in header: Data, using rng: inout SplitMix64) -> Data {
        var text = String(decoding: header, as: UTF8.self)
        for _ in 0..<Int.random(in: 1...2, using: &rng) {
            let runs = text.ranges(of: /-?[0-9]+/)
            guard let run = runs.randomElement(using: &rng) else { break }
            text.replaceSubrange(run, with: numbers.randomElement(using: &rng)!)
        }
        return Data(text.utf8)
    }
}
