// baselines.mjs — the numbers a ternary GEMV/GEMM kernel is compared with, measured in the same
// process as the kernel: onnxruntime-web (wasm backend, one thread) MatMul float32 and MatMulNBits,
// our own float32 WebAssembly SIMD128 GEMV/GEMM, and the SIMD128 read bandwidth (the floor).
//
//   node bench/baselines.mjs [--shapes 1024x1024,4096x4096,11008x4096] [--batches 1,8,64]
//                            [--budget 1500] [--bits 2] [--only ort-f32,ort-nbits,own-f32,bandwidth]
//
// Every function below is importable (bench/kernels.mjs prints them beside its own numbers):
//
//   ortMatMulF32({ rows, cols, batch })         Y[batch, rows] = X[batch, cols] @ W[cols, rows], float32
//   ortMatMulNBits({ rows, cols, batch, bits }) com.microsoft MatMulNBits, block 32, ternary codes
//   ownF32Gemv({ rows, cols, batch })           bench/f32_gemv.c: y[b][r] = sum_c W[r][c] x[b][c]
//   f32Gemv(rows, cols, batch)                  the same, positional
//   readBandwidth(bytes)                        bench/bandwidth.c: one pass of v128 loads over `bytes`
//                                               (as 1 and as 4 concurrent streams, the faster reported)
//   measureReadBandwidth(bytes)                 that pass's best GB/s, as a number
//   ortRunOverhead()                            session.run on a 1 x 1 MatMul: ORT's fixed cost per call
//   selfCheck()                                 all of the above on small odd shapes against plain JS
//
// Each timing function returns { bestMs, medianMs, reps, ... } and releases what it allocated (ORT
// session, wasm buffers) before returning, so they can be called in sequence in one process. Each one
// first checks its own output against a float64 JS dot product at a few spots and throws if it is
// wrong: a time for a wrong result is worthless. Wasm memory never shrinks: after an 11008 x 4096
// float32 run the ORT and kernel modules keep their peak heap (a few hundred MB) for the process.
//
// Timing: `warmup` untimed calls, then one call to estimate the cost, then reps = budgetMs / cost
// (clamped to [minReps, maxReps]) timed calls; best and median of those. Times are wall-clock
// (performance.now) around one call; for ORT that is `await session.run(feeds)`, which includes its
// JS-side work (copying X into its heap and Y out); ortRunOverhead() shows how much that is.
//
// onnxruntime-web in Node: `import('onnxruntime-web')` resolves (package "exports", condition "node")
// to dist/ort.node.min.mjs, whose wasm backend imports dist/ort-wasm-simd-threaded.mjs and reads
// dist/ort-wasm-simd-threaded.wasm from the package directory: no network, no wasmPaths needed.
// env.wasm.numThreads = 1 means no worker threads; env.wasm.simd = true (the only build shipped is
// SIMD). It is a devDependency; when it is missing the ORT rows say so and the rest still runs.
//
// The kernel wasm (bench/f32_gemv.c + bench/bandwidth.c) is built by bench/bench.cmake into
// build/bench-kernels.wasm. Looked for at $TILELLI_BENCH_WASM, then build/bench-kernels.wasm; when
// neither exists and emcc is on the machine, it is compiled into a temporary folder with the same flags.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { matmulF32Model, matmulNBitsModel, nbitsLayout, packNBits } from './ort-models.mjs';
import { benchArgs } from './args.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BENCH = fileURLToPath(new URL('.', import.meta.url));

/** Default timing: 2 warm-up calls, then as many calls as fit in ~1.5 s, at least 5, at most 200. */
export const DEFAULT_TIMING = Object.freeze({ warmup: 2, budgetMs: 1500, minReps: 5, maxReps: 200 });

// --- shared helpers ----------------------------------------------------------------------------

/** xorshift32 uniform floats in [-1, 1) (the stream of bench/quant.mjs), written into `out`. */
function fillUniform(out, seed) {
  let x = seed | 0 || 1;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x | 0) / 2147483648;
  }
  return out;
}

/** Run fn (sync or async) warmup times, estimate its cost, then time reps calls. */
async function timeCalls(fn, timing = {}) {
  const { warmup, budgetMs, minReps, maxReps } = { ...DEFAULT_TIMING, ...timing };
  for (let i = 0; i < warmup; i++) await fn();
  const t0 = performance.now();
  await fn();
  const estimate = Math.max(performance.now() - t0, 1e-3);
  const reps = Math.min(maxReps, Math.max(minReps, Math.floor(budgetMs / estimate)));
  const times = new Array(reps);
  for (let i = 0; i < reps; i++) {
    const a = performance.now();
    const r = fn();
    if (r && typeof r.then === 'function') await r;
    times[i] = performance.now() - a;
  }
  times.sort((a, b) => a - b);
  const mid = reps >> 1;
  const medianMs = reps % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
  return { bestMs: times[0], medianMs, reps };
}

/** A few (b, r) output positions to check: the corners, then spread pseudo-randomly. */
export function spotPositions(rows, batch, count = 16) {
  const out = [
    [0, 0],
    [batch - 1, rows - 1],
    [0, rows - 1],
    [batch - 1, 0],
  ];
  let s = 0x9e3779b9;
  while (out.length < count) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push([s % batch, Math.floor(s / batch) % rows]);
  }
  return out;
}

/**
 * Check y against float64 dot products at a few spots. weight(r, c) gives W's element for output r,
 * input c. The tolerance scales with sum |w x| (float32 rounding of a long sum in any order).
 * Throws with the first mismatch; returns the largest relative error seen otherwise.
 */
function checkSpots(label, y, x, weight, rows, cols, batch) {
  let worst = 0;
  for (const [b, r] of spotPositions(rows, batch)) {
    let ref = 0;
    let mag = 0;
    for (let c = 0; c < cols; c++) {
      const p = weight(r, c) * x[b * cols + c];
      ref += p;
      mag += Math.abs(p);
    }
    const got = y[b * rows + r];
    const err = Math.abs(got - ref) / (mag + 1e-30);
    if (!(err <= 1e-5 * Math.sqrt(cols) + 1e-6)) {
      throw new Error(`${label}: wrong result at y[${b}][${r}]: got ${got}, expected ${ref} (|w x| sum ${mag})`);
    }
    worst = Math.max(worst, err);
  }
  return worst;
}

function checkShape({ rows, cols, batch }) {
  for (const [k, v] of Object.entries({ rows, cols, batch })) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${k} must be a positive integer, got ${v}`);
  }
}

// --- onnxruntime-web ---------------------------------------------------------------------------

let ortPromise = null;

/** onnxruntime-web, configured once for one thread; throws a readable error when not installed. */
export function loadOrt() {
  ortPromise ??= import('onnxruntime-web').then(
    (ort) => {
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.simd = true;
      ort.env.wasm.proxy = false;
      ort.env.logLevel = 'error';
      return ort;
    },
    (e) => {
      ortPromise = null;
      throw new Error(`onnxruntime-web is not installed (npm install): ${e.message}`);
    },
  );
  return ortPromise;
}

/** Session options, a fresh object each time: InferenceSession.create adds fields to the one it gets. */
function ortSessionOptions() {
  return {
    executionProviders: ['wasm'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  };
}

/** Create a session from model bytes, time session.run on X, check Y, release the session. */
async function timeOrtModel(label, modelBytes, x, shape, weight, timing) {
  const { rows, cols, batch } = shape;
  const ort = await loadOrt();
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(modelBytes, ortSessionOptions());
  const createMs = performance.now() - t0;
  try {
    const feeds = { X: new ort.Tensor('float32', x, [batch, cols]) };
    let last = null;
    const t = await timeCalls(async () => {
      last = await session.run(feeds);
    }, timing);
    const y = last.Y;
    if (y.dims.length !== 2 || y.dims[0] !== batch || y.dims[1] !== rows) {
      throw new Error(`${label}: output dims [${y.dims}], expected [${batch}, ${rows}]`);
    }
    const maxRelErr = checkSpots(label, y.data, x, weight, rows, cols, batch);
    return { ...t, createMs, maxRelErr, ortVersion: ort.env.versions?.web };
  } finally {
    await session.release();
  }
}

/**
 * onnxruntime-web MatMul, float32: Y[batch, rows] = X[batch, cols] @ W, W a [cols, rows] initializer.
 * Weight bytes: rows * cols * 4 (180 MB at 11008 x 4096).
 */
export async function ortMatMulF32({ rows, cols, batch, timing } = {}) {
  checkShape({ rows, cols, batch });
  const w = fillUniform(new Float32Array(rows * cols), 0x5eed1); // [cols][rows]
  const x = fillUniform(new Float32Array(batch * cols), 0x5eed2);
  let model = matmulF32Model({ rows, cols, weights: w });
  const modelMB = model.length / 1e6;
  const bytes = model;
  model = null; // only the session holds the bytes from here on
  const r = await timeOrtModel('ort MatMul f32', bytes, x, { rows, cols, batch }, (n, k) => w[k * rows + n], timing);
  return { ...r, modelMB, weightBytes: rows * cols * 4 };
}

/**
 * onnxruntime-web com.microsoft MatMulNBits: Y[batch, rows] = X[batch, cols] @ dequant(B)^T with
 * `bits`-bit codes in blocks of `blockSize` along K = cols, one float32 scale per block, no zero
 * points (so the default 2^(bits-1)). The codes are ternary (zero point -1, 0, +1), as a BitNet
 * layer stored this way would be; any codes cost the same. accuracyLevel 4 lets ORT quantize X to
 * int8 where it has such a kernel (in 1.30's wasm build it runs the same dequantizing path).
 */
export async function ortMatMulNBits({ rows, cols, batch, bits = 2, blockSize = 32, accuracyLevel = 0, timing } = {}) {
  checkShape({ rows, cols, batch });
  const { nBlocks } = nbitsLayout(cols, bits, blockSize);
  const zp = 1 << (bits - 1);
  const codes = new Uint8Array(rows * cols); // [rows][cols]: zp - 1, zp, zp + 1
  let s = 0x2545f491;
  for (let i = 0; i < codes.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    codes[i] = zp - 1 + ((s >>> 0) % 3);
  }
  const scales = new Float32Array(rows * nBlocks);
  for (let i = 0; i < scales.length; i++) scales[i] = 0.02 + ((i * 7919) % 101) * 1e-4;
  const x = fillUniform(new Float32Array(batch * cols), 0x5eed3);
  const packed = packNBits(codes, rows, cols, bits, blockSize);
  const model = matmulNBitsModel({ rows, cols, bits, blockSize, packed, scales, accuracyLevel });
  const weight = (n, k) => (codes[n * cols + k] - zp) * scales[n * nBlocks + Math.floor(k / blockSize)];
  const r = await timeOrtModel(`ort MatMulNBits ${bits}-bit`, model, x, { rows, cols, batch }, weight, timing);
  return { ...r, bits, blockSize, accuracyLevel, modelMB: model.length / 1e6, weightBytes: packed.length + scales.length * 4 };
}

/** session.run on a 1 x 1 MatMul: what ORT costs per call before any arithmetic. */
export async function ortRunOverhead({ timing } = {}) {
  const w = Float32Array.of(0.5);
  const r = await timeOrtModel(
    'ort overhead',
    matmulF32Model({ rows: 1, cols: 1, weights: w }),
    Float32Array.of(3),
    { rows: 1, cols: 1, batch: 1 },
    () => 0.5,
    { budgetMs: 300, maxReps: 2000, ...timing },
  );
  return r;
}

// --- our kernels: bench/f32_gemv.c and bench/bandwidth.c in one standalone wasm ------------------

/** emcc flags of bench/bench.cmake (keep the two in sync). */
const EMCC_FLAGS = [
  '-O3', '-msimd128', '-std=c11', '-Wall', '-Wextra',
  '-sSTANDALONE_WASM', '--no-entry', '-sALLOW_MEMORY_GROWTH=1', '-sMAXIMUM_MEMORY=4GB', '-sABORTING_MALLOC=0',
  '-sEXPORTED_FUNCTIONS=_malloc,_free,_bench_f32_gemm,_bench_read_sum',
];

/** Path of the kernel wasm: $TILELLI_BENCH_WASM, build/bench-kernels.wasm, or a fresh emcc build. */
function benchWasmPath() {
  const candidates = [process.env.TILELLI_BENCH_WASM, join(ROOT, 'build', 'bench-kernels.wasm')].filter(Boolean);
  for (const p of candidates) if (existsSync(p)) return p;
  const emcc = ['/usr/bin/emcc', 'emcc'].find((e) => spawnSync(e, ['--version'], { stdio: 'ignore' }).status === 0);
  if (!emcc) {
    throw new Error('build/bench-kernels.wasm is missing and emcc is not installed: cmake --build build');
  }
  const dir = mkdtempSync(join(tmpdir(), 'tilelli-bench-'));
  const out = join(dir, 'bench-kernels.wasm');
  const r = spawnSync(emcc, [...EMCC_FLAGS, join(BENCH, 'f32_gemv.c'), join(BENCH, 'bandwidth.c'), '-o', out], {
    env: { ...process.env, NODE_PATH: process.env.NODE_PATH || '/usr/share/nodejs' },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`emcc failed building the bench kernels:\n${r.stderr}`);
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return out;
}

let kernelsPromise = null;

/** The instantiated kernel module: { exports, path }, created once per process. */
export function loadKernels() {
  kernelsPromise ??= (async () => {
    const path = benchWasmPath();
    const module = await WebAssembly.compile(readFileSync(path));
    // Standalone emscripten output imports only a memory-growth notification; give every function
    // import a stub so a rebuild with another emcc does not break instantiation.
    const imports = {};
    for (const imp of WebAssembly.Module.imports(module)) {
      if (imp.kind !== 'function') continue;
      imports[imp.module] ??= {};
      imports[imp.module][imp.name] =
        imp.name === 'emscripten_notify_memory_growth'
          ? () => {}
          : () => {
              throw new Error(`bench kernels called the import ${imp.module}.${imp.name}`);
            };
    }
    const instance = await WebAssembly.instantiate(module, imports);
    instance.exports._initialize?.();
    return { exports: instance.exports, path };
  })().catch((e) => {
    kernelsPromise = null;
    throw e;
  });
  return kernelsPromise;
}

/** malloc in the kernel module, with a clear error instead of a null pointer. */
function wasmAlloc(k, bytes) {
  const p = k.malloc(bytes) >>> 0;
  if (p === 0) throw new Error(`bench kernels: malloc(${bytes}) failed (wasm memory is at most 4 GiB)`);
  return p;
}

/**
 * Our float32 SIMD128 GEMV/GEMM (bench/f32_gemv.c), on data already in wasm memory:
 * y[b][r] = sum_c W[r][c] x[b][c], W row-major [rows, cols]. Times the C call only.
 */
export async function ownF32Gemv({ rows, cols, batch, timing } = {}) {
  checkShape({ rows, cols, batch });
  const { exports: k, path } = await loadKernels();
  const pW = wasmAlloc(k, rows * cols * 4);
  let px = 0;
  let py = 0;
  try {
    px = wasmAlloc(k, batch * cols * 4);
    py = wasmAlloc(k, batch * rows * 4);
    // Views are made after the last malloc: a memory growth detaches older ones.
    const mem = k.memory.buffer;
    const w = fillUniform(new Float32Array(mem, pW, rows * cols), 0x5eed1);
    const x = fillUniform(new Float32Array(mem, px, batch * cols), 0x5eed2);
    const t = await timeCalls(() => k.bench_f32_gemm(pW, px, py, rows, cols, batch), timing);
    const y = new Float32Array(k.memory.buffer, py, batch * rows);
    const maxRelErr = checkSpots('own f32 gemv', y, x, (r, c) => w[r * cols + c], rows, cols, batch);
    return { ...t, maxRelErr, weightBytes: rows * cols * 4, wasm: path };
  } finally {
    if (py) k.free(py);
    if (px) k.free(px);
    k.free(pW);
  }
}

/** ownF32Gemv with positional arguments. */
export function f32Gemv(rows, cols, batch, timing) {
  return ownF32Gemv({ rows, cols, batch, timing });
}

/**
 * Read bandwidth of v128 loads (bench/bandwidth.c) over a buffer of `bytes` bytes, already touched.
 * Measured with the buffer read as 1 and as 4 concurrent streams (segments read in lockstep: from
 * DRAM, several streams are faster; from cache they tie); the result is the stream count with the
 * lower median, and `byStreams` has both. Each timed call makes enough passes to last ~2 ms (so
 * small, cache-resident buffers are not timed by the call overhead); bestMs and medianMs are per
 * pass, gbps = bytes / bestMs, medianGbps = bytes / medianMs (GB = 1e9 bytes).
 */
export async function readBandwidth(bytes, { streams = [1, 4], timing } = {}) {
  if (!Number.isSafeInteger(bytes) || bytes < 16) throw new RangeError(`bytes must be an integer >= 16, got ${bytes}`);
  const { exports: k } = await loadKernels();
  const p = wasmAlloc(k, bytes);
  try {
    const buf = new Uint8Array(k.memory.buffer, p, bytes);
    for (let i = 0; i < bytes; i++) buf[i] = (i * 131 + 7) & 0xff;
    // The kernel's sum, for every stream count, is checked once against the same sum done here.
    let ref = 0;
    const words = bytes >>> 2;
    const dv = new DataView(k.memory.buffer, p, bytes);
    for (let i = 0; i < words; i++) ref = (ref + dv.getUint32(i * 4, true)) >>> 0;
    for (let i = words * 4; i < bytes; i++) ref = (ref + buf[i]) >>> 0;

    const byStreams = {};
    let best = null;
    for (const s of streams) {
      const got = k.bench_read_sum(p, bytes, 1, s) >>> 0;
      if (got !== ref) throw new Error(`read bandwidth kernel (${s} streams): sum ${got}, expected ${ref}`);
      const t0 = performance.now();
      k.bench_read_sum(p, bytes, 1, s);
      const one = Math.max(performance.now() - t0, 1e-4);
      const passes = Math.max(1, Math.min(1 << 16, Math.round(2 / one)));
      const t = await timeCalls(() => k.bench_read_sum(p, bytes, passes, s), { budgetMs: 400, minReps: 10, ...timing });
      const r = {
        bestMs: t.bestMs / passes,
        medianMs: t.medianMs / passes,
        reps: t.reps,
        passes,
        gbps: bytes / (t.bestMs / passes) / 1e6,
        medianGbps: bytes / (t.medianMs / passes) / 1e6,
      };
      byStreams[s] = r;
      if (!best || r.medianMs < best.medianMs) best = { ...r, streams: s };
    }
    return { ...best, bytes, byStreams };
  } finally {
    k.free(p);
  }
}

/** Best read bandwidth in GB/s (1e9 bytes per second) over a buffer of `bytes` bytes. */
export async function measureReadBandwidth(bytes) {
  return (await readBandwidth(bytes)).gbps;
}

// --- self check --------------------------------------------------------------------------------

/**
 * Every baseline on small odd shapes (tails in rows, cols and batch; more than one column block in
 * the GEMM), checked at spots inside each function. Also the ORT models against a full JS matmul.
 * Returns a list of { what, ok, error } lines.
 */
export async function selfCheck() {
  const quick = { warmup: 0, budgetMs: 0, minReps: 1, maxReps: 1 };
  const cases = [
    ['own f32 gemv 37x70 b1', () => ownF32Gemv({ rows: 37, cols: 70, batch: 1, timing: quick })],
    ['own f32 gemv 37x70 b7', () => ownF32Gemv({ rows: 37, cols: 70, batch: 7, timing: quick })],
    ['own f32 gemv 9x1027 b64', () => ownF32Gemv({ rows: 9, cols: 1027, batch: 64, timing: quick })],
    ['own f32 gemv 5x3 b2', () => ownF32Gemv({ rows: 5, cols: 3, batch: 2, timing: quick })],
    ['read bandwidth 1000003 bytes, 1/2/4 streams', () => readBandwidth(1000003, { streams: [1, 2, 4], timing: quick })],
    ['read bandwidth 4100 bytes, 4 streams', () => readBandwidth(4100, { streams: [4], timing: quick })],
    ['ort MatMul f32 37x70 b5', () => ortMatMulF32({ rows: 37, cols: 70, batch: 5, timing: quick })],
    ['ort MatMulNBits 2-bit 37x96 b5', () => ortMatMulNBits({ rows: 37, cols: 96, batch: 5, bits: 2, timing: quick })],
    ['ort MatMulNBits 2-bit 8x80 b3 (partial block)', () => ortMatMulNBits({ rows: 8, cols: 80, batch: 3, bits: 2, timing: quick })],
  ];
  const out = [];
  for (const [what, run] of cases) {
    try {
      await run();
      out.push({ what, ok: true });
    } catch (e) {
      out.push({ what, ok: false, error: e.message });
    }
  }
  return out;
}

// --- main: the table ----------------------------------------------------------------------------

const USAGE =
  'usage: node bench/baselines.mjs [--shapes 1024x1024,4096x4096,11008x4096] [--batches 1,8,64]\n' +
  '                                [--budget 1500] [--bits 2] [--only ort-f32,ort-nbits,own-f32,bandwidth]';

function parseList(name, text, parse) {
  return text.split(',').map((s) => {
    const v = parse(s.trim());
    if (v === null) throw new Error(`bad --${name} entry "${s}"`);
    return v;
  });
}

function fmt(v, digits = 3) {
  if (v === undefined || v === null || Number.isNaN(v)) return '';
  if (v >= 100) return v.toFixed(1);
  if (v >= 10) return v.toFixed(2);
  return v.toFixed(digits);
}

function printTable(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)));
  const line = (cells) => '| ' + cells.map((c, i) => String(c ?? '').padEnd(widths[i])).join(' | ') + ' |';
  console.log(line(header));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const r of rows) console.log(line(r));
}

async function main() {
  const opts = benchArgs('baselines.mjs', USAGE, {
    shapes: { type: 'string', default: '1024x1024,4096x4096,11008x4096' },
    batches: { type: 'string', default: '1,8,64' },
    budget: { type: 'string', default: String(DEFAULT_TIMING.budgetMs) },
    bits: { type: 'string', default: '2' },
    only: { type: 'string', default: 'ort-f32,ort-nbits,own-f32,bandwidth' },
  });
  let shapes, batches, budgetMs, bits, only;
  try {
    shapes = parseList('shapes', opts.shapes, (s) => {
      const m = /^(\d+)x(\d+)$/.exec(s);
      return m ? { rows: Number(m[1]), cols: Number(m[2]) } : null;
    });
    batches = parseList('batches', opts.batches, (s) => (/^\d+$/.test(s) && Number(s) > 0 ? Number(s) : null));
    budgetMs = Number(opts.budget);
    if (!(budgetMs >= 0)) throw new Error(`bad --budget ${opts.budget}`);
    bits = Number(opts.bits);
    if (![2, 4, 8].includes(bits)) throw new Error(`--bits must be 2, 4 or 8, got ${opts.bits}`);
    only = new Set(opts.only.split(',').map((s) => s.trim()));
  } catch (e) {
    console.error(`baselines.mjs: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  const timing = { budgetMs };

  console.log(`Node ${process.version}, single thread. Times per call in ms; best and median of "reps" calls.`);
  try {
    const ort = await loadOrt();
    console.log(`onnxruntime-web ${ort.env.versions?.web ?? '?'} (wasm backend, numThreads 1, SIMD)`);
  } catch (e) {
    console.log(`onnxruntime-web: ${e.message}`);
  }
  try {
    console.log(`kernel wasm: ${(await loadKernels()).path}`);
  } catch (e) {
    console.log(`kernel wasm: ${e.message}`);
  }

  console.log('\nSelf check (small odd shapes against plain JS):');
  let failed = 0;
  for (const c of await selfCheck()) {
    console.log(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.what}${c.ok ? '' : `: ${c.error}`}`);
    if (!c.ok) failed++;
  }

  if (only.has('ort-f32') || only.has('ort-nbits')) {
    try {
      const o = await ortRunOverhead();
      console.log(`\nORT session.run fixed cost (1 x 1 MatMul): best ${fmt(o.bestMs, 4)} ms, median ${fmt(o.medianMs, 4)} ms`);
    } catch (e) {
      console.log(`\nORT session.run fixed cost: ${e.message}`);
    }
  }

  // GMAC/s = rows * cols * batch / median; W GB/s = weight bytes read per call / median.
  const header = ['baseline', 'rows x cols', 'batch', 'best ms', 'median ms', 'reps', 'GMAC/s', 'W GB/s', 'notes'];
  const rowsOut = [];
  const baselines = [
    ['ort-f32', 'ORT MatMul f32', (s, b) => ortMatMulF32({ ...s, batch: b, timing })],
    ['ort-nbits', `ORT MatMulNBits ${bits}-bit b32`, (s, b) => ortMatMulNBits({ ...s, batch: b, bits, timing })],
    ['own-f32', 'own f32 SIMD128', (s, b) => ownF32Gemv({ ...s, batch: b, timing })],
  ].filter(([key]) => only.has(key));
  for (const shape of shapes) {
    for (const [, label, run] of baselines) {
      for (const batch of batches) {
        const where = [label, `${shape.rows} x ${shape.cols}`, batch];
        try {
          const r = await run(shape, batch);
          const macs = shape.rows * shape.cols * batch;
          const notes = [];
          if (r.createMs !== undefined) notes.push(`session ${r.createMs.toFixed(0)} ms`);
          notes.push(`err ${r.maxRelErr.toExponential(1)}`);
          rowsOut.push([
            ...where,
            fmt(r.bestMs),
            fmt(r.medianMs),
            r.reps,
            fmt(macs / r.medianMs / 1e6, 2),
            fmt(r.weightBytes / r.medianMs / 1e6, 2),
            notes.join(', '),
          ]);
        } catch (e) {
          rowsOut.push([...where, '', '', '', '', '', `FAILED: ${e.message.split('\n')[0]}`]);
          failed++;
        }
        process.stderr.write('.');
      }
    }
  }
  process.stderr.write('\n');
  if (rowsOut.length) {
    console.log('\nGEMV/GEMM (GMAC/s: rows*cols*batch per median; W GB/s: weight bytes per median):');
    printTable(header, rowsOut);
  }

  if (only.has('bandwidth')) {
    // The floors: one read of the weights at 2 bits (a packed ternary matrix) and at 32 bits.
    const sizes = [];
    for (const s of shapes) {
      sizes.push([`${s.rows} x ${s.cols} at 2 bits`, (s.rows * s.cols) / 4]);
      sizes.push([`${s.rows} x ${s.cols} at 32 bits`, s.rows * s.cols * 4]);
    }
    const bwRows = [];
    for (const [what, bytes] of sizes) {
      try {
        const r = await readBandwidth(bytes);
        const one = r.byStreams[1];
        bwRows.push([
          what,
          (bytes / 2 ** 20).toFixed(2),
          fmt(r.bestMs, 4),
          fmt(r.medianMs, 4),
          fmt(r.gbps, 1),
          fmt(r.medianGbps, 1),
          r.streams,
          fmt(one?.medianGbps, 1),
        ]);
      } catch (e) {
        bwRows.push([what, (bytes / 2 ** 20).toFixed(2), '', '', '', '', '', `FAILED: ${e.message}`]);
        failed++;
      }
    }
    console.log(
      '\nRead bandwidth, v128 loads, one pass over a buffer of that size (the time floor of a kernel that reads it once);\n' +
        '"streams": the faster of 1 or 4 concurrent segments, whose numbers are shown:',
    );
    printTable(['buffer', 'MiB', 'best ms', 'median ms', 'best GB/s', 'median GB/s', 'streams', '1-stream median GB/s'], bwRows);
  }
  if (failed) {
    console.log(`\n${failed} check(s) or baseline(s) failed: see above.`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
