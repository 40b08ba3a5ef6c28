import ArgumentParser
import Training

/// The tile-set flags shared by `train` (its training and validation chips) and `evaluate`
/// (its test chips).
struct TileSetOptions: ParsableArguments {
    @Option(help: "Tile set root folder (chips and masks).")
    var tiles: String?

    @Option(name: .customLong("tile-images"), help: "Chip templates with {id}, comma-separated per band file, e.g. images/{id}.tif.",
            transform: PathList.parse)
    var tileImages: [String]?

    @Option(name: .customLong("tile-mask"), help: "Mask template with {id}, e.g. masks/{id}_m.png.")
    var tileMask: String?

    @Option(name: .customLong("tile-split"),
            help: "Which chips train, validate and test: hash (a seeded hash of the ids; default), folders (train/, val/, test/ under --tiles) or lists:TRAIN,VALIDATION[,TEST] (files of ids or file names, one a line).",
            transform: TileSplitSpec.parse)
    var tileSplit: TileSplitSpec?

    @Flag(name: .customLong("tile-mask-colors"), help: "The tile masks are RGB colour-coded: each colour is the class with that colour in --classes (mask: {template: …, colors: true}).")
    var tileMaskColors = false

    /// The tile set the flags describe; nil without --tiles.
    func spec() throws -> TileSetSpec? {
        guard let tiles else {
            if tileMaskColors { throw ValidationError("--tile-mask-colors needs --tiles, --tile-images and --tile-mask") }
            if tileImages != nil || tileMask != nil || tileSplit != nil { throw ValidationError("--tile-images, --tile-mask and --tile-split need --tiles") }
            return nil
        }
        guard let tileImages, let tileMask else { throw ValidationError("--tiles needs --tile-images and --tile-mask") }
        return TileSetSpec(root: tiles, images: tileImages, mask: tileMask, split: tileSplit, maskColors: tileMaskColors)
    }
}
