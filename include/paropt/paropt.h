/* paropt: train deep-learning models with automatic parallelism. Umbrella header. */
#ifndef PAROPT_H
#define PAROPT_H

#include "paropt/status.h"
#include "paropt/tensor.h"
#include "paropt/ops.h"
#include "paropt/graph.h"
#include "paropt/params.h"
#include "paropt/optim.h"
#include "paropt/runtime.h"
#include "paropt/io.h"
#include "paropt/analyze.h"
#include "paropt/hw.h"
#include "paropt/energy.h"
#include "paropt/models.h"
#include "paropt/data.h"
#include "paropt/train.h"
#include "paropt/plan.h"
#include "paropt/trace.h"
#include "paropt/tfevents.h"

#define PAROPT_VERSION_STRING PO_VERSION

#endif
