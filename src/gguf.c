/* gguf.c — GGUF files, read and written here and nowhere else (docs/FORMATS.md, "GGUF").
 *
 * The container (GGUF v3, little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata
 * count; the metadata entries (string key, u32 value type, value); the tensor infos (string name,
 * u32 rank, u64 dimensions with the row length first, u32 GGML type, u64 offset into the data);
 * padding to general.alignment (32 by default); the data, each tensor at its aligned offset. A
 * string is a u64 length and that many bytes.
 *
 * The ternary types (what ggml's dequantizers compute, learned from ggml and bitnet.cpp, written
 * anew here):
 *   TQ2_0  blocks of 256 weights: qs[64], then an f16 scale d. Weight 128j + 32l + m (j < 2,
 *          l < 4, m < 32) is bits 2l of qs[32j + m]; value = (code - 1) x d, code 3 unused.
 *   TQ1_0  blocks of 256 weights: qs[48], qh[4], then an f16 scale d. Each byte q holds base-3
 *          digits as the fixed-point fraction of tilelli's tq1 (digit n = ((q x 3^n) mod 256 x 3)
 *          >> 8, digit 0 most significant): qs[m] for m < 32 holds weights 32n + m (n < 5);
 *          qs[32 + m] for m < 16 holds weights 160 + 16n + m; qh[j] holds weights 240 + 4n + j in
 *          its digits n < 4. value = (digit - 1) x d.
 *   I2_S   bitnet.cpp's type 36 (its x86 layout): the whole tensor's weights, row after row, in
 *          blocks of 128 in 32 bytes, weight 32g + p of a block in bits 6 - 2g of byte p; code 0
 *          is -1, 1 is 0, 2 is +1; then one float32 scale for the tensor at byte n / 4; the
 *          tensor takes n / 4 + 32 bytes.
 */
#include "gguf.h"

#include <math.h>

#include "formats.h"
#include "json.h"

/* ---------------------------------------------------------------------------
 * Types: one row each (the block, its bytes, what reads it). Types that are only sized (so that
 * a file holding them still opens) have no reader.
 * ------------------------------------------------------------------------- */

enum { TL__RD_NONE, TL__RD_FLOAT, TL__RD_TERNARY };
static const struct {
    uint32_t type;
    const char *name;
    uint32_t block, bytes;
    int reads;
} tl__ggml_types[] = {
    {TL__GGML_F32, "F32", 1, 4, TL__RD_FLOAT},
    {TL__GGML_F16, "F16", 1, 2, TL__RD_FLOAT},
    {TL__GGML_BF16, "BF16", 1, 2, TL__RD_FLOAT},
    {TL__GGML_TQ1_0, "TQ1_0", 256, 54, TL__RD_TERNARY},
    {TL__GGML_TQ2_0, "TQ2_0", 256, 66, TL__RD_TERNARY},
    {TL__GGML_I2_S, "I2_S", 1, 1, TL__RD_TERNARY}, /* sized apart: n / 4 + 32 bytes */
    {2, "Q4_0", 32, 18, TL__RD_NONE},
    {3, "Q4_1", 32, 20, TL__RD_NONE},
    {6, "Q5_0", 32, 22, TL__RD_NONE},
    {7, "Q5_1", 32, 24, TL__RD_NONE},
    {8, "Q8_0", 32, 34, TL__RD_NONE},
    {9, "Q8_1", 32, 36, TL__RD_NONE},
    {10, "Q2_K", 256, 84, TL__RD_NONE},
    {11, "Q3_K", 256, 110, TL__RD_NONE},
    {12, "Q4_K", 256, 144, TL__RD_NONE},
    {13, "Q5_K", 256, 176, TL__RD_NONE},
    {14, "Q6_K", 256, 210, TL__RD_NONE},
    {15, "Q8_K", 256, 292, TL__RD_NONE},
    {24, "I8", 1, 1, TL__RD_NONE},
    {25, "I16", 1, 2, TL__RD_NONE},
    {26, "I32", 1, 4, TL__RD_NONE},
    {27, "I64", 1, 8, TL__RD_NONE},
    {28, "F64", 1, 8, TL__RD_NONE},
};
#define TL__NTYPES (sizeof tl__ggml_types / sizeof *tl__ggml_types)
#define TL__I2S_BLOCK 128u

static int tl__type_row(uint32_t type) {
    for (size_t k = 0; k < TL__NTYPES; k++)
        if (tl__ggml_types[k].type == type) return (int)k;
    return -1;
}

const char *tl__gguf_type_name(uint32_t type) {
    int k = tl__type_row(type);
    return k < 0 ? NULL : tl__ggml_types[k].name;
}

int tl__gguf_is_file(const uint8_t *bytes, size_t len) {
    return bytes && len >= 4 && !memcmp(bytes, "GGUF", 4);
}

/* Bytes of n elements of a type (row k of the table), or 0 when n is not whole blocks. */
static uint64_t tl__type_bytes(int k, uint64_t n) {
    if (tl__ggml_types[k].type == TL__GGML_I2_S) return n % TL__I2S_BLOCK ? 0 : n / 4 + 32;
    if (n % tl__ggml_types[k].block) return 0;
    return n / tl__ggml_types[k].block * tl__ggml_types[k].bytes;
}

/* ---------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------- */

enum {
    TL__V_U8,
    TL__V_I8,
    TL__V_U16,
    TL__V_I16,
    TL__V_U32,
    TL__V_I32,
    TL__V_F32,
    TL__V_BOOL,
    TL__V_STR,
    TL__V_ARR,
    TL__V_U64,
    TL__V_I64,
    TL__V_F64,
    TL__V_COUNT
};
static const uint8_t tl__vsize[TL__V_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

typedef struct {
    const char *key;
    size_t key_len;
    uint32_t type;
    const uint8_t *v; /* the value's bytes (a string: its u64 length first) */
} tl__gguf_kv_in;

typedef struct {
    const char *name;
    size_t name_len;
    uint32_t type;
    size_t ndim;
    uint64_t ne[4];
    uint64_t offset, nbytes, n;
    const uint8_t *data;
} tl__gguf_ti;

struct tl__gguf {
    tl__gguf_kv_in *kv;
    size_t nkv;
    tl__gguf_ti *t;
    size_t nt;
    tl__gguf_ti **by_name; /* the tensors sorted by name */
};

typedef struct {
    const uint8_t *p;
    size_t len, at;
} tl__rd;

static uint64_t tl__le(const uint8_t *p, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int tl__rd_u(tl__rd *r, unsigned n, uint64_t *v) {
    if (r->len - r->at < n) return 0;
    *v = tl__le(r->p + r->at, n);
    r->at += n;
    return 1;
}

static tl_status tl__rd_str(tl__rd *r, const char *what, const char **s, size_t *n) {
    uint64_t l;
    size_t at = r->at;
    if (!tl__rd_u(r, 8, &l))
        return tl__fail(TL_ERR_PARSE, "byte %zu: %s: the file ends inside a string length", at, what);
    if (l > r->len - r->at)
        return tl__fail(TL_ERR_PARSE,
                        "byte %zu: %s: a string of %llu bytes runs past the end of the %zu-byte file", at,
                        what, (unsigned long long)l, r->len);
    *s = (const char *)r->p + r->at, *n = (size_t)l;
    r->at += (size_t)l;
    return TL_OK;
}

/* Skip one value of type t (arrays: of scalars or strings; nested arrays are refused). */
static tl_status tl__rd_value(tl__rd *r, uint32_t t, const char *key, size_t kl, int in_array) {
    size_t at = r->at;
    if (t >= TL__V_COUNT)
        return tl__fail(TL_ERR_PARSE, "byte %zu: metadata \"%.*s\": unknown value type %u", at, (int)kl, key,
                        (unsigned)t);
    if (t == TL__V_STR) {
        const char *s;
        size_t n;
        return tl__rd_str(r, "metadata string", &s, &n);
    }
    if (t == TL__V_ARR) {
        uint64_t et, count;
        if (in_array)
            return tl__fail(TL_ERR_PARSE, "byte %zu: metadata \"%.*s\": nested arrays are not read", at,
                            (int)kl, key);
        if (!tl__rd_u(r, 4, &et) || !tl__rd_u(r, 8, &count))
            return tl__fail(TL_ERR_PARSE, "byte %zu: metadata \"%.*s\": the file ends inside an array header",
                            at, (int)kl, key);
        if (et >= TL__V_COUNT || et == TL__V_ARR)
            return tl__fail(TL_ERR_PARSE, "byte %zu: metadata \"%.*s\": array of value type %llu", at,
                            (int)kl, key, (unsigned long long)et);
        size_t left = r->len - r->at, unit = et == TL__V_STR ? 8 : tl__vsize[et];
        if (count > left / unit)
            return tl__fail(TL_ERR_PARSE,
                            "byte %zu: metadata \"%.*s\": an array of %llu items runs past the end", at,
                            (int)kl, key, (unsigned long long)count);
        if (et != TL__V_STR) {
            r->at += (size_t)count * unit;
            return TL_OK;
        }
        for (uint64_t i = 0; i < count; i++) {
            tl_status s = tl__rd_value(r, TL__V_STR, key, kl, 1);
            if (s) return s;
        }
        return TL_OK;
    }
    if (r->len - r->at < tl__vsize[t])
        return tl__fail(TL_ERR_PARSE, "byte %zu: metadata \"%.*s\": the file ends inside its value", at,
                        (int)kl, key);
    r->at += tl__vsize[t];
    return TL_OK;
}

static int tl__name_cmp(const char *a, size_t al, const char *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

/* heapsort comparators of tensor info pointers */
static int tl__by_name(const void *x, const void *y) {
    const tl__gguf_ti *a = *(const tl__gguf_ti *const *)x, *b = *(const tl__gguf_ti *const *)y;
    return tl__name_cmp(a->name, a->name_len, b->name, b->name_len);
}
static int tl__by_offset(const void *x, const void *y) {
    const tl__gguf_ti *a = *(const tl__gguf_ti *const *)x, *b = *(const tl__gguf_ti *const *)y;
    return (a->offset > b->offset) - (a->offset < b->offset);
}

void tl__gguf_free(tl__gguf *g) {
    if (!g) return;
    tl__free(g->kv), tl__free(g->t), tl__free(g->by_name);
    tl__free(g);
}

static tl_status tl__gguf_parse(tl__gguf *g, const uint8_t *bytes, size_t len) {
    tl__rd r = {bytes, len, 0};
    uint64_t version, nt, nkv;
    if (len < 24 || memcmp(bytes, "GGUF", 4))
        return tl__fail(TL_ERR_PARSE, "byte 0: not a GGUF file (%s)",
                        len < 24 ? "under 24 bytes" : "no \"GGUF\" magic");
    r.at = 4;
    tl__rd_u(&r, 4, &version), tl__rd_u(&r, 8, &nt), tl__rd_u(&r, 8, &nkv);
    if (version != 2 && version != 3)
        return tl__fail(TL_ERR_VERSION, "byte 4: GGUF version %llu (versions 2 and 3 are read)",
                        (unsigned long long)version);
    /* the smallest entry: a key of 0 bytes (8), a type (4), a one-byte value; a tensor info: 24 */
    if (nkv > (len - r.at) / 13)
        return tl__fail(TL_ERR_PARSE, "byte 16: %llu metadata entries cannot fit the %zu-byte file",
                        (unsigned long long)nkv, len);
    if (nt > (len - r.at) / 24)
        return tl__fail(TL_ERR_PARSE, "byte 8: %llu tensors cannot fit the %zu-byte file",
                        (unsigned long long)nt, len);
    g->nkv = (size_t)nkv, g->nt = (size_t)nt;
    g->kv = tl__calloc(g->nkv ? g->nkv : 1, sizeof *g->kv);
    g->t = tl__calloc(g->nt ? g->nt : 1, sizeof *g->t);
    g->by_name = tl__calloc(g->nt ? g->nt : 1, sizeof *g->by_name);
    if (!g->kv || !g->t || !g->by_name) return TL_ERR_NO_MEMORY;
    tl_status s;
    uint64_t align = 32;
    for (size_t i = 0; i < g->nkv; i++) {
        tl__gguf_kv_in *e = &g->kv[i];
        uint64_t t;
        if ((s = tl__rd_str(&r, "metadata key", &e->key, &e->key_len))) return s;
        if (!tl__rd_u(&r, 4, &t))
            return tl__fail(TL_ERR_PARSE, "byte %zu: the file ends inside metadata entry %zu", r.at, i);
        e->type = (uint32_t)t, e->v = bytes + r.at;
        if (t != e->type || (s = tl__rd_value(&r, e->type, e->key, e->key_len, 0))) {
            return s ? s
                     : tl__fail(TL_ERR_PARSE, "byte %zu: metadata entry %zu: unknown value type", r.at, i);
        }
        if (e->key_len == 17 && !memcmp(e->key, "general.alignment", 17)) {
            align = e->type == TL__V_U32 ? tl__le(e->v, 4) : 0;
            if (!align || (align & (align - 1)))
                return tl__fail(TL_ERR_PARSE, "metadata \"general.alignment\" must be a u32 power of two");
        }
    }
    for (size_t i = 0; i < g->nt; i++) {
        tl__gguf_ti *ti = &g->t[i];
        uint64_t v;
        size_t at = r.at;
        if ((s = tl__rd_str(&r, "tensor name", &ti->name, &ti->name_len))) return s;
        if (!tl__rd_u(&r, 4, &v))
            return tl__fail(TL_ERR_PARSE, "byte %zu: the file ends inside tensor info %zu", r.at, i);
        if (v < 1 || v > 4)
            return tl__fail(TL_ERR_PARSE, "byte %zu: tensor \"%.*s\" has %llu dimensions (1 to 4 are read)",
                            at, (int)ti->name_len, ti->name, (unsigned long long)v);
        ti->ndim = (size_t)v;
        uint64_t n = 1;
        for (size_t d = 0; d < ti->ndim; d++) {
            if (!tl__rd_u(&r, 8, &ti->ne[d]))
                return tl__fail(TL_ERR_PARSE, "byte %zu: the file ends inside tensor info %zu", r.at, i);
            if (ti->ne[d] < 1 || ti->ne[d] > ((uint64_t)1 << 62) / n)
                return tl__fail(TL_ERR_PARSE,
                                "byte %zu: tensor \"%.*s\": dimension %zu is %llu (0, or the size overflows)",
                                at, (int)ti->name_len, ti->name, d, (unsigned long long)ti->ne[d]);
            n *= ti->ne[d];
        }
        ti->n = n;
        uint64_t type, off;
        if (!tl__rd_u(&r, 4, &type) || !tl__rd_u(&r, 8, &off))
            return tl__fail(TL_ERR_PARSE, "byte %zu: the file ends inside tensor info %zu", r.at, i);
        ti->type = (uint32_t)type, ti->offset = off;
        int k = tl__type_row(ti->type);
        if (k < 0)
            return tl__fail(TL_ERR_DTYPE, "tensor \"%.*s\" has GGML type %u, which tilelli does not read",
                            (int)ti->name_len, ti->name, (unsigned)ti->type);
        if (ti->ne[0] % tl__ggml_types[k].block || !(ti->nbytes = tl__type_bytes(k, n)))
            return tl__fail(TL_ERR_PARSE, "tensor \"%.*s\": %llu x ... values are not whole %s blocks",
                            (int)ti->name_len, ti->name, (unsigned long long)ti->ne[0],
                            tl__ggml_types[k].name);
        if (off % align)
            return tl__fail(TL_ERR_PARSE,
                            "tensor \"%.*s\": offset %llu is not a multiple of the alignment %llu",
                            (int)ti->name_len, ti->name, (unsigned long long)off, (unsigned long long)align);
        g->by_name[i] = ti;
    }
    uint64_t data = (r.at + align - 1) / align * align;
    if (data > len && g->nt)
        return tl__fail(TL_ERR_PARSE,
                        "byte %zu: the tensor data would start past the end of the %zu-byte file", r.at, len);
    for (size_t i = 0; i < g->nt; i++) {
        tl__gguf_ti *ti = &g->t[i];
        if (ti->offset > len - data || ti->nbytes > len - data - ti->offset)
            return tl__fail(
                TL_ERR_PARSE,
                "tensor \"%.*s\": %llu bytes at data offset %llu run past the end of the %zu-byte file",
                (int)ti->name_len, ti->name, (unsigned long long)ti->nbytes, (unsigned long long)ti->offset,
                len);
        ti->data = bytes + data + ti->offset;
    }
    /* names unique (sorted once, then searched), data ranges disjoint */
    tl__heapsort(g->by_name, g->nt, sizeof *g->by_name, tl__by_name);
    for (size_t i = 1; i < g->nt; i++) {
        const tl__gguf_ti *a = g->by_name[i - 1], *b = g->by_name[i];
        if (!tl__name_cmp(a->name, a->name_len, b->name, b->name_len))
            return tl__fail(TL_ERR_PARSE, "two tensors are named \"%.*s\"", (int)a->name_len, a->name);
    }
    tl__gguf_ti **ord = tl__malloc((g->nt ? g->nt : 1) * sizeof *ord);
    if (!ord) return TL_ERR_NO_MEMORY;
    memcpy(ord, g->by_name, g->nt * sizeof *ord);
    tl__heapsort(ord, g->nt, sizeof *ord, tl__by_offset);
    s = TL_OK;
    for (size_t i = 1; i < g->nt && !s; i++) {
        const tl__gguf_ti *a = ord[i - 1], *b = ord[i];
        if (a->offset + a->nbytes > b->offset)
            s = tl__fail(TL_ERR_PARSE, "tensors \"%.*s\" and \"%.*s\" overlap", (int)a->name_len, a->name,
                         (int)b->name_len, b->name);
    }
    tl__free(ord);
    return s;
}

tl_status tl__gguf_open(const uint8_t *bytes, size_t len, tl__gguf **out) {
    if (!bytes || !out) return TL_ERR_NULL;
    tl__gguf *g = tl__calloc(1, sizeof *g);
    if (!g) return TL_ERR_NO_MEMORY;
    tl_status s = tl__gguf_parse(g, bytes, len);
    if (s) {
        tl__gguf_free(g);
        return s;
    }
    *out = g;
    return TL_OK;
}

static const tl__gguf_kv_in *tl__kv(const tl__gguf *g, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = 0; i < g->nkv; i++)
        if (g->kv[i].key_len == kl && !memcmp(g->kv[i].key, key, kl)) return &g->kv[i];
    return NULL;
}

int tl__gguf_get_int(const tl__gguf *g, const char *key, int64_t *v) {
    const tl__gguf_kv_in *e = tl__kv(g, key);
    if (!e) return 0;
    switch (e->type) {
    case TL__V_U8:
    case TL__V_U16:
    case TL__V_U32:
        *v = (int64_t)tl__le(e->v, tl__vsize[e->type]);
        return 1;
    case TL__V_I8:
        *v = (int8_t)e->v[0];
        return 1;
    case TL__V_I16:
        *v = (int16_t)tl__le(e->v, 2);
        return 1;
    case TL__V_I32:
        *v = (int32_t)tl__le(e->v, 4);
        return 1;
    case TL__V_I64:
        *v = (int64_t)tl__le(e->v, 8);
        return 1;
    case TL__V_U64: {
        uint64_t u = tl__le(e->v, 8);
        if (u > INT64_MAX) return 0;
        *v = (int64_t)u;
        return 1;
    }
    default:
        return 0;
    }
}

int tl__gguf_get_float(const tl__gguf *g, const char *key, double *v) {
    const tl__gguf_kv_in *e = tl__kv(g, key);
    if (!e) return 0;
    if (e->type == TL__V_F32) {
        *v = tl__u2f((uint32_t)tl__le(e->v, 4));
        return 1;
    }
    if (e->type == TL__V_F64) {
        uint64_t u = tl__le(e->v, 8);
        double d;
        memcpy(&d, &u, sizeof d);
        *v = d;
        return 1;
    }
    return 0;
}

int tl__gguf_get_str(const tl__gguf *g, const char *key, const char **s, size_t *len) {
    const tl__gguf_kv_in *e = tl__kv(g, key);
    if (!e || e->type != TL__V_STR) return 0;
    *len = (size_t)tl__le(e->v, 8), *s = (const char *)e->v + 8;
    return 1;
}

tl_status tl__gguf_find(const tl__gguf *g, const char *name, size_t *index) {
    size_t nl = strlen(name), lo = 0, hi = g->nt;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const tl__gguf_ti *t = g->by_name[mid];
        int c = tl__name_cmp(t->name, t->name_len, name, nl);
        if (!c) {
            *index = (size_t)(t - g->t);
            return TL_OK;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return TL_ERR_ARGUMENT;
}

void tl__gguf_tensor(const tl__gguf *g, size_t i, uint32_t *type, size_t *ndim, const uint64_t **ne) {
    if (type) *type = g->t[i].type;
    if (ndim) *ndim = g->t[i].ndim;
    if (ne) *ne = g->t[i].ne;
}

const uint8_t *tl__gguf_tensor_data(const tl__gguf *g, size_t i, size_t *nbytes) {
    *nbytes = (size_t)g->t[i].nbytes;
    return g->t[i].data;
}

tl_status tl__gguf_read_f32(const tl__gguf *g, size_t i, float *out, size_t n) {
    const tl__gguf_ti *t = &g->t[i];
    if (n != t->n)
        return tl__fail(TL_ERR_SIZE, "tensor \"%.*s\": %zu values asked of %llu", (int)t->name_len, t->name,
                        n, (unsigned long long)t->n);
    const uint8_t *p = t->data;
    switch (t->type) {
    case TL__GGML_F32:
        for (size_t k = 0; k < n; k++) out[k] = tl__u2f((uint32_t)tl__le(p + 4 * k, 4));
        return TL_OK;
    case TL__GGML_F16:
        for (size_t k = 0; k < n; k++) out[k] = tl__u2f(tl__f16_bits((uint32_t)tl__le(p + 2 * k, 2)));
        return TL_OK;
    case TL__GGML_BF16:
        for (size_t k = 0; k < n; k++) out[k] = tl__u2f((uint32_t)tl__le(p + 2 * k, 2) << 16);
        return TL_OK;
    default:
        return tl__fail(TL_ERR_DTYPE, "tensor \"%.*s\" is %s; float tensors are F32, F16 or BF16",
                        (int)t->name_len, t->name, tl__gguf_type_name(t->type));
    }
}

/* One block's scale d (its f16 bits h) folded into the row's: the block's trits t[0..n) flipped
 * when d < 0, zeroed when d == 0; *row is 0 until a nonzero block sets it. */
static tl_status tl__fold_scale(const tl__gguf_ti *ti, size_t r, float d, int8_t *t, size_t n, float *row) {
    if (!isfinite(d))
        return tl__fail(TL_ERR_NON_FINITE, "tensor \"%.*s\" row %zu: a block scale is not finite",
                        (int)ti->name_len, ti->name, r);
    if (d == 0.0f) {
        memset(t, 0, n);
        return TL_OK;
    }
    if (d < 0.0f) {
        for (size_t k = 0; k < n; k++) t[k] = (int8_t)-t[k];
        d = -d;
    }
    if (*row == 0.0f) *row = d;
    if (d != *row)
        return tl__fail(
            TL_ERR_FORMAT,
            "tensor \"%.*s\" row %zu: its blocks have scales %g and %g (tilelli keeps one scale per row)",
            (int)ti->name_len, ti->name, r, (double)*row, (double)d);
    return TL_OK;
}

static tl_status tl__bad_code(const tl__gguf_ti *ti, size_t r, size_t c) {
    return tl__fail(TL_ERR_FORMAT, "tensor \"%.*s\" row %zu column %zu: code 3 is no trit", (int)ti->name_len,
                    ti->name, r, c);
}

tl_status tl__gguf_read_ternary(const tl__gguf *g, size_t i, size_t rows, size_t cols, int8_t *trits,
                                float *scales) {
    const tl__gguf_ti *ti = &g->t[i];
    if (ti->type != TL__GGML_TQ1_0 && ti->type != TL__GGML_TQ2_0 && ti->type != TL__GGML_I2_S)
        return tl__fail(TL_ERR_DTYPE, "tensor \"%.*s\" is %s, not TQ1_0, TQ2_0 or I2_S", (int)ti->name_len,
                        ti->name, tl__gguf_type_name(ti->type));
    if (ti->n != (uint64_t)rows * cols || ti->ne[0] != cols)
        return tl__fail(TL_ERR_SHAPE, "tensor \"%.*s\" is not [%zu, %zu]", (int)ti->name_len, ti->name, rows,
                        cols);
    const uint8_t *p = ti->data;
    tl_status s;
    if (ti->type == TL__GGML_I2_S) {
        float d = tl__u2f((uint32_t)tl__le(p + ti->n / 4, 4)), row = 0.0f;
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c++) {
                uint64_t w = (uint64_t)r * cols + c;
                const uint8_t *b = p + w / TL__I2S_BLOCK * 32;
                unsigned j = (unsigned)(w % TL__I2S_BLOCK), code = (b[j % 32] >> (6 - 2 * (j / 32))) & 3u;
                if (code == 3) return tl__bad_code(ti, r, c);
                trits[w] = (int8_t)((int)code - 1);
            }
        /* one scale for the whole tensor: every row gets it */
        if ((s = tl__fold_scale(ti, 0, d, trits, (size_t)ti->n, &row))) return s;
        for (size_t r = 0; r < rows; r++) scales[r] = row == 0.0f ? 1.0f : row;
        return TL_OK;
    }
    size_t nb = cols / 256, bb = ti->type == TL__GGML_TQ2_0 ? 66 : 54;
    for (size_t r = 0; r < rows; r++) {
        float row = 0.0f;
        for (size_t b = 0; b < nb; b++) {
            const uint8_t *q = p + (r * nb + b) * bb;
            int8_t *t = trits + r * cols + b * 256;
            if (ti->type == TL__GGML_TQ2_0) {
                for (unsigned j = 0; j < 2; j++)
                    for (unsigned l = 0; l < 4; l++)
                        for (unsigned m = 0; m < 32; m++) {
                            unsigned code = (q[32 * j + m] >> (2 * l)) & 3u;
                            if (code == 3) return tl__bad_code(ti, r, b * 256 + 128 * j + 32 * l + m);
                            t[128 * j + 32 * l + m] = (int8_t)((int)code - 1);
                        }
            } else {
                for (unsigned n = 0; n < 5; n++) {
                    for (unsigned m = 0; m < 32; m++)
                        t[32 * n + m] = (int8_t)((int)tl__tq1_digit(q[m], n) - 1);
                    for (unsigned m = 0; m < 16; m++)
                        t[160 + 16 * n + m] = (int8_t)((int)tl__tq1_digit(q[32 + m], n) - 1);
                }
                for (unsigned n = 0; n < 4; n++)
                    for (unsigned j = 0; j < 4; j++)
                        t[240 + 4 * n + j] = (int8_t)((int)tl__tq1_digit(q[48 + j], n) - 1);
            }
            float d = tl__u2f(tl__f16_bits((uint32_t)tl__le(q + bb - 2, 2)));
            if ((s = tl__fold_scale(ti, r, d, t, 256, &row))) return s;
        }
        scales[r] = row == 0.0f ? 1.0f : row;
    }
    return TL_OK;
}

/* ---------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------- */

static void tl__put_u(tl__buf *b, uint64_t v, unsigned n) {
    uint8_t x[8];
    for (unsigned i = 0; i < n; i++) x[i] = (uint8_t)(v >> (8 * i));
    tl__buf_put(b, x, n);
}

static void tl__put_str(tl__buf *b, const char *s) {
    size_t n = strlen(s);
    tl__put_u(b, n, 8);
    tl__buf_put(b, s, n);
}

static void tl__pad(tl__buf *b) {
    if (b->len % 32) tl__buf_zeros(b, 32 - b->len % 32);
}

/* Bytes of tensor t in the file, or 0 when its type cannot hold its shape. */
static uint64_t tl__out_bytes(const tl__gguf_tensor_out *t) {
    int k = tl__type_row(t->type);
    if (k < 0 || t->cols % tl__ggml_types[k].block) return 0;
    return tl__type_bytes(k, t->rows * t->cols);
}

/* Little-endian v (n bytes) at *o, advanced. */
static void tl__st_u(uint8_t **o, uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n; i++) (*o)[i] = (uint8_t)(v >> (8 * i));
    *o += n;
}

/* Tensor t's data (tl__out_bytes of them) at o, which is zeroed; row: scratch of the widest row. */
static tl_status tl__put_tensor(uint8_t *o, const tl__gguf_tensor_out *t, int8_t *row) {
    uint64_t n = t->rows * t->cols;
    if (t->h) { /* float16 bits as they are */
        for (uint64_t k = 0; k < n; k++) tl__st_u(&o, t->h[k], 2);
        return TL_OK;
    }
    if (t->q) { /* int8 rows x their scales, as float32 values */
        for (uint64_t k = 0; k < n; k++) tl__st_u(&o, tl__f2u((float)t->q[k] * t->qs[k / t->cols]), 4);
        return TL_OK;
    }
    if (t->type == TL__GGML_F32 || t->type == TL__GGML_F16) {
        for (uint64_t k = 0; k < n; k++)
            t->type == TL__GGML_F32 ? tl__st_u(&o, tl__f2u(t->f[k]), 4)
                                    : tl__st_u(&o, tl__f16_from_float(t->f[k]), 2);
        return TL_OK;
    }
    const tl_matrix *m = t->m;
    if (t->type == TL__GGML_I2_S) {
        for (size_t r = 1; r < m->rows; r++)
            if (m->scales[r] != m->scales[0])
                return tl__fail(TL_ERR_FORMAT,
                                "tensor \"%s\": I2_S holds one scale per tensor; rows 0 and %zu differ",
                                t->name, r);
        for (size_t r = 0; r < m->rows; r++) {
            tl__decode_row(m, r, row);
            for (size_t c = 0; c < m->cols; c++) {
                uint64_t w = (uint64_t)r * m->cols + c;
                unsigned j = (unsigned)(w % TL__I2S_BLOCK);
                o[w / TL__I2S_BLOCK * 32 + j % 32] |= (uint8_t)((unsigned)(row[c] + 1) << (6 - 2 * (j / 32)));
            }
        }
        o += n / 4;
        tl__st_u(&o, tl__f2u(m->scales[0]), 4); /* then 28 bytes of zeros */
        return TL_OK;
    }
    for (size_t r = 0; r < m->rows; r++) {
        tl__decode_row(m, r, row);
        uint16_t d = tl__f16_from_float(m->scales[r]);
        for (size_t blk = 0; blk < m->cols / 256; blk++) {
            const int8_t *w = row + blk * 256;
            uint8_t *q = o;
            if (t->type == TL__GGML_TQ2_0) {
                for (unsigned j = 0; j < 2; j++)
                    for (unsigned l = 0; l < 4; l++)
                        for (unsigned mm = 0; mm < 32; mm++)
                            q[32 * j + mm] |= (uint8_t)((unsigned)(w[128 * j + 32 * l + mm] + 1) << (2 * l));
                q[64] = (uint8_t)d, q[65] = (uint8_t)(d >> 8);
                o += 66;
            } else {
                uint8_t c[5];
                for (unsigned mm = 0; mm < 32; mm++) {
                    for (unsigned n5 = 0; n5 < 5; n5++) c[n5] = (uint8_t)(w[32 * n5 + mm] + 1);
                    q[mm] = tl__tq1_encode(c);
                }
                for (unsigned mm = 0; mm < 16; mm++) {
                    for (unsigned n5 = 0; n5 < 5; n5++) c[n5] = (uint8_t)(w[160 + 16 * n5 + mm] + 1);
                    q[32 + mm] = tl__tq1_encode(c);
                }
                for (unsigned j = 0; j < 4; j++) {
                    for (unsigned n5 = 0; n5 < 4; n5++) c[n5] = (uint8_t)(w[240 + 4 * n5 + j] + 1);
                    c[4] = 0; /* the fifth digit of a qh byte is unused: 0, as ggml writes it */
                    q[48 + j] = tl__tq1_encode(c);
                }
                q[52] = (uint8_t)d, q[53] = (uint8_t)(d >> 8);
                o += 54;
            }
        }
    }
    return TL_OK;
}

tl_status tl__gguf_write(const tl__gguf_kv *kv, size_t nkv, const tl__gguf_tensor_out *t, size_t nt,
                         uint8_t **out, size_t *len) {
    if ((!kv && nkv) || (!t && nt) || !out || !len) return TL_ERR_NULL;
    size_t widest = 1;
    for (size_t i = 0; i < nt; i++) {
        if (!tl__out_bytes(&t[i]))
            return tl__fail(TL_ERR_ARGUMENT, "tensor \"%s\": [%llu, %llu] cannot be written as %s", t[i].name,
                            (unsigned long long)t[i].rows, (unsigned long long)t[i].cols,
                            tl__gguf_type_name(t[i].type) ? tl__gguf_type_name(t[i].type)
                                                          : "an unknown type");
        if (t[i].m && t[i].m->row_weights > widest) widest = t[i].m->row_weights;
    }
    tl__buf b = {0};
    tl__buf_put(&b, "GGUF", 4);
    tl__put_u(&b, 3, 4), tl__put_u(&b, nt, 8), tl__put_u(&b, nkv, 8);
    char item[64];
    for (size_t i = 0; i < nkv; i++) {
        tl__put_str(&b, kv[i].key);
        tl__put_u(&b, kv[i].type, 4);
        switch (kv[i].type) {
        case TL__GGUF_U32:
            tl__put_u(&b, kv[i].u, 4);
            break;
        case TL__GGUF_BOOL:
            tl__put_u(&b, kv[i].u != 0, 1);
            break;
        case TL__GGUF_F32:
            tl__put_u(&b, tl__f2u((float)kv[i].f), 4);
            break;
        case TL__GGUF_STRING:
            tl__put_str(&b, kv[i].s);
            break;
        case TL__GGUF_ARRAY:
            tl__put_u(&b, kv[i].item, 4), tl__put_u(&b, kv[i].n, 8);
            for (size_t k = 0; k < kv[i].n; k++) {
                if (kv[i].item == TL__GGUF_STRING)
                    tl__put_str(&b, kv[i].at(k, item, sizeof item));
                else if (kv[i].item == TL__GGUF_F32)
                    tl__put_u(&b, tl__f2u((float)kv[i].fi(k)), 4);
                else
                    tl__put_u(&b, (uint32_t)(int32_t)kv[i].fi(k), 4);
            }
            break;
        default:
            tl__buf_free(&b);
            return tl__fail(TL_ERR_ARGUMENT, "metadata \"%s\": value type %u", kv[i].key,
                            (unsigned)kv[i].type);
        }
    }
    uint64_t off = 0;
    for (size_t i = 0; i < nt; i++) {
        tl__put_str(&b, t[i].name);
        tl__put_u(&b, t[i].ndim, 4);
        tl__put_u(&b, t[i].cols, 8);
        if (t[i].ndim == 2) tl__put_u(&b, t[i].rows, 8);
        tl__put_u(&b, t[i].type, 4), tl__put_u(&b, off, 8);
        off += (tl__out_bytes(&t[i]) + 31) / 32 * 32;
    }
    tl__pad(&b);
    tl_status s = tl__buf_status(&b);
    /* the data: one allocation of the file's exact size (a big model's file is most of memory) */
    uint64_t total = b.len + off;
    uint8_t *file = NULL;
    int8_t *row = NULL;
    if (!s && total > SIZE_MAX - 16)
        s = tl__fail(TL_ERR_OVERFLOW, "the GGUF file would be %llu bytes", (unsigned long long)total);
    if (!s) {
        file = tl__calloc((size_t)total, 1);
        row = tl__malloc(widest);
        if (!file || !row) s = TL_ERR_NO_MEMORY;
    }
    if (!s) memcpy(file, b.p, b.len);
    uint64_t at = b.len;
    for (size_t i = 0; i < nt && !s; i++) {
        s = tl__put_tensor(file + at, &t[i], row);
        at += (tl__out_bytes(&t[i]) + 31) / 32 * 32;
    }
    tl__free(row);
    tl__buf_free(&b);
    if (s) {
        tl__free(file);
        return s;
    }
    *out = file, *len = (size_t)total;
    return TL_OK;
}
