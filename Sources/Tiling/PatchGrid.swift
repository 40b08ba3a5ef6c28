import Core
import GeoRaster

/// Pure geometry shared by the tiler and the stitcher: where patches lie on a raster.
/// Training patches cover the raster at a stride, the last one shifted inward so no row or
/// column is missed; a raster smaller than a patch gets one patch reaching past its edge
/// (read as invalid).
public struct PatchGrid: Hashable, Sendable {
    public let width: Int
    public let height: Int
    public let patchSize: Int
    public let stride: Int

    public init(width: Int, height: Int, patchSize: Int, stride: Int? = nil) {
        precondition(patchSize > 0 && (stride ?? patchSize) > 0, "patch size and stride must be positive")
        self.width = width
        self.height = height
        self.patchSize = patchSize
        self.stride = stride ?? patchSize
    }

    /// Offsets 0, s, 2s, … along one axis, with a last one at `length - patch` when the
    /// stride does not land there.
    public static func offsets(length: Int, patch: Int, stride: Int) -> [Int] {
        guard length > patch else { return [0] }
        var out = Array(Swift.stride(from: 0, through: length - patch, by: stride))
        if out.last! != length - patch { out.append(length - patch) }
        return out
    }

    public var windows: [Window] {
        let cols = PatchGrid.offsets(length: width, patch: patchSize, stride: stride)
        let rows = PatchGrid.offsets(length: height, patch: patchSize, stride: stride)
        return rows.flatMap { r in cols.map { c in Window(column: c, row: r, width: patchSize, height: patchSize) } }
    }
}

/// Prediction windows for seamless stitching. The raster is cut into core tiles of
/// `tileSize` on a grid anchored at (0, 0); each is predicted from an input window that adds
/// `margin` on every side. Offsets and margin are multiples of `alignment` (the network's
/// total down-sampling factor, e.g. 16 for a 4-level U-Net), so every window sees the same
/// pooling phase as one huge window over the scene plus the margin would: with a margin of
/// at least the receptive-field half-width, the stitched map equals that huge window's
/// prediction. Core tiles at the right and bottom may reach past the raster; only their part
/// inside is written. Input beyond the raster is read as invalid (zero after normalisation)
/// and the network runs over it, as smp's sliding windows do; a stream (`RowStream`), one
/// window over the scene alone, pads each layer with zeros at the scene's edge instead, so
/// within the receptive radius of an edge the two may differ.
public struct PredictionGrid: Hashable, Sendable {
    public let width: Int
    public let height: Int
    public let tileSize: Int
    public let margin: Int
    public let alignment: Int
    /// Distance between cores: `tileSize` (cores partition the scene) or, for blending,
    /// half of it (cores overlap by half).
    public let stride: Int

    /// `tileSize` and `margin` are rounded up to multiples of `alignment`; `overlapping`
    /// places cores half a tile apart.
    public init(width: Int, height: Int, tileSize: Int, margin: Int, alignment: Int = 1, overlapping: Bool = false) {
        precondition(tileSize > 0 && margin >= 0 && alignment > 0)
        self.width = width
        self.height = height
        self.alignment = alignment
        self.tileSize = PredictionGrid.roundUp(tileSize, to: alignment)
        self.margin = PredictionGrid.roundUp(margin, to: alignment)
        let half = PredictionGrid.roundUp(max(1, self.tileSize / 2), to: alignment)
        stride = overlapping && half < self.tileSize ? half : self.tileSize
    }

    /// Core offsets along one axis: every `stride` until a core reaches the end.
    func offsets(_ length: Int) -> [Int] {
        var out: [Int] = []
        var o = 0
        repeat {
            out.append(o)
            o += stride
        } while o < length && out.last! + tileSize < length
        return out
    }

    public static func roundUp(_ v: Int, to a: Int) -> Int { (v + a - 1) / a * a }

    /// Side of every input window: tile + 2 × margin.
    public var inputSize: Int { tileSize + 2 * margin }

    public struct Tile: Hashable, Sendable {
        /// The part of the raster this tile writes (clipped to the raster).
        public var core: Window
        /// The window read and fed to the network (same size for every tile).
        public var input: Window
        /// Where `core` starts inside `input`.
        public var coreOffsetColumn: Int { core.column - input.column }
        public var coreOffsetRow: Int { core.row - input.row }
    }

    public var tiles: [Tile] {
        var out: [Tile] = []
        for r in offsets(height) {
            for c in offsets(width) {
                let core = Window(column: c, row: r, width: min(tileSize, width - c), height: min(tileSize, height - r))
                let input = Window(column: c - margin, row: r - margin, width: inputSize, height: inputSize)
                out.append(Tile(core: core, input: input))
            }
        }
        return out
    }
}
