// matrix.js — packed ternary matrices in wasm memory, and their products.
//
// A PackedMatrix owns one tl_matrix of the C core (packed bytes + per-row scales). It is made
// from float weights (quantized as the reference does and packed in one call), from trits, or
// from packed bytes (validated), and multiplies with binary, sparse, int8 and float
// activations. The format names come from the C table (tl_format_name), never from here.

import { TilelliError } from './errors.js';
import { STATUS } from './constants.js';
import { Owned, invalid, options, show, toCount, toF32, toIntArray } from './runtime.js';

/** The packed formats the core knows, by name (asked of C once per instance). */
export function formatTable(rt) {
  if (!rt.formats) {
    const names = {};
    for (let i = 0, n = rt.x.tl_format_count(); i < n; i++) {
      const code = rt.x.tl_format_at(i);
      names[rt.cString(rt.x.tl_format_name(code))] = code;
    }
    rt.formats = names;
  }
  return rt.formats;
}

export function formatCode(rt, format, fn) {
  const table = formatTable(rt);
  if (typeof format !== 'string' || !Object.hasOwn(table, format)) {
    const names = Object.keys(table).map((f) => `'${f}'`);
    throw invalid(`${fn}: format must be ${names.slice(0, -1).join(', ')} or ${names.at(-1)}, got ${show(format)}`);
  }
  return table[format];
}

function dims(shape, fn) {
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw invalid(`${fn}: shape must be [rows, cols] with positive integers, got ${show(shape)}`);
  }
  // The core takes 32-bit sizes in wasm: larger products must not reach it (they would wrap).
  toCount(shape[0] * shape[1], fn, `shape [${shape[0]}, ${shape[1]}] (rows x cols)`);
  return shape;
}

/** Scales: one number (per tensor) or one per row. */
function toScales(scales, rows, fn) {
  if (typeof scales === 'number') return Float32Array.of(scales);
  const s = toF32(scales ?? [], fn, 'scales');
  if (s.length !== 1 && s.length !== rows) {
    throw new TilelliError('SIZE_MISMATCH', `${fn}: scales has ${s.length} values; give 1 or one per row (${rows})`, { status: STATUS.SIZE });
  }
  return s;
}

/** Batch count from an activation length, or SIZE_MISMATCH. */
function batchOf(length, per, fn, what) {
  if (length === 0 || length % per !== 0) {
    throw new TilelliError('SIZE_MISMATCH',
      `${fn}: ${what} has ${length} values, not a positive multiple of ${per} (one vector per batch row)`, { status: STATUS.SIZE });
  }
  return length / per;
}

function firstBadTrit(t) {
  const i = t.findIndex((v) => v < -1 || v > 1);
  return i >= 0 ? `trits[${i}] is ${t[i]}` : undefined;
}

function nonFinite(v, name) {
  const i = v.findIndex((e) => !Number.isFinite(e));
  return i >= 0 ? `${name}[${i}] is ${v[i]}` : undefined;
}

export function packedBytes(rt, f, rows, cols, fn) {
  return rt.withBlock(fn, [8], ([bp]) => {
    rt.check(rt.x.tl_format_bytes(f, rows, cols, bp), fn, () => `shape [${rows}, ${cols}]`);
    return rt.u32(bp);
  });
}

/** pack / unpack of raw trits, and the activation quantizer. */
export function packingApi(rt) {
  const x = rt.x;
  return {
    /** The packed format names, from the core's table. */
    formats: Object.keys(formatTable(rt)),

    pack(trits, shape, format = 'i2') {
      const fn = 'pack';
      const [rows, cols] = dims(shape, fn);
      const f = formatCode(rt, format, fn);
      const t = toIntArray(trits, Int8Array, fn, 'trits');
      if (t.length !== rows * cols) {
        throw new TilelliError('SIZE_MISMATCH', `${fn}: trits has ${t.length} values, shape [${rows}, ${cols}] needs ${rows * cols}`, { status: STATUS.SIZE });
      }
      const bytes = packedBytes(rt, f, rows, cols, fn);
      return rt.withArrays(fn, [t], ([tp, op]) => {
        rt.check(x.tl_pack(f, tp, rows, cols, op, bytes), fn, (code) => (code === 'INVALID_TRIT' ? firstBadTrit(t) : undefined));
        return rt.view(Uint8Array, op, bytes).slice();
      }, [bytes]);
    },

    unpack(bytes, shape, format = 'i2') {
      const fn = 'unpack';
      const [rows, cols] = dims(shape, fn);
      const f = formatCode(rt, format, fn);
      const b = toIntArray(bytes, Uint8Array, fn, 'bytes');
      const need = packedBytes(rt, f, rows, cols, fn);
      if (b.length !== need) {
        throw new TilelliError('SIZE_MISMATCH', `${fn}: ${format} bytes for [${rows}, ${cols}] are ${need}, got ${b.length}`, { status: STATUS.SIZE });
      }
      return rt.withArrays(fn, [b], ([bp, tp]) => {
        rt.check(x.tl_unpack(f, bp, b.length, rows, cols, tp), fn);
        return rt.view(Int8Array, tp, rows * cols).slice();
      }, [rows * cols]);
    },

    /** Packed byte size of a [rows, cols] matrix in a format. */
    packedSize(shape, format = 'i2') {
      const [rows, cols] = dims(shape, 'packedSize');
      return packedBytes(rt, formatCode(rt, format, 'packedSize'), rows, cols, 'packedSize');
    },

    quantizeActivations(xf, cols) {
      const fn = 'quantizeActivations';
      const v = toF32(xf, fn, 'x');
      toCount(cols, fn, 'cols');
      const batch = batchOf(v.length, cols, fn, 'x');
      return rt.withArrays(fn, [v], ([xp, qp, sp]) => {
        rt.check(x.tl_quantize_activations_i8(xp, v.length, batch, qp, sp), fn,
          (code) => (code === 'NON_FINITE' ? nonFinite(v, 'x') : undefined));
        return { values: rt.view(Int8Array, qp, v.length).slice(), scales: rt.view(Float32Array, sp, batch).slice() };
      }, [v.length, batch * 4]);
    },
  };
}

export class PackedMatrix extends Owned {
  static label = 'PackedMatrix';
  static noun = 'matrix';
  static release(rt, [ptr]) { rt.x.tl_matrix_free(ptr); }

  /** @internal use the static constructors */
  constructor(ptr) {
    super(ptr);
    const { x } = this.rt;
    this.rows = x.tl_matrix_rows(ptr);
    this.cols = x.tl_matrix_cols(ptr);
    this.format = this.rt.cString(x.tl_matrix_format(ptr) ? x.tl_format_name(x.tl_matrix_format(ptr)) : 0);
    this.byteLength = x.tl_matrix_data_bytes(ptr);
  }

  /**
   * What the three constructors share: options, shape and format checked, `values` converted
   * (and, when `exact`, of rows x cols values), then make(format code, rows, cols, converted) ->
   * { arrays to copy in, call(ptrs, outPtrPtr), explain }.
   */
  static #from(fn, values, convert, shape, opts, defaults, exact, make) {
    const rt = this.rt;
    const o = { format: 'i2', ...defaults };
    for (const [k, v] of Object.entries(options(opts, fn))) if (v !== undefined) o[k] = v;
    const [rows, cols] = dims(shape, fn);
    const f = formatCode(rt, o.format, fn);
    const v = convert(values);
    if (exact && v.length !== rows * cols) {
      throw new TilelliError('SIZE_MISMATCH', `${fn}: ${exact} has ${v.length} values, shape [${rows}, ${cols}] needs ${rows * cols}`, { status: STATUS.SIZE });
    }
    const { arrays, call, explain } = make(f, rows, cols, v, o);
    return rt.withArrays(fn, arrays, (ptrs) => new this(rt.make(fn, (pp) => call(ptrs, pp), explain)));
  }

  /** Quantize float weights [rows, cols] as the reference does and pack them. */
  static fromWeights(w, shape, opts) {
    const fn = 'PackedMatrix.fromWeights', x = this.rt.x;
    return PackedMatrix.#from.call(this, fn, w, (a) => toF32(a, fn), shape, opts, { perRow: false }, 'w', (f, rows, cols, v, o) => ({
      arrays: [v],
      call: ([wp], pp) => x.tl_matrix_quantize(f, wp, rows, cols, o.perRow ? 1 : 0, pp),
      explain: (code) => (code === 'NON_FINITE' ? nonFinite(v, 'w') : undefined),
    }));
  }

  /** From trits (-1, 0, +1) and scales (one number, or one per row). */
  static fromTrits(trits, shape, opts) {
    const fn = 'PackedMatrix.fromTrits', x = this.rt.x;
    return PackedMatrix.#from.call(this, fn, trits, (a) => toIntArray(a, Int8Array, fn, 'trits'), shape, opts, { scales: 1 }, 'trits',
      (f, rows, cols, t, o) => {
        const s = toScales(o.scales, rows, fn);
        return {
          arrays: [t, s],
          call: ([tp, sp], pp) => x.tl_matrix_from_trits(f, tp, rows, cols, sp, s.length, pp),
          explain: (code) => (code === 'INVALID_TRIT' ? firstBadTrit(t) : code === 'NON_FINITE' ? nonFinite(s, 'scales') : undefined),
        };
      });
  }

  /** From packed bytes of a format (validated) and scales, e.g. what bytes() and scales() saved. */
  static fromPacked(bytes, shape, opts) {
    const fn = 'PackedMatrix.fromPacked', rt = this.rt;
    return PackedMatrix.#from.call(this, fn, bytes, (a) => toIntArray(a, Uint8Array, fn, 'bytes'), shape, opts, { scales: 1 }, false,
      (f, rows, cols, b, o) => {
        const s = toScales(o.scales, rows, fn);
        return {
          arrays: [b, s],
          call: ([bp, sp], pp) => rt.x.tl_matrix_from_packed(f, bp, b.length, rows, cols, sp, s.length, pp),
          explain: (code) => (code === 'SIZE_MISMATCH'
            ? `${o.format} bytes for [${rows}, ${cols}] are ${packedBytes(rt, f, rows, cols, fn)}, got ${b.length}`
            : code === 'NON_FINITE' ? nonFinite(s, 'scales') : undefined),
        };
      });
  }

  /** A copy of the packed bytes (docs/FORMATS.md gives the layout). */
  bytes() {
    const p = this.live('bytes'), rt = this.rt, n = this.byteLength;
    return rt.withBlock('PackedMatrix.bytes', [n], ([bp]) => {
      rt.check(rt.x.tl_matrix_packed(p, bp, n), 'PackedMatrix.bytes');
      return rt.view(Uint8Array, bp, n).slice();
    });
  }

  /** A copy of the per-row scales. */
  scales() {
    const p = this.live('scales');
    return this.rt.view(Float32Array, this.rt.x.tl_matrix_scales(p), this.rows).slice();
  }

  /**
   * Sparse vectors (mostly zeros) read only their nonzero columns, through a column copy of the
   * trits built on first use (as many bytes as the i2 rows): the same outputs. false frees the copy
   * and keeps every product on the rows; true (the default) allows it again.
   */
  setColumnCopy(allow) {
    const fn = 'PackedMatrix.setColumnCopy', p = this.live('setColumnCopy');
    if (typeof allow !== 'boolean') throw invalid(`${fn}: allow must be true or false, got ${show(allow)}`);
    this.rt.check(this.rt.x.tl_matrix_set_column_copy(p, allow ? 1 : 0), fn);
  }

  /** The trits, unpacked. */
  trits() {
    const p = this.live('trits'), rt = this.rt;
    const n = this.rows * this.cols;
    return rt.withBlock('PackedMatrix.trits', [n], ([tp]) => {
      rt.check(rt.x.tl_matrix_unpack(p, tp, n), 'PackedMatrix.trits');
      return rt.view(Int8Array, tp, n).slice();
    });
  }

  /**
   * Run a kernel: inputs are copied in by `fill(ptrs)`, `call(ptrs, accPtr, outPtr, outLen)`
   * runs it; results are int32 accumulators (raw) or float outputs.
   */
  #run(fn, batch, inputSizes, fill, call, raw, explain) {
    const p = this.live(fn), rt = this.rt;
    const outLen = batch * this.rows;
    return rt.withBlock(`PackedMatrix.${fn}`, [...inputSizes, outLen * 4], (ptrs) => {
      fill(ptrs);
      const outPtr = ptrs[ptrs.length - 1];
      rt.check(call(p, ptrs, raw ? outPtr : 0, raw ? 0 : outPtr, outLen), `PackedMatrix.${fn}`, explain);
      return raw ? rt.view(Int32Array, outPtr, outLen).slice() : rt.view(Float32Array, outPtr, outLen).slice();
    });
  }

  /**
   * Binary activations, bit-packed: ceil(cols / 8) bytes per vector (bit j of byte k is
   * element 8k + j), batch = bytes / that. Returns batch x rows outputs (acc * scale), or the
   * int32 accumulators with { raw: true }.
   */
  matmulBinary(bits, opts) {
    const fn = 'matmulBinary', rt = this.rt;
    const { raw = false } = options(opts, `PackedMatrix.${fn}`);
    const b = toIntArray(bits, Uint8Array, `PackedMatrix.${fn}`, 'bits');
    const batch = batchOf(b.length, Math.ceil(this.cols / 8), `PackedMatrix.${fn}`, 'bits');
    return this.#run(fn, batch, [b.length], ([bp]) => rt.view(Uint8Array, bp, b.length).set(b),
      (p, [bp], acc, out, n) => rt.x.tl_matmul_binary(p, bp, b.length, batch, acc, out, n), raw);
  }

  /**
   * Sparse binary activations as lists of active column indices: one list (a GEMV) or an
   * array of lists (one per batch vector). The core checks every index against cols.
   */
  matmulSparse(indices, opts) {
    const fn = 'matmulSparse', rt = this.rt;
    const { raw = false } = options(opts, `PackedMatrix.${fn}`);
    const lists = Array.isArray(indices) && indices.length > 0 && typeof indices[0] !== 'number' ? indices : [indices];
    const parts = lists.map((l, i) => toIntArray(l, Uint32Array, `PackedMatrix.${fn}`, lists.length > 1 ? `indices[${i}]` : 'indices'));
    const total = parts.reduce((a, l) => a + l.length, 0);
    const batch = parts.length;
    return this.#run(fn, batch, [total * 4, (batch + 1) * 4], ([ip, op]) => {
      const iv = rt.view(Uint32Array, ip, total), ov = rt.view(Uint32Array, op, batch + 1);
      let at = 0;
      parts.forEach((l, i) => { ov[i] = at; iv.set(l, at); at += l.length; });
      ov[batch] = at;
    }, (p, [ip, op], acc, out, n) => rt.x.tl_matmul_sparse(p, ip, total, op, batch, acc, out, n), raw,
    (code) => {
      if (code !== 'SIZE_MISMATCH') return undefined;
      for (const [i, l] of parts.entries()) {
        const bad = l.findIndex((c) => c >= this.cols);
        if (bad >= 0) return `index ${l[bad]} (list ${i}, position ${bad}) is not below cols = ${this.cols}`;
      }
      return undefined;
    });
  }

  /**
   * int8 activations (batch x cols values), with the per-vector scales s of
   * quantizeActivations (outputs acc * scale / s) or none (s = 1).
   */
  matmulInt8(values, opts) {
    const fn = 'matmulInt8', rt = this.rt;
    const { raw = false, scales } = options(opts, `PackedMatrix.${fn}`);
    const v = toIntArray(values, Int8Array, `PackedMatrix.${fn}`, 'values');
    const batch = batchOf(v.length, this.cols, `PackedMatrix.${fn}`, 'values');
    const s = scales === undefined ? undefined : toF32(scales, `PackedMatrix.${fn}`, 'scales');
    if (s && s.length !== batch) {
      throw new TilelliError('SIZE_MISMATCH', `PackedMatrix.${fn}: ${batch} vectors but ${s.length} scales`, { status: STATUS.SIZE });
    }
    return this.#run(fn, batch, [v.length, batch * 4], ([vp, sp]) => {
      rt.view(Int8Array, vp, v.length).set(v);
      if (s) rt.view(Float32Array, sp, batch).set(s);
    }, (p, [vp, sp], acc, out, n) => rt.x.tl_matmul_i8(p, vp, v.length, batch, s ? sp : 0, acc, out, n), raw,
    (code) => {
      if (code === 'OVERFLOW') return `${this.cols} columns: the int8 product takes at most 2^24 - 1`;
      if (code !== 'INVALID_ALPHA' || !s) return undefined;
      const i = s.findIndex((e) => !(Number.isFinite(e) && e > 0));
      const given = Array.isArray(scales) || ArrayBuffer.isView(scales) ? scales[i] : undefined;
      return `scales[${i}] is ${s[i]}${given !== undefined && given !== s[i] ? ` in float32 (given ${given})` : ''}`;
    });
  }

  /** float32 activations (batch x cols): adds and subtracts, one multiply per output. */
  matmulFloat(values) {
    const fn = 'matmulFloat', rt = this.rt;
    const v = toF32(values, `PackedMatrix.${fn}`, 'values');
    const batch = batchOf(v.length, this.cols, `PackedMatrix.${fn}`, 'values');
    return this.#run(fn, batch, [v.length * 4], ([vp]) => rt.view(Float32Array, vp, v.length).set(v),
      (p, [vp], _acc, out, n) => rt.x.tl_matmul_f32(p, vp, v.length, batch, out, n), false,
      (code) => (code === 'NON_FINITE' ? nonFinite(v, 'values') : undefined));
  }
}
