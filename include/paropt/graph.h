/* Computation graphs: the builder API and reverse-mode autodiff.
 *
 * A graph is a list of nodes in topological order (a node's inputs always come before it).
 * Builder functions append one node and return it; they never fail loudly: on bad arguments
 * they return NULL and record the first error in the graph (po_graph_status), and every
 * builder given a NULL input returns NULL, so a model can be built with straight-line code
 * and checked once at the end.
 *
 * Nodes belong to their graph: they are freed with it and never individually.
 * All shapes are row-major; float data is F32. */
#ifndef PAROPT_GRAPH_H
#define PAROPT_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "paropt/ops.h"
#include "paropt/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct po_graph po_graph;
typedef struct po_node po_node;

/* Which part of a training step a node belongs to. */
typedef enum { PO_PHASE_FORWARD, PO_PHASE_BACKWARD, PO_PHASE_OPTIMIZER } po_phase;

/* How a parameter is initialised (PyTorch's defaults for the layer that owns it). */
typedef enum {
    PO_INIT_ZEROS,
    PO_INIT_ONES,
    PO_INIT_UNIFORM, /* U(-bound, bound); Linear/Conv2d use bound = 1/sqrt(fan_in) */
    PO_INIT_NORMAL,  /* N(0, std^2); Embedding uses std = 1 */
} po_init_kind;

typedef struct po_init {
    po_init_kind kind;
    float scale; /* bound for UNIFORM, std for NORMAL; unused otherwise */
} po_init;

po_init po_init_uniform_fan_in(int64_t fan_in); /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */

/* Creates an empty graph; NULL when out of memory. */
po_graph *po_graph_new(void);
void po_graph_free(po_graph *g);

/* PO_OK, or the first error any builder call met (its detail in po_graph_error). */
po_status po_graph_status(const po_graph *g);
const char *po_graph_error(const po_graph *g);

/* Parameter-name scopes: inside push_scope("blocks.0") then push_scope("qkv"), po_param(g,
 * "weight", ...) is named "blocks.0.qkv.weight", as in a PyTorch state_dict. */
void po_graph_push_scope(po_graph *g, const char *name);
void po_graph_pop_scope(po_graph *g);

/* Layer of every node created from now on (until the next call). Layers are the units a
 * pipeline stage is cut from; backward and optimizer nodes inherit the layer of the forward
 * node they differentiate or the parameter they update. NULL ends the current layer. */
void po_graph_set_layer(po_graph *g, const char *name);
int po_graph_n_layers(const po_graph *g);
const char *po_graph_layer_name(const po_graph *g, int layer);

/* --- leaves ------------------------------------------------------------------------------ */

/* Data supplied at each run (images, token ids, targets). */
po_node *po_input(po_graph *g, const char *name, po_dtype dtype, po_shape shape);
/* Trainable F32 parameter named <scope>.<name>; the name must be unique in the graph. */
po_node *po_param(po_graph *g, const char *name, po_shape shape, po_init init);
/* Tensor filled with `value`. */
po_node *po_fill(po_graph *g, po_shape shape, float value);

/* --- operations (shapes in the comments; "..." is any number of leading dims) ------------- */

/* a[..., M, K] (or [..., K, M] when trans_a) @ b[..., K, N] (or [..., N, K] when trans_b).
 * b may be 2-D and is then shared by every leading index of a (trans_a then needs a 2-D a). */
po_node *po_matmul(po_graph *g, po_node *a, po_node *b, bool trans_a, bool trans_b);
/* x[..., in] @ w[out, in]^T + b[out] (b may be NULL) -> [..., out] */
po_node *po_linear(po_graph *g, po_node *x, po_node *w, po_node *b);
/* a + b and a * b: b has a's shape or a suffix of it (broadcast over a's leading dims). */
po_node *po_add(po_graph *g, po_node *a, po_node *b);
po_node *po_mul(po_graph *g, po_node *a, po_node *b);
po_node *po_scale(po_graph *g, po_node *x, float s);
/* Sums x[..., suffix] over its leading dims down to `shape` (a suffix of x's shape). */
po_node *po_sum_to(po_graph *g, po_node *x, po_shape shape);
po_node *po_relu(po_graph *g, po_node *x);
/* Exact GELU, x * 0.5 * (1 + erf(x / sqrt(2))), as torch.nn.functional.gelu. */
po_node *po_gelu(po_graph *g, po_node *x);

typedef struct po_conv2d_opts {
    int stride_h, stride_w; /* >= 1 */
    int pad_h, pad_w;       /* zero padding on each side, >= 0 */
} po_conv2d_opts;
po_conv2d_opts po_conv2d_opts_default(void); /* stride 1, no padding */
/* x[N, C, H, W], w[O, C, KH, KW], b[O] or NULL -> [N, O, OH, OW] with
 * OH = floor((H + 2 pad_h - KH) / stride_h) + 1, and OW likewise. */
po_node *po_conv2d(po_graph *g, po_node *x, po_node *w, po_node *b, po_conv2d_opts opts);
/* Max pooling over x[N, C, H, W] with a square window; padding (at most kernel / 2, as in
 * PyTorch) counts as -inf; OH = floor((H + 2 padding - kernel) / stride) + 1. As PyTorch's CPU
 * kernel: the first maximum of a window wins, except that a NaN wins over any number. */
po_node *po_max_pool2d(po_graph *g, po_node *x, int kernel, int stride, int padding);

/* Same data, new shape (one extent may be -1). A view: no copy. */
po_node *po_reshape(po_graph *g, po_node *x, po_shape shape);
/* Merges dims start_dim..last into one, as torch.flatten(x, start_dim). A view. */
po_node *po_flatten(po_graph *g, po_node *x, int start_dim);
/* Swaps dims d0 and d1 (negative counts from the end). */
po_node *po_transpose(po_graph *g, po_node *x, int d0, int d1);
/* Elements [start, start+len) along dim. A view when the slice is contiguous in memory. */
po_node *po_slice(po_graph *g, po_node *x, int dim, int64_t start, int64_t len);
/* Splits dim into parts of `size` (the last may be smaller), as torch.split; writes up to
 * max_parts nodes to out and returns how many (0 on error). */
int po_split(po_graph *g, po_node *x, int dim, int64_t size, po_node **out, int max_parts);
/* Joins n tensors along dim; all other extents must match. */
po_node *po_concat(po_graph *g, po_node *const *xs, int n, int dim);

/* Normalises over the last dim: (x - mean) / sqrt(var + eps) * w + b; w, b: [D]. */
po_node *po_layer_norm(po_graph *g, po_node *x, po_node *w, po_node *b, float eps);
/* ids[...] (I32 or I64) into table[V, D] -> [..., D]; ids outside [0, V) fail at run time. */
po_node *po_embedding(po_graph *g, po_node *ids, po_node *table);
/* Softmax over the last dim. */
po_node *po_softmax(po_graph *g, po_node *x);
/* Multi-head causal self-attention on packed projections: qkv[B, T, 3D] holds q, k and v
 * (each [B, T, D], D = heads * head_dim) side by side, as a Linear(D, 3D) writes them.
 * Returns softmax(q k^T / sqrt(head_dim), future masked) v with heads merged: [B, T, D]. */
po_node *po_causal_attention(po_graph *g, po_node *qkv, int heads);
/* Mean cross-entropy of logits[..., C] against integer targets[...] (I32 or I64): a scalar.
 * Targets outside [0, C) fail at run time. */
po_node *po_cross_entropy(po_graph *g, po_node *logits, po_node *targets);

/* --- autodiff ----------------------------------------------------------------------------- */

/* Appends the backward pass of scalar `loss`: afterwards po_node_grad(p) is the gradient of
 * loss for every parameter p (a zero-filled node for parameters loss does not depend on).
 * Parameter gradients are computed straight into the gradient buffer of po_params. */
po_status po_graph_backward(po_graph *g, po_node *loss);
/* Gradient of the loss for this node after po_graph_backward, else NULL. */
po_node *po_node_grad(const po_node *n);

/* Keeps n's value readable after a run (po_exec_output); other intermediate buffers are
 * reused as soon as their last consumer ran. Inputs, parameters and gradients always are. */
void po_graph_keep(po_graph *g, po_node *n);

/* --- inspection --------------------------------------------------------------------------- */

int po_graph_size(const po_graph *g);
po_node *po_graph_node(const po_graph *g, int i);
int po_graph_n_params(const po_graph *g);
po_node *po_graph_param(const po_graph *g, int i);
/* The parameter with this full name, or NULL. */
po_node *po_graph_find_param(const po_graph *g, const char *name);

int po_node_id(const po_node *n); /* position in the graph */
po_op po_node_op(const po_node *n);
po_dtype po_node_dtype(const po_node *n);
po_shape po_node_shape(const po_node *n);
const char *po_node_name(const po_node *n); /* inputs and parameters; NULL otherwise */
po_phase po_node_phase(const po_node *n);
int po_node_layer(const po_node *n); /* -1 when outside every layer */
int po_node_n_inputs(const po_node *n);
po_node *po_node_input(const po_node *n, int i);

#ifdef __cplusplus
}
#endif
#endif
