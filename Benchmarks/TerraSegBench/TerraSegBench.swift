import ArgumentParser
import Core
import Engine
import Foundation
import Models

@main
struct TerraSegBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "terraseg-bench",
        abstract: "Release-only benchmarks of the TerraSeg engine.",
        subcommands: [R1Bench.self, GradCheck.self, ConvBench.self])
}

enum BenchMode: String, ExpressibleByArgument, CaseIterable { case train, infer, stream }
enum BenchUpsampling: String, ExpressibleByArgument, CaseIterable { case bilinear, nails }

/// Runs the reference network R1 (shared/R1.md), a small U-Net or smp's ResNet U-Net on random
/// input and reports throughput.
struct R1Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "r1", abstract: "Train or infer R1 at a batch size and report throughput.")

    @Option(help: "train, infer, or stream (one size × size scene through the row stream in strips of --strip rows, a step per scene)") var mode: BenchMode = .train
    @Option(help: "Rows per strip with --mode stream.") var strip = 64
    @Option(help: "Batch size.") var batch = 8
    @Option(help: "Timed steps.") var steps = 5
    @Option(help: "Untimed warm-up steps (primitive creation, first-touch page faults).") var warmup = 1
    @Option(help: "Decoder upsampling: bilinear (preset r1) or nails (preset r1-nails).") var upsample: BenchUpsampling = .bilinear
    @Option(help: "Image height and width.") var size = 256
    @Option(help: "Threads (default: TERRASEG_THREADS or all cores).") var threads: Int?
    @Option(help: "Other encoder widths, e.g. 8,16,32,64 (bottleneck twice the last): a small U-Net instead of R1.") var widths: String?
    @Option(help: "resnet18, resnet34 or resnet50: smp's Unet of that encoder (R1's 4 bands and 6 classes, decoder 256-128-64-32-16) instead of R1.") var encoder: String?
    @Flag(help: "Print per-layer times of the last step.") var profile = false
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "Infer in fp32 and int8 (calibrated on the input), interleaved, and compare.") var int8 = false
    @Option(help: "Training convolutions: fp32, bf16 (per layer the faster of bf16 and fp32, measured in the first step) or bf16-all.") var precision = "fp32"

    /// Set-up, warm-up, timed steps and the report in order (63 lines): a benchmark script, read top to bottom.
    func run() throws {
        _ = try TerraSegEnvironment.current()  // refuse bad TERRASEG_* values before any work
        if let threads { Runtime.threads = threads }
        let (net, networkName) = try network()
        let config = UNetConfiguration.r1  // bands and classes, whatever the network
        var rng = SplitMix64(seed: 7, stream: .parameters)
        let x = mode == .stream ? Tensor(shape: Shape(1, config.inputChannels, strip, size), layout: .nchw)
                                : Tensor(shape: Shape(batch, config.inputChannels, size, size))
        for i in 0..<x.physicalCount { x.data[i] = Float(Int(rng.next() >> 40) - (1 << 23)) * 0x1p-23 }
        let labels = (0..<(batch * size * size)).map { _ in Int32(rng.next() % UInt64(config.classes)) }
        let target = SegmentationTarget(n: batch, h: size, w: size, labels: labels)
        let loss = FocalDiceLoss(gamma: 2)
        let adam = Adam(parameters: net.namedParameters, learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
        net.isTraining = mode == .train
        if int8 {
            guard let unet = net as? UNet else { throw ValidationError("--int8 compares R1 or a small U-Net, not a ResNet U-Net") }
            return Int8Comparison.run(unet, input: x, steps: steps)
        }
        if precision != "fp32" { Bf16Training.install(in: net, choosing: precision == "bf16") }
        let profiler = Profiler.shared

        if mode == .stream && (strip < 32 || strip % 32 != 0 || size % 32 != 0) {
            throw ValidationError("--mode stream needs --strip and --size multiples of 32 (every network's alignment divides 32)")
        }
        let stream = mode == .stream ? net.rowStream(rows: strip) : nil
        if mode == .stream && stream == nil { throw ValidationError("this network cannot stream its rows") }
        var times: [Double] = [], firstStep = 0.0
        for step in 0..<(warmup + steps) {
            profiler.isEnabled = profile && step == warmup + steps - 1
            profiler.reset()
            let t0 = now()
            var lossValue: Float?
            if mode == .train {
                let logits = profiler.measure("forward") { net(x) }
                let l = profiler.measure("loss") { loss(logits: logits, target: target) }
                profiler.measure("backward") { net.backward(l.gradient) }
                profiler.measure("adam") { adam.update() }
                lossValue = l.value
            } else if let stream {
                profiler.measure("stream") { streamScene(stream, strip: x) }
            } else {
                _ = profiler.measure("forward") { net(x) }
            }
            let dt = now() - t0
            if step >= warmup { times.append(dt) } else if step == 0 { firstStep = dt }
            if step == 0, let choice = Bf16Inference.summary(of: net, training: true), !json { print(choice) }
            if !json {
                print(String(format: "step %d%@: %.3f s", step, step < warmup ? " (warm-up)" : "", dt)
                      + (lossValue.map { String(format: ", loss %.4f", $0) } ?? "")
                      + String(format: ", RSS %.0f MB (peak %.0f)", procStatusMegabytes("VmRSS:"), peakRSSMegabytes()))
            }
        }
        let median = times.sorted()[times.count / 2], fastest = times.min()!
        let imagesPerS = Double(mode == .stream ? 1 : batch) / median
        let scale = Double(size * size) / (256.0 * 256.0)
        let gflops = encoder != nil ? 0 : imagesPerS * (mode == .train ? 87.35 : 29.17) * scale  // R1's count
        let mp = imagesPerS * Double(size * size) / 1e6
        let rss = peakRSSMegabytes()
        if profile && !json {
            print(profiler.report())
            for (name, impls) in (net as? UNet)?.convolutionImplementations ?? [] { print("\(name): \(impls.joined(separator: " | "))") }
        }
        let name = networkName + (precision == "fp32" ? "" : " " + precision)
        if json {
            print("{\"network\": \"\(name)\", \"mode\": \"\(mode.rawValue)\", \"batch\": \(batch), \"size\": \(size), "
                + "\"threads\": \(Runtime.threads), \"steps\": \(steps), "
                + String(format: "\"images_per_s\": %.4f, \"megapixels_per_s\": %.4f, \"gflops\": %.2f, \"step_s\": %.4f, \"min_step_s\": %.4f, \"peak_rss_mb\": %.1f, \"winograd\": \"%@\"",
                         imagesPerS, mp, gflops, median, fastest, rss, "\(Runtime.winograd)")
                + String(format: ", \"first_step_s\": %.4f", firstStep) + bf16ChoiceJSON(net) + "}")
        } else {
            print(String(format: "%@ %@, batch %d, %d threads: %.3f images/s (%.3f MP/s), %.1f effective GFLOP/s, median step %.3f s (fastest %.3f s), peak RSS %.0f MB",
                         name, mode.rawValue, batch, Runtime.threads, imagesPerS, mp, gflops, median, fastest, rss))
        }
    }
}

extension R1Bench {
    /// The network measured and its name: R1, the small U-Net of `widths`, or the ResNet U-Net of `encoder`.
    func network() throws -> (any SegmentationNetwork, String) {
        var config = upsample == .nails ? UNetConfiguration.r1Nails : .r1
        if let encoder {
            guard let e = ResNetEncoder(rawValue: encoder) else {
                throw ValidationError("--encoder \(encoder): use one of \(ResNetEncoder.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let c = ResNetUNetConfiguration(inputChannels: config.inputChannels, classes: config.classes, encoder: e)
            return (ResNetUNet(c, seed: 1), "\(encoder)-unet")
        }
        if let widths {
            config.widths = widths.split(separator: ",").compactMap { Int($0) }
            config.bottleneckWidth = 2 * config.widths.last!
        }
        return (UNet(config, seed: 1), widths.map { "unet-\($0)" } ?? (upsample == .nails ? "r1-nails" : "r1"))
    }
}

/// `, "bf16_layers": [...], "bf16_measured": N` once a per-layer bf16 choice was made, else "".
func bf16ChoiceJSON(_ net: any SegmentationNetwork) -> String {
    let (bf16, measured) = Bf16Inference.chosen(in: net, training: true)
    guard measured > 0 else { return "" }
    return ", \"bf16_layers\": [" + bf16.map { "\"\($0)\"" }.joined(separator: ", ") + "], \"bf16_measured\": \(measured)"
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Peak resident set size (VmHWM in /proc/self/status), in MB.
func peakRSSMegabytes() -> Double { procStatusMegabytes("VmHWM:") }

func procStatusMegabytes(_ field: String) -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix(field) {
        return (line.split(separator: " ").compactMap { Double($0) }.first ?? 0) / 1024
    }
    return 0
}

extension R1Bench {
    /// One size × size scene through `stream`: `size / strip` pushes of the same strip of rows.
    func streamScene(_ stream: RowStream, strip x: Tensor) {
        let pushes = (size + strip - 1) / strip
        for i in 0..<pushes { stream.push(x, final: i == pushes - 1) { _ in } }
    }
}
