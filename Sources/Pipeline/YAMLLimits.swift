import Foundation

/// What a pipeline file's text may hold, checked before it is parsed. YAML aliases can make a
/// few lines expand to billions of values ("billion laughs"), and deep nesting exhausts the
/// stack of the parser (Yams composes recursively), so both would hang or crash TerraSeg. A
/// pipeline needs neither: files over 1 MiB, aliases (`*name`), more than 64 nested brackets
/// and content indented past column 256 are refused, naming the line.
enum YAMLLimits {
    static let maxBytes = 1 << 20
    static let maxFlowDepth = 64
    static let maxColumn = 256

    /// The first limit `text` breaks, or nil.
    static func issue(in text: String, file: String) -> PipelineIssue? {
        var scanner = Scanner()
        var lineNumber = 0
        for line in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if let problem = scanner.scan(Array(line)) {
                return PipelineIssue(file: file, line: lineNumber, key: "(syntax)", problem: problem.problem, fix: problem.fix)
            }
        }
        return nil
    }

    /// Reads a line at a time, keeping quotes and bracket depth across lines.
    struct Scanner {
        var flowDepth = 0
        var quote: UInt8? = nil

        mutating func scan(_ line: [UInt8]) -> (problem: String, fix: String)? {
            let space = UInt8(ascii: " ")
            if quote == nil {
                // Block nesting: every level is indented further (`- ` and `? ` entries included).
                var column = 0
                while column < line.count {
                    let c = line[column]
                    let indicator = (c == UInt8(ascii: "-") || c == UInt8(ascii: "?")) && column + 1 < line.count && line[column + 1] == space
                    guard c == space || indicator else { break }
                    column += 1
                }
                if column > YAMLLimits.maxColumn {
                    return ("nested too deep (content starts at column \(column); at most \(YAMLLimits.maxColumn))",
                            "A pipeline needs a few levels: indent each by two spaces")
                }
            }
            var tokenStart = true
            for c in line {
                if let q = quote {
                    if c == q { quote = nil }  // '' and \" re-open at once: harmless for counting
                    tokenStart = false
                    continue
                }
                let opens = c == UInt8(ascii: "[") || c == UInt8(ascii: "{")
                if tokenStart && c == UInt8(ascii: "#") { return nil }  // comment
                if tokenStart && (c == UInt8(ascii: "'") || c == UInt8(ascii: "\"")) { quote = c }
                if tokenStart && c == UInt8(ascii: "*") {
                    return ("uses a YAML alias (*name)", "Write the values out: pipeline files do not support anchors and aliases")
                }
                if tokenStart && opens {
                    flowDepth += 1
                    if flowDepth > YAMLLimits.maxFlowDepth {
                        return ("nested too deep (more than \(YAMLLimits.maxFlowDepth) levels of [ ] or { })",
                                "A pipeline needs a few levels: write lists as [a, b] and sections as {key: value}")
                    }
                }
                if flowDepth > 0 && (c == UInt8(ascii: "]") || c == UInt8(ascii: "}")) { flowDepth -= 1 }
                tokenStart = c == space || c == UInt8(ascii: "\t") || opens || c == UInt8(ascii: ",") || c == UInt8(ascii: ":")
            }
            return nil
        }
    }
}
