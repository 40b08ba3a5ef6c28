/// The JSON form of `RasterInfo` (used by `terraseg info --json` and run reports).
/// Keys are snake_case; absent georeferencing is written as null, never omitted.
extension RasterInfo: Encodable {
    enum CodingKeys: String, CodingKey {
        case path, driver, width, height, bandCount = "band_count", bands, geotransform, crs
        case georeferenced, gcpCount = "gcp_count", gcpCrs = "gcp_crs", overviews, interleave, compression
        case pixelIs = "pixel_is"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(driver, forKey: .driver)
        try c.encode(width, forKey: .width)
        try c.encode(height, forKey: .height)
        try c.encode(bandCount, forKey: .bandCount)
        try c.encode(bands, forKey: .bands)
        try c.encode(geoTransform?.coefficients, forKey: .geotransform)
        try c.encode(crs, forKey: .crs)
        try c.encode(isGeoreferenced, forKey: .georeferenced)
        try c.encode(gcpCount, forKey: .gcpCount)
        try c.encode(gcpCRS, forKey: .gcpCrs)
        try c.encode(overviews, forKey: .overviews)
        try c.encode(interleave, forKey: .interleave)
        try c.encode(compression, forKey: .compression)
        try c.encode(pixelIs, forKey: .pixelIs)
    }
}

extension BandInfo: Encodable {
    enum CodingKeys: String, CodingKey {
        case index, path, sourceBand = "source_band", type, nodata, maskFlags = "mask_flags"
        case colorInterpretation = "color_interpretation", description, block, overviewCount = "overview_count"
        case scale, offset, hasColorTable = "has_color_table", hasAttributeTable = "has_attribute_table"
        case categoryNames = "category_names"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encode(path, forKey: .path)
        try c.encode(sourceBand, forKey: .sourceBand)
        try c.encode(dataType.rawValue, forKey: .type)
        try c.encode(nodata, forKey: .nodata)
        try c.encode(maskFlags.names, forKey: .maskFlags)
        try c.encode(colorInterpretation, forKey: .colorInterpretation)
        try c.encode(description, forKey: .description)
        try c.encode([blockWidth, blockHeight], forKey: .block)
        try c.encode(overviewCount, forKey: .overviewCount)
        try c.encode(scale, forKey: .scale)
        try c.encode(offset, forKey: .offset)
        try c.encode(hasColorTable, forKey: .hasColorTable)
        try c.encode(hasAttributeTable, forKey: .hasAttributeTable)
        if !categoryNames.isEmpty { try c.encode(categoryNames, forKey: .categoryNames) }
    }
}
