// threads.mjs — what threads buy: the same products on 1 thread and on N (default 2), two instances
// of the same build in one process, interleaved round by round, medians and ratios, MET / NOT MET
// against issue 13's targets on a 2-core machine.
//
//   node bench/threads.mjs [--threads 2] [--rounds 15] [--budget 60] [--check]
//
//   GEMV 4096x4096 (i2), int8 activations (target >= 1.5x) and float activations (reported)
//   wide MLP 1024-4096-4096-1024 (i2, ReLU), batch 16, float and int8 activations (target >= 1.7x)
//   MNIST training epoch: the 784-256-256-10 MLP of bench/train.mjs, batch 64, 7996 digits (>= 1.4x;
//   --epochs rounds of one epoch each side, the networks' weights compared bit for bit after each)
//
// The physical limit is the core count: N threads can at most be N times faster (and on a machine
// busy with other work, less: the load average is printed before and after). Calls go through the
// public API (copies in and out included), as an application makes them. Before timing, each line
// checks that both instances return the same bits. Node runs the SIMD128 build; with
// --experimental-wasm-relaxed-simd --no-liftoff it runs the relaxed one (the first line says which).
// In Chromium the same instances run in bench/threads-browser (see --browser).
import { availableParallelism, loadavg } from 'node:os';

import { init } from '../js/index.js';
import { benchArgs } from './args.mjs';
import { loadDigits } from './mnist-digits.mjs';

const USAGE = 'usage: node bench/threads.mjs [--threads 2] [--rounds 15] [--budget 60] [--epochs 3] [--check]';
const opts = benchArgs('threads.mjs', USAGE, {
  threads: { type: 'string', default: '2' },
  rounds: { type: 'string', default: '15' },
  budget: { type: 'string', default: '60' },
  epochs: { type: 'string', default: '3' },
  check: { type: 'boolean', default: false },
});
const args = { rounds: Number(opts.rounds), budget: Number(opts.budget), check: opts.check };
const N = Number(opts.threads);

/** Deterministic values in [-1, 1) */
function floats(n, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const same = (a, b) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

/** ms per call of f, calls repeated for about budget ms */
function timeCalls(f, budget) {
  const t0 = performance.now();
  let n = 0;
  do {
    f();
    n++;
  } while (performance.now() - t0 < budget);
  return (performance.now() - t0) / n;
}

/** Interleaved rounds of one and many: their medians and the ratio. */
function compare(one, many) {
  one();
  many();
  const a = [], b = [];
  for (let r = 0; r < args.rounds; r++) {
    a.push(timeCalls(one, args.budget));
    b.push(timeCalls(many, args.budget));
  }
  return { one: median(a), many: median(b) };
}

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const tl1 = await init({ threads: 1 });
const tlN = await init({ threads: N });
console.log(`threads bench: Node ${process.versions.node}, build ${tlN.build}, ${tlN.threads} threads vs 1, ${availableParallelism()} cores ` +
  `(limit ${Math.min(N, availableParallelism())}.0x), load average ${load()}`);
if (tlN.threads !== N) {
  console.error(`asked for ${N} threads, got ${tlN.threads}`);
  process.exit(1);
}

const lines = [];
function line(name, r, target) {
  const ratio = r.one / r.many;
  const verdict = target ? (ratio >= target ? `MET (>= ${target}x)` : `NOT MET (>= ${target}x)`) : '(no target)';
  const text = `${name.padEnd(46)} ${tl1.build} 1 thread ${r.one.toFixed(3).padStart(8)} ms | ${tlN.build} ${tlN.threads} threads ${r.many.toFixed(3).padStart(8)} ms | ${ratio.toFixed(2)}x ${verdict}`;
  console.log(text);
  lines.push({ name, ...r, ratio, target });
}

// GEMV 4096 x 4096
{
  const rows = 4096, cols = 4096;
  const w = floats(rows * cols, 1);
  const m1 = tl1.PackedMatrix.fromWeights(w, [rows, cols], { format: 'i2' });
  const mN = tlN.PackedMatrix.fromWeights(w, [rows, cols], { format: 'i2' });
  const xf = floats(cols, 2);
  const xi = Int8Array.from(xf, (v) => Math.round(v * 127));
  if (!same(m1.matmulInt8(xi, { raw: true }), mN.matmulInt8(xi, { raw: true })) || !same(m1.matmulFloat(xf), mN.matmulFloat(xf))) {
    console.error('GEMV: the threaded instance differs');
    process.exit(1);
  }
  if (!args.check) {
    line('GEMV 4096x4096 i2, int8 activations', compare(() => m1.matmulInt8(xi, { raw: true }), () => mN.matmulInt8(xi, { raw: true })), 1.5);
    line('GEMV 4096x4096 i2, float activations', compare(() => m1.matmulFloat(xf), () => mN.matmulFloat(xf)));
  }
  m1.free();
  mN.free();
}

// wide MLP 1024-4096-4096-1024, batch 16
{
  const widths = [1024, 4096, 4096, 1024];
  const layers = [];
  const mats = [];
  for (let i = 0; i + 1 < widths.length; i++) {
    const m = tl1.PackedMatrix.fromWeights(floats(widths[i + 1] * widths[i], 10 + i), [widths[i + 1], widths[i]], { format: 'i2' });
    mats.push(m);
    layers.push({ type: 'linear', matrix: m, bias: floats(widths[i + 1], 20 + i).map((v) => v * 0.1) });
    if (i + 2 < widths.length) layers.push({ type: 'relu' });
  }
  const bytes = tl1.packModel({ input: widths[0], layers });
  for (const m of mats) m.free();
  const batch = 16, x = floats(batch * widths[0], 3);
  for (const activations of ['float', 'int8']) {
    const a = tl1.Model.load(bytes), b = tlN.Model.load(bytes);
    a.setActivations(activations);
    b.setActivations(activations);
    if (!same(a.run(x), b.run(x))) {
      console.error(`MLP ${activations}: the threaded instance differs`);
      process.exit(1);
    }
    if (!args.check) line(`MLP 1024-4096-4096-1024 batch 16, ${activations}`, compare(() => a.run(x), () => b.run(x)), 1.7);
    a.free();
    b.free();
  }
}
// MNIST training epoch
{
  const { train } = loadDigits();
  const nets = [tl1, tlN].map((tl) => tl.Network.create({ widths: [784, 256, 256, 10], seed: 20240611 }));
  const epoch = (net) => {
    const t0 = performance.now();
    net.fit({ x: train.x, labels: train.labels }, { epochs: 1, batchSize: 64, seed: 1 });
    return performance.now() - t0;
  };
  const a = [], b = [];
  for (let r = 0; r < (args.check ? 1 : Number(opts.epochs)); r++) {
    a.push(epoch(nets[0]));
    b.push(epoch(nets[1]));
    for (let k = 0; k < 3; k++) {
      if (!same(nets[0].getLayer(k).weight, nets[1].getLayer(k).weight)) {
        console.error(`MNIST: the threaded network's layer ${k} differs after epoch ${r + 1}`);
        process.exit(1);
      }
    }
  }
  if (!args.check) line('MNIST training epoch 784-256-256-10, batch 64', { one: median(a), many: median(b) }, 1.4);
  for (const net of nets) net.free();
}

console.log(args.check ? 'threads bench --check: both instances give the same bits' : `load average after: ${load()}`);
