import Core
import Foundation
import GeoRaster
import Engine
import Tiling

/// Fills network batches with normalised patches: each patch is read from its scene (or taken
/// from the cache while it fits), optionally augmented, and copied into slot k of the batch
/// tensor (N, C, P, P) and the label buffer (N, P, P; −1 = excluded). During a training epoch
/// the scenes belong to the `PatchPrefetcher`'s reader threads: the first reads through
/// `scenes`, each other one through its own reopened copies (`readerScenes`); the cache is shared.
final class BatchAssembler: @unchecked Sendable {
    let scenes: [LabelledScene]
    let normalizer: Normalizer
    private var cache: PatchCache
    private let cacheLock = NSLock()
    private var patch = Patch()
    /// The scenes of reader threads 1, 2, …: reopened once, kept across epochs.
    private var extraReaders: [[LabelledScene]] = []

    init(scenes: [LabelledScene], normalizer: Normalizer, patchSize P: Int, cacheMegabytes: Int) {
        self.scenes = scenes
        self.normalizer = normalizer
        cache = PatchCache(limitBytes: cacheMegabytes << 20, patchBytes: (scenes[0].bands.count + 1) * P * P * 4)
    }

    /// Puts the patch `ref` into `slot`, unchanged (validation).
    func place(_ ref: PatchRef, slot: Int, into input: Tensor, labels: inout [Int32]) throws {
        try load(ref, from: scenes, into: &patch)
        BatchAssembler.copy(patch, slot: slot, into: input, labels: &labels)
    }

    /// Puts `patch` into `slot` after a random symmetry (and jitter) drawn from `rng`;
    /// returns the symmetry drawn.
    static func placeAugmented<R: RandomNumberGenerator>(_ patch: inout Patch, slot: Int, into input: Tensor, labels: inout [Int32],
                                                         augmentation: Augmentation, rng: inout R) -> (quarterTurns: Int, flip: Bool) {
        let symmetry = augmentation.apply(to: &patch, using: &rng)
        BatchAssembler.copy(patch, slot: slot, into: input, labels: &labels)
        return symmetry
    }

    /// The normalised patch `ref`, from the cache or read from its scene (then cached while it fits).
    func loaded(_ ref: PatchRef) throws -> Patch {
        try load(ref, from: scenes, into: &patch)
        return patch
    }

    /// Why fewer reader threads read than asked, said once per run (`readerScenes`).
    private var shortfallSaid = false

    /// A notice, the first time only, when `got` reader threads read instead of `wanted`.
    func readerShortfall(wanted: Int, got: Int) -> String? {
        guard got < wanted, !shortfallSaid else { return nil }
        shortfallSaid = true
        let held = scenes.first { $0.reopened(budget: HandleBudget(limit: 1)) == nil }?.name ?? "?"
        return "training.reader_threads is \(wanted), but \(got) thread reads the patches: scenes such as '\(held)' (bands stacked "
            + "from several files, or labels warped or burnt from vectors) cannot be reopened per thread"
    }

    /// The scenes that each of up to `count` reader threads reads through, each thread's with
    /// handles of its own: fewer (at least one) when a scene cannot be reopened
    /// (`LabelledScene.reopened`; `readerShortfall` says so).
    func readerScenes(_ count: Int) -> [[LabelledScene]] {
        while extraReaders.count < count - 1 {
            let budget = HandleBudget()
            let copies = scenes.compactMap { $0.reopened(budget: budget) }
            guard copies.count == scenes.count else { break }
            extraReaders.append(copies)
        }
        return [scenes] + extraReaders.prefix(count - 1)
    }

    /// Puts the normalised patch `ref` into `patch`, from the cache or read through `scenes`
    /// (then cached while it fits); safe on several reader threads, each with its own `scenes`.
    func load(_ ref: PatchRef, from scenes: [LabelledScene], into patch: inout Patch) throws {
        if let cached = cacheLock.withLock({ cache.get(ref) }) {
            patch = cached
            return
        }
        try scenes[ref.scene].readPatch(ref.window, normalizer: normalizer, into: &patch)
        cacheLock.withLock { cache.put(ref, patch) }
    }

    static func copy(_ patch: Patch, slot: Int, into input: Tensor, labels: inout [Int32]) {
        let n = patch.window.pixelCount
        patch.image.withUnsafeBufferPointer { src in
            (input.data + slot * patch.channels * n).update(from: src.baseAddress!, count: patch.channels * n)
        }
        labels.withUnsafeMutableBufferPointer { dst in
            patch.target.withUnsafeBufferPointer { src in
                (dst.baseAddress! + slot * n).update(from: src.baseAddress!, count: n)
            }
        }
    }
}

/// Normalised patches kept in memory while they fit the budget (small training sets are
/// read from disk once; large ones are read window by window every epoch).
struct PatchCache {
    let limit: Int
    var store: [PatchRef: Patch] = [:]

    init(limitBytes: Int, patchBytes: Int) { limit = max(0, limitBytes / max(1, patchBytes)) }

    func get(_ ref: PatchRef) -> Patch? { store[ref] }

    mutating func put(_ ref: PatchRef, _ patch: Patch) {
        if store.count < limit { store[ref] = patch }
    }
}
