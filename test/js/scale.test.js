// scale.test.js — wasm memory past 2 GiB (D2, D3): a fresh instance quantizes and packs a
// 2^29-weight matrix (one 2 GiB block for its float copy), and with a 2.03 GiB block held (a
// checkpoint), everything else lives above 2 GiB: every pointer and size read back must be
// unsigned (the old build threw "RangeError: Start offset -2013314320"). About 5 GB of RSS at
// the peak (a 2.03 GiB JS buffer, reused, and one instance's memory at a time with --expose-gc).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { init } from 'tilelli';

const ROWS = 32768, COLS = 16384; // 2^29 weights
const BIG_COLS = COLS + 256; // 2^29 + 2^23 floats: 2.03 GiB, the size the probe saw fail

const BASE = Float32Array.from({ length: BIG_COLS }, (_, c) => Math.sin(c * 0.37) * (1 + (c % 5)));

/** Fill v as rows x cols, row r = BASE[0..cols) * (1 + r % 7): rows 0, 7, 14, ... are equal. */
function fillRows(v, rows, cols) {
  for (let r = 0; r < rows; r++) {
    const k = 1 + (r % 7), row = v.subarray(r * cols, (r + 1) * cols);
    for (let c = 0; c < cols; c++) row[c] = BASE[c] * k;
  }
}

/**
 * One safetensors file (a single 2 GiB buffer) of a [ROWS, BIG_COLS] F32 tensor "big" and a
 * [3, 4] "fc.weight"; `data` views the tensor's bytes.
 */
function bigCheckpoint() {
  const header = JSON.stringify({
    big: { dtype: 'F32', shape: [ROWS, BIG_COLS], data_offsets: [0, ROWS * BIG_COLS * 4] },
    'fc.weight': { dtype: 'F32', shape: [3, 4], data_offsets: [ROWS * BIG_COLS * 4, ROWS * BIG_COLS * 4 + 48] },
  }).padEnd(256, ' ');
  const start = 8 + header.length;
  const file = new Uint8Array(start + ROWS * BIG_COLS * 4 + 48);
  new DataView(file.buffer).setBigUint64(0, BigInt(header.length), true);
  file.set(new TextEncoder().encode(header), 8);
  new Float32Array(file.buffer, start + ROWS * BIG_COLS * 4, 12).set([1, -1, 0.5, 0, 0.25, 2, -2, 0, 1, 1, -1, -0.5]);
  return { file, start };
}

const meanAbs = (v, n) => {
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.abs(v[i]);
  return s / n;
};

test('past 2 GiB: a fresh instance quantizes a 2^29-weight matrix, and reads every pointer above 2 GiB unsigned', { timeout: 240_000 }, async () => {
  const t0 = performance.now();
  const { file, start } = bigCheckpoint();
  const ms = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

  // D3 + D2: 2^29 weights from a fresh instance: one 2 GiB block for the floats, the matrix after it
  {
    const tl = await init();
    const w = new Float32Array(file.buffer, start, ROWS * COLS);
    fillRows(w, ROWS, COLS);
    console.log(`# filled: ${ms()}`);
    const m = tl.PackedMatrix.fromWeights(w, [ROWS, COLS], { perRow: true });
    const stats = tl.memoryStats();
    console.log(`# fromWeights: ${ms()}`);
    assert.ok(stats.wasmBytes > 2 ** 31, `memory grew past 2 GiB (${stats.wasmBytes})`);
    assert.equal(m.byteLength, ROWS * COLS / 4, 'i2: 4 trits a byte');
    const scales = m.scales(); // its pointer is above the 2 GiB float block
    assert.equal(scales.length, ROWS);
    for (const r of [0, 1, 2, 3, 4, 5, 6, ROWS / 2 + 3, ROWS - 1]) {
      const want = meanAbs(w.subarray(r * COLS, (r + 1) * COLS), COLS);
      assert.ok(Math.abs(scales[r] - want) <= 1e-5 * want, `scale of row ${r}: ${scales[r]}, want ${want}`);
    }
    const bytes = m.bytes();
    assert.equal(bytes.length, ROWS * COLS / 4);
    // row 0 and row 7 hold the same values: the same packed bytes
    assert.deepEqual(bytes.subarray(7 * COLS / 4, 8 * COLS / 4), bytes.subarray(0, COLS / 4));
    // the packed model file of it, loaded and run: output r = scale_r * (trits of row r) . x
    const model = tl.Model.load(tl.packModel({ input: COLS, layers: [{ type: 'linear', matrix: m }] }));
    const x = new Float32Array(COLS);
    x[5] = 1;
    const y = model.run(x);
    const t5 = Math.round(Math.max(-1, Math.min(1, w[5] / scales[0]))); // the trit of row 0, column 5
    assert.notEqual(t5, 0);
    for (const r of [0, 7, 14, ROWS - 1 - ((ROWS - 1) % 7)]) assert.equal(y[r], t5 * scales[r], `output ${r}`);
    model.free(), m.free();
    assert.equal(tl.memoryStats().liveBlocks, 0);
    console.log(`# 2^29 weights quantized, packed, saved, loaded and run from a fresh instance: ${ms()}, wasm memory ${(stats.wasmBytes / 2 ** 30).toFixed(2)} GiB`);
  }
  globalThis.gc?.();

  // D3: one 2.03 GiB block from a fresh instance (the checkpoint's copy), held; D2: every
  // allocation after it is above 2 GiB
  {
    fillRows(new Float32Array(file.buffer, start, ROWS * BIG_COLS), ROWS, BIG_COLS);
    const tl = await init();
    const st = tl.Safetensors.open(file);
    assert.ok(tl.memoryStats().liveBytes >= file.length, 'the checkpoint holds its 2.03 GiB copy');
    assert.deepEqual(st.tensor('big').shape, [ROWS, BIG_COLS]);
    assert.deepEqual(Array.from(st.read('fc.weight')), [1, -1, 0.5, 0, 0.25, 2, -2, 0, 1, 1, -1, -0.5]);
    // a matrix, its scales and bytes, a packed model, a trained network's model, a packed checkpoint
    const m = tl.PackedMatrix.fromTrits([1, 0, -1, 1, 1, -1], [2, 3], { scales: [0.5, 2] });
    assert.deepEqual(Array.from(m.scales()), [0.5, 2]);
    assert.equal(m.bytes().length, tl.packedSize([2, 3]));
    assert.deepEqual(Array.from(m.matmulFloat([1, 2, 3])), [-1, 0]);
    const packed = tl.Model.load(tl.packModel({ input: 3, layers: [{ type: 'linear', matrix: m }] }));
    assert.deepEqual(Array.from(packed.run([1, 2, 3])), [-1, 0]);
    const net = tl.Network.create({ widths: [4, 3], seed: 3 });
    net.trainStep([1, 2, 3, 4], { labels: [1] });
    const fromNet = tl.Model.load(net.toModel());
    assert.equal(fromNet.outputSize, 3);
    const fromCkpt = tl.Model.load(tl.packCheckpoint(st, { input: 4, layers: [{ type: 'linear', weight: 'fc.weight', quantizer: 'per_row' }] }));
    assert.equal(fromCkpt.run([1, 0, 0, 0]).length, 3);
    assert.deepEqual(Array.from(fromCkpt.trits(0).trits), [1, -1, 1, 0, 0, 1, -1, 0, 1, 1, -1, -1]);
    // the checkpoint's own 2^29-weight tensor does not fit twice (float copy + file copy > 4 GiB):
    // a clean OUT_OF_MEMORY, and the instance keeps working
    assert.throws(() => tl.packCheckpoint(st, { input: BIG_COLS, layers: [{ type: 'linear', weight: 'big' }] }), { code: 'OUT_OF_MEMORY' });
    assert.deepEqual(Array.from(packed.run([1, 2, 3])), [-1, 0]);
    for (const o of [packed, fromNet, fromCkpt, net, m, st]) o.free();
    assert.equal(tl.memoryStats().liveBlocks, 0);
    console.log(`# a 2.03 GiB block held by a fresh instance, everything else above 2 GiB: ${ms()}`);
  }
});
