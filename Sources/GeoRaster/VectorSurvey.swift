import CGDAL
import Foundation

/// One pass over a vector layer before it is rasterised: how many features it has, how many
/// lie wholly outside the image (envelopes compared in the image's CRS), whether the layer
/// has a CRS, and the attribute values of the features inside, with their counts.
struct VectorSurvey {
    var total = 0
    var outside = 0
    var layerHasCRS = false
    /// Attribute value (as text) → number of features inside the image.
    var values: [String: Int] = [:]
    /// Union of the features' envelopes in the image's CRS: minX, minY, maxX, maxY.
    var extent = [Double.infinity, .infinity, -Double.infinity, -Double.infinity]
    let image: [Double]

    init(layer lh: OGRLayerH, attribute: String?, grid: RasterGrid, path: String) throws {
        guard let gt = grid.geoTransform else {
            throw RasterError(.notGeoreferenced, path: path, problem: "the image has no geotransform, so vector labels cannot be placed on it",
                              hint: "Use a label raster instead, or georeference the image")
        }
        image = VectorSurvey.bounds(gt.coefficients, width: grid.width, height: grid.height)
        let transform = VectorSurvey.transform(from: OGR_L_GetSpatialRef(lh), to: grid.crs)
        defer { if let transform { OCTDestroyCoordinateTransformation(transform) } }
        layerHasCRS = OGR_L_GetSpatialRef(lh) != nil
        let field = attribute.map { OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(lh), $0) } ?? -1
        OGR_L_ResetReading(lh)
        while let f = OGR_L_GetNextFeature(lh) {
            defer { OGR_F_Destroy(f) }
            total += 1
            guard let env = VectorSurvey.envelope(f, transform: transform),
                  env[0] <= image[2], env[2] >= image[0], env[1] <= image[3], env[3] >= image[1] else {
                outside += 1
                continue
            }
            extent = [min(extent[0], env[0]), min(extent[1], env[1]), max(extent[2], env[2]), max(extent[3], env[3])]
            if field >= 0 {
                let key = OGR_F_IsFieldSetAndNotNull(f, field) != 0 ? String(cString: OGR_F_GetFieldAsString(f, field)) : VectorLabels.nullValue
                values[key, default: 0] += 1
            }
        }
        OGR_L_ResetReading(lh)
    }

    /// minX, minY, maxX, maxY of the raster's four corners.
    static func bounds(_ c: [Double], width: Int, height: Int) -> [Double] {
        let corners = [(0.0, 0.0), (Double(width), 0.0), (0.0, Double(height)), (Double(width), Double(height))]
        let xs = corners.map { c[0] + $0.0 * c[1] + $0.1 * c[2] }, ys = corners.map { c[3] + $0.0 * c[4] + $0.1 * c[5] }
        return [xs.min()!, ys.min()!, xs.max()!, ys.max()!]
    }

    /// layer CRS → image CRS (x/y order), or nil when either is missing or they are the same.
    static func transform(from layerSRS: OGRSpatialReferenceH?, to crs: SpatialReference?) -> OGRCoordinateTransformationH? {
        guard let layerSRS, let crs, let target = OSRNewSpatialReference(crs.wkt), let source = OSRClone(layerSRS) else { return nil }
        defer { OSRDestroySpatialReference(target); OSRDestroySpatialReference(source) }
        OSRSetAxisMappingStrategy(source, OAMS_TRADITIONAL_GIS_ORDER)
        OSRSetAxisMappingStrategy(target, OAMS_TRADITIONAL_GIS_ORDER)
        guard OSRIsSame(source, target) == 0 else { return nil }
        return OCTNewCoordinateTransformation(source, target)
    }

    /// The feature's envelope (minX, minY, maxX, maxY) in the image's CRS; nil without a
    /// geometry or when it cannot be transformed.
    static func envelope(_ f: OGRFeatureH, transform: OGRCoordinateTransformationH?) -> [Double]? {
        guard let g = OGR_F_GetGeometryRef(f), OGR_G_IsEmpty(g) == 0 else { return nil }
        var env = OGREnvelope()
        if let transform {
            guard let copy = OGR_G_Clone(g) else { return nil }
            defer { OGR_G_DestroyGeometry(copy) }
            guard OGR_G_Transform(copy, transform) == OGRERR_NONE else { return nil }
            OGR_G_GetEnvelope(copy, &env)
        } else {
            OGR_G_GetEnvelope(g, &env)
        }
        return [env.MinX, env.MinY, env.MaxX, env.MaxY]
    }

    /// What to tell the user: a layer without a CRS, features outside the image; throws when
    /// no feature overlaps the image.
    func notices(layerName: String, path: String, grid: RasterGrid) throws -> [String] {
        let crsName = grid.crs?.shortName ?? "the image's coordinates"
        let assign = "assign the right CRS with `ogr2ogr -a_srs EPSG:<code> fixed.gpkg \(path)`"
        guard total > 0 else {
            throw RasterError(.invalidArgument, path: path, problem: "layer '\(layerName)' has no features", hint: "Give polygons with the labels of this scene")
        }
        guard outside < total else {
            func box(_ b: [Double]) -> String { String(format: "%.6g, %.6g – %.6g, %.6g", b[0], b[1], b[2], b[3]) }
            throw RasterError(.invalidArgument, path: path,
                              problem: "none of the \(total) features of layer '\(layerName)' overlaps the image (image: \(box(image)) in \(crsName))",
                              hint: layerHasCRS ? "Give the labels of this scene (check with `ogrinfo -so -al \(path)`)"
                                                : "The layer has no CRS, so its coordinates were read as \(crsName); \(assign)")
        }
        var out: [String] = []
        if !layerHasCRS && grid.crs != nil {
            out.append("\(path): layer '\(layerName)' has no CRS: its \(total) features are read in the image's CRS (\(crsName)); if that is wrong, \(assign)")
        }
        if outside > 0 {
            out.append("\(path): \(outside) of \(total) features lie wholly outside the image and are skipped; check that the labels belong to this scene")
        }
        return out
    }
}

/// Burns rules into an Int32 label raster one class at a time through a Byte mask, so that
/// pixels claimed by two classes are found (and left unlabelled), then gives the pixels no
/// feature claimed the background value. Works 256 rows at a time.
struct LabelBurner {
    let grid: RasterGrid
    let path: String
    static let unclaimed = Int32.min, overlap = Int32.min + 1

    /// Returns the number of overlap pixels and the /vsimem path of the finished raster.
    func burn(_ src: GDALDatasetH, layerName: String, rules: [VectorLabels.Rule], background: Int32?, fill: Int32) throws -> (pixels: Int, memPath: String) {
        let (dst, memPath) = try VectorLabels.labelRaster(onto: grid, fill: LabelBurner.unclaimed, path: path)
        var finished = false
        defer {
            GDALClose(dst)
            if !finished { VSIUnlink(memPath) }
        }
        let (mask, maskPath) = try VectorLabels.labelRaster(onto: grid, fill: 0, path: path, type: GDT_Byte)
        defer {
            GDALClose(mask)
            VSIUnlink(maskPath)
        }
        for rule in rules {
            _ = GDALFillRaster(GDALGetRasterBand(mask, 1), 0, 0)
            try VectorLabels.burn(src, into: mask, arguments: ["-l", layerName] + (rule.condition.map { ["-where", $0] } ?? []) + ["-burn", "1"],
                                  layerName: layerName, path: path)
            try rows(dst, mask: mask) { labels, claimed in
                for i in labels.indices where claimed[i] != 0 {
                    labels[i] = labels[i] == LabelBurner.unclaimed || labels[i] == rule.value ? rule.value : LabelBurner.overlap
                }
            }
        }
        var overlaps = 0
        try rows(dst, mask: nil) { labels, _ in
            for i in labels.indices {
                if labels[i] == LabelBurner.unclaimed { labels[i] = background ?? fill }
                else if labels[i] == LabelBurner.overlap { labels[i] = fill; overlaps += 1 }
            }
        }
        _ = GDALSetRasterNoDataValue(GDALGetRasterBand(dst, 1), Double(fill))
        GDALRuntime.resetError()
        finished = true
        return (overlaps, memPath)
    }

    /// Runs `body` over the label raster (and the mask) in blocks of rows, writing the labels back.
    func rows(_ dst: GDALDatasetH, mask: GDALDatasetH?, _ body: (inout [Int32], [UInt8]) -> Void) throws {
        let w = grid.width, step = 256
        let labelBand = GDALGetRasterBand(dst, 1), maskBand = mask.map { GDALGetRasterBand($0, 1) }
        var labels: [Int32] = [], claimed: [UInt8] = []
        var row = 0
        while row < grid.height {
            let n = min(step, grid.height - row)
            if labels.count != w * n { labels = [Int32](repeating: 0, count: w * n) }
            var status = labels.withUnsafeMutableBytes {
                GDALRasterIO(labelBand, GF_Read, 0, Int32(row), Int32(w), Int32(n), $0.baseAddress, Int32(w), Int32(n), GDT_Int32, 0, 0)
            }
            if let maskBand, status == CE_None {
                if claimed.count != w * n { claimed = [UInt8](repeating: 0, count: w * n) }
                status = claimed.withUnsafeMutableBytes {
                    GDALRasterIO(maskBand, GF_Read, 0, Int32(row), Int32(w), Int32(n), $0.baseAddress, Int32(w), Int32(n), GDT_Byte, 0, 0)
                }
            }
            body(&labels, claimed)
            if status == CE_None {
                status = labels.withUnsafeMutableBytes {
                    GDALRasterIO(labelBand, GF_Write, 0, Int32(row), Int32(w), Int32(n), $0.baseAddress, Int32(w), Int32(n), GDT_Int32, 0, 0)
                }
            }
            guard status == CE_None else {
                throw RasterError(.writeFailed, path: path, problem: "cannot build the label raster in memory", gdalMessage: GDALRuntime.lastErrorMessage())
            }
            row += n
        }
    }
}
