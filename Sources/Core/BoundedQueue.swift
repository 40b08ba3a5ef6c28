import Foundation

/// A blocking FIFO of bounded capacity between pipeline threads (prediction's reader →
/// network → writer; training's patch reader → network). `close()` ends the stream: `pop()`
/// then drains and returns nil; `push` after close is refused, so a failing stage can stop the others.
public final class BoundedQueue<Element>: @unchecked Sendable {
    private var items: [Element] = []
    private let capacity: Int
    private let condition = NSCondition()
    private var closed = false

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Blocks while full; returns false if the queue was closed.
    @discardableResult
    public func push(_ item: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count >= capacity && !closed { condition.wait() }
        if closed { return false }
        items.append(item)
        condition.broadcast()
        return true
    }

    /// Blocks while empty; nil once closed and drained.
    public func pop() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !closed { condition.wait() }
        if items.isEmpty { return nil }
        let item = items.removeFirst()
        condition.broadcast()
        return item
    }

    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}

/// First error raised by any pipeline thread.
public final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Error?

    public init() {}

    public func record(_ error: Error) {
        lock.lock()
        if stored == nil { stored = error }
        lock.unlock()
    }

    public var error: Error? {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
}

/// Moves a non-Sendable value into a thread that becomes its only user.
public final class Handoff<T>: @unchecked Sendable {
    public var value: T
    public init(_ value: T) { self.value = value }
}
