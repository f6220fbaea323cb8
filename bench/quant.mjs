// quant.mjs — quantize (AbsMean scale + ternary signs) one float32 tensor, per tensor and per row,
// in wasm SIMD128, wasm scalar, native C and PyTorch (one thread), and print the times side by side.
//
//   node bench/quant.mjs [--rows 4096] [--cols 4096] [--reps 10] [--warmup 2] [--python /usr/bin/python3]
//
// wasm is timed twice: "kernel" calls the exports on data already in wasm memory (what the C code
// costs); "API" calls tl.ternarySigns / tl.ternarySignsPerRow on a JS Float32Array (what a user pays,
// including the copy in, the allocation and the copies out). Native numbers come from
// build/bench_quant_native, PyTorch numbers from bench/quant_torch.py (skipped when torch is missing).
// Every implementation quantizes the same tensor: the xorshift32 uniform [-1, 1) stream of
// bench/quant_native.c. The bench refuses to report times for wasm builds whose results disagree.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { init, wasmUrl } from '../js/index.js';
import { benchArgs } from './args.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const USAGE = 'usage: node bench/quant.mjs [--rows 4096] [--cols 4096] [--reps 10] [--warmup 2] [--python /usr/bin/python3]';

const opts = benchArgs('quant.mjs', USAGE, {
  rows: { type: 'string', default: '4096' },
  cols: { type: 'string', default: '4096' },
  reps: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '2' },
  python: { type: 'string', default: '/usr/bin/python3' },
});
const rows = intOption('rows', 1);
const cols = intOption('cols', 1);
const reps = intOption('reps', 1);
const warmup = intOption('warmup', 0);
const n = rows * cols;
if (n > 0x3fffffff) {
  console.error(`quant.mjs: ${rows} x ${cols} is more elements than tilelli accepts (2^30 - 1)`);
  process.exit(2);
}

function intOption(name, min) {
  const v = Number(opts[name]);
  if (!Number.isSafeInteger(v) || v < min) {
    console.error(`quant.mjs: --${name} must be an integer >= ${min}, got ${opts[name]}\n${USAGE}`);
    process.exit(2);
  }
  return v;
}

// --- input -------------------------------------------------------------------------------------

/** The stream of bench/quant_native.c: xorshift32 from 12345, as int32 / 2^31, rounded to float32. */
function xorshiftUniform(count) {
  const w = new Float32Array(count);
  let x = 12345;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    w[i] = (x | 0) / 2147483648;
  }
  return w;
}

// --- timing ------------------------------------------------------------------------------------

function median(sorted) {
  const m = sorted.length >> 1;
  return sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
}

/** Run fn warmup times untimed, then reps times timed: { best, median } in ms. */
function measure(fn) {
  for (let i = 0; i < warmup; i++) fn();
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { best: times[0], median: median(times) };
}

// --- wasm: the raw exports ----------------------------------------------------------------------

/**
 * Instantiate a dist/ build the way js/core.js does (imported memory, growth notification, _initialize),
 * so the benchmark can place the tensor in wasm memory once and time the exports alone.
 */
async function rawInstance(simd) {
  const module = await WebAssembly.compile(await readFile(wasmUrl(simd)));
  const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536 });
  const instance = await WebAssembly.instantiate(module, {
    env: { memory, emscripten_notify_memory_growth() {} },
  });
  instance.exports._initialize();
  return { x: instance.exports, memory };
}

/** Time tl_ternary_signs and tl_ternary_signs_per_row on w copied once into wasm memory. */
async function kernelRuns(simd, w) {
  const { x, memory } = await rawInstance(simd);
  if (((x.tl_build_flags() & 1) === 1) !== simd) throw new Error(`dist build simd=${simd} reports the other variant`);
  const alloc = (bytes) => {
    const p = x.tl_alloc(bytes) >>> 0;
    if (p === 0) throw new Error(`tl_alloc(${bytes}) failed`);
    return p;
  };
  const wp = alloc(n * 4), tp = alloc(n), ap = alloc(4), asp = alloc(rows * 4), sp = alloc(16);
  // Views only after the last allocation: growing the memory detaches earlier ones.
  new Float32Array(memory.buffer, wp, n).set(w);
  new BigInt64Array(memory.buffer, sp, 2).set([BigInt(rows), BigInt(cols)]);
  const ok = (s, fn) => { if (s !== 0) throw new Error(`${fn} returned status ${s}`); };

  const perTensor = measure(() => ok(x.tl_ternary_signs(wp, n, tp, ap), 'tl_ternary_signs'));
  const tensorResult = {
    trits: new Int8Array(memory.buffer, tp, n).slice(),
    alphas: new Float32Array(memory.buffer, ap, 1).slice(),
  };
  new Int8Array(memory.buffer, tp, n).fill(7); // so a per-row call that wrote nothing cannot pass
  const perRow = measure(() => ok(x.tl_ternary_signs_per_row(wp, n, sp, 2, tp, asp), 'tl_ternary_signs_per_row'));
  const rowResult = {
    trits: new Int8Array(memory.buffer, tp, n).slice(),
    alphas: new Float32Array(memory.buffer, asp, rows).slice(),
  };
  return { perTensor, perRow, tensorResult, rowResult };
}

/** Time the public API (copies included) on a JS Float32Array. */
async function apiRuns(simd, w) {
  const tl = await init({ simd });
  if (tl.simd !== simd) throw new Error(`init({ simd: ${simd} }) loaded the other variant`);
  let t, r;
  const perTensor = measure(() => { t = tl.ternarySigns(w); });
  const perRow = measure(() => { r = tl.ternarySignsPerRow(w, [rows, cols]); });
  return {
    perTensor, perRow,
    tensorResult: { trits: t.trits, alphas: Float32Array.of(t.alpha) },
    rowResult: { trits: r.trits, alphas: r.alphas },
  };
}

// --- comparing results ---------------------------------------------------------------------------

/** Where two { trits, alphas } disagree (alphas bit for bit), as a message, or undefined. */
function difference(a, b) {
  const at = a.trits, bt = b.trits;
  if (at.length !== bt.length) return `${at.length} vs ${bt.length} trits`;
  let diff = 0, first = -1;
  for (let i = 0; i < at.length; i++) if (at[i] !== bt[i]) { diff++; if (first < 0) first = i; }
  if (diff) return `${diff} trits differ (first at ${first}: ${at[first]} vs ${bt[first]})`;
  const au = new Uint32Array(a.alphas.buffer, a.alphas.byteOffset, a.alphas.length);
  const bu = new Uint32Array(b.alphas.buffer, b.alphas.byteOffset, b.alphas.length);
  if (au.length !== bu.length) return `${au.length} vs ${bu.length} scales`;
  for (let i = 0; i < au.length; i++) {
    if (au[i] !== bu[i]) return `scale ${i} differs: ${a.alphas[i]} vs ${b.alphas[i]}`;
  }
  return undefined;
}

/** Agreement with the PyTorch reference, which may differ in the last bit of a scale (summation order). */
function agreement(ours, ref) {
  let diff = 0;
  for (let i = 0; i < ours.trits.length; i++) diff += ours.trits[i] !== ref.trits[i];
  let maxRel = 0, bitExact = 0;
  for (let i = 0; i < ours.alphas.length; i++) {
    maxRel = Math.max(maxRel, Math.abs(ours.alphas[i] - ref.alphas[i]) / Math.abs(ref.alphas[i]));
    bitExact += Object.is(ours.alphas[i], ref.alphas[i]);
  }
  return `${diff} of ${ours.trits.length} trits differ; ${bitExact} of ${ours.alphas.length} scales bit-identical, ` +
    `max relative difference ${maxRel.toExponential(2)}`;
}

// --- the baselines, in other processes -----------------------------------------------------------

function jsonLines(stdout) {
  return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}

function runNative() {
  const exe = join(ROOT, 'build', 'bench_quant_native');
  if (!existsSync(exe)) return { skipped: `${exe} not found (build it: cmake -S . -B build && cmake --build build)` };
  const p = spawnSync(exe, [String(rows), String(cols), String(reps)], { encoding: 'utf8' });
  if (p.status !== 0) return { skipped: `bench_quant_native exited with ${p.status ?? p.signal}: ${p.stderr.trim()}` };
  return { lines: jsonLines(p.stdout) };
}

function runTorch(w) {
  const probe = spawnSync(opts.python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const why = probe.error ? probe.error.message : probe.stderr.trim().split('\n').pop();
    return { skipped: `${opts.python} cannot import torch (${why})` };
  }
  const dir = mkdtempSync(join(tmpdir(), 'tilelli-bench-'));
  try {
    const input = join(dir, 'w.f32');
    writeFileSync(input, new Uint8Array(w.buffer, w.byteOffset, w.byteLength));
    const p = spawnSync(opts.python, [
      join(ROOT, 'bench', 'quant_torch.py'), '--input', input, '--dump', dir,
      '--rows', String(rows), '--cols', String(cols), '--reps', String(reps), '--warmup', String(warmup),
    ], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (p.status !== 0) return { skipped: `quant_torch.py exited with ${p.status ?? p.signal}: ${p.stderr.trim()}` };
    const read = (name, Type) => {
      const b = readFileSync(join(dir, name));
      return new Type(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    };
    return {
      lines: jsonLines(p.stdout),
      tensorResult: { trits: read('per-tensor.trits', Int8Array), alphas: read('per-tensor.alpha', Float32Array) },
      rowResult: { trits: read('per-row.trits', Int8Array), alphas: read('per-row.alphas', Float32Array) },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- the run ---------------------------------------------------------------------------------------

console.log(`tilelli quantization bench: ${rows} x ${cols} float32 (${n} elements), ` +
  `xorshift32 uniform [-1, 1), ${warmup} warm-up + ${reps} timed reps each; Node ${process.versions.node}`);
const w = xorshiftUniform(n);

const simdKernel = await kernelRuns(true, w);
const scalarKernel = await kernelRuns(false, w);
const simdApi = await apiRuns(true, w);
const scalarApi = await apiRuns(false, w);

// A bench of a broken kernel is worthless: every wasm path must give the same trits and scales.
let broken = false;
for (const [name, run] of [['wasm scalar kernel', scalarKernel], ['wasm SIMD API', simdApi], ['wasm scalar API', scalarApi]]) {
  for (const [mode, key] of [['per-tensor', 'tensorResult'], ['per-row', 'rowResult']]) {
    const d = difference(simdKernel[key], run[key]);
    if (d) { console.error(`MISMATCH ${mode}: wasm SIMD kernel vs ${name}: ${d}`); broken = true; }
  }
}
if (broken) process.exit(1);
console.log('check: wasm SIMD and scalar (kernel and API) give identical trits and bit-identical scales, per tensor and per row');

const native = runNative();
if (native.skipped) console.log(`native: skipped: ${native.skipped}`);
const torch = runTorch(w);
if (torch.skipped) console.log(`PyTorch: skipped: ${torch.skipped}`);
else {
  console.log(`check vs PyTorch reference, per tensor: ${agreement(simdKernel.tensorResult, torch.tensorResult)}`);
  console.log(`check vs PyTorch reference, per row:    ${agreement(simdKernel.rowResult, torch.rowResult)}`);
  const note = torch.lines.find((l) => l.note)?.note;
  if (note) console.log(`PyTorch per row: ${note}`);
}

// --- the table -------------------------------------------------------------------------------------

const MODES = ['per-tensor', 'per-row'];
const entries = []; // { impl, mode, best, median, medianLabel }
for (const [impl, run] of [['wasm SIMD, kernel', simdKernel], ['wasm SIMD, API', simdApi],
  ['wasm scalar, kernel', scalarKernel], ['wasm scalar, API', scalarApi]]) {
  entries.push({ impl, mode: 'per-tensor', ...run.perTensor }, { impl, mode: 'per-row', ...run.perRow });
}
let nativeMeanOnly = false;
for (const l of native.lines ?? []) {
  // quant_native.c reports best and mean; use a median if it ever reports one.
  nativeMeanOnly ||= l.median_ms === undefined;
  entries.push({ impl: 'native C', mode: l.mode, best: l.best_ms, median: l.median_ms ?? l.mean_ms, mark: l.median_ms === undefined ? '*' : '' });
}
const torchName = `PyTorch ${torch.lines?.[0]?.torch ?? ''}, ${torch.lines?.[0]?.threads ?? 1} thread`;
for (const l of torch.lines ?? []) entries.push({ impl: torchName, mode: l.mode, best: l.best_ms, median: l.median_ms });

const find = (impl, mode) => entries.find((e) => e.impl === impl && e.mode === mode);
const ms = (t) => t.toFixed(t < 1 ? 4 : 2);
const speedup = (base, e) => (base ? `${(base.median / e.median).toFixed(2)}x` : '-');

const header = ['implementation', 'mode', 'best ms', 'median ms', 'G elem/s', 'vs PyTorch', 'vs wasm SIMD'];
const table = [];
for (const mode of MODES) {
  for (const e of entries.filter((x) => x.mode === mode)) {
    table.push([e.impl, mode, ms(e.best), ms(e.median) + (e.mark ?? ''), (n / e.median / 1e6).toFixed(2),
      speedup(find(torchName, mode), e), speedup(find('wasm SIMD, kernel', mode), e)]);
  }
}
const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
const fmt = (r) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
console.log();
console.log(fmt(header));
console.log(widths.map((x) => '-'.repeat(x)).join('  '));
let lastMode;
for (const r of table) {
  if (lastMode && r[1] !== lastMode) console.log();
  lastMode = r[1];
  console.log(fmt(r));
}
console.log();
console.log('G elem/s and ratios use the median. "vs X" = X median / this median: above 1 is faster than X.');
if (nativeMeanOnly) console.log('* native: bench_quant_native reports best and mean, not median: the mean is shown.');

// --- the target ---------------------------------------------------------------------------------------

const base = find(torchName, 'per-tensor');
if (!base) {
  console.log('target "wasm SIMD at least as fast as PyTorch ternary_signs on one thread": not checked (no PyTorch)');
} else {
  const k = find('wasm SIMD, kernel', 'per-tensor'), a = find('wasm SIMD, API', 'per-tensor');
  const ratio = base.median / k.median;
  console.log(`target "wasm SIMD at least as fast as PyTorch ternary_signs on one thread": ${ratio >= 1 ? 'PASS' : 'FAIL'} ` +
    `(per tensor, median: kernel ${ms(k.median)} ms vs PyTorch ${ms(base.median)} ms = ${ratio.toFixed(2)}x; ` +
    `with the API's copies ${ms(a.median)} ms = ${(base.median / a.median).toFixed(2)}x)`);
}
