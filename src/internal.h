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

/* Record the detail of an error (printf-style: what and where) for tl_error_detail, and return s. */
tl_status tl__fail(tl_status s, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The core's allocator (mem.c): 16-byte aligned, counted. Use these, never malloc/free. */
void *tl__malloc(size_t size);
void *tl__calloc(size_t count, size_t size);
void tl__free(void *p);

/* Sum of |w[i]| in the documented fixed order (8 double lanes); NaN/inf propagate. */
double tl__abs_sum(const float *w, size_t n);

/* alpha from a finite sum of n absolute values: max(fl(sum) / fl(n), EPS). */
float tl__absmean_from_sum(double sum, size_t n);

/* (float)x, saturating to +-inf outside the float range (a plain cast is undefined there). */
float tl__to_float_sat(double x);

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

/* ---------------------------------------------------------------------------
 * Packed matrices (pack.c, matrix.c, kernels.c)
 * ------------------------------------------------------------------------- */

struct tl_matrix {
    tl_format format;
    size_t rows, cols;
    size_t row_bytes;   /* packed bytes per row */
    size_t row_weights; /* weights per row including padding (whole blocks) */
    uint8_t *data;      /* rows * row_bytes, 16-byte aligned */
    float *scales;      /* rows */
    /* Built on the first sparse product: the trits column by column in the i2 code layout
     * (column c holds the codes of all rows, rows padded to 64), for column-wise updates. */
    uint8_t *colmajor;
    size_t col_bytes;
};

uint8_t tl__tq1_encode(const uint8_t c[5]);
tl_status tl__validate_packed(tl_format f, const uint8_t *in, size_t rows, size_t cols);
void tl__pack_rows(tl_format f, const int8_t *trits, size_t rows, size_t cols, uint8_t *out);

/* Decode packed row r of m into m->row_weights trits (padding decodes to 0). */
void tl__decode_row(const tl_matrix *m, size_t r, int8_t *out);

/* The scalar reference kernels, on unpacked trits (rows x cols) and per-row scales;
 * same outputs as the public kernels (acc and/or out may be NULL). */
void tl_ref_matmul_binary(const int8_t *t, const float *scales, size_t rows, size_t cols, const uint8_t *x,
                          size_t batch, int32_t *acc, float *out);
void tl_ref_matmul_sparse(const int8_t *t, const float *scales, size_t rows, size_t cols, const uint32_t *idx,
                          const uint32_t *offsets, size_t batch, int32_t *acc, float *out);
void tl_ref_matmul_i8(const int8_t *t, const float *scales, size_t rows, size_t cols, const int8_t *x,
                      size_t batch, const float *x_scales, int32_t *acc, float *out);
void tl_ref_matmul_f32(const int8_t *t, const float *scales, size_t rows, size_t cols, const float *x,
                       size_t batch, float *out);
void tl_ref_quantize_activations_i8(const float *x, size_t cols, size_t batch, int8_t *xq, float *scales);

#endif
