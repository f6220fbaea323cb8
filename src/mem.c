/* mem.c — every allocation of the core goes through here.
 *
 * All blocks are 16-byte aligned (for v128 loads) and carry their size, so the library can
 * say how much it holds (tl_mem_live_bytes: leak tests watch it stay flat over millions of
 * calls) and tests can make the n-th allocation fail (tl_mem_fail_after: every error path
 * after an out-of-memory is exercised, and must leave nothing allocated). */
#include <stdlib.h>

#include "internal.h"

#define TL__HEADER 16 /* keeps the user pointer 16-byte aligned; holds the size and the raw pointer */

static size_t tl__live_bytes, tl__live_blocks;
static size_t tl__fail_countdown; /* 0: off; else the allocation that fails is this one */

void *tl__malloc(size_t size) {
    if (tl__fail_countdown && --tl__fail_countdown == 0) return NULL;
    if (size > SIZE_MAX - 2 * TL__HEADER) return NULL;
    unsigned char *raw = malloc(size + 2 * TL__HEADER);
    if (!raw) return NULL;
    unsigned char *p =
        (unsigned char *)(((uintptr_t)raw + 2 * TL__HEADER - 1) & ~(uintptr_t)(TL__HEADER - 1));
    /* p - raw is in [TL__HEADER, 2 * TL__HEADER): room for the two words below */
    ((size_t *)p)[-1] = size;
    ((void **)p)[-2] = raw;
    tl__live_bytes += size, tl__live_blocks++;
    return p;
}

void *tl__calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = tl__malloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void tl__free(void *p) {
    if (!p) return;
    tl__live_bytes -= ((size_t *)p)[-1], tl__live_blocks--;
    free(((void **)p)[-2]);
}

void *tl_alloc(size_t size) { return size ? tl__malloc(size) : NULL; }

void tl_free(void *p) { tl__free(p); }

size_t tl_mem_live_bytes(void) { return tl__live_bytes; }

size_t tl_mem_live_blocks(void) { return tl__live_blocks; }

void tl_mem_fail_after(size_t n) { tl__fail_countdown = n; }

/* Room for one more element in a growable array: doubles *cap (from `first`) when n == *cap. */
int tl__array_grow(void **items, size_t n, size_t *cap, size_t size, size_t first) {
    if (n < *cap) return 1;
    size_t c = *cap ? 2 * *cap : first;
    if (c > SIZE_MAX / size) return 0;
    void *p = tl__malloc(c * size);
    if (!p) return 0;
    if (n) memcpy(p, *items, n * size);
    tl__free(*items);
    *items = p, *cap = c;
    return 1;
}
