// threads-sample.js — products big enough to be split over threads (rows x cols x batch >= 2^20),
// on the i2 and tq1 formats, float and int8 activations, batches 1 and 8: a digest of their bits per
// case. test/runtimes/threads-browser.test.js runs it in Chromium pages (isolated: threads, not
// isolated: one thread) and in Node (the scalar build), and the digests must all be equal.

function floats(n, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** FNV-1a over the bytes of a typed array, as hex */
function digest(a) {
  const u8 = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < u8.length; i++) h = Math.imul(h ^ u8[i], 16777619) >>> 0;
  return h.toString(16).padStart(8, '0');
}

export function threadsSample(tl) {
  const rows = 1030, cols = 1100;
  const w = floats(rows * cols, 11);
  const out = {};
  for (const format of ['i2', 'tq1']) {
    const m = tl.PackedMatrix.fromWeights(w, [rows, cols], { format });
    for (const batch of [1, 8]) {
      const xf = floats(batch * cols, batch + 3);
      const xi = Int8Array.from(xf, (v) => Math.round(v * 127));
      out[`${format} float batch ${batch}`] = digest(m.matmulFloat(xf));
      out[`${format} int8 batch ${batch}`] = digest(m.matmulInt8(xi, { raw: true }));
    }
    m.free();
  }
  return out;
}
