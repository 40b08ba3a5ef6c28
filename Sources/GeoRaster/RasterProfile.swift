/// GeoTIFF compression codecs offered for outputs.
public enum Compression: String, Sendable, Codable, CaseIterable {
    case none = "NONE", deflate = "DEFLATE", zstd = "ZSTD", lzw = "LZW"
}

/// TIFF predictor: `automatic` picks horizontal differencing for integers and the
/// floating-point predictor for floats (when compressing).
public enum Predictor: String, Sendable, Codable {
    case none, horizontal, floatingPoint = "floating_point", automatic
}

/// Overview resampling. Class maps use `mode` or `nearest`, never averaging.
public enum OverviewResampling: String, Sendable, Codable {
    case nearest = "NEAREST", mode = "MODE", average = "AVERAGE"
}

public enum BigTIFFMode: String, Sendable, Codable {
    case yes = "YES", no = "NO", ifSafer = "IF_SAFER", ifNeeded = "IF_NEEDED"
}

/// How a GeoTIFF is laid out on disk.
public struct CreationOptions: Hashable, Sendable {
    /// Tile edge in pixels (256 or 512 are usual; a multiple of 16).
    public var blockSize = 256
    public var compression = Compression.deflate
    public var predictor = Predictor.automatic
    public var bigTIFF = BigTIFFMode.ifSafer
    /// Write a Cloud-Optimised GeoTIFF through GDAL's COG driver.
    public var cog = false
    /// Internal overviews with this resampling; nil for none.
    public var overviews: OverviewResampling? = nil

    public init(blockSize: Int = 256, compression: Compression = .deflate, predictor: Predictor = .automatic,
                bigTIFF: BigTIFFMode = .ifSafer, cog: Bool = false, overviews: OverviewResampling? = nil) {
        self.blockSize = blockSize
        self.compression = compression
        self.predictor = predictor
        self.bigTIFF = bigTIFF
        self.cog = cog
        self.overviews = overviews
    }
}

/// Everything needed to create a raster: size, bands, type, grid, nodata and layout.
/// Start from a source's profile (`RasterProfile(like:)`) and change only what differs.
public struct RasterProfile: Hashable, Sendable {
    public var width: Int
    public var height: Int
    public var bandCount: Int
    public var dataType: DataType
    public var geoTransform: GeoTransform?
    public var crs: SpatialReference?
    public var nodata: Double?
    public var options: CreationOptions

    public init(width: Int, height: Int, bandCount: Int = 1, dataType: DataType = .byte,
                geoTransform: GeoTransform? = nil, crs: SpatialReference? = nil,
                nodata: Double? = nil, options: CreationOptions = CreationOptions()) {
        self.width = width
        self.height = height
        self.bandCount = bandCount
        self.dataType = dataType
        self.geoTransform = geoTransform
        self.crs = crs
        self.nodata = nodata
        self.options = options
    }

    /// The grid (size, geotransform, CRS) of `info`, with the given bands and type.
    public init(like info: RasterInfo, bandCount: Int = 1, dataType: DataType = .byte,
                nodata: Double? = nil, options: CreationOptions = CreationOptions()) {
        self.init(width: info.width, height: info.height, bandCount: bandCount, dataType: dataType,
                  geoTransform: info.geoTransform, crs: info.crs, nodata: nodata, options: options)
    }

    var grid: RasterGrid { RasterGrid(width: width, height: height, geoTransform: geoTransform, crs: crs) }
}
