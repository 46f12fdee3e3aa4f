/* The vectorisable float math of src/core/vmath.h against libm: po_expf against expf over its
 * accurate range and its clamping outside it, po_erff against erf (in double) and its behaviour
 * at the ends and on NaN. Each accuracy check samples about a million points: every float would
 * take minutes. And core/vmath512.h's sixteen-lane versions against the scalar ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <string.h>

#include "core/vmath.h"
#include "core/vmath512.h"
#include "po_test.h"

enum { SAMPLES = 1 << 20 };

/* Evenly spaced samples of [lo, hi] plus each one's neighbouring float (to catch errors that
 * depend on the last bits, e.g. at reduction boundaries). */
static float sample(int i, float lo, float hi) {
    float x = lo + (hi - lo) * (float)(i / 2) / (float)(SAMPLES / 2 - 1);
    return i % 2 ? nextafterf(x, hi) : x;
}

/* po_expf within 2e-7 relative of libm's expf over [-87, 88]. */
static void expf_matches_libm(void **st) {
    (void)st;
    double worst = 0.0;
    float at = 0.0f;
    for (int i = 0; i < SAMPLES; i++) {
        float x = sample(i, -87.0f, 88.0f);
        if (x > 88.0f) x = 88.0f;
        double want = expf(x), e = fabs((double)po_expf(x) - want) / want;
        if (!(e <= worst)) worst = e, at = x;
    }
    /* Special points: zero, small arguments, the reduction's half-way points n*ln2/2. */
    const float pts[] = {0.0f, -0.0f, 1e-7f, -1e-7f, 0.34657359f, -0.34657359f, 1.0f, -1.0f, 10.0f, 88.0f, -87.0f};
    for (size_t k = 0; k < sizeof pts / sizeof pts[0]; k++) {
        double want = expf(pts[k]), e = fabs((double)po_expf(pts[k]) - want) / want;
        if (!(e <= worst)) worst = e, at = pts[k];
    }
    if (!(worst <= 2e-7)) fail_msg("po_expf: relative error %.3g at x = %.9g", worst, (double)at);
    assert_true(po_expf(0.0f) == 1.0f);
    assert_true(fabs(po_expf(1.0f) - 2.718281828459045) < 5e-7);
}

/* Documented clamping: below -87.33 the result stays at about 1.2e-38 (the smallest normal
 * float), never 0 and never denormal; above 88.37 it stays at about 2.4e38, never inf. Both
 * hold for infinite arguments. Monotone across each clamp. */
static void expf_clamps(void **st) {
    (void)st;
    float lo = po_expf(-87.33f);
    assert_true(lo > 0.0f && lo >= FLT_MIN && lo < 2e-38f);
    const float below[] = {-87.5f, -88.0f, -100.0f, -1e4f, -1e30f, -FLT_MAX, -INFINITY};
    for (size_t k = 0; k < sizeof below / sizeof below[0]; k++) {
        if (po_expf(below[k]) != lo)
            fail_msg("po_expf(%g) = %g, want the clamp %g", (double)below[k], (double)po_expf(below[k]), (double)lo);
    }
    float hi = po_expf(88.37f);
    assert_true(isfinite(hi) && hi > 2e38f);
    const float above[] = {88.5f, 89.0f, 100.0f, 1e30f, FLT_MAX, INFINITY};
    for (size_t k = 0; k < sizeof above / sizeof above[0]; k++) {
        if (po_expf(above[k]) != hi)
            fail_msg("po_expf(%g) = %g, want the clamp %g", (double)above[k], (double)po_expf(above[k]), (double)hi);
    }
    float prev = 0.0f;
    for (float x = -88.0f; x <= -86.0f; x += 1.0f / 64) {
        assert_true(po_expf(x) >= prev);
        prev = po_expf(x);
    }
    prev = 0.0f;
    for (float x = 87.0f; x <= 89.0f; x += 1.0f / 64) {
        assert_true(po_expf(x) >= prev);
        prev = po_expf(x);
    }
}

/* NaN in, NaN out. (po_expf gets there by converting floor(NaN) to int32, which C leaves
 * undefined; x86's conversion gives INT32_MIN and the NaN survives the final product. A
 * platform whose conversion differs could return a number here, and this test would say so.) */
static void expf_nan(void **st) {
    (void)st;
    volatile float qnan = NAN;
    assert_true(isnan(po_expf(qnan)));
    assert_true(isnan(po_expf(-qnan)));
}

/* po_erff within 5e-7 absolute of erf over [-6, 6]; odd; exactly +-1 from |x| = 4 on. */
static void erff_matches_libm(void **st) {
    (void)st;
    double worst = 0.0;
    float at = 0.0f;
    for (int i = 0; i < SAMPLES; i++) {
        float x = sample(i, -6.0f, 6.0f);
        double e = fabs((double)po_erff(x) - erf((double)x));
        if (!(e <= worst)) worst = e, at = x;
        if (po_erff(-x) != -po_erff(x)) fail_msg("po_erff is not odd at %.9g", (double)x);
    }
    if (!(worst <= 5e-7)) fail_msg("po_erff: absolute error %.3g at x = %.9g", worst, (double)at);
    assert_true(po_erff(0.0f) == 0.0f);
    assert_true(po_erff(1e-30f) > 0.0f); /* erf(x) ~ 2x/sqrt(pi) near 0: no flush to zero */
    const float ends[] = {4.0f, 4.5f, 6.0f, 100.0f, FLT_MAX, INFINITY};
    for (size_t k = 0; k < sizeof ends / sizeof ends[0]; k++) {
        assert_true(po_erff(ends[k]) == 1.0f);
        assert_true(po_erff(-ends[k]) == -1.0f);
    }
}

/* Measured, and relied on by GELU's accuracy: the rational approximation overshoots |erf| = 1 by
 * up to about 3.6e-7 for |x| in (3.67, 4) (so exact-GELU outputs for x in about (-5.66, -5.2) can
 * come out slightly positive, by under 1e-6). Guard the size of that overshoot. */
static void erff_overshoot_is_bounded(void **st) {
    (void)st;
    float worst = 0.0f;
    for (int i = 0; i < SAMPLES / 8; i++) {
        float x = sample(i, 3.0f, 4.0f);
        float over = fabsf(po_erff(x)) - 1.0f;
        if (over > worst) worst = over;
    }
    if (!(worst <= 5e-7f)) fail_msg("po_erff overshoots 1 by %.3g", (double)worst);
}

/* NaN in, NaN out: both clamps compare false on NaN, so it reaches the rational function. */
static void erff_nan(void **st) {
    (void)st;
    volatile float qnan = NAN;
    assert_true(isnan(po_erff(qnan)));
    assert_true(isnan(po_erff(-qnan)));
}

#if defined(__x86_64__) && defined(__GNUC__)
/* Distance in representable floats between a and b (0: equal; NaN against NaN is 0). */
static int64_t ulps(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : INT64_MAX;
    int32_t ia, ib;
    memcpy(&ia, &a, 4), memcpy(&ib, &b, 4);
    int64_t ka = ia < 0 ? (int64_t)INT32_MIN - ia : ia, kb = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
    return ka > kb ? ka - kb : kb - ka;
}

static float xs16[SAMPLES + 16];

/* po_expf16 and po_erff16 against po_expf and po_erff, lane by lane, over the samples and the
 * special values (NaN, infinities, the clamps): the same steps, equal in an optimised build; an
 * unoptimised one fuses fewer of the scalar multiply-adds (measured: 1 float apart for exp, 7
 * for erf near its ends), so the bounds are the functions' own accuracy: 2e-7 relative for
 * exp, 1e-6 absolute for erf. NaN must stay NaN. */
PO_AVX512 static void lanes_against_scalar(double *worst_exp, double *worst_erf, int64_t *worst_ulps, int n) {
    for (int i = 0; i < n; i += 16) {
        float e[16], r[16];
        _mm512_storeu_ps(e, po_expf16(_mm512_loadu_ps(xs16 + i)));
        _mm512_storeu_ps(r, po_erff16(_mm512_loadu_ps(xs16 + i)));
        for (int k = 0; k < 16; k++) {
            float we = po_expf(xs16[i + k]), wr = po_erff(xs16[i + k]);
            double de = isnan(we) || isnan(e[k]) ? (isnan(we) && isnan(e[k]) ? 0.0 : INFINITY)
                                                 : fabs((double)e[k] - we) / fabs((double)we);
            double dr =
                isnan(wr) || isnan(r[k]) ? (isnan(wr) && isnan(r[k]) ? 0.0 : INFINITY) : fabs((double)r[k] - wr);
            if (!(de <= *worst_exp)) *worst_exp = de;
            if (!(dr <= *worst_erf)) *worst_erf = dr;
            int64_t u = ulps(e[k], we) > ulps(r[k], wr) ? ulps(e[k], we) : ulps(r[k], wr);
            if (u > *worst_ulps) *worst_ulps = u;
        }
    }
}
#endif

static void sixteen_lanes_match_scalar(void **st) {
    (void)st;
#if defined(__x86_64__) && defined(__GNUC__)
    if (!po_cpu_avx512()) {
        print_message("no AVX-512 here: nothing to compare\n");
        return;
    }
    const float special[16] = {NAN,     -NAN,   INFINITY, -INFINITY, 0.0f, -0.0f, 88.37f, 89.0f,
                               -87.33f, -90.0f, 4.0f,     -4.0f,     3.9f, -3.7f, 1e-30f, FLT_MAX};
    for (int i = 0; i < SAMPLES; i++)
        xs16[i] = sample(i, -100.0f, 100.0f);
    memcpy(xs16 + SAMPLES, special, sizeof special);
    double worst_exp = 0.0, worst_erf = 0.0;
    int64_t worst_ulps = 0;
    lanes_against_scalar(&worst_exp, &worst_erf, &worst_ulps, SAMPLES + 16);
    print_message("po_expf16 within %.3g relative of po_expf, po_erff16 within %.3g of po_erff (%lld floats)\n",
                  worst_exp, worst_erf, (long long)worst_ulps);
    assert_true(worst_exp <= 2e-7);
    assert_true(worst_erf <= 1e-6);
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(expf_matches_libm),
        cmocka_unit_test(expf_clamps),
        cmocka_unit_test(expf_nan),
        cmocka_unit_test(erff_matches_libm),
        cmocka_unit_test(erff_overshoot_is_bounded),
        cmocka_unit_test(erff_nan),
        cmocka_unit_test(sixteen_lanes_match_scalar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
