/* kernels.c — products of packed ternary matrices with binary, sparse, int8 and float activations.
 *
 * Paths (each format's fast paths are entries of its row in src/formats.c):
 *   - bitplane x binary: popcount(x & pos) - popcount(x & neg), 64 bits at a time (dot_bits);
 *   - int8, batch 1..3 (or under 64 rows): i2 puts the codes of 8 consecutive weights in the
 *     16-bit lanes of a vector after one shift and one mask, so the product is
 *     i32x4.dot_i16x8_s(codes, x) per 8 weights (dot_x16); codes are trit + 1, so sum(x * trit) =
 *     sum(x * code) - sum(x). Other formats: a decoded row, reused by every vector;
 *   - float (every batch) and int8 from batch 4: tables of x over each i2 byte's 4 weights, shared
 *     by all rows ("Table kernels" below): one lookup per 4 weights, and in batches one weight
 *     byte feeds 8 vectors. tq1 and bitplane rows are re-encoded to i2 a band at a time;
 *   - binary on i2/tq1: the int8 paths on 0/1 activations; fused float -> int8
 *     (tl_matmul_f32_i8): the activation quantizer, then the int8 paths;
 *   - sparse index lists: a column-major copy of the trits (built on first use, i2 codes along
 *     the rows; the only derived copy a matrix keeps, counted by tl_mem_live_bytes) lets each
 *     active column add its codes to 64 row accumulators at a time.
 * Every path has the plain reference in kernels_ref.c, checked bit for bit in every build
 * (the float paths to a tolerance: they add in another order, docs/FORMATS.md).
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

#if TL_RELAXED
/* sum t[i] * x[i] for decoded trits and int8 activations, x_sum = sum x: the codes t + 1 (0..2) as
 * relaxed_dot's 7-bit operand, x as the signed one, then - x_sum. An int16 lane takes 2 products
 * of at most 128 * 2 per dot; each of the two accumulators takes 32 dots per 1024 weights
 * (32 * 512 = 16384), then they are widened. */
static int32_t tl__dot_t8_x8(const int8_t *t, const int8_t *x, size_t n, int32_t x_sum) {
    const v128_t one = wasm_i8x16_splat(1);
    v128_t acc = wasm_i32x4_splat(0);
    for (size_t i0 = 0; i0 < n; i0 += 1024) {
        size_t i1 = n - i0 > 1024 ? i0 + 1024 : n, i = i0;
        v128_t a0 = wasm_i16x8_splat(0), a1 = a0;
        for (; i + 32 <= i1; i += 32) {
            a0 = wasm_i16x8_add(a0, wasm_i16x8_relaxed_dot_i8x16_i7x16(
                                        wasm_v128_load(x + i), wasm_i8x16_add(wasm_v128_load(t + i), one)));
            a1 = wasm_i16x8_add(a1, wasm_i16x8_relaxed_dot_i8x16_i7x16(
                                        wasm_v128_load(x + i + 16), wasm_i8x16_add(wasm_v128_load(t + i + 16), one)));
        }
        if (i < i1)
            a0 = wasm_i16x8_add(a0, wasm_i16x8_relaxed_dot_i8x16_i7x16(
                                        wasm_v128_load(x + i), wasm_i8x16_add(wasm_v128_load(t + i), one)));
        acc = wasm_i32x4_add(acc, wasm_i32x4_add(wasm_i32x4_extadd_pairwise_i16x8(a0),
                                                 wasm_i32x4_extadd_pairwise_i16x8(a1)));
    }
    return wasm_i32x4_extract_lane(acc, 0) + wasm_i32x4_extract_lane(acc, 1) + wasm_i32x4_extract_lane(acc, 2) +
           wasm_i32x4_extract_lane(acc, 3) - x_sum;
}
#else
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
#endif

/* Column c of the block's 64 (byte j, field i) */
static size_t tl__col_of(unsigned j, unsigned i) { return 8 * (4 * (j % 2) + i) + j / 2; }

#if TL_RELAXED
/* x in the layout tl__i2_dot_x16 takes in the relaxed build: int8, zero-padded to whole blocks;
 * byte 16k + j of block q is column 8 (4 (j % 2) + k) + j / 2, the weight whose code sits in byte j
 * of the block at bits 2k (so that (block >> 2k) & 3 lines the codes up with these 16 bytes). */
static void tl__i2_x16(const int8_t *x, size_t cols, size_t padded, void *out) {
    int8_t *xr = out;
    for (size_t q = 0; q < padded / 64; q++)
        for (unsigned k = 0; k < 4; k++)
            for (unsigned j = 0; j < 16; j++) {
                size_t c = 64 * q + tl__col_of(j, k);
                xr[64 * q + 16 * k + j] = c < cols ? x[c] : 0;
            }
}
#else
/* x in the layout tl__i2_dot_x16 takes: int16, zero-padded to whole blocks, column c of block q
 * (group g = c / 8 of its 8 groups of 8 columns) times 4^(3 - g % 4). */
static void tl__i2_x16(const int8_t *x, size_t cols, size_t padded, void *out) {
    int16_t *xs = out;
    for (size_t c = 0; c < padded; c++)
        xs[c] = c < cols ? (int16_t)(x[c] * (1 << (2 * (3 - (c / 8) % 4)))) : 0;
}
#endif

/* sum trit[i] * x[i] over n (1..4) consecutive i2 rows (blocks of 64), x in tl__i2_x16's layout,
 * x_sum = sum x: out[i] for row i. */
void tl__i2_dot_x16(const uint8_t *rows, size_t row_bytes, size_t n, const void *x_in, int32_t x_sum,
                    int32_t *out) {
    size_t blocks = row_bytes / 16;
#if TL_SIMD
    /* Rows past n repeat row 0 (computed, not stored). */
    const uint8_t *r0 = rows, *r1 = n > 1 ? rows + row_bytes : rows, *r2 = n > 2 ? rows + 2 * row_bytes : rows,
                  *r3 = n > 3 ? rows + 3 * row_bytes : rows;
    v128_t t0 = wasm_i32x4_splat(0), t1 = t0, t2 = t0, t3 = t0;
#if TL_RELAXED
    /* (v >> 2k) & 3 puts the codes of 16 weights in bytes (u16 shifts: the mask clears what
     * crosses bytes); relaxed_dot(x, codes) adds x * code in pairs of bytes into int16 lanes. The
     * codes (0..2) are the 7-bit operand, x the signed one: exact on every engine. A lane takes
     * 2 products of at most 128 * 2 per dot, 4 dots per block: 16 blocks stay within int16
     * (16 * 4 * 512 = 32768, and -32768 is the one value reached, by x = -128 and code 2), then
     * the lanes are widened pairwise into int32. Four rows share each load of x. (The int32 form,
     * i32x4.relaxed_dot_i8x16_i7x16_add, is three instructions on x86 without AVX-VNNI against
     * two for dot + i16 add, and measured 1.6x slower here.) */
    const int8_t *xr = x_in;
    const v128_t m = wasm_i8x16_splat(3);
    for (size_t b0 = 0; b0 < blocks; b0 += 16) {
        size_t b1 = blocks - b0 > 16 ? b0 + 16 : blocks;
        v128_t a0 = wasm_i16x8_splat(0), a1 = a0, a2 = a0, a3 = a0;
        for (size_t b = b0; b < b1; b++) {
            const int8_t *xb = xr + 64 * b;
            v128_t v0 = wasm_v128_load(r0 + 16 * b), v1 = wasm_v128_load(r1 + 16 * b),
                   v2 = wasm_v128_load(r2 + 16 * b), v3 = wasm_v128_load(r3 + 16 * b), x;
#define TL__RDOT(a, v, s)                                                                                    \
    a = wasm_i16x8_add(a, wasm_i16x8_relaxed_dot_i8x16_i7x16(x, wasm_v128_and(wasm_u16x8_shr(v, s), m)))
#define TL__RDOT4(s) TL__RDOT(a0, v0, s), TL__RDOT(a1, v1, s), TL__RDOT(a2, v2, s), TL__RDOT(a3, v3, s)
            x = wasm_v128_load(xb), TL__RDOT4(0);
            x = wasm_v128_load(xb + 16), TL__RDOT4(2);
            x = wasm_v128_load(xb + 32), TL__RDOT4(4);
            x = wasm_v128_load(xb + 48), TL__RDOT4(6);
#undef TL__RDOT4
#undef TL__RDOT
        }
        t0 = wasm_i32x4_add(t0, wasm_i32x4_extadd_pairwise_i16x8(a0));
        t1 = wasm_i32x4_add(t1, wasm_i32x4_extadd_pairwise_i16x8(a1));
        t2 = wasm_i32x4_add(t2, wasm_i32x4_extadd_pairwise_i16x8(a2));
        t3 = wasm_i32x4_add(t3, wasm_i32x4_extadd_pairwise_i16x8(a3));
    }
#else
    const int16_t *xs = x_in;
    /* Field k of a lane masked in place is code_k << 2k; its x comes scaled by 4^(3 - k), so every
     * product is code * x * 64 and one accumulator per row takes all 8 fields (the high byte's
     * fields 4..7 are brought down by one shift and share the masks). Four rows share each load of
     * x: 8 weights of a row cost an and, a dot and an add. Lanes stay in range: a block adds 16
     * products of at most 128 * 127 * 64 to a lane, 64 blocks at most 2^30; the accumulators are
     * flushed every 64 blocks. */
    const v128_t m0 = wasm_i16x8_splat(3), m1 = wasm_i16x8_splat(3 << 2), m2 = wasm_i16x8_splat(3 << 4),
                 m3 = wasm_i16x8_splat(3 << 6);
    for (size_t b0 = 0; b0 < blocks; b0 += 64) {
        size_t b1 = blocks - b0 > 64 ? b0 + 64 : blocks;
        v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
        for (size_t b = b0; b < b1; b++) {
            const int16_t *xb = xs + 64 * b;
            v128_t v0 = wasm_v128_load(r0 + 16 * b), v1 = wasm_v128_load(r1 + 16 * b),
                   v2 = wasm_v128_load(r2 + 16 * b), v3 = wasm_v128_load(r3 + 16 * b), x;
#define TL__DOT4(m)                                                                                          \
    a0 = wasm_i32x4_add(a0, wasm_i32x4_dot_i16x8(wasm_v128_and(v0, m), x)),                                  \
    a1 = wasm_i32x4_add(a1, wasm_i32x4_dot_i16x8(wasm_v128_and(v1, m), x)),                                  \
    a2 = wasm_i32x4_add(a2, wasm_i32x4_dot_i16x8(wasm_v128_and(v2, m), x)),                                  \
    a3 = wasm_i32x4_add(a3, wasm_i32x4_dot_i16x8(wasm_v128_and(v3, m), x))
            x = wasm_v128_load(xb), TL__DOT4(m0);
            x = wasm_v128_load(xb + 8), TL__DOT4(m1);
            x = wasm_v128_load(xb + 16), TL__DOT4(m2);
            x = wasm_v128_load(xb + 24), TL__DOT4(m3);
            v0 = wasm_u16x8_shr(v0, 8), v1 = wasm_u16x8_shr(v1, 8), v2 = wasm_u16x8_shr(v2, 8),
            v3 = wasm_u16x8_shr(v3, 8);
            x = wasm_v128_load(xb + 32), TL__DOT4(m0);
            x = wasm_v128_load(xb + 40), TL__DOT4(m1);
            x = wasm_v128_load(xb + 48), TL__DOT4(m2);
            x = wasm_v128_load(xb + 56), TL__DOT4(m3);
#undef TL__DOT4
        }
        t0 = wasm_i32x4_add(t0, wasm_i32x4_shr(a0, 6)), t1 = wasm_i32x4_add(t1, wasm_i32x4_shr(a1, 6));
        t2 = wasm_i32x4_add(t2, wasm_i32x4_shr(a2, 6)), t3 = wasm_i32x4_add(t3, wasm_i32x4_shr(a3, 6));
    }
#endif
    /* transpose-add: lane i of s = sum of t_i's lanes */
    v128_t u0 = wasm_i32x4_add(wasm_i32x4_shuffle(t0, t1, 0, 4, 1, 5), wasm_i32x4_shuffle(t0, t1, 2, 6, 3, 7));
    v128_t u1 = wasm_i32x4_add(wasm_i32x4_shuffle(t2, t3, 0, 4, 1, 5), wasm_i32x4_shuffle(t2, t3, 2, 6, 3, 7));
    v128_t s = wasm_i32x4_add(wasm_i32x4_shuffle(u0, u1, 0, 1, 4, 5), wasm_i32x4_shuffle(u0, u1, 2, 3, 6, 7));
    s = wasm_i32x4_sub(s, wasm_i32x4_splat(x_sum));
    int32_t r[4];
    wasm_v128_store(r, s);
    for (size_t i = 0; i < n; i++) out[i] = r[i];
#else
    const int16_t *xs = x_in;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *row = rows + i * row_bytes;
        int32_t acc = 0;
        for (size_t b = 0; b < blocks; b++)
            for (unsigned w = 0; w < TL__I2_BLOCK_WEIGHTS; w++)
                acc += (int32_t)tl__i2_code(row + 16 * b, w) *
                       (xs[TL__I2_BLOCK_WEIGHTS * b + w] >> (2 * (3 - (w / 8) % 4)));
        out[i] = acc - x_sum;
    }
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
 * Workspace (internal.h): one buffer that grows and is kept between calls
 * ------------------------------------------------------------------------- */

tl_status tl__ws_reserve(tl__ws *ws, size_t bytes) {
    if (bytes <= ws->cap && ws->p) return TL_OK;
    void *p = tl__malloc(bytes ? bytes : 16);
    if (!p) return TL_ERR_NO_MEMORY;
    if (ws->p) memcpy(p, ws->p, ws->cap);
    tl__free(ws->p);
    ws->p = p, ws->cap = bytes;
    return TL_OK;
}

void tl__ws_free(tl__ws *ws) {
    tl__free(ws->p);
    ws->p = NULL, ws->cap = 0;
}

/* A call's parts of the workspace: sizes summed in 64 bits, each part 16-byte aligned. */
static uint64_t tl__rup16(uint64_t n) { return (n + 15) & ~(uint64_t)15; }
static tl_status tl__ws_need(tl__ws *ws, uint64_t bytes) {
    return bytes > (uint64_t)(size_t)-1 ? TL_ERR_NO_MEMORY : tl__ws_reserve(ws, (size_t)bytes);
}
static void *tl__take(uint8_t **cur, uint64_t bytes) {
    void *p = *cur;
    *cur += tl__rup16(bytes);
    return p;
}

/* ---------------------------------------------------------------------------
 * Splitting a product over threads (threads.c): by rows only, so that every output is computed
 * by one task exactly as one thread computes it (the same bits for any thread count). Each
 * thread has its own slot of per-thread scratch (tables, accumulators, decoded rows); what all
 * rows share (the prepared x) is made once by the calling thread.
 * ------------------------------------------------------------------------- */

typedef struct {
    size_t chunk, tasks, slots; /* rows per task, tasks, per-thread slots (threads that can take one) */
} tl__split;

/* Tasks of whole groups of `align` rows, `per` tasks per thread (more balance the load on a busy
 * machine; fewer repeat less per-task setup such as the tables). */
static tl__split tl__split_rows(const tl_matrix *m, size_t batch, size_t align, size_t per) {
    tl__split sp = {m->rows, 1, 1};
    size_t T = tl__threads_n();
    if (T < 2 || (uint64_t)m->rows * m->row_weights * batch < tl__par_min_work) return sp;
    size_t n = T * per, c = (m->rows + n - 1) / n;
    c = (c + align - 1) / align * align;
    sp.chunk = c, sp.tasks = (m->rows + c - 1) / c;
    sp.slots = sp.tasks < T ? sp.tasks : T;
    return sp;
}

/* ---------------------------------------------------------------------------
 * Argument checks shared by the public kernels
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

/* ---------------------------------------------------------------------------
 * Table kernels over i2 bytes
 *
 * Byte j (0..15) of an i2 block holds the codes of 4 weights: lane j / 2, fields 4 (j % 2) + i
 * (i = 0..3, bits 2i), i.e. columns 8 (4 (j % 2) + i) + j / 2 of the block. For every block of
 * x and every byte position, a table holds the value of all 3^4 code combinations
 * (sum_i v(code_i), v = -x, 0, +x); a row's product is then one lookup and one add per byte:
 * 4 weights. Each entry is (v0 + v1) + (v2 + v3), built from two 16-entry pair tables.
 *
 * Tables are built per tile of TL__TILE blocks (512 columns) and shared by every row of a band,
 * so they stay in L2 however wide x is. Per row and tile, byte j adds into chain j % 4; the tile's
 * part is (c0 + c1) + (c2 + c3), added to the row's running sum tile after tile. That is the float
 * summation order (docs/FORMATS.md), the same for batch 1 and larger batches and in every build
 * (the SIMD and scalar code make the same adds).
 *
 * Batched (L = 8 vectors per pass): the table entry of a combination is 8 values, one per vector
 * (float, or int16 for int8 activations), and each lookup is one vector add per 4 lanes: the
 * decoded weight byte is reused by the whole batch. Those tables are indexed by the base-3 number
 * of the 4 codes (81 entries, through tl__i2_b3) to keep them small.
 *
 * Other formats are decoded and re-encoded to i2 a band of rows at a time.
 * ------------------------------------------------------------------------- */

#define TL__TILE 2               /* i2 blocks (64 columns) per table tile (float) */
#define TL__TILE_I 1             /* the same for int8 (its tables are twice as wide) */
#define TL__L 8                  /* float vectors per pass of the batched table kernels */
#define TL__LI 32                /* int8 vectors per pass, at most (16 below 32 vectors) */
#define TL__BAND_I2 4096         /* rows per band read as they are (bounds the batched accumulators) */
#define TL__BAND_CONV 256        /* rows per band decoded and re-encoded */
/* int8 batches of TL__I8_TABLE_MIN vectors and more go through the tables, when there are
 * TL__I8_TABLE_MIN_ROWS rows and more to pay for building them. The relaxed build's dot products are
 * cheaper: at 4096x4096 (i2) they are 4x faster than the tables at batch 4 and even at batch 12. */
#if TL_RELAXED
#define TL__I8_TABLE_MIN 12
#else
#define TL__I8_TABLE_MIN 4
#endif
#define TL__I8_TABLE_MIN_ROWS 64

/* i2 byte -> base-3 index of its 4 codes (code 3, never in valid data, read as 1) */
#define TL__C3(b, s) ((((b) >> (s)) & 3) == 3 ? 1 : (((b) >> (s)) & 3))
#define TL__B3(b) (TL__C3(b, 0) + 3 * TL__C3(b, 2) + 9 * TL__C3(b, 4) + 27 * TL__C3(b, 6))
#define TL__B3_4(b) TL__B3(b), TL__B3(b + 1), TL__B3(b + 2), TL__B3(b + 3)
#define TL__B3_16(b) TL__B3_4(b), TL__B3_4(b + 4), TL__B3_4(b + 8), TL__B3_4(b + 12)
#define TL__B3_64(b) TL__B3_16(b), TL__B3_16(b + 16), TL__B3_16(b + 32), TL__B3_16(b + 48)
static const uint8_t tl__i2_b3[256] = {TL__B3_64(0), TL__B3_64(64), TL__B3_64(128), TL__B3_64(192)};

/* 64 trits -> one i2 block, `blocks` times (the trits of a decoded row, zero-padded). */
static void tl__i2_encode(const int8_t *t, size_t blocks, uint8_t *out) {
    for (size_t b = 0; b < blocks; b++) {
        const int8_t *tb = t + 64 * b;
#if TL_SIMD
        /* trits 16q..16q+15 are fields 2q (lanes 0..7) and 2q + 1 */
        const v128_t one = wasm_i16x8_splat(1);
        v128_t lane = wasm_i16x8_splat(0);
        for (int q = 0; q < 4; q++) {
            v128_t v = wasm_v128_load(tb + 16 * q);
            lane = wasm_v128_or(lane,
                                wasm_i16x8_shl(wasm_i16x8_add(wasm_i16x8_extend_low_i8x16(v), one), 4 * q));
            lane = wasm_v128_or(
                lane, wasm_i16x8_shl(wasm_i16x8_add(wasm_i16x8_extend_high_i8x16(v), one), 4 * q + 2));
        }
        wasm_v128_store(out + 16 * b, lane);
#else
        memset(out + 16 * b, 0, 16);
        for (unsigned w = 0; w < 64; w++)
            out[16 * b + tl__i2_byte(w)] |= (uint8_t)((unsigned)(tb[w] + 1) << tl__i2_shift(w));
#endif
    }
}

/* Rows r0.. r0 + n - 1 of m as i2 blocks (Q per row): the packed bytes as they are for i2, else
 * decoded (t: Q * 64 trits of scratch, the tail past row_weights zero) and re-encoded into buf. */
static const uint8_t *tl__i2_rows(const tl_matrix *m, size_t r0, size_t n, size_t Q, int8_t *t, uint8_t *buf,
                                  size_t *stride) {
    if (m->traits->rows_are_i2) {
        *stride = m->row_bytes;
        return m->data + r0 * m->row_bytes;
    }
    for (size_t i = 0; i < n; i++) {
        tl__decode_row(m, r0 + i, t);
        tl__i2_encode(t, Q, buf + i * 16 * Q);
    }
    *stride = 16 * Q;
    return buf;
}

/* o[c0 + 4 c1] = v(c0, x0) + v(c1, x1); v(0, x) = -x, v(2, x) = x, else 0 */
static void tl__pair_f32(float x0, float x1, float *o) {
    const float v0[4] = {-x0, 0.0f, x0, 0.0f}, v1[4] = {-x1, 0.0f, x1, 0.0f};
    for (int c1 = 0; c1 < 4; c1++)
        for (int c0 = 0; c0 < 4; c0++) o[c0 + 4 * c1] = v0[c0] + v1[c1];
}

/* Batch 1: 16 tables of 256 floats for block `blk` of x (columns past cols are 0). */
static void tl__tab1_block(const float *x, size_t cols, size_t blk, float *T) {
    for (unsigned j = 0; j < 16; j++) {
        float xi[4], lo[16], hi[16];
        for (unsigned i = 0; i < 4; i++) {
            size_t c = 64 * blk + tl__col_of(j, i);
            xi[i] = c < cols ? x[c] : 0.0f;
        }
        tl__pair_f32(xi[0], xi[1], lo), tl__pair_f32(xi[2], xi[3], hi);
        float *Tj = T + 256 * j;
        for (unsigned h = 0; h < 16; h++) {
            if ((h & 3) == 3 || h >> 2 == 3) continue; /* code 3: never read */
#if TL_SIMD
            v128_t hv = wasm_f32x4_splat(hi[h]);
            for (int v = 0; v < 4; v++)
                wasm_v128_store(Tj + 16 * h + 4 * v, wasm_f32x4_add(wasm_v128_load(lo + 4 * v), hv));
#else
            for (int l = 0; l < 16; l++) Tj[16 * h + l] = lo[l] + hi[h];
#endif
        }
    }
}

/* The table lookups are scalar on purpose: clang's SLP vectorizer otherwise packs the
 * independent chains into f32x4 lanes filled one replace_lane at a time, twice as slow (and it
 * would vectorize them again once inlined into a SIMD caller). */
#if defined(__wasm_simd128__) && defined(__clang__)
#define TL__SCALAR_CODE __attribute__((target("no-simd128"), noinline))
#else
#define TL__SCALAR_CODE
#endif

/* Two rows' parts of a tile (p and q), batch 1: eight chains in flight, the same order as one. */
TL__SCALAR_CODE static void tl__lut1_row2(const uint8_t *p, const uint8_t *q, const float *T, size_t nb,
                                          float *o0, float *o1) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f, u0 = 0.0f, u1 = 0.0f, u2 = 0.0f, u3 = 0.0f;
    for (size_t b = 0; b < nb; b++, p += 16, q += 16, T += 4096) {
        for (int j = 0; j < 16; j += 4) {
            const float *t = T + 256 * j;
            s0 += t[p[j]], u0 += t[q[j]], s1 += t[256 + p[j + 1]], u1 += t[256 + q[j + 1]];
            s2 += t[512 + p[j + 2]], u2 += t[512 + q[j + 2]], s3 += t[768 + p[j + 3]],
                u3 += t[768 + q[j + 3]];
        }
    }
    *o0 += (s0 + s1) + (s2 + s3);
    *o1 += (u0 + u1) + (u2 + u3);
}

/* One row's part of a tile (nb blocks from p), batch 1. */
TL__SCALAR_CODE static float tl__lut1_row(const uint8_t *p, const float *T, size_t nb) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    for (size_t b = 0; b < nb; b++, p += 16, T += 4096) {
        s0 += T[p[0]], s1 += T[256 + p[1]], s2 += T[512 + p[2]], s3 += T[768 + p[3]];
        s0 += T[1024 + p[4]], s1 += T[1280 + p[5]], s2 += T[1536 + p[6]], s3 += T[1792 + p[7]];
        s0 += T[2048 + p[8]], s1 += T[2304 + p[9]], s2 += T[2560 + p[10]], s3 += T[2816 + p[11]];
        s0 += T[3072 + p[12]], s1 += T[3328 + p[13]], s2 += T[3584 + p[14]], s3 += T[3840 + p[15]];
    }
    return (s0 + s1) + (s2 + s3);
}

/* Batched float: 16 tables of 81 x 8 floats for block `blk`, vectors b0..b0 + 7 (past batch: 0). */
static void tl__tab8_block(const float *x, size_t cols, size_t batch, size_t b0, size_t blk, float *T) {
    for (unsigned j = 0; j < 16; j++) {
        float xi[4][TL__L], lo[16][TL__L], hi[16][TL__L];
        for (unsigned i = 0; i < 4; i++) {
            size_t c = 64 * blk + tl__col_of(j, i);
            for (size_t l = 0; l < TL__L; l++)
                xi[i][l] = c < cols && b0 + l < batch ? x[(b0 + l) * cols + c] : 0.0f;
        }
        for (int c1 = 0; c1 < 3; c1++)
            for (int c0 = 0; c0 < 3; c0++)
                for (size_t l = 0; l < TL__L; l++) {
                    float a0 = c0 == 0 ? -xi[0][l] : c0 == 2 ? xi[0][l] : 0.0f;
                    float a1 = c1 == 0 ? -xi[1][l] : c1 == 2 ? xi[1][l] : 0.0f;
                    float a2 = c0 == 0 ? -xi[2][l] : c0 == 2 ? xi[2][l] : 0.0f;
                    float a3 = c1 == 0 ? -xi[3][l] : c1 == 2 ? xi[3][l] : 0.0f;
                    lo[c0 + 3 * c1][l] = a0 + a1, hi[c0 + 3 * c1][l] = a2 + a3;
                }
        float *Tj = T + 81 * TL__L * j;
        for (int h = 0; h < 9; h++)
            for (int o = 0; o < 9; o++) {
                float *e = Tj + (o + 9 * h) * TL__L;
#if TL_SIMD
                for (int v = 0; v < TL__L; v += 4)
                    wasm_v128_store(e + v,
                                    wasm_f32x4_add(wasm_v128_load(lo[o] + v), wasm_v128_load(hi[h] + v)));
#else
                for (size_t l = 0; l < TL__L; l++) e[l] = lo[o][l] + hi[h][l];
#endif
            }
    }
}

/* Entry of byte j of the current block (T: its 16 tables, p: its bytes) */
#define TL__E(j) (T + (81 * (j) + tl__i2_b3[p[j]]) * TL__L)

/* One row's part of a tile, 8 vectors: acc[l] += the tile's sum for vector l. */
static void tl__lut8_row(const uint8_t *p, const float *T, size_t nb, float *acc) {
#if TL_SIMD
    v128_t z = wasm_f32x4_splat(0.0f), a0 = z, b0 = z, a1 = z, b1 = z, a2 = z, b2 = z, a3 = z, b3 = z;
    for (size_t b = 0; b < nb; b++, p += 16, T += 16 * 81 * TL__L) {
#define TL__ADD(j, a, bb)                                                                                    \
    a = wasm_f32x4_add(a, wasm_v128_load(TL__E(j))), bb = wasm_f32x4_add(bb, wasm_v128_load(TL__E(j) + 4))
        TL__ADD(0, a0, b0), TL__ADD(1, a1, b1), TL__ADD(2, a2, b2), TL__ADD(3, a3, b3);
        TL__ADD(4, a0, b0), TL__ADD(5, a1, b1), TL__ADD(6, a2, b2), TL__ADD(7, a3, b3);
        TL__ADD(8, a0, b0), TL__ADD(9, a1, b1), TL__ADD(10, a2, b2), TL__ADD(11, a3, b3);
        TL__ADD(12, a0, b0), TL__ADD(13, a1, b1), TL__ADD(14, a2, b2), TL__ADD(15, a3, b3);
#undef TL__ADD
    }
    v128_t sa = wasm_f32x4_add(wasm_f32x4_add(a0, a1), wasm_f32x4_add(a2, a3));
    v128_t sb = wasm_f32x4_add(wasm_f32x4_add(b0, b1), wasm_f32x4_add(b2, b3));
    wasm_v128_store(acc, wasm_f32x4_add(wasm_v128_load(acc), sa));
    wasm_v128_store(acc + 4, wasm_f32x4_add(wasm_v128_load(acc + 4), sb));
#else
    float s[4][TL__L] = {{0}};
    for (size_t b = 0; b < nb; b++, p += 16, T += 16 * 81 * TL__L)
        for (int j = 0; j < 16; j++)
            for (size_t l = 0; l < TL__L; l++) s[j % 4][l] += TL__E(j)[l];
    for (size_t l = 0; l < TL__L; l++) acc[l] += (s[0][l] + s[1][l]) + (s[2][l] + s[3][l]);
#endif
}

/* Batched int8: 16 tables of 81 x L int16 (L <= TL__LI) for block `blk` (vectors b0.. of x, past batch 0). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((always_inline))
#endif
static inline void tl__tabi_block(const int8_t *x, size_t cols, size_t batch, size_t b0, size_t blk, size_t L,
                                  int16_t *T) {
    for (unsigned j = 0; j < 16; j++) {
        int16_t xi[4][TL__LI], lo[9][TL__LI], hi[9][TL__LI];
        for (unsigned i = 0; i < 4; i++) {
            size_t c = 64 * blk + tl__col_of(j, i);
            for (size_t l = 0; l < L; l++)
                xi[i][l] = c < cols && b0 + l < batch ? x[(b0 + l) * cols + c] : 0;
        }
        for (int c1 = 0; c1 < 3; c1++)
            for (int c0 = 0; c0 < 3; c0++)
                for (size_t l = 0; l < L; l++) {
                    lo[c0 + 3 * c1][l] = (int16_t)((c0 - 1) * xi[0][l] + (c1 - 1) * xi[1][l]);
                    hi[c0 + 3 * c1][l] = (int16_t)((c0 - 1) * xi[2][l] + (c1 - 1) * xi[3][l]);
                }
        int16_t *Tj = T + 81 * L * j;
        for (int h = 0; h < 9; h++)
            for (int o = 0; o < 9; o++) {
                int16_t *e = Tj + (o + 9 * h) * L;
#if TL_SIMD
                for (size_t v = 0; v < L; v += 8)
                    wasm_v128_store(e + v, wasm_i16x8_add(wasm_v128_load(lo[o] + v), wasm_v128_load(hi[h] + v)));
#else
                for (size_t l = 0; l < L; l++) e[l] = (int16_t)(lo[o][l] + hi[h][l]);
#endif
            }
    }
}

/* The builder with L a constant (the compiler vectorizes the lanes), one per width */
static void tl__tabi16_block(const int8_t *x, size_t cols, size_t batch, size_t b0, size_t blk, int16_t *T) {
    tl__tabi_block(x, cols, batch, b0, blk, 16, T);
}
static void tl__tabi32_block(const int8_t *x, size_t cols, size_t batch, size_t b0, size_t blk, int16_t *T) {
    tl__tabi_block(x, cols, batch, b0, blk, 32, T);
}

#undef TL__E

/* One row's part of a tile, L (16 or 32) int8 vectors, into int32 acc[L]. int16 lanes are safe: an
 * entry is at most 4 * 128 = 512 in size; a chain adds at most 8 entries per block (TL__TILE_I = 1)
 * and two chains are added before widening: 16 * 512 = 8192 < 32768. */
#define TL__E(j) (T + (81 * (j) + tl__i2_b3[p[j]]) * 16)
static void tl__luti16_row(const uint8_t *p, const int16_t *T, size_t nb, int32_t *acc) {
#if TL_SIMD
    v128_t a0 = wasm_i16x8_splat(0), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
    for (size_t b = 0; b < nb; b++, p += 16, T += 16 * 81 * 16) {
#define TL__ADD(j, a, c)                                                                                     \
    a = wasm_i16x8_add(a, wasm_v128_load(TL__E(j))), c = wasm_i16x8_add(c, wasm_v128_load(TL__E(j) + 8))
        TL__ADD(0, a0, c0), TL__ADD(1, a1, c1), TL__ADD(2, a2, c2), TL__ADD(3, a3, c3);
        TL__ADD(4, a0, c0), TL__ADD(5, a1, c1), TL__ADD(6, a2, c2), TL__ADD(7, a3, c3);
        TL__ADD(8, a0, c0), TL__ADD(9, a1, c1), TL__ADD(10, a2, c2), TL__ADD(11, a3, c3);
        TL__ADD(12, a0, c0), TL__ADD(13, a1, c1), TL__ADD(14, a2, c2), TL__ADD(15, a3, c3);
#undef TL__ADD
    }
        v128_t a = wasm_i16x8_add(a0, a1), b = wasm_i16x8_add(a2, a3), c = wasm_i16x8_add(c0, c1),
           d = wasm_i16x8_add(c2, c3);
    v128_t lo = wasm_i32x4_add(wasm_i32x4_extend_low_i16x8(a), wasm_i32x4_extend_low_i16x8(b));
    v128_t hi = wasm_i32x4_add(wasm_i32x4_extend_high_i16x8(a), wasm_i32x4_extend_high_i16x8(b));
    v128_t lo2 = wasm_i32x4_add(wasm_i32x4_extend_low_i16x8(c), wasm_i32x4_extend_low_i16x8(d));
    v128_t hi2 = wasm_i32x4_add(wasm_i32x4_extend_high_i16x8(c), wasm_i32x4_extend_high_i16x8(d));
    wasm_v128_store(acc, wasm_i32x4_add(wasm_v128_load(acc), lo));
    wasm_v128_store(acc + 4, wasm_i32x4_add(wasm_v128_load(acc + 4), hi));
    wasm_v128_store(acc + 8, wasm_i32x4_add(wasm_v128_load(acc + 8), lo2));
    wasm_v128_store(acc + 12, wasm_i32x4_add(wasm_v128_load(acc + 12), hi2));
#else
    for (size_t b = 0; b < nb; b++, p += 16, T += 16 * 81 * 16)
        for (int j = 0; j < 16; j++)
            for (size_t l = 0; l < 16; l++) acc[l] += TL__E(j)[l];
#endif
}
#undef TL__E
#define TL__E(j) (T + (81 * (j) + tl__i2_b3[p[j]]) * 32)
static void tl__luti32_row(const uint8_t *p, const int16_t *T, size_t nb, int32_t *acc) {
#if TL_SIMD
    /* two chains (even and odd bytes) of 32 / 8 vectors each */
    v128_t a0 = wasm_i16x8_splat(0), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
    for (size_t b = 0; b < nb; b++, p += 16, T += 16 * 81 * 32) {
#define TL__ADD4(j, x0, x1, x2, x3)                                                                          \
    do {                                                                                                     \
        const int16_t *e = TL__E(j);                                                                         \
        x0 = wasm_i16x8_add(x0, wasm_v128_load(e)), x1 = wasm_i16x8_add(x1, wasm_v128_load(e + 8));          \
        x2 = wasm_i16x8_add(x2, wasm_v128_load(e + 16)), x3 = wasm_i16x8_add(x3, wasm_v128_load(e + 24));    \
    } while (0)
        for (int j = 0; j < 16; j += 2) {
            TL__ADD4(j, a0, a1, a2, a3);
            TL__ADD4(j + 1, c0, c1, c2, c3);
        }
#undef TL__ADD4
    }
    const v128_t v[4] = {wasm_i16x8_add(a0, c0), wasm_i16x8_add(a1, c1), wasm_i16x8_add(a2, c2),
                         wasm_i16x8_add(a3, c3)};
    for (int k = 0; k < 4; k++) {
        wasm_v128_store(acc + 8 * k, wasm_i32x4_add(wasm_v128_load(acc + 8 * k), wasm_i32x4_extend_low_i16x8(v[k])));
        wasm_v128_store(acc + 8 * k + 4,
                        wasm_i32x4_add(wasm_v128_load(acc + 8 * k + 4), wasm_i32x4_extend_high_i16x8(v[k])));
    }
#else
    for (size_t b = 0; b < nb; b++, p += 16, T += 16 * 81 * 32)
        for (int j = 0; j < 16; j++)
            for (size_t l = 0; l < 32; l++) acc[l] += TL__E(j)[l];
#endif
}
#undef TL__E

/* The table kernels' driver. x is float (xi8 NULL) or int8 (xf NULL); out (float) or acc (int32).
 * Batch 1 float uses the 256-entry tables; everything else 8 vectors per pass. */
typedef struct {
    size_t Q, band, nband, L, tile; /* L: vectors per pass, tile: blocks per table tile */
    int conv, one;
    uint64_t tab_bytes, acc_bytes, total;
} tl__lut_plan;

static tl__lut_plan tl__lut_layout(const tl_matrix *m, int is_float, size_t batch) {
    tl__lut_plan p;
    p.Q = (m->row_weights + 63) / 64;
    p.conv = !m->traits->rows_are_i2, p.one = is_float && batch == 1;
    p.band = p.conv ? TL__BAND_CONV : TL__BAND_I2, p.nband = m->rows < p.band ? m->rows : p.band;
    p.L = is_float ? TL__L : batch >= TL__LI ? TL__LI : 16;
    p.tile = is_float ? TL__TILE : TL__TILE_I;
    p.tab_bytes = p.one ? (uint64_t)p.tile * 16 * 256 * 4 : (uint64_t)p.tile * 16 * 81 * p.L * (is_float ? 4 : 2);
    p.acc_bytes = p.one ? 0 : (uint64_t)p.nband * p.L * 4;
    p.total = tl__rup16(p.tab_bytes) + tl__rup16(p.acc_bytes) +
              (p.conv ? tl__rup16((uint64_t)p.Q * 64) + tl__rup16((uint64_t)p.nband * p.Q * 16) : 0);
    return p;
}

/* Rows ra..rb - 1 of the product; w: tl__lut_layout(...).total bytes of workspace, 16-byte aligned */
static void tl__lut_rows(const tl_matrix *m, const float *xf, const int8_t *xi8, size_t batch,
                         const float *x_scales, int32_t *acc, float *out, uint8_t *w, size_t ra, size_t rb) {
    const tl__lut_plan pl = tl__lut_layout(m, xf != NULL, batch);
    const size_t rows = m->rows, cols = m->cols, Q = pl.Q, band = pl.band, nband = pl.nband, L = pl.L;
    const int conv = pl.conv, one = pl.one;
    const uint64_t tab_bytes = pl.tab_bytes, acc_bytes = pl.acc_bytes;
    uint8_t *cur = w;
    void *T = tl__take(&cur, tab_bytes);
    void *A = tl__take(&cur, acc_bytes);
    int8_t *t = conv ? tl__take(&cur, (uint64_t)Q * 64) : NULL;
    uint8_t *buf = conv ? tl__take(&cur, (uint64_t)nband * Q * 16) : NULL;
    if (t) memset(t + m->row_weights, 0, Q * 64 - m->row_weights);

    for (size_t r0 = ra; r0 < rb; r0 += band) {
        size_t nr = rb - r0 < band ? rb - r0 : band, stride;
        const uint8_t *base = tl__i2_rows(m, r0, nr, Q, t, buf, &stride);
        for (size_t b0 = 0; b0 < batch; b0 += one ? 1 : L) {
            if (one)
                for (size_t r = 0; r < nr; r++) out[r0 + r] = 0.0f;
            else
                memset(A, 0, nr * L * 4);
            for (size_t k0 = 0; k0 < Q; k0 += pl.tile) {
                size_t nb = Q - k0 < pl.tile ? Q - k0 : pl.tile;
                for (size_t k = 0; k < nb; k++) {
                    if (one)
                        tl__tab1_block(xf, cols, k0 + k, (float *)T + k * 16 * 256);
                    else if (xf)
                        tl__tab8_block(xf, cols, batch, b0, k0 + k, (float *)T + k * 16 * 81 * TL__L);
                    else if (L == 16)
                        tl__tabi16_block(xi8, cols, batch, b0, k0 + k, (int16_t *)T + k * 16 * 81 * 16);
                    else
                        tl__tabi32_block(xi8, cols, batch, b0, k0 + k, (int16_t *)T + k * 16 * 81 * 32);
                }
                const uint8_t *p = base + 16 * k0;
                if (one) {
                    size_t r = 0;
                    for (; r + 2 <= nr; r += 2)
                        tl__lut1_row2(p + r * stride, p + (r + 1) * stride, T, nb, out + r0 + r,
                                      out + r0 + r + 1);
                    if (r < nr) out[r0 + r] += tl__lut1_row(p + r * stride, T, nb);
                } else if (xf)
                    for (size_t r = 0; r < nr; r++)
                        tl__lut8_row(p + r * stride, T, nb, (float *)A + r * TL__L);
                else if (L == 16)
                    for (size_t r = 0; r < nr; r++) tl__luti16_row(p + r * stride, T, nb, (int32_t *)A + r * 16);
                else
                    for (size_t r = 0; r < nr; r++) tl__luti32_row(p + r * stride, T, nb, (int32_t *)A + r * 32);
            }
            if (one) {
                for (size_t r = 0; r < nr; r++) out[r0 + r] *= m->scales[r0 + r];
                continue;
            }
            for (size_t r = 0; r < nr; r++)
                for (size_t l = 0; l < L && b0 + l < batch; l++) {
                    size_t i = (b0 + l) * rows + r0 + r;
                    if (xf)
                        out[i] = ((float *)A)[r * L + l] * m->scales[r0 + r];
                    else
                        tl__emit(m, b0 + l, r0 + r, ((int32_t *)A)[r * L + l],
                                 x_scales ? x_scales[b0 + l] : 1.0f, acc, out);
                }
        }
    }
}

/* Tables: tl__lut_rows per task, each thread with its own tables and accumulators (the table
 * building is repeated per task, so one task per thread). */
#define TL__TASKS_LUT 1

typedef struct {
    const tl_matrix *m;
    const float *xf, *x_scales;
    const int8_t *xi8;
    size_t batch, chunk;
    int32_t *acc;
    float *out;
    uint8_t *w;
    uint64_t slot;
} tl__lut_job;

static void tl__lut_task(void *c, size_t task, unsigned thread) {
    const tl__lut_job *j = c;
    size_t ra = task * j->chunk, rb = j->m->rows - ra < j->chunk ? j->m->rows : ra + j->chunk;
    tl__lut_rows(j->m, j->xf, j->xi8, j->batch, j->x_scales, j->acc, j->out, j->w + thread * j->slot, ra, rb);
}

static uint64_t tl__lut_need(const tl_matrix *m, int is_float, size_t batch) {
    return tl__split_rows(m, batch, 4, TL__TASKS_LUT).slots * tl__rup16(tl__lut_layout(m, is_float, batch).total);
}

/* w: tl__lut_need bytes */
static void tl__lut_matmul(const tl_matrix *m, const float *xf, const int8_t *xi8, size_t batch,
                           const float *x_scales, int32_t *acc, float *out, uint8_t *w) {
    tl__split sp = tl__split_rows(m, batch, 4, TL__TASKS_LUT);
    tl__lut_job j = {m, xf, x_scales, xi8, batch, sp.chunk, acc, out, w,
                     tl__rup16(tl__lut_layout(m, xf != NULL, batch).total)};
    tl__parallel(sp.tasks, tl__lut_task, &j);
}

/* ---------------------------------------------------------------------------
 * int8 by dot products (small batches): int16 copies of x, one dot per row and vector
 * ------------------------------------------------------------------------- */

/* Rows per task: 4 tasks per thread (the x copies are shared, a task costs nothing to start) */
#define TL__TASKS_DOT 4

static tl__split tl__i8_dot_split(const tl_matrix *m, size_t batch) {
    return tl__split_rows(m, batch, 4, TL__TASKS_DOT);
}

/* the int16 (or int8) copies of x and their sums, shared; per thread a decoded row (formats
 * without dot_x16) */
static uint64_t tl__i8_dot_need(const tl_matrix *m, size_t batch) {
    return tl__rup16((uint64_t)batch * m->row_weights * 2) + tl__rup16((uint64_t)batch * 4) +
           (m->traits->dot_x16 ? 0 : tl__i8_dot_split(m, batch).slots * tl__rup16((uint64_t)m->row_weights + 16));
}

typedef struct {
    const tl_matrix *m;
    const int16_t *x16;
    const int32_t *sums;
    const float *x_scales;
    size_t batch, chunk;
    int32_t *acc;
    float *out;
    int8_t *t;
    uint64_t slot;
} tl__i8_dot_job;

static void tl__i8_dot_task(void *c, size_t task, unsigned thread) {
    const tl__i8_dot_job *j = c;
    const tl_matrix *m = j->m;
    size_t P = m->row_weights, ra = task * j->chunk, rb = m->rows - ra < j->chunk ? m->rows : ra + j->chunk;
    if (m->traits->dot_x16) {
        for (size_t r = ra; r < rb; r += 4) {
            size_t n = rb - r < 4 ? rb - r : 4;
            for (size_t b = 0; b < j->batch; b++) {
                int32_t a[4];
                m->traits->dot_x16(m->data + r * m->row_bytes, m->row_bytes, n, j->x16 + b * P, j->sums[b], a);
                for (size_t i = 0; i < n; i++)
                    tl__emit(m, b, r + i, a[i], j->x_scales ? j->x_scales[b] : 1.0f, j->acc, j->out);
            }
        }
        return;
    }
    int8_t *t = j->t + thread * j->slot;
    for (size_t r = ra; r < rb; r++) {
        tl__decode_row(m, r, t);
        for (size_t b = 0; b < j->batch; b++) {
#if TL_RELAXED
            int32_t a = tl__dot_t8_x8(t, (const int8_t *)(j->x16 + b * P), P, j->sums[b]);
#else
            (void)j->sums;
            int32_t a = tl__dot_t8_x16(t, j->x16 + b * P, P);
#endif
            tl__emit(m, b, r, a, j->x_scales ? j->x_scales[b] : 1.0f, j->acc, j->out);
        }
    }
}

static void tl__i8_dot(const tl_matrix *m, const int8_t *x, size_t batch, const float *x_scales, int32_t *acc,
                       float *out, uint8_t *w) {
    size_t P = m->row_weights, cols = m->cols;
    uint64_t xb = (uint64_t)batch * P * 2, sb = (uint64_t)batch * 4;
    tl__split sp = tl__i8_dot_split(m, batch);
    uint8_t *cur = w;
    int16_t *x16 = tl__take(&cur, xb); /* int8 in the relaxed build's i2 layout: half used */
    int32_t *sums = tl__take(&cur, sb);
    for (size_t b = 0; b < batch; b++) {
        int32_t sum = 0;
        for (size_t c = 0; c < cols; c++) sum += x[b * cols + c];
        sums[b] = sum;
        if (m->traits->dot_x16)
            tl__i2_x16(x + b * cols, cols, P, x16 + b * P);
        else {
#if TL_RELAXED
            int8_t *x8 = (int8_t *)(x16 + b * P); /* int8 for tl__dot_t8_x8 */
            memcpy(x8, x + b * cols, cols);
            memset(x8 + cols, 0, P - cols);
#else
            for (size_t c = 0; c < cols; c++) x16[b * P + c] = x[b * cols + c];
            for (size_t c = cols; c < P; c++) x16[b * P + c] = 0;
#endif
        }
    }
    tl__i8_dot_job j = {m, x16, sums, x_scales, batch, sp.chunk, acc, out, (int8_t *)cur,
                        tl__rup16((uint64_t)P + 16)};
    tl__parallel(sp.tasks, tl__i8_dot_task, &j);
}

/* int8 by tables (batches of TL__I8_TABLE_MIN and more, TL__I8_TABLE_MIN_ROWS rows and more) or by dot
 * products */
static int tl__i8_tables(const tl_matrix *m, size_t batch) {
    return batch >= TL__I8_TABLE_MIN && m->rows >= TL__I8_TABLE_MIN_ROWS;
}
static uint64_t tl__i8_need(const tl_matrix *m, size_t batch) {
    return tl__i8_tables(m, batch) ? tl__lut_need(m, 0, batch) : tl__i8_dot_need(m, batch);
}
static void tl__i8_run(const tl_matrix *m, const int8_t *x, size_t batch, const float *x_scales, int32_t *acc,
                       float *out, uint8_t *w) {
    if (tl__i8_tables(m, batch))
        tl__lut_matmul(m, NULL, x, batch, x_scales, acc, out, w);
    else
        tl__i8_dot(m, x, batch, x_scales, acc, out, w);
}

/* ---------------------------------------------------------------------------
 * Internal entry points (internal.h): no argument checks, a caller's workspace
 * ------------------------------------------------------------------------- */

tl_status tl__matmul_i8_ws(const tl_matrix *m, const int8_t *x, size_t batch, const float *x_scales,
                           int32_t *acc, float *out, tl__ws *ws) {
    tl_status s = tl__ws_need(ws, tl__i8_need(m, batch));
    if (s) return s;
    tl__i8_run(m, x, batch, x_scales, acc, out, ws->p);
    return TL_OK;
}

tl_status tl__matmul_f32_ws(const tl_matrix *m, const float *x, size_t batch, float *out, tl__ws *ws) {
    tl_status s = tl__ws_need(ws, tl__lut_need(m, 1, batch));
    if (s) return s;
    tl__lut_matmul(m, x, NULL, batch, NULL, NULL, out, ws->p);
    return TL_OK;
}

tl_status tl__matmul_f32_i8_ws(const tl_matrix *m, const float *x, size_t batch, float *out, tl__ws *ws) {
    /* the quantized copy and its scales at the front of the workspace, the product's parts after */
    uint64_t n = (uint64_t)batch * m->cols, head = tl__rup16(n) + tl__rup16((uint64_t)batch * 4);
    tl_status s = tl__ws_need(ws, head + tl__i8_need(m, batch));
    if (s) return s;
    int8_t *xq = ws->p;
    float *xs = (float *)((uint8_t *)ws->p + tl__rup16(n));
    tl__quantize_i8(x, m->cols, batch, xq, xs);
    tl__i8_run(m, xq, batch, xs, NULL, out, (uint8_t *)ws->p + head);
    return TL_OK;
}

typedef struct {
    const tl_matrix *m;
    const uint64_t *xw;
    size_t words, batch, chunk;
    int32_t *acc;
    float *out;
} tl__bits_job;

static void tl__bits_task(void *c, size_t task, unsigned thread) {
    const tl__bits_job *j = c;
    const tl_matrix *m = j->m;
    size_t ra = task * j->chunk, rb = m->rows - ra < j->chunk ? m->rows : ra + j->chunk;
    (void)thread;
    for (size_t r = ra; r < rb; r++) {
        const uint8_t *row = m->data + r * m->row_bytes;
        for (size_t b = 0; b < j->batch; b++)
            tl__emit(m, b, r, m->traits->dot_bits(row, m->row_bytes, j->xw + b * j->words), 1.0f, j->acc, j->out);
    }
}

tl_status tl__matmul_binary_ws(const tl_matrix *m, const uint8_t *x, size_t batch, int32_t *acc, float *out,
                               tl__ws *ws) {
    size_t xb = tl_binary_row_bytes(m->cols);
    tl_status s;
    if (m->traits->dot_bits) {
        /* Copy each vector into whole 64-bit words, bits past cols cleared. */
        size_t words = m->row_bytes / 16; /* per plane: row_bytes / 2 bytes = row_bytes / 16 words */
        if ((s = tl__ws_need(ws, (uint64_t)batch * words * 8))) return s;
        uint64_t *xw = ws->p;
        memset(xw, 0, batch * words * 8);
        for (size_t b = 0; b < batch; b++) {
            uint8_t *dst = (uint8_t *)(xw + b * words);
            memcpy(dst, x + b * xb, xb);
            if (m->cols % 8) dst[xb - 1] &= (uint8_t)((1u << (m->cols % 8)) - 1);
        }
        tl__split sp = tl__split_rows(m, batch, 1, TL__TASKS_DOT);
        tl__bits_job j = {m, xw, words, batch, sp.chunk, acc, out};
        tl__parallel(sp.tasks, tl__bits_task, &j);
        return TL_OK;
    }
    /* Other formats: the bits become 0/1 int8 activations for the int path. */
    uint64_t head = tl__rup16((uint64_t)batch * m->cols);
    if ((s = tl__ws_need(ws, head + tl__i8_need(m, batch)))) return s;
    int8_t *x8 = ws->p;
    for (size_t b = 0; b < batch; b++)
        for (size_t c = 0; c < m->cols; c++)
            x8[b * m->cols + c] = (int8_t)((x[b * xb + c / 8] >> (c % 8)) & 1);
    tl__i8_run(m, x8, batch, NULL, acc, out, (uint8_t *)ws->p + head);
    return TL_OK;
}

/* ---------------------------------------------------------------------------
 * Public kernels: check, make a workspace, run, free it
 * ------------------------------------------------------------------------- */

size_t tl_binary_row_bytes(size_t cols) { return (cols + 7) / 8; }

/* A product of finite inputs whose float output overflowed (an absurd scale) is NON_FINITE,
 * never a silent infinity or NaN. */
static tl_status tl__finite_out(tl_status s, const tl_matrix *m, const float *out, size_t n) {
    size_t bad = s || !out ? n : tl__first_non_finite(out, n);
    if (bad == n) return s;
    return tl__fail(TL_ERR_NON_FINITE, "output[%zu] overflowed float32 (row %zu, scale %g)", bad, bad % m->rows,
                    (double)m->scales[bad % m->rows]);
}

tl_status tl_matmul_binary(const tl_matrix *m, const uint8_t *x, size_t x_bytes, size_t batch, int32_t *acc,
                           float *out, size_t out_len) {
    tl_status s = tl__check_kernel(m, x, batch, acc, out, out_len);
    if (s) return s;
    if (x_bytes != batch * tl_binary_row_bytes(m->cols)) return TL_ERR_SIZE;
    tl__ws ws = {NULL, 0};
    s = tl__matmul_binary_ws(m, x, batch, acc, out, &ws);
    tl__ws_free(&ws);
    return tl__finite_out(s, m, out, batch * m->rows);
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
    tl__ws ws = {NULL, 0};
    s = tl__matmul_i8_ws(m, x, batch, x_scales, acc, out, &ws);
    tl__ws_free(&ws);
    return tl__finite_out(s, m, out, batch * m->rows);
}

tl_status tl_matmul_f32(const tl_matrix *m, const float *x, size_t x_len, size_t batch, float *out,
                        size_t out_len) {
    int32_t dummy;
    tl_status s = tl__check_kernel(m, x, batch, out ? NULL : &dummy, out, out_len);
    if (s) return s;
    if (!out) return TL_ERR_NULL;
    if (x_len != batch * m->cols) return TL_ERR_SIZE;
    if (tl__first_non_finite(x, x_len) != x_len) return TL_ERR_NON_FINITE;
    tl__ws ws = {NULL, 0};
    s = tl__matmul_f32_ws(m, x, batch, out, &ws);
    tl__ws_free(&ws);
    return tl__finite_out(s, m, out, batch * m->rows);
}

tl_status tl_matmul_f32_i8(const tl_matrix *m, const float *x, size_t x_len, size_t batch, float *out,
                           size_t out_len) {
    int32_t dummy;
    tl_status s = tl__check_kernel(m, x, batch, out ? NULL : &dummy, out, out_len);
    if (s) return s;
    if (!out) return TL_ERR_NULL;
    if (x_len != batch * m->cols) return TL_ERR_SIZE;
    if (m->cols > TL_MAX_I8_COLS) return TL_ERR_OVERFLOW;
    if (tl__first_non_finite(x, x_len) != x_len) return TL_ERR_NON_FINITE;
    tl__ws ws = {NULL, 0};
    s = tl__matmul_f32_i8_ws(m, x, batch, out, &ws);
    tl__ws_free(&ws);
    return tl__finite_out(s, m, out, batch * m->rows);
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
    return tl__finite_out(TL_OK, m, out, batch * m->rows);
}

/* tl_ref_quantize_activations_i8's numbers (the max of |x|, s = 127 / max(mx, 1e-5), rint(x * s)
 * clamped), 16 values per step: f32x4.nearest is rintf's round-half-even, the clamp comes before
 * the conversion, so the saturating narrowings never change a value. */
void tl__quantize_i8(const float *x, size_t cols, size_t batch, int8_t *xq, float *scales) {
#if TL_SIMD
    for (size_t b = 0; b < batch; b++) {
        const float *v = x + b * cols;
        int8_t *q = xq + b * cols;
        v128_t m4 = wasm_f32x4_splat(0.0f);
        size_t c = 0;
        for (; c + 4 <= cols; c += 4) m4 = wasm_f32x4_pmax(m4, wasm_f32x4_abs(wasm_v128_load(v + c)));
        float mx = 0.0f;
        for (int k = 0; k < 4; k++) {
            float l = wasm_f32x4_extract_lane(m4, 0);
            mx = l > mx ? l : mx;
            m4 = wasm_i32x4_shuffle(m4, m4, 1, 2, 3, 0);
        }
        for (; c < cols; c++) mx = fabsf(v[c]) > mx ? fabsf(v[c]) : mx;
        float sc = 127.0f / (mx > 1e-5f ? mx : 1e-5f);
        const v128_t sv = wasm_f32x4_splat(sc), lo = wasm_f32x4_splat(-128.0f), hi = wasm_f32x4_splat(127.0f);
#define TL__Q4(i)                                                                                            \
    wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_pmin(                                                              \
        hi, wasm_f32x4_pmax(lo, wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(v + c + 4 * (i)), sv)))))
        for (c = 0; c + 16 <= cols; c += 16) {
            v128_t a = wasm_i16x8_narrow_i32x4(TL__Q4(0), TL__Q4(1)), d = wasm_i16x8_narrow_i32x4(TL__Q4(2), TL__Q4(3));
            wasm_v128_store(q + c, wasm_i8x16_narrow_i16x8(a, d));
        }
#undef TL__Q4
        for (; c < cols; c++) {
            float r = rintf(v[c] * sc);
            q[c] = (int8_t)(r < -128.0f ? -128.0f : r > 127.0f ? 127.0f : r);
        }
        scales[b] = sc;
    }
#else
    tl_ref_quantize_activations_i8(x, cols, batch, xq, scales);
#endif
}

tl_status tl_quantize_activations_i8(const float *x, size_t x_len, size_t batch, int8_t *xq, float *scales) {
    if (!x || !xq || !scales) return TL_ERR_NULL;
    if (batch == 0 || x_len == 0) return TL_ERR_EMPTY;
    if (x_len > TL_MAX_ELEMENTS) return TL_ERR_OVERFLOW;
    if (x_len % batch) return TL_ERR_SIZE;
    if (tl__first_non_finite(x, x_len) != x_len) return TL_ERR_NON_FINITE;
    tl__quantize_i8(x, x_len / batch, batch, xq, scales);
    return TL_OK;
}
