// worker.js — train a Network off the main thread: one API over browser module workers, Deno
// workers and Node worker_threads.
//
//   const job = startTraining({ network: { widths: [784, 256, 256, 10] }, data: { x, labels },
//     test, epochs: 1, batchSize: 64, onProgress: (p) => draw(p), signal });
//   await job.pause(); await job.resume();
//   const { accuracy } = await job.done;
//   const bytes = await job.export({ format: 'i2' });   // the packed model file
//   job.terminate();
//
// The worker (js/worker-entry.js) answers { id, type, data } requests between training steps.
// data.x / data.labels (and test) are transferred, not copied: the caller's arrays are detached.
// A busy wasm loop can only be stopped by terminating its worker; cancelling (the signal) asks the
// worker for the weights of its last completed step first, waits at most cancelTimeout for them,
// then terminates it. Nothing here names a 'node:' module literally, so that browser bundlers
// accept this file.

import { TilelliError } from './errors.js';
import { STATUS } from './constants.js';
import { lastInitUrl } from './loader.js';
import { MSG, abortError, checkSet, reviveError } from './protocol.js';
import { options } from './runtime.js';

const isNode = typeof globalThis.process?.versions?.node === 'string';
const noop = () => {};

/** Node's worker_threads, synchronously when the runtime can (Node >= 20.16), else a promise. */
function workerThreads() {
  if (typeof process.getBuiltinModule === 'function') return process.getBuiltinModule('node:worker_threads');
  const specifier = 'node:worker_threads';
  return import(/* webpackIgnore: true */ /* @vite-ignore */ specifier);
}

/**
 * The worker, or a promise of it. Bundlers that understand workers (webpack 5, Vite, Parcel)
 * recognize the literal `new Worker(new URL('./worker-entry.js', import.meta.url), { type:
 * 'module' })` and bundle the entry; for the others pass options.worker.
 */
export function createWorker(spec, fn = 'startTraining') {
  if (typeof spec === 'function') return spec();
  if (spec && typeof spec === 'object' && !(spec instanceof URL) && typeof spec.postMessage === 'function') return spec;
  const web = typeof globalThis.Worker === 'function';
  if (spec !== undefined) {
    if (typeof spec !== 'string' && !(spec instanceof URL)) {
      throw new TilelliError('INVALID_ARGUMENT', `${fn}: worker must be a URL, a string, a Worker or a function returning one`);
    }
    if (web) return new Worker(spec, { type: 'module' });
    if (!isNode) throw new TilelliError('INVALID_ARGUMENT', `${fn}: this runtime has neither Worker nor worker_threads`);
    const wt = workerThreads();
    const url = typeof spec === 'string' ? new URL(spec, import.meta.url) : spec;
    return typeof wt.then === 'function' ? wt.then((m) => new m.Worker(url)) : new wt.Worker(url);
  }
  if (web) return new Worker(new URL('./worker-entry.js', import.meta.url), { type: 'module' });
  if (!isNode) throw new TilelliError('INVALID_ARGUMENT', `${fn}: this runtime has neither Worker nor worker_threads; pass options.worker`);
  const wt = workerThreads();
  const url = new URL('./worker-entry.js', import.meta.url);
  return typeof wt.then === 'function' ? wt.then((m) => new m.Worker(url)) : new wt.Worker(url);
}

/**
 * The init options a worker gets: the caller's, or the wasm URL the latest init({ url }) used (a
 * bundled app gives it once); a URL relative to the page (or this module), not to wherever the
 * worker script lives.
 */
/**
 * Route a worker's messages to receive(data) and its failures to fail(error), in Node
 * (worker_threads) and in browsers (Worker). what names it in messages ('training worker'); hint
 * ends the message of a worker that failed to load. Returns { node, exited } (exited: a promise of
 * the exit code in Node, else undefined).
 */
export function listenToWorker(worker, what, hint, receive, fail) {
  const node = typeof worker.on === 'function' && typeof worker.ref === 'function';
  let exited;
  if (node) {
    worker.on('message', receive);
    worker.on('error', (e) => fail(e));
    worker.on('messageerror', () => fail(new Error(`${what}: a message could not be deserialized`)));
    exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.once('exit', (code) => fail(new Error(`the ${what} exited (code ${code})`)));
  } else {
    worker.addEventListener('message', (e) => receive(e.data));
    worker.addEventListener('error', (e) => {
      e.preventDefault?.();
      fail(new Error(`${what}: ${e.message || hint}`));
    });
    worker.addEventListener('messageerror', () => fail(new Error(`${what}: a message could not be deserialized`)));
  }
  return { node, exited };
}

export function workerInit(init) {
  if (init?.url !== undefined) return { ...init, url: new URL(init.url, globalThis.location?.href ?? import.meta.url).href };
  return init ?? (lastInitUrl() ? { url: lastInitUrl() } : undefined);
}

/** Integer checks of the options, before anything is transferred. */
function positiveInteger(v, name, fallback) {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v <= 0) throw new TilelliError('INVALID_ARGUMENT', `startTraining: ${name} must be a positive integer, got ${v}`);
  return v;
}

/** The buffers to transfer: each once (a repeated buffer is a DataCloneError), never a shared one. */
function transferables(views) {
  const set = new Set();
  for (const v of views) {
    if (!ArrayBuffer.isView(v)) continue;
    if (typeof SharedArrayBuffer === 'function' && v.buffer instanceof SharedArrayBuffer) continue;
    set.add(v.buffer);
  }
  return [...set];
}

/** Take the caller's buffers now (they are detached when startTraining returns), without copying. */
function take(payload, transfer) {
  try {
    return structuredClone(payload, { transfer });
  } catch {
    // e.g. a view on a WebAssembly.Memory, which cannot be transferred: copy that one instead
    return structuredClone(payload);
  }
}

class TrainingJob {
  #worker; // the Worker once it exists
  #node = false;
  #queue = []; // messages posted before the worker existed
  #pending = new Map(); // id -> { resolve, reject, type }
  #nextId = 1;
  #startId = 0;
  #state = 'starting';
  #step = 0;
  #totalSteps = 0;
  #snapshot; // { step, layers } the latest weights the worker sent
  #onProgress;
  #onError;
  #cancelTimeout;
  #doneSettle;
  #closed = false;
  #exited;
  #unlisten = noop;

  /** @internal use startTraining */
  constructor(options, payload, transfer) {
    this.#onProgress = options.onProgress;
    this.#onError = options.onError;
    this.#cancelTimeout = options.cancelTimeout ?? 1000;
    /** Resolves with the TrainingResult when the last epoch ends; rejects on an error or a cancel. */
    this.done = new Promise((resolve, reject) => { this.#doneSettle = { resolve, reject }; });
    const signal = options.signal;
    if (signal?.aborted) {
      this.#state = 'cancelled';
      this.#closed = true;
      this.done.catch(noop);
      this.#doneSettle.reject(abortError('startTraining: the signal was already aborted', signal.reason));
      return;
    }
    // The worker first: a runtime without workers throws here, before anything is transferred.
    const w = createWorker(options.worker);
    const sets = take({ data: payload.data, test: payload.test }, transfer);
    this.#startId = this.#nextId++;
    this.#pending.set(this.#startId, {
      type: MSG.START,
      resolve: (r) => {
        this.#state = 'done';
        this.#refresh();
        this.#doneSettle.resolve(r);
      },
      reject: (e) => {
        this.#state = 'failed';
        this.#refresh();
        this.#doneSettle.reject(e);
      },
    });
    this.#post({ id: this.#startId, type: MSG.START, data: { ...payload, ...sets } },
      transferables([sets.data.x, sets.data.labels, sets.test?.x, sets.test?.labels]));
    if (signal) {
      // Kept until the worker is gone: an abort after done still frees the worker.
      const onAbort = () => this.#cancel(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#unlisten = () => signal.removeEventListener('abort', onAbort);
    }
    if (typeof w?.then === 'function') w.then((worker) => this.#attach(worker), (e) => this.#fail(e));
    else this.#attach(w);
  }

  /** 'starting' | 'training' | 'paused' | 'done' | 'failed' | 'cancelling' | 'cancelled' | 'terminated' */
  get state() { return this.#state; }
  /** Steps completed as of the latest progress event or acknowledgement. */
  get step() { return this.#step; }
  /** Steps the whole run takes (known from the first progress event). */
  get totalSteps() { return this.#totalSteps; }
  /** The underlying Worker (web) or worker_threads Worker (Node), once created. */
  get worker() { return this.#worker; }

  #attach(worker) {
    if (this.#closed) {
      worker.terminate();
      return;
    }
    this.#worker = worker;
    const l = listenToWorker(worker, 'training worker',
      'the worker failed to load (is its URL right? In a bundled app, bundle tilelli/worker-entry.js as its own entry point, named worker-entry.js beside your bundle, or pass options.worker: README "Bundled apps")',
      (m) => this.#receive(m), (e) => this.#fail(e));
    this.#node = l.node;
    this.#exited = l.exited;
    if (this.#state === 'starting') this.#state = 'training';
    for (const [m, t] of this.#queue.splice(0)) worker.postMessage(m, t);
    this.#refresh();
  }

  #post(message, transfer = []) {
    if (this.#worker) this.#worker.postMessage(message, transfer);
    else this.#queue.push([message, transfer]);
  }

  /** Keep a Node process alive only while the worker trains or owes an answer. */
  #refresh() {
    if (!this.#node || this.#closed) return;
    const busy = this.#pending.size > 0 || this.#state === 'cancelling';
    if (busy) this.#worker.ref();
    else this.#worker.unref();
  }

  #receive(message) {
    const { id, type, data } = message ?? {};
    if (type === MSG.PROGRESS) {
      if (this.#state !== 'training' && this.#state !== 'paused') return;
      this.#step = data.step;
      this.#totalSteps = data.totalSteps;
      this.#report(data);
      return;
    }
    if (type === MSG.SNAPSHOT) {
      this.#snapshot = data;
      this.#step = Math.max(this.#step, data.step);
      return;
    }
    const p = this.#pending.get(id);
    if (!p) return; // answered after a timeout or its own signal
    this.#pending.delete(id);
    if (type === MSG.RESULT) p.resolve(data);
    else p.reject(reviveError(data));
    this.#refresh();
  }

  #report(event) {
    if (!this.#onProgress) return;
    try {
      this.#onProgress(event);
    } catch (e) {
      // A broken progress callback must not stop the training it reports on.
      try {
        if (this.#onError) this.#onError(e);
        else console.error('tilelli startTraining: onProgress threw (training continues):', e);
      } catch (e2) {
        console.error('tilelli startTraining: onError threw:', e2);
      }
    }
  }

  /** One request; rejects on the call's signal, on timeout, or when the job closes. */
  #request(type, data, { signal, timeout, transfer } = {}) {
    if (this.#closed) return Promise.reject(new TilelliError('FREED', `TrainingJob.${type}: the training worker was terminated`, { status: STATUS.FREED }));
    if (signal?.aborted) return Promise.reject(abortError(`TrainingJob.${type}: aborted`, signal.reason));
    const id = this.#nextId++;
    let entry;
    const promise = new Promise((resolve, reject) => {
      let timer;
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        this.#pending.delete(id);
        cleanup();
        this.#refresh();
        reject(abortError(`TrainingJob.${type}: aborted`, signal.reason));
      };
      entry = {
        type,
        resolve: (v) => { cleanup(); resolve(v); },
        reject: (e) => { cleanup(); reject(e); },
      };
      this.#pending.set(id, entry);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeout !== undefined) {
        timer = setTimeout(() => {
          this.#pending.delete(id);
          cleanup();
          this.#refresh();
          reject(new DOMException(`TrainingJob.${type}: no answer in ${timeout} ms`, 'TimeoutError'));
        }, timeout);
      }
      this.#post({ id, type, data }, transfer);
      this.#refresh();
    });
    entry.promise = promise;
    return promise;
  }

  /**
   * Stop between two steps until resume(). Resolves { step } once the worker has stopped: no step
   * runs until resume() (evaluate, export and weights still answer).
   */
  async pause(opts) {
    const { signal } = options(opts, 'TrainingJob.pause');
    const r = await this.#request(MSG.PAUSE, undefined, { signal });
    if (this.#state === 'training') this.#state = 'paused';
    this.#step = r.step;
    return r;
  }

  /** Continue after pause(). Resolves { step } once the worker has taken it. */
  async resume(opts) {
    const { signal } = options(opts, 'TrainingJob.resume');
    const r = await this.#request(MSG.RESUME, undefined, { signal });
    if (this.#state === 'paused') this.#state = 'training';
    return r;
  }

  /**
   * { accuracy, loss, count, step } of the current weights on data ({ x, labels }, copied, not
   * transferred), or on the test set (the training data when there is none).
   */
  async evaluate(data, opts) {
    const { signal } = options(opts, 'TrainingJob.evaluate');
    return this.#request(MSG.EVALUATE, data, { signal });
  }

  /** The packed model file of the current weights (Network.toModel). */
  async export(opts) {
    const { format = 'i2', metadata, signal } = options(opts, 'TrainingJob.export');
    return this.#request(MSG.EXPORT, { format, metadata }, { signal });
  }

  /**
   * Each layer's float32 shadow weights { weight, bias, alpha, shape: [out, in] } as of the last
   * completed step; the array's `step` says which. Asked of the worker (waiting at most `timeout`
   * ms); otherwise, and after the worker is gone (cancel, terminate), the latest snapshot it sent.
   */
  async weights(opts) {
    const { timeout = 1000, signal } = options(opts, 'TrainingJob.weights');
    let snap;
    if (!this.#closed) {
      try {
        snap = await this.#request(MSG.WEIGHTS, undefined, { timeout, signal });
        this.#snapshot = snap;
      } catch (e) {
        if (e?.name === 'AbortError' && signal?.aborted) throw e;
      }
    }
    snap ??= this.#snapshot;
    if (!snap?.layers) throw new TilelliError('FREED', 'TrainingJob.weights: the worker is gone and sent no weights', { status: STATUS.FREED });
    const layers = snap.layers.map((L) => ({ weight: L.weight.slice(), bias: L.bias.slice(), alpha: L.alpha, trits: L.trits.slice(), scales: L.scales.slice(), shape: L.shape.slice() }));
    return Object.assign(layers, { step: snap.step });
  }

  /** Cancel (the signal's path): the final weights if the worker answers in time, then terminate. */
  async #cancel(reason) {
    if (this.#closed || this.#state === 'cancelling') return;
    if (this.#state === 'done' || this.#state === 'failed') {
      await this.terminate();
      return;
    }
    this.#state = 'cancelling';
    this.#pending.delete(this.#startId); // the worker's own answer to 'start' no longer counts
    try {
      const snap = await this.#request(MSG.CANCEL, undefined, { timeout: this.#cancelTimeout });
      if (snap?.layers) this.#snapshot = snap;
    } catch {} // no answer in time: the latest snapshot stands
    await this.#close(abortError('startTraining: training was cancelled', reason), 'cancelled', true);
  }

  /**
   * Terminate the worker now (a busy step is cut short). What is pending, done included when
   * training was still running, rejects with an AbortError; weights() then gives the latest
   * snapshot. Resolves once the worker is gone.
   */
  async terminate() {
    await this.#close(abortError('TrainingJob.terminate: the training job was terminated'), 'terminated', true);
  }

  /**
   * Terminate the worker, then reject everything pending, done included (a no-op once it settled),
   * with `error`. `asked`: the caller wanted this, so unobserved rejections are not reported.
   */
  async #close(error, state, asked) {
    if (this.#closed) return;
    this.#closed = true;
    this.#unlisten();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    if (this.#state !== 'done' && this.#state !== 'failed') this.#state = state;
    if (asked) {
      this.done.catch(noop);
      for (const p of pending) p.promise?.catch(noop);
    }
    const worker = this.#worker;
    if (worker) {
      const r = worker.terminate();
      if (this.#node) await Promise.all([r, this.#exited]);
    }
    for (const p of pending) if (p.type !== MSG.START) p.reject(error);
    this.#doneSettle.reject(error);
  }

  /** The worker failed (an uncaught error, a load failure, an unexpected exit). */
  #fail(error) {
    this.#close(error, 'failed', false).then(noop, noop);
  }

  [Symbol.dispose ?? Symbol.for('Symbol.dispose')]() { this.terminate().then(noop, noop); }
  [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() { return this.terminate(); }
}

/**
 * Train a Network in a worker. Throws a TilelliError (INVALID_ARGUMENT, SIZE_MISMATCH) for bad
 * options before anything is transferred; everything later (e.g. NON_FINITE) rejects job.done.
 */
export function startTraining(options) {
  if (!options || typeof options !== 'object') throw new TilelliError('INVALID_ARGUMENT', 'startTraining: options must be an object');
  const {
    network, optimizer, schedule, tequila, data, test, init, seed = 0,
  } = options;
  if (!network || typeof network !== 'object') {
    throw new TilelliError('INVALID_ARGUMENT', 'startTraining: network must be { widths, activation, quantizer, seed }, { model } or { checkpoint, architecture }');
  }
  let inputs;
  if (network.checkpoint !== undefined) {
    if (!(network.checkpoint instanceof Uint8Array || network.checkpoint instanceof ArrayBuffer)) {
      throw new TilelliError('INVALID_ARGUMENT', 'startTraining: network.checkpoint must be the bytes of a safetensors file (Uint8Array)');
    }
    const arch = network.architecture;
    if (!arch || typeof arch !== 'object' || !Array.isArray(arch.layers) || !Number.isSafeInteger(arch.input)) {
      throw new TilelliError('INVALID_ARGUMENT', 'startTraining: network.architecture must be { input, layers: [...] } (what tilelli pack --arch reads)');
    }
    inputs = arch.input;
  } else if (network.model !== undefined) {
    if (!(network.model instanceof Uint8Array || network.model instanceof ArrayBuffer)) {
      throw new TilelliError('INVALID_ARGUMENT', 'startTraining: network.model must be the bytes of a packed model file (Uint8Array)');
    }
  } else {
    if (!Array.isArray(network.widths) || network.widths.length < 2) {
      throw new TilelliError('INVALID_ARGUMENT', `startTraining: network.widths must be [inputs, ..., outputs], got ${JSON.stringify(network.widths)}`);
    }
    inputs = network.widths[0];
  }
  checkSet(data, inputs, 'data');
  if (test !== undefined) checkSet(test, inputs, 'test');
  const epochs = positiveInteger(options.epochs, 'epochs', 1);
  const batchSize = positiveInteger(options.batchSize, 'batchSize', 64);
  const progressEvery = positiveInteger(options.progressEvery, 'progressEvery', 20);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new TilelliError('INVALID_ARGUMENT', `startTraining: seed must be a non-negative integer, got ${seed}`);
  for (const name of ['onProgress', 'onError']) {
    if (options[name] !== undefined && typeof options[name] !== 'function') {
      throw new TilelliError('INVALID_ARGUMENT', `startTraining: ${name} must be a function`);
    }
  }
  const w = options.worker;
  if (w !== undefined && typeof w !== 'function' && typeof w !== 'string' && !(w instanceof URL) && typeof w?.postMessage !== 'function') {
    throw new TilelliError('INVALID_ARGUMENT', 'startTraining: worker must be a URL, a string, a Worker or a function returning one');
  }
  const payload = {
    init: workerInit(init),
    network: network.model instanceof ArrayBuffer ? { ...network, model: new Uint8Array(network.model) }
      : network.checkpoint instanceof ArrayBuffer ? { ...network, checkpoint: new Uint8Array(network.checkpoint) } : { ...network },
    optimizer, schedule, tequila, seed, epochs, batchSize, progressEvery, chunkMs: options.chunkMs,
    data: { x: data.x, labels: data.labels },
    test: test === undefined ? undefined : { x: test.x, labels: test.labels },
  };
  return new TrainingJob(options, payload, transferables([data.x, data.labels, test?.x, test?.labels]));
}
