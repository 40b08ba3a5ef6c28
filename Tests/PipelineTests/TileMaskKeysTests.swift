import Foundation
import Pipeline
import Testing
import TestSupport
import Training

/// Tile-set mask keys: `mask` as a template or `{template, colors}`, colours under `data.ignore`.
@Suite struct TileMaskKeysTests {
    static func parse(_ data: String) throws -> PipelineLoader.Loaded {
        try PipelineLoader.parse("data:\n" + data + "\n  classes: [{value: 1, name: a, color: \"#1f78b4\"}, {value: 2, name: b}]",
                                 file: "p.yaml", base: "/nonexistent", checkFiles: false)
    }

    @Test func colourMasksAndIgnoredColoursAreRead() throws {
        let loaded = try Self.parse("""
          tile_sets:
            - {root: deepglobe, images: ["{id}_sat.jpg"], mask: {template: "{id}_mask.png", colors: true}}
            - {root: landcover, images: ["images/{id}.tif"], mask: "masks/{id}_m.png"}
          ignore: [0, "#000000", -1]
        """)
        let sets = loaded.spec.data.tileSets
        #expect(sets[0].mask == "{id}_mask.png" && sets[0].maskColors)
        #expect(sets[1].mask == "masks/{id}_m.png" && !sets[1].maskColors)
        #expect(loaded.spec.data.ignore == [0, -1])
        #expect(loaded.spec.data.ignoreColors == ["#000000"])
        // The settings round-trip (fingerprints encode them): the colour form survives.
        let json = try JSONEncoder().encode(loaded.spec.data)
        #expect(try JSONDecoder().decode(DataSpec.self, from: json) == loaded.spec.data)
    }

    @Test func badColoursAndMaskMappingsAreRefused() throws {
        let error = #expect(throws: PipelineError.self) {
            try Self.parse("""
              tile_sets: [{root: t, images: ["{id}.tif"], mask: {colors: true, palette: x}}]
              ignore: [0, "black"]
            """)
        }
        let text = error?.description ?? ""
        #expect(text.contains("data.ignore[1]: 'black' is neither a label value nor a colour"), "\(text)")
        #expect(text.contains("missing required key 'template'"), "\(text)")
    }

    /// `terraseg run --check` refuses a split whose lists would be ignored or missing, naming the key.
    @Test func splitListsNeedMethodLists() throws {
        let error = #expect(throws: PipelineError.self) {
            try Self.parse("""
              tile_sets:
                - {root: a, images: ["{id}.tif"], mask: "{id}.png", split: {method: hash, train: train.txt, test: test.txt}}
                - {root: b, images: ["{id}.tif"], mask: "{id}.png", split: {method: lists}}
                - {root: c, images: ["{id}.tif"], mask: "{id}.png", split: {method: lsits, train: train.txt}}
                - {root: d, images: ["{id}.tif"], mask: "{id}.png", split: {validation: val.txt}}
            """)
        }
        let text = error?.description ?? ""
        #expect(text.contains("data.tile_sets[0].split.train: a list is given but the split method is hash"), "\(text)")
        #expect(text.contains("data.tile_sets[1].split: method lists names no list"), "\(text)")
        #expect(text.contains("data.tile_sets[2].split.method: must be one of hash, lists, folders, got 'lsits'. Did you mean 'lists'?"), "\(text)")
        #expect(text.contains("data.tile_sets[3].split.validation: a list is given but the split method is hash"), "\(text)")
        let fine = try Self.parse("""
          tile_sets: [{root: a, images: ["{id}.tif"], mask: "{id}.png", split: {method: lists, train: t.txt}}]
        """)
        #expect(fine.spec.data.tileSets[0].split?.method == "lists")
    }

    @Test func ignoreFlagReadsValuesAndColours() throws {
        let list = try IgnoreList.parse("0, #000000,255")
        #expect(list.values == [0, 255] && list.colors == ["#000000"])
        #expect(throws: SettingSyntaxError.self) { try IgnoreList.parse("0,black") }
    }
}
