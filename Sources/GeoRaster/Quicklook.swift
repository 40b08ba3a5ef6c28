import CGDAL
import Core
import Foundation

extension Dataset {
    /// Reads `bands` resampled to `width`×`height` (GDAL's average resampling) for previews,
    /// with validity from nodata, NaN and the mask band (nearest).
    public func readDecimated(bands: [Int], width: Int, height: Int) throws -> RasterBlock {
        let selection = try resolveBands(bands)
        var block = RasterBlock(window: Window(width: width, height: height), bandCount: selection.count)
        var extra = GDALRasterIOExtraArg()
        ts_init_rasterio_extra_arg(&extra)
        extra.eResampleAlg = GRIORA_Average
        var map = selection.map { Int32($0) }
        GDALRuntime.resetError()
        let err = block.values.withUnsafeMutableBufferPointer { v in
            map.withUnsafeMutableBufferPointer { m in
                GDALDatasetRasterIOEx(handle, GF_Read, 0, 0, Int32(info.width), Int32(info.height), v.baseAddress,
                                      Int32(width), Int32(height), GDT_Float32, Int32(m.count), m.baseAddress,
                                      4, GSpacing(4 * width), GSpacing(4 * width * height), &extra)
            }
        }
        if err != CE_None {
            throw RasterError(.readFailed, path: info.path, problem: "reading a preview failed", gdalMessage: GDALRuntime.lastErrorMessage())
        }
        block.valid = [UInt8](repeating: 1, count: width * height)
        var mask = [UInt8](repeating: 1, count: width * height)
        for (k, b) in selection.enumerated() {
            let band = info.bands[b - 1]
            let nd = band.nodata.map { Float($0) }
            for i in 0..<(width * height) {
                let v = block.values[k * width * height + i]
                if v.isNaN || (nd != nil && v == nd!) { block.valid[i] = 0 }
            }
            if band.maskFlags.needsMaskBand, let bh = GDALGetRasterBand(handle, Int32(b)), let mh = GDALGetMaskBand(bh) {
                var e = GDALRasterIOExtraArg()
                ts_init_rasterio_extra_arg(&e)
                _ = mask.withUnsafeMutableBufferPointer {
                    GDALRasterIOEx(mh, GF_Read, 0, 0, Int32(info.width), Int32(info.height), $0.baseAddress,
                                   Int32(width), Int32(height), GDT_Byte, 1, GSpacing(width), &e)
                }
                for i in 0..<(width * height) where mask[i] == 0 { block.valid[i] = 0 }
            }
        }
        return block
    }
}

/// Small PNG previews for reports: a class map in its own colours, and a false-colour
/// composite of the input, both written by GDAL's PNG driver (under a temporary name).
public enum Quicklook {
    /// Preview size keeping the aspect ratio, longest side `maxSize`.
    public static func size(width: Int, height: Int, maxSize: Int) -> (Int, Int) {
        let s = min(1.0, Double(maxSize) / Double(max(width, height)))
        return (max(1, Int((Double(width) * s).rounded())), max(1, Int((Double(height) * s).rounded())))
    }

    /// The class map with its colour table as RGBA (nodata transparent), nearest resampling.
    public static func classMap(_ mapPath: String, to png: String, maxSize: Int = 1024) throws {
        let ds = try Dataset(path: mapPath)
        let (w, h) = size(width: ds.info.width, height: ds.info.height, maxSize: maxSize)
        var args = ["-of", "PNG", "-outsize", String(w), String(h), "-r", "nearest"]
        if ds.info.bands[0].hasColorTable { args += ["-expand", "rgba"] }
        try translate(ds, args: args, to: png)
    }

    /// Bands (e.g. NIR, red, green) stretched between their 2nd and 98th percentiles, nodata transparent.
    public static func falseColor(_ paths: [String], bands: [Int], to png: String, maxSize: Int = 1024) throws {
        let sources = try paths.map { try Dataset(path: $0) }
        let first = sources[0].info
        let (w, h) = size(width: first.width, height: first.height, maxSize: maxSize)
        // Map stack band numbers to (file, band).
        var owners: [(Dataset, Int)] = []
        for d in sources { for b in 1...d.info.bandCount { owners.append((d, b)) } }
        var rgba = [UInt8](repeating: 0, count: 4 * w * h)
        var valid = [UInt8](repeating: 1, count: w * h)
        var planes: [[Float]] = []
        for b in bands.prefix(3) {
            guard b >= 1, b <= owners.count else {
                throw RasterError(.badBand, path: first.path, band: b, problem: "band \(b) does not exist", hint: "The scene has \(owners.count) band(s)")
            }
            let (d, local) = owners[b - 1]
            let block = try d.readDecimated(bands: [local], width: w, height: h)
            for i in 0..<(w * h) where block.valid[i] == 0 { valid[i] = 0 }
            planes.append(block.values)
        }
        while planes.count < 3 { planes.append(planes.last!) }
        for (c, plane) in planes.enumerated() {
            let values = zip(plane, valid).filter { $1 != 0 }.map(\.0).sorted()
            let lo = values.isEmpty ? 0 : values[Int(Double(values.count - 1) * 0.02)]
            let hi = values.isEmpty ? 1 : values[Int(Double(values.count - 1) * 0.98)]
            let scale = hi > lo ? 255 / (hi - lo) : 0
            for i in 0..<(w * h) { rgba[i * 4 + c] = UInt8(max(0, min(255, (plane[i] - lo) * scale))) }
        }
        for i in 0..<(w * h) { rgba[i * 4 + 3] = valid[i] != 0 ? 255 : 0 }
        try writePNG(rgba: rgba, width: w, height: h, to: png)
    }

    /// Writes an RGBA image (row-major, 4 bytes per pixel) as PNG.
    public static func writePNG(rgba: [UInt8], width: Int, height: Int, to png: String) throws {
        GDALRuntime.ensureInitialized()
        guard let mem = GDALGetDriverByName("MEM"), let ds = GDALCreate(mem, "", Int32(width), Int32(height), 4, GDT_Byte, nil) else {
            throw RasterError(.createFailed, path: png, problem: "cannot allocate a preview", gdalMessage: GDALRuntime.lastErrorMessage())
        }
        defer { GDALClose(ds) }
        var copy = rgba
        var bands: [Int32] = [1, 2, 3, 4]
        var extra = GDALRasterIOExtraArg()
        ts_init_rasterio_extra_arg(&extra)
        _ = copy.withUnsafeMutableBufferPointer { p in
            bands.withUnsafeMutableBufferPointer { b in
                GDALDatasetRasterIOEx(ds, GF_Write, 0, 0, Int32(width), Int32(height), p.baseAddress, Int32(width), Int32(height),
                                      GDT_Byte, 4, b.baseAddress, 4, GSpacing(4 * width), 1, &extra)
            }
        }
        for (i, ci) in [GCI_RedBand, GCI_GreenBand, GCI_BlueBand, GCI_AlphaBand].enumerated() {
            _ = GDALSetRasterColorInterpretation(GDALGetRasterBand(ds, Int32(i + 1)), ci)
        }
        try createCopy(ds, driver: "PNG", to: png)
    }

    static func translate(_ ds: Dataset, args: [String], to png: String) throws {
        let argv = GDALRuntime.stringList(args)
        defer { CSLDestroy(argv) }
        guard let options = GDALTranslateOptionsNew(argv, nil) else {
            throw RasterError(.invalidArgument, path: png, problem: "bad preview options", gdalMessage: GDALRuntime.lastErrorMessage())
        }
        defer { GDALTranslateOptionsFree(options) }
        let tmp = try temporaryName(png)
        GDALRuntime.resetError()
        var usage: Int32 = 0
        guard let out = GDALTranslate(tmp, ds.handle, options, &usage) else {
            unlink(tmp)
            throw RasterError(.writeFailed, path: png, problem: "writing the preview failed", gdalMessage: GDALRuntime.lastErrorMessage())
        }
        GDALClose(out)
        try finish(tmp, png)
    }

    static func createCopy(_ ds: GDALDatasetH, driver: String, to path: String) throws {
        guard let d = GDALGetDriverByName(driver) else {
            throw RasterError(.createFailed, path: path, problem: "GDAL has no \(driver) driver")
        }
        let tmp = try temporaryName(path)
        GDALRuntime.resetError()
        guard let out = GDALCreateCopy(d, tmp, ds, 0, nil, nil, nil) else {
            unlink(tmp)
            throw RasterError(.writeFailed, path: path, problem: "writing the preview failed", gdalMessage: GDALRuntime.lastErrorMessage())
        }
        GDALClose(out)
        try finish(tmp, path)
    }

    /// An unpredictable, exclusively created temporary file beside `path` for GDAL to write.
    static func temporaryName(_ path: String) throws -> String {
        try AtomicFile.reserveTemporaryFile(for: path, suffix: ".png")
    }

    static func finish(_ tmp: String, _ path: String) throws {
        unlink(tmp + ".aux.xml")
        do {
            try AtomicFile.moveIntoPlace(tmp, path)
        } catch let e as TerraSegError {
            throw RasterError(.writeFailed, path: path, problem: e.problem, hint: e.hint)
        }
    }
}
