/* simd.h — one SIMD source for every build.
 *
 * The vector loops are written once against the WebAssembly SIMD128 intrinsics. The wasm
 * SIMD build compiles them as they are; the native build compiles the very same loops to
 * SSE/AVX through SIMDe's implementation of wasm_simd128.h (Debian: libsimde-dev), so the
 * native numbers in the benchmarks are those of the same kernels. The scalar wasm build
 * (and a native build without SIMDe) takes the plain C fallbacks. */
#ifndef TL_SIMD_H
#define TL_SIMD_H

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#define TL_SIMD 1
#elif defined(TL_USE_SIMDE)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/wasm/simd128.h>
#define TL_SIMD 1
#else
#define TL_SIMD 0
#endif

/* The relaxed-SIMD build (clang-19 -mrelaxed-simd, dist/tilelli-relaxed.wasm) adds kernels with
 * i32x4.relaxed_dot_i8x16_i7x16_add_s / i16x8.relaxed_dot_i8x16_i7x16_s on top of the SIMD128 ones.
 * They are only used with a second operand in 0..127, where every engine computes the same
 * result (no saturation, no sign ambiguity), so they equal the scalar reference bit for bit. */
#if defined(__wasm_relaxed_simd__)
#define TL_RELAXED 1
#else
#define TL_RELAXED 0
#endif

#endif
