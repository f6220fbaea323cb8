/* fuzz_pack.c — libFuzzer target for the packed ternary formats (src/formats.c, src/pack.c, src/matrix.c).
 *
 * Each input is decoded deterministically into a case: a 5-byte header (format, rows <= 64,
 * cols <= 600, flags), then a body. Bytes past the end of the input continue as a xorshift
 * stream seeded by the input's hash, so short inputs still give whole matrices.
 *
 * (a) Round trip: the body's bytes, each mod 3 - 1, are a rows x cols trit matrix. tl_pack must
 *     give exactly the bytes of an encoder written here from docs/FORMATS.md (not from pack.c:
 *     i2 through its 16-bit lanes, tq1 by ceil(v * 256 / 243), bitplane by planes), tl_unpack
 *     must give the trits back, wrong sizes are SIZE, a trit outside -1..1 is TRIT, an unknown
 *     format is FORMAT everywhere. tl_matrix_from_trits holds the same bytes (tl_matrix_packed),
 *     its scales, and unpacks to the trits. Then the matrix is made again with one allocation
 *     failing (which one depends on the input): NO_MEMORY or OK with the same bytes.
 * (b) Arbitrary bytes: the body itself, as packed bytes of rows = len / row_bytes rows (so a
 *     length that is a whole number of rows is common): tl_unpack and tl_matrix_from_packed
 *     return SIZE when the length does not fit, else OK or FORMAT exactly as a decoder written
 *     here says (every code a trit, padding zero, tq1 bytes among the 243 encodings, planes
 *     disjoint), with the same trits; and when OK, tl_pack of those trits reproduces the bytes
 *     (the formats are canonical). The same for a copy of (a)'s packed bytes with a few bytes
 *     changed, which lands near valid strings far more often than random bytes do.
 * After every step nothing is held (tl_mem_live_bytes() == 0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"



static void held_nothing(void) { REQUIRE(tl_mem_live_bytes() == 0 && tl_mem_live_blocks() == 0); }

/* ---------------------------------------------------------------------------
 * The formats, written from docs/FORMATS.md
 * ------------------------------------------------------------------------- */

static size_t model_row_bytes(tl_format f, size_t cols) {
    switch (f) {
    case TL_FORMAT_I2:
        return (cols + 63) / 64 * 16;
    case TL_FORMAT_TQ1:
        return (cols + 79) / 80 * 16;
    case TL_FORMAT_BITPLANE:
        return (cols + 127) / 128 * 32;
    }
    return 0;
}

/* tq1: the byte of each v in 0..242, and the inverse (v + 1, 0 for the 13 invalid bytes). */
static uint8_t tq1_byte[243], tq1_value[256];
static void tq1_tables(void) {
    static int done;
    if (done) return;
    for (unsigned v = 0; v < 243; v++) {
        unsigned q = (v * 256 + 242) / 243; /* ceil(v * 256 / 243) */
        REQUIRE(q < 256 && tq1_value[q] == 0);
        tq1_byte[v] = (uint8_t)q, tq1_value[q] = (uint8_t)(v + 1);
    }
    done = 1;
}

/* i2 weight w of a block (0..63): 16-bit lane w % 8, bits 2 * (w / 8); the lane is bytes 2j, 2j + 1. */
static void i2_where(unsigned w, unsigned *byte, unsigned *shift) {
    unsigned lane = w % 8, bit = 2 * (w / 8);
    *byte = 2 * lane + bit / 8, *shift = bit % 8;
}

/* One row of cols trits into rb bytes (padding encodes zero trits). */
static void model_pack_row(tl_format f, const int8_t *t, size_t cols, uint8_t *out, size_t rb) {
    memset(out, 0, rb);
    if (f == TL_FORMAT_I2) {
        for (size_t w = 0; w < rb * 4; w++) {
            unsigned byte, shift, code = w < cols ? (unsigned)(t[w] + 1) : 1u;
            i2_where((unsigned)(w % 64), &byte, &shift);
            out[w / 64 * 16 + byte] |= (uint8_t)(code << shift);
        }
    } else if (f == TL_FORMAT_TQ1) {
        for (size_t blk = 0; blk < rb / 16; blk++)
            for (unsigned j = 0; j < 16; j++) {
                unsigned v = 0;
                for (unsigned d = 0; d < 5; d++) { /* digit 0 most significant: weight j + 16 d */
                    size_t w = blk * 80 + j + 16 * d;
                    v = v * 3 + (w < cols ? (unsigned)(t[w] + 1) : 1u);
                }
                out[blk * 16 + j] = tq1_byte[v];
            }
    } else {
        size_t plane = rb / 2;
        for (size_t c = 0; c < cols; c++) {
            if (t[c] == 1) out[c / 8] |= (uint8_t)(1u << (c % 8));
            if (t[c] == -1) out[plane + c / 8] |= (uint8_t)(1u << (c % 8));
        }
    }
}

/* Decode one row; 1 when valid (every weight a trit, padding zero, tq1 bytes valid, planes disjoint). */
static int model_unpack_row(tl_format f, const uint8_t *in, size_t cols, size_t rb, int8_t *t) {
    int ok = 1;
    if (f == TL_FORMAT_I2) {
        for (size_t w = 0; w < rb * 4; w++) {
            unsigned byte, shift;
            i2_where((unsigned)(w % 64), &byte, &shift);
            unsigned code = in[w / 64 * 16 + byte] >> shift & 3u;
            if (code == 3) ok = 0;
            if (w < cols)
                t[w] = (int8_t)((int)code - 1);
            else if (code != 1)
                ok = 0;
        }
    } else if (f == TL_FORMAT_TQ1) {
        for (size_t blk = 0; blk < rb / 16; blk++)
            for (unsigned j = 0; j < 16; j++) {
                unsigned v1 = tq1_value[in[blk * 16 + j]];
                if (!v1) {
                    ok = 0;
                    continue;
                }
                unsigned v = v1 - 1;
                for (int d = 4; d >= 0; d--, v /= 3) {
                    size_t w = blk * 80 + j + 16 * (size_t)d;
                    if (w < cols)
                        t[w] = (int8_t)((int)(v % 3) - 1);
                    else if (v % 3 != 1)
                        ok = 0;
                }
            }
    } else {
        size_t plane = rb / 2;
        for (size_t c = 0; c < plane * 8; c++) {
            int p = in[c / 8] >> (c % 8) & 1, n = in[plane + c / 8] >> (c % 8) & 1;
            if (p && n) ok = 0;
            if (c < cols)
                t[c] = (int8_t)(p - n);
            else if (p || n)
                ok = 0;
        }
    }
    return ok;
}

/* ---------------------------------------------------------------------------
 * (b): bytes that may or may not be a valid packing
 * ------------------------------------------------------------------------- */


/* m's packed bytes (tl_matrix_packed) equal want's len bytes */
static int packed_is(const tl_matrix *m, const uint8_t *want, size_t len) {
    uint8_t *b = malloc(len ? len : 1);
    int ok = b && tl_matrix_packed(m, b, len) == TL_OK && memcmp(b, want, len) == 0;
    free(b);
    return ok;
}

static void check_bytes(tl_format f, int known, const uint8_t *in, size_t len, size_t rows, size_t cols,
                        uint32_t h) {
    size_t rb = known ? model_row_bytes(f, cols) : 0, n = rows * cols;
    int8_t *t = malloc(n), *want = malloc(n);
    tl_status expect = !known ? TL_ERR_FORMAT : len != rows * rb ? TL_ERR_SIZE : TL_OK;
    if (expect == TL_OK)
        for (size_t r = 0; r < rows; r++)
            if (!model_unpack_row(f, in + r * rb, cols, rb, want + r * cols)) expect = TL_ERR_FORMAT;
    tl_status s = tl_unpack(f, in, len, rows, cols, t);
    REQUIRE(s == expect);
    if (s == TL_OK) {
        REQUIRE(memcmp(t, want, n) == 0);
        uint8_t *again = malloc(len);
        REQUIRE(tl_pack(f, t, rows, cols, again, len) == TL_OK);
        REQUIRE(memcmp(again, in, len) == 0); /* one valid byte string per matrix */
        free(again);
    }
    held_nothing();

    float scale = -0.75f;
    tl_matrix *m = NULL;
    s = tl_matrix_from_packed(f, in, len, rows, cols, &scale, 1, &m);
    REQUIRE(s == expect && (s == TL_OK) == (m != NULL));
    if (m) {
        REQUIRE(tl_matrix_format(m) == f && tl_matrix_rows(m) == rows && tl_matrix_cols(m) == cols);
        REQUIRE(tl_matrix_data_bytes(m) == len && packed_is(m, in, len));
        for (size_t r = 0; r < rows; r++) REQUIRE(tl_matrix_scales(m)[r] == scale);
        memset(t, 7, n);
        REQUIRE(tl_matrix_unpack(m, t, n) == TL_OK && memcmp(t, want, n) == 0);
        tl_matrix_free(m);
    }
    held_nothing();

    /* the same with one allocation failing: matrix, bytes, scales, the validator's row */
    m = NULL;
    tl_mem_fail_after(1 + h % 5);
    tl_status s2 = tl_matrix_from_packed(f, in, len, rows, cols, &scale, 1, &m);
    tl_mem_fail_after(0);
    REQUIRE(s2 == expect || s2 == TL_ERR_NO_MEMORY);
    REQUIRE((s2 == TL_OK) == (m != NULL));
    if (m) REQUIRE(packed_is(m, in, len));
    tl_matrix_free(m);
    held_nothing();
    free(t), free(want);
}

/* ---------------------------------------------------------------------------
 * The case
 * ------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tq1_tables();
    held_nothing();
    uint32_t h = fnv(data, size);
    stream in = {data, size, 0, h | 1u};
    uint8_t fsel = next(&in), rsel = next(&in), c0 = next(&in), c1 = next(&in), flags = next(&in);
    /* 250..255: a format that does not exist */
    static const int bad_formats[6] = {0, 4, 5, 7, 255, -1};
    tl_format f = fsel < 250 ? (tl_format)(1 + fsel % 3) : (tl_format)bad_formats[fsel - 250];
    int known = fsel < 250;
    /* rows: 1..4 mostly (rows are packed alike; fewer keep executions fast), 1..64 for rsel >= 192 */
    size_t rows = 1 + rsel % (rsel >= 192 ? 64 : 4), cols = 1 + (size_t)(c0 | c1 << 8) % 600, n = rows * cols;
    const uint8_t *body = data + (size < 5 ? size : 5);
    size_t body_len = size < 5 ? 0 : size - 5;

    /* (a) trits -> bytes -> trits */
    int8_t *t = malloc(n), *u = malloc(n);
    for (size_t i = 0; i < n; i++) t[i] = (int8_t)(next(&in) % 3 - 1);
    size_t rb = known ? model_row_bytes(f, cols) : 16, bytes = 0;
    tl_status s = tl_format_bytes(f, rows, cols, &bytes);
    REQUIRE(s == (known ? TL_OK : TL_ERR_FORMAT));
    if (known) {
        size_t rb2 = 0;
        REQUIRE(bytes == rows * rb && tl_format_row_bytes(f, cols, &rb2) == TL_OK && rb2 == rb);
    } else {
        bytes = rows * rb;
    }
    uint8_t *packed = malloc(bytes + 1), *want = malloc(bytes);
    s = tl_pack(f, t, rows, cols, packed, bytes);
    REQUIRE(s == (known ? TL_OK : TL_ERR_FORMAT));
    if (known) {
        for (size_t r = 0; r < rows; r++) model_pack_row(f, t + r * cols, cols, want + r * rb, rb);
        REQUIRE(memcmp(packed, want, bytes) == 0);
        memset(u, 7, n);
        REQUIRE(tl_unpack(f, packed, bytes, rows, cols, u) == TL_OK && memcmp(u, t, n) == 0);
        REQUIRE(tl_pack(f, t, rows, cols, packed, bytes + 1) == TL_ERR_SIZE);
        REQUIRE(tl_pack(f, t, rows, cols, packed, bytes - 1) == TL_ERR_SIZE);
        REQUIRE(tl_unpack(f, packed, bytes - 1, rows, cols, u) == TL_ERR_SIZE);
        /* a value that is no trit, anywhere */
        size_t at = next16(&in) % n;
        int8_t keep = t[at], bad = (int8_t)(next(&in) | 2); /* never -1, 0 or 1 */
        t[at] = bad == -1 ? 2 : bad;
        REQUIRE(tl_pack(f, t, rows, cols, packed, bytes) == TL_ERR_TRIT);
        t[at] = keep;
        REQUIRE(tl_pack(f, t, rows, cols, packed, bytes) == TL_OK && memcmp(packed, want, bytes) == 0);
    } else {
        REQUIRE(tl_unpack(f, packed, bytes, rows, cols, u) == TL_ERR_FORMAT);
    }
    held_nothing();

    /* the matrix object: per-tensor or per-row scales (finite, any sign; or a NaN) */
    size_t nscales = flags & 1 ? rows : 1;
    float *scales = malloc(nscales * sizeof *scales);
    for (size_t i = 0; i < nscales; i++) {
        uint32_t b = next32(&in);
        if ((b & TL__INF_BITS) == TL__INF_BITS) b &= ~0x40000000u; /* keep it finite */
        scales[i] = tl__u2f(b);
    }
    int nan_scale = (flags & 0x0E) == 0x0E;
    if (nan_scale) scales[nscales - 1] = tl__u2f(0x7FC00000u);
    tl_status expect = !known ? TL_ERR_FORMAT : nan_scale ? TL_ERR_NON_FINITE : TL_OK;
    tl_matrix *m = NULL;
    s = tl_matrix_from_trits(f, t, rows, cols, scales, nscales, &m);
    REQUIRE(s == expect && (s == TL_OK) == (m != NULL));
    if (m) {
        REQUIRE(tl_matrix_format(m) == f && tl_matrix_rows(m) == rows && tl_matrix_cols(m) == cols);
        REQUIRE(tl_matrix_data_bytes(m) == bytes && packed_is(m, want, bytes));
        for (size_t r = 0; r < rows; r++)
            REQUIRE(tl__f2u(tl_matrix_scales(m)[r]) == tl__f2u(scales[nscales == 1 ? 0 : r]));
        memset(u, 7, n);
        REQUIRE(tl_matrix_unpack(m, u, n) == TL_OK && memcmp(u, t, n) == 0);
        REQUIRE(tl_matrix_unpack(m, u, n + 1) == TL_ERR_SIZE);
        tl_matrix_free(m);
    }
    held_nothing();

    /* the same with one allocation failing (the matrix, its bytes or its scales; 4: none fails) */
    m = NULL;
    tl_mem_fail_after(1 + h % 4);
    tl_status s2 = tl_matrix_from_trits(f, t, rows, cols, scales, nscales, &m);
    tl_mem_fail_after(0);
    REQUIRE(s2 == expect || s2 == TL_ERR_NO_MEMORY);
    REQUIRE((s2 == TL_OK) == (m != NULL));
    if (m) REQUIRE(packed_is(m, want, bytes));
    tl_matrix_free(m);
    held_nothing();

    /* (b) the body as packed bytes: rows from its length (one more when flags bit 4 says so) */
    size_t rows_b = body_len / rb;
    if (rows_b == 0 || rows_b > 256 || (flags & 0x10)) rows_b = rows_b % 256 + 1;
    check_bytes(f, known, body_len ? body : packed, body_len, rows_b, cols, h);

    /* ... and (a)'s valid bytes with a few bytes changed */
    if (known) {
        unsigned k = next(&in) % 4;
        for (unsigned j = 0; j < k; j++) {
            size_t at = next16(&in) % bytes;
            packed[at] = next(&in);
        }
        check_bytes(f, known, packed, bytes, rows, cols, h >> 8);
    }
    free(t), free(u), free(packed), free(want), free(scales);
    return 0;
}
