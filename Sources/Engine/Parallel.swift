import Dispatch

/// Splits 0..<count into `Runtime.threads` contiguous chunks and runs them concurrently.
/// Small problems run inline.
@inlinable
public func parallelFor(_ count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    let threads = min(Runtime.threads, max(1, count / max(1, minChunk)))
    if threads <= 1 || count <= 1 {
        body(0..<count)
        return
    }
    withoutActuallyEscaping(body) { body in
        let box = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let lo = count * t / threads, hi = count * (t + 1) / threads
            if lo < hi { box.value(lo..<hi) }
        }
    }
}

/// Wraps a value that is safe to share across the threads of one `parallelFor` call.
public struct UncheckedSendable<T>: @unchecked Sendable {
    public var value: T
    @inlinable public init(_ value: T) { self.value = value }
}
