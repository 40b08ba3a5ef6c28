import Core
import Engine
import Foundation
import Models

/// R1 inference in fp32 and int8 (`r1 --mode infer --int8`): calibrated on the input itself,
/// then interleaved rounds (fp32, int8, fp32, …) in one launch; medians, their ratio, and how
/// far int8's logits and argmax are from fp32's.
enum Int8Comparison {
    static func run(_ net: UNet, input x: Tensor, steps: Int) {
        net.isTraining = false
        let steps8 = Int8Calibration.calibrate(net, batches: [x])
        let reference = net(x).nchwValues()
        Int8Calibration.install(steps8, in: net)
        let units = Int8Calibration.units(of: net).map(\.unit)
        let int8Units = units.map(\.int8)
        let chain = net.int8Chain
        let quantized = net(x).nchwValues()
        // 0 fp32, 1 int8 unchained (each unit quantizes its Float32 input), 2 int8 chained u8,
        // 3 bf16 (every unit; where the CPU has it).
        let names = ["fp32", "int8 unchained", "int8 chained", "bf16"]
        let bf16 = CPUFeatures.hasBF16 ? units.map(Bf16Inference.kernel) : []
        let modes = bf16.isEmpty ? 3 : 4
        func use(_ mode: Int) {
            for (u, q) in zip(units, int8Units) { u.int8 = mode == 1 || mode == 2 ? q : nil }
            for (u, k) in zip(units, bf16) { u.bf16 = mode == 3 ? k : nil }
            net.int8Chain = mode == 2 ? chain : nil
        }
        var times: [[Double]] = Array(repeating: [], count: modes)
        use(3)
        let bf16Logits = bf16.isEmpty ? [] : net(x).nchwValues()
        for _ in 0..<steps {
            for mode in 0..<modes {
                use(mode)
                let t0 = now()
                _ = net(x)
                times[mode].append(now() - t0)
            }
        }
        for mode in 0..<modes {
            use(mode)
            print("profile \(names[mode]) (fastest of 3 passes per layer):\n" + fastestProfile(of: 3) { _ = net(x) })
        }
        use(2)
        for (mode, t) in times.enumerated() {
            let s = t.sorted()
            print(names[mode] + String(format: ": median %.3f s, min %.3f, max %.3f", s[s.count / 2], s[0], s[s.count - 1]))
        }
        print(String(format: "int8 unchained %.2f× fp32", times[0].sorted()[steps / 2] / times[1].sorted()[steps / 2]))
        if modes == 4 {
            let e = zip(bf16Logits, reference).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }.squareRoot()
                / reference.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
            print(String(format: "bf16 %.2f× fp32; bf16 logits normwise error %.4f; ", times[0].sorted()[steps / 2] / times[3].sorted()[steps / 2], e)
                  + (bf16.first?.implementation ?? "-"))
        }
        times = [times[0], times[2]]
        let m = times.map { $0.sorted()[$0.count / 2] }
        let classes = net.configuration.classes, plane = x.shape.h * x.shape.w
        var same = 0
        for n in 0..<x.shape.n { for p in 0..<plane {
            func argmax(_ v: [Float]) -> Int { (0..<classes).max { v[(n * classes + $0) * plane + p] < v[(n * classes + $1) * plane + p] }! }
            if argmax(reference) == argmax(quantized) { same += 1 }
        } }
        let err = zip(quantized, reference).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }.squareRoot()
            / reference.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
        print("ISA \(CPUFeatures.effectiveISA); int8 in \(steps8.count) of \(units.count) units (+ fp32 head), chained: \(chain != nil); \(chain?.implementation ?? "-")")
        print(String(format: "R1 infer batch %d, %d²: fp32 median %.3f s, int8 chained median %.3f s: int8 %.2f× fp32 (%d interleaved rounds); logits normwise error %.4f, argmax agreement %.2f %%",
                     x.shape.n, x.shape.h, m[0], m[1], m[0] / m[1], steps, err, 100 * Double(same) / Double(x.shape.n * plane)))
    }

    /// Per-layer wall times of `passes` runs of `body`, the fastest of each layer (a loaded
    /// machine inflates single passes unevenly), and their sum.
    static func fastestProfile(of passes: Int, _ body: () -> Void) -> String {
        let profiler = Profiler.shared
        var best: [String: Double] = [:], order: [String] = []
        for _ in 0..<passes {
            profiler.reset(); profiler.isEnabled = true
            body()
            profiler.isEnabled = false
            for (label, t) in profiler.entries {
                if best[label] == nil { order.append(label) }
                best[label] = min(best[label] ?? .infinity, t)
            }
        }
        let lines = order.map { $0.padding(toLength: 44, withPad: " ", startingAt: 0) + String(format: " %7.1f ms", 1000 * best[$0]!) }
        return (lines + [String(format: "sum of fastest %.1f ms", 1000 * order.reduce(0) { $0 + best[$1]! })]).joined(separator: "\n")
    }
}
