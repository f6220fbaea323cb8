/* mem.c — every allocation of the core goes through here.
 *
 * All blocks are 16-byte aligned (for v128 loads) and carry their size, so the library can
 * say how much it holds (tl_mem_live_bytes: leak tests watch it stay flat over millions of
 * calls) and tests can make the n-th allocation fail (tl_mem_fail_after: every error path
 * after an out-of-memory is exercised, and must leave nothing allocated). */
#include <stdlib.h>

#include "internal.h"

#ifdef __EMSCRIPTEN__
#include <malloc.h>

void *sbrk(intptr_t increment); /* <unistd.h> hides it under -std=c11 */
void emscripten_notify_memory_growth(size_t memory_index);

/* dlmalloc asks sbrk for less than 2 GiB at a time (HALF_MAX_SIZE_T in its sys_alloc), so a block
 * of 2 GiB or more fails on a fresh instance even when the wasm memory could grow to hold it.
 * Make room instead: grow the memory by what is missing in one memory.grow (which either
 * succeeds or changes nothing, so a request past the maximum leaves the memory as it was), then
 * extend malloc's top chunk by blocks under 1 GiB and give them back; dlmalloc is built with
 * MORECORE_CANNOT_TRIM, so they stay in the top chunk, from which the large block is cut. */
#define TL__WASM_PAGE 65536u
#define TL__STEP ((size_t)1 << 29)

static void *tl__malloc_large(size_t raw) {
    size_t slack = (size_t)1 << 20;
    if (raw > SIZE_MAX - slack) return NULL;
    size_t want = raw + slack;
    size_t mem = (size_t)__builtin_wasm_memory_size(0) * TL__WASM_PAGE;
    uintptr_t brk = (uintptr_t)sbrk(0);
    if (brk == (uintptr_t)-1 || brk > mem) return NULL;
    size_t top = mallinfo().keepcost; /* malloc's free top chunk, contiguous with brk */
    size_t have = top + (mem - brk);
    if (want > have) {
        size_t pages = (want - have + TL__WASM_PAGE - 1) / TL__WASM_PAGE;
        if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) return NULL;
        emscripten_notify_memory_growth(0);
    }
    void *held[16];
    size_t n = 0, sum = 0;
    while (sum < want && n < sizeof held / sizeof *held) {
        size_t step = want - sum < TL__STEP ? want - sum : TL__STEP;
        if (!(held[n] = malloc(step))) break;
        sum += step, n++;
    }
    while (n) free(held[--n]);
    return malloc(raw);
}
#elif defined(__wasi__)
/* The relaxed-SIMD build (clang-19, wasi-libc's dlmalloc) has the same 2 GiB limit per sbrk, and
 * no mallinfo. Its sbrk grows the memory at its end, contiguous with malloc's top chunk: blocks
 * under 1 GiB, all held until their sum covers the request, then given back, stay in the top chunk
 * (MORECORE_CANNOT_TRIM), from which the large block is cut. When the memory cannot grow that far,
 * what the steps got stays in the top chunk for later allocations and NULL is returned. */
#define TL__STEP ((size_t)1 << 29)

static void *tl__malloc_large(size_t raw) {
    size_t slack = (size_t)1 << 20;
    if (raw > SIZE_MAX - slack) return NULL;
    size_t want = raw + slack;
    void *held[16];
    size_t n = 0, sum = 0;
    while (sum < want && n < sizeof held / sizeof *held) {
        size_t step = want - sum < TL__STEP ? want - sum : TL__STEP;
        if (!(held[n] = malloc(step))) break;
        sum += step, n++;
    }
    while (n) free(held[--n]);
    return malloc(raw);
}
#endif

#define TL__HEADER 16 /* keeps the user pointer 16-byte aligned; holds the size and the raw pointer */
/* A block is cut from malloc(size + 2 TL__HEADER) at p - raw in [TL__HEADER, 2 TL__HEADER), raw
 * 8-byte aligned at least: at least TL__MALLOC_SLACK bytes of it follow the block's end, inside the
 * same allocation (a kernel may read one byte past a matrix's bytes: kernels.c) */
_Static_assert(TL__MALLOC_SLACK <= 2 * TL__HEADER - (TL__HEADER + 8), "the slack after a block");

static size_t tl__live_bytes, tl__live_blocks;
static size_t tl__fail_countdown; /* 0: off; else the allocation that fails is this one */

void *tl__malloc(size_t size) {
    if (tl__fail_countdown && --tl__fail_countdown == 0) return NULL;
    if (size > SIZE_MAX - 2 * TL__HEADER) return NULL;
    unsigned char *raw = malloc(size + 2 * TL__HEADER);
#if defined(__EMSCRIPTEN__) || defined(__wasi__)
    if (!raw && size >= ((size_t)1 << 30)) raw = tl__malloc_large(size + 2 * TL__HEADER);
#endif
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
