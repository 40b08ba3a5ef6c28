import Foundation
import Testing
import TestSupport

/// A tile set of more chips than the process may hold files open: chips are opened when read,
/// a bounded number at a time, so none is lost to "too many open files".
@Suite struct ChipHandleLimitTests {
    @Test(.enabled(if: Tool.exists("bash")))
    func moreChipsThanOpenFilesTrain() throws {
        let dir = TemporaryDirectory("terraseg-many-chips")
        let root = dir.file("set")
        // 150 chips of two files each under a limit of 128 open files.
        for i in 0..<150 { try ChipSet.write(root: root, id: "c\(i)") }
        let args = ["train", "--tiles", root, "--tile-images", ChipSet.imageTemplate, "--tile-mask", ChipSet.maskTemplate,
                    "--classes", ChipSet.classes, "--widths", "8,16", "--patch-size", "32", "--batch-size", "8", "--epochs", "1",
                    "--cache-megabytes", "0", "--reader-threads", "2", "--output", dir.file("model")]
        let quoted = ([Tool.terraseg] + args).map { "'\($0)'" }.joined(separator: " ")
        let r = try Tool.run("bash", ["-c", "ulimit -n 128 && exec \(quoted)"])
        #expect(r.status == 0 && !r.crashed, "\(r.stderr)")
        #expect(!r.stderr.contains("skipped") && !r.stderr.contains("Too many open files"), "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.file("model") + "/model.json"))
    }
}
