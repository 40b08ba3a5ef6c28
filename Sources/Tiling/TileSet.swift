import Foundation
import GeoRaster

/// A folder of image chips with matching mask chips, the way LandCover.ai or 38-Cloud are
/// distributed. Files are matched by templates holding `{id}`, relative to `root`:
/// LandCover.ai-style `images: ["images/{id}.tif"], mask: "masks/{id}_m.png"`; 38-Cloud,
/// one file per band: `images: ["train_red/red_{id}.TIF", "train_green/green_{id}.TIF", …],
/// mask: "train_gt/gt_{id}.TIF"`. Ids are the names matched by the first image template.
public struct TileSet: Sendable {
    public let root: String
    public let imageTemplates: [String]
    public let maskTemplate: String
    public let ids: [String]

    public init(root: String, images: [String], mask: String) throws {
        guard let first = images.first else {
            throw RasterError(.invalidArgument, path: root, problem: "no image template given",
                              hint: "Give at least one template such as \"images/{id}.tif\"")
        }
        for t in images + [mask] where !t.contains("{id}") {
            throw RasterError(.invalidArgument, path: root, problem: "template '\(t)' has no {id}",
                              hint: "Templates name files by their chip id, e.g. \"masks/{id}_m.png\"")
        }
        self.root = root
        imageTemplates = images
        maskTemplate = mask
        let full = (root as NSString).appendingPathComponent(first)
        let dir = (full as NSString).deletingLastPathComponent
        let pattern = (full as NSString).lastPathComponent
        let parts = pattern.components(separatedBy: "{id}")
        let prefix = parts[0], suffix = parts.count > 1 ? parts[1] : ""
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
            throw RasterError(.notFound, path: dir, problem: "the chip folder does not exist", hint: "Check the tile set's root and templates")
        }
        let found = names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(suffix) && $0.count > prefix.count + suffix.count }
            .map { String($0.dropFirst(prefix.count).dropLast(suffix.count)) }.sorted()
        guard !found.isEmpty else {
            throw RasterError(.notFound, path: dir, problem: "no file matches '\(pattern)'", hint: "Check the template against the file names")
        }
        ids = found
        // Every chip must have all its files.
        for id in found {
            for t in images.dropFirst() + [mask] {
                let p = path(t, id: id)
                if !FileManager.default.fileExists(atPath: p) {
                    throw RasterError(.notFound, path: p, problem: "chip '\(id)' has no file for template '\(t)'",
                                      hint: "Every chip needs all its band files and a mask; remove the incomplete chip or fix the template")
                }
            }
        }
    }

    /// Seeded, order-independent assignment of a chip to validation.
    public static func isValidation(id: String, fraction: Double, seed: UInt64) -> Bool {
        let h = fingerprint(id, seed: seed)
        return SpatialSplit.blockIsValidation(row: Int(truncatingIfNeeded: h >> 32), column: Int(truncatingIfNeeded: h & 0xffff_ffff),
                                              fraction: fraction, seed: seed)
    }

    func path(_ template: String, id: String) -> String {
        (root as NSString).appendingPathComponent(template.replacingOccurrences(of: "{id}", with: id))
    }

    public func imagePaths(_ id: String) -> [String] { imageTemplates.map { path($0, id: id) } }
    public func maskPath(_ id: String) -> String { path(maskTemplate, id: id) }

    /// Opens chip `id` as a labelled scene (band files stacked). `maskColors` non-nil: the mask
    /// is RGB colour-coded (`ColorMask`), these colours ignored; nil: band 1 holds the values
    /// (a palette PNG's index is the value). With a `budget`, the chip's files are closed when
    /// the budget needs room and reopened when read (`OnDemandRaster`); without, they stay open.
    public func scene(_ id: String, bands: [Int]?, classMap: ClassMap, maskColors: [RGBA]? = nil,
                      budget: HandleBudget? = nil) throws -> LabelledScene {
        let paths = imagePaths(id)
        let image = try openRaster(paths)
        let imageInfo = image.info
        let firstMask = try Dataset(path: maskPath(id))
        let openLabels = { (mask: Dataset) throws -> any RasterSource in
            let labels: any RasterSource = try maskColors.map { try ColorMask(mask, classMap: classMap, ignore: $0) } ?? mask
            return try LabelledScene.onImageGrid(labels, image: imageInfo)
        }
        let labels = try openLabels(firstMask)
        guard let budget else { return try LabelledScene(name: id, image: image, labels: labels, bands: bands, classMap: classMap) }
        // Reopened every epoch when the set is larger than the patch cache: as first opened (`ChipReopener`).
        let reopenImage: () throws -> any RasterSource = (image as? Dataset).map(ChipReopener.init).map { r in { try r.open() } }
            ?? { try openRaster(paths) }
        let mask = ChipReopener(firstMask)
        return try LabelledScene(name: id, image: OnDemandRaster(opened: image, budget: budget, open: reopenImage),
                                 labels: OnDemandRaster(opened: labels, budget: budget, open: { try openLabels(mask.open()) }),
                                 bands: bands, classMap: classMap)
    }
}
