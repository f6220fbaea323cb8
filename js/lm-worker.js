// lm-worker.js — a LanguageModel (js/lm.js) in a worker: one API over browser module workers, Deno
// workers and Node worker_threads, with the worker protocol of js/protocol.js.
//
//   const lm = await loadLanguageModel('models/charlm.safetensors', { onProgress });
//   const r = await lm.generate('hacker n. ', { maxNewTokens: 100, seed: 1, signal, onToken });
//   for await (const t of lm.stream('hacker n. ', { temperature: 0.8 })) out.append(t.text);
//   await lm.logits([1, 2, 3]); await lm.reset(); await lm.free();
//
// The worker (js/worker-entry.js) holds the model and runs the same LanguageModel.generate as the
// main thread would: the same seed gives the same tokens. Requests run one after another in the
// worker, in the order they were made. A signal aborts its call at once (the promise rejects with
// an AbortError) and reaches the worker, which stops that generation between two tokens: the
// tokens fed so far stay in the KV cache (position says how many).

import { TilelliError } from './errors.js';
import { STATUS } from './constants.js';
import { MSG, abortError, reviveError } from './protocol.js';
import { describe, invalid, options } from './runtime.js';
import { Tokenizer } from './tokenizer.js';
import { createWorker, listenToWorker, workerInit } from './worker.js';

const FN = 'loadLanguageModel';
const noop = () => {};

/** A URL for the worker: absolute, resolved against the page (the worker's own base differs). */
function href(u, what) {
  try {
    return new URL(String(u), globalThis.location?.href).href;
  } catch {
    throw invalid(`${FN}: ${what} ${JSON.stringify(String(u))} is not a URL${globalThis.location ? '' : ' (give an absolute one here)'}`);
  }
}

const isUrl = (u) => typeof u === 'string' || u instanceof URL;
const isBytes = (b) => b instanceof ArrayBuffer || (ArrayBuffer.isView(b) && !(b instanceof DataView));

/** The LM_LOAD payload of what loadLanguageModel was given, and the buffers it may transfer. */
function sourceOf(source) {
  if (isUrl(source)) return { urls: { weights: href(source, 'the URL') } };
  if (isBytes(source)) return { files: { weights: source } };
  if (!source || typeof source !== 'object') {
    throw invalid(`${FN}: give the packed file (its URL or bytes), or { weights, config, tokenizer } as URLs or as contents, got ${describe(source)}`);
  }
  if (isUrl(source.weights)) {
    const urls = {};
    for (const file of ['weights', 'config', 'tokenizer']) {
      if (source[file] === undefined) continue;
      if (!isUrl(source[file])) throw invalid(`${FN}: ${file} must be a URL like weights, got ${describe(source[file])}`);
      urls[file] = href(source[file], file);
    }
    return { urls };
  }
  if (!isBytes(source.weights)) throw invalid(`${FN}: weights must be a URL, a Uint8Array or an ArrayBuffer, got ${describe(source.weights)}`);
  if (source.tokenizer instanceof Tokenizer) {
    throw invalid(`${FN}: a Tokenizer object cannot cross to a worker; give its tokenizer.json (text, bytes or object)`);
  }
  return { files: { weights: source.weights, config: source.config, tokenizer: source.tokenizer } };
}

/** The defined keys of o (undefined cannot be told from absent on the other side anyway). */
const defined = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/**
 * A language model in a worker. Made by loadLanguageModel. Every method returns a promise; after
 * free() (or a failure of the worker) they reject with TilelliError FREED.
 */
class WorkerLanguageModel {
  #worker;
  #node = false;
  #queue = []; // messages posted before the worker existed
  #pending = new Map(); // id -> { resolve, reject, onEvent }
  #nextId = 1;
  #closed = false;
  #exited;
  #position = 0;
  #info;

  /** @internal use loadLanguageModel */
  constructor(worker) {
    if (typeof worker?.then === 'function') worker.then((w) => this.#attach(w), (e) => this.#fail(e));
    else this.#attach(worker);
  }

  /** The configuration as the worker's runtime read it (LanguageModel.config). */
  get config() { return this.#info?.config; }
  get vocabSize() { return this.#info?.vocabSize; }
  /** The KV cache's length in tokens. */
  get context() { return this.#info?.context; }
  /** Tokens fed so far, as of the latest answer of the worker. */
  get position() { return this.#position; }
  /** True when the model came with a tokenizer (text prompts work). */
  get hasTokenizer() { return this.#info?.hasTokenizer ?? false; }
  /** The Worker (web) or worker_threads Worker (Node), once created. */
  get worker() { return this.#worker; }
  /** True after free() or a failure of the worker. */
  get freed() { return this.#closed; }

  /** @internal */
  async load(payload, transfer, { onProgress, signal }) {
    try {
      this.#info = await this.#request(MSG.LM_LOAD, payload, { signal, transfer, onEvent: onProgress, what: 'load' });
      this.#position = this.#info.position;
      return this;
    } catch (e) {
      await this.free();
      throw e;
    }
  }

  #attach(worker) {
    if (this.#closed) {
      worker.terminate();
      return;
    }
    this.#worker = worker;
    const l = listenToWorker(worker, 'language-model worker',
      'the worker failed to load (is its URL right? In a bundled app, bundle tilelli/worker-entry.js as its own entry point, or pass options.worker)',
      (m) => this.#receive(m), (e) => this.#fail(e));
    this.#node = l.node;
    this.#exited = l.exited;
    for (const [m, t] of this.#queue.splice(0)) worker.postMessage(m, t);
    this.#refresh();
  }

  #post(message, transfer = []) {
    if (this.#worker) this.#worker.postMessage(message, transfer);
    else this.#queue.push([message, transfer]);
  }

  /** Keep a Node process alive only while the worker owes an answer. */
  #refresh() {
    if (!this.#node || this.#closed) return;
    if (this.#pending.size > 0) this.#worker.ref();
    else this.#worker.unref();
  }

  #receive(message) {
    const { id, type, data } = message ?? {};
    const p = this.#pending.get(id);
    if (type === MSG.TOKEN || type === MSG.PROGRESS) {
      p?.onEvent?.(data);
      return;
    }
    if (Number.isSafeInteger(data?.position)) this.#position = data.position;
    if (!p) return; // the answer to a cancel
    this.#pending.delete(id);
    if (type === MSG.RESULT) p.resolve(data);
    else p.reject(reviveError(data));
    this.#refresh();
  }

  /** One request; its signal rejects it at once and cancels it in the worker. */
  #request(type, data, { signal, onEvent, transfer = [], what } = {}) {
    if (this.#closed) return Promise.reject(new TilelliError('FREED', `WorkerLanguageModel.${what}: the model was freed`, { status: STATUS.FREED }));
    if (signal?.aborted) return Promise.reject(abortError(`WorkerLanguageModel.${what}: aborted`, signal.reason));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      let settled = false;
      const entry = { onEvent };
      const settle = (fn, v) => {
        if (settled) return;
        settled = true;
        entry.onEvent = undefined; // no token after the promise settled
        signal?.removeEventListener('abort', onAbort);
        fn(v);
      };
      const onAbort = () => {
        // the entry stays until the worker answers: that answer still updates position
        this.#post({ id: this.#nextId++, type: MSG.LM_CANCEL, data: { id } });
        settle(reject, abortError(`WorkerLanguageModel.${what}: aborted`, signal.reason));
      };
      entry.resolve = (v) => settle(resolve, v);
      entry.reject = (e) => settle(reject, e);
      this.#pending.set(id, entry);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#post({ id, type, data }, transfer);
      this.#refresh();
    });
  }

  /**
   * LanguageModel.generate in the worker: the same options (maxNewTokens, temperature, topK, topP,
   * seed, stop) and result; onToken({ id, text, index }) as each token arrives; signal cancels.
   */
  async generate(prompt, opts) {
    const { signal, onToken, ...rest } = options(opts, 'WorkerLanguageModel.generate');
    if (onToken !== undefined && typeof onToken !== 'function') throw invalid(`WorkerLanguageModel.generate: onToken must be a function, got ${describe(onToken)}`);
    const p = typeof prompt === 'string' || Array.isArray(prompt) ? prompt : isBytes(prompt) ? Array.from(prompt) : prompt;
    const r = await this.#request(MSG.LM_GENERATE, { prompt: p, options: defined(rest) }, { signal, onEvent: onToken, what: 'generate' });
    delete r.position;
    return r;
  }

  /**
   * generate() as an async iterator of tokens ({ id, text, index }); `result` resolves to the
   * Generation. Leaving the loop early (break, return, throw) cancels the generation.
   */
  stream(prompt, opts) {
    const { signal, ...rest } = options(opts, 'WorkerLanguageModel.stream');
    const ac = new AbortController();
    const onAbort = () => ac.abort(signal.reason);
    if (signal?.aborted) ac.abort(signal.reason);
    else signal?.addEventListener('abort', onAbort, { once: true });
    const tokens = [];
    let wake = noop, finished = false, failure;
    const result = this.generate(prompt, { ...rest, signal: ac.signal, onToken: (t) => { tokens.push(t); wake(); } });
    result.then(() => { finished = true; wake(); }, (e) => { finished = true; failure = e; wake(); })
      .finally(() => signal?.removeEventListener('abort', onAbort));
    result.catch(noop); // the iterator (or result's own awaiter) reports it
    const iterator = {
      result,
      async next() {
        while (tokens.length === 0 && !finished) await new Promise((resolve) => { wake = resolve; });
        if (tokens.length > 0) return { value: tokens.shift(), done: false };
        if (failure && !ac.signal.aborted) throw failure;
        if (failure && signal?.aborted) throw failure;
        return { value: undefined, done: true };
      },
      async return() {
        if (!finished) ac.abort(abortError('WorkerLanguageModel.stream: the loop ended early'));
        tokens.length = 0;
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() { return this; },
    };
    return iterator;
  }

  /** LanguageModel.logits in the worker: feeds the tokens, resolves to a Float32Array. */
  async logits(tokens, opts) {
    const { signal, ...rest } = options(opts, 'WorkerLanguageModel.logits');
    const t = isBytes(tokens) ? Array.from(tokens) : tokens;
    return (await this.#request(MSG.LM_LOGITS, { tokens: t, options: defined(rest) }, { signal, what: 'logits' })).logits;
  }

  /** Forget the tokens fed so far. */
  async reset() {
    await this.#request(MSG.LM_RESET, undefined, { what: 'reset' });
  }

  /** 'int8' or 'float' activations from now on. */
  async setActivations(activations) {
    this.#info.config = (await this.#request(MSG.LM_ACTIVATIONS, activations, { what: 'setActivations' })).config;
  }

  /** The packed file of the model (LanguageModel.save). */
  async save() {
    return this.#request(MSG.LM_SAVE, undefined, { what: 'save' });
  }

  /** Free the model and terminate its worker; what is pending rejects with an AbortError. A second call does nothing. */
  async free() {
    await this.#close(abortError('WorkerLanguageModel: the model was freed'));
  }

  async #close(error) {
    if (this.#closed) return;
    this.#closed = true;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(error);
    const worker = this.#worker;
    if (worker) {
      const r = worker.terminate();
      if (this.#node) await Promise.all([r, this.#exited]);
    }
  }

  /** The worker failed (an uncaught error, a load failure, an unexpected exit). */
  #fail(error) {
    this.#close(error).then(noop, noop);
  }

  [Symbol.dispose ?? Symbol.for('Symbol.dispose')]() { this.free().then(noop, noop); }
  [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() { return this.free(); }
}

/**
 * Load a language model in a worker. source: the packed file (save()'s output) as a URL or bytes,
 * or { weights, config, tokenizer } all as URLs or all as contents (what LanguageModel.load
 * takes; a tokenizer as its file, not a Tokenizer object). Bytes are copied to the worker, or
 * transferred with options.transfer (the caller's buffer is then detached). options: load()'s
 * (context, activations, format, embedding), onProgress({ file, loaded, total }) per downloaded chunk,
 * signal (aborts the load and ends the worker), init (the worker's init options; by default the
 * wasm URL of the latest init({ url })), worker (a URL of the worker entry, a Worker, or a
 * function returning one). Bad arguments throw a TilelliError at once; a failed load rejects
 * with the worker's TilelliError (same code and message).
 */
export function loadLanguageModel(source, opts) {
  const o = options(opts, FN);
  const { onProgress, signal, init, worker, transfer = false, context, activations, format, embedding } = o;
  if (onProgress !== undefined && typeof onProgress !== 'function') throw invalid(`${FN}: onProgress must be a function, got ${describe(onProgress)}`);
  if (typeof transfer !== 'boolean') throw invalid(`${FN}: transfer must be a boolean, got ${describe(transfer)}`);
  if (worker !== undefined && typeof worker !== 'function' && !isUrl(worker) && typeof worker?.postMessage !== 'function') {
    throw invalid(`${FN}: worker must be a URL, a string, a Worker or a function returning one`);
  }
  const payload = { ...sourceOf(source), init: workerInit(init), ...defined({ context, activations, format, embedding }) };
  if (signal?.aborted) return Promise.reject(abortError(`${FN}: the signal was already aborted`, signal.reason));
  const lm = new WorkerLanguageModel(createWorker(worker, FN));
  const w = payload.files?.weights;
  const moved = transfer && w && !(typeof SharedArrayBuffer === 'function' && (w.buffer ?? w) instanceof SharedArrayBuffer) ? [w.buffer ?? w] : [];
  return lm.load(payload, moved, { onProgress, signal });
}
