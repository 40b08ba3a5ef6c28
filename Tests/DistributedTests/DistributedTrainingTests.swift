import Foundation
import ModelIO
import Testing
import TestSupport
import Training

/// `mpirun -np 2 terraseg train` on one machine against one process with the same global batch.
@Suite(.serialized, .enabled(if: MPILaunch.available, "needs mpirun (apt-get install openmpi-bin)"))
struct DistributedTrainingTests {
    static func train(_ scene: SyntheticScene, output: String, ranks: Int?, extra: [String] = []) throws -> Tool.Result {
        let args = ["train", "--image", scene.image, "--labels", scene.labels, "--classes", SyntheticScene.classList,
                    "--ignore", "0", "--widths", "8,16", "--patch-size", "32", "--batch-size", "4", "--epochs", "2",
                    "--split", "rows:0.7", "--output", output] + extra
        guard let ranks else { return try Tool.run(Tool.terraseg, args, environment: ["TERRASEG_THREADS": "1"]) }
        return try MPILaunch.run(ranks: ranks, Tool.terraseg, args)
    }

    static func weights(_ bundle: String) throws -> [String: [Float]] {
        try SafeTensors.read(bundle + "/model.safetensors").tensors.mapValues(\.values)
    }

    /// Largest |a − b| over the tensors whose name contains `running` or not, and its tensor.
    static func largestDifference(_ a: [String: [Float]], _ b: [String: [Float]], running: Bool) -> (Float, String) {
        var worst = 0 as Float, worstName = ""
        for (name, values) in a where name.contains("running") == running {
            for (x, y) in zip(values, b[name] ?? []) where abs(x - y) > worst { (worst, worstName) = (abs(x - y), name) }
        }
        return (worst, worstName)
    }

    /// Batch norm is per rank (as PyTorch DDP's default): each rank normalises its 2 patches by
    /// their own statistics, where one process normalises all 4 together, so the weights agree
    /// only roughly (measured: max |Δw| 0.019 of |w| ≤ 1.01, running means 0.096, after 2 epochs;
    /// docs/cluster.md). Everything else is the single-process run: the same patches in the same
    /// order and augmentation, gradients averaged over the ranks.
    @Test func twoRanksTrainLikeOneProcessWithTheSameGlobalBatch() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path)
        let one = try Self.train(scene, output: dir.file("one"), ranks: nil)
        #expect(one.status == 0, "\(one.stderr)")
        let two = try Self.train(scene, output: dir.file("two"), ranks: 2)
        #expect(two.status == 0, "\(two.stderr)")
        // Rank 0 alone reports and writes.
        #expect(two.stderr.components(separatedBy: "Training U-Net").count == 2, "\(two.stderr)")
        #expect(two.stdout.components(separatedBy: "Model bundle:").count == 2, "\(two.stdout)")
        #expect(Trainer.readHistory(dir.file("two.training/metrics.jsonl")).count == 2)
        let a = try Self.weights(dir.file("one")), b = try Self.weights(dir.file("two"))
        #expect(a.keys.sorted() == b.keys.sorted())
        let (weights, name) = Self.largestDifference(a, b, running: false)
        let (running, runningName) = Self.largestDifference(a, b, running: true)
        #expect(weights < 0.05, "max |Δw| = \(weights) in \(name)")
        #expect(running < 0.25, "max |Δ| = \(running) in \(runningName)")
    }

    /// Synchronised batch norm and a per-pixel loss (cross-entropy): 2 ranks give one process's
    /// weights, running statistics included (measured: max |Δ| 3e-8 with SGD). Adam turns the
    /// rounding of the two summation orders into |Δw| ≈ 1e-4 after these 12 steps, as it
    /// normalises near-zero gradients, so the comparison uses SGD.
    @Test func twoRanksWithSynchronisedBatchNormEqualOneProcess() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path)
        let extra = ["--sync-batchnorm", "--loss", "cross_entropy", "--optimizer", "sgd"]
        let one = try Self.train(scene, output: dir.file("one"), ranks: nil, extra: extra)
        #expect(one.status == 0, "\(one.stderr)")
        let two = try Self.train(scene, output: dir.file("two"), ranks: 2, extra: extra)
        #expect(two.status == 0, "\(two.stderr)")
        let a = try Self.weights(dir.file("one")), b = try Self.weights(dir.file("two"))
        let (weights, name) = Self.largestDifference(a, b, running: false)
        let (running, runningName) = Self.largestDifference(a, b, running: true)
        #expect(weights < 1e-5, "max |Δw| = \(weights) in \(name)")
        #expect(running < 1e-5, "max |Δ| = \(running) in \(runningName)")
    }

    /// Gradients reduce-scattered in buckets of 4 KiB while the backward pass runs (many buckets
    /// for this U-Net, synchronised batch norm's all-reduces in between; the optimiser step and
    /// all-gather sharded by bucket) give the bundle of one bucket after it (bucket size 0) bit
    /// for bit: every value is the same sum and the same update.
    @Test func bucketedAllReduceDuringBackwardEqualsOneAfterIt() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path)
        for (name, kb, extra) in [("blocking", "0", []), ("buckets", "4", []), ("blocking-sync", "0", ["--sync-batchnorm"]),
                                  ("buckets-sync", "4", ["--sync-batchnorm"])] {
            let args = ["--allow-run-as-root", "--oversubscribe", "-np", "2", "-x", "TERRASEG_THREADS=1", "-x", "TERRASEG_ALLREDUCE_BUCKET_KB=" + kb,
                        Tool.terraseg, "train", "--image", scene.image, "--labels", scene.labels, "--classes", SyntheticScene.classList,
                        "--ignore", "0", "--widths", "8,16", "--patch-size", "32", "--batch-size", "4", "--epochs", "1",
                        "--split", "rows:0.7", "--output", dir.file(name)] + extra
            let r = try Tool.run("mpirun", args)
            #expect(r.status == 0, "\(name): \(r.stderr)")
        }
        #expect(try Self.weights(dir.file("blocking")) == Self.weights(dir.file("buckets")))
        #expect(try Self.weights(dir.file("blocking-sync")) == Self.weights(dir.file("buckets-sync")))
    }

    /// Three ranks (uneven blocks: each bucket's values split 3 ways, blocks cutting through
    /// parameters, so every message of the pairwise reduce-scatter and all-gather is a piece of
    /// a gradient or weight, several per peer): buckets of 1 KiB during the backward pass give
    /// the bundle of one bucket after it bit for bit, synchronised batch norm (its all-reduces
    /// interleaved with the buckets' messages) included.
    @Test func threeRanksInSmallBucketsEqualOneBucket() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path)
        for (name, kb) in [("one-bucket", "0"), ("buckets", "1")] {
            let args = ["--allow-run-as-root", "--oversubscribe", "-np", "3", "-x", "TERRASEG_THREADS=1", "-x", "TERRASEG_ALLREDUCE_BUCKET_KB=" + kb,
                        Tool.terraseg, "train", "--image", scene.image, "--labels", scene.labels, "--classes", SyntheticScene.classList,
                        "--ignore", "0", "--widths", "8,16", "--patch-size", "32", "--batch-size", "6", "--epochs", "1",
                        "--split", "rows:0.7", "--sync-batchnorm", "--output", dir.file(name)]
            let r = try Tool.run("mpirun", args)
            #expect(r.status == 0, "\(name): \(r.stderr)")
        }
        #expect(try Self.weights(dir.file("one-bucket")) == Self.weights(dir.file("buckets")))
    }

    /// The distributed code path with one rank (mpirun -np 1: MPI initialised, every collective
    /// over one process) gives the plain run's bundle bit for bit.
    @Test func oneRankUnderMPIEqualsThePlainRunExactly() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path)
        let plain = try Self.train(scene, output: dir.file("plain"), ranks: nil)
        #expect(plain.status == 0, "\(plain.stderr)")
        let mpi = try Self.train(scene, output: dir.file("mpi"), ranks: 1)
        #expect(mpi.status == 0, "\(mpi.stderr)")
        #expect(try Self.weights(dir.file("plain")) == Self.weights(dir.file("mpi")))
    }

    /// A rank killed mid-run (SIGKILL: no chance to say anything) ends the others within a
    /// bounded time with a non-zero status (mpirun aborts the job), and the run resumes from its
    /// last checkpoint, here on one process instead of two.
    @Test func aKilledRankEndsTheRunAndTheRunResumesOnAnotherNumberOfRanks() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path)
        let output = dir.file("m")
        let args = ["--allow-run-as-root", "--oversubscribe", "-np", "2", "-x", "TERRASEG_THREADS=1", Tool.terraseg, "train",
                    "--image", scene.image, "--labels", scene.labels, "--classes", SyntheticScene.classList, "--ignore", "0",
                    "--widths", "8,16", "--patch-size", "32", "--batch-size", "2", "--epochs", "12", "--split", "rows:0.7",
                    "--output", output]
        let mpirun = Process()
        mpirun.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        mpirun.arguments = ["mpirun"] + args
        mpirun.standardOutput = FileHandle.nullDevice
        mpirun.standardError = FileHandle.nullDevice
        try mpirun.run()
        let checkpoint = output + ".training/last.ckpt"
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: checkpoint) && Date() < deadline && mpirun.isRunning { usleep(50_000) }
        try #require(FileManager.default.fileExists(atPath: checkpoint), "no checkpoint written")
        let rank1 = try #require(Self.processes(withEnvironment: "OMPI_COMM_WORLD_RANK=1", parent: mpirun.processIdentifier).first,
                                 "rank 1 not found")
        kill(rank1, SIGKILL)
        #expect(Self.waitForJob(mpirun, seconds: 30), "the other rank did not stop within 30 s")
        #expect(mpirun.terminationStatus != 0)
        let resumed = try Self.train(scene, output: output, ranks: nil, extra: ["--resume", "--batch-size", "2", "--epochs", "12"])
        #expect(resumed.stderr.contains("Resuming at epoch"), "\(resumed.stderr)")
    }

    /// SIGTERM to one rank only: the ranks agree to stop at the same batch, rank 0 saves one
    /// checkpoint and says so, every rank exits 143, and `--resume` continues to the weights of
    /// an uninterrupted run bit for bit: each rank updates only its block of the optimiser's
    /// state, so the checkpoint must gather the whole state first.
    @Test func sigtermToOneRankStopsAllWithOneCheckpoint() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path)
        let output = dir.file("m")
        let mpirun = Process()
        mpirun.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        mpirun.arguments = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", "-x", "TERRASEG_THREADS=1", Tool.terraseg, "train",
                            "--image", scene.image, "--labels", scene.labels, "--classes", SyntheticScene.classList, "--ignore", "0",
                            "--widths", "8,16", "--patch-size", "32", "--batch-size", "2", "--epochs", "12", "--split", "rows:0.7",
                            "--output", output]
        let err = Pipe()
        mpirun.standardOutput = FileHandle.nullDevice
        mpirun.standardError = err
        try mpirun.run()
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: output + ".training/metrics.jsonl") && Date() < deadline && mpirun.isRunning { usleep(50_000) }
        let rank1 = try #require(Self.processes(withEnvironment: "OMPI_COMM_WORLD_RANK=1", parent: mpirun.processIdentifier).first,
                                 "rank 1 not found")
        kill(rank1, SIGTERM)
        let ended = Self.waitForJob(mpirun, seconds: 30)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(ended, "the ranks did not stop within 30 s: \(stderr)")
        #expect(mpirun.terminationStatus == 143, "\(stderr)")
        #expect(stderr.components(separatedBy: "checkpoint saved. Resume with --resume").count == 2, "\(stderr)")
        let resumed = try Self.train(scene, output: output, ranks: 2, extra: ["--resume", "--batch-size", "2", "--epochs", "12"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("Resuming at epoch"), "\(resumed.stderr)")
        let whole = try Self.train(scene, output: dir.file("whole"), ranks: 2, extra: ["--batch-size", "2", "--epochs", "12"])
        #expect(whole.status == 0, "\(whole.stderr)")
        #expect(try Self.weights(output) == Self.weights(dir.file("whole")), "the resumed run ends with the uninterrupted run's weights")
    }

    /// The children of `parent` (an mpirun) whose environment holds `entry` (e.g. OMPI_COMM_WORLD_RANK=1).
    static func processes(withEnvironment entry: String, parent: pid_t) -> [pid_t] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) } ?? []
        return pids.filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")"),
                  Int32(stat[stat.index(close, offsetBy: 2)...].split(separator: " ")[1]) == parent,
                  let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
            return data.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == entry }
        }
    }

    /// Waits up to `seconds` for mpirun to end; past that, kills it and its ranks (so a hang fails
    /// the test instead of blocking it). Returns whether it ended by itself.
    static func waitForJob(_ mpirun: Process, seconds: Double) -> Bool {
        let start = Date()
        while mpirun.isRunning && Date().timeIntervalSince(start) < seconds { usleep(50_000) }
        guard mpirun.isRunning else { return true }
        for rank in 0..<16 {
            for pid in processes(withEnvironment: "OMPI_COMM_WORLD_RANK=\(rank)", parent: mpirun.processIdentifier) { kill(pid, SIGKILL) }
        }
        kill(mpirun.processIdentifier, SIGKILL)
        mpirun.waitUntilExit()
        return false
    }

    @Test func aBatchThatDoesNotDivideAmongTheRanksIsRefused() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path)
        let r = try Self.train(scene, output: dir.file("m"), ranks: 2, extra: ["--batch-size", "3"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("the batch size 3 does not divide among 2 ranks"), "\(r.stderr)")
        #expect(r.stderr.contains("Use a batch size that is a multiple of 2"), "\(r.stderr)")
    }
}

/// How the tests start several processes: Open MPI's mpirun, as root in containers too.
enum MPILaunch {
    static var available: Bool { Tool.exists("mpirun") }

    static func run(ranks: Int, _ executable: String, _ arguments: [String]) throws -> Tool.Result {
        try Tool.run("mpirun", ["--allow-run-as-root", "--oversubscribe", "-np", String(ranks), "-x", "TERRASEG_THREADS=1", executable] + arguments)
    }
}
