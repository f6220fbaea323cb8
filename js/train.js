// train.js — straight-through-estimator training of ternary MLPs (src/train.c) from JS.
//
//   const net = tl.Network.create({ widths: [784, 256, 256, 10], quantizer: 'per_tensor' });
//   net.setOptimizer({ type: 'adam', lr: 2e-3 }); net.setSchedule({ type: 'cosine', totalSteps });
//   const loss = net.trainStep(x, { labels });     // one mini-batch
//   net.fit({ x, labels }, { epochs, batchSize, seed, onStep })   // epochs of shuffled batches
//   net.toModel({ format: 'i2' })                  // the packed model file of the trained net
//
// The worker protocol (js/worker.js) drives the same Network inside a Web Worker or a Node
// worker_thread.

import { TilelliError } from './errors.js';
import { toF32 } from './runtime.js';

const QUANTIZERS = { none: 0, per_tensor: 1, per_row: 2, lsq: 3, lsq_paper: 4 };
const ACTIVATIONS = { none: 0, relu: 1, gelu: 2, silu: 3 };
const LOSSES = { cross_entropy: 1, mse: 2 };
const OPTIMIZERS = { adam: 1, adamw: 2, sgd: 3 };
const SCHEDULES = { constant: 0, cosine: 1 };
const disposeSymbol = Symbol.dispose ?? Symbol.for('Symbol.dispose');

function pick(table, value, fn, what) {
  if (!Object.hasOwn(table, value)) {
    throw new TilelliError('INVALID_ARGUMENT', `${fn}: ${what} must be one of ${Object.keys(table).join(', ')}, got ${JSON.stringify(value)}`);
  }
  return table[value];
}

/** A seeded xorshift32 stream: the shuffling of fit() (and of the training worker). */
export function shuffler(seed) {
  let s = (seed >>> 0) || 0x9e3779b9;
  const next = () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
  return (order) => {
    for (let i = order.length - 1; i > 0; i--) {
      const j = next() % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order;
  };
}

export function trainApi(rt, PackedMatrix, packModel) {
  const x = rt.x;
  const registry = typeof FinalizationRegistry === 'function' ? new FinalizationRegistry((p) => x.tl_net_free(p)) : undefined;

  class Network {
    #p;

    /** @internal use Network.create */
    constructor(ptr, config) {
      this.#p = ptr;
      this.config = config;
      this.widths = config.widths.slice();
      registry?.register(this, ptr, this);
    }

    /**
     * A new network: widths [in, hidden..., out], activation between layers, the quantizer of
     * every layer, a seed for PyTorch-style initialization.
     */
    static create(options = {}) {
      const fn = 'Network.create';
      const { widths, activation = 'relu', quantizer = 'per_tensor', seed = 0 } = options;
      if (!Array.isArray(widths) || widths.length < 2 || !widths.every((w) => Number.isSafeInteger(w) && w > 0)) {
        throw new TilelliError('INVALID_ARGUMENT', `${fn}: widths must be [inputs, ..., outputs] of positive integers, got ${JSON.stringify(widths)}`);
      }
      const act = pick(ACTIVATIONS, activation, fn, 'activation'), quant = pick(QUANTIZERS, quantizer, fn, 'quantizer');
      if (!Number.isSafeInteger(seed) || seed < 0) throw new TilelliError('INVALID_ARGUMENT', `${fn}: seed must be a non-negative integer`);
      const ptr = rt.withBlock(fn, [widths.length * 4, 4], ([wp, pp]) => {
        rt.view(Uint32Array, wp, widths.length).set(widths);
        rt.check(x.tl_net_create(widths.length - 1, wp, act, quant, BigInt(seed), pp), fn);
        return rt.view(Uint32Array, pp, 1)[0];
      });
      return new Network(ptr, { widths: widths.slice(), activation, quantizer, seed });
    }

    #live(fn) {
      if (this.#p === 0) throw new TilelliError('FREED', `Network.${fn}: the network was freed`, { status: -14 });
      return this.#p;
    }

    get layerCount() { return this.widths.length - 1; }
    get steps() { return x.tl_net_steps(this.#live('steps')) >>> 0; }
    /** The learning rate of the next step (after warmup and schedule). */
    get lr() { return x.tl_net_lr(this.#live('lr')); }
    get freed() { return this.#p === 0; }

    setLoss(loss) {
      rt.check(x.tl_net_set_loss(this.#live('setLoss'), pick(LOSSES, loss, 'Network.setLoss', 'loss')), 'Network.setLoss');
      this.config.loss = loss;
    }

    /** { type: 'adam' | 'adamw' | 'sgd', lr, beta1, beta2, eps, weightDecay, momentum }; resets the optimizer state. */
    setOptimizer(o = {}) {
      const fn = 'Network.setOptimizer';
      const { type = 'adam', lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, momentum = 0 } = o;
      const t = pick(OPTIMIZERS, type, fn, 'type');
      for (const [k, v] of Object.entries({ lr, beta1, beta2, eps, weightDecay, momentum })) {
        if (typeof v !== 'number') throw new TilelliError('INVALID_ARGUMENT', `${fn}: ${k} must be a number`);
      }
      rt.check(x.tl_net_set_optimizer(this.#live('setOptimizer'), t, lr, beta1, beta2, eps, weightDecay, momentum), fn,
        () => 'lr, eps and weightDecay must be finite and >= 0; beta1, beta2 and momentum in [0, 1)');
      this.config.optimizer = { type, lr, beta1, beta2, eps, weightDecay, momentum };
    }

    /** { type: 'constant' | 'cosine', warmupSteps, totalSteps }. */
    setSchedule(s = {}) {
      const fn = 'Network.setSchedule';
      const { type = 'constant', warmupSteps = 0, totalSteps = 0 } = s;
      rt.check(x.tl_net_set_schedule(this.#live('setSchedule'), pick(SCHEDULES, type, fn, 'type'), warmupSteps, totalSteps), fn,
        () => 'cosine needs totalSteps > warmupSteps');
      this.config.schedule = { type, warmupSteps, totalSteps };
    }

    /** Tequila's deadzone bias with this lambda (0 turns it off). */
    setTequila(lambda) {
      rt.check(x.tl_net_set_tequila(this.#live('setTequila'), lambda), 'Network.setTequila',
        () => 'lambda must be finite and >= 0, and the quantizer ternary');
      this.config.tequila = lambda;
    }

    #shape(k, fn) {
      if (!Number.isSafeInteger(k) || k < 0 || k >= this.layerCount) {
        throw new TilelliError('INVALID_ARGUMENT', `Network.${fn}: layer ${k} is not in 0..${this.layerCount - 1}`);
      }
      return [this.widths[k + 1], this.widths[k]];
    }

    #read(fn, k, getter) {
      const p = this.#live(fn);
      const [out, inn] = this.#shape(k, fn);
      return rt.withBlock(`Network.${fn}`, [out * inn * 4, out * 4, 4], ([wp, bp, ap]) => {
        rt.check(getter(p, k, wp, bp, ap), `Network.${fn}`);
        return { weight: rt.view(Float32Array, wp, out * inn).slice(), bias: rt.view(Float32Array, bp, out).slice(), alpha: rt.view(Float32Array, ap, 1)[0] };
      });
    }

    /** Layer k's float32 shadow weights [out x in], bias and (LSQ) scale. */
    getLayer(k) { return this.#read('getLayer', k, x.tl_net_get_layer); }
    /** Layer k's gradients from the last batch. */
    getGrads(k) { return this.#read('getGrads', k, x.tl_net_get_grads); }

    setLayer(k, { weight, bias, alpha = 1 }) {
      const fn = 'Network.setLayer';
      const p = this.#live('setLayer');
      const [out, inn] = this.#shape(k, 'setLayer');
      const w = toF32(weight, fn, 'weight'), b = toF32(bias, fn, 'bias');
      if (w.length !== out * inn || b.length !== out) {
        throw new TilelliError('SIZE_MISMATCH', `${fn}: layer ${k} takes weight ${out * inn} and bias ${out} values, got ${w.length} and ${b.length}`);
      }
      rt.withBlock(fn, [w.length * 4, b.length * 4], ([wp, bp]) => {
        rt.view(Float32Array, wp, w.length).set(w);
        rt.view(Float32Array, bp, b.length).set(b);
        rt.check(x.tl_net_set_layer(p, k, wp, bp, alpha), fn);
      });
    }

    /** Run fn(xp, n, yp(labels), tp(targets)) on a batch copied into wasm memory. */
    #batch(fn, input, targets, body) {
      const p = this.#live(fn);
      const v = toF32(input, `Network.${fn}`, 'x');
      const inn = this.widths[0], out = this.widths[this.widths.length - 1];
      if (v.length === 0 || v.length % inn) {
        throw new TilelliError('SIZE_MISMATCH', `Network.${fn}: x has ${v.length} values, not a positive multiple of ${inn}`);
      }
      const n = v.length / inn;
      const labels = targets?.labels, tg = targets?.targets === undefined ? undefined : toF32(targets.targets, `Network.${fn}`, 'targets');
      if (labels !== undefined && labels.length !== n) throw new TilelliError('SIZE_MISMATCH', `Network.${fn}: ${n} inputs but ${labels.length} labels`);
      if (tg !== undefined && tg.length !== n * out) throw new TilelliError('SIZE_MISMATCH', `Network.${fn}: ${n} inputs need ${n * out} targets, got ${tg.length}`);
      return rt.withBlock(`Network.${fn}`, [v.length * 4, n * 4, (tg?.length ?? 0) * 4, n * out * 4 + 4], ([xp, lp, tp, op]) => {
        rt.view(Float32Array, xp, v.length).set(v);
        if (labels !== undefined) {
          const l = rt.view(Uint32Array, lp, n);
          for (let i = 0; i < n; i++) l[i] = labels[i];
        }
        if (tg !== undefined) rt.view(Float32Array, tp, tg.length).set(tg);
        return body(p, xp, n, labels !== undefined ? lp : 0, tg !== undefined ? tp : 0, op);
      });
    }

    /** Loss and gradients of a batch, no step. targets: { labels } (cross-entropy) or { targets } (MSE). */
    gradients(input, targets) {
      return this.#batch('gradients', input, targets, (p, xp, n, lp, tp, op) => {
        rt.check(x.tl_net_gradients(p, xp, n, lp, tp, op), 'Network.gradients');
        return rt.view(Float32Array, op, 1)[0];
      });
    }

    /** One optimizer step on a batch; returns its loss. NON_FINITE changes nothing. */
    trainStep(input, targets) {
      return this.#batch('trainStep', input, targets, (p, xp, n, lp, tp, op) => {
        rt.check(x.tl_net_train_step(p, xp, n, lp, tp, op), 'Network.trainStep',
          (code) => (code === 'NON_FINITE' ? 'the loss or a gradient is not finite: this step was not applied' : undefined));
        return rt.view(Float32Array, op, 1)[0];
      });
    }

    /** Outputs (logits) of the ternarized network. */
    forward(input) {
      return this.#batch('forward', input, undefined, (p, xp, n, _lp, _tp, op) => {
        const out = this.widths[this.widths.length - 1];
        rt.check(x.tl_net_forward(p, xp, n, op), 'Network.forward');
        return rt.view(Float32Array, op, n * out).slice();
      });
    }

    /** Accuracy (and mean cross-entropy) on labelled data, in batches. */
    evaluate({ x: data, labels }, { batchSize = 256 } = {}) {
      const inn = this.widths[0], out = this.widths[this.widths.length - 1];
      const v = toF32(data, 'Network.evaluate', 'x');
      const n = v.length / inn;
      let correct = 0, loss = 0;
      for (let s = 0; s < n; s += batchSize) {
        const m = Math.min(batchSize, n - s);
        const logits = this.forward(v.subarray(s * inn, (s + m) * inn));
        for (let i = 0; i < m; i++) {
          const row = logits.subarray(i * out, (i + 1) * out);
          let best = 0, mx = row[0];
          for (let c = 1; c < out; c++) if (row[c] > row[best]) best = c;
          for (let c = 1; c < out; c++) mx = Math.max(mx, row[c]);
          let sum = 0;
          for (let c = 0; c < out; c++) sum += Math.exp(row[c] - mx);
          loss += mx + Math.log(sum) - row[labels[s + i]];
          correct += best === labels[s + i];
        }
      }
      return { accuracy: correct / n, loss: loss / n, count: n };
    }

    /** The trits of layer k as the forward uses them (Int8Array), and its scales per row. */
    trits(k) {
      const { weight, alpha } = this.getLayer(k);
      const [out, inn] = this.#shape(k, 'trits');
      const q = this.config.quantizer;
      if (q === 'per_row') {
        const { trits, alphas } = api.ternarySignsPerRow(weight, [out, inn]);
        return { trits, scales: alphas };
      }
      if (q === 'lsq' || q === 'lsq_paper') {
        const a = Math.max(alpha, 1e-5);
        const values = api.ternarizeLsq(weight, a);
        return { trits: Int8Array.from(values, (e) => Math.sign(e)), scales: new Float32Array(out).fill(a) };
      }
      const { trits, alpha: a } = api.ternarySigns(weight);
      return { trits, scales: new Float32Array(out).fill(a) };
    }

    /** Per-layer deadzone statistics of the shadow weights (the reference's deadzone_stats). */
    deadzoneStats(band = 0.1) {
      return Array.from({ length: this.layerCount }, (_, k) => api.deadzoneStats(this.getLayer(k).weight, band));
    }

    /**
     * Epochs of seeded, shuffled mini-batches. onStep({ epoch, step, loss }) after each step
     * may return false to stop. Returns the mean loss of each epoch.
     */
    fit({ x: data, labels, targets }, { epochs = 1, batchSize = 64, seed = 0, onStep } = {}) {
      const inn = this.widths[0], out = this.widths[this.widths.length - 1];
      const v = toF32(data, 'Network.fit', 'x');
      const n = v.length / inn;
      const shuffle = shuffler(seed);
      const bx = new Float32Array(batchSize * inn), bl = new Uint32Array(batchSize), bt = targets ? new Float32Array(batchSize * out) : undefined;
      const losses = [];
      for (let e = 0; e < epochs; e++) {
        const order = shuffle(Array.from({ length: n }, (_, i) => i));
        let sum = 0, steps = 0;
        for (let s = 0; s < n; s += batchSize) {
          const m = Math.min(batchSize, n - s);
          for (let i = 0; i < m; i++) {
            const j = order[s + i];
            bx.set(v.subarray(j * inn, (j + 1) * inn), i * inn);
            if (labels) bl[i] = labels[j];
            if (bt) bt.set(targets.subarray(j * out, (j + 1) * out), i * out);
          }
          const loss = this.trainStep(bx.subarray(0, m * inn), labels ? { labels: bl.subarray(0, m) } : { targets: bt.subarray(0, m * out) });
          sum += loss, steps++;
          if (onStep?.({ epoch: e, step: this.steps, loss }) === false) {
            losses.push(sum / steps);
            return losses;
          }
        }
        losses.push(sum / steps);
      }
      return losses;
    }

    /** The packed model file of this network (ternary quantizers only). */
    toModel({ format = 'i2', metadata } = {}) {
      if (this.config.quantizer === 'none') {
        throw new TilelliError('INVALID_ARGUMENT', 'Network.toModel: a float32 network (quantizer none) has no ternary weights to pack');
      }
      const layers = [], made = [];
      try {
        for (let k = 0; k < this.layerCount; k++) {
          const [out, inn] = this.#shape(k, 'toModel');
          const { trits, scales } = this.trits(k);
          const m = PackedMatrix.fromTrits(trits, [out, inn], { format, scales });
          made.push(m);
          layers.push({ type: 'linear', matrix: m, bias: this.getLayer(k).bias });
          if (k + 1 < this.layerCount && this.config.activation !== 'none') layers.push({ type: this.config.activation });
        }
        return packModel({ input: this.widths[0], layers, metadata: { quantizer: this.config.quantizer, steps: String(this.steps), ...(metadata ?? {}) } });
      } finally {
        for (const m of made) m.free();
      }
    }

    free() {
      if (this.#p === 0) return;
      registry?.unregister(this);
      x.tl_net_free(this.#p);
      this.#p = 0;
    }

    [disposeSymbol]() { this.free(); }
  }

  let api; // the instance's API, for the quantizers (set by core.js after it is built)
  return { Network, bind(instanceApi) { api = instanceApi; } };
}

