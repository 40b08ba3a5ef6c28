import Core
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import GeoRaster
import Testing
import TestSupport

/// A small class map (values 1...4 in four blocks, specks of 1–5 pixels scattered over them,
/// the first 3 columns nodata 255).
enum ClassMapMaker {
    static let classes: [ClassEntry] = [
        ClassEntry(value: 1, name: "water", color: RGBA(hex: "#1f78b4")!),
        ClassEntry(value: 2, name: "forest & shrub", color: RGBA(hex: "#33a02c")!),
        ClassEntry(value: 3, name: "crops", color: RGBA(hex: "#ffff9980")!),
        ClassEntry(value: 4, name: "built <urban>", color: RGBA(hex: "#e31a1c")!),
    ]

    static func pixels(width: Int, height: Int, seed: UInt64) -> [UInt8] {
        var map = [UInt8](repeating: 0, count: width * height)
        for r in 0..<height { for c in 0..<width { map[r * width + c] = c < 3 ? 255 : UInt8(1 + (r * 2 / height) * 2 + c * 2 / width) } }
        var rng = SplitMix64(seed: seed)
        for _ in 0..<(width * height / 40) {
            var c = 3 + Int(rng.next() % UInt64(width - 3)), r = Int(rng.next() % UInt64(height))
            let value = UInt8(1 + rng.next() % 4), size = 1 + Int(rng.next() % 5)
            for _ in 0..<size {
                map[r * width + c] = value
                if rng.next() % 2 == 0 { c = min(width - 1, c + 1) } else { r = min(height - 1, r + 1) }
            }
        }
        return map
    }

    /// Writes `pixels` as a Byte class map (nodata 255) on `profile`'s grid; with `sieve`, the
    /// minimum mapping unit is applied before `finish()`.
    @discardableResult
    static func write(_ path: String, pixels: [UInt8], profile: RasterProfile, sieve: (Int, Connectedness)? = nil) throws -> String {
        let w = try GeoTIFFWriter(path: path, profile: profile)
        try w.write(pixels, window: Window(width: profile.width, height: profile.height), band: 1)
        try w.setClasses(classes)
        if let (unit, connectedness) = sieve { try w.sieve(minimumPixels: unit, connectedness: connectedness) }
        try w.finish()
        return path
    }

    static func profile(width: Int, height: Int) throws -> RasterProfile {
        try RasterMaker.utmProfile(width: width, height: height, type: .byte, nodata: 255,
                                   options: CreationOptions(blockSize: 32, compression: .deflate, overviews: .mode))
    }

    static func read(_ path: String) throws -> [UInt8] { try ClassPatches.read(path).pixels }
}

@Suite struct QGISStyleTests {
    @Test func styleIsAPalettedRendererWithEveryClass() throws {
        let dir = TemporaryDirectory()
        let map = dir.file("scene_map.tif")
        let path = try QGISStyle.write(classes: ClassMapMaker.classes.reversed(), besideMap: map)
        #expect(path == dir.file("scene_map.qml") && path == MapSiblings(map: map).style)
        let xml = try XMLDocument(contentsOf: URL(fileURLWithPath: path), options: [])
        let root = try #require(xml.rootElement())
        #expect(root.name == "qgis")
        let renderers = try root.nodes(forXPath: "pipe/rasterrenderer") as? [XMLElement] ?? []
        #expect(renderers.count == 1)
        let renderer = try #require(renderers.first)
        #expect(renderer.attribute(forName: "type")?.stringValue == "paletted")
        #expect(renderer.attribute(forName: "band")?.stringValue == "1")
        let entries = try renderer.nodes(forXPath: "colorPalette/paletteEntry") as? [XMLElement] ?? []
        #expect(entries.count == ClassMapMaker.classes.count)
        for (entry, c) in zip(entries, ClassMapMaker.classes) {  // sorted by value
            #expect(entry.attribute(forName: "value")?.stringValue == String(c.value))
            #expect(entry.attribute(forName: "label")?.stringValue == c.name, "names with & and < survive")
            #expect(entry.attribute(forName: "color")?.stringValue == RGBA(c.color.r, c.color.g, c.color.b).hex)
            #expect(entry.attribute(forName: "alpha")?.stringValue == String(c.color.a))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["scene_map.qml"], "no temporary file left")
    }
}

@Suite struct SieveTests {
    /// After the sieve no patch below the unit remains, patches at or above it and nodata are
    /// untouched.
    @Test(arguments: [Connectedness.four, .eight])
    func noPatchBelowTheUnitRemains(_ connectedness: Connectedness) throws {
        let dir = TemporaryDirectory()
        let width = 96, height = 80, unit = 6
        let before = ClassMapMaker.pixels(width: width, height: height, seed: 11)
        let old = ClassPatches(before, width: width, connectedness: connectedness)
        #expect(old.sizes.filter { $0 < unit }.count > 20, "the map has specks to remove")
        let path = try ClassMapMaker.write(dir.file("m.tif"), pixels: before, profile: ClassMapMaker.profile(width: width, height: height),
                                           sieve: (unit, connectedness))
        let after = try ClassMapMaker.read(path)
        let new = ClassPatches(after, width: width, connectedness: connectedness)
        #expect(new.sizes.allSatisfy { $0 >= unit }, "patch sizes \(new.sizes.sorted().prefix(5))")
        for i in before.indices where before[i] == 255 || old.sizes[old.id[i]] >= unit {
            #expect(after[i] == before[i], "pixel \(i % width),\(i / width) changed")
        }
        for i in before.indices where before[i] != 255 { #expect(after[i] != 255) }
    }

    @Test func aUnitOfOneChangesNothing() throws {
        let dir = TemporaryDirectory()
        let before = ClassMapMaker.pixels(width: 40, height: 40, seed: 3)
        let path = try ClassMapMaker.write(dir.file("m.tif"), pixels: before, profile: ClassMapMaker.profile(width: 40, height: 40), sieve: (1, .four))
        #expect(try ClassMapMaker.read(path) == before)
    }
}

/// The GeoPackage of class polygons, read back through OGR's own tools.
@Suite(.enabled(if: Tool.exists("ogr2ogr") && Tool.exists("ogrinfo"), "needs gdal-bin"))
struct ClassPolygonTests {
    /// class, name, area, OGR's own area of the geometry: one row per polygon.
    static func rows(_ gpkg: String) throws -> [(value: Int, name: String, area: Double, geometryArea: Double)] {
        let r = try Tool.run("ogr2ogr", ["-f", "CSV", "/vsistdout/", gpkg, "-dialect", "OGRSQL",
                                         "-sql", "SELECT class, name, area, OGR_GEOM_AREA AS geometry_area FROM \(ClassPolygons.layerName)"])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.split(separator: "\n").dropFirst().map { line in
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: ["\""]) }
            return (Int(cells[0]) ?? -1, cells[1], Double(cells[2]) ?? .nan, Double(cells[3]) ?? .nan)
        }
    }

    @Test func areasPerClassAreThePixelAreas() throws {
        let dir = TemporaryDirectory()
        let width = 96, height = 80
        let pixels = ClassMapMaker.pixels(width: width, height: height, seed: 5)
        let map = try ClassMapMaker.write(dir.file("scene_map.tif"), pixels: pixels, profile: ClassMapMaker.profile(width: width, height: height))
        let summary = try ClassPolygons.write(map: map, classes: ClassMapMaker.classes)
        #expect(summary.path == dir.file("scene_map.gpkg") && summary.path == MapSiblings(map: map).polygons)
        let info = try Tool.run("ogrinfo", ["-so", summary.path, ClassPolygons.layerName])
        #expect(info.status == 0 && info.stdout.contains("Geometry: Polygon"), "\(info.stdout)\(info.stderr)")
        for field in ["class: Integer", "name: String", "area: Real"] { #expect(info.stdout.contains(field), "\(field): \(info.stdout)") }
        #expect(info.stdout.contains("UTM zone 15N"), "the map's CRS")
        let rows = try Self.rows(summary.path)
        #expect(rows.count == summary.polygons && rows.count > 50)
        #expect(!rows.contains { $0.value == 255 }, "nodata has no polygon")
        let names = Dictionary(uniqueKeysWithValues: ClassMapMaker.classes.map { ($0.value, $0.name) })
        for c in ClassMapMaker.classes {
            let mine = rows.filter { $0.value == c.value }
            #expect(mine.allSatisfy { $0.name == names[c.value] })
            let pixelArea = Double(pixels.filter { Int($0) == c.value }.count) * 900
            let polygonArea = mine.reduce(0) { $0 + $1.area }
            #expect(abs(polygonArea - pixelArea) <= 900 * Double(mine.count), "class \(c.value): \(polygonArea) m² vs \(pixelArea) m²")
            #expect(mine.allSatisfy { abs($0.area - $0.geometryArea) < 1e-6 * $0.area })
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["scene_map.gpkg", "scene_map.tif", "scene_map.tif.aux.xml"])
    }

    /// In a geographic CRS the area is in m²: 0.001° pixels at 35° N.
    @Test func geographicAreasAreSquareMetres() throws {
        let dir = TemporaryDirectory()
        let width = 60, height = 50
        let profile = RasterProfile(width: width, height: height, bandCount: 1, dataType: .byte,
                                    geoTransform: GeoTransform(originX: -79, pixelWidth: 0.001, originY: 35.05, pixelHeight: -0.001),
                                    crs: try SpatialReference(userInput: "EPSG:4326"), nodata: 255, options: CreationOptions(blockSize: 32))
        let pixels = ClassMapMaker.pixels(width: width, height: height, seed: 9)
        let map = try ClassMapMaker.write(dir.file("geo_map.tif"), pixels: pixels, profile: profile)
        let rows = try Self.rows(try ClassPolygons.write(map: map, classes: ClassMapMaker.classes).path)
        // Authalic sphere: area of the valid columns' band of latitude.
        let r = 6_371_007.2, rad = Double.pi / 180
        let band = r * r * (Double(width - 3) * 0.001 * rad) * (sin(35.05 * rad) - sin((35.05 - Double(height) * 0.001) * rad))
        let total = rows.reduce(0) { $0 + $1.area }
        #expect(abs(total - band) / band < 0.005, "\(total) m² vs \(band) m²")
    }

    @Test func simplifiedPolygonsKeepThePixelArea() throws {
        let dir = TemporaryDirectory()
        let pixels = ClassMapMaker.pixels(width: 64, height: 64, seed: 2)
        let map = try ClassMapMaker.write(dir.file("s_map.tif"), pixels: pixels, profile: ClassMapMaker.profile(width: 64, height: 64))
        let plain = try Self.rows(try ClassPolygons.write(map: map, classes: ClassMapMaker.classes).path)
        let simple = try Self.rows(try ClassPolygons.write(map: map, classes: ClassMapMaker.classes, connectedness: .eight, simplify: 45).path)
        #expect(simple.count <= plain.count && !simple.isEmpty, "8-connected patches are fewer")
        #expect(abs(simple.reduce(0) { $0 + $1.area } - plain.reduce(0) { $0 + $1.area }) < 1e-3)
        #expect(simple.contains { abs($0.area - $0.geometryArea) > 1 }, "the geometry was simplified")
    }
}
