import Core
import GeoRaster

/// An RGB colour-coded mask (DeepGlobe, ISPRS Potsdam/Vaihingen) read as label values: the
/// one place colours become class values. Bands 1–3 are read through GDAL; a pixel whose
/// colour is a class's `color` gets that class's value, a colour listed under `data.ignore`
/// is unlabelled, any other colour is an error naming the colour and the mask file.
public final class ColorMask: RasterSource {
    public let source: any RasterSource
    /// The mask as one band of label values (band 1 of the source, described as such).
    public let info: RasterInfo
    private let values: [UInt32: Float]
    private let ignored: Set<UInt32>
    private var rgb = RasterBlock()

    public init(_ source: any RasterSource, classMap: ClassMap, ignore: [RGBA]) throws {
        let path = source.info.path
        guard source.info.bandCount >= 3 else {
            throw RasterError(.badBand, path: path,
                              problem: "a colour-coded mask needs red, green and blue bands; the file has \(source.info.bandCount)",
                              hint: "Read single-band or palette masks as values: drop colors: true (--tile-mask-colors)")
        }
        if let other = source.info.bands.prefix(3).first(where: { $0.dataType != .byte }) {
            throw RasterError(.unsupportedType, path: path, band: other.index,
                              problem: "a colour-coded mask must be 8-bit RGB; band \(other.index) is \(other.dataType.rawValue)",
                              hint: "Convert it with `gdal_translate -ot Byte`, or drop colors: true if it holds label values")
        }
        var table: [UInt32: Float] = [:]
        for c in classMap.classes {
            if let other = table.updateValue(Float(c.value), forKey: ColorMask.key(c.color)) {
                throw TerraSegError(.invalidArgument, path: "classes",
                                    problem: "classes with values \(Int(other)) and \(c.value) share the colour \(ColorMask.rgbHex(c.color)), so colour-coded masks cannot tell them apart",
                                    hint: "Give every class its own color: #rrggbb")
            }
        }
        for c in ignore where table[ColorMask.key(c)] != nil {
            throw TerraSegError(.invalidArgument, path: "data.ignore", problem: "colour \(ColorMask.rgbHex(c)) is both a class colour and ignored",
                                hint: "Remove it from one of the lists")
        }
        self.source = source
        values = table
        ignored = Set(ignore.map(ColorMask.key))
        var one = source.info
        one.bands = [source.info.bands[0]]
        one.bands[0].hasColorTable = false
        info = one
    }

    static func key(_ c: RGBA) -> UInt32 { UInt32(c.r) << 16 | UInt32(c.g) << 8 | UInt32(c.b) }
    static func rgbHex(_ c: RGBA) -> String { RGBA(c.r, c.g, c.b).hex }
    static func hex(_ key: UInt32) -> String { rgbHex(RGBA(UInt8(key >> 16 & 0xff), UInt8(key >> 8 & 0xff), UInt8(key & 0xff))) }

    /// Fills band 1 of `block` with label values; ignored colours and invalid pixels are invalid.
    public func read(window: Window, bands: [Int]?, into block: inout RasterBlock) throws {
        try source.read(window: window, bands: [1, 2, 3], into: &rgb)
        if block.window != window || block.bandCount != 1 { block = RasterBlock(window: window, bandCount: 1) }
        let n = window.pixelCount
        var unknown: [UInt32: Int] = [:]
        for i in 0..<n {
            block.valid[i] = 0
            block.values[i] = 0
            guard rgb.valid[i] != 0 else { continue }
            let channels = (rgb.values[i], rgb.values[n + i], rgb.values[2 * n + i])
            let k = UInt32(UInt8(clamping: Int(channels.0))) << 16 | UInt32(UInt8(clamping: Int(channels.1))) << 8
                | UInt32(UInt8(clamping: Int(channels.2)))
            if let v = values[k] {
                block.values[i] = v
                block.valid[i] = 1
            } else if !ignored.contains(k), unknown[k] == nil {
                unknown[k] = i
            }
        }
        guard let first = unknown.min(by: { $0.value < $1.value }) else { return }
        let c = window.column + first.value % window.width, r = window.row + first.value / window.width
        let colours = unknown.keys.sorted().prefix(8).map(ColorMask.hex).joined(separator: ", ")
        throw RasterError(.invalidArgument, path: info.path,
                          problem: "colour \(ColorMask.hex(first.key)) at column \(c), row \(r) matches no class colour (colours without a class here: \(colours))",
                          hint: "Give the class with this colour under classes[].color, or list \"\(ColorMask.hex(first.key))\" under data.ignore")
    }
}
