import CMPI
import Core
import Foundation

/// The processes of one run and the collective operations between them. A plain `terraseg …`
/// gets the single-process communicator (rank 0 of 1), which never calls MPI: every collective
/// is the identity. Under `mpirun` or `srun` (`Launch.detect`), `world()` initialises Open MPI
/// once (`MPI_Init_thread`, serialized: one thread calls MPI at a time) and finalises it at exit.
/// Every MPI call returns its error (`MPI_ERRORS_RETURN`) and fails as a `TerraSegError`.
public final class Communicator: @unchecked Sendable {
    public let rank: Int
    public let size: Int
    private let comm: MPI_Comm?

    /// Whether other processes take part (collectives then talk to them).
    public var isDistributed: Bool { comm != nil }
    /// Rank 0 alone writes shared outputs (metrics, checkpoints, bundles) and reports progress.
    public var isRoot: Bool { rank == 0 }

    private init(rank: Int, size: Int, comm: MPI_Comm?) {
        self.rank = rank
        self.size = size
        self.comm = comm
    }

    /// One process, no MPI.
    public static let single = Communicator(rank: 0, size: 1, comm: nil)

    nonisolated(unsafe) private static var cached: Communicator?
    private static let lock = NSLock()

    /// The communicator `world()` made, nil before (so error paths never start MPI).
    public static var current: Communicator? {
        lock.lock()
        defer { lock.unlock() }
        return cached
    }

    /// The run's communicator: MPI's world when launched by mpirun/srun, else `single`.
    public static func world(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Communicator {
        lock.lock()
        defer { lock.unlock() }
        if let cached { return cached }
        let c = Launch.detect(environment) ? try initialiseMPI() : single
        cached = c
        return c
    }

    private static func initialiseMPI() throws -> Communicator {
        var provided: Int32 = 0
        let wanted = ts_mpi_thread_serialized()
        guard MPI_Init_thread(nil, nil, wanted, &provided) == MPI_SUCCESS else {
            throw TerraSegError(.invalidArgument, path: "mpirun", problem: "MPI_Init_thread failed",
                                hint: "Start TerraSeg with mpirun/srun of the Open MPI it was built with, or without them for one process")
        }
        atexit { Communicator.finalize() }
        let world = ts_mpi_comm_world()
        MPI_Comm_set_errhandler(world, ts_mpi_errors_return())
        guard provided >= wanted else {
            throw TerraSegError(.invalidArgument, path: "mpirun", problem: "Open MPI gives thread level \(provided), TerraSeg needs \(wanted) (serialized)",
                                hint: "Use an Open MPI built with thread support")
        }
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(world, &rank)
        MPI_Comm_size(world, &size)
        return Communicator(rank: Int(rank), size: Int(size), comm: world)
    }

    nonisolated(unsafe) private static var abandoned = false

    /// This rank leaves while others may wait for it (an interruption in the middle of a batch
    /// of scenes): it exits without MPI_Finalize, which would wait for them, so the launcher
    /// sees a rank end without finalising and ends the job.
    public func abandon() {
        Communicator.lock.lock()
        Communicator.abandoned = isDistributed
        Communicator.lock.unlock()
    }

    /// MPI_Finalize, once, if MPI was initialised (registered with atexit), unless abandoned.
    static func finalize() {
        lock.lock()
        let skip = abandoned
        lock.unlock()
        if skip { return }
        var initialised: Int32 = 0, finalised: Int32 = 0
        MPI_Initialized(&initialised)
        MPI_Finalized(&finalised)
        if initialised != 0 && finalised == 0 { MPI_Finalize() }
    }

    /// Ends every process of the run with `status` (MPI_Abort): after an error on one rank the
    /// others may be waiting in a collective and would never return. Single process: exit.
    public func abort(status: Int32) -> Never {
        if let comm { MPI_Abort(comm, status) }
        exit(status)
    }

    // MARK: - Collectives

    /// Sums `values` over all ranks, in place (MPI_Allreduce).
    public func allReduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws {
        try allReduce(values.baseAddress, count: values.count, type: ts_mpi_float(), op: ts_mpi_sum(), what: "sum of Float")
    }

    public func allReduceSum(_ values: UnsafeMutableBufferPointer<Double>) throws {
        try allReduce(values.baseAddress, count: values.count, type: ts_mpi_double(), op: ts_mpi_sum(), what: "sum of Double")
    }

    public func allReduceSum(_ values: UnsafeMutableBufferPointer<Int64>) throws {
        try allReduce(values.baseAddress, count: values.count, type: ts_mpi_int64(), op: ts_mpi_sum(), what: "sum of Int64")
    }

    public func allReduceSum(_ values: inout [Float]) throws { try values.withUnsafeMutableBufferPointer { try allReduceSum($0) } }
    public func allReduceSum(_ values: inout [Double]) throws { try values.withUnsafeMutableBufferPointer { try allReduceSum($0) } }
    public func allReduceSum(_ values: inout [Int64]) throws { try values.withUnsafeMutableBufferPointer { try allReduceSum($0) } }

    /// The largest of every rank's `value` (e.g. "does any rank want to stop?").
    public func allReduceMax(_ value: Int64) throws -> Int64 {
        var v = value
        try allReduce(&v, count: 1, type: ts_mpi_int64(), op: ts_mpi_max(), what: "max of Int64")
        return v
    }

    private func allReduce(_ pointer: UnsafeMutableRawPointer?, count: Int, type: MPI_Datatype, op: MPI_Op, what: String) throws {
        guard let comm, count > 0 else { return }
        try check(MPI_Allreduce(ts_mpi_in_place(), pointer, Int32(count), type, op, comm), "MPI_Allreduce (\(what), \(count) values)")
    }

    /// Starts summing `values` over all ranks in place (MPI_Iallreduce) and returns at once;
    /// `values` must stay allocated and untouched until `wait` says it is done. Ranks must
    /// start the same reductions in the same order. Single process: nothing to do (nil).
    public func startAllReduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws -> Reduction? {
        guard let comm, !values.isEmpty else { return nil }
        var request = ts_mpi_request_null()
        try check(MPI_Iallreduce(ts_mpi_in_place(), values.baseAddress, Int32(values.count), ts_mpi_float(), ts_mpi_sum(), comm, &request),
                  "MPI_Iallreduce (sum of Float, \(values.count) values)")
        return Reduction(requests: [request])
    }

    /// Lets started reductions advance (MPI_Testall): Open MPI moves a non-blocking collective
    /// or a large message on only inside MPI calls, so the backward pass calls this between
    /// layers. A reduce-scatter whose messages have all arrived sums its block here.
    public func progress(_ reductions: [Reduction]) throws {
        for r in reductions where !r.isComplete {
            var done: Int32 = 0
            try check(MPI_Testall(Int32(r.requests.count), &r.requests, &done, ts_mpi_statuses_ignore()), "MPI_Testall")
            if done != 0 { r.complete() }
        }
    }

    /// Waits until every reduction of `reductions` is complete (MPI_Waitall).
    public func wait(_ reductions: [Reduction]) throws {
        for r in reductions where !r.isComplete {
            try check(MPI_Waitall(Int32(r.requests.count), &r.requests, ts_mpi_statuses_ignore()),
                      "MPI_Waitall (\(r.requests.count) requests)")
            r.complete()
        }
    }

    /// Rank `r`'s block of `count` values split among the ranks (reduce-scatter, all-gather):
    /// count·r/size ..< count·(r+1)/size, so the blocks differ by at most one value.
    public func block(of count: Int, rank r: Int? = nil) -> Range<Int> {
        let r = r ?? rank
        return count * r / size ..< count * (r + 1) / size
    }

    /// Starts summing `values` over all ranks and leaves this rank the sum of its block
    /// (`block(of: values.count)`) in `mine`; both must stay untouched until `wait`
    /// (`startReduceScatterSum(blocks:into:)` with each rank's block one piece). Single process:
    /// `mine` is a copy of `values` (nil: nothing to wait for).
    public func startReduceScatterSum(_ values: UnsafeBufferPointer<Float>, into mine: UnsafeMutableBufferPointer<Float>) throws -> Reduction? {
        precondition(mine.count == block(of: values.count).count, "reduce-scatter: this rank's block has \(block(of: values.count).count) values")
        guard comm != nil else { return Self.copyLocally(values, into: mine) }
        guard let base = values.baseAddress else { return nil }
        return try startReduceScatterSum(blocks: contiguousBlocks(UnsafeMutablePointer(mutating: base), count: values.count), into: mine)
    }

    /// Starts summing over all ranks a buffer given as every rank's block (`blocks[r]`: rank r's
    /// block as pieces in order, e.g. parts of several parameters' gradients, the same sizes on
    /// every rank) and leaves this rank the sum of its block in `mine`; the pieces and `mine`
    /// must stay untouched until `wait`. Pairwise, not MPI_Ireduce_scatter (Open MPI's libnbc
    /// reduces the whole buffer on rank 0, then scatters it: rank 0 alone receives and adds
    /// everything): each rank sends every other rank that rank's pieces and adds what it
    /// receives, so every rank moves and adds (N−1)/N of the values, and nothing is first
    /// packed into one buffer. The sum runs in rank order on every rank, as one process adding
    /// the ranks' buffers in turn would. Single process: `mine` is a copy of the pieces.
    public func startReduceScatterSum(blocks: [[UnsafeMutableBufferPointer<Float>]], into mine: UnsafeMutableBufferPointer<Float>) throws -> Reduction? {
        precondition(blocks.count == size && blocks[rank].reduce(0) { $0 + $1.count } == mine.count, "reduce-scatter: \(size) blocks, this rank's of \(mine.count) values")
        let own = blocks[rank].filter { !$0.isEmpty }, n = mine.count
        guard let comm else {
            Self.add(own, into: mine, first: true)
            return nil
        }
        let received = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, n * (size - 1)))
        var requests: [MPI_Request?] = []
        // Posted in the same order on every rank, so each piece's message matches its own (MPI
        // keeps the order of messages between two ranks with one tag).
        for r in 0..<size where r != rank {
            var o = (r < rank ? r : r - 1) * n
            for piece in own {
                requests.append(try receive(received.baseAddress! + o, piece.count, from: r, tag: Self.reduceScatterTag, "reduce-scatter"))
                o += piece.count
            }
        }
        for r in 0..<size where r != rank {
            for piece in blocks[r] where !piece.isEmpty {
                requests.append(try send(piece.baseAddress!, piece.count, to: r, tag: Self.reduceScatterTag, "reduce-scatter"))
            }
        }
        let (rank, size) = (rank, size)
        return Reduction(requests: requests) {
            // mine = Σ over the ranks in rank order of their contribution to this block.
            defer { received.deallocate() }
            for r in 0..<size {
                let theirs = r == rank ? own : [UnsafeMutableBufferPointer(rebasing: received[(r < rank ? r : r - 1) * n ..< (r < rank ? r + 1 : r) * n])]
                Self.add(theirs, into: mine, first: r == 0)
            }
        }
    }

    /// `target` = (`first`) or += the concatenation of `pieces`.
    private static func add(_ pieces: [UnsafeMutableBufferPointer<Float>], into target: UnsafeMutableBufferPointer<Float>, first: Bool) {
        var t = target.baseAddress
        for piece in pieces where !piece.isEmpty {
            let source = piece.baseAddress!, out = t!, count = piece.count
            if first { out.update(from: source, count: count) } else { for i in 0..<count { out[i] += source[i] } }
            t = out + count
        }
    }

    /// Tags of the reduce-scatter's and the all-gather's messages (no other message uses them).
    static let reduceScatterTag: Int32 = 32001, allGatherTag: Int32 = 32002

    /// Starts copying every rank's block (`mine`, this rank's `block(of: values.count)`) into
    /// `values` on every rank. Single process: `values` is a copy of `mine`.
    public func startAllGather(_ mine: UnsafeBufferPointer<Float>, into values: UnsafeMutableBufferPointer<Float>) throws -> Reduction? {
        precondition(mine.count == block(of: values.count).count, "all-gather: this rank's block has \(block(of: values.count).count) values")
        let own = block(of: values.count)
        _ = Self.copyLocally(mine, into: UnsafeMutableBufferPointer(rebasing: values[own]))
        guard comm != nil, let base = values.baseAddress else { return nil }
        return try startAllGather(blocks: contiguousBlocks(base, count: values.count))
    }

    /// Starts sending this rank's block (`blocks[rank]`, pieces in order) to every rank and
    /// receiving every other rank's block into its pieces (`blocks[r]`, the same sizes on every
    /// rank), straight where they belong (e.g. parameters' values): no packing, no copy of the
    /// own block. Single process: nothing to do (nil).
    public func startAllGather(blocks: [[UnsafeMutableBufferPointer<Float>]]) throws -> Reduction? {
        precondition(blocks.count == size, "all-gather: \(size) blocks")
        guard comm != nil else { return nil }
        var requests: [MPI_Request?] = []
        for r in 0..<size where r != rank {
            for piece in blocks[r] where !piece.isEmpty {
                requests.append(try receive(piece.baseAddress!, piece.count, from: r, tag: Self.allGatherTag, "all-gather"))
            }
        }
        for r in 0..<size where r != rank {
            for piece in blocks[rank] where !piece.isEmpty {
                requests.append(try send(piece.baseAddress!, piece.count, to: r, tag: Self.allGatherTag, "all-gather"))
            }
        }
        return Reduction(requests: requests)
    }

    /// Every rank's block of a buffer of `count` values at `base`, one piece each.
    private func contiguousBlocks(_ base: UnsafeMutablePointer<Float>, count: Int) -> [[UnsafeMutableBufferPointer<Float>]] {
        (0..<size).map { r in
            let b = block(of: count, rank: r)
            return [UnsafeMutableBufferPointer(start: base + b.lowerBound, count: b.count)]
        }
    }

    /// A single process's reduce-scatter or all-gather: its one block is the whole buffer.
    private static func copyLocally(_ from: UnsafeBufferPointer<Float>, into to: UnsafeMutableBufferPointer<Float>) -> Reduction? {
        if let f = from.baseAddress, let t = to.baseAddress, f != UnsafePointer(t) { t.update(from: f, count: from.count) }
        return nil
    }

    /// MPI_Irecv of `count` Float from rank `source` (a piece of a collective of ours).
    private func receive(_ pointer: UnsafeMutablePointer<Float>, _ count: Int, from source: Int, tag: Int32, _ what: String) throws -> MPI_Request? {
        var request = ts_mpi_request_null()
        try check(MPI_Irecv(pointer, Int32(count), ts_mpi_float(), Int32(source), tag, comm, &request), "MPI_Irecv (\(what), \(count) Float from rank \(source))")
        return request
    }

    /// MPI_Isend of `count` Float to rank `destination` (a piece of a collective of ours).
    private func send(_ pointer: UnsafeMutablePointer<Float>, _ count: Int, to destination: Int, tag: Int32, _ what: String) throws -> MPI_Request? {
        var request = ts_mpi_request_null()
        try check(MPI_Isend(pointer, Int32(count), ts_mpi_float(), Int32(destination), tag, comm, &request), "MPI_Isend (\(what), \(count) Float to rank \(destination))")
        return request
    }

    /// A reduction under way (`startAllReduceSum`, `startReduceScatterSum`, `startAllGather`):
    /// its requests and what runs once they are done (a reduce-scatter's sum).
    public final class Reduction {
        fileprivate var requests: [MPI_Request?]
        private var completion: (() -> Void)?
        fileprivate private(set) var isComplete = false
        fileprivate init(requests: [MPI_Request?], completion: (() -> Void)? = nil) {
            self.requests = requests
            self.completion = completion
        }
        fileprivate func complete() {
            isComplete = true
            completion?()
            completion = nil
        }
    }

    /// Copies rank `root`'s `values` to every rank (MPI_Bcast); the count must agree.
    public func broadcast(_ values: UnsafeMutableBufferPointer<Float>, root: Int = 0) throws {
        guard let comm, !values.isEmpty else { return }
        try check(MPI_Bcast(values.baseAddress, Int32(values.count), ts_mpi_float(), Int32(root), comm), "MPI_Bcast (\(values.count) Float)")
    }

    /// Rank `root`'s bytes on every rank (its length first, then the bytes).
    public func broadcast(_ bytes: [UInt8], root: Int = 0) throws -> [UInt8] {
        guard let comm else { return bytes }
        var count = Int64(bytes.count)
        try check(MPI_Bcast(&count, 1, ts_mpi_int64(), Int32(root), comm), "MPI_Bcast (length)")
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count))
        try out.withUnsafeMutableBytes { try check(MPI_Bcast($0.baseAddress, Int32(count), ts_mpi_byte(), Int32(root), comm), "MPI_Bcast (\(count) bytes)") }
        return out
    }

    /// Every rank's bytes, in rank order, on `root` (empty elsewhere): lengths, then MPI_Gatherv.
    public func gather(_ bytes: [UInt8], root: Int = 0) throws -> [[UInt8]] {
        guard let comm else { return [bytes] }
        var mine = Int32(bytes.count)
        var counts = [Int32](repeating: 0, count: size)
        try check(MPI_Gather(&mine, 1, ts_mpi_int32(), &counts, 1, ts_mpi_int32(), Int32(root), comm), "MPI_Gather (lengths)")
        var offsets = [Int32](repeating: 0, count: size)
        for r in 1..<max(1, size) { offsets[r] = offsets[r - 1] + counts[r - 1] }
        var all = [UInt8](repeating: 0, count: rank == root ? Int(counts.reduce(0, +)) : 0)
        var send = bytes
        try send.withUnsafeMutableBytes { s in
            try all.withUnsafeMutableBytes { a in
                try check(MPI_Gatherv(s.baseAddress, mine, ts_mpi_byte(), a.baseAddress, &counts, &offsets, ts_mpi_byte(), Int32(root), comm),
                          "MPI_Gatherv (\(bytes.count) bytes)")
            }
        }
        guard rank == root else { return [] }
        return (0..<size).map { Array(all[Int(offsets[$0])..<Int(offsets[$0] + counts[$0])]) }
    }

    /// Waits until every rank arrives.
    public func barrier() throws {
        guard let comm else { return }
        try check(MPI_Barrier(comm), "MPI_Barrier")
    }

    // MARK: - Point to point

    /// Sends `values` to rank `destination` (MPI_Send).
    public func send(_ values: [Int64], to destination: Int, tag: Int = 0) throws {
        guard let comm else { throw selfMessage("send") }
        var v = values
        try check(MPI_Send(&v, Int32(v.count), ts_mpi_int64(), Int32(destination), Int32(tag), comm), "MPI_Send to rank \(destination)")
    }

    /// Sends raw bytes to rank `destination`, in messages of at most 1 GiB (MPI counts are
    /// 32-bit); the receiver knows the length (`receive(into:from:tag:)`).
    public func send(bytes: UnsafeRawBufferPointer, to destination: Int, tag: Int = 0) throws {
        guard let comm else { throw selfMessage("send") }
        for start in stride(from: 0, to: bytes.count, by: Self.chunk) {
            let n = min(Self.chunk, bytes.count - start)
            try check(MPI_Send(bytes.baseAddress! + start, Int32(n), ts_mpi_byte(), Int32(destination), Int32(tag), comm),
                      "MPI_Send of \(n) bytes to rank \(destination)")
        }
    }

    /// Receives exactly `bytes.count` bytes from rank `source`, sent by `send(bytes:to:tag:)`.
    public func receive(into bytes: UnsafeMutableRawBufferPointer, from source: Int, tag: Int = 0) throws {
        guard let comm else { throw selfMessage("receive") }
        for start in stride(from: 0, to: bytes.count, by: Self.chunk) {
            let n = min(Self.chunk, bytes.count - start)
            var status = MPI_Status()
            try check(MPI_Recv(bytes.baseAddress! + start, Int32(n), ts_mpi_byte(), Int32(source), Int32(tag), comm, &status),
                      "MPI_Recv of \(n) bytes from rank \(source)")
            var got: Int32 = 0
            MPI_Get_count(&status, ts_mpi_byte(), &got)
            guard Int(got) == n else {
                throw TerraSegError(.readFailed, path: "rank \(rank) of \(size)", problem: "rank \(source) sent \(got) bytes where \(n) were expected",
                                    hint: "Every rank must run the same TerraSeg with the same arguments")
            }
        }
    }

    static let chunk = 1 << 30

    /// Receives `count` values from `source` (nil: any rank); returns them and the sender.
    public func receive(count: Int, from source: Int? = nil, tag: Int = 0) throws -> (values: [Int64], source: Int) {
        guard let comm else { throw selfMessage("receive") }
        var v = [Int64](repeating: 0, count: count)
        var status = MPI_Status()
        try check(MPI_Recv(&v, Int32(count), ts_mpi_int64(), Int32(source ?? Int(ts_mpi_any_source())), Int32(tag), comm, &status),
                  "MPI_Recv from rank \(source.map(String.init) ?? "any")")
        return (v, Int(status.MPI_SOURCE))
    }

    /// Whether a message with `tag` waits to be received (MPI_Iprobe), so a dispatcher can
    /// poll without spinning a core in MPI_Recv.
    public func hasMessage(tag: Int = 0) throws -> Bool {
        guard let comm else { return false }
        var flag: Int32 = 0
        try check(MPI_Iprobe(ts_mpi_any_source(), Int32(tag), comm, &flag, ts_mpi_status_ignore()), "MPI_Iprobe")
        return flag != 0
    }

    private func selfMessage(_ what: String) -> TerraSegError {
        TerraSegError(.invalidArgument, path: "terraseg", problem: "cannot \(what) a message in a single-process run")
    }

    private func check(_ code: Int32, _ call: String) throws {
        guard code != MPI_SUCCESS else { return }
        var text = [CChar](repeating: 0, count: Int(ts_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &text, &length)
        let message = String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw TerraSegError(.readFailed, path: "rank \(rank) of \(size)", problem: "\(call) failed: \(message)",
                            hint: "Another rank has probably stopped; see its message above")
    }
}

/// How a process learns that mpirun or srun started it: the launchers' environment.
public enum Launch {
    /// Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE; Slurm's srun with PMI-2 sets PMI_SIZE,
    /// with PMIx PMIX_RANK. Without any of them TerraSeg runs alone and never calls MPI.
    public static let variables = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]

    public static func detect(_ environment: [String: String]) -> Bool {
        variables.contains { environment[$0] != nil }
    }
}
