import Core
import Foundation
import GeoRaster

/// One scene to predict: a raster, or several band files stacked on one grid.
public struct SceneJob: Sendable, Hashable {
    public var name: String
    public var paths: [String]

    public init(paths: [String]) {
        self.paths = paths
        name = paths.first ?? ""
    }

    /// The scene's name for its outputs: the file name without extension, or for band files
    /// the common start of their names ("LC08_…_B2.TIF", "LC08_…_B3.TIF" → "LC08_…").
    public var stem: String {
        let stems = paths.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent }
        guard stems.count > 1 else { return stems.first ?? "scene" }
        var prefix = stems[0]
        for s in stems.dropFirst() { while !s.hasPrefix(prefix) { prefix.removeLast() } }
        while let last = prefix.last, "_-. ".contains(last) { prefix.removeLast() }
        return prefix.count >= 3 ? prefix : stems[0]
    }

    /// Expands command-line inputs: a path, a glob (`scenes/*.tif`), `@list.txt` (one input
    /// per line, # comments), and `b2.tif,b3.tif,b4.tif` (band files of one scene).
    public static func expand(_ arguments: [String]) throws -> [SceneJob] {
        var out: [SceneJob] = []
        for arg in arguments {
            if arg.hasPrefix("@") {
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
                out += try expand(lines)
            } else if arg.contains(",") {
                out.append(SceneJob(paths: arg.split(separator: ",").map(String.init)))
            } else if arg.contains("*") || arg.contains("?") || arg.contains("[") {
                let matches = glob(arg)
                if matches.isEmpty {
                    throw RasterError(.notFound, path: arg, problem: "no file matches this pattern", hint: "Check the pattern (quote it so the shell does not expand it)")
                }
                out += matches.map { SceneJob(paths: [$0]) }
            } else {
                out.append(SceneJob(paths: [arg]))
            }
        }
        return out
    }

    static func glob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }.sorted()
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
    public func run(jobs: [SceneJob], directory: String, progress: (SceneReport) -> Void = { _ in }) throws -> [SceneReport] {
        if !FileManager.default.fileExists(atPath: directory) { try AtomicFile.createDirectory(directory) }
        try AtomicFile.checkWritableDirectory(directory, for: directory)
        for stale in AtomicFile.removeStale(in: directory) {
            ScenePredictor.logger.notice("Removed \(stale): a partial output of a run that was killed")
        }
        var reports: [SceneReport] = []
        var usedNames: [String: Int] = [:]
        for job in jobs {
            var outputs = SceneOutputs.named(after: job, in: directory, options: options)
            // Two inputs with the same name (in different folders) get distinct outputs.
            let key = outputs.map
            usedNames[key, default: 0] += 1
            if usedNames[key]! > 1 {
                let n = usedNames[key]!
                outputs = SceneOutputs.named(stem: job.stem + "-\(n)", in: directory, options: options)
            }
            let report: SceneReport
            do { try StopSignal.check() } catch var stop as Interrupted {
                stop.kept += Self.written(reports)
                throw stop
            }
            if !options.overwrite && outputs.all.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
                report = SceneReport(job: job, outputs: outputs, status: .skipped, prediction: nil)
            } else {
                do {
                    let p = try predict(paths: job.paths, outputs: outputs)
                    report = SceneReport(job: job, outputs: outputs, status: .written, prediction: p)
                } catch var stop as Interrupted {
                    stop.kept += Self.written(reports)
                    throw stop
                } catch {
                    report = SceneReport(job: job, outputs: outputs, status: .failed(String(describing: error)), prediction: nil)
                }
            }
            progress(report)
            reports.append(report)
        }
        return reports
    }

    /// The maps written so far, for the line an interrupted run prints.
    static func written(_ reports: [SceneReport]) -> [String] {
        let maps = reports.filter { $0.status == .written }.map(\.outputs.map)
        return maps.isEmpty ? [] : ["\(maps.count) complete map(s) (\(maps.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ", ")))"]
    }
}
