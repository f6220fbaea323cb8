// api.test.js — the JS API's behaviour in both wasm builds: return types, argument handling,
// every error code with its message, recovery after errors and after running out of memory,
// and agreement between the SIMD128 and scalar builds. Numbers against PyTorch are checked in
// fixtures.test.js; the C tests check every build against the scalar reference bit for bit.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

import { init, simdSupported, wasmUrl, TilelliError } from 'tilelli';

import { xorshift } from './util.js';

const builds = { simd: await init({ simd: true }), scalar: await init({ simd: false }) };

function bits(f32) {
  return new Uint32Array(f32.buffer, f32.byteOffset, f32.length);
}


function randomTensor(n, seed, scale = 1) {
  const next = xorshift(seed);
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = ((next() | 0) / 2 ** 31) * scale;
  return w;
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

test('init picks the SIMD build when the runtime validates SIMD128, and simd: false forces scalar', async () => {
  assert.equal(simdSupported(), true); // Node 20 has SIMD128
  assert.equal((await init()).simd, true);
  assert.equal(builds.simd.simd, true);
  assert.equal(builds.scalar.simd, false);
  assert.match(builds.simd.version, /^\d+\.\d+\.\d+$/);
  assert.equal(builds.simd.version, JSON.parse(await readFile(new URL('../../package.json', import.meta.url))).version);
});

test('init also takes a compiled module, bytes or a url', async () => {
  const bytes = await readFile(wasmUrl(false));
  const w = randomTensor(1000, 7);
  const expected = builds.scalar.ternarySigns(w);
  for (const tl of [
    await init({ bytes }),
    await init({ module: await WebAssembly.compile(bytes) }),
    await init({ url: wasmUrl(false) }),
  ]) {
    assert.equal(tl.simd, false);
    assert.deepEqual(tl.ternarySigns(w), expected);
  }
});

test('init rejects bad options with INVALID_ARGUMENT', async () => {
  for (const options of [{ simd: 'yes' }, { maxMemory: 1000 }, { maxMemory: 'big' }, { module: {} }, null]) {
    await assert.rejects(init(options), (e) => e instanceof TilelliError && e.code === 'INVALID_ARGUMENT');
  }
});

for (const [name, tl] of Object.entries(builds)) {
  test(`${name}: the quantizers follow the reference on a hand-checked tensor`, () => {
    // mean |w| = 1 exactly, so w / alpha = w: 0.5 -> 0 and 1.5 -> 2 -> 1 (round half to even, clamp)
    const w = [0.5, -0.5, 1.5, -1.5, 1, -1, 0.25, 2.75];
    assert.equal(tl.absmeanScale(w), 1.125);
    const t = [0.5, -0.5, 1.5, -1.5, 1, -1, 0.5, 1.5]; // mean |t| = 1
    assert.equal(tl.absmeanScale(t), 1);
    const { trits, alpha } = tl.ternarySigns(t);
    assert.ok(trits instanceof Int8Array);
    assert.deepEqual([...trits], [0, 0, 1, -1, 1, -1, 0, 1]);
    assert.equal(alpha, 1);
    const values = tl.ternaryValues(t);
    assert.ok(values instanceof Float32Array);
    assert.deepEqual([...values], [0, -0, 1, -1, 1, -1, 0, 1]);
    assert.ok(Object.is(values[1], -0), 'ternaryValues keeps -0 like PyTorch');
    const lsq = tl.ternarizeLsq(t, 0.4);
    // w / 0.4: 1.25 -> 1, 3.75 -> 1, 2.5 -> 1 (clamped): every element is nonzero
    assert.deepEqual([...lsq], [0.4, -0.4, 0.4, -0.4, 0.4, -0.4, 0.4, 0.4].map(Math.fround));
    const zeroLsq = tl.ternarizeLsq([-0.1, 0.1], 1);
    assert.ok(Object.is(zeroLsq[0], 0), 'ternarizeLsq gives +0 where the reference adds (w - w)');
  });

  test(`${name}: per-row functions use the first axis as rows, for 2-D, 3-D and 4-D shapes`, () => {
    const w = new Float32Array([1, 2, 3, 4, 10, 20, 30, 40]);
    assert.deepEqual([...tl.absmeanScalePerRow(w, [2, 4])], [2.5, 25]);
    assert.deepEqual([...tl.absmeanScalePerRow(w, [2, 2, 2])], [2.5, 25]);
    assert.deepEqual([...tl.absmeanScalePerRow(w, [4, 1, 2, 1])], [1.5, 3.5, 15, 35]);
    assert.deepEqual([...tl.absmeanScalePerRow(w, [1, 8])], [tl.absmeanScale(w)]);
    const { trits, alphas } = tl.ternarySignsPerRow(w, [2, 4]);
    assert.deepEqual([...trits], [0, 1, 1, 1, 0, 1, 1, 1]); // 1/2.5 = 0.4 -> 0
    assert.deepEqual([...alphas], [2.5, 25]);
    assert.deepEqual([...tl.ternaryValuesPerRow(w, [2, 4])], [0, 2.5, 2.5, 2.5, 0, 25, 25, 25]);
    // one column per row: each row is its own scale, so every nonzero trit is +-1
    const col = new Float32Array([3, -2, 0, 5]);
    assert.deepEqual([...tl.ternarySignsPerRow(col, [4, 1]).trits], [1, -1, 0, 1]);
  });

  test(`${name}: deadzoneStats returns the reference's six numbers, band defaulting to 0.1`, () => {
    const w = [0.5, -0.5, 1.5, -1.5, 1, -1, 0.45, 0.0]; // mean |w| = 0.80625
    const s = tl.deadzoneStats(w);
    assert.deepEqual(Object.keys(s), ['alpha', 'fracNeg', 'fracZero', 'fracPos', 'fracBoundary', 'fracZeroInner']);
    assert.equal(s.alpha, Math.fround(6.45 / 8));
    assert.equal(s.fracNeg + s.fracZero + s.fracPos, 1);
    assert.deepEqual(tl.deadzoneStats(w, 0.1), s);
    const wide = tl.deadzoneStats(w, 0.5);
    assert.equal(wide.fracZeroInner, 0, 'band 0.5: nothing is below 0.5 - band = 0');
    const zero = tl.deadzoneStats(w, 0);
    assert.equal(zero.fracBoundary, 0, 'band 0: the strict comparison admits nothing');
  });

  test(`${name}: plain arrays and other numeric typed arrays are converted to float32`, () => {
    const f = new Float32Array([0.1, -0.7, 0.3, 2.2]);
    const expected = tl.ternarySigns(f);
    assert.deepEqual(tl.ternarySigns([0.1, -0.7, 0.3, 2.2]), expected);
    assert.deepEqual(tl.ternarySigns(Float64Array.from([0.1, -0.7, 0.3, 2.2])), expected);
    assert.deepEqual(tl.ternarySigns(new Int8Array([1, -3, 0, 5])), tl.ternarySigns([1, -3, 0, 5]));
  });

  test(`${name}: inputs are never modified`, () => {
    const w = randomTensor(300, 3);
    const copy = w.slice();
    tl.ternaryValues(w), tl.ternarizeLsq(w, 0.3), tl.ternarySignsPerRow(w, [30, 10]), tl.deadzoneStats(w);
    assert.deepEqual(bits(w), bits(copy));
  });

  test(`${name}: every error has a code and a message that says what was wrong`, () => {
    const w = randomTensor(12, 1);
    throwsCode(() => tl.absmeanScale([]), 'EMPTY', /no elements/);
    throwsCode(() => tl.ternarySigns(new Float32Array(0)), 'EMPTY');
    throwsCode(() => tl.ternaryValuesPerRow(new Float32Array(0), [0, 4]), 'EMPTY', /\[0,4\]/);
    for (const bad of [NaN, Infinity, -Infinity]) {
      const x = w.slice();
      x[7] = bad;
      throwsCode(() => tl.absmeanScale(x), 'NON_FINITE', new RegExp(`w\\[7\\] is ${bad}`));
      throwsCode(() => tl.ternarySigns(x), 'NON_FINITE');
      throwsCode(() => tl.ternaryValues(x), 'NON_FINITE');
      throwsCode(() => tl.ternarizeLsq(x, 1), 'NON_FINITE', /w\[7\]/);
      throwsCode(() => tl.deadzoneStats(x), 'NON_FINITE');
      throwsCode(() => tl.ternarySignsPerRow(x, [3, 4]), 'NON_FINITE');
      throwsCode(() => tl.absmeanScalePerRow(x, [3, 4]), 'NON_FINITE');
      throwsCode(() => tl.ternaryValuesPerRow(x, [3, 4]), 'NON_FINITE');
    }
    throwsCode(() => tl.absmeanScalePerRow(w, [12]), 'RANK', /1 dimension/);
    throwsCode(() => tl.ternarySignsPerRow(w, []), 'RANK', /0 dimensions/);
    throwsCode(() => tl.ternaryValuesPerRow(w, [5, 3]), 'SHAPE', /holds 15 elements but w has 12/);
    throwsCode(() => tl.absmeanScalePerRow(w, [-3, -4]), 'SHAPE', /negative/);
    throwsCode(() => tl.absmeanScalePerRow(w, [2 ** 40, 2 ** 40]), 'OVERFLOW');
    throwsCode(() => tl.absmeanScalePerRow(w, [Number.MAX_SAFE_INTEGER, 3]), 'OVERFLOW');
    for (const band of [-0.1, NaN, Infinity, -Infinity]) {
      throwsCode(() => tl.deadzoneStats(w, band), 'INVALID_BAND', new RegExp(`band is ${band}`));
    }
    for (const alpha of [0, -1, NaN, Infinity, 1e-50, 1e39]) {
      throwsCode(() => tl.ternarizeLsq(w, alpha), 'INVALID_ALPHA', /alpha/);
    }
    throwsCode(() => tl.absmeanScale('1,2,3'), 'INVALID_ARGUMENT', /Float32Array/);
    throwsCode(() => tl.absmeanScale(undefined), 'INVALID_ARGUMENT');
    throwsCode(() => tl.absmeanScale([1, '2']), 'INVALID_ARGUMENT', /w\[1\] is string/);
    throwsCode(() => tl.absmeanScale(new BigInt64Array(2)), 'INVALID_ARGUMENT');
    throwsCode(() => tl.absmeanScalePerRow(w, [3.5, 4]), 'INVALID_ARGUMENT', /integers/);
    throwsCode(() => tl.absmeanScalePerRow(w, '3,4'), 'INVALID_ARGUMENT');
    throwsCode(() => tl.deadzoneStats(w, '0.1'), 'INVALID_ARGUMENT', /band must be a number/);
    throwsCode(() => tl.ternarizeLsq(w), 'INVALID_ARGUMENT', /alpha must be a number/);
    // ... and the instance still gives the right answers afterwards
    assert.deepEqual(tl.ternarySigns(w), builds.scalar.ternarySigns(w));
    assert.equal(tl.absmeanScale([1, 2, 3, 4, 5]), 3);
  });
}

test('running out of wasm memory is OUT_OF_MEMORY, and the instance keeps working', async () => {
  const tl = await init({ maxMemory: 4 * 1024 * 1024 });
  const small = randomTensor(1000, 5);
  const expected = tl.ternarySigns(small);
  throwsCode(() => tl.ternaryValues(new Float32Array(1 << 20)), 'OUT_OF_MEMORY', /could not allocate/);
  throwsCode(() => tl.ternarySignsPerRow(new Float32Array(1 << 20), [1024, 1024]), 'OUT_OF_MEMORY');
  assert.deepEqual(tl.ternarySigns(small), expected);
  // the largest tensor that fits still works
  assert.equal(tl.ternarySigns(new Float32Array(200_000).fill(1)).alpha, 1);
});

test('results stay right across wasm memory growth (views are re-made)', async () => {
  const tl = await init();
  const small = randomTensor(777, 9);
  const before = tl.ternaryValues(small);
  const big = randomTensor(6_000_000, 10); // grows the memory past 48 MiB
  const { alpha } = tl.ternarySigns(big);
  assert.equal(alpha, builds.scalar.absmeanScale(big));
  assert.deepEqual(bits(tl.ternaryValues(small)), bits(before));
});

test('the SIMD and scalar builds agree bit for bit on random tensors of many lengths', () => {
  const { simd, scalar } = builds;
  for (const [i, n] of [1, 2, 3, 5, 8, 15, 16, 17, 31, 33, 64, 100, 1000, 4097, 65537].entries()) {
    for (const scale of [1, 1e-38, 1e30]) {
      const w = randomTensor(n, 100 + i, scale);
      assert.equal(simd.absmeanScale(w), scalar.absmeanScale(w));
      assert.deepEqual(simd.ternarySigns(w), scalar.ternarySigns(w));
      assert.deepEqual(bits(simd.ternaryValues(w)), bits(scalar.ternaryValues(w)));
      assert.deepEqual(bits(simd.ternarizeLsq(w, 0.37 * scale || 0.37)), bits(scalar.ternarizeLsq(w, 0.37 * scale || 0.37)));
      for (const band of [0, 0.05, 0.1, 0.25, 0.5]) assert.deepEqual(simd.deadzoneStats(w, band), scalar.deadzoneStats(w, band));
      if (n % 4 === 0) {
        assert.deepEqual(simd.ternarySignsPerRow(w, [4, n / 4]), scalar.ternarySignsPerRow(w, [4, n / 4]));
      }
    }
  }
});

test('the typed example compiled by tsc runs and returns what its declared types say', async () => {
  const compiled = new URL('../../build/types/example.js', import.meta.url);
  try {
    await readFile(compiled);
  } catch {
    execFileSync('npx', ['tsc', '-p', 'test/types'], { cwd: new URL('../..', import.meta.url) });
  }
  const { summary } = await import(compiled.href);
  assert.equal(typeof summary.alpha, 'number');
  assert.ok(summary.rowAlphas instanceof Float32Array && summary.rowAlphas.length === 2);
  assert.ok(summary.values instanceof Float32Array);
  assert.ok(summary.signs.trits instanceof Int8Array && typeof summary.signs.alpha === 'number');
  assert.ok(summary.rowSigns.alphas instanceof Float32Array && summary.rowSigns.alphas.length === 4);
  assert.equal(summary.code, 'EMPTY');
  assert.equal(typeof summary.stats.fracZeroInner, 'number');
  // Network.fromCheckpoint keeps the checkpoint's floats as the shadow weights
  assert.deepEqual(summary.tunedShadow, Array.from(Float32Array.from([1, -1, 0.2, 0.9, -0.7, 0.1, 0.5, -2])));
});
