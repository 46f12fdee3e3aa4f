/* Layer times for the search and the simulator: the sum of a layer's node times for one phase,
 * memoised per (layer, phase, device, rows), since candidates ask for the same figures over and
 * over. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan_internal.h"

void po__eval_init(po__eval *e, const po_workload *w, const po_cost_model *cm) {
    memset(e, 0, sizeof *e);
    e->w = w;
    e->cm = cm;
    e->c = po_cost_model_cluster(cm);
}

void po__eval_free(po__eval *e) {
    free(e->memo);
    e->memo = NULL;
    e->memo_cap = e->memo_n = 0;
}

static uint64_t memo_hash(int layer, int phase, int dev, double rows) {
    uint64_t h = po__fnv_u64(PO__FNV_OFFSET, (uint64_t)layer);
    h = po__fnv_u64(h, (uint64_t)phase * 1315423911u + (uint64_t)dev);
    return po__fnv_f64(h, rows);
}

static po__tparts compute(po__eval *e, int layer, po_phase ph, int dev, double rows) {
    po__tparts sum = {0, 0, 0, 0};
    const po_workload *w = e->w;
    int k = layer * 3 + (int)ph;
    for (int i = 0; i < w->lp_count[k]; i++) {
        po__tparts p;
        po__node_seconds(e->cm, w, &w->nodes[w->lp_nodes[w->lp_first[k] + i]], dev, rows, &p);
        sum.t += p.t;
        sum.flop_s += p.flop_s;
        sum.byte_s += p.byte_s;
        sum.over_s += p.over_s;
    }
    return sum;
}

po__tparts po__layer_time(po__eval *e, int layer, po_phase ph, int dev, double rows) {
    if (ph == PO_PHASE_OPTIMIZER) rows = (double)e->w->batch; /* updates do not depend on rows */
    if (e->alias) dev = e->alias[dev];
    uint64_t h = memo_hash(layer, (int)ph, dev, rows);
    if (e->memo_cap) {
        for (size_t i = h & (e->memo_cap - 1);; i = (i + 1) & (e->memo_cap - 1)) {
            po__memo_entry *m = &e->memo[i];
            if (!m->used) break;
            if (m->h == h && m->layer == layer && m->phase == (int)ph && m->dev == dev && m->rows == rows) return m->v;
        }
    }
    po__tparts v = compute(e, layer, ph, dev, rows);
    if (2 * (e->memo_n + 1) > e->memo_cap) {
        size_t cap = e->memo_cap ? 2 * e->memo_cap : 1024;
        po__memo_entry *nm = calloc(cap, sizeof *nm);
        if (!nm) return v; /* no memo: still correct, only slower */
        for (size_t i = 0; i < e->memo_cap; i++) {
            if (!e->memo[i].used) continue;
            size_t j = e->memo[i].h & (cap - 1);
            while (nm[j].used)
                j = (j + 1) & (cap - 1);
            nm[j] = e->memo[i];
        }
        free(e->memo);
        e->memo = nm;
        e->memo_cap = cap;
    }
    size_t j = h & (e->memo_cap - 1);
    while (e->memo[j].used)
        j = (j + 1) & (e->memo_cap - 1);
    e->memo[j] = (po__memo_entry){h, layer, (int)ph, dev, rows, v, true};
    e->memo_n++;
    return v;
}

double po__range_time(po__eval *e, int first, int last, int dev, double rows, bool recompute) {
    double t = 0.0;
    for (int l = first; l <= last; l++) {
        double f = po__layer_time(e, l, PO_PHASE_FORWARD, dev, rows).t;
        t += f * (recompute ? 2.0 : 1.0) + po__layer_time(e, l, PO_PHASE_BACKWARD, dev, rows).t;
    }
    return t;
}
