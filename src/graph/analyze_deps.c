/* Analysis pass 2: dependencies (data, and write-after-read for in-place parameter updates),
 * topological levels, FLOP-weighted longest paths and the critical path. */
#include <stdlib.h>
#include <string.h>

#include "graph/analyze_internal.h"
#include "graph/memplan.h"

/* The parameter node a node overwrites in place, or NULL: optimizer updates are views of the
 * parameter they write (src/ops/optim_step.c). */
static const po_node *updated_param(const po_node *n) {
    if (n->phase != PO_PHASE_OPTIMIZER || n->store != PO_STORE_VIEW) return NULL;
    const po_node *r = po__storage_root(n);
    return r->store == PO_STORE_PARAM ? r : NULL;
}

static int by_from(const void *x, const void *y) {
    const po_dep *a = x, *b = y;
    if (a->from != b->from) return a->from - b->from;
    return (int)a->kind - (int)b->kind; /* DATA first: it wins when deduplicating */
}

/* readers[p .. ]: for every parameter node id, the nodes reading its storage (CSR). */
typedef struct {
    int *start; /* n + 1 */
    int *node;
} readers_t;

static po_status collect_readers(const po_analysis *a, readers_t *rd) {
    const po_graph *g = a->g;
    int n = a->n;
    rd->start = calloc((size_t)n + 2, sizeof *rd->start);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += (size_t)g->nodes[i]->n_in;
    rd->node = malloc(sizeof *rd->node * (total + 1));
    int *fill = calloc((size_t)n + 1, sizeof *fill);
    if (!rd->start || !rd->node || !fill) {
        free(fill);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory analysing dependencies");
    }
    /* Count, prefix-sum, fill; a node reading a parameter twice is listed once per read, which
     * the deduplication of edges absorbs. */
    for (int i = 0; i < n; i++) {
        const po_node *c = g->nodes[i];
        for (int k = 0; k < c->n_in; k++) {
            const po_node *r = po__storage_root(c->in[k]);
            if (r->store == PO_STORE_PARAM) rd->start[r->id + 1]++;
        }
    }
    for (int i = 0; i < n; i++)
        rd->start[i + 1] += rd->start[i];
    for (int i = 0; i < n; i++) {
        const po_node *c = g->nodes[i];
        for (int k = 0; k < c->n_in; k++) {
            const po_node *r = po__storage_root(c->in[k]);
            if (r->store == PO_STORE_PARAM) rd->node[rd->start[r->id] + fill[r->id]++] = i;
        }
    }
    free(fill);
    return PO_OK;
}

static po_status build_edges(po_analysis *a) {
    const po_graph *g = a->g;
    int n = a->n;
    readers_t rd = {NULL, NULL};
    po_status st = collect_readers(a, &rd);
    size_t cap = 0;
    for (int i = 0; i < n && !st; i++) {
        cap += (size_t)g->nodes[i]->n_in;
        const po_node *p = updated_param(g->nodes[i]);
        if (p) cap += (size_t)(rd.start[p->id + 1] - rd.start[p->id]);
    }
    a->deps = st ? NULL : malloc(sizeof *a->deps * (cap + 1));
    a->pred_start = st ? NULL : calloc((size_t)n + 1, sizeof *a->pred_start);
    if (!st && (!a->deps || !a->pred_start)) st = po_fail(PO_ERR_NO_MEMORY, "out of memory analysing dependencies");
    int m = 0;
    for (int i = 0; i < n && !st; i++) {
        const po_node *c = g->nodes[i];
        int first = m;
        for (int k = 0; k < c->n_in; k++)
            a->deps[m++] = (po_dep){c->in[k]->id, i, PO_DEP_DATA};
        const po_node *p = updated_param(c);
        for (int r = p ? rd.start[p->id] : 0; p && r < rd.start[p->id + 1]; r++)
            if (rd.node[r] != i) a->deps[m++] = (po_dep){rd.node[r], i, PO_DEP_WAR};
        qsort(a->deps + first, (size_t)(m - first), sizeof *a->deps, by_from);
        int kept = first;
        for (int e = first; e < m; e++) {
            if (kept > first && a->deps[kept - 1].from == a->deps[e].from) continue;
            if (a->deps[e].from >= i)
                st = po_fail(PO_ERR_UNSUPPORTED, "analysis: node %d (%s) reads parameter \"%s\" after its update",
                             a->deps[e].from, po_op_name(g->nodes[a->deps[e].from]->op), p ? p->name : "?");
            a->deps[kept++] = a->deps[e];
        }
        m = kept;
        a->pred_start[i + 1] = m;
    }
    a->n_deps = m;
    a->totals.n_deps = m;
    free(rd.start);
    free(rd.node);
    if (st) return st;
    /* Successors: the same edges grouped by `from`. */
    a->succ_start = calloc((size_t)n + 1, sizeof *a->succ_start);
    a->succ = malloc(sizeof *a->succ * ((size_t)m + 1));
    int *fill = calloc((size_t)n + 1, sizeof *fill);
    if (!a->succ_start || !a->succ || !fill) {
        free(fill);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory analysing dependencies");
    }
    for (int e = 0; e < m; e++)
        a->succ_start[a->deps[e].from + 1]++;
    for (int i = 0; i < n; i++)
        a->succ_start[i + 1] += a->succ_start[i];
    for (int e = 0; e < m; e++) { /* edges are sorted by `to`, so successors come out ascending */
        int f = a->deps[e].from;
        a->succ[a->succ_start[f] + fill[f]++] = a->deps[e].to;
    }
    free(fill);
    return PO_OK;
}

static po_status build_levels(po_analysis *a) {
    int n = a->n;
    int depth = 0;
    for (int i = 0; i < n; i++) {
        int lv = 0;
        for (int e = a->pred_start[i]; e < a->pred_start[i + 1]; e++) {
            int l = a->nodes[a->deps[e].from].level + 1;
            if (l > lv) lv = l;
        }
        a->nodes[i].level = lv;
        if (lv + 1 > depth) depth = lv + 1;
    }
    a->n_levels = depth;
    a->level_start = calloc((size_t)depth + 2, sizeof *a->level_start);
    a->level_nodes = malloc(sizeof *a->level_nodes * ((size_t)n + 1));
    int *fill = calloc((size_t)depth + 1, sizeof *fill);
    if (!a->level_start || !a->level_nodes || !fill) {
        free(fill);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory analysing dependencies");
    }
    for (int i = 0; i < n; i++)
        a->level_start[a->nodes[i].level + 1]++;
    int widest = 0;
    for (int l = 0; l < depth; l++) {
        if (a->level_start[l + 1] > widest) widest = a->level_start[l + 1];
        a->level_start[l + 1] += a->level_start[l];
    }
    for (int i = 0; i < n; i++) {
        int l = a->nodes[i].level;
        a->level_nodes[a->level_start[l] + fill[l]++] = i;
    }
    free(fill);
    a->totals.n_levels = depth;
    a->totals.max_level_width = widest;
    return PO_OK;
}

/* Longest FLOP-weighted paths. Ids are a topological order (every edge goes up), so one pass
 * each way suffices. */
static po_status build_critical_path(po_analysis *a) {
    int n = a->n;
    double crit = 0.0;
    int end = -1;
    for (int i = 0; i < n; i++) {
        double best = 0.0;
        for (int e = a->pred_start[i]; e < a->pred_start[i + 1]; e++)
            if (a->nodes[a->deps[e].from].flops_to > best) best = a->nodes[a->deps[e].from].flops_to;
        a->nodes[i].flops_to = a->nodes[i].flops + best;
        if (a->nodes[i].flops_to >= crit) { /* ties to the higher id: a node without successors */
            crit = a->nodes[i].flops_to;
            end = i;
        }
    }
    for (int i = n - 1; i >= 0; i--) {
        double best = 0.0;
        for (int s = a->succ_start[i]; s < a->succ_start[i + 1]; s++)
            if (a->nodes[a->succ[s]].flops_from > best) best = a->nodes[a->succ[s]].flops_from;
        a->nodes[i].flops_from = a->nodes[i].flops + best;
        double through = a->nodes[i].flops_to + a->nodes[i].flops_from - a->nodes[i].flops;
        a->nodes[i].slack = crit - through > 0.0 ? crit - through : 0.0;
    }
    a->totals.critical_path_flops = crit;
    a->path = malloc(sizeof *a->path * ((size_t)n + 1));
    if (!a->path) return po_fail(PO_ERR_NO_MEMORY, "out of memory analysing dependencies");
    int len = 0;
    for (int i = end; i >= 0;) { /* walk back along the heaviest predecessor */
        a->path[len++] = i;
        a->nodes[i].critical = true;
        int next = -1;
        for (int e = a->pred_start[i]; e < a->pred_start[i + 1]; e++) {
            int f = a->deps[e].from;
            if (next < 0 || a->nodes[f].flops_to >= a->nodes[next].flops_to) next = f;
        }
        /* Among equally heavy predecessors the first input (the data flowing through, not a
         * weight) reads best. */
        const po_node *c = a->g->nodes[i];
        if (next >= 0 && c->n_in && a->nodes[c->in[0]->id].flops_to == a->nodes[next].flops_to) next = c->in[0]->id;
        i = next;
    }
    for (int k = 0; k < len / 2; k++) {
        int t = a->path[k];
        a->path[k] = a->path[len - 1 - k];
        a->path[len - 1 - k] = t;
    }
    a->n_path = len;
    return PO_OK;
}

po_status po__analyze_deps(po_analysis *a) {
    po_status st = build_edges(a);
    if (!st) st = build_levels(a);
    if (!st) st = build_critical_path(a);
    return st;
}

bool po_analysis_may_overlap(const po_analysis *a, int i, int j) {
    if (i == j || i < 0 || j < 0 || i >= a->n || j >= a->n) return false;
    int lo = i < j ? i : j, hi = i < j ? j : i;
    /* Edges go up, so only nodes in (lo, hi] can lie on a path from lo to hi. */
    if (a->nodes[hi].level <= a->nodes[lo].level) return true;
    size_t span = (size_t)(hi - lo) + 1;
    unsigned char *seen = calloc(span, 1);
    int *stack = malloc(sizeof *stack * span);
    if (!seen || !stack) { /* cannot tell: the safe answer */
        free(seen);
        free(stack);
        return false;
    }
    bool reached = false;
    int top = 0;
    stack[top++] = lo;
    seen[0] = 1;
    while (top && !reached) {
        int v = stack[--top];
        for (int s = a->succ_start[v]; s < a->succ_start[v + 1] && !reached; s++) {
            int w = a->succ[s];
            if (w == hi) reached = true;
            if (w >= hi || seen[w - lo]) continue;
            seen[w - lo] = 1;
            stack[top++] = w;
        }
    }
    free(seen);
    free(stack);
    return !reached;
}
