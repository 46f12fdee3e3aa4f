/* When to re-balance work between workers (runtime/balance.h). */
#include "runtime/balance.h"

#include <stdlib.h>
#include <string.h>

void po__balance_init(po__balance *b, int n) {
    memset(b, 0, sizeof *b);
    b->n = n < 1 ? 1 : n > PO__BALANCE_MAX_WORKERS ? PO__BALANCE_MAX_WORKERS : n;
    b->patience = PO__BALANCE_PATIENCE;
    b->settle = PO__BALANCE_WARMUP;
    b->suspect = -1;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, c = *(const double *)y;
    return a < c ? -1 : a > c;
}

bool po__balance_window(po__balance *b, const double *busy_s, double *median_s) {
    if (b->settle > 0) {
        b->settle--;
        return false;
    }
    for (int i = 0; i < b->n; i++)
        b->busy_s[i][b->window] = busy_s[i];
    if (++b->window < b->patience) return false;
    for (int i = 0; i < b->n; i++) {
        double *v = b->busy_s[i];
        qsort(v, (size_t)b->window, sizeof *v, cmp_double);
        median_s[i] = b->window % 2 ? v[b->window / 2] : 0.5 * (v[b->window / 2 - 1] + v[b->window / 2]);
    }
    b->window = 0;
    return true;
}

/* The slowest and fastest workers by their medians. */
static void extremes(const po__balance *b, const double *median_s, int *slow, int *fast) {
    *slow = *fast = 0;
    for (int i = 1; i < b->n; i++) {
        if (median_s[i] > median_s[*slow]) *slow = i;
        if (median_s[i] < median_s[*fast]) *fast = i;
    }
}

bool po__balance_apart(const po__balance *b, const double *median_s) {
    int slow, fast;
    extremes(b, median_s, &slow, &fast);
    return median_s[slow] > PO__BALANCE_IMBALANCE * median_s[fast];
}

bool po__balance_step(po__balance *b, const double *busy_s, double *median_s) {
    if (!po__balance_window(b, busy_s, median_s)) return false;
    int slow, fast;
    extremes(b, median_s, &slow, &fast);
    bool far = median_s[slow] > PO__BALANCE_FAR_APART * median_s[fast];
    bool apart = median_s[slow] > PO__BALANCE_IMBALANCE * median_s[fast];
    if (!far && apart && b->suspect != slow) {
        b->suspect = slow; /* a first window moderately out of balance: the move waits for a second */
        return false;
    }
    b->suspect = -1;
    return far || apart;
}

static void adapt(po__balance *b, bool had_move, bool reversal) {
    if (had_move && reversal)
        b->patience = b->patience * 2 > PO__BALANCE_MAX_PATIENCE ? PO__BALANCE_MAX_PATIENCE : b->patience * 2;
    else if (had_move)
        b->patience = b->patience / 2 < PO__BALANCE_PATIENCE ? PO__BALANCE_PATIENCE : b->patience / 2;
    b->window = 0;
    b->settle = 1;
    b->suspect = -1;
}

void po__balance_moved(po__balance *b, int direction) {
    adapt(b, b->last_move != 0, direction != b->last_move);
    b->last_move = direction;
}

void po__balance_moved_back(po__balance *b, bool reversal) {
    adapt(b, b->last_move != 0, reversal);
    b->last_move = 1;
}
