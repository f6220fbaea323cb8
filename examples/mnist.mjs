// mnist.mjs — the main job (`npm start`): fine-tune a ternary MLP on the MNIST digits in a worker,
// pack it, run the packed model on the test split, and print accuracy, sizes and latency.
//
//   node examples/mnist.mjs [--epochs 10] [--quantizer per_tensor|per_row|lsq] [--format i2|tq1|bitplane]
//
// The data are the 10,000 digits of the npm package `mnist` (MIT), split as the project does:
// sample i of each digit is a test digit when i % 5 == 0 (2004 test, 7996 train).
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

import { init, startTraining } from '../js/node.js';

const { values: opts } = parseArgs({
  options: {
    epochs: { type: 'string', default: '10' }, quantizer: { type: 'string', default: 'per_tensor' },
    format: { type: 'string', default: 'i2' }, seed: { type: 'string', default: '1' },
  },
});
const epochs = Number(opts.epochs), seed = Number(opts.seed);

function loadDigits() {
  const require = createRequire(import.meta.url);
  const sets = { train: { x: [], labels: [] }, test: { x: [], labels: [] } };
  for (let d = 0; d < 10; d++) {
    const data = require(`mnist/src/digits/${d}.json`).data;
    for (let i = 0; i * 784 < data.length; i++) {
      const set = i % 5 === 0 ? sets.test : sets.train;
      set.x.push(data.slice(i * 784, (i + 1) * 784));
      set.labels.push(d);
    }
  }
  const pack = ({ x, labels }) => ({ x: Float32Array.from(x.flat()), labels: Uint8Array.from(labels) });
  return { train: pack(sets.train), test: pack(sets.test) };
}

const bar = (done, total, width = 28) => {
  const n = Math.round((width * done) / total);
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}]`;
};
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;

const tl = await init();
const { train, test } = loadDigits();
const testCopy = { x: test.x.slice(), labels: test.labels.slice() }; // the worker takes the originals
console.log(`tilelli ${tl.version} (${{ relaxed: 'wasm relaxed SIMD', simd: 'wasm SIMD128', scalar: 'wasm scalar' }[tl.build]}, ${tl.threads} thread${tl.threads > 1 ? 's' : ''}): MNIST, ${train.labels.length} train / ${test.labels.length} test digits`);
console.log(`training a 784-256-256-10 ternary MLP (${opts.quantizer}) for ${epochs} epochs in a worker thread ...`);

const started = performance.now();
const tty = process.stdout.isTTY;
let layers = [];
const job = startTraining({
  network: { widths: [784, 256, 256, 10], activation: 'relu', quantizer: opts.quantizer, seed },
  optimizer: { type: 'adam', lr: 2e-3 },
  schedule: { type: 'cosine' },
  data: train,
  test,
  epochs,
  batchSize: 64,
  seed,
  progressEvery: 25,
  onProgress(p) {
    const line = `epoch ${p.epoch + 1}/${epochs} ${bar(p.step, p.totalSteps)} step ${p.step}/${p.totalSteps} ` +
      `loss ${p.loss.toFixed(4)} lr ${p.lr.toExponential(2)} flipped ${(100 * p.flipped).toFixed(2)}%` +
      (p.epochEnd ? `  test ${(100 * p.accuracy).toFixed(2)}%` : '');
    if (tty) process.stdout.write(`\r${line}`);
    if (p.epochEnd) {
      if (tty) process.stdout.write('\n');
      else console.log(line);
    }
    layers = p.layers;
  },
});
const result = await job.done;
const seconds = (performance.now() - started) / 1000;
console.log(`trained in ${seconds.toFixed(1)} s (${(seconds / epochs).toFixed(2)} s per epoch, worker included); final test accuracy ${(100 * result.accuracy).toFixed(2)}%`);
console.log(`weights within 0.1 of the rounding boundary (deadzone stats) per layer: ${layers.map((s) => `${(100 * s.fracBoundary).toFixed(1)}%`).join(', ')}`);

// Pack in every format; run the chosen one on the test split.
const sizes = {};
let packed;
for (const format of tl.formats) {
  const bytes = await job.export({ format });
  sizes[format] = bytes.length;
  if (format === opts.format) packed = bytes;
}
job.terminate();
const weights = 784 * 256 + 256 * 256 + 256 * 10, biases = 256 + 256 + 10;
const float32 = 4 * (weights + biases);
console.log(`model sizes: float32 ${kib(float32)}; packed ${Object.entries(sizes).map(([f, n]) => `${f} ${kib(n)} (${(float32 / n).toFixed(1)}x smaller)`).join(', ')}`);

// Both activation precisions: float (the float kernel, adds and subtracts) and int8 (each linear
// layer's input quantized per vector, the int8 x ternary kernel), from the same packed bytes.
const models = { float: tl.Model.load(packed) };
const int8 = tl.Model.load(packed, { activations: 'int8' });
if (int8.layers?.every((L) => L.type !== 'linear' || L.activations === 'int8')) models.int8 = int8;
else int8.free(); // a tilelli without int8 linear layers ignores the option

const accuracy = (predictions) => {
  let correct = 0;
  for (let i = 0; i < predictions.length; i++) correct += predictions[i] === testCopy.labels[i];
  return correct / predictions.length;
};
const floatPredictions = models.float.predict(testCopy.x);
console.log(`packed ${opts.format} model on the ${floatPredictions.length} test digits: accuracy ${(100 * accuracy(floatPredictions)).toFixed(2)}%`);
if (models.int8) {
  const p = models.int8.predict(testCopy.x);
  let same = 0;
  for (let i = 0; i < p.length; i++) same += p[i] === floatPredictions[i];
  console.log(`with int8 activations: accuracy ${(100 * accuracy(p)).toFixed(2)}%, same prediction as float activations for ${(100 * same / p.length).toFixed(2)}% of the digits`);
} else {
  console.log('int8 activations: this tilelli build has no int8 linear layers (Model.load(bytes, { activations: "int8" })); float only');
}

// Latency: one digit at a time, and batches of 64; the median of interleaved samples (float, int8,
// float, ...), each sample a few calls. run(x, { out }) writes into a buffer made once.
const runner = (model, batch) => {
  const x = testCopy.x.subarray(0, batch * 784);
  const out = new Float32Array(batch * 10);
  return model.run(x, { out }) === out ? () => model.run(x, { out }) : () => model.run(x);
};
const latency = (batch, calls, samples) => {
  const runs = Object.entries(models).map(([k, m]) => [k, runner(m, batch), []]);
  for (let s = 0; s < samples; s++) {
    for (const [, run, t] of runs) {
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) run();
      t.push((performance.now() - t0) / calls);
    }
  }
  return Object.fromEntries(runs.map(([k, , t]) => [k, t.sort((a, b) => a - b)[t.length >> 1]]));
};
latency(1, 10, 3); // warm up
const one = latency(1, 20, 40);
const batch = latency(64, 1, 40);
const us = (ms) => `${(ms * 1000).toFixed(1)} us`;
for (const k of Object.keys(models)) {
  console.log(`inference latency, ${k} activations (median): ${us(one[k])} per digit one at a time; ` +
    `${us(batch[k] / 64)} per digit in batches of 64 (${us(batch[k])} per batch)`);
}
for (const m of Object.values(models)) m.free();
