/* Discovery of this machine and of synthetic topologies, and the device-list syntax: every
 * accepted form and every rejected one with its one-line message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "paropt/hw.h"
#include "po_test.h"

/* This machine without GPU libraries (the fakes are in test_hw_gpu). */
static po_machine *real_machine(void) {
    po_hw_opts o = po_hw_opts_default();
    o.cuda_lib = "";
    o.nvml_lib = "";
    po_machine *m;
    PO_CHECK(po_machine_discover(&o, &m));
    return m;
}

static po_machine *synthetic(const char *topology) {
    po_hw_opts o = po_hw_opts_default();
    o.cuda_lib = "";
    o.nvml_lib = "";
    o.topology = topology;
    po_machine *m;
    PO_CHECK(po_machine_discover(&o, &m));
    return m;
}

/* Parsing must fail with a one-line message containing `needle`, leaving the list empty. */
static void expect_bad(const po_machine *m, const char *text, const char *needle) {
    po_device_list l = {7, (po_device *)1};
    po_status st = po_devices_parse(m, text, &l);
    if (st != PO_ERR_INVALID_ARG) fail_msg("\"%s\" was accepted (status %d)", text, (int)st);
    if (!strstr(po_last_error(), needle))
        fail_msg("\"%s\": message \"%s\" lacks \"%s\"", text, po_last_error(), needle);
    if (strchr(po_last_error(), '\n')) fail_msg("\"%s\": message spans lines", text);
    assert_int_equal(l.n, 0);
    assert_null(l.dev);
}

static void discovers_this_machine(void **st) {
    (void)st;
    po_machine *m = real_machine();
    const po_cpu_info *c = po_machine_cpu(m);
    assert_true(c->cores >= 1);
    assert_true(c->pus >= c->cores);
    assert_true(c->sockets >= 1 && c->numa_nodes >= 1);
    assert_true(c->memory_bytes > (64ll << 20));
    assert_true(c->model[0] && c->uarch[0]);
    int pus = 0;
    for (int i = 0; i < c->cores; i++) {
        assert_true(c->core[i].n_pus >= 1);
        assert_true((c->core[i].pu_mask[c->core[i].first_pu / 64] >> (c->core[i].first_pu % 64)) & 1);
        pus += c->core[i].n_pus;
    }
    assert_int_equal(pus, c->pus);
#if defined(__x86_64__)
    /* What the compiler was told to target, the CPU has. */
#ifdef __AVX2__
    assert_true(c->features.avx2);
#endif
#ifdef __AVX512F__
    assert_true(c->features.avx512f);
#endif
    assert_int_equal(c->features.avx512f, __builtin_cpu_supports("avx512f") != 0);
#endif
    /* No libraries looked for: "not present", never an error. */
    assert_int_equal(po_machine_n_gpus(m), 0);
    assert_null(po_machine_gpu(m, 0));
    assert_non_null(strstr(po_machine_cuda_status(m), "not present"));
    assert_non_null(strstr(po_machine_nvml_status(m), "not present"));
    assert_true(po_machine_is_real(m));
    const char *fp = po_machine_fingerprint(m);
    assert_int_equal(strlen(fp), 16);
    assert_int_equal(strspn(fp, "0123456789abcdef"), 16);
    /* The same hardware gives the same fingerprint. */
    po_machine *again = real_machine();
    assert_string_equal(po_machine_fingerprint(again), fp);
    po_machine_free(again);
    po_machine_free(m);
    po_machine_free(NULL);
}

static void missing_libraries_are_not_present(void **st) {
    (void)st;
    po_hw_opts o = po_hw_opts_default();
    o.cuda_lib = "/nonexistent/libcuda.so.1";
    o.nvml_lib = "/nonexistent/libnvidia-ml.so.1";
    po_machine *m;
    PO_CHECK(po_machine_discover(&o, &m));
    assert_int_equal(po_machine_n_gpus(m), 0);
    assert_non_null(strstr(po_machine_cuda_status(m), "not present"));
    assert_non_null(strstr(po_machine_cuda_status(m), "/nonexistent/libcuda.so.1"));
    po_machine_free(m);
}

static void synthetic_topology(void **st) {
    (void)st;
    po_machine *m = synthetic("package:2 core:4 pu:2");
    const po_cpu_info *c = po_machine_cpu(m);
    assert_int_equal(c->sockets, 2);
    assert_int_equal(c->cores, 8);
    assert_int_equal(c->pus, 16);
    assert_int_equal(c->core[3].package, 0);
    assert_int_equal(c->core[4].package, 1);
    assert_int_equal(c->core[5].n_pus, 2);
    assert_int_equal(c->core[5].first_pu, 10);
    assert_int_equal(c->core[5].pu_mask[0], 3ull << 10);
    assert_false(po_machine_is_real(m));
    po_machine *real = real_machine();
    assert_string_not_equal(po_machine_fingerprint(m), po_machine_fingerprint(real));
    po_machine_free(real);

    po_device_list l;
    PO_CHECK(po_devices_parse(m, "cpu:0-3,cpu:4-7", &l));
    assert_int_equal(l.n, 2);
    assert_string_equal(l.dev[1].id, "cpu:4-7");
    po_device_list_free(&l);
    expect_bad(m, "cpu:8", "no such core 8 (this machine has cores 0-7)");
    /* Nothing to measure on cores that are not this machine's. */
    PO_CHECK(po_devices_parse(m, "cpu:0", &l));
    po_measure_opts mo = po_measure_opts_default();
    mo.cache_dir = "";
    po_hw_profile *p = (po_hw_profile *)1;
    assert_int_equal(po_hw_profile_get(m, &l, &mo, &p), PO_ERR_UNSUPPORTED);
    assert_null(p);
    assert_non_null(strstr(po_last_error(), "synthetic"));
    po_device_list_free(&l);
    po_machine_free(m);

    po_hw_opts o = po_hw_opts_default();
    o.topology = "package:two";
    assert_int_equal(po_machine_discover(&o, &m), PO_ERR_INVALID_ARG);
    assert_non_null(strstr(po_last_error(), "synthetic"));
    assert_null(m);
}

static void device_syntax(void **st) {
    (void)st;
    po_machine *m = synthetic("package:1 core:4 pu:1");
    po_device_list l;

    PO_CHECK(po_devices_parse(m, "auto", &l));
    assert_int_equal(l.n, 4);
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "cpu:%d", i);
        assert_string_equal(l.dev[i].id, id);
        assert_int_equal(l.dev[i].kind, PO_DEVICE_CPU);
        assert_int_equal(l.dev[i].first_core, i);
        assert_int_equal(l.dev[i].n_cores, 1);
        assert_int_equal(l.dev[i].gpu, -1);
        assert_false(l.dev[i].is_virtual);
    }
    po_device_list_free(&l);

    PO_CHECK(po_devices_parse(m, " cpu:0 , cpu:2-3,cpu:1-1", &l));
    assert_int_equal(l.n, 3);
    assert_string_equal(l.dev[0].id, "cpu:0");
    assert_string_equal(l.dev[1].id, "cpu:2-3");
    assert_int_equal(l.dev[1].first_core, 2);
    assert_int_equal(l.dev[1].n_cores, 2);
    assert_string_equal(l.dev[2].id, "cpu:1"); /* canonical form */
    assert_string_equal(l.dev[2].name, po_machine_cpu(m)->model);
    po_device_list_free(&l);
    po_device_list_free(&l); /* harmless twice */

    expect_bad(m, "", "empty device list");
    expect_bad(m, "  ", "empty device list");
    expect_bad(m, NULL, "empty device list");
    expect_bad(m, "cpu:0,,cpu:1", "empty item");
    expect_bad(m, "cpu:0,", "empty item");
    expect_bad(m, "cpu", "expected cpu:N, cpu:N-M, cuda:N or auto");
    expect_bad(m, "cpu:", "malformed core range");
    expect_bad(m, "cpu:x", "malformed core range");
    expect_bad(m, "cpu:-1", "malformed core range");
    expect_bad(m, "cpu:1-", "malformed core range");
    expect_bad(m, "cpu:1-2-3", "malformed core range");
    expect_bad(m, "cpu:+1", "malformed core range");
    expect_bad(m, "cpu:99999999999", "malformed core range");
    expect_bad(m, "cpu:3-2", "reversed");
    expect_bad(m, "cpu:4", "no such core 4");
    expect_bad(m, "cpu:2-4", "no such core 4");
    expect_bad(m, "gpu:0", "unknown device kind \"gpu\"");
    expect_bad(m, "CPU:0", "unknown device kind");
    expect_bad(m, "cuda:0", "no such GPU (none present");
    expect_bad(m, "cuda:x", "malformed GPU index");
    expect_bad(m, "cpu:0,cpu:0", "\"cpu:0\" overlaps \"cpu:0\" (core 0 in both)");
    expect_bad(m, "cpu:0-2,cpu:2-3", "\"cpu:2-3\" overlaps \"cpu:0-2\" (core 2 in both)");
    expect_bad(m, "cpu:1,cpu:0-3", "overlaps");
    expect_bad(m, "auto,cpu:0", "auto means every device");
    expect_bad(m, "cpu:0,auto", "auto means every device");
    expect_bad(m, "auto,auto", "auto means every device");
    po_machine_free(m);
}

static void device_options(void **st) {
    (void)st;
    po_machine *m = synthetic("package:1 core:2 pu:1");
    /* Before the key is registered, options are rejected with the known list. */
    expect_bad(m, "cpu:1:zz_unregistered=2", "unknown option \"zz_unregistered\"");
    PO_CHECK(po_device_register_option("slowdown", "run N times slower"));
    PO_CHECK(po_device_register_option("slowdown", "again: harmless"));
    PO_CHECK(po_device_register_option("mem_limit", NULL));
    assert_int_equal(po_device_register_option("bad-key", NULL), PO_ERR_INVALID_ARG);
    assert_int_equal(po_device_register_option("", NULL), PO_ERR_INVALID_ARG);

    po_device_list l;
    PO_CHECK(po_devices_parse(m, "cpu:0,cpu:1:slowdown=2:mem_limit=1G", &l));
    assert_int_equal(l.n, 2);
    assert_string_equal(l.dev[1].id, "cpu:1");
    assert_int_equal(l.dev[0].n_opts, 0);
    assert_null(po_device_opt_get(&l.dev[0], "slowdown"));
    assert_int_equal(l.dev[1].n_opts, 2);
    assert_string_equal(po_device_opt_get(&l.dev[1], "slowdown"), "2");
    assert_string_equal(po_device_opt_get(&l.dev[1], "mem_limit"), "1G");
    assert_null(po_device_opt_get(&l.dev[1], "other"));
    po_device_list_free(&l);

    expect_bad(m, "cpu:1:speed=2", "unknown option \"speed\" (known: slowdown (run N times slower), mem_limit)");
    expect_bad(m, "cpu:1:slowdown", "malformed option");
    expect_bad(m, "cpu:1:slowdown=", "malformed option");
    expect_bad(m, "cpu:1:=2", "malformed option");
    expect_bad(m, "cpu:1:", "malformed option");
    expect_bad(m, "cpu:1:slowdown=2:slowdown=3", "option \"slowdown\" given twice");
    po_machine_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(discovers_this_machine), cmocka_unit_test(missing_libraries_are_not_present),
        cmocka_unit_test(synthetic_topology),     cmocka_unit_test(device_syntax),
        cmocka_unit_test(device_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
