// runtime.js — what every wrapper shares: the instance and its memory (Runtime), argument
// normalization (one place for what inputs are accepted), and error details.

import { TilelliError } from './errors.js';

const PAGE = 65536;

/** Names of the float32-typed views we accept by converting (plain arrays are converted too). */
const NUMERIC_VIEWS = new Set([
  'Float64Array', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array',
  'Int32Array', 'Uint32Array',
]);

export function describe(x) {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'object') return x.constructor?.name ?? 'an object';
  return typeof x;
}

export function tagOf(x) {
  return Object.prototype.toString.call(x).slice(8, -1);
}

/** The instance, its memory, and the helpers every wrapper uses. */
export class Runtime {
  constructor(exports, memory, maxPages) {
    this.x = exports;
    this.memory = memory;
    this.maxBytes = maxPages * PAGE;
    this.maxElements = 0x3fffffff; // TL_MAX_ELEMENTS
    this.simd = (exports.tl_build_flags() & 1) === 1;
  }

  u8() { return new Uint8Array(this.memory.buffer); }

  cString(ptr) {
    const bytes = this.u8();
    let end = ptr;
    while (bytes[end] !== 0) end++;
    return new TextDecoder().decode(bytes.subarray(ptr, end));
  }

  statusName(status) { return this.cString(this.x.tl_status_name(status)); }

  /**
   * Allocate one block holding several buffers, each 16-byte aligned.
   * @param {string} fn the API function, for the error message
   * @param {number[]} sizes byte sizes
   * @returns {{ base: number, ptrs: number[] }}
   */
  allocBlock(fn, sizes) {
    const ptrs = [];
    let total = 0;
    for (const size of sizes) {
      ptrs.push(total);
      total += Math.ceil(Math.max(size, 1) / 16) * 16;
    }
    const base = total > 0xffffffff ? 0 : this.x.tl_alloc(total) >>> 0;
    if (base === 0) {
      throw new TilelliError('OUT_OF_MEMORY',
        `${fn}: could not allocate ${total} bytes of wasm memory ` +
        `(memory is ${this.memory.buffer.byteLength} bytes, maximum ${this.maxBytes})`,
        { status: -9 });
    }
    return { base, ptrs: ptrs.map((p) => base + p) };
  }

  free(ptr) { this.x.tl_free(ptr); }

  /** allocBlock, run body(ptrs), free: the block never outlives the call. */
  withBlock(fn, sizes, body) {
    const { base, ptrs } = this.allocBlock(fn, sizes);
    try {
      return body(ptrs);
    } finally {
      this.free(base);
    }
  }

  /** Fresh views (the buffer is replaced when memory grows). */
  view(Ctor, ptr, length) { return new Ctor(this.memory.buffer, ptr, length); }

  /** Throw a TilelliError for a failed status, with the detail `explain` gives for its code. */
  check(status, fn, explain) {
    if (status >= 0) return;
    const code = this.statusName(status);
    const base = this.cString(this.x.tl_status_message(status));
    const detail = explain?.(code);
    throw new TilelliError(code, `${fn}: ${base}${detail ? ` (${detail})` : ''}`, { status });
  }
}

/** Accept a Float32Array as is; convert plain arrays and other numeric typed arrays. */
export function toF32(w, fn, name = 'w') {
  if (tagOf(w) === 'Float32Array') return w;
  if (Array.isArray(w)) {
    for (let i = 0; i < w.length; i++) {
      if (typeof w[i] !== 'number') {
        throw new TilelliError('INVALID_ARGUMENT', `${fn}: ${name}[${i}] is ${describe(w[i])}, not a number`);
      }
    }
    return Float32Array.from(w);
  }
  if (NUMERIC_VIEWS.has(tagOf(w))) return Float32Array.from(w);
  throw new TilelliError('INVALID_ARGUMENT',
    `${fn}: ${name} must be a Float32Array or an array of numbers, got ${describe(w)}`);
}

export function toShape(shape, fn) {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d))) {
    throw new TilelliError('INVALID_ARGUMENT',
      `${fn}: shape must be an array of integers, got ${Array.isArray(shape) ? JSON.stringify(shape) : describe(shape)}`);
  }
  return shape;
}

export function toNumber(x, fn, name) {
  if (typeof x !== 'number') {
    throw new TilelliError('INVALID_ARGUMENT', `${fn}: ${name} must be a number, got ${describe(x)}`);
  }
  return x;
}

export function firstNonFinite(w) {
  for (let i = 0; i < w.length; i++) if (!Number.isFinite(w[i])) return `w[${i}] is ${w[i]}`;
  return undefined;
}

/** The detail for an error code raised on tensor w (and shape, when given). */
export function explainer(w, shape) {
  return (code) => {
    switch (code) {
      case 'NON_FINITE': return firstNonFinite(w);
      case 'EMPTY': return shape ? `shape ${JSON.stringify(shape)} has no elements` : 'w has no elements';
      case 'RANK': return `shape ${JSON.stringify(shape)} has ${shape.length} dimension${shape.length === 1 ? '' : 's'}`;
      case 'SHAPE': {
        const neg = shape.find((d) => d < 0);
        if (neg !== undefined) return `shape ${JSON.stringify(shape)} has a negative dimension`;
        return `shape ${JSON.stringify(shape)} holds ${shape.reduce((a, b) => a * b, 1)} elements but w has ${w.length}`;
      }
      case 'OVERFLOW': return shape ? `shape ${JSON.stringify(shape)}, ${w.length} elements` : `${w.length} elements`;
      default: return undefined;
    }
  };
}


/**
 * Accept an integer typed array of exactly this type, or a plain array of integers in its range
 * (converted); anything else is INVALID_ARGUMENT.
 */
export function toIntArray(x, Ctor, fn, name) {
  if (tagOf(x) === Ctor.name) return x;
  if (Array.isArray(x)) {
    const out = new Ctor(x.length);
    for (let i = 0; i < x.length; i++) {
      out[i] = x[i];
      if (typeof x[i] !== 'number' || out[i] !== x[i]) {
        throw new TilelliError('INVALID_ARGUMENT', `${fn}: ${name}[${i}] is ${typeof x[i] === 'number' ? x[i] : describe(x[i])}, not a valid ${Ctor.name} value`);
      }
    }
    return out;
  }
  throw new TilelliError('INVALID_ARGUMENT', `${fn}: ${name} must be a ${Ctor.name} or an array of integers, got ${describe(x)}`);
}
