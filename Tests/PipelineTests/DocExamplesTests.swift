import Foundation
@testable import Pipeline
import Testing
import TestSupport
import Training
import Yams

/// The examples in the reference and the README are valid YAML, and each whole pipeline among
/// them passes the schema: a user can copy them.
@Suite struct DocExamplesTests {
    static func text(_ file: String) throws -> String {
        try String(contentsOfFile: TestData.repositoryRoot.appendingPathComponent(file).path, encoding: .utf8)
    }

    /// The bodies of the ```yaml blocks of `markdown`.
    static func yamlBlocks(_ markdown: String) -> [String] {
        var blocks: [String] = [], current: [Substring]?
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if current == nil, trimmed == "```yaml" || trimmed == "```yml" { current = []; continue }
            if current != nil, trimmed == "```" { blocks.append(current!.joined(separator: "\n")); current = nil; continue }
            current?.append(line)
        }
        return blocks
    }

    /// Inline code spans (`…`) outside code blocks that hold an `{id}` template.
    static func templateSpans(_ markdown: String) -> [String] {
        var inBlock = false, spans: [String] = []
        for line in markdown.split(separator: "\n") {
            if line.trimmingCharacters(in: .whitespaces).hasPrefix("```") { inBlock.toggle(); continue }
            if inBlock { continue }
            let parts = line.split(separator: "`", omittingEmptySubsequences: false)
            for (i, part) in parts.enumerated() where i % 2 == 1 && part.contains("{id}") { spans.append(String(part)) }
            // Outside code, a template would be copied as it is written: it must be in a span.
            for (i, part) in parts.enumerated() where i % 2 == 0 && part.contains("{id}") {
                Issue.record("an {id} template outside code: \(line)")
            }
        }
        return spans
    }

    @Test func everyYAMLExampleParsesAndWholePipelinesPassTheSchema() throws {
        var pipelines = 0
        for file in ["docs/pipeline-reference.md", "README.md"] {
            let markdown = try Self.text(file)
            for block in Self.yamlBlocks(markdown) {
                let node = try #require(try Yams.compose(yaml: block), "\(file): \(block)")
                guard node.mapping?["data"] != nil else { continue }
                #expect(throws: Never.self, "\(file): \(block)") {
                    try PipelineLoader.parse(block, file: file, base: "/nonexistent", checkFiles: false)
                }
                pipelines += 1
            }
            for span in Self.templateSpans(markdown) {
                #expect(throws: Never.self, "\(file): `\(span)`") { try Yams.compose(yaml: span) }
            }
        }
        #expect(pipelines >= 2)
    }

    /// One worked example per dataset layout: lists (LandCover.ai), folders with one file per
    /// band (38-Cloud), colour-coded masks (DeepGlobe, Potsdam).
    @Test func oneExamplePerDatasetLayout() throws {
        let sets = try Self.yamlBlocks(try Self.text("docs/pipeline-reference.md")).compactMap { block -> TileSetSpec? in
            guard block.contains("tile_sets") else { return nil }
            return try PipelineLoader.parse(block, file: "x.yaml", base: "/data", checkFiles: false).spec.data.tileSets.first
        }
        #expect(sets.contains { $0.split?.method == "lists" && $0.split?.test != nil })
        #expect(sets.contains { $0.split?.method == "folders" && $0.images.count == 4 })
        let colours = try #require(Self.yamlBlocks(try Self.text("docs/pipeline-reference.md")).first { $0.contains("colors: true") })
        let loaded = try PipelineLoader.parse(colours, file: "x.yaml", base: "/data", checkFiles: false)
        #expect(loaded.spec.data.tileSets.first?.maskColors == true && loaded.spec.data.ignoreColors == ["#000000"])
        #expect(loaded.spec.data.classes.allSatisfy { $0.color != nil })
    }

    /// The LandCover.ai example's split lists are read relative to the pipeline file.
    @Test func splitListsAreResolvedLikeOtherPaths() throws {
        let block = try #require(Self.yamlBlocks(try Self.text("docs/pipeline-reference.md")).first { $0.contains("method: lists") })
        let loaded = try PipelineLoader.parse(block, file: "x.yaml", base: "/data", checkFiles: false)
        let split = try #require(loaded.spec.data.tileSets.first?.split)
        #expect(split.method == "lists")
        #expect(split.train == "/data/landcover.ai/train.txt" && split.test == "/data/landcover.ai/test.txt")
        #expect(throws: PipelineError.self) {
            try PipelineLoader.parse(block.replacingOccurrences(of: "method: lists", with: "method: random"), file: "x.yaml", base: "/data", checkFiles: false)
        }
    }

    /// What the test guards against: the unquoted template of the old reference is not YAML.
    @Test func anUnquotedTemplateIsNotYAML() {
        #expect(throws: (any Error).self) { try Yams.compose(yaml: "images: [images/{id}.tif]") }
        #expect(throws: (any Error).self) { try PipelineLoader.parse("data: {tile_sets: [{root: t, images: [images/{id}.tif], mask: \"{id}.png\"}]}",
                                                                    file: "x.yaml", base: "/nonexistent", checkFiles: false) }
    }
}
