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

/* The known-answer test behind tl_build_selftest (selftest.c), with the product it checks given:
 * the C tests hand it a wrong one to see it fail. */
typedef tl_status (*tl__selftest_product)(const tl_matrix *m, const int8_t *x, size_t cols, int32_t *acc,
                                          size_t rows);
int32_t tl__selftest(tl__selftest_product product);

/* A safetensors dtype's name as the file spells it ("F32", "I64", ...), and whether its values
 * are floating point (safetensors.c). */
const char *tl__dtype_name(tl_dtype d);
int tl__dtype_is_float(tl_dtype d);
/* IEEE binary16 bits -> binary32 bits, exactly (safetensors.c; the GGUF reader shares it). */
uint32_t tl__f16_bits(uint32_t h);
/* binary16 bits -> float, exactly, for finite values (the language model's float16 tables hold no
 * infinity or NaN): the bits sign-extended and moved into a binary32 exponent field (the sign's
 * copies above the exponent cleared), the bias fixed by one multiply by 2^112, which also
 * normalizes subnormals; no branch and inline, so loops vectorize. */
static inline float tl__f16_to_float(uint16_t h) {
    return tl__u2f(((uint32_t)(int32_t)(int16_t)h << 13) & 0x8FFFE000u) * 0x1p112f;
}
/* float -> binary16 bits, rounded to nearest even (safetensors.c). */
uint16_t tl__f16_from_float(float f);

/* The safetensors writer (safetensors.c): n tensors in this order, data packed one after the
 * other, and nmeta __metadata__ entries (meta[2j] the key, meta[2j + 1] the value, NUL-terminated
 * UTF-8). The file in *out (tl__malloc'ed), *len bytes; tl_safetensors_open reads it back. */
typedef struct {
    const char *name;
    tl_dtype dtype;
    size_t ndim;
    uint64_t shape[2];
    const void *data;
    size_t nbytes;
    const tl_matrix *packed; /* or, instead of data: this matrix's packed bytes in the file layout */
} tl__st_entry;
tl_status tl__safetensors_write(const tl__st_entry *e, size_t n, const char *const *meta, size_t nmeta, uint8_t **out,
                                size_t *len);

/* The core's allocator (mem.c): 16-byte aligned, counted. Use these, never malloc/free. At least
 * TL__MALLOC_SLACK bytes after every block are readable (in the same allocation, never written). */
#define TL__MALLOC_SLACK 8
void *tl__malloc(size_t size);
void *tl__calloc(size_t count, size_t size);
void tl__free(void *p);
/* Room for one more element in a growable array (n used of *cap, each `size` bytes): doubles the
 * capacity, starting at `first`, when it is full. 0 when out of memory (the array is unchanged). */
int tl__array_grow(void **items, size_t n, size_t *cap, size_t size, size_t first);

/* Sum of |w[i]| in the documented fixed order (8 double lanes); NaN/inf propagate. */
double tl__abs_sum(const float *w, size_t n);

/* alpha from a finite sum of n absolute values: max(fl(sum) / fl(n), EPS). */
float tl__absmean_from_sum(double sum, size_t n);

/* (float)x, saturating to +-inf outside the float range (a plain cast is undefined there). */
float tl__to_float_sat(double x);

/* Index of the first NaN or infinity in w, or n when all are finite. */
size_t tl__first_non_finite(const float *w, size_t n);
/* tl_ternarize_lsq without its checks, for callers that hold finite w and a finite alpha > 0
 * (training's shadow weights): a slice of it gives the same values as the whole. */
void tl__ternarize(const float *w, size_t n, float alpha, float *out, int8_t *trits);

/* Float row operations shared by the model runtimes (ops.c). tl__rms_norm: x / sqrt(mean(x^2) +
 * eps) * w (w may be NULL) in place, the runtime's rule (docs/FORMATS.md); nonzero when an output
 * is not finite. tl__softmax: in place, max subtracted, sum in double. tl__dot_f32: 4 partial sums
 * (lane i % 4), the same bits in every build. */
int tl__rms_norm(float *x, size_t n, float eps, const float *w);
float tl__silu(float x);
void tl__softmax(float *x, size_t n);
float tl__dot_f32(const float *a, const float *b, size_t n);
void tl__gemv_f32(const float *w, size_t rows, size_t cols, const float *x, float *out);
/* tl__gemv_f32 over a float16 table (binary16 bits): the same bits as over its float32 values. */
void tl__gemv_f16(const uint16_t *w, size_t rows, size_t cols, const float *x, float *out);
/* out[r] = scales[r] * dot(int8 row r as floats, x) (the dot: tl__dot_f32's bits). */
void tl__gemv_i8(const int8_t *w, const float *scales, size_t rows, size_t cols, const float *x, float *out);
/* Attention over len cached rows `stride` floats apart (ops.c): scores[j] = tl__dot_f32(q, row j of
 * k, d) * scale. */
void tl__attn_scores(const float *q, const float *k, size_t stride, size_t len, size_t d, float scale, float *scores);
/* o[0..d) = sum_j p[j] (row j of v: n rows `stride` floats apart), each element summed in the order
 * of j, the terms of p[j] == 0 left out (the same bits for finite v): attention's weighted sum of
 * V, and the training backward's dz . w (ReLU leaves most of dz zero). */
void tl__weighted_rows(const float *p, const float *v, size_t stride, size_t n, size_t d, float *o);

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
 * Packed matrices (formats.c, pack.c, matrix.c, kernels.c)
 * ------------------------------------------------------------------------- */

typedef struct tl__format_traits tl__format_traits;

struct tl_matrix {
    tl_format format;
    size_t rows, cols;
    size_t row_bytes;   /* packed bytes per row */
    size_t row_weights; /* weights per row including padding (whole blocks) */
    uint8_t *data;      /* rows * row_bytes, 16-byte aligned; owned unless borrowed */
    float *scales;      /* rows */
    /* Built on the first sparse product: the trits column by column in the i2 code layout
     * (column c holds the codes of all rows, rows padded to 64), for column-wise updates. */
    uint8_t *colmajor;
    size_t col_bytes;
    int col_off; /* tl_matrix_set_column_copy(m, 0): dense products never build or use the copy */
    const tl__format_traits *traits; /* tl__format(format) */
    int borrowed;                    /* data lies in a buffer the matrix does not own (a loaded file) */
    int plain; /* borrowed bytes still in the file layout: no kernel may see it before tl__matrix_tile_plain */
};

/* One row per packed format (src/formats.c): everything the library knows about a format is
 * here or in the functions this points to. A row of cols weights is ceil(cols / block_weights)
 * blocks of block_bytes bytes; its row_weights = blocks * block_weights (padding included). */
struct tl__format_traits {
    tl_format format;
    const char *name; /* as in files and in the JS API */
    size_t block_weights, block_bytes;
    /* cols trits -> row_bytes bytes, padding written as zero trits */
    void (*pack_row)(const int8_t *t, size_t cols, uint8_t *out, size_t row_bytes);
    /* Validating decode into cols trits: nonzero when the bytes are not valid (including padding
     * that is not a zero trit). Nothing invalid is ever decoded silently. */
    int (*unpack_row)(const uint8_t *in, size_t cols, size_t row_bytes, int8_t *t);
    /* Fast decode (SIMD) of a valid row into row_weights int8 trits (padding decodes to 0). */
    void (*decode_row)(const uint8_t *row, size_t row_bytes, int8_t *out);
    /* Optional fast paths; NULL: the kernels go through decode_row. */
    /* sum_c trit[c] * x[c] for the n (1..4) rows of a tile (rows: the tile's bytes, tile_rows 4:
     * matrix.c, "Tiles") into out[0..n-1]; x in the kernel's layout
     * (kernels.c: int16, or int8 in the relaxed-SIMD build), padded with zeros to row_weights,
     * x_sum = sum x */
    void (*dot_x16)(const uint8_t *rows, size_t row_bytes, size_t n, const void *x, int32_t x_sum,
                    int32_t *out);
    /* popcount(x & +1 plane) - popcount(x & -1 plane), x as row_bytes / 16 64-bit words */
    int32_t (*dot_bits)(const uint8_t *row, size_t row_bytes, const uint64_t *x);
    /* rows are i2 blocks as they are (the float kernel's tables index their bytes directly) */
    int rows_are_i2;
    /* Fast validation of rows packed rows (rows x row_bytes bytes): nonzero exactly when some row
     * is one unpack_row refuses; nothing is decoded (tl__validate_packed, at load). */
    int (*check_rows)(const uint8_t *in, size_t rows, size_t cols, size_t row_bytes);
    /* Rows per tile in memory (matrix.c, "Tiles"): 1, rows one after the other as in files; more,
     * the blocks of that many rows interleaved, so that a kernel reading them together reads one
     * stream. */
    size_t tile_rows;
};

/* The row of format f, or NULL for a value that names no format. */
const tl__format_traits *tl__format(tl_format f);

/* Fast paths the table points to (kernels.c). */
void tl__i2_dot_x16(const uint8_t *rows, size_t row_bytes, size_t n, const void *x, int32_t x_sum,
                    int32_t *out);
int32_t tl__bitplane_dot_bits(const uint8_t *row, size_t row_bytes, const uint64_t *x);

uint8_t tl__tq1_encode(const uint8_t c[5]);
tl_status tl__validate_packed(tl_format f, const uint8_t *in, size_t rows, size_t cols);
/* Tiles (matrix.c): the rows of a tile starting at row t0 (a multiple of tile_rows), and block k of
 * row r (t0 = r rounded down to the tile). The packed bytes in the file layout, out of the tiles:
 * rows r0..r0 + n - 1 into out (n * row_bytes bytes). */
size_t tl__tile_n(const tl_matrix *m, size_t t0);
/* Block k of row i of a tile of n rows, in blocks from the tile's start (the one place this
 * layout is written down; the kernels walk it with pointers). */
static inline size_t tl__tile_off(size_t n, size_t i, size_t k) { return k * n + i; }
const uint8_t *tl__tile_block(const tl_matrix *m, size_t r, size_t k);
void tl__matrix_read_rows(const tl_matrix *m, size_t r0, size_t n, uint8_t *out);
/* A matrix over packed bytes it does not copy (validated as tl_matrix_from_packed does), left in
 * the file layout (plain) for tl__matrix_tile_plain: data must
 * be 16-byte aligned and outlive the matrix (a model file that the model owns). It takes over
 * `scales` (rows finite values from tl__malloc) on success; on failure the caller keeps them. */
tl_status tl__matrix_borrow(tl_format f, const uint8_t *data, size_t bytes, size_t rows, size_t cols,
                            float *scales, tl_matrix **out);
/* A borrowing matrix whose bytes are not in place yet (data NULL): its loader checks them, puts
 * them at m->data (16-byte aligned, the file layout) and only then tiles them. Takes over scales as
 * tl__matrix_borrow does. */
tl_status tl__matrix_borrow_later(tl_format f, size_t rows, size_t cols, float *scales, tl_matrix **out);
/* Put a borrowing matrix's bytes into tiles, in place, with tl__matrix_tile_scratch(m) bytes of
 * scratch (0: nothing to do): a loader does it after everything else succeeded and the scratch
 * is allocated, so that a refused file is left as it was. */
size_t tl__matrix_tile_scratch(const tl_matrix *m);
void tl__matrix_tile_plain(tl_matrix *m, uint8_t *scratch);
/* A copy of m, with its own bytes and scales. */
tl_status tl__matrix_copy(const tl_matrix *m, tl_matrix **out);
/* Give a borrowing matrix its own copy of its packed bytes (a no-op for one that owns them);
 * TL_ERR_NO_MEMORY leaves it borrowing. */
tl_status tl__matrix_own(tl_matrix *m);
void tl__pack_rows(tl_format f, const int8_t *trits, size_t rows, size_t cols, uint8_t *out);
/* One i2 block (16 bytes) of 64 weights whose codes (0..2) are bits 2k..2k+1 of in[0..63]
 * (a Hugging Face packed projection's bytes: src/lm.c). */
void tl__i2_block_from_crumbs(const uint8_t *in, unsigned k, uint8_t *out);

/* Decode packed row r of m into m->row_weights trits (padding decodes to 0). */
void tl__decode_row(const tl_matrix *m, size_t r, int8_t *out);

/* Kernels for callers that run them many times (the model runtime): no argument checks and no
 * allocation once the workspace is big enough.
 *
 * tl__ws is scratch memory owned by the caller: tl__ws_reserve grows it to at least `bytes`
 * (keeping its contents; TL_ERR_NO_MEMORY leaves it as it was) and never shrinks it;
 * tl__ws_free releases it (a zeroed tl__ws is empty; freeing twice is harmless). A kernel
 * reserves what it needs itself, so after the first call of a shape nothing is allocated.
 * What a call reserves (src/kernels.c): int16 copies of x (batch x cols x 2 bytes; float: the
 * int32 fixed-point copy, 4 bytes per value, and its three int16 digits at batch 1), the int32
 * results (batch x rows), int16 tables of one 64-column block for int8 batches (41 KB at 16
 * vectors, 83 KB at 32) or int32 tables of one 128-column tile for float batches (83 KB),
 * batched accumulators (min(rows, 4096) x 128 bytes at most), the prescaled copies of x for the
 * dot products (2 x vectors x row weights), the quantized or 0/1 copy of x (fused and binary:
 * batch x cols), and for tq1/bitplane 256 rows re-encoded to i2 (64 x cols bytes: 256 KB at 4096
 * columns).
 *
 * The tl__matmul_*_ws functions do what their public twins do, with the same outputs (see the
 * public docs), but skip the checks: the caller guarantees m and pointers valid, batch >= 1,
 * out (and acc where given) batch * rows long, x batch * cols long (binary: batch *
 * tl_binary_row_bytes(cols) bytes), float x finite, cols <= TL_MAX_I8_COLS for the int8 ones,
 * x_scales finite and > 0 (or NULL), and batch * rows, batch * row weights <= TL_MAX_ELEMENTS.
 * They fail only with TL_ERR_NO_MEMORY (workspace growth), writing nothing then.
 *   tl__matmul_f32_ws     out = tl_matmul_f32's
 *   tl__matmul_f32_i8_ws  quantize each vector as tl_quantize_activations_i8 does, then the
 *                         int8 product: out = fl(fl(fl(acc) * scale[r]) / s_b) (tl_matmul_f32_i8)
 *   tl__matmul_i8_ws      tl_matmul_i8's acc and/or out (either may be NULL, not both)
 *   tl__matmul_binary_ws  tl_matmul_binary's acc and/or out */
typedef struct {
    void *p;
    size_t cap;
} tl__ws;
/* tl_quantize_activations_i8 without its checks (x finite, cols >= 1): the same bits as the reference. */
void tl__quantize_i8(const float *x, size_t cols, size_t batch, int8_t *xq, float *scales);
tl_status tl__ws_reserve(tl__ws *ws, size_t bytes);
void tl__ws_free(tl__ws *ws);
tl_status tl__matmul_f32_ws(const tl_matrix *m, const float *x, size_t batch, float *out, tl__ws *ws);
tl_status tl__matmul_f32_i8_ws(const tl_matrix *m, const float *x, size_t batch, float *out, tl__ws *ws);
tl_status tl__matmul_i8_ws(const tl_matrix *m, const int8_t *x, size_t batch, const float *x_scales, int32_t *acc,
                           float *out, tl__ws *ws);
tl_status tl__matmul_binary_ws(const tl_matrix *m, const uint8_t *x, size_t batch, int32_t *acc, float *out,
                               tl__ws *ws);

/* Threads (threads.c). tl__parallel runs fn(ctx, task, thread) for every task < ntasks and returns
 * when all are done; thread is 0 for the calling thread and 1..tl__threads_n() - 1 for the workers
 * of a threaded build (elsewhere it is a plain loop on thread 0). A task must not allocate, record
 * an error detail or call tl__parallel: it runs on any thread. Per-thread scratch is indexed by
 * thread, so a caller sizes it for tl__threads_n() threads. */
typedef void (*tl__task_fn)(void *ctx, size_t task, unsigned thread);
unsigned tl__threads_n(void);
/* Products under this many weight x vector multiply-adds run on the calling thread alone (waking
 * the workers costs more than they save); the C tests set it to 0 to split every product. */
extern uint64_t tl__par_min_work;
void tl__parallel(size_t ntasks, tl__task_fn fn, void *ctx);
/* Items a..b - 1 of task `task` when n items are split in tasks of `per` (the last one shorter). */
static inline void tl__task_range(size_t n, size_t per, size_t task, size_t *a, size_t *b) {
    *a = task * per;
    *b = n - *a < per ? n : *a + per;
}
/* The workers' side of the threaded builds (wasm exports only, called by js/threads.js): a stack's
 * top, the worker loop (never returns), how many workers are in their loop. */
uintptr_t tl_threads_stack(size_t bytes);
void tl_threads_worker(void);
uint32_t tl_threads_ready(void);

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
