/* Convolution and pooling speed on one core, for the cifar_cnn layers at batch 64.
 *
 * Part 1 compares the two ways of running oneDNN convolutions on paropt's plain NCHW buffers:
 * primitives created on plain nchw/oihw layouts, and primitives free to pick their layout
 * (format_tag_any) with reorders from and to nchw around them (what src/ops/conv2d.c does).
 * Part 2 times the ops themselves in a graph: conv - relu - pool - conv - relu - pool, forward
 * and backward, per op. Run pinned to one core: taskset -c 0 ./bench_conv [iterations]. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/dnnl_util.h"
#include "core/alloc.h"
#include "ops/op_def.h"
#include "paropt/paropt.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int die(const char *what) {
    fprintf(stderr, "bench_conv: %s: %s\n", what, po_last_error());
    exit(1);
}

typedef struct layer {
    const char *name;
    int n, c, h, w, o, k, pad;
} layer;

static const layer layers[] = {{"conv1 3->32 32x32", 64, 3, 32, 32, 32, 3, 1},
                               {"conv2 32->64 16x16", 64, 32, 16, 16, 64, 3, 1}};

/* Best of `iters` timed runs, in ms: on a shared machine the minimum is the most repeatable
 * estimate of a kernel's own cost. */
static double time_prim(po_dnnl_prim *p, void *const *bufs, void *scratch, int iters) {
    for (int i = 0; i < 3; i++)
        if (po__dnnl_prim_run(p, bufs, scratch)) die("run");
    double best = 1e30;
    for (int i = 0; i < iters; i++) {
        double t0 = now_s();
        if (po__dnnl_prim_run(p, bufs, scratch)) die("run");
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    return best * 1e3;
}

/* One primitive of a layer with plain or free layouts: 0 forward, 1 backward data, 2 backward
 * weights. Returns the median time; writes oneDNN's implementation name. */
static double time_kind(const layer *l, int kind, bool any, int iters, char *impl, size_t impl_size) {
    int64_t xd[4] = {l->n, l->c, l->h, l->w}, wd[4] = {l->o, l->c, l->k, l->k};
    int64_t yd[4] = {l->n, l->o, l->h + 2 * l->pad - l->k + 1, l->w + 2 * l->pad - l->k + 1}, bd[1] = {l->o};
    dnnl_memory_desc_t x, w, y, b, xa, wa, ya;
    if (po__dnnl_md(&x, 4, xd, false) || po__dnnl_md(&w, 4, wd, false) || po__dnnl_md(&y, 4, yd, false) ||
        po__dnnl_md(&b, 1, bd, false) || po__dnnl_md(&xa, 4, xd, any) || po__dnnl_md(&wa, 4, wd, any) ||
        po__dnnl_md(&ya, 4, yd, any))
        die("descriptors");
    dnnl_dims_t s = {1, 1}, p = {l->pad, l->pad};
    dnnl_convolution_desc_t fd, bdesc;
    dnnl_primitive_desc_t fpd, pd;
    if (po__dnnl_check(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &xa, &wa,
                                                          &b, &ya, s, p, p),
                       "forward") ||
        po__dnnl_pd(&fpd, &fd, NULL, false))
        die("forward descriptor");
    if (kind == 0) {
        pd = fpd;
    } else {
        dnnl_status_t st = kind == 1 ? dnnl_convolution_backward_data_desc_init(&bdesc, dnnl_convolution_direct, &xa,
                                                                                &wa, &ya, s, p, p)
                                     : dnnl_convolution_backward_weights_desc_init(&bdesc, dnnl_convolution_direct, &xa,
                                                                                   &wa, NULL, &ya, s, p, p);
        if (po__dnnl_check(st, "backward") || po__dnnl_pd(&pd, &bdesc, fpd, false)) die("backward descriptor");
        dnnl_primitive_desc_destroy(fpd);
    }
    size_t nx = (size_t)(xd[0] * xd[1] * xd[2] * xd[3]), nw = (size_t)(wd[0] * wd[1] * wd[2] * wd[3]);
    size_t ny = (size_t)(yd[0] * yd[1] * yd[2] * yd[3]);
    float *X = po_aligned_calloc(nx * 4), *W = po_aligned_calloc(nw * 4), *B = po_aligned_calloc((size_t)l->o * 4);
    float *Y = po_aligned_calloc(ny * 4);
    for (size_t i = 0; i < nx; i++)
        X[i] = (float)(i % 13) * 0.01f;
    for (size_t i = 0; i < nw; i++)
        W[i] = (float)(i % 7) * 0.01f;
    for (size_t i = 0; i < ny; i++)
        Y[i] = (float)(i % 11) * 0.01f;
    po_dnnl_arg_spec spec[4];
    void *bufs[4];
    int n = 0;
    if (kind == 0) {
        spec[n] = (po_dnnl_arg_spec){DNNL_ARG_SRC, x, false}, bufs[n++] = X;
        spec[n] = (po_dnnl_arg_spec){DNNL_ARG_WEIGHTS, w, false}, bufs[n++] = W;
        spec[n] = (po_dnnl_arg_spec){DNNL_ARG_BIAS, b, false}, bufs[n++] = B;
        spec[n] = (po_dnnl_arg_spec){DNNL_ARG_DST, y, true}, bufs[n++] = Y;
    } else if (kind == 1) {
        spec[n] = (po_dnnl_arg_spec){DNNL_ARG_DIFF_DST, y, false}, bufs[n++] = Y;
        spec[n] = (po_dnnl_arg_spec){DNNL_ARG_WEIGHTS, w, false}, bufs[n++] = W;
        spec[n] = (po_dnnl_arg_spec){DNNL_ARG_DIFF_SRC, x, true}, bufs[n++] = X;
    } else {
        spec[n] = (po_dnnl_arg_spec){DNNL_ARG_DIFF_DST, y, false}, bufs[n++] = Y;
        spec[n] = (po_dnnl_arg_spec){DNNL_ARG_SRC, x, false}, bufs[n++] = X;
        spec[n] = (po_dnnl_arg_spec){DNNL_ARG_DIFF_WEIGHTS, w, true}, bufs[n++] = W;
    }
    po_dnnl_prim prim;
    if (po__dnnl_prim_init(&prim, pd, n, spec, 0)) die("primitive");
    dnnl_primitive_desc_destroy(pd);
    snprintf(impl, impl_size, "%s", prim.impl);
    double t = time_prim(&prim, bufs, NULL, iters);
    po__dnnl_prim_free(&prim);
    po_aligned_free(X), po_aligned_free(W), po_aligned_free(B), po_aligned_free(Y);
    return t;
}

static void compare_layouts(int iters) {
    static const char *kinds[] = {"forward", "backward data", "backward weights"};
    printf("oneDNN on plain nchw/oihw vs format_tag_any + reorders (best ms of the runs, one "
           "thread)\n");
    for (int li = 0; li < 2; li++)
        for (int k = 0; k < 3; k++) {
            char ip[48], ia[48];
            double tp = time_kind(&layers[li], k, false, iters, ip, sizeof ip);
            double ta = time_kind(&layers[li], k, true, iters, ia, sizeof ia);
            printf("  %-20s %-16s plain %7.3f (%-12s)  any %7.3f (%-9s)  plain/any %.2fx\n", layers[li].name, kinds[k],
                   tp, ip, ta, ia, tp / ta);
        }
}

/* conv - relu - pool - conv - relu - pool, loss sum(y * R); per-op totals over the runs. */
static void time_graph(int iters) {
    po_graph *g = po_graph_new();
    const layer *l1 = &layers[0], *l2 = &layers[1];
    po_node *x = po_input(g, "x", PO_F32, PO_SHAPE(l1->n, l1->c, l1->h, l1->w));
    po_conv2d_opts o = {1, 1, 1, 1};
    po_node *w1 = po_param(g, "w1", PO_SHAPE(l1->o, l1->c, 3, 3), po_init_uniform_fan_in(27));
    po_node *b1 = po_param(g, "b1", PO_SHAPE(l1->o), po_init_uniform_fan_in(27));
    po_node *w2 = po_param(g, "w2", PO_SHAPE(l2->o, l2->c, 3, 3), po_init_uniform_fan_in(288));
    po_node *b2 = po_param(g, "b2", PO_SHAPE(l2->o), po_init_uniform_fan_in(288));
    po_node *h = po_max_pool2d(g, po_relu(g, po_conv2d(g, x, w1, b1, o)), 2, 2, 0);
    h = po_max_pool2d(g, po_relu(g, po_conv2d(g, h, w2, b2, o)), 2, 2, 0);
    po_node *R = po_input(g, "R", PO_F32, po_node_shape(h));
    if (po_graph_backward(g, po_sum_to(g, po_mul(g, h, R), po_shape_make(0, NULL)))) die("graph");
    po_params *p;
    po_exec *ex;
    if (po_params_new(g, &p)) die("params");
    po_params_init(p, 1);
    if (po_exec_new(g, p, &ex)) die("executor");
    float *xv = po_exec_input_data(ex, x), *rv = po_exec_input_data(ex, R);
    for (int64_t i = 0; i < 64 * 3 * 32 * 32; i++)
        xv[i] = sinf((float)i);
    for (int64_t i = 0; i < 64 * 64 * 8 * 8; i++)
        rv[i] = cosf((float)i);
    for (int i = 0; i < 3; i++)
        if (po_exec_run(ex)) die("run");
    po_exec_set_profiling(ex, true);
    int nn = po_graph_size(g);
    double *node_best = malloc(sizeof(double) * (size_t)nn), best = 1e30;
    for (int i = 0; i < nn; i++)
        node_best[i] = 1e30;
    for (int r = 0; r < iters; r++) {
        po_exec_reset_profile(ex);
        double t0 = now_s();
        if (po_exec_run(ex)) die("run");
        double t = now_s() - t0;
        if (t < best) best = t;
        for (int i = 0; i < nn; i++)
            node_best[i] = fmin(node_best[i], po_exec_node_seconds(ex, po_graph_node(g, i)));
    }
    printf("\ngraph conv-relu-pool x2, batch 64, forward+backward (best ms of %d runs)\n", iters);
    double conv_total = 0.0, pool_total = 0.0;
    for (int i = 0; i < nn; i++) {
        po_node *n = po_graph_node(g, i);
        po_op op = po_node_op(n);
        double ms = node_best[i] * 1e3;
        bool conv = op >= PO_OP_CONV2D && op <= PO_OP_CONV2D_GRAD_BIAS;
        bool pool = op == PO_OP_MAX_POOL2D || op == PO_OP_MAX_POOL2D_GRAD;
        if (!conv && !pool && ms < 0.05) continue;
        po_op_cost c = {0};
        if (po__op_def(op)->cost) po__op_def(op)->cost(n, &c);
        printf("  node %2d %-20s %7.3f ms  %6.1f GFLOP/s\n", i, po_op_name(op), ms, c.flops / (ms * 1e6));
        if (conv) conv_total += ms;
        if (pool) pool_total += ms;
    }
    printf("  conv family %.3f ms, pool family %.3f ms, whole run %.3f ms\n", conv_total, pool_total, best * 1e3);
    free(node_best);
    po_exec_free(ex);
    po_params_free(p);
    po_graph_free(g);
}

int main(int argc, char **argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 20;
    if (iters < 1) iters = 1;
    omp_set_num_threads(1);
    compare_layouts(iters);
    time_graph(iters);
    return 0;
}
