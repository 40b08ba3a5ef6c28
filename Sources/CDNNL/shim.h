// What Swift cannot import from oneDNN 2.6's C API directly (macros with casts or arguments).
#ifndef TERRASEG_CDNNL_SHIM_H
#define TERRASEG_CDNNL_SHIM_H

#include <oneapi/dnnl/dnnl.h>

/// DNNL_MEMORY_ALLOCATE / DNNL_MEMORY_NONE are pointer casts.
static inline void *ts_dnnl_memory_allocate(void) { return DNNL_MEMORY_ALLOCATE; }
static inline void *ts_dnnl_memory_none(void) { return DNNL_MEMORY_NONE; }

/// DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) is a function-like macro.
static inline int ts_dnnl_arg_post_op(int idx, int arg) {
    return DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | arg;
}

#endif
