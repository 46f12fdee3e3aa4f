/* The node and graph structures, shared by the builder, autodiff, the op definitions, the
 * memory planner and the executor. Applications see nodes only through graph.h. */
#ifndef PO_GRAPH_NODE_H
#define PO_GRAPH_NODE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/alloc.h"
#include "paropt/graph.h"

#define PO_ATTR_INTS   10
#define PO_ATTR_FLOATS 8

/* Where a node's output lives while the graph runs. */
typedef enum {
    PO_STORE_ARENA, /* planned slot of the executor's arena, reused after the last consumer */
    PO_STORE_INPUT, /* executor-owned input buffer, filled before each run */
    PO_STORE_PARAM, /* parameter values buffer at the parameter's offset */
    PO_STORE_GRAD,  /* gradient buffer at the parameter's offset */
    PO_STORE_VIEW,  /* bytes [view_offset, ...) of view_src's output: no storage of its own */
} po_store;

/* Where a node's auxiliary buffer (state saved for the backward pass) lives. */
typedef enum {
    PO_AUX_ARENA,    /* planned like the output, alive as long as the output */
    PO_AUX_OPTSTATE, /* optimizer state of parameter param_index (persistent) */
} po_aux_store;

struct po_node {
    int id; /* index in graph->nodes; inputs always have smaller ids */
    po_op op;
    po_dtype dtype;
    po_shape shape;
    int n_in;
    po_node **in;

    int64_t ai[PO_ATTR_INTS]; /* op attributes; meaning per op (see the op's file) */
    float af[PO_ATTR_FLOATS];

    size_t aux_bytes;     /* saved state for backward (softmax probabilities, pool argmax) */
    size_t scratch_bytes; /* temporary space needed only while the kernel runs */

    const char *name; /* full name of inputs and parameters */
    int layer;        /* index into graph layers, or -1 */
    po_phase phase;

    po_store store;
    po_aux_store aux_store;
    po_node *view_src;  /* PO_STORE_VIEW: the node whose output this one aliases */
    size_t view_offset; /* PO_STORE_VIEW: byte offset into view_src's output */
    int param_index;    /* PARAM nodes, GRAD-stored nodes, optimizer nodes; else -1 */

    bool requires_grad; /* depends on a parameter */
    bool keep;          /* output must stay readable after the run */
    po_node *grad;      /* gradient of the loss for this output (autodiff) */
    po_init init;       /* PARAM only */
};

struct po_graph {
    po_arena *arena;
    po_node **nodes;
    int n_nodes, cap_nodes;
    po_node **params;
    int n_params, cap_params;
    char **layers;
    int n_layers, cap_layers;
    int cur_layer;
    po_phase cur_phase;
    char scope[512];   /* current parameter-name prefix, "" or "a.b." */
    int scope_len[32]; /* prefix length before each push */
    int scope_depth;
    po_status status;
    char error[512];
    po_node *loss;   /* set by po_graph_backward */
    int optim_slots; /* floats of optimizer state per parameter element (0, 1 or 2) */
};

/* Number of elements and bytes of a node's output. */
static inline int64_t po__numel(const po_node *n) { return po_shape_numel(&n->shape); }
static inline size_t po__nbytes(const po_node *n) { return (size_t)po__numel(n) * po_dtype_size(n->dtype); }

/* Records the graph's first error (with the detail also in po_last_error) and returns NULL. */
po_node *po__graph_fail(po_graph *g, po_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Appends a node of `op` with the given inputs, attributes copied from ai/af (either may be
 * NULL), runs the op's shape inference, and returns it; NULL (graph error recorded) when an
 * input is NULL or inference rejects the arguments. */
po_node *po__node_new(po_graph *g, po_op op, int n_in, po_node *const *in, const int64_t *ai, const float *af);

/* Autodiff helper: adds gx to x's gradient (creating the sum node when x already has one).
 * Does nothing when x does not require a gradient. */
void po__acc_grad(po_graph *g, po_node *x, po_node *gx);

/* True when the gradient for input i of n is needed. */
static inline bool po__wants_grad(const po_node *n, int i) { return n->in[i]->requires_grad; }

#endif
