/* bench_plan: how long planning takes, and what it predicts for scaling.
 *
 * 1. Planning time (po_plan_search, best of 3) for the three reference workloads at their benchmark
 *    sizes on simulated clusters: 8 A100s on NVLink, 8 mixed GPUs (A100, V100, L4, T4; PCIe), and
 *    64 A100s (8 nodes of 8 on NVLink, 25 GB/s between nodes). Limits: 1 s on 8 devices, 10 s on
 *    64; each figure is printed with its ratio to the limit, and the exit status is 1 when one is
 *    over.
 * 2. tiny_gpt on 1, 2, 4 and 8 simulated A100s on NVLink: the chosen plan, its predicted step time,
 *    and the predicted scaling efficiency (throughput on n GPUs / (n x throughput on one)), at the
 *    benchmark batch (8) and at batch 64.
 *
 * Usage: bench_plan [--quick] (one run per figure instead of three). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "paropt/paropt.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "bench_plan: %s: %s\n", what, po_last_error());
    _Exit(1);
}

/* n A100s, every pair on NVLink (300 GB/s one way, 3 us). */
static po_cluster *a100s(int n) {
    po_cluster *c;
    if (po_cluster_new(&c)) die("cluster");
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "g%d", i);
        if (po_cluster_add_catalog(c, id, "a100-80gb")) die("catalog");
    }
    if (po_cluster_set_default_link(c, (po_link){.bandwidth_gbs = 300, .latency_us = 3})) die("link");
    return c;
}

/* 8 nodes of 8 A100s: NVLink inside a node, 25 GB/s and 5 us (InfiniBand HDR) between nodes. */
static po_cluster *a100_nodes(void) {
    po_cluster *c;
    if (po_cluster_new(&c)) die("cluster");
    for (int n = 0; n < 8; n++)
        for (int g = 0; g < 8; g++) {
            char id[16];
            snprintf(id, sizeof id, "n%dg%d", n, g);
            if (po_cluster_add_catalog(c, id, "a100-80gb")) die("catalog");
        }
    if (po_cluster_set_default_link(c, (po_link){.bandwidth_gbs = 25, .latency_us = 5})) die("link");
    for (int n = 0; n < 8; n++)
        for (int a = 0; a < 8; a++)
            for (int b = a + 1; b < 8; b++) {
                char x[16], y[16];
                snprintf(x, sizeof x, "n%dg%d", n, a);
                snprintf(y, sizeof y, "n%dg%d", n, b);
                if (po_cluster_set_link(c, x, y, (po_link){.bandwidth_gbs = 300, .latency_us = 3})) die("link");
            }
    return c;
}

/* Two each of A100, V100, L4 and T4 on PCIe 4 (16 GB/s, 10 us). */
static po_cluster *mixed(void) {
    static const char *const types[] = {"a100-80gb", "v100-sxm2", "l4", "t4"};
    po_cluster *c;
    if (po_cluster_new(&c)) die("cluster");
    for (int i = 0; i < 8; i++) {
        char id[16];
        snprintf(id, sizeof id, "%s-%d", types[i / 2], i % 2);
        if (po_cluster_add_catalog(c, id, types[i / 2])) die("catalog");
    }
    if (po_cluster_set_default_link(c, (po_link){.bandwidth_gbs = 16, .latency_us = 10})) die("link");
    return c;
}

static int plan_devices(const po_plan *p) {
    int n = 0;
    for (int s = 0; s < p->n_stages; s++)
        n += p->stages[s].n_replicas;
    return n;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 && strcmp(argv[1], "--quick") == 0 ? 1 : 3;
    static const char *const specs[] = {"mnist_mlp", "cifar_cnn", "tiny_gpt"};
    static const int64_t batches[] = {128, 64, 8};
    struct {
        const char *name;
        po_cluster *c;
        double limit_s;
    } clusters[] = {{"8 x A100 NVLink", a100s(8), 1.0},
                    {"8 mixed GPUs PCIe", mixed(), 1.0},
                    {"64 x A100 (8 nodes)", a100_nodes(), 10.0}};
    int over = 0;
    printf("planning time (po_plan_search, best of %d)\n", rounds);
    printf("%-21s %-10s %10s %8s  %s\n", "cluster", "workload", "seconds", "/ limit", "chosen plan (predicted step)");
    for (size_t k = 0; k < sizeof clusters / sizeof clusters[0]; k++) {
        po_cost_model *cm;
        if (po_cost_model_new(clusters[k].c, &cm)) die("cost model");
        for (int s = 0; s < 3; s++) {
            po_workload *w;
            if (po_workload_from_model(specs[s], batches[s], NULL, &w)) die(specs[s]);
            double best = INFINITY;
            po_plan p;
            memset(&p, 0, sizeof p);
            for (int r = 0; r < rounds; r++) {
                po_plan_free(&p);
                double t0 = now();
                if (po_plan_search(w, cm, NULL, &p)) die("search");
                best = fmin(best, now() - t0);
            }
            char sum[256];
            printf("%-21s %-10s %10.4f %8.3f  %s (%.4g ms)\n", clusters[k].name, specs[s], best,
                   best / clusters[k].limit_s, po_plan_summary(&p, w, sum, sizeof sum), p.predicted.step_ms);
            over += best > clusters[k].limit_s;
            po_plan_free(&p);
            po_workload_free(w);
        }
        po_cost_model_free(cm);
    }

    printf("\ntiny_gpt on simulated A100s on NVLink (catalog FP32 peak, 5 us per kernel launch)\n");
    printf("%5s %4s %-66s %10s %12s %8s %10s\n", "batch", "GPUs", "chosen plan", "step ms", "samples/s", "speedup",
           "efficiency");
    const int64_t tb[] = {8, 64};
    for (int b = 0; b < 2; b++) {
        double base = 0.0;
        for (int n = 1; n <= 8; n *= 2) {
            po_cluster *c = a100s(n);
            po_cost_model *cm;
            po_workload *w;
            if (po_cost_model_new(c, &cm) || po_workload_from_model("tiny_gpt", tb[b], NULL, &w)) die("setup");
            po_plan p;
            if (po_plan_search(w, cm, NULL, &p)) die("search");
            char sum[256];
            double thr = p.predicted.samples_per_s;
            if (n == 1) base = thr;
            printf("%5lld %4d %-66.66s %10.4g %12.0f %7.2fx %9.0f%%  (%d used)\n", (long long)tb[b], n,
                   po_plan_summary(&p, w, sum, sizeof sum), p.predicted.step_ms, thr, thr / base,
                   100.0 * thr / (n * base), plan_devices(&p));
            po_plan_free(&p);
            po_workload_free(w);
            po_cost_model_free(cm);
            po_cluster_free(c);
        }
    }
    for (size_t k = 0; k < sizeof clusters / sizeof clusters[0]; k++)
        po_cluster_free(clusters[k].c);
    if (over) fprintf(stderr, "bench_plan: %d planning time(s) over the limit\n", over);
    return over ? 1 : 0;
}
