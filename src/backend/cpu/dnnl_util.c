#include "backend/cpu/dnnl_util.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <oneapi/dnnl/dnnl_debug.h>

#include "core/alloc.h"

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;
static dnnl_status_t engine_status;

/* The engine lives as long as the process: primitives made on it may outlive any one owner. */
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
    static const dnnl_format_tag_t plain[] = {dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc,
                                              dnnl_abcd, dnnl_abcde};
    if (ndim < 1 || ndim > 5) return po_fail(PO_ERR_UNSUPPORTED, "oneDNN tensors of rank %d", ndim);
    dnnl_dims_t d;
    for (int i = 0; i < ndim; i++) d[i] = dims[i];
    return po__dnnl_check(
        dnnl_memory_desc_init_by_tag(md, ndim, d, dnnl_f32, any ? dnnl_format_tag_any : plain[ndim]),
        "memory descriptor");
}

po_status po__dnnl_pd(dnnl_primitive_desc_t *pd, const void *op_desc,
                      const_dnnl_primitive_desc_t hint) {
    *pd = NULL;
    dnnl_engine_t eng;
    po_status st = po__dnnl_engine(&eng);
    if (st) return st;
    dnnl_primitive_attr_t attr;
    if ((st = po__dnnl_check(dnnl_primitive_attr_create(&attr), "attribute creation"))) return st;
    st = po__dnnl_check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user),
                        "scratchpad mode");
    if (!st)
        st = po__dnnl_check(dnnl_primitive_desc_create(pd, op_desc, attr, eng, hint),
                            "primitive descriptor creation");
    dnnl_primitive_attr_destroy(attr);
    return st;
}

/* Binds one argument: a memory object for the caller's buffer and, where the primitive wants
 * another layout, an owned buffer in that layout and the reorder between the two. */
static po_status arg_init(po_dnnl_prim *p, po_dnnl_arg *a, const po_dnnl_arg_spec *s,
                          const_dnnl_primitive_desc_t pd, dnnl_engine_t eng) {
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
    size_t bytes = dnnl_memory_desc_get_size(want);
    a->buf = po_aligned_calloc(bytes);
    if (!a->buf) return po_fail(PO_ERR_NO_MEMORY, "out of memory for a oneDNN reorder buffer");
    p->extra_bytes += bytes;
    if ((st = po__dnnl_check(dnnl_memory_create(&a->inner, want, eng, a->buf), "memory creation"))) return st;
    dnnl_primitive_desc_t rpd;
    const dnnl_memory_desc_t *from = s->output ? want : &s->plain, *to = s->output ? &s->plain : want;
    if ((st = po__dnnl_check(dnnl_reorder_primitive_desc_create(&rpd, from, eng, to, eng, NULL),
                             "reorder descriptor creation")))
        return st;
    st = po__dnnl_check(dnnl_primitive_create(&a->reorder, rpd), "reorder creation");
    dnnl_primitive_desc_destroy(rpd);
    return st;
}

po_status po__dnnl_prim_init(po_dnnl_prim *p, const_dnnl_primitive_desc_t pd, int n_args,
                             const po_dnnl_arg_spec *specs) {
    memset(p, 0, sizeof *p);
    if (n_args > PO_DNNL_MAX_ARGS) return po_fail(PO_ERR_UNSUPPORTED, "oneDNN primitive with %d arguments", n_args);
    dnnl_engine_t eng;
    po_status st = po__dnnl_engine(&eng);
    if (!st) st = po__dnnl_check(dnnl_stream_create(&p->stream, eng, dnnl_stream_default_flags), "stream creation");
    if (!st) st = po__dnnl_check(dnnl_primitive_create(&p->prim, pd), "primitive creation");
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl) impl = "?";
    snprintf(p->impl, sizeof p->impl, "%s", impl);
    for (int i = 0; i < n_args && !st; i++, p->n_args++) st = arg_init(p, &p->args[i], &specs[i], pd, eng);
    const dnnl_memory_desc_t *smd = st ? NULL : dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sbytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (sbytes) {
        p->scratch = po_aligned_calloc(sbytes);
        p->extra_bytes += sbytes;
        st = p->scratch ? po__dnnl_check(dnnl_memory_create(&p->scratch_mem, smd, eng, p->scratch), "memory creation")
                        : po_fail(PO_ERR_NO_MEMORY, "out of memory for a oneDNN scratchpad");
    }
    if (st) po__dnnl_prim_free(p);
    return st;
}

po_status po__dnnl_prim_run(po_dnnl_prim *p, void *const *bufs) {
    dnnl_exec_arg_t args[PO_DNNL_MAX_ARGS + 1];
    int n = 0;
    dnnl_status_t s = dnnl_success;
    for (int i = 0; i < p->n_args && s == dnnl_success; i++) {
        po_dnnl_arg *a = &p->args[i];
        s = dnnl_memory_set_data_handle(a->user, bufs[i]);
        if (s == dnnl_success && a->reorder && !a->output) {
            dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, a->user}, {DNNL_ARG_TO, a->inner}};
            s = dnnl_primitive_execute(a->reorder, p->stream, 2, r);
        }
        args[n++] = (dnnl_exec_arg_t){a->arg, a->inner};
    }
    if (p->scratch_mem) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->scratch_mem};
    if (s == dnnl_success) s = dnnl_primitive_execute(p->prim, p->stream, n, args);
    for (int i = 0; i < p->n_args && s == dnnl_success; i++) {
        po_dnnl_arg *a = &p->args[i];
        if (!a->reorder || !a->output) continue;
        dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, a->inner}, {DNNL_ARG_TO, a->user}};
        s = dnnl_primitive_execute(a->reorder, p->stream, 2, r);
    }
    if (s == dnnl_success) s = dnnl_stream_wait(p->stream);
    return po__dnnl_check(s, "primitive execution");
}

void po__dnnl_prim_free(po_dnnl_prim *p) {
    for (int i = 0; i < p->n_args; i++) {
        po_dnnl_arg *a = &p->args[i];
        if (a->reorder) dnnl_primitive_destroy(a->reorder);
        if (a->inner && a->inner != a->user) dnnl_memory_destroy(a->inner);
        if (a->user) dnnl_memory_destroy(a->user);
        po_aligned_free(a->buf);
    }
    if (p->scratch_mem) dnnl_memory_destroy(p->scratch_mem);
    po_aligned_free(p->scratch);
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->stream) dnnl_stream_destroy(p->stream);
    memset(p, 0, sizeof *p);
}
