import CDNNL
#if canImport(Glibc)
import Glibc
#endif

/// Process-wide engine settings: the number of threads used by oneDNN (through OpenMP) and by
/// TerraSeg's own parallel kernels.
public enum Runtime {
    /// Threads requested by the TERRASEG_THREADS environment variable, else all cores.
    public static var defaultThreads: Int {
        if let s = getenv("TERRASEG_THREADS"), let n = Int(String(cString: s)), n > 0 { return n }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    nonisolated(unsafe) private static var _threads: Int = {
        let n = defaultThreads
        _ = ts_omp_set_num_threads(Int32(n))
        return n
    }()

    /// Where 3×3 stride-1 convolutions may use oneDNN's Winograd F(4×4, 3×3) kernels: fewer
    /// multiplications (R1 trains ~1.7× and infers ~1.8× faster than with direct convolution),
    /// results equal up to rounding (tests hold them to the reference within 1e-4), somewhat
    /// more scratch memory. Default: every pass. TERRASEG_WINOGRAD=0|weights|all.
    public enum WinogradUse: String, Sendable { case off = "0", backwardWeights = "weights", all }
    nonisolated(unsafe) public static var winograd: WinogradUse = {
        if let s = getenv("TERRASEG_WINOGRAD") { return WinogradUse(rawValue: String(cString: s)) ?? .all }
        return .all
    }()

    /// Threads used by every kernel. Setting it calls `omp_set_num_threads`.
    public static var threads: Int {
        get { _threads }
        set {
            _threads = max(1, newValue)
            _ = ts_omp_set_num_threads(Int32(_threads))
        }
    }
}
