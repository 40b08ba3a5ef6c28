import Core
import Foundation
import GeoRaster
import Testing
import TestSupport

/// Scenes whose sources lie on different grids: warped onto the scene grid as GDAL's
/// `gdalwarp` would, mosaics, nodata overrides, and the refusals.
@Suite(.enabled(if: Tool.exists("gdalwarp"), "needs gdal-bin"))
struct GridTests {
    func gdal(_ tool: String, _ args: [String]) throws {
        let r = try Tool.run(tool, args)
        try #require(r.status == 0, "\(tool) \(args): \(r.stderr)")
    }

    /// The largest difference between two blocks over pixels valid in both, and how many there were.
    func compare(_ a: RasterBlock, _ b: RasterBlock, bandsA: Range<Int>, bandsB: Range<Int>) -> (maxDiff: Float, valid: Int) {
        var maxDiff: Float = 0, valid = 0
        let n = a.window.pixelCount
        for i in 0..<n where a.valid[i] != 0 && b.valid[i] != 0 {
            valid += 1
            for (ka, kb) in zip(bandsA, bandsB) { maxDiff = max(maxDiff, abs(a.values[ka * n + i] - b.values[kb * n + i])) }
        }
        return (maxDiff, valid)
    }

    /// A 10 m scene plus two of its bands at 20 m: the stack reads them on the 10 m grid, and
    /// its windows equal the same bands pre-warped by `gdalwarp -r bilinear`.
    @Test func twentyMetreBandsEqualGdalwarp() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 150, height: 110)
        let coarse = dir.file("b34_20m.tif"), pre = dir.file("b34_prewarped.tif")
        try gdal("gdal_translate", ["-q", "-b", "3", "-b", "4", "-tr", "20", "20", "-r", "average", scene.image, coarse])
        try gdal("gdalwarp", ["-q", "-r", "bilinear", "-ot", "Float32", "-tr", "10", "10", "-te", "600000", "4498900", "601500", "4500000",
                              "-dstalpha", coarse, pre])
        let stack = try BandStack(sources: [SourceSpec(files: [scene.image]), SourceSpec(files: [coarse])])
        #expect(stack.info.width == 150 && stack.info.height == 110 && stack.info.bandCount == 6)
        #expect(stack.notices.count == 1)
        #expect(stack.notices.first?.contains("pixels 20 metre → 10 metre") == true)
        #expect(stack.notices.first?.contains("bilinear") == true)
        let reference = try Dataset(path: pre)
        for window in [Window(column: 0, row: 0, width: 64, height: 64), Window(column: 70, row: 40, width: 80, height: 70),
                       Window(column: -8, row: 100, width: 32, height: 32)] {
            let ours = try stack.read(window: window, bands: [5, 6])
            let theirs = try reference.read(window: window, bands: [1, 2])
            let (maxDiff, valid) = compare(ours, theirs, bandsA: 0..<2, bandsB: 0..<2)
            #expect(valid > 0)
            #expect(maxDiff <= 1e-5, "window \(window): differs by \(maxDiff)")
        }
    }

    /// `resolution:` makes a coarser grid; sources finer than it are averaged.
    @Test func resolutionGridAveragesFinerSources() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 150, height: 110)
        let stack = try BandStack(sources: [SourceSpec(files: [scene.image])], grid: GridSpec(resolution: 20))
        #expect(stack.info.width == 75 && stack.info.height == 55)
        #expect(stack.info.geoTransform?.pixelWidth == 20)
        #expect(stack.notices.first?.contains("average") == true)
        let block = try stack.read(window: Window(column: 60, row: 40, width: 2, height: 2), bands: [1])
        let fine = try Dataset(path: scene.image).read(window: Window(column: 120, row: 80, width: 2, height: 2), bands: [1])
        let mean = fine.values.reduce(0, +) / 4
        #expect(abs(block.values[0] - mean) < 1e-4)
    }

    /// `grid: FILE` takes another raster's grid; `resolution:` with `crs:` reprojects.
    @Test func gridFromAFileOrAnotherCRS() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 96, height: 80)
        let target = dir.file("target.tif")
        try gdal("gdal_translate", ["-q", "-srcwin", "10", "20", "50", "40", "-tr", "5", "5", scene.image, target])
        let onFile = try BandStack(sources: [SourceSpec(files: [scene.image])], grid: GridSpec(file: target))
        let expected = try Dataset(path: target).info.grid
        #expect(onFile.info.grid.differences(from: expected).isEmpty)
        #expect(onFile.notices.first?.contains("pixels 10 metre → 5 metre") == true)
        let geographic = try BandStack(sources: [SourceSpec(files: [scene.image])], grid: GridSpec(resolution: 0.0001, crs: "EPSG:4326"))
        #expect(geographic.info.crs?.epsg == 4326)
        #expect(geographic.notices.first?.contains("CRS EPSG:32617 → EPSG:4326") == true)
        let block = try geographic.read(window: Window(width: geographic.info.width, height: geographic.info.height))
        #expect(block.validCount > block.window.pixelCount / 3)
    }

    /// A band given as two adjacent files reads as the whole band (GDALBuildVRT mosaic).
    @Test func mosaicOfTwoHalvesEqualsTheWhole() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 150, height: 110)
        let left = dir.file("left.tif"), right = dir.file("right.tif")
        try gdal("gdal_translate", ["-q", "-srcwin", "0", "0", "80", "110", scene.image, left])
        try gdal("gdal_translate", ["-q", "-srcwin", "80", "0", "70", "110", scene.image, right])
        let mosaic = try openScene([SourceSpec(files: [left, right])])
        #expect(mosaic.info.width == 150 && mosaic.info.height == 110)
        let window = Window(column: 60, row: 30, width: 50, height: 50)
        let whole = try Dataset(path: scene.image).read(window: window)
        let ours = try mosaic.read(window: window)
        #expect(ours.values == whole.values && ours.valid == whole.valid)
    }

    /// `nodata:` for a file without a nodata tag marks those pixels invalid, also when warped.
    @Test func nodataOverride() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 96, height: 80, kind: .uint16)
        let untagged = dir.file("untagged.tif")
        try gdal("gdal_translate", ["-q", "-a_nodata", "none", scene.image, untagged])
        let corner = Window(column: 0, row: 0, width: 4, height: 4)  // nodata corner of the synthetic scene
        #expect(try Dataset(path: untagged).read(window: corner).validCount == 16)
        let fixed = try openScene([SourceSpec(files: [untagged], nodata: 0)])
        #expect(try fixed.read(window: corner).validCount == 0)
        let coarse = try openScene([SourceSpec(files: [untagged], nodata: 0)], grid: GridSpec(resolution: 20))
        #expect(try coarse.read(window: Window(column: 0, row: 0, width: 2, height: 2)).validCount == 0)
        #expect(try coarse.read(window: Window(column: 40, row: 30, width: 2, height: 2)).validCount == 4)
    }

    /// A source elsewhere is refused, naming both extents in the scene's CRS.
    @Test func sourceElsewhereIsRefused() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 96, height: 80)
        let far = dir.file("far.tif")
        try gdal("gdal_translate", ["-q", "-a_ullr", "700000", "4500000", "700960", "4499200", scene.image, far])
        let error = #expect(throws: RasterError.self) { try BandStack(paths: [scene.image, far]) }
        #expect(error?.description.contains("does not overlap the scene") == true)
        #expect(error?.description.contains("x 700000…700960") == true)
        #expect(error?.description.contains("x 600000…600960") == true)
        #expect(error?.description.contains("EPSG:32617") == true)
    }

    /// A resolution in the wrong unit is refused before anything is allocated.
    @Test func resolutionInTheWrongUnitIsRefused() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 96, height: 80)
        let error = #expect(throws: RasterError.self) {
            try BandStack(sources: [SourceSpec(files: [scene.image])], grid: GridSpec(resolution: 0.0001))
        }
        #expect(error?.description.contains("metre") == true)
        let e2 = #expect(throws: RasterError.self) {
            try BandStack(sources: [SourceSpec(files: [scene.image])], grid: GridSpec(file: scene.image, resolution: 10))
        }
        #expect(e2?.description.contains("not both") == true)
    }

    /// A resolution that would refine a source's pixels more than 16× per side (a scene in other
    /// units, or far coarser than the model's training data) is refused, naming the source, the
    /// factor and the grid it would make; up to 16× is read (Sentinel-2's 60 m bands onto 10 m).
    @Test func aResolutionFarFinerThanTheSourceIsRefused() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 96, height: 80)  // 10 m pixels
        let error = #expect(throws: RasterError.self) {
            try BandStack(sources: [SourceSpec(files: [scene.image])], grid: GridSpec(resolution: 0.5))
        }
        #expect(error?.description.contains(scene.image) == true, "\(String(describing: error))")
        #expect(error?.description.contains("20× the resolution 0.5") == true, "\(String(describing: error))")
        #expect(error?.description.contains("1920×1600 pixels of its 96×80") == true, "\(String(describing: error))")
        #expect(error?.description.contains("gdalwarp -tr 0.5 0.5") == true, "\(String(describing: error))")
        let fine = try BandStack(sources: [SourceSpec(files: [scene.image])], grid: GridSpec(resolution: 0.625))  // 16×
        #expect(fine.info.width == 1536 && fine.info.height == 1280)
        // And one that would coarsen them more than 1000× (a grid of a pixel or two) likewise.
        let coarse = #expect(throws: RasterError.self) {
            try BandStack(sources: [SourceSpec(files: [scene.image])], grid: GridSpec(resolution: 20_000))
        }
        #expect(coarse?.description.contains("1/2000 of the resolution 20000") == true, "\(String(describing: coarse))")
        #expect(try BandStack(sources: [SourceSpec(files: [scene.image])], grid: GridSpec(resolution: 500)).info.width == 2)
    }
}

/// The same on sen1floods11's real Sentinel-2 bands (EPSG:4326): a 20 m version of a band,
/// made with `gdal_translate -tr`, reads on the 10 m grid as `gdalwarp` warps it.
@Suite(.enabled(if: TestData.available && Tool.exists("gdalwarp"), "needs ../shared/data and gdal-bin"))
struct SharedDataGridTests {
    @Test func sentinel2TwentyMetreBandEqualsGdalwarp() throws {
        let dir = TemporaryDirectory()
        let s2 = TestData.path("sen1floods11/S2/Spain_7370579_S2Hand.tif")
        let grid = try Dataset(path: s2).info.grid
        let t = try #require(grid.geoTransform), e = try #require(grid.extent)
        let b02 = dir.file("B02.tif"), b05 = dir.file("B05_20m.tif"), pre = dir.file("B05_pre.tif")
        for (args, out) in [(["-b", "2"], b02), (["-b", "5", "-tr", "\(2 * t.pixelWidth)", "\(-2 * t.pixelHeight)", "-r", "average"], b05)] {
            let r = try Tool.run("gdal_translate", ["-q"] + args + [s2, out])
            try #require(r.status == 0, "\(r.stderr)")
        }
        let r = try Tool.run("gdalwarp", ["-q", "-r", "bilinear", "-ot", "Float32", "-tr", "\(t.pixelWidth)", "\(-t.pixelHeight)",
                                          "-te", "\(e.minX)", "\(e.minY)", "\(e.maxX)", "\(e.maxY)", "-dstalpha", b05, pre])
        try #require(r.status == 0, "\(r.stderr)")
        let stack = try BandStack(paths: [b02, b05])
        #expect(stack.info.width == 512 && stack.notices.first?.contains("bilinear") == true)
        let reference = try Dataset(path: pre)
        for window in [Window(column: 0, row: 0, width: 128, height: 128), Window(column: 300, row: 200, width: 200, height: 180)] {
            let ours = try stack.read(window: window, bands: [2]), theirs = try reference.read(window: window, bands: [1])
            var maxDiff: Float = 0, valid = 0  // relative to the band value
            for i in 0..<window.pixelCount where ours.valid[i] != 0 && theirs.valid[i] != 0 {
                valid += 1
                maxDiff = max(maxDiff, abs(ours.values[i] - theirs.values[i]) / max(1, abs(theirs.values[i])))
            }
            #expect(valid > window.pixelCount / 2)
            #expect(maxDiff <= 1e-5, "window \(window): differs by \(maxDiff) (relative)")
        }
    }
}
