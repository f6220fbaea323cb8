/* fuzz_kernels.c — libFuzzer target for the products (src/kernels.c) against the scalar
 * reference kernels (src/kernels_ref.c).
 *
 * Each input is decoded deterministically into a case: an 8-byte header (format, rows <= 72 so
 * that the sparse kernel's 64-row tiles are crossed, cols <= 600, batch 1..4, flags), then a
 * body cut into six equal slices, one per ingredient, each read as bytes and continued by a
 * xorshift stream seeded by the input's hash and the slice (so short inputs still give whole
 * cases and every ingredient stays reachable by mutation):
 *   trits (each byte mod 3 - 1, or mostly zero), finite scales (any sign, zero, subnormal, near
 *   FLT_MAX), bit-packed activations (bits past cols included), sparse index lists (valid
 *   indices, repeats, empty lists, sometimes more than 16383 per list to cross the kernel's
 *   int16 chunks), int8 activations (-128 included; 0 to 3/4 of them zero, so that mostly-zero
 *   vectors take the column-major copy) with positive finite scales (subnormal to huge) or none,
 *   float activations (small integers times a power of two, whose sums are exact, or arbitrary
 *   finite floats up to 2^100; as many zeros).
 * The matrix is made from trits or from packed bytes. Every kernel, with acc and out, acc only
 * or out only, must give the reference's int32 accumulators and float outputs bit for bit
 * (binary, sparse, int8); the float kernel, as one GEMM and as batch-1 GEMVs, must equal the
 * reference bit for bit on exact sums and otherwise be within
 * |out - ref| <= (1e-5 * sum |x| + cols * max |x| * 2^-23) * |scale| + 1e-30 (an infinity counting
 * as 2^128): the reference's float32 sum (1e-5 raised to 2 (cols + 1) 2^-24 past 82 columns,
 * the bound of a float32 sum in any order) plus the kernel's fixed-point form of x (each value
 * within max |x| 2^-23, src/kernels.c "Float activations"). The
 * activation quantizer must equal its reference exactly, and its output runs through the int8
 * kernel too. Invalid calls (an index >= cols, a non-finite activation, a scale <= 0) give their
 * documented status. One kernel call, before the others (so the sparse kernel's column-major
 * cache is built under it), runs with one allocation failing: NO_MEMORY or the right results.
 * Nothing is held afterwards. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"



/* The six slices of the body. */
enum { S_TRITS, S_SCALES, S_BITS, S_SPARSE, S_I8, S_F32, NSLICES };

typedef struct {
    tl_format f;
    size_t rows, cols, batch, n;
    const int8_t *t; /* the matrix's trits, from tl_matrix_unpack */
    const float *sc; /* its scales, from tl_matrix_scales */
    uint8_t *bits;
    size_t xb;
    uint32_t *idx, *offs;
    size_t nidx;
    int8_t *x8;
    float *xs; /* NULL: no int8 scales */
    float *xf;
    int exact; /* float activations whose sums are exact in any order */
} kcase;

/* Which outputs a call asks for: 0 both, 1 acc only, 2 out only. */
static int32_t *want_acc(int which, int32_t *acc) { return which == 2 ? NULL : acc; }
static float *want_out(int which, float *out) { return which == 1 ? NULL : out; }

static void same_outputs(int which, const int32_t *acc, const int32_t *accr, const float *out,
                         const float *outr, size_t nout) {
    if (which != 2) REQUIRE(memcmp(acc, accr, nout * sizeof *acc) == 0);
    if (which != 1) REQUIRE(memcmp(out, outr, nout * sizeof *out) == 0); /* bits: -0.0, inf included */
}

/* The float kernel's outputs against the reference: equal bits on exact sums, else the tolerance. */
static void close_outputs(const kcase *k, const float *out, const float *outr, size_t b0, size_t nb) {
    /* test_kernels.c's 1e-5, or where that is too tight for some inputs (cols > 82), the bound
     * on two summation orders: each within (cols - 1) * 2^-24 * sum |x| of the exact sum, plus
     * the rounding of the product with the scale. */
    double rel = fmax(1e-5, 2.0 * (double)(k->cols + 1) * 0x1p-24);
    for (size_t b = b0; b < b0 + nb; b++) {
        double mag = 0, mx = 0;
        for (size_t c = 0; c < k->cols; c++) {
            mag += fabs((double)k->xf[b * k->cols + c]);
            mx = fmax(mx, fabs((double)k->xf[b * k->cols + c]));
        }
        /* the kernel's fixed point: each x within max |x| 2^-23 of its value (src/kernels.c) */
        mag = rel * mag + (double)k->cols * mx * 0x1p-23;
        for (size_t r = 0; r < k->rows; r++) {
            float o = out[(b - b0) * k->rows + r], w = outr[b * k->rows + r];
            REQUIRE(!isnan(o));
            if (k->exact) {
                REQUIRE(tl__f2u(o) == tl__f2u(w));
                continue;
            }
            double od = isinf(o) ? copysign(0x1p128, o) : o, wd = isinf(w) ? copysign(0x1p128, w) : w;
            REQUIRE(fabs(od - wd) <= mag * fabs((double)k->sc[r]) + 1e-30);
        }
    }
}

/* The reference's outputs, computed once per case. */
typedef struct {
    int32_t *acc[3];
    float *out[4]; /* binary, sparse, int8, float */
} refs;

static void make_refs(const kcase *k, refs *rf) {
    size_t nout = k->batch * k->rows;
    for (int i = 0; i < 4; i++) {
        if (i < 3) rf->acc[i] = malloc(nout * sizeof(int32_t));
        rf->out[i] = malloc(nout * sizeof(float));
    }
    tl_ref_matmul_binary(k->t, k->sc, k->rows, k->cols, k->bits, k->batch, rf->acc[0], rf->out[0]);
    tl_ref_matmul_sparse(k->t, k->sc, k->rows, k->cols, k->idx, k->offs, k->batch, rf->acc[1], rf->out[1]);
    tl_ref_matmul_i8(k->t, k->sc, k->rows, k->cols, k->x8, k->batch, k->xs, rf->acc[2], rf->out[2]);
    tl_ref_matmul_f32(k->t, k->sc, k->rows, k->cols, k->xf, k->batch, rf->out[3]);
}

static void free_refs(refs *rf) {
    for (int i = 0; i < 4; i++) {
        if (i < 3) free(rf->acc[i]);
        free(rf->out[i]);
    }
}

/* A float output the reference gives as an infinity, or close enough to overflow that another
 * summation order may: the kernel then answers NON_FINITE (it never hands out an infinity). */
static int near_overflow(const float *ref, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(ref[i]) || fabsf(ref[i]) > 1e38f) return 1;
    return 0;
}

/* Kernel `kern` (0 binary, 1 sparse, 2 int8, 3 float) against the reference; with nomem, one
 * allocation fails and NO_MEMORY is accepted too (then nothing is compared). */
static void run_kernel(const tl_matrix *m, const kcase *k, const refs *rf, int kern, int which, int nomem,
                       uint32_t h) {
    size_t nout = k->batch * k->rows;
    int32_t *acc = malloc(nout * sizeof *acc);
    float *out = malloc(nout * sizeof *out);
    memset(acc, 0xA5, nout * sizeof *acc), memset(out, 0xA5, nout * sizeof *out);
    tl_status s = TL_OK;
    if (nomem) tl_mem_fail_after(1 + h % 5);
    switch (kern) {
    case 0:
        s = tl_matmul_binary(m, k->bits, k->batch * k->xb, k->batch, want_acc(which, acc),
                             want_out(which, out), nout);
        break;
    case 1:
        s = tl_matmul_sparse(m, k->idx, k->nidx, k->offs, k->batch, want_acc(which, acc),
                             want_out(which, out), nout);
        break;
    case 2:
        s = tl_matmul_i8(m, k->x8, k->batch * k->cols, k->batch, k->xs, want_acc(which, acc),
                         want_out(which, out), nout);
        break;
    default:
        s = tl_matmul_f32(m, k->xf, k->batch * k->cols, k->batch, out, nout);
        break;
    }
    tl_mem_fail_after(0);
    REQUIRE(s == TL_OK || (nomem && s == TL_ERR_NO_MEMORY) ||
            (s == TL_ERR_NON_FINITE && (kern == 3 || want_out(which, out)) && near_overflow(rf->out[kern], nout)));
    if (s == TL_OK) {
        if (kern < 3)
            same_outputs(which, acc, rf->acc[kern], out, rf->out[kern], nout);
        else
            close_outputs(k, out, rf->out[3], 0, k->batch);
    }
    free(acc), free(out);
}

/* A finite float from 32 bits: an infinity or NaN loses its top exponent bit. */
static float finite_bits(uint32_t b) {
    if ((b & TL__INF_BITS) == TL__INF_BITS) b &= ~0x40000000u;
    return tl__u2f(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    REQUIRE(tl_mem_live_bytes() == 0);
    uint32_t h = fnv(data, size);
    stream hdr = {data, size < 8 ? size : 8, 0, h | 1u};
    uint8_t fsel = next(&hdr), rsel = next(&hdr);
    uint32_t csel = next16(&hdr);
    uint8_t bsel = next(&hdr), flags = next(&hdr), esel = next(&hdr), dsel = next(&hdr);

    kcase k;
    memset(&k, 0, sizeof k);
    k.f = (tl_format)(1 + fsel % 3);
    /* rows: 1..8 mostly, 1..72 for rsel >= 160; cols: 1..160 (every block edge), 1..600 for csel >= 2^15 */
    k.rows = 1 + rsel % (rsel >= 160 ? 72 : 8);
    k.cols = 1 + csel % (csel >= 0x8000 ? 600 : 160);
    k.batch = 1 + bsel % 4;
    k.n = k.rows * k.cols;
    int per_row = bsel >> 2 & 1, from_packed = bsel >> 3 & 1, no_xs = (bsel >> 4 & 3) == 3;
    int which = flags % 3, fail_kernel = flags / 3 % 4, big_sparse = flags >= 240;
    k.exact = !(esel & 0x80);

    stream sl[NSLICES];
    const uint8_t *body = data + (size < 8 ? size : 8);
    size_t body_len = size < 8 ? 0 : size - 8, part = body_len / NSLICES;
    for (int i = 0; i < NSLICES; i++) {
        sl[i].p = body + (size_t)i * part, sl[i].n = part, sl[i].i = 0;
        sl[i].s = (h ^ (0x9E3779B9u * (uint32_t)(i + 1))) | 1u;
    }

    /* the matrix */
    int8_t *t = malloc(k.n), *tm = malloc(k.n);
    for (size_t i = 0; i < k.n; i++) {
        uint8_t b = next(&sl[S_TRITS]);
        t[i] = (int8_t)(dsel & 1 ? (b < 192 ? 0 : (b & 1 ? 1 : -1)) : b % 3 - 1);
    }
    size_t nscales = per_row ? k.rows : 1;
    float *scales = malloc(nscales * sizeof *scales);
    for (size_t i = 0; i < nscales; i++) scales[i] = finite_bits(next32(&sl[S_SCALES]));
    tl_matrix *m = NULL;
    if (from_packed) {
        size_t bytes;
        REQUIRE(tl_format_bytes(k.f, k.rows, k.cols, &bytes) == TL_OK);
        uint8_t *p = malloc(bytes);
        REQUIRE(tl_pack(k.f, t, k.rows, k.cols, p, bytes) == TL_OK);
        REQUIRE(tl_matrix_from_packed(k.f, p, bytes, k.rows, k.cols, scales, nscales, &m) == TL_OK);
        free(p);
    } else {
        REQUIRE(tl_matrix_from_trits(k.f, t, k.rows, k.cols, scales, nscales, &m) == TL_OK);
    }
    REQUIRE(tl_matrix_unpack(m, tm, k.n) == TL_OK && memcmp(tm, t, k.n) == 0);
    k.t = tm, k.sc = tl_matrix_scales(m);
    for (size_t r = 0; r < k.rows; r++) REQUIRE(tl__f2u(k.sc[r]) == tl__f2u(scales[per_row ? r : 0]));

    /* binary activations: every bit from the input, those past cols too */
    k.xb = tl_binary_row_bytes(k.cols);
    REQUIRE(k.xb == (k.cols + 7) / 8);
    k.bits = malloc(k.batch * k.xb);
    for (size_t i = 0; i < k.batch * k.xb; i++) k.bits[i] = next(&sl[S_BITS]);

    /* sparse: per vector 0..63 indices (sometimes 16400: two int16 chunks), any order, repeats */
    size_t cap = 0, counts[4];
    for (size_t b = 0; b < k.batch; b++) {
        uint8_t c = next(&sl[S_SPARSE]);
        counts[b] = big_sparse && b == 0 ? 16400 : c % 64;
        cap += counts[b];
    }
    k.idx = malloc((cap ? cap : 1) * sizeof *k.idx);
    k.offs = malloc((k.batch + 1) * sizeof *k.offs);
    k.offs[0] = 0;
    for (size_t b = 0; b < k.batch; b++) {
        for (size_t i = 0; i < counts[b]; i++) k.idx[k.nidx++] = next16(&sl[S_SPARSE]) % (uint32_t)k.cols;
        k.offs[b + 1] = (uint32_t)k.nidx;
    }

    /* int8 activations (bytes as they are: -128..127) and positive finite scales, or none */
    k.x8 = malloc(k.batch * k.cols);
    /* 0, 1/4, 1/2 or 3/4 of the values zero (a ReLU's output): mostly-zero vectors go through the
     * columns (tilelli.h, "Sparse vectors"), the others through the rows */
    const unsigned zeros = next(&sl[S_I8]) % 4;
    for (size_t i = 0; i < k.batch * k.cols; i++) {
        int8_t v = (int8_t)next(&sl[S_I8]);
        k.x8[i] = next(&sl[S_I8]) % 4 < zeros ? 0 : v;
    }
    float *xs = malloc(k.batch * sizeof *xs);
    for (size_t b = 0; b < k.batch; b++) {
        float v = fabsf(finite_bits(next32(&sl[S_I8])));
        xs[b] = v > 0.0f ? v : tl__u2f(1); /* 0 is no valid scale: the smallest subnormal instead */
    }
    k.xs = no_xs ? NULL : xs;

    /* float activations: exact (int8 times 2^e, e in -40..23) or arbitrary finite up to 2^101 */
    k.xf = malloc(k.batch * k.cols * sizeof *k.xf);
    int e = (int)(esel & 63) - 40;
    for (size_t i = 0; i < k.batch * k.cols; i++) {
        if (k.exact) {
            k.xf[i] = ldexpf((float)(int8_t)next(&sl[S_F32]), e);
        } else {
            uint32_t u = next32(&sl[S_F32]), ex = u >> 23 & 255;
            if (ex > 227) u = (u & ~TL__INF_BITS) | (ex - 128) << 23; /* |x| < 2^101 */
            k.xf[i] = tl__u2f(u);
        }
        if (next(&sl[S_F32]) % 4 < zeros) k.xf[i] = 0.0f; /* as many zeros as the int8 ones */
    }

    refs rf;
    make_refs(&k, &rf);
    /* one kernel call with one allocation failing, first, while the sparse cache is unbuilt */
    run_kernel(m, &k, &rf, fail_kernel, which, 1, h >> 4);

    for (int kern = 0; kern < 4; kern++) run_kernel(m, &k, &rf, kern, which, 0, 0);
    /* the sparse kernel again (its column-major cache is built now), other output choices */
    run_kernel(m, &k, &rf, 1, (which + 1) % 3, 0, 0);
    run_kernel(m, &k, &rf, 0, (which + 2) % 3, 0, 0);
    run_kernel(m, &k, &rf, 2, (which + 1) % 3, 0, 0);

    /* the float kernel as batch-1 GEMVs, vector by vector */
    {
        float *out = malloc(k.rows * sizeof *out);
        for (size_t b = 0; b < k.batch; b++) {
            tl_status s = tl_matmul_f32(m, k.xf + b * k.cols, k.cols, 1, out, k.rows);
            REQUIRE(s == TL_OK || (s == TL_ERR_NON_FINITE && near_overflow(rf.out[3] + b * k.rows, k.rows)));
            if (s == TL_OK) close_outputs(&k, out, rf.out[3], b, 1);
        }
        free(out);
    }
    free_refs(&rf);

    /* the activation quantizer, exactly; its output through the int8 kernel */
    {
        size_t nx = k.batch * k.cols, nout = k.batch * k.rows;
        int8_t *q = malloc(nx), *qr = malloc(nx);
        float *s = malloc(k.batch * sizeof *s), *sr = malloc(k.batch * sizeof *sr);
        REQUIRE(tl_quantize_activations_i8(k.xf, nx, k.batch, q, s) == TL_OK);
        tl_ref_quantize_activations_i8(k.xf, k.cols, k.batch, qr, sr);
        REQUIRE(memcmp(q, qr, nx) == 0 && memcmp(s, sr, k.batch * sizeof *s) == 0);
        for (size_t b = 0; b < k.batch; b++) REQUIRE(isfinite(s[b]) && s[b] > 0.0f);
        int32_t *acc = malloc(nout * sizeof *acc), *accr = malloc(nout * sizeof *accr);
        float *out = malloc(nout * sizeof *out), *outr = malloc(nout * sizeof *outr);
        tl_status si = tl_matmul_i8(m, q, nx, k.batch, s, acc, out, nout);
        tl_ref_matmul_i8(k.t, k.sc, k.rows, k.cols, q, k.batch, s, accr, outr);
        REQUIRE(si == TL_OK || (si == TL_ERR_NON_FINITE && near_overflow(outr, nout)));
        if (si == TL_OK) same_outputs(0, acc, accr, out, outr, nout);

        /* documented refusals: an index past cols, a non-finite activation, a scale <= 0 */
        if (k.nidx) {
            uint32_t keep = k.idx[k.nidx - 1];
            k.idx[k.nidx - 1] = (uint32_t)k.cols + next(&sl[S_SPARSE]);
            REQUIRE(tl_matmul_sparse(m, k.idx, k.nidx, k.offs, k.batch, acc, out, nout) == TL_ERR_SIZE);
            k.idx[k.nidx - 1] = keep;
        }
        size_t at = next16(&sl[S_F32]) % nx;
        float keepf = k.xf[at];
        static const uint32_t bad[3] = {0x7FC00000u, 0x7F800000u, 0xFF800000u};
        k.xf[at] = tl__u2f(bad[next(&sl[S_F32]) % 3]);
        REQUIRE(tl_matmul_f32(m, k.xf, nx, k.batch, out, nout) == TL_ERR_NON_FINITE);
        REQUIRE(tl_quantize_activations_i8(k.xf, nx, k.batch, q, s) == TL_ERR_NON_FINITE);
        k.xf[at] = keepf;
        float keeps = xs[k.batch - 1];
        xs[k.batch - 1] = next(&sl[S_I8]) & 1 ? -keeps : 0.0f;
        REQUIRE(tl_matmul_i8(m, k.x8, nx, k.batch, xs, acc, out, nout) == TL_ERR_ALPHA);
        xs[k.batch - 1] = keeps;
        free(q), free(qr), free(s), free(sr), free(acc), free(accr), free(out), free(outr);
    }

    tl_matrix_free(m);
    REQUIRE(tl_mem_live_bytes() == 0 && tl_mem_live_blocks() == 0);
    free(t), free(tm), free(scales), free(k.bits), free(k.idx), free(k.offs), free(k.x8), free(xs),
        free(k.xf);
    return 0;
}
