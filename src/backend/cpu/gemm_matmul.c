#include "backend/cpu/gemm_matmul.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dnnl_util.h"

/* A thread's primitives: a product's shape (its operands dense) and what runs it. */
typedef struct entry {
    bool trans_a, trans_b;
    int64_t M, N, K;
    bool accumulate; /* beta 1: a sum post-op */
    bool bias;       /* a bias argument */
    bool brgemm;     /* false: oneDNN chose no brgemm kernel; sgemm runs it instead */
    po_dnnl_prim prim;
} entry;

/* Shapes a thread keeps at most: a training step meets a handful, the planner's calibration a
 * few more (other batch sizes); past that the oldest goes. */
#define CACHE_SIZE 32

typedef struct cache {
    entry e[CACHE_SIZE];
    int n, next;   /* entries in use; the one to replace when full */
    float *staged; /* a dense C for products whose C has gaps between rows */
    size_t staged_floats;
} cache;

static pthread_key_t cache_key;
static atomic_int_fast64_t runs;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void cache_free(void *p) {
    cache *c = p;
    for (int i = 0; i < c->n; i++)
        if (c->e[i].brgemm) po__dnnl_prim_free(&c->e[i].prim);
    free(c->staged);
    free(c);
}

static void key_create(void) { (void)pthread_key_create(&cache_key, cache_free); }

/* Bias fused into x W^T for a W of at most this many floats (512 KiB, half a Zen 4 core's L2):
 * tiny_gpt's 256x256 projections, 1.34 -> 1.26 ms in training; with its 1024x256 MLP weight
 * the primitive is slower than sgemm after a bias fill (5.02 against 5.16 ms). */
#define BIAS_FUSED_MAX_WEIGHT (128 * 1024)

bool po__gemm_matmul_wanted(const po__gemm_call *c) {
    bool dense = c->lda == (c->trans_a ? c->M : c->K) && c->ldb == (c->trans_b ? c->K : c->N);
    if (!dense || c->N < 64 || c->alpha != 1.0f || !(c->beta == 0.0f || (c->beta == 1.0f && !c->bias))) return false;
    if (c->ldc != c->N) /* x W^T's column blocks, staged: K >= 256 keeps the copy out a small part */
        return !c->trans_a && c->trans_b && c->beta == 0.0f && c->K >= 256;
    if (!c->trans_a && c->trans_b) return c->K >= 512 || (c->bias && c->N * c->K <= BIAS_FUSED_MAX_WEIGHT); /* x W^T */
    if (!c->trans_a) return c->M >= 128;                                                                    /* dY W */
    return !c->trans_b && c->lda % 512 == 0 && c->K >= 512;                                                 /* dY^T x */
}

/* A dense [rows, cols] operand, stored transposed ([cols, rows] row-major) when `trans`. */
static po_status md_dense(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, bool trans) {
    dnnl_dims_t dims = {rows, cols}, strides = {trans ? 1 : cols, trans ? rows : 1};
    return po__dnnl_check(dnnl_memory_desc_init_by_strides(md, 2, dims, dnnl_f32, strides), "memory descriptor");
}

/* Makes e's primitive: C[M, N] (+)= op(A)[M, K] op(B)[K, N] (+ bias[N]). e->brgemm stays false
 * where oneDNN offers no brgemm kernel (the primitive would only wrap sgemm) or cannot make the
 * primitive: sgemm, which computes every product, runs it then. */
static void entry_init(entry *e) {
    dnnl_memory_desc_t a, b, cmd, bias;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd;
    if (md_dense(&a, e->M, e->K, e->trans_a) || md_dense(&b, e->K, e->N, e->trans_b) ||
        md_dense(&cmd, e->M, e->N, false) || md_dense(&bias, 1, e->N, false) ||
        po__dnnl_check(dnnl_matmul_desc_init(&desc, &a, &b, e->bias ? &bias : NULL, &cmd), "matmul descriptor") ||
        po__dnnl_pd(&pd, &desc, NULL, e->accumulate))
        return;
    if (strncmp(po__dnnl_impl(pd), "brg", 3) == 0) {
        po_dnnl_arg_spec specs[4] = {{DNNL_ARG_SRC, a, false},
                                     {DNNL_ARG_WEIGHTS, b, false},
                                     {DNNL_ARG_DST, cmd, true},
                                     {DNNL_ARG_BIAS, bias, false}};
        e->brgemm = po__dnnl_prim_init(&e->prim, pd, e->bias ? 4 : 3, specs, 0) == PO_OK;
    }
    dnnl_primitive_desc_destroy(pd);
}

/* This thread's cache, made on first use; NULL when out of memory. */
static cache *this_thread(void) {
    pthread_once(&key_once, key_create);
    cache *k = pthread_getspecific(cache_key);
    if (!k) {
        if (!(k = calloc(1, sizeof *k))) return NULL;
        if (pthread_setspecific(cache_key, k) != 0) {
            free(k);
            return NULL;
        }
    }
    return k;
}

/* k's entry for c's shape, made if new (replacing the oldest when the cache is full). */
static entry *find(cache *k, const po__gemm_call *c) {
    bool acc = c->beta != 0.0f, bias = c->bias != NULL;
    for (int i = 0; i < k->n; i++) {
        entry *e = &k->e[i];
        if (e->trans_a == c->trans_a && e->trans_b == c->trans_b && e->M == c->M && e->N == c->N && e->K == c->K &&
            e->accumulate == acc && e->bias == bias)
            return e;
    }
    entry *e;
    if (k->n < CACHE_SIZE) {
        e = &k->e[k->n++];
    } else {
        e = &k->e[k->next];
        k->next = (k->next + 1) % CACHE_SIZE;
        if (e->brgemm) po__dnnl_prim_free(&e->prim);
    }
    *e = (entry){
        .trans_a = c->trans_a, .trans_b = c->trans_b, .M = c->M, .N = c->N, .K = c->K, .accumulate = acc, .bias = bias};
    entry_init(e);
    return e;
}

po_status po__gemm_matmul_run(const po__gemm_call *c, bool *ran) {
    *ran = false;
    cache *k = this_thread();
    if (!k) return po_fail(PO_ERR_NO_MEMORY, "out of memory for matmul primitives");
    entry *e = find(k, c);
    if (!e->brgemm) return PO_OK;
    /* A C with gaps between its rows (beta 0): the primitive writes a dense one, copied out after. */
    bool staged = c->ldc != c->N;
    size_t need = (size_t)(c->M * c->N);
    if (staged && k->staged_floats < need) {
        float *grown = realloc(k->staged, need * sizeof(float));
        if (!grown) return PO_OK; /* sgemm writes the strided C itself */
        k->staged = grown;
        k->staged_floats = need;
    }
    void *bufs[4] = {(void *)c->A, (void *)c->B, staged ? k->staged : c->C, (void *)c->bias};
    po_status st = po__dnnl_prim_run(&e->prim, bufs, NULL);
    if (st) return st;
    if (staged)
        for (int64_t r = 0; r < c->M; r++)
            memcpy(c->C + r * c->ldc, k->staged + r * c->N, (size_t)c->N * sizeof(float));
    *ran = true;
    atomic_fetch_add_explicit(&runs, 1, memory_order_relaxed);
    return PO_OK;
}

int64_t po__gemm_matmul_count(void) { return (int64_t)atomic_load(&runs); }
