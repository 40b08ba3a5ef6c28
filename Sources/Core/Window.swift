/// A rectangle of pixels: column and row offsets of the top-left corner and a size.
/// Offsets may be negative and the rectangle may reach past the raster: reads fill such
/// parts and mark them invalid.
public struct Window: Hashable, Sendable, Codable, CustomStringConvertible {
    public var column: Int
    public var row: Int
    public var width: Int
    public var height: Int

    public init(column: Int, row: Int, width: Int, height: Int) {
        self.column = column
        self.row = row
        self.width = width
        self.height = height
    }

    /// The whole raster of the given size.
    public init(width: Int, height: Int) { self.init(column: 0, row: 0, width: width, height: height) }

    public var endColumn: Int { column + width }
    public var endRow: Int { row + height }
    public var pixelCount: Int { width * height }
    public var isEmpty: Bool { width <= 0 || height <= 0 }

    /// The overlap with another window, or nil when they do not overlap.
    public func intersection(_ other: Window) -> Window? {
        let c0 = max(column, other.column), r0 = max(row, other.row)
        let c1 = min(endColumn, other.endColumn), r1 = min(endRow, other.endRow)
        guard c1 > c0, r1 > r0 else { return nil }
        return Window(column: c0, row: r0, width: c1 - c0, height: r1 - r0)
    }

    public func contains(_ other: Window) -> Bool {
        other.column >= column && other.row >= row
            && other.endColumn <= endColumn && other.endRow <= endRow
    }

    /// This window moved by (dc, dr).
    public func offsetBy(columns dc: Int, rows dr: Int) -> Window {
        Window(column: column + dc, row: row + dr, width: width, height: height)
    }

    /// Grown by `margin` pixels on every side.
    public func expanded(by margin: Int) -> Window {
        Window(column: column - margin, row: row - margin, width: width + 2 * margin, height: height + 2 * margin)
    }

    public var description: String { "\(width)×\(height) at column \(column), row \(row)" }
}
