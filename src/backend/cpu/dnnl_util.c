#include "backend/cpu/dnnl_util.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <oneapi/dnnl/dnnl_debug.h>

#include "core/alloc.h"

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;
static dnnl_status_t engine_status;

/* The engine lives as long as the process: any number of executors share it. */
static void engine_create(void) { engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0); }

po_status po__dnnl_engine(dnnl_engine_t *out) {
    pthread_once(&engine_once, engine_create);
    *out = engine;
    return po__dnnl_check(engine_status, "CPU engine creation");
}

po_status po__dnnl_check(dnnl_status_t s, const char *what) {
    if (s == dnnl_success) return PO_OK;
    return po_fail(PO_ERR_BACKEND, "oneDNN %s failed (%s)", what, dnnl_status2str(s));
}

po_status po__dnnl_md(dnnl_memory_desc_t *md, int ndim, const int64_t *dims, bool any) {
    static const dnnl_format_tag_t plain[] = {dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc, dnnl_abcd, dnnl_abcde};
    if (ndim < 1 || ndim > 5) return po_fail(PO_ERR_UNSUPPORTED, "oneDNN tensors of rank %d", ndim);
    dnnl_dims_t d;
    for (int i = 0; i < ndim; i++)
        d[i] = dims[i];
    return po__dnnl_check(dnnl_memory_desc_init_by_tag(md, ndim, d, dnnl_f32, any ? dnnl_format_tag_any : plain[ndim]),
                          "memory descriptor");
}

po_status po__dnnl_pd(dnnl_primitive_desc_t *pd, const void *op_desc, const_dnnl_primitive_desc_t hint,
                      bool accumulate) {
    *pd = NULL;
    dnnl_engine_t eng;
    po_status st = po__dnnl_engine(&eng);
    if (st) return st;
    dnnl_primitive_attr_t attr;
    if ((st = po__dnnl_check(dnnl_primitive_attr_create(&attr), "attribute creation"))) return st;
    st = po__dnnl_check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");
    if (!st && accumulate) {
        dnnl_post_ops_t ops;
        st = po__dnnl_check(dnnl_post_ops_create(&ops), "post-op creation");
        if (!st) {
            st = po__dnnl_check(dnnl_post_ops_append_sum(ops, 1.0f), "sum post-op");
            if (!st) st = po__dnnl_check(dnnl_primitive_attr_set_post_ops(attr, ops), "post-op attribute");
            dnnl_post_ops_destroy(ops);
        }
    }
    if (!st)
        st = po__dnnl_check(dnnl_primitive_desc_create(pd, op_desc, attr, eng, hint), "primitive descriptor creation");
    dnnl_primitive_attr_destroy(attr);
    return st;
}

const char *po__dnnl_impl(const_dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl) return "?";
    return impl;
}

/* Binds one argument: a memory object for the caller's buffer and, where the primitive wants
 * another layout, a memory object for the intermediate buffer (its handle set at each run)
 * and the reorder between the two. */
static po_status arg_init(po_dnnl_prim *p, po_dnnl_arg *a, const po_dnnl_arg_spec *s, const_dnnl_primitive_desc_t pd,
                          dnnl_engine_t eng) {
    a->arg = s->arg;
    a->output = s->output;
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, s->arg);
    if (!want || want->ndims == 0) return po_fail(PO_ERR_BACKEND, "oneDNN primitive has no argument %d", s->arg);
    po_status st = po__dnnl_check(dnnl_memory_create(&a->user, &s->plain, eng, DNNL_MEMORY_NONE), "memory creation");
    if (st) return st;
    if (dnnl_memory_desc_equal(want, &s->plain)) {
        a->inner = a->user;
        return PO_OK;
    }
    a->offset = p->inner_bytes;
    p->inner_bytes += po_align_up(dnnl_memory_desc_get_size(want));
    if ((st = po__dnnl_check(dnnl_memory_create(&a->inner, want, eng, DNNL_MEMORY_NONE), "memory creation"))) return st;
    dnnl_primitive_desc_t rpd;
    const dnnl_memory_desc_t *from = s->output ? want : &s->plain, *to = s->output ? &s->plain : want;
    if ((st = po__dnnl_check(dnnl_reorder_primitive_desc_create(&rpd, from, eng, to, eng, NULL),
                             "reorder descriptor creation")))
        return st;
    st = po__dnnl_check(dnnl_primitive_create(&a->reorder, rpd), "reorder creation");
    dnnl_primitive_desc_destroy(rpd);
    return st;
}

static po_status prim_init(po_dnnl_prim *p, const_dnnl_primitive_desc_t pd, int n_args, const po_dnnl_arg_spec *specs,
                           size_t scratch_bytes) {
    if (n_args > PO_DNNL_MAX_ARGS) return po_fail(PO_ERR_UNSUPPORTED, "oneDNN primitive with %d arguments", n_args);
    snprintf(p->impl, sizeof p->impl, "%s", po__dnnl_impl(pd));
    dnnl_engine_t eng;
    po_status st = po__dnnl_engine(&eng);
    if (!st) st = po__dnnl_check(dnnl_stream_create(&p->stream, eng, dnnl_stream_default_flags), "stream creation");
    if (!st) st = po__dnnl_check(dnnl_primitive_create(&p->prim, pd), "primitive creation");
    for (int i = 0; i < n_args && !st; i++) {
        p->n_args++;
        st = arg_init(p, &p->args[i], &specs[i], pd, eng);
    }
    if (st) return st;
    if (p->inner_bytes > scratch_bytes && !(p->own_inner = po_aligned_calloc(p->inner_bytes)))
        return po_fail(PO_ERR_NO_MEMORY, "out of memory for oneDNN reorder buffers");
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sbytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (!sbytes) return PO_OK;
    if (!(p->scratchpad = po_aligned_calloc(sbytes)))
        return po_fail(PO_ERR_NO_MEMORY, "out of memory for a oneDNN scratchpad");
    return po__dnnl_check(dnnl_memory_create(&p->scratchpad_mem, smd, eng, p->scratchpad), "memory creation");
}

po_status po__dnnl_prim_init(po_dnnl_prim *p, const_dnnl_primitive_desc_t pd, int n_args, const po_dnnl_arg_spec *specs,
                             size_t scratch_bytes) {
    memset(p, 0, sizeof *p);
    po_status st = prim_init(p, pd, n_args, specs, scratch_bytes);
    if (st) po__dnnl_prim_free(p);
    return st;
}

static dnnl_status_t run_reorder(po_dnnl_prim *p, const po_dnnl_arg *a) {
    dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, a->output ? a->inner : a->user},
                            {DNNL_ARG_TO, a->output ? a->user : a->inner}};
    return dnnl_primitive_execute(a->reorder, p->stream, 2, r);
}

po_status po__dnnl_prim_run(po_dnnl_prim *p, void *const *bufs, void *scratch) {
    char *inner = p->own_inner ? p->own_inner : scratch;
    dnnl_exec_arg_t args[PO_DNNL_MAX_ARGS + 1];
    int n = 0;
    dnnl_status_t s = dnnl_success;
    for (int i = 0; i < p->n_args && s == dnnl_success; i++) {
        po_dnnl_arg *a = &p->args[i];
        s = dnnl_memory_set_data_handle(a->user, bufs[i]);
        if (s == dnnl_success && a->reorder) s = dnnl_memory_set_data_handle(a->inner, inner + a->offset);
        if (s == dnnl_success && a->reorder && !a->output) s = run_reorder(p, a);
        args[n++] = (dnnl_exec_arg_t){a->arg, a->inner};
    }
    if (p->scratchpad_mem) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->scratchpad_mem};
    if (s == dnnl_success) s = dnnl_primitive_execute(p->prim, p->stream, n, args);
    for (int i = 0; i < p->n_args && s == dnnl_success; i++)
        if (p->args[i].reorder && p->args[i].output) s = run_reorder(p, &p->args[i]);
    if (s == dnnl_success) s = dnnl_stream_wait(p->stream);
    if (s == dnnl_success) return PO_OK;
    return po_fail(PO_ERR_BACKEND, "oneDNN %s failed to run (%s)", p->impl, dnnl_status2str(s));
}

void po__dnnl_prim_free(po_dnnl_prim *p) {
    for (int i = 0; i < p->n_args; i++) {
        po_dnnl_arg *a = &p->args[i];
        if (a->reorder) dnnl_primitive_destroy(a->reorder);
        if (a->inner && a->inner != a->user) dnnl_memory_destroy(a->inner);
        if (a->user) dnnl_memory_destroy(a->user);
    }
    if (p->scratchpad_mem) dnnl_memory_destroy(p->scratchpad_mem);
    po_aligned_free(p->scratchpad);
    po_aligned_free(p->own_inner);
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->stream) dnnl_stream_destroy(p->stream);
    memset(p, 0, sizeof *p);
}

size_t po__dnnl_blocked_bound(int ndim, const int64_t *dims, unsigned blocked_dims) {
    size_t n = sizeof(float);
    for (int i = 0; i < ndim; i++)
        n *= (size_t)((blocked_dims >> i) & 1u ? (dims[i] + 15) / 16 * 16 : dims[i]);
    return po_align_up(n);
}
