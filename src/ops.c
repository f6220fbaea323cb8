/* ops.c — the float row operations the model runtimes share (model.c's layers, lm.c's
 * transformer): one definition of each, so an MLP's RMSNorm and a transformer's are the same
 * numbers. */
#include <math.h>

#include "internal.h"
#include "simd.h"

/* The float32 rule of the reference; when the mean square overflows float32 (inputs past about
 * 1.8e19), the scale is computed in double instead of becoming 0. */
int tl__rms_norm(float *x, size_t n, float eps, const float *w) {
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float ms = (float)(ss / (double)n);
    if (isfinite(ms)) {
        float inv = 1.0f / sqrtf(ms + eps);
        for (size_t i = 0; i < n; i++) x[i] = x[i] * inv * (w ? w[i] : 1.0f);
    } else {
        double inv = 1.0 / sqrt(ss / (double)n + eps);
        for (size_t i = 0; i < n; i++) x[i] = (float)(x[i] * inv * (w ? w[i] : 1.0f));
    }
    return tl__first_non_finite(x, n) != n;
}

float tl__silu(float x) { return x / (1.0f + expf(-x)); }

void tl__softmax(float *x, size_t n) {
    float mx = x[0];
    for (size_t i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += x[i] = expf(x[i] - mx);
    for (size_t i = 0; i < n; i++) x[i] = (float)(x[i] / sum);
}

/* sum_i a[i] * b[i] in float32, as 4 interleaved partial sums (lane i % 4) added (0 + 1) + (2 + 3)
 * at the end: the order of the SIMD loop, so every build gives the same bits. */
float tl__dot_f32(const float *a, const float *b, size_t n) {
    size_t i = 0;
#if TL_SIMD
    v128_t s = wasm_f32x4_splat(0.0f);
    for (; i + 4 <= n; i += 4) s = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
    float l[4];
    wasm_v128_store(l, s);
#else
    float l[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) l[k] = l[k] + a[i + k] * b[i + k];
#endif
    for (int k = 0; i < n; i++, k++) l[k] = l[k] + a[i] * b[i];
    return (l[0] + l[1]) + (l[2] + l[3]);
}

/* The float GEMVs (the LM head: vocab x hidden, read once per token) take four rows at a time,
 * a quarter of the matrix apart: rows r, r + q, r + 2q, r + 3q (q = rows / 4), so that the four rows
 * read are four long sequential streams through the whole matrix, which the hardware prefetchers
 * follow. Four adjacent rows are instead short streams that end after one row (3 KiB at 768
 * columns) and the prefetchers start again at every group: 8192 x 768 float32 measured 1.95 ms that
 * way against 0.82-1.2 ms (up to 31 GB/s, the machine's read bandwidth) this way. Rows past 4q go
 * one by one. Every row is computed as tl__dot_f32 does: the order of the rows changes no bits. */
/* Weight j of a row as a float, for each table type (the scalar paths and the SIMD tails). */
static inline float tl__w_f32(const void *w, size_t j) { return ((const float *)w)[j]; }
static inline float tl__w_f16(const void *w, size_t j) { return tl__f16_to_float(((const uint16_t *)w)[j]); }
static inline float tl__w_i8(const void *w, size_t j) { return (float)((const int8_t *)w)[j]; }

/* tl__dot_f32(row as floats, x, cols) bit for bit, the row read through `at`: column c into lane
 * c % 4, the lanes added (0 + 1) + (2 + 3). */
static inline float tl__dot_at(const void *row, float (*at)(const void *, size_t), const float *x, size_t cols) {
    float l[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (size_t c = 0; c < cols; c++) l[c % 4] = l[c % 4] + at(row, c) * x[c];
    return (l[0] + l[1]) + (l[2] + l[3]);
}

#if TL_SIMD
/* The end of a group of four rows ws[k] (out[r + k q]): columns i..cols - 1 into the lanes of s_k
 * (column j into lane j % 4, as tl__dot_f32 does), then the lanes added (0 + 1) + (2 + 3), times
 * scale[r + k q] when there are scales. */
static inline void tl__quarter_out(float *out, size_t r, size_t q, const float *scale, v128_t s0, v128_t s1,
                                   v128_t s2, v128_t s3, const void *const ws[4], float (*at)(const void *, size_t),
                                   size_t i, size_t cols, const float *x) {
    float l[4][4];
    wasm_v128_store(l[0], s0), wasm_v128_store(l[1], s1), wasm_v128_store(l[2], s2), wasm_v128_store(l[3], s3);
    for (int k = 0; k < 4; k++) {
        for (size_t j = i; j < cols; j++) l[k][j % 4] = l[k][j % 4] + at(ws[k], j) * x[j];
        float v = (l[k][0] + l[k][1]) + (l[k][2] + l[k][3]);
        out[r + k * q] = scale ? scale[r + k * q] * v : v;
    }
}
#endif

/* out[r] = tl__dot_f32(w + r * cols, x, cols) for r < rows, bit for bit. */
void tl__gemv_f32(const float *w, size_t rows, size_t cols, const float *x, float *out) {
    size_t r = 0;
#if TL_SIMD
    const size_t q = rows / 4;
    for (size_t i0 = 0; i0 < q; i0++) {
        const float *w0 = w + i0 * cols, *w1 = w0 + q * cols, *w2 = w1 + q * cols, *w3 = w2 + q * cols;
        v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
        size_t i = 0;
        for (; i + 4 <= cols; i += 4) {
            v128_t xv = wasm_v128_load(x + i);
            s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(w0 + i), xv));
            s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_v128_load(w1 + i), xv));
            s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(wasm_v128_load(w2 + i), xv));
            s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(wasm_v128_load(w3 + i), xv));
        }
        tl__quarter_out(out, i0, q, NULL, s0, s1, s2, s3, (const void *const[4]){w0, w1, w2, w3}, tl__w_f32, i,
                        cols, x);
    }
    r = rows / 4 * 4;
#endif
    for (; r < rows; r++) out[r] = tl__dot_f32(w + r * cols, x, cols);
}

/* tl__gemv_f32 of a float16 table (binary16 bits, finite): out[r] = dot(row r as floats, x) with the
 * same bits as tl__gemv_f32 over a float32 table of those values; each value widened as
 * tl__f16_to_float does (bits into a binary32 exponent field, one multiply by 2^112). */
#if TL_SIMD
/* four i32 lanes of sign-extended binary16 bits (read with the sign extension: one instruction
 * where two widenings of a whole vector take three) -> binary32 fields (shifted left 13, the sign
 * copies above the exponent cleared): 2^-112 times each value, exactly (binary16 subnormals become
 * binary32 subnormals) */
static inline v128_t tl__f16x4(v128_t v) { return wasm_v128_and(wasm_i32x4_shl(v, 13), wasm_i32x4_splat((int32_t)0x8FFFE000u)); }
/* s += the 8 values at p times x0, x1 (lanes i..i+3 then i+4..i+7), x0 and x1 being 2^112 times x:
 * each product is the real product of the value and x, so it rounds to the same float, and the
 * multiply by 2^112 is one per 8 columns of 4 rows instead of one per weight. Both changes:
 * 1.14-1.25x at 4096 and 32768 x 2560 (writing the fields with 16-bit shifts and two interleaves
 * instead measured 0.65-0.83x). */
#define TL__F16_STEP(s, p, F)                                                                                \
    do {                                                                                                     \
        s = wasm_f32x4_add(s, wasm_f32x4_mul(F(tl__f16x4(wasm_i32x4_load16x4(p))), x0));                    \
        s = wasm_f32x4_add(s, wasm_f32x4_mul(F(tl__f16x4(wasm_i32x4_load16x4((p) + 4))), x1));              \
    } while (0)
/* F: the fields as they are (x0, x1 scaled), or times 2^112 first where |x| >= 2^15 (2^112 x could
 * overflow; x0, x1 as they are) */
#define TL__F16_AS_IS(v) (v)
#define TL__F16_SCALED(v) wasm_f32x4_mul((v), k)
#endif

void tl__gemv_f16(const uint16_t *w, size_t rows, size_t cols, const float *x, float *out) {
    size_t r = 0;
#if TL_SIMD
    const size_t q = rows / 4;
    float mx = 0.0f;
    for (size_t c = 0; c < cols; c++) mx = fabsf(x[c]) > mx ? fabsf(x[c]) : mx;
    const int big = !(mx < 0x1p15f);
    const v128_t k = wasm_f32x4_splat(0x1p112f);
    for (size_t i0 = 0; i0 < q; i0++) {
        const uint16_t *w0 = w + i0 * cols, *w1 = w0 + q * cols, *w2 = w1 + q * cols, *w3 = w2 + q * cols;
        v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
        size_t i = 0;
        if (!big)
            for (; i + 8 <= cols; i += 8) {
                const v128_t x0 = wasm_f32x4_mul(wasm_v128_load(x + i), k), x1 = wasm_f32x4_mul(wasm_v128_load(x + i + 4), k);
                TL__F16_STEP(s0, w0 + i, TL__F16_AS_IS); TL__F16_STEP(s1, w1 + i, TL__F16_AS_IS);
                TL__F16_STEP(s2, w2 + i, TL__F16_AS_IS); TL__F16_STEP(s3, w3 + i, TL__F16_AS_IS);
            }
        else
            for (; i + 8 <= cols; i += 8) {
                const v128_t x0 = wasm_v128_load(x + i), x1 = wasm_v128_load(x + i + 4);
                TL__F16_STEP(s0, w0 + i, TL__F16_SCALED); TL__F16_STEP(s1, w1 + i, TL__F16_SCALED);
                TL__F16_STEP(s2, w2 + i, TL__F16_SCALED); TL__F16_STEP(s3, w3 + i, TL__F16_SCALED);
            }
        tl__quarter_out(out, i0, q, NULL, s0, s1, s2, s3, (const void *const[4]){w0, w1, w2, w3}, tl__w_f16, i,
                        cols, x);
    }
    r = rows / 4 * 4;
#undef TL__F16_STEP
#undef TL__F16_AS_IS
#undef TL__F16_SCALED
#endif
    for (; r < rows; r++) out[r] = tl__dot_at(w + r * cols, tl__w_f16, x, cols);
}

/* out[r] = scales[r] x dot(row r of int8 values as floats, x), the dot with tl__dot_f32's bits. */
#if TL_SIMD
/* int32 lanes v (|v| < 2^22) -> exact floats: v added to the bits of 1.5 * 2^23 makes the float
 * 1.5 * 2^23 + v, from which 1.5 * 2^23 is subtracted. Written with integer adds so that clang 14
 * cannot fold the widening into a sitofp from int16, which the wasm backend lowers to 16 scalar
 * conversions per 16 weights (2.5-3.5x slower at 8192 x 768). */
static inline v128_t tl__f32_small(v128_t v) {
    return wasm_f32x4_sub(wasm_i32x4_add(v, wasm_i32x4_splat(0x4B400000)), wasm_f32x4_splat(12582912.0f));
}
/* s += the 16 int8 weights at p (as floats) times x0..x3, lanes i..i+3 first: the chain's order;
 * the weights read 8 at a time with their widening to int16 (one instruction each, where widening
 * the high half of a vector takes two) */
#define TL__I8_STEP(s, p)                                                                                    \
    do {                                                                                                     \
        v128_t lo_ = wasm_i16x8_load8x8(p), hi_ = wasm_i16x8_load8x8((p) + 8);                            \
        s = wasm_f32x4_add(s, wasm_f32x4_mul(tl__f32_small(wasm_i32x4_extend_low_i16x8(lo_)), x0));        \
        s = wasm_f32x4_add(s, wasm_f32x4_mul(tl__f32_small(wasm_i32x4_extend_high_i16x8(lo_)), x1));       \
        s = wasm_f32x4_add(s, wasm_f32x4_mul(tl__f32_small(wasm_i32x4_extend_low_i16x8(hi_)), x2));        \
        s = wasm_f32x4_add(s, wasm_f32x4_mul(tl__f32_small(wasm_i32x4_extend_high_i16x8(hi_)), x3));       \
    } while (0)
#endif
void tl__gemv_i8(const int8_t *w, const float *scales, size_t rows, size_t cols, const float *x, float *out) {
    size_t r = 0;
#if TL_SIMD
    const size_t q = rows / 4;
    for (size_t i0 = 0; i0 < q; i0++) {
        const int8_t *w0 = w + i0 * cols, *w1 = w0 + q * cols, *w2 = w1 + q * cols, *w3 = w2 + q * cols;
        v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
        size_t i = 0;
        for (; i + 16 <= cols; i += 16) {
            const v128_t x0 = wasm_v128_load(x + i), x1 = wasm_v128_load(x + i + 4), x2 = wasm_v128_load(x + i + 8),
                         x3 = wasm_v128_load(x + i + 12);
            TL__I8_STEP(s0, w0 + i);
            TL__I8_STEP(s1, w1 + i);
            TL__I8_STEP(s2, w2 + i);
            TL__I8_STEP(s3, w3 + i);
        }
        tl__quarter_out(out, i0, q, scales, s0, s1, s2, s3, (const void *const[4]){w0, w1, w2, w3}, tl__w_i8, i,
                        cols, x);
    }
    r = rows / 4 * 4;
#undef TL__I8_STEP
#endif
    for (; r < rows; r++) out[r] = scales[r] * tl__dot_at(w + r * cols, tl__w_i8, x, cols);
}

/* Attention's two products over the cached positions j < len (rows `stride` floats apart):
 * scores[j] = tl__dot_f32(q, k + j stride, d) * scale, four positions at a time (four independent
 * chains of the same lane sums: the same bits, where one dot at a time waits on its adds); and
 * o = sum_j p[j] v_j, each element from 0 by o = o + p[j] v_j[i] in the order of j (every build),
 * a block of o held in registers across all j. */
void tl__attn_scores(const float *q, const float *k, size_t stride, size_t len, size_t d, float scale, float *scores) {
    size_t j = 0;
#if TL_SIMD
    if (d % 4 == 0)
        for (; j + 4 <= len; j += 4) {
            const float *k0 = k + j * stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
            v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
            for (size_t i = 0; i < d; i += 4) {
                v128_t qi = wasm_v128_load(q + i);
                s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(qi, wasm_v128_load(k0 + i)));
                s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(qi, wasm_v128_load(k1 + i)));
                s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(qi, wasm_v128_load(k2 + i)));
                s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(qi, wasm_v128_load(k3 + i)));
            }
            float l[4][4];
            wasm_v128_store(l[0], s0), wasm_v128_store(l[1], s1), wasm_v128_store(l[2], s2), wasm_v128_store(l[3], s3);
            for (int r = 0; r < 4; r++) scores[j + r] = ((l[r][0] + l[r][1]) + (l[r][2] + l[r][3])) * scale;
        }
#endif
    for (; j < len; j++) scores[j] = tl__dot_f32(q, k + j * stride, d) * scale;
}

void tl__weighted_rows(const float *p, const float *v, size_t stride, size_t n, size_t d, float *o) {
    size_t i = 0;
#if TL_SIMD
    for (; i + 16 <= d; i += 16) {
        v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < n; j++) {
            if (p[j] == 0.0f) continue;
            const float *vj = v + j * stride + i;
            v128_t s = wasm_f32x4_splat(p[j]);
            a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(s, wasm_v128_load(vj)));
            a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(s, wasm_v128_load(vj + 4)));
            a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(s, wasm_v128_load(vj + 8)));
            a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(s, wasm_v128_load(vj + 12)));
        }
        wasm_v128_store(o + i, a0), wasm_v128_store(o + i + 4, a1);
        wasm_v128_store(o + i + 8, a2), wasm_v128_store(o + i + 12, a3);
    }
#endif
    for (; i < d; i++) {
        float a = 0.0f;
        for (size_t j = 0; j < n; j++)
            if (p[j] != 0.0f) a = a + p[j] * v[j * stride + i];
        o[i] = a;
    }
}
