// main.js — the demo page (bundled by scripts/demo.mjs into build/demo/app/app.js).
//
// Loads the SIMD128 build of tilelli (the scalar one where SIMD128 is missing), the MNIST digits
// (data/digits.bin) and the model trained at build time (models/default.tlm), then wires the five
// panels: Train (train-panel.js), Draw (draw-panel.js), Pack (pack-panel.js), Kernels
// (kernels-panel.js) and Generate (generate-panel.js: a character language model in a worker).
// The current MNIST model is shared: training replaces it at each epoch end, Draw runs it, Pack
// packs it.
//
// window.demo is what the browser test (test/runtimes/demo.test.js) reads: states, counters, the
// last classification, and predictTest() to compare the page's predictions with Node's.
import { init, simdSupported } from 'tilelli';

import { counters } from './charts.js';
import { decodeDigits, inputs } from './digits.js';
import { drawPanel } from './draw-panel.js';
import { generatePanel } from './generate-panel.js';
import { kernelsPanel } from './kernels-panel.js';
import { packPanel } from './pack-panel.js';
import { trainPanel } from './train-panel.js';

const QUANTIZER_NAMES = {
  per_tensor: 'AbsMean per tensor', per_row: 'AbsMean per row', lsq: 'LSQ', lsq_paper: 'LSQ', none: 'float32',
};

const demo = { ready: false, counters, errors: [] };
window.demo = demo;

/** A file of the site, relative to the page. */
const siteUrl = (path) => new URL(path, document.baseURI).href;

async function fetchBytes(path) {
  const response = await fetch(siteUrl(path));
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

function percent(v, digits = 1) {
  return `${(v * 100).toFixed(digits)}%`;
}

async function main() {
  addEventListener('unhandledrejection', (e) => console.error('unhandled rejection:', e.reason));
  const simd = simdSupported();
  const wasm = siteUrl(`app/tilelli-${simd ? 'simd' : 'scalar'}.wasm`);
  const [tl, digitBytes, defaultModel] = await Promise.all([init({ url: wasm }), fetchBytes('data/digits.bin'), fetchBytes('models/default.tlm')]);
  const data = decodeDigits(digitBytes);
  const testX = inputs(data.test);

  const listeners = [];
  const app = {
    tl, simd, data, testX, siteUrl, wasm,
    scalarWasm: siteUrl('app/tilelli-scalar.wasm'),
    relaxedWasm: siteUrl('app/tilelli-relaxed.wasm'),
    workerUrl: siteUrl('app/train-worker.js'),
    current: null,
    percent,
    quantizerName: (q) => QUANTIZER_NAMES[q] ?? q,
    onModel(fn) { listeners.push(fn); if (app.current) fn(app.current); },
    /**
     * Make `bytes` (a packed model file) the current model: loaded with tl.Model twice, with
     * float and with int8 activations, and its test accuracy both ways. `about(model)` says where
     * it came from.
     */
    setModel(bytes, about) {
      const model = tl.Model.load(bytes);
      const int8 = tl.Model.load(bytes, { activations: 'int8' });
      const accuracy = accuracyOf(model.predict(testX));
      const int8Accuracy = accuracyOf(int8.predict(testX));
      const previous = app.current;
      about = about(model);
      app.current = { bytes, model, int8, accuracy, int8Accuracy, serial: (previous?.serial ?? 0) + 1, ...about };
      previous?.model.free();
      previous?.int8.free();
      demo.model = { source: about.source, quantizer: about.quantizer, step: about.step, accuracy, int8Accuracy, bytes: bytes.length, serial: app.current.serial };
      for (const fn of listeners) fn(app.current);
    },
  };
  const accuracyOf = (predicted) => predicted.reduce((n, p, i) => n + (p === data.test.labels[i]), 0) / predicted.length;

  document.getElementById('runtime-line').textContent =
    `Running tilelli ${tl.version}, WebAssembly ${tl.simd ? 'SIMD128' : 'scalar'} build${crossOriginIsolated ? '' : ' (timers coarse: the page is not cross-origin isolated)'}; ` +
    `${data.train.count.toLocaleString('en-US')} training and ${data.test.count.toLocaleString('en-US')} test digits loaded. Nothing leaves this tab.`;

  app.setModel(defaultModel, ({ metadata: meta }) => ({
    source: 'built-in',
    quantizer: meta.quantizer ?? 'per_tensor',
    step: Number(meta.steps),
    label: `built-in: trained by <code>npm run demo</code> in Node (${app.quantizerName(meta.quantizer ?? 'per_tensor')}, ${meta.epochs ?? '?'} epochs)`,
  }));

  demo.train = trainPanel(app);
  demo.draw = drawPanel(app);
  demo.pack = packPanel(app);
  demo.bench = kernelsPanel(app);
  demo.generate = generatePanel(app);

  /** Predictions of the current model on test digits [from, to): tl.Model and the int8 path. */
  demo.predictTest = (from, to) => {
    const x = inputs(data.test, from, to);
    return {
      labels: Array.from(data.test.labels.subarray(from, to)),
      model: Array.from(app.current.model.predict(x)),
      int8: Array.from(app.current.int8.predict(x)),
    };
  };
  demo.testCount = data.test.count;
  demo.ready = true;
  document.body.dataset.ready = 'true';
}

main().catch((e) => {
  demo.failed = `${e?.name}: ${e?.message}`;
  console.error('the demo failed to start:', e);
  const line = document.getElementById('runtime-line');
  line.textContent = `The demo could not start: ${e?.message ?? e}`;
  line.style.color = '#b00020';
});
