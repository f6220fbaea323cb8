/* model.c — the packed model file (docs/FORMATS.md, "The packed model file") and its runtime.
 *
 * tl_model_load validates the whole file before anything is used: magic, version, header
 * length, strict JSON (src/json.c), every layer's fields and types, widths chaining from the
 * input, blob ranges inside the data section and not overlapping, packed bytes valid for
 * their format (tl_matrix_from_packed), float parameters finite. tl_model_run then runs the
 * layers on a batch with two ping-pong float buffers. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"
#include "json.h"

typedef enum {
    TL__L_LINEAR = 1,
    TL__L_BITLINEAR,
    TL__L_RELU,
    TL__L_GELU,
    TL__L_SILU,
    TL__L_RMSNORM,
    TL__L_BINARIZE,
    TL__L_SOFTMAX
} tl__layer_kind;

typedef struct {
    tl__layer_kind kind;
    size_t in, out;
    tl_matrix *m;       /* linear, bitlinear */
    float *bias;        /* linear, bitlinear: out values, or NULL */
    float *norm_weight; /* bitlinear, rmsnorm: in values, or NULL */
    float eps;          /* bitlinear, rmsnorm */
    int use_k;          /* binarize: k-winners-take-all (else threshold) */
    size_t k;
    float threshold;
} tl__layer;

struct tl_model {
    size_t input, output, nlayers, max_width;
    tl__layer *layers;
};

#define TL__MODEL_MAGIC "TLML"

static const tl__json *tl__get(const tl__json *o, const char *key) {
    return tl__json_find(o, key, strlen(key), NULL);
}

/* ---------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *data; /* the data section */
    size_t data_len;
    size_t (*ranges)[2]; /* blobs seen so far, to refuse overlaps */
    size_t nranges, cap;
} tl__blobs;

static uint64_t tl__le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static uint32_t tl__le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The blob named by key ([offset, length]) of exactly `want` bytes; NULL data when absent and
 * optional. Records the range to refuse overlaps. */
static tl_status tl__blob(tl__blobs *b, const tl__json *layer, const char *key, size_t want, int optional,
                          const uint8_t **out) {
    const tl__json *v = tl__get(layer, key);
    *out = NULL;
    if (!v) return optional ? TL_OK : TL_ERR_PARSE;
    int64_t off, len;
    if (tl__json_kind_of(v) != TL__JSON_ARRAY || tl__json_count(v) != 2 ||
        !tl__json_int64(tl__json_item(v, 0), &off) || !tl__json_int64(tl__json_item(v, 1), &len))
        return TL_ERR_PARSE;
    if (off < 0 || len < 0 || (uint64_t)off % 16 || (uint64_t)len != want || (uint64_t)off > b->data_len ||
        (uint64_t)len > b->data_len - (uint64_t)off)
        return TL_ERR_PARSE;
    for (size_t i = 0; i < b->nranges; i++)
        if ((size_t)off < b->ranges[i][1] && b->ranges[i][0] < (size_t)off + (size_t)len) return TL_ERR_PARSE;
    if (b->nranges == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        size_t(*r)[2] = tl__malloc(cap * sizeof *r);
        if (!r) return TL_ERR_NO_MEMORY;
        if (b->nranges) memcpy(r, b->ranges, b->nranges * sizeof *r);
        tl__free(b->ranges);
        b->ranges = r, b->cap = cap;
    }
    b->ranges[b->nranges][0] = (size_t)off, b->ranges[b->nranges][1] = (size_t)off + (size_t)len;
    b->nranges++;
    *out = b->data + off;
    return TL_OK;
}

/* A copy of n finite float32 values from a blob (unaligned, little-endian). */
static tl_status tl__floats(const uint8_t *p, size_t n, float **out) {
    float *f = tl__malloc(n ? n * sizeof *f : 1);
    if (!f) return TL_ERR_NO_MEMORY;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = tl__le32(p + 4 * i);
        f[i] = tl__u2f(u);
        if (!isfinite(f[i])) {
            tl__free(f);
            return TL_ERR_NON_FINITE;
        }
    }
    *out = f;
    return TL_OK;
}

static int tl__str_is(const tl__json *v, const char *s) { return tl__json_string_is(v, s); }

/* Positive integer field (<= TL_MAX_ELEMENTS). */
static tl_status tl__size_field(const tl__json *o, const char *key, size_t *out) {
    int64_t v;
    if (!tl__json_int64(tl__get(o, key), &v) || v <= 0 || (uint64_t)v > TL_MAX_ELEMENTS) return TL_ERR_PARSE;
    *out = (size_t)v;
    return TL_OK;
}

/* Number field (optional, default def). */
static tl_status tl__num_field(const tl__json *o, const char *key, double def, double *out) {
    const tl__json *v = tl__get(o, key);
    if (!v) {
        *out = def;
        return TL_OK;
    }
    if (tl__json_kind_of(v) != TL__JSON_NUMBER) return TL_ERR_PARSE;
    *out = tl__json_number(v);
    return isfinite(*out) ? TL_OK : TL_ERR_PARSE;
}

/* Every key of o is one of the allowed ones. */
static int tl__only_keys(const tl__json *o, const char *const *allowed) {
    for (size_t i = 0; i < tl__json_count(o); i++) {
        size_t n;
        const char *k = tl__json_key(o, i, &n);
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++) ok = strlen(*a) == n && memcmp(*a, k, n) == 0;
        if (!ok) return 0;
    }
    return 1;
}

static tl_status tl__load_layer(tl__blobs *b, const tl__json *o, size_t width, tl__layer *L) {
    static const char *const lin_keys[] = {"type",   "in",   "out",         "weights", "packed",
                                           "scales", "bias", "norm_weight", "eps",     NULL};
    static const char *const act_keys[] = {"type", NULL};
    static const char *const norm_keys[] = {"type", "dim", "weight", "eps", NULL};
    static const char *const bin_keys[] = {"type", "threshold", "k", NULL};
    if (tl__json_kind_of(o) != TL__JSON_OBJECT) return TL_ERR_PARSE;
    const tl__json *type = tl__get(o, "type");
    tl_status s;
    L->in = L->out = width;
    if (tl__str_is(type, "linear") || tl__str_is(type, "bitlinear")) {
        L->kind = tl__str_is(type, "linear") ? TL__L_LINEAR : TL__L_BITLINEAR;
        if (!tl__only_keys(o, lin_keys)) return TL_ERR_PARSE;
        if (L->kind == TL__L_LINEAR && (tl__get(o, "norm_weight") || tl__get(o, "eps"))) return TL_ERR_PARSE;
        if ((s = tl__size_field(o, "in", &L->in)) || (s = tl__size_field(o, "out", &L->out))) return s;
        if (L->in != width) return TL_ERR_PARSE;
        const tl__json *fmt = tl__get(o, "weights");
        tl_format f = tl__str_is(fmt, "i2")         ? TL_FORMAT_I2
                      : tl__str_is(fmt, "tq1")      ? TL_FORMAT_TQ1
                      : tl__str_is(fmt, "bitplane") ? TL_FORMAT_BITPLANE
                                                    : (tl_format)0;
        if (!f) return TL_ERR_PARSE;
        size_t bytes;
        if ((s = tl_format_bytes(f, L->out, L->in, &bytes))) return s;
        const uint8_t *packed, *scales, *bias, *nw;
        if ((s = tl__blob(b, o, "packed", bytes, 0, &packed)) ||
            (s = tl__blob(b, o, "scales", 4 * L->out, 0, &scales)) ||
            (s = tl__blob(b, o, "bias", 4 * L->out, 1, &bias)) ||
            (s = tl__blob(b, o, "norm_weight", 4 * L->in, 1, &nw)))
            return s;
        float *sc;
        if ((s = tl__floats(scales, L->out, &sc))) return s;
        s = tl_matrix_from_packed(f, packed, bytes, L->out, L->in, sc, L->out, &L->m);
        tl__free(sc);
        if (s) return s == TL_ERR_SIZE ? TL_ERR_PARSE : s;
        if (bias && (s = tl__floats(bias, L->out, &L->bias))) return s;
        if (nw && (s = tl__floats(nw, L->in, &L->norm_weight))) return s;
        double eps;
        if ((s = tl__num_field(o, "eps", 1e-5, &eps))) return s;
        if (!(eps > 0 && eps < 1)) return TL_ERR_PARSE;
        L->eps = (float)eps;
        return TL_OK;
    }
    if (tl__str_is(type, "rmsnorm")) {
        L->kind = TL__L_RMSNORM;
        if (!tl__only_keys(o, norm_keys)) return TL_ERR_PARSE;
        size_t dim;
        if ((s = tl__size_field(o, "dim", &dim))) return s;
        if (dim != width) return TL_ERR_PARSE;
        const uint8_t *nw;
        if ((s = tl__blob(b, o, "weight", 4 * width, 1, &nw))) return s;
        if (nw && (s = tl__floats(nw, width, &L->norm_weight))) return s;
        double eps;
        if ((s = tl__num_field(o, "eps", 1e-5, &eps))) return s;
        if (!(eps > 0 && eps < 1)) return TL_ERR_PARSE;
        L->eps = (float)eps;
        return TL_OK;
    }
    if (tl__str_is(type, "binarize")) {
        L->kind = TL__L_BINARIZE;
        if (!tl__only_keys(o, bin_keys)) return TL_ERR_PARSE;
        const tl__json *k = tl__get(o, "k"), *t = tl__get(o, "threshold");
        if (!k == !t) return TL_ERR_PARSE; /* exactly one of them */
        if (k) {
            L->use_k = 1;
            if ((s = tl__size_field(o, "k", &L->k))) return s;
            if (L->k > width) return TL_ERR_PARSE;
        } else {
            double th;
            if ((s = tl__num_field(o, "threshold", 0, &th))) return s;
            L->threshold = tl__to_float_sat(th);
        }
        return TL_OK;
    }
    if (!tl__only_keys(o, act_keys)) return TL_ERR_PARSE;
    if (tl__str_is(type, "relu"))
        L->kind = TL__L_RELU;
    else if (tl__str_is(type, "gelu"))
        L->kind = TL__L_GELU;
    else if (tl__str_is(type, "silu"))
        L->kind = TL__L_SILU;
    else if (tl__str_is(type, "softmax"))
        L->kind = TL__L_SOFTMAX;
    else
        return TL_ERR_PARSE;
    return TL_OK;
}

void tl_model_free(tl_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->nlayers; i++) {
        tl_matrix_free(m->layers[i].m);
        tl__free(m->layers[i].bias);
        tl__free(m->layers[i].norm_weight);
    }
    tl__free(m->layers);
    tl__free(m);
}

tl_status tl_model_load(const uint8_t *bytes, size_t len, tl_model **out) {
    if (!bytes || !out) return TL_ERR_NULL;
    *out = NULL;
    if (len < 16 || memcmp(bytes, TL__MODEL_MAGIC, 4) != 0) return TL_ERR_PARSE;
    uint32_t version = tl__le32(bytes + 4);
    if (version == 0) return TL_ERR_PARSE;
    if (version > TL_MODEL_VERSION) return TL_ERR_VERSION;
    uint64_t hlen = tl__le64(bytes + 8);
    if (hlen > len - 16 || (16 + hlen) % 16) return TL_ERR_PARSE;
    tl__json *root = NULL;
    tl_status s = tl__json_parse((const char *)bytes + 16, (size_t)hlen, &root);
    if (s) return s;
    tl_model *m = tl__calloc(1, sizeof *m);
    tl__blobs blobs = {bytes + 16 + hlen, len - 16 - (size_t)hlen, NULL, 0, 0};
    if (!m) {
        s = TL_ERR_NO_MEMORY;
        goto done;
    }
    static const char *const top_keys[] = {"format", "version", "input", "layers", "metadata", NULL};
    int64_t v;
    const tl__json *layers = tl__get(root, "layers"), *meta = tl__get(root, "metadata");
    if (tl__json_kind_of(root) != TL__JSON_OBJECT || !tl__only_keys(root, top_keys) ||
        !tl__str_is(tl__get(root, "format"), "tilelli-model") ||
        !tl__json_int64(tl__get(root, "version"), &v) || !layers ||
        tl__json_kind_of(layers) != TL__JSON_ARRAY || tl__json_count(layers) == 0 ||
        (meta && tl__json_kind_of(meta) != TL__JSON_OBJECT)) {
        s = TL_ERR_PARSE;
        goto done;
    }
    if (v != (int64_t)version) {
        s = TL_ERR_PARSE;
        goto done;
    }
    for (size_t i = 0; meta && i < tl__json_count(meta); i++)
        if (tl__json_kind_of(tl__json_item(meta, i)) != TL__JSON_STRING) {
            s = TL_ERR_PARSE;
            goto done;
        }
    if ((s = tl__size_field(root, "input", &m->input))) goto done;
    size_t n = tl__json_count(layers);
    m->layers = tl__calloc(n, sizeof *m->layers);
    if (!m->layers) {
        s = TL_ERR_NO_MEMORY;
        goto done;
    }
    size_t width = m->input;
    m->max_width = width;
    for (size_t i = 0; i < n; i++) {
        m->nlayers = i + 1; /* so tl_model_free releases what this layer allocated */
        tl__layer *L = &m->layers[i];
        if ((s = tl__load_layer(&blobs, tl__json_item(layers, i), width, L))) goto done;
        /* Binary activations feed a plain linear layer only. */
        if (i > 0 && m->layers[i - 1].kind == TL__L_BINARIZE && L->kind != TL__L_LINEAR) {
            s = TL_ERR_PARSE;
            goto done;
        }
        width = L->out;
        if (width > m->max_width) m->max_width = width;
    }
    if (m->layers[n - 1].kind == TL__L_BINARIZE) {
        s = TL_ERR_PARSE;
        goto done;
    }
    m->output = width;
done:
    tl__free(blobs.ranges);
    tl__json_free(root);
    if (s) {
        tl_model_free(m);
        return s;
    }
    *out = m;
    return TL_OK;
}

size_t tl_model_input_size(const tl_model *m) { return m ? m->input : 0; }
size_t tl_model_output_size(const tl_model *m) { return m ? m->output : 0; }
size_t tl_model_layer_count(const tl_model *m) { return m ? m->nlayers : 0; }

/* ---------------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------------- */

static void tl__rmsnorm(float *x, size_t n, float eps, const float *w) {
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (size_t i = 0; i < n; i++) x[i] = x[i] * inv * (w ? w[i] : 1.0f);
}

static void tl__softmax(float *x, size_t n) {
    float mx = x[0];
    for (size_t i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += x[i] = expf(x[i] - mx);
    for (size_t i = 0; i < n; i++) x[i] = (float)(x[i] / sum);
}

/* 1 for the k largest values (ties: the lower index wins), 0 elsewhere. scratch: n words + n bytes. */
static void tl__kwta(float *x, size_t n, size_t k, uint32_t *scratch) {
    uint32_t *top = scratch; /* the k best indices so far, best first */
    size_t have = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j;
        if (have < k)
            j = have++;
        else if (x[i] > x[top[k - 1]])
            j = k - 1;
        else
            continue;
        while (j > 0 && x[i] > x[top[j - 1]]) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = (uint32_t)i;
    }
    uint8_t *on = (uint8_t *)(scratch + n);
    memset(on, 0, n);
    for (size_t i = 0; i < k; i++) on[top[i]] = 1;
    for (size_t i = 0; i < n; i++) x[i] = on[i] ? 1.0f : 0.0f;
}

tl_status tl_model_run(const tl_model *m, const float *x, size_t x_len, size_t batch, float *out,
                       size_t out_len) {
    if (!m || !x || !out) return TL_ERR_NULL;
    if (batch == 0) return TL_ERR_EMPTY;
    if (batch > TL_MAX_ELEMENTS / m->max_width) return TL_ERR_OVERFLOW;
    if (x_len != batch * m->input || out_len != batch * m->output) return TL_ERR_SIZE;
    if (tl__first_non_finite(x, x_len) != x_len) return TL_ERR_NON_FINITE;
    size_t W = m->max_width, xb = tl_binary_row_bytes(W);
    float *a = tl__malloc(batch * W * sizeof *a), *b = tl__malloc(batch * W * sizeof *b);
    float *xs = tl__malloc(batch * sizeof *xs);
    int8_t *q = tl__malloc(batch * W);
    uint8_t *bits = tl__malloc(batch * xb);
    uint32_t *scratch = tl__malloc(W * sizeof *scratch + W);
    tl_status s = TL_OK;
    if (!a || !b || !xs || !q || !bits || !scratch) {
        s = TL_ERR_NO_MEMORY;
        goto done;
    }
    memcpy(a, x, x_len * sizeof *x);
    int binary = 0;
    for (size_t li = 0; li < m->nlayers && !s; li++) {
        const tl__layer *L = &m->layers[li];
        size_t n = batch * L->in;
        switch (L->kind) {
        case TL__L_LINEAR:
        case TL__L_BITLINEAR:
            if (binary) {
                size_t rb = tl_binary_row_bytes(L->in);
                memset(bits, 0, batch * rb);
                for (size_t r = 0; r < batch; r++)
                    for (size_t c = 0; c < L->in; c++)
                        if (a[r * L->in + c] != 0.0f) bits[r * rb + c / 8] |= (uint8_t)(1u << (c % 8));
                s = tl_matmul_binary(L->m, bits, batch * rb, batch, NULL, b, batch * L->out);
            } else if (L->kind == TL__L_LINEAR) {
                s = tl_matmul_f32(L->m, a, n, batch, b, batch * L->out);
            } else {
                for (size_t r = 0; r < batch; r++) tl__rmsnorm(a + r * L->in, L->in, L->eps, L->norm_weight);
                s = tl_quantize_activations_i8(a, n, batch, q, xs);
                if (!s) s = tl_matmul_i8(L->m, q, n, batch, xs, NULL, b, batch * L->out);
            }
            if (!s && L->bias)
                for (size_t r = 0; r < batch; r++)
                    for (size_t c = 0; c < L->out; c++) b[r * L->out + c] += L->bias[c];
            binary = 0;
            float *t = a;
            a = b, b = t;
            break;
        case TL__L_RELU:
            for (size_t i = 0; i < n; i++) a[i] = a[i] > 0.0f ? a[i] : 0.0f;
            break;
        case TL__L_GELU:
            for (size_t i = 0; i < n; i++) a[i] = 0.5f * a[i] * (1.0f + erff(a[i] * 0.70710678118654752f));
            break;
        case TL__L_SILU:
            for (size_t i = 0; i < n; i++) a[i] = a[i] / (1.0f + expf(-a[i]));
            break;
        case TL__L_RMSNORM:
            for (size_t r = 0; r < batch; r++) tl__rmsnorm(a + r * L->in, L->in, L->eps, L->norm_weight);
            break;
        case TL__L_BINARIZE:
            for (size_t r = 0; r < batch; r++) {
                float *v = a + r * L->in;
                if (L->use_k)
                    tl__kwta(v, L->in, L->k, scratch);
                else
                    for (size_t c = 0; c < L->in; c++) v[c] = v[c] > L->threshold ? 1.0f : 0.0f;
            }
            binary = 1;
            break;
        case TL__L_SOFTMAX:
            for (size_t r = 0; r < batch; r++) tl__softmax(a + r * L->in, L->in);
            break;
        }
    }
    if (!s) memcpy(out, a, out_len * sizeof *out);
done:
    tl__free(a), tl__free(b), tl__free(xs), tl__free(q), tl__free(bits), tl__free(scratch);
    return s;
}
