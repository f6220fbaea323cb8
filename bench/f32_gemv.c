/* f32_gemv.c — a float32 GEMV/GEMM baseline for the kernel benchmarks, in WebAssembly SIMD128.
 *
 *   y[b][r] = sum_c W[r][c] * x[b][c]      W row-major [rows][cols], x [batch][cols], y [batch][rows]
 *
 * This is the yardstick a ternary kernel has to beat: the plain float32 product that a web page
 * would otherwise run. It is meant to be straightforward but not naive:
 *   - the inner loop is a register tile of R rows x B batch vectors x U column steps of f32x4,
 *     so each weight vector loaded feeds B products and there are enough independent
 *     accumulator chains (R * B * U >= 4) to hide the add latency;
 *   - batch 1 streams W once, four rows at a time (memory-bound: W is read exactly once, x stays
 *     in L1/L2);
 *   - batch > 1 blocks the columns so that the slice of x for the whole batch (kc columns x batch)
 *     stays in L2 while every row tile of W is reused across the batch;
 *   - tiles keep at most ~12 live vectors: V8 has 16 xmm registers and spills above that.
 * Column counts that are not a multiple of 4 go through a scalar tail, as do leftover rows and batch
 * vectors (smaller tiles). Without -msimd128 the whole product is the scalar loop.
 *
 * Summation order differs from a plain left-to-right dot product (lanes, then chains, then column
 * blocks), so results match a reference to float rounding, not bit for bit.
 */
#include <stddef.h>
#include <stdint.h>

#ifdef __wasm_simd128__
#include <wasm_simd128.h>
#endif

void bench_f32_gemm(const float *W, const float *x, float *y, int32_t rows, int32_t cols, int32_t batch);

#ifdef __wasm_simd128__

/* Bytes of x (all batch vectors) one column block may span: half of Zen 3's 512 KiB L2. */
#define X_BLOCK_BYTES (256 * 1024)

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE float hsum(v128_t v) {
    return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
           (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

/* One register tile: rows r0, r0 + rs, ..., r0 + (R-1) rs against batch vectors b0..b0+B-1 over
 * columns c0..c1-1, added into y. R <= 4, B <= 4, U <= 4 are compile-time constants at every call
 * site, so clang unrolls the small loops and keeps acc[][][] in registers. */
ALWAYS_INLINE void tile(const float *W, const float *x, float *y, size_t rows, size_t cols, size_t r0, size_t rs,
                        size_t b0, size_t c0, size_t c1, const int R, const int B, const int U) {
    v128_t acc[4][4][4];
    for (int u = 0; u < U; u++)
        for (int i = 0; i < R; i++)
            for (int j = 0; j < B; j++) acc[u][i][j] = wasm_f32x4_splat(0.0f);

    const float *w[4], *xb[4];
    for (int i = 0; i < R; i++) w[i] = W + (r0 + i * rs) * cols;
    for (int j = 0; j < B; j++) xb[j] = x + (b0 + j) * cols;

    size_t c = c0;
    for (; c + 4 * (size_t)U <= c1; c += 4 * (size_t)U) {
        for (int u = 0; u < U; u++) {
            v128_t wv[4];
            for (int i = 0; i < R; i++) wv[i] = wasm_v128_load(w[i] + c + 4 * u);
            for (int j = 0; j < B; j++) {
                v128_t xv = wasm_v128_load(xb[j] + c + 4 * u);
                for (int i = 0; i < R; i++)
                    acc[u][i][j] = wasm_f32x4_add(acc[u][i][j], wasm_f32x4_mul(wv[i], xv));
            }
        }
    }
    for (; c + 4 <= c1; c += 4) { /* leftover f32x4 steps when U > 1 */
        for (int j = 0; j < B; j++) {
            v128_t xv = wasm_v128_load(xb[j] + c);
            for (int i = 0; i < R; i++)
                acc[0][i][j] = wasm_f32x4_add(acc[0][i][j], wasm_f32x4_mul(wasm_v128_load(w[i] + c), xv));
        }
    }
    for (int i = 0; i < R; i++) {
        for (int j = 0; j < B; j++) {
            v128_t a = acc[0][i][j];
            for (int u = 1; u < U; u++) a = wasm_f32x4_add(a, acc[u][i][j]);
            float s = hsum(a);
            for (size_t t = c; t < c1; t++) s += w[i][t] * xb[j][t]; /* scalar tail: cols % 4 */
            y[(b0 + j) * rows + r0 + i * rs] += s;
        }
    }
}

/* Batch 1: one pass over W, four rows at a time: four sequential streams keep more DRAM prefetches
 * in flight than one (11008 x 4096: ~11.5 ms against ~15 ms for two rows, ~18 ms for one). The four
 * rows are a quarter of the matrix apart, so each stream runs through a quarter of W: four adjacent
 * rows are four streams that end after one row, and the hardware prefetchers start over at every
 * group (1.14x at 4096 x 4096, 1.3x at 1024 x 1024 in tilelli's own float GEMV, src/ops.c). */
static void gemv(const float *W, const float *x, float *y, size_t rows, size_t cols) {
    const size_t q = rows / 4;
    for (size_t r = 0; r < q; r++) tile(W, x, y, rows, cols, r, q, 0, 0, cols, 4, 1, 1);
    for (size_t r = 4 * q; r < rows; r++) tile(W, x, y, rows, cols, r, 1, 0, 0, cols, 1, 1, 4);
}

/* Batch > 1: column blocks of kc columns; within a block, 2 rows x 4 batch vectors per tile. */
static void gemm(const float *W, const float *x, float *y, size_t rows, size_t cols, size_t batch) {
    size_t kc = X_BLOCK_BYTES / (sizeof(float) * batch);
    kc = kc < 64 ? 64 : kc & ~(size_t)15;
    for (size_t c0 = 0; c0 < cols; c0 += kc) {
        size_t c1 = c0 + kc < cols ? c0 + kc : cols;
        size_t r = 0;
        for (; r + 2 <= rows; r += 2) {
            size_t b = 0;
            for (; b + 4 <= batch; b += 4) tile(W, x, y, rows, cols, r, 1, b, c0, c1, 2, 4, 1);
            for (; b < batch; b++) tile(W, x, y, rows, cols, r, 1, b, c0, c1, 2, 1, 2);
        }
        for (; r < rows; r++) {
            size_t b = 0;
            for (; b + 4 <= batch; b += 4) tile(W, x, y, rows, cols, r, 1, b, c0, c1, 1, 4, 1);
            for (; b < batch; b++) tile(W, x, y, rows, cols, r, 1, b, c0, c1, 1, 1, 4);
        }
    }
}

void bench_f32_gemm(const float *W, const float *x, float *y, int32_t rows, int32_t cols, int32_t batch) {
    if (rows <= 0 || cols <= 0 || batch <= 0) return;
    for (size_t i = 0; i < (size_t)rows * (size_t)batch; i++) y[i] = 0.0f;
    if (batch == 1)
        gemv(W, x, y, (size_t)rows, (size_t)cols);
    else
        gemm(W, x, y, (size_t)rows, (size_t)cols, (size_t)batch);
}

#else /* !__wasm_simd128__: the plain loop, for builds without SIMD128 */

void bench_f32_gemm(const float *W, const float *x, float *y, int32_t rows, int32_t cols, int32_t batch) {
    for (int32_t b = 0; b < batch; b++) {
        for (int32_t r = 0; r < rows; r++) {
            const float *w = W + (size_t)r * (size_t)cols, *xb = x + (size_t)b * (size_t)cols;
            float s = 0.0f;
            for (int32_t c = 0; c < cols; c++) s += w[c] * xb[c];
            y[(size_t)b * (size_t)rows + (size_t)r] = s;
        }
    }
}

#endif
