/* test_model.c — packed models (src/model.c) and their training side (src/train.c) from C:
 * every layer type built in every format and run against a double-precision reference written
 * here (the int8 quantizer computed exactly in float32, docs/FORMATS.md), the file's round trip
 * (save -> load -> save byte for byte, describe, layer info, precision, convert, metadata), the
 * reader's and builders' errors with their details, every prefix of a valid file, out-of-memory
 * sweeps over every entry point, an architecture over a safetensors checkpoint built here, and
 * training: a separable data set learned, seeded runs bit-identical, the epoch bookkeeping, and
 * the network <-> model conversions. Inputs are heap copies of exactly their length (ASan). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "tilelli.h"

/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------- */

static float frand(float lo, float hi) { return lo + (hi - lo) * (float)(check_rnd() >> 8) / 16777216.0f; }

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static const tl_format FORMATS[3] = {TL_FORMAT_I2, TL_FORMAT_TQ1, TL_FORMAT_BITPLANE};

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* Does the detail of the last error name `what`? */
static int detail_has(const char *what) { return contains(tl_error_detail(), what); }

static int8_t *rand_trits(size_t n) {
    int8_t *t = malloc(n);
    for (size_t i = 0; i < n; i++) t[i] = (int8_t)((int)(check_rnd() % 3) - 1);
    return t;
}

static float *rand_floats(size_t n, float lo, float hi) {
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = frand(lo, hi);
    return v;
}

/* ---------------------------------------------------------------------------
 * Layer specifications: what the test builds, and its reference
 * ------------------------------------------------------------------------- */

enum { L_LINEAR, L_BITLINEAR, L_RELU, L_GELU, L_SILU, L_RMSNORM, L_BINARIZE, L_SOFTMAX };
static const char *const TYPE_NAMES[] = {"linear", "bitlinear", "relu", "gelu", "silu", "rmsnorm", "binarize", "softmax"};

typedef struct {
    int type;
    size_t out;            /* linear, bitlinear */
    int int8;              /* linear: "activations": "int8" */
    int bias, norm;        /* bitlinear norm_weight / rmsnorm weight */
    double eps;            /* 0: not given (default 1e-5) */
    int use_k;             /* binarize */
    size_t k;
    float threshold;
    const char *name;      /* or NULL */
    const char *quantizer; /* or NULL */
    int identity;          /* linear: trits = identity (out == in), scales 1: shows the bits */
    /* filled by spec_fill */
    size_t in;
    int8_t *trits;
    float *scales, *bv, *nv;
} spec;

static void spec_fill(spec *s, size_t n, size_t input) {
    size_t w = input;
    for (size_t i = 0; i < n; i++) {
        spec *L = &s[i];
        L->in = w;
        if (L->type == L_LINEAR || L->type == L_BITLINEAR) {
            if (L->identity) {
                L->out = w;
                L->trits = calloc(w * w, 1);
                for (size_t r = 0; r < w; r++) L->trits[r * w + r] = 1;
                L->scales = malloc(w * sizeof(float));
                for (size_t r = 0; r < w; r++) L->scales[r] = 1.0f;
            } else {
                L->trits = rand_trits(L->out * w);
                L->scales = rand_floats(L->out, 0.05f, 0.6f);
            }
            if (L->bias) L->bv = rand_floats(L->out, -0.5f, 0.5f);
            if (L->norm) L->nv = rand_floats(w, 0.5f, 1.5f);
            w = L->out;
        } else {
            L->out = w;
            if (L->type == L_RMSNORM && L->norm) L->nv = rand_floats(w, 0.5f, 1.5f);
        }
    }
}

static void spec_free(spec *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(s[i].trits), free(s[i].scales), free(s[i].bv), free(s[i].nv);
        s[i].trits = NULL, s[i].scales = s[i].bv = s[i].nv = NULL;
    }
}

static size_t layer_json(const spec *L, char *j, size_t cap) {
    int n = snprintf(j, cap, "{\"type\":\"%s\"", TYPE_NAMES[L->type]);
    if (L->name) { /* JSON-escaped: quotes and backslashes */
        n += snprintf(j + n, cap - (size_t)n, ",\"name\":\"");
        for (const char *c = L->name; *c; c++) {
            if (*c == '"' || *c == '\\') j[n++] = '\\';
            j[n++] = *c;
        }
        n += snprintf(j + n, cap - (size_t)n, "\"");
    }
    if (L->quantizer) n += snprintf(j + n, cap - (size_t)n, ",\"quantizer\":\"%s\"", L->quantizer);
    if (L->int8) n += snprintf(j + n, cap - (size_t)n, ",\"activations\":\"int8\"");
    if (L->eps > 0) n += snprintf(j + n, cap - (size_t)n, ",\"eps\":%.17g", L->eps);
    if (L->type == L_BINARIZE) {
        if (L->use_k)
            n += snprintf(j + n, cap - (size_t)n, ",\"k\":%zu", L->k);
        else
            n += snprintf(j + n, cap - (size_t)n, ",\"threshold\":%.9g", (double)L->threshold);
    }
    n += snprintf(j + n, cap - (size_t)n, "}");
    return (size_t)n;
}

/* Build the model of specs s[0..n) in format f through the builder. */
static tl_status build_model(spec *s, size_t n, size_t input, tl_format f, tl_model **out) {
    tl_model_builder *b = NULL;
    tl_status st = tl_model_builder_new(input, &b);
    if (st) return st;
    for (size_t i = 0; i < n && !st; i++) {
        const spec *L = &s[i];
        tl_matrix *m = NULL;
        char j[256];
        size_t jl = layer_json(L, j, sizeof j);
        if (L->trits) st = tl_matrix_from_trits(f, L->trits, L->out, L->in, L->scales, L->out, &m);
        if (!st && L->bv) st = tl_model_builder_stage(b, "bias", 4, L->bv, L->out);
        if (!st && L->nv)
            st = L->type == L_RMSNORM ? tl_model_builder_stage(b, "weight", 6, L->nv, L->in)
                                      : tl_model_builder_stage(b, "norm_weight", 11, L->nv, L->in);
        if (!st) st = tl_model_builder_add(b, j, jl, m);
        tl_matrix_free(m);
    }
    if (!st) st = tl_model_builder_finish(b, out);
    tl_model_builder_free(b);
    return st;
}

/* The library's RMSNorm as the float32 computation it is (sum of squares in double, the rest
 * in float32), for the int8 reference, where one ulp can move a rounding. */
static void rmsnorm_f32(float *x, size_t n, float eps, const float *w) {
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (size_t i = 0; i < n; i++) x[i] = x[i] * inv * (w ? w[i] : 1.0f);
}

/* The reference forward of one vector: double precision, except the int8 paths, which are
 * float32 as docs/FORMATS.md spells them: s = 127 / max(max|x|, 1e-5f),
 * xq = clamp(rintf(x * s), -128, 127), y = fl(fl(fl(acc) * scale) / s) + bias. */
static void ref_forward(const spec *s, size_t n, size_t input, const float *x, double *y) {
    size_t W = input;
    for (size_t i = 0; i < n; i++)
        if (s[i].out > W) W = s[i].out;
    double *a = malloc(W * sizeof *a), *b = malloc(W * sizeof *b);
    float *xf = malloc(W * sizeof *xf);
    int8_t *q = malloc(W);
    int binary = 0;
    size_t w = input;
    for (size_t c = 0; c < input; c++) a[c] = x[c];
    for (size_t i = 0; i < n; i++) {
        const spec *L = &s[i];
        switch (L->type) {
        case L_LINEAR:
        case L_BITLINEAR: {
            int int8 = !binary && (L->type == L_BITLINEAR || L->int8);
            if (int8) {
                for (size_t c = 0; c < w; c++) xf[c] = (float)a[c];
                if (L->type == L_BITLINEAR)
                    rmsnorm_f32(xf, w, L->eps > 0 ? (float)L->eps : 1e-5f, L->nv);
                float mx = 0;
                for (size_t c = 0; c < w; c++) mx = fabsf(xf[c]) > mx ? fabsf(xf[c]) : mx;
                float sc = 127.0f / (mx > 1e-5f ? mx : 1e-5f);
                for (size_t c = 0; c < w; c++) {
                    float r = rintf(xf[c] * sc);
                    q[c] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
                }
                for (size_t r = 0; r < L->out; r++) {
                    int32_t acc = 0;
                    for (size_t c = 0; c < w; c++) acc += L->trits[r * w + c] * q[c];
                    float v = ((float)acc * L->scales[r]) / sc;
                    if (L->bv) v += L->bv[r];
                    b[r] = v;
                }
            } else {
                for (size_t r = 0; r < L->out; r++) {
                    double acc = 0;
                    for (size_t c = 0; c < w; c++) acc += L->trits[r * w + c] * a[c];
                    b[r] = acc * L->scales[r] + (L->bv ? L->bv[r] : 0.0);
                }
            }
            w = L->out;
            memcpy(a, b, w * sizeof *a);
            binary = 0;
            break;
        }
        case L_RELU:
            for (size_t c = 0; c < w; c++) a[c] = a[c] > 0 ? a[c] : 0;
            break;
        case L_GELU:
            for (size_t c = 0; c < w; c++) a[c] = 0.5 * a[c] * (1.0 + erf(a[c] / sqrt(2.0)));
            break;
        case L_SILU:
            for (size_t c = 0; c < w; c++) a[c] = a[c] / (1.0 + exp(-a[c]));
            break;
        case L_RMSNORM: {
            double ss = 0;
            for (size_t c = 0; c < w; c++) ss += a[c] * a[c];
            double inv = 1.0 / sqrt(ss / (double)w + (L->eps > 0 ? (double)(float)L->eps : (double)1e-5f));
            for (size_t c = 0; c < w; c++) a[c] = a[c] * inv * (L->nv ? L->nv[c] : 1.0);
            break;
        }
        case L_BINARIZE:
            if (L->use_k) {
                /* element c wins when fewer than k are before it (larger, or equal at a lower index) */
                for (size_t c = 0; c < w; c++) {
                    size_t before = 0;
                    for (size_t d = 0; d < w; d++) before += a[d] > a[c] || (a[d] == a[c] && d < c);
                    b[c] = before < L->k ? 1.0 : 0.0;
                }
                memcpy(a, b, w * sizeof *a);
            } else {
                for (size_t c = 0; c < w; c++) a[c] = (float)a[c] > L->threshold ? 1.0 : 0.0;
            }
            binary = 1;
            break;
        case L_SOFTMAX: {
            double mx = a[0], sum = 0;
            for (size_t c = 1; c < w; c++) mx = a[c] > mx ? a[c] : mx;
            for (size_t c = 0; c < w; c++) sum += a[c] = exp(a[c] - mx);
            for (size_t c = 0; c < w; c++) a[c] /= sum;
            break;
        }
        }
    }
    memcpy(y, a, w * sizeof *y);
    free(a), free(b), free(xf), free(q);
}

/* got (batch x out) against the reference, within tol of each row's largest |output|. */
static int near_rows(const float *got, const double *want, size_t batch, size_t out, double tol, double *worst) {
    int ok = 1;
    *worst = 0;
    for (size_t t = 0; t < batch; t++) {
        double mx = 0;
        for (size_t c = 0; c < out; c++) mx = fabs(want[t * out + c]) > mx ? fabs(want[t * out + c]) : mx;
        if (mx == 0) mx = 1;
        for (size_t c = 0; c < out; c++) {
            double e = fabs((double)got[t * out + c] - want[t * out + c]) / mx;
            if (!(e <= tol)) ok = 0;
            if (!(e <= *worst)) *worst = e;
        }
    }
    return ok;
}

/* ---------------------------------------------------------------------------
 * 1. Every layer type, every format, batches 1 and 3, against the reference
 * ------------------------------------------------------------------------- */

#define IN 70 /* past one i2 block (64), below one tq1 block (80) and one bitplane row (128) */

typedef struct {
    const char *what;
    spec layers[4];
    size_t n;
    double tol;
    int inputs; /* 0: random; 1: exact ties for the int8 quantizer; 2: few levels (k-WTA ties) */
} model_case;

static void fill_inputs(float *x, size_t batch, int kind) {
    for (size_t t = 0; t < batch; t++) {
        float *v = x + t * IN;
        for (size_t c = 0; c < IN; c++) v[c] = kind == 2 ? (float)(check_rnd() % 4) * 0.5f - 0.5f : frand(-2.0f, 2.0f);
        if (kind == 1 && t == 0) {
            /* max 127/128 makes s = 128 exactly: 2.5 -> 2 and 0.5 -> 0 (half to even), -3.5 -> -4 */
            for (size_t c = 0; c < IN; c++) v[c] = (float)((int)(check_rnd() % 255) - 127) / 128.0f;
            v[0] = 0.9921875f, v[1] = 2.5f / 128, v[2] = -3.5f / 128, v[3] = 0.5f / 128, v[4] = -0.9921875f;
        }
    }
}

static void test_layer_types(void) {
    model_case cases[] = {
        {"linear float, bias", {{.type = L_LINEAR, .out = 9, .bias = 1}}, 1, 1e-5, 0},
        {"linear float, no bias", {{.type = L_LINEAR, .out = 9}}, 1, 1e-5, 0},
        {"linear int8, bias", {{.type = L_LINEAR, .out = 9, .int8 = 1, .bias = 1}}, 1, 1e-6, 1},
        {"linear int8, no bias", {{.type = L_LINEAR, .out = 9, .int8 = 1}}, 1, 1e-6, 1},
        {"bitlinear, norm_weight, eps", {{.type = L_BITLINEAR, .out = 9, .bias = 1, .norm = 1, .eps = 1e-3}}, 1, 1e-6, 0},
        {"bitlinear, defaults", {{.type = L_BITLINEAR, .out = 9}}, 1, 1e-6, 0},
        {"relu", {{.type = L_LINEAR, .out = 9, .bias = 1}, {.type = L_RELU}}, 2, 1e-5, 0},
        {"gelu", {{.type = L_LINEAR, .out = 9, .bias = 1}, {.type = L_GELU}}, 2, 1e-5, 0},
        {"silu", {{.type = L_LINEAR, .out = 9, .bias = 1}, {.type = L_SILU}}, 2, 1e-5, 0},
        {"rmsnorm with weight", {{.type = L_LINEAR, .out = 9, .bias = 1}, {.type = L_RMSNORM, .norm = 1, .eps = 1e-4}}, 2, 1e-5, 0},
        {"rmsnorm plain", {{.type = L_LINEAR, .out = 9}, {.type = L_RMSNORM}}, 2, 1e-5, 0},
        {"binarize threshold -> linear", {{.type = L_BINARIZE, .threshold = 0.25f}, {.type = L_LINEAR, .out = 9, .bias = 1}}, 2, 1e-5, 0},
        {"binarize threshold -> identity", {{.type = L_BINARIZE, .threshold = 0.0f}, {.type = L_LINEAR, .identity = 1}}, 2, 0, 2},
        {"binarize k=1 -> identity", {{.type = L_BINARIZE, .use_k = 1, .k = 1}, {.type = L_LINEAR, .identity = 1}}, 2, 0, 2},
        {"binarize k=width -> identity", {{.type = L_BINARIZE, .use_k = 1, .k = IN}, {.type = L_LINEAR, .identity = 1}}, 2, 0, 2},
        {"binarize k=23 ties -> identity", {{.type = L_BINARIZE, .use_k = 1, .k = 23}, {.type = L_LINEAR, .identity = 1}}, 2, 0, 2},
        {"binarize k=5 random -> linear", {{.type = L_BINARIZE, .use_k = 1, .k = 5}, {.type = L_LINEAR, .out = 9, .bias = 1}}, 2, 1e-5, 0},
        {"binarize k=40 ties -> int8 linear (takes bits)",
         {{.type = L_BINARIZE, .use_k = 1, .k = 40}, {.type = L_LINEAR, .identity = 1, .int8 = 1}}, 2, 0, 2},
        {"softmax", {{.type = L_LINEAR, .out = 9, .bias = 1}, {.type = L_SOFTMAX}}, 2, 1e-5, 0},
        {"int8 linear -> relu -> linear -> softmax",
         {{.type = L_LINEAR, .out = 12, .int8 = 1, .bias = 1}, {.type = L_RELU}, {.type = L_LINEAR, .out = 5}, {.type = L_SOFTMAX}}, 4, 1e-5, 1},
    };
    size_t live = tl_mem_live_blocks();
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        model_case *mc = &cases[ci];
        spec_fill(mc->layers, mc->n, IN);
        size_t out_w = mc->layers[mc->n - 1].out;
        for (int fi = 0; fi < 3; fi++) {
            tl_model *m = NULL;
            tl_error_clear();
            tl_status st = build_model(mc->layers, mc->n, IN, FORMATS[fi], &m);
            CHECK(st == TL_OK, "%s (%s): build: %s %s", mc->what, tl_format_name(FORMATS[fi]), tl_status_name(st),
                  tl_error_detail());
            if (st) continue;
            CHECK(tl_model_input_size(m) == IN && tl_model_output_size(m) == out_w &&
                      tl_model_layer_count(m) == mc->n,
                  "%s: sizes %zu -> %zu, %zu layers", mc->what, tl_model_input_size(m), tl_model_output_size(m),
                  tl_model_layer_count(m));
            for (size_t batch = 1; batch <= 3; batch += 2) {
                float *x = malloc(batch * IN * sizeof *x), *y = malloc(batch * out_w * sizeof *y);
                double *want = malloc(batch * out_w * sizeof *want), worst = 0;
                fill_inputs(x, batch, mc->inputs);
                for (size_t t = 0; t < batch; t++) ref_forward(mc->layers, mc->n, IN, x + t * IN, want + t * out_w);
                st = tl_model_run(m, x, batch * IN, batch, y, batch * out_w);
                CHECK(st == TL_OK, "%s: run: %s", mc->what, tl_status_name(st));
                CHECK(!st && near_rows(y, want, batch, out_w, mc->tol, &worst),
                      "%s (%s), batch %zu: worst relative error %.3g, allowed %.3g", mc->what,
                      tl_format_name(FORMATS[fi]), batch, worst, mc->tol);
                free(x), free(y), free(want);
            }
            tl_model_free(m);
        }
        spec_free(mc->layers, mc->n);
    }
    CHECK(tl_mem_live_blocks() == live, "layer types: every model freed (%zu blocks, %zu before)",
          tl_mem_live_blocks(), live);
}

/* The int8 path with the quantizer's pieces checked one by one: the library's own quantizer
 * gives the test's xq, and tl_matmul_i8 on it gives the test's int32 accumulators, so the
 * model's numbers are the spec's to the bit. */
static void test_int8_exact(void) {
    size_t rows = 7, batch = 3;
    int8_t *t = rand_trits(rows * IN);
    float sc[7], *x = malloc(batch * IN * sizeof *x), xs[3], mine_s[3];
    for (size_t r = 0; r < rows; r++) sc[r] = frand(0.1f, 1.0f);
    fill_inputs(x, batch, 1);
    int8_t *xq = malloc(batch * IN), *mine = malloc(batch * IN);
    CHECK(tl_quantize_activations_i8(x, batch * IN, batch, xq, xs) == TL_OK, "quantize");
    int same_q = 1, same_acc = 1, same_out = 1;
    for (size_t b = 0; b < batch; b++) {
        float mx = 0;
        for (size_t c = 0; c < IN; c++) mx = fabsf(x[b * IN + c]) > mx ? fabsf(x[b * IN + c]) : mx;
        mine_s[b] = 127.0f / (mx > 1e-5f ? mx : 1e-5f);
        for (size_t c = 0; c < IN; c++) {
            float r = rintf(x[b * IN + c] * mine_s[b]);
            mine[b * IN + c] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
        }
        same_q &= f2u(mine_s[b]) == f2u(xs[b]);
    }
    same_q &= memcmp(mine, xq, batch * IN) == 0;
    CHECK(same_q, "the quantizer is s = 127 / max(max|x|, 1e-5f), rintf(x * s)");
    CHECK(xq[1] == 2 && xq[2] == -4 && xq[3] == 0 && xq[0] == 127, "ties to even: %d %d %d %d", xq[0], xq[1], xq[2],
          xq[3]);
    for (int fi = 0; fi < 3; fi++) {
        tl_matrix *m = NULL;
        tl_matrix_from_trits(FORMATS[fi], t, rows, IN, sc, rows, &m);
        int32_t acc[21];
        float y[21];
        CHECK(tl_matmul_i8(m, xq, batch * IN, batch, xs, acc, NULL, batch * rows) == TL_OK, "i8");
        tl_model_builder *b = NULL;
        tl_model *mod = NULL;
        tl_model_builder_new(IN, &b);
        const char *j8 = "{\"type\":\"linear\",\"activations\":\"int8\"}";
        tl_model_builder_add(b, j8, strlen(j8), m);
        CHECK(tl_model_builder_finish(b, &mod) == TL_OK, "finish");
        CHECK(tl_model_run(mod, x, batch * IN, batch, y, batch * rows) == TL_OK, "run");
        for (size_t bb = 0; bb < batch; bb++)
            for (size_t r = 0; r < rows; r++) {
                int32_t a = 0;
                for (size_t c = 0; c < IN; c++) a += t[r * IN + c] * mine[bb * IN + c];
                same_acc &= a == acc[bb * rows + r];
                same_out &= f2u(y[bb * rows + r]) == f2u(((float)a * sc[r]) / mine_s[bb]);
            }
        tl_model_free(mod), tl_model_builder_free(b), tl_matrix_free(m);
    }
    CHECK(same_acc, "int32 accumulators equal the test's sum of trit * xq");
    CHECK(same_out, "int8 model outputs are fl(fl(fl(acc) * scale) / s), bit for bit");
    free(t), free(x), free(xq), free(mine);
}

/* ---------------------------------------------------------------------------
 * 2. The file: round trip, describe, layer info, precision, convert, metadata
 * ------------------------------------------------------------------------- */

static spec BIG[] = {
    {.type = L_BINARIZE, .use_k = 1, .k = 10, .name = "wta"},
    {.type = L_LINEAR, .out = 40, .bias = 1, .name = "fc1", .quantizer = "per_row"},
    {.type = L_RELU},
    {.type = L_BITLINEAR, .out = 24, .norm = 1, .eps = 1e-4, .name = "bl", .bias = 1},
    {.type = L_GELU},
    {.type = L_RMSNORM, .norm = 1, .eps = 2e-5},
    {.type = L_LINEAR, .out = 16, .int8 = 1, .quantizer = "lsq"},
    {.type = L_SILU},
    {.type = L_LINEAR, .out = 12, .bias = 1, .quantizer = "per_tensor"},
    {.type = L_BINARIZE, .threshold = 0.125f},
    {.type = L_LINEAR, .out = 6, .bias = 1, .name = "head \"q\""},
    {.type = L_SOFTMAX},
};
#define NBIG (sizeof BIG / sizeof *BIG)

static char *describe(const tl_model *m) {
    char *j = NULL;
    size_t n = 0;
    if (tl_model_describe(m, &j, &n)) return NULL;
    char *s = malloc(n + 1);
    memcpy(s, j, n), s[n] = 0;
    tl_free(j);
    return s;
}

static int runs_equal_bits(tl_model *a, tl_model *b, const float *x, size_t batch) {
    size_t o = tl_model_output_size(a);
    float *ya = malloc(batch * o * sizeof *ya), *yb = malloc(batch * o * sizeof *yb);
    int ok = tl_model_run(a, x, batch * tl_model_input_size(a), batch, ya, batch * o) == TL_OK &&
             tl_model_run(b, x, batch * tl_model_input_size(b), batch, yb, batch * o) == TL_OK &&
             memcmp(ya, yb, batch * o * sizeof *ya) == 0;
    free(ya), free(yb);
    return ok;
}

static int runs_near(tl_model *a, tl_model *b, const float *x, size_t batch, double tol) {
    size_t o = tl_model_output_size(a);
    float *ya = malloc(batch * o * sizeof *ya), *yb = malloc(batch * o * sizeof *yb);
    double *w = malloc(batch * o * sizeof *w), worst = 0;
    int ok = tl_model_run(a, x, batch * tl_model_input_size(a), batch, ya, batch * o) == TL_OK &&
             tl_model_run(b, x, batch * tl_model_input_size(b), batch, yb, batch * o) == TL_OK;
    for (size_t i = 0; i < batch * o; i++) w[i] = ya[i];
    ok = ok && near_rows(yb, w, batch, o, tol, &worst);
    free(ya), free(yb), free(w);
    return ok;
}

static uint8_t *heap_copy(const uint8_t *p, size_t n) { return (uint8_t *)exact(p, n); }

static tl_status load_exact(const uint8_t *bytes, size_t len, tl_model **m) {
    uint8_t *c = heap_copy(bytes, len);
    tl_status s = tl_model_load(c, len, m);
    free(c);
    return s;
}

static void test_round_trip(void) {
    size_t live = tl_mem_live_blocks();
    spec_fill(BIG, NBIG, IN);
    float x[5 * IN];
    fill_inputs(x, 5, 0);
    for (int fi = 0; fi < 3; fi++) {
        const char *fname = tl_format_name(FORMATS[fi]);
        tl_model *m = NULL, *m2 = NULL;
        tl_status st = build_model(BIG, NBIG, IN, FORMATS[fi], &m);
        CHECK(st == TL_OK, "big model (%s): %s %s", fname, tl_status_name(st), tl_error_detail());
        if (st) continue;
        CHECK(tl_model_set_metadata(m, "{\"a\":\"1\",\"b\":\"2\"}", 17) == TL_OK, "metadata");
        CHECK(tl_model_set_metadata(m, "{\"b\":\"3\",\"c\":\"4\"}", 17) == TL_OK, "metadata merge");
        CHECK(tl_model_set_metadata(m, "{\"d\":5}", 7) == TL_ERR_PARSE && detail_has("d"),
              "metadata values are strings: %s", tl_error_detail());
        CHECK(tl_model_set_metadata(m, "[1]", 3) == TL_ERR_PARSE, "metadata is an object");
        char *d1 = describe(m);
        CHECK(d1 && contains(d1, "\"metadata\":{\"a\":\"1\",\"b\":\"3\",\"c\":\"4\"}"),
              "set_metadata merges (old a, replaced b, new c): %s", d1 ? d1 : "(null)");
        CHECK(d1 && contains(d1, "\"input\":70,\"output\":6"), "describe: input and output: %.60s", d1 ? d1 : "");
        CHECK(d1 && contains(d1, "\"name\":\"head \\\"q\\\"\""), "describe: names JSON-escaped");
        uint8_t *b1 = NULL, *b2 = NULL;
        size_t n1 = 0, n2 = 0;
        CHECK(tl_model_save(m, &b1, &n1) == TL_OK, "save");
        CHECK(tl_model_is_file(b1, n1) && !tl_model_is_file(b1 + 1, n1 - 1), "is_file: the magic");
        CHECK(b1[4] == TL_MODEL_VERSION && (16 + (b1[8] | b1[9] << 8)) % 16 == 0,
              "a saved file: version %u, the data section on a multiple of 16", b1[4]);
        st = load_exact(b1, n1, &m2);
        CHECK(st == TL_OK, "load(save(m)) (%s): %s %s", fname, tl_status_name(st), tl_error_detail());
        if (st) {
            tl_free(b1), free(d1), tl_model_free(m);
            continue;
        }
        CHECK(runs_equal_bits(m, m2, x, 1) && runs_equal_bits(m, m2, x, 5), "load(save(m)) runs bit for bit as m");
        {
            /* in place: the model takes the buffer and copies no weights */
            size_t before = tl_mem_live_bytes();
            tl_model_free(m2);
            size_t base = tl_mem_live_bytes();
            m2 = NULL;
            load_exact(b1, n1, &m2);
            before = tl_mem_live_bytes();
            uint8_t *own = tl_alloc(n1);
            memcpy(own, b1, n1);
            tl_model *m3 = NULL;
            st = tl_model_load_owned(own, n1, &m3);
            CHECK(st == TL_OK, "load_owned(save(m)) (%s): %s %s", fname, tl_status_name(st), tl_error_detail());
            if (!st) {
                const tl_matrix *w = tl_model_matrix(m3, 1);
                CHECK(w->data >= own && w->data + tl_matrix_data_bytes(w) <= own + n1,
                      "load_owned: the packed bytes are used where they lie in the file");
                /* m2 (tl_model_load) holds a copy of every matrix's packed bytes; m3 the file instead */
                size_t packed = 0;
                for (size_t i = 0; i < tl_model_layer_count(m3); i++)
                    packed += tl_matrix_data_bytes(tl_model_matrix(m3, i));
                size_t own_bytes = tl_mem_live_bytes() - before, copy_bytes = before - base;
                CHECK(own_bytes == copy_bytes - packed + n1,
                      "load_owned holds the file instead of the packed weights: %zu bytes, load %zu - %zu + %zu",
                      own_bytes, copy_bytes, packed, n1);
                CHECK(runs_equal_bits(m, m3, x, 1) && runs_equal_bits(m, m3, x, 5),
                      "load_owned(save(m)) runs bit for bit as m");
                uint8_t *b3 = NULL;
                size_t n3 = 0;
                CHECK(tl_model_save(m3, &b3, &n3) == TL_OK && n3 == n1 && memcmp(b3, b1, n1) == 0,
                      "save(load_owned(save(m))) == save(m)");
                tl_free(b3);
                tl_model *m4 = NULL;
                CHECK(tl_model_convert(m3, TL_FORMAT_BITPLANE, &m4) == TL_OK, "convert of a model loaded in place");
                tl_model_free(m3); /* frees own */
                CHECK(m4 && runs_equal_bits(m, m4, x, 5), "its conversion outlives it and runs as m");
                tl_model_free(m4);
            } else {
                tl_free(own);
            }
            CHECK(tl_mem_live_bytes() == before, "load_owned: tl_model_free released the file");
        }
        char *d2 = describe(m2);
        CHECK(d1 && d2 && strcmp(d1, d2) == 0, "describe(load(save(m))) == describe(m)");
        CHECK(tl_model_save(m2, &b2, &n2) == TL_OK && n1 == n2 && memcmp(b1, b2, n1) == 0,
              "save(load(save(m))) == save(m) byte for byte (%zu, %zu bytes)", n1, n2);
        /* layer info */
        tl_layer_info li;
        CHECK(tl_model_layer_info(m2, 1, &li) == TL_OK && !strcmp(li.type, "linear") && li.name &&
                  !strcmp(li.name, "fc1") && li.in == IN && li.out == 40 && li.format == FORMATS[fi] &&
                  li.quantizer && !strcmp(li.quantizer, "per_row") && li.precision == TL_PRECISION_FLOAT &&
                  li.matrix == tl_model_matrix(m2, 1) && li.bias && !li.norm,
              "layer_info(1): the named per_row float linear");
        CHECK(li.bias && memcmp(li.bias, BIG[1].bv, 40 * 4) == 0, "layer_info(1).bias: the staged values");
        CHECK(tl_model_layer_info(m2, 0, &li) == TL_OK && !strcmp(li.type, "binarize") && !strcmp(li.name, "wta") &&
                  li.in == IN && li.out == IN && li.format == 0 && !li.quantizer && !li.matrix &&
                  li.precision == TL_PRECISION_DEFAULT,
              "layer_info(0): binarize, no matrix");
        CHECK(tl_model_layer_info(m2, 3, &li) == TL_OK && !strcmp(li.type, "bitlinear") && li.in == 40 &&
                  li.out == 24 && li.precision == TL_PRECISION_INT8 && li.quantizer == NULL && li.norm &&
                  memcmp(li.norm, BIG[3].nv, 40 * 4) == 0,
              "layer_info(3): bitlinear int8, no quantizer recorded, its norm_weight");
        CHECK(tl_model_layer_info(m2, 5, &li) == TL_OK && !strcmp(li.type, "rmsnorm") && li.name == NULL &&
                  li.norm && !li.matrix && li.in == 24 && li.out == 24,
              "layer_info(5): rmsnorm with its weight");
        CHECK(tl_model_layer_info(m2, 6, &li) == TL_OK && li.precision == TL_PRECISION_INT8 && li.quantizer &&
                  !strcmp(li.quantizer, "lsq") && li.bias == NULL,
              "layer_info(6): int8 linear, lsq, no bias");
        CHECK(tl_model_layer_info(m2, 10, &li) == TL_OK && !strcmp(li.name, "head \"q\""), "a name with quotes");
        CHECK(tl_model_layer_info(m2, NBIG, &li) == TL_ERR_ARGUMENT, "layer_info past the end");
        CHECK(tl_model_matrix(m2, 2) == NULL && tl_model_matrix(m2, NBIG) == NULL, "no matrix for relu or past the end");
        /* trits and scales as given */
        int same = 1;
        for (size_t i = 0; i < NBIG; i++) {
            if (!BIG[i].trits) continue;
            const tl_matrix *mm = tl_model_matrix(m2, i);
            size_t nn = BIG[i].in * BIG[i].out;
            int8_t *t = malloc(nn);
            same &= tl_matrix_unpack(mm, t, nn) == TL_OK && memcmp(t, BIG[i].trits, nn) == 0 &&
                    memcmp(tl_matrix_scales(mm), BIG[i].scales, BIG[i].out * 4) == 0;
            free(t);
        }
        CHECK(same, "loaded trits and scales are the built ones");
        /* precision */
        tl_model *m3 = NULL;
        load_exact(b1, n1, &m3);
        CHECK(tl_model_set_precision(m3, TL_PRECISION_INT8) == TL_OK, "set_precision int8");
        tl_model_layer_info(m3, 1, &li);
        CHECK(li.precision == TL_PRECISION_INT8, "set_precision(INT8): linear layers int8");
        CHECK(tl_model_set_precision(m3, TL_PRECISION_FLOAT) == TL_OK, "set_precision float");
        tl_model_layer_info(m3, 6, &li);
        tl_precision p6 = li.precision;
        tl_model_layer_info(m3, 3, &li);
        CHECK(p6 == TL_PRECISION_FLOAT && li.precision == TL_PRECISION_INT8,
              "set_precision(FLOAT): the int8 linear is float, bitlinear stays int8");
        CHECK(tl_model_set_precision(m3, TL_PRECISION_DEFAULT) == TL_ERR_ARGUMENT &&
                  tl_model_set_precision(m3, (tl_precision)7) == TL_ERR_ARGUMENT,
              "set_precision: DEFAULT or unknown is ARGUMENT");
        /* a model with layer 6 switched to float runs as the reference with it float */
        {
            spec alt[NBIG];
            memcpy(alt, BIG, sizeof alt);
            tl_model *ma = NULL;
            for (size_t i = 0; i < NBIG; i++) alt[i].int8 = 0;
            CHECK(build_model(alt, NBIG, IN, FORMATS[fi], &ma) == TL_OK && runs_equal_bits(m3, ma, x, 3),
                  "set_precision(FLOAT) runs as the model built with float activations");
            tl_model_free(ma), ma = NULL;
            for (size_t i = 0; i < NBIG; i++) alt[i].int8 = alt[i].type == L_LINEAR;
            CHECK(tl_model_set_precision(m3, TL_PRECISION_INT8) == TL_OK &&
                      build_model(alt, NBIG, IN, FORMATS[fi], &ma) == TL_OK && runs_equal_bits(m3, ma, x, 3),
                  "set_precision(INT8) runs as the model built with int8 activations");
            tl_model_free(ma);
            tl_model_layer_info(m3, 8, &li);
            CHECK(li.precision == TL_PRECISION_INT8, "set_precision(INT8): the float linear is int8 now");
        }
        tl_model_free(m3);
        /* convert */
        for (int fj = 0; fj < 3; fj++) {
            tl_model *c = NULL;
            CHECK(tl_model_convert(m2, FORMATS[fj], &c) == TL_OK, "convert %s -> %s", fname,
                  tl_format_name(FORMATS[fj]));
            if (!c) continue;
            int ok = 1;
            for (size_t i = 0; i < NBIG; i++) {
                const tl_matrix *a = tl_model_matrix(m2, i), *bm = tl_model_matrix(c, i);
                if (!a) {
                    ok &= bm == NULL;
                    continue;
                }
                size_t nn = tl_matrix_rows(a) * tl_matrix_cols(a);
                int8_t *ta = malloc(nn), *tb = malloc(nn);
                ok &= tl_matrix_format(bm) == FORMATS[fj] && tl_matrix_unpack(a, ta, nn) == TL_OK &&
                      tl_matrix_unpack(bm, tb, nn) == TL_OK && memcmp(ta, tb, nn) == 0 &&
                      memcmp(tl_matrix_scales(a), tl_matrix_scales(bm), tl_matrix_rows(a) * 4) == 0;
                free(ta), free(tb);
            }
            CHECK(ok, "convert(%s -> %s): same trits and scales, the new format", fname, tl_format_name(FORMATS[fj]));
            CHECK(runs_near(m2, c, x, 5, 1e-6), "convert(%s -> %s): same outputs", fname, tl_format_name(FORMATS[fj]));
            char *dc = describe(c);
            tl_layer_info lc;
            tl_model_layer_info(c, 10, &lc);
            CHECK(dc && contains(dc, "\"c\":\"4\"") && lc.name && !strcmp(lc.name, "head \"q\""),
                  "convert keeps metadata and names");
            free(dc);
            tl_model_free(c);
        }
        tl_model *bad = NULL;
        CHECK(tl_model_convert(m2, (tl_format)9, &bad) == TL_ERR_FORMAT && !bad, "convert to format 9");
        tl_free(b1), tl_free(b2), free(d1), free(d2);
        tl_model_free(m), tl_model_free(m2);
    }
    spec_free(BIG, NBIG);
    CHECK(tl_mem_live_blocks() == live, "round trip: nothing held");
}

/* ---------------------------------------------------------------------------
 * 3. Errors: hand-made files, builder misuse, prefixes, out of memory
 * ------------------------------------------------------------------------- */

/* A model file: magic, version, header (padded with spaces to 16), data. */
static uint8_t *make_file(uint32_t version, const char *header, const uint8_t *data, size_t data_len, size_t *len) {
    size_t h = strlen(header), padded = (16 + h + 15) / 16 * 16 - 16;
    *len = 16 + padded + data_len;
    uint8_t *f = malloc(*len);
    memcpy(f, "TLML", 4);
    for (int i = 0; i < 4; i++) f[4 + i] = (uint8_t)(version >> (8 * i));
    for (int i = 0; i < 8; i++) f[8 + i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(f + 16, header, h);
    memset(f + 16 + h, ' ', padded - h);
    if (data_len) memcpy(f + 16 + padded, data, data_len);
    return f;
}

/* Data for a linear 8 -> 2 in i2 (16 bytes a row): packed [0,32], scales [32,8], bias [48,8]. */
static uint8_t DATA[64];
static void make_data(float bias0) {
    memset(DATA, 0, sizeof DATA);
    int8_t t[16] = {1, 0, -1, 1, 0, 0, 1, -1, -1, -1, 0, 1, 1, 0, 0, 1};
    tl_pack(TL_FORMAT_I2, t, 2, 8, DATA, 32);
    float s[2] = {0.5f, 0.25f}, b[2] = {bias0, -1.0f};
    memcpy(DATA + 32, s, 8), memcpy(DATA + 48, b, 8); /* little-endian hosts: native and wasm */
}

#define LIN8 "{\"type\":\"linear\",\"in\":8,\"out\":2,\"weights\":\"i2\",\"packed\":[0,32],\"scales\":[32,8]"

static void expect_load(uint32_t version, const char *header, size_t data_len, tl_status want, const char *needle,
                        const char *what) {
    size_t len, live = tl_mem_live_blocks(), bytes = tl_mem_live_bytes();
    uint8_t *f = make_file(version, header, DATA, data_len, &len);
    tl_model *m = (tl_model *)&len; /* must be set to NULL on failure */
    tl_error_clear();
    tl_status s = load_exact(f, len, &m);
    CHECK(s == want, "%s: %s, expected %s (%s)", what, tl_status_name(s), tl_status_name(want), tl_error_detail());
    if (s) {
        CHECK(m == NULL, "%s: no model on failure", what);
        CHECK(!needle || detail_has(needle), "%s: the detail \"%s\" names \"%s\"", what, tl_error_detail(), needle);
    } else {
        tl_model_free(m);
    }
    CHECK(tl_mem_live_blocks() == live && tl_mem_live_bytes() == bytes, "%s: nothing held", what);
    free(f);
}

static void test_file_errors(void) {
    make_data(0.5f);
    const char *ok2 = "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8
                      ",\"bias\":[48,8],\"name\":\"n\"},{\"type\":\"relu\"}]}";
    expect_load(2, ok2, 64, TL_OK, NULL, "a valid hand-made version 2 file");
    /* check its numbers: y = (trits . x) * scale + bias */
    {
        size_t len;
        uint8_t *f = make_file(2, ok2, DATA, 64, &len);
        tl_model *m = NULL;
        float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[2];
        if (load_exact(f, len, &m) == TL_OK && tl_model_run(m, x, 8, 1, y, 2) == TL_OK) {
            float y0 = (1 - 3 + 4 + 7 - 8) * 0.5f + 0.5f, y1 = (-1 - 2 + 4 + 5 + 8) * 0.25f - 1.0f;
            CHECK(y[0] == (y0 > 0 ? y0 : 0) && y[1] == (y1 > 0 ? y1 : 0), "hand-made file runs: %g %g", y[0], y[1]);
        } else {
            CHECK(0, "hand-made file loads and runs");
        }
        tl_model_free(m), free(f);
    }
    const char *ok1 = "{\"format\":\"tilelli-model\",\"version\":1,\"input\":8,\"layers\":[" LIN8
                      ",\"bias\":[48,8]},{\"type\":\"rmsnorm\",\"dim\":2}],\"metadata\":{\"k\":\"v\"}}";
    expect_load(1, ok1, 64, TL_OK, NULL, "a valid version 1 file");
    expect_load(1,
                "{\"format\":\"tilelli-model\",\"version\":1,\"input\":8,\"layers\":[" LIN8
                ",\"bias\":[48,8],\"name\":\"n\"}]}",
                64, TL_ERR_PARSE, "version 2", "a version 1 file with a name");
    expect_load(1,
                "{\"format\":\"tilelli-model\",\"version\":1,\"input\":8,\"layers\":[" LIN8
                ",\"activations\":\"int8\"}]}",
                64, TL_ERR_PARSE, "activations", "a version 1 file with activations");
    expect_load(1,
                "{\"format\":\"tilelli-model\",\"version\":1,\"input\":8,\"layers\":[" LIN8 ",\"quantizer\":\"lsq\"}]}",
                64, TL_ERR_PARSE, "quantizer", "a version 1 file with quantizer");
    expect_load(1, "{\"format\":\"tilelli-model\",\"version\":1,\"input\":8,\"layers\":[" LIN8 "},{\"type\":\"rmsnorm\"}]}",
                64, TL_ERR_PARSE, "dim", "a version 1 rmsnorm without dim");
    expect_load(2, "{\"format\":\"tilelli-model\",\"version\":3,\"input\":8,\"layers\":[" LIN8 "}]}", 64,
                TL_ERR_PARSE, "version", "header version differs from byte 4");
    expect_load(3, "{\"format\":\"tilelli-model\",\"version\":3,\"input\":8,\"layers\":[" LIN8 "}]}", 64,
                TL_ERR_VERSION, "version 3", "a version 3 file");
    expect_load(0, "{\"format\":\"tilelli-model\",\"version\":0,\"input\":8,\"layers\":[" LIN8 "}]}", 64,
                TL_ERR_PARSE, "version 0", "a version 0 file");
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8
                "},{\"type\":\"relu\",\"activation\":\"x\"}]}",
                64, TL_ERR_PARSE, "\"activation\"", "unknown layer key");
    expect_load(2, "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8 ",\"biass\":[48,8]}]}", 64,
                TL_ERR_PARSE, "biass", "unknown key on a linear layer");
    expect_load(2, "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8 "},{\"type\":\"tanh\"}]}",
                64, TL_ERR_PARSE, "tanh", "unknown layer type");
    expect_load(2, "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8 "}],\"extra\":1}", 64,
                TL_ERR_PARSE, "extra", "unknown top-level key");
    expect_load(2, "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[]}", 64, TL_ERR_PARSE,
                "layers", "no layers");
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8
                ",\"bias\":[32,8]}]}",
                64, TL_ERR_PARSE, "overlap", "bias overlapping the scales");
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8
                ",\"bias\":[16,8]}]}",
                64, TL_ERR_PARSE, "overlap", "bias inside the packed bytes");
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8
                ",\"bias\":[64,8]}]}",
                64, TL_ERR_PARSE, "runs past", "bias past the data");
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8
                ",\"bias\":[48,8]}]}",
                52, TL_ERR_PARSE, "runs past", "bias cut by the end of the file");
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8
                ",\"bias\":[40,8]}]}",
                64, TL_ERR_PARSE, "multiple of 16", "misaligned bias");
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8
                ",\"bias\":[48,12]}]}",
                64, TL_ERR_PARSE, "expected 8", "bias of the wrong length");
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":9,\"layers\":[" LIN8 "}]}",
                64, TL_ERR_PARSE, "layers[0]", "first layer's in differs from input");
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8 "}," LIN8 "}]}",
                64, TL_ERR_PARSE, "layers[1]", "width mismatch between layers");
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[{\"type\":\"binarize\","
                "\"threshold\":0},{\"type\":\"relu\"}]}",
                64, TL_ERR_PARSE, "binarize", "binarize followed by relu");
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8 "},{\"type\":\"binarize\","
                "\"k\":1}]}",
                64, TL_ERR_PARSE, "binarize", "a model ending in binarize");
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[{\"type\":\"binarize\","
                "\"k\":9}," LIN8 "}]}",
                64, TL_ERR_PARSE, "k", "k above the width");
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[{\"type\":\"binarize\","
                "\"k\":2,\"threshold\":1}," LIN8 "}]}",
                64, TL_ERR_PARSE, "exactly one", "binarize with k and threshold");
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8
                ",\"activations\":\"int4\"}]}",
                64, TL_ERR_PARSE, "activations", "activations int4");
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8
                ",\"quantizer\":\"absmax\"}]}",
                64, TL_ERR_PARSE, "quantizer", "unknown quantizer");
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[{\"type\":\"rmsnorm\",\"dim\":8,"
                "\"eps\":0}]}",
                0, TL_ERR_PARSE, "eps", "eps 0");
    {
        char h[300];
        snprintf(h, sizeof h, "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[%s",
                 "{\"type\":\"linear\",\"in\":8,\"out\":2,\"weights\":\"q4\",\"packed\":[0,32],\"scales\":[32,8]}]}");
        expect_load(2, h, 64, TL_ERR_PARSE, "weights", "unknown packed format");
    }
    /* a packed code that is no trit (i2 code 3) */
    DATA[0] = 0xFF;
    expect_load(2, "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8 "}]}", 64,
                TL_ERR_FORMAT, "packed", "invalid packed bytes");
    make_data(NAN);
    expect_load(2,
                "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8
                ",\"bias\":[48,8]}]}",
                64, TL_ERR_NON_FINITE, "bias[0]", "NaN in a bias blob");
    make_data(INFINITY);
    memcpy(DATA + 36, &(float){INFINITY}, 4);
    expect_load(2, "{\"format\":\"tilelli-model\",\"version\":2,\"input\":8,\"layers\":[" LIN8 "}]}", 64,
                TL_ERR_NON_FINITE, "scales[1]", "infinity in a scales blob");
    make_data(0.5f);
    /* the fixed part */
    {
        size_t len, live = tl_mem_live_blocks();
        uint8_t *f = make_file(2, ok2, DATA, 64, &len);
        tl_model *m = NULL;
        uint8_t save[8];
        memcpy(save, f + 8, 8);
        f[8] = 0xF0, f[9] = 0xFF, f[10] = 0xFF;
        tl_error_clear();
        CHECK(load_exact(f, len, &m) == TL_ERR_PARSE && !m && detail_has("runs past"),
              "header length past the file: %s", tl_error_detail());
        memset(f + 8, 0xFF, 8);
        CHECK(load_exact(f, len, &m) == TL_ERR_PARSE && !m, "header length 2^64 - 1");
        memcpy(f + 8, save, 8);
        f[8] = (uint8_t)(f[8] - 1);
        CHECK(load_exact(f, len, &m) == TL_ERR_PARSE && !m && detail_has("multiple of 16"),
              "header length not ending on 16: %s", tl_error_detail());
        memcpy(f + 8, save, 8);
        f[0] = 'X';
        CHECK(load_exact(f, len, &m) == TL_ERR_PARSE && !m && detail_has("TLML"), "bad magic");
        f[0] = 'T';
        f[16] = '[';
        CHECK(load_exact(f, len, &m) == TL_ERR_PARSE && !m && detail_has("JSON"), "header not JSON");
        f[16] = '{';
        CHECK(load_exact(f, len, &m) == TL_OK && m, "restored file loads");
        tl_model_free(m), m = NULL;
        CHECK(tl_model_load(NULL, 0, &m) == TL_ERR_NULL && tl_model_load(f, len, NULL) == TL_ERR_NULL, "NULLs");
        /* every prefix fails cleanly */
        int bad = 0;
        for (size_t k = 0; k < len - 8; k++) { /* the last 8 data bytes are unused */
            tl_model *p = NULL;
            tl_status s = load_exact(f, k, &p);
            bad += s == TL_OK || p != NULL || tl_mem_live_blocks() != live;
            if (p) tl_model_free(p);
        }
        CHECK(bad == 0, "every prefix of a hand-made file fails, holding nothing (%d did not)", bad);
        free(f);
    }
}

static void test_builder_errors(void) {
    size_t live = tl_mem_live_blocks();
    tl_model_builder *b = NULL;
    tl_model *m = NULL;
    int8_t t[16] = {1, 0, -1, 1, 0, 0, 1, -1, -1, -1, 0, 1, 1, 0, 0, 1};
    float sc[2] = {1, 1}, bias[3] = {0, 0, 0}, w8[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    tl_matrix *m28 = NULL, *m23 = NULL;
    tl_matrix_from_trits(TL_FORMAT_I2, t, 2, 8, sc, 2, &m28);
    tl_matrix_from_trits(TL_FORMAT_TQ1, t, 2, 3, sc, 2, &m23);
    CHECK(tl_model_builder_new(0, &b) == TL_ERR_EMPTY && !b, "builder of width 0");
    CHECK(tl_model_builder_new(TL_MAX_ELEMENTS + 1, &b) == TL_ERR_OVERFLOW && !b, "builder too wide");
    CHECK(tl_model_builder_new(8, &b) == TL_OK, "builder");
#define ADD(j, mm) tl_model_builder_add(b, j, strlen(j), mm)
    tl_error_clear();
    CHECK(ADD("{\"type\":\"linear\"}", NULL) == TL_ERR_ARGUMENT && detail_has("matrix"), "linear without matrix: %s",
          tl_error_detail());
    CHECK(ADD("{\"type\":\"relu\"}", m28) == TL_ERR_ARGUMENT && detail_has("no matrix"), "relu with a matrix: %s",
          tl_error_detail());
    CHECK(tl_model_builder_stage(b, "bias", 4, bias, 2) == TL_OK, "stage");
    CHECK(ADD("{\"type\":\"relu\"}", NULL) == TL_ERR_ARGUMENT && detail_has("\"bias\""),
          "a staged parameter the layer does not take: %s", tl_error_detail());
    CHECK(tl_model_builder_stage(b, "norm_weight", 11, w8, 8) == TL_OK, "stage norm_weight");
    CHECK(ADD("{\"type\":\"linear\"}", m28) == TL_ERR_ARGUMENT && detail_has("norm_weight"),
          "norm_weight staged for linear: %s", tl_error_detail());
    CHECK(tl_model_builder_stage(b, "bias", 4, bias, 3) == TL_OK, "stage 3 biases");
    CHECK(ADD("{\"type\":\"linear\"}", m28) == TL_ERR_SIZE && detail_has("bias"), "bias of the wrong length: %s",
          tl_error_detail());
    float nan2[2] = {0, NAN};
    CHECK(tl_model_builder_stage(b, "bias", 4, nan2, 2) == TL_ERR_NON_FINITE && detail_has("bias[1]"),
          "staging a NaN: %s", tl_error_detail());
    CHECK(ADD("{\"type\":\"linear\",\"in\":8}", m28) == TL_ERR_PARSE && detail_has("\"in\""),
          "a builder layer with a file key: %s", tl_error_detail());
    CHECK(ADD("{\"type\":\"conv\"}", NULL) == TL_ERR_PARSE && detail_has("conv"), "unknown type: %s",
          tl_error_detail());
    CHECK(ADD("{\"type\":\"relu\",\"k\":1}", NULL) == TL_ERR_PARSE && detail_has("\"k\""), "relu with k: %s",
          tl_error_detail());
    CHECK(ADD("{\"type\":", NULL) == TL_ERR_PARSE, "not JSON");
    CHECK(ADD("{\"type\":\"linear\"}", m23) == TL_ERR_PARSE && detail_has("takes 3 inputs"),
          "width mismatch: %s", tl_error_detail());
    CHECK(ADD("{\"type\":\"binarize\",\"k\":0}", NULL) == TL_ERR_PARSE, "k 0");
    CHECK(ADD("{\"type\":\"binarize\",\"threshold\":\"1\"}", NULL) == TL_ERR_PARSE, "threshold a string");
    CHECK(ADD("{\"type\":\"rmsnorm\",\"dim\":7}", NULL) == TL_ERR_PARSE && detail_has("dim"), "rmsnorm dim 7: %s",
          tl_error_detail());
    CHECK(ADD("{\"type\":\"bitlinear\",\"eps\":1}", m28) == TL_ERR_PARSE && detail_has("eps"), "eps 1");
    CHECK(ADD("{\"type\":\"relu\",\"name\":3}", NULL) == TL_ERR_PARSE && detail_has("name"), "name not a string");
    CHECK(tl_model_builder_finish(b, &m) == TL_ERR_PARSE && !m, "finish with no layers");
    CHECK(ADD("{\"type\":\"binarize\",\"threshold\":0}", NULL) == TL_OK, "binarize");
    CHECK(tl_model_builder_finish(b, &m) == TL_ERR_PARSE && !m && detail_has("binarize"), "a model ending in binarize");
    CHECK(ADD("{\"type\":\"relu\"}", NULL) == TL_ERR_PARSE && detail_has("followed by a linear"),
          "binarize followed by relu: %s", tl_error_detail());
    CHECK(ADD("{\"type\":\"bitlinear\"}", m28) == TL_ERR_PARSE, "binarize followed by bitlinear");
    CHECK(ADD("{\"type\":\"linear\"}", m28) == TL_OK, "binarize followed by linear");
    CHECK(tl_model_builder_finish(b, &m) == TL_OK && m, "finish");
    /* the builder is empty again and reusable */
    tl_model *m2 = NULL;
    CHECK(tl_model_builder_finish(b, &m2) == TL_ERR_PARSE && !m2, "a finished builder is empty");
    CHECK(ADD("{\"type\":\"softmax\"}", NULL) == TL_OK && tl_model_builder_finish(b, &m2) == TL_OK &&
              tl_model_output_size(m2) == 8,
          "the builder builds again");
    /* running: bad arguments */
    float x[16] = {0}, y[4];
    CHECK(tl_model_run(m, x, 8, 0, y, 0) == TL_ERR_EMPTY, "batch 0");
    CHECK(tl_model_run(m, x, 7, 1, y, 2) == TL_ERR_SIZE, "x_len wrong");
    CHECK(tl_model_run(m, x, 8, 1, y, 3) == TL_ERR_SIZE, "out_len wrong");
    x[3] = NAN;
    CHECK(tl_model_run(m, x, 8, 1, y, 2) == TL_ERR_NON_FINITE && detail_has("input[3]"), "NaN input: %s",
          tl_error_detail());
    x[3] = 0;
    CHECK(tl_model_run(m, x, 8, SIZE_MAX / 2, y, 2) == TL_ERR_OVERFLOW, "a huge batch");
    tl_model_free(m), tl_model_free(m2);
    /* an eps that is 0 in float32 must not reach the runtime: rmsnorm of zeros would be 0 * inf */
    {
        tl_model *me = NULL;
        tl_status s = ADD("{\"type\":\"rmsnorm\",\"eps\":1e-50}", NULL);
        CHECK(s == TL_ERR_PARSE && detail_has("eps"), "rmsnorm eps 1e-50 (0 as float32): %s %s", tl_status_name(s),
              tl_error_detail());
        CHECK(ADD("{\"type\":\"bitlinear\",\"eps\":1e-46}", m28) == TL_ERR_PARSE, "bitlinear eps 1e-46");
        if (s == TL_OK && tl_model_builder_finish(b, &me) == TL_OK) {
            float z[8] = {0}, o[8];
            tl_status r = tl_model_run(me, z, 8, 1, o, 8);
            CHECK(r != TL_OK || (isfinite(o[0]) && o[0] == 0),
                  "rmsnorm eps 1e-50 (0 as float32) was accepted, and zeros run to %g with status %s", o[0],
                  tl_status_name(r));
        }
        tl_model_free(me);
    }
    tl_model_builder_free(b);
#undef ADD
    tl_matrix_free(m28), tl_matrix_free(m23);
    CHECK(tl_mem_live_blocks() == live, "builder errors: nothing held (%zu, %zu)", tl_mem_live_blocks(), live);
}

/* Every prefix of a full saved model fails cleanly; byte flips in its header never crash. */
/* The fast validation at load (tl_matrix_from_packed, the loader) refuses exactly what the
 * validating unpack (tl_unpack) refuses: valid packings with bits flipped, random bytes, bad
 * padding, over widths around every block size. */
static void test_fast_validation(void) {
    static const size_t widths[] = {1, 5, 8, 9, 63, 64, 65, 79, 80, 81, 127, 128, 129, 200, 256, 300};
    size_t live = tl_mem_live_blocks();
    int disagree = 0, valid = 0, invalid = 0;
    for (int fi = 0; fi < 3; fi++) {
        for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++) {
            size_t rows = 3, cols = widths[wi], bytes = 0;
            tl_format_bytes(FORMATS[fi], rows, cols, &bytes);
            int8_t *t = rand_trits(rows * cols), *back = malloc(rows * cols);
            uint8_t *good = malloc(bytes), *p = tl_alloc(bytes);
            float scale = 1;
            tl_pack(FORMATS[fi], t, rows, cols, good, bytes);
            for (int trial = 0; trial < 200; trial++) {
                memcpy(p, good, bytes);
                if (trial % 4 == 3) { /* random bytes */
                    for (size_t i = 0; i < bytes; i++) p[i] = (uint8_t)check_rnd();
                } else if (trial) { /* a few flipped bits, anywhere (padding included) */
                    for (int k = 0; k <= trial % 3; k++) {
                        size_t bit = check_rnd() % (bytes * 8);
                        p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                    }
                }
                tl_status u = tl_unpack(FORMATS[fi], p, bytes, rows, cols, back);
                tl_matrix *m = NULL;
                tl_status v = tl_matrix_from_packed(FORMATS[fi], p, bytes, rows, cols, &scale, 1, &m);
                disagree += !((u == TL_OK && v == TL_OK) || (u == TL_ERR_FORMAT && v == TL_ERR_FORMAT));
                valid += u == TL_OK, invalid += u != TL_OK;
                tl_matrix_free(m);
            }
            free(t), free(back), free(good), tl_free(p);
        }
    }
    CHECK(disagree == 0 && valid > 500 && invalid > 500,
          "fast validation == validating unpack: %d disagreements (%d valid, %d invalid inputs)", disagree, valid,
          invalid);
    /* every tq1 byte value, alone in a row of 80 (no padding) */
    int tq1_bad = 0;
    for (unsigned q = 0; q < 256; q++) {
        uint8_t row[16];
        int8_t trits[80];
        memset(row, 0, sizeof row);
        tl_pack(TL_FORMAT_TQ1, (int8_t[80]){0}, 1, 80, row, 16);
        row[q % 16] = (uint8_t)q;
        float one = 1;
        tl_matrix *m = NULL;
        tl_status u = tl_unpack(TL_FORMAT_TQ1, row, 16, 1, 80, trits);
        tq1_bad += u != tl_matrix_from_packed(TL_FORMAT_TQ1, row, 16, 1, 80, &one, 1, &m);
        tl_matrix_free(m);
    }
    CHECK(tq1_bad == 0, "tq1: all 256 byte values judged as the unpack judges them (%d differ)", tq1_bad);
    CHECK(tl_mem_live_blocks() == live, "fast validation holds nothing");
}

/* tl_model_load_owned's own refusals: no buffer, a misaligned one, a bad file (left as it was). */
static void test_load_owned_errors(void) {
    size_t live = tl_mem_live_blocks();
    spec_fill(BIG, NBIG, IN);
    tl_model *m = NULL;
    uint8_t *b = NULL;
    size_t n = 0;
    if (build_model(BIG, NBIG, IN, TL_FORMAT_I2, &m) || tl_model_save(m, &b, &n)) {
        CHECK(0, "owned-errors model");
        return;
    }
    tl_model *p = (tl_model *)1;
    CHECK(tl_model_load_owned(NULL, n, &p) == TL_ERR_NULL, "load_owned(NULL)");
    CHECK(tl_model_load_owned(b, n, NULL) == TL_ERR_NULL, "load_owned(.., NULL)");
    uint8_t *shifted = tl_alloc(n + 16);
    memcpy(shifted + 1, b, n);
    CHECK(tl_model_load_owned(shifted + 1, n, &p) == TL_ERR_ARGUMENT && p == NULL && detail_has("aligned"),
          "load_owned of a misaligned buffer: %s", tl_error_detail());
    tl_free(shifted);
    /* a packed byte made invalid: TL_ERR_FORMAT with where, the buffer unchanged and the caller's */
    const tl_matrix *w = tl_model_matrix(m, 1);
    uint8_t *own = tl_alloc(n);
    memcpy(own, b, n);
    /* the first packed blob of layer 1 starts where save put it: find it by its bytes */
    size_t pb = tl_matrix_data_bytes(w), off = 0;
    uint8_t *pk = tl_alloc(pb);
    CHECK(tl_matrix_packed(w, pk, pb) == TL_OK, "layer 1's packed bytes");
    for (size_t i = 16; i + pb <= n; i += 16)
        if (memcmp(own + i, pk, pb) == 0) {
            off = i;
            break;
        }
    tl_free(pk);
    CHECK(off != 0, "the packed bytes of layer 1 are in the file");
    own[off] = 0xFF; /* four codes 3 */
    uint8_t *want = malloc(n);
    memcpy(want, own, n);
    size_t blocks = tl_mem_live_blocks();
    tl_status s = tl_model_load_owned(own, n, &p);
    CHECK(s == TL_ERR_FORMAT && p == NULL && detail_has("layers[1].packed"), "load_owned of bad codes: %s %s",
          tl_status_name(s), tl_error_detail());
    CHECK(memcmp(own, want, n) == 0 && tl_mem_live_blocks() == blocks, "a refused buffer is left as it was");
    tl_free(own), free(want);
    /* 2 MiB that no layer names after the data: the weights are copied out and the file freed */
    float x[5 * IN];
    fill_inputs(x, 5, 0);
    runs_equal_bits(m, m, x, 5); /* m's workspace, grown now, not counted below */
    size_t pad = (size_t)2 << 20, before = tl_mem_live_bytes();
    own = tl_alloc(n + pad);
    memcpy(own, b, n);
    memset(own + n, 0, pad);
    s = tl_model_load_owned(own, n + pad, &p);
    CHECK(s == TL_OK && tl_mem_live_bytes() - before < n + 4096,
          "load_owned of a file mostly unused keeps only the model's bytes: %s, %zu bytes held for a %zu-byte model",
          tl_status_name(s), tl_mem_live_bytes() - before, n);
    CHECK(s == TL_OK && runs_equal_bits(m, p, x, 5), "and runs as the model");
    tl_model_free(p);
    CHECK(tl_mem_live_bytes() == before, "all of it released");
    tl_free(b), tl_model_free(m);
    spec_free(BIG, NBIG);
    CHECK(tl_mem_live_blocks() == live, "load_owned errors hold nothing");
}

static void test_prefixes(void) {
    spec_fill(BIG, NBIG, IN);
    tl_model *m = NULL;
    uint8_t *b = NULL;
    size_t n = 0;
    if (build_model(BIG, NBIG, IN, TL_FORMAT_TQ1, &m) || tl_model_save(m, &b, &n)) {
        CHECK(0, "prefix model");
        return;
    }
    size_t live = tl_mem_live_blocks(), bytes = tl_mem_live_bytes();
    int bad = 0;
    for (size_t k = 0; k < n; k++) {
        tl_model *p = NULL;
        tl_status s = load_exact(b, k, &p);
        bad += s == TL_OK || p != NULL || !tl_is_error(s) || tl_mem_live_blocks() != live ||
               tl_mem_live_bytes() != bytes;
        tl_model_free(p);
        /* in place: the same refusal, and the buffer stays the caller's, unchanged */
        uint8_t *own = tl_alloc(k ? k : 1);
        if (k) memcpy(own, b, k);
        tl_status s2 = tl_model_load_owned(own, k, &p);
        bad += s2 != s || p != NULL || (k && memcmp(own, b, k) != 0);
        tl_free(own);
    }
    CHECK(bad == 0, "every prefix of a %zu-byte file fails, holding nothing (%d did not)", n, bad);
    /* flips in the header: any status, no crash, no leak */
    uint8_t *c = heap_copy(b, n);
    for (size_t k = 4; k < 16 + 400 && k < n; k++) {
        uint8_t old = c[k];
        c[k] ^= (uint8_t)(1u << (k % 8));
        tl_model *p = NULL;
        if (tl_model_load(c, n, &p) == TL_OK) tl_model_free(p);
        c[k] = old;
    }
    free(c);
    CHECK(tl_mem_live_blocks() == live && tl_mem_live_bytes() == bytes, "prefixes and flips hold nothing");
    tl_free(b), tl_model_free(m);
    spec_free(BIG, NBIG);
}

/* ---------------------------------------------------------------------------
 * 4. An architecture over a safetensors checkpoint
 * ------------------------------------------------------------------------- */

typedef struct {
    uint8_t *bytes;
    size_t len;
} sfile;

static uint16_t f2bf16(float f) { return (uint16_t)(f2u(f) >> 16); } /* truncation: the value is then exact */
static float bf16f(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* fc1.weight F32 [6,10], fc1.bias F32 [6], fc2.weight BF16 [3,6], fc2.bias F16 [3], odd F32 [5]. */
static float FC1W[60], FC1B[6], FC2W[18], FC2B[3] = {0.5f, -0.25f, 1.0f};
static sfile make_checkpoint(void) {
    static const uint16_t fc2b_f16[3] = {0x3800, 0xB400, 0x3C00};
    for (int i = 0; i < 60; i++) FC1W[i] = frand(-1, 1);
    for (int i = 0; i < 6; i++) FC1B[i] = frand(-0.5f, 0.5f);
    uint8_t data[60 * 4 + 6 * 4 + 18 * 2 + 3 * 2 + 5 * 4];
    size_t at = 0;
    memcpy(data + at, FC1W, 240), at += 240;
    memcpy(data + at, FC1B, 24), at += 24;
    for (int i = 0; i < 18; i++) {
        uint16_t h = f2bf16(frand(-1, 1));
        FC2W[i] = bf16f(h);
        data[at++] = (uint8_t)h, data[at++] = (uint8_t)(h >> 8);
    }
    for (int i = 0; i < 3; i++) data[at++] = (uint8_t)fc2b_f16[i], data[at++] = (uint8_t)(fc2b_f16[i] >> 8);
    memset(data + at, 0, 20), at += 20;
    char h[600];
    int hn = snprintf(h, sizeof h,
                      "{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[6,10],\"data_offsets\":[0,240]},"
                      "\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[240,264]},"
                      "\"fc2.weight\":{\"dtype\":\"BF16\",\"shape\":[3,6],\"data_offsets\":[264,300]},"
                      "\"fc2.bias\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[300,306]},"
                      "\"odd\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[306,326]},"
                      "\"__metadata__\":{\"format\":\"pt\"}}");
    sfile f;
    f.len = 8 + (size_t)hn + at;
    f.bytes = malloc(f.len);
    for (int k = 0; k < 8; k++) f.bytes[k] = (uint8_t)((uint64_t)hn >> (8 * k));
    memcpy(f.bytes + 8, h, (size_t)hn), memcpy(f.bytes + 8 + hn, data, at);
    return f;
}

static const char *ARCH =
    "{\"input\":10,\"layers\":[{\"type\":\"linear\",\"name\":\"fc1\",\"weight\":\"fc1.weight\",\"bias\":\"fc1.bias\","
    "\"quantizer\":\"per_tensor\"},{\"type\":\"relu\"},{\"type\":\"linear\",\"weight\":\"fc2.weight\",\"bias\":"
    "\"fc2.bias\",\"quantizer\":\"per_row\",\"activations\":\"int8\",\"format\":\"tq1\"}],\"metadata\":{\"src\":"
    "\"t\"}}";

static tl_status from_ckpt(const tl_safetensors *st, const char *arch, tl_format f, tl_precision p, tl_model **m) {
    char *c = malloc(strlen(arch));
    memcpy(c, arch, strlen(arch));
    tl_status s = tl_model_from_checkpoint(st, c, strlen(arch), f, p, m);
    free(c);
    return s;
}

/* arch with `from` replaced by `to` (first occurrence) */
static char *arch_edit(const char *from, const char *to) {
    const char *p = strstr(ARCH, from);
    size_t n = strlen(ARCH) - strlen(from) + strlen(to);
    char *s = malloc(n + 1);
    size_t pre = (size_t)(p - ARCH);
    memcpy(s, ARCH, pre), strcpy(s + pre, to), strcat(s, p + strlen(from));
    return s;
}

static void expect_ckpt(const tl_safetensors *st, const char *from, const char *to, tl_status want, const char *needle,
                        const char *what) {
    char *a = arch_edit(from, to);
    size_t live = tl_mem_live_blocks();
    tl_model *m = (tl_model *)a;
    tl_error_clear();
    tl_status s = from_ckpt(st, a, TL_FORMAT_I2, TL_PRECISION_DEFAULT, &m);
    CHECK(s == want && m == NULL, "%s: %s, expected %s (%s)", what, tl_status_name(s), tl_status_name(want),
          tl_error_detail());
    CHECK(!needle || detail_has(needle), "%s: the detail \"%s\" names \"%s\"", what, tl_error_detail(), needle);
    CHECK(tl_mem_live_blocks() == live, "%s: nothing held", what);
    if (!s) tl_model_free(m);
    free(a);
}

static void test_checkpoint(void) {
    sfile f = make_checkpoint();
    tl_safetensors *st = NULL;
    CHECK(tl_safetensors_open(f.bytes, f.len, &st) == TL_OK, "the test checkpoint opens: %s", tl_error_detail());
    if (!st) {
        free(f.bytes);
        return;
    }
    size_t live = tl_mem_live_blocks();
    int8_t t1[60], t2[18];
    float a1, a2[3];
    int64_t shape2[2] = {3, 6};
    tl_ternary_signs(FC1W, 60, t1, &a1);
    tl_ternary_signs_per_row(FC2W, 18, shape2, 2, t2, a2);
    for (int fi = 0; fi < 3; fi++) {
        tl_model *m = NULL;
        tl_status s = from_ckpt(st, ARCH, FORMATS[fi], TL_PRECISION_DEFAULT, &m);
        CHECK(s == TL_OK, "from_checkpoint (%s): %s %s", tl_format_name(FORMATS[fi]), tl_status_name(s),
              tl_error_detail());
        if (s) continue;
        tl_layer_info l0, l2;
        tl_model_layer_info(m, 0, &l0), tl_model_layer_info(m, 2, &l2);
        int8_t g1[60], g2[18];
        tl_matrix_unpack(l0.matrix, g1, 60), tl_matrix_unpack(l2.matrix, g2, 18);
        int sc1 = 1;
        for (int r = 0; r < 6; r++) sc1 &= f2u(tl_matrix_scales(l0.matrix)[r]) == f2u(a1);
        CHECK(!memcmp(g1, t1, 60) && sc1, "per_tensor layer: tl_ternary_signs' trits and scale");
        CHECK(!memcmp(g2, t2, 18) && !memcmp(tl_matrix_scales(l2.matrix), a2, 12),
              "per_row layer (BF16 weights): tl_ternary_signs_per_row's trits and scales");
        CHECK(l0.format == FORMATS[fi] && l2.format == TL_FORMAT_TQ1, "format: the default, and the layer's own");
        CHECK(l0.precision == TL_PRECISION_FLOAT && l2.precision == TL_PRECISION_INT8, "precision per layer");
        CHECK(!strcmp(l0.quantizer, "per_tensor") && !strcmp(l2.quantizer, "per_row") && !strcmp(l0.name, "fc1"),
              "quantizers and name recorded");
        CHECK(!memcmp(l0.bias, FC1B, 24) && !memcmp(l2.bias, FC2B, 12), "biases: F32 as is, F16 widened exactly");
        /* and it runs as the reference of those trits */
        spec sp[3] = {{.type = L_LINEAR, .out = 6}, {.type = L_RELU}, {.type = L_LINEAR, .out = 3, .int8 = 1}};
        sp[0].in = 10, sp[1].in = 6, sp[1].out = 6, sp[2].in = 6;
        float sc1v[6];
        for (int r = 0; r < 6; r++) sc1v[r] = a1;
        sp[0].trits = t1, sp[0].scales = sc1v, sp[0].bv = FC1B;
        sp[2].trits = t2, sp[2].scales = a2, sp[2].bv = FC2B;
        float x[20], y[6];
        double want[6], worst = 0;
        for (int i = 0; i < 20; i++) x[i] = frand(-1, 1);
        for (int t = 0; t < 2; t++) ref_forward(sp, 3, 10, x + 10 * t, want + 3 * t);
        CHECK(tl_model_run(m, x, 20, 2, y, 6) == TL_OK && near_rows(y, want, 2, 3, 1e-5, &worst),
              "checkpoint model runs as its reference (worst %.3g)", worst);
        tl_model_free(m);
    }
    tl_model *m = NULL;
    CHECK(from_ckpt(st, ARCH, TL_FORMAT_BITPLANE, TL_PRECISION_INT8, &m) == TL_OK, "precision int8");
    tl_layer_info l0;
    tl_model_layer_info(m, 0, &l0);
    CHECK(l0.precision == TL_PRECISION_INT8, "precision INT8 sets every linear layer");
    tl_model_free(m), m = NULL;
    expect_ckpt(st, "\"fc2.weight\"", "\"fc9.weight\"", TL_ERR_ARGUMENT, "fc9.weight", "missing tensor");
    expect_ckpt(st, "\"bias\":\"fc1.bias\"", "\"bias\":\"odd\"", TL_ERR_SHAPE, "odd", "bias of the wrong size");
    expect_ckpt(st, "\"weight\":\"fc1.weight\"", "\"weight\":\"fc1.bias\"", TL_ERR_SHAPE, "fc1.bias",
                "a 1-D weight");
    expect_ckpt(st, "\"weight\":\"fc2.weight\"", "\"weight\":\"fc1.weight\"", TL_ERR_PARSE, "layers[2]",
                "weights of the wrong input width");
    expect_ckpt(st, "\"quantizer\":\"per_row\"", "\"quantizer\":\"lsq\"", TL_ERR_ARGUMENT, "quantizer",
                "lsq refused");
    expect_ckpt(st, "\"quantizer\":\"per_row\"", "\"quantiser\":\"per_row\"", TL_ERR_PARSE, "quantiser",
                "unknown layer key");
    expect_ckpt(st, "\"metadata\"", "\"meta\"", TL_ERR_PARSE, "meta", "unknown top-level key");
    expect_ckpt(st, "\"format\":\"tq1\"", "\"format\":\"tq2\"", TL_ERR_PARSE, "format", "unknown format");
    expect_ckpt(st, "\"format\":\"tq1\"", "\"packed\":[0,1]", TL_ERR_PARSE, "packed", "a file key");
    expect_ckpt(st, "\"input\":10", "\"input\":11", TL_ERR_PARSE, "layers[0]", "input width mismatch");
    expect_ckpt(st, "{\"type\":\"relu\"}", "{\"type\":\"relu\",\"weight\":\"fc1.weight\"}", TL_ERR_PARSE, "weight",
                "relu naming a tensor");
    m = (tl_model *)st;
    CHECK(from_ckpt(st, ARCH, (tl_format)0, TL_PRECISION_DEFAULT, &m) == TL_ERR_FORMAT && !m, "format 0");
    CHECK(tl_mem_live_blocks() == live, "checkpoint: nothing held");
    tl_safetensors_free(st);
    free(f.bytes);
}

/* ---------------------------------------------------------------------------
 * 5. Training
 * ------------------------------------------------------------------------- */

#define NS 60
#define NIN 8
#define NCL 3
static float DX[NS * NIN];
static uint32_t DY[NS];

static void make_dataset(void) {
    float centers[NCL][NIN];
    for (int k = 0; k < NCL; k++)
        for (int i = 0; i < NIN; i++) centers[k][i] = (check_rnd() & 1) ? 1.5f : -1.5f;
    centers[1][0] = -centers[0][0]; /* distinct centers whatever the draw */
    centers[2][1] = -centers[0][1], centers[2][0] = centers[0][0];
    for (int s = 0; s < NS; s++) {
        DY[s] = (uint32_t)(s % NCL);
        for (int i = 0; i < NIN; i++) DX[s * NIN + i] = centers[DY[s]][i] + frand(-0.4f, 0.4f);
    }
}

static tl_net *make_net(tl_quantizer q, uint64_t seed) {
    uint32_t widths[3] = {NIN, 16, NCL};
    tl_net *net = NULL;
    if (tl_net_create(2, widths, TL_ACT_RELU, q, seed, &net)) return NULL;
    tl_net_set_optimizer(net, TL_OPT_ADAM, 0.02f, 0.9f, 0.999f, 1e-8f, 0, 0);
    return net;
}

static int fit_epochs(tl_net *net, uint64_t seed, int epochs, float *last_loss) {
    tl_fit *f = NULL;
    if (tl_fit_new(net, DX, NS, DY, NULL, 16, seed, &f)) return 0;
    int ok = 1;
    while (tl_fit_epoch(f) < (uint32_t)epochs && ok) ok = tl_fit_step(f, last_loss) == TL_OK;
    tl_fit_free(f);
    return ok;
}

static void test_training(void) {
    size_t live = tl_mem_live_blocks();
    make_dataset();
    tl_net *net = make_net(TL_QUANT_PER_TENSOR, 7);
    CHECK(net != NULL, "tl_net_create");
    if (!net) return;
    double acc0, loss0, acc1, loss1;
    CHECK(tl_net_evaluate(net, DX, NS, DY, &acc0, &loss0) == TL_OK, "evaluate");
    tl_fit *f = NULL;
    CHECK(tl_fit_new(net, DX, NS, DY, NULL, 16, 99, &f) == TL_OK, "fit_new");
    CHECK(tl_fit_epoch(f) == 0 && tl_fit_position(f) == 0, "a new fit: epoch 0, position 0");
    float loss;
    size_t want_pos[4] = {16, 32, 48, 0};
    int pos_ok = 1;
    for (int i = 0; i < 4; i++) {
        pos_ok &= tl_fit_step(f, &loss) == TL_OK && tl_fit_position(f) == want_pos[i] &&
                  tl_fit_epoch(f) == (i == 3 ? 1u : 0u);
    }
    CHECK(pos_ok, "positions 16, 32, 48, then 0 and epoch 1 (the last batch holds 12)");
    CHECK(tl_net_steps(net) == 4, "4 optimizer steps: %u", tl_net_steps(net));
    double ba;
    CHECK(tl_fit_evaluate(f, 0, &ba, NULL) == TL_OK && ba >= 0 && ba <= 1 && fabs(ba * 12 - round(ba * 12)) < 1e-9,
          "fit_evaluate(last batch) is over the 12 samples of the last batch (%g)", ba);
    while (tl_fit_epoch(f) < 25) tl_fit_step(f, &loss);
    tl_fit_free(f);
    CHECK(tl_net_evaluate(net, DX, NS, DY, &acc1, &loss1) == TL_OK, "evaluate after");
    CHECK(loss1 < loss0 * 0.5 && acc1 > acc0 && acc1 >= 0.95, "training learns: loss %.4f -> %.4f, accuracy %.3f -> %.3f",
          loss0, loss1, acc0, acc1);
    /* determinism */
    tl_net *n1 = make_net(TL_QUANT_PER_ROW, 3), *n2 = make_net(TL_QUANT_PER_ROW, 3), *n3 = make_net(TL_QUANT_PER_ROW, 3);
    float l1 = 0, l2 = 0, l3 = 0;
    CHECK(fit_epochs(n1, 5, 3, &l1) && fit_epochs(n2, 5, 3, &l2) && fit_epochs(n3, 6, 3, &l3), "three fits");
    float w1[16 * NIN], w2[16 * NIN], w3[16 * NIN], b1[16], b2[16];
    tl_net_get_layer(n1, 0, w1, b1, NULL), tl_net_get_layer(n2, 0, w2, b2, NULL), tl_net_get_layer(n3, 0, w3, NULL, NULL);
    CHECK(!memcmp(w1, w2, sizeof w1) && !memcmp(b1, b2, sizeof b1) && f2u(l1) == f2u(l2),
          "two fits with the same seeds: bit-identical weights and loss");
    CHECK(memcmp(w1, w3, sizeof w1) != 0, "another shuffle seed gives other weights");
    tl_net_free(n1), tl_net_free(n2), tl_net_free(n3);
    /* one thread and every thread of the build (a threaded build splits every product, slice and
     * check of a step here: tl__par_min_work is 0) train the same bits, for every quantizer */
    for (tl_quantizer q = TL_QUANT_NONE; q <= TL_QUANT_LSQ_PAPER; q++) {
        uint32_t nth = tl_threads();
        tl_net *one = make_net(q, 11), *all = make_net(q, 11);
        CHECK(one && all, "make_net");
        if (!one || !all) break;
        if (q == TL_QUANT_PER_ROW) tl_net_set_tequila(one, 1e-3f), tl_net_set_tequila(all, 1e-3f);
        float la = 0, lb = 0;
        tl_threads_set(1);
        int ok = fit_epochs(one, 5, 2, &la);
        tl_threads_set(nth);
        ok = ok && fit_epochs(all, 5, 2, &lb);
        int same = ok && f2u(la) == f2u(lb);
        for (uint32_t k = 0; k < 2 && same; k++) {
            size_t n = k ? 16 * NCL : 16 * NIN, o = k ? NCL : 16;
            float *wa = malloc(n * 4), *wb = malloc(n * 4), ba_[16], bb_[16], aa = 0, ab = 0;
            same = wa && wb && tl_net_get_layer(one, k, wa, ba_, &aa) == TL_OK &&
                   tl_net_get_layer(all, k, wb, bb_, &ab) == TL_OK && !memcmp(wa, wb, n * 4) &&
                   !memcmp(ba_, bb_, o * 4) && f2u(aa) == f2u(ab);
            free(wa), free(wb);
        }
        CHECK(same, "quantizer %d: 1 thread and %u train the same bits", (int)q, nth);
        tl_net_free(one), tl_net_free(all);
    }
    /* deadzone stats are the quantizer module's of the shadow weights */
    {
        float w[16 * NIN];
        tl_deadzone_stats a, b;
        tl_net_get_layer(net, 0, w, NULL, NULL);
        CHECK(tl_net_deadzone_stats(net, 0, 0.05, &a) == TL_OK && tl_deadzone_stats_compute(w, 16 * NIN, 0.05, &b) == TL_OK &&
                  a.n_zero == b.n_zero && a.n_pos == b.n_pos && a.alpha == b.alpha && a.n_boundary == b.n_boundary,
              "net deadzone_stats");
        CHECK(tl_net_deadzone_stats(net, 2, 0.05, &a) == TL_ERR_ARGUMENT, "deadzone_stats of layer 2");
    }
    /* errors at fit_new */
    {
        uint32_t badl[NS];
        memcpy(badl, DY, sizeof badl);
        badl[7] = 3;
        tl_fit *g = (tl_fit *)&badl;
        tl_error_clear();
        CHECK(tl_fit_new(net, DX, NS, badl, NULL, 16, 1, &g) == TL_ERR_ARGUMENT && !g && detail_has("labels[7]"),
              "a label out of range: %s", tl_error_detail());
        float *bx = malloc(sizeof DX);
        memcpy(bx, DX, sizeof DX);
        bx[5 * NIN + 2] = NAN;
        CHECK(tl_fit_new(net, bx, NS, DY, NULL, 16, 1, &g) == TL_ERR_NON_FINITE && !g && detail_has("sample 5"),
              "a NaN input: %s", tl_error_detail());
        bx[5 * NIN + 2] = INFINITY;
        CHECK(tl_fit_new(net, bx, NS, DY, NULL, 16, 1, &g) == TL_ERR_NON_FINITE, "an infinite input");
        free(bx);
        float targets[NS * NCL] = {0};
        CHECK(tl_fit_new(net, DX, NS, DY, targets, 16, 1, &g) == TL_ERR_ARGUMENT, "labels and targets");
        CHECK(tl_fit_new(net, DX, NS, NULL, targets, 16, 1, &g) == TL_ERR_ARGUMENT && detail_has("MSE"),
              "targets with cross-entropy: %s", tl_error_detail());
        CHECK(tl_fit_new(net, DX, NS, DY, NULL, 0, 1, &g) == TL_ERR_EMPTY, "batch 0");
        CHECK(tl_fit_new(net, DX, 0, DY, NULL, 16, 1, &g) == TL_ERR_EMPTY, "no samples");
        CHECK(tl_net_evaluate(net, DX, NS, badl, NULL, NULL) == TL_ERR_ARGUMENT && detail_has("labels[7]"),
              "evaluate: a label out of range");
        /* a batch larger than the data set: one step is one epoch */
        CHECK(tl_fit_new(net, DX, 10, DY, NULL, 64, 1, &g) == TL_OK && tl_fit_step(g, NULL) == TL_OK &&
                  tl_fit_epoch(g) == 1 && tl_fit_position(g) == 0,
              "batch above n: one step per epoch");
        tl_fit_free(g);
    }
    tl_net_free(net);
    /* creation limits: checked before anything is allocated */
    {
        size_t bytes = tl_mem_live_bytes(), blocks = tl_mem_live_blocks();
        uint32_t wide[3] = {32768, 32769, 2};
        tl_net *w = (tl_net *)wide;
        CHECK(tl_net_create(2, wide, TL_ACT_RELU, TL_QUANT_PER_ROW, 1, &w) == TL_ERR_OVERFLOW && !w &&
                  tl_mem_live_bytes() == bytes && tl_mem_live_blocks() == blocks,
              "32768 x 32769 weights: OVERFLOW, nothing allocated");
        uint32_t wide2[3] = {4, 40000, 40000};
        CHECK(tl_net_create(2, wide2, TL_ACT_RELU, TL_QUANT_PER_ROW, 1, &w) == TL_ERR_OVERFLOW && !w &&
                  tl_mem_live_bytes() == bytes,
              "a later layer past 2^30 - 1: OVERFLOW before allocating the first");
        uint32_t toowide[2] = {TL_MAX_WIDTH + 1, 2};
        CHECK(tl_net_create(1, toowide, TL_ACT_RELU, TL_QUANT_PER_ROW, 1, &w) == TL_ERR_ARGUMENT, "a width past 2^20");
        uint32_t zero[2] = {4, 0};
        CHECK(tl_net_create(1, zero, TL_ACT_RELU, TL_QUANT_PER_ROW, 1, &w) == TL_ERR_ARGUMENT, "width 0");
        CHECK(tl_net_create(0, zero, TL_ACT_RELU, TL_QUANT_PER_ROW, 1, &w) == TL_ERR_ARGUMENT, "0 layers");
    }
    CHECK(tl_mem_live_blocks() == live, "training: nothing held");
}

/* Layer k's trits and scales as the model holds them. */
static int model_layer_eq_net(const tl_model *m, size_t li, const tl_net *net, uint32_t k, int exact_scales) {
    const tl_matrix *mm = tl_model_matrix(m, li);
    size_t r = tl_matrix_rows(mm), c = tl_matrix_cols(mm);
    int8_t *tm = malloc(r * c), *tn = malloc(r * c);
    float *sn = malloc(r * sizeof *sn);
    int ok = tl_matrix_unpack(mm, tm, r * c) == TL_OK && tl_net_layer_trits(net, k, tn, sn) == TL_OK &&
             memcmp(tm, tn, r * c) == 0;
    if (!ok) fprintf(stderr, "  layer %zu: trits differ\n", li);
    for (size_t i = 0; i < r && ok; i++) {
        float a = tl_matrix_scales(mm)[i], b = sn[i];
        ok = exact_scales ? f2u(a) == f2u(b) : fabsf(a - b) <= 1e-6f * fabsf(a);
        if (!ok) fprintf(stderr, "  layer %zu row %zu: model scale %.9g, network scale %.9g\n", li, i, a, b);
    }
    free(tm), free(tn), free(sn);
    return ok;
}

static int net_vs_model(tl_net *net, tl_model *m, size_t batch, double tol, double *worst) {
    size_t in = tl_model_input_size(m), o = tl_model_output_size(m);
    float *x = malloc(batch * in * sizeof *x), *yn = malloc(batch * o * sizeof *yn), *ym = malloc(batch * o * sizeof *ym);
    double *w = malloc(batch * o * sizeof *w);
    for (size_t i = 0; i < batch * in; i++) x[i] = frand(-2, 2);
    int ok = tl_net_forward(net, x, batch, yn) == TL_OK && tl_model_run(m, x, batch * in, batch, ym, batch * o) == TL_OK;
    for (size_t i = 0; i < batch * o; i++) w[i] = yn[i];
    ok = ok && near_rows(ym, w, batch, o, tol, worst);
    free(x), free(yn), free(ym), free(w);
    return ok;
}

static void test_conversions(void) {
    size_t live = tl_mem_live_blocks();
    static const tl_quantizer QS[] = {TL_QUANT_PER_TENSOR, TL_QUANT_PER_ROW, TL_QUANT_LSQ, TL_QUANT_LSQ_PAPER,
                                      TL_QUANT_NONE};
    static const char *const QN[] = {"per_tensor", "per_row", "lsq", "lsq_paper", "none"};
    for (int qi = 0; qi < 5; qi++) {
        tl_net *net = make_net(QS[qi], 11 + (uint64_t)qi);
        float l;
        fit_epochs(net, 2, 2, &l);
        for (int fi = 0; fi < 3; fi++) {
            tl_model *m = NULL;
            tl_status s = tl_net_to_model(net, FORMATS[fi], &m);
            CHECK(s == TL_OK, "net_to_model (%s, %s): %s", QN[qi], tl_format_name(FORMATS[fi]), tl_status_name(s));
            if (s) continue;
            double worst = 0;
            CHECK(tl_model_layer_count(m) == 3 && (QS[qi] == TL_QUANT_NONE || net_vs_model(net, m, 5, 1e-5, &worst)),
                  "net_to_model (%s, %s) runs as tl_net_forward (worst %.3g)", QN[qi], tl_format_name(FORMATS[fi]),
                  worst);
            CHECK(model_layer_eq_net(m, 0, net, 0, 1) && model_layer_eq_net(m, 2, net, 1, 1),
                  "net_to_model (%s): the forward's trits and scales", QN[qi]);
            tl_layer_info li;
            tl_model_layer_info(m, 0, &li);
            CHECK(li.quantizer && !strcmp(li.quantizer, QS[qi] == TL_QUANT_NONE ? "per_tensor" : QN[qi]),
                  "net_to_model (%s) records quantizer %s", QN[qi], li.quantizer ? li.quantizer : "(null)");
            char *d = describe(m);
            char want[64];
            snprintf(want, sizeof want, "\"quantizer\":\"%s\"", QN[qi]);
            CHECK(d && contains(d, "\"metadata\":{") && contains(strstr(d, "\"metadata\":{"), want),
                  "net_to_model metadata names the quantizer %s", QN[qi]);
            free(d);
            if (QS[qi] == TL_QUANT_NONE) { /* post-training quantization: per tensor */
                float w[16 * NIN], a;
                int8_t t[16 * NIN], g[16 * NIN];
                tl_net_get_layer(net, 0, w, NULL, NULL);
                tl_ternary_signs(w, 16 * NIN, t, &a);
                tl_matrix_unpack(tl_model_matrix(m, 0), g, 16 * NIN);
                CHECK(!memcmp(t, g, sizeof t) && f2u(tl_matrix_scales(tl_model_matrix(m, 0))[5]) == f2u(a),
                      "a float32 network exports tl_ternary_signs of its weights");
            }
            /* and back */
            tl_net *back = NULL;
            s = tl_net_from_model(m, TL_QUANT_NONE, 1, &back);
            CHECK(s == TL_OK, "net_from_model (%s): %s %s", QN[qi], tl_status_name(s), tl_error_detail());
            if (!s) {
                int exact = 1;
                CHECK(model_layer_eq_net(m, 0, back, 0, exact) && model_layer_eq_net(m, 2, back, 1, exact),
                      "net_from_model (%s, %s): the model's trits and scales", QN[qi], tl_format_name(FORMATS[fi]));
                CHECK(net_vs_model(back, m, 4, 1e-5, &worst), "net_from_model (%s) forward = model run (worst %.3g)",
                      QN[qi], worst);
                tl_net_free(back);
            }
            tl_model_free(m);
        }
        tl_net_free(net);
    }
    /* a built model with arbitrary per-row scales, and one per-tensor scale */
    for (int per_row = 0; per_row < 2; per_row++) {
        spec sp[3] = {{.type = L_LINEAR, .out = 12, .bias = 1, .quantizer = per_row ? "per_row" : "per_tensor"},
                      {.type = L_GELU},
                      {.type = L_LINEAR, .out = 5, .quantizer = per_row ? "per_row" : "per_tensor"}};
        spec_fill(sp, 3, 20);
        /* trits and scales as a checkpoint's quantizer makes them (an arbitrary float is not always
         * the AbsMean of any float32 tensor of that size: then no shadow weights can give it back) */
        for (int li = 0; li < 3; li += 2) {
            size_t nn = sp[li].out * sp[li].in;
            float *w = rand_floats(nn, -1, 1);
            int64_t shape[2] = {(int64_t)sp[li].out, (int64_t)sp[li].in};
            if (per_row) {
                tl_ternary_signs_per_row(w, nn, shape, 2, sp[li].trits, sp[li].scales);
            } else {
                tl_ternary_signs(w, nn, sp[li].trits, &sp[li].scales[0]);
                for (size_t r = 1; r < sp[li].out; r++) sp[li].scales[r] = sp[li].scales[0];
            }
            free(w);
        }
        for (int fi = 0; fi < 3; fi++) {
            tl_model *m = NULL;
            tl_net *net = NULL;
            CHECK(build_model(sp, 3, 20, FORMATS[fi], &m) == TL_OK, "built model");
            tl_status s = tl_net_from_model(m, TL_QUANT_NONE, 1, &net);
            CHECK(s == TL_OK, "net_from_model(built): %s", tl_status_name(s));
            if (!s) {
                double worst = 0;
                CHECK(model_layer_eq_net(m, 0, net, 0, 1) && model_layer_eq_net(m, 2, net, 1, 1),
                      "net_from_model(built %s, %s): trits and scales exactly", per_row ? "per_row" : "per_tensor",
                      tl_format_name(FORMATS[fi]));
                CHECK(net_vs_model(net, m, 3, 1e-5, &worst), "net_from_model(built) forward = run (worst %.3g)", worst);
            }
            tl_net_free(net), tl_model_free(m);
        }
        spec_free(sp, 3);
    }
    /* models that are no trainable network */
    {
        spec sp[3] = {{.type = L_LINEAR, .out = 6}, {.type = L_SOFTMAX}};
        spec_fill(sp, 2, 8);
        tl_model *m = NULL;
        tl_net *net = (tl_net *)sp;
        build_model(sp, 2, 8, TL_FORMAT_I2, &m);
        CHECK(tl_net_from_model(m, TL_QUANT_NONE, 1, &net) == TL_ERR_ARGUMENT && !net && detail_has("softmax"),
              "net_from_model: softmax is not trainable: %s", tl_error_detail());
        tl_model_free(m);
        spec_free(sp, 2);
        spec sp2[4] = {{.type = L_LINEAR, .out = 6}, {.type = L_RELU}, {.type = L_LINEAR, .out = 6}, {.type = L_GELU}};
        spec_fill(sp2, 4, 8);
        build_model(sp2, 4, 8, TL_FORMAT_I2, &m);
        CHECK(tl_net_from_model(m, TL_QUANT_NONE, 1, &net) == TL_ERR_ARGUMENT && !net, "ending in an activation");
        tl_model_free(m);
        spec_free(sp2, 4);
    }
    CHECK(tl_mem_live_blocks() == live, "conversions: nothing held");
}

/* ---------------------------------------------------------------------------
 * Out of memory: every allocation of every entry point fails once
 * ------------------------------------------------------------------------- */

typedef tl_status (*oom_fn)(void *ctx);

static void oom_sweep(const char *what, oom_fn fn, void *ctx) {
    size_t bytes = tl_mem_live_bytes(), blocks = tl_mem_live_blocks();
    int bad = 0, ok = 0;
    size_t n;
    for (n = 1; n < 5000; n++) {
        tl_mem_fail_after(n);
        tl_status s = fn(ctx);
        tl_mem_fail_after(0);
        if (s != TL_OK && s != TL_ERR_NO_MEMORY) bad++;
        if (tl_mem_live_bytes() != bytes || tl_mem_live_blocks() != blocks) bad++;
        if (s == TL_OK) {
            ok = 1;
            break;
        }
    }
    CHECK(ok && bad == 0 && n > 1, "out of memory over %s: %zu allocations, %d bad outcomes (%s)", what, n, bad,
          ok ? "then success" : "never succeeded");
}

typedef struct {
    uint8_t *file;
    size_t len;
    tl_model *model;
    tl_safetensors *st;
    tl_net *net;
} oom_ctx;

static tl_status oom_load(void *c) {
    oom_ctx *o = c;
    tl_model *m = NULL;
    tl_status s = tl_model_load(o->file, o->len, &m);
    tl_model_free(m);
    return s;
}
static tl_status oom_load_owned(void *c) {
    oom_ctx *o = c;
    uint8_t *b = tl_alloc(o->len);
    if (!b) return TL_ERR_NO_MEMORY;
    memcpy(b, o->file, o->len);
    tl_model *m = NULL;
    tl_status s = tl_model_load_owned(b, o->len, &m);
    if (s) tl_free(b); /* refused: still ours */
    float x[3 * IN], y[3 * 6];
    for (int i = 0; i < 3 * IN; i++) x[i] = (float)(i % 5) - 2;
    if (!s) s = tl_model_run(m, x, 3 * IN, 3, y, 18);
    tl_model_free(m);
    return s;
}
static tl_status oom_save(void *c) {
    oom_ctx *o = c;
    uint8_t *b = NULL;
    size_t n;
    tl_status s = tl_model_save(o->model, &b, &n);
    if (!s) tl_free(b);
    char *j = NULL;
    if (!s && !(s = tl_model_describe(o->model, &j, &n))) tl_free(j);
    return s;
}
static tl_status oom_builder(void *c) {
    (void)c;
    tl_model *m = NULL;
    tl_status s = build_model(BIG, NBIG, IN, TL_FORMAT_BITPLANE, &m);
    if (!s) s = tl_model_set_metadata(m, "{\"a\":\"b\",\"c\":\"d\"}", 17);
    if (!s) s = tl_model_set_metadata(m, "{\"a\":\"e\"}", 9);
    tl_model_free(m);
    return s;
}
/* The sweeps that make a model from the context and free it: one function, told which way. */
typedef enum { MAKE_CONVERT, MAKE_RUN, MAKE_CKPT, MAKE_TO_MODEL } make_kind;
typedef struct {
    oom_ctx *o;
    make_kind kind;
} make_ctx;
static tl_status oom_make(void *c) {
    make_ctx *k = c;
    oom_ctx *o = k->o;
    tl_model *m = NULL;
    float x[3 * IN], y[3 * 6];
    tl_status s = k->kind == MAKE_CONVERT ? tl_model_convert(o->model, TL_FORMAT_I2, &m)
                  : k->kind == MAKE_RUN   ? tl_model_convert(o->model, TL_FORMAT_TQ1, &m)
                  : k->kind == MAKE_CKPT
                      ? tl_model_from_checkpoint(o->st, ARCH, strlen(ARCH), TL_FORMAT_I2, TL_PRECISION_DEFAULT, &m)
                      : tl_net_to_model(o->net, TL_FORMAT_TQ1, &m);
    if (!s && k->kind == MAKE_RUN) {
        for (int i = 0; i < 3 * IN; i++) x[i] = (float)(i % 7) - 3;
        s = tl_model_run(m, x, 3 * IN, 3, y, 18);
    }
    tl_model_free(m);
    return s;
}
static tl_status oom_from_model(void *c) {
    oom_ctx *o = c;
    tl_net *n = NULL;
    tl_status s = tl_net_from_model(o->model, TL_QUANT_NONE, 1, &n);
    tl_net_free(n);
    return s;
}
static tl_status oom_fit(void *c) {
    (void)c;
    tl_net *net = make_net(TL_QUANT_LSQ, 5);
    if (!net) return TL_ERR_NO_MEMORY;
    tl_fit *f = NULL;
    tl_status s = tl_fit_new(net, DX, NS, DY, NULL, 16, 1, &f);
    for (int i = 0; i < 5 && !s; i++) s = tl_fit_step(f, NULL);
    double a;
    if (!s) s = tl_fit_evaluate(f, 1, &a, NULL);
    tl_fit_free(f), tl_net_free(net);
    return s;
}

static void test_oom(void) {
    oom_ctx o = {0};
    spec_fill(BIG, NBIG, IN);
    build_model(BIG, NBIG, IN, TL_FORMAT_I2, &o.model);
    tl_model_set_metadata(o.model, "{\"x\":\"y\"}", 9);
    uint8_t *b = NULL;
    tl_model_save(o.model, &b, &o.len);
    o.file = heap_copy(b, o.len);
    tl_free(b);
    sfile f = make_checkpoint();
    tl_safetensors_open(f.bytes, f.len, &o.st);
    o.net = make_net(TL_QUANT_PER_ROW, 9);
    oom_sweep("tl_model_load", oom_load, &o);
    oom_sweep("tl_model_load_owned and a run", oom_load_owned, &o);
    {
        /* the path that copies the weights out of a mostly unused file */
        oom_ctx padded = o;
        padded.len = o.len + ((size_t)2 << 20);
        padded.file = calloc(padded.len, 1);
        memcpy(padded.file, o.file, o.len);
        oom_sweep("tl_model_load_owned of a mostly unused file", oom_load_owned, &padded);
        free(padded.file);
    }
    oom_sweep("tl_model_save and describe", oom_save, &o);
    oom_sweep("the builder and set_metadata", oom_builder, &o);
    make_ctx mk[] = {{&o, MAKE_CONVERT}, {&o, MAKE_RUN}, {&o, MAKE_CKPT}, {&o, MAKE_TO_MODEL}};
    oom_sweep("tl_model_convert", oom_make, &mk[0]);
    oom_sweep("tl_model_run", oom_make, &mk[1]);
    oom_sweep("tl_model_from_checkpoint", oom_make, &mk[2]);
    oom_sweep("tl_net_to_model", oom_make, &mk[3]);
    /* net_from_model needs a trainable model: the network's own export */
    tl_model *trainable = NULL;
    tl_net_to_model(o.net, TL_FORMAT_I2, &trainable);
    tl_model *keep = o.model;
    o.model = trainable;
    oom_sweep("tl_net_from_model", oom_from_model, &o);
    o.model = keep;
    oom_sweep("tl_fit_new, tl_fit_step, tl_fit_evaluate", oom_fit, &o);
    tl_model_free(trainable);
    tl_net_free(o.net), tl_safetensors_free(o.st), tl_model_free(o.model);
    free(f.bytes), free(o.file);
    spec_free(BIG, NBIG);
}

int main(void) {
    check_rng = 0x1234567u;
    tl__par_min_work = 0; /* threaded builds (test/c/run-wasi-mt.mjs): split every product of the models */
    size_t blocks = tl_mem_live_blocks();
    test_layer_types();
    test_int8_exact();
    test_round_trip();
    test_file_errors();
    test_builder_errors();
    test_prefixes();
    test_checkpoint();
    test_training();
    test_conversions();
    test_fast_validation();
    test_load_owned_errors();
    test_oom();
    CHECK(tl_mem_live_blocks() == blocks, "the whole test holds nothing at the end (%zu blocks)", tl_mem_live_blocks());
    return check_report("test_model");
}
