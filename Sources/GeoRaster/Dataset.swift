import CGDAL
import Core
import Foundation

/// One GDAL raster dataset opened read-only (GDALOpenEx); closed (GDALClose) when released.
/// Not safe to use from two threads at once: give each reading thread its own `Dataset`.
public final class Dataset: RasterSource {
    let handle: GDALDatasetH
    public internal(set) var info: RasterInfo
    /// Datasets a virtual dataset reads from (a warped VRT's source), kept open until it closes.
    var retained: [Dataset] = []
    /// A band whose zeros mark invalid pixels in every band (a warped VRT's alpha band).
    var validityBand: Int?
    /// Opened from a file by its path, not made by GDAL in memory: another thread may open it
    /// again (`ChipReopener`).
    public let isFile: Bool

    // Scratch buffers reused between reads.
    private var scratchDouble: [Double] = []
    private var scratchMask: [UInt8] = []

    /// Opens `path` (any GDAL raster: GeoTIFF, COG, VRT, /vsi paths, PNG, ...).
    public init(path: String) throws {
        GDALRuntime.ensureInitialized()
        let isPlainPath = !path.hasPrefix("/vsi") && !path.contains(":")
        if isPlainPath, let (problem, hint) = InputFile.problem(path) {
            throw RasterError(problem == "not found" ? .notFound : .openFailed, path: path,
                              problem: problem == "not found" ? "file not found" : problem, hint: hint)
        }
        GDALRuntime.resetError()
        let flags = UInt32(GDAL_OF_RASTER | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR)
        guard let h = GDALOpenEx(path, flags, nil, nil, nil) else {
            throw RasterError(.openFailed, path: path, problem: "GDAL cannot open this file as a raster",
                              gdalMessage: GDALRuntime.lastErrorMessage(),
                              hint: "Check that it is a complete, readable raster (try `gdalinfo \(path)`)")
        }
        if GDALGetRasterCount(h) == 0 {
            let subdatasets = Dataset.metadataList(h, domain: "SUBDATASETS").filter { $0.key.hasSuffix("_NAME") }.map(\.value)
            GDALClose(h)
            let hint = subdatasets.isEmpty
                ? "Give a file with at least one raster band"
                : "It holds subdatasets; open one of them, e.g. \(subdatasets[0])"
            throw RasterError(.openFailed, path: path, problem: "the file has no raster bands", hint: hint)
        }
        handle = h
        info = Dataset.readInfo(h, path: path)
        isFile = isPlainPath
    }

    /// Wraps a dataset GDAL made in memory (a warped VRT, a mosaic VRT); `name` stands for
    /// it in messages.
    init(handle: GDALDatasetH, name: String, retaining: [Dataset] = []) {
        self.handle = handle
        retained = retaining
        info = Dataset.readInfo(handle, path: name)
        isFile = false
    }

    /// Wraps a handle to a file opened before, whose `info` is already known (`ChipReopener`).
    init(handle: GDALDatasetH, knownInfo: RasterInfo) {
        self.handle = handle
        info = knownInfo
        isFile = true
    }

    /// A /vsimem file this dataset owns (e.g. rasterised labels), deleted when it closes.
    var removeOnClose: String?

    deinit {
        GDALClose(handle)
        if let removeOnClose { VSIUnlink(removeOnClose) }
    }

    // MARK: - Info

    private static func readInfo(_ h: GDALDatasetH, path: String) -> RasterInfo {
        let driver = GDALGetDatasetDriver(h).flatMap { GDALGetDriverShortName($0) }.map { String(cString: $0) } ?? "?"
        let width = Int(GDALGetRasterXSize(h)), height = Int(GDALGetRasterYSize(h))

        var gt = [Double](repeating: 0, count: 6)
        GDALRuntime.resetError()
        let hasGT = gt.withUnsafeMutableBufferPointer { GDALGetGeoTransform(h, $0.baseAddress) } == CE_None
        GDALRuntime.resetError()
        let crs = SpatialReference(handle: GDALGetSpatialRef(h))
        let gcpCount = Int(GDALGetGCPCount(h))
        let gcpCRS = gcpCount > 0 ? SpatialReference(handle: GDALGetGCPSpatialRef(h)) : nil

        let structure = metadataList(h, domain: "IMAGE_STRUCTURE")
        let plain = metadataList(h, domain: nil)

        var bands: [BandInfo] = []
        for i in 1...Int(GDALGetRasterCount(h)) {
            guard let b = GDALGetRasterBand(h, Int32(i)) else { continue }
            bands.append(readBandInfo(b, index: i, path: path))
        }
        var overviews: [[Int]] = []
        if let b1 = GDALGetRasterBand(h, 1) {
            for o in 0..<GDALGetOverviewCount(b1) {
                if let ov = GDALGetOverview(b1, o) {
                    overviews.append([Int(GDALGetRasterBandXSize(ov)), Int(GDALGetRasterBandYSize(ov))])
                }
            }
        }
        // A geotransform of (0,1,0,0,0,1) reported without error is still "no georeferencing"
        // for files that have no CRS either (e.g. PNG chips).
        var transform: GeoTransform? = hasGT ? GeoTransform(gt) : nil
        if let t = transform, t.isIdentity, crs == nil { transform = nil }
        return RasterInfo(
            path: path, driver: driver, width: width, height: height, bands: bands,
            geoTransform: transform, crs: crs, gcpCount: gcpCount, gcpCRS: gcpCRS,
            overviews: overviews, interleave: structure["INTERLEAVE"], compression: structure["COMPRESSION"],
            pixelIs: plain["AREA_OR_POINT"])
    }

    private static func readBandInfo(_ b: GDALRasterBandH, index: Int, path: String) -> BandInfo {
        var hasNodata: Int32 = 0
        let nd = GDALGetRasterNoDataValue(b, &hasNodata)
        var bw: Int32 = 0, bh: Int32 = 0
        GDALGetBlockSize(b, &bw, &bh)
        var hasScale: Int32 = 0, hasOffset: Int32 = 0
        let scale = GDALGetRasterScale(b, &hasScale), offset = GDALGetRasterOffset(b, &hasOffset)
        var categories: [String] = []
        if var list = GDALGetRasterCategoryNames(b) {
            while let item = list.pointee { categories.append(String(cString: item)); list += 1 }
        }
        let desc = GDALGetDescription(b).map { String(cString: $0) } ?? ""
        return BandInfo(
            index: index, path: path, sourceBand: index,
            dataType: DataType(gdal: GDALGetRasterDataType(b)),
            nodata: hasNodata != 0 ? nd : nil,
            maskFlags: MaskFlags(rawValue: GDALGetMaskFlags(b)),
            colorInterpretation: String(cString: GDALGetColorInterpretationName(GDALGetRasterColorInterpretation(b))),
            description: desc, blockWidth: Int(bw), blockHeight: Int(bh),
            overviewCount: Int(GDALGetOverviewCount(b)),
            scale: hasScale != 0 && scale != 1 ? scale : nil,
            offset: hasOffset != 0 && offset != 0 ? offset : nil,
            hasColorTable: GDALGetRasterColorTable(b) != nil,
            hasAttributeTable: GDALGetDefaultRAT(b) != nil,
            categoryNames: categories)
    }

    static func metadataList(_ h: GDALMajorObjectH, domain: String?) -> [String: String] {
        var out: [String: String] = [:]
        guard var list = GDALGetMetadata(h, domain) else { return out }
        while let item = list.pointee {
            let s = String(cString: item)
            if let eq = s.firstIndex(of: "=") {
                out[String(s[..<eq])] = String(s[s.index(after: eq)...])
            }
            list += 1
        }
        return out
    }

    /// A metadata item of the dataset (GDALGetMetadataItem).
    public func metadataItem(_ key: String, domain: String? = nil) -> String? {
        GDALGetMetadataItem(handle, key, domain).map { String(cString: $0) }
    }

    // MARK: - Reading

    /// Reads `window` (it may reach outside the raster: those pixels are invalid) of `bands`
    /// (default: all data bands) into `block`: values as Float, validity from nodata, NaN and
    /// mask bands; invalid pixels read as 0 in every band.
    public func read(window: Window, bands: [Int]?, into block: inout RasterBlock) throws {
        let selection = try resolveBands(bands)
        try checkReadable(selection, window: window)
        block.reshape(window: window, bandCount: selection.count)
        guard let inside = window.intersection(Window(width: info.width, height: info.height)) else {
            block.values.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            block.valid.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            return
        }
        try block.values.withUnsafeMutableBufferPointer { vals in
            try block.valid.withUnsafeMutableBufferPointer { valid in
                markInside(inside, of: window, values: vals, valid: valid)
                try readValues(selection, window: window, inside: inside, values: vals.baseAddress!, valid: valid.baseAddress!)
                try applyMasks(selection, window: window, inside: inside, valid: valid.baseAddress!)
                // Nodata values and NaN never reach statistics or a network.
                let n = window.pixelCount
                for pos in 0..<selection.count {
                    let plane = vals.baseAddress! + pos * n
                    for i in 0..<n where valid[i] == 0 { plane[i] = 0 }
                }
            }
        }
    }

    /// Refuses complex and unknown pixel types, and windows of negative size.
    private func checkReadable(_ selection: [Int], window: Window) throws {
        for b in selection where info.bands[b - 1].dataType.isComplex || info.bands[b - 1].dataType == .unknown {
            throw RasterError(.unsupportedType, path: info.path, band: b,
                              problem: "pixel type \(info.bands[b - 1].dataType.rawValue) is not supported",
                              hint: "Convert the band to a real type first, e.g. `gdal_translate -ot Float32` (for complex data, compute the amplitude)")
        }
        guard window.width >= 0, window.height >= 0 else {
            throw RasterError(.badWindow, path: info.path, problem: "window \(window) has a negative size")
        }
    }

    /// Valid = 1 where `window` lies inside the raster (`inside`), 0 (and value 0) outside.
    private func markInside(_ inside: Window, of window: Window, values: UnsafeMutableBufferPointer<Float>,
                            valid: UnsafeMutableBufferPointer<UInt8>) {
        guard inside != window else { valid.update(repeating: 1); return }
        values.update(repeating: 0)
        valid.update(repeating: 0)
        let dc = inside.column - window.column, dr = inside.row - window.row
        for r in 0..<inside.height {
            valid.baseAddress!.advanced(by: (r + dr) * window.width + dc).update(repeating: 1, count: inside.width)
        }
    }

    /// Pixel values of every band (planes of `window`'s size), invalid where nodata or NaN. Types
    /// exact in Float32 are read straight into the output in one call; wider ones through Float64
    /// so nodata compares exactly.
    private func readValues(_ selection: [Int], window: Window, inside: Window, values: UnsafeMutablePointer<Float>,
                            valid: UnsafeMutablePointer<UInt8>) throws {
        let W = window.width, n = window.pixelCount
        let dc = inside.column - window.column, dr = inside.row - window.row
        guard selection.allSatisfy({ info.bands[$0 - 1].dataType.isExactInFloat32 }) else {
            for (pos, b) in selection.enumerated() {
                try readWide(band: info.bands[b - 1], inside: inside, plane: values + pos * n, valid: valid, dc: dc, dr: dr, W: W)
            }
            return
        }
        var map = selection.map { Int32($0) }
        try map.withUnsafeMutableBufferPointer { bandMap in
            try rasterIO(inside, into: UnsafeMutableRawPointer(values + dr * W + dc), type: GDT_Float32, bandMap: bandMap.baseAddress,
                         pixelSpace: 4, lineSpace: 4 * W, bandSpace: 4 * n, band: nil, count: bandMap.count)
        }
        for (pos, b) in selection.enumerated() {
            markInvalid(band: info.bands[b - 1], plane: values + pos * n, valid: valid, inside: inside, dc: dc, dr: dr, W: W)
        }
    }

    /// Mask bands: per-dataset masks and alpha are read once, others per band; then the
    /// validity band (`validityBand`, e.g. a warped source's alpha) if any.
    private func applyMasks(_ selection: [Int], window: Window, inside: Window, valid: UnsafeMutablePointer<UInt8>) throws {
        let W = window.width, dc = inside.column - window.column, dr = inside.row - window.row
        var readDatasetMask = false
        for b in selection {
            let band = info.bands[b - 1]
            guard band.maskFlags.needsMaskBand else { continue }
            if band.maskFlags.contains(.perDataset) {
                if readDatasetMask { continue }
                readDatasetMask = true
            }
            try applyMaskBand(band: band, inside: inside, valid: valid, dc: dc, dr: dr, W: W)
        }
        if let validityBand, let bh = GDALGetRasterBand(handle, Int32(validityBand)) {
            try applyMask(bh, band: validityBand, inside: inside, valid: valid, dc: dc, dr: dr, W: W)
        }
    }

    /// GDALDatasetRasterIOEx (band map) or GDALRasterIOEx (one band) for a read of `window`.
    private func rasterIO(_ window: Window, into buffer: UnsafeMutableRawPointer, type: GDALDataType,
                          bandMap: UnsafeMutablePointer<Int32>?, pixelSpace: Int, lineSpace: Int,
                          bandSpace: Int, band: Int?, count: Int = 1) throws {
        var extra = GDALRasterIOExtraArg()
        ts_init_rasterio_extra_arg(&extra)
        GDALRuntime.resetError()
        let err: CPLErr
        if let band {
            guard let bh = GDALGetRasterBand(handle, Int32(band)) else {
                throw RasterError(.badBand, path: info.path, band: band, problem: "band \(band) does not exist")
            }
            err = GDALRasterIOEx(bh, GF_Read, Int32(window.column), Int32(window.row), Int32(window.width), Int32(window.height),
                                 buffer, Int32(window.width), Int32(window.height), type,
                                 GSpacing(pixelSpace), GSpacing(lineSpace), &extra)
        } else {
            err = GDALDatasetRasterIOEx(handle, GF_Read, Int32(window.column), Int32(window.row), Int32(window.width), Int32(window.height),
                                        buffer, Int32(window.width), Int32(window.height), type,
                                        Int32(count), bandMap, GSpacing(pixelSpace), GSpacing(lineSpace), GSpacing(bandSpace), &extra)
        }
        if err != CE_None {
            throw RasterError(.readFailed, path: info.path, band: band,
                              problem: "reading \(window) failed",
                              gdalMessage: GDALRuntime.lastErrorMessage(),
                              hint: "The file may be truncated or corrupt; check it with `gdalinfo -checksum`")
        }
    }

    /// Marks nodata and NaN pixels of one Float32 plane invalid.
    private func markInvalid(band: BandInfo, plane: UnsafeMutablePointer<Float>, valid: UnsafeMutablePointer<UInt8>,
                             inside: Window, dc: Int, dr: Int, W: Int) {
        let isFloat = band.dataType.isFloatingPoint
        guard band.nodata != nil || isFloat else { return }
        // Float32 bands compare with nodata rounded to Float32 (as GDAL's nodata mask does);
        // on integer bands a nodata value the type cannot hold (e.g. -9999 on Byte) never matches.
        var ndUsable: Float? = nil
        if let nd = band.nodata, !nd.isNaN {
            let f = Float(nd)
            if band.dataType == .float32 || Double(f) == nd { ndUsable = f }
        }
        for r in 0..<inside.height {
            let o = (r + dr) * W + dc
            let p = plane + o, m = valid + o
            for c in 0..<inside.width {
                let v = p[c]
                if v.isNaN || v == ndUsable { m[c] = 0 }
            }
        }
    }

    /// Reads one band of a type wider than Float32 through Float64.
    private func readWide(band: BandInfo, inside: Window, plane: UnsafeMutablePointer<Float>,
                          valid: UnsafeMutablePointer<UInt8>, dc: Int, dr: Int, W: Int) throws {
        let n = inside.pixelCount
        if scratchDouble.count < n { scratchDouble = [Double](repeating: 0, count: n) }
        try scratchDouble.withUnsafeMutableBufferPointer { tmp in
            try rasterIO(inside, into: UnsafeMutableRawPointer(tmp.baseAddress!), type: GDT_Float64, bandMap: nil,
                         pixelSpace: 8, lineSpace: 8 * inside.width, bandSpace: 0, band: band.sourceBand)
            let nd = band.nodata
            let ndIsNaN = nd?.isNaN ?? false
            for r in 0..<inside.height {
                let o = (r + dr) * W + dc
                let src = tmp.baseAddress! + r * inside.width
                for c in 0..<inside.width {
                    let v = src[c]
                    plane[o + c] = Float(v)
                    if v.isNaN || (nd != nil && !ndIsNaN && v == nd!) { valid[o + c] = 0 }
                }
            }
        }
    }

    /// Reads a band's mask (GDALGetMaskBand: explicit mask, per-dataset .msk, or alpha) and
    /// clears `valid` where it is 0.
    private func applyMaskBand(band: BandInfo, inside: Window, valid: UnsafeMutablePointer<UInt8>,
                               dc: Int, dr: Int, W: Int) throws {
        guard let bh = GDALGetRasterBand(handle, Int32(band.sourceBand)), let mh = GDALGetMaskBand(bh) else { return }
        try applyMask(mh, band: band.sourceBand, inside: inside, valid: valid, dc: dc, dr: dr, W: W)
    }

    /// Clears `valid` where the band `mh` (a mask, or a warped VRT's alpha band) reads 0.
    private func applyMask(_ mh: GDALRasterBandH, band: Int, inside: Window, valid: UnsafeMutablePointer<UInt8>,
                           dc: Int, dr: Int, W: Int) throws {
        let n = inside.pixelCount
        if scratchMask.count < n { scratchMask = [UInt8](repeating: 0, count: n) }
        var extra = GDALRasterIOExtraArg()
        ts_init_rasterio_extra_arg(&extra)
        GDALRuntime.resetError()
        let err = scratchMask.withUnsafeMutableBufferPointer { tmp in
            GDALRasterIOEx(mh, GF_Read, Int32(inside.column), Int32(inside.row), Int32(inside.width), Int32(inside.height),
                           tmp.baseAddress, Int32(inside.width), Int32(inside.height), GDT_Byte, 1, GSpacing(inside.width), &extra)
        }
        if err != CE_None {
            throw RasterError(.readFailed, path: info.path, band: band,
                              problem: "reading the mask of \(inside) failed", gdalMessage: GDALRuntime.lastErrorMessage(),
                              hint: "The mask or alpha band may be corrupt; check it with `gdalinfo -checksum`")
        }
        scratchMask.withUnsafeBufferPointer { tmp in
            for r in 0..<inside.height {
                let o = (r + dr) * W + dc
                let src = tmp.baseAddress! + r * inside.width
                for c in 0..<inside.width where src[c] == 0 { valid[o + c] = 0 }
            }
        }
    }
}
