import Foundation
import Testing
import TestSupport

/// Every numeric flag of every subcommand refuses zero, negative and absurd values with the
/// pipeline schema's message (the one `terraseg run --check` gives for the same value in a
/// pipeline file), before any data is read: the paths given do not exist.
@Suite struct SettingsFlagTests {
    /// A flag value the CLI must refuse, the pipeline key it sets and the same value in YAML
    /// (nil where YAML cannot write it, or the flag has no key).
    struct Case: Sendable, CustomStringConvertible {
        var command: String
        var flag: String
        var value: String
        var key: String?
        var yaml: String?
        var description: String { "\(command) \(flag)=\(value)" }
    }

    /// Required arguments of each subcommand, all pointing at nothing.
    static let required: [String: [String]] = [
        "train": [],
        "predict": ["--model", "/nonexistent/model", "--input", "/nonexistent/scene.tif", "--output", "/nonexistent/out"],
        "quicklook": ["/nonexistent/scene.tif"],
        "quantize": ["--model", "/nonexistent/model", "--calibration", "/nonexistent/scene.tif", "--output", "/nonexistent/out"],
    ]

    static func nested(_ key: String, _ value: String) -> String {
        let parts = key.split(separator: ".")
        return parts.reversed().reduce(value) { inner, k in "{\(k): \(inner)}" }.dropFirst().dropLast() + ""
    }

    static func train(_ flag: String, _ values: [String], key: String, yaml: (String) -> String? = { _ in nil }) -> [Case] {
        values.map { Case(command: "train", flag: flag, value: $0, key: key, yaml: yaml($0)) }
    }

    static func scalar(_ command: String, _ flag: String, _ values: [String], key: String) -> [Case] {
        values.map { Case(command: command, flag: flag, value: $0, key: key, yaml: nested(key, $0)) }
    }

    static let cases: [Case] = {
        var c: [Case] = []
        c += scalar("train", "--epochs", ["0", "-1", "10000000"], key: "training.epochs")
        c += scalar("train", "--batch-size", ["0", "-4", "100000"], key: "training.batch_size")
        c += scalar("train", "--cache-megabytes", ["-1", "2000000"], key: "training.cache_megabytes")
        c += scalar("train", "--freeze-encoder-epochs", ["-1", "1000000"], key: "training.freeze_encoder_epochs")
        c += scalar("train", "--reader-threads", ["0", "-2", "17"], key: "training.reader_threads")
        c += scalar("train", "--patch-size", ["0", "-8", "100000", "100"], key: "tiling.patch")
        c += scalar("train", "--stride", ["0", "-8", "100000"], key: "tiling.stride")
        c += scalar("train", "--max-invalid", ["-0.1", "1.5"], key: "tiling.max_invalid")
        c += scalar("train", "--lr", ["0", "-0.001", "1e9"], key: "optimizer.learning_rate")
        c += scalar("train", "--weight-decay", ["-1", "5"], key: "optimizer.weight_decay")
        c += scalar("train", "--warmup", ["-1", "1e9"], key: "schedule.warmup_epochs")
        c += scalar("train", "--seed", ["-1"], key: "training.seed")
        c += [Case(command: "train", flag: "--lr", value: "nan", key: "optimizer.learning_rate", yaml: nil)]
        c += train("--split", ["blocks:0", "blocks:-5", "blocks:100000000"], key: "tiling.split.block_size") {
            "tiling: {split: {method: blocks, block_size: \($0.split(separator: ":")[1])}}"
        }
        c += train("--split", ["blocks:256:0", "blocks:256:1", "blocks:256:-1"], key: "tiling.split.validation_fraction") {
            "tiling: {split: {method: blocks, validation_fraction: \($0.split(separator: ":")[2])}}"
        }
        c += train("--split", ["rows:0", "columns:1.5", "rows:-0.5"], key: "tiling.split.train_fraction") {
            let p = $0.split(separator: ":")
            return "tiling: {split: {method: \(p[0]), train_fraction: \(p[1])}}"
        }
        c += train("--widths", ["0", "-32", "100000"], key: "model.widths[0]") { "model: {widths: [\($0)]}" }
        c += train("--widths", ["32,0"], key: "model.widths[1]") { "model: {widths: [\($0)]}" }
        c += scalar("train", "--output-stride", ["0", "-8", "64"], key: "model.output_stride")
        c += train("--decoder-channels", ["0", "-16", "100000"], key: "model.decoder_channels[0]") { "model: {decoder_channels: [\($0)]}" }
        c += train("--loss", ["dice*-1", "dice*1e9"], key: "loss.terms[0].weight") {
            "loss: {terms: [{kind: dice, weight: \($0.split(separator: "*")[1])}]}"
        }
        c += train("--bands", ["0", "-1"], key: "data.bands[0]") { "BANDS \($0)" }
        c += train("--resolution", ["0", "-10", "1e9"], key: "data.resolution") { "DATA resolution: \($0)" }
        c += train("--nodata", ["nan"], key: "data.nodata[0]") { _ in nil }
        c += train("--nodata", ["0,inf"], key: "data.nodata[1]") { _ in nil }
        c += train("--bounds", ["nan,0,1,1"], key: "data.bounds[0]") { _ in nil }
        c += scalar("predict", "--tile", ["0", "-16", "100000"], key: "prediction.tile")
        c += scalar("quantize", "--tile", ["0", "-16", "100000"], key: "prediction.tile")
        c += scalar("predict", "--margin", ["-1", "100000"], key: "prediction.margin")
        c += scalar("predict", "--batch-size", ["0", "-1", "100000"], key: "prediction.batch_size")
        c += scalar("predict", "--min-mapping-unit", ["-1", "1000000000"], key: "prediction.min_mapping_unit")
        c += scalar("predict", "--polygon-simplify", ["-1", "1e9"], key: "prediction.polygon_simplify")
        c += [Case(command: "predict", flag: "--polygon-simplify", value: "nan", key: "prediction.polygon_simplify", yaml: nil)]
        c += scalar("train", "--memory", ["0", "-1G", "2P"], key: "memory")
        c += scalar("predict", "--memory", ["0", "-1G", "2P"], key: "memory")
        c += ["0", "-1", "100000"].map { Case(command: "quicklook", flag: "--max-size", value: $0, key: nil, yaml: nil) }
        c += ["0", "-1"].map { Case(command: "quicklook", flag: "--bands", value: $0, key: nil, yaml: nil) }
        return c
    }()

    /// Flags that take no number (paths, names, choices, switches): every other option of a
    /// subcommand must have a case above, so a new numeric flag cannot go untested.
    static let notNumeric: [String: Set<String>] = [
        "train": ["config", "image", "labels", "vector-labels", "label-attribute", "tiles", "tile-images", "tile-mask", "tile-split", "tile-mask-colors", "classes",
                  "ignore", "band-names", "resampling", "grid", "crs", "model", "upsampling", "encoder", "optimizer", "schedule", "normalization", "no-augment", "output", "resume", "restart", "sync-batchnorm",
                  "export-patches", "encoder-weights", "precision"],
        "predict": ["model", "input", "output", "blend", "tta", "cog", "probabilities", "confidence", "overwrite", "compression",
                    "allow-mismatch", "bands", "polygons", "mmu-connectedness", "precision"],
        "quicklook": ["output"],
        "quantize": ["model", "calibration", "output"],
        "evaluate": ["prediction", "labels", "model", "tiles", "tile-images", "tile-mask", "tile-split", "tile-mask-colors", "ignore", "json"],
        "info": ["json"],
        "run": ["force", "reference", "check"],
    ]

    @Test func everyNumericFlagHasACase() throws {
        for (command, names) in Self.notNumeric {
            let r = try Tool.run(Tool.terraseg, [command, "--experimental-dump-help"])
            let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            let arguments = (json["command"] as? [String: Any])?["arguments"] as? [[String: Any]] ?? []
            let flags = arguments.filter { $0["kind"] as? String != "positional" }
                .compactMap { (($0["preferredName"] as? [String: Any])?["name"] as? String) }
            #expect(!flags.isEmpty, "\(command)")
            for flag in flags where !names.contains(flag) && !["help", "version", "verbose"].contains(flag) {
                #expect(Self.cases.contains { $0.command == command && $0.flag == "--" + flag }, "\(command) --\(flag) has no case")
            }
        }
    }

    @Test(arguments: cases) func refusedWithTheSchemasMessage(_ c: Case) throws {
        let r = try Tool.run(Tool.terraseg, [c.command] + Self.required[c.command]! + ["\(c.flag)=\(c.value)"])
        #expect(r.status != 0, "\(c) was accepted")
        #expect(!r.crashed && !r.stderr.contains("Fatal error") && !r.stderr.lowercased().contains("backtrace"), "\(c): \(r.stderr)")
        if let key = c.key {
            #expect(r.stderr.contains("\(c.flag) (\(key)): "), "\(c): \(r.stderr)")
        } else {
            #expect(r.stderr.contains("\(c.flag)") && r.stderr.contains("must be"), "\(c): \(r.stderr)")
        }
        guard let key = c.key, let yaml = c.yaml else { return }
        // The same value in a pipeline file: `run --check` gives the same problem and fix.
        let expected = try Self.schemaMessage(key: key, yaml: yaml)
        #expect(r.stderr.contains("\(c.flag) (\(key)): \(expected)"), "\(c): CLI said \(r.stderr); the schema says \(expected)")
    }

    /// The connectedness of the minimum mapping unit is 4 or 8, in a pipeline file as on the
    /// command line (PredictCommandTests), refused with the key named.
    @Test func mmuConnectednessIsFourOrEight() throws {
        let message = try Self.schemaMessage(key: "prediction.mmu_connectedness", yaml: "prediction: {mmu_connectedness: 6}")
        #expect(message.hasPrefix("must be one of 4, 8, got '6'"), "\(message)")
    }

    @Test func flagsOverrideAPipelineFileAndAreCheckedWithIt() throws {
        let dir = TemporaryDirectory()
        for f in ["scene.tif", "labels.tif"] { try "not a raster".write(toFile: dir.file(f), atomically: true, encoding: .utf8) }
        try """
        data:
          scenes: [{image: scene.tif, labels: labels.tif}]
          classes: [{value: 1, name: a}, {value: 2, name: b}]
        model: {widths: [8, 16]}

        """.write(toFile: dir.file("job.yaml"), atomically: true, encoding: .utf8)
        // The file's two U-Net levels need a multiple of 4, so 102 is refused and 104 suggested.
        let r = try Tool.run(Tool.terraseg, ["train", "--config", dir.file("job.yaml"), "--patch-size", "102", "--epochs", "0"])
        #expect(r.status != 0 && !r.crashed)
        #expect(r.stderr.contains("--patch-size (tiling.patch): 102 is not a multiple of 4, the network's down-sampling factor. Use 104"), "\(r.stderr)")
        #expect(r.stderr.contains("--epochs (training.epochs): must be at least 1, got 0"), "\(r.stderr)")
        #expect(!r.stderr.contains("not a raster") && !r.stderr.contains("scene.tif"), "data was read before the settings were checked: \(r.stderr)")
    }

    /// The problem and fix `terraseg run --check` reports for `key` in a pipeline with `yaml`.
    static func schemaMessage(key: String, yaml: String) throws -> String {
        let dir = TemporaryDirectory()
        try "x".write(toFile: dir.file("scene.tif"), atomically: true, encoding: .utf8)
        try "x".write(toFile: dir.file("labels.tif"), atomically: true, encoding: .utf8)
        var bands = "", section = yaml
        if yaml.hasPrefix("BANDS ") { bands = "  bands: [\(yaml.dropFirst(6))]\n"; section = "" }
        if yaml.hasPrefix("DATA ") { bands = "  \(yaml.dropFirst(5))\n"; section = "" }
        let text = """
        name: t
        data:
          scenes: [{image: scene.tif, labels: labels.tif}]
          classes: [{value: 1, name: a}, {value: 2, name: b}]
        \(bands)\(section)

        """
        try text.write(toFile: dir.file("job.yaml"), atomically: true, encoding: .utf8)
        let r = try Tool.run(Tool.terraseg, ["run", "--check", dir.file("job.yaml")])
        let line = try #require(r.stderr.split(separator: "\n").first { $0.contains(" \(key): ") || $0.contains(": \(key): ") },
                                "run --check gave no issue for \(key): \(r.stderr)")
        return String(line[line.range(of: "\(key): ")!.upperBound...])
    }
}

/// A flag that sets a pipeline key has the key's default: the default shown by the argument
/// parser, or (for optional flags, whose default is the library's) the documented one.
@Suite struct SettingsFlagDefaultTests {
    /// key → documented default, from the generated reference (`terraseg run --reference`).
    static func documentedDefaults() throws -> [String: String] {
        let r = try Tool.run(Tool.terraseg, ["run", "--reference"])
        var out: [String: String] = [:]
        for line in r.stdout.split(separator: "\n") where line.hasPrefix("| `") {
            // Choices in the type column escape their bars as \|.
            let cells = line.replacingOccurrences(of: "\\|", with: "/").split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 5 else { continue }
            out[cells[1].trimmingCharacters(in: ["`"])] = cells[3].trimmingCharacters(in: ["`"])
        }
        return out
    }

    @Test(arguments: ["train", "predict"]) func flagDefaultsAreTheSchemas(_ command: String) throws {
        let documented = try Self.documentedDefaults()
        #expect(documented["prediction.batch_size"] == "2")
        let r = try Tool.run(Tool.terraseg, [command, "--experimental-dump-help"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let arguments = (json["command"] as? [String: Any])?["arguments"] as? [[String: Any]] ?? []
        var checked = 0
        for a in arguments {
            let abstract = a["abstract"] as? String ?? ""
            guard let range = abstract.range(of: #"\(pipeline key [a-z_.]+"#, options: .regularExpression) else { continue }
            let key = String(abstract[range].dropFirst("(pipeline key ".count))
            let name = ((a["preferredName"] as? [String: Any])?["name"] as? String) ?? "?"
            let expected = try #require(documented[key], "--\(name): \(key) is not in the reference")
            if let shown = a["defaultValue"] as? String {
                #expect(shown == expected, "--\(name): default \(shown), \(key) documents \(expected)")
            } else if a["kind"] as? String == "flag" {
                #expect(expected == "false", "--\(name) is off by default, \(key) documents \(expected)")
            } else {
                #expect(abstract.contains("default: \(expected))"), "--\(name): \(abstract)")
            }
            checked += 1
        }
        #expect(checked >= (command == "train" ? 18 : 8))
    }
}
