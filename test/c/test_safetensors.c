/* test_safetensors.c — the strict JSON parser (src/json.c) and the safetensors reader
 * (src/safetensors.c): valid documents and files built here byte by byte after the format's
 * spec, every accessor and dtype conversion (all 65536 F16 values against an independent
 * formula), every hostile case with its status and no leak, byte flips and truncations of a
 * valid file, and an out-of-memory sweep over each allocation. Every input is copied into a
 * heap block of exactly its length, so a read past the end is caught under ASan. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "json.h"

/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------- */


/* Parse s[0..len) from an exact copy; frees the tree unless root is given. */
static tl_status jparse_n(const char *s, size_t len, tl__json **root) {
    char *c = exact(s, len);
    tl__json *r = root ? *root : NULL;
    tl_status st = tl__json_parse(c, len, &r);
    free(c);
    if (root)
        *root = r;
    else if (st == TL_OK)
        tl__json_free(r);
    return st;
}
static tl_status jparse(const char *s, tl__json **root) { return jparse_n(s, strlen(s), root); }

static int bits_equal(float a, float b) { return tl__f2u(a) == tl__f2u(b); }

/* Every dtype of the safetensors spec this reader opens, with its size (from the spec). */
static const struct {
    const char *name;
    tl_dtype dtype;
    size_t size;
} spec_dtypes[] = {
    {"F64", TL_DTYPE_F64, 8},         {"F32", TL_DTYPE_F32, 4},         {"F16", TL_DTYPE_F16, 2},
    {"BF16", TL_DTYPE_BF16, 2},       {"I64", TL_DTYPE_I64, 8},         {"I32", TL_DTYPE_I32, 4},
    {"I16", TL_DTYPE_I16, 2},         {"I8", TL_DTYPE_I8, 1},           {"U64", TL_DTYPE_U64, 8},
    {"U32", TL_DTYPE_U32, 4},         {"U16", TL_DTYPE_U16, 2},         {"U8", TL_DTYPE_U8, 1},
    {"BOOL", TL_DTYPE_BOOL, 1},       {"F8_E4M3", TL_DTYPE_F8_E4M3, 1}, {"F8_E5M2", TL_DTYPE_F8_E5M2, 1},
    {"F8_E8M0", TL_DTYPE_F8_E8M0, 1}, {"C64", TL_DTYPE_C64, 8}};
#define N_SPEC_DTYPES (sizeof spec_dtypes / sizeof *spec_dtypes)

static size_t dtype_bytes(tl_dtype d) {
    for (size_t k = 0; k < N_SPEC_DTYPES; k++)
        if (spec_dtypes[k].dtype == d) return spec_dtypes[k].size;
    return 0;
}

/* A safetensors file: 8-byte LE header length, header (+ pad spaces), data. */
typedef struct {
    uint8_t *bytes;
    size_t len;
} file;

static file st_file_n(uint64_t n, const char *header, size_t header_len, size_t pad, const void *data,
                      size_t data_len) {
    file f;
    f.len = 8 + header_len + pad + data_len;
    f.bytes = malloc(f.len);
    for (int k = 0; k < 8; k++) f.bytes[k] = (uint8_t)(n >> (8 * k));
    memcpy(f.bytes + 8, header, header_len);
    memset(f.bytes + 8 + header_len, ' ', pad);
    if (data_len) memcpy(f.bytes + 8 + header_len + pad, data, data_len);
    return f;
}
static file st_file(const char *header, size_t pad, const void *data, size_t data_len) {
    size_t h = strlen(header);
    return st_file_n(h + pad, header, h, pad, data, data_len);
}

/* Open, check the status, that *out is written only on success, and that a failure holds
 * nothing. Returns the handle on success (caller frees). */
static tl_safetensors *open_expect(const file *f, tl_status want, const char *what) {
    size_t bytes = tl_mem_live_bytes(), blocks = tl_mem_live_blocks();
    tl_safetensors *st = NULL;
    tl_status s = tl_safetensors_open(f->bytes, f->len, &st);
    CHECK(s == want, "%s: status %s, expected %s", what, tl_status_name(s), tl_status_name(want));
    if (s != TL_OK) {
        CHECK(st == NULL, "%s: no handle on failure", what);
        CHECK(tl_mem_live_bytes() == bytes && tl_mem_live_blocks() == blocks, "%s: a failure leaks nothing",
              what);
    }
    return s == TL_OK ? st : NULL;
}

/* A file made from one header (no data beyond data_len zero bytes); status expected. */
static void header_case(const char *header, size_t data_len, tl_status want) {
    uint8_t *zeros = calloc(data_len ? data_len : 1, 1);
    file f = st_file(header, 0, zeros, data_len);
    tl_safetensors *st = open_expect(&f, want, header);
    tl_safetensors_free(st);
    free(zeros);
    free(f.bytes);
}

/* ---------------------------------------------------------------------------
 * JSON
 * ------------------------------------------------------------------------- */

static void test_json_valid(void) {
    size_t base = tl_mem_live_bytes();
    tl__json *r;
    CHECK(jparse(" {\"b\": [1, 2.5, \"x\", true, false, null, {}, []], \"a\": {\"c\": -3}} ", &r) == TL_OK,
          "a mixed document parses");
    CHECK(tl__json_kind_of(r) == TL__JSON_OBJECT && tl__json_count(r) == 2, "root is an object of 2");
    size_t n;
    const char *k0 = tl__json_key(r, 0, &n);
    CHECK(k0 && n == 1 && k0[0] == 'b' && k0[1] == 0, "members keep document order (b first)");
    const tl__json *b = tl__json_item(r, 0);
    CHECK(tl__json_kind_of(b) == TL__JSON_ARRAY && tl__json_count(b) == 8, "b is an array of 8");
    int64_t i64 = 0;
    CHECK(tl__json_int64(tl__json_item(b, 0), &i64) && i64 == 1, "b[0] = 1 exactly");
    CHECK(!tl__json_is_integer(tl__json_item(b, 1)) && tl__json_number(tl__json_item(b, 1)) == 2.5,
          "b[1] = 2.5, not an integer");
    CHECK(tl__json_string_is(tl__json_item(b, 2), "x"), "b[2] = \"x\"");
    CHECK(tl__json_kind_of(tl__json_item(b, 3)) == TL__JSON_TRUE, "true");
    CHECK(tl__json_kind_of(tl__json_item(b, 4)) == TL__JSON_FALSE, "false");
    CHECK(tl__json_kind_of(tl__json_item(b, 5)) == TL__JSON_NULL, "null");
    CHECK(tl__json_kind_of(tl__json_item(b, 6)) == TL__JSON_OBJECT &&
              tl__json_count(tl__json_item(b, 6)) == 0,
          "empty object");
    CHECK(tl__json_kind_of(tl__json_item(b, 7)) == TL__JSON_ARRAY && tl__json_count(tl__json_item(b, 7)) == 0,
          "empty array");
    CHECK(tl__json_item(b, 8) == NULL && tl__json_item(tl__json_item(b, 0), 0) == NULL,
          "items out of range or of a scalar are NULL");
    size_t idx = 99;
    const tl__json *a = tl__json_find(r, "a", 1, &idx);
    CHECK(a && idx == 1, "find a: member 1");
    CHECK(tl__json_int64(tl__json_find(a, "c", 1, NULL), &i64) && i64 == -3, "a.c = -3");
    CHECK(!tl__json_find(r, "c", 1, NULL) && !tl__json_find(r, "", 0, NULL) &&
              !tl__json_find(b, "a", 1, NULL),
          "find misses: absent key, empty key, not an object");
    CHECK(tl__json_key(r, 2, NULL) == NULL && tl__json_key(b, 0, NULL) == NULL, "keys out of range are NULL");
    CHECK(tl__json_kind_of(NULL) == 0 && tl__json_count(NULL) == 0 && tl__json_string(NULL, NULL) == NULL &&
              tl__json_number(NULL) == 0 && !tl__json_is_integer(NULL) && !tl__json_int64(NULL, NULL),
          "accessors on NULL answer nothing");
    tl__json_free(r);
    tl__json_free(NULL);

    /* Any value at top level, whitespace around it */
    static const char *scalars[] = {"0", " 1 ", "\"s\"", "true", "false", "null", "\t\r\n[]\n", "-0.5e-3"};
    for (size_t k = 0; k < sizeof scalars / sizeof *scalars; k++)
        CHECK(jparse(scalars[k], NULL) == TL_OK, "top-level %s parses", scalars[k]);

    /* Nothing past len is read: a prefix of a longer buffer parses on its own */
    CHECK(jparse_n("truex", 4, NULL) == TL_OK, "\"true\" ending at len, garbage after len unread");
    CHECK(jparse_n("[1,2]", 4, NULL) == TL_ERR_PARSE, "a document cut at len is incomplete");
    CHECK(jparse_n("12", 1, &r) == TL_OK && tl__json_int64(r, &i64) && i64 == 1, "the number stops at len");
    tl__json_free(r);

    /* Many keys: find (a binary search over a sorted index) finds every one at its document index */
    {
        char doc[20000];
        size_t p = 0;
        enum { K = 500 };
        doc[p++] = '{';
        for (int k = 0; k < K; k++)
            p += (size_t)sprintf(doc + p, "%s\"k%d\":%d", k ? "," : "", (k * 7919) % K, k);
        doc[p++] = '}';
        CHECK(jparse_n(doc, p, &r) == TL_OK && tl__json_count(r) == K, "500 members parse");
        int ok = 1;
        for (int k = 0; k < K; k++) {
            char key[16];
            int kl = sprintf(key, "k%d", (k * 7919) % K);
            size_t at = 0;
            const tl__json *v = tl__json_find(r, key, (size_t)kl, &at);
            ok &= v && at == (size_t)k && tl__json_int64(v, &i64) && i64 == k;
        }
        CHECK(ok, "find returns every member of 500 at its document index");
        tl__json_free(r);
    }
    CHECK(tl_mem_live_bytes() == base, "JSON trees freed: nothing held");
}

static void test_json_invalid(void) {
    static const char *bad[] = {
        "",
        " ",
        "{",
        "}",
        "[",
        "]",
        "[1,]",
        "[,1]",
        "[1 2]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{\"a\":}",
        "{a:1}",
        "{'a':1}",
        "{1:2}",
        "{\"a\":1 \"b\":2}",
        "[1]]",
        "{} x",
        "1 2",
        "{}{}",
        "[]x",
        "\"abc",
        "tru",
        "truE",
        "nul",
        "nulll",
        "falsey",
        "True",
        "NULL",
        "01",
        "-01",
        "00",
        "+1",
        "-",
        "1.",
        ".5",
        "1.e3",
        "1e",
        "1e+",
        "1E-",
        "--1",
        "0x10",
        "NaN",
        "-NaN",
        "Infinity",
        "-Infinity",
        "1e309",
        "-1e400",
        "123456789012345678901234567890e300",
        "\xEF\xBB\xBF{}",
        "/* c */ 1",
        "[1] // c",
        "\"\\x\"",
        "\"\\'\"",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "\"\\U0041\"",
        "\"\\uD800\"",
        "\"\\uDC00\"",
        "\"\\uD800\\u0041\"",
        "\"\\uD800x\"",
        "\"\\uDC00\\uD800\"",
        "\"\\uD800\\uD800\"",
        "\"\\\"",
        "\"a\tb\"",
        "\"a\nb\"",
        "{\"a\":1,\"a\":2}",
        "{\"a\":1,\"\\u0061\":2}",
        "{\"\":1,\"\":1}",
        "\v1",
        "\f1",
        "[1,\x00]",
    };
    size_t base = tl_mem_live_bytes(), blocks = tl_mem_live_blocks();
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        tl__json *r = (tl__json *)&base;
        tl_status s = jparse_n(bad[k], strlen(bad[k]), &r);
        CHECK(s == TL_ERR_PARSE, "invalid JSON #%zu <%s>: status %s", k, bad[k], tl_status_name(s));
        CHECK(r == (tl__json *)&base, "invalid JSON #%zu: root not written", k);
    }
    /* An embedded NUL is a control character inside a string, garbage outside */
    CHECK(jparse_n("\"a\0b\"", 5, NULL) == TL_ERR_PARSE, "raw NUL in a string");
    CHECK(jparse_n("{}\0", 3, NULL) == TL_ERR_PARSE, "NUL after the document");
    CHECK(tl__json_parse(NULL, 1, &(tl__json *){NULL}) == TL_ERR_NULL, "NULL text with len > 0");
    CHECK(tl__json_parse("1", 1, NULL) == TL_ERR_NULL, "NULL root");
    CHECK(tl__json_parse(NULL, 0, &(tl__json *){NULL}) == TL_ERR_PARSE, "NULL text of len 0 is empty");
    CHECK(tl_mem_live_bytes() == base && tl_mem_live_blocks() == blocks, "failed parses leak nothing");
}

static void test_json_depth(void) {
    char doc[2 * (TL__JSON_MAX_DEPTH + 1) + 1];
    for (int depth = TL__JSON_MAX_DEPTH; depth <= TL__JSON_MAX_DEPTH + 1; depth++) {
        for (int i = 0; i < depth; i++) doc[i] = '[', doc[2 * depth - 1 - i] = ']';
        tl_status s = jparse_n(doc, 2 * (size_t)depth, NULL);
        CHECK(s == (depth <= TL__JSON_MAX_DEPTH ? TL_OK : TL_ERR_PARSE), "%d nested arrays: %s", depth,
              tl_status_name(s));
    }
    /* objects count the same */
    char obj[8 * (TL__JSON_MAX_DEPTH + 1) + 2];
    for (int depth = TL__JSON_MAX_DEPTH; depth <= TL__JSON_MAX_DEPTH + 1; depth++) {
        size_t p = 0;
        for (int i = 0; i < depth; i++) memcpy(obj + p, "{\"a\":", 5), p += 5;
        obj[p++] = '1';
        for (int i = 0; i < depth; i++) obj[p++] = '}';
        tl_status s = jparse_n(obj, p, NULL);
        CHECK(s == (depth <= TL__JSON_MAX_DEPTH ? TL_OK : TL_ERR_PARSE), "%d nested objects: %s", depth,
              tl_status_name(s));
    }
    /* A deep unclosed prefix fails at the limit, not by exhausting the stack */
    size_t big = 1 << 20;
    char *deep = malloc(big);
    memset(deep, '[', big);
    CHECK(jparse_n(deep, big, NULL) == TL_ERR_PARSE, "a million '[' is PARSE");
    free(deep);
}

/* A string document's unescaped bytes equal want[0..want_len). */
static void check_string(const char *doc, const char *want, size_t want_len) {
    tl__json *r = NULL;
    tl_status s = jparse(doc, &r);
    size_t n = 0;
    const char *got = tl__json_string(r, &n);
    CHECK(s == TL_OK && got && n == want_len && !memcmp(got, want, n) && got[n] == 0, "string %s: status %s",
          doc, tl_status_name(s));
    tl__json_free(r);
}

static void test_json_strings(void) {
    check_string("\"\"", "", 0);
    check_string("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8);
    check_string("\"\\u0041\\u00e9\\u00E9\\u20AC\"", "A\xC3\xA9\xC3\xA9\xE2\x82\xAC", 8);
    check_string("\"\\u0000\"", "\0", 1);
    check_string("\"a\\u0000b\"", "a\0b", 3);
    check_string("\"\\uD83D\\uDE00\"", "\xF0\x9F\x98\x80", 4); /* U+1F600 */
    check_string("\"\\uDBFF\\uDFFF\"", "\xF4\x8F\xBF\xBF", 4); /* U+10FFFF */
    check_string("\"\\uD800\\uDC00\"", "\xF0\x90\x80\x80", 4); /* U+10000 */
    check_string("\"\\u07FF\\u0800\\uFFFF\"", "\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF", 8);
    /* raw UTF-8 is kept as is, including the edges of each length */
#define EDGES                                                                                                \
    "\xC2\x80 \xDF\xBF \xE0\xA0\x80 \xED\x9F\xBF \xEE\x80\x80 \xEF\xBF\xBF \xF0\x90\x80\x80 "                \
    "\xF4\x8F\xBF\xBF"
    check_string("\"" EDGES "\"", EDGES, sizeof EDGES - 1);
#undef EDGES
    check_string("\"\x7F\"", "\x7F", 1); /* DEL is no control character for JSON */
    /* invalid UTF-8 */
    static const char *bad[] = {
        "\"\x80\"",             /* lone continuation */
        "\"\xBF\"",             /* lone continuation */
        "\"\xC0\x80\"",         /* overlong NUL */
        "\"\xC1\xBF\"",         /* overlong */
        "\"\xE0\x80\x80\"",     /* overlong 3-byte */
        "\"\xE0\x9F\xBF\"",     /* overlong 3-byte */
        "\"\xED\xA0\x80\"",     /* encoded surrogate U+D800 */
        "\"\xED\xBF\xBF\"",     /* encoded surrogate U+DFFF */
        "\"\xF0\x80\x80\x80\"", /* overlong 4-byte */
        "\"\xF0\x8F\xBF\xBF\"", /* overlong 4-byte */
        "\"\xF4\x90\x80\x80\"", /* U+110000 */
        "\"\xF5\x80\x80\x80\"", /* past U+10FFFF */
        "\"\xFF\"",
        "\"\xFE\"",
        "\"\xC2\"",         /* truncated by the quote */
        "\"\xE2\x82\"",     /* truncated */
        "\"\xF0\x9F\x98\"", /* truncated */
        "\"\xC2\x41\"",     /* continuation missing */
        "\"\xE2\x82\x41\"",
        "\"\xF0\x9F\x98\xC0\"",
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
        CHECK(jparse(bad[k], NULL) == TL_ERR_PARSE, "invalid UTF-8 #%zu rejected", k);
    CHECK(jparse_n("\"\xE2\x82", 3, NULL) == TL_ERR_PARSE, "UTF-8 truncated by the end of the text");
    /* every control character must be escaped */
    int ok = 1;
    for (int c = 0; c < 0x20; c++) {
        char doc[3] = {'"', (char)c, '"'};
        ok &= jparse_n(doc, 3, NULL) == TL_ERR_PARSE;
    }
    CHECK(ok, "all 32 raw control characters rejected in strings");
    /* keys are unescaped too: find takes the bytes */
    tl__json *r;
    CHECK(jparse("{\"w\\u00e9ight\":1}", &r) == TL_OK && tl__json_find(r, "w\xC3\xA9ight", 7, NULL),
          "escaped key found by its UTF-8 bytes");
    tl__json_free(r);
}

/* A number document: its double (bitwise), and its int64 when exact is set. */
static void check_number(const char *doc, double want, int integer, int exact, int64_t want_i) {
    tl__json *r = NULL;
    tl_status s = jparse(doc, &r);
    double d = tl__json_number(r);
    int64_t i = 0;
    int has_i = tl__json_int64(r, &i);
    CHECK(s == TL_OK && tl__json_kind_of(r) == TL__JSON_NUMBER, "number %s parses", doc);
    CHECK(memcmp(&d, &want, sizeof d) == 0, "number %s = %.17g (got %.17g)", doc, want, d);
    CHECK(tl__json_is_integer(r) == integer, "number %s: is_integer %d", doc, integer);
    CHECK(has_i == exact && (!exact || i == want_i), "number %s: int64 %d %lld (got %lld)", doc, exact,
          (long long)want_i, (long long)i);
    tl__json_free(r);
}

static void test_json_numbers(void) {
    check_number("0", 0.0, 1, 1, 0);
    check_number("-0", -0.0, 1, 1, 0);
    check_number("-0.0", -0.0, 0, 0, 0);
    check_number("123", 123.0, 1, 1, 123);
    check_number("-45", -45.0, 1, 1, -45);
    check_number("9223372036854775807", 9223372036854775807.0, 1, 1, INT64_MAX);
    check_number("-9223372036854775808", -9223372036854775808.0, 1, 1, INT64_MIN);
    check_number("9223372036854775808", 9223372036854775808.0, 1, 0, 0);
    check_number("-9223372036854775809", -9223372036854775808.0, 1, 0, 0);
    check_number("123456789012345678901234567890", 123456789012345678901234567890.0, 1, 0, 0);
    check_number("9007199254740993", 9007199254740992.0, 1, 1, 9007199254740993LL); /* 2^53 + 1: exact int */
    check_number("1.5", 1.5, 0, 0, 0);
    check_number("1e2", 100.0, 0, 0, 0);
    check_number("1E+2", 100.0, 0, 0, 0);
    check_number("1.0", 1.0, 0, 0, 0);
    check_number("25e-2", 0.25, 0, 0, 0);
    check_number("0.1", 0.1, 0, 0, 0);
    check_number("-0.3", -0.3, 0, 0, 0);
    check_number("3.141592653589793", 3.141592653589793, 0, 0, 0);
    check_number("1.7976931348623157e308", DBL_MAX, 0, 0, 0);
    check_number("2.2250738585072014e-308", DBL_MIN, 0, 0, 0);
    check_number("4.9406564584124654e-324", 4.9406564584124654e-324, 0, 0, 0);
    check_number("2e-324", 0.0, 0, 0, 0); /* below half the smallest subnormal */
    check_number("1e-400", 0.0, 0, 0, 0);
    check_number("-1e-99999999999999999999", -0.0, 0, 0, 0);
    check_number("0e99999999999", 0.0, 0, 0, 0);
    check_number("0.000000000000000000000000000000000001e36", 1.0, 0, 0, 0);
    check_number("100000000000000000000000000000000000000e-38", 1.0, 0, 0, 0);
    /* Long mantissas keep their rounding: 2^53 + 1 rounds to even (down), but a digit far past
     * 800 significant digits puts it above the halfway point (up). */
    {
        char doc[2000];
        size_t p = (size_t)sprintf(doc, "9007199254740993.");
        for (int k = 0; k < 1200; k++) doc[p++] = '0';
        doc[p] = 0;
        check_number(doc, 9007199254740992.0, 0, 0, 0);
        doc[p++] = '1', doc[p] = 0;
        check_number(doc, 9007199254740994.0, 0, 0, 0);
        /* the same with the halfway digits written out past the cap, then an exponent */
        p = (size_t)sprintf(doc, "90071992547409930");
        for (int k = 0; k < 1000; k++) doc[p++] = '0';
        p += (size_t)sprintf(doc + p, "1e-1002");
        check_number(doc, 9007199254740994.0, 0, 0, 0);
    }
    /* an exponent that saturates still overflows */
    CHECK(jparse("1e99999999999999999999999", NULL) == TL_ERR_PARSE, "huge exponent: PARSE");
    CHECK(jparse("[1.8e308]", NULL) == TL_ERR_PARSE, "1.8e308 overflows a double: PARSE");
}

static int int_cmp(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void test_heapsort(void) {
    int ok = 1;
    for (size_t n = 0; n < 200; n++) {
        int v[200], hist[50] = {0}, after[50] = {0};
        for (size_t i = 0; i < n; i++) v[i] = (int)(check_rnd() % 50), hist[v[i]]++;
        tl__heapsort(v, n, sizeof *v, int_cmp);
        for (size_t i = 0; i < n; i++) after[v[i]]++;
        for (size_t i = 1; i < n; i++) ok &= v[i - 1] <= v[i];
        ok &= !memcmp(hist, after, sizeof hist);
    }
    CHECK(ok, "heapsort sorts 0..199 random elements and keeps the multiset");
}

static void test_json_out_of_memory(void) {
    /* big enough for several arena blocks, a dedicated block and stack growth */
    size_t cap = 200000, p = 0;
    char *doc = malloc(cap);
    p += (size_t)sprintf(doc + p, "{\"s\":\"\\u00e9x\",\"a\":[");
    for (int k = 0; k < 5000; k++) p += (size_t)sprintf(doc + p, "%s%d", k ? "," : "", k);
    p += (size_t)sprintf(doc + p, "],\"o\":{");
    for (int k = 0; k < 300; k++)
        p += (size_t)sprintf(doc + p, "%s\"key%d\":[%d.5,\"v\"]", k ? "," : "", k, k);
    p += (size_t)sprintf(doc + p, "}}");
    size_t base = tl_mem_live_bytes(), blocks = tl_mem_live_blocks();
    int failures = 0, done = 0, bad = 0;
    for (size_t n = 1; n < 1000 && !done; n++) {
        tl__json *r = NULL;
        tl_mem_fail_after(n);
        tl_status s = tl__json_parse(doc, p, &r);
        tl_mem_fail_after(0);
        if (s == TL_ERR_NO_MEMORY) {
            failures++;
            bad += r != NULL || tl_mem_live_bytes() != base || tl_mem_live_blocks() != blocks;
        } else {
            done = 1;
            CHECK(s == TL_OK && tl__json_count(tl__json_find(r, "a", 1, NULL)) == 5000 &&
                      tl__json_count(tl__json_find(r, "o", 1, NULL)) == 300,
                  "JSON parse with allocation %zu failing: %s", n, tl_status_name(s));
            tl__json_free(r);
        }
    }
    CHECK(done && failures >= 5 && !bad, "JSON: %d allocations fail cleanly (no leak), then it parses",
          failures);
    CHECK(tl_mem_live_bytes() == base, "JSON: nothing held after the sweep");
    free(doc);
}

/* ---------------------------------------------------------------------------
 * safetensors: valid files
 * ------------------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32f(uint8_t *p, float f) {
    uint32_t u = tl__f2u(f);
    for (int k = 0; k < 4; k++) p[k] = (uint8_t)(u >> (8 * k));
}

/* binary16 -> double by the definition (independent of the bit-shuffling code under test) */
static double f16_value(uint16_t h) {
    int sign = h >> 15, exp = h >> 10 & 31, mant = h & 1023;
    double v = exp ? ldexp(1024 + mant, exp - 25) : ldexp(mant, -24);
    return sign ? -v : v;
}

static void test_valid_file(void) {
    /* data: u8 "u" [3] at 0..3, f32 "w" [2,3] at 3..27 (unaligned), f16 "h" [4] at 27..35,
     * bf16 "b" [2,2] at 35..43, i8 "i" [4] at 43..47, f32 scalar "s" [] at 47..51,
     * f32 "e" [0,5] empty at 51..51, u8 "z" [2,0,3] empty at 1..1 (inside "u": occupies nothing) */
    uint8_t data[51];
    data[0] = 0, data[1] = 128, data[2] = 255;
    static const float w[6] = {1.0f, -2.5f, 3.25e-3f, -0.0f, 1e30f, -7.0f};
    for (int k = 0; k < 6; k++) put32f(data + 3 + 4 * k, w[k]);
    static const uint16_t h[4] = {0x3C00, 0xC000, 0x7BFF, 0x0001};
    for (int k = 0; k < 4; k++) put16(data + 27 + 2 * k, h[k]);
    static const uint16_t bf[4] = {0x3F80, 0xC020, 0x7F80, 0x8000};
    for (int k = 0; k < 4; k++) put16(data + 35 + 2 * k, bf[k]);
    data[43] = 0x80, data[44] = 0xFF, data[45] = 0, data[46] = 0x7F;
    put32f(data + 47, 42.5f);
    const char *header = "{\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                         "\"w\":{\"shape\":[2,3],\"dtype\":\"F32\",\"data_offsets\":[3,27]},"
                         "\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\\u00e9\",\"empty\":\"\"},"
                         "\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[27,35]},"
                         "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[35,43]},"
                         "\"i\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[43,47]},"
                         "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[47,51]},"
                         "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[51,51]},"
                         "\"z\":{\"dtype\":\"U8\",\"shape\":[2,0,3],\"data_offsets\":[1,1]}}";
    size_t base = tl_mem_live_bytes();
    for (size_t pad = 0; pad < 9; pad += 7) { /* the format pads the header with spaces */
        file f = st_file(header, pad, data, sizeof data);
        tl_safetensors *st = open_expect(&f, TL_OK, "valid file");
        if (!st) {
            free(f.bytes);
            continue;
        }
        const uint8_t *region = f.bytes + 8 + strlen(header) + pad;
        static const char *names[] = {"u", "w", "h", "b", "i", "s", "e", "z"};
        static const tl_dtype dtypes[] = {TL_DTYPE_U8, TL_DTYPE_F32, TL_DTYPE_F16, TL_DTYPE_BF16,
                                          TL_DTYPE_I8, TL_DTYPE_F32, TL_DTYPE_F32, TL_DTYPE_U8};
        static const size_t ndims[] = {1, 2, 1, 2, 1, 0, 2, 3}, nbytes_want[] = {3, 24, 8, 8, 4, 4, 0, 0},
                            begins[] = {0, 3, 27, 35, 43, 47, 51, 1};
        CHECK(tl_safetensors_count(st) == 8, "8 tensors (metadata is none), got %zu",
              tl_safetensors_count(st));
        for (size_t i = 0; i < 8; i++) {
            const char *name = NULL;
            size_t name_len = 0, ndim = 99, nbytes = 99, at = 99;
            tl_dtype dt = 0;
            const int64_t *shape = NULL;
            const uint8_t *d = NULL;
            tl_status s = tl_safetensors_tensor(st, i, &name, &name_len, &dt, &ndim, &shape, &d, &nbytes);
            CHECK(s == TL_OK && name_len == 1 && name[0] == names[i][0], "tensor %zu is %s (file order)", i,
                  names[i]);
            CHECK(dt == dtypes[i] && ndim == ndims[i] && nbytes == nbytes_want[i] && d == region + begins[i],
                  "tensor %s: dtype, rank, bytes, data pointer into the file", names[i]);
            CHECK(tl_safetensors_find(st, names[i], 1, &at) == TL_OK && at == i, "find %s -> %zu", names[i],
                  i);
            CHECK(tl_safetensors_tensor(st, i, NULL, NULL, NULL, NULL, NULL, NULL, NULL) == TL_OK,
                  "every output may be NULL");
        }
        const int64_t *shape;
        size_t ndim;
        tl_safetensors_tensor(st, 1, NULL, NULL, NULL, &ndim, &shape, NULL, NULL);
        CHECK(ndim == 2 && shape[0] == 2 && shape[1] == 3, "w's shape [2, 3]");
        tl_safetensors_tensor(st, 7, NULL, NULL, NULL, &ndim, &shape, NULL, NULL);
        CHECK(ndim == 3 && shape[0] == 2 && shape[1] == 0 && shape[2] == 3, "z's shape [2, 0, 3]");

        float out[8];
        CHECK(tl_safetensors_read_f32(st, 0, out, 3) == TL_OK && out[0] == 0 && out[1] == 128 &&
                  out[2] == 255,
              "U8 -> 0, 128, 255");
        int ok = tl_safetensors_read_f32(st, 1, out, 6) == TL_OK;
        for (int k = 0; k < 6; k++) ok &= bits_equal(out[k], w[k]);
        CHECK(ok, "F32 read from an unaligned offset, bit for bit (with -0)");
        CHECK(tl_safetensors_read_f32(st, 2, out, 4) == TL_OK && out[0] == 1 && out[1] == -2 &&
                  out[2] == 65504 && out[3] == 0x1p-24f,
              "F16 -> 1, -2, 65504, 2^-24");
        CHECK(tl_safetensors_read_f32(st, 3, out, 4) == TL_OK && out[0] == 1 && out[1] == -2.5f &&
                  isinf(out[2]) && out[2] > 0 && bits_equal(out[3], -0.0f),
              "BF16 -> 1, -2.5, inf, -0");
        CHECK(tl_safetensors_read_f32(st, 4, out, 4) == TL_OK && out[0] == -128 && out[1] == -1 &&
                  out[2] == 0 && out[3] == 127,
              "I8 -> -128, -1, 0, 127");
        CHECK(tl_safetensors_read_f32(st, 5, out, 1) == TL_OK && out[0] == 42.5f, "scalar F32 -> 42.5");
        CHECK(tl_safetensors_read_f32(st, 6, NULL, 0) == TL_OK &&
                  tl_safetensors_read_f32(st, 7, out, 0) == TL_OK,
              "empty tensors read 0 floats (out may be NULL)");

        CHECK(tl_safetensors_metadata_count(st) == 3, "3 metadata entries");
        const char *key, *value;
        size_t kl, vl;
        CHECK(tl_safetensors_metadata(st, 0, &key, &kl, &value, &vl) == TL_OK && kl == 6 &&
                  !memcmp(key, "format", 6) && vl == 2 && !memcmp(value, "pt", 2),
              "metadata 0: format = pt");
        CHECK(tl_safetensors_metadata(st, 1, &key, &kl, &value, &vl) == TL_OK && kl == 4 && vl == 5 &&
                  !memcmp(value, "caf\xC3\xA9", 5),
              "metadata 1: note = café (unescaped)");
        CHECK(tl_safetensors_metadata(st, 2, &key, &kl, &value, &vl) == TL_OK && vl == 0,
              "metadata 2: empty");
        CHECK(tl_safetensors_metadata(st, 2, NULL, NULL, NULL, NULL) == TL_OK,
              "metadata outputs may be NULL");

        /* errors of the accessors */
        size_t at;
        CHECK(tl_safetensors_tensor(st, 8, NULL, NULL, NULL, NULL, NULL, NULL, NULL) == TL_ERR_ARGUMENT,
              "tensor index past the count");
        CHECK(tl_safetensors_tensor(NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL) == TL_ERR_NULL,
              "tensor of NULL");
        CHECK(tl_safetensors_find(st, "x", 1, &at) == TL_ERR_ARGUMENT &&
                  tl_safetensors_find(st, "ww", 2, &at) == TL_ERR_ARGUMENT &&
                  tl_safetensors_find(st, "", 0, &at) == TL_ERR_ARGUMENT &&
                  tl_safetensors_find(st, "__metadata__", 12, &at) == TL_ERR_ARGUMENT,
              "find misses: absent names, the metadata");
        CHECK(tl_safetensors_find(NULL, "w", 1, &at) == TL_ERR_NULL &&
                  tl_safetensors_find(st, "w", 1, NULL) == TL_ERR_NULL &&
                  tl_safetensors_find(st, NULL, 1, &at) == TL_ERR_NULL,
              "find with NULL arguments");
        CHECK(tl_safetensors_read_f32(st, 1, out, 5) == TL_ERR_SIZE &&
                  tl_safetensors_read_f32(st, 1, out, 7) == TL_ERR_SIZE,
              "read_f32 with the wrong element count");
        CHECK(tl_safetensors_read_f32(st, 8, out, 1) == TL_ERR_ARGUMENT &&
                  tl_safetensors_read_f32(st, 1, NULL, 6) == TL_ERR_NULL &&
                  tl_safetensors_read_f32(NULL, 0, out, 3) == TL_ERR_NULL,
              "read_f32: index past the count, NULL out, NULL handle");
        CHECK(tl_safetensors_metadata(st, 3, &key, &kl, &value, &vl) == TL_ERR_ARGUMENT &&
                  tl_safetensors_metadata(NULL, 0, &key, &kl, &value, &vl) == TL_ERR_NULL,
              "metadata index past the count, NULL handle");
        CHECK(tl_safetensors_count(NULL) == 0 && tl_safetensors_metadata_count(NULL) == 0,
              "counts of NULL are 0");
        tl_safetensors_free(st);
        free(f.bytes);
    }
    tl_safetensors_free(NULL);
    CHECK(tl_mem_live_bytes() == base, "valid files: nothing held after free");
}

static void test_small_files(void) {
    size_t base = tl_mem_live_bytes();
    /* no tensors at all */
    file f = st_file("{}", 0, NULL, 0);
    tl_safetensors *st = open_expect(&f, TL_OK, "{}");
    CHECK(st && tl_safetensors_count(st) == 0 && tl_safetensors_metadata_count(st) == 0,
          "{}: nothing inside");
    size_t at;
    CHECK(tl_safetensors_find(st, "a", 1, &at) == TL_ERR_ARGUMENT, "{}: find finds nothing");
    tl_safetensors_free(st);
    free(f.bytes);
    /* only metadata, with whitespace in and after the header */
    f = st_file("{ \"__metadata__\" : { } }\n", 3, NULL, 0);
    st = open_expect(&f, TL_OK, "only empty metadata");
    CHECK(st && tl_safetensors_count(st) == 0 && tl_safetensors_metadata_count(st) == 0, "empty metadata");
    tl_safetensors_free(st);
    free(f.bytes);
    /* names: escapes, UTF-8, the empty name; names of 0-byte tensors anywhere in the region */
    f = st_file("{\"w\\u00e9ight\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
                "\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                "\"\\u0000\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[2,2]},"
                "\"a.b\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[0,0]}}",
                0, "xy", 2);
    st = open_expect(&f, TL_OK, "names");
    CHECK(st && tl_safetensors_find(st, "w\xC3\xA9ight", 7, &at) == TL_OK && at == 0, "UTF-8 name found");
    CHECK(st && tl_safetensors_find(st, "", 0, &at) == TL_OK && at == 1, "the empty name found");
    CHECK(st && tl_safetensors_find(st, NULL, 0, &at) == TL_OK && at == 1, "NULL name of length 0 is empty");
    CHECK(st && tl_safetensors_find(st, "\0", 1, &at) == TL_OK && at == 2, "a name holding NUL found");
    CHECK(st && tl_safetensors_find(st, "a.b", 3, &at) == TL_OK && at == 3, "a.b found");
    tl_safetensors_free(st);
    free(f.bytes);
    /* gaps and trailing bytes after the last tensor are accepted */
    f = st_file("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]}}", 0, "abcdef", 6);
    st = open_expect(&f, TL_OK, "gap before, bytes after");
    float v;
    CHECK(st && tl_safetensors_read_f32(st, 0, &v, 1) == TL_OK && v == 'c',
          "the tensor at offset 2 reads 'c'");
    tl_safetensors_free(st);
    free(f.bytes);
    /* adjacent tensors in reverse file order */
    f = st_file("{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]},"
                "\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}",
                0, "abcd", 4);
    st = open_expect(&f, TL_OK, "adjacent tensors");
    tl_safetensors_free(st);
    free(f.bytes);
    CHECK(tl_mem_live_bytes() == base, "small files: nothing held");
}

static void test_f16_all(void) {
    /* Every binary16 value, widened exactly: against the definition for numbers, and for
     * infinities and NaNs by their bits (payload and quiet bit kept). */
    size_t n = 65536;
    uint8_t *data = malloc(2 * n);
    for (size_t k = 0; k < n; k++) put16(data + 2 * k, (uint16_t)k);
    file f = st_file("{\"all\":{\"dtype\":\"F16\",\"shape\":[256,256],\"data_offsets\":[0,131072]}}", 0, data,
                     2 * n);
    tl_safetensors *st = open_expect(&f, TL_OK, "all F16 values");
    float *out = malloc(n * sizeof *out);
    int ok = st && tl_safetensors_read_f32(st, 0, out, n) == TL_OK;
    size_t bad = 0;
    for (size_t k = 0; ok && k < n; k++) {
        uint32_t u = tl__f2u(out[k]), exp = k >> 10 & 31;
        int good;
        if (exp == 31)
            good = u == (((uint32_t)k & 0x8000u) << 16 | 0x7F800000u | ((uint32_t)k & 0x3FFu) << 13);
        else
            good = (double)out[k] == f16_value((uint16_t)k) && (u >> 31) == (k >> 15);
        if (!good && !bad++) CHECK(0, "F16 0x%04zx -> %a (bits %08x)", k, (double)out[k], u);
    }
    CHECK(ok && bad == 0, "all 65536 F16 values widen exactly (%zu wrong)", bad);
    /* named edges */
    static const struct {
        uint16_t h;
        float f;
    } edges[] = {{0x0000, 0.0f},          {0x8000, -0.0f},       {0x0001, 0x1p-24f}, {0x03FF, 0x3FFp-24f},
                 {0x0400, 0x1p-14f},      {0x3555, 0x1.554p-2f}, {0x7BFF, 65504.0f}, {0xFBFF, -65504.0f},
                 {0x3C01, 1.0009765625f}, {0x8001, -0x1p-24f}};
    int edges_ok = 1;
    for (size_t k = 0; ok && k < sizeof edges / sizeof *edges; k++)
        edges_ok &= bits_equal(out[edges[k].h], edges[k].f);
    CHECK(ok && edges_ok, "F16 edges: zeros, smallest and largest subnormal, smallest normal, 65504");
    CHECK(ok && isinf(out[0x7C00]) && out[0x7C00] > 0 && isinf(out[0xFC00]) && out[0xFC00] < 0 &&
              isnan(out[0x7E00]) && isnan(out[0x7C01]) && tl__f2u(out[0x7E00]) == 0x7FC00000u,
          "F16 infinities and NaNs");
    tl_safetensors_free(st);
    free(out);
    free(data);
    free(f.bytes);
}

static void test_bf16(void) {
    static const uint16_t in[] = {0x0000, 0x8000, 0x3F80, 0xBF80, 0x4049, 0x7F7F, 0x0080,
                                  0x0001, 0x7F80, 0xFF80, 0x7FC0, 0x7F81, 0xFFFF};
    enum { N = sizeof in / sizeof *in };
    uint8_t data[2 * N];
    for (int k = 0; k < N; k++) put16(data + 2 * k, in[k]);
    char header[128];
    sprintf(header, "{\"b\":{\"dtype\":\"BF16\",\"shape\":[%d],\"data_offsets\":[0,%d]}}", N, 2 * N);
    file f = st_file(header, 0, data, sizeof data);
    tl_safetensors *st = open_expect(&f, TL_OK, "bf16");
    float out[N];
    int ok = st && tl_safetensors_read_f32(st, 0, out, N) == TL_OK;
    for (int k = 0; ok && k < N; k++) ok &= tl__f2u(out[k]) == (uint32_t)in[k] << 16;
    CHECK(ok, "BF16 widens by a 16-bit shift, NaN payloads included");
    CHECK(st && out[2] == 1.0f && out[4] == 3.140625f && out[6] == FLT_MIN && out[7] == 0x1p-133f,
          "BF16 values: 1, 3.140625, FLT_MIN, a subnormal");
    tl_safetensors_free(st);
    free(f.bytes);
}

/* ---------------------------------------------------------------------------
 * safetensors: hostile files
 * ------------------------------------------------------------------------- */

#define T(body) "{\"t\":{" body "}}"

static void test_hostile(void) {
    size_t base = tl_mem_live_bytes(), blocks = tl_mem_live_blocks();
    tl_safetensors *st = NULL;
    uint8_t some[16] = {0};
    /* too short, NULLs */
    for (size_t len = 0; len < 8; len++) {
        tl_status s = tl_safetensors_open(some, len, &st);
        CHECK(s == TL_ERR_PARSE && st == NULL, "a file of %zu bytes: %s", len, tl_status_name(s));
    }
    CHECK(tl_safetensors_open(NULL, 0, &st) == TL_ERR_PARSE, "NULL bytes of length 0: too short");
    CHECK(tl_safetensors_open(NULL, 8, &st) == TL_ERR_NULL, "NULL bytes");
    CHECK(tl_safetensors_open(some, 16, NULL) == TL_ERR_NULL, "NULL out");

    /* header length */
    static const uint64_t lens[] = {0, 3, 0x7FFFFFFFFFFFFFFFull, 0xFFFFFFFFFFFFFFFFull, 0x100000002ull};
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        file f = st_file_n(lens[k], "{}", 2, 0, NULL, 0);
        char what[64];
        sprintf(what, "header length %llu in a 10-byte file", (unsigned long long)lens[k]);
        open_expect(&f, TL_ERR_PARSE, what);
        free(f.bytes);
    }
    {
        file f = st_file_n(2, "{}", 2, 0, NULL, 0); /* exactly the file */
        tl_safetensors *ok = open_expect(&f, TL_OK, "header length = file size - 8");
        tl_safetensors_free(ok);
        free(f.bytes);
        f = st_file_n(1, "{}", 2, 0, NULL, 0); /* "{" then one data byte */
        open_expect(&f, TL_ERR_PARSE, "header length cutting the JSON");
        free(f.bytes);
    }

    /* header not a JSON object */
    header_case("[]", 0, TL_ERR_PARSE);
    header_case(" {}", 0, TL_ERR_PARSE); /* the format: the header starts with '{' */
    header_case("\"{}\"", 0, TL_ERR_PARSE);
    header_case("{", 0, TL_ERR_PARSE);
    header_case("{abc}", 0, TL_ERR_PARSE);
    header_case("{}x", 0, TL_ERR_PARSE);
    header_case("{}{}", 0, TL_ERR_PARSE);
    header_case("{\"t\":1,}", 0, TL_ERR_PARSE);
    {
        file f = st_file_n(3, "{}\0", 3, 0, NULL, 0); /* NUL padding is not whitespace */
        open_expect(&f, TL_ERR_PARSE, "header padded with NUL");
        free(f.bytes);
        f = st_file_n(5, "{\"\xFF\":1}", 5, 0, NULL, 0);
        open_expect(&f, TL_ERR_PARSE, "invalid UTF-8 in the header");
        free(f.bytes);
    }

    /* tensor entries of the wrong shape */
    header_case("{\"t\":1}", 0, TL_ERR_PARSE);
    header_case("{\"t\":\"x\"}", 0, TL_ERR_PARSE);
    header_case("{\"t\":[]}", 0, TL_ERR_PARSE);
    header_case("{\"t\":null}", 0, TL_ERR_PARSE);
    header_case("{\"t\":{}}", 0, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"data_offsets\":[0,1]"), 1, TL_ERR_PARSE);
    header_case(T("\"shape\":[1],\"data_offsets\":[0,1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1],\"offsets\":[0,1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"dtype\":\"U8\""), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":1,\"shape\":[1],\"data_offsets\":[0,1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":[\"U8\"],\"shape\":[1],\"data_offsets\":[0,1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":{},\"data_offsets\":[0,1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[\"1\"],\"data_offsets\":[0,1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1.0],\"data_offsets\":[0,1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1e0],\"data_offsets\":[0,1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[null],\"data_offsets\":[0,1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[[1]],\"data_offsets\":[0,1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[-0],\"data_offsets\":[0,0]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1,-2],\"data_offsets\":[0,1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":0"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]"), 2, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[\"0\",1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0.0,1]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1e0]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]"), 1, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[-0,0]"), 1, TL_ERR_PARSE);

    /* dtypes: strings outside the spec's byte-sized dtypes are TL_ERR_DTYPE, and the detail names
     * the tensor and the dtype */
    static const char *dtypes[] = {"F4", "F6_E2M3", "f32", "F32 ", "", "float32", "\\u0046\\u0033\\u0032x"};
    for (size_t k = 0; k < sizeof dtypes / sizeof *dtypes; k++) {
        char h[160];
        sprintf(h, T("\"dtype\":\"%s\",\"shape\":[1],\"data_offsets\":[0,8]"), dtypes[k]);
        header_case(h, 8, TL_ERR_DTYPE);
    }
    header_case("{\"buf.num\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, TL_ERR_DTYPE);
    CHECK(strstr(tl_error_detail(), "tensor \"buf.num\"") && strstr(tl_error_detail(), "dtype \"Q4\""),
          "an unknown dtype's detail names the tensor and the dtype: %s", tl_error_detail());
    /* escaped spelling of a known dtype is that dtype */
    header_case(T("\"dtype\":\"\\u0046\\u00332\",\"shape\":[2],\"data_offsets\":[0,8]"), 8, TL_OK);

    /* sizes: TL_ERR_OVERFLOW past TL_MAX_ELEMENTS, whatever the offsets */
    header_case(T("\"dtype\":\"U8\",\"shape\":[1073741824],\"data_offsets\":[0,1]"), 1, TL_ERR_OVERFLOW);
    header_case(T("\"dtype\":\"U8\",\"shape\":[65536,65536],\"data_offsets\":[0,1]"), 1, TL_ERR_OVERFLOW);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1073741823,2],\"data_offsets\":[0,1]"), 1, TL_ERR_OVERFLOW);
    header_case(T("\"dtype\":\"U8\",\"shape\":[32768,32768],\"data_offsets\":[0,1]"), 1, TL_ERR_OVERFLOW);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1099511627776,0],\"data_offsets\":[0,0]"), 1, TL_ERR_OVERFLOW);
    header_case(T("\"dtype\":\"U8\",\"shape\":[0,1099511627776],\"data_offsets\":[0,0]"), 1, TL_ERR_OVERFLOW);
    header_case(T("\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]"), 4,
                TL_ERR_OVERFLOW);
    header_case(T("\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]"), 1,
                TL_ERR_OVERFLOW); /* the product wraps to 0 in 64 bits */
    header_case(T("\"dtype\":\"U8\",\"shape\":[2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2],"
                  "\"data_offsets\":[0,1]"),
                1, TL_ERR_OVERFLOW); /* 2^30 */
    header_case(
        T("\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
          "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"
          "\"data_offsets\":[0,1]"),
        1, TL_OK); /* rank 71 of ones is fine */

    /* offsets */
    header_case(T("\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]"), 8, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]"), 3, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[5,5]"), 4, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]"), 4, TL_OK);
    header_case(T("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]"), 8, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]"), 12, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]"), 8, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,0]"), 8, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,4]"), 8, TL_ERR_PARSE);
    header_case(T("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[18446744073709551615,0]"), 1,
                TL_ERR_PARSE);
    header_case(
        T("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[18446744073709551615,18446744073709551616]"), 1,
        TL_ERR_PARSE);
    header_case(
        T("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[9223372036854775807,9223372036854775808]"), 1,
        TL_ERR_PARSE);

    /* overlaps, in either file order */
    header_case("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}",
                12, TL_ERR_PARSE);
    header_case("{\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]},"
                "\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}",
                12, TL_ERR_PARSE);
    header_case("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
                4, TL_ERR_PARSE);
    header_case("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[3,5]}}",
                8, TL_ERR_PARSE);
    header_case("{\"c\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[6,8]},"
                "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[3,7]}}",
                8, TL_ERR_PARSE);
    header_case("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
                "\"c\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[7,8]}}",
                8, TL_ERR_PARSE); /* a later tensor inside the first, past a smaller one */
    header_case("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                "\"b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[1,1]},"
                "\"c\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[1,1]}}",
                2, TL_OK); /* empty tensors overlap nothing, even each other */

    /* metadata */
    header_case("{\"__metadata__\":\"x\"}", 0, TL_ERR_PARSE);
    header_case("{\"__metadata__\":[]}", 0, TL_ERR_PARSE);
    header_case("{\"__metadata__\":null}", 0, TL_ERR_PARSE);
    header_case("{\"__metadata__\":{\"a\":1}}", 0, TL_ERR_PARSE);
    header_case("{\"__metadata__\":{\"a\":\"1\",\"b\":{}}}", 0, TL_ERR_PARSE);
    header_case("{\"__metadata__\":{\"a\":\"1\",\"b\":null}}", 0, TL_ERR_PARSE);
    header_case("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0, TL_ERR_PARSE);
    header_case("{\"__metadata__\":{},\"__metadata__\":{}}", 0, TL_ERR_PARSE);
    /* __metadata__ is never a tensor, whatever it holds */
    header_case("{\"__metadata__\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                TL_ERR_PARSE);

    /* duplicate tensor names, also through escapes */
    header_case("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                2, TL_ERR_PARSE);
    header_case("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                "\"\\u0061\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                2, TL_ERR_PARSE);

    /* nesting past the JSON depth limit inside the header */
    {
        char h[400];
        size_t p = 0;
        p += (size_t)sprintf(h, "{\"__metadata__\":{\"a\":");
        for (int k = 0; k < 70; k++) h[p++] = '[';
        for (int k = 0; k < 70; k++) h[p++] = ']';
        h[p++] = '}', h[p++] = '}', h[p] = 0;
        header_case(h, 0, TL_ERR_PARSE);
    }
    CHECK(tl_mem_live_bytes() == base && tl_mem_live_blocks() == blocks, "hostile files: nothing held");
}

/* Walk every tensor of an open file: data inside the region, sizes consistent, read_f32 works. */
static int walk_ok(const tl_safetensors *st, const uint8_t *region, size_t region_len) {
    int ok = 1;
    for (size_t i = 0; i < tl_safetensors_count(st); i++) {
        const char *name;
        size_t name_len, ndim, nbytes, at = SIZE_MAX;
        tl_dtype dt;
        const int64_t *shape;
        const uint8_t *d;
        ok &= tl_safetensors_tensor(st, i, &name, &name_len, &dt, &ndim, &shape, &d, &nbytes) == TL_OK;
        size_t count = 1;
        for (size_t k = 0; k < ndim; k++) count *= (size_t)shape[k];
        ok &= nbytes == count * dtype_bytes(dt);
        ok &= (size_t)(d - region) <= region_len && region_len - (size_t)(d - region) >= nbytes;
        ok &= tl_safetensors_find(st, name, name_len, &at) == TL_OK && at == i;
        float *out = malloc(count ? count * sizeof *out : 1);
        ok &= tl_safetensors_read_f32(st, i, out, count) == (dt == TL_DTYPE_C64 ? TL_ERR_DTYPE : TL_OK);
        free(out);
    }
    return ok;
}

static file sample_file(void) {
    uint8_t data[30];
    for (int k = 0; k < 30; k++) data[k] = (uint8_t)(k * 37 + 1);
    return st_file("{\"__metadata__\":{\"format\":\"pt\"},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                   "\"b\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[16,22]},"
                   "\"c\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[22,26]},"
                   "\"d\":{\"dtype\":\"I8\",\"shape\":[],\"data_offsets\":[26,27]},"
                   "\"e\":{\"dtype\":\"U8\",\"shape\":[1,3],\"data_offsets\":[27,30]}}",
                   5, data, sizeof data);
}

static void test_mutations(void) {
    /* Every truncation, and every byte set to a few values: some status, no crash, no leak, and
     * whatever opens satisfies the invariants. */
    file f = sample_file();
    size_t base = tl_mem_live_bytes(), blocks = tl_mem_live_blocks();
    int opened = 0, ok = 1;
    for (size_t len = 0; len < f.len; len++) {
        char *c = exact(f.bytes, len);
        tl_safetensors *st = NULL;
        tl_status s = tl_safetensors_open((const uint8_t *)c, len, &st);
        ok &= s == TL_ERR_PARSE && !st;
        free(c);
    }
    CHECK(ok, "every truncation of a valid file is PARSE");
    static const uint8_t values[] = {0,   1,   ' ', '"', '0', '9',  '[',  ']',
                                     '{', '}', ',', ':', '-', 0x7F, 0x80, 0xFF};
    int statuses_ok = 1;
    for (size_t pos = 0; pos < f.len; pos++)
        for (size_t v = 0; v < sizeof values; v++) {
            uint8_t *c = (uint8_t *)exact(f.bytes, f.len);
            c[pos] = values[v];
            tl_safetensors *st = NULL;
            tl_status s = tl_safetensors_open(c, f.len, &st);
            statuses_ok &= s == TL_OK || s == TL_ERR_PARSE || s == TL_ERR_DTYPE || s == TL_ERR_OVERFLOW;
            if (s == TL_OK) {
                opened++;
                uint64_t n = 0;
                for (int k = 7; k >= 0; k--) n = n << 8 | c[k];
                ok &= walk_ok(st, c + 8 + n, f.len - 8 - (size_t)n);
                tl_safetensors_free(st);
            }
            free(c);
        }
    CHECK(statuses_ok && ok, "byte mutations: only OK/PARSE/DTYPE/OVERFLOW, valid results consistent");
    CHECK(opened > 0, "some mutations still open (in the data or the padding): %d", opened);
    CHECK(tl_mem_live_bytes() == base && tl_mem_live_blocks() == blocks, "mutations: nothing held");
    free(f.bytes);
}

static void test_out_of_memory(void) {
    file f = sample_file();
    size_t base = tl_mem_live_bytes(), blocks = tl_mem_live_blocks();
    int failures = 0, done = 0, bad = 0;
    for (size_t n = 1; n < 100 && !done; n++) {
        tl_safetensors *st = NULL;
        tl_mem_fail_after(n);
        tl_status s = tl_safetensors_open(f.bytes, f.len, &st);
        tl_mem_fail_after(0);
        if (s == TL_ERR_NO_MEMORY) {
            failures++;
            bad += st != NULL || tl_mem_live_bytes() != base || tl_mem_live_blocks() != blocks;
        } else {
            CHECK(s == TL_OK && st && tl_safetensors_count(st) == 5 && tl_safetensors_metadata_count(st) == 1,
                  "open with allocation %zu failing: %s", n, tl_status_name(s));
            done = 1;
            tl_safetensors_free(st);
        }
    }
    CHECK(done && failures >= 3 && !bad, "open: %d allocations fail cleanly (no leak), then it opens",
          failures);
    free(f.bytes);
    /* the overlap is found after the handle's block is allocated: its failure paths too */
    file g = st_file("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                     "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}",
                     0, "abc", 3);
    done = 0, failures = 0, bad = 0;
    for (size_t n = 1; n < 100 && !done; n++) {
        tl_safetensors *st = NULL;
        tl_mem_fail_after(n);
        tl_status s = tl_safetensors_open(g.bytes, g.len, &st);
        tl_mem_fail_after(0);
        if (s == TL_ERR_NO_MEMORY)
            failures++;
        else
            done = s == TL_ERR_PARSE;
        bad += st != NULL || tl_mem_live_bytes() != base || tl_mem_live_blocks() != blocks;
    }
    CHECK(done && failures >= 3 && !bad, "overlapping file: %d allocations fail cleanly, then PARSE",
          failures);
    free(g.bytes);
}

/* ---------------------------------------------------------------------------
 * Checkpoints as PyTorch writes them: every dtype opens, reads as float32, errors say where
 * ------------------------------------------------------------------------- */

static void test_all_dtypes(void) {
    /* each dtype with the right byte count opens, and has that dtype */
    for (size_t k = 0; k < N_SPEC_DTYPES; k++) {
        char h[200];
        size_t sz = spec_dtypes[k].size;
        sprintf(h, "{\"t\":{\"dtype\":\"%s\",\"shape\":[3],\"data_offsets\":[0,%zu]}}", spec_dtypes[k].name,
                3 * sz);
        uint8_t data[24] = {0};
        file f = st_file(h, 0, data, 3 * sz);
        tl_safetensors *st = open_expect(&f, TL_OK, h);
        tl_dtype dt = 0;
        size_t nbytes = 0;
        if (st) {
            tl_safetensors_tensor(st, 0, NULL, NULL, &dt, NULL, NULL, NULL, &nbytes);
            CHECK(dt == spec_dtypes[k].dtype && nbytes == 3 * sz, "%s: dtype and %zu bytes",
                  spec_dtypes[k].name, 3 * sz);
        }
        tl_safetensors_free(st);
        free(f.bytes);
        /* one byte short: PARSE, and the detail names the tensor, dtype, bytes needed and found */
        sprintf(h, "{\"t\":{\"dtype\":\"%s\",\"shape\":[3],\"data_offsets\":[0,%zu]}}", spec_dtypes[k].name,
                3 * sz - 1);
        header_case(h, 3 * sz, TL_ERR_PARSE);
        char want[120];
        sprintf(want, "%s shape of 3 elements needs %zu bytes", spec_dtypes[k].name, 3 * sz);
        CHECK(strstr(tl_error_detail(), "tensor \"t\"") && strstr(tl_error_detail(), want),
              "%s: the size mismatch's detail says what it expected: %s", spec_dtypes[k].name,
              tl_error_detail());
    }

    /* values: a state_dict's buffers read as float32 */
    uint8_t d[128];
    size_t at = 0;
    const double f64[2] = {-2.5, 1e300};
    memcpy(d + at, f64, 16), at += 16; /* little-endian hosts only: the C tests run on x86 and wasm */
    const int64_t i64[2] = {-3, 1000000};
    memcpy(d + at, i64, 16), at += 16;
    const int32_t i32[2] = {-7, 123456};
    memcpy(d + at, i32, 8), at += 8;
    const int16_t i16[2] = {-300, 300};
    memcpy(d + at, i16, 4), at += 4;
    const uint64_t u64[2] = {0, 18446744073709551615ull};
    memcpy(d + at, u64, 16), at += 16;
    const uint32_t u32[2] = {4000000000u, 1};
    memcpy(d + at, u32, 8), at += 8;
    const uint16_t u16[2] = {65535, 2};
    memcpy(d + at, u16, 4), at += 4;
    const uint8_t bools[2] = {1, 0}, e4m3[2] = {0x38 /* 1.0 */, 0x81 /* a subnormal: -2^-9 */},
                  e5m2[2] = {0x3C /* 1.0 */, 0x7C /* inf */}, e8m0[2] = {127, 0xFF};
    memcpy(d + at, bools, 2), at += 2;
    memcpy(d + at, e4m3, 2), at += 2;
    memcpy(d + at, e5m2, 2), at += 2;
    memcpy(d + at, e8m0, 2), at += 2;
    const char *h = "{\"f64\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                    "\"bn.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[16,32]},"
                    "\"i32\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[32,40]},"
                    "\"i16\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[40,44]},"
                    "\"u64\":{\"dtype\":\"U64\",\"shape\":[2],\"data_offsets\":[44,60]},"
                    "\"u32\":{\"dtype\":\"U32\",\"shape\":[2],\"data_offsets\":[60,68]},"
                    "\"u16\":{\"dtype\":\"U16\",\"shape\":[2],\"data_offsets\":[68,72]},"
                    "\"mask\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[72,74]},"
                    "\"e4m3\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[74,76]},"
                    "\"e5m2\":{\"dtype\":\"F8_E5M2\",\"shape\":[2],\"data_offsets\":[76,78]},"
                    "\"e8m0\":{\"dtype\":\"F8_E8M0\",\"shape\":[2],\"data_offsets\":[78,80]},"
                    "\"c\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[80,88]}}";
    at += 8;
    file f = st_file(h, 0, d, at);
    tl_safetensors *st = open_expect(&f, TL_OK, "a state_dict with every kind of buffer");
    static const struct {
        const char *name;
        float a, b;
    } want[] = {{"f64", -2.5f, INFINITY},
                {"bn.num_batches_tracked", -3.0f, 1000000.0f},
                {"i32", -7.0f, 123456.0f},
                {"i16", -300.0f, 300.0f},
                {"u64", 0.0f, 18446744073709551615.0f},
                {"u32", 4000000000.0f, 1.0f},
                {"u16", 65535.0f, 2.0f},
                {"mask", 1.0f, 0.0f},
                {"e4m3", 1.0f, -0.001953125f},
                {"e5m2", 1.0f, INFINITY},
                {"e8m0", 1.0f, NAN}};
    for (size_t k = 0; st && k < sizeof want / sizeof *want; k++) {
        size_t i;
        float out[2] = {0, 0};
        CHECK(tl_safetensors_find(st, want[k].name, strlen(want[k].name), &i) == TL_OK, "%s found",
              want[k].name);
        CHECK(tl_safetensors_read_f32(st, i, out, 2) == TL_OK, "%s reads as float32", want[k].name);
        CHECK(out[0] == want[k].a && (isnan(want[k].b) ? isnan(out[1]) : out[1] == want[k].b),
              "%s: %g %g, expected %g %g", want[k].name, out[0], out[1], want[k].a, want[k].b);
    }
    if (st) {
        size_t i;
        float out[2];
        tl_safetensors_find(st, "c", 1, &i);
        CHECK(tl_safetensors_read_f32(st, i, out, 1) == TL_ERR_DTYPE &&
                  strstr(tl_error_detail(), "tensor \"c\" is C64"),
              "complex64 is listed, not read as float32: %s", tl_error_detail());
    }
    tl_safetensors_free(st);
    free(f.bytes);

    /* an empty complex64 tensor is refused as well (the fuzzer's find: the check came per element) */
    {
        static const char hdr[] = "{\"e\":{\"dtype\":\"C64\",\"shape\":[0,4],\"data_offsets\":[0,0]}}";
        uint8_t buf[8 + sizeof hdr - 1];
        uint64_t hl = sizeof hdr - 1;
        for (int k = 0; k < 8; k++) buf[k] = (uint8_t)(hl >> (8 * k));
        memcpy(buf + 8, hdr, sizeof hdr - 1);
        tl_safetensors *e = NULL;
        float none;
        CHECK(tl_safetensors_open(buf, sizeof buf, &e) == TL_OK && tl_safetensors_read_f32(e, 0, &none, 0) == TL_ERR_DTYPE,
              "an empty C64 tensor does not read as float32: %s", tl_error_detail());
        tl_safetensors_free(e);
    }

    /* all 256 F8 E4M3 bytes against the field formula */
    int ok = 1;
    for (unsigned b = 0; b < 256; b++) {
        char hh[100];
        sprintf(hh, "{\"x\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}");
        uint8_t byte = (uint8_t)b;
        file g = st_file(hh, 0, &byte, 1);
        tl_safetensors *s8 = NULL;
        float v = 0;
        ok &= tl_safetensors_open(g.bytes, g.len, &s8) == TL_OK &&
              tl_safetensors_read_f32(s8, 0, &v, 1) == TL_OK;
        unsigned e = b >> 3 & 15, m = b & 7;
        double ref = e ? ldexp(8.0 + m, (int)e - 10) : ldexp((double)m, -9);
        if (b & 0x80) ref = -ref;
        ok &= (b & 0x7F) == 0x7F ? isnan(v) : (double)v == ref && !!signbit(v) == !!(b & 0x80);
        tl_safetensors_free(s8);
        free(g.bytes);
    }
    CHECK(ok, "F8_E4M3: all 256 bytes widen exactly (NaN at S.1111.111)");
}

static void test_error_details(void) {
    static const struct {
        const char *header; /* NULL: the bytes below */
        size_t data_len;
        tl_status status;
        const char *detail;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12, TL_ERR_PARSE,
         "tensor \"a\": F32 shape of 4 elements needs 16 bytes, but data_offsets [0, 12]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 4, TL_ERR_PARSE,
         "run past the data, which has 4 bytes"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},\"b\":{\"dtype\":\"U8\",\"shape\":["
         "2],"
         "\"data_offsets\":[1,3]}}",
         3, TL_ERR_PARSE, "overlaps tensor"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 1, TL_ERR_PARSE,
         "tensor \"a\": shape[0] is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, TL_ERR_PARSE, "(no data_offsets)"},
        {"{\"a\":[1,2", 0, TL_ERR_PARSE, "is not valid JSON"},
        {"[1]", 0, TL_ERR_PARSE, "byte 8: the header must be a JSON object"},
        {"{\"__metadata__\":{\"k\":1}}", 0, TL_ERR_PARSE, "__metadata__ \"k\" must be a string"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        header_case(cases[k].header, cases[k].data_len, cases[k].status);
        CHECK(strstr(tl_error_detail(), cases[k].detail), "%s: detail \"%s\" says \"%s\"", cases[k].header,
              tl_error_detail(), cases[k].detail);
    }
    /* empty, short, a header length past the end */
    uint8_t short_file[5] = {1, 2, 3, 4, 5};
    tl_safetensors *st = NULL;
    CHECK(tl_safetensors_open(short_file, 0, &st) == TL_ERR_PARSE && strstr(tl_error_detail(), "0 bytes"),
          "an empty file: %s", tl_error_detail());
    CHECK(tl_safetensors_open(short_file, 5, &st) == TL_ERR_PARSE && strstr(tl_error_detail(), "5 bytes"),
          "5 bytes: %s", tl_error_detail());
    uint8_t garbage[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 'x', 'y'};
    CHECK(tl_safetensors_open(garbage, 16, &st) == TL_ERR_PARSE &&
              strstr(tl_error_detail(), "header length 4294967295 runs past the end of the 16-byte file"),
          "garbage: %s", tl_error_detail());
}

int main(void) {
    test_json_valid();
    test_json_invalid();
    test_json_depth();
    test_json_strings();
    test_json_numbers();
    test_heapsort();
    test_json_out_of_memory();
    test_valid_file();
    test_small_files();
    test_f16_all();
    test_bf16();
    test_hostile();
    test_mutations();
    test_out_of_memory();
    test_all_dtypes();
    test_error_details();
    CHECK(tl_mem_live_bytes() == 0 && tl_mem_live_blocks() == 0, "nothing held at exit");
    return check_report("safetensors");
}
