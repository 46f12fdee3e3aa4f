/* The reference models (../shared/reference): mnist_mlp, cifar_cnn and tiny_gpt, built with the
 * graph API under PyTorch's parameter names, every size configurable.
 *
 * A model spec is "NAME" or "NAME:key=value,key=value,...". Keys (defaults are the benchmark
 * sizes):
 *   mnist_mlp  d_in=784 hidden=1024 classes=10 batch=128
 *   cifar_cnn  c1=32 c2=64 hidden=256 classes=10 batch=64 image=3x32x32 (CxHxW)
 *   tiny_gpt   vocab=256 d_model=256 layers=4 heads=4 seq=128 batch=8 max_seq=seq (position table rows)
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
    char spec[512];   /* resolved spec "name:key=value,...": po_model_build(spec, ...) rebuilds the
                       * same architecture, at any batch */
} po_model;

/* What a dataset provides, for a model to fit its input and output layers to it. */
typedef struct po_data_shape {
    po_shape sample; /* one sample: [C, H, W] images, [features], or [seq] token ids */
    po_dtype dtype;  /* F32 samples or I64 token ids */
    int64_t classes; /* target classes (the vocabulary, for token data); 0 = unknown: keep the model's */
} po_data_shape;

/* Builds the model described by spec. batch > 0 overrides the spec's batch key. Unknown names,
 * unknown keys and bad values are PO_ERR_INVALID_ARG with a message listing what is valid. */
po_status po_model_build(const char *spec, int64_t batch, po_model **out);
/* Like po_model_build, but the keys spec leaves unset follow the data: mnist_mlp takes
 * d_in = the sample's element count; cifar_cnn image = the sample's CxHxW (so on 1x28x28
 * Fashion-MNIST conv1 takes 1 channel and the first Linear 64*7*7 inputs); tiny_gpt
 * seq = the sample length and vocab = the class count; every model classes = the class count.
 * Keys set in spec win (a disagreement then surfaces in po_dataset_check). */
po_status po_model_build_for(const char *spec, int64_t batch, const po_data_shape *data, po_model **out);
void po_model_free(po_model *m);

/* NULL-terminated list of model names. */
const char *const *po_model_names(void);
/* One-line "key=default ..." description of a model's keys, or NULL for an unknown name. */
const char *po_model_keys(const char *name);

#ifdef __cplusplus
}
#endif
#endif
