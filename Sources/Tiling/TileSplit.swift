import Core
import Foundation
import GeoRaster

/// Which chips of a tile set train, validate and test: a seeded hash of the chip id (the
/// default), the dataset's own lists (one id or file name per line), or its own sub-folders
/// (`train/`, `val/`, `test/`, each holding the templates' files).
public enum TileSplit: Sendable, Equatable {
    case hash(validationFraction: Double, seed: UInt64)
    case lists(train: String?, validation: String?, test: String?)
    case folders

    public enum Part: String, Sendable, CaseIterable { case train, validation, test }

    public struct Chip: Sendable {
        public let set: TileSet
        public let id: String
        public let part: Part
    }

    /// Sub-folder names (lower-cased) of each part for `.folders`.
    public static let folderNames: [Part: Set<String>] = [.train: ["train", "training"], .validation: ["val", "validation"],
                                                           .test: ["test", "testing"]]

    /// The chips and their parts, and the ids that no list names (not used).
    public func chips(root: String, images: [String], mask: String) throws -> (chips: [Chip], unlisted: [String]) {
        switch self {
        case let .hash(fraction, seed):
            let set = try TileSet(root: root, images: images, mask: mask)
            return (set.ids.map { Chip(set: set, id: $0, part: TileSet.isValidation(id: $0, fraction: fraction, seed: seed) ? .validation : .train) }, [])
        case let .lists(train, validation, test):
            let set = try TileSet(root: root, images: images, mask: mask)
            var part: [String: (Part, String)] = [:]
            for (p, list) in [(Part.train, train), (.validation, validation), (.test, test)] {
                guard let list else { continue }
                for id in try TileSplit.readList(list, set: set) {
                    if let (other, otherList) = part[id], other != p || otherList != list {
                        throw TerraSegError(.invalidArgument, path: list, problem: "chip '\(id)' is also in the \(other.rawValue) list \(otherList)",
                                                      hint: "A chip belongs to one list; remove it from one of them")
                    }
                    part[id] = (p, list)
                }
            }
            guard train != nil || validation != nil || test != nil else {
                throw TerraSegError(.invalidArgument, path: root, problem: "split method lists names no list",
                                              hint: "Give split: {method: lists, train: FILE, validation: FILE, test: FILE}")
            }
            let chips = set.ids.compactMap { id in part[id].map { Chip(set: set, id: id, part: $0.0) } }
            return (chips, set.ids.filter { part[$0] == nil })
        case .folders:
            return try (TileSplit.folderChips(root: root, images: images, mask: mask), [])
        }
    }

    static func folderChips(root: String, images: [String], mask: String) throws -> [Chip] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        var found: [Part: String] = [:]
        for name in names.sorted() {
            var isDir: ObjCBool = false
            let dir = (root as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue,
                  let p = Part.allCases.first(where: { folderNames[$0]!.contains(name.lowercased()) }) else { continue }
            if let other = found[p] {
                throw TerraSegError(.invalidArgument, path: root, problem: "folders '\(other)' and '\(name)' both hold the \(p.rawValue) chips",
                                              hint: "Keep one folder per part (train/, val/, test/)")
            }
            found[p] = dir
        }
        guard !found.isEmpty else {
            throw TerraSegError(.invalidArgument, path: root, problem: "split method folders found no train/, val/ or test/ sub-folder",
                                          hint: "Put the chips in train/, val/ and test/ under the root (each with the templates' files), or use method: hash or lists")
        }
        var out: [Chip] = []
        for p in Part.allCases {
            guard let dir = found[p] else { continue }
            let set = try TileSet(root: dir, images: images, mask: mask)
            out += set.ids.map { Chip(set: set, id: $0, part: p) }
        }
        return out
    }

    /// The chip ids of a list file: one id or file name per line (a path, or a name matching
    /// the first image template, or a name whose extension dropped is an id); blank lines and
    /// lines starting with # are skipped. A line naming no chip is refused.
    public static func readList(_ path: String, set: TileSet) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw TerraSegError(.invalidArgument, path: path, problem: "the split list cannot be read as text",
                                          hint: "Give a text file with one chip id or file name per line")
        }
        let ids = Set(set.ids)
        let pattern = (set.imageTemplates[0] as NSString).lastPathComponent.components(separatedBy: "{id}")
        var out: [String] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let name = (line as NSString).lastPathComponent
            let prefix = pattern[0], suffix = pattern.count > 1 ? pattern[1] : ""
            let fromTemplate = name.hasPrefix(prefix) && name.hasSuffix(suffix) && name.count > prefix.count + suffix.count
                ? String(name.dropFirst(prefix.count).dropLast(suffix.count)) : nil
            let candidates = [line, name, fromTemplate, (name as NSString).deletingPathExtension].compactMap { $0 }
            guard let id = candidates.first(where: ids.contains) else {
                throw TerraSegError(.invalidArgument, path: path, problem: "line \(n + 1) '\(line)' names no chip of \(set.root)",
                                              hint: "Each line is a chip id or file name of the tile set; fix or remove the line")
            }
            out.append(id)
        }
        return out
    }
}
