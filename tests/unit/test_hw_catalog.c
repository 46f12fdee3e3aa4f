/* The hardware catalog compiled into the library: every required entry, sane figures, lookups
 * by id, by name and by the names CUDA reports, CPUs by microarchitecture, virtual devices. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "paropt/hw.h"
#include "po_test.h"

static void entries_are_sane(void **st) {
    (void)st;
    int n = po_catalog_count();
    assert_true(n >= 16);
    assert_null(po_catalog_get(-1));
    assert_null(po_catalog_get(n));
    for (int i = 0; i < n; i++) {
        const po_catalog_entry *e = po_catalog_get(i);
        if (!(e->id[0] && e->name[0] && e->source[0])) fail_msg("entry %d lacks id, name or source", i);
        if (!(e->peak_gflops[PO_PREC_FP32] > 0 && e->mem_bandwidth_gbs > 0 && e->tdp_w > e->idle_w && e->idle_w > 0))
            fail_msg("%s: implausible figures", e->id);
        for (int p = 0; p < PO_PREC_COUNT; p++)
            if (!(e->peak_gflops[p] >= 0)) fail_msg("%s: negative %s peak", e->id, po_precision_name(p));
        if (e->kind == PO_DEVICE_CUDA) {
            if (!(e->memory_bytes >= (16ll << 30) && e->cores > 0 && !e->per_core)) fail_msg("%s: GPU figures", e->id);
            /* Tensor cores: half precision is faster than FP32 on every listed GPU. */
            if (!(e->peak_gflops[PO_PREC_FP16] > e->peak_gflops[PO_PREC_FP32])) fail_msg("%s: fp16 <= fp32", e->id);
        } else {
            if (!(e->per_core && e->uarch[0] && e->memory_bytes == 0)) fail_msg("%s: CPU entries are per core", e->id);
            if (!(e->tdp_w < 20)) fail_msg("%s: per-core TDP %.1f W", e->id, e->tdp_w);
        }
        assert_ptr_equal(po_catalog_find(e->id), e);
        assert_ptr_equal(po_catalog_find(e->name), e);
    }
    assert_string_equal(po_precision_name(PO_PREC_BF16), "bf16");
    assert_string_equal(po_precision_name(PO_PREC_COUNT), "?");
}

static void finds_gpus_by_reported_name(void **st) {
    (void)st;
    /* Names as CUDA and nvidia-smi report them. */
    const char *cases[][2] = {
        {"NVIDIA H100 80GB HBM3", "h100-sxm"},
        {"NVIDIA H100 PCIe", "h100-pcie"},
        {"NVIDIA H200", "h200-sxm"},
        {"NVIDIA A100-SXM4-40GB", "a100-40gb"},
        {"NVIDIA A100-PCIE-40GB", "a100-40gb"},
        {"NVIDIA A100 80GB PCIe", "a100-80gb"},
        {"NVIDIA A100-SXM4-80GB", "a100-80gb"},
        {"NVIDIA L40S", "l40s"},
        {"NVIDIA L4", "l4"},
        {"Tesla T4", "t4"},
        {"Tesla V100-SXM2-32GB", "v100-sxm2"},
        {"NVIDIA GeForce RTX 4090", "rtx-4090"},
        {"NVIDIA GeForce RTX 3090", "rtx-3090"},
        {"h100-sxm", "h100-sxm"},
        {"nvidia l40s", "l40s"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const po_catalog_entry *e = po_catalog_find(cases[i][0]);
        if (!e) fail_msg("\"%s\" not found", cases[i][0]);
        if (strcmp(e->id, cases[i][1]) != 0) fail_msg("\"%s\" -> %s, want %s", cases[i][0], e->id, cases[i][1]);
    }
    /* Whole words only: an L40 is not an L4, and unknown parts are not guessed. */
    assert_null(po_catalog_find("NVIDIA L40"));
    assert_null(po_catalog_find("Voodoo5 5500"));
    assert_null(po_catalog_find(""));
    assert_null(po_catalog_find(NULL));
    const po_catalog_entry *h = po_catalog_find("h100-sxm");
    assert_true(fabs(h->peak_gflops[PO_PREC_BF16] - 989500) < 1e-6);
    assert_true(fabs(h->mem_bandwidth_gbs - 3350) < 1e-9);
    assert_int_equal(h->memory_bytes, 80ll << 30);
    assert_true(fabs(h->tdp_w - 700) < 1e-9);
    assert_true(po_catalog_find("t4")->peak_gflops[PO_PREC_BF16] == 0); /* Turing: no BF16 */
}

static void cpus_by_microarchitecture(void **st) {
    (void)st;
    po_cpu_info c = {0};
    snprintf(c.model, sizeof c.model, "AMD EPYC");
    snprintf(c.uarch, sizeof c.uarch, "zen3");
    assert_string_equal(po_catalog_cpu(&c)->id, "amd-epyc-zen3");
    snprintf(c.uarch, sizeof c.uarch, "zen4");
    assert_string_equal(po_catalog_cpu(&c)->id, "amd-epyc-zen4");
    snprintf(c.uarch, sizeof c.uarch, "icelake-sp");
    assert_string_equal(po_catalog_cpu(&c)->id, "intel-xeon-icelake");
    snprintf(c.uarch, sizeof c.uarch, "sapphirerapids");
    assert_string_equal(po_catalog_cpu(&c)->id, "intel-xeon-sapphirerapids");
    snprintf(c.uarch, sizeof c.uarch, "unknown");
    assert_string_equal(po_catalog_cpu(&c)->id, "generic-x86-64");
    /* The brand string wins when it names a reference part. */
    snprintf(c.model, sizeof c.model, "AMD EPYC 9654 96-Core Processor");
    assert_string_equal(po_catalog_cpu(&c)->id, "amd-epyc-zen4");
    const po_catalog_entry *z3 = po_catalog_find("amd-epyc-zen3");
    assert_true(fabs(z3->peak_gflops[PO_PREC_FP32] - 78.4) < 1e-9);
    assert_true(fabs(z3->tdp_w * z3->cores - 280) < 1e-6);
}

static void virtual_devices(void **st) {
    (void)st;
    po_device d;
    po_device_perf p;
    PO_CHECK(po_catalog_virtual_device("NVIDIA A100-SXM4-80GB", &d, &p));
    assert_string_equal(d.id, "virtual:a100-80gb");
    assert_true(d.is_virtual);
    assert_int_equal(d.kind, PO_DEVICE_CUDA);
    assert_int_equal(d.memory_bytes, 80ll << 30);
    assert_string_equal(p.source, "catalog");
    assert_true(fabs(p.gemm_gflops - 19500) < 1e-6);
    assert_true(fabs(p.mem_bandwidth_gbs - 2039) < 1e-9);
    assert_true(fabs(p.elementwise_gelems - 2039 / 8.0) < 1e-9);
    assert_true(isnan(p.dispatch_us));
    PO_CHECK(po_catalog_virtual_device("intel-xeon-sapphirerapids", &d, &p));
    assert_int_equal(d.kind, PO_DEVICE_CPU);
    assert_int_equal(d.n_cores, 1);
    assert_true(fabs(p.gemm_gflops - 128) < 1e-9);
    assert_int_equal(po_catalog_virtual_device("Voodoo5", &d, &p), PO_ERR_NOT_FOUND);
    assert_non_null(strstr(po_last_error(), "\"Voodoo5\" is not in the hardware catalog (known: h100-sxm, "));

    /* Virtual devices have nothing to measure or run on. */
    PO_CHECK(po_catalog_virtual_device("l4", &d, &p));
    po_hw_opts o = po_hw_opts_default();
    o.cuda_lib = o.nvml_lib = "";
    po_machine *m;
    PO_CHECK(po_machine_discover(&o, &m));
    po_device_list l = {1, &d};
    po_measure_opts mo = po_measure_opts_default();
    mo.cache_dir = "";
    po_hw_profile *prof;
    assert_int_equal(po_hw_profile_get(m, &l, &mo, &prof), PO_ERR_INVALID_ARG);
    assert_non_null(strstr(po_last_error(), "virtual:l4"));
    po_time_stats ts;
    assert_int_equal(po_hw_time_node(m, &d, NULL, NULL, 0, 1, &ts), PO_ERR_UNSUPPORTED);
    po_machine_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(entries_are_sane),
        cmocka_unit_test(finds_gpus_by_reported_name),
        cmocka_unit_test(cpus_by_microarchitecture),
        cmocka_unit_test(virtual_devices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
