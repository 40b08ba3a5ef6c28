import Core
import Dispatch
import Foundation
import Tiling

/// Reads an epoch's training patches on a reader thread, up to `depth` patches ahead of the
/// network, in the epoch's order, so that reading chips from disk (a tile set larger than the
/// patch cache) overlaps the network's steps; training stays bit for bit what reading in line
/// gives. The assembler (its scenes' GDAL handles and the cache) belongs to the reader thread
/// until `finish()`. Where no thread can start, patches are read in line, with a notice.
final class PatchPrefetcher: @unchecked Sendable {
    private let assembler: BatchAssembler
    private let refs: [PatchRef]
    private let queue: BoundedQueue<Patch>
    private let failure = ErrorBox()
    private let done = DispatchSemaphore(value: 0)
    private var threaded = false
    private var inlinePosition = 0

    init(assembler: BatchAssembler, refs: [PatchRef], depth: Int, progress: ProgressReporter? = nil) {
        self.assembler = assembler
        self.refs = refs
        queue = BoundedQueue(capacity: depth)
        threaded = startReader()
        if !threaded { progress?.line("Could not start the patch reader thread; reading patches in line with the network") }
    }

    /// The next patch in the epoch's order; rethrows the reader's error.
    func next() throws -> Patch {
        guard threaded else {
            defer { inlinePosition += 1 }
            return try assembler.loaded(refs[inlinePosition])
        }
        if let patch = queue.pop() { return patch }
        throw failure.error ?? TerraSegError(.invalidArgument, path: "training", problem: "the patch reader ended before the epoch did",
                                             hint: "Report this as a bug")
    }

    /// Stops the reader (if still reading) and waits for it: the assembler is the caller's again.
    func finish() {
        queue.close()
        if threaded { done.wait() }
        threaded = false
    }

    private func read() {
        defer { done.signal() }
        for ref in refs {
            do {
                guard queue.push(try assembler.loaded(ref)) else { return }
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
    private func startReader() -> Bool {
        let box = Unmanaged.passRetained(Body { [self] in read() })
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
