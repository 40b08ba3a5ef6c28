// What Swift cannot import from oneDNN 2.6's C API directly (macros with casts or arguments),
// plus small helpers that keep C-struct plumbing out of Swift.
#ifndef TERRASEG_CDNNL_SHIM_H
#define TERRASEG_CDNNL_SHIM_H

#include <oneapi/dnnl/dnnl.h>
#include <dlfcn.h>
#include <string.h>

/// DNNL_MEMORY_ALLOCATE / DNNL_MEMORY_NONE are pointer casts.
static inline void *ts_dnnl_memory_allocate(void) { return DNNL_MEMORY_ALLOCATE; }
static inline void *ts_dnnl_memory_none(void) { return DNNL_MEMORY_NONE; }

/// DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) is a function-like macro.
static inline int ts_dnnl_arg_post_op(int idx, int arg) {
    return DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | arg;
}

/// oneDNN here is built on OpenMP (libgomp), loaded as a dependency of libdnnl. We look the
/// OpenMP entry points up at run time so the package needs no direct link to libgomp.
/// Returns 0 when OpenMP is not present.
static inline int ts_omp_set_num_threads(int n) {
    void (*f)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (!f) return 0;
    f(n);
    return 1;
}
static inline int ts_omp_get_max_threads(void) {
    int (*f)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_max_threads");
    return f ? f() : 1;
}

/// Runs fn(ctx, thread, nthreads) on `nthreads` threads of OpenMP's pool (the one oneDNN uses),
/// so TerraSeg's own kernels neither oversubscribe the cores nor fight oneDNN's spinning
/// workers. Returns 0 (and runs nothing) when OpenMP is not loaded.
typedef void (*ts_task_fn)(void *ctx, int thread, int nthreads);
struct ts_parallel_job { ts_task_fn fn; void *ctx; };
static inline void ts_parallel_trampoline(void *p) {
    static int (*thread_num)(void) = 0, (*num_threads)(void) = 0;
    if (!thread_num) {
        num_threads = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_num_threads");
        thread_num = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_thread_num");
    }
    struct ts_parallel_job *job = (struct ts_parallel_job *)p;
    job->fn(job->ctx, thread_num(), num_threads());
}
static inline int ts_parallel(ts_task_fn fn, void *ctx, int nthreads) {
    static void (*gomp_parallel)(void (*)(void *), void *, unsigned, unsigned) = 0;
    static int looked = 0;
    if (!looked) {
        gomp_parallel = (void (*)(void (*)(void *), void *, unsigned, unsigned))dlsym(RTLD_DEFAULT, "GOMP_parallel");
        if (gomp_parallel) {  // make sure the thread queries resolve before the first region
            if (!dlsym(RTLD_DEFAULT, "omp_get_thread_num")) gomp_parallel = 0;
        }
        looked = 1;
    }
    if (!gomp_parallel) return 0;
    struct ts_parallel_job job = {fn, ctx};
    gomp_parallel(ts_parallel_trampoline, &job, (unsigned)nthreads, 0);
    return 1;
}

/// Initialises a 4-D memory descriptor from plain integers (dnnl_dims_t is a C array).
static inline dnnl_status_t ts_md_init_4d(dnnl_memory_desc_t *md, long n, long c, long h,
                                          long w, dnnl_format_tag_t tag) {
    dnnl_dims_t dims = {n, c, h, w};
    return dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag);
}
static inline dnnl_status_t ts_md_init_1d(dnnl_memory_desc_t *md, long n, dnnl_data_type_t dt) {
    dnnl_dims_t dims = {n};
    return dnnl_memory_desc_init_by_tag(md, 1, dims, dt, dnnl_a);
}
static inline dnnl_status_t ts_md_init_2d(dnnl_memory_desc_t *md, long a, long b,
                                          dnnl_format_tag_t tag) {
    dnnl_dims_t dims = {a, b};
    return dnnl_memory_desc_init_by_tag(md, 2, dims, dnnl_f32, tag);
}
static inline void ts_md_zero(dnnl_memory_desc_t *md) { memset(md, 0, sizeof(*md)); }

/// 2-D convolution / deconvolution descriptors with scalar geometry. dilation is oneDNN's
/// (counted from zero). deconv != 0 selects the deconvolution family.
static inline dnnl_status_t ts_conv_forward_desc(
        int deconv, dnnl_convolution_desc_t *d, dnnl_prop_kind_t prop, dnnl_alg_kind_t alg,
        const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei,
        const dnnl_memory_desc_t *bias, const dnnl_memory_desc_t *dst,
        long stride, long dilation, long padL, long padR) {
    dnnl_dims_t s = {stride, stride}, dl = {dilation, dilation}, pl = {padL, padL}, pr = {padR, padR};
    if (deconv)
        return dnnl_dilated_deconvolution_forward_desc_init(d, prop, alg, src, wei, bias, dst, s, dl, pl, pr);
    return dnnl_dilated_convolution_forward_desc_init(d, prop, alg, src, wei, bias, dst, s, dl, pl, pr);
}
/// Forward descriptor with separate row (top/bottom) and column (left/right) padding: row
/// streaming runs 3×3 convolutions with no row padding over strips that carry their halo rows.
static inline dnnl_status_t ts_conv_forward_desc_rows(
        dnnl_convolution_desc_t *d, dnnl_prop_kind_t prop, dnnl_alg_kind_t alg,
        const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei,
        const dnnl_memory_desc_t *bias, const dnnl_memory_desc_t *dst,
        long stride, long dilation, long padTop, long padLeft, long padBottom, long padRight) {
    dnnl_dims_t s = {stride, stride}, dl = {dilation, dilation}, pl = {padTop, padLeft}, pr = {padBottom, padRight};
    return dnnl_dilated_convolution_forward_desc_init(d, prop, alg, src, wei, bias, dst, s, dl, pl, pr);
}
static inline dnnl_status_t ts_conv_backward_data_desc(
        int deconv, dnnl_convolution_desc_t *d, dnnl_alg_kind_t alg,
        const dnnl_memory_desc_t *diff_src, const dnnl_memory_desc_t *wei,
        const dnnl_memory_desc_t *diff_dst, long stride, long dilation, long padL, long padR) {
    dnnl_dims_t s = {stride, stride}, dl = {dilation, dilation}, pl = {padL, padL}, pr = {padR, padR};
    if (deconv)
        return dnnl_dilated_deconvolution_backward_data_desc_init(d, alg, diff_src, wei, diff_dst, s, dl, pl, pr);
    return dnnl_dilated_convolution_backward_data_desc_init(d, alg, diff_src, wei, diff_dst, s, dl, pl, pr);
}
static inline dnnl_status_t ts_conv_backward_weights_desc(
        int deconv, dnnl_convolution_desc_t *d, dnnl_alg_kind_t alg,
        const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *diff_wei,
        const dnnl_memory_desc_t *diff_bias, const dnnl_memory_desc_t *diff_dst,
        long stride, long dilation, long padL, long padR) {
    dnnl_dims_t s = {stride, stride}, dl = {dilation, dilation}, pl = {padL, padL}, pr = {padR, padR};
    if (deconv)
        return dnnl_dilated_deconvolution_backward_weights_desc_init(d, alg, src, diff_wei, diff_bias, diff_dst, s, dl, pl, pr);
    return dnnl_dilated_convolution_backward_weights_desc_init(d, alg, src, diff_wei, diff_bias, diff_dst, s, dl, pl, pr);
}
static inline dnnl_status_t ts_pooling_forward_desc(
        dnnl_pooling_desc_t *d, dnnl_prop_kind_t prop, dnnl_alg_kind_t alg,
        const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
        long stride, long kernel, long pad) {
    dnnl_dims_t s = {stride, stride}, k = {kernel, kernel}, p = {pad, pad};
    return dnnl_pooling_forward_desc_init(d, prop, alg, src, dst, s, k, p, p);
}
static inline dnnl_status_t ts_pooling_backward_desc(
        dnnl_pooling_desc_t *d, dnnl_alg_kind_t alg,
        const dnnl_memory_desc_t *diff_src, const dnnl_memory_desc_t *diff_dst,
        long stride, long kernel, long pad) {
    dnnl_dims_t s = {stride, stride}, k = {kernel, kernel}, p = {pad, pad};
    return dnnl_pooling_backward_desc_init(d, alg, diff_src, diff_dst, s, k, p, p);
}

#endif
