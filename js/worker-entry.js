// worker-entry.js — what runs inside the training worker (a browser module worker, a Deno worker or
// a Node worker_thread) that js/worker.js starts. One job per worker: it loads tilelli, builds a
// Network (js/train.js) and trains it in chunks of steps, yielding to the event loop between
// chunks so that pause, resume, cancel, evaluate, export and weights requests are answered between
// two steps, never during one.
//
// Protocol (ffmpeg.wasm / Squoosh style): every request is { id, type, data } and gets exactly one
// { id, type: 'result', data } or { id, type: 'error', data: { name, code, message, status } }.
// While the 'start' request runs, the worker also sends, under the start's id,
// { type: 'progress', data } events and { type: 'snapshot', data: { step, layers } } copies of the
// weights (at the start, at each epoch end, at the end, before an error): the main side keeps the
// latest, so weights are available even if the worker can no longer answer.
//
// Nothing here names a 'node:' module literally: bundlers for the browser (esbuild, Vite, webpack)
// fail on `import('node:…')` even behind a runtime check.

import { TilelliError } from './errors.js';
import { compileFetched, makeInit, wasmUrl } from './loader.js';
import { shuffler } from './train.js'; // the seeded shuffle of Network.fit: a worker run trains as net.fit does

const isNode = typeof globalThis.process?.versions?.node === 'string';
const isWebWorker = typeof WorkerGlobalScope === 'function' && globalThis instanceof WorkerGlobalScope;

/** A Node built-in module, without a literal import a browser bundler would try to resolve. */
async function builtin(name) {
  if (typeof process.getBuiltinModule === 'function') return process.getBuiltinModule(`node:${name}`);
  const specifier = `node:${name}`;
  return import(/* webpackIgnore: true */ /* @vite-ignore */ specifier);
}

/** The shipped builds (or { url }): read from disk under Node, fetched everywhere else. */
async function compileAt(url) {
  if (isNode && url.protocol === 'file:') {
    const { readFile } = await builtin('fs/promises');
    return WebAssembly.compile(await readFile(url));
  }
  return compileFetched(url);
}

const init = makeInit((simd) => compileAt(wasmUrl(simd)), compileAt);

const QUANTIZERS = ['none', 'per_tensor', 'per_row', 'lsq', 'lsq_paper'];

/** A macrotask: messages that arrived meanwhile are dispatched before it runs. setImmediate in
 * Node (after the poll phase that delivers port messages); a MessageChannel elsewhere, because
 * nested setTimeout(0) is clamped to 4 ms in browsers. */
const macrotask = (() => {
  if (typeof setImmediate === 'function') return () => new Promise((resolve) => setImmediate(resolve));
  if (typeof MessageChannel === 'function') {
    const channel = new MessageChannel();
    const waiting = [];
    channel.port1.onmessage = () => waiting.shift()?.();
    return () => new Promise((resolve) => {
      waiting.push(resolve);
      channel.port2.postMessage(0);
    });
  }
  return () => new Promise((resolve) => setTimeout(resolve, 0));
})();

function serializeError(e) {
  if (e instanceof TilelliError || (e && typeof e.code === 'string' && e.name === 'TilelliError')) {
    return { name: 'TilelliError', code: e.code, message: e.message, status: e.status };
  }
  return { name: e?.name ?? 'Error', message: e?.message ?? String(e), stack: e?.stack };
}

const invalid = (message) => new TilelliError('INVALID_ARGUMENT', `startTraining: ${message}`);

/** Float32 inputs: a Float32Array as is, any other numeric array converted. */
function floats(v, what) {
  if (v instanceof Float32Array) return v;
  if (ArrayBuffer.isView(v) || Array.isArray(v)) return Float32Array.from(v);
  throw invalid(`${what} must be a Float32Array`);
}

/** Check a labelled set against the network's widths: lengths, finite inputs, labels in range. */
function checkSet(set, widths, what) {
  const x = floats(set.x, `${what}.x`);
  const labels = set.labels;
  const inputs = widths[0], outputs = widths[widths.length - 1];
  if (!labels || typeof labels.length !== 'number') throw invalid(`${what}.labels must be a Uint8Array or Uint32Array`);
  if (labels.length === 0 || x.length !== labels.length * inputs) {
    throw new TilelliError('SIZE_MISMATCH', `startTraining: ${what}.x has ${x.length} values for ${labels.length} labels of ${inputs} inputs each`);
  }
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) {
      throw new TilelliError('NON_FINITE', `startTraining: ${what}.x[${i}] (sample ${Math.floor(i / inputs)}) is ${x[i]}`, { status: -3 });
    }
  }
  for (let i = 0; i < labels.length; i++) {
    if (!Number.isInteger(labels[i]) || labels[i] < 0 || labels[i] >= outputs) {
      throw invalid(`${what}.labels[${i}] is ${labels[i]}, not a class in 0..${outputs - 1}`);
    }
  }
  return { x, labels, count: labels.length };
}

/**
 * A Network that computes what a packed model file computes: widths and activation from its
 * layers, each linear layer's trits times its scales as shadow weights, scaled so the quantizer
 * gives back the same trits and scales (exactly for per-tensor scales under per_tensor / lsq,
 * and for per_row).
 */
function networkFromModel(tl, bytes, options) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  tl.Model.load(b).free(); // validated by the C loader first
  const hlen = Number(new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(8, true));
  const header = JSON.parse(new TextDecoder().decode(b.subarray(16, 16 + hlen)));
  const base = 16 + hlen;
  const blob = ([at, len]) => b.slice(base + at, base + at + len);
  const widths = [header.input], linears = [], activations = new Set();
  let previous;
  header.layers.forEach((L, i) => {
    if (L.type === 'linear') {
      if (previous === 'linear') activations.add('none');
      linears.push(L);
      widths.push(L.out);
    } else if (['relu', 'gelu', 'silu'].includes(L.type) && previous === 'linear') {
      activations.add(L.type);
    } else {
      throw invalid(`network.model: layer ${i} (${L.type}) cannot be trained: a trainable model is linear layers with one activation (relu, gelu or silu) between them`);
    }
    previous = L.type;
  });
  if (previous !== 'linear' || activations.size > 1) {
    throw invalid('network.model: a trainable model ends with a linear layer and has the same activation between all its linear layers');
  }
  const activation = [...activations][0];
  const meta = header.metadata ?? {};
  const quantizer = options.quantizer ?? (QUANTIZERS.includes(meta.quantizer) ? meta.quantizer : 'per_tensor');
  const net = tl.Network.create({ widths, activation: options.activation ?? activation ?? 'none', quantizer, seed: options.seed ?? 0 });
  try {
    linears.forEach((L, k) => {
      const trits = tl.unpack(blob(L.packed), [L.out, L.in], L.weights);
      const scales = new Float32Array(blob(L.scales).buffer);
      const bias = L.bias ? new Float32Array(blob(L.bias).buffer) : new Float32Array(L.out);
      const weight = new Float32Array(trits.length);
      let alpha = scales[0];
      // AbsMean of trit * s / p is s when p is the fraction of nonzero trits it is taken over,
      // and every nonzero |w| / alpha is then 1 / p >= 1: the same trit again.
      const nonzero = (from, to) => { let c = 0; for (let i = from; i < to; i++) c += trits[i] !== 0; return c / (to - from); };
      const pTensor = nonzero(0, trits.length);
      for (let r = 0; r < L.out; r++) {
        let f = scales[r];
        if (quantizer === 'per_tensor') f /= pTensor || 1;
        else if (quantizer === 'per_row') f /= nonzero(r * L.in, (r + 1) * L.in) || 1;
        else if (quantizer === 'lsq' || quantizer === 'lsq_paper') f = alpha;
        for (let c = 0; c < L.in; c++) weight[r * L.in + c] = trits[r * L.in + c] * f;
      }
      if (!(alpha > 0)) alpha = 1;
      net.setLayer(k, { weight, bias, alpha });
    });
  } catch (e) {
    net.free();
    throw e;
  }
  return net;
}

// ---------------------------------------------------------------------------------------------
// The job
// ---------------------------------------------------------------------------------------------

let post = () => {};
const job = {
  started: false,
  ready: undefined, // Promise<void>: the network exists
  net: undefined,
  train: undefined,
  test: undefined,
  step: 0,
  paused: false,
  cancelled: false,
  wake: undefined, // resolves the wait of a paused loop
};

function snapshot() {
  const layers = [], transfer = [];
  for (let k = 0; k < job.net.layerCount; k++) {
    const { weight, bias, alpha } = job.net.getLayer(k);
    layers.push({ weight, bias, alpha, shape: [job.net.widths[k + 1], job.net.widths[k]] });
    transfer.push(weight.buffer, bias.buffer);
  }
  return { data: { step: job.step, layers }, transfer };
}

function sendSnapshot(id) {
  const { data, transfer } = snapshot();
  post({ id, type: 'snapshot', data }, transfer);
}

async function start(id, o) {
  if (job.started) throw invalid('this worker already runs a training job');
  job.started = true;
  let markReady;
  job.ready = new Promise((resolve, reject) => { markReady = { resolve, reject }; });
  job.ready.catch(() => {});
  let net;
  try {
    const tl = await init(o.init ?? {});
    net = o.network.model !== undefined
      ? networkFromModel(tl, o.network.model, o.network)
      : tl.Network.create(o.network);
    job.train = checkSet(o.data, net.widths, 'data');
    if (o.test) job.test = checkSet(o.test, net.widths, 'test');
    const stepsPerEpoch = Math.ceil(job.train.count / o.batchSize);
    const totalSteps = o.epochs * stepsPerEpoch;
    if (o.optimizer) net.setOptimizer(o.optimizer);
    if (o.schedule) net.setSchedule({ ...o.schedule, totalSteps: o.schedule.totalSteps ?? totalSteps });
    if (o.tequila !== undefined) net.setTequila(o.tequila);
    job.net = net;
    markReady.resolve();
    return await train(id, o, totalSteps);
  } catch (e) {
    if (job.net) sendSnapshot(id); // the weights of the last completed step (a failed step changes nothing)
    else net?.free();
    markReady.reject(e);
    throw e;
  }
}

async function train(id, o, totalSteps) {
  const { net, train: { x, labels, count } } = job;
  const inputs = net.widths[0];
  const { epochs, batchSize, progressEvery } = o;
  const chunkMs = o.chunkMs ?? 10;
  const shuffle = shuffler(o.seed ?? 0);
  const bx = new Float32Array(batchSize * inputs), bl = new Uint32Array(batchSize);
  const t0 = performance.now();
  let previous = Array.from({ length: net.layerCount }, (_, k) => net.trits(k).trits);
  let sinceLoss = 0, sinceSteps = 0, lr = net.lr, lastBatch;
  const losses = [];

  // deadzone statistics per layer, and the fraction of trits that changed since the last event
  const progress = (epoch, epochEnd) => {
    let accuracy, accuracyOn;
    if (epochEnd && job.test) {
      ({ accuracy } = net.evaluate(job.test));
      accuracyOn = 'test';
    } else {
      ({ accuracy } = net.evaluate(lastBatch));
      accuracyOn = 'batch';
    }
    const stats = net.deadzoneStats();
    let changed = 0, total = 0;
    const layers = stats.map((s, k) => {
      const now = net.trits(k).trits, before = previous[k];
      let c = 0;
      for (let i = 0; i < now.length; i++) c += now[i] !== before[i];
      previous[k] = now;
      changed += c;
      total += now.length;
      return { ...s, flipped: c / now.length };
    });
    const event = {
      epoch, step: job.step, totalSteps, loss: sinceLoss / sinceSteps, accuracy, accuracyOn, lr,
      layers, flipped: changed / total, epochEnd, ms: performance.now() - t0,
    };
    sinceLoss = 0;
    sinceSteps = 0;
    post({ id, type: 'progress', data: event });
  };

  sendSnapshot(id);
  let lastYield = performance.now();
  for (let e = 0; e < epochs; e++) {
    const order = shuffle(Array.from({ length: count }, (_, i) => i));
    let epochLoss = 0, epochSteps = 0;
    for (let s = 0; s < count; s += batchSize) {
      if (performance.now() - lastYield >= chunkMs || job.paused) {
        await macrotask();
        while (job.paused && !job.cancelled) await new Promise((resolve) => { job.wake = resolve; });
        lastYield = performance.now();
      }
      if (job.cancelled) return { cancelled: true, step: job.step };
      const m = Math.min(batchSize, count - s);
      for (let i = 0; i < m; i++) {
        const j = order[s + i];
        bx.set(x.subarray(j * inputs, (j + 1) * inputs), i * inputs);
        bl[i] = labels[j];
      }
      lastBatch = { x: bx.subarray(0, m * inputs), labels: bl.subarray(0, m) };
      lr = net.lr;
      const loss = net.trainStep(lastBatch.x, { labels: lastBatch.labels });
      job.step++;
      sinceLoss += loss, sinceSteps++;
      epochLoss += loss, epochSteps++;
      const last = s + batchSize >= count;
      if (!last && job.step % progressEvery === 0) progress(e, false);
    }
    losses.push(epochLoss / epochSteps);
    progress(e, true);
    if (e + 1 < epochs) sendSnapshot(id);
  }
  const final = net.evaluate(job.test ?? job.train);
  sendSnapshot(id);
  return {
    epochs, steps: job.step, losses, accuracy: final.accuracy, loss: final.loss,
    evaluatedOn: job.test ? 'test' : 'train', ms: performance.now() - t0,
  };
}

async function ready() {
  if (!job.ready) throw new TilelliError('INVALID_ARGUMENT', 'the training job has not started');
  await job.ready;
}

async function handle(message) {
  const { id, type, data } = message ?? {};
  try {
    let result, transfer = [];
    switch (type) {
      case 'start':
        result = await start(id, data);
        break;
      case 'pause':
        job.paused = true;
        result = { step: job.step };
        break;
      case 'resume':
        job.paused = false;
        job.wake?.();
        result = { step: job.step };
        break;
      case 'cancel':
        job.cancelled = true;
        job.wake?.();
        if (job.net) ({ data: result, transfer } = snapshot());
        else result = { step: job.step, layers: undefined };
        break;
      case 'weights':
        await ready();
        ({ data: result, transfer } = snapshot());
        break;
      case 'evaluate': {
        await ready();
        const set = data ? checkSet(data, job.net.widths, 'evaluate') : job.test ?? job.train;
        result = { ...job.net.evaluate(set), step: job.step };
        break;
      }
      case 'export': {
        await ready();
        const bytes = job.net.toModel({ format: data?.format, metadata: data?.metadata });
        result = bytes;
        transfer = [bytes.buffer];
        break;
      }
      default:
        throw new TilelliError('INVALID_ARGUMENT', `training worker: unknown request ${JSON.stringify(type)}`);
    }
    post({ id, type: 'result', data: result }, transfer);
  } catch (e) {
    post({ id, type: 'error', data: serializeError(e) });
  }
}

// Connect: a web worker's global scope, or Node's parentPort. Anything else (the module imported on
// a main thread) stays inert. The web listener is attached before any await: messages that arrive
// while a module worker is still evaluating would otherwise be lost.
if (isWebWorker) {
  globalThis.addEventListener('message', (event) => { handle(event.data); });
  post = (message, transfer = []) => globalThis.postMessage(message, transfer);
} else if (isNode) {
  const { parentPort } = await builtin('worker_threads');
  if (parentPort) {
    parentPort.on('message', handle);
    post = (message, transfer = []) => parentPort.postMessage(message, transfer);
  }
}
