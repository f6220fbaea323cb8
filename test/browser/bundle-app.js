// bundle-app.js — an app as the README's "Bundled apps" section tells a user to write it: tilelli
// imported by name, init({ url }) once with the wasm copied next to the bundle, and startTraining
// with no worker and no init option (the worker is tilelli/worker-entry.js bundled beside the app
// as worker-entry.js; it gets the wasm URL from the init above). test/runtimes/bundle.test.js
// bundles it with esbuild and reads window.bundleReport.
import { init, simdSupported, startTraining } from 'tilelli';

async function main() {
  const tl = await init({ url: new URL(simdSupported() ? 'tilelli-simd.wasm' : 'tilelli-scalar.wasm', import.meta.url) });
  // two classes: the sign of the first input
  const n = 256, x = new Float32Array(n * 4), labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 4; j++) x[i * 4 + j] = Math.sin(i * 12.9898 + j * 78.233) * 2;
    labels[i] = x[i * 4] > 0 ? 1 : 0;
  }
  const test = { x: x.slice(), labels: labels.slice() };
  const kept = { x: x.slice(), labels: labels.slice() }; // startTraining transfers what it is given
  const job = startTraining({
    network: { widths: [4, 16, 2], quantizer: 'per_tensor', seed: 1 },
    optimizer: { type: 'adam', lr: 1e-2 },
    data: { x, labels }, test, epochs: 20, batchSize: 32, seed: 1,
  });
  const result = await job.done;
  const model = tl.Model.load(await job.export());
  const predictions = model.predict(kept.x);
  let correct = 0;
  for (let i = 0; i < n; i++) correct += predictions[i] === kept.labels[i];
  model.free();
  await job.terminate();
  return { ok: true, accuracy: result.accuracy, modelAccuracy: correct / n, steps: result.steps };
}

main().then((r) => { window.bundleReport = r; }, (e) => { window.bundleReport = { ok: false, error: String(e?.stack ?? e) }; });
