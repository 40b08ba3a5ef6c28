#if canImport(Glibc)
import Glibc
#endif

/// Optional wall-clock profile by label (per-layer times for benchmarks). Disabled by default;
/// when disabled `measure` only runs its body.
public final class Profiler: @unchecked Sendable {
    public static let shared = Profiler()
    public var isEnabled = false
    private var totals: [String: Double] = [:]
    private var order: [String] = []

    public func reset() { totals = [:]; order = [] }

    @discardableResult
    public func measure<T>(_ label: @autoclosure () -> String, _ body: () -> T) -> T {
        guard isEnabled else { return body() }
        let t0 = Profiler.now()
        let r = body()
        let key = label()
        if totals[key] == nil { order.append(key) }
        totals[key, default: 0] += Profiler.now() - t0
        return r
    }

    public var entries: [(String, Double)] { order.map { ($0, totals[$0]!) } }

    public func report() -> String {
        entries.map { label, t in
            let ms = (t * 10000).rounded() / 10
            return label.padding(toLength: 44) + " \(ms) ms"
        }.joined(separator: "\n")
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

extension String {
    fileprivate func padding(toLength n: Int) -> String {
        count >= n ? self : self + String(repeating: " ", count: n - count)
    }
}
