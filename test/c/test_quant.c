/* test_quant.c — the optimized quantizers against the scalar reference (bit for bit),
 * and every error path of the public quantization API.
 * Built natively (plain and under ASan+UBSan) and to wasm (SIMD128 and scalar), so the
 * same differential checks run in every build. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"

static uint32_t rng_state = 0x9E3779B9u;
static uint32_t rnd(void) {
    uint32_t x = rng_state;
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    return rng_state = x;
}
static float uniform(void) { return (float)((int32_t)rnd() / 2147483648.0); } /* [-1, 1) */

/* Fill w with one of several value families; some put elements within ulps of alpha/2. */
static void fill(float *w, size_t n, int family) {
    for (size_t i = 0; i < n; i++) {
        float u = uniform();
        switch (family) {
        case 0:
            w[i] = u;
            break;
        case 1:
            w[i] = u * u * u * 1e3f;
            break; /* heavy near 0, wide range */
        case 2:
            w[i] = (float)(rnd() % 7) - 3.0f;
            break; /* small integers: exact sums */
        case 3:
            w[i] = u * 1e-39f;
            break; /* denormals */
        case 4:
            w[i] = u * 3e38f;
            break; /* float sum overflows */
        case 5:
            w[i] = (rnd() & 1) ? 0.0f : -0.0f;
            break; /* signed zeros */
        case 6:
            w[i] = (rnd() % 4 == 0) ? u * 1e30f : u * 1e-30f;
            break;
        default:
            w[i] = u;
            break;
        }
    }
    if (family == 7 && n >= 4) {
        /* Probes on the knife edge: nudge elements to alpha/2 +- a few ulps, re-derive alpha. */
        for (int iter = 0; iter < 8; iter++) {
            float a = tl_ref_absmean_scale(w, n);
            for (size_t i = 0; i < n; i += 3) {
                float h = a * (i % 2 ? 0.5f : 1.5f);
                int k = (int)(rnd() % 7) - 3;
                for (; k > 0; k--) h = nextafterf(h, INFINITY);
                for (; k < 0; k++) h = nextafterf(h, 0.0f);
                w[i] = (rnd() & 1) ? h : -h;
            }
        }
    }
}

static int same_bits_f(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }

static void check_tensor(const float *w, size_t n, const char *what) {
    float a = 0, aref = tl_ref_absmean_scale(w, n);
    CHECK(tl_absmean_scale(w, n, &a) == TL_OK && tl__f2u(a) == tl__f2u(aref), "%s n=%zu alpha %a vs ref %a",
          what, n, a, aref);

    int8_t *t = malloc(n), *tr = malloc(n);
    float *v = malloc(n * 4), *vr = malloc(n * 4), *v2 = malloc(n * 4);
    float a2 = 0;
    tl_ref_ternary_signs(w, n, aref, tr);
    CHECK(tl_ternary_signs(w, n, t, &a2) == TL_OK && memcmp(t, tr, n) == 0 && a2 == aref, "%s n=%zu signs",
          what, n);

    tl_ref_ternary_values(w, n, aref, vr);
    CHECK(tl_ternary_values(w, n, v, NULL) == TL_OK && same_bits_f(v, vr, n), "%s n=%zu values", what, n);
    memcpy(v2, w, n * 4); /* in place */
    CHECK(tl_ternary_values(v2, n, v2, &a2) == TL_OK && same_bits_f(v2, vr, n), "%s n=%zu values in place",
          what, n);

    static const float lsq_alphas[] = {1e-3f, 0.05f, 0.3f, 1.0f, 3.0f, 1e-45f, 3e38f, 0.7f};
    for (size_t k = 0; k < sizeof lsq_alphas / sizeof *lsq_alphas; k++) {
        float al = lsq_alphas[k] == 0.7f ? aref * 0.7f : lsq_alphas[k];
        tl_ref_ternarize_lsq(w, n, al, vr, tr);
        memset(t, 9, n);
        CHECK(tl_ternarize_lsq(w, n, al, v, t) == TL_OK && same_bits_f(v, vr, n) && memcmp(t, tr, n) == 0,
              "%s n=%zu lsq alpha=%a", what, n, al);
        memcpy(v2, w, n * 4);
        CHECK(tl_ternarize_lsq(v2, n, al, v2, NULL) == TL_OK && same_bits_f(v2, vr, n),
              "%s n=%zu lsq in place", what, n);
    }

    static const double bands[] = {0, 0.05, 0.1, 0.25, 0.5, 0.75, 1e-30, 1e300};
    for (size_t k = 0; k < sizeof bands / sizeof *bands; k++) {
        tl_deadzone_stats s, r;
        memset(&s, 0, sizeof s);
        tl_ref_deadzone_stats(w, n, bands[k], &r);
        CHECK(tl_deadzone_stats_compute(w, n, bands[k], &s) == TL_OK && memcmp(&s, &r, sizeof s) == 0,
              "%s n=%zu band=%g: neg %llu/%llu zero %llu/%llu boundary %llu/%llu inner %llu/%llu", what, n,
              bands[k], (unsigned long long)s.n_neg, (unsigned long long)r.n_neg,
              (unsigned long long)s.n_zero, (unsigned long long)r.n_zero, (unsigned long long)s.n_boundary,
              (unsigned long long)r.n_boundary, (unsigned long long)s.n_zero_inner,
              (unsigned long long)r.n_zero_inner);
        CHECK(r.n_neg + r.n_zero + r.n_pos == n, "trit classes partition the tensor");
    }
    free(t), free(tr), free(v), free(vr), free(v2);
}

static void check_per_row(const float *w, const int64_t *shape, size_t ndim) {
    size_t n = 1;
    for (size_t d = 0; d < ndim; d++) n *= (size_t)shape[d];
    size_t rows = (size_t)shape[0], cols = n / rows;
    float *al = malloc(rows * 4), *al2 = malloc(rows * 4), *v = malloc(n * 4), *vr = malloc(n * 4);
    int8_t *t = malloc(n), *tr = malloc(n);
    for (size_t r = 0; r < rows; r++) {
        float a = tl_ref_absmean_scale(w + r * cols, cols);
        tl_ref_ternary_signs(w + r * cols, cols, a, tr + r * cols);
        tl_ref_ternary_values(w + r * cols, cols, a, vr + r * cols);
        al2[r] = a;
    }
    CHECK(tl_absmean_scale_per_row(w, n, shape, ndim, al) == TL_OK && same_bits_f(al, al2, rows),
          "per-row scales rows=%zu cols=%zu", rows, cols);
    CHECK(tl_ternary_signs_per_row(w, n, shape, ndim, t, al) == TL_OK && memcmp(t, tr, n) == 0 &&
              same_bits_f(al, al2, rows),
          "per-row signs rows=%zu cols=%zu", rows, cols);
    CHECK(tl_ternary_values_per_row(w, n, shape, ndim, v, NULL) == TL_OK && same_bits_f(v, vr, n),
          "per-row values rows=%zu cols=%zu", rows, cols);
    free(al), free(al2), free(v), free(vr), free(t), free(tr);
}

static void test_differential(void) {
    static const size_t lens[] = {1,  2,  3,  4,  5,  7,  8,   9,   15,   16,   17,
                                  31, 32, 33, 63, 64, 65, 100, 255, 1000, 4099, 70001};
    float *w = malloc(70001 * 4);
    for (int fam = 0; fam <= 7; fam++)
        for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
            fill(w, lens[k], fam);
            char what[32];
            snprintf(what, sizeof what, "family %d", fam);
            check_tensor(w, lens[k], what);
        }
    /* Exact ties: mean |w| = 1 exactly, so w / alpha = w. */
    static const float ties[] = {0.5f, -0.5f, 1.5f, -1.5f, 1.0f, -1.0f, 0.5f, 1.5f};
    check_tensor(ties, 8, "ties");
    float a = 0;
    CHECK(tl_absmean_scale(ties, 8, &a) == TL_OK && a == 1.0f, "tie alpha %g", a);
    int8_t t[8];
    CHECK(tl_ternary_signs(ties, 8, t, &a) == TL_OK && t[0] == 0 && t[1] == 0 && t[2] == 1 && t[3] == -1,
          "round half to even: 0.5 -> 0, 1.5 -> 2 -> 1");
    /* All zero and all below EPS: alpha clamps to EPS. */
    float z[37] = {0};
    CHECK(tl_absmean_scale(z, 37, &a) == TL_OK && a == TL_EPS, "all-zero alpha is EPS");
    check_tensor(z, 37, "zeros");
    for (int i = 0; i < 37; i++) z[i] = (i % 2 ? 1 : -1) * 6e-6f * (float)(i % 3);
    CHECK(tl_absmean_scale(z, 37, &a) == TL_OK && a == TL_EPS, "below-EPS alpha is EPS");
    check_tensor(z, 37, "below eps");

    /* Per-row: 2-D, 3-D, 4-D, one row, one column. */
    fill(w, 70001, 0);
    const int64_t s1[] = {1, 1000}, s2[] = {1000, 1}, s3[] = {3, 5, 7}, s4[] = {2, 3, 4, 5}, s5[] = {300, 17},
                  s6[] = {7, 10000};
    check_per_row(w, s1, 2), check_per_row(w, s2, 2), check_per_row(w, s3, 3);
    check_per_row(w, s4, 4), check_per_row(w, s5, 2), check_per_row(w, s6, 2);
    fill(w, 70001, 7);
    check_per_row(w, s6, 2);
    free(w);
}

static void test_errors(void) {
    float w[5] = {1, 2, 3, 4, 5}, out[5], a = 123.0f;
    int8_t t[5];
    tl_deadzone_stats st;
    const int64_t sh[] = {5, 1};

    /* NULL pointers */
    CHECK(tl_absmean_scale(NULL, 5, &a) == TL_ERR_NULL, "null w");
    CHECK(tl_absmean_scale(w, 5, NULL) == TL_ERR_NULL, "null alpha");
    CHECK(tl_ternary_signs(w, 5, NULL, &a) == TL_ERR_NULL, "null trits");
    CHECK(tl_ternary_signs(w, 5, t, NULL) == TL_ERR_NULL, "null alpha for signs");
    CHECK(tl_ternary_values(w, 5, NULL, NULL) == TL_ERR_NULL, "null out");
    CHECK(tl_ternarize_lsq(w, 5, 1.0f, NULL, NULL) == TL_ERR_NULL, "null lsq out and trits");
    CHECK(tl_deadzone_stats_compute(w, 5, 0.1, NULL) == TL_ERR_NULL, "null stats");
    CHECK(tl_absmean_scale_per_row(w, 5, NULL, 2, out) == TL_ERR_NULL, "null shape");
    CHECK(tl_absmean_scale_per_row(w, 5, sh, 2, NULL) == TL_ERR_NULL, "null alphas");
    CHECK(tl_ternary_signs_per_row(w, 5, sh, 2, t, NULL) == TL_ERR_NULL, "null alphas for per-row signs");

    /* Empty */
    CHECK(tl_absmean_scale(w, 0, &a) == TL_ERR_EMPTY, "empty scale");
    CHECK(tl_ternary_signs(w, 0, t, &a) == TL_ERR_EMPTY, "empty signs");
    CHECK(tl_ternary_values(w, 0, out, &a) == TL_ERR_EMPTY, "empty values");
    CHECK(tl_ternarize_lsq(w, 0, 1.0f, out, t) == TL_ERR_EMPTY, "empty lsq");
    CHECK(tl_deadzone_stats_compute(w, 0, 0.1, &st) == TL_ERR_EMPTY, "empty stats");
    const int64_t e1[] = {0, 5}, e2[] = {5, 0};
    CHECK(tl_absmean_scale_per_row(w, 0, e1, 2, out) == TL_ERR_EMPTY, "empty per-row (0 rows)");
    CHECK(tl_ternary_values_per_row(w, 0, e2, 2, out, NULL) == TL_ERR_EMPTY, "empty per-row (0 cols)");
    CHECK(a == 123.0f, "failed calls leave *alpha untouched");

    /* Non-finite anywhere: head, SIMD body, tail */
    const float bad[] = {NAN, INFINITY, -INFINITY, -NAN};
    static float big[100];
    for (size_t p = 0; p < 100; p += 13)
        for (size_t b = 0; b < 4; b++) {
            for (size_t i = 0; i < 100; i++) big[i] = (float)i - 50.0f;
            big[p] = bad[b];
            float bo[100];
            int8_t bt[100];
            const int64_t bs[] = {10, 10};
            CHECK(tl_absmean_scale(big, 100, &a) == TL_ERR_NON_FINITE, "non-finite at %zu (scale)", p);
            CHECK(tl_ternary_signs(big, 100, bt, &a) == TL_ERR_NON_FINITE, "non-finite at %zu (signs)", p);
            CHECK(tl_ternary_values(big, 100, bo, NULL) == TL_ERR_NON_FINITE, "non-finite at %zu (values)",
                  p);
            CHECK(tl_ternarize_lsq(big, 100, 0.5f, bo, bt) == TL_ERR_NON_FINITE, "non-finite at %zu (lsq)",
                  p);
            CHECK(tl_deadzone_stats_compute(big, 100, 0.1, &st) == TL_ERR_NON_FINITE,
                  "non-finite at %zu (stats)", p);
            CHECK(tl_ternary_signs_per_row(big, 100, bs, 2, bt, bo) == TL_ERR_NON_FINITE,
                  "non-finite at %zu (row)", p);
            CHECK(tl__first_non_finite(big, 100) == p, "first non-finite index %zu", p);
        }

    /* Rank and shape */
    const int64_t r1[] = {5};
    CHECK(tl_absmean_scale_per_row(w, 5, r1, 1, out) == TL_ERR_RANK, "per-row on 1-D");
    CHECK(tl_ternary_signs_per_row(w, 5, r1, 0, t, out) == TL_ERR_RANK, "per-row on 0-D");
    const int64_t m1[] = {2, 3}, m2[] = {-5, -1}, m3[] = {5, 1, 2};
    CHECK(tl_absmean_scale_per_row(w, 5, m1, 2, out) == TL_ERR_SHAPE, "product 6 != 5");
    CHECK(tl_ternary_values_per_row(w, 5, m2, 2, out, NULL) == TL_ERR_SHAPE, "negative dims");
    CHECK(tl_ternary_signs_per_row(w, 5, m3, 3, t, out) == TL_ERR_SHAPE, "product 10 != 5");

    /* Overflow */
    const int64_t o1[] = {1 << 20, 1 << 20}, o2[] = {INT64_MAX, INT64_MAX, 0}, o3[] = {INT64_MAX, 2};
    CHECK(tl_absmean_scale_per_row(w, 5, o1, 2, out) == TL_ERR_OVERFLOW, "2^40 elements");
    CHECK(tl_absmean_scale_per_row(w, 5, o3, 2, out) == TL_ERR_OVERFLOW, "int64 max dims");
    CHECK(tl_absmean_scale_per_row(w, 0, o2, 3, out) == TL_ERR_EMPTY, "a zero dim makes huge dims empty");
    CHECK(tl_absmean_scale(w, TL_MAX_ELEMENTS + 1, &a) == TL_ERR_OVERFLOW, "n past the limit");
    CHECK(tl_ternarize_lsq(w, (size_t)-1, 1.0f, out, t) == TL_ERR_OVERFLOW, "n = SIZE_MAX");

    /* Band and alpha */
    const double badband[] = {-0.1, -1e-300, NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < 5; k++)
        CHECK(tl_deadzone_stats_compute(w, 5, badband[k], &st) == TL_ERR_BAND, "band %g", badband[k]);
    const float badalpha[] = {0.0f, -0.0f, -1.0f, NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < 6; k++)
        CHECK(tl_ternarize_lsq(w, 5, badalpha[k], out, t) == TL_ERR_ALPHA, "alpha %g", badalpha[k]);

    /* The status table: every code has a distinct name and a message. */
    const tl_status all[] = {TL_OK,        TL_ERR_NULL,      TL_ERR_EMPTY,    TL_ERR_NON_FINITE,
                             TL_ERR_RANK,  TL_ERR_SHAPE,     TL_ERR_OVERFLOW, TL_ERR_BAND,
                             TL_ERR_ALPHA, TL_ERR_NO_MEMORY, TL_ERR_ARGUMENT};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        CHECK(strcmp(tl_status_name(all[i]), "UNKNOWN") != 0, "status %d has a name", all[i]);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(tl_status_name(all[i]), tl_status_name(all[j])) != 0, "names %zu %zu distinct", i,
                  j);
    }
    CHECK(strcmp(tl_status_name((tl_status)-999), "UNKNOWN") == 0, "unknown status");
    CHECK(tl_is_error(TL_ERR_BAND) && !tl_is_error(TL_OK), "tl_is_error");

    /* The library still works after all of the above. */
    CHECK(tl_absmean_scale(w, 5, &a) == TL_OK && a == 3.0f, "alpha of 1..5 is 3");
}

static void test_huge_values(void) {
    /* The float sum overflows: alpha comes from the double mean and stays finite. */
    float w[64];
    for (int i = 0; i < 64; i++) w[i] = (i % 2 ? -1 : 1) * 3.0e38f;
    float a = 0;
    CHECK(tl_absmean_scale(w, 64, &a) == TL_OK && a == 3.0e38f, "alpha of +-3e38 is 3e38, got %g", a);
    int8_t t[64];
    CHECK(tl_ternary_signs(w, 64, t, &a) == TL_OK && t[0] == 1 && t[1] == -1, "huge values ternarize");
}

int main(void) {
    test_differential();
    test_errors();
    test_huge_values();
    return check_report("quant");
}
