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
