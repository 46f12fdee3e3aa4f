/* DOT (Graphviz) drawing of an analysed graph: layer clusters, nodes coloured by arithmetic
 * intensity and sized by FLOPs, the critical path outlined. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graph/analyze_internal.h"

/* The colour scale: log10(intensity) from -1 (0.1 FLOP/byte) to 2 (100 FLOP/byte) runs the hue
 * from blue (0.667) to red (0). */
#define SCALE_LO (-1.0)
#define SCALE_HI 2.0

const char *po_analysis_intensity_color(double intensity, char *buf, size_t size) {
    if (!(intensity > 0.0)) {
        snprintf(buf, size, "0.000 0.000 0.900");
        return buf;
    }
    /* intensity > 0 here; cppcheck does not see it */
    // cppcheck-suppress invalidFunctionArg
    double u = (log10(intensity) - SCALE_LO) / (SCALE_HI - SCALE_LO);
    u = u < 0.0 ? 0.0 : u > 1.0 ? 1.0 : u;
    snprintf(buf, size, "%.3f 0.550 1.000", 0.667 * (1.0 - u));
    return buf;
}

/* s as the inside of a DOT double-quoted string: quotes and backslashes escaped, line breaks
 * and other control characters turned into spaces. */
static void put_escaped(FILE *f, const char *s) {
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            fputc('\\', f);
            fputc(ch, f);
        } else if (ch < 0x20 || ch == 0x7f) {
            fputc(' ', f);
        } else {
            fputc(ch, f);
        }
    }
}

/* FLOPs with an SI prefix: "206.4 MFLOP". */
static const char *fmt_flops(double v, char *buf, size_t size) {
    static const char *const unit[] = {"", "k", "M", "G", "T", "P"};
    int u = 0;
    while (fabs(v) >= 1000.0 && u < 5) {
        v /= 1000.0;
        u++;
    }
    snprintf(buf, size, u ? "%.1f %sFLOP" : "%.0f %sFLOP", v, unit[u]);
    return buf;
}

static const char *phase_name(po_phase p) {
    return p == PO_PHASE_FORWARD ? "forward" : p == PO_PHASE_BACKWARD ? "backward" : "optimizer";
}

static void put_node(FILE *f, const po_node_info *r, const char *indent) {
    const po_node *n = r->node;
    char shape[96];
    po_shape_format(&n->shape, shape, sizeof shape);
    fprintf(f, "%sn%d [label=\"", indent, n->id);
    if (n->name) {
        put_escaped(f, n->name);
        fprintf(f, "\\n");
    }
    fprintf(f, "%s %s", po_op_name(n->op), shape);
    if (r->flops > 0.0) {
        char fl[32];
        fprintf(f, "\\n%s, %.3g FLOP/B", fmt_flops(r->flops, fl, sizeof fl), r->intensity);
    }
    fprintf(f, "\", tooltip=\"node %d, %s, level %d: %.0f FLOP, %.0f bytes read, %.0f written, %zu arena bytes\"",
            n->id, phase_name(n->phase), r->level, r->flops, r->bytes_read, r->bytes_written, r->arena_bytes);
    bool leaf = n->op == PO_OP_INPUT || n->op == PO_OP_PARAM;
    if (leaf)
        fprintf(f, ", shape=ellipse, style=filled, fillcolor=\"0.000 0.000 0.850\"");
    else if (n->store == PO_STORE_VIEW && r->flops == 0.0 && r->bytes_read + r->bytes_written == 0.0)
        fprintf(f, ", style=\"rounded,dashed\"");
    else {
        char col[32];
        fprintf(f, ", fillcolor=\"%s\"", po_analysis_intensity_color(r->intensity, col, sizeof col));
    }
    if (r->flops >= 1000.0) fprintf(f, ", width=%.2f", 0.75 + 0.25 * (log10(r->flops) - 3.0));
    if (r->critical) fprintf(f, ", color=\"0.000 1.000 0.850\", penwidth=3");
    fprintf(f, "];\n");
}

/* True when the critical path runs from `from` straight to `to`. */
static bool on_path(const po_analysis *a, int from, int to) {
    int lo = 0, hi = a->n_path - 1;
    while (lo <= hi) { /* path ids ascend */
        int mid = (lo + hi) / 2;
        if (a->path[mid] == from) return mid + 1 < a->n_path && a->path[mid + 1] == to;
        if (a->path[mid] < from)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return false;
}

static void put_legend(FILE *f) {
    static const double samples[] = {0.1, 1.0, 10.0, 100.0};
    char col[32];
    fprintf(f, "  subgraph cluster_legend {\n"
               "    label=\"legend\"; style=\"rounded\"; color=\"0.000 0.000 0.600\";\n"
               "    node [shape=box, style=\"filled,rounded\", width=1.6];\n");
    for (int i = 0; i < 4; i++)
        fprintf(f, "    legend%d [label=\"%s%g FLOP/byte\", fillcolor=\"%s\"];\n", i,
                i == 0   ? "<= "
                : i == 3 ? ">= "
                         : "",
                samples[i], po_analysis_intensity_color(samples[i], col, sizeof col));
    fprintf(f,
            "    legend4 [label=\"no bytes moved\", fillcolor=\"%s\"];\n"
            "    legend5 [label=\"critical path\\nwidth grows with log FLOPs\", style=rounded, "
            "color=\"0.000 1.000 0.850\", penwidth=3];\n"
            "    legend6 [label=\"dashed arrow: write after read\\n(update waits for readers)\", style=rounded];\n"
            "    legend0 -> legend1 -> legend2 -> legend3 -> legend4 -> legend5 -> legend6 [style=invis];\n"
            "  }\n",
            po_analysis_intensity_color(0.0, col, sizeof col));
}

po_status po_analysis_write_dot(const po_analysis *a, const char *title, FILE *f) {
    const po_graph *g = a->g;
    fprintf(f, "digraph paropt {\n"
               "  graph [fontname=\"Helvetica\", fontsize=12, labelloc=t, nodesep=0.2, ranksep=0.3, label=\"");
    put_escaped(f, title ? title : "paropt graph");
    fprintf(f, "\"];\n"
               "  node [fontname=\"Helvetica\", fontsize=9, shape=box, style=\"filled,rounded\", height=0.3, "
               "margin=\"0.06,0.03\"];\n"
               "  edge [color=\"0.000 0.000 0.330\", arrowsize=0.6];\n");
    for (int l = 0; l < g->n_layers; l++) {
        fprintf(f, "  subgraph cluster_%d {\n    label=\"", l);
        put_escaped(f, g->layers[l]);
        fprintf(f, "\"; style=\"rounded\"; color=\"0.000 0.000 0.600\"; fontsize=11;\n");
        for (int i = 0; i < a->n; i++)
            if (a->nodes[i].node->layer == l) put_node(f, &a->nodes[i], "    ");
        fprintf(f, "  }\n");
    }
    for (int i = 0; i < a->n; i++)
        if (a->nodes[i].node->layer < 0) put_node(f, &a->nodes[i], "  ");
    for (int e = 0; e < a->n_deps; e++) {
        const po_dep *d = &a->deps[e];
        fprintf(f, "  n%d -> n%d", d->from, d->to);
        if (d->kind == PO_DEP_WAR)
            fprintf(f, " [style=dashed, color=\"0.000 0.000 0.600\", constraint=false]");
        else if (on_path(a, d->from, d->to))
            fprintf(f, " [color=\"0.000 1.000 0.850\", penwidth=2]");
        fprintf(f, ";\n");
    }
    put_legend(f);
    fprintf(f, "}\n");
    if (fflush(f) || ferror(f)) return po_fail(PO_ERR_IO, "writing the DOT drawing failed");
    return PO_OK;
}
