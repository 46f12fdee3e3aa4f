/* Parameter storage: values, gradients and optimizer state, each one contiguous float buffer
 * with the same name -> offset table (as in llm.c), so that all-reduce, checkpoints and the
 * optimizer each touch one buffer. */
#ifndef PAROPT_PARAMS_H
#define PAROPT_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "paropt/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct po_param_info {
    const char *name; /* PyTorch state_dict name, e.g. "blocks.0.qkv.weight" */
    po_shape shape;
    int64_t numel;
    size_t offset; /* in floats, into values() and grads(); 16-float aligned */
    po_init init;
} po_param_info;

typedef struct po_params po_params;

/* Storage for g's parameters (in the graph's order), zero-filled; with optimizer state sized
 * for the optimizer the graph holds (po_graph_add_optimizer), if any. The graph must outlive
 * nothing here: names are copied. */
po_status po_params_new(const po_graph *g, po_params **out);
void po_params_free(po_params *p);
/* Storage that shares base's values and optimizer state but has gradients of its own: what a
 * data-parallel worker computes its share's gradients into. base must outlive it. */
po_status po_params_new_replica(const po_params *base, po_params **out);

int po_params_count(const po_params *p);
const po_param_info *po_params_info(const po_params *p, int i);
/* Index of the parameter with this name, or -1. */
int po_params_find(const po_params *p, const char *name);

size_t po_params_total(const po_params *p); /* floats per buffer, alignment padding included */
float *po_params_values(po_params *p);
float *po_params_grads(po_params *p);
/* Optimizer state: state_slots() floats per parameter float; parameter i's state is the
 * state_slots * numel floats at state() + state_slots * offset (Adam: first moment, then
 * second moment). NULL when the graph has no optimizer or it keeps no state. */
float *po_params_state(po_params *p);
int po_params_state_slots(const po_params *p);
/* Bytes of the three buffers: values, gradients and optimizer state (alignment padding included). */
size_t po_params_allocated_bytes(const po_params *p);

/* Draws initial values as each parameter's po_init says, from a generator seeded with `seed`
 * (same seed, same values). */
void po_params_init(po_params *p, uint64_t seed);

/* Loads values by name from a safetensors file. Every parameter must be present with its exact
 * shape and dtype F32; any other name is an error too, except names under the data namespaces
 * "input.", "expect.", "grad.", "adam1." and "optim." (a dataset or reference file may carry
 * them). Nothing is changed on error. */
po_status po_params_load(po_params *p, const char *path);
/* Writes every parameter under its name to a safetensors file atomically (a temporary file in
 * the same directory, fsync, rename): `path` is either the old file or the whole new one.
 * meta_keys/meta_values (n_meta pairs, may be 0) go to __metadata__. */
po_status po_params_save(const po_params *p, const char *path, int n_meta, const char *const *meta_keys,
                         const char *const *meta_values);

#ifdef __cplusplus
}
#endif
#endif
