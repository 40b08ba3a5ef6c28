/// A plain NCHW tensor of Doubles for the naive reference kernels. The reference kernels are
/// slow and obviously correct; tests check them against finite differences (in Double) and
/// check the fast oneDNN / hand-written kernels against them.
public struct RefTensor: Sendable, Equatable {
    public var shape: Shape
    public var values: [Double]

    public init(_ shape: Shape, _ values: [Double]) {
        precondition(values.count == shape.count)
        self.shape = shape; self.values = values
    }
    public init(zeros shape: Shape) { self.init(shape, [Double](repeating: 0, count: shape.count)) }
    public init(_ t: Tensor) { self.init(t.shape, t.nchwValues().map(Double.init)) }

    @inlinable public func index(_ n: Int, _ c: Int, _ h: Int, _ w: Int) -> Int {
        ((n * shape.c + c) * shape.h + h) * shape.w + w
    }
    @inlinable public subscript(n: Int, c: Int, h: Int, w: Int) -> Double {
        get { values[index(n, c, h, w)] }
        set { values[index(n, c, h, w)] = newValue }
    }
    /// Float32 tensor in the given layout with these values.
    public func tensor(layout: Layout = .nchw) -> Tensor {
        let t = Tensor(shape: shape, layout: layout)
        t.setNCHW(values.map(Float.init))
        return t
    }
}
