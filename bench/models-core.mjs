// models-core.mjs — the model-level bench of bench/models.mjs, with nothing specific to Node: the
// same code runs in Node (bench/models.mjs) and in Chromium (bench/models-page/page.js, bundled by
// esbuild). It takes an initialised tilelli and onnxruntime-web and returns plain data (results,
// checks, targets) that formatReport() turns into the tables.
//
// Per network (an MLP of linear layers with ReLU between) and batch size, the contenders are:
//   ORT fp32        onnxruntime-web, wasm backend, 1 thread: MatMul + Add per layer, Relu between,
//                   on the float weights w = trit * scale (so both sides compute the same network)
//   ORT int8 dyn    the same weights as onnxruntime's quantize_dynamic writes a model (int8 weights
//                   per tensor, DynamicQuantizeLinear + MatMulInteger + Cast + Mul + Add per layer)
//   tilelli <fmt>   the packed model in each format of tl.formats (i2, tq1, bitplane), float and int8 activations
// Timing is interleaved: every round runs each contender once (a group of calls for short ones), in
// a rotating order, so a slow phase of a shared machine hits all of them alike; medians over rounds.

import { mlpDynamicInt8Model, mlpF32Model } from './ort-models.mjs';

/** The networks: kind 'mnist' uses the trained fixture and the test digits, 'random' random trits. */
export const NETWORKS = Object.freeze([
  { key: 'mnist', name: 'MNIST MLP', widths: [784, 256, 256, 10], batches: [1, 64], kind: 'mnist' },
  { key: 'wide', name: 'wide MLP', widths: [1024, 4096, 4096, 1024], batches: [1, 16], kind: 'random', bias: true },
  { key: 'bitnet-ffn', name: 'BitNet-2B FFN', widths: [2560, 6912, 2560], batches: [1], kind: 'random', bias: false },
  { key: 'mlp512', name: 'MLP', widths: [512, 2048, 2048, 512], batches: [1, 8], kind: 'random', bias: true },
  { key: 'mlp784w', name: 'MLP', widths: [784, 1024, 1024, 10], batches: [1, 32], kind: 'random', bias: true },
]);

/** Small odd shapes for `--check` (tails everywhere, one layer without bias, a single layer). */
export const CHECK_NETWORKS = Object.freeze([
  { key: 'odd3', name: 'odd MLP', widths: [37, 70, 13], batches: [1, 5], kind: 'random', bias: true },
  { key: 'odd1', name: 'one layer', widths: [129, 3], batches: [2], kind: 'random', bias: false },
]);

/** The issue's targets: ORT fp32 median / tilelli i2 median, per network key and batch. */
export const TARGETS = Object.freeze({
  'mnist/1': { int8: 3, float: 1.5 },
  'mnist/64': { int8: 3, float: 1.0 },
  'wide/1': { int8: 10, float: 4 },
  'wide/16': { int8: 4, float: 1.0 },
});

const STAND_IN = 'bitlinear stand-in';

/**
 * Tolerances of the checks (relative to the largest |reference| of each output vector). float is the
 * rule for float activations; a row past it but within floatWrong (float32 rounding compounding over
 * the layers, not a wrong network) is still timed, and reported as failing the rule (exit status 1).
 */
export const TOL = Object.freeze({ float: 1e-5, floatWrong: 1e-3, int8: 1e-4, ortInt8: 5e-2, agree: 0.99 });

// --- small helpers --------------------------------------------------------------------------------

/** xorshift32 stream; next() -> uint32. */
function xorshift(seed) {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

function median(a) {
  const s = Float64Array.from(a).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const now = () => performance.now();

let tickMs = null;

/** The clock's step: browsers coarsen performance.now() (100 us in Chromium without cross-origin isolation). */
function clockTick() {
  if (tickMs === null) {
    tickMs = Infinity;
    for (let i = 0; i < 20; i++) {
      const a = now();
      let b = now();
      while (b === a) b = now();
      tickMs = Math.min(tickMs, b - a);
    }
  }
  return tickMs;
}

/** How long one timed sample should last: 1 ms, or 100 clock steps when the clock is coarser. */
export function sampleMs() {
  return Math.max(1, 100 * clockTick());
}

// --- the network: trits, scales, biases -----------------------------------------------------------

/**
 * Linear layers as { rows, cols, trits (Int8Array, row-major [rows, cols]), scales (Float32Array,
 * one per row), bias? }. MNIST: the fixture checkpoint quantized per tensor by tilelli (what
 * packCheckpoint does with the fixture's architecture.json). Random: uniform trits and a scale of
 * 1 / sqrt(2/3 cols) so activations stay near 1 through the layers.
 */
function makeLayers(tl, net, checkpoint) {
  const layers = [];
  if (net.kind === 'mnist') {
    const st = tl.Safetensors.open(checkpoint);
    try {
      for (let i = 1; i < net.widths.length; i++) {
        const [rows, cols] = [net.widths[i], net.widths[i - 1]];
        const t = st.tensor(`fc${i}.weight`);
        if (t.shape[0] !== rows || t.shape[1] !== cols) throw new Error(`fc${i}.weight is [${t.shape}], expected [${rows}, ${cols}]`);
        const m = tl.PackedMatrix.fromWeights(st.read(`fc${i}.weight`), [rows, cols], { format: 'i2' });
        layers.push({ rows, cols, trits: m.trits(), scales: m.scales(), bias: st.read(`fc${i}.bias`) });
        m.free();
      }
    } finally {
      st.free();
    }
    return layers;
  }
  const next = xorshift(0x7e57 + net.widths.reduce((a, b) => a * 31 + b, 0));
  for (let i = 1; i < net.widths.length; i++) {
    const [rows, cols] = [net.widths[i], net.widths[i - 1]];
    const trits = new Int8Array(rows * cols);
    for (let k = 0; k < trits.length; k++) trits[k] = (next() % 3) - 1;
    const scales = new Float32Array(rows).fill(Math.fround(1 / Math.sqrt((2 / 3) * cols)));
    let bias;
    if (net.bias) {
      bias = new Float32Array(rows);
      for (let r = 0; r < rows; r++) bias[r] = ((next() / 2 ** 32) * 2 - 1) * 0.1;
    }
    layers.push({ rows, cols, trits, scales, bias });
  }
  return layers;
}

function randomInputs(net, count) {
  const next = xorshift(0x1a9 ^ net.widths[0]);
  const x = new Float32Array(count * net.widths[0]);
  for (let i = 0; i < x.length; i++) x[i] = (next() / 2 ** 32) * 2 - 1;
  return x;
}

// --- references (float64 JS) -----------------------------------------------------------------------

/**
 * The float network in float64: y = scale[r] * sum_c trit[r][c] x[c] + bias[r], ReLU between.
 * nonzero (optional, an array): gets each layer's share of nonzero input values over the batch,
 * what decides whether tilelli reads a vector's columns (README, "Sparse inputs").
 */
export function referenceFloat(layers, x, batch, nonzero) {
  let h = Float64Array.from(x.subarray(0, batch * layers[0].cols));
  for (const [li, L] of layers.entries()) {
    const { rows, cols, trits, scales, bias } = L;
    if (nonzero) nonzero[li] = h.reduce((n, v) => n + (v !== 0), 0) / h.length;
    const out = new Float64Array(batch * rows);
    for (let b = 0; b < batch; b++) {
      const xv = h.subarray(b * cols, (b + 1) * cols);
      for (let r = 0; r < rows; r++) {
        const tr = trits.subarray(r * cols, (r + 1) * cols);
        let s = 0;
        for (let c = 0; c < cols; c++) s += tr[c] * xv[c];
        let y = s * scales[r] + (bias ? bias[r] : 0);
        if (li < layers.length - 1 && y < 0) y = 0;
        out[b * rows + r] = y;
      }
    }
    h = out;
  }
  return h;
}

function roundHalfEven(v) {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The int8-activation network as docs say it computes, in float32 steps (Math.fround) with exact
 * integer sums: per vector s = 127 / max(absmax, 1e-5), xq = clamp(round_half_even(x * s)),
 * y = fl(fl(fl(acc) * scale) / s) + bias. rmsnorm: true adds bitlinear's x / sqrt(mean(x^2) + 1e-5)
 * before the quantizer (the stand-in), in the steps of src/model.c.
 */
export function referenceInt8(layers, x, batch, { rmsnorm = false } = {}) {
  const f = Math.fround;
  const eps = f(1e-5);
  let h = Float32Array.from(x.subarray(0, batch * layers[0].cols));
  for (const [li, L] of layers.entries()) {
    const { rows, cols, trits, scales, bias } = L;
    const out = new Float32Array(batch * rows);
    const xq = new Int32Array(cols);
    for (let b = 0; b < batch; b++) {
      let xv = h.subarray(b * cols, (b + 1) * cols);
      if (rmsnorm) {
        // src/model.c's RMSNorm step by step: a double sum, then float steps.
        let ss = 0;
        for (let c = 0; c < cols; c++) ss += xv[c] * xv[c];
        const inv = f(1 / f(Math.sqrt(f(f(ss / cols) + eps))));
        xv = Float32Array.from(xv, (v) => v * inv);
      }
      let amax = 0;
      for (let c = 0; c < cols; c++) amax = Math.max(amax, Math.abs(xv[c]));
      const s = f(127 / Math.max(amax, eps));
      for (let c = 0; c < cols; c++) xq[c] = Math.min(127, Math.max(-128, roundHalfEven(f(xv[c] * s))));
      for (let r = 0; r < rows; r++) {
        const tr = trits.subarray(r * cols, (r + 1) * cols);
        let acc = 0;
        for (let c = 0; c < cols; c++) acc += tr[c] * xq[c];
        let y = f(f(f(acc) * scales[r]) / s);
        if (bias) y = f(y + bias[r]);
        if (li < layers.length - 1 && y < 0) y = 0;
        out[b * rows + r] = y;
      }
    }
    h = out;
  }
  return h;
}

/** Largest |got - ref| / max_r |ref[b][r]| over the vectors; and argmax agreement when asked. */
export function compare(got, ref, batch, width) {
  let worst = 0;
  for (let b = 0; b < batch; b++) {
    let big = 0;
    for (let r = 0; r < width; r++) big = Math.max(big, Math.abs(ref[b * width + r]));
    for (let r = 0; r < width; r++) {
      const e = Math.abs(got[b * width + r] - ref[b * width + r]) / (big || 1);
      if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
    }
  }
  return worst;
}

export function argmaxAll(y, batch, width) {
  const p = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    let best = 0;
    for (let r = 1; r < width; r++) if (y[b * width + r] > y[b * width + best]) best = r;
    p[b] = best;
  }
  return p;
}

// --- the read-bandwidth probe: a hand-assembled wasm module ----------------------------------------
//
// read1(ptr, bytes, passes) and read4(ptr, bytes, passes) -> i32: `passes` times over [ptr, ptr +
// bytes), v128.load into eight independent i32x4 accumulators (i32x4.add, 128 bytes per step), then
// the lanes summed. read1 walks the buffer as one stream; read4 as four streams in lockstep, one per
// quarter of the buffer (from DRAM several streams read faster): the loops of bench/bandwidth.c. The
// loads a kernel streaming its weights makes, with nothing else to do: the floor of a kernel that
// reads its packed weights once per call. Written here in bytes (no toolchain), so Node and Chromium
// run the same code.

function leb(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

function probeModuleBytes() {
  const section = (id, body) => [id, ...leb(body.length), ...body];
  const vec = (items) => [...leb(items.length), ...items.flat()];
  const str = (s) => [...leb(s.length), ...Array.from(s, (ch) => ch.charCodeAt(0))];
  const [get, set, I32, V128] = [0x20, 0x21, 0x7f, 0x7b];
  const [add, shl, shrU, mul, konst] = [0x6a, 0x74, 0x76, 0x6c, 0x41]; // i32.add, i32.shl, i32.shr_u, i32.mul, i32.const
  const load = (offset) => [0xfd, 0x00, 4, ...leb(offset)]; // v128.load align=16
  const add4 = [0xfd, 0xae, 0x01]; // i32x4.add
  const lane = (i) => [0xfd, 0x1b, i]; // i32x4.extract_lane
  // params: 0 ptr, 1 bytes, 2 passes; locals: 3 end, 4 p (i32), 5..12 accumulators (v128), 13 seg (i32)
  const acc = (a, address, off) => [get, a, ...address, ...load(off), ...add4, set, a];
  const streamAt = [[get, 4], [get, 4, get, 13, add], [get, 4, get, 13, konst, 1, shl, add], [get, 4, get, 13, konst, 3, mul, add]];
  const fn = (streams) => {
    const A = 8 / streams; // accumulators per stream: 8 in all, 128 bytes per step
    const step = [];
    for (let st = 0; st < streams; st++) for (let a = 0; a < A; a++) step.push(...acc(5 + st * A + a, streamAt[st], 16 * a));
    // p += 16 A; i32.const takes a signed LEB128: 128 is 0x80 0x01, 32 is 0x20.
    step.push(get, 4, konst, ...(streams === 1 ? [0x80, 0x01] : [16 * A]), add, set, 4);
    const sum = [get, 5];
    for (let a = 6; a <= 12; a++) sum.push(get, a, ...add4);
    const code = [
      3, 2, I32, 8, V128, 1, I32, // locals
      get, 1, konst, streams === 1 ? 0 : 2, shrU, set, 13, // seg = bytes / streams
      get, 0, get, 13, add, set, 3, // end = ptr + seg: p walks the first segment, the others follow at + k seg
      0x02, 0x40, 0x03, 0x40, // block loop (passes)
      get, 2, 0x45, 0x0d, 1, // if passes == 0: break
      get, 0, set, 4,
      0x02, 0x40, 0x03, 0x40, // block loop (steps)
      get, 4, get, 3, 0x4f, 0x0d, 1, // if p >= end: break
      ...step,
      0x0c, 0, 0x0b, 0x0b, // br loop; end loop; end block
      get, 2, konst, 1, 0x6b, set, 2, // passes -= 1
      0x0c, 0, 0x0b, 0x0b,
      ...sum, set, 5,
      get, 5, ...lane(0), get, 5, ...lane(1), add, get, 5, ...lane(2), add, get, 5, ...lane(3), add,
      0x0b,
    ];
    return [...leb(code.length), ...code];
  };
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, vec([[0x60, 3, I32, I32, I32, 1, I32]])), // type: (i32, i32, i32) -> i32
    ...section(3, vec([[0], [0]])), // functions 0 and 1 have type 0
    ...section(5, vec([[0x00, 1]])), // memory: min 1 page, no max
    ...section(7, vec([[...str('read1'), 0x00, 0], [...str('read4'), 0x00, 1], [...str('mem'), 0x02, 0]])),
    ...section(10, vec([fn(1), fn(4)])),
  ]);
}

let probe = null;

/**
 * Read bandwidth (GB/s, 1e9 bytes/s) of v128 loads over a buffer of `bytes` (rounded up to 128),
 * already touched: timed calls of each stream count (each call making enough passes to last two
 * samples, sampleMs()); the result is the best call of the faster one, as a floor should be.
 */
export async function readBandwidth(bytes, budgetMs = 250) {
  probe ??= new WebAssembly.Instance(new WebAssembly.Module(probeModuleBytes()), {}).exports;
  const n = Math.ceil(bytes / 128) * 128;
  const have = probe.mem.buffer.byteLength;
  if (have < n) probe.mem.grow(Math.ceil((n - have) / 65536));
  const buf = new Uint32Array(probe.mem.buffer, 0, n / 4);
  let ref = 0;
  for (let i = 0; i < buf.length; i++) {
    buf[i] = Math.imul(i, 2654435761) >>> 0;
    ref = (ref + buf[i]) >>> 0;
  }
  let best = 0;
  for (const read of [probe.read1, probe.read4]) {
    const got = read(0, n, 1) >>> 0;
    if (got !== ref) throw new Error(`bandwidth probe: sum ${got}, expected ${ref}`);
    let passes = 1;
    let t0 = now();
    for (;;) {
      t0 = now();
      read(0, n, passes);
      if (now() - t0 >= sampleMs() || passes >= 1 << 20) break;
      passes *= 2;
    }
    passes = Math.max(passes, Math.ceil((2 * sampleMs() * passes) / Math.max(now() - t0, 1e-3)));
    const start = now();
    let calls = 0;
    while (calls < 5 || (now() - start < budgetMs / 2 && calls < 200)) {
      t0 = now();
      read(0, n, passes);
      best = Math.max(best, (n * passes) / (now() - t0) / 1e6);
      calls++;
    }
  }
  return best;
}

// --- contenders -----------------------------------------------------------------------------------

/**
 * A format's two models, float and int8 activations, from one set of packed matrices; the one place
 * that decides how tilelli runs int8 activations: a `linear` layer with "activations": "int8" when
 * this tilelli has it (packed model v2), else the stand-in `bitlinear` without a norm weight
 * (RMSNorm, then the same int8 quantizer). How a model is called: tilelliRunner.
 */
function buildTilelli(tl, layers, format) {
  const mats = layers.map((L) => tl.PackedMatrix.fromTrits(L.trits, [L.rows, L.cols], { format, scales: L.scales }));
  const spec = (type, extra) => ({
    input: layers[0].cols,
    layers: mats.flatMap((m, i) => [
      { type, matrix: m, bias: layers[i].bias, ...extra },
      ...(i < mats.length - 1 ? [{ type: 'relu' }] : []),
    ]),
  });
  const models = {};
  const isInt8 = (m) => m.layers?.every((L) => L.type !== 'linear' || L.activations === 'int8');
  try {
    const floatBytes = tl.packModel(spec('linear'));
    models.float = { model: tl.Model.load(floatBytes), how: 'linear' };
    // int8 linear layers written into the file (packModel's layer key), else asked for at load.
    for (const load of [
      () => tl.Model.load(tl.packModel(spec('linear', { activations: 'int8' }))),
      () => tl.Model.load(floatBytes, { activations: 'int8' }),
    ]) {
      let m = null;
      try {
        m = load();
      } catch {
        m = null; // a tilelli that rejects the key or the option
      }
      if (m && isInt8(m)) {
        models.int8 = { model: m, how: 'linear int8' };
        break;
      }
      m?.free();
    }
    models.int8 ??= { model: tl.Model.load(tl.packModel(spec('bitlinear'))), how: STAND_IN };
  } finally {
    for (const m of mats) m.free();
  }
  const weightBytes = layers.reduce((a, L) => a + tl.packedSize([L.rows, L.cols], format), 0);
  return { models, weightBytes };
}

/** A tilelli runner for one batch: run() does one call; output() is the last result. */
function tilelliRunner(model, x, batch) {
  const input = x.subarray(0, batch * model.inputSize);
  const out = new Float32Array(batch * model.outputSize);
  const withOut = model.run(input, { out }) === out;
  let last = out;
  const run = withOut ? () => model.run(input, { out }) : () => { last = model.run(input); };
  return { run, output: () => last, sync: true, withOut };
}

function ortSessionOptions() {
  return { executionProviders: ['wasm'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
}

async function ortRunner(ort, session, x, batch, cols) {
  const feeds = { X: new ort.Tensor('float32', x.subarray(0, batch * cols), [batch, cols]) };
  let last = null;
  return {
    run: async () => {
      last = await session.run(feeds);
    },
    output: () => last.Y.data,
    sync: false,
  };
}

// --- timing ----------------------------------------------------------------------------------------

/** Calls per sample: enough for sampleMs(), so the clock's resolution and the loop do not show. */
async function calibrate(c) {
  for (let i = 0; i < 2; i++) await c.run();
  const target = sampleMs();
  let t = Infinity; // the fastest of three estimates: one preempted call must not set the group size
  for (let rep = 0; rep < 3; rep++) {
    let n = 0;
    const t0 = now();
    while (now() - t0 < target / 2 || n === 0) {
      await c.run();
      n++;
    }
    t = Math.min(t, (now() - t0) / n);
  }
  c.group = Math.max(1, Math.min(1000, Math.round(target / t)));
  c.estimateMs = t;
}

async function sample(c) {
  const g = c.group;
  const t0 = now();
  if (c.sync) for (let i = 0; i < g; i++) c.run();
  else for (let i = 0; i < g; i++) await c.run();
  return (now() - t0) / g;
}

/** Interleaved rounds over the contenders (rotating order) until budgetMs; per-call times per contender. */
async function interleave(contenders, budgetMs, minRounds = 7, maxRounds = 400) {
  for (const c of contenders) await calibrate(c);
  const times = contenders.map(() => []);
  const start = now();
  for (let round = 0; round < maxRounds; round++) {
    if (round >= minRounds && now() - start > budgetMs) break;
    for (let k = 0; k < contenders.length; k++) {
      const i = (k + round) % contenders.length;
      times[i].push(await sample(contenders[i]));
    }
  }
  return times.map((t) => ({ medianMs: median(t), bestMs: Math.min(...t), rounds: t.length, times: t }));
}

// --- the bench --------------------------------------------------------------------------------------

/**
 * Run the bench. tl: tilelli after init(); ort: onnxruntime-web (numThreads 1 set by the caller);
 * mnist: { checkpoint (Uint8Array), x (Float32Array, 784 per digit), labels }; networks: keys of
 * NETWORKS (all when omitted); budgetMs: timing per network and batch; log(line): progress.
 */
export async function runBench({ tl, ort, mnist, networks, budgetMs = 8000, timing = true, log = () => {} }) {
  const all = [...NETWORKS, ...CHECK_NETWORKS];
  const picked = networks ? all.filter((n) => networks.includes(n.key)) : NETWORKS;
  const results = [];
  const failures = [];
  let int8How = null;
  const started = now();
  for (const net of picked) {
    const t0 = now();
    const label = `${net.name} ${net.widths.join('-')}`;
    log(`${label}: building ...`);
    const layers = makeLayers(tl, net, mnist?.checkpoint);
    const width = net.widths.at(-1);
    const maxBatch = Math.max(...net.batches);
    // Inputs: the MNIST test digits (all of them for the checks), else uniform [-1, 1).
    const checkX = net.kind === 'mnist' ? mnist.x : randomInputs(net, maxBatch);
    const checkBatch = checkX.length / net.widths[0];
    const nonzero = [];
    const refF = referenceFloat(layers, checkX, checkBatch, nonzero);
    const predF = argmaxAll(refF, checkBatch, width);

    // ORT models: float weights w = trit * scale (exact in float32); int8 codes 127 * trit, scale / 127
    // (quantize_dynamic's symmetric per-tensor int8: scale = max |w| / 127).
    const ortLayers = (int8) => layers.flatMap((L, i) => {
      const weights = int8 ? new Int8Array(L.trits.length) : new Float32Array(L.trits.length);
      const k = int8 ? 127 : L.scales[0];
      for (let j = 0; j < weights.length; j++) weights[j] = L.trits[j] * k; // (typed .from with a callback is 20x slower)
      const lin = { type: 'linear', rows: L.rows, cols: L.cols, weights, scale: Math.fround(L.scales[0] / 127), bias: L.bias };
      return i < layers.length - 1 ? [lin, { type: 'relu' }] : [lin];
    });
    for (const L of layers) if (!L.scales.every((s) => s === L.scales[0])) throw new Error(`${label}: per-row scales are not wired for ORT`);
    const contenders = [];
    const fp32Bytes = layers.reduce((a, L) => a + L.rows * L.cols * 4, 0);
    const int8Bytes = fp32Bytes / 4;
    for (const [key, name, make, bytes] of [
      ['ort-fp32', 'ORT fp32', () => mlpF32Model({ input: net.widths[0], layers: ortLayers(false) }), fp32Bytes],
      ['ort-int8', 'ORT int8 dynamic', () => mlpDynamicInt8Model({ input: net.widths[0], layers: ortLayers(true) }), int8Bytes],
    ]) {
      const c = { key, name, engine: 'ort', activations: key === 'ort-fp32' ? 'float' : 'int8', weightBytes: bytes };
      try {
        c.session = await ort.InferenceSession.create(make(), ortSessionOptions());
      } catch (e) {
        c.error = `onnxruntime-web cannot run it: ${String(e?.message ?? e).split('\n')[0]}`;
      }
      contenders.push(c);
    }
    const built = tl.formats.map((format) => [format, buildTilelli(tl, layers, format)]); // the core's table
    for (const activations of ['int8', 'float']) {
      for (const [format, { models, weightBytes }] of built) {
        const { model, how } = models[activations];
        if (activations === 'int8') int8How = how;
        contenders.push({ key: `tl-${format}-${activations}`, name: `tilelli ${format} (${tl.build}, ${tl.threads ?? 1} thread${(tl.threads ?? 1) > 1 ? "s" : ""})`, engine: 'tilelli', format, activations, how, model, weightBytes });
      }
    }
    const tBuilt = now();
    const rmsnorm = int8How === STAND_IN;
    const refQ = referenceInt8(layers, checkX, checkBatch, { rmsnorm });

    // Checks on the check inputs (all 2004 digits for MNIST), before any timing.
    for (const c of contenders) {
      if (c.error) continue;
      try {
        const y = c.engine === 'ort'
          ? (await c.session.run({ X: new ort.Tensor('float32', checkX, [checkBatch, net.widths[0]]) })).Y.data
          : c.model.run(checkX);
        const checks = {};
        const errF = compare(y, refF, checkBatch, width);
        checks.vsFloat = errF;
        if (c.activations === 'float') {
          checks.ok = errF <= TOL.floatWrong;
          checks.rule = `within ${TOL.floatWrong} of each vector's largest output of the float64 reference`;
          if (checks.ok && !(errF <= TOL.float)) {
            checks.overRule = true;
            failures.push(`${label}: ${c.name} float: ${errF.toExponential(2)} of the vector's largest output from the float64 ` +
              `reference, over the ${TOL.float} rule (timed anyway: within ${TOL.floatWrong}, float32 rounding over ${layers.length} layers)`);
          }
        } else if (c.engine === 'tilelli') {
          const errQ = compare(y, refQ, checkBatch, width);
          checks.vsInt8 = errQ;
          checks.ok = errQ <= TOL.int8;
          checks.rule = `within ${TOL.int8} of each vector's largest output of the int8 JS reference`;
        } else {
          checks.ok = errF <= TOL.ortInt8;
          checks.rule = `within ${TOL.ortInt8} of each vector's largest float64 reference output`;
        }
        if (net.kind === 'mnist') {
          const p = argmaxAll(y, checkBatch, width);
          let same = 0;
          let right = 0;
          for (let i = 0; i < checkBatch; i++) {
            same += p[i] === predF[i];
            right += p[i] === mnist.labels[i];
          }
          checks.agree = same / checkBatch;
          checks.accuracy = right / checkBatch;
          // The bitlinear stand-in is another network (RMSNorm before each layer): its agreement is
          // shown, not required.
          if (c.activations === 'int8' && c.how !== STAND_IN) checks.ok &&= checks.agree >= TOL.agree;
        }
        c.checks = checks;
        if (!checks.ok) {
          c.error = `wrong result: ${checks.rule} fails (${errF.toExponential(2)} vs float64` +
            `${checks.vsInt8 !== undefined ? `, ${checks.vsInt8.toExponential(2)} vs int8 reference` : ''}` +
            `${checks.agree !== undefined ? `, predictions agree ${(100 * checks.agree).toFixed(2)}%` : ''})`;
          failures.push(`${label}: ${c.name} ${c.activations}: ${c.error}`);
        }
      } catch (e) {
        c.error = `failed: ${String(e?.message ?? e).split('\n')[0]}`;
        failures.push(`${label}: ${c.name} ${c.activations}: ${c.error}`);
      }
    }

    const tChecked = now();
    // Read bandwidth at each weight size (the physical limit: weight bytes / bandwidth).
    const bw = {};
    for (const c of contenders) {
      bw[c.weightBytes] ??= await readBandwidth(c.weightBytes, timing ? 250 : 10);
      c.gbps = bw[c.weightBytes];
      c.limitMs = c.weightBytes / c.gbps / 1e6;
    }
    const setupMs = now() - t0;
    const sec = (a, b) => `${((b - a) / 1000).toFixed(1)} s`;
    log(`${label}: built ${sec(t0, tBuilt)}, checked ${sec(tBuilt, tChecked)}, bandwidth ${sec(tChecked, now())}`);

    for (const batch of net.batches) {
      log(`${label}, batch ${batch}: timing ...`);
      const live = contenders.filter((c) => !c.error);
      const runners = [];
      for (const c of live) {
        const r = c.engine === 'ort'
          ? await ortRunner(ort, c.session, checkX, batch, net.widths[0])
          : tilelliRunner(c.model, checkX, batch);
        // The batch's own output, checked once more before it is timed (a prefix of the check inputs).
        await r.run();
        const ref = c.activations === 'int8' && c.engine === 'tilelli' ? refQ : refF;
        const tol = c.activations === 'float' ? TOL.floatWrong : c.engine === 'tilelli' ? TOL.int8 : TOL.ortInt8;
        const err = compare(r.output(), ref, batch, width);
        if (!(err <= tol)) {
          c.error = `wrong result at batch ${batch}: ${err.toExponential(2)} > ${tol}`;
          failures.push(`${label}: ${c.name} ${c.activations}: ${c.error}`);
        }
        runners.push(r);
      }
      const timed = timing ? live.filter((c) => !c.error) : [];
      const t = timing ? await interleave(runners.filter((_, i) => !live[i].error), budgetMs) : [];
      const rows = contenders.map((c) => {
        const k = timed.indexOf(c);
        return { ...pick(c), ...(k >= 0 ? t[k] : {}), group: k >= 0 ? runners[live.indexOf(c)].group : undefined, withOut: runners[live.indexOf(c)]?.withOut };
      });
      const ortF = rows.find((r) => r.key === 'ort-fp32');
      for (const r of rows) {
        if (!(r.medianMs && ortF?.medianMs)) continue;
        r.ratio = ortF.medianMs / r.medianMs;
        // Paired: the median over rounds of ORT's time / this row's time in the same round, which
        // cancels a slow phase of a shared machine that hits both.
        r.pairedRatio = median(r.times.map((t, k) => ortF.times[k] / t));
      }
      for (const r of rows) delete r.times;
      results.push({ key: net.key, label, name: net.name, widths: net.widths, kind: net.kind, batch, rows, setupMs, checkBatch, nonzero });
    }
    for (const c of contenders) {
      await c.session?.release();
      c.model?.free();
    }
    log(`${label}: done in ${((now() - t0) / 1000).toFixed(1)} s`);
  }
  // ORT's fixed cost per session.run (a 1 x 1 MatMul): context for the batch-1 rows.
  let ortFixedMs;
  if (timing) {
    try {
      const session = await ort.InferenceSession.create(
        mlpF32Model({ input: 1, layers: [{ type: 'linear', rows: 1, cols: 1, weights: Float32Array.of(0.5) }] }), ortSessionOptions());
      const r = await ortRunner(ort, session, Float32Array.of(3), 1, 1);
      await r.run();
      if (r.output()[0] !== 1.5) throw new Error(`1 x 1 MatMul gave ${r.output()[0]}, expected 1.5`);
      [{ medianMs: ortFixedMs }] = await interleave([r], 500);
      await session.release();
    } catch (e) {
      log(`ORT fixed cost: ${e.message}`);
    }
  }
  const targets = [];
  for (const r of results) {
    const t = TARGETS[`${r.key}/${r.batch}`];
    if (!t) continue;
    for (const activations of ['int8', 'float']) {
      const row = r.rows.find((x) => x.key === `tl-i2-${activations}`);
      targets.push({ label: r.label, name: r.name, batch: r.batch, activations, target: t[activations], ratio: row?.ratio,
        pairedRatio: row?.pairedRatio, met: row?.ratio >= t[activations], how: row?.how });
    }
  }
  return { results, targets, failures, int8How, timing, ortFixedMs, totalMs: now() - started };
}

function pick(c) {
  const { key, name, engine, format, activations, how, weightBytes, gbps, limitMs, checks, error } = c;
  return { key, name, engine, format, activations, how, weightBytes, gbps, limitMs, checks, error };
}

// --- the report -------------------------------------------------------------------------------------

function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)));
  const line = (cells) => '| ' + cells.map((c, i) => String(c ?? '').padEnd(widths[i])).join(' | ') + ' |';
  return [line(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map(line)];
}

const us = (ms) => (ms === undefined ? '' : ms * 1000 >= 1000 ? (ms * 1000).toFixed(0) : (ms * 1000).toFixed(1));
const mb = (b) => (b >= 1e6 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`);

/** The report as lines of text. */
export function formatReport({ results, targets, failures, int8How, timing = true, ortFixedMs }) {
  const out = [
    'limit = weight bytes / read bandwidth, measured in this run on a buffer of that size by a wasm loop of v128 loads',
    '(the faster of 1 and 4 streams, best call): the time a kernel reading its weights once per call cannot beat.',
  ];
  if (ortFixedMs !== undefined) out.push(`ORT session.run fixed cost (1 x 1 MatMul, median): ${us(ortFixedMs)} us.`);
  for (const r of results) {
    out.push('', `${r.label}, batch ${r.batch}${r.kind === 'mnist' ? ' (trained fixture weights, test digits)' : ' (random trits)'}`);
    if (r.nonzero) {
      out.push(`layers' inputs nonzero (float64 reference, the ${r.checkBatch} check inputs): ${r.nonzero.map((f) => `${(100 * f).toFixed(0)}%`).join(', ')}`);
    }
    const rows = r.rows.map((x) => {
      const check = x.checks
        ? [
            x.activations === 'int8' && x.engine === 'tilelli' ? `int8 ref ${x.checks.vsInt8.toExponential(1)}, ` : '',
            `f64 ref ${x.checks.vsFloat.toExponential(1)}${x.checks.overRule ? ` (OVER ${TOL.float})` : ''}`,
            x.checks.agree !== undefined ? `, agree ${(100 * x.checks.agree).toFixed(2)}%, acc ${(100 * x.checks.accuracy).toFixed(2)}%` : '',
          ].join('')
        : '';
      return [
        x.name,
        x.how === STAND_IN ? `int8 (${x.how})` : x.activations,
        x.error ? 'not run (below)' : us(x.medianMs),
        x.error ? '' : us(x.bestMs),
        x.ratio ? `${x.ratio.toFixed(2)}x` : '',
        x.pairedRatio ? `${x.pairedRatio.toFixed(2)}x` : '',
        `${mb(x.weightBytes)} / ${x.gbps.toFixed(1)} GB/s = ${us(x.limitMs)}`,
        x.medianMs ? `${((100 * x.limitMs) / x.medianMs).toFixed(0)}%` : '',
        x.rounds ? `${x.rounds}x${x.group}` : '',
        check,
      ];
    });
    out.push(...table(['engine', 'activations', 'median us', 'best us', 'vs ORT fp32', 'paired', 'limit: weights / read bw = us', 'of limit', 'rounds', 'check (max err / vector max)'], rows));
    for (const x of r.rows) if (x.error) out.push(`  ${x.name}, ${x.activations} activations: ${x.error}`);
  }
  if (!timing) {
    const checked = results.flatMap((r) => r.rows.filter((x) => x.checks).map(() => 1)).length;
    out.push('', `Checks only (no timing): ${checked} network, batch and contender outputs checked, ${failures.length} failed.`);
    if (failures.length) out.push(...failures.map((f) => `  ${f}`));
    return out;
  }
  out.push('', 'Summary: median us per call (ratio = ORT fp32 median / this median); tilelli i2, and in brackets the fastest format:');
  const cell = (x) => (x?.medianMs ? `${us(x.medianMs)} (${x.ratio.toFixed(2)}x)` : x?.error ? 'failed' : '');
  const fastest = (rows, act) => {
    const tl = rows.filter((x) => x.engine === 'tilelli' && x.activations === act && x.medianMs);
    const f = tl.reduce((a, b) => (b.medianMs < a.medianMs ? b : a), tl[0]);
    return f ? ` [${f.format} ${f.ratio.toFixed(2)}x]` : '';
  };
  out.push(...table(['network', 'batch', 'ORT fp32', 'ORT int8 dynamic', 'tilelli float act.', 'tilelli int8 act.'], results.map((r) => {
    const by = (k) => r.rows.find((x) => x.key === k);
    return [r.label, r.batch, us(by('ort-fp32')?.medianMs), cell(by('ort-int8')),
      cell(by('tl-i2-float')) + fastest(r.rows, 'float'), cell(by('tl-i2-int8')) + fastest(r.rows, 'int8')];
  })));
  out.push('', 'Targets (ORT fp32 median / tilelli i2 median, same run; "paired": the median of the per-round ratios, for comparison):');
  out.push(...table(['network, batch', 'activations', 'target', 'measured', '', 'paired'], targets.map((t) => [
    `${t.name} ${t.label.split(' ').at(-1)}, ${t.batch}`,
    t.how === STAND_IN ? `int8 (${t.how})` : t.activations,
    `>= ${t.target}x`,
    t.ratio ? `${t.ratio.toFixed(2)}x` : 'not measured',
    t.met ? 'MET' : 'NOT MET',
    t.pairedRatio ? `${t.pairedRatio.toFixed(2)}x` : '',
  ])));
  if (int8How === STAND_IN) {
    out.push('', 'NOTE: this tilelli has no int8 `linear` yet; int8 rows use `bitlinear` without a norm weight (RMSNorm + int8) as a stand-in.');
  }
  if (failures.length) out.push('', `${failures.length} check(s) failed:`, ...failures.map((f) => `  ${f}`));
  return out;
}
