// model.js — checkpoints in, packed models out, and the model runtime.
//
//   Safetensors.open(bytes)        a safetensors checkpoint, validated by the C parser
//   packModel({ input, layers })   the packed model file (docs/FORMATS.md) from PackedMatrix objects
//   packCheckpoint(bytes, arch)    checkpoint + architecture description -> packed model file
//   Model.load(bytes)              a packed model file, validated by the C loader; run(), predict()
//
// The packed model file is written here and read by src/model.c; docs/FORMATS.md is the one
// description both follow.

import { TilelliError } from './errors.js';
import { describe, toF32 } from './runtime.js';

const MAGIC = [0x54, 0x4c, 0x4d, 0x4c]; // "TLML"
const MODEL_VERSION = 1;
const DTYPES = { 1: 'F32', 2: 'F16', 3: 'BF16', 4: 'I8', 5: 'U8' };
const disposeSymbol = Symbol.dispose ?? Symbol.for('Symbol.dispose');
const utf8 = new TextDecoder('utf-8', { fatal: false });

function bytesOf(x, fn, name = 'bytes') {
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  throw new TilelliError('INVALID_ARGUMENT', `${fn}: ${name} must be a Uint8Array, ArrayBuffer or Buffer, got ${describe(x)}`);
}

/** Copy bytes into wasm memory for the object's lifetime; returns the pointer. */
function place(rt, fn, bytes) {
  const { base } = rt.allocBlock(fn, [bytes.length]);
  rt.view(Uint8Array, base, bytes.length).set(bytes);
  return base;
}

/** An owner of one C object: free() once, FREED after, a FinalizationRegistry as a safety net. */
function makeOwner(freeFn) {
  const registry = typeof FinalizationRegistry === 'function' ? new FinalizationRegistry((ptrs) => freeFn(...ptrs)) : undefined;
  return {
    register(obj, ptrs) { registry?.register(obj, ptrs, obj); },
    release(obj, ptrs) { registry?.unregister(obj); freeFn(...ptrs); },
  };
}

export function modelApi(rt, PackedMatrix) {
  const x = rt.x;

  // ---------------------------------------------------------------------------------------------
  // Safetensors
  // ---------------------------------------------------------------------------------------------

  const stOwner = makeOwner((st, data) => { x.tl_safetensors_free(st); x.tl_free(data); });

  class Safetensors {
    #st; #data;

    /** @internal use Safetensors.open */
    constructor(st, data) {
      this.#st = st;
      this.#data = data;
      const tensors = [];
      rt.withBlock('Safetensors', [4 * 8 + 8], ([p]) => {
        const n = x.tl_safetensors_count(st) >>> 0;
        for (let i = 0; i < n; i++) {
          rt.check(x.tl_safetensors_tensor(st, i, p, p + 4, p + 8, p + 12, p + 16, p + 20, p + 24), 'Safetensors');
          const u32 = rt.view(Uint32Array, p, 7);
          const [namePtr, nameLen, dtype, ndim, shapePtr, , nbytes] = u32;
          const shape = Array.from(rt.view(BigInt64Array, shapePtr, ndim), Number);
          tensors.push({
            name: utf8.decode(rt.view(Uint8Array, namePtr, nameLen)),
            dtype: DTYPES[dtype], shape, byteLength: nbytes, index: i,
          });
        }
        const meta = {};
        const m = x.tl_safetensors_metadata_count(st) >>> 0;
        for (let j = 0; j < m; j++) {
          rt.check(x.tl_safetensors_metadata(st, j, p, p + 4, p + 8, p + 12), 'Safetensors');
          const [kp, kl, vp, vl] = rt.view(Uint32Array, p, 4);
          meta[utf8.decode(rt.view(Uint8Array, kp, kl))] = utf8.decode(rt.view(Uint8Array, vp, vl));
        }
        this.metadata = meta;
      });
      this.tensors = tensors;
      stOwner.register(this, [st, data]);
    }

    /** Parse and validate a checkpoint (a Uint8Array of the whole file). */
    static open(bytes) {
      const fn = 'Safetensors.open';
      const b = bytesOf(bytes, fn);
      const data = place(rt, fn, b);
      try {
        const st = rt.withBlock(fn, [4], ([pp]) => {
          rt.check(x.tl_safetensors_open(data, b.length, pp), fn);
          return rt.view(Uint32Array, pp, 1)[0];
        });
        return new Safetensors(st, data);
      } catch (e) {
        x.tl_free(data);
        throw e;
      }
    }

    #live(fn) {
      if (this.#st === 0) throw new TilelliError('FREED', `Safetensors.${fn}: the checkpoint was freed`, { status: -14 });
      return this.#st;
    }

    /** The tensor's description, by name. */
    tensor(name) {
      this.#live('tensor');
      const t = this.tensors.find((e) => e.name === name);
      if (!t) {
        throw new TilelliError('INVALID_ARGUMENT',
          `Safetensors.tensor: no tensor named ${JSON.stringify(name)} (have ${this.tensors.map((e) => e.name).join(', ')})`);
      }
      return t;
    }

    /** A tensor's values as float32 (F16 and BF16 widened exactly, I8 and U8 converted). */
    read(name) {
      const st = this.#live('read');
      const t = this.tensor(name);
      const n = t.shape.reduce((a, d) => a * d, 1);
      return rt.withBlock('Safetensors.read', [n * 4], ([op]) => {
        rt.check(x.tl_safetensors_read_f32(st, t.index, op, n), 'Safetensors.read');
        return rt.view(Float32Array, op, n).slice();
      });
    }

    free() {
      if (this.#st === 0) return;
      stOwner.release(this, [this.#st, this.#data]);
      this.#st = 0;
    }

    [disposeSymbol]() { this.free(); }
  }

  // ---------------------------------------------------------------------------------------------
  // Writing the packed model file
  // ---------------------------------------------------------------------------------------------

  /**
   * The packed model file of a layer list. Layers: { type: 'linear' | 'bitlinear', matrix:
   * PackedMatrix, bias?, normWeight?, eps? } | { type: 'relu' | 'gelu' | 'silu' | 'softmax' } |
   * { type: 'rmsnorm', weight?, eps? } | { type: 'binarize', threshold } | { type: 'binarize', k }.
   */
  function packModel(spec) {
    const fn = 'packModel';
    if (!spec || typeof spec !== 'object' || !Array.isArray(spec.layers) || spec.layers.length === 0) {
      throw new TilelliError('INVALID_ARGUMENT', `${fn}: give { input, layers: [...] } with at least one layer`);
    }
    const { input, layers, metadata } = spec;
    if (!Number.isSafeInteger(input) || input <= 0) {
      throw new TilelliError('INVALID_ARGUMENT', `${fn}: input must be a positive integer, got ${input}`);
    }
    const blobs = [];
    let offset = 0;
    const blob = (bytes) => {
      const at = offset;
      blobs.push({ at, bytes });
      offset += Math.ceil(bytes.length / 16) * 16;
      return [at, bytes.length];
    };
    const f32 = (v, n, what) => {
      const a = toF32(v, fn, what);
      if (a.length !== n) throw new TilelliError('SIZE_MISMATCH', `${fn}: ${what} has ${a.length} values, needs ${n}`);
      return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
    };
    let width = input;
    const out = layers.map((L, i) => {
      const where = `layers[${i}]`;
      if (!L || typeof L !== 'object') throw new TilelliError('INVALID_ARGUMENT', `${fn}: ${where} must be an object`);
      switch (L.type) {
        case 'linear':
        case 'bitlinear': {
          const m = L.matrix;
          if (!(m instanceof PackedMatrix)) throw new TilelliError('INVALID_ARGUMENT', `${fn}: ${where}.matrix must be a PackedMatrix`);
          if (m.cols !== width) {
            throw new TilelliError('SIZE_MISMATCH', `${fn}: ${where} takes ${m.cols} inputs but the layer before gives ${width}`);
          }
          const h = { type: L.type, in: m.cols, out: m.rows, weights: m.format, packed: blob(m.bytes()) };
          h.scales = blob(f32(m.scales(), m.rows, `${where} scales`));
          if (L.bias !== undefined) h.bias = blob(f32(L.bias, m.rows, `${where}.bias`));
          if (L.type === 'bitlinear') {
            if (L.normWeight !== undefined) h.norm_weight = blob(f32(L.normWeight, m.cols, `${where}.normWeight`));
            if (L.eps !== undefined) h.eps = L.eps;
          }
          width = m.rows;
          return h;
        }
        case 'rmsnorm': {
          const h = { type: 'rmsnorm', dim: width };
          if (L.weight !== undefined) h.weight = blob(f32(L.weight, width, `${where}.weight`));
          if (L.eps !== undefined) h.eps = L.eps;
          return h;
        }
        case 'binarize':
          return L.k !== undefined ? { type: 'binarize', k: L.k } : { type: 'binarize', threshold: L.threshold ?? 0 };
        case 'relu': case 'gelu': case 'silu': case 'softmax':
          return { type: L.type };
        default:
          throw new TilelliError('INVALID_ARGUMENT', `${fn}: ${where}.type ${JSON.stringify(L.type)} is not a layer type`);
      }
    });
    const header = { format: 'tilelli-model', version: MODEL_VERSION, input, layers: out };
    if (metadata !== undefined) header.metadata = Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, String(v)]));
    const json = new TextEncoder().encode(JSON.stringify(header));
    const padded = Math.ceil((16 + json.length) / 16) * 16 - 16;
    // The data section ends with the last blob (no padding after it).
    const end = blobs.reduce((e, b) => Math.max(e, b.at + b.bytes.length), 0);
    const file = new Uint8Array(16 + padded + end);
    file.set(MAGIC, 0);
    const dv = new DataView(file.buffer);
    dv.setUint32(4, MODEL_VERSION, true);
    dv.setBigUint64(8, BigInt(padded), true);
    file.fill(0x20, 16, 16 + padded);
    file.set(json, 16);
    for (const b of blobs) file.set(b.bytes, 16 + padded + b.at);
    // Validate what was written with the reader, so a writer bug cannot produce a file that
    // only fails later on a user's machine.
    new Model(loadPtr('packModel', file)).free();
    return file;
  }

  /**
   * A checkpoint and an architecture description -> the packed model file. arch: { input,
   * layers: [{ type: 'linear' | 'bitlinear', weight: name, bias?: name, quantizer?: 'per_tensor'
   * | 'per_row' }, { type: 'relu' }, ...] }; options.format picks the packing.
   */
  function packCheckpoint(checkpoint, arch, opts = {}) {
    const fn = 'packCheckpoint';
    const { format = 'i2', onProgress } = opts;
    if (!arch || typeof arch !== 'object' || !Array.isArray(arch.layers)) {
      throw new TilelliError('INVALID_ARGUMENT', `${fn}: the architecture must be { input, layers: [...] }`);
    }
    const st = checkpoint instanceof Safetensors ? checkpoint : Safetensors.open(checkpoint);
    const made = [];
    try {
      const layers = arch.layers.map((L, i) => {
        if (L.type !== 'linear' && L.type !== 'bitlinear') return L;
        const t = st.tensor(L.weight);
        if (t.shape.length !== 2) throw new TilelliError('SHAPE', `${fn}: ${L.weight} has shape [${t.shape}], not [out, in]`);
        const quantizer = L.quantizer ?? 'per_tensor';
        if (quantizer !== 'per_tensor' && quantizer !== 'per_row') {
          throw new TilelliError('INVALID_ARGUMENT', `${fn}: layers[${i}].quantizer must be per_tensor or per_row`);
        }
        const m = PackedMatrix.fromWeights(st.read(L.weight), t.shape, { format, perRow: quantizer === 'per_row' });
        made.push(m);
        onProgress?.({ layer: i, of: arch.layers.length, name: L.weight });
        return {
          type: L.type, matrix: m, bias: L.bias === undefined ? undefined : st.read(L.bias),
          normWeight: L.normWeight === undefined ? undefined : st.read(L.normWeight), eps: L.eps,
        };
      });
      return packModel({ input: arch.input, layers, metadata: { ...(arch.metadata ?? {}), weights: format } });
    } finally {
      for (const m of made) m.free();
      if (st !== checkpoint) st.free();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The runtime
  // ---------------------------------------------------------------------------------------------

  const modelOwner = makeOwner((m) => x.tl_model_free(m));

  function loadPtr(fn, b) {
    return rt.withBlock(fn, [b.length, 4], ([bp, pp]) => {
      rt.view(Uint8Array, bp, b.length).set(b);
      rt.check(x.tl_model_load(bp, b.length, pp), fn);
      return rt.view(Uint32Array, pp, 1)[0];
    });
  }

  function headerOf(b) {
    const hlen = Number(new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(8, true));
    return JSON.parse(utf8.decode(b.subarray(16, 16 + hlen)));
  }

  class Model {
    #m;

    /** @internal use Model.load */
    constructor(ptr, header) {
      this.#m = ptr;
      this.inputSize = x.tl_model_input_size(ptr) >>> 0;
      this.outputSize = x.tl_model_output_size(ptr) >>> 0;
      if (header) {
        this.layers = header.layers.map(({ packed, scales, bias, norm_weight: nw, weight, ...rest }) => rest);
        this.metadata = header.metadata ?? {};
      }
      modelOwner.register(this, [ptr]);
    }

    /** Load a packed model file: validated, nothing re-quantized. */
    static load(bytes) {
      const fn = 'Model.load';
      const b = bytesOf(bytes, fn);
      const ptr = loadPtr(fn, b);
      return new Model(ptr, headerOf(b)); // the header parsed and checked in C first
    }

    #live(fn) {
      if (this.#m === 0) throw new TilelliError('FREED', `Model.${fn}: the model was freed`, { status: -14 });
      return this.#m;
    }

    /** Outputs (batch x outputSize) for inputs (batch x inputSize floats). */
    run(input) {
      const fn = 'Model.run';
      const m = this.#live('run');
      const v = toF32(input, fn, 'input');
      if (v.length === 0 || v.length % this.inputSize) {
        throw new TilelliError('SIZE_MISMATCH', `${fn}: input has ${v.length} values, not a positive multiple of ${this.inputSize}`);
      }
      const batch = v.length / this.inputSize, n = batch * this.outputSize;
      return rt.withBlock(fn, [v.length * 4, n * 4], ([ip, op]) => {
        rt.view(Float32Array, ip, v.length).set(v);
        rt.check(x.tl_model_run(m, ip, v.length, batch, op, n), fn, (code) => {
          if (code !== 'NON_FINITE') return undefined;
          const i = v.findIndex((e) => !Number.isFinite(e));
          return i >= 0 ? `input[${i}] is ${v[i]}` : undefined;
        });
        return rt.view(Float32Array, op, n).slice();
      });
    }

    /** The index of the largest output of each vector. */
    predict(input) {
      const out = this.run(input);
      const batch = out.length / this.outputSize, pred = new Int32Array(batch);
      for (let b = 0; b < batch; b++) {
        let best = 0;
        for (let c = 1; c < this.outputSize; c++) if (out[b * this.outputSize + c] > out[b * this.outputSize + best]) best = c;
        pred[b] = best;
      }
      return pred;
    }

    get freed() { return this.#m === 0; }

    free() {
      if (this.#m === 0) return;
      modelOwner.release(this, [this.#m]);
      this.#m = 0;
    }

    [disposeSymbol]() { this.free(); }
  }

  return { Safetensors, Model, packModel, packCheckpoint };
}

