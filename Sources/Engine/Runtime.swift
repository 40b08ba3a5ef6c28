import Core
#if canImport(Glibc)
import Glibc
#endif

/// Process-wide engine settings: the number of threads used by oneDNN (through OpenMP) and by
/// TerraSeg's own parallel kernels, and where convolutions may use Winograd. Defaults come
/// from `TerraSegEnvironment` (TERRASEG_THREADS, TERRASEG_WINOGRAD), the one reader of them.
public enum Runtime {
    /// Threads requested by TERRASEG_THREADS, else all cores.
    public static var defaultThreads: Int {
        TerraSegEnvironment.checked.threads ?? max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    nonisolated(unsafe) private static var _threads: Int = {
        let n = defaultThreads
        OpenMP.setThreads(n)
        return n
    }()

    /// Where 3×3 stride-1 convolutions may use oneDNN's Winograd F(4×4, 3×3) kernels: fewer
    /// multiplications (R1 trains ~1.7× and infers ~1.8× faster than with direct convolution),
    /// results equal up to rounding (tests hold them to the reference within 1e-4), somewhat
    /// more scratch memory. Default: every pass; TERRASEG_WINOGRAD=all|weights|0.
    nonisolated(unsafe) public static var winograd: WinogradUse = TerraSegEnvironment.checked.winograd

    /// Threads used by every kernel. Setting it calls `omp_set_num_threads`.
    public static var threads: Int {
        get { _threads }
        set {
            _threads = max(1, newValue)
            OpenMP.setThreads(_threads)
        }
    }
}
