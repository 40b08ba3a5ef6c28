import ArgumentParser
import Core
import Engine
import Foundation
import ModelIO
import Models

/// Numerical side-by-side with PyTorch (`Benchmarks/compare_gradients.py`): loads a bundle and
/// exported patches, runs Adam steps on one fixed batch (training mode, no augmentation) and
/// writes the first step's logits, loss and gradients and the final weights and batch-norm
/// statistics to a safetensors file.
struct GradCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradcheck", abstract: "Loss, gradients and weights after fixed-batch Adam steps, for comparison with PyTorch.")

    @Option(help: "Model bundle directory (its weights are the starting point).") var bundle: String
    @Option(help: "Patches from `terraseg train --export-patches`.") var patches: String
    @Option(help: "Training patches in the batch (the first ones).") var count = 16
    @Option(help: "Adam steps on that batch.") var steps = 1
    @Option(help: "Learning rate.") var lr: Float = 0.002
    @Option(help: "Focal gamma.") var gamma: Float = 2
    @Option(help: "Output safetensors file.") var output: String
    @Flag(help: "Run an inference-mode forward on validation patches between steps (as the trainer's per-epoch validation does).") var interleaveValidation = false

    func run() throws {
        _ = try TerraSegEnvironment.current()  // refuse bad TERRASEG_* values before any work
        let b = try ModelBundle.read(bundle)
        let net = try b.network(directory: bundle)
        net.isTraining = true
        let (t, _) = try SafeTensors.read(patches)
        guard let tx = t["train_x"], let ty = t["train_y"] else { throw ValidationError("no train_x/train_y in \(patches)") }
        let c = tx.shape[1], p = tx.shape[2], n = min(count, tx.shape[0])
        let x = Tensor(shape: Shape(n, c, p, p), values: Array(tx.values[0..<(n * c * p * p)]))
        let labels = ty.values[0..<(n * p * p)].map { Int32($0) }
        let target = SegmentationTarget(n: n, h: p, w: p, labels: labels, ignoreIndex: -1)
        let loss = FocalDiceLoss(gamma: gamma)
        let adam = Adam(parameters: net.namedParameters, learningRate: lr, beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
        var out: [(name: String, entry: SafeTensors.Entry)] = []
        var losses: [Float] = []
        for step in 0..<steps {
            let logits = net(x)
            let l = loss(logits: logits, target: target)
            losses.append(l.value)
            if step == 0 {
                out.append(("logits", SafeTensors.Entry(shape: [n, logits.shape.c, p, p], values: logits.nchwValues())))
            }
            net.backward(l.gradient)
            if step == 0 {
                for (name, prm) in net.namedParameters {
                    out.append(("grad." + name, SafeTensors.Entry(shape: [prm.count], values: prm.grad.nchwValues())))
                }
            }
            adam.update()
            if interleaveValidation, let vx = t["val_x"] {
                net.isTraining = false
                let m = min(count, vx.shape[0])
                _ = net(Tensor(shape: Shape(m, c, p, p), values: Array(vx.values[0..<(m * c * p * p)])))
                net.isTraining = true
            }
        }
        // Inference mode (batch norm folded into the convolutions) on the validation patches.
        if let vx = t["val_x"] {
            let m = min(count, vx.shape[0])
            net.isTraining = false
            let v = Tensor(shape: Shape(m, c, p, p), values: Array(vx.values[0..<(m * c * p * p)]))
            let logits = net(v)
            out.append(("eval_logits", SafeTensors.Entry(shape: [m, logits.shape.c, p, p], values: logits.nchwValues())))
        }
        for (name, prm) in net.namedParameters + net.namedBuffers {
            out.append(("final." + name, SafeTensors.Entry(shape: [prm.count], values: prm.value.nchwValues())))
        }
        out.append(("losses", SafeTensors.Entry(shape: [losses.count], values: losses)))
        try SafeTensors.write(out, to: output)
        print("losses: \(losses)")
    }
}
