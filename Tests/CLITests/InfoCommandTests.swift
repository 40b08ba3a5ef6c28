import Engine
import Foundation
import Testing
import TestSupport

/// End-to-end: the real `terraseg` executable over every raster in ../shared/data.
@Suite(.enabled(if: TestData.available, "needs ../shared/data"))
struct InfoCommandTests {
    static let rasters: [String] = {
        let skip = ["README", "LICENSE"]
        return ["38cloud", "geotiff-zoo", "landsat-large", "nc-landsat7", "planet-cdl", "sen1floods11",
                "spacenet-buildings", "ukis-cloud"]
            .flatMap { TestData.files(in: $0, extensions: ["tif", "tiff", "png", "jpg", "vrt", "img"]) }
            .filter { p in !skip.contains { p.contains($0) } }
    }()

    @Test func everyRasterGivesValidJSONOrAClearError() throws {
        #expect(Self.rasters.count > 100)
        for path in Self.rasters {
            let r = try Tool.run(Tool.terraseg, ["info", "--json", path])
            #expect(!r.crashed, "terraseg crashed on \(path)")
            #expect(r.status == 0, "\(path): \(r.stderr)")
            guard r.status == 0 else { continue }
            let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            let json = try #require(object, "\(path) printed invalid JSON")
            #expect(json["width"] as? Int ?? 0 > 0)
            #expect(json["height"] as? Int ?? 0 > 0)
            let bands = try #require(json["bands"] as? [[String: Any]])
            #expect(!bands.isEmpty)
            for b in bands {
                for key in ["type", "nodata", "description", "mask_flags", "color_interpretation"] {
                    #expect(b.keys.contains(key), "\(path): band lacks \(key)")
                }
            }
            #expect(json.keys.contains("crs"))
        }
    }

    @Test func textSummaryOfNCLandsat() throws {
        let r = try Tool.run(Tool.terraseg, ["info", TestData.path("nc-landsat7/image_6band.tif")])
        #expect(r.status == 0)
        #expect(r.stdout.contains("489 × 443 pixels, 6 bands"))
        #expect(r.stdout.contains("closest EPSG:32119"))
        #expect(r.stdout.contains("ETM+ B4 NIR"))
        #expect(r.stdout.contains("-99999"))
    }

    @Test func noCRSIsSaidPlainly() throws {
        let r = try Tool.run(Tool.terraseg, ["info", TestData.path("ukis-cloud/landsat5_image.tif")])
        #expect(r.stdout.contains("CRS:         none (not georeferenced"))
        let j = try Tool.run(Tool.terraseg, ["info", "--json", TestData.path("ukis-cloud/landsat5_image.tif")])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])
        #expect(json["crs"] is NSNull)
        #expect(json["georeferenced"] as? Bool == false)
    }
}

@Suite struct CLIBasicsTests {
    @Test func version() throws {
        let r = try Tool.run(Tool.terraseg, ["--version"])
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("terraseg "))
        #expect(r.stdout.contains("GDAL 3."))
        // What oneDNN runs here; held to AVX2 it names 8-channel blocks and no Winograd.
        #expect(r.stdout.contains("oneDNN 2.") && r.stdout.contains(CPUFeatures.summary), "\(r.stdout)")
        let avx2 = try Tool.run(Tool.terraseg, ["--version"], environment: ["DNNL_MAX_CPU_ISA": "AVX2"])
        #expect(avx2.stdout.contains("on avx2: blocks of 8 channels, no Winograd, no VNNI int8, no bf16"), "\(avx2.stdout)")
    }

    @Test func missingFileIsAOneLineError() throws {
        let r = try Tool.run(Tool.terraseg, ["info", "missing-scene.tif"])
        #expect(r.status != 0 && !r.crashed)
        #expect(r.stderr.contains("Error: missing-scene.tif: file not found"))
        #expect(!r.stderr.contains("Fatal error"))
        #expect(r.stderr.split(separator: "\n").count <= 2)
    }

    @Test func unknownUpsamplingListsEveryMode() throws {
        let dir = TemporaryDirectory()
        let r = try Tool.run(Tool.terraseg, ["train", "--classes", "1=water", "--output", dir.file("model"), "--upsampling", "cubic"])
        #expect(r.status != 0 && !r.crashed)
        #expect(r.stderr.contains("Error: The value 'cubic' is invalid for '--upsampling <upsampling>'. Please provide one of 'bilinear', 'nearest', 'nails', 'transposed' or 'max-unpooling'."))
    }
}
