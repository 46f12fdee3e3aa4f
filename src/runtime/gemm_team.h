/* A GEMM team: threads pinned to CPU core groups that share out the matrix products of one
 * thread (operator split in shared memory).
 *
 * Member 0 is whichever thread joins the team; members 1..n-1 are helper threads the team
 * starts, each pinned to its member's cores. While a thread has joined, each of its po__sgemm
 * calls is cut into contiguous blocks of C — rows (M), or columns (N) when M is small — in
 * proportion to the members' shares; every member computes its block with the provider chosen
 * for the whole product (member 0 on the joined thread), and the call returns when all are
 * done. No copies: every member reads A and B and writes its block of C in place. A product
 * dY W whose K is at least twice its M is cut along K instead (gemm_team.c, split_along_k):
 * members compute parts of C from their rows of W, added up after in member order.
 *
 * Helpers wait for work spinning briefly, then blocking on a condition variable; the joined
 * thread waits for the helpers the same way. No thread is created per call. */
#ifndef PO_RUNTIME_GEMM_TEAM_H
#define PO_RUNTIME_GEMM_TEAM_H

#include <stdbool.h>
#include <stdint.h>

#include "paropt/train.h"

struct po_trace;
typedef struct po__team po__team;

/* members[k]: cores and share of member k (shares normalised; all 0 = even). Starts n - 1
 * helper threads pinned to members[1..n-1]'s cores (members[0]'s cores are the joining
 * thread's business). PO_ERR_INVALID_ARG for n < 1, a negative share or a core that cannot
 * be pinned. */
po_status po__team_new(const po_worker_spec *members, int n, po__team **out);
/* Stops and joins the helpers. t must not be joined. NULL is fine. */
void po__team_free(po__team *t);

/* The calling thread's po__sgemm calls are shared out across the team until it leaves. One
 * thread at a time; name and category label the helpers' trace slices (static strings). */
void po__team_join(po__team *t, const char *name, const char *category);
void po__team_leave(void);

/* Runs fn(k, arg) on every member k at once (member 0 on the calling thread, which must not be
 * joined) and waits for all: work other than products shared out by hand. Each member's time
 * counts as its busy time, slowed by its factor; helpers' runs are traced under name/category.
 * Returns the first member's failure, with its message. */
typedef po_status (*po__team_task)(int member, void *arg);
po_status po__team_run(po__team *t, po__team_task fn, void *arg, const char *name, const char *category);

int po__team_size(const po__team *t);
/* New shares for the members (as po__team_new's: >= 0, normalised, all 0 = even), used from the
 * next product on. Call between products. PO_ERR_INVALID_ARG for a negative or non-finite one. */
po_status po__team_set_shares(po__team *t, const double *shares);
double po__team_share(const po__team *t, int member);
/* Member k's stretch [*lo, *hi) of len items cut by the shares, the cut on multiples of align
 * (the last member's end is len): as the team cuts a product's rows or columns, so work shared
 * out by hand (operator split's fused updates of a weight gradient's rows) takes the same
 * items a member's block of the product did. */
void po__team_range(const po__team *t, int member, int64_t len, int64_t align, int64_t *lo, int64_t *hi);

/* Where member k's part of C fell in the last product the joined thread's po__sgemm shared
 * out (since it last joined): rows part[0] .. part[1] by columns part[2] .. part[3] of the
 * returned C (leading dimension *ldc); its block, or for a product cut along K the rows it
 * added the parts into. The parts tile C. NULL when the last product ran whole (too small to
 * cut, or one member), or none has run since the join: so element-wise work on a product's
 * output can be done by each member on what it wrote (runtime/opsplit.c). */
const float *po__team_last_part(const po__team *t, int k, int64_t *ldc, int64_t part[4]);

/* Emulates a device `factor` times slower: after each block, member k idles (factor - 1)
 * times the block's duration (spinning when short, so timer latency does not inflate it). */
po_status po__team_set_slowdown(po__team *t, int member, float factor);

/* Since the last po__team_reset_stats: each member's busy seconds (its blocks and their
 * emulated idling) and member 0's seconds waiting for helpers. Read between calls. */
double po__team_busy_s(const po__team *t, int member);
double po__team_wait_s(const po__team *t);
void po__team_reset_stats(po__team *t);
/* Products shared out (cut into at least two non-empty blocks) since the team started; of
 * those, the ones cut along K (C = A B with K >= 2M, as a layer's input gradient dY W: each
 * member reads only its rows of B and writes its part of C, the parts then added up). */
int64_t po__team_splits(const po__team *t);
int64_t po__team_k_splits(const po__team *t);

/* Helpers record each block as a slice on track k (their member index) while tr records;
 * NULL stops. Set between calls. */
void po__team_set_trace(po__team *t, struct po_trace *tr);

#endif
