/* The workload: one training step reduced to what the planner needs, every batch-dependent figure
 * the line through the graph's figures at two batch sizes (exact for graphs whose work is affine
 * in the batch, as every reference model's is: GEMM rows, element-wise sizes and attention all
 * scale with it, parameters and optimizer updates do not). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paropt/analyze.h"
#include "paropt/models.h"
#include "plan/plan_internal.h"
#include "runtime/opsplit.h"

uint64_t po__fnv_str(uint64_t h, const char *s) { return po__fnv(h, s, strlen(s) + 1); }

static uint64_t shape_hash(uint64_t h, const po_node *n) {
    po_shape s = po_node_shape(n);
    h = po__fnv_u64(h, (uint64_t)po_node_dtype(n));
    h = po__fnv_u64(h, (uint64_t)s.ndim);
    for (int d = 0; d < s.ndim; d++)
        h = po__fnv_u64(h, (uint64_t)s.dim[d]);
    return h;
}

uint64_t po_op_key(const po_node *n) {
    uint64_t h = po__fnv_u64(PO__FNV_OFFSET, (uint64_t)po_node_op(n));
    for (int i = 0; i < po_node_n_inputs(n); i++)
        h = shape_hash(h, po_node_input(n, i));
    return shape_hash(h, n);
}

static double tensor_bytes(const po_node *n) {
    po_shape s = po_node_shape(n);
    return (double)po_shape_numel(&s) * (double)po_dtype_size(po_node_dtype(n));
}

static bool is_gemm(po_op op) {
    switch (op) {
    case PO_OP_MATMUL:
    case PO_OP_LINEAR:
    case PO_OP_CONV2D:
    case PO_OP_CONV2D_GRAD_INPUT:
    case PO_OP_CONV2D_GRAD_WEIGHT:
    case PO_OP_CAUSAL_ATTENTION:
    case PO_OP_CAUSAL_ATTENTION_GRAD: return true;
    default: return false;
    }
}

/* Ops of the kind operator split divides: matrix products, cut into blocks, and ops dealt out by
 * units (attention, convolutions, pooling, layer norm, activations); the runtime splits the
 * ones po__opsplit_rule picks among them. */
static bool is_splittable(po_op op) { return op == PO_OP_MATMUL || op == PO_OP_LINEAR || po__opsplit_by_units(op); }

bool po__wnode_splits(const po_workload *w, int i, double rows) {
    const po__wnode *x = &w->nodes[i];
    if (po__opsplit_rule(x->op, po__aff(x->call_flops, rows))) return true;
    return x->gathers >= 0 && (po__wnode_splits(w, x->gathers, rows) || po__wnode_rides(w, x->gathers, rows));
}

bool po__wnode_rides(const po_workload *w, int i, double rows) {
    const po__wnode *x = &w->nodes[i];
    return x->follows >= 0 && po__wnode_splits(w, x->follows, rows) && !po__wnode_splits(w, i, rows);
}

static bool is_leaf(po_op op) { return op == PO_OP_INPUT || op == PO_OP_PARAM || op == PO_OP_FILL; }

/* Layers of nodes outside every layer: the layer of the closest earlier node that has one (the
 * first layer when none does). */
static int *mapped_layers(const po_graph *g) {
    int n = po_graph_size(g);
    int *map = malloc((size_t)(n ? n : 1) * sizeof *map);
    if (!map) return NULL;
    int last = -1;
    for (int i = 0; i < n; i++) {
        int l = po_node_layer(po_graph_node(g, i));
        if (l >= 0) last = l;
        map[i] = l >= 0 ? l : last;
    }
    for (int i = 0; i < n; i++)
        if (map[i] < 0) map[i] = 0;
    return map;
}

/* Per-graph figures, gathered from one analysis. */
typedef struct {
    double *flops, *bytes, *call_flops, *in_bytes, *out_bytes; /* per node */
    uint64_t *key;
    double *stash, *cut; /* per layer */
    double input, arena, scratch, stash_total;
} graph_figs;

static void figs_free(graph_figs *f) {
    free(f->flops);
    free(f->bytes);
    free(f->call_flops);
    free(f->in_bytes);
    free(f->out_bytes);
    free(f->key);
    free(f->stash);
    free(f->cut);
}

static po_status gather(const po_graph *g, const int *layer_of, int n_layers, graph_figs *f) {
    memset(f, 0, sizeof *f);
    int n = po_graph_size(g);
    size_t nn = (size_t)(n ? n : 1), nl = (size_t)(n_layers ? n_layers : 1);
    f->flops = calloc(nn, sizeof(double));
    f->bytes = calloc(nn, sizeof(double));
    f->call_flops = calloc(nn, sizeof(double));
    f->in_bytes = calloc(nn, sizeof(double));
    f->out_bytes = calloc(nn, sizeof(double));
    f->key = calloc(nn, sizeof(uint64_t));
    f->stash = calloc(nl, sizeof(double));
    f->cut = calloc(nl, sizeof(double));
    if (!f->flops || !f->bytes || !f->call_flops || !f->in_bytes || !f->out_bytes || !f->key || !f->stash || !f->cut) {
        figs_free(f);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    po_analysis *a = NULL;
    po_status st = po_analysis_new(g, &a);
    if (st) {
        figs_free(f);
        return st;
    }
    const po_totals *t = po_analysis_totals(a);
    f->input = (double)t->input_bytes;
    f->arena = (double)t->arena_bytes;
    f->scratch = (double)t->scratch_bytes;
    for (int i = 0; i < n; i++) {
        const po_node_info *r = po_analysis_node(a, i);
        const po_node *nd = r->node;
        f->flops[i] = r->flops;
        f->bytes[i] = r->bytes_read + r->bytes_written;
        f->call_flops[i] = r->flops / po__product_calls(nd);
        f->out_bytes[i] = r->output_bytes ? (double)r->output_bytes : 0.0;
        f->key[i] = po_op_key(nd);
        double in = 0.0;
        for (int k = 0; k < po_node_n_inputs(nd); k++) {
            const po_node *x = po_node_input(nd, k);
            if (po_node_op(x) != PO_OP_PARAM) in += tensor_bytes(x);
        }
        f->in_bytes[i] = in;
        /* Stash: forward buffers a backward node reads last (kept from forward to backward). */
        if (po_node_phase(nd) == PO_PHASE_FORWARD && r->arena_bytes && r->live_until > i && r->live_until < n &&
            po_node_phase(po_graph_node(g, r->live_until)) == PO_PHASE_BACKWARD) {
            f->stash[layer_of[i]] += (double)r->arena_bytes;
            f->stash_total += (double)r->arena_bytes;
        }
    }
    /* Cuts: forward tensors made at or before layer j that a forward node of a later layer reads. */
    char *crossing = malloc(nn);
    if (!crossing) st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
    for (int j = 0; !st && j + 1 < n_layers; j++) {
        memset(crossing, 0, nn);
        for (int i = 0; i < n; i++) {
            const po_node *nd = po_graph_node(g, i);
            if (po_node_phase(nd) != PO_PHASE_FORWARD || layer_of[i] <= j) continue;
            for (int k = 0; k < po_node_n_inputs(nd); k++) {
                const po_node *x = po_node_input(nd, k);
                int xi = po_node_id(x);
                if (!is_leaf(po_node_op(x)) && layer_of[xi] <= j && po_node_phase(x) == PO_PHASE_FORWARD)
                    crossing[xi] = 1;
            }
        }
        for (int i = 0; i < n; i++)
            if (crossing[i]) f->cut[j] += tensor_bytes(po_graph_node(g, i));
    }
    free(crossing);
    po_analysis_free(a);
    if (st) figs_free(f);
    return st;
}

static void fit(double out[2], double v1, double b1, double v2, double b2) {
    out[1] = (v1 - v2) / (b1 - b2);
    out[0] = v1 - out[1] * b1;
}

static po_status same_structure(const po_graph *g, const po_graph *g2) {
    if (po_graph_size(g) != po_graph_size(g2) || po_graph_n_layers(g) != po_graph_n_layers(g2))
        return po_fail(PO_ERR_INVALID_ARG,
                       "workload: the two graphs differ in size (%d and %d nodes, %d and %d layers)", po_graph_size(g),
                       po_graph_size(g2), po_graph_n_layers(g), po_graph_n_layers(g2));
    for (int i = 0; i < po_graph_size(g); i++) {
        const po_node *a = po_graph_node(g, i), *b = po_graph_node(g2, i);
        if (po_node_op(a) != po_node_op(b) || po_node_layer(a) != po_node_layer(b) ||
            po_node_phase(a) != po_node_phase(b) || po_node_n_inputs(a) != po_node_n_inputs(b))
            return po_fail(PO_ERR_INVALID_ARG, "workload: the two graphs differ at node %d (%s, %s)", i,
                           po_op_name(po_node_op(a)), po_op_name(po_node_op(b)));
    }
    for (int l = 0; l < po_graph_n_layers(g); l++)
        if (strcmp(po_graph_layer_name(g, l), po_graph_layer_name(g2, l)) != 0)
            return po_fail(PO_ERR_INVALID_ARG, "workload: layer %d is \"%s\" in one graph and \"%s\" in the other", l,
                           po_graph_layer_name(g, l), po_graph_layer_name(g2, l));
    return PO_OK;
}

static uint64_t graph_signature(const po_graph *g) {
    uint64_t h = PO__FNV_OFFSET;
    for (int i = 0; i < po_graph_size(g); i++) {
        const po_node *n = po_graph_node(g, i);
        h = po__fnv_u64(h, po_op_key(n));
        h = po__fnv_u64(h, (uint64_t)(po_node_layer(n) + 1));
        for (int k = 0; k < po_node_n_inputs(n); k++)
            h = po__fnv_u64(h, (uint64_t)po_node_id(po_node_input(n, k)));
    }
    return h;
}

void po_workload_free(po_workload *w) {
    if (!w) return;
    free(w->nodes);
    for (int l = 0; w->layer_names && l < w->n_layers; l++)
        free(w->layer_names[l]);
    free(w->layer_names);
    free(w->param_bytes);
    free(w->grad_bytes);
    free(w->state_bytes);
    free(w->stash);
    free(w->cut);
    free(w->lp_first);
    free(w->lp_count);
    free(w->lp_nodes);
    free(w);
}

static po_status layer_statics(const po_graph *g, po_workload *w) {
    po_analysis *a = NULL;
    po_status st = po_analysis_new(g, &a);
    if (st) return st;
    for (int l = 0; l < w->n_layers; l++) {
        const po_layer_info *L = po_analysis_layer(a, l);
        w->param_bytes[l] = (double)L->param_bytes;
        w->grad_bytes[l] = (double)L->grad_bytes;
        w->state_bytes[l] = (double)L->optim_state_bytes;
    }
    /* Parameters outside every layer (none in the reference models) go with the first layer. */
    const po_layer_info *none = po_analysis_layer(a, -1);
    if (w->n_layers > 0) {
        w->param_bytes[0] += (double)none->param_bytes;
        w->grad_bytes[0] += (double)none->grad_bytes;
        w->state_bytes[0] += (double)none->optim_state_bytes;
    }
    po_analysis_free(a);
    return PO_OK;
}

static po_status index_layer_phases(po_workload *w) {
    size_t nlp = (size_t)w->n_layers * 3;
    w->lp_first = calloc(nlp, sizeof(int));
    w->lp_count = calloc(nlp, sizeof(int));
    w->lp_nodes = calloc((size_t)(w->n_nodes ? w->n_nodes : 1), sizeof(int));
    if (!w->lp_first || !w->lp_count || !w->lp_nodes) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    for (int i = 0; i < w->n_nodes; i++)
        w->lp_count[w->nodes[i].layer * 3 + (int)w->nodes[i].phase]++;
    int at = 0;
    for (size_t k = 0; k < nlp; k++) {
        w->lp_first[k] = at;
        at += w->lp_count[k];
        w->lp_count[k] = 0;
    }
    for (int i = 0; i < w->n_nodes; i++) {
        size_t k = (size_t)w->nodes[i].layer * 3 + (size_t)w->nodes[i].phase;
        w->lp_nodes[w->lp_first[k] + w->lp_count[k]++] = i;
    }
    return PO_OK;
}

po_status po_workload_from_graphs(const po_graph *g, int64_t batch, const po_graph *g2, int64_t batch2,
                                  po_workload **out) {
    *out = NULL;
    if (!g || !g2 || batch < 1 || batch2 < 1 || batch == batch2)
        return po_fail(PO_ERR_INVALID_ARG, "workload: two graphs at two different positive batch sizes are needed");
    if (po_graph_status(g) || po_graph_status(g2))
        return po_fail(PO_ERR_INVALID_ARG, "workload: graph holds an error: %s",
                       po_graph_status(g) ? po_graph_error(g) : po_graph_error(g2));
    po_status st = same_structure(g, g2);
    if (st) return st;
    if (po_graph_n_layers(g) < 1) return po_fail(PO_ERR_INVALID_ARG, "workload: the graph has no layers");
    po_workload *w = calloc(1, sizeof *w);
    if (!w) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    snprintf(w->name, sizeof w->name, "graph");
    w->batch = batch;
    w->batch2 = batch2;
    w->n_nodes = po_graph_size(g);
    w->n_layers = po_graph_n_layers(g);
    size_t nl = (size_t)w->n_layers;
    w->nodes = calloc((size_t)(w->n_nodes ? w->n_nodes : 1), sizeof *w->nodes);
    w->layer_names = calloc(nl, sizeof(char *));
    w->param_bytes = calloc(nl, sizeof(double));
    w->grad_bytes = calloc(nl, sizeof(double));
    w->state_bytes = calloc(nl, sizeof(double));
    w->stash = calloc(nl, sizeof *w->stash);
    w->cut = calloc(nl, sizeof *w->cut);
    int *layer_of = mapped_layers(g);
    if (!w->nodes || !w->layer_names || !w->param_bytes || !w->grad_bytes || !w->state_bytes || !w->stash || !w->cut ||
        !layer_of) {
        free(layer_of);
        po_workload_free(w);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    for (int l = 0; l < w->n_layers; l++)
        if (!(w->layer_names[l] = strdup(po_graph_layer_name(g, l)))) st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
    graph_figs f1, f2;
    if (!st) st = gather(g, layer_of, w->n_layers, &f1);
    if (!st) {
        st = gather(g2, layer_of, w->n_layers, &f2);
        if (st) figs_free(&f1);
    }
    if (!st) {
        double b1 = (double)batch, b2 = (double)batch2;
        for (int i = 0; i < w->n_nodes; i++) {
            const po_node *nd = po_graph_node(g, i);
            po__wnode *x = &w->nodes[i];
            x->op = po_node_op(nd);
            x->phase = po_node_phase(nd);
            x->layer = layer_of[i];
            x->gemm = is_gemm(x->op);
            x->splittable = is_splittable(x->op);
            fit(x->flops, f1.flops[i], b1, f2.flops[i], b2);
            fit(x->bytes, f1.bytes[i], b1, f2.bytes[i], b2);
            fit(x->call_flops, f1.call_flops[i], b1, f2.call_flops[i], b2);
            fit(x->in_bytes, f1.in_bytes[i], b1, f2.in_bytes[i], b2);
            fit(x->out_bytes, f1.out_bytes[i], b1, f2.out_bytes[i], b2);
            po_shape out_shape = po_node_shape(nd);
            x->elems = (double)po_shape_numel(&out_shape);
            const po_node *product = po__opsplit_follows(nd), *summed = po__opsplit_gathers(nd);
            x->follows = product ? po_node_id(product) : -1;
            x->gathers = summed ? po_node_id(summed) : -1;
            x->key[0] = f1.key[i];
            x->key[1] = f2.key[i];
            for (int k = 0; k < po_node_n_inputs(nd); k++) {
                const po_node *in = po_node_input(nd, k);
                if (po_node_op(in) == PO_OP_PARAM) x->param_bytes += tensor_bytes(in);
            }
        }
        for (int l = 0; l < w->n_layers; l++) {
            fit(w->stash[l], f1.stash[l], b1, f2.stash[l], b2);
            fit(w->cut[l], f1.cut[l], b1, f2.cut[l], b2);
        }
        fit(w->input, f1.input, b1, f2.input, b2);
        fit(w->arena, f1.arena, b1, f2.arena, b2);
        fit(w->scratch, f1.scratch, b1, f2.scratch, b2);
        fit(w->stash_total, f1.stash_total, b1, f2.stash_total, b2);
        figs_free(&f1);
        figs_free(&f2);
        w->signature = graph_signature(g);
        st = layer_statics(g, w);
    }
    if (!st) st = index_layer_phases(w);
    free(layer_of);
    if (st) {
        po_workload_free(w);
        return st;
    }
    *out = w;
    return PO_OK;
}

po_status po_model_build_step(const char *spec, int64_t batch, const po_optim_opts *o, po_model **out) {
    po_status st = po_model_build(spec, batch, out);
    if (st) return st;
    st = po_graph_backward((*out)->graph, (*out)->loss);
    if (!st) st = po_graph_add_optimizer((*out)->graph, o);
    if (st) {
        st = po_fail(st, "%s", po_graph_error((*out)->graph));
        po_model_free(*out);
        *out = NULL;
    }
    return st;
}

po_status po_workload_from_model(const char *spec, int64_t batch, const po_optim_opts *o, po_workload **out) {
    *out = NULL;
    po_optim_opts adam = po_optim_opts_default(PO_OPTIM_ADAM);
    if (!o) o = &adam;
    po_model *m1 = NULL, *m2 = NULL;
    po_status st = po_model_build_step(spec, batch, o, &m1);
    if (st) return st;
    int64_t b2 = m1->batch >= 2 ? m1->batch / 2 : 2;
    st = po_model_build_step(m1->spec, b2, o, &m2);
    if (!st) st = po_workload_from_graphs(m1->graph, m1->batch, m2->graph, b2, out);
    if (!st) snprintf((*out)->name, sizeof(*out)->name, "%s", m1->spec);
    po_model_free(m1);
    po_model_free(m2);
    return st;
}

int64_t po_workload_batch(const po_workload *w) { return w->batch; }
const char *po_workload_name(const po_workload *w) { return w->name; }
int po_workload_n_layers(const po_workload *w) { return w->n_layers; }
uint64_t po_workload_signature(const po_workload *w) { return w->signature; }

const char *po_workload_layer_name(const po_workload *w, int layer) {
    return layer >= 0 && layer < w->n_layers ? w->layer_names[layer] : NULL;
}

double po__cut_bytes(const po_workload *w, int j, double rows) {
    return j >= 0 && j + 1 < w->n_layers ? po__aff(w->cut[j], rows) : 0.0;
}

po_status po_workload_layer_info(const po_workload *w, int layer, double rows, po_workload_layer *out) {
    memset(out, 0, sizeof *out);
    if (layer < 0 || layer >= w->n_layers) return po_fail(PO_ERR_RANGE, "layer %d out of range", layer);
    if (!(rows > 0.0)) return po_fail(PO_ERR_INVALID_ARG, "rows must be positive");
    for (int i = 0; i < w->n_nodes; i++) {
        const po__wnode *n = &w->nodes[i];
        if (n->layer != layer) continue;
        double f = po__wn_flops(n, rows);
        if (n->phase == PO_PHASE_FORWARD) out->flops_forward += f;
        if (n->phase == PO_PHASE_BACKWARD) out->flops_backward += f;
        if (n->phase == PO_PHASE_OPTIMIZER) out->flops_optimizer += f;
    }
    out->param_bytes = w->param_bytes[layer];
    out->grad_bytes = w->grad_bytes[layer];
    out->optim_state_bytes = w->state_bytes[layer];
    out->stash_bytes = po__aff(w->stash[layer], rows);
    out->boundary_bytes = po__cut_bytes(w, layer, rows);
    return PO_OK;
}

double po_workload_memory_bytes(const po_workload *w, int first, int last, double rows, int in_flight, bool recompute) {
    if (first < 0) first = 0;
    if (last >= w->n_layers) last = w->n_layers - 1;
    double stat = 0.0, stash = 0.0;
    for (int l = first; l <= last; l++) {
        stat += w->param_bytes[l] + w->grad_bytes[l] + w->state_bytes[l];
        stash += po__aff(w->stash[l], rows);
    }
    double work = po__aff(w->arena, rows) - po__aff(w->stash_total, rows);
    if (work < 0.0) work = 0.0;
    work += po__aff(w->scratch, rows) + po__aff(w->input, rows);
    if (in_flight < 1) in_flight = 1;
    if (!recompute) return stat + in_flight * stash + work;
    return stat + stash + in_flight * po__cut_bytes(w, first - 1, rows) + work;
}
