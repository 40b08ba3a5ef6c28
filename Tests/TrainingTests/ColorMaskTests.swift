import Core
import Foundation
import GeoRaster
import Testing
import TestSupport
import Tiling
import Training

/// Tile-set masks as values, palette PNGs and RGB colours (issue B9, deliverable 3), on chips
/// cut by the test: every form must give the same patches.
@Suite struct ColorMaskTests {
    static let colors = ["#1f78b4", "#33a02c", "#ffff99"]
    static let classes = zip(SyntheticScene.classes, colors).map { ClassSpec(value: $0.value, name: $0.name, color: $1) }

    /// `images/{id}.tif` and `values/{id}.tif` (label values, 0 unlabelled, 255 nodata) for two chips.
    static func chips(in dir: TemporaryDirectory) throws -> String {
        let root = dir.file("set")
        for sub in ["images", "values", "rgb"] { try FileManager.default.createDirectory(atPath: root + "/" + sub, withIntermediateDirectories: true) }
        for (i, id) in ["a", "b"].enumerated() {
            let scene = try SyntheticScene(in: root + "/images", name: id, width: 64, height: 64, bands: 3, seed: UInt64(i + 1))
            try FileManager.default.moveItem(atPath: scene.labels, toPath: "\(root)/values/\(id).tif")
        }
        return root
    }

    /// The RGB mask of a value mask, through GDAL: class colours, `other` for 0 and 255.
    static func writeRGB(values: String, to path: String, other: RGBA = RGBA(0, 0, 0), recolor: (Int, Int) -> RGBA? = { _, _ in nil }) throws {
        let palette = Dictionary(uniqueKeysWithValues: zip(SyntheticScene.classes.map(\.value), colors.map { RGBA(hex: $0)! }))
        try RasterMaker.colorMask(values: values, to: path, colors: palette, other: other, recolor: recolor)
    }

    /// Every candidate patch and its targets, in order.
    static func patches(_ data: DataSpec) throws -> [(Window, [Int32])] {
        try data.openScenes().flatMap { scene in
            try scene.candidatePatches(sceneIndex: 0, patchSize: 32, stride: 16, split: .none, minLabelledFraction: 0.3).map { ref in
                var patch = Patch()
                try scene.readPatch(ref.window, normalizer: nil, into: &patch)
                return (ref.window, patch.target)
            }
        }
    }

    static func data(_ root: String, mask: String, colors: Bool, ignore: [Int] = [], ignoreColors: [String] = []) -> DataSpec {
        var d = DataSpec(tileSets: [TileSetSpec(root: root, images: ["images/{id}.tif"], mask: mask, maskColors: colors)],
                         classes: classes, ignore: ignore)
        d.ignoreColors = ignoreColors
        return d
    }

    @Test func colourMasksGiveTheSamePatchesAsValueMasks() throws {
        let dir = TemporaryDirectory()
        let root = try Self.chips(in: dir)
        for id in ["a", "b"] { try Self.writeRGB(values: "\(root)/values/\(id).tif", to: "\(root)/rgb/\(id).tif") }
        let byValue = try Self.patches(Self.data(root, mask: "values/{id}.tif", colors: false, ignore: [0]))
        let byColour = try Self.patches(Self.data(root, mask: "rgb/{id}.tif", colors: true, ignoreColors: ["#000000"]))
        #expect(!byValue.isEmpty)
        #expect(byValue.count == byColour.count)
        for (v, c) in zip(byValue, byColour) {
            #expect(v.0 == c.0)
            #expect(v.1 == c.1)
        }
        // Some pixels of every class are labelled, and the unlabelled rectangle is excluded.
        let targets = byColour.flatMap(\.1)
        #expect(Set(targets) == [-1, 0, 1, 2])
    }

    @Test func unknownColourIsRefusedNamingColourAndChip() throws {
        let dir = TemporaryDirectory()
        let root = try Self.chips(in: dir)
        try Self.writeRGB(values: "\(root)/values/a.tif", to: "\(root)/rgb/a.tif")
        try Self.writeRGB(values: "\(root)/values/b.tif", to: "\(root)/rgb/b.tif") { c, r in c == 50 && r == 40 ? RGBA(0x12, 0x34, 0x56) : nil }
        let error = #expect(throws: RasterError.self) {
            try Self.patches(Self.data(root, mask: "rgb/{id}.tif", colors: true, ignoreColors: ["#000000"]))
        }
        let text = error?.description ?? ""
        #expect(text.contains("rgb/b.tif") && text.contains("colour #123456 at column 50, row 40 matches no class colour"), "\(text)")
        #expect(text.contains("data.ignore"), "\(text)")
    }

    @Test func ignoredColoursAreUnlabelledAndOthersAreRefused() throws {
        let dir = TemporaryDirectory()
        let root = try Self.chips(in: dir)
        for id in ["a", "b"] { try Self.writeRGB(values: "\(root)/values/\(id).tif", to: "\(root)/rgb/\(id).tif", other: RGBA(255, 255, 255)) }
        // White unlabelled pixels, not listed: refused, naming the colour.
        let error = #expect(throws: RasterError.self) {
            try Self.patches(Self.data(root, mask: "rgb/{id}.tif", colors: true, ignoreColors: ["#000000"]))
        }
        #expect(error?.description.contains("colour #ffffff") == true, "\(error?.description ?? "")")
        // Listed: they are excluded, like value 0 in the value masks.
        let byColour = try Self.patches(Self.data(root, mask: "rgb/{id}.tif", colors: true, ignoreColors: ["#FFFFFF"]))
        let byValue = try Self.patches(Self.data(root, mask: "values/{id}.tif", colors: false, ignore: [0]))
        #expect(byColour.map(\.1) == byValue.map(\.1))
        // A colour to ignore without colour-coded masks would silently do nothing: refused.
        let unused = #expect(throws: TerraSegError.self) {
            try Self.patches(Self.data(root, mask: "values/{id}.tif", colors: false, ignore: [0], ignoreColors: ["#000000"]))
        }
        #expect(unused?.description.contains("no tile set has colour-coded masks") == true)
        // A colour that is also a class colour is refused.
        let both = #expect(throws: TerraSegError.self) {
            try Self.patches(Self.data(root, mask: "rgb/{id}.tif", colors: true, ignoreColors: [Self.colors[0]]))
        }
        #expect(both?.description.contains("is both a class colour and ignored") == true)
    }

    /// The colours that read the masks are part of the data: resuming after a change is refused.
    @Test func changedIgnoredColoursDoNotResumeAStaleRun() throws {
        let dir = TemporaryDirectory()
        let root = try Self.chips(in: dir)
        for id in ["a", "b"] { try Self.writeRGB(values: "\(root)/values/\(id).tif", to: "\(root)/rgb/\(id).tif") }
        let output = dir.file("model")
        var options = TinyModel.options(epochs: 1)
        options.split = SplitOptions(method: .blocks, validationFraction: 0.5)
        func train(_ ignore: [String], _ start: TrainingStart) throws {
            _ = try Trainer.train(data: Self.data(root, mask: "rgb/{id}.tif", colors: true, ignoreColors: ignore), model: TinyModel.model,
                                  options: options, output: output, start: start, terrasegVersion: "test")
        }
        try train(["#000000"], .fresh)
        let error = #expect(throws: (any Error).self) { try train(["#000000", "#ffffff"], .resume) }
        #expect("\(error.map { String(describing: $0) } ?? "")".contains("the training data changed"), "\(String(describing: error))")
    }

    @Test func singleBandMaskReadAsColoursIsRefused() throws {
        let dir = TemporaryDirectory()
        let root = try Self.chips(in: dir)
        let error = #expect(throws: RasterError.self) { try Self.patches(Self.data(root, mask: "values/{id}.tif", colors: true)) }
        #expect(error?.description.contains("a colour-coded mask needs red, green and blue bands; the file has 1") == true)
        // 16-bit or float "colours" would be clamped to bytes: refused instead.
        let wide = #expect(throws: RasterError.self) { try Self.patches(Self.data(root, mask: "images/{id}.tif", colors: true)) }
        #expect(wide?.description.contains("a colour-coded mask must be 8-bit RGB; band 1 is Float32") == true, "\(wide?.description ?? "")")
    }

    @Test(.enabled(if: Tool.exists("gdal_translate")))
    func palettePNGMasksReadTheirIndexAsValue() throws {
        let dir = TemporaryDirectory()
        let root = try Self.chips(in: dir)
        try FileManager.default.createDirectory(atPath: root + "/png", withIntermediateDirectories: true)
        let map = try Self.data(root, mask: "values/{id}.tif", colors: false).classMap()
        for id in ["a", "b"] {
            // A paletted GeoTIFF (the class colours), converted to an indexed PNG by GDAL.
            let ds = try Dataset(path: "\(root)/values/\(id).tif")
            let block = try ds.read(window: Window(width: 64, height: 64), bands: [1])
            let w = try GeoTIFFWriter(path: dir.file("\(id)_pal.tif"), profile: RasterProfile(like: ds.info, bandCount: 1, dataType: .byte, nodata: nil))
            try w.write(block.values, window: block.window, band: 1)
            try w.setClasses(map.classes)
            try w.finish()
            let r = try Tool.run("gdal_translate", ["-q", "-of", "PNG", dir.file("\(id)_pal.tif"), "\(root)/png/\(id).png"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try Dataset(path: "\(root)/png/\(id).png").info.bands[0].hasColorTable)
        }
        let byPalette = try Self.patches(Self.data(root, mask: "png/{id}.png", colors: false, ignore: [0]))
        let byValue = try Self.patches(Self.data(root, mask: "values/{id}.tif", colors: false, ignore: [0]))
        #expect(!byPalette.isEmpty)
        #expect(byPalette.map(\.0) == byValue.map(\.0))
        #expect(byPalette.map(\.1) == byValue.map(\.1))
    }
}
