/* Reverse-mode autodiff: walks the forward nodes from the loss back to the parameters and asks
 * each op's grad rule to append the nodes that compute its inputs' gradients. */
#include "graph/node.h"
#include "ops/op_def.h"

void po__acc_grad(po_graph *g, po_node *x, po_node *gx) {
    if (!x->requires_grad || !gx) return;
    x->grad = x->grad ? po_add(g, x->grad, gx) : gx;
}

/* Parameter gradients are written straight into the gradient buffer, so the node holding a
 * parameter's total gradient must own its storage: anything else (a view, a node already bound
 * to another parameter, a parameter) is copied first. */
static po_node *own_storage(po_graph *g, po_node *gn) {
    if (gn->store == PO_STORE_ARENA) return gn;
    return po_scale(g, gn, 1.0f);
}

po_status po_graph_backward(po_graph *g, po_node *loss) {
    if (g->status) return g->status;
    if (!loss || loss->id >= g->n_nodes || g->nodes[loss->id] != loss)
        return po__graph_fail(g, PO_ERR_INVALID_ARG, "backward: loss is not a node of this graph"), g->status;
    if (po__numel(loss) != 1 || loss->dtype != PO_F32)
        return po__graph_fail(g, PO_ERR_SHAPE, "backward: the loss must be one F32 value"), g->status;
    if (g->loss)
        return po__graph_fail(g, PO_ERR_INVALID_ARG, "backward: the graph already has a backward pass"), g->status;

    int saved_layer = g->cur_layer;
    g->cur_phase = PO_PHASE_BACKWARD;
    g->cur_layer = loss->layer;
    loss->grad = po_fill(g, loss->shape, 1.0f);
    for (int i = loss->id; i >= 0 && !g->status; i--) {
        po_node *n = g->nodes[i];
        const po_op_def *def = po__op_def(n->op);
        if (!n->grad || !n->requires_grad || !def->grad) continue;
        g->cur_layer = n->layer;
        def->grad(g, n, n->grad);
    }
    for (int p = 0; p < g->n_params && !g->status; p++) {
        po_node *param = g->params[p];
        g->cur_layer = param->layer;
        po_node *gn = param->grad ? own_storage(g, param->grad) : po_fill(g, param->shape, 0.0f);
        if (!gn) break;
        gn->store = PO_STORE_GRAD;
        gn->param_index = p;
        param->grad = gn;
    }
    g->cur_layer = saved_layer;
    g->cur_phase = PO_PHASE_FORWARD;
    if (g->status) return g->status;
    g->loss = loss;
    loss->keep = true;
    return PO_OK;
}
