import Core
import Foundation
import GeoRaster
import Testing
import TestSupport
import Tiling

let ncClasses = try! ClassMap(values: [(1, "developed"), (2, "agriculture"), (3, "herbaceous"), (4, "shrubland"),
                                       (5, "forest"), (6, "water"), (7, "sediment")], ignoreValues: [0])

@Suite struct ClassMapTests {
    @Test func lookupAndErrors() throws {
        #expect(ncClasses.index(ofLabel: 5) == 4)
        #expect(ncClasses.index(ofLabel: 0) == -1)
        #expect(ncClasses.index(ofLabel: 9) == nil)
        let dup = #expect(throws: TerraSegError.self) { try ClassMap(values: [(1, "a"), (1, "b")]) }
        #expect(dup?.description.contains("label value 1 is used by two classes") == true)
        var block = RasterBlock(window: Window(column: 10, row: 20, width: 3, height: 1), bandCount: 1)
        block.values = [1, 9, 0]
        block.valid = [1, 1, 1]
        var out: [Int32] = []
        let e = #expect(throws: RasterError.self) { try ncClasses.classIndices(labels: block, labelPath: "labels.tif", into: &out) }
        #expect(e?.description == "labels.tif, band 1: label value 9 at column 11, row 20 is not in the class map. Add a class with value 9 under classes, or list it under ignore")
    }
}

@Suite struct AugmentationTests {
    @Test func eightDistinctSymmetriesMovingImageAndTargetTogether() {
        var base = Patch(window: Window(width: 3, height: 3), channels: 2)
        base.image = (0..<18).map(Float.init)
        base.target = (0..<9).map(Int32.init)
        var seen = Set<[Int32]>()
        for k in 0..<4 {
            for flip in [false, true] {
                var p = base
                Augmentation.transform(&p, quarterTurns: k, flip: flip)
                seen.insert(p.target)
                #expect(p.image[0..<9].map { Int32($0) } == p.target)
                #expect(p.image[9..<18].map { Int32($0) - 9 } == p.target)
            }
        }
        #expect(seen.count == 8)
        var p = base
        Augmentation.transform(&p, quarterTurns: 1, flip: false)
        #expect(p.target == [2, 5, 8, 1, 4, 7, 0, 3, 6], "counter-clockwise quarter turn")
    }

    /// A training rank skips the other ranks' slots with `skip`: its generator must end where `apply`'s does.
    @Test func skipDrawsWhatApplyDraws() {
        for augmentation in [Augmentation(), Augmentation(gainJitter: 0.1, offsetJitter: 0.05), Augmentation(flips: false, rotations: false, gainJitter: 0.2)] {
            var applied = SplitMix64(seed: 5, stream: .augmentation), skipped = applied
            for _ in 0..<10 {
                var p = Patch(window: Window(width: 4, height: 4), channels: 3)
                p.image = [Float](repeating: 1, count: 48)
                p.target = [Int32](repeating: 0, count: 16)
                let a = augmentation.apply(to: &p, using: &applied)
                let s = augmentation.skip(channels: 3, using: &skipped)
                #expect(a == s)
            }
            #expect(applied.next() == skipped.next())
        }
    }
}

@Suite(.enabled(if: TestData.available, "needs ../shared/data"))
struct LabelledSceneTests {
    func ncScene() throws -> LabelledScene {
        try LabelledScene(image: Dataset(path: TestData.path("nc-landsat7/image_6band.tif")),
                          labels: Dataset(path: TestData.path("nc-landsat7/labels_landclass96.tif")), classMap: ncClasses)
    }

    @Test func patchesExcludeNodataAndSplitByRows() throws {
        let scene = try ncScene()
        let refs = try scene.candidatePatches(sceneIndex: 0, patchSize: 64, stride: 64, split: .rows(trainFraction: 0.6),
                                              minLabelledFraction: 0.5)
        #expect(refs.contains { $0.role == .train } && refs.contains { $0.role == .validation })
        #expect(refs.allSatisfy { $0.labelledFraction >= 0.5 })
        // The top-left corner is image nodata: its pixels are excluded even though labelled.
        var patch = Patch()
        try scene.readPatch(Window(column: 0, row: 0, width: 16, height: 16), normalizer: nil, into: &patch)
        #expect(patch.target[0] == -1)
        try scene.readPatch(Window(column: 200, row: 200, width: 16, height: 16), normalizer: nil, into: &patch)
        #expect(patch.target.allSatisfy { $0 >= 0 && $0 < 7 })
        #expect(patch.channels == 6 && patch.image.count == 6 * 256)
    }

    @Test func labelsOnAnotherGridAreRefused() throws {
        let error = #expect(throws: RasterError.self) {
            try LabelledScene(image: Dataset(path: TestData.path("nc-landsat7/image_6band.tif")),
                              labels: Dataset(path: TestData.path("ukis-cloud/landsat7_mask.tif")), classMap: ncClasses)
        }
        #expect(error?.kind == .gridMismatch)
        // The mask has no georeference: only one of the image's size could be read on its pixel grid.
        #expect(error?.description.contains("the labels are not georeferenced and are 512×512, not the 489×443 of the image") == true,
                "\(error?.description ?? "")")
    }

    @Test func patchLargerThanTheSceneIsRefused() throws {
        let error = #expect(throws: RasterError.self) {
            try ncScene().candidatePatches(sceneIndex: 0, patchSize: 512, stride: 512, split: .none, minLabelledFraction: 0.1)
        }
        #expect(error?.description.contains("the patch size 512 is larger than the scene (489×443)") == true)
        #expect(error?.description.contains("at most 443") == true)
    }

    @Test func allNodataSceneIsRefused() throws {
        let dir = TemporaryDirectory()
        let img = try RasterMaker.write(dir.file("empty.tif"), profile: RasterMaker.utmProfile(width: 64, height: 64, nodata: -1)) { _, _, _ in -1 }
        let lab = try RasterMaker.write(dir.file("labels.tif"), profile: RasterMaker.utmProfile(width: 64, height: 64, type: .byte)) { _, _, _ in 5 }
        let scene = try LabelledScene(image: Dataset(path: img), labels: Dataset(path: lab), classMap: ncClasses)
        let error = #expect(throws: RasterError.self) {
            try scene.candidatePatches(sceneIndex: 0, patchSize: 32, stride: 32, split: .none, minLabelledFraction: 0.1)
        }
        #expect(error?.description.contains("empty.tif: the scene has no valid, labelled pixel") == true)
    }

    @Test func unknownLabelValueNamesFileAndPixel() throws {
        let dir = TemporaryDirectory()
        let img = try RasterMaker.write(dir.file("img.tif"), profile: RasterMaker.utmProfile(width: 32, height: 32)) { _, c, _ in Float(c) }
        let lab = try RasterMaker.write(dir.file("labels.tif"), profile: RasterMaker.utmProfile(width: 32, height: 32, type: .byte)) { _, c, r in
            c == 7 && r == 3 ? 12 : 1
        }
        let scene = try LabelledScene(image: Dataset(path: img), labels: Dataset(path: lab), classMap: ncClasses)
        let error = #expect(throws: RasterError.self) {
            try scene.candidatePatches(sceneIndex: 0, patchSize: 32, stride: 32, split: .none, minLabelledFraction: 0.1)
        }
        #expect(error?.description.contains("label value 12 at column 7, row 3 is not in the class map") == true)
    }

    @Test func bandOutOfRangeIsRefused() throws {
        let error = #expect(throws: RasterError.self) {
            try LabelledScene(image: Dataset(path: TestData.path("nc-landsat7/image_6band.tif")),
                              labels: Dataset(path: TestData.path("nc-landsat7/labels_landclass96.tif")), bands: [1, 7], classMap: ncClasses)
        }
        #expect(error?.description.contains("band 7 does not exist") == true)
    }

    @Test func tileSetsMatchChipsByTemplate() throws {
        let root = TestData.path("38cloud")
        let set = try TileSet(root: root, images: ["red_{id}.TIF", "green_{id}.TIF", "blue_{id}.TIF", "nir_{id}.TIF"], mask: "gt_{id}.TIF")
        #expect(set.ids.count == 1)
        let cloud = try ClassMap(values: [(0, "clear"), (255, "cloud")])
        let scene = try set.scene(set.ids[0], bands: nil, classMap: cloud)
        #expect(scene.bands == [1, 2, 3, 4])
        let refs = try scene.candidatePatches(sceneIndex: 0, patchSize: 128, stride: 128, split: .none, minLabelledFraction: 0.5)
        #expect(refs.count == 9)
        let missing = #expect(throws: RasterError.self) { try TileSet(root: root, images: ["red_{id}.TIF"], mask: "masks/{id}.png") }
        #expect(missing?.description.contains("has no file for template 'masks/{id}.png'") == true)
    }

    @Test(.enabled(if: Tool.exists("gdal_rasterize")))
    func vectorLabelsRasteriseLikeGdalRasterize() throws {
        let shp = TestData.path("nc-landsat7/original/landsat96_polygons.shp")
        let image = try Dataset(path: TestData.path("nc-landsat7/image_6band.tif"))
        // The attribute holds class names: rasterise by name, compare with gdal_rasterize -where … -burn.
        let names = Dictionary(uniqueKeysWithValues: ncClasses.classes.map { ($0.name, $0.value) })
        let known = Set(ncClasses.classes.map(\.value) + ncClasses.ignoreValues)
        let labels = try VectorLabels.rasterize(path: shp, options: .init(attribute: "label", fill: 0), classes: names, knownValues: known,
                                                onto: image.info.grid).dataset
        let ours = try labels.read(window: Window(width: 489, height: 443))
        let dir = TemporaryDirectory()
        let ref = dir.file("ref.tif")
        let gt = image.info.geoTransform!
        var r = try Tool.run("gdal_create", ["-of", "GTiff", "-ot", "Int32", "-outsize", "489", "443", "-bands", "1", "-burn", "0",
                                            "-a_srs", image.info.crs!.wkt, "-a_ullr", "\(gt.originX)", "\(gt.originY)",
                                            "\(gt.originX + 489 * gt.pixelWidth)", "\(gt.originY + 443 * gt.pixelHeight)", ref])
        #expect(r.status == 0, "\(r.stderr)")
        for (name, value) in names.sorted(by: { $0.value < $1.value }) {
            r = try Tool.run("gdal_rasterize", ["-where", "label = '\(name)'", "-burn", "\(value)", shp, ref])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let theirs = try Dataset(path: ref).read(window: Window(width: 489, height: 443))
        let ourValues = zip(ours.values, ours.valid).map { $1 != 0 ? $0 : 0 }
        #expect(ourValues == theirs.values)
        #expect(ours.validCount > 1000)
        #expect(Set(ourValues) == Set([0, 1, 2, 3, 4, 5, 6, 7]))
        let bad = #expect(throws: RasterError.self) { try VectorLabels.rasterize(path: shp, options: .init(attribute: "klass"), classes: names, knownValues: known, onto: image.info.grid) }
        #expect(bad?.description.contains("has no attribute 'klass'") == true)
        #expect(bad?.description.contains("label") == true)
    }
}
