/* Graph construction, autodiff structure and the memory plan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "graph/memplan.h"
#include "po_test.h"

static po_node *scalar_sum(po_graph *g, po_node *x) { return po_sum_to(g, x, po_shape_make(0, NULL)); }

static void errors_are_sticky_and_null_propagates(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *a = po_input(g, "a", PO_F32, PO_SHAPE(2, 3));
    po_node *b = po_input(g, "b", PO_F32, PO_SHAPE(4, 5));
    assert_int_equal(po_graph_status(g), PO_OK);
    assert_null(po_matmul(g, a, b, false, false)); /* inner dims 3 vs 4 */
    assert_int_equal(po_graph_status(g), PO_ERR_SHAPE);
    assert_non_null(strstr(po_graph_error(g), "matmul"));
    char first[256];
    strcpy(first, po_graph_error(g));
    assert_null(po_relu(g, NULL)); /* NULL input: no new error */
    assert_null(po_add(g, a, b));  /* later errors do not replace the first */
    assert_string_equal(po_graph_error(g), first);
    assert_int_not_equal(po_graph_backward(g, a), PO_OK);
    po_graph_free(g);
}

static void scopes_layers_and_duplicate_names(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_graph_set_layer(g, "blocks.0");
    po_graph_push_scope(g, "blocks.0");
    po_graph_push_scope(g, "qkv");
    po_node *w = po_param(g, "weight", PO_SHAPE(2, 2), (po_init){PO_INIT_ONES, 0});
    po_graph_pop_scope(g);
    po_graph_pop_scope(g);
    assert_string_equal(po_node_name(w), "blocks.0.qkv.weight");
    assert_ptr_equal(po_graph_find_param(g, "blocks.0.qkv.weight"), w);
    assert_int_equal(po_graph_n_layers(g), 1);
    assert_string_equal(po_graph_layer_name(g, po_node_layer(w)), "blocks.0");
    po_graph_set_layer(g, NULL);
    po_node *x = po_input(g, "x", PO_F32, PO_SHAPE(2));
    assert_int_equal(po_node_layer(x), -1);
    assert_null(po_param(g, "blocks.0.qkv.weight", PO_SHAPE(1), (po_init){PO_INIT_ONES, 0}));
    assert_int_equal(po_graph_status(g), PO_ERR_INVALID_ARG);
    po_graph_free(g);
}

/* A parameter used twice gets the sum of both contributions; an unused one gets zeros; every
 * backward node is marked as such and inherits the layer of the node it differentiates. */
static void gradients_accumulate_and_phases(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_graph_set_layer(g, "only");
    po_node *p = po_param(g, "p", PO_SHAPE(4), (po_init){PO_INIT_ZEROS, 0});
    po_node *unused = po_param(g, "unused", PO_SHAPE(3), (po_init){PO_INIT_ONES, 0});
    po_node *x = po_input(g, "x", PO_F32, PO_SHAPE(4));
    /* L = sum(p * x) + sum(3 p)  ->  dL/dp = x + 3 */
    po_node *loss = po_add(g, scalar_sum(g, po_mul(g, p, x)), scalar_sum(g, po_scale(g, p, 3.0f)));
    int n_forward = po_graph_size(g);
    PO_CHECK(po_graph_backward(g, loss));
    for (int i = n_forward; i < po_graph_size(g); i++) {
        assert_int_equal(po_node_phase(po_graph_node(g, i)), PO_PHASE_BACKWARD);
        assert_int_equal(po_node_layer(po_graph_node(g, i)), po_node_layer(p));
    }
    po_test_run r;
    po_test_run_new(g, 1, &r);
    float *xv = po_exec_input_data(r.exec, x);
    for (int i = 0; i < 4; i++)
        xv[i] = (float)i - 1.5f;
    PO_CHECK(po_exec_run(r.exec));
    float *gp = po_test_grad(&r, "p"), *gu = po_test_grad(&r, "unused");
    for (int i = 0; i < 4; i++)
        assert_float_equal(gp[i], xv[i] + 3.0f, 1e-6);
    for (int i = 0; i < 3; i++)
        assert_float_equal(gu[i], 0.0f, 0.0);
    assert_ptr_equal(po_exec_output(r.exec, po_node_grad(p)), gp);
    /* The loss is kept; an intermediate is not readable after the run. */
    assert_non_null(po_exec_output(r.exec, loss));
    po_test_run_free(&r);
    (void)unused;
    po_graph_free(g);
}

/* Brute force over all pairs: arena buffers that are live at the same time never overlap. */
static void check_plan(const po_graph *g) {
    po_memplan mp;
    PO_CHECK(po_memplan_build(g, &mp));
    int n = po_graph_size(g);
    size_t sum = 0;
    for (int i = 0; i < n; i++) {
        const po_node *a = po_graph_node(g, i);
        size_t offs[2] = {mp.out_offset[i], mp.aux_offset[i]};
        size_t sizes[2] = {po__nbytes(a), a->aux_bytes};
        for (int u = 0; u < 2; u++) {
            if (offs[u] == PO_NO_OFFSET) continue;
            sum += sizes[u];
            assert_true(offs[u] + sizes[u] <= mp.arena_bytes);
            for (int j = i; j < n; j++) {
                const po_node *b = po_graph_node(g, j);
                size_t offs2[2] = {mp.out_offset[j], mp.aux_offset[j]};
                size_t sizes2[2] = {po__nbytes(b), b->aux_bytes};
                for (int w = 0; w < 2; w++) {
                    if (offs2[w] == PO_NO_OFFSET || (i == j && w <= u)) continue;
                    bool live_together = !(mp.last_use[i] < j || mp.last_use[j] < i);
                    bool overlap = offs[u] < offs2[w] + sizes2[w] && offs2[w] < offs[u] + sizes[u];
                    if (live_together && overlap) fail_msg("nodes %d and %d share bytes while both live", i, j);
                }
            }
        }
    }
    print_message("arena %zu bytes for %zu bytes of buffers (%.1f%%)\n", mp.arena_bytes, sum,
                  100.0 * (double)mp.arena_bytes / (double)sum);
    assert_true(mp.arena_bytes <= sum);
    po_memplan_free(&mp);
}

static void memory_plan_never_overlaps_live_buffers(void **st) {
    (void)st;
    const char *specs[] = {"mnist_mlp:d_in=20,hidden=16,batch=4",
                           "tiny_gpt:vocab=32,d_model=16,layers=2,heads=2,seq=8,batch=2",
                           "cifar_cnn:c1=4,c2=4,hidden=8,batch=2,image=3x8x8"};
    for (int s = 0; s < 3; s++) {
        po_model *m;
        PO_CHECK(po_model_build(specs[s], 0, &m));
        po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
        PO_CHECK(po_graph_backward(m->graph, m->loss));
        PO_CHECK(po_graph_add_optimizer(m->graph, &o));
        check_plan(m->graph);
        po_model_free(m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(errors_are_sticky_and_null_propagates),
        cmocka_unit_test(scopes_layers_and_duplicate_names),
        cmocka_unit_test(gradients_accumulate_and_phases),
        cmocka_unit_test(memory_plan_never_overlaps_live_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
