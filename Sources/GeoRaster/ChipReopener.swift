import CGDAL
import Core
import Foundation

/// Opens a file again, the way it was first opened, at a fraction of `Dataset(path:)`'s cost: a
/// tile-set chip read from disk every epoch is reopened thousands of times. The first open
/// learnt the file's `info` (CRS identification through PROJ, metadata, band details) and the
/// sidecar files GDAL used (.aux.xml, .msk, .ovr); a reopen asks GDAL's driver of the first
/// open directly, gives it those sidecars as the folder's listing (GDALOpenEx's sibling files,
/// so GDAL neither lists a folder of thousands of chips nor probes for other sidecars) and
/// checks only that size, bands and pixel types are unchanged.
public struct ChipReopener: Sendable {
    public let info: RasterInfo
    /// Names (no folder) of the files GDAL read for the first open: the file and its sidecars.
    public let siblings: [String]

    /// Remembers how `dataset`, opened from a file by `Dataset(path:)`, was opened.
    public init(_ dataset: Dataset) {
        info = dataset.info
        var names: [String] = []
        if let list = GDALGetFileList(dataset.handle) {
            defer { CSLDestroy(list) }
            let folder = (info.path as NSString).deletingLastPathComponent
            var item = list
            while let p = item.pointee {
                let path = String(cString: p)
                if (path as NSString).deletingLastPathComponent == folder { names.append((path as NSString).lastPathComponent) }
                item += 1
            }
        }
        siblings = names
    }

    /// The file opened again; refused when it no longer matches the first open.
    public func open() throws -> Dataset {
        GDALRuntime.ensureInitialized()
        GDALRuntime.resetError()
        let drivers = GDALRuntime.stringList([info.driver]), listing = GDALRuntime.stringList(siblings)
        // An empty listing is a list with no entry, not NULL (NULL asks GDAL to list the folder).
        let empty = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: 1)
        empty.initialize(to: nil)
        defer { CSLDestroy(drivers); CSLDestroy(listing); empty.deallocate() }
        let flags = UInt32(GDAL_OF_RASTER | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR)
        guard let h = GDALOpenEx(info.path, flags, constList(drivers), nil, constList(listing ?? empty)) else {
            throw RasterError(.openFailed, path: info.path, problem: "GDAL cannot open this file again (it opened at the start of the run)",
                              gdalMessage: GDALRuntime.lastErrorMessage(),
                              hint: "Leave the tile set's files in place while training runs; check the file with `gdalinfo \(info.path)`")
        }
        if let change = change(h) {
            GDALClose(h)
            throw RasterError(.openFailed, path: info.path, problem: "the file changed while training ran: \(change)",
                              hint: "Leave the tile set's files unchanged while training runs, then train again")
        }
        return Dataset(handle: h, knownInfo: info)
    }

    private func constList(_ list: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> UnsafePointer<UnsafePointer<CChar>?>? {
        list.map { UnsafeRawPointer($0).assumingMemoryBound(to: UnsafePointer<CChar>?.self) }
    }

    /// What differs between the file opened now and `info` (size, band count, pixel types), or nil.
    func change(_ h: GDALDatasetH) -> String? {
        let width = Int(GDALGetRasterXSize(h)), height = Int(GDALGetRasterYSize(h)), count = Int(GDALGetRasterCount(h))
        if width != info.width || height != info.height || count != info.bands.count {
            return "it is \(width)×\(height) with \(count) band(s), it was \(info.width)×\(info.height) with \(info.bands.count)"
        }
        for band in info.bands {
            let type = DataType(gdal: GDALGetRasterDataType(GDALGetRasterBand(h, Int32(band.index))))
            if type != band.dataType { return "band \(band.index) is \(type.rawValue), it was \(band.dataType.rawValue)" }
        }
        return nil
    }
}
