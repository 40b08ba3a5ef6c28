import Core
import Testing

@Suite struct EnvironmentTests {
    @Test func unsetAndEmptyVariablesGiveTheDefaults() throws {
        #expect(try TerraSegEnvironment([:]) == TerraSegEnvironment())
        let empty = try TerraSegEnvironment(["TERRASEG_THREADS": "", "TERRASEG_WINOGRAD": "", "TERRASEG_TRACE_BATCHES": ""])
        #expect(empty == TerraSegEnvironment(threads: nil, winograd: .all, traceBatches: nil))
    }

    @Test func acceptedValuesParse() throws {
        #expect(try TerraSegEnvironment(["TERRASEG_THREADS": "3"]).threads == 3)
        #expect(try TerraSegEnvironment(["TERRASEG_THREADS": "4096"]).threads == 4096)
        #expect(try TerraSegEnvironment(["TERRASEG_TRACE_BATCHES": "/tmp/batches.jsonl"]).traceBatches == "/tmp/batches.jsonl")
        let spellings: [String: WinogradUse] = ["all": .all, "ALL": .all, "weights": .backwardWeights,
                                                "0": .off, "off": .off, "none": .off, "Off": .off]
        for (text, use) in spellings {
            #expect(try TerraSegEnvironment(["TERRASEG_WINOGRAD": text]).winograd == use, "\(text)")
        }
    }

    @Test(arguments: ["0", "-2", "two", "1.5", "4097", "99999999999999999999"])
    func badThreadCountsAreRefused(_ text: String) {
        let error = #expect(throws: TerraSegError.self) { try TerraSegEnvironment(["TERRASEG_THREADS": text]) }
        #expect(error?.kind == .invalidArgument)
        #expect(error?.description == "TERRASEG_THREADS: '\(text)' is not a valid value. Use a whole number of threads from 1 to 4096, or unset TERRASEG_THREADS")
    }

    @Test(arguments: ["1", "yes", "true", "winograd", "weight", "direct"])
    func unknownWinogradValuesAreRefused(_ text: String) {
        // Before TerraSegEnvironment, any unknown value silently meant Winograd everywhere.
        let error = #expect(throws: TerraSegError.self) { try TerraSegEnvironment(["TERRASEG_WINOGRAD": text]) }
        #expect(error?.description == "TERRASEG_WINOGRAD: '\(text)' is not a valid value. Use all, weights, or 0 (also off, none), or unset TERRASEG_WINOGRAD")
    }

    @Test func allReduceBucketSizesParseAndBadOnesAreRefused() throws {
        #expect(try TerraSegEnvironment([:]).allReduceBucketKilobytes == 8192)
        #expect(try TerraSegEnvironment(["TERRASEG_ALLREDUCE_BUCKET_KB": "0"]).allReduceBucketKilobytes == 0)
        #expect(try TerraSegEnvironment(["TERRASEG_ALLREDUCE_BUCKET_KB": "1048576"]).allReduceBucketKilobytes == 1 << 20)
        for text in ["-1", "1048577", "4M", "0.5"] {
            let error = #expect(throws: TerraSegError.self) { try TerraSegEnvironment(["TERRASEG_ALLREDUCE_BUCKET_KB": text]) }
            #expect(error?.description == "TERRASEG_ALLREDUCE_BUCKET_KB: '\(text)' is not a valid value. Use a whole number of KiB from 0 (one all-reduce after the backward pass) to 1048576, or unset TERRASEG_ALLREDUCE_BUCKET_KB")
        }
    }

    @Test func theFirstBadVariableIsNamed() {
        let error = #expect(throws: TerraSegError.self) {
            try TerraSegEnvironment(["TERRASEG_THREADS": "8", "TERRASEG_WINOGRAD": "maybe"])
        }
        #expect(error?.path == "TERRASEG_WINOGRAD")
    }
}
