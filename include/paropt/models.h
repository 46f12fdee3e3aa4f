/* The reference models (../shared/reference): mnist_mlp, cifar_cnn and tiny_gpt, built with the
 * graph API under PyTorch's parameter names, every size configurable.
 *
 * A model spec is "NAME" or "NAME:key=value,key=value,...". Keys (defaults are the benchmark
 * sizes):
 *   mnist_mlp  d_in=784 hidden=1024 classes=10 batch=128
 *   cifar_cnn  c1=32 c2=64 hidden=256 classes=10 batch=64 image=3x32x32 (CxHxW)
 *   tiny_gpt   vocab=256 d_model=256 layers=4 heads=4 seq=128 batch=8
 * These are the keys of the reference files' `config` metadata. */
#ifndef PAROPT_MODELS_H
#define PAROPT_MODELS_H

#include <stdint.h>

#include "paropt/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct po_model {
    const char *name; /* "mnist_mlp", ... */
    po_graph *graph;  /* forward pass and loss; owned by the model */
    po_node *x;       /* input samples: F32 [B, ...] or I64 token ids [B, T] */
    po_node *y;       /* I64 class targets: [B] or [B, T] */
    po_node *logits;  /* [B, classes] or [B, T, vocab] */
    po_node *loss;    /* mean cross-entropy, a scalar */
    int64_t batch;
    char config[512]; /* resolved sizes as JSON, e.g. {"d_in": 784, "hidden": 1024, ...} */
} po_model;

/* Builds the model described by spec. batch > 0 overrides the spec's batch key. Unknown names,
 * unknown keys and bad values are PO_ERR_INVALID_ARG with a message listing what is valid. */
po_status po_model_build(const char *spec, int64_t batch, po_model **out);
void po_model_free(po_model *m);

/* NULL-terminated list of model names. */
const char *const *po_model_names(void);
/* One-line "key=default ..." description of a model's keys, or NULL for an unknown name. */
const char *po_model_keys(const char *name);

#ifdef __cplusplus
}
#endif
#endif
