import Core
import Foundation
import GeoRaster
import Testing
import TestSupport

@Suite struct WriteRoundTripTests {
    static let cases: [(DataType, Double)] = [
        (.byte, 255), (.uint16, 65535), (.int16, -32768), (.uint32, 4_000_000_000),
        (.int32, -2_000_000_000), (.float32, -99999), (.float64, .nan),
    ]

    @Test(arguments: 0..<7)
    func writeThenRead(caseIndex: Int) throws {
        let (type, nodata) = Self.cases[caseIndex]
        let dir = TemporaryDirectory()
        let path = dir.file("rt-\(type.rawValue).tif")
        let w = 37, h = 23
        let profile = try RasterMaker.utmProfile(width: w, height: h, bands: 2, type: type, nodata: nodata,
                                                 options: CreationOptions(blockSize: 16, compression: .zstd))
        // Values exact in every type; every 7th pixel is nodata.
        func value(_ b: Int, _ c: Int, _ r: Int) -> Double {
            if (r * w + c) % 7 == 3 { return nodata }
            return Double((b + 1) * (r * w + c) % 200) + (type.isFloatingPoint ? 0.5 : 0)
        }
        let writer = try GeoTIFFWriter(path: path, profile: profile)
        for b in 0..<2 {
            let plane = (0..<(w * h)).map { i in value(b, i % w, i / w) }
            try writer.write(plane, window: Window(width: w, height: h), band: b + 1)
        }
        let classes = [ClassEntry(value: 1, name: "water", color: RGBA(0, 0, 255)),
                       ClassEntry(value: 5, name: "forest", color: RGBA(0, 128, 0))]
        if type == .byte || type == .uint16 { try writer.setClasses(classes, band: 1) }
        try writer.setDescription("second band", band: 2)
        try writer.finish()

        let ds = try Dataset(path: path)
        #expect(ds.info.bands.map(\.dataType) == [type, type])
        #expect(ds.info.bands[1].description == "second band")
        if nodata.isNaN { #expect(ds.info.bands[0].nodata?.isNaN == true) } else { #expect(ds.info.bands[0].nodata == nodata) }
        #expect(ds.info.geoTransform == profile.geoTransform)
        #expect(ds.info.crs?.epsg == 32615)
        if type == .byte || type == .uint16 {
            #expect(ds.info.bands[0].hasColorTable)
            #expect(ds.info.bands[0].hasAttributeTable)
            #expect(ds.info.bands[0].categoryNames[5] == "forest")
        }
        // Read a window that also reaches past the right edge.
        let win = Window(column: 20, row: 0, width: 20, height: h)
        let block = try ds.read(window: win, bands: [2, 1])
        for r in 0..<h {
            for c in 0..<20 {
                let col = c + 20
                if col >= w || (r * w + col) % 7 == 3 {
                    #expect(!block.isValid(column: c, row: r))
                } else {
                    #expect(block.isValid(column: c, row: r))
                    #expect(block.value(band: 0, column: c, row: r) == Float(value(1, col, r)))
                    #expect(block.value(band: 1, column: c, row: r) == Float(value(0, col, r)))
                }
            }
        }
    }

    @Test func releasedWithoutFinishLeavesNothing() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("unfinished.tif")
        do {
            let writer = try GeoTIFFWriter(path: path, profile: try RasterMaker.utmProfile(width: 64, height: 64))
            try writer.write([Float](repeating: 1, count: 64 * 64), window: Window(width: 64, height: 64), band: 1)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).count == 1, "a temporary file while writing")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func finishReplacesAnExistingFile() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("map.tif")
        let p = try RasterMaker.utmProfile(width: 8, height: 8)
        try RasterMaker.write(path, profile: p) { _, _, _ in 1 }
        try RasterMaker.write(path, profile: p) { _, _, _ in 2 }
        #expect(try Dataset(path: path).read(window: Window(width: 8, height: 8)).values.allSatisfy { $0 == 2 })
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["map.tif"])
    }
}

/// A class map written like the stitcher will write one, checked with GDAL's own gdalinfo.
@Suite(.enabled(if: TestData.available && Tool.exists("gdalinfo"), "needs ../shared/data and gdal-bin"))
struct ClassMapTests {
    static let classes: [ClassEntry] = [
        (1, "developed", "#e31a1c"), (2, "agriculture", "#ffff99"), (3, "herbaceous", "#b2df8a"),
        (4, "shrubland", "#cab2d6"), (5, "forest", "#33a02c"), (6, "water", "#1f78b4"), (7, "sediment", "#b15928"),
    ].map { ClassEntry(value: $0.0, name: $0.1, color: RGBA(hex: $0.2)!) }

    func writeMap(_ path: String, cog: Bool) throws -> RasterInfo {
        let source = try Dataset(path: TestData.path("nc-landsat7/image_6band.tif")).info
        let profile = RasterProfile(like: source, dataType: .byte, nodata: 255,
                                    options: CreationOptions(blockSize: 256, compression: .deflate, cog: cog, overviews: .mode))
        let w = try GeoTIFFWriter(path: path, profile: profile)
        let labels = try Dataset(path: TestData.path("nc-landsat7/labels_landclass96.tif"))
        let block = try labels.read(window: Window(width: source.width, height: source.height))
        let bytes = zip(block.values, block.valid).map { v, ok in ok != 0 && v > 0 ? UInt8(v) : 255 }
        try w.write(bytes, window: Window(width: source.width, height: source.height), band: 1)
        try w.setClasses(Self.classes)
        try w.setDescription("land cover class", band: 1)
        try w.finish()
        return source
    }

    func gdalinfo(_ path: String) throws -> [String: Any] {
        let r = try Tool.run("gdalinfo", ["-json", path])
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    @Test(arguments: [false, true])
    func gdalinfoSeesGeoreferencingColoursNamesAndOverviews(cog: Bool) throws {
        let dir = TemporaryDirectory()
        let path = dir.file(cog ? "map-cog.tif" : "map.tif")
        let source = try writeMap(path, cog: cog)
        let json = try gdalinfo(path)
        #expect((json["geoTransform"] as? [Double]) == source.geoTransform?.coefficients)
        let written = try Dataset(path: path).info
        #expect(written.crs.map { $0.isSame(as: source.crs!) } == true)
        let band = try #require((json["bands"] as? [[String: Any]])?.first)
        #expect(band["noDataValue"] as? Double == 255)
        #expect(band["colorInterpretation"] as? String == "Palette")
        let entries = try #require((band["colorTable"] as? [String: Any])?["entries"] as? [[Int]])
        #expect(entries[6] == [0x1f, 0x78, 0xb4, 255])
        #expect(entries[255][3] == 0, "nodata is transparent")
        #expect(((band["overviews"] as? [Any])?.count ?? 0) >= 1)
        // Class names: attribute table and categories, in gdalinfo's text output.
        let text = try Tool.run("gdalinfo", [path]).stdout
        #expect(text.contains("Class_Name"))
        #expect(text.contains("sediment"))
        #expect(text.contains("Categories:"))
        if cog {
            let meta = (json["metadata"] as? [String: Any])?["IMAGE_STRUCTURE"] as? [String: String]
            #expect(meta?["LAYOUT"] == "COG")
        }
        // Only the map and its sidecar remain.
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)) == [URL(fileURLWithPath: path).lastPathComponent, URL(fileURLWithPath: path).lastPathComponent + ".aux.xml"])
    }
}
