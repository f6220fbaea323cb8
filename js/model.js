// model.js — checkpoints in, packed models out, and the model runtime. All of it is C's
// (src/safetensors.c, src/model.c): the file layouts are read and written there; this module
// marshals.
//
//   Safetensors.open(bytes)        a safetensors checkpoint, validated by the C parser
//   packModel({ input, layers })   the packed model file from PackedMatrix objects (C builder)
//   packCheckpoint(bytes, arch)    checkpoint + architecture description -> packed model file
//   Model.load(bytes)              a packed model file, validated by the C loader; run(), predict()

import { TilelliError } from './errors.js';
import { DTYPE, PRECISION, STATUS } from './constants.js';
import { formatCode } from './matrix.js';
import { Owned, bytesOf, declaredLength, describe, fetchOk, invalid, options, pick, toF32, toJson } from './runtime.js';

// ---------------------------------------------------------------------------------------------
// Safetensors
// ---------------------------------------------------------------------------------------------

export class Safetensors extends Owned {
  static label = 'Safetensors';
  static noun = 'checkpoint';
  static release(rt, [st, data]) { rt.x.tl_safetensors_free(st); rt.free(data); }
  #byName = new Map();

  /** @internal use Safetensors.open */
  constructor(st, data) {
    super(st, data);
    const rt = this.rt, x = rt.x;
    const tensors = [];
    rt.withBlock('Safetensors', [4 * 8 + 8], ([p]) => {
      const n = x.tl_safetensors_count(st);
      for (let i = 0; i < n; i++) {
        rt.check(x.tl_safetensors_tensor(st, i, p, p + 4, p + 8, p + 12, p + 16, p + 20, p + 24), 'Safetensors');
        const [namePtr, nameLen, dtype, ndim, shapePtr, , nbytes] = rt.view(Uint32Array, p, 7);
        const shape = Array.from(rt.view(BigInt64Array, shapePtr, ndim), Number);
        const t = { name: rt.string(namePtr, nameLen), dtype: DTYPE[dtype], shape, byteLength: nbytes, index: i };
        tensors.push(t);
        this.#byName.set(t.name, t);
      }
      const meta = {};
      for (let j = 0, m = x.tl_safetensors_metadata_count(st); j < m; j++) {
        rt.check(x.tl_safetensors_metadata(st, j, p, p + 4, p + 8, p + 12), 'Safetensors');
        const [kp, kl, vp, vl] = rt.view(Uint32Array, p, 4);
        meta[rt.string(kp, kl)] = rt.string(vp, vl);
      }
      this.metadata = meta;
    });
    this.tensors = tensors;
  }

  /** Parse and validate a checkpoint (a Uint8Array of the whole file). */
  static open(bytes) {
    const fn = 'Safetensors.open', rt = this.rt;
    const b = bytesOf(bytes, fn);
    const { base: data } = rt.allocBlock(fn, [b.length]);
    rt.view(Uint8Array, data, b.length).set(b);
    try {
      return new this(rt.make(fn, (pp) => rt.x.tl_safetensors_open(data, b.length, pp)), data);
    } catch (e) {
      rt.free(data);
      throw e;
    }
  }

  /** The tensor's description, by name. */
  tensor(name) {
    this.live('tensor');
    const t = this.#byName.get(name);
    if (!t) {
      const some = this.tensors.slice(0, 8).map((e) => e.name).join(', ');
      throw invalid(`Safetensors.tensor: no tensor named ${JSON.stringify(name)} (have ${some}${this.tensors.length > 8 ? ', ...' : ''})`);
    }
    return t;
  }

  /** A tensor's values as float32 (F16 and BF16 widened exactly, I8 and U8 converted). */
  read(name) {
    const st = this.live('read'), rt = this.rt;
    const t = this.tensor(name);
    const n = t.shape.reduce((a, d) => a * d, 1);
    return rt.withBlock('Safetensors.read', [n * 4], ([op]) => {
      rt.check(rt.x.tl_safetensors_read_f32(st, t.index, op, n), 'Safetensors.read');
      return rt.view(Float32Array, op, n).slice();
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The runtime
// ---------------------------------------------------------------------------------------------

function precisionOf(activations, fn) {
  return activations === undefined ? PRECISION.default : pick({ float: PRECISION.float, int8: PRECISION.int8 }, activations, fn, 'activations');
}

/** The model of the file at base (a block of len bytes), which it takes over; freed if refused. */
function loadOwned(cls, base, len, activations, fn) {
  const rt = cls.rt;
  let precision, ptr;
  try {
    precision = precisionOf(activations, fn);
    ptr = rt.make(fn, (pp) => rt.x.tl_model_load_owned(base, len, pp));
  } catch (e) {
    rt.free(base); // refused: the file is still ours
    throw e;
  }
  if (precision !== PRECISION.default) {
    const s = rt.x.tl_model_set_precision(ptr, precision);
    if (s < 0) rt.x.tl_model_free(ptr);
    rt.check(s, fn);
  }
  return new cls(ptr);
}

/** options of fromURL and fromResponse, checked before anything is downloaded. */
function downloadOptions(opts, fn) {
  const o = options(opts, fn);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw invalid(`${fn}: onProgress must be a function, got ${describe(o.onProgress)}`);
  precisionOf(o.activations, fn);
  return o;
}

/** Read a Response's body into a model of cls (see Model.fromResponse). */
async function loadResponse(cls, response, opts, fn, where) {
  const rt = cls.rt;
  const { onProgress, activations } = options(opts, fn);
  const total = declaredLength(response);
  if (!response.body) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    onProgress?.({ loaded: bytes.length, total: bytes.length });
    return cls.load(bytes, { activations });
  }
  let reader, byob = false;
  if (total !== undefined) {
    try {
      reader = response.body.getReader({ mode: 'byob' });
      byob = true;
    } catch {} // not a byte stream here: chunks
  }
  reader ??= response.body.getReader();
  if (total === undefined) {
    // No length to trust: the chunks, then one file.
    const chunks = [];
    let loaded = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.length;
      onProgress?.({ loaded, total });
    }
    const bytes = chunks.length === 1 ? chunks[0] : new Uint8Array(loaded);
    if (bytes !== chunks[0]) {
      let at = 0;
      for (const c of chunks) { bytes.set(c, at); at += c.length; }
    }
    return cls.load(bytes, { activations });
  }
  // The declared length: one block of wasm memory, written as the chunks come, and kept by the
  // model (Model.load's in-place load). A lying length fails when the body ends or overflows.
  // A byte stream is read into one reused buffer (a BYOB reader), so the download leaves no
  // chunks behind for the garbage collector either.
  let base;
  try {
    ({ base } = rt.allocBlock(fn, [total]));
  } catch (e) {
    await reader.cancel().catch(() => {}); // no room: the body is not read at all
    throw e;
  }
  let owned = true;
  try {
    let loaded = 0;
    let scratch = byob ? new Uint8Array(Math.min(total, 1 << 16)) : null;
    for (;;) {
      const { done, value } = byob ? await reader.read(scratch) : await reader.read();
      if (done) break;
      if (byob) scratch = new Uint8Array(value.buffer); // the same memory, handed back
      if (value.length > total - loaded) {
        await reader.cancel().catch(() => {});
        throw new TilelliError('INVALID_ARGUMENT', `${fn}: ${where} sent more than its Content-Length of ${total} bytes`, { status: STATUS.ARGUMENT });
      }
      rt.view(Uint8Array, base + loaded, value.length).set(value);
      loaded += value.length;
      onProgress?.({ loaded, total });
    }
    if (loaded !== total) throw new TilelliError('INVALID_ARGUMENT', `${fn}: ${where} ended after ${loaded} of its ${total} bytes`, { status: STATUS.ARGUMENT });
    owned = false;
    return loadOwned(cls, base, total, activations, fn);
  } finally {
    if (owned) rt.free(base);
  }
}

export class Model extends Owned {
  static label = 'Model';
  static noun = 'model';
  static release(rt, [m, io]) {
    rt.x.tl_model_free(m);
    if (io.ptr) rt.free(io.ptr);
  }
  #io; // wasm buffers for run(): { ptr, batch } sized for the largest batch so far
  #info = null; // tl_model_describe's layers and metadata, read on first use

  /** @internal use Model.load */
  constructor(ptr) {
    const io = { ptr: 0, batch: 0 };
    super(ptr, io);
    this.#io = io;
    const x = this.rt.x;
    this.inputSize = x.tl_model_input_size(ptr);
    this.outputSize = x.tl_model_output_size(ptr);
  }

  /** The layers, as C describes them (read on first use: loading does not write the JSON). */
  get layers() { return this.#described().layers; }

  /** The file's metadata (an object of strings). */
  get metadata() { return this.#described().metadata; }

  #described() {
    if (this.#info) return this.#info;
    const rt = this.rt, p = this.live('describe');
    const info = JSON.parse(rt.withBlock('Model', [8], ([pp]) => {
      rt.check(rt.x.tl_model_describe(p, pp, pp + 4), 'Model');
      return new TextDecoder().decode(rt.takeBytes(pp));
    }));
    this.#info = { layers: info.layers, metadata: info.metadata };
    return this.#info;
  }

  /**
   * Load a packed model file: validated, nothing re-quantized. options.activations ('float' |
   * 'int8') sets every linear layer's activation precision, whatever the file says.
   */
  static load(bytes, opts) {
    const fn = 'Model.load', rt = this.rt;
    const { activations } = options(opts, fn);
    precisionOf(activations, fn); // before the copy
    const b = bytesOf(bytes, fn);
    // The file is copied into wasm memory once and the model keeps that copy: its matrices use
    // their packed bytes where they lie in it (tl_model_load_owned), nothing is copied again.
    const { base } = rt.allocBlock(fn, [b.length]);
    rt.view(Uint8Array, base, b.length).set(b);
    return loadOwned(this, base, b.length, activations, fn);
  }



  /**
   * Download a packed model file and load it: streamed, options.onProgress({ loaded, total })
   * after each chunk (total: the Content-Length, or undefined), options.signal aborts the
   * download, options.activations as for load(). Uses the runtime's fetch (browsers, workers,
   * Deno, workerd, Node >= 18).
   */
  static async fromURL(url, opts) {
    const fn = 'Model.fromURL';
    const { signal } = downloadOptions(opts, fn);
    const { response, where } = await fetchOk(url, signal, fn);
    return loadResponse(this, response, opts, fn, where);
  }

  /**
   * Load a packed model file from a fetch Response (its body is read here): what fromURL does
   * once it has the response, for a caller that fetched it itself. With a Content-Length (and no
   * Content-Encoding) the body is written chunk by chunk straight into the wasm memory the
   * model keeps, so no whole copy of the file is ever made in JavaScript; a body longer or
   * shorter than its Content-Length is refused. options as for fromURL (signal aside).
   */
  static async fromResponse(response, opts) {
    const fn = 'Model.fromResponse';
    if (typeof response?.arrayBuffer !== 'function' || !('body' in response)) throw invalid(`${fn}: give a fetch Response, got ${describe(response)}`);
    if (response.bodyUsed) throw invalid(`${fn}: the response's body was already read`);
    downloadOptions(opts, fn);
    return loadResponse(this, response, opts, fn, response.url || 'the response');
  }

  /** True when bytes start like a packed model file (to tell it from a checkpoint). */
  static isModelFile(bytes) {
    const b = bytesOf(bytes, 'Model.isModelFile').subarray(0, 16);
    return this.rt.withBytes('Model.isModelFile', b, (p, n) => this.rt.x.tl_model_is_file(p, n) !== 0);
  }

  /**
   * Outputs (batch x outputSize) for inputs (batch x inputSize floats). options.out: a
   * Float32Array of batch x outputSize to write into (returned); otherwise a new one.
   */
  run(input, opts) {
    const fn = 'Model.run', rt = this.rt;
    const m = this.live('run');
    const v = toF32(input, fn, 'input');
    if (v.length === 0 || v.length % this.inputSize) {
      throw new TilelliError('SIZE_MISMATCH', `${fn}: input has ${v.length} values, not a positive multiple of ${this.inputSize}`, { status: STATUS.SIZE });
    }
    const batch = v.length / this.inputSize, n = batch * this.outputSize;
    let out = opts?.out;
    if (out !== undefined && !(out instanceof Float32Array && out.length === n)) {
      throw new TilelliError('SIZE_MISMATCH', `${fn}: options.out must be a Float32Array of ${n} values (batch ${batch} x ${this.outputSize}), got ${out instanceof Float32Array ? out.length : describe(out)}`, { status: STATUS.SIZE });
    }
    const io = this.#io;
    if (batch > io.batch) {
      const { base } = rt.allocBlock(fn, [batch * (this.inputSize + this.outputSize) * 4]);
      if (io.ptr) rt.free(io.ptr);
      io.ptr = base, io.batch = batch;
    }
    const ip = io.ptr, op = io.ptr + io.batch * this.inputSize * 4;
    rt.view(Float32Array, ip, v.length).set(v);
    rt.check(rt.x.tl_model_run(m, ip, v.length, batch, op, n), fn);
    out ??= new Float32Array(n);
    out.set(rt.view(Float32Array, op, n));
    return out;
  }

  /**
   * The index of the largest output of each vector. options.out: as for run(), receives the
   * outputs too (one run gives both).
   */
  predict(input, opts) {
    const out = this.run(input, opts);
    const k = this.outputSize, pred = new Int32Array(out.length / k);
    for (let b = 0; b < pred.length; b++) {
      let best = 0;
      for (let c = 1; c < k; c++) if (out[b * k + c] > out[b * k + best]) best = c;
      pred[b] = best;
    }
    return pred;
  }

  /** The trits (Int8Array, out x in) and per-row scales of layer i's matrix (linear, bitlinear). */
  trits(i) {
    const fn = 'Model.trits', p = this.live('trits'), rt = this.rt;
    const m = Number.isSafeInteger(i) && i >= 0 ? rt.x.tl_model_matrix(p, i) : 0;
    if (!m) throw invalid(`${fn}: layer ${i} has no matrix (layers with one: ${this.layers.flatMap((L, k) => (L.weights ? [k] : [])).join(', ')})`);
    const rows = rt.x.tl_matrix_rows(m), n = rows * rt.x.tl_matrix_cols(m);
    return rt.withBlock(fn, [n], ([tp]) => {
      rt.check(rt.x.tl_matrix_unpack(m, tp, n), fn);
      return { trits: rt.view(Int8Array, tp, n).slice(), scales: rt.view(Float32Array, rt.x.tl_matrix_scales(m), rows).slice() };
    });
  }

  /** The packed model file of this model (C's writer). */
  save() {
    const p = this.live('save'), rt = this.rt;
    return rt.withBlock('Model.save', [8], ([pp]) => {
      rt.check(rt.x.tl_model_save(p, pp, pp + 4), 'Model.save');
      return rt.takeBytes(pp);
    });
  }

  /** The same model with every matrix repacked in `format` (trits and scales unchanged). */
  convert(format) {
    const fn = 'Model.convert', p = this.live('convert'), rt = this.rt;
    const f = formatCode(rt, format, fn);
    return new this.constructor(rt.make(fn, (pp) => rt.x.tl_model_convert(p, f, pp)));
  }

  /** Add (or replace) metadata entries (an object of strings). */
  addMetadata(metadata) {
    const fn = 'Model.addMetadata', p = this.live('addMetadata'), rt = this.rt;
    if (!metadata || typeof metadata !== 'object' || Array.isArray(metadata)) throw invalid(`${fn}: metadata must be an object of strings, got ${describe(metadata)}`);
    // numbers and booleans are written as their text; anything else is refused by name
    const strings = Object.fromEntries(Object.entries(metadata).map(([k, v]) => {
      if (typeof v === 'string') return [k, v];
      if (typeof v === 'number' || typeof v === 'boolean') return [k, String(v)];
      throw invalid(`${fn}: metadata.${k} must be a string, got ${describe(v)}`);
    }));
    rt.withString(fn, JSON.stringify(strings), (jp, jl) => {
      rt.x.tl_error_clear();
      rt.check(rt.x.tl_model_set_metadata(p, jp, jl), fn);
    });
    this.#info = null;
  }

  /**
   * Sparse inputs: a layer whose input vector is mostly zeros (after a ReLU) reads only its nonzero
   * columns, through a column copy of its weights built on first use (as many bytes as the layer's
   * i2 weights again): the same outputs, bit for bit, in about the time of the nonzero share.
   * setColumnCopy(false) frees the copies and keeps every layer on its rows (less memory);
   * setColumnCopy(true), the default, allows them again.
   */
  setColumnCopy(allow) {
    const fn = 'Model.setColumnCopy', p = this.live('setColumnCopy');
    if (typeof allow !== 'boolean') throw invalid(`${fn}: allow must be true or false, got ${describe(allow)}`);
    this.rt.check(this.rt.x.tl_model_set_column_copy(p, allow ? 1 : 0), fn);
  }

  /** Set every linear layer's activation precision ('float' | 'int8'). */
  setActivations(activations) {
    const fn = 'Model.setActivations', p = this.live('setActivations');
    this.rt.check(this.rt.x.tl_model_set_precision(p, pick({ float: PRECISION.float, int8: PRECISION.int8 }, activations, fn, 'activations')), fn);
    this.#info = null;
  }
}

// ---------------------------------------------------------------------------------------------
// Building models (C's builder and writer)
// ---------------------------------------------------------------------------------------------

/** A tl_model pointer -> the file's bytes; the model is freed. */
function saveAndFree(rt, m, fn) {
  try {
    return rt.withBlock(fn, [8], ([pp]) => {
      rt.check(rt.x.tl_model_save(m, pp, pp + 4), fn);
      return rt.takeBytes(pp);
    });
  } finally {
    rt.x.tl_model_free(m);
  }
}

// JS names of the float parameters a layer may carry -> the names C stages them under.
const PARAMS = { bias: 'bias', normWeight: 'norm_weight', weight: 'weight' };

/**
 * C's builder reads a layer description with the file reader's rules, so it calls a bad field
 * PARSE; here the caller gave the field: INVALID_ARGUMENT, with C's detail (which field, why).
 */
const argumentStatus = (s) => (s === STATUS.PARSE ? STATUS.ARGUMENT : s);

/**
 * The packed model file of a layer list. Layers: { type: 'linear' | 'bitlinear', matrix:
 * PackedMatrix, bias?, normWeight?, eps?, activations?, quantizer?, name? } | { type: 'relu' |
 * 'gelu' | 'silu' | 'softmax' } | { type: 'rmsnorm', weight?, eps? } | { type: 'binarize',
 * threshold } | { type: 'binarize', k }. C validates every field and names what it refuses.
 */
export function packModel(rt, spec) {
  const fn = 'packModel';
  if (!spec || typeof spec !== 'object' || !Array.isArray(spec.layers)) {
    throw invalid(`${fn}: give { input, layers: [...] }`);
  }
  const { input, layers, metadata } = spec;
  if (!Number.isSafeInteger(input) || input <= 0) throw invalid(`${fn}: input must be a positive integer, got ${input}`);
  const b = rt.make(fn, (pp) => rt.x.tl_model_builder_new(input, pp));
  try {
    layers.forEach((L, i) => {
      const where = `${fn}: layers[${i}]`;
      if (!L || typeof L !== 'object') throw invalid(`${where} must be an object, got ${describe(L)}`);
      const { matrix, ...fields } = L;
      for (const [js, c] of Object.entries(PARAMS)) {
        if (fields[js] === undefined) continue;
        const v = toF32(fields[js], where, js);
        delete fields[js];
        rt.withString(fn, c, (np, nl) => rt.withBlock(fn, [v.length * 4], ([vp]) => {
          rt.view(Float32Array, vp, v.length).set(v);
          rt.check(rt.x.tl_model_builder_stage(b, np, nl, vp, v.length), fn);
        }));
      }
      let mp = 0;
      if (matrix !== undefined) {
        if (!(matrix instanceof Owned) || matrix.rt !== rt || matrix.constructor.label !== 'PackedMatrix') {
          throw invalid(`${where}.matrix must be a PackedMatrix of this instance`);
        }
        mp = matrix.live('packModel');
      }
      rt.withString(fn, toJson(fields, fn, `layers[${i}]`), (jp, jl) => {
        rt.x.tl_error_clear();
        rt.check(argumentStatus(rt.x.tl_model_builder_add(b, jp, jl, mp)), fn);
      });
    });
    const model = new rt.classes.Model(rt.make(fn, (pp) => argumentStatus(rt.x.tl_model_builder_finish(b, pp))));
    try {
      if (metadata !== undefined) model.addMetadata(metadata);
      return model.save();
    } finally {
      model.free();
    }
  } finally {
    rt.x.tl_model_builder_free(b);
  }
}

/**
 * A checkpoint and an architecture description -> the packed model file. arch: { input,
 * layers: [{ type: 'linear' | 'bitlinear', weight: name, bias?: name, quantizer?: 'per_tensor'
 * | 'per_row', activations?: 'float' | 'int8' }, { type: 'relu' }, ...], metadata? };
 * options.format picks the packing, options.activations overrides every linear layer's.
 */
export function packCheckpoint(rt, checkpoint, arch, opts) {
  const fn = 'packCheckpoint';
  const { format = 'i2', activations, onProgress } = options(opts, fn);
  if (!arch || typeof arch !== 'object') throw invalid(`${fn}: the architecture must be { input, layers: [...] }`);
  const f = formatCode(rt, format, fn);
  const precision = precisionOf(activations, fn);
  const json = toJson({ ...arch, metadata: { ...(arch.metadata ?? {}), weights: format } }, fn, 'the architecture');
  const st = checkpoint instanceof Owned && checkpoint.constructor.label === 'Safetensors' && checkpoint.rt === rt
    ? checkpoint : rt.classes.Safetensors.open(checkpoint);
  try {
    const m = rt.withString(fn, json, (jp, jl) => rt.make(fn, (pp) => rt.x.tl_model_from_checkpoint(st.live(fn), jp, jl, f, precision, pp)));
    const bytes = saveAndFree(rt, m, fn);
    onProgress?.({ layer: (arch.layers?.length ?? 1) - 1, of: arch.layers?.length ?? 1 });
    return bytes;
  } finally {
    if (st !== checkpoint) st.free();
  }
}
