// draw-panel.js — panel 2: a 280 x 280 pad; as you draw, the ink is brought to 28 x 28 the way
// MNIST was made (preprocess.js) and classified by the current packed model: tl.Model.run
// (float activations times the packed trits: adds and subtracts), and the same trits with int8
// activations through PackedMatrix.matmulInt8 (int32 sums). Top three classes and latencies.
// A test digit can be loaded onto the pad (the browser test does that).
import { sample } from './digits.js';
import { enlarge, SIDE, toModelInput } from './preprocess.js';

const $ = (id) => document.getElementById(id);
const BRUSH = 19;

/** Microseconds per call of fn: repeated until 3 ms have passed (at most 200 calls). */
function timeUs(fn) {
  let reps = 0, result;
  const t0 = performance.now();
  let t = 0;
  do {
    result = fn();
    reps++;
    t = performance.now() - t0;
  } while (t < 3 && reps < 200);
  return { us: (t * 1000) / reps, result, reps };
}

function softmax(logits) {
  const max = Math.max(...logits);
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

const fmtUs = (us) => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(us < 10 ? 1 : 0)} µs`);

export function drawPanel(app) {
  const { tl, data } = app;
  const pad = $('pad'), ctx = pad.getContext('2d', { willReadFrequently: true });
  const seen = $('pad-input'), seenCtx = seen.getContext('2d');
  const ui = { top3: $('top3'), latency: $('draw-latency'), int8: $('draw-int8'), model: $('draw-model'), index: $('pad-index') };
  ui.index.max = String(data.test.count - 1);
  const state = { classifications: 0, last: null, loaded: null, strokes: 0 };

  function clear() {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, pad.width, pad.height);
    seenCtx.clearRect(0, 0, SIDE, SIDE);
    state.last = null;
    state.loaded = null;
    ui.top3.innerHTML = '<li class="empty">Draw a digit …</li>';
    ui.latency.innerHTML = '&nbsp;';
    ui.int8.innerHTML = '&nbsp;';
  }

  /** The pad's ink, 0..1 per pixel (the red channel of white on black). */
  function ink() {
    const { data: px } = ctx.getImageData(0, 0, pad.width, pad.height);
    const out = new Float32Array(pad.width * pad.height);
    for (let i = 0; i < out.length; i++) out[i] = px[i * 4] / 255;
    return out;
  }

  function showSeen(x) {
    const img = seenCtx.createImageData(SIDE, SIDE);
    for (let i = 0; i < x.length; i++) {
      const v = Math.round(x[i] * 255);
      img.data.set([v, v, v, 255], i * 4);
    }
    seenCtx.putImageData(img, 0, 0);
  }

  function classify() {
    const model = app.current;
    if (!model) return;
    const x = toModelInput(ink(), pad.width, pad.height);
    if (!x) {
      ui.top3.innerHTML = '<li class="empty">Draw a digit …</li>';
      state.last = null;
      return;
    }
    showSeen(x);
    const run = timeUs(() => model.model.run(x));
    const int8 = timeUs(() => model.int8.run(x));
    const probs = softmax(run.result);
    const order = [...probs.keys()].sort((a, b) => probs[b] - probs[a]);
    ui.top3.innerHTML = order.slice(0, 3).map((c) => `<li><span class="digit">${c}</span>` +
      `<span class="bar"><div style="width:${(probs[c] * 100).toFixed(1)}%"></div></span><span class="pct">${(probs[c] * 100).toFixed(1)}%</span></li>`).join('') +
      (state.loaded ? `<li class="empty small">test digit #${state.loaded.index}, labelled ${state.loaded.label}</li>` : '');
    const int8Class = int8.result.indexOf(Math.max(...int8.result));
    ui.latency.innerHTML = `<b>${fmtUs(run.us)}</b> per digit with <code>tl.Model.run</code> (float activations × packed trits: adds and subtracts), mean of ${run.reps} runs`;
    ui.int8.innerHTML = `int8 activations × trits (<code>Model.load(bytes, { activations: 'int8' })</code>, int32 sums): <b>${int8Class}</b> in ${fmtUs(int8.us)}` +
      `${int8Class === order[0] ? ' — the same answer' : ' — a different answer'}`;
    state.classifications++;
    state.last = {
      input: Array.from(x), logits: Array.from(run.result), int8Logits: Array.from(int8.result),
      top3: order.slice(0, 3), probs: order.slice(0, 3).map((c) => probs[c]), int8Class,
      latencyUs: run.us, int8LatencyUs: int8.us, modelSerial: model.serial, loaded: state.loaded,
    };
  }

  // Classify at most once per animation frame while drawing.
  let queued = false;
  function schedule() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; classify(); });
  }

  let drawing = null;
  const at = (e) => {
    const r = pad.getBoundingClientRect();
    return [((e.clientX - r.left) / r.width) * pad.width, ((e.clientY - r.top) / r.height) * pad.height];
  };
  pad.addEventListener('pointerdown', (e) => {
    e.preventDefault();
    pad.setPointerCapture(e.pointerId);
    if (state.loaded !== null) clear(); // drawing over a loaded test digit starts afresh
    drawing = at(e);
    ctx.fillStyle = '#fff';
    ctx.beginPath();
    ctx.arc(drawing[0], drawing[1], BRUSH / 2, 0, 2 * Math.PI);
    ctx.fill();
    state.strokes++;
    schedule();
  });
  pad.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    const p = at(e);
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = BRUSH;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(...drawing);
    ctx.lineTo(...p);
    ctx.stroke();
    drawing = p;
    schedule();
  });
  const end = () => { if (drawing) { drawing = null; schedule(); } };
  pad.addEventListener('pointerup', end);
  pad.addEventListener('pointercancel', end);

  /** Paint test digit i on the pad, each of its 28 x 28 pixels a 10 x 10 block, and classify it. */
  function loadTestDigit(i) {
    i = Math.min(data.test.count - 1, Math.max(0, Math.round(i) || 0));
    ui.index.value = String(i);
    const big = enlarge(sample(data.test, i), pad.width, pad.height);
    const img = ctx.createImageData(pad.width, pad.height);
    for (let p = 0; p < big.length; p++) {
      const v = Math.round(big[p] * 255);
      img.data[p * 4] = img.data[p * 4 + 1] = img.data[p * 4 + 2] = v;
      img.data[p * 4 + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    state.loaded = { index: i, label: data.test.labels[i] };
    classify();
  }

  $('pad-clear').addEventListener('click', clear);
  $('pad-random').addEventListener('click', () => loadTestDigit(Math.floor(Math.random() * data.test.count)));
  $('pad-load').addEventListener('click', () => loadTestDigit(Number(ui.index.value)));
  ui.index.addEventListener('keydown', (e) => { if (e.key === 'Enter') loadTestDigit(Number(ui.index.value)); });

  app.onModel((m) => {
    ui.model.innerHTML = `Model: ${m.label}${m.step ? `, step ${m.step}` : ''}. Test accuracy ${app.percent(m.accuracy)} ` +
      `(int8 activations: ${app.percent(m.int8Accuracy)}) on ${data.test.count.toLocaleString('en-US')} digits.`;
    if (state.last) classify();
  });
  clear();
  return state;
}
