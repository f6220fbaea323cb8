/* quant.c — AbsMean scales, ternarization and deadzone statistics.
 *
 * How the hot loops avoid a division per element while staying bit-exact:
 * q = fl(x / alpha) is monotone in x for a fixed alpha > 0 (IEEE division is
 * correctly rounded, and rounding is monotone). So every per-element test the
 * reference makes on q ("q > 0.5", "q - 0.5 < band", ...) is, for x = |w|, a test
 * x >= T against one threshold T: the smallest float x for which the test holds.
 * We find each T once per tensor (or row) by bisection over the float bit
 * patterns, evaluating the reference's own expression, then classify elements
 * by integer compares of their |w| bits (non-negative floats order like their
 * bits). Only the 0.5 threshold matters for a trit: round-half-even sends 0.5 to
 * 0 and anything above it to 1 or 2, which the clamp makes 1.
 *
 * Each loop is written once in scalar C and, where TL_SIMD (simd.h), preceded by
 * a SIMD128 loop that handles the bulk and falls through to the scalar tail.
 */
#include <math.h>

#include "internal.h"

#include "simd.h"

/* ---------------------------------------------------------------------------
 * Reductions
 * ------------------------------------------------------------------------- */

double tl__abs_sum(const float *w, size_t n) {
    double l0 = 0, l1 = 0, l2 = 0, l3 = 0, l4 = 0, l5 = 0, l6 = 0, l7 = 0;
    size_t i = 0;
#if TL_SIMD
    {
        const v128_t absmask = wasm_i32x4_splat((int32_t)TL__ABS_MASK);
        v128_t a01 = wasm_f64x2_splat(0), a23 = a01, a45 = a01, a67 = a01;
        for (; i + 8 <= n; i += 8) {
            v128_t x = wasm_v128_and(wasm_v128_load(w + i), absmask);
            v128_t y = wasm_v128_and(wasm_v128_load(w + i + 4), absmask);
            a01 = wasm_f64x2_add(a01, wasm_f64x2_promote_low_f32x4(x));
            a23 = wasm_f64x2_add(a23, wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(x, x, 2, 3, 2, 3)));
            a45 = wasm_f64x2_add(a45, wasm_f64x2_promote_low_f32x4(y));
            a67 = wasm_f64x2_add(a67, wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(y, y, 2, 3, 2, 3)));
        }
        l0 = wasm_f64x2_extract_lane(a01, 0), l1 = wasm_f64x2_extract_lane(a01, 1);
        l2 = wasm_f64x2_extract_lane(a23, 0), l3 = wasm_f64x2_extract_lane(a23, 1);
        l4 = wasm_f64x2_extract_lane(a45, 0), l5 = wasm_f64x2_extract_lane(a45, 1);
        l6 = wasm_f64x2_extract_lane(a67, 0), l7 = wasm_f64x2_extract_lane(a67, 1);
    }
#endif
    for (; i + 8 <= n; i += 8) {
        l0 += fabsf(w[i + 0]), l1 += fabsf(w[i + 1]), l2 += fabsf(w[i + 2]), l3 += fabsf(w[i + 3]);
        l4 += fabsf(w[i + 4]), l5 += fabsf(w[i + 5]), l6 += fabsf(w[i + 6]), l7 += fabsf(w[i + 7]);
    }
    double tail[8] = {l0, l1, l2, l3, l4, l5, l6, l7};
    for (; i < n; i++) tail[i % 8] += fabsf(w[i]);
    return ((tail[0] + tail[4]) + (tail[2] + tail[6])) + ((tail[1] + tail[5]) + (tail[3] + tail[7]));
}

float tl__absmean_from_sum(double sum, size_t n) {
    /* PyTorch: sum in float, then divide by n in float. */
    float s = (float)sum;
    float alpha = isinf(s) ? (float)(sum / (double)n) : s / (float)n;
    return alpha < TL_EPS ? TL_EPS : alpha;
}

size_t tl__first_non_finite(const float *w, size_t n) {
    size_t i = 0;
#if TL_SIMD
    {
        const v128_t absmask = wasm_i32x4_splat((int32_t)TL__ABS_MASK);
        const v128_t below_inf =
            wasm_i32x4_splat((int32_t)(TL__INF_BITS - 1)); /* signed compare: see tl__thr */
        for (; i + 16 <= n; i += 16) {
            v128_t m = wasm_u32x4_max(wasm_u32x4_max(wasm_v128_and(wasm_v128_load(w + i), absmask),
                                                     wasm_v128_and(wasm_v128_load(w + i + 4), absmask)),
                                      wasm_u32x4_max(wasm_v128_and(wasm_v128_load(w + i + 8), absmask),
                                                     wasm_v128_and(wasm_v128_load(w + i + 12), absmask)));
            if (wasm_v128_any_true(wasm_i32x4_gt(m, below_inf))) break; /* the scalar loop finds which */
        }
    }
#endif
    for (; i < n; i++)
        if ((tl__f2u(w[i]) & TL__ABS_MASK) >= TL__INF_BITS) return i;
    return n;
}

/* ---------------------------------------------------------------------------
 * Thresholds: the smallest float x >= 0 for which a monotone test on x holds
 * ------------------------------------------------------------------------- */

typedef enum { GT, GE } tl__cmp;

/* Does fl(x / alpha) - offset, in float, compare (GT: >, GE: >=) to t? With
 * offset 0 this is the reference's test on w / alpha itself. */
static int tl__ratio_test(float x, float alpha, float offset, tl__cmp cmp, float t) {
    float d = x / alpha - offset;
    return cmp == GT ? d > t : d >= t;
}

/* Bit pattern of the smallest finite x >= 0 passing the test, or TL__INF_BITS when
 * none does (no finite |w| reaches that bit pattern, so the class is empty). */
static uint32_t tl__threshold(float alpha, float offset, tl__cmp cmp, float t) {
    uint32_t lo = 0, hi = TL__INF_BITS;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (tl__ratio_test(tl__u2f(mid), alpha, offset, cmp, t))
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* |w| bits >= nonzero_bits  <=>  clamp(round(w / alpha), -1, 1) != 0. */
static uint32_t tl__nonzero_threshold(float alpha) { return tl__threshold(alpha, 0.0f, GT, 0.5f); }

/* ---------------------------------------------------------------------------
 * Per-element loops
 * ------------------------------------------------------------------------- */

#if TL_SIMD
/* |w| bit patterns are below 2^31, so "a >= t" is the signed "a > t - 1": one instruction,
 * where x86 has no unsigned lane compare (V8 lowers i32x4.ge_u to two). t = 0 gives t - 1 =
 * -1, which every pattern exceeds, as it should. */
static inline v128_t tl__thr(uint32_t t) { return wasm_i32x4_splat((int32_t)(t - 1u)); }

/* Four trits as i32 lanes: (|w| bits >= t) & (w < 0 ? -1 : +1); tm1 = tl__thr(t). */
static inline v128_t tl__trit4(const float *p, v128_t tm1) {
    v128_t x = wasm_v128_load(p);
    v128_t nz = wasm_i32x4_gt(wasm_v128_and(x, wasm_i32x4_splat((int32_t)TL__ABS_MASK)), tm1);
    return wasm_v128_and(nz, wasm_v128_or(wasm_i32x4_shr(x, 31), wasm_i32x4_splat(1)));
}
#endif

static void tl__signs(const float *w, size_t n, uint32_t t, int8_t *trits) {
    size_t i = 0;
#if TL_SIMD
    const v128_t vt = tl__thr(t);
    for (; i + 16 <= n; i += 16) {
        v128_t a = wasm_i16x8_narrow_i32x4(tl__trit4(w + i, vt), tl__trit4(w + i + 4, vt));
        v128_t b = wasm_i16x8_narrow_i32x4(tl__trit4(w + i + 8, vt), tl__trit4(w + i + 12, vt));
        wasm_v128_store(trits + i, wasm_i8x16_narrow_i16x8(a, b));
    }
#endif
    for (; i < n; i++) {
        uint32_t u = tl__f2u(w[i]);
        trits[i] = (int8_t)((u & TL__ABS_MASK) >= t ? ((u >> 31) ? -1 : 1) : 0);
    }
}

/* Values: sign of w | (alpha if nonzero). keep_neg_zero: the reference's
 * ternary_values keeps -0.0 for negative w rounding to 0; LSQ's "+ 0" drops it. */
static void tl__values(const float *w, size_t n, uint32_t t, float alpha, int keep_neg_zero, float *out) {
    const uint32_t ab = tl__f2u(alpha);
    size_t i = 0;
#if TL_SIMD
    {
        const v128_t absmask = wasm_i32x4_splat((int32_t)TL__ABS_MASK);
        const v128_t signmask = wasm_i32x4_splat((int32_t)TL__SIGN_MASK);
        const v128_t vt = tl__thr(t);
        const v128_t va = wasm_i32x4_splat((int32_t)ab);
        if (keep_neg_zero) {
            for (; i + 4 <= n; i += 4) {
                v128_t x = wasm_v128_load(w + i);
                v128_t nz = wasm_i32x4_gt(wasm_v128_and(x, absmask), vt);
                wasm_v128_store(out + i, wasm_v128_or(wasm_v128_and(x, signmask), wasm_v128_and(nz, va)));
            }
        } else {
            for (; i + 4 <= n; i += 4) {
                v128_t x = wasm_v128_load(w + i);
                v128_t nz = wasm_i32x4_gt(wasm_v128_and(x, absmask), vt);
                wasm_v128_store(out + i, wasm_v128_and(nz, wasm_v128_or(wasm_v128_and(x, signmask), va)));
            }
        }
    }
#endif
    for (; i < n; i++) {
        uint32_t u = tl__f2u(w[i]);
        uint32_t nz = (u & TL__ABS_MASK) >= t ? 0xFFFFFFFFu : 0u;
        uint32_t sign = u & TL__SIGN_MASK;
        out[i] = tl__u2f(keep_neg_zero ? sign | (nz & ab) : nz & (sign | ab));
    }
}

/* ---------------------------------------------------------------------------
 * Validation
 * ------------------------------------------------------------------------- */

static tl_status tl__check_len(const void *w, size_t n) {
    if (!w) return TL_ERR_NULL;
    if (n == 0) return TL_ERR_EMPTY;
    if (n > TL_MAX_ELEMENTS) return TL_ERR_OVERFLOW;
    return TL_OK;
}

tl_status tl_shape_rows_cols(const int64_t *shape, size_t ndim, size_t n, size_t *rows, size_t *cols) {
    if (!shape || !rows || !cols) return TL_ERR_NULL;
    if (ndim < 2) return TL_ERR_RANK;
    int has_zero = 0;
    for (size_t d = 0; d < ndim; d++) {
        if (shape[d] < 0) return TL_ERR_SHAPE;
        has_zero |= shape[d] == 0;
    }
    uint64_t prod = 1;
    if (has_zero) {
        prod = 0;
    } else {
        for (size_t d = 0; d < ndim; d++) {
            if ((uint64_t)shape[d] > TL_MAX_ELEMENTS / prod) return TL_ERR_OVERFLOW;
            prod *= (uint64_t)shape[d];
        }
    }
    if (n > TL_MAX_ELEMENTS) return TL_ERR_OVERFLOW;
    if (prod != n) return TL_ERR_SHAPE;
    if (n == 0) return TL_ERR_EMPTY;
    *rows = (size_t)shape[0];
    *cols = n / *rows;
    return TL_OK;
}

/* alpha of w[0..n), or TL_ERR_NON_FINITE (a NaN or inf makes the double sum non-finite). */
static tl_status tl__scale(const float *w, size_t n, float *alpha) {
    double sum = tl__abs_sum(w, n);
    if (!isfinite(sum)) return TL_ERR_NON_FINITE;
    *alpha = tl__absmean_from_sum(sum, n);
    return TL_OK;
}

/* ---------------------------------------------------------------------------
 * Public functions
 * ------------------------------------------------------------------------- */

tl_status tl_absmean_scale(const float *w, size_t n, float *alpha) {
    tl_status s = tl__check_len(w, n);
    if (s) return s;
    if (!alpha) return TL_ERR_NULL;
    return tl__scale(w, n, alpha);
}

tl_status tl_ternary_signs(const float *w, size_t n, int8_t *trits, float *alpha) {
    tl_status s = tl__check_len(w, n);
    if (s) return s;
    if (!trits || !alpha) return TL_ERR_NULL;
    float a;
    if ((s = tl__scale(w, n, &a))) return s;
    tl__signs(w, n, tl__nonzero_threshold(a), trits);
    *alpha = a;
    return TL_OK;
}

tl_status tl_ternary_values(const float *w, size_t n, float *out, float *alpha) {
    tl_status s = tl__check_len(w, n);
    if (s) return s;
    if (!out) return TL_ERR_NULL;
    float a;
    if ((s = tl__scale(w, n, &a))) return s;
    tl__values(w, n, tl__nonzero_threshold(a), a, 1, out);
    if (alpha) *alpha = a;
    return TL_OK;
}

tl_status tl_ternarize_lsq(const float *w, size_t n, float alpha, float *out, int8_t *trits) {
    tl_status s = tl__check_len(w, n);
    if (s) return s;
    if (!out && !trits) return TL_ERR_NULL;
    if (!(isfinite(alpha) && alpha > 0.0f)) return TL_ERR_ALPHA;
    if (tl__first_non_finite(w, n) != n) return TL_ERR_NON_FINITE;
    tl__ternarize(w, n, alpha, out, trits);
    return TL_OK;
}

void tl__ternarize(const float *w, size_t n, float alpha, float *out, int8_t *trits) {
    uint32_t t = tl__nonzero_threshold(alpha);
    if (trits) tl__signs(w, n, t, trits); /* before the values: out may alias w */
    if (out) tl__values(w, n, t, alpha, 0, out);
}

/* The per-row functions share one walk: validate the shape, then per row compute
 * the scale and apply fn (which may be NULL for scales only). */
typedef void (*tl__row_fn)(const float *w, size_t cols, float alpha, uint32_t t, void *out, size_t row);

static tl_status tl__per_row(const float *w, size_t n, const int64_t *shape, size_t ndim, float *alphas,
                             tl__row_fn fn, void *out) {
    if (!w) return TL_ERR_NULL;
    size_t rows, cols;
    tl_status s = tl_shape_rows_cols(shape, ndim, n, &rows, &cols);
    if (s) return s;
    for (size_t r = 0; r < rows; r++) {
        const float *row = w + r * cols;
        float a;
        if ((s = tl__scale(row, cols, &a))) return s;
        if (fn) fn(row, cols, a, tl__nonzero_threshold(a), out, r);
        if (alphas) alphas[r] = a;
    }
    return TL_OK;
}

static void tl__row_signs(const float *w, size_t cols, float alpha, uint32_t t, void *out, size_t row) {
    (void)alpha;
    tl__signs(w, cols, t, (int8_t *)out + row * cols);
}

static void tl__row_values(const float *w, size_t cols, float alpha, uint32_t t, void *out, size_t row) {
    tl__values(w, cols, t, alpha, 1, (float *)out + row * cols);
}

tl_status tl_absmean_scale_per_row(const float *w, size_t n, const int64_t *shape, size_t ndim,
                                   float *alphas) {
    if (!alphas) return TL_ERR_NULL;
    return tl__per_row(w, n, shape, ndim, alphas, NULL, NULL);
}

tl_status tl_ternary_signs_per_row(const float *w, size_t n, const int64_t *shape, size_t ndim, int8_t *trits,
                                   float *alphas) {
    if (!trits || !alphas) return TL_ERR_NULL;
    return tl__per_row(w, n, shape, ndim, alphas, tl__row_signs, trits);
}

tl_status tl_ternary_values_per_row(const float *w, size_t n, const int64_t *shape, size_t ndim, float *out,
                                    float *alphas) {
    if (!out) return TL_ERR_NULL;
    return tl__per_row(w, n, shape, ndim, alphas, tl__row_values, out);
}

/* ---------------------------------------------------------------------------
 * Deadzone statistics
 * ------------------------------------------------------------------------- */

float tl__to_float_sat(double x) {
    if (x > 3.4028234663852886e38) return INFINITY;
    if (x < -3.4028234663852886e38) return -INFINITY;
    return (float)x;
}

tl_status tl_deadzone_stats_compute(const float *w, size_t n, double band, tl_deadzone_stats *out) {
    tl_status s = tl__check_len(w, n);
    if (s) return s;
    if (!out) return TL_ERR_NULL;
    if (!(isfinite(band) && band >= 0.0)) return TL_ERR_BAND;
    float alpha;
    if ((s = tl__scale(w, n, &alpha))) return s;

    /* As PyTorch compares a float32 tensor with a Python float: both sides in float32. */
    const float b = tl__to_float_sat(band), inner = tl__to_float_sat(0.5 - band);
    const uint32_t t_nz = tl__nonzero_threshold(alpha);
    /* boundary: -b < fl(r - 0.5) < b  <=>  t_lo <= |w| < t_hi */
    const uint32_t t_lo = tl__threshold(alpha, 0.5f, GT, -b), t_hi = tl__threshold(alpha, 0.5f, GE, b);
    /* zero_inner: fl(w / alpha) != 0 and r < 0.5 - band  <=>  t_sg <= |w| < t_in */
    const uint32_t t_sg = tl__threshold(alpha, 0.0f, GT, 0.0f), t_in = tl__threshold(alpha, 0.0f, GE, inner);

    uint64_t nz = 0, neg = 0, bd = 0, zin = 0;
    size_t i = 0;
#if TL_SIMD
    {
        const v128_t absmask = wasm_i32x4_splat((int32_t)TL__ABS_MASK);
        const v128_t vnz = tl__thr(t_nz), vlo = tl__thr(t_lo), vhi = tl__thr(t_hi), vsg = tl__thr(t_sg),
                     vin = tl__thr(t_in);
        /* i32 lane counters cannot overflow: n <= TL_MAX_ELEMENTS < 2^30. */
        v128_t cnz = wasm_i32x4_splat(0), cneg = cnz, cbd = cnz, czin = cnz;
        for (; i + 4 <= n; i += 4) {
            v128_t x = wasm_v128_load(w + i);
            v128_t a = wasm_v128_and(x, absmask);
            v128_t m = wasm_i32x4_gt(a, vnz);
            cnz = wasm_i32x4_sub(cnz, m);
            cneg = wasm_i32x4_sub(cneg, wasm_v128_and(m, wasm_i32x4_shr(x, 31)));
            cbd = wasm_i32x4_sub(cbd, wasm_v128_andnot(wasm_i32x4_gt(a, vlo), wasm_i32x4_gt(a, vhi)));
            czin = wasm_i32x4_sub(czin, wasm_v128_andnot(wasm_i32x4_gt(a, vsg), wasm_i32x4_gt(a, vin)));
        }
        int32_t lanes[4][4];
        wasm_v128_store(lanes[0], cnz), wasm_v128_store(lanes[1], cneg);
        wasm_v128_store(lanes[2], cbd), wasm_v128_store(lanes[3], czin);
        for (int k = 0; k < 4; k++) {
            nz += (uint32_t)lanes[0][k], neg += (uint32_t)lanes[1][k];
            bd += (uint32_t)lanes[2][k], zin += (uint32_t)lanes[3][k];
        }
    }
#endif
    for (; i < n; i++) {
        uint32_t u = tl__f2u(w[i]), a = u & TL__ABS_MASK;
        int m = a >= t_nz;
        nz += m;
        neg += m & (int)(u >> 31);
        bd += (a >= t_lo) & (a < t_hi);
        zin += (a >= t_sg) & (a < t_in);
    }

    const double dn = (double)n;
    out->alpha = alpha;
    out->n = n;
    out->n_neg = neg, out->n_pos = nz - neg, out->n_zero = n - nz;
    out->n_boundary = bd, out->n_zero_inner = zin;
    out->frac_neg = (double)neg / dn, out->frac_zero = (double)(n - nz) / dn;
    out->frac_pos = (double)(nz - neg) / dn, out->frac_boundary = (double)bd / dn;
    out->frac_zero_inner = (double)zin / dn;
    return TL_OK;
}
