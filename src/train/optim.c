/* Building optimizer update nodes; the update kernels are in src/ops/optim_step.c. */
#include "paropt/optim.h"

#include <math.h>
#include <string.h>

#include "graph/node.h"

po_optim_opts po_optim_opts_default(po_optim_kind kind) {
    po_optim_opts o = {.kind = kind, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    if (kind == PO_OPTIM_ADAMW) o.weight_decay = 1e-2f;
    return o;
}

static const char *const kind_names[] = {"sgd", "adam", "adamw"};

po_status po_optim_kind_parse(const char *name, po_optim_kind *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(name, kind_names[i]) == 0) {
            *out = (po_optim_kind)i;
            return PO_OK;
        }
    return po_fail(PO_ERR_INVALID_ARG, "unknown optimizer \"%s\" (expected sgd, adam or adamw)", name);
}

const char *po_optim_kind_name(po_optim_kind kind) { return (unsigned)kind < 3 ? kind_names[kind] : "?"; }

po_status po_optim_opts_check(const po_optim_opts *o) {
    if ((unsigned)o->kind > PO_OPTIM_ADAMW) return po_fail(PO_ERR_INVALID_ARG, "unknown optimizer kind");
    if (!(o->lr > 0.0f) || !isfinite(o->lr))
        return po_fail(PO_ERR_INVALID_ARG, "learning rate must be a positive number, got %g", o->lr);
    if (!(o->weight_decay >= 0.0f) || !isfinite(o->weight_decay))
        return po_fail(PO_ERR_INVALID_ARG, "weight decay must be >= 0, got %g", o->weight_decay);
    if (o->kind == PO_OPTIM_SGD) {
        if (!(o->momentum >= 0.0f) || !isfinite(o->momentum))
            return po_fail(PO_ERR_INVALID_ARG, "momentum must be >= 0, got %g", o->momentum);
        if (o->nesterov && (o->momentum <= 0.0f || o->dampening != 0.0f))
            return po_fail(PO_ERR_INVALID_ARG, "Nesterov momentum requires a momentum and zero dampening");
    } else {
        if (!(o->beta1 >= 0.0f && o->beta1 < 1.0f) || !(o->beta2 >= 0.0f && o->beta2 < 1.0f))
            return po_fail(PO_ERR_INVALID_ARG, "Adam betas must be in [0, 1), got %g and %g", o->beta1, o->beta2);
        if (!(o->eps > 0.0f)) return po_fail(PO_ERR_INVALID_ARG, "Adam eps must be > 0, got %g", o->eps);
    }
    return PO_OK;
}

po_status po_graph_add_optimizer(po_graph *g, const po_optim_opts *o) {
    if (g->status) return g->status;
    po_status st = po_optim_opts_check(o);
    if (st) return po__graph_fail(g, st, "%s", po_last_error()), g->status;
    if (!g->loss) return po__graph_fail(g, PO_ERR_INVALID_ARG, "add the backward pass before the optimizer"), g->status;
    if (g->optim_slots || (g->n_nodes && g->nodes[g->n_nodes - 1]->phase == PO_PHASE_OPTIMIZER))
        return po__graph_fail(g, PO_ERR_INVALID_ARG, "the graph already has an optimizer"), g->status;

    po_op op = o->kind == PO_OPTIM_SGD ? PO_OP_SGD_STEP : PO_OP_ADAM_STEP;
    /* Attribute layout shared with src/ops/optim_step.c. */
    int64_t ai[PO_ATTR_INTS] = {0};
    float af[PO_ATTR_FLOATS] = {0};
    af[0] = o->lr;
    af[1] = o->weight_decay;
    if (op == PO_OP_SGD_STEP) {
        af[2] = o->momentum;
        af[3] = o->dampening;
        ai[0] = o->nesterov;
        g->optim_slots = o->momentum > 0.0f ? 1 : 0;
    } else {
        af[2] = o->beta1;
        af[3] = o->beta2;
        af[4] = o->eps;
        ai[0] = o->kind == PO_OPTIM_ADAMW;
        g->optim_slots = 2;
    }
    int saved_layer = g->cur_layer;
    g->cur_phase = PO_PHASE_OPTIMIZER;
    for (int p = 0; p < g->n_params && !g->status; p++) {
        po_node *param = g->params[p];
        g->cur_layer = param->layer;
        po_node *in[2] = {param, param->grad};
        po_node *n = po__node_new(g, op, 2, in, ai, af);
        if (!n) break;
        n->param_index = p;
        n->aux_store = g->optim_slots ? PO_AUX_OPTSTATE : PO_AUX_ARENA;
    }
    g->cur_layer = saved_layer;
    g->cur_phase = PO_PHASE_FORWARD;
    return g->status;
}
