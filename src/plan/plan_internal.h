/* Internals shared by the src/plan files: the workload's records, the cluster's storage, the
 * layer-time evaluator (memoised cost model queries) and the simulator's detailed result. */
#ifndef PO_PLAN_INTERNAL_H
#define PO_PLAN_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "paropt/plan.h"

/* --- small helpers ------------------------------------------------------------------------- */

#define PO__FNV_OFFSET 1469598103934665603ull
static inline uint64_t po__fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}
static inline uint64_t po__fnv_u64(uint64_t h, uint64_t v) { return po__fnv(h, &v, sizeof v); }
static inline uint64_t po__fnv_f64(uint64_t h, double v) { return po__fnv(h, &v, sizeof v); }
uint64_t po__fnv_str(uint64_t h, const char *s);

/* A figure affine in the rows of a (micro-)batch: v(rows) = a[0] + a[1] rows, never negative. */
static inline double po__aff(const double a[2], double rows) {
    double v = a[0] + a[1] * rows;
    return v > 0.0 ? v : 0.0;
}

/* --- workload ------------------------------------------------------------------------------- */

typedef struct po__wnode {
    po_op op;
    po_phase phase;
    int layer;       /* mapped: nodes outside every layer join a neighbour */
    bool gemm;       /* matrix products, convolutions, attention: timed on the GEMM curve */
    bool splittable; /* a GEMM or convolution operator split may share out */
    double flops[2], bytes[2];
    double call_flops[2]; /* FLOPs of one product call (gemm) */
    double in_bytes[2];   /* activation (non-parameter) inputs */
    double out_bytes[2];  /* its output */
    double param_bytes;   /* parameter values it reads */
    double elems;         /* elements of its output (an optimizer node's: its parameter's) */
    int follows;          /* the product it may run on the parts of (po__opsplit_follows); -1 */
    int gathers;          /* the node it sums over rows, as a bias gradient (po__opsplit_gathers); -1 */
    uint64_t key[2];      /* po_op_key at the two batches */
} po__wnode;

struct po_workload {
    char name[512];
    int64_t batch, batch2;
    int n_nodes;
    po__wnode *nodes;
    int n_layers;
    char **layer_names;
    double *param_bytes, *grad_bytes, *state_bytes; /* per layer, constant */
    double (*stash)[2];                             /* per layer */
    double (*cut)[2];                               /* per layer: bytes crossing after it */
    double input[2], arena[2], scratch[2], stash_total[2];
    int *lp_first, *lp_count, *lp_nodes; /* nodes of (layer, phase): index layer * 3 + phase */
    uint64_t signature;
};

static inline double po__wn_flops(const po__wnode *n, double rows) { return po__aff(n->flops, rows); }

/* Operator split's choices on the workload at `rows` rows, as the runtime makes them on the graph
 * (runtime/opsplit.h): whether node i is shared out (po__opsplit_node_splits), and whether it
 * runs on a split product's parts (po__opsplit_rides). The simulator scores a plan with them. */
bool po__wnode_splits(const po_workload *w, int i, double rows);
bool po__wnode_rides(const po_workload *w, int i, double rows);

/* --- cluster -------------------------------------------------------------------------------- */

struct po_cluster {
    int n, cap;
    po_cluster_device *dev;
    uint64_t *id_hash;
    po_link *links; /* cap x cap; bandwidth NaN = the default */
    po_link def;
};

/* --- evaluator: memoised layer times -------------------------------------------------------- */

typedef struct po__tparts {
    double t;      /* seconds */
    double flop_s; /* of which in nodes bound by FLOP/s */
    double byte_s; /* ... by bytes */
    double over_s; /* ... by dispatch overhead */
} po__tparts;

typedef struct po__memo_entry {
    uint64_t h;
    int layer, phase, dev;
    double rows;
    po__tparts v;
    bool used;
} po__memo_entry;

typedef struct po__eval {
    const po_workload *w;
    const po_cost_model *cm;
    const po_cluster *c;
    po__memo_entry *memo;
    size_t memo_cap, memo_n;
    const int *alias; /* optional: device -> a device with identical figures and no history of its
                       * own, whose memoised times it shares */
} po__eval;

void po__eval_init(po__eval *e, const po_workload *w, const po_cost_model *cm);
void po__eval_free(po__eval *e);
/* Time of layer `layer`'s nodes of phase ph on device dev for `rows` samples. */
po__tparts po__layer_time(po__eval *e, int layer, po_phase ph, int dev, double rows);
/* Forward + backward of layers first..last (with a second forward when recompute). */
double po__range_time(po__eval *e, int first, int last, int dev, double rows, bool recompute);
/* Time of one node for rows samples on dev (an operator-split block: this scaled by
 * po__node_roofline's ratio from the whole to the block). */
/* An executor for g on real device d, for timing it (calibration, contention): parameters
 * initialised (seed 1), inputs zero (valid targets), a learning rate of 0 (the runs do a step's
 * work without moving the parameters), and d's slowdown=F option emulated, so an
 * emulated slow device is measured slow and nothing passes F on. On failure the caller still
 * frees what *params and *ex hold (NULL or made). */
po_status po__measure_exec_open(const po_graph *g, const po_device *d, po_params **params, po_exec **ex);

/* The roofline alone (no measured history) for frac of node n at rows on device dev: what the
 * device's GEMM curve and bandwidth say, for ratios between sizes of one node. */
double po__node_roofline(const po_cost_model *cm, const po__wnode *n, int dev, double rows, double frac);
double po__node_seconds(const po_cost_model *cm, const po_workload *w, const po__wnode *n, int dev, double rows,
                        po__tparts *parts);

/* Whether the history holds any measurement on device dev (cluster index). */
bool po__cost_model_has_device(const po_cost_model *cm, int dev);

/* Explanation with a note from the search on what bound the choice (may be NULL). */
po_status po__plan_explain(po_plan *p, const po_workload *w, const po_cost_model *cm, const po_plan *runner_up,
                           const char *constraint);

/* Measurements in the history (distinct keys): part of the plan cache key. */
size_t po__cost_model_history_size(const po_cost_model *cm);

/* Boundary bytes after layer j at rows (0 for the last layer). */
double po__cut_bytes(const po_workload *w, int j, double rows);

/* --- simulator ------------------------------------------------------------------------------ */

typedef struct po__sim_device {
    int dev; /* cluster index */
    double busy_s, flop_s, byte_s, over_s, comm_s;
    double peak_bytes, energy_j;
} po__sim_device;

typedef struct po__sim_out {
    double step_s, energy_j;
    bool energy_known, fits;
    int n_dev;
    po__sim_device *d; /* owned, plan order */
    int worst_mem;     /* index into d with the highest peak / capacity */
    double worst_mem_ratio;
    int busiest_link_from, busiest_link_to; /* cluster indices, -1 none */
    double busiest_link_s;
    double allreduce_s; /* longest total all-reduce time of one stage */
    int allreduce_stage;
    double compute_max_s;    /* busy time of the busiest device */
    int split_ops, gemm_ops; /* operator split: nodes split, nodes of ops it divides */
    int ride_ops;            /* operator split: nodes run on a split product's parts */
} po__sim_out;

po_status po__simulate(po__eval *e, const po_plan *p, po__sim_out *out);
void po__sim_out_free(po__sim_out *o);
/* Fills pred from a simulation (devices in plan order). */
po_status po__prediction_from_sim(const po__sim_out *s, const po_plan *p, const po_cluster *c, po_prediction *pred);

/* Cluster indices of the plan's devices in plan order (stage by stage, replica by replica). */
po_status po__plan_devices(const po_plan *p, const po_cluster *c, int **idx, int *n);

/* --- dp shares with a shared evaluator ------------------------------------------------------- */
po_status po__dp_shares(po__eval *e, const int *devices, int n, double *shares, int *binding);

/* --- plan building helpers -------------------------------------------------------------------- */
po_status po__plan_init(po_plan *p, po_strategy s, const po_workload *w, int n_stages);
po_status po__stage_set(po_plan_stage *st, int first, int last, int n_replicas);
po_status po__plan_add_sentence(po_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Byte counts for text: "12.3 MiB". */
void po__fmt_bytes(double b, char *buf, size_t size);

/* Reads a whole text file (at most 64 MiB) into a malloc'd NUL-terminated string. */
po_status po__read_text_file(const char *path, char **out);

/* --- JSON positions ----------------------------------------------------------------------- */

/* Line and column (1-based) of the value at `path` in JSON text: path is a list of object keys
 * and array indices, e.g. {"devices", "#1", "type"} (an index is written "#N"). Falls back to the
 * nearest enclosing value found; 0, 0 when the text cannot be scanned. */
void po__json_locate(const char *text, const char *const *path, int depth, int *line, int *col);
/* PO_ERR_FORMAT "origin:line:col: devices[1].type: message" for the value at path. */
po_status po__json_failv(const char *text, const char *origin, const char *const *path, int depth, const char *fmt,
                         va_list ap);
/* PO_ERR_FORMAT "origin:line:col: what" for text the JSON parser rejected (err: its error):
 * its message quotes the text, whose control characters are escaped to keep it one line. */
po_status po__json_parse_fail(const char *origin, const json_error_t *err);

#endif
