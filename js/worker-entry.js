// worker-entry.js — what runs inside a tilelli worker (a browser module worker, a Deno worker or
// a Node worker_thread) that js/worker.js (training) or js/lm-worker.js (a language model)
// starts. One job per worker. A training job loads tilelli, builds a Network (js/train.js) and
// trains it in chunks of steps, yielding to the event loop between chunks so that pause, resume,
// cancel, evaluate, export and weights requests are answered between two steps, never during one.
// A language model (js/lm.js) answers its requests one after another; LanguageModel.generate
// yields between tokens, so a cancel is answered (and takes effect) between two tokens.
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

import { STATUS } from './constants.js';
import { TilelliError } from './errors.js';
import { instantiate } from './core.js';
import { compileFetched, makeInit, wasmUrl } from './loader.js';
import { MSG, checkRequest, invalid, isLmRequest, serializeError } from './protocol.js';

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

const init = makeInit(instantiate, (build) => compileAt(wasmUrl(build)), compileAt);

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

// ---------------------------------------------------------------------------------------------
// The job
// ---------------------------------------------------------------------------------------------

let post = () => {};
const job = {
  started: false,
  ready: undefined, // Promise<void>: the network exists
  net: undefined,
  loop: undefined, // the Network's training loop over the training set (C's tl_fit)
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
    const { trits, scales } = job.net.trits(k);
    layers.push({ weight, bias, alpha, trits, scales, shape: [job.net.widths[k + 1], job.net.widths[k]] });
    transfer.push(weight.buffer, bias.buffer, trits.buffer, scales.buffer);
  }
  return { data: { step: job.step, layers }, transfer };
}

function sendSnapshot(id) {
  const { data, transfer } = snapshot();
  post({ id, type: MSG.SNAPSHOT, data }, transfer);
}

async function start(id, o) {
  if (job.started) throw invalid('startTraining: this worker already runs a training job');
  job.started = true;
  let markReady;
  job.ready = new Promise((resolve, reject) => { markReady = { resolve, reject }; });
  job.ready.catch(() => {});
  let net;
  try {
    const tl = await init(o.init ?? {});
    net = o.network.checkpoint !== undefined
      ? tl.Network.fromCheckpoint(o.network.checkpoint, o.network.architecture, { quantizer: o.network.quantizer, seed: o.network.seed })
      : o.network.model !== undefined
        ? tl.Network.fromModel(o.network.model, { quantizer: o.network.quantizer, seed: o.network.seed })
        : tl.Network.create(o.network);
    // the data go into wasm memory once; the core checks them (finite, classes in range)
    job.loop = net.loop(o.data, { batchSize: o.batchSize, seed: o.seed ?? 0 });
    job.test = o.test;
    const totalSteps = o.epochs * Math.ceil(job.loop.count / o.batchSize);
    if (o.optimizer) net.setOptimizer(o.optimizer);
    if (o.schedule) net.setSchedule({ ...o.schedule, totalSteps: o.schedule.totalSteps ?? totalSteps });
    if (o.tequila !== undefined) net.setTequila(o.tequila);
    job.net = net;
    markReady.resolve();
    return await train(id, o, totalSteps);
  } catch (e) {
    if (job.net) sendSnapshot(id); // the weights of the last completed step (a failed step changes nothing)
    else { job.loop?.free(); net?.free(); }
    markReady.reject(e);
    throw e;
  }
}

async function train(id, o, totalSteps) {
  const { net, loop } = job;
  const { epochs, progressEvery } = o;
  const chunkMs = o.chunkMs ?? 10;
  const t0 = performance.now();
  const previous = Array.from({ length: net.layerCount }, (_, k) => net.trits(k).trits);
  let sinceLoss = 0, sinceSteps = 0, lr = net.lr;
  const losses = [];

  // deadzone statistics per layer, and the fraction of trits that changed since the last event
  const progress = (epoch, epochEnd) => {
    const onTest = epochEnd && job.test;
    const { accuracy } = onTest ? net.evaluate(job.test) : loop.evaluate();
    let changed = 0, total = 0;
    const layers = net.deadzoneStats().map((s, k) => {
      const now = net.trits(k).trits, before = previous[k];
      let c = 0;
      for (let i = 0; i < now.length; i++) c += now[i] !== before[i];
      previous[k] = now;
      changed += c;
      total += now.length;
      return { ...s, flipped: c / now.length };
    });
    const event = {
      epoch, step: job.step, totalSteps, loss: sinceLoss / sinceSteps, accuracy, accuracyOn: onTest ? 'test' : 'batch', lr,
      layers, flipped: changed / total, epochEnd, ms: performance.now() - t0,
    };
    sinceLoss = 0;
    sinceSteps = 0;
    post({ id, type: MSG.PROGRESS, data: event });
  };

  sendSnapshot(id);
  let lastYield = performance.now(), epochLoss = 0, epochSteps = 0;
  while (loop.epoch < epochs) {
    if (performance.now() - lastYield >= chunkMs || job.paused) {
      await macrotask();
      while (job.paused && !job.cancelled) await new Promise((resolve) => { job.wake = resolve; });
      lastYield = performance.now();
    }
    if (job.cancelled) return { cancelled: true, step: job.step };
    const epoch = loop.epoch;
    lr = net.lr;
    const loss = loop.step();
    job.step++;
    sinceLoss += loss, sinceSteps++;
    epochLoss += loss, epochSteps++;
    if (loop.epoch > epoch) {
      losses.push(epochLoss / epochSteps);
      epochLoss = 0, epochSteps = 0;
      progress(epoch, true);
      if (loop.epoch < epochs) sendSnapshot(id);
    } else if (job.step % progressEvery === 0) {
      progress(epoch, false);
    }
  }
  const final = job.test ? net.evaluate(job.test) : loop.evaluate({ whole: true });
  sendSnapshot(id);
  return {
    epochs, steps: job.step, losses, accuracy: final.accuracy, loss: final.loss,
    evaluatedOn: job.test ? 'test' : 'train', ms: performance.now() - t0,
  };
}

async function ready() {
  if (!job.ready) throw invalid('the training job has not started');
  await job.ready;
}

// ---------------------------------------------------------------------------------------------
// A language model
// ---------------------------------------------------------------------------------------------

const lm = {
  model: undefined,
  loading: false,
  queue: Promise.resolve(), // requests run one after another, in the order they came
  running: new Map(), // id -> AbortController of a load or generation under way
};

/** What the caller's side mirrors of the model. */
function lmInfo(m) {
  return { config: m.config, vocabSize: m.vocabSize, context: m.context, position: m.position, hasTokenizer: m.tokenizer !== undefined, eosId: m.tokenizer?.eosId };
}

/** The defined keys of o (the options LanguageModel checks: undefined ones are left out). */
const defined = (o) => Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined));

async function lmLoad(id, d) {
  if (job.started || lm.model || lm.loading) throw invalid('loadLanguageModel: this worker already holds a job or a model');
  lm.loading = true;
  const ac = new AbortController();
  lm.running.set(id, ac);
  try {
    const tl = await init(d.init ?? {});
    const opts = defined({ context: d.context, activations: d.activations, format: d.format, embedding: d.embedding });
    lm.model = d.urls
      ? await tl.LanguageModel.fromURL(d.urls, { ...opts, signal: ac.signal, onProgress: (p) => post({ id, type: MSG.PROGRESS, data: p }) })
      : tl.LanguageModel.load(d.files, opts);
    if (ac.signal.aborted) { // cancelled as the load ended
      lm.model.free();
      lm.model = undefined;
      ac.signal.throwIfAborted();
    }
    return { data: lmInfo(lm.model) };
  } finally {
    lm.loading = false;
    lm.running.delete(id);
  }
}

function model() {
  if (!lm.model) throw lm.loading ? invalid('the language model is still loading')
    : new TilelliError('FREED', 'the language model was freed', { status: STATUS.FREED });
  return lm.model;
}

async function lmGenerate(id, d) {
  const m = model();
  const ac = new AbortController();
  lm.running.set(id, ac);
  try {
    const r = await m.generate(d.prompt, {
      ...defined(d.options), signal: ac.signal,
      onToken: (t) => post({ id, type: MSG.TOKEN, data: t }),
    });
    return { data: { ...r, position: m.position }, transfer: [r.tokens.buffer] };
  } finally {
    lm.running.delete(id);
  }
}

async function lmRequest(id, type, d) {
  switch (type) {
    case MSG.LM_LOAD: return lmLoad(id, d);
    case MSG.LM_GENERATE: return lmGenerate(id, d);
    case MSG.LM_LOGITS: {
      const m = model();
      const logits = m.logits(d.tokens, defined(d.options));
      return { data: { logits, position: m.position }, transfer: [logits.buffer] };
    }
    case MSG.LM_RESET: model().reset(); return { data: { position: 0 } };
    case MSG.LM_ACTIVATIONS: {
      const m = model();
      m.setActivations(d);
      return { data: { config: m.config } };
    }
    case MSG.LM_SAVE: {
      const bytes = model().save();
      return { data: bytes, transfer: [bytes.buffer] };
    }
    case MSG.LM_FREE:
      lm.model?.free();
      lm.model = undefined;
      return { data: undefined };
    default: // checkRequest refused anything else
      return { data: undefined };
  }
}

function lmHandle({ id, type, data }) {
  if (type === MSG.LM_CANCEL) { // at once, not after what runs
    lm.running.get(data?.id)?.abort(new DOMException('cancelled by the caller', 'AbortError'));
    post({ id, type: MSG.RESULT, data: undefined });
    return;
  }
  lm.queue = lm.queue.then(async () => {
    try {
      const { data: result, transfer = [] } = await lmRequest(id, type, data);
      post({ id, type: MSG.RESULT, data: result }, transfer);
    } catch (e) {
      post({ id, type: MSG.ERROR, data: { ...serializeError(e), position: lm.model?.freed === false ? lm.model.position : undefined } });
    }
  });
}

async function handle(message) {
  const { id, type, data } = message ?? {};
  try {
    checkRequest(message);
    if (isLmRequest(type)) {
      lmHandle(message);
      return;
    }
    if (lm.model || lm.loading) throw invalid('startTraining: this worker holds a language model');
    let result, transfer = [];
    switch (type) {
      case MSG.START:
        result = await start(id, data);
        break;
      case MSG.PAUSE:
        job.paused = true;
        result = { step: job.step };
        break;
      case MSG.RESUME:
        job.paused = false;
        job.wake?.();
        result = { step: job.step };
        break;
      case MSG.CANCEL:
        job.cancelled = true;
        job.wake?.();
        if (job.net) ({ data: result, transfer } = snapshot());
        else result = { step: job.step, layers: undefined };
        break;
      case MSG.WEIGHTS:
        await ready();
        ({ data: result, transfer } = snapshot());
        break;
      case MSG.EVALUATE: {
        await ready();
        const r = data ? job.net.evaluate(data) : job.test ? job.net.evaluate(job.test) : job.loop.evaluate({ whole: true });
        result = { ...r, step: job.step };
        break;
      }
      case MSG.EXPORT: {
        await ready();
        const bytes = job.net.toModel({ format: data?.format, metadata: data?.metadata });
        result = bytes;
        transfer = [bytes.buffer];
        break;
      }
      default: // checkRequest refused anything else
    }
    post({ id, type: MSG.RESULT, data: result }, transfer);
  } catch (e) {
    post({ id, type: MSG.ERROR, data: serializeError(e) });
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
