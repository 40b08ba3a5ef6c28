import Foundation
import Pipeline
import Testing
import TestSupport
import Training

/// `model.encoder_weights` and `training.freeze_encoder_epochs` in a pipeline file: read into
/// the settings (the path relative to the file), and refused for networks without an encoder.
@Suite struct EncoderSettingsTests {
    static let data = """
    data:
      scenes: [{image: scene.tif, labels: labels.tif}]
      classes: [{value: 1, name: a}, {value: 2, name: b}]

    """

    @Test func aResNetUNetTakesPretrainedWeightsAndFreezing() throws {
        let loaded = try PipelineLoader.parse(Self.data + "model: {kind: resnet-unet, encoder_weights: w/resnet18.safetensors}\ntiling: {patch: 64}\ntraining: {freeze_encoder_epochs: 2}\n",
                                              file: "job.yaml", base: "/runs", checkFiles: false)
        #expect(loaded.spec.model.encoderWeights == "/runs/w/resnet18.safetensors")
        #expect(loaded.spec.trainingOptions.freezeEncoderEpochs == 2)
        // Without the key nothing is frozen and the options (and fingerprints) stay as before.
        let plain = try PipelineLoader.parse(Self.data, file: "job.yaml", base: "/runs", checkFiles: false)
        #expect(plain.spec.trainingOptions.freezeEncoderEpochs == nil && plain.spec.model.encoderWeights == nil)
    }

    @Test func otherNetworksRefuseThem() throws {
        let error = #expect(throws: PipelineError.self) {
            try PipelineLoader.parse(Self.data + "model: {encoder_weights: w.safetensors}\ntraining: {freeze_encoder_epochs: 1}\n",
                                     file: "job.yaml", base: "/runs", checkFiles: false)
        }
        let text = error?.description ?? ""
        #expect(text.contains("model.encoder_weights: is given but model.kind is unet, which has no pretrained encoder. Use model.kind: resnet-unet"), "\(text)")
        #expect(text.contains("training.freeze_encoder_epochs: is 1 but model.kind is unet, which has no encoder to freeze"), "\(text)")
        let negative = #expect(throws: PipelineError.self) {
            try PipelineLoader.parse(Self.data + "model: {kind: resnet-unet}\ntiling: {patch: 64}\ntraining: {freeze_encoder_epochs: -1}\n",
                                     file: "job.yaml", base: "/runs", checkFiles: false)
        }
        #expect(negative?.description.contains("training.freeze_encoder_epochs: must be at least 0, got -1") == true, "\(String(describing: negative))")
    }
}
