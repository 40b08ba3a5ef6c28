import Foundation
import GeoRaster
import Testing
import TestSupport

/// `terraseg train --tile-mask-colors`: a tile set whose masks are RGB colours, with a colour
/// to ignore given to --ignore beside the values.
@Suite struct TileMaskCommandTests {
    @Test func trainsOnColourCodedMasks() throws {
        let dir = TemporaryDirectory("terraseg-colours")
        let root = dir.file("set")
        for sub in ["images", "rgb"] { try FileManager.default.createDirectory(atPath: root + "/" + sub, withIntermediateDirectories: true) }
        let colors: [Int: RGBA] = [1: RGBA(0x1f, 0x78, 0xb4), 2: RGBA(0x33, 0xa0, 0x2c), 3: RGBA(0xff, 0xff, 0x99)]
        for (i, id) in ["a", "b", "c"].enumerated() {
            let scene = try SyntheticScene(in: root + "/images", name: id, width: 64, height: 64, seed: UInt64(i + 1))
            try RasterMaker.colorMask(values: scene.labels, to: "\(root)/rgb/\(id).tif", colors: colors)
            try FileManager.default.removeItem(atPath: scene.labels)
        }
        let classes = "1=water:#1f78b4,2=forest:#33a02c,3=bare:#ffff99"
        let common = ["train", "--tiles", root, "--tile-images", "images/{id}.tif", "--tile-mask", "rgb/{id}.tif", "--classes", classes,
                      "--widths", "8,16", "--patch-size", "32", "--batch-size", "4", "--epochs", "1"]
        // Black (unlabelled and nodata) is not a class colour: refused, naming the colour and a chip.
        let refused = try Tool.run(Tool.terraseg, common + ["--tile-mask-colors", "--output", dir.file("m0")])
        #expect(refused.status != 0 && !refused.crashed)
        #expect(refused.stderr.contains("colour #000000") && refused.stderr.contains("/rgb/"), "\(refused.stderr)")
        let r = try Tool.run(Tool.terraseg, common + ["--tile-mask-colors", "--ignore", "0,#000000", "--output", dir.file("m1")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.file("m1") + "/model.json"))
        // The flag alone, without a tile set, is refused rather than ignored.
        let alone = try Tool.run(Tool.terraseg, ["train", "--tile-mask-colors", "--classes", classes, "--output", dir.file("m2")])
        #expect(alone.status != 0 && alone.stderr.contains("--tile-mask-colors needs --tiles"), "\(alone.stderr)")
    }
}
