import Core
import Engine
import GeoRaster
@testable import Inference
import Models
import Testing
import TestSupport
import Tiling

/// smp's ResNet U-Net streams through predict's strips (the default `--blend stream`): on a
/// 150×131 scene with a nodata corner (sizes multiples of nothing, padded to the alignment),
/// the map and probabilities equal one window over the scene (identical labels, probabilities
/// within 1e-5, nodata where the input is invalid), for strip heights of one alignment step, an
/// odd height and the whole scene. (Windows, `--blend centre`, read zeros beyond the scene out to
/// the receptive radius as smp's sliding window does, so near the edges their map may differ.)
@Suite struct ResNetStreamingTests {
    @Test(arguments: [(ResNetEncoder.resnet18, 32), (.resnet18, 16)], [16, 45, 256])
    func resNetStreamEqualsOneWindow(_ encoder: (ResNetEncoder, Int), strip: Int) throws {
        let dir = TemporaryDirectory()
        let scene = StitchScene.synthetic, K = scene.classes.count
        let architecture = ModelArchitecture.resnetUNet(ResNetUNetConfiguration(inputChannels: scene.bands, classes: K, encoder: encoder.0,
                                                                               decoderChannels: [32, 16, 16, 16, 16], outputStride: encoder.1))
        let streaming = StreamingTests()
        let model = try streaming.model(architecture, scene)
        let reference = try streaming.oneWindow(model, scene)
        let out = try streaming.stream(model, on: scene, strip: strip, in: dir, name: "resnet-\(strip)")
        #expect(out.run.tiles == (scene.height + strip - 1) / strip || strip % encoder.1 != 0, "strips, not windows")
        let n = scene.width * scene.height, values = scene.classes.classes.map { Float($0.value) }
        var wrongLabels = 0, worst: Float = 0
        for i in 0..<n {
            guard reference.valid[i] != 0 else {
                if out.map.valid[i] != 0 { wrongLabels += 1 }
                continue
            }
            let p = (0..<K).map { reference.probabilities[$0 * n + i] }
            let best = p.indices.max { p[$0] < p[$1] }!
            if out.map.values[i] != values[best] || out.map.valid[i] == 0 { wrongLabels += 1 }
            for k in 0..<K { worst = max(worst, abs(out.probs.values[k * n + i] - p[k])) }
        }
        #expect(wrongLabels == 0, "strips of \(strip): \(wrongLabels) labels differ from one window")
        #expect(worst <= 1e-5, "strips of \(strip): probabilities differ by \(worst)")
        #expect(Set(out.map.values.enumerated().filter { out.map.valid[$0.offset] != 0 }.map(\.element)).count > 1, "the map has several classes")
    }
}
