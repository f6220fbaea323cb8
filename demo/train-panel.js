// train-panel.js — panel 1: fine-tune the MLP on the MNIST digits in a module Web Worker
// (startTraining with the worker bundle app/train-worker.js), with live charts of loss and
// accuracy, and per layer the trit distribution and a histogram of |w/alpha| from the worker's
// shadow weights (job.weights(), throttled). Pause/Resume and Cancel. At each epoch end the
// exported model (job.export) becomes the page's current model.
import { startTraining } from 'tilelli';

import { histogram, lineChart } from './charts.js';
import { inputs } from './digits.js';

const WIDTHS = [784, 256, 256, 10];
const HIST_HI = 2.5;
const HIST_BINS = 50;
const BAND = 0.1;
const WEIGHTS_EVERY_MS = 400;

const $ = (id) => document.getElementById(id);

/**
 * What one layer's card shows: the fractions of its trits, and the histogram of |w / scale| of
 * its shadow weights with the band around 0.5, the trits and per-row scales being the ones the
 * worker's network uses (job.weights(): C's quantizer, never recomputed here).
 */
function layerStats(L) {
  const { weight: w, trits, scales, shape: [rows, cols] } = L;
  const counts = new Float64Array(HIST_BINS);
  let neg = 0, pos = 0, band = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = r * cols, end = c + cols; c < end; c++) {
      const u = Math.abs(w[c] / scales[r]);
      if (Math.abs(u - 0.5) < BAND) band++;
      counts[Math.min(HIST_BINS - 1, Math.floor((u / HIST_HI) * HIST_BINS))]++;
      if (trits[c] > 0) pos++;
      else if (trits[c] < 0) neg++;
    }
  }
  const n = rows * cols;
  return { counts, neg: neg / n, zero: (n - neg - pos) / n, pos: pos / n, band: band / n, alpha: scales.reduce((s, a) => s + a, 0) / rows };
}

/** Trit fractions of a packed model's matrices (before any training: no shadow weights). */
function modelTrits(model) {
  return model.layers.flatMap((L, i) => {
    if (!L.weights) return [];
    const { trits: t } = model.trits(i);
    let neg = 0, pos = 0;
    for (const v of t) (v > 0 ? pos++ : v < 0 ? neg++ : 0);
    return [{ neg: neg / t.length, pos: pos / t.length, zero: (t.length - neg - pos) / t.length }];
  });
}

export function trainPanel(app) {
  const { tl, data } = app;
  const ui = {
    start: $('train-start'), pause: $('train-pause'), cancel: $('train-cancel'), status: $('train-status'), bar: $('train-bar'),
    quantizer: $('quantizer'), epochs: $('epochs'), subset: $('subset'), from: $('start-from'),
    loss: $('chart-loss'), acc: $('chart-acc'), layers: $('layers'),
  };
  ui.subset.options[0].textContent = `all ${data.train.count.toLocaleString('en-US')}`;

  // One card per layer: title, trit bar, histogram, numbers.
  const cards = WIDTHS.slice(1).map((out, k) => {
    const el = document.createElement('div');
    el.className = 'layer';
    el.innerHTML = `<h4>Layer ${k + 1} <span>${WIDTHS[k]} → ${out}, ${(WIDTHS[k] * out).toLocaleString('en-US')} weights</span></h4>
      <div class="tritbar" role="img"><div class="neg"></div><div class="zero"></div><div class="pos"></div></div>
      <canvas class="chart hist" role="img" aria-label="histogram of |w/alpha| of layer ${k + 1}"></canvas>
      <p class="nums">&nbsp;</p>`;
    ui.layers.append(el);
    return { el, bar: el.querySelector('.tritbar'), hist: el.querySelector('canvas'), nums: el.querySelector('.nums') };
  });

  const state = {
    state: 'idle', events: 0, step: 0, totalSteps: 0, epochEnds: 0, testAccuracy: [], weightsUpdates: 0,
    lossPoints: 0, exports: 0, runs: 0, lastError: null,
  };
  let job = null, controller = null, events = [], quantizer = 'per_tensor', weightsBusy = false, weightsTimer = 0, lastWeights = 0;
  let modelUpdates = Promise.resolve();
  let flipped = [];

  function setTritBar(card, t, label) {
    const cells = card.bar.children;
    [t.neg, t.zero, t.pos].forEach((f, i) => {
      cells[i].style.flexBasis = `${(f * 100).toFixed(2)}%`;
      const pct = `${(f * 100).toFixed(0)}%`;
      cells[i].textContent = f > 0.13 ? `${['−1', '0', '+1'][i]} ${pct}` : f > 0.06 ? pct : '';
    });
    card.bar.setAttribute('aria-label', `${label}: −1 ${(t.neg * 100).toFixed(1)}%, 0 ${(t.zero * 100).toFixed(1)}%, +1 ${(t.pos * 100).toFixed(1)}%`);
  }

  function drawCharts() {
    const total = events.at(-1)?.totalSteps ?? 0;
    const lossMax = Math.max(0.5, ...events.map((e) => e.loss));
    const nice = Math.ceil(lossMax * 2) / 2;
    lineChart(ui.loss, {
      id: 'loss', xMax: total, yMin: 0, yMax: nice, yFormat: (v) => v.toFixed(1),
      series: [{ points: events.map((e) => [e.step, e.loss]), color: '#d1495b', width: 2 }],
      empty: 'press Train: the loss appears here as the worker reports',
    });
    const tests = events.filter((e) => e.accuracyOn === 'test');
    lineChart(ui.acc, {
      id: 'accuracy', xMax: total, yMin: 0, yMax: 1, yFormat: (v) => `${Math.round(v * 100)}%`,
      series: [
        { points: events.filter((e) => e.accuracyOn === 'batch').map((e) => [e.step, e.accuracy]), color: '#9dbbf0', width: 1.5 },
        { points: tests.map((e) => [e.step, e.accuracy]), color: '#1f9d55', width: 2, dots: true, labelLast: (v) => app.percent(v) },
      ],
      empty: 'batch accuracy, and test accuracy at each epoch end',
    });
    state.lossPoints = events.length;
  }

  function showWeights(weights) {
    const t0 = performance.now();
    weights.forEach((L, k) => {
      const s = layerStats(L);
      setTritBar(cards[k], s, quantizer === 'none' ? 'would round to' : 'trits');
      histogram(cards[k].hist, { id: `hist${k}`, counts: s.counts, hi: HIST_HI, band: BAND });
      const f = flipped[k];
      cards[k].nums.textContent = `${quantizer === 'none' ? 'float32: rounding per tensor would give these trits. ' : ''}` +
        `α ${quantizer === 'per_row' ? '(mean of rows) ' : ''}${s.alpha.toPrecision(3)} · in the band ${app.percent(s.band)}` +
        `${f === undefined ? '' : ` · flipped since the last report ${app.percent(f, 2)}`}`;
    });
    state.weightsUpdates++;
    state.weightsStep = weights.step;
    state.weightsMs = performance.now() - t0;
  }

  /** Ask the worker for its weights at most every WEIGHTS_EVERY_MS, one request at a time. */
  function requestWeights(force = false) {
    if (!job) return;
    const wait = WEIGHTS_EVERY_MS - (performance.now() - lastWeights);
    if (weightsBusy || (!force && wait > 0)) {
      if (!weightsTimer) weightsTimer = setTimeout(() => { weightsTimer = 0; requestWeights(true); }, Math.max(wait, 50));
      return;
    }
    weightsBusy = true;
    lastWeights = performance.now();
    const current = job;
    current.weights({ timeout: 2000 }).then(
      (w) => { if (current === job) showWeights(w); },
      () => {}, // the job went away in between: nothing to draw
    ).finally(() => { weightsBusy = false; });
  }

  function showModelTrits(model) {
    if (job) return;
    modelTrits(model.model).forEach((t, k) => {
      setTritBar(cards[k], t, 'trits of the current model');
      cards[k].nums.textContent = `trits of the current model (${model.source}); the shadow weights appear when training starts`;
    });
  }

  function statusLine(e) {
    const parts = [`epoch ${e.epoch + 1}/${state.epochs}`, `step ${e.step}/${e.totalSteps}`, `loss ${e.loss.toFixed(3)}`];
    const test = events.filter((v) => v.accuracyOn === 'test').at(-1);
    if (test) parts.push(`test accuracy ${app.percent(test.accuracy)}`);
    parts.push(`lr ${e.lr.toExponential(1)}`, `${(e.ms / 1000).toFixed(1)} s`);
    return parts.join(' · ');
  }

  function setButtons() {
    const running = ['starting', 'training', 'paused', 'cancelling'].includes(state.state);
    ui.start.disabled = running;
    ui.pause.disabled = !(state.state === 'training' || state.state === 'paused');
    ui.cancel.disabled = !running || state.state === 'cancelling';
    ui.pause.textContent = state.state === 'paused' ? 'Resume' : 'Pause';
    for (const el of [ui.quantizer, ui.epochs, ui.subset, ui.from]) el.disabled = running;
  }

  function setState(s) {
    state.state = s;
    ui.el ??= ui.start.closest('section');
    ui.el.dataset.state = s;
    setButtons();
  }

  /** The model of the job's current weights becomes the page's model (queued, in order). */
  function adoptModel(current, e, final) {
    modelUpdates = modelUpdates.then(async () => {
      const about = {
        source: 'trained here', quantizer,
        label: `trained in this page: ${app.quantizerName(quantizer)}, ${final ? 'final weights' : `taken at the end of epoch ${e.epoch + 1}`}`,
      };
      // a float32 network is exported ternarized per tensor (post-training quantization)
      if (quantizer === 'none') about.label += ' (float32 weights ternarized per tensor after training)';
      const bytes = await current.export({ format: 'i2', metadata: { source: 'tilelli demo page', trainedEpochs: String(e.epoch + 1) } });
      app.setModel(bytes, (model) => ({ ...about, step: Number(model.metadata.steps) }));
      state.exports++;
    }).catch((err) => {
      if (err?.name !== 'AbortError' && err?.code !== 'FREED') console.error('could not take the trained model:', err);
    });
    return modelUpdates;
  }

  function onProgress(e, current) {
    if (current !== job) return;
    events.push(e);
    flipped = e.layers.map((L) => L.flipped);
    state.events++;
    state.step = e.step;
    state.totalSteps = e.totalSteps;
    if (e.epochEnd) {
      state.epochEnds++;
      if (e.accuracyOn === 'test') state.testAccuracy.push(e.accuracy);
      if (e.epoch + 1 < state.epochs) adoptModel(current, e, false); // the last one: when done
    }
    ui.status.textContent = statusLine(e);
    ui.bar.style.width = `${(100 * e.step) / e.totalSteps}%`;
    drawCharts();
    requestWeights(e.epochEnd);
  }

  async function start() {
    if (job) return;
    quantizer = ui.quantizer.value;
    const epochs = Math.min(30, Math.max(1, Math.round(Number(ui.epochs.value) || 1)));
    ui.epochs.value = String(epochs);
    const n = Number(ui.subset.value) || data.train.count;
    const fromModel = ui.from.value === 'model';
    const x = inputs(data.train, 0, n), labels = data.train.labels.slice(0, n);
    const test = { x: app.testX.slice(), labels: data.test.labels.slice() };
    const stepsPerEpoch = Math.ceil(n / 64);
    events = [];
    flipped = [];
    Object.assign(state, { events: 0, step: 0, totalSteps: epochs * stepsPerEpoch, epochEnds: 0, testAccuracy: [], epochs, lastError: null });
    state.runs++;
    drawCharts();
    controller = new AbortController();
    setState('starting');
    ui.status.textContent = `starting the worker: ${app.quantizerName(quantizer)}, ${epochs} epoch${epochs > 1 ? 's' : ''} of ${n.toLocaleString('en-US')} digits` +
      `${fromModel ? ', from the current model' : ''} …`;
    ui.bar.style.width = '0';
    const current = startTraining({
      worker: app.workerUrl,
      init: { url: app.wasm },
      network: fromModel ? { model: app.current.bytes.slice(), quantizer } : { widths: WIDTHS, activation: 'relu', quantizer, seed: 1 },
      optimizer: { type: 'adam', lr: fromModel ? 5e-4 : 2e-3 },
      schedule: { type: 'cosine' },
      data: { x, labels },
      test,
      epochs,
      batchSize: 64,
      seed: state.runs,
      progressEvery: Math.max(1, Math.round(stepsPerEpoch / 25)),
      signal: controller.signal,
      onProgress: (e) => onProgress(e, current),
      onError: (err) => console.error('progress handler failed:', err),
    });
    job = current;
    setState('training');
    requestWeights(true);
    try {
      const result = await current.done;
      await adoptModel(current, { epoch: epochs - 1 }, true);
      ui.status.textContent = `done: ${epochs} epoch${epochs > 1 ? 's' : ''}, ${result.steps} steps in ${(result.ms / 1000).toFixed(1)} s, ` +
        `test accuracy ${app.percent(result.accuracy)}${quantizer === 'none' ? ` (float32; ternarized after training: ${app.percent(app.current.accuracy)})` : ''}` +
        ' — the Draw and Pack panels now use this model.';
      showWeights(await current.weights());
      setState('done');
    } catch (err) {
      if (err?.name === 'AbortError') {
        const last = events.at(-1);
        ui.status.textContent = `cancelled at step ${last?.step ?? 0} of ${state.totalSteps}. ` +
          `${state.epochEnds ? `The model of epoch ${state.epochEnds} stays in the Draw and Pack panels.` : 'The previous model stays in the Draw and Pack panels.'}`;
        setState('cancelled');
        current.weights().then((w) => showWeights(w), () => {});
      } else {
        state.lastError = `${err?.name}: ${err?.message}`;
        ui.status.textContent = `training failed: ${err?.message ?? err}`;
        console.error('training failed:', err);
        setState('failed');
      }
    } finally {
      job = null;
      clearTimeout(weightsTimer);
      weightsTimer = 0;
      await modelUpdates;
      await current.terminate().catch(() => {});
      setButtons();
    }
  }

  async function pauseOrResume() {
    if (!job) return;
    ui.pause.disabled = true;
    try {
      if (state.state === 'paused') {
        await job.resume();
        setState('training');
      } else {
        const { step } = await job.pause();
        state.pausedAt = step;
        setState('paused');
        const last = events.at(-1);
        ui.status.textContent = `paused at step ${step} of ${state.totalSteps}${last ? ` (epoch ${last.epoch + 1}, loss ${last.loss.toFixed(3)})` : ''}: Resume goes on from there.`;
        requestWeights(true);
      }
    } catch (err) {
      if (err?.name !== 'AbortError') console.error(err);
    } finally {
      setButtons();
    }
  }

  ui.start.addEventListener('click', () => { start(); });
  ui.pause.addEventListener('click', () => { pauseOrResume(); });
  ui.cancel.addEventListener('click', () => {
    if (!controller) return;
    setState('cancelling');
    controller.abort();
  });

  drawCharts();
  for (const [k, card] of cards.entries()) histogram(card.hist, { id: `hist${k}`, counts: null, hi: HIST_HI, band: BAND });
  app.onModel((m) => showModelTrits(m));
  setState('idle');
  return state;
}
