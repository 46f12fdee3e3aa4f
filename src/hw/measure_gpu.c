/* Host-GPU and GPU-GPU transfers through the CUDA driver API: bandwidth of a large copy between
 * page-locked host memory (what a runtime stages through) and device memory, or between two
 * GPUs' memories (cuMemcpyPeer: direct where peer access exists, staged through the host
 * otherwise, as the driver decides); latency of a 4-byte copy. The host side runs on a thread
 * pinned to the CPU device's first core. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hw/hw_internal.h"

typedef struct {
    const po_machine *m;
    const po_device *from, *to;
    size_t bytes;
    int rounds;
    double gbs, latency_us;
    po_status st;
    char err[256];
} gpu_job;

typedef struct {
    po__cu_context ctx;
    po__cu_ptr dev;
    po__cu_ptr dev_small;
    bool retained;
} gpu_side;

static po_status cu(const gpu_job *j, po__cu_result r, const char *what) {
    if (r == 0) return PO_OK;
    char buf[96];
    return po_fail(PO_ERR_BACKEND, "%s: %s", what, po__cuda_error(&j->m->cuda, r, buf, sizeof buf));
}

static po_status side_open(const gpu_job *j, int gpu, size_t bytes, gpu_side *s) {
    const po__cuda *c = &j->m->cuda;
    po_status st = cu(j, c->primary_ctx_retain(&s->ctx, j->m->cu_dev[gpu]), "cuDevicePrimaryCtxRetain");
    if (st) return st;
    s->retained = true;
    st = cu(j, c->ctx_set_current(s->ctx), "cuCtxSetCurrent");
    if (!st) st = cu(j, c->mem_alloc(&s->dev, bytes), "cuMemAlloc");
    if (!st) st = cu(j, c->mem_alloc(&s->dev_small, 64), "cuMemAlloc");
    return st;
}

static void side_close(const gpu_job *j, int gpu, gpu_side *s) {
    const po__cuda *c = &j->m->cuda;
    if (!s->retained) return;
    c->ctx_set_current(s->ctx);
    if (s->dev) c->mem_free(s->dev);
    if (s->dev_small) c->mem_free(s->dev_small);
    c->primary_ctx_release(j->m->cu_dev[gpu]);
}

/* One copy of `bytes` in the link's direction, synchronised. */
static po_status copy(const gpu_job *j, gpu_side *a, gpu_side *b, void *host, bool small) {
    const po__cuda *c = &j->m->cuda;
    size_t n = small ? 4 : j->bytes;
    po__cu_result r;
    if (j->from->kind == PO_DEVICE_CPU)
        r = c->memcpy_htod(small ? b->dev_small : b->dev, host, n);
    else if (j->to->kind == PO_DEVICE_CPU)
        r = c->memcpy_dtoh(host, small ? a->dev_small : a->dev, n);
    else
        r = c->memcpy_peer(small ? b->dev_small : b->dev, b->ctx, small ? a->dev_small : a->dev, a->ctx, n);
    po_status st = cu(j, r, "cuMemcpy");
    if (!st) st = cu(j, c->ctx_synchronize(), "cuCtxSynchronize");
    return st;
}

static void gpu_thread(int t, void *arg) {
    (void)t;
    gpu_job *j = arg;
    const po__cuda *c = &j->m->cuda;
    gpu_side a = {0}, b = {0};
    void *host = NULL;
    po_status st = PO_OK;
    if (j->from->kind == PO_DEVICE_CUDA) st = side_open(j, j->from->gpu, j->bytes, &a);
    if (!st && j->to->kind == PO_DEVICE_CUDA) st = side_open(j, j->to->gpu, j->bytes, &b);
    if (!st && (j->from->kind == PO_DEVICE_CPU || j->to->kind == PO_DEVICE_CPU)) {
        st = cu(j, c->mem_alloc_host(&host, j->bytes), "cuMemAllocHost");
        if (!st) memset(host, 1, j->bytes);
    }
    if (!st) st = cu(j, c->ctx_set_current(j->from->kind == PO_DEVICE_CUDA ? a.ctx : b.ctx), "cuCtxSetCurrent");
    double best = 0, best_small = INFINITY;
    for (int r = 0; r <= j->rounds && !st; r++) {
        double t0 = po__hw_now();
        st = copy(j, &a, &b, host, false);
        double dt = po__hw_now() - t0;
        if (r > 0 && dt > 0 && j->bytes / dt > best) best = j->bytes / dt;
        for (int k = 0; k < 20 && !st; k++) {
            t0 = po__hw_now();
            st = copy(j, &a, &b, host, true);
            dt = po__hw_now() - t0;
            if (r > 0 && dt < best_small) best_small = dt;
        }
    }
    if (host) c->mem_free_host(host);
    if (j->to->kind == PO_DEVICE_CUDA) side_close(j, j->to->gpu, &b);
    if (j->from->kind == PO_DEVICE_CUDA) side_close(j, j->from->gpu, &a);
    j->gbs = best * 1e-9;
    j->latency_us = best_small * 1e6;
    j->st = st;
    if (st) snprintf(j->err, sizeof j->err, "%s", po_last_error());
}

po_status po__measure_gpu_link(const po_machine *m, const po_device *from, const po_device *to, const po_device *host,
                               const po__measure_cfg *c, po_link_perf *l) {
    if (!po__cuda_can_transfer(&m->cuda))
        return po_fail(PO_ERR_UNSUPPORTED, "link %s -> %s: the CUDA driver lacks the copy functions", from->id, to->id);
    gpu_job j = {
        m, from,  to, c->link_bytes > 0 ? (size_t)c->link_bytes : (64u << 20), c->level == PO_BENCH_FULL ? 10 : 3, 0,
        0, PO_OK, ""};
    po__progress(c, "link %s -> %s: bandwidth (%zu MiB) and latency", from->id, to->id, j.bytes >> 20);
    po_status st = po__run_on_group(m, host->first_core, 1, gpu_thread, &j);
    if (!st && j.st) st = po_fail(j.st, "link %s -> %s: %s", from->id, to->id, j.err);
    if (st) return st;
    snprintf(l->from, sizeof l->from, "%s", from->id);
    snprintf(l->to, sizeof l->to, "%s", to->id);
    l->bandwidth_gbs = j.gbs;
    l->latency_us = j.latency_us;
    l->measured = true;
    return PO_OK;
}
