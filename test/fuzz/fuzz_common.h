/* fuzz_common.h — what the libFuzzer targets share: REQUIRE (an invariant that must hold; a
 * broken one aborts with its location, which libFuzzer reports as a crash with the input), and a
 * byte stream that reads the input and then continues as a xorshift stream seeded by the input's
 * hash, so every input decodes into a complete case. */
#ifndef TL_FUZZ_COMMON_H
#define TL_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define REQUIRE(c)                                                                                           \
    do {                                                                                                     \
        if (!(c)) {                                                                                          \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #c);                        \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

typedef struct {
    const uint8_t *p;
    size_t n, i;
    uint32_t s;
} stream;

static inline uint32_t fnv(const uint8_t *d, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ d[i]) * 16777619u;
    return h;
}

static inline uint8_t next(stream *r) {
    if (r->i < r->n) return r->p[r->i++];
    r->s ^= r->s << 13, r->s ^= r->s >> 17, r->s ^= r->s << 5;
    return (uint8_t)(r->s >> 24);
}

/* Little-endian, one byte after the other (the order of calls in one expression is unspecified). */
static inline uint32_t next16(stream *r) {
    uint32_t v = next(r);
    return v | (uint32_t)next(r) << 8;
}

static inline uint32_t next32(stream *r) {
    uint32_t v = next16(r);
    return v | next16(r) << 16;
}

#endif
