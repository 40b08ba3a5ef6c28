import Core
import Foundation
import GeoRaster
import Testing
import TestSupport

/// Every user-facing error names the file, the band when there is one, the problem and what to do.
@Suite struct RasterErrorTests {
    @Test func missingFile() {
        let error = #expect(throws: RasterError.self) { try Dataset(path: "no/such/scene.tif") }
        #expect(error?.kind == .notFound)
        #expect(error?.description.hasPrefix("no/such/scene.tif: file not found") == true)
    }

    /// A named pipe made GDAL wait for a writer forever; a directory is not a raster file.
    @Test func namedPipesDevicesAndDirectoriesAreRefusedBeforeGDALOpensThem() throws {
        let dir = TemporaryDirectory()
        let fifo = dir.file("scene.tif")
        #expect(mkfifo(fifo, 0o600) == 0)
        let pipe = #expect(throws: RasterError.self) { try Dataset(path: fifo) }
        #expect(pipe?.description.hasPrefix("\(fifo): is a named pipe (FIFO); TerraSeg reads only regular files") == true)
        let device = #expect(throws: RasterError.self) { try Dataset(path: "/dev/zero") }
        #expect(device?.description.hasPrefix("/dev/zero: is a character device") == true)
        let folder = #expect(throws: RasterError.self) { try Dataset(path: dir.path) }
        #expect(folder?.description.hasPrefix("\(dir.path): is a directory, not a file") == true)
    }

    @Test func notARaster() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("notes.tif")
        try "just text".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: RasterError.self) { try Dataset(path: path) }
        #expect(error?.kind == .openFailed)
        #expect(error?.description.contains("GDAL cannot open this file as a raster") == true)
        #expect(error?.description.contains("gdalinfo") == true)
    }

    @Test func outputDirectoryMissing() throws {
        let error = #expect(throws: TerraSegError.self) {
            try GeoTIFFWriter(path: "/nonexistent-dir/map.tif", profile: RasterProfile(width: 4, height: 4))
        }
        #expect(error?.description.contains("the output directory /nonexistent-dir does not exist") == true)
        #expect(error?.description.contains("mkdir -p") == true)
    }

    /// root ignores permission bits; a read-only mount (/proc/1) is unwritable for everyone.
    /// Where neither works the test is reported as skipped rather than passing without a check.
    @Test(.enabled(if: getuid() != 0 || access("/proc/1", W_OK) != 0, "needs a directory this user cannot write"))
    func outputDirectoryNotWritable() throws {
        let dir = TemporaryDirectory()
        let target: String
        if getuid() != 0 {
            chmod(dir.path, 0o555)
            target = dir.path
        } else {
            target = "/proc/1"
        }
        defer { chmod(dir.path, 0o755) }
        let error = #expect(throws: TerraSegError.self) {
            try GeoTIFFWriter(path: target + "/map.tif", profile: RasterProfile(width: 4, height: 4))
        }
        #expect(error?.description.contains("is not writable") == true)
    }

    @Test func badWindowOnWrite() throws {
        let dir = TemporaryDirectory()
        let writer = try GeoTIFFWriter(path: dir.file("x.tif"), profile: RasterProfile(width: 4, height: 4))
        let error = #expect(throws: RasterError.self) {
            try writer.write([UInt8](repeating: 0, count: 16), window: Window(column: 2, row: 0, width: 4, height: 4), band: 1)
        }
        #expect(error?.description.contains("is not inside the 4×4 output") == true)
        writer.abort()
    }
}

@Suite(.enabled(if: TestData.available, "needs ../shared/data"))
struct RasterErrorDataTests {
    @Test func bandOutOfRange() throws {
        let path = TestData.path("nc-landsat7/image_6band.tif")
        let ds = try Dataset(path: path)
        let error = #expect(throws: RasterError.self) { try ds.read(window: Window(width: 4, height: 4), bands: [1, 9]) }
        #expect(error?.kind == .badBand)
        #expect(error?.band == 9)
        #expect(error?.description == "\(path), band 9: band 9 does not exist. The file has 6 band(s), numbered 1 to 6")
    }

    @Test func complexTypeRefused() throws {
        let path = TestData.path("geotiff-zoo/rio-cogeo__slc.tif")
        let ds = try Dataset(path: path)
        let error = #expect(throws: RasterError.self) { try ds.read(window: Window(width: 4, height: 4)) }
        #expect(error?.kind == .unsupportedType)
        #expect(error?.description.contains("band 1: pixel type CInt16 is not supported") == true)
        #expect(error?.description.contains("gdal_translate") == true)
    }

    @Test func corruptFileFailsOnRead() throws {
        let path = TestData.path("geotiff-zoo/rasterio__corrupt.tif")
        let error = #expect(throws: RasterError.self) {
            let ds = try Dataset(path: path)
            _ = try ds.read(window: Window(width: ds.info.width, height: ds.info.height))
        }
        #expect(error?.kind == .readFailed)
        #expect(error?.gdalMessage != nil)
        #expect(error?.description.contains("corrupt") == true)
    }

    @Test func stackOfUnwarpableOrDisjointGridsRefused() throws {
        let red = TestData.files(in: "38cloud").first { $0.contains("/red_") }!
        let other = TestData.path("ukis-cloud/landsat7_image.tif")
        let error = #expect(throws: RasterError.self) { try BandStack(paths: [red, other]) }
        #expect(error?.kind == .gridMismatch)
        #expect(error?.description.contains("size 512×512 instead of 384×384") == true)
        #expect(error?.description.contains("gdalwarp") == true)
        let nc = TestData.path("nc-landsat7/image_6band.tif"), s2 = TestData.files(in: "sen1floods11/S2").first!
        // Georeferenced files of different places: nothing to warp, both extents named.
        let e2 = #expect(throws: RasterError.self) { try BandStack(paths: [nc, s2]) }
        #expect(e2?.description.contains("the source does not overlap the scene") == true)
        #expect(e2?.description.contains("(both in ") == true)
    }
}
