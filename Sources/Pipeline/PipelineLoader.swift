import Core
import Foundation
import GeoRaster
import Training
import Yams

/// Reads a pipeline file: parses the YAML, validates every key against `PipelineSchema`
/// (unknown keys, wrong types, missing files, with line numbers and a fix for each), fills
/// defaults, resolves paths relative to the file, and decodes a `PipelineSpec`.
public enum PipelineLoader {
    public struct Loaded: Sendable {
        public var spec: PipelineSpec
        public var file: String
        /// Directory the paths were resolved against.
        public var base: String
        /// The run directory (absolute).
        public var output: String
    }

    /// `checkFiles: false` validates everything but the existence of input files (to check
    /// a pipeline's shape before its data is fetched).
    public static func load(_ path: String, checkFiles: Bool = true) throws -> Loaded {
        let text = try readText(path)
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().standardizedFileURL.path
        return try parse(text, file: path, base: base, checkFiles: checkFiles)
    }

    public static func parse(_ text: String, file: String, base: String, checkFiles: Bool = true) throws -> Loaded {
        if let issue = YAMLLimits.issue(in: text, file: file) { throw PipelineError(issues: [issue]) }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw PipelineError(issues: [PipelineIssue(file: file, line: yamlErrorLine(error), key: "(syntax)",
                                                       problem: "not valid YAML: \(yamlErrorText(error))",
                                                       fix: "Fix the YAML syntax (indentation, colons, quotes)")])
        }
        guard let root = node, case .mapping = root else {
            throw PipelineError(issues: [PipelineIssue(file: file, line: node?.mark?.line, key: "(top level)",
                                                       problem: "the file must be a mapping of sections (data:, model:, training:, …)",
                                                       fix: "See docs/pipeline-reference.md")])
        }
        var v = Validator(file: file, base: base, checkFiles: checkFiles)
        let value = v.object(root, fields: PipelineSchema.fields, key: "")
        v.crossChecks(value as? [String: Any] ?? [:], root: root)
        if !v.issues.isEmpty { throw PipelineError(issues: v.issues) }

        // Defaults from the Swift types themselves, overridden by the file.
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let defaults = try JSONSerialization.jsonObject(with: encoder.encode(PipelineSpec())) as! [String: Any]
        let merged = deepMerge(defaults, splitIgnoredColors(value as? [String: Any] ?? [:]))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let spec: PipelineSpec
        do {
            spec = try decoder.decode(PipelineSpec.self, from: JSONSerialization.data(withJSONObject: merged))
        } catch {
            throw PipelineError(issues: [PipelineIssue(file: file, line: nil, key: "(file)", problem: "cannot be read: \(TerraSegError.plainWords(error))",
                                                       fix: "See docs/pipeline-reference.md")])
        }
        // Checks that span sections (a patch the network's down-sampling divides), on the typed values.
        let typed = spec.issues()
        if !typed.isEmpty {
            throw PipelineError(issues: typed.map { PipelineIssue(file: file, line: line(of: $0.key, in: root), key: $0.key, problem: $0.problem, fix: $0.fix) })
        }
        let output = spec.output.map { resolve($0, base) } ?? resolve("runs/" + spec.name, base)
        return Loaded(spec: spec, file: file, base: base, output: output)
    }

    /// `data.ignore` holds values and colours; the colours go to `DataSpec.ignoreColors`.
    static func splitIgnoredColors(_ file: [String: Any]) -> [String: Any] {
        guard var data = file["data"] as? [String: Any], let ignore = data["ignore"] as? [Any] else { return file }
        data["ignore"] = ignore.filter { !($0 is String) }
        data["ignore_colors"] = ignore.compactMap { $0 as? String }
        var out = file
        out["data"] = data
        return out
    }

    /// The file's text: refused when not a readable regular file (`InputFile`), over
    /// `YAMLLimits.maxBytes` (checked before reading) or not UTF-8.
    static func readText(_ path: String) throws -> String {
        func refuse(_ problem: String, _ fix: String) -> PipelineError {
            PipelineError(issues: [PipelineIssue(file: path, line: nil, key: "(file)", problem: problem, fix: fix)])
        }
        let data: Data
        do {
            try InputFile.check(path)
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            guard size <= YAMLLimits.maxBytes else {
                throw refuse("is \(size) bytes; a pipeline file is a short YAML text (at most \(YAMLLimits.maxBytes) bytes)", "Give the pipeline's YAML file")
            }
            data = try InputFile.read(path)
        } catch let e as TerraSegError {
            throw refuse("cannot read the pipeline file: \(e.problem)", e.hint ?? "Check the path")
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw refuse("is not UTF-8 text", "Save the pipeline as UTF-8")
        }
        return text
    }

    /// The line of a key such as `model.widths[2]` in the file; nil when the file leaves
    /// the key out (the issue is then about a default).
    static func line(of key: String, in root: Node) -> Int? {
        var node: Node? = root
        for part in key.split(separator: ".") {
            let name = part.split(separator: "[").first.map(String.init) ?? String(part)
            node = node?[name]
            if let open = part.firstIndex(of: "["), let i = Int(part[part.index(after: open)...].dropLast()) { node = node?[i] }
        }
        return node?.mark?.line
    }

    static func resolve(_ p: String, _ base: String) -> String {
        if p.hasPrefix("/") || p.hasPrefix("/vsi") { return p }
        return URL(fileURLWithPath: base).appendingPathComponent(p).standardizedFileURL.path
    }

    static func deepMerge(_ a: [String: Any], _ b: [String: Any]) -> [String: Any] {
        var out = a
        for (k, v) in b {
            if let va = a[k] as? [String: Any], let vb = v as? [String: Any] {
                out[k] = deepMerge(va, vb)
            } else {
                out[k] = v
            }
        }
        return out
    }

    /// The line of a Yams error (1-based), when it has one.
    static func yamlErrorLine(_ error: Error) -> Int? {
        switch error as? YamlError {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        case .duplicatedKeysInMapping(_, let context): return context.mark.line
        default: return nil
        }
    }

    /// A Yams error in one line: the problem and its context ("while parsing a flow sequence").
    static func yamlErrorText(_ error: Error) -> String {
        func join(_ problem: String, _ context: YamlError.Context?) -> String {
            [problem, context.map { "(\($0.text) at line \($0.mark.line))" }].compactMap { $0 }.joined(separator: " ")
        }
        switch error as? YamlError {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _), .composer(let context, let problem, _, _):
            return join(problem, context)
        case .duplicatedKeysInMapping(let duplicates, _):
            return "duplicate key" + (duplicates.count > 1 ? "s " : " ") + duplicates.map { "'\($0)'" }.joined(separator: ", ")
        default:
            let text = String(describing: error)
            return text.split(separator: "\n").first.map(String.init) ?? text
        }
    }
}

/// Walks the YAML node tree with the schema, collecting issues and building plain values.
struct Validator {
    let file: String
    let base: String
    var checkFiles = true
    var issues: [PipelineIssue] = []

    mutating func issue(_ node: Node?, _ key: String, _ problem: String, _ fix: String) {
        issues.append(PipelineIssue(file: file, line: node?.mark?.line, key: key, problem: problem, fix: fix))
    }

    func join(_ prefix: String, _ key: String) -> String { prefix.isEmpty ? key : prefix + "." + key }

    mutating func object(_ node: Node, fields: [Field], key: String) -> Any? {
        guard case .mapping(let mapping) = node else {
            issue(node, key.isEmpty ? "(top level)" : key, "must be a mapping of keys", "Indent its keys below it: \(key.split(separator: ".").last ?? ""):\\n  key: value")
            return nil
        }
        var out: [String: Any] = [:]
        var seen = Set<String>()
        for (k, v) in mapping {
            guard let name = k.string else { issue(k, key.isEmpty ? "(top level)" : key, "a key is not text", "Write keys as plain words"); continue }
            let full = join(key, name)
            guard let field = fields.first(where: { $0.key == name }) else {
                let valid = fields.map(\.key)
                let fix = Validator.closest(name, in: valid).map { "Did you mean '\($0)'?" }
                    ?? "Valid keys here: " + valid.joined(separator: ", ")
                issue(k, full, "unknown key '\(name)'", fix)
                continue
            }
            seen.insert(name)
            if let value = self.value(v, type: field.type, key: full) { out[name] = value }
        }
        for f in fields where f.required && !seen.contains(f.key) {
            issue(node, join(key, f.key), "missing required key '\(f.key)'", "Add it (\(f.doc))")
        }
        return out
    }

    /// The value of `node` read as `type`, or nil with an issue naming `key`.
    mutating func value(_ node: Node, type: FieldType, key: String) -> Any? {
        switch type {
        case .int, .size, .number, .bool, .string, .choice:
            return scalar(node, type: type, key: key)
        case .inputPath:
            return inputPath(node, key: key)
        case .inputPaths:
            return inputPaths(node, key: key)
        case .outputPath:
            return outputPath(node, key: key)
        case .list(let element):
            guard case .sequence(let seq) = node else {
                issue(node, key, "must be a list, got \(describe(node))", "Write a list: [a, b] or one '- item' per line")
                return nil
            }
            return seq.enumerated().compactMap { i, item in value(item, type: element, key: "\(key)[\(i)]") }
        case .object(let fields):
            return object(node, fields: fields, key: key)
        case .oneOf(let forms):
            // The first form that takes the value without an issue; otherwise the last form's issues.
            let before = issues
            for form in forms {
                issues = before
                if let v = value(node, type: form, key: key), issues.count == before.count { return v }
            }
            return nil
        }
    }

    func scalarText(_ node: Node) -> String? {
        if case .scalar(let s) = node { return s.string }
        return nil
    }

    /// Integers, sizes, numbers (checked against their bounds), booleans, text and choices.
    mutating func scalar(_ node: Node, type: FieldType, key: String) -> Any? {
        let text = scalarText(node)
        switch type {
        case .int(let bounds):
            guard let s = text, let i = node.int, !s.contains(".") else {
                issue(node, key, "must be an integer, got \(describe(node))", "Write a whole number, e.g. \(key.hasSuffix("epochs") ? "20" : "8")")
                return nil
            }
            if let p = bounds.check(Double(i), integer: true) { issue(node, key, p.problem, p.fix); return nil }
            return i
        case .size:
            guard let s = text, let bytes = try? ByteSize.parse(s) else {
                issue(node, key, "must be a memory size, got \(describe(node))", "Write a number with K, M, G or T, e.g. 8G or 512M")
                return nil
            }
            if let p = PipelineSchema.check(key, Double(bytes)) { issue(node, key, p.problem, p.fix); return nil }
            return bytes
        case .number(let bounds):
            guard text != nil, let d = node.float else {
                issue(node, key, "must be a number, got \(describe(node))", "Write a number, e.g. 0.5")
                return nil
            }
            if let p = bounds.check(d, integer: false) { issue(node, key, p.problem, p.fix); return nil }
            return d
        case .bool:
            guard text != nil, let b = node.bool else {
                issue(node, key, "must be true or false, got \(describe(node))", "Write true or false")
                return nil
            }
            return b
        case .choice(let options):
            guard let s = text, options.contains(s) else {
                let fix = text.flatMap { Validator.closest($0, in: options) }.map { "Did you mean '\($0)'? " } ?? ""
                issue(node, key, "must be one of \(options.joined(separator: ", ")), got \(describe(node))", fix + "Use one of the listed values")
                return nil
            }
            return s
        default:  // .string
            guard let s = text else { issue(node, key, "must be text, got \(describe(node))", "Write a single value"); return nil }
            return s
        }
    }

    /// A path resolved against the pipeline's folder; a missing or non-regular file is an issue.
    mutating func inputPath(_ node: Node, key: String) -> String? {
        guard let s = scalarText(node) else { issue(node, key, "must be a path, got \(describe(node))", "Write the file's path"); return nil }
        let resolved = PipelineLoader.resolve(s, base)
        if checkFiles && !s.hasPrefix("/vsi"), let (problem, hint) = InputFile.problem(resolved, expecting: .fileOrDirectory) {
            if problem == "not found" {
                issue(node, key, "file not found: \(s) (looked for \(resolved))", "Check the path; relative paths start at the pipeline file's folder")
            } else {
                issue(node, key, "\(s) \(problem)", hint)
            }
        }
        return resolved
    }

    /// One path or a list of them; a nested list is the mosaic of one source, kept as "a.tif+b.tif".
    mutating func inputPaths(_ node: Node, key: String) -> [String]? {
        guard case .sequence(let seq) = node else { return inputPath(node, key: key).map { [$0] } }
        var out: [String] = []
        for (i, item) in seq.enumerated() {
            if case .sequence(let parts) = item {
                let files = parts.enumerated().compactMap { j, part in inputPath(part, key: "\(key)[\(i)][\(j)]") }
                if !files.isEmpty { out.append(files.joined(separator: "+")) }
            } else if let p = inputPath(item, key: "\(key)[\(i)]") {
                out.append(p)
            }
        }
        if out.isEmpty && seq.isEmpty { issue(node, key, "is an empty list", "List at least one file") }
        return out
    }

    /// A folder for outputs, resolved against the pipeline's folder; an existing file is an issue.
    mutating func outputPath(_ node: Node, key: String) -> String? {
        guard let s = scalarText(node) else { issue(node, key, "must be a path, got \(describe(node))", "Write a directory path"); return nil }
        let resolved = PipelineLoader.resolve(s, base)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory) && !isDirectory.boolValue {
            issue(node, key, "\(s) is a file, not a folder", "Give a folder for the run's outputs (it is created if missing)")
        }
        return resolved
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s): return "'\(s.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// Checks that span keys: every scene has labels, vector labels name their attribute,
    /// class values and ignore values differ.
    mutating func crossChecks(_ value: [String: Any], root: Node) {
        guard let data = value["data"] as? [String: Any] else { return }
        let dataNode = root["data"]
        let scenes = data["scenes"] as? [[String: Any]] ?? []
        for (i, s) in scenes.enumerated() {
            let node = dataNode?["scenes"]?[i]
            if s["labels"] == nil && s["vector_labels"] == nil {
                issue(node, "data.scenes[\(i)]", "the scene has no labels", "Add labels: (a raster on the image grid) or vector_labels: with label_attribute:")
            }
            if let name = s["name"] as? String, name.isEmpty || name.contains("/") {
                issue(node?["name"], "data.scenes[\(i)].name", "'\(name)' is not a file name", "Give a name without '/', e.g. LC08_L1TP_044034_20200101")
            }
            if s["vector_labels"] != nil && s["label_attribute"] == nil && s["burn"] == nil {
                issue(node, "data.scenes[\(i)].label_attribute", "vector labels need the attribute holding the class",
                      "Add label_attribute: <field name>, or burn: <class value> when every feature is one class")
            }
        }
        if scenes.isEmpty && (data["tile_sets"] as? [Any] ?? []).isEmpty {
            issue(dataNode, "data.scenes", "no training data", "List scenes (image and labels) or tile_sets")
        }
        tileSplitChecks(data["tile_sets"] as? [[String: Any]] ?? [], node: dataNode?["tile_sets"])
        let classes = data["classes"] as? [[String: Any]] ?? []
        let values = classes.compactMap { $0["value"] as? Int }
        if classes.count < 2 {
            issue(dataNode?["classes"], "data.classes", classes.isEmpty ? "no classes" : "only one class",
                  "List at least two classes, e.g. - {value: 1, name: water}")
        }
        if Set(values).count != values.count { issue(dataNode?["classes"], "data.classes", "two classes share a value", "Give every class its own value") }
        let ignore = (data["ignore"] as? [Any] ?? []).compactMap { $0 as? Int }
        for case let (i, color as String) in (data["ignore"] as? [Any] ?? []).enumerated() where RGBA(hex: color) == nil {
            issue(dataNode?["ignore"]?[i], "data.ignore[\(i)]", "'\(color)' is neither a label value nor a colour", "Write values as numbers and colours quoted: \"#000000\"")
        }
        for v in ignore where values.contains(v) {
            issue(dataNode?["ignore"], "data.ignore", "value \(v) is both a class and ignored", "Remove it from one of the lists")
        }
        for (i, c) in classes.enumerated() {
            if let color = c["color"] as? String, color.range(of: #"^#?[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$"#, options: .regularExpression) == nil {
                issue(dataNode?["classes"]?[i]?["color"], "data.classes[\(i)].color", "'\(color)' is not a colour", "Write it as #rrggbb, quoted: \"#1f78b4\"")
            }
        }
    }

    /// A tile set's split lists are read only with `method: lists`, which needs at least one.
    mutating func tileSplitChecks(_ sets: [[String: Any]], node: Node?) {
        for (i, set) in sets.enumerated() {
            guard let split = set["split"] as? [String: Any] else { continue }
            let key = "data.tile_sets[\(i)].split", splitNode = node?[i]?["split"]
            let method = split["method"] as? String ?? "hash"
            let lists = ["train", "validation", "test"].filter { split[$0] != nil }
            if method == "lists" && lists.isEmpty {
                issue(splitNode, key, "method lists names no list", "Add train:, validation: and test: list files (one chip id or file name per line)")
            } else if method != "lists", let first = lists.first {
                issue(splitNode?[first], "\(key).\(first)", "a list is given but the split method is \(method)",
                      "Set method: lists to use the dataset's lists, or remove \(lists.joined(separator: ", "))")
            }
        }
    }

    /// The valid key closest to a misspelt one (edit distance ≤ 2, or a shared prefix).
    static func closest(_ word: String, in options: [String]) -> String? {
        func distance(_ a: String, _ b: String) -> Int {
            let a = Array(a), b = Array(b)
            var prev = Array(0...b.count)
            for i in 1...max(1, a.count) where !a.isEmpty {
                var cur = [i] + Array(repeating: 0, count: b.count)
                for j in 1...max(1, b.count) where !b.isEmpty {
                    cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                }
                prev = cur
            }
            return a.isEmpty ? b.count : b.isEmpty ? a.count : prev[b.count]
        }
        let scored = options.map { ($0, distance(word.lowercased(), $0)) }.sorted { $0.1 < $1.1 }
        if let best = scored.first, best.1 <= 2 { return best.0 }
        return options.first { $0.hasPrefix(word) || word.hasPrefix($0) }
    }
}
