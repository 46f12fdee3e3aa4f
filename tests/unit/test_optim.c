/* Optimizers against naive double-precision implementations of PyTorch's update rules
 * (torch/optim/sgd.py, adam.py, adamw.py, single-tensor path), over several steps of a loss
 * whose gradient changes with the parameters: L = sum(c * p * p), dL/dp = 2 c p. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "po_test.h"

#define N     37
#define STEPS 6

typedef struct {
    double p[N], c[N], buf[N], m[N], v[N];
} naive_state;

static void naive_step(naive_state *s, const po_optim_opts *o, int t) {
    for (int i = 0; i < N; i++) {
        double g = 2.0 * s->c[i] * s->p[i], p = s->p[i];
        if (o->kind == PO_OPTIM_SGD) {
            if (o->weight_decay) g += o->weight_decay * p;
            if (o->momentum) {
                s->buf[i] = t == 1 ? g : o->momentum * s->buf[i] + (1.0 - o->dampening) * g;
                g = o->nesterov ? g + o->momentum * s->buf[i] : s->buf[i];
            }
            s->p[i] = p - o->lr * g;
            continue;
        }
        if (o->kind == PO_OPTIM_ADAMW)
            p *= 1.0 - (double)o->lr * o->weight_decay;
        else
            g += o->weight_decay * p;
        s->m[i] = o->beta1 * s->m[i] + (1.0 - o->beta1) * g;
        s->v[i] = o->beta2 * s->v[i] + (1.0 - o->beta2) * g * g;
        double bc1 = 1.0 - pow(o->beta1, t), bc2 = 1.0 - pow(o->beta2, t);
        s->p[i] = p - o->lr / bc1 * s->m[i] / (sqrt(s->v[i]) / sqrt(bc2) + o->eps);
    }
}

static void check(const po_optim_opts *o, float lr_scale) {
    po_graph *g = po_graph_new();
    po_node *p = po_param(g, "p", PO_SHAPE(N), (po_init){PO_INIT_ZEROS, 0});
    po_node *c = po_input(g, "c", PO_F32, PO_SHAPE(N));
    po_node *loss = po_sum_to(g, po_mul(g, po_mul(g, p, p), c), po_shape_make(0, NULL));
    PO_CHECK(po_graph_backward(g, loss));
    PO_CHECK(po_graph_add_optimizer(g, o));
    po_params *params;
    po_exec *ex;
    PO_CHECK(po_params_new(g, &params));
    PO_CHECK(po_exec_new(g, params, &ex));
    po_exec_set_lr_scale(ex, lr_scale);
    naive_state s;
    memset(&s, 0, sizeof s);
    float *pv = po_params_values(params), *cv = po_exec_input_data(ex, c);
    po_test_fill_uniform(pv, N, -2.0f, 2.0f, 11);
    po_test_fill_uniform(cv, N, 0.1f, 1.5f, 12);
    for (int i = 0; i < N; i++) {
        s.p[i] = pv[i];
        s.c[i] = cv[i];
    }
    po_optim_opts scaled = *o;
    scaled.lr = o->lr * lr_scale;
    for (int t = 1; t <= STEPS; t++) {
        PO_CHECK(po_exec_run(ex));
        naive_step(&s, &scaled, t);
        assert_int_equal(po_exec_steps(ex), t);
    }
    double worst = 0.0;
    for (int i = 0; i < N; i++)
        worst = fmax(worst, fabs(pv[i] - s.p[i]) / fmax(fabs(s.p[i]), 1e-2));
    print_message("%s: max relative error %.3g after %d steps\n", po_optim_kind_name(o->kind), worst, STEPS);
    assert_true(worst < 2e-5);
    assert_int_equal(po_params_state_slots(params), o->kind == PO_OPTIM_SGD ? (o->momentum > 0 ? 1 : 0) : 2);
    po_exec_free(ex);
    po_params_free(params);
    po_graph_free(g);
}

static void sgd_plain(void **st) {
    (void)st;
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_SGD);
    o.lr = 0.1f;
    check(&o, 1.0f);
}

static void sgd_momentum_dampening_decay(void **st) {
    (void)st;
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_SGD);
    o.lr = 0.05f;
    o.momentum = 0.9f;
    check(&o, 1.0f);
    o.dampening = 0.5f;
    o.weight_decay = 0.01f;
    check(&o, 1.0f);
}

static void sgd_nesterov(void **st) {
    (void)st;
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_SGD);
    o.lr = 0.05f;
    o.momentum = 0.8f;
    o.nesterov = true;
    check(&o, 1.0f);
}

static void adam(void **st) {
    (void)st;
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
    o.lr = 0.01f;
    check(&o, 1.0f);
    o.weight_decay = 0.1f;
    o.beta1 = 0.8f;
    o.beta2 = 0.99f;
    check(&o, 1.0f);
}

static void adamw_and_lr_scale(void **st) {
    (void)st;
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAMW);
    o.lr = 0.02f;
    assert_true(o.weight_decay == 1e-2f);
    check(&o, 1.0f);
    check(&o, 0.5f);
}

static void bad_options(void **st) {
    (void)st;
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_SGD);
    o.lr = -1.0f;
    assert_int_equal(po_optim_opts_check(&o), PO_ERR_INVALID_ARG);
    o = po_optim_opts_default(PO_OPTIM_SGD);
    o.nesterov = true; /* without momentum */
    assert_int_equal(po_optim_opts_check(&o), PO_ERR_INVALID_ARG);
    o = po_optim_opts_default(PO_OPTIM_ADAM);
    o.beta2 = 1.0f;
    assert_int_equal(po_optim_opts_check(&o), PO_ERR_INVALID_ARG);
    o = po_optim_opts_default(PO_OPTIM_ADAM);
    o.eps = 0.0f;
    assert_int_equal(po_optim_opts_check(&o), PO_ERR_INVALID_ARG);
    po_optim_kind k;
    assert_int_equal(po_optim_kind_parse("adamw", &k), PO_OK);
    assert_int_equal(k, PO_OPTIM_ADAMW);
    assert_int_equal(po_optim_kind_parse("lion", &k), PO_ERR_INVALID_ARG);
    /* An optimizer needs the backward pass first, and only one per graph. */
    po_graph *g = po_graph_new();
    po_node *p = po_param(g, "p", PO_SHAPE(3), (po_init){PO_INIT_ONES, 0});
    po_node *loss = po_sum_to(g, p, po_shape_make(0, NULL));
    o = po_optim_opts_default(PO_OPTIM_ADAM);
    assert_int_not_equal(po_graph_add_optimizer(g, &o), PO_OK);
    po_graph_free(g);
    g = po_graph_new();
    p = po_param(g, "p", PO_SHAPE(3), (po_init){PO_INIT_ONES, 0});
    loss = po_sum_to(g, p, po_shape_make(0, NULL));
    PO_CHECK(po_graph_backward(g, loss));
    PO_CHECK(po_graph_add_optimizer(g, &o));
    assert_int_not_equal(po_graph_add_optimizer(g, &o), PO_OK);
    po_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sgd_plain), cmocka_unit_test(sgd_momentum_dampening_decay), cmocka_unit_test(sgd_nesterov),
        cmocka_unit_test(adam),      cmocka_unit_test(adamw_and_lr_scale),           cmocka_unit_test(bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
