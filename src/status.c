/* status.c — the one table of status codes: names (the JS error codes) and messages, and the
 * detail of the last error (what and where), which bindings append to the message. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static const struct {
    tl_status code;
    const char *name;
    const char *message;
} tl__statuses[] = {
    {TL_OK, "OK", "no error"},
    {TL_ERR_NULL, "NULL_POINTER", "a required pointer is NULL"},
    {TL_ERR_EMPTY, "EMPTY", "the tensor has no elements"},
    {TL_ERR_NON_FINITE, "NON_FINITE", "the input holds a NaN or an infinity"},
    {TL_ERR_RANK, "RANK", "a per-row operation needs a tensor of at least 2 dimensions"},
    {TL_ERR_SHAPE, "SHAPE", "the shape does not match the data"},
    {TL_ERR_OVERFLOW, "OVERFLOW", "a size exceeds the 32-bit limit of 2^30 - 1 elements"},
    {TL_ERR_BAND, "INVALID_BAND", "the deadzone band must be finite and >= 0"},
    {TL_ERR_ALPHA, "INVALID_ALPHA", "the scale must be finite and > 0"},
    {TL_ERR_NO_MEMORY, "OUT_OF_MEMORY", "out of memory"},
    {TL_ERR_ARGUMENT, "INVALID_ARGUMENT", "an argument has the wrong type or value"},
    {TL_ERR_FORMAT, "INVALID_FORMAT", "the packed bytes are not valid for their format"},
    {TL_ERR_SIZE, "SIZE_MISMATCH", "a buffer's length does not match the shapes"},
    {TL_ERR_TRIT, "INVALID_TRIT", "a trit is not -1, 0 or +1"},
    {TL_ERR_FREED, "FREED", "the object was used after free()"},
    {TL_ERR_PARSE, "PARSE", "the file is malformed"},
    {TL_ERR_VERSION, "UNSUPPORTED_VERSION", "the file is from a format version this library does not read"},
    {TL_ERR_DTYPE, "INVALID_DTYPE", "a tensor has a dtype that cannot be used here"},
};

#define TL__NSTATUS (sizeof tl__statuses / sizeof tl__statuses[0])

const char *tl_status_name(tl_status s) {
    for (size_t i = 0; i < TL__NSTATUS; i++)
        if (tl__statuses[i].code == s) return tl__statuses[i].name;
    return "UNKNOWN";
}

const char *tl_status_message(tl_status s) {
    for (size_t i = 0; i < TL__NSTATUS; i++)
        if (tl__statuses[i].code == s) return tl__statuses[i].message;
    return "unknown status code";
}

uint32_t tl_version(void) {
    return TILELLI_VERSION_MAJOR * 10000u + TILELLI_VERSION_MINOR * 100u + TILELLI_VERSION_PATCH;
}

uint32_t tl_build_flags(void) {
    uint32_t f = 0;
#ifdef __wasm_simd128__
    f |= TL_BUILD_SIMD128;
#endif
#ifdef __wasm_relaxed_simd__
    f |= TL_BUILD_RELAXED_SIMD;
#endif
#if defined(__wasm__) && defined(__wasm_atomics__)
    f |= TL_BUILD_THREADS;
#endif
    return f;
}

/* One buffer: the core is single-threaded per instance (a wasm instance, or a native caller that
 * serializes its calls). */
static char tl__detail[512];

const char *tl_error_detail(void) { return tl__detail; }

void tl_error_clear(void) { tl__detail[0] = 0; }

tl_status tl__fail(tl_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl__detail, sizeof tl__detail, fmt, ap);
    va_end(ap);
    return s;
}
