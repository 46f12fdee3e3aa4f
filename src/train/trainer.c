#include "paropt/train.h"

#include <stdlib.h>

struct po_trainer {
    po_model *m;
    po_params *params;
    po_exec *exec;
    po_tensor *inputs[2];
};

po_status po_trainer_new(po_model *m, const po_optim_opts *o, uint64_t seed, po_trainer **out) {
    *out = NULL;
    po_trainer *t = calloc(1, sizeof *t);
    if (!t) return po_fail(PO_ERR_NO_MEMORY, "out of memory creating a trainer");
    t->m = m;
    po_status st = po_graph_backward(m->graph, m->loss);
    if (!st) st = po_graph_add_optimizer(m->graph, o);
    if (st) st = po_fail(st, "%s", po_graph_error(m->graph));
    if (!st) st = po_params_new(m->graph, &t->params);
    if (!st) {
        po_params_init(t->params, seed);
        st = po_exec_new(m->graph, t->params, &t->exec);
    }
    po_node *in[2] = {m->x, m->y};
    for (int i = 0; i < 2 && !st; i++)
        st = po_tensor_wrap(po_node_dtype(in[i]), po_node_shape(in[i]), po_exec_input_data(t->exec, in[i]),
                            &t->inputs[i]);
    if (st) {
        po_trainer_free(t);
        return st;
    }
    *out = t;
    return PO_OK;
}

void po_trainer_free(po_trainer *t) {
    if (!t) return;
    po_tensor_free(t->inputs[0]);
    po_tensor_free(t->inputs[1]);
    po_exec_free(t->exec);
    po_params_free(t->params);
    free(t);
}

po_params *po_trainer_params(po_trainer *t) { return t->params; }
po_exec *po_trainer_exec(po_trainer *t) { return t->exec; }
po_tensor *po_trainer_input(po_trainer *t, int which) { return which == 0 || which == 1 ? t->inputs[which] : NULL; }

po_status po_trainer_step(po_trainer *t, float *loss) {
    po_status st = po_exec_run(t->exec);
    if (!st && loss) *loss = *(const float *)po_exec_output(t->exec, t->m->loss);
    return st;
}
