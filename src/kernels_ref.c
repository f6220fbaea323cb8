/* kernels_ref.c — the scalar reference kernels: plain loops over unpacked trits.
 * kernels.c must give the same int32 accumulators (and float outputs, except the float
 * kernel's summation order) in every build. */
#include <math.h>

#include "internal.h"

static void ref_emit(const float *scales, size_t rows, size_t b, size_t r, int32_t a, float xs, int32_t *acc,
                     float *out) {
    if (acc) acc[b * rows + r] = a;
    if (out) out[b * rows + r] = ((float)a * scales[r]) / xs;
}

void tl_ref_matmul_binary(const int8_t *t, const float *scales, size_t rows, size_t cols, const uint8_t *x,
                          size_t batch, int32_t *acc, float *out) {
    size_t xb = (cols + 7) / 8;
    for (size_t b = 0; b < batch; b++)
        for (size_t r = 0; r < rows; r++) {
            int32_t a = 0;
            for (size_t c = 0; c < cols; c++)
                if ((x[b * xb + c / 8] >> (c % 8)) & 1) a += t[r * cols + c];
            ref_emit(scales, rows, b, r, a, 1.0f, acc, out);
        }
}

void tl_ref_matmul_sparse(const int8_t *t, const float *scales, size_t rows, size_t cols, const uint32_t *idx,
                          const uint32_t *offsets, size_t batch, int32_t *acc, float *out) {
    for (size_t b = 0; b < batch; b++)
        for (size_t r = 0; r < rows; r++) {
            int32_t a = 0;
            for (uint32_t i = offsets[b]; i < offsets[b + 1]; i++) a += t[r * cols + idx[i]];
            ref_emit(scales, rows, b, r, a, 1.0f, acc, out);
        }
}

void tl_ref_matmul_i8(const int8_t *t, const float *scales, size_t rows, size_t cols, const int8_t *x,
                      size_t batch, const float *x_scales, int32_t *acc, float *out) {
    for (size_t b = 0; b < batch; b++)
        for (size_t r = 0; r < rows; r++) {
            int32_t a = 0;
            for (size_t c = 0; c < cols; c++) a += t[r * cols + c] * x[b * cols + c];
            ref_emit(scales, rows, b, r, a, x_scales ? x_scales[b] : 1.0f, acc, out);
        }
}

void tl_ref_matmul_f32(const int8_t *t, const float *scales, size_t rows, size_t cols, const float *x,
                       size_t batch, float *out) {
    for (size_t b = 0; b < batch; b++)
        for (size_t r = 0; r < rows; r++) {
            float a = 0.0f;
            for (size_t c = 0; c < cols; c++) {
                if (t[r * cols + c] > 0) a += x[b * cols + c];
                if (t[r * cols + c] < 0) a -= x[b * cols + c];
            }
            out[b * rows + r] = a * scales[r];
        }
}

void tl_ref_quantize_activations_i8(const float *x, size_t cols, size_t batch, int8_t *xq, float *scales) {
    for (size_t b = 0; b < batch; b++) {
        const float *v = x + b * cols;
        float mx = 0.0f;
        for (size_t c = 0; c < cols; c++) mx = fabsf(v[c]) > mx ? fabsf(v[c]) : mx;
        float s = 127.0f / (mx > 1e-5f ? mx : 1e-5f);
        for (size_t c = 0; c < cols; c++) {
            float q = rintf(v[c] * s);
            xq[b * cols + c] = (int8_t)(q < -128.0f ? -128.0f : q > 127.0f ? 127.0f : q);
        }
        scales[b] = s;
    }
}
