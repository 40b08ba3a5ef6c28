import Core
import Foundation
import GeoRaster
import Testing
import TestSupport

/// Pixel values read by TerraSeg equal those GDAL's own `gdallocationinfo` reports.
@Suite(.enabled(if: TestData.available && Tool.exists("gdallocationinfo"), "needs ../shared/data and gdal-bin"))
struct ReferenceValueTests {
    /// GDAL's value of band `band` at pixel (col, row), via `gdallocationinfo -valonly`.
    func gdalValue(_ path: String, band: Int, column: Int, row: Int) throws -> Double {
        let r = try Tool.run("gdallocationinfo", ["-valonly", "-b", String(band), path, String(column), String(row)])
        let text = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return try #require(Double(text), "gdallocationinfo printed '\(text)' \(r.stderr)")
    }

    func check(_ path: String, pixels: [(Int, Int)], bands: [Int]) throws {
        let ds = try Dataset(path: path)
        for (c, r) in pixels {
            let block = try ds.read(window: Window(column: c, row: r, width: 1, height: 1), bands: bands)
            // A pixel is valid when no selected band is nodata or NaN there.
            var expected: [Double] = []
            var allValid = true
            for b in bands {
                let v = try gdalValue(path, band: b, column: c, row: r)
                expected.append(v)
                if v.isNaN || ds.info.bands[b - 1].nodata.map({ Float($0) == Float(v) }) == true { allValid = false }
            }
            #expect(block.isValid(column: 0, row: 0) == allValid, "\(path) (\(c),\(r))")
            for (k, v) in expected.enumerated() {
                let want: Float = allValid ? Float(v) : 0
                #expect(block.value(band: k, column: 0, row: 0) == want, "\(path) (\(c),\(r)) band \(bands[k])")
            }
        }
    }

    @Test func ncLandsat7Float32WithNodata() throws {
        let path = TestData.path("nc-landsat7/image_6band.tif")
        // Interior pixels, and (0, 0) which lies in the -99999 border.
        try check(path, pixels: [(0, 0), (100, 100), (250, 300), (488, 442), (300, 17)], bands: [1, 4, 6])
        let ds = try Dataset(path: path)
        let corner = try ds.read(window: Window(column: 0, row: 0, width: 2, height: 2))
        #expect(corner.validCount == 0, "the border of nc-landsat7 is nodata")
        #expect(corner.values.allSatisfy { $0 == 0 }, "invalid pixels read as 0")
    }

    @Test func cloud38UInt16BandFiles() throws {
        for name in ["red", "green", "blue", "nir"] {
            let file = TestData.files(in: "38cloud").first { URL(fileURLWithPath: $0).lastPathComponent.hasPrefix(name + "_") }!
            try check(file, pixels: [(0, 0), (17, 200), (383, 383), (190, 45)], bands: [1])
        }
    }

    @Test func otherTypes() throws {
        try check(TestData.path("ukis-cloud/landsat7_image.tif"), pixels: [(5, 5), (300, 411)], bands: [1, 6])
        try check(TestData.path("landsat-large/landsat.tif"), pixels: [(700, 700), (1000, 20)], bands: [1, 3, 7])
        let s2 = TestData.files(in: "sen1floods11/S2").first!
        try check(s2, pixels: [(10, 10), (400, 300)], bands: [1, 8, 13])
        try check(TestData.path("geotiff-zoo/rio-cogeo__image_nodata.tif"), pixels: [(0, 0), (250, 250)], bands: [1])
        try check(TestData.path("geotiff-zoo/rio-cogeo__image_float.tif"), pixels: [(3, 3), (200, 100)], bands: [1])
    }

    @Test func stackedBandFilesMatchSingleFiles() throws {
        let files = ["red", "green", "blue", "nir"].map { n in
            TestData.files(in: "38cloud").first { URL(fileURLWithPath: $0).lastPathComponent.hasPrefix(n + "_") }!
        }
        let stack = try BandStack(paths: files)
        #expect(stack.info.bandCount == 4)
        #expect(stack.info.bands[3].path == files[3])
        let w = Window(column: 100, row: 50, width: 40, height: 30)
        let block = try stack.read(window: w, bands: [4, 1])
        let nir = try Dataset(path: files[3]).read(window: w)
        let red = try Dataset(path: files[0]).read(window: w)
        #expect(Array(block.values[0..<w.pixelCount]) == nir.values)
        #expect(Array(block.values[w.pixelCount...]) == red.values)
    }
}

@Suite(.enabled(if: TestData.available, "needs ../shared/data"))
struct ReadBehaviourTests {
    @Test func windowsPastTheEdgeAreFilledAndInvalid() throws {
        let ds = try Dataset(path: TestData.path("ukis-cloud/sentinel2_image.tif"))
        let w = Window(column: 500, row: -4, width: 20, height: 10)
        let block = try ds.read(window: w, bands: [2, 1])
        let inside = try ds.read(window: Window(column: 500, row: 0, width: 12, height: 6), bands: [2, 1])
        for r in 0..<10 {
            for c in 0..<20 {
                let isInside = r >= 4 && c < 12
                #expect(block.isValid(column: c, row: r) == isInside)
                if isInside {
                    #expect(block.value(band: 1, column: c, row: r) == inside.value(band: 1, column: c, row: r - 4))
                } else {
                    #expect(block.value(band: 0, column: c, row: r) == 0)
                }
            }
        }
        let outside = try ds.read(window: Window(column: 600, row: 600, width: 4, height: 4))
        #expect(outside.validCount == 0)
    }

    @Test func noCRSIsReported() throws {
        for f in ["landsat5_image.tif", "landsat7_image.tif", "sentinel2_image.tif"] {
            let info = try Dataset(path: TestData.path("ukis-cloud/" + f)).info
            #expect(info.crs == nil)
            #expect(!info.isGeoreferenced)
            #expect(info.bandCount == 6)
        }
    }

    @Test func georeferencingIsReported() throws {
        let nc = try Dataset(path: TestData.path("nc-landsat7/image_6band.tif")).info
        #expect(nc.geoTransform == GeoTransform([630534, 28.5, 0, 228114, 0, -28.5]))
        #expect(nc.crs?.closestEPSG == 32119)
        #expect(nc.bands.map(\.nodata) == Array(repeating: -99999, count: 6))
        let flood = try Dataset(path: TestData.files(in: "sen1floods11/S2").first!).info
        #expect(flood.crs?.epsg == 4326)
        #expect(flood.crs?.isGeographic == true)
        let gcps = try Dataset(path: TestData.path("geotiff-zoo/rio-tiler__cog_gcps.tif")).info
        #expect(gcps.gcpCount > 0 && gcps.geoTransform == nil && gcps.isGeoreferenced)
        let rotated = try Dataset(path: TestData.path("geotiff-zoo/rasterio__rotated.tif")).info
        #expect(rotated.geoTransform?.isRotated == true)
        let cog = try Dataset(path: TestData.path("geotiff-zoo/rasterio__cogeo.tif")).info
        #expect(!cog.overviews.isEmpty)
    }

    @Test func masksAlphaAndNaNAreInvalid() throws {
        // Alpha band: pixels with alpha 0 are invalid; the alpha band is not a data band.
        let rgba = try Dataset(path: TestData.path("geotiff-zoo/rasterio__RGBA.byte.tif"))
        #expect(rgba.info.dataBandIndices == [1, 2, 3])
        let full = Window(width: rgba.info.width, height: rgba.info.height)
        let block = try rgba.read(window: full)
        let alpha = try rgba.read(window: full, bands: [4])
        var mismatches = 0
        for i in 0..<full.pixelCount where (alpha.values[i] != 0) != (block.valid[i] != 0) { mismatches += 1 }
        #expect(mismatches == 0)
        #expect(block.validCount > 0 && block.validCount < full.pixelCount)

        // Per-dataset internal mask.
        let masked = try Dataset(path: TestData.path("geotiff-zoo/rio-cogeo__image_rgb_mask.tif"))
        #expect(masked.info.bands[0].maskFlags.contains(.perDataset))
        let mb = try masked.read(window: Window(width: masked.info.width, height: masked.info.height))
        #expect(mb.validCount > 0 && mb.validCount < mb.window.pixelCount)

        // External .msk mask.
        let ext = try Dataset(path: TestData.path("geotiff-zoo/rio-tiler__201404_13SED190110_201404_0x1500m_CL_1_extmask.tif"))
        let eb = try ext.read(window: Window(width: ext.info.width, height: ext.info.height))
        #expect(eb.validCount < eb.window.pixelCount)

        // NaN nodata.
        let nan = try Dataset(path: TestData.path("geotiff-zoo/rasterio__float_nan.tif"))
        let nb = try nan.read(window: Window(width: 3, height: 2))
        #expect(nb.validCount < 6)
        #expect(nb.values.allSatisfy { !$0.isNaN })

        // Float32 nodata -3.4e38 written as text: pixels equal to it in Float32 are invalid.
        let fnd = try Dataset(path: TestData.path("geotiff-zoo/rasterio__float_raster_with_nodata.tif"))
        let fb = try fnd.read(window: Window(width: fnd.info.width, height: fnd.info.height))
        #expect(fb.validCount < fb.window.pixelCount)
        #expect(fb.values.allSatisfy { abs($0) < 1e30 })
    }
}
