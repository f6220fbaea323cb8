/* formats.c — the packed ternary formats, byte for byte, and the one table that lists them.
 * docs/FORMATS.md says the same in prose. Adding a format: its functions and its row of
 * tl__formats below, its value in tl_format (include/tilelli.h), its name in js/index.d.ts.
 *
 * Every format packs each row on its own, padded to a whole number of 16-byte blocks, so a
 * row starts at row * row_bytes and a SIMD loop never needs a tail inside a row's bytes.
 * Padding always encodes zero trits: kernels may run over it without masking.
 *
 * i2 (TL_FORMAT_I2): 2 bits per weight, code = trit + 1 (0, 1, 2; 3 is invalid).
 *   Blocks of 64 weights in 16 bytes, read as eight little-endian 16-bit lanes: weight w of
 *   the block (0..63) sits in lane w % 8 at bits 2 * (w / 8). So one shift and one mask of
 *   the whole block give the codes of 8 consecutive weights as 16-bit integers, ready for
 *   i32x4.dot_i16x8_s against int16 activations.
 *   In bytes: weight w is in byte 2 * (w % 8) + (w / 32), bits 2 * ((w / 8) % 4)
 *   (tl__i2_byte, tl__i2_shift in formats.h).
 *
 * tq1 (TL_FORMAT_TQ1): 5 trits per byte (3^5 = 243 <= 256), 1.6 bits per weight.
 *   Blocks of 80 weights in 16 bytes: weight w of the block (0..79) is digit w / 16 of byte
 *   w % 16, so each digit position of a block is 16 consecutive weights. A byte holds
 *   v = sum_k c_k * 3^(4-k) (c = trit + 1, digit 0 most significant) as the 8-bit fixed-point
 *   fraction q = ceil(v * 256 / 243). Digit k decodes with a multiply and a shift, no
 *   division: c_k = (((q * 3^k) mod 256) * 3) >> 8 (tl__tq1_digit). Only the 243 values
 *   ceil(v * 256 / 243) are valid bytes.
 *
 * bitplane (TL_FORMAT_BITPLANE): per row, a positive plane then a negative plane, each
 *   ceil(cols / 128) * 16 bytes; bit c of a plane (byte c / 8, bit c % 8, so little-endian
 *   64-bit words hold bit c at word c / 64, bit c % 64) is set when trit c is +1 (positive
 *   plane) or -1 (negative plane). A bit set in both planes is invalid. As blocks: 128
 *   weights in 32 bytes (16 of each plane; the planes are not interleaved).
 */
#include "formats.h"

#include "internal.h"
#include "simd.h"

/* ---------------------------------------------------------------------------
 * i2
 * ------------------------------------------------------------------------- */

static void i2_pack_row(const int8_t *t, size_t cols, uint8_t *out, size_t rb) {
    memset(out, TL__I2_ZERO_BYTE, rb);
    for (size_t base = 0; base < rb; base += 16) {
        size_t w0 = base / 16 * TL__I2_BLOCK_WEIGHTS;
        for (unsigned w = 0; w < TL__I2_BLOCK_WEIGHTS && w0 + w < cols; w++)
            tl__i2_set(out + base, w, (unsigned)(t[w0 + w] + 1));
    }
}

void tl__i2_block_from_crumbs(const uint8_t *in, unsigned k, uint8_t *out) {
#if TL_SIMD
    /* c_j: the codes of weights 16j..16j+15 (a 16-bit shift, then the mask: bits carried in from
     * the byte above land at 2 and up). In bytes, t = c0 | c1 << 4 holds fields 0 and 2 of lane L
     * in byte L and fields 1 and 3 in byte 8 + L; u = c2 | c3 << 4 the same for fields 4..7. Lane
     * L's low byte is t[L] | t[8 + L] << 2, its high byte u[L] | u[8 + L] << 2 (no shift carries
     * past a byte: the bytes are at most 0x33). */
    const v128_t three = wasm_i8x16_splat(3);
    v128_t c[4];
    for (unsigned j = 0; j < 4; j++) {
        v128_t v = wasm_v128_load(in + 16 * j);
        v = k == 0 ? v : k == 1 ? wasm_u16x8_shr(v, 2) : k == 2 ? wasm_u16x8_shr(v, 4) : wasm_u16x8_shr(v, 6);
        c[j] = wasm_v128_and(v, three);
    }
    const v128_t t = wasm_v128_or(c[0], wasm_i16x8_shl(c[1], 4)), u = wasm_v128_or(c[2], wasm_i16x8_shl(c[3], 4));
    const v128_t th = wasm_i8x16_shuffle(t, t, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15),
                 uh = wasm_i8x16_shuffle(u, u, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
    const v128_t lo = wasm_v128_or(t, wasm_i16x8_shl(th, 2)), hi = wasm_v128_or(u, wasm_i16x8_shl(uh, 2));
    wasm_v128_store(out, wasm_i8x16_shuffle(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23));
#else
    memset(out, 0, 16);
    for (unsigned w = 0; w < TL__I2_BLOCK_WEIGHTS; w++)
        out[tl__i2_byte(w)] |= (uint8_t)(((in[w] >> (2 * k)) & 3u) << tl__i2_shift(w));
#endif
}

static int i2_unpack_row(const uint8_t *in, size_t cols, size_t rb, int8_t *t) {
    int bad = 0;
    for (size_t base = 0; base < rb; base += 16) {
        size_t w0 = base / 16 * TL__I2_BLOCK_WEIGHTS;
        for (unsigned w = 0; w < TL__I2_BLOCK_WEIGHTS; w++) {
            unsigned code = tl__i2_code(in + base, w);
            if (w0 + w < cols) {
                bad |= code == 3;
                t[w0 + w] = (int8_t)((int)code - 1);
            } else {
                bad |= code != 1;
            }
        }
    }
    return bad;
}

/* Fast validation of rows x row_bytes bytes (what unpack_row accepts, nothing decoded): a code 3
 * has both bits of its pair set, and the codes sit on even bit positions of every byte, so one
 * AND of each 64-bit word with itself shifted finds any; the padding of a row (the weights of its
 * last block past cols) must be code 1, compared under a mask. */
static uint64_t tl__le64_at(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v; /* the formats are little-endian; so are wasm and the hosts the tests run on */
}

static int i2_check_rows(const uint8_t *in, size_t rows, size_t cols, size_t rb) {
    uint64_t bad = 0;
    const size_t n = rows * rb; /* a multiple of 16 */
    for (size_t i = 0; i < n; i += 16) {
        uint64_t a = tl__le64_at(in + i), b = tl__le64_at(in + i + 8);
        bad |= (a & a >> 1) | (b & b >> 1);
    }
    if (bad & 0x5555555555555555u) return 1;
    bad = 0;
    unsigned used = (unsigned)(cols % TL__I2_BLOCK_WEIGHTS);
    if (!used) return 0;
    uint8_t mask[16] = {0}, want[16] = {0};
    for (unsigned w = used; w < TL__I2_BLOCK_WEIGHTS; w++) {
        mask[tl__i2_byte(w)] |= (uint8_t)(3u << tl__i2_shift(w));
        want[tl__i2_byte(w)] |= (uint8_t)(1u << tl__i2_shift(w));
    }
    uint64_t m0 = tl__le64_at(mask), m1 = tl__le64_at(mask + 8), w0 = tl__le64_at(want),
             w1 = tl__le64_at(want + 8);
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *last = in + r * rb + rb - 16;
        bad |= ((tl__le64_at(last) & m0) ^ w0) | ((tl__le64_at(last + 8) & m1) ^ w1);
    }
    return bad != 0;
}

static void i2_decode_row(const uint8_t *row, size_t rb, int8_t *out) {
    for (size_t b = 0; b < rb / 16; b++) {
        const uint8_t *p = row + 16 * b;
        int8_t *o = out + TL__I2_BLOCK_WEIGHTS * b;
#if TL_SIMD
        /* field k of every lane is weights 8k..8k+7: one shift and mask per field */
        v128_t v = wasm_v128_load(p), three = wasm_i16x8_splat(3), one = wasm_i8x16_splat(1);
        for (int k = 0; k < 8; k += 2) {
            v128_t c0 = wasm_v128_and(wasm_u16x8_shr(v, 2 * k), three);
            v128_t c1 = wasm_v128_and(wasm_u16x8_shr(v, 2 * k + 2), three);
            wasm_v128_store(o + 8 * k, wasm_i8x16_sub(wasm_u8x16_narrow_i16x8(c0, c1), one));
        }
#else
        for (unsigned w = 0; w < TL__I2_BLOCK_WEIGHTS; w++) o[w] = (int8_t)((int)tl__i2_code(p, w) - 1);
#endif
    }
}

/* ---------------------------------------------------------------------------
 * tq1
 * ------------------------------------------------------------------------- */

uint8_t tl__tq1_encode(const uint8_t c[5]) {
    unsigned v = 0;
    for (int k = 0; k < 5; k++) v = v * 3 + c[k];
    return (uint8_t)((v * 256 + 242) / 243);
}

/* A byte is valid when re-encoding its digits gives it back. */
static int tq1_valid(uint8_t q) {
    uint8_t c[5];
    for (unsigned k = 0; k < 5; k++) {
        c[k] = (uint8_t)tl__tq1_digit(q, k);
        if (c[k] > 2) return 0;
    }
    return tl__tq1_encode(c) == q;
}

static void tq1_pack_row(const int8_t *t, size_t cols, uint8_t *out, size_t rb) {
    for (size_t base = 0; base < rb; base += 16) {
        size_t w0 = base / 16 * 80;
        for (unsigned j = 0; j < 16; j++) {
            uint8_t c[5];
            for (unsigned k = 0; k < 5; k++) {
                size_t i = w0 + 16 * k + j;
                c[k] = i < cols ? (uint8_t)(t[i] + 1) : 1u;
            }
            out[base + j] = tl__tq1_encode(c);
        }
    }
}

static int tq1_unpack_row(const uint8_t *in, size_t cols, size_t rb, int8_t *t) {
    int bad = 0;
    for (size_t base = 0; base < rb; base += 16) {
        size_t w0 = base / 16 * 80;
        for (unsigned j = 0; j < 16; j++) {
            uint8_t q = in[base + j];
            bad |= !tq1_valid(q);
            for (unsigned k = 0; k < 5; k++) {
                size_t i = w0 + 16 * k + j;
                unsigned c = tl__tq1_digit(q, k);
                if (i < cols)
                    t[i] = (int8_t)((int)c - 1);
                else
                    bad |= c != 1;
            }
        }
    }
    return bad;
}

/* Fast validation: a byte is valid when it is the encoding of v = floor(q * 243 / 256), the one
 * value whose encoding could be q (tl__tq1_encode is increasing and moves each v by less than 2);
 * the digits of the last block past cols must be 1 (zero trits). */
static int tq1_check_rows(const uint8_t *in, size_t rows, size_t cols, size_t rb) {
    unsigned bad = 0;
    const size_t n = rows * rb;
    for (size_t i = 0; i < n; i++) {
        unsigned q = in[i], v = q * 243u >> 8;
        bad |= ((v * 256u + 242u) / 243u) ^ q;
    }
    if (bad) return 1;
    size_t used = cols % 80;
    if (!used) return 0;
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *last = in + r * rb + rb - 16;
        for (unsigned j = 0; j < 16; j++)
            for (unsigned k = 0; k < 5; k++)
                if (16 * k + j >= used) bad |= tl__tq1_digit(last[j], k) ^ 1u;
    }
    return bad != 0;
}

static void tq1_decode_row(const uint8_t *row, size_t rb, int8_t *out) {
    for (size_t b = 0; b < rb / 16; b++) {
        const uint8_t *p = row + 16 * b;
        int8_t *o = out + 80 * b;
#if TL_SIMD
        v128_t q = wasm_v128_load(p), lo = wasm_u16x8_extend_low_u8x16(q),
               hi = wasm_u16x8_extend_high_u8x16(q);
        v128_t three = wasm_i16x8_splat(3), one = wasm_i8x16_splat(1);
        for (unsigned k = 0; k < 5; k++) {
            /* (q * 3^k) mod 256 as (q * (3^k << 8) mod 2^16) >> 8: the form with `& 255` is
             * narrowed by clang 19 (the relaxed build) into an 8-bit multiply, which wasm lacks
             * and which it then does lane by lane, 10x slower */
            v128_t pk = wasm_i16x8_splat((int16_t)(tl__tq1_pow3(k) << 8));
            v128_t dl = wasm_u16x8_shr(wasm_i16x8_mul(wasm_u16x8_shr(wasm_i16x8_mul(lo, pk), 8), three), 8);
            v128_t dh = wasm_u16x8_shr(wasm_i16x8_mul(wasm_u16x8_shr(wasm_i16x8_mul(hi, pk), 8), three), 8);
            wasm_v128_store(o + 16 * k, wasm_i8x16_sub(wasm_u8x16_narrow_i16x8(dl, dh), one));
        }
#else
        for (unsigned j = 0; j < 16; j++)
            for (unsigned k = 0; k < 5; k++) o[16 * k + j] = (int8_t)((int)tl__tq1_digit(p[j], k) - 1);
#endif
    }
}

/* ---------------------------------------------------------------------------
 * bitplane
 * ------------------------------------------------------------------------- */

static void bitplane_pack_row(const int8_t *t, size_t cols, uint8_t *out, size_t rb) {
    memset(out, 0, rb);
    uint8_t *pos = out, *neg = out + rb / 2;
    for (size_t c = 0; c < cols; c++) {
        if (t[c] > 0) pos[c / 8] |= (uint8_t)(1u << (c % 8));
        if (t[c] < 0) neg[c / 8] |= (uint8_t)(1u << (c % 8));
    }
}

static int bitplane_unpack_row(const uint8_t *in, size_t cols, size_t rb, int8_t *t) {
    int bad = 0;
    const uint8_t *pos = in, *neg = in + rb / 2;
    for (size_t b = 0; b < rb / 2; b++) {
        bad |= (pos[b] & neg[b]) != 0;
        for (unsigned k = 0; k < 8; k++) {
            size_t c = 8 * b + k;
            int p = (pos[b] >> k) & 1, n = (neg[b] >> k) & 1;
            if (c < cols)
                t[c] = (int8_t)(p - n);
            else
                bad |= p | n;
        }
    }
    return bad;
}

/* Fast validation: no bit set in both planes, no bit set past cols in either. */
static int bitplane_check_rows(const uint8_t *in, size_t rows, size_t cols, size_t rb) {
    const size_t half = rb / 2; /* a multiple of 16 */
    uint64_t bad = 0;
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *pos = in + r * rb, *neg = pos + half;
        for (size_t i = 0; i < half; i += 8) bad |= tl__le64_at(pos + i) & tl__le64_at(neg + i);
        /* the padding: bits cols % 8.. of byte cols / 8, then every byte after it */
        size_t b = cols / 8;
        if (cols % 8) bad |= (uint64_t)((pos[b] | neg[b]) >> (cols % 8)), b++;
        for (; b < half; b++) bad |= (uint64_t)(pos[b] | neg[b]);
    }
    return bad != 0;
}

static void bitplane_decode_row(const uint8_t *row, size_t rb, int8_t *out) {
    const uint8_t *pos = row, *neg = row + rb / 2;
    size_t nbytes = rb / 2, i = 0;
#if TL_SIMD
    const v128_t spread = wasm_i8x16_make(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const v128_t bit = wasm_i8x16_make(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
    for (; i + 2 <= nbytes; i += 2) {
        v128_t p = wasm_i8x16_swizzle(wasm_v128_load16_splat(pos + i), spread);
        v128_t n = wasm_i8x16_swizzle(wasm_v128_load16_splat(neg + i), spread);
        /* set bits give -1 masks; trit = (neg set) - (pos set) in mask terms */
        v128_t mp = wasm_i8x16_eq(wasm_v128_and(p, bit), bit), mn = wasm_i8x16_eq(wasm_v128_and(n, bit), bit);
        wasm_v128_store(out + 8 * i, wasm_i8x16_sub(mn, mp));
    }
#endif
    for (; i < nbytes; i++)
        for (unsigned k = 0; k < 8; k++) out[8 * i + k] = (int8_t)(((pos[i] >> k) & 1) - ((neg[i] >> k) & 1));
}

/* ---------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------- */

static const tl__format_traits tl__formats[] = {
    {TL_FORMAT_I2, "i2", 64, 16, i2_pack_row, i2_unpack_row, i2_decode_row, tl__i2_dot_x16, NULL, 1,
     i2_check_rows, 4},
    {TL_FORMAT_TQ1, "tq1", 80, 16, tq1_pack_row, tq1_unpack_row, tq1_decode_row, NULL, NULL, 0,
     tq1_check_rows, 1},
    {TL_FORMAT_BITPLANE, "bitplane", 128, 32, bitplane_pack_row, bitplane_unpack_row, bitplane_decode_row,
     NULL, tl__bitplane_dot_bits, 0, bitplane_check_rows, 1},
};
#define TL__NFORMATS (sizeof tl__formats / sizeof *tl__formats)

const tl__format_traits *tl__format(tl_format f) {
    for (size_t i = 0; i < TL__NFORMATS; i++)
        if (tl__formats[i].format == f) return &tl__formats[i];
    return NULL;
}

size_t tl_format_count(void) { return TL__NFORMATS; }

tl_format tl_format_at(size_t i) { return i < TL__NFORMATS ? tl__formats[i].format : (tl_format)0; }

const char *tl_format_name(tl_format f) {
    const tl__format_traits *t = tl__format(f);
    return t ? t->name : NULL;
}

tl_status tl_format_from_name(const char *name, size_t len, tl_format *out) {
    if (!out || (!name && len)) return TL_ERR_NULL;
    for (size_t i = 0; i < TL__NFORMATS; i++)
        if (strlen(tl__formats[i].name) == len && memcmp(tl__formats[i].name, name, len) == 0) {
            *out = tl__formats[i].format;
            return TL_OK;
        }
    return TL_ERR_FORMAT;
}
