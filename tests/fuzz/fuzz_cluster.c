/* libFuzzer target for cluster files (po_cluster_parse). Any byte string must give a clean
 * one-line error and no cluster, or a cluster whose every link has figures the planner can use:
 * a positive, finite bandwidth and a latency, reclaim cost and wake-up time that are finite and
 * not negative. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "paropt/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool usable(po_link l) {
    return l.bandwidth_gbs > 0.0 && isfinite(l.bandwidth_gbs) && l.latency_us >= 0.0 && isfinite(l.latency_us) &&
           l.reclaim_ns_per_byte >= 0.0 && isfinite(l.reclaim_ns_per_byte) && l.wake_us >= 0.0 && isfinite(l.wake_us);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    po_cluster *c = (po_cluster *)1;
    if (po_cluster_parse(text, "f.json", &c) != PO_OK) {
        if (c || strchr(po_last_error(), '\n')) __builtin_trap();
    } else {
        int n = po_cluster_size(c);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                if (i != j && !usable(po_cluster_link(c, i, j))) __builtin_trap();
        po_cluster_free(c);
    }
    free(text);
    return 0;
}
