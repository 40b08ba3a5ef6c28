import ArgumentParser
import Core
import Engine
import Foundation

/// One 3×3 convolution (inference: bias + fused ReLU, as a folded conv–BN–ReLU) in a chosen
/// activation layout, timed: for choosing layouts of narrow layers.
struct ConvBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "conv", abstract: "Time one inference convolution per layout.")

    @Option(help: "Input channels.") var input = 8
    @Option(help: "Output channels.") var output = 8
    @Option(help: "Image height and width.") var size = 928
    @Option(help: "Batch.") var batch = 2
    @Option(help: "Dilation.") var dilation = 1
    @Option(help: "Timed repetitions.") var steps = 5

    func run() throws {
        _ = try TerraSegEnvironment.current()  // refuse bad TERRASEG_* values before any work
        let g = ConvGeometry(inputChannels: input, outputChannels: output, kernel: 3, stride: 1, padding: dilation,
                             dilation: dilation, bias: true)
        let w = Parameter(shape: g.weightShape), b = Parameter(shape: Shape(output, 1, 1, 1))
        for i in 0..<w.count { w.value.data[i] = Float(i % 7) * 0.01 - 0.03 }
        let flops = 2.0 * Double(batch * size * size) * Double(9 * input * output)
        for layout in [Layout.nChw16c, .nhwc] {
            let k = ConvolutionKernel(g)
            k.fusedReLU = true
            let x = Tensor(shape: Shape(batch, input, size, size), layout: layout)
            for i in 0..<x.physicalCount { x.data[i] = Float(i % 13) * 0.1 - 0.6 }
            let y = Tensor(shape: g.outputShape(x.shape), layout: layout)
            k.forward(input: x, weight: w, bias: b, output: y, training: false)
            var times: [Double] = []
            for _ in 0..<steps {
                let t0 = now()
                k.forward(input: x, weight: w, bias: b, output: y, training: false)
                times.append(now() - t0)
            }
            let best = times.min()!
            print(String(format: "%@  %d→%d d%d (%d, %d²): %.1f ms, %.0f GFLOP/s  %@", layout.description, input, output, dilation,
                         batch, size, best * 1000, flops / best / 1e9, k.implementations.joined(separator: " | ")))
        }
    }
}
