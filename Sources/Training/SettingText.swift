import Foundation
import GeoRaster

/// The one-line text forms of structured settings, as written on the command line
/// (`--split blocks:256:0.2`, `--loss dice*0.5+focal`, `--widths 32,64`). A pipeline file
/// writes the same settings in their structured YAML form; both end in the same types and
/// pass through the same range checks (`Pipeline`'s `issues()`). Syntax only is checked here.
public struct SettingSyntaxError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The text that could not be read.
    public var text: String
    public var problem: String
    public var fix: String

    public init(_ text: String, problem: String, fix: String) {
        self.text = text
        self.problem = problem
        self.fix = fix
    }

    public var description: String { "'\(text)' \(problem). \(fix)" }
}

/// Comma-separated integers: `4,3,2`.
public enum IntList {
    public static func parse(_ text: String) throws -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        return try parts.map { part in
            guard let v = Int(part.trimmingCharacters(in: .whitespaces)) else {
                throw SettingSyntaxError(String(part), problem: "is not an integer", fix: "Write whole numbers separated by commas, e.g. 4,3,2")
            }
            return v
        }
    }
}

/// `data.ignore` as a flag: label values and mask colours, comma-separated (`0,#000000`).
public struct IgnoreList: Sendable {
    public var values: [Int] = []
    public var colors: [String] = []

    public static func parse(_ text: String) throws -> IgnoreList {
        var out = IgnoreList()
        for part in text.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if let v = Int(part) {
                out.values.append(v)
            } else if part.hasPrefix("#"), RGBA(hex: part) != nil {
                out.colors.append(part)
            } else {
                throw SettingSyntaxError(part, problem: "is neither a label value nor a colour", fix: "Write values and colours separated by commas, e.g. 0,#000000")
            }
        }
        return out
    }
}

/// Comma-separated numbers: `0` or `0,-9999` (nan and inf are read, then refused by the range check).
public enum DoubleList {
    public static func parse(_ text: String) throws -> [Double] {
        try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
            guard let v = Double(part.trimmingCharacters(in: .whitespaces)) else {
                throw SettingSyntaxError(String(part), problem: "is not a number", fix: "Write numbers separated by commas, e.g. 0 or 0,-9999")
            }
            return v
        }
    }
}

/// Comma-separated resamplings, one for all sources or one per source: `bilinear,nearest`.
public enum ResamplingList {
    public static func parse(_ text: String) throws -> [Resampling] {
        try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
            guard let r = Resampling(rawValue: part.trimmingCharacters(in: .whitespaces)) else {
                throw SettingSyntaxError(String(part), problem: "is not a resampling",
                                         fix: "Use " + Resampling.allCases.map(\.rawValue).joined(separator: ", ") + ", separated by commas")
            }
            return r
        }
    }
}

/// Names separated by commas: `B02,B03,B04,B8A`.
public enum NameList {
    public static func parse(_ text: String) throws -> [String] {
        let names = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.contains(where: \.isEmpty) else {
            throw SettingSyntaxError(text, problem: "has an empty name", fix: "Join the names with single commas, e.g. B02,B03,B04,B8A")
        }
        return names
    }
}

/// A memory size: bytes, or a number with K, M, G, T or P (powers of 1024; a trailing B or
/// iB is allowed): `8G`, `512M`, `1.5G`, `8GiB`. The sign is read so that a negative size meets
/// the range check (`memory`) rather than a syntax error.
public enum ByteSize {
    static let units: [(suffix: String, factor: Double)] = [("P", 0x1p50), ("T", 0x1p40), ("G", 0x1p30), ("M", 0x1p20), ("K", 0x1p10)]

    public static func parse(_ text: String) throws -> Int {
        var t = text.trimmingCharacters(in: .whitespaces).uppercased()
        for tail in ["IB", "B"] where t.hasSuffix(tail) && t.count > tail.count { t.removeLast(tail.count); break }
        var factor = 1.0
        if let unit = units.first(where: { t.hasSuffix($0.suffix) }) {
            factor = unit.factor
            t.removeLast()
        }
        guard let v = Double(t.trimmingCharacters(in: .whitespaces)), v.isFinite, abs(v * factor) < 0x1p62 else {
            throw SettingSyntaxError(text, problem: "is not a memory size", fix: "Write a number with K, M, G or T, e.g. 8G or 512M")
        }
        return Int((v * factor).rounded())
    }

    /// `8G`, `1.5G`, `512M`, `100` (bytes): the shortest form `parse` reads back (to 0.1 unit).
    public static func text(_ bytes: Double) -> String {
        for (suffix, factor) in units where abs(bytes) >= factor {
            let v = bytes / factor
            return (v >= 10 || v == v.rounded() ? String(Int(v.rounded())) : String(format: "%.1f", v)) + suffix
        }
        return String(Int(bytes))
    }
}

/// Files joined by commas: the band files of one scene (`b4.tif,b3.tif,b2.tif`), or chip
/// templates of one tile set. A pipeline file writes them as a YAML list.
public enum PathList {
    public static func parse(_ text: String) throws -> [String] {
        let paths = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !paths.contains(where: \.isEmpty) else {
            throw SettingSyntaxError(text, problem: "has an empty path", fix: "Join the files with single commas, e.g. b4.tif,b3.tif,b2.tif")
        }
        return paths
    }
}

extension SplitOptions {
    /// Reads `rows[:F]`, `columns[:F]`, `blocks[:SIZE[:FRACTION]]` or `none`; values left out
    /// keep their defaults.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let syntax = "Write rows:F, columns:F, blocks[:SIZE[:FRACTION]] or none, e.g. blocks:512:0.2"
        guard let method = Method(rawValue: parts[0]) else {
            throw SettingSyntaxError(text, problem: "is not a split method", fix: syntax)
        }
        self.init(method: method)
        let maxParts = [Method.rows: 2, .columns: 2, .blocks: 3, .none: 1][method]!
        guard parts.count <= maxParts else { throw SettingSyntaxError(text, problem: "has too many parts", fix: syntax) }
        func number(_ s: String) throws -> Double {
            guard let v = Double(s) else { throw SettingSyntaxError(s, problem: "is not a number", fix: syntax) }
            return v
        }
        switch method {
        case .rows, .columns:
            if parts.count > 1 { trainFraction = try number(parts[1]) }
        case .blocks:
            if parts.count > 1 {
                guard let size = Int(parts[1]) else { throw SettingSyntaxError(parts[1], problem: "is not a block size in pixels", fix: syntax) }
                blockSize = size
            }
            if parts.count > 2 { validationFraction = try number(parts[2]) }
        case .none: break
        }
    }
}

extension LossOptions.Term {
    /// Reads weighted terms joined by `+`: `focal+dice`, `dice*0.5+focal`, `ce` (cross-entropy).
    public static func parseList(_ text: String) throws -> [LossOptions.Term] {
        try text.split(separator: "+", omittingEmptySubsequences: false).map { term in
            let p = term.split(separator: "*", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let kinds = LossOptions.Kind.allCases.map(\.rawValue).joined(separator: ", ")
            guard p.count <= 2, let kind = LossOptions.Kind(rawValue: p[0] == "ce" ? "cross_entropy" : p[0]) else {
                throw SettingSyntaxError(String(term), problem: "is not a loss term", fix: "Use \(kinds), each optionally *WEIGHT, joined by +, e.g. dice*0.5+focal")
            }
            guard p.count == 2 else { return LossOptions.Term(kind) }
            guard let weight = Float(p[1]) else {
                throw SettingSyntaxError(p[1], problem: "is not a weight", fix: "Write a number after *, e.g. dice*0.5")
            }
            return LossOptions.Term(kind, weight: weight)
        }
    }
}
