// shapes.property.test.js — the network-shape path under random input (fast-check): widths of
// every kind (small, at the limits, past 2^20, past 2^32, non-integers, BigInts, strings) and
// batches of every length through Network.create, forward, trainStep and evaluate. An oracle says
// what each call must do; every refusal is a TilelliError with the expected code (never a
// RangeError, a trap or a wrapped size) and nothing is left allocated.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';
import { init, TilelliError } from 'tilelli';

const tl = await init();
const RUNS = Number(process.env.TILELLI_PROPERTY_RUNS ?? 300);
const MAX_WIDTH = 2 ** 20, MAX_ELEMENTS = 2 ** 30 - 1;

const width = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 1, max: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom(65535, 65536, 65537, MAX_WIDTH, MAX_WIDTH + 1, 2 ** 31, 2 ** 32, 2 ** 32 + 4, 2 ** 53 - 1, 2 ** 53) },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 1.5, NaN, Infinity, -Infinity, '4', 4n, null, undefined, [3]) },
);
const widthsArb = fc.array(width, { minLength: 0, maxLength: 6 });

/** What Network.create must do with these widths: 'ok', or the error code. */
function oracle(widths) {
  if (widths.length < 2) return 'INVALID_ARGUMENT';
  for (const w of widths) {
    if (!Number.isSafeInteger(w) || w <= 0) return 'INVALID_ARGUMENT';
    if (w > MAX_WIDTH) return 'OVERFLOW';
  }
  for (let i = 0; i + 1 < widths.length; i++) if (widths[i] * widths[i + 1] > MAX_ELEMENTS) return 'OVERFLOW';
  return 'ok';
}

function codeOf(fn) {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (!(e instanceof TilelliError)) throw new Error(`not a TilelliError: ${e?.constructor?.name}: ${e?.message}`);
    return e.code;
  }
}

test('Network.create / forward / trainStep / evaluate with random widths and batches', () => {
  const baseline = tl.memoryStats().liveBlocks;
  fc.assert(fc.property(widthsArb, fc.integer({ min: 0, max: 5 }), fc.integer({ min: -2, max: 2 }), fc.integer(), fc.boolean(),
    (widths, batch, skew, seed, poison) => {
      const want = oracle(widths);
      let net;
      const got = codeOf(() => { net = tl.Network.create({ widths, seed: Math.abs(seed) }); });
      assert.equal(got, want, `widths ${widths.map(String)}`);
      if (!net) return;
      try {
        assert.deepEqual(net.widths, widths);
        const params = widths.slice(1).reduce((a, w, i) => a + w * widths[i], 0);
        if (params > 1 << 22) return; // built (the sizes are right); too large to run 300 times
        const inn = widths[0], out = widths.at(-1);
        // x of batch vectors, give or take `skew` values: exact multiples run, others are SIZE_MISMATCH
        const len = Math.max(0, batch * inn + (batch > 0 ? skew : 0));
        const x = Float32Array.from({ length: len }, (_, i) => Math.sin(i + seed));
        if (poison && len > 0) x[len >> 1] = NaN;
        const whole = len > 0 && len % inn === 0;
        const n = whole ? len / inn : 0;
        const fwd = codeOf(() => {
          const y = net.forward(x);
          assert.equal(y.length, n * out);
          assert.ok(y.every(Number.isFinite));
        });
        assert.equal(fwd, !whole ? 'SIZE_MISMATCH' : poison ? 'NON_FINITE' : 'ok', `forward of ${len} values, widths ${widths}`);
        const labels = Array.from({ length: n }, (_, i) => (i * 7 + seed) % (out + (skew === 2 ? 1 : 0)) >>> 0);
        const badLabel = labels.some((l) => l >= out);
        const steps = net.steps;
        const step = codeOf(() => assert.ok(Number.isFinite(net.trainStep(x, { labels }))));
        assert.equal(step, !whole ? 'SIZE_MISMATCH' : poison ? 'NON_FINITE' : badLabel ? 'INVALID_ARGUMENT' : 'ok',
          `trainStep of ${len} values, labels ${labels}, widths ${widths}`);
        assert.equal(net.steps, steps + (step === 'ok' ? 1 : 0), 'a refused step changes nothing');
        const ev = codeOf(() => {
          const r = net.evaluate({ x, labels });
          assert.equal(r.count, n);
          assert.ok(r.accuracy >= 0 && r.accuracy <= 1 && Number.isFinite(r.loss));
        });
        assert.equal(ev, !whole ? 'SIZE_MISMATCH' : badLabel ? 'INVALID_ARGUMENT' : poison ? 'NON_FINITE' : 'ok');
        // one label short is always SIZE_MISMATCH when there is a batch
        if (whole) assert.equal(codeOf(() => net.trainStep(x, { labels: labels.slice(1) })), 'SIZE_MISMATCH');
      } finally {
        net.free();
      }
      assert.equal(tl.memoryStats().liveBlocks, baseline, 'nothing left allocated');
    }), { numRuns: RUNS });
});
