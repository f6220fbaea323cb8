// core.js — instantiate a tilelli wasm module and wrap its exports in the typed API.
//
// This file knows nothing about where the wasm bytes come from (see index.js): it takes a
// compiled WebAssembly.Module. It only marshals: every computation, and every validation
// that the C core can do, happens in C; JS adds type checks of its arguments and the detail
// in error messages (which element is NaN, which dimension is wrong).

import { DEADZONE_FIELDS, MAX_ELEMENTS, STATUS } from './constants.js';
import { bindClass, toF32, toShape, toNumber, explainer } from './runtime.js';
import { baseApi, instantiateWith } from './instance.js';
import { PackedMatrix, packingApi } from './matrix.js';
import { Model, Safetensors, packCheckpoint, packModel } from './model.js';
import { Fit, Network } from './train.js';
import { LanguageModel } from './lm.js';
import { startThreads } from './threads.js';

/**
 * Instantiate `module` (a WebAssembly.Module built from dist/tilelli-*.wasm) with the whole API.
 * @param {WebAssembly.Module} module
 * @param {{ maxMemory?: number, threads?: number }} [options] maxMemory: the wasm memory's maximum
 * in bytes; threads: how many to run when the module is a threaded build (the caller's included)
 */
export function instantiate(module, options = {}) {
  return instantiateWith(module, options, createApi, startThreads);
}

function createApi(rt, build, threads) {
  const x = rt.x;

  /** Reject lengths past the core's limit before trying to allocate for them. */
  function checkLength(w, fn) {
    if (w.length > MAX_ELEMENTS) rt.check(STATUS.OVERFLOW, fn, explainer(w));
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
      const rows = rt.u32(rcp);
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

  // The module-level classes, bound to this instance (their statics and instances use rt).
  const classes = rt.classes;
  for (const C of [PackedMatrix, Model, Safetensors, Network, Fit, LanguageModel]) classes[C.label] = bindClass(C, rt); // labels survive minifiers
  const api = {
    ...baseApi(rt, build, threads),
    ...packingApi(rt),
    /** Checkpoints, the packed model file and the model runtime (see js/model.js). */
    Safetensors: classes.Safetensors,
    Model: classes.Model,
    packModel: (spec) => packModel(rt, spec),
    packCheckpoint: (checkpoint, arch, opts) => packCheckpoint(rt, checkpoint, arch, opts),
    /** Transformers with ternary projections: load, logits, generate (see js/lm.js). */
    LanguageModel: classes.LanguageModel,
    /** STE training of ternary MLPs (see js/train.js). */
    Network: classes.Network,
    /** Packed ternary matrices owning wasm memory (see js/matrix.js). */
    PackedMatrix: classes.PackedMatrix,

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
          if (s === STATUS.ALPHA) {
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
          if (s === STATUS.BAND) rt.check(s, fn, () => `band is ${band}`);
          return s;
        },
        ([, sp]) => {
          const d = rt.view(Float64Array, sp, DEADZONE_FIELDS.length);
          return Object.fromEntries(DEADZONE_FIELDS.map((name, i) => [name, d[i]]));
        });
    },
  };
  return api;
}
