/* pack.c — the packed ternary formats, byte for byte. docs/FORMATS.md says the same in prose.
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
 *   In bytes: weight w is in byte 2 * (w % 8) + (w / 32), bits 2 * ((w / 8) % 4).
 *
 * tq1 (TL_FORMAT_TQ1): 5 trits per byte (3^5 = 243 <= 256), 1.6 bits per weight.
 *   Blocks of 80 weights in 16 bytes: weight w of the block (0..79) is digit w / 16 of byte
 *   w % 16, so each digit position of a block is 16 consecutive weights. A byte holds
 *   v = sum_k c_k * 3^(4-k) (c = trit + 1, digit 0 most significant) as the 8-bit fixed-point
 *   fraction q = ceil(v * 256 / 243). Digit k decodes with a multiply and a shift, no
 *   division: c_k = (((q * 3^k) mod 256) * 3) >> 8. Only the 243 values ceil(v * 256 / 243)
 *   are valid bytes.
 *
 * bitplane (TL_FORMAT_BITPLANE): per row, a positive plane then a negative plane, each
 *   ceil(cols / 128) * 16 bytes; bit c of a plane (byte c / 8, bit c % 8, so little-endian
 *   64-bit words hold bit c at word c / 64, bit c % 64) is set when trit c is +1 (positive
 *   plane) or -1 (negative plane). A bit set in both planes is invalid.
 */
#include <stdlib.h>

#include "internal.h"

static const uint8_t tl__pow3[5] = {1, 3, 9, 27, 81};

/* ---------------------------------------------------------------------------
 * tq1 byte encoding
 * ------------------------------------------------------------------------- */

uint8_t tl__tq1_encode(const uint8_t c[5]) {
    unsigned v = 0;
    for (int k = 0; k < 5; k++) v = v * 3 + c[k];
    return (uint8_t)((v * 256 + 242) / 243);
}

/* Digit k (0..4) of byte q. */
static inline unsigned tl__tq1_digit(unsigned q, int k) { return (((q * tl__pow3[k]) & 255u) * 3u) >> 8; }

/* A byte is valid when re-encoding its digits gives it back. */
static int tl__tq1_valid(uint8_t q) {
    uint8_t c[5];
    for (int k = 0; k < 5; k++) {
        c[k] = (uint8_t)tl__tq1_digit(q, k);
        if (c[k] > 2) return 0;
    }
    return tl__tq1_encode(c) == q;
}

/* ---------------------------------------------------------------------------
 * Sizes
 * ------------------------------------------------------------------------- */

static size_t tl__blocks(size_t cols, size_t per_block) { return (cols + per_block - 1) / per_block; }

tl_status tl_format_row_bytes(tl_format f, size_t cols, size_t *bytes) {
    if (!bytes) return TL_ERR_NULL;
    if (cols == 0) return TL_ERR_EMPTY;
    if (cols > TL_MAX_ELEMENTS) return TL_ERR_OVERFLOW;
    switch (f) {
    case TL_FORMAT_I2:
        *bytes = tl__blocks(cols, 64) * 16;
        return TL_OK;
    case TL_FORMAT_TQ1:
        *bytes = tl__blocks(cols, 80) * 16;
        return TL_OK;
    case TL_FORMAT_BITPLANE:
        *bytes = tl__blocks(cols, 128) * 32;
        return TL_OK;
    }
    return TL_ERR_FORMAT;
}

tl_status tl_format_bytes(tl_format f, size_t rows, size_t cols, size_t *bytes) {
    if (!bytes) return TL_ERR_NULL;
    if (rows == 0) return TL_ERR_EMPTY;
    size_t rb;
    tl_status s = tl_format_row_bytes(f, cols, &rb);
    if (s) return s;
    if (rows > TL_MAX_ELEMENTS / cols || rows > TL_MAX_ELEMENTS / rb) return TL_ERR_OVERFLOW;
    *bytes = rows * rb;
    return TL_OK;
}

/* ---------------------------------------------------------------------------
 * One row
 * ------------------------------------------------------------------------- */

static void tl__pack_row(tl_format f, const int8_t *t, size_t cols, uint8_t *out, size_t rb) {
    memset(out, 0, rb);
    switch (f) {
    case TL_FORMAT_I2:
        for (size_t base = 0; base < rb; base += 16) {
            size_t w0 = base / 16 * 64;
            for (unsigned w = 0; w < 64; w++) {
                unsigned code = w0 + w < cols ? (unsigned)(t[w0 + w] + 1) : 1u;
                out[base + 2 * (w % 8) + w / 32] |= (uint8_t)(code << (2 * ((w / 8) % 4)));
            }
        }
        break;
    case TL_FORMAT_TQ1:
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
        break;
    case TL_FORMAT_BITPLANE: {
        uint8_t *pos = out, *neg = out + rb / 2;
        for (size_t c = 0; c < cols; c++) {
            if (t[c] > 0) pos[c / 8] |= (uint8_t)(1u << (c % 8));
            if (t[c] < 0) neg[c / 8] |= (uint8_t)(1u << (c % 8));
        }
        break;
    }
    }
}

/* Decode a row into cols trits; returns nonzero when the bytes are not valid (including
 * padding that is not a zero trit). Decoding and validating are one pass so that nothing
 * invalid is ever decoded silently. */
static int tl__unpack_row(tl_format f, const uint8_t *in, size_t cols, size_t rb, int8_t *t) {
    int bad = 0;
    switch (f) {
    case TL_FORMAT_I2:
        for (size_t base = 0; base < rb; base += 16) {
            size_t w0 = base / 16 * 64;
            for (unsigned w = 0; w < 64; w++) {
                unsigned code = (in[base + 2 * (w % 8) + w / 32] >> (2 * ((w / 8) % 4))) & 3u;
                if (w0 + w < cols) {
                    bad |= code == 3;
                    t[w0 + w] = (int8_t)((int)code - 1);
                } else {
                    bad |= code != 1;
                }
            }
        }
        break;
    case TL_FORMAT_TQ1:
        for (size_t base = 0; base < rb; base += 16) {
            size_t w0 = base / 16 * 80;
            for (unsigned j = 0; j < 16; j++) {
                uint8_t q = in[base + j];
                bad |= !tl__tq1_valid(q);
                for (unsigned k = 0; k < 5; k++) {
                    size_t i = w0 + 16 * k + j;
                    unsigned c = tl__tq1_digit(q, (int)k);
                    if (i < cols)
                        t[i] = (int8_t)((int)c - 1);
                    else
                        bad |= c != 1;
                }
            }
        }
        break;
    case TL_FORMAT_BITPLANE: {
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
        break;
    }
    }
    return bad;
}

/* ---------------------------------------------------------------------------
 * Whole matrices
 * ------------------------------------------------------------------------- */

static tl_status tl__check_trits(const int8_t *t, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (t[i] < -1 || t[i] > 1) return TL_ERR_TRIT;
    return TL_OK;
}

tl_status tl_pack(tl_format f, const int8_t *trits, size_t rows, size_t cols, uint8_t *out,
                  size_t out_bytes) {
    if (!trits || !out) return TL_ERR_NULL;
    size_t bytes, rb = 0;
    tl_status s = tl_format_bytes(f, rows, cols, &bytes);
    if (s) return s;
    if (out_bytes != bytes) return TL_ERR_SIZE;
    if ((s = tl__check_trits(trits, rows * cols))) return s;
    tl_format_row_bytes(f, cols, &rb);
    for (size_t r = 0; r < rows; r++) tl__pack_row(f, trits + r * cols, cols, out + r * rb, rb);
    return TL_OK;
}

tl_status tl_unpack(tl_format f, const uint8_t *in, size_t in_bytes, size_t rows, size_t cols,
                    int8_t *trits) {
    if (!trits || !in) return TL_ERR_NULL;
    size_t bytes, rb = 0;
    tl_status s = tl_format_bytes(f, rows, cols, &bytes);
    if (s) return s;
    if (in_bytes != bytes) return TL_ERR_SIZE;
    tl_format_row_bytes(f, cols, &rb);
    for (size_t r = 0; r < rows; r++)
        if (tl__unpack_row(f, in + r * rb, cols, rb, trits + r * cols)) return TL_ERR_FORMAT;
    return TL_OK;
}

/* Validate without keeping the trits (one row of scratch). */
tl_status tl__validate_packed(tl_format f, const uint8_t *in, size_t rows, size_t cols) {
    size_t rb;
    tl_status s = tl_format_row_bytes(f, cols, &rb);
    if (s) return s;
    int8_t *row = tl__malloc(cols);
    if (!row) return TL_ERR_NO_MEMORY;
    for (size_t r = 0; r < rows && !s; r++)
        if (tl__unpack_row(f, in + r * rb, cols, rb, row)) s = TL_ERR_FORMAT;
    tl__free(row);
    return s;
}

void tl__pack_rows(tl_format f, const int8_t *trits, size_t rows, size_t cols, uint8_t *out) {
    size_t rb = 0;
    tl_format_row_bytes(f, cols, &rb);
    for (size_t r = 0; r < rows; r++) tl__pack_row(f, trits + r * cols, cols, out + r * rb, rb);
}
