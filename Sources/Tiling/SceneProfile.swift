import Core
import GeoRaster

/// What the training scenes were like — band count, data type, pixel size — kept in the
/// model bundle so `predict` refuses a scene of another kind (or warns with
/// `--allow-mismatch`) instead of mapping it silently.
public struct SceneProfile: Codable, Sendable, Equatable {
    /// Data bands (alpha excluded) of the scene, before any band selection.
    public var bandCount: Int
    /// GDAL data type name of the first band, e.g. "UInt16".
    public var dataType: String
    /// Pixel width in CRS units; nil without a geotransform.
    public var pixelSize: Double?
    /// Whether the CRS is geographic (pixel size in degrees).
    public var geographic: Bool
    /// The first band's type as read when the warper reads it in another (Float32), else nil;
    /// not kept in bundles. Bundles trained on warped first bands recorded that type, so
    /// either type matches.
    public var readType: String? = nil

    enum CodingKeys: String, CodingKey { case bandCount, dataType, pixelSize, geographic }

    public init(bandCount: Int, dataType: String, pixelSize: Double?, geographic: Bool = false) {
        self.bandCount = bandCount
        self.dataType = dataType
        self.pixelSize = pixelSize
        self.geographic = geographic
    }

    public init(info: RasterInfo) {
        bandCount = info.bands.filter { !$0.isAlpha }.count
        dataType = info.bands.first?.fileType.rawValue ?? DataType.unknown.rawValue
        readType = info.bands.first.flatMap { $0.fileDataType == nil ? nil : $0.dataType.rawValue }
        pixelSize = info.geoTransform.map { abs($0.pixelWidth) }
        geographic = info.crs?.isGeographic ?? false
    }

    /// "floating point" or "16-bit integer": types of one family hold values on one scale.
    static func family(_ typeName: String) -> String {
        guard let t = DataType(rawValue: typeName), t != .unknown else { return typeName }
        return t.isFloatingPoint ? "floating point" : "\(t.byteSize * 8)-bit integer"
    }

    /// The differences that make a scene unlike the training scenes: data type family, and
    /// pixel size beyond a factor 1.5 (compared only when both are in the same kind of CRS).
    public func mismatches(with scene: SceneProfile) -> [String] {
        var out: [String] = []
        let trained = SceneProfile.family(dataType)
        if SceneProfile.family(scene.dataType) != trained && scene.readType.map(SceneProfile.family) != trained {
            out.append("data type \(scene.dataType) (\(SceneProfile.family(scene.dataType))) but the model was trained on \(dataType) (\(SceneProfile.family(dataType)))")
        }
        if let p = pixelSize, let q = scene.pixelSize, p > 0, q > 0, geographic == scene.geographic, max(p / q, q / p) > 1.5 {
            out.append("pixel size \(q.shortText) but the model was trained on \(p.shortText) (more than 1.5× apart)")
        }
        return out
    }
}

extension Double {
    /// "30", "0.00027", "2.5": a number as people write it (6 significant digits).
    public var shortText: String { String(format: "%g", self) }
}
