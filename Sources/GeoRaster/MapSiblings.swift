import Foundation

/// The files written beside a class map `X.tif`: its QGIS style `X.qml` (always), its class
/// polygons `X.gpkg` (on request), a quicklook `X.png` and its STAC Item `X.stac.json`. The one
/// place these names are made, so that catalogues (STAC assets) and skip checks find them.
public struct MapSiblings: Sendable, Hashable {
    public let map: String
    /// `X.gpkg`: one layer (`ClassPolygons.layerName`) of class polygons.
    public let polygons: String
    /// `X.qml`: the paletted QGIS style QGIS applies when it opens `X.tif`.
    public let style: String
    /// `X.png`: a quicklook, when one was made.
    public let quicklook: String
    /// `X.stac.json`: the STAC Item describing the map and the siblings above.
    public let stacItem: String

    public init(map: String) {
        self.map = map
        let base = (map as NSString).deletingPathExtension
        polygons = base + ".gpkg"
        style = base + ".qml"
        quicklook = base + ".png"
        stacItem = base + ".stac.json"
    }
}

/// Which neighbours make pixels one patch: the 4 sharing an edge, or also the 4 diagonal ones.
public enum Connectedness: String, Sendable, Codable, CaseIterable {
    case four = "4", eight = "8"

    public var neighbours: Int32 { self == .four ? 4 : 8 }
}
