// quantize.mjs — the main job, for now: quantize a weight tensor and print its deadzone stats.
//
//   node examples/quantize.mjs [rows] [cols]
//
// A 512 x 784 layer of normally distributed weights (what a freshly initialized linear layer
// looks like) is ternarized per tensor and per row; the trit distribution and the deadzone
// diagnostics of the reference (Tequila's "deadzone trapping") are printed for several bands.
import { init } from '../js/index.js';

const rows = Number(process.argv[2] ?? 512);
const cols = Number(process.argv[3] ?? 784);

// Seeded normal weights (Box-Muller over a xorshift32 stream), std 1/sqrt(cols) like a fresh layer.
function normalWeights(n, std, seed = 2024) {
  let x = seed;
  const uniform = () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return (x + 0.5) / 2 ** 32;
  };
  const w = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform())) * std;
    const t = 2 * Math.PI * uniform();
    w[i] = r * Math.cos(t);
    if (i + 1 < n) w[i + 1] = r * Math.sin(t);
  }
  return w;
}

const tl = await init();
const w = normalWeights(rows * cols, 1 / Math.sqrt(cols));

const t0 = performance.now();
const { trits, alpha } = tl.ternarySigns(w);
const t1 = performance.now();
const { alphas } = tl.ternarySignsPerRow(w, [rows, cols]);
const t2 = performance.now();

const pct = (x) => `${(100 * x).toFixed(2)}%`;
const counts = [0, 0, 0];
for (const t of trits) counts[t + 1]++;

console.log(`tilelli ${tl.version} (${{ relaxed: 'wasm relaxed-SIMD', simd: 'wasm SIMD128', scalar: 'wasm scalar' }[tl.build]} build)`);
console.log(`weights: ${rows} x ${cols} float32, normal with std 1/sqrt(${cols})\n`);
console.log(`per tensor: alpha = ${alpha.toPrecision(7)}   (${(t1 - t0).toFixed(2)} ms)`);
console.log(`  trits: -1 ${pct(counts[0] / w.length)}   0 ${pct(counts[1] / w.length)}   +1 ${pct(counts[2] / w.length)}`);
let lo = Infinity, hi = -Infinity;
for (const a of alphas) lo = Math.min(lo, a), hi = Math.max(hi, a);
console.log(`per row: ${rows} scales from ${lo.toPrecision(5)} to ${hi.toPrecision(5)}   (${(t2 - t1).toFixed(2)} ms)`);
console.log();

console.log('deadzone stats (the reference\'s deadzone_stats):');
console.log('  band    frac_neg  frac_zero  frac_pos  frac_boundary  frac_zero_inner');
for (const band of [0, 0.05, 0.1, 0.25, 0.5]) {
  const s = tl.deadzoneStats(w, band);
  console.log(`  ${band.toFixed(2).padEnd(6)}  ${pct(s.fracNeg).padStart(8)}  ${pct(s.fracZero).padStart(9)}  ` +
    `${pct(s.fracPos).padStart(8)}  ${pct(s.fracBoundary).padStart(13)}  ${pct(s.fracZeroInner).padStart(15)}`);
}
const s = tl.deadzoneStats(w);
console.log(`\nAt band 0.1, ${pct(s.fracBoundary)} of the weights sit on a rounding knife-edge ` +
  `(| |w/alpha| - 0.5 | < 0.1)${s.fracBoundary > 0.05 ? ': above 5%, Tequila\'s deadzone fix could matter' : ''}.`);
