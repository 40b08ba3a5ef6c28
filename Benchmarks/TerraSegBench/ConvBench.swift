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
    @Flag(help: "Also time the int8 convolution (u8 NHWC in and out, VNNI) against fp32 Winograd and direct, interleaved.")
    var int8 = false

    func run() throws {
        _ = try TerraSegEnvironment.current()  // refuse bad TERRASEG_* values before any work
        if int8 { return compareInt8() }
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

    /// fp32 (nChw16c, Winograd then direct) and int8 (u8 NHWC) in interleaved rounds; medians.
    private func compareInt8() {
        let g = ConvGeometry(inputChannels: input, outputChannels: output, kernel: 3, stride: 1, padding: dilation,
                             dilation: dilation, bias: true)
        let wv = (0..<g.weightShape.count).map { Float($0 % 7) * 0.01 - 0.03 }
        let w = Parameter(shape: g.weightShape), b = Parameter(shape: Shape(output, 1, 1, 1))
        w.set(wv)
        let shape = Shape(batch, input, size, size)
        let x = Tensor(shape: shape, layout: .nChw16c), y = Tensor(shape: g.outputShape(shape), layout: .nChw16c)
        let xq = ByteTensor(shape: shape), yq = ByteTensor(shape: g.outputShape(shape))
        for i in 0..<shape.count { xq.data[i] = UInt8(i % 200) }
        let wino = ConvolutionKernel(g, winograd: .all), direct = ConvolutionKernel(g, winograd: .off)
        wino.fusedReLU = true; direct.fusedReLU = true
        let q = Int8ConvolutionKernel(g, weight: wv, bias: nil, inputStep: 0.01, outputStep: 0.05, relu: true)
        let runs: [(String, () -> Void)] = [
            ("fp32 winograd", { wino.forward(input: x, weight: w, bias: b, output: y, training: false) }),
            ("fp32 direct", { direct.forward(input: x, weight: w, bias: b, output: y, training: false) }),
            ("int8 u8→u8", { q.forward(input: xq, output: yq) }),
        ]
        var times = [[Double]](repeating: [], count: runs.count)
        for r in runs { r.1() }
        for _ in 0..<steps {
            for (i, r) in runs.enumerated() { let t0 = now(); r.1(); times[i].append(now() - t0) }
        }
        let ops = 2.0 * Double(batch * size * size) * Double(9 * input * output)
        let medians = times.map { $0.sorted()[$0.count / 2] }
        print("ISA \(CPUFeatures.effectiveISA), VNNI \(CPUFeatures.hasInt8DotProduct)")
        for (i, r) in runs.enumerated() {
            print(String(format: "%@  %d→%d d%d (%d, %d²): median %.1f ms, %.0f G(FL)OP/s, %.2f× fp32 winograd", r.0, input, output,
                         dilation, batch, size, medians[i] * 1000, ops / medians[i] / 1e9, medians[0] / medians[i]))
        }
        print("impl: winograd \(wino.implementations[0]), direct \(direct.implementations[0]), int8 \(q.implementation)")
    }
}
