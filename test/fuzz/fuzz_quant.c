/* fuzz_quant.c — libFuzzer target for the quantizers (src/quant.c) against the scalar reference
 * (src/quant_ref.c).
 *
 * Each input is a 16-byte header and a body of float32 values. The header (continued by a
 * xorshift stream seeded by the input's hash when the input is shorter) gives:
 *   [0]      how the body becomes floats: 0 as they are (memcpy: NaN, infinities, subnormals,
 *            -0.0, values near FLT_MAX), 1 the same with NaN and infinities made finite, 2 one
 *            byte per element as int8 times 2^e (exact ties at alpha / 2 are common), 3 mantissa
 *            and sign from the input with the exponent in an 8-wide window (values of one
 *            magnitude, anywhere from subnormal to huge), 4 like 1 then elements pulled to
 *            alpha / 2 and 3 alpha / 2 within a few ulps (the rounding edges); bit 7: one element
 *            replaced by a NaN or an infinity
 *   [1]      e for mode 2, the window for mode 3
 *   [2..5]   the LSQ scale's bits, as they are (NaN, infinity, 0, negative, subnormal...), or for
 *            [15] bit 0 the tensor's AbsMean scale (then [2] picks a few ulps' nudge)
 *   [6..13]  the deadzone band's bits (double), as they are, or for [15] bit 1 [6] / 400
 *   [14]     the per-row shape: rank 0..4 and either a valid split of the element count or
 *            dimensions from the stream (negative, zero, huge)
 * Every function must return the documented error (EMPTY for no element, NON_FINITE when a NaN
 * or infinity is present, ALPHA, BAND, RANK, SHAPE, OVERFLOW; where two apply, either) and then
 * leave per-tensor outputs untouched, or results bit-identical to the reference: tl_absmean_scale,
 * tl_ternary_signs, tl_ternary_values (and in place), tl_ternarize_lsq (values and/or trits, and
 * in place), tl_deadzone_stats_compute (the struct, memcmp), tl_shape_rows_cols and the per-row
 * variants row by row; -0.0 and +0.0 as the reference gives them. tl_matrix_quantize (per tensor
 * and per row) must hold the reference's trits and scales, and, made again with one allocation
 * failing, give NO_MEMORY or the same. Nothing is held afterwards. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"



static int non_finite(float x) { return (tl__f2u(x) & TL__INF_BITS) == TL__INF_BITS; }

static int any_non_finite(const float *w, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (non_finite(w[i])) return 1;
    return 0;
}

/* 1 when all n bytes of p still hold the fill byte v. */
static int untouched(const void *p, size_t n, uint8_t v) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != v) return 0;
    return 1;
}

#define FILL 0xA5

/* ---------------------------------------------------------------------------
 * Per tensor
 * ------------------------------------------------------------------------- */

static void check_per_tensor(const float *w, size_t n, float lsq_alpha, double band) {
    size_t cap = n ? n : 1;
    int bad = n && any_non_finite(w, n);
    tl_status base = n == 0 ? TL_ERR_EMPTY : bad ? TL_ERR_NON_FINITE : TL_OK;
    float a, aref = base == TL_OK ? tl_ref_absmean_scale(w, n) : 0.0f;
    int8_t *t = malloc(cap), *tr = malloc(cap);
    float *v = malloc(cap * sizeof *v), *vr = malloc(cap * sizeof *vr);

    /* AbsMean */
    memset(&a, FILL, sizeof a);
    tl_status s = tl_absmean_scale(w, n, &a);
    REQUIRE(s == base);
    if (s == TL_OK) {
        REQUIRE(tl__f2u(a) == tl__f2u(aref));
        REQUIRE(isfinite(a) && a >= TL_EPS);
    } else {
        REQUIRE(untouched(&a, sizeof a, FILL));
    }

    /* signs */
    memset(&a, FILL, sizeof a), memset(t, FILL, cap);
    s = tl_ternary_signs(w, n, t, &a);
    REQUIRE(s == base);
    if (s == TL_OK) {
        tl_ref_ternary_signs(w, n, aref, tr);
        REQUIRE(tl__f2u(a) == tl__f2u(aref) && memcmp(t, tr, n) == 0);
    } else {
        REQUIRE(untouched(&a, sizeof a, FILL) && untouched(t, cap, FILL));
    }

    /* values, with the scale and without, and in place */
    memset(&a, FILL, sizeof a), memset(v, FILL, cap * sizeof *v);
    s = tl_ternary_values(w, n, v, &a);
    REQUIRE(s == base);
    if (s == TL_OK) {
        tl_ref_ternary_values(w, n, aref, vr);
        REQUIRE(tl__f2u(a) == tl__f2u(aref) && memcmp(v, vr, n * sizeof *v) == 0);
        memset(v, FILL, cap * sizeof *v);
        REQUIRE(tl_ternary_values(w, n, v, NULL) == TL_OK && memcmp(v, vr, n * sizeof *v) == 0);
        memcpy(v, w, n * sizeof *v);
        REQUIRE(tl_ternary_values(v, n, v, NULL) == TL_OK && memcmp(v, vr, n * sizeof *v) == 0);
    } else {
        REQUIRE(untouched(&a, sizeof a, FILL) && untouched(v, cap * sizeof *v, FILL));
    }

    /* LSQ with the given scale: values and trits, values only, trits only, in place */
    int bad_alpha = !(isfinite(lsq_alpha) && lsq_alpha > 0.0f);
    memset(v, FILL, cap * sizeof *v), memset(t, FILL, cap);
    s = tl_ternarize_lsq(w, n, lsq_alpha, v, t);
    if (n == 0)
        REQUIRE(s == TL_ERR_EMPTY);
    else if (bad_alpha && bad)
        REQUIRE(s == TL_ERR_ALPHA || s == TL_ERR_NON_FINITE);
    else
        REQUIRE(s == (bad_alpha ? TL_ERR_ALPHA : bad ? TL_ERR_NON_FINITE : TL_OK));
    if (s == TL_OK) {
        tl_ref_ternarize_lsq(w, n, lsq_alpha, vr, tr);
        REQUIRE(memcmp(v, vr, n * sizeof *v) == 0 && memcmp(t, tr, n) == 0);
        for (size_t i = 0; i < n; i++) REQUIRE(tl__f2u(v[i]) != TL__SIGN_MASK); /* "+ 0" drops -0.0 */
        memset(v, FILL, cap * sizeof *v);
        REQUIRE(tl_ternarize_lsq(w, n, lsq_alpha, v, NULL) == TL_OK && memcmp(v, vr, n * sizeof *v) == 0);
        memset(t, FILL, cap);
        REQUIRE(tl_ternarize_lsq(w, n, lsq_alpha, NULL, t) == TL_OK && memcmp(t, tr, n) == 0);
        memcpy(v, w, n * sizeof *v), memset(t, FILL, cap);
        REQUIRE(tl_ternarize_lsq(v, n, lsq_alpha, v, t) == TL_OK && memcmp(v, vr, n * sizeof *v) == 0 &&
                memcmp(t, tr, n) == 0);
    } else {
        REQUIRE(untouched(v, cap * sizeof *v, FILL) && untouched(t, cap, FILL));
    }
    REQUIRE(tl_ternarize_lsq(w, n, lsq_alpha, NULL, NULL) == (n ? TL_ERR_NULL : TL_ERR_EMPTY));

    /* deadzone statistics */
    int bad_band = !(isfinite(band) && band >= 0.0);
    tl_deadzone_stats st, sr;
    memset(&st, FILL, sizeof st), memset(&sr, 0, sizeof sr);
    s = tl_deadzone_stats_compute(w, n, band, &st);
    if (n == 0)
        REQUIRE(s == TL_ERR_EMPTY);
    else if (bad_band && bad)
        REQUIRE(s == TL_ERR_BAND || s == TL_ERR_NON_FINITE);
    else
        REQUIRE(s == (bad_band ? TL_ERR_BAND : bad ? TL_ERR_NON_FINITE : TL_OK));
    if (s == TL_OK) {
        tl_ref_deadzone_stats(w, n, band, &sr);
        REQUIRE(memcmp(&st, &sr, sizeof st) == 0);
        REQUIRE(st.n == n && st.n_neg + st.n_zero + st.n_pos == n && st.n_boundary <= n &&
                st.n_zero_inner <= n);
    } else {
        REQUIRE(untouched(&st, sizeof st, FILL));
    }
    free(t), free(tr), free(v), free(vr);
}

/* ---------------------------------------------------------------------------
 * Per row
 * ------------------------------------------------------------------------- */

/* Does status s belong to the errors the shape rules of tl_shape_rows_cols give? 0 when none
 * applies (then *rows and *cols are the split). */
static int shape_errors(const int64_t *shape, size_t ndim, size_t n, tl_status s, size_t *rows,
                        size_t *cols) {
    int rank = ndim < 2, neg = 0, zero = 0, over = 0;
    uint64_t prod = 1;
    for (size_t d = 0; d < ndim; d++) {
        neg |= shape[d] < 0;
        zero |= shape[d] == 0;
    }
    if (!neg && !zero)
        for (size_t d = 0; d < ndim && !over; d++) {
            if ((uint64_t)shape[d] > TL_MAX_ELEMENTS / prod)
                over = 1;
            else
                prod *= (uint64_t)shape[d];
        }
    if (zero) prod = 0;
    int mismatch = !neg && !over && prod != n, empty = n == 0;
    if (!(rank || neg || over || mismatch || empty)) {
        *rows = (size_t)shape[0], *cols = n / *rows;
        return 0;
    }
    REQUIRE((rank && s == TL_ERR_RANK) || (neg && s == TL_ERR_SHAPE) || (over && s == TL_ERR_OVERFLOW) ||
            (mismatch && s == TL_ERR_SHAPE) || (empty && s == TL_ERR_EMPTY));
    return 1;
}

static void check_per_row(const float *w, size_t n, const int64_t *shape, size_t ndim) {
    size_t rows = 0, cols = 0, r2 = 0, c2 = 0;
    tl_status s = tl_shape_rows_cols(shape, ndim, n, &r2, &c2);
    if (shape_errors(shape, ndim, n, s, &rows, &cols)) {
        /* the same refusal from every per-row function (nothing is written) */
        float al[8];
        int8_t t[8];
        float v[8];
        REQUIRE(tl_absmean_scale_per_row(w, n, shape, ndim, al) == s);
        REQUIRE(tl_ternary_signs_per_row(w, n, shape, ndim, t, al) == s);
        REQUIRE(tl_ternary_values_per_row(w, n, shape, ndim, v, al) == s);
        return;
    }
    REQUIRE(s == TL_OK && r2 == rows && c2 == cols);
    int bad = any_non_finite(w, n);
    float *al = malloc(rows * sizeof *al), *alr = malloc(rows * sizeof *alr),
          *al2 = malloc(rows * sizeof *al2);
    int8_t *t = malloc(n), *tr = malloc(n);
    float *v = malloc(n * sizeof *v), *vr = malloc(n * sizeof *vr);
    if (!bad)
        for (size_t r = 0; r < rows; r++) {
            alr[r] = tl_ref_absmean_scale(w + r * cols, cols);
            tl_ref_ternary_signs(w + r * cols, cols, alr[r], tr + r * cols);
            tl_ref_ternary_values(w + r * cols, cols, alr[r], vr + r * cols);
        }
    tl_status want = bad ? TL_ERR_NON_FINITE : TL_OK;
    REQUIRE(tl_absmean_scale_per_row(w, n, shape, ndim, al) == want);
    if (!bad) REQUIRE(memcmp(al, alr, rows * sizeof *al) == 0);
    memset(al2, FILL, rows * sizeof *al2);
    REQUIRE(tl_ternary_signs_per_row(w, n, shape, ndim, t, al2) == want);
    if (!bad) REQUIRE(memcmp(t, tr, n) == 0 && memcmp(al2, alr, rows * sizeof *al2) == 0);
    memset(al2, FILL, rows * sizeof *al2);
    REQUIRE(tl_ternary_values_per_row(w, n, shape, ndim, v, al2) == want);
    if (!bad) REQUIRE(memcmp(v, vr, n * sizeof *v) == 0 && memcmp(al2, alr, rows * sizeof *al2) == 0);
    memset(v, FILL, n * sizeof *v);
    REQUIRE(tl_ternary_values_per_row(w, n, shape, ndim, v, NULL) == want);
    if (!bad) REQUIRE(memcmp(v, vr, n * sizeof *v) == 0);

    /* the packed matrix made in one call: per row, and per tensor */
    if (rows <= 64) {
        tl_format f = (tl_format)(1 + (n + rows) % 3);
        for (int per_row = 0; per_row < 2; per_row++) {
            tl_matrix *m = NULL;
            s = tl_matrix_quantize(f, w, rows, cols, per_row, &m);
            REQUIRE(s == want && (s == TL_OK) == (m != NULL));
            if (m) {
                float a = per_row ? 0.0f : tl_ref_absmean_scale(w, n);
                int8_t *tq = malloc(n);
                REQUIRE(tl_matrix_unpack(m, tq, n) == TL_OK);
                if (per_row) {
                    REQUIRE(memcmp(tq, tr, n) == 0 &&
                            memcmp(tl_matrix_scales(m), alr, rows * sizeof *alr) == 0);
                } else {
                    tl_ref_ternary_signs(w, n, a, tr);
                    REQUIRE(memcmp(tq, tr, n) == 0);
                    for (size_t r = 0; r < rows; r++) REQUIRE(tl__f2u(tl_matrix_scales(m)[r]) == tl__f2u(a));
                }
                free(tq);
                tl_matrix_free(m);
                /* per tensor overwrote tr: recompute the per-row trits for the next pass */
                if (!per_row)
                    for (size_t r = 0; r < rows; r++)
                        tl_ref_ternary_signs(w + r * cols, cols, alr[r], tr + r * cols);
            }
            REQUIRE(tl_mem_live_bytes() == 0);
            /* again with one allocation failing: the matrix, its bytes, its scales or the scratch */
            m = NULL;
            tl_mem_fail_after(1 + (n + (size_t)per_row) % 5);
            tl_status s2 = tl_matrix_quantize(f, w, rows, cols, per_row, &m);
            tl_mem_fail_after(0);
            REQUIRE(s2 == want || s2 == TL_ERR_NO_MEMORY);
            REQUIRE((s2 == TL_OK) == (m != NULL));
            tl_matrix_free(m);
            REQUIRE(tl_mem_live_bytes() == 0);
        }
    }
    free(al), free(alr), free(al2), free(t), free(tr), free(v), free(vr);
}

/* ---------------------------------------------------------------------------
 * The case
 * ------------------------------------------------------------------------- */

#define HEADER 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    REQUIRE(tl_mem_live_bytes() == 0);
    uint32_t h = fnv(data, size);
    stream in = {data, size < HEADER ? size : HEADER, 0, h | 1u};
    uint8_t hd[HEADER];
    for (int i = 0; i < HEADER; i++) hd[i] = next(&in);
    const uint8_t *body = data + (size < HEADER ? size : HEADER);
    size_t body_len = size < HEADER ? 0 : size - HEADER;
    int mode = hd[0] & 0x7F;
    mode %= 5;

    /* the floats */
    size_t n = mode == 2 ? body_len : body_len / 4;
    float *w = malloc((n ? n : 1) * sizeof *w);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        if (mode == 2) {
            w[i] = ldexpf((float)(int8_t)body[i], (int)hd[1] - 140); /* 2^-140 .. 2^115 */
            continue;
        }
        memcpy(&u, body + 4 * i, 4);
        if (mode == 3) {
            unsigned ex = (unsigned)hd[1] % 248 + ((u >> 23) & 7u); /* 0 .. 254 */
            u = (u & ~TL__INF_BITS) | ex << 23;
        } else if (mode != 0 && (u & TL__INF_BITS) == TL__INF_BITS) {
            u &= ~0x40000000u;
        }
        w[i] = tl__u2f(u);
    }
    if (mode == 4 && n >= 2) {
        /* twice: the scale moves as the elements move */
        for (int iter = 0; iter < 2; iter++) {
            float a = tl_ref_absmean_scale(w, n);
            for (size_t i = 0; i < n; i++) {
                uint8_t b = next(&in);
                if (b % 3) continue;
                float e = a * ((b & 8) ? 1.5f : 0.5f);
                for (int k = (b >> 4) % 5; k > 0; k--) e = nextafterf(e, (b & 4) ? INFINITY : 0.0f);
                w[i] = (b & 128) ? -e : e;
            }
        }
    }
    if ((hd[0] & 0x80) && n) {
        static const uint32_t bad[4] = {0x7FC00000u, 0x7F800000u, 0xFF800000u, 0xFFC00001u};
        uint32_t at = next32(&in);
        w[at % n] = tl__u2f(bad[(at >> 24) % 4]);
    }

    /* the LSQ scale and the band */
    uint32_t ab;
    memcpy(&ab, hd + 2, 4);
    float lsq_alpha = tl__u2f(ab);
    if ((hd[15] & 1) && n && !any_non_finite(w, n)) {
        lsq_alpha = tl_ref_absmean_scale(w, n);
        for (int k = hd[2] % 4; k > 0; k--) lsq_alpha = nextafterf(lsq_alpha, (hd[3] & 1) ? INFINITY : 0.0f);
    }
    double band;
    memcpy(&band, hd + 6, 8);
    if (hd[15] & 2) band = hd[6] / 400.0; /* 0 .. 0.6375: inner 0.5 - band crosses 0 */

    check_per_tensor(w, n, lsq_alpha, band);
    REQUIRE(tl_mem_live_bytes() == 0);

    /* the shape: rank 0..4; a valid split of n, or dimensions from the stream */
    int64_t shape[4] = {0, 0, 0, 0};
    size_t ndim = hd[14] % 5;
    if ((hd[14] / 5) % 4 != 3 && n) {
        size_t left = n;
        for (size_t d = 0; d + 1 < ndim; d++) {
            /* a divisor of what is left, picked by the stream */
            size_t divs[64], nd = 0;
            for (size_t q = 1; q <= left && nd < 64; q++)
                if (left % q == 0) divs[nd++] = q;
            size_t q = divs[next(&in) % nd];
            shape[d] = (int64_t)q, left /= q;
        }
        if (ndim) shape[ndim - 1] = (int64_t)left;
    } else {
        for (size_t d = 0; d < ndim; d++) {
            uint8_t b = next(&in);
            shape[d] = b == 0x7F   ? (int64_t)1 << 40
                       : b == 0x80 ? INT64_MIN
                       : b == 0x7E ? INT64_MAX
                                   : (int8_t)b;
        }
    }
    check_per_row(w, n, shape, ndim);
    REQUIRE(tl_mem_live_bytes() == 0 && tl_mem_live_blocks() == 0);
    free(w);
    return 0;
}
