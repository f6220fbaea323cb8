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

/* One row per dtype: its name in the file and its size in bytes (the table the parser, the
 * readers and the tests share). */
static const struct {
    const char *name;
    tl_dtype dtype;
    unsigned char size;
} tl__dtypes[] = {
    {"F32", TL_DTYPE_F32, 4},         {"F16", TL_DTYPE_F16, 2},         {"BF16", TL_DTYPE_BF16, 2},
    {"I8", TL_DTYPE_I8, 1},           {"U8", TL_DTYPE_U8, 1},           {"F64", TL_DTYPE_F64, 8},
    {"I64", TL_DTYPE_I64, 8},         {"I32", TL_DTYPE_I32, 4},         {"I16", TL_DTYPE_I16, 2},
    {"U64", TL_DTYPE_U64, 8},         {"U32", TL_DTYPE_U32, 4},         {"U16", TL_DTYPE_U16, 2},
    {"BOOL", TL_DTYPE_BOOL, 1},       {"F8_E4M3", TL_DTYPE_F8_E4M3, 1}, {"F8_E5M2", TL_DTYPE_F8_E5M2, 1},
    {"F8_E8M0", TL_DTYPE_F8_E8M0, 1}, {"C64", TL_DTYPE_C64, 8},
};
#define TL__NDTYPES (sizeof tl__dtypes / sizeof *tl__dtypes)

static size_t tl__dtype_size(tl_dtype d) {
    for (size_t k = 0; k < TL__NDTYPES; k++)
        if (tl__dtypes[k].dtype == d) return tl__dtypes[k].size;
    return 1; /* cannot be: only the table's dtypes are stored */
}

const char *tl__dtype_name(tl_dtype d) {
    for (size_t k = 0; k < TL__NDTYPES; k++)
        if (tl__dtypes[k].dtype == d) return tl__dtypes[k].name;
    return "?";
}

int tl__dtype_is_float(tl_dtype d) {
    return d == TL_DTYPE_F32 || d == TL_DTYPE_F16 || d == TL_DTYPE_BF16 || d == TL_DTYPE_F64 ||
           d == TL_DTYPE_F8_E4M3 || d == TL_DTYPE_F8_E5M2 || d == TL_DTYPE_F8_E8M0;
}

/* The tensor's name for a message: at most 80 bytes of it. */
#define TL__NAME(n, len) (int)((len) > 80 ? 80 : (len)), (n)

static tl_status tl__parse_dtype(const tl__json *v, tl_dtype *d, const char *name, size_t name_len) {
    if (tl__json_kind_of(v) != TL__JSON_STRING)
        return tl__fail(TL_ERR_PARSE, "tensor \"%.*s\": dtype must be a string", TL__NAME(name, name_len));
    for (size_t k = 0; k < TL__NDTYPES; k++)
        if (tl__json_string_is(v, tl__dtypes[k].name)) {
            *d = tl__dtypes[k].dtype;
            return TL_OK;
        }
    size_t n;
    const char *s = tl__json_string(v, &n);
    return tl__fail(
        TL_ERR_DTYPE,
        "tensor \"%.*s\": dtype \"%.*s\" is not one of F64 F32 F16 BF16 F8_E4M3 F8_E5M2 F8_E8M0 I64 I32 "
        "I16 I8 U64 U32 U16 U8 BOOL C64",
        TL__NAME(name, name_len), (int)(n > 40 ? 40 : n), s);
}

/* A non-negative integer written as one ("-0" has the sign bit and is not). *huge: beyond int64. */
static int tl__header_uint(const tl__json *v, uint64_t *out, int *huge) {
    if (!tl__json_is_integer(v) || signbit(tl__json_number(v))) return 0;
    int64_t i;
    *huge = !tl__json_int64(v, &i);
    *out = *huge ? UINT64_MAX : (uint64_t)i;
    return 1;
}

/* Validate one tensor entry against a data region of data_len bytes starting at file offset
 * data_at; fills t (not its name or data pointer) and, when shape is not NULL, its dimensions.
 * Failures say which tensor, what was expected and what was found. */
static tl_status tl__tensor_entry(const tl__json *v, uint64_t data_len, uint64_t data_at, const char *name,
                                  size_t name_len, tl__st_tensor *t, int64_t *shape) {
#define TL__T "tensor \"%.*s\": "
#define TL__TN TL__NAME(name, name_len)
    if (tl__json_kind_of(v) != TL__JSON_OBJECT)
        return tl__fail(TL_ERR_PARSE, TL__T "its entry must be an object {dtype, shape, data_offsets}",
                        TL__TN);
    const tl__json *dt = tl__json_find(v, "dtype", 5, NULL), *sh = tl__json_find(v, "shape", 5, NULL),
                   *off = tl__json_find(v, "data_offsets", 12, NULL);
    if (!dt || !sh || !off || tl__json_count(v) != 3)
        return tl__fail(TL_ERR_PARSE,
                        TL__T "its entry must have exactly the keys dtype, shape, data_offsets%s", TL__TN,
                        !dt    ? " (no dtype)"
                        : !sh  ? " (no shape)"
                        : !off ? " (no data_offsets)"
                               : " (it has more)");
    tl_status s = tl__parse_dtype(dt, &t->dtype, name, name_len);
    if (s) return s;
    if (tl__json_kind_of(sh) != TL__JSON_ARRAY)
        return tl__fail(TL_ERR_PARSE, TL__T "shape must be an array of integers", TL__TN);
    t->ndim = tl__json_count(sh);
    uint64_t count = 1;
    for (size_t k = 0; k < t->ndim; k++) {
        uint64_t dim;
        int huge;
        if (!tl__header_uint(tl__json_item(sh, k), &dim, &huge))
            return tl__fail(TL_ERR_PARSE, TL__T "shape[%zu] is not a non-negative integer", TL__TN, k);
        if (dim > TL_MAX_ELEMENTS)
            return tl__fail(TL_ERR_OVERFLOW, TL__T "shape[%zu] is past the limit of %zu elements", TL__TN, k,
                            TL_MAX_ELEMENTS);
        count *= dim; /* both <= 2^30 - 1: no wrap */
        if (count > TL_MAX_ELEMENTS)
            return tl__fail(TL_ERR_OVERFLOW, TL__T "the shape holds more than %zu elements", TL__TN,
                            TL_MAX_ELEMENTS);
        if (shape) shape[k] = (int64_t)dim;
    }
    if (tl__json_kind_of(off) != TL__JSON_ARRAY || tl__json_count(off) != 2)
        return tl__fail(TL_ERR_PARSE, TL__T "data_offsets must be [begin, end]", TL__TN);
    int huge_b, huge_e;
    if (!tl__header_uint(tl__json_item(off, 0), &t->begin, &huge_b) ||
        !tl__header_uint(tl__json_item(off, 1), &t->end, &huge_e) || huge_b || huge_e)
        return tl__fail(TL_ERR_PARSE, TL__T "data_offsets must be two non-negative integers", TL__TN);
    if (t->begin > t->end)
        return tl__fail(TL_ERR_PARSE, TL__T "data_offsets [%llu, %llu] end before they begin", TL__TN,
                        (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > data_len)
        return tl__fail(
            TL_ERR_PARSE,
            TL__T "data_offsets [%llu, %llu] run past the data, which has %llu bytes (file bytes %llu..%llu)",
            TL__TN, (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)data_len,
            (unsigned long long)data_at, (unsigned long long)(data_at + data_len));
    t->count = (size_t)count;
    if (t->end - t->begin != (uint64_t)count * tl__dtype_size(t->dtype))
        return tl__fail(
            TL_ERR_PARSE,
            TL__T "%s shape of %llu elements needs %llu bytes, but data_offsets [%llu, %llu] (file bytes "
                  "%llu..%llu) hold %llu",
            TL__TN, tl__dtype_name(t->dtype), (unsigned long long)count,
            (unsigned long long)count * tl__dtype_size(t->dtype), (unsigned long long)t->begin,
            (unsigned long long)t->end, (unsigned long long)(data_at + t->begin),
            (unsigned long long)(data_at + t->end), (unsigned long long)(t->end - t->begin));
    t->nbytes = (size_t)(t->end - t->begin); /* within the data, so within size_t */
    return TL_OK;
#undef TL__T
#undef TL__TN
}

static tl_status tl__metadata_entry(const tl__json *v) {
    if (tl__json_kind_of(v) != TL__JSON_OBJECT)
        return tl__fail(TL_ERR_PARSE, "__metadata__ must be an object of strings");
    for (size_t j = 0; j < tl__json_count(v); j++)
        if (tl__json_kind_of(tl__json_item(v, j)) != TL__JSON_STRING) {
            size_t n;
            const char *k = tl__json_key(v, j, &n);
            return tl__fail(TL_ERR_PARSE, "__metadata__ \"%.*s\" must be a string", TL__NAME(k, n));
        }
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
static tl_status tl__build(const tl__json *root, const uint8_t *data, uint64_t data_len, uint64_t data_at,
                           tl_safetensors **out) {
    size_t members = tl__json_count(root), ntensors = 0, nmeta = 0, ndims = 0, nchars = 0;
    const tl__json *meta = NULL;
    for (size_t i = 0; i < members; i++) {
        const tl__json *v = tl__json_item(root, i);
        size_t key_len;
        const char *key = tl__json_key(root, i, &key_len);
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
        if ((s = tl__tensor_entry(v, data_len, data_at, key, key_len, &t, NULL))) return s;
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
        tl__tensor_entry(tl__json_item(root, i), data_len, data_at, key, key_len, t,
                         shapes); /* validated above */
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
    const tl__st_tensor *last = NULL;
    for (size_t k = 0; k < ntensors; k++) {
        const tl__st_tensor *t = st->by_name[k];
        if (t->begin == t->end) continue;
        if (t->begin < reach) {
            tl_status s = tl__fail(
                TL_ERR_PARSE,
                "tensor \"%.*s\" (data_offsets [%llu, %llu]) overlaps tensor \"%.*s\" ([%llu, %llu])",
                TL__NAME(t->name, t->name_len), (unsigned long long)t->begin, (unsigned long long)t->end,
                TL__NAME(last->name, last->name_len), (unsigned long long)last->begin,
                (unsigned long long)last->end);
            tl__free(block);
            return s;
        }
        reach = t->end, last = t;
    }
    /* Then by name, for tl_safetensors_find (names are unique: the JSON object's keys are). */
    tl__heapsort(st->by_name, ntensors, sizeof *st->by_name, tl__cmp_names);
    *out = st;
    return TL_OK;
}

tl_status tl_safetensors_open(const uint8_t *bytes, size_t len, tl_safetensors **out) {
    if (!out || (!bytes && len)) return TL_ERR_NULL;
    if (len < 8)
        return tl__fail(TL_ERR_PARSE, "%zu bytes: a safetensors file starts with an 8-byte header length",
                        len);
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--) n = n << 8 | bytes[k];
    if (n > len - 8)
        return tl__fail(
            TL_ERR_PARSE, "byte 0: the header length %llu runs past the end of the %zu-byte file%s",
            (unsigned long long)n, len,
            len >= 4 && !memcmp(bytes, "TLM", 3) ? " (this looks like a packed model file, not a checkpoint)"
                                                 : "");
    if (n > TL__ST_MAX_HEADER)
        return tl__fail(TL_ERR_PARSE, "byte 0: the header length %llu is past the limit of %llu bytes",
                        (unsigned long long)n, (unsigned long long)TL__ST_MAX_HEADER);
    const char *header = (const char *)bytes + 8;
    if (n == 0 || header[0] != '{')
        return tl__fail(TL_ERR_PARSE, "byte 8: the header must be a JSON object starting with '{', found %s",
                        n == 0 ? "an empty header" : "another byte");
    tl__json *root;
    tl_status s = tl__json_parse(header, (size_t)n, &root);
    if (s)
        return s == TL_ERR_PARSE
                   ? tl__fail(s, "the header (bytes 8..%llu) is not valid JSON", (unsigned long long)(8 + n))
                   : s;
    if (tl__json_kind_of(root) != TL__JSON_OBJECT) s = TL_ERR_PARSE; /* cannot be: it starts with '{' */
    if (!s) s = tl__build(root, bytes + 8 + n, (uint64_t)(len - 8 - n), 8 + n, out);
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
uint32_t tl__f16_bits(uint32_t h) {
    uint32_t sign = (h & 0x8000u) << 16, exp = h >> 10 & 0x1Fu, mant = h & 0x3FFu;
    if (exp == 0x1F) return sign | TL__INF_BITS | mant << 13;
    if (exp) return sign | (exp + 112) << 23 | mant << 13; /* rebias 15 -> 127 */
    if (!mant) return sign;
    /* mant * 2^-24 = 1.f * 2^(top - 24) where top is mant's highest set bit */
    uint32_t top = 9;
    while (!(mant >> top)) top--;
    return sign | (top + 103) << 23 | ((mant << (23 - top)) & 0x7FFFFFu);
}

/* float -> binary16 bits, rounded to nearest even; past 65504 to infinity; NaN stays NaN. */
uint16_t tl__f16_from_float(float f) {
    uint32_t u = tl__f2u(f), sign = (u >> 16) & 0x8000u, a = u & TL__ABS_MASK;
    if (a >= TL__INF_BITS) return (uint16_t)(sign | 0x7C00u | (a > TL__INF_BITS ? 0x200u : 0));
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* rounds past 65504 */
    if (a < 0x38800000u) {                                  /* subnormal or zero in binary16 */
        if (a < 0x33000000u) return (uint16_t)sign;          /* at most half the smallest subnormal */
        uint32_t e = a >> 23, m = (a & 0x7FFFFFu) | 0x800000u, shift = 126 - e; /* 14..24 */
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = (a >> 13) - (112u << 10), rem = a & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

/* OCP F8 E4M3FN -> binary32 bits, exactly: bias 7, no infinities, S.1111.111 is NaN. */
static uint32_t tl__e4m3_bits(uint32_t b) {
    uint32_t sign = (b & 0x80u) << 24, exp = b >> 3 & 0xFu, mant = b & 7u;
    if (exp == 0xF && mant == 7) return sign | TL__INF_BITS | 0x400000u;
    if (exp) return sign | (exp + 120) << 23 | mant << 20; /* rebias 7 -> 127 */
    if (!mant) return sign;
    uint32_t top = 2; /* mant * 2^-9 = 1.f * 2^(top - 9) */
    while (!(mant >> top)) top--;
    return sign | (top + 118) << 23 | ((mant << (23 - top)) & 0x7FFFFFu);
}

static uint64_t tl__le(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int k = bytes - 1; k >= 0; k--) v = v << 8 | p[k];
    return v;
}

tl_status tl_safetensors_read_f32(const tl_safetensors *st, size_t i, float *out, size_t n) {
    if (!st || (!out && n)) return TL_ERR_NULL;
    if (i >= st->ntensors) return TL_ERR_ARGUMENT;
    const tl__st_tensor *t = &st->tensors[i];
    if (n != t->count)
        return tl__fail(TL_ERR_SIZE, "tensor \"%.*s\" has %zu elements, not %zu",
                        TL__NAME(t->name, t->name_len), t->count, n);
    /* checked before the loop: an empty C64 tensor is refused too */
    if (t->dtype == TL_DTYPE_C64)
        return tl__fail(TL_ERR_DTYPE, "tensor \"%.*s\" is %s: it has no float32 value per element",
                        TL__NAME(t->name, t->name_len), tl__dtype_name(t->dtype));
    const uint8_t *p = t->data;
    /* Bits go out through memcpy so that NaN payloads survive on every host. */
    uint32_t u;
    size_t sz = tl__dtype_size(t->dtype);
    for (size_t k = 0; k < n; k++, p += sz) {
        switch (t->dtype) {
        case TL_DTYPE_F32:
            u = (uint32_t)tl__le(p, 4);
            break;
        case TL_DTYPE_F16:
            u = tl__f16_bits((uint32_t)tl__le(p, 2));
            break;
        case TL_DTYPE_BF16:
            u = (uint32_t)tl__le(p, 2) << 16;
            break;
        case TL_DTYPE_F8_E5M2: /* the top byte of a binary16 */
            u = tl__f16_bits((uint32_t)p[0] << 8);
            break;
        case TL_DTYPE_F8_E4M3:
            u = tl__e4m3_bits(p[0]);
            break;
        case TL_DTYPE_F8_E8M0: /* 2^(e - 127); e = 0 is 2^-127, a binary32 subnormal */
            u = p[0] == 0xFF ? TL__INF_BITS | 0x400000u : p[0] ? (uint32_t)p[0] << 23 : 0x00400000u;
            break;
        case TL_DTYPE_F64: {
            uint64_t b = tl__le(p, 8);
            double d;
            memcpy(&d, &b, 8);
            out[k] = isnan(d) ? NAN : tl__to_float_sat(d);
            continue;
        }
        case TL_DTYPE_I8:
            out[k] = (float)(int8_t)p[0];
            continue;
        case TL_DTYPE_U8:
            out[k] = (float)p[0];
            continue;
        case TL_DTYPE_BOOL:
            out[k] = p[0] ? 1.0f : 0.0f;
            continue;
        case TL_DTYPE_I16:
            out[k] = (float)(int16_t)(uint16_t)tl__le(p, 2);
            continue;
        case TL_DTYPE_U16:
            out[k] = (float)(uint16_t)tl__le(p, 2);
            continue;
        case TL_DTYPE_I32:
            out[k] = (float)(int32_t)(uint32_t)tl__le(p, 4);
            continue;
        case TL_DTYPE_U32:
            out[k] = (float)(uint32_t)tl__le(p, 4);
            continue;
        case TL_DTYPE_I64:
            out[k] = (float)(int64_t)tl__le(
                p, 8); /* implementation-defined before C23: two's complement on every target we build */
            continue;
        case TL_DTYPE_U64:
            out[k] = (float)tl__le(p, 8);
            continue;
        default: /* C64, refused above */
            return TL_ERR_DTYPE;
        }
        memcpy(out + k, &u, 4);
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

/* ---------------------------------------------------------------------------
 * Writing (internal.h: tl__safetensors_write)
 * ------------------------------------------------------------------------- */

tl_status tl__safetensors_write(const tl__st_entry *e, size_t n, const char *const *meta, size_t nmeta, uint8_t **out,
                                size_t *len) {
    tl__buf h = {0};
    uint64_t off = 0;
    tl__buf_put(&h, "{", 1);
    if (nmeta) {
        tl__buf_put(&h, "\"__metadata__\":{", 16);
        for (size_t j = 0; j < nmeta; j++) {
            if (j) tl__buf_put(&h, ",", 1);
            tl__buf_json_string(&h, meta[2 * j], strlen(meta[2 * j]));
            tl__buf_put(&h, ":", 1);
            tl__buf_json_string(&h, meta[2 * j + 1], strlen(meta[2 * j + 1]));
        }
        tl__buf_put(&h, "}", 1);
    }
    for (size_t i = 0; i < n; i++) {
        if (i || nmeta) tl__buf_put(&h, ",", 1);
        tl__buf_json_string(&h, e[i].name, strlen(e[i].name));
        tl__buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", tl__dtype_name(e[i].dtype));
        for (size_t d = 0; d < e[i].ndim; d++) tl__buf_printf(&h, "%s%llu", d ? "," : "", (unsigned long long)e[i].shape[d]);
        tl__buf_printf(&h, "],\"data_offsets\":[%llu,", (unsigned long long)off);
        off += e[i].nbytes;
        tl__buf_printf(&h, "%llu]}", (unsigned long long)off);
    }
    tl__buf_put(&h, "}", 1);
    tl_status s = tl__buf_status(&h);
    /* the data starts 16-byte aligned (the 8-byte length, then the header padded with spaces) */
    while (!s && (8 + h.len) % 16) tl__buf_put(&h, " ", 1), s = tl__buf_status(&h);
    if (!s && (uint64_t)h.len + 8 + off > SIZE_MAX) s = TL_ERR_OVERFLOW;
    uint8_t *f = s ? NULL : tl__malloc((size_t)(8 + h.len + off));
    if (!s && !f) s = TL_ERR_NO_MEMORY;
    if (s) {
        tl__buf_free(&h);
        return s;
    }
    for (int i = 0; i < 8; i++) f[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    memcpy(f + 8, h.p, h.len);
    size_t at = 8 + h.len;
    for (size_t i = 0; i < n; i++) {
        if (e[i].packed)
            tl__matrix_read_rows(e[i].packed, 0, tl_matrix_rows(e[i].packed), f + at);
        else if (e[i].nbytes)
            memcpy(f + at, e[i].data, e[i].nbytes);
        at += e[i].nbytes;
    }
    tl__buf_free(&h);
    *out = f, *len = at;
    return TL_OK;
}
