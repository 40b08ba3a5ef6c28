import Foundation
import Testing
import TestSupport

/// End-to-end: bad TERRASEG_* values stop the real executable before any work, with the
/// message TerraSegEnvironment gives (needs no shared data: the refusal comes first).
@Suite struct EnvironmentCommandTests {
    @Test(arguments: [("TERRASEG_WINOGRAD", "maybe", "Use all, weights, or 0 (also off, none)"),
                      ("TERRASEG_THREADS", "0", "Use a whole number of threads from 1 to 4096")])
    func badValuesAreRefusedWithAMessage(_ variable: String, _ value: String, _ accepted: String) throws {
        let r = try Tool.run(Tool.terraseg, ["info", "no-such-scene.tif"], environment: [variable: value])
        #expect(!r.crashed)
        #expect(r.status != 0)
        #expect(r.stderr.contains("\(variable): '\(value)' is not a valid value. \(accepted)"), "\(r.stderr)")
        #expect(!r.stderr.contains("no-such-scene.tif"), "refused before the command ran")
    }
}
