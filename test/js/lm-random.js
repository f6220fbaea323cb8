// lm-random.js — a BitNet-shaped language model with random weights, for the tests that need a
// model larger than the fixtures (a long generation to cancel, a file to stream): config.json and
// a float32 safetensors file under the Hugging Face names of docs/FORMATS.md. Plain ESM, no
// imports: the browser pages bundle it too.

/** The config of a random model: hidden, layers, vocab, ffn, context given; the rest BitNet-like. */
export function randomConfig({ hidden = 128, layers = 2, heads = 4, kvHeads = 2, ffn = 256, vocab = 256, context = 2048 } = {}) {
  return {
    model_type: 'bitnet', vocab_size: vocab, hidden_size: hidden, intermediate_size: ffn, num_hidden_layers: layers,
    num_attention_heads: heads, num_key_value_heads: kvHeads, max_position_embeddings: context, rms_norm_eps: 1e-5,
    rope_theta: 10000, hidden_act: 'relu2', tie_word_embeddings: true,
  };
}

/** The float32 safetensors file of random weights for config c (xorshift32 from seed). */
export function randomWeights(c, seed = 1) {
  const D = c.hidden_size, F = c.intermediate_size, hd = D / c.num_attention_heads;
  const Q = c.num_attention_heads * hd, KV = c.num_key_value_heads * hd;
  const t = [['model.embed_tokens.weight', [c.vocab_size, D], 1], ['model.norm.weight', [D], 0]];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    t.push([`${p}input_layernorm.weight`, [D], 0], [`${p}self_attn.q_proj.weight`, [Q, D], 1],
      [`${p}self_attn.k_proj.weight`, [KV, D], 1], [`${p}self_attn.v_proj.weight`, [KV, D], 1],
      [`${p}self_attn.attn_sub_norm.weight`, [Q], 0], [`${p}self_attn.o_proj.weight`, [D, Q], 1],
      [`${p}post_attention_layernorm.weight`, [D], 0], [`${p}mlp.gate_proj.weight`, [F, D], 1],
      [`${p}mlp.up_proj.weight`, [F, D], 1], [`${p}mlp.ffn_sub_norm.weight`, [F], 0],
      [`${p}mlp.down_proj.weight`, [D, F], 1]);
  }
  const header = {};
  let off = 0;
  for (const [name, shape] of t) {
    const n = shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [off, off + 4 * n] };
    off += 4 * n;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8) json += ' ';
  const h = new TextEncoder().encode(json);
  const file = new Uint8Array(8 + h.length + off);
  new DataView(file.buffer).setBigUint64(0, BigInt(h.length), true);
  file.set(h, 8);
  const f = new Float32Array(file.buffer, 8 + h.length, off / 4);
  let x = seed >>> 0 || 1, at = 0;
  for (const [, shape, random] of t) {
    const n = shape.reduce((a, b) => a * b, 1);
    for (let i = 0; i < n; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      f[at++] = random ? ((x | 0) / 2 ** 31) * 0.05 : 1 + ((x | 0) / 2 ** 31) * 0.1;
    }
  }
  return file;
}
