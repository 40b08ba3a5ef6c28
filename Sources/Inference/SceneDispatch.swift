import Core
import Distributed
import Foundation

/// Hands out the scenes of a batch, one at a time, to whichever rank is free: scenes differ in
/// size, so a fixed split would leave ranks idle. Rank 0 serves the other ranks' requests from
/// a thread (polling with `MPI_Iprobe` every millisecond, so it does not spin a core while its
/// own rank predicts) and takes its own scenes from the same counter. One process counts alone.
/// Only the serving thread calls MPI until `finish`, as the serialized thread level requires.
final class SceneDispatch: @unchecked Sendable {
    static let requestTag = 71, replyTag = 72
    let communicator: Communicator
    let count: Int
    private var nextIndex = 0
    private let lock = NSLock()
    private var server: Thread?
    private let served = DispatchSemaphore(value: 0)
    private var serverError: Error?

    init(count: Int, communicator: Communicator) {
        self.count = count
        self.communicator = communicator
        guard communicator.isDistributed, communicator.isRoot else { return }
        let thread = Thread { [self] in
            do { try serve() } catch { serverError = error }
            served.signal()
        }
        thread.stackSize = 1 << 20
        server = thread
        thread.start()
    }

    /// The next scene this rank predicts, or nil when every scene is handed out.
    func next() throws -> Int? {
        guard communicator.isDistributed, !communicator.isRoot else { return take() }
        try communicator.send([Int64(communicator.rank)], to: 0, tag: Self.requestTag)
        let reply = try communicator.receive(count: 1, from: 0, tag: Self.replyTag).values[0]
        return reply >= 0 ? Int(reply) : nil
    }

    private func take() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard nextIndex < count else { return nil }
        nextIndex += 1
        return nextIndex - 1
    }

    /// Rank 0: answers requests until every other rank has been told there is nothing left.
    private func serve() throws {
        var open = communicator.size - 1
        while open > 0 {
            guard try communicator.hasMessage(tag: Self.requestTag) else {
                usleep(1000)
                continue
            }
            let (_, source) = try communicator.receive(count: 1, tag: Self.requestTag)
            let index = take()
            if index == nil { open -= 1 }
            try communicator.send([Int64(index ?? -1)], to: source, tag: Self.replyTag)
        }
    }

    /// Rank 0: waits for the serving thread (every rank has had its last answer).
    func finish() throws {
        guard server != nil else { return }
        served.wait()
        server = nil
        if let serverError { throw serverError }
    }
}

/// What rank 0 needs of a scene another rank predicted: its index in the batch (the job and
/// outputs follow from it), its status and its figures.
struct RemoteReport: Codable {
    var index: Int
    var failure: String?
    var skipped: Bool
    var width = 0, height = 0, tiles = 0, skippedTiles = 0
    var seconds = 0.0

    init(index: Int, _ report: SceneReport) {
        self.index = index
        switch report.status {
        case .written: (failure, skipped) = (nil, false)
        case .skipped: (failure, skipped) = (nil, true)
        case .failed(let m): (failure, skipped) = (m, false)
        }
        if let p = report.prediction {
            (width, height, tiles, skippedTiles, seconds) = (p.width, p.height, p.tiles, p.skippedTiles, p.seconds)
        }
    }

    func report(job: SceneJob, outputs: SceneOutputs) -> SceneReport {
        let status: SceneReport.Status = failure.map { .failed($0) } ?? (skipped ? .skipped : .written)
        let prediction = status == .written
            ? ScenePrediction(width: width, height: height, tiles: tiles, skippedTiles: skippedTiles, seconds: seconds) : nil
        return SceneReport(job: job, outputs: outputs, status: status, prediction: prediction)
    }
}
