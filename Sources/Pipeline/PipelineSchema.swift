import Core
import Foundation
import GeoRaster
import Inference
import ModelIO
import Models
import Tiling
import Training
import Yams

/// The type of a pipeline key, for validation messages and the reference.
public indirect enum FieldType: Sendable {
    /// A whole number within the bounds.
    case int(Bounds)
    /// A finite number within the bounds.
    case number(Bounds)
    /// A memory size (`8G`, `512M`, or bytes; `ByteSize`), bounds in bytes.
    case size(Bounds)
    case bool
    case string
    case choice([String])
    /// An input file that must exist (relative to the pipeline file).
    case inputPath
    /// One input file, or a list of band files of one scene.
    case inputPaths
    /// A directory to write.
    case outputPath
    case list(FieldType)
    case object([Field])
    /// The first of these forms that the value fits (e.g. a template, or a mapping of options).
    case oneOf([FieldType])

    var name: String {
        switch self {
        case .int(let b): "integer" + b.rangeText(true)
        case .number(let b): "number" + b.rangeText(false)
        case .size(let b): "size such as 8G or 512M" + (b.lower.map { " (≥ \(ByteSize.text($0)))" } ?? "")
        case .bool: "true/false"
        case .string: "text"
        case .choice(let c): c.joined(separator: " | ")
        case .inputPath: "path"
        case .inputPaths: "path or list of paths"
        case .outputPath: "path"
        case .list(let t): "list of \(t.name)"
        case .object: "mapping"
        case .oneOf(let forms): forms.map(\.name).joined(separator: " or ")
        }
    }
}

public struct Field: Sendable {
    public var key: String
    public var type: FieldType
    public var defaultText: String
    public var doc: String
    public var required: Bool

    public init(_ key: String, _ type: FieldType, _ defaultText: String, _ doc: String, required: Bool = false) {
        self.key = key
        self.type = type
        self.defaultText = defaultText
        self.doc = doc
        self.required = required
    }
}

/// One problem in a pipeline file: where, what, and the fix.
public struct PipelineIssue: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var line: Int?
    public var key: String
    public var problem: String
    public var fix: String

    public var description: String {
        "\(file)\(line.map { ":\($0)" } ?? ""): \(key): \(problem). \(fix)"
    }
}

/// All problems found, reported together.
public struct PipelineError: Error, CustomStringConvertible, Sendable {
    public var issues: [PipelineIssue]
    public var description: String {
        issues.count == 1 ? issues[0].description
            : "\(issues.count) problems in the pipeline:\n" + issues.map { "  " + $0.description }.joined(separator: "\n")
    }
}

/// Every key a pipeline file may hold, with its type, default and meaning. The reference
/// in docs/pipeline-reference.md is generated from this (`terraseg run --reference`).
public enum PipelineSchema {
    static let classFields: [Field] = [
        Field("value", .int(.any), "—", "Label value of the class in label rasters and in output maps.", required: true),
        Field("name", .string, "—", "Class name, written into the map's attribute table.", required: true),
        Field("color", .string, "palette", "Display colour #rrggbb (colour table and legend)."),
    ]

    static let sceneFields: [Field] = [
        Field("image", .inputPaths, "—", "The scene: one raster; a list of band files (stacked in order, each read onto the scene grid; a file given as a list of files is their mosaic); or a folder of band files found by data.band_names; or a local STAC Item (.json) whose assets of data.band_names (asset keys or eo:bands names) are the band files.", required: true),
        Field("labels", .inputPath, "—", "Label raster (one of labels / vector_labels); on another grid or CRS it is warped onto the scene grid (nearest; mode when coarser)."),
        Field("vector_labels", .inputPath, "—", "Polygons (GeoPackage, GeoJSON, Shapefile) rasterised onto the image grid."),
        Field("label_attribute", .string, "—", "Attribute of vector_labels holding the class value or class name."),
        Field("layer", .string, "first layer", "Layer of vector_labels."),
        Field("name", .string, "from the image files", "Name of the scene's maps (NAME_map.tif) when prediction.scenes is not given."),
        Field("burn", .int(.any), "—", "vector_labels: every feature is this class value (one-class labels such as buildings; instead of label_attribute)."),
        Field("background", .int(.any), "unlabelled", "vector_labels: class value of the valid pixels outside every feature."),
        Field("unmatched", .choice(["error", "ignore"]), "error",
              "vector_labels: features whose attribute matches no class (names compared ignoring case) are refused, listed with their counts; ignore skips them. Pixels where features of different classes overlap are always left unlabelled."),
        Field("role", .choice(["split", "train", "validation"]), "split",
              "split: cut spatially by tiling.split; train / validation: the whole scene in one set (e.g. a held-out scene)."),
    ]

    static let remapFields: [Field] = [
        Field("from", .list(.int(.any)), "—", "Label values (several may map to one class).", required: true),
        Field("to", .int(.any), "—", "The class value they become.", required: true),
    ]

    static let maskFields: [Field] = [
        Field("template", .string, "—", "Mask template with `{id}`, quoted: `template: \"masks/{id}.png\"`.", required: true),
        Field("colors", .bool, "false", "RGB colour-coded masks: each colour is the class with that classes[].color; colours listed under data.ignore are unlabelled; any other colour is an error naming it and a chip."),
    ]

    static let tileSetFields: [Field] = [
        Field("root", .inputPath, "—", "Folder of the tile set.", required: true),
        Field("images", .list(.string), "—", "Chip templates with `{id}`, one per band file, quoted: `images: [\"images/{id}.tif\"]`.", required: true),
        Field("mask", .oneOf([.string, .object(maskFields)]), "—",
              "Mask template with `{id}`, quoted: `mask: \"masks/{id}_m.png\"` (band 1 holds the label values; a palette PNG's index is the value), or `{template: …, colors: true}` for RGB colour-coded masks.", required: true),
        Field("split", .object([
            Field("method", .choice(["hash", "lists", "folders"]), "hash",
                  "hash: a seeded hash of the chip id gives tiling.split.validation_fraction of the chips to validation; lists: the dataset's own lists; folders: its train/, val/ and test/ sub-folders (also training/, validation/, testing/), each holding the templates' files."),
            Field("train", .inputPath, "—", "lists: the training chips, one id or file name per line (chips in no list are reported and not used)."),
            Field("validation", .inputPath, "—", "lists: the validation chips."),
            Field("test", .inputPath, "—", "lists: the test chips (never trained on; `terraseg evaluate --tiles` scores them)."),
        ]), "method: hash", "Which chips train, validate and test."),
    ]

    public static let fields: [Field] = [
        Field("name", .string, "pipeline", "Name of the job (used for the default output folder)."),
        Field("output", .outputPath, "runs/<name>", "Run directory: model bundle, maps, evaluation, report."),
        Field("memory", .size(.between(0x1p26, 0x1p50)), "physical memory",
              "Memory training and prediction may use: settings whose estimated peak needs more are refused before any work; streaming prediction keeps its strips within half of it (1 GiB when unset)."),
        Field("data", .object([
            Field("scenes", .list(.object(sceneFields)), "[]", "Labelled scenes."),
            Field("tile_sets", .list(.object(tileSetFields)), "[]", "Folders of image/mask chips (LandCover.ai, 38-Cloud)."),
            Field("bands", .list(.int(.atLeast(1))), "all non-alpha bands", "1-based bands fed to the model, in order."),
            Field("classes", .list(.object(classFields)), "—", "The classes: value, name, colour.", required: true),
            Field("ignore", .list(.oneOf([.int(.any), .string])), "[]", "Label values excluded from loss and metrics (nodata, unlabelled); with colour-coded masks also colours, quoted: [0, \"#000000\"]."),
            Field("band_names", .list(.string), "from file names", "Sentinel-2 band names of the image's sources in order (B02, B8A, …); with them an image may be a folder of band files."),
            Field("resampling", .list(.choice(Resampling.allCases.map(\.rawValue))), "[]",
                  "Resampling of sources not on the scene grid: one for all or one per source; none given: bilinear (average when coarsening), nearest (mode when coarsening) for categorical bands."),
            Field("nodata", .list(.number(.any)), "[]", "Nodata value of the sources, for files without a nodata tag: one for all or one per source."),
            Field("grid", .inputPath, "the first source's grid", "A raster whose grid (size, pixel size, CRS) the scenes are read on."),
            Field("resolution", .number(Bounds(lower: 0, lowerOpen: true, upper: 1e7)), "the first source's",
                  "Pixel size of the scene grid in its CRS's units (with optional crs and bounds)."),
            Field("crs", .string, "the first source's CRS", "CRS of the resolution grid (EPSG:32631, WKT)."),
            Field("bounds", .list(.number(.any)), "the first source's area", "Area of the resolution grid: [west, south, east, north] in its CRS."),
            Field("remap", .list(.object(remapFields)), "[]",
                  "Rules rewriting label-raster values before the classes read them, e.g. CDL codes to classes; a value no rule maps is an error unless listed under ignore."),
        ]), "—", "Training data.", required: true),
        Field("normalization", .choice(NormalizationMethod.allCases.map(\.rawValue)), "standardize",
              "Per-band scaling from training statistics: (v−mean)/std, or 2–98 % percentile clip to [0, 1]."),
        Field("tiling", .object([
            Field("patch", .int(.between(8, 4096)), "128", "Training patch side in pixels (a multiple of 2^depth for a U-Net)."),
            Field("stride", .int(.between(1, 4096)), "patch / 2", "Distance between training patches."),
            Field("max_invalid", .number(.fraction), "0.5", "Skip patches with a larger fraction of nodata or unlabelled pixels."),
            Field("split", .object([
                Field("method", .choice(SplitOptions.Method.allCases.map(\.rawValue)), "blocks", "Spatial train/validation split."),
                Field("train_fraction", .number(.openFraction), "0.8", "rows/columns: share of the scene (from the top/left) that trains."),
                Field("block_size", .int(.between(1, 16384)), "4 × patch", "blocks: block side in pixels."),
                Field("validation_fraction", .number(.openFraction), "0.2", "blocks: share of blocks that validate."),
            ]), "", "Validation split (spatial, never random patches)."),
        ]), "", "How scenes are cut into training patches."),
        Field("model", .object([
            Field("kind", .choice(ModelSpec.Kind.allCases.map(\.rawValue)), "unet",
                  "U-Net, dilated CNN (no down-sampling) or resnet-unet (segmentation_models_pytorch's Unet with a ResNet encoder, same names and results)."),
            Field("encoder", .choice(ResNetEncoder.allCases.map(\.rawValue)), "resnet34", "ResNet U-Net: the encoder (smp's encoder_name)."),
            Field("output_stride", .int(.between(8, 32)), "32",
                  "ResNet U-Net: 32, 16 or 8 (smp's encoder_output_stride: the last stages dilate instead of down-sampling; patches and windows are multiples of it)."),
            Field("decoder_channels", .list(.int(.between(16, 4096))), "[256, 128, 64, 32, 16]",
                  "ResNet U-Net: channels of the five decoder blocks (smp's decoder_channels), multiples of 16."),
            Field("preset", .choice(["r1", "r1-nails"]), "—", "The reference network R1 (overrides widths)."),
            Field("widths", .list(.int(.between(1, 4096))), "[32, 64, 128, 256]", "U-Net channels per level (depth = count)."),
            Field("bottleneck_width", .int(.between(1, 4096)), "2 × last width", "U-Net bottleneck channels."),
            Field("bottleneck_dilations", .list(.int(.between(1, 256))), "[1, 2, 4]", "Dilations of the bottleneck convolutions."),
            Field("upsampling", .choice(UpsamplingMode.allCases.map(\.rawValue)), "bilinear",
                  "U-Net decoder upsampling: fixed (nails: bed-of-nails) or learned (transposed convolution; 1×1 convolution then max-unpooling with the encoder's pooling indices)."),
            Field("width", .int(.between(1, 4096)), "32", "Dilated CNN channels."),
            Field("dilations", .list(.int(.between(1, 256))), "[1, 2, 4, 8, 4, 2, 1]", "Dilated CNN dilation schedule."),
            Field("encoder_weights", .inputPath, "none (random)",
                  "ResNet U-Net: pretrained encoder weights (safetensors) that initialise the encoder: a torchvision or timm ResNet's state dict (conv1.weight, bn1.*, layer1.0.conv1.weight, …; fc.* is not used) or one with smp's names (encoder.conv1.weight, …). Weights for 3 bands on N-band scenes are adapted as smp does: band i takes RGB weight i mod 3, all scaled by 3/N (one band: their sum). The file's identity is part of the training fingerprint."),
        ]), "", "The network."),
        Field("loss", .object([
            Field("terms", .list(.object([
                Field("kind", .choice(LossOptions.Kind.allCases.map(\.rawValue)), "—", "Loss term.", required: true),
                Field("weight", .number(.between(0, 1000)), "1", "Weight of the term."),
            ])), "[focal, dice]", "Weighted sum of losses."),
            Field("gamma", .number(.between(0, 100)), "2", "Focal loss focusing parameter."),
            Field("alpha", .list(.number(.between(0, 1000))), "none", "Per-class weights of focal / cross-entropy."),
            Field("class_weights", .list(.number(.between(0, 1000))), "equal", "Per-class weights of Dice."),
            Field("smoothing", .number(.between(0, 1000)), "0", "Dice smoothing."),
        ]), "", "Training loss."),
        Field("optimizer", .object([
            Field("kind", .choice(OptimizerOptions.Kind.allCases.map(\.rawValue)), "adam", "Optimiser."),
            Field("learning_rate", .number(Bounds(lower: 0, lowerOpen: true, upper: 10)), "0.001", "Initial learning rate."),
            Field("weight_decay", .number(.fraction), "0", "Weight decay (decoupled for adamw)."),
            Field("momentum", .number(Bounds(lower: 0, upper: 1, upperOpen: true)), "0.9", "SGD momentum."),
            Field("nesterov", .bool, "false", "SGD Nesterov momentum."),
            Field("beta1", .number(Bounds(lower: 0, upper: 1, upperOpen: true)), "0.9", "Adam β1."),
            Field("beta2", .number(Bounds(lower: 0, upper: 1, upperOpen: true)), "0.999", "Adam β2."),
            Field("epsilon", .number(Bounds(lower: 0, lowerOpen: true, upper: 1)), "1e-8", "Adam ε."),
        ]), "", "Optimiser."),
        Field("schedule", .object([
            Field("kind", .choice(ScheduleOptions.Kind.allCases.map(\.rawValue)), "constant", "Learning-rate schedule."),
            Field("warmup_epochs", .number(.between(0, 100_000)), "0", "Linear warm-up length."),
            Field("step_epochs", .int(.between(1, 100_000)), "10", "step: epochs between decays."),
            Field("gamma", .number(Bounds(lower: 0, lowerOpen: true, upper: 1)), "0.1", "step: decay factor."),
            Field("minimum_factor", .number(.fraction), "0", "cosine: final learning rate / initial."),
        ]), "", "Learning-rate schedule."),
        Field("training", .object([
            Field("epochs", .int(.between(1, 100_000)), "20", "Passes over the training patches."),
            Field("batch_size", .int(.between(1, 4096)), "8", "Patches per step."),
            Field("seed", .int(.atLeast(0)), "42", "Seed of initialisation, split, shuffling and augmentation."),
            Field("cache_megabytes", .int(.between(0, 1_048_576)), "1024", "Keep normalised patches in memory up to this size; the rest are read from disk each epoch by a reader thread ahead of the network (0: no cache)."),
            Field("reader_threads", .int(.between(1, 16)), "2", "Threads reading the patches that are not cached ahead of the network, each with its own file handles (tile-set chips, and scenes of one image and one label file; other scenes are read by one, with a notice). The result does not depend on it."),
            Field("sync_batchnorm", .bool, "false", "Under mpirun/srun, batch norm over the global batch (as one process) instead of each rank's shard."),
            Field("freeze_encoder_epochs", .int(.between(0, 100_000)), "0",
                  "ResNet U-Net: epochs at the start during which the encoder (weights, batch-norm running statistics, optimiser state) is not updated; the decoder and head train. Its batch norms still normalise with each batch's statistics; resuming continues the freeze."),
            Field("precision", .choice(["fp32", "bf16", "auto"]), "fp32",
                  "Convolution arithmetic: bf16 (needs AVX512_BF16 or AMX, and a U-Net or dilated CNN; refused elsewhere) or auto (bf16 where both hold, else fp32, said) keep per layer the faster of bf16 and fp32, measured at the first step; weights, optimiser, loss and batch norm stay fp32."),
        ]), "", "Training loop."),
        Field("augmentation", .object([
            Field("flips", .bool, "true", "Random flips."),
            Field("rotations", .bool, "true", "Random 90° rotations."),
            Field("gain_jitter", .number(Bounds(lower: 0, upper: 1, upperOpen: true)), "0", "Per-band gain jitter ±fraction."),
            Field("offset_jitter", .number(.between(0, 100)), "0", "Per-band offset jitter (normalised units)."),
        ]), "", "Training augmentation."),
        Field("prediction", .object([
            Field("enabled", .bool, "true", "Map scenes after training."),
            Field("scenes", .list(.inputPaths), "the training images", "Scenes to map (a STAC Item .json: its assets of the model's band names). Each map gets a STAC Item beside it (NAME_map.stac.json)."),
            Field("tile", .int(.between(16, 16384)), "512", "Core tile written per window."),
            Field("margin", .int(.between(0, 4096)), "receptive-field radius", "Context around each tile; smaller is faster but may show seams."),
            Field("batch_size", .int(.between(1, 4096)), "2", "Windows per network call."),
            Field("blend", .choice(BlendMode.allCases.map(\.rawValue)), "stream",
                  "stream: full-width strips, each feature computed once (equals one window over the scene; models with learned upsampling, and tta, use centre); centre: write each window's core (tile, margin); hann: weighted mean of overlapping windows."),
            Field("tta", .bool, "false", "Average the 8 flips/rotations."),
            Field("precision", .choice(Precision.allCases.map(\.rawValue)), "fp32",
                  "fp32; bf16: per layer the faster of bf16 convolutions with Float32 sums and fp32, measured at first use (predicted in windows; refused on a CPU without AVX512_BF16 or AMX); int8: calibrate the trained model on the first scene to map (as `terraseg quantize`, one extra fp32 pass) and map in int8 convolutions (refused on a CPU without VNNI); auto: int8 where the CPU has VNNI, else bf16 where it has AVX512_BF16 or AMX, else fp32 (says which)."),
            Field("cog", .bool, "false", "Write Cloud-Optimised GeoTIFFs."),
            Field("probabilities", .bool, "false", "Also write per-class probabilities."),
            Field("confidence", .bool, "false", "Also write the maximum probability."),
            Field("compression", .choice(CompressionChoice.allCases.map(\.rawValue)), "deflate", "GeoTIFF compression."),
            Field("allow_mismatch", .bool, "false",
                  "Map scenes whose data type family or pixel size (beyond 1.5×) differ from the training scenes', with a warning, instead of refusing them."),
            Field("min_mapping_unit", .int(.between(0, 100_000_000)), "0",
                  "Minimum mapping unit in pixels: class patches smaller than this take the class of their largest neighbouring patch (GDAL's sieve, before overviews and polygons; nodata untouched). 0: none."),
            Field("mmu_connectedness", .choice(Connectedness.allCases.map(\.rawValue)), "4",
                  "Pixels joined into one patch (for the minimum mapping unit and the polygons): 4 (edges) or 8 (edges and corners)."),
            Field("polygons", .bool, "false",
                  "Also write the map's class polygons beside it (X_map.gpkg, layer `classes`: class, name, area in CRS units² or m² for a geographic CRS)."),
            Field("polygon_simplify", .number(.between(0, 1e7)), "0",
                  "Simplification tolerance of the polygons in CRS units (0: the pixel edges)."),
        ]), "", "Whole-scene prediction."),
        Field("evaluation", .object([
            Field("enabled", .bool, "true", "Score the maps against labels."),
            Field("labels", .list(.inputPath), "the training labels", "Label rasters, one per predicted scene."),
            Field("region", .choice(EvaluationSpec.Region.allCases.map(\.rawValue)), "validation", "Score the validation part only, or the whole map."),
        ]), "", "Evaluation of the maps."),
    ]

    // MARK: - Lookup

    /// The field of a key such as `training.batch_size`, `model.widths[2]` or
    /// `loss.terms[].weight` (list indices step into the element).
    public static func field(_ key: String) -> Field? {
        var current = fields
        var found: Field?
        for part in key.split(separator: ".") {
            let name = part.split(separator: "[").first.map(String.init) ?? String(part)
            guard let f = current.first(where: { $0.key == name }) else { return nil }
            found = f
            switch f.type {
            case .object(let sub), .list(.object(let sub)): current = sub
            case .oneOf(let forms): current = forms.flatMap { form -> [Field] in if case .object(let sub) = form { return sub } else { return [] } }
            default: current = []
            }
        }
        return found
    }

    /// The range check of a numeric key: the one the loader applies to the key's YAML
    /// values, for the same setting reached another way (a CLI flag, a typed option).
    public static func check(_ key: String, _ value: Double) -> SettingIssue? {
        guard let field = field(key) else { preconditionFailure("no pipeline key \(key)") }
        var type = field.type
        if case .list(let element) = type { type = element }
        let result: (problem: String, fix: String)?
        switch type {
        case .int(let b): result = b.check(value, integer: true)
        case .number(let b): result = b.check(value, integer: false)
        case .size(let b): result = sizeCheck(b, value)
        default: preconditionFailure("\(key) is not numeric")
        }
        return result.map { SettingIssue(key: key, problem: $0.problem, fix: $0.fix) }
    }

    /// The range check of a size, in its own units (`must be at least 64M, got 0`).
    static func sizeCheck(_ b: Bounds, _ bytes: Double) -> (problem: String, fix: String)? {
        if let lower = b.lower, bytes < lower {
            return ("must be at least \(ByteSize.text(lower)), got \(ByteSize.text(bytes))", "Give \(ByteSize.text(lower)) or more, e.g. 8G")
        }
        if let upper = b.upper, bytes > upper {
            return ("must be at most \(ByteSize.text(upper)), got \(ByteSize.text(bytes))", "Lower it to \(ByteSize.text(upper)) or less")
        }
        return nil
    }

    // MARK: - Reference

    /// The reference of every key, as Markdown.
    public static func referenceMarkdown() -> String {
        var out = """
        # Pipeline file reference

        A pipeline file (YAML) declares a whole job; `terraseg run FILE.yaml` validates all of it before
        any work starts, then trains, predicts, evaluates and writes a report, skipping stages whose
        outputs are up to date. Paths are relative to the pipeline file. Numbers must lie in the range
        shown with their type. The flags of `terraseg train` and `terraseg predict` set the same keys
        (each flag's help names its key) and are refused outside the same ranges, with the same messages.
        Generated by `terraseg run --reference`; do not edit by hand.

        | key | type | default | meaning |
        |---|---|---|---|

        """
        func walk(_ fields: [Field], prefix: String) {
            for f in fields {
                let key = prefix + f.key
                let def = f.required ? "**required**" : f.defaultText.isEmpty ? "" : "`\(f.defaultText)`"
                switch f.type {
                case .object(let sub):
                    out += "| `\(key)` | mapping | | \(f.doc) |\n"
                    walk(sub, prefix: key + ".")
                case .list(.object(let sub)):
                    out += "| `\(key)` | list | \(def) | \(f.doc) |\n"
                    walk(sub, prefix: key + "[].")
                case .oneOf(let forms):
                    out += "| `\(key)` | \(f.type.name.replacingOccurrences(of: "|", with: "\\|")) | \(def) | \(f.doc) |\n"
                    for case .object(let sub) in forms { walk(sub, prefix: key + ".") }
                default:
                    out += "| `\(key)` | \(f.type.name.replacingOccurrences(of: "|", with: "\\|")) | \(def) | \(f.doc) |\n"
                }
            }
        }
        walk(fields, prefix: "")
        out += tileSetGuide
        return out
    }

    /// The tile-set part of the reference: chip sizes, skipped chips, and one worked example
    /// per dataset layout (each ```yaml block is a whole pipeline that the loader accepts).
    static let tileSetGuide = #"""

        ## Tile sets

        A tile set is a folder of image chips and mask chips matched by templates holding `{id}`
        (quote them: in YAML `{` opens a mapping). Chips may have any size: patches are cut from
        each chip as from a scene; a chip smaller than `tiling.patch` gives one patch at its origin,
        the pixels beyond it invalid. A chip that gives no patch (too much nodata for
        `tiling.max_invalid`, too small, or unreadable) is skipped; training prints how many were
        skipped and names the first five with the reason, and fails only when no usable chip is left.
        Test chips (`split.test`, a `test/` folder) are never trained on; `terraseg run` scores
        them in its evaluate stage (a table per tile set in `evaluation.json` and the report; kept
        while the model and the test chips are unchanged; a changed training chip retrains), and
        `terraseg evaluate --model BUNDLE --tiles ROOT --tile-images … --tile-mask … --tile-split …`
        scores them for any bundle. A mask without georeference (a plain PNG) beside a
        georeferenced chip is read on the chip's pixel grid when it has the chip's size (said
        once per mask folder); a chip whose plain mask has another size is skipped and named.

        Sets larger than memory: normalised patches are kept in memory up to
        `training.cache_megabytes` (`--cache-megabytes`); the others are read from their chips
        every epoch by `training.reader_threads` threads (`--reader-threads`), two batches ahead
        of the network (up to eight for small patches), so reading overlaps training (progress
        shows patches/s and chips/s). `0` keeps none in memory. Chips are opened when read, at
        most 32 at a time per thread, so a set of any number of chips stays within the limit on
        open files; a chip is reopened as first opened (no folder listing or CRS lookup).

        LandCover.ai: chips and PNG masks cut by the dataset's `split.py` (its GeoTIFF
        orthophotos cut with `gdal_translate -srcwin` work alike, their plain PNG masks read on
        the chips' pixel grid), the dataset's own lists of chip ids:

        ```yaml
        data:
          tile_sets:
            - root: landcover.ai/output
              images: ["{id}.jpg"]
              mask: "{id}_m.png"
              split: {method: lists, train: landcover.ai/train.txt, validation: landcover.ai/val.txt, test: landcover.ai/test.txt}
          classes:
            - {value: 0, name: background}
            - {value: 1, name: building}
            - {value: 2, name: woodland}
            - {value: 3, name: water}
            - {value: 4, name: road}
        tiling: {patch: 256}
        ```

        38-Cloud: one file per band, the dataset's `train/` and `test/` folders (chips moved into a
        `val/` folder validate; without one there is no validation set, and `method: hash` draws
        validation chips from all chips instead):

        ```yaml
        data:
          tile_sets:
            - root: 38-Cloud
              images: ["red/red_{id}.TIF", "green/green_{id}.TIF", "blue/blue_{id}.TIF", "nir/nir_{id}.TIF"]
              mask: "gt/gt_{id}.TIF"
              split: {method: folders}
          classes: [{value: 0, name: clear}, {value: 255, name: cloud}]
        tiling: {patch: 192}
        ```

        Colour-coded masks (DeepGlobe land cover; ISPRS Potsdam and Vaihingen alike with their
        six colours): each RGB colour is the class with that `color`, colours listed under
        `data.ignore` are unlabelled, any other colour stops training naming it and a chip
        (`--tile-mask-colors` and `--ignore '0,#000000'` on the command line):

        ```yaml
        data:
          tile_sets:
            - root: deepglobe/train
              images: ["{id}_sat.jpg"]
              mask: {template: "{id}_mask.png", colors: true}
              split: {method: hash}
          classes:
            - {value: 1, name: urban, color: "#00ffff"}
            - {value: 2, name: agriculture, color: "#ffff00"}
            - {value: 3, name: rangeland, color: "#ff00ff"}
            - {value: 4, name: forest, color: "#00ff00"}
            - {value: 5, name: water, color: "#0000ff"}
            - {value: 6, name: barren, color: "#ffffff"}
          ignore: ["#000000"]
        tiling: {patch: 256, split: {method: blocks, validation_fraction: 0.1}}
        training: {cache_megabytes: 2048}
        ```

        """#
}
