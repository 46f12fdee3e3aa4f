/* Gradient buckets for the data-parallel all-reduce: contiguous ranges of the gradient buffer,
 * each with the point in the backward pass after which it is final, in the order the backward
 * pass finishes them (the last layers' gradients first).
 *
 * Why: a worker that finishes its backward pass early can reduce the buckets every worker has
 * already finished while the slower ones are still computing, instead of waiting for all of
 * them; and once all are done, the remaining buckets are shared out, a bucket at a time, so the
 * reduction stays parallel. Buckets are sized so there are several per worker. */
#ifndef PO_RUNTIME_DP_BUCKETS_H
#define PO_RUNTIME_DP_BUCKETS_H

#include <stdatomic.h>
#include <stddef.h>

#include "paropt/graph.h"
#include "paropt/params.h"

typedef struct po_dp_bucket {
    size_t begin, end; /* floats of the gradient buffer */
    int cut;           /* final once backward nodes [0, cut) of the list have run */
    atomic_int ready;  /* workers that have passed `cut` this step */
    atomic_int claimed; /* 1 once a worker has taken it to reduce this step */
} po_dp_bucket;

typedef struct po_dp_buckets {
    int *bwd;   /* the graph's backward node ids, in graph (execution) order */
    int n_bwd;
    po_dp_bucket *b; /* in ascending cut order */
    int n;
} po_dp_buckets;

/* Buckets of g's gradients laid out as in p (g built with its backward pass), about
 * total / (4 x workers) floats each (at least 16 Ki floats, never more than one parameter's
 * tail plus others'), a parameter longer than that split across buckets. */
po_status po__dp_buckets_plan(const po_graph *g, const po_params *p, int workers, po_dp_buckets *out);
void po__dp_buckets_free(po_dp_buckets *bk);
/* Before a step: no bucket ready or claimed. */
void po__dp_buckets_reset(po_dp_buckets *bk);

#endif
