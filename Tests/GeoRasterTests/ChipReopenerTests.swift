import Core
import Foundation
import GeoRaster
import Testing
import TestSupport

/// Tile-set chips reopened every epoch (`ChipReopener`) read as they did when first opened.
@Suite struct ChipReopenerTests {
    let dir = TemporaryDirectory("terraseg-reopen")

    func chip(_ name: String, width: Int = 20) throws -> String {
        try RasterMaker.write(dir.file(name), profile: try RasterMaker.utmProfile(width: width, height: 10, bands: 2, nodata: 7)) { b, c, r in
            Float((b * 3 + c + r) % 9)
        }
    }

    /// Among other chips in its folder, a reopened file keeps the first open's info and reads the
    /// same values and validity (nodata); GDAL is told only of the files it used.
    @Test func reopenedFileReadsAsFirstOpened() throws {
        for i in 0..<5 { try chip("n\(i).tif") }
        let first = try Dataset(path: try chip("a.tif"))
        let reopener = ChipReopener(first)
        #expect(reopener.siblings.first == "a.tif" && !reopener.siblings.contains("n0.tif"))
        let again = try reopener.open()
        #expect(again.info == first.info)
        let window = Window(column: 3, row: 2, width: 12, height: 7)
        let a = try first.read(window: window), b = try again.read(window: window)
        #expect(a.values == b.values && a.valid == b.valid && a.validCount < window.pixelCount)
    }

    /// An external .msk mask, a sidecar, still masks pixels when the file is reopened.
    @Test(.enabled(if: TestData.available, "needs ../shared/data")) func sidecarMaskAppliesAfterReopening() throws {
        let first = try Dataset(path: TestData.path("geotiff-zoo/rio-tiler__201404_13SED190110_201404_0x1500m_CL_1_extmask.tif"))
        let reopener = ChipReopener(first)
        #expect(reopener.siblings.contains { $0.hasSuffix(".msk") })
        let full = Window(width: first.info.width, height: first.info.height)
        let a = try first.read(window: full), b = try reopener.open().read(window: full)
        #expect(a.valid == b.valid && a.values == b.values && b.validCount < full.pixelCount)
    }

    /// A chip rewritten or removed while training runs is refused with what changed.
    @Test func aChangedOrRemovedFileIsRefused() throws {
        let path = try chip("b.tif")
        let reopener = ChipReopener(try Dataset(path: path))
        try FileManager.default.removeItem(atPath: path)
        try chip("b.tif", width: 16)
        let changed = #expect(throws: RasterError.self) { try reopener.open() }
        #expect(changed?.description.contains("the file changed while training ran: it is 16×10 with 2 band(s), it was 20×10 with 2") == true,
                "\(String(describing: changed))")
        try FileManager.default.removeItem(atPath: path)
        let removed = #expect(throws: RasterError.self) { try reopener.open() }
        #expect(removed?.description.contains("GDAL cannot open this file again") == true, "\(String(describing: removed))")
    }
}
