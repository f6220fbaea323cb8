#define _POSIX_C_SOURCE 199309L
/* quant_native.c — the native build of the quantizers on a rows x cols float32 tensor:
 * prints one JSON line per measurement for bench/quant.mjs to put beside the wasm numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tilelli.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    size_t rows = argc > 1 ? strtoul(argv[1], NULL, 10) : 4096,
           cols = argc > 2 ? strtoul(argv[2], NULL, 10) : 4096;
    int reps = argc > 3 ? atoi(argv[3]) : 10;
    size_t n = rows * cols;
    float *w = malloc(n * sizeof *w), *alphas = malloc(rows * sizeof *alphas), alpha;
    int8_t *t = malloc(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        w[i] = (float)((int32_t)x / 2147483648.0);
    }
    int64_t shape[2] = {(int64_t)rows, (int64_t)cols};
    const char *names[2] = {"per-tensor", "per-row"};
    for (int mode = 0; mode < 2; mode++) {
        double best = 1e30, total = 0, times[256];
        if (reps < 1) reps = 1;
        if (reps > 256) reps = 256;
        for (int r = 0; r < reps + 1; r++) {
            double t0 = now_ms();
            tl_status s = mode == 0 ? tl_ternary_signs(w, n, t, &alpha)
                                    : tl_ternary_signs_per_row(w, n, shape, 2, t, alphas);
            double dt = now_ms() - t0;
            if (s != TL_OK) return 1;
            if (r == 0) continue; /* warm-up */
            total += dt;
            times[r - 1] = dt;
            if (dt < best) best = dt;
        }
        qsort(times, (size_t)reps, sizeof *times, cmp_double);
        double median = reps % 2 ? times[reps / 2] : (times[reps / 2 - 1] + times[reps / 2]) / 2;
        printf("{\"impl\":\"native\",\"mode\":\"%s\",\"rows\":%zu,\"cols\":%zu,\"best_ms\":%.4f,"
               "\"median_ms\":%.4f,\"mean_ms\":%.4f}\n",
               names[mode], rows, cols, best, median, total / reps);
    }
    free(w), free(alphas), free(t);
    return 0;
}
