/* fuzz_json.c — libFuzzer target for the strict JSON parser (src/json.c).
 *
 * Each input is parsed as is. Whatever it is: the status is OK or PARSE, and nothing is held
 * afterwards. A tree that parses must be self-consistent (counts, keys found at their index,
 * NUL-terminated strings, finite numbers, exact integers agreeing with their double) and must
 * survive a round trip: serialized again here and re-parsed, it gives the same tree, bit for
 * bit on numbers. Then the same input is parsed with one allocation failing (which one depends
 * on the input): NO_MEMORY or the first status, and nothing held. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "json.h"


typedef struct {
    char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        REQUIRE(b->p);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put_string(buf *b, const char *s, size_t n) {
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(b, esc, 6);
        } else {
            put(b, &s[i], 1); /* UTF-8 as it is: the parser validated it */
        }
    }
    put(b, "\"", 1);
}

/* Check v's invariants and serialize it. */
static void walk(const tl__json *v, buf *b, int depth) {
    REQUIRE(depth <= TL__JSON_MAX_DEPTH);
    size_t n;
    const char *s;
    char num[64];
    int64_t i;
    switch (tl__json_kind_of(v)) {
    case TL__JSON_NULL:
        put(b, "null", 4);
        break;
    case TL__JSON_TRUE:
        put(b, "true", 4);
        break;
    case TL__JSON_FALSE:
        put(b, "false", 5);
        break;
    case TL__JSON_NUMBER: {
        double d = tl__json_number(v);
        REQUIRE(isfinite(d));
        if (tl__json_int64(v, &i)) {
            REQUIRE(tl__json_is_integer(v));
            REQUIRE((double)i == d); /* both the nearest double to the same integer */
            snprintf(num, sizeof num, "%s%lld", i == 0 && signbit(d) ? "-" : "", (long long)i);
        } else {
            if (tl__json_is_integer(v)) REQUIRE(fabs(d) >= 9223372036854775807.0);
            snprintf(num, sizeof num, "%.17g", d);
        }
        put(b, num, strlen(num));
        break;
    }
    case TL__JSON_STRING:
        s = tl__json_string(v, &n);
        REQUIRE(s && s[n] == 0);
        put_string(b, s, n);
        break;
    case TL__JSON_ARRAY:
        n = tl__json_count(v);
        put(b, "[", 1);
        for (size_t k = 0; k < n; k++) {
            if (k) put(b, ",", 1);
            REQUIRE(tl__json_item(v, k));
            walk(tl__json_item(v, k), b, depth + 1);
        }
        REQUIRE(!tl__json_item(v, n) && !tl__json_key(v, 0, NULL));
        put(b, "]", 1);
        break;
    case TL__JSON_OBJECT:
        n = tl__json_count(v);
        put(b, "{", 1);
        for (size_t k = 0; k < n; k++) {
            size_t kl, at = SIZE_MAX;
            const char *key = tl__json_key(v, k, &kl);
            REQUIRE(key && key[kl] == 0);
            REQUIRE(tl__json_find(v, key, kl, &at) == tl__json_item(v, k) && at == k);
            if (k) put(b, ",", 1);
            put_string(b, key, kl);
            put(b, ":", 1);
            walk(tl__json_item(v, k), b, depth + 1);
        }
        REQUIRE(!tl__json_item(v, n) && !tl__json_key(v, n, NULL));
        put(b, "}", 1);
        break;
    default:
        REQUIRE(0);
    }
}

static int same(const tl__json *a, const tl__json *b) {
    if (tl__json_kind_of(a) != tl__json_kind_of(b)) return 0;
    size_t n, m;
    const char *s, *t;
    switch (tl__json_kind_of(a)) {
    case TL__JSON_NUMBER: {
        double x = tl__json_number(a), y = tl__json_number(b);
        int64_t i, j;
        if (memcmp(&x, &y, sizeof x)) return 0;
        if (tl__json_int64(a, &i) && (!tl__json_int64(b, &j) || i != j)) return 0;
        return 1;
    }
    case TL__JSON_STRING:
        s = tl__json_string(a, &n), t = tl__json_string(b, &m);
        return n == m && !memcmp(s, t, n);
    case TL__JSON_ARRAY:
    case TL__JSON_OBJECT:
        n = tl__json_count(a);
        if (n != tl__json_count(b)) return 0;
        for (size_t k = 0; k < n; k++) {
            if (tl__json_kind_of(a) == TL__JSON_OBJECT) {
                s = tl__json_key(a, k, &n), t = tl__json_key(b, k, &m);
                if (n != m || memcmp(s, t, n)) return 0;
                n = tl__json_count(a);
            }
            if (!same(tl__json_item(a, k), tl__json_item(b, k))) return 0;
        }
        return 1;
    default:
        return 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    tl__json *root = NULL;
    tl_status st = tl__json_parse(s, size, &root);
    REQUIRE(st == TL_OK || st == TL_ERR_PARSE);
    if (st == TL_OK) {
        buf b = {NULL, 0, 0};
        walk(root, &b, 0);
        tl__json *again = NULL;
        REQUIRE(tl__json_parse(b.p, b.n, &again) == TL_OK);
        REQUIRE(same(root, again));
        tl__json_free(again);
        free(b.p);
        tl__json_free(root);
    } else {
        REQUIRE(root == NULL);
    }
    REQUIRE(tl_mem_live_blocks() == 0 && tl_mem_live_bytes() == 0);

    /* the same input with allocation k failing, k from 1 to 8 */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 16777619u;
    root = NULL;
    tl_mem_fail_after(1 + h % 8);
    tl_status st2 = tl__json_parse(s, size, &root);
    tl_mem_fail_after(0);
    REQUIRE(st2 == st || st2 == TL_ERR_NO_MEMORY);
    tl__json_free(st2 == TL_OK ? root : NULL);
    REQUIRE(tl_mem_live_blocks() == 0 && tl_mem_live_bytes() == 0);
    return 0;
}
