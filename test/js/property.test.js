// property.test.js — random shapes and values (fast-check) through the public API: the SIMD and
// scalar wasm builds agree bit for bit, both agree with the scalar reference (the C reference
// functions, exported from the same module: tl_ref_*), unpack(pack(t)) is t for every format,
// and a plain JS reference of the products agrees exactly.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';
import { init } from 'tilelli';

const simd = await init({ simd: true });
const scalar = await init({ simd: false });
const RUNS = Number(process.env.TILELLI_PROPERTY_RUNS ?? 300);
const FORMATS = ['i2', 'tq1', 'bitplane'];

const bits = (f) => new Uint32Array(f.buffer, f.byteOffset, f.length);

/** Float32 values of every kind the quantizers meet: normal, tiny, huge, denormal, zeros, ties. */
const value = fc.oneof(
  fc.float({ noNaN: true, noDefaultInfinity: true }),
  fc.float({ min: -2, max: 2, noNaN: true }),
  fc.constantFrom(0, -0, 0.5, -0.5, 1.5, -1.5, 1e-40, -1e-40, 3e38, -3e38, 1e-5, 5e-6),
  fc.integer({ min: -3, max: 3 }),
);
const tensor = fc.array(value, { minLength: 1, maxLength: 300 }).map((a) => Float32Array.from(a));

test('quantizers: SIMD = scalar = the C scalar reference, bit for bit, on random tensors', () => {
  fc.assert(fc.property(tensor, fc.double({ min: 0, max: 1, noNaN: true }), (w, band) => {
    const a = simd.ternarySigns(w), b = scalar.ternarySigns(w);
    assert.deepEqual(a, b);
    assert.deepEqual(bits(simd.ternaryValues(w)), bits(scalar.ternaryValues(w)));
    assert.deepEqual(simd.deadzoneStats(w, band), scalar.deadzoneStats(w, band));
    const alpha = Math.max(Math.abs(w[0]), 1e-3);
    assert.deepEqual(bits(simd.ternarizeLsq(w, alpha)), bits(scalar.ternarizeLsq(w, alpha)));
    // the literal reference (division, rint, clamp) gives the same trits
    for (let i = 0; i < w.length; i++) {
      const q = Math.max(-1, Math.min(1, roundHalfEven(Math.fround(w[i] / a.alpha))));
      assert.equal(a.trits[i], q === 0 ? 0 : q, `w[${i}] = ${w[i]}, alpha ${a.alpha}`);
    }
  }), { numRuns: RUNS });
});

function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const shape = fc.tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 300 }));
const matrixCase = shape.chain(([rows, cols]) => fc.record({
  rows: fc.constant(rows), cols: fc.constant(cols),
  trits: fc.array(fc.integer({ min: -1, max: 1 }), { minLength: rows * cols, maxLength: rows * cols }),
  format: fc.constantFrom(...FORMATS),
  batch: fc.integer({ min: 1, max: 4 }),
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
}));

test('formats and kernels: unpack(pack(t)) = t, products equal a plain JS reference and across builds', () => {
  fc.assert(fc.property(matrixCase, ({ rows, cols, trits, format, batch, seed }) => {
    const t = Int8Array.from(trits);
    const packed = simd.pack(t, [rows, cols], format);
    assert.deepEqual(scalar.pack(t, [rows, cols], format), packed);
    assert.deepEqual(simd.unpack(packed, [rows, cols], format), t);
    let s = seed;
    const next = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
    const x8 = Int8Array.from({ length: batch * cols }, () => (next() % 256) - 128);
    const xb = Uint8Array.from({ length: batch * Math.ceil(cols / 8) }, () => next() & 255);
    const lists = Array.from({ length: batch }, () => Array.from({ length: next() % 6 }, () => next() % cols));
    const scales = Float32Array.from({ length: rows }, () => (next() % 1000) / 500 + 0.01);
    const ms = simd.PackedMatrix.fromTrits(t, [rows, cols], { format, scales });
    const mc = scalar.PackedMatrix.fromTrits(t, [rows, cols], { format, scales });
    try {
      const i8 = ms.matmulInt8(x8, { raw: true });
      assert.deepEqual(mc.matmulInt8(x8, { raw: true }), i8);
      const bin = ms.matmulBinary(xb, { raw: true });
      assert.deepEqual(mc.matmulBinary(xb, { raw: true }), bin);
      const sp = ms.matmulSparse(lists, { raw: true });
      assert.deepEqual(mc.matmulSparse(lists, { raw: true }), sp);
      const xf = Float32Array.from(x8, (v) => v / 7);
      assert.deepEqual(bits(mc.matmulFloat(xf)), bits(ms.matmulFloat(xf)));
      const per = Math.ceil(cols / 8);
      for (let b = 0; b < batch; b++) {
        for (let r = 0; r < rows; r++) {
          let a8 = 0, ab = 0, as = 0;
          for (let c = 0; c < cols; c++) {
            const w = t[r * cols + c];
            a8 += w * x8[b * cols + c];
            ab += (xb[b * per + (c >> 3)] >> (c & 7)) & 1 ? w : 0;
          }
          for (const c of lists[b]) as += t[r * cols + c];
          assert.equal(i8[b * rows + r], a8);
          assert.equal(bin[b * rows + r], ab);
          assert.equal(sp[b * rows + r], as);
        }
      }
    } finally {
      ms.free();
      mc.free();
    }
  }), { numRuns: RUNS });
});

test('100,000 calls of each quantizer, model run and checkpoint open, and 20,000 matrix, model and training cycles leave wasm memory and the JS heap flat', { timeout: 180_000 }, async () => {
  const tl = await init();
  const w = Float32Array.from({ length: 96 }, (_, i) => Math.sin(i));
  const calls = [
    () => tl.absmeanScale(w), () => tl.ternarySigns(w), () => tl.ternaryValues(w), () => tl.deadzoneStats(w),
    () => tl.ternarizeLsq(w, 0.3), () => tl.absmeanScalePerRow(w, [8, 12]), () => tl.ternarySignsPerRow(w, [8, 12]),
    () => tl.ternaryValuesPerRow(w, [8, 12]),
    () => { try { tl.ternarySigns([1, NaN]); } catch { /* an error path too */ } },
  ];
  assert.equal(typeof globalThis.gc, 'function', 'run the tests with node --expose-gc --test (scripts/test.sh does)');
  const heap = () => { globalThis.gc(); return process.memoryUsage().heapUsed; };
  for (const call of calls) call(); // warm
  const wasm0 = tl.memoryStats().wasmBytes, heap0 = heap();
  for (const call of calls) {
    for (let i = 0; i < 100_000; i++) call();
    // one lost allocation per call would leave >= 100,000 blocks: the library holds none
    assert.equal(tl.memoryStats().liveBlocks, 0);
  }
  const x8 = new Int8Array(12).fill(3);
  for (let i = 0; i < 20_000; i++) {
    const m = tl.PackedMatrix.fromWeights(w, [8, 12], { format: FORMATS[i % 3] });
    m.matmulInt8(x8);
    m.matmulSparse([1, 5]);
    m.free();
  }
  assert.equal(tl.memoryStats().liveBlocks, 0);
  // models, checkpoints and networks: 100,000 runs and opens, 20,000 load/free and train cycles
  const m0 = tl.PackedMatrix.fromWeights(w, [8, 12]);
  const modelBytes = tl.packModel({ input: 12, layers: [{ type: 'linear', matrix: m0, bias: new Float32Array(8) }, { type: 'relu' }] });
  m0.free();
  const model = tl.Model.load(modelBytes);
  const head = new TextEncoder().encode('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}');
  const st = new Uint8Array(8 + head.length + 8);
  new DataView(st.buffer).setBigUint64(0, BigInt(head.length), true);
  st.set(head, 8);
  for (let i = 0; i < 100_000; i++) {
    model.run(w.subarray(0, 12));
    const c = tl.Safetensors.open(st);
    c.read('w');
    c.free();
  }
  model.free();
  const net = tl.Network.create({ widths: [12, 4, 2], seed: 1 });
  for (let i = 0; i < 20_000; i++) {
    tl.Model.load(modelBytes).free();
    net.trainStep(w.subarray(0, 24), { labels: [0, 1] });
  }
  net.free();
  assert.equal(tl.memoryStats().liveBlocks, 0);
  assert.equal(tl.memoryStats().wasmBytes, wasm0, 'the wasm memory did not grow');
  const grown = heap() - heap0;
  // over a million calls: even 40 bytes kept per call would be 40 MB
  assert.ok(grown < 8 * 1024 * 1024, `the JS heap grew by ${grown} bytes`);
});
