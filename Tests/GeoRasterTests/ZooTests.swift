import Core
import Foundation
import GeoRaster
import Testing
import TestSupport

/// Every file of the GeoTIFF zoo opens and reads all its bands with the size, type and nodata
/// GDAL's `gdalinfo -json` reports, or fails with a typed error naming the file.
@Suite(.enabled(if: TestData.available && Tool.exists("gdalinfo"), "needs ../shared/data and gdal-bin"))
struct GeoTIFFZooTests {
    static let files = TestData.files(in: "geotiff-zoo")
    /// Files that must fail, and the kind of error.
    static let mustFail: [String: RasterError.Kind] = [
        "rasterio__corrupt.tif": .readFailed,
        "rio-cogeo__slc.tif": .unsupportedType,  // CInt16
    ]

    @Test(arguments: files)
    func opensAndReadsOrFailsCleanly(path: String) throws {
        let name = URL(fileURLWithPath: path).lastPathComponent
        let gdal = try Tool.run("gdalinfo", ["-json", path])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(gdal.stdout.utf8)) as? [String: Any])
        let size = try #require(json["size"] as? [Int])
        let gdalBands = try #require(json["bands"] as? [[String: Any]])
        do {
            let ds = try Dataset(path: path)
            #expect(ds.info.width == size[0] && ds.info.height == size[1], "\(name)")
            #expect(ds.info.bandCount == gdalBands.count, "\(name)")
            for (b, gb) in zip(ds.info.bands, gdalBands) {
                #expect(b.dataType.rawValue == gb["type"] as? String, "\(name) band \(b.index)")
                let expected: Double? = switch gb["noDataValue"] {
                case let d as Double: d
                case let i as Int: Double(i)
                case let s as String: Double(s) ?? (s.lowercased() == "nan" ? .nan : nil)
                default: nil
                }
                if let expected, expected.isNaN {
                    #expect(b.nodata?.isNaN == true, "\(name) band \(b.index)")
                } else if let expected, b.dataType == .float32 {
                    // gdalinfo prints Float32 nodata with 9 significant digits.
                    #expect(b.nodata.map { Float($0) } == Float(expected), "\(name) band \(b.index)")
                } else {
                    #expect(b.nodata == expected, "\(name) band \(b.index)")
                }
            }
            try readEverything(ds)
            #expect(Self.mustFail[name] == nil, "\(name) should have failed")
        } catch let error as RasterError {
            let kind = try #require(Self.mustFail[name], "\(name) failed unexpectedly: \(error)")
            #expect(error.kind == kind, "\(name): \(error)")
            #expect(error.description.contains(name))
            #expect(error.hint != nil)
        }
    }

    /// Reads all bands: the whole raster when small, else three 512² windows.
    func readEverything(_ ds: Dataset) throws {
        let all = Array(1...ds.info.bandCount)
        let full = Window(width: ds.info.width, height: ds.info.height)
        let windows = full.pixelCount * all.count <= 8_000_000 ? [full] : [
            Window(column: 0, row: 0, width: 512, height: 512),
            Window(column: ds.info.width / 2 - 256, row: ds.info.height / 2 - 256, width: 512, height: 512),
            Window(column: ds.info.width - 512, row: ds.info.height - 512, width: 512, height: 512),
        ]
        var block = RasterBlock()
        for w in windows {
            try ds.read(window: w, bands: all, into: &block)
            #expect(block.values.count == all.count * w.pixelCount)
            #expect(block.values.allSatisfy { $0.isFinite })
        }
    }

    @Test func allNodataFileReadsAsInvalid() throws {
        let ds = try Dataset(path: TestData.path("geotiff-zoo/rasterio__all-nodata.tif"))
        let b = try ds.read(window: Window(width: ds.info.width, height: ds.info.height))
        #expect(b.validCount == 0)
    }
}
