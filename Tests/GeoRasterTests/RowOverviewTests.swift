import Core
import Foundation
@testable import GeoRaster
import Testing
import TestSupport

/// The MODE overviews a map gets with its rows (`GeoTIFFWriter.writeOverviewsWithRows`, the
/// streamed map's) are GDAL's own, pixel for pixel: the same maps written whole and left to
/// GDALBuildOverviews at `finish()` give the reference.
@Suite struct RowOverviewTests {
    /// Widths and heights of odd and even sizes, wide and tall, with 2 to 5 levels at blocks of 16.
    static let shapes: [(Int, Int)] = [(61, 96), (100, 77), (131, 129), (300, 33), (33, 300), (257, 300), (16, 70), (64, 64)]

    /// Classes 0, 1, 2 (UInt16: 0, 300, 1000) drawn at random, so equal counts are common in a
    /// window, with a fifth of the pixels and a whole band of rows nodata.
    static func classMap(width: Int, height: Int, wide: Bool, seed: UInt64) -> [Int] {
        var rng = SplitMix64(seed: seed)
        let values = wide ? [0, 300, 1000] : [0, 1, 2], nodata = wide ? 65535 : 255
        return (0..<(width * height)).map { i in
            let r = Int(rng.next() % 100)
            return r < 20 || (i / width) % 37 < 3 ? nodata : values[r % 3]
        }
    }

    /// Writes `values` in full-width writes of `rows` rows (or, `rows` nil, whole), with or
    /// without overviews from the rows; returns whether they were.
    static func write(_ values: [Int], width: Int, height: Int, wide: Bool, rows: Int?, withRows: Bool, to path: String) throws -> Bool {
        let profile = try RasterMaker.utmProfile(width: width, height: height, type: wide ? .uint16 : .byte, nodata: wide ? 65535 : 255,
                                                 options: CreationOptions(blockSize: 16, compression: .deflate, overviews: .mode))
        let writer = try GeoTIFFWriter(path: path, profile: profile)
        let used = withRows ? try writer.writeOverviewsWithRows() : false
        let step = rows ?? height
        for top in stride(from: 0, to: height, by: step) {
            let window = Window(column: 0, row: top, width: width, height: min(step, height - top))
            let part = values[(top * width)..<((top + window.height) * width)]
            if wide { try writer.write(part.map { UInt16($0) }, window: window, band: 1) } else { try writer.write(part.map { UInt8($0) }, window: window, band: 1) }
        }
        try writer.finish()
        return used
    }

    @Test(arguments: 0..<8)
    func overviewsFromRowsAreGDALs(shape: Int) throws {
        let (width, height) = Self.shapes[shape]
        let dir = TemporaryDirectory()
        for wide in [false, true] {
            let values = Self.classMap(width: width, height: height, wide: wide, seed: UInt64(shape * 2 + (wide ? 1 : 0)))
            let gdalBuilt = dir.file("gdal-\(wide).tif")
            _ = try Self.write(values, width: width, height: height, wide: wide, rows: nil, withRows: false, to: gdalBuilt)
            let reference = try Overviews.values(of: gdalBuilt)
            #expect(reference.count >= 2, "\(width)×\(height) has \(reference.count) levels")
            for rows in [16, 7] {
                let path = dir.file("rows-\(wide)-\(rows).tif")
                let used = try Self.write(values, width: width, height: height, wide: wide, rows: rows, withRows: true, to: path)
                #expect(used, "\(width)×\(height)")
                let mine = try Overviews.values(of: path)
                #expect(mine.count == reference.count)
                #expect(Overviews.differences(mine, reference) == 0, "\(width)×\(height) \(wide ? "UInt16" : "Byte"), writes of \(rows) rows")
                #expect(try Dataset(path: path).read(window: Window(width: width, height: height), bands: nil).values
                        == Dataset(path: gdalBuilt).read(window: Window(width: width, height: height), bands: nil).values)
            }
        }
    }

    /// Where the rows do not come in order, a sieve changes them, or GDAL would not cascade (a
    /// map whose levels reach one pixel across), GDAL builds the overviews: still its own.
    @Test func otherwiseGDALBuildsThem() throws {
        let dir = TemporaryDirectory()
        let (width, height) = (61, 96)
        let values = Self.classMap(width: width, height: height, wide: false, seed: 7)
        let gdalBuilt = dir.file("gdal.tif")
        _ = try Self.write(values, width: width, height: height, wide: false, rows: nil, withRows: false, to: gdalBuilt)
        let reference = try Overviews.values(of: gdalBuilt)

        // Bottom block rows first.
        let profile = try RasterMaker.utmProfile(width: width, height: height, type: .byte, nodata: 255,
                                                 options: CreationOptions(blockSize: 16, compression: .deflate, overviews: .mode))
        let shuffled = dir.file("shuffled.tif")
        let writer = try GeoTIFFWriter(path: shuffled, profile: profile)
        #expect(try writer.writeOverviewsWithRows())
        for top in stride(from: 0, to: height, by: 16).reversed() {
            let window = Window(column: 0, row: top, width: width, height: min(16, height - top))
            try writer.write(values[(top * width)..<((top + window.height) * width)].map { UInt8($0) }, window: window, band: 1)
        }
        try writer.finish()
        #expect(try Overviews.differences(Overviews.values(of: shuffled), reference) == 0)

        // A sieve after the rows: the overviews are those of the sieved map.
        let sieved = dir.file("sieved.tif"), sievedReference = dir.file("sieved-gdal.tif")
        for (path, withRows) in [(sieved, true), (sievedReference, false)] {
            let w = try GeoTIFFWriter(path: path, profile: profile)
            if withRows { #expect(try w.writeOverviewsWithRows()) }
            try w.write(values.map { UInt8($0) }, window: Window(width: width, height: height), band: 1)
            try w.sieve(minimumPixels: 4, connectedness: .four)
            try w.finish()
        }
        #expect(try Overviews.differences(Overviews.values(of: sieved), Overviews.values(of: sievedReference)) == 0)
        #expect(try Overviews.differences(Overviews.values(of: sieved), reference) > 0, "the sieve changed the overviews")

        // Three columns: the second level is one pixel wide, the third made from it.
        let narrow = Self.classMap(width: 3, height: 300, wide: false, seed: 8)
        let narrowReference = dir.file("narrow-gdal.tif"), narrowRows = dir.file("narrow-rows.tif")
        _ = try Self.write(narrow, width: 3, height: 300, wide: false, rows: nil, withRows: false, to: narrowReference)
        #expect(try !Self.write(narrow, width: 3, height: 300, wide: false, rows: 16, withRows: true, to: narrowRows))
        #expect(try Overviews.differences(Overviews.values(of: narrowRows), Overviews.values(of: narrowReference)) == 0)
    }

    /// GDAL's source window of a destination pixel, at ratios of 2 and just under.
    @Test func windowsFollowGDAL() {
        #expect(ModeOverviews<UInt8>.window(3, ratio: 2, limit: 100) == 6..<8)
        #expect(ModeOverviews<UInt8>.window(49, ratio: 99.0 / 50, limit: 99) == 97..<99)
        #expect(ModeOverviews<UInt8>.window(10, ratio: 99.0 / 50, limit: 99) == 19..<22)
    }
}
