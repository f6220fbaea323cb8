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

/* out[r] = tl__dot_f32(w + r * cols, x, cols) for r < rows, bit for bit, four rows at a time (four
 * independent chains instead of one: the adds' latency no longer bounds the loop). */
void tl__gemv_f32(const float *w, size_t rows, size_t cols, const float *x, float *out) {
    size_t r = 0;
#if TL_SIMD
    for (; r + 4 <= rows; r += 4) {
        const float *w0 = w + r * cols, *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
        size_t i = 0;
        for (; i + 4 <= cols; i += 4) {
            v128_t xv = wasm_v128_load(x + i);
            s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(w0 + i), xv));
            s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_v128_load(w1 + i), xv));
            s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(wasm_v128_load(w2 + i), xv));
            s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(wasm_v128_load(w3 + i), xv));
        }
        float l[4][4];
        wasm_v128_store(l[0], s0), wasm_v128_store(l[1], s1), wasm_v128_store(l[2], s2), wasm_v128_store(l[3], s3);
        const float *ws[4] = {w0, w1, w2, w3};
        for (int k = 0; k < 4; k++) {
            for (size_t j = i, q = 0; j < cols; j++, q++) l[k][q] = l[k][q] + ws[k][j] * x[j];
            out[r + k] = (l[k][0] + l[k][1]) + (l[k][2] + l[k][3]);
        }
    }
#endif
    for (; r < rows; r++) out[r] = tl__dot_f32(w + r * cols, x, cols);
}

/* tl__gemv_f32 of a float16 table (binary16 bits, finite): out[r] = dot(row r as floats, x) with the
 * same bits as tl__gemv_f32 over a float32 table of those values; each value widened as
 * tl__f16_to_float does (bits into a binary32 exponent field, one multiply by 2^112). */
#if TL_SIMD
/* four i32 lanes of sign-extended binary16 bits -> floats: shifted left 13, the sign copies above the
 * exponent cleared (the sign stays in bit 31), one multiply by 2^112 (tl__f16_to_float's rule) */
static inline v128_t tl__f16x4(v128_t v) {
    return wasm_f32x4_mul(wasm_v128_and(wasm_i32x4_shl(v, 13), wasm_i32x4_splat((int32_t)0x8FFFE000u)), wasm_f32x4_splat(0x1p112f));
}
#endif
void tl__gemv_f16(const uint16_t *w, size_t rows, size_t cols, const float *x, float *out) {
    size_t r = 0;
#if TL_SIMD
    if (cols % 8 == 0)
        for (; r + 4 <= rows; r += 4) {
            const uint16_t *w0 = w + r * cols;
            v128_t s[4] = {wasm_f32x4_splat(0.0f), wasm_f32x4_splat(0.0f), wasm_f32x4_splat(0.0f), wasm_f32x4_splat(0.0f)};
            for (size_t i = 0; i < cols; i += 8) {
                v128_t x0 = wasm_v128_load(x + i), x1 = wasm_v128_load(x + i + 4);
                for (int k = 0; k < 4; k++) {
                    v128_t h = wasm_v128_load(w0 + k * cols + i);
                    /* lanes i..i+3 then i+4..i+7: each lane's chain adds in the order of the float kernel */
                    s[k] = wasm_f32x4_add(s[k], wasm_f32x4_mul(tl__f16x4(wasm_i32x4_extend_low_i16x8(h)), x0));
                    s[k] = wasm_f32x4_add(s[k], wasm_f32x4_mul(tl__f16x4(wasm_i32x4_extend_high_i16x8(h)), x1));
                }
            }
            for (int k = 0; k < 4; k++) {
                float l[4];
                wasm_v128_store(l, s[k]);
                out[r + k] = (l[0] + l[1]) + (l[2] + l[3]);
            }
        }
#endif
    for (; r < rows; r++) {
        float l[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        size_t i = 0;
        for (; i + 4 <= cols; i += 4)
            for (int k = 0; k < 4; k++) l[k] = l[k] + tl__f16_to_float(w[r * cols + i + k]) * x[i + k];
        for (int k = 0; i < cols; i++, k++) l[k] = l[k] + tl__f16_to_float(w[r * cols + i]) * x[i];
        out[r] = (l[0] + l[1]) + (l[2] + l[3]);
    }
}

/* out[r] = scales[r] x dot(row r of int8 values as floats, x), the dot with tl__dot_f32's bits. */
void tl__gemv_i8(const int8_t *w, const float *scales, size_t rows, size_t cols, const float *x, float *out) {
    size_t r = 0;
#if TL_SIMD
    if (cols % 16 == 0)
        for (; r + 4 <= rows; r += 4) {
            const int8_t *w0 = w + r * cols;
            v128_t s[4] = {wasm_f32x4_splat(0.0f), wasm_f32x4_splat(0.0f), wasm_f32x4_splat(0.0f), wasm_f32x4_splat(0.0f)};
            for (size_t i = 0; i < cols; i += 16) {
                v128_t xs[4] = {wasm_v128_load(x + i), wasm_v128_load(x + i + 4), wasm_v128_load(x + i + 8), wasm_v128_load(x + i + 12)};
                for (int k = 0; k < 4; k++) {
                    v128_t q = wasm_v128_load(w0 + k * cols + i);
                    v128_t lo = wasm_i16x8_extend_low_i8x16(q), hi = wasm_i16x8_extend_high_i8x16(q);
                    v128_t f[4] = {wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(lo)),
                                   wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(lo)),
                                   wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(hi)),
                                   wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(hi))};
                    for (int j = 0; j < 4; j++) s[k] = wasm_f32x4_add(s[k], wasm_f32x4_mul(f[j], xs[j]));
                }
            }
            for (int k = 0; k < 4; k++) {
                float l[4];
                wasm_v128_store(l, s[k]);
                out[r + k] = scales[r + k] * ((l[0] + l[1]) + (l[2] + l[3]));
            }
        }
#endif
    for (; r < rows; r++) {
        float l[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        size_t i = 0;
        for (; i + 4 <= cols; i += 4)
            for (int k = 0; k < 4; k++) l[k] = l[k] + (float)w[r * cols + i + k] * x[i + k];
        for (int k = 0; i < cols; i++, k++) l[k] = l[k] + (float)w[r * cols + i] * x[i];
        out[r] = scales[r] * ((l[0] + l[1]) + (l[2] + l[3]));
    }
}

/* y[i] += a * x[i] */
void tl__axpy_f32(float *y, float a, const float *x, size_t n) {
    size_t i = 0;
#if TL_SIMD
    v128_t av = wasm_f32x4_splat(a);
    for (; i + 4 <= n; i += 4)
        wasm_v128_store(y + i, wasm_f32x4_add(wasm_v128_load(y + i), wasm_f32x4_mul(av, wasm_v128_load(x + i))));
#endif
    for (; i < n; i++) y[i] = y[i] + a * x[i];
}
