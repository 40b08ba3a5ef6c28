import Foundation
import Inference
import Models
import Tiling
import Training

/// The one memory check: the peak a training run or a prediction would need, estimated from
/// the settings and the network's configuration, against the budget (`memory:` / `--memory`,
/// by default the machine's physical memory), before any work. An absurd tile or margin is
/// refused with the setting to lower instead of dying in an allocation after training.
public struct MemoryBudget: Sendable {
    public var bytes: Double
    /// Where the budget comes from, for messages.
    public var source: String

    /// `memory` in bytes; nil: the machine's physical memory.
    public init(memory: Int?) {
        if let memory {
            bytes = Double(memory)
            source = "the memory budget of \(ByteSize.text(bytes))"
        } else {
            bytes = MemoryBudget.physicalMemory
            source = "this machine's \(ByteSize.text(bytes)) of physical memory"
        }
    }

    /// sysconf's physical pages × page size.
    public static var physicalMemory: Double {
        Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Peak bytes of training: weights with their gradients and Adam's two moments, a batch's
    /// activations with their gradients, and the patch cache when full.
    public static func trainingBytes(_ a: ModelArchitecture, batch: Int, patch: Int, cacheMegabytes: Int) -> Double {
        4 * (4 * a.parameterValues + a.activationValues(batch: batch, size: patch, training: true)) + Double(cacheMegabytes) * 0x1p20
    }

    /// Peak bytes of prediction: the weights, the network over a batch of windows, and three
    /// batches of input, validity and score buffers (reader, network and writer stages).
    public static func predictionBytes(_ a: ModelArchitecture, batch: Int, window: Int) -> Double {
        let pixels = Double(window) * Double(window) * Double(batch)
        return 4 * (a.parameterValues + a.activationValues(batch: batch, size: window, training: false)
                    + 3 * pixels * (Double(a.inputChannels) + Double(a.classes) + 0.25))
    }

    /// Bytes the strip buffers of streaming prediction may hold (what sets the strip height):
    /// half of `memory` when given (the rest covers the weights, the rows in flight between the
    /// reader, network and writer, and GDAL's cache), else 1 GiB.
    public static func streamBytes(memory: Int?) -> Int { memory.map { $0 / 2 } ?? 1 << 30 }

    /// Side of the windows prediction reads: tile + 2 × margin, rounded to the alignment.
    public static func window(_ a: ModelArchitecture, tile: Int, margin: Int?) -> Int {
        PredictionGrid(width: 1, height: 1, tileSize: tile, margin: margin ?? a.receptiveRadius, alignment: a.alignment).inputSize
    }

    /// The problem of training `a` with `options` when it needs more than the budget.
    public func trainingIssues(_ a: ModelArchitecture, options o: TrainingOptions) -> [SettingIssue] {
        let cache = o.cacheMegabytes
        let need = Self.trainingBytes(a, batch: o.batchSize, patch: o.patchSize, cacheMegabytes: cache)
        guard need > bytes else { return [] }
        var lower: [(key: String, need: Double)] = []
        if o.batchSize > 1 { lower.append(("training.batch_size", Self.trainingBytes(a, batch: o.batchSize / 2, patch: o.patchSize, cacheMegabytes: cache))) }
        let halfPatch = PredictionGrid.roundUp(o.patchSize / 2, to: a.alignment)
        if halfPatch >= 8 && halfPatch < o.patchSize {
            lower.append(("tiling.patch", Self.trainingBytes(a, batch: o.batchSize, patch: halfPatch, cacheMegabytes: cache)))
        }
        if let (key, narrower) = a.halvingWidths {
            lower.append((key, Self.trainingBytes(narrower, batch: o.batchSize, patch: o.patchSize, cacheMegabytes: cache)))
        }
        if cache > 0 { lower.append(("training.cache_megabytes", Self.trainingBytes(a, batch: o.batchSize, patch: o.patchSize, cacheMegabytes: cache / 2))) }
        return [issue("training needs about \(ByteSize.text(need)) (batches of \(o.batchSize) patches of \(o.patchSize) px through \(a.name), a patch cache of \(cache) MB)",
                      lower: lower)]
    }

    /// The problem of predicting with `a` and `options` when it needs more than the budget.
    /// None when the scene streams (`blend: stream` and a model that can): windows do not
    /// apply, and the strips are sized to the budget (`streamBytes`).
    public func predictionIssues(_ a: ModelArchitecture, tile: Int, margin: Int?, batch: Int, blend: BlendMode = .centre) -> [SettingIssue] {
        if blend == .stream && a.windowsOnly == nil { return [] }
        let window = Self.window(a, tile: tile, margin: margin)
        let need = Self.predictionBytes(a, batch: batch, window: window)
        guard need > bytes else { return [] }
        var lower: [(key: String, need: Double)] = []
        if batch > 1 { lower.append(("prediction.batch_size", Self.predictionBytes(a, batch: batch / 2, window: window))) }
        if tile / 2 >= 16 {
            lower.append(("prediction.tile", Self.predictionBytes(a, batch: batch, window: Self.window(a, tile: tile / 2, margin: margin))))
        }
        let m = margin ?? a.receptiveRadius
        if m > 0 { lower.append(("prediction.margin", Self.predictionBytes(a, batch: batch, window: Self.window(a, tile: tile, margin: m / 2)))) }
        return [issue("prediction needs about \(ByteSize.text(need)) (batches of \(batch) windows of \(window) px through \(a.name))",
                      lower: lower)]
    }

    /// Keyed by the setting whose halving saves the most (`memory` when none can be lowered).
    func issue(_ what: String, lower: [(key: String, need: Double)]) -> SettingIssue {
        let problem = "\(what), more than \(source)"
        let more = "or set memory: (--memory) if more is available"
        guard let best = lower.min(by: { $0.need < $1.need }) else {
            return SettingIssue(key: "memory", problem: problem, fix: "Use a smaller model, \(more)")
        }
        let others = lower.map(\.key).filter { $0 != best.key }
        let also = others.isEmpty ? "" : others.count == 1 ? "; \(others[0]) counts too"
            : "; \(others.dropLast().joined(separator: ", ")) and \(others.last!) count too"
        return SettingIssue(key: best.key, problem: problem,
                            fix: "Lower \(best.key) (at half it needs about \(ByteSize.text(best.need))\(also)), \(more)")
    }
}

extension ModelArchitecture {
    /// The same network with half the channels, and the key that sets them (nil when they
    /// cannot halve).
    var halvingWidths: (key: String, architecture: ModelArchitecture)? {
        switch self {
        case .unet(var c):
            guard c.widths.contains(where: { $0 > 1 }) || c.bottleneckWidth > 1 else { return nil }
            c.widths = c.widths.map { max(1, $0 / 2) }
            c.bottleneckWidth = max(1, c.bottleneckWidth / 2)
            return ("model.widths", .unet(c))
        case .dilated(var c):
            guard c.width > 1 else { return nil }
            c.width /= 2
            return ("model.width", .dilated(c))
        case .resnetUNet(var c):
            guard c.decoderChannels.contains(where: { $0 > 16 }) else { return nil }
            c.decoderChannels = c.decoderChannels.map { max(16, $0 / 2 / 16 * 16) }
            return ("model.decoder_channels", .resnetUNet(c))
        }
    }
}
