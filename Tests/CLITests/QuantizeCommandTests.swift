import Core
import Engine
import Foundation
import GeoRaster
import ModelIO
import Testing
import TestSupport

/// `terraseg quantize` and `predict --precision` end to end: a TinyModel trained a few steps
/// on a synthetic scene, quantized on that scene, maps a second scene in int8 like fp32.
@Suite(.serialized) struct QuantizeCommandTests {
    let dir = TemporaryDirectory("terraseg-int8")
    let a: SyntheticScene, b: SyntheticScene
    let model: String, quantized: String

    init() throws {
        a = try SyntheticScene(in: dir.path, name: "scene-a", width: 150, height: 110, bands: 4)
        b = try SyntheticScene(in: dir.path, name: "scene-b", width: 97, height: 83, bands: 4, seed: 2)
        model = dir.file("model")
        quantized = dir.file("model-int8")
        try TinyModel.seeded(a, output: model)
    }

    func terraseg(_ arguments: [String], environment: [String: String]? = nil) throws -> Tool.Result {
        let r = try Tool.run(Tool.terraseg, arguments, environment: environment)
        #expect(!r.crashed, "terraseg \(arguments[0]) crashed: \(r.stderr)")
        return r
    }
    func predict(_ model: String, _ output: String, _ extra: [String], environment: [String: String]? = nil) throws -> Tool.Result {
        try terraseg(["predict", "--model", model, "--input", b.image, "--output", output, "--tile", "48"] + extra, environment: environment)
    }
    func quantize() throws {
        let r = try terraseg(["quantize", "--model", model, "--calibration", a.image, "--output", quantized, "--tile", "64"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("int8 in 8 of 10 layers"), "\(r.stdout)")
    }

    /// The quantized bundle keeps the weights and the training files, adds the section (first
    /// unit and head fp32), and maps ≥ 99 % of valid pixels as fp32 does, in windows and streamed.
    @Test(.enabled(if: CPUFeatures.hasInt8DotProduct)) func int8MapAgreesWithFloat() throws {
        try TinyModel.train(a, output: model, epochs: 2)
        try quantize()
        let bundle = try ModelBundle.read(quantized)
        let q = try #require(bundle.quantization)
        #expect(q.layers.first?.precision == "fp32" && q.layers.last?.name == "head" && q.calibrationPatches > 0)
        #expect(FileManager.default.contents(atPath: quantized + "/model.safetensors") == FileManager.default.contents(atPath: model + "/model.safetensors"))
        #expect(FileManager.default.fileExists(atPath: quantized + "/metrics.jsonl"))

        let fp = try predict(quantized, dir.file("fp32"), ["--precision", "fp32"])
        let i8 = try predict(quantized, dir.file("int8"), ["--precision", "int8"])
        #expect(fp.status == 0 && i8.status == 0, "\(fp.stderr) \(i8.stderr)")
        #expect(i8.stderr.contains("Precision int8: int8 in 8 of 10 layers"), "\(i8.stderr)")
        let m1 = try Dataset(path: dir.file("fp32") + "/scene-b_map.tif").read(window: Window(width: b.width, height: b.height))
        let m2 = try Dataset(path: dir.file("int8") + "/scene-b_map.tif").read(window: Window(width: b.width, height: b.height))
        let valid = zip(m1.values, m1.valid).filter { $1 != 0 }.count
        let same = (0..<m1.values.count).filter { m1.valid[$0] != 0 && m1.values[$0] == m2.values[$0] }.count
        #expect(valid > 0 && Double(same) >= 0.99 * Double(valid), "int8 agrees on \(same) of \(valid) valid pixels")

        // Row streaming runs the same int8 units over strips: its map agrees with fp32's too.
        let stream = try predict(quantized, dir.file("stream"), ["--precision", "int8", "--blend", "stream"])
        #expect(stream.status == 0, "\(stream.stderr)")
        let m3 = try Dataset(path: dir.file("stream") + "/scene-b_map.tif").read(window: Window(width: b.width, height: b.height))
        let sameStream = (0..<m1.values.count).filter { m1.valid[$0] != 0 && m1.values[$0] == m3.values[$0] }.count
        #expect(Double(sameStream) >= 0.99 * Double(valid), "streamed int8 agrees on \(sameStream) of \(valid) valid pixels")
    }

    /// bf16 needs no calibration and maps like fp32; it is refused without AVX512_BF16/AMX
    /// (oneDNN limited to AVX512_CORE_VNNI); with streaming it predicts in windows and says so.
    @Test func bf16MapsLikeFloatAndIsRefusedWhereItCannotRun() throws {
        if CPUFeatures.hasBF16 {
            let fp = try predict(model, dir.file("fp32-bf"), [])
            let bf = try predict(model, dir.file("bf16"), ["--precision", "bf16"])
            #expect(fp.status == 0 && bf.status == 0, "\(fp.stderr) \(bf.stderr)")
            #expect(bf.stderr.contains("Precision bf16: bf16 or fp32 per layer, the faster at first use, in 9 of 10 layers"), "\(bf.stderr)")
            #expect(bf.stderr.contains("bf16 per-layer choice: bf16 in ") && bf.stderr.contains(" of 9 layers"), "\(bf.stderr)")
            let window = Window(width: b.width, height: b.height)
            let m1 = try Dataset(path: dir.file("fp32-bf") + "/scene-b_map.tif").read(window: window)
            let m2 = try Dataset(path: dir.file("bf16") + "/scene-b_map.tif").read(window: window)
            let valid = m1.valid.filter { $0 != 0 }.count
            let same = (0..<m1.values.count).filter { m1.valid[$0] != 0 && m1.values[$0] == m2.values[$0] }.count
            #expect(valid > 0 && Double(same) >= 0.99 * Double(valid), "bf16 agrees on \(same) of \(valid) valid pixels")
        }
        let noBF16 = try predict(model, dir.file("no-bf16"), ["--precision", "bf16"], environment: ["DNNL_MAX_CPU_ISA": "AVX512_CORE_VNNI"])
        #expect(noBF16.status != 0 && noBF16.stderr.contains("--precision bf16 is refused") && noBF16.stderr.contains("no native bf16"), "\(noBF16.stderr)")
        // auto on a CPU without bf16 (oneDNN limited to AVX512_CORE) and a plain bundle: fp32, saying why.
        let noISA = ["DNNL_MAX_CPU_ISA": "AVX512_CORE"]
        let refused = try predict(model, dir.file("core-bf16"), ["--precision", "bf16"], environment: noISA)
        // The cap lowers the ISA, never raises it: an AVX2 machine names its own.
        let capped = CPUFeatures.vectorFloats == 16 ? "avx512_core)" : "\(CPUFeatures.effectiveISA))"
        #expect(refused.status != 0 && refused.stderr.contains("--precision bf16 is refused") && refused.stderr.contains(capped), "\(refused.stderr)")
        let auto = try predict(model, dir.file("core-auto"), ["--precision", "auto", "--blend", "stream"], environment: noISA)
        #expect(auto.status == 0 && auto.stderr.contains("Precision auto: fp32, because the bundle") && auto.stderr.contains("no native bf16"), "\(auto.stderr)")
        #expect(!auto.stderr.contains("bf16 runs in windows") && !auto.stderr.contains("per-layer choice"), "\(auto.stderr)")
        if CPUFeatures.hasBF16 {
            let stream = try predict(model, dir.file("stream-bf16"), ["--precision", "bf16", "--blend", "stream"])
            #expect(stream.status == 0 && stream.stderr.contains("bf16 runs in windows (streaming has no bf16 kernels)"), "\(stream.stderr)")
        }
    }

    /// int8 needs a quantized bundle: the refusal names the bundle and the command that makes one.
    @Test func int8WithoutCalibrationIsRefused() throws {
        let r = try predict(model, dir.file("refused"), ["--precision", "int8"])
        #expect(r.status != 0)
        #expect(r.stderr.contains(model) && r.stderr.contains("no int8 calibration") && r.stderr.contains("terraseg quantize"), "\(r.stderr)")
        // auto without calibration: bf16 (per-layer choice) where the CPU has it, else fp32.
        let auto = try predict(model, dir.file("auto-plain"), ["--precision", "auto"])
        let expected = CPUFeatures.hasBF16 ? "Precision auto: bf16 or fp32 per layer" : "Precision auto: fp32, because the bundle"
        #expect(auto.status == 0 && auto.stderr.contains(expected), "\(auto.stderr)")
    }

    /// Without VNNI (oneDNN limited to AVX2), int8 is refused and auto falls back with a notice.
    @Test func int8WithoutVNNIIsRefused() throws {
        try quantize()
        let env = ["DNNL_MAX_CPU_ISA": "AVX2"]
        let r = try predict(quantized, dir.file("avx2"), ["--precision", "int8"], environment: env)
        #expect(r.status != 0 && r.stderr.contains("no VNNI"), "\(r.stderr)")
        let auto = try predict(quantized, dir.file("avx2-auto"), ["--precision", "auto"], environment: env)
        #expect(auto.status == 0 && auto.stderr.contains("Precision auto: fp32, because this CPU"), "\(auto.stderr)")
    }
}
