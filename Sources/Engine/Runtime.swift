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

    /// Whether convolutions may use Winograd for backward-weights (faster, more scratch memory).
    /// TERRASEG_WINOGRAD=0 turns it off.
    nonisolated(unsafe) public static var winograd: Bool = {
        if let s = getenv("TERRASEG_WINOGRAD") { return String(cString: s) != "0" }
        return true
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
