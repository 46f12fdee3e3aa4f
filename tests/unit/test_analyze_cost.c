/* Every op's cost (po_node_cost) against closed-form FLOP and byte counts. A test per op family;
 * the last test fails when an op of PO_OP_LIST was checked by none, so a new op needs a formula
 * here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "po_test.h"

static bool checked[PO_OP_COUNT];

/* Asserts n's cost is exactly (flops, read, written): every count is a whole number. */
static void expect_cost(const po_node *n, double flops, double read, double written) {
    assert_non_null(n);
    po_cost c = po_node_cost(n);
    if (c.flops != flops || c.bytes_read != read || c.bytes_written != written)
        fail_msg("%s (node %d): got flops %.0f read %.0f written %.0f, want %.0f %.0f %.0f", po_op_name(po_node_op(n)),
                 po_node_id(n), c.flops, c.bytes_read, c.bytes_written, flops, read, written);
    checked[po_node_op(n)] = true;
}

/* The k-th node (0-based) of op in g, or NULL. */
static po_node *find_op(const po_graph *g, po_op op, int k) {
    for (int i = 0; i < po_graph_size(g); i++)
        if (po_node_op(po_graph_node(g, i)) == op && k-- == 0) return po_graph_node(g, i);
    return NULL;
}

static po_node *param(po_graph *g, const char *name, po_shape s) {
    return po_param(g, name, s, (po_init){PO_INIT_ONES, 0});
}

/* Adds backward to g for a scalar made from y (the sum of its elements). */
static void backward_of(po_graph *g, po_node *y) {
    PO_CHECK(po_graph_backward(g, po_sum_to(g, y, po_shape_make(0, NULL))));
}

static void leaves_and_views_cost_nothing(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *x = po_input(g, "x", PO_F32, PO_SHAPE(4, 6));
    po_node *p = param(g, "p", PO_SHAPE(6));
    expect_cost(x, 0, 0, 0);
    expect_cost(p, 0, 0, 0);
    expect_cost(po_reshape(g, x, PO_SHAPE(24)), 0, 0, 0);
    expect_cost(po_slice(g, x, 0, 1, 2), 0, 0, 0); /* leading-dim slice: a view */
    expect_cost(po_fill(g, PO_SHAPE(3, 5), 2.0f), 0, 0, 15 * 4);
    po_graph_free(g);
}

/* matmul: 2 M N K per batch index; reads both operands, writes the product. */
static void matmul_is_2mnk(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *a = param(g, "a", PO_SHAPE(3, 5, 7)), *b = param(g, "b", PO_SHAPE(3, 7, 4));
    expect_cost(po_matmul(g, a, b, false, false), 2.0 * 3 * 5 * 4 * 7, (105 + 84) * 4, 3 * 5 * 4 * 4);
    po_node *at = param(g, "at", PO_SHAPE(3, 7, 5)), *bt = param(g, "bt", PO_SHAPE(3, 4, 7));
    expect_cost(po_matmul(g, at, bt, true, true), 2.0 * 3 * 5 * 4 * 7, (105 + 84) * 4, 3 * 5 * 4 * 4);
    po_node *a3 = param(g, "a3", PO_SHAPE(2, 6, 8)), *shared = param(g, "shared", PO_SHAPE(8, 5));
    po_node *y = po_matmul(g, a3, shared, false, false);
    expect_cost(y, 2.0 * 2 * 6 * 5 * 8, (96 + 40) * 4, 60 * 4);
    /* Its gradients are matmuls too: dA = dY B^T (2 * 12 * 8 * 5), dB = A^T dY over all rows. */
    backward_of(g, y);
    po_node *n;
    po_shape da = PO_SHAPE(2, 6, 8), db = PO_SHAPE(8, 5);
    int found = 0;
    for (int k = 0; (n = find_op(g, PO_OP_MATMUL, k)); k++) {
        po_shape s = po_node_shape(n);
        if (po_shape_equal(&s, &da)) found++, expect_cost(n, 2.0 * 12 * 8 * 5, (60 + 40) * 4, 96 * 4);
        if (po_shape_equal(&s, &db)) found++, expect_cost(n, 2.0 * 8 * 5 * 12, (96 + 60) * 4, 40 * 4);
    }
    assert_int_equal(found, 2);
    po_graph_free(g);
}

/* linear: 2 rows in out, plus rows out bias additions; reads x, W and b. */
static void linear_is_2_rows_in_out_plus_bias(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *x = po_input(g, "x", PO_F32, PO_SHAPE(4, 3, 16));
    po_node *w = param(g, "w", PO_SHAPE(8, 16)), *b = param(g, "b", PO_SHAPE(8));
    double rows = 12;
    expect_cost(po_linear(g, x, w, b), 2 * rows * 16 * 8 + rows * 8, (rows * 16 + 8 * 16 + 8) * 4, rows * 8 * 4);
    expect_cost(po_linear(g, x, w, NULL), 2 * rows * 16 * 8, (rows * 16 + 8 * 16) * 4, rows * 8 * 4);
    po_graph_free(g);
}

/* conv2d: 2 N O OH OW C KH KW (+ N O OH OW for the bias); each backward op the same product. */
static void conv2d_is_2_n_o_oh_ow_c_kh_kw(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *x = param(g, "x", PO_SHAPE(2, 3, 9, 9));
    po_node *w = param(g, "w", PO_SHAPE(5, 3, 3, 3)), *b = param(g, "b", PO_SHAPE(5));
    po_conv2d_opts o = {2, 2, 1, 1};
    po_node *y = po_conv2d(g, x, w, b, o); /* OH = OW = (9 + 2 - 3) / 2 + 1 = 5 */
    double N = 2, C = 3, O = 5, OH = 5, OW = 5, K = 3, out = N * O * OH * OW, macs = out * C * K * K;
    double xb = 2 * 3 * 81 * 4, wb = 5 * 27 * 4, yb = out * 4;
    expect_cost(y, 2 * macs + out, xb + wb + 5 * 4, yb);
    backward_of(g, y);
    expect_cost(find_op(g, PO_OP_CONV2D_GRAD_INPUT, 0), 2 * macs, yb + wb, xb);
    expect_cost(find_op(g, PO_OP_CONV2D_GRAD_WEIGHT, 0), 2 * macs, yb + xb, wb);
    expect_cost(find_op(g, PO_OP_CONV2D_GRAD_BIAS, 0), out, yb, 5 * 4);
    po_graph_free(g);
}

/* max_pool2d: k^2 comparisons per output, writes outputs and int32 indices; the backward
 * scatters one value per output into a zeroed input gradient. */
static void max_pool2d_counts_comparisons(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *x = param(g, "x", PO_SHAPE(2, 3, 8, 8));
    po_node *y = po_max_pool2d(g, x, 2, 2, 0);
    double out = 2 * 3 * 4 * 4, in = 2 * 3 * 64;
    expect_cost(y, out * 4, in * 4, out * 4 + out * 4);
    backward_of(g, y);
    expect_cost(find_op(g, PO_OP_MAX_POOL2D_GRAD, 0), out, out * 4 + out * 4, in * 4);
    po_graph_free(g);
}

/* Element-wise ops: a fixed count per element (README legend), reading their inputs once. */
static void elementwise_counts_per_element(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *a = param(g, "a", PO_SHAPE(4, 6)), *b = param(g, "b", PO_SHAPE(6)), *c = param(g, "c", PO_SHAPE(4, 6));
    double e = 24, B = e * 4;
    po_node *r = po_relu(g, a), *ge = po_gelu(g, c);
    expect_cost(r, e, B, B);
    expect_cost(ge, 20 * e, B, B);
    expect_cost(po_add(g, a, b), e, B + 6 * 4, B);
    expect_cost(po_mul(g, a, b), e, B + 6 * 4, B);
    expect_cost(po_add(g, a, c), e, 2 * B, B);
    expect_cost(po_scale(g, a, 3.0f), e, B, B);
    expect_cost(po_sum_to(g, a, PO_SHAPE(6)), e, B, 6 * 4);
    backward_of(g, po_add(g, r, ge));
    expect_cost(find_op(g, PO_OP_RELU_GRAD, 0), e, 2 * B, B);
    expect_cost(find_op(g, PO_OP_GELU_GRAD, 0), 30 * e, 2 * B, B);
    po_graph_free(g);
}

/* layer_norm over D = 8 of 5 rows: 8 per element, reading x, w, b and writing y and the
 * rows' (mean, rstd); backward 10 per element for the input, 3 for the weight. */
static void layer_norm_and_softmax(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *x = param(g, "x", PO_SHAPE(5, 8)), *w = param(g, "w", PO_SHAPE(8)), *b = param(g, "b", PO_SHAPE(8));
    double e = 40, B = e * 4, stats = 5 * 2 * 4;
    po_node *y = po_layer_norm(g, x, w, b, 1e-5f);
    expect_cost(y, 8 * e, B + 2 * 8 * 4, B + stats);
    po_node *s = po_softmax(g, y);
    expect_cost(s, 14 * e, B, B);
    backward_of(g, s);
    expect_cost(find_op(g, PO_OP_SOFTMAX_GRAD, 0), 4 * e, 2 * B, B);
    expect_cost(find_op(g, PO_OP_LAYER_NORM_GRAD_INPUT, 0), 10 * e, 2 * B + 8 * 4 + stats, B);
    expect_cost(find_op(g, PO_OP_LAYER_NORM_GRAD_WEIGHT, 0), 3 * e, 2 * B + stats, 8 * 4);
    po_graph_free(g);
}

/* cross_entropy of 6 rows of 10 classes: 14 per logit, reading logits and I64 targets, writing
 * the saved probabilities and the loss; backward one multiply per logit and one subtraction per
 * row. embedding: a copy (no FLOPs); its backward one addition per gradient element. */
static void cross_entropy_and_embedding(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *ids = po_input(g, "ids", PO_I64, PO_SHAPE(2, 3));
    po_node *table = param(g, "table", PO_SHAPE(20, 10));
    po_node *t = po_input(g, "t", PO_I64, PO_SHAPE(2, 3));
    po_node *emb = po_embedding(g, ids, table);
    expect_cost(emb, 0, 60 * 4 + 6 * 8, 60 * 4);
    po_node *loss = po_cross_entropy(g, emb, t);
    expect_cost(loss, 14 * 60, 60 * 4 + 6 * 8, 60 * 4 + 4);
    PO_CHECK(po_graph_backward(g, loss));
    expect_cost(find_op(g, PO_OP_CROSS_ENTROPY_GRAD, 0), 60 + 6, 60 * 4 + 6 * 8 + 4, 60 * 4);
    expect_cost(find_op(g, PO_OP_EMBEDDING_GRAD, 0), 60, 60 * 4 + 6 * 8, 200 * 4);
    po_graph_free(g);
}

/* Causal attention, rows in blocks of 32 against the keys up to each block's last row: for
 * T = 32 q + r that is pairs = 32^2 q (q + 1) / 2 + r T (row, key) pairs per (batch, head).
 * Forward: Q K^T and P V (2 * 2 pairs hd) plus 6 per pair for the softmax; backward: four
 * products (8 pairs hd) plus 4 per pair. */
static double pairs_closed_form(double T) {
    double q = floor(T / 32), r = T - 32 * q;
    return 32.0 * 32.0 * q * (q + 1) / 2 + r * T;
}

static void attention_counts_the_causal_blocks(void **st) {
    (void)st;
    const int64_t Ts[] = {64, 40, 7};
    for (int i = 0; i < 3; i++) {
        po_graph *g = po_graph_new();
        int64_t Bn = 2, T = Ts[i], D = 32, H = 4, hd = D / H;
        po_node *qkv = param(g, "qkv", PO_SHAPE(Bn, T, 3 * D));
        po_node *y = po_causal_attention(g, qkv, (int)H);
        double bh = (double)(Bn * H), pairs = pairs_closed_form((double)T);
        double qkvb = (double)(Bn * T * 3 * D) * 4, yb = (double)(Bn * T * D) * 4, pb = bh * (double)(T * T) * 4;
        expect_cost(y, bh * (4 * pairs * hd + 6 * pairs), qkvb, yb + pb);
        backward_of(g, y);
        expect_cost(find_op(g, PO_OP_CAUSAL_ATTENTION_GRAD, 0), bh * (8 * pairs * hd + 4 * pairs), yb + qkvb + pb,
                    qkvb);
        po_graph_free(g);
    }
    assert_true(pairs_closed_form(64) == 64.0 * (64 + 32) / 2); /* T a multiple of 32: T (T + 32) / 2 */
}

/* Copies move bytes and do no arithmetic. */
static void copies_move_bytes_only(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *x = param(g, "x", PO_SHAPE(3, 4)), *z = param(g, "z", PO_SHAPE(3, 2));
    expect_cost(po_transpose(g, x, 0, 1), 0, 48, 48);
    po_node *parts[2] = {x, z};
    expect_cost(po_concat(g, parts, 2, 1), 0, 72, 72);
    po_node *s = po_slice(g, x, 1, 1, 2); /* not contiguous: a copy */
    expect_cost(s, 0, 24, 24);
    backward_of(g, s);
    expect_cost(find_op(g, PO_OP_SLICE_GRAD, 0), 0, 24, 48); /* reads the slice's gradient, writes x's */
    po_graph_free(g);
}

/* Optimizer updates, per parameter element: Adam 12 FLOPs reading value, gradient and two
 * moments and writing value and moments; SGD 4, with one momentum buffer when momentum > 0. */
static void optimizer_updates(void **st) {
    (void)st;
    for (int kind = 0; kind < 3; kind++) {
        po_graph *g = po_graph_new();
        po_node *p = param(g, "p", PO_SHAPE(10, 3));
        backward_of(g, po_scale(g, p, 2.0f));
        po_optim_opts o = po_optim_opts_default(kind == 0 ? PO_OPTIM_ADAM : PO_OPTIM_SGD);
        if (kind == 2) o.momentum = 0.9f;
        PO_CHECK(po_graph_add_optimizer(g, &o));
        double e = 30, slots = kind == 0 ? 2 : kind == 2 ? 1 : 0;
        po_node *n = find_op(g, kind == 0 ? PO_OP_ADAM_STEP : PO_OP_SGD_STEP, 0);
        expect_cost(n, (kind == 0 ? 12 : 4) * e, e * 4 * (2 + slots), e * 4 * (1 + slots));
        po_graph_free(g);
    }
}

static void every_op_has_a_formula(void **st) {
    (void)st;
    for (int op = 0; op < PO_OP_COUNT; op++)
        if (!checked[op]) fail_msg("no closed-form cost check for op %s", po_op_name((po_op)op));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(leaves_and_views_cost_nothing),
        cmocka_unit_test(matmul_is_2mnk),
        cmocka_unit_test(linear_is_2_rows_in_out_plus_bias),
        cmocka_unit_test(conv2d_is_2_n_o_oh_ow_c_kh_kw),
        cmocka_unit_test(max_pool2d_counts_comparisons),
        cmocka_unit_test(elementwise_counts_per_element),
        cmocka_unit_test(layer_norm_and_softmax),
        cmocka_unit_test(cross_entropy_and_embedding),
        cmocka_unit_test(attention_counts_the_causal_blocks),
        cmocka_unit_test(copies_move_bytes_only),
        cmocka_unit_test(optimizer_updates),
        cmocka_unit_test(every_op_has_a_formula),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
