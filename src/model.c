/* model.c — the packed model: its file (reader and writer, docs/FORMATS.md "The packed model
 * file"), the ways a model is made (a builder, an architecture over a checkpoint, another model
 * in another format), what it describes of itself, and its runtime.
 *
 * Every layer type is one row of tl__ltypes: its name, the keys it takes, how it reads itself
 * (from a file, an architecture over a checkpoint, or a builder: three "sources" behind one
 * interface), how it writes itself, and how it runs. Adding a layer type is a row and its three
 * functions here.
 *
 * Loading validates the whole file before anything is used: magic, version, header length, strict
 * JSON (src/json.c), every layer's keys and fields, widths chaining from the input, blob ranges
 * inside the data section and not overlapping (checked once, sorted: O(n log n)), packed bytes
 * valid for their format (tl_matrix_from_packed), float parameters finite. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"
#include "json.h"

#define TL__MODEL_MAGIC "TLML"

typedef struct tl__ltype tl__ltype;

typedef struct {
    const tl__ltype *t;
    size_t in, out;
    char *name;         /* NUL-terminated copy, or NULL */
    tl_matrix *m;       /* linear, bitlinear */
    float *bias;        /* linear, bitlinear: out values, or NULL */
    float *norm;        /* bitlinear's norm_weight, rmsnorm's weight: in values, or NULL */
    float eps;          /* bitlinear, rmsnorm */
    tl_precision prec;  /* linear: FLOAT or INT8; bitlinear: INT8 */
    tl_quantizer quant; /* linear, bitlinear: how the trits were made; TL_QUANT_NONE when unknown */
    int use_k;          /* binarize: k-winners-take-all (else threshold) */
    size_t k;
    float threshold;
} tl__layer;

typedef struct {
    char *key, *value;
    size_t klen, vlen;
} tl__meta;

struct tl_model {
    size_t input, output, nlayers, cap, max_width;
    tl__layer *layers;
    tl__meta *meta;
    size_t nmeta;
    /* The run workspace, sized for ws_batch vectors (grown, never shrunk), and the kernels' own. */
    size_t ws_batch;
    float *a, *b;
    uint8_t *bits;
    tl__ws kws;
    void *sel;     /* k-WTA selection: max_width (value, index) pairs, then max_width flags */
    uint8_t *file; /* tl_model_load_owned's file: the matrices' packed bytes lie in it */
};

/* tl_quantizer values by name (TL_QUANT_NONE: not recorded). */
static const char *const tl__quant_names[] = {NULL, "per_tensor", "per_row", "lsq", "lsq_paper"};
#define TL__NQUANT (sizeof tl__quant_names / sizeof *tl__quant_names)

/* ---------------------------------------------------------------------------
 * Sources: where a layer's weights and float parameters come from
 * ------------------------------------------------------------------------- */

typedef struct tl__src tl__src;
struct tl__src {
    /* The float parameter `key` of n values (*out NULL when absent and optional): a new copy. */
    tl_status (*floats)(tl__src *s, const tl__json *o, const char *key, size_t n, int optional, float **out);
    /* The weights of a linear or bitlinear layer: a new matrix. */
    tl_status (*matrix)(tl__src *s, const tl__json *o, tl_quantizer *quant, tl_matrix **out);
    const char *const *matrix_keys; /* the keys `matrix` reads */
    int version;                    /* the file's version; 0 for sources that are no file */
    size_t li;                      /* the layer being read, for details */
};

static const tl__json *tl__get(const tl__json *o, const char *key) {
    return tl__json_find(o, key, strlen(key), NULL);
}

static int tl__has(const char *const *keys, const char *k, size_t n) {
    for (; keys && *keys; keys++)
        if (strlen(*keys) == n && memcmp(*keys, k, n) == 0) return 1;
    return 0;
}

/* Positive integer field (<= TL_MAX_ELEMENTS). */
static tl_status tl__size_field(const tl__src *s, const tl__json *o, const char *key, size_t *out) {
    int64_t v;
    if (!tl__json_int64(tl__get(o, key), &v) || v <= 0 || (uint64_t)v > TL_MAX_ELEMENTS)
        return tl__fail(TL_ERR_PARSE, "layers[%zu].%s must be an integer in 1..%zu", s->li, key,
                        (size_t)TL_MAX_ELEMENTS);
    *out = (size_t)v;
    return TL_OK;
}

/* Optional finite number field. */
static tl_status tl__num_field(const tl__src *s, const tl__json *o, const char *key, double def, double *out) {
    const tl__json *v = tl__get(o, key);
    *out = def;
    if (!v) return TL_OK;
    if (tl__json_kind_of(v) != TL__JSON_NUMBER)
        return tl__fail(TL_ERR_PARSE, "layers[%zu].%s must be a number", s->li, key);
    *out = tl__json_number(v);
    return TL_OK;
}

/* A copy of n finite float32 values (little-endian bytes, any alignment). */
static tl_status tl__floats_le(const uint8_t *p, size_t n, const tl__src *s, const char *key, float **out) {
    float *f = tl__malloc(n * sizeof *f);
    if (!f) return TL_ERR_NO_MEMORY;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *b = p + 4 * i;
        f[i] = tl__u2f((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
        if (!isfinite(f[i])) {
            tl__free(f);
            return tl__fail(TL_ERR_NON_FINITE, "layers[%zu].%s[%zu] is not finite", s->li, key, i);
        }
    }
    *out = f;
    return TL_OK;
}

static tl_status tl__format_by_name(const tl__json *v, tl_format *f) {
    size_t n;
    const char *name = tl__json_string(v, &n);
    if (!name) return TL_ERR_FORMAT;
    return tl_format_from_name(name, n, f);
}

/* --- the file -------------------------------------------------------------- */

typedef struct {
    tl__src base;
    const uint8_t *data; /* the data section */
    size_t len;
    int borrow;          /* the matrices use their packed bytes in place (tl_model_load_owned) */
    size_t (*ranges)[2]; /* every blob, checked for overlaps at the end */
    size_t nranges, cap;
} tl__file_src;

/* The blob named by key ([offset, length]) of exactly `want` bytes; NULL when absent and optional. */
static tl_status tl__blob(tl__file_src *fs, const tl__json *o, const char *key, size_t want, int optional,
                          const uint8_t **out) {
    const tl__json *v = tl__get(o, key);
    size_t li = fs->base.li;
    *out = NULL;
    if (!v) return optional ? TL_OK : tl__fail(TL_ERR_PARSE, "layers[%zu]: no \"%s\"", li, key);
    int64_t off, len;
    if (tl__json_kind_of(v) != TL__JSON_ARRAY || tl__json_count(v) != 2 ||
        !tl__json_int64(tl__json_item(v, 0), &off) || !tl__json_int64(tl__json_item(v, 1), &len) || off < 0 ||
        len < 0)
        return tl__fail(TL_ERR_PARSE, "layers[%zu].%s must be [offset, length]", li, key);
    if ((uint64_t)len != want)
        return tl__fail(TL_ERR_PARSE, "layers[%zu].%s is %lld bytes, expected %zu", li, key, (long long)len, want);
    if ((uint64_t)off % 16)
        return tl__fail(TL_ERR_PARSE, "layers[%zu].%s starts at %lld, not a multiple of 16", li, key,
                        (long long)off);
    if ((uint64_t)off > fs->len || (uint64_t)len > fs->len - (uint64_t)off)
        return tl__fail(TL_ERR_PARSE, "layers[%zu].%s [%lld, %lld] runs past the %zu-byte data section", li, key,
                        (long long)off, (long long)len, fs->len);
    if (!tl__array_grow((void **)&fs->ranges, fs->nranges, &fs->cap, sizeof *fs->ranges, 16)) return TL_ERR_NO_MEMORY;
    fs->ranges[fs->nranges][0] = (size_t)off, fs->ranges[fs->nranges][1] = (size_t)off + (size_t)len;
    fs->nranges++;
    *out = fs->data + off;
    return TL_OK;
}

static int tl__cmp_range(const void *a, const void *b) {
    const size_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1];
}

static tl_status tl__check_overlaps(tl__file_src *fs) {
    tl__heapsort(fs->ranges, fs->nranges, sizeof *fs->ranges, tl__cmp_range);
    for (size_t i = 1; i < fs->nranges; i++)
        if (fs->ranges[i][0] < fs->ranges[i - 1][1] && fs->ranges[i][1] > fs->ranges[i][0])
            return tl__fail(TL_ERR_PARSE, "two blobs overlap at data offset %zu", fs->ranges[i][0]);
    return TL_OK;
}

static tl_status tl__file_floats(tl__src *s, const tl__json *o, const char *key, size_t n, int optional,
                                 float **out) {
    const uint8_t *p;
    tl_status st = tl__blob((tl__file_src *)s, o, key, 4 * n, optional, &p);
    *out = NULL;
    if (st || !p) return st;
    return tl__floats_le(p, n, s, key, out);
}

static tl_status tl__file_matrix(tl__src *s, const tl__json *o, tl_quantizer *quant, tl_matrix **out) {
    (void)quant;
    size_t in = 0, rows = 0, bytes = 0;
    tl_status st;
    tl_format f;
    if ((st = tl__size_field(s, o, "in", &in)) || (st = tl__size_field(s, o, "out", &rows))) return st;
    if (tl__format_by_name(tl__get(o, "weights"), &f))
        return tl__fail(TL_ERR_PARSE, "layers[%zu].weights is not a packed format name", s->li);
    if ((st = tl_format_bytes(f, rows, in, &bytes)))
        return tl__fail(st, "layers[%zu]: %zu x %zu weights", s->li, rows, in);
    const uint8_t *packed;
    float *sc;
    if ((st = tl__blob((tl__file_src *)s, o, "packed", bytes, 0, &packed)) ||
        (st = tl__file_floats(s, o, "scales", rows, 0, &sc)))
        return st;
    if (((tl__file_src *)s)->borrow) {
        st = tl__matrix_borrow(f, packed, bytes, rows, in, sc, out); /* takes sc on success */
        if (st) tl__free(sc);
    } else {
        st = tl_matrix_from_packed(f, packed, bytes, rows, in, sc, rows, out);
        tl__free(sc);
    }
    if (st) return tl__fail(st, "layers[%zu].packed: %s", s->li, tl_status_message(st));
    return TL_OK;
}

static const char *const tl__file_matrix_keys[] = {"in", "out", "weights", "packed", "scales", NULL};

/* --- an architecture over a checkpoint ---------------------------------------- */

typedef struct {
    tl__src base;
    const tl_safetensors *st;
    tl_format format;
} tl__ckpt_src;

/* The tensor whose name is the string o[key]. */
static tl_status tl__ckpt_tensor(tl__ckpt_src *cs, const tl__json *o, const char *key, int optional, size_t *index,
                                 const char **name) {
    const tl__json *v = tl__get(o, key);
    size_t li = cs->base.li, n;
    *name = NULL;
    if (!v) return optional ? TL_OK : tl__fail(TL_ERR_PARSE, "layers[%zu]: no \"%s\" (a tensor name)", li, key);
    const char *s = tl__json_string(v, &n);
    if (!s) return tl__fail(TL_ERR_PARSE, "layers[%zu].%s must be a tensor name", li, key);
    if (tl_safetensors_find(cs->st, s, n, index))
        return tl__fail(TL_ERR_ARGUMENT, "layers[%zu].%s: the checkpoint has no tensor \"%.*s\"", li, key, (int)n, s);
    *name = s;
    return TL_OK;
}

static tl_status tl__ckpt_floats(tl__src *s, const tl__json *o, const char *key, size_t n, int optional,
                                 float **out) {
    tl__ckpt_src *cs = (tl__ckpt_src *)s;
    size_t i, ndim;
    const char *name;
    const int64_t *shape;
    *out = NULL;
    tl_status st = tl__ckpt_tensor(cs, o, key, optional, &i, &name);
    if (st || !name) return st;
    tl_dtype dt;
    tl_safetensors_tensor(cs->st, i, NULL, NULL, &dt, &ndim, &shape, NULL, NULL);
    if (!tl__dtype_is_float(dt))
        return tl__fail(TL_ERR_DTYPE, "layers[%zu].%s: tensor \"%s\" is %s, a float dtype (F32, F16, BF16, F64, F8) was expected",
                        s->li, key, name, tl__dtype_name(dt));
    size_t count = 1;
    for (size_t d = 0; d < ndim; d++) count *= (size_t)shape[d];
    if (count != n)
        return tl__fail(TL_ERR_SHAPE, "layers[%zu].%s: tensor \"%s\" has %zu values, the layer needs %zu", s->li, key,
                        name, count, n);
    float *f = tl__malloc(n * sizeof *f);
    if (!f) return TL_ERR_NO_MEMORY;
    if ((st = tl_safetensors_read_f32(cs->st, i, f, n))) {
        tl__free(f);
        return tl__fail(st, "layers[%zu].%s: tensor \"%s\": %s", s->li, key, name, tl_status_message(st));
    }
    if (tl__first_non_finite(f, n) != n) {
        size_t at = tl__first_non_finite(f, n);
        tl__free(f);
        return tl__fail(TL_ERR_NON_FINITE, "layers[%zu].%s: tensor \"%s\" element %zu is not finite", s->li, key, name,
                        at);
    }
    *out = f;
    return TL_OK;
}

static tl_status tl__ckpt_matrix(tl__src *s, const tl__json *o, tl_quantizer *quant, tl_matrix **out) {
    tl__ckpt_src *cs = (tl__ckpt_src *)s;
    size_t i, ndim;
    const char *name;
    const int64_t *shape;
    tl_status st = tl__ckpt_tensor(cs, o, "weight", 0, &i, &name);
    if (st) return st;
    tl_safetensors_tensor(cs->st, i, NULL, NULL, NULL, &ndim, &shape, NULL, NULL);
    if (ndim != 2 || shape[0] == 0 || shape[1] == 0)
        return tl__fail(TL_ERR_SHAPE, "layers[%zu].weight: tensor \"%s\" is not a non-empty [out, in] matrix", s->li,
                        name);
    tl_format f = cs->format;
    const tl__json *fv = tl__get(o, "format");
    if (fv && tl__format_by_name(fv, &f))
        return tl__fail(TL_ERR_PARSE, "layers[%zu].format is not a packed format name", s->li);
    if (*quant == TL_QUANT_NONE) *quant = TL_QUANT_PER_TENSOR;
    if (*quant != TL_QUANT_PER_TENSOR && *quant != TL_QUANT_PER_ROW)
        return tl__fail(TL_ERR_ARGUMENT,
                        "layers[%zu].quantizer: float weights are quantized per_tensor or per_row (a learned "
                        "scale needs the trained network)",
                        s->li);
    size_t rows = (size_t)shape[0], cols = (size_t)shape[1];
    float *w;
    if ((st = tl__ckpt_floats(s, o, "weight", rows * cols, 0, &w))) return st;
    st = tl_matrix_quantize(f, w, rows, cols, *quant == TL_QUANT_PER_ROW, out);
    tl__free(w);
    return st ? tl__fail(st, "layers[%zu].weight: %s", s->li, tl_status_message(st)) : TL_OK;
}

static const char *const tl__ckpt_matrix_keys[] = {"weight", "format", NULL};

/* --- a builder ------------------------------------------------------------- */

typedef struct {
    char *name;
    size_t name_len, n;
    float *v;
    int used;
} tl__staged;

struct tl_model_builder {
    tl__src base;
    tl_model *m;
    size_t width;
    tl__staged *staged;
    size_t nstaged, cap;
    const tl_matrix *matrix; /* the one given with the layer being added */
};

static tl_status tl__builder_floats(tl__src *s, const tl__json *o, const char *key, size_t n, int optional,
                                    float **out) {
    (void)o;
    tl_model_builder *b = (tl_model_builder *)s;
    *out = NULL;
    for (size_t i = 0; i < b->nstaged; i++) {
        tl__staged *p = &b->staged[i];
        if (strlen(key) != p->name_len || memcmp(key, p->name, p->name_len)) continue;
        p->used = 1;
        if (p->n != n)
            return tl__fail(TL_ERR_SIZE, "layers[%zu].%s has %zu values, the layer needs %zu", s->li, key, p->n, n);
        float *f = tl__malloc(n * sizeof *f);
        if (!f) return TL_ERR_NO_MEMORY;
        memcpy(f, p->v, n * sizeof *f);
        *out = f;
        return TL_OK;
    }
    return optional ? TL_OK : tl__fail(TL_ERR_ARGUMENT, "layers[%zu]: no \"%s\" was given", s->li, key);
}

static tl_status tl__copy_matrix(const tl_matrix *m, tl_format f, tl_matrix **out) {
    if (f == m->format) return tl__matrix_copy(m, out);
    int8_t *t = tl__malloc(m->rows * m->cols);
    if (!t) return TL_ERR_NO_MEMORY;
    tl_status s = tl_matrix_unpack(m, t, m->rows * m->cols);
    if (!s) s = tl_matrix_from_trits(f, t, m->rows, m->cols, m->scales, m->rows, out);
    tl__free(t);
    return s;
}

static tl_status tl__builder_matrix(tl__src *s, const tl__json *o, tl_quantizer *quant, tl_matrix **out) {
    (void)o, (void)quant;
    tl_model_builder *b = (tl_model_builder *)s;
    if (!b->matrix) return tl__fail(TL_ERR_ARGUMENT, "layers[%zu]: a linear layer needs its matrix", s->li);
    return tl__copy_matrix(b->matrix, b->matrix->format, out);
}

/* ---------------------------------------------------------------------------
 * The layer types
 * ------------------------------------------------------------------------- */

typedef struct {
    tl__buf *json;
    tl__buf *data; /* NULL: describe (blobs become their byte counts) */
    /* The last number written and its text: layers repeat their eps, and the shortest text
     * that round-trips a double takes up to 9 printf/strtod tries (tl__buf_json_number). */
    double last_num;
    size_t last_len; /* 0: none yet */
    char last_text[48];
} tl__writer;

typedef struct {
    float *a, *b; /* the current activations and the next layer's output buffer */
    size_t batch;
    int binary;   /* a holds 0/1 values from binarize */
} tl__run;

struct tl__ltype {
    const char *name;
    const char *const *keys; /* besides "type" and "name" (and, with a matrix, the source's keys) */
    int has_matrix;
    tl_status (*read)(tl__src *s, const tl__json *o, size_t width, tl__layer *L);
    void (*write)(tl__writer *w, const tl__layer *L);
    tl_status (*run)(tl_model *m, const tl__layer *L, tl__run *r);
};

/* --- writing helpers --- */

/* (no printf: a model of 10^6 layers writes these 10^6 times) */
static void tl__w_key(tl__writer *w, const char *key) {
    tl__buf_put(w->json, ",\"", 2);
    tl__buf_put(w->json, key, strlen(key));
    tl__buf_put(w->json, "\":", 2);
}

static void tl__w_uint(tl__buf *b, size_t v) {
    char tmp[24];
    size_t i = sizeof tmp;
    do tmp[--i] = (char)('0' + v % 10), v /= 10;
    while (v);
    tl__buf_put(b, tmp + i, sizeof tmp - i);
}

static void tl__w_size(tl__writer *w, const char *key, size_t v) {
    tl__w_key(w, key);
    tl__w_uint(w->json, v);
}

static void tl__w_str(tl__writer *w, const char *key, const char *v) {
    tl__w_key(w, key);
    tl__buf_json_string(w->json, v, strlen(v));
}

static void tl__w_num(tl__writer *w, const char *key, double v) {
    tl__w_key(w, key);
    if (w->last_len && memcmp(&w->last_num, &v, sizeof v) == 0) {
        tl__buf_put(w->json, w->last_text, w->last_len);
        return;
    }
    size_t at = w->json->len;
    tl__buf_json_number(w->json, v);
    size_t n = w->json->oom ? 0 : w->json->len - at;
    if (n && n < sizeof w->last_text) {
        memcpy(w->last_text, w->json->p + at, n);
        w->last_num = v, w->last_len = n;
    }
}

/* A blob: appended to the data section (16-byte aligned) and named [offset, length]. */
static void tl__w_blob(tl__writer *w, const char *key, const void *p, size_t n) {
    tl__w_key(w, key);
    if (!w->data) {
        tl__w_uint(w->json, n);
        return;
    }
    tl__buf_zeros(w->data, (16 - w->data->len % 16) % 16);
    tl__buf_put(w->json, "[", 1);
    tl__w_uint(w->json, w->data->len);
    tl__buf_put(w->json, ",", 1);
    tl__w_uint(w->json, n);
    tl__buf_put(w->json, "]", 1);
    tl__buf_put(w->data, p, n);
}

static void tl__w_floats(tl__writer *w, const char *key, const float *v, size_t n) {
    if (!v) return;
    if (!w->data) {
        tl__w_blob(w, key, NULL, 4 * n);
        return;
    }
    /* little-endian on every host */
    uint8_t *tmp = tl__malloc(4 * n);
    if (!tmp) {
        w->json->oom = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u = tl__f2u(v[i]);
        tmp[4 * i] = (uint8_t)u, tmp[4 * i + 1] = (uint8_t)(u >> 8), tmp[4 * i + 2] = (uint8_t)(u >> 16),
                  tmp[4 * i + 3] = (uint8_t)(u >> 24);
    }
    tl__w_blob(w, key, tmp, 4 * n);
    tl__free(tmp);
}

static void tl__w_matrix(tl__writer *w, const tl__layer *L) {
    tl__w_size(w, "in", L->in);
    tl__w_size(w, "out", L->out);
    tl__w_str(w, "weights", tl_format_name(L->m->format));
    size_t n = L->m->rows * L->m->row_bytes;
    uint8_t *tmp = w->data ? tl__malloc(n) : NULL;
    if (w->data && !tmp) {
        w->json->oom = 1;
        return;
    }
    if (tmp) tl__matrix_read_rows(L->m, 0, L->m->rows, tmp); /* in the file layout */
    tl__w_blob(w, "packed", tmp, n);
    tl__free(tmp);
    tl__w_floats(w, "scales", L->m->scales, L->out);
    if (L->quant != TL_QUANT_NONE) tl__w_str(w, "quantizer", tl__quant_names[L->quant]);
}

/* --- reading helpers --- */

static tl_status tl__read_eps(tl__src *s, const tl__json *o, tl__layer *L) {
    double eps;
    tl_status st = tl__num_field(s, o, "eps", 1e-5, &eps);
    if (st) return st;
    if (!(eps > 0 && eps < 1 && (float)eps > 0)) return tl__fail(TL_ERR_PARSE, "layers[%zu].eps must be in (0, 1)", s->li);
    L->eps = (float)eps;
    return TL_OK;
}

static tl_status tl__read_quantizer(tl__src *s, const tl__json *o, tl__layer *L) {
    const tl__json *v = tl__get(o, "quantizer");
    L->quant = TL_QUANT_NONE;
    if (!v) return TL_OK;
    for (size_t q = 1; q < TL__NQUANT; q++)
        if (tl__json_string_is(v, tl__quant_names[q])) {
            L->quant = (tl_quantizer)q;
            return TL_OK;
        }
    return tl__fail(TL_ERR_PARSE, "layers[%zu].quantizer must be per_tensor, per_row, lsq or lsq_paper", s->li);
}

/* linear and bitlinear share their weights part: the matrix, its widths, the bias. */
static tl_status tl__read_weights(tl__src *s, const tl__json *o, size_t width, tl__layer *L) {
    tl_status st = tl__read_quantizer(s, o, L);
    if (st || (st = s->matrix(s, o, &L->quant, &L->m))) return st;
    L->in = L->m->cols, L->out = L->m->rows;
    if (L->in != width)
        return tl__fail(TL_ERR_PARSE, "layers[%zu] takes %zu inputs but the layer before gives %zu", s->li, L->in,
                        width);
    return s->floats(s, o, "bias", L->out, 1, &L->bias);
}

/* --- linear --- */

static tl_status tl__linear_read(tl__src *s, const tl__json *o, size_t width, tl__layer *L) {
    tl_status st = tl__read_weights(s, o, width, L);
    if (st) return st;
    const tl__json *a = tl__get(o, "activations");
    L->prec = TL_PRECISION_FLOAT;
    if (a) {
        if (tl__json_string_is(a, "int8"))
            L->prec = TL_PRECISION_INT8;
        else if (!tl__json_string_is(a, "float"))
            return tl__fail(TL_ERR_PARSE, "layers[%zu].activations must be \"float\" or \"int8\"", s->li);
    }
    return TL_OK;
}

static void tl__linear_write(tl__writer *w, const tl__layer *L) {
    tl__w_matrix(w, L);
    tl__w_floats(w, "bias", L->bias, L->out);
    if (L->prec == TL_PRECISION_INT8) tl__w_str(w, "activations", "int8");
}

/* y = product + bias, then a check that nothing overflowed. */
static tl_status tl__finish_product(const tl__layer *L, tl__run *r, size_t li) {
    size_t n = r->batch * L->out;
    if (L->bias)
        for (size_t t = 0; t < r->batch; t++)
            for (size_t c = 0; c < L->out; c++) r->b[t * L->out + c] += L->bias[c];
    if (tl__first_non_finite(r->b, n) != n)
        return tl__fail(TL_ERR_NON_FINITE, "layers[%zu] (%s): an output overflowed to infinity", li, L->t->name);
    float *t = r->a;
    r->a = r->b, r->b = t;
    r->binary = 0;
    return TL_OK;
}

static tl_status tl__product(tl_model *m, const tl__layer *L, tl__run *r) {
    if (r->binary) {
        size_t rb = tl_binary_row_bytes(L->in);
        memset(m->bits, 0, r->batch * rb);
        for (size_t t = 0; t < r->batch; t++)
            for (size_t c = 0; c < L->in; c++)
                if (r->a[t * L->in + c] != 0.0f) m->bits[t * rb + c / 8] |= (uint8_t)(1u << (c % 8));
        return tl__matmul_binary_ws(L->m, m->bits, r->batch, NULL, r->b, &m->kws);
    }
    if (L->prec == TL_PRECISION_INT8) return tl__matmul_f32_i8_ws(L->m, r->a, r->batch, r->b, &m->kws);
    return tl__matmul_f32_ws(L->m, r->a, r->batch, r->b, &m->kws);
}

static tl_status tl__linear_run(tl_model *m, const tl__layer *L, tl__run *r) {
    tl_status s = tl__product(m, L, r);
    return s ? s : tl__finish_product(L, r, (size_t)(L - m->layers));
}

/* --- bitlinear --- */

static tl_status tl__bitlinear_read(tl__src *s, const tl__json *o, size_t width, tl__layer *L) {
    tl_status st = tl__read_weights(s, o, width, L);
    if (st || (st = s->floats(s, o, "norm_weight", L->in, 1, &L->norm))) return st;
    L->prec = TL_PRECISION_INT8;
    return tl__read_eps(s, o, L);
}

static void tl__bitlinear_write(tl__writer *w, const tl__layer *L) {
    tl__w_matrix(w, L);
    tl__w_floats(w, "bias", L->bias, L->out);
    tl__w_floats(w, "norm_weight", L->norm, L->in);
    tl__w_num(w, "eps", L->eps);
}

static tl_status tl__rmsnorm(float *x, size_t n, float eps, const float *w, size_t li) {
    if (tl__rms_norm(x, n, eps, w))
        return tl__fail(TL_ERR_NON_FINITE, "layers[%zu] (rmsnorm): an output overflowed to infinity", li);
    return TL_OK;
}

static tl_status tl__bitlinear_run(tl_model *m, const tl__layer *L, tl__run *r) {
    tl_status s = TL_OK;
    for (size_t t = 0; t < r->batch && !s; t++)
        s = tl__rmsnorm(r->a + t * L->in, L->in, L->eps, L->norm, (size_t)(L - m->layers));
    if (s) return s;
    tl__layer as_int8 = *L;
    as_int8.prec = TL_PRECISION_INT8;
    s = tl__product(m, &as_int8, r);
    return s ? s : tl__finish_product(L, r, (size_t)(L - m->layers));
}

/* --- elementwise activations --- */

static tl_status tl__plain_read(tl__src *s, const tl__json *o, size_t width, tl__layer *L) {
    (void)s, (void)o, (void)width, (void)L;
    return TL_OK;
}

static void tl__plain_write(tl__writer *w, const tl__layer *L) { (void)w, (void)L; }

static tl_status tl__relu_run(tl_model *m, const tl__layer *L, tl__run *r) {
    (void)m;
    for (size_t i = 0, n = r->batch * L->in; i < n; i++) r->a[i] = r->a[i] > 0.0f ? r->a[i] : 0.0f;
    return TL_OK;
}

static tl_status tl__gelu_run(tl_model *m, const tl__layer *L, tl__run *r) {
    (void)m;
    for (size_t i = 0, n = r->batch * L->in; i < n; i++)
        r->a[i] = 0.5f * r->a[i] * (1.0f + erff(r->a[i] * 0.70710678118654752f));
    return TL_OK;
}

static tl_status tl__silu_run(tl_model *m, const tl__layer *L, tl__run *r) {
    (void)m;
    for (size_t i = 0, n = r->batch * L->in; i < n; i++) r->a[i] = tl__silu(r->a[i]);
    return TL_OK;
}

static tl_status tl__softmax_run(tl_model *m, const tl__layer *L, tl__run *r) {
    (void)m;
    for (size_t t = 0; t < r->batch; t++) tl__softmax(r->a + t * L->in, L->in);
    return TL_OK;
}

/* --- rmsnorm --- */

static tl_status tl__rmsnorm_read(tl__src *s, const tl__json *o, size_t width, tl__layer *L) {
    if (tl__get(o, "dim")) {
        size_t dim = 0;
        tl_status st = tl__size_field(s, o, "dim", &dim);
        if (st) return st;
        if (dim != width)
            return tl__fail(TL_ERR_PARSE, "layers[%zu].dim is %zu but the layer before gives %zu", s->li, dim, width);
    } else if (s->version) {
        return tl__fail(TL_ERR_PARSE, "layers[%zu]: no \"dim\"", s->li);
    }
    tl_status st = s->floats(s, o, "weight", width, 1, &L->norm);
    return st ? st : tl__read_eps(s, o, L);
}

static void tl__rmsnorm_write(tl__writer *w, const tl__layer *L) {
    tl__w_size(w, "dim", L->in);
    tl__w_floats(w, "weight", L->norm, L->in);
    tl__w_num(w, "eps", L->eps);
}

static tl_status tl__rmsnorm_run(tl_model *m, const tl__layer *L, tl__run *r) {
    tl_status s = TL_OK;
    for (size_t t = 0; t < r->batch && !s; t++)
        s = tl__rmsnorm(r->a + t * L->in, L->in, L->eps, L->norm, (size_t)(L - m->layers));
    return s;
}

/* --- binarize --- */

static tl_status tl__binarize_read(tl__src *s, const tl__json *o, size_t width, tl__layer *L) {
    const tl__json *k = tl__get(o, "k"), *t = tl__get(o, "threshold");
    if (!k == !t) return tl__fail(TL_ERR_PARSE, "layers[%zu]: give exactly one of \"threshold\" and \"k\"", s->li);
    if (k) {
        L->use_k = 1;
        tl_status st = tl__size_field(s, o, "k", &L->k);
        if (st) return st;
        if (L->k > width) return tl__fail(TL_ERR_PARSE, "layers[%zu].k is %zu, above the width %zu", s->li, L->k, width);
        return TL_OK;
    }
    double th;
    tl_status st = tl__num_field(s, o, "threshold", 0, &th);
    L->threshold = tl__to_float_sat(th);
    return st;
}

static void tl__binarize_write(tl__writer *w, const tl__layer *L) {
    if (L->use_k)
        tl__w_size(w, "k", L->k);
    else
        tl__w_num(w, "threshold", L->threshold);
}

typedef struct {
    float v;
    uint32_t i;
} tl__vi;

/* Strict total order: larger value first, then lower index (ties: the lower index wins). */
static int tl__vi_before(const tl__vi *a, const tl__vi *b) { return a->v > b->v || (a->v == b->v && a->i < b->i); }

static int tl__vi_cmp(const void *a, const void *b) {
    return tl__vi_before(a, b) ? -1 : tl__vi_before(b, a) ? 1 : 0;
}

static void tl__vi_swap(tl__vi *a, tl__vi *b) {
    tl__vi t = *a;
    *a = *b, *b = t;
}

/* Move the k best of p[0..n) to the front (in any order): quickselect, O(n) on average, with a
 * heapsort of what is left when the partitions stay lopsided (O(n log n) at worst). Invariant:
 * everything in p[0..lo) is better than p[lo..hi), which is better than p[hi..n). */
static void tl__select(tl__vi *p, size_t n, size_t k) {
    size_t lo = 0, hi = n;
    for (int budget = 64; hi - lo > 16 && budget > 0; budget--) {
        size_t mid = lo + (hi - lo) / 2, last = hi - 1;
        /* median of three to the end, as the pivot */
        if (tl__vi_before(&p[mid], &p[lo])) tl__vi_swap(&p[mid], &p[lo]);
        if (tl__vi_before(&p[last], &p[lo])) tl__vi_swap(&p[last], &p[lo]);
        if (tl__vi_before(&p[mid], &p[last])) tl__vi_swap(&p[mid], &p[last]);
        size_t i = lo;
        for (size_t j = lo; j < last; j++)
            if (tl__vi_before(&p[j], &p[last])) tl__vi_swap(&p[i++], &p[j]);
        tl__vi_swap(&p[i], &p[last]); /* the pivot at i: p[lo..i) better, p[i+1..hi) worse */
        if (i == k || i + 1 == k) return;
        if (i < k)
            lo = i + 1;
        else
            hi = i;
    }
    if (hi - lo > 1) tl__heapsort(p + lo, hi - lo, sizeof *p, tl__vi_cmp);
}

static tl_status tl__binarize_run(tl_model *m, const tl__layer *L, tl__run *r) {
    for (size_t t = 0; t < r->batch; t++) {
        float *v = r->a + t * L->in;
        if (!L->use_k) {
            for (size_t c = 0; c < L->in; c++) v[c] = v[c] > L->threshold ? 1.0f : 0.0f;
            continue;
        }
        tl__vi *p = m->sel;
        for (size_t c = 0; c < L->in; c++) p[c].v = v[c], p[c].i = (uint32_t)c;
        tl__select(p, L->in, L->k);
        for (size_t c = 0; c < L->in; c++) v[c] = 0.0f;
        for (size_t j = 0; j < L->k; j++) v[p[j].i] = 1.0f;
    }
    r->binary = 1;
    return TL_OK;
}

static const char *const tl__linear_keys[] = {"bias", "activations", "quantizer", NULL};
static const char *const tl__bitlinear_keys[] = {"bias", "norm_weight", "eps", "quantizer", NULL};
static const char *const tl__rmsnorm_keys[] = {"dim", "weight", "eps", NULL};
static const char *const tl__binarize_keys[] = {"threshold", "k", NULL};

static const tl__ltype tl__ltypes[] = {
    {"linear", tl__linear_keys, 1, tl__linear_read, tl__linear_write, tl__linear_run},
    {"bitlinear", tl__bitlinear_keys, 1, tl__bitlinear_read, tl__bitlinear_write, tl__bitlinear_run},
    {"relu", NULL, 0, tl__plain_read, tl__plain_write, tl__relu_run},
    {"gelu", NULL, 0, tl__plain_read, tl__plain_write, tl__gelu_run},
    {"silu", NULL, 0, tl__plain_read, tl__plain_write, tl__silu_run},
    {"rmsnorm", tl__rmsnorm_keys, 0, tl__rmsnorm_read, tl__rmsnorm_write, tl__rmsnorm_run},
    {"binarize", tl__binarize_keys, 0, tl__binarize_read, tl__binarize_write, tl__binarize_run},
    {"softmax", NULL, 0, tl__plain_read, tl__plain_write, tl__softmax_run},
};
#define TL__NLTYPES (sizeof tl__ltypes / sizeof *tl__ltypes)
#define TL__LINEAR (&tl__ltypes[0])
#define TL__BITLINEAR (&tl__ltypes[1])
#define TL__BINARIZE (&tl__ltypes[6])

/* Keys only version 2 files may hold. */
static const char *const tl__v2_keys[] = {"name", "activations", "quantizer", NULL};

/* ---------------------------------------------------------------------------
 * Reading a layer (any source) and appending it
 * ------------------------------------------------------------------------- */

static void tl__layer_free(tl__layer *L) {
    tl_matrix_free(L->m);
    tl__free(L->bias), tl__free(L->norm), tl__free(L->name);
    memset(L, 0, sizeof *L);
}

static tl_status tl__read_layer(tl__src *s, const tl__json *o, size_t width, tl__layer *L) {
    memset(L, 0, sizeof *L);
    L->in = L->out = width;
    if (tl__json_kind_of(o) != TL__JSON_OBJECT)
        return tl__fail(TL_ERR_PARSE, "layers[%zu] must be an object", s->li);
    const tl__json *type = tl__get(o, "type");
    for (size_t i = 0; i < TL__NLTYPES && !L->t; i++)
        if (tl__json_string_is(type, tl__ltypes[i].name)) L->t = &tl__ltypes[i];
    if (!L->t) {
        size_t n = 0;
        const char *ts = tl__json_string(type, &n);
        return ts ? tl__fail(TL_ERR_PARSE, "layers[%zu]: unknown layer type \"%.*s\"", s->li, (int)(n > 64 ? 64 : n), ts)
                  : tl__fail(TL_ERR_PARSE, "layers[%zu]: no \"type\"", s->li);
    }
    for (size_t i = 0; i < tl__json_count(o); i++) {
        size_t n;
        const char *k = tl__json_key(o, i, &n);
        int known = (n == 4 && !memcmp(k, "type", 4)) || (n == 4 && !memcmp(k, "name", 4)) ||
                    tl__has(L->t->keys, k, n) || (L->t->has_matrix && tl__has(s->matrix_keys, k, n));
        if (!known)
            return tl__fail(TL_ERR_PARSE, "layers[%zu] (%s): unknown key \"%.*s\"", s->li, L->t->name,
                            (int)(n > 64 ? 64 : n), k);
        if (s->version == 1 && tl__has(tl__v2_keys, k, n))
            return tl__fail(TL_ERR_PARSE, "layers[%zu]: key \"%.*s\" needs model file version 2", s->li, (int)n, k);
    }
    const tl__json *name = tl__get(o, "name");
    if (name) {
        size_t n;
        const char *ns = tl__json_string(name, &n);
        if (!ns) return tl__fail(TL_ERR_PARSE, "layers[%zu].name must be a string", s->li);
        if (!(L->name = tl__malloc(n + 1))) return TL_ERR_NO_MEMORY;
        memcpy(L->name, ns, n), L->name[n] = 0;
    }
    return L->t->read(s, o, width, L);
}

/* Append L (taken over) to m, checking what may follow what. */
/* At most this many layers (docs/ERRORS.md): a model's layer table stays small (a few MiB)
 * whatever a file declares; real models have thousands at most. */
#define TL__MAX_LAYERS ((size_t)1 << 16)

static tl_status tl__append(tl_model *m, tl__layer *L, size_t li) {
    if (m->nlayers >= TL__MAX_LAYERS)
        return tl__fail(TL_ERR_PARSE, "layers[%zu]: a model has at most %zu layers", li, TL__MAX_LAYERS);
    if (m->nlayers && m->layers[m->nlayers - 1].t == TL__BINARIZE && L->t != TL__LINEAR)
        return tl__fail(TL_ERR_PARSE, "layers[%zu]: binarize must be followed by a linear layer", li);
    if (!tl__array_grow((void **)&m->layers, m->nlayers, &m->cap, sizeof *m->layers, 8)) return TL_ERR_NO_MEMORY;
    m->layers[m->nlayers++] = *L;
    memset(L, 0, sizeof *L);
    size_t out = m->layers[m->nlayers - 1].out;
    if (out > m->max_width) m->max_width = out;
    m->output = out;
    return TL_OK;
}

static tl_status tl__complete(const tl_model *m) {
    if (!m->nlayers) return tl__fail(TL_ERR_PARSE, "a model needs at least one layer");
    if (m->layers[m->nlayers - 1].t == TL__BINARIZE)
        return tl__fail(TL_ERR_PARSE, "layers[%zu]: a model cannot end with binarize", m->nlayers - 1);
    return TL_OK;
}

static tl_model *tl__model_new(size_t input) {
    tl_model *m = tl__calloc(1, sizeof *m);
    if (m) m->input = m->output = m->max_width = input;
    return m;
}

static void tl__meta_clear(tl_model *m) {
    for (size_t i = 0; i < m->nmeta; i++) tl__free(m->meta[i].key), tl__free(m->meta[i].value);
    tl__free(m->meta);
    m->meta = NULL, m->nmeta = 0;
}

static void tl__run_clear(tl_model *m) {
    tl__free(m->a), tl__free(m->b), tl__free(m->bits), tl__free(m->sel);
    m->a = m->b = NULL, m->bits = NULL, m->sel = NULL;
    m->ws_batch = 0;
}

void tl_model_free(tl_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->nlayers; i++) tl__layer_free(&m->layers[i]);
    tl__free(m->layers);
    tl__meta_clear(m);
    tl__run_clear(m);
    tl__ws_free(&m->kws);
    tl__free(m->file); /* after the matrices that borrow from it */
    tl__free(m);
}

static char *tl__dup(const char *s, size_t n) {
    char *d = tl__malloc(n + 1);
    if (d) memcpy(d, s, n), d[n] = 0;
    return d;
}

/* metadata: an object of strings (NULL: none). */
static tl_status tl__read_meta(tl_model *m, const tl__json *meta) {
    if (!meta) return TL_OK;
    if (tl__json_kind_of(meta) != TL__JSON_OBJECT) return tl__fail(TL_ERR_PARSE, "metadata must be an object");
    size_t n = tl__json_count(meta);
    if (!n) return TL_OK;
    if (!(m->meta = tl__calloc(n, sizeof *m->meta))) return TL_ERR_NO_MEMORY;
    for (size_t i = 0; i < n; i++) {
        size_t kl, vl;
        const char *k = tl__json_key(meta, i, &kl), *v = tl__json_string(tl__json_item(meta, i), &vl);
        if (!v)
            return tl__fail(TL_ERR_PARSE, "metadata.%.*s must be a string", (int)(kl > 64 ? 64 : kl), k);
        m->nmeta = i + 1;
        m->meta[i].key = tl__dup(k, kl), m->meta[i].value = tl__dup(v, vl);
        m->meta[i].klen = kl, m->meta[i].vlen = vl;
        if (!m->meta[i].key || !m->meta[i].value) return TL_ERR_NO_MEMORY;
    }
    return TL_OK;
}

/* The layers of a JSON array through a source, appended to m. */
static tl_status tl__read_layers(tl_model *m, tl__src *s, const tl__json *layers) {
    if (tl__json_kind_of(layers) != TL__JSON_ARRAY || tl__json_count(layers) == 0)
        return tl__fail(TL_ERR_PARSE, "\"layers\" must be a non-empty array");
    if (tl__json_count(layers) > TL__MAX_LAYERS)
        return tl__fail(TL_ERR_PARSE, "\"layers\" has %zu entries; a model has at most %zu layers",
                        tl__json_count(layers), TL__MAX_LAYERS);
    for (size_t i = 0; i < tl__json_count(layers); i++) {
        tl__layer L;
        s->li = i;
        tl_status st = tl__read_layer(s, tl__json_item(layers, i), m->output, &L);
        if (!st) st = tl__append(m, &L, i);
        if (st) {
            tl__layer_free(&L);
            return st;
        }
    }
    return tl__complete(m);
}

static int tl__only_keys(const tl__json *o, const char *const *allowed, const char **bad, size_t *bad_len) {
    for (size_t i = 0; i < tl__json_count(o); i++) {
        size_t n;
        const char *k = tl__json_key(o, i, &n);
        if (!tl__has(allowed, k, n)) {
            *bad = k, *bad_len = n > 64 ? 64 : n;
            return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------------------
 * The file: load and save
 * ------------------------------------------------------------------------- */

static uint64_t tl__le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

int tl_model_is_file(const uint8_t *bytes, size_t len) {
    return bytes && len >= 4 && memcmp(bytes, TL__MODEL_MAGIC, 4) == 0;
}

static tl_status tl__load(const uint8_t *bytes, size_t len, int borrow, tl_model **out) {
    if (!bytes || !out) return TL_ERR_NULL;
    *out = NULL;
    if (len < 16 || memcmp(bytes, TL__MODEL_MAGIC, 4) != 0)
        return tl__fail(TL_ERR_PARSE, len < 4 ? "%zu bytes: too short for a model file"
                                              : "the file does not start with \"TLML\" (%zu bytes)",
                        len);
    uint32_t version = (uint32_t)bytes[4] | (uint32_t)bytes[5] << 8 | (uint32_t)bytes[6] << 16 |
                       (uint32_t)bytes[7] << 24;
    if (version == 0) return tl__fail(TL_ERR_PARSE, "byte 4: version 0");
    if (version > TL_MODEL_VERSION)
        return tl__fail(TL_ERR_VERSION, "byte 4: version %u; this library reads versions 1 to %d", version,
                        TL_MODEL_VERSION);
    uint64_t hlen = tl__le64(bytes + 8);
    if (hlen > len - 16)
        return tl__fail(TL_ERR_PARSE, "byte 8: the header length %llu runs past the end of the %zu-byte file",
                        (unsigned long long)hlen, len);
    if ((16 + hlen) % 16)
        return tl__fail(TL_ERR_PARSE, "byte 8: the header length %llu does not end on a multiple of 16",
                        (unsigned long long)hlen);
    tl__json *root = NULL;
    tl_status s = tl__json_parse((const char *)bytes + 16, (size_t)hlen, &root);
    if (s) return s == TL_ERR_PARSE ? tl__fail(s, "the header (bytes 16..%llu) is not valid JSON",
                                               (unsigned long long)(16 + hlen))
                                    : s;
    tl__file_src fs = {{tl__file_floats, tl__file_matrix, tl__file_matrix_keys, (int)version, 0},
                       bytes + 16 + hlen, len - 16 - (size_t)hlen, borrow, NULL, 0, 0};
    static const char *const top_keys[] = {"format", "version", "input", "layers", "metadata", NULL};
    tl_model *m = NULL;
    const char *bad;
    size_t bad_len, input;
    int64_t v;
    if (tl__json_kind_of(root) != TL__JSON_OBJECT) {
        s = tl__fail(TL_ERR_PARSE, "the header is not a JSON object");
    } else if (!tl__only_keys(root, top_keys, &bad, &bad_len)) {
        s = tl__fail(TL_ERR_PARSE, "the header has an unknown key \"%.*s\"", (int)bad_len, bad);
    } else if (!tl__json_string_is(tl__get(root, "format"), "tilelli-model")) {
        s = tl__fail(TL_ERR_PARSE, "the header's \"format\" is not \"tilelli-model\"");
    } else if (!tl__json_int64(tl__get(root, "version"), &v) || v != (int64_t)version) {
        s = tl__fail(TL_ERR_PARSE, "the header's \"version\" is not %u, the version at byte 4", version);
    } else if (!tl__json_int64(tl__get(root, "input"), &v) || v <= 0 || (uint64_t)v > TL_MAX_ELEMENTS) {
        s = tl__fail(TL_ERR_PARSE, "the header's \"input\" must be an integer in 1..%zu", (size_t)TL_MAX_ELEMENTS);
    } else if (!(m = tl__model_new(input = (size_t)v))) {
        s = TL_ERR_NO_MEMORY;
    } else if (!(s = tl__read_meta(m, tl__get(root, "metadata"))) &&
               !(s = tl__read_layers(m, &fs.base, tl__get(root, "layers")))) {
        s = tl__check_overlaps(&fs);
    }
    tl__free(fs.ranges);
    tl__json_free(root);
    if (s) {
        tl_model_free(m);
        return s;
    }
    *out = m;
    return TL_OK;
}

tl_status tl_model_load(const uint8_t *bytes, size_t len, tl_model **out) { return tl__load(bytes, len, 0, out); }

/* tl_model_load_owned keeps the file when what the model does not use of it is at most this or a
 * quarter of it (the header and float parameters: little beside the weights). */
#define TL__OWNED_SLACK ((size_t)1 << 20)

tl_status tl_model_load_owned(uint8_t *bytes, size_t len, tl_model **out) {
    if (!bytes || !out) return TL_ERR_NULL;
    *out = NULL;
    if ((uintptr_t)bytes % 16)
        return tl__fail(TL_ERR_ARGUMENT, "the file's buffer is not 16-byte aligned (allocate it with tl_alloc)");
    tl_status s = tl__load(bytes, len, 1, out);
    if (s) return s;
    tl_model *m = *out;
    /* The matrices' bytes into their tiles (matrix.c), in the file, now that nothing can refuse it */
    size_t most = 16;
    for (size_t i = 0; i < m->nlayers; i++)
        if (m->layers[i].m && tl__matrix_tile_scratch(m->layers[i].m) > most) most = tl__matrix_tile_scratch(m->layers[i].m);
    uint8_t *scratch = tl__malloc(most);
    if (!scratch) {
        tl_model_free(m);
        *out = NULL;
        return TL_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < m->nlayers; i++)
        if (m->layers[i].m) tl__matrix_tile_plain(m->layers[i].m, scratch);
    tl__free(scratch);
    /* A file that carries much the model does not use (data no layer names) is not kept: the
     * matrices get copies of their bytes and the file is freed, so a model never holds more than
     * its own bytes plus a little. */
    size_t used = 0;
    for (size_t i = 0; i < m->nlayers; i++)
        if (m->layers[i].m) used += m->layers[i].m->rows * m->layers[i].m->row_bytes;
    if (len - used <= len / 4 || len - used <= TL__OWNED_SLACK) {
        m->file = bytes;
        return TL_OK;
    }
    for (size_t i = 0; i < m->nlayers; i++)
        if (m->layers[i].m && (s = tl__matrix_own(m->layers[i].m))) {
            tl_model_free(m); /* the file is not its yet: it stays the caller's */
            *out = NULL;
            return s;
        }
    tl__free(bytes);
    return TL_OK;
}

/* The header's layers and metadata (save: with blobs into data; describe: data NULL). */
static void tl__write_model(const tl_model *m, tl__writer *w, int describe) {
    tl__buf *j = w->json;
    if (describe)
        tl__buf_printf(j, "{\"input\":%zu,\"output\":%zu,\"layers\":[", m->input, m->output);
    else
        tl__buf_printf(j, "{\"format\":\"tilelli-model\",\"version\":%d,\"input\":%zu,\"layers\":[", TL_MODEL_VERSION,
                       m->input);
    for (size_t i = 0; i < m->nlayers; i++) {
        const tl__layer *L = &m->layers[i];
        if (i) tl__buf_put(j, ",", 1);
        tl__buf_put(j, "{\"type\":\"", 9);
        tl__buf_put(j, L->t->name, strlen(L->t->name));
        tl__buf_put(j, "\"", 1);
        if (L->name) tl__w_str(w, "name", L->name);
        if (describe && !L->t->has_matrix) {
            tl__w_size(w, "in", L->in);
            tl__w_size(w, "out", L->out);
        }
        L->t->write(w, L);
        if (describe && L->t == TL__BITLINEAR) tl__w_str(w, "activations", "int8");
        if (describe && L->t == TL__LINEAR && L->prec != TL_PRECISION_INT8) tl__w_str(w, "activations", "float");
        tl__buf_put(j, "}", 1);
    }
    tl__buf_put(j, "]", 1);
    if (m->nmeta || describe) {
        tl__buf_printf(j, ",\"metadata\":{");
        for (size_t i = 0; i < m->nmeta; i++) {
            if (i) tl__buf_put(j, ",", 1);
            tl__buf_json_string(j, m->meta[i].key, m->meta[i].klen);
            tl__buf_put(j, ":", 1);
            tl__buf_json_string(j, m->meta[i].value, m->meta[i].vlen);
        }
        tl__buf_put(j, "}", 1);
    }
    tl__buf_put(j, "}", 1);
}

tl_status tl_model_save(const tl_model *m, uint8_t **bytes, size_t *len) {
    if (!m || !bytes || !len) return TL_ERR_NULL;
    tl__buf json = {0}, data = {0}, file = {0};
    tl__writer w = {&json, &data, 0, 0, {0}};
    tl__write_model(m, &w, 0);
    tl_status s = tl__buf_status(&json);
    if (!s) s = tl__buf_status(&data);
    if (!s) {
        size_t padded = (16 + json.len + 15) / 16 * 16 - 16;
        uint8_t head[16] = {'T', 'L', 'M', 'L', TL_MODEL_VERSION, 0, 0, 0};
        for (int i = 0; i < 8; i++) head[8 + i] = (uint8_t)((uint64_t)padded >> (8 * i));
        tl__buf_put(&file, head, 16);
        tl__buf_put(&file, json.p, json.len);
        for (size_t i = json.len; i < padded; i++) tl__buf_put(&file, " ", 1);
        tl__buf_put(&file, data.p, data.len);
        s = tl__buf_status(&file);
    }
    tl__buf_free(&json), tl__buf_free(&data);
    if (s) {
        tl__buf_free(&file);
        return s;
    }
    *bytes = file.p, *len = file.len;
    return TL_OK;
}

tl_status tl_model_describe(const tl_model *m, char **json, size_t *len) {
    if (!m || !json || !len) return TL_ERR_NULL;
    tl__buf j = {0};
    tl__writer w = {&j, NULL, 0, 0, {0}};
    tl__write_model(m, &w, 1);
    tl_status s = tl__buf_status(&j);
    if (s) {
        tl__buf_free(&j);
        return s;
    }
    *json = (char *)j.p, *len = j.len;
    return TL_OK;
}

/* ---------------------------------------------------------------------------
 * Inspection and changes
 * ------------------------------------------------------------------------- */

size_t tl_model_input_size(const tl_model *m) { return m ? m->input : 0; }
size_t tl_model_output_size(const tl_model *m) { return m ? m->output : 0; }
size_t tl_model_layer_count(const tl_model *m) { return m ? m->nlayers : 0; }

tl_status tl_model_layer_info(const tl_model *m, size_t i, tl_layer_info *out) {
    if (!m || !out) return TL_ERR_NULL;
    if (i >= m->nlayers) return tl__fail(TL_ERR_ARGUMENT, "layer %zu of a %zu-layer model", i, m->nlayers);
    const tl__layer *L = &m->layers[i];
    memset(out, 0, sizeof *out);
    out->type = L->t->name, out->name = L->name, out->in = L->in, out->out = L->out;
    out->bias = L->bias, out->norm = L->norm;
    if (L->m) {
        out->format = L->m->format, out->matrix = L->m, out->precision = L->prec;
        out->quantizer = tl__quant_names[L->quant];
    }
    return TL_OK;
}

const tl_matrix *tl_model_matrix(const tl_model *m, size_t i) { return m && i < m->nlayers ? m->layers[i].m : NULL; }

tl_status tl_model_set_precision(tl_model *m, tl_precision p) {
    if (!m) return TL_ERR_NULL;
    if (p != TL_PRECISION_FLOAT && p != TL_PRECISION_INT8)
        return tl__fail(TL_ERR_ARGUMENT, "precision %d is neither float (1) nor int8 (2)", (int)p);
    for (size_t i = 0; i < m->nlayers; i++)
        if (m->layers[i].t == TL__LINEAR) m->layers[i].prec = p;
    return TL_OK;
}

tl_status tl_model_set_column_copy(tl_model *m, int allow) {
    if (!m) return TL_ERR_NULL;
    if (allow != 0 && allow != 1) return tl__fail(TL_ERR_ARGUMENT, "allow is %d, not 0 or 1", allow);
    for (size_t i = 0; i < m->nlayers; i++)
        if (m->layers[i].m) tl_matrix_set_column_copy(m->layers[i].m, allow);
    return TL_OK;
}

static tl_status tl__copy_floats(const float *v, size_t n, float **out) {
    *out = NULL;
    if (!v) return TL_OK;
    if (!(*out = tl__malloc(n * sizeof **out))) return TL_ERR_NO_MEMORY;
    memcpy(*out, v, n * sizeof **out);
    return TL_OK;
}

tl_status tl_model_convert(const tl_model *m, tl_format f, tl_model **out) {
    if (!m || !out) return TL_ERR_NULL;
    if (!tl_format_name(f)) return tl__fail(TL_ERR_FORMAT, "format %d is not a packed format", (int)f);
    tl_model *c = tl__model_new(m->input);
    tl_status s = c ? TL_OK : TL_ERR_NO_MEMORY;
    if (!s && m->nmeta) {
        if (!(c->meta = tl__calloc(m->nmeta, sizeof *c->meta))) s = TL_ERR_NO_MEMORY;
        for (size_t i = 0; i < m->nmeta && !s; i++) {
            c->nmeta = i + 1;
            c->meta[i].key = tl__dup(m->meta[i].key, m->meta[i].klen);
            c->meta[i].value = tl__dup(m->meta[i].value, m->meta[i].vlen);
            c->meta[i].klen = m->meta[i].klen, c->meta[i].vlen = m->meta[i].vlen;
            if (!c->meta[i].key || !c->meta[i].value) s = TL_ERR_NO_MEMORY;
        }
    }
    for (size_t i = 0; i < m->nlayers && !s; i++) {
        const tl__layer *L = &m->layers[i];
        tl__layer C = *L;
        C.name = NULL, C.m = NULL, C.bias = C.norm = NULL;
        if ((L->name && !(C.name = tl__dup(L->name, strlen(L->name)))) ||
            (s = tl__copy_floats(L->bias, L->out, &C.bias)) || (s = tl__copy_floats(L->norm, L->in, &C.norm)) ||
            (L->m && (s = tl__copy_matrix(L->m, f, &C.m))) || (s = tl__append(c, &C, i))) {
            if (!s) s = TL_ERR_NO_MEMORY;
            tl__layer_free(&C);
        }
    }
    if (s) {
        tl_model_free(c);
        return s;
    }
    *out = c;
    return TL_OK;
}

/* ---------------------------------------------------------------------------
 * Builders
 * ------------------------------------------------------------------------- */

static void tl__unstage(tl_model_builder *b) {
    for (size_t i = 0; i < b->nstaged; i++) tl__free(b->staged[i].name), tl__free(b->staged[i].v);
    b->nstaged = 0;
}

tl_status tl_model_builder_new(size_t input, tl_model_builder **out) {
    if (!out) return TL_ERR_NULL;
    *out = NULL;
    if (input == 0 || input > TL_MAX_ELEMENTS)
        return tl__fail(input ? TL_ERR_OVERFLOW : TL_ERR_EMPTY, "input width %zu", input);
    tl_model_builder *b = tl__calloc(1, sizeof *b);
    if (!b || !(b->m = tl__model_new(input))) {
        tl__free(b);
        return TL_ERR_NO_MEMORY;
    }
    b->base = (tl__src){tl__builder_floats, tl__builder_matrix, NULL, 0, 0};
    *out = b;
    return TL_OK;
}

void tl_model_builder_free(tl_model_builder *b) {
    if (!b) return;
    tl__unstage(b);
    tl__free(b->staged);
    tl_model_free(b->m);
    tl__free(b);
}

tl_status tl_model_builder_stage(tl_model_builder *b, const char *name, size_t name_len, const float *v, size_t n) {
    if (!b || !name || (!v && n)) return TL_ERR_NULL;
    if (n > TL_MAX_ELEMENTS) return TL_ERR_OVERFLOW;
    if (tl__first_non_finite(v, n) != n)
        return tl__fail(TL_ERR_NON_FINITE, "%.*s[%zu] is not finite", (int)(name_len > 64 ? 64 : name_len), name,
                        tl__first_non_finite(v, n));
    if (!tl__array_grow((void **)&b->staged, b->nstaged, &b->cap, sizeof *b->staged, 4)) return TL_ERR_NO_MEMORY;
    tl__staged *st = &b->staged[b->nstaged];
    st->name = tl__dup(name, name_len), st->v = tl__malloc(n ? n * sizeof *v : 1);
    if (!st->name || !st->v) {
        tl__free(st->name), tl__free(st->v);
        return TL_ERR_NO_MEMORY;
    }
    if (n) memcpy(st->v, v, n * sizeof *v);
    st->name_len = name_len, st->n = n, st->used = 0;
    b->nstaged++;
    return TL_OK;
}

tl_status tl_model_builder_add(tl_model_builder *b, const char *json, size_t json_len, const tl_matrix *matrix) {
    if (!b || !json) return TL_ERR_NULL;
    size_t li = b->m->nlayers;
    tl__json *o = NULL;
    tl_status s = tl__json_parse(json, json_len, &o);
    if (s) {
        tl__unstage(b);
        return s == TL_ERR_PARSE ? tl__fail(s, "layers[%zu]: the description is not valid JSON", li) : s;
    }
    tl__layer L;
    b->base.li = li, b->matrix = matrix;
    s = tl__read_layer(&b->base, o, b->m->output, &L);
    if (!s && matrix && !L.t->has_matrix)
        s = tl__fail(TL_ERR_ARGUMENT, "layers[%zu] (%s) takes no matrix", li, L.t->name);
    for (size_t i = 0; i < b->nstaged && !s; i++)
        if (!b->staged[i].used)
            s = tl__fail(TL_ERR_ARGUMENT, "layers[%zu] (%s) takes no parameter \"%s\"", li, L.t->name, b->staged[i].name);
    if (!s) s = tl__append(b->m, &L, li);
    if (s) tl__layer_free(&L);
    tl__json_free(o);
    tl__unstage(b);
    b->matrix = NULL;
    return s;
}

tl_status tl_model_set_metadata(tl_model *m, const char *json, size_t json_len) {
    if (!m || !json) return TL_ERR_NULL;
    tl__json *o = NULL;
    tl_status s = tl__json_parse(json, json_len, &o);
    if (s) return s == TL_ERR_PARSE ? tl__fail(s, "metadata is not valid JSON") : s;
    /* merged: the old entries the new object does not name, then the new ones */
    tl_model fresh = {0};
    s = tl__read_meta(&fresh, o);
    size_t keep = 0;
    for (size_t i = 0; i < m->nmeta && !s; i++)
        keep += !tl__json_find(o, m->meta[i].key, m->meta[i].klen, NULL);
    tl__meta *all = NULL;
    if (!s && keep + fresh.nmeta && !(all = tl__calloc(keep + fresh.nmeta, sizeof *all))) s = TL_ERR_NO_MEMORY;
    if (!s) {
        size_t k = 0;
        for (size_t i = 0; i < m->nmeta; i++) {
            if (tl__json_find(o, m->meta[i].key, m->meta[i].klen, NULL)) {
                tl__free(m->meta[i].key), tl__free(m->meta[i].value);
                continue;
            }
            all[k++] = m->meta[i];
        }
        for (size_t i = 0; i < fresh.nmeta; i++) all[k++] = fresh.meta[i];
        tl__free(m->meta), tl__free(fresh.meta);
        m->meta = all, m->nmeta = k;
        fresh.nmeta = 0, fresh.meta = NULL;
    }
    tl__meta_clear(&fresh);
    tl__json_free(o);
    return s;
}

tl_status tl_model_builder_finish(tl_model_builder *b, tl_model **out) {
    if (!b || !out) return TL_ERR_NULL;
    tl_status s = tl__complete(b->m);
    if (s) return s;
    tl_model *fresh = tl__model_new(b->m->input);
    if (!fresh) return TL_ERR_NO_MEMORY;
    *out = b->m;
    b->m = fresh;
    return TL_OK;
}

tl_status tl_model_from_checkpoint(const tl_safetensors *st, const char *arch, size_t arch_len, tl_format f,
                                   tl_precision precision, tl_model **out) {
    if (!st || !arch || !out) return TL_ERR_NULL;
    *out = NULL;
    if (!tl_format_name(f)) return tl__fail(TL_ERR_FORMAT, "format %d is not a packed format", (int)f);
    tl__json *root = NULL;
    tl_status s = tl__json_parse(arch, arch_len, &root);
    if (s) return s == TL_ERR_PARSE ? tl__fail(s, "the architecture is not valid JSON") : s;
    static const char *const keys[] = {"input", "layers", "metadata", NULL};
    tl__ckpt_src cs = {{tl__ckpt_floats, tl__ckpt_matrix, tl__ckpt_matrix_keys, 0, 0}, st, f};
    const char *bad;
    size_t bad_len;
    int64_t input;
    tl_model *m = NULL;
    if (tl__json_kind_of(root) != TL__JSON_OBJECT)
        s = tl__fail(TL_ERR_PARSE, "the architecture must be a JSON object {\"input\", \"layers\"}");
    else if (!tl__only_keys(root, keys, &bad, &bad_len))
        s = tl__fail(TL_ERR_PARSE, "the architecture has an unknown key \"%.*s\"", (int)bad_len, bad);
    else if (!tl__json_int64(tl__get(root, "input"), &input) || input <= 0 || (uint64_t)input > TL_MAX_ELEMENTS)
        s = tl__fail(TL_ERR_PARSE, "the architecture's \"input\" must be an integer in 1..%zu", (size_t)TL_MAX_ELEMENTS);
    else if (!(m = tl__model_new((size_t)input)))
        s = TL_ERR_NO_MEMORY;
    else if (!(s = tl__read_meta(m, tl__get(root, "metadata"))) &&
             !(s = tl__read_layers(m, &cs.base, tl__get(root, "layers"))) && precision != TL_PRECISION_DEFAULT)
        s = tl_model_set_precision(m, precision);
    tl__json_free(root);
    if (s) {
        tl_model_free(m);
        return s;
    }
    *out = m;
    return TL_OK;
}

/* ---------------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------------- */

static tl_status tl__run_reserve(tl_model *m, size_t batch) {
    if (batch <= m->ws_batch) return TL_OK;
    tl__run_clear(m);
    size_t W = m->max_width, n = batch * W;
    m->a = tl__malloc(n * sizeof *m->a), m->b = tl__malloc(n * sizeof *m->b);
    m->bits = tl__malloc(batch * tl_binary_row_bytes(W)), m->sel = tl__malloc(W * sizeof(tl__vi));
    if (!m->a || !m->b || !m->bits || !m->sel) {
        tl__run_clear(m);
        return TL_ERR_NO_MEMORY;
    }
    m->ws_batch = batch;
    return TL_OK;
}

tl_status tl_model_run(tl_model *m, const float *x, size_t x_len, size_t batch, float *out, size_t out_len) {
    if (!m || !x || !out) return TL_ERR_NULL;
    if (batch == 0) return TL_ERR_EMPTY;
    if (batch > TL_MAX_ELEMENTS / m->max_width) return TL_ERR_OVERFLOW;
    if (x_len != batch * m->input || out_len != batch * m->output)
        return tl__fail(TL_ERR_SIZE, "%zu inputs and %zu outputs for a batch of %zu of a %zu -> %zu model", x_len,
                        out_len, batch, m->input, m->output);
    size_t bad = tl__first_non_finite(x, x_len);
    if (bad != x_len) return tl__fail(TL_ERR_NON_FINITE, "input[%zu] is not finite", bad);
    tl_status s = tl__run_reserve(m, batch);
    if (s) return s;
    memcpy(m->a, x, x_len * sizeof *x);
    tl__run r = {m->a, m->b, batch, 0};
    for (size_t i = 0; i < m->nlayers && !s; i++) s = m->layers[i].t->run(m, &m->layers[i], &r);
    if (!s) memcpy(out, r.a, out_len * sizeof *out);
    return s;
}
