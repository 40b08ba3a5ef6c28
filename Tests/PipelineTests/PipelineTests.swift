import Core
import Foundation
import GeoRaster
@testable import Pipeline
import Testing
import TestSupport

@Suite struct PipelineFileTests {
    static let pipelines: [String] = {
        let dir = TestData.repositoryRoot.appendingPathComponent("pipelines").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted().map { dir + "/" + $0 }
    }()

    @Test func everyPipelineFileIsValid() throws {
        #expect(!Self.pipelines.isEmpty)
        for p in Self.pipelines {
            // Input files are checked too when the data they use is here (samples fetched, shared data beside).
            let samples = FileManager.default.fileExists(atPath: TestData.repositoryRoot.appendingPathComponent("samples/nc-landsat7/.complete").path)
            let text = try String(contentsOfFile: p, encoding: .utf8)
            let needsSamples = text.contains("samples/"), needsShared = text.contains("shared/data")
            let loaded = try PipelineLoader.load(p, checkFiles: (!needsSamples || samples) && (!needsShared || TestData.available))
            #expect(!loaded.spec.data.classes.isEmpty, "\(p)")
            #expect(!loaded.spec.data.scenes.isEmpty || !loaded.spec.data.tileSets.isEmpty, "\(p)")
        }
    }

    @Test func theReferenceInTheDocsIsCurrent() throws {
        let doc = try String(contentsOfFile: TestData.repositoryRoot.appendingPathComponent("docs/pipeline-reference.md").path, encoding: .utf8)
        #expect(doc == PipelineSchema.referenceMarkdown(), "regenerate with: terraseg run --reference > docs/pipeline-reference.md")
    }
}

@Suite struct BrokenPipelineTests {
    let dir = TemporaryDirectory()

    func load(_ yaml: String) throws -> PipelineLoader.Loaded {
        try "x".write(toFile: dir.file("scene.tif"), atomically: true, encoding: .utf8)
        try "x".write(toFile: dir.file("labels.tif"), atomically: true, encoding: .utf8)
        try yaml.write(toFile: dir.file("job.yaml"), atomically: true, encoding: .utf8)
        return try PipelineLoader.load(dir.file("job.yaml"))
    }

    static let good = """
    name: test
    data:
      scenes:
        - image: scene.tif
          labels: labels.tif
      classes:
        - {value: 1, name: water}
        - {value: 2, name: land}
    training:
      epochs: 3
    """

    func issues(_ yaml: String) -> [PipelineIssue] {
        do {
            _ = try load(yaml)
            return []
        } catch let e as PipelineError {
            return e.issues
        } catch {
            Issue.record("unexpected error \(error)")
            return []
        }
    }

    @Test func aGoodFileGetsDefaults() throws {
        let l = try load(Self.good)
        #expect(l.spec.training.epochs == 3)
        #expect(l.spec.training.batchSize == 8)
        #expect(l.spec.tiling.patch == 128)
        #expect(l.spec.loss.terms.map(\.kind.rawValue) == ["focal", "dice"])
        #expect(l.spec.data.scenes[0].image == [dir.file("scene.tif")], "paths resolve against the file's folder")
        #expect(l.output == URL(fileURLWithPath: dir.path).standardizedFileURL.path + "/runs/test")
    }

    @Test func unknownKeyNamesTheKeyTheLineAndTheFix() {
        let found = issues(Self.good.replacingOccurrences(of: "  epochs: 3", with: "  epoch: 3"))
        #expect(found.count == 1)
        #expect(found.first?.line == 10)
        #expect(found.first?.key == "training.epoch")
        #expect(found.first?.description.contains("job.yaml:10: training.epoch: unknown key 'epoch'. Did you mean 'epochs'?") == true)
    }

    @Test func wrongTypeNamesTheKeyTheLineAndTheFix() {
        let found = issues(Self.good.replacingOccurrences(of: "epochs: 3", with: "epochs: three"))
        #expect(found.first?.description.contains("job.yaml:10: training.epochs: must be an integer, got 'three'. Write a whole number") == true)
        let choice = issues(Self.good + "\nmodel: {kind: unett}")
        #expect(choice.first?.description.contains("model.kind: must be one of unet, dilated, resnet-unet, got 'unett'. Did you mean 'unet'?") == true)
    }

    @Test func missingFileNamesTheKeyTheLineAndTheFix() {
        let found = issues(Self.good.replacingOccurrences(of: "labels: labels.tif", with: "labels: nowhere.tif"))
        #expect(found.first?.line == 5)
        #expect(found.first?.key == "data.scenes[0].labels")
        #expect(found.first?.description.contains("file not found: nowhere.tif") == true)
        #expect(found.first?.description.contains("relative paths start at the pipeline file's folder") == true)
    }

    @Test func aNamedPipeAsSceneOrAsThePipelineIsRefusedWithoutBlocking() throws {
        #expect(mkfifo(dir.file("pipe.tif"), 0o600) == 0)
        let found = issues(Self.good.replacingOccurrences(of: "image: scene.tif", with: "image: pipe.tif"))
        #expect(found.first?.key == "data.scenes[0].image[0]" || found.first?.key == "data.scenes[0].image")
        #expect(found.first?.description.contains("pipe.tif is a named pipe (FIFO); TerraSeg reads only regular files") == true)

        #expect(mkfifo(dir.file("job-pipe.yaml"), 0o600) == 0)
        let error = #expect(throws: PipelineError.self) { try PipelineLoader.load(dir.file("job-pipe.yaml")) }
        #expect(error?.description.contains("job-pipe.yaml: (file): cannot read the pipeline file: is a named pipe (FIFO)") == true)
    }

    @Test func everyProblemIsReportedAtOnce() {
        let yaml = Self.good.replacingOccurrences(of: "labels: labels.tif", with: "labels: nowhere.tif")
            .replacingOccurrences(of: "epochs: 3", with: "epochs: -2") + "\nmodle: {}\n"
        let found = issues(yaml)
        #expect(found.count == 3)
        #expect(found.map(\.key).contains("modle"))
        #expect(found.first { $0.key == "modle" }?.fix == "Did you mean 'model'?")
        #expect(found.contains { $0.problem == "must be at least 1, got -2" })
    }

    @Test func missingRequiredKeysAndSyntaxErrors() {
        let noClasses = issues("data:\n  scenes:\n    - {image: scene.tif, labels: labels.tif}\n")
        #expect(noClasses.contains { $0.key == "data.classes" && $0.problem.contains("missing required key") })
        let syntax = issues("data:\n  scenes: [a, b\n")
        #expect(syntax.first?.key == "(syntax)")
        #expect(syntax.first?.problem.contains("not valid YAML") == true)
        let noLabels = issues(Self.good.replacingOccurrences(of: "      labels: labels.tif\n", with: ""))
        #expect(noLabels.contains { $0.problem == "the scene has no labels" })
    }

    @Test func mapsOfOtherScenesAreNotScoredAgainstTheTrainingLabels() throws {
        let loaded = try load(Self.good + "\nprediction: {scenes: [[labels.tif]]}\n")
        let runner = PipelineRunner(loaded)
        var lines: [String] = []
        runner.log = { lines.append($0) }
        #expect(try runner.mapEvaluations([dir.file("map.tif")]) == nil)
        #expect(lines.contains { $0.contains("evaluate: skipped") && $0.contains("evaluation.labels") })
    }

    @Test func anEmptyClassListAndAnOutputThatIsAFileAreRefused() {
        let empty = issues(Self.good.replacingOccurrences(of: "    - {value: 1, name: water}\n    - {value: 2, name: land}", with: "    []")
            .replacingOccurrences(of: "  classes:\n    []", with: "  classes: []"))
        #expect(empty.contains { $0.key == "data.classes" && $0.problem == "no classes" })
        let outputFile = issues(Self.good + "\noutput: scene.tif\n")
        #expect(outputFile.contains { $0.key == "output" && $0.problem == "scene.tif is a file, not a folder" })
    }
}

/// The whole job on a small scene the test makes itself (no network, no sample download).
@Suite(.enabled(if: TestData.available, "needs ../shared/data"))
struct PipelineRunTests {
    @Test func runTrainsMapsEvaluatesReportsAndSkipsWhatIsUpToDate() throws {
        let dir = TemporaryDirectory()
        // A 96×96 crop of nc-landsat7 and its labels.
        let src = try Dataset(path: TestData.path("nc-landsat7/image_6band.tif"))
        let win = Window(column: 150, row: 150, width: 96, height: 96)
        try RasterMaker.crop(TestData.path("nc-landsat7/image_6band.tif"), window: win, to: dir.file("scene.tif"), type: .float32, nodata: -99999)
        try RasterMaker.crop(TestData.path("nc-landsat7/labels_landclass96.tif"), window: win, to: dir.file("labels.tif"), type: .byte)
        try """
        name: tiny
        output: run
        data:
          scenes: [{image: scene.tif, labels: labels.tif}]
          classes:
            - {value: 1, name: developed}
            - {value: 2, name: agriculture}
            - {value: 3, name: herbaceous}
            - {value: 4, name: shrubland}
            - {value: 5, name: forest}
            - {value: 6, name: water}
            - {value: 7, name: sediment}
          ignore: [0]
        tiling: {patch: 32, stride: 32, split: {method: rows, train_fraction: 0.67}}
        model: {widths: [8, 16]}
        training: {epochs: 2, batch_size: 4}
        prediction: {tile: 64, min_mapping_unit: 4, polygons: true}
        """.write(toFile: dir.file("tiny.yaml"), atomically: true, encoding: .utf8)
        let r = try Tool.run(Tool.terraseg, ["run", dir.file("tiny.yaml")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Land-cover map:"))
        #expect(r.stdout.contains("Validation mIoU"))
        let run = dir.file("run")
        for f in ["model/model.json", "model/model.safetensors", "maps/scene_map.tif", "maps/scene_map.qml", "maps/scene_map.gpkg",
                  "evaluation.json", "report.html", "stages.json"] {
            #expect(FileManager.default.fileExists(atPath: run + "/" + f), "\(f)")
        }
        let html = try String(contentsOfFile: run + "/report.html", encoding: .utf8)
        #expect(html.contains("<svg") && html.contains("data:image/png;base64,") && html.contains("Confusion matrix") && html.contains("sediment"))
        #expect(html.contains("minimum mapping unit 4 px (4-connected)"), "the report states the sieve")
        let map = try Dataset(path: run + "/maps/scene_map.tif")
        #expect(map.info.geoTransform == GeoTransform(src.info.geoTransform!.forWindow(win).coefficients))
        // A second run skips training and prediction.
        let again = try Tool.run(Tool.terraseg, ["run", dir.file("tiny.yaml")])
        #expect(again.status == 0)
        #expect(again.stdout.contains("Up to date, skipped: train, predict"))
        // terraseg train --config uses the same file; flags override it.
        let trained = try Tool.run(Tool.terraseg, ["train", "--config", dir.file("tiny.yaml"), "--epochs", "1", "--output", dir.file("m2")])
        #expect(trained.status == 0, "\(trained.stderr)")
        let m2 = try String(contentsOfFile: dir.file("m2/model.json"), encoding: .utf8)
        #expect(m2.contains("\"epochs\" : 1"))
        // A broken file stops before any work, with the line.
        try "name: x\ndata: {scenes: [], classes: []}\ntrainin: {}\n".write(toFile: dir.file("bad.yaml"), atomically: true, encoding: .utf8)
        let bad = try Tool.run(Tool.terraseg, ["run", dir.file("bad.yaml")])
        #expect(bad.status != 0 && !bad.crashed)
        #expect(bad.stderr.contains("bad.yaml:3: trainin: unknown key 'trainin'. Did you mean 'training'?"))
    }
}

/// The whole job through `terraseg run` on a synthetic scene (no shared data): train, map,
/// evaluate, report; a second run skips what is up to date, a changed prediction section
/// reruns only the prediction.
@Suite struct SyntheticPipelineRunTests {
    @Test func runTrainsMapsEvaluatesReportsAndSkipsWhatIsUpToDate() throws {
        let dir = TemporaryDirectory()
        let (scene, _) = try SyntheticPipeline.write(in: dir.path, width: 130, height: 100)
        let r = try Tool.run(Tool.terraseg, ["run", dir.file("job.yaml")])
        #expect(r.status == 0 && !r.crashed, "\(r.stderr)")
        #expect(r.stdout.contains("Land-cover map:") && r.stdout.contains("Validation mIoU"), "\(r.stdout)")
        let run = dir.file("run")
        for f in ["model/model.json", "model/model.safetensors", "maps/scene_map.tif", "evaluation.json", "report.html", "stages.json"] {
            #expect(FileManager.default.fileExists(atPath: run + "/" + f), "\(f)")
        }
        let html = try String(contentsOfFile: run + "/report.html", encoding: .utf8)
        #expect(html.contains("<svg") && html.contains("data:image/png;base64,") && html.contains("Confusion matrix") && html.contains("forest"))
        let map = try Dataset(path: run + "/maps/scene_map.tif"), image = try Dataset(path: scene.image)
        #expect(map.info.geoTransform == image.info.geoTransform && map.info.crs.map { $0.isSame(as: image.info.crs!) } == true)
        let evaluation = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/evaluation.json"))) as? [[String: Any]])
        let report = try #require(evaluation.first?["report"] as? [String: Any])
        #expect((report["pixels"] as? Int ?? 0) > 0, "the validation rows are scored")

        // A second run skips training and prediction; a new prediction tile reruns only the prediction.
        let again = try Tool.run(Tool.terraseg, ["run", dir.file("job.yaml")])
        #expect(again.status == 0)
        #expect(again.stdout.contains("Up to date, skipped: train, predict"), "\(again.stdout)")
        try SyntheticPipeline.yaml(prediction: "tile: 32").write(toFile: dir.file("job.yaml"), atomically: true, encoding: .utf8)
        let retiled = try Tool.run(Tool.terraseg, ["run", dir.file("job.yaml")])
        #expect(retiled.status == 0, "\(retiled.stderr)")
        #expect(retiled.stdout.contains("Up to date, skipped: train (") && !retiled.stdout.contains("skipped: train, predict"), "\(retiled.stdout)")
        #expect(retiled.stderr.contains("predict: 1 scene(s)"), "\(retiled.stderr)")

        // terraseg train --config uses the same file; flags override it.
        let trained = try Tool.run(Tool.terraseg, ["train", "--config", dir.file("job.yaml"), "--epochs", "1", "--output", dir.file("m2")])
        #expect(trained.status == 0, "\(trained.stderr)")
        #expect(try String(contentsOfFile: dir.file("m2/model.json"), encoding: .utf8).contains("\"epochs\" : 1"))
    }
}
