#include "backend/cpu/gemm_matmul.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dnnl_util.h"

/* A thread's primitives: a product's shape (its operands dense) and what runs it. */
typedef struct entry {
    int64_t M, N, K;
    bool accumulate; /* beta 1: a sum post-op */
    bool brgemm;     /* false: oneDNN chose no brgemm kernel; sgemm runs it instead */
    po_dnnl_prim prim;
} entry;

/* Shapes a thread keeps at most: a training step meets a handful, the planner's calibration a
 * few more (other batch sizes); past that the oldest goes. */
#define CACHE_SIZE 32

typedef struct cache {
    entry e[CACHE_SIZE];
    int n, next; /* entries in use; the one to replace when full */
} cache;

static pthread_key_t cache_key;
static atomic_int_fast64_t runs;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void cache_free(void *p) {
    cache *c = p;
    for (int i = 0; i < c->n; i++)
        if (c->e[i].brgemm) po__dnnl_prim_free(&c->e[i].prim);
    free(c);
}

static void key_create(void) { (void)pthread_key_create(&cache_key, cache_free); }

bool po__gemm_matmul_wanted(const po__gemm_call *c) {
    return !c->trans_a && c->trans_b && c->K >= 512 && c->N >= 64 && c->alpha == 1.0f &&
           (c->beta == 0.0f || c->beta == 1.0f) && c->lda == c->K && c->ldb == c->K && c->ldc == c->N;
}

static po_status md_strided(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, int64_t row_stride,
                            int64_t col_stride) {
    dnnl_dims_t dims = {rows, cols}, strides = {row_stride, col_stride};
    return po__dnnl_check(dnnl_memory_desc_init_by_strides(md, 2, dims, dnnl_f32, strides), "memory descriptor");
}

/* Makes e's primitive: C[M, N] (+)= A[M, K] B[K, N], B read from its transpose [N, K]. e->brgemm
 * stays false where oneDNN offers no brgemm kernel (the primitive would only wrap sgemm) or
 * cannot make the primitive: sgemm, which computes every product, runs it then. */
static void entry_init(entry *e) {
    dnnl_memory_desc_t a, b, cmd;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd;
    if (md_strided(&a, e->M, e->K, e->K, 1) || md_strided(&b, e->K, e->N, 1, e->K) ||
        md_strided(&cmd, e->M, e->N, e->N, 1) ||
        po__dnnl_check(dnnl_matmul_desc_init(&desc, &a, &b, NULL, &cmd), "matmul descriptor") ||
        po__dnnl_pd(&pd, &desc, NULL, e->accumulate))
        return;
    if (strncmp(po__dnnl_impl(pd), "brg", 3) == 0) {
        po_dnnl_arg_spec specs[3] = {{DNNL_ARG_SRC, a, false}, {DNNL_ARG_WEIGHTS, b, false}, {DNNL_ARG_DST, cmd, true}};
        e->brgemm = po__dnnl_prim_init(&e->prim, pd, 3, specs, 0) == PO_OK;
    }
    dnnl_primitive_desc_destroy(pd);
}

/* This thread's entry for c's shape, made if new (replacing the oldest when the cache is
 * full); NULL when out of memory. */
static entry *find(const po__gemm_call *c) {
    pthread_once(&key_once, key_create);
    cache *k = pthread_getspecific(cache_key);
    if (!k) {
        if (!(k = calloc(1, sizeof *k))) return NULL;
        if (pthread_setspecific(cache_key, k) != 0) {
            free(k);
            return NULL;
        }
    }
    bool acc = c->beta != 0.0f;
    for (int i = 0; i < k->n; i++) {
        entry *e = &k->e[i];
        if (e->M == c->M && e->N == c->N && e->K == c->K && e->accumulate == acc) return e;
    }
    entry *e;
    if (k->n < CACHE_SIZE) {
        e = &k->e[k->n++];
    } else {
        e = &k->e[k->next];
        k->next = (k->next + 1) % CACHE_SIZE;
        if (e->brgemm) po__dnnl_prim_free(&e->prim);
    }
    *e = (entry){.M = c->M, .N = c->N, .K = c->K, .accumulate = acc};
    entry_init(e);
    return e;
}

po_status po__gemm_matmul_run(const po__gemm_call *c, bool *ran) {
    *ran = false;
    entry *e = find(c);
    if (!e) return po_fail(PO_ERR_NO_MEMORY, "out of memory for matmul primitives");
    if (!e->brgemm) return PO_OK;
    void *bufs[3] = {(void *)c->A, (void *)c->B, c->C};
    po_status st = po__dnnl_prim_run(&e->prim, bufs, NULL);
    *ran = st == PO_OK;
    if (*ran) atomic_fetch_add_explicit(&runs, 1, memory_order_relaxed);
    return st;
}

int64_t po__gemm_matmul_count(void) { return (int64_t)atomic_load(&runs); }
