/* oneDNN primitives over paropt's plain row-major buffers.
 *
 * One CPU engine serves the whole process (created on first use, thread-safe). A po_dnnl_prim
 * wraps one primitive together with everything needed to run it on plain buffers: its own
 * stream, one memory object per argument, and, for an argument whose layout the primitive
 * chose itself (format_tag_any), a reorder to or from the plain layout through a buffer the
 * wrapper owns. Scratchpads are in user mode and owned by the wrapper, so two primitives never
 * share one and the wrapper can run on any thread (one thread at a time).
 *
 * Everything is created once (when the executor is built); running only sets data handles and
 * executes. */
#ifndef PO_BACKEND_CPU_DNNL_UTIL_H
#define PO_BACKEND_CPU_DNNL_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include <oneapi/dnnl/dnnl.h>

#include "paropt/status.h"

#define PO_DNNL_MAX_ARGS 6

/* The process-wide CPU engine; PO_ERR_BACKEND when oneDNN cannot create it. */
po_status po__dnnl_engine(dnnl_engine_t *out);

/* PO_OK for dnnl_success, else PO_ERR_BACKEND with "oneDNN <what> failed (<status>)". */
po_status po__dnnl_check(dnnl_status_t s, const char *what);

/* Plain F32 descriptor of a row-major tensor (nchw, oihw, x ...); format_tag_any when `any`. */
po_status po__dnnl_md(dnnl_memory_desc_t *md, int ndim, const int64_t *dims, bool any);

/* One argument of a wrapped primitive, as the caller sees it. */
typedef struct po_dnnl_arg_spec {
    int arg;                  /* DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, ... */
    dnnl_memory_desc_t plain; /* layout of the caller's buffer */
    bool output;              /* written by the primitive (reordered back after it runs) */
} po_dnnl_arg_spec;

typedef struct po_dnnl_arg {
    int arg;
    bool output;
    dnnl_memory_t user;        /* the caller's buffer, handle set at each run */
    dnnl_memory_t inner;       /* what the primitive reads or writes; == user without reorder */
    dnnl_primitive_t reorder;  /* user -> inner for inputs, inner -> user for outputs; or NULL */
    void *buf;                 /* inner's storage when reordered */
} po_dnnl_arg;

typedef struct po_dnnl_prim {
    dnnl_stream_t stream;
    dnnl_primitive_t prim;
    dnnl_memory_t scratch_mem; /* NULL when the primitive needs no scratchpad */
    void *scratch;
    int n_args;
    po_dnnl_arg args[PO_DNNL_MAX_ARGS];
    char impl[48];      /* oneDNN's implementation name ("jit:avx2", "gemm:jit", ...) */
    size_t extra_bytes; /* scratchpad plus reorder buffers owned by the wrapper */
} po_dnnl_prim;

/* Creates the primitive descriptor for op_desc (attributes: user scratchpad). `hint` is the
 * forward descriptor for backward primitives, else NULL. Free with dnnl_primitive_desc_destroy. */
po_status po__dnnl_pd(dnnl_primitive_desc_t *pd, const void *op_desc,
                      const_dnnl_primitive_desc_t hint);

/* Builds *p from a primitive descriptor: every argument in specs is bound to a caller buffer
 * of layout spec.plain, with a reorder wherever the primitive's layout differs. The wrapper
 * does not keep pd. On failure everything made so far is released and *p is zeroed. */
po_status po__dnnl_prim_init(po_dnnl_prim *p, const_dnnl_primitive_desc_t pd, int n_args,
                             const po_dnnl_arg_spec *specs);

/* Runs the primitive on the caller's buffers, given in the order of specs at init. */
po_status po__dnnl_prim_run(po_dnnl_prim *p, void *const *bufs);

void po__dnnl_prim_free(po_dnnl_prim *p);

#endif
