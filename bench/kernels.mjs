// kernels.mjs — the ternary kernels (tl_matmul_binary / _sparse / _i8 / _f32) for every packed format,
// in wasm SIMD128, wasm scalar, wasm relaxed SIMD and native C, beside the baselines of
// bench/baselines.mjs, in one table.
//
//   node bench/kernels.mjs [--shapes 1024x1024,4096x4096,11008x4096,256x784,10x256] [--batches 1,8,16,64]
//                          [--budget 250] [--quick] [--no-baselines] [--no-relaxed]
//
//   --no-relaxed  skip the relaxed-SIMD build. Node 20 runs it only behind a flag, and its baseline
//               compiler gets relaxed dot products wrong: when this Node does not validate relaxed
//               SIMD, the bench runs itself again in a child Node with --experimental-wasm-relaxed-simd
//               --no-liftoff (every build then runs in that child, TurboFan only, as they do once
//               tiered up anyway; the first line says so). In Chromium: bench/kernels-browser.mjs.
//   The relaxed build's accumulators are checked identical to the SIMD build's, as the scalar's are.
//
//   --budget    milliseconds of timed calls per line (adaptive reps: at least 3, at most 1000; a line
//               whose one call takes longer than the budget gets a single timed call)
//   --quick     4096x4096, batch 1 only (overrides --shapes and --batches)
//   --no-baselines   skip onnxruntime-web and the own float32 GEMV (bandwidth is still measured)
//
// wasm: the raw exports of dist/tilelli-{simd,scalar}.wasm, instantiated as js/core.js does (imported
// memory, growth notification, _initialize), timed on data already in wasm memory, one warm-up call
// per line first (the sparse kernel builds its column-major copy on its first call). One fresh
// instance per shape and build, dropped after it: wasm memory never shrinks, and 11008 x 4096 float
// weights are 180 MB. native: build/bench_kernels_native (bench/kernels_native.c), a child process.
//
// Inputs are those of bench/kernels_native.c, bit for bit: weights xorshift32 from seed 1 as
// float32((int32)x / 2^31), quantized per tensor by tl_matrix_quantize; activations from seed 2:
// max(batches) float vectors, then their bits (one byte per draw), then k = max(1, floor(cols / 50))
// column indices per vector (draw % cols); int8 activations are tl_quantize_activations_i8 of the
// floats. A batch of B uses the first B vectors of each.
//
// Before a number is printed, every line is checked, and the bench exits 1 on the first failure:
//   - binary, sparse, int8: the int32 accumulators of wasm SIMD and wasm scalar are identical, their
//     checksum (sum = sum * 31 + acc[i], uint32, as kernels_native.c) equals the native one, the
//     three formats agree, and 16 spots match a plain JS sum over the unpacked trits;
//   - float: SIMD and scalar agree within 1e-5 * scale[r] * sum_c |x[b][c]| everywhere, and 16 spots
//     match a float64 JS sum.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { relaxedSupported, wasmUrl } from '../js/index.js';
import { benchArgs } from './args.mjs';
import {
  loadOrt,
  ortMatMulF32,
  ortMatMulNBits,
  ortRunOverhead,
  ownF32Gemv,
  readBandwidth,
  spotPositions,
} from './baselines.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NATIVE = join(ROOT, 'build', 'bench_kernels_native');

const USAGE =
  'usage: node bench/kernels.mjs [--shapes 1024x1024,4096x4096,11008x4096,256x784,10x256] [--batches 1,8,16,64]\n' +
  '                              [--budget 250] [--quick] [--no-baselines]';

const FORMATS = [
  { id: 1, name: 'i2' },
  { id: 2, name: 'tq1' },
  { id: 3, name: 'bitplane' },
];
const KINDS = ['binary', 'sparse', 'int8', 'float'];
const KIND_LABEL = { binary: 'binary', sparse: 'sparse 2%', int8: 'int8', float: 'float' };
const MAX_REPS = 1000; // as kernels_native.c
const TINY_MS = 0.05; // calls shorter than this are timed in groups (the clock and call overhead)

// --- options -------------------------------------------------------------------------------------

function usageError(msg) {
  console.error(`kernels.mjs: ${msg}\n${USAGE}`);
  process.exit(2);
}

const opts = benchArgs('kernels.mjs', USAGE, {
  shapes: { type: 'string', default: '1024x1024,4096x4096,11008x4096,256x784,10x256' },
  batches: { type: 'string', default: '1,8,16,64' },
  budget: { type: 'string', default: '250' },
  quick: { type: 'boolean', default: false },
  'no-baselines': { type: 'boolean', default: false },
  'no-relaxed': { type: 'boolean', default: false },
});
const RELAXED_FLAGS = ['--experimental-wasm-relaxed-simd', '--no-liftoff'];
if (!opts['no-relaxed'] && !relaxedSupported() && !process.env.TILELLI_KERNELS_CHILD) {
  // Run again with relaxed SIMD enabled (Node 20); if that Node refuses the flag, without the build.
  const probe = spawnSync(process.execPath, [...RELAXED_FLAGS, '-e', '0']);
  const args = probe.status === 0 ? [...RELAXED_FLAGS, ...process.execArgv, ...process.argv.slice(1)]
    : [...process.execArgv, ...process.argv.slice(1), '--no-relaxed'];
  const child = spawnSync(process.execPath, args, { stdio: 'inherit', env: { ...process.env, TILELLI_KERNELS_CHILD: '1' } });
  process.exit(child.status ?? 1);
}
const withRelaxed = !opts['no-relaxed'] && relaxedSupported();
if (opts.quick) {
  opts.shapes = '4096x4096';
  opts.batches = '1';
}
const shapes = opts.shapes.split(',').map((s) => {
  const m = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!m) usageError(`bad --shapes entry "${s}" (ROWSxCOLS)`);
  const rows = Number(m[1]);
  const cols = Number(m[2]);
  if (rows < 1 || cols < 1 || rows * cols > 0x3fffffff) usageError(`shape ${s}: 1 <= rows * cols <= 2^30 - 1`);
  return { rows, cols };
});
const batches = opts.batches.split(',').map((s) => {
  if (!/^\d+$/.test(s.trim()) || Number(s) < 1) usageError(`bad --batches entry "${s}"`);
  return Number(s);
});
if (batches.length > 8) usageError('at most 8 batch sizes (bench_kernels_native reads 8)');
const budgetMs = Number(opts.budget);
if (!(budgetMs >= 0)) usageError(`bad --budget ${opts.budget}`);
const withBaselines = !opts['no-baselines'];
const maxBatch = Math.max(...batches);

// --- inputs: the streams of kernels_native.c ----------------------------------------------------------

/** xorshift32 as kernels_native.c's next(): returns a function giving the next uint32. */
function xorshift(seed) {
  let x = seed | 0;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** Fill a Float32Array with float32((int32)next() / 2^31) (the double quotient rounded once). */
function fillFloats(out, next) {
  for (let i = 0; i < out.length; i++) out[i] = (next() | 0) / 2147483648;
  return out;
}

/** Activations for vectors of `cols`: floats, then bits, then sparse indices, from seed 2. */
function makeActivations(cols) {
  const next = xorshift(2);
  const xb = Math.ceil(cols / 8); // tl_binary_row_bytes
  const k = Math.max(1, Math.floor(cols / 50));
  const xf = fillFloats(new Float32Array(maxBatch * cols), next);
  const bits = new Uint8Array(maxBatch * xb);
  for (let i = 0; i < bits.length; i++) bits[i] = next() & 0xff;
  const offs = new Uint32Array(maxBatch + 1);
  for (let b = 0; b <= maxBatch; b++) offs[b] = b * k;
  const idx = new Uint32Array(maxBatch * k);
  for (let i = 0; i < idx.length; i++) idx[i] = next() % cols;
  const xabs = new Float64Array(maxBatch); // sum_c |x[b][c]|, for the float tolerance
  for (let b = 0; b < maxBatch; b++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.abs(xf[b * cols + c]);
    xabs[b] = s;
  }
  return { xf, bits, idx, offs, xb, k, xabs };
}

/** The checksum of kernels_native.c: sum = sum * 31 + (uint32)acc[i], mod 2^32. */
function checksum(acc) {
  let s = 0;
  for (let i = 0; i < acc.length; i++) s = (Math.imul(s, 31) + acc[i]) >>> 0;
  return s;
}

// --- failures -----------------------------------------------------------------------------------------

let linesChecked = 0;

function fail(msg) {
  console.error(`\nMISMATCH: ${msg}\nA timing of a wrong kernel is worthless: stopping (exit 1).`);
  process.exit(1);
}

// --- timing -------------------------------------------------------------------------------------------

/**
 * One warm-up call, then timed calls until `budget` ms are spent (at least 3, or 1 when a call takes
 * longer than the budget; at most MAX_REPS). Calls under TINY_MS are timed in groups, per call.
 * Returns microseconds: { best, median, reps, group }; the median is times[n / 2] as kernels_native.c.
 */
function timeCalls(call, budget) {
  call();
  const t0 = performance.now();
  call();
  const est = performance.now() - t0;
  const times = [];
  let group = 1;
  let spent = 0;
  if (est < TINY_MS) group = Math.min(1000, Math.ceil(TINY_MS / Math.max(est, 1e-4)));
  else {
    times.push(est);
    spent = est;
  }
  const minReps = est > budget ? 1 : 3;
  while (times.length < MAX_REPS && (times.length < minReps || spent < budget)) {
    const a = performance.now();
    for (let i = 0; i < group; i++) call();
    const dt = performance.now() - a;
    spent += dt;
    times.push(dt / group);
  }
  times.sort((p, q) => p - q);
  return { best: times[0] * 1e3, median: times[times.length >> 1] * 1e3, reps: times.length, group };
}

// --- wasm ---------------------------------------------------------------------------------------------

const modules = {};
async function compiled(variant) {
  modules[variant] ??= WebAssembly.compile(await readFile(wasmUrl(variant)));
  return modules[variant];
}

/** A fresh instance of build `variant` ('simd', 'scalar', 'relaxed'), as js/core.js makes it, with an
 * allocator that throws instead of returning 0. */
async function instance(variant) {
  const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536 });
  const inst = await WebAssembly.instantiate(await compiled(variant), {
    env: { memory, emscripten_notify_memory_growth() {} },
  });
  const x = inst.exports;
  x._initialize();
  const flags = x.tl_build_flags();
  const reported = flags & 2 ? 'relaxed' : flags & 1 ? 'simd' : 'scalar';
  if (reported !== variant) throw new Error(`dist/tilelli-${variant}.wasm reports the ${reported} build`);
  const alloc = (bytes) => {
    const p = x.tl_alloc(bytes) >>> 0;
    if (p === 0) throw new Error(`tl_alloc(${bytes}) failed in the ${variant} build`);
    return p;
  };
  const ok = (s, what) => {
    if (s !== 0) throw new Error(`${what} returned status ${s}`);
  };
  return { x, memory, alloc, ok };
}

/**
 * Run every format x batch x kind line of one shape in one build. `simdRuns` (when given) holds the
 * SIMD build's results: the scalar (or relaxed) build is compared with them line by line, as it goes.
 * Returns { lines: Map key -> { best, median, reps, group, acc | out, sum }, formats, x8, xs }.
 */
async function runBuild(variant, shape, act, spotRows, simdRuns) {
  const { rows, cols } = shape;
  const build = `wasm ${variant === 'simd' ? 'SIMD' : variant}`;
  const { x, memory, alloc, ok } = await instance(variant);
  const n = rows * cols;

  // Weights: generated into wasm memory, quantized per tensor in every format, then freed.
  const pw = alloc(n * 4);
  const pm = alloc(4);
  fillFloats(new Float32Array(memory.buffer, pw, n), xorshift(1));
  const formats = [];
  for (const f of FORMATS) {
    ok(x.tl_matrix_quantize(f.id, pw, rows, cols, 0, pm), `${build} tl_matrix_quantize(${f.name})`);
    const m = new Uint32Array(memory.buffer, pm, 1)[0];
    const bytes = x.tl_matrix_data_bytes(m) >>> 0;
    const data = x.tl_alloc(bytes) >>> 0;
    ok(x.tl_matrix_packed(m, data, bytes), `${build} tl_matrix_packed(${f.name})`);
    const scale = new Float32Array(memory.buffer, x.tl_matrix_scales(m) >>> 0, 1)[0];
    const packed = new Uint8Array(memory.buffer, data, bytes);
    let h = 0;
    for (let i = 0; i < bytes; i++) h = (Math.imul(h, 31) + packed[i]) >>> 0;
    x.tl_free(data);
    formats.push({ ...f, m, bytes, scale, hash: h });
  }
  x.tl_free(pw);
  // The trits of the rows the spot checks use (SIMD build only: the scalar's are compared by hash).
  let trits = null;
  if (!simdRuns) {
    const pt = alloc(n);
    ok(x.tl_matrix_unpack(formats[0].m, pt, n), `${build} tl_matrix_unpack`);
    trits = new Map();
    for (const r of spotRows) trits.set(r, new Int8Array(memory.buffer, pt + r * cols, cols).slice());
    x.tl_free(pt);
  } else {
    for (let i = 0; i < formats.length; i++) {
      const a = simdRuns.formats[i];
      const b = formats[i];
      if (a.bytes !== b.bytes || a.hash !== b.hash || !Object.is(a.scale, b.scale)) {
        fail(`${rows}x${cols} ${b.name}: the ${variant} build quantized/packed differently from the SIMD build ` +
          `(bytes ${b.bytes} vs ${a.bytes}, hash ${b.hash} vs ${a.hash}, scale ${b.scale} vs ${a.scale})`);
      }
    }
  }

  // Activations and outputs.
  const B = maxBatch;
  const pxf = alloc(B * cols * 4);
  const px8 = alloc(B * cols);
  const pxs = alloc(B * 4);
  const pbits = alloc(act.bits.length);
  const pidx = alloc(act.idx.length * 4);
  const poffs = alloc(act.offs.length * 4);
  const pacc = alloc(B * rows * 4);
  const pout = alloc(B * rows * 4);
  new Float32Array(memory.buffer, pxf, B * cols).set(act.xf);
  new Uint8Array(memory.buffer, pbits, act.bits.length).set(act.bits);
  new Uint32Array(memory.buffer, pidx, act.idx.length).set(act.idx);
  new Uint32Array(memory.buffer, poffs, act.offs.length).set(act.offs);
  ok(x.tl_quantize_activations_i8(pxf, B * cols, B, px8, pxs), `${build} tl_quantize_activations_i8`);
  const x8 = new Int8Array(memory.buffer, px8, B * cols).slice();
  const xs = new Float32Array(memory.buffer, pxs, B).slice();
  if (simdRuns) {
    for (let i = 0; i < x8.length; i++) {
      if (x8[i] !== simdRuns.x8[i]) fail(`${cols}-wide int8 activations: ${variant} ${x8[i]} vs SIMD ${simdRuns.x8[i]} at ${i}`);
    }
    for (let b = 0; b < B; b++) {
      if (!Object.is(xs[b], simdRuns.xs[b])) fail(`activation scale ${b}: ${variant} ${xs[b]} vs SIMD ${simdRuns.xs[b]}`);
    }
  }

  const lines = new Map();
  for (const f of formats) {
    for (const batch of batches) {
      const len = batch * rows;
      for (const kind of KINDS) {
        const key = `${f.name}/${batch}/${kind}`;
        const label = `${rows}x${cols} ${f.name} ${kind} batch ${batch}`;
        let call;
        if (kind === 'binary') call = () => x.tl_matmul_binary(f.m, pbits, batch * act.xb, batch, pacc, 0, len);
        else if (kind === 'sparse') call = () => x.tl_matmul_sparse(f.m, pidx, batch * act.k, poffs, batch, pacc, 0, len);
        else if (kind === 'int8') call = () => x.tl_matmul_i8(f.m, px8, batch * cols, batch, pxs, pacc, 0, len);
        else call = () => x.tl_matmul_f32(f.m, pxf, batch * cols, batch, pout, len);
        // Sentinels, so a kernel that writes nothing cannot pass.
        new Int32Array(memory.buffer, pacc, len).fill(0x7f7f7f7f);
        new Float32Array(memory.buffer, pout, len).fill(NaN);
        const t = timeCalls(() => ok(call(), `${build} ${label}`), budgetMs);
        const line = { ...t };
        if (kind === 'float') line.out = new Float32Array(memory.buffer, pout, len).slice();
        else {
          line.acc = new Int32Array(memory.buffer, pacc, len).slice();
          line.sum = checksum(line.acc);
        }
        if (simdRuns) {
          compareWithSimd(`${label} (${build})`, shape, batch, f, kind, line, simdRuns.lines.get(key), act);
          delete line.acc; // only the SIMD build's outputs are kept
          delete line.out;
        } else {
          spotCheck(label, shape, batch, f, kind, line, act, x8, trits);
        }
        lines.set(key, line);
        process.stderr.write('.');
      }
    }
  }
  // Fused activation quantization (tl_matmul_f32_i8), i2, wasm SIMD only: its outputs must be the bits of
  // tl_quantize_activations_i8 then tl_matmul_i8 with those scales (checked before it is timed).
  const fused = new Map();
  if (!simdRuns) {
    const f = formats[0];
    for (const batch of batches) {
      const len = batch * rows;
      ok(x.tl_matmul_i8(f.m, px8, batch * cols, batch, pxs, 0, pout, len), `${build} int8 out`);
      const want = new Float32Array(memory.buffer, pout, len).slice();
      new Float32Array(memory.buffer, pout, len).fill(NaN);
      const call = () => x.tl_matmul_f32_i8(f.m, pxf, batch * cols, batch, pout, len);
      ok(call(), `${build} tl_matmul_f32_i8`);
      const got = new Float32Array(memory.buffer, pout, len);
      for (let i = 0; i < len; i++) {
        if (!Object.is(got[i], want[i])) fail(`${rows}x${cols} f32_i8 batch ${batch}: out[${i}] ${got[i]}, quantize + int8 ${want[i]}`);
      }
      fused.set(batch, timeCalls(() => ok(call(), `${build} f32_i8`), budgetMs));
      process.stderr.write('.');
    }
  }
  // Batch reuse, measured interleaved (targets (7) and (8)): batch 1 and batch b of the same kernel
  // alternate call by call, and each round's ratio (batch-1 time x b / batch-b time) is kept; their
  // median does not move with the machine's minute-to-minute speed the way two lines timed apart do.
  const reuse = new Map();
  if (!simdRuns && batches.includes(1) && rows === 4096 && cols === 4096) {
    const f = formats[0];
    const mk = (kind, b) =>
      kind === 'int8'
        ? () => ok(x.tl_matmul_i8(f.m, px8, b * cols, b, pxs, pacc, 0, b * rows), `${build} reuse`)
        : () => ok(x.tl_matmul_f32(f.m, pxf, b * cols, b, pout, b * rows), `${build} reuse`);
    for (const kind of ['int8', 'float']) {
      for (const b of batches.filter((v) => v >= 8)) {
        const one = mk(kind, 1), many = mk(kind, b);
        one(), many();
        const rs = [];
        const t0 = performance.now();
        while (rs.length < 9 || (performance.now() - t0 < budgetMs && rs.length < 400)) {
          let a = performance.now();
          one();
          const t1 = performance.now() - a;
          a = performance.now();
          many();
          const tb = performance.now() - a;
          rs.push((t1 * b) / tb);
        }
        rs.sort((p, q) => p - q);
        reuse.set(`${kind}/${b}`, { ratio: rs[rs.length >> 1], rounds: rs.length });
        process.stderr.write('.');
      }
    }
  }
  for (const f of formats) x.tl_matrix_free(f.m);
  return { lines, formats, x8, xs, fused, reuse };
}

/** Scalar line against the SIMD line: identical accumulators, or floats within the tolerance. */
function compareWithSimd(label, { rows }, batch, f, kind, line, simdLine, act) {
  if (kind !== 'float') {
    const a = line.acc;
    const s = simdLine.acc;
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== s[i]) {
        fail(`${label}: acc[${Math.floor(i / rows)}][${i % rows}] = ${a[i]}, wasm SIMD ${s[i]}`);
      }
    }
  } else {
    const a = line.out;
    const s = simdLine.out;
    let worst = 0;
    for (let i = 0; i < a.length; i++) {
      const b = Math.floor(i / rows);
      const tol = 1e-5 * Math.abs(f.scale) * act.xabs[b];
      const d = Math.abs(a[i] - s[i]);
      if (!(d <= tol)) {
        fail(`${label}: out[${b}][${i % rows}] = ${a[i]}, wasm SIMD ${s[i]} ` +
          `(difference ${d}, allowed 1e-5 * scale * sum|x| = ${tol})`);
      }
      worst = Math.max(worst, d / (Math.abs(f.scale) * act.xabs[b]));
    }
    line.floatDiff = worst;
  }
  linesChecked++;
}

/** SIMD line against plain JS sums at 16 spots, from the unpacked trits. */
function spotCheck(label, { rows, cols }, batch, f, kind, line, act, x8, trits) {
  for (const [b, r] of spotPositions(rows, batch)) {
    const t = trits.get(r);
    let ref = 0;
    let mag = 0;
    if (kind === 'binary') {
      for (let c = 0; c < cols; c++) if ((act.bits[b * act.xb + (c >> 3)] >> (c & 7)) & 1) ref += t[c];
    } else if (kind === 'sparse') {
      for (let j = act.offs[b]; j < act.offs[b + 1]; j++) ref += t[act.idx[j]];
    } else if (kind === 'int8') {
      for (let c = 0; c < cols; c++) ref += x8[b * cols + c] * t[c];
    } else {
      for (let c = 0; c < cols; c++) {
        ref += act.xf[b * cols + c] * t[c];
        mag += Math.abs(act.xf[b * cols + c] * t[c]);
      }
      ref *= f.scale;
      mag *= Math.abs(f.scale);
    }
    const i = b * rows + r;
    if (kind !== 'float') {
      if (line.acc[i] !== ref) fail(`${label}: wasm SIMD acc[${b}][${r}] = ${line.acc[i]}, plain JS sum ${ref}`);
    } else if (!(Math.abs(line.out[i] - ref) <= (1e-5 * Math.sqrt(cols) + 1e-6) * mag)) {
      fail(`${label}: wasm SIMD out[${b}][${r}] = ${line.out[i]}, float64 JS sum ${ref} (sum |w x| ${mag})`);
    }
  }
}

// --- native ---------------------------------------------------------------------------------------------

function runNative({ rows, cols }) {
  if (!existsSync(NATIVE)) return { skipped: `${NATIVE} not found (cmake -S . -B build && cmake --build build)` };
  const p = spawnSync(NATIVE, [String(rows), String(cols), batches.join(','), String(budgetMs)], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (p.status !== 0) return { skipped: `bench_kernels_native exited with ${p.status ?? p.signal} ${p.stderr ?? ''}`.trim() };
  const lines = new Map();
  for (const l of p.stdout.split('\n')) {
    if (!l.startsWith('{')) continue;
    const j = JSON.parse(l);
    lines.set(`${j.format}/${j.batch}/${j.kind}`, { best: j.best_us, median: j.median_us, reps: j.reps, sum: j.checksum });
  }
  return { lines };
}

// --- one shape -------------------------------------------------------------------------------------------

const bandwidthCache = new Map();
/** Read bandwidth (baselines.readBandwidth) over a buffer of `bytes`, measured once per size. */
async function bandwidth(bytes) {
  if (!bandwidthCache.has(bytes)) {
    try {
      bandwidthCache.set(bytes, await readBandwidth(bytes));
    } catch (e) {
      bandwidthCache.set(bytes, { error: e.message });
    }
  }
  return bandwidthCache.get(bytes);
}

async function runShape(shape) {
  const { rows, cols } = shape;
  const tag = `${rows}x${cols}`;
  const t0 = performance.now();
  const step = (what) => process.stderr.write(`\n[${tag}] ${what} (${((performance.now() - t0) / 1e3).toFixed(1)} s) `);
  const act = makeActivations(cols);
  const spotRows = new Set();
  for (const batch of batches) for (const [, r] of spotPositions(rows, batch)) spotRows.add(r);

  step('native');
  const native = runNative(shape);
  step('wasm SIMD');
  const simd = await runBuild('simd', shape, act, spotRows, null);
  step('wasm scalar');
  const scalar = await runBuild('scalar', shape, act, spotRows, simd);
  let relaxed = null;
  if (withRelaxed) {
    step('wasm relaxed');
    relaxed = await runBuild('relaxed', shape, act, spotRows, simd);
  }

  // Native checksums, and the three formats against each other.
  for (const batch of batches) {
    for (const kind of KINDS.filter((k) => k !== 'float')) {
      const first = simd.lines.get(`${FORMATS[0].name}/${batch}/${kind}`).sum;
      for (const f of FORMATS) {
        const key = `${f.name}/${batch}/${kind}`;
        const s = simd.lines.get(key).sum;
        if (s !== first) fail(`${tag} ${kind} batch ${batch}: ${f.name} checksum ${s}, ${FORMATS[0].name} ${first}`);
        const nat = native.lines?.get(key);
        if (native.lines && !nat) fail(`${tag} ${key}: bench_kernels_native printed no line`);
        if (nat && nat.sum !== s) {
          fail(`${tag} ${f.name} ${kind} batch ${batch}: wasm checksum ${s}, native checksum ${nat.sum}`);
        }
      }
    }
  }
  for (const line of simd.lines.values()) {
    delete line.acc;
    delete line.out;
  }

  step('bandwidth');
  for (const f of simd.formats) f.bw = await bandwidth(f.bytes);

  const baselines = new Map(); // batch -> [{ name, ... }]
  if (withBaselines) {
    for (const batch of batches) {
      const list = [];
      for (const [name, run] of [
        ['ORT MatMul f32', () => ortMatMulF32({ rows, cols, batch, timing: baselineTiming })],
        ['ORT MatMulNBits 2-bit', () => ortMatMulNBits({ rows, cols, batch, bits: 2, timing: baselineTiming })],
        ['own f32 SIMD128 GEMV', () => ownF32Gemv({ rows, cols, batch, timing: baselineTiming })],
      ]) {
        step(`${name}, batch ${batch}`);
        try {
          const r = await run();
          list.push({ name, best: r.bestMs * 1e3, median: r.medianMs * 1e3, reps: r.reps, bytes: r.weightBytes, createMs: r.createMs });
        } catch (e) {
          list.push({ name, error: e.message.split('\n')[0] });
        }
      }
      baselines.set(batch, list);
    }
    for (const list of baselines.values()) {
      for (const b of list) if (b.bytes) b.bw = await bandwidth(b.bytes);
    }
  }
  step('done');
  process.stderr.write('\n');
  return { shape, simd, scalar, relaxed, native, baselines, seconds: (performance.now() - t0) / 1e3 };
}

const baselineTiming = { warmup: 1, budgetMs, minReps: 3, maxReps: 200 };

// --- the run ---------------------------------------------------------------------------------------------

console.log(
  `tilelli kernel bench: Node ${process.version}, ${cpus()[0]?.model ?? '?'} (${cpus().length} cores), every build on 1 thread ` +
    '(the single-threaded files; 1 thread vs N of the threaded builds: bench/threads.mjs)',
);
console.log(withRelaxed
  ? `relaxed SIMD: ${process.env.TILELLI_KERNELS_CHILD ? `this Node validates it only with ${process.execArgv.filter((a) => RELAXED_FLAGS.includes(a)).join(' ')}: the bench re-ran itself with them (all builds)` : 'validated by this Node'}`
  : `relaxed SIMD: skipped (${opts['no-relaxed'] ? '--no-relaxed' : 'this Node does not run it'})`);
console.log(
  `shapes ${shapes.map((s) => `${s.rows}x${s.cols}`).join(', ')}; batches ${batches.join(', ')}; ` +
    `${budgetMs} ms of timed calls per line (at least 3 calls, 1 when a call exceeds the budget)`,
);
let ortNote = 'skipped (--no-baselines)';
if (withBaselines) {
  try {
    const ort = await loadOrt();
    const o = await ortRunOverhead();
    ortNote = `onnxruntime-web ${ort.env.versions?.web ?? '?'}, wasm backend, 1 thread; session.run fixed cost (1x1 MatMul) ${(o.medianMs * 1e3).toFixed(1)} us`;
  } catch (e) {
    ortNote = e.message;
  }
}
console.log(`baselines: ${ortNote}`);
if (!existsSync(NATIVE)) console.log(`native: skipped: ${NATIVE} not found (cmake --build build)`);

const results = [];
for (const shape of shapes) results.push(await runShape(shape));
for (const r of results) if (r.native.skipped) console.log(`native ${r.shape.rows}x${r.shape.cols}: skipped: ${r.native.skipped}`);

console.log(
  `\nchecks passed: ${linesChecked} lines; wasm SIMD, scalar${withRelaxed ? ' and relaxed' : ''} give identical int32 accumulators (binary, sparse, int8) ` +
    `equal to the native checksums${results.some((r) => r.native.skipped) ? ' (where native ran)' : ''}, the same in all three ` +
    'formats and at 16 spots to plain JS; float outputs agree within 1e-5 * scale * sum|x| ' +
    `(largest difference seen: ${floatWorst().toExponential(1)} * scale * sum|x|).`,
);

function floatWorst() {
  let w = 0;
  for (const r of results) for (const l of r.scalar.lines.values()) if (l.floatDiff !== undefined) w = Math.max(w, l.floatDiff);
  return w;
}

// --- the table ---------------------------------------------------------------------------------------------

function num(v, digits = 2) {
  if (v === undefined || v === null || !Number.isFinite(v)) return '';
  if (v >= 1000) return v.toFixed(0);
  if (v >= 100) return v.toFixed(1);
  if (v >= 10) return v.toFixed(digits === 0 ? 0 : 1);
  return v.toFixed(digits);
}
const us = (t) => num(t, 2);
const gw = (weights, t) => (t ? num(weights / t / 1e3, 2) : ''); // weights per us / 1e3 = G weights/s
const gbs = (bytes, t) => (t ? num(bytes / t / 1e3, 2) : ''); // bytes per us / 1e3 = GB/s
const pct = (bytes, t, bw) => (t && bw && bw.medianGbps ? num((100 * bytes) / t / 1e3 / bw.medianGbps, 1) : '');
const ratio = (a, b) => (a && b ? `${num(a / b, 2)}x` : '');

const header = [
  'rows x cols', 'batch', 'format', 'kind',
  'SIMD 1T us med', 'best', 'G w/s', 'GB/s', '% bw',
  'scalar 1T us med', 'best', 'G w/s', 'GB/s', '% bw',
  'native us med', 'best', 'G w/s', 'GB/s',
  'SIMD/native', 'vs ORT f32',
  'relaxed 1T us med', 'G w/s', '% bw', 'relaxed/SIMD',
];
const table = [];
const failures = []; // baselines that could not run, listed under the table
for (const r of results) {
  const { rows, cols } = r.shape;
  for (const batch of batches) {
    const weights = rows * cols * batch;
    const ortF32 = r.baselines.get(batch)?.find((b) => b.name === 'ORT MatMul f32' && !b.error);
    for (const f of r.simd.formats) {
      for (const kind of KINDS) {
        const key = `${f.name}/${batch}/${kind}`;
        const s = r.simd.lines.get(key);
        const c = r.scalar.lines.get(key);
        const n = r.native.lines?.get(key);
        const x = r.relaxed?.lines.get(key);
        table.push([
          `${rows} x ${cols}`, batch, f.name, KIND_LABEL[kind],
          us(s.median), us(s.best), gw(weights, s.median), gbs(f.bytes, s.median), pct(f.bytes, s.median, f.bw),
          us(c.median), us(c.best), gw(weights, c.median), gbs(f.bytes, c.median), pct(f.bytes, c.median, f.bw),
          n ? us(n.median) : '', n ? us(n.best) : '', n ? gw(weights, n.median) : '', n ? gbs(f.bytes, n.median) : '',
          n ? ratio(n.median, s.median) : '', ortF32 ? ratio(ortF32.median, s.median) : '',
          x ? us(x.median) : '', x ? gw(weights, x.median) : '', x ? pct(f.bytes, x.median, f.bw) : '', x ? ratio(s.median, x.median) : '',
        ]);
      }
    }
    for (const b of r.baselines.get(batch) ?? []) {
      const row = [`${rows} x ${cols}`, batch, 'baseline', b.name];
      if (b.error) {
        row.push('FAILED');
        failures.push(`${rows} x ${cols} batch ${batch} ${b.name}: ${b.error}`);
      }
      else {
        row.push(us(b.median), us(b.best), gw(weights, b.median), gbs(b.bytes, b.median), pct(b.bytes, b.median, b.bw));
        row.push('', '', '', '', '', '', '', '', '', '', ortF32 ? ratio(ortF32.median, b.median) : '');
      }
      table.push(row);
    }
    table.push(null); // a rule between groups
  }
}
table.pop();

const widths = header.map((h, i) => Math.max(h.length, ...table.filter(Boolean).map((row) => String(row[i] ?? '').length)));
const line = (cells) =>
  '| ' + cells.map((v, i) => (i < 4 ? String(v ?? '').padEnd(widths[i]) : String(v ?? '').padStart(widths[i]))).join(' | ') + ' |';
const rule = '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|';
console.log();
console.log(line(header));
console.log(rule);
for (const row of table) console.log(row ? line(row) : rule);

console.log(`
us med / best: microseconds per call, median and best of the timed calls. G w/s: rows * cols * batch / median,
in 1e9 weights per second. GB/s: the matrix's packed bytes (tl_matrix_data_bytes) / median, 1e9 bytes per
second. % bw: that GB/s over the wasm read bandwidth measured in this run (baselines.readBandwidth, median,
one pass of v128 loads over a buffer of the same size, from the same cache level as a hot kernel). SIMD/native:
wasm SIMD speed as a fraction of native (native median / SIMD median). vs ORT f32: onnxruntime-web MatMul
float32 median (same shape and batch) / this line's median: above 1 is faster than ORT. relaxed: the
relaxed-SIMD build (dist/tilelli-relaxed.wasm); relaxed/SIMD: SIMD median / relaxed median.
Baseline lines: time of session.run (ORT, including its JS copies) or of bench_f32_gemm; their GB/s and % bw
use their own weight bytes (float32: 4 per weight; MatMulNBits: 2-bit codes + a float32 scale per 32).
Calls under ${TINY_MS * 1e3} us are timed in groups of up to 1000 and divided; native times single calls.`);
for (const f of failures) console.log(`Baseline FAILED: ${f}`);
const bwLines = [...bandwidthCache.entries()]
  .sort((a, b) => a[0] - b[0])
  .map(([bytes, bw]) =>
    bw.error ? `${(bytes / 2 ** 20).toFixed(2)} MiB: FAILED ${bw.error}` : `${(bytes / 2 ** 20).toFixed(2)} MiB ${num(bw.medianGbps, 1)} GB/s`,
  );
console.log(`Read bandwidth (median): ${bwLines.join('; ')}.`);
console.log(`Run time per shape: ${results.map((r) => `${r.shape.rows}x${r.shape.cols} ${r.seconds.toFixed(0)} s`).join(', ')}.`);

// --- targets ---------------------------------------------------------------------------------------------

// --- float and batching summary ---------------------------------------------------------------------------

console.log('\nFloat and batching, wasm SIMD, G weights/s (rows * cols * batch / median) and the ratio to batch 1 of the');
console.log('same kernel; f32->i8: tl_matmul_f32_i8 (quantize + int8 in one call, i2); own f32: bench_f32_gemm;');
console.log('ORT: onnxruntime-web MatMul f32; limit: i2 packed bytes / measured read bandwidth (the floor of one pass).');
for (const r of results) {
  const { rows, cols } = r.shape;
  const gws = (batch, t) => (t ? rows * cols * batch / t / 1e3 : undefined);
  const cell = (batch, key) => {
    const t = r.simd.lines.get(key.replace('#', batch))?.median;
    const t1 = r.simd.lines.get(key.replace('#', 1))?.median;
    const g = gws(batch, t);
    return g === undefined ? '' : `${num(g, 2)}${t1 && batch !== 1 ? ` (${num((t1 * batch) / t, 2)}x)` : ''}`;
  };
  const i2 = r.simd.formats[0];
  const limit = i2.bw?.medianGbps ? num(gws(1, i2.bytes / i2.bw.medianGbps / 1e3), 1) : '';
  console.log(`  ${rows}x${cols} (limit ${limit} G w/s at batch 1):`);
  for (const batch of batches) {
    const own = r.baselines.get(batch)?.find((b) => b.name === 'own f32 SIMD128 GEMV' && !b.error);
    const ort = r.baselines.get(batch)?.find((b) => b.name === 'ORT MatMul f32' && !b.error);
    const fz = r.simd.fused?.get(batch);
    const f1 = r.simd.fused?.get(1);
    console.log(
      `    batch ${String(batch).padEnd(3)} float i2 ${cell(batch, 'i2/#/float')}, tq1 ${cell(batch, 'tq1/#/float')}, ` +
        `bitplane ${cell(batch, 'bitplane/#/float')} | int8 i2 ${cell(batch, 'i2/#/int8')} | f32->i8 ${
          fz ? `${num(gws(batch, fz.median), 2)}${batch !== 1 && f1 ? ` (${num((f1.median * batch) / fz.median, 2)}x)` : ''}` : ''
        } | own f32 ${own ? num(gws(batch, own.median), 2) : '-'} | ORT ${ort ? num(gws(batch, ort.median), 2) : '-'}`,
    );
  }
}

console.log('\nTargets (from this run; a missed target does not change the exit status):');
const at = results.find((r) => r.shape.rows === 4096 && r.shape.cols === 4096);
const b1 = batches.includes(1);
function target(name, value, goal, detail) {
  if (value === undefined || !Number.isFinite(value)) {
    console.log(`  ${name}: NOT MEASURED (${detail})`);
    return;
  }
  console.log(`  ${name}: ${value >= goal ? 'MET' : 'NOT MET'}: ${num(value, 2)}x (target >= ${goal}x); ${detail}`);
}
if (!at || !b1) {
  console.log('  (1)-(3) need 4096x4096 at batch 1 in --shapes and --batches: NOT MEASURED');
} else {
  const get = (f, kind) => ({
    s: at.simd.lines.get(`${f}/1/${kind}`),
    c: at.scalar.lines.get(`${f}/1/${kind}`),
    n: at.native.lines?.get(`${f}/1/${kind}`),
  });
  const W = 4096 * 4096;
  const gws = (t) => `${num(W / t / 1e3, 2)} G w/s`;
  const i8 = get('i2', 'int8');
  const ort = at.baselines.get(1)?.find((b) => b.name === 'ORT MatMul f32' && !b.error);
  target(
    '(1a) int8 x ternary GEMV (i2, batch 1, 4096x4096) vs ORT MatMul f32',
    ort ? ort.median / i8.s.median : undefined,
    15,
    ort
      ? `wasm SIMD ${us(i8.s.median)} us (${gws(i8.s.median)}) vs ORT ${us(ort.median)} us (${gws(ort.median)})`
      : 'ORT MatMul f32 did not run',
  );
  target(
    '(1b) the same kernel, wasm SIMD speed / native speed',
    i8.n ? i8.n.median / i8.s.median : undefined,
    0.5,
    i8.n ? `wasm SIMD ${us(i8.s.median)} us vs native ${us(i8.n.median)} us` : 'native did not run',
  );
  const pop = get('bitplane', 'binary');
  const best8 = FORMATS.map((f) => [f.name, get(f.name, 'int8').s.median]).sort((a, b) => a[1] - b[1])[0];
  target(
    '(2) binary x ternary GEMV (bitplane, batch 1: the column copy; popcount from batch 4) weights/s vs the int8 kernel (i2)',
    i8.s.median / pop.s.median,
    2,
    `${gws(pop.s.median)} (${us(pop.s.median)} us) vs ${gws(i8.s.median)} (${us(i8.s.median)} us); ` +
      `fastest int8 format here: ${best8[0]}, ${gws(best8[1])}`,
  );
  const sp = get('bitplane', 'sparse');
  target(
    '(3) sparse 2% vs dense binary (bitplane), batch 1',
    pop.s.median / sp.s.median,
    5,
    `sparse ${us(sp.s.median)} us vs dense ${us(pop.s.median)} us (wasm SIMD; native: ${
      sp.n && pop.n ? `${us(sp.n.median)} vs ${us(pop.n.median)} us, ${ratio(pop.n.median, sp.n.median)}` : 'not run'
    })`,
  );
}
{
  // (5)-(8): the float kernel and batching (issue "Packed models must beat float32 end to end").
  const G = (w, t) => (t ? w / t / 1e3 : undefined);
  const f32At = (r, batch) => r.baselines.get(batch)?.find((b) => b.name === 'own f32 SIMD128 GEMV' && !b.error);
  const i2b1 = at?.simd.lines.get('i2/1/float');
  if (!at || !b1) console.log('  (5) float GEMV at 4096x4096 batch 1: NOT MEASURED (needs 4096x4096 and batch 1)');
  else {
    const W = 4096 * 4096;
    const g = G(W, i2b1.median);
    const others = FORMATS.slice(1).map((f) => `${f.name} ${num(G(W, at.simd.lines.get(`${f.name}/1/float`).median), 2)}`);
    const bw = at.simd.formats[0].bw;
    console.log(
      `  (5) float x ternary GEMV, i2, 4096x4096, wasm SIMD: ${g >= 10 ? 'MET' : 'NOT MET'}: ${num(g, 2)} G w/s ` +
        `(target >= 10; ${others.join(', ')} G w/s; median ${us(i2b1.median)} us, best ${us(i2b1.best)} us). ` +
        (bw?.medianGbps
          ? `Physical limit: ${at.simd.formats[0].bytes} packed bytes / ${num(bw.medianGbps, 1)} GB/s read = ` +
            `${us(at.simd.formats[0].bytes / bw.medianGbps / 1e3)} us, ${num(G(W, at.simd.formats[0].bytes / bw.medianGbps / 1e3), 1)} G w/s`
          : 'read bandwidth not measured'),
    );
  }
  const slow = [];
  let worst;
  for (const r of results) {
    const own = f32At(r, 1);
    const s = r.simd.lines.get('i2/1/float');
    if (!own || !s) continue;
    const ratioF = own.median / s.median;
    if (worst === undefined || ratioF < worst) worst = ratioF;
    if (ratioF < 1) slow.push(`${r.shape.rows}x${r.shape.cols} ${num(ratioF, 2)}x`);
  }
  target(
    '(6) float GEMV (i2, batch 1) vs own f32 SIMD128 GEMV, the slowest shape',
    worst,
    1,
    worst === undefined ? 'own f32 GEMV did not run (--no-baselines?)' : slow.length ? `slower at: ${slow.join(', ')}` : 'faster on every shape',
  );
  for (const [n, kind, goal] of [['(7)', 'int8', 2], ['(8)', 'float', 1.5]]) {
    if (!at || !b1) {
      console.log(`  ${n} ${kind} GEMM reuse: NOT MEASURED (needs 4096x4096 and batch 1)`);
      continue;
    }
    const base = at.simd.lines.get(`i2/1/${kind}`).median;
    const big = batches.filter((b) => b >= 8);
    if (!big.length) {
      console.log(`  ${n} ${kind} GEMM reuse: NOT MEASURED (no batch >= 8)`);
      continue;
    }
    // judged on the interleaved rounds (runBuild's `reuse`); the ratio of the two lines' medians, timed
    // apart, is shown beside them
    const rs = big.map((b) => [b, at.simd.reuse.get(`${kind}/${b}`), base * b / at.simd.lines.get(`i2/${b}/${kind}`).median]);
    const min = Math.min(...rs.map(([, p]) => p.ratio));
    target(
      `${n} ${kind} GEMM (i2, 4096x4096), weights x batch per second at batch >= 8 over batch 1, interleaved, the lowest`,
      min,
      goal,
      rs.map(([b, p, l]) => `batch ${b} ${num(p.ratio, 2)}x (${p.rounds} rounds; lines ${num(l, 2)}x)`).join(', '),
    );
  }
}
{
  // (R1), (R2): the relaxed-SIMD build (issue 13; its targets are for Chromium: bench/kernels-browser.mjs).
  const x = at?.relaxed?.lines.get('i2/1/int8');
  const s = at?.simd.lines.get('i2/1/int8');
  if (!x || !s) {
    console.log(`  (R1), (R2) relaxed int8 GEMV: NOT MEASURED (${withRelaxed ? 'needs 4096x4096 and batch 1' : 'no relaxed build in this run'})`);
  } else {
    const i2 = at.simd.formats[0];
    target('(R1) int8 x ternary GEMV (i2, batch 1, 4096x4096), relaxed SIMD vs SIMD128, in Node', s.median / x.median, 2,
      `relaxed ${us(x.median)} us vs SIMD128 ${us(s.median)} us`);
    const share = i2.bw?.medianGbps ? i2.bytes / x.median / 1e3 / i2.bw.medianGbps : undefined;
    console.log(`  (R2) the same, share of the read bandwidth of the i2 weights: ${share === undefined ? 'NOT MEASURED' : `${share >= 0.4 ? 'MET' : 'NOT MET'}: ` +
      `${num(100 * share, 1)}% (target >= 40%; ${gbs(i2.bytes, x.median)} GB/s of ${num(i2.bw.medianGbps, 1)} GB/s read)`}`);
  }
}
// (4): reaching this line means every equality check passed.
console.log(
  `  (4) scalar wasm correct everywhere: MET: ${linesChecked} lines, its int32 accumulators identical to wasm SIMD's ` +
    'and to the native checksums, its float outputs within the tolerance. Speed, wasm SIMD over wasm scalar ' +
    '(scalar median / SIMD median), geometric mean [min, max] over all shapes, batches and formats:',
);
for (const kind of KINDS) {
  const rs = [];
  for (const r of results) {
    for (const [key, s] of r.simd.lines) if (key.endsWith(`/${kind}`)) rs.push(r.scalar.lines.get(key).median / s.median);
  }
  const g = Math.exp(rs.reduce((a, v) => a + Math.log(v), 0) / rs.length);
  console.log(`      ${KIND_LABEL[kind].padEnd(9)} ${num(g, 2)}x [${num(Math.min(...rs), 2)}x, ${num(Math.max(...rs), 2)}x]`);
}
if (at && b1) {
  const cells = [];
  for (const f of FORMATS) {
    for (const kind of KINDS) {
      const s = at.simd.lines.get(`${f.name}/1/${kind}`);
      const c = at.scalar.lines.get(`${f.name}/1/${kind}`);
      cells.push(`${f.name} ${kind} ${us(c.median)} vs ${us(s.median)} us`);
    }
  }
  console.log(`      at 4096x4096 batch 1, scalar vs SIMD: ${cells.join('; ')}`);
}
