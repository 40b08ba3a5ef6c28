import Core
import Engine
import Foundation
import GeoRaster
import Testing
import TestSupport

/// `terraseg train --model resnet-unet` trains smp's U-Net with a ResNet-18 encoder on a
/// synthetic scene and `predict` maps another with it (windows: margin = receptive radius,
/// tiles in multiples of the alignment 32).
@Suite struct ResNetUNetCommandTests {
    let dir = TemporaryDirectory("terraseg-resnet")

    @Test func trainsAndPredictsAResNet18UNet() throws {
        let a = try SyntheticScene(in: dir.path, name: "a", width: 128, height: 96)
        let b = try SyntheticScene(in: dir.path, name: "b", width: 100, height: 70, seed: 2)
        let model = dir.file("model")
        let train = try Tool.run(Tool.terraseg, ["train", "--image", a.image, "--labels", a.labels, "--classes", SyntheticScene.classList,
                                                 "--ignore", "0", "--model", "resnet-unet", "--encoder", "resnet18",
                                                 "--decoder-channels", "32,16,16,16,16", "--patch-size", "32", "--batch-size", "4",
                                                 "--epochs", "1", "--split", "rows:0.7", "--output", model])
        try #require(train.status == 0, "\(train.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: model + "/model.json"))) as? [String: Any])
        let architecture = try #require(json["architecture"] as? [String: Any])
        #expect(architecture["kind"] as? String == "resnet-unet")
        #expect((architecture["resnet_unet"] as? [String: Any])?["encoder"] as? String == "resnet18")
        #expect(json["alignment"] as? Int == 32)

        let out = dir.file("maps")
        let predict = try Tool.run(Tool.terraseg, ["predict", "--model", model, "--input", b.image, "--output", out, "--tile", "64"])
        try #require(predict.status == 0, "\(predict.stderr)")
        // Streaming is the default, and this network streams its rows too.
        #expect(predict.stderr.contains("full-width strips, each feature computed once"), "\(predict.stderr)")
        #expect(!predict.stderr.contains("cannot stream its rows"), "\(predict.stderr)")
        let map = try Dataset(path: out + "/b_map.tif")
        #expect(map.info.width == 100 && map.info.height == 70)
        let values = try map.read(window: Window(width: 100, height: 70))
        #expect(values.valid.contains { $0 != 0 })

        let quantize = try Tool.run(Tool.terraseg, ["quantize", "--model", model, "--calibration", a.image, "--output", dir.file("q")])
        #expect(quantize.status != 0 && quantize.stderr.contains("has no int8 layers"), "\(quantize.stderr)")

        // bf16 covers no ResNet layer yet: refused when asked for, fp32 with a notice under auto.
        let bf16 = try Tool.run(Tool.terraseg, ["predict", "--model", model, "--input", b.image, "--output", dir.file("bf16"), "--precision", "bf16"])
        #expect(bf16.status != 0 && bf16.stderr.contains("--precision bf16 is refused"), "\(bf16.stderr)")
        if CPUFeatures.hasBF16 { #expect(bf16.stderr.contains("a ResNet U-Net has none yet"), "\(bf16.stderr)") }
        let auto = try Tool.run(Tool.terraseg, ["predict", "--model", model, "--input", b.image, "--output", dir.file("auto"), "--precision", "auto", "--tile", "64"])
        #expect(auto.status == 0 && auto.stderr.contains("Precision auto: fp32, because"), "\(auto.stderr)")
        let trainBF16 = try Tool.run(Tool.terraseg, ["train", "--image", a.image, "--labels", a.labels, "--classes", SyntheticScene.classList,
                                                     "--ignore", "0", "--model", "resnet-unet", "--encoder", "resnet18", "--precision", "bf16",
                                                     "--decoder-channels", "32,16,16,16,16", "--patch-size", "32", "--batch-size", "4",
                                                     "--epochs", "1", "--split", "rows:0.7", "--output", dir.file("m16")])
        #expect(trainBF16.status != 0 && trainBF16.stderr.contains("bf16 is refused"), "\(trainBF16.stderr)")
        if CPUFeatures.hasBF16 { #expect(trainBF16.stderr.contains("a ResNet U-Net has none yet"), "\(trainBF16.stderr)") }
    }

    @Test func refusesAnOutputStrideSMPDoesNotHave() throws {
        let r = try Tool.run(Tool.terraseg, ["train", "--classes", "1=water", "--model", "resnet-unet", "--output-stride", "12", "--output", dir.file("m")])
        #expect(r.status != 0 && r.stderr.contains("--output-stride (model.output_stride): 12 is not 8, 16 or 32"), "\(r.stderr)")
        let d = try Tool.run(Tool.terraseg, ["train", "--classes", "1=water", "--model", "resnet-unet", "--decoder-channels", "64,32,16", "--output", dir.file("m")])
        #expect(d.status != 0 && d.stderr.contains("--decoder-channels (model.decoder_channels): has 3 entries"), "\(d.stderr)")
        let w = try Tool.run(Tool.terraseg, ["train", "--classes", "1=water", "--model", "resnet-unet", "--decoder-channels", "64,32,16,16,24", "--output", dir.file("m")])
        #expect(w.status != 0 && w.stderr.contains("24 is not a multiple of 16"), "\(w.stderr)")
    }
}
