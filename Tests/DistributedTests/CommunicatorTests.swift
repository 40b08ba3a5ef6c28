import Core
import Distributed
import Testing

@Suite struct CommunicatorTests {
    @Test func plainRunIsOneProcessWithoutMPI() throws {
        #expect(!Launch.detect(["PATH": "/usr/bin", "SLURM_JOB_ID": "7"]))
        #expect(Launch.detect(["OMPI_COMM_WORLD_SIZE": "2"]))
        #expect(Launch.detect(["PMI_SIZE": "4"]))
        #expect(Launch.detect(["PMIX_RANK": "0"]))
        let c = Communicator.single
        #expect(c.rank == 0 && c.size == 1 && c.isRoot && !c.isDistributed)
    }

    @Test func singleProcessCollectivesAreTheIdentity() throws {
        let c = Communicator.single
        var f: [Float] = [1, 2.5], d: [Double] = [3], i: [Int64] = [4, 5]
        try c.allReduceSum(&f)
        try c.allReduceSum(&d)
        try c.allReduceSum(&i)
        #expect(f == [1, 2.5] && d == [3] && i == [4, 5])
        #expect(try c.allReduceMax(7) == 7)
        #expect(try c.broadcast([1, 2, 3]) == [1, 2, 3])
        #expect(try c.gather([9, 8]) == [[9, 8]])
        try c.barrier()
        #expect(try !c.hasMessage())
    }

    /// One process holds the one block of everything: reduce-scatter and all-gather copy.
    @Test func singleProcessReduceScatterAndAllGatherCopy() throws {
        let c = Communicator.single
        #expect(c.block(of: 7) == 0..<7)
        let values: [Float] = [1, 2, 3, 4, 5, 6, 7]
        var mine = [Float](repeating: 0, count: 7), back = [Float](repeating: 0, count: 7)
        let scattered = try values.withUnsafeBufferPointer { v in
            try mine.withUnsafeMutableBufferPointer { try c.startReduceScatterSum(v, into: $0) }
        }
        let gathered = try mine.withUnsafeBufferPointer { m in
            try back.withUnsafeMutableBufferPointer { try c.startAllGather(m, into: $0) }
        }
        #expect(scattered == nil && gathered == nil, "nothing to wait for")
        #expect(mine == values && back == values)
    }

    /// A buffer given as pieces (parts of several arrays, as DataParallel passes gradients and
    /// weights): one process's block is their concatenation, and there is nothing to gather.
    @Test func singleProcessReduceScatterOfPiecesConcatenatesThem() throws {
        let c = Communicator.single
        var a: [Float] = [1, 2, 3], b: [Float] = [4, 5]
        var mine = [Float](repeating: 0, count: 4)
        try a.withUnsafeMutableBufferPointer { pa in
            try b.withUnsafeMutableBufferPointer { pb in
                let pieces = [UnsafeMutableBufferPointer(rebasing: pa[1...]), UnsafeMutableBufferPointer(rebasing: pb[0..<0]), pb]
                let scattered = try mine.withUnsafeMutableBufferPointer { try c.startReduceScatterSum(blocks: [pieces], into: $0) }
                #expect(scattered == nil)
                #expect(try c.startAllGather(blocks: [pieces]) == nil)
            }
        }
        #expect(mine == [2, 3, 4, 5] && a == [1, 2, 3] && b == [4, 5])
    }

    @Test func singleProcessRefusesPointToPoint() {
        #expect(throws: TerraSegError.self) { try Communicator.single.send([1], to: 0) }
        let e = #expect(throws: TerraSegError.self) { _ = try Communicator.single.receive(count: 1) }
        #expect(e?.description.contains("single-process") == true)
    }
}
