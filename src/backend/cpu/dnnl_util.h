/* oneDNN primitives over paropt's plain row-major buffers.
 *
 * One CPU engine serves the whole process (created on first use, thread-safe). A po_dnnl_prim
 * wraps one primitive together with what it needs to run on plain buffers: its own stream, one
 * memory object per argument and, for an argument whose layout the primitive chose itself
 * (format_tag_any), a reorder to or from the plain layout through an intermediate buffer.
 *
 * Intermediate buffers come from the node's scratch space when it is large enough (the op's
 * infer reserves an upper bound, so the executor shares that memory between nodes), else the
 * wrapper allocates them. oneDNN's own scratchpad is in user mode and owned by the wrapper:
 * its size is known only once the primitive exists, it is zero or small for the direct
 * single-threaded kernels, and owning it means no two primitives ever share one.
 *
 * Everything is created once (when the executor is built); running only sets data handles and
 * executes, on one thread at a time. */
#ifndef PO_BACKEND_CPU_DNNL_UTIL_H
#define PO_BACKEND_CPU_DNNL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <oneapi/dnnl/dnnl.h>

#include "paropt/status.h"

#define PO_DNNL_MAX_ARGS 6

/* The process-wide CPU engine; PO_ERR_BACKEND when oneDNN cannot create it. */
po_status po__dnnl_engine(dnnl_engine_t *out);

/* PO_OK for dnnl_success, else PO_ERR_BACKEND with "oneDNN <what> failed (<status>)". */
po_status po__dnnl_check(dnnl_status_t s, const char *what);

/* F32 descriptor of a row-major tensor (a, ab, ..., abcd = nchw/oihw); format_tag_any when
 * `any`. Rank 1 to 5. */
po_status po__dnnl_md(dnnl_memory_desc_t *md, int ndim, const int64_t *dims, bool any);

/* Creates the primitive descriptor for op_desc with a user-mode scratchpad. `hint` is the
 * forward descriptor for backward primitives, else NULL. accumulate: the primitive adds its
 * result to what its destination holds (a sum post-op, GEMM's beta = 1). Free with
 * dnnl_primitive_desc_destroy. */
po_status po__dnnl_pd(dnnl_primitive_desc_t *pd, const void *op_desc, const_dnnl_primitive_desc_t hint,
                      bool accumulate);

/* oneDNN's implementation name for pd ("jit:avx2", "x64:gemm:jit", "ref:any", ...). */
const char *po__dnnl_impl(const_dnnl_primitive_desc_t pd);

/* One argument of a wrapped primitive, as the caller sees it. */
typedef struct po_dnnl_arg_spec {
    int arg;                  /* DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, ... */
    dnnl_memory_desc_t plain; /* layout of the caller's buffer */
    bool output;              /* written by the primitive (reordered back after it runs) */
} po_dnnl_arg_spec;

typedef struct po_dnnl_arg {
    int arg;
    bool output;
    dnnl_memory_t user;       /* the caller's buffer, handle set at each run */
    dnnl_memory_t inner;      /* what the primitive reads or writes; == user without reorder */
    dnnl_primitive_t reorder; /* user -> inner for inputs, inner -> user for outputs; or NULL */
    size_t offset;            /* inner's place in the scratch space, when reordered */
} po_dnnl_arg;

typedef struct po_dnnl_prim {
    dnnl_stream_t stream;
    dnnl_primitive_t prim;
    dnnl_memory_t scratchpad_mem; /* NULL when the primitive needs no scratchpad */
    void *scratchpad;
    int n_args;
    po_dnnl_arg args[PO_DNNL_MAX_ARGS];
    size_t inner_bytes; /* intermediate buffers, in total */
    void *own_inner;    /* those buffers when the caller's scratch space is too small */
    char impl[48];      /* oneDNN's implementation name */
} po_dnnl_prim;

/* Builds *p from a primitive descriptor: every argument in specs is bound to a caller buffer
 * of layout spec.plain, with a reorder wherever the primitive's layout differs. scratch_bytes
 * is what the caller will pass to each run (0: none). The wrapper does not keep pd. On failure
 * everything made so far is released and *p is zeroed. */
po_status po__dnnl_prim_init(po_dnnl_prim *p, const_dnnl_primitive_desc_t pd, int n_args, const po_dnnl_arg_spec *specs,
                             size_t scratch_bytes);

/* Runs the primitive on the caller's buffers, given in the order of specs at init; scratch
 * is scratch_bytes (as at init) of PO_ALIGN-aligned temporary space. */
po_status po__dnnl_prim_run(po_dnnl_prim *p, void *const *bufs, void *scratch);

void po__dnnl_prim_free(po_dnnl_prim *p);

/* Bytes a blocked layout of a tensor can take at most: the channel dims (`blocked_dims`, a bit
 * mask over dims) rounded up to 16, the widest block oneDNN uses for f32 on x86; aligned to
 * PO_ALIGN. For sizing scratch space before the primitive exists. */
size_t po__dnnl_blocked_bound(int ndim, const int64_t *dims, unsigned blocked_dims);

#endif
