// train.mjs — STE training of the 784-256-256-10 MNIST MLP in wasm (tl.Network) beside PyTorch 1.13
// running the reference's STE (bench/train_torch.py), per quantizer, in one run.
//
//   node bench/train.mjs [--epochs 10] [--quick] [--quantizers per_tensor,per_row,lsq,none]
//                        [--seed 20240611] [--python /usr/bin/python3]
//
// For each quantizer: the same network (ReLU, float32 biases, PyTorch-style init from the seed), Adam
// lr 2e-3 with cosine decay to 0 over every step, batch 64, softmax cross-entropy, on the 7996 training
// digits of test/fixtures/gen_mnist.py's split; then the accuracy on the 2004 test digits. Timed: the
// fit loop (shuffling, batch copies, the training steps; no evaluation), per epoch, median over epochs.
// wasm runs the SIMD build on the main thread (one thread); the scalar build trains one per-tensor
// epoch for comparison. PyTorch runs as a child process, one thread, only when --python can import
// torch; it reports which BLAS it actually loaded. --quick: 2 epochs, per_tensor only.
// The targets (per-tensor test accuracy >= 94%; wasm s/epoch at most 1.5x PyTorch's, per tensor) are
// printed as MET / NOT MET; the exit status is 0 either way (1 only when a run fails).

import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { init } from '../js/node.js';
import { benchArgs } from './args.mjs';
import { loadDigits } from './mnist-digits.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const QUANTIZERS = ['per_tensor', 'per_row', 'lsq', 'none'];
// The reference's test accuracies quoted in the issue (10 epochs), for orientation only.
const ISSUE = { per_tensor: 0.944, per_row: 0.944, lsq: 0.95, none: 0.957 };
const WIDTHS = [784, 256, 256, 10];
const BATCH = 64;
const LR = 2e-3;
const ACCURACY_TARGET = 0.94;
const SPEED_TARGET = 1.5; // wasm s/epoch / PyTorch s/epoch, per tensor

const USAGE = 'usage: node bench/train.mjs [--epochs 10] [--quick] [--quantizers per_tensor,per_row,lsq,none] ' +
  '[--seed 20240611] [--python /usr/bin/python3]';

const opts = benchArgs('train.mjs', USAGE, {
  epochs: { type: 'string' },
  quick: { type: 'boolean', default: false },
  quantizers: { type: 'string' },
  seed: { type: 'string', default: '20240611' },
  python: { type: 'string', default: '/usr/bin/python3' },
});
const epochs = intOption('epochs', opts.epochs ?? (opts.quick ? '2' : '10'), 1);
const seed = intOption('seed', opts.seed, 0);
const quantizers = (opts.quantizers ?? (opts.quick ? 'per_tensor' : QUANTIZERS.join(','))).split(',').map((q) => q.trim()).filter(Boolean);
if (!quantizers.length || quantizers.some((q) => !QUANTIZERS.includes(q))) {
  console.error(`train.mjs: --quantizers must be a comma-separated list of ${QUANTIZERS.join(', ')}\n${USAGE}`);
  process.exit(2);
}

function intOption(name, text, min) {
  const v = Number(text);
  if (!Number.isSafeInteger(v) || v < min) {
    console.error(`train.mjs: --${name} must be an integer >= ${min}, got ${text}\n${USAGE}`);
    process.exit(2);
  }
  return v;
}

// --- data: the split of test/fixtures/gen_mnist.py ------------------------------------------------

// loadDigits: bench/mnist-digits.mjs (bench/threads.mjs trains on them too)

// --- wasm ------------------------------------------------------------------------------------------

const median = (a) => {
  const s = [...a].sort((p, q) => p - q), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Train one network for `runEpochs` epochs; seconds of each epoch's fit loop, losses, test accuracy. */
function trainWasm(tl, quantizer, runEpochs, scheduleEpochs, data) {
  const stepsPerEpoch = Math.ceil(data.train.count / BATCH);
  const net = tl.Network.create({ widths: WIDTHS, activation: 'relu', quantizer, seed });
  try {
    net.setOptimizer({ type: 'adam', lr: LR });
    net.setSchedule({ type: 'cosine', totalSteps: scheduleEpochs * stepsPerEpoch });
    // fit() runs every epoch in one call; the time of each epoch's last step marks its end (an epoch's
    // shuffling happens after the previous epoch's last step, so it is counted in its own epoch).
    const ends = new Array(runEpochs).fill(0);
    const start = performance.now();
    const losses = net.fit({ x: data.train.x, labels: data.train.labels },
      { epochs: runEpochs, batchSize: BATCH, seed, onStep: ({ epoch }) => { ends[epoch] = performance.now(); } });
    const seconds = ends.map((t, e) => (t - (e ? ends[e - 1] : start)) / 1000);
    if (losses.length !== runEpochs || !losses.every(Number.isFinite)) throw new Error(`${quantizer}: losses ${losses}`);
    if (net.steps !== runEpochs * stepsPerEpoch) throw new Error(`${quantizer}: ${net.steps} steps, expected ${runEpochs * stepsPerEpoch}`);
    const { accuracy } = net.evaluate(data.test);
    return { seconds, losses, accuracy, median: median(seconds), min: Math.min(...seconds) };
  } finally {
    net.free();
  }
}

// --- PyTorch, in a child process ----------------------------------------------------------------------

function torchAvailable() {
  const probe = spawnSync(opts.python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const why = probe.error ? probe.error.message : probe.stderr.trim().split('\n').pop();
    return `${opts.python} cannot import torch (${why})`;
  }
  return undefined;
}

function trainTorch(quantizer) {
  const p = spawnSync(opts.python, [join(ROOT, 'bench', 'train_torch.py'), '--quantizers', quantizer,
    '--epochs', String(epochs), '--batch', String(BATCH), '--lr', String(LR), '--seed', String(seed), '--threads', '1'],
  { encoding: 'utf8', maxBuffer: 1 << 22 });
  if (p.status !== 0) throw new Error(`train_torch.py (${quantizer}) exited with ${p.status ?? p.signal}: ${p.stderr.trim()}`);
  const lines = p.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const config = lines.find((l) => l.kind === 'config');
  const result = lines.find((l) => l.kind === 'result' && l.quantizer === quantizer);
  const ep = lines.filter((l) => l.kind === 'epoch' && l.quantizer === quantizer);
  if (!config || !result || ep.length !== epochs) throw new Error(`train_torch.py (${quantizer}): incomplete output:\n${p.stdout}`);
  return {
    config, accuracy: result.test_accuracy, seconds: ep.map((l) => l.seconds), losses: ep.map((l) => l.loss),
    median: result.median_epoch_s, min: result.min_epoch_s,
  };
}

// --- the run -----------------------------------------------------------------------------------------

const t0 = performance.now();
const data = loadDigits();
if (data.train.count !== 7996 || data.test.count !== 2004) {
  console.error(`train.mjs: expected 7996 train / 2004 test digits, got ${data.train.count} / ${data.test.count}`);
  process.exit(1);
}
console.log(`tilelli training bench: MNIST ${WIDTHS.join('-')} ReLU MLP with biases, ${data.train.count} train / ` +
  `${data.test.count} test digits (loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s), Adam lr ${LR} cosine to 0, ` +
  `batch ${BATCH}, ${epochs} epochs, seed ${seed}`);
console.log(`machine: ${cpus()[0]?.model ?? '?'} (${cpus().length} cores), Node ${process.versions.node}`);

const simd = await init({ simd: true, threads: 1 }); // one thread, as PyTorch here (bench/threads.mjs: threads)
const scalar = await init({ simd: false });
if (!simd.simd || scalar.simd) throw new Error('init({ simd }) loaded the wrong build');

const noTorch = torchAvailable();
if (noTorch) console.log(`PyTorch: skipped: ${noTorch}`);

const rows = [];
let torchConfig;
try {
  for (const q of quantizers) {
    // wasm first, then PyTorch for the same quantizer: on a shared machine, neighbours in time see
    // similar load.
    const w = trainWasm(simd, q, epochs, epochs, data);
    console.log(`  wasm SIMD  ${q.padEnd(10)} test ${(100 * w.accuracy).toFixed(2)}%  s/epoch median ${w.median.toFixed(3)} ` +
      `(${w.seconds.map((s) => s.toFixed(2)).join(' ')})  loss ${w.losses.map((l) => l.toFixed(3)).join(' ')}`);
    let t;
    if (!noTorch) {
      t = trainTorch(q);
      torchConfig ??= t.config;
      console.log(`  PyTorch    ${q.padEnd(10)} test ${(100 * t.accuracy).toFixed(2)}%  s/epoch median ${t.median.toFixed(3)} ` +
        `(${t.seconds.map((s) => s.toFixed(2)).join(' ')})  loss ${t.losses.map((l) => l.toFixed(3)).join(' ')}`);
    }
    rows.push({ q, w, t });
  }
} catch (e) {
  console.error(`train.mjs: ${e.stack ?? e}`);
  process.exit(1);
}

// The scalar build: one per-tensor epoch (the first epoch of the same run: same init, same schedule).
const sc = trainWasm(scalar, 'per_tensor', 1, epochs, data);
const simdFirst = rows.find((r) => r.q === 'per_tensor')?.w;
console.log(`  wasm scalar per_tensor 1 epoch: ${sc.seconds[0].toFixed(3)} s, loss ${sc.losses[0].toFixed(4)}` +
  (simdFirst ? ` (SIMD epoch 1: ${simdFirst.seconds[0].toFixed(3)} s, loss ${simdFirst.losses[0].toFixed(4)})` : ''));

if (torchConfig) {
  const b = torchConfig.blas;
  console.log(`PyTorch ${torchConfig.torch}, ${torchConfig.threads} thread(s); BLAS loaded: ${b.loaded.join(', ') || 'none found'}` +
    (b.openblas_config ? `; ${b.openblas_config}, ${b.openblas_threads} thread(s)` : '') + `; torch build: ${b.torch_build}`);
  if (!b.is_openblas) console.log('WARNING: PyTorch is not using OpenBLAS: its times are not the reference (apt-get install -y libopenblas0-pthread)');
}

// --- the table -----------------------------------------------------------------------------------------

const pct = (a) => (a === undefined ? '-' : `${(100 * a).toFixed(2)}%`);
const sec = (s) => (s === undefined ? '-' : s.toFixed(3));
const header = ['quantizer', 'tilelli acc', 'PyTorch acc', 'issue acc', 'tilelli s/epoch', 'PyTorch s/epoch', 'ratio', 'tilelli loss', 'PyTorch loss'];
const table = rows.map(({ q, w, t }) => [
  q, pct(w.accuracy), pct(t?.accuracy), pct(ISSUE[q]), sec(w.median), sec(t?.median),
  t ? `${(w.median / t.median).toFixed(2)}x` : '-', w.losses.at(-1).toFixed(4), t ? t.losses.at(-1).toFixed(4) : '-',
]);
const ptT = rows.find((r) => r.q === 'per_tensor')?.t;
table.push(['per_tensor, wasm scalar*', '-', '-', '-', sec(sc.seconds[0]), sec(ptT?.median),
  ptT ? `${(sc.seconds[0] / ptT.median).toFixed(2)}x` : '-', '-', '-']);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
const fmt = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
console.log();
console.log(fmt(header));
console.log(widths.map((x) => '-'.repeat(x)).join('  '));
for (const r of table) console.log(fmt(r));
console.log();
console.log(`acc: test accuracy after ${epochs} epochs (2004 digits). s/epoch: median over the epochs of the fit loop ` +
  '(no evaluation); ratio = tilelli / PyTorch, above 1 is slower than PyTorch. loss: mean train loss of the last epoch. ' +
  'issue acc: the reference figures quoted in the issue (10 epochs).');
console.log(`* wasm scalar: one epoch of per_tensor (${sc.seconds[0].toFixed(3)} s); ` +
  (simdFirst ? `SIMD is ${(sc.seconds[0] / simdFirst.median).toFixed(2)}x faster (median).` : ''));

// --- the targets ----------------------------------------------------------------------------------------

const pt = rows.find((r) => r.q === 'per_tensor');
if (!pt) {
  console.log('targets: not checked (per_tensor was not run)');
} else {
  const accMet = pt.w.accuracy >= ACCURACY_TARGET;
  console.log(`target "per-tensor test accuracy >= ${100 * ACCURACY_TARGET}%": ${accMet ? 'MET' : 'NOT MET'} ` +
    `(tilelli ${pct(pt.w.accuracy)} after ${epochs} epochs` + (pt.t ? `; PyTorch reference ${pct(pt.t.accuracy)} in this run` : '') +
    `; the issue quotes ${pct(ISSUE.per_tensor)})` + (epochs < 10 ? ' [fewer than 10 epochs: not the target run]' : ''));
  if (!pt.t) {
    console.log(`target "wasm s/epoch at most ${SPEED_TARGET}x PyTorch's, per tensor": not checked (no PyTorch in this run; ` +
      `tilelli ${sec(pt.w.median)} s/epoch; KERNEL-NOTES's anchor, another machine: 0.74 s)`);
  } else {
    const ratio = pt.w.median / pt.t.median;
    console.log(`target "wasm s/epoch at most ${SPEED_TARGET}x PyTorch's, per tensor": ${ratio <= SPEED_TARGET ? 'MET' : 'NOT MET'} ` +
      `(tilelli SIMD ${sec(pt.w.median)} s vs PyTorch ${sec(pt.t.median)} s per epoch, median = ${ratio.toFixed(2)}x; ` +
      `best epochs ${sec(pt.w.min)} vs ${sec(pt.t.min)} s = ${(pt.w.min / pt.t.min).toFixed(2)}x)` +
      (torchConfig.blas.is_openblas ? '' : ' [PyTorch without OpenBLAS: not a valid comparison]'));
  }
}
console.log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
