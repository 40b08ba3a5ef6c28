import Core
import Foundation

/// A seeded mutation fuzzer for parsers (libFuzzer-style mutations, repeatable: the same seed
/// gives the same inputs on every machine): each input is a valid seed changed by a few byte
/// flips, insertions, deletions, truncations, duplicated ranges or "interesting" tokens
/// (huge, negative and non-finite numbers, brackets) written over it.
public struct Mutator {
    public var rng: SplitMix64
    public let seeds: [Data]
    public let tokens: [Data]

    public static let defaultTokens = ["-1", "0", "-0", "9223372036854775807", "-9223372036854775808", "18446744073709551616",
                                       "1e400", "-1e400", "NaN", ".nan", ".inf", "4294967296", "[", "]", "{", "}", "\"", ",", ":",
                                       "null", "true", "[]", "{}", "*a", "&a ", "\n  ", "\t", "\u{0}", "\u{FEFF}"].map { Data($0.utf8) }

    public init(seeds: [Data], tokens: [String] = [], seed: UInt64) {
        self.seeds = seeds
        self.tokens = Mutator.defaultTokens + tokens.map { Data($0.utf8) }
        rng = SplitMix64(seed: seed)
    }

    /// The next input: a seed with 1 to 4 mutations.
    public mutating func next() -> Data {
        var data = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
        for _ in 0..<Int.random(in: 1...4, using: &rng) { mutate(&data) }
        return data
    }

    mutating func position(_ data: Data, inclusive: Bool = false) -> Int {
        let n = data.count + (inclusive ? 1 : 0)
        return n == 0 ? 0 : Int.random(in: 0..<n, using: &rng)
    }

    mutating func mutate(_ data: inout Data) {
        let base = data.startIndex
        switch Int.random(in: 0..<6, using: &rng) {
        case 0 where !data.isEmpty:  // flip bits of one byte
            data[base + position(data)] ^= UInt8.random(in: 1...255, using: &rng)
        case 1:  // insert a random byte
            data.insert(UInt8.random(in: 0...255, using: &rng), at: base + position(data, inclusive: true))
        case 2 where !data.isEmpty:  // delete a range
            let a = position(data), b = min(data.count, a + Int.random(in: 1...16, using: &rng))
            data.removeSubrange((base + a)..<(base + b))
        case 3:  // truncate
            data = data.prefix(position(data, inclusive: true))
        case 4 where !data.isEmpty:  // duplicate a range somewhere else
            let a = position(data), b = min(data.count, a + Int.random(in: 1...32, using: &rng))
            let piece = data.subdata(in: (base + a)..<(base + b))
            data.insert(contentsOf: piece, at: base + position(data, inclusive: true))
        default:  // write a token over 0 to 2 bytes at a random place
            let token = tokens[Int.random(in: 0..<tokens.count, using: &rng)]
            let a = position(data, inclusive: true), b = min(data.count, a + Int.random(in: 0...2, using: &rng))
            data.replaceSubrange((base + a)..<(base + b), with: token)
        }
    }
}
