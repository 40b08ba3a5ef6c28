import Core
import Models

/// What the stitcher needs from a trained network. The U-Net and dilated CNN of `Models`
/// conform through an adapter; tests use small deterministic models.
public protocol SceneModel: AnyObject {
    var inputChannels: Int { get }
    var classCount: Int { get }
    /// Input sizes and window offsets must be multiples of this (the total down-sampling
    /// factor, e.g. 16 for a 4-level U-Net, 1 for a dilated CNN without pooling).
    var alignment: Int { get }
    /// Receptive-field half-width in pixels: a margin this wide makes tiled prediction equal
    /// to predicting the whole scene at once.
    var receptiveRadius: Int { get }
    /// input: batch × inputChannels × size × size (normalised, invalid pixels 0);
    /// output: batch × classCount × size × size class probabilities (softmax).
    func predict(_ input: UnsafeBufferPointer<Float>, batch: Int, size: Int,
                 into output: UnsafeMutableBufferPointer<Float>) throws
    /// Scores needed inside `region` of every window only (elsewhere `output` is left
    /// unspecified): probabilities, or with `probabilities` false anything whose per-pixel
    /// maximum is the class (a network returns its logits and skips the softmax). A model may
    /// skip work outside the region. By default: `predict` over whole windows.
    func predictScores(_ input: UnsafeBufferPointer<Float>, batch: Int, size: Int, region: Window,
                       probabilities: Bool, into output: UnsafeMutableBufferPointer<Float>) throws
    /// The network as a `RowStream` computing `rows` rows at a time; nil when it cannot stream.
    func rowStream(rows: Int) -> RowStream?
    /// Why `rowStream` is nil, for the notice that the scene is predicted in windows.
    var windowsOnly: String { get }
    /// Bytes a row stream holds per pixel of strip (for choosing strip heights from a budget).
    var streamBytesPerPixel: Int { get }
}

extension SceneModel {
    public func rowStream(rows: Int) -> RowStream? { nil }
    public var windowsOnly: String { "it has no row kernels" }
    public var streamBytesPerPixel: Int { 4096 }

    public func predictScores(_ input: UnsafeBufferPointer<Float>, batch: Int, size: Int, region: Window,
                              probabilities: Bool, into output: UnsafeMutableBufferPointer<Float>) throws {
        try predict(input, batch: batch, size: size, into: output)
    }
}
