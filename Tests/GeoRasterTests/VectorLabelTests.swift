import Core
import Foundation
import GeoRaster
import Testing
import TestSupport

/// Vector labels on a 20×20 grid of 10 m pixels (EPSG:32617, origin 600000, 4500000): polygons
/// written as GeoJSON (with a CRS member) or as CSV with a WKT column (no CRS) inside the test.
@Suite struct VectorLabelTests {
    let dir = TemporaryDirectory("terraseg-vector")
    let grid = RasterGrid(width: 20, height: 20,
                          geoTransform: GeoTransform(originX: 600_000, pixelWidth: 10, originY: 4_500_000, pixelHeight: -10),
                          crs: try! SpatialReference(userInput: "EPSG:32617"))
    let classes = ["water": 1, "forest": 2, "bare": 3]
    let known: Set<Int> = [0, 1, 2, 3]

    /// A rectangle of pixel columns c0..<c1 and rows r0..<r1 as a GeoJSON polygon ring.
    func ring(_ c0: Int, _ r0: Int, _ c1: Int, _ r1: Int) -> String {
        let x0 = 600_000 + 10 * c0, x1 = 600_000 + 10 * c1, y0 = 4_500_000 - 10 * r0, y1 = 4_500_000 - 10 * r1
        return "[[[\(x0), \(y0)], [\(x1), \(y0)], [\(x1), \(y1)], [\(x0), \(y1)], [\(x0), \(y0)]]]"
    }

    /// Writes features (class text, rectangle) as GeoJSON in EPSG:32617.
    func geojson(_ name: String, _ features: [(String, [Int])]) throws -> String {
        let items = features.map { cls, r in
            #"{"type": "Feature", "properties": {"class": "\#(cls)"}, "geometry": {"type": "Polygon", "coordinates": \#(ring(r[0], r[1], r[2], r[3]))}}"#
        }
        let text = #"{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32617"}}, "features": [\#(items.joined(separator: ", "))]}"#
        let path = dir.file(name + ".geojson")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func values(_ r: VectorLabels.Rasterized) throws -> [Int] {
        let block = try r.dataset.read(window: Window(width: 20, height: 20))
        return zip(block.values, block.valid).map { $1 != 0 ? Int($0) : -1 }
    }

    /// `burn:` gives every feature one class; `background:` labels every other pixel.
    @Test func burnAndBackground() throws {
        let path = try geojson("buildings", [("house", [0, 0, 5, 5]), ("shed", [10, 10, 12, 14])])
        let r = try VectorLabels.rasterize(path: path, options: .init(burn: 3, background: 1, fill: -1), classes: classes, knownValues: known, onto: grid)
        let v = try values(r)
        #expect(v.filter { $0 == 3 }.count == 25 + 8)
        #expect(v.filter { $0 == 1 }.count == 400 - 33)
        #expect(v[0] == 3 && v[19] == 1 && v[11 * 20 + 10] == 3)
        let noBackground = try values(VectorLabels.rasterize(path: path, options: .init(burn: 3, fill: -1), classes: classes, knownValues: known, onto: grid))
        #expect(noBackground.filter { $0 == -1 }.count == 400 - 33, "without background the rest stays unlabelled (nodata)")
        #expect(r.notices.isEmpty, "\(r.notices)")
    }

    /// Names match classes ignoring case; where features of two classes overlap the pixels
    /// are left unlabelled and the count is reported; same-class overlaps are fine.
    @Test func namesMatchIgnoringCaseAndOverlapsAreIgnored() throws {
        let path = try geojson("mixed", [("Water", [0, 0, 10, 10]), ("forest", [5, 0, 15, 10]), ("FOREST", [12, 0, 15, 10])])
        let r = try VectorLabels.rasterize(path: path, options: .init(attribute: "class", fill: -1), classes: classes, knownValues: known, onto: grid)
        let v = try values(r)
        #expect(v[0 * 20 + 2] == 1 && v[3 * 20 + 7] == -1 && v[9 * 20 + 11] == 2 && v[5 * 20 + 13] == 2 && v[15 * 20 + 2] == -1)
        #expect(v.filter { $0 == 1 }.count == 50 && v.filter { $0 == 2 }.count == 50)
        #expect(r.notices.contains { $0.contains("50 pixels where features of different classes overlap are left unlabelled") }, "\(r.notices)")
    }

    /// Values matching no class are refused, each listed with its feature count, unless
    /// `unmatched: ignore` (then those features are skipped and reported).
    @Test func unmatchedValuesAreListedWithTheirCounts() throws {
        let path = try geojson("typos", [("water", [0, 0, 4, 4]), ("lake", [5, 5, 8, 8]), ("lake", [9, 9, 11, 11]), ("cloud", [12, 12, 14, 14])])
        let error = #expect(throws: RasterError.self) {
            try VectorLabels.rasterize(path: path, options: .init(attribute: "class"), classes: classes, knownValues: known, onto: grid)
        }
        let text = error?.description ?? ""
        #expect(text.contains("'cloud' (1 feature)") && text.contains("'lake' (2 features)"), "\(text)")
        #expect(text.contains("unmatched: ignore") && text.contains("forest"), "\(text)")
        let r = try VectorLabels.rasterize(path: path, options: .init(attribute: "class", ignoreUnmatched: true, fill: -1),
                                           classes: classes, knownValues: known, onto: grid)
        #expect(Set(try values(r)) == [1, -1])
        #expect(r.notices.contains { $0.contains("3 features") && $0.contains("'lake' (2 features)") }, "\(r.notices)")
    }

    /// Features wholly outside the image are counted; when none overlaps, the error names the
    /// image's extent.
    @Test func featuresOutsideTheImageAreReported() throws {
        let path = try geojson("far", [("water", [0, 0, 4, 4]), ("forest", [500, 500, 510, 510])])
        let r = try VectorLabels.rasterize(path: path, options: .init(attribute: "class"), classes: classes, knownValues: known, onto: grid)
        #expect(r.notices.contains { $0.contains("1 of 2 features lie wholly outside the image") }, "\(r.notices)")
        let none = try geojson("none", [("forest", [500, 500, 510, 510])])
        let error = #expect(throws: RasterError.self) {
            try VectorLabels.rasterize(path: none, options: .init(attribute: "class"), classes: classes, knownValues: known, onto: grid)
        }
        #expect(error?.description.contains("none of the 1 features of layer") == true, "\(String(describing: error))")
        #expect(error?.description.contains("600000") == true, "\(String(describing: error))")
    }

    /// A layer without a CRS is read in the image's CRS and reported, with the fix.
    @Test func aLayerWithoutCRSIsReported() throws {
        let path = dir.file("nocrs.csv")
        try "WKT,class\n\"POLYGON ((600000 4500000,600050 4500000,600050 4499950,600000 4499950,600000 4500000))\",water\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let r = try VectorLabels.rasterize(path: path, options: .init(attribute: "class", fill: -1), classes: classes, knownValues: known, onto: grid)
        #expect(try values(r).filter { $0 == 1 }.count == 25)
        #expect(r.notices.contains { $0.contains("has no CRS") && $0.contains("1 features") && $0.contains("ogr2ogr -a_srs") }, "\(r.notices)")
    }
}
