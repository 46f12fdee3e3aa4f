/* Operator split (runtime/opsplit.h, runtime/gemm_team.h): a product shared out across a GEMM
 * team equals a naive triple loop on odd sizes, transposed operands, padded strides and beta != 0,
 * with either provider; one Adam step of the reference models split over two workers (even-ish
 * and uneven shares) matches PyTorch's logits, loss, gradients and adam1.* within the reference
 * tolerances, with products really shared out; the runtime splits exactly the nodes the
 * planner's simulator splits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/gemm.h"
#include "plan/plan_internal.h"
#include "po_test.h"
#include "runtime/gemm_team.h"
#include "runtime/optim_split.h"
#include "runtime/opsplit.h"

#define MLP_SPEC "mnist_mlp:d_in=784,hidden=64,classes=10,batch=16"
#define GPT_SPEC "tiny_gpt:vocab=64,d_model=64,layers=2,heads=4,seq=32,batch=2"

/* Two members on cores 0 and 1 (both on core 0 where there is one: same numbers, slower). */
static void two_members(double s0, double s1, po_worker_spec *w) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    w[0] = (po_worker_spec){0, 1, s0};
    w[1] = (po_worker_spec){cores > 1 ? 1 : 0, 1, s1};
}

/* C = alpha op(A) op(B) + beta C in double, row-major with strides. */
static void naive(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < K; k++)
                s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (double)(tb ? B[j * ldb + k] : B[k * ldb + j]);
            C[i * ldc + j] = (float)((double)alpha * s + (double)beta * C[i * ldc + j]);
        }
}

typedef struct {
    int64_t M, N, K;
} dims;

/* Odd sizes: many rows (split by rows), few rows and many columns (split by columns), a
 * single row, sizes that leave the small share an empty block, a wide K. */
static const dims shapes[] = {{37, 23, 19}, {5, 301, 17}, {1, 97, 13},   {130, 3, 7},
                              {2, 2, 3},    {3, 1, 5},    {67, 131, 257}};

/* The members' parts of the last product (po__team_last_part) cover its M x N C exactly once,
 * when it was shared out; else there are none. */
static void check_parts_tile(const po__team *t, const float *C, int64_t M, int64_t N, int64_t ldc, bool shared) {
    int n = po__team_size(t);
    int64_t part[4], got_ldc;
    if (!shared) {
        for (int k = 0; k < n; k++)
            assert_null(po__team_last_part(t, k, &got_ldc, part));
        return;
    }
    unsigned char *seen = calloc((size_t)(M * N), 1);
    assert_non_null(seen);
    for (int k = 0; k < n; k++) {
        assert_ptr_equal(po__team_last_part(t, k, &got_ldc, part), C);
        assert_int_equal(got_ldc, ldc);
        assert_true(0 <= part[0] && part[0] <= part[1] && part[1] <= M);
        assert_true(0 <= part[2] && part[2] <= part[3] && part[3] <= N);
        for (int64_t i = part[0]; i < part[1]; i++)
            for (int64_t j = part[2]; j < part[3]; j++)
                seen[i * N + j]++;
    }
    for (int64_t e = 0; e < M * N; e++)
        if (seen[e] != 1)
            fail_msg("M=%lld N=%lld: element %lld in %d parts", (long long)M, (long long)N, (long long)e, seen[e]);
    free(seen);
}

static void check_product(po__team *t, bool ta, bool tb, dims d, float alpha, float beta, uint64_t seed) {
    /* Padded strides: every operand row is 3 elements longer than it needs to be. */
    int64_t ar = ta ? d.K : d.M, ac = ta ? d.M : d.K, br = tb ? d.N : d.K, bc = tb ? d.K : d.N;
    int64_t lda = ac + 3, ldb = bc + 3, ldc = d.N + 3;
    float *A = malloc((size_t)(ar * lda) * sizeof *A), *B = malloc((size_t)(br * ldb) * sizeof *B);
    float *C = malloc((size_t)(d.M * ldc) * sizeof *C), *R = malloc((size_t)(d.M * ldc) * sizeof *R);
    assert_non_null(A);
    assert_non_null(B);
    assert_non_null(C);
    assert_non_null(R);
    po_test_fill_uniform(A, ar * lda, -1.0f, 1.0f, seed);
    po_test_fill_uniform(B, br * ldb, -1.0f, 1.0f, seed + 1);
    po_test_fill_uniform(C, d.M * ldc, -1.0f, 1.0f, seed + 2);
    memcpy(R, C, (size_t)(d.M * ldc) * sizeof *C);
    int64_t splits = po__team_splits(t);
    po__team_join(t, "test", "forward");
    po_status st = po__sgemm(ta, tb, d.M, d.N, d.K, alpha, A, lda, B, ldb, beta, C, ldc);
    po__team_leave();
    PO_CHECK(st);
    naive(ta, tb, d.M, d.N, d.K, alpha, A, lda, B, ldb, beta, R, ldc);
    double worst = 0.0;
    for (int64_t i = 0; i < d.M; i++)
        for (int64_t j = 0; j < ldc; j++) {
            /* Padding must be untouched; products of K terms in [-1, 1] round within 1e-6 K. */
            double tol = j < d.N ? 1e-6 * (double)(d.K + 1) : 0.0;
            double e = fabs((double)C[i * ldc + j] - (double)R[i * ldc + j]);
            if (!(e <= tol))
                fail_msg("M=%lld N=%lld K=%lld ta=%d tb=%d beta=%g: C[%lld][%lld] %.9g vs %.9g", (long long)d.M,
                         (long long)d.N, (long long)d.K, ta, tb, beta, (long long)i, (long long)j, C[i * ldc + j],
                         R[i * ldc + j]);
            worst = fmax(worst, e);
        }
    /* Shared out whenever the larger of M and N gives both members a block. */
    if (d.M >= 2 || d.N >= 2) assert_int_equal(po__team_splits(t), splits + 1);
    check_parts_tile(t, C, d.M, d.N, ldc, po__team_splits(t) > splits);
    free(A);
    free(B);
    free(C);
    free(R);
}

static void split_sgemm(void **s) {
    (void)s;
    static const double shares[][2] = {{0.6, 0.4}, {0.25, 0.75}};
    static const po_gemm_provider providers[] = {PO_GEMM_ONEDNN, PO_GEMM_OPENBLAS};
    for (int sh = 0; sh < 2; sh++) {
        po_worker_spec w[2];
        two_members(shares[sh][0], shares[sh][1], w);
        po__team *t;
        PO_CHECK(po__team_new(w, 2, &t));
        assert_true(fabs(po__team_share(t, 0) - shares[sh][0]) < 1e-12);
        for (int p = 0; p < 2; p++) {
            po_set_gemm_provider(providers[p]);
            uint64_t seed = 1;
            for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
                for (int ta = 0; ta < 2; ta++)
                    for (int tb = 0; tb < 2; tb++) {
                        check_product(t, ta, tb, shapes[k], 1.0f, 0.0f, seed += 3);
                        check_product(t, ta, tb, shapes[k], -0.5f, 0.75f, seed += 3);
                    }
        }
        po_set_gemm_provider(PO_GEMM_DEFAULT);
        /* The helper computed blocks of its own. */
        assert_true(po__team_busy_s(t, 1) > 0.0);
        po__team_free(t);
    }
}

/* dY W with K at least twice M, as a layer's input gradient: cut along K, each member's part of
 * C computed from its rows of B and the parts added up; against the naive product, with and
 * without beta, on two members and on three where the first has no part of K (it still owes C
 * its beta). Transposed operands, and K short of 2M, are cut into blocks of C as before. */
static void input_gradient_split_along_k(void **s) {
    (void)s;
    static const dims along_k[] = {{20, 50, 300}, {1, 40, 200}, {33, 17, 200}, {64, 256, 1024}};
    static const double shares[][3] = {{0.6, 0.4, 0.0}, {0.25, 0.75, 0.0}, {0.0, 0.5, 0.5}, {0.2, 0.3, 0.5}};
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t seed = 101;
    for (int sh = 0; sh < 4; sh++) {
        int n = shares[sh][2] > 0.0 ? 3 : 2;
        po_worker_spec w[3];
        for (int k = 0; k < n; k++)
            w[k] = (po_worker_spec){cores > k ? k : 0, 1, shares[sh][k]};
        po__team *t;
        PO_CHECK(po__team_new(w, n, &t));
        for (size_t d = 0; d < sizeof along_k / sizeof *along_k; d++) {
            int64_t before = po__team_k_splits(t);
            check_product(t, false, false, along_k[d], 1.0f, 0.0f, seed += 3);
            check_product(t, false, false, along_k[d], -0.5f, 0.75f, seed += 3);
            assert_int_equal(po__team_k_splits(t), before + 2);
            check_product(t, true, false, along_k[d], 1.0f, 0.0f, seed += 3);
            check_product(t, false, true, along_k[d], 1.0f, 0.0f, seed += 3);
            assert_int_equal(po__team_k_splits(t), before + 2);
        }
        int64_t before = po__team_k_splits(t);
        check_product(t, false, false, (dims){40, 50, 79}, 1.0f, 0.0f, seed += 3); /* K < 2M */
        assert_int_equal(po__team_k_splits(t), before);
        po__team_free(t);
    }
}

/* x W^T + bias with W larger than x, dense as a Linear layer's forward: split by columns, each
 * member's block of C (gaps between its rows) staged dense for the matmul primitive where oneDNN
 * has it, and its slice of the bias added. Against the naive product plus the bias. */
static void linear_forward_split_by_columns(void **s) {
    (void)s;
    enum { M = 40, N = 200, K = 300 };
    float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K), *bias = malloc(sizeof(float) * N);
    float *y = malloc(sizeof(float) * M * N), *r = calloc((size_t)M * N, sizeof(float)); /* naive reads C (beta 0) */
    assert_true(x && w && bias && y && r);
    po_test_fill_uniform(x, M * K, -1.0f, 1.0f, 11);
    po_test_fill_uniform(w, N * K, -1.0f, 1.0f, 12);
    po_test_fill_uniform(bias, N, -1.0f, 1.0f, 13);
    static const double shares[][2] = {{0.5, 0.5}, {0.3, 0.7}};
    for (int sh = 0; sh < 2; sh++) {
        po_worker_spec members[2];
        two_members(shares[sh][0], shares[sh][1], members);
        po__team *t;
        PO_CHECK(po__team_new(members, 2, &t));
        int64_t splits = po__team_splits(t);
        po__team_join(t, "test", "forward");
        po_status st = po__sgemm_bias(false, true, M, N, K, x, K, w, K, bias, y, N);
        po__team_leave();
        PO_CHECK(st);
        assert_int_equal(po__team_splits(t), splits + 1);
        naive(false, true, M, N, K, 1.0f, x, K, w, K, 0.0f, r, N);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                if (!(fabs((double)y[i * N + j] - ((double)r[i * N + j] + (double)bias[j])) <= 1e-6 * (K + 2)))
                    fail_msg("shares %g/%g: y[%d][%d] %.9g vs %.9g", shares[sh][0], shares[sh][1], i, j, y[i * N + j],
                             r[i * N + j] + bias[j]);
        po__team_free(t);
    }
    free(x), free(w), free(bias), free(y), free(r);
}

static void team_errors(void **s) {
    (void)s;
    po__team *t = NULL;
    po_worker_spec w[2] = {{0, 1, 0.5}, {0, 1, -1.0}};
    assert_int_equal(po__team_new(w, 2, &t), PO_ERR_INVALID_ARG);
    assert_null(t);
    assert_int_equal(po__team_new(w, 0, &t), PO_ERR_INVALID_ARG);
    w[1] = (po_worker_spec){1 << 20, 1, 0.5}; /* no such core */
    assert_int_equal(po__team_new(w, 2, &t), PO_ERR_INVALID_ARG);
    assert_null(t);
}

/* The nodes the runtime splits are the nodes the planner's simulator splits: the same rule on
 * the workload's per-call FLOPs, node by node; and so are the nodes run on a split product's
 * parts (the simulator's test in build_opsplit on the workload's `follows`). Returns how many
 * split; *followers (if not NULL) how many follow. */
static int check_agreement(const char *spec, const po_graph *g, int *followers) {
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
    po_workload *w;
    PO_CHECK(po_workload_from_model(spec, 0, &o, &w));
    assert_int_equal(w->n_nodes, po_graph_size(g));
    int n = 0, f = 0;
    double rows = (double)w->batch;
    for (int i = 0; i < w->n_nodes; i++) {
        const po__wnode *x = &w->nodes[i];
        bool planned = po__wnode_splits(w, i, rows);
        bool runs = po__opsplit_node_splits(po_graph_node(g, i));
        if (planned != runs)
            fail_msg("%s node %d (%s): planned %d, runtime %d", spec, i, po_op_name(x->op), planned, runs);
        bool rides = po__wnode_rides(w, i, rows);
        if (rides != po__opsplit_rides(po_graph_node(g, i)))
            fail_msg("%s node %d (%s): planned to ride %d, runtime %d", spec, i, po_op_name(x->op), rides, !rides);
        n += runs;
        f += rides;
    }
    po_workload_free(w);
    if (followers) *followers = f;
    return n;
}

static void step_matches(const char *rel, const char *spec, double s0, double s1) {
    po_st_file *f;
    PO_CHECK(po_st_read(po_test_data(rel), &f));
    po_model *m;
    PO_CHECK(po_model_build(spec, 0, &m));
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
    po_worker_spec w[2];
    two_members(s0, s1, w);
    po_trainer *t;
    PO_CHECK(po_trainer_new_opsplit(m, &o, 1, w, 2, &t));
    assert_int_equal(po_trainer_n_workers(t), 2);
    po_os *os = po__trainer_os(t);
    assert_non_null(os);
    int followers, nodes = check_agreement(spec, m->graph, &followers);
    assert_true(nodes > 0);
    assert_int_equal(po__os_split_nodes(os), nodes);
    assert_int_equal(po__os_follower_nodes(os), followers);
    /* The optimizer's updates are shared out by element (or, right after a product, by rows of
     * its weight gradient): every element once, by share up to a 16-element line or a row an
     * update. */
    int64_t opt_elems = 0;
    double slack = 0.0;
    for (int i = 0; i < po_graph_size(m->graph); i++) {
        const po_node *nd = po_graph_node(m->graph, i);
        po_shape sh = po_node_shape(nd);
        if (po_node_phase(nd) != PO_PHASE_OPTIMIZER) continue;
        opt_elems += po_shape_numel(&sh);
        slack += 16.0 + (sh.ndim == 2 ? (double)sh.dim[1] : 0.0);
    }
    int64_t e0 = po__os_optimizer_elements(os, 0), e1 = po__os_optimizer_elements(os, 1);
    assert_int_equal(e0 + e1, opt_elems);
    /* The first layer's weight gradient is a split product: its update runs right after it. */
    assert_true(po__os_fused_updates(os) >= 1);
    assert_true(fabs((double)e1 - s1 * (double)opt_elems) <= slack);
    PO_CHECK(po_params_load(po_trainer_params(t), po_test_data(rel)));
    po_test_load_batch(f, t);
    float loss;
    PO_CHECK(po_trainer_step(t, &loss));
    /* Products were really shared out: not one thread doing everything. */
    assert_true(po__os_splits(os) > 0);
    assert_int_equal(po_exec_steps(po_trainer_exec(t)), 1);
    po_worker_stats ws;
    PO_CHECK(po_trainer_worker_stats(t, 1, &ws));
    assert_true(fabs(ws.share - s1) < 1e-12);
    assert_true(ws.compute_s > 0.0);
    assert_int_equal(po_trainer_worker_stats(t, 2, &ws), PO_ERR_INVALID_ARG);

    po_tensor *logits = po_test_ref_tensor(f, "", "expect.logits"), *eloss = po_test_ref_tensor(f, "", "expect.loss");
    const float *got = po_exec_output(po_trainer_exec(t), m->logits);
    assert_non_null(got);
    double e = po_ref_err(got, logits->data, po_tensor_numel(logits));
    print_message("%s %.2f/%.2f: %lld products split, logits err %.3g, loss %.7g vs %.7g\n", rel, s0, s1,
                  (long long)po__os_splits(os), e, loss, *(float *)eloss->data);
    assert_true(e <= 1e-3);
    assert_true(po_ref_err(&loss, eloss->data, 1) <= 1e-3);
    po_test_check_adam1(f, po_trainer_params(t), rel);
    /* A slowed helper still computes the same step (slowdown emulation only idles). */
    PO_CHECK(po_trainer_set_slowdown(t, 1, 2.0f));
    assert_int_equal(po_trainer_set_slowdown(t, 2, 2.0f), PO_ERR_INVALID_ARG);
    PO_CHECK(po_trainer_step(t, &loss));
    assert_true(isfinite(loss));
    po_tensor_free(logits);
    po_tensor_free(eloss);
    po_trainer_free(t);
    po_model_free(m);
    po_st_free(f);
}

static void mnist_mlp(void **s) {
    (void)s;
    step_matches("reference/mnist_mlp.safetensors", MLP_SPEC, 0.6, 0.4);
    step_matches("reference/mnist_mlp.safetensors", MLP_SPEC, 0.25, 0.75);
}

static void tiny_gpt(void **s) {
    (void)s;
    step_matches("reference/tiny_gpt.safetensors", GPT_SPEC, 0.6, 0.4);
    step_matches("reference/tiny_gpt.safetensors", GPT_SPEC, 0.25, 0.75);
}

/* An operator-split trainer over two members and a single-device trainer of the same model,
 * initialisation and data, stepped side by side. With SGD: the blocks of a split product may
 * round differently from the whole product (oneDNN's AVX2 kernels do), and Adam's update,
 * which divides by the gradient's own magnitude, would blow those last bits up to 6e-4 in a
 * few steps; SGD keeps them as small as they are. */
typedef struct {
    po_model *m, *m1;
    po_trainer *t, *single;
    po_dataset *d;
    int steps;
} split_pair;

static void pair_new(const char *spec, double s0, double s1, int samples, split_pair *p) {
    memset(p, 0, sizeof *p);
    PO_CHECK(po_model_build(spec, 0, &p->m));
    PO_CHECK(po_model_build(spec, 0, &p->m1));
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_SGD);
    o.lr = 0.05f;
    po_worker_spec w[2];
    two_members(s0, s1, w);
    PO_CHECK(po_trainer_new_opsplit(p->m, &o, 3, w, 2, &p->t));
    PO_CHECK(po_trainer_new(p->m1, &o, 3, &p->single));
    PO_CHECK(po_dataset_synthetic(p->m, samples, 5, &p->d));
}

/* One step of each on the same batch; their losses agree within rtol (relative, at least 1). */
static void pair_step(split_pair *p, float rtol) {
    float l, l1;
    int step = p->steps++;
    PO_CHECK(po_dataset_batch(p->d, step, po_trainer_input(p->t, 0), po_trainer_input(p->t, 1)));
    PO_CHECK(po_dataset_batch(p->d, step, po_trainer_input(p->single, 0), po_trainer_input(p->single, 1)));
    PO_CHECK(po_trainer_step(p->t, &l));
    PO_CHECK(po_trainer_step(p->single, &l1));
    if (!(fabsf(l - l1) <= rtol * fmaxf(1.0f, fabsf(l1)))) fail_msg("step %d: loss %g split, %g whole", step, l, l1);
}

static void pair_free(split_pair *p) {
    po_dataset_free(p->d);
    po_trainer_free(p->t);
    po_trainer_free(p->single);
    po_model_free(p->m);
    po_model_free(p->m1);
}

/* The pair's nodes of the given ops: each must be split (po__opsplit_node_splits); returns how
 * many there are. The whole graph's split nodes must be those the simulator plans
 * (check_agreement) and those the runtime splits. */
static int split_nodes_of(const split_pair *p, const char *spec, const po_op *ops, int n_ops) {
    const po_graph *g = p->m->graph;
    int count = 0;
    for (int i = 0; i < po_graph_size(g); i++) {
        const po_node *nd = po_graph_node(g, i);
        for (int k = 0; k < n_ops; k++)
            if (po_node_op(nd) == ops[k]) {
                if (!po__opsplit_node_splits(nd)) fail_msg("%s node %d (%s) is not split", spec, i, po_op_name(ops[k]));
                count++;
            }
    }
    int followers;
    assert_int_equal(po__os_split_nodes(po__trainer_os(p->t)), check_agreement(spec, g, &followers));
    assert_int_equal(po__os_follower_nodes(po__trainer_os(p->t)), followers);
    return count;
}

/* After the pair's steps: the split trainer's parameters are the single one's within tol. */
static void pair_params_agree(split_pair *p, double tol) {
    po_params *v = po_trainer_params(p->t), *v1 = po_trainer_params(p->single);
    double e = po_ref_err(po_params_values(v), po_params_values(v1), (int64_t)po_params_total(v));
    print_message("parameters after %d steps: largest error %.3g\n", p->steps, e);
    assert_true(e <= tol);
}

/* Re-sharing: a member made 6x slower (emulated) gets a smaller share of the products after a
 * few steps, and the steps still compute what one device does (losses match a single trainer's
 * up to the rounding of the blocked products). */
static void reshares_toward_the_faster_member(void **s) {
    (void)s;
    split_pair p;
    pair_new("mnist_mlp:d_in=256,hidden=512,batch=64", 0.5, 0.5, 256, &p);
    po__os_set_rebalance(po__trainer_os(p.t), true);
    PO_CHECK(po_trainer_set_slowdown(p.t, 1, 6.0f));
    for (int step = 0; step < 30; step++)
        pair_step(&p, 1e-3f);
    po_worker_stats w1;
    PO_CHECK(po_trainer_worker_stats(p.t, 1, &w1));
    print_message("after %lld re-shares: member 1's share %.3f\n", (long long)po__os_rebalances(po__trainer_os(p.t)),
                  w1.share);
    assert_true(po__os_rebalances(po__trainer_os(p.t)) >= 1);
    assert_true(w1.share < 0.4);
    assert_true(po__os_optimizer_elements(po__trainer_os(p.t), 1) > 0);
    pair_free(&p);
}

/* Attention is dealt out by (sample, head) where each sample's attention is large enough: the
 * simulator and the runtime agree on it, both members compute their units, and the steps
 * compute what one device does (up to the rounding of the blocked products around it). */
static void attention_split_by_units(void **s) {
    (void)s;
    const char *spec = "tiny_gpt:vocab=64,d_model=64,layers=1,heads=2,seq=128,batch=2";
    split_pair p;
    pair_new(spec, 0.7, 0.3, 16, &p);
    const po_op ops[] = {PO_OP_CAUSAL_ATTENTION, PO_OP_CAUSAL_ATTENTION_GRAD};
    assert_int_equal(split_nodes_of(&p, spec, ops, 2), 2);
    for (int step = 0; step < 3; step++)
        pair_step(&p, 1e-5f);
    pair_params_agree(&p, 1e-4);
    po_worker_stats w1;
    PO_CHECK(po_trainer_worker_stats(p.t, 1, &w1));
    assert_true(w1.compute_s > 0.0);
    pair_free(&p);
}

/* The ReLUs and their gradients of an MLP run on the parts of the products before them: after
 * a product split by columns (x W^T), by rows (dY W with K < 2M) and along K (dY W with K >=
 * 2M, its rows as the parts were added up), each member on the elements it computed; the
 * steps compute what one device does, and the planner's simulator counts the same nodes. */
static void relus_run_on_the_products_parts(void **s) {
    (void)s;
    const char *spec = "mnist_mlp:d_in=256,hidden=512,classes=10,batch=128";
    split_pair p;
    pair_new(spec, 0.6, 0.4, 256, &p);
    const po_op ops[] = {PO_OP_LINEAR};
    assert_int_equal(split_nodes_of(&p, spec, ops, 1), 3);
    po_os *os = po__trainer_os(p.t);
    const po_graph *g = p.m->graph;
    int relus = 0;
    for (int i = 0; i < po_graph_size(g); i++) {
        const po_node *nd = po_graph_node(g, i);
        if (po_node_op(nd) != PO_OP_RELU && po_node_op(nd) != PO_OP_RELU_GRAD) continue;
        if (!po__opsplit_rides(nd))
            fail_msg("node %d (%s) does not run on its product's parts", i, po_op_name(po_node_op(nd)));
        relus++;
    }
    assert_int_equal(relus, 4);
    assert_int_equal(po__os_follower_nodes(os), 4);
    for (int step = 0; step < 3; step++)
        pair_step(&p, 1e-5f);
    assert_int_equal(po__os_follower_runs(os), 4 * 3); /* on the parts every time, none whole */
    assert_true(po__os_k_splits(os) >= 3);             /* the hidden layer's input gradient, each step */
    pair_params_agree(&p, 1e-4);
    pair_free(&p);
}

/* A Linear layer's bias gradient (SUM_TO of dY over its rows) whose dY is spread over the
 * members (run on a split product's parts) is dealt out by rows whatever its size, each member
 * summing the rows it computed, as the simulator plans it; the last layer's, whose dY (the
 * loss's gradient) one thread computed, is not. The steps compute what one device does up to
 * the order of the final sum, with any shares; with every row on one member, the other's part
 * plays no part. */
static void bias_gradients_summed_by_rows(void **s) {
    (void)s;
    const char *spec = "mnist_mlp:d_in=256,hidden=512,classes=10,batch=128";
    const double shares[][2] = {{0.6, 0.4}, {1.0, 0.0}, {0.0, 1.0}};
    for (int c = 0; c < 3; c++) {
        split_pair p;
        pair_new(spec, shares[c][0], shares[c][1], 256, &p);
        const po_graph *g = p.m->graph;
        int dealt = 0, whole = 0;
        for (int i = 0; i < po_graph_size(g); i++) {
            const po_node *nd = po_graph_node(g, i);
            if (po_node_op(nd) != PO_OP_SUM_TO) continue;
            const po_node *dy = po__opsplit_gathers(nd);
            assert_non_null(dy);
            bool spread = po__opsplit_node_splits(dy) || po__opsplit_rides(dy);
            if (po__opsplit_node_splits(nd) != spread)
                fail_msg("node %d (sum_to of %s): split %d, its input spread %d", i, po_op_name(po_node_op(dy)),
                         po__opsplit_node_splits(nd), spread);
            if (spread) {
                assert_int_equal(po_node_op(dy), PO_OP_RELU_GRAD);
                dealt++;
            } else {
                assert_int_equal(po_node_op(dy), PO_OP_CROSS_ENTROPY_GRAD);
                whole++;
            }
        }
        assert_int_equal(dealt, 2);
        assert_int_equal(whole, 1);
        int followers;
        assert_int_equal(po__os_split_nodes(po__trainer_os(p.t)), check_agreement(spec, g, &followers));
        for (int step = 0; step < 3; step++)
            pair_step(&p, 1e-5f);
        pair_params_agree(&p, 1e-4);
        pair_free(&p);
    }
}

static uint64_t next_rand(uint64_t *r) { /* xorshift64* */
    *r ^= *r >> 12, *r ^= *r << 25, *r ^= *r >> 27;
    return *r * 2685821657736338717ull;
}

/* The optimizer's updates shared out by element (po__optim_split) against the rule, on random
 * cases: every element of every node exactly once; each member's pieces in node order and
 * contiguous, the members one after the other; every boundary inside a node on a multiple of 16
 * of it (an indivisible node: at one of its ends), within 8 elements (or the node) of where the
 * shares put it. */
static void optimizer_split(void **s) {
    (void)s;
    uint64_t r = 12345;
    for (int trial = 0; trial < 500; trial++) {
        int n = 1 + (int)(next_rand(&r) % 6), k = 1 + (int)(next_rand(&r) % 4);
        int ids[6];
        int64_t sizes[6], start[7] = {0};
        bool divisible[6];
        double shares[4], total_share = 0.0;
        for (int i = 0; i < n; i++) {
            ids[i] = 100 + i;
            sizes[i] = 1 + (int64_t)(next_rand(&r) % 300);
            divisible[i] = next_rand(&r) % 4 != 0;
            start[i + 1] = start[i] + sizes[i];
        }
        for (int j = 0; j < k; j++)
            total_share += shares[j] = (double)(next_rand(&r) % 5); /* zeros too */
        po__opt_piece out[10];
        int first[5];
        int np = po__optim_split(ids, sizes, divisible, n, shares, k, out, first);
        assert_true(np <= n + k);
        assert_int_equal(first[0], 0);
        assert_int_equal(first[k], np);
        int64_t at = 0; /* position in the concatenation */
        double cum = 0.0;
        for (int j = 0; j < k; j++) {
            for (int p = first[j]; p < first[j + 1]; p++) {
                int node = out[p].node - 100;
                assert_true(node >= 0 && node < n);
                assert_true(out[p].begin < out[p].end && out[p].end <= sizes[node]);
                if (start[node] + out[p].begin != at) fail_msg("trial %d: member %d's pieces not contiguous", trial, j);
                at = start[node] + out[p].end;
            }
            cum += total_share > 0.0 ? shares[j] / total_share : 1.0 / k;
            if (j == k - 1) break;
            /* The boundary after member j, against the rule. */
            double ideal = cum * (double)start[n];
            int node = 0;
            while (node < n - 1 && at >= start[node + 1])
                node++;
            int64_t off = at - start[node];
            bool inside = off > 0 && off < sizes[node];
            if (inside && (!divisible[node] || off % 16))
                fail_msg("trial %d: boundary %lld inside node %d", trial, (long long)at, node);
            double slack = 8.0;
            for (int i = 0; i < n; i++)
                if (ideal >= (double)start[i] && ideal <= (double)start[i + 1] && (!divisible[i] || sizes[i] < 16))
                    slack = fmax(slack, (double)sizes[i]);
            if (fabs((double)at - ideal) > slack + 1.0)
                fail_msg("trial %d: boundary %lld, shares put it at %.1f", trial, (long long)at, ideal);
        }
        assert_int_equal(at, start[n]);
    }
}

/* GELU (by runs of elements) and layer norm (by rows) are dealt out too where large enough, as
 * the simulator plans them, and the steps compute what one device does. */
static void elementwise_and_rows_split_by_units(void **s) {
    (void)s;
    const char *spec = "tiny_gpt:vocab=64,d_model=128,layers=1,heads=2,seq=128,batch=8";
    split_pair p;
    pair_new(spec, 0.6, 0.4, 32, &p);
    const po_op ops[] = {PO_OP_GELU, PO_OP_GELU_GRAD, PO_OP_LAYER_NORM, PO_OP_LAYER_NORM_GRAD_INPUT};
    /* GELU and its gradient; three layer norms (two in the block, the final one) and their
     * input gradients. */
    assert_int_equal(split_nodes_of(&p, spec, ops, 4), 2 + 3 * 2);
    for (int step = 0; step < 2; step++)
        pair_step(&p, 1e-5f);
    pair_params_agree(&p, 1e-4);
    pair_free(&p);
}

/* Convolutions are dealt out by sample (the forward and input-gradient ones by slices of their
 * output, the weight gradient as a sum of the members' parts), as the simulator plans them;
 * uneven shares give the members slices of 3 and 1 samples, each with a primitive of its own
 * size, and the steps compute what one device does up to the order of the weight gradient's
 * sum. With all the samples on member 0, member 1's part is no part of the sum. */
static void convolutions_split_by_samples(void **s) {
    (void)s;
    const char *spec = "cifar_cnn:c1=8,c2=16,hidden=32,classes=10,batch=4";
    split_pair p;
    pair_new(spec, 0.7, 0.3, 16, &p);
    const po_op ops[] = {PO_OP_CONV2D, PO_OP_CONV2D_GRAD_INPUT, PO_OP_CONV2D_GRAD_WEIGHT};
    /* Two convolutions, the second's input gradient, both weight gradients. */
    assert_int_equal(split_nodes_of(&p, spec, ops, 3), 5);
    for (int step = 0; step < 3; step++)
        pair_step(&p, 1e-5f);
    pair_params_agree(&p, 1e-4);
    /* A slowed member still computes the same step. */
    PO_CHECK(po_trainer_set_slowdown(p.t, 1, 2.0f));
    pair_step(&p, 1e-5f);
    pair_free(&p);
    /* Every sample on one member, none on the other, each way round; gradients left over from
     * before (poisoned here) play no part. */
    for (int k = 0; k < 2; k++) {
        pair_new(spec, k ? 0.0 : 1.0, k ? 1.0 : 0.0, 16, &p);
        for (int step = 0; step < 2; step++) {
            po_params *pt = po_trainer_params(p.t);
            float *grads = po_params_grads(pt);
            for (size_t i = 0; i < po_params_total(pt); i++)
                grads[i] = NAN;
            pair_step(&p, 1e-5f);
        }
        pair_free(&p);
    }
}

int main(void) {
    omp_set_num_threads(1); /* as every thread the runtime runs products on: oneDNN on one core */
    /* PO_TEST_OPENBLAS=1: every product through OpenBLAS, the default for large ones on CPUs
     * without AVX-512 (with ONEDNN_MAX_CPU_ISA=AVX2 and OPENBLAS_CORETYPE=Haswell, such a CPU). */
    if (getenv("PO_TEST_OPENBLAS")) po_set_gemm_provider(PO_GEMM_OPENBLAS);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(split_sgemm),
        cmocka_unit_test(input_gradient_split_along_k),
        cmocka_unit_test(linear_forward_split_by_columns),
        cmocka_unit_test(team_errors),
        cmocka_unit_test(mnist_mlp),
        cmocka_unit_test(tiny_gpt),
        cmocka_unit_test(attention_split_by_units),
        cmocka_unit_test(relus_run_on_the_products_parts),
        cmocka_unit_test(bias_gradients_summed_by_rows),
        cmocka_unit_test(elementwise_and_rows_split_by_units),
        cmocka_unit_test(convolutions_split_by_samples),
        cmocka_unit_test(optimizer_split),
        cmocka_unit_test(reshares_toward_the_faster_member),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
