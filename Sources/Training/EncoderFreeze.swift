import Core
import Engine
import Foundation
import Models

/// `training.freeze_encoder_epochs: E`: for the first E epochs the encoder (every tensor
/// named `encoder.…`: weights, batch-norm running statistics, and the optimiser's state for
/// them) stays exactly as it was while the decoder and head train. The values are saved when
/// a frozen epoch starts and put back after every optimiser step, so nothing the step or the
/// batch norms' running averages wrote survives; the forward pass still normalises with the
/// batch's statistics, as PyTorch does for parameters with `requires_grad=False` in train
/// mode. Resume-safe: a checkpoint holds the frozen values, which the next epoch saves again.
final class EncoderFreeze {
    let epochs: Int
    /// The frozen memory: parameter values, buffers and optimiser state, with their owners
    /// (told when they change, so layers refresh their reordered copies).
    private let regions: [(pointer: UnsafeMutablePointer<Float>, count: Int, owner: Parameter?)]
    private var saved: [[Float]] = []

    /// Nil when nothing is frozen (E = 0); refused when the network has no encoder.
    init?(network: any SegmentationNetwork, optimizer: any Optimizer, epochs: Int, errorPath: String) throws {
        guard epochs > 0 else { return nil }
        let own = (network.namedParameters + network.namedBuffers).filter { $0.0.hasPrefix("encoder.") }
        guard !own.isEmpty else {
            throw TerraSegError(.invalidArgument, path: errorPath, problem: "training.freeze_encoder_epochs is \(epochs) but the network has no encoder",
                                hint: "Freezing is for ResNet U-Nets (model.kind resnet-unet); set it to 0")
        }
        let names = Set(own.map(\.0))
        let state = optimizer.stateBuffers.filter { names.contains(String($0.name.split(separator: "/", maxSplits: 1).last ?? "")) }
        self.epochs = epochs
        regions = own.map { ($0.1.value.data, $0.1.count, $0.1) } + state.map { ($0.storage.pointer, $0.count, nil) }
    }

    /// Saves the encoder when `epoch` (0-based) is frozen.
    func begin(epoch: Int) {
        saved = epoch < epochs ? regions.map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) } : []
    }

    /// After every optimiser step: puts the saved encoder back (nothing in unfrozen epochs).
    func hold() {
        for (region, values) in zip(regions, saved) {
            values.withUnsafeBufferPointer { region.pointer.update(from: $0.baseAddress!, count: region.count) }
            region.owner?.markChanged()
        }
    }
}
