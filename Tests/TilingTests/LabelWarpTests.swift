import Core
import Foundation
import GeoRaster
import Testing
import TestSupport
import Tiling

/// Label rasters on another grid or CRS are warped onto the image grid (nearest, mode when
/// coarser); labels elsewhere are refused.
@Suite(.enabled(if: Tool.exists("gdalwarp"), "needs gdal-bin"))
struct LabelWarpTests {
    let classes = try! ClassMap(values: SyntheticScene.classes.map { ($0.value, $0.name) }, ignoreValues: [SyntheticScene.ignoreValue])

    func gdal(_ tool: String, _ args: [String]) throws {
        let r = try Tool.run(tool, args)
        try #require(r.status == 0, "\(tool) \(args): \(r.stderr)")
    }

    func targets(_ scene: LabelledScene) throws -> [Int32] {
        var patch = Patch()
        try scene.readPatch(Window(width: scene.width, height: scene.height), normalizer: nil, into: &patch)
        return patch.target
    }

    /// (labelled in the original, kept by the warped labels, changed) pixel counts.
    func agreement(original: [Int32], warped: [Int32]) -> (labelled: Int, kept: Int, changed: Int) {
        var labelled = 0, kept = 0, changed = 0
        for (a, b) in zip(original, warped) where a >= 0 {
            labelled += 1
            if b == a { kept += 1 } else if b >= 0 { changed += 1 }
        }
        return (labelled, kept, changed)
    }

    @Test(arguments: [
        ("reprojected", ["-t_srs", "EPSG:4326", "-r", "near"]),
        ("finer", ["-tr", "5", "5", "-r", "near"]),
        ("shifted", ["-tr", "10", "10", "-te", "599950", "4498850", "601550", "4500050", "-r", "near"]),
    ])
    func warpedLabelsGiveTheOriginalLabels(name: String, warp: [String]) throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 150, height: 110)
        let moved = dir.file("labels_\(name).tif")
        try gdal("gdalwarp", ["-q"] + warp + [scene.labels, moved])
        let original = try LabelledScene(image: Dataset(path: scene.image), labels: Dataset(path: scene.labels), classMap: classes)
        let warped = try LabelledScene(image: Dataset(path: scene.image), labels: Dataset(path: moved), classMap: classes)
        let (labelled, kept, changed) = agreement(original: try targets(original), warped: try targets(warped))
        // Resampled twice (by gdalwarp and back), class edges may move by a pixel; the rest is kept.
        #expect(Double(kept) >= 0.9 * Double(labelled), "\(name): \(kept) of \(labelled) kept")
        #expect(Double(changed) <= 0.1 * Double(labelled), "\(name): \(changed) changed")
        if name == "shifted" { #expect(kept == labelled) }  // same pixels, larger extent: exact
    }

    @Test func labelsElsewhereAreRefusedWithBothExtents() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 96, height: 80)
        let far = dir.file("far.tif")
        try gdal("gdalwarp", ["-q", "-t_srs", "EPSG:4326", scene.labels, dir.file("geo.tif")])
        try gdal("gdal_translate", ["-q", "-a_ullr", "10", "50", "10.01", "49.99", dir.file("geo.tif"), far])
        let error = #expect(throws: RasterError.self) {
            try LabelledScene(image: Dataset(path: scene.image), labels: Dataset(path: far), classMap: classes)
        }
        #expect(error?.kind == .gridMismatch)
        #expect(error?.description.contains("the label raster does not overlap the scene") == true)
        #expect(error?.description.contains("x 600000…600960, y 4499200…4500000 (both in EPSG:32617)") == true)
    }
}

/// sen1floods11's hand labels reprojected to UTM by `gdalwarp -t_srs` come back onto the
/// Sentinel-2 grid (EPSG:4326) with the original labels except along edges.
@Suite(.enabled(if: TestData.available && Tool.exists("gdalwarp"), "needs ../shared/data and gdal-bin"))
struct SharedDataLabelWarpTests {
    @Test func reprojectedHandLabelsComeBack() throws {
        let dir = TemporaryDirectory()
        let image = TestData.path("sen1floods11/S2/Spain_7370579_S2Hand.tif")
        let labels = TestData.path("sen1floods11/Labels/Spain_7370579_LabelHand.tif")
        let utm = dir.file("labels_utm.tif")
        let r = try Tool.run("gdalwarp", ["-q", "-t_srs", "EPSG:32630", "-r", "near", labels, utm])
        try #require(r.status == 0, "\(r.stderr)")
        // The file tags 0 (not water) as nodata: water (1) is what remains labelled.
        let classes = try ClassMap(values: [(0, "land"), (1, "water")], ignoreValues: [-1])
        let original = try LabelledScene(image: Dataset(path: image), labels: Dataset(path: labels), classMap: classes)
        let warped = try LabelledScene(image: Dataset(path: image), labels: Dataset(path: utm), classMap: classes)
        var a = Patch(), b = Patch()
        try original.readPatch(Window(width: 512, height: 512), normalizer: nil, into: &a)
        try warped.readPatch(Window(width: 512, height: 512), normalizer: nil, into: &b)
        var labelled = 0, kept = 0
        for (x, y) in zip(a.target, b.target) where x >= 0 {
            labelled += 1
            if x == y { kept += 1 }
        }
        #expect(labelled > 1000)
        #expect(Double(kept) >= 0.9 * Double(labelled), "\(kept) of \(labelled)")
    }
}
