/* Vectorisable float math for kernels: branch-free exp and erf that GCC turns into SIMD code
 * inside loops (libm's expf/erff are scalar calls). Accuracy is checked against libm in
 * tests/unit/test_vmath.c: a few ulp for exp, about 1e-7 absolute for erf. */
#ifndef PO_CORE_VMATH_H
#define PO_CORE_VMATH_H

#include <stdint.h>
#include <string.h>

/* e^x. Inputs below -87.3 return about 1e-38 instead of 0 (callers that need an exact 0,
 * such as masked softmax entries, write it themselves); above 88.3 the result is clamped. */
static inline float po_expf(float x_in) {
    /* NaN would reach the float-to-int conversion below (undefined in C): compute on 0 instead
     * and hand the NaN back at the end. */
    float x = x_in == x_in ? x_in : 0.0f;
    x = x < -87.33f ? -87.33f : x;
    x = x > 88.37f ? 88.37f : x;
    /* x = n ln2 + r, |r| <= ln2/2, with ln2 split in two for an exact n ln2. */
    float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    /* Cephes' minimax polynomial for e^r on that interval. */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x_in == x_in ? p * scale : x_in;
}

/* erf(x): a rational minimax approximation on [-4, 4] (the one Eigen and XLA use for float);
 * outside that range erf is +-1 in float. */
static inline float po_erff(float x) {
    x = x < -4.0f ? -4.0f : x;
    x = x > 4.0f ? 4.0f : x;
    float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    p = p * x;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    /* The approximation overshoots 1 by up to 4e-7 for |x| in (3.67, 4): clamp. */
    float r = p / q;
    r = r > 1.0f ? 1.0f : r;
    return r < -1.0f ? -1.0f : r;
}

#endif
