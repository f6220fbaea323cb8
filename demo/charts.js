// charts.js — the demo's charts, drawn by hand on <canvas>: line charts (loss, accuracy) and
// histograms of |w/alpha| with the deadzone band. Each canvas is sized to its CSS box times the
// device pixel ratio and drawn again when that box changes.

const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
const last = new WeakMap(); // canvas -> the function that draws it (for resizes)
const observer = typeof ResizeObserver === 'function'
  ? new ResizeObserver((entries) => { for (const e of entries) last.get(e.target)?.(); })
  : undefined;

/** Counters the test reads: how many times each chart was drawn. */
export const counters = { draws: {} };

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

/** The context of a canvas sized to its box (CSS pixels as the unit), and that size. */
function surface(canvas) {
  const dpr = Math.min(window.devicePixelRatio || 1, 3);
  const w = Math.max(1, canvas.clientWidth), h = Math.max(1, canvas.clientHeight);
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = FONT;
  return { ctx, w, h };
}

function remember(canvas, draw) {
  if (!last.has(canvas)) observer?.observe(canvas);
  last.set(canvas, draw);
  draw();
}

/** Round numbers for axis ticks between lo and hi. */
function ticks(lo, hi, count) {
  const span = hi - lo || 1;
  const raw = span / count, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

/**
 * A line chart. series: [{ points: [[x, y], ...], color, width, dots, label }]; x from 0 to
 * xMax, y from yMin to yMax; yFormat formats the y ticks; empty: the text shown without points.
 */
export function lineChart(canvas, { id, series, xMax, yMin = 0, yMax, yFormat = (v) => String(v), xLabel = 'step', empty = 'no data yet' }) {
  remember(canvas, () => {
    counters.draws[id] = (counters.draws[id] ?? 0) + 1;
    const { ctx, w, h } = surface(canvas);
    const L = 40, R = 10, T = 8, B = 22;
    const pw = w - L - R, ph = h - T - B;
    const X = (x) => L + (xMax > 0 ? (x / xMax) * pw : 0);
    const Y = (y) => T + ph - ((y - yMin) / (yMax - yMin || 1)) * ph;
    ctx.strokeStyle = '#e6e9ed';
    ctx.fillStyle = '#6b7480';
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const v of ticks(yMin, yMax, Math.max(2, Math.floor(ph / 36)))) {
      const y = Math.round(Y(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(L + pw, y); ctx.stroke();
      ctx.fillText(yFormat(v), L - 5, y);
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const labelWidth = ctx.measureText(xLabel).width;
    if (xMax > 0) {
      for (const v of ticks(0, xMax, Math.max(2, Math.floor(pw / 70)))) {
        if (X(v) + ctx.measureText(String(v)).width / 2 < L + pw - labelWidth - 8) ctx.fillText(String(v), X(v), T + ph + 5);
      }
    }
    ctx.textAlign = 'right';
    ctx.fillText(xLabel, L + pw, T + ph + 5);
    ctx.strokeStyle = '#b9c0c9';
    ctx.beginPath(); ctx.moveTo(L + 0.5, T); ctx.lineTo(L + 0.5, T + ph + 0.5); ctx.lineTo(L + pw, T + ph + 0.5); ctx.stroke();
    let any = false;
    for (const s of series) {
      if (!s.points.length) continue;
      any = true;
      ctx.strokeStyle = s.color;
      ctx.fillStyle = s.color;
      ctx.lineWidth = s.width ?? 2;
      ctx.lineJoin = 'round';
      if (s.line !== false) {
        ctx.beginPath();
        s.points.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
        ctx.stroke();
      }
      if (s.dots) {
        for (const [x, y] of s.points) {
          ctx.beginPath(); ctx.arc(X(x), Y(y), 4, 0, 2 * Math.PI); ctx.fill();
        }
        const [lx, ly] = s.points.at(-1);
        if (s.labelLast) {
          ctx.textAlign = lx > xMax * 0.8 ? 'right' : 'left';
          ctx.textBaseline = 'bottom';
          ctx.font = `600 ${FONT}`;
          ctx.fillText(s.labelLast(ly), X(lx) + (ctx.textAlign === 'right' ? -6 : 6), Y(ly) - 4);
          ctx.font = FONT;
        }
      }
    }
    if (!any) {
      ctx.fillStyle = '#8a939d';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(empty, L + pw / 2, T + ph / 2);
    }
  });
}

/**
 * A histogram of |w/alpha| over [0, hi] (the last bin holds everything above hi): bins below the
 * rounding threshold (0.5: the weight is a 0 trit) grey, above it blue, the band shaded amber.
 */
export function histogram(canvas, { id, counts, hi, band = 0.1, threshold = 0.5 }) {
  remember(canvas, () => {
    counters.draws[id] = (counters.draws[id] ?? 0) + 1;
    const { ctx, w, h } = surface(canvas);
    const L = 6, R = 6, T = 6, B = 18;
    const pw = w - L - R, ph = h - T - B;
    const X = (v) => L + (v / hi) * pw;
    if (counts) {
      const n = counts.length, max = Math.max(...counts) || 1, bw = pw / n;
      const zero = css('--zero'), pos = css('--pos');
      for (let i = 0; i < n; i++) {
        const bh = (counts[i] / max) * ph;
        ctx.fillStyle = (i + 0.5) * (hi / n) < threshold ? zero : pos;
        ctx.fillRect(L + i * bw + 0.5, T + ph - bh, Math.max(1, bw - 1), bh);
      }
    }
    // the band, over the bars, and the rounding threshold
    const b0 = X(threshold - band), b1 = X(threshold + band);
    ctx.fillStyle = 'rgba(242, 177, 52, 0.38)';
    ctx.fillRect(b0, T, b1 - b0, ph);
    ctx.strokeStyle = 'rgba(176, 122, 8, 0.55)';
    ctx.beginPath(); ctx.moveTo(Math.round(b0) + 0.5, T); ctx.lineTo(Math.round(b0) + 0.5, T + ph); ctx.moveTo(Math.round(b1) - 0.5, T); ctx.lineTo(Math.round(b1) - 0.5, T + ph); ctx.stroke();
    ctx.strokeStyle = '#b07a08';
    ctx.setLineDash([3, 3]);
    ctx.beginPath(); ctx.moveTo(Math.round(X(threshold)) + 0.5, T); ctx.lineTo(Math.round(X(threshold)) + 0.5, T + ph); ctx.stroke();
    ctx.setLineDash([]);
    ctx.strokeStyle = '#b9c0c9';
    ctx.beginPath(); ctx.moveTo(L, T + ph + 0.5); ctx.lineTo(L + pw, T + ph + 0.5); ctx.stroke();
    ctx.fillStyle = '#6b7480';
    ctx.textBaseline = 'top';
    for (const v of [0, 0.5, 1, 1.5, 2, 2.5, 3].filter((t) => t <= hi)) {
      ctx.textAlign = v === 0 ? 'left' : v === hi ? 'right' : 'center';
      ctx.fillText(v === hi ? `≥${v}` : String(v), X(v), T + ph + 4);
    }
    if (!counts) {
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText('weights appear when training starts', L + pw / 2, T + ph / 2);
    }
  });
}
