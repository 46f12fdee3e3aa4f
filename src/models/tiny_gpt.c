/* tiny_gpt: token + position embedding, `layers` pre-LayerNorm blocks (causal self-attention
 * through one qkv Linear, then Linear(d, 4d) - GELU - Linear(4d, d), each with a residual),
 * final LayerNorm and a Linear head; the loss is the mean cross-entropy over every position. */
#include <stdio.h>

#include "models/model_config.h"

/* max_seq: rows of the position table (default seq). A model trained on several sequence
 * lengths (paropt train --seq-lens) keeps one table of max_seq rows; each length's graph reads
 * its first seq rows, so every length has the same parameters. */
static const po_model_key keys[] = {{"vocab", 1, {256}},
                                    {"d_model", 1, {256}},
                                    {"layers", 1, {4}},
                                    {"heads", 1, {4}},
                                    {"seq", 1, {128}},
                                    {"batch", 1, {8}},
                                    {"max_seq", 1, {PO_MODEL_SAME_AS(4)}},
                                    {NULL, 0, {0}}};

static po_node *block(po_graph *g, po_node *x, int64_t d, int64_t heads) {
    po_node *qkv = po__nn_linear(g, "qkv", po__nn_layer_norm(g, "ln1", x, d), d, 3 * d);
    x = po_add(g, x, po__nn_linear(g, "proj", po_causal_attention(g, qkv, (int)heads), d, d));
    po_node *h = po_gelu(g, po__nn_linear(g, "fc", po__nn_layer_norm(g, "ln2", x, d), d, 4 * d));
    return po_add(g, x, po__nn_linear(g, "out", h, 4 * d, d));
}

static po_status build(const po_model_config *c, po_model *m) {
    po_graph *g = m->graph;
    int64_t B = m->batch, V = po__cfg(c, "vocab", 0), D = po__cfg(c, "d_model", 0);
    int64_t L = po__cfg(c, "layers", 0), H = po__cfg(c, "heads", 0), T = po__cfg(c, "seq", 0);
    int64_t M = po__cfg(c, "max_seq", 0);
    if (D % H)
        return po_fail(PO_ERR_INVALID_ARG, "model tiny_gpt: heads=%lld must divide d_model=%lld", (long long)H,
                       (long long)D);
    if (M < T)
        return po_fail(PO_ERR_INVALID_ARG, "model tiny_gpt: max_seq=%lld must be at least seq=%lld", (long long)M,
                       (long long)T);
    m->x = po_input(g, "input.x", PO_I64, PO_SHAPE(B, T));
    m->y = po_input(g, "input.y", PO_I64, PO_SHAPE(B, T));
    po_graph_set_layer(g, "embed");
    po_node *tok = po_param(g, "tok.weight", PO_SHAPE(V, D), (po_init){PO_INIT_NORMAL, 1.0f});
    po_node *pos = po_param(g, "pos.weight", PO_SHAPE(M, D), (po_init){PO_INIT_NORMAL, 1.0f});
    /* pos(arange(T)) is the first T rows of the table: a view, no lookup. */
    po_node *x = po_add(g, po_embedding(g, m->x, tok), po_slice(g, pos, 0, 0, T));
    for (int64_t i = 0; i < L; i++) {
        char name[32];
        snprintf(name, sizeof name, "blocks.%lld", (long long)i);
        po_graph_set_layer(g, name);
        po_graph_push_scope(g, name);
        x = block(g, x, D, H);
        po_graph_pop_scope(g);
    }
    po_graph_set_layer(g, "head");
    m->logits = po__nn_linear(g, "head", po__nn_layer_norm(g, "lnf", x, D), D, V);
    m->loss = po_cross_entropy(g, m->logits, m->y);
    return PO_OK;
}

static po_status fit(po_model_config *c, const po_data_shape *data) {
    if (data->dtype != PO_I64 || data->sample.ndim != 1)
        return po_fail(PO_ERR_SHAPE, "model tiny_gpt takes sequences of token ids");
    po__cfg_default(c, "seq", data->sample.dim);
    if (data->classes > 0) po__cfg_default(c, "vocab", &data->classes);
    return PO_OK;
}

const po_model_def po_model_tiny_gpt = {"tiny_gpt", keys, build, fit};
