/* Analysis pass 1: each node's work and parameter bytes, summed per layer and per phase. */
#include "graph/analyze_internal.h"
#include "graph/memplan.h"

/* Parameter values n reads: inputs that are parameters or views of one (each counted once). */
static size_t param_bytes_read(const po_node *n) {
    size_t bytes = 0;
    for (int k = 0; k < n->n_in; k++) {
        const po_node *r = po__storage_root(n->in[k]);
        if (r->store != PO_STORE_PARAM) continue;
        bool seen = false;
        for (int j = 0; j < k && !seen; j++)
            seen = po__storage_root(n->in[j]) == r;
        if (!seen) bytes += po__nbytes(n->in[k]);
    }
    return bytes;
}

void po__analyze_work(po_analysis *a) {
    const po_graph *g = a->g;
    po_totals *t = &a->totals;
    t->n_nodes = a->n;
    a->layers[0].name = "(none)";
    for (int l = 0; l < g->n_layers; l++)
        a->layers[l + 1].name = g->layers[l];
    for (int i = 0; i < a->n; i++) {
        const po_node *n = g->nodes[i];
        po_node_info *r = &a->nodes[i];
        po_cost c = po_node_cost(n);
        r->node = n;
        r->flops = c.flops;
        r->bytes_read = c.bytes_read;
        r->bytes_written = c.bytes_written;
        double moved = c.bytes_read + c.bytes_written;
        r->intensity = moved > 0.0 ? c.flops / moved : 0.0;
        r->param_bytes = n->store == PO_STORE_PARAM ? po__nbytes(n) : param_bytes_read(n);
        r->output_bytes = n->store == PO_STORE_VIEW ? 0 : po__nbytes(n);
        r->scratch_bytes = n->scratch_bytes;

        po_layer_info *L = po__analysis_layer_of(a, n);
        L->n_nodes++;
        L->bytes_moved += moved;
        t->bytes_moved += moved;
        switch (n->phase) {
        case PO_PHASE_FORWARD:
            L->flops_forward += c.flops;
            t->flops_forward += c.flops;
            break;
        case PO_PHASE_BACKWARD:
            L->flops_backward += c.flops;
            t->flops_backward += c.flops;
            break;
        case PO_PHASE_OPTIMIZER:
            L->flops_optimizer += c.flops;
            t->flops_optimizer += c.flops;
            break;
        }
    }
    t->flops = t->flops_forward + t->flops_backward + t->flops_optimizer;
    /* Parameter memory, as po_params lays it out: every parameter padded in each buffer. */
    size_t slots = (size_t)g->optim_slots;
    for (int p = 0; p < g->n_params; p++) {
        const po_node *n = g->params[p];
        po_layer_info *L = po__analysis_layer_of(a, n);
        int64_t numel = po__numel(n);
        size_t padded = po__param_padded_bytes(numel);
        L->params += numel;
        L->param_bytes += padded;
        L->grad_bytes += padded;
        L->optim_state_bytes += slots * padded;
        t->params += numel;
        t->param_bytes += padded;
        t->grad_bytes += padded;
        t->optim_state_bytes += slots * padded;
    }
    for (int l = 0; l <= g->n_layers; l++) {
        po_layer_info *L = &a->layers[l];
        double flops = L->flops_forward + L->flops_backward + L->flops_optimizer;
        L->intensity = L->bytes_moved > 0.0 ? flops / L->bytes_moved : 0.0;
    }
}
