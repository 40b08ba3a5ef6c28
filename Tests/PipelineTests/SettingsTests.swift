import Foundation
import Pipeline
import Testing
import TestSupport
import Training

/// One definition per setting: the schema's documented defaults are the ones the code
/// applies, its ranges are checked in YAML and in the typed options alike.
@Suite struct SettingsDefaultsTests {
    /// A pipeline with one element in every list of mappings and nothing else: every other
    /// key takes the default the loader applies.
    static let minimal = """
    data:
      scenes: [{image: scene.tif, labels: labels.tif}]
      tile_sets: [{root: tiles, images: ["{id}.tif"], mask: "{id}_m.png"}]
      classes: [{value: 1, name: a}, {value: 2, name: b}]
    """

    /// Keys whose code default is nil and whose documented default names what nil means.
    static let nilMeans: Set<String> = ["data.scenes[].role", "data.scenes[].unmatched", "data.tile_sets[].split.method"]
    /// Settings the loader fills from another documented key (colours listed under data.ignore).
    static let filledFrom: [String: String] = ["data.ignore_colors": "data.ignore"]
    /// Keys the minimal pipeline sets (their values are not defaults).
    static let given: Set<String> = ["data.scenes[].labels"]

    static func appliedDefaults() throws -> [String: Any] {
        let loaded = try PipelineLoader.parse(minimal, file: "minimal.yaml", base: "/nonexistent", checkFiles: false)
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try #require(try JSONSerialization.jsonObject(with: encoder.encode(loaded.spec)) as? [String: Any])
    }

    @Test func everyDocumentedDefaultIsTheAppliedDefault() throws {
        var checked = 0
        func walk(_ fields: [Field], _ json: [String: Any], prefix: String) {
            let documented = Set(fields.map(\.key))
            for key in json.keys where !documented.contains(key) && Self.filledFrom[prefix + key] == nil {
                Issue.record("\(prefix)\(key) is a setting the schema does not document")
            }
            for f in fields {
                let key = prefix + f.key, value = json[f.key].flatMap { $0 is NSNull ? nil : $0 }
                switch f.type {
                case .object(let sub):
                    walk(sub, value as? [String: Any] ?? [:], prefix: key + ".")
                    continue
                case .list(.object(let sub)):
                    let items = value as? [[String: Any]] ?? []
                    if let first = items.first { walk(sub, first, prefix: key + "[].") }
                    if key == "loss.terms" {
                        #expect(f.defaultText == "[" + items.compactMap { $0["kind"] as? String }.joined(separator: ", ") + "]", "\(key)")
                        checked += 1
                    }
                    continue
                default: break
                }
                if f.required || Self.given.contains(key) { continue }
                checked += 1
                guard let value else {
                    let literal = Self.matches(f.defaultText, f.type, example: nil)
                    #expect(!literal || Self.nilMeans.contains(key),
                            "\(key): documented default '\(f.defaultText)' but the code applies none")
                    continue
                }
                #expect(Self.matches(f.defaultText, f.type, example: value), "\(key): documented '\(f.defaultText)', applied \(value)")
            }
        }
        walk(PipelineSchema.fields, try Self.appliedDefaults(), prefix: "")
        #expect(checked > 50)
    }

    /// Whether `text` is the literal `value` of `type` (with `value` nil: whether `text` is
    /// a literal of the type at all, rather than a description such as "patch / 2").
    static func matches(_ text: String, _ type: FieldType, example value: Any?) -> Bool {
        switch type {
        case .int, .number:
            guard let d = Double(text) else { return false }
            guard let v = (value as? NSNumber)?.doubleValue else { return value == nil }
            return abs(d - v) <= 1e-6 * max(1, abs(v))
        case .bool:
            guard text == "true" || text == "false" else { return false }
            return value == nil || (value as? Bool).map { String($0) == text } == true
        case .string:
            // Any text could be a literal: only an applied value can be compared.
            return value as? String == text
        case .choice(let options):
            return options.contains(text) && (value == nil || value as? String == text)
        case .list(let element):
            guard text.hasPrefix("["), text.hasSuffix("]") else { return false }
            let parts = text.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let items = value as? [Any] else { return value == nil }
            return parts.count == items.count && zip(parts, items).allSatisfy { matches($0, element, example: $1) }
        default:
            return false
        }
    }

    @Test func theLibraryAndThePipelineShareDefaults() {
        let spec = PipelineSpec()
        #expect(spec.trainingOptions == TrainingOptions())
        #expect(spec.prediction.batchSize == 2)
        #expect(spec.prediction.options.batchSize == 2)
    }
}

@Suite struct SettingsRangeTests {
    let dir = TemporaryDirectory()

    func issues(_ extra: String) throws -> [PipelineIssue] {
        try "x".write(toFile: dir.file("scene.tif"), atomically: true, encoding: .utf8)
        try "x".write(toFile: dir.file("labels.tif"), atomically: true, encoding: .utf8)
        let yaml = BrokenPipelineTests.good + "\n" + extra + "\n"
        try yaml.write(toFile: dir.file("job.yaml"), atomically: true, encoding: .utf8)
        do {
            _ = try PipelineLoader.load(dir.file("job.yaml"))
            return []
        } catch let e as PipelineError {
            return e.issues
        }
    }

    @Test func aLossTermWithoutWeightWeighsOne() throws {
        #expect(try issues("loss: {terms: [{kind: dice}]}").isEmpty)
        let loaded = try PipelineLoader.parse(BrokenPipelineTests.good.replacingOccurrences(of: "scene.tif", with: "/x.tif")
            .replacingOccurrences(of: "labels.tif", with: "/y.tif") + "\nloss:\n  terms:\n    - kind: dice\n    - {kind: focal, weight: 0.5}\n",
            file: "job.yaml", base: "/", checkFiles: false)
        #expect(loaded.spec.loss.terms == [LossOptions.Term(.dice, weight: 1), LossOptions.Term(.focal, weight: 0.5)])
    }

    @Test func absurdValuesAreRefusedWithTheKeyTheLineAndTheSettingToLower() throws {
        let found = try issues("prediction: {tile: 100000, margin: 5000, batch_size: 0}\nmodel: {widths: [16, 99999]}")
        let byKey = Dictionary(found.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byKey["prediction.tile"]?.problem == "must be at most 16384, got 100000")
        #expect(byKey["prediction.tile"]?.fix == "Lower it to 16384 or less")
        #expect(byKey["prediction.margin"]?.problem == "must be at most 4096, got 5000")
        #expect(byKey["prediction.batch_size"]?.problem == "must be at least 1, got 0")
        #expect(byKey["model.widths[1]"]?.line == 12)
        #expect(found.count == 4)
    }

    @Test func fractionsAndRatesMustBeInRange() throws {
        let found = try issues("""
        optimizer: {learning_rate: 0}
        tiling: {max_invalid: 1.5, split: {method: rows, train_fraction: 1}}
        loss: {terms: [{kind: dice, weight: -1}]}
        """)
        #expect(Set(found.map(\.key)) == ["optimizer.learning_rate", "tiling.max_invalid", "tiling.split.train_fraction", "loss.terms[0].weight"])
        #expect(found.first { $0.key == "optimizer.learning_rate" }?.problem == "must be greater than 0, got 0")
    }

    @Test func aPatchTheNetworkCannotDivideIsRefusedBeforeTraining() throws {
        let found = try issues("tiling: {patch: 102}\nmodel: {widths: [16, 32]}")
        #expect(found.map(\.key) == ["tiling.patch"])
        #expect(found.first?.problem == "102 is not a multiple of 4, the network's down-sampling factor")
        #expect(found.first?.fix == "Use 104 (or another multiple of 4), or fewer U-Net levels")
        #expect(found.first?.line == 11)
        #expect(try issues("tiling: {patch: 102}\nmodel: {widths: [16, 32], kind: dilated}").isEmpty)
        #expect(try issues("model: {widths: []}").map { "\($0.key): \($0.problem)" } == ["model.widths: is empty"])
    }

    /// Widths [4, 8] used to stop the process at UpsampleConcat's layout precondition.
    @Test func widthsAFixedJunctionCannotConcatenateAreRefused() throws {
        let found = try issues("model: {widths: [4, 8]}")
        #expect(found.map(\.key) == ["model.widths"])
        #expect(found.first?.problem.contains("8 channels feed a bilinear decoder junction, which needs a multiple of 16") == true)
        #expect(try issues("model: {widths: [8, 16]}").isEmpty)
        #expect(try issues("model: {widths: [4, 8], upsampling: transposed}").isEmpty)
    }

    @Test func theTypedOptionsGiveTheSchemasIssues() {
        var o = TrainingOptions()
        o.batchSize = 0
        o.split = SplitOptions(method: .blocks, blockSize: 0)
        #expect(o.issues().map(\.description) == [
            "tiling.split.block_size: must be at least 1, got 0. Use a value ≥ 1 and ≤ 16384",
            "training.batch_size: must be at least 1, got 0. Use a value ≥ 1 and ≤ 4096",
        ])
    }

    @Test func textFormsParseOnce() throws {
        #expect(try SplitOptions(parsing: "blocks:256:0.3") == SplitOptions(method: .blocks, blockSize: 256, validationFraction: 0.3))
        #expect(try SplitOptions(parsing: "rows:0.7") == SplitOptions(method: .rows, trainFraction: 0.7))
        #expect(throws: SettingSyntaxError.self) { try SplitOptions(parsing: "blocks:x") }
        #expect(throws: SettingSyntaxError.self) { try SplitOptions(parsing: "none:3") }
        #expect(try LossOptions.Term.parseList("dice*0.5+ce") == [LossOptions.Term(.dice, weight: 0.5), LossOptions.Term(.crossEntropy)])
        #expect(throws: SettingSyntaxError.self) { try LossOptions.Term.parseList("dice+") }
        #expect(try IntList.parse("4, 3,2") == [4, 3, 2])
        #expect(throws: SettingSyntaxError.self) { try IntList.parse("4,,2") }
    }
}
