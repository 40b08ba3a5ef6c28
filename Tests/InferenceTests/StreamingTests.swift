import Core
import Distributed
import Engine
import Foundation
import GeoRaster
@testable import Inference
import ModelIO
import Models
import Testing
import TestSupport
import Tiling

/// A 101×203 4-band scene (sizes multiples of nothing) with nodata in a top-left triangle and in
/// a 110-row band across the whole width (rows 60..<170), so strips there have no valid pixel.
private let gapScene: StitchScene = {
    let path = StitchScene.directory + "/gap.tif"
    let profile = try! RasterMaker.utmProfile(width: 101, height: 203, bands: 4, nodata: -9999)
    try! RasterMaker.write(path, profile: profile) { b, c, r in
        if c + r < 30 || (60..<170).contains(r) { return -9999 }
        let wave = sin(Double(c) * 0.21 + Double(b)) * cos(Double(r) * 0.13 - Double(b))
        return Float(100 * Double(b + 1) + 40 * wave + Double((c * 7 + r * 13 + b * 5) % 11))
    }
    return StitchScene(name: "gap", path: path, width: 101, height: 203, bands: 4, classes: TinyModel.classMap)
}()

@Suite struct StreamingTests {
    /// The dilated CNN, and U-Nets with bilinear and bed-of-nails upsampling, for `bands` inputs.
    static func architecture(_ kind: Int, bands: Int, classes K: Int) -> ModelArchitecture {
        switch kind {
        case 0: return .dilated(DilatedNetConfiguration(inputChannels: bands, classes: K, width: 16, dilations: [1, 2, 4, 2, 1]))
        case 1: return .unet(UNetConfiguration(inputChannels: bands, classes: K, widths: [16, 16], bottleneckWidth: 32,
                                               bottleneckDilations: [1, 2], upsampling: .bilinear))
        default: return .unet(UNetConfiguration(inputChannels: bands, classes: K, widths: [8, 16], bottleneckWidth: 32,
                                                bottleneckDilations: [1, 2], upsampling: .nails))
        }
    }

    func model(_ architecture: ModelArchitecture, _ scene: StitchScene) throws -> NetworkSceneModel {
        let bundle = ModelBundle(architecture: architecture, bands: Array(1...scene.bands), bandDescriptions: Array(repeating: "", count: scene.bands),
                                 normalization: try scene.inputs().normalizer, statistics: nil, classes: scene.classes, patchSize: 32,
                                 provenance: .init(terrasegVersion: "test", trainingData: [], epochs: 0, seed: 5))
        return NetworkSceneModel(bundle: bundle, network: architecture.build(seed: 5))
    }

    /// Probabilities (K × H × W) and validity of one window over the whole scene, its right and
    /// bottom padded with invalid pixels to the network's alignment.
    func oneWindow(_ model: NetworkSceneModel, _ scene: StitchScene) throws -> (probabilities: [Float], valid: [UInt8]) {
        let A = model.alignment
        let w = PredictionGrid.roundUp(scene.width, to: A), h = PredictionGrid.roundUp(scene.height, to: A)
        var block = try Dataset(path: scene.path).read(window: Window(width: w, height: h))
        try scene.inputs().normalizer.apply(to: &block)
        let x = Tensor(shape: Shape(1, scene.bands, h, w), values: block.values)
        let logits = model.network(x)
        let p = Tensor(shape: logits.shape)
        ChannelSoftmax.forward(input: logits, output: p)
        let all = p.nchwValues(), K = model.classCount
        var out: [Float] = [], valid: [UInt8] = []
        for k in 0..<K { for r in 0..<scene.height { for c in 0..<scene.width { out.append(all[(k * h + r) * w + c]) } } }
        for r in 0..<scene.height { for c in 0..<scene.width { valid.append(block.valid[r * w + c]) } }
        return (out, valid)
    }

    func stream(_ model: any SceneModel, on scene: StitchScene, strip: Int, in dir: TemporaryDirectory, name: String)
        throws -> (map: RasterBlock, probs: RasterBlock, run: ScenePrediction) {
        var o = PredictionOptions()
        o.blend = .stream
        o.stripHeight = strip
        o.probabilities = true
        o.floatProbabilities = true
        let p = try ScenePredictor(model: model, inputs: scene.inputs(), options: o)
        let outputs = SceneOutputs(map: dir.file(name + "_map.tif"), probabilities: dir.file(name + "_p.tif"))
        let run = try p.predict(paths: [scene.path], outputs: outputs)
        return (try Dataset(path: outputs.map).read(window: scene.full), try Dataset(path: outputs.probabilities!).read(window: scene.full), run)
    }

    /// Streaming equals one window over the whole scene: identical class labels, probabilities
    /// within 1e-5, nodata exactly where the input is invalid, at every edge, for strip heights
    /// from one alignment step to the whole scene; all-nodata strips far from valid rows skip
    /// the network.
    @Test(arguments: 0..<3, [4, 12, 256])
    func streamingEqualsOneWindow(_ kind: Int, strip: Int) throws {
        let dir = TemporaryDirectory()
        for scene in [gapScene] + StitchScene.all {
            let model = try model(StreamingTests.architecture(kind, bands: scene.bands, classes: scene.classes.count), scene)
            let reference = try oneWindow(model, scene)
            let out = try stream(model, on: scene, strip: strip, in: dir, name: "\(scene.name)-\(strip)")
            let n = scene.width * scene.height, values = scene.classes.classes.map { Float($0.value) }
            var wrongLabels = 0, worst: Float = 0
            for i in 0..<n {
                guard reference.valid[i] != 0 else {
                    if out.map.valid[i] != 0 { wrongLabels += 1 }
                    continue
                }
                let p = (0..<model.classCount).map { reference.probabilities[$0 * n + i] }
                let best = p.indices.max { p[$0] < p[$1] }!
                if out.map.values[i] != values[best] || out.map.valid[i] == 0 { wrongLabels += 1 }
                for k in 0..<model.classCount { worst = max(worst, abs(out.probs.values[k * n + i] - p[k])) }
            }
            #expect(wrongLabels == 0, "\(scene.name), strips of \(strip): \(wrongLabels) labels differ from one window")
            #expect(worst <= 1e-5, "\(scene.name), strips of \(strip): probabilities differ by \(worst)")
            if scene.name == "gap" && strip <= 12 { #expect(out.run.skippedTiles > 0, "strips inside the nodata band skip the network") }
            if scene.name == "gap" && strip == 256 { #expect(out.run.tiles == 1) }
        }
    }

    /// A streamed map's MODE overviews are made with its rows (`SceneWriters(rowsInOrder:)`,
    /// not when a minimum mapping unit changes the map afterwards) and are GDAL's: the same
    /// pixels written again and left to GDALBuildOverviews give the same four levels.
    @Test func aStreamedMapsOverviewsAreGDALs() throws {
        let dir = TemporaryDirectory(), scene = gapScene
        let model = try model(StreamingTests.architecture(1, bands: scene.bands, classes: scene.classes.count), scene)
        var o = PredictionOptions()
        o.stripHeight = 12
        o.creation.blockSize = 16
        let info = try Dataset(path: scene.path).info
        for (rowsInOrder, mmu, made) in [(true, 0, true), (false, 0, false), (true, 3, false)] {
            o.minMappingUnit = mmu
            let writers = try SceneWriters(outputs: SceneOutputs(map: dir.file("w-\(rowsInOrder)-\(mmu).tif")), like: info,
                                           classMap: scene.classes, options: o, rowsInOrder: rowsInOrder)
            #expect(writers.fileWriters.first?.makesOverviewsWithRows == made, "rows in order: \(rowsInOrder), minimum mapping unit \(mmu)")
            writers.abort()
        }
        o.minMappingUnit = 0
        let map = dir.file("gap_map.tif")
        _ = try ScenePredictor(model: model, inputs: scene.inputs(), options: o).predict(paths: [scene.path], outputs: SceneOutputs(map: map))
        let streamed = try Overviews.values(of: map)
        #expect(streamed.count == 4)

        let block = try Dataset(path: map).read(window: scene.full)
        let reference = dir.file("reference.tif")
        let writer = try GeoTIFFWriter(path: reference, profile: RasterProfile(like: try Dataset(path: map).info, bandCount: 1, dataType: .byte,
                                                                              nodata: 255, options: o.creation))
        try writer.write(block.values.indices.map { block.valid[$0] != 0 ? UInt8(block.values[$0]) : 255 }, window: scene.full, band: 1)
        try writer.finish()
        #expect(Overviews.differences(streamed, try Overviews.values(of: reference)) == 0)
    }

    /// A model keeps its row stream for the next scene (primitives, transformed weights and
    /// buffers made once per batch of scenes): scenes of another width in turn, and the first
    /// again, give the maps and probabilities that a fresh model gives each.
    @Test func scenesInTurnShareOneStream() throws {
        let dir = TemporaryDirectory()
        let architecture = StreamingTests.architecture(1, bands: 4, classes: gapScene.classes.count)
        let shared = try model(architecture, gapScene)
        #expect(shared.rowStream(rows: 8) === shared.rowStream(rows: 8))
        for (i, scene) in [gapScene, StitchScene.synthetic, gapScene].enumerated() {
            let fresh = try stream(try model(architecture, scene), on: scene, strip: 8, in: dir, name: "fresh\(i)")
            let kept = try stream(shared, on: scene, strip: 8, in: dir, name: "kept\(i)")
            #expect(kept.map.values == fresh.map.values && kept.map.valid == fresh.map.valid, "\(scene.name), scene \(i): maps")
            #expect(kept.probs.values == fresh.probs.values, "\(scene.name), scene \(i): probabilities")
        }
    }

    /// A model without a row stream (here a test model) is predicted in centre windows instead.
    @Test func aModelThatCannotStreamUsesWindows() throws {
        let dir = TemporaryDirectory()
        let scene = StitchScene.synthetic
        let model = scene.boxModel(radius: 2)
        let streamed = try stream(model, on: scene, strip: 16, in: dir, name: "box")
        var o = PredictionOptions()
        o.probabilities = true
        o.floatProbabilities = true
        let windows = try ScenePredictor(model: model, inputs: scene.inputs(), options: o)
        _ = try windows.predict(paths: [scene.path], outputs: SceneOutputs(map: dir.file("w_map.tif"), probabilities: dir.file("w_p.tif")))
        #expect(streamed.map.values == (try Dataset(path: dir.file("w_map.tif")).read(window: scene.full)).values)
        #expect(streamed.run.tiles == scene.tiles(512))
    }

    /// Test-time augmentation averages windows, so `--blend stream --tta` predicts in centre
    /// windows (the same map as `--blend centre --tta`), not in strips that would silently drop
    /// the augmentation.
    @Test func ttaPredictsInWindowsNotStrips() throws {
        let dir = TemporaryDirectory()
        let scene = StitchScene.synthetic
        let model = try model(StreamingTests.architecture(1, bands: scene.bands, classes: scene.classes.count), scene)
        func run(_ blend: BlendMode, tta: Bool, name: String) throws -> (RasterBlock, ScenePrediction) {
            var o = PredictionOptions()
            o.blend = blend
            o.tta = tta
            o.tileSize = 32
            o.stripHeight = 16
            let outputs = SceneOutputs(map: dir.file(name + "_map.tif"))
            let run = try ScenePredictor(model: model, inputs: scene.inputs(), options: o).predict(paths: [scene.path], outputs: outputs)
            return (try Dataset(path: outputs.map).read(window: scene.full), run)
        }
        let streamedTTA = try run(.stream, tta: true, name: "s-tta"), windowsTTA = try run(.centre, tta: true, name: "c-tta")
        let plain = try run(.stream, tta: false, name: "s")
        #expect(streamedTTA.0.values == windowsTTA.0.values)
        #expect(streamedTTA.1.tiles == windowsTTA.1.tiles && streamedTTA.1.tiles != plain.1.tiles,
                "tta ran in \(streamedTTA.1.tiles) windows; strips without tta: \(plain.1.tiles)")
    }

    /// A strip that cannot be read (a scene cut short: its last block row of the last band is
    /// gone) fails the scene with the reader's error once earlier strips are written, in one
    /// process and in a rank's band (both through `StripPredictor.run`), and leaves no output,
    /// not even a temporary file; the predictor then maps a good scene as a fresh one does (the
    /// stream was reset).
    @Test func aStripThatCannotBeReadFailsTheSceneAndLeavesNothing() throws {
        let dir = TemporaryDirectory()
        var profile = try RasterMaker.utmProfile(width: 61, height: 96, bands: 2, options: CreationOptions(blockSize: 16, compression: .none))
        profile.nodata = -9999
        let whole = try RasterMaker.write(dir.file("whole.tif"), profile: profile) { b, c, r in Float((c * 7 + r * 13 + b * 5) % 11) }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: whole))
        let cut = dir.file("cut.tif")
        try bytes.prefix(bytes.count - 61 * 4 * 16 / 2).write(to: URL(fileURLWithPath: cut))
        let scene = StitchScene(name: "cut", path: whole, width: 61, height: 96, bands: 2, classes: TinyModel.classMap)
        let model = try model(StreamingTests.architecture(0, bands: 2, classes: scene.classes.count), scene)
        var o = PredictionOptions()
        o.stripHeight = 16
        let p = try ScenePredictor(model: model, inputs: scene.inputs(), options: o)
        var strips = 0
        p.progress = { done, _ in strips = max(strips, done) }
        let outputs = SceneOutputs(map: dir.file("out/m_map.tif"), confidence: dir.file("out/m_c.tif"))
        try FileManager.default.createDirectory(atPath: dir.file("out"), withIntermediateDirectories: true)
        let error = #expect(throws: RasterError.self) { try p.predict(paths: [cut], outputs: outputs) }
        #expect(error?.description.contains("cut.tif") == true, "\(String(describing: error))")
        #expect(strips >= 2, "the failure comes after strips went through (\(strips))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("out")).isEmpty, "no output, not even a temporary file")
        let band = #expect(throws: RasterError.self) { try p.predictBand(paths: [cut], outputs: outputs, communicator: .single) }
        #expect(band?.description.contains("cut.tif") == true)
        _ = try p.predict(paths: [whole], outputs: outputs)
        let fresh = try ScenePredictor(model: model, inputs: scene.inputs(), options: o)
        _ = try fresh.predict(paths: [whole], outputs: SceneOutputs(map: dir.file("fresh_map.tif")))
        #expect(try Dataset(path: outputs.map).read(window: scene.full).values == (try Dataset(path: dir.file("fresh_map.tif")).read(window: scene.full)).values)
    }

    /// Strips of about 2¹⁷ pixels (32 to 256 rows) where the memory budget allows, else as tall
    /// as it allows (at least one alignment step), in multiples of the alignment; a given height wins.
    @Test func stripHeightFollowsThePreferredSizeAndTheMemoryBudget() {
        var o = PredictionOptions()
        func rows(budget: Int, width: Int) -> Int {
            o.memoryBudget = budget
            return StripPredictor.stripHeight(options: o, width: width, bytesPerPixel: 2000, alignment: 16)
        }
        #expect(rows(budget: 1 << 30, width: 2048) == 64)
        #expect(rows(budget: 1 << 30, width: 500) == 256)
        #expect(rows(budget: 1 << 30, width: 1000) == 144)  // 131 rows, rounded up to the alignment
        #expect(rows(budget: 96 << 20, width: 2048) == 32)  // 24.6 rows, rounded up to the alignment
        #expect(rows(budget: 1 << 30, width: 20_000) == 32)
        #expect(rows(budget: 1 << 29, width: 20_000) == 16)
        #expect(rows(budget: 1, width: 20_000) == 16)
        o.stripHeight = 40
        #expect(StripPredictor.stripHeight(options: o, width: 2048, bytesPerPixel: 2000, alignment: 16) == 48)
    }
}
