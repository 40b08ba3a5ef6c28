/// What a network needs in memory, counted from its configuration without building it (an
/// absurd configuration must be refused before its weights are allocated). Counts are Float32
/// values in Double, so no size overflows. Estimates: oneDNN's scratch and Winograd workspaces
/// are folded into a per-convolution factor measured on peak resident sizes (see MemoryBudget).
extension ModelArchitecture {
    /// Trained weights and batch-norm buffers.
    public var parameterValues: Double {
        switch self {
        case .unet(let c):
            var total = 0.0, inC = Double(c.inputChannels)
            for w in c.widths.map(Double.init) {
                total += 9 * (inC * w + w * w) + 8 * w  // two 3×3 convolutions, two batch norms
                inC = w
            }
            let b = Double(c.bottleneckWidth), d = Double(c.bottleneckDilations.count)
            total += 9 * (inC * b + (d - 1) * b * b) + 4 * d * b
            var below = b
            for w in c.widths.reversed().map(Double.init) {
                // A learned junction maps the level below to the skip's width first (2×2 transposed or 1×1, with bias).
                switch c.upsampling {
                case .transposed: total += 4 * below * w + w
                case .maxUnpooling: total += below * w + w
                case .bilinear, .nearest, .nails: break
                }
                let concat = c.upsampling.isLearned ? 2 * w : below + w
                total += 9 * (concat * w + w * w) + 8 * w
                below = w
            }
            return total + Double(c.classes) * (below + 1)
        case .dilated(let c):
            let w = Double(c.width), n = Double(c.dilations.count)
            return 9 * (Double(c.inputChannels) * w + (n - 1) * w * w) + 4 * n * w + Double(c.classes) * (w + 1)
        case .resnetUNet(let c):
            return (c.parameterShapes + c.bufferShapes).reduce(0) { $0 + $1.shape.reduce(1.0) { $0 * Double($1) } }
        }
    }

    /// Activations of one pass over a (batch, inputChannels, size, size) input: every layer
    /// owns its output (channels padded to oneDNN's blocks of 16). Training keeps the
    /// batch-norm outputs too (folded into the convolutions at inference) and the backward
    /// pass one gradient per output.
    public func activationValues(batch: Int, size: Int, training: Bool) -> Double {
        // Output (+ batch-norm output, + their gradients); 1.5 at inference covers oneDNN's
        // workspaces (measured: a 4-level U-Net's peak on 928–2464 px windows, within 15 %).
        let perConv = training ? 4.0 : 1.5
        func blocked(_ c: Int) -> Double { Double((c + 15) / 16 * 16) }
        var perImage = 0.0
        let side = Double(size)
        switch self {
        case .unet(let c):
            var pixels = side * side
            for w in c.widths {
                perImage += pixels * blocked(w) * (2 * perConv + 0.5)  // two convolutions, pooled output and indices
                pixels /= 4
            }
            perImage += pixels * blocked(c.bottleneckWidth) * Double(c.bottleneckDilations.count) * perConv
            var below = c.bottleneckWidth
            for w in c.widths.reversed() {
                pixels *= 4
                let concat = c.upsampling.isLearned ? 2 * w : below + w
                perImage += pixels * (blocked(concat) * (training ? 2 : 1) + blocked(w) * 2 * perConv)  // concat, two convolutions
                below = w
            }
        case .dilated(let c):
            perImage += side * side * blocked(c.width) * Double(c.dilations.count) * perConv
        case .resnetUNet(let c):
            perImage += c.activationValuesPerPixel(perConvolution: perConv, training: training) * side * side
        }
        // The input, the head's logits (blocked and plain) and, in training, the loss's buffers.
        perImage += side * side * (Double(inputChannels) + Double(classes) * (training ? 5 : 3))
        return Double(batch) * perImage
    }
}

extension ResNetUNetConfiguration {
    /// Activations per input pixel: each convolution's output at its stride (`perConvolution`
    /// counts its batch-norm output and gradients), the pooled stem, each block's residual sum
    /// (and its gradient in training) and each decoder concat (and its gradient).
    func activationValuesPerPixel(perConvolution perConv: Double, training: Bool) -> Double {
        func blocked(_ c: Int) -> Double { Double((c + 15) / 16 * 16) }
        func area(_ stride: Int) -> Double { 1 / Double(stride * stride) }
        let keep = training ? 2.0 : 1.0
        var total = area(2) * blocked(64) * perConv + area(4) * blocked(64) * 1.5  // stem; pooling + workspace
        for (i, stage) in stages.enumerated() {
            let s = featureStrides[i + 1]
            for b in stage {
                let convs = encoder.usesBottleneck ? [b.width, b.width, b.outputChannels] : [b.width, b.outputChannels]
                total += area(s) * (convs.reduce(0) { $0 + blocked($1) } * perConv + blocked(b.outputChannels) * keep)
                if b.hasProjection { total += area(s) * blocked(b.outputChannels) * perConv }
            }
        }
        for (i, d) in decoderBlocks.enumerated() {
            let t = i < 4 ? featureStrides[3 - i] : 1
            total += area(t) * (blocked(d.input + d.skip) * keep + blocked(d.output) * 2 * perConv)
        }
        return total
    }
}
