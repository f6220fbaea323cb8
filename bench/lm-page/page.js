// page.js — bench/lm.mjs's measurement in Chromium (bench/lm.mjs --browser, bench/lm-browser.mjs
// bundles this with esbuild, the "browser" condition, and serves it). For each model of the query
// (a packed file under models/, made in Node), LanguageModel.fromURL, then for int8 and float
// activations, rounds of: reset, a 64-token prefill, `tokens` single decode steps, timed apart;
// medians over the rounds of `budget` ms. Beside it the page measures its own wasm read bandwidth
// (build/bench-kernels.wasm, bench/bandwidth.c, served as bench-kernels.wasm) over a buffer of the
// bytes one decoded token reads. The result lands on window.benchResult.
import { init } from 'tilelli';

const q = new URLSearchParams(location.search);
const out = document.getElementById('out');
const log = (line) => { out.textContent += `\n${line}`; console.log(line); };
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

/** Median GB/s of one read pass over `bytes` (1 and 4 streams, the faster), or { error }. */
async function bandwidth(bytes) {
  let module;
  try {
    module = await WebAssembly.compileStreaming(fetch('./bench-kernels.wasm'));
  } catch (e) {
    return { error: `bench-kernels.wasm: ${e.message}` };
  }
  const imports = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.kind === 'function') (imports[imp.module] ??= {})[imp.name] = () => {};
  }
  const k = (await WebAssembly.instantiate(module, imports)).exports;
  k._initialize?.();
  const p = k.malloc(bytes) >>> 0;
  if (!p) return { error: `could not allocate ${bytes} bytes` };
  const buf = new Uint8Array(k.memory.buffer, p, bytes);
  for (let i = 0; i < bytes; i++) buf[i] = (i * 131 + 7) & 255;
  let best = null;
  for (const streams of [1, 4]) {
    let passes = 1, dt = 0;
    while (dt < 5 && passes < (1 << 20)) {
      passes *= 2;
      const a = performance.now();
      k.bench_read_sum(p, bytes, passes, streams);
      dt = performance.now() - a;
    }
    const t = [];
    for (let r = 0; r < 15; r++) {
      const a = performance.now();
      k.bench_read_sum(p, bytes, passes, streams);
      t.push((performance.now() - a) / passes);
    }
    const gbps = bytes / median(t) / 1e6;
    if (!best || gbps > best.gbps) best = { gbps, streams };
  }
  k.free(p);
  return best;
}

async function main() {
  const tl = await init({ url: new URL(`./dist/tilelli-${q.get('build') || 'relaxed'}.wasm`, location.href) });
  const tokens = Number(q.get('tokens') || 64), budget = Number(q.get('budget') || 3000);
  const rows = [];
  for (const name of q.get('models').split(',')) {
    const t0 = performance.now();
    const lm = await tl.LanguageModel.fromURL(`./models/${name}.safetensors`, { context: 256 });
    const loadMs = performance.now() - t0;
    const c = lm.config;
    const perToken = Number(q.get(`perToken.${name}`)); // bench/lm.mjs's sizes()
    const bw = await bandwidth(Math.min(perToken, 256 * 1024 * 1024));
    const steps = Math.min(tokens, lm.context - 64);
    for (const activations of ['int8', 'float']) {
      lm.setActivations(activations);
      const prefill = [], decode = [];
      const start = performance.now();
      while (performance.now() - start < budget || prefill.length < 3) {
        lm.reset();
        const ids = Array.from({ length: 64 }, (_, i) => (i * 7 + 3) % c.vocab_size);
        const a = performance.now();
        lm.logits(ids);
        prefill.push(64 / ((performance.now() - a) / 1000));
        const b = performance.now();
        for (let i = 0; i < steps; i++) lm.logits([(i * 13) % c.vocab_size]);
        decode.push(steps / ((performance.now() - b) / 1000));
        await new Promise((r) => setTimeout(r, 0));
      }
      const row = { name, activations, embedding: c.tilelli_embedding ?? 'float32', layers: c.num_hidden_layers, hidden: c.hidden_size, vocab: c.vocab_size, perToken, loadMs,
        prefill: median(prefill), decode: median(decode), rounds: prefill.length, bandwidth: bw };
      rows.push(row);
      log(`${name} ${activations}: prefill ${row.prefill.toFixed(0)} tok/s, decode ${row.decode.toFixed(1)} tok/s (${row.rounds} rounds)`);
    }
    lm.free();
  }
  return { build: tl.build, version: tl.version, rows, crossOriginIsolated };
}

main().then((r) => { window.benchResult = { ok: true, ...r }; }, (e) => {
  log(`FAILED: ${e?.stack ?? e}`);
  window.benchResult = { ok: false, error: String(e?.stack ?? e) };
});
