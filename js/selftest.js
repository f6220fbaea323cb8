// selftest.js — is relaxed SIMD there, and does this engine compute it right?
//
// Relaxed SIMD validating is not enough: Node 20's baseline compiler (V8 11.3 Liftoff) returns
// wrong i32x4.relaxed_dot_i8x16_i7x16_add results on x86. So an instance of the relaxed build
// runs a known-answer product through its own kernel exports before it is used: int8 x ternary
// (the i2 batch-1 path, the one that uses the relaxed dot) on fixed inputs that reach the kernels'
// extremes (x = -128 and 127, long rows past the int16 accumulator flush), against the exact sums
// computed here. It runs at every start (in workerd, every isolate's), so it is kept small: 5 rows
// of 1093 columns, about 1 ms where a larger one cost 10 ms of a worker's cold start.

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

const FORMAT_I2 = 1; // tl_format TL_FORMAT_I2 (the test builds the matrix from trits, any format would do)
const ROWS = 5; // a group of 4 rows and one alone
const COLS = 64 * 17 + 5; // 17 blocks and a partial one: past a flush of the int16 lanes (every 16 blocks)

/** The known input: trits of row r, and two activation vectors (a mixed one, an extreme one). */
function knownInput() {
  const trits = new Int8Array(ROWS * COLS);
  for (let r = 0; r < ROWS; r++) {
    for (let c = 0; c < COLS; c++) {
      // row 0: all +1 (with x = -128 everywhere, the most negative int16 partial sums)
      trits[r * COLS + c] = r === 0 ? 1 : ((r * 7 + c * 5 + ((c * c) >> 3)) % 3) - 1;
    }
  }
  const mixed = new Int8Array(COLS);
  for (let c = 0; c < COLS; c++) mixed[c] = ((c * 73 + 11) & 255) - 128;
  mixed[0] = -128;
  mixed[1] = 127;
  const extreme = new Int8Array(COLS).fill(-128);
  for (let c = 0; c < COLS; c += 7) extreme[c] = 127;
  return { trits, vectors: [mixed, extreme] };
}

/**
 * Run the known-answer test on fresh `exports` of a tilelli build over `memory`. Returns null when
 * every result is exact, else a description of the first wrong one (or of a failing call).
 */
export function relaxedSelfTest(exports, memory) {
  const x = exports;
  const { trits, vectors } = knownInput();
  const ptrs = [];
  const alloc = (n) => {
    const p = x.tl_alloc(n) >>> 0;
    if (p === 0) throw new Error('out of memory');
    ptrs.push(p);
    return p;
  };
  let m = 0;
  try {
    const pt = alloc(trits.length);
    const ps = alloc(4);
    const pm = alloc(4);
    const px = alloc(COLS);
    const pacc = alloc(ROWS * 4);
    new Int8Array(memory.buffer, pt, trits.length).set(trits);
    new Float32Array(memory.buffer, ps, 1)[0] = 1;
    let s = x.tl_matrix_from_trits(FORMAT_I2, pt, ROWS, COLS, ps, 1, pm);
    if (s !== 0) return `tl_matrix_from_trits returned status ${s}`;
    m = new Uint32Array(memory.buffer, pm, 1)[0];
    for (let v = 0; v < vectors.length; v++) {
      const xv = vectors[v];
      new Int8Array(memory.buffer, px, COLS).set(xv);
      new Int32Array(memory.buffer, pacc, ROWS).fill(0x7f7f7f7f);
      s = x.tl_matmul_i8(m, px, COLS, 1, 0, pacc, 0, ROWS);
      if (s !== 0) return `tl_matmul_i8 returned status ${s}`;
      const acc = new Int32Array(memory.buffer, pacc, ROWS);
      for (let r = 0; r < ROWS; r++) {
        let want = 0;
        for (let c = 0; c < COLS; c++) want += xv[c] * trits[r * COLS + c];
        if (acc[r] !== want) return `int8 x ternary ${ROWS}x${COLS}, vector ${v}, row ${r}: got ${acc[r]}, expected ${want}`;
      }
    }
    return null;
  } catch (e) {
    return `the self-test could not run (${e.message})`;
  } finally {
    if (m) x.tl_matrix_free(m);
    for (const p of ptrs) x.tl_free(p);
  }
}
