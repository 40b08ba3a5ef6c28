import Foundation
import Testing
import TestSupport

/// `mpirun -np 2 terraseg run` on a tiny synthetic pipeline: training is data-parallel, the one
/// scene is predicted in bands, rank 0 alone logs, writes the fingerprints, evaluates and reports.
@Suite(.serialized, .enabled(if: MPILaunch.available, "needs mpirun (apt-get install openmpi-bin)"))
struct DistributedPipelineTests {
    static func count(_ text: String, _ part: String) -> Int { text.components(separatedBy: part).count - 1 }

    @Test func runOnTwoRanksTrainsMapsAndReportsOnceAndSkipsWhatIsUpToDate() throws {
        let dir = TemporaryDirectory("terraseg-mpi")
        try SyntheticPipeline.write(in: dir.path, width: 96, height: 120, yaml: SyntheticPipeline.yaml(epochs: 1, prediction: "tile: 48"))
        let r = try MPILaunch.run(ranks: 2, Tool.terraseg, ["run", dir.file("job.yaml")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Self.count(r.stdout, "Land-cover map:") == 1 && Self.count(r.stdout, "Validation mIoU") == 1, "\(r.stdout)")
        #expect(Self.count(r.stderr, "train: synthetic") == 1, "rank 0 alone logs: \(r.stderr)")
        #expect(Self.count(r.stderr, "Training U-Net") == 1, "\(r.stderr)")
        #expect(Self.count(r.stderr, "] written  ") == 1, "\(r.stderr)")
        #expect(r.stderr.contains("One scene on 2 ranks: each predicts a band of rows, rank 0 writes the map"), "\(r.stderr)")
        let run = dir.file("run")
        for f in ["model/model.json", "maps/scene_map.tif", "evaluation.json", "report.html", "stages.json"] {
            #expect(FileManager.default.fileExists(atPath: run + "/" + f), "\(f)")
        }
        let again = try MPILaunch.run(ranks: 2, Tool.terraseg, ["run", dir.file("job.yaml")])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(Self.count(again.stdout, "Up to date, skipped: train, predict") == 1, "\(again.stdout)")
        // The fingerprints rank 0 wrote are the ones one process reads: a plain run skips too.
        let single = try Tool.run(Tool.terraseg, ["run", dir.file("job.yaml")], environment: ["TERRASEG_THREADS": "1"])
        #expect(single.stdout.contains("Up to date, skipped: train, predict"), "\(single.stdout) \(single.stderr)")
    }
}
