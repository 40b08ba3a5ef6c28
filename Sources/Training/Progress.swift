import Core
import Foundation

/// Training progress: a live bar with throughput and ETA on a terminal, plain lines
/// otherwise (logs, CI). Everything goes to standard error; standard output stays clean.
public final class ProgressReporter {
    public let isTerminal: Bool
    public var quiet = false
    private var lastDraw = Date.distantPast

    public init(isTerminal: Bool = isatty(STDERR_FILENO) != 0) { self.isTerminal = isTerminal }

    func batch(epoch: Int, epochs: Int, batch: Int, batches: Int, loss: Double, patchesPerSecond: Double, chipsPerSecond: Double? = nil) {
        guard isTerminal, !quiet else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) > 0.2 || batch == batches else { return }
        lastDraw = now
        let width = 24
        let filled = batches > 0 ? width * batch / batches : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        // Time left in this epoch, from its batches so far.
        let elapsed = now.timeIntervalSince(epochStart)
        let eta = batch > 0 ? ProgressReporter.duration(Double(batches - batch) * elapsed / Double(batch)) : "--"
        let rates = String(format: "%.1f patches/s", patchesPerSecond) + (chipsPerSecond.map { String(format: ", %.1f chips/s", $0) } ?? "")
        let line = String(format: "\repoch %d/%d %@ %d/%d  loss %.4f  %@  ETA %@ ", epoch, epochs, bar, batch, batches, loss, rates, eta)
        FileHandle.standardError.write(Data(line.utf8))
    }

    private var epochStart = Date()
    func startEpoch() { epochStart = Date() }

    func line(_ text: String) {
        guard !quiet else { return }
        FileHandle.standardError.write(Data(((isTerminal ? "\r\u{1B}[K" : "") + text + "\n").utf8))
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t % 3600 / 60) : t >= 60 ? String(format: "%dm%02ds", t / 60, t % 60) : "\(t)s"
    }
}
