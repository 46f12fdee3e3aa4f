/* Measurement on this machine with tiny sizes (GEMM curve, bandwidth, overhead, links between
 * cores), the hardware cache (hits, a corrupt or foreign file ignored, --refresh, FULL not served
 * by QUICK figures) and per-op profiling on a pinned thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hw/hw_internal.h"
#include "paropt/hw.h"
#include "po_test.h"

static char dir[128];

static po_machine *machine(void) {
    po_hw_opts o = po_hw_opts_default();
    o.cuda_lib = o.nvml_lib = "";
    po_machine *m;
    PO_CHECK(po_machine_discover(&o, &m));
    return m;
}

/* Tiny sizes: a few milliseconds per figure. */
static po_measure_opts tiny(void) {
    po_measure_opts o = po_measure_opts_default();
    o.cache_dir = dir;
    o.gemm_max = 64;
    o.stream_bytes = 1 << 20;
    o.link_bytes = 64 << 10;
    o.point_seconds = 0.004;
    return o;
}

static int progress_calls;
static void count_progress(const char *what, void *ctx) {
    assert_ptr_equal(ctx, &progress_calls);
    assert_true(strlen(what) > 0);
    progress_calls++;
}

static int make_dir(void **st) {
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/po_hwcache_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **st) {
    (void)st;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void measures_cores_and_links(void **st) {
    (void)st;
    po_machine *m = machine();
    int cores = po_machine_cpu(m)->cores;
    po_device_list l;
    PO_CHECK(po_devices_parse(m, cores >= 2 ? "cpu:0,cpu:1" : "cpu:0", &l));
    po_measure_opts o = tiny();
    o.progress = count_progress;
    o.progress_ctx = &progress_calls;
    po_hw_profile *p;
    PO_CHECK(po_hw_profile_get(m, &l, &o, &p));
    assert_int_equal(p->n_devices, l.n);
    assert_string_equal(p->fingerprint, po_machine_fingerprint(m));
    assert_string_equal(p->gemm_library, "default");
    assert_false(p->from_cache);
    assert_true(progress_calls >= 3 * l.n);
    /* Plausible ranges wide enough for valgrind and sanitizer builds, where a core runs slowly. */
    for (int i = 0; i < l.n; i++) {
        const po_device_perf *q = po_hw_profile_perf(p, l.dev[i].id);
        assert_non_null(q);
        assert_string_equal(q->source, "measured");
        assert_int_equal(q->level, PO_BENCH_QUICK);
        /* The 64^3 square and the tall-skinny shape. */
        assert_int_equal(q->n_gemm, 2);
        assert_int_equal(q->gemm[0].m, 64);
        assert_true(q->gemm[1].m > q->gemm[1].n);
        for (int k = 0; k < q->n_gemm; k++)
            if (!(q->gemm[k].gflops > 0 && q->gemm[k].gflops < 1e5)) fail_msg("gflops %g", q->gemm[k].gflops);
        assert_true(q->gemm_gflops == q->gemm[0].gflops);
        assert_true(q->mem_bandwidth_gbs > 0 && q->mem_bandwidth_gbs < 1e4);
        assert_true(q->elementwise_gelems > 0);
        assert_true(q->dispatch_us > 0 && q->dispatch_us < 1000);
        assert_true(q->gemm_call_us > 0 && q->gemm_call_us < 1000);
    }
    assert_int_equal(p->n_links, l.n * (l.n - 1));
    for (int i = 0; i < p->n_links; i++) {
        assert_true(p->links[i].measured);
        assert_true(p->links[i].bandwidth_gbs > 0);
        assert_true(p->links[i].latency_us > 0 && p->links[i].latency_us < 1e6);
        /* A core rewriting what another just read pays at least nothing, and less than a
         * microsecond a byte (a 4 MiB rewrite would take 4 s). */
        assert_true(p->links[i].reclaim_ns_per_byte >= 0 && p->links[i].reclaim_ns_per_byte < 1e3);
        /* Waking a blocked thread takes some time, and less than a second. */
        assert_true(p->links[i].wake_us > 0 && p->links[i].wake_us < 1e6);
    }
    if (l.n == 2) assert_non_null(po_hw_profile_link(p, "cpu:1", "cpu:0"));
    assert_null(po_hw_profile_link(p, "cpu:0", "cpu:0"));
    assert_null(po_hw_profile_perf(p, "cuda:0"));
    /* Figures measured with size overrides are never cached. */
    struct stat sb;
    assert_int_not_equal(stat(p->cache_path, &sb), 0);
    po_hw_profile_free(p);

    /* A core group: one GEMM per core at once. */
    if (cores >= 2) {
        po_device_list g;
        PO_CHECK(po_devices_parse(m, "cpu:0-1", &g));
        PO_CHECK(po_hw_profile_get(m, &g, &o, &p));
        assert_true(p->perf[0].gemm_gflops > 0);
        assert_int_equal(p->n_links, 0);
        po_hw_profile_free(p);
        po_device_list_free(&g);
    }
    po_device_list_free(&l);
    po_machine_free(m);
}

/* Writes a cache file for this machine holding cpu:0 with made-up figures. */
static void write_cache(const po_machine *m, const char *fingerprint, po_bench_level level) {
    po_device d = {.id = "cpu:0", .kind = PO_DEVICE_CPU, .first_core = 0, .n_cores = 1, .gpu = -1};
    po_device_perf q;
    po__perf_unknown(&q, "measured");
    q.level = level;
    q.n_gemm = 1;
    q.gemm[0] = (po_gemm_point){64, 64, 64, 12345.0};
    q.gemm_gflops = 12345.0;
    q.mem_bandwidth_gbs = 678.0;
    po_hw_profile p = {.level = level, .n_devices = 1, .devices = &d, .perf = &q};
    snprintf(p.fingerprint, sizeof p.fingerprint, "%s", fingerprint);
    snprintf(p.gemm_library, sizeof p.gemm_library, "default");
    char path[256];
    snprintf(path, sizeof path, "%s/hw-%s.json", dir, po_machine_fingerprint(m));
    PO_CHECK(po__cache_save(path, &p));
}

static void cache_hits_and_misses(void **st) {
    (void)st;
    po_machine *m = machine();
    po_device_list l;
    PO_CHECK(po_devices_parse(m, "cpu:0", &l));
    po_measure_opts o = tiny();
    po_hw_profile *p;
    char path[256];
    snprintf(path, sizeof path, "%s/hw-%s.json", dir, po_machine_fingerprint(m));

    /* A hit: nothing measured, the cached figures returned (even NaN = unknown ones). */
    write_cache(m, po_machine_fingerprint(m), PO_BENCH_QUICK);
    PO_CHECK(po_hw_profile_get(m, &l, &o, &p));
    assert_true(p->from_cache);
    assert_int_equal(p->measured, 0);
    assert_string_equal(p->cache_path, path);
    assert_true(p->perf[0].gemm_gflops == 12345.0);
    assert_true(p->perf[0].mem_bandwidth_gbs == 678.0);
    assert_true(isnan(p->perf[0].dispatch_us));
    po_hw_profile_free(p);

    /* --refresh measures again. */
    o.refresh = true;
    PO_CHECK(po_hw_profile_get(m, &l, &o, &p));
    assert_false(p->from_cache);
    assert_true(p->perf[0].gemm_gflops != 12345.0);
    po_hw_profile_free(p);
    o.refresh = false;

    /* FULL is not served by QUICK figures; QUICK is served by FULL ones. */
    o.level = PO_BENCH_FULL;
    PO_CHECK(po_hw_profile_get(m, &l, &o, &p));
    assert_false(p->from_cache);
    po_hw_profile_free(p);
    write_cache(m, po_machine_fingerprint(m), PO_BENCH_FULL);
    o.level = PO_BENCH_QUICK;
    PO_CHECK(po_hw_profile_get(m, &l, &o, &p));
    assert_true(p->from_cache);
    assert_int_equal(p->perf[0].level, PO_BENCH_FULL);
    po_hw_profile_free(p);

    /* Another machine's file under this name, a damaged file, a file of the wrong shape: all
     * ignored, measured instead, never an error. */
    write_cache(m, "0123456789abcdef", PO_BENCH_QUICK);
    PO_CHECK(po_hw_profile_get(m, &l, &o, &p));
    assert_false(p->from_cache);
    po_hw_profile_free(p);
    const char *bad[] = {"{\"format\": \"paropt hw cache 1\", \"devices\": [", "not json at all", "[]",
                         "{\"format\": \"paropt hw cache 1\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(bad[i], f);
        fclose(f);
        PO_CHECK(po_hw_profile_get(m, &l, &o, &p));
        assert_false(p->from_cache);
        assert_true(p->perf[0].gemm_gflops > 0);
        po_hw_profile_free(p);
    }
    /* A file with a bad entry (negative figure) is not used either. */
    write_cache(m, po_machine_fingerprint(m), PO_BENCH_QUICK);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "grep -q '\"mem_bandwidth_gbs\": 678' '%s' && sed -i 's/\"mem_bandwidth_gbs\": 678/\"mem_bandwidth_gbs\": "
             "-678/' '%s'",
             path, path);
    assert_int_equal(system(cmd), 0);
    PO_CHECK(po_hw_profile_get(m, &l, &o, &p));
    assert_false(p->from_cache);
    po_hw_profile_free(p);

    /* No cache at all. */
    o.cache_dir = "";
    PO_CHECK(po_hw_profile_get(m, &l, &o, &p));
    assert_null(p->cache_path);
    po_hw_profile_free(p);
    po_device_list_free(&l);
    po_machine_free(m);
}

static void cache_dir_from_environment(void **st) {
    (void)st;
    char buf[512];
    char *old_xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("XDG_CACHE_HOME", "/x/cache", 1);
    PO_CHECK(po_hw_cache_dir(buf, sizeof buf));
    assert_string_equal(buf, "/x/cache/paropt");
    setenv("XDG_CACHE_HOME", "relative/ignored", 1);
    setenv("HOME", "/home/u", 1);
    PO_CHECK(po_hw_cache_dir(buf, sizeof buf));
    assert_string_equal(buf, "/home/u/.cache/paropt");
    assert_int_equal(po_hw_cache_dir(buf, 8), PO_ERR_RANGE);
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
    assert_int_equal(po_hw_cache_dir(buf, sizeof buf), PO_ERR_NOT_FOUND);
    if (old_xdg) setenv("XDG_CACHE_HOME", old_xdg, 1);
    if (old_home) setenv("HOME", old_home, 1);
    free(old_xdg);
    free(old_home);
}

static void times_a_node_on_a_core(void **st) {
    (void)st;
    po_machine *m = machine();
    po_device_list l;
    PO_CHECK(po_devices_parse(m, "cpu:0", &l));
    po_graph *g = po_graph_new();
    po_node *a = po_input(g, "a", PO_F32, PO_SHAPE(96, 96));
    po_node *b = po_input(g, "b", PO_F32, PO_SHAPE(96, 96));
    po_node *c = po_matmul(g, a, b, false, false);
    po_node *r = po_relu(g, c);
    po_graph_keep(g, r);
    po_params *params;
    PO_CHECK(po_params_new(g, &params));
    po_exec *ex;
    PO_CHECK(po_exec_new(g, params, &ex));
    po_time_stats s;
    PO_CHECK(po_hw_time_node(m, &l.dev[0], ex, c, 2, 7, &s));
    assert_int_equal(s.runs, 7);
    assert_true(s.min_s > 0 && s.min_s <= s.median_s && s.median_s <= s.max_s);
    assert_true(s.min_s <= s.mean_s && s.mean_s <= s.max_s && s.stddev_s >= 0);
    po_time_stats whole;
    PO_CHECK(po_hw_time_node(m, &l.dev[0], ex, NULL, 1, 4, &whole));
    /* A run includes the node; separate batches of runs vary, hence the margin. */
    assert_true(whole.min_s > 0 && whole.median_s > 0.5 * s.min_s);
    /* Profiling is left off and clear. */
    assert_int_equal(po_exec_profiled_runs(ex), 0);
    assert_int_equal(po_hw_time_node(m, &l.dev[0], ex, c, 0, 0, &s), PO_ERR_INVALID_ARG);
    assert_int_equal(po_hw_time_node(m, &l.dev[0], ex, c, -1, 3, &s), PO_ERR_INVALID_ARG);
    po_exec_free(ex);
    po_params_free(params);
    po_graph_free(g);
    po_device_list_free(&l);
    po_machine_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(measures_cores_and_links, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(cache_hits_and_misses, make_dir, remove_dir),
        cmocka_unit_test(cache_dir_from_environment),
        cmocka_unit_test(times_a_node_on_a_core),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
