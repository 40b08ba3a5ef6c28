import Engine
import ModelIO
import Models
import Testing
import TestSupport

// A tiny U-Net with learned upsampling (3 bands, widths 8-16, bottleneck 16 with dilation 2)
// equals Benchmarks/torch_models.py's UNet with the same weights, loaded by TerraSeg's tensor
// names: logits in inference (batch norms folded, running statistics) and training mode, and
// parameter gradients for a fixed upstream gradient. Level 1 (8 channels) concatenates in NCHW,
// level 2 in the blocked layout. Fixtures: Tests/Fixtures/unet/<mode>.safetensors, written by
// Tests/EngineTests/Fixtures/make_fixtures.py (the tests need no PyTorch).
@Test(arguments: [UpsamplingMode.transposed, .maxUnpooling])
func learnedUpsamplingUNetMatchesPyTorch(_ mode: UpsamplingMode) throws {
    let (tensors, _) = try SafeTensors.read(TestData.fixture("unet/\(mode.rawValue).safetensors"))
    let net = UNet(UNetConfiguration(inputChannels: 3, classes: 3, widths: [8, 16], bottleneckWidth: 16,
                                     bottleneckDilations: [2], upsampling: mode))
    try ModelBundle.load(tensors.filter { !$0.key.hasPrefix("fixture.") }, into: net, path: "fixture")
    func torch(_ name: String) throws -> SafeTensors.Entry { try #require(tensors["fixture." + name], "fixture lacks \(name)") }
    func tensor(_ e: SafeTensors.Entry) -> Tensor {
        Tensor(shape: Shape(e.shape[0], e.shape[1], e.shape[2], e.shape[3]), values: e.values)
    }
    func expectTorch(_ ours: [Float], _ name: String) throws {
        let e = relativeError(ours, try torch(name).values.map(Double.init))
        #expect(e < 1e-4, "\(mode.rawValue) \(name): relative error \(e) against PyTorch")
    }
    let x = tensor(try torch("input"))
    net.isTraining = false
    try expectTorch(net(x).nchwValues(), "logits_eval")
    net.isTraining = true
    try expectTorch(net(x).nchwValues(), "logits_train")
    net.backward(tensor(try torch("dlogits")))
    let parameters = Dictionary(uniqueKeysWithValues: net.namedParameters)
    let gradients = tensors.keys.filter { $0.hasPrefix("fixture.grad.") }
    #expect(gradients.count == 7)
    for key in gradients {
        let name = String(key.dropFirst("fixture.".count))
        let p = try #require(parameters[String(name.dropFirst("grad.".count))])
        try expectTorch(p.grad.nchwValues(), name)
    }
}
