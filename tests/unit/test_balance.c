/* The re-balancing trigger (runtime/balance.h) that data parallel's re-split, operator split's
 * re-share and a pipeline's re-partition share: warm-up steps are not measured; a window's
 * medians ignore one slow step; a moderate imbalance must show in two windows in a row, with the
 * same worker slowest, before it moves anything; a large one moves at once; a move skips the next
 * step, and a reversal doubles the window. Each case is checked against the medians computed here
 * by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>

#include "runtime/balance.h"

static void assert_near(double got, double want) { assert_true(fabs(got - want) <= 1e-12); }

/* Feeds one step's busy seconds {a, b} to a two-worker trigger: po__balance_step's answer. */
static bool step2(po__balance *b, double a, double c, double *median) {
    double busy[2] = {a, c};
    return po__balance_step(b, busy, median);
}

/* Feeds `steps` identical steps, asserting none but the last may answer; returns the last's. */
static bool steps2(po__balance *b, int steps, double a, double c, double *median) {
    bool last = false;
    for (int i = 0; i < steps; i++) {
        last = step2(b, a, c, median);
        if (i < steps - 1) assert_false(last);
    }
    return last;
}

static void test_warm_up_steps_are_not_measured(void **state) {
    (void)state;
    po__balance b;
    po__balance_init(&b, 2);
    double median[2];
    /* Three warm-up steps with worker 1 three times slower, then balanced steps: the first window
     * is the four balanced steps, and it closes in balance. */
    for (int i = 0; i < PO__BALANCE_WARMUP; i++)
        assert_false(step2(&b, 1.0, 3.0, median));
    for (int i = 0; i < PO__BALANCE_PATIENCE; i++)
        assert_false(step2(&b, 1.0, 1.02, median));
    /* Had the warm-up steps counted, the window would have closed out of balance already: a
     * fresh trigger with its warm-up spent shows it. */
    po__balance fresh;
    po__balance_init(&fresh, 2);
    fresh.settle = 0;
    bool moved = false;
    for (int i = 0; i < PO__BALANCE_PATIENCE; i++)
        moved = step2(&fresh, 1.0, i < 3 ? 3.0 : 1.0, median);
    assert_true(moved); /* medians 1.0 and 3.0: far apart */
    assert_near(median[1], 3.0);
}

static void test_moderate_imbalance_needs_two_windows(void **state) {
    (void)state;
    po__balance b;
    po__balance_init(&b, 2);
    b.settle = 0;
    double median[2];
    /* Worker 1 20% slower (within the far-apart bound): the first window does not move... */
    assert_false(steps2(&b, PO__BALANCE_PATIENCE, 1.0, 1.2, median));
    /* ... the second, with the same worker slowest, does, with that window's medians. */
    assert_true(steps2(&b, PO__BALANCE_PATIENCE, 1.0, 1.25, median));
    assert_near(median[0], 1.0);
    assert_near(median[1], 1.25);
    /* The next out-of-balance window starts the count again. */
    assert_false(steps2(&b, PO__BALANCE_PATIENCE, 1.0, 1.2, median));
}

static void test_noise_that_changes_sides_never_moves(void **state) {
    (void)state;
    po__balance b;
    po__balance_init(&b, 2);
    b.settle = 0;
    double median[2];
    /* 15% out of balance each window, but a different worker slowest every time. */
    for (int w = 0; w < 6; w++)
        assert_false(steps2(&b, PO__BALANCE_PATIENCE, w % 2 ? 1.15 : 1.0, w % 2 ? 1.0 : 1.15, median));
    /* A window in balance between two out of balance on the same side also resets the count. */
    assert_false(steps2(&b, PO__BALANCE_PATIENCE, 1.0, 1.2, median));
    assert_false(steps2(&b, PO__BALANCE_PATIENCE, 1.0, 1.05, median));
    assert_false(steps2(&b, PO__BALANCE_PATIENCE, 1.0, 1.2, median));
    assert_true(steps2(&b, PO__BALANCE_PATIENCE, 1.0, 1.2, median));
}

static void test_far_apart_moves_at_once_and_one_slow_step_does_not(void **state) {
    (void)state;
    po__balance b;
    po__balance_init(&b, 3);
    b.settle = 0;
    double median[3];
    /* One step of four with worker 2 ten times slower: its median is (1.0 + 1.0) / 2. */
    for (int i = 0; i < PO__BALANCE_PATIENCE; i++) {
        double busy[3] = {1.0, 1.0, i == 1 ? 10.0 : 1.0};
        assert_false(po__balance_step(&b, busy, median));
    }
    assert_near(median[2], 1.0);
    /* Worker 1 twice as slow (a device slowed down): one window is enough. */
    bool moved = false;
    for (int i = 0; i < PO__BALANCE_PATIENCE; i++) {
        double busy[3] = {1.0, 2.0 + 0.01 * i, 1.0};
        moved = po__balance_step(&b, busy, median);
    }
    assert_true(moved);
    assert_near(median[1], 2.015); /* the mean of the middle two of 2.00 .. 2.03 */
}

static void test_a_move_skips_a_step_and_a_reversal_doubles_the_window(void **state) {
    (void)state;
    po__balance b;
    po__balance_init(&b, 2);
    b.settle = 0;
    double median[2];
    assert_true(steps2(&b, PO__BALANCE_PATIENCE, 1.0, 2.0, median));
    po__balance_moved(&b, 1);
    /* The step after the move is not recorded: the window closes one step later. */
    assert_false(step2(&b, 2.0, 1.0, median));
    assert_true(steps2(&b, PO__BALANCE_PATIENCE, 2.0, 1.0, median));
    po__balance_moved(&b, -1); /* the move back: a reversal */
    assert_int_equal(b.patience, 2 * PO__BALANCE_PATIENCE);
    assert_false(step2(&b, 1.0, 2.0, median));
    assert_true(steps2(&b, 2 * PO__BALANCE_PATIENCE, 1.0, 2.0, median));
    /* A suspicion does not survive a move: moderate imbalance after it needs two windows again. */
    po__balance_moved(&b, 1);
    assert_false(step2(&b, 1.0, 1.2, median));
    assert_false(steps2(&b, b.patience, 1.0, 1.2, median));
    assert_true(steps2(&b, b.patience, 1.0, 1.2, median));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warm_up_steps_are_not_measured),
        cmocka_unit_test(test_moderate_imbalance_needs_two_windows),
        cmocka_unit_test(test_noise_that_changes_sides_never_moves),
        cmocka_unit_test(test_far_apart_moves_at_once_and_one_slow_step_does_not),
        cmocka_unit_test(test_a_move_skips_a_step_and_a_reversal_doubles_the_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
