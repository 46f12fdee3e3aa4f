/* Model specs: "name:key=value,..." parsed against each model's table of keys. */
#ifndef PO_MODELS_CONFIG_H
#define PO_MODELS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "paropt/models.h"

#define PO_MODEL_MAX_KEYS   8
#define PO_MODEL_MAX_VALUES 3 /* image=CxHxW */

typedef struct po_model_key {
    const char *name;
    int n_values;                          /* 1, or 3 for CxHxW */
    int64_t defaults[PO_MODEL_MAX_VALUES]; /* or {PO_MODEL_SAME_AS(k)} */
} po_model_key;

/* Default of a derived key: the resolved value of key index k (after the data fit and the
 * batch), e.g. tiny_gpt's max_seq defaults to seq. A derived key the spec leaves unset is left
 * out of the resolved spec and the config, so models built without it read as before. */
#define PO_MODEL_SAME_AS(k) (-1 - (k))

typedef struct po_model_config {
    int n_keys;
    const po_model_key *keys;
    int64_t values[PO_MODEL_MAX_KEYS][PO_MODEL_MAX_VALUES];
    bool explicit_key[PO_MODEL_MAX_KEYS]; /* set by the spec rather than by default */
} po_model_config;

/* Value i of key `name` (which must be one of the model's keys). */
int64_t po__cfg(const po_model_config *c, const char *name, int i);
/* Sets key `name` from `values` unless the spec set it. */
void po__cfg_default(po_model_config *c, const char *name, const int64_t *values);

typedef struct po_model_def {
    const char *name;
    const po_model_key *keys; /* terminated by a NULL name */
    /* Checks the config's values and builds the graph into m (batch already resolved). */
    po_status (*build)(const po_model_config *c, po_model *m);
    /* Fits the keys the spec left unset to the data (po__cfg_default); PO_ERR_SHAPE when the
     * data cannot feed this model at all. */
    po_status (*fit)(po_model_config *c, const po_data_shape *data);
} po_model_def;

extern const po_model_def po_model_mnist_mlp, po_model_cifar_cnn, po_model_tiny_gpt;

/* Helpers for model builders: a Linear / LayerNorm / Conv2d layer with PyTorch's parameter
 * names and initialisation under scope `name`. */
po_node *po__nn_linear(po_graph *g, const char *name, po_node *x, int64_t in, int64_t out);
po_node *po__nn_layer_norm(po_graph *g, const char *name, po_node *x, int64_t d);
po_node *po__nn_conv2d(po_graph *g, const char *name, po_node *x, int64_t in, int64_t out, int k, int pad);

#endif
