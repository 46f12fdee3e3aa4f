/* The batch loader: po_loader_next gathers the batch at the caller's position straight into the
 * caller's tensors, on the caller's thread.
 *
 * It once had a worker thread fill a slot with the next batch while the caller trained, and
 * copied the slot over. That overlap never happened where it mattered: the wake-up put the worker
 * on the caller's core, which waited for the fill, and a plan that keeps every core busy leaves
 * no core to overlap on. mnist_mlp over two cores (Zen 5 VM, medians of 270 steps, two runs
 * each): 95-127 us a step in po_loader_next with the worker, 69-70 filling directly (one core:
 * 64-71 against 49-68). Every dataset is in memory, so a fill is a gather (and for images a
 * byte-to-float conversion), about the cost of the copy it replaces. */
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "data/readers.h"

struct po_loader {
    const po_dataset *d;
    int64_t B, bpe; /* batch size, batches per epoch */
    bool shuffle;   /* permuted order per epoch (else file order) */
    bool keep_last; /* evaluation: the final short batch is served */
    uint64_t seed;  /* shuffle seed */
    int64_t xrow;   /* elements per sample */
    int64_t yrow;   /* targets per sample */
    size_t xbytes;  /* B * xrow * dtype size */
    size_t ybytes;  /* B * yrow * 8 */
    int64_t epoch;  /* the position next() hands over */
    int64_t batch;  /* ... */
    int64_t rows;   /* valid rows of the last batch handed over */
    int64_t *perm;  /* the order of perm_epoch (shuffle only) */
    int64_t perm_epoch;
    int64_t *idx; /* the batch's sample indices */
};

static uint64_t mix64(uint64_t z) { /* splitmix64's finaliser: a bijective hash */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The order of epoch e: Fisher-Yates from an RNG seeded by a hash of (seed, e). Hashing, rather
 * than seed + e, keeps neighbouring epochs' streams unrelated (po_rng_seed walks splitmix64,
 * whose consecutive seeds would give shifted copies of one another's state). */
static void permute(int64_t *perm, int64_t n, uint64_t seed, int64_t e) {
    po_rng r;
    po_rng_seed(&r, mix64(seed ^ mix64((uint64_t)e + 0x9e3779b97f4a7c15ULL)));
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)po_rng_below(&r, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* Writes batch (e, b) into x and y (xbytes and ybytes long); returns its valid rows. */
static int64_t fill(po_loader *l, int64_t e, int64_t b, void *x, int64_t *y) {
    int64_t start = b * l->B, rows = l->d->n - start < l->B ? l->d->n - start : l->B;
    if (l->shuffle && l->perm_epoch != e) {
        permute(l->perm, l->d->n, l->seed, e);
        l->perm_epoch = e;
    }
    for (int64_t r = 0; r < rows; r++)
        l->idx[r] = l->shuffle ? l->perm[start + r] : start + r;
    po__dataset_fill(l->d, l->idx, rows, x, y);
    if (rows < l->B) { /* a short evaluation batch: zero padding, never stale samples */
        size_t xs = (size_t)l->xrow * po_dtype_size(l->d->dtype);
        memset((char *)x + (size_t)rows * xs, 0, l->xbytes - (size_t)rows * xs);
        memset(y + (size_t)rows * (size_t)l->yrow, 0, l->ybytes - (size_t)rows * (size_t)l->yrow * 8);
    }
    return rows;
}

static po_status create(const po_dataset *d, int64_t batch, uint64_t seed, bool shuffle, bool keep_last,
                        po_loader **out) {
    *out = NULL;
    if (batch < 1)
        return po_fail(PO_ERR_INVALID_ARG, "%s: batch size %lld must be positive", d->name, (long long)batch);
    if (!keep_last && batch > d->n)
        return po_fail(PO_ERR_INVALID_ARG, "%s: batch size %lld exceeds the %lld samples, so an epoch has no batch",
                       d->name, (long long)batch, (long long)d->n);
    po_loader *l = calloc(1, sizeof *l);
    if (!l) return po_fail(PO_ERR_NO_MEMORY, "out of memory for a loader");
    l->d = d;
    l->B = batch;
    l->bpe = keep_last ? (d->n + batch - 1) / batch : d->n / batch;
    l->shuffle = shuffle;
    l->keep_last = keep_last;
    l->seed = seed;
    l->xrow = po_shape_numel(&d->sample);
    l->yrow = po_shape_numel(&d->target);
    l->xbytes = (size_t)batch * (size_t)l->xrow * po_dtype_size(d->dtype);
    l->ybytes = (size_t)batch * (size_t)l->yrow * sizeof(int64_t);
    l->perm_epoch = -1;
    l->idx = malloc((size_t)batch * sizeof *l->idx);
    l->perm = shuffle ? malloc((size_t)d->n * sizeof *l->perm) : NULL;
    if (!l->idx || (shuffle && !l->perm)) {
        po_loader_free(l);
        return po_fail(PO_ERR_NO_MEMORY, "%s: out of memory for a loader of batch %lld", d->name, (long long)batch);
    }
    *out = l;
    return PO_OK;
}

po_status po_loader_new(const po_dataset *d, int64_t batch, uint64_t shuffle_seed, bool shuffle, po_loader **out) {
    return create(d, batch, shuffle_seed, shuffle, false, out);
}

po_status po_loader_new_eval(const po_dataset *d, int64_t batch, po_loader **out) {
    return create(d, batch, 0, false, true, out);
}

void po_loader_free(po_loader *l) {
    if (!l) return;
    free(l->idx);
    free(l->perm);
    free(l);
}

po_status po_loader_next(po_loader *l, po_tensor *x_out, po_tensor *y_out) {
    po_status st = po__check_batch_tensor(x_out, l->d->dtype, l->B, l->xrow, "batch samples");
    if (!st) st = po__check_batch_tensor(y_out, PO_I64, l->B, l->yrow, "batch targets");
    if (st) return st;
    l->rows = fill(l, l->epoch, l->batch, x_out->data, y_out->data);
    if (++l->batch == l->bpe) {
        l->batch = 0;
        l->epoch++;
    }
    return PO_OK;
}

int64_t po_loader_rows(const po_loader *l) { return l->rows; }

void po_loader_position(const po_loader *l, int64_t *epoch, int64_t *batch_in_epoch) {
    if (epoch) *epoch = l->epoch;
    if (batch_in_epoch) *batch_in_epoch = l->batch;
}

po_status po_loader_seek(po_loader *l, int64_t epoch, int64_t batch_in_epoch) {
    if (epoch < 0 || batch_in_epoch < 0 || batch_in_epoch >= l->bpe)
        return po_fail(PO_ERR_RANGE,
                       "%s: loader position (epoch %lld, batch %lld) is outside epoch >= 0, batch in [0, %lld)",
                       l->d->name, (long long)epoch, (long long)batch_in_epoch, (long long)l->bpe);
    l->epoch = epoch;
    l->batch = batch_in_epoch;
    l->rows = 0;
    return PO_OK;
}

int64_t po_loader_batches_per_epoch(const po_loader *l) { return l->bpe; }
int64_t po_loader_batch_size(const po_loader *l) { return l->B; }
