import Core
import Foundation
import GeoRaster
import ModelIO
import Testing
import TestSupport

/// `terraseg evaluate --model --tiles …` scores a model on a tile set's test chips: the
/// confusion matrix over all test chips equals one counted by hand from each chip's map.
@Suite struct TestChipEvaluationTests {
    let dir = TemporaryDirectory("terraseg-testchips")

    /// Chips c0…c5 (32² windows of a synthetic scene); c1 and c4 are the test list.
    func chipSet() throws -> (root: String, model: String, split: String, test: [String], scene: SyntheticScene) {
        let scene = try SyntheticScene(in: dir.path, width: 96, height: 64)
        let model = dir.file("model")
        try TinyModel.seeded(scene, output: model)
        let root = dir.file("chips")
        for sub in ["images", "masks"] { try FileManager.default.createDirectory(atPath: root + "/" + sub, withIntermediateDirectories: true) }
        for i in 0..<6 {
            let window = Window(column: (i % 3) * 32, row: (i / 3) * 32, width: 32, height: 32)
            try RasterMaker.crop(scene.image, window: window, to: "\(root)/images/c\(i).tif", type: .float32, nodata: scene.nodata)
            try RasterMaker.crop(scene.labels, window: window, to: "\(root)/masks/c\(i).tif", type: .byte, nodata: Double(SyntheticScene.labelNodata))
        }
        var lists: [String] = []
        for (name, ids) in [("train", "c0\n"), ("val", "c2.tif\n"), ("test", "c1\nimages/c4.tif\n")] {
            let path = dir.file("\(name).txt")
            try Data(ids.utf8).write(to: URL(fileURLWithPath: path))
            lists.append(path)
        }
        return (root, model, "lists:" + lists.joined(separator: ","), ["c1", "c4"], scene)
    }

    @Test func evaluateOnTheTestSplitEqualsTheConfusionCountedByHand() throws {
        let set = try chipSet()
        let r = try Tool.run(Tool.terraseg, ["evaluate", "--model", set.model, "--tiles", set.root, "--tile-images", "images/{id}.tif",
                                             "--tile-mask", "masks/{id}.tif", "--tile-split", set.split, "--ignore", "0", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let report = try #require(json["report"] as? [String: Any])
        let values = try #require((report["classes"] as? [[String: Any]])?.compactMap { $0["value"] as? Int })
        let matrix = try #require(report["confusion_matrix"] as? [[Int]])
        // By hand: map each test chip with `terraseg predict`, count (label, map) over its pixels.
        var counts: [Int: [Int: Int]] = [:], pixels = 0
        for id in set.test {
            let maps = dir.file("maps-\(id)")
            let p = try Tool.run(Tool.terraseg, ["predict", "--model", set.model, "--input", "\(set.root)/images/\(id).tif", "--output", maps])
            #expect(p.status == 0, "\(p.stderr)")
            let map = try Dataset(path: "\(maps)/\(id)_map.tif").read(window: Window(width: 32, height: 32))
            let mask = try Dataset(path: "\(set.root)/masks/\(id).tif").read(window: Window(width: 32, height: 32))
            for i in 0..<(32 * 32) where mask.valid[i] != 0 && mask.values[i] != 0 && map.valid[i] != 0 {
                counts[Int(mask.values[i]), default: [:]][Int(map.values[i]), default: 0] += 1
                pixels += 1
            }
        }
        #expect(pixels > 500)
        #expect(report["pixels"] as? Int == pixels)
        for (i, t) in values.enumerated() {
            for (j, p) in values.enumerated() { #expect(matrix[i][j] == counts[t]?[p] ?? 0, "reference \(t), predicted \(p)") }
        }
        let text = try Tool.run(Tool.terraseg, ["evaluate", "--model", set.model, "--tiles", set.root, "--tile-images", "images/{id}.tif",
                                                "--tile-mask", "masks/{id}.tif", "--tile-split", set.split, "--ignore", "0"])
        #expect(text.stdout.contains("on 2 test chips of"))
        #expect(text.stdout.contains("Confusion matrix"))
        #expect(text.stdout.contains("mean IoU"))
    }

    /// Colour-coded masks (through the model's class colours, `--ignore '#000000'`) and plain
    /// PNG masks (no georeference, the chip's size) score exactly as the value masks they copy.
    @Test(.enabled(if: Tool.exists("gdal_translate")))
    func colourAndPlainPNGMasksScoreAsValueMasks() throws {
        let set = try chipSet()
        let classes = try ModelBundle.read(set.model).classes.classes
        let palette = Dictionary(uniqueKeysWithValues: classes.map { ($0.value, $0.color) })
        for sub in ["rgb", "png"] { try FileManager.default.createDirectory(atPath: "\(set.root)/\(sub)", withIntermediateDirectories: true) }
        for i in 0..<6 {
            try RasterMaker.colorMask(values: "\(set.root)/masks/c\(i).tif", to: "\(set.root)/rgb/c\(i).tif", colors: palette)
            let r = try Tool.run("gdal_translate", ["-q", "--config", "GDAL_PAM_ENABLED", "NO", "-of", "PNG", "-a_nodata", "none",
                                                    "\(set.root)/masks/c\(i).tif", "\(set.root)/png/c\(i).png"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        func report(_ mask: String, _ extra: [String]) throws -> [String: Any] {
            let r = try Tool.run(Tool.terraseg, ["evaluate", "--model", set.model, "--tiles", set.root, "--tile-images", "images/{id}.tif",
                                                 "--tile-mask", mask, "--tile-split", set.split, "--json"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            return try #require(json["report"] as? [String: Any])
        }
        let byValue = try report("masks/{id}.tif", ["--ignore", "0", "--ignore", String(SyntheticScene.labelNodata)])
        let byColour = try report("rgb/{id}.tif", ["--tile-mask-colors", "--ignore", "#000000"])
        let byPNG = try report("png/{id}.png", ["--ignore", "0,\(SyntheticScene.labelNodata)"])
        let matrix = try #require(byValue["confusion_matrix"] as? [[Int]])
        #expect((byValue["pixels"] as? Int ?? 0) > 500)
        for other in [byColour, byPNG] {
            #expect(other["confusion_matrix"] as? [[Int]] == matrix)
            #expect(other["pixels"] as? Int == byValue["pixels"] as? Int)
        }
        let refused = try Tool.run(Tool.terraseg, ["evaluate", "--model", set.model, "--tiles", set.root, "--tile-images", "images/{id}.tif",
                                                   "--tile-mask", "masks/{id}.tif", "--tile-split", set.split, "--ignore", "#000000"])
        #expect(refused.status != 0 && refused.stderr.contains("colours are ignored only in colour-coded masks"), "\(refused.stderr)")
    }

    /// `terraseg run` on a tile set with a test list scores its test chips in the evaluate
    /// stage, as `terraseg evaluate --tiles` does, and the report shows the table.
    @Test func thePipelineScoresTheTestChips() throws {
        let set = try chipSet()
        let lists = set.split.dropFirst("lists:".count).split(separator: ",").map(String.init)
        let classes = SyntheticScene.classes.map { "{value: \($0.value), name: \($0.name)}" }.joined(separator: ", ")
        try """
            name: chips
            output: run
            data:
              tile_sets:
                - {root: \(set.root), images: ["images/{id}.tif"], mask: "masks/{id}.tif",
                   split: {method: lists, train: \(lists[0]), validation: \(lists[1]), test: \(lists[2])}}
              classes: [\(classes)]
              ignore: [0]
            tiling: {patch: 32, stride: 32, max_invalid: 0.95}
            model: {widths: [8, 16], bottleneck_width: 16, bottleneck_dilations: [1]}
            training: {epochs: 1, batch_size: 1}
            """.write(toFile: dir.file("job.yaml"), atomically: true, encoding: .utf8)
        let r = try Tool.run(Tool.terraseg, ["run", dir.file("job.yaml")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("evaluate: 2 test chip(s) of \(set.root)"), "\(r.stderr)")
        let run = dir.file("run")
        let saved = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/evaluation.json"))) as? [[String: Any]])
        #expect(saved.count == 1 && (saved.first?["prediction"] as? String)?.hasPrefix("2 test chips of") == true)
        let cli = try Tool.run(Tool.terraseg, ["evaluate", "--model", run + "/model", "--tiles", set.root, "--tile-images", "images/{id}.tif",
                                               "--tile-mask", "masks/{id}.tif", "--tile-split", set.split, "--ignore", "0", "--json"])
        #expect(cli.status == 0, "\(cli.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(cli.stdout.utf8)) as? [String: Any])
        let expected = try #require((json["report"] as? [String: Any])?["confusion_matrix"] as? [[Int]])
        #expect((saved.first?["report"] as? [String: Any])?["confusion_matrix"] as? [[Int]] == expected)
        let report = try String(contentsOfFile: run + "/report.html", encoding: .utf8)
        #expect(report.contains("Test chips: 2 test chips of") && report.contains("Per-class scores (test chips)"))

        // Run again: nothing changed, the test chips are not mapped again; their scores are kept.
        let again = try Tool.run(Tool.terraseg, ["run", dir.file("job.yaml")])
        #expect(again.status == 0 && again.stderr.contains("train: up to date"), "\(again.stderr)")
        #expect(!again.stderr.contains("evaluate: 2 test chip(s)") && again.stderr.contains("test chips up to date"), "\(again.stderr)")
        let kept = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/evaluation.json"))) as? [[String: Any]])
        #expect((kept.first?["report"] as? [String: Any])?["confusion_matrix"] as? [[Int]] == expected)
        #expect(try String(contentsOfFile: run + "/report.html", encoding: .utf8).contains("Per-class scores (test chips)"))

        // A test chip rewritten (the same pixels, a new file): scored again, the model kept.
        let scene = set.scene
        try RasterMaker.crop(scene.labels, window: Window(column: 32, row: 0, width: 32, height: 32), to: "\(set.root)/masks/c1.tif",
                             type: .byte, nodata: Double(SyntheticScene.labelNodata))
        let rescored = try Tool.run(Tool.terraseg, ["run", dir.file("job.yaml")])
        #expect(rescored.status == 0 && rescored.stderr.contains("train: up to date"), "\(rescored.stderr)")
        #expect(rescored.stderr.contains("evaluate: 2 test chip(s)"), "\(rescored.stderr)")

        // A training chip rewritten: the model is not taken for the one trained on the old chip.
        try RasterMaker.crop(scene.image, window: Window(column: 0, row: 0, width: 32, height: 32), to: "\(set.root)/images/c0.tif",
                             type: .float32, nodata: scene.nodata)
        let retrained = try Tool.run(Tool.terraseg, ["run", dir.file("job.yaml")])
        #expect(retrained.status == 0 && !retrained.stderr.contains("train: up to date"), "\(retrained.stderr)")
        #expect(retrained.stderr.contains("Training from scratch: the training data changed"), "\(retrained.stderr)")
    }

    @Test func aHashSplitHasNoTestChips() throws {
        let set = try chipSet()
        let r = try Tool.run(Tool.terraseg, ["evaluate", "--model", set.model, "--tiles", set.root, "--tile-images", "images/{id}.tif",
                                             "--tile-mask", "masks/{id}.tif"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("a seeded hash split has no test chips"))
    }
}
