/* Energy meters against fake trees (po_meter_opts.root) and the fake NVML: /proc/stat parsing
 * and utilization, RAPL zones with a counter wraparound and an unreadable zone, amd_energy, the
 * model estimate, NVML's counter and its power-sampling fallback, and the AUTO combinations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hw/hw_internal.h"
#include "paropt/energy.h"
#include "po_test.h"

static char root[256];

static void put(const char *rel, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    /* mkdir -p of the file's directory */
    for (char *p = path + strlen(root) + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0755);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    if (!f) fail_msg("cannot write %s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static void rm_rf(const char *path) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", path, path);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}

static int fresh_root(void **st) {
    (void)st;
    snprintf(root, sizeof root, "/tmp/po_energy_XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int remove_root(void **st) {
    (void)st;
    rm_rf(root);
    return 0;
}

static void sleep_s(double s) {
    struct timespec t = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&t, NULL);
}

/* --- /proc/stat ------------------------------------------------------------------------------ */

static void proc_stat_reader(void **st) {
    (void)st;
    put("proc/stat", "cpu  300 0 100 1000 10 0 0 5 0 0\n"
                     "cpu0 100 0 50 500 5 0 0 2 0 0\n"
                     "cpu1 200 10 50 500 5 3 2 3 7 0\n"
                     "intr 12345 0 0\n"
                     "ctxt 999\n");
    po_cpu_times *t;
    int n;
    PO_CHECK(po_proc_stat_read(root, &t, &n));
    assert_int_equal(n, 2);
    assert_int_equal(t[0].cpu, 0);
    assert_int_equal(t[0].busy, 150);                   /* user + system */
    assert_int_equal(t[0].total, 150 + 500 + 5 + 2);    /* + idle + iowait + steal */
    assert_int_equal(t[1].busy, 200 + 10 + 50 + 3 + 2); /* guest is inside user already */
    assert_int_equal(t[1].total, 265 + 500 + 5 + 3);
    po_cpu_times later = {0, 150 + 30, 657 + 40};
    assert_true(fabs(po_cpu_utilization(&t[0], &later) - 0.75) < 1e-12);
    assert_true(po_cpu_utilization(&t[0], &t[0]) == 0.0); /* no tick passed */
    free(t);

    put("proc/stat", "cpu  1 2 3 4\ncpu0 1 2\n");
    assert_int_equal(po_proc_stat_read(root, &t, &n), PO_ERR_FORMAT);
    assert_non_null(strstr(po_last_error(), "proc/stat:2: malformed cpu line"));
    put("proc/stat", "intr 1\n");
    assert_int_equal(po_proc_stat_read(root, &t, &n), PO_ERR_FORMAT);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nowhere", root);
    assert_int_equal(po_proc_stat_read(missing, &t, &n), PO_ERR_IO);
    assert_non_null(strstr(po_last_error(), "nowhere/proc/stat"));
    assert_null(t);
}

/* --- RAPL ------------------------------------------------------------------------------------ */

#define MAX_UJ "262143328850"

static void rapl_tree(void) {
    put("sys/class/powercap/intel-rapl/enabled", "1\n"); /* the control type: not a zone */
    put("sys/class/powercap/intel-rapl:0/name", "package-0\n");
    put("sys/class/powercap/intel-rapl:0/max_energy_range_uj", MAX_UJ "\n");
    put("sys/class/powercap/intel-rapl:0/energy_uj", "262143328000\n"); /* 850 uJ before the wrap */
    put("sys/class/powercap/intel-rapl:0:0/name", "core\n");            /* inside the package: skipped */
    put("sys/class/powercap/intel-rapl:0:0/max_energy_range_uj", MAX_UJ "\n");
    put("sys/class/powercap/intel-rapl:0:0/energy_uj", "5\n");
    put("sys/class/powercap/intel-rapl:0:1/name", "dram\n"); /* outside the package: counted */
    put("sys/class/powercap/intel-rapl:0:1/max_energy_range_uj", MAX_UJ "\n");
    put("sys/class/powercap/intel-rapl:0:1/energy_uj", "1000\n");
    put("sys/class/powercap/intel-rapl:1/name", "package-1\n");
    put("sys/class/powercap/intel-rapl:1/max_energy_range_uj", MAX_UJ "\n");
    put("sys/class/powercap/intel-rapl:1/energy_uj", "7000000\n");
    put("sys/class/powercap/intel-rapl:2/name", "psys\n"); /* overlaps the packages: skipped */
    put("sys/class/powercap/intel-rapl:2/max_energy_range_uj", MAX_UJ "\n");
    put("sys/class/powercap/intel-rapl:2/energy_uj", "1\n");
    put("sys/class/powercap/intel-rapl-mmio:0/name", "package-0\n"); /* a second view: skipped */
    put("sys/class/powercap/intel-rapl-mmio:0/energy_uj", "1\n");
}

static void rapl_delta_wraps(void **st) {
    (void)st;
    assert_int_equal(po__rapl_delta(10, 25, 100), 15);
    assert_int_equal(po__rapl_delta(90, 5, 100), 15); /* 10 to the top, then 5 */
    assert_int_equal(po__rapl_delta(7, 7, 100), 0);
}

static void rapl_zones_and_wraparound(void **st) {
    (void)st;
    rapl_tree();
    po_meter_opts o = po_meter_opts_default();
    o.kind = PO_METER_RAPL;
    o.root = root;
    po_meter *m;
    PO_CHECK(po_meter_new(&o, &m));
    assert_string_equal(po_meter_source(m), "measured:rapl");
    assert_string_equal(po_meter_note(m), "");
    assert_int_equal(po_meter_n_domains(m), 3);
    po_energy_domain d;
    PO_CHECK(po_meter_domain(m, 0, &d));
    assert_string_equal(d.name, "package-0");
    assert_string_equal(d.source, "measured:rapl");
    PO_CHECK(po_meter_domain(m, 1, &d));
    assert_string_equal(d.name, "package-0/dram");
    PO_CHECK(po_meter_domain(m, 2, &d));
    assert_string_equal(d.name, "package-1");
    assert_int_equal(po_meter_domain(m, 3, &d), PO_ERR_RANGE);

    PO_CHECK(po_meter_begin(m));
    /* package-0 wraps: 850 uJ to the top of the range, then 1150 from zero = 2000 uJ. */
    put("sys/class/powercap/intel-rapl:0/energy_uj", "1150\n");
    put("sys/class/powercap/intel-rapl:0:1/energy_uj", "4000\n");   /* +3000 uJ */
    put("sys/class/powercap/intel-rapl:1/energy_uj", "10000000\n"); /* +3 J */
    po_energy_reading r;
    PO_CHECK(po_meter_read(m, &r));
    assert_true(fabs(r.joules - (0.002 + 0.003 + 3.0)) < 1e-9);
    assert_string_equal(r.source, "measured:rapl");
    PO_CHECK(po_meter_domain(m, 0, &d));
    assert_true(fabs(d.joules - 0.002) < 1e-12);
    /* The window stays open: more energy adds up. */
    put("sys/class/powercap/intel-rapl:1/energy_uj", "11000000\n");
    PO_CHECK(po_meter_end(m, &r));
    assert_true(fabs(r.joules - 4.005) < 1e-9);
    assert_true(r.seconds >= 0 && r.watts >= 0);
    assert_int_equal(po_meter_sample(m), PO_ERR_INVALID_ARG); /* closed */
    /* A new window starts from zero. */
    PO_CHECK(po_meter_begin(m));
    PO_CHECK(po_meter_end(m, &r));
    assert_true(r.joules == 0.0);
    po_meter_free(m);
}

static void rapl_unreadable_zone(void **st) {
    (void)st;
    rapl_tree();
    po_meter_opts o = po_meter_opts_default();
    o.kind = PO_METER_RAPL;
    o.root = root;
    po_meter *m = (po_meter *)1;
    char path[512];
    snprintf(path, sizeof path, "%s/sys/class/powercap/intel-rapl:1/energy_uj", root);

    /* The usual case since 2020: energy_uj is readable by root only. */
    assert_int_equal(chmod(path, 0), 0);
    if (geteuid() != 0) {
        assert_int_equal(po_meter_new(&o, &m), PO_ERR_IO);
        assert_null(m);
        assert_non_null(strstr(po_last_error(), "intel-rapl:1/energy_uj: permission denied"));
    } else {
        /* Root reads through mode 000: check from a child that gives up root. */
        assert_int_equal(chmod(root, 0755), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0) _exit(77);
            po_meter *cm = NULL;
            bool ok = po_meter_new(&o, &cm) == PO_ERR_IO && !cm &&
                      strstr(po_last_error(), "intel-rapl:1/energy_uj: permission denied");
            if (!ok) fprintf(stderr, "child: %s\n", po_last_error());
            _exit(ok ? 0 : 1);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == 77)
            print_message("skipped the permission-denied case: running as root and cannot switch to user 65534\n");
        else
            assert_int_equal(WEXITSTATUS(status), 0);
    }
    chmod(path, 0644);
    /* Unreadable for another reason (a directory where the counter should be): same handling. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(po_meter_new(&o, &m), PO_ERR_IO);
    assert_non_null(strstr(po_last_error(), "intel-rapl:1/energy_uj"));
    assert_non_null(strstr(po_last_error(), "directory"));

    /* AUTO falls back to the model and says why. */
    put("proc/stat", "cpu0 10 0 10 100 0 0 0 0 0 0\n");
    o.kind = PO_METER_AUTO;
    o.nvml_lib = "";
    PO_CHECK(po_meter_new(&o, &m));
    assert_string_equal(po_meter_source(m), "estimated:model");
    assert_non_null(strstr(po_meter_note(m), "RAPL: "));
    assert_non_null(strstr(po_meter_note(m), "intel-rapl:1/energy_uj"));
    po_meter_free(m);
    rmdir(path);
    put("sys/class/powercap/intel-rapl:1/energy_uj", "7000000\n");
}

static void amd_energy_hwmon(void **st) {
    (void)st;
    put("sys/class/hwmon/hwmon0/name", "k10temp\n");
    put("sys/class/hwmon/hwmon1/name", "amd_energy\n");
    put("sys/class/hwmon/hwmon1/energy1_label", "Ecore000\n");
    put("sys/class/hwmon/hwmon1/energy1_input", "100\n");
    put("sys/class/hwmon/hwmon1/energy2_label", "Esocket0\n");
    put("sys/class/hwmon/hwmon1/energy2_input", "5000000\n");
    po_meter_opts o = po_meter_opts_default();
    o.kind = PO_METER_RAPL;
    o.root = root;
    po_meter *m;
    PO_CHECK(po_meter_new(&o, &m));
    assert_int_equal(po_meter_n_domains(m), 1);
    po_energy_domain d;
    PO_CHECK(po_meter_domain(m, 0, &d));
    assert_string_equal(d.name, "Esocket0");
    PO_CHECK(po_meter_begin(m));
    put("sys/class/hwmon/hwmon1/energy2_input", "7500000\n");
    po_energy_reading r;
    PO_CHECK(po_meter_end(m, &r));
    assert_true(fabs(r.joules - 2.5) < 1e-9);
    assert_string_equal(r.source, "measured:rapl");
    po_meter_free(m);
}

static void no_rapl(void **st) {
    (void)st;
    po_meter_opts o = po_meter_opts_default();
    o.kind = PO_METER_RAPL;
    o.root = root;
    po_meter *m;
    assert_int_equal(po_meter_new(&o, &m), PO_ERR_NOT_FOUND);
    assert_non_null(strstr(po_last_error(), "no RAPL counters"));
    /* AUTO on a machine with neither RAPL nor NVML: the model, with the reasons. */
    put("proc/stat", "cpu0 10 0 10 100 0 0 0 0 0 0\n");
    o.kind = PO_METER_AUTO;
    o.nvml_lib = "/nonexistent/libnvidia-ml.so.1";
    PO_CHECK(po_meter_new(&o, &m));
    assert_string_equal(po_meter_source(m), "estimated:model");
    assert_non_null(strstr(po_meter_note(m), "GPUs: NVML not present"));
    assert_non_null(strstr(po_meter_note(m), "RAPL: no RAPL counters"));
    po_energy_domain d;
    PO_CHECK(po_meter_domain(m, 0, &d));
    assert_string_equal(d.name, "cpu");
    assert_string_equal(d.source, "estimated:model");
    po_meter_free(m);
}

/* --- model ----------------------------------------------------------------------------------- */

static double model_watts(const int *cpus, int n_cpus) {
    put("proc/stat", "cpu0 1000 0 0 1000 0 0 0 0 0 0\ncpu1 1000 0 0 1000 0 0 0 0 0 0\n");
    po_meter_opts o = po_meter_opts_default();
    o.kind = PO_METER_MODEL;
    o.root = root;
    o.core_idle_w = 1.0;
    o.core_tdp_w = 5.0;
    o.cpus = cpus;
    o.n_cpus = n_cpus;
    po_meter *m;
    PO_CHECK(po_meter_new(&o, &m));
    assert_string_equal(po_meter_source(m), "estimated:model");
    PO_CHECK(po_meter_begin(m));
    sleep_s(0.05);
    /* cpu0 busy the whole time, cpu1 idle. */
    put("proc/stat", "cpu0 1100 0 0 1000 0 0 0 0 0 0\ncpu1 1000 0 0 1100 0 0 0 0 0 0\n");
    po_energy_reading r;
    PO_CHECK(po_meter_end(m, &r));
    po_meter_free(m);
    assert_true(r.seconds >= 0.05);
    return r.joules / r.seconds;
}

static void model_estimate(void **st) {
    (void)st;
    /* idle + (tdp - idle) * utilization per processor: 5 W busy + 1 W idle. */
    assert_true(fabs(model_watts(NULL, 0) - 6.0) < 0.05);
    int only0[] = {0}, only1[] = {1};
    assert_true(fabs(model_watts(only0, 1) - 5.0) < 0.05);
    assert_true(fabs(model_watts(only1, 1) - 1.0) < 0.05);
    /* Two hardware threads per core: each carries half the core's figures. */
    put("sys/devices/system/cpu/cpu0/topology/thread_siblings_list", "0-1\n");
    assert_true(fabs(model_watts(NULL, 0) - 3.0) < 0.05);
    put("sys/devices/system/cpu/cpu0/topology/thread_siblings_list", "0,2\n");
    assert_true(fabs(model_watts(NULL, 0) - 3.0) < 0.05);
    /* Without figures, the catalog's for this CPU (generic ones if unknown). */
    po_meter_opts o = po_meter_opts_default();
    o.kind = PO_METER_MODEL;
    o.root = root;
    po_meter *m;
    PO_CHECK(po_meter_new(&o, &m));
    PO_CHECK(po_meter_begin(m));
    sleep_s(0.02);
    po_energy_reading r;
    PO_CHECK(po_meter_end(m, &r));
    assert_true(r.joules > 0);
    po_meter_free(m);

    char missing[300];
    snprintf(missing, sizeof missing, "%s/nowhere", root);
    o.root = missing;
    assert_int_equal(po_meter_new(&o, &m), PO_ERR_IO);
    assert_non_null(strstr(po_last_error(), "proc/stat"));
}

/* --- NVML ------------------------------------------------------------------------------------ */

static void nvml_counter_and_sampling(void **st) {
    (void)st;
    const char *lib = getenv("PO_FAKE_NVML");
    if (!lib) fail_msg("PO_FAKE_NVML is not set (run through ctest)");
    void *h = dlopen(lib, RTLD_NOW);
    assert_non_null(h);
    void (*configure)(int, int), (*set_energy)(int, int, unsigned long long), (*add_energy)(int, unsigned long long),
        (*set_power)(int, unsigned);
    *(void **)&configure = dlsym(h, "fake_nvml_configure");
    *(void **)&set_energy = dlsym(h, "fake_nvml_set_energy");
    *(void **)&add_energy = dlsym(h, "fake_nvml_add_energy");
    *(void **)&set_power = dlsym(h, "fake_nvml_set_power");
    assert_true(configure && set_energy && add_energy && set_power);
    configure(2, 0);
    set_energy(0, 1, 123456789); /* GPU 0: the counter */
    set_energy(1, 0, 0);         /* GPU 1: none, sampled at 50 W */
    set_power(1, 50000);

    po_meter_opts o = po_meter_opts_default();
    o.kind = PO_METER_NVML;
    o.nvml_lib = lib;
    o.sample_period_s = 0.01;
    po_meter *m;
    PO_CHECK(po_meter_new(&o, &m));
    assert_string_equal(po_meter_source(m), "measured:nvml");
    assert_int_equal(po_meter_n_domains(m), 2);
    PO_CHECK(po_meter_begin(m));
    add_energy(0, 2500); /* 2.5 J on the counter */
    sleep_s(0.2);
    po_energy_reading r;
    PO_CHECK(po_meter_end(m, &r));
    po_energy_domain d0, d1;
    PO_CHECK(po_meter_domain(m, 0, &d0));
    PO_CHECK(po_meter_domain(m, 1, &d1));
    assert_string_equal(d0.name, "gpu0");
    assert_string_equal(d1.source, "measured:nvml");
    assert_true(fabs(d0.joules - 2.5) < 1e-9);
    /* Constant 50 W integrated over the window (the samples span nearly all of it). */
    if (!(fabs(d1.joules - 50.0 * r.seconds) < 0.1 * 50.0 * r.seconds))
        fail_msg("sampled %.3f J over %.3f s, expected about %.3f", d1.joules, r.seconds, 50.0 * r.seconds);
    assert_true(fabs(r.joules - d0.joules - d1.joules) < 1e-9);
    po_meter_free(m);

    /* AUTO with GPUs and no RAPL: NVML for the GPUs, the model for the CPU. */
    put("proc/stat", "cpu0 10 0 10 100 0 0 0 0 0 0\n");
    o.kind = PO_METER_AUTO;
    o.root = root;
    PO_CHECK(po_meter_new(&o, &m));
    assert_string_equal(po_meter_source(m), "measured:nvml+estimated:model");
    assert_int_equal(po_meter_n_domains(m), 3);
    po_meter_free(m);

    /* Explicit NVML without GPUs or without the library: a clear error. */
    configure(0, 0);
    o.kind = PO_METER_NVML;
    assert_int_equal(po_meter_new(&o, &m), PO_ERR_NOT_FOUND);
    assert_non_null(strstr(po_last_error(), "NVML reports no GPU"));
    o.nvml_lib = "/nonexistent/libnvidia-ml.so.1";
    assert_int_equal(po_meter_new(&o, &m), PO_ERR_NOT_FOUND);
    assert_non_null(strstr(po_last_error(), "NVML not present"));
    configure(2, 0);
    dlclose(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(proc_stat_reader, fresh_root, remove_root),
        cmocka_unit_test(rapl_delta_wraps),
        cmocka_unit_test_setup_teardown(rapl_zones_and_wraparound, fresh_root, remove_root),
        cmocka_unit_test_setup_teardown(rapl_unreadable_zone, fresh_root, remove_root),
        cmocka_unit_test_setup_teardown(amd_energy_hwmon, fresh_root, remove_root),
        cmocka_unit_test_setup_teardown(no_rapl, fresh_root, remove_root),
        cmocka_unit_test_setup_teardown(model_estimate, fresh_root, remove_root),
        cmocka_unit_test_setup_teardown(nvml_counter_and_sampling, fresh_root, remove_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
