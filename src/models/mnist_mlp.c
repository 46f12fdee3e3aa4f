/* mnist_mlp: Linear(d_in, hidden) - ReLU - Linear(hidden, hidden) - ReLU - Linear(hidden, classes). */
#include "models/model_config.h"

static const po_model_key keys[] = {
    {"d_in", 1, {784}}, {"hidden", 1, {1024}}, {"classes", 1, {10}}, {"batch", 1, {128}}, {NULL, 0, {0}}};

static po_status build(const po_model_config *c, po_model *m) {
    po_graph *g = m->graph;
    int64_t B = m->batch, d_in = po__cfg(c, "d_in", 0), hidden = po__cfg(c, "hidden", 0);
    int64_t classes = po__cfg(c, "classes", 0);
    m->x = po_input(g, "input.x", PO_F32, PO_SHAPE(B, d_in));
    m->y = po_input(g, "input.y", PO_I64, PO_SHAPE(B));
    po_graph_set_layer(g, "l1");
    /* Images are flattened, as PyTorch's MLP takes x.reshape(len(x), -1). */
    po_node *h = po_relu(g, po__nn_linear(g, "l1", m->x, d_in, hidden));
    po_graph_set_layer(g, "l2");
    h = po_relu(g, po__nn_linear(g, "l2", h, hidden, hidden));
    po_graph_set_layer(g, "l3");
    m->logits = po__nn_linear(g, "l3", h, hidden, classes);
    m->loss = po_cross_entropy(g, m->logits, m->y);
    return PO_OK;
}

static po_status fit(po_model_config *c, const po_data_shape *data) {
    if (data->dtype != PO_F32)
        return po_fail(PO_ERR_SHAPE, "model mnist_mlp takes feature vectors or images, not token ids");
    int64_t d_in = po_shape_numel(&data->sample);
    po__cfg_default(c, "d_in", &d_in);
    if (data->classes > 0) po__cfg_default(c, "classes", &data->classes);
    return PO_OK;
}

const po_model_def po_model_mnist_mlp = {"mnist_mlp", keys, build, fit};
