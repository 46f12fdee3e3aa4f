#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_matmul.h"

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    bool ta, tb;
    int64_t M, N, K, lda, ldb, ldc;
    po_gemm_provider choice;
} shape_choice;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static shape_choice *choices;
static int n_choices, cap_choices;
static po_gemm_provider setting = PO_GEMM_DEFAULT;

void po_set_gemm_provider(po_gemm_provider p) {
    pthread_mutex_lock(&lock);
    setting = p;
    pthread_mutex_unlock(&lock);
}

po_gemm_provider po_get_gemm_provider(void) { return setting; }

static const char *const provider_names[] = {"default", "auto", "onednn", "openblas"};

po_status po_gemm_provider_parse(const char *name, po_gemm_provider *out) {
    for (int i = 0; i < 4; i++)
        if (strcmp(name, provider_names[i]) == 0) {
            *out = (po_gemm_provider)i;
            return PO_OK;
        }
    return po_fail(PO_ERR_INVALID_ARG, "unknown GEMM library \"%s\" (expected default, auto, onednn or openblas)",
                   name);
}

const char *po_gemm_provider_name(po_gemm_provider p) { return (unsigned)p < 4 ? provider_names[p] : "?"; }

/* Below this many multiply-adds a product is dominated by per-call work (OpenBLAS packs both
 * operands on every call): oneDNN does the per-head attention products of tiny_gpt (32 x 64..128
 * x 64) in 1.29 ms per layer against OpenBLAS's 1.68, on Zen 3 as on AVX-512 cores. */
#define SMALL_MACS (4.0 * 1024 * 1024)

po_gemm_provider po_gemm_default_provider(void) {
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx512f")) return PO_GEMM_ONEDNN;
#endif
    return PO_GEMM_OPENBLAS;
}

/* oneDNN's sgemm (Debian's 2.6) runs products with A transposed and operand rows a multiple of
 * 4 KiB apart at a third of their speed for about the first eight such calls in each thread,
 * whatever their size, and at full speed from then on (on the 2-core Zen 5 VM of 2026-12-05:
 * mnist_mlp's hidden weight gradient 3.0-3.6 ms, then 1.25-1.35; 64 x 64 x 64 125 us, then 5).
 * We have not found what oneDNN keeps per thread there; ten small such calls before a thread's
 * first product make its later ones fast. Every new thread met it afresh: the first ten steps
 * of mnist_mlp's operator split over two cores took 7.2-7.5 ms against 4.3-4.6 with the calls
 * made first (median of steps 2-10, alternated runs), and calibration timed them slow. The
 * calls cost about 1.3 ms, once a thread. */
#define ONEDNN_WARM_CALLS 10

static void warm_onednn_thread(void) {
    static _Thread_local bool warmed;
    if (warmed) return;
    warmed = true;
    enum { W = 64, LD = 1024 };
    float *buf = calloc(2 * W * LD + W * W, sizeof(float));
    if (!buf) return; /* only slower */
    for (int i = 0; i < ONEDNN_WARM_CALLS; i++)
        (void)dnnl_sgemm('T', 'N', W, W, W, 1.0f, buf, LD, buf + W * LD, LD, 0.0f, buf + 2 * W * LD, W);
    free(buf);
}

static po_status run_onednn(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                            const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    warm_onednn_thread();
    dnnl_status_t s = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (s != dnnl_success)
        return po_fail(PO_ERR_BACKEND, "oneDNN sgemm failed (status %d) for M=%lld N=%lld K=%lld", (int)s, (long long)M,
                       (long long)N, (long long)K);
    return PO_OK;
}

static po_status run_openblas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX || lda > INT32_MAX || ldb > INT32_MAX || ldc > INT32_MAX)
        return po_fail(PO_ERR_UNSUPPORTED, "matrix too large for OpenBLAS (32-bit sizes)");
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
                alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
    return PO_OK;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Best of two timed runs after a warm-up, into a scratch C so the caller's C is untouched. */
static double time_provider(po_gemm_provider p, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A,
                            int64_t lda, const float *B, int64_t ldb, float *scratch, int64_t ldc) {
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        po_status st =
            po__gemm_run(&(po__gemm_call){ta, tb, M, N, K, 1.0f, 0.0f, A, B, scratch, lda, ldb, ldc, p, NULL});
        double t = now_s() - t0;
        if (st) return 1e30;
        if (r > 0 && t < best) best = t;
    }
    return best;
}

/* oneDNN must be this much faster to be chosen. Where the two are close, timing noise would
 * otherwise pick differently from run to run, and the two round differently: a wide margin
 * keeps a machine's choices, and so its results, the same every run. */
#define ONEDNN_MARGIN 0.8

/* Products below this many multiply-adds are not worth timing: call overhead dominates and
 * OpenBLAS's is the lower. */
#define CALIBRATE_MIN_MACS (64 * 1024)

static po_gemm_provider choose(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                               const float *B, int64_t ldb, int64_t ldc) {
    po_gemm_provider p = setting;
    if (p == PO_GEMM_DEFAULT)
        return (double)M * (double)N * (double)K < SMALL_MACS ? PO_GEMM_ONEDNN : po_gemm_default_provider();
    if (p != PO_GEMM_AUTO) return p;
    if ((double)M * (double)N * (double)K < CALIBRATE_MIN_MACS) return PO_GEMM_OPENBLAS;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < n_choices; i++) {
        const shape_choice *c = &choices[i];
        if (c->ta == ta && c->tb == tb && c->M == M && c->N == N && c->K == K && c->lda == lda && c->ldb == ldb &&
            c->ldc == ldc) {
            po_gemm_provider p = c->choice;
            pthread_mutex_unlock(&lock);
            return p;
        }
    }
    pthread_mutex_unlock(&lock);
    p = PO_GEMM_OPENBLAS;
    float *scratch = malloc((size_t)(M * ldc) * sizeof(float));
    if (scratch) {
        double t_dnnl = time_provider(PO_GEMM_ONEDNN, ta, tb, M, N, K, A, lda, B, ldb, scratch, ldc);
        double t_blas = time_provider(PO_GEMM_OPENBLAS, ta, tb, M, N, K, A, lda, B, ldb, scratch, ldc);
        if (t_dnnl < ONEDNN_MARGIN * t_blas) p = PO_GEMM_ONEDNN;
        free(scratch);
    }
    pthread_mutex_lock(&lock);
    if (n_choices == cap_choices) {
        int cap = cap_choices ? 2 * cap_choices : 64;
        shape_choice *grown = realloc(choices, (size_t)cap * sizeof *grown);
        if (grown) {
            choices = grown;
            cap_choices = cap;
        }
    }
    if (n_choices < cap_choices) choices[n_choices++] = (shape_choice){ta, tb, M, N, K, lda, ldb, ldc, p};
    pthread_mutex_unlock(&lock);
    return p;
}

/* Debian's serial OpenBLAS is built without USE_LOCKING: its buffer pool (blas_memory_alloc)
 * hands the same buffer to two threads that call at once, and their products come out wrong
 * (measured: about 1% of 64x256x128 products with two threads calling in a loop). Linking with
 * -Wl,--wrap=blas_memory_alloc,--wrap=blas_memory_free routes the pool through the locked
 * wrappers below; the weak references keep the library linkable without those flags, and tell
 * po__gemm_concurrent whether the lock is in. */
extern void *__real_blas_memory_alloc(int procpos) __attribute__((weak));
extern void __real_blas_memory_free(void *buffer) __attribute__((weak));
static pthread_mutex_t blas_pool_lock = PTHREAD_MUTEX_INITIALIZER;
void *__wrap_blas_memory_alloc(int procpos);
void __wrap_blas_memory_free(void *buffer);
void *__wrap_blas_memory_alloc(int procpos) {
    pthread_mutex_lock(&blas_pool_lock);
    void *r = __real_blas_memory_alloc(procpos);
    pthread_mutex_unlock(&blas_pool_lock);
    return r;
}
void __wrap_blas_memory_free(void *buffer) {
    pthread_mutex_lock(&blas_pool_lock);
    __real_blas_memory_free(buffer);
    pthread_mutex_unlock(&blas_pool_lock);
}

bool po__gemm_concurrent(po_gemm_provider p) { return p == PO_GEMM_ONEDNN || __real_blas_memory_alloc != NULL; }

static _Thread_local po__gemm_hook_fn hook_fn;
static _Thread_local void *hook_ctx;

void po__gemm_set_hook(po__gemm_hook_fn fn, void *ctx) {
    hook_fn = fn;
    hook_ctx = fn ? ctx : NULL;
}

po_status po__gemm_run(const po__gemm_call *c) {
    if (c->M == 0 || c->N == 0) return PO_OK;
    if (c->provider == PO_GEMM_ONEDNN && po__gemm_matmul_wanted(c)) {
        bool ran;
        po_status st = po__gemm_matmul_run(c, &ran);
        if (st || ran) return st;
    }
    float beta = c->beta;
    if (c->bias) { /* C starts as the bias; the product accumulates onto it */
        for (int64_t r = 0; r < c->M; r++)
            memcpy(c->C + r * c->ldc, c->bias, (size_t)c->N * sizeof(float));
        beta = 1.0f;
    }
    if (c->provider == PO_GEMM_ONEDNN)
        return run_onednn(c->trans_a, c->trans_b, c->M, c->N, c->K, c->alpha, c->A, c->lda, c->B, c->ldb, beta, c->C,
                          c->ldc);
    return run_openblas(c->trans_a, c->trans_b, c->M, c->N, c->K, c->alpha, c->A, c->lda, c->B, c->ldb, beta, c->C,
                        c->ldc);
}

static po_status dispatch(const po__gemm_call *c) { return hook_fn ? hook_fn(hook_ctx, c) : po__gemm_run(c); }

po_status po__sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                    int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M == 0 || N == 0) return PO_OK;
    po__gemm_call c = {trans_a, trans_b, M, N,   K,   alpha, beta,
                       A,       B,       C, lda, ldb, ldc,   choose(trans_a, trans_b, M, N, K, A, lda, B, ldb, ldc),
                       NULL};
    return dispatch(&c);
}

po_status po__sgemm_bias(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                         const float *B, int64_t ldb, const float *bias, float *C, int64_t ldc) {
    if (M == 0 || N == 0) return PO_OK;
    po__gemm_call c = {trans_a, trans_b, M, N,   K,   1.0f, 0.0f,
                       A,       B,       C, lda, ldb, ldc,  choose(trans_a, trans_b, M, N, K, A, lda, B, ldb, ldc),
                       bias};
    return dispatch(&c);
}
