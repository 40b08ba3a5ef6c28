import Core
import Dispatch
import Foundation
import Tiling

/// Reads an epoch's training patches on reader threads, up to `depth` patches ahead of the
/// network, so that reading chips from disk (a tile set larger than the patch cache) overlaps
/// the network's steps. Patch i of the epoch's order is read by thread i mod n and taken from
/// that thread's queue in turn, so training stays bit for bit what reading in line gives.
/// Each thread reads through its own scenes (`BatchAssembler.readerScenes`: own GDAL handles);
/// they and the assembler are the caller's again after `finish()`. Where no thread can start,
/// patches are read in line, with a notice.
final class PatchPrefetcher: @unchecked Sendable {
    private let assembler: BatchAssembler
    private let refs: [PatchRef]
    private var queues: [BoundedQueue<Patch>] = []
    private let failure = ErrorBox()
    private let done = DispatchSemaphore(value: 0)
    private var started = 0
    private var position = 0

    init(assembler: BatchAssembler, refs: [PatchRef], depth: Int, threads: Int = 1, progress: ProgressReporter? = nil) {
        self.assembler = assembler
        self.refs = refs
        let wanted = max(1, min(threads, refs.count))
        let readers = assembler.readerScenes(wanted)
        if let notice = assembler.readerShortfall(wanted: wanted, got: readers.count) { progress?.line(notice) }
        for (t, scenes) in readers.enumerated() {
            let queue = BoundedQueue<Patch>(capacity: (depth + readers.count - 1) / readers.count)
            guard startReader({ [self] in read(thread: t, of: readers.count, scenes: scenes, into: queue) }) else { break }
            queues.append(queue)
            started += 1
        }
        if started < readers.count {
            finish() // patch i belongs to thread i mod n: all threads or none
            progress?.line("Could not start \(readers.count) patch reader thread(s); reading patches in line with the network")
        }
    }

    /// Patches read ahead: two batches, more for small patches (up to 8 batches or 32 MiB), whose
    /// reads are short and vary more against the network's steps.
    static func depth(batchSize: Int, patchBytes: Int) -> Int {
        max(2 * batchSize, min(8 * batchSize, (32 << 20) / max(1, patchBytes)))
    }

    /// The next patch in the epoch's order; rethrows the reader's error.
    func next() throws -> Patch {
        defer { position += 1 }
        guard started > 0 else { return try assembler.loaded(refs[position]) }
        if let patch = queues[position % queues.count].pop() { return patch }
        throw failure.error ?? TerraSegError(.invalidArgument, path: "training", problem: "the patch reader ended before the epoch did",
                                             hint: "Report this as a bug")
    }

    /// Stops the readers (if still reading) and waits for them: the scenes are the caller's again.
    func finish() {
        queues.forEach { $0.close() }
        for _ in 0..<started { done.wait() }
        started = 0
        queues = []
    }

    /// Thread `t` of `n`: patches t, t + n, t + 2n, … of the epoch's order.
    private func read(thread t: Int, of n: Int, scenes: [LabelledScene], into queue: BoundedQueue<Patch>) {
        defer { done.signal() }
        var patch = Patch()
        for i in Swift.stride(from: t, to: refs.count, by: n) {
            do {
                try assembler.load(refs[i], from: scenes, into: &patch)
                guard queue.push(patch) else { return }
            } catch {
                failure.record(error)
                queue.close()
                return
            }
        }
    }

    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// pthreads rather than Foundation's `Thread`, which cannot say that a thread failed to start.
    private func startReader(_ body: @escaping () -> Void) -> Bool {
        let box = Unmanaged.passRetained(Body(body))
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { raw in
            Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, box.toOpaque())
        guard status == 0 else {
            box.release()
            return false
        }
        pthread_detach(thread)
        return true
    }
}
