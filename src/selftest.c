/* selftest.c — the build's known-answer test: does this engine compute the kernels right?
 *
 * Validating a module is not enough: Node 20's baseline compiler (V8 11.3 Liftoff) returns wrong
 * i32x4.relaxed_dot_i8x16_i7x16_add results on x86. So an instance of the relaxed build runs this
 * before it is used (js/instance.js): the int8 x ternary product through the library's own entry
 * (the i2 batch-1 path, the one that uses relaxed SIMD's dot where the build has it) on fixed
 * inputs that reach the kernels' extremes (x = -128 and 127, rows past the int16 accumulator
 * flush), against sums computed here by a plain loop. It runs at every start (in workerd, every
 * isolate's), so it is small and all in C: the same test in JavaScript cost a cold worker about
 * 4 ms of interpreted loops. */
#include "internal.h"

enum {
    TL__ST_ROWS = 5,           /* a group of 4 rows and one alone */
    TL__ST_COLS = 64 * 17 + 5, /* 17 blocks and a partial one: past a flush of the int16 lanes (every 16) */
    TL__ST_VECTORS = 2,
};

/* The known input: row 0 all +1 (with x = -128 everywhere, the most negative int16 partial sums),
 * the others mixed; a mixed vector and an extreme one. */
static void tl__st_input(int8_t *trits, int8_t x[TL__ST_VECTORS][TL__ST_COLS]) {
    for (int r = 0; r < TL__ST_ROWS; r++)
#if defined(__clang__)
#pragma clang loop vectorize(disable) interleave(disable)
#endif
        for (int c = 0; c < TL__ST_COLS; c++)
            trits[r * TL__ST_COLS + c] = (int8_t)(r == 0 ? 1 : ((r * 7 + c * 5 + ((c * c) >> 3)) % 3) - 1);
#if defined(__clang__)
#pragma clang loop vectorize(disable) interleave(disable)
#endif
    for (int c = 0; c < TL__ST_COLS; c++) {
        x[0][c] = (int8_t)(((c * 73 + 11) & 255) - 128);
        x[1][c] = (int8_t)(c % 7 == 0 ? 127 : -128);
    }
    x[0][0] = -128, x[0][1] = 127;
}

int32_t tl__selftest(tl__selftest_product product) {
    int8_t trits[TL__ST_ROWS * TL__ST_COLS], x[TL__ST_VECTORS][TL__ST_COLS]; /* 7.6 KB of the 64 KB stack */
    tl__st_input(trits, x);
    float scale = 1.0f;
    tl_matrix *m = NULL;
    tl_status s = tl_matrix_from_trits(TL_FORMAT_I2, trits, TL__ST_ROWS, TL__ST_COLS, &scale, 1, &m);
    if (s) return s;
    int32_t wrong = 0;
    for (int v = 0; v < TL__ST_VECTORS && !s; v++) {
        int32_t acc[TL__ST_ROWS];
        for (int r = 0; r < TL__ST_ROWS; r++) acc[r] = 0x7f7f7f7f;
        s = product(m, x[v], TL__ST_COLS, acc, TL__ST_ROWS);
        for (int r = 0; r < TL__ST_ROWS && !s; r++) {
            int32_t want = 0; /* scalar code: a wrong SIMD engine cannot spoil the reference too */
#if defined(__clang__)
#pragma clang loop vectorize(disable) interleave(disable)
#endif
            for (int c = 0; c < TL__ST_COLS; c++) want += x[v][c] * trits[r * TL__ST_COLS + c];
            if (acc[r] != want && wrong++ == 0)
                (void)tl__fail(TL_OK, "int8 x ternary %dx%d, vector %d, row %d: got %ld, expected %ld", TL__ST_ROWS,
                               TL__ST_COLS, v, r, (long)acc[r], (long)want);
        }
    }
    tl_matrix_free(m);
    return s ? s : wrong;
}

static tl_status tl__st_library(const tl_matrix *m, const int8_t *x, size_t cols, int32_t *acc, size_t rows) {
    return tl_matmul_i8(m, x, cols, 1, NULL, acc, NULL, rows);
}

int32_t tl_build_selftest(void) { return tl__selftest(tl__st_library); }
