import Core
import GeoRaster
import Testing
import Tiling

@Suite struct PatchGridTests {
    @Test func coversEveryPixelAndShiftsTheLastPatchInward() {
        let g = PatchGrid(width: 489, height: 443, patchSize: 128, stride: 96)
        let windows = g.windows
        #expect(PatchGrid.offsets(length: 489, patch: 128, stride: 96) == [0, 96, 192, 288, 361])
        var covered = [Bool](repeating: false, count: 489 * 443)
        for w in windows {
            #expect(Window(width: 489, height: 443).contains(w))
            for r in w.row..<w.endRow { for c in w.column..<w.endColumn { covered[r * 489 + c] = true } }
        }
        #expect(covered.allSatisfy { $0 })
    }

    @Test func smallerThanAPatchGivesOnePatchPastTheEdge() {
        let g = PatchGrid(width: 50, height: 40, patchSize: 64)
        #expect(g.windows == [Window(column: 0, row: 0, width: 64, height: 64)])
    }
}

@Suite struct PredictionGridTests {
    @Test func coresPartitionTheRasterOnAnAlignedGrid() {
        let g = PredictionGrid(width: 1000, height: 530, tileSize: 250, margin: 90, alignment: 16)
        #expect(g.tileSize == 256 && g.margin == 96 && g.inputSize == 448)
        var hits = [Int](repeating: 0, count: 1000 * 530)
        for t in g.tiles {
            #expect(t.input.width == 448 && t.input.height == 448)
            #expect(t.input.column % 16 == 0 && t.input.row % 16 == 0)
            #expect(t.coreOffsetColumn == 96 && t.coreOffsetRow == 96)
            for r in t.core.row..<t.core.endRow { for c in t.core.column..<t.core.endColumn { hits[r * 1000 + c] += 1 } }
        }
        #expect(hits.allSatisfy { $0 == 1 }, "every pixel written exactly once, last row and column included")
    }
}

@Suite struct SpatialSplitTests {
    @Test func rowSplitNeverMixesSets() {
        let split = SpatialSplit.rows(trainFraction: 0.6)
        let g = PatchGrid(width: 489, height: 443, patchSize: 64, stride: 32)
        let boundary = Int((443 * 0.6).rounded())
        for w in g.windows {
            switch split.role(of: w, width: 489, height: 443) {
            case .train: #expect(w.endRow <= boundary)
            case .validation: #expect(w.row >= boundary)
            case .discarded: #expect(w.row < boundary && w.endRow > boundary)
            }
        }
    }

    @Test func blockSplitIsSeededAndBalanced() {
        let a = SpatialSplit.blocks(blockSize: 64, validationFraction: 0.25, seed: 7)
        let b = SpatialSplit.blocks(blockSize: 64, validationFraction: 0.25, seed: 8)
        var roles: [SplitRole] = []
        var differs = false
        for r in 0..<40 {
            for c in 0..<40 {
                let w = Window(column: c * 64, row: r * 64, width: 64, height: 64)
                let ra = a.role(of: w, width: 2560, height: 2560)
                roles.append(ra)
                #expect(ra == a.role(of: w, width: 2560, height: 2560))
                if ra != b.role(of: w, width: 2560, height: 2560) { differs = true }
            }
        }
        let v = Double(roles.filter { $0 == .validation }.count) / Double(roles.count)
        #expect(abs(v - 0.25) < 0.05)
        #expect(differs)
        // A window across blocks of different roles is discarded.
        var sawDiscard = false
        for c in 0..<39 where a.role(of: Window(column: c * 64, row: 0, width: 64, height: 64), width: 2560, height: 2560)
            != a.role(of: Window(column: c * 64 + 64, row: 0, width: 64, height: 64), width: 2560, height: 2560) {
            #expect(a.role(of: Window(column: c * 64 + 32, row: 0, width: 64, height: 64), width: 2560, height: 2560) == .discarded)
            sawDiscard = true
        }
        #expect(sawDiscard)
    }
}

@Suite struct BandStatisticsTests {
    func block(_ values: [[Float]], valid: [UInt8]) -> RasterBlock {
        var b = RasterBlock(window: Window(width: valid.count, height: 1), bandCount: values.count)
        b.values = values.flatMap { $0 }
        b.valid = valid
        return b
    }

    @Test func streamingEqualsOnePass() {
        var acc = BandStatisticsAccumulator(bandCount: 2, sampleSize: 1000)
        acc.add(block([[1, 2, 3, 1000], [10, 20, 30, 40]], valid: [1, 1, 1, 0]))
        acc.add(block([[4, 5], [50, 60]], valid: [1, 1]))
        let s = acc.finish()
        #expect(s.count == [5, 5])
        #expect(s.mean[0] == 3 && s.mean[1] == 34)
        #expect(abs(s.std[0] - 2.0.squareRoot()) < 1e-12)
        #expect(s.minimum == [1, 10] && s.maximum == [5, 60])
        #expect(s.percentiles[50] == [3, 30])
    }

    @Test func normalisersMapValidPixelsAndZeroInvalidOnes() {
        var acc = BandStatisticsAccumulator(bandCount: 1)
        let data: [Float] = (0..<101).map { Float($0) * 100 }  // UInt16-like reflectance 0…10000
        acc.add(block([data], valid: [UInt8](repeating: 1, count: 101)))
        let stats = acc.finish()
        var b = block([[5000, 0, 10000, 7]], valid: [1, 1, 1, 0])
        Normalizer(statistics: stats, method: .standardize).apply(to: &b)
        #expect(b.values[0] == 0)
        #expect(b.values[3] == 0, "invalid pixels become 0")
        #expect(abs(b.values[2] - Float(5000 / stats.std[0])) < 1e-4)
        var c = block([[5000, 0, 10000, 7]], valid: [1, 1, 1, 0])
        Normalizer(statistics: stats, method: .percentileClip).apply(to: &c)
        #expect(c.values[1] == 0 && c.values[2] == 1, "clipped at the 2nd and 98th percentiles")
        #expect(abs(c.values[0] - 0.5) < 1e-6)
    }
}
