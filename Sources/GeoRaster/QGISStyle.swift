import Core
import Foundation

/// A QGIS layer style (`.qml`) for a class map: the paletted renderer with each class's value,
/// colour and name, so QGIS shows the map in its colours with a legend of class names when it
/// opens `X.tif` (QGIS applies `X.qml` found beside a layer). Written beside every map (`MapSiblings.style`).
public enum QGISStyle {
    /// The QGIS version whose format this follows (3.x paletted renderer, as QGIS 3.28 saves it).
    static let version = "3.28.0-Firenze"

    /// The style document: `qgis/pipe/rasterrenderer[@type=paletted]/colorPalette/paletteEntry`
    /// per class (sorted by value); nodata is not a class, so QGIS leaves it transparent.
    public static func document(classes: [ClassEntry], band: Int = 1) -> String {
        let entries = classes.sorted { $0.value < $1.value }.map { c in
            let rgb = RGBA(c.color.r, c.color.g, c.color.b).hex
            return "        <paletteEntry value=\"\(c.value)\" color=\"\(rgb)\" label=\"\(escape(c.name))\" alpha=\"\(c.color.a)\"/>"
        }
        return """
        <!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
        <qgis version="\(version)" styleCategories="Symbology">
          <pipe>
            <provider>
              <resampling enabled="false" zoomedInResamplingMethod="nearestNeighbour" zoomedOutResamplingMethod="nearestNeighbour" maxOversampling="2"/>
            </provider>
            <rasterrenderer type="paletted" band="\(band)" opacity="1" alphaBand="-1" nodataColor="">
              <rasterTransparency/>
              <minMaxOrigin>
                <limits>None</limits>
                <extent>WholeRaster</extent>
                <statAccuracy>Estimated</statAccuracy>
                <cumulativeCutLower>0.02</cumulativeCutLower>
                <cumulativeCutUpper>0.98</cumulativeCutUpper>
                <stdDevFactor>2</stdDevFactor>
              </minMaxOrigin>
              <colorPalette>
        \(entries.joined(separator: "\n"))
              </colorPalette>
            </rasterrenderer>
            <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
            <huesaturation saturation="0" colorizeOn="0" grayscaleMode="0" invertColors="0" colorizeStrength="100" colorizeRed="255" colorizeGreen="128" colorizeBlue="128"/>
            <rasterresampler maxOversampling="2"/>
            <resamplingStage>resamplingFilter</resamplingStage>
          </pipe>
          <blendMode>0</blendMode>
        </qgis>

        """
    }

    /// Writes the style beside `map` (`MapSiblings(map:).style`), atomically; returns its path.
    @discardableResult
    public static func write(classes: [ClassEntry], besideMap map: String) throws -> String {
        let path = MapSiblings(map: map).style
        do {
            try AtomicFile.write(document(classes: classes), to: path)
        } catch let e as TerraSegError {
            throw RasterError(.writeFailed, path: path, problem: e.problem, hint: e.hint)
        }
        return path
    }

    /// Text for an XML attribute value.
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
