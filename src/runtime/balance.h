/* When to re-balance work between workers: the trigger data parallel's re-split, operator
 * split's re-share and a pipeline's re-partition (runtime/pp_rebalance.h) have in common.
 *
 * Each step, every worker's busy time goes into a window. When the window holds `patience` steps
 * (PO__BALANCE_PATIENCE at first), the per-worker medians are compared: one slow step in a window
 * (a shared machine's neighbour, a page-fault burst) moves a mean, not a median. If the slowest
 * median exceeds the fastest by more than PO__BALANCE_IMBALANCE, the caller should re-balance;
 * po__balance_step asks for two such windows in a row, with the same worker slowest, unless the
 * medians are more than PO__BALANCE_FAR_APART apart (a device slowed down: one window is enough).
 * Why: a re-balance is not free (after a re-share of mnist_mlp's operator split the next step took
 * 10.5-12.6 ms against 4.5, its first product with the new block shapes 4.3 ms against 0.6: most
 * likely oneDNN creating primitives for them), and a shared machine's noise puts a few steps
 * 10-30% out of balance now and then, a move the next window undid.
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
/* Steps a new trigger does not measure: a trainer's first steps pay for page faults, buffers
 * grown on first use and primitive creation, unevenly across workers. mnist_mlp by operator split
 * over two cores (Zen 5 VM), 60-step runs: the first window (steps 1-4) re-shared at step 4 in 2
 * of 8 runs (6 of 8 without the calibration steps before training), the next window moving most
 * of it back. Skipping these steps and asking for two windows: 0 re-shares in 12 alternated runs,
 * against 3 in 1 of 12 before, which then took 5.22 ms a step against 4.1-4.5. */
#define PO__BALANCE_WARMUP 3

typedef struct po__balance {
    int n;        /* workers */
    int window;   /* steps recorded */
    int patience; /* steps per window */
    int settle;   /* steps to skip before recording again */
    int last_move;
    int suspect;  /* the last window's slowest worker when it closed moderately out of balance; -1 */
    double busy_s[PO__BALANCE_MAX_WORKERS][PO__BALANCE_MAX_PATIENCE];
} po__balance;

/* A fresh trigger for n workers (1 <= n <= PO__BALANCE_MAX_WORKERS); its first
 * PO__BALANCE_WARMUP steps are not recorded. */
void po__balance_init(po__balance *b, int n);
/* Records one step's busy seconds per worker (busy_s[0..n-1]); a settle step records nothing.
 * True when a window just closed: median_s[0..n-1] then holds each worker's median over it. */
bool po__balance_window(po__balance *b, const double *busy_s, double *median_s);
/* Whether medians median_s[0..n-1] are out of balance (slowest > PO__BALANCE_IMBALANCE x
 * fastest). */
bool po__balance_apart(const po__balance *b, const double *median_s);
/* po__balance_window, true only when the window closed out of balance: more than
 * PO__BALANCE_FAR_APART, or more than PO__BALANCE_IMBALANCE with the same slowest worker as the
 * window before (which was then out of balance too). */
bool po__balance_step(po__balance *b, const double *busy_s, double *median_s);
/* The caller re-balanced; direction: +1 or -1 (the way worker 0's work moved), which adapts
 * the window; the next step is skipped. */
void po__balance_moved(po__balance *b, int direction);
/* The same for moves without a direction (a pipeline's partition): reversal says whether the
 * move undid the previous one. */
void po__balance_moved_back(po__balance *b, bool reversal);

#endif
