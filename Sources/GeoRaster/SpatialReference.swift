import Foundation
import CGDAL

/// A coordinate reference system as reported by GDAL: WKT, and the EPSG code when GDAL can
/// identify one.
public struct SpatialReference: Hashable, Sendable, Codable {
    /// WKT 1 (GDAL's default export), as written into files.
    public var wkt: String
    /// e.g. "WGS 84 / UTM zone 15N"
    public var name: String?
    /// Authority code, e.g. 32615, when known.
    public var epsg: Int?
    public var isGeographic: Bool
    /// Linear unit name of a projected CRS, e.g. "metre".
    public var linearUnits: String?
    /// The unit of its coordinates for messages: "metre", "degree", else "unit".
    public var unitName: String { linearUnits ?? (isGeographic ? "degree" : "unit") }
    /// For a CRS without an authority code: the closest EPSG entry GDAL finds and its
    /// confidence in percent (`gdalsrsinfo -e`); `epsg` is set only when that reaches 90.
    public var closestEPSG: Int?
    public var matchConfidence: Int?

    public init(wkt: String, name: String? = nil, epsg: Int? = nil, isGeographic: Bool = false, linearUnits: String? = nil) {
        self.wkt = wkt
        self.name = name
        self.epsg = epsg
        self.isGeographic = isGeographic
        self.linearUnits = linearUnits
    }

    /// Reads an OGRSpatialReferenceH without taking ownership.
    init?(handle: OGRSpatialReferenceH?) {
        guard let handle else { return nil }
        var wktPtr: UnsafeMutablePointer<CChar>? = nil
        guard OSRExportToWkt(handle, &wktPtr) == OGRERR_NONE, let wktPtr else { return nil }
        defer { ts_cpl_free(wktPtr) }
        wkt = String(cString: wktPtr)
        name = OSRGetName(handle).map { String(cString: $0) }
        isGeographic = OSRIsGeographic(handle) != 0
        if OSRIsProjected(handle) != 0 {
            var unit: UnsafeMutablePointer<CChar>? = nil
            _ = OSRGetLinearUnits(handle, &unit)
            linearUnits = unit.map { String(cString: $0) }
        }
        let found = SpatialReference.identify(handle, wkt: wkt)
        (epsg, closestEPSG, matchConfidence) = (found.epsg, found.closest, found.confidence)
    }

    /// What `identify` found for each WKT: a tile set of thousands of chips in one CRS asks
    /// PROJ once (its search for a CRS without a code takes a tenth of a second or more).
    nonisolated(unsafe) private static var identified: [String: (epsg: Int?, closest: Int?, confidence: Int?)] = [:]
    private static let identifiedLock = NSLock()

    /// The EPSG code of `handle` (its own, or a match of ≥ 90 % confidence), and its closest match.
    private static func identify(_ handle: OGRSpatialReferenceH, wkt: String) -> (epsg: Int?, closest: Int?, confidence: Int?) {
        if let known = identifiedLock.withLock({ identified[wkt] }) { return known }
        var found: (epsg: Int?, closest: Int?, confidence: Int?) = (nil, nil, nil)
        // Identify without modifying the caller's object.
        if let clone = OSRClone(handle) {
            defer { OSRDestroySpatialReference(clone) }
            GDALRuntime.resetError()
            _ = OSRAutoIdentifyEPSG(clone)
            GDALRuntime.resetError()
            if let auth = OSRGetAuthorityName(clone, nil), String(cString: auth) == "EPSG",
               let code = OSRGetAuthorityCode(clone, nil) {
                found.epsg = Int(String(cString: code))
            }
        }
        if found.epsg == nil {
            var count: Int32 = 0
            var confidences: UnsafeMutablePointer<Int32>? = nil
            GDALRuntime.resetError()
            if let matches = OSRFindMatches(handle, nil, &count, &confidences) {
                defer { OSRFreeSRSArray(matches); ts_cpl_free(confidences) }
                for i in 0..<Int(count) {
                    guard let m = matches[i], let auth = OSRGetAuthorityName(m, nil), String(cString: auth) == "EPSG",
                          let code = OSRGetAuthorityCode(m, nil), let value = Int(String(cString: code)) else { continue }
                    found.closest = value
                    found.confidence = confidences.map { Int($0[i]) }
                    if (found.confidence ?? 0) >= 90 { found.epsg = value }
                    break
                }
            }
            GDALRuntime.resetError()
        }
        identifiedLock.withLock { identified[wkt] = found }
        return found
    }

    /// A CRS from "EPSG:4326", a WKT string, or anything OSRSetFromUserInput accepts.
    public init(userInput: String) throws {
        GDALRuntime.ensureInitialized()
        guard let handle = OSRNewSpatialReference(nil) else {
            throw RasterError(.invalidArgument, path: userInput, problem: "could not allocate a spatial reference")
        }
        defer { OSRDestroySpatialReference(handle) }
        GDALRuntime.resetError()
        guard OSRSetFromUserInput(handle, userInput) == OGRERR_NONE, let me = SpatialReference(handle: handle) else {
            throw RasterError(.invalidArgument, path: userInput, problem: "not a coordinate reference system GDAL understands",
                              gdalMessage: GDALRuntime.lastErrorMessage(), hint: "Use a form like EPSG:32615 or a WKT string")
        }
        self = me
    }

    /// "EPSG:32615" when known, else the CRS name, else "custom CRS".
    public var shortName: String {
        if let epsg { return "EPSG:\(epsg)" }
        if let name, name != "unnamed", !name.isEmpty { return name }
        return "custom CRS"
    }

    /// One line for people: "EPSG:32119 (NAD83 / North Carolina)" or
    /// "custom CRS (closest EPSG:32119, 70 % match)".
    public var summary: String {
        if let epsg {
            if let name, name != "unnamed" { return "EPSG:\(epsg) (\(name))" }
            return "EPSG:\(epsg)"
        }
        var s = shortName
        if let c = closestEPSG { s += " (closest EPSG:\(c), \(matchConfidence ?? 0) % match)" }
        return s
    }

    /// Whether two CRSs describe the same system (GDAL's OSRIsSame, ignoring axis order
    /// conventions), falling back to comparing WKT.
    public func isSame(as other: SpatialReference) -> Bool {
        if wkt == other.wkt { return true }
        if let a = epsg, let b = other.epsg { return a == b }
        GDALRuntime.ensureInitialized()
        guard let h1 = OSRNewSpatialReference(wkt), let h2 = OSRNewSpatialReference(other.wkt) else { return false }
        defer { OSRDestroySpatialReference(h1); OSRDestroySpatialReference(h2) }
        if OSRIsSame(h1, h2) != 0 { return true }
        // Same projection maths under different names (e.g. an unnamed LCC with GRS80 and
        // EPSG:3358): identical PROJ definitions place pixels identically.
        return SpatialReference.proj4(h1).map { $0 == SpatialReference.proj4(h2) } ?? false
    }

    static func proj4(_ h: OGRSpatialReferenceH) -> String? {
        var p: UnsafeMutablePointer<CChar>? = nil
        GDALRuntime.resetError()
        defer { ts_cpl_free(p); GDALRuntime.resetError() }
        guard OSRExportToProj4(h, &p) == OGRERR_NONE, let p else { return nil }
        // Identity datum shifts and flags that do not move pixels are dropped.
        let neutral: Set<String> = ["+no_defs", "+type=crs", "+towgs84=0,0,0", "+towgs84=0,0,0,0,0,0,0", "+wktext"]
        let tokens = String(cString: p).split(separator: " ").map(String.init).filter { !$0.isEmpty && !neutral.contains($0) }
        return tokens.isEmpty ? nil : tokens.sorted().joined(separator: " ")
    }
}
