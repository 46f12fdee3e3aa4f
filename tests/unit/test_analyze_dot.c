/* Acceptance: Graphviz's `dot -Tsvg` accepts the drawing of every workload's training step (the
 * same writer `paropt analyze --dot` uses; tests/cli/test_analyze.sh checks the CLI's file too).
 * Exits 77 (skipped) where dot is not installed; scripts/deps.sh installs it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "po_test.h"

static char dir[] = "/tmp/po_test_dot_XXXXXX";

static void renders(const char *spec) {
    po_model *m;
    PO_CHECK(po_model_build(spec, 0, &m));
    PO_CHECK(po_graph_backward(m->graph, m->loss));
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
    PO_CHECK(po_graph_add_optimizer(m->graph, &o));
    po_analysis *a;
    PO_CHECK(po_analysis_new(m->graph, &a));
    char dot[256], svg[256], cmd[768];
    snprintf(dot, sizeof dot, "%s/%s.dot", dir, m->name);
    snprintf(svg, sizeof svg, "%s/%s.svg", dir, m->name);
    FILE *f = fopen(dot, "w");
    assert_non_null(f);
    PO_CHECK(po_analysis_write_dot(a, spec, f));
    assert_int_equal(fclose(f), 0);
    /* Warnings go to stderr and would not fail the run; any error makes dot exit non-zero. */
    snprintf(cmd, sizeof cmd, "dot -Tsvg -o '%s' '%s'", svg, dot);
    int rc = system(cmd);
    if (rc != 0) fail_msg("%s: `%s` exited with %d", spec, cmd, rc);
    f = fopen(svg, "r");
    assert_non_null(f);
    char head[4096];
    size_t n = fread(head, 1, sizeof head - 1, f);
    head[n] = 0;
    fclose(f);
    assert_non_null(strstr(head, "<svg"));
    unlink(dot);
    unlink(svg);
    po_analysis_free(a);
    po_model_free(m);
}

static void dot_accepts_the_three_workloads(void **st) {
    (void)st;
    renders("mnist_mlp");
    renders("cifar_cnn");
    renders("tiny_gpt");
}

int main(void) {
    if (system("command -v dot >/dev/null 2>&1") != 0) {
        printf("Graphviz's dot is not installed (apt-get install graphviz): skipped\n");
        return 77;
    }
    if (!mkdtemp(dir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dot_accepts_the_three_workloads),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(dir);
    return rc;
}
