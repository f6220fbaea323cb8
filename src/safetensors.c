/* safetensors.c — validate a safetensors file at open, then serve its tensors (API: tilelli.h).
 *
 * The file: u64 little-endian N, N bytes of JSON header, then the data region (offsets in the
 * header are relative to its start). Rules, each checked at open (TL_ERR_PARSE unless said):
 *   - at least 8 bytes; N <= len - 8 and N <= TL__ST_MAX_HEADER (100 MB, the reference
 *     implementation's limit: the parsed header may take ~25x its size in memory);
 *   - the header starts with '{' and is one strict JSON object (json.h: UTF-8, no duplicate
 *     keys, ...) followed by nothing but whitespace (the format pads it with spaces);
 *   - "__metadata__", if present, is an object whose values are all strings;
 *   - every other member is a tensor: an object with exactly the members "dtype" (a string),
 *     "shape" (an array of non-negative integers) and "data_offsets" (an array of two
 *     non-negative integers [begin, end], begin <= end <= the data region's size);
 *   - dtype is one of F32, F16, BF16, I8, U8; any other string (F64, I32, BOOL, F8_E4M3, ...)
 *     is TL_ERR_DTYPE;
 *   - each dimension and the element count (the product; 1 for shape []) are at most
 *     TL_MAX_ELEMENTS: else TL_ERR_OVERFLOW, whatever the offsets say;
 *   - end - begin == element count x dtype size;
 *   - no two tensors share a byte. Tensors with no elements (a 0 dimension) are allowed: they
 *     occupy no bytes (begin == end, anywhere within the data region) and overlap nothing.
 * Gaps between tensors and bytes after the last one are accepted (the reference writer leaves
 * none; the reference reader rejects them; nothing here reads them).
 * Integers in the header must be written as integers: 2.0, 2e0 and -0 are not dimensions.
 *
 * The handle is one allocation holding the tensor records, a name index (binary search), the
 * shapes and copies of the names and metadata strings (NUL-terminated, though the API gives
 * lengths); the JSON tree is freed before open returns. Tensor data stays in the caller's bytes
 * and is read byte by byte (little-endian, any alignment, any host). */
#include <math.h>

#include "json.h"

#define TL__ST_MAX_HEADER ((uint64_t)100000000)

typedef struct tl__st_tensor {
    uint64_t begin, end; /* in the data region */
    const char *name;
    size_t name_len;
    const int64_t *shape;
    size_t ndim;
    const uint8_t *data;
    size_t nbytes, count;
    tl_dtype dtype;
} tl__st_tensor;

typedef struct tl__st_meta {
    const char *key, *value;
    size_t key_len, value_len;
} tl__st_meta;

struct tl_safetensors {
    size_t ntensors, nmeta;
    tl__st_tensor *tensors;        /* file order */
    const tl__st_tensor **by_name; /* sorted by name */
    tl__st_meta *meta;
};

static size_t tl__dtype_size(tl_dtype d) {
    return d == TL_DTYPE_F32 ? 4 : d == TL_DTYPE_F16 || d == TL_DTYPE_BF16 ? 2 : 1;
}

static tl_status tl__parse_dtype(const tl__json *v, tl_dtype *d) {
    static const struct {
        const char *name;
        tl_dtype dtype;
    } known[] = {{"F32", TL_DTYPE_F32},
                 {"F16", TL_DTYPE_F16},
                 {"BF16", TL_DTYPE_BF16},
                 {"I8", TL_DTYPE_I8},
                 {"U8", TL_DTYPE_U8}};
    if (tl__json_kind_of(v) != TL__JSON_STRING) return TL_ERR_PARSE;
    for (size_t k = 0; k < sizeof known / sizeof *known; k++)
        if (tl__json_string_is(v, known[k].name)) {
            *d = known[k].dtype;
            return TL_OK;
        }
    return TL_ERR_DTYPE;
}

/* A non-negative integer written as one ("-0" has the sign bit and is not). *huge: beyond int64. */
static int tl__header_uint(const tl__json *v, uint64_t *out, int *huge) {
    if (!tl__json_is_integer(v) || signbit(tl__json_number(v))) return 0;
    int64_t i;
    *huge = !tl__json_int64(v, &i);
    *out = *huge ? UINT64_MAX : (uint64_t)i;
    return 1;
}

/* Validate one tensor entry against a data region of data_len bytes; fills t (not its name or
 * data pointer) and, when shape is not NULL, its dimensions. */
static tl_status tl__tensor_entry(const tl__json *v, uint64_t data_len, tl__st_tensor *t, int64_t *shape) {
    if (tl__json_kind_of(v) != TL__JSON_OBJECT || tl__json_count(v) != 3) return TL_ERR_PARSE;
    const tl__json *dt = tl__json_find(v, "dtype", 5, NULL), *sh = tl__json_find(v, "shape", 5, NULL),
                   *off = tl__json_find(v, "data_offsets", 12, NULL);
    if (!dt || !sh || !off) return TL_ERR_PARSE; /* with 3 unique keys: exactly these three */
    tl_status s = tl__parse_dtype(dt, &t->dtype);
    if (s) return s;
    if (tl__json_kind_of(sh) != TL__JSON_ARRAY) return TL_ERR_PARSE;
    t->ndim = tl__json_count(sh);
    uint64_t count = 1;
    for (size_t k = 0; k < t->ndim; k++) {
        uint64_t dim;
        int huge;
        if (!tl__header_uint(tl__json_item(sh, k), &dim, &huge)) return TL_ERR_PARSE;
        if (dim > TL_MAX_ELEMENTS) return TL_ERR_OVERFLOW;
        count *= dim; /* both <= 2^30 - 1: no wrap */
        if (count > TL_MAX_ELEMENTS) return TL_ERR_OVERFLOW;
        if (shape) shape[k] = (int64_t)dim;
    }
    if (tl__json_kind_of(off) != TL__JSON_ARRAY || tl__json_count(off) != 2) return TL_ERR_PARSE;
    int huge_b, huge_e;
    if (!tl__header_uint(tl__json_item(off, 0), &t->begin, &huge_b) ||
        !tl__header_uint(tl__json_item(off, 1), &t->end, &huge_e) || huge_b || huge_e)
        return TL_ERR_PARSE;
    if (t->begin > t->end || t->end > data_len) return TL_ERR_PARSE;
    t->count = (size_t)count;
    t->nbytes = (size_t)count * tl__dtype_size(t->dtype); /* <= 4 (2^30 - 1): fits 32 bits */
    if (t->end - t->begin != t->nbytes) return TL_ERR_PARSE;
    return TL_OK;
}

static tl_status tl__metadata_entry(const tl__json *v) {
    if (tl__json_kind_of(v) != TL__JSON_OBJECT) return TL_ERR_PARSE;
    for (size_t j = 0; j < tl__json_count(v); j++)
        if (tl__json_kind_of(tl__json_item(v, j)) != TL__JSON_STRING) return TL_ERR_PARSE;
    return TL_OK;
}

/* total += size rounded up to 8 (keeps every section of the handle's block aligned). */
static int tl__grow(size_t *total, size_t size) {
    if (size > SIZE_MAX - 7) return 0;
    size = (size + 7) & ~(size_t)7;
    if (*total > SIZE_MAX - size) return 0;
    *total += size;
    return 1;
}

static int tl__mul_ok(size_t a, size_t b, size_t *out) {
    if (b && a > SIZE_MAX / b) return 0;
    *out = a * b;
    return 1;
}

static int tl__cmp_offsets(const void *a, const void *b) {
    const tl__st_tensor *x = *(const tl__st_tensor *const *)a, *y = *(const tl__st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int tl__cmp_names(const void *a, const void *b) {
    const tl__st_tensor *x = *(const tl__st_tensor *const *)a, *y = *(const tl__st_tensor *const *)b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c) return c;
    return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

static char *tl__copy_str(char **chars, const char *s, size_t n) {
    char *p = *chars;
    memcpy(p, s, n);
    p[n] = 0;
    *chars += n + 1;
    return p;
}

static int tl__is_metadata_key(const tl__json *root, size_t i) {
    size_t n;
    const char *k = tl__json_key(root, i, &n);
    return n == 12 && !memcmp(k, "__metadata__", 12);
}

/* Build the handle from a parsed header (root is an object). */
static tl_status tl__build(const tl__json *root, const uint8_t *data, uint64_t data_len,
                           tl_safetensors **out) {
    size_t members = tl__json_count(root), ntensors = 0, nmeta = 0, ndims = 0, nchars = 0;
    const tl__json *meta = NULL;
    for (size_t i = 0; i < members; i++) {
        const tl__json *v = tl__json_item(root, i);
        size_t key_len;
        tl__json_key(root, i, &key_len);
        tl_status s;
        if (tl__is_metadata_key(root, i)) {
            if ((s = tl__metadata_entry(v))) return s;
            meta = v;
            nmeta = tl__json_count(v);
            for (size_t j = 0; j < nmeta; j++) {
                size_t klen, vlen;
                tl__json_key(v, j, &klen);
                tl__json_string(tl__json_item(v, j), &vlen);
                nchars += klen + vlen + 2; /* bounded by the header's size: no wrap */
            }
            continue;
        }
        tl__st_tensor t;
        if ((s = tl__tensor_entry(v, data_len, &t, NULL))) return s;
        ntensors++, ndims += t.ndim, nchars += key_len + 1;
    }

    size_t total = 0, sz;
    size_t o_tensors, o_by_name, o_meta, o_shapes, o_chars;
    if (!tl__grow(&total, sizeof(tl_safetensors))) return TL_ERR_NO_MEMORY;
    o_tensors = total;
    if (!tl__mul_ok(ntensors, sizeof(tl__st_tensor), &sz) || !tl__grow(&total, sz)) return TL_ERR_NO_MEMORY;
    o_by_name = total;
    if (!tl__mul_ok(ntensors, sizeof(tl__st_tensor *), &sz) || !tl__grow(&total, sz)) return TL_ERR_NO_MEMORY;
    o_meta = total;
    if (!tl__mul_ok(nmeta, sizeof(tl__st_meta), &sz) || !tl__grow(&total, sz)) return TL_ERR_NO_MEMORY;
    o_shapes = total;
    if (!tl__mul_ok(ndims, sizeof(int64_t), &sz) || !tl__grow(&total, sz)) return TL_ERR_NO_MEMORY;
    o_chars = total;
    if (!tl__grow(&total, nchars)) return TL_ERR_NO_MEMORY;

    unsigned char *block = tl__malloc(total);
    if (!block) return TL_ERR_NO_MEMORY;
    tl_safetensors *st = (tl_safetensors *)(void *)block;
    st->ntensors = ntensors, st->nmeta = nmeta;
    st->tensors = (tl__st_tensor *)(void *)(block + o_tensors);
    st->by_name = (const tl__st_tensor **)(void *)(block + o_by_name);
    st->meta = (tl__st_meta *)(void *)(block + o_meta);
    int64_t *shapes = (int64_t *)(void *)(block + o_shapes);
    char *chars = (char *)block + o_chars;

    for (size_t i = 0, k = 0; i < members; i++) {
        if (tl__is_metadata_key(root, i)) continue;
        tl__st_tensor *t = &st->tensors[k];
        size_t key_len;
        const char *key = tl__json_key(root, i, &key_len);
        tl__tensor_entry(tl__json_item(root, i), data_len, t, shapes); /* validated above */
        t->shape = shapes, shapes += t->ndim;
        t->name = tl__copy_str(&chars, key, key_len), t->name_len = key_len;
        t->data = data + t->begin;
        st->by_name[k++] = t;
    }
    for (size_t j = 0; j < nmeta; j++) {
        tl__st_meta *m = &st->meta[j];
        const char *key = tl__json_key(meta, j, &m->key_len);
        const char *value = tl__json_string(tl__json_item(meta, j), &m->value_len);
        m->key = tl__copy_str(&chars, key, m->key_len);
        m->value = tl__copy_str(&chars, value, m->value_len);
    }

    /* No byte in two tensors: in order of begin, each non-empty tensor starts at or after the
     * furthest end so far. */
    tl__heapsort(st->by_name, ntensors, sizeof *st->by_name, tl__cmp_offsets);
    uint64_t reach = 0;
    for (size_t k = 0; k < ntensors; k++) {
        const tl__st_tensor *t = st->by_name[k];
        if (t->begin == t->end) continue;
        if (t->begin < reach) {
            tl__free(block);
            return TL_ERR_PARSE;
        }
        reach = t->end;
    }
    /* Then by name, for tl_safetensors_find (names are unique: the JSON object's keys are). */
    tl__heapsort(st->by_name, ntensors, sizeof *st->by_name, tl__cmp_names);
    *out = st;
    return TL_OK;
}

tl_status tl_safetensors_open(const uint8_t *bytes, size_t len, tl_safetensors **out) {
    if (!out || (!bytes && len)) return TL_ERR_NULL;
    if (len < 8) return TL_ERR_PARSE;
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--) n = n << 8 | bytes[k];
    if (n > len - 8 || n > TL__ST_MAX_HEADER) return TL_ERR_PARSE;
    const char *header = (const char *)bytes + 8;
    if (n == 0 || header[0] != '{') return TL_ERR_PARSE;
    tl__json *root;
    tl_status s = tl__json_parse(header, (size_t)n, &root);
    if (s) return s;
    if (tl__json_kind_of(root) != TL__JSON_OBJECT) s = TL_ERR_PARSE; /* cannot be: it starts with '{' */
    if (!s) s = tl__build(root, bytes + 8 + n, (uint64_t)(len - 8 - n), out);
    tl__json_free(root);
    return s;
}

void tl_safetensors_free(tl_safetensors *st) { tl__free(st); }

size_t tl_safetensors_count(const tl_safetensors *st) { return st ? st->ntensors : 0; }

tl_status tl_safetensors_tensor(const tl_safetensors *st, size_t i, const char **name, size_t *name_len,
                                tl_dtype *dtype, size_t *ndim, const int64_t **shape, const uint8_t **data,
                                size_t *nbytes) {
    if (!st) return TL_ERR_NULL;
    if (i >= st->ntensors) return TL_ERR_ARGUMENT;
    const tl__st_tensor *t = &st->tensors[i];
    if (name) *name = t->name;
    if (name_len) *name_len = t->name_len;
    if (dtype) *dtype = t->dtype;
    if (ndim) *ndim = t->ndim;
    if (shape) *shape = t->shape;
    if (data) *data = t->data;
    if (nbytes) *nbytes = t->nbytes;
    return TL_OK;
}

tl_status tl_safetensors_find(const tl_safetensors *st, const char *name, size_t name_len, size_t *index) {
    if (!st || !index || (!name && name_len)) return TL_ERR_NULL;
    tl__st_tensor key;
    key.name = name ? name : "", key.name_len = name_len;
    const tl__st_tensor *kp = &key;
    size_t lo = 0, hi = st->ntensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = tl__cmp_names(&st->by_name[mid], &kp);
        if (c == 0) {
            *index = (size_t)(st->by_name[mid] - st->tensors);
            return TL_OK;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return TL_ERR_ARGUMENT;
}

/* IEEE binary16 -> binary32 bits, exactly: subnormals normalized, inf kept, NaN payloads (and
 * the quiet bit) kept as they are. */
static uint32_t tl__f16_bits(uint32_t h) {
    uint32_t sign = (h & 0x8000u) << 16, exp = h >> 10 & 0x1Fu, mant = h & 0x3FFu;
    if (exp == 0x1F) return sign | TL__INF_BITS | mant << 13;
    if (exp) return sign | (exp + 112) << 23 | mant << 13; /* rebias 15 -> 127 */
    if (!mant) return sign;
    /* mant * 2^-24 = 1.f * 2^(top - 24) where top is mant's highest set bit */
    uint32_t top = 9;
    while (!(mant >> top)) top--;
    return sign | (top + 103) << 23 | ((mant << (23 - top)) & 0x7FFFFFu);
}

tl_status tl_safetensors_read_f32(const tl_safetensors *st, size_t i, float *out, size_t n) {
    if (!st || (!out && n)) return TL_ERR_NULL;
    if (i >= st->ntensors) return TL_ERR_ARGUMENT;
    const tl__st_tensor *t = &st->tensors[i];
    if (n != t->count) return TL_ERR_SIZE;
    const uint8_t *p = t->data;
    /* Bits go out through memcpy so that NaN payloads survive on every host. */
    uint32_t u;
    switch (t->dtype) {
    case TL_DTYPE_F32:
        for (size_t k = 0; k < n; k++, p += 4) {
            u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            memcpy(out + k, &u, 4);
        }
        break;
    case TL_DTYPE_F16:
        for (size_t k = 0; k < n; k++, p += 2) {
            u = tl__f16_bits((uint32_t)p[0] | (uint32_t)p[1] << 8);
            memcpy(out + k, &u, 4);
        }
        break;
    case TL_DTYPE_BF16:
        for (size_t k = 0; k < n; k++, p += 2) {
            u = ((uint32_t)p[0] | (uint32_t)p[1] << 8) << 16;
            memcpy(out + k, &u, 4);
        }
        break;
    case TL_DTYPE_I8:
        for (size_t k = 0; k < n; k++) out[k] = (float)((int)p[k] - (p[k] >> 7) * 256);
        break;
    case TL_DTYPE_U8:
        for (size_t k = 0; k < n; k++) out[k] = (float)p[k];
        break;
    }
    return TL_OK;
}

size_t tl_safetensors_metadata_count(const tl_safetensors *st) { return st ? st->nmeta : 0; }

tl_status tl_safetensors_metadata(const tl_safetensors *st, size_t j, const char **key, size_t *key_len,
                                  const char **value, size_t *value_len) {
    if (!st) return TL_ERR_NULL;
    if (j >= st->nmeta) return TL_ERR_ARGUMENT;
    const tl__st_meta *m = &st->meta[j];
    if (key) *key = m->key;
    if (key_len) *key_len = m->key_len;
    if (value) *value = m->value;
    if (value_len) *value_len = m->value_len;
    return TL_OK;
}
