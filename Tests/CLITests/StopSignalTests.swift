import Foundation
import GeoRaster
import Testing
import TestSupport

/// SIGINT and SIGTERM sent to the real executable while it predicts (alone, and as the
/// predict stage of `terraseg run`, after training): it stops at the next window, discards the
/// scene it was writing, says in one line what it kept and exits 130 or 143.
@Suite(.serialized) struct StopSignalTests {
    @Test func predictStopsOnSIGINTLeavingNoPartialMap() throws {
        let dir = TemporaryDirectory("terraseg-stop")
        let small = try SyntheticScene(in: dir.path, name: "small", width: 40, height: 40, bands: 4)
        // Streamed (the default) in strips of about 20 rows (--memory 64M), each a point to stop at.
        let big = try SyntheticScene(in: dir.path, name: "big", width: 1000, height: 240, bands: 4, seed: 3)
        try TinyModel.seeded(small, output: dir.file("model"))
        let out = dir.file("maps")
        let r = try SignalledRun.run(Tool.terraseg, ["predict", "--model", dir.file("model"), "--input", small.image, big.image, big.image,
                                                     "--output", out, "--memory", "64M"],
                                     signal: SIGINT, after: "written  \(out)/small_map.tif")
        #expect(r.status == 130 && !r.crashed, "status \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("Stopped by SIGINT: kept 1 complete map(s) (small_map.tif)"), "\(r.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: out)
        #expect(Set(files) == ["small_map.tif", "small_map.tif.aux.xml", "small_map.qml", "small_map.stac.json"],
                "only the complete map (its .aux.xml, style and STAC Item) stays, no partial file: \(files)")
        #expect(try Dataset(path: out + "/small_map.tif").info.width == 40)
    }

    /// A run killed outright (SIGKILL, a second Ctrl-C) leaves its hidden temporary map; the
    /// next prediction into the folder removes it once its process has ended, and says so.
    @Test func aKilledRunsPartialMapIsRemovedNextTime() throws {
        let dir = TemporaryDirectory("terraseg-stop")
        let small = try SyntheticScene(in: dir.path, name: "small", width: 40, height: 40, bands: 4)
        try TinyModel.seeded(small, output: dir.file("model"))
        let out = dir.file("maps")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let killed = Process()
        killed.executableURL = URL(fileURLWithPath: "/bin/true")
        try killed.run()
        killed.waitUntilExit()
        let partial = out + "/.small_map.tif.partial-00112233aabbccdd-\(killed.processIdentifier).tif"
        try Data(count: 100).write(to: URL(fileURLWithPath: partial))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: partial)
        let r = try Tool.run(Tool.terraseg, ["predict", "--model", dir.file("model"), "--input", small.image, "--output", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("Removed \(partial): a partial output of a run that was killed"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: partial))
    }

    @Test func runStopsOnSIGTERMDuringPrediction() throws {
        let dir = TemporaryDirectory("terraseg-stop")
        _ = try SyntheticScene(in: dir.path, width: 64, height: 64, bands: 3)
        // Big enough that predicting it outlasts the 20 ms between looks at standard error on a
        // loaded machine (200² streamed in about 50 ms and was sometimes done before the signal).
        let big = try SyntheticScene(in: dir.path, name: "big", width: 800, height: 800, bands: 3, seed: 3)
        try """
            name: stop
            output: run
            data:
              scenes: [{image: scene.tif, labels: scene_labels.tif}]
              classes: [{value: 1, name: water}, {value: 2, name: forest}, {value: 3, name: bare}]
              ignore: [0]
            tiling: {patch: 32, stride: 32, split: {method: rows, train_fraction: 0.5}}
            model: {widths: [8, 16], bottleneck_width: 16, bottleneck_dilations: [1]}
            training: {epochs: 1, batch_size: 4}
            prediction: {tile: 16, batch_size: 1, scenes: [[\(big.image)]]}
            evaluation: {enabled: false}
            """.write(toFile: dir.file("job.yaml"), atomically: true, encoding: .utf8)
        let r = try SignalledRun.run(Tool.terraseg, ["run", dir.file("job.yaml")], signal: SIGTERM, after: "predict:")
        #expect(r.status == 143 && !r.crashed, "status \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("Stopped by SIGTERM: kept the model bundle"), "\(r.stderr)")
        let run = dir.file("run")
        #expect(FileManager.default.fileExists(atPath: run + "/model/model.json"))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: run + "/maps")) ?? []).isEmpty, "no map, not even a partial one")
        #expect(!FileManager.default.fileExists(atPath: run + "/report.html"))
        let stamps = try String(contentsOfFile: run + "/stages.json", encoding: .utf8)
        #expect(!stamps.contains("predict"), "an interrupted stage is not marked done: \(stamps)")
    }
}

/// Runs a program, sends it `signal` once its standard error shows `marker`, and waits.
enum SignalledRun {
    static func run(_ executable: String, _ arguments: [String], signal: Int32, after marker: String,
                    timeout: TimeInterval = 300) throws -> (status: Int32, stderr: String, crashed: Bool) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        let text = LockedText()
        let reader = Thread {
            while true {
                let d = err.fileHandleForReading.availableData
                if d.isEmpty { break }
                text.append(d)
            }
        }
        try p.run()
        reader.start()
        let start = Date()
        while p.isRunning && !text.value.contains(marker) && Date().timeIntervalSince(start) < timeout { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, signal) }
        while p.isRunning && Date().timeIntervalSince(start) < timeout { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        while !reader.isFinished && Date().timeIntervalSince(start) < timeout + 10 { usleep(10_000) }
        return (p.terminationStatus, text.value, p.terminationReason == .uncaughtSignal)
    }

    final class LockedText: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        func append(_ d: Data) { lock.lock(); data += d; lock.unlock() }
        var value: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
    }
}
