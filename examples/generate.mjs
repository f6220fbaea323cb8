// generate.mjs — a ternary language model writing text (`npm start` runs it after the MNIST job).
//
//   node examples/generate.mjs [--prompt "hacker n. "] [--tokens 200] [--temperature 0.8] [--seed 1]
//
// The model: a BitNet b1.58 transformer (4 layers, hidden 128, 4 heads over 2 KV heads, squared
// ReLU, 737,280 ternary weights) trained character by character on the Jargon File (public
// domain) by scripts/train_lm.py with the Python package's BitLinear; its checkpoint (float16 latent
// weights) is test/fixtures/lm/charlm. Loading widens the weights to float32 and quantizes them (per
// tensor, the reference's rule); the packed file (save()) is what one would ship.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

import { Tokenizer, init } from '../js/node.js';

const { values: o } = parseArgs({
  options: {
    prompt: { type: 'string', default: 'hacker n. ' }, tokens: { type: 'string', default: '200' },
    temperature: { type: 'string', default: '0.8' }, seed: { type: 'string', default: '1' },
  },
});
const dir = new URL('../test/fixtures/lm/charlm/', import.meta.url);
const [config, weights, tokJson] = await Promise.all(
  ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => readFile(new URL(f, dir))));

const tl = await init();
const tokenizer = Tokenizer.fromJSON(tokJson);
const lm = tl.LanguageModel.load({ config, weights, tokenizer });
const packed = lm.save();
console.log(`tilelli ${tl.version} (${{ relaxed: 'relaxed SIMD', simd: 'SIMD128', scalar: 'scalar' }[tl.build]} build, ${tl.threads} thread${tl.threads > 1 ? 's' : ''}): a ${lm.config.num_hidden_layers}-layer ternary ` +
  `transformer, context ${lm.context}; float16 checkpoint ${(weights.length / 1024).toFixed(0)} KiB, ` +
  `packed (i2) ${(packed.length / 1024).toFixed(0)} KiB`);

// The model's context is 128 characters: generate in windows, each starting from the last 64.
async function write(activations) {
  lm.setActivations(activations);
  let text = o.prompt, made = 0, ms = 0;
  const want = Number(o.tokens);
  process.stdout.write(`\n--- ${activations} activations, temperature ${o.temperature}, seed ${o.seed} ---\n${o.prompt}`);
  for (let w = 0; made < want; w++) {
    lm.reset();
    const r = await lm.generate(text.slice(-64), {
      maxNewTokens: Math.min(want - made, lm.context - Math.min(text.length, 64)),
      temperature: Number(o.temperature), topK: 40, seed: Number(o.seed) + w,
      onToken: ({ text: piece }) => process.stdout.write(piece),
    });
    text += r.text, made += r.tokens.length, ms += r.decodeMs;
    if (r.tokens.length === 0) break;
  }
  process.stdout.write(`\n--- ${made} characters, ${(made / (ms / 1000)).toFixed(0)} tokens/s decode ---\n`);
}
await write('int8');
await write('float');
lm.free();
