import Foundation
@testable import GeoRaster
import Testing
import TestSupport

/// Reading a scene's STAC Item: hrefs, band picking, times. (Malformed Items, each refused
/// naming the file and key, are in the corpus: Tests/Fixtures/corpus/stac.)
@Suite struct StacItemTests {
    let dir = TemporaryDirectory("terraseg-stac-item")

    func write(_ assets: [String: Any], properties: [String: Any] = ["datetime": "2021-07-04T10:00:00.123Z"]) throws -> String {
        for name in ["b2.tif", "b3.tif", "b4.tif"] { try Data().write(to: URL(fileURLWithPath: dir.file(name))) }
        let item: [String: Any] = ["type": "Feature", "stac_version": "1.1.0", "id": "item", "properties": properties, "assets": assets, "geometry": NSNull()]
        let path = dir.file("item.json")
        try JSONSerialization.data(withJSONObject: item).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func hrefsAreReadRelativeToTheItemAbsoluteFileURLsOrGDALVirtualPaths() throws {
        let item = try StacItem(file: write([
            "a": ["href": "b2.tif"], "b": ["href": dir.file("b3.tif")], "c": ["href": "file://" + dir.file("b4.tif")],
            "d": ["href": "/vsizip/bands.zip/b8.tif"],
        ]))
        #expect(try item.files(bands: ["a", "B", "c", "d"]) == [dir.file("b2.tif"), dir.file("b3.tif"), dir.file("b4.tif"), "/vsizip/bands.zip/b8.tif"])
        #expect(item.datetime == "2021-07-04T10:00:00.123Z")
    }

    @Test func bandsArePickedByKeyBandNameOrCommonName() throws {
        let item = try StacItem(file: write([
            "blue": ["href": "b2.tif", "eo:bands": [["name": "B02", "common_name": "blue"]]],
            "x": ["href": "b3.tif", "bands": [["name": "B03", "eo:common_name": "green"]]],
            "y": ["href": "b4.tif", "eo:bands": [["name": "B04"]]],
        ]))
        #expect(try item.files(bands: ["b04", "green", "BLUE"]) == [dir.file("b4.tif"), dir.file("b3.tif"), dir.file("b2.tif")])
        let unnamed = #expect(throws: RasterError.self) { try item.files(bands: nil) }
        #expect(unnamed?.description.contains("item.json: assets to stack are not named (the Item has assets blue (B02, blue), x (B03, green), y (B04))") == true,
                "\(String(describing: unnamed))")
    }

    @Test func aBandNameTwoAssetsDeclareIsRefused() throws {
        let item = try StacItem(file: write([
            "a": ["href": "b2.tif", "eo:bands": [["name": "B04"]]], "b": ["href": "b3.tif", "eo:bands": [["name": "B04"]]],
        ]))
        let error = #expect(throws: RasterError.self) { try item.files(bands: ["B04"]) }
        #expect(error?.description.contains("assets hold band B04 2 times (a, b)") == true, "\(String(describing: error))")
    }

    /// A null datetime with both ends of the range is a valid Item.
    @Test func aTimeRangeIsRead() throws {
        let item = try StacItem(file: write(["a": ["href": "b2.tif"]],
                                            properties: ["datetime": NSNull(), "start_datetime": "2021-01-01T00:00:00Z", "end_datetime": "2021-12-31T23:59:59Z"]))
        #expect(item.datetime == nil && item.startDatetime == "2021-01-01T00:00:00Z" && item.endDatetime == "2021-12-31T23:59:59Z")
    }

    /// Training reads a scene given as an Item through the same source list as band files.
    @Test func sceneSourcesReadAnItemByBandNames() throws {
        let path = try write(["red": ["href": "b4.tif", "eo:bands": [["name": "B04"]]], "green": ["href": "b3.tif", "eo:bands": [["name": "B03"]]]])
        #expect(try SceneSources.files([path], bandNames: ["B03", "B04"]) == [[dir.file("b3.tif")], [dir.file("b4.tif")]])
    }
}

/// The outline a map's STAC Item states.
@Suite struct MapFootprintTests {
    /// A CRS without an EPSG code is stated as WKT2; the corners come out as longitude, latitude.
    @Test func aCustomCRSIsWrittenAsWKT2() throws {
        let crs = try SpatialReference(userInput: "+proj=tmerc +lat_0=0 +lon_0=13.3 +k=0.9996 +x_0=500000 +y_0=0 +datum=WGS84 +units=m +no_defs")
        let grid = RasterGrid(width: 100, height: 50, geoTransform: GeoTransform(originX: 500_000, pixelWidth: 10, originY: 5_800_000, pixelHeight: -10), crs: crs)
        let f = try #require(try MapFootprint(grid: grid))
        #expect(f.epsg == nil && f.wkt2?.hasPrefix("PROJCRS") == true, "\(String(describing: f.wkt2?.prefix(40)))")
        #expect(abs(f.ring[0][0] - 13.3) < 0.01 && abs(f.ring[0][1] - 52.3) < 0.1, "\(f.ring[0])")
        #expect(f.nativeBBox == [500_000, 5_799_500, 501_000, 5_800_000])
        #expect(f.bbox[0] <= f.ring.map { $0[0] }.min()! && f.bbox[2] >= f.ring.map { $0[0] }.max()!)
    }

    @Test func aGridWithoutCRSHasNoFootprint() throws {
        #expect(try MapFootprint(grid: RasterGrid(width: 4, height: 4, geoTransform: nil, crs: nil)) == nil)
    }
}
