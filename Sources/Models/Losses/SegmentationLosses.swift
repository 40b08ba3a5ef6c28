import Engine
import RealModule

// Segmentation losses on logits (N, K, H, W). Each core is generic over the scalar type so the
// tests can check its gradient against finite differences in Double; the public entry points
// run it in Float on plain NCHW tensors. Cores *add* into `gradient` so losses can be summed.

/// Softmax over the `k` classes of one pixel, scores `z[c · stride]` → `p[c · stride]`: the
/// one softmax of the losses (the generic cores below and the fused `FocalDiceLoss`). The
/// network-edge `ChannelSoftmax` (Engine) works in log-sum-exp form and is kept apart so that
/// prediction probabilities stay bit-for-bit as they are.
@inlinable
func softmaxPixel<T: Real & BinaryFloatingPoint>(_ z: UnsafePointer<T>, stride: Int, classes k: Int, into p: UnsafeMutablePointer<T>) {
    var m = -T.infinity
    for c in 0..<k { m = max(m, z[c * stride]) }
    var sum: T = 0
    for c in 0..<k { let e = T.exp(z[c * stride] - m); p[c * stride] = e; sum += e }
    for c in 0..<k { p[c * stride] /= sum }
}

/// Softmax over classes for every pixel: probs[n, k, p].
@usableFromInline
func softmaxClasses<T: Real & BinaryFloatingPoint>(_ logits: UnsafeBufferPointer<T>, n: Int, k: Int, hw: Int,
                                                   into probs: UnsafeMutableBufferPointer<T>) {
    for b in 0..<n {
        for p in 0..<hw {
            let base = b * k * hw + p
            softmaxPixel(logits.baseAddress! + base, stride: hw, classes: k, into: probs.baseAddress! + base)
        }
    }
}

/// Adds dL/dz to `gradient` given dL/dp (`g`, per class) at one pixel: dz_j = p_j (g_j − Σ p·g).
@inlinable
func softmaxBackwardPixel<T: BinaryFloatingPoint>(_ probs: UnsafeBufferPointer<T>, _ g: UnsafeBufferPointer<T>, base: Int,
                                                   k: Int, hw: Int, scale: T, into gradient: UnsafeMutableBufferPointer<T>) {
    var dot: T = 0
    for c in 0..<k { dot += probs[base + c * hw] * g[base + c * hw] }
    for c in 0..<k { gradient[base + c * hw] += scale * probs[base + c * hw] * (g[base + c * hw] - dot) }
}

/// Cross-entropy −w_t log p_t. Mean divides by Σ w_t over valid pixels (PyTorch semantics).
public func crossEntropyCore<T: Real & BinaryFloatingPoint>(
    logits: UnsafeBufferPointer<T>, classes k: Int, target: SegmentationTarget, classWeights: [T]?,
    reduction: Reduction, gradient: UnsafeMutableBufferPointer<T>) -> T {
    let hw = target.h * target.w
    let probs = UnsafeMutableBufferPointer<T>.allocate(capacity: logits.count)
    defer { probs.deallocate() }
    softmaxClasses(logits, n: target.n, k: k, hw: hw, into: probs)
    var total: T = 0, norm: T = 0
    for b in 0..<target.n { for p in 0..<hw where target.isValid(b * hw + p) {
        let t = Int(target.labels[b * hw + p])
        precondition(t >= 0 && t < k, "label \(t) outside 0..<\(k)")
        let w = classWeights?[t] ?? 1
        total -= w * T.log(max(probs[b * k * hw + t * hw + p], T.leastNormalMagnitude))
        norm += w
    } }
    let scale: T = reduction == .mean ? (norm > 0 ? 1 / norm : 0) : 1
    for b in 0..<target.n { for p in 0..<hw where target.isValid(b * hw + p) {
        let t = Int(target.labels[b * hw + p])
        let w = (classWeights?[t] ?? 1) * scale
        let base = b * k * hw + p
        for c in 0..<k { gradient[base + c * hw] += w * (probs[base + c * hw] - (c == t ? 1 : 0)) }
    } }
    return total * scale
}

/// Focal loss (softmax): −α_t (1 − p_t)^γ log p_t; mean over valid pixels.
public func focalCore<T: Real & BinaryFloatingPoint>(
    logits: UnsafeBufferPointer<T>, classes k: Int, target: SegmentationTarget, gamma: T, alpha: [T]?,
    reduction: Reduction, gradient: UnsafeMutableBufferPointer<T>) -> T {
    let hw = target.h * target.w
    let probs = UnsafeMutableBufferPointer<T>.allocate(capacity: logits.count)
    defer { probs.deallocate() }
    softmaxClasses(logits, n: target.n, k: k, hw: hw, into: probs)
    let count = target.validCount
    let scale: T = reduction == .mean ? (count > 0 ? 1 / T(count) : 0) : 1
    var total: T = 0
    for b in 0..<target.n { for p in 0..<hw where target.isValid(b * hw + p) {
        let t = Int(target.labels[b * hw + p])
        precondition(t >= 0 && t < k, "label \(t) outside 0..<\(k)")
        let base = b * k * hw + p
        let pt = max(probs[base + t * hw], T.leastNormalMagnitude)
        let a = alpha?[t] ?? 1
        let q = 1 - pt, logp = T.log(pt)
        let qg = gamma == 0 ? 1 : T.pow(q, gamma)
        total -= a * qg * logp
        // dL/dz_j = −α [(1−p)^γ − γ (1−p)^(γ−1) p log p] (δ_tj − p_j)
        let qg1 = gamma == 0 ? 0 : (gamma == 1 ? 1 : T.pow(q, gamma - 1))
        let coef = -a * (qg - gamma * qg1 * pt * logp) * scale
        for c in 0..<k { gradient[base + c * hw] += coef * ((c == t ? 1 : 0) - probs[base + c * hw]) }
    } }
    return total * scale
}

/// Soft multi-class Dice: per class d_c = (2 Σ p·y + s) / (Σ p + Σ y + s + ε), sums over batch
/// and valid pixels; loss = 1 − Σ w_c d_c / Σ w_c (mean) or Σ w_c (1 − d_c) (sum).
public func diceCore<T: Real & BinaryFloatingPoint>(
    logits: UnsafeBufferPointer<T>, classes k: Int, target: SegmentationTarget, classWeights: [T]?,
    smoothing: T, epsilon: T, reduction: Reduction, gradient: UnsafeMutableBufferPointer<T>) -> T {
    let hw = target.h * target.w
    let probs = UnsafeMutableBufferPointer<T>.allocate(capacity: logits.count)
    let g = UnsafeMutableBufferPointer<T>.allocate(capacity: logits.count)
    defer { probs.deallocate(); g.deallocate() }
    softmaxClasses(logits, n: target.n, k: k, hw: hw, into: probs)
    var inter = [T](repeating: 0, count: k), sumP = inter, sumY = inter
    for b in 0..<target.n { for p in 0..<hw where target.isValid(b * hw + p) {
        let t = Int(target.labels[b * hw + p])
        precondition(t >= 0 && t < k, "label \(t) outside 0..<\(k)")
        for c in 0..<k { sumP[c] += probs[b * k * hw + c * hw + p] }
        inter[t] += probs[b * k * hw + t * hw + p]; sumY[t] += 1
    } }
    let weights = classWeights ?? [T](repeating: 1, count: k)
    let wsum = weights.reduce(0, +)
    let norm: T = reduction == .mean ? 1 / wsum : 1
    var loss: T = reduction == .mean ? 1 : wsum
    var dDice = [T](repeating: 0, count: k), dDenom = dDice  // ∂L/∂(Σp·y) and ∂L/∂(Σp) per class
    for c in 0..<k {
        let num = 2 * inter[c] + smoothing, den = sumP[c] + sumY[c] + smoothing + epsilon
        loss -= weights[c] * norm * num / den
        dDice[c] = -weights[c] * norm * 2 / den
        dDenom[c] = weights[c] * norm * num / (den * den)
    }
    for b in 0..<target.n { for p in 0..<hw {
        let base = b * k * hw + p
        guard target.isValid(b * hw + p) else { continue }
        let t = Int(target.labels[b * hw + p])
        for c in 0..<k { g[base + c * hw] = dDenom[c] + (c == t ? dDice[c] : 0) }
        softmaxBackwardPixel(UnsafeBufferPointer(probs), UnsafeBufferPointer(g), base: base, k: k, hw: hw, scale: 1, into: gradient)
    } }
    return loss
}

// MARK: - Float entry points on tensors

private func withLogits(_ logits: Tensor, _ target: SegmentationTarget, _ gradient: Tensor?, accumulate: Bool,
                        _ body: (UnsafeBufferPointer<Float>, Int, UnsafeMutableBufferPointer<Float>) -> Float) -> LossValue {
    precondition(logits.layout == .nchw, "losses take plain NCHW logits")
    let s = logits.shape
    precondition(s.n == target.n && s.h == target.h && s.w == target.w, "logits \(s) vs target \(target.n)×\(target.h)×\(target.w)")
    let grad = reuse(gradient, s, .nchw)
    if !accumulate { grad.zero() }
    let v = body(UnsafeBufferPointer(start: logits.data, count: s.count), s.c,
                 UnsafeMutableBufferPointer(start: grad.data, count: s.count))
    return LossValue(value: v, gradient: grad)
}

/// Cross-entropy on logits (N, K, H, W). `gradient`: a buffer to reuse; `accumulate` adds to it.
public func crossEntropyLoss(logits: Tensor, target: SegmentationTarget, classWeights: [Float]? = nil,
                             reduction: Reduction = .mean, gradient: Tensor? = nil, accumulate: Bool = false) -> LossValue {
    withLogits(logits, target, gradient, accumulate: accumulate) {
        crossEntropyCore(logits: $0, classes: $1, target: target, classWeights: classWeights, reduction: reduction, gradient: $2)
    }
}

/// Focal loss (softmax, focusing `gamma`, per-class `alpha`) on logits (N, K, H, W).
public func focalLoss(logits: Tensor, target: SegmentationTarget, gamma: Float = 2, alpha: [Float]? = nil,
                      reduction: Reduction = .mean, gradient: Tensor? = nil, accumulate: Bool = false) -> LossValue {
    withLogits(logits, target, gradient, accumulate: accumulate) {
        focalCore(logits: $0, classes: $1, target: target, gamma: gamma, alpha: alpha, reduction: reduction, gradient: $2)
    }
}

/// Soft multi-class Dice loss on logits (N, K, H, W).
public func diceLoss(logits: Tensor, target: SegmentationTarget, classWeights: [Float]? = nil, smoothing: Float = 0,
                     epsilon: Float = 1e-6, reduction: Reduction = .mean, gradient: Tensor? = nil,
                     accumulate: Bool = false) -> LossValue {
    withLogits(logits, target, gradient, accumulate: accumulate) {
        diceCore(logits: $0, classes: $1, target: target, classWeights: classWeights, smoothing: smoothing,
                 epsilon: epsilon, reduction: reduction, gradient: $2)
    }
}

/// R1's loss: focal (γ, per-class α, mean over valid pixels) + soft Dice (mean over classes,
/// ε = 1e-6). One fused, multi-threaded pass computes the softmax once for both terms; the
/// probability and gradient buffers are reused across steps. Equals `focalLoss + diceLoss`.
public final class FocalDiceLoss {
    public var gamma: Float
    public var alpha: [Float]?
    public var classWeights: [Float]?
    public var epsilon: Float = 1e-6
    private var gradient: Tensor?
    private var probs: Storage?

    public init(gamma: Float = 2, alpha: [Float]? = nil, classWeights: [Float]? = nil) {
        self.gamma = gamma; self.alpha = alpha; self.classWeights = classWeights
    }

    public func callAsFunction(logits: Tensor, target: SegmentationTarget) -> LossValue {
        precondition(logits.layout == .nchw, "losses take plain NCHW logits")
        let s = logits.shape, k = s.c
        precondition(s.n == target.n && s.h == target.h && s.w == target.w, "logits \(s) vs target")
        let grad = reuse(gradient, s, .nchw)
        gradient = grad
        if probs == nil || probs!.capacity != s.count { probs = Storage(capacity: s.count) }
        let validCount = target.validCount
        let focalScale: Float = validCount > 0 ? 1 / Float(validCount) : 0
        let sums = focalPass(logits: logits, target: target, focalScale: focalScale, gradient: grad)
        // Dice: loss = 1 − Σ w_c d_c / Σ w_c; per class ∂L/∂p = dDenom + [c = y] dInter.
        let weights = classWeights ?? [Float](repeating: 1, count: k)
        let wsum = Double(weights.reduce(0, +))
        var dice: Double = 1
        var dInter = [Float](repeating: 0, count: k), dDenom = dInter
        for c in 0..<k {
            let num = 2 * sums.inter[c], den = sums.sumP[c] + sums.sumY[c] + Double(epsilon)
            dice -= Double(weights[c]) / wsum * num / den
            dInter[c] = Float(-Double(weights[c]) / wsum * 2 / den)
            dDenom[c] = Float(Double(weights[c]) / wsum * num / (den * den))
        }
        dicePass(shape: s, target: target, dInter: dInter, dDenom: dDenom, gradient: grad)
        return LossValue(value: Float(sums.focal) * focalScale + Float(dice), gradient: grad)
    }

    /// Pass 1, multi-threaded: softmax into `probs`, the focal term and its gradient (written to
    /// `gradient`), and per class the Dice sums Σp, Σp·y, Σy (each thread sums its own share in
    /// Double, then the shares are added in thread order).
    private func focalPass(logits: Tensor, target: SegmentationTarget, focalScale: Float, gradient grad: Tensor)
        -> (focal: Double, sumP: [Double], inter: [Double], sumY: [Double]) {
        let s = logits.shape, k = s.c, hw = s.h * s.w
        let P = UncheckedSendable(probs!.pointer), G = UncheckedSendable(grad.data), Z = UncheckedSendable(logits.data)
        let gamma = self.gamma, alpha = self.alpha
        let pixels = s.n * hw
        let threads = max(1, Runtime.threads)
        // Per-thread partial sums: focal loss, then per class Σp, Σp·y, Σy.
        let partials = UncheckedSendable(UnsafeMutablePointer<Double>.allocate(capacity: threads * (1 + 3 * k)))
        defer { partials.value.deallocate() }
        partials.value.initialize(repeating: 0, count: threads * (1 + 3 * k))
        let tgt = UncheckedSendable(target)
        parallelFor(threads) { tr in
            for t in tr {
                let lo = pixels * t / threads, hi = pixels * (t + 1) / threads
                let acc = partials.value + t * (1 + 3 * k)
                var focal: Double = 0
                for q in lo..<hi {
                    let b = q / hw, p = q % hw, base = b * k * hw + p
                    softmaxPixel(UnsafePointer(Z.value + base), stride: hw, classes: k, into: P.value + base)
                    guard tgt.value.isValid(q) else {
                        for c in 0..<k { G.value[base + c * hw] = 0 }
                        continue
                    }
                    let label = Int(tgt.value.labels[q])
                    let pt = max(P.value[base + label * hw], Float.leastNormalMagnitude)
                    let a = alpha?[label] ?? 1
                    let one = 1 - pt, logp = _logf(pt)
                    let qg: Float = gamma == 2 ? one * one : (gamma == 0 ? 1 : _powf(one, gamma))
                    let qg1: Float = gamma == 2 ? one : (gamma == 0 ? 0 : (gamma == 1 ? 1 : _powf(one, gamma - 1)))
                    focal -= Double(a * qg * logp)
                    let coef = -a * (qg - gamma * qg1 * pt * logp) * focalScale
                    for c in 0..<k {
                        let pc = P.value[base + c * hw]
                        G.value[base + c * hw] = coef * ((c == label ? 1 : 0) - pc)
                        acc[1 + c] += Double(pc)
                    }
                    acc[1 + k + label] += Double(pt)
                    acc[1 + 2 * k + label] += 1
                }
                acc[0] = focal
            }
        }
        var focal: Double = 0
        var sumP = [Double](repeating: 0, count: k), inter = sumP, sumY = sumP
        for t in 0..<threads {
            let acc = partials.value + t * (1 + 3 * k)
            focal += acc[0]
            for c in 0..<k { sumP[c] += acc[1 + c]; inter[c] += acc[1 + k + c]; sumY[c] += acc[1 + 2 * k + c] }
        }
        return (focal, sumP, inter, sumY)
    }

    /// Pass 2, multi-threaded: the Dice gradient through the softmax, added to the focal gradient.
    private func dicePass(shape s: Shape, target: SegmentationTarget, dInter: [Float], dDenom: [Float], gradient grad: Tensor) {
        let k = s.c, hw = s.h * s.w
        let P = UncheckedSendable(probs!.pointer), G = UncheckedSendable(grad.data)
        let tgt = UncheckedSendable(target)
        parallelFor(s.n * hw, minChunk: 4096) { r in
            var g = [Float](repeating: 0, count: k)
            for q in r where tgt.value.isValid(q) {
                let b = q / hw, p = q % hw, base = b * k * hw + p
                let label = Int(tgt.value.labels[q])
                var dot: Float = 0
                for c in 0..<k {
                    g[c] = dDenom[c] + (c == label ? dInter[c] : 0)
                    dot += P.value[base + c * hw] * g[c]
                }
                for c in 0..<k { G.value[base + c * hw] += P.value[base + c * hw] * (g[c] - dot) }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
@inline(__always) private func _logf(_ x: Float) -> Float { logf(x) }
@inline(__always) private func _powf(_ x: Float, _ y: Float) -> Float { powf(x, y) }
