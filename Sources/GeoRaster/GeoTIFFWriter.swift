import CGDAL
import Core
import Foundation

/// Writes a GeoTIFF (or, with `options.cog`, a Cloud-Optimised GeoTIFF) under a temporary
/// name beside the final one; `finish()` builds overviews, closes, checks for errors and
/// renames it into place. A writer released without `finish()` deletes its temporary file,
/// so an interrupted run never leaves a file under the final name.
public final class GeoTIFFWriter {
    /// The final path.
    public let path: String
    public let profile: RasterProfile
    /// Where pixels go until `finish()`: the final temporary file, or for a COG a staging GTiff.
    let workingPath: String
    /// The temporary name renamed to `path` at the end.
    let temporaryPath: String
    private var handle: GDALDatasetH?
    private var done = false
    /// The MODE overviews written with the rows (`writeOverviewsWithRows()`); nil: GDAL builds
    /// the overviews at `finish()`.
    private var rowOverviews: (any RowOverviewBuilding)?

    public static let writableTypes: [DataType] = [.byte, .uint16, .int16, .uint32, .int32, .float32, .float64]

    /// Creates the file under a temporary name (renamed to `path` by `finish()`), georeferenced
    /// and with nodata set.
    public init(path: String, profile: RasterProfile) throws {
        GDALRuntime.ensureInitialized()
        self.path = path
        self.profile = profile
        try GeoTIFFWriter.validate(profile, path: path)
        (temporaryPath, workingPath) = try GeoTIFFWriter.reserveNames(for: path, cog: profile.options.cog)
        // From here on a throw runs deinit, which removes both names.
        handle = try GeoTIFFWriter.create(profile, at: workingPath, for: path)
        do {
            try georeference()
        } catch {
            abort()
            throw error
        }
    }

    /// Refuses profiles GDAL would reject or could not write, naming the file.
    static func validate(_ profile: RasterProfile, path: String) throws {
        guard writableTypes.contains(profile.dataType) else {
            throw RasterError(.invalidArgument, path: path, problem: "cannot write pixel type \(profile.dataType.rawValue)",
                              hint: "Use one of " + writableTypes.map(\.rawValue).joined(separator: ", "))
        }
        guard profile.width > 0, profile.height > 0, profile.bandCount > 0 else {
            throw RasterError(.invalidArgument, path: path,
                              problem: "cannot create a \(profile.width)×\(profile.height) raster with \(profile.bandCount) band(s)")
        }
        guard profile.options.blockSize >= 16, profile.options.blockSize % 16 == 0 else {
            throw RasterError(.invalidArgument, path: path, problem: "block size \(profile.options.blockSize) is not a positive multiple of 16",
                              hint: "Use 256 or 512")
        }
    }

    /// The temporary name renamed to `path` at the end and the one pixels go to (a staging
    /// file for a COG), both created here exclusively (AtomicFile); GDAL then writes over them.
    static func reserveNames(for path: String, cog: Bool) throws -> (temporary: String, working: String) {
        let temporary = try AtomicFile.reserveTemporaryFile(for: path, suffix: ".tif")
        guard cog else { return (temporary, temporary) }
        do {
            return (temporary, try AtomicFile.reserveTemporaryFile(for: path, suffix: ".stage.tif"))
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// A tiled GTiff at `workingPath` with the profile's size, bands, type, compression and predictor.
    static func create(_ profile: RasterProfile, at workingPath: String, for path: String) throws -> GDALDatasetH {
        guard let driver = GDALGetDriverByName("GTiff") else {
            throw RasterError(.createFailed, path: path, problem: "GDAL has no GTiff driver")
        }
        var items = ["TILED=YES", "BLOCKXSIZE=\(profile.options.blockSize)", "BLOCKYSIZE=\(profile.options.blockSize)",
                     "COMPRESS=\(profile.options.compression.rawValue)", "BIGTIFF=\(profile.options.bigTIFF.rawValue)"]
        if let p = predictorValue(profile) { items.append("PREDICTOR=\(p)") }
        if profile.bandCount > 1 { items.append("INTERLEAVE=BAND") }
        let options = GDALRuntime.stringList(items)
        defer { CSLDestroy(options) }
        GDALRuntime.resetError()
        guard let h = GDALCreate(driver, workingPath, Int32(profile.width), Int32(profile.height), Int32(profile.bandCount),
                                 profile.dataType.gdal, options) else {
            let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
            throw RasterError(.createFailed, path: path, problem: "cannot create the output file",
                              gdalMessage: GDALRuntime.lastErrorMessage(),
                              hint: "Check that \(dir) is writable and has free space")
        }
        return h
    }

    /// Sets the geotransform, the CRS and every band's nodata value from the profile.
    private func georeference() throws {
        guard let h = handle else { return }
        if let gt = profile.geoTransform {
            var c = gt.coefficients
            try check(c.withUnsafeMutableBufferPointer { GDALSetGeoTransform(h, $0.baseAddress) }, "setting the geotransform")
        }
        if let crs = profile.crs {
            guard let srs = OSRNewSpatialReference(crs.wkt) else {
                throw RasterError(.createFailed, path: path, problem: "GDAL does not accept the CRS \(crs.shortName)",
                                  gdalMessage: GDALRuntime.lastErrorMessage())
            }
            defer { OSRDestroySpatialReference(srs) }
            try check(GDALSetSpatialRef(h, srs), "setting the CRS")
        }
        if let nd = profile.nodata {
            for b in 1...profile.bandCount {
                try check(GDALSetRasterNoDataValue(GDALGetRasterBand(h, Int32(b)), nd), "setting nodata", band: b)
            }
        }
    }

    deinit { if !done { abort() } }

    static func predictorValue(_ p: RasterProfile) -> Int? {
        guard p.options.compression != .none else { return nil }
        switch p.options.predictor {
        case .none: return nil
        case .horizontal: return 2
        case .floatingPoint: return p.dataType.isFloatingPoint ? 3 : 2
        case .automatic: return p.dataType.isFloatingPoint ? 3 : 2
        }
    }

    private func check(_ err: CPLErr, _ what: String, band: Int? = nil) throws {
        if err != CE_None {
            throw RasterError(.writeFailed, path: path, band: band, problem: "\(what) failed",
                              gdalMessage: GDALRuntime.lastErrorMessage(),
                              hint: "Check free space and permissions of the output directory")
        }
    }

    private func band(_ b: Int) throws -> GDALRasterBandH {
        guard let h = handle else {
            throw RasterError(.writeFailed, path: path, problem: "the writer is already finished or aborted")
        }
        guard b >= 1, b <= profile.bandCount, let bh = GDALGetRasterBand(h, Int32(b)) else {
            throw RasterError(.badBand, path: path, band: b, problem: "band \(b) does not exist",
                              hint: "The output has \(profile.bandCount) band(s)")
        }
        return bh
    }

    // MARK: - Metadata

    /// Sets a band's description (GDALSetDescription), shown by gdalinfo and QGIS.
    public func setDescription(_ text: String, band b: Int) throws {
        GDALSetDescription(try band(b), text)
    }

    /// Sets a metadata item on the dataset (GDALSetMetadataItem).
    public func setMetadata(_ value: String, forKey key: String) throws {
        guard let h = handle else { return }
        try check(GDALSetMetadataItem(h, key, value, nil), "setting metadata \(key)")
    }

    /// Makes `band` a class map: a colour table (Byte/UInt16 only) with the classes' colours
    /// (nodata transparent), a thematic raster attribute table (Value, Class_Name, Red, Green,
    /// Blue, Alpha) and category names, so GIS tools show colours and class names.
    public func setClasses(_ classes: [ClassEntry], band b: Int = 1) throws {
        let bh = try band(b)
        let maxValue = profile.dataType == .byte ? 255 : 65535
        for c in classes where c.value < 0 || c.value > maxValue {
            throw RasterError(.invalidArgument, path: path, band: b,
                              problem: "class '\(c.name)' has value \(c.value), outside 0...\(maxValue) of \(profile.dataType.rawValue)")
        }
        if profile.dataType == .byte || profile.dataType == .uint16 {
            guard let ct = GDALCreateColorTable(GPI_RGB) else { return }
            defer { GDALDestroyColorTable(ct) }
            var top = classes.map(\.value).max() ?? 0
            if let nd = profile.nodata, nd >= 0, nd <= Double(maxValue) { top = max(top, Int(nd)) }
            if profile.dataType == .byte { top = 255 }
            for v in 0...top {
                var e = GDALColorEntry(c1: 0, c2: 0, c3: 0, c4: 0)
                GDALSetColorEntry(ct, Int32(v), &e)
            }
            for c in classes {
                var e = GDALColorEntry(c1: Int16(c.color.r), c2: Int16(c.color.g), c3: Int16(c.color.b), c4: Int16(c.color.a))
                GDALSetColorEntry(ct, Int32(c.value), &e)
            }
            try check(GDALSetRasterColorTable(bh, ct), "setting the colour table", band: b)
            _ = GDALSetRasterColorInterpretation(bh, GCI_PaletteIndex)
        }
        guard let rat = GDALCreateRasterAttributeTable() else { return }
        defer { GDALDestroyRasterAttributeTable(rat) }
        _ = GDALRATSetTableType(rat, GRTT_THEMATIC)
        _ = GDALRATCreateColumn(rat, "Value", GFT_Integer, GFU_MinMax)
        _ = GDALRATCreateColumn(rat, "Class_Name", GFT_String, GFU_Name)
        _ = GDALRATCreateColumn(rat, "Red", GFT_Integer, GFU_Red)
        _ = GDALRATCreateColumn(rat, "Green", GFT_Integer, GFU_Green)
        _ = GDALRATCreateColumn(rat, "Blue", GFT_Integer, GFU_Blue)
        _ = GDALRATCreateColumn(rat, "Alpha", GFT_Integer, GFU_Alpha)
        GDALRATSetRowCount(rat, Int32(classes.count))
        for (row, c) in classes.sorted(by: { $0.value < $1.value }).enumerated() {
            let r = Int32(row)
            GDALRATSetValueAsInt(rat, r, 0, Int32(c.value))
            GDALRATSetValueAsString(rat, r, 1, c.name)
            GDALRATSetValueAsInt(rat, r, 2, Int32(c.color.r))
            GDALRATSetValueAsInt(rat, r, 3, Int32(c.color.g))
            GDALRATSetValueAsInt(rat, r, 4, Int32(c.color.b))
            GDALRATSetValueAsInt(rat, r, 5, Int32(c.color.a))
        }
        try check(GDALSetDefaultRAT(bh, rat), "setting the attribute table", band: b)
        if let top = classes.map(\.value).max(), top <= 65535 {
            var names = [String](repeating: "", count: top + 1)
            for c in classes { names[c.value] = c.name }
            let list = GDALRuntime.stringList(names)
            defer { CSLDestroy(list) }
            try check(GDALSetRasterCategoryNames(bh, list), "setting class names", band: b)
        }
    }

    // MARK: - Pixels

    /// Writes `values` (row-major, window.width × window.height) into `window` of `band`.
    public func write<T: RasterScalar>(_ values: UnsafeBufferPointer<T>, window: Window, band b: Int) throws {
        let bh = try band(b)
        guard Window(width: profile.width, height: profile.height).contains(window), !window.isEmpty else {
            throw RasterError(.badWindow, path: path, band: b,
                              problem: "window \(window) is not inside the \(profile.width)×\(profile.height) output")
        }
        guard values.count >= window.pixelCount else {
            throw RasterError(.invalidArgument, path: path, band: b,
                              problem: "\(values.count) values given for a window of \(window.pixelCount) pixels")
        }
        var extra = GDALRasterIOExtraArg()
        ts_init_rasterio_extra_arg(&extra)
        GDALRuntime.resetError()
        let size = MemoryLayout<T>.stride
        let err = GDALRasterIOEx(bh, GF_Write, Int32(window.column), Int32(window.row), Int32(window.width), Int32(window.height),
                                 UnsafeMutableRawPointer(mutating: values.baseAddress), Int32(window.width), Int32(window.height),
                                 T.gdalType, GSpacing(size), GSpacing(size * window.width), &extra)
        try check(err, "writing \(window)", band: b)
        if let o = rowOverviews, try !o.took(values, window: window) { rowOverviews = nil }
    }

    public func write<T: RasterScalar>(_ values: [T], window: Window, band b: Int) throws {
        try values.withUnsafeBufferPointer { try write($0, window: window, band: b) }
    }

    /// The minimum mapping unit: every patch of one class smaller than `minimumPixels` pixels
    /// (`connectedness`) takes the class of its largest neighbouring patch, in place, once all
    /// pixels are written and before `finish()` builds overviews (GDALSieveFilter). Nodata
    /// pixels (the band's mask) neither change nor count as neighbours, so a speck enclosed by
    /// nodata alone stays.
    public func sieve(minimumPixels: Int, connectedness: Connectedness, band b: Int = 1) throws {
        guard minimumPixels > 1 else { return }
        let bh = try band(b)
        rowOverviews = nil  // the pixels change: GDAL builds the overviews at the end
        GDALRuntime.resetError()
        let err = GDALSieveFilter(bh, GDALGetMaskBand(bh), bh, Int32(clamping: minimumPixels), connectedness.neighbours, nil, nil, nil)
        try check(err, "removing patches under \(minimumPixels) pixels (sieve)", band: b)
    }

    // MARK: - Completion

    /// Overview factors 2, 4, 8, ... until the smallest fits one block (at least one level
    /// for rasters of 64 pixels or more).
    static func overviewLevels(width: Int, height: Int, blockSize: Int) -> [Int32] {
        let maxDim = max(width, height)
        var levels: [Int32] = []
        var factor = 2
        while (maxDim + factor / 2 - 1) / (factor / 2) > blockSize {
            levels.append(Int32(factor))
            factor *= 2
        }
        if levels.isEmpty && maxDim >= 64 { levels = [2] }
        return levels
    }

    /// Computes the MODE overviews from the rows as they are written (`ModeOverviews`), for a map
    /// written top to bottom in full-width rows (a streamed map), so `finish()` has no overviews
    /// left to build, and flushes each block row once complete. Call before writing. Returns
    /// false, and GDAL builds the overviews at `finish()` as without this call, for other
    /// profiles (no MODE overviews, a COG, several bands, a type other than Byte and UInt16, no
    /// nodata, a size GDAL would not cascade); a write out of that order later, or a sieve, also
    /// leaves them to GDAL.
    @discardableResult
    public func writeOverviewsWithRows() throws -> Bool {
        let p = profile, levels = GeoTIFFWriter.overviewLevels(width: p.width, height: p.height, blockSize: p.options.blockSize)
        guard p.options.overviews == .mode, !p.options.cog, p.bandCount == 1, let nodata = p.nodata, nodata.rounded() == nodata, !levels.isEmpty,
              let h = handle, let bh = GDALGetRasterBand(h, 1) else { return false }
        func reserve() throws {
            var levels = levels
            GDALRuntime.resetError()
            let err = levels.withUnsafeMutableBufferPointer { GDALBuildOverviews(h, "NONE", Int32($0.count), $0.baseAddress, 0, nil, nil, nil) }
            try check(err, "creating the overviews")
        }
        let factors = levels.map(Int.init)
        switch p.dataType {
        case .byte where (0...255).contains(nodata):
            guard let modes = ModeOverviews<UInt8>(width: p.width, height: p.height, factors: factors, nodata: UInt8(nodata)) else { return false }
            try reserve()
            rowOverviews = RowOverviews(band: bh, modes: modes, path: path)
        case .uint16 where (0...65535).contains(nodata):
            guard let modes = ModeOverviews<UInt16>(width: p.width, height: p.height, factors: factors, nodata: UInt16(nodata)) else { return false }
            try reserve()
            rowOverviews = RowOverviews(band: bh, modes: modes, path: path)
        default:
            return false
        }
        return rowOverviews != nil
    }

    /// Whether the overviews are being made with the rows (`writeOverviewsWithRows()`), so far.
    public var makesOverviewsWithRows: Bool { rowOverviews != nil }

    /// Builds overviews, closes, and moves the file to its final name (with its .aux.xml,
    /// which holds the attribute table). On any failure the temporary files are removed and
    /// nothing appears under the final name.
    public func finish() throws {
        guard let h = handle else {
            throw RasterError(.writeFailed, path: path, problem: "the writer is already finished or aborted")
        }
        do {
            if let resampling = profile.options.overviews, !profile.options.cog, rowOverviews?.isComplete != true {
                var levels = GeoTIFFWriter.overviewLevels(width: profile.width, height: profile.height, blockSize: profile.options.blockSize)
                if !levels.isEmpty {
                    GDALRuntime.resetError()
                    let n = Int32(levels.count)
                    let err = levels.withUnsafeMutableBufferPointer {
                        GDALBuildOverviews(h, resampling.rawValue, n, $0.baseAddress, 0, nil, nil, nil)
                    }
                    try check(err, "building overviews")
                }
            }
            try close()
            if profile.options.cog { try translateToCOG() }
            try commit()
            done = true
        } catch {
            abort()
            throw error
        }
    }

    /// Closes the GDAL handle, turning any error GDAL reports while flushing into a throw.
    private func close() throws {
        guard let h = handle else { return }
        handle = nil
        GDALRuntime.resetError()
        GDALFlushCache(h)
        let flushError = CPLGetLastErrorType().rawValue >= CE_Failure.rawValue ? GDALRuntime.lastErrorMessage() : nil
        GDALRuntime.resetError()
        GDALClose(h)
        let closeError = CPLGetLastErrorType().rawValue >= CE_Failure.rawValue ? GDALRuntime.lastErrorMessage() : nil
        if let message = flushError ?? closeError {
            throw RasterError(.writeFailed, path: path, problem: "writing the file failed", gdalMessage: message,
                              hint: "Check free space and permissions of the output directory")
        }
    }

    private func translateToCOG() throws {
        GDALRuntime.resetError()
        guard let cog = GDALGetDriverByName("COG") else {
            throw RasterError(.createFailed, path: path, problem: "this GDAL has no COG driver", hint: "Install GDAL 3.1 or newer")
        }
        guard let src = GDALOpenEx(workingPath, UInt32(GDAL_OF_RASTER | GDAL_OF_READONLY), nil, nil, nil) else {
            throw RasterError(.writeFailed, path: path, problem: "cannot reopen the staged file for COG conversion",
                              gdalMessage: GDALRuntime.lastErrorMessage())
        }
        defer { GDALClose(src) }
        var items = ["COMPRESS=\(profile.options.compression.rawValue)", "BLOCKSIZE=\(profile.options.blockSize)",
                     "BIGTIFF=\(profile.options.bigTIFF.rawValue)"]
        if let p = GeoTIFFWriter.predictorValue(profile) { items.append("PREDICTOR=\(p == 3 ? "FLOATING_POINT" : "STANDARD")") }
        if let r = profile.options.overviews {
            items.append("OVERVIEW_RESAMPLING=\(r.rawValue)")
            items.append("OVERVIEWS=AUTO")
        } else {
            items.append("OVERVIEWS=NONE")
        }
        let options = GDALRuntime.stringList(items)
        defer { CSLDestroy(options) }
        GDALRuntime.resetError()
        guard let out = GDALCreateCopy(cog, temporaryPath, src, 0, options, nil, nil) else {
            throw RasterError(.writeFailed, path: path, problem: "writing the Cloud-Optimised GeoTIFF failed",
                              gdalMessage: GDALRuntime.lastErrorMessage(),
                              hint: "Check free space and permissions of the output directory")
        }
        // The COG driver copies the colour table; copy the attribute table and class names
        // too (they live in the .aux.xml sidecar, which does not change the TIFF layout).
        for b in 1...profile.bandCount {
            guard let sb = GDALGetRasterBand(src, Int32(b)), let ob = GDALGetRasterBand(out, Int32(b)) else { continue }
            if let rat = GDALGetDefaultRAT(sb), GDALGetDefaultRAT(ob) == nil { _ = GDALSetDefaultRAT(ob, rat) }
            if let names = GDALGetRasterCategoryNames(sb), GDALGetRasterCategoryNames(ob) == nil {
                _ = GDALSetRasterCategoryNames(ob, names)
            }
            if let d = GDALGetDescription(sb), GDALGetDescription(ob).map({ String(cString: $0) }) != String(cString: d) {
                GDALSetDescription(ob, d)
            }
        }
        GDALRuntime.resetError()
        GDALClose(out)
        if CPLGetLastErrorType().rawValue >= CE_Failure.rawValue {
            throw RasterError(.writeFailed, path: path, problem: "writing the Cloud-Optimised GeoTIFF failed",
                              gdalMessage: GDALRuntime.lastErrorMessage())
        }
        GeoTIFFWriter.removeWithSidecars(workingPath)
    }

    /// Renames the temporary file (and its sidecar) to the final name.
    private func commit() throws {
        let fm = FileManager.default
        let tmpAux = temporaryPath + ".aux.xml", finalAux = path + ".aux.xml"
        do {
            // Flushed, renamed, directory flushed (AtomicFile): a crash leaves the old map or the new one.
            if fm.fileExists(atPath: tmpAux) {
                try AtomicFile.moveIntoPlace(tmpAux, finalAux)
            } else if fm.fileExists(atPath: finalAux) {
                try? fm.removeItem(atPath: finalAux)  // a stale sidecar from an earlier file
            }
            try AtomicFile.moveIntoPlace(temporaryPath, path)
        } catch let e as TerraSegError {
            throw RasterError(.writeFailed, path: path, problem: e.problem, hint: e.hint ?? "Check permissions of the output directory")
        }
    }

    /// Closes without finishing and removes every temporary file.
    public func abort() {
        if let h = handle {
            handle = nil
            GDALRuntime.resetError()
            GDALClose(h)
            GDALRuntime.resetError()
        }
        GeoTIFFWriter.removeWithSidecars(workingPath)
        GeoTIFFWriter.removeWithSidecars(temporaryPath)
        done = true
    }

    static func removeWithSidecars(_ p: String) {
        for f in [p, p + ".aux.xml", p + ".ovr", p + ".msk"] { unlink(f) }
    }
}
