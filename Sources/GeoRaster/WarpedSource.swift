import CGDAL
import Core
import Foundation

extension Dataset {
    /// This dataset read onto `grid` through GDAL's warper: a warped VRT
    /// (GDALCreateWarpedVRT) whose blocks are warped as windows are read, so a band is never
    /// held whole. An alpha band marks the pixels the source covers with valid data;
    /// `nodata` (or the bands' own) marks source pixels to leave out. Kernels that
    /// interpolate work in Float32 (no rounding to the source's integer type).
    public func warped(onto grid: RasterGrid, resampling: Resampling, nodata: Double? = nil) throws -> Dataset {
        guard let dstTransform = grid.geoTransform, let srcTransform = info.geoTransform else {
            throw RasterError(.notGeoreferenced, path: info.path, problem: "cannot be read onto another grid without a geotransform",
                              hint: "Give sources that are georeferenced (`gdalinfo` shows an origin and pixel size)")
        }
        if (grid.crs == nil) != (info.crs == nil) {
            throw RasterError(.gridMismatch, path: info.path, problem: info.crs == nil ? "has no CRS while the scene grid has one" : "has a CRS while the scene grid has none",
                              hint: "Assign the CRS with `gdal_edit.py -a_srs EPSG:<code>`")
        }
        let bands = info.dataBandIndices
        guard let options = GDALCreateWarpOptions() else {
            throw RasterError(.invalidArgument, path: info.path, problem: "cannot allocate warp options")
        }
        defer { GDALDestroyWarpOptions(options) }
        let o = options
        o.pointee.hSrcDS = handle
        o.pointee.eResampleAlg = resampling.gdal
        let types = Set(bands.map { info.bands[$0 - 1].dataType })
        o.pointee.eWorkingDataType = !resampling.keepsValues ? GDT_Float32 : types.count == 1 ? types.first!.gdal : GDT_Float64
        o.pointee.nBandCount = Int32(bands.count)
        o.pointee.panSrcBands = Self.cArray(bands.map { Int32($0) })
        o.pointee.panDstBands = Self.cArray((1...bands.count).map { Int32($0) })
        o.pointee.nDstAlphaBand = Int32(bands.count + 1)
        let sourceNodata = bands.map { nodata ?? info.bands[$0 - 1].nodata }
        if sourceNodata.contains(where: { $0 != nil }) {
            o.pointee.padfSrcNoDataReal = Self.cArray(sourceNodata.map { $0 ?? .nan })
        }
        o.pointee.papszWarpOptions = CSLSetNameValue(o.pointee.papszWarpOptions, "INIT_DEST", "0")
        var src = srcTransform.coefficients, dst = dstTransform.coefficients
        GDALRuntime.resetError()
        guard let transformer = GDALCreateGenImgProjTransformer3(info.crs?.wkt, &src, grid.crs?.wkt, &dst) else {
            throw RasterError(.gridMismatch, path: info.path, problem: "cannot map \(info.crs?.shortName ?? "its CRS") onto \(grid.crs?.shortName ?? "the scene grid")",
                              gdalMessage: GDALRuntime.lastErrorMessage(), hint: "Check both CRSs with `gdalsrsinfo`")
        }
        o.pointee.pfnTransformer = GDALGenImgProjTransform
        o.pointee.pTransformerArg = transformer  // owned by the warped VRT from here on
        GDALRuntime.resetError()
        guard let vrt = GDALCreateWarpedVRT(handle, Int32(grid.width), Int32(grid.height), &dst, options) else {
            GDALDestroyGenImgProjTransformer(transformer)
            throw RasterError(.openFailed, path: info.path, problem: "GDAL cannot warp this file onto the scene grid",
                              gdalMessage: GDALRuntime.lastErrorMessage(), hint: "Check the file with `gdalinfo`; try `gdalwarp` by hand to see GDAL's complaint")
        }
        // The warped VRT takes a reference to this dataset; `retaining` keeps the Swift owner
        // alive until the VRT is closed first.
        let warped = Dataset(handle: vrt, name: info.path, retaining: [self])
        // The alpha band alone says what is valid: the nodata GDAL copies from the source
        // would also match warped values that merely equal it.
        warped.validityBand = bands.count + 1
        for (i, b) in bands.enumerated() {
            warped.info.bands[i].maskFlags = .allValid
            warped.info.bands[i].nodata = nil
            let own = info.bands[b - 1].fileType
            if own != warped.info.bands[i].dataType { warped.info.bands[i].fileDataType = own }
        }
        return warped
    }

    /// Several files of one band (adjacent scenes) as one mosaic: a VRT built in memory by
    /// GDALBuildVRT; where files overlap, the later one wins.
    public static func mosaic(_ paths: [String], nodata: Double? = nil) throws -> Dataset {
        GDALRuntime.ensureInitialized()
        for p in paths { _ = try Dataset(path: p) }  // each readable, with its own message if not
        var args = ["-resolution", "highest"]
        if let nodata { args += ["-srcnodata", String(nodata), "-vrtnodata", String(nodata)] }
        let argv = GDALRuntime.stringList(args)
        defer { CSLDestroy(argv) }
        guard let options = GDALBuildVRTOptionsNew(argv, nil) else {
            throw RasterError(.invalidArgument, path: paths.joined(separator: " + "), problem: "cannot prepare the mosaic options")
        }
        defer { GDALBuildVRTOptionsFree(options) }
        let names = GDALRuntime.stringList(paths)
        defer { CSLDestroy(names) }
        var usageError: Int32 = 0
        GDALRuntime.resetError()
        let name = paths.joined(separator: " + ")
        guard let h = GDALBuildVRT("", Int32(paths.count), nil, UnsafeRawPointer(names)?.assumingMemoryBound(to: UnsafePointer<CChar>?.self), options, &usageError) else {
            throw RasterError(.openFailed, path: name, problem: "GDAL cannot mosaic these files",
                              gdalMessage: GDALRuntime.lastErrorMessage(),
                              hint: "Files of one band must share CRS and band count; reproject them with `gdalwarp` first")
        }
        return Dataset(handle: h, name: name)
    }

    /// Writes a VRT mosaic of `paths` (GDALBuildVRT, sources named relative to the VRT when
    /// they lie beside it) to `path`: built under an exclusive temporary name, then renamed
    /// into place (`AtomicFile`). The files must share CRS and band count.
    public static func writeMosaicVRT(_ paths: [String], to path: String) throws {
        GDALRuntime.ensureInitialized()
        let tmp = try AtomicFile.reserveTemporaryFile(for: path, suffix: ".vrt")
        let argv = GDALRuntime.stringList(["-resolution", "highest"])
        defer { CSLDestroy(argv) }
        let names = GDALRuntime.stringList(paths)
        defer { CSLDestroy(names) }
        var usageError: Int32 = 0
        GDALRuntime.resetError()
        let options = GDALBuildVRTOptionsNew(argv, nil)
        defer { if let options { GDALBuildVRTOptionsFree(options) } }
        guard let options, let h = GDALBuildVRT(tmp, Int32(paths.count), nil, UnsafeRawPointer(names)?.assumingMemoryBound(to: UnsafePointer<CChar>?.self),
                                                options, &usageError) else {
            unlink(tmp)
            throw RasterError(.createFailed, path: path, problem: "GDAL cannot build the mosaic of \(paths.count) files",
                              gdalMessage: GDALRuntime.lastErrorMessage(), hint: "The maps must share CRS and band count; check them with `gdalinfo`")
        }
        GDALClose(h)  // writes the VRT
        try AtomicFile.moveIntoPlace(tmp, path)
    }

    /// A C array GDAL frees (CPLMalloc).
    static func cArray<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
        let p = CPLMalloc(MemoryLayout<T>.stride * values.count)!.assumingMemoryBound(to: T.self)
        for (i, v) in values.enumerated() { p[i] = v }
        return p
    }
}
