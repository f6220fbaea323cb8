// lm.js — language models: the transformer runtime of src/lm.c (BitNet b1.58 and Llama-style
// models with ternary projections), the sampler, and generation with a tokenizer. This module
// marshals; the numbers are C's.
//
//   LanguageModel.load({ config, weights, tokenizer }, { context, activations, format, embedding })
//                                (weights: safetensors, Hugging Face packed BitNet, or GGUF)
//   lm.logits(tokens)            logits of the last token (or of every token: { all: true })
//   lm.generate(prompt, opts)    streamed generation: onToken, stop, signal, seed
//   lm.reset(), lm.position, lm.free()

import { TilelliError } from './errors.js';
import { GGUF_TYPE, LM_GGUF_VOCAB, PRECISION, STATUS } from './constants.js';
import { formatCode } from './matrix.js';
import { Owned, bytesOf, declaredLength, describe, fetchOk, invalid, options, pick, toJson } from './runtime.js';
import { Tokenizer } from './tokenizer.js';

const utf8 = new TextDecoder();

function configText(config, fn) {
  if (typeof config === 'string') return config;
  if (config instanceof ArrayBuffer || ArrayBuffer.isView(config)) return utf8.decode(bytesOf(config, fn, 'config'));
  if (config && typeof config === 'object') return toJson(config, fn, 'config');
  throw invalid(`${fn}: config must be the config.json text, its bytes or its object, got ${describe(config)}`);
}

function tokenizerOf(t, fn) {
  if (t === undefined || t === null) return undefined;
  if (t instanceof Tokenizer) return t;
  try {
    return Tokenizer.fromJSON(t);
  } catch (e) {
    if (e instanceof TilelliError) throw new TilelliError(e.code, `${fn}: tokenizer: ${e.message}`, { status: e.status });
    throw e;
  }
}

function nonNegInt(x, fn, name, def) {
  if (x === undefined) return def;
  if (!Number.isSafeInteger(x) || x < 0) throw invalid(`${fn}: ${name} must be a non-negative integer, got ${typeof x === 'number' ? x : describe(x)}`);
  return x;
}

function finiteIn(x, fn, name, def, lo, hi, openLo) {
  if (x === undefined) return def;
  if (typeof x !== 'number' || !(openLo ? x > lo : x >= lo) || !(x <= hi)) {
    throw invalid(`${fn}: ${name} must be a number in ${openLo ? '(' : '['}${lo}, ${hi}], got ${typeof x === 'number' ? x : describe(x)}`);
  }
  return x;
}

/** load()'s options, checked before anything is read or downloaded. */
function loadOptions(rt, opts, fn) {
  const { context = 0, activations, format = 'i2', embedding } = options(opts, fn);
  if (embedding !== undefined) pick({ float32: 0, float16: 1, int8: 2 }, embedding, fn, 'embedding');
  return {
    ctx: nonNegInt(context, fn, 'context', 0),
    prec: activations === undefined ? undefined : pick({ float: PRECISION.float, int8: PRECISION.int8 }, activations, fn, 'activations'),
    f: formatCode(rt, format, fn),
    embedding,
  };
}

/** The config text with options.embedding as its tilelli_embedding (C reads the key). */
function withEmbedding(text, embedding, fn) {
  if (embedding === undefined) return text;
  if (text === undefined) throw invalid(`${fn}: embedding applies to a config.json; a packed or GGUF file keeps its tables' form`);
  let obj;
  try {
    obj = JSON.parse(text);
  } catch {
    return text; // C reports the config's JSON error with its detail
  }
  return obj && typeof obj === 'object' && !Array.isArray(obj) ? JSON.stringify({ ...obj, tilelli_embedding: embedding }) : text;
}

/** Let other tasks run (an abort, the page): a MessageChannel round trip where there is one. */
function yieldTask() {
  if (typeof MessageChannel === 'function') {
    return new Promise((resolve) => {
      const { port1, port2 } = new MessageChannel();
      port1.onmessage = () => { port1.close(); resolve(); };
      port2.postMessage(0);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** The model of the n bytes of a safetensors or GGUF file at wp in wasm memory (the caller frees them). */
/**
 * The model in the file at wp (n bytes of wasm memory from allocBlock), which this takes: a
 * safetensors file goes to tl_lm_load_owned (a packed file's weights are used where they lie, the
 * model keeping the file; others are converted and the file freed), a GGUF file is converted and
 * freed. On failure the file is freed too.
 */
function loadAt(Cls, fn, text, wp, n, { ctx, prec, f, embedding }, tokenizer) {
  const rt = Cls.rt;
  let owned = false, ptr;
  try {
    const gguf = rt.x.tl_lm_is_gguf(wp, n) !== 0;
    if (gguf && text !== undefined) throw invalid(`${fn}: a GGUF file carries its config: leave config out`);
    text = withEmbedding(text, embedding, fn);
    const cfg = text === undefined ? new Uint8Array(0) : new TextEncoder().encode(text);
    const { base, ptrs: [cp, pp] } = rt.allocBlock(fn, [cfg.length, 8]);
    try {
      rt.view(Uint8Array, cp, cfg.length).set(cfg);
      rt.x.tl_error_clear();
      if (gguf) {
        rt.check(rt.x.tl_lm_load_gguf(wp, n, f, ctx, pp + 4), fn);
      } else {
        // the header first, for its own error (the file is parsed again, in C, by the load)
        rt.check(rt.x.tl_safetensors_open(wp, n, pp), `${fn}: weights`);
        rt.x.tl_safetensors_free(rt.u32(pp));
        rt.check(rt.x.tl_lm_load_owned(text === undefined ? 0 : cp, cfg.length, wp, n, f, ctx, pp + 4), fn);
        owned = true;
      }
      ptr = rt.u32(pp + 4);
    } finally {
      rt.free(base);
    }
  } finally {
    if (!owned) rt.free(wp);
  }
  return finish(Cls, ptr, prec, tokenizer, fn);
}

/** A loaded model's object: the activation precision asked for set (the model freed on failure). */
function finish(Cls, ptr, prec, tokenizer, fn) {
  const rt = Cls.rt;
  if (prec !== undefined) {
    const s = rt.x.tl_lm_set_precision(ptr, prec);
    if (s < 0) rt.x.tl_lm_free(ptr);
    rt.check(s, fn);
  }
  return new Cls(ptr, tokenizer);
}

export class LanguageModel extends Owned {
  static label = 'LanguageModel';
  static noun = 'language model';
  static release(rt, [p, io]) {
    rt.x.tl_lm_free(p);
    if (io.ptr) rt.free(io.ptr);
  }
  #io; // wasm buffers for tokens and logits: { ptr, n } sized for the largest call so far

  /** @internal use LanguageModel.load */
  constructor(ptr, tokenizer) {
    const io = { ptr: 0, n: 0 };
    super(ptr, io);
    this.#io = io;
    /** The tokenizer given to load(), or undefined (then prompts are token ids). */
    this.tokenizer = tokenizer;
    const rt = this.rt;
    /** The configuration as the runtime read it (Hugging Face key names), and its context. */
    this.config = JSON.parse(rt.withBlock('LanguageModel', [8], ([pp]) => {
      rt.check(rt.x.tl_lm_describe(ptr, pp, pp + 4), 'LanguageModel');
      return utf8.decode(rt.takeBytes(pp));
    }));
    delete this.config.position;
    this.vocabSize = this.config.vocab_size;
    this.context = this.config.context;
  }

  /**
   * A model from a Hugging Face config.json (text, bytes or object) and a safetensors file of the
   * same tensor names (bytes); projections are quantized on load (per tensor, the reference's rule)
   * into options.format ('i2' by default). A packed file (save()) needs no config and keeps its
   * format. options.context: the KV cache length in tokens (default
   * min(max_position_embeddings, 2048)); options.activations 'int8' (BitNet, the default) or
   * 'float'. tokenizer: a Tokenizer or a tokenizer file (tokenizer.json, or tilelli's character
   * form), needed for text prompts. options.embedding 'float32' (default), 'float16' or 'int8':
   * how the token embedding and the head are held (the config's tilelli_embedding; a quarter of
   * the memory in int8). A Hugging Face packed BitNet checkpoint (config quantization_config, U8
   * projections and weight_scale) is read without loss; a GGUF file (llama.cpp's bitnet
   * architectures: TQ1_0, TQ2_0 or I2_S projections) carries its config, so config must then be
   * left out. A packed file is used where it lies once copied into wasm memory (its projections
   * and tables are not copied again); other files are converted and their copy freed.
   */
  static load(files, opts) {
    const fn = 'LanguageModel.load';
    if (!files || typeof files !== 'object') throw invalid(`${fn}: give { config, weights, tokenizer }, got ${describe(files)}`);
    const o = loadOptions(this.rt, opts, fn);
    const text = files.config === undefined || files.config === null ? undefined : configText(files.config, fn);
    const weights = bytesOf(files.weights, fn, 'weights');
    const tokenizer = tokenizerOf(files.tokenizer, fn);
    const wp = this.rt.allocBlock(fn, [weights.length]).base;
    this.rt.view(Uint8Array, wp, weights.length).set(weights);
    return loadAt(this, fn, text, wp, weights.length, o, tokenizer); // takes wp
  }

  /**
   * The packed file of this model (a safetensors file: packed projections, float embeddings and
   * norms, the config in its metadata); load({ weights }) reads it back, no config needed.
   * options.gguf ('tq2_0', 'tq1_0' or 'i2_s') writes a GGUF file instead (llama.cpp's bitnet
   * names; TQ types round each row's scale to float16), options.vocabulary adds a placeholder
   * vocabulary that llama.cpp-based runtimes need to open it.
   */
  save(opts) {
    const fn = 'LanguageModel.save', p = this.live('save'), rt = this.rt;
    const { gguf, vocabulary = false } = options(opts, fn);
    const type = gguf === undefined ? undefined : pick(GGUF_TYPE, gguf, fn, 'gguf');
    return rt.withBlock(fn, [8], ([pp]) => {
      rt.check(type === undefined ? rt.x.tl_lm_save(p, pp, pp + 4)
        : rt.x.tl_lm_save_gguf(p, type, vocabulary ? LM_GGUF_VOCAB : 0, pp, pp + 4), fn);
      return rt.takeBytes(pp);
    });
  }

  /**
   * Download and load: urls is the URL of a packed file (save()'s output), or { weights, config,
   * tokenizer } URLs (config and tokenizer optional, as for load()). Each body is read chunk by
   * chunk into one buffer of its Content-Length where there is one, the weights' straight into
   * wasm memory (no copy of the file on the JS heap); options.onProgress({ file,
   * loaded, total }) after each chunk (total undefined without a Content-Length), options.signal
   * aborts (rejects with its reason); the other options are load()'s.
   */
  static async fromURL(urls, opts) {
    const fn = 'LanguageModel.fromURL', rt = this.rt;
    const o = options(opts, fn);
    const { onProgress, signal, ...loadOpts } = o;
    if (onProgress !== undefined && typeof onProgress !== 'function') throw invalid(`${fn}: onProgress must be a function, got ${describe(onProgress)}`);
    const spec = typeof urls === 'string' || urls instanceof URL ? { weights: urls } : urls;
    if (!spec || typeof spec !== 'object' || spec.weights === undefined) throw invalid(`${fn}: give the packed file's URL or { weights, config, tokenizer } URLs`);
    const lo = loadOptions(rt, loadOpts, fn);
    // Each chunk is copied once, into `into(total)` (a JS buffer, or wasm memory for the weights).
    const get = async (file, url, into) => {
      const { response } = await fetchOk(url, signal, fn);
      const total = declaredLength(response);
      if (!response.body) {
        const b = new Uint8Array(await response.arrayBuffer());
        onProgress?.({ file, loaded: b.length, total: b.length });
        const dst = into(b.length);
        dst.write(b, 0);
        return dst.done(b.length);
      }
      // With a known length, a byte stream is read into one reused buffer (BYOB), as Model.fromURL
      // does: fewer chunks left to the garbage collector (Node's fetch still makes its own).
      let reader, scratch;
      if (total !== undefined) {
        try {
          reader = response.body.getReader({ mode: 'byob' });
          scratch = new Uint8Array(Math.min(total, 1 << 16));
        } catch {} // not a byte stream here: chunks
      }
      reader ??= response.body.getReader();
      const dst = into(total);
      try {
        let loaded = 0;
        for (;;) {
          const { done, value } = scratch ? await reader.read(scratch) : await reader.read();
          if (done) break;
          if (scratch) scratch = new Uint8Array(value.buffer); // the same memory, handed back
          dst.write(value, loaded);
          loaded += value.length;
          onProgress?.({ file, loaded, total });
        }
        return dst.done(loaded);
      } catch (e) {
        dst.drop();
        reader.cancel().catch(() => {});
        throw e;
      }
    };
    // A JS buffer of the declared length, grown by doubling without one (or past a wrong one).
    const inJs = (total) => {
      let buf = new Uint8Array(total ?? 1 << 16);
      return {
        write(value, at) {
          if (at + value.length > buf.length) {
            const bigger = new Uint8Array(Math.max(buf.length * 2, at + value.length));
            bigger.set(buf.subarray(0, at));
            buf = bigger;
          }
          buf.set(value, at);
        },
        done: (n) => (n === buf.length ? buf : buf.slice(0, n)),
        drop() {},
      };
    };
    // The weights straight into wasm memory when their length is known: no JS copy of the file.
    const inWasm = (total) => {
      if (total === undefined) return inJs(total);
      const at = rt.allocBlock(fn, [total]).base;
      return {
        write(value, offset) {
          if (offset + value.length > total) throw invalid(`${fn}: ${spec.weights} sent more than its Content-Length of ${total} bytes`);
          rt.view(Uint8Array, at + offset, value.length).set(value); // a fresh view: memory may have grown
        },
        done(n) {
          if (n !== total) throw invalid(`${fn}: ${spec.weights} sent ${n} bytes, not its Content-Length of ${total}`);
          return { at, n };
        },
        drop() { rt.free(at); },
      };
    };
    const files = {};
    for (const file of ['config', 'tokenizer']) {
      if (spec[file] !== undefined) files[file] = await get(file, spec[file], inJs);
    }
    const text = files.config === undefined ? undefined : configText(files.config, fn);
    const tokenizer = tokenizerOf(files.tokenizer, fn);
    const weights = await get('weights', spec.weights, inWasm);
    if (weights instanceof Uint8Array) return this.load({ config: text, weights, tokenizer }, loadOpts);
    try {
      signal?.throwIfAborted();
    } catch (e) {
      rt.free(weights.at);
      throw e;
    }
    return loadAt(this, fn, text, weights.at, weights.n, lo, tokenizer); // takes weights.at
  }

  /** Tokens fed so far (the KV cache's length). */
  get position() { return this.rt.x.tl_lm_position(this.live('position')); }

  /** Forget the tokens fed so far. */
  reset() { this.rt.x.tl_lm_reset(this.live('reset')); }

  /** 'int8' or 'float' activations for every projection from now on. */
  setActivations(activations) {
    const fn = 'LanguageModel.setActivations', p = this.live('setActivations');
    this.rt.check(this.rt.x.tl_lm_set_precision(p, pick({ float: PRECISION.float, int8: PRECISION.int8 }, activations, fn, 'activations')), fn);
    this.config.tilelli_activations = activations;
  }

  #buffers(fn, n, logits) {
    const io = this.#io, need = n * 4 + logits * 4;
    if (need > io.n) {
      const { base } = this.rt.allocBlock(fn, [need]);
      if (io.ptr) this.rt.free(io.ptr);
      io.ptr = base, io.n = need;
    }
    return [io.ptr, io.ptr + Math.ceil(n * 4 / 16) * 16];
  }

  #tokens(tokens, fn) {
    const t = tokens instanceof Uint32Array ? tokens : Array.isArray(tokens) || ArrayBuffer.isView(tokens) ? Uint32Array.from(tokens, (v, i) => {
      if (!Number.isSafeInteger(Number(v)) || v < 0 || v > 0xffffffff) throw invalid(`${fn}: tokens[${i}] is ${v}, not a token id`);
      return v;
    }) : undefined;
    if (!t) throw invalid(`${fn}: tokens must be an array of token ids or a Uint32Array, got ${describe(tokens)}`);
    if (t.length === 0) throw invalid(`${fn}: tokens is empty`);
    return t;
  }

  /**
   * Feed tokens at the current position and return the logits of the last one (vocabSize
   * float32 values), or of every one with { all: true } (tokens.length x vocabSize).
   */
  logits(tokens, opts) {
    const fn = 'LanguageModel.logits', p = this.live('logits'), rt = this.rt;
    const { all = false } = options(opts, fn);
    const t = this.#tokens(tokens, fn);
    const n = (all ? t.length : 1) * this.vocabSize;
    const [tp, lp] = this.#buffers(fn, t.length, n);
    rt.view(Uint32Array, tp, t.length).set(t);
    rt.check(rt.x.tl_lm_forward(p, tp, t.length, all ? 1 : 0, lp, n), fn);
    return rt.view(Float32Array, lp, n).slice();
  }

  /**
   * Generate from a prompt (text: needs the tokenizer; or token ids) after the tokens fed so far
   * (call reset() first for a fresh start). options: maxNewTokens (default 64), temperature
   * (default 0: greedy), topK (0: all), topP (1: all), seed (an integer: the same seed, the same
   * text), stop (strings or token ids; the tokenizer's end-of-sequence id stops too), signal (an
   * AbortSignal: rejects with its reason), onToken({ id, text, index }) after each token.
   * Resolves to { text, tokens, promptTokens, stopReason ('length' | 'stop' | 'eos' | 'context'),
   * prefillMs, decodeMs, tokensPerSecond }.
   */
  async generate(prompt, opts) {
    const fn = 'LanguageModel.generate', rt = this.rt;
    this.live('generate');
    const o = options(opts, fn);
    const maxNew = nonNegInt(o.maxNewTokens, fn, 'maxNewTokens', 64);
    const temperature = finiteIn(o.temperature, fn, 'temperature', 0, 0, 1e6);
    const topK = nonNegInt(o.topK, fn, 'topK', 0);
    const topP = finiteIn(o.topP, fn, 'topP', 1, 0, 1, true);
    const seed = o.seed === undefined ? (Math.random() * 0x100000000) >>> 0 : nonNegInt(o.seed, fn, 'seed') >>> 0;
    if (o.onToken !== undefined && typeof o.onToken !== 'function') throw invalid(`${fn}: onToken must be a function, got ${describe(o.onToken)}`);
    const signal = o.signal;
    const tok = this.tokenizer;
    let ids;
    if (typeof prompt === 'string') {
      if (!tok) throw invalid(`${fn}: a text prompt needs a tokenizer (give one to LanguageModel.load, or pass token ids)`);
      ids = tok.encode(prompt);
    } else {
      ids = this.#tokens(prompt, fn);
    }
    const stops = o.stop === undefined ? [] : Array.isArray(o.stop) ? o.stop : [o.stop];
    const stopText = stops.filter((s) => typeof s === 'string' && s.length > 0);
    const stopIds = new Set(stops.filter((s) => typeof s === 'number'));
    if (stops.some((s) => typeof s !== 'string' && typeof s !== 'number')) throw invalid(`${fn}: stop must hold strings or token ids`);
    const eos = tok?.eosId ?? this.config.eos_token_id;
    signal?.throwIfAborted();

    const p = this.live('generate'), V = this.vocabSize;
    const [tp, lp] = this.#buffers(fn, Math.max(ids.length, 1) + 2, V);
    const sp = tp + Math.max(ids.length, 1) * 4; // rng state and the drawn token after the ids
    const out = [];
    const decoder = tok?.decoder();
    let text = '', stopReason = 'length';
    const t0 = performance.now();
    if (ids.length > this.context - this.position) throw new TilelliError('SIZE_MISMATCH', `${fn}: the prompt's ${ids.length} tokens do not fit the context (${this.context - this.position} left)`, { status: STATUS.SIZE });
    rt.view(Uint32Array, tp, ids.length).set(ids);
    rt.check(rt.x.tl_lm_forward(p, tp, ids.length, 0, lp, V), fn);
    const t1 = performance.now();
    rt.view(Uint32Array, sp, 1)[0] = seed || 0x9e3779b9;
    let lastYield = performance.now();
    for (let i = 0; i < maxNew; i++) {
      rt.check(rt.x.tl_lm_sample(lp, V, temperature, topK, topP, sp, sp + 4), fn);
      const id = rt.view(Uint32Array, sp + 4, 1)[0];
      if (id === eos || stopIds.has(id)) { stopReason = id === eos ? 'eos' : 'stop'; break; }
      out.push(id);
      const piece = decoder ? decoder.push(id) : '';
      text += piece;
      o.onToken?.({ id, text: piece, index: i });
      const hit = stopText.find((s) => text.includes(s));
      if (hit !== undefined) {
        text = text.slice(0, text.indexOf(hit));
        stopReason = 'stop';
        break;
      }
      if (i + 1 === maxNew) break;
      if (this.position >= this.context) { stopReason = 'context'; break; }
      rt.view(Uint32Array, tp, 1)[0] = id;
      rt.check(rt.x.tl_lm_forward(p, tp, 1, 0, lp, V), fn);
      if (performance.now() - lastYield > 8) {
        await yieldTask();
        signal?.throwIfAborted();
        this.live('generate');
        lastYield = performance.now();
      }
    }
    if (decoder && stopReason !== 'stop') text += decoder.end();
    const t2 = performance.now();
    return {
      text,
      tokens: Uint32Array.from(out),
      promptTokens: ids.length,
      stopReason,
      prefillMs: t1 - t0,
      decodeMs: t2 - t1,
      tokensPerSecond: out.length > 1 ? (out.length - 1) / ((t2 - t1) / 1000) : 0,
    };
  }
}
