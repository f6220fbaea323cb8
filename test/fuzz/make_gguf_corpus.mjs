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

// Hugging Face packed checkpoints (U8 [rows / 4, cols] projections, a BF16 weight_scale each) of a
// one-layer 64-wide model, with their config.json in the metadata's "config" for fuzz_safetensors:
// the owned load rewrites them where they lie. One with the 2-byte scales first (every tensor after
// them 12 bytes off a 16-byte boundary) and a BF16 table held as float16; one untied, with the
// tables right below the projections (the first projection gets a buffer of its own).
function hfCheckpoint({ tied, order }) {
  const D = 64, F = 64, V = 8, H = 2, KV = 1, hd = 32;
  const config = {
    vocab_size: V, hidden_size: D, intermediate_size: F, num_hidden_layers: 1, num_attention_heads: H,
    num_key_value_heads: KV, head_dim: hd, max_position_embeddings: 16, rms_norm_eps: 1e-5, rope_theta: 10000,
    hidden_act: 'relu2', tie_word_embeddings: tied, quantization_config: { quant_method: 'bitnet' },
    tilelli_embedding: 'float16',
  };
  let x = 7;
  const rnd = () => ((x ^= x << 13, x >>>= 0, x ^= x >>> 17, x ^= x << 5, x >>>= 0), x / 2 ** 32);
  const bf16 = (v) => new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16; // truncation: any BF16 will do
  const t = [];
  const table = (name) => t.push([name, 'BF16', [V, D], Uint16Array.from({ length: V * D }, () => bf16(rnd() - 0.5))]);
  const norm = (name, n) => t.push([name, 'F32', [n], Float32Array.from({ length: n }, () => 1 + (rnd() - 0.5) / 5)]);
  table('model.embed_tokens.weight');
  if (!tied) table('lm_head.weight');
  norm('model.norm.weight', D);
  const p = 'model.layers.0.';
  for (const [n, k] of [['input_layernorm', D], ['self_attn.attn_sub_norm', H * hd], ['post_attention_layernorm', D], ['mlp.ffn_sub_norm', F]])
    norm(p + n + '.weight', k);
  for (const [n, r, c] of [['self_attn.q_proj', H * hd, D], ['self_attn.k_proj', KV * hd, D], ['self_attn.v_proj', KV * hd, D],
    ['self_attn.o_proj', D, H * hd], ['mlp.gate_proj', F, D], ['mlp.up_proj', F, D], ['mlp.down_proj', D, F]]) {
    const codes = Uint8Array.from({ length: (r / 4) * c }, () => {
      let b = 0;
      for (let k = 0; k < 4; k++) b |= Math.floor(rnd() * 3) << (2 * k);
      return b;
    });
    t.push([p + n + '.weight', 'U8', [r / 4, c], codes], [p + n + '.weight_scale', 'BF16', [1], Uint16Array.of(bf16(4 + rnd()))]);
  }
  const rank = ([name]) => (name.endsWith('_scale') ? 0 : order === 'tables-below' && /embed|lm_head/.test(name) ? 2 : name.endsWith('_proj.weight') ? 3 : 1);
  t.sort((a, b) => rank(a) - rank(b)); // stable: the order above within a rank
  const header = { __metadata__: { format: 'pt', config: JSON.stringify(config) } };
  let off = 0;
  for (const [name, dtype, shape, data] of t) header[name] = { dtype, shape, data_offsets: [off, (off += data.byteLength)] };
  let h = JSON.stringify(header);
  h += ' '.repeat((8 - ((8 + h.length) % 16) + 16) % 16); // the data 8 bytes past a 16-byte boundary
  const hb = Buffer.from(h);
  const file = Buffer.alloc(8 + hb.length + off);
  file.writeBigUInt64LE(BigInt(hb.length), 0);
  hb.copy(file, 8);
  let at = 8 + hb.length;
  for (const [, , , data] of t) Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(file, at), (at += data.byteLength);
  return file;
}
for (const [name, opts] of [['hf-lm-scales-first', { tied: true, order: 'scales-first' }], ['hf-lm-tables-below', { tied: false, order: 'tables-below' }]]) {
  const bytes = hfCheckpoint(opts);
  writeFileSync(new URL(`${name}.safetensors`, st), bytes);
  console.log(`${name}.safetensors: ${bytes.length} bytes`);
}
