/* json.c — strict RFC 8259 parser for untrusted input (contract and limits: json.h).
 *
 * One recursive-descent pass. Values are built in a local node, pushed on a growable stack
 * while their container is open, and copied into the arena as one contiguous array when it
 * closes, so children are indexable in O(1) and the stack never holds pointers that a growth
 * would invalidate. Every read is checked against len. */
#include <stdarg.h>
#include <stdio.h>
#include "json.h"

#include <math.h>
#include <stdlib.h>

enum { TL__INT_NO = 0, TL__INT_EXACT = 1, TL__INT_HUGE = 2 }; /* how a number was written */

struct tl__json {
    const char *key; /* member key, for the values of an object's members */
    size_t key_len;
    union {
        struct {
            const char *ptr;
            size_t len;
        } str;
        struct {
            tl__json *items;         /* count nodes, document order */
            const tl__json **sorted; /* objects: the items ordered by key */
            size_t count;
        } list;
        struct {
            double d;
            int64_t i;
        } num;
    } u;
    unsigned char kind, int_kind;
};

/* Arena blocks: a header, then the bump-allocated bytes (8-byte aligned allocations). */
typedef struct tl__block {
    struct tl__block *next;
    size_t used, cap;
} tl__block;
#define TL__BLOCK_HEAD ((sizeof(tl__block) + 15) & ~(size_t)15)
#define TL__BLOCK_MIN ((size_t)4096)
#define TL__BLOCK_MAX ((size_t)1 << 22)

/* The root node comes first, so a root pointer is the document pointer. */
typedef struct tl__json_doc {
    tl__json root;
    tl__block *blocks; /* blocks->next ... ; the first one is the one being filled */
    size_t next_cap;
    void *last; /* the last allocation, when it ends the current block (tl__arena_shrink) */
} tl__json_doc;

typedef struct tl__parser {
    const unsigned char *s;
    size_t len, pos;
    tl__json_doc *doc;
    tl__json *stack; /* children of the open containers */
    size_t sp, scap;
} tl__parser;

/* ---------------------------------------------------------------------------
 * Arena
 * ------------------------------------------------------------------------- */

static void *tl__arena_alloc(tl__json_doc *d, size_t size) {
    if (size > SIZE_MAX - 7) return NULL;
    size = (size + 7) & ~(size_t)7;
    tl__block *b = d->blocks;
    if (b && b->cap - b->used >= size) {
        void *p = (unsigned char *)b + TL__BLOCK_HEAD + b->used;
        b->used += size;
        return d->last = p;
    }
    /* A request larger than a quarter of the next block gets a block of its own, linked behind
     * the current one so that the current one keeps being filled. */
    int own = size > d->next_cap / 4;
    size_t cap = own ? size : d->next_cap;
    if (cap > SIZE_MAX - TL__BLOCK_HEAD) return NULL;
    tl__block *nb = tl__malloc(TL__BLOCK_HEAD + cap);
    if (!nb) return NULL;
    nb->cap = cap, nb->used = size;
    void *p = (unsigned char *)nb + TL__BLOCK_HEAD;
    if (own && b) {
        nb->next = b->next, b->next = nb;
        d->last = NULL;
    } else {
        nb->next = b, d->blocks = nb;
        if (!own && d->next_cap < TL__BLOCK_MAX) d->next_cap *= 2;
        d->last = p;
    }
    return p;
}

/* Give back the tail of the last allocation p (of old bytes) when it ends the current block. */
static void tl__arena_shrink(tl__json_doc *d, void *p, size_t old, size_t keep) {
    if (p != d->last) return;
    old = (old + 7) & ~(size_t)7, keep = (keep + 7) & ~(size_t)7;
    d->blocks->used -= old - keep;
}

static void tl__doc_free(tl__json_doc *d) {
    for (tl__block *b = d->blocks, *next; b; b = next) {
        next = b->next;
        tl__free(b);
    }
    tl__free(d);
}

/* ---------------------------------------------------------------------------
 * Sorting (shared)
 * ------------------------------------------------------------------------- */

static void tl__swap_bytes(unsigned char *a, unsigned char *b, size_t size) {
    while (size--) {
        unsigned char t = *a;
        *a++ = *b, *b++ = t;
    }
}

static void tl__sift_down(unsigned char *b, size_t root, size_t n, size_t size,
                          int (*cmp)(const void *, const void *)) {
    while (root < n / 2) { /* nodes below n / 2 have a child */
        size_t child = 2 * root + 1;
        if (child + 1 < n && cmp(b + child * size, b + (child + 1) * size) < 0) child++;
        if (cmp(b + root * size, b + child * size) >= 0) return;
        tl__swap_bytes(b + root * size, b + child * size, size);
        root = child;
    }
}

void tl__heapsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
    unsigned char *b = base;
    if (n < 2) return;
    for (size_t i = n / 2; i-- > 0;) tl__sift_down(b, i, n, size, cmp);
    for (size_t end = n - 1; end > 0; end--) {
        tl__swap_bytes(b, b + end * size, size);
        tl__sift_down(b, 0, end, size, cmp);
    }
}

static int tl__key_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c) return c;
    return alen < blen ? -1 : alen > blen;
}

static int tl__member_cmp(const void *a, const void *b) {
    const tl__json *x = *(const tl__json *const *)a, *y = *(const tl__json *const *)b;
    return tl__key_cmp(x->key, x->key_len, y->key, y->key_len);
}

/* ---------------------------------------------------------------------------
 * Lexical pieces
 * ------------------------------------------------------------------------- */

static int tl__peek(const tl__parser *p) { return p->pos < p->len ? p->s[p->pos] : -1; }

static void tl__skip_ws(tl__parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
        p->pos++;
    }
}

static int tl__hex4(const unsigned char *h, uint32_t *out) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned c = h[k], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

/* Length of the valid UTF-8 sequence at s[0..n) (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF), or 0 when it is invalid or truncated. s[0] >= 0x80. */
static size_t tl__utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong below U+0800 */
        else if (c == 0xED)
            hi = 0x9F; /* U+D800..U+DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xF4)
            hi = 0x8F; /* past U+10FFFF */
    } else
        return 0;
    if (n < len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF) return 0;
    return len;
}

static size_t tl__utf8_put(unsigned char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6), o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12), o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18), o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F)), o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string at p->pos (the opening quote): its unescaped bytes, NUL-terminated, in the arena. */
static tl_status tl__parse_string(tl__parser *p, const char **out, size_t *out_len) {
    const unsigned char *s = p->s;
    size_t begin = p->pos + 1, end = begin;
    /* Find the closing quote: an escape's second byte never closes the string. */
    for (;;) {
        if (end >= p->len) return TL_ERR_PARSE;
        unsigned char c = s[end];
        if (c == '"') break;
        if (c < 0x20) return TL_ERR_PARSE;
        end += c == '\\' ? 2 : 1;
    }
    /* Unescaping never lengthens: \uXXXX (6 bytes) gives at most 3, a pair (12) gives 4. */
    size_t raw = end - begin;
    unsigned char *o = tl__arena_alloc(p->doc, raw + 1);
    if (!o) return TL_ERR_NO_MEMORY;
    size_t n = 0;
    for (size_t i = begin; i < end;) {
        unsigned char c = s[i];
        if (c == '\\') {
            unsigned char e = s[i + 1]; /* i + 1 < end: the scan stepped over it */
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *m = e ? strchr(from, e) : NULL;
            if (m) {
                o[n++] = (unsigned char)to[m - from];
                i += 2;
                continue;
            }
            if (e != 'u') return TL_ERR_PARSE;
            uint32_t cp, lo;
            if (end - i < 6 || !tl__hex4(s + i + 2, &cp)) return TL_ERR_PARSE;
            i += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return TL_ERR_PARSE; /* low surrogate first */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - i < 6 || s[i] != '\\' || s[i + 1] != 'u' || !tl__hex4(s + i + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return TL_ERR_PARSE;
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            n += tl__utf8_put(o + n, cp);
        } else if (c < 0x80) {
            o[n++] = c;
            i++;
        } else {
            size_t k = tl__utf8_len(s + i, end - i);
            if (!k) return TL_ERR_PARSE;
            memcpy(o + n, s + i, k);
            n += k, i += k;
        }
    }
    o[n] = 0;
    tl__arena_shrink(p->doc, o, raw + 1, n + 1);
    p->pos = end + 1;
    *out = (const char *)o, *out_len = n;
    return TL_OK;
}

/* Significant digits kept for strtod: a double's halfway points have at most 767 significant
 * decimal digits, so 800 digits plus a nonzero "sticky" digit standing for any nonzero rest
 * round exactly as the whole number would. */
#define TL__NUM_DIGITS 800

static int tl__is_digit(int c) { return c >= '0' && c <= '9'; }

static tl_status tl__parse_number(tl__parser *p, tl__json *v) {
    const unsigned char *s = p->s;
    size_t i = p->pos, n = p->len;
    int neg = 0;
    if (i < n && s[i] == '-') neg = 1, i++;
    if (i >= n || !tl__is_digit(s[i])) return TL_ERR_PARSE;
    size_t int_begin = i;
    if (s[i] == '0') {
        i++;
        if (i < n && tl__is_digit(s[i])) return TL_ERR_PARSE; /* leading zero */
    } else {
        while (i < n && tl__is_digit(s[i])) i++;
    }
    size_t int_end = i, frac_begin = i, frac_end = i;
    int integer = 1;
    if (i < n && s[i] == '.') {
        integer = 0;
        frac_begin = ++i;
        while (i < n && tl__is_digit(s[i])) i++;
        frac_end = i;
        if (frac_end == frac_begin) return TL_ERR_PARSE;
    }
    int64_t exp10 = 0; /* saturated far beyond any meaningful exponent */
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        integer = 0;
        int eneg = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) eneg = s[i] == '-', i++;
        if (i >= n || !tl__is_digit(s[i])) return TL_ERR_PARSE;
        while (i < n && tl__is_digit(s[i])) {
            if (exp10 < (int64_t)1 << 50) exp10 = exp10 * 10 + (s[i] - '0');
            i++;
        }
        if (eneg) exp10 = -exp10;
    }
    p->pos = i;
    v->kind = TL__JSON_NUMBER;
    v->int_kind = TL__INT_NO;

    if (integer) {
        uint64_t mag = 0, limit = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
        int huge = 0;
        for (size_t k = int_begin; k < int_end && !huge; k++) {
            unsigned d = s[k] - '0';
            if (mag > (limit - d) / 10)
                huge = 1;
            else
                mag = mag * 10 + d;
        }
        v->int_kind = huge ? TL__INT_HUGE : TL__INT_EXACT;
        /* -2^63 is the one magnitude that does not negate in int64 */
        if (!huge) v->u.num.i = neg ? (mag == (uint64_t)1 << 63 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
        /* Up to 2^53 an integer is exactly its double: no strtod, whose code (and the long-double
         * helpers it calls) a header of sizes and offsets then never runs: less to compile when a
         * wasm runtime compiles functions on first use. */
        if (!huge && mag <= (uint64_t)1 << 53) {
            v->u.num.d = neg ? -(double)mag : (double)mag;
            return TL_OK;
        }
    }

    /* The digits of the integer and fraction parts as one integer D, value = D * 10^(exp10 - F). */
    char buf[TL__NUM_DIGITS + 40];
    size_t nd = 0, dropped = 0; /* significant digits kept, and digits past the cap */
    int sticky = 0;
    for (size_t k = int_begin; k < frac_end; k++) {
        if (k == int_end) k = frac_begin; /* skip the '.' */
        if (k >= frac_end) break;
        char c = (char)s[k];
        if (nd == 0 && c == '0') continue; /* leading zeros do not count */
        if (nd < TL__NUM_DIGITS)
            buf[1 + nd++] = c;
        else
            dropped++, sticky |= c != '0';
    }
    double d;
    if (nd == 0) {
        d = 0.0;
    } else {
        /* F = digits after the point; the number's decimal magnitude is nd + dropped + exp10 - F. */
        int64_t frac = (int64_t)(frac_end - frac_begin);
        int64_t mag = (int64_t)(nd + dropped) + exp10 - frac;
        if (mag > 310) return TL_ERR_PARSE; /* >= 1e309: beyond the largest double */
        if (mag < -340) {
            d = 0.0; /* below half the smallest subnormal */
        } else {
            size_t m = nd;
            buf[0] = '+';
            if (sticky) buf[1 + m++] = '1';
            int64_t e = exp10 - frac + (int64_t)dropped - (sticky ? 1 : 0);
            /* |e| <= 310 + 340 + TL__NUM_DIGITS + 1 here, far inside int */
            char *o = buf + 1 + m;
            *o++ = 'e';
            if (e < 0) *o++ = '-', e = -e;
            char rev[24];
            int nr = 0;
            do rev[nr++] = (char)('0' + e % 10), e /= 10;
            while (e);
            while (nr) *o++ = rev[--nr];
            *o = 0;
            d = strtod(buf, NULL);
            if (isinf(d)) return TL_ERR_PARSE;
        }
    }
    v->u.num.d = neg ? -d : d;
    return TL_OK;
}

/* ---------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------- */

static tl_status tl__push(tl__parser *p, const tl__json *v) {
    if (!tl__array_grow((void **)&p->stack, p->sp, &p->scap, sizeof *p->stack, 16)) return TL_ERR_NO_MEMORY;
    p->stack[p->sp++] = *v;
    return TL_OK;
}

/* Move the children stack[base..sp) into the arena as v's items. */
static tl_status tl__close(tl__parser *p, size_t base, tl__json *v) {
    size_t count = p->sp - base;
    v->u.list.count = count, v->u.list.items = NULL, v->u.list.sorted = NULL;
    if (!count) return TL_OK;
    if (count > SIZE_MAX / sizeof(tl__json)) return TL_ERR_NO_MEMORY;
    tl__json *items = tl__arena_alloc(p->doc, count * sizeof *items);
    if (!items) return TL_ERR_NO_MEMORY;
    memcpy(items, p->stack + base, count * sizeof *items);
    p->sp = base;
    v->u.list.items = items;
    if (v->kind != TL__JSON_OBJECT) return TL_OK;
    const tl__json **sorted = tl__arena_alloc(p->doc, count * sizeof *sorted);
    if (!sorted) return TL_ERR_NO_MEMORY;
    for (size_t k = 0; k < count; k++) sorted[k] = items + k;
    tl__heapsort(sorted, count, sizeof *sorted, tl__member_cmp);
    for (size_t k = 1; k < count; k++)
        if (!tl__member_cmp(&sorted[k - 1], &sorted[k])) return TL_ERR_PARSE; /* duplicate key */
    v->u.list.sorted = sorted;
    return TL_OK;
}

static tl_status tl__parse_value(tl__parser *p, tl__json *v, int depth);

static tl_status tl__parse_container(tl__parser *p, tl__json *v, int depth) {
    int object = p->s[p->pos] == '{';
    int close = object ? '}' : ']';
    if (depth >= TL__JSON_MAX_DEPTH) return TL_ERR_PARSE;
    v->kind = object ? TL__JSON_OBJECT : TL__JSON_ARRAY;
    p->pos++;
    size_t base = p->sp;
    tl__skip_ws(p);
    if (tl__peek(p) == close) {
        p->pos++;
        return tl__close(p, base, v);
    }
    for (;;) {
        tl__json child;
        memset(&child, 0, sizeof child);
        tl_status s;
        if (object) {
            if (tl__peek(p) != '"') return TL_ERR_PARSE;
            if ((s = tl__parse_string(p, &child.key, &child.key_len))) return s;
            tl__skip_ws(p);
            if (tl__peek(p) != ':') return TL_ERR_PARSE;
            p->pos++;
            tl__skip_ws(p);
        }
        if ((s = tl__parse_value(p, &child, depth + 1))) return s;
        if ((s = tl__push(p, &child))) return s;
        tl__skip_ws(p);
        int c = tl__peek(p);
        p->pos++;
        if (c == close) return tl__close(p, base, v);
        if (c != ',') return TL_ERR_PARSE;
        tl__skip_ws(p);
    }
}

static int tl__literal(tl__parser *p, const char *lit, size_t n) {
    if (p->len - p->pos < n || memcmp(p->s + p->pos, lit, n)) return 0;
    p->pos += n;
    return 1;
}

/* The value at p->pos (no whitespace before it) into v; v->key is left as it is. */
static tl_status tl__parse_value(tl__parser *p, tl__json *v, int depth) {
    switch (tl__peek(p)) {
    case '{':
    case '[':
        return tl__parse_container(p, v, depth);
    case '"':
        v->kind = TL__JSON_STRING;
        return tl__parse_string(p, &v->u.str.ptr, &v->u.str.len);
    case 't':
        v->kind = TL__JSON_TRUE;
        return tl__literal(p, "true", 4) ? TL_OK : TL_ERR_PARSE;
    case 'f':
        v->kind = TL__JSON_FALSE;
        return tl__literal(p, "false", 5) ? TL_OK : TL_ERR_PARSE;
    case 'n':
        v->kind = TL__JSON_NULL;
        return tl__literal(p, "null", 4) ? TL_OK : TL_ERR_PARSE;
    default:
        return tl__parse_number(p, v); /* rejects anything that is not '-' or a digit */
    }
}

tl_status tl__json_parse(const char *s, size_t len, tl__json **root) {
    if (!root || (!s && len)) return TL_ERR_NULL;
    tl__json_doc *d = tl__malloc(sizeof *d);
    if (!d) return TL_ERR_NO_MEMORY;
    memset(d, 0, sizeof *d);
    d->next_cap = TL__BLOCK_MIN;
    tl__parser p = {(const unsigned char *)s, len, 0, d, NULL, 0, 0};
    tl__json v;
    memset(&v, 0, sizeof v);
    tl__skip_ws(&p);
    tl_status st = tl__parse_value(&p, &v, 0);
    if (!st) {
        tl__skip_ws(&p);
        if (p.pos != len) st = TL_ERR_PARSE; /* trailing garbage */
    }
    tl__free(p.stack);
    if (st) {
        tl__doc_free(d);
        return st;
    }
    d->root = v;
    *root = &d->root;
    return TL_OK;
}

void tl__json_free(tl__json *root) {
    if (root) tl__doc_free((tl__json_doc *)(void *)root);
}

/* ---------------------------------------------------------------------------
 * Accessors
 * ------------------------------------------------------------------------- */

tl__json_kind tl__json_kind_of(const tl__json *v) { return v ? (tl__json_kind)v->kind : (tl__json_kind)0; }

static int tl__is_list(const tl__json *v) {
    return v && (v->kind == TL__JSON_ARRAY || v->kind == TL__JSON_OBJECT);
}

size_t tl__json_count(const tl__json *v) { return tl__is_list(v) ? v->u.list.count : 0; }

const tl__json *tl__json_item(const tl__json *v, size_t i) {
    return tl__is_list(v) && i < v->u.list.count ? v->u.list.items + i : NULL;
}

const char *tl__json_key(const tl__json *obj, size_t i, size_t *len) {
    if (!obj || obj->kind != TL__JSON_OBJECT || i >= obj->u.list.count) return NULL;
    const tl__json *m = obj->u.list.items + i;
    if (len) *len = m->key_len;
    return m->key;
}

const tl__json *tl__json_find(const tl__json *obj, const char *key, size_t key_len, size_t *index) {
    if (!obj || obj->kind != TL__JSON_OBJECT || (!key && key_len)) return NULL;
    size_t lo = 0, hi = obj->u.list.count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const tl__json *m = obj->u.list.sorted[mid];
        int c = tl__key_cmp(m->key, m->key_len, key ? key : "", key_len);
        if (c == 0) {
            if (index) *index = (size_t)(m - obj->u.list.items);
            return m;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *tl__json_string(const tl__json *v, size_t *len) {
    if (!v || v->kind != TL__JSON_STRING) return NULL;
    if (len) *len = v->u.str.len;
    return v->u.str.ptr;
}

int tl__json_string_is(const tl__json *v, const char *lit) {
    size_t n = strlen(lit);
    return v && v->kind == TL__JSON_STRING && v->u.str.len == n && !memcmp(v->u.str.ptr, lit, n);
}

double tl__json_number(const tl__json *v) { return v && v->kind == TL__JSON_NUMBER ? v->u.num.d : 0.0; }

int tl__json_is_integer(const tl__json *v) {
    return v && v->kind == TL__JSON_NUMBER && v->int_kind != TL__INT_NO;
}

int tl__json_int64(const tl__json *v, int64_t *out) {
    if (!v || v->kind != TL__JSON_NUMBER || v->int_kind != TL__INT_EXACT) return 0;
    if (out) *out = v->u.num.i;
    return 1;
}

/* ---------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------- */

static int tl__buf_reserve(tl__buf *b, size_t n) {
    if (b->oom) return 0;
    if (n <= b->cap - b->len) return 1;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) cap *= 2;
    uint8_t *p = tl__malloc(cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    if (b->len) memcpy(p, b->p, b->len);
    tl__free(b->p);
    b->p = p, b->cap = cap;
    return 1;
}

void tl__buf_put(tl__buf *b, const void *data, size_t n) {
    if (!n || !tl__buf_reserve(b, n)) return;
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

void tl__buf_zeros(tl__buf *b, size_t n) {
    if (!n || !tl__buf_reserve(b, n)) return;
    memset(b->p + b->len, 0, n);
    b->len += n;
}

void tl__buf_printf(tl__buf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) { /* only short fields are written this way */
        b->oom = 1;
        return;
    }
    tl__buf_put(b, tmp, (size_t)n);
}

void tl__buf_json_string(tl__buf *b, const char *s, size_t n) {
    tl__buf_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            tl__buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            tl__buf_printf(b, "\\u%04x", c);
        else
            tl__buf_put(b, &s[i], 1);
    }
    tl__buf_put(b, "\"", 1);
}

void tl__buf_json_number(tl__buf *b, double v) {
    char tmp[40];
    for (int prec = 9; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    tl__buf_put(b, tmp, strlen(tmp));
}

tl_status tl__buf_status(const tl__buf *b) { return b->oom ? TL_ERR_NO_MEMORY : TL_OK; }

void tl__buf_free(tl__buf *b) {
    tl__free(b->p);
    memset(b, 0, sizeof *b);
}
