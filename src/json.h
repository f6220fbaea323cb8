/*
 * json.h — a small strict JSON parser (RFC 8259) for untrusted input. Internal: not installed.
 *
 * What it accepts: exactly one JSON text (any value, with whitespace around it) in s[0..len),
 * no more. What it rejects, all as TL_ERR_PARSE:
 *   - anything outside the RFC 8259 grammar: trailing garbage or a second value, a byte-order
 *     mark, comments, trailing commas, single quotes, unquoted keys, '+1', '01', '.5', '1.',
 *     NaN, Infinity, an empty input;
 *   - strings with a raw control character (< 0x20), invalid UTF-8 (overlong forms, encoded
 *     surrogates, code points past U+10FFFF, truncated sequences), an unknown escape, or a
 *     \u escape that is a lone or reversed surrogate;
 *   - numbers whose magnitude overflows a double (1e400): NaN and infinity never appear;
 *   - objects with two members of the same key (compared as unescaped bytes, so "a" and
 *     "\u0061" are the same key);
 *   - containers nested deeper than TL__JSON_MAX_DEPTH.
 * A NUL byte is never read past len and never needed: s need not be NUL-terminated.
 * TL_ERR_NO_MEMORY when an allocation fails (nothing is then held); TL_ERR_NULL for NULL
 * s (with len > 0) or root.
 *
 * The tree lives in a few arena blocks owned by the root and freed by one tl__json_free(root).
 * Strings are unescaped copies (the input may be freed after parsing), NUL-terminated for
 * convenience, but may contain NUL bytes (\u0000): always use their length. Objects keep their
 * members in document order; lookups by key are binary searches over a sorted index.
 *
 * Memory: the tree takes 48 bytes per value on 64-bit hosts (32 on wasm32) plus the string
 * bytes, so a hostile text of n bytes can keep about 24 n bytes (a run of "0,"), and up to about
 * 75 n while it parses (the open containers' children wait on a stack that grows by doubling):
 * callers that take large texts from strangers should bound len first. Numbers are converted with
 * strtod on a copy of their digits with the decimal point removed ("1.5e3" -> "15e2"), so the
 * result is correctly rounded where the C library's strtod is (glibc, musl) and does not depend
 * on the locale.
 *
 * Accessors take any node, including NULL, and answer "nothing" (0, NULL) when the node is not
 * of the kind they read, so callers can chain them and check once.
 */
#ifndef TL_JSON_H
#define TL_JSON_H

#include "internal.h"

/* Deepest nesting of arrays and objects: [[...]] with 64 brackets parses, 65 do not. */
#define TL__JSON_MAX_DEPTH 64

typedef enum tl__json_kind {
    TL__JSON_NULL = 1,
    TL__JSON_FALSE,
    TL__JSON_TRUE,
    TL__JSON_NUMBER,
    TL__JSON_STRING,
    TL__JSON_ARRAY,
    TL__JSON_OBJECT
} tl__json_kind;

typedef struct tl__json tl__json;

/* Parse s[0..len) into a tree; *root is set only on success. */
tl_status tl__json_parse(const char *s, size_t len, tl__json **root);

/* Free a tree returned by tl__json_parse (only a root: never a node inside it). NULL is a no-op. */
void tl__json_free(tl__json *root);

/* The node's kind, or 0 for NULL. */
tl__json_kind tl__json_kind_of(const tl__json *v);

/* Members of an object or items of an array (0 for any other node). */
size_t tl__json_count(const tl__json *v);

/* Item i of an array, or the value of member i of an object (document order); NULL when i is
 * out of range or v is neither. */
const tl__json *tl__json_item(const tl__json *v, size_t i);

/* Key of member i of an object (its length in *len, which may be NULL); NULL when out of range. */
const char *tl__json_key(const tl__json *obj, size_t i, size_t *len);

/* The member of obj whose key is key[0..key_len) (unescaped bytes): its value, and its index in
 * *index (may be NULL). NULL when there is none or obj is no object. O(log members). */
const tl__json *tl__json_find(const tl__json *obj, const char *key, size_t key_len, size_t *index);

/* The unescaped UTF-8 bytes of a string (NUL-terminated, *len bytes without it; len may be NULL),
 * or NULL when v is no string. */
const char *tl__json_string(const tl__json *v, size_t *len);

/* Nonzero when v is a string equal to lit (a NUL-terminated C string). */
int tl__json_string_is(const tl__json *v, const char *lit);

/* The value of a number as the nearest double (finite; -0 for "-0"), 0 for other nodes. */
double tl__json_number(const tl__json *v);

/* Nonzero when v is a number written as an integer: no fraction, no exponent ("1.0" and "1e2"
 * are not). Its value may still be outside int64 (see tl__json_int64). */
int tl__json_is_integer(const tl__json *v);

/* Nonzero when v is an integer number (as above) within int64, stored exactly in *out (may be
 * NULL); "-0" gives 0. Zero otherwise, and *out is not written. */
int tl__json_int64(const tl__json *v, int64_t *out);

/* Sort n elements of size bytes at base with cmp (heapsort: in place, no allocation, O(n log n)
 * in the worst case; not stable). Shared by the readers that need to sort what they parsed. */
void tl__heapsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

/* ---------------------------------------------------------------------------
 * Writing: a growable byte buffer with JSON helpers. Errors are sticky: after a failed
 * allocation every append is a no-op and tl__buf_status says TL_ERR_NO_MEMORY.
 * ------------------------------------------------------------------------- */

typedef struct tl__buf {
    uint8_t *p;
    size_t len, cap;
    int oom;
} tl__buf;

void tl__buf_put(tl__buf *b, const void *data, size_t n);
void tl__buf_zeros(tl__buf *b, size_t n);
void tl__buf_printf(tl__buf *b, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* s[0..n) as a JSON string (quoted, escaped; s is UTF-8). */
void tl__buf_json_string(tl__buf *b, const char *s, size_t n);
/* A finite double, shortest text that reads back to the same value ("%.17g" at worst). */
void tl__buf_json_number(tl__buf *b, double v);
tl_status tl__buf_status(const tl__buf *b);
void tl__buf_free(tl__buf *b);

#endif
