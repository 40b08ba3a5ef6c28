import Core
import Foundation
import GeoRaster

/// The connected patches of a class map (flood fill over equal values with 4 or 8
/// neighbours; nodata is no patch), to check the minimum mapping unit.
public struct ClassPatches {
    /// Each pixel's patch, -1 for nodata.
    public var id: [Int]
    /// Each patch's pixel count.
    public var sizes: [Int]

    public init(_ map: [UInt8], width: Int, connectedness: Connectedness, nodata: UInt8 = 255) {
        let height = map.count / width
        id = [Int](repeating: -1, count: map.count)
        sizes = []
        var steps = [(0, 1), (1, 0), (0, -1), (-1, 0)]
        if connectedness == .eight { steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)] }
        for start in map.indices where id[start] < 0 && map[start] != nodata {
            var stack = [start], size = 0
            id[start] = sizes.count
            while let p = stack.popLast() {
                size += 1
                for (dr, dc) in steps {
                    let r = p / width + dr, c = p % width + dc
                    guard r >= 0, r < height, c >= 0, c < width else { continue }
                    let q = r * width + c
                    if id[q] < 0 && map[q] == map[p] { id[q] = sizes.count; stack.append(q) }
                }
            }
            sizes.append(size)
        }
    }

    /// Band 1 of a Byte class map, invalid pixels as `nodata`.
    public static func read(_ path: String, nodata: UInt8 = 255) throws -> (pixels: [UInt8], width: Int) {
        let ds = try Dataset(path: path)
        let block = try ds.read(window: Window(width: ds.info.width, height: ds.info.height), bands: [1])
        return (zip(block.values, block.valid).map { v, ok in ok != 0 ? UInt8(v) : nodata }, ds.info.width)
    }
}
