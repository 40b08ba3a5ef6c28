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
