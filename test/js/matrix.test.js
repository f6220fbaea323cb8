// matrix.test.js — packed ternary matrices (PackedMatrix, pack/unpack/packedSize,
// quantizeActivations) in both wasm builds, against plain JS references written from
// docs/FORMATS.md and the C formulas of src/kernels_ref.c:
//   - the packed bytes of every format, byte for byte, and which bytes are rejected;
//   - every product: int32 accumulators exactly, float32 outputs of the binary, sparse and int8
//     kernels bitwise ((float)acc * scale[r]) / x_scale, the float kernel within 1e-5 (relative to
//     sum |x| * |scale|) of a float64 sum;
//   - fromWeights against ternarySigns / ternarySignsPerRow, quantizeActivations against the
//     BitNet b1.58 formula with round half to even;
//   - every error code with its message, and that the instance keeps working afterwards;
//   - free / freed / Symbol.dispose, and matrices across wasm memory growth;
//   - the SIMD128 and scalar builds bit for bit, the float kernel included (tl_matmul_f32 sums in
//     the same order in every build; only batch 1 and larger batches may differ in the last bits).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { init, TilelliError } from 'tilelli';

import { xorshift } from './util.js';

const builds = { simd: await init({ simd: true }), scalar: await init({ simd: false }) };
const FORMATS = ['i2', 'tq1', 'bitplane'];

// Shapes: single rows and columns, cols around every block size (4, 5, 8, 16, 64, 80, 128) and
// past 4096 (the i2 SIMD dot flushes its accumulators every 64 blocks), rows past 64 (the sparse
// kernel works in tiles of 64 rows).
const SHAPES = [
  [1, 1], [1, 2], [3, 1], [1, 3], [2, 4], [2, 5], [3, 7], [1, 8], [4, 9], [2, 15], [3, 16], [2, 17],
  [5, 31], [2, 63], [3, 64], [2, 65], [4, 79], [1, 80], [3, 81], [2, 100], [3, 127], [2, 128],
  [3, 129], [2, 160], [1, 255], [2, 256], [3, 257], [66, 33], [130, 12], [64, 10], [5, 1000],
  [2, 4500], [1, 8200],
];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------


/** Uniform integer in [0, n). */
const below = (rng, n) => rng() % n;

/** Random trits; `zeros` is the probability of a 0. */
function randomTrits(n, rng, zeros = 1 / 3) {
  const t = new Int8Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng() / 2 ** 32;
    t[i] = u < zeros ? 0 : u < zeros + (1 - zeros) / 2 ? 1 : -1;
  }
  return t;
}

/** Random float32 values in (-scale, scale). */
function randomFloats(n, rng, scale = 1) {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = ((rng() | 0) / 2 ** 31) * scale;
  return x;
}

function randomBytes(n, rng) {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng() & 255;
  return b;
}

function randomInt8(n, rng) {
  const v = new Int8Array(n);
  for (let i = 0; i < n; i++) v[i] = rng() & 255; // wraps to -128..127, extremes included
  return v;
}

/** Per-row scales: finite float32 of both signs and several magnitudes. */
function randomScales(rows, rng) {
  const s = new Float32Array(rows);
  for (let r = 0; r < rows; r++) s[r] = ((rng() | 0) / 2 ** 31) * 2 ** (below(rng, 20) - 10) || 0.5;
  return s;
}

const bitsOf = (f32) => new Uint32Array(f32.buffer, f32.byteOffset, f32.length);

/** Equal as float32 bit patterns (so -0 !== +0 and NaN payloads count), with the first difference. */
function assertSameFloats(actual, expected, what) {
  assert.ok(actual instanceof Float32Array, `${what}: expected a Float32Array`);
  assert.equal(actual.length, expected.length, `${what}: length`);
  const a = bitsOf(actual), e = bitsOf(Float32Array.from(expected));
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) assert.fail(`${what}: element ${i} is ${actual[i]} (0x${a[i].toString(16)}), expected ${expected[i]} (0x${e[i].toString(16)})`);
  }
}

function assertSameInts(actual, expected, Ctor, what) {
  assert.ok(actual instanceof Ctor, `${what}: expected a ${Ctor.name}, got ${actual?.constructor?.name}`);
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) assert.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

/** Assert that fn throws a TilelliError with this code whose message matches re. */
function throwsCode(fn, code, re) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof TilelliError, `expected a TilelliError, got ${e}`);
    assert.equal(e.name, 'TilelliError');
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// The formats, written from docs/FORMATS.md (independently of src/pack.c)
// ---------------------------------------------------------------------------------------------

const BLOCK = { i2: [64, 16], tq1: [80, 16], bitplane: [128, 32] }; // [weights, bytes] per block

function rowBytes(format, cols) {
  const [w, b] = BLOCK[format];
  return Math.ceil(cols / w) * b;
}

/** tq1: digits c[0..4] (each 0..2, c[0] most significant) to a byte: ceil(v * 256 / 243). */
function tq1Encode(c) {
  const v = (((c[0] * 3 + c[1]) * 3 + c[2]) * 3 + c[3]) * 3 + c[4];
  return Math.ceil((v * 256) / 243);
}

/** tq1: digit k of byte q: (((q * 3^k) mod 256) * 3) >> 8. */
const tq1Digit = (q, k) => ((((q * 3 ** k) % 256) * 3) >> 8);

/** Pack rows x cols trits into a format's bytes, as the doc says. */
function jsPack(format, t, rows, cols) {
  const rb = rowBytes(format, cols);
  const out = new Uint8Array(rows * rb);
  const trit = (r, c) => (c < cols ? t[r * cols + c] : 0); // padding: zero trits
  for (let r = 0; r < rows; r++) {
    const row = out.subarray(r * rb, (r + 1) * rb);
    if (format === 'i2') {
      for (let base = 0; base < rb; base += 16) {
        for (let w = 0; w < 64; w++) {
          const code = trit(r, (base / 16) * 64 + w) + 1;
          row[base + 2 * (w % 8) + Math.floor(w / 32)] |= code << (2 * (Math.floor(w / 8) % 4));
        }
      }
    } else if (format === 'tq1') {
      for (let base = 0; base < rb; base += 16) {
        for (let j = 0; j < 16; j++) {
          const c = [0, 1, 2, 3, 4].map((k) => trit(r, (base / 16) * 80 + 16 * k + j) + 1);
          row[base + j] = tq1Encode(c);
        }
      }
    } else {
      const half = rb / 2;
      for (let c = 0; c < cols; c++) {
        if (t[r * cols + c] > 0) row[c >> 3] |= 1 << (c & 7);
        if (t[r * cols + c] < 0) row[half + (c >> 3)] |= 1 << (c & 7);
      }
    }
  }
  return out;
}

/** Decode a format's bytes, or null when the doc says they are invalid. */
function jsUnpack(format, bytes, rows, cols) {
  const rb = rowBytes(format, cols);
  const t = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const row = bytes.subarray(r * rb, (r + 1) * rb);
    const put = (c, v) => {
      if (c < cols) t[r * cols + c] = v;
      else if (v !== 0) return false; // padding must be a zero trit
      return true;
    };
    if (format === 'i2') {
      for (let base = 0; base < rb; base += 16) {
        for (let w = 0; w < 64; w++) {
          const code = (row[base + 2 * (w % 8) + Math.floor(w / 32)] >> (2 * (Math.floor(w / 8) % 4))) & 3;
          if (code === 3 || !put((base / 16) * 64 + w, code - 1)) return null;
        }
      }
    } else if (format === 'tq1') {
      for (let base = 0; base < rb; base += 16) {
        for (let j = 0; j < 16; j++) {
          const q = row[base + j];
          const c = [0, 1, 2, 3, 4].map((k) => tq1Digit(q, k));
          if (tq1Encode(c) !== q) return null;
          for (let k = 0; k < 5; k++) if (!put((base / 16) * 80 + 16 * k + j, c[k] - 1)) return null;
        }
      }
    } else {
      const half = rb / 2;
      for (let c = 0; c < half * 8; c++) {
        const p = (row[c >> 3] >> (c & 7)) & 1, n = (row[half + (c >> 3)] >> (c & 7)) & 1;
        if ((p & n) || !put(c, p - n)) return null;
      }
    }
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// The products, from trits and scales (src/kernels_ref.c: out = ((float)acc * scale[r]) / x_scale)
// ---------------------------------------------------------------------------------------------

const f = Math.fround;
const emit = (acc, scale, xScale = 1) => f(f(f(acc) * scale) / xScale);

function refBinary(t, scales, rows, cols, bits, batch) {
  const xb = Math.ceil(cols / 8);
  const acc = new Int32Array(batch * rows), out = new Float32Array(batch * rows);
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < rows; r++) {
      let a = 0;
      for (let c = 0; c < cols; c++) if ((bits[b * xb + (c >> 3)] >> (c & 7)) & 1) a += t[r * cols + c];
      acc[b * rows + r] = a;
      out[b * rows + r] = emit(a, scales[r]);
    }
  }
  return { acc, out };
}

function refSparse(t, scales, rows, cols, lists) {
  const batch = lists.length;
  const acc = new Int32Array(batch * rows), out = new Float32Array(batch * rows);
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < rows; r++) {
      let a = 0;
      for (const c of lists[b]) a += t[r * cols + c];
      acc[b * rows + r] = a;
      out[b * rows + r] = emit(a, scales[r]);
    }
  }
  return { acc, out };
}

function refInt8(t, scales, rows, cols, x, batch, xScales) {
  const acc = new Int32Array(batch * rows), out = new Float32Array(batch * rows);
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < rows; r++) {
      let a = 0;
      for (let c = 0; c < cols; c++) a += t[r * cols + c] * x[b * cols + c];
      acc[b * rows + r] = a;
      out[b * rows + r] = emit(a, scales[r], xScales ? xScales[b] : 1);
    }
  }
  return { acc, out };
}

/** float64 sums and the error bound 1e-5 * sum |x| * |scale| of each output. */
function refFloat(t, scales, rows, cols, x, batch) {
  const y = new Float64Array(batch * rows), tol = new Float64Array(batch * rows);
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < rows; r++) {
      let a = 0, m = 0;
      for (let c = 0; c < cols; c++) {
        a += t[r * cols + c] * x[b * cols + c];
        m += Math.abs(x[b * cols + c]);
      }
      y[b * rows + r] = a * scales[r];
      tol[b * rows + r] = 1e-5 * m * Math.abs(scales[r]);
    }
  }
  return { y, tol };
}

function assertFloatClose(actual, { y, tol }, what) {
  assert.ok(actual instanceof Float32Array, `${what}: expected a Float32Array`);
  assert.equal(actual.length, y.length, `${what}: length`);
  for (let i = 0; i < y.length; i++) {
    if (!(Math.abs(actual[i] - y[i]) <= tol[i])) {
      assert.fail(`${what}: element ${i} is ${actual[i]}, float64 reference ${y[i]}, tolerance ${tol[i]}`);
    }
  }
}

/** round half to even of a float32 value (rintf): JS has only Math.round, which rounds ties up. */
function roundHalfEven(v) {
  const fl = Math.floor(v);
  const d = v - fl; // exact: v and fl are doubles within one unit of each other
  if (d < 0.5) return fl;
  if (d > 0.5) return fl + 1;
  return fl % 2 === 0 ? fl : fl + 1;
}

/** The BitNet b1.58 activation quantizer in float32: s = 127 / max(max|x|, 1e-5). */
function refQuantize(x, cols) {
  const batch = x.length / cols;
  const values = new Int8Array(x.length), scales = new Float32Array(batch);
  const eps = f(1e-5);
  for (let b = 0; b < batch; b++) {
    let mx = 0;
    for (let c = 0; c < cols; c++) mx = Math.max(mx, Math.abs(x[b * cols + c]));
    const s = f(127 / (mx > eps ? mx : eps)); // one float division: double rounding is harmless
    for (let c = 0; c < cols; c++) {
      const q = roundHalfEven(f(x[b * cols + c] * s)); // the product of two float32 is exact in double
      values[b * cols + c] = Math.min(127, Math.max(-128, q));
    }
    scales[b] = s;
  }
  return { values, scales };
}

/**
 * Vectors whose products x * s round, in float32, to exactly k + 0.5 (while the exact product is
 * not a tie): only a quantizer that rounds x * s to float32 before rounding half to even gets
 * them right. Returns the vectors and how many such elements they hold.
 */
function nearTies(cols, batch, rng) {
  const x = new Float32Array(batch * cols);
  const u = new Uint32Array(x.buffer);
  let ties = 0;
  for (let b = 0; b < batch; b++) {
    const mx = f(1 + (rng() / 2 ** 32) * 10);
    const s = f(127 / mx);
    x[b * cols] = below(rng, 2) ? mx : -mx;
    for (let c = 1; c < cols; c++) {
      const target = below(rng, 251) - 125 + 0.5;
      const i = b * cols + c;
      x[i] = f(target / s);
      const start = u[i];
      for (let d = -6; d <= 6; d++) {
        u[i] = start + d;
        if (f(x[i] * s) === target && x[i] * s !== target) break;
        u[i] = start;
      }
      if (f(x[i] * s) === target && x[i] * s !== target) ties++;
    }
  }
  return { x, ties };
}

/** Random active-column lists (repeats allowed, an empty list now and then). */
function randomLists(cols, batch, rng) {
  const lists = [];
  for (let b = 0; b < batch; b++) {
    const k = below(rng, 5) === 0 ? 0 : below(rng, Math.min(2 * cols, 600) + 1);
    lists.push(Array.from({ length: k }, () => below(rng, cols)));
  }
  return lists;
}

// ---------------------------------------------------------------------------------------------
// The references themselves: known answers, so a wrong reference cannot hide a wrong kernel
// ---------------------------------------------------------------------------------------------

test('the JS references give hand-computed answers', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.4999998, 126.5, 0.49999997].map(roundHalfEven),
    [0, 2, 2, 0, -2, -2, 3, 126, 0]);
  const q = refQuantize(Float32Array.from([127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, -126.5]), 9);
  assert.deepEqual([...q.values], [127, 0, 2, 2, 0, -2, -2, 126, -126]);
  assert.deepEqual([...q.scales], [1]);
  assert.deepEqual([...refQuantize(new Float32Array(4), 2).scales], [f(127 / f(1e-5)), f(127 / f(1e-5))]);
  // t = [[1, -1, 0], [0, 1, 1]], scales [0.5, -2]
  const t = Int8Array.from([1, -1, 0, 0, 1, 1]), s = Float32Array.from([0.5, -2]);
  assert.deepEqual([...refBinary(t, s, 2, 3, [0b011, 0b110 | 0xf8], 2).acc], [0, 1, -1, 2]);
  assert.deepEqual([...refBinary(t, s, 2, 3, [0b011], 1).out], [0, -2]);
  assert.deepEqual([...refSparse(t, s, 2, 3, [[0, 0, 2], []]).acc], [2, 1, 0, 0]);
  const i8 = refInt8(t, s, 2, 3, Int8Array.from([3, -128, 127]), 1, [4]);
  assert.deepEqual([...i8.acc], [131, -1]);
  assert.deepEqual([...i8.out], [f(f(131 * 0.5) / 4), f(-2 * -1 / 4)]);
  assert.deepEqual([...refFloat(t, s, 2, 3, [0.25, 1, -3], 1).y], [-0.375, 4]);
  // the documented example bytes (docs/FORMATS.md)
  const ex = [1, -1, 0, 0, 1, 1, -1, 0, -1, 1];
  const hex = (b) => Buffer.from(b).toString('hex');
  assert.equal(hex(jsPack('i2', ex, 1, 10)), '52555855555555555655565554555555');
  assert.equal(hex(jsPack('tq1', ex, 1, 10)), 'd52b8080d5d52b802bd5808080808080');
  assert.equal(hex(jsPack('bitplane', ex, 1, 10)),
    '3102000000000000000000000000000042010000000000000000000000000000');
  assert.equal(tq1Encode([2, 0, 1, 2, 0]), 0xbb);
});

test('the worked examples of docs/FORMATS.md come out of both builds', () => {
  const t = [1, -1, 0, 0, 1, 1, -1, 0, -1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1];
  const rows = {
    i2: ['52555855555555555655565554555555', '55555155555555555555555555555555'],
    tq1: ['d52b8080d5d52b802bd5808080808080', '808080808080808080' + '2b808080808080'],
    bitplane: ['3102' + '00'.repeat(14) + '4201' + '00'.repeat(14), '00'.repeat(16) + '0002' + '00'.repeat(14)],
  };
  for (const [name, tl] of Object.entries(builds)) {
    for (const format of FORMATS) {
      const hex = Buffer.from(tl.pack(t, [2, 10], format)).toString('hex');
      assert.equal(hex, rows[format].join(''), `${name} ${format}`);
      assert.equal(Buffer.from(jsPack(format, t, 2, 10)).toString('hex'), hex, `${format}: the JS packer`);
    }
    const m = tl.PackedMatrix.fromTrits(t, [2, 10], { format: 'tq1', scales: [0.5, 2] });
    assert.deepEqual([...m.matmulBinary([0x09, 0x02], { raw: true })], [2, -1]);
    assert.deepEqual([...m.matmulBinary([0x09, 0x02])], [1, -2]);
    assert.deepEqual([...m.matmulSparse([[0, 3, 9], [9, 9]], { raw: true })], [2, -1, 2, -2]);
    const q = tl.quantizeActivations([0.1, -0.5, 0.25, 1, 0, 0, 0, 0, 0, 0], 10);
    assert.deepEqual([...q.values], [13, -64, 32, 127, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...q.scales], [127]);
    assert.deepEqual([...m.matmulInt8(q.values, { raw: true })], [77, 0]);
    assert.deepEqual([...m.matmulInt8(q.values, { scales: q.scales })], [f(38.5 / 127), 0]);
    // fixed point: u = 2^22, q(0.1) = 419430, q(-0.5) = -2^21
    assert.deepEqual([...m.matmulFloat([0.1, -0.5, 0.25, 1, 0, 0, 0, 0, 0, 0])], [f(f(2516582 / 2 ** 22) * 0.5), 0]);
    m.free();
  }
});

// ---------------------------------------------------------------------------------------------
// Byte layouts
// ---------------------------------------------------------------------------------------------

test('tq1: the 243 encodings decode to their digits, and exactly the other 13 bytes are rejected', () => {
  const tl = builds.scalar;
  const valid = new Set();
  for (let v = 0; v < 243; v++) {
    const c = [81, 27, 9, 3, 1].map((p) => Math.floor(v / p) % 3);
    const q = tq1Encode(c);
    valid.add(q);
    assert.deepEqual([0, 1, 2, 3, 4].map((k) => tq1Digit(q, k)), c, `byte ${q}`);
    // digit k of byte 0 is weight 16k of the block
    const t = new Int8Array(80);
    c.forEach((d, k) => { t[16 * k] = d - 1; });
    const bytes = tl.pack(t, [1, 80], 'tq1');
    assert.equal(bytes[0], q);
    assert.ok(bytes.subarray(1).every((b) => b === 0x80), 'zero trits encode as 0x80');
  }
  assert.equal(valid.size, 243);
  const invalid = [];
  for (let q = 0; q < 256; q++) {
    const bytes = new Uint8Array(16).fill(0x80);
    bytes[0] = q;
    if (valid.has(q)) {
      assert.equal(tl.unpack(bytes, [1, 80], 'tq1')[0], tq1Digit(q, 0) - 1);
    } else {
      invalid.push(q);
      throwsCode(() => tl.unpack(bytes, [1, 80], 'tq1'), 'INVALID_FORMAT');
      throwsCode(() => tl.PackedMatrix.fromPacked(bytes, [1, 80], { format: 'tq1' }), 'INVALID_FORMAT');
    }
  }
  assert.deepEqual(invalid, [0x01, 0x14, 0x28, 0x3c, 0x4f, 0x63, 0x77, 0x8a, 0x9e, 0xb2, 0xc5, 0xd9, 0xed]);
});

for (const [name, tl] of Object.entries(builds)) {
  test(`${name}: the packed bytes are those of docs/FORMATS.md for every shape and format`, () => {
    const rng = xorshift(11);
    for (const [rows, cols] of SHAPES) {
      for (const format of FORMATS) {
        const what = `${format} [${rows}, ${cols}]`;
        const t = randomTrits(rows * cols, rng, [0, 1 / 3, 0.9][below(rng, 3)]);
        const bytes = tl.pack(t, [rows, cols], format);
        assert.ok(bytes instanceof Uint8Array);
        assert.equal(bytes.length, rows * rowBytes(format, cols), `${what}: size`);
        assert.equal(tl.packedSize([rows, cols], format), bytes.length, `${what}: packedSize`);
        assertSameInts(bytes, jsPack(format, t, rows, cols), Uint8Array, `${what}: bytes`);
      }
    }
    // the default format is i2
    const t = Int8Array.from([1, 0, -1, -1, 1]);
    assert.deepEqual(tl.pack(t, [1, 5]), tl.pack(t, [1, 5], 'i2'));
    assert.deepEqual(tl.unpack(tl.pack(t, [1, 5]), [1, 5]), t);
    assert.equal(tl.packedSize([1, 5]), 16);
  });

  test(`${name}: pack/unpack and fromPacked(bytes(), scales()) round-trip exactly for every shape and format`, () => {
    const rng = xorshift(12);
    for (const [rows, cols] of SHAPES) {
      for (const format of FORMATS) {
        const what = `${format} [${rows}, ${cols}]`;
        const t = randomTrits(rows * cols, rng);
        const plain = below(rng, 2) === 0;
        const bytes = tl.pack(plain ? [...t] : t, [rows, cols], format);
        assertSameInts(tl.unpack(bytes, [rows, cols], format), t, Int8Array, `${what}: unpack(pack(t))`);
        assertSameInts(tl.unpack([...bytes], [rows, cols], format), t, Int8Array, `${what}: unpack of an array`);
        const scales = randomScales(rows, rng);
        const m = tl.PackedMatrix.fromTrits(t, [rows, cols], { format, scales });
        assert.equal(m.rows, rows);
        assert.equal(m.cols, cols);
        assert.equal(m.format, format);
        assert.equal(m.byteLength, bytes.length);
        assert.equal(m.freed, false);
        assertSameInts(m.bytes(), bytes, Uint8Array, `${what}: matrix bytes`);
        assertSameFloats(m.scales(), scales, `${what}: scales`);
        assertSameInts(m.trits(), t, Int8Array, `${what}: trits`);
        const again = tl.PackedMatrix.fromPacked(m.bytes(), [rows, cols], { format, scales: m.scales() });
        assertSameInts(again.trits(), t, Int8Array, `${what}: fromPacked trits`);
        assertSameInts(again.bytes(), bytes, Uint8Array, `${what}: fromPacked bytes`);
        assertSameFloats(again.scales(), scales, `${what}: fromPacked scales`);
        m.free(), again.free();
      }
    }
    // a per-tensor scale is the same value on every row; the default is 1
    const m = tl.PackedMatrix.fromTrits([1, 0, -1, 1, 1, 0], [3, 2], { format: 'tq1', scales: 0.37 });
    assertSameFloats(m.scales(), [0.37, 0.37, 0.37].map(f), 'per-tensor scales');
    assertSameFloats(tl.PackedMatrix.fromTrits([1, 0, -1, 1], [2, 2], { scales: [2.5] }).scales(), [2.5, 2.5], 'one scale');
    assertSameFloats(tl.PackedMatrix.fromPacked(m.bytes(), [3, 2], { format: 'tq1' }).scales(), [1, 1, 1], 'default scale');
    m.free();
  });

  test(`${name}: exactly the bytes docs/FORMATS.md calls invalid are rejected (random bit flips)`, () => {
    const rng = xorshift(13);
    let rejected = 0, accepted = 0;
    for (const [rows, cols] of SHAPES.filter(([r, c]) => r * c <= 2000)) {
      for (const format of FORMATS) {
        const t = randomTrits(rows * cols, rng);
        const good = tl.pack(t, [rows, cols], format);
        for (let trial = 0; trial < 24; trial++) {
          const bytes = good.slice();
          for (let k = 1 + below(rng, 3); k > 0; k--) bytes[below(rng, bytes.length)] ^= 1 << below(rng, 8);
          const expected = jsUnpack(format, bytes, rows, cols);
          const what = `${format} [${rows}, ${cols}] bytes ${Buffer.from(bytes).toString('hex')}`;
          if (expected === null) {
            rejected++;
            throwsCode(() => tl.unpack(bytes, [rows, cols], format), 'INVALID_FORMAT', /not valid for their format/);
            throwsCode(() => tl.PackedMatrix.fromPacked(bytes, [rows, cols], { format }), 'INVALID_FORMAT');
          } else {
            accepted++;
            assertSameInts(tl.unpack(bytes, [rows, cols], format), expected, Int8Array, what);
            const m = tl.PackedMatrix.fromPacked(bytes, [rows, cols], { format });
            assertSameInts(m.trits(), expected, Int8Array, `${what}: fromPacked`);
            m.free();
          }
        }
      }
    }
    assert.ok(rejected > 100 && accepted > 100, `both kinds seen: ${rejected} rejected, ${accepted} accepted`);
  });

  // -------------------------------------------------------------------------------------------
  // Products
  // -------------------------------------------------------------------------------------------

  test(`${name}: binary, sparse and int8 products equal the reference (int32 exactly, float32 bitwise)`, () => {
    const rng = xorshift(21);
    for (const [rows, cols] of SHAPES) {
      for (const format of FORMATS) {
        const t = randomTrits(rows * cols, rng, [0, 1 / 3, 0.95][below(rng, 3)]);
        const scales = randomScales(rows, rng);
        const m = tl.PackedMatrix.fromTrits(t, [rows, cols], { format, scales });
        for (const batch of [1, 2, 5]) {
          const what = `${format} [${rows}, ${cols}] batch ${batch}`;
          // binary (bits past cols are random too: they must be ignored)
          const bits = randomBytes(batch * Math.ceil(cols / 8), rng);
          const rb = refBinary(t, scales, rows, cols, bits, batch);
          assertSameInts(m.matmulBinary(bits, { raw: true }), rb.acc, Int32Array, `${what}: binary acc`);
          assertSameFloats(m.matmulBinary(bits), rb.out, `${what}: binary out`);
          assertSameFloats(m.matmulBinary([...bits], { raw: false }), rb.out, `${what}: binary out (array)`);
          // sparse: random lists, and the active columns of the bits (same as binary)
          const lists = randomLists(cols, batch, rng);
          const rs = refSparse(t, scales, rows, cols, lists);
          const arg = batch === 1 && below(rng, 2) ? lists[0] : lists.map((l) => (below(rng, 2) ? Uint32Array.from(l) : l));
          assertSameInts(m.matmulSparse(arg, { raw: true }), rs.acc, Int32Array, `${what}: sparse acc`);
          assertSameFloats(m.matmulSparse(arg), rs.out, `${what}: sparse out`);
          const active = [];
          for (let b = 0; b < batch; b++) {
            active.push([]);
            for (let c = 0; c < cols; c++) if ((bits[b * Math.ceil(cols / 8) + (c >> 3)] >> (c & 7)) & 1) active[b].push(c);
          }
          assertSameFloats(m.matmulSparse(active), rb.out, `${what}: sparse = binary`);
          // int8, without scales, with quantizeActivations' scales, with given scales
          const x = randomInt8(batch * cols, rng);
          const ri = refInt8(t, scales, rows, cols, x, batch);
          assertSameInts(m.matmulInt8(x, { raw: true }), ri.acc, Int32Array, `${what}: int8 acc`);
          assertSameFloats(m.matmulInt8(x), ri.out, `${what}: int8 out, s = 1`);
          const q = tl.quantizeActivations(randomFloats(batch * cols, rng, 3), cols);
          assertSameFloats(m.matmulInt8(q.values, { scales: q.scales }),
            refInt8(t, scales, rows, cols, q.values, batch, q.scales).out, `${what}: int8 out, quantized`);
          const xs = Float32Array.from({ length: batch }, () => f(2 ** (below(rng, 16) - 8) * (1 + (rng() & 255) / 256)));
          assertSameFloats(m.matmulInt8([...x], { scales: [...xs] }), refInt8(t, scales, rows, cols, x, batch, xs).out,
            `${what}: int8 out, given scales`);
          assertSameInts(m.matmulInt8(x, { raw: true, scales: xs }), ri.acc, Int32Array, `${what}: raw ignores scales`);
        }
        m.free();
      }
    }
  });

  test(`${name}: the float kernel is within 1e-5 of a float64 reference`, () => {
    const rng = xorshift(22);
    for (const [rows, cols] of SHAPES) {
      for (const format of FORMATS) {
        const t = randomTrits(rows * cols, rng);
        const scales = randomScales(rows, rng);
        const m = tl.PackedMatrix.fromTrits(t, [rows, cols], { format, scales });
        for (const batch of [1, 2, 3, 5, rows * cols < 5000 ? 33 : 4]) {
          const x = randomFloats(batch * cols, rng, 2 ** (below(rng, 20) - 10));
          const what = `${format} [${rows}, ${cols}] batch ${batch}`;
          assertFloatClose(m.matmulFloat(x), refFloat(t, scales, rows, cols, x, batch), what);
          assertFloatClose(m.matmulFloat([...x]), refFloat(t, scales, rows, cols, x, batch), `${what} (array)`);
        }
        m.free();
      }
    }
    // exact where float32 sums are exact: small integers
    const m = tl.PackedMatrix.fromTrits([1, -1, 0, 1, 1, 1, -1, 0], [2, 4], { format: 'bitplane', scales: [0.5, 3] });
    assertSameFloats(m.matmulFloat([1, 2, 3, 4, -1, -2, 8, 0.25]), [1.5, 0, 0.625, -33], 'small integers');
    m.free();
  });

  test(`${name}: accumulators at the extremes (cols past 4096, all -128 or all 127, long index lists)`, () => {
    for (const format of FORMATS) {
      // 2^24 - 1 columns of -128: |acc| = 2^31 - 128, the largest int8 accumulator that always fits
      for (const [rows, cols] of [[2, 4096], [2, 4097], [1, 12345], [2, 2 ** 24 - 1]]) {
        const t = new Int8Array(rows * cols).fill(1);
        t.fill(-1, cols); // second row all -1
        const m = tl.PackedMatrix.fromTrits(t, [rows, cols], { format });
        for (const v of [-128, 127]) {
          const x = new Int8Array(cols).fill(v);
          assertSameInts(m.matmulInt8(x, { raw: true }), [v * cols, -v * cols].slice(0, rows), Int32Array, `${format} ${cols} x ${v}`);
        }
        assertSameInts(m.matmulBinary(new Uint8Array(Math.ceil(cols / 8)).fill(255), { raw: true }),
          [cols, -cols].slice(0, rows), Int32Array, `${format} ${cols} all ones`);
        m.free();
      }
      // 40000 active indices (the sparse kernel sums in int16 lanes, 16383 columns at a time)
      const rows = 70, cols = 3;
      const t = new Int8Array(rows * cols).fill(1);
      const m = tl.PackedMatrix.fromTrits(t, [rows, cols], { format });
      const idx = new Uint32Array(40000).map((_, i) => i % cols);
      assertSameInts(m.matmulSparse(idx, { raw: true }), new Int32Array(rows).fill(40000), Int32Array, `${format} long list`);
      m.free();
    }
  });

  test(`${name}: products are batch-major and bits past cols are ignored`, () => {
    // t = [[1, 0, -1, ...], [0, 1, 1, ...]] over 10 columns, scales [2, -1]
    const cols = 10;
    const t = new Int8Array(2 * cols);
    t[0] = 1, t[2] = -1, t[9] = 1, t[cols + 1] = 1, t[cols + 2] = 1, t[cols + 9] = -1;
    for (const format of FORMATS) {
      const m = tl.PackedMatrix.fromTrits(t, [2, cols], { format, scales: [2, -1] });
      // vector 0: columns 0 and 9; vector 1: columns 1 and 2, with every bit past column 9 set
      const bits = [0b00000001, 0b00000010, 0b00000110, 0b11111100];
      assertSameInts(m.matmulBinary(bits, { raw: true }), [2, -1, -1, 2], Int32Array, `${format} binary`);
      assertSameFloats(m.matmulBinary(bits), [4, 1, -2, -2], `${format} binary out`);
      assertSameInts(m.matmulSparse([[0, 9], [1, 2]], { raw: true }), [2, -1, -1, 2], Int32Array, `${format} sparse`);
      m.free();
    }
  });

  // -------------------------------------------------------------------------------------------
  // fromWeights and quantizeActivations
  // -------------------------------------------------------------------------------------------

  test(`${name}: fromWeights gives the trits and scales of ternarySigns / ternarySignsPerRow`, () => {
    const rng = xorshift(31);
    // [700, 100] and [2, 70000] cross the 65536-weight bands fromWeights quantizes at a time
    for (const [rows, cols] of [...SHAPES, [700, 100], [2, 70000]]) {
      const w = randomFloats(rows * cols, rng, 2 ** (below(rng, 10) - 5));
      const signs = tl.ternarySigns(w);
      const perRow = tl.ternarySignsPerRow(w, [rows, cols]);
      for (const format of FORMATS) {
        const what = `${format} [${rows}, ${cols}]`;
        const m = tl.PackedMatrix.fromWeights(w, [rows, cols], { format });
        assertSameInts(m.trits(), signs.trits, Int8Array, `${what}: per tensor trits`);
        assertSameFloats(m.scales(), new Float32Array(rows).fill(signs.alpha), `${what}: per tensor scales`);
        assertSameInts(m.bytes(), jsPack(format, signs.trits, rows, cols), Uint8Array, `${what}: bytes`);
        const r = tl.PackedMatrix.fromWeights(w, [rows, cols], { format, perRow: true });
        assertSameInts(r.trits(), perRow.trits, Int8Array, `${what}: per row trits`);
        assertSameFloats(r.scales(), perRow.alphas, `${what}: per row scales`);
        m.free(), r.free();
      }
    }
    // defaults: i2, per tensor; plain arrays are converted to float32
    const w = [0.3, -1.2, 0.05, 2, -0.6, 0.9];
    const m = tl.PackedMatrix.fromWeights(w, [2, 3]);
    assert.equal(m.format, 'i2');
    assertSameInts(m.trits(), tl.ternarySigns(w).trits, Int8Array, 'defaults');
    m.free();
  });

  test(`${name}: quantizeActivations is the BitNet b1.58 quantizer, ties to even`, () => {
    const rng = xorshift(41);
    for (const cols of [1, 2, 3, 7, 16, 33, 100, 1000]) {
      for (const batch of [1, 4]) {
        for (const kind of ['uniform', 'ties', 'tiny', 'zeros', 'huge']) {
          let x = randomFloats(batch * cols, rng, kind === 'tiny' ? 1e-6 : kind === 'huge' ? 1e30 : 4);
          if (kind === 'zeros') x = new Float32Array(batch * cols);
          if (kind === 'ties') {
            // max |x| = 127 makes s = 1, so every half-integer is a tie
            x = Float32Array.from({ length: batch * cols }, () => (below(rng, 509) - 254) / 2);
            for (let b = 0; b < batch; b++) x[b * cols + below(rng, cols)] = below(rng, 2) ? 127 : -127;
          }
          const what = `${kind} cols ${cols} batch ${batch}`;
          const got = tl.quantizeActivations(x, cols);
          const want = refQuantize(x, cols);
          assertSameInts(got.values, want.values, Int8Array, `${what}: values`);
          assertSameFloats(got.scales, want.scales, `${what}: scales`);
        }
      }
    }
    for (const [cols, batch] of [[50, 1], [200, 3]]) {
      const { x, ties } = nearTies(cols, batch, rng);
      assert.ok(ties > (cols - 1) * batch * 0.5, `${ties} float32 ties`);
      const got = tl.quantizeActivations(x, cols);
      const want = refQuantize(x, cols);
      assertSameInts(got.values, want.values, Int8Array, `float32 ties, cols ${cols}`);
      assertSameFloats(got.scales, want.scales, `float32 ties, cols ${cols}: scales`);
    }
    const ties = tl.quantizeActivations([127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5], 8);
    assert.deepEqual([...ties.values], [127, 0, 2, 2, 0, -2, -2, 126]);
    assert.deepEqual([...ties.scales], [1]);
  });

  // -------------------------------------------------------------------------------------------
  // Errors
  // -------------------------------------------------------------------------------------------

  test(`${name}: every misuse is a TilelliError with its code and a message that says what was wrong`, () => {
    const P = tl.PackedMatrix;
    const t = Int8Array.from([1, -1, 0, 0, 1, 1, -1, 0, -1, 1]);
    const good = P.fromTrits(t, [2, 5], { scales: [0.5, 2] });
    const expected = refInt8(t, [0.5, 2], 2, 5, [1, 2, 3, 4, 5], 1).out;
    const stillWorks = () => {
      assertSameFloats(good.matmulInt8([1, 2, 3, 4, 5]), expected, 'after an error');
      const m = P.fromTrits(t, [2, 5], { format: 'tq1' });
      assertSameInts(m.trits(), t, Int8Array, 'a new matrix after an error');
      m.free();
    };
    const cases = [];
    const expect = (code, re, fn) => cases.push([code, re, fn]);

    // wrong format name
    for (const bad of ['i3', 'I2', '', 2, null]) {
      const re = /format must be 'i2', 'tq1' or 'bitplane'/;
      expect('INVALID_ARGUMENT', re, () => P.fromWeights([1, 2], [1, 2], { format: bad }));
      expect('INVALID_ARGUMENT', re, () => P.fromTrits(t, [2, 5], { format: bad }));
      expect('INVALID_ARGUMENT', re, () => P.fromPacked(new Uint8Array(32), [2, 5], { format: bad }));
      expect('INVALID_ARGUMENT', re, () => tl.pack(t, [2, 5], bad));
      expect('INVALID_ARGUMENT', re, () => tl.unpack(new Uint8Array(32), [2, 5], bad));
      expect('INVALID_ARGUMENT', re, () => tl.packedSize([2, 5], bad));
    }
    // bad shape
    for (const shape of [[0, 10], [10, 0], [10], [1, 2, 5], [-2, -5], [2.5, 4], '2,5', undefined, [2, NaN]]) {
      const re = /shape must be \[rows, cols\] with positive integers/;
      expect('INVALID_ARGUMENT', re, () => P.fromTrits(t, shape));
      expect('INVALID_ARGUMENT', re, () => P.fromWeights([1, 2], shape));
      expect('INVALID_ARGUMENT', re, () => P.fromPacked(new Uint8Array(16), shape));
      expect('INVALID_ARGUMENT', re, () => tl.pack(t, shape));
      expect('INVALID_ARGUMENT', re, () => tl.unpack(new Uint8Array(16), shape));
      expect('INVALID_ARGUMENT', re, () => tl.packedSize(shape));
    }
    expect('OVERFLOW', /shape \[1048576, 1048576\]/, () => tl.packedSize([2 ** 20, 2 ** 20]));
    expect('SIZE_MISMATCH', /trits has 10 values, shape \[2, 10\] needs 20/, () => P.fromTrits(t, [2, 10]));
    expect('SIZE_MISMATCH', /trits has 10 values, shape \[3, 3\] needs 9/, () => tl.pack(t, [3, 3]));
    expect('SIZE_MISMATCH', /w has 3 values, shape \[2, 2\] needs 4/, () => P.fromWeights([1, 2, 3], [2, 2]));
    // trits that are no trit
    for (const [bad, format] of [[2, 'i2'], [-2, 'tq1'], [127, 'bitplane'], [-128, 'i2']]) {
      const u = t.slice();
      u[7] = bad;
      const re = new RegExp(`a trit is not -1, 0 or \\+1 \\(trits\\[7\\] is ${bad}\\)`);
      expect('INVALID_TRIT', re, () => P.fromTrits(u, [2, 5], { format }));
      expect('INVALID_TRIT', re, () => tl.pack([...u], [2, 5], format));
    }
    expect('INVALID_ARGUMENT', /trits\[1\] is 0.5/, () => tl.pack([1, 0.5], [1, 2]));
    expect('INVALID_ARGUMENT', /trits\[0\] is 300/, () => P.fromTrits([300], [1, 1]));
    expect('INVALID_ARGUMENT', /Int8Array/, () => P.fromTrits(new Int16Array(10), [2, 5]));
    // invalid packed bytes
    const invalid = [];
    const i2 = tl.pack(t, [2, 5], 'i2');
    invalid.push(['i2', Object.assign(i2.slice(), { 0: i2[0] | 3 }), 'code 3']);
    invalid.push(['i2', Object.assign(i2.slice(), { 17: 0x56 }), 'padding code 2 (weight 32 of row 1)']);
    invalid.push(['i2', Object.assign(i2.slice(), { 31: 0x15 }), 'padding code 0 (weight 63 of row 1)']);
    const tq1 = tl.pack(t, [2, 5], 'tq1');
    invalid.push(['tq1', Object.assign(tq1.slice(), { 3: 0x14 }), 'byte 0x14']);
    invalid.push(['tq1', Object.assign(tq1.slice(), { 20: 0x01 }), 'byte 0x01']);
    invalid.push(['tq1', Object.assign(tq1.slice(), { 15: 0x81 }), 'padding digit 4 = +1']);
    invalid.push(['tq1', Object.assign(tq1.slice(), { 6: 0x2b }), 'padding digit 0 = -1 (weight 6 of 5)']);
    const bp = tl.pack(t, [2, 5], 'bitplane');
    invalid.push(['bitplane', Object.assign(bp.slice(), { 16: bp[16] | 1 }), 'bit 0 in both planes']);
    invalid.push(['bitplane', Object.assign(bp.slice(), { 0: bp[0] | 0x20 }), 'padding bit 5 (+ plane)']);
    invalid.push(['bitplane', Object.assign(bp.slice(), { 63: 0x80 }), 'padding bit 127 (- plane, row 1)']);
    for (const [format, bytes, why] of invalid) {
      assert.equal(jsUnpack(format, bytes, 2, 5), null, `the doc says ${format} ${why} is invalid`);
      const re = /the packed bytes are not valid for their format/;
      expect('INVALID_FORMAT', re, () => tl.unpack(bytes, [2, 5], format));
      expect('INVALID_FORMAT', re, () => P.fromPacked(bytes, [2, 5], { format, scales: [1, 2] }));
    }
    // lengths and counts
    expect('SIZE_MISMATCH', /i2 bytes for \[2, 5\] are 32, got 31/, () => P.fromPacked(i2.subarray(1), [2, 5]));
    expect('SIZE_MISMATCH', /tq1 bytes for \[2, 5\] are 32, got 48/, () => P.fromPacked(new Uint8Array(48).fill(0x80), [2, 5], { format: 'tq1' }));
    expect('SIZE_MISMATCH', /bitplane bytes for \[1, 5\] are 32, got 16/, () => tl.unpack(new Uint8Array(16), [1, 5], 'bitplane'));
    expect('SIZE_MISMATCH', /scales has 3 values; give 1 or one per row \(2\)/, () => P.fromTrits(t, [2, 5], { scales: [1, 2, 3] }));
    expect('SIZE_MISMATCH', /scales has 0 values/, () => P.fromPacked(i2, [2, 5], { scales: [] }));
    expect('SIZE_MISMATCH', /bits has 0 values, not a positive multiple of 1/, () => good.matmulBinary([]));
    const wide = P.fromTrits(new Int8Array(20), [1, 20]);
    expect('SIZE_MISMATCH', /bits has 4 values, not a positive multiple of 3/, () => wide.matmulBinary([1, 2, 3, 4]));
    expect('SIZE_MISMATCH', /values has 7 values, not a positive multiple of 5/, () => good.matmulInt8(new Int8Array(7)));
    expect('SIZE_MISMATCH', /values has 0 values/, () => good.matmulFloat([]));
    expect('SIZE_MISMATCH', /values has 11 values, not a positive multiple of 5/, () => good.matmulFloat(new Float32Array(11)));
    expect('SIZE_MISMATCH', /2 vectors but 1 scales/, () => good.matmulInt8(new Int8Array(10), { scales: [1] }));
    expect('SIZE_MISMATCH', /x has 3 values, not a positive multiple of 2/, () => tl.quantizeActivations([1, 2, 3], 2));
    expect('INVALID_ARGUMENT', /cols must be a positive integer/, () => tl.quantizeActivations([1, 2], 0));
    expect('INVALID_ARGUMENT', /cols must be a positive integer/, () => tl.quantizeActivations([1, 2], 1.5));
    // sparse indices
    expect('SIZE_MISMATCH', /index 5 \(list 0, position 1\) is not below cols = 5/, () => good.matmulSparse([0, 5]));
    expect('SIZE_MISMATCH', /index 9 \(list 1, position 2\) is not below cols = 5/, () => good.matmulSparse([[0], [1, 2, 9]]));
    expect('SIZE_MISMATCH', /index 4294967295/, () => good.matmulSparse(Uint32Array.of(0xffffffff)));
    expect('INVALID_ARGUMENT', /indices\[0\] is -1/, () => good.matmulSparse([-1]));
    // NaN and infinities
    for (const bad of [NaN, Infinity, -Infinity]) {
      const w = [0.5, -1, 2, bad, 0, 1];
      const re = new RegExp(`the input holds a NaN or an infinity \\(w\\[3\\] is ${bad}\\)`);
      expect('NON_FINITE', re, () => P.fromWeights(w, [2, 3]));
      expect('NON_FINITE', re, () => P.fromWeights(w, [2, 3], { perRow: true, format: 'bitplane' }));
      expect('NON_FINITE', /NaN or an infinity/, () => good.matmulFloat([1, 2, bad, 4, 5]));
      expect('NON_FINITE', new RegExp(`x\\[1\\] is ${bad}`), () => tl.quantizeActivations([1, bad, 3, 4], 2));
      expect('NON_FINITE', new RegExp(`scales\\[1\\] is ${bad}`), () => P.fromTrits(t, [2, 5], { scales: [1, bad] }));
      expect('NON_FINITE', new RegExp(`scales\\[0\\] is ${bad}`), () => P.fromPacked(i2, [2, 5], { scales: bad }));
      expect('INVALID_ALPHA', /scale must be finite/, () => good.matmulInt8([1, 2, 3, 4, 5], { scales: [bad] }));
    }
    expect('INVALID_ALPHA', /scale must be finite/, () => good.matmulInt8([1, 2, 3, 4, 5], { scales: [0] }));
    // argument types
    expect('INVALID_ARGUMENT', /values\[4\] is 200, not a valid Int8Array value/, () => good.matmulInt8([1, 2, 3, 4, 200]));
    expect('INVALID_ARGUMENT', /options must be an object/, () => good.matmulBinary([1], 'raw'));
    expect('INVALID_ARGUMENT', /options must be an object/, () => P.fromTrits(t, [2, 5], 'i2'));
    expect('INVALID_ARGUMENT', /bits must be a Uint8Array/, () => good.matmulBinary(new Int8Array(1)));
    expect('INVALID_ARGUMENT', /Float32Array/, () => good.matmulFloat('1,2,3,4,5'));
    // use after free
    const gone = P.fromTrits(t, [2, 5]);
    gone.free();
    for (const use of [
      () => gone.bytes(), () => gone.scales(), () => gone.trits(), () => gone.matmulBinary([1]),
      () => gone.matmulSparse([0]), () => gone.matmulInt8([1, 2, 3, 4, 5]), () => gone.matmulFloat([1, 2, 3, 4, 5]),
    ]) expect('FREED', /PackedMatrix\.\w+: the matrix was freed/, use);

    for (const [code, re, fn] of cases) {
      throwsCode(fn, code, re);
      stillWorks();
    }
    assert.ok(cases.length > 150, `${cases.length} cases`);
    wide.free(), good.free();
  });

  test(`${name}: free() releases, a second free() is a no-op, freed tells, Symbol.dispose frees`, async () => {
    const m = tl.PackedMatrix.fromWeights([1, -2, 0.1, 3], [2, 2]);
    assert.equal(m.freed, false);
    m.free();
    assert.equal(m.freed, true);
    m.free(); // no-op
    assert.equal(m.freed, true);
    throwsCode(() => m.trits(), 'FREED', /PackedMatrix.trits: the matrix was freed/);
    assert.deepEqual([m.rows, m.cols, m.format, m.byteLength], [2, 2, 'i2', 32], 'the shape stays readable');

    assert.equal(typeof Symbol.dispose, 'symbol');
    const d = tl.PackedMatrix.fromTrits([1, 0, -1], [1, 3], { format: 'bitplane' });
    d[Symbol.dispose]();
    assert.equal(d.freed, true);
    d[Symbol.dispose]();
    d.free();
    throwsCode(() => d.matmulBinary([7]), 'FREED');

    // free really returns the memory: in 4 MiB, a 256 KiB matrix (from 1 MiB of trits) can be
    // made 30 times over only if each is freed (the FinalizationRegistry cannot run inside
    // these synchronous loops)
    const small = await init({ simd: tl.simd, maxMemory: 4 * 1024 * 1024 });
    const t = new Int8Array(1024 * 1024);
    for (let i = 0; i < 30; i++) {
      const big = small.PackedMatrix.fromTrits(t, [1024, 1024]);
      assert.equal(big.byteLength, 256 * 1024);
      big[i % 2 ? 'free' : Symbol.dispose]();
    }
    const kept = [];
    throwsCode(() => {
      for (let i = 0; i < 30; i++) kept.push(small.PackedMatrix.fromTrits(t, [1024, 1024]));
    }, 'OUT_OF_MEMORY');
    assert.ok(kept.length < 30, 'without free() the memory runs out');
    for (const k of kept) k.free();
    small.PackedMatrix.fromTrits(t, [1024, 1024]).free();
  });
}

// ---------------------------------------------------------------------------------------------
// Across builds, and across memory growth
// ---------------------------------------------------------------------------------------------

test('the SIMD and scalar builds agree bit for bit', () => {
  const rng = xorshift(51);
  const { simd, scalar } = builds;
  for (const [rows, cols] of SHAPES) {
    for (const format of FORMATS) {
      const what = `${format} [${rows}, ${cols}]`;
      const w = randomFloats(rows * cols, rng);
      const perRow = below(rng, 2) === 1;
      const a = simd.PackedMatrix.fromWeights(w, [rows, cols], { format, perRow });
      const b = scalar.PackedMatrix.fromWeights(w, [rows, cols], { format, perRow });
      assertSameInts(a.bytes(), b.bytes(), Uint8Array, `${what}: bytes`);
      assertSameFloats(a.scales(), b.scales(), `${what}: scales`);
      const batch = [1, 2, 3, 7, 40][below(rng, 5)];
      const bits = randomBytes(batch * Math.ceil(cols / 8), rng);
      const lists = randomLists(cols, batch, rng);
      const x = randomFloats(batch * cols, rng, 5);
      const q = simd.quantizeActivations(x, cols);
      const q2 = scalar.quantizeActivations(x, cols);
      assertSameInts(q.values, q2.values, Int8Array, `${what}: quantized values`);
      assertSameFloats(q.scales, q2.scales, `${what}: quantized scales`);
      for (const raw of [true, false]) {
        const same = raw ? (p, r, s) => assertSameInts(p, r, Int32Array, s) : assertSameFloats;
        same(a.matmulBinary(bits, { raw }), b.matmulBinary(bits, { raw }), `${what}: binary raw=${raw}`);
        same(a.matmulSparse(lists, { raw }), b.matmulSparse(lists, { raw }), `${what}: sparse raw=${raw}`);
        same(a.matmulInt8(q.values, { raw, scales: q.scales }), b.matmulInt8(q.values, { raw, scales: q.scales }),
          `${what}: int8 raw=${raw}`);
      }
      const fa = a.matmulFloat(x);
      assertSameFloats(fa, b.matmulFloat(x), `${what}: float`);
      assertFloatClose(fa, refFloat(b.trits(), b.scales(), rows, cols, x, batch), `${what}: float vs float64`);
      const x1 = x.subarray(0, cols);
      assertSameFloats(a.matmulFloat(x1), b.matmulFloat(x1), `${what}: float, batch 1`);
      a.free(), b.free();
    }
  }
});

test('matrices keep working after the wasm memory grows', async () => {
  for (const simd of [true, false]) {
    const tl = await init({ simd }); // a fresh instance: 1 MiB of memory to start with
    const rng = xorshift(61);
    const [rows, cols] = [70, 100];
    const made = FORMATS.map((format) => {
      const t = randomTrits(rows * cols, rng);
      const scales = randomScales(rows, rng);
      return { t, scales, m: tl.PackedMatrix.fromTrits(t, [rows, cols], { format, scales }) };
    });
    const bits = randomBytes(2 * Math.ceil(cols / 8), rng);
    const x = randomInt8(2 * cols, rng);
    const xf = randomFloats(2 * cols, rng);
    const before = made.map(({ m }) => [m.bytes(), m.matmulBinary(bits), m.matmulInt8(x), m.matmulFloat(xf)]);
    // 8M floats in, 8M int8 out: tens of MiB, far past the initial memory
    const big = tl.quantizeActivations(randomFloats(8_000_000, rng), 1000);
    assert.equal(big.values.length, 8_000_000);
    const huge = tl.PackedMatrix.fromWeights(randomFloats(4_000_000, rng), [2000, 2000], { format: 'tq1' });
    made.forEach(({ t, scales, m }, i) => {
      const what = `simd=${simd} ${m.format}`;
      const [bytes, bin, i8, fl] = before[i];
      assertSameInts(m.bytes(), bytes, Uint8Array, `${what}: bytes`);
      assertSameInts(m.trits(), t, Int8Array, `${what}: trits`);
      assertSameFloats(m.scales(), scales, `${what}: scales`);
      assertSameFloats(m.matmulBinary(bits), bin, `${what}: binary`);
      assertSameFloats(m.matmulInt8(x), i8, `${what}: int8`);
      assertSameFloats(m.matmulFloat(xf), fl, `${what}: float`);
      // the sparse kernel's column-major copy is first built now, after the growth
      const lists = randomLists(cols, 2, rng);
      assertSameFloats(m.matmulSparse(lists), refSparse(t, scales, rows, cols, lists).out, `${what}: sparse`);
      m.free();
    });
    assert.equal(huge.trits().length, 4_000_000);
    huge.free();
  }
});

test('dimensions past 2^30 - 1 elements are OVERFLOW before they reach the 32-bit core, and activation scales must be > 0', async () => {
  const tl = await init();
  for (const shape of [[2 ** 32 + 1, 1], [1, 2 ** 32 + 1], [2 ** 16, 2 ** 16]]) {
    assert.throws(() => tl.packedSize(shape), (e) => e instanceof TilelliError && e.code === 'OVERFLOW');
    assert.throws(() => tl.PackedMatrix.fromPacked(new Uint8Array(16).fill(0x55), shape),
      (e) => e instanceof TilelliError && e.code === 'OVERFLOW');
  }
  const m = tl.PackedMatrix.fromWeights([1, 2, 3, 4], [2, 2]);
  for (const s of [-2, 0, 1e-46, Infinity]) {
    assert.throws(() => m.matmulInt8([3, 4], { scales: [s] }),
      (e) => e instanceof TilelliError && e.code === 'INVALID_ALPHA' && /scales\[0\]/.test(e.message));
  }
  assert.throws(() => m.matmulFloat([1, NaN]), (e) => e.code === 'NON_FINITE' && /values\[1\] is NaN/.test(e.message));
  assert.equal(m.matmulInt8([3, 4], { scales: [2] }).length, 2);
  m.free();
});
