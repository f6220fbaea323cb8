// selftest.js — is relaxed SIMD there, and does this engine compute it right?
//
// Relaxed SIMD validating is not enough: Node 20's baseline compiler (V8 11.3 Liftoff) returns
// wrong i32x4.relaxed_dot_i8x16_i7x16_add results on x86. So an instance of the relaxed build
// runs the build's known-answer test (src/selftest.c: the int8 x ternary product against plain
// sums, on inputs that reach the kernels' extremes) before it is used. It runs in C: at every
// start (in workerd, every isolate's), and the same loops in JavaScript cost a cold worker about
// 4 ms in the interpreter.

// The smallest module with a relaxed-SIMD instruction:
// (func (result v128) (i16x8.relaxed_dot_i8x16_i7x16_s (i8x16.splat (i32.const 0)) (i8x16.splat (i32.const 0))))
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0,
  65, 0, 253, 15, 65, 0, 253, 15, 253, 0x92, 0x02, 11,
]);

/** True when this runtime validates WebAssembly relaxed SIMD (Node 20: only behind a flag). */
export function relaxedSupported() {
  return WebAssembly.validate(RELAXED_PROBE);
}

/**
 * Run the build's known-answer test (tl_build_selftest, src/selftest.c) through `rt`, the Runtime
 * of a fresh instance. Returns null when every result is exact, else a description of the first
 * wrong one (or of a failing call).
 */
export function relaxedSelfTest(rt) {
  let r;
  try {
    rt.x.tl_error_clear();
    r = rt.x.tl_build_selftest();
  } catch (e) {
    return `the self-test could not run (${e.message})`;
  }
  if (r === 0) return null;
  const detail = rt.cString(rt.x.tl_error_detail());
  return r > 0 ? `${r} wrong sums, the first ${detail}` : `the self-test's call failed with status ${r}${detail ? ` (${detail})` : ''}`;
}
