// runtime.js — what every wrapper shares: the instance and its memory (Runtime), the one
// ownership base of objects that hold C memory (Owned), and argument normalization (one place
// for what inputs are accepted).

import { TilelliError } from './errors.js';
import { MAX_ELEMENTS, STATUS, UNSIGNED_RESULTS } from './constants.js';

const PAGE = 65536;
const utf8 = new TextDecoder();
const disposeSymbol = Symbol.dispose ?? Symbol.for('Symbol.dispose');

/** Names of the float32-typed views we accept by converting (plain arrays are converted too). */
const NUMERIC_VIEWS = new Set([
  'Float64Array', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array',
  'Int32Array', 'Uint32Array',
]);

/** A value as JSON for a message; BigInts as 12n (JSON.stringify throws on them). */
export function show(x) {
  try {
    return JSON.stringify(x, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)) ?? String(x);
  } catch {
    return describe(x); // cyclic
  }
}

/** JSON text of a description passed to C: a BigInt or a cycle is the caller's mistake. */
export function toJson(x, fn, what) {
  try {
    return JSON.stringify(x, (k, v) => {
      if (typeof v === 'bigint') throw invalid(`${fn}: ${what}${k ? `.${k}` : ''} is the BigInt ${v}n; give a number`);
      return v;
    });
  } catch (e) {
    if (e instanceof TilelliError) throw e;
    throw invalid(`${fn}: ${what} cannot be written as JSON (${e.message})`);
  }
}

export function describe(x) {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'object') return x.constructor?.name ?? 'an object';
  return typeof x;
}

export function tagOf(x) {
  return Object.prototype.toString.call(x).slice(8, -1);
}

export function invalid(message) {
  return new TilelliError('INVALID_ARGUMENT', message, { status: STATUS.ARGUMENT });
}

/** The instance, its memory, and the helpers every wrapper uses. */
export class Runtime {
  constructor(exports, memory, maxPages) {
    // Exports that return a pointer or an unsigned size, read as unsigned (wasm gives i32).
    const x = { ...exports };
    for (const name of UNSIGNED_RESULTS) {
      const f = exports[name];
      if (typeof f === 'function') x[name] = (...args) => f(...args) >>> 0;
    }
    this.x = x;
    this.memory = memory;
    this.maxBytes = maxPages * PAGE;
    this.simd = (x.tl_build_flags() & 1) === 1;
    this.classes = {}; // this instance's bound classes (core.js), for objects made by other objects
    this.registry = typeof FinalizationRegistry === 'function'
      ? new FinalizationRegistry(({ cls, ptrs }) => cls.release(this, ptrs))
      : undefined;
  }

  u8() { return new Uint8Array(this.memory.buffer); }

  cString(ptr) {
    if (!ptr) return '';
    const bytes = this.u8();
    let end = ptr;
    while (bytes[end] !== 0) end++;
    return utf8.decode(bytes.slice(ptr, end)); // a copy: browsers refuse to decode views of a shared memory
  }

  /** A UTF-8 string of len bytes at ptr (not NUL-terminated). */
  string(ptr, len) { return utf8.decode(this.view(Uint8Array, ptr, len).slice()); }

  statusName(status) { return this.cString(this.x.tl_status_name(status)); }

  /** A TilelliError of a status raised by the binding itself. */
  error(status, message) {
    return new TilelliError(this.statusName(status), message, { status });
  }

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
    const base = total > 0xffffffff ? 0 : this.x.tl_alloc(total);
    if (base === 0) {
      throw this.error(STATUS.NO_MEMORY, `${fn}: could not allocate ${total} bytes of wasm memory ` +
        `(memory is ${this.memory.buffer.byteLength} bytes, maximum ${this.maxBytes})`);
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

  /**
   * Copy typed arrays into one wasm block, followed by `extra` output buffers (byte sizes), for
   * body(ptrs); the block is freed afterwards.
   */
  withArrays(fn, arrays, body, extra = []) {
    return this.withBlock(fn, [...arrays.map((a) => a.byteLength), ...extra], (ptrs) => {
      arrays.forEach((a, i) => this.view(globalThis[tagOf(a)], ptrs[i], a.length).set(a)); // a Buffer is a Uint8Array here
      return body(ptrs);
    });
  }

  /** Fresh views (the buffer is replaced when memory grows). */
  view(Ctor, ptr, length) { return new Ctor(this.memory.buffer, ptr, length); }

  /** The unsigned 32-bit value (a pointer, a size) at ptr. */
  u32(ptr) { return new Uint32Array(this.memory.buffer, ptr, 1)[0]; }

  /**
   * Throw a TilelliError for a failed status: the message is fn, the status's sentence, and the
   * detail C recorded (what and where) or else the one `explain` gives for its code.
   */
  check(status, fn, explain) {
    if (status >= 0) return;
    const code = this.statusName(status);
    const base = this.cString(this.x.tl_status_message(status));
    const fromC = this.cString(this.x.tl_error_detail());
    this.x.tl_error_clear();
    const detail = fromC || explain?.(code);
    throw new TilelliError(code, `${fn}: ${base}${detail ? ` (${detail})` : ''}`, { status });
  }

  /** Call a C function that makes an object (its last argument: where to write the pointer). */
  make(fn, call, explain) {
    return this.withBlock(fn, [4], ([pp]) => {
      this.x.tl_error_clear();
      this.check(call(pp), fn, explain);
      return this.u32(pp);
    });
  }

  /** Copy a JS string into wasm memory for body(ptr, byteLength). */
  withString(fn, text, body) {
    const bytes = new TextEncoder().encode(text);
    return this.withBlock(fn, [bytes.length], ([p]) => {
      this.view(Uint8Array, p, bytes.length).set(bytes);
      return body(p, bytes.length);
    });
  }

  /** Copy bytes into wasm memory for body(ptr, length). */
  withBytes(fn, bytes, body) {
    return this.withBlock(fn, [bytes.length], ([p]) => {
      this.view(Uint8Array, p, bytes.length).set(bytes);
      return body(p, bytes.length);
    });
  }

  /** Read a C-allocated buffer ((ptr, len) written at pp, pp + 4) as bytes, and free it. */
  takeBytes(pp) {
    const ptr = this.u32(pp), len = this.u32(pp + 4);
    try {
      return this.view(Uint8Array, ptr, len).slice();
    } finally {
      this.free(ptr);
    }
  }
}

/**
 * The one ownership base of everything that holds C memory: free() once (a no-op after),
 * [Symbol.dispose], FREED on use after free, and a FinalizationRegistry as a safety net.
 * Subclasses define static release(rt, ptrs) and static noun; the runtime comes from the bound
 * class (core.js binds each class to its instance: `class extends PackedMatrix { static rt }`).
 */
export class Owned {
  #ptrs;

  constructor(...ptrs) {
    const rt = new.target.rt;
    if (!rt) throw new TypeError(`${new.target.name}: use the static constructors of an initialized instance`);
    if (!Number.isInteger(ptrs[0]) || ptrs[0] <= 0) {
      // `new tl.Network({ widths })` reaches here with an object where the pointer goes
      const name = new.target.name;
      throw invalid(`new ${name}(...): a ${name} is made by its static methods (such as ${name}.create, ` +
        `${name}.load or ${name}.from...), not by new`);
    }
    Object.defineProperty(this, 'rt', { value: rt });
    this.#ptrs = ptrs;
    rt.registry?.register(this, { cls: new.target, ptrs }, this);
  }

  /** The pointer (ptrs[0]), or FREED after free(). */
  live(fn) {
    if (!this.#ptrs) {
      throw this.rt.error(STATUS.FREED, `${this.constructor.label}.${fn}: the ${this.constructor.noun} was freed`);
    }
    return this.#ptrs[0];
  }

  /** True once free() ran. */
  get freed() { return !this.#ptrs; }

  /** Release the C memory now (a no-op the second time). */
  free() {
    if (!this.#ptrs) return;
    this.rt.registry?.unregister(this);
    this.constructor.release(this.rt, this.#ptrs);
    this.#ptrs = null;
  }

  [disposeSymbol]() { this.free(); }
}

/** A per-instance subclass of a module-level class: its statics and instances use `rt`. */
export function bindClass(Base, rt) {
  const Bound = class extends Base {};
  Object.defineProperty(Bound, 'name', { value: Base.name });
  Object.defineProperty(Bound, 'rt', { value: rt });
  return Bound;
}

/** True for an ArrayBuffer that was transferred away (ArrayBuffer.prototype.detached is Node 22+). */
export function isDetached(buffer) {
  if (typeof buffer.detached === 'boolean') return buffer.detached;
  if (buffer.byteLength !== 0) return false;
  try {
    new Uint8Array(buffer, 0, 0); // eslint-disable-line no-new
    return false;
  } catch {
    return true;
  }
}

function notDetached(view, fn, name) {
  if (isDetached(view instanceof ArrayBuffer ? view : view.buffer)) {
    throw invalid(`${fn}: ${name} is a detached buffer (it was transferred, e.g. to a worker)`);
  }
}

/** Accept a Float32Array as is; convert plain arrays and other numeric typed arrays. */
export function toF32(w, fn, name = 'w') {
  if (tagOf(w) === 'Float32Array') {
    notDetached(w, fn, name);
    return w;
  }
  if (Array.isArray(w)) {
    for (let i = 0; i < w.length; i++) {
      if (typeof w[i] !== 'number') throw invalid(`${fn}: ${name}[${i}] is ${describe(w[i])}, not a number`);
    }
    return Float32Array.from(w);
  }
  if (NUMERIC_VIEWS.has(tagOf(w))) {
    notDetached(w, fn, name);
    return Float32Array.from(w);
  }
  throw invalid(`${fn}: ${name} must be a Float32Array or an array of numbers, got ${describe(w)}`);
}

/** Bytes of a file: a Uint8Array (or other view) or an ArrayBuffer, not copied. */
export function bytesOf(x, fn, name = 'bytes') {
  if (x instanceof ArrayBuffer || (ArrayBuffer.isView(x) && !(x instanceof DataView))) notDetached(x, fn, name);
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  throw invalid(`${fn}: ${name} must be a Uint8Array, ArrayBuffer or Buffer, got ${describe(x)}`);
}

export function toShape(shape, fn) {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d))) {
    throw invalid(`${fn}: shape must be an array of integers (numbers), got ${Array.isArray(shape) ? show(shape) : describe(shape)}`);
  }
  return shape;
}

export function toNumber(x, fn, name) {
  if (typeof x !== 'number') throw invalid(`${fn}: ${name} must be a number, got ${describe(x)}`);
  return x;
}

/** A positive integer that fits the core's 32-bit sizes (a shape, a width, a batch). */
export function toCount(x, fn, name, max = MAX_ELEMENTS) {
  if (!Number.isSafeInteger(x) || x <= 0) throw invalid(`${fn}: ${name} must be a positive integer, got ${typeof x === 'number' ? x : describe(x)}`);
  if (x > max) throw new TilelliError('OVERFLOW', `${fn}: ${name} is ${x}, past the limit of ${max}`, { status: STATUS.OVERFLOW });
  return x;
}

export function options(o, fn) {
  if (o === undefined) return {};
  if (o === null || typeof o !== 'object') throw invalid(`${fn}: options must be an object`);
  return o;
}

export function firstNonFinite(w, name = 'w') {
  for (let i = 0; i < w.length; i++) if (!Number.isFinite(w[i])) return `${name}[${i}] is ${w[i]}`;
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
  if (tagOf(x) === Ctor.name) {
    notDetached(x, fn, name);
    return x;
  }
  if (Array.isArray(x)) {
    const out = new Ctor(x.length);
    for (let i = 0; i < x.length; i++) {
      out[i] = x[i];
      if (typeof x[i] !== 'number' || out[i] !== x[i]) {
        throw invalid(`${fn}: ${name}[${i}] is ${typeof x[i] === 'number' ? x[i] : describe(x[i])}, not a valid ${Ctor.name} value`);
      }
    }
    return out;
  }
  throw invalid(`${fn}: ${name} must be a ${Ctor.name} or an array of integers, got ${describe(x)}`);
}

/** A name from a table of allowed names (e.g. a generated enum table): its value. */
export function pick(table, value, fn, what) {
  if (typeof value !== 'string' || !Object.hasOwn(table, value)) {
    throw invalid(`${fn}: ${what} must be one of ${Object.keys(table).join(', ')}, got ${show(value)}`);
  }
  return table[value];
}

/** fetch(url) for a download: the URL resolved against the page (if any), a non-2xx answer a TilelliError. */
export async function fetchOk(url, signal, fn) {
  const where = url instanceof URL ? url : new URL(String(url), globalThis.location?.href);
  const response = await fetch(where, { signal });
  if (!response.ok) throw new TilelliError('INVALID_ARGUMENT', `${fn}: fetching ${where} gave HTTP ${response.status}`, { status: STATUS.ARGUMENT });
  return { response, where };
}

/** A response's Content-Length when it is the body's length (no Content-Encoding), else undefined. */
export function declaredLength(response) {
  const length = Number(response.headers.get('content-length'));
  return Number.isSafeInteger(length) && length > 0 && !response.headers.get('content-encoding') ? length : undefined;
}
