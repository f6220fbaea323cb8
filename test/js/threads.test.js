// threads.test.js — init({ threads }) in Node (worker_threads over a shared wasm memory): the default,
// the option's checks, and that every product and a model run give the same bits on 2 (and 3)
// threads as on one thread and as the scalar build, also when several async callers share a model.
// The relaxed threaded build runs in a child Node with the relaxed-SIMD flags.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { init, TilelliError } from 'tilelli';

const RELAXED_FLAGS = ['--experimental-wasm-relaxed-simd', '--no-liftoff'];
const CHILD_FLAGS = spawnSync(process.execPath, [...RELAXED_FLAGS, '-e', '0']).status === 0 ? RELAXED_FLAGS : ['--no-liftoff'];

/** Deterministic values in [-1, 1) */
function floats(n, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

const bits = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

test('init() in Node runs min(4, cores) threads on the threaded build; threads: 1 the single-threaded one', async () => {
  const tl = await init();
  assert.equal(tl.threads, Math.min(4, availableParallelism()));
  const one = await init({ threads: 1 });
  assert.equal(one.threads, 1);
  assert.equal(one.build, tl.build);
  const two = await init({ threads: 2 });
  assert.equal(two.threads, 2);
  // the scalar build has no threaded file: one thread
  assert.equal((await init({ build: 'scalar', threads: 2 })).threads, 1);
});

test('init({ threads }) takes an integer from 1 to 64; anything else is named', async () => {
  for (const bad of [0, -1, 1.5, 65, '2', null, Number.NaN]) {
    await assert.rejects(init({ threads: bad }), (e) => {
      assert.ok(e instanceof TilelliError);
      assert.equal(e.code, 'INVALID_ARGUMENT');
      assert.match(e.message, /init: threads must be an integer from 1 to 64/);
      return true;
    }, String(bad));
  }
});

/**
 * Every kernel on every format, shapes past the split threshold (rows x weights x batch >= 2^20) and
 * small ones, batches that reach every path: equal to tl1's bits.
 */
function sameProducts(tl, tl1, label) {
  const shapes = [[1030, 1100], [4099, 260], [67, 129], [1, 4096]];
  const batches = [1, 3, 8, 20, 40];
  let checked = 0;
  for (const format of tl.formats ?? ['i2', 'tq1', 'bitplane']) {
    for (const [rows, cols] of shapes) {
      const w = floats(rows * cols, rows + cols);
      const a = tl.PackedMatrix.fromWeights(w, [rows, cols], { format });
      const b = tl1.PackedMatrix.fromWeights(w, [rows, cols], { format });
      for (const batch of batches) {
        if (rows * cols * batch > 1 << 24) continue;
        const xf = floats(batch * cols, batch * 7 + 1).map((v) => v * 3);
        const xi = Int8Array.from(floats(batch * cols, batch + 5), (v) => Math.round(v * 127.5 - 0.5));
        const xb = Uint8Array.from(floats(batch * Math.ceil(cols / 8), batch + 9), (v) => (v + 1) * 127.9);
        const what = `${label} ${format} ${rows}x${cols} batch ${batch}`;
        assert.ok(bits(a.matmulFloat(xf)).equals(bits(b.matmulFloat(xf))), `float ${what}`);
        assert.ok(bits(a.matmulInt8(xi, { raw: true })).equals(bits(b.matmulInt8(xi, { raw: true }))), `int8 ${what}`);
        assert.ok(bits(a.matmulBinary(xb)).equals(bits(b.matmulBinary(xb))), `binary ${what}`);
        checked++;
      }
      a.free();
      b.free();
    }
  }
  return checked;
}

test('every product gives the bits of one thread and of the scalar build, on 2 and 3 threads', async () => {
  const scalar = await init({ build: 'scalar' });
  const one = await init({ threads: 1 });
  for (const n of [2, 3]) {
    const tl = await init({ threads: n });
    assert.equal(tl.threads, n);
    assert.ok(sameProducts(tl, one, `${n} threads vs 1`) > 40);
    assert.ok(sameProducts(tl, scalar, `${n} threads vs scalar`) > 40);
  }
});

/** A model with wide layers (so that its products are split), both activation precisions. */
function wideModel(tl) {
  const m1 = tl.PackedMatrix.fromWeights(floats(1024 * 512, 3), [1024, 512], { format: 'i2' });
  const m2 = tl.PackedMatrix.fromWeights(floats(768 * 1024, 4), [768, 1024], { format: 'tq1' });
  const m3 = tl.PackedMatrix.fromWeights(floats(10 * 768, 5), [10, 768], { format: 'i2' });
  const bytes = tl.packModel({
    input: 512,
    layers: [
      { type: 'linear', matrix: m1, bias: floats(1024, 6) }, { type: 'relu' },
      { type: 'bitlinear', matrix: m2, normWeight: floats(1024, 7).map((v) => v + 1.5), eps: 1e-5 }, { type: 'gelu' },
      { type: 'linear', matrix: m3 },
    ],
  });
  for (const m of [m1, m2, m3]) m.free();
  return bytes;
}

test('a model runs to the same bits on 2 threads as on one, int8 and float activations', async () => {
  const one = await init({ threads: 1 });
  const two = await init({ threads: 2 });
  const bytes = wideModel(one);
  for (const activations of ['float', 'int8']) {
    const a = one.Model.load(bytes);
    const b = two.Model.load(bytes);
    a.setActivations(activations);
    b.setActivations(activations);
    for (const batch of [1, 5, 16]) {
      const x = floats(batch * 512, batch);
      assert.ok(bits(a.run(x)).equals(bits(b.run(x))), `${activations} batch ${batch}`);
    }
    a.free();
    b.free();
  }
});

test('several async callers share a model on 2 threads: each gets the outputs of its own input', async () => {
  const two = await init({ threads: 2 });
  const model = two.Model.load(wideModel(two));
  const inputs = Array.from({ length: 6 }, (_, i) => floats((1 + (i % 3) * 4) * 512, 100 + i));
  const want = inputs.map((x) => model.run(x));
  const caller = async (i) => {
    const outs = [];
    for (let k = 0; k < 5; k++) {
      await new Promise((resolve) => setTimeout(resolve, (i * 3 + k) % 4)); // interleave the callers
      outs.push(model.run(inputs[i]));
    }
    return outs;
  };
  const got = await Promise.all(inputs.map((_, i) => caller(i)));
  got.forEach((outs, i) => outs.forEach((o, k) => assert.ok(bits(o).equals(bits(want[i])), `caller ${i} run ${k}`)));
  model.free();
});

test('the relaxed threaded build (child Node with the relaxed-SIMD flags) gives the bits of the scalar build', () => {
  const script = `
    import { init } from 'tilelli';
    const tl = await init({ threads: 3 });
    const scalar = await init({ build: 'scalar' });
    const fl = (n, s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 0.9);
    let n = 0;
    for (const format of ['i2', 'tq1', 'bitplane']) for (const [rows, cols] of [[1030, 1100], [4099, 260]]) {
      const w = fl(rows * cols, rows);
      const a = tl.PackedMatrix.fromWeights(w, [rows, cols], { format }), b = scalar.PackedMatrix.fromWeights(w, [rows, cols], { format });
      for (const batch of [1, 3, 12, 20]) {
        const xf = fl(batch * cols, batch), xi = Int8Array.from(xf, (v) => Math.round(v * 127));
        const eq = (p, q) => Buffer.compare(Buffer.from(p.buffer), Buffer.from(q.buffer)) === 0;
        if (!eq(a.matmulFloat(xf), b.matmulFloat(xf)) || !eq(a.matmulInt8(xi, { raw: true }), b.matmulInt8(xi, { raw: true }))) {
          console.log('DIFF', format, rows, cols, batch);
          process.exit(1);
        }
        n++;
      }
    }
    console.log(JSON.stringify({ build: tl.build, threads: tl.threads, n }));`;
  const r = spawnSync(process.execPath, [...CHILD_FLAGS, '--input-type=module', '-e', script],
    { cwd: fileURLToPath(new URL('../..', import.meta.url)), encoding: 'utf8', timeout: 120000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()), { build: 'relaxed', threads: 3, n: 24 });
});

test('training steps on 2 threads leave the bits of one thread: weights, biases, gradients, losses', async () => {
  const one = await init({ threads: 1 });
  const two = await init({ threads: 2 });
  const widths = [300, 256, 130, 10]; // 64 x 256 x 300 products: split; odd and even output counts
  const batch = 64;
  const x = floats(batch * widths[0], 41);
  const labels = Uint32Array.from({ length: batch }, (_, i) => (i * 7) % 10);
  const nets = [one, two].map((tl) => tl.Network.create({ widths, seed: 5 }));
  const losses = nets.map(() => []);
  for (let step = 0; step < 3; step++) nets.forEach((net, i) => losses[i].push(net.trainStep(x, { labels })));
  assert.deepEqual(losses[0], losses[1]);
  for (let k = 0; k < widths.length - 1; k++) {
    const [a, b] = nets.map((net) => net.getLayer(k));
    assert.ok(bits(a.weight).equals(bits(b.weight)) && bits(a.bias).equals(bits(b.bias)), `layer ${k} weights`);
    const [ga, gb] = nets.map((net) => net.getGrads(k));
    assert.ok(bits(ga.weight).equals(bits(gb.weight)), `layer ${k} gradients`);
  }
  assert.ok(bits(nets[0].forward(x)).equals(bits(nets[1].forward(x))), 'forward');
  for (const net of nets) net.free();
});
