import Foundation
import Metrics
import Testing

@Suite struct ConfusionMatrixTests {
    /// A hand-computed 3-class example.
    @Test func scores() {
        var m = ConfusionMatrix(classCount: 3)
        // truth 0: 5 px (4 → 0, 1 → 1); truth 1: 3 px (3 → 1); truth 2: 2 px (1 → 2, 1 → 0)
        for _ in 0..<4 { m.add(truth: 0, predicted: 0) }
        m.add(truth: 0, predicted: 1)
        for _ in 0..<3 { m.add(truth: 1, predicted: 1) }
        m.add(truth: 2, predicted: 2)
        m.add(truth: 2, predicted: 0)
        m.add(truth: -1, predicted: 2)  // ignored
        #expect(m.total == 10)
        #expect(m.overallAccuracy == 0.8)
        #expect(m.iou(0) == 4.0 / 6.0)
        #expect(m.iou(1) == 3.0 / 4.0)
        #expect(m.iou(2) == 0.5)
        #expect(abs(m.meanIoU - (4.0 / 6 + 0.75 + 0.5) / 3) < 1e-12)
        #expect(m.precision(0) == 0.8 && m.recall(0) == 0.8 && abs(m.f1(0) - 0.8) < 1e-12)
        // kappa: po = 0.8, pe = (5*5 + 3*4 + 2*1)/100 = 0.39
        #expect(abs(m.kappa - (0.8 - 0.39) / (1 - 0.39)) < 1e-12)
    }

    @Test func absentClassesDoNotCountInTheMean() {
        var m = ConfusionMatrix(classCount: 4)
        m.add(truth: 1, predicted: 1)
        #expect(m.iou(0).isNaN)
        #expect(m.meanIoU == 1)
    }

    @Test func bufferAddSkipsOutOfRange() {
        var m = ConfusionMatrix(classCount: 2)
        let t: [Int32] = [0, 1, 1, -1, 5], p: [Int32] = [0, 1, 0, 0, 1]
        t.withUnsafeBufferPointer { tb in p.withUnsafeBufferPointer { pb in m.add(truth: tb, predicted: pb) } }
        #expect(m.counts == [1, 0, 1, 1])
    }

    /// A report read back from its JSON (a stored evaluation) equals the one written, NaN
    /// scores (a class absent from both maps, written as null) included.
    @Test func reportsRoundTripThroughJSON() throws {
        var m = ConfusionMatrix(classCount: 3)
        m.add(truth: 0, predicted: 0, count: 5)
        m.add(truth: 1, predicted: 0, count: 2)
        m.add(truth: 1, predicted: 1, count: 3)
        let report = SegmentationReport(matrix: m, values: [1, 2, 3], names: ["a", "b", "c"])
        #expect(report.classes[2].iou.isNaN)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = try encoder.encode(report)
        let back = try JSONDecoder().decode(SegmentationReport.self, from: json)
        #expect(try encoder.encode(back) == json)
        #expect(back.confusionMatrix == report.confusionMatrix && back.meanIoU == report.meanIoU && back.classes[2].iou.isNaN)
    }
}
