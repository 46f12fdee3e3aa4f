/* When to re-balance work between workers: the trigger data parallel's re-split, operator
 * split's re-share and a pipeline's re-partition (runtime/pp_rebalance.h) have in common.
 *
 * Each step, every worker's busy time goes into a window. When the window holds `patience` steps
 * (PO__BALANCE_PATIENCE at first), the per-worker medians are compared: one slow step in a window
 * (a shared machine's neighbour, a page-fault burst) moves a mean, not a median. If the slowest
 * median exceeds the fastest by more than PO__BALANCE_IMBALANCE, the caller should re-balance.
 * A re-balance that reverses the previous one's direction is taken as noise, not a change of
 * speed: each reversal doubles the window (up to PO__BALANCE_MAX_PATIENCE steps), each move in
 * the same direction halves it again. After a re-balance the next step is not measured (new
 * graphs pay for page faults and primitive creation once). */
#ifndef PO_RUNTIME_BALANCE_H
#define PO_RUNTIME_BALANCE_H

#include <stdbool.h>

#define PO__BALANCE_IMBALANCE    1.10
/* Medians further apart than this (a device slowed down, a first split far off) justify moving
 * all the way to the measured-speed target at once; closer, halfway, against timing noise. */
#define PO__BALANCE_FAR_APART 1.3
#define PO__BALANCE_PATIENCE     4
#define PO__BALANCE_MAX_PATIENCE 64
#define PO__BALANCE_MAX_WORKERS  64

typedef struct po__balance {
    int n;        /* workers */
    int window;   /* steps recorded */
    int patience; /* steps per window */
    int settle;   /* steps to skip before recording again */
    int last_move;
    double busy_s[PO__BALANCE_MAX_WORKERS][PO__BALANCE_MAX_PATIENCE];
} po__balance;

/* A fresh trigger for n workers (1 <= n <= PO__BALANCE_MAX_WORKERS). */
void po__balance_init(po__balance *b, int n);
/* Records one step's busy seconds per worker (busy_s[0..n-1]); a settle step records nothing.
 * True when a window just closed: median_s[0..n-1] then holds each worker's median over it. */
bool po__balance_window(po__balance *b, const double *busy_s, double *median_s);
/* Whether medians median_s[0..n-1] are out of balance (slowest > PO__BALANCE_IMBALANCE x
 * fastest). */
bool po__balance_apart(const po__balance *b, const double *median_s);
/* po__balance_window, true only when the window closed out of balance. */
bool po__balance_step(po__balance *b, const double *busy_s, double *median_s);
/* The caller re-balanced; direction: +1 or -1 (the way worker 0's work moved), which adapts
 * the window; the next step is skipped. */
void po__balance_moved(po__balance *b, int direction);
/* The same for moves without a direction (a pipeline's partition): reversal says whether the
 * move undid the previous one. */
void po__balance_moved_back(po__balance *b, bool reversal);

#endif
