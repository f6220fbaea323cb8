/* kernels.c — products of packed ternary matrices with binary, sparse, int8 and float activations.
 *
 * Paths, fastest first:
 *   - bitplane x binary: popcount(x & pos) - popcount(x & neg), 64 bits at a time;
 *   - i2 x int8 (and x binary, as 0/1 int8): the i2 layout puts the codes of 8 consecutive
 *     weights in the 16-bit lanes of a vector after one shift and one mask, so the product is
 *     i32x4.dot_i16x8_s(codes, x) per 8 weights; codes are trit + 1, so sum(x * trit) =
 *     sum(x * code) - sum(x), with sum(x) taken once per vector;
 *   - sparse index lists: a column-major copy of the trits (built on first use, i2 codes along
 *     the rows) lets each active column add its codes to 64 row accumulators at a time;
 *   - float GEMV: per 8 columns a table of the sums of x over all 256 subsets, then two
 *     lookups per 8 weights (the +1 and -1 masks); float GEMM: the batch across SIMD lanes,
 *     adding and subtracting the columns each row lists;
 *   - everything else: decode a row to int8 trits (SIMD per format) and run the int8 dot
 *     product on it. The decoded row lives in L1 and is reused for every batch vector.
 * Every path has the plain reference in kernels_ref.c, checked bit for bit in every build
 * (the float paths to a tolerance: they add in another order).
 */
#include <math.h>
#include <stdlib.h>

#include "formats.h"
#include "internal.h"

#include "simd.h"

/* Decode packed row r of m into m->row_weights trits (the format's SIMD decoder). */
void tl__decode_row(const tl_matrix *m, size_t r, int8_t *out) {
    m->traits->decode_row(m->data + r * m->row_bytes, m->row_bytes, out);
}

/* ---------------------------------------------------------------------------
 * Dot products (n is a multiple of 16: rows are whole blocks)
 * ------------------------------------------------------------------------- */

/* sum t[i] * x[i] for decoded trits and int16 activations. */
static int32_t tl__dot_t8_x16(const int8_t *t, const int16_t *x, size_t n) {
#if TL_SIMD
    v128_t a0 = wasm_i32x4_splat(0), a1 = a0;
    for (size_t i = 0; i < n; i += 16) {
        v128_t tv = wasm_v128_load(t + i);
        a0 = wasm_i32x4_add(a0, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(tv), wasm_v128_load(x + i)));
        a1 = wasm_i32x4_add(
            a1, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(tv), wasm_v128_load(x + i + 8)));
    }
    a0 = wasm_i32x4_add(a0, a1);
    return wasm_i32x4_extract_lane(a0, 0) + wasm_i32x4_extract_lane(a0, 1) + wasm_i32x4_extract_lane(a0, 2) +
           wasm_i32x4_extract_lane(a0, 3);
#else
    int32_t acc = 0;
    for (size_t i = 0; i < n; i++) acc += t[i] * x[i];
    return acc;
#endif
}

/* sum trit[i] * x[i] over an i2 row (blocks of 64) as sum code[i] * x[i] - sum(x). */
int32_t tl__i2_dot_x16(const uint8_t *row, size_t row_bytes, const int16_t *x, int32_t x_sum) {
    size_t blocks = row_bytes / 16;
#if TL_SIMD
    /* Field k of a lane masked in place is code_k << 2k: its dot with x comes out scaled by
     * 4^k, exactly, and is shifted back once at the end. The high byte's fields (4..7),
     * brought down by one shift, share the low fields' masks and accumulators. So 8 weights
     * cost an and, a dot and an add, with 4 masks and 4 accumulators live (V8 has 16 xmm
     * registers). Lanes stay in range: |x * (2 << 6)| and 256 products per lane per 64
     * blocks fit int32; the accumulators are flushed every 64 blocks. */
    const v128_t m0 = wasm_i16x8_splat(3), m1 = wasm_i16x8_splat(3 << 2), m2 = wasm_i16x8_splat(3 << 4),
                 m3 = wasm_i16x8_splat(3 << 6);
    int32_t total = 0;
    for (size_t b0 = 0; b0 < blocks; b0 += 64) {
        size_t b1 = blocks - b0 > 64 ? b0 + 64 : blocks;
        v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
        for (size_t b = b0; b < b1; b++) {
            v128_t v = wasm_v128_load(row + 16 * b), h = wasm_u16x8_shr(v, 8);
            const int16_t *xb = x + 64 * b;
            a0 = wasm_i32x4_add(a0, wasm_i32x4_dot_i16x8(wasm_v128_and(v, m0), wasm_v128_load(xb)));
            a1 = wasm_i32x4_add(a1, wasm_i32x4_dot_i16x8(wasm_v128_and(v, m1), wasm_v128_load(xb + 8)));
            a2 = wasm_i32x4_add(a2, wasm_i32x4_dot_i16x8(wasm_v128_and(v, m2), wasm_v128_load(xb + 16)));
            a3 = wasm_i32x4_add(a3, wasm_i32x4_dot_i16x8(wasm_v128_and(v, m3), wasm_v128_load(xb + 24)));
            a0 = wasm_i32x4_add(a0, wasm_i32x4_dot_i16x8(wasm_v128_and(h, m0), wasm_v128_load(xb + 32)));
            a1 = wasm_i32x4_add(a1, wasm_i32x4_dot_i16x8(wasm_v128_and(h, m1), wasm_v128_load(xb + 40)));
            a2 = wasm_i32x4_add(a2, wasm_i32x4_dot_i16x8(wasm_v128_and(h, m2), wasm_v128_load(xb + 48)));
            a3 = wasm_i32x4_add(a3, wasm_i32x4_dot_i16x8(wasm_v128_and(h, m3), wasm_v128_load(xb + 56)));
        }
        v128_t s = wasm_i32x4_add(wasm_i32x4_add(a0, wasm_i32x4_shr(a1, 2)),
                                  wasm_i32x4_add(wasm_i32x4_shr(a2, 4), wasm_i32x4_shr(a3, 6)));
        total += wasm_i32x4_extract_lane(s, 0) + wasm_i32x4_extract_lane(s, 1) +
                 wasm_i32x4_extract_lane(s, 2) + wasm_i32x4_extract_lane(s, 3);
    }
    return total - x_sum;
#else
    int32_t acc = 0;
    for (size_t b = 0; b < blocks; b++)
        for (unsigned w = 0; w < TL__I2_BLOCK_WEIGHTS; w++)
            acc += (int32_t)tl__i2_code(row + 16 * b, w) * x[TL__I2_BLOCK_WEIGHTS * b + w];
    return acc - x_sum;
#endif
}

static int32_t tl__popcount64(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_popcountll(v);
#else
    int32_t c = 0;
    for (; v; v &= v - 1) c++;
    return c;
#endif
}

/* popcount(x & pos) - popcount(x & neg) over the row's words (an even number: planes are
 * padded to 128 bits), two words per step with two accumulators. */
int32_t tl__bitplane_dot_bits(const uint8_t *row, size_t row_bytes, const uint64_t *x) {
    const uint8_t *pos = row, *neg = row + row_bytes / 2;
    size_t words = row_bytes / 16;
    int32_t a0 = 0, a1 = 0;
    for (size_t w = 0; w < words; w += 2) {
        uint64_t p0, p1, n0, n1;
        memcpy(&p0, pos + 8 * w, 8), memcpy(&p1, pos + 8 * w + 8, 8);
        memcpy(&n0, neg + 8 * w, 8), memcpy(&n1, neg + 8 * w + 8, 8);
        a0 += tl__popcount64(x[w] & p0) - tl__popcount64(x[w] & n0);
        a1 += tl__popcount64(x[w + 1] & p1) - tl__popcount64(x[w + 1] & n1);
    }
    return a0 + a1;
}

/* ---------------------------------------------------------------------------
 * Argument checks shared by the kernels
 * ------------------------------------------------------------------------- */

static tl_status tl__check_kernel(const tl_matrix *m, const void *x, size_t batch, const int32_t *acc,
                                  const float *out, size_t out_len) {
    if (!m || !x || (!acc && !out)) return TL_ERR_NULL;
    if (batch == 0) return TL_ERR_EMPTY;
    if (batch > TL_MAX_ELEMENTS / m->rows || batch > TL_MAX_ELEMENTS / m->row_weights) return TL_ERR_OVERFLOW;
    if (out_len != batch * m->rows) return TL_ERR_SIZE;
    return TL_OK;
}

static void tl__emit(const tl_matrix *m, size_t b, size_t r, int32_t a, float x_scale, int32_t *acc,
                     float *out) {
    size_t i = b * m->rows + r;
    if (acc) acc[i] = a;
    if (out) out[i] = ((float)a * m->scales[r]) / x_scale;
}

/* int16 copies of batch vectors, each padded with zeros to the row's whole blocks. */
static int16_t *tl__widen_i8(const tl_matrix *m, const int8_t *x, size_t batch, int32_t *sums) {
    size_t P = m->row_weights;
    int16_t *x16 = tl__calloc(batch * P, sizeof *x16);
    if (!x16) return NULL;
    for (size_t b = 0; b < batch; b++) {
        int32_t s = 0;
        for (size_t c = 0; c < m->cols; c++) s += x16[b * P + c] = x[b * m->cols + c];
        sums[b] = s;
    }
    return x16;
}

/* int8 (or 0/1) activations against any format, through the fastest int path. */
static tl_status tl__matmul_x16(const tl_matrix *m, const int16_t *x16, const int32_t *sums, size_t batch,
                                const float *x_scales, int32_t *acc, float *out) {
    size_t P = m->row_weights;
    if (m->traits->dot_x16) {
        for (size_t r = 0; r < m->rows; r++) {
            const uint8_t *row = m->data + r * m->row_bytes;
            for (size_t b = 0; b < batch; b++)
                tl__emit(m, b, r, m->traits->dot_x16(row, m->row_bytes, x16 + b * P, sums[b]),
                         x_scales ? x_scales[b] : 1.0f, acc, out);
        }
        return TL_OK;
    }
    int8_t *t = tl__malloc((P + 15) / 16 * 16);
    if (!t) return TL_ERR_NO_MEMORY;
    for (size_t r = 0; r < m->rows; r++) {
        tl__decode_row(m, r, t);
        for (size_t b = 0; b < batch; b++)
            tl__emit(m, b, r, tl__dot_t8_x16(t, x16 + b * P, P), x_scales ? x_scales[b] : 1.0f, acc, out);
    }
    tl__free(t);
    return TL_OK;
}

/* ---------------------------------------------------------------------------
 * Public kernels
 * ------------------------------------------------------------------------- */

size_t tl_binary_row_bytes(size_t cols) { return (cols + 7) / 8; }

tl_status tl_matmul_binary(const tl_matrix *m, const uint8_t *x, size_t x_bytes, size_t batch, int32_t *acc,
                           float *out, size_t out_len) {
    tl_status s = tl__check_kernel(m, x, batch, acc, out, out_len);
    if (s) return s;
    size_t xb = tl_binary_row_bytes(m->cols);
    if (x_bytes != batch * xb) return TL_ERR_SIZE;

    if (m->traits->dot_bits) {
        /* Copy each vector into whole 64-bit words, bits past cols cleared. */
        size_t words = m->row_bytes / 16; /* per plane: row_bytes / 2 bytes = row_bytes / 16 words */
        uint64_t *xw = tl__calloc(batch * words, sizeof *xw);
        if (!xw) return TL_ERR_NO_MEMORY;
        for (size_t b = 0; b < batch; b++) {
            uint8_t *dst = (uint8_t *)(xw + b * words);
            memcpy(dst, x + b * xb, xb);
            if (m->cols % 8) dst[xb - 1] &= (uint8_t)((1u << (m->cols % 8)) - 1);
        }
        for (size_t r = 0; r < m->rows; r++) {
            const uint8_t *row = m->data + r * m->row_bytes;
            for (size_t b = 0; b < batch; b++)
                tl__emit(m, b, r, m->traits->dot_bits(row, m->row_bytes, xw + b * words), 1.0f, acc, out);
        }
        tl__free(xw);
        return TL_OK;
    }

    /* Other formats: the bits become 0/1 int16 activations for the int path. */
    int32_t *sums = tl__malloc(batch * sizeof *sums);
    int16_t *x16 = tl__calloc(batch * m->row_weights, sizeof *x16);
    if (!sums || !x16) {
        tl__free(sums), tl__free(x16);
        return TL_ERR_NO_MEMORY;
    }
    for (size_t b = 0; b < batch; b++) {
        int32_t sum = 0;
        for (size_t c = 0; c < m->cols; c++)
            sum += x16[b * m->row_weights + c] = (x[b * xb + c / 8] >> (c % 8)) & 1;
        sums[b] = sum;
    }
    s = tl__matmul_x16(m, x16, sums, batch, NULL, acc, out);
    tl__free(sums), tl__free(x16);
    return s;
}

tl_status tl_matmul_i8(const tl_matrix *m, const int8_t *x, size_t x_len, size_t batch, const float *x_scales,
                       int32_t *acc, float *out, size_t out_len) {
    tl_status s = tl__check_kernel(m, x, batch, acc, out, out_len);
    if (s) return s;
    if (x_len != batch * m->cols) return TL_ERR_SIZE;
    /* |acc| <= 128 * cols must fit int32 */
    if (m->cols > TL_MAX_I8_COLS) return TL_ERR_OVERFLOW;
    if (x_scales)
        for (size_t b = 0; b < batch; b++)
            if (!(isfinite(x_scales[b]) && x_scales[b] > 0.0f)) return TL_ERR_ALPHA;
    int32_t *sums = tl__malloc(batch * sizeof *sums);
    int16_t *x16 = sums ? tl__widen_i8(m, x, batch, sums) : NULL;
    if (!x16) {
        tl__free(sums);
        return TL_ERR_NO_MEMORY;
    }
    s = tl__matmul_x16(m, x16, sums, batch, x_scales, acc, out);
    tl__free(sums), tl__free(x16);
    return s;
}

/* The +1 and -1 masks of 8 consecutive trits of a decoded row, as two bytes per group. */
static void tl__masks8(const int8_t *t, size_t groups, uint8_t *pos, uint8_t *neg) {
    size_t g = 0;
#if TL_SIMD
    const v128_t zero = wasm_i8x16_splat(0);
    for (; g + 2 <= groups; g += 2) {
        v128_t v = wasm_v128_load(t + 8 * g);
        uint32_t p = wasm_i8x16_bitmask(wasm_i8x16_gt(v, zero)),
                 n = wasm_i8x16_bitmask(wasm_i8x16_lt(v, zero));
        pos[g] = (uint8_t)p, pos[g + 1] = (uint8_t)(p >> 8), neg[g] = (uint8_t)n,
        neg[g + 1] = (uint8_t)(n >> 8);
    }
#endif
    for (; g < groups; g++) {
        unsigned p = 0, n = 0;
        for (unsigned b = 0; b < 8; b++)
            p |= (unsigned)(t[8 * g + b] > 0) << b, n |= (unsigned)(t[8 * g + b] < 0) << b;
        pos[g] = (uint8_t)p, neg[g] = (uint8_t)n;
    }
}

/* float GEMV by tables: for every 8 columns, the sums of x over all 256 subsets (each built from
 * a smaller one by one add), shared by every row; a row's dot product is then, per 8 columns,
 * table[+1 mask] - table[-1 mask]. Adds and subtracts only, 0.5 operations per weight, and the
 * same order in every build (scalar sums). The masks come straight from the bitplane format, or
 * from a decoded row (i2, tq1). */
static tl_status tl__f32_gemv(const tl_matrix *m, const float *x, float *out) {
    size_t P = m->row_weights, G = P / 8; /* rows are whole 16-byte blocks: P is a multiple of 16 */
    float *T = tl__malloc(G * 256 * sizeof *T);
    int8_t *t = tl__malloc(P);
    uint8_t *pm = tl__malloc(2 * G), *nm = pm ? pm + G : NULL;
    if (!T || !t || !pm) {
        tl__free(T), tl__free(t), tl__free(pm);
        return TL_ERR_NO_MEMORY;
    }
    for (size_t g = 0; g < G; g++) {
        float *tg = T + 256 * g;
        tg[0] = 0.0f;
        for (unsigned mask = 1; mask < 256; mask++) {
            unsigned low = mask & (0u - mask), bit = 0;
            while (!((low >> bit) & 1u)) bit++;
            size_t c = 8 * g + bit;
            tg[mask] = tg[mask ^ low] + (c < m->cols ? x[c] : 0.0f);
        }
    }
    for (size_t r = 0; r < m->rows; r++) {
        if (m->traits->dot_bits) {
            const uint8_t *row = m->data + r * m->row_bytes;
            memcpy(pm, row, G), memcpy(nm, row + m->row_bytes / 2, G);
        } else {
            tl__decode_row(m, r, t);
            tl__masks8(t, G, pm, nm);
        }
        float acc = 0.0f;
        for (size_t g = 0; g < G; g++) acc = (acc + T[256 * g + pm[g]]) - T[256 * g + nm[g]];
        out[r] = acc * m->scales[r];
    }
    tl__free(T), tl__free(t), tl__free(pm);
    return TL_OK;
}

/* float GEMM: the batch goes across SIMD lanes. x is transposed so that column c of every
 * vector is one contiguous run xt[c * B ...]; each row becomes a list of its +1 columns and
 * a list of its -1 columns (zeros are skipped), and each listed column adds or subtracts a
 * run of B activations: adds and subtracts only, no branch on the data. Lane b sums its
 * terms in list order, in every build. */
#define TL__LANES 32 /* batch lanes per pass: 8 vectors of accumulators */
static tl_status tl__f32_gemm(const tl_matrix *m, const float *x, size_t batch, float *out) {
    size_t B = (batch + 3) / 4 * 4, cols = m->cols;
    float *xt = tl__malloc(cols * B * sizeof *xt);
    int8_t *t = tl__malloc((m->row_weights + 15) / 16 * 16);
    uint32_t *pos = tl__malloc(cols * sizeof *pos), *neg = tl__malloc(cols * sizeof *neg);
    if (!xt || !t || !pos || !neg) {
        tl__free(xt), tl__free(t), tl__free(pos), tl__free(neg);
        return TL_ERR_NO_MEMORY;
    }
    for (size_t c = 0; c < cols; c++)
        for (size_t b = 0; b < B; b++) xt[c * B + b] = b < batch ? x[b * cols + c] : 0.0f;
    for (size_t r = 0; r < m->rows; r++) {
        tl__decode_row(m, r, t);
        size_t np = 0, nn = 0;
        for (size_t c = 0; c < cols; c++) {
            pos[np] = (uint32_t)c, neg[nn] = (uint32_t)c;
            np += t[c] > 0, nn += t[c] < 0;
        }
        for (size_t b0 = 0; b0 < B; b0 += TL__LANES) {
            size_t nl = B - b0 < TL__LANES ? B - b0 : TL__LANES;
            float acc[TL__LANES];
#if TL_SIMD
            v128_t a[TL__LANES / 4];
            for (size_t v = 0; v < nl / 4; v++) a[v] = wasm_f32x4_splat(0.0f);
            for (size_t i = 0; i < np; i++) {
                const float *xc = xt + (size_t)pos[i] * B + b0;
                for (size_t v = 0; v < nl / 4; v++) a[v] = wasm_f32x4_add(a[v], wasm_v128_load(xc + 4 * v));
            }
            for (size_t i = 0; i < nn; i++) {
                const float *xc = xt + (size_t)neg[i] * B + b0;
                for (size_t v = 0; v < nl / 4; v++) a[v] = wasm_f32x4_sub(a[v], wasm_v128_load(xc + 4 * v));
            }
            for (size_t v = 0; v < nl / 4; v++) wasm_v128_store(acc + 4 * v, a[v]);
#else
            for (size_t l = 0; l < nl; l++) acc[l] = 0.0f;
            for (size_t i = 0; i < np; i++)
                for (size_t l = 0; l < nl; l++) acc[l] += xt[(size_t)pos[i] * B + b0 + l];
            for (size_t i = 0; i < nn; i++)
                for (size_t l = 0; l < nl; l++) acc[l] -= xt[(size_t)neg[i] * B + b0 + l];
#endif
            for (size_t l = 0; l < nl && b0 + l < batch; l++)
                out[(b0 + l) * m->rows + r] = acc[l] * m->scales[r];
        }
    }
    tl__free(xt), tl__free(t), tl__free(pos), tl__free(neg);
    return TL_OK;
}

tl_status tl_matmul_f32(const tl_matrix *m, const float *x, size_t x_len, size_t batch, float *out,
                        size_t out_len) {
    int32_t dummy;
    tl_status s = tl__check_kernel(m, x, batch, out ? NULL : &dummy, out, out_len);
    if (s) return s;
    if (!out) return TL_ERR_NULL;
    if (x_len != batch * m->cols) return TL_ERR_SIZE;
    if (tl__first_non_finite(x, x_len) != x_len) return TL_ERR_NON_FINITE;
    return batch == 1 ? tl__f32_gemv(m, x, out) : tl__f32_gemm(m, x, batch, out);
}

/* The column-major copy for sparse products: for each tile of 64 rows and each column,
 * 16 bytes of i2 codes (row 8k + j of the tile in 16-bit lane j, bits 2k). */
static tl_status tl__build_colmajor(tl_matrix *m) {
    size_t tiles = (m->rows + 63) / 64;
    uint8_t *cm = tl__malloc(tiles * m->cols * 16);
    int8_t *t = tl__malloc((m->row_weights + 15) / 16 * 16);
    if (!cm || !t) {
        tl__free(cm), tl__free(t);
        return TL_ERR_NO_MEMORY;
    }
    /* Zero trits (code 1) everywhere first, so rows past the end add nothing. */
    memset(cm, TL__I2_ZERO_BYTE, tiles * m->cols * 16);
    for (size_t r = 0; r < m->rows; r++) {
        tl__decode_row(m, r, t);
        size_t tile = r / 64;
        for (size_t c = 0; c < m->cols; c++)
            tl__i2_set(cm + (tile * m->cols + c) * 16, (unsigned)(r % 64), (unsigned)(t[c] + 1));
    }
    tl__free(t);
    m->colmajor = cm;
    m->col_bytes = m->cols * 16;
    return TL_OK;
}

tl_status tl_matmul_sparse(const tl_matrix *m, const uint32_t *idx, size_t nidx, const uint32_t *offsets,
                           size_t batch, int32_t *acc, float *out, size_t out_len) {
    tl_status s = tl__check_kernel(m, offsets, batch, acc, out, out_len);
    if (s) return s;
    if (nidx && !idx) return TL_ERR_NULL;
    if (offsets[0] != 0 || offsets[batch] != nidx) return TL_ERR_SIZE;
    for (size_t b = 0; b < batch; b++)
        if (offsets[b + 1] < offsets[b]) return TL_ERR_SIZE;
    for (size_t i = 0; i < nidx; i++)
        if (idx[i] >= m->cols) return TL_ERR_SIZE;
    /* The copy is a cache: building it does not change what m means (hence the cast). */
    if (!m->colmajor && (s = tl__build_colmajor((tl_matrix *)m))) return s;

    size_t tiles = (m->rows + 63) / 64;
    int32_t rowacc[64];
    for (size_t b = 0; b < batch; b++) {
        const uint32_t *ix = idx + offsets[b];
        size_t k = offsets[b + 1] - offsets[b];
        for (size_t tile = 0; tile < tiles; tile++) {
            const uint8_t *base = m->colmajor + tile * m->col_bytes;
            memset(rowacc, 0, sizeof rowacc);
            /* Sum codes (trit + 1) in int16 lanes, at most 16383 columns at a time (2 * 16383
             * fits), then subtract the column count. */
            for (size_t i0 = 0; i0 < k; i0 += 16383) {
                size_t i1 = k - i0 > 16383 ? i0 + 16383 : k;
#if TL_SIMD
                const v128_t three = wasm_i16x8_splat(3);
                v128_t s0 = wasm_i16x8_splat(0), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0,
                       s7 = s0;
                for (size_t i = i0; i < i1; i++) {
                    v128_t v = wasm_v128_load(base + (size_t)ix[i] * 16);
                    s0 = wasm_i16x8_add(s0, wasm_v128_and(v, three));
                    s1 = wasm_i16x8_add(s1, wasm_v128_and(wasm_u16x8_shr(v, 2), three));
                    s2 = wasm_i16x8_add(s2, wasm_v128_and(wasm_u16x8_shr(v, 4), three));
                    s3 = wasm_i16x8_add(s3, wasm_v128_and(wasm_u16x8_shr(v, 6), three));
                    s4 = wasm_i16x8_add(s4, wasm_v128_and(wasm_u16x8_shr(v, 8), three));
                    s5 = wasm_i16x8_add(s5, wasm_v128_and(wasm_u16x8_shr(v, 10), three));
                    s6 = wasm_i16x8_add(s6, wasm_v128_and(wasm_u16x8_shr(v, 12), three));
                    s7 = wasm_i16x8_add(s7, wasm_u16x8_shr(v, 14));
                }
                int16_t lanes[64];
                wasm_v128_store(lanes + 0, s0), wasm_v128_store(lanes + 8, s1),
                    wasm_v128_store(lanes + 16, s2);
                wasm_v128_store(lanes + 24, s3), wasm_v128_store(lanes + 32, s4),
                    wasm_v128_store(lanes + 40, s5);
                wasm_v128_store(lanes + 48, s6), wasm_v128_store(lanes + 56, s7);
                for (int w = 0; w < 64; w++) rowacc[w] += (uint16_t)lanes[w];
#else
                for (size_t i = i0; i < i1; i++) {
                    const uint8_t *p = base + (size_t)ix[i] * 16;
                    for (unsigned w = 0; w < 64; w++) rowacc[w] += (int32_t)tl__i2_code(p, w);
                }
#endif
            }
            size_t nr = m->rows - tile * 64 < 64 ? m->rows - tile * 64 : 64;
            for (size_t w = 0; w < nr; w++)
                tl__emit(m, b, tile * 64 + w, rowacc[w] - (int32_t)k, 1.0f, acc, out);
        }
    }
    return TL_OK;
}

tl_status tl_quantize_activations_i8(const float *x, size_t x_len, size_t batch, int8_t *xq, float *scales) {
    if (!x || !xq || !scales) return TL_ERR_NULL;
    if (batch == 0 || x_len == 0) return TL_ERR_EMPTY;
    if (x_len > TL_MAX_ELEMENTS) return TL_ERR_OVERFLOW;
    if (x_len % batch) return TL_ERR_SIZE;
    if (tl__first_non_finite(x, x_len) != x_len) return TL_ERR_NON_FINITE;
    tl_ref_quantize_activations_i8(x, x_len / batch, batch, xq, scales);
    return TL_OK;
}
