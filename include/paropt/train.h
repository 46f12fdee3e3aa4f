/* Training a model on one worker: backward pass, optimizer, parameters and executor together.
 *
 *   po_model *m;     po_model_build("mnist_mlp", 128, &m);
 *   po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
 *   po_trainer *t;   po_trainer_new(m, &o, 42, &t);
 *   for (...) { fill po_trainer_input(t, 0) and (t, 1); po_trainer_step(t, &loss); }
 *   po_params_save(po_trainer_params(t), "model.safetensors", 0, NULL, NULL);
 */
#ifndef PAROPT_TRAIN_H
#define PAROPT_TRAIN_H

#include <stdint.h>

#include "paropt/models.h"
#include "paropt/optim.h"
#include "paropt/params.h"
#include "paropt/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct po_trainer po_trainer;

/* Adds the backward pass and the optimizer to m's graph, allocates parameters initialised from
 * `seed` (PyTorch's default distributions), and prepares the executor. m must outlive t. */
po_status po_trainer_new(po_model *m, const po_optim_opts *o, uint64_t seed, po_trainer **out);
void po_trainer_free(po_trainer *t);

po_params *po_trainer_params(po_trainer *t);
po_exec *po_trainer_exec(po_trainer *t);

/* Batch buffers to fill before a step, as tensors over the executor's input memory:
 * 0 is the samples (m->x), 1 the targets (m->y). Owned by the trainer. */
po_tensor *po_trainer_input(po_trainer *t, int which);

/* One training step on the current inputs; *loss gets the batch's mean loss before the update. */
po_status po_trainer_step(po_trainer *t, float *loss);

#ifdef __cplusplus
}
#endif
#endif
