import Inference

/// A deterministic stand-in for a network: class k's score at a pixel is a weighted box sum
/// of band k mod C over a (2r+1)² neighbourhood (zero outside the window), optionally after
/// averaging aligned `pool`×`pool` blocks (which makes it translation-equivariant only to
/// multiples of `pool`, like a U-Net). Scores go through a softmax. Every output pixel is
/// computed in the same order wherever the window lies, so tiled and whole-scene
/// predictions must agree bit for bit when the stitcher is right.
final class BoxModel: SceneModel {
    let inputChannels: Int
    let classCount: Int
    let radius: Int
    let pool: Int
    var alignment: Int { pool }
    var receptiveRadius: Int { radius + pool - 1 }
    var calls = 0
    /// The window side of every call.
    var sizes: [Int] = []

    init(channels: Int, classes: Int, radius: Int, pool: Int = 1) {
        inputChannels = channels
        classCount = classes
        self.radius = radius
        self.pool = pool
    }

    func predict(_ input: UnsafeBufferPointer<Float>, batch: Int, size: Int, into output: UnsafeMutableBufferPointer<Float>) throws {
        calls += 1
        sizes.append(size)
        let n = size * size, C = inputChannels, K = classCount
        var pooled = [Float](repeating: 0, count: n)
        for b in 0..<batch {
            for k in 0..<K {
                let plane = input.baseAddress! + (b * C + k % C) * n
                for by in stride(from: 0, to: size, by: pool) {
                    for bx in stride(from: 0, to: size, by: pool) {
                        var s: Float = 0
                        for y in by..<(by + pool) { for x in bx..<(bx + pool) { s += plane[y * size + x] } }
                        s /= Float(pool * pool)
                        for y in by..<(by + pool) { for x in bx..<(bx + pool) { pooled[y * size + x] = s } }
                    }
                }
                let out = output.baseAddress! + (b * K + k) * n
                let w = Float(k + 1) * 0.05, bias = Float(k) * 0.1 - 0.2
                for y in 0..<size {
                    for x in 0..<size {
                        var s: Float = 0
                        for dy in -radius...radius {
                            let yy = y + dy
                            if yy < 0 || yy >= size { continue }
                            for dx in -radius...radius {
                                let xx = x + dx
                                if xx < 0 || xx >= size { continue }
                                s += pooled[yy * size + xx]
                            }
                        }
                        out[y * size + x] = s * w + bias
                    }
                }
            }
            // softmax over classes
            for p in 0..<n {
                var m = -Float.infinity
                for k in 0..<K { m = max(m, output[(b * K + k) * n + p]) }
                var z: Float = 0
                for k in 0..<K { let e = (output[(b * K + k) * n + p] - m).exp; output[(b * K + k) * n + p] = e; z += e }
                for k in 0..<K { output[(b * K + k) * n + p] /= z }
            }
        }
    }
}

private extension Float {
    var exp: Float { Float(Foundation.exp(Double(self))) }
}

import Foundation
