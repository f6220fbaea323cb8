/* kernels.c — products of packed ternary matrices with binary, sparse, int8 and float activations.
 *
 * Paths (each format's fast paths are entries of its row in src/formats.c):
 *   - bitplane x binary, batches of 4 and more (or the column copy off): popcount(x & pos) -
 *     popcount(x & neg), 64 bits at a time (dot_bits);
 *   - every other path is one exact integer product of int16 vectors (|x| <= 511): int8
 *     activations widened, or the 12-bit digits (|x| <= 4095, batch 1) or whole values (batches)
 *     of a float vector's fixed-point form ("Float activations" below), so float and int8
 *     activations share the kernels, and a vector's outputs are the same bits in every build and
 *     at any batch;
 *   - few vectors (under 4, or under 64 rows): i2 puts the codes of 8 consecutive weights in the
 *     16-bit lanes of a vector after one mask, so the product is i32x4.dot_i16x8_s(codes, x) per
 *     8 weights; codes are trit + 1, so sum(x * trit) = sum(x * code) - sum(x). The relaxed build
 *     multiplies int8 activations as bytes (relaxed_dot). Other formats: a decoded row, reused by
 *     every vector;
 *   - batches: tables of x over each i2 byte's 4 weights for 16 or 32 vectors, shared by all rows
 *     ("Table kernels" below): one lookup per 4 weights feeds the whole pass. tq1 and bitplane
 *     rows are re-encoded to i2 a band at a time;
 *   - binary otherwise: the integer product on 0/1 activations; fused float -> int8
 *     (tl_matmul_f32_i8): the activation quantizer, then the int8 path;
 *   - sparse vectors of few (the columns below), index lists: a column-major copy of the trits
 *     (built on first use, i2 codes along the rows; the only derived copy a matrix keeps, counted
 *     by tl_mem_live_bytes) lets each nonzero column add its codes times its value to 64 row
 *     accumulators at a time; values of one magnitude (binary, index lists, +-1) only add codes.
 * Every path has the plain reference in kernels_ref.c, checked bit for bit in every build
 * (the float path to a tolerance: it rounds x to fixed point, docs/FORMATS.md).
 * The threaded builds split every product by rows over their workers
 * ("Splitting a product over threads" below): the same bits on any number of threads.
 */
#include <math.h>
#include <stdlib.h>

#include "formats.h"
#include "internal.h"

#include "simd.h"

/* Decode packed row r of m into m->row_weights trits (the format's SIMD decoder). */
void tl__decode_row(const tl_matrix *m, size_t r, int8_t *out) {
    const tl__format_traits *f = m->traits;
    if (f->tile_rows == 1) {
        f->decode_row(m->data + r * m->row_bytes, m->row_bytes, out);
        return;
    }
    for (size_t k = 0; k < m->row_bytes / f->block_bytes; k++)
        f->decode_row(tl__tile_block(m, r, k), f->block_bytes, out + k * f->block_weights);
}

/* ---------------------------------------------------------------------------
 * Dot products (n is a multiple of 16: rows are whole blocks)
 *
 * The integer paths take x as int16 vectors with |x| <= 511: int8 activations widened, or the
 * two pieces of a float vector's fixed-point form (tl__f32_split). The relaxed build also keeps
 * int8 x as it is for its int8 dot products (relaxed_dot multiplies bytes).
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
#endif

/* sum t[i] * x[i] for decoded trits and int16 activations (|sum| < 2^31: the lanes add modulo
 * 2^32 and the total is right). */
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
    return (int32_t)((uint32_t)wasm_i32x4_extract_lane(a0, 0) + (uint32_t)wasm_i32x4_extract_lane(a0, 1) +
                     (uint32_t)wasm_i32x4_extract_lane(a0, 2) + (uint32_t)wasm_i32x4_extract_lane(a0, 3));
#else
    int64_t acc = 0;
    for (size_t i = 0; i < n; i++) acc += t[i] * x[i];
    return (int32_t)acc;
#endif
}

/* Column c of the block's 64 (byte j, field i) */
static size_t tl__col_of(unsigned j, unsigned i) { return 8 * (4 * (j % 2) + i) + j / 2; }

/* x in the layout tl__i2_dot_w16 takes: int16, zero-padded to whole blocks, column c of block q
 * (group g = c / 8 of its 8 groups of 8 columns) times 4^(3 - g % 4) (|x| <= 511: fits int16);
 * wide: times 4^(1 - g % 2) instead (|x| <= 4095). */
static int tl__xw_shift(size_t c, int wide) { return wide ? 2 * (1 - (int)(c / 8) % 2) : 2 * (3 - (int)(c / 8) % 4); }
static void tl__i2_xw(const int16_t *x, size_t cols, size_t padded, int wide, int16_t *xs) {
    size_t c = 0;
#if TL_SIMD
    for (; c + 32 <= cols; c += 32) {
        wasm_v128_store(xs + c, wasm_i16x8_shl(wasm_v128_load(x + c), wide ? 2 : 6));
        wasm_v128_store(xs + c + 8, wasm_i16x8_shl(wasm_v128_load(x + c + 8), wide ? 0 : 4));
        wasm_v128_store(xs + c + 16, wasm_i16x8_shl(wasm_v128_load(x + c + 16), 2));
        wasm_v128_store(xs + c + 24, wasm_v128_load(x + c + 24));
    }
#endif
    for (; c < padded; c++) xs[c] = c < cols ? (int16_t)(x[c] * (1 << tl__xw_shift(c, wide))) : 0;
}

/* sum of n int16 (|sum| < 2^31) */
static int32_t tl__sum16(const int16_t *x, size_t n) {
    size_t c = 0;
    int32_t s = 0;
#if TL_SIMD
    v128_t a = wasm_i32x4_splat(0);
    for (; c + 8 <= n; c += 8) a = wasm_i32x4_add(a, wasm_i32x4_extadd_pairwise_i16x8(wasm_v128_load(x + c)));
    s = (int32_t)((uint32_t)wasm_i32x4_extract_lane(a, 0) + (uint32_t)wasm_i32x4_extract_lane(a, 1) +
                  (uint32_t)wasm_i32x4_extract_lane(a, 2) + (uint32_t)wasm_i32x4_extract_lane(a, 3));
#endif
    for (; c < n; c++) s += x[c];
    return s;
}

#if TL_SIMD
/* Transpose-add: lane i of the result = the sum of t_i's four lanes (modulo 2^32). */
static inline v128_t tl__hsum4(v128_t t0, v128_t t1, v128_t t2, v128_t t3) {
    v128_t u0 = wasm_i32x4_add(wasm_i32x4_shuffle(t0, t1, 0, 4, 1, 5), wasm_i32x4_shuffle(t0, t1, 2, 6, 3, 7));
    v128_t u1 = wasm_i32x4_add(wasm_i32x4_shuffle(t2, t3, 0, 4, 1, 5), wasm_i32x4_shuffle(t2, t3, 2, 6, 3, 7));
    return wasm_i32x4_add(wasm_i32x4_shuffle(u0, u1, 0, 1, 4, 5), wasm_i32x4_shuffle(u0, u1, 2, 3, 6, 7));
}
#endif

/* sum trit[i] * x[i] over the n (1..4) rows of an i2 tile (matrix.c: block b of row i at
 * tile + 16 (n b + i)), x in tl__i2_xw's layout (wide or not), x_sum = sum x: out[i] for row i.
 * Wide (|x| <= 4095, the float path's two 12-bit digits): fields are taken two at a time, after a
 * shift of the lanes by 4, so x is scaled by at most 4. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((always_inline))
#endif
static inline void tl__i2_dot_w16_(const uint8_t *rows, size_t row_bytes, size_t n, const int16_t *xs,
                                   int32_t x_sum, int wide, int32_t *out) {
    size_t blocks = row_bytes / 16;
#if TL_SIMD
    /* Rows past n repeat row 0 (computed, not stored). */
    const size_t o1 = n > 1 ? 16 : 0, o2 = n > 2 ? 32 : 0, o3 = n > 3 ? 48 : 0;
    const size_t step = 16 * n; /* one block of every row of the tile */
    v128_t t0 = wasm_i32x4_splat(0), t1 = t0, t2 = t0, t3 = t0;
    /* Field k of a lane masked in place is code_k << 2k; its x comes scaled by 4^(3 - k), so every
     * product is code * x * 64 and one accumulator per row takes all 8 fields (the high byte's
     * fields 4..7 are brought down by one shift and share the masks). Four rows share each load of
     * x: 8 weights of a row cost an and, a dot and an add. A product is at most 2 * 512 * 64 = 2^16
     * in size, a block adds 16 to a lane: 64 blocks stay under 2^26, then the accumulators are
     * flushed (exactly divided by 64). The totals add modulo 2^32: the result fits int32. Wide:
     * a product is at most 8 * 4095 (odd fields) or 2 * 4 * 4095 (even ones) < 2^15, a block adds
     * 2^19 at most to a lane, 64 blocks 2^25. */
    const v128_t m0 = wasm_i16x8_splat(3), m1 = wasm_i16x8_splat(3 << 2), m2 = wasm_i16x8_splat(3 << 4),
                 m3 = wasm_i16x8_splat(3 << 6);
    for (size_t b0 = 0; b0 < blocks; b0 += 64) {
        size_t b1 = blocks - b0 > 64 ? b0 + 64 : blocks;
        v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
        /* Pass p takes fields 2p and 2p + 1 of every lane (wide: after a shift by 4p; otherwise
         * in place, the high byte's after a shift by 8). Each pass is a loop of its own, not
         * unrolled: V8 schedules a block's loads ahead of its arithmetic, and a whole block at a
         * time (4 rows and 8 vectors of x live at once) spilled a third of its registers. */
#if defined(__clang__)
#pragma clang loop unroll(full) /* constant shift counts (a variable one is eight scalar shifts) */
#endif
        for (unsigned p = 0; p < 4; p++) {
            const v128_t ma = wide ? m0 : (p & 1) ? m2 : m0, mb = wide ? m1 : (p & 1) ? m3 : m1;
            const unsigned sh = wide ? 4 * p : (p < 2 ? 0 : 8);
            const uint8_t *w = rows + step * b0, *we = rows + step * b1;
            const int16_t *xb = xs + 64 * b0 + 16 * p;
            /* A shift by 8 is a load one byte on: the high byte of each lane comes down and the
             * byte that comes in above it (the next lane's low byte) is outside every mask. That
             * spares four shifts per block. The last block of the last tile reads one byte past
             * the matrix's bytes: they lie in a block of tl__malloc (or in a file from tl_alloc),
             * which has TL__MALLOC_SLACK bytes after every block (mem.c). */
#define TL__DOT4(m)                                                                                          \
    a0 = wasm_i32x4_add(a0, wasm_i32x4_dot_i16x8(wasm_v128_and(v0, m), x)),                                  \
    a1 = wasm_i32x4_add(a1, wasm_i32x4_dot_i16x8(wasm_v128_and(v1, m), x)),                                  \
    a2 = wasm_i32x4_add(a2, wasm_i32x4_dot_i16x8(wasm_v128_and(v2, m), x)),                                  \
    a3 = wasm_i32x4_add(a3, wasm_i32x4_dot_i16x8(wasm_v128_and(v3, m), x))
#define TL__BLOCK(LOAD)                                                                                      \
    {                                                                                                        \
        v128_t v0 = LOAD(w), v1 = LOAD(w + o1), v2 = LOAD(w + o2), v3 = LOAD(w + o3), x = wasm_v128_load(xb);  \
        TL__DOT4(ma);                                                                                        \
        x = wasm_v128_load(xb + 8);                                                                          \
        TL__DOT4(mb);                                                                                        \
    }
#define TL__ON1(q) wasm_v128_load((q) + 1)
#define TL__SHR(q) wasm_u16x8_shr(wasm_v128_load(q), sh)
            if (sh == 8) {
#if defined(__clang__)
#pragma clang loop unroll(disable)
#endif
                for (; w != we; w += step, xb += 64) TL__BLOCK(TL__ON1)
            } else {
#if defined(__clang__)
#pragma clang loop unroll(disable)
#endif
                for (; w != we; w += step, xb += 64) TL__BLOCK(TL__SHR)
            }
#undef TL__SHR
#undef TL__ON1
#undef TL__BLOCK
#undef TL__DOT4
        }
        const int fs = wide ? 2 : 6;
        t0 = wasm_i32x4_add(t0, wasm_i32x4_shr(a0, fs)), t1 = wasm_i32x4_add(t1, wasm_i32x4_shr(a1, fs));
        t2 = wasm_i32x4_add(t2, wasm_i32x4_shr(a2, fs)), t3 = wasm_i32x4_add(t3, wasm_i32x4_shr(a3, fs));
    }
    v128_t s = tl__hsum4(t0, t1, t2, t3);
    s = wasm_i32x4_sub(s, wasm_i32x4_splat(x_sum));
    int32_t r[4];
    wasm_v128_store(r, s);
    for (size_t i = 0; i < n; i++) out[i] = r[i];
#else
    for (size_t i = 0; i < n; i++) {
        int64_t acc = 0;
        for (size_t b = 0; b < blocks; b++)
            for (unsigned w = 0; w < TL__I2_BLOCK_WEIGHTS; w++)
                acc += (int32_t)tl__i2_code(rows + 16 * tl__tile_off(n, i, b), w) *
                       (xs[TL__I2_BLOCK_WEIGHTS * b + w] / (1 << tl__xw_shift(w, wide)));
        out[i] = (int32_t)(acc - x_sum);
    }
#endif
}

static void tl__i2_dot_w16(const uint8_t *rows, size_t row_bytes, size_t n, const int16_t *xs, int32_t x_sum,
                           int32_t *out) {
    tl__i2_dot_w16_(rows, row_bytes, n, xs, x_sum, 0, out);
}
static void tl__i2_dot_w16_wide(const uint8_t *rows, size_t row_bytes, size_t n, const int16_t *xs, int32_t x_sum,
                                int32_t *out) {
    tl__i2_dot_w16_(rows, row_bytes, n, xs, x_sum, 1, out);
}

#if TL_SIMD
/* tl__i2_dot_w16_wide for two vectors at once (the float path's two digits), rows taken two at a
 * time: a mask and a shift of the weights serve both vectors, 8 weights of a row and vector cost
 * 2.5 operations (half an and, a dot, an add) plus a share of the shift, against 3 and a shift
 * apart, and two rows keep every register in place (four
 * rows and two vectors need 16 accumulators and masks, more than V8 allocates). */
static void tl__i2_dot2_w16_wide(const uint8_t *rows, size_t row_bytes, size_t n, const int16_t *x0s,
                                 const int16_t *x1s, int32_t sum0, int32_t sum1, int32_t *out0, int32_t *out1) {
    const size_t blocks = row_bytes / 16, step = 16 * n;
    const v128_t m0 = wasm_i16x8_splat(3), m1 = wasm_i16x8_splat(3 << 2);
    int32_t r0[4], r1[4];
    for (size_t h = 0; h < n; h += 2) {
        /* rows h and h + 1 of the tile (h + 1 repeats h past n: computed, not stored) */
        const size_t oa = 16 * h, ob = h + 1 < n ? 16 * (h + 1) : 16 * h;
        v128_t t0 = wasm_i32x4_splat(0), t1 = t0, t2 = t0, t3 = t0;
        for (size_t b0 = 0; b0 < blocks; b0 += 64) {
            size_t b1 = blocks - b0 > 64 ? b0 + 64 : blocks;
            v128_t a0 = wasm_i32x4_splat(0), a1 = a0, c0 = a0, c1 = a0; /* a: vector 0, c: vector 1 */
            for (unsigned p = 0; p < 4; p++) {
                const uint8_t *w = rows + step * b0, *we = rows + step * b1;
                const int16_t *xa = x0s + 64 * b0 + 16 * p, *xc = x1s + 64 * b0 + 16 * p;
#if defined(__clang__)
#pragma clang loop unroll(disable)
#endif
                for (; w != we; w += step, xa += 64, xc += 64) {
                    v128_t va = wasm_u16x8_shr(wasm_v128_load(w + oa), 4 * p),
                           vb = wasm_u16x8_shr(wasm_v128_load(w + ob), 4 * p), x, y, ka, kb;
                    ka = wasm_v128_and(va, m0), kb = wasm_v128_and(vb, m0);
                    x = wasm_v128_load(xa), y = wasm_v128_load(xc);
                    a0 = wasm_i32x4_add(a0, wasm_i32x4_dot_i16x8(ka, x)), a1 = wasm_i32x4_add(a1, wasm_i32x4_dot_i16x8(kb, x));
                    c0 = wasm_i32x4_add(c0, wasm_i32x4_dot_i16x8(ka, y)), c1 = wasm_i32x4_add(c1, wasm_i32x4_dot_i16x8(kb, y));
                    ka = wasm_v128_and(va, m1), kb = wasm_v128_and(vb, m1);
                    x = wasm_v128_load(xa + 8), y = wasm_v128_load(xc + 8);
                    a0 = wasm_i32x4_add(a0, wasm_i32x4_dot_i16x8(ka, x)), a1 = wasm_i32x4_add(a1, wasm_i32x4_dot_i16x8(kb, x));
                    c0 = wasm_i32x4_add(c0, wasm_i32x4_dot_i16x8(ka, y)), c1 = wasm_i32x4_add(c1, wasm_i32x4_dot_i16x8(kb, y));
                }
            }
            /* every product came scaled by 4 (tl__i2_dot_w16_'s wide bounds: 64 blocks < 2^25) */
            t0 = wasm_i32x4_add(t0, wasm_i32x4_shr(a0, 2)), t1 = wasm_i32x4_add(t1, wasm_i32x4_shr(a1, 2));
            t2 = wasm_i32x4_add(t2, wasm_i32x4_shr(c0, 2)), t3 = wasm_i32x4_add(t3, wasm_i32x4_shr(c1, 2));
        }
        /* lanes: (row h, v0) (row h + 1, v0) (row h, v1) (row h + 1, v1) */
        v128_t s = tl__hsum4(t0, t1, t2, t3);
        int32_t r[4];
        wasm_v128_store(r, s);
        r0[h] = r[0] - sum0, r0[h + 1] = r[1] - sum0, r1[h] = r[2] - sum1, r1[h + 1] = r[3] - sum1;
    }
    for (size_t i = 0; i < n; i++) out0[i] = r0[i], out1[i] = r1[i];
}
#endif

#if TL_RELAXED
/* x in the layout tl__i2_dot_x16 takes in the relaxed build: int8, zero-padded to whole blocks;
 * byte 16k + j of block q is column 8 (4 (j % 2) + k) + j / 2, the weight whose code sits in byte j
 * of the block at bits 2k (so that (block >> 2k) & 3 lines the codes up with these 16 bytes). */
static void tl__i2_x8(const int8_t *x, size_t cols, size_t padded, int8_t *xr) {
    for (size_t q = 0; q < padded / 64; q++)
        for (unsigned k = 0; k < 4; k++)
            for (unsigned j = 0; j < 16; j++) {
                size_t c = 64 * q + tl__col_of(j, k);
                xr[64 * q + 16 * k + j] = c < cols ? x[c] : 0;
            }
}
#endif

/* The int8 dot of the format table: in the relaxed build, x int8 in tl__i2_x8's layout; in the
 * others, int16 in tl__i2_xw's (tl__i2_dot_w16). */
void tl__i2_dot_x16(const uint8_t *rows, size_t row_bytes, size_t n, const void *x_in, int32_t x_sum,
                    int32_t *out) {
#if TL_RELAXED
    size_t blocks = row_bytes / 16;
    const uint8_t *r0 = rows, *r1 = n > 1 ? rows + 16 : rows, *r2 = n > 2 ? rows + 32 : rows,
                  *r3 = n > 3 ? rows + 48 : rows;
    const size_t step = 16 * n; /* one block of every row of the tile */
    v128_t t0 = wasm_i32x4_splat(0), t1 = t0, t2 = t0, t3 = t0;
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
            v128_t v0 = wasm_v128_load(r0 + step * b), v1 = wasm_v128_load(r1 + step * b),
                   v2 = wasm_v128_load(r2 + step * b), v3 = wasm_v128_load(r3 + step * b), x;
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
    v128_t s = tl__hsum4(t0, t1, t2, t3);
    s = wasm_i32x4_sub(s, wasm_i32x4_splat(x_sum));
    int32_t r[4];
    wasm_v128_store(r, s);
    for (size_t i = 0; i < n; i++) out[i] = r[i];
#else
    tl__i2_dot_w16(rows, row_bytes, n, x_in, x_sum, out);
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
 * machine; fewer repeat less per-task setup such as the tables). One task when the product is
 * under tl__par_min_work multiply-adds or there is one thread. */
static tl__split tl__split_rows(const tl_matrix *m, size_t nvec, size_t align, size_t per) {
    tl__split sp = {m->rows, 1, 1};
    size_t T = tl__threads_n();
    if (T < 2 || (uint64_t)m->rows * m->row_weights * nvec < tl__par_min_work) return sp;
    size_t n = T * per, c = (m->rows + n - 1) / n;
    c = (c + align - 1) / align * align;
    sp.chunk = c, sp.tasks = (m->rows + c - 1) / c;
    sp.slots = sp.tasks < T ? sp.tasks : T;
    return sp;
}

/* Tasks per thread: the tables are built again by every task (one per thread), the dot products
 * start for free (four, for balance). */
#define TL__TASKS_LUT 1
#define TL__TASKS_DOT 4

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
 * Table kernels over i2 bytes (batches)
 *
 * Byte j (0..15) of an i2 block holds the codes of 4 weights: lane j / 2, fields 4 (j % 2) + i
 * (i = 0..3, bits 2i), i.e. columns 8 (4 (j % 2) + i) + j / 2 of the block. For every block of
 * x and every byte position, a table holds the value of all 3^4 code combinations
 * (sum_i v(code_i), v = -x, 0, +x) for L vectors at once (int16 entries); a row's product is then
 * one lookup per byte (4 weights) and one vector add per 8 vectors: the decoded weight byte is
 * reused by the whole batch. The tables are indexed by the base-3 number of the 4 codes (81
 * entries, through tl__i2_b3) to keep them small, and built per block, shared by every row of a
 * band, so they stay in L1 however wide x is.
 *
 * Other formats are decoded and re-encoded to i2 a band of rows at a time.
 * ------------------------------------------------------------------------- */

#define TL__LI 64 /* int16 vectors per pass, at most (8 up to 8 vectors, 16 below 32, 32 below 64) */
#define TL__BAND_I2 4096 /* rows per band read as they are (bounds the batched accumulators) */
#define TL__BAND_CONV 256        /* rows per band decoded and re-encoded */
/* Batches of TL__TABLE_MIN int16 vectors and more go through the tables, when there are
 * TL__TABLE_MIN_ROWS rows and more to pay for building them. The relaxed build's int8 dot products
 * are cheaper: at 4096x4096 (i2) they are 4x faster than the tables at batch 4 and even at batch 12. */
#define TL__TABLE_MIN 4
#define TL__TABLE_MIN_R8 12
#define TL__TABLE_MIN_ROWS 64

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

/* Rows r0.. r0 + n - 1 of m (r0 a multiple of 4) as i2 blocks in i2's tiles of 4 rows (matrix.c),
 * Q blocks per row: the packed bytes as they are for i2, else decoded (t: Q * 64 trits of scratch,
 * the tail past row_weights zero) and re-encoded into buf. */
static const uint8_t *tl__i2_rows(const tl_matrix *m, size_t r0, size_t n, size_t Q, int8_t *t, uint8_t *buf) {
    if (m->traits->rows_are_i2) return m->data + r0 * m->row_bytes;
    for (size_t i = 0; i < n; i++) {
        size_t t0 = i - i % 4, tn = n - t0 < 4 ? n - t0 : 4;
        tl__decode_row(m, r0 + i, t);
        for (size_t k = 0; k < Q; k++) tl__i2_encode(t + 64 * k, 1, buf + 16 * (t0 * Q + tl__tile_off(tn, i - t0, k)));
    }
    return buf;
}


/* The tables read block k of every row of a band, tile after tile: one cache line per tile, a
 * tile apart (4 KiB at 4096 columns), which the hardware prefetchers (within a page) do not
 * fetch ahead: 1.3x slower at 4096 x 4096, batch 16. A load of the line TL__AHEAD tiles on (its
 * value kept in a sink) fetches it early. */
#define TL__AHEAD 4
static volatile uint32_t tl__sink;

/* x for one pass of the tables, transposed: xt[c * L + l] = x(b0 + l, c) for the Q * 64 padded
 * columns (0 past cols and past nvec), so that each column's L values are whole vectors. */
static void tl__tabi_transpose(const int16_t *x, size_t cols, size_t nvec, size_t b0, size_t L, size_t padded,
                               int16_t *xt) {
    memset(xt, 0, padded * L * 2);
    size_t l = 0;
#if TL_SIMD
    /* 8 vectors x 8 columns at a time: an 8 x 8 transpose in three rounds of unpacks */
    for (; l + 8 <= L && b0 + l + 8 <= nvec; l += 8) {
        const int16_t *xv = x + (b0 + l) * cols;
        size_t c = 0;
        for (; c + 8 <= cols; c += 8) {
            v128_t r[8], t[8], u[8];
            for (int i = 0; i < 8; i++) r[i] = wasm_v128_load(xv + i * cols + c);
            for (int i = 0; i < 8; i += 2) {
                t[i] = wasm_i16x8_shuffle(r[i], r[i + 1], 0, 8, 1, 9, 2, 10, 3, 11);
                t[i + 1] = wasm_i16x8_shuffle(r[i], r[i + 1], 4, 12, 5, 13, 6, 14, 7, 15);
            }
            for (int i = 0; i < 8; i += 4)
                for (int h = 0; h < 2; h++) {
                    u[i + 2 * h] = wasm_i32x4_shuffle(t[i + h], t[i + h + 2], 0, 4, 1, 5);
                    u[i + 2 * h + 1] = wasm_i32x4_shuffle(t[i + h], t[i + h + 2], 2, 6, 3, 7);
                }
            /* u[0..3]: columns (0,1) (2,3) (4,5) (6,7) of vectors 0..3; u[4..7] of vectors 4..7 */
            for (int k = 0; k < 4; k++) {
                wasm_v128_store(xt + (c + 2 * k) * L + l, wasm_i64x2_shuffle(u[k], u[k + 4], 0, 2));
                wasm_v128_store(xt + (c + 2 * k + 1) * L + l, wasm_i64x2_shuffle(u[k], u[k + 4], 1, 3));
            }
        }
        for (; c < cols; c++)
            for (int i = 0; i < 8; i++) xt[c * L + l + i] = xv[i * cols + c];
    }
#endif
    for (; l < L && b0 + l < nvec; l++) {
        const int16_t *xv = x + (b0 + l) * cols;
        for (size_t c = 0; c < cols; c++) xt[c * L + l] = xv[c];
    }
}

/* 16 tables of 81 x L int16 (L <= TL__LI) for block `blk` of the transposed x (xt). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((always_inline))
#endif
static inline void tl__tabi_block(const int16_t *xt, size_t blk, size_t L, int16_t *T) {
    for (unsigned j = 0; j < 16; j++) {
        const int16_t *x0 = xt + (64 * blk + tl__col_of(j, 0)) * L, *x1 = xt + (64 * blk + tl__col_of(j, 1)) * L,
                      *x2 = xt + (64 * blk + tl__col_of(j, 2)) * L, *x3 = xt + (64 * blk + tl__col_of(j, 3)) * L;
        int16_t *Tj = T + 81 * L * j;
#if TL_SIMD
        for (size_t v = 0; v < L; v += 8) {
            /* the 9 values of two codes: index c0 + 3 c1, value (c0 - 1) a + (c1 - 1) b */
            v128_t lo[9], hi[9];
#define TL__PAIR(t, pa, pb)                                                                                  \
    do {                                                                                                     \
        v128_t a = wasm_v128_load(pa + v), b = wasm_v128_load(pb + v), na = wasm_i16x8_neg(a);             \
        t[4] = wasm_i16x8_splat(0), t[5] = a, t[3] = na, t[7] = b, t[1] = wasm_i16x8_neg(b);                 \
        t[8] = wasm_i16x8_add(a, b), t[0] = wasm_i16x8_neg(t[8]), t[2] = wasm_i16x8_sub(a, b),              \
        t[6] = wasm_i16x8_sub(b, a);                                                                         \
    } while (0)
            TL__PAIR(lo, x0, x1);
            TL__PAIR(hi, x2, x3);
#undef TL__PAIR
            for (int h = 0; h < 9; h++)
                for (int o = 0; o < 9; o++) wasm_v128_store(Tj + (o + 9 * h) * L + v, wasm_i16x8_add(lo[o], hi[h]));
        }
#else
        for (int h = 0; h < 9; h++)
            for (int o = 0; o < 9; o++)
                for (size_t l = 0; l < L; l++)
                    Tj[(o + 9 * h) * L + l] = (int16_t)((o % 3 - 1) * x0[l] + (o / 3 - 1) * x1[l] +
                                                        (h % 3 - 1) * x2[l] + (h / 3 - 1) * x3[l]);
#endif
    }
}

/* The builder with L a constant, one per width */
static void tl__tabi8_block(const int16_t *xt, size_t blk, int16_t *T) { tl__tabi_block(xt, blk, 8, T); }
static void tl__tabi16_block(const int16_t *xt, size_t blk, int16_t *T) { tl__tabi_block(xt, blk, 16, T); }
static void tl__tabi32_block(const int16_t *xt, size_t blk, int16_t *T) { tl__tabi_block(xt, blk, 32, T); }
static void tl__tabi64_block(const int16_t *xt, size_t blk, int16_t *T) { tl__tabi_block(xt, blk, 64, T); }

#if TL_SIMD
/* acc[8k .. 8k + 7] += the int16 lanes of v[k], widened, for k < n */
static inline void tl__widen_add(const v128_t *v, int n, int32_t *acc) {
    for (int k = 0; k < n; k++) {
        wasm_v128_store(acc + 8 * k, wasm_i32x4_add(wasm_v128_load(acc + 8 * k), wasm_i32x4_extend_low_i16x8(v[k])));
        wasm_v128_store(acc + 8 * k + 4,
                        wasm_i32x4_add(wasm_v128_load(acc + 8 * k + 4), wasm_i32x4_extend_high_i16x8(v[k])));
    }
}
#endif
/* The entry of byte j of row bytes p in the tables T of L vectors */
#define TL__E(j, L) (T + (81 * (j) + tl__i2_b3[p[j]]) * (L))
#if !TL_SIMD
/* A row's part of a block, L vectors (what each width's row below computes) */
static void tl__luti_row_ref(const uint8_t *p, const int16_t *T, size_t L, int32_t *acc) {
    for (int j = 0; j < 16; j++)
        for (size_t l = 0; l < L; l++) acc[l] += TL__E(j, L)[l];
}
#endif
/* One row's part of a block, 8 vectors, into int32 acc[8]: four chains of 4 entries, added in int16
 * (16 * 2044 < 32768) and widened once. The tables of a block are 21 KB at 8 vectors: they stay in
 * L1, where 16 vectors' 41 KB do not. */
static void tl__luti8_row(const uint8_t *p, const int16_t *T, int32_t *acc) {
#if TL_SIMD
    v128_t a0 = wasm_v128_load(TL__E(0, 8)), a1 = wasm_v128_load(TL__E(1, 8)),
           a2 = wasm_v128_load(TL__E(2, 8)), a3 = wasm_v128_load(TL__E(3, 8));
    for (int j = 4; j < 16; j += 4) {
        a0 = wasm_i16x8_add(a0, wasm_v128_load(TL__E(j, 8)));
        a1 = wasm_i16x8_add(a1, wasm_v128_load(TL__E(j + 1, 8)));
        a2 = wasm_i16x8_add(a2, wasm_v128_load(TL__E(j + 2, 8)));
        a3 = wasm_i16x8_add(a3, wasm_v128_load(TL__E(j + 3, 8)));
    }
    const v128_t v[1] = {wasm_i16x8_add(wasm_i16x8_add(a0, a1), wasm_i16x8_add(a2, a3))};
    tl__widen_add(v, 1, acc);
#else
    tl__luti_row_ref(p, T, 8, acc);
#endif
}
/* One row's part of a block, L (16 or 32) vectors, into int32 acc[L]. int16 lanes are safe: an
 * entry is at most 4 * 511 = 2044 in size, and a lane adds the block's 16 entries before it is
 * widened: 16 * 2044 = 32704 < 32768 (widening once per lane instead of twice: 1.05-1.09x at
 * batch 16). */
static void tl__luti16_row(const uint8_t *p, const int16_t *T, int32_t *acc) {
#if TL_SIMD
    v128_t a0 = wasm_i16x8_splat(0), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
#define TL__ADD(j, a, c)                                                                                     \
    a = wasm_i16x8_add(a, wasm_v128_load(TL__E(j, 16))), c = wasm_i16x8_add(c, wasm_v128_load(TL__E(j, 16) + 8))
    TL__ADD(0, a0, c0), TL__ADD(1, a1, c1), TL__ADD(2, a2, c2), TL__ADD(3, a3, c3);
    TL__ADD(4, a0, c0), TL__ADD(5, a1, c1), TL__ADD(6, a2, c2), TL__ADD(7, a3, c3);
    TL__ADD(8, a0, c0), TL__ADD(9, a1, c1), TL__ADD(10, a2, c2), TL__ADD(11, a3, c3);
    TL__ADD(12, a0, c0), TL__ADD(13, a1, c1), TL__ADD(14, a2, c2), TL__ADD(15, a3, c3);
#undef TL__ADD
    /* all 16 entries of a lane in int16 (16 * 2044 < 32768), widened once */
    const v128_t v[2] = {wasm_i16x8_add(wasm_i16x8_add(a0, a1), wasm_i16x8_add(a2, a3)),
                         wasm_i16x8_add(wasm_i16x8_add(c0, c1), wasm_i16x8_add(c2, c3))};
    tl__widen_add(v, 2, acc);
#else
    tl__luti_row_ref(p, T, 16, acc);
#endif
}
static void tl__luti32_row(const uint8_t *p, const int16_t *T, int32_t *acc) {
#if TL_SIMD
    /* two chains (even and odd bytes) of 32 / 8 vectors each */
    v128_t a0 = wasm_i16x8_splat(0), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
#define TL__ADD4(j, x0, x1, x2, x3)                                                                          \
    do {                                                                                                     \
        const int16_t *e = TL__E(j, 32);                                                                     \
        x0 = wasm_i16x8_add(x0, wasm_v128_load(e)), x1 = wasm_i16x8_add(x1, wasm_v128_load(e + 8));          \
        x2 = wasm_i16x8_add(x2, wasm_v128_load(e + 16)), x3 = wasm_i16x8_add(x3, wasm_v128_load(e + 24));    \
    } while (0)
    for (int j = 0; j < 16; j += 2) {
        TL__ADD4(j, a0, a1, a2, a3);
        TL__ADD4(j + 1, c0, c1, c2, c3);
    }
#undef TL__ADD4
    const v128_t v[4] = {wasm_i16x8_add(a0, c0), wasm_i16x8_add(a1, c1), wasm_i16x8_add(a2, c2),
                         wasm_i16x8_add(a3, c3)};
    tl__widen_add(v, 4, acc);
#else
    tl__luti_row_ref(p, T, 32, acc);
#endif
}
static void tl__luti64_row(const uint8_t *p, const int16_t *T, int32_t *acc) {
#if TL_SIMD
    /* one chain of 8 vectors: 16 entries of at most 2044 stay within int16 */
    v128_t a[8];
    for (int k = 0; k < 8; k++) a[k] = wasm_i16x8_splat(0);
    for (int j = 0; j < 16; j++) {
        const int16_t *e = TL__E(j, 64);
        for (int k = 0; k < 8; k++) a[k] = wasm_i16x8_add(a[k], wasm_v128_load(e + 8 * k));
    }
    tl__widen_add(a, 8, acc);
#else
    tl__luti_row_ref(p, T, 64, acc);
#endif
}

#undef TL__E

/* The table kernels' workspace. */
typedef struct {
    size_t Q, band, nband, L; /* L: vectors per pass */
    int conv;
    uint64_t tab_bytes, acc_bytes, xt_bytes, total;
} tl__lut_plan;

static tl__lut_plan tl__lut_layout(const tl_matrix *m, size_t nvec) {
    tl__lut_plan p;
    p.Q = (m->row_weights + 63) / 64;
    p.conv = !m->traits->rows_are_i2;
    p.band = p.conv ? TL__BAND_CONV : TL__BAND_I2, p.nband = m->rows < p.band ? m->rows : p.band;
    p.L = nvec >= TL__LI ? TL__LI : nvec >= 32 ? 32 : nvec > 8 ? 16 : 8;
    p.tab_bytes = (uint64_t)16 * 81 * p.L * 2;
    p.acc_bytes = (uint64_t)p.nband * p.L * 4;
    p.xt_bytes = (uint64_t)p.Q * 64 * p.L * 2;
    p.total = tl__rup16(p.tab_bytes) + tl__rup16(p.acc_bytes) + tl__rup16(p.xt_bytes) +
              (p.conv ? tl__rup16((uint64_t)p.Q * 64) + tl__rup16((uint64_t)p.nband * p.Q * 16) : 0);
    return p;
}

/* acc[v * rows + r] = sum_c trit(r, c) * x(v, c) for nvec int16 vectors (|x| <= 511), rows
 * ra..rb - 1. w: tl__lut_layout(m, nvec).total bytes of workspace, 16-byte aligned. */
static void tl__lut_rows(const tl_matrix *m, const int16_t *x, size_t nvec, int32_t *acc, uint8_t *w, size_t ra,
                         size_t rb) {
    const tl__lut_plan pl = tl__lut_layout(m, nvec);
    const size_t rows = m->rows, cols = m->cols, Q = pl.Q, band = pl.band, nband = pl.nband, L = pl.L;
    uint8_t *cur = w;
    int16_t *T = tl__take(&cur, pl.tab_bytes);
    int32_t *A = tl__take(&cur, pl.acc_bytes);
    int16_t *xt = tl__take(&cur, pl.xt_bytes);
    int8_t *t = pl.conv ? tl__take(&cur, (uint64_t)Q * 64) : NULL;
    uint8_t *buf = pl.conv ? tl__take(&cur, (uint64_t)nband * Q * 16) : NULL;
    if (t) memset(t + m->row_weights, 0, Q * 64 - m->row_weights);

    for (size_t r0 = ra; r0 < rb; r0 += band) {
        size_t nr = rb - r0 < band ? rb - r0 : band;
        const uint8_t *base = tl__i2_rows(m, r0, nr, Q, t, buf);
        for (size_t b0 = 0; b0 < nvec; b0 += L) {
            memset(A, 0, nr * L * 4);
            tl__tabi_transpose(x, cols, nvec, b0, L, Q * 64, xt);
            /* Block k of the 4 rows of a whole tile (t0 < full) at base + 16 (Q t0 + 4 k), 16 bytes
             * apart; of the last tile's tn rows at base + 16 (Q full + tn k) (matrix.c, tl__i2_rows). */
            const size_t full = nr / 4 * 4, tn = nr - full;
            uint32_t sink = 0;
            for (size_t k = 0; k < Q; k++) {
                if (L == 8) tl__tabi8_block(xt, k, T);
                else if (L == 16) tl__tabi16_block(xt, k, T);
                else if (L == 32) tl__tabi32_block(xt, k, T);
                else tl__tabi64_block(xt, k, T);
                const uint8_t *p = base + 64 * k;
                /* each width's row written out per tile: a helper choosing the width per call
                 * measured 0.75-0.93x at 8 vectors (clang inlines the rows differently) */
                for (size_t t0 = 0; t0 < full; t0 += 4, p += 64 * Q) {
                    if (t0 + 4 * TL__AHEAD < full) sink += p[64 * Q * TL__AHEAD];
                    if (L == 8)
                        tl__luti8_row(p, T, A + t0 * 8), tl__luti8_row(p + 16, T, A + t0 * 8 + 8),
                        tl__luti8_row(p + 32, T, A + t0 * 8 + 16), tl__luti8_row(p + 48, T, A + t0 * 8 + 24);
                    else if (L == 16)
                        tl__luti16_row(p, T, A + t0 * 16), tl__luti16_row(p + 16, T, A + t0 * 16 + 16),
                        tl__luti16_row(p + 32, T, A + t0 * 16 + 32), tl__luti16_row(p + 48, T, A + t0 * 16 + 48);
                    else if (L == 32)
                        tl__luti32_row(p, T, A + t0 * 32), tl__luti32_row(p + 16, T, A + t0 * 32 + 32),
                        tl__luti32_row(p + 32, T, A + t0 * 32 + 64), tl__luti32_row(p + 48, T, A + t0 * 32 + 96);
                    else
                        tl__luti64_row(p, T, A + t0 * 64), tl__luti64_row(p + 16, T, A + t0 * 64 + 64),
                        tl__luti64_row(p + 32, T, A + t0 * 64 + 128), tl__luti64_row(p + 48, T, A + t0 * 64 + 192);
                }
                p = base + 16 * (Q * full + tn * k);
                for (size_t i = 0; i < tn; i++)
                    if (L == 8) tl__luti8_row(p + 16 * i, T, A + (full + i) * 8);
                    else if (L == 16) tl__luti16_row(p + 16 * i, T, A + (full + i) * 16);
                    else if (L == 32) tl__luti32_row(p + 16 * i, T, A + (full + i) * 32);
                    else tl__luti64_row(p + 16 * i, T, A + (full + i) * 64);
            }
            tl__sink = sink;
            for (size_t r = 0; r < nr; r++)
                for (size_t l = 0; l < L && b0 + l < nvec; l++) acc[(b0 + l) * rows + r0 + r] = A[r * L + l];
        }
    }
}

typedef struct {
    const tl_matrix *m;
    const int16_t *x;
    size_t nvec, chunk;
    int32_t *acc;
    uint8_t *w;
    uint64_t slot;
} tl__lut_job;

static void tl__lut_task(void *c, size_t task, unsigned thread) {
    const tl__lut_job *j = c;
    size_t ra, rb;
    tl__task_range(j->m->rows, j->chunk, task, &ra, &rb);
    tl__lut_rows(j->m, j->x, j->nvec, j->acc, j->w + thread * j->slot, ra, rb);
}

static uint64_t tl__lut_need(const tl_matrix *m, size_t nvec) {
    return tl__split_rows(m, nvec, 4, TL__TASKS_LUT).slots * tl__rup16(tl__lut_layout(m, nvec).total);
}

/* tl__lut_rows over all rows, split over the threads; w: tl__lut_need bytes */
static void tl__lut_product(const tl_matrix *m, const int16_t *x, size_t nvec, int32_t *acc, uint8_t *w) {
    tl__split sp = tl__split_rows(m, nvec, 4, TL__TASKS_LUT);
    tl__lut_job j = {m, x, nvec, sp.chunk, acc, w, tl__rup16(tl__lut_layout(m, nvec).total)};
    tl__parallel(sp.tasks, tl__lut_task, &j);
}

/* ---------------------------------------------------------------------------
 * Sparse vectors: only the nonzero columns, through the column-major copy
 *
 * A vector with many zeros (a ReLU's output, a digit's blank pixels) costs the row kernels as much
 * as a dense one. The column-major copy (m->colmajor: for each tile of 64 rows and each column, 16
 * bytes of i2 codes, row 8k + j of the tile in 16-bit lane j at bits 2k) lets a product read only a
 * vector's nonzero columns: each one's codes, times its value, are added to the tile's 64 row
 * accumulators. Measured per weight read at 4096 x 4096 (SIMD128, Node 20): int8 0.036 ns through
 * the columns against 0.040 through the dot products; float (the fixed point's int32 products, a
 * column's 16 bytes read as 32-bit lanes) 0.063 against the rows' 0.057, and below ~85% nonzero
 * the columns took less time at 4096 x 4096, 4096 x 1024, 1024 x 4096 and 256 x 784 (2026-12-01;
 * 0.089 before the 32-bit lanes); the relaxed build's int8 dot products are ~1.6x faster. So a vector takes
 * the columns when at most TL__COL_I8 / TL__COL_DEN of its values (float: TL__COL_Q) are nonzero,
 * for few vectors; in a batch that takes the tables (which reuse each weight across the batch, the
 * columns do not: int8 ~0.016 ns per weight and vector at 4096 x 4096 batch 16), a vector at most
 * TL__COL_B / TL__COL_DEN nonzero (MNIST digits, 19%: batch 64 int8 1.23x, float 1.60x). An int8
 * vector whose nonzero values share one magnitude (binary, +-1) takes them at any density: its
 * columns only add codes, 0.018 ns per weight (tl__col_one_task). Grouping the columns of other
 * vectors by magnitude was tried and measured (2026-11-30): ReLU outputs have ~80 distinct
 * magnitudes in 2048 columns, and the per-group costs and the scattered reads of the sorted
 * columns cancelled the saving (1.0x). The sums are
 * exact integers: the same bits as the rows. The copy is built on the first product that takes it
 * and kept (as many bytes again as the i2 rows; tl_matrix_set_column_copy turns it off).
 * ------------------------------------------------------------------------- */

#if TL_RELAXED
#define TL__COL_I8 5 /* its int8 dot products: 0.024 ns per weight (break-even at ~66% nonzero) */
#else
#define TL__COL_I8 6
#endif
#define TL__COL_Q 7
#define TL__COL_DEN 8
#define TL__COL_B 3 /* in a batch that takes the tables */

#if TL_SIMD
/* Store 8 columns of the copy: lane l of a[j] is column l's lane j. An 8 x 8 transpose of the
 * 16-bit lanes in three rounds of unpacks. */
static void tl__cm_store8(const v128_t a[8], uint8_t *dst) {
    v128_t b[8], d[8];
    /* 32-bit lane p of b[2i] = (a_2i, a_2i+1) of column p, of b[2i + 1] of column 4 + p */
    for (unsigned j = 0; j < 8; j += 2) {
        b[j] = wasm_i16x8_shuffle(a[j], a[j + 1], 0, 8, 1, 9, 2, 10, 3, 11);
        b[j + 1] = wasm_i16x8_shuffle(a[j], a[j + 1], 4, 12, 5, 13, 6, 14, 7, 15);
    }
    /* 64-bit lane q of d[4h + 2i + e] = a_{4i..4i+3} of column 4h + 2e + q */
    for (unsigned h = 0; h < 2; h++)
        for (unsigned i = 0; i < 2; i++) {
            d[4 * h + 2 * i] = wasm_i32x4_shuffle(b[4 * i + h], b[4 * i + h + 2], 0, 4, 1, 5);
            d[4 * h + 2 * i + 1] = wasm_i32x4_shuffle(b[4 * i + h], b[4 * i + h + 2], 2, 6, 3, 7);
        }
    for (unsigned h = 0; h < 2; h++)
        for (unsigned e = 0; e < 2; e++) {
            uint8_t *o = dst + (4 * h + 2 * e) * 16;
            wasm_v128_store(o, wasm_i64x2_shuffle(d[4 * h + e], d[4 * h + 2 + e], 0, 2));
            wasm_v128_store(o + 16, wasm_i64x2_shuffle(d[4 * h + e], d[4 * h + 2 + e], 1, 3));
        }
}

/* 8 columns of the copy from i2 blocks (blk[i]: row i's block), those of field f: mul = 4^(7 - f)
 * brings it to the top of the lanes (a multiply: a variable shift count is eight scalar shifts in
 * clang 14's output) */
static void tl__cm_i2_8(const uint8_t *const blk[64], v128_t mul, uint8_t *dst) {
    v128_t a[8];
    for (unsigned j = 0; j < 8; j++) {
        v128_t s = wasm_i16x8_splat(0);
#if defined(__clang__)
#pragma clang loop unroll(full)
#endif
        for (unsigned k = 0; k < 8; k++)
            s = wasm_i16x8_add(s, wasm_i16x8_shl(wasm_u16x8_shr(wasm_i16x8_mul(wasm_v128_load(blk[8 * k + j]), mul), 14), 2 * k));
        a[j] = s;
    }
    tl__cm_store8(a, dst);
}
#endif

/* The column-major copy, 64 rows at a time, from the rows as i2 blocks (tl__i2_rows: i2's codes
 * where they lie, other formats decoded and re-encoded). Block b of row r holds column
 * 64 b + 8 f + l in lane l, field f: the 8 columns 64 b + 8 f + (0..7) are one multiply and shift
 * of it. SIMD: 8 columns at a time (lane l of a_j = column l's lane j, sum_k code(row 8k + j) 4^k,
 * then tl__cm_store8), 0.13-0.17 ns per weight at 4096 x 4096 against 3 for the plain loop (60 ms
 * for the wide MLP's copies). */
static tl_status tl__build_colmajor(tl_matrix *m) {
    const size_t tiles = (m->rows + 63) / 64, cols = m->cols, Q = (m->row_weights + 63) / 64;
    const int conv = !m->traits->rows_are_i2;
    uint8_t *cm = tl__malloc((uint64_t)tiles * cols * 16);
    /* conv: 64 rows of Q i2 blocks, then one row's trits (the tail past row_weights zero) */
    uint8_t *buf = conv ? tl__malloc((uint64_t)64 * Q * 16 + Q * 64) : NULL;
    if (!cm || (conv && !buf)) {
        tl__free(cm), tl__free(buf);
        return TL_ERR_NO_MEMORY;
    }
    int8_t *t = conv ? (int8_t *)(buf + 64 * Q * 16) : NULL;
    if (t) memset(t + m->row_weights, 0, Q * 64 - m->row_weights);
    static const uint8_t zero_codes[16] = {0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
                                           0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55};
    for (size_t tile = 0; tile < tiles; tile++) {
        const size_t nr = m->rows - tile * 64 < 64 ? m->rows - tile * 64 : 64;
        uint8_t *dst = cm + tile * cols * 16;
        const uint8_t *base = tl__i2_rows(m, tile * 64, nr, Q, t, buf);
        /* block b of row i in its tile of tn rows from t0 (as tl__lut_rows reads them); rows past
         * the end: zero trits (code 1), which add nothing */
        const uint8_t *blk[64];
        for (size_t b = 0; b * 64 < cols; b++) {
            for (size_t i = 0; i < 64; i++) {
                const size_t t0 = i - i % 4, tn = nr - t0 < 4 ? nr - t0 : 4;
                blk[i] = i < nr ? base + 16 * (t0 * Q + tl__tile_off(tn, i - t0, b)) : zero_codes;
            }
            const size_t bn = cols - 64 * b < 64 ? cols - 64 * b : 64;
            size_t f = 0;
#if TL_SIMD
            for (; 8 * f + 8 <= bn; f++)
                tl__cm_i2_8(blk, wasm_i16x8_splat((int16_t)(1 << (14 - 2 * f))), dst + (64 * b + 8 * f) * 16);
#endif
            for (size_t w = 8 * f; w < bn; w++) {
                uint8_t *o = dst + (64 * b + w) * 16;
                memset(o, 0, 16);
                for (unsigned i = 0; i < 64; i++) tl__i2_set(o, i, tl__i2_code(blk[i], (unsigned)w));
            }
        }
    }
    tl__free(buf);
    m->colmajor = cm;
    m->col_bytes = cols * 16;
    return TL_OK;
}

/* Whether a vector (x8: int8, else q: int32; cols values) takes the columns: 0 no, 1 yes, 2 yes
 * and its nonzero values are int8 of one magnitude (binary, +-1: tl__col_one_task, which takes
 * them at any density, 0.018 ns per weight at 4096x4096 against the rows' 0.040). Counted only
 * where the copy is allowed (language models, copy off: no scan per product); building the copy if
 * it must (a copy that cannot be allocated leaves the rows). */
static int tl__col_take(const tl_matrix *m, const int8_t *x8, const int32_t *q, unsigned num) {
    if (m->col_off) return 0;
    size_t nnz = 0;
    int one = 0;
    if (x8) {
        /* lo: the least nonzero magnitude less 1 (0 wraps to 255), hi: the largest magnitude */
        uint8_t lo = 255, hi = 0;
        for (size_t c = 0; c < m->cols; c++) {
            const uint8_t a = (uint8_t)(x8[c] < 0 ? -x8[c] : x8[c]), a1 = (uint8_t)(a - 1);
            nnz += a != 0, hi = a > hi ? a : hi, lo = a1 < lo ? a1 : lo;
        }
        one = nnz && lo + 1 == hi;
        if (one) num = TL__COL_DEN;
    } else
        for (size_t c = 0; c < m->cols; c++) nnz += q[c] != 0;
    if ((uint64_t)nnz * TL__COL_DEN > (uint64_t)m->cols * num) return 0;
    /* The copy is a cache: building it does not change what m means (hence the cast). */
    return (m->colmajor || tl__build_colmajor((tl_matrix *)m) == TL_OK) ? 1 + one : 0;
}

/* A product through the columns, tiles of a task: int8 values (nz: column << 8 | the value's byte,
 * k of them; out acc[r] = sum - xsum, the codes being trit + 1), or int32 ones (q[i] the value of
 * column idx[i]; out[r] = fl(fl(S unit) scale[r]), S the exact sum in int64). */
typedef struct {
    const tl_matrix *m;
    const uint32_t *nz;
    const int32_t *q;
    size_t k, chunk;
    int32_t xsum;
    int64_t qsum;
    double unit;
    int32_t *acc;
    float *out;
    uint32_t mag, nneg; /* one magnitude: nz plain columns, the first nneg of them negative */
} tl__col_job;

/* acc's rows of a tile: its sums less sub (the rows past the last are not stored) */
static void tl__col_store(const tl_matrix *m, size_t tile, const int32_t *racc, int32_t sub, int32_t *acc) {
    const size_t r0 = tile * 64, nr = m->rows - r0 < 64 ? m->rows - r0 : 64;
    for (size_t w = 0; w < nr; w++) acc[r0 + w] = racc[w] - sub;
}

#if TL_SIMD
/* The columns' step for 8 fields: a_k (a0..a7) += (v >> 2k) x, in lanes of ADD / MUL / SHR's
 * width (no masks: tl__col_i8_task) */
#define TL__COL_FIELDS8(a, v, x, ADD, MUL, SHR)                                                               \
    a##0 = ADD(a##0, MUL(v, x)), a##1 = ADD(a##1, MUL(SHR(v, 2), x)), a##2 = ADD(a##2, MUL(SHR(v, 4), x)),    \
    a##3 = ADD(a##3, MUL(SHR(v, 6), x)), a##4 = ADD(a##4, MUL(SHR(v, 8), x)),                                \
    a##5 = ADD(a##5, MUL(SHR(v, 10), x)), a##6 = ADD(a##6, MUL(SHR(v, 12), x)),                              \
    a##7 = ADD(a##7, MUL(SHR(v, 14), x))
#endif

/* int8 values: a product is at most 2 * 128 in size, so int16 lanes take 128 columns, then they
 * are widened into the tile's int32 sums. */
static void tl__col_i8_task(void *c, size_t task, unsigned thread) {
    const tl__col_job *j = c;
    const tl_matrix *m = j->m;
    size_t ta, tb;
    (void)thread;
    tl__task_range((m->rows + 63) / 64, j->chunk, task, &ta, &tb);
    for (size_t tile = ta; tile < tb; tile++) {
        const uint8_t *base = m->colmajor + tile * m->col_bytes;
        int32_t racc[64];
        memset(racc, 0, sizeof racc);
        for (size_t i0 = 0; i0 < j->k; i0 += 128) {
            const size_t i1 = j->k - i0 > 128 ? i0 + 128 : j->k;
#if TL_SIMD
            /* Without masks: A_k adds (v >> 2k) x, which holds field k and 4 times the fields above
             * it, so the sum of field k times x is A_k - 4 A_{k+1}, computed modulo 2^16 (pmullw's
             * low half and the adds wrap) and exact, since the true sum fits int16. */
            v128_t s0 = wasm_i16x8_splat(0), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
#if defined(__clang__)
#pragma clang loop unroll(disable)
#endif
            for (size_t i = i0; i < i1; i++) {
                const uint32_t e = j->nz[i];
                const v128_t v = wasm_v128_load(base + (size_t)(e >> 8) * 16),
                             xv = wasm_i16x8_splat((int16_t)(int8_t)(uint8_t)e);
                TL__COL_FIELDS8(s, v, xv, wasm_i16x8_add, wasm_i16x8_mul, wasm_u16x8_shr);
            }
            s0 = wasm_i16x8_sub(s0, wasm_i16x8_shl(s1, 2)), s1 = wasm_i16x8_sub(s1, wasm_i16x8_shl(s2, 2));
            s2 = wasm_i16x8_sub(s2, wasm_i16x8_shl(s3, 2)), s3 = wasm_i16x8_sub(s3, wasm_i16x8_shl(s4, 2));
            s4 = wasm_i16x8_sub(s4, wasm_i16x8_shl(s5, 2)), s5 = wasm_i16x8_sub(s5, wasm_i16x8_shl(s6, 2));
            s6 = wasm_i16x8_sub(s6, wasm_i16x8_shl(s7, 2));
            /* lane j of s_k is row 8k + j */
            const v128_t sk[8] = {s0, s1, s2, s3, s4, s5, s6, s7};
            for (unsigned k = 0; k < 8; k++) {
                wasm_v128_store(racc + 8 * k, wasm_i32x4_add(wasm_v128_load(racc + 8 * k), wasm_i32x4_extend_low_i16x8(sk[k])));
                wasm_v128_store(racc + 8 * k + 4,
                                wasm_i32x4_add(wasm_v128_load(racc + 8 * k + 4), wasm_i32x4_extend_high_i16x8(sk[k])));
            }
#else
            for (size_t i = i0; i < i1; i++) {
                const uint8_t *p = base + (size_t)(j->nz[i] >> 8) * 16;
                const int32_t xv = (int8_t)(uint8_t)j->nz[i];
                for (unsigned w = 0; w < 64; w++) racc[w] += (int32_t)tl__i2_code(p, w) * xv;
            }
#endif
        }
        tl__col_store(m, tile, racc, j->xsum, j->acc);
    }
}

#if TL_SIMD
/* racc (64 int32) += tl__col_one_task's uint16 sums: rows 8k + j in lane j of a_k - 256 a_{k+4}
 * (k < 4), rows 8 (k + 4) + j in lane j of a_{k+4} */
static void tl__col_widen(const v128_t *a, int32_t *racc) {
    for (unsigned f = 0; f < 8; f++) {
        const v128_t s = f < 4 ? wasm_i16x8_sub(a[f], wasm_i16x8_shl(a[f + 4], 8)) : a[f];
        wasm_v128_store(racc + 8 * f, wasm_i32x4_add(wasm_v128_load(racc + 8 * f), wasm_u32x4_extend_low_u16x8(s)));
        wasm_v128_store(racc + 8 * f + 4, wasm_i32x4_add(wasm_v128_load(racc + 8 * f + 4), wasm_u32x4_extend_high_u16x8(s)));
    }
}
#endif

/* Every value of one magnitude v (binary activations, +-1, index lists): sum trit x =
 * v (sum code' - k), code' = code for x > 0 and 2 - code for x < 0 (trit + 1 and 1 - trit), so
 * the columns only add their codes: byte lanes (fields k and k + 4 of e_k) take 127 columns
 * (2 * 127 < 256), 11 operations per column of a tile against the products' 25. Then the bytes
 * are multiplied by v into uint16 lanes, widened to int32 before they could pass 65535. */
static void tl__col_one_task(void *c, size_t task, unsigned thread) {
    const tl__col_job *j = c;
    const tl_matrix *m = j->m;
    const uint32_t v = j->mag, *nz = j->nz;
    const size_t k = j->k, nneg = j->nneg;
    size_t ta, tb;
    (void)thread;
    tl__task_range((m->rows + 63) / 64, j->chunk, task, &ta, &tb);
    for (size_t tile = ta; tile < tb; tile++) {
        const uint8_t *base = m->colmajor + tile * m->col_bytes;
        int32_t racc[64];
        memset(racc, 0, sizeof racc);
#if TL_SIMD
        const v128_t m3 = wasm_i16x8_splat(0x0303), z = wasm_i16x8_splat(0), vv = wasm_i16x8_splat((int16_t)v);
        /* a_k (k < 4) adds e_k v, a_{k+4} (e_k >> 8) v, modulo 2^16: rows 8 (k + 4) + j are lane
         * j of a_{k+4}, rows 8k + j lane j of a_k - 256 a_{k+4} (exact below 2^16) */
        v128_t a[8] = {z, z, z, z, z, z, z, z};
        uint32_t bound = 0;
        for (size_t i0 = 0; i0 < k; i0 += 127) {
            const size_t i1 = k - i0 > 127 ? i0 + 127 : k, n1 = nneg < i1 ? nneg : i1;
            const uint32_t add = 2 * (uint32_t)(i1 - i0) * v;
            v128_t e0 = z, e1 = z, e2 = z, e3 = z;
            size_t i = i0;
#define TL__COL_BYTES                                                                               \
    for (; i < end; i++) {                                                                           \
        const v128_t w = wasm_v128_load(base + (size_t)nz[i] * 16);                                  \
        e0 = wasm_i16x8_add(e0, wasm_v128_and(w, m3));                                               \
        e1 = wasm_i16x8_add(e1, wasm_v128_and(wasm_u16x8_shr(w, 2), m3));                            \
        e2 = wasm_i16x8_add(e2, wasm_v128_and(wasm_u16x8_shr(w, 4), m3));                            \
        e3 = wasm_i16x8_add(e3, wasm_v128_and(wasm_u16x8_shr(w, 6), m3));                            \
    }
            if (i < n1) {
                const size_t end = n1;
                TL__COL_BYTES
                /* the negative ones: 2 n - their sum of codes */
                const v128_t n2 = wasm_i8x16_splat((int8_t)(2 * (n1 - i0)));
                e0 = wasm_i8x16_sub(n2, e0), e1 = wasm_i8x16_sub(n2, e1);
                e2 = wasm_i8x16_sub(n2, e2), e3 = wasm_i8x16_sub(n2, e3);
            }
            {
                const size_t end = i1;
                TL__COL_BYTES
            }
#undef TL__COL_BYTES
            if (bound + add > 65535) {
                tl__col_widen(a, racc);
                for (unsigned f = 0; f < 8; f++) a[f] = z;
                bound = 0;
            }
            bound += add;
            const v128_t e[4] = {e0, e1, e2, e3};
            for (unsigned f = 0; f < 4; f++) {
                a[f] = wasm_i16x8_add(a[f], wasm_i16x8_mul(e[f], vv));
                a[f + 4] = wasm_i16x8_add(a[f + 4], wasm_i16x8_mul(wasm_u16x8_shr(e[f], 8), vv));
            }
        }
        tl__col_widen(a, racc);
#else
        for (size_t i = 0; i < k; i++) {
            const uint8_t *p = base + (size_t)nz[i] * 16;
            for (unsigned w = 0; w < 64; w++) {
                const int32_t code = tl__i2_code(p, w);
                racc[w] += (int32_t)v * (i < nneg ? 2 - code : code);
            }
        }
#endif
        tl__col_store(m, tile, racc, (int32_t)(v * k), j->acc);
    }
}

/* int32 values (|q| <= 2^23, the float path's fixed point): a product is at most 2^24 in size, so
 * int32 lanes take 127 columns, then they are widened into the tile's int64 sums. The copy's 16
 * bytes of a column are read as four 32-bit lanes of 16 fields: field k of lane j is row 8k + 2j
 * (k < 8, the low 16 bits) or 8 (k - 8) + 2j + 1. As in tl__col_i8_task, A_k adds (v >> 2k) q
 * without masks and field k's sum is A_k - 4 A_{k+1} modulo 2^32 (A_15: field 15 alone). Two
 * passes of eight accumulators (fields 8..15, then 0..7, which takes A_8 from the first): a column
 * costs a shift, a multiply and an add per 4 weights, with no widening of the lanes. */
static void tl__col_q_task(void *c, size_t task, unsigned thread) {
    const tl__col_job *j = c;
    const tl_matrix *m = j->m;
    size_t ta, tb;
    (void)thread;
    tl__task_range((m->rows + 63) / 64, j->chunk, task, &ta, &tb);
    for (size_t tile = ta; tile < tb; tile++) {
        const uint8_t *base = m->colmajor + tile * m->col_bytes;
        int64_t racc[64];
        memset(racc, 0, sizeof racc);
        for (size_t i0 = 0; i0 < j->k; i0 += 127) {
            const size_t i1 = j->k - i0 > 127 ? i0 + 127 : j->k;
#if TL_SIMD
            v128_t ak[16];
            for (unsigned h = 2; h-- > 0;) {
                v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
#if defined(__clang__)
#pragma clang loop unroll(disable)
#endif
                for (size_t i = i0; i < i1; i++) {
                    /* constant shifts (a variable one is four scalar shifts in clang's output) */
                    const v128_t l = wasm_v128_load(base + (size_t)j->nz[i] * 16), qv = wasm_v128_load32_splat(j->q + i),
                                 u = h ? wasm_u32x4_shr(l, 16) : l;
                    TL__COL_FIELDS8(a, u, qv, wasm_i32x4_add, wasm_i32x4_mul, wasm_u32x4_shr);
                }
                v128_t *o = ak + 8 * h;
                o[0] = a0, o[1] = a1, o[2] = a2, o[3] = a3, o[4] = a4, o[5] = a5, o[6] = a6, o[7] = a7;
            }
            for (unsigned k = 0; k < 15; k++) ak[k] = wasm_i32x4_sub(ak[k], wasm_i32x4_shl(ak[k + 1], 2));
            /* lane j of ak[k]: row 8 (k % 8) + 2j + k / 8 */
            for (unsigned k = 0; k < 16; k++) {
                int32_t v[4];
                wasm_v128_store(v, ak[k]);
                for (unsigned l = 0; l < 4; l++) racc[8 * (k % 8) + 2 * l + k / 8] += v[l];
            }
#else
            for (size_t i = i0; i < i1; i++) {
                const uint8_t *p = base + (size_t)j->nz[i] * 16;
                for (unsigned w = 0; w < 64; w++) racc[w] += (int64_t)tl__i2_code(p, w) * j->q[i];
            }
#endif
        }
        const size_t r0 = tile * 64, nr = m->rows - r0 < 64 ? m->rows - r0 : 64;
        for (size_t w = 0; w < nr; w++)
            j->out[r0 + w] = (float)((double)(racc[w] - j->qsum) * j->unit) * m->scales[r0 + w];
    }
}

/* Run a column product over the tiles, j->k columns: four tasks per thread, as the dot products
 * (j->chunk: tiles per task). */
static void tl__col_run(tl__col_job *j, tl__task_fn task) {
    const tl_matrix *m = j->m;
    const size_t tiles = (m->rows + 63) / 64, T = tl__threads_n();
    j->chunk = T < 2 || (uint64_t)m->rows * j->k < tl__par_min_work ? tiles : (tiles + T * 4 - 1) / (T * 4);
    tl__parallel((tiles + j->chunk - 1) / j->chunk, task, j);
}

/* int8 vector x (cols values): acc[r] = sum_c trit(r, c) x[c] through the columns; one: its
 * nonzero values have one magnitude (tl__col_take's 2); nz: cols entries of scratch. */
static void tl__col_i8(const tl_matrix *m, const int8_t *x, int one, uint32_t *nz, int32_t *acc) {
    size_t k = 0;
    int32_t xsum = 0;
    tl__col_job j = {m, nz, NULL, 0, 0, 0, 0, 0.0, acc, NULL, 0, 0};
    if (one) {
        /* one magnitude: the columns alone, the negative ones from the front, the positive ones
         * from the back (in descending order) */
        size_t in = 0, ip = m->cols;
        for (size_t c = 0; c < m->cols; c++)
            if (x[c] < 0) nz[in++] = (uint32_t)c, j.mag = (uint32_t)-x[c];
            else if (x[c]) nz[--ip] = (uint32_t)c, j.mag = (uint32_t)x[c];
        memmove(nz + in, nz + ip, (m->cols - ip) * 4);
        j.k = in + m->cols - ip, j.nneg = (uint32_t)in;
        tl__col_run(&j, tl__col_one_task);
        return;
    }
    for (size_t c = 0; c < m->cols; c++)
        if (x[c]) nz[k++] = (uint32_t)c << 8 | (uint8_t)x[c], xsum += x[c];
    j.k = k, j.xsum = xsum;
    tl__col_run(&j, tl__col_i8_task);
}

/* fixed-point vector q (cols values, |q| <= 2^23, 1 / u = unit): out[r] = fl(fl(S unit) scale[r]),
 * S = sum_c trit(r, c) q[c] exact, through the columns; idx, qv: cols entries of scratch each. */
static void tl__col_q(const tl_matrix *m, const int32_t *q, double unit, uint32_t *idx, int32_t *qv, float *out) {
    size_t k = 0;
    int64_t qsum = 0;
    for (size_t c = 0; c < m->cols; c++)
        if (q[c]) idx[k] = (uint32_t)c, qv[k++] = q[c], qsum += q[c];
    tl__col_job j = {m, idx, qv, k, 0, 0, qsum, unit, NULL, out, 0, 0};
    tl__col_run(&j, tl__col_q_task);
}

/* ---------------------------------------------------------------------------
 * The integer product: dot products (few vectors) or tables
 * ------------------------------------------------------------------------- */

/* r8: the vectors are int8 too, and the relaxed build's int8 dot products may take them */
static int tl__use_tables(const tl_matrix *m, size_t nvec, int r8) {
    return m->rows >= TL__TABLE_MIN_ROWS && nvec >= (TL_RELAXED && r8 ? TL__TABLE_MIN_R8 : TL__TABLE_MIN);
}

/* the prepared vectors and their sums (shared), a decoded row per thread (formats without dot_x16) */
static uint64_t tl__dot_need(const tl_matrix *m, size_t nvec) {
    /* at least 4 cols bytes: a sparse vector's nonzero columns (tl__col_i8) */
    return tl__rup16((uint64_t)nvec * m->row_weights * 2 + 2 * (uint64_t)m->cols) + tl__rup16((uint64_t)nvec * 4) +
           (m->traits->dot_x16 ? 0
                               : tl__split_rows(m, nvec, 4, TL__TASKS_DOT).slots *
                                     tl__rup16((uint64_t)m->row_weights + 16));
}

static uint64_t tl__product_need(const tl_matrix *m, size_t nvec, int r8) {
    if (!tl__use_tables(m, nvec, r8)) return tl__dot_need(m, nvec);
    /* int8: runs of fewer vectors between sparse ones may take the dot products */
    const size_t short_run = (TL_RELAXED ? TL__TABLE_MIN_R8 : TL__TABLE_MIN) - 1;
    const uint64_t lut = tl__lut_need(m, nvec), dot = r8 ? tl__dot_need(m, short_run) : 0;
    return lut > dot ? lut : dot;
}

/* The dot products of rows ra..rb - 1 (tl__product's second half): xs, sums prepared; t a decoded
 * row's scratch (formats without dot_x16). */
typedef struct {
    const tl_matrix *m;
    const int16_t *xs;
    const int32_t *sums;
    size_t nvec, chunk;
    int r8, wide;
    int32_t *acc;
    int8_t *t;
    uint64_t slot;
} tl__dot_job;

static void tl__dot_task(void *c, size_t task, unsigned thread) {
    const tl__dot_job *j = c;
    const tl_matrix *m = j->m;
    const size_t P = m->row_weights, rows = m->rows, nvec = j->nvec;
    const int16_t *xs = j->xs;
    const int32_t *sums = j->sums;
    int32_t *acc = j->acc;
    size_t ra, rb;
    tl__task_range(m->rows, j->chunk, task, &ra, &rb);
    if (m->traits->dot_x16) {
        /* ra is a multiple of 4 and rb one or the last row: rows r..r + n - 1 are a tile (4 rows) */
        for (size_t r = ra; r < rb; r += 4) {
            size_t n = rb - r < 4 ? rb - r : 4;
            size_t v = 0;
#if TL_SIMD
            if (j->wide && !j->r8)
                for (; v + 2 <= nvec; v += 2) {
                    int32_t a[4], a1[4];
                    tl__i2_dot2_w16_wide(m->data + r * m->row_bytes, m->row_bytes, n, xs + v * P, xs + (v + 1) * P,
                                         sums[v], sums[v + 1], a, a1);
                    for (size_t i = 0; i < n; i++) acc[v * rows + r + i] = a[i], acc[(v + 1) * rows + r + i] = a1[i];
                }
#endif
            for (; v < nvec; v++) {
                int32_t a[4];
                if (j->r8)
                    m->traits->dot_x16(m->data + r * m->row_bytes, m->row_bytes, n, xs + v * P, sums[v], a);
                else if (j->wide)
                    tl__i2_dot_w16_wide(m->data + r * m->row_bytes, m->row_bytes, n, xs + v * P, sums[v], a);
                else
                    tl__i2_dot_w16(m->data + r * m->row_bytes, m->row_bytes, n, xs + v * P, sums[v], a);
                for (size_t i = 0; i < n; i++) acc[v * rows + r + i] = a[i];
            }
        }
        return;
    }
    int8_t *t = (int8_t *)((uint8_t *)j->t + thread * j->slot);
    for (size_t r = ra; r < rb; r++) {
        tl__decode_row(m, r, t);
        for (size_t v = 0; v < nvec; v++) {
#if TL_RELAXED
            if (j->r8) {
                acc[v * rows + r] = tl__dot_t8_x8(t, (const int8_t *)(xs + v * P), P, sums[v]);
                continue;
            }
#endif
            acc[v * rows + r] = tl__dot_t8_x16(t, xs + v * P, P);
        }
    }
}

/* acc[v * rows + r] = sum_c trit(r, c) * x(v, c), exact, for nvec vectors of x (int16, nvec * cols;
 * |x| <= 511, 512 * cols < 2^31); x8: the same vectors as int8 (int8 activations), or NULL; wide:
 * |x| <= 4095 instead (4096 * cols < 2^31), for fewer than TL__TABLE_MIN vectors (the dot
 * products take them, the tables do not); w: tl__product_need(m, nvec, x8 != NULL) bytes. */
static void tl__dot_product(const tl_matrix *m, const int16_t *x, const int8_t *x8, size_t nvec, int wide,
                            int32_t *acc, uint8_t *w);
static void tl__product(const tl_matrix *m, const int16_t *x, const int8_t *x8, size_t nvec, int wide, int32_t *acc,
                        uint8_t *w) {
    const int tables = tl__use_tables(m, nvec, x8 != NULL);
    if (!x8 || wide) {
        if (tables) tl__lut_product(m, x, nvec, acc, w);
        else tl__dot_product(m, x, x8, nvec, wide, acc, w);
        return;
    }
    /* int8 vectors: the sparse ones through the columns (in a batch that takes the tables, only
     * the sparser ones: TL__COL_B), runs of the others through the tables or the dot products */
    const size_t cols = m->cols, rows = m->rows;
    for (size_t v = 0; v < nvec;) {
        size_t e = v;
        int take = 0;
        while (e < nvec && !(take = tl__col_take(m, x8 + e * cols, NULL, tables ? TL__COL_B : TL__COL_I8))) e++;
        if (e > v && tl__use_tables(m, e - v, 1)) tl__lut_product(m, x + v * cols, e - v, acc + v * rows, w);
        else if (e > v) tl__dot_product(m, x + v * cols, x8 + v * cols, e - v, wide, acc + v * rows, w);
        if (e < nvec) tl__col_i8(m, x8 + e * cols, take == 2, (uint32_t *)w, acc + e * rows);
        v = e + 1;
    }
}

/* tl__product's dot products */
static void tl__dot_product(const tl_matrix *m, const int16_t *x, const int8_t *x8, size_t nvec, int wide,
                            int32_t *acc, uint8_t *w) {
    const size_t P = m->row_weights, cols = m->cols;
    const int r8 = TL_RELAXED && x8 != NULL; /* the relaxed int8 dot products */
    uint8_t *cur = w;
    int16_t *xs = tl__take(&cur, (uint64_t)nvec * P * 2); /* int8 for r8: half used */
    int32_t *sums = tl__take(&cur, (uint64_t)nvec * 4);
    tl__split sp = tl__split_rows(m, nvec, 4, TL__TASKS_DOT);
    for (size_t v = 0; v < nvec; v++) {
        const int16_t *xv = x + v * cols;
        sums[v] = tl__sum16(xv, cols);
#if TL_RELAXED
        if (r8) {
            int8_t *x8v = (int8_t *)(xs + v * P);
            if (m->traits->dot_x16)
                tl__i2_x8(x8 + v * cols, cols, P, x8v);
            else
                memcpy(x8v, x8 + v * cols, cols), memset(x8v + cols, 0, P - cols);
            continue;
        }
#endif
        if (m->traits->dot_x16)
            tl__i2_xw(xv, cols, P, wide, xs + v * P);
        else
            memcpy(xs + v * P, xv, cols * 2), memset(xs + v * P + cols, 0, (P - cols) * 2);
    }
    tl__dot_job j = {m, xs, sums, nvec, sp.chunk, r8, wide, acc, (int8_t *)cur, tl__rup16((uint64_t)P + 16)};
    tl__parallel(sp.tasks, tl__dot_task, &j);
}

/* ---------------------------------------------------------------------------
 * int8 activations: widened to int16, the integer product, then the reference's output
 * ------------------------------------------------------------------------- */

static uint64_t tl__i8_need(const tl_matrix *m, size_t batch, int have_acc) {
    return tl__rup16((uint64_t)batch * m->cols * 2) + (have_acc ? 0 : tl__rup16((uint64_t)batch * m->rows * 4)) +
           tl__product_need(m, batch, 1);
}

static void tl__i8_run(const tl_matrix *m, const int8_t *x, size_t batch, const float *x_scales, int32_t *acc,
                       float *out, uint8_t *w) {
    uint64_t n = (uint64_t)batch * m->cols;
    uint8_t *cur = w;
    int16_t *x16 = tl__take(&cur, n * 2);
    int32_t *a = acc ? acc : tl__take(&cur, (uint64_t)batch * m->rows * 4);
    for (uint64_t i = 0; i < n; i++) x16[i] = x[i];
    tl__product(m, x16, x, batch, 0, a, cur);
    if (!out) return;
    for (size_t b = 0; b < batch; b++) {
        const size_t rows = m->rows;
        const float s = x_scales ? x_scales[b] : 1.0f;
        size_t r = 0;
#if TL_SIMD
        /* tl__emit's fl(fl(fl(a) * scale) / s), four at a time (the same IEEE operations) */
        const v128_t sv = wasm_f32x4_splat(s);
        for (; r + 4 <= rows; r += 4)
            wasm_v128_store(out + b * rows + r,
                            wasm_f32x4_div(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_v128_load(a + b * rows + r)),
                                                          wasm_v128_load(m->scales + r)),
                                           sv));
#endif
        for (; r < rows; r++) tl__emit(m, b, r, a[b * rows + r], s, NULL, out);
    }
}

/* ---------------------------------------------------------------------------
 * Float activations: each vector in fixed point, then exact integer sums
 *
 * A vector x (finite) with M = max |x| becomes q = nearest(x * u), u the largest power of two with
 * M u < 2^23: x * u is exact, |q| <= 2^23, and |x - q / u| <= 1 / (2u) <= M 2^-23. The product
 * S = sum_c trit * q is exact (int64), and y[r] = fl(fl(S / u) * scale[r]) (the division exact in
 * double, then rounded once to float). So against the exact product the error is under
 * nnz(row) * M * 2^-23 * |scale[r]| (typically sqrt(nnz) * M * 2^-25) plus those two roundings,
 * about what a float32 sum of the same terms may lose; sums of x that are multiples of 1 / u (small
 * integers times a power of two) come out exact. Every build returns the same bits, at any batch.
 *
 * Batches of up to TL__F32_DOTS vectors split each q into digits for the integer dot products (two
 * of 12 bits, S = 2^12 S_1 + S_0, through the wide dot products, one vector at a time); larger
 * batches use tables of int32 sums over each i2 byte (below), 8 vectors per pass, tile sums added
 * into int64.
 * ------------------------------------------------------------------------- */

#define TL__FQ 23       /* |q| <= 2^23 */
#define TL__L 8         /* float vectors per pass of the batched tables */
#define TL__TILE 2      /* i2 blocks (64 columns) per table tile: |tile sum| <= 128 * 2^23 = 2^30 */
#define TL__DOT_COLS ((size_t)1 << 19) /* the dot path's digit sums (|d| <= 2048) fit int32 up to here */

/* x (cols floats) -> q (cols int32); returns 1 / u. */
static double tl__f32_q(const float *x, size_t cols, int32_t *q) {
    size_t c = 0;
    float mx = 0.0f;
#if TL_SIMD
    v128_t m4 = wasm_f32x4_splat(0.0f);
    for (; c + 4 <= cols; c += 4) m4 = wasm_f32x4_pmax(m4, wasm_f32x4_abs(wasm_v128_load(x + c)));
    for (int k = 0; k < 4; k++) {
        float v = wasm_f32x4_extract_lane(m4, 0);
        mx = v > mx ? v : mx;
        m4 = wasm_i32x4_shuffle(m4, m4, 1, 2, 3, 0);
    }
#endif
    for (; c < cols; c++) mx = fabsf(x[c]) > mx ? fabsf(x[c]) : mx;
    int e;
    (void)frexpf(mx > 0.0f ? mx : 1.0f, &e); /* 2^(e-1) <= max < 2^e */
    const int sh = TL__FQ - e;                /* max * 2^sh < 2^23 */
    /* u = u1 u2, both floats (u reaches 2^172 for subnormal x): x u1 u2 is exact */
    const float u1 = sh > 100 ? 0x1p64f : 1.0f, u2 = ldexpf(1.0f, sh > 100 ? sh - 64 : sh);
    c = 0;
#if TL_SIMD
    const v128_t u1v = wasm_f32x4_splat(u1), u2v = wasm_f32x4_splat(u2);
    for (; c + 4 <= cols; c += 4)
        wasm_v128_store(q + c, wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(
                                   wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(x + c), u1v), u2v))));
#endif
    for (; c < cols; c++) q[c] = (int32_t)rintf(x[c] * u1 * u2);
    return ldexp(1.0, -sh);
}

/* The digits of q for the dot products, lowest first: TL__FD digits of TL__FB bits, each in
 * [-2^(FB-1), 2^(FB-1)) but the last (q = sum_k d_k 2^(FB k)): two of 12 bits (|d| <= 2048) for
 * the wide int16 dot products, in every build (the relaxed build's byte dot products on four 8-bit
 * digits measured 1.26-1.6x slower than the two digits in one fused int16 pass). */
#define TL__FD 2 /* tl__product's wide vectors */
#define TL__FB 12
_Static_assert(TL__FD < TL__TABLE_MIN, "the digits go through the dot products");

/* q (cols int32) -> TL__FD digit vectors of cols int16 (d + k cols: digit k) */
static void tl__f32_digits(const int32_t *q, size_t cols, int16_t *d) {
    const int32_t half = 1 << (TL__FB - 1), mask = (1 << TL__FB) - 1;
    size_t c = 0;
#if TL_SIMD
    const v128_t hv = wasm_i32x4_splat(half), mv = wasm_i32x4_splat(mask);
    for (; c + 8 <= cols; c += 8) {
        v128_t v0 = wasm_v128_load(q + c), v1 = wasm_v128_load(q + c + 4);
        for (int k = 0; k < TL__FD - 1; k++) {
            v128_t l0 = wasm_i32x4_sub(wasm_v128_and(wasm_i32x4_add(v0, hv), mv), hv),
                   l1 = wasm_i32x4_sub(wasm_v128_and(wasm_i32x4_add(v1, hv), mv), hv);
            v0 = wasm_i32x4_shr(wasm_i32x4_sub(v0, l0), TL__FB), v1 = wasm_i32x4_shr(wasm_i32x4_sub(v1, l1), TL__FB);
            wasm_v128_store(d + k * cols + c, wasm_i16x8_narrow_i32x4(l0, l1));
        }
        wasm_v128_store(d + (TL__FD - 1) * cols + c, wasm_i16x8_narrow_i32x4(v0, v1));
    }
#endif
    for (; c < cols; c++) {
        int32_t v = q[c];
        for (int k = 0; k < TL__FD - 1; k++) {
            int32_t lo = ((v + half) & mask) - half;
            d[k * cols + c] = (int16_t)lo;
            v = (v - lo) / (1 << TL__FB);
        }
        d[(TL__FD - 1) * cols + c] = (int16_t)v;
    }
}

/* o[c0 + 3 c1] = v(c0, x0) + v(c1, x1) for L vectors; v(0, x) = -x, v(1, x) = 0, v(2, x) = x */
static void tl__tabq_block(const int32_t *q, size_t cols, size_t batch, size_t b0, size_t blk, int32_t *T) {
    for (unsigned j = 0; j < 16; j++) {
        int32_t xi[4][TL__L], lo[9][TL__L], hi[9][TL__L];
        for (unsigned i = 0; i < 4; i++) {
            size_t c = 64 * blk + tl__col_of(j, i);
            for (size_t l = 0; l < TL__L; l++) xi[i][l] = c < cols && b0 + l < batch ? q[(b0 + l) * cols + c] : 0;
        }
        for (int c1 = 0; c1 < 3; c1++)
            for (int c0 = 0; c0 < 3; c0++)
                for (size_t l = 0; l < TL__L; l++) {
                    lo[c0 + 3 * c1][l] = (c0 - 1) * xi[0][l] + (c1 - 1) * xi[1][l];
                    hi[c0 + 3 * c1][l] = (c0 - 1) * xi[2][l] + (c1 - 1) * xi[3][l];
                }
        int32_t *Tj = T + 81 * TL__L * j;
        for (int h = 0; h < 9; h++)
            for (int o = 0; o < 9; o++) {
                int32_t *e = Tj + (o + 9 * h) * TL__L;
#if TL_SIMD
                for (int v = 0; v < TL__L; v += 4)
                    wasm_v128_store(e + v, wasm_i32x4_add(wasm_v128_load(lo[o] + v), wasm_v128_load(hi[h] + v)));
#else
                for (size_t l = 0; l < TL__L; l++) e[l] = lo[o][l] + hi[h][l];
#endif
            }
    }
}

/* One row's part of a tile (nb blocks), 8 vectors: acc[l] += the tile's sum for vector l. */
#define TL__E(j) (T + (81 * (j) + tl__i2_b3[p[j]]) * TL__L)
static void tl__lutq_row(const uint8_t *p, size_t step, const int32_t *T, size_t nb, int64_t *acc) {
#if TL_SIMD
    v128_t z = wasm_i32x4_splat(0), a0 = z, b0 = z, a1 = z, b1 = z, a2 = z, b2 = z, a3 = z, b3 = z;
    for (size_t b = 0; b < nb; b++, p += step, T += 16 * 81 * TL__L) {
#define TL__ADD(j, a, bb)                                                                                    \
    a = wasm_i32x4_add(a, wasm_v128_load(TL__E(j))), bb = wasm_i32x4_add(bb, wasm_v128_load(TL__E(j) + 4))
        TL__ADD(0, a0, b0), TL__ADD(1, a1, b1), TL__ADD(2, a2, b2), TL__ADD(3, a3, b3);
        TL__ADD(4, a0, b0), TL__ADD(5, a1, b1), TL__ADD(6, a2, b2), TL__ADD(7, a3, b3);
        TL__ADD(8, a0, b0), TL__ADD(9, a1, b1), TL__ADD(10, a2, b2), TL__ADD(11, a3, b3);
        TL__ADD(12, a0, b0), TL__ADD(13, a1, b1), TL__ADD(14, a2, b2), TL__ADD(15, a3, b3);
#undef TL__ADD
    }
    v128_t sa = wasm_i32x4_add(wasm_i32x4_add(a0, a1), wasm_i32x4_add(a2, a3));
    v128_t sb = wasm_i32x4_add(wasm_i32x4_add(b0, b1), wasm_i32x4_add(b2, b3));
    wasm_v128_store(acc, wasm_i64x2_add(wasm_v128_load(acc), wasm_i64x2_extend_low_i32x4(sa)));
    wasm_v128_store(acc + 2, wasm_i64x2_add(wasm_v128_load(acc + 2), wasm_i64x2_extend_high_i32x4(sa)));
    wasm_v128_store(acc + 4, wasm_i64x2_add(wasm_v128_load(acc + 4), wasm_i64x2_extend_low_i32x4(sb)));
    wasm_v128_store(acc + 6, wasm_i64x2_add(wasm_v128_load(acc + 6), wasm_i64x2_extend_high_i32x4(sb)));
#else
    int32_t s[TL__L] = {0};
    for (size_t b = 0; b < nb; b++, p += step, T += 16 * 81 * TL__L)
        for (int j = 0; j < 16; j++)
            for (size_t l = 0; l < TL__L; l++) s[l] += TL__E(j)[l];
    for (size_t l = 0; l < TL__L; l++) acc[l] += s[l];
#endif
}
#undef TL__E

/* Batches up to TL__F32_DOTS vectors take the dot products one vector at a time: below that the
 * batched tables cost more per vector than a vector's own pass. */
#define TL__F32_DOTS 4
static int tl__f32_dots(const tl_matrix *m, size_t batch) { return batch <= TL__F32_DOTS && m->cols <= TL__DOT_COLS; }

/* The batched float tables' scratch, per thread: tables of a tile, int64 accumulators, and for
 * formats re-encoded to i2 a decoded row and a band of re-encoded rows */
static uint64_t tl__f32_lut_slot(const tl_matrix *m) {
    const tl__lut_plan p = tl__lut_layout(m, 0);
    return tl__rup16((uint64_t)TL__TILE * 16 * 81 * TL__L * 4) + tl__rup16((uint64_t)p.nband * TL__L * 8) +
           (p.conv ? tl__rup16((uint64_t)p.Q * 64) + tl__rup16((uint64_t)p.nband * p.Q * 16) : 0);
}

static uint64_t tl__f32_need(const tl_matrix *m, size_t batch) {
    uint64_t head = tl__rup16((uint64_t)batch * m->cols * 4) + tl__rup16((uint64_t)batch * 8);
    if (tl__f32_dots(m, batch))
        return head + tl__rup16((uint64_t)TL__FD * m->cols * 2) + tl__rup16((uint64_t)TL__FD * m->rows * 4) +
               (tl__product_need(m, TL__FD, 0) > 8 * (uint64_t)m->cols ? tl__product_need(m, TL__FD, 0)
                                                                       : 8 * (uint64_t)m->cols);
    /* + the vectors the tables take (vmap), a column product's scratch */
    return head + tl__rup16((uint64_t)batch * 4) + tl__rup16(8 * (uint64_t)m->cols) +
           tl__split_rows(m, batch, 4, TL__TASKS_LUT).slots * tl__f32_lut_slot(m);
}

/* The batched float product of rows ra..rb - 1: q in fixed point, unit per vector; vector b's
 * outputs go to out's vector vmap[b]; w: a slot of tl__f32_lut_slot bytes */
static void tl__f32_lut_rows(const tl_matrix *m, const int32_t *q, const double *unit, const uint32_t *vmap,
                             size_t batch, float *out, uint8_t *w, size_t ra, size_t rb, size_t pa, size_t pb) {
    const size_t cols = m->cols, rows = m->rows;
    uint8_t *cur = w;
    const tl__lut_plan pl = tl__lut_layout(m, 0);
    const size_t Q = pl.Q, band = pl.band, nband = pl.nband;
    int32_t *T = tl__take(&cur, (uint64_t)TL__TILE * 16 * 81 * TL__L * 4);
    int64_t *A = tl__take(&cur, (uint64_t)nband * TL__L * 8);
    int8_t *t = pl.conv ? tl__take(&cur, (uint64_t)Q * 64) : NULL;
    uint8_t *buf = pl.conv ? tl__take(&cur, (uint64_t)nband * Q * 16) : NULL;
    if (t) memset(t + m->row_weights, 0, Q * 64 - m->row_weights);
    for (size_t r0 = ra; r0 < rb; r0 += band) {
        size_t nr = rb - r0 < band ? rb - r0 : band;
        const uint8_t *base = tl__i2_rows(m, r0, nr, Q, t, buf);
        for (size_t b0 = pa * TL__L; b0 < batch && b0 < pb * TL__L; b0 += TL__L) {
            uint32_t sink = 0;
            memset(A, 0, nr * TL__L * 8);
            for (size_t k0 = 0; k0 < Q; k0 += TL__TILE) {
                size_t nb = Q - k0 < TL__TILE ? Q - k0 : TL__TILE;
                for (size_t k = 0; k < nb; k++) tl__tabq_block(q, cols, batch, b0, k0 + k, T + k * 16 * 81 * TL__L);
                /* as in tl__lut_rows: whole tiles, then the last one (tn rows, blocks 16 tn apart) */
                const size_t full = nr / 4 * 4, tn = nr - full;
                const uint8_t *p = base + 64 * k0;
                for (size_t t0 = 0; t0 < full; t0 += 4, p += 64 * Q) {
                    if (t0 + 4 * TL__AHEAD < full) sink += p[64 * Q * TL__AHEAD];
                    for (size_t i = 0; i < 4; i++) tl__lutq_row(p + 16 * i, 64, T, nb, A + (t0 + i) * TL__L);
                }
                p = base + 16 * (Q * full + tn * k0);
                for (size_t i = 0; i < tn; i++) tl__lutq_row(p + 16 * i, 16 * tn, T, nb, A + (full + i) * TL__L);
            }
            tl__sink = sink;
            for (size_t r = 0; r < nr; r++)
                for (size_t l = 0; l < TL__L && b0 + l < batch; l++)
                    out[vmap[b0 + l] * rows + r0 + r] = (float)((double)A[r * TL__L + l] * unit[b0 + l]) * m->scales[r0 + r];
        }
    }
}

typedef struct {
    const tl_matrix *m;
    const int32_t *q;
    const double *unit;
    const uint32_t *vmap;
    size_t batch, chunk;
    int by_pass; /* a task is a pass of TL__L vectors over all rows, not a band of rows */
    float *out;
    uint8_t *w;
    uint64_t slot;
} tl__f32_lut_job;

static void tl__f32_lut_task(void *c, size_t task, unsigned thread) {
    const tl__f32_lut_job *j = c;
    size_t ra = 0, rb = j->m->rows, pa = 0, pb = (j->batch + TL__L - 1) / TL__L;
    if (j->by_pass)
        pa = task, pb = task + 1;
    else
        tl__task_range(j->m->rows, j->chunk, task, &ra, &rb);
    tl__f32_lut_rows(j->m, j->q, j->unit, j->vmap, j->batch, j->out, j->w + thread * j->slot, ra, rb, pa, pb);
}

static void tl__f32_run(const tl_matrix *m, const float *x, size_t batch, float *out, uint8_t *w) {
    const size_t cols = m->cols, rows = m->rows;
    uint8_t *cur = w;
    int32_t *q = tl__take(&cur, (uint64_t)batch * cols * 4);
    double *unit = tl__take(&cur, (uint64_t)batch * 8);
    for (size_t b = 0; b < batch; b++) unit[b] = tl__f32_q(x + b * cols, cols, q + b * cols);

    if (tl__f32_dots(m, batch)) {
        int16_t *d = tl__take(&cur, (uint64_t)TL__FD * cols * 2);
        int32_t *a = tl__take(&cur, (uint64_t)TL__FD * rows * 4);
        for (size_t b = 0; b < batch; b++) {
            if (tl__col_take(m, NULL, q + b * cols, TL__COL_Q)) {
                tl__col_q(m, q + b * cols, unit[b], (uint32_t *)cur, (int32_t *)cur + cols, out + b * rows);
                continue;
            }
            tl__f32_digits(q + b * cols, cols, d);
            tl__product(m, d, NULL, TL__FD, 1, a, cur);
            for (size_t r = 0; r < rows; r++) {
                int64_t s = 0;
                for (int k = TL__FD - 1; k >= 0; k--) s = s * (1 << TL__FB) + a[k * rows + r];
                out[b * rows + r] = (float)((double)s * unit[b]) * m->scales[r];
            }
        }
        return;
    }
    /* The sparser vectors through the columns (TL__COL_B), the others through the tables, moved
     * together (q and unit of the n others in front; vmap: where their outputs go). */
    uint32_t *vmap = tl__take(&cur, (uint64_t)batch * 4);
    uint8_t *cs = tl__take(&cur, 8 * (uint64_t)cols);
    size_t n = 0;
    for (size_t b = 0; b < batch; b++)
        if (tl__col_take(m, NULL, q + b * cols, TL__COL_B))
            tl__col_q(m, q + b * cols, unit[b], (uint32_t *)cs, (int32_t *)cs + cols, out + b * rows);
        else
            vmap[n++] = (uint32_t)b;
    if (!n) return;
    for (size_t i = 0; i < n; i++)
        if (vmap[i] != i) memcpy(q + i * cols, q + (size_t)vmap[i] * cols, cols * 4), unit[i] = unit[vmap[i]];
    /* Split over the threads by passes when there are enough of them, else by rows: every thread
     * builds the tables of its passes, and split by rows every thread would build them all (1.5x
     * instead of 1.7x on 2 threads, wide MLP batch 16). An output is computed the same way either way. */
    tl__split sp = tl__split_rows(m, n, 4, TL__TASKS_LUT);
    const size_t passes = (n + TL__L - 1) / TL__L;
    const int by_pass = sp.tasks > 1 && sp.slots == tl__threads_n() && passes >= sp.slots;
    tl__f32_lut_job j = {m, q, unit, vmap, n, sp.chunk, by_pass, out, cur, tl__f32_lut_slot(m)};
    tl__parallel(by_pass ? passes : sp.tasks, tl__f32_lut_task, &j);
}

/* ---------------------------------------------------------------------------
 * Internal entry points (internal.h): no argument checks, a caller's workspace
 * ------------------------------------------------------------------------- */

tl_status tl__matmul_i8_ws(const tl_matrix *m, const int8_t *x, size_t batch, const float *x_scales,
                           int32_t *acc, float *out, tl__ws *ws) {
    tl_status s = tl__ws_need(ws, tl__i8_need(m, batch, acc != NULL));
    if (s) return s;
    tl__i8_run(m, x, batch, x_scales, acc, out, ws->p);
    return TL_OK;
}

tl_status tl__matmul_f32_ws(const tl_matrix *m, const float *x, size_t batch, float *out, tl__ws *ws) {
    tl_status s = tl__ws_need(ws, tl__f32_need(m, batch));
    if (s) return s;
    tl__f32_run(m, x, batch, out, ws->p);
    return TL_OK;
}

tl_status tl__matmul_f32_i8_ws(const tl_matrix *m, const float *x, size_t batch, float *out, tl__ws *ws) {
    /* the quantized copy and its scales at the front of the workspace, the product's parts after */
    uint64_t n = (uint64_t)batch * m->cols, head = tl__rup16(n) + tl__rup16((uint64_t)batch * 4);
    tl_status s = tl__ws_need(ws, head + tl__i8_need(m, batch, 0));
    if (s) return s;
    int8_t *xq = ws->p;
    float *xs = (float *)((uint8_t *)ws->p + tl__rup16(n));
    tl__quantize_i8(x, m->cols, batch, xq, xs);
    tl__i8_run(m, xq, batch, xs, NULL, out, (uint8_t *)ws->p + head);
    return TL_OK;
}

/* bitplane x binary, rows of a task: popcounts against the prepared words */
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
    size_t ra, rb;
    (void)thread;
    tl__task_range(m->rows, j->chunk, task, &ra, &rb);
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
    /* Few vectors take the columns (0/1: one magnitude, tl__col_one_task), twice as fast as the
     * popcounts at 4096x4096 where the copy is allowed */
    if (m->traits->dot_bits && (m->col_off || batch >= TL__TABLE_MIN)) {
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
    /* Otherwise the bits become 0/1 int8 activations for the int path. */
    uint64_t head = tl__rup16((uint64_t)batch * m->cols);
    if ((s = tl__ws_need(ws, head + tl__i8_need(m, batch, acc != NULL)))) return s;
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

    /* acc, or a row of int32 sums for the outputs */
    int32_t *sums = acc ? NULL : tl__malloc((uint64_t)m->rows * 4);
    if (!acc && !sums) return TL_ERR_NO_MEMORY;
    for (size_t b = 0; b < batch; b++) {
        int32_t *a = acc ? acc + b * m->rows : sums;
        tl__col_job j = {m, idx + offsets[b], NULL, offsets[b + 1] - offsets[b], 0, 0, 0, 0.0, a, NULL, 1, 0};
        tl__col_run(&j, tl__col_one_task);
        for (size_t r = 0; r < m->rows; r++) tl__emit(m, b, r, a[r], 1.0f, acc, out);
    }
    tl__free(sums);
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
