/* bandwidth.c — read bandwidth of WebAssembly SIMD128 loads, for the kernel benchmarks.
 *
 * bench_read_sum(p, bytes, passes, streams) reads `bytes` bytes from p, `passes` times over, and
 * returns the wrapped sum of all its little-endian 32-bit words (then of the bytes % 4 last bytes).
 * The caller times it (bytes * passes / time = GB/s). Returning the sum keeps the loads from being
 * optimized away, and lets the caller check the kernel read everything once.
 *
 * The buffer is cut into `streams` (1, 2 or 4) equal segments read in lockstep, with v128 loads into
 * eight independent i32x4 accumulators in all (128 bytes per iteration: the loop is bound by the
 * loads, not by add latency, and stays under V8's 16 xmm registers). From cache one stream is as
 * fast as four; from DRAM several streams keep more prefetches in flight (on the reference machine,
 * 172 MiB: ~12 GB/s with one stream, ~16 GB/s with four), which is what a kernel reading several
 * rows at once gets. The tail that does not fill an iteration is summed a word at a time.
 * Without -msimd128 the whole buffer goes through the word loop.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __wasm_simd128__
#include <wasm_simd128.h>
#endif

uint32_t bench_read_sum(const void *p, size_t bytes, int32_t passes, int32_t streams);

/* Words from p[i] to the end, then the last bytes % 4 bytes one by one. */
static uint32_t sum_tail(const uint8_t *p, size_t i, size_t bytes) {
    uint32_t s = 0;
    for (; i + 4 <= bytes; i += 4) {
        uint32_t v;
        memcpy(&v, p + i, 4);
        s += v;
    }
    for (; i < bytes; i++) s += p[i];
    return s;
}

#ifdef __wasm_simd128__
/* S streams of 8 / S accumulators each; S is a constant at each call site. */
static inline __attribute__((always_inline)) uint32_t read_streams(const uint8_t *p, size_t bytes,
                                                                   const int S) {
    const int A = 8 / S;                        /* accumulators per stream */
    const size_t step = 16 * (size_t)A;         /* bytes per stream per iteration */
    const size_t seg = bytes / S / step * step; /* bytes per stream */
    v128_t acc[8];
    for (int a = 0; a < 8; a++) acc[a] = wasm_i32x4_splat(0);
    for (size_t i = 0; i < seg; i += step)
        for (int s = 0; s < S; s++)
            for (int a = 0; a < A; a++)
                acc[s * A + a] = wasm_i32x4_add(acc[s * A + a], wasm_v128_load(p + s * seg + i + 16 * a));
    v128_t t = wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_add(acc[0], acc[1]), wasm_i32x4_add(acc[2], acc[3])),
                              wasm_i32x4_add(wasm_i32x4_add(acc[4], acc[5]), wasm_i32x4_add(acc[6], acc[7])));
    uint32_t s = (uint32_t)wasm_i32x4_extract_lane(t, 0) + (uint32_t)wasm_i32x4_extract_lane(t, 1) +
                 (uint32_t)wasm_i32x4_extract_lane(t, 2) + (uint32_t)wasm_i32x4_extract_lane(t, 3);
    return s + sum_tail(p, (size_t)S * seg, bytes);
}
#endif

/* noinline: one real pass per call, which the loop below cannot merge. */
static __attribute__((noinline)) uint32_t read_once(const uint8_t *p, size_t bytes, int32_t streams) {
#ifdef __wasm_simd128__
    if (streams >= 4) return read_streams(p, bytes, 4);
    if (streams == 2 || streams == 3) return read_streams(p, bytes, 2);
    return read_streams(p, bytes, 1);
#else
    (void)streams;
    return sum_tail(p, 0, bytes);
#endif
}

/* Each pass's sum is stored to a volatile global: a store that may alias the buffer, so the compiler
 * cannot hoist the (read-only) pass out of the loop and compute it once. */
volatile uint32_t bench_read_sink;

uint32_t bench_read_sum(const void *p, size_t bytes, int32_t passes, int32_t streams) {
    uint32_t s = 0;
    for (int32_t k = 0; k < passes; k++) {
        uint32_t v = read_once((const uint8_t *)p, bytes, streams);
        bench_read_sink = v;
        s += v;
    }
    return s;
}
