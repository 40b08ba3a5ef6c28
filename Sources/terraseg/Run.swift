import ArgumentParser
import Core
import Distributed
import Foundation
import GeoRaster
import Pipeline
import Training

extension TerraSegCommand {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a pipeline file: train → predict → evaluate → report.",
            discussion: """
                The whole file is validated before any work starts. Stages whose outputs are up to date \
                (same settings and input files, by content) are skipped; --force reruns them. An interrupted run \
                continues from its last checkpoint when started again, unless its data or settings changed: \
                then training starts from scratch, keeping the old model until the new one replaces it. \
                Key reference: --reference.
                """)

        @Argument(help: "The pipeline file (YAML).")
        var pipeline: String?

        @Flag(help: "Rerun every stage even if its outputs are up to date (training from scratch: any checkpoint is discarded).")
        var force = false

        @Flag(help: "Print the reference of every pipeline key with its default (Markdown) and exit.")
        var reference = false

        @Flag(help: "Only validate the file.")
        var check = false

        @OptionGroup var global: GlobalOptions

        func run() throws {
            global.bootstrapLogging()
            let world = try Communicator.world()
            if reference {
                if world.isRoot { print(PipelineSchema.referenceMarkdown(), terminator: "") }
                return
            }
            guard let pipeline else { throw ValidationError("give a pipeline file, e.g. terraseg run pipelines/nc-landcover.yaml") }
            let loaded = try PipelineLoader.load(pipeline)
            if check {
                if world.isRoot { print("\(pipeline): valid (\(loaded.spec.data.scenes.count) scene(s), \(loaded.spec.data.classes.count) classes, output \(loaded.output))") }
                return
            }
            let runner = PipelineRunner(loaded)
            runner.force = force
            runner.communicator = world
            runner.terrasegVersion = terrasegVersion
            let outcome = try stoppable { try runner.execute() }
            guard world.isRoot else { return }
            var lines: [String] = []
            for m in outcome.maps { lines.append("Land-cover map:   \(m)") }
            lines.append("Report:           \(outcome.report)")
            lines.append("Model bundle:     \(outcome.bundle)")
            var headline = "Validation mIoU \(f3(outcome.validationMeanIoU)), overall accuracy \(f3(outcome.validationOverallAccuracy))"
            if let e = outcome.mapEvaluation.first {
                let area = loaded.spec.evaluation.region == .validation ? "validation area" : "whole scene"
                headline += "; map (\(area)): mIoU \(f3(e.report.meanIoU)), OA \(f3(e.report.overallAccuracy)), kappa \(f3(e.report.kappa))"
            }
            lines.append(headline)
            if !outcome.skipped.isEmpty { lines.append("Up to date, skipped: \(outcome.skipped.joined(separator: ", ")) (--force reruns)") }
            print(lines.joined(separator: "\n"))
        }

        func f3(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "–" }
    }

    struct QuicklookCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "quicklook",
            abstract: "Write a PNG preview of a class map (its colours) or of a scene (false colour).")

        @Argument(help: "A class map, or a scene (several band files are stacked).")
        var rasters: [String]

        @Option(name: .shortAndLong, help: "PNG to write (default: beside the input, .png).")
        var output: String?

        @Option(help: "Bands for a false-colour view of a scene, e.g. 4,3,2 (default: 3 bands from the last ones).", transform: IntList.parse)
        var bands: [Int]?

        @Option(name: .customLong("max-size"), help: "Longest side of the preview in pixels (16 to 16384).")
        var maxSize = 1024

        @OptionGroup var global: GlobalOptions

        /// The same range checks as the pipeline keys (a quicklook has no key of its own).
        func issues() -> [SettingIssue] {
            var issues: [SettingIssue] = []
            if let p = Bounds.between(16, 16384).check(Double(maxSize), integer: true) {
                issues.append(SettingIssue(key: "--max-size", problem: p.problem, fix: p.fix))
            }
            for (i, b) in (bands ?? []).enumerated() {
                if let p = Bounds.atLeast(1).check(Double(b), integer: true) {
                    issues.append(SettingIssue(key: "--bands[\(i)]", problem: p.problem, fix: p.fix))
                }
            }
            return issues
        }

        func run() throws {
            global.bootstrapLogging()
            try SettingsRefused.check(issues(), flags: [:])
            let out = output ?? (URL(fileURLWithPath: rasters[0]).deletingPathExtension().path + ".png")
            let first = try Dataset(path: rasters[0])
            if rasters.count == 1 && first.info.bands[0].hasColorTable && bands == nil {
                try Quicklook.classMap(rasters[0], to: out, maxSize: maxSize)
            } else {
                let total = try openRaster(rasters).info.bandCount
                let selection = bands ?? (total >= 4 ? [4, 3, 2] : total >= 3 ? [3, 2, 1] : [1])
                try Quicklook.falseColor(rasters, bands: selection, to: out, maxSize: maxSize)
            }
            print(out)
        }
    }
}
