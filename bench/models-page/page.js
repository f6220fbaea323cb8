// page.js — bench/models-core.mjs in Chromium. bench/models.mjs --browser bundles this with esbuild
// (the "browser" conditions, as an app would) and serves it with: dist/tilelli-*.wasm, onnxruntime-web's
// ort-wasm-simd-threaded.{mjs,wasm} in ort/, the MNIST fixture checkpoint and the test digits. The
// query string gives the timing budget and the networks; the result lands on window.benchResult.
import * as ort from 'onnxruntime-web/wasm'; // the wasm-only build: the same ort-wasm-simd-threaded.wasm as in Node
import { init } from 'tilelli';

import { formatReport, runBench } from '../models-core.mjs';

const out = document.getElementById('out');

async function fetchBytes(path) {
  const r = await fetch(new URL(path, location.href));
  if (!r.ok) throw new Error(`fetching ${path}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

try {
  const q = new URLSearchParams(location.search);
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.simd = true;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
  ort.env.logLevel = 'error';
  const tl = await init({ url: new URL('./dist/tilelli-simd.wasm', location.href) });
  const digits = await fetchBytes('./digits.f32');
  const mnist = {
    checkpoint: await fetchBytes('./mlp.safetensors'),
    x: new Float32Array(digits.buffer, digits.byteOffset, digits.byteLength / 4),
    labels: await fetchBytes('./labels.u8'),
  };
  const networks = q.get('networks') ? q.get('networks').split(',') : undefined;
  const result = await runBench({
    tl, ort, mnist, networks, budgetMs: Number(q.get('budget') || 8000), timing: q.get('timing') !== '0',
    log: (line) => {
      console.log(line);
      out.textContent += `\n${line}`;
    },
  });
  out.textContent += `\n${formatReport(result).join('\n')}`;
  window.benchResult = { ok: true, result, simd: tl.simd, tilelliVersion: tl.version, ortVersion: ort.env.versions?.web };
} catch (e) {
  out.textContent += `\nFAILED: ${e?.stack ?? e}`;
  window.benchResult = { ok: false, error: String(e?.stack ?? e) };
}
