// make_gguf_corpus.mjs — seeds of fuzz_gguf (test/fuzz/corpus/gguf/): GGUF files of the tiny
// language-model fixtures written by tilelli's own GGUF writer (LanguageModel.save({ gguf })):
// I2_S of two tiny cases (GQA tied squared ReLU, MHA untied SiLU), TQ2_0 and TQ1_0 of the
// 256-wide case, and one with the placeholder vocabulary. Also fuzz_safetensors' language-model
// seeds (test/fuzz/corpus/safetensors/packed-lm-*.safetensors): the packed file (save()) of a
// random one-layer model (test/js/lm-random.js) with float32, float16 and int8 tables.
//   node test/fuzz/make_gguf_corpus.mjs
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

import { init } from '../../js/node.js';
import { randomConfig, randomWeights } from '../js/lm-random.js';

const tl = await init();
const out = new URL('corpus/gguf/', import.meta.url);
mkdirSync(out, { recursive: true });
const fx = (d, f) => readFileSync(new URL(`../fixtures/${d}/${f}`, import.meta.url));
const load = (d) => tl.LanguageModel.load({ config: fx(d, 'config.json'), weights: fx(d, 'model.safetensors') });
const seeds = [
  ['gqa-i2s.gguf', 'lm/gqa_tied_relu2', { gguf: 'i2_s' }],
  ['mha-untied-i2s.gguf', 'lm/mha_untied_silu', { gguf: 'i2_s' }],
  ['mha-untied-i2s-vocab.gguf', 'lm/mha_untied_silu', { gguf: 'i2_s', vocabulary: true }],
  ['bitnet256-tq2.gguf', 'lm-import/bitnet256', { gguf: 'tq2_0' }],
  ['bitnet256-tq1.gguf', 'lm-import/bitnet256', { gguf: 'tq1_0' }],
];
for (const [name, d, opts] of seeds) {
  const lm = load(d);
  const bytes = lm.save(opts);
  writeFileSync(new URL(name, out), bytes);
  console.log(`${name}: ${bytes.length} bytes`);
  lm.free();
}

const st = new URL('corpus/safetensors/', import.meta.url);
const config = randomConfig({ hidden: 16, layers: 1, heads: 2, kvHeads: 1, ffn: 32, vocab: 8, context: 16 });
const small = { config: JSON.stringify(config), weights: randomWeights(config, 3) };
for (const embedding of ['float32', 'float16', 'int8']) {
  const lm = tl.LanguageModel.load(small, { embedding });
  const bytes = lm.save();
  writeFileSync(new URL(`packed-lm-${embedding}.safetensors`, st), bytes);
  console.log(`packed-lm-${embedding}.safetensors: ${bytes.length} bytes`);
  lm.free();
}
