import Core
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

    /// Copies `window` of a real raster into a new GeoTIFF on the same grid (the window's own
    /// geotransform), all bands, as `type`; invalid pixels become `nodata` (or 0).
    @discardableResult
    public static func crop(_ source: String, window: Window, to path: String, type: DataType, nodata: Double? = nil) throws -> String {
        let ds = try Dataset(path: source)
        var profile = RasterProfile(like: ds.info, bandCount: ds.info.bandCount, dataType: type, nodata: nodata)
        profile.width = window.width
        profile.height = window.height
        profile.geoTransform = ds.info.geoTransform?.forWindow(window)
        let w = try GeoTIFFWriter(path: path, profile: profile)
        let block = try ds.read(window: window, bands: Array(1...ds.info.bandCount))
        let n = window.pixelCount, fill = Float(nodata ?? 0)
        for b in 0..<ds.info.bandCount {
            let plane = (0..<n).map { block.valid[$0] != 0 ? block.values[b * n + $0] : fill }
            try w.write(plane, window: Window(width: window.width, height: window.height), band: b + 1)
        }
        try w.finish()
        return path
    }

    /// Writes the RGB colour-coded mask (3 Byte bands, through GDAL) of a label raster:
    /// each value's colour from `colors`, `other` for values without one; `recolor(c, r)`
    /// overrides single pixels.
    @discardableResult
    public static func colorMask(values: String, to path: String, colors: [Int: RGBA], other: RGBA = RGBA(0, 0, 0),
                                 recolor: (Int, Int) -> RGBA? = { _, _ in nil }) throws -> String {
        let ds = try Dataset(path: values)
        let block = try ds.read(window: Window(width: ds.info.width, height: ds.info.height), bands: [1])
        let w = try GeoTIFFWriter(path: path, profile: RasterProfile(like: ds.info, bandCount: 3, dataType: .byte, nodata: nil))
        let pixels = (0..<block.window.pixelCount).map { i in
            recolor(i % ds.info.width, i / ds.info.width) ?? colors[Int(block.values[i])] ?? other
        }
        for (b, channel) in [\RGBA.r, \RGBA.g, \RGBA.b].enumerated() {
            try w.write(pixels.map { Float($0[keyPath: channel]) }, window: block.window, band: b + 1)
        }
        try w.finish()
        return path
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
