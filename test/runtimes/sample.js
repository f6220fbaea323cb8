// sample.js — the one computation every runtime runs (Node, Chromium page and module worker,
// workerd, Deno, and an installed tarball): quantization, deadzone stats and ternary matrix
// products on fixed inputs. Runtime tests compare its result with Node's, value for value.
// Plain ESM with no imports: each runtime passes its own `tl` (the API from its entry).

/** xorshift32 stream of floats in [-1, 1): the same numbers everywhere. */
function floats(n, seed) {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = (s | 0) / 2 ** 31;
  }
  return out;
}

/** Runs the sample on `tl` and returns plain JSON-able data. */
export function sample(tl) {
  const rows = 48, cols = 100;
  const w = floats(rows * cols, 7);
  const x = floats(3 * cols, 11);
  const result = {
    version: tl.version,
    alpha: tl.absmeanScale(w),
    stats: tl.deadzoneStats(w, 0.1),
    rowScales: Array.from(tl.absmeanScalePerRow(w, [rows, cols])),
    signsChecksum: Array.from(tl.ternarySigns(w).trits).reduce((a, t, i) => (a * 31 + t + 1 + i) >>> 0, 0),
    lsq: Array.from(tl.ternarizeLsq(w.subarray(0, 16), 0.3)),
    products: {},
  };
  const q = tl.quantizeActivations(x, cols);
  const bits = new Uint8Array(3 * Math.ceil(cols / 8)).map((_, i) => (i * 37 + 11) & 255);
  for (const format of ['i2', 'tq1', 'bitplane']) {
    const m = tl.PackedMatrix.fromWeights(w, [rows, cols], { format, perRow: true });
    try {
      result.products[format] = {
        bytes: m.byteLength,
        int8: Array.from(m.matmulInt8(q.values, { scales: q.scales })),
        int8Raw: Array.from(m.matmulInt8(q.values, { raw: true })),
        binary: Array.from(m.matmulBinary(bits, { raw: true })),
        sparse: Array.from(m.matmulSparse([[0, 5, 99], [], [42]], { raw: true })),
        float: Array.from(m.matmulFloat(x)),
      };
    } finally {
      m.free();
    }
  }
  let error;
  try {
    tl.absmeanScale([1, Number.NaN]);
  } catch (e) {
    error = { name: e.name, code: e.code };
  }
  result.error = error;
  return result;
}
