/* quant_ref.c — the scalar reference: ternary.py's formulas written literally.
 * Slow on purpose; quant.c is checked against it bit for bit. */
#include <math.h>

#include "internal.h"

float tl_ref_absmean_scale(const float *w, size_t n) {
    /* The documented order: element i into lane i % 8, lanes combined pairwise. */
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) lane[i % 8] += fabs((double)w[i]);
    double sum = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
    return tl__absmean_from_sum(sum, n);
}

/* torch.round(w / alpha).clamp_(-1, 1): rintf rounds half to even in the default mode. */
static float ref_trit(float w, float alpha) {
    float q = rintf(w / alpha);
    if (q < -1.0f) q = -1.0f;
    if (q > 1.0f) q = 1.0f;
    return q; /* may be -0.0f, as in PyTorch */
}

void tl_ref_ternary_signs(const float *w, size_t n, float alpha, int8_t *trits) {
    for (size_t i = 0; i < n; i++) trits[i] = (int8_t)ref_trit(w[i], alpha);
}

void tl_ref_ternary_values(const float *w, size_t n, float alpha, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = ref_trit(w[i], alpha) * alpha;
}

void tl_ref_ternarize_lsq(const float *w, size_t n, float alpha, float *out, int8_t *trits) {
    for (size_t i = 0; i < n; i++) {
        float q = ref_trit(w[i], alpha);
        /* q_int * alpha + (w - w.detach()): the added 0.0 turns -0.0 into +0.0 */
        out[i] = q * alpha + (w[i] - w[i]);
        if (trits) trits[i] = (int8_t)q;
    }
}

void tl_ref_deadzone_stats(const float *w, size_t n, double band, tl_deadzone_stats *out) {
    float alpha = tl_ref_absmean_scale(w, n);
    float b = tl__to_float_sat(band), inner = tl__to_float_sat(0.5 - band);
    uint64_t neg = 0, zero = 0, pos = 0, boundary = 0, zin = 0;
    for (size_t i = 0; i < n; i++) {
        float s = w[i] / alpha;
        float r = fabsf(s);
        float q = ref_trit(w[i], alpha);
        neg += q == -1.0f;
        zero += q == 0.0f;
        pos += q == 1.0f;
        boundary += fabsf(r - 0.5f) < b;
        zin += (s != 0.0f) && (r < inner);
    }
    double dn = (double)n;
    out->alpha = alpha;
    out->n = n;
    out->n_neg = neg, out->n_zero = zero, out->n_pos = pos;
    out->n_boundary = boundary, out->n_zero_inner = zin;
    out->frac_neg = (double)neg / dn, out->frac_zero = (double)zero / dn;
    out->frac_pos = (double)pos / dn, out->frac_boundary = (double)boundary / dn;
    out->frac_zero_inner = (double)zin / dn;
}
