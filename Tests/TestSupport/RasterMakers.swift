import Foundation
import GeoRaster

/// Small GeoTIFFs made by the project itself for tests.
public enum RasterMaker {
    /// A UTM-like grid: 30 m pixels, origin (500000, 4000000), EPSG:32615.
    public static func utmProfile(width: Int, height: Int, bands: Int = 1, type: DataType = .float32,
                                  nodata: Double? = nil, options: CreationOptions = CreationOptions()) throws -> RasterProfile {
        RasterProfile(width: width, height: height, bandCount: bands, dataType: type,
                      geoTransform: GeoTransform(originX: 500_000, pixelWidth: 30, originY: 4_000_000, pixelHeight: -30),
                      crs: try SpatialReference(userInput: "EPSG:32615"), nodata: nodata, options: options)
    }

    /// Writes a Float32 raster whose value at (band b, col c, row r) is `value(b, c, r)`.
    @discardableResult
    public static func write(_ path: String, profile: RasterProfile, value: (Int, Int, Int) -> Float) throws -> String {
        let w = try GeoTIFFWriter(path: path, profile: profile)
        for b in 0..<profile.bandCount {
            var plane = [Float](repeating: 0, count: profile.width * profile.height)
            for r in 0..<profile.height { for c in 0..<profile.width { plane[r * profile.width + c] = value(b, c, r) } }
            try w.write(plane, window: Window(width: profile.width, height: profile.height), band: b + 1)
        }
        try w.finish()
        return path
    }
}
