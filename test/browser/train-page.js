// train-page.js — the training app of the browser training test (test/runtimes/browser-train.test.js
// bundles it with esbuild into <site>/app/train-page.js, next to the worker bundle train-worker.js
// (js/worker-entry.js bundled as its own entry point) and copies of dist/*.wasm). On a subset of the MNIST digits (<site>/digits.json) it trains the
// 784-256-256-10 MLP in a module worker with startTraining, pauses and resumes it, exports the
// model and runs it with tl.Model on the page; a second job is cancelled through an AbortSignal.
// Everything is rendered as text and a loss curve (for the screenshot) and exposed on
// window.trainReport for the test.
//
// Why options.worker: a bundle is one file, so js/worker.js's own
// `new URL('./worker-entry.js', import.meta.url)` would point next to this bundle, where no
// worker-entry.js is (esbuild does not bundle workers). The test bundles js/worker-entry.js as its
// own entry point (app/train-worker.js) and the page says where it is. The wasm: init({ url }) with
// the copy next to the bundles, passed to the worker as options.init.
import { init } from 'tilelli';

import { startTraining } from '../../js/worker.js';

const here = (file) => new URL(`./${file}`, import.meta.url).href;
const WIDTHS = [784, 256, 256, 10];

function show(text) {
  document.getElementById('out').textContent += `${text}\n`;
}

/** The loss of every progress event as a polyline (steps on x, loss on y). */
function plot(events) {
  const svg = document.getElementById('curve');
  const W = 520, H = 160, pad = 24;
  const maxStep = Math.max(...events.map((e) => e.totalSteps));
  const maxLoss = Math.max(...events.map((e) => e.loss));
  const pts = events.map((e) => `${pad + (e.step / maxStep) * (W - 2 * pad)},${H - pad - (e.loss / maxLoss) * (H - 2 * pad)}`);
  const acc = events.map((e) => `${pad + (e.step / maxStep) * (W - 2 * pad)},${H - pad - e.accuracy * (H - 2 * pad)}`);
  svg.innerHTML = `<rect x="0" y="0" width="${W}" height="${H}" fill="#fafafa" stroke="#ccc"/>
    <polyline points="${pts.join(' ')}" fill="none" stroke="#c33" stroke-width="2"/>
    <polyline points="${acc.join(' ')}" fill="none" stroke="#36c" stroke-width="2"/>
    <text x="${pad}" y="14" font-size="11" fill="#c33">loss (max ${maxLoss.toFixed(2)})</text>
    <text x="${W - 150}" y="14" font-size="11" fill="#36c">accuracy (0..1)</text>`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const until = async (pred) => { while (!pred()) await sleep(5); };
const finite = (a) => a.every(Number.isFinite);

async function main() {
  addEventListener('unhandledrejection', (e) => console.error('unhandled rejection:', e.reason));
  const t0 = performance.now();
  const digits = await (await fetch(here('../digits.json'))).json();
  const set = (s) => ({ x: Float32Array.from(s.x), labels: Uint8Array.from(s.labels) });
  const train = set(digits.train), test = set(digits.test);
  const testCopy = { x: test.x.slice(), labels: test.labels.slice() };
  show(`digits: ${train.labels.length} train, ${test.labels.length} test (fetched in ${Math.round(performance.now() - t0)} ms)`);
  const tl = await init({ url: here('tilelli-simd.wasm') });
  const common = {
    worker: here('train-worker.js'),
    init: { url: here('tilelli-simd.wasm') },
    network: { widths: WIDTHS, activation: 'relu', quantizer: 'per_tensor', seed: 1 },
    optimizer: { type: 'adam', lr: 2e-3 },
    schedule: { type: 'cosine', warmupSteps: 5 },
    batchSize: 64,
    seed: 2,
  };

  // 1. Train two epochs; pause and resume on the way.
  const events = [];
  const job = startTraining({
    ...common, data: train, test, epochs: 2, progressEvery: 5,
    onProgress: (e) => {
      events.push(e);
      show(`  epoch ${e.epoch} step ${String(e.step).padStart(3)}/${e.totalSteps}  loss ${e.loss.toFixed(4)}  ` +
        `accuracy ${(e.accuracy * 100).toFixed(1)}% (${e.accuracyOn})  lr ${e.lr.toExponential(2)}  flipped ${(e.flipped * 100).toFixed(2)}%  ` +
        `zeros ${e.layers.map((L) => L.fracZero.toFixed(3)).join('/')}`);
      plot(events);
    },
  });
  const transferred = train.x.byteLength === 0 && train.labels.byteLength === 0 && test.x.byteLength === 0;
  await until(() => events.length >= 2);
  const paused = await job.pause();
  const eventsAtPause = events.length;
  show(`  paused at step ${paused.step}`);
  await sleep(200);
  const whilePaused = await job.evaluate(testCopy);
  const eventsWhilePaused = events.length - eventsAtPause;
  const resumed = await job.resume();
  show(`  resumed at step ${resumed.step} (${eventsWhilePaused} events while paused; accuracy then ${(whilePaused.accuracy * 100).toFixed(1)}%)`);
  const result = await job.done;
  show(`done: ${result.steps} steps, epoch losses ${result.losses.map((l) => l.toFixed(4)).join(', ')}, ` +
    `test accuracy ${(result.accuracy * 100).toFixed(2)}% in ${Math.round(result.ms)} ms`);

  // 2. Export the packed model and run it here, on the page's own instance.
  const evaluated = await job.evaluate();
  const bytes = await job.export({ format: 'i2' });
  const model = tl.Model.load(bytes);
  const predicted = model.predict(testCopy.x);
  const modelAccuracy = predicted.reduce((n, p, i) => n + (p === testCopy.labels[i]), 0) / predicted.length;
  model.free();
  show(`exported model: ${bytes.length} bytes; tl.Model on the page: ${(modelAccuracy * 100).toFixed(2)}%, worker evaluate: ${(evaluated.accuracy * 100).toFixed(2)}%`);
  await job.terminate();

  // 3. A second job, cancelled through its signal mid-epoch.
  const controller = new AbortController();
  const cancelEvents = [];
  const cancelled = startTraining({
    ...common, data: { x: testCopy.x.slice(), labels: testCopy.labels.slice() }, batchSize: 16, epochs: 3, progressEvery: 4,
    signal: controller.signal, onProgress: (e) => cancelEvents.push(e),
  });
  await until(() => cancelEvents.length >= 1);
  controller.abort();
  let cancelError;
  try {
    await cancelled.done;
  } catch (e) {
    cancelError = { name: e.name, isDOMException: e instanceof DOMException };
  }
  const weights = await cancelled.weights();
  show(`cancelled job: ${cancelError?.name} at step ${weights.step} of ${cancelEvents[0].totalSteps}, state ${cancelled.state}; ` +
    `weights ${weights.map((L) => L.shape.join('x')).join(', ')}`);

  return {
    transferred,
    events: events.map(({ layers, ...e }) => ({ ...e, layerCount: layers.length, layerKeys: Object.keys(layers[0]).sort() })),
    pause: { paused: paused.step, resumed: resumed.step, eventsWhilePaused, evaluateStep: whilePaused.step },
    result,
    evaluated,
    modelAccuracy,
    modelBytes: bytes.length,
    cancel: {
      error: cancelError,
      state: cancelled.state,
      step: weights.step,
      totalSteps: cancelEvents[0].totalSteps,
      shapes: weights.map((L) => L.shape),
      finite: weights.every((L) => finite(L.weight) && finite(L.bias)),
    },
    ms: performance.now() - t0,
  };
}

// Only in a page: Node's `node --test` (no arguments) would import every .js file under test/.
if (typeof document !== 'undefined') {
  main().then(
    (report) => {
      document.getElementById('status').textContent = 'done';
      return { ok: true, ...report };
    },
    (e) => {
      document.getElementById('status').textContent = 'failed';
      show(`FAILED: ${e.name}: ${e.message}\n${e.stack}`);
      return { ok: false, error: `${e.name}: ${e.message}\n${e.stack}` };
    },
  ).then((report) => { window.trainReport = report; });
}
