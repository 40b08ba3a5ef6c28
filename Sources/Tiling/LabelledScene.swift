import Core
import Foundation
import GeoRaster

/// One training example: a normalised image patch and its class indices.
public struct Patch: Sendable {
    public var window: Window
    public var channels: Int
    /// channels × height × width, normalised; invalid pixels are 0.
    public var image: [Float]
    /// height × width class indices; -1 where the pixel is excluded from loss and metrics
    /// (image nodata, label nodata or ignore value).
    public var target: [Int32]

    public init(window: Window = Window(width: 0, height: 0), channels: Int = 0) {
        self.window = window
        self.channels = channels
        image = [Float](repeating: 0, count: channels * window.pixelCount)
        target = [Int32](repeating: -1, count: window.pixelCount)
    }

    public var size: Int { window.width }
}

/// Where a training patch lies, and which set it belongs to.
public struct PatchRef: Hashable, Sendable, Codable {
    public var scene: Int
    public var window: Window
    public var role: SplitRole
    /// Fraction of the patch's pixels that are valid and labelled.
    public var labelledFraction: Double
}

/// A scene and its labels on the same grid, read window by window (never whole).
public final class LabelledScene {
    public let name: String
    public let image: any RasterSource
    public let labels: any RasterSource
    public let bands: [Int]
    public let classMap: ClassMap
    /// Label values rewritten before the class map reads them (`remap:`); nil = as stored.
    public var remap: LabelRemap?
    /// Puts the whole scene in one set (e.g. a held-out validation scene); nil = split spatially.
    public var role: SplitRole?
    /// A tile-set chip: smaller than the patch, it is padded as invalid; with no usable patch it
    /// is skipped (`ChipSkips`) instead of refused.
    public var chip = false
    /// How the image's band sources were put together (kept in the model bundle).
    public var recipe: SceneRecipe?
    private var imageBlock = RasterBlock()
    private var labelBlock = RasterBlock()

    public var width: Int { image.info.width }
    public var height: Int { image.info.height }
    public var labelPath: String { labels.info.path }

    public init(name: String? = nil, image: any RasterSource, labels: any RasterSource, bands: [Int]? = nil,
                classMap: ClassMap) throws {
        self.image = image
        self.labels = try LabelledScene.onImageGrid(labels, image: image.info)
        self.bands = try image.resolveBands(bands)
        self.classMap = classMap
        self.name = name ?? URL(fileURLWithPath: image.info.bands[0].path).deletingPathExtension().lastPathComponent
    }

    private init(copying scene: LabelledScene, image: any RasterSource, labels: any RasterSource) {
        name = scene.name
        self.image = image
        self.labels = labels
        bands = scene.bands
        classMap = scene.classMap
        remap = scene.remap
        role = scene.role
        chip = scene.chip
        recipe = scene.recipe
    }

    /// This scene with handles of its own, opened when read, for another reading thread: a chip
    /// opened on demand (`OnDemandRaster`), or a scene whose image and labels are each one file
    /// (reopened as first opened, `ChipReopener`); nil for other scenes (bands stacked from
    /// several files, labels warped or burnt from vectors), which one thread reads.
    public func reopened(budget: HandleBudget) -> LabelledScene? {
        if let image = image as? OnDemandRaster, let labels = labels as? OnDemandRaster {
            return LabelledScene(copying: self, image: image.reopened(budget: budget), labels: labels.reopened(budget: budget))
        }
        guard let image = image as? Dataset, image.isFile, let labels = labels as? Dataset, labels.isFile else { return nil }
        let (imageFile, labelFile) = (ChipReopener(image), ChipReopener(labels))
        return LabelledScene(copying: self, image: OnDemandRaster(info: image.info, budget: budget, open: imageFile.open),
                             labels: OnDemandRaster(info: labels.info, budget: budget, open: labelFile.open))
    }

    /// Labels on another grid or CRS are read onto the image grid through GDAL's warper
    /// (nearest; mode when the image grid is coarser), with a notice saying how the grids
    /// differ. Labels that do not overlap the image are refused, naming both extents.
    public static func onImageGrid(_ labels: any RasterSource, image: RasterInfo) throws -> any RasterSource {
        let grid = image.grid
        let diffs = grid.differences(from: labels.info.grid)
        if diffs.isEmpty { return labels }
        if grid.geoTransform != nil && labels.info.geoTransform == nil && labels.info.crs == nil {
            return try onPixelGrid(labels, image: image)
        }
        guard let dataset = labels as? Dataset, grid.geoTransform != nil, labels.info.geoTransform != nil else {
            throw RasterError(.gridMismatch, path: labels.info.path,
                              problem: "the labels are not on the grid of the image \(image.path): " + diffs.joined(separator: "; "),
                              hint: "Give georeferenced labels and image (TerraSeg then warps the labels), or resample the labels with `gdalwarp -r near -tr <pixel size> -te <image bounds> -t_srs <image CRS>`")
        }
        try BandStack.checkOverlap(labels.info, grid: grid, what: "label raster")
        var coarsening = false
        if let e = try labels.info.grid.extent(in: grid.crs), let target = grid.pixelSize {
            coarsening = max((e.maxX - e.minX) / Double(labels.info.width), (e.maxY - e.minY) / Double(labels.info.height)) < target * 0.999
        }
        let resampling: Resampling = coarsening ? .mode : .nearest
        let warped = try dataset.warped(onto: grid, resampling: resampling)
        SceneNotices.say("\(labels.info.path): labels read onto the image grid (\(grid.resamplingSummary(of: labels.info.grid))) with \(resampling.rawValue) resampling")
        return warped
    }

    /// A plain mask (a PNG beside a GeoTIFF chip, as LandCover.ai ships them) is read on the
    /// georeferenced image's pixel grid when the sizes match, said once per mask folder; a
    /// plain mask of another size is refused.
    static func onPixelGrid(_ labels: any RasterSource, image: RasterInfo) throws -> any RasterSource {
        let l = labels.info
        guard l.width == image.width && l.height == image.height else {
            throw RasterError(.gridMismatch, path: l.path,
                              problem: "the labels are not georeferenced and are \(l.width)×\(l.height), not the \(image.width)×\(image.height) of the image \(image.path)",
                              hint: "Give a mask of the image's size (it is read on the image's pixel grid), or georeference it like the image (gdal_translate -a_srs <CRS> -a_ullr <bounds>)")
        }
        let folder = (l.path as NSString).deletingLastPathComponent
        SceneNotices.say("\(folder.isEmpty ? "." : folder): labels that are not georeferenced are read on their image's pixel grid (same size)")
        return labels
    }

    /// Reads `window` into `patch`: image bands normalised (invalid → 0), labels as class
    /// indices with -1 wherever the image or the label is invalid or ignored.
    public func readPatch(_ window: Window, normalizer: Normalizer?, into patch: inout Patch) throws {
        try image.read(window: window, bands: bands, into: &imageBlock)
        try labels.read(window: window, bands: [1], into: &labelBlock)
        if let remap { try remap.apply(to: &labelBlock, labelPath: labelPath) }
        if let normalizer { normalizer.apply(to: &imageBlock) }
        patch.window = window
        patch.channels = bands.count
        patch.image = imageBlock.values
        try imageBlock.valid.withUnsafeBufferPointer { valid in
            try classMap.classIndices(labels: labelBlock, labelPath: labelPath, invalid: valid, into: &patch.target)
        }
    }

    /// Scans `grid` and keeps the windows whose labelled, valid fraction reaches
    /// `minLabelledFraction`, each with its split role (patches straddling the split are dropped).
    /// Throws for a patch larger than the scene (a `chip` is padded instead), an unknown label
    /// value, or a scene with no usable patch (`usablePatches` says why instead of throwing).
    public func candidatePatches(sceneIndex: Int, patchSize: Int, stride: Int, split: SpatialSplit,
                                 minLabelledFraction: Double) throws -> [PatchRef] {
        let scan = try usablePatches(sceneIndex: sceneIndex, patchSize: patchSize, stride: stride, split: split,
                                     minLabelledFraction: minLabelledFraction)
        if let problem = scan.problem {
            throw RasterError(.invalidArgument, path: image.info.path, problem: problem, hint: scan.anyValid
                ? "Raise --max-invalid (tiling.max_invalid, now \(String(format: "%g", 1 - minLabelledFraction))) towards 1, or lower --patch-size (tiling.patch)"
                : "Check the nodata values with `terraseg info`, the band selection and the class map")
        }
        return scan.refs
    }

    /// The usable patches of this scene, or why it has none (`problem`). A `chip` smaller
    /// than the patch gives one window at its origin, the pixels beyond the chip invalid.
    public func usablePatches(sceneIndex: Int, patchSize: Int, stride: Int, split: SpatialSplit,
                              minLabelledFraction: Double) throws -> (refs: [PatchRef], anyValid: Bool, problem: String?) {
        if !chip && (patchSize > width || patchSize > height) {
            throw RasterError(.invalidArgument, path: image.info.path,
                              problem: "the patch size \(patchSize) is larger than the scene (\(width)×\(height))",
                              hint: "Use a patch size of at most \(min(width, height)) (a multiple of 16 for a 4-level U-Net)")
        }
        var out: [PatchRef] = []
        var patch = Patch()
        var anyValid = false
        for w in PatchGrid(width: width, height: height, patchSize: patchSize, stride: stride).windows {
            let role = self.role ?? split.role(of: w, width: width, height: height)
            if role == .discarded { continue }
            try readPatch(w, normalizer: nil, into: &patch)
            let labelled = patch.target.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
            if labelled > 0 { anyValid = true }
            let fraction = Double(labelled) / Double(w.pixelCount)
            if fraction >= minLabelledFraction && labelled > 0 {
                out.append(PatchRef(scene: sceneIndex, window: w, role: role, labelledFraction: fraction))
            }
        }
        let percent = Int(minLabelledFraction * 100)
        let problem: String? = !anyValid ? "the \(chip ? "chip" : "scene") has no valid, labelled pixel (all nodata, masked, or ignored in \(labelPath))"
            : out.isEmpty ? (patchSize > width || patchSize > height
                ? "the \(width)×\(height) chip, padded to a \(patchSize)×\(patchSize) patch, has less than \(percent) % valid, labelled pixels"
                : "no \(patchSize)×\(patchSize) patch has \(percent) % valid, labelled pixels")
            : nil
        return (out, anyValid, problem)
    }
}
