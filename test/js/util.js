// util.js — shared by the JS tests: the xorshift32 stream the C tests and benches use too.

/** A xorshift32 generator of uint32 values. */
export function xorshift(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}
