import Core
/// GDAL's affine geotransform: x = c0 + col·c1 + row·c2, y = c3 + col·c4 + row·c5,
/// for pixel corners (col, row); (0, 0) is the top-left corner of the top-left pixel.
public struct GeoTransform: Hashable, Sendable, Codable, CustomStringConvertible {
    public var coefficients: [Double]

    public init(_ coefficients: [Double]) {
        precondition(coefficients.count == 6, "a geotransform has 6 coefficients")
        self.coefficients = coefficients
    }

    public init(originX: Double, pixelWidth: Double, originY: Double, pixelHeight: Double) {
        self.init([originX, pixelWidth, 0, originY, 0, pixelHeight])
    }

    public static let identity = GeoTransform([0, 1, 0, 0, 0, 1])

    public var originX: Double { coefficients[0] }
    public var originY: Double { coefficients[3] }
    public var pixelWidth: Double { coefficients[1] }
    public var pixelHeight: Double { coefficients[5] }
    public var isRotated: Bool { coefficients[2] != 0 || coefficients[4] != 0 }
    public var isIdentity: Bool { self == .identity }

    /// Map coordinates of pixel position (col, row) (corners at integers, centres at +0.5).
    public func apply(column: Double, row: Double) -> (x: Double, y: Double) {
        let c = coefficients
        return (c[0] + column * c[1] + row * c[2], c[3] + column * c[4] + row * c[5])
    }

    /// The inverse transform, or nil when the matrix is singular.
    public func inverted() -> GeoTransform? {
        let c = coefficients
        let det = c[1] * c[5] - c[2] * c[4]
        guard det != 0, det.isFinite else { return nil }
        let i1 = c[5] / det, i2 = -c[2] / det, i4 = -c[4] / det, i5 = c[1] / det
        let i0 = -(i1 * c[0] + i2 * c[3])
        let i3 = -(i4 * c[0] + i5 * c[3])
        return GeoTransform([i0, i1, i2, i3, i4, i5])
    }

    /// The transform of a window of this grid (its top-left pixel becomes (0, 0)).
    public func forWindow(_ window: Window) -> GeoTransform {
        let (x, y) = apply(column: Double(window.column), row: Double(window.row))
        var c = coefficients
        c[0] = x
        c[3] = y
        return GeoTransform(c)
    }

    /// Equal within `tolerance` of a pixel, measured in pixel units at the far corner of a
    /// raster of the given size.
    public func isClose(to other: GeoTransform, width: Int, height: Int, tolerance: Double = 1e-6) -> Bool {
        let corners = [(0.0, 0.0), (Double(width), 0.0), (0.0, Double(height)), (Double(width), Double(height))]
        let px = max(abs(pixelWidth), abs(coefficients[2]), abs(coefficients[4]), abs(pixelHeight), .leastNormalMagnitude)
        for (c, r) in corners {
            let a = apply(column: c, row: r), b = other.apply(column: c, row: r)
            if abs(a.x - b.x) > tolerance * px || abs(a.y - b.y) > tolerance * px { return false }
        }
        return true
    }

    public var description: String {
        "[" + coefficients.map { String($0) }.joined(separator: ", ") + "]"
    }
}
