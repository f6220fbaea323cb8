// train.js — straight-through-estimator training of ternary MLPs (src/train.c) from JS.
//
//   const net = tl.Network.create({ widths: [784, 256, 256, 10], quantizer: 'per_tensor' });
//   net.setOptimizer({ type: 'adam', lr: 2e-3 }); net.setSchedule({ type: 'cosine', totalSteps });
//   const loss = net.trainStep(x, { labels });     // one mini-batch
//   net.fit({ x, labels }, { epochs, batchSize, seed, onStep })   // epochs of shuffled batches
//   net.toModel({ format: 'i2' })                  // the packed model file of the trained net
//
// The loop (shuffling, batches), the evaluation, the trits, the conversions to and from packed
// models are C's (tl_fit_*, tl_net_*): fit() here and the training worker (js/worker-entry.js)
// drive the same Fit object.

import { TilelliError } from './errors.js';
import { ACTIVATION, DEADZONE_FIELDS, LOSS, MAX_WIDTH, OPTIMIZER, QUANTIZER, SCHEDULE, STATUS } from './constants.js';
import { formatCode } from './matrix.js';
import { Owned, bytesOf, describe, invalid, options, pick, show, toCount, toF32 } from './runtime.js';


/** Class labels as a Uint32Array: integers >= 0 only (C checks them against the classes). */
export function toLabels(labels, fn, name = 'labels') {
  if (!(Array.isArray(labels) || ArrayBuffer.isView(labels))) throw invalid(`${fn}: ${name} must be an array of class indices, got ${describe(labels)}`);
  const out = new Uint32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw invalid(`${fn}: ${name}[${i}] is ${typeof v === 'number' ? v : describe(v)}, not a class index`);
    }
    out[i] = v;
  }
  return out;
}

/** The inputs of a labelled set: x of n whole vectors, and labels or targets for each. */
function checkSet(fn, set, inn, out, { needTargets = true } = {}) {
  if (!set || typeof set !== 'object') throw invalid(`${fn}: give { x, labels } (or { x, targets })`);
  const v = toF32(set.x, fn, 'x');
  if (v.length === 0 || v.length % inn) {
    throw new TilelliError('SIZE_MISMATCH', `${fn}: x has ${v.length} values, not a positive multiple of ${inn}`, { status: STATUS.SIZE });
  }
  const n = v.length / inn;
  const labels = set.labels === undefined ? undefined : toLabels(set.labels, fn);
  const targets = set.targets === undefined ? undefined : toF32(set.targets, fn, 'targets');
  if (needTargets && !labels && !targets) throw invalid(`${fn}: give labels (cross-entropy) or targets (MSE)`);
  if (labels && labels.length !== n) throw new TilelliError('SIZE_MISMATCH', `${fn}: ${n} inputs but ${labels.length} labels`, { status: STATUS.SIZE });
  if (targets && targets.length !== n * out) throw new TilelliError('SIZE_MISMATCH', `${fn}: ${n} inputs need ${n * out} targets, got ${targets.length}`, { status: STATUS.SIZE });
  return { x: v, n, labels, targets };
}

/** A labelled data set copied into wasm memory once (for the C loop); free() releases it. */
class DataSet {
  constructor(rt, fn, { x, n, labels, targets }) {
    const { base, ptrs } = rt.allocBlock(fn, [x.length * 4, labels ? n * 4 : 0, targets ? targets.length * 4 : 0]);
    rt.view(Float32Array, ptrs[0], x.length).set(x);
    if (labels) rt.view(Uint32Array, ptrs[1], n).set(labels);
    if (targets) rt.view(Float32Array, ptrs[2], targets.length).set(targets);
    Object.assign(this, { rt, base, n, xp: ptrs[0], lp: labels ? ptrs[1] : 0, tp: targets ? ptrs[2] : 0 });
  }

  free() { if (this.base) this.rt.free(this.base); this.base = 0; }
}

/**
 * The training loop over one data set: fit() and the worker step it the same way. step() runs
 * one mini-batch; epoch and position say where the loop is.
 */
export class Fit extends Owned {
  static label = 'Fit';
  static noun = 'training loop';
  static release(rt, [f, data]) { rt.x.tl_fit_free(f); data.free(); }

  constructor(ptr, data, net) {
    super(ptr, data);
    this.net = net;
    this.count = data.n;
  }

  static create(net, set, opts) {
    const fn = 'Network.fit', rt = this.rt;
    const { batchSize = 64, seed = 0 } = options(opts, fn);
    toCount(batchSize, fn, 'batchSize');
    if (!Number.isSafeInteger(seed) || seed < 0) throw invalid(`${fn}: seed must be a non-negative integer, got ${seed}`);
    const p = net.live('fit');
    const data = new DataSet(rt, fn, checkSet(fn, set, net.widths[0], net.widths[net.widths.length - 1]));
    try {
      return new this(rt.make(fn, (pp) => rt.x.tl_fit_new(p, data.xp, data.n, data.lp, data.tp, batchSize, BigInt(seed), pp)), data, net);
    } catch (e) {
      data.free();
      throw e;
    }
  }

  /** One optimizer step on the next mini-batch; its loss. NON_FINITE changes nothing. */
  step() {
    const f = this.live('step'), rt = this.rt;
    return rt.withBlock('Network.fit', [4], ([lp]) => {
      rt.check(rt.x.tl_fit_step(f, lp), 'Network.fit',
        (code) => (code === 'NON_FINITE' ? 'the loss or a gradient is not finite: this step was not applied' : undefined));
      return rt.view(Float32Array, lp, 1)[0];
    });
  }

  get epoch() { return this.rt.x.tl_fit_epoch(this.live('epoch')) >>> 0; }
  get position() { return this.rt.x.tl_fit_position(this.live('position')); }

  /** { accuracy, loss, count } of the current weights on the last mini-batch, or on the whole set. */
  evaluate(opts) {
    const f = this.live('evaluate'), rt = this.rt;
    const { whole = false } = options(opts, 'Fit.evaluate');
    return rt.withBlock('Fit.evaluate', [16], ([p]) => {
      rt.check(rt.x.tl_fit_evaluate(f, whole ? 1 : 0, p, p + 8), 'Fit.evaluate');
      const [accuracy, loss] = rt.view(Float64Array, p, 2);
      return { accuracy, loss, count: whole ? this.count : undefined };
    });
  }
}

export class Network extends Owned {
  static label = 'Network';
  static noun = 'network';
  static release(rt, [p]) { rt.x.tl_net_free(p); }

  /** @internal use Network.create */
  constructor(ptr, config) {
    super(ptr);
    const rt = this.rt, n = rt.x.tl_net_layer_count(ptr);
    this.widths = rt.withBlock('Network', [(n + 1) * 4], ([wp]) => {
      rt.check(rt.x.tl_net_widths(ptr, wp, n + 1), 'Network');
      return Array.from(rt.view(Uint32Array, wp, n + 1));
    });
    this.config = { ...config, widths: this.widths.slice() };
  }

  /**
   * A new network: widths [in, hidden..., out], activation between layers, the quantizer of
   * every layer, a seed for PyTorch-style initialization.
   */
  static create(opts) {
    const fn = 'Network.create', rt = this.rt;
    const { widths, activation = 'relu', quantizer = 'per_tensor', seed = 0 } = options(opts, fn);
    if (!Array.isArray(widths) || widths.length < 2 || widths.length > 65) {
      throw invalid(`${fn}: widths must be [inputs, ..., outputs] (2 to 65 values), got ${Array.isArray(widths) ? show(widths) : describe(widths)}`);
    }
    widths.forEach((w, i) => toCount(w, fn, `widths[${i}]`, MAX_WIDTH));
    const act = pick(ACTIVATION, activation, fn, 'activation'), quant = pick(QUANTIZER, quantizer, fn, 'quantizer');
    if (!Number.isSafeInteger(seed) || seed < 0) throw invalid(`${fn}: seed must be a non-negative integer, got ${seed}`);
    const ptr = rt.withBlock(fn, [widths.length * 4], ([wp]) => {
      rt.view(Uint32Array, wp, widths.length).set(widths);
      return rt.make(fn, (pp) => rt.x.tl_net_create(widths.length - 1, wp, act, quant, BigInt(seed), pp));
    });
    return new this(ptr, { activation, quantizer, seed });
  }

  /**
   * A network that computes what a packed model file computes (linear layers with one
   * activation between them), ready to fine-tune: options.quantizer (default: the one the file
   * records), options.seed.
   */
  static fromModel(bytes, opts) {
    const fn = 'Network.fromModel', rt = this.rt;
    const { quantizer, seed = 0 } = options(opts, fn);
    const model = rt.classes.Model.load(bytesOf(bytes, fn));
    try {
      const recorded = model.layers.find((L) => L.quantizer)?.quantizer ?? model.metadata.quantizer;
      const q = quantizer ?? (Object.hasOwn(QUANTIZER, recorded ?? '') && recorded !== 'none' ? recorded : 'per_tensor');
      const quant = pick(QUANTIZER, q, fn, 'quantizer');
      const ptr = rt.make(fn, (pp) => rt.x.tl_net_from_model(model.live(fn), quant, BigInt(seed), pp));
      const acts = model.layers.filter((L) => L.type !== 'linear').map((L) => L.type);
      return new this(ptr, { activation: acts[0] ?? 'none', quantizer: q, seed });
    } finally {
      model.free();
    }
  }

  get layerCount() { return this.widths.length - 1; }
  get steps() { return this.rt.x.tl_net_steps(this.live('steps')); }
  /** The learning rate of the next step (after warmup and schedule). */
  get lr() { return this.rt.x.tl_net_lr(this.live('lr')); }

  setLoss(loss) {
    const fn = 'Network.setLoss';
    this.rt.check(this.rt.x.tl_net_set_loss(this.live('setLoss'), pick(LOSS, loss, fn, 'loss')), fn);
    this.config.loss = loss;
  }

  /** { type: 'adam' | 'adamw' | 'sgd', lr, beta1, beta2, eps, weightDecay, momentum }; resets the optimizer state. */
  setOptimizer(o) {
    const fn = 'Network.setOptimizer';
    const { type = 'adam', lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, momentum = 0 } = options(o, fn);
    const t = pick(OPTIMIZER, type, fn, 'type');
    for (const [k, v] of Object.entries({ lr, beta1, beta2, eps, weightDecay, momentum })) {
      if (typeof v !== 'number') throw invalid(`${fn}: ${k} must be a number, got ${describe(v)}`);
    }
    this.rt.check(this.rt.x.tl_net_set_optimizer(this.live('setOptimizer'), t, lr, beta1, beta2, eps, weightDecay, momentum), fn,
      () => 'lr, eps and weightDecay must be finite and >= 0; beta1, beta2 and momentum in [0, 1)');
    this.config.optimizer = { type, lr, beta1, beta2, eps, weightDecay, momentum };
  }

  /** { type: 'constant' | 'cosine', warmupSteps, totalSteps }. */
  setSchedule(s) {
    const fn = 'Network.setSchedule';
    const { type = 'constant', warmupSteps = 0, totalSteps = 0 } = options(s, fn);
    for (const [k, v] of Object.entries({ warmupSteps, totalSteps })) {
      if (!Number.isSafeInteger(v) || v < 0 || v > 0xffffffff) throw invalid(`${fn}: ${k} must be an integer in 0..2^32 - 1, got ${typeof v === 'number' ? v : describe(v)}`);
    }
    this.rt.check(this.rt.x.tl_net_set_schedule(this.live('setSchedule'), pick(SCHEDULE, type, fn, 'type'), warmupSteps, totalSteps), fn,
      () => 'cosine needs totalSteps > warmupSteps');
    this.config.schedule = { type, warmupSteps, totalSteps };
  }

  /** Tequila's deadzone bias with this lambda (0 turns it off). */
  setTequila(lambda) {
    const fn = 'Network.setTequila';
    if (typeof lambda !== 'number') throw invalid(`${fn}: lambda must be a number, got ${describe(lambda)}`);
    this.rt.check(this.rt.x.tl_net_set_tequila(this.live('setTequila'), lambda), fn,
      () => 'lambda must be finite and >= 0, and the quantizer ternary');
    this.config.tequila = lambda;
  }

  #shape(k, fn) {
    if (!Number.isSafeInteger(k) || k < 0 || k >= this.layerCount) {
      throw invalid(`Network.${fn}: layer ${k} is not in 0..${this.layerCount - 1}`);
    }
    return [this.widths[k + 1], this.widths[k]];
  }

  #read(fn, k, getter) {
    const p = this.live(fn), rt = this.rt;
    const [out, inn] = this.#shape(k, fn);
    return rt.withBlock(`Network.${fn}`, [out * inn * 4, out * 4, 4], ([wp, bp, ap]) => {
      rt.check(getter(p, k, wp, bp, ap), `Network.${fn}`);
      return { weight: rt.view(Float32Array, wp, out * inn).slice(), bias: rt.view(Float32Array, bp, out).slice(), alpha: rt.view(Float32Array, ap, 1)[0] };
    });
  }

  /** Layer k's float32 shadow weights [out x in], bias and (LSQ) scale. */
  getLayer(k) { return this.#read('getLayer', k, this.rt.x.tl_net_get_layer); }
  /** Layer k's gradients from the last batch. */
  getGrads(k) { return this.#read('getGrads', k, this.rt.x.tl_net_get_grads); }

  setLayer(k, layer) {
    const fn = 'Network.setLayer', rt = this.rt;
    const p = this.live('setLayer');
    const [out, inn] = this.#shape(k, 'setLayer');
    const { weight, bias, alpha = 1 } = options(layer, fn);
    const w = toF32(weight, fn, 'weight'), b = toF32(bias, fn, 'bias');
    if (typeof alpha !== 'number') throw invalid(`${fn}: alpha must be a number, got ${describe(alpha)}`);
    if (w.length !== out * inn || b.length !== out) {
      throw new TilelliError('SIZE_MISMATCH', `${fn}: layer ${k} takes weight ${out * inn} and bias ${out} values, got ${w.length} and ${b.length}`, { status: STATUS.SIZE });
    }
    rt.withBlock(fn, [w.length * 4, b.length * 4], ([wp, bp]) => {
      rt.view(Float32Array, wp, w.length).set(w);
      rt.view(Float32Array, bp, b.length).set(b);
      rt.check(rt.x.tl_net_set_layer(p, k, wp, bp, alpha), fn);
    });
  }

  /** Run body(p, xp, n, lp, tp, op) on a batch copied into wasm memory. */
  #batch(fn, input, targets, body) {
    const p = this.live(fn), rt = this.rt;
    const inn = this.widths[0], out = this.widths[this.widths.length - 1];
    const set = checkSet(`Network.${fn}`, { x: input, ...(targets ?? {}) }, inn, out, { needTargets: fn !== 'forward' });
    const { x: v, n, labels, targets: tg } = set;
    return rt.withBlock(`Network.${fn}`, [v.length * 4, n * 4, (tg?.length ?? 0) * 4, n * out * 4 + 4], ([xp, lp, tp, op]) => {
      rt.view(Float32Array, xp, v.length).set(v);
      if (labels) rt.view(Uint32Array, lp, n).set(labels);
      if (tg) rt.view(Float32Array, tp, tg.length).set(tg);
      return body(p, xp, n, labels ? lp : 0, tg ? tp : 0, op);
    });
  }

  /** Loss and gradients of a batch, no step. targets: { labels } (cross-entropy) or { targets } (MSE). */
  gradients(input, targets) {
    return this.#batch('gradients', input, targets, (p, xp, n, lp, tp, op) => {
      this.rt.check(this.rt.x.tl_net_gradients(p, xp, n, lp, tp, op), 'Network.gradients');
      return this.rt.view(Float32Array, op, 1)[0];
    });
  }

  /** One optimizer step on a batch; returns its loss. NON_FINITE changes nothing. */
  trainStep(input, targets) {
    return this.#batch('trainStep', input, targets, (p, xp, n, lp, tp, op) => {
      this.rt.check(this.rt.x.tl_net_train_step(p, xp, n, lp, tp, op), 'Network.trainStep',
        (code) => (code === 'NON_FINITE' ? 'the loss or a gradient is not finite: this step was not applied' : undefined));
      return this.rt.view(Float32Array, op, 1)[0];
    });
  }

  /** Outputs (logits) of the ternarized network. */
  forward(input) {
    return this.#batch('forward', input, undefined, (p, xp, n, _lp, _tp, op) => {
      const out = this.widths[this.widths.length - 1];
      this.rt.check(this.rt.x.tl_net_forward(p, xp, n, op), 'Network.forward');
      return this.rt.view(Float32Array, op, n * out).slice();
    });
  }

  /** Accuracy and mean cross-entropy on labelled data. */
  evaluate(set) {
    const fn = 'Network.evaluate';
    if (!set || typeof set !== 'object' || set.labels === undefined) throw invalid(`${fn}: give { x, labels }`);
    return this.#batch('evaluate', set.x, { labels: set.labels }, (p, xp, n, lp, _tp, op) => {
      this.rt.check(this.rt.x.tl_net_evaluate(p, xp, n, lp, op, op + 8), fn);
      const [accuracy, loss] = this.rt.view(Float64Array, op, 2);
      return { accuracy, loss, count: n };
    });
  }

  /** The trits of layer k as the forward uses them (Int8Array), and its scales per row. */
  trits(k) {
    const fn = 'Network.trits', p = this.live('trits'), rt = this.rt;
    const [out, inn] = this.#shape(k, 'trits');
    return rt.withBlock(fn, [out * inn, out * 4], ([tp, sp]) => {
      rt.check(rt.x.tl_net_layer_trits(p, k, tp, sp), fn);
      return { trits: rt.view(Int8Array, tp, out * inn).slice(), scales: rt.view(Float32Array, sp, out).slice() };
    });
  }

  /** Per-layer deadzone statistics of the shadow weights (the reference's deadzone_stats). */
  deadzoneStats(band = 0.1) {
    const fn = 'Network.deadzoneStats', p = this.live('deadzoneStats'), rt = this.rt;
    if (typeof band !== 'number') throw invalid(`${fn}: band must be a number, got ${describe(band)}`);
    return Array.from({ length: this.layerCount }, (_, k) => rt.withBlock(fn, [96], ([sp]) => {
      rt.check(rt.x.tl_net_deadzone_stats(p, k, band, sp), fn, () => `band is ${band}`);
      const d = rt.view(Float64Array, sp, DEADZONE_FIELDS.length);
      return Object.fromEntries(DEADZONE_FIELDS.map((name, i) => [name, d[i]]));
    }));
  }

  /** The training loop over a data set (what fit() and the worker step). Free it when done. */
  loop(set, opts) { return this.rt.classes.Fit.create(this, set, opts); }

  /**
   * Epochs of seeded, shuffled mini-batches. onStep({ epoch, step, loss }) after each step
   * may return false to stop. Returns the mean loss of each epoch.
   */
  fit(set, opts) {
    const fn = 'Network.fit';
    const { epochs = 1, batchSize = 64, seed = 0, onStep } = options(opts, fn);
    toCount(epochs, fn, 'epochs');
    const loop = this.loop(set, { batchSize, seed });
    try {
      const losses = [];
      let sum = 0, steps = 0;
      while (loop.epoch < epochs) {
        const before = loop.epoch;
        const loss = loop.step();
        sum += loss, steps++;
        const ended = loop.epoch > before;
        if (ended) { losses.push(sum / steps); sum = 0; steps = 0; }
        if (onStep?.({ epoch: before, step: this.steps, loss }) === false) {
          if (!ended) losses.push(sum / steps);
          break;
        }
      }
      return losses;
    } finally {
      loop.free();
    }
  }

  /** The packed model file of this network (ternary quantizers only). */
  toModel(opts) {
    const fn = 'Network.toModel', p = this.live('toModel'), rt = this.rt;
    const { format = 'i2', metadata } = options(opts, fn);
    const f = formatCode(rt, format, fn);
    const model = new rt.classes.Model(rt.make(fn, (pp) => rt.x.tl_net_to_model(p, f, pp)));
    try {
      if (metadata !== undefined) model.addMetadata(metadata);
      return model.save();
    } finally {
      model.free();
    }
  }
}

