import CDNNL

/// What oneDNN will use on this CPU (`dnnl_get_effective_cpu_isa`, which honours
/// `DNNL_MAX_CPU_ISA`/`ONEDNN_MAX_CPU_ISA`): decides whether reduced precision pays here.
public enum CPUFeatures {
    /// oneDNN's name for the effective instruction set, e.g. "avx512_core_vnni".
    public static var effectiveISA: String {
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_sse41: return "sse41"
        case dnnl_cpu_isa_avx: return "avx"
        case dnnl_cpu_isa_avx2: return "avx2"
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni"
        case dnnl_cpu_isa_avx512_mic, dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic"
        case dnnl_cpu_isa_avx512_core: return "avx512_core"
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
        default: return "all"
        }
    }

    /// What oneDNN runs here, for `terraseg --version`, e.g. "oneDNN 2.6.3 on avx2: blocks of 8
    /// channels, no Winograd, no VNNI int8, no bf16".
    public static var summary: String {
        let v = dnnl_version().pointee
        let kinds = [hasWinograd ? "Winograd" : "no Winograd", hasInt8DotProduct ? "VNNI int8" : "no VNNI int8",
                     hasBF16 ? "bf16" : "no bf16"]
        return "oneDNN \(v.major).\(v.minor).\(v.patch) on \(effectiveISA): blocks of \(vectorFloats) channels, " + kinds.joined(separator: ", ")
    }

    /// Float32 lanes of oneDNN's vector registers here: 16 with AVX-512, else 8.
    public static var vectorFloats: Int { hasAVX512 ? 16 : 8 }

    /// oneDNN 2.6 has fp32 Winograd convolutions with AVX-512 only: elsewhere `WinogradUse`
    /// asks for it in vain and every convolution runs direct.
    public static var hasWinograd: Bool { hasAVX512 }

    private static var hasAVX512: Bool { contains(dnnl_get_effective_cpu_isa().rawValue, dnnl_cpu_isa_avx512_core) }

    /// u8×s8 dot products in one instruction (AVX512-VNNI or AVX-VNNI): without them oneDNN's
    /// int8 convolutions are no faster than fp32 Winograd and can saturate intermediate sums.
    public static var hasInt8DotProduct: Bool {
        let isa = dnnl_get_effective_cpu_isa().rawValue
        return contains(isa, dnnl_cpu_isa_avx512_core_vnni) || contains(isa, dnnl_cpu_isa_avx2_vnni)
    }

    /// Native bf16 arithmetic (AVX512_BF16 or AMX).
    public static var hasBF16: Bool { contains(dnnl_get_effective_cpu_isa().rawValue, dnnl_cpu_isa_avx512_core_bf16) }

    /// oneDNN's ISA values are bit sets: each level contains the bits of those below it.
    private static func contains(_ isa: UInt32, _ level: dnnl_cpu_isa_t) -> Bool {
        isa & level.rawValue == level.rawValue
    }
}
