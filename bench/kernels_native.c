#define _POSIX_C_SOURCE 199309L
/* kernels_native.c — the native build of the same kernels (the SIMD128 loops through SIMDe),
 * for bench/kernels.mjs: for one rows x cols shape, every format, activation kind and batch,
 * one JSON line with the best and median microseconds per call.
 *
 *   bench_kernels_native ROWS COLS BATCHES(e.g. 1,8,64) BUDGET_MS
 *
 * Inputs are the same streams bench/kernels.mjs feeds the wasm builds (xorshift32 from fixed
 * seeds), so the accumulators can be compared: each line also carries a checksum of them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tilelli.h"

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static uint32_t xs;
static uint32_t next(void) {
    xs ^= xs << 13, xs ^= xs >> 17, xs ^= xs << 5;
    return xs;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 5) return 2;
    size_t rows = strtoul(argv[1], NULL, 10), cols = strtoul(argv[2], NULL, 10);
    double budget = atof(argv[4]) * 1000;
    size_t batches[8], nb = 0;
    for (char *p = argv[3]; *p && nb < 8; p++) {
        batches[nb++] = strtoul(p, &p, 10);
        if (!*p) break;
    }
    size_t maxb = 0;
    for (size_t i = 0; i < nb; i++) maxb = batches[i] > maxb ? batches[i] : maxb;

    /* weights: seed 1; activations: seed 2 (see bench/kernels.mjs) */
    float *w = malloc(rows * cols * sizeof *w);
    xs = 1;
    for (size_t i = 0; i < rows * cols; i++) w[i] = (float)((int32_t)next() / 2147483648.0);
    size_t xb = tl_binary_row_bytes(cols), k = cols / 50 ? cols / 50 : 1;
    float *xf = malloc(maxb * cols * 4), *xscale = malloc(maxb * 4);
    int8_t *x8 = malloc(maxb * cols);
    uint8_t *bits = malloc(maxb * xb);
    uint32_t *idx = malloc(maxb * k * 4), *offs = malloc((maxb + 1) * 4);
    xs = 2;
    for (size_t i = 0; i < maxb * cols; i++) xf[i] = (float)((int32_t)next() / 2147483648.0);
    for (size_t i = 0; i < maxb * xb; i++) bits[i] = (uint8_t)next();
    for (size_t b = 0; b <= maxb; b++) offs[b] = (uint32_t)(b * k);
    for (size_t i = 0; i < maxb * k; i++) idx[i] = next() % cols;
    tl_quantize_activations_i8(xf, maxb * cols, maxb, x8, xscale);

    int32_t *acc = malloc(maxb * rows * 4);
    float *out = malloc(maxb * rows * 4);
    static const char *fnames[] = {"", "i2", "tq1", "bitplane"};
    static const char *kinds[] = {"binary", "sparse", "int8", "float"};
    for (int f = 1; f <= 3; f++) {
        tl_matrix *m;
        if (tl_matrix_quantize((tl_format)f, w, rows, cols, 0, &m)) return 1;
        for (size_t bi = 0; bi < nb; bi++) {
            size_t B = batches[bi];
            for (int kind = 0; kind < 4; kind++) {
                double times[1000];
                int n = 0;
                double spent = 0;
                for (int warm = 1; n < 1000 && (n < 3 || spent < budget); warm = 0) {
                    double t0 = now_us();
                    tl_status s;
                    switch (kind) {
                    case 0: s = tl_matmul_binary(m, bits, B * xb, B, acc, NULL, B * rows); break;
                    case 1: s = tl_matmul_sparse(m, idx, B * k, offs, B, acc, NULL, B * rows); break;
                    case 2: s = tl_matmul_i8(m, x8, B * cols, B, xscale, acc, NULL, B * rows); break;
                    default: s = tl_matmul_f32(m, xf, B * cols, B, out, B * rows); break;
                    }
                    double dt = now_us() - t0;
                    if (s) return 1;
                    if (warm) continue; /* the first call warms caches (and builds the sparse copy) */
                    spent += dt;
                    times[n++] = dt;
                }
                qsort(times, (size_t)n, sizeof *times, cmp);
                uint32_t sum = 0;
                for (size_t i = 0; i < B * rows; i++) sum = sum * 31u + (kind == 3 ? 0u : (uint32_t)acc[i]);
                printf("{\"format\":\"%s\",\"kind\":\"%s\",\"rows\":%zu,\"cols\":%zu,\"batch\":%zu,"
                       "\"best_us\":%.2f,\"median_us\":%.2f,\"reps\":%d,\"checksum\":%u}\n",
                       fnames[f], kinds[kind], rows, cols, B, times[0], times[n / 2], n, sum);
                fflush(stdout);
            }
        }
        tl_matrix_free(m);
    }
    return 0;
}
