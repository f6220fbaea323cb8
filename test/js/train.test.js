// train.test.js — the training core against PyTorch autograd (test/fixtures/train: the reference
// module's STE, every quantizer, optimizer, loss, activation and schedule): same initial
// parameters and batches give the same loss, gradients within 1e-4 and parameters within 1e-5
// (relative to the largest entry of each tensor, as the fixtures' README advises), exact zeros
// where PyTorch's gradient is exactly zero. Both wasm builds. Then the API's own behaviour.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { init, TilelliError } from 'tilelli';

const dir = fileURLToPath(new URL('../fixtures/train/', import.meta.url));
const cases = (await readdir(dir)).filter((f) => f.endsWith('.safetensors')).map((f) => f.replace('.safetensors', '')).sort();

/** max |got - want| / max |want| over a tensor, and whether every exact zero of want is kept. */
function compare(got, want) {
  let diff = 0, scale = 0, zeros = true;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
    if (want[i] === 0 && got[i] !== 0) zeros = false;
  }
  return { rel: scale === 0 ? diff : diff / scale, zeros };
}

function configure(tl, c) {
  const net = tl.Network.create({ widths: c.widths ?? [20, 16, 12, 5], activation: c.activation, quantizer: c.quantizer });
  net.setLoss(c.loss);
  const o = c.optimizer;
  net.setOptimizer({
    type: o.type, lr: o.lr, beta1: o.betas?.[0] ?? 0.9, beta2: o.betas?.[1] ?? 0.999, eps: o.eps ?? 1e-8,
    weightDecay: o.weight_decay ?? 0, momentum: o.momentum ?? 0,
  });
  const s = c.schedule;
  if (s.type === 'cosine') net.setSchedule({ type: 'cosine', warmupSteps: 0, totalSteps: s.T_max ?? c.steps });
  else if (s.type === 'warmup_cosine') net.setSchedule({ type: 'cosine', warmupSteps: s.warmup, totalSteps: s.total });
  else assert.equal(s.type, 'constant');
  if (c.tequila_lambda) net.setTequila(c.tequila_lambda);
  return net;
}

for (const simd of [true, false]) {
  const tl = await init({ simd });
  for (const name of cases) {
    test(`${simd ? 'simd' : 'scalar'}: ${name} matches PyTorch (loss, logits, gradients, parameters after the step)`, async () => {
      const st = tl.Safetensors.open(await readFile(join(dir, `${name}.safetensors`)));
      const c = JSON.parse(st.metadata.case);
      const has = (n) => st.tensors.some((t) => t.name === n);
      const net = configure(tl, c);
      const lsq = c.quantizer === 'lsq' || c.quantizer === 'lsq_paper';
      for (let k = 0; k < 3; k++) {
        net.setLayer(k, { weight: st.read(`L${k + 1}.weight`), bias: st.read(`L${k + 1}.bias`), alpha: lsq ? st.read(`L${k + 1}.alpha`)[0] : 1 });
      }
      const x = st.read('x'), steps = c.steps, per = 8 * 20;
      const labels = has('labels') ? st.read('labels') : undefined, targets = has('targets') ? st.read('targets') : undefined;
      const batchOf = (s) => (labels ? { labels: labels.subarray(s * 8, s * 8 + 8) } : { targets });
      const losses = st.read('loss');

      // the first step's forward, loss and gradients
      const logits = net.forward(x.subarray(0, per));
      assert.ok(compare(logits, st.read('logits')).rel <= 1e-5, `${name}: logits`);
      const loss = net.gradients(x.subarray(0, per), batchOf(0));
      assert.ok(Math.abs(loss - losses[0]) <= 1e-5 * Math.abs(losses[0]), `${name}: loss ${loss} vs ${losses[0]}`);
      for (let k = 0; k < 3; k++) {
        const g = net.getGrads(k);
        for (const [what, got] of [['weight', g.weight], ['bias', g.bias]]) {
          const r = compare(got, st.read(`grad.L${k + 1}.${what}`));
          assert.ok(r.rel <= 1e-4, `${name}: grad L${k + 1}.${what} ${r.rel}`);
          assert.ok(r.zeros, `${name}: grad L${k + 1}.${what} keeps PyTorch's exact zeros`);
        }
        if (lsq) {
          const want = st.read(`grad.L${k + 1}.alpha`)[0];
          assert.ok(want === 0 ? g.alpha === 0 : Math.abs(g.alpha - want) <= 1e-4 * Math.abs(want), `${name}: grad L${k + 1}.alpha ${g.alpha} vs ${want}`);
        }
      }

      // the steps
      for (let s = 0; s < steps; s++) {
        const l = net.trainStep(x.subarray(s * per, (s + 1) * per), batchOf(s));
        assert.ok(Math.abs(l - losses[s]) <= 1e-4 * Math.abs(losses[s]), `${name}: step ${s} loss ${l} vs ${losses[s]}`);
      }
      assert.equal(net.steps, steps);
      for (let k = 0; k < 3; k++) {
        const p = net.getLayer(k);
        for (const [what, got] of [['weight', p.weight], ['bias', p.bias]]) {
          const r = compare(got, st.read(`after.L${k + 1}.${what}`));
          assert.ok(r.rel <= 1e-5, `${name}: after L${k + 1}.${what} ${r.rel}`);
        }
        if (lsq) {
          const want = st.read(`after.L${k + 1}.alpha`)[0];
          assert.ok(Math.abs(p.alpha - want) <= 1e-5 * Math.abs(want), `${name}: after L${k + 1}.alpha ${p.alpha} vs ${want}`);
        }
        if (has(`after.trits.L${k + 1}`)) {
          assert.deepEqual(Array.from(net.trits(k).trits), Array.from(st.read(`after.trits.L${k + 1}`)), `${name}: trits after the steps`);
        }
      }
      net.free();
      st.free();
    });
  }
}

test('a non-finite loss stops with NON_FINITE and keeps the last good weights', async () => {
  const tl = await init();
  const net = tl.Network.create({ widths: [4, 3, 2], seed: 3 });
  net.setOptimizer({ type: 'sgd', lr: 0.1 });
  net.trainStep([1, 2, 3, 4], { labels: [1] });
  const before = net.getLayer(0);
  assert.throws(() => net.trainStep([1, 2, NaN, 4], { labels: [1] }), (e) => e instanceof TilelliError && e.code === 'NON_FINITE');
  net.setOptimizer({ type: 'sgd', lr: 3e38 }); // an update that overflows
  assert.throws(() => net.trainStep([1e30, 2e30, 3e30, 4e30], { labels: [0] }), (e) => e.code === 'NON_FINITE');
  assert.deepEqual(net.getLayer(0), before, 'nothing was applied');
  assert.equal(net.steps, 0, 'the failed steps are not counted (setOptimizer reset the count too)');
  net.free();
  assert.throws(() => net.forward([1, 2, 3, 4]), (e) => e.code === 'FREED');
});

test('bad configuration is a typed error', async () => {
  const tl = await init();
  const bad = (fn, code) => assert.throws(fn, (e) => e instanceof TilelliError && e.code === code);
  bad(() => tl.Network.create({ widths: [4] }), 'INVALID_ARGUMENT');
  bad(() => tl.Network.create({ widths: [4, 2], quantizer: 'binary' }), 'INVALID_ARGUMENT');
  const net = tl.Network.create({ widths: [4, 2], quantizer: 'lsq' });
  bad(() => net.setOptimizer({ type: 'adam', lr: -1 }), 'INVALID_ARGUMENT');
  bad(() => net.setSchedule({ type: 'cosine', warmupSteps: 10, totalSteps: 5 }), 'INVALID_ARGUMENT');
  bad(() => net.setLayer(0, { weight: new Float32Array(8), bias: new Float32Array(2), alpha: 0 }), 'INVALID_ALPHA');
  bad(() => net.setLayer(1, { weight: new Float32Array(8), bias: new Float32Array(2) }), 'INVALID_ARGUMENT');
  bad(() => net.trainStep([1, 2, 3], { labels: [0] }), 'SIZE_MISMATCH');
  bad(() => net.trainStep([1, 2, 3, 4], { labels: [7] }), 'INVALID_ARGUMENT');
  net.free();
  const float = tl.Network.create({ widths: [4, 2], quantizer: 'none' });
  bad(() => float.setTequila(1e-3), 'INVALID_ARGUMENT');
  // a float32 network packs as its post-training ternarization per tensor
  const fm = tl.Model.load(float.toModel());
  const { weight } = float.getLayer(0);
  assert.deepEqual(fm.trits(0).trits, tl.ternarySigns(weight).trits);
  assert.equal(fm.layers[0].quantizer, 'per_tensor');
  assert.equal(fm.metadata.quantizer, 'none');
  fm.free();
  float.free();
});

test('seeded training is reproducible, and the exported model computes what the network computes', async () => {
  const tl = await init();
  const data = Float32Array.from({ length: 64 * 12 }, (_, i) => Math.sin(i * 0.37));
  const labels = Uint8Array.from({ length: 64 }, (_, i) => i % 3);
  const runs = [0, 1].map(() => {
    const net = tl.Network.create({ widths: [12, 8, 3], quantizer: 'per_row', seed: 11 });
    net.setOptimizer({ type: 'adamw', lr: 5e-3, weightDecay: 0.01 });
    const losses = net.fit({ x: data, labels }, { epochs: 3, batchSize: 16, seed: 5 });
    return { net, losses };
  });
  assert.deepEqual(runs[0].losses, runs[1].losses);
  assert.deepEqual(runs[0].net.getLayer(0), runs[1].net.getLayer(0));
  for (const format of ['i2', 'tq1', 'bitplane']) {
    const model = tl.Model.load(runs[0].net.toModel({ format }));
    const a = model.run(data.subarray(0, 12 * 5)), b = runs[0].net.forward(data.subarray(0, 12 * 5));
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5, `${format}: ${a[i]} vs ${b[i]}`);
    model.free();
  }
  runs.forEach((r) => r.net.free());
});
