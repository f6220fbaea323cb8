// core.js — instantiate a tilelli wasm module and wrap its exports in the typed API.
//
// This file knows nothing about where the wasm bytes come from (see index.js): it takes a
// compiled WebAssembly.Module. It only marshals: every computation, and every validation
// that the C core can do, happens in C; JS adds type checks of its arguments and the detail
// in error messages (which element is NaN, which dimension is wrong).

import { TilelliError } from './errors.js';

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the wasm32 limit
const INITIAL_PAGES = 16; // the module's declared minimum (-sINITIAL_MEMORY=1MB)

/** Names of the float32-typed views we accept by converting (plain arrays are converted too). */
const NUMERIC_VIEWS = new Set([
  'Float64Array', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array',
  'Int32Array', 'Uint32Array',
]);

function describe(x) {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'object') return x.constructor?.name ?? 'an object';
  return typeof x;
}

function tagOf(x) {
  return Object.prototype.toString.call(x).slice(8, -1);
}

/**
 * Instantiate `module` (a WebAssembly.Module built from dist/tilelli-*.wasm).
 * @param {WebAssembly.Module} module
 * @param {{ maxMemory?: number }} [options] maxMemory: the wasm memory's maximum in bytes
 */
export async function instantiate(module, options = {}) {
  const maxPages = pagesFor(options.maxMemory);
  const memory = new WebAssembly.Memory({ initial: Math.min(INITIAL_PAGES, maxPages), maximum: maxPages });
  const imports = {
    env: {
      memory,
      // Views are made fresh for every call, so a grown (detached) buffer needs no bookkeeping.
      emscripten_notify_memory_growth() {},
    },
  };
  const instance = await WebAssembly.instantiate(module, imports);
  instance.exports._initialize();
  return createApi(new Runtime(instance.exports, memory, maxPages));
}

function pagesFor(maxMemory) {
  if (maxMemory === undefined) return MAX_PAGES;
  if (typeof maxMemory !== 'number' || !Number.isFinite(maxMemory) || maxMemory < INITIAL_PAGES * PAGE) {
    throw new TilelliError('INVALID_ARGUMENT',
      `init: maxMemory must be a number of bytes >= ${INITIAL_PAGES * PAGE}, got ${maxMemory}`);
  }
  return Math.min(MAX_PAGES, Math.floor(maxMemory / PAGE));
}

/** The instance, its memory, and the helpers every wrapper uses. */
class Runtime {
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
function toF32(w, fn, name = 'w') {
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

function toShape(shape, fn) {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d))) {
    throw new TilelliError('INVALID_ARGUMENT',
      `${fn}: shape must be an array of integers, got ${Array.isArray(shape) ? JSON.stringify(shape) : describe(shape)}`);
  }
  return shape;
}

function toNumber(x, fn, name) {
  if (typeof x !== 'number') {
    throw new TilelliError('INVALID_ARGUMENT', `${fn}: ${name} must be a number, got ${describe(x)}`);
  }
  return x;
}

function firstNonFinite(w) {
  for (let i = 0; i < w.length; i++) if (!Number.isFinite(w[i])) return `w[${i}] is ${w[i]}`;
  return undefined;
}

/** The detail for an error code raised on tensor w (and shape, when given). */
function explainer(w, shape) {
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

function createApi(rt) {
  const x = rt.x;

  /** Reject lengths past the core's limit before trying to allocate for them. */
  function checkLength(w, fn) {
    if (w.length > rt.maxElements) rt.check(-6, fn, explainer(w));
  }

  /**
   * Run a per-tensor operation: copy w in, let `call` use the pointers, let `read` copy results out.
   * sizes: extra buffers after w, in bytes.
   */
  function perTensor(fn, w, sizes, call, read) {
    checkLength(w, fn);
    const { base, ptrs } = rt.allocBlock(fn, [w.length * 4, ...sizes]);
    try {
      new Float32Array(rt.memory.buffer, ptrs[0], w.length).set(w);
      rt.check(call(ptrs), fn, explainer(w));
      return read(ptrs);
    } finally {
      rt.free(base);
    }
  }

  /**
   * Run a per-row operation: the shape is validated by the core (tl_shape_rows_cols) before
   * the output buffers, whose sizes depend on it, are allocated.
   */
  function perRow(fn, w, shape, outBytesPerElement, call, read) {
    toShape(shape, fn);
    checkLength(w, fn);
    const explain = explainer(w, shape);
    const head = rt.allocBlock(fn, [w.length * 4, Math.max(shape.length, 1) * 8, 8]);
    try {
      const [wp, sp, rcp] = head.ptrs;
      new Float32Array(rt.memory.buffer, wp, w.length).set(w);
      new BigInt64Array(rt.memory.buffer, sp, shape.length).set(shape.map(BigInt));
      rt.check(x.tl_shape_rows_cols(sp, shape.length, w.length, rcp, rcp + 4), fn, explain);
      const rows = new Uint32Array(rt.memory.buffer, rcp, 1)[0];
      const out = rt.allocBlock(fn, [w.length * outBytesPerElement, rows * 4]);
      try {
        rt.check(call(wp, sp, out.ptrs), fn, explain);
        return read(out.ptrs, rows);
      } finally {
        rt.free(out.base);
      }
    } finally {
      rt.free(head.base);
    }
  }

  const f32 = (ptr, n) => new Float32Array(rt.memory.buffer, ptr, n).slice();
  const i8 = (ptr, n) => new Int8Array(rt.memory.buffer, ptr, n).slice();
  const scalarF32 = (ptr) => new Float32Array(rt.memory.buffer, ptr, 1)[0];

  return {
    /** True when the SIMD128 build is running. */
    simd: rt.simd,
    /** Library version, "MAJOR.MINOR.PATCH". */
    version: ((v) => `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`)(x.tl_version()),

    absmeanScale(w) {
      const fn = 'absmeanScale';
      w = toF32(w, fn);
      return perTensor(fn, w, [4], ([wp, ap]) => x.tl_absmean_scale(wp, w.length, ap), ([, ap]) => scalarF32(ap));
    },

    absmeanScalePerRow(w, shape) {
      const fn = 'absmeanScalePerRow';
      w = toF32(w, fn);
      return perRow(fn, w, shape, 0,
        (wp, sp, [, ap]) => x.tl_absmean_scale_per_row(wp, w.length, sp, shape.length, ap),
        ([, ap], rows) => f32(ap, rows));
    },

    ternaryValues(w) {
      const fn = 'ternaryValues';
      w = toF32(w, fn);
      return perTensor(fn, w, [w.length * 4],
        ([wp, op]) => x.tl_ternary_values(wp, w.length, op, 0), ([, op]) => f32(op, w.length));
    },

    ternaryValuesPerRow(w, shape) {
      const fn = 'ternaryValuesPerRow';
      w = toF32(w, fn);
      return perRow(fn, w, shape, 4,
        (wp, sp, [op]) => x.tl_ternary_values_per_row(wp, w.length, sp, shape.length, op, 0),
        ([op]) => f32(op, w.length));
    },

    ternarySigns(w) {
      const fn = 'ternarySigns';
      w = toF32(w, fn);
      return perTensor(fn, w, [w.length, 4],
        ([wp, tp, ap]) => x.tl_ternary_signs(wp, w.length, tp, ap),
        ([, tp, ap]) => ({ trits: i8(tp, w.length), alpha: scalarF32(ap) }));
    },

    ternarySignsPerRow(w, shape) {
      const fn = 'ternarySignsPerRow';
      w = toF32(w, fn);
      return perRow(fn, w, shape, 1,
        (wp, sp, [tp, ap]) => x.tl_ternary_signs_per_row(wp, w.length, sp, shape.length, tp, ap),
        ([tp, ap], rows) => ({ trits: i8(tp, w.length), alphas: f32(ap, rows) }));
    },

    ternarizeLsq(w, alpha) {
      const fn = 'ternarizeLsq';
      w = toF32(w, fn);
      toNumber(alpha, fn, 'alpha');
      const a32 = Math.fround(alpha);
      return perTensor(fn, w, [w.length * 4],
        ([wp, op]) => {
          const s = x.tl_ternarize_lsq(wp, w.length, a32, op, 0);
          if (s === -8) {
            rt.check(s, fn, () => (a32 !== alpha && Number.isFinite(alpha)
              ? `alpha ${alpha} is ${a32} in float32` : `alpha is ${alpha}`));
          }
          return s;
        },
        ([, op]) => f32(op, w.length));
    },

    deadzoneStats(w, band = 0.1) {
      const fn = 'deadzoneStats';
      w = toF32(w, fn);
      toNumber(band, fn, 'band');
      return perTensor(fn, w, [96],
        ([wp, sp]) => {
          const s = x.tl_deadzone_stats_compute(wp, w.length, band, sp);
          if (s === -7) rt.check(s, fn, () => `band is ${band}`);
          return s;
        },
        ([, sp]) => {
          const d = new Float64Array(rt.memory.buffer, sp, 6);
          return {
            alpha: d[0], fracNeg: d[1], fracZero: d[2], fracPos: d[3], fracBoundary: d[4], fracZeroInner: d[5],
          };
        });
    },
  };
}
