/* Gradient buckets of the data-parallel all-reduce, for the three reference models at several
 * worker counts: together they cover every parameter's gradient exactly once; they come in the
 * order the backward pass finishes them; a bucket is announced only after every node that
 * writes a gradient inside it has run (checked against the graph itself: each node whose output
 * is a gradient buffer); none is larger than the size limit unless one parameter is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "graph/memplan.h"
#include "graph/node.h"
#include "po_test.h"
#include "runtime/dp_buckets.h"

static void check_model(const char *spec, int workers) {
    po_model *m;
    PO_CHECK(po_model_build(spec, 0, &m));
    po_graph *g = m->graph;
    PO_CHECK(po_graph_backward(g, m->loss));
    po_params *p;
    PO_CHECK(po_params_new(g, &p));
    po_dp_buckets bk;
    PO_CHECK(po__dp_buckets_plan(g, p, workers, &bk));
    size_t total = po_params_total(p);
    /* every float of every parameter in exactly one bucket */
    int *owner = malloc(total * sizeof *owner);
    for (size_t e = 0; e < total; e++)
        owner[e] = -1;
    for (int b = 0; b < bk.n; b++) {
        assert_true(bk.b[b].begin < bk.b[b].end && bk.b[b].end <= total);
        if (b) assert_true(bk.b[b].cut >= bk.b[b - 1].cut);
        assert_true(bk.b[b].cut >= 0 && bk.b[b].cut <= bk.n_bwd);
        for (size_t e = bk.b[b].begin; e < bk.b[b].end; e++) {
            assert_int_equal(owner[e], -1);
            owner[e] = b;
        }
    }
    size_t biggest = 0;
    for (int i = 0; i < po_params_count(p); i++) {
        const po_param_info *pi = po_params_info(p, i);
        if ((size_t)pi->numel > biggest) biggest = (size_t)pi->numel;
        for (int64_t e = 0; e < pi->numel; e++)
            assert_true(owner[pi->offset + (size_t)e] >= 0);
    }
    /* the backward list is exactly the backward nodes, in graph order */
    int nb = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->phase == PO_PHASE_BACKWARD) {
            assert_true(nb < bk.n_bwd);
            assert_int_equal(bk.bwd[nb++], i);
        }
    assert_int_equal(nb, bk.n_bwd);
    /* every node writing into a parameter's gradient runs before that bucket's cut */
    for (int k = 0; k < bk.n_bwd; k++) {
        const po_node *n = g->nodes[bk.bwd[k]];
        for (int i = 0; i < g->n_params; i++) {
            if (po__storage_root(n) != g->params[i]->grad) continue;
            const po_param_info *pi = po_params_info(p, i);
            for (int64_t e = 0; e < pi->numel; e++)
                assert_true(bk.b[owner[pi->offset + (size_t)e]].cut > k);
        }
    }
    size_t limit = total / (size_t)(4 * workers);
    if (limit < 16384) limit = 16384;
    for (int b = 0; b < bk.n; b++)
        assert_true(bk.b[b].end - bk.b[b].begin <= (limit > biggest ? limit : biggest) + 16);
    print_message("%-40s %d workers: %d buckets over %zu floats, %d backward nodes\n", spec, workers, bk.n, total,
                  bk.n_bwd);
    assert_true(bk.n >= 1);
    free(owner);
    po__dp_buckets_free(&bk);
    po_params_free(p);
    po_model_free(m);
}

static void reference_models(void **st) {
    (void)st;
    static const char *const specs[] = {"mnist_mlp", "cifar_cnn", "tiny_gpt", "tiny_gpt:layers=3,d_model=48,heads=6",
                                         "tiny_gpt:vocab=32,d_model=16,layers=1,heads=2,seq=16"};
    static const int workers[] = {1, 2, 8};
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++)
        for (size_t w = 0; w < sizeof workers / sizeof *workers; w++)
            check_model(specs[s], workers[w]);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(reference_models)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
