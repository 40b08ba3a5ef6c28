import Core
import Foundation
import GeoRaster
import Testing
import TestSupport
import Tiling
@testable import Training

/// Tile sets as public datasets ship them: chips that give no patch are skipped and named,
/// small chips are padded, and the dataset's own lists and folders split the chips.
@Suite struct TileSetChipTests {
    let dir = TemporaryDirectory("terraseg-chips")

    func data(_ root: String, split: TileSplitSpec? = nil) throws -> DataSpec {
        DataSpec(tileSets: [TileSetSpec(root: root, images: [ChipSet.imageTemplate], mask: ChipSet.maskTemplate, split: split)],
                 classes: try ClassSpec.parseList(ChipSet.classes))
    }

    func patches(_ scenes: [LabelledScene]) throws -> (refs: [PatchRef], skips: ChipSkips) {
        try ChipSkips.candidatePatches(of: scenes, patchSize: 32, stride: 32, split: .none, minLabelledFraction: 0.5)
    }

    /// LandCover.ai ships GeoTIFF chips with plain PNG masks: a mask of the chip's size is read
    /// on the chip's pixel grid (the same labels as a georeferenced mask); another size is refused
    /// (the chip is skipped, named with the reason).
    @Test(.enabled(if: Tool.exists("gdal_translate")))
    func plainPNGMasksOfTheChipSizeAreReadOnItsPixelGrid() throws {
        let root = dir.file("plain")
        for id in ["a", "b", "c"] { try ChipSet.write(root: root, id: id) }
        try FileManager.default.createDirectory(atPath: root + "/png", withIntermediateDirectories: true)
        for id in ["a", "b", "c"] {
            let size = id == "c" ? ["-outsize", "16", "16"] : []
            let r = try Tool.run("gdal_translate", ["-q", "--config", "GDAL_PAM_ENABLED", "NO", "-of", "PNG"] + size + ["\(root)/masks/\(id).tif", "\(root)/png/\(id).png"])
            #expect(r.status == 0, "\(r.stderr)")
            let info = try Dataset(path: "\(root)/png/\(id).png").info
            #expect(info.geoTransform == nil && info.crs == nil, "a plain PNG")
        }
        let map = try data(root).classMap()
        let plain = try TileSet(root: root, images: [ChipSet.imageTemplate], mask: "png/{id}.png")
        let geo = try TileSet(root: root, images: [ChipSet.imageTemplate], mask: ChipSet.maskTemplate)
        var a = Patch(), b = Patch()
        let window = Window(width: 32, height: 32)
        try plain.scene("a", bands: nil, classMap: map).readPatch(window, normalizer: nil, into: &a)
        try geo.scene("a", bands: nil, classMap: map).readPatch(window, normalizer: nil, into: &b)
        #expect(a.target == b.target && a.target.contains(0) && a.target.contains(1))
        let error = #expect(throws: RasterError.self) { try plain.scene("c", bands: nil, classMap: map) }
        #expect(error?.description.contains("the labels are not georeferenced and are 16×16, not the 32×32 of the image") == true, "\(error?.description ?? "")")
        let spec = DataSpec(tileSets: [TileSetSpec(root: root, images: [ChipSet.imageTemplate], mask: "png/{id}.png",
                                                   split: TileSplitSpec(method: "hash"))], classes: try ClassSpec.parseList(ChipSet.classes))
        #expect(try spec.openScenes().map(\.name).sorted() == ["a", "b"])
    }

    /// Mostly-nodata, too small and unreadable chips are skipped and named; a chip smaller
    /// than the patch but with enough pixels gives one padded patch.
    @Test func chipsThatGiveNoPatchAreSkippedAndNamed() throws {
        let root = dir.file("set")
        for id in ["a", "b"] { try ChipSet.write(root: root, id: id) }
        try ChipSet.write(root: root, id: "c-nodata", nodataFromRow: 4)
        try ChipSet.write(root: root, id: "d-small", size: 16)
        try ChipSet.write(root: root, id: "e-padded", size: 24)
        try ChipSet.writeUnreadable(root: root, id: "f-broken")
        let scenes = try data(root).openScenes()
        #expect(scenes.map(\.name) == ["a", "b", "c-nodata", "d-small", "e-padded"])
        #expect(scenes.allSatisfy { $0.chip })
        let (refs, skips) = try patches(scenes)
        #expect(skips.skipped.map(\.name) == ["c-nodata", "d-small"])
        #expect(skips.skipped[0].reason.contains("no 32×32 patch has 50 % valid, labelled pixels"))
        #expect(skips.skipped[1].reason.contains("the 16×16 chip, padded to a 32×32 patch, has less than 50 %"))
        let notice = try #require(skips.notice(of: scenes.count, what: "that give no patch"))
        #expect(notice.hasPrefix("skipped 2 of 5 chips that give no patch: c-nodata ("))
        #expect(Set(refs.map(\.scene)) == [0, 1, 4])
        let padded = try #require(refs.first { $0.scene == 4 })
        #expect(padded.window == Window(column: 0, row: 0, width: 32, height: 32))
        #expect(abs(padded.labelledFraction - 24.0 * 24 / (32 * 32)) < 1e-9)
    }

    /// Training goes on past a mostly-nodata chip (it used to abort the whole run).
    @Test func trainingSkipsAMostlyNodataChip() throws {
        let root = dir.file("train-set")
        for id in ["a", "b", "c"] { try ChipSet.write(root: root, id: id) }
        try ChipSet.write(root: root, id: "d-nodata", nodataFromRow: 3)
        let train = try write("tr.txt", "a\nc\nd-nodata\n"), validation = try write("va.txt", "b\n")
        let scenes = try data(root, split: TileSplitSpec(method: "lists", train: train, validation: validation)).openScenes()
        let architecture = try TinyModel.model.architecture(inputChannels: 2, classes: 2)
        var options = TinyModel.options(epochs: 1)
        options.stride = 32
        let trainer = try Trainer(scenes: scenes, architecture: architecture, options: options, output: dir.file("model"))
        trainer.progress.quiet = true
        let prepared = try trainer.prepareData()
        #expect(prepared.train.map { scenes[$0.scene].name } == ["a", "c"])
        #expect(prepared.validation.map { scenes[$0.scene].name } == ["b"])
    }

    /// When the only training chip is skipped (the validation chips being fine), the refusal
    /// names it and why; it used to say that the split gave every patch to validation.
    @Test func aSkippedOnlyTrainingChipIsNamed() throws {
        let root = dir.file("only-train")
        for id in ["a", "b"] { try ChipSet.write(root: root, id: id) }
        try ChipSet.write(root: root, id: "d-nodata", nodataFromRow: 3)
        let train = try write("only-tr.txt", "d-nodata\n"), validation = try write("only-va.txt", "a\nb\n")
        let scenes = try data(root, split: TileSplitSpec(method: "lists", train: train, validation: validation)).openScenes()
        let architecture = try TinyModel.model.architecture(inputChannels: 2, classes: 2)
        let trainer = try Trainer(scenes: scenes, architecture: architecture, options: TinyModel.options(epochs: 1), output: dir.file("only"))
        trainer.progress.quiet = true
        let error = #expect(throws: RasterError.self) { try trainer.prepareData() }
        let text = error?.description ?? ""
        #expect(text.contains("none of the 1 training chips is usable: skipped 1 of 1 chips that give no patch: d-nodata (no 32×32 patch has 50 % valid"), "\(text)")
        #expect(text.contains("or list more training chips") && !text.contains("validation set"), "\(text)")
        // Likewise when the only training chip cannot be opened.
        try ChipSet.writeUnreadable(root: root, id: "e-broken")
        let broken = try write("broken-tr.txt", "e-broken\n")
        let unopened = #expect(throws: RasterError.self) {
            try data(root, split: TileSplitSpec(method: "lists", train: broken, validation: validation)).openScenes()
        }
        #expect(unopened?.description.contains("none of the 1 training chips is usable: skipped 1 of 1 chips that cannot be opened: e-broken (") == true,
                "\(unopened?.description ?? "")")
    }

    /// The run fails only when no usable chip is left, naming the chips and why.
    @Test func noUsableChipIsRefused() throws {
        let root = dir.file("bad")
        try ChipSet.write(root: root, id: "x", nodataFromRow: 2)
        try ChipSet.write(root: root, id: "y", size: 8)
        let error = #expect(throws: RasterError.self) { try patches(try data(root).openScenes()) }
        #expect(error?.description.contains("none of the 2 chips is usable: skipped 2 of 2 chips that give no patch: x (") == true)
        #expect(error?.description.contains("; y (the 8×8 chip") == true)
        let broken = dir.file("broken")
        try ChipSet.writeUnreadable(root: broken, id: "z")
        let unreadable = #expect(throws: RasterError.self) { try data(broken).openScenes() }
        #expect(unreadable?.description.contains("none of the 1 chips is usable: skipped 1 of 1 chips that cannot be opened: z (") == true)
    }

    /// A scene (not a chip) smaller than the patch is still refused, as before.
    @Test func scenesSmallerThanThePatchAreStillRefused() throws {
        let root = dir.file("one")
        try ChipSet.write(root: root, id: "a", size: 16)
        let scene = try #require(try data(root).openScenes().first)
        scene.chip = false
        let error = #expect(throws: RasterError.self) { try patches([scene]) }
        #expect(error?.description.contains("the patch size 32 is larger than the scene (16×16)") == true)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = dir.file(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Lists name chips by id or file name; each chip goes to its list's part, test chips are
    /// not trained on, chips in no list are reported.
    @Test func listSplitsAreHonouredExactly() throws {
        let root = dir.file("listed")
        for id in ["a", "b", "c", "d", "e", "f"] { try ChipSet.write(root: root, id: id) }
        let train = try write("train.txt", "a\nimages/b.tif\n# a comment\n\nc.tif\n")
        let validation = try write("val.txt", "d\n")
        let test = try write("test.txt", "e\n")
        let split = TileSplit.lists(train: train, validation: validation, test: test)
        let (chips, unlisted) = try split.chips(root: root, images: [ChipSet.imageTemplate], mask: ChipSet.maskTemplate)
        #expect(chips.map { "\($0.id):\($0.part.rawValue)" } == ["a:train", "b:train", "c:train", "d:validation", "e:test"])
        #expect(unlisted == ["f"])
        let scenes = try data(root, split: TileSplitSpec(method: "lists", train: train, validation: validation, test: test)).openScenes()
        #expect(scenes.map { "\($0.name):\($0.role!.rawValue)" } == ["a:train", "b:train", "c:train", "d:validation"])
        let unknown = try write("bad.txt", "a\nzzz\n")
        let error = #expect(throws: TerraSegError.self) {
            try TileSplit.lists(train: unknown, validation: nil, test: nil).chips(root: root, images: [ChipSet.imageTemplate], mask: ChipSet.maskTemplate)
        }
        #expect(error?.description.contains("line 2 'zzz' names no chip of") == true)
        let twice = #expect(throws: TerraSegError.self) {
            try TileSplit.lists(train: train, validation: train.replacingOccurrences(of: "train", with: "val"), test: try write("t2.txt", "a\n"))
                .chips(root: root, images: [ChipSet.imageTemplate], mask: ChipSet.maskTemplate)
        }
        #expect(twice?.description.contains("chip 'a' is also in the train list") == true)
    }

    /// train/, val/ and test/ sub-folders give the parts.
    @Test func folderSplitsAreHonouredExactly() throws {
        let root = dir.file("folders")
        for (folder, ids) in [("train", ["a", "b"]), ("val", ["c"]), ("test", ["d", "e"])] {
            for id in ids { try ChipSet.write(root: (root as NSString).appendingPathComponent(folder), id: id) }
        }
        let (chips, unlisted) = try TileSplit.folders.chips(root: root, images: [ChipSet.imageTemplate], mask: ChipSet.maskTemplate)
        #expect(chips.map { "\($0.id):\($0.part.rawValue)" } == ["a:train", "b:train", "c:validation", "d:test", "e:test"])
        #expect(unlisted.isEmpty)
        let scenes = try data(root, split: TileSplitSpec(method: "folders")).openScenes()
        #expect(scenes.map { "\($0.name):\($0.role!.rawValue)" } == ["a:train", "b:train", "c:validation"])
        let error = #expect(throws: TerraSegError.self) { try TileSplit.folders.chips(root: dir.file("listed-none"), images: [ChipSet.imageTemplate], mask: ChipSet.maskTemplate) }
        #expect(error?.description.contains("found no train/, val/ or test/ sub-folder") == true)
        #expect(try TileSplitSpec.parse("lists:t.txt,,x.txt") == TileSplitSpec(method: "lists", train: "t.txt", test: "x.txt"))
        #expect(throws: SettingSyntaxError.self) { try TileSplitSpec.parse("random") }
        let ignored = #expect(throws: TerraSegError.self) {
            try data(root, split: TileSplitSpec(method: "folders", test: "test.txt")).openScenes()
        }
        #expect(ignored?.description.contains("split.test: a list is given but the split method is folders") == true)
    }
}
