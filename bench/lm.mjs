// lm.mjs — language-model speed: prefill and decode tokens/s of tl.LanguageModel (wasm SIMD128,
// one thread) for the trained character model and for larger BitNet-b1.58-shaped models with
// random weights, with int8 and float activations, beside the physical limit of one decoded token
// (the bytes it reads: packed projections + the float32 head / measured read bandwidth).
//
//   node bench/lm.mjs [--models charlm,bitnet-64m] [--tokens 64] [--budget 3000] [--embedding float16]
//   node bench/lm.mjs --models bitnet-2b4t --embedding int8     the BitNet-b1.58-2B4T shape
//   node bench/lm.mjs --wllama [--models bitnet-64m,bitnet-160m] [--rounds 5] [--tokens 32]
//   node bench/lm.mjs --browser     the same in headless Chromium (bench/lm-browser.mjs, bench/lm-page/)
//   node bench/lm.mjs --heap        JS memory while LanguageModel.fromURL loads a packed model (bench/lm-heap.mjs)
//
// bitnet-2b4t: 30 layers, dim 2560, 20 heads / 5 KV heads, FFN 6912, vocab 128256, tied; made as a
// Hugging Face packed checkpoint (random 2-bit codes, a weight_scale per projection, a float16
// embedding) since its float32 checkpoint would be 9.6 GB; the line adds the memory the model holds
// (tl_mem_live_bytes) against its packed weights + KV cache, and the wasm memory's size.
// --wllama: llama.cpp's wasm build (@wllama/wllama, one thread) on the same weights, in one Chromium
// page (bench/lm-wllama.mjs): the models written once as GGUF TQ2_0 by tilelli's writer, decoded by
// both; SiLU versions of the shapes (llama.cpp's "bitnet" graph is SiLU).
import { readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';

import { init } from '../js/node.js';
import { benchArgs } from './args.mjs';
import { readBandwidth } from './baselines.mjs';

const USAGE = 'usage: node bench/lm.mjs [--models charlm,bitnet-64m,bitnet-160m,bitnet-2b4t] [--tokens 64] [--budget 3000] ' +
  '[--embedding float32|float16|int8] [--context 256] | --wllama [--models bitnet-64m,bitnet-160m] [--rounds 5] [--tokens 32] | --browser | --heap';
const o = benchArgs('lm.mjs', USAGE, {
  models: { type: 'string' },
  tokens: { type: 'string' },
  budget: { type: 'string', default: '3000' },
  embedding: { type: 'string', default: 'float32' },
  context: { type: 'string', default: '256' },
  wllama: { type: 'boolean', default: false },
  rounds: { type: 'string', default: '5' },
  browser: { type: 'boolean', default: false },
  heap: { type: 'boolean', default: false },
});
o.models ??= o.wllama ? 'bitnet-64m,bitnet-160m' : 'charlm,bitnet-64m,bitnet-160m';
o.tokens ??= o.wllama ? '32' : '64';

// BitNet-b1.58-shaped configs (squared ReLU, sub-norms, GQA 4:1, tied embeddings), random weights
const SHAPES = {
  'bitnet-64m': { hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 3, vocab_size: 8192 },
  'bitnet-160m': { hidden_size: 1024, intermediate_size: 2816, num_hidden_layers: 16, num_attention_heads: 16, num_key_value_heads: 4, vocab_size: 16384 },
  'bitnet-2b4t': { hidden_size: 2560, intermediate_size: 6912, num_hidden_layers: 30, num_attention_heads: 20, num_key_value_heads: 5, vocab_size: 128256, packed: true },
};

/** A Hugging Face packed BitNet checkpoint of random weights (xorshift32, seed 1) for a config:
 * each projection U8 [rows / 4, cols] of 2-bit codes 0..2 and a weight_scale, norms float32 near 1,
 * the embedding float16 (values in +-1/16). Written here because a float32 file of this size would
 * not fit; the layout is the one tilelli's reader documents (include/tilelli.h, tl_lm_load). */
function randomPacked(c) {
  const D = c.hidden_size, F = c.intermediate_size, hd = D / c.num_attention_heads;
  const Q = c.num_attention_heads * hd, KV = c.num_key_value_heads * hd;
  const t = [['model.embed_tokens.weight', 'F16', [c.vocab_size, D]], ['model.norm.weight', 'F32', [D]]];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    const proj = (n, r, k) => t.push([p + n + '.weight', 'U8', [r / 4, k]], [p + n + '.weight_scale', 'F32', [1]]);
    t.push([p + 'input_layernorm.weight', 'F32', [D]], [p + 'self_attn.attn_sub_norm.weight', 'F32', [Q]],
      [p + 'post_attention_layernorm.weight', 'F32', [D]], [p + 'mlp.ffn_sub_norm.weight', 'F32', [F]]);
    proj('self_attn.q_proj', Q, D), proj('self_attn.k_proj', KV, D), proj('self_attn.v_proj', KV, D), proj('self_attn.o_proj', D, Q);
    proj('mlp.gate_proj', F, D), proj('mlp.up_proj', F, D), proj('mlp.down_proj', D, F);
  }
  const size = { F16: 2, F32: 4, U8: 1 };
  const header = {};
  let off = 0;
  for (const [name, dtype, shape] of t) {
    const n = shape.reduce((a, b) => a * b, 1) * size[dtype];
    header[name] = { dtype, shape, data_offsets: [off, off + n] };
    off += n + ((4 - (n % 4)) % 4);
    header[name].data_offsets[1] = off; // padded to 4 bytes: U8 tensors are whole rows of 4-byte words here
    if (n % 4) throw new Error('odd tensor size');
  }
  let h = JSON.stringify(header);
  h += ' '.repeat((8 - (h.length % 8)) % 8);
  const hb = new TextEncoder().encode(h);
  const file = new Uint8Array(8 + hb.length + off);
  new DataView(file.buffer).setBigUint64(0, BigInt(hb.length), true);
  file.set(hb, 8);
  const base = 8 + hb.length;
  const valid = []; // the 81 bytes whose four 2-bit codes are all trits
  for (let b = 0; b < 256; b++) if ([0, 2, 4, 6].every((s) => ((b >> s) & 3) !== 3)) valid.push(b);
  let x = 1;
  const rnd = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x >>> 0; };
  const dv = new DataView(file.buffer);
  for (const [name, dtype] of t) {
    const [a, b] = header[name].data_offsets;
    if (dtype === 'U8') for (let i = base + a; i < base + b; i++) file[i] = valid[rnd() % 81];
    else if (dtype === 'F16') for (let i = base + a; i < base + b; i += 2) dv.setUint16(i, (rnd() & 0x83ff) | 0x2c00, true); // +-(1..2)/16
    else if (name.endsWith('weight_scale')) dv.setFloat32(base + a, 1 / Math.sqrt(name.includes('down_proj') ? F : D), true);
    else for (let i = base + a; i < base + b; i += 4) dv.setFloat32(i, 1 + ((rnd() | 0) / 2 ** 31) * 0.1, true);
  }
  return file;
}

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
  const { packed, ...c } = SHAPES[name] ?? {};
  if (!SHAPES[name]) throw new Error(`unknown model ${name} (have charlm, ${Object.keys(SHAPES).join(', ')})`);
  const config = { ...c, model_type: 'bitnet', hidden_act: o.wllama ? 'silu' : 'relu2', tie_word_embeddings: true, rms_norm_eps: 1e-5, rope_theta: 500000, max_position_embeddings: 4096 };
  if (packed) return { config: { ...config, quantization_config: { quant_method: 'bitnet', linear_class: 'autobitlinear' } }, weights: randomPacked(config) };
  return { config, weights: randomCheckpoint(config) };
}

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

// the SIMD128 build on one thread, as the header line says (init() would take 2 threads here)
const tl = await init({ simd: true, threads: 1 });
const tokens = Number(o.tokens), budget = Number(o.budget), context = Number(o.context);
const embBytes = { float32: 4, float16: 2, int8: 1 }[o.embedding];
if (!embBytes) throw new Error(`--embedding must be float32, float16 or int8, got ${o.embedding}`);
if (o.browser || o.heap) {
  await (o.browser ? inBrowser() : heap());
  process.exit(0);
}
console.log(`# bench/lm.mjs — ${new Date().toISOString().slice(0, 16)} UTC, Node ${process.version}, ${cpus().length} x ${cpus()[0]?.model}, ` +
  `tilelli ${tl.version} (${tl.simd ? 'SIMD128' : 'scalar'}, ${tl.threads} thread${tl.threads > 1 ? 's' : ''})`);

/** Ternary weights of a config, and the bytes one decoded token reads: the i2 projections (2 bits
 * per weight + a float32 scale per row) and the head (the tied embedding) in its table's form. */
function sizes(c) {
  const D = c.hidden_size, F = c.intermediate_size, hd = c.head_dim, Q = c.num_attention_heads * hd, KV = c.num_key_value_heads * hd;
  const ternary = c.num_hidden_layers * (D * (Q + 2 * KV) + Q * D + 3 * D * F);
  const rows = c.num_hidden_layers * (Q + 2 * KV + D + 2 * F + D);
  const elt = { float16: 2, int8: 1 }[c.tilelli_embedding] ?? 4;
  const head = c.vocab_size * D * elt + (elt === 1 ? 4 * c.vocab_size : 0);
  const kvCache = 2 * c.num_hidden_layers * c.context * KV * 4;
  return { ternary, proj: ternary / 4 + 4 * rows, head, kvCache, perToken: ternary / 4 + 4 * rows + head * (c.tie_word_embeddings ? 1 : 2) };
}

async function bandwidthFor(bytes) {
  const bw = await readBandwidth(Math.min(bytes, 256 * 1024 * 1024), { streams: [4] });
  return bw.medianGbps ?? bw.byStreams?.[4]?.medianGbps ?? bw.gbps;
}

if (o.wllama) {
  const { runWllama } = await import('./lm-wllama.mjs');
  const models = [];
  for (const name of o.models.split(',')) {
    const lm = tl.LanguageModel.load(await modelFiles(name), { context, embedding: 'float16' });
    models.push({ name, lm });
  }
  const { results, chromium } = await runWllama(models, { rounds: Number(o.rounds), steps: tokens });
  console.log(`\nChromium ${chromium} (headless), one page; tilelli SIMD128 and @wllama/wllama (llama.cpp ${Object.values(results)[0]?.wllamaVersion}), each 1 thread, ` +
    `the same GGUF TQ2_0 file; ${o.rounds} interleaved rounds of ${tokens} decoded tokens, medians`);
  console.log('\n| model (SiLU) | ternary weights | tilelli decode tok/s | wllama decode tok/s | tilelli / wllama | target >= 5x | bytes / token | limit tok/s |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const { name, lm } of models) {
    const r = results[name], z = sizes(r.config), gbps = await bandwidthFor(z.perToken);
    const ratio = r.tilelli / r.wllama;
    console.log(`| ${name} | ${(z.ternary / 1e6).toFixed(1)}M | ${r.tilelli.toFixed(1)} | ${r.wllama.toFixed(1)} | ${ratio.toFixed(2)}x | ` +
      `${ratio >= 5 ? 'MET' : 'NOT MET'} | ${(z.perToken / 1048576).toFixed(1)} MiB | ${((gbps * 1e9) / z.perToken).toFixed(0)} (${gbps.toFixed(1)} GB/s, Node) |`);
    lm.free();
  }
  console.log(`\nwllama: llama.cpp's generic ggml CPU code for TQ2_0 compiled to wasm (SIMD128), its "bitnet" graph (SiLU), activations
quantized per 256-value block (q8_K), an f16 KV cache; its tok/s is its own timings.predicted_per_second (decode only).
tilelli: the same trits and float16 row scales read from that file, int8 activations per token, float16 embedding/head,
float32 KV cache; tok/s from wall clock around single-token logits() calls. Load average at the end: ${loadavg()[0].toFixed(1)}.`);
  process.exit(0);
}

console.log(`\nembedding/head held as ${o.embedding}; context ${context}`);
console.log('\n| model | ternary weights | activations | prefill tok/s (64) | decode tok/s | bytes / token | limit tok/s | of limit |');
console.log('|---|---|---|---|---|---|---|---|');
const memLines = [];
for (const name of o.models.split(',')) {
  const files = await modelFiles(name);
  const before = tl.memoryStats().liveBytes;
  const lm = tl.LanguageModel.load(files, { context, embedding: o.embedding });
  const c = lm.config, z = sizes(c);
  const held = tl.memoryStats().liveBytes - before;
  const wasmHere = tl.memoryStats().wasmBytes;
  memLines.push(`| ${name} | ${((z.proj + z.head * (c.tie_word_embeddings ? 1 : 2)) / 1048576).toFixed(0)} MiB | ${(z.kvCache / 1048576).toFixed(0)} MiB | ` +
    `${(held / 1048576).toFixed(0)} MiB | ${(held / (z.proj + z.head * (c.tie_word_embeddings ? 1 : 2) + z.kvCache)).toFixed(3)}x | ` +
    `${held <= 1.25 * (z.proj + z.head * (c.tie_word_embeddings ? 1 : 2) + z.kvCache) ? 'MET' : 'NOT MET'} | ${(wasmHere / 1048576).toFixed(0)} MiB |`);
  const gbps = await bandwidthFor(z.perToken);
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
    const limit = (gbps * 1e9) / z.perToken;
    console.log(`| ${name} | ${(z.ternary / 1e6).toFixed(1)}M | ${activations} | ${median(prefill).toFixed(0)} | ${median(decode).toFixed(1)} | ` +
      `${(z.perToken / 1048576).toFixed(1)} MiB | ${limit.toFixed(0)} (${gbps.toFixed(1)} GB/s) | ${(100 * median(decode) / limit).toFixed(0)}% |`);
  }
  // its packed file (save()) loaded by a fresh instance: the weights used where they lie. The file
  // is written into the same wasm memory as the model: a model over ~2 GiB (2B4T with a float32
  // head) leaves no room for it under the 4 GiB limit.
  let packed;
  try {
    packed = lm.save();
  } catch (e) {
    if (e.code !== 'OUT_OF_MEMORY') throw e;
  }
  lm.free();
  if (packed) {
    const fresh = await init({ simd: true, threads: 1 });
    fresh.LanguageModel.load({ weights: packed }, { context }).free();
    memLines[memLines.length - 1] += ` ${(packed.length / 1048576).toFixed(0)} MiB | ${(fresh.memoryStats().wasmBytes / 1048576).toFixed(0)} MiB |`;
  } else memLines[memLines.length - 1] += ' does not fit beside the model in 4 GiB of wasm memory | |';
}
console.log('\nMemory the model holds (tl_mem_live_bytes after load) against its packed weights + KV cache (target <= 1.25x), and the wasm\n' +
  'memory (it never shrinks: a checkpoint converted into copies leaves the file in it; a Hugging Face one whose table is held\n' +
  'as stored, or as float16 from BF16, is rewritten where it lies and kept); then the\n' +
  'model\'s packed file (save()) loaded in a fresh instance, its weights used where they lie in wasm memory');
console.log('| model | packed weights (+ head) | KV cache | held | held / (weights + KV) | target <= 1.25x | wasm memory | packed file | its load: wasm memory |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const l of memLines) console.log(l);
console.log(`\nbytes / token: what one decoded token reads at least: the packed projections (2 bits per weight + scales)
and the head (the tied embedding, as ${o.embedding}); limit: those bytes / the wasm read bandwidth measured here over a buffer of
the same size (4 streams, median). Prefill: 64 tokens from an empty cache; decode: ${tokens} single steps after it.
Medians over repeated runs (${budget} ms per line). Load average at the end: ${loadavg()[0].toFixed(1)} on ${cpus().length} cores.`);

/** The same measurement in Chromium (bench/lm-browser.mjs). */
async function inBrowser() {
  const { browserTable, lmInChromium } = await import('./lm-browser.mjs');
  const models = [], ternary = {};
  for (const name of o.models.split(',')) {
    const files = await modelFiles(name);
    const lm = tl.LanguageModel.load(files, { context: 256, embedding: o.embedding });
    const c = lm.config;
    ternary[name] = `${(c.num_hidden_layers * (c.hidden_size * (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim +
      c.num_attention_heads * c.head_dim * c.hidden_size + 3 * c.hidden_size * c.intermediate_size) / 1e6).toFixed(1)}M`;
    const { perToken } = sizes(c);
    lm.free();
    models.push({ name, files, perToken });
  }
  const r = await lmInChromium({ tl, models, tokens, budget, embedding: o.embedding });
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
