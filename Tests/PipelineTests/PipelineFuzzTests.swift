import Core
import Foundation
@testable import Pipeline
import Testing
import TestSupport

/// Seeded mutation fuzzing of the pipeline loader: damaged variants of a valid pipeline must
/// each load or be refused with a `PipelineError` naming the file, never crash or hang.
@Suite struct PipelineFuzzTests {
    static let iterations = 2000
    static let timeBudget: TimeInterval = 10

    static let seedText = """
        name: fuzz
        output: runs/fuzz
        data:
          scenes:
            - image: [a.tif, b.tif]
              labels: labels.tif
          classes:
            - {value: 1, name: water, color: "#1f78b4"}
            - {value: 2, name: forest}
          ignore: [0]
        tiling: {patch: 32, stride: 16, split: {method: rows, train_fraction: 0.7}}
        model: {kind: unet, widths: [8, 16], upsampling: bilinear}
        loss:
          terms:
            - {kind: focal, weight: 1}
        training: {epochs: 2, batch_size: 4, seed: 7}
        prediction: {tile: 64, blend: hann}

        """

    @Test func seedLoads() throws {
        _ = try PipelineLoader.parse(Self.seedText, file: "fuzz.yaml", base: "/tmp", checkFiles: false)
    }

    @Test func damagedPipelinesLoadOrAreRefused() throws {
        var mutator = Mutator(seeds: [Data(Self.seedText.utf8)], tokens: ["epochs: ", "patch: ", "widths: ", "- ", "? ", "&x ", "*x", "!!binary "],
                              seed: 0xF022)
        let start = Date()
        var refused = 0, loaded = 0
        for _ in 0..<Self.iterations where Date().timeIntervalSince(start) < Self.timeBudget {
            let text = String(decoding: mutator.next(), as: UTF8.self)
            do {
                _ = try PipelineLoader.parse(text, file: "fuzz.yaml", base: "/tmp", checkFiles: false)
                loaded += 1
            } catch let error as PipelineError {
                #expect(error.issues.allSatisfy { $0.file == "fuzz.yaml" }, "\(error)")
                refused += 1
            }
        }
        #expect(refused > 0 && loaded + refused > 100, "loaded \(loaded), refused \(refused)")
    }

    /// The limits that keep the parser from hanging or overflowing its stack, each with its line.
    @Test func aliasesAndDeepNestingAreRefusedBeforeParsing() {
        let bomb = "a: &a [1, 1]\nb: &b [*a, *a]\n? *b\n: x\n"
        let deepFlow = "data: {ignore: " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}\n"
        let deepBlock = "data:\n  ignore:\n    " + String(repeating: "- ", count: 200) + "1\n"
        for (text, line, problem) in [(bomb, 2, "alias"), (deepFlow, 1, "nested too deep"), (deepBlock, 3, "nested too deep")] {
            let error = #expect(throws: PipelineError.self) { try PipelineLoader.parse(text, file: "p.yaml", base: "/tmp", checkFiles: false) }
            #expect(error?.issues.first?.line == line && error?.issues.first?.problem.contains(problem) == true, "\(String(describing: error))")
        }
        // Quoted text, comments and plain words may hold * [ { freely.
        let fine = "name: \"*[{\" # *[{\nmodel: {widths: [8, 16]}\n"
        #expect(YAMLLimits.issue(in: fine, file: "p.yaml") == nil)
    }

    @Test func aNameThatLeavesTheRunsFolderIsRefused() {
        for name in ["../escaped", "a/b", "..", ".hidden"] {
            let text = "name: \"\(name)\"\n" + Self.seedText.split(separator: "\n").dropFirst().joined(separator: "\n")
            let error = #expect(throws: PipelineError.self) { try PipelineLoader.parse(text, file: "p.yaml", base: "/tmp", checkFiles: false) }
            #expect(error?.issues.contains { $0.key == "name" && $0.line == 1 } == true, "\(name): \(String(describing: error))")
        }
    }
}
