import Core
import Distributed
import Foundation
import GeoRaster

/// One scene to predict: a raster, or several band files stacked on one grid.
public struct SceneJob: Sendable, Hashable {
    public var name: String
    public var paths: [String]
    /// The name its outputs take (`NAME=files` on the command line, `name:` in a pipeline);
    /// nil: derived from the files (`stem`).
    public var outputName: String?
    /// The STAC Item the scene was given as (its band files are `paths`), for the map's Item.
    public var item: StacItem?

    public init(paths: [String], outputName: String? = nil) {
        self.paths = paths
        self.outputName = outputName
        name = paths.first ?? ""
    }

    /// The scene of a STAC Item: the assets of `bands` (asset keys or band names) in order,
    /// named after the Item's id.
    public init(item: StacItem, bands: [String]?, outputName: String? = nil) throws {
        self.init(paths: try item.files(bands: bands), outputName: outputName ?? SceneJob.fileName(item.id))
        self.item = item
        name = item.file
    }

    /// A scene given as one path (`paths` of a pipeline): a STAC Item is read into its band
    /// files, anything else kept as it is.
    public static func scene(_ paths: [String], outputName: String?, stacBands: [String]?) throws -> SceneJob {
        guard paths.count == 1, StacItem.isItemPath(paths[0]) else { return SceneJob(paths: paths, outputName: outputName) }
        return try SceneJob(item: StacItem(file: paths[0]), bands: stacBands, outputName: outputName)
    }

    /// `id` as a file name: characters other than letters, digits, `_`, `-` and `.` become `_`.
    static func fileName(_ id: String) -> String {
        String(id.map { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) ? $0 : "_" })
    }

    /// The scene's name for its outputs: the file name without extension, or for band files
    /// the name parts (split at `_`, `-`, `.`) that all files share from the start — the
    /// product id for Landsat and Sentinel-2 band files ("LC08_…_T1_B2.TIF", "LC08_…_T1_B3.TIF"
    /// → "LC08_…_T1", not "LC08_…_T1_B").
    public var stem: String {
        if let outputName { return outputName }
        let stems = paths.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent }
        guard stems.count > 1 else { return stems.first ?? "scene" }
        let parts = stems.map(SceneJob.nameParts)
        var shared = parts[0]
        for p in parts.dropFirst() {
            var n = 0
            while n < min(shared.count, p.count) && shared[n] == p[n] { n += 1 }
            shared = Array(shared.prefix(n))
        }
        var prefix = shared.joined()
        while let last = prefix.last, "_-. ".contains(last) { prefix.removeLast() }
        return prefix.count >= 3 ? prefix : stems[0]
    }

    /// "LC08_L1TP_B2" → ["LC08_", "L1TP_", "B2"]: each part keeps its trailing separator.
    static func nameParts(_ name: String) -> [String] {
        var parts: [String] = [], current = ""
        for ch in name {
            current.append(ch)
            if "_-.".contains(ch) { parts.append(current); current = "" }
        }
        if !current.isEmpty { parts.append(current) }
        return parts
    }

    /// Expands command-line inputs: a path, a folder (its rasters), a glob (`scenes/*.tif`), `@list.txt` (one input
    /// per line, # comments), `b2.tif,b3.tif,b4.tif` (band files of one scene), and any of
    /// these but a list as `NAME=…` (the scene's outputs are named NAME_map.tif).
    /// A folder is one scene's band files when `foldersAreScenes` (the model names its bands),
    /// otherwise a folder of chips, one scene per raster. A `.json` file is a STAC Item whose
    /// assets of `stacBands` (asset keys or band names) are the scene's band files.
    public static func expand(_ arguments: [String], foldersAreScenes: Bool = false, stacBands: [String]? = nil) throws -> [SceneJob] {
        var out: [SceneJob] = []
        for arg in arguments {
            if let (name, rest) = namedInput(arg) {
                let jobs = try expand([rest], foldersAreScenes: foldersAreScenes, stacBands: stacBands)
                guard jobs.count == 1 else {
                    throw RasterError(.invalidArgument, path: arg, problem: "the name '\(name)' is given to \(jobs.count) scenes",
                                      hint: "Name one scene at a time: NAME=scene.tif or NAME=b2.tif,b3.tif")
                }
                var job = jobs[0]
                job.outputName = name
                out.append(job)
            } else if arg.hasPrefix("@") {
                let file = String(arg.dropFirst())
                guard let data = try? InputFile.read(file), let text = String(data: data, encoding: .utf8) else {
                    let why = InputFile.problem(file).map { ": \($0.problem)" } ?? ""
                    throw RasterError(.notFound, path: file, problem: "cannot read the list of inputs\(why)", hint: "Give a text file with one scene per line")
                }
                let base = (file as NSString).deletingLastPathComponent
                let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                    .filter { !$0.isEmpty && !$0.hasPrefix("#") }
                    .map { line in line.split(separator: ",").map { p in
                        let s = String(p).trimmingCharacters(in: .whitespaces)
                        return s.hasPrefix("/") || base.isEmpty ? s : (base as NSString).appendingPathComponent(s)
                    }.joined(separator: ",") }
                out += try expand(lines, foldersAreScenes: foldersAreScenes, stacBands: stacBands)
            } else if arg.contains(",") {
                out.append(SceneJob(paths: arg.split(separator: ",").map(String.init)))
            } else if arg.contains("*") || arg.contains("?") || arg.contains("[") {
                let matches = glob(arg)
                if matches.isEmpty {
                    throw RasterError(.notFound, path: arg, problem: "no file matches this pattern", hint: "Check the pattern (quote it so the shell does not expand it)")
                }
                out += try matches.map { try scene([$0], outputName: nil, stacBands: stacBands) }
            } else if !foldersAreScenes && isFolder(arg) {
                out += try folder(arg).map { SceneJob(paths: [$0]) }
            } else {
                out.append(try scene([arg], outputName: nil, stacBands: stacBands))
            }
        }
        return out
    }

    /// Extensions of the rasters a folder of chips is read for.
    public static let chipExtensions: Set<String> = ["tif", "tiff", "png", "jpg", "jpeg", "jp2", "img", "vrt"]

    static func isFolder(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// The chips of a folder: its files with a raster extension (`chipExtensions`), sorted;
    /// none is an error naming the folder.
    static func folder(_ dir: String) throws -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        let chips = names.filter { !$0.hasPrefix(".") && chipExtensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
        guard !chips.isEmpty else {
            throw RasterError(.notFound, path: dir, problem: "the folder holds no raster (\(chipExtensions.sorted().joined(separator: ", ")))",
                              hint: "Give the folder of image chips, or a glob such as 'chips/*.tif'")
        }
        return chips.map { (dir as NSString).appendingPathComponent($0) }
    }

    /// "NAME=files" → (NAME, files) when NAME is a plain file name and the whole text is not
    /// an existing file.
    static func namedInput(_ arg: String) -> (String, String)? {
        guard let eq = arg.firstIndex(of: "="), !FileManager.default.fileExists(atPath: arg) else { return nil }
        let name = String(arg[..<eq]), rest = String(arg[arg.index(after: eq)...])
        guard !name.isEmpty, !rest.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "_-.".contains($0) }) else { return nil }
        return (name, rest)
    }

    static func glob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }.sorted()
    }
}

/// Progress of a batch: "[k/N] written <map> (ETA 1m20s)" per scene, and the closing count.
public struct BatchProgress {
    public let total: Int
    public private(set) var done = 0
    public private(set) var skipped = 0
    public private(set) var failed = 0
    let started: Date

    public init(total: Int, started: Date = Date()) {
        self.total = total
        self.started = started
    }

    /// Records `report` and returns its line.
    public mutating func line(for report: SceneReport, now: Date = Date()) -> String {
        let text: String
        switch report.status {
        case .written: done += 1; text = "written  \(report.outputs.map)"
        case .skipped: skipped += 1; text = "skipped  \(report.outputs.map) (exists; --overwrite recomputes)"
        case .failed(let m): failed += 1; text = "FAILED   \(report.job.name): \(m)"
        }
        let k = done + skipped + failed
        // Skipped scenes cost nothing, so the ETA comes from the scenes that ran.
        let ran = done + failed
        let eta = ran > 0 && k < total ? " (ETA \(BatchProgress.duration(now.timeIntervalSince(started) / Double(ran) * Double(total - k))))" : ""
        return "[\(k)/\(total)] \(text)\(eta)"
    }

    /// "12 scene(s): 9 done, 2 skipped, 1 failed".
    public var summary: String { "\(done + skipped + failed) scene(s): \(done) done, \(skipped) skipped, \(failed) failed" }

    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t % 3600 / 60) : t >= 60 ? String(format: "%dm%02ds", t / 60, t % 60) : "\(t)s"
    }
}

/// What happened to one scene of a batch.
public struct SceneReport: Sendable {
    public enum Status: Sendable, Equatable {
        case written
        case skipped
        case failed(String)
    }

    public var job: SceneJob
    public var outputs: SceneOutputs
    public var status: Status
    public var prediction: ScenePrediction?
}

extension ScenePredictor {
    /// Predicts every job into `directory`. Scenes whose outputs all exist are skipped
    /// unless `options.overwrite`; a failing scene is reported and the rest still run.
    /// Across the ranks of `communicator`, scenes go to whichever rank is free (`SceneDispatch`)
    /// and rank 0 returns every report in job order (it alone calls `progress`; for another
    /// rank's scene when the batch ends); the other ranks return theirs.
    public func run(jobs: [SceneJob], directory: String, communicator: Communicator = .single,
                    progress: (SceneReport) -> Void = { _ in }) throws -> [SceneReport] {
        if communicator.isRoot {
            if !FileManager.default.fileExists(atPath: directory) { try AtomicFile.createDirectory(directory) }
            try AtomicFile.checkWritableDirectory(directory, for: directory)
            for stale in AtomicFile.removeStale(in: directory) {
                ScenePredictor.logger.notice("Removed \(stale): a partial output of a run that was killed")
            }
        }
        // The other ranks start once rank 0 has cleared leftovers (which it cannot tell from their partial outputs).
        try communicator.barrier()
        let outputs = Self.outputs(of: jobs, in: directory, options: options)
        if SceneBands.applies(jobs: jobs.count, ranks: communicator.size, blend: options.blend) {
            return try predictSplit(jobs[0], outputs: outputs[0], communicator: communicator, progress: progress)
        }
        if communicator.isRoot && jobs.count < communicator.size {
            let why = jobs.count == 1 ? " (--blend hann blends windows across the bands a split would make)" : ""
            ScenePredictor.logger.notice("\(jobs.count) scene(s) on \(communicator.size) ranks: each scene is predicted by one rank\(why)")
        }
        let dispatch = SceneDispatch(count: jobs.count, communicator: communicator)
        var reports: [(Int, SceneReport)] = []
        while let index = try dispatch.next() {
            do {
                try StopSignal.check()
            } catch var stop as Interrupted {
                stop.kept += Self.written(reports.map(\.1))
                communicator.abandon()  // the other ranks may wait for this one's requests or reports
                throw stop
            }
            let report: SceneReport
            do { report = try predict(jobs[index], outputs: outputs[index], kept: reports.map(\.1)) } catch {
                communicator.abandon()
                throw error
            }
            if communicator.isRoot { progress(report) }
            reports.append((index, report))
        }
        try dispatch.finish()
        guard communicator.isDistributed else { return reports.map(\.1) }
        return try Self.collect(reports, jobs: jobs, outputs: outputs, communicator: communicator, progress: progress)
    }

    /// The outputs of every job, in order: two inputs with the same name (in different folders) get distinct ones.
    static func outputs(of jobs: [SceneJob], in directory: String, options: PredictionOptions) -> [SceneOutputs] {
        var usedNames: [String: Int] = [:]
        return jobs.map { job in
            let outputs = SceneOutputs.named(after: job, in: directory, options: options)
            usedNames[outputs.map, default: 0] += 1
            let n = usedNames[outputs.map]!
            return n > 1 ? SceneOutputs.named(stem: job.stem + "-\(n)", in: directory, options: options) : outputs
        }
    }

    /// One scene: skipped when its outputs exist, its failure reported (an interruption is rethrown with what was `kept`).
    func predict(_ job: SceneJob, outputs: SceneOutputs, kept: [SceneReport]) throws -> SceneReport {
        if !options.overwrite && outputs.all.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
            // The Item of a kept map, when an earlier version wrote none.
            if !FileManager.default.fileExists(atPath: StacItemWriter.path(forMap: outputs.map)) {
                do { try stacWriter.write(outputs: outputs, job: job) } catch {
                    ScenePredictor.logger.warning("\(outputs.map) is kept but its STAC Item could not be written: \(error)")
                }
            }
            return SceneReport(job: job, outputs: outputs, status: .skipped, prediction: nil)
        }
        do {
            let p = try predict(paths: job.paths, outputs: outputs)
            try stacWriter.write(outputs: outputs, job: job)  // last: it lists the map's siblings on disk
            return SceneReport(job: job, outputs: outputs, status: .written, prediction: p)
        } catch var stop as Interrupted {
            stop.kept += Self.written(kept)
            throw stop
        } catch {
            return SceneReport(job: job, outputs: outputs, status: .failed(String(describing: error)), prediction: nil)
        }
    }

    /// Rank 0 gathers every rank's reports and returns all of them in job order, calling
    /// `progress` for those of the other ranks; another rank returns its own.
    static func collect(_ mine: [(Int, SceneReport)], jobs: [SceneJob], outputs: [SceneOutputs], communicator: Communicator,
                        progress: (SceneReport) -> Void) throws -> [SceneReport] {
        let encoded = try JSONEncoder().encode(mine.map { RemoteReport(index: $0.0, $0.1) })
        let all = try communicator.gather([UInt8](encoded))
        guard communicator.isRoot else { return mine.map(\.1) }
        var byIndex = Dictionary(uniqueKeysWithValues: mine)
        for bytes in all.dropFirst() {
            for r in try JSONDecoder().decode([RemoteReport].self, from: Data(bytes)) {
                let report = r.report(job: jobs[r.index], outputs: outputs[r.index])
                progress(report)
                byIndex[r.index] = report
            }
        }
        return byIndex.keys.sorted().map { byIndex[$0]! }
    }

    /// The writer of each map's STAC Item.
    var stacWriter: StacItemWriter {
        StacItemWriter(classMap: inputs.classMap,
                       provenance: provenance ?? MapProvenance(bundle: (model as? NetworkSceneModel)?.bundle, directory: nil, terrasegVersion: "unknown"),
                       cog: options.creation.cog)
    }

    /// The maps written so far, for the line an interrupted run prints.
    static func written(_ reports: [SceneReport]) -> [String] {
        let maps = reports.filter { $0.status == .written }.map(\.outputs.map)
        return maps.isEmpty ? [] : ["\(maps.count) complete map(s) (\(maps.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ", ")))"]
    }
}
