/* Deterministic random numbers (xoshiro256**, seeded through splitmix64): the same seed gives
 * the same stream on every machine, for parameter init, synthetic data and shuffling. */
#ifndef PO_CORE_RNG_H
#define PO_CORE_RNG_H

#include <stdint.h>

typedef struct po_rng {
    uint64_t s[4];
} po_rng;

void po_rng_seed(po_rng *r, uint64_t seed);
uint64_t po_rng_next(po_rng *r);
/* Uniform in [0, 1) with 24 random bits. */
float po_rng_uniform(po_rng *r);
/* Standard normal (Box-Muller). */
float po_rng_normal(po_rng *r);
/* Uniform integer in [0, n), n > 0. */
uint64_t po_rng_below(po_rng *r, uint64_t n);

#endif
