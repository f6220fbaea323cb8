// fixtures.test.js — the JS API, in both wasm builds (SIMD128 and scalar), against golden outputs
// of the PyTorch reference (test/fixtures/quant/, made by test/fixtures/gen_quant.py).
//
// The tolerances are those of test/c/test_fixtures.c (from README.md, "Exactly the reference's numbers"):
//   alpha     relative difference to torch <= 1e-6 (bit-identical ones are counted and reported);
//   trits     exactly torch's when our alpha is bit-identical to torch's; otherwise they may differ
//             only where |w| / alpha_torch is within 4 float32 ulps (relative 4 * 2^-24) of 0.5 or 1.5;
//   values    exactly our trits * our alpha, zeros with the sign bit of w (torch's: the generator
//             asserted it for every case) and of torch's stored zero; bitwise torch's when alpha is
//             bit-identical;
//   LSQ       alpha is given: trits and values bitwise torch's (zeros +0.0);
//   deadzone  alpha as above; fractions exactly torch's when alpha is bit-identical, otherwise each
//             count within the number of elements whose |w| / alpha_torch lies within 1e-6 (relative)
//             of 0.5, 0.5 - band or 0.5 + band.
// One test per build and case; each operation is one check, and a failing test lists every failed
// operation with its first offending element.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { init } from 'tilelli';
import { f32Bits, loadFixtures } from './fixtures.js';

const set = loadFixtures();
const builds = [['simd', await init({ simd: true })], ['scalar', await init({ simd: false })]];

const TIE_TOL = 4 / 16777216;
const relClose = (ours, ref) => Math.abs(ours - ref) <= 1e-6 * Math.abs(ref);
const sameBits = (a, b) => f32Bits(a) === f32Bits(b);
const negative = (x) => x < 0 || Object.is(x, -0);
const hex = (x) => `0x${f32Bits(x).toString(16).padStart(8, '0')}`;
const show = (x) => `${x} (${hex(x)})`;

function nearTie(w, alphaTorch) {
  const x = Math.abs(w) / alphaTorch;
  return Math.abs(x - 0.5) <= TIE_TOL * 0.5 || Math.abs(x - 1.5) <= TIE_TOL * 1.5;
}

/** Disallowed trit differences in [lo, hi); tolerated ones are added to acc.tolerated. */
function compareTrits(w, ours, ref, lo, hi, alphaOurs, alphaTorch, acc) {
  const exact = sameBits(alphaOurs, alphaTorch);
  for (let i = lo; i < hi; i++) {
    if (ours[i] === ref[i]) continue;
    if (ours[i] < -1 || ours[i] > 1 || exact || !nearTie(w[i], alphaTorch)) {
      if (acc.bad++ === 0) {
        acc.first = `first at [${i}]: w=${show(w[i])} trit ${ours[i]}, torch ${ref[i]}; alpha ${show(alphaOurs)}, torch ${show(alphaTorch)}`;
      }
    } else {
      acc.tolerated++;
    }
  }
}

/** Values of [lo, hi) == our trit * our alpha with w's zero sign; torch's bits when alpha is exact. */
function compareValues(w, v, t, ref, lo, hi, alphaOurs, alphaTorch, acc) {
  const exact = sameBits(alphaOurs, alphaTorch);
  for (let i = lo; i < hi; i++) {
    let ok = t[i] === 0 ? v[i] === 0 && negative(v[i]) === negative(w[i]) : sameBits(v[i], t[i] * alphaOurs);
    if (ok && ref) {
      if (exact) ok = sameBits(v[i], ref[i]);
      else if (v[i] === 0 && ref[i] === 0) ok = negative(v[i]) === negative(ref[i]);
    }
    if (!ok && acc.bad++ === 0) {
      acc.first = `first at [${i}]: w=${show(w[i])} value ${show(v[i])} trit ${t[i]}, torch ${ref ? show(ref[i]) : '(not stored)'}; alpha ${show(alphaOurs)}, torch ${show(alphaTorch)}`;
    }
  }
}

const stats = {};
for (const [name] of builds) stats[name] = { checks: 0, failed: 0, alpha: 0, alphaSame: 0, rows: 0, rowsSame: 0 };

function runCase(tl, st, c, d) {
  const failures = [];
  const check = (ok, message) => {
    st.checks++;
    if (!ok) {
      st.failed++;
      failures.push(message());
    }
  };
  const w = d.input;
  const n = c.n;
  const attempt = (fn) => {
    try {
      return { value: fn() };
    } catch (error) {
      return { error };
    }
  };

  // per tensor
  const scale = attempt(() => tl.absmeanScale(w));
  const a = scale.value;
  st.alpha++;
  if (!scale.error && sameBits(a, c.alpha)) st.alphaSame++;
  check(!scale.error && relClose(a, c.alpha),
    () => `absmeanScale: ${scale.error ?? `alpha ${show(a)}, torch ${show(c.alpha)}`}`);

  const signs = attempt(() => tl.ternarySigns(w));
  let trits = null;
  {
    const acc = { bad: 0, tolerated: 0, first: '' };
    if (!signs.error) {
      trits = signs.value.trits;
      compareTrits(w, trits, d.trits, 0, n, signs.value.alpha, c.alpha, acc);
    }
    check(!signs.error && trits instanceof Int8Array && trits.length === n && sameBits(signs.value.alpha, a) && acc.bad === 0,
      () => `ternarySigns: ${signs.error ?? `alpha ${show(signs.value.alpha)} (absmeanScale ${show(a)}), ${acc.bad} trits differ (${acc.tolerated} tolerated near ties) ${acc.first}`}`);
  }

  const values = attempt(() => tl.ternaryValues(w));
  {
    const acc = { bad: 0, first: '' };
    const ok = !values.error && trits && values.value instanceof Float32Array && values.value.length === n;
    if (ok) compareValues(w, values.value, trits, d.values, 0, n, a, c.alpha, acc);
    check(ok && acc.bad === 0,
      () => `ternaryValues: ${values.error ?? `${acc.bad} values wrong (values ${d.values ? 'stored' : 'not stored'}) ${acc.first}`}`);
  }

  // per row
  if (c.shape.length >= 2) {
    const rows = c.rows, cols = n / rows;
    const ra = attempt(() => tl.absmeanScalePerRow(w, c.shape));
    {
      let bad = 0, first = '';
      if (!ra.error) {
        for (let r = 0; r < rows; r++) {
          st.rows++;
          if (sameBits(ra.value[r], d.rowAlphas[r])) st.rowsSame++;
          if (!relClose(ra.value[r], d.rowAlphas[r]) && bad++ === 0) first = `first row ${r}: ${show(ra.value[r])}, torch ${show(d.rowAlphas[r])}`;
        }
      }
      check(!ra.error && ra.value.length === rows && bad === 0,
        () => `absmeanScalePerRow: ${ra.error ?? `${bad} of ${rows} rows off, ${first}`}`);
    }
    const rs = attempt(() => tl.ternarySignsPerRow(w, c.shape));
    let rowTrits = null;
    {
      const acc = { bad: 0, tolerated: 0, first: '' };
      let alphaDiff = 0;
      if (!rs.error && !ra.error) {
        rowTrits = rs.value.trits;
        for (let r = 0; r < rows; r++) {
          if (!sameBits(rs.value.alphas[r], ra.value[r])) alphaDiff++;
          compareTrits(w, rowTrits, d.rowTrits, r * cols, (r + 1) * cols, rs.value.alphas[r], d.rowAlphas[r], acc);
        }
      }
      check(!rs.error && !ra.error && rowTrits.length === n && alphaDiff === 0 && acc.bad === 0,
        () => `ternarySignsPerRow: ${rs.error ?? ra.error ?? `${alphaDiff} row alphas differ from absmeanScalePerRow, ${acc.bad} trits differ (${acc.tolerated} tolerated) ${acc.first}`}`);
    }
    const rv = attempt(() => tl.ternaryValuesPerRow(w, c.shape));
    {
      const acc = { bad: 0, first: '' };
      const ok = !rv.error && rowTrits && rv.value.length === n;
      if (ok) {
        for (let r = 0; r < rows; r++) {
          compareValues(w, rv.value, rowTrits, d.rowValues, r * cols, (r + 1) * cols, ra.value[r], d.rowAlphas[r], acc);
        }
      }
      check(ok && acc.bad === 0, () => `ternaryValuesPerRow: ${rv.error ?? `${acc.bad} values wrong ${acc.first}`}`);
    }
  } else {
    const r = attempt(() => tl.absmeanScalePerRow(w, c.shape));
    check(r.error?.code === 'RANK',
      () => `absmeanScalePerRow on a 1-D tensor: ${r.error ? `code ${r.error.code}` : 'no error'}, want RANK (the reference raises ValueError)`);
  }

  // LSQ with given scales
  for (const q of d.lsq) {
    const out = attempt(() => tl.ternarizeLsq(w, q.alpha));
    let bad = 0, first = '';
    if (!out.error) {
      for (let i = 0; i < n; i++) {
        const ref = q.values ? q.values[i] : q.trits[i] * q.alpha + 0;
        if (!sameBits(out.value[i], ref) && bad++ === 0) {
          first = `first at [${i}]: w=${show(w[i])} value ${show(out.value[i])}, torch ${show(ref)} (trit ${q.trits[i]})`;
        }
      }
    }
    check(!out.error && out.value.length === n && bad === 0,
      () => `ternarizeLsq(alpha=${show(q.alpha)}): ${out.error ?? `${bad} values differ ${first}`}`);
  }

  // deadzone statistics
  for (const dz of c.deadzone) {
    const r = attempt(() => tl.deadzoneStats(w, dz.band));
    if (r.error) {
      check(false, () => `deadzoneStats(band=${dz.band}): ${r.error}`);
      continue;
    }
    const s = r.value;
    const keys = ['Neg', 'Zero', 'Pos', 'Boundary', 'ZeroInner'];
    const counts = keys.map((k) => Math.round(s[`frac${k}`] * n));
    const consistent = keys.every((k, i) => s[`frac${k}`] === counts[i] / n) && counts[0] + counts[1] + counts[2] === n;
    const same = sameBits(s.alpha, dz.alpha) && Math.fround(s.alpha) === s.alpha;
    let ok, slack = 0;
    if (same) {
      ok = keys.every((k) => s[`frac${k}`] === dz[`frac${k}`]);
    } else {
      const targets = [0.5, 0.5 - dz.band, 0.5 + dz.band];
      for (let i = 0; i < n; i++) {
        const x = Math.abs(w[i]) / dz.alpha;
        if (targets.some((t) => Math.abs(x - t) <= 1e-6 * t)) slack++;
      }
      ok = relClose(s.alpha, dz.alpha) && keys.every((k, i) => Math.abs(counts[i] - dz[`n${k}`]) <= slack);
    }
    check(ok && consistent, () => `deadzoneStats(band=${dz.band}): alpha ${show(s.alpha)} torch ${show(dz.alpha)} ` +
      `(${same ? 'bit-identical' : 'differs'}); counts neg/zero/pos/boundary/zero_inner ${counts.join('/')}, ` +
      `torch ${keys.map((k) => dz[`n${k}`]).join('/')} (slack ${slack}); fractions consistent with counts: ${consistent}`);
  }
  return failures;
}

test('the fixtures load: every case, with inputs of the right length', () => {
  assert.ok(set.cases.length > 0);
  assert.match(set.torch ?? '', /^\d+\.\d+/);
  for (const c of set.cases) {
    const d = c.load();
    assert.equal(d.input.length, c.n, c.name);
    assert.equal(d.trits.length, c.n, c.name);
  }
});

for (const [name, tl] of builds) {
  test(`init({ simd: ${name === 'simd'} }) loads the ${name} build`, () => {
    assert.equal(tl.simd, name === 'simd');
  });
  for (const c of set.cases) {
    test(`${name} build matches PyTorch: ${c.name}`, () => {
      const failures = runCase(tl, stats[name], c, c.load());
      assert.deepEqual(failures, [], `${c.name} (${name}):\n  ${failures.join('\n  ')}`);
    });
  }
}

after(() => {
  for (const [name] of builds) {
    const st = stats[name];
    console.log(`fixtures (${name} build, torch ${set.torch}): ${st.checks - st.failed} passed, ${st.failed} failed; ` +
      `alphas bit-identical to torch: per tensor ${st.alphaSame}/${st.alpha}, per row ${st.rowsSame}/${st.rows}`);
  }
});
