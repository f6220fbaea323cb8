/*
 * tilelli.h — ternary (BitNet b1.58) weights: quantize, pack and multiply.
 *
 * The one public header of the C core. Every symbol carries the tl_ prefix.
 *
 * Conventions
 *   - Every function that can fail returns a tl_status: TL_OK (0) or a negative
 *     error code. tl_is_error(s) is the one predicate; tl_status_name(s) and
 *     tl_status_message(s) describe it. The core never aborts, exits, prints or
 *     allocates behind the caller's back (the quantizers allocate nothing).
 *   - On error, output buffers hold nothing valid: per-tensor functions validate
 *     before writing; per-row functions may have written earlier rows. Bindings
 *     never hand such buffers to their callers.
 *   - Tensors are float32, row-major. "Per row" means the first axis is the row
 *     axis and everything after it is flattened into columns, as the reference
 *     (shared/reference/ternary.py) does with w.reshape(w.size(0), -1).
 *   - Element counts are size_t and at most TL_MAX_ELEMENTS, so that every byte
 *     size the library computes fits a 32-bit wasm address space.
 *
 * Semantics follow the reference exactly:
 *   alpha  = max(fl(fl(sum |w|) / fl(n)), 1e-5f)          (AbsMean, EPS clamp)
 *   trit   = clamp(roundeven(fl(w / alpha)), -1, 1)       (division, not w * (1/alpha))
 *   value  = trit * alpha                                 (-0.0 kept where the reference keeps it)
 * The sum of |w| is accumulated in double in a fixed order (see tl_absmean_scale),
 * so every build (native, wasm scalar, wasm SIMD) returns bit-identical results.
 */
#ifndef TILELLI_H
#define TILELLI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TILELLI_VERSION_MAJOR 0
#define TILELLI_VERSION_MINOR 1
#define TILELLI_VERSION_PATCH 0

/* The reference's EPS: the smallest AbsMean scale. */
#define TL_EPS 1e-5f

/* Largest element count of any tensor (2^30 - 1): n * 4 bytes fits in 32 bits. */
#define TL_MAX_ELEMENTS ((size_t)0x3FFFFFFF)

/*
 * Status codes. Values are stable: they cross the wasm boundary and the JS
 * error codes are their names without the TL_ERR_ prefix (tl_status_name).
 */
typedef enum tl_status {
    TL_OK = 0,
    TL_ERR_NULL = -1,       /* a required pointer is NULL */
    TL_ERR_EMPTY = -2,      /* the tensor has no elements */
    TL_ERR_NON_FINITE = -3, /* the input holds a NaN or an infinity */
    TL_ERR_RANK = -4,       /* a per-row operation on a tensor of fewer than 2 dimensions */
    TL_ERR_SHAPE = -5,      /* shape product differs from the length, or a negative dimension */
    TL_ERR_OVERFLOW = -6,   /* a size exceeds TL_MAX_ELEMENTS (or overflows while computed) */
    TL_ERR_BAND = -7,       /* deadzone band negative or not finite */
    TL_ERR_ALPHA = -8,      /* a given scale is not finite or not > 0 */
    TL_ERR_NO_MEMORY = -9,  /* an allocation failed */
    TL_ERR_ARGUMENT = -10   /* any other invalid argument (wrong type or value, from bindings) */
} tl_status;

/* Nonzero when s is an error. */
static inline int tl_is_error(tl_status s) { return s < 0; }

/* Stable upper-case name without prefix, e.g. "NON_FINITE"; "UNKNOWN" for unknown values. */
const char *tl_status_name(tl_status s);

/* One-sentence description of the status, e.g. "the input holds a NaN or an infinity". */
const char *tl_status_message(tl_status s);

/* Library version as MAJOR * 10000 + MINOR * 100 + PATCH. */
uint32_t tl_version(void);

/* How this copy was compiled: TL_BUILD_SIMD128 when built with wasm SIMD128. */
#define TL_BUILD_SIMD128 1u
uint32_t tl_build_flags(void);

/*
 * Resolve a shape for a per-row operation: rows = shape[0], cols = the product
 * of the other dimensions. Fails with TL_ERR_RANK when ndim < 2, TL_ERR_SHAPE on
 * a negative dimension or when the product is not n, TL_ERR_OVERFLOW when the
 * product exceeds TL_MAX_ELEMENTS, TL_ERR_EMPTY when n is 0.
 */
tl_status tl_shape_rows_cols(const int64_t *shape, size_t ndim, size_t n, size_t *rows, size_t *cols);

/* ---------------------------------------------------------------------------
 * AbsMean scale
 * ------------------------------------------------------------------------- */

/*
 * Per-tensor scale: *alpha = max(mean(|w|), TL_EPS), as ternary.absmean_scale.
 * Where the float sum itself would overflow (values near FLT_MAX), the mean is
 * taken in double instead, so alpha stays finite (PyTorch returns inf there).
 * The sum is a double-precision sum in 8 interleaved lanes (element i goes to
 * lane i % 8, lanes combined as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))), rounded
 * to float, then divided by (float)n in float: the order is part of the spec so
 * that every build agrees to the bit.
 * Errors: NULL, EMPTY, OVERFLOW, NON_FINITE.
 */
tl_status tl_absmean_scale(const float *w, size_t n, float *alpha);

/*
 * Per-row scales, as ternary.absmean_scale_per_row: alphas[r] for each of the
 * rows = shape[0] rows (alphas must hold that many floats).
 * Errors: NULL, EMPTY, RANK, SHAPE, OVERFLOW, NON_FINITE.
 */
tl_status tl_absmean_scale_per_row(const float *w, size_t n, const int64_t *shape, size_t ndim,
                                   float *alphas);

/* ---------------------------------------------------------------------------
 * Ternarization (forward values; the STE gradient is the identity)
 * ------------------------------------------------------------------------- */

/*
 * ternary.ternary_values: out[i] = clamp(round(w[i] / alpha), -1, 1) * alpha with
 * the per-tensor scale; *alpha (optional, may be NULL) receives the scale.
 * out may alias w. Errors: NULL, EMPTY, OVERFLOW, NON_FINITE.
 */
tl_status tl_ternary_values(const float *w, size_t n, float *out, float *alpha);

/* ternary.ternary_values_per_row; alphas (optional) receives shape[0] scales. */
tl_status tl_ternary_values_per_row(const float *w, size_t n, const int64_t *shape, size_t ndim, float *out,
                                    float *alphas);

/*
 * ternary.ternary_signs: trits[i] in {-1, 0, +1} and the per-tensor scale in
 * *alpha (required). Errors: NULL, EMPTY, OVERFLOW, NON_FINITE.
 */
tl_status tl_ternary_signs(const float *w, size_t n, int8_t *trits, float *alpha);

/* Per-row trits, and shape[0] scales in alphas (required). */
tl_status tl_ternary_signs_per_row(const float *w, size_t n, const int64_t *shape, size_t ndim, int8_t *trits,
                                   float *alphas);

/*
 * ternary.ternarize_lsq forward with a given scale: out[i] = q * alpha + 0.0f
 * where q = clamp(round(w[i] / alpha), -1, 1). alpha is used as given (the
 * reference's LearnableScale.value() clamp at EPS is the caller's business).
 * trits (optional, may be NULL) receives q. out may alias w.
 * Errors: NULL, EMPTY, OVERFLOW, ALPHA (not finite or not > 0), NON_FINITE.
 */
tl_status tl_ternarize_lsq(const float *w, size_t n, float alpha, float *out, int8_t *trits);

/* ---------------------------------------------------------------------------
 * Deadzone diagnostics
 * ------------------------------------------------------------------------- */

/* The reference's six numbers, plus the counts behind the fractions. */
typedef struct tl_deadzone_stats {
    double alpha;           /* per-tensor AbsMean scale (a float32 value) */
    double frac_neg;        /* fraction rounding to -1 */
    double frac_zero;       /* fraction rounding to 0 */
    double frac_pos;        /* fraction rounding to +1 */
    double frac_boundary;   /* fraction with | |w/alpha| - 0.5 | < band (strict) */
    double frac_zero_inner; /* fraction with w/alpha != 0 and |w/alpha| < 0.5 - band */
    uint64_t n_neg, n_zero, n_pos, n_boundary, n_zero_inner;
    uint64_t n; /* element count */
} tl_deadzone_stats;

/*
 * ternary.deadzone_stats(w, band). The band is compared in float32, as PyTorch
 * compares a float32 tensor with a Python float: (float)band and (float)(0.5 - band).
 * Errors: NULL, EMPTY, OVERFLOW, BAND (negative or not finite), NON_FINITE.
 */
tl_status tl_deadzone_stats_compute(const float *w, size_t n, double band, tl_deadzone_stats *out);

/* ---------------------------------------------------------------------------
 * Memory (for bindings: the wasm module exports these so JS can place buffers)
 * ------------------------------------------------------------------------- */

/* malloc/free; tl_alloc returns NULL (never aborts) when memory is exhausted or size is 0. */
void *tl_alloc(size_t size);
void tl_free(void *p);

#ifdef __cplusplus
}
#endif

#endif /* TILELLI_H */
