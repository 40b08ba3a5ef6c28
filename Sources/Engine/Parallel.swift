import Dispatch

/// Splits 0..<count into up to `Runtime.threads` contiguous chunks and runs them concurrently
/// on OpenMP's thread pool (shared with oneDNN; Dispatch when OpenMP is absent).
/// Small problems (fewer than two `minChunk`s) run inline.
public func parallelFor(_ count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    let threads = min(Runtime.threads, max(1, count / max(1, minChunk)))
    if threads <= 1 || count <= 1 {
        body(0..<count)
        return
    }
    withoutActuallyEscaping(body) { body in
        let chunk: (Int, Int) -> Void = { t, n in
            let lo = count * t / n, hi = count * (t + 1) / n
            if lo < hi { body(lo..<hi) }
        }
        if !runOnOpenMP(threads: threads, chunk) {
            let box = UncheckedSendable(chunk)
            DispatchQueue.concurrentPerform(iterations: threads) { t in box.value(t, threads) }
        }
    }
}

/// Wraps a value that is safe to share across the threads of one `parallelFor` call.
public struct UncheckedSendable<T>: @unchecked Sendable {
    public var value: T
    @inlinable public init(_ value: T) { self.value = value }
}
