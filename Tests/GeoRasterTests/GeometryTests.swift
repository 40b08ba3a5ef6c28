import Core
import GeoRaster
import Testing

@Suite struct WindowTests {
    @Test func intersectionAndContainment() {
        let a = Window(column: -10, row: 5, width: 30, height: 20)
        let full = Window(width: 15, height: 100)
        #expect(a.intersection(full) == Window(column: 0, row: 5, width: 15, height: 20))
        #expect(Window(column: 20, row: 0, width: 5, height: 5).intersection(full) == nil)
        #expect(full.contains(Window(column: 1, row: 1, width: 14, height: 99)))
        #expect(!full.contains(a))
        #expect(a.expanded(by: 2) == Window(column: -12, row: 3, width: 34, height: 24))
    }
}

@Suite struct GeoTransformTests {
    @Test func applyAndInvert() throws {
        let gt = GeoTransform([630534, 28.5, 0, 228114, 0, -28.5])
        let (x, y) = gt.apply(column: 10, row: 4)
        #expect(x == 630534 + 285)
        #expect(y == 228114 - 114)
        let inv = try #require(gt.inverted())
        let p = inv.apply(column: x, row: y)
        #expect(abs(p.x - 10) < 1e-9 && abs(p.y - 4) < 1e-9)
        #expect(!gt.isRotated)
    }

    @Test func rotatedInverse() throws {
        let gt = GeoTransform([100, 2, 0.5, 200, 0.25, -3])
        #expect(gt.isRotated)
        let inv = try #require(gt.inverted())
        let (x, y) = gt.apply(column: 7, row: 9)
        let p = inv.apply(column: x, row: y)
        #expect(abs(p.x - 7) < 1e-9 && abs(p.y - 9) < 1e-9)
    }

    @Test func windowTransformMovesOrigin() {
        let gt = GeoTransform(originX: 1000, pixelWidth: 10, originY: 5000, pixelHeight: -10)
        let w = gt.forWindow(Window(column: 3, row: 2, width: 5, height: 5))
        #expect(w.originX == 1030 && w.originY == 4980 && w.pixelWidth == 10)
    }

    @Test func gridDifferencesSaySomethingUseful() {
        let gt = GeoTransform(originX: 0, pixelWidth: 30, originY: 0, pixelHeight: -30)
        let a = RasterGrid(width: 100, height: 100, geoTransform: gt, crs: nil)
        var b = a
        #expect(a.differences(from: b).isEmpty)
        b.width = 99
        b.geoTransform = GeoTransform(originX: 60, pixelWidth: 30, originY: 0, pixelHeight: -30)
        let d = a.differences(from: b).joined(separator: "; ")
        #expect(d.contains("size 99×100 instead of 100×100"))
        #expect(d.contains("origin shifted by 2 columns"))
        b = a
        b.geoTransform = GeoTransform(originX: 0, pixelWidth: 10, originY: 0, pixelHeight: -10)
        #expect(a.differences(from: b).joined().contains("pixel size 10×10 instead of 30×30"))
    }
}

@Suite struct ColourTests {
    @Test func parsesHex() {
        #expect(RGBA(hex: "#1f78b4") == RGBA(0x1f, 0x78, 0xb4))
        #expect(RGBA(hex: "00ff0080") == RGBA(0, 255, 0, 128))
        #expect(RGBA(hex: "#12") == nil)
        #expect(RGBA(0x1f, 0x78, 0xb4).hex == "#1f78b4")
    }
}
