import Foundation
import GeoRaster

/// Writes the files that go beside a finished class map (`MapSiblings`): its QGIS style
/// always, its class polygons on request. Runs after the map is complete and in place, on any
/// map (a scene's, each chip's of a folder), so the strip and window loops know nothing of it.
public struct MapSiblingWriter: Sendable {
    public var classes: [ClassEntry]
    public var connectedness: Connectedness
    public var simplify: Double

    public init(classes: [ClassEntry], options: PredictionOptions) {
        self.classes = classes
        connectedness = options.mmuConnectedness
        simplify = options.polygonSimplify
    }

    /// The style, then (with `polygons`) the polygons; returns what the polygons took.
    public func write(besideMap map: String, polygons: Bool) throws -> ClassPolygons.Summary? {
        try QGISStyle.write(classes: classes, besideMap: map)
        guard polygons else { return nil }
        return try ClassPolygons.write(map: map, classes: classes, connectedness: connectedness, simplify: simplify)
    }
}

extension PredictionOptions {
    /// One line saying what is done to each finished map besides its style (the minimum
    /// mapping unit, polygons), or nil when nothing is.
    public var mapNote: String? {
        var parts: [String] = []
        if minMappingUnit > 1 {
            parts.append("minimum mapping unit \(minMappingUnit) px (\(mmuConnectedness.rawValue)-connected): "
                         + "smaller class patches take the class of their largest neighbouring patch")
        }
        if polygons {
            parts.append("class polygons beside each map (.gpkg" + (polygonSimplify > 0 ? ", simplified to \(polygonSimplify) CRS units)" : ")"))
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }
}
