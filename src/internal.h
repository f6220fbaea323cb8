/* internal.h — shared by the core's translation units and by the C tests; not installed. */
#ifndef TL_INTERNAL_H
#define TL_INTERNAL_H

#include "tilelli.h"

#include <string.h>

/* float <-> bits without aliasing trouble (compiles to a move). */
static inline uint32_t tl__f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float tl__u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#define TL__ABS_MASK 0x7FFFFFFFu
#define TL__SIGN_MASK 0x80000000u
#define TL__INF_BITS 0x7F800000u

/* Sum of |w[i]| in the documented fixed order (8 double lanes); NaN/inf propagate. */
double tl__abs_sum(const float *w, size_t n);

/* alpha from a finite sum of n absolute values: max(fl(sum) / fl(n), EPS). */
float tl__absmean_from_sum(double sum, size_t n);

/* Index of the first NaN or infinity in w, or n when all are finite. */
size_t tl__first_non_finite(const float *w, size_t n);

/*
 * The scalar reference: the reference module's formulas written literally
 * (division, rintf, clamp), one element at a time. The optimized functions in
 * quant.c must agree with these bit for bit; the tests check it in every build.
 * They take the same arguments as their public twins and validate nothing
 * beyond what they need to run: call them only on valid input.
 */
float tl_ref_absmean_scale(const float *w, size_t n);
void tl_ref_ternary_signs(const float *w, size_t n, float alpha, int8_t *trits);
void tl_ref_ternary_values(const float *w, size_t n, float alpha, float *out);
void tl_ref_ternarize_lsq(const float *w, size_t n, float alpha, float *out, int8_t *trits);
void tl_ref_deadzone_stats(const float *w, size_t n, double band, tl_deadzone_stats *out);

#endif
