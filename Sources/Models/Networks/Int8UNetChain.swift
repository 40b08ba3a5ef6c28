import Core
import Engine

/// U-Net inference with u8 activations chained between int8 layers: each int8 convolution
/// writes u8 (oneDNN output scales and the fused ReLU land on its consumer's step) when its
/// consumer is another int8 convolution, the 2×2 max pooling (exact on u8), the concat, or a
/// nearest/nails upsampling; only the bilinear upsampling's input (Float32 NHWC in units of
/// the concat's step, so oneDNN's u8 resampling only rounds) and the head's input (Float32
/// NHWC, read by one oneDNN matmul into NCHW logits, `PointwiseLogits`) are Float32. A junction writes each concat row once. The
/// first unit stays fp32 and its output is quantized once. This removes the two reorders per
/// layer of `Int8ConvUnit` (the unchained path, which row streaming keeps).
///
/// Steps: a tensor read by several int8 units takes the coarsest of their calibrated steps (a
/// skip feeds the pooling → next encoder and the decoder's concat, so both read one step);
/// within a block each unit writes at the next unit's calibrated step. Built only when every
/// unit but the first is int8 and the upsampling is fixed (`make`).
public final class Int8UNetChain {
    /// An activation between layers.
    enum Activation {
        case bytes(ByteTensor)
        case floats(Tensor)

        /// `kernel` over `input`: u8 into `bytes(shape)` when it has an output step, else Float32
        /// into `floats` (reused, in `floatLayout`). The one int8 convolution step of windows and rows.
        /// `maxRows`: rows streams hold Float32 outputs of changing heights in one buffer of this many rows (`reuseRows`).
        static func convolve(_ kernel: Int8ConvolutionKernel, _ input: ByteTensor, profile label: String,
                             bytes: (Shape) -> ByteTensor, floats: inout Tensor?, floatLayout: Layout, maxRows: Int = 0) -> Activation {
            let shape = kernel.geometry.outputShape(input.shape)
            return Profiler.shared.measure(label) {
                if kernel.outputStep != nil {
                    let out = bytes(shape)
                    kernel.forward(input: input, output: out)
                    return .bytes(out)
                }
                let out = maxRows > 0 ? reuseRows(floats, shape, floatLayout, maxRows: maxRows) : reuse(floats, shape, floatLayout)
                floats = out
                kernel.forward(input: input, output: out)
                return .floats(out)
            }
        }
    }

    /// One unit's int8 convolution between fixed steps, owning its output.
    final class Stage {
        let label: String
        let floatLayout: Layout, floatStep: Float
        let inputStep: Float, outputStep: Float?
        let unit: ConvBNReLU
        private var bytes: ByteTensor?, floats: Tensor?

        /// The unit's weights, folded and quantized at first use (windows or rows, once for both).
        private(set) lazy var kernel = unit.int8Kernel(inputStep: inputStep, outputStep: outputStep, floatStep: floatStep)

        /// Writes u8 at `outputStep`, or Float32 in `floatLayout` when it is nil, in units of
        /// `floatStep` (the bilinear junction's u8 step, so that oneDNN's resampling only rounds).
        init(_ unit: ConvBNReLU, inputStep: Float, outputStep: Float?, floatStep: Float = 1, floatLayout: Layout = .nhwc) {
            label = unit.label; self.floatLayout = floatLayout; self.floatStep = floatStep; self.unit = unit
            self.inputStep = inputStep; self.outputStep = outputStep
        }

        func callAsFunction(_ x: ByteTensor) -> Activation {
            Activation.convolve(kernel, x, profile: "\(label) int8 chained fwd", bytes: { shape in
                let out = ByteTensor.reuse(self.bytes, shape)
                self.bytes = out
                return out
            }, floats: &floats, floatLayout: floatLayout)
        }
    }

    unowned let net: UNet
    let kind: Upsample2xKind
    /// The first unit's output is quantized at this step for the second.
    let firstQuantizer: ActivationQuantizer
    /// Encoders (the first without its fp32 unit), bottleneck, decoders (deepest first).
    let encoderStages: [[Stage]], bottleneckStages: [Stage], decoderStages: [[Stage]]
    /// Per level (shallowest first): the step of the skip, its pooling and the decoder's concat.
    let skipSteps: [Float]

    private var firstBytes: ByteTensor?, skips: [ByteTensor] = [], pooled: [ByteTensor?], concats: [ByteTensor?]
    /// Per level: the bilinear junction (Float32 below, in steps, into u8).
    private let bilinear: [BilinearJunction]
    private var crops: [String: AnyObject] = [:]
    private var logits: Tensor?

    /// The chain for `net`'s installed int8 units, or nil when it cannot chain (learned
    /// upsampling, or a unit other than the first left fp32: those run unchained).
    public static func make(_ net: UNet) -> Int8UNetChain? {
        guard let kind = net.configuration.upsampling.fixedKind, net.encoders[0].units.count > 1 else { return nil }
        let units = Int8Calibration.units(of: net).map(\.unit)
        guard units.first?.int8 == nil, units.dropFirst().allSatisfy({ $0.int8 != nil }) else { return nil }
        return Int8UNetChain(net, kind: kind)
    }

    private init(_ net: UNet, kind: Upsample2xKind) {
        self.net = net; self.kind = kind
        let L = net.encoders.count
        let enc = net.encoders.map(\.units), bottle = net.bottleneck.units, dec = net.decoders.map(\.units)
        func calibrated(_ u: ConvBNReLU) -> Float { u.int8!.inputStep }
        let skip = (0..<L).map { i in max(calibrated(i + 1 < L ? enc[i + 1][0] : bottle[0]), calibrated(dec[L - 1 - i][0])) }
        skipSteps = skip
        /// The last unit writes u8 at `output`, or Float32 in units of `floatStep` when it is nil.
        func stages(_ units: ArraySlice<ConvBNReLU>, input: Float, output: Float?, floatStep: Float = 1) -> [Stage] {
            var step = input
            return units.indices.map { k in
                let last = k == units.indices.last
                let out = last ? output : calibrated(units[k + 1])
                defer { step = out ?? 0 }
                return Stage(units[k], inputStep: step, outputStep: out, floatStep: last ? floatStep : 1)
            }
        }
        let second = calibrated(enc[0][1])
        firstQuantizer = ActivationQuantizer(step: second)
        encoderStages = (0..<L).map { i in
            stages(i == 0 ? enc[0].dropFirst() : enc[i][...], input: i == 0 ? second : skip[i - 1], output: skip[i])
        }
        let bilinear = kind == .bilinear
        bottleneckStages = bilinear ? stages(bottle[...], input: skip[L - 1], output: nil, floatStep: skip[L - 1])
            : stages(bottle[...], input: skip[L - 1], output: skip[L - 1])
        decoderStages = (0..<L).map { j in
            let level = L - 1 - j
            if level == 0 { return stages(dec[j][...], input: skip[0], output: nil) }  // NHWC into the head
            return bilinear ? stages(dec[j][...], input: skip[level], output: nil, floatStep: skip[level - 1])
                : stages(dec[j][...], input: skip[level], output: skip[level - 1])
        }
        pooled = Array(repeating: nil, count: L); concats = Array(repeating: nil, count: L)
        self.bilinear = (0..<L).map { _ in BilinearJunction() }
    }

    /// The 1×1 head: NHWC features straight into NCHW logits (one oneDNN matmul).
    private let head = PointwiseLogits()

    /// The 1×1 head over the last decoder's NHWC output, NCHW logits.
    private func headLogits(_ x: Tensor) -> Tensor {
        Profiler.shared.measure("head (1×1 NHWC → NCHW) fwd") {
            let out = reuse(logits, Shape(x.shape.n, net.configuration.classes, x.shape.h, x.shape.w), .nchw)
            logits = out
            head.forward(features: x, weight: net.head.weight, bias: net.head.bias!, into: out)
            return out
        }
    }

    /// oneDNN's implementation of the second encoder's convolutions (after the first call).
    public var implementation: String { encoderStages.last?.first?.kernel.implementation ?? "-" }

    private func run(_ stages: [Stage], _ x: ByteTensor) -> Activation {
        var a = Activation.bytes(x)
        for s in stages {
            guard case .bytes(let b) = a else { preconditionFailure("int8 stage after a Float32 output") }
            a = s(b)
        }
        return a
    }

    /// input (N, C_in, H, W) NCHW → logits (N, K, H, W) NCHW, like `UNet.callAsFunction`.
    public func callAsFunction(_ input: Tensor) -> Tensor {
        var a = encode(input)
        let L = skips.count
        for j in 0..<L {
            let level = L - 1 - j
            a = run(decoderStages[j], junction(a, skip: skips[level], level: level))
        }
        guard case .floats(let x) = a else { preconditionFailure("the head reads Float32") }
        return headLogits(x)
    }

    /// Encoder and bottleneck: fills `skips` (u8), returns the bottleneck's output.
    private func encode(_ input: Tensor) -> Activation {
        let prof = Profiler.shared
        let f = net.encoders[0].units[0](input)  // fp32 (its input is signed)
        let q = ByteTensor.reuse(firstBytes, f.shape)
        firstBytes = q
        prof.measure("int8 quantize enc1.1 output") { firstQuantizer.quantize(f, into: q) }
        var x = q
        skips = []
        for i in encoderStages.indices {
            guard case .bytes(let s) = run(encoderStages[i], x) else { preconditionFailure("encoders write u8") }
            skips.append(s)
            let p = ByteTensor.reuse(pooled[i], Shape(s.shape.n, s.shape.c, s.shape.h / 2, s.shape.w / 2))
            pooled[i] = p
            prof.measure("pool\(i + 1) u8 fwd") { ByteKernels.maxPool2x2(s, into: p) }
            x = p
        }
        return run(bottleneckStages, x)
    }

    /// [up(below), skip] in u8 at the level's step.
    private func junction(_ below: Activation, skip: ByteTensor, level: Int) -> ByteTensor {
        Profiler.shared.measure("up+concat\(level + 1) u8 fwd") {
            let upChannels: Int
            switch below { case .bytes(let b): upChannels = b.shape.c
                           case .floats(let t): upChannels = t.shape.c }
            let s = skip.shape
            let cat = ByteTensor.reuse(concats[level], Shape(s.n, upChannels + s.c, s.h, s.w))
            concats[level] = cat
            switch below {
            case .bytes(let b): ByteKernels.upsample2x(kind, b, into: cat, skip: skip)
            case .floats(let t):  // in units of skipSteps[level]
                precondition(t.layout == .nhwc, "the bilinear junction reads NHWC")
                bilinear[level](t.data, t.shape, fine: 0..<(2 * t.shape.h), skip: skip, into: cat)
            }
            return cat
        }
    }

    /// Logits of `region` only, like `UNet.logits(_:region:)`: each decoder level runs over the
    /// part the levels above it read (`UNet.decoderPlan`).
    public func logits(_ input: Tensor, region: Window) -> Tensor {
        let L = encoderStages.count
        var a = encode(input)
        let rows = UNet.decoderPlan(region.row..<(region.row + region.height), size: input.shape.h, levels: L)
        let cols = UNet.decoderPlan(region.column..<(region.column + region.width), size: input.shape.w, levels: L)
        var origin = (0, 0)
        for level in (0..<L).reversed() {
            let below = crop(a, rows.need[level + 1], cols.need[level + 1], origin: origin, slot: "below\(level)")
            guard case .bytes(let skip) = crop(.bytes(skips[level]), rows.cat[level], cols.cat[level], origin: (0, 0),
                                               slot: "skip\(level)") else { preconditionFailure("skips are u8") }
            a = run(decoderStages[L - 1 - level], junction(below, skip: skip, level: level))
            origin = (rows.cat[level].lowerBound, cols.cat[level].lowerBound)
        }
        guard case .floats(let x) = crop(a, rows.need[0], cols.need[0], origin: origin, slot: "head") else {
            preconditionFailure("the head reads Float32")
        }
        return headLogits(x)
    }

    /// Rows `r` and columns `c` (in the level's pixels) of `a`, which starts at `origin`; `a`
    /// itself when that is all of it. Buffers reused per `slot`.
    private func crop(_ a: Activation, _ r: Range<Int>, _ c: Range<Int>, origin: (Int, Int), slot: String) -> Activation {
        let row = r.lowerBound - origin.0, column = c.lowerBound - origin.1
        switch a {
        case .bytes(let b):
            if row == 0 && column == 0 && r.count == b.shape.h && c.count == b.shape.w { return a }
            let out = ByteTensor.reuse(crops[slot] as? ByteTensor, Shape(b.shape.n, b.shape.c, r.count, c.count))
            crops[slot] = out
            ByteKernels.crop(b.data, b.shape, row: row, column: column, into: out.data, out.shape, elementBytes: 1)
            return .bytes(out)
        case .floats(let t):
            if row == 0 && column == 0 && r.count == t.shape.h && c.count == t.shape.w { return a }
            let out = reuse(crops[slot] as? Tensor, Shape(t.shape.n, t.shape.c, r.count, c.count), t.layout)
            crops[slot] = out
            if t.layout == .nhwc {
                ByteKernels.crop(t.data, t.shape, row: row, column: column, into: out.data, out.shape, elementBytes: 4)
            } else {
                SpatialCrop.copy(t, row: row, column: column, into: out)
            }
            return .floats(out)
        }
    }
}

extension Int8UNetChain {
    /// A bilinear decoder junction in u8: oneDNN's u8 resampling of Float32 NHWC already in
    /// units of the concat's step (one rounding), then [up, skip] into the concat, each row
    /// written once. Windows pass the whole tensor below; row streaming (`Int8JunctionRows`)
    /// the coarse rows it holds and the fine rows they complete.
    final class BilinearJunction {
        private let resampler = ResamplingKernel(.linear)
        private let up: ByteScratch

        /// `rows`: fine rows its scratch holds at least (row streaming's most at once).
        init(rows: Int = 0) { up = ByteScratch(rows: rows) }

        /// Fine rows `fine` of the bilinear ×2 of `coarse` (N, C, H, W) Float32 NHWC at
        /// `source` (neighbours clamp to these rows: a fine row is exact where its coarse
        /// neighbours are held), then `skip` (N, S, fine.count, 2W) u8, into `cat`
        /// (N, C + S, fine.count, 2W).
        func callAsFunction(_ source: UnsafePointer<Float>, _ coarse: Shape, fine: Range<Int>, skip: ByteTensor, into cat: ByteTensor) {
            precondition(fine.lowerBound >= 0 && fine.upperBound <= 2 * coarse.h && (coarse.n == 1 || fine.count == 2 * coarse.h),
                         "bilinear junction rows \(fine) of \(coarse)")
            let all = up.view(Shape(coarse.n, coarse.c, 2 * coarse.h, 2 * coarse.w))
            resampler.forward(nhwc: source, coarse, output: all)
            let rows = ByteTensor(viewing: all, offset: fine.lowerBound * 2 * coarse.w * coarse.c,
                                  shape: Shape(coarse.n, coarse.c, fine.count, 2 * coarse.w))
            ByteKernels.concatenate(rows, skip, into: cat)
        }
    }
}
