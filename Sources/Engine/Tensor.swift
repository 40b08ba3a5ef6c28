import Glibc

/// Float32 tensors of shape (N, C, H, W) over 64-byte-aligned storage.
///
/// A tensor's *layout* says how its logical (n, c, h, w) elements sit in memory:
/// - `.nchw`: plain row-major, what the outside world (rasters, losses, checkpoints) sees;
/// - `.nhwc`: channels innermost;
/// - `.nChw16c`, `.nChw8c`: oneDNN's blocked layouts, channels split in blocks of 16 (or 8)
///   stored innermost, the channel count padded up to a multiple of the block (padding is
///   kept at zero). `Layout.blocked` is the one this CPU's convolution kernels read.
/// Layers keep whatever layout the fast kernels prefer and only reorder at the edges.
public enum Layout: Sendable, Hashable, CustomStringConvertible {
    case nchw
    case nhwc
    case nChw16c
    case nChw8c

    /// The blocked layout of oneDNN's fp32 kernels on this CPU: blocks of one vector register,
    /// 16 channels with AVX-512, 8 with AVX2 or less. Layers between convolutions keep it, so
    /// no convolution reorders its input or output (on AVX2 with blocks of 16 the reorders took
    /// longer than the convolutions). Fixed for the process (`DNNL_MAX_CPU_ISA` counts).
    public static let blocked: Layout = CPUFeatures.vectorFloats >= 16 ? .nChw16c : .nChw8c

    /// Channels per block (1 for plain layouts).
    @inlinable public var channelBlock: Int {
        switch self {
        case .nchw, .nhwc: return 1
        case .nChw16c: return 16
        case .nChw8c: return 8
        }
    }

    /// A layout of channel blocks (`.nChw16c` or `.nChw8c`).
    @inlinable public var isBlocked: Bool { channelBlock > 1 }

    public var description: String {
        switch self {
        case .nchw: return "nchw"
        case .nhwc: return "nhwc"
        case .nChw16c: return "nChw16c"
        case .nChw8c: return "nChw8c"
        }
    }
}

/// Logical tensor shape (N, C, H, W).
public struct Shape: Sendable, Hashable, CustomStringConvertible {
    public var n: Int, c: Int, h: Int, w: Int
    @inlinable public init(_ n: Int, _ c: Int, _ h: Int, _ w: Int) {
        self.n = n; self.c = c; self.h = h; self.w = w
    }
    /// Number of logical elements.
    @inlinable public var count: Int { n * c * h * w }
    public var description: String { "(\(n), \(c), \(h), \(w))" }
}

/// Owns one 64-byte-aligned, zero-initialised allocation of Float32s and frees it in deinit.
public final class Storage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let capacity: Int
    private let memory: ZeroedMemory

    public init(capacity: Int) {
        self.capacity = capacity
        memory = ZeroedMemory(byteCount: max(capacity, 16) * MemoryLayout<Float>.stride)
        pointer = memory.pointer.bindMemory(to: Float.self, capacity: max(capacity, 16))
    }
    deinit { memory.free() }
}

/// A zero-filled, 64-byte-aligned block from `calloc`. A large block comes as fresh pages that
/// the kernel zeroes at their first touch, so what is never written (an inference network's
/// gradients) costs no memory, and the first writer (often oneDNN's threads, in parallel)
/// takes the page faults, not a serial zero fill before it; a reused block is cleared by
/// `calloc` as before.
struct ZeroedMemory {
    private let base: UnsafeMutableRawPointer
    let pointer: UnsafeMutableRawPointer

    init(byteCount: Int) {
        guard let base = calloc(byteCount + 64, 1) else { fatalError("out of memory: \(byteCount) bytes") }
        self.base = base
        pointer = base + (64 - Int(bitPattern: base) % 64) % 64
    }

    func free() { Glibc.free(base) }
}

/// A Float32 (N, C, H, W) tensor. Reference semantics: layers own their output and gradient
/// tensors and overwrite them on every call, so a tensor returned by a layer stays valid
/// until that layer runs again.
public final class Tensor: @unchecked Sendable {
    public let shape: Shape
    public let layout: Layout
    public let storage: Storage

    /// Allocates a zero-filled tensor.
    public init(shape: Shape, layout: Layout = .nchw) {
        self.shape = shape
        self.layout = layout
        self.storage = Storage(capacity: Tensor.physicalCount(shape, layout))
    }

    /// A tensor over `storage` (shared, values kept), which must hold `shape` in `layout`.
    public init(shape: Shape, layout: Layout, sharing storage: Storage) {
        precondition(Tensor.physicalCount(shape, layout) <= storage.capacity, "\(shape) \(layout) in storage of \(storage.capacity)")
        self.shape = shape
        self.layout = layout
        self.storage = storage
    }

    /// Makes a plain NCHW tensor from row-major values.
    public convenience init(shape: Shape, values: [Float]) {
        precondition(values.count == shape.count, "expected \(shape.count) values for \(shape)")
        self.init(shape: shape, layout: .nchw)
        values.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    /// Number of Float32s in memory (includes blocked-layout channel padding).
    @inlinable public static func physicalCount(_ s: Shape, _ layout: Layout) -> Int {
        let b = layout.channelBlock
        return s.n * ((s.c + b - 1) / b) * b * s.h * s.w
    }

    @inlinable public var physicalCount: Int { Tensor.physicalCount(shape, layout) }
    /// Channels in memory: C rounded up to the layout's channel block.
    @inlinable public var paddedChannels: Int {
        let b = layout.channelBlock
        return (shape.c + b - 1) / b * b
    }
    @inlinable public var data: UnsafeMutablePointer<Float> { storage.pointer }
    @inlinable public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: storage.pointer, count: physicalCount)
    }

    /// True when `other` has the same shape and layout (so buffers can be reused).
    @inlinable public func matches(_ shape: Shape, _ layout: Layout) -> Bool {
        self.shape == shape && self.layout == layout
    }

    /// Memory offset of logical element (n, c, h, w).
    @inlinable public func offset(_ n: Int, _ c: Int, _ h: Int, _ w: Int) -> Int {
        let s = shape
        switch layout {
        case .nchw: return ((n * s.c + c) * s.h + h) * s.w + w
        case .nhwc: return ((n * s.h + h) * s.w + w) * s.c + c
        case .nChw16c, .nChw8c:
            let b = layout.channelBlock, cb = paddedChannels / b
            return (((n * cb + c / b) * s.h + h) * s.w + w) * b + c % b
        }
    }

    /// The view used by spatial kernels: memory is [outer][h][w][inner] for every layout.
    @inlinable public var spatialView: SpatialView {
        switch layout {
        case .nchw: return SpatialView(outer: shape.n * shape.c, h: shape.h, w: shape.w, inner: 1)
        case .nhwc: return SpatialView(outer: shape.n, h: shape.h, w: shape.w, inner: shape.c)
        case .nChw16c, .nChw8c:
            let b = layout.channelBlock
            return SpatialView(outer: shape.n * paddedChannels / b, h: shape.h, w: shape.w, inner: b)
        }
    }

    /// Logical values in plain NCHW order (a copy; for tests, losses and checkpoints).
    public func nchwValues() -> [Float] {
        if layout == .nchw { return Array(UnsafeBufferPointer(start: data, count: shape.count)) }
        var out = [Float](repeating: 0, count: shape.count)
        let s = shape
        var i = 0
        for n in 0..<s.n { for c in 0..<s.c { for h in 0..<s.h { for w in 0..<s.w {
            out[i] = data[offset(n, c, h, w)]; i += 1
        } } } }
        return out
    }

    /// Overwrites the tensor from plain NCHW values (blocked padding stays zero).
    public func setNCHW(_ values: [Float]) {
        precondition(values.count == shape.count)
        let s = shape
        var i = 0
        for n in 0..<s.n { for c in 0..<s.c { for h in 0..<s.h { for w in 0..<s.w {
            data[offset(n, c, h, w)] = values[i]; i += 1
        } } } }
    }

    /// Fills every element (including padding) with zero.
    public func zero() { data.update(repeating: 0, count: physicalCount) }
}

/// [outer][h][w][inner] view of a tensor's memory, shared by every layout: spatial kernels
/// (pooling, upsampling, unpooling) are written once against it and vectorise over `inner`.
/// Planes are grouped in images of `planesPerImage`; images are `imageStride` floats apart,
/// which lets a kernel write into (or read from) a channel slice of a larger tensor, e.g. the
/// upsampled half of a skip-connection concat, without a copy.
public struct SpatialView: Sendable, Equatable {
    public var outer: Int, h: Int, w: Int, inner: Int
    public var planesPerImage: Int
    public var imageStride: Int
    @inlinable public init(outer: Int, h: Int, w: Int, inner: Int) {
        self.outer = outer; self.h = h; self.w = w; self.inner = inner
        planesPerImage = max(outer, 1); imageStride = outer * h * w * inner
    }
    @inlinable public var planeStride: Int { h * w * inner }
    /// Offset of plane `o`.
    @inlinable public func base(_ o: Int) -> Int { (o / planesPerImage) * imageStride + (o % planesPerImage) * planeStride }
    /// Offset of row `y` of plane `o`.
    @inlinable public func row(_ o: Int, _ y: Int) -> Int { base(o) + y * w * inner }
    /// Same geometry (what kernels check), ignoring how images are strided.
    @inlinable public func sameShape(_ v: SpatialView) -> Bool {
        outer == v.outer && h == v.h && w == v.w && inner == v.inner
    }
}

extension Tensor {
    /// View of channels [0, channels) of every image of this (blocked or NCHW) tensor, shaped
    /// like a dense tensor of `channels` channels. `channels` must be a multiple of the block.
    public func leadingChannelsView(_ channels: Int) -> SpatialView {
        precondition(layout != .nhwc && channels % layout.channelBlock == 0 && channels <= shape.c)
        let b = layout.channelBlock
        var v = SpatialView(outer: shape.n * channels / b, h: shape.h, w: shape.w, inner: b)
        v.planesPerImage = channels / b
        v.imageStride = paddedChannels * shape.h * shape.w
        return v
    }

    /// Rows `rows` of channels [0, channels) of this one-image (blocked or NCHW) tensor: where
    /// they start and their view, for a kernel that writes a row range of a line buffer.
    public func leadingChannelsView(_ channels: Int, rows: Range<Int>) -> (offset: Int, view: SpatialView) {
        precondition(shape.n == 1 && layout != .nhwc && channels % layout.channelBlock == 0 && channels <= shape.c
                     && rows.lowerBound >= 0 && rows.upperBound <= shape.h, "rows \(rows) of \(channels) channels of \(shape)")
        let b = layout.channelBlock
        var v = SpatialView(outer: channels / b, h: rows.count, w: shape.w, inner: b)
        v.planesPerImage = 1
        v.imageStride = shape.h * shape.w * b
        return (rows.lowerBound * shape.w * b, v)
    }
}

/// Reuses `existing` when it already has the wanted shape and layout, otherwise allocates.
/// This is how every layer keeps its buffers between steps.
@inlinable public func reuse(_ existing: Tensor?, _ shape: Shape, _ layout: Layout) -> Tensor {
    if let t = existing, t.matches(shape, layout) { return t }
    return Tensor(shape: shape, layout: layout)
}

/// `reuse` for outputs whose row count varies (a row stream's first and last strips, a
/// junction's chunks): a tensor over `existing`'s storage whenever it is large enough, and a
/// new buffer holds `maxRows` rows at once, so no new height makes a new buffer (fresh buffers
/// cost page faults: a third of R1's streamed page faults before). Values are stale; a
/// blocked layout's channel padding is zeroed again when the shape changes (its place moves
/// with the height).
public func reuseRows(_ existing: Tensor?, _ shape: Shape, _ layout: Layout, maxRows: Int = 0) -> Tensor {
    if let t = existing, t.matches(shape, layout) { return t }
    var storage = existing?.storage
    if storage.map({ Tensor.physicalCount(shape, layout) > $0.capacity }) ?? true {
        var biggest = shape
        biggest.h = max(shape.h, maxRows)
        storage = Storage(capacity: Tensor.physicalCount(biggest, layout))
    }
    let out = Tensor(shape: shape, layout: layout, sharing: storage!)
    let b = layout.channelBlock, plane = shape.h * shape.w * b, planes = out.paddedChannels / b
    if shape.c % b != 0 {
        for image in 0..<shape.n { (out.data + (image * planes + planes - 1) * plane).update(repeating: 0, count: plane) }
    }
    return out
}

/// Transient buffers shared by the layers of one network, by shape and layout: each request
/// returns the next of `depth` buffers in turn. Backward gradients flow through a chain in
/// which every layer reads the previous gradient and writes a new one, so alternating two
/// buffers per shape is enough and the network keeps 2 gradient tensors per resolution
/// instead of one per layer.
public final class BufferPool {
    public let depth: Int
    private var slots: [Key: (buffers: [Tensor], next: Int)] = [:]
    private struct Key: Hashable { var shape: Shape; var layout: Layout }

    public init(depth: Int = 2) { self.depth = depth }

    public func take(_ shape: Shape, _ layout: Layout) -> Tensor {
        let key = Key(shape: shape, layout: layout)
        var slot = slots[key] ?? ([], 0)
        if slot.next == slot.buffers.count { slot.buffers.append(Tensor(shape: shape, layout: layout)) }
        let t = slot.buffers[slot.next]
        slot.next = (slot.next + 1) % depth
        slots[key] = slot
        return t
    }

    /// Starts the request sequence over (call at the start of each backward pass), so a shape
    /// requested once per pass keeps one buffer.
    public func rewind() {
        for key in slots.keys { slots[key]!.next = 0 }
    }

    /// Bytes held.
    public var byteCount: Int { slots.values.reduce(0) { $0 + $1.buffers.reduce(0) { $0 + $1.physicalCount * 4 } } }
}
