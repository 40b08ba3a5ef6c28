import Foundation

/// The files written beside a class map `X.tif`: its QGIS style `X.qml` (always) and its class
/// polygons `X.gpkg` (on request). The one place these names are made, so that catalogues
/// (STAC assets) and skip checks find them.
public struct MapSiblings: Sendable, Hashable {
    public let map: String
    /// `X.gpkg`: one layer (`ClassPolygons.layerName`) of class polygons.
    public let polygons: String
    /// `X.qml`: the paletted QGIS style QGIS applies when it opens `X.tif`.
    public let style: String

    public init(map: String) {
        self.map = map
        let base = (map as NSString).deletingPathExtension
        polygons = base + ".gpkg"
        style = base + ".qml"
    }
}

/// Which neighbours make pixels one patch: the 4 sharing an edge, or also the 4 diagonal ones.
public enum Connectedness: String, Sendable, Codable, CaseIterable {
    case four = "4", eight = "8"

    public var neighbours: Int32 { self == .four ? 4 : 8 }
}
