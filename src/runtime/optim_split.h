/* The optimizer's updates shared out among threads by element (data parallel's workers after the
 * all-reduce, operator split's members): every member applies a contiguous stretch of the
 * updates, in proportion to its share, so one large parameter no longer lands on one thread
 * (cifar_cnn's first fully connected weight is 94% of its parameters). */
#ifndef PO_RUNTIME_OPTIM_SPLIT_H
#define PO_RUNTIME_OPTIM_SPLIT_H

#include <stdbool.h>
#include <stdint.h>

#include "paropt/runtime.h"

typedef struct po__opt_piece {
    int node;            /* the optimizer node */
    int64_t begin, end;  /* its elements [begin, end) */
} po__opt_piece;

/* Nodes ids[0..n) (sizes[i] elements; divisible[i]: whether its op runs by element ranges) laid
 * end to end; member k takes the stretch from cum_k to cum_(k+1) of the total, cum being the
 * running sum of the shares (>= 0, normalised here; all 0 = even). A boundary inside a node
 * moves to a multiple of 16 elements of it (no two members write one 64-byte line of an aligned
 * parameter), or to the node's nearer end when it is not divisible. out gets the pieces (room
 * for n + n_members), member k's being out[first[k] .. first[k + 1]), in node order; returns
 * their number. */
int po__optim_split(const int *ids, const int64_t *sizes, const bool *divisible, int n, const double *shares,
                    int n_members, po__opt_piece *out, int *first);

/* Optimizer nodes of ex's graph shared out by po__optim_split: nodes[0..n_nodes) (a hybrid
 * plan's stage's), or every optimizer node in graph order when nodes is NULL. Each op's range
 * kernel decides whether it is divisible (po__exec_has_range). *pieces and *first (member k
 * applies (*pieces)[(*first)[k] .. (*first)[k + 1])) are malloc'd; the caller frees both (also
 * after a failure: they are then NULL). */
po_status po__optim_split_exec(const po_exec *ex, const int *nodes, int n_nodes, const double *shares, int n_members,
                               po__opt_piece **pieces, int **first);
/* Member k's pieces applied to ex from the calling thread (po__exec_run_range; a node without a
 * range kernel comes whole, as one piece, and runs whole). */
po_status po__optim_apply(po_exec *ex, const po__opt_piece *pieces, const int *first, int k);

#endif
