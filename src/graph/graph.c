/* Graph construction: node allocation, scopes and layers, leaves, inspection. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/node.h"
#include "ops/op_def.h"

po_init po_init_uniform_fan_in(int64_t fan_in) {
    po_init i = {PO_INIT_UNIFORM, fan_in > 0 ? (float)(1.0 / sqrt((double)fan_in)) : 0.0f};
    return i;
}

po_graph *po_graph_new(void) {
    po_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->arena = po_arena_new();
    if (!g->arena) {
        free(g);
        return NULL;
    }
    g->cur_layer = -1;
    return g;
}

void po_graph_free(po_graph *g) {
    if (!g) return;
    free(g->nodes);
    free(g->params);
    free(g->layers);
    po_arena_free(g->arena);
    free(g);
}

po_status po_graph_status(const po_graph *g) { return g->status; }
const char *po_graph_error(const po_graph *g) { return g->status ? g->error : "ok"; }

po_node *po__graph_fail(po_graph *g, po_status s, const char *fmt, ...) {
    if (g->status == PO_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g->error, sizeof g->error, fmt, ap);
        va_end(ap);
        g->status = s;
    }
    po_fail(g->status, "%s", g->error);
    return NULL;
}

static bool grow(void **items, int *cap, int need, size_t item_size) {
    if (need <= *cap) return true;
    int n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *p = realloc(*items, (size_t)n * item_size);
    if (!p) return false;
    *items = p;
    *cap = n;
    return true;
}

po_node *po__node_new(po_graph *g, po_op op, int n_in, po_node *const *in, const int64_t *ai, const float *af) {
    if (g->status) return NULL;
    for (int i = 0; i < n_in; i++)
        if (!in[i]) return po__graph_fail(g, PO_ERR_INVALID_ARG, "%s: input %d is NULL", po_op_name(op), i);
    if (!grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(po_node *)))
        return po__graph_fail(g, PO_ERR_NO_MEMORY, "out of memory building the graph");
    po_node *n = po_arena_alloc(g->arena, sizeof *n);
    po_node **ins = n_in ? po_arena_alloc(g->arena, sizeof(po_node *) * (size_t)n_in) : NULL;
    if (!n || (n_in && !ins)) return po__graph_fail(g, PO_ERR_NO_MEMORY, "out of memory building the graph");
    n->id = g->n_nodes;
    n->op = op;
    n->dtype = PO_F32;
    n->n_in = n_in;
    n->in = ins;
    for (int i = 0; i < n_in; i++) {
        ins[i] = in[i];
        if (in[i]->requires_grad) n->requires_grad = true;
    }
    if (ai) memcpy(n->ai, ai, sizeof n->ai);
    if (af) memcpy(n->af, af, sizeof n->af);
    n->layer = g->cur_layer;
    n->phase = g->cur_phase;
    n->store = PO_STORE_ARENA;
    n->param_index = -1;
    po_status st = po__op_def(op)->infer(n);
    if (st) return po__graph_fail(g, st, "%s: %s", po_op_name(op), po_last_error());
    g->nodes[g->n_nodes++] = n;
    return n;
}

/* --- scopes and layers ---------------------------------------------------------------------- */

void po_graph_push_scope(po_graph *g, const char *name) {
    size_t len = strlen(g->scope), add = strlen(name);
    if (g->scope_depth >= (int)(sizeof g->scope_len / sizeof g->scope_len[0]) || len + add + 2 > sizeof g->scope) {
        po__graph_fail(g, PO_ERR_INVALID_ARG, "scope \"%s\" nests too deep", name);
        return;
    }
    g->scope_len[g->scope_depth++] = (int)len;
    memcpy(g->scope + len, name, add);
    g->scope[len + add] = '.';
    g->scope[len + add + 1] = 0;
}

void po_graph_pop_scope(po_graph *g) {
    if (g->scope_depth > 0) g->scope[g->scope_len[--g->scope_depth]] = 0;
}

void po_graph_set_layer(po_graph *g, const char *name) {
    if (!name) {
        g->cur_layer = -1;
        return;
    }
    for (int i = 0; i < g->n_layers; i++)
        if (strcmp(g->layers[i], name) == 0) {
            g->cur_layer = i;
            return;
        }
    char *copy = po_arena_strdup(g->arena, name);
    if (!copy || !grow((void **)&g->layers, &g->cap_layers, g->n_layers + 1, sizeof(char *))) {
        po__graph_fail(g, PO_ERR_NO_MEMORY, "out of memory building the graph");
        return;
    }
    g->layers[g->n_layers] = copy;
    g->cur_layer = g->n_layers++;
}

int po_graph_n_layers(const po_graph *g) { return g->n_layers; }
const char *po_graph_layer_name(const po_graph *g, int layer) {
    return layer >= 0 && layer < g->n_layers ? g->layers[layer] : NULL;
}

/* --- leaves --------------------------------------------------------------------------------- */

/* Leaves take their shape from the caller, so it is checked here rather than by inference. */
static bool leaf_shape_ok(po_graph *g, const char *what, po_shape shape) {
    if (g->status) return false;
    if (shape.ndim < 0 || shape.ndim > PO_MAX_DIMS) {
        po__graph_fail(g, PO_ERR_SHAPE, "%s: rank %d is outside 0..%d", what, shape.ndim, PO_MAX_DIMS);
        return false;
    }
    for (int i = 0; i < shape.ndim; i++)
        if (shape.dim[i] <= 0) {
            po__graph_fail(g, PO_ERR_SHAPE, "%s: extents must be positive", what);
            return false;
        }
    return true;
}

po_node *po_input(po_graph *g, const char *name, po_dtype dtype, po_shape shape) {
    if (!leaf_shape_ok(g, name ? name : "input", shape)) return NULL;
    if (po_dtype_size(dtype) == 0) return po__graph_fail(g, PO_ERR_DTYPE, "input: invalid dtype");
    int64_t ai[PO_ATTR_INTS] = {dtype};
    po_node *n = po__node_new(g, PO_OP_INPUT, 0, NULL, ai, NULL);
    if (!n) return NULL;
    n->dtype = dtype;
    n->shape = shape;
    n->store = PO_STORE_INPUT;
    n->name = po_arena_strdup(g->arena, name ? name : "input");
    return n;
}

po_node *po_graph_find_param(const po_graph *g, const char *name) {
    for (int i = 0; i < g->n_params; i++)
        if (strcmp(g->params[i]->name, name) == 0) return g->params[i];
    return NULL;
}

po_node *po_param(po_graph *g, const char *name, po_shape shape, po_init init) {
    if (!leaf_shape_ok(g, name, shape)) return NULL;
    char full[640];
    snprintf(full, sizeof full, "%s%s", g->scope, name);
    if (po_graph_find_param(g, full))
        return po__graph_fail(g, PO_ERR_INVALID_ARG, "parameter \"%s\" is defined twice", full);
    if (!grow((void **)&g->params, &g->cap_params, g->n_params + 1, sizeof(po_node *)))
        return po__graph_fail(g, PO_ERR_NO_MEMORY, "out of memory building the graph");
    po_node *n = po__node_new(g, PO_OP_PARAM, 0, NULL, NULL, NULL);
    if (!n) return NULL;
    n->shape = shape;
    n->init = init;
    n->store = PO_STORE_PARAM;
    n->requires_grad = true;
    n->name = po_arena_strdup(g->arena, full);
    n->param_index = g->n_params;
    g->params[g->n_params++] = n;
    return n;
}

po_node *po_fill(po_graph *g, po_shape shape, float value) {
    if (!leaf_shape_ok(g, "fill", shape)) return NULL;
    float af[PO_ATTR_FLOATS] = {value};
    po_node *n = po__node_new(g, PO_OP_FILL, 0, NULL, NULL, af);
    if (n) n->shape = shape;
    return n;
}

void po_graph_keep(po_graph *g, po_node *n) {
    (void)g;
    if (n) n->keep = true;
}

/* --- inspection ------------------------------------------------------------------------------ */

int po_graph_size(const po_graph *g) { return g->n_nodes; }
po_node *po_graph_node(const po_graph *g, int i) { return i >= 0 && i < g->n_nodes ? g->nodes[i] : NULL; }
int po_graph_n_params(const po_graph *g) { return g->n_params; }
po_node *po_graph_param(const po_graph *g, int i) { return i >= 0 && i < g->n_params ? g->params[i] : NULL; }
int po_node_id(const po_node *n) { return n->id; }
po_op po_node_op(const po_node *n) { return n->op; }
po_dtype po_node_dtype(const po_node *n) { return n->dtype; }
po_shape po_node_shape(const po_node *n) { return n->shape; }
const char *po_node_name(const po_node *n) { return n->name; }
po_phase po_node_phase(const po_node *n) { return n->phase; }
int po_node_layer(const po_node *n) { return n->layer; }
int po_node_n_inputs(const po_node *n) { return n->n_in; }
po_node *po_node_input(const po_node *n, int i) { return i >= 0 && i < n->n_in ? n->in[i] : NULL; }
po_node *po_node_grad(const po_node *n) { return n->grad; }
