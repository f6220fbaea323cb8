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
 *     module (README.md, "Exactly the reference's numbers") does with w.reshape(w.size(0), -1).
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

/* Widest layer of a trainable network (tl_net_create): 2^20. */
#define TL_MAX_WIDTH ((uint32_t)0x100000)

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
    TL_ERR_ARGUMENT = -10,  /* any other invalid argument (wrong type or value, from bindings) */
    TL_ERR_FORMAT = -11,    /* packed bytes are not valid for their format, or an unknown format */
    TL_ERR_SIZE = -12,      /* a buffer's length does not match the shapes */
    TL_ERR_TRIT = -13,      /* a trit is not -1, 0 or +1 */
    TL_ERR_FREED = -14,     /* an object was used after free (raised by bindings) */
    TL_ERR_PARSE = -15,     /* a file is malformed: truncated, bad header, offsets out of range, ... */
    TL_ERR_VERSION = -16,   /* a file of a format version this library does not read */
    TL_ERR_DTYPE = -17      /* a tensor dtype this library does not read, or the wrong one for its use */
} tl_status;

/* Nonzero when s is an error. */
static inline int tl_is_error(tl_status s) { return s < 0; }

/* Stable upper-case name without prefix, e.g. "NON_FINITE"; "UNKNOWN" for unknown values. */
const char *tl_status_name(tl_status s);

/* One-sentence description of the status, e.g. "the input holds a NaN or an infinity". */
const char *tl_status_message(tl_status s);

/*
 * The detail of the last error a function reported with one: what and where, e.g.
 * "layers[2]: unknown key \"activation\"" or "byte 24: the header length 900 runs past the end
 * of the 60-byte file". Empty when the failing function gave none. tl_error_clear() empties it;
 * call it before a call whose detail you want (a detail stays until the next one is recorded).
 */
const char *tl_error_detail(void);
void tl_error_clear(void);

/* Library version as MAJOR * 10000 + MINOR * 100 + PATCH. */
uint32_t tl_version(void);

/* How this copy was compiled: TL_BUILD_SIMD128 when built with wasm SIMD128, plus
 * TL_BUILD_RELAXED_SIMD when built with relaxed SIMD too (dist/tilelli-relaxed.wasm), plus
 * TL_BUILD_THREADS in the threaded builds (dist/tilelli-*-mt.wasm). */
#define TL_BUILD_SIMD128 1u
#define TL_BUILD_RELAXED_SIMD 2u
#define TL_BUILD_THREADS 4u /* the threaded builds (wasm atomics, shared memory) */
uint32_t tl_build_flags(void);

/* The build's known-answer test: the int8 x ternary product (the i2 path that uses relaxed SIMD's
 * dot in the relaxed build) on fixed inputs that reach the kernels' extremes, against plain sums.
 * Returns 0 when every sum is exact; else the count of wrong sums (tl_error_detail names the
 * first: vector, row, got, expected), or a negative tl_status when a call failed. The JS loader
 * runs it on every instance of the relaxed build: an engine can validate relaxed SIMD and still
 * compute it wrongly (Node 20's baseline compiler on x86). */
int32_t tl_build_selftest(void);

/* Threads. The threaded WebAssembly builds (dist/tilelli-simd-mt.wasm, dist/tilelli-relaxed-mt.wasm)
 * split the rows of a product over workers that the JS side starts (init({ threads })).
 * tl_threads_set(n) asks for n threads, the calling one included, and returns how many are in use:
 * at most 1 + the workers that are running, and always 1 in the other builds and natively.
 * tl_threads() is the number in use. Results are the same bits for every thread count. */
uint32_t tl_threads_set(uint32_t n);
uint32_t tl_threads(void);

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
 * trits receives q; either out or trits may be NULL, not both. out may alias w.
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
 * Packed ternary formats (byte layouts: docs/FORMATS.md and src/formats.c)
 *
 * A packed matrix is rows x cols trits, row-major, each row packed on its own
 * (padded to the format's block), plus one float32 scale per row.
 * ------------------------------------------------------------------------- */

typedef enum tl_format {
    TL_FORMAT_I2 = 1,      /* 2 bits per weight, code = trit + 1, blocks of 64 weights in 16 bytes */
    TL_FORMAT_TQ1 = 2,     /* 5 trits per byte in base 3 (1.6 bits), blocks of 80 weights in 16 bytes */
    TL_FORMAT_BITPLANE = 3 /* a positive and a negative 1-bit plane per row, rows padded to 128 bits */
} tl_format;

/* The formats by name, as files and the JS API spell them ("i2", "tq1", "bitplane"):
 * tl_format_name gives NULL for a value that names no format; tl_format_from_name reads len
 * bytes (no NUL needed) and gives TL_ERR_FORMAT for an unknown name (TL_ERR_NULL for a NULL
 * out, or a NULL name with len > 0). tl_format_count and tl_format_at list every format
 * (tl_format_at gives 0 past the end), so callers need not retype the list. */
const char *tl_format_name(tl_format f);
tl_status tl_format_from_name(const char *name, size_t len, tl_format *out);
size_t tl_format_count(void);
tl_format tl_format_at(size_t i);

/* Version of the byte layouts above; bumped on any change. */
#define TL_FORMAT_VERSION 1

/* Bytes of one packed row of cols weights (0 cols is EMPTY). */
tl_status tl_format_row_bytes(tl_format f, size_t cols, size_t *bytes);

/* Bytes of a packed rows x cols matrix (rows * row bytes), with overflow checks. */
tl_status tl_format_bytes(tl_format f, size_t rows, size_t cols, size_t *bytes);

/* Pack trits (rows x cols, each -1, 0 or +1: else TL_ERR_TRIT) into out (exactly
 * tl_format_bytes bytes: else TL_ERR_SIZE). Padding is written as zero trits. */
tl_status tl_pack(tl_format f, const int8_t *trits, size_t rows, size_t cols, uint8_t *out, size_t out_bytes);

/* Unpack; the bytes are validated first (TL_ERR_FORMAT for codes that are no trit,
 * overlapping planes or nonzero padding), so unpack(pack(t)) == t and nothing else passes. */
tl_status tl_unpack(tl_format f, const uint8_t *in, size_t in_bytes, size_t rows, size_t cols, int8_t *trits);

/* ---------------------------------------------------------------------------
 * Packed matrices: an object that owns its packed bytes and scales
 * ------------------------------------------------------------------------- */

typedef struct tl_matrix tl_matrix;

/* From trits and scales (nscales = 1: one per-tensor scale for every row; or rows). */
tl_status tl_matrix_from_trits(tl_format f, const int8_t *trits, size_t rows, size_t cols, const float *scales,
                               size_t nscales, tl_matrix **out);

/* From packed bytes (validated as tl_unpack does) and scales. */
tl_status tl_matrix_from_packed(tl_format f, const uint8_t *data, size_t bytes, size_t rows, size_t cols,
                                const float *scales, size_t nscales, tl_matrix **out);

/* Quantize float weights (rows x cols) as the reference does, per tensor (per_row = 0,
 * ternary_signs) or per row (ternary_signs_per_row), and pack them: one call. */
tl_status tl_matrix_quantize(tl_format f, const float *w, size_t rows, size_t cols, int per_row, tl_matrix **out);

/* Free a matrix (NULL is a no-op). */
void tl_matrix_free(tl_matrix *m);

tl_format tl_matrix_format(const tl_matrix *m);
size_t tl_matrix_rows(const tl_matrix *m);
size_t tl_matrix_cols(const tl_matrix *m);
/* The packed bytes in the file layout (docs/FORMATS.md), tl_matrix_data_bytes of them, copied into
 * out (n must be that many): a matrix may hold them in another order in memory, for its kernels. */
tl_status tl_matrix_packed(const tl_matrix *m, uint8_t *out, size_t n);
size_t tl_matrix_data_bytes(const tl_matrix *m);
/* The rows scales, owned by m. */
const float *tl_matrix_scales(const tl_matrix *m);

/* The trits of m (n must be rows * cols). */
tl_status tl_matrix_unpack(const tl_matrix *m, int8_t *trits, size_t n);

/* Sparse vectors. A product of one to a few vectors (the int8, binary and float kernels below) reads
 * only the nonzero columns of a vector that has few of them (a ReLU's output, a digit's blank pixels:
 * int8 and binary vectors with at most 6/8 of their values nonzero, 5/8 in the relaxed build whose
 * rows are faster; float ones 5/8; in larger batches, those at most 3/8 nonzero; int8 vectors
 * whose nonzero values share one magnitude, binary
 * ones among them, at any density: they only add codes, about 2x faster than the rows or the
 * bitplane popcounts), through a column-major copy of the trits: the same results, bit for bit, in
 * about the time of its nonzero share of the weights. The copy (16 bytes per column per
 * 64 rows: as many bytes as i2 rows) is built on the first product that takes it and kept with m
 * (tl_mem_live_bytes counts it); tl_matmul_sparse uses it too. allow = 0 frees it and keeps every
 * dense product on the rows (for memory); 1, the default, allows it again. */
tl_status tl_matrix_set_column_copy(tl_matrix *m, int allow);

/* ---------------------------------------------------------------------------
 * Kernels: Y[b][r] = sum_c x[b][c] * trit[r][c], for b < batch (batch 1 is a GEMV)
 *
 * Each writes the int32 accumulators to acc and/or the float outputs to out (either may
 * be NULL, not both), both batch x rows, batch-major; out_len must be batch * rows.
 * Float outputs: binary and sparse: acc * scale[r]; int8: (acc * scale[r]) / x_scale[b];
 * float: (acc / u) * scale[r], acc the exact integer sum of x in fixed point (below).
 * Kernels may allocate scratch memory (TL_ERR_NO_MEMORY when that fails).
 * ------------------------------------------------------------------------- */

/* Bytes of one bit-packed activation vector of cols bits: ceil(cols / 8). Bit j of byte k
 * is x[8k + j]; bits past cols are ignored. */
size_t tl_binary_row_bytes(size_t cols);

/* Binary activations (x: batch vectors of tl_binary_row_bytes each, x_bytes in all). */
tl_status tl_matmul_binary(const tl_matrix *m, const uint8_t *x, size_t x_bytes, size_t batch, int32_t *acc,
                           float *out, size_t out_len);

/* Sparse binary activations as active column indices, CSR style: vector b's indices are
 * idx[offsets[b] .. offsets[b+1]); offsets has batch + 1 entries, offsets[0] = 0,
 * offsets[batch] = nidx, non-decreasing; every index < cols (a repeated index counts twice). */
tl_status tl_matmul_sparse(const tl_matrix *m, const uint32_t *idx, size_t nidx, const uint32_t *offsets,
                           size_t batch, int32_t *acc, float *out, size_t out_len);

/* Widest matrix the int8 product takes (2^24 - 1 columns): |acc| <= 128 * cols fits int32. */
#define TL_MAX_I8_COLS ((size_t)0xFFFFFF)

/* int8 activations (x_len = batch * cols); x_scales: batch scales s (finite, > 0) from
 * tl_quantize_activations_i8 (out = acc * scale[r] / s), or NULL for s = 1.
 * TL_ERR_OVERFLOW past TL_MAX_I8_COLS columns. */
tl_status tl_matmul_i8(const tl_matrix *m, const int8_t *x, size_t x_len, size_t batch, const float *x_scales,
                       int32_t *acc, float *out, size_t out_len);

/* float32 activations (x_len = batch * cols). Each vector is held in fixed point: q = nearest(x * u),
 * u the largest power of two with max |x| * u < 2^23 (so each x within max |x| * 2^-23); the sum of
 * trit * q is exact, and out = fl(fl(sum / u) * scale[r]). No float multiply per weight; every build
 * returns the same bits, and a vector's outputs are the same bits at any batch (docs/FORMATS.md). */
tl_status tl_matmul_f32(const tl_matrix *m, const float *x, size_t x_len, size_t batch, float *out, size_t out_len);

/* The BitNet b1.58 per-token activation quantizer, per vector of cols:
 * s = 127 / max(max|x|, 1e-5), xq = clamp(round_half_even(x * s), -128, 127).
 * x_len = batch * cols; xq gets x_len values, scales gets batch values of s. */
tl_status tl_quantize_activations_i8(const float *x, size_t x_len, size_t batch, int8_t *xq, float *scales);

/* Float activations through the int8 kernel in one call: each vector quantized exactly as
 * tl_quantize_activations_i8 does (s_b = 127 / max(max|x|, 1e-5f), x_q = clamp(rintf(x * s_b))),
 * then out = fl(fl(fl(acc) * scale[r]) / s_b): the same numbers as tl_quantize_activations_i8
 * followed by tl_matmul_i8 with those scales. x is batch * cols floats, out batch * rows.
 * Errors: NULL, EMPTY, SIZE, OVERFLOW (as tl_matmul_i8), NON_FINITE (NaN or inf in x). */
tl_status tl_matmul_f32_i8(const tl_matrix *m, const float *x, size_t x_len, size_t batch, float *out,
                           size_t out_len);

/* ---------------------------------------------------------------------------
 * safetensors checkpoints (src/safetensors.c)
 *
 * The file: an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping tensor
 * names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the byte after
 * the header) plus an optional "__metadata__" object of string values, then the data. Every
 * byte is validated when the file is opened: header length within the file, strict JSON,
 * known dtypes, shape product x dtype size == end - begin, dimensions without overflow, offsets
 * inside the data, and no two tensors overlapping. Malformed input is TL_ERR_PARSE (a dtype not in
 * tl_dtype TL_ERR_DTYPE), never a read past the buffer; tl_error_detail says what and where (the
 * tensor's name, the byte offset in the file, what was expected and what was found). Every
 * byte-sized dtype of the safetensors spec opens: checkpoints as PyTorch writes them (I64 buffers,
 * BOOL masks, F64) are listed whole, and a use that needs floats reads what it needs.
 * ------------------------------------------------------------------------- */

typedef enum tl_dtype {
    /* floats (F8_E4M3: OCP E4M3FN, no infinities, S.1111.111 is NaN; F8_E8M0: 2^(e - 127), 0xFF NaN) */
    TL_DTYPE_F32 = 1, TL_DTYPE_F16 = 2, TL_DTYPE_BF16 = 3, TL_DTYPE_F64 = 6,
    TL_DTYPE_F8_E4M3 = 14, TL_DTYPE_F8_E5M2 = 15, TL_DTYPE_F8_E8M0 = 16,
    /* integers and booleans (read as float32 values) */
    TL_DTYPE_I8 = 4, TL_DTYPE_U8 = 5, TL_DTYPE_I64 = 7, TL_DTYPE_I32 = 8, TL_DTYPE_I16 = 9,
    TL_DTYPE_U64 = 10, TL_DTYPE_U32 = 11, TL_DTYPE_U16 = 12, TL_DTYPE_BOOL = 13,
    /* complex64: listed, not read as float32 */
    TL_DTYPE_C64 = 17
} tl_dtype;

typedef struct tl_safetensors tl_safetensors;

/* Parse and validate a whole file held in bytes[0..len). The handle refers to bytes, which
 * must outlive it (it copies names and shapes, not the data). */
tl_status tl_safetensors_open(const uint8_t *bytes, size_t len, tl_safetensors **out);
void tl_safetensors_free(tl_safetensors *st);

/* Number of tensors (the __metadata__ entry is not a tensor). Tensors keep the file's order. */
size_t tl_safetensors_count(const tl_safetensors *st);

/* Tensor i: its name (UTF-8, not NUL-terminated, name_len bytes), dtype, rank and shape (an
 * array of ndim values owned by st), and its data (nbytes bytes inside the file). Any output
 * pointer may be NULL. */
tl_status tl_safetensors_tensor(const tl_safetensors *st, size_t i, const char **name, size_t *name_len,
                                tl_dtype *dtype, size_t *ndim, const int64_t **shape, const uint8_t **data,
                                size_t *nbytes);

/* Index of the tensor with this name, or TL_ERR_ARGUMENT when there is none. */
tl_status tl_safetensors_find(const tl_safetensors *st, const char *name, size_t name_len, size_t *index);

/* Tensor i as float32 (n must be its element count): F16, BF16 and the F8 formats widened
 * exactly; F64 rounded to nearest (saturating to +-inf); integers rounded to the nearest float;
 * BOOL as 0 or 1. C64 is TL_ERR_DTYPE (its detail names the tensor). */
tl_status tl_safetensors_read_f32(const tl_safetensors *st, size_t i, float *out, size_t n);

/* The __metadata__ object: count of entries, and entry j's key and value (UTF-8, not
 * NUL-terminated). */
size_t tl_safetensors_metadata_count(const tl_safetensors *st);
tl_status tl_safetensors_metadata(const tl_safetensors *st, size_t j, const char **key, size_t *key_len,
                                  const char **value, size_t *value_len);

/* ---------------------------------------------------------------------------
 * Packed models (src/model.c; the file layout: docs/FORMATS.md, "The packed model file")
 *
 * model.c owns the file: its reader (tl_model_load), its writer (tl_model_save) and the ways a
 * model is made (a builder, an architecture over a checkpoint, a network, another model). Every
 * layer type is one row of a table in model.c. Errors of the readers and builders come with a
 * detail naming what and where (tl_error_detail).
 * ------------------------------------------------------------------------- */

/* The model file version this library writes; it reads 1 and 2. */
#define TL_MODEL_VERSION 2

/* Activation precision of a linear layer. */
typedef enum tl_precision {
    TL_PRECISION_DEFAULT = 0, /* as the layer says (a file, an architecture): float unless "int8" */
    TL_PRECISION_FLOAT = 1,   /* float32 activations: the float kernel, the reference's numbers */
    TL_PRECISION_INT8 = 2     /* BitNet per-token absmax int8 activations (no norm), the int8 kernel */
} tl_precision;

typedef struct tl_model tl_model;

/* Validate and load a packed model file (nothing is re-quantized; the model keeps its own copy
 * of what it needs, so bytes may be freed afterwards). TL_ERR_PARSE for any malformed part,
 * TL_ERR_VERSION for a file of a later version, TL_ERR_FORMAT for invalid packed weights,
 * TL_ERR_NON_FINITE for a NaN or infinite float parameter. */
tl_status tl_model_load(const uint8_t *bytes, size_t len, tl_model **out);
/* tl_model_load without copying the weights: bytes (allocated with tl_alloc, so 16-byte aligned;
 * TL_ERR_ARGUMENT otherwise) becomes the model's on success, its matrices use their packed bytes
 * where they lie in it, and tl_model_free frees it; the caller must not touch it again. On
 * failure bytes stays the caller's, unchanged. The same validation and errors as tl_model_load;
 * the model holds the file (header and float parameters included) instead of a copy of its
 * packed weights, so loading needs no room beyond the file for them. A file of which the model
 * uses little (more than 1 MiB and more than a quarter of it named by no layer) is not kept: the
 * weights are copied out of it and it is freed before this returns. */
tl_status tl_model_load_owned(uint8_t *bytes, size_t len, tl_model **out);
void tl_model_free(tl_model *m);
/* Nonzero when bytes start like a model file (its magic), to tell it from other files. */
int tl_model_is_file(const uint8_t *bytes, size_t len);

/* Serialize m as a model file (version TL_MODEL_VERSION): *bytes is allocated with tl_alloc
 * (free it with tl_free), *len bytes. tl_model_load of it gives the same model. */
tl_status tl_model_save(const tl_model *m, uint8_t **bytes, size_t *len);

/* A JSON description of m: {"input", "output", "layers": [{"type", "in", "out", ...fields, no
 * data}], "metadata"}; allocated with tl_alloc, *len bytes, not NUL-terminated. */
tl_status tl_model_describe(const tl_model *m, char **json, size_t *len);

size_t tl_model_input_size(const tl_model *m);
size_t tl_model_output_size(const tl_model *m);
size_t tl_model_layer_count(const tl_model *m);

/* What layer i is. Strings are owned by the model (NUL-terminated); absent ones are NULL. */
typedef struct tl_layer_info {
    const char *type;        /* "linear", "bitlinear", "relu", ... */
    const char *name;        /* the layer's name, or NULL */
    size_t in, out;          /* widths */
    tl_format format;        /* linear, bitlinear: the packed format; else 0 */
    const char *quantizer;   /* linear, bitlinear: "per_tensor", "per_row", "lsq", or NULL (unknown) */
    tl_precision precision;  /* linear, bitlinear: FLOAT or INT8; else DEFAULT */
    const tl_matrix *matrix; /* linear, bitlinear: the weights (owned by the model); else NULL */
    const float *bias;       /* out values, or NULL */
    const float *norm;       /* bitlinear's norm_weight / rmsnorm's weight (in values), or NULL */
} tl_layer_info;
tl_status tl_model_layer_info(const tl_model *m, size_t i, tl_layer_info *out);

/* Add (or replace) metadata entries: json is an object of strings. */
tl_status tl_model_set_metadata(tl_model *m, const char *json, size_t json_len);

/* Layer i's matrix (owned by the model), or NULL when the layer has none. */
const tl_matrix *tl_model_matrix(const tl_model *m, size_t i);

/* Set every linear layer's activation precision (FLOAT or INT8; bitlinear stays INT8). */
tl_status tl_model_set_precision(tl_model *m, tl_precision p);

/* tl_matrix_set_column_copy for every layer's matrix: 0 frees the sparse-vector copies and keeps
 * every product on the rows (the memory of a copy: as many bytes as the layer's i2 rows); 1, the
 * default, lets a layer whose input is mostly zeros (after a ReLU) build and use one. */
tl_status tl_model_set_column_copy(tl_model *m, int allow);

/* A copy of m with every matrix repacked in format f (trits and scales unchanged). */
tl_status tl_model_convert(const tl_model *m, tl_format f, tl_model **out);

/* Run a batch: x holds batch x input floats, out receives batch x output floats.
 * TL_ERR_NON_FINITE when x holds a NaN or infinity, or when a layer's output overflows to one
 * (possible only with absurd weights); out then holds nothing valid. The model keeps a workspace
 * sized for the largest batch it has run (no allocation per call once warm): one model must not
 * run on two threads at once. */
tl_status tl_model_run(tl_model *m, const float *x, size_t x_len, size_t batch, float *out, size_t out_len);

/* Build a model layer by layer. Layer descriptions are JSON objects as in an architecture (a
 * "type" and its scalar fields: "name", "activations", "quantizer", "eps", "threshold", "k");
 * a linear or bitlinear layer takes its matrix (copied), and float parameters are staged by
 * name before the layer they belong to is added ("bias", "norm_weight"; rmsnorm's "weight"). */
typedef struct tl_model_builder tl_model_builder;
tl_status tl_model_builder_new(size_t input, tl_model_builder **out);
void tl_model_builder_free(tl_model_builder *b);
tl_status tl_model_builder_stage(tl_model_builder *b, const char *name, size_t name_len, const float *v, size_t n);
tl_status tl_model_builder_add(tl_model_builder *b, const char *json, size_t json_len, const tl_matrix *m);
/* The model (b is left empty, still to be freed). */
tl_status tl_model_builder_finish(tl_model_builder *b, tl_model **out);

/* An architecture over a checkpoint: arch is the JSON {"input", "layers": [...], "metadata"}
 * whose linear/bitlinear layers name their tensors ("weight", "bias", "norm_weight") and say how
 * to quantize ("quantizer": "per_tensor" | "per_row") and pack ("format", default f);
 * precision, when not DEFAULT, is set on every linear layer. Unknown keys are errors. */
tl_status tl_model_from_checkpoint(const tl_safetensors *st, const char *arch, size_t arch_len, tl_format f,
                                   tl_precision precision, tl_model **out);

/* ---------------------------------------------------------------------------
 * Training: multilayer perceptrons of ternary linear layers with the straight-through
 * estimator (src/train.c). Forward on ternarized weights, backward straight through to float32
 * shadow weights, then an optimizer step. PyTorch's semantics (test/fixtures/train/README.md).
 * ------------------------------------------------------------------------- */

typedef enum tl_quantizer {
    TL_QUANT_NONE = 0,       /* float32 weights (a baseline) */
    TL_QUANT_PER_TENSOR = 1, /* ternary.ternarize */
    TL_QUANT_PER_ROW = 2,    /* ternary.ternarize_per_row */
    TL_QUANT_LSQ = 3,        /* ternary.LearnableScale + ternarize_lsq: dout/dalpha = q */
    TL_QUANT_LSQ_PAPER = 4   /* LSQ with the paper's step-size gradient and clipping (Esser et al.) */
} tl_quantizer;

typedef enum tl_activation { TL_ACT_NONE = 0, TL_ACT_RELU = 1, TL_ACT_GELU = 2, TL_ACT_SILU = 3 } tl_activation;
typedef enum tl_loss { TL_LOSS_CROSS_ENTROPY = 1, TL_LOSS_MSE = 2 } tl_loss;
typedef enum tl_optimizer { TL_OPT_ADAM = 1, TL_OPT_ADAMW = 2, TL_OPT_SGD = 3 } tl_optimizer;
typedef enum tl_schedule { TL_SCHED_CONSTANT = 0, TL_SCHED_COSINE = 1 } tl_schedule;

typedef struct tl_net tl_net;

/* A network of nlayers linear layers, widths[0] inputs .. widths[nlayers] outputs, the
 * activation between layers (none after the last), biases, the quantizer on every layer.
 * Weights start as PyTorch's nn.Linear default (uniform in +-1/sqrt(in)) from seed; LSQ scales
 * start at each weight's AbsMean. Defaults: cross-entropy, Adam lr 1e-3 (0.9, 0.999, 1e-8). */
tl_status tl_net_create(uint32_t nlayers, const uint32_t *widths, tl_activation act, tl_quantizer quant,
                        uint64_t seed, tl_net **out);
void tl_net_free(tl_net *net);

tl_status tl_net_set_loss(tl_net *net, tl_loss loss);
/* Optimizer hyperparameters (weight_decay: L2 for Adam and SGD, decoupled for AdamW). Resets its state. */
tl_status tl_net_set_optimizer(tl_net *net, tl_optimizer opt, float lr, float beta1, float beta2, float eps,
                               float weight_decay, float momentum);
/* Learning rate schedule over total_steps: linear warmup for warmup_steps, then constant or cosine
 * decay to 0. */
tl_status tl_net_set_schedule(tl_net *net, tl_schedule schedule, uint32_t warmup_steps, uint32_t total_steps);
/* Tequila's deadzone bias (lambda > 0; 0 turns it off): ternary quantizers only. */
tl_status tl_net_set_tequila(tl_net *net, float lambda);

/* Layer k's parameters: weight [out x in], bias [out], alpha (LSQ only; others ignore it). */
tl_status tl_net_set_layer(tl_net *net, uint32_t k, const float *weight, const float *bias, float alpha);
tl_status tl_net_get_layer(const tl_net *net, uint32_t k, float *weight, float *bias, float *alpha);
/* The gradients of the last tl_net_gradients / tl_net_train_step. */
tl_status tl_net_get_grads(const tl_net *net, uint32_t k, float *weight, float *bias, float *alpha);

/* Loss and gradients of a batch (x: batch x widths[0]; labels: batch class indices for
 * cross-entropy, or targets: batch x outputs for MSE; the other NULL), no step. */
tl_status tl_net_gradients(tl_net *net, const float *x, size_t batch, const uint32_t *labels, const float *targets,
                           float *loss);
/* tl_net_gradients, then one optimizer step. A non-finite loss, gradient or updated value is
 * TL_ERR_NON_FINITE and changes nothing. The first step makes the arrays the step writes into
 * (3 x 4 bytes per parameter, as much as the optimizer's state), kept until tl_net_free. */
tl_status tl_net_train_step(tl_net *net, const float *x, size_t batch, const uint32_t *labels,
                            const float *targets, float *loss);
/* Outputs (logits) of the ternarized network: batch x outputs. */
tl_status tl_net_forward(tl_net *net, const float *x, size_t batch, float *out);
/* Steps taken so far, and the learning rate of the next one. */
uint32_t tl_net_steps(const tl_net *net);
float tl_net_lr(const tl_net *net);
uint32_t tl_net_layer_count(const tl_net *net);
/* widths[0 .. layers] of the network (layers + 1 values). */
tl_status tl_net_widths(const tl_net *net, uint32_t *widths, size_t n);

/* The trits (out x in) and per-row scales (out) of layer k as the forward uses them: the
 * network's quantizer on its shadow weights (a float32 network: ternarized per tensor). */
tl_status tl_net_layer_trits(const tl_net *net, uint32_t k, int8_t *trits, float *scales);
/* The reference's deadzone_stats of layer k's shadow weights. */
tl_status tl_net_deadzone_stats(const tl_net *net, uint32_t k, double band, tl_deadzone_stats *out);
/* Accuracy and mean cross-entropy of the ternarized network on n labelled inputs. */
tl_status tl_net_evaluate(tl_net *net, const float *x, size_t n, const uint32_t *labels, double *accuracy,
                          double *loss);

/* The packed model of the network: its linear layers (the forward's trits and scales, packed in
 * format f, and the biases) with the activation between them. A float32 network (quantizer none)
 * is ternarized per tensor (post-training quantization). */
tl_status tl_net_to_model(const tl_net *net, tl_format f, tl_model **out);
/* A network that computes what model m computes (linear layers with one activation between
 * them): shadow weights trit x s, chosen so that quantizer q (TL_QUANT_NONE: the quantizer the
 * model records, else per_tensor) gives back the same trits, and the same scales bit for bit when
 * they are AbsMean scales of the layer (as the quantizers make them); any other scale comes back
 * within an ulp or two. */
tl_status tl_net_from_model(const tl_model *m, tl_quantizer q, uint64_t seed, tl_net **out);

/* Training in epochs of seeded, shuffled mini-batches: the one loop that every binding drives.
 * x (n x inputs), labels (n classes, cross-entropy) or targets (n x outputs, MSE) are checked once
 * and must outlive the object. Each epoch shuffles the sample order with a xorshift32 stream
 * seeded once (seed's low 32 bits, 0 -> 0x9E3779B9), Fisher-Yates from the last index down. */
typedef struct tl_fit tl_fit;
tl_status tl_fit_new(tl_net *net, const float *x, size_t n, const uint32_t *labels, const float *targets,
                     size_t batch, uint64_t seed, tl_fit **out);
void tl_fit_free(tl_fit *f);
/* One optimizer step on the next mini-batch (the last one of an epoch may be smaller). */
tl_status tl_fit_step(tl_fit *f, float *loss);
/* Epochs completed, and the samples taken so far in the current epoch. */
uint32_t tl_fit_epoch(const tl_fit *f);
size_t tl_fit_position(const tl_fit *f);
/* Accuracy and loss of the current weights on the last mini-batch (whole = 0) or on the whole
 * data set (whole = 1); labelled data only. */
tl_status tl_fit_evaluate(tl_fit *f, int whole, double *accuracy, double *loss);

/* ---------------------------------------------------------------------------
 * Language models (src/lm.c): decoder-only transformers with ternary projections
 *
 * BitNet b1.58 (Hugging Face BitNetForCausalLM: squared ReLU, attn_sub_norm / ffn_sub_norm) and
 * Llama-style (SiLU) models from a Hugging Face config.json and a safetensors file with the same
 * tensor names; the numbers are docs/FORMATS.md's "Language models". Projections are quantized on
 * load with the reference's per-tensor AbsMean rule into format f; embeddings and norms stay
 * float32. Config keys read: vocab_size, hidden_size, intermediate_size, num_hidden_layers,
 * num_attention_heads, num_key_value_heads, head_dim, max_position_embeddings, rms_norm_eps,
 * rope_theta, hidden_act ("relu2" | "silu"), tie_word_embeddings, bos_token_id, eos_token_id,
 * tilelli_activations ("int8", the default, | "float"); others are ignored. Errors name the key or
 * the tensor (tl_error_detail).
 * ------------------------------------------------------------------------- */

typedef enum tl_lm_act { TL_LM_ACT_RELU2 = 1, TL_LM_ACT_SILU = 2 } tl_lm_act;

typedef struct tl_lm tl_lm;

/* context: the KV cache's length in tokens (0: min(max_position_embeddings, 2048)). The model
 * keeps its own copies: config and st may be freed afterwards. A packed file (tl_lm_save) keeps
 * its weights' format (f is for float checkpoints) and its config: config may then be NULL
 * (config_len 0). A Hugging Face BitNet checkpoint packed as bitnet-b1.58-2B-4T ships (config
 * "quantization_config": {"quant_method": "bitnet"}, mode "offline" by default) is read without
 * loss: each projection is U8 [rows / 4, cols], unpacked row k x rows / 4 + p in bits 2k of packed
 * row p, trit = code - 1, and its "<name>_scale" divides the output (linear_class "bitlinear", the
 * default: alpha = 1 / weight_scale) or multiplies it ("autobitlinear": alpha = weight_scale). */
tl_status tl_lm_load(const char *config, size_t config_len, const tl_safetensors *st, tl_format f, size_t context,
                     tl_lm **out);
/* tl_lm_load of the safetensors file in bytes (len bytes, 16-byte aligned from tl_alloc), which the
 * model takes on success: a packed file's projections and embedding/head tables (tl_lm_save's, in
 * the form the model holds them) are used where they lie, so the model holds the file and little
 * else (not a second copy of its weights). A Hugging Face packed checkpoint's projections (into i2,
 * with in % 64 == 0: the same bytes) are rewritten as i2 rows where they lie, and its tables too
 * when the model holds them as they are stored, or holds BF16 ones as float16 ("tilelli_embedding":
 * "float16"). A file it would use little of (float checkpoints, which are converted) is freed once
 * loaded. On failure the bytes stay the caller's (their contents unspecified: the projections may
 * have been rewritten in place). */
tl_status tl_lm_load_owned(const char *config, size_t config_len, uint8_t *bytes, size_t len, tl_format f,
                           size_t context, tl_lm **out);
void tl_lm_free(tl_lm *lm);

/* Feed n tokens at the current position (prefill or one decode step: the same numbers) and write
 * the logits of the last one (all = 0: vocab values) or of every one (all != 0: n x vocab).
 * TL_ERR_SIZE when the tokens do not fit the context or logits_len is wrong, TL_ERR_ARGUMENT for a
 * token id >= vocab. On error the position is unchanged. */
tl_status tl_lm_forward(tl_lm *lm, const uint32_t *tokens, size_t n, int all, float *logits, size_t logits_len);
/* Back to position 0 (an empty cache). */
void tl_lm_reset(tl_lm *lm);
/* The packed file of the model: a safetensors file (free it with tl_free) whose metadata say
 * "format": "tilelli-lm", "tilelli.weights" (the packed format) and "config" (config.json), with
 * each projection as "<name>.tilelli_packed" (U8, rows x row bytes) and "<name>.tilelli_scales"
 * (F32, rows), the norms float32 and the embedding/head tables in the form the model holds them
 * (F32, F16, or I8 with "<name>.tilelli_scales") under their Hugging Face names. The data start
 * 16-byte aligned, the packed projections first (whole 16-byte rows: each stays aligned), then the
 * float32 tensors, then the tables, so that tl_lm_load_owned uses them where they lie. tl_lm_load
 * of it gives the same model (the same trits and scales). */
tl_status tl_lm_save(const tl_lm *lm, uint8_t **bytes, size_t *len);
/* GGUF files (src/gguf.c; docs/FORMATS.md, "GGUF"): llama.cpp's BitNet architectures
 * ("bitnet-25": squared ReLU, as bitnet.cpp writes BitNet b1.58 2B4T; "bitnet", "bitnet-b1.58":
 * SiLU), the config from their "<arch>.*" metadata, llama.cpp's tensor names, projections in
 * TQ1_0, TQ2_0 or I2_S (bitnet.cpp's type 36, x86 layout) read without loss (trits and scales as
 * ggml dequantizes them; F32, F16 or BF16 projections are quantized on load into f), the other
 * tensors F32, F16 or BF16. The file is validated whole first (sizes in 64 bits, offsets,
 * overlaps): TL_ERR_PARSE / TL_ERR_VERSION / TL_ERR_DTYPE with a detail. Blocks of one row with
 * different scales are TL_ERR_FORMAT (tilelli keeps one scale per row). */
typedef enum tl_gguf_type { TL_GGUF_TQ1_0 = 34, TL_GGUF_TQ2_0 = 35, TL_GGUF_I2_S = 36 } tl_gguf_type;
/* Nonzero when bytes start like a GGUF file (its magic), to tell it from a safetensors file. */
int tl_lm_is_gguf(const uint8_t *bytes, size_t len);
tl_status tl_lm_load_gguf(const uint8_t *bytes, size_t len, tl_format f, size_t context, tl_lm **out);
/* The model as GGUF v3 (free it with tl_free): projections in type (TL_GGUF_*: TQ1_0 and TQ2_0
 * round each row's scale to float16 and need rows of whole 256-weight blocks; I2_S needs one scale
 * per tensor and whole 128-weight blocks, TL_ERR_ARGUMENT / TL_ERR_FORMAT otherwise), the other
 * tensors F32. flags TL_LM_GGUF_VOCAB adds a placeholder vocabulary ("<unk>", "<s>", "</s>", 256
 * byte tokens, then "t<id>") that llama.cpp-based runtimes need to load a file. */
#define TL_LM_GGUF_VOCAB 1u
tl_status tl_lm_save_gguf(const tl_lm *lm, uint32_t type, uint32_t flags, uint8_t **bytes, size_t *len);
size_t tl_lm_position(const tl_lm *lm);
size_t tl_lm_vocab_size(const tl_lm *lm);
size_t tl_lm_context(const tl_lm *lm);
/* FLOAT or INT8 activations for every projection from now on. */
tl_status tl_lm_set_precision(tl_lm *lm, tl_precision p);
/* The configuration as JSON (free it with tl_free), *len bytes. */
tl_status tl_lm_describe(const tl_lm *lm, char **json, size_t *len);

/* Draw a token from logits (n values): temperature 0 or top_k 1 is greedy (the first of the
 * largest); else softmax(logits / temperature) restricted to the top_k largest (0: all) and to the
 * smallest prefix of those with probability mass >= top_p (1: all), drawn with the xorshift32
 * stream in *state (advanced; 0 is seeded as 0x9E3779B9). Ties keep the lower id first. */
tl_status tl_lm_sample(const float *logits, size_t n, float temperature, size_t top_k, float top_p, uint32_t *state,
                       uint32_t *token);

/* ---------------------------------------------------------------------------
 * Memory (for bindings: the wasm module exports these so JS can place buffers)
 * ------------------------------------------------------------------------- */

/* Allocate and free 16-byte aligned blocks; tl_alloc returns NULL (never aborts) when memory is
 * exhausted or size is 0. Every allocation of the library goes through the same allocator. */
void *tl_alloc(size_t size);
void tl_free(void *p);

/* Bytes and blocks the library holds now (its objects, scratch, and tl_alloc blocks). */
size_t tl_mem_live_bytes(void);
size_t tl_mem_live_blocks(void);

/* Testing: make the n-th allocation from now fail (n = 0: never). */
void tl_mem_fail_after(size_t n);

#ifdef __cplusplus
}
#endif

#endif /* TILELLI_H */
