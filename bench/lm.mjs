// lm.mjs — language-model speed: prefill and decode tokens/s of tl.LanguageModel (wasm SIMD128,
// one thread) for the trained character model and for larger BitNet-b1.58-shaped models with
// random weights, with int8 and float activations, beside the physical limit of one decoded token
// (the bytes it reads: packed projections + the float32 head / measured read bandwidth).
//
//   node bench/lm.mjs [--models charlm,bitnet-64m] [--tokens 64] [--budget 3000]
//   node bench/lm.mjs --browser     the same in headless Chromium (bench/lm-browser.mjs, bench/lm-page/)
//   node bench/lm.mjs --heap        JS memory while LanguageModel.fromURL loads a packed model (bench/lm-heap.mjs)
//
// Not here yet (issue 17): the BitNet-b1.58-2B4T shape (30 layers, dim 2560, vocab 128256: its
// float32 head alone is 1.3 GB; it needs f16/int8 embeddings and a streaming loader) and
// llama.cpp's wasm build (@wllama/wllama) on the same weights as GGUF TQ2_0 (needs a GGUF writer).
import { readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';

import { init } from '../js/node.js';
import { benchArgs } from './args.mjs';
import { readBandwidth } from './baselines.mjs';

const USAGE = 'usage: node bench/lm.mjs [--models charlm,bitnet-64m,bitnet-160m] [--tokens 64] [--budget 3000] [--browser | --heap]';
const o = benchArgs('lm.mjs', USAGE, {
  models: { type: 'string', default: 'charlm,bitnet-64m,bitnet-160m' },
  tokens: { type: 'string', default: '64' },
  budget: { type: 'string', default: '3000' },
  browser: { type: 'boolean', default: false },
  heap: { type: 'boolean', default: false },
});

// BitNet-b1.58-shaped configs (squared ReLU, sub-norms, GQA 4:1, tied embeddings), random weights
const SHAPES = {
  'bitnet-64m': { hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 3, vocab_size: 8192 },
  'bitnet-160m': { hidden_size: 1024, intermediate_size: 2816, num_hidden_layers: 16, num_attention_heads: 16, num_key_value_heads: 4, vocab_size: 16384 },
};

/** A float32 safetensors file of random weights for a config (xorshift32, seed 1). */
function randomCheckpoint(c) {
  const D = c.hidden_size, F = c.intermediate_size, hd = D / c.num_attention_heads;
  const Q = c.num_attention_heads * hd, KV = c.num_key_value_heads * hd;
  const t = [['model.embed_tokens.weight', [c.vocab_size, D], 1], ['model.norm.weight', [D], 0]];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    t.push([p + 'input_layernorm.weight', [D], 0], [p + 'self_attn.q_proj.weight', [Q, D], 1],
      [p + 'self_attn.k_proj.weight', [KV, D], 1], [p + 'self_attn.v_proj.weight', [KV, D], 1],
      [p + 'self_attn.attn_sub_norm.weight', [Q], 0], [p + 'self_attn.o_proj.weight', [D, Q], 1],
      [p + 'post_attention_layernorm.weight', [D], 0], [p + 'mlp.gate_proj.weight', [F, D], 1],
      [p + 'mlp.up_proj.weight', [F, D], 1], [p + 'mlp.ffn_sub_norm.weight', [F], 0],
      [p + 'mlp.down_proj.weight', [D, F], 1]);
  }
  const header = {};
  let off = 0;
  for (const [name, shape] of t) {
    const n = shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [off, off + 4 * n] };
    off += 4 * n;
  }
  let h = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (h.length % 8)) % 8;
  h = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const file = new Uint8Array(8 + h.length + off);
  new DataView(file.buffer).setBigUint64(0, BigInt(h.length), true);
  file.set(h, 8);
  const f = new Float32Array(file.buffer, 8 + h.length, off / 4);
  let x = 1, at = 0;
  for (const [, shape, random] of t) {
    const n = shape.reduce((a, b) => a * b, 1);
    for (let i = 0; i < n; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      f[at++] = random ? (x | 0) / 2 ** 31 * 0.05 : 1 + (x | 0) / 2 ** 31 * 0.1;
    }
  }
  return file;
}

async function modelFiles(name) {
  if (name === 'charlm') {
    const dir = new URL('../test/fixtures/lm/charlm/', import.meta.url);
    return { config: await readFile(new URL('config.json', dir)), weights: await readFile(new URL('model.safetensors', dir)) };
  }
  const c = SHAPES[name];
  if (!c) throw new Error(`unknown model ${name} (have charlm, ${Object.keys(SHAPES).join(', ')})`);
  const config = { ...c, model_type: 'bitnet', hidden_act: 'relu2', tie_word_embeddings: true, rms_norm_eps: 1e-5, rope_theta: 500000, max_position_embeddings: 4096 };
  return { config, weights: randomCheckpoint(config) };
}

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

const tl = await init();
const tokens = Number(o.tokens), budget = Number(o.budget);
if (o.browser || o.heap) {
  await (o.browser ? inBrowser() : heap());
  process.exit(0);
}
console.log(`# bench/lm.mjs — ${new Date().toISOString().slice(0, 16)} UTC, Node ${process.version}, ${cpus().length} x ${cpus()[0]?.model}, ` +
  `tilelli ${tl.version} (${tl.simd ? 'SIMD128' : 'scalar'}, 1 thread)`);
console.log('\n| model | ternary weights | activations | prefill tok/s (64) | decode tok/s | bytes / token | limit tok/s | of limit |');
console.log('|---|---|---|---|---|---|---|---|');
for (const name of o.models.split(',')) {
  const files = await modelFiles(name);
  const lm = tl.LanguageModel.load(files, { context: 256 });
  const c = lm.config;
  const packed = lm.save().length;
  const headBytes = c.vocab_size * c.hidden_size * 4;
  const embedBytes = headBytes * (c.tie_word_embeddings ? 1 : 2);
  const projBytes = packed - embedBytes; // packed file: projections + scales + norms (+ the embedding)
  const perToken = projBytes + headBytes;
  const bw = await readBandwidth(Math.min(perToken, 256 * 1024 * 1024), { streams: [4] });
  const gbps = bw.medianGbps ?? bw.byStreams?.[4]?.medianGbps ?? bw.gbps;
  const ternary = c.num_hidden_layers * (c.hidden_size * (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim +
    c.num_attention_heads * c.head_dim * c.hidden_size + 3 * c.hidden_size * c.intermediate_size);
  for (const activations of ['int8', 'float']) {
    lm.setActivations(activations);
    const prefill = [], decode = [];
    const t0 = performance.now();
    while (performance.now() - t0 < budget || prefill.length < 3) {
      lm.reset();
      const ids = Array.from({ length: 64 }, (_, i) => (i * 7 + 3) % c.vocab_size);
      const a = performance.now();
      lm.logits(ids);
      prefill.push(64 / ((performance.now() - a) / 1000));
      const b = performance.now();
      for (let i = 0; i < Math.min(tokens, lm.context - 64); i++) lm.logits([(i * 13) % c.vocab_size]);
      decode.push(Math.min(tokens, lm.context - 64) / ((performance.now() - b) / 1000));
    }
    const limit = (gbps * 1e9) / perToken;
    console.log(`| ${name} | ${(ternary / 1e6).toFixed(1)}M | ${activations} | ${median(prefill).toFixed(0)} | ${median(decode).toFixed(1)} | ` +
      `${(perToken / 1048576).toFixed(1)} MiB | ${limit.toFixed(0)} (${gbps.toFixed(1)} GB/s) | ${(100 * median(decode) / limit).toFixed(0)}% |`);
  }
  lm.free();
}
console.log(`\nbytes / token: what one decoded token reads at least: the packed projections (2 bits per weight + scales)
and the float32 head (the tied embedding); limit: those bytes / the wasm read bandwidth measured here over a buffer of
the same size (4 streams, median). Prefill: 64 tokens from an empty cache; decode: ${tokens} single steps after it.
Medians over repeated runs (${budget} ms per line). Load average at the end: ${loadavg()[0].toFixed(1)} on ${cpus().length} cores.`);

/** The same measurement in Chromium (bench/lm-browser.mjs). */
async function inBrowser() {
  const { browserTable, lmInChromium } = await import('./lm-browser.mjs');
  const models = [], ternary = {};
  for (const name of o.models.split(',')) {
    const files = await modelFiles(name);
    const lm = tl.LanguageModel.load(files, { context: 256 });
    const c = lm.config;
    ternary[name] = `${(c.num_hidden_layers * (c.hidden_size * (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim +
      c.num_attention_heads * c.head_dim * c.hidden_size + 3 * c.hidden_size * c.intermediate_size) / 1e6).toFixed(1)}M`;
    lm.free();
    models.push({ name, files });
  }
  const r = await lmInChromium({ tl, models, tokens, budget });
  console.log(`# bench/lm.mjs --browser — ${new Date().toISOString().slice(0, 16)} UTC`);
  for (const line of browserTable(r, ternary)) console.log(line);
}

/** JS memory of LanguageModel.fromURL against the file size (bench/lm-heap.mjs), for each random model. */
async function heap() {
  const { HEAP_HEADER, heapLines, measureLoad } = await import('./lm-heap.mjs');
  console.log(`# bench/lm.mjs --heap — ${new Date().toISOString().slice(0, 16)} UTC, Node ${process.version}: JS memory while loading the packed file over HTTP`);
  console.log(HEAP_HEADER.join('\n'));
  for (const name of o.models.split(',').filter((n) => SHAPES[n])) {
    const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const lm = tl.LanguageModel.load(await modelFiles(name), { context: 256 });
    const packed = lm.save();
    lm.free();
    const dir = await mkdtemp(join(tmpdir(), 'tilelli-lm-heap-'));
    try {
      await writeFile(join(dir, 'packed.safetensors'), packed);
      for (const line of heapLines(name, await measureLoad(join(dir, 'packed.safetensors')))) console.log(line);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  console.log('\npeak JS memory: the largest heapUsed + arrayBuffers of a fresh Node sampled after each chunk and after the load, above the level');
  console.log('before it (no GC forced between). Target (issue 17): below 1.5x the file. Wasm memory (not JS) holds the file while C reads it, then the model.');
}
