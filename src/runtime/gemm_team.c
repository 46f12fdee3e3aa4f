#define _GNU_SOURCE /* pthread_setaffinity_np */
#include "runtime/gemm_team.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/gemm.h"
#include "paropt/trace.h"

/* How long a waiting thread spins before it blocks. Products of one step come tens of
 * microseconds apart, and a futex wake-up costs about as much on a VM: spinning through such
 * gaps keeps the hand-off cheap, blocking after it keeps an idle team off the cores. The gap
 * between two training steps (the loss read back, the next batch loaded) is a few hundred
 * microseconds: with 0.2 ms of spinning the helper had often blocked by the next step's first
 * product and joined it 30-90 us late (mnist_mlp's first layer over two cores, medians of 12
 * steps: 1121 us a step; 1083 with 1 ms). */
#define SPIN_S 1e-3

typedef struct member {
    _Alignas(64) po__team *t; /* own cache line: helpers write their fields while others run */
    int index, first_core, n_cores;
    float slowdown;
    po__gemm_call block; /* its block of the current product; M or N = 0: none */
    double busy_s;
    po_status status;
    char error[256];
    pthread_t thread;
    bool started;
} member;

struct po__team {
    int n;
    member *m;
    double *cum;                           /* cum[k]: shares of members before k; cum[n] = 1 */
    int64_t *bound;                        /* n + 1 block bounds of the current product */
    _Alignas(64) atomic_uint_fast64_t gen; /* bumped for each product shared out */
    _Alignas(64) atomic_int pending;       /* helpers yet to finish it */
    atomic_int sleepers;                   /* helpers blocked on `wake` */
    atomic_bool main_waiting;              /* member 0 blocked on `done` */
    atomic_bool quit;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    const char *name, *category; /* trace labels of the current node */
    po__team_task task;          /* the current work is a task (po__team_run), not a product */
    void *task_arg;
    po_trace *trace;
    double wait_s;
    int64_t splits, k_splits;
    /* Products cut along K (split_along_k): member k > 0 writes its part of C into partial[k]
     * (cap[k] floats), and the parts are added up in a second hand-off. */
    float **partial;
    int64_t *partial_cap;
    po__gemm_call whole; /* the product being cut along K */
    /* The last product shared out: its C (NULL: the last product ran whole) and ldc, and member
     * k's part of it, rows own[4k] .. own[4k + 1] by columns own[4k + 2] .. own[4k + 3]. */
    const float *own_C;
    int64_t own_ldc;
    int64_t *own;
};

static double now_s(void) { return po_trace_now(); } /* CLOCK_MONOTONIC, as traces use */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* The emulated slowness of a member: idle `s` seconds, sleeping the bulk of a long idle and
 * spinning the rest (a sleep alone overshoots by the timer's latency, tens of microseconds on a
 * VM, which would make short blocks look much slower than the factor). */
static void idle_for(double s) {
    if (!(s > 0.0)) return;
    double end = now_s() + s;
    if (s > 2e-3) {
        double nap = s - 1e-3;
        struct timespec ts = {(time_t)nap, (long)((nap - (double)(time_t)nap) * 1e9)};
        while (nanosleep(&ts, &ts) != 0) {
        }
    }
    while (now_s() < end)
        cpu_relax();
}

static void run_block(po__team *t, member *m) {
    if (!t->task && (m->block.M == 0 || m->block.N == 0)) return;
    double t0 = now_s();
    po_status st = t->task ? t->task(m->index, t->task_arg) : po__gemm_run(&m->block);
    double t1 = now_s();
    if (st && !m->status) {
        m->status = st;
        snprintf(m->error, sizeof m->error, "%s", po_last_error());
    }
    idle_for((t1 - t0) * (double)(m->slowdown - 1.0f));
    m->busy_s += now_s() - t0;
    if (m->index > 0 && po_trace_recording(t->trace)) po_trace_slice(t->trace, m->index, t->name, t->category, t0, t1);
}

/* A helper's wait for the next product: false when the team stops. */
/* Whether a spin-wait on its i-th turn (from 1) has used up SPIN_S since its first clock read
 * (the clock is read every 256 turns; *start holds 0 until then). */
static bool spin_spent(unsigned i, double *start) {
    if (i & 255) return false;
    double now = now_s();
    if (*start == 0.0) *start = now;
    return now - *start > SPIN_S;
}

static bool wait_work(po__team *t, uint_fast64_t *seen) {
    double start = 0.0;
    for (unsigned i = 1;; i++) {
        uint_fast64_t g = atomic_load(&t->gen);
        if (g != *seen) {
            *seen = g;
            return true;
        }
        if (atomic_load(&t->quit)) return false;
        if (spin_spent(i, &start)) break;
        cpu_relax();
    }
    /* sleepers goes up before gen is read again (both sequentially consistent), so a product
     * published meanwhile either is seen here or sees this sleeper and wakes it. */
    pthread_mutex_lock(&t->lock);
    atomic_fetch_add(&t->sleepers, 1);
    while (atomic_load(&t->gen) == *seen && !atomic_load(&t->quit))
        pthread_cond_wait(&t->wake, &t->lock);
    atomic_fetch_sub(&t->sleepers, 1);
    pthread_mutex_unlock(&t->lock);
    if (atomic_load(&t->quit)) return false;
    *seen = atomic_load(&t->gen);
    return true;
}

static void *helper_main(void *arg) {
    member *m = arg;
    po__team *t = m->t;
    omp_set_num_threads(1); /* oneDNN's OpenMP: one thread per member, paropt owns the cores */
    uint_fast64_t seen = 0;
    while (wait_work(t, &seen)) {
        run_block(t, m);
        /* The last helper done wakes member 0 if it blocked (the same handshake as above). */
        if (atomic_fetch_sub(&t->pending, 1) == 1 && atomic_load(&t->main_waiting)) {
            pthread_mutex_lock(&t->lock);
            pthread_cond_signal(&t->done);
            pthread_mutex_unlock(&t->lock);
        }
    }
    return NULL;
}

static void wait_helpers(po__team *t) {
    double start = 0.0;
    for (unsigned i = 1; atomic_load(&t->pending) > 0; i++) {
        if (spin_spent(i, &start)) break;
        cpu_relax();
    }
    if (atomic_load(&t->pending) == 0) return;
    pthread_mutex_lock(&t->lock);
    atomic_store(&t->main_waiting, true);
    while (atomic_load(&t->pending) > 0)
        pthread_cond_wait(&t->done, &t->lock);
    atomic_store(&t->main_waiting, false);
    pthread_mutex_unlock(&t->lock);
}

/* Member k's block of c: rows (or columns) bound[k] .. bound[k + 1]. */
static po__gemm_call block_of(const po__gemm_call *c, bool rows, int64_t lo, int64_t hi) {
    po__gemm_call b = *c;
    if (rows) {
        b.M = hi - lo;
        b.A = c->trans_a ? c->A + lo : c->A + lo * c->lda; /* op(A) row r: A's column r when transposed */
        b.C = c->C + lo * c->ldc;
    } else {
        b.N = hi - lo;
        b.B = c->trans_b ? c->B + lo * c->ldb : c->B + lo;
        b.C = c->C + lo;
        if (c->bias) b.bias = c->bias + lo;
    }
    return b;
}

/* Publishes the current work (each member's block, or the task) to the helpers, does member
 * 0's part on this thread, waits for the helpers, and returns the first member's failure. */
static po_status share_out(po__team *t) {
    atomic_store(&t->pending, t->n - 1);
    atomic_fetch_add(&t->gen, 1);
    if (atomic_load(&t->sleepers) > 0) {
        pthread_mutex_lock(&t->lock);
        pthread_cond_broadcast(&t->wake);
        pthread_mutex_unlock(&t->lock);
    }
    run_block(t, &t->m[0]);
    double w0 = now_s();
    wait_helpers(t);
    t->wait_s += now_s() - w0;
    for (int k = 0; k < t->n; k++)
        if (t->m[k].status) {
            po_status st = t->m[k].status;
            t->m[k].status = PO_OK;
            return po_fail(st, "operator split, member %d: %s", k, t->m[k].error);
        }
    return PO_OK;
}

/* Where the cut after the first k members falls: k = 0 at 0, k = n at len, else the running
 * share on a multiple of align, within [0, len]. */
static int64_t cut_point(const po__team *t, int k, int64_t len, int64_t align) {
    if (k <= 0) return 0;
    if (k >= t->n) return len;
    int64_t b = (int64_t)llround(t->cum[k] * (double)len / (double)align) * align;
    return b < 0 ? 0 : b > len ? len : b;
}

void po__team_range(const po__team *t, int k, int64_t len, int64_t align, int64_t *lo, int64_t *hi) {
    *lo = cut_point(t, k, len, align);
    *hi = cut_point(t, k + 1, len, align);
    if (*hi < *lo) *hi = *lo;
}

/* Bounds of len cut by the shares (po__team_range's): bound[0] = 0 .. bound[n] = len. Returns
 * how many members got a non-empty part. */
static int cut(po__team *t, int64_t len, int64_t align) {
    int active = 0;
    t->bound[0] = 0;
    for (int k = 1; k <= t->n; k++) {
        int64_t b = cut_point(t, k, len, align);
        t->bound[k] = b < t->bound[k - 1] ? t->bound[k - 1] : b;
        active += t->bound[k] > t->bound[k - 1];
    }
    return active;
}

/* Whether to cut C = A B along K rather than into blocks of C: a layer's input gradient dY W,
 * K being the weight's rows, when K is at least twice M. Cut into blocks of C's rows, every
 * member would read all of W; cut along K, member k reads the rows of W it computes x W^T's
 * columns for, and the rows of W's gradient and update it gets (the same shares cut them).
 * Why it matters: the update of a row writes lines of W, and a line another core has read
 * must first be taken back from that core's caches. Two threads on the 2-core Zen 5 VM, each
 * updating half of a 1024 x 1024 weight with Adam: 0.35-0.41 ns an element when each had
 * read only its half of W before, 0.74-1.17 when each had read all of it (bench/bench_reclaim;
 * 0.18-0.28 against 1.0-1.2 with each kind run on its own). The price: member k > 0 writes an
 * M x N part and the parts are added up, which is cheap where K >= 2M (the part is at most
 * half the size of W). mnist_mlp over
 * two cores by operator split, alternated runs of 200 steps: 4.99-5.08 ms a step cut into
 * blocks of C, 4.62-5.35 (median 4.71) cut along K; its hidden layer's update 576 -> 188 us. */
static bool split_along_k(const po__team *t, const po__gemm_call *c) {
    return !c->trans_a && !c->trans_b && !c->bias && c->K >= 2 * c->M && c->K >= 64 * (int64_t)t->n &&
           c->N >= 16;
}

/* Member k's rows of C plus the other members' parts of them, added in member order. */
static po_status add_parts(int k, void *arg) {
    po__team *t = arg;
    const po__gemm_call *c = &t->whole;
    int64_t lo, hi;
    po__team_range(t, k, c->M, 1, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        float *row = c->C + r * c->ldc;
        for (int j = 1; j < t->n; j++) {
            if (t->bound[j + 1] == t->bound[j]) continue; /* no part of K: no part written */
            const float *part = t->partial[j] + r * c->N;
#pragma omp simd
            for (int64_t i = 0; i < c->N; i++)
                row[i] += part[i];
        }
    }
    return PO_OK;
}

/* Whether every member but the first has room for an M x N part (grown as needed). */
static bool have_parts(po__team *t, int64_t M, int64_t N) {
    int64_t need = M * N;
    for (int k = 1; k < t->n; k++) {
        if (t->partial_cap[k] >= need) continue;
        float *p = aligned_alloc(64, ((size_t)need * sizeof(float) + 63) / 64 * 64);
        if (!p) return false;
        free(t->partial[k]);
        t->partial[k] = p;
        t->partial_cap[k] = need;
    }
    return true;
}

/* C = alpha A B + beta C cut along K (split_along_k; the parts' room made by have_parts):
 * member 0 computes its K range into C with beta, every other member its range into its part,
 * and then each member adds the parts into its rows of C. */
static po_status sgemm_along_k(po__team *t, const po__gemm_call *c) {
    /* Row blocks of W on 16-row multiples, as x W^T's column blocks are cut (team_sgemm). */
    if (cut(t, c->K, 16) < 2) return po__gemm_run(c);
    po__gemm_call whole = *c;
    if (!po__gemm_concurrent(whole.provider)) whole.provider = PO_GEMM_ONEDNN;
    t->whole = whole;
    for (int k = 0; k < t->n; k++) {
        po__gemm_call b = whole;
        int64_t lo = t->bound[k], hi = t->bound[k + 1];
        b.K = hi - lo;
        b.A = c->A + lo;
        b.B = c->B + lo * c->ldb;
        if (k > 0) {
            b.C = t->partial[k];
            b.ldc = c->N;
            b.beta = 0.0f;
        }
        if (b.K == 0) b.M = 0; /* nothing to compute; member 0 still owes C its beta */
        t->m[k].block = b;
    }
    if (t->bound[1] == 0) { /* member 0 has no part of K: C = beta C before the parts are added */
        for (int64_t r = 0; r < c->M; r++)
            for (int64_t i = 0; i < c->N; i++)
                c->C[r * c->ldc + i] = c->beta == 0.0f ? 0.0f : c->beta * c->C[r * c->ldc + i];
    }
    t->splits++;
    t->k_splits++;
    for (int k = 0; k < t->n; k++) {
        po__team_range(t, k, c->M, 1, &t->own[4 * k], &t->own[4 * k + 1]); /* add_parts' rows */
        t->own[4 * k + 2] = 0;
        t->own[4 * k + 3] = c->N;
    }
    t->own_C = c->C;
    t->own_ldc = c->ldc;
    po_status st = share_out(t);
    if (st) return st;
    t->task = add_parts;
    t->task_arg = t;
    st = share_out(t);
    t->task = NULL;
    t->task_arg = NULL;
    return st;
}

static po_status team_sgemm(void *ctx, const po__gemm_call *c) {
    po__team *t = ctx;
    t->own_C = NULL;
    if (t->n < 2) return po__gemm_run(c);
    if (split_along_k(t, c) && have_parts(t, c->M, c->N)) return sgemm_along_k(t, c); /* else cut C */
    /* Rows keep each block's C contiguous; columns when there are too few rows to go round, and
     * for x W^T with a W larger than x, so each member reads its slice of W rather than all of
     * it (its block of C staged dense for the matmul primitive: backend/cpu/gemm_matmul.h). */
    bool rows = c->M >= c->N || (c->M >= 16 * (int64_t)t->n && !(!c->trans_a && c->trans_b));
    int64_t len = rows ? c->M : c->N;
    /* Column blocks start on a 64-byte line when there are plenty, so no two members write the
     * same cache line and the kernels' vector stores stay aligned. */
    int64_t align = !rows && len >= 64 * (int64_t)t->n ? 16 : 1;
    if (cut(t, len, align) < 2) return po__gemm_run(c);
    /* One provider for every block; where the whole product's cannot run on several threads at
     * once (the serial OpenBLAS without its pool lock), oneDNN, which can. */
    po__gemm_call whole = *c;
    if (!po__gemm_concurrent(whole.provider)) whole.provider = PO_GEMM_ONEDNN;
    for (int k = 0; k < t->n; k++) {
        t->m[k].block = block_of(&whole, rows, t->bound[k], t->bound[k + 1]);
        int64_t *o = &t->own[4 * k];
        o[0] = rows ? t->bound[k] : 0;
        o[1] = rows ? t->bound[k + 1] : c->M;
        o[2] = rows ? 0 : t->bound[k];
        o[3] = rows ? c->N : t->bound[k + 1];
    }
    t->own_C = c->C;
    t->own_ldc = c->ldc;
    t->splits++;
    return share_out(t);
}

po_status po__team_run(po__team *t, po__team_task fn, void *arg, const char *name, const char *category) {
    t->name = name;
    t->category = category;
    t->task = fn;
    t->task_arg = arg;
    po_status st = share_out(t);
    t->task = NULL;
    t->task_arg = NULL;
    return st;
}

static po_status pin(member *m) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c = m->first_core; c < m->first_core + m->n_cores; c++)
        CPU_SET(c, &set);
    if (pthread_setaffinity_np(m->thread, sizeof set, &set) != 0)
        return po_fail(PO_ERR_INVALID_ARG, "cannot pin operator-split member %d to cores %d-%d", m->index,
                       m->first_core, m->first_core + m->n_cores - 1);
    return PO_OK;
}

po_status po__team_new(const po_worker_spec *members, int n, po__team **out) {
    *out = NULL;
    if (n < 1) return po_fail(PO_ERR_INVALID_ARG, "a GEMM team needs at least one member");
    double total = 0.0;
    for (int k = 0; k < n; k++) {
        if (!(members[k].share >= 0.0) || !isfinite(members[k].share))
            return po_fail(PO_ERR_INVALID_ARG, "member %d's share must be finite and >= 0, got %g", k,
                           members[k].share);
        total += members[k].share;
    }
    /* Over-aligned (its atomics sit on cache lines of their own): calloc's alignment is short. */
    po__team *t = aligned_alloc(64, sizeof *t);
    if (!t) return po_fail(PO_ERR_NO_MEMORY, "out of memory creating a GEMM team");
    memset(t, 0, sizeof *t);
    t->n = n;
    t->m = aligned_alloc(64, (size_t)n * sizeof *t->m);
    t->cum = calloc((size_t)n + 1, sizeof *t->cum);
    t->bound = calloc((size_t)n + 1, sizeof *t->bound);
    t->partial = calloc((size_t)n, sizeof *t->partial);
    t->partial_cap = calloc((size_t)n, sizeof *t->partial_cap);
    t->own = calloc(4 * (size_t)n, sizeof *t->own);
    atomic_init(&t->gen, 0);
    atomic_init(&t->pending, 0);
    atomic_init(&t->sleepers, 0);
    atomic_init(&t->main_waiting, false);
    atomic_init(&t->quit, false);
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    pthread_cond_init(&t->done, NULL);
    if (!t->m || !t->cum || !t->bound || !t->partial || !t->partial_cap || !t->own) {
        free(t->m);
        t->m = NULL;
        po__team_free(t);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory creating a GEMM team");
    }
    memset(t->m, 0, (size_t)n * sizeof *t->m);
    for (int k = 0; k < n; k++) {
        member *m = &t->m[k];
        m->t = t;
        m->index = k;
        m->first_core = members[k].first_core;
        m->n_cores = members[k].n_cores > 0 ? members[k].n_cores : 1;
        m->slowdown = 1.0f;
        double share = total > 0.0 ? members[k].share / total : 1.0 / n;
        t->cum[k + 1] = t->cum[k] + share;
    }
    t->cum[n] = 1.0;
    po_status st = PO_OK;
    for (int k = 1; k < n && !st; k++) {
        if (pthread_create(&t->m[k].thread, NULL, helper_main, &t->m[k]) != 0) {
            st = po_fail(PO_ERR_NO_MEMORY, "cannot start operator-split helper thread %d", k);
            break;
        }
        t->m[k].started = true;
        st = pin(&t->m[k]);
    }
    if (st) {
        po__team_free(t);
        return st;
    }
    *out = t;
    return PO_OK;
}

void po__team_free(po__team *t) {
    if (!t) return;
    pthread_mutex_lock(&t->lock);
    atomic_store(&t->quit, true);
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->lock);
    for (int k = 1; t->m && k < t->n; k++)
        if (t->m[k].started) pthread_join(t->m[k].thread, NULL);
    pthread_cond_destroy(&t->wake);
    pthread_cond_destroy(&t->done);
    pthread_mutex_destroy(&t->lock);
    free(t->m);
    free(t->cum);
    free(t->bound);
    for (int k = 0; t->partial && k < t->n; k++)
        free(t->partial[k]);
    free(t->partial);
    free(t->partial_cap);
    free(t->own);
    free(t);
}

void po__team_join(po__team *t, const char *name, const char *category) {
    t->name = name;
    t->category = category;
    t->own_C = NULL; /* parts of a product of this join only */
    po__gemm_set_hook(team_sgemm, t);
}

void po__team_leave(void) { po__gemm_set_hook(NULL, NULL); }

int po__team_size(const po__team *t) { return t->n; }

po_status po__team_set_shares(po__team *t, const double *shares) {
    double total = 0.0;
    for (int k = 0; k < t->n; k++) {
        if (!(shares[k] >= 0.0) || !isfinite(shares[k]))
            return po_fail(PO_ERR_INVALID_ARG, "member %d's share must be finite and >= 0, got %g", k, shares[k]);
        total += shares[k];
    }
    for (int k = 0; k < t->n; k++)
        t->cum[k + 1] = t->cum[k] + (total > 0.0 ? shares[k] / total : 1.0 / t->n);
    t->cum[t->n] = 1.0;
    return PO_OK;
}
double po__team_share(const po__team *t, int k) { return k >= 0 && k < t->n ? t->cum[k + 1] - t->cum[k] : 0.0; }

po_status po__team_set_slowdown(po__team *t, int k, float factor) {
    if (k < 0 || k >= t->n) return po_fail(PO_ERR_INVALID_ARG, "no operator-split member %d", k);
    if (!(factor >= 1.0f) || factor > 1000.0f)
        return po_fail(PO_ERR_INVALID_ARG, "slowdown must be between 1 and 1000, got %g", factor);
    t->m[k].slowdown = factor;
    return PO_OK;
}

double po__team_busy_s(const po__team *t, int k) { return k >= 0 && k < t->n ? t->m[k].busy_s : 0.0; }
double po__team_wait_s(const po__team *t) { return t->wait_s; }
void po__team_reset_stats(po__team *t) {
    for (int k = 0; k < t->n; k++)
        t->m[k].busy_s = 0.0;
    t->wait_s = 0.0;
}
int64_t po__team_splits(const po__team *t) { return t->splits; }
int64_t po__team_k_splits(const po__team *t) { return t->k_splits; }
void po__team_set_trace(po__team *t, po_trace *tr) { t->trace = tr; }

const float *po__team_last_part(const po__team *t, int k, int64_t *ldc, int64_t part[4]) {
    if (!t->own_C || k < 0 || k >= t->n) return NULL;
    memcpy(part, &t->own[4 * k], 4 * sizeof *part);
    *ldc = t->own_ldc;
    return t->own_C;
}

