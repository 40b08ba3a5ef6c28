import CDNNL
import Glibc

// Swift owners for oneDNN's C handles: one type per handle kind, each freeing in deinit.
// This folder is the only place that imports CDNNL.

/// Stops with a message naming the oneDNN call. A failing descriptor or primitive creation
/// means an unsupported configuration, i.e. a programming error in the caller.
@usableFromInline
func dnnlCheck(_ status: dnnl_status_t, _ call: @autoclosure () -> String) {
    if status != dnnl_success {
        fatalError("oneDNN: \(call()) failed with status \(status.rawValue)")
    }
}

/// The CPU engine and the in-order stream every primitive runs on (`dnnl_engine_create`,
/// `dnnl_stream_create`).
final class DNNLContext: @unchecked Sendable {
    static let shared = DNNLContext()
    let engine: dnnl_engine_t
    let stream: dnnl_stream_t

    private init() {
        _ = Runtime.threads  // applies TERRASEG_THREADS before oneDNN starts its thread pool
        var e: dnnl_engine_t?
        dnnlCheck(dnnl_engine_create(&e, dnnl_cpu, 0), "dnnl_engine_create")
        engine = e!
        var s: dnnl_stream_t?
        dnnlCheck(dnnl_stream_create(&s, engine, dnnl_stream_default_flags.rawValue), "dnnl_stream_create")
        stream = s!
    }
    deinit {
        dnnl_stream_destroy(stream)
        dnnl_engine_destroy(engine)
    }
}

/// A memory descriptor (plain value; `dnnl_memory_desc_t`).
struct MemoryDesc {
    var raw: dnnl_memory_desc_t

    init(raw: dnnl_memory_desc_t) { self.raw = raw }

    /// A 4-D f32 descriptor for a tensor's shape and layout.
    init(_ shape: Shape, _ layout: Layout) {
        self.init(shape, tag: layout.dnnlTag)
    }
    init(_ shape: Shape, tag: dnnl_format_tag_t) {
        raw = dnnl_memory_desc_t()
        dnnlCheck(ts_md_init_4d(&raw, shape.n, shape.c, shape.h, shape.w, tag), "dnnl_memory_desc_init_by_tag")
    }
    /// "Let the primitive choose" descriptor.
    static func any(_ shape: Shape) -> MemoryDesc { MemoryDesc(shape, tag: dnnl_format_tag_any) }
    static func vector(_ n: Int, type: dnnl_data_type_t = dnnl_f32) -> MemoryDesc {
        var md = dnnl_memory_desc_t()
        dnnlCheck(ts_md_init_1d(&md, n, type), "dnnl_memory_desc_init_by_tag")
        return MemoryDesc(raw: md)
    }
    static var zero: MemoryDesc {
        var md = dnnl_memory_desc_t()
        ts_md_zero(&md)
        return MemoryDesc(raw: md)
    }

    /// Size in bytes (`dnnl_memory_desc_get_size`).
    var byteCount: Int { withUnsafePointer(to: raw) { dnnl_memory_desc_get_size($0) } }
    var isZero: Bool { raw.ndims == 0 }

    static func == (a: MemoryDesc, b: MemoryDesc) -> Bool {
        withUnsafePointer(to: a.raw) { pa in withUnsafePointer(to: b.raw) { pb in dnnl_memory_desc_equal(pa, pb) != 0 } }
    }
}

extension Layout {
    var dnnlTag: dnnl_format_tag_t {
        switch self {
        case .nchw: return dnnl_nchw
        case .nhwc: return dnnl_nhwc
        case .nChw16c: return dnnl_nChw16c
        case .nChw8c: return dnnl_nChw8c
        }
    }
}

/// A memory object whose data handle is re-pointed before each execution (`dnnl_memory_t`).
final class Memory {
    let handle: dnnl_memory_t
    let desc: MemoryDesc

    init(_ desc: MemoryDesc) {
        self.desc = desc
        var m: dnnl_memory_t?
        var raw = desc.raw
        dnnlCheck(dnnl_memory_create(&m, &raw, DNNLContext.shared.engine, ts_dnnl_memory_none()), "dnnl_memory_create")
        handle = m!
    }
    deinit { dnnl_memory_destroy(handle) }

    /// Points the memory object at `pointer` (`dnnl_memory_set_data_handle`).
    @discardableResult
    func bind(_ pointer: UnsafeMutableRawPointer?) -> Memory {
        dnnlCheck(dnnl_memory_set_data_handle(handle, pointer), "dnnl_memory_set_data_handle")
        return self
    }
    func bind(_ pointer: UnsafeMutablePointer<Float>) -> Memory { bind(UnsafeMutableRawPointer(pointer)) }
}

/// A primitive descriptor (`dnnl_primitive_desc_t`).
final class PrimitiveDesc {
    let handle: dnnl_primitive_desc_t

    /// `dnnl_primitive_desc_create` for an op descriptor (conv, bnorm, ...).
    init<D>(_ opDesc: inout D, hint: PrimitiveDesc? = nil, attr: dnnl_primitive_attr_t? = nil, _ what: String) {
        var pd: dnnl_primitive_desc_t?
        let status = withUnsafeMutablePointer(to: &opDesc) {
            dnnl_primitive_desc_create(&pd, UnsafeRawPointer($0), attr, DNNLContext.shared.engine, hint?.handle)
        }
        dnnlCheck(status, "dnnl_primitive_desc_create(\(what))")
        handle = pd!
    }
    init(handle: dnnl_primitive_desc_t) { self.handle = handle }

    /// Like `init(_:hint:attr:_:)` but returns nil when oneDNN has no implementation.
    static func attempt<D>(_ opDesc: inout D, hint: PrimitiveDesc? = nil, attr: PrimitiveAttr? = nil) -> PrimitiveDesc? {
        var pd: dnnl_primitive_desc_t?
        let status = withUnsafeMutablePointer(to: &opDesc) {
            dnnl_primitive_desc_create(&pd, UnsafeRawPointer($0), attr?.handle, DNNLContext.shared.engine, hint?.handle)
        }
        guard status == dnnl_success, let pd else { return nil }
        return PrimitiveDesc(handle: pd)
    }
    deinit { dnnl_primitive_desc_destroy(handle) }

    /// `dnnl_primitive_desc_query_md`.
    func md(_ what: dnnl_query_t, _ index: Int32 = 0) -> MemoryDesc {
        guard let p = dnnl_primitive_desc_query_md(handle, what, index) else { return .zero }
        return MemoryDesc(raw: p.pointee)
    }

    /// Implementation name, e.g. "jit:avx512_core" (`dnnl_query_impl_info_str`).
    var implementation: String {
        var s: UnsafePointer<CChar>?
        guard dnnl_primitive_desc_query(handle, dnnl_query_impl_info_str, 0, &s) == dnnl_success, let s else { return "?" }
        return String(cString: s)
    }

    /// oneDNN's reference implementation (naive loops): what it takes when no vectorised kernel
    /// fits the layouts asked for, e.g. a blocked dilated convolution under 16 channels.
    var isReference: Bool { isReferenceImplementation(implementation) }
}

/// Whether an implementation name (`DNNL_VERBOSE`'s, or a primitive's) is one of oneDNN's
/// reference kernels: "ref:any", or batch norm's "bnorm_ref:any" in blocks wider than the
/// CPU's vectors.
public func isReferenceImplementation(_ name: some StringProtocol) -> Bool { name.hasPrefix("ref") || name.contains("_ref") }

/// A post-op chain (`dnnl_post_ops_t`).
final class PostOps {
    let handle: dnnl_post_ops_t
    init() {
        var h: dnnl_post_ops_t?
        dnnlCheck(dnnl_post_ops_create(&h), "dnnl_post_ops_create")
        handle = h!
    }
    deinit { dnnl_post_ops_destroy(handle) }
    /// `dnnl_post_ops_append_eltwise(…, dnnl_eltwise_relu, 0, 0)`.
    func appendReLU() { dnnlCheck(dnnl_post_ops_append_eltwise(handle, 1, dnnl_eltwise_relu, 0, 0), "dnnl_post_ops_append_eltwise") }
}

/// Primitive attributes (`dnnl_primitive_attr_t`).
final class PrimitiveAttr {
    let handle: dnnl_primitive_attr_t
    init() {
        var h: dnnl_primitive_attr_t?
        dnnlCheck(dnnl_primitive_attr_create(&h), "dnnl_primitive_attr_create")
        handle = h!
    }
    deinit { dnnl_primitive_attr_destroy(handle) }
    /// Attributes with a fused ReLU after the primitive (`dnnl_primitive_attr_set_post_ops`).
    static func withReLU() -> PrimitiveAttr {
        let a = PrimitiveAttr(), ops = PostOps()
        ops.appendReLU()
        dnnlCheck(dnnl_primitive_attr_set_post_ops(a.handle, ops.handle), "dnnl_primitive_attr_set_post_ops")
        return a
    }
}

/// A primitive (`dnnl_primitive_t`), created once per shape and cached by its owner.
final class Primitive {
    let handle: dnnl_primitive_t
    let desc: PrimitiveDesc

    init(_ desc: PrimitiveDesc) {
        self.desc = desc
        var p: dnnl_primitive_t?
        OneAtATime.run { dnnlCheck(dnnl_primitive_create(&p, desc.handle), "dnnl_primitive_create") }
        handle = p!
    }
    deinit { OneAtATime.run { dnnl_primitive_destroy(handle) } }

    /// Runs synchronously (`dnnl_primitive_execute` + `dnnl_stream_wait`).
    func execute(_ args: [(Int32, Memory)]) {
        var list = args.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1.handle) }
        let ctx = DNNLContext.shared
        let status = OneAtATime.run {
            let status = dnnl_primitive_execute(handle, ctx.stream, Int32(list.count), &list)
            if status == dnnl_success { dnnlCheck(dnnl_stream_wait(ctx.stream), "dnnl_stream_wait") }
            return status
        }
        if status != dnnl_success {
            let wanted = (0..<300).filter { !desc.md(dnnl_query_exec_arg_md, Int32($0)).isZero }
            dnnlCheck(status, "dnnl_primitive_execute(\(desc.implementation), given args \(args.map(\.0)), primitive uses \(wanted))")
        }
    }
}

/// Primitives are created, run and destroyed by one thread at a time. TerraSeg runs a network
/// on one thread, but tests run many at once, and there oneDNN 2.6 (library-managed scratchpads,
/// primitives shared through its cache, one stream) now and then gave wrong rows (brgconv
/// layers, about one full test run in three); with two cores nothing is lost by taking turns.
enum OneAtATime {
    nonisolated(unsafe) private static let mutex: UnsafeMutablePointer<pthread_mutex_t> = {
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_RECURSIVE))
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, &attributes)
        pthread_mutexattr_destroy(&attributes)
        return m
    }()

    static func run<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }
}

/// A cached reorder between two descriptors (`dnnl_reorder_primitive_desc_create`).
final class Reorder {
    let from: Memory, to: Memory
    let primitive: Primitive

    init(from: MemoryDesc, to: MemoryDesc, attr: PrimitiveAttr? = nil) {
        self.from = Memory(from)
        self.to = Memory(to)
        var pd: dnnl_primitive_desc_t?
        var a = from.raw, b = to.raw
        let e = DNNLContext.shared.engine
        dnnlCheck(dnnl_reorder_primitive_desc_create(&pd, &a, e, &b, e, attr?.handle), "dnnl_reorder_primitive_desc_create")
        primitive = Primitive(PrimitiveDesc(handle: pd!))
    }

    func run(_ src: UnsafeMutableRawPointer, _ dst: UnsafeMutableRawPointer) {
        primitive.execute([(DNNL_ARG_FROM, from.bind(src)), (DNNL_ARG_TO, to.bind(dst))])
    }
}

/// An aligned scratch buffer of raw bytes (workspaces, reordered operands).
final class ByteBuffer {
    let pointer: UnsafeMutableRawPointer
    let byteCount: Int
    private let memory: ZeroedMemory
    init(byteCount: Int) {
        self.byteCount = byteCount
        memory = ZeroedMemory(byteCount: max(byteCount, 64))
        pointer = memory.pointer
    }
    deinit { memory.free() }
}

/// Presents a buffer held in descriptor `user` to a primitive that wants descriptor `wanted`:
/// binds it directly when they agree, otherwise reorders through an owned buffer.
final class Operand {
    let memory: Memory
    private let reorder: Reorder?
    private let buffer: ByteBuffer?
    /// For weights: the parameter version last reordered, so unchanged weights are not redone.
    var version: Int = -1

    init(user: MemoryDesc, wanted: MemoryDesc) {
        memory = Memory(wanted)
        if user == wanted {
            reorder = nil; buffer = nil
        } else {
            reorder = Reorder(from: user, to: wanted)
            let b = ByteBuffer(byteCount: wanted.byteCount)
            buffer = b
            memory.bind(b.pointer)
        }
    }
    var needsReorder: Bool { reorder != nil }

    /// Input direction: makes `memory` hold the contents of `pointer`.
    func prepare(_ pointer: UnsafeMutableRawPointer) -> Memory {
        guard let reorder, let buffer else { return memory.bind(pointer) }
        reorder.run(pointer, buffer.pointer)
        return memory
    }
}

/// The reverse of `Operand`: a primitive writes in descriptor `produced`, the caller wants
/// descriptor `user`; `finish` copies back when they differ.
final class ResultOperand {
    let memory: Memory
    private let reorder: Reorder?
    private let buffer: ByteBuffer?

    init(produced: MemoryDesc, user: MemoryDesc) {
        memory = Memory(produced)
        if produced == user {
            reorder = nil; buffer = nil
        } else {
            reorder = Reorder(from: produced, to: user)
            let b = ByteBuffer(byteCount: produced.byteCount)
            buffer = b
            memory.bind(b.pointer)
        }
    }
    func target(_ pointer: UnsafeMutableRawPointer) -> Memory {
        guard buffer != nil else { return memory.bind(pointer) }
        return memory
    }
    func finish(_ pointer: UnsafeMutableRawPointer) {
        if let reorder, let buffer { reorder.run(buffer.pointer, pointer) }
    }
}

extension Tensor {
    var raw: UnsafeMutableRawPointer { UnsafeMutableRawPointer(data) }
    var memoryDesc: MemoryDesc { MemoryDesc(shape, layout) }
}

/// Copies `source` into `destination` (same shape, any layouts) with a oneDNN reorder.
public final class LayoutConverter {
    private var cache: [Key: Reorder] = [:]
    private struct Key: Hashable { var shape: Shape; var from: Layout; var to: Layout }
    public init() {}

    public func convert(_ source: Tensor, into destination: Tensor) {
        precondition(source.shape == destination.shape, "reorder needs equal shapes")
        if source.layout == destination.layout {
            destination.data.update(from: source.data, count: source.physicalCount)
            return
        }
        let key = Key(shape: source.shape, from: source.layout, to: destination.layout)
        let r = cache[key] ?? Reorder(from: source.memoryDesc, to: destination.memoryDesc)
        cache[key] = r
        r.run(source.raw, destination.raw)
    }
}

extension Tensor {
    /// A copy of this tensor in another layout (one-off; hot paths keep a `LayoutConverter`).
    public func converted(to layout: Layout) -> Tensor {
        let t = Tensor(shape: shape, layout: layout)
        LayoutConverter().convert(self, into: t)
        return t
    }
}
