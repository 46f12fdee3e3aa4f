/* GPU discovery and GPU links against fake CUDA driver and NVML libraries (tests/fakes), loaded
 * by path through the same dlopen code as the real ones: names, compute capability, SMs,
 * memory, PCI ids, peer access, NVML power figures and the energy counter; cuda:N in device
 * lists; "not present" when cuInit finds no GPU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paropt/hw.h"
#include "po_test.h"

static const char *fake(const char *var) {
    const char *p = getenv(var);
    if (!p) fail_msg("%s is not set (run through ctest)", var);
    return p;
}

/* The fakes' script functions, reached through the same loaded copy the library uses. */
static void *cuda_handle, *nvml_handle;
static void (*cuda_configure)(int gpus, int init);
static void (*nvml_configure)(int n, int init);
static void (*nvml_set_energy)(int i, int has_counter, unsigned long long mj);
static int (*nvml_open_count)(void);

static int setup(void **st) {
    (void)st;
    cuda_handle = dlopen(fake("PO_FAKE_CUDA"), RTLD_NOW);
    nvml_handle = dlopen(fake("PO_FAKE_NVML"), RTLD_NOW);
    if (!cuda_handle || !nvml_handle) return -1;
    *(void **)&cuda_configure = dlsym(cuda_handle, "fake_cuda_configure");
    *(void **)&nvml_configure = dlsym(nvml_handle, "fake_nvml_configure");
    *(void **)&nvml_set_energy = dlsym(nvml_handle, "fake_nvml_set_energy");
    *(void **)&nvml_open_count = dlsym(nvml_handle, "fake_nvml_open_count");
    return cuda_configure && nvml_configure && nvml_set_energy && nvml_open_count ? 0 : -1;
}

static int teardown(void **st) {
    (void)st;
    dlclose(cuda_handle);
    dlclose(nvml_handle);
    return 0;
}

static po_machine *with_fakes(void) {
    po_hw_opts o = po_hw_opts_default();
    o.cuda_lib = fake("PO_FAKE_CUDA");
    o.nvml_lib = fake("PO_FAKE_NVML");
    po_machine *m;
    PO_CHECK(po_machine_discover(&o, &m));
    return m;
}

static void discovers_fake_gpus(void **st) {
    (void)st;
    cuda_configure(2, 0);
    nvml_configure(2, 0);
    nvml_set_energy(0, 1, 5000000);
    nvml_set_energy(1, 0, 0);
    po_machine *m = with_fakes();
    assert_int_equal(po_machine_n_gpus(m), 2);
    const po_gpu_info *h = po_machine_gpu(m, 0), *t = po_machine_gpu(m, 1);
    assert_string_equal(h->name, "NVIDIA H100 80GB HBM3");
    assert_int_equal(h->index, 0);
    assert_int_equal(h->cc_major, 9);
    assert_int_equal(h->cc_minor, 0);
    assert_int_equal(h->sms, 132);
    assert_int_equal(h->memory_bytes, 80ll << 30);
    assert_string_equal(h->pci_bus_id, "0000:65:00.0");
    assert_string_equal(t->name, "Tesla T4");
    assert_int_equal(t->cc_major * 10 + t->cc_minor, 75);
    assert_int_equal(t->sms, 40);
    /* NVML matched by PCI bus id (8-digit domain on its side, 4-digit on CUDA's). */
    assert_true(h->nvml && t->nvml);
    assert_true(fabs(h->power_w - 120.0) < 1e-9);
    assert_true(fabs(h->power_limit_w - 700.0) < 1e-9);
    assert_true(fabs(h->power_limit_min_w - 200.0) < 1e-9);
    assert_true(fabs(h->power_limit_max_w - 700.0) < 1e-9);
    assert_true(fabs(h->power_limit_default_w - 700.0) < 1e-9);
    assert_int_equal(h->sm_clock_mhz, 1755);
    assert_int_equal(h->max_sm_clock_mhz, 1980);
    assert_int_equal(h->mem_clock_mhz, 2619);
    assert_true(h->energy_counter);
    assert_false(t->energy_counter); /* T4 scripted without the counter */
    assert_true(fabs(t->power_w - 50.0) < 1e-9);
    assert_true(po_machine_gpu_peer(m, 0, 1));
    assert_true(po_machine_gpu_peer(m, 1, 0));
    assert_false(po_machine_gpu_peer(m, 0, 0));
    assert_false(po_machine_gpu_peer(m, 0, 2));
    assert_string_equal(po_machine_cuda_status(m), "driver 12.4, 2 GPUs");
    assert_string_equal(po_machine_nvml_status(m), "driver 550.54.15, 2 GPUs");

    po_gpu_sample s;
    PO_CHECK(po_machine_gpu_sample(m, 0, &s));
    assert_int_equal(s.util_gpu_pct, 35);
    assert_true(fabs(s.power_w - 120.0) < 1e-9);
    assert_int_equal(po_machine_gpu_sample(m, 2, &s), PO_ERR_RANGE);

    /* GPUs change the fingerprint. */
    po_hw_opts o = po_hw_opts_default();
    o.cuda_lib = o.nvml_lib = "";
    po_machine *plain;
    PO_CHECK(po_machine_discover(&o, &plain));
    assert_string_not_equal(po_machine_fingerprint(plain), po_machine_fingerprint(m));
    po_machine_free(plain);

    assert_int_equal(nvml_open_count(), 1);
    po_machine_free(m);
    assert_int_equal(nvml_open_count(), 0); /* nvmlShutdown on free */
}

static void gpu_devices(void **st) {
    (void)st;
    cuda_configure(2, 0);
    po_machine *m = with_fakes();
    int cores = po_machine_cpu(m)->cores;
    po_device_list l;
    PO_CHECK(po_devices_parse(m, "auto", &l));
    assert_int_equal(l.n, cores + 2);
    assert_string_equal(l.dev[cores].id, "cuda:0");
    assert_string_equal(l.dev[cores + 1].id, "cuda:1");
    assert_int_equal(l.dev[cores + 1].kind, PO_DEVICE_CUDA);
    assert_int_equal(l.dev[cores + 1].gpu, 1);
    assert_string_equal(l.dev[cores + 1].name, "Tesla T4");
    assert_int_equal(l.dev[cores + 1].memory_bytes, 16ll << 30);
    po_device_list_free(&l);

    /* For training, auto leaves the GPUs out (the runtime trains on CPU cores only so far);
     * a GPU named explicitly still parses, for the trainer to reject by name. */
    PO_CHECK(po_devices_parse_trainable(m, "auto", &l));
    assert_int_equal(l.n, cores);
    for (int i = 0; i < l.n; i++)
        assert_int_equal(l.dev[i].kind, PO_DEVICE_CPU);
    po_device_list_free(&l);
    PO_CHECK(po_devices_parse_trainable(m, "cpu:0,cuda:1", &l));
    assert_int_equal(l.n, 2);
    assert_int_equal(l.dev[1].kind, PO_DEVICE_CUDA);
    po_device_list_free(&l);

    PO_CHECK(po_devices_parse(m, "cuda:1,cpu:0", &l));
    assert_int_equal(l.n, 2);
    po_device_list_free(&l);
    assert_int_equal(po_devices_parse(m, "cuda:2", &l), PO_ERR_INVALID_ARG);
    assert_non_null(strstr(po_last_error(), "no such GPU (2 present: cuda:0-1)"));
    assert_int_equal(po_devices_parse(m, "cuda:0,cuda:0", &l), PO_ERR_INVALID_ARG);
    assert_non_null(strstr(po_last_error(), "\"cuda:0\" is listed twice"));

    /* GPU figures come from the catalog (no CUDA compute backend yet); host-GPU and GPU-GPU
     * links are measured through the driver's copy functions (host memory in the fake). */
    PO_CHECK(po_devices_parse(m, "cpu:0,cuda:0,cuda:1", &l));
    po_measure_opts mo = po_measure_opts_default();
    mo.cache_dir = "";
    mo.gemm_max = 64;
    mo.stream_bytes = 1 << 20;
    mo.link_bytes = 64 << 10;
    mo.point_seconds = 0.005;
    po_hw_profile *p;
    PO_CHECK(po_hw_profile_get(m, &l, &mo, &p));
    const po_device_perf *h = po_hw_profile_perf(p, "cuda:0"), *t = po_hw_profile_perf(p, "cuda:1");
    assert_string_equal(h->source, "catalog");
    assert_true(fabs(h->gemm_gflops - 67000) < 1e-6);
    assert_true(fabs(h->mem_bandwidth_gbs - 3350) < 1e-6);
    assert_true(fabs(t->gemm_gflops - 8100) < 1e-6);
    assert_string_equal(po_hw_profile_perf(p, "cpu:0")->source, "measured");
    assert_int_equal(p->n_links, 6);
    const char *pairs[6][2] = {{"cpu:0", "cuda:0"},  {"cpu:0", "cuda:1"}, {"cuda:0", "cpu:0"},
                               {"cuda:0", "cuda:1"}, {"cuda:1", "cpu:0"}, {"cuda:1", "cuda:0"}};
    for (int i = 0; i < 6; i++) {
        const po_link_perf *k = po_hw_profile_link(p, pairs[i][0], pairs[i][1]);
        assert_non_null(k);
        if (!(k->bandwidth_gbs > 0 && k->latency_us > 0 && k->measured))
            fail_msg("link %s -> %s not measured", pairs[i][0], pairs[i][1]);
    }
    po_hw_profile_free(p);

    /* Nodes cannot run on a GPU yet: a clear error. */
    po_time_stats ts;
    assert_int_equal(po_hw_time_node(m, &l.dev[1], NULL, NULL, 0, 1, &ts), PO_ERR_UNSUPPORTED);
    assert_non_null(strstr(po_last_error(), "no CUDA backend"));
    po_device_list_free(&l);
    po_machine_free(m);
}

static void no_gpu_is_not_an_error(void **st) {
    (void)st;
    cuda_configure(2, 100); /* cuInit: CUDA_ERROR_NO_DEVICE */
    nvml_configure(0, 0);
    po_machine *m = with_fakes();
    assert_int_equal(po_machine_n_gpus(m), 0);
    assert_string_equal(po_machine_cuda_status(m), "not present (cuInit: no CUDA-capable device is detected (100))");
    po_device_list l;
    assert_int_equal(po_devices_parse(m, "cuda:0", &l), PO_ERR_INVALID_ARG);
    assert_non_null(strstr(po_last_error(), "no such GPU (none present; CUDA not present (cuInit"));
    po_machine_free(m);

    cuda_configure(0, 0); /* a driver with zero GPUs */
    nvml_configure(2, 9); /* nvmlInit fails: NVML_ERROR_DRIVER_NOT_LOADED */
    m = with_fakes();
    assert_int_equal(po_machine_n_gpus(m), 0);
    assert_string_equal(po_machine_cuda_status(m), "driver 12.4, 0 GPUs");
    assert_non_null(strstr(po_machine_nvml_status(m), "not present (nvmlInit: fake NVML error (9))"));
    po_machine_free(m);
    cuda_configure(2, 0);
    nvml_configure(2, 0);
}

static void catalog_names_the_fake_gpus(void **st) {
    (void)st;
    po_machine *m = with_fakes();
    assert_string_equal(po_catalog_find(po_machine_gpu(m, 0)->name)->id, "h100-sxm");
    assert_string_equal(po_catalog_find(po_machine_gpu(m, 1)->name)->id, "t4");
    po_machine_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(discovers_fake_gpus),
        cmocka_unit_test(gpu_devices),
        cmocka_unit_test(no_gpu_is_not_an_error),
        cmocka_unit_test(catalog_names_the_fake_gpus),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
