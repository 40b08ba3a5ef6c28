import Core

/// A raster described by its `info` but opened only when read, and closed again when its
/// `HandleBudget` needs room: a tile set of thousands of chips holds a bounded number of files
/// open (the process's file-descriptor limit is about 1,024), not one or two per chip.
/// Like a `Dataset`, it belongs to one thread at a time; another thread reads through
/// `reopened(budget:)`, which opens handles of its own.
public final class OnDemandRaster: RasterSource {
    public let info: RasterInfo
    private let open: () throws -> any RasterSource
    private let budget: HandleBudget
    fileprivate var handle: (any RasterSource)?
    fileprivate var lastUse = 0

    /// Wraps `opened` (already open, so its `info` is known), reopened later by `open`.
    public init(opened: any RasterSource, budget: HandleBudget, open: @escaping () throws -> any RasterSource) {
        info = opened.info
        self.open = open
        self.budget = budget
        handle = opened
        budget.use(self)
    }

    /// The raster `info` describes, on `budget`, opened by `open` when first read.
    public init(info: RasterInfo, budget: HandleBudget, open: @escaping () throws -> any RasterSource) {
        self.info = info
        self.open = open
        self.budget = budget
    }

    deinit { budget.forget(self) }

    /// The same raster on another budget (another thread's), opened when first read.
    public func reopened(budget: HandleBudget) -> OnDemandRaster {
        OnDemandRaster(info: info, budget: budget, open: open)
    }

    /// Whether a handle is open now.
    public var isOpen: Bool { handle != nil }

    public func read(window: Window, bands: [Int]?, into block: inout RasterBlock) throws {
        let source = try handle ?? open()
        handle = source
        budget.use(self)
        try source.read(window: window, bands: bands, into: &block)
    }
}

/// How many `OnDemandRaster`s of one thread keep their handles open: the least recently read
/// one is closed when another opens past `limit`.
public final class HandleBudget {
    /// Rasters open at once per reading thread (a raster of band files holds one per file).
    public static let defaultLimit = 32
    public let limit: Int
    private struct Entry { weak var raster: OnDemandRaster? }
    private var open: [ObjectIdentifier: Entry] = [:]
    private var clock = 0

    public init(limit: Int = HandleBudget.defaultLimit) { self.limit = max(1, limit) }

    /// Rasters whose handle is open now.
    public var openCount: Int { open.count }

    fileprivate func use(_ raster: OnDemandRaster) {
        clock += 1
        raster.lastUse = clock
        open[ObjectIdentifier(raster)] = Entry(raster: raster)
        guard open.count > limit else { return }
        // The least recently read (O(limit), paid only when a file is opened).
        let oldest = open.min { ($0.value.raster?.lastUse ?? 0) < ($1.value.raster?.lastUse ?? 0) }!
        oldest.value.raster?.handle = nil
        open[oldest.key] = nil
    }

    fileprivate func forget(_ raster: OnDemandRaster) { open[ObjectIdentifier(raster)] = nil }
}
