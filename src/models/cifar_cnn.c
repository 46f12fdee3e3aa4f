/* cifar_cnn: Conv3x3(C, c1, pad 1) - ReLU - MaxPool2 - Conv3x3(c1, c2, pad 1) - ReLU - MaxPool2 -
 * Flatten - Linear(c2 * H/4 * W/4, hidden) - ReLU - Linear(hidden, classes). The first Linear
 * follows the image size (64*8*8 for 3x32x32 CIFAR, 64*7*7 for 1x28x28 Fashion-MNIST). */
#include "models/model_config.h"

static const po_model_key keys[] = {{"c1", 1, {32}},      {"c2", 1, {64}},    {"hidden", 1, {256}},
                                    {"classes", 1, {10}}, {"batch", 1, {64}}, {"image", 3, {3, 32, 32}},
                                    {NULL, 0, {0}}};

static po_status build(const po_model_config *c, po_model *m) {
    po_graph *g = m->graph;
    int64_t B = m->batch, C = po__cfg(c, "image", 0), H = po__cfg(c, "image", 1), W = po__cfg(c, "image", 2);
    int64_t c1 = po__cfg(c, "c1", 0), c2 = po__cfg(c, "c2", 0), hidden = po__cfg(c, "hidden", 0);
    int64_t classes = po__cfg(c, "classes", 0);
    if (H < 4 || W < 4)
        return po_fail(PO_ERR_INVALID_ARG, "model cifar_cnn: images must be at least 4x4, got %lldx%lld", (long long)H,
                       (long long)W);
    m->x = po_input(g, "input.x", PO_F32, PO_SHAPE(B, C, H, W));
    m->y = po_input(g, "input.y", PO_I64, PO_SHAPE(B));
    po_graph_set_layer(g, "c1");
    po_node *h = po_max_pool2d(g, po_relu(g, po__nn_conv2d(g, "c1", m->x, C, c1, 3, 1)), 2, 2, 0);
    po_graph_set_layer(g, "c2");
    h = po_max_pool2d(g, po_relu(g, po__nn_conv2d(g, "c2", h, c1, c2, 3, 1)), 2, 2, 0);
    po_graph_set_layer(g, "f1");
    int64_t flat = c2 * (H / 2 / 2) * (W / 2 / 2);
    h = po_relu(g, po__nn_linear(g, "f1", po_flatten(g, h, 1), flat, hidden));
    po_graph_set_layer(g, "f2");
    m->logits = po__nn_linear(g, "f2", h, hidden, classes);
    m->loss = po_cross_entropy(g, m->logits, m->y);
    return PO_OK;
}

static po_status fit(po_model_config *c, const po_data_shape *data) {
    if (data->dtype != PO_F32 || data->sample.ndim != 3)
        return po_fail(PO_ERR_SHAPE, "model cifar_cnn takes CxHxW images");
    po__cfg_default(c, "image", data->sample.dim);
    if (data->classes > 0) po__cfg_default(c, "classes", &data->classes);
    return PO_OK;
}

const po_model_def po_model_cifar_cnn = {"cifar_cnn", keys, build, fit};
