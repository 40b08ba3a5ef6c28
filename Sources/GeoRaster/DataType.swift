import CGDAL

/// A band's pixel type, as GDAL names it.
public enum DataType: String, Sendable, Codable, CaseIterable {
    case byte = "Byte", int8 = "Int8", uint16 = "UInt16", int16 = "Int16"
    case uint32 = "UInt32", int32 = "Int32", uint64 = "UInt64", int64 = "Int64"
    case float32 = "Float32", float64 = "Float64"
    case cint16 = "CInt16", cint32 = "CInt32", cfloat32 = "CFloat32", cfloat64 = "CFloat64"
    case unknown = "Unknown"

    init(gdal: GDALDataType) {
        let name = GDALGetDataTypeName(gdal).map { String(cString: $0) } ?? "Unknown"
        self = DataType(rawValue: name) ?? .unknown
    }

    var gdal: GDALDataType { GDALGetDataTypeByName(rawValue) }

    public var isComplex: Bool { [.cint16, .cint32, .cfloat32, .cfloat64].contains(self) }
    public var isFloatingPoint: Bool { [.float32, .float64, .cfloat32, .cfloat64].contains(self) }
    public var byteSize: Int { Int(GDALGetDataTypeSizeBytes(gdal)) }

    /// Types whose every value converts to Float32 exactly, so reading straight into Float32
    /// and comparing with nodata there is exact.
    var isExactInFloat32: Bool { [.byte, .int8, .uint16, .int16, .float32].contains(self) }
}

/// Swift scalars that can be written to or read from a band directly.
public protocol RasterScalar: Sendable {
    static var gdalType: GDALDataType { get }
}
extension UInt8: RasterScalar { public static var gdalType: GDALDataType { GDT_Byte } }
extension UInt16: RasterScalar { public static var gdalType: GDALDataType { GDT_UInt16 } }
extension Int16: RasterScalar { public static var gdalType: GDALDataType { GDT_Int16 } }
extension Int32: RasterScalar { public static var gdalType: GDALDataType { GDT_Int32 } }
extension UInt32: RasterScalar { public static var gdalType: GDALDataType { GDT_UInt32 } }
extension Float: RasterScalar { public static var gdalType: GDALDataType { GDT_Float32 } }
extension Double: RasterScalar { public static var gdalType: GDALDataType { GDT_Float64 } }
