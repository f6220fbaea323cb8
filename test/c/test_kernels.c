/* test_kernels.c — packed formats and kernels against the scalar reference, bit for bit:
 * pack/unpack round trips for every format and awkward shape, rejection of invalid bytes,
 * and every kernel (binary, sparse, int8, float) as GEMV and GEMM on random matrices.
 * Built natively (plain, ASan+UBSan) and to wasm (SIMD128 and scalar). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"

static uint32_t rng = 0x12345678u;
static uint32_t rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
    return rng;
}

/* Every format the library lists (tl_format_count / tl_format_at), filled in main. */
static tl_format formats[16];
static size_t nformats;
static const char *fname(tl_format f) { return tl_format_name(f); }

static void test_format_table(void) {
    nformats = tl_format_count();
    CHECK(nformats == 3 && nformats <= sizeof formats / sizeof *formats, "3 formats listed, got %zu", nformats);
    static const struct {
        const char *name;
        tl_format f;
    } known[] = {{"i2", TL_FORMAT_I2}, {"tq1", TL_FORMAT_TQ1}, {"bitplane", TL_FORMAT_BITPLANE}};
    for (size_t i = 0; i < nformats && i < 16; i++) {
        formats[i] = tl_format_at(i);
        const char *name = tl_format_name(formats[i]);
        tl_format back = (tl_format)0;
        CHECK(name && tl_format_from_name(name, strlen(name), &back) == TL_OK && back == formats[i],
              "format %zu: name and value round trip", i);
        CHECK(i < 3 && formats[i] == known[i].f && name && strcmp(name, known[i].name) == 0,
              "format %zu is %s", i, i < 3 ? known[i].name : "?");
        for (size_t j = 0; j < i; j++) CHECK(formats[j] != formats[i], "formats %zu and %zu differ", j, i);
    }
    CHECK(tl_format_at(nformats) == (tl_format)0 && tl_format_at((size_t)-1) == (tl_format)0,
          "tl_format_at past the end gives 0");
    CHECK(tl_format_name((tl_format)0) == NULL && tl_format_name((tl_format)9) == NULL &&
              tl_format_name((tl_format)-1) == NULL,
          "tl_format_name of an unknown value is NULL");
    tl_format f = TL_FORMAT_TQ1;
    /* not NUL-terminated: the length decides */
    CHECK(tl_format_from_name("i2x", 2, &f) == TL_OK && f == TL_FORMAT_I2, "\"i2\" read from \"i2x\" by length");
    CHECK(tl_format_from_name("bitplanes", 9, &f) == TL_ERR_FORMAT && f == TL_FORMAT_I2, "\"bitplanes\" unknown");
    CHECK(tl_format_from_name("I2", 2, &f) == TL_ERR_FORMAT, "names are case-sensitive");
    CHECK(tl_format_from_name("tq", 2, &f) == TL_ERR_FORMAT, "a prefix is no name");
    CHECK(tl_format_from_name("", 0, &f) == TL_ERR_FORMAT && tl_format_from_name(NULL, 0, &f) == TL_ERR_FORMAT,
          "the empty name is unknown");
    CHECK(tl_format_from_name(NULL, 2, &f) == TL_ERR_NULL && tl_format_from_name("i2", 2, NULL) == TL_ERR_NULL,
          "NULL name or out");
    /* the table's geometry is what docs/FORMATS.md states */
    size_t rb = 0;
    CHECK(tl_format_row_bytes(TL_FORMAT_I2, 65, &rb) == TL_OK && rb == 32, "i2: 65 weights in 2 blocks of 16");
    CHECK(tl_format_row_bytes(TL_FORMAT_TQ1, 81, &rb) == TL_OK && rb == 32, "tq1: 81 weights in 2 blocks of 16");
    CHECK(tl_format_row_bytes(TL_FORMAT_BITPLANE, 129, &rb) == TL_OK && rb == 64,
          "bitplane: 129 weights in 2 blocks of 32");
    CHECK(tl_format_row_bytes((tl_format)9, 10, &rb) == TL_ERR_FORMAT, "row bytes of an unknown format");
}

/* Random trits with a given share of zeros (percent). */
static void random_trits(int8_t *t, size_t n, unsigned zero_pct) {
    for (size_t i = 0; i < n; i++) t[i] = rnd() % 100 < zero_pct ? 0 : (rnd() & 1) ? 1 : -1;
}

static void test_tq1_bytes(void) {
    /* All 243 digit combinations survive encode -> decode, and exactly 243 bytes are valid. */
    int ok = 1, valid = 0;
    for (unsigned v = 0; v < 243; v++) {
        uint8_t c[5] = {(uint8_t)(v / 81), (uint8_t)(v / 27 % 3), (uint8_t)(v / 9 % 3), (uint8_t)(v / 3 % 3),
                        (uint8_t)(v % 3)};
        uint8_t q = tl__tq1_encode(c);
        static const unsigned p3[5] = {1, 3, 9, 27, 81};
        for (int k = 0; k < 5; k++) ok &= ((((q * p3[k]) & 255u) * 3u) >> 8) == c[k];
    }
    CHECK(ok, "tq1: every 5-trit group decodes by multiply and shift");
    for (unsigned q = 0; q < 256; q++) {
        uint8_t byte = (uint8_t)q;
        int8_t t[5];
        /* a 1 x 5 matrix whose other 75 padding weights are the zero trit are only valid for some
         * bytes; test validity of the byte itself through a 1 x 80 matrix of 16 copies */
        uint8_t block[16];
        memset(block, byte, 16);
        int8_t t80[80];
        valid += tl_unpack(TL_FORMAT_TQ1, block, 16, 1, 80, t80) == TL_OK;
        (void)t;
    }
    CHECK(valid == 243, "tq1: exactly 243 valid bytes, got %d", valid);
}

static void test_roundtrip(void) {
    static const size_t shapes[][2] = {{1, 1},    {1, 5},    {1, 63},   {1, 64},  {1, 65},  {2, 79},
                                       {3, 80},   {3, 81},   {5, 127},  {4, 128}, {4, 129}, {7, 3},
                                       {1, 1000}, {1000, 1}, {17, 333}, {64, 64}, {33, 200}};
    for (size_t f = 0; f < nformats; f++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            size_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols, bytes;
            int8_t *t = malloc(n), *u = malloc(n);
            random_trits(t, n, 30);
            CHECK(tl_format_bytes(formats[f], rows, cols, &bytes) == TL_OK, "size");
            uint8_t *p = malloc(bytes);
            CHECK(tl_pack(formats[f], t, rows, cols, p, bytes) == TL_OK, "pack %s %zux%zu", fname(formats[f]),
                  rows, cols);
            memset(u, 7, n);
            CHECK(tl_unpack(formats[f], p, bytes, rows, cols, u) == TL_OK && memcmp(t, u, n) == 0,
                  "unpack(pack(t)) == t for %s %zux%zu", fname(formats[f]), rows, cols);
            /* matrix objects built three ways hold the same bytes */
            float scale = 0.5f;
            tl_matrix *a = NULL, *b = NULL;
            CHECK(tl_matrix_from_trits(formats[f], t, rows, cols, &scale, 1, &a) == TL_OK, "from trits");
            CHECK(tl_matrix_from_packed(formats[f], p, bytes, rows, cols, &scale, 1, &b) == TL_OK,
                  "from packed");
            uint8_t *pa = malloc(bytes + 1), *pb = malloc(bytes + 1);
            CHECK(a && b && tl_matrix_data_bytes(a) == bytes && tl_matrix_packed(a, pa, bytes) == TL_OK &&
                      tl_matrix_packed(b, pb, bytes) == TL_OK && memcmp(pa, p, bytes) == 0 &&
                      memcmp(pb, p, bytes) == 0,
                  "same bytes");
            CHECK(a && tl_matrix_packed(a, pa, bytes + 1) == TL_ERR_SIZE && tl_matrix_packed(NULL, pa, bytes) == TL_ERR_NULL &&
                      tl_matrix_packed(a, NULL, bytes) == TL_ERR_NULL,
                  "tl_matrix_packed refuses a wrong size and NULLs");
            free(pa), free(pb);
            memset(u, 7, n);
            CHECK(a && tl_matrix_unpack(a, u, n) == TL_OK && memcmp(t, u, n) == 0, "matrix unpack");
            /* corrupting a byte is caught (or decodes to other valid trits, never silently wrong size) */
            tl_matrix_free(a), tl_matrix_free(b);
            free(t), free(u), free(p);
        }
    /* bits per weight at a block-aligned width */
    size_t b1, b2, b3;
    tl_format_bytes(TL_FORMAT_I2, 10, 640, &b1), tl_format_bytes(TL_FORMAT_TQ1, 10, 640, &b2);
    tl_format_bytes(TL_FORMAT_BITPLANE, 10, 640, &b3);
    CHECK(b1 * 8 == 6400 * 2 && b2 * 8 == 6400 * 8 / 5 && b3 * 8 == 6400 * 2, "2, 1.6 and 2 bits per weight");
}

static void test_invalid(void) {
    int8_t t[200];
    uint8_t p[64];
    size_t bytes;
    /* i2: code 3 */
    tl_format_bytes(TL_FORMAT_I2, 1, 64, &bytes);
    memset(p, 0x55, bytes);
    CHECK(tl_unpack(TL_FORMAT_I2, p, bytes, 1, 64, t) == TL_OK, "all-zero i2 row");
    p[3] = 0x57;
    CHECK(tl_unpack(TL_FORMAT_I2, p, bytes, 1, 64, t) == TL_ERR_FORMAT, "i2 code 3 rejected");
    /* i2: nonzero padding (cols 10: weight 60 is padding) */
    memset(p, 0x55, bytes);
    CHECK(tl_unpack(TL_FORMAT_I2, p, bytes, 1, 10, t) == TL_OK, "i2 zero padding accepted");
    p[2 * (60 % 8) + 60 / 32] ^= (uint8_t)(3u << (2 * ((60 / 8) % 4))); /* code 1 -> 2 */
    CHECK(tl_unpack(TL_FORMAT_I2, p, bytes, 1, 10, t) == TL_ERR_FORMAT, "i2 nonzero padding rejected");
    /* tq1: an invalid byte */
    tl_format_bytes(TL_FORMAT_TQ1, 1, 80, &bytes);
    int8_t z[80] = {0};
    tl_pack(TL_FORMAT_TQ1, z, 1, 80, p, bytes);
    CHECK(tl_unpack(TL_FORMAT_TQ1, p, bytes, 1, 80, t) == TL_OK, "tq1 zeros");
    int found = 0;
    for (unsigned q = 0; q < 256 && !found; q++) {
        p[5] = (uint8_t)q;
        found = tl_unpack(TL_FORMAT_TQ1, p, bytes, 1, 80, t) == TL_ERR_FORMAT;
    }
    CHECK(found, "some tq1 byte is rejected");
    /* bitplane: overlap, and padding bits */
    tl_format_bytes(TL_FORMAT_BITPLANE, 1, 100, &bytes);
    memset(p, 0, bytes);
    p[0] = 1, p[16] = 1;
    CHECK(tl_unpack(TL_FORMAT_BITPLANE, p, bytes, 1, 100, t) == TL_ERR_FORMAT, "bitplane overlap rejected");
    memset(p, 0, bytes);
    p[13] = 0x80; /* bit 111 >= 100 */
    CHECK(tl_unpack(TL_FORMAT_BITPLANE, p, bytes, 1, 100, t) == TL_ERR_FORMAT, "bitplane padding rejected");
    /* sizes, trits, formats */
    CHECK(tl_unpack(TL_FORMAT_BITPLANE, p, bytes - 1, 1, 100, t) == TL_ERR_SIZE, "wrong byte count");
    t[3] = 2;
    CHECK(tl_pack(TL_FORMAT_I2, t, 1, 10, p, 16) == TL_ERR_TRIT, "trit 2 rejected");
    CHECK(tl_pack((tl_format)9, t, 1, 10, p, 16) == TL_ERR_FORMAT, "unknown format");
    CHECK(tl_format_bytes(TL_FORMAT_I2, 0, 10, &bytes) == TL_ERR_EMPTY, "no rows");
    CHECK(tl_format_bytes(TL_FORMAT_I2, (size_t)1 << 20, (size_t)1 << 20, &bytes) == TL_ERR_OVERFLOW,
          "overflow");
    float nan = NAN, one = 1;
    tl_matrix *m = NULL;
    memset(t, 0, sizeof t);
    CHECK(tl_matrix_from_trits(TL_FORMAT_I2, t, 2, 10, &nan, 1, &m) == TL_ERR_NON_FINITE && !m, "NaN scale");
    CHECK(tl_matrix_from_trits(TL_FORMAT_I2, t, 2, 10, &one, 3, &m) == TL_ERR_SIZE, "3 scales for 2 rows");
}

/* Float outputs against the reference's: adds and subtracts in another order, so within 1e-5
 * relative of the largest partial magnitude (sum of |x| over the row) */
static int float_close(const float *out, const float *outr, const float *xf, const float *sc, size_t rows,
                       size_t cols, size_t batch) {
    int close = 1;
    for (size_t b = 0; b < batch; b++) {
        double mag = 0;
        for (size_t c = 0; c < cols; c++) mag += fabs(xf[b * cols + c]);
        for (size_t r = 0; r < rows; r++)
            close &= fabs((double)out[b * rows + r] - outr[b * rows + r]) <= 1e-5 * mag * sc[r] + 1e-30;
    }
    return close;
}

/* Every kernel against the reference on one random matrix. */
static void check_kernels(tl_format f, size_t rows, size_t cols, size_t batch, int per_row) {
    size_t n = rows * cols;
    float *w = malloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++) w[i] = (float)((int32_t)rnd() / 2147483648.0);
    tl_matrix *m = NULL;
    CHECK(tl_matrix_quantize(f, w, rows, cols, per_row, &m) == TL_OK, "quantize %s", fname(f));
    if (!m) return;
    int8_t *t = malloc(n);
    tl_matrix_unpack(m, t, n);
    /* the fused quantize-and-pack equals quantize then pack */
    int8_t *t2 = malloc(n);
    float *al = malloc(rows * sizeof *al), a1;
    if (per_row) {
        int64_t shape[2] = {(int64_t)rows, (int64_t)cols};
        tl_ternary_signs_per_row(w, n, shape, 2, t2, al);
    } else {
        tl_ternary_signs(w, n, t2, &a1);
        for (size_t r = 0; r < rows; r++) al[r] = a1;
    }
    CHECK(memcmp(t, t2, n) == 0 && memcmp(al, tl_matrix_scales(m), rows * 4) == 0, "fused quantize-pack %s",
          fname(f));
    const float *sc = tl_matrix_scales(m);
    size_t nout = batch * rows;
    int32_t *acc = malloc(nout * 4), *accr = malloc(nout * 4);
    float *out = malloc(nout * 4), *outr = malloc(nout * 4);

    /* binary */
    size_t xb = tl_binary_row_bytes(cols);
    uint8_t *xbits = malloc(batch * xb);
    for (size_t i = 0; i < batch * xb; i++) xbits[i] = (uint8_t)rnd(); /* bits past cols are ignored */
    uint8_t *xclean = malloc(batch * xb);
    memcpy(xclean, xbits, batch * xb);
    if (cols % 8)
        for (size_t b = 0; b < batch; b++) xclean[b * xb + xb - 1] &= (uint8_t)((1u << (cols % 8)) - 1);
    tl_ref_matmul_binary(t, sc, rows, cols, xclean, batch, accr, outr);
    CHECK(tl_matmul_binary(m, xbits, batch * xb, batch, acc, out, nout) == TL_OK &&
              memcmp(acc, accr, nout * 4) == 0 && memcmp(out, outr, nout * 4) == 0,
          "binary %s %zux%zu batch %zu", fname(f), rows, cols, batch);

    /* sparse, about 2% dense, one vector empty */
    uint32_t *offs = malloc((batch + 1) * 4), *idx = malloc(batch * cols * 4);
    size_t nidx = 0;
    offs[0] = 0;
    for (size_t b = 0; b < batch; b++) {
        if (b != 1)
            for (size_t c = 0; c < cols; c++)
                if (rnd() % 50 == 0) idx[nidx++] = (uint32_t)c;
        if (b == 2 && cols > 3) idx[nidx++] = 3, idx[nidx++] = 3; /* a repeated index counts twice */
        offs[b + 1] = (uint32_t)nidx;
    }
    tl_ref_matmul_sparse(t, sc, rows, cols, idx, offs, batch, accr, outr);
    memset(acc, 0, nout * 4);
    CHECK(tl_matmul_sparse(m, idx, nidx, offs, batch, acc, out, nout) == TL_OK &&
              memcmp(acc, accr, nout * 4) == 0 && memcmp(out, outr, nout * 4) == 0,
          "sparse %s %zux%zu batch %zu", fname(f), rows, cols, batch);

    /* int8, through the activation quantizer, with -128 and 127 forced in */
    float *xf = malloc(batch * cols * 4), *xs = malloc(batch * 4), *xsr = malloc(batch * 4);
    int8_t *xq = malloc(batch * cols), *xqr = malloc(batch * cols);
    for (size_t i = 0; i < batch * cols; i++) xf[i] = (float)((int32_t)rnd() / 2147483648.0) * 3.0f;
    CHECK(tl_quantize_activations_i8(xf, batch * cols, batch, xq, xs) == TL_OK, "quantize activations");
    tl_ref_quantize_activations_i8(xf, cols, batch, xqr, xsr);
    CHECK(memcmp(xq, xqr, batch * cols) == 0 && memcmp(xs, xsr, batch * 4) == 0, "activation quantizer");
    xq[0] = -128, xq[batch * cols - 1] = 127;
    tl_ref_matmul_i8(t, sc, rows, cols, xq, batch, xs, accr, outr);
    CHECK(tl_matmul_i8(m, xq, batch * cols, batch, xs, acc, out, nout) == TL_OK &&
              memcmp(acc, accr, nout * 4) == 0 && memcmp(out, outr, nout * 4) == 0,
          "int8 %s %zux%zu batch %zu", fname(f), rows, cols, batch);

    /* float: adds and subtracts in another order than the reference: within 1e-5 relative of
     * the largest partial magnitude (sum of |x| over the row) */
    /* fused quantize + int8 equals the two calls, bit for bit (out only) */
    float *outf = malloc(nout * 4);
    xq[0] = xqr[0], xq[batch * cols - 1] = xqr[batch * cols - 1];
    CHECK(tl_matmul_i8(m, xq, batch * cols, batch, xs, NULL, out, nout) == TL_OK &&
              tl_matmul_f32_i8(m, xf, batch * cols, batch, outf, nout) == TL_OK && memcmp(out, outf, nout * 4) == 0,
          "f32_i8 %s %zux%zu batch %zu = quantize then int8", fname(f), rows, cols, batch);
    /* the internal entry points with one workspace kept across calls give the public outputs */
    {
        tl__ws ws = {NULL, 0};
        int same = 1;
        for (int rep = 0; rep < 2; rep++) {
            tl_matmul_i8(m, xq, batch * cols, batch, xs, NULL, out, nout);
            memset(outf, 0, nout * 4);
            same &= tl__matmul_f32_i8_ws(m, xf, batch, outf, &ws) == TL_OK && memcmp(out, outf, nout * 4) == 0;
            tl_matmul_f32(m, xf, batch * cols, batch, out, nout);
            memset(outf, 0, nout * 4);
            same &= tl__matmul_f32_ws(m, xf, batch, outf, &ws) == TL_OK && memcmp(out, outf, nout * 4) == 0;
            tl_matmul_i8(m, xq, batch * cols, batch, xs, acc, out, nout);
            memset(accr, 0, nout * 4);
            same &= tl__matmul_i8_ws(m, xq, batch, xs, accr, outf, &ws) == TL_OK &&
                    memcmp(acc, accr, nout * 4) == 0 && memcmp(out, outf, nout * 4) == 0;
            tl_matmul_binary(m, xbits, batch * xb, batch, acc, out, nout);
            same &= tl__matmul_binary_ws(m, xbits, batch, accr, outf, &ws) == TL_OK &&
                    memcmp(acc, accr, nout * 4) == 0 && memcmp(out, outf, nout * 4) == 0;
            /* the float kernel sums a vector the same way whatever the batch */
            if (batch > 1) {
                tl_matmul_f32(m, xf, batch * cols, batch, out, nout);
                for (size_t b = 0; b < batch; b++) {
                    same &= tl__matmul_f32_ws(m, xf + b * cols, 1, outf, &ws) == TL_OK &&
                            memcmp(out + b * rows, outf, rows * 4) == 0;
                }
            }
        }
        size_t cap = ws.cap;
        tl__matmul_f32_ws(m, xf, 1, outf, &ws);
        CHECK(same && ws.cap == cap, "ws kernels %s %zux%zu batch %zu: public outputs, no growth on repeat",
              fname(f), rows, cols, batch);
        tl__ws_free(&ws);
        tl__ws_free(&ws);
        CHECK(ws.p == NULL && ws.cap == 0, "ws freed twice");
    }
    free(outf);

    tl_ref_matmul_f32(t, sc, rows, cols, xf, batch, outr);
    CHECK(tl_matmul_f32(m, xf, batch * cols, batch, out, nout) == TL_OK, "float %s", fname(f));
    int close = float_close(out, outr, xf, sc, rows, cols, batch);
    CHECK(close, "float %s %zux%zu batch %zu within 1e-5", fname(f), rows, cols, batch);
    /* Threaded builds (test/c/run-wasi-mt.mjs): every product above was split over the threads
     * (main sets tl__par_min_work to 0), and the integer ones equal the reference; the float ones
     * are the same bits on one thread. */
    if (tl_threads() > 1) {
        uint32_t nth = tl_threads();
        float *o1 = malloc(nout * 4), *o2 = malloc(nout * 4), *o3 = malloc(nout * 4);
        tl_matmul_f32(m, xf, batch * cols, batch, out, nout);
        tl_matmul_f32_i8(m, xf, batch * cols, batch, o2, nout);
        tl_threads_set(1);
        tl_matmul_f32(m, xf, batch * cols, batch, o1, nout);
        tl_matmul_f32_i8(m, xf, batch * cols, batch, o3, nout);
        tl_threads_set(nth);
        CHECK(memcmp(out, o1, nout * 4) == 0 && memcmp(o2, o3, nout * 4) == 0,
              "float %s %zux%zu batch %zu: %u threads give the bits of one", fname(f), rows, cols, batch, (unsigned)nth);
        free(o1), free(o2), free(o3);
    }
    /* small integers times a power of two: every sum exact, so the reference's bits (the kernel's
     * fixed point holds such x exactly) */
    for (size_t i = 0; i < batch * cols; i++) xf[i] = (float)((int)(i * 37 % 255) - 127) * 0.125f;
    tl_ref_matmul_f32(t, sc, rows, cols, xf, batch, outr);
    CHECK(tl_matmul_f32(m, xf, batch * cols, batch, out, nout) == TL_OK && memcmp(out, outr, nout * 4) == 0,
          "float %s %zux%zu batch %zu: exact sums give the reference's bits", fname(f), rows, cols, batch);

    tl_matrix_free(m);
    free(w), free(t), free(t2), free(al), free(acc), free(accr), free(out), free(outr), free(xbits),
        free(xclean);
    free(offs), free(idx), free(xf), free(xs), free(xsr), free(xq), free(xqr);
}

static void test_kernels(void) {
    static const size_t shapes[][2] = {{1, 1},     {1, 7},    {3, 64},   {5, 65},  {2, 80},
                                       {9, 81},    {4, 128},  {67, 129}, {1, 300}, {130, 17},
                                       {64, 1000}, {65, 784}, {256, 256}, {7, 4200}};
    /* 5 and 8: the batched int8 tables' 8-vector pass, partly and wholly used; 20: more than one pass
     * of 16 vectors, 40: 32 then 8, 70: 64 then 6 (the float tables: 9 passes of 8); 4200 columns: the
     * int8 dot kernel's accumulators are flushed every 4096 */
    static const size_t batches[] = {1, 3, 5, 8, 11, 20, 40, 70};
    for (size_t f = 0; f < nformats; f++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (size_t b = 0; b < sizeof batches / sizeof *batches; b++)
                check_kernels(formats[f], shapes[s][0], shapes[s][1], batches[b], (int)(s % 2));
}

/* Vectors with zeros: a product of few vectors reads only the nonzero columns of the sparse ones
 * (the column-major copy). Every density on both sides of the thresholds, one to three vectors
 * (sparse and dense mixed), the int16 and int32 lanes' limits: the reference's bits for int8 and
 * binary, the row kernels' bits for float (the copy turned off), on any number of threads. */
/* mode: 0 random values; 1, 2: the extremes (127 and -128) times every trit +1 (1) or -1 (2), the
 * largest sums; 3: values of one magnitude per vector (1, 77, 127), random signs */
static void check_sparse(tl_format f, size_t rows, size_t cols, size_t batch, unsigned pct, int mode) {
    size_t n = rows * cols, nout = batch * rows;
    const int extreme = mode == 1 || mode == 2;
    int8_t *t = malloc(n);
    random_trits(t, n, 33);
    if (extreme) memset(t, mode == 1 ? 1 : -1, n);
    float *sc = malloc(rows * 4);
    for (size_t r = 0; r < rows; r++) sc[r] = 0.5f + (float)(r % 7) * 0.125f;
    tl_matrix *m = NULL;
    CHECK(tl_matrix_from_trits(f, t, rows, cols, sc, rows, &m) == TL_OK, "sparse: matrix %s", fname(f));
    if (!m) {
        free(t), free(sc);
        return;
    }
    int8_t *xq = malloc(batch * cols);
    float *xs = malloc(batch * 4), *xf = malloc(batch * cols * 4);
    for (size_t b = 0; b < batch; b++) {
        /* vector 1 of a batch is dense: the sparse ones go through the columns, it through the rows
         * (one magnitude: through the columns too) */
        unsigned p = b == 1 ? 100 : pct;
        xs[b] = 1.0f + (float)b;
        for (size_t c = 0; c < cols; c++) {
            size_t i = b * cols + c;
            int on = rnd() % 100 < p;
            xq[i] = !on ? 0 : extreme ? (int8_t)(b == 0 ? 127 : -128) : mode == 3 ? (int8_t)((rnd() % 2 ? 1 : -1) * (b == 0 ? 1 : b == 1 ? 77 : 127))
                                                                       : (int8_t)(rnd() % 255 - 127);
            if (on && !xq[i]) xq[i] = 1;
            xf[i] = !on ? 0.0f : extreme ? (b == 0 ? 0x1.fffffep0f : -0x1.fffffep0f) : (float)((int32_t)rnd() / 2147483648.0) * 5.0f;
        }
    }
    int32_t *acc = malloc(nout * 4), *accr = malloc(nout * 4), *acc8 = malloc(nout * 4);
    float *out = malloc(nout * 4), *outr = malloc(nout * 4), *o2 = malloc(nout * 4), *out8 = malloc(nout * 4);
    tl_ref_matmul_i8(t, sc, rows, cols, xq, batch, xs, acc8, out8);
    size_t live0 = tl_mem_live_bytes();
    CHECK(tl_matmul_i8(m, xq, batch * cols, batch, xs, acc, out, nout) == TL_OK &&
              memcmp(acc, acc8, nout * 4) == 0 && memcmp(out, out8, nout * 4) == 0,
          "sparse int8 %s %zux%zu batch %zu, %u%% nonzero%s", fname(f), rows, cols, batch, pct,
          mode == 1 ? ", extreme" : mode == 2 ? ", extreme, trits -1" : mode == 3 ? ", one magnitude" : "");
    /* the copy is built for a sparse enough vector (under half nonzero takes it in every build) and
     * counted; a dense one leaves it unbuilt */
    if (pct <= 30 && cols >= 100)
        CHECK(tl_mem_live_bytes() >= live0 + (rows + 63) / 64 * cols * 16, "sparse %s: the copy is counted", fname(f));
    if (pct >= 80 && cols >= 1000 && mode == 0) CHECK(tl_mem_live_bytes() == live0, "dense %s: no copy", fname(f));
    if (mode == 3 && cols >= 100)
        CHECK(tl_mem_live_bytes() >= live0 + (rows + 63) / 64 * cols * 16, "one magnitude %s, %u%%: the copy", fname(f), pct);
    /* binary: the nonzero values as ones */
    size_t xb = tl_binary_row_bytes(cols);
    uint8_t *bits = calloc(batch * xb, 1);
    for (size_t b = 0; b < batch; b++)
        for (size_t c = 0; c < cols; c++)
            if (xq[b * cols + c]) bits[b * xb + c / 8] |= (uint8_t)(1u << (c % 8));
    tl_ref_matmul_binary(t, sc, rows, cols, bits, batch, accr, outr);
    CHECK(tl_matmul_binary(m, bits, batch * xb, batch, acc, out, nout) == TL_OK &&
              memcmp(acc, accr, nout * 4) == 0 && memcmp(out, outr, nout * 4) == 0,
          "sparse binary %s %zux%zu batch %zu, %u%% nonzero", fname(f), rows, cols, batch, pct);
    /* float: the rows' bits (the copy off), and the reference's within 1e-5 */
    CHECK(tl_matmul_f32(m, xf, batch * cols, batch, out, nout) == TL_OK, "sparse float %s", fname(f));
    size_t live = tl_mem_live_bytes();
    CHECK(tl_matrix_set_column_copy(m, 0) == TL_OK && tl_matmul_f32(m, xf, batch * cols, batch, o2, nout) == TL_OK &&
              memcmp(out, o2, nout * 4) == 0 && tl_mem_live_bytes() <= live,
          "sparse float %s %zux%zu batch %zu, %u%% nonzero: the bits of the rows", fname(f), rows, cols, batch, pct);
    CHECK(tl_matmul_i8(m, xq, batch * cols, batch, xs, acc, o2, nout) == TL_OK && memcmp(acc, acc8, nout * 4) == 0 &&
              memcmp(o2, out8, nout * 4) == 0,
          "sparse int8 %s, the copy off: the same", fname(f));
    /* binary with the copy off: the rows (bitplane: its popcounts at any batch) */
    CHECK(tl_matmul_binary(m, bits, batch * xb, batch, acc, o2, nout) == TL_OK && memcmp(acc, accr, nout * 4) == 0 &&
              memcmp(o2, outr, nout * 4) == 0 && tl_matrix_set_column_copy(m, 1) == TL_OK,
          "sparse binary %s, the copy off: the same", fname(f));
    tl_ref_matmul_f32(t, sc, rows, cols, xf, batch, outr);
    int close = float_close(out, outr, xf, sc, rows, cols, batch);
    CHECK(close, "sparse float %s %zux%zu batch %zu within 1e-5", fname(f), rows, cols, batch);
    if (tl_threads() > 1) {
        uint32_t nth = tl_threads();
        tl_threads_set(1);
        CHECK(tl_matmul_f32(m, xf, batch * cols, batch, o2, nout) == TL_OK && memcmp(out, o2, nout * 4) == 0 &&
                  tl_matmul_i8(m, xq, batch * cols, batch, xs, acc, o2, nout) == TL_OK &&
                  memcmp(acc, acc8, nout * 4) == 0,
              "sparse %s: one thread gives the bits of %u", fname(f), (unsigned)nth);
        tl_threads_set(nth);
    }
    tl_matrix_free(m);
    free(t), free(sc), free(xq), free(xs), free(xf), free(acc), free(accr), free(acc8), free(out), free(outr),
        free(o2), free(out8), free(bits);
}

/* Batches that take the tables: the sparser vectors (under 3/8 nonzero) go through the columns,
 * the runs of others between them through the tables or, when short, the dot products (int8: the
 * reference's bits; float: the bits of the copy turned off, and the reference within 1e-5). */
static void test_sparse_batches(void) {
    static const size_t shapes[][2] = {{130, 300}, {70, 1000}};
    static const size_t batches[] = {4, 6, 13, 20};
    for (size_t f = 0; f < nformats; f++)
        for (size_t s = 0; s < 2; s++)
            for (size_t bi = 0; bi < 4; bi++) {
                const size_t rows = shapes[s][0], cols = shapes[s][1], batch = batches[bi], nout = batch * rows;
                int8_t *t = malloc(rows * cols), *xq = malloc(batch * cols);
                float *sc = malloc(rows * 4), *xs = malloc(batch * 4), *out = malloc(nout * 4), *outr = malloc(nout * 4),
                      *xf = malloc(batch * cols * 4), *of = malloc(nout * 4);
                int32_t *acc = malloc(nout * 4), *accr = malloc(nout * 4);
                random_trits(t, rows * cols, 41);
                for (size_t r = 0; r < rows; r++) sc[r] = 0.75f + (float)(r % 3) * 0.25f;
                for (size_t b = 0; b < batch; b++) {
                    const unsigned pct = b % 5 == 0 || b % 7 == 3 ? 15 : b % 4 == 1 ? 50 : 100;
                    xs[b] = 0.5f + (float)b;
                    for (size_t c = 0; c < cols; c++) {
                        int8_t v = (int8_t)(rnd() % 255 - 127);
                        xq[b * cols + c] = rnd() % 100 < pct ? (v ? v : 1) : 0;
                        xf[b * cols + c] = xq[b * cols + c] ? (float)((int32_t)rnd() / 2147483648.0) * 4.0f : 0.0f;
                    }
                }
                tl_matrix *m = NULL;
                CHECK(tl_matrix_from_trits(formats[f], t, rows, cols, sc, rows, &m) == TL_OK, "sparse batch: matrix");
                tl_ref_matmul_i8(t, sc, rows, cols, xq, batch, xs, accr, outr);
                size_t live0 = tl_mem_live_bytes();
                CHECK(m && tl_matmul_i8(m, xq, batch * cols, batch, xs, acc, out, nout) == TL_OK &&
                          memcmp(acc, accr, nout * 4) == 0 && memcmp(out, outr, nout * 4) == 0,
                      "sparse batch int8 %s %zux%zu batch %zu", fname(formats[f]), rows, cols, batch);
                CHECK(tl_mem_live_bytes() >= live0 + (rows + 63) / 64 * cols * 16, "sparse batch %s: the copy", fname(formats[f]));
                CHECK(m && tl_matmul_f32(m, xf, batch * cols, batch, of, nout) == TL_OK, "sparse batch float");
                CHECK(m && tl_matrix_set_column_copy(m, 0) == TL_OK &&
                          tl_matmul_i8(m, xq, batch * cols, batch, xs, acc, out, nout) == TL_OK &&
                          memcmp(acc, accr, nout * 4) == 0 && tl_matmul_f32(m, xf, batch * cols, batch, out, nout) == TL_OK &&
                          memcmp(out, of, nout * 4) == 0,
                      "sparse batch int8 and float %s %zux%zu batch %zu, the copy off: the same", fname(formats[f]), rows, cols, batch);
                tl_ref_matmul_f32(t, sc, rows, cols, xf, batch, outr);
                CHECK(float_close(of, outr, xf, sc, rows, cols, batch), "sparse batch float %s %zux%zu batch %zu within 1e-5",
                      fname(formats[f]), rows, cols, batch);
                tl_matrix_free(m);
                free(t), free(xq), free(sc), free(xs), free(out), free(outr), free(acc), free(accr), free(xf), free(of);
            }
}

static void test_sparse_vectors(void) {
    static const size_t shapes[][2] = {{1, 1}, {3, 70}, {64, 129}, {67, 300}, {130, 1000}, {200, 4200}};
    static const unsigned pcts[] = {0, 2, 30, 55, 70, 80};
    for (size_t f = 0; f < nformats; f++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (size_t p = 0; p < sizeof pcts / sizeof *pcts; p++)
                for (size_t batch = 1; batch <= 3; batch++) check_sparse(formats[f], shapes[s][0], shapes[s][1], batch, pcts[p], 0);
    /* the lanes' limits: 128 columns of -128 (or 127) times +1 in one int16 lane, 127 of the fixed
     * point's largest (2^23, from x just under 2) in one int32 lane */
    for (size_t f = 0; f < nformats; f++)
        for (int mode = 1; mode <= 2; mode++) check_sparse(formats[f], 70, 1000, 3, 45, mode);
    /* one magnitude (binary, +-1): the columns at any density, the negative ones' 2 - code, byte
     * lanes of 127 columns, widened before 65535 */
    static const unsigned one_pcts[] = {3, 50, 100};
    for (size_t f = 0; f < nformats; f++)
        for (size_t p = 0; p < 3; p++) check_sparse(formats[f], 130, 1000, 3, one_pcts[p], 3);
    check_sparse(formats[0], 64, 4200, 2, 100, 1);
    /* an index list long enough to widen the uint16 lanes (more than 32767 columns, repeats) */
    {
        const size_t R = 70, C = 50, K = 40000;
        int8_t *tt = malloc(R * C);
        float *s1 = malloc(R * 4), *o1 = malloc(R * 4), *o2 = malloc(R * 4);
        int32_t *a1 = malloc(R * 4), *a2 = malloc(R * 4);
        uint32_t *ix = malloc(K * 4), offs[2] = {0, (uint32_t)K};
        random_trits(tt, R * C, 5);
        for (size_t r = 0; r < R; r++) s1[r] = 0.25f * (float)(r % 5 + 1);
        for (size_t i = 0; i < K; i++) ix[i] = (uint32_t)(rnd() % C);
        for (size_t f = 0; f < nformats; f++) {
            tl_matrix *mm = NULL;
            CHECK(tl_matrix_from_trits(formats[f], tt, R, C, s1, R, &mm) == TL_OK, "long list: matrix");
            tl_ref_matmul_sparse(tt, s1, R, C, ix, offs, 1, a2, o2);
            CHECK(mm && tl_matmul_sparse(mm, ix, K, offs, 1, a1, o1, R) == TL_OK && memcmp(a1, a2, R * 4) == 0 &&
                      memcmp(o1, o2, R * 4) == 0 && tl_matmul_sparse(mm, ix, K, offs, 1, NULL, o1, R) == TL_OK &&
                      memcmp(o1, o2, R * 4) == 0,
                  "sparse %s: %zu indices into %zu columns", fname(formats[f]), K, C);
            tl_matrix_free(mm);
        }
        free(tt), free(s1), free(o1), free(o2), free(a1), free(a2), free(ix);
    }
    tl_matrix *m = NULL;
    int8_t t1 = 1;
    float one = 1.0f;
    CHECK(tl_matrix_from_trits(formats[0], &t1, 1, 1, &one, 1, &m) == TL_OK &&
              tl_matrix_set_column_copy(m, 2) == TL_ERR_ARGUMENT && tl_matrix_set_column_copy(NULL, 1) == TL_ERR_NULL,
          "set_column_copy: bad arguments");
    tl_matrix_free(m);
}

static void test_kernel_errors(void) {
    float w[12] = {1, -1, 0, 2, 1, -1, 0, 2, 1, -1, 0, 2}, out[6];
    int32_t acc[6];
    tl_matrix *m = NULL;
    CHECK(tl_matrix_quantize(TL_FORMAT_I2, w, 3, 4, 0, &m) == TL_OK, "quantize");
    uint8_t xb[2] = {0xFF, 0xFF};
    int8_t x8[8] = {0};
    float xf[8] = {0};
    uint32_t idx[2] = {0, 9}, offs[3] = {0, 1, 2};
    CHECK(tl_matmul_binary(m, xb, 2, 2, acc, out, 5) == TL_ERR_SIZE, "out_len mismatch");
    CHECK(tl_matmul_binary(m, xb, 3, 2, acc, out, 6) == TL_ERR_SIZE, "x bytes mismatch");
    CHECK(tl_matmul_binary(m, xb, 2, 2, NULL, NULL, 6) == TL_ERR_NULL, "no outputs");
    CHECK(tl_matmul_binary(NULL, xb, 2, 2, acc, out, 6) == TL_ERR_NULL, "no matrix");
    CHECK(tl_matmul_binary(m, xb, 0, 0, acc, out, 0) == TL_ERR_EMPTY, "batch 0");
    CHECK(tl_matmul_i8(m, x8, 7, 2, NULL, acc, out, 6) == TL_ERR_SIZE, "int8 x_len mismatch");
    float badscale[2] = {1, 0};
    CHECK(tl_matmul_i8(m, x8, 8, 2, badscale, acc, out, 6) == TL_ERR_ALPHA, "activation scale 0");
    badscale[1] = -2.0f;
    CHECK(tl_matmul_i8(m, x8, 8, 2, badscale, acc, out, 6) == TL_ERR_ALPHA, "negative activation scale");
    CHECK(tl_matmul_f32(m, xf, 8, 2, NULL, 6) == TL_ERR_NULL, "float needs out");
    xf[5] = NAN;
    CHECK(tl_matmul_f32(m, xf, 8, 2, out, 6) == TL_ERR_NON_FINITE, "NaN activation");
    CHECK(tl_matmul_sparse(m, idx, 2, offs, 2, acc, out, 6) == TL_ERR_SIZE, "index 9 >= cols 4");
    uint32_t offs_bad[3] = {0, 2, 1};
    idx[1] = 1;
    CHECK(tl_matmul_sparse(m, idx, 2, offs_bad, 2, acc, out, 6) == TL_ERR_SIZE, "offsets not monotone");
    CHECK(tl_matmul_sparse(m, idx, 2, offs, 2, acc, out, 6) == TL_OK, "valid sparse call");
    CHECK(tl_quantize_activations_i8(xf, 8, 3, x8, out) == TL_ERR_SIZE, "8 values in 3 vectors");
    tl_matrix_free(m);
    tl_matrix_free(NULL);

    /* int8 accumulators must fit int32: at most TL_MAX_I8_COLS columns. The activations are
     * never read when the shape is refused, so the packed bytes stand in for them. */
    size_t wide = TL_MAX_I8_COLS + 1, wbytes;
    tl_format_bytes(TL_FORMAT_I2, 1, wide, &wbytes);
    uint8_t *zeros = malloc(wbytes);
    float one = 1.0f;
    int32_t a1;
    tl_matrix *mw = NULL;
    if (zeros) memset(zeros, 0x55, wbytes); /* code 1 everywhere: zero trits */
    CHECK(zeros && tl_matrix_from_packed(TL_FORMAT_I2, zeros, wbytes, 1, wide, &one, 1, &mw) == TL_OK,
          "a 1 x 2^24 matrix");
    CHECK(mw && tl_matmul_i8(mw, (const int8_t *)zeros, wide, 1, NULL, &a1, NULL, 1) == TL_ERR_OVERFLOW,
          "2^24 columns of int8");
    tl_matrix_free(mw);
    free(zeros);
}

/* Every allocation that can fail, failing in turn: each call either succeeds or reports
 * TL_ERR_NO_MEMORY, and leaves the library holding exactly what it held before. */
static void test_out_of_memory(void) {
    enum { R = 70, C = 130, B = 3 };
    static float w[R * C], xf[B * C], out[B * R], xs[B];
    static int8_t x8[B * C], t[R * C];
    static uint8_t bits[B * ((C + 7) / 8)];
    static int32_t acc[B * R];
    uint32_t idx[4] = {1, 5, 7, 100}, offs[B + 1] = {0, 2, 2, 4};
    for (int i = 0; i < R * C; i++) w[i] = (float)((int32_t)rnd() / 2147483648.0);
    for (int i = 0; i < B * C; i++) xf[i] = (float)((int32_t)rnd() / 2147483648.0);
    tl_quantize_activations_i8(xf, B * C, B, x8, xs);
    for (size_t f = 0; f < nformats; f++) {
        size_t base = tl_mem_live_bytes();
        for (int op = 0; op < 8; op++) {
            int failures = 0, done = 0;
            for (size_t n = 1; n < 64 && !done; n++) {
                tl_matrix *m = NULL;
                if (op >= 3 && tl_matrix_quantize(formats[f], w, R, C, op % 2, &m) != TL_OK) break;
                size_t before = tl_mem_live_bytes(), blocks = tl_mem_live_blocks();
                tl_mem_fail_after(n);
                tl_status s;
                tl_matrix *made = NULL;
                switch (op) {
                case 0:
                    s = tl_matrix_quantize(formats[f], w, R, C, 0, &made);
                    break;
                case 1:
                    s = tl_matrix_quantize(formats[f], w, R, C, 1, &made);
                    break;
                case 2: {
                    float one = 1;
                    for (int i = 0; i < R * C; i++) t[i] = (int8_t)(i % 3 - 1);
                    s = tl_matrix_from_trits(formats[f], t, R, C, &one, 1, &made);
                    break;
                }
                case 3:
                    s = tl_matmul_binary(m, bits, sizeof bits, B, acc, out, B * R);
                    break;
                case 4:
                    s = tl_matmul_sparse(m, idx, 4, offs, B, acc, out, B * R);
                    break;
                case 5:
                    s = tl_matmul_i8(m, x8, B * C, B, xs, acc, out, B * R);
                    break;
                case 6:
                    s = tl_matmul_f32(m, xf, B * C, B, out, B * R);
                    break;
                default:
                    s = tl_matmul_f32(m, xf, C, 1, out, R);
                    break;
                }
                tl_mem_fail_after(0);
                if (s == TL_ERR_NO_MEMORY) {
                    failures++;
                    CHECK(!made && tl_mem_live_bytes() == before && tl_mem_live_blocks() == blocks,
                          "%s op %d: allocation %zu failing leaks nothing", fname(formats[f]), op, n);
                } else {
                    CHECK(s == TL_OK, "%s op %d with allocation %zu failing: status %d", fname(formats[f]),
                          op, n, s);
                    done = 1;
                }
                tl_matrix_free(made);
                tl_matrix_free(m);
            }
            CHECK(done && failures > 0, "%s op %d: %d allocations fail cleanly, then it works",
                  fname(formats[f]), op, failures);
        }
        CHECK(tl_mem_live_bytes() == base, "%s: nothing held after the sweep", fname(formats[f]));
    }
}

/* tl__parallel: every task runs exactly once, and with workers (a threaded build run by
 * test/c/run-wasi-mt.mjs) some run on them. */
typedef struct {
    uint32_t ran[256];
    uint32_t thread_of[256];
} par_log;

static void par_task(void *c, size_t task, unsigned thread) {
    par_log *l = c;
    __atomic_fetch_add(&l->ran[task], 1, __ATOMIC_SEQ_CST);
    l->thread_of[task] = thread;
    volatile uint32_t spin = 0; /* long enough that the workers wake before the caller is done */
    for (uint32_t i = 0; i < 200000; i++) spin += i;
}

static void test_parallel(void) {
    static par_log l;
    for (int rep = 0; rep < 3; rep++) {
        memset(&l, 0, sizeof l);
        tl__parallel(256, par_task, &l);
        int once = 1, others = 0;
        for (int i = 0; i < 256; i++) once &= l.ran[i] == 1, others += l.thread_of[i] != 0;
        CHECK(once, "tl__parallel runs each of 256 tasks once (%u threads)", (unsigned)tl_threads());
        CHECK(tl_threads() == 1 ? others == 0 : others > 0, "%d of 256 tasks ran on workers (%u threads)", others,
              (unsigned)tl_threads());
    }
}

/* The LM head's GEMVs (float32, float16 and int8 tables) against tl__dot_f32 row by row, bit for
 * bit, on shapes with tails of every kind (rows past a multiple of 4, columns past 16 / 8 / 4):
 * the SIMD kernels take rows a quarter of the matrix apart and finish the columns lane by lane. */
static void test_head_gemv(void) {
    const size_t shapes[][2] = {{1, 1}, {3, 5}, {4, 16}, {7, 13}, {9, 20}, {16, 64}, {37, 771}, {130, 1000}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t R = shapes[s][0], C = shapes[s][1];
        float *w = malloc(R * C * 4), *x = malloc(C * 4), *row = malloc(C * 4), *scales = malloc(R * 4);
        float *out = malloc(R * 4);
        uint16_t *h = malloc(R * C * 2);
        int8_t *q = malloc(R * C);
        for (size_t i = 0; i < R * C; i++) {
            uint32_t v = rnd();
            w[i] = (float)(int32_t)v / 2147483648.0f;
            q[i] = (int8_t)(v >> 8);
            /* finite binary16 of every kind: zero, subnormal, normal (exponent below 31) */
            h[i] = (uint16_t)((v >> 16) & (v & 1 ? 0xFBFF : 0x83FF));
        }
        for (size_t c = 0; c < C; c++) x[c] = (float)(int32_t)rnd() / 1073741824.0f;
        for (size_t r = 0; r < R; r++) scales[r] = 0.5f + (float)(rnd() % 1000) / 997.0f;
        int bad32 = 0, bad16 = 0, bad8 = 0;
        tl__gemv_f32(w, R, C, x, out);
        for (size_t r = 0; r < R; r++) bad32 += memcmp(&out[r], &(float){tl__dot_f32(w + r * C, x, C)}, 4) != 0;
        tl__gemv_f16(h, R, C, x, out);
        for (size_t r = 0; r < R; r++) {
            for (size_t c = 0; c < C; c++) row[c] = tl__f16_to_float(h[r * C + c]);
            bad16 += memcmp(&out[r], &(float){tl__dot_f32(row, x, C)}, 4) != 0;
        }
        tl__gemv_i8(q, scales, R, C, x, out);
        for (size_t r = 0; r < R; r++) {
            for (size_t c = 0; c < C; c++) row[c] = (float)q[r * C + c];
            bad8 += memcmp(&out[r], &(float){scales[r] * tl__dot_f32(row, x, C)}, 4) != 0;
        }
        CHECK(!bad32 && !bad16 && !bad8, "head GEMVs %zux%zu equal tl__dot_f32 row by row (rows differing: float32 %d, float16 %d, int8 %d)",
              R, C, bad32, bad16, bad8);
        /* an x of 2^15 or more takes the float16 kernel's other path (2^112 x could overflow) */
        x[C / 2] = 200000.0f;
        tl__gemv_f16(h, R, C, x, out);
        bad16 = 0;
        for (size_t r = 0; r < R; r++) {
            for (size_t c = 0; c < C; c++) row[c] = tl__f16_to_float(h[r * C + c]);
            bad16 += memcmp(&out[r], &(float){tl__dot_f32(row, x, C)}, 4) != 0;
        }
        CHECK(!bad16, "float16 head GEMV %zux%zu with |x| up to 200000 equals tl__dot_f32 row by row (rows differing: %d)", R, C, bad16);
        free(w), free(x), free(row), free(scales), free(out), free(h), free(q);
    }
}

/* The build's known-answer test passes on this build, and bites: a product off by one in one row,
 * one that wraps its sums as int16 lanes, and a failing call are each reported, without a leak. */
static int tl_st_row = -1;   /* the row the tampered product gets wrong (-1: none) */
static int tl_st_wrap = 0;   /* wrap every sum as int16 */
static tl_status tl_st_status = TL_OK;
static tl_status tampered(const tl_matrix *m, const int8_t *x, size_t cols, int32_t *acc, size_t rows) {
    if (tl_st_status) return tl_st_status;
    tl_status s = tl_matmul_i8(m, x, cols, 1, NULL, acc, NULL, rows);
    for (size_t r = 0; r < rows; r++) {
        if ((int)r == tl_st_row) acc[r] += 1;
        if (tl_st_wrap) acc[r] = (int16_t)acc[r];
    }
    return s;
}

static void test_selftest(void) {
    size_t live = tl_mem_live_bytes();
    tl_error_clear();
    CHECK(tl_build_selftest() == 0, "this build passes its self-test (%s)", tl_error_detail());
    CHECK(tl__selftest(tampered) == 0, "the untampered product passes");
    tl_st_row = 4;
    int32_t r = tl__selftest(tampered);
    CHECK(r == 2 && strstr(tl_error_detail(), "vector 0, row 4: got") != NULL,
          "one wrong row in each of the 2 vectors: 2, the first named; got %d (%s)", (int)r, tl_error_detail());
    tl_st_row = -1, tl_st_wrap = 1;
    r = tl__selftest(tampered);
    CHECK(r > 0 && strstr(tl_error_detail(), "int8 x ternary 5x1093") != NULL, "int16 wrap caught: %d (%s)", (int)r,
          tl_error_detail());
    tl_st_wrap = 0, tl_st_status = TL_ERR_NO_MEMORY;
    CHECK(tl__selftest(tampered) == TL_ERR_NO_MEMORY, "a failing call gives its status");
    tl_st_status = TL_OK;
    CHECK(tl_mem_live_bytes() == live, "the self-test frees what it allocates");
}

int main(void) {
    tl__par_min_work = 0; /* split every product that has rows to split (threaded builds) */
    test_parallel();
    test_format_table();
    test_tq1_bytes();
    test_roundtrip();
    test_invalid();
    test_kernels();
    test_sparse_vectors();
    test_sparse_batches();
    test_head_gemv();
    test_kernel_errors();
    test_out_of_memory();
    test_selftest();
    return check_report("kernels");
}
