// make_model_corpus.mjs — writes the seed corpus of fuzz_model (test/fuzz/corpus/model/): small
// packed model files from js/model.js's packModel covering every layer type and weight format,
// plus a few broken ones. Deterministic; run `node test/fuzz/make_model_corpus.mjs` to rewrite.
import { mkdir, writeFile } from 'node:fs/promises';

import { init } from '../../js/node.js';

const tl = await init();
const dir = new URL('./corpus/model/', import.meta.url);
await mkdir(dir, { recursive: true });
const floats = (n, seed) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 97 + i * 1.7));
const seeds = {};
for (const format of ['i2', 'tq1', 'bitplane']) {
  const a = tl.PackedMatrix.fromWeights(floats(12 * 8, 1), [12, 8], { format, perRow: true });
  const b = tl.PackedMatrix.fromWeights(floats(5 * 12, 2), [5, 12], { format });
  seeds[`mlp-${format}`] = tl.packModel({
    input: 8, layers: [{ type: 'linear', matrix: a, bias: floats(12, 3) }, { type: 'relu' }, { type: 'linear', matrix: b }],
    metadata: { seed: format },
  });
  seeds[`all-layers-${format}`] = tl.packModel({
    input: 8,
    layers: [
      { type: 'rmsnorm', weight: floats(8, 4), eps: 1e-6 }, { type: 'linear', matrix: a }, { type: 'gelu' },
      { type: 'binarize', k: 3 }, { type: 'linear', matrix: b, bias: floats(5, 5) }, { type: 'silu' }, { type: 'softmax' },
    ],
  });
  const c = tl.PackedMatrix.fromWeights(floats(4 * 12, 6), [4, 12], { format });
  seeds[`bitlinear-${format}`] = tl.packModel({
    input: 8,
    layers: [{ type: 'bitlinear', matrix: a, normWeight: floats(8, 7), eps: 1e-5 }, { type: 'relu' },
      { type: 'binarize', threshold: 0.1 }, { type: 'linear', matrix: c }],
  });
  a.free(), b.free(), c.free();
}
const good = seeds['mlp-i2'];
seeds['truncated'] = good.subarray(0, good.length >> 1);
seeds['future-version'] = (() => { const x = good.slice(); new DataView(x.buffer).setUint32(4, 7, true); return x; })();
for (const [name, bytes] of Object.entries(seeds)) await writeFile(new URL(`${name}.tlm`, dir), bytes);
console.log(`wrote ${Object.keys(seeds).length} seeds to ${dir.pathname}`);
