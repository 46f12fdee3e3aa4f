#include "backend/cpu/gemm_matmul.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dnnl_util.h"

/* A thread's primitives: a product's shape and strides, and what runs it. */
typedef struct entry {
    int64_t M, N, K, lda, ldb, ldc;
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

/* Makes e's primitive: C[M, N] (+)= A[M, K] B[K, N], B read from its transpose [N, K]. */
static po_status entry_init(entry *e) {
    dnnl_memory_desc_t a, b, cmd;
    dnnl_matmul_desc_t desc;
    po_status st = md_strided(&a, e->M, e->K, e->lda, 1);
    if (!st) st = md_strided(&b, e->K, e->N, 1, e->ldb);
    if (!st) st = md_strided(&cmd, e->M, e->N, e->ldc, 1);
    if (!st) st = po__dnnl_check(dnnl_matmul_desc_init(&desc, &a, &b, NULL, &cmd), "matmul descriptor");
    if (st) return st;
    dnnl_engine_t eng;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if ((st = po__dnnl_engine(&eng))) return st;
    st = po__dnnl_check(dnnl_primitive_attr_create(&attr), "attribute creation");
    if (!st) st = po__dnnl_check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");
    if (!st && e->accumulate) {
        st = po__dnnl_check(dnnl_post_ops_create(&ops), "post-op creation");
        if (!st) st = po__dnnl_check(dnnl_post_ops_append_sum(ops, 1.0f), "sum post-op");
        if (!st) st = po__dnnl_check(dnnl_primitive_attr_set_post_ops(attr, ops), "post-op attribute");
    }
    if (!st) st = po__dnnl_check(dnnl_primitive_desc_create(&pd, &desc, attr, eng, NULL), "matmul primitive descriptor");
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st) return st;
    e->brgemm = strncmp(po__dnnl_impl(pd), "brg", 3) == 0;
    if (e->brgemm) {
        po_dnnl_arg_spec specs[3] = {{DNNL_ARG_SRC, a, false}, {DNNL_ARG_WEIGHTS, b, false}, {DNNL_ARG_DST, cmd, true}};
        st = po__dnnl_prim_init(&e->prim, pd, 3, specs, 0);
        if (st) e->brgemm = false;
    }
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* This thread's entry for c's shape, made if new; NULL when out of memory (the message set). */
static entry *find(const po__gemm_call *c, po_status *st) {
    pthread_once(&key_once, key_create);
    cache *k = pthread_getspecific(cache_key);
    if (!k) {
        if (!(k = calloc(1, sizeof *k)) || pthread_setspecific(cache_key, k) != 0) {
            free(k);
            *st = po_fail(PO_ERR_NO_MEMORY, "out of memory for matmul primitives");
            return NULL;
        }
    }
    bool acc = c->beta != 0.0f;
    for (int i = 0; i < k->n; i++) {
        entry *e = &k->e[i];
        if (e->M == c->M && e->N == c->N && e->K == c->K && e->lda == c->lda && e->ldb == c->ldb && e->ldc == c->ldc &&
            e->accumulate == acc)
            return e;
    }
    int slot = k->n < CACHE_SIZE ? k->n++ : k->next;
    if (k->n == CACHE_SIZE && slot == k->next) k->next = (slot + 1) % CACHE_SIZE;
    entry *e = &k->e[slot];
    if (e->brgemm) po__dnnl_prim_free(&e->prim);
    *e = (entry){.M = c->M, .N = c->N, .K = c->K, .lda = c->lda, .ldb = c->ldb, .ldc = c->ldc, .accumulate = acc};
    /* A primitive oneDNN will not make leaves the shape to sgemm, which computes every product. */
    if (entry_init(e)) e->brgemm = false;
    return e;
}

po_status po__gemm_matmul_run(const po__gemm_call *c, bool *ran) {
    *ran = false;
    po_status st = PO_OK;
    entry *e = find(c, &st);
    if (!e || !e->brgemm) return st;
    void *bufs[3] = {(void *)c->A, (void *)c->B, c->C};
    st = po__dnnl_prim_run(&e->prim, bufs, NULL);
    *ran = st == PO_OK;
    if (*ran) atomic_fetch_add_explicit(&runs, 1, memory_order_relaxed);
    return st;
}

int64_t po__gemm_matmul_count(void) { return (int64_t)atomic_load(&runs); }
