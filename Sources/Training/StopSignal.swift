import Core
import Foundation

/// SIGINT/SIGTERM set a flag the trainer checks after every batch, so an interrupted run
/// saves a checkpoint and stops cleanly instead of dying mid-write. A second signal while
/// stopping exits at once (files are always written atomically, so nothing is left half-done).
public enum StopSignal {
    nonisolated(unsafe) static var requested: sig_atomic_t = 0

    public static var isRequested: Bool { requested != 0 }

    public static func install() {
        let handler: @convention(c) (Int32) -> Void = { sig in
            if StopSignal.requested != 0 { _exit(128 + sig) }
            StopSignal.requested = 1
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
    }

    /// For tests: request a stop as if a signal had arrived.
    public static func request() { requested = 1 }
    public static func reset() { requested = 0 }
}
