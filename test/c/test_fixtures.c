/* test_fixtures.c — the public quantization API against golden outputs of the PyTorch reference
 * (test/fixtures/quant/, made by test/fixtures/gen_quant.py). Usage: test_fixtures <fixture dir>.
 *
 * Tolerances (README.md, "Exactly the reference's numbers"; test/js/fixtures.test.js applies the same rules):
 *   alpha   relative difference to torch <= 1e-6 (bit-identical ones are counted and printed);
 *   trits   exactly torch's when our alpha is bit-identical to torch's; otherwise they may differ
 *           only where |w| / alpha_torch (in double) is within 4 float32 ulps (relative 4 * 2^-24)
 *           of 0.5 or 1.5;
 *   values  exactly our trits * our alpha, zeros carrying torch's sign bit (the sign bit of w, which
 *           the generator asserted for every case); bitwise torch's when alpha is bit-identical;
 *   LSQ     alpha is given: trits and values bitwise torch's (zeros +0.0);
 *   deadzone  alpha as above; fractions exactly torch's when alpha is bit-identical, otherwise each
 *           count within the number of elements whose |w| / alpha_torch lies within 1e-6 (relative)
 *           of 0.5, 0.5 - band or 0.5 + band.
 * One CHECK per case and operation; a failure prints the case, the operation and the first
 * offending element. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixtures.h"
#include "tilelli.h"

static uint32_t bits(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static int rel_close(float ours, float ref) {
    return fabs((double)ours - (double)ref) <= 1e-6 * fabs((double)ref);
}

/* |w| / alpha in double within 4 float32 ulps of 0.5 or 1.5: a trit may legitimately flip there. */
static int near_tie(float w, float alpha_torch) {
    double x = fabs((double)w) / (double)alpha_torch;
    const double tol = 4.0 / 16777216.0;
    return fabs(x - 0.5) <= tol * 0.5 || fabs(x - 1.5) <= tol * 1.5;
}

static struct { size_t alpha_total, alpha_same, row_total, row_same; } stat;

/* A one-line description of the first difference, kept for the CHECK message. */
static char detail[512];

/* Trits of [lo, hi) against torch's, with torch's scale alpha_torch and ours alpha_ours.
 * Returns the number of disallowed differences, and counts the tolerated ones in *tolerated. */
static size_t compare_trits(const float *w, const int8_t *ours, const int8_t *ref, size_t lo, size_t hi,
                            float alpha_ours, float alpha_torch, size_t *tolerated) {
    size_t bad = 0;
    int exact = bits(alpha_ours) == bits(alpha_torch);
    for (size_t i = lo; i < hi; i++) {
        if (ours[i] == ref[i]) continue;
        if (ours[i] < -1 || ours[i] > 1 || exact || !near_tie(w[i], alpha_torch)) {
            if (!bad++ && !detail[0])
                snprintf(detail, sizeof detail,
                         "first at [%zu]: w=%.9g (%a) trit %d, torch %d; alpha %.9g (%a), torch %.9g (%a)", i,
                         (double)w[i], (double)w[i], ours[i], ref[i], (double)alpha_ours, (double)alpha_ours,
                         (double)alpha_torch, (double)alpha_torch);
        } else {
            (*tolerated)++;
        }
    }
    return bad;
}

/* Values of [lo, hi): == our trit * our alpha, zeros with the sign bit of w and of torch's zero,
 * and bitwise torch's when alpha is bit-identical. ref may be NULL (not stored). */
static size_t compare_values(const float *w, const float *v, const int8_t *t, const float *ref, size_t lo,
                             size_t hi, float alpha_ours, float alpha_torch) {
    size_t bad = 0;
    int exact = bits(alpha_ours) == bits(alpha_torch);
    for (size_t i = lo; i < hi; i++) {
        float expect = (float)t[i] * alpha_ours;
        int ok = t[i] == 0 ? (v[i] == 0.0f && !signbit(v[i]) == !signbit(w[i])) : bits(v[i]) == bits(expect);
        if (ok && ref) {
            if (exact)
                ok = bits(v[i]) == bits(ref[i]);
            else if (v[i] == 0.0f && ref[i] == 0.0f)
                ok = !signbit(v[i]) == !signbit(ref[i]);
        }
        if (!ok && !bad++ && !detail[0])
            snprintf(detail, sizeof detail,
                     "first at [%zu]: w=%.9g value %.9g (%a) trit %d, torch %.9g (%a); alpha %a, torch %a", i,
                     (double)w[i], (double)v[i], (double)v[i], t[i], ref ? (double)ref[i] : NAN,
                     ref ? (double)ref[i] : NAN, (double)alpha_ours, (double)alpha_torch);
    }
    return bad;
}

static void run_per_tensor(const fx_case *c, float *buf, int8_t *tbuf, float *vbuf) {
    const float *w = c->input;
    size_t n = c->n, tol = 0;
    float a = 0, a_s = 0, a_v = 0;
    tl_status s = tl_absmean_scale(w, n, &a);
    stat.alpha_total++;
    stat.alpha_same += s == TL_OK && bits(a) == bits(c->alpha);
    CHECK(s == TL_OK && rel_close(a, c->alpha),
          "%s: absmean_scale status %s alpha %.9g (%a), torch %.9g (%a)", c->name, tl_status_name(s),
          (double)a, (double)a, (double)c->alpha, (double)c->alpha);

    memset(tbuf, 0x7F, n);
    s = tl_ternary_signs(w, n, tbuf, &a_s);
    detail[0] = 0;
    size_t bad = s == TL_OK ? compare_trits(w, tbuf, c->trits, 0, n, a_s, c->alpha, &tol) : 1;
    CHECK(s == TL_OK && bits(a_s) == bits(a) && bad == 0,
          "%s: ternary_signs status %s alpha %a (absmean_scale %a), %zu trits differ (%zu tolerated near "
          "ties) %s",
          c->name, tl_status_name(s), (double)a_s, (double)a, bad, tol, detail);

    s = tl_ternary_values(w, n, vbuf, &a_v);
    detail[0] = 0;
    bad = s == TL_OK ? compare_values(w, vbuf, tbuf, c->values, 0, n, a_v, c->alpha) : 1;
    CHECK(s == TL_OK && bits(a_v) == bits(a) && bad == 0,
          "%s: ternary_values status %s alpha %a, %zu values wrong (values %s) %s", c->name,
          tl_status_name(s), (double)a_v, bad, c->values ? "stored" : "not stored", detail);

    /* out may alias w */
    memcpy(buf, w, n * sizeof *buf);
    s = tl_ternary_values(buf, n, buf, NULL);
    CHECK(s == TL_OK && memcmp(buf, vbuf, n * sizeof *buf) == 0, "%s: ternary_values in place differs (%s)",
          c->name, tl_status_name(s));
}

static void run_per_row(const fx_case *c, float *buf, int8_t *tbuf, float *vbuf) {
    const float *w = c->input;
    size_t n = c->n, rows = c->rows, cols = n / rows;
    float *al = malloc(rows * sizeof *al), *al_s = malloc(rows * sizeof *al),
          *al_v = malloc(rows * sizeof *al);
    if (!al || !al_s || !al_v) {
        CHECK(0, "%s: out of memory", c->name);
        free(al), free(al_s), free(al_v);
        return;
    }
    tl_status s = tl_absmean_scale_per_row(w, n, c->shape, c->ndim, al);
    size_t bad = 0, first = 0;
    for (size_t r = 0; s == TL_OK && r < rows; r++) {
        stat.row_total++;
        stat.row_same += bits(al[r]) == bits(c->row_alphas[r]);
        if (!rel_close(al[r], c->row_alphas[r]) && !bad++) first = r;
    }
    CHECK(s == TL_OK && bad == 0,
          "%s: absmean_scale_per_row status %s, %zu of %zu rows off, first row %zu: %a vs torch %a", c->name,
          tl_status_name(s), bad, rows, first, s == TL_OK ? (double)al[first] : 0.0,
          (double)c->row_alphas[first]);

    memset(tbuf, 0x7F, n);
    s = tl_ternary_signs_per_row(w, n, c->shape, c->ndim, tbuf, al_s);
    bad = 0;
    size_t tol = 0, alpha_diff = 0;
    detail[0] = 0;
    for (size_t r = 0; s == TL_OK && r < rows; r++) {
        alpha_diff += bits(al_s[r]) != bits(al[r]);
        bad +=
            compare_trits(w, tbuf, c->row_trits, r * cols, (r + 1) * cols, al_s[r], c->row_alphas[r], &tol);
    }
    CHECK(s == TL_OK && alpha_diff == 0 && bad == 0,
          "%s: ternary_signs_per_row status %s, %zu row alphas differ from absmean_scale_per_row, %zu trits "
          "differ (%zu tolerated) %s",
          c->name, tl_status_name(s), alpha_diff, bad, tol, detail);

    s = tl_ternary_values_per_row(w, n, c->shape, c->ndim, vbuf, al_v);
    bad = alpha_diff = 0;
    detail[0] = 0;
    for (size_t r = 0; s == TL_OK && r < rows; r++) {
        alpha_diff += bits(al_v[r]) != bits(al[r]);
        bad +=
            compare_values(w, vbuf, tbuf, c->row_values, r * cols, (r + 1) * cols, al_v[r], c->row_alphas[r]);
    }
    CHECK(s == TL_OK && alpha_diff == 0 && bad == 0,
          "%s: ternary_values_per_row status %s, %zu row alphas differ, %zu values wrong %s", c->name,
          tl_status_name(s), alpha_diff, bad, detail);

    memcpy(buf, w, n * sizeof *buf);
    s = tl_ternary_values_per_row(buf, n, c->shape, c->ndim, buf, NULL);
    CHECK(s == TL_OK && memcmp(buf, vbuf, n * sizeof *buf) == 0,
          "%s: ternary_values_per_row in place differs (%s)", c->name, tl_status_name(s));
    free(al), free(al_s), free(al_v);
}

static void run_1d_rejects_per_row(const fx_case *c, float *vbuf) {
    float al[1];
    tl_status s = tl_absmean_scale_per_row(c->input, c->n, c->shape, 1, al);
    tl_status s2 = tl_ternary_values_per_row(c->input, c->n, c->shape, 1, vbuf, NULL);
    CHECK(s == TL_ERR_RANK && s2 == TL_ERR_RANK,
          "%s: per row on a 1-D tensor gave %s / %s, want RANK (the "
          "reference raises ValueError)",
          c->name, tl_status_name(s), tl_status_name(s2));
}

static void run_lsq(const fx_case *c, const fx_lsq *q, float *buf, int8_t *tbuf, float *vbuf) {
    const float *w = c->input;
    size_t n = c->n, bad = 0;
    memset(tbuf, 0x7F, n);
    tl_status s = tl_ternarize_lsq(w, n, q->alpha, vbuf, tbuf);
    detail[0] = 0;
    for (size_t i = 0; s == TL_OK && i < n; i++) {
        float ref = q->values ? q->values[i] : (float)q->trits[i] * q->alpha + 0.0f;
        if (tbuf[i] != q->trits[i] || bits(vbuf[i]) != bits(ref)) {
            if (!bad++)
                snprintf(detail, sizeof detail, "first at [%zu]: w=%.9g (%a) trit %d value %a, torch %d %a",
                         i, (double)w[i], (double)w[i], tbuf[i], (double)vbuf[i], q->trits[i], (double)ref);
        }
    }
    CHECK(s == TL_OK && bad == 0, "%s: ternarize_lsq(alpha=%.9g (%a)) status %s, %zu elements differ %s",
          c->name, (double)q->alpha, (double)q->alpha, tl_status_name(s), bad, detail);

    memcpy(buf, w, n * sizeof *buf); /* in place, without trits */
    s = tl_ternarize_lsq(buf, n, q->alpha, buf, NULL);
    CHECK(s == TL_OK && memcmp(buf, vbuf, n * sizeof *buf) == 0,
          "%s: ternarize_lsq(alpha=%a) in place differs (%s)", c->name, (double)q->alpha, tl_status_name(s));
}

static size_t count_diff(uint64_t a, uint64_t b) { return (size_t)(a > b ? a - b : b - a); }

static void run_deadzone(const fx_case *c, const fx_deadzone *d) {
    const float *w = c->input;
    size_t n = c->n;
    tl_deadzone_stats st;
    memset(&st, 0, sizeof st);
    tl_status s = tl_deadzone_stats_compute(w, n, d->band, &st);
    if (s != TL_OK) {
        CHECK(s == TL_OK, "%s: deadzone_stats(band=%g) status %s", c->name, d->band, tl_status_name(s));
        return;
    }
    float alpha = (float)st.alpha;
    int same = (double)alpha == st.alpha && bits(alpha) == bits((float)d->alpha);
    double nd = (double)n;
    int consistent = st.n == n && st.n_neg + st.n_zero + st.n_pos == n &&
                     st.frac_neg == (double)st.n_neg / nd && st.frac_zero == (double)st.n_zero / nd &&
                     st.frac_pos == (double)st.n_pos / nd && st.frac_boundary == (double)st.n_boundary / nd &&
                     st.frac_zero_inner == (double)st.n_zero_inner / nd;
    int ok;
    size_t slack = 0;
    if (same) {
        ok = st.frac_neg == d->frac_neg && st.frac_zero == d->frac_zero && st.frac_pos == d->frac_pos &&
             st.frac_boundary == d->frac_boundary && st.frac_zero_inner == d->frac_zero_inner;
    } else {
        const double targets[3] = {0.5, 0.5 - d->band, 0.5 + d->band};
        for (size_t i = 0; i < n; i++) {
            double x = fabs((double)w[i]) / d->alpha;
            for (int k = 0; k < 3; k++)
                if (fabs(x - targets[k]) <= 1e-6 * targets[k]) {
                    slack++;
                    break;
                }
        }
        ok = rel_close(alpha, (float)d->alpha) && count_diff(st.n_neg, d->n_neg) <= slack &&
             count_diff(st.n_zero, d->n_zero) <= slack && count_diff(st.n_pos, d->n_pos) <= slack &&
             count_diff(st.n_boundary, d->n_boundary) <= slack &&
             count_diff(st.n_zero_inner, d->n_zero_inner) <= slack;
    }
    CHECK(ok && consistent,
          "%s: deadzone_stats(band=%g) alpha %a torch %a (%s); counts neg/zero/pos/boundary/zero_inner "
          "%llu/%llu/%llu/%llu/%llu, torch %llu/%llu/%llu/%llu/%llu (slack %zu); fractions consistent with "
          "counts: %d",
          c->name, d->band, st.alpha, d->alpha, same ? "bit-identical" : "differs",
          (unsigned long long)st.n_neg, (unsigned long long)st.n_zero, (unsigned long long)st.n_pos,
          (unsigned long long)st.n_boundary, (unsigned long long)st.n_zero_inner,
          (unsigned long long)d->n_neg, (unsigned long long)d->n_zero, (unsigned long long)d->n_pos,
          (unsigned long long)d->n_boundary, (unsigned long long)d->n_zero_inner, slack, consistent);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s <fixture dir (test/fixtures/quant)>\n", argv[0]);
        return 2;
    }
    fx_set set;
    char err[512];
    if (fx_open(argv[1], &set, err, sizeof err)) {
        fprintf(stderr, "fixtures: %s\n", err);
        CHECK(0, "cannot open the fixtures: %s", err);
        return check_report("fixtures");
    }
    CHECK(set.n_cases > 0, "no fixture cases in %s", argv[1]);
    size_t n_lsq = 0, n_dz = 0;
    for (size_t k = 0; k < set.n_cases; k++) {
        fx_case *c = &set.cases[k];
        if (fx_case_load(&set, c, err, sizeof err)) {
            CHECK(0, "%s", err);
            continue;
        }
        float *buf = malloc(c->n * sizeof *buf), *vbuf = malloc(c->n * sizeof *vbuf);
        int8_t *tbuf = malloc(c->n);
        if (!buf || !vbuf || !tbuf) {
            CHECK(0, "%s: out of memory", c->name);
        } else {
            run_per_tensor(c, buf, tbuf, vbuf);
            if (c->ndim >= 2)
                run_per_row(c, buf, tbuf, vbuf);
            else
                run_1d_rejects_per_row(c, vbuf);
            for (size_t i = 0; i < c->n_lsq; i++, n_lsq++) run_lsq(c, &c->lsq[i], buf, tbuf, vbuf);
            for (size_t i = 0; i < c->n_deadzone; i++, n_dz++) run_deadzone(c, &c->deadzone[i]);
        }
        free(buf), free(vbuf), free(tbuf);
        fx_case_unload(c);
    }
    printf("fixtures: %zu cases (torch %s), %zu lsq and %zu deadzone records\n", set.n_cases,
           set.torch_version, n_lsq, n_dz);
    printf("fixtures: alphas bit-identical to torch: per tensor %zu/%zu, per row %zu/%zu\n", stat.alpha_same,
           stat.alpha_total, stat.row_same, stat.row_total);
    fx_close(&set);
    return check_report("fixtures");
}
