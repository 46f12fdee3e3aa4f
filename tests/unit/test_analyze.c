/* po_analysis: totals, per-layer figures, dependencies (with write-after-read edges for in-place
 * updates), levels, the critical path, overlap queries, liveness memory and the DOT drawing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "po_test.h"

static po_node *param(po_graph *g, const char *name, po_shape s) {
    return po_param(g, name, s, (po_init){PO_INIT_ONES, 0});
}

static po_model *training_model(const char *spec, int64_t batch, po_optim_opts o) {
    po_model *m;
    PO_CHECK(po_model_build(spec, batch, &m));
    PO_CHECK(po_graph_backward(m->graph, m->loss));
    PO_CHECK(po_graph_add_optimizer(m->graph, &o));
    return m;
}

static bool has_dep(const po_analysis *a, int from, int to) {
    for (int e = 0; e < po_analysis_n_deps(a); e++)
        if (po_analysis_dep(a, e)->from == from && po_analysis_dep(a, e)->to == to) return true;
    return false;
}

/* The acceptance figure: mnist_mlp at batch 128 counts its three GEMMs as
 * 2 * 128 * (784 * 1024 + 1024 * 1024 + 1024 * 10), plus the bias additions (one per output),
 * ReLU (one per element) and the loss (14 per logit). Backward runs two GEMMs per layer except
 * the first (no gradient for the input), and Adam 12 FLOPs per parameter. */
static void mnist_mlp_batch_128_totals(void **st) {
    (void)st;
    po_model *m = training_model("mnist_mlp", 128, po_optim_opts_default(PO_OPTIM_ADAM));
    po_analysis *a;
    PO_CHECK(po_analysis_new(m->graph, &a));
    const po_totals *t = po_analysis_totals(a);
    double B = 128, gemm = 2 * B * (784.0 * 1024 + 1024.0 * 1024 + 1024.0 * 10);
    double fwd = gemm + B * (1024 + 1024 + 10) + 2 * B * 1024 + 14 * B * 10;
    assert_true(t->flops_forward == fwd);
    double bwd = (B * 10 + B)                           /* cross_entropy_grad */
                 + 2 * (2 * B * 10 * 1024) + B * 10     /* l3: dX, dW, db */
                 + B * 1024                             /* relu_grad */
                 + 2 * (2 * B * 1024 * 1024) + B * 1024 /* l2 */
                 + B * 1024                             /* relu_grad */
                 + 2 * B * 784 * 1024 + B * 1024;       /* l1: dW, db */
    assert_true(t->flops_backward == bwd);
    double params = 784.0 * 1024 + 1024 + 1024.0 * 1024 + 1024 + 1024.0 * 10 + 10;
    assert_true((double)t->params == params);
    assert_true(t->flops_optimizer == 12 * params);
    assert_true(t->flops == fwd + bwd + 12 * params);
    /* Layers add up to the totals; l1 holds the first Linear. */
    const po_layer_info *l1 = po_analysis_layer(a, 0);
    assert_string_equal(l1->name, "l1");
    assert_int_equal(l1->params, 784 * 1024 + 1024);
    assert_true(l1->flops_forward == 2 * B * 784 * 1024 + B * 1024 + B * 1024);
    double f = 0, b = 0, o = 0;
    int64_t p = 0;
    size_t pb = 0, sb = 0;
    for (int l = -1; l < po_graph_n_layers(m->graph); l++) {
        const po_layer_info *L = po_analysis_layer(a, l);
        f += L->flops_forward, b += L->flops_backward, o += L->flops_optimizer;
        p += L->params, pb += L->param_bytes, sb += L->optim_state_bytes;
    }
    assert_true(f == t->flops_forward && b == t->flops_backward && o == t->flops_optimizer);
    assert_int_equal(p, t->params);
    assert_int_equal(pb, t->param_bytes);
    assert_int_equal(sb, 2 * t->param_bytes); /* Adam: two moments */
    assert_null(po_analysis_layer(a, po_graph_n_layers(m->graph)));
    assert_null(po_analysis_layer(a, -2));
    po_analysis_free(a);
    po_model_free(m);
}

/* x -> mm1 -> mm2 -> add, and x -> relu -> add: the heavy branch is the critical path. */
static void diamond_levels_critical_path_and_overlap(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *p1 = param(g, "p1", PO_SHAPE(8, 8)), *p2 = param(g, "p2", PO_SHAPE(8, 8));
    po_node *x = po_input(g, "x", PO_F32, PO_SHAPE(4, 8));
    po_node *mm1 = po_matmul(g, x, p1, false, false); /* 512 FLOPs */
    po_node *mm2 = po_matmul(g, mm1, p2, false, false);
    po_node *r = po_relu(g, x); /* 32 */
    po_node *s = po_add(g, mm2, r);
    po_analysis *a;
    PO_CHECK(po_analysis_new(g, &a));
    assert_int_equal(po_analysis_n_deps(a), 7);
    assert_true(has_dep(a, po_node_id(x), po_node_id(mm1)) && has_dep(a, po_node_id(p1), po_node_id(mm1)) &&
                has_dep(a, po_node_id(mm2), po_node_id(s)));
    assert_int_equal(po_analysis_node(a, po_node_id(x))->level, 0);
    assert_int_equal(po_analysis_node(a, po_node_id(mm1))->level, 1);
    assert_int_equal(po_analysis_node(a, po_node_id(r))->level, 1);
    assert_int_equal(po_analysis_node(a, po_node_id(mm2))->level, 2);
    assert_int_equal(po_analysis_node(a, po_node_id(s))->level, 3);
    assert_int_equal(po_analysis_n_levels(a), 4);
    const int *ids;
    assert_int_equal(po_analysis_level(a, 1, &ids), 2);
    assert_int_equal(ids[0], po_node_id(mm1));
    assert_int_equal(ids[1], po_node_id(r));
    assert_int_equal(po_analysis_level(a, 4, &ids), 0);
    assert_int_equal(po_analysis_totals(a)->max_level_width, 3);

    double cp;
    int len = po_analysis_critical_path(a, &ids, &cp);
    assert_true(cp == 512 + 512 + 32);
    assert_int_equal(len, 4);
    int want[4] = {po_node_id(x), po_node_id(mm1), po_node_id(mm2),
                   po_node_id(s)}; /* x: the first input wins the tie with p1 */
    for (int k = 0; k < 4; k++)
        assert_int_equal(ids[k], want[k]);
    assert_true(po_analysis_node(a, po_node_id(mm1))->critical && !po_analysis_node(a, po_node_id(r))->critical);
    assert_true(po_analysis_node(a, po_node_id(mm2))->slack == 0);
    assert_true(po_analysis_node(a, po_node_id(r))->slack == cp - (32 + 32));
    assert_true(po_analysis_node(a, po_node_id(r))->flops_to == 32 &&
                po_analysis_node(a, po_node_id(r))->flops_from == 64);

    assert_true(po_analysis_may_overlap(a, po_node_id(r), po_node_id(mm1)));
    assert_true(po_analysis_may_overlap(a, po_node_id(mm2), po_node_id(r))); /* different levels, still independent */
    assert_false(po_analysis_may_overlap(a, po_node_id(mm1), po_node_id(s)));
    assert_false(po_analysis_may_overlap(a, po_node_id(s), po_node_id(x)));
    assert_false(po_analysis_may_overlap(a, po_node_id(r), po_node_id(r)));
    assert_false(po_analysis_may_overlap(a, -1, po_node_id(r)));
    assert_null(po_analysis_node(a, po_graph_size(g)));
    po_analysis_free(a);
    po_graph_free(g);
}

/* True when node `from` reaches node `to` along dependencies (a plain search). */
static bool reaches(const po_analysis *a, int from, int to) {
    if (from == to) return true;
    for (int e = 0; e < po_analysis_n_deps(a); e++) {
        const po_dep *d = po_analysis_dep(a, e);
        if (d->from == from && reaches(a, d->to, to)) return true;
    }
    return false;
}

/* An update overwrites its parameter in place, so it waits for every node that reads it — the
 * backward products that read a weight included — and the levels, the critical path and the
 * overlap queries respect that. */
static void updates_wait_for_every_reader(void **st) {
    (void)st;
    po_model *m = training_model("mnist_mlp:d_in=12,hidden=8,classes=3", 4, po_optim_opts_default(PO_OPTIM_SGD));
    const po_graph *g = m->graph;
    po_analysis *a;
    PO_CHECK(po_analysis_new(g, &a));
    int war = 0, updates = 0;
    for (int e = 0; e < po_analysis_n_deps(a); e++) {
        const po_dep *d = po_analysis_dep(a, e);
        assert_true(d->from < d->to);
        assert_true(po_analysis_node(a, d->to)->level > po_analysis_node(a, d->from)->level);
        if (e) { /* sorted by (to, from), no duplicates */
            const po_dep *p = po_analysis_dep(a, e - 1);
            assert_true(p->to < d->to || (p->to == d->to && p->from < d->from));
        }
        war += d->kind == PO_DEP_WAR;
    }
    for (int i = 0; i < po_graph_size(g); i++) {
        po_node *u = po_graph_node(g, i);
        if (po_node_op(u) != PO_OP_SGD_STEP) continue;
        updates++;
        po_node *p = po_node_input(u, 0);
        for (int j = 0; j < po_graph_size(g); j++) {
            po_node *r = po_graph_node(g, j);
            if (r == u) continue;
            for (int k = 0; k < po_node_n_inputs(r); k++)
                if (po_node_input(r, k) == p) {
                    assert_true(has_dep(a, j, i));
                    assert_false(po_analysis_may_overlap(a, j, i));
                }
        }
    }
    assert_int_equal(updates, 6);
    /* Readers other than the update itself: the forward Linear of each of the 6 parameters, and
     * the backward products for the input gradients of l2 and l3, which read their weights. */
    assert_int_equal(war, 6 + 2);
    /* Levels are antichains: no node of a level reaches another of the same level. */
    for (int l = 0; l < po_analysis_n_levels(a); l++) {
        const int *ids;
        int n = po_analysis_level(a, l, &ids);
        for (int x = 0; x < n; x++)
            for (int y = x + 1; y < n; y++) {
                assert_false(reaches(a, ids[x], ids[y]));
                assert_true(po_analysis_may_overlap(a, ids[x], ids[y]));
            }
    }
    /* may_overlap agrees with a plain search on every pair. */
    for (int i = 0; i < po_graph_size(g); i++)
        for (int j = i + 1; j < po_graph_size(g); j++)
            assert_int_equal(po_analysis_may_overlap(a, i, j), !reaches(a, i, j));
    /* The critical path is a chain of edges with its FLOPs, and no path through any node is
     * heavier. */
    const int *path;
    double cp, sum = 0;
    int len = po_analysis_critical_path(a, &path, &cp);
    for (int k = 0; k < len; k++) {
        sum += po_analysis_node(a, path[k])->flops;
        if (k) assert_true(has_dep(a, path[k - 1], path[k]));
        assert_true(po_analysis_node(a, path[k])->slack == 0);
    }
    assert_true(sum == cp && cp == po_analysis_totals(a)->critical_path_flops);
    for (int i = 0; i < po_graph_size(g); i++) {
        const po_node_info *r = po_analysis_node(a, i);
        assert_true(r->flops_to + r->flops_from - r->flops <= cp);
        assert_true(r->slack >= 0);
    }
    po_analysis_free(a);
    po_model_free(m);
}

/* relu chain x -> a -> b -> c (c kept): at most two buffers live at once, and the plan reuses a's
 * bytes for c. Per-node bytes and intensity follow po_node_cost. */
static void liveness_of_a_chain(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_graph_set_layer(g, "first");
    po_node *x = po_input(g, "x", PO_F32, PO_SHAPE(256));
    po_node *a1 = po_relu(g, x);
    po_graph_set_layer(g, "second");
    po_node *b = po_relu(g, a1);
    po_node *c = po_relu(g, b);
    po_node *p = param(g, "p", PO_SHAPE(10)); /* read by nobody */
    po_graph_keep(g, c);
    po_analysis *an;
    PO_CHECK(po_analysis_new(g, &an));
    const po_totals *t = po_analysis_totals(an);
    assert_int_equal(t->input_bytes, 1024);
    assert_int_equal(po_analysis_node(an, po_node_id(a1))->arena_bytes, 1024);
    assert_int_equal(po_analysis_node(an, po_node_id(a1))->live_until, po_node_id(b));
    assert_int_equal(po_analysis_node(an, po_node_id(c))->live_until, po_graph_size(g));
    assert_int_equal(po_analysis_node(an, po_node_id(x))->arena_bytes, 0);
    assert_int_equal(po_analysis_node(an, po_node_id(a1))->output_bytes, 1024);
    assert_true(po_analysis_node(an, po_node_id(a1))->intensity == 256.0 / 2048.0);
    assert_int_equal(po_analysis_node(an, po_node_id(p))->param_bytes, 40);
    assert_int_equal(t->live_peak_bytes, 2048);
    assert_int_equal(t->peak_node, po_node_id(b));
    /* At node b, a (layer first) and b (layer second) are live. */
    assert_int_equal(po_analysis_layer(an, 0)->activation_bytes, 1024);
    assert_int_equal(po_analysis_layer(an, 1)->activation_bytes, 1024);
    /* A 10-float parameter takes 16 floats in each po_params buffer; no optimizer, no state. */
    assert_int_equal(t->param_bytes, 64);
    assert_int_equal(t->grad_bytes, 64);
    assert_int_equal(t->optim_state_bytes, 0);
    assert_true(t->arena_bytes >= t->live_peak_bytes);
    assert_int_equal(t->peak_memory_bytes, 64 + 64 + 1024 + t->arena_bytes + t->scratch_bytes);
    assert_int_equal(t->peak_live_memory_bytes, 64 + 64 + 1024 + t->live_peak_bytes + t->scratch_bytes);
    po_analysis_free(an);
    po_graph_free(g);
}

static void rejects_a_failed_graph(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *a = po_input(g, "a", PO_F32, PO_SHAPE(2, 3));
    assert_null(po_matmul(g, a, a, false, false));
    po_analysis *an = (po_analysis *)1;
    assert_int_equal(po_analysis_new(g, &an), PO_ERR_INVALID_ARG);
    assert_null(an);
    assert_non_null(strstr(po_last_error(), "matmul"));
    po_analysis_free(NULL);
    po_graph_free(g);
}

/* The drawing: balanced braces, one cluster per layer, every node and edge, names escaped. */
static void dot_output_is_escaped_and_complete(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_graph_set_layer(g, "a \"quoted\" \\ layer\nname");
    po_node *x = po_input(g, "in\"put", PO_F32, PO_SHAPE(4, 8));
    po_node *w = param(g, "w", PO_SHAPE(3, 8));
    po_node *y = po_linear(g, x, w, NULL);
    po_graph_set_layer(g, "second");
    po_node *loss = po_sum_to(g, po_relu(g, y), po_shape_make(0, NULL));
    PO_CHECK(po_graph_backward(g, loss));
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
    PO_CHECK(po_graph_add_optimizer(g, &o));
    po_analysis *a;
    PO_CHECK(po_analysis_new(g, &a));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    PO_CHECK(po_analysis_write_dot(a, "title \"x\"", f));
    fclose(f);
    assert_true(strncmp(buf, "digraph paropt {", 16) == 0);
    assert_non_null(strstr(buf, "label=\"a \\\"quoted\\\" \\\\ layer name\""));
    assert_non_null(strstr(buf, "in\\\"put"));
    assert_non_null(strstr(buf, "label=\"title \\\"x\\\"\""));
    assert_non_null(strstr(buf, "subgraph cluster_0"));
    assert_non_null(strstr(buf, "subgraph cluster_1"));
    assert_non_null(strstr(buf, "style=dashed")); /* the update waits for the backward product */
    int depth = 0, quotes = 0, arrows = 0;
    for (const char *p = buf; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p == '"') quotes ^= 1;
        if (quotes) continue;
        depth += *p == '{' ? 1 : *p == '}' ? -1 : 0;
        assert_true(depth >= 0);
        if (p[0] == '-' && p[1] == '>') arrows++;
    }
    assert_int_equal(depth, 0);
    assert_int_equal(quotes, 0);
    assert_int_equal(arrows, po_analysis_n_deps(a) + 6); /* + the legend's invisible chain */
    for (int i = 0; i < po_graph_size(g); i++) {
        char want[32];
        snprintf(want, sizeof want, "  n%d [", i);
        assert_non_null(strstr(buf, want));
    }
    char col[32];
    assert_string_equal(po_analysis_intensity_color(0.01, col, sizeof col), "0.667 0.550 1.000");
    assert_string_equal(po_analysis_intensity_color(1000, col, sizeof col), "0.000 0.550 1.000");
    assert_string_equal(po_analysis_intensity_color(0, col, sizeof col), "0.000 0.000 0.900");
    free(buf);
    po_analysis_free(a);
    po_graph_free(g);
    (void)y;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mnist_mlp_batch_128_totals),    cmocka_unit_test(diamond_levels_critical_path_and_overlap),
        cmocka_unit_test(updates_wait_for_every_reader), cmocka_unit_test(liveness_of_a_chain),
        cmocka_unit_test(rejects_a_failed_graph),        cmocka_unit_test(dot_output_is_escaped_and_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
