import Core
import Distributed
import Foundation
import GeoRaster
import ModelIO
import Models
import Tiling

/// A class as users write it: label value, name, optional colour (#rrggbb).
public struct ClassSpec: Codable, Sendable, Equatable {
    public var value: Int
    public var name: String
    public var color: String?

    public init(value: Int, name: String, color: String? = nil) {
        self.value = value
        self.name = name
        self.color = color
    }

    /// Parses "1=developed", "1=developed:#e31a1c", comma-separated.
    public static func parseList(_ text: String) throws -> [ClassSpec] {
        try text.split(separator: ",").map { item in
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let v = Int(parts[0].trimmingCharacters(in: .whitespaces)) else {
                throw SettingSyntaxError(String(item), problem: "is not VALUE=NAME[:#rrggbb]",
                                         fix: "Write classes like 1=developed:#e31a1c,2=water")
            }
            let nameColor = parts[1].split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            return ClassSpec(value: v, name: nameColor[0], color: nameColor.count > 1 ? nameColor[1] : nil)
        }
    }
}

/// One labelled scene: image (one file, or band files stacked) and its labels, either a
/// raster on the image grid or vector polygons with a class attribute.
public struct SceneSpec: Codable, Sendable, Equatable {
    public var image: [String]
    public var labels: String?
    public var vectorLabels: String?
    /// Attribute of `vectorLabels` holding the class value or name.
    public var labelAttribute: String?
    public var layer: String?
    /// "train" or "validation" puts the whole scene in one set; nil ("split") splits it spatially.
    public var role: String?
    /// Name of the scene's maps (`NAME_map.tif`); nil: from the image files.
    public var name: String?
    /// Vector labels: every feature is this label value (instead of `labelAttribute`).
    public var burn: Int?
    /// Vector labels: label value of the pixels outside every feature (nil: unlabelled).
    public var background: Int?
    /// Vector labels: "ignore" skips features whose attribute matches no class; nil or "error" refuses them.
    public var unmatched: String?

    public init(image: [String], labels: String? = nil, vectorLabels: String? = nil, labelAttribute: String? = nil,
                layer: String? = nil, role: String? = nil, burn: Int? = nil, background: Int? = nil, unmatched: String? = nil) {
        self.role = role
        self.burn = burn
        self.background = background
        self.unmatched = unmatched
        self.image = image
        self.labels = labels
        self.vectorLabels = vectorLabels
        self.labelAttribute = labelAttribute
        self.layer = layer
    }
}

/// A folder of image and mask chips matched by `{id}` templates (see `TileSet`).
/// `mask` is a template, or `{template: …, colors: true}` for RGB colour-coded masks.
public struct TileSetSpec: Codable, Sendable, Equatable {
    public var root: String
    public var images: [String]
    public var mask: String
    /// Which chips train, validate and test (nil: a seeded hash of the chip ids).
    public var split: TileSplitSpec?
    /// The masks are RGB colour-coded, mapped through `classes[].color`.
    public var maskColors: Bool

    public init(root: String, images: [String], mask: String, split: TileSplitSpec? = nil, maskColors: Bool = false) {
        self.root = root
        self.images = images
        self.mask = mask
        self.split = split
        self.maskColors = maskColors
    }

    enum CodingKeys: String, CodingKey { case root, images, mask, split }
    struct MaskForm: Codable { var template: String; var colors: Bool? }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        root = try c.decode(String.self, forKey: .root)
        images = try c.decode([String].self, forKey: .images)
        split = try c.decodeIfPresent(TileSplitSpec.self, forKey: .split)
        if let form = try? c.decode(MaskForm.self, forKey: .mask) {
            mask = form.template
            maskColors = form.colors ?? false
        } else {
            mask = try c.decode(String.self, forKey: .mask)
            maskColors = false
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(root, forKey: .root)
        try c.encode(images, forKey: .images)
        try c.encodeIfPresent(split, forKey: .split)
        if maskColors { try c.encode(MaskForm(template: mask, colors: true), forKey: .mask) } else { try c.encode(mask, forKey: .mask) }
    }
}

/// A tile set's `split:` as users write it: `{method: hash}` (default), `{method: lists, train:
/// FILE, validation: FILE, test: FILE}` or `{method: folders}` (see `TileSplit`).
public struct TileSplitSpec: Codable, Sendable, Equatable {
    public var method: String
    public var train: String?
    public var validation: String?
    public var test: String?

    public init(method: String, train: String? = nil, validation: String? = nil, test: String? = nil) {
        self.method = method
        self.train = train
        self.validation = validation
        self.test = test
    }

    /// Parses the --tile-split flag: `hash`, `folders`, or `lists:TRAIN,VALIDATION[,TEST]` (a part may be empty).
    public static func parse(_ text: String) throws -> TileSplitSpec {
        if text == "hash" || text == "folders" { return TileSplitSpec(method: text) }
        guard text.hasPrefix("lists:") else {
            throw SettingSyntaxError(text, problem: "is not hash, folders or lists:TRAIN,VALIDATION[,TEST]",
                                     fix: "Write e.g. --tile-split lists:train.txt,val.txt,test.txt or --tile-split folders")
        }
        let files = text.dropFirst(6).split(separator: ",", omittingEmptySubsequences: false).map { $0.isEmpty ? nil : String($0) }
        guard files.count <= 3, files.contains(where: { $0 != nil }) else {
            throw SettingSyntaxError(text, problem: "names no list or more than three", fix: "Write lists:TRAIN,VALIDATION[,TEST]")
        }
        return TileSplitSpec(method: "lists", train: files[0], validation: files.count > 1 ? files[1] : nil, test: files.count > 2 ? files[2] : nil)
    }

    /// The split, list paths made absolute by `resolve`.
    public func split(validationFraction: Double, seed: UInt64, resolve: (String) -> String) throws -> TileSplit {
        if method != "lists", let given = [("train", train), ("validation", validation), ("test", test)].first(where: { $0.1 != nil }) {
            throw TerraSegError(.invalidArgument, path: "split.\(given.0)", problem: "a list is given but the split method is \(method)",
                                hint: "Lists are read with method: lists (--tile-split lists:TRAIN,VALIDATION,TEST); remove the list otherwise")
        }
        switch method {
        case "hash": return .hash(validationFraction: validationFraction, seed: seed)
        case "folders": return .folders
        case "lists": return .lists(train: train.map(resolve), validation: validation.map(resolve), test: test.map(resolve))
        default:
            throw TerraSegError(.invalidArgument, path: "split.method", problem: "'\(method)' is unknown", hint: "Use hash, lists or folders")
        }
    }
}

/// The training data of a job.
public struct DataSpec: Codable, Sendable, Equatable {
    public var scenes: [SceneSpec] = []
    public var tileSets: [TileSetSpec] = []
    /// 1-based bands to use (nil = all non-alpha bands).
    public var bands: [Int]? = nil
    public var classes: [ClassSpec] = []
    /// Label values excluded from loss and metrics.
    public var ignore: [Int] = []
    /// Mask colours (#rrggbb) excluded from loss and metrics (YAML: strings under `ignore`).
    public var ignoreColors: [String] = []
    /// How each scene's band sources are put together (see `SceneSources`, `GridSpec`):
    /// Sentinel-2 band names (to find band files in a scene folder), per-source resampling
    /// and nodata (one value for all sources, or one per source), and the scene grid.
    public var bandNames: [String]? = nil
    public var resampling: [Resampling] = []
    public var nodata: [Double] = []
    public var grid: String? = nil
    public var resolution: Double? = nil
    public var crs: String? = nil
    public var bounds: [Double]? = nil
    /// Rules rewriting label values of label rasters before the classes read them.
    public var remap: [RemapRule] = []

    public init(scenes: [SceneSpec] = [], tileSets: [TileSetSpec] = [], bands: [Int]? = nil, classes: [ClassSpec] = [], ignore: [Int] = [],
                remap: [RemapRule] = []) {
        self.scenes = scenes
        self.tileSets = tileSets
        self.bands = bands
        self.classes = classes
        self.ignore = ignore
        self.remap = remap
    }

    public func classMap() throws -> ClassMap {
        var entries: [ClassEntry] = []
        for (i, c) in classes.enumerated() {
            var color = ClassMap.palette[i % ClassMap.palette.count]
            if let hex = c.color {
                guard let parsed = RGBA(hex: hex) else {
                    throw TerraSegError(.invalidArgument, path: "classes", problem: "class '\(c.name)' has colour '\(hex)', which is not #rrggbb",
                                         hint: "Write colours like #1f78b4")
                }
                color = parsed
            }
            entries.append(ClassEntry(value: c.value, name: c.name, color: color))
        }
        return try ClassMap(classes: entries, ignoreValues: ignore)
    }

    /// The colours of `ignoreColors`; refused when malformed or when no mask is colour-coded.
    public func ignoredMaskColors() throws -> [RGBA] {
        let colors = try ignoreColors.map { hex in
            guard let c = RGBA(hex: hex) else {
                throw TerraSegError(.invalidArgument, path: "data.ignore", problem: "'\(hex)' is neither a label value nor a colour",
                                    hint: "Write values as numbers and colours as quoted \"#rrggbb\"")
            }
            return c
        }
        if !colors.isEmpty && !tileSets.contains(where: \.maskColors) {
            throw TerraSegError(.invalidArgument, path: "data.ignore", problem: "colours are listed but no tile set has colour-coded masks",
                                hint: "Use mask: {template: …, colors: true} (--tile-mask-colors), or list label values instead")
        }
        return colors
    }

    /// Opens every scene and tile-set chip; grids, bands and labels are checked here, before
    /// any training starts. Paths are relative to `base`.
    public func openScenes(relativeTo base: String? = nil, validationFraction: Double = 0.2, seed: UInt64 = 42) throws -> [LabelledScene] {
        func resolve(_ p: String) -> String {
            guard let base, !p.hasPrefix("/"), !p.hasPrefix("/vsi") else { return p }
            return p.split(separator: "+").map { (base as NSString).appendingPathComponent(String($0)) }.joined(separator: "+")
        }
        let gridSpec = GridSpec(file: grid.map(resolve), resolution: resolution, crs: crs, bounds: bounds)
        let map = try classMap()
        var out: [LabelledScene] = []
        for s in scenes {
            let sources = try SceneSources.make(s.image.map(resolve), bandNames: bandNames, resampling: resampling, nodata: nodata)
            let image = try openScene(sources, grid: gridSpec)
            let labels: any RasterSource
            if let l = s.labels {
                labels = try Dataset(path: resolve(l))
            } else if let v = s.vectorLabels {
                labels = try s.rasterizeVectorLabels(resolve(v), classMap: map, onto: image.info.grid)
            } else {
                throw TerraSegError(.invalidArgument, path: resolve(s.image[0]), problem: "the scene has no labels",
                                     hint: "Give labels: (a raster on the image grid) or vector_labels: with label_attribute: or burn:")
            }
            let scene = try LabelledScene(image: image, labels: labels, bands: bands, classMap: map)
            scene.recipe = try SceneRecipe(specs: sources, grid: gridSpec, scene: image.info)
            if !remap.isEmpty && s.labels != nil {
                scene.remap = try LabelRemap(rules: remap.map { ($0.from, $0.to) }, ignore: ignore)
            }
            switch s.role {
            case nil, "split": break
            case "train": scene.role = .train
            case "validation": scene.role = .validation
            case let other?:
                throw TerraSegError(.invalidArgument, path: resolve(s.image[0]), problem: "role '\(other)' is unknown", hint: "Use split, train or validation")
            }
            out.append(scene)
        }
        let ignoredColors = try ignoredMaskColors()
        for t in tileSets {
            out += try openChips(t, resolve: resolve, classMap: map, validationFraction: validationFraction, seed: seed,
                                 ignoredColors: ignoredColors)
        }
        if out.isEmpty {
            throw TerraSegError(.invalidArgument, path: "data", problem: "no training scenes", hint: "List scenes (image and labels) or tile sets")
        }
        return out
    }
}

extension DataSpec {
    /// The training and validation chips of tile set `t` as scenes (test chips are left to
    /// `evaluate`); chips that cannot be opened are skipped and named, ids in no list reported.
    func openChips(_ t: TileSetSpec, resolve: (String) -> String, classMap map: ClassMap, validationFraction: Double,
                   seed: UInt64, ignoredColors: [RGBA]) throws -> [LabelledScene] {
        let split = try (t.split ?? TileSplitSpec(method: "hash")).split(validationFraction: validationFraction, seed: seed, resolve: resolve)
        let root = resolve(t.root)
        let (chips, unlisted) = try split.chips(root: root, images: t.images, mask: t.mask)
        if !unlisted.isEmpty {
            Trainer.logger.warning("\(root): \(unlisted.count) chips are in no split list and are not used: \(unlisted.prefix(ChipSkips.named).joined(separator: ", "))\(unlisted.count > ChipSkips.named ? ", …" : "")")
        }
        let used = chips.filter { $0.part != .test }
        var skips = ChipSkips(), out: [LabelledScene] = []
        // Chips are opened when read, a bounded number at a time.
        let budget = HandleBudget()
        for chip in used {
            let scene: LabelledScene
            do {
                scene = try chip.set.scene(chip.id, bands: bands, classMap: map, maskColors: t.maskColors ? ignoredColors : nil,
                                           budget: budget)
            } catch let e as RasterError where ChipSkips.unreadable.contains(e.kind) {
                skips.skip(chip.id, reason: e.problem)
                continue
            }
            scene.chip = true
            if !remap.isEmpty { scene.remap = try LabelRemap(rules: remap.map { ($0.from, $0.to) }, ignore: ignore) }
            scene.role = chip.part == .validation ? .validation : .train
            out.append(scene)
        }
        if !used.isEmpty && skips.count == used.count { throw skips.refusal(of: used.count, what: "that cannot be opened", path: root) }
        // Every training chip unopenable, validation chips fine: say so (not later, that the split gave every patch to validation).
        let training = used.filter { $0.part == .train }.map(\.id)
        if !training.isEmpty && !out.contains(where: { $0.role == .train }) {
            var only = ChipSkips()
            for skip in skips.skipped where training.contains(skip.name) { only.skip(skip.name, reason: skip.reason) }
            throw only.refusal(of: training.count, what: "that cannot be opened", path: root, kind: "training ")
        }
        if let notice = skips.notice(of: used.count, what: "that cannot be opened") { Trainer.logger.warning("\(notice)") }
        return out
    }
}

/// One `data.remap` rule: the label values `from` become `to`.
public struct RemapRule: Codable, Sendable, Equatable {
    public var from: [Int]
    public var to: Int

    public init(from: [Int], to: Int) {
        self.from = from
        self.to = to
    }
}

extension SceneSpec {
    /// Rasterises this scene's vector labels onto `grid`, printing what was assumed or dropped.
    func rasterizeVectorLabels(_ path: String, classMap map: ClassMap, onto grid: RasterGrid) throws -> Dataset {
        guard labelAttribute != nil || burn != nil else {
            throw TerraSegError(.invalidArgument, path: path, problem: "vector labels need the attribute that holds the class, or a burn value",
                                 hint: "Add label_attribute: <field name> (--label-attribute), or burn: <class value> when every feature is one class")
        }
        let known = Set(map.classes.map(\.value) + map.ignoreValues)
        for (key, value) in [("burn", burn), ("background", background)] {
            if let value, !known.contains(value) {
                throw TerraSegError(.invalidArgument, path: path, problem: "\(key): \(value) is not a class value",
                                     hint: "Use one of the class values \(map.classes.map { "\($0.value) (\($0.name))" }.joined(separator: ", "))")
            }
        }
        guard unmatched == nil || unmatched == "error" || unmatched == "ignore" else {
            throw TerraSegError(.invalidArgument, path: path, problem: "unmatched: '\(unmatched!)' is unknown", hint: "Use error or ignore")
        }
        let options = VectorLabels.Options(layer: layer, attribute: labelAttribute, burn: burn, background: background,
                                           ignoreUnmatched: unmatched == "ignore", fill: Int32(map.ignoreValues.first ?? -1))
        let result = try VectorLabels.rasterize(path: path, options: options, classes: Dictionary(map.classes.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }),
                                                knownValues: known, onto: grid)
        result.notices.forEach { Trainer.logger.warning("\($0)") }
        return result.dataset
    }
}

extension Trainer {
    /// The whole training job as users declare it: opens and checks the data, builds the
    /// network, trains with SIGINT/SIGTERM handled (from a checkpoint as `start` says), writes
    /// the bundle to `output`.
    public static func train(data: DataSpec, model: ModelSpec, options: TrainingOptions, output: String,
                             start: TrainingStart, terrasegVersion: String) throws -> TrainingResult {
        let scenes = try data.openScenes(validationFraction: options.split.validationFraction, seed: options.seed)
        let architecture = try model.architecture(inputChannels: scenes[0].bands.count, classes: scenes[0].classMap.count)
        let trainer = try Trainer(scenes: scenes, architecture: architecture, options: options, output: output)
        trainer.terrasegVersion = terrasegVersion
        trainer.communicator = try Communicator.world()
        // Vector labels are rasterised in memory: their file and reading go into the fingerprint here.
        trainer.dataIdentity = data.scenes.compactMap { s in
            s.vectorLabels.map { "\($0) \(FileIdentity.of($0)) attribute \(s.labelAttribute ?? "") layer \(s.layer ?? "")" }
        }
        // Colour-coded masks read through the class colours and the ignored colours.
        trainer.dataIdentity += data.tileSets.filter(\.maskColors).map { t in
            "colour masks \(t.root) \(t.mask): \(scenes[0].classMap.classes.map { "\($0.value)=\($0.color.hex)" }) ignore \(data.ignoreColors)"
        }
        trainer.encoderWeights = try model.encoderWeights.map(EncoderWeights.init(path:))
        StopSignal.install()
        return try trainer.run(start: start)
    }
}

/// The network of a job, as users describe it.
public struct ModelSpec: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case unet, dilated, resnetUNet = "resnet-unet" }
    public var kind = Kind.unet
    /// "r1" or "r1-nails": the reference network of shared/R1.md (widths 32–256, 512).
    public var preset: String? = nil
    public var widths: [Int] = [32, 64, 128, 256]
    public var bottleneckWidth: Int? = nil
    public var bottleneckDilations: [Int] = [1, 2, 4]
    public var upsampling: UpsamplingMode = .bilinear
    /// ResNet U-Net: pretrained encoder weights (safetensors) loaded before training (`EncoderWeights`).
    public var encoderWeights: String? = nil
    /// Dilated CNN: channels per layer and the dilation schedule.
    public var width = 32
    public var dilations: [Int] = [1, 2, 4, 8, 4, 2, 1]
    /// ResNet U-Net (smp's `Unet`): encoder, decoder block widths and output stride.
    public var encoder = ResNetEncoder.resnet34
    public var decoderChannels = ResNetUNetConfiguration.defaultDecoderChannels
    public var outputStride = 32

    public init() {}

    /// The settings that build `architecture` (the inverse of `architecture(inputChannels:classes:)`),
    /// so a bundle's network is range-checked by the same rules as the YAML keys.
    public init(architecture: ModelArchitecture) {
        switch architecture {
        case .unet(let c):
            kind = .unet
            widths = c.widths
            bottleneckWidth = c.bottleneckWidth
            bottleneckDilations = c.bottleneckDilations
            upsampling = c.upsampling
        case .dilated(let c):
            kind = .dilated
            width = c.width
            dilations = c.dilations
        case .resnetUNet(let c):
            kind = .resnetUNet
            encoder = c.encoder
            decoderChannels = c.decoderChannels
            outputStride = c.outputStride
        }
    }

    public func architecture(inputChannels: Int, classes: Int) throws -> ModelArchitecture {
        if let preset {
            guard var c = UNetConfiguration.preset(preset) else {
                throw TerraSegError(.invalidArgument, path: "model.preset", problem: "unknown preset '\(preset)'", hint: "Use r1 or r1-nails")
            }
            c.inputChannels = inputChannels
            c.classes = classes
            return .unet(c)
        }
        switch kind {
        case .unet:
            guard !widths.isEmpty, widths.allSatisfy({ $0 > 0 }) else {
                throw TerraSegError(.invalidArgument, path: "model.widths", problem: "widths must be positive, one per level", hint: "e.g. [16, 32, 64, 128]")
            }
            return .unet(UNetConfiguration(inputChannels: inputChannels, classes: classes, widths: widths,
                                           bottleneckWidth: bottleneckWidth ?? 2 * widths.last!,
                                           bottleneckDilations: bottleneckDilations, upsampling: upsampling))
        case .dilated:
            return .dilated(DilatedNetConfiguration(inputChannels: inputChannels, classes: classes, width: width, dilations: dilations))
        case .resnetUNet:
            return .resnetUNet(ResNetUNetConfiguration(inputChannels: inputChannels, classes: classes, encoder: encoder,
                                                       decoderChannels: decoderChannels, outputStride: outputStride))
        }
    }
}
