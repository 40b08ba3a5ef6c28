import Foundation

/// SIGINT/SIGTERM set a flag that every long stage checks at its safe points (the trainer after
/// each batch, prediction's reader before each window, evaluation before each strip, a
/// pipeline between stages), so a stopped command finishes or discards what it was writing
/// and exits 130 (SIGINT) or 143 (SIGTERM) instead of dying mid-write. A second signal while
/// stopping exits at once (outputs are written atomically: nothing is left under a final name).
/// Only commands that check the flag install the handler (`install()`).
public enum StopSignal {
    /// The signal that asked to stop (0: none); cleared once a stop is honoured.
    nonisolated(unsafe) static var requested: sig_atomic_t = 0
    /// The last signal received, kept for the exit status after `reset()`.
    nonisolated(unsafe) static var last: sig_atomic_t = 0

    public static var isRequested: Bool { requested != 0 }

    public static func install() {
        let handler: @convention(c) (Int32) -> Void = { sig in
            if StopSignal.requested != 0 { _exit(128 + sig) }
            StopSignal.requested = sig
            StopSignal.last = sig
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
        // A parent may start us with these signals blocked (Foundation's Process does): they
        // would then never arrive. Threads started later inherit this thread's mask.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// Throws `Interrupted` when a stop was requested: call at a safe point.
    public static func check() throws {
        let sig = requested
        if sig != 0 { throw Interrupted(signal: sig) }
    }

    /// The signal of the last stop (SIGINT when none came: a stop requested by a test).
    public static var lastSignal: Int32 { last != 0 ? last : SIGINT }

    /// For tests: request a stop as if `signal` had arrived.
    public static func request(_ signal: Int32 = SIGINT) {
        requested = signal
        last = signal
    }

    public static func reset() { requested = 0 }
}

/// A command stopped by SIGINT or SIGTERM at a safe point. Each layer it passes adds what it
/// kept complete (`kept`), so the command can say so in one line and exit 128 + signal.
public struct Interrupted: Error, CustomStringConvertible, Sendable {
    public var signal: Int32
    /// Complete outputs and resumable state left behind, in words ("maps/a_map.tif").
    public var kept: [String] = []

    public init(signal: Int32 = StopSignal.lastSignal, kept: [String] = []) {
        self.signal = signal
        self.kept = kept
    }

    public var signalName: String { signal == SIGTERM ? "SIGTERM" : signal == SIGINT ? "SIGINT" : "signal \(signal)" }
    /// 130 for SIGINT, 143 for SIGTERM: what a shell reports for a process the signal killed.
    public var exitStatus: Int32 { 128 + signal }

    public var description: String {
        let what = kept.isEmpty ? "nothing new was kept" : "kept " + kept.joined(separator: ", ")
        return "Stopped by \(signalName): \(what); partial outputs were discarded. Run the same command again to continue."
    }
}
