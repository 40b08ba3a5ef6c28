import Core
import Engine
import TestSupport

func randomRef(_ shape: Shape, seed: UInt64, _ lo: Double = -1, _ hi: Double = 1) -> RefTensor {
    var rng = SplitMix64(seed: seed)
    return RefTensor(shape, rng.uniform(shape.count, lo, hi))
}

/// Values whose pairwise gaps are at least `gap` (so max pooling and ReLU have no ties or kinks
/// within a finite-difference step), in random order.
func distinctRef(_ shape: Shape, seed: UInt64) -> RefTensor {
    var rng = SplitMix64(seed: seed)
    var v = (0..<shape.count).map { Double($0) * 0.01 - Double(shape.count) * 0.005 + 0.003 }
    v.shuffle(using: &rng)
    return RefTensor(shape, v)
}

func parameter(_ r: RefTensor) -> Parameter {
    let p = Parameter(shape: r.shape)
    p.set(r.values.map(Float.init))
    return p
}

func vectorParameter(_ v: [Double]) -> Parameter {
    let p = Parameter(shape: Shape(v.count, 1, 1, 1))
    p.set(v.map(Float.init))
    return p
}

func values(_ t: Tensor) -> [Double] { t.nchwValues().map(Double.init) }
func values(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> [Double] { (0..<n).map { Double(p[$0]) } }

let layouts: [Layout] = [.nchw, .nChw16c, .nChw8c]
