import CDNNL

/// Runs `chunk(thread, threadCount)` on OpenMP's pool (`GOMP_parallel`). False when OpenMP
/// is not loaded.
func runOnOpenMP(threads: Int, _ chunk: (Int, Int) -> Void) -> Bool {
    withoutActuallyEscaping(chunk) { chunk in
        var context = chunk
        return withUnsafeMutablePointer(to: &context) { ctx in
            ts_parallel({ raw, t, n in
                let f = raw!.assumingMemoryBound(to: ((Int, Int) -> Void).self)
                f.pointee(Int(t), Int(n))
            }, UnsafeMutableRawPointer(ctx), Int32(threads)) != 0
        }
    }
}

/// OpenMP's thread count, shared by oneDNN's primitives and `runOnOpenMP`.
enum OpenMP {
    /// `omp_set_num_threads` (through the shim; a no-op when OpenMP is not loaded).
    static func setThreads(_ n: Int) { _ = ts_omp_set_num_threads(Int32(n)) }
}
