// kernels-panel.js — panel 4: one GEMV (an n x n ternary matrix times one vector) in this browser:
// int8 activations x packed trits with each wasm build this browser runs (relaxed SIMD where it
// validates, SIMD128, scalar: one instance each, init({ url })), against the same matrix as float32
// in a plain JavaScript loop. Times are medians of batches of calls; the panel also checks that
// every build gives the same int32 sums.
import { init, relaxedSupported } from 'tilelli';

const $ = (id) => document.getElementById(id);
const BATCHES = 7;
const BATCH_MS = 12;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A seeded xorshift32 stream of floats in [0, 1). */
function random(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

/** Median time per call (µs) over BATCHES batches of about BATCH_MS each, yielding between them. */
async function measure(fn) {
  // warm up: compilation, wasm memory growth, and V8's tier-up from its baseline compiler
  let t0 = performance.now(), calls = 0;
  while (performance.now() - t0 < 40 || calls < 3) { fn(); calls++; }
  t0 = performance.now(), calls = 0;
  while (performance.now() - t0 < 2) { fn(); calls++; }
  const perBatch = Math.max(1, Math.round((calls * BATCH_MS) / Math.max(performance.now() - t0, 0.01)));
  const times = [];
  for (let b = 0; b < BATCHES; b++) {
    await sleep(0);
    t0 = performance.now();
    for (let i = 0; i < perBatch; i++) fn();
    times.push(((performance.now() - t0) * 1000) / perBatch);
  }
  times.sort((a, b) => a - b);
  return { us: times[BATCHES >> 1], calls: perBatch * BATCHES };
}

function floatGemv(W, x, y, n) {
  for (let r = 0; r < n; r++) {
    let s = 0;
    const o = r * n;
    for (let c = 0; c < n; c++) s += W[o + c] * x[c];
    y[r] = s;
  }
  return y;
}

const fmtUs = (us) => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(us < 10 ? 2 : 1)} µs`);
const fmtBytes = (n) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`);

export function kernelsPanel(app) {
  const { tl } = app;
  const ui = { size: $('bench-size'), format: $('bench-format'), run: $('bench-run'), out: $('bench') };
  const state = { runs: 0, running: false, results: null };
  let others; // the relaxed (where supported) and scalar builds' instances, made on the first run

  async function run() {
    if (state.running) return;
    state.running = true;
    ui.run.disabled = true;
    const n = Number(ui.size.value), format = ui.format.value;
    ui.out.innerHTML = `<p class="muted small">Running ${n} × ${n} (${format}) …</p>`;
    const made = [];
    try {
      others ??= {
        relaxed: relaxedSupported() ? await init({ url: app.relaxedWasm }).catch(() => null) : null,
        scalar: await init({ url: app.scalarWasm }),
      };
      await sleep(0);
      const rnd = random(n * 7 + 1);
      const trits = new Int8Array(n * n);
      for (let i = 0; i < trits.length; i++) trits[i] = Math.floor(rnd() * 3) - 1;
      const alpha = 0.02;
      const x = Float32Array.from({ length: n }, () => rnd() * 2 - 1);
      const W = Float32Array.from(trits, (t) => t * alpha); // the same matrix as float32
      const builds = [
        ...(others.relaxed ? [{ id: 'relaxed', name: 'relaxed SIMD', inst: others.relaxed }] : []),
        { id: 'simd', name: 'SIMD128', inst: tl },
        { id: 'scalar', name: 'scalar', inst: others.scalar },
      ];
      for (const b of builds) {
        b.m = b.inst.PackedMatrix.fromTrits(trits, [n, n], { format, scales: alpha });
        made.push(b.m);
      }
      const int8 = (inst, m) => () => {
        const q = inst.quantizeActivations(x, n);
        return m.matmulInt8(q.values, { scales: q.scales });
      };
      const y = new Float32Array(n);
      const rows = [];
      for (const b of builds) {
        rows.push({ id: b.id, label: `trits (${format}) × int8 · WebAssembly ${b.name}`, ...await measure(int8(b.inst, b.m)) });
      }
      rows.push({ id: 'float', label: 'float32 × float32 · plain JavaScript loop', ...await measure(() => floatGemv(W, x, y, n)) });
      const us = (id) => rows.find((r) => r.id === id)?.us;
      // the same int32 sums in every build, and how far the int8 path is from float32
      const q = tl.quantizeActivations(x, n);
      const sums = builds.map((b) => b.m.matmulInt8(q.values, { raw: true }));
      const same = sums.every((s) => s.length === sums[0].length && s.every((v, i) => v === sums[0][i]));
      const mSimd = builds.find((b) => b.id === 'simd').m;
      const yi = int8(tl, mSimd)(), yf = floatGemv(W, x, y, n);
      let err = 0, scale = 0;
      for (let i = 0; i < n; i++) { err = Math.max(err, Math.abs(yi[i] - yf[i])); scale = Math.max(scale, Math.abs(yf[i])); }
      const floatUs = us('float'), slowest = Math.max(...rows.map((r) => r.us));
      for (const r of rows) r.gops = (2 * n * n) / (r.us * 1000);
      state.results = { n, format, rows: rows.map(({ id, us, calls, gops }) => ({ id, us, calls, gops })), sameSums: same, relError: err / (scale || 1) };
      ui.out.innerHTML = '<table><thead><tr><th>kernel</th><th class="t">per call</th><th class="t">vs float32</th></tr></thead><tbody>' +
        rows.map((r) => `<tr class="${r.id}"><td>${r.label}<div class="bar" style="width:${((100 * r.us) / slowest).toFixed(1)}%"></div></td>` +
          `<td class="t">${fmtUs(r.us)}</td>` +
          `<td class="t">${r.id === 'float' ? '1×' : `${(floatUs / r.us).toFixed(1)}× ${floatUs >= r.us ? 'faster' : 'slower'}`}</td></tr>`).join('') +
        '</tbody></table>' +
        `<p class="small">${us('relaxed') ? `Relaxed SIMD is ${(us('simd') / us('relaxed')).toFixed(1)}× the speed of SIMD128; ` : 'This browser runs no relaxed SIMD; '}` +
        `SIMD128 is ${(us('scalar') / us('simd')).toFixed(1)}× the speed of the scalar build. Weights: ${fmtBytes(mSimd.byteLength)} packed (${format}) against ${fmtBytes(n * n * 4)} as float32. ` +
        `${same ? `All ${builds.length} builds give the same int32 sums` : '<b>The builds disagree!</b>'}; the int8 activations move the outputs by at most ${(100 * state.results.relError).toFixed(2)}% of the largest.</p>`;
      state.runs++;
    } catch (e) {
      ui.out.innerHTML = `<p class="small">The benchmark failed: ${e?.message ?? e}</p>`;
      console.error('benchmark failed:', e);
    } finally {
      for (const m of made) m.free();
      state.running = false;
      ui.run.disabled = false;
    }
  }

  ui.run.addEventListener('click', () => { run(); });
  ui.run.disabled = false;
  return state;
}
