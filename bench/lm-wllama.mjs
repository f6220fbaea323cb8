// lm-wllama.mjs — tilelli against llama.cpp's wasm build (@wllama/wllama, one thread) decoding the
// same weights in the same Chromium page (bench/lm.mjs --wllama calls runWllama).
//
// Node writes each model once as GGUF with TQ2_0 projections (LanguageModel.save({ gguf: 'tq2_0',
// vocabulary: true }): tilelli's own writer, a placeholder vocabulary that llama.cpp's loader needs)
// and serves it on 127.0.0.1 with a page bundled by esbuild (tilelli's browser entry and wllama's ESM
// build) and both runtimes' wasm. The page loads the one GGUF file into both: tilelli through its
// GGUF reader (the same trits and float16 scales, the float16 embedding), wllama with n_threads 1.
// Then rounds, interleaved: tilelli decodes N single tokens after a short prompt (wall clock around
// the N logits() calls), wllama completes N tokens from a prompt of the same length at temperature 0
// (its own timings.predicted_per_second: decode only, EOS banned so it runs all N). Medians over
// rounds. wllama runs llama.cpp's "bitnet" graph (SiLU), so the models here are SiLU too; llama.cpp
// quantizes activations per 256-value block (q8_K) and keeps an f16 KV cache: speed is compared, not
// logits.
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const PAGE_JS = String.raw`
import { init } from '../js/browser.js';
import { Wllama } from '@wllama/wllama/esm/index.js';

const q = new URLSearchParams(location.search);
const models = q.get('models').split(','), rounds = Number(q.get('rounds')), steps = Number(q.get('steps'));
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

async function one(name) {
  const bytes = new Uint8Array(await (await fetch('./' + name + '.gguf')).arrayBuffer());
  const tl = await init({ simd: true });
  const lm = tl.LanguageModel.load({ weights: bytes }, { context: 256 });
  const wl = new Wllama({ default: './wllama.wasm' }, { logger: { debug() {}, log() {}, info() {}, warn() {}, error: console.error } });
  await wl.loadModel([new Blob([bytes])], { n_threads: 1, n_ctx: 256, n_batch: 64, n_gpu_layers: 0, warmup: false });
  const V = lm.vocabSize, prompt = Array.from({ length: 8 }, (_, i) => 300 + ((i * 7) % (V - 300)));
  const ours = [], theirs = [];
  let wlThreads;
  for (let r = 0; r < rounds; r++) {
    lm.reset();
    lm.logits(prompt);
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) lm.logits([300 + ((i * 13) % (V - 300))]);
    ours.push(steps / ((performance.now() - t0) / 1000));
    // the prompt: 8 placeholder tokens ("t300 t307 ..." spelled as the vocabulary's pieces)
    const res = await wl.createCompletion({ prompt: prompt.map((t) => 't' + t).join(''), max_tokens: steps, temperature: 0,
      cache_prompt: false, ignore_eos: true, logit_bias: { 2: -1e9 } });
    const t = res.timings;
    if (!t || !(t.predicted_n >= steps - 1)) throw new Error('wllama decoded ' + (t && t.predicted_n) + ' tokens of ' + steps);
    theirs.push(t.predicted_per_second);
  }
  const info = { config: lm.config, tilelli: median(ours), wllama: median(theirs), rounds, steps,
    wllamaVersion: Wllama.getLibllamaVersion ? Wllama.getLibllamaVersion() : '?', crossOriginIsolated: self.crossOriginIsolated };
  lm.free();
  await wl.exit();
  return info;
}

async function main() {
  const out = {};
  for (const m of models) out[m] = await one(m);
  return out;
}
main().then((r) => { window.benchResult = { ok: true, r }; }, (e) => { window.benchResult = { ok: false, error: String(e && e.stack || e) }; });
`;

/**
 * models: [{ name, lm }] (tilelli LanguageModels in Node, SiLU, TQ2_0-writable: rows of 256-weight
 * blocks); returns { [name]: { tilelli, wllama (tok/s medians), ... } } from one Chromium page.
 */
export async function runWllama(models, { rounds = 5, steps = 32 } = {}) {
  const { bundleForBrowser, launchChromium, serveStatic, watchPage } = await import('../test/runtimes/harness.js');
  const site = await mkdtemp(join(tmpdir(), 'tilelli-lm-wllama-'));
  try {
    await writeFile(join(site, 'page-src.js'), PAGE_JS.replace("'../js/browser.js'", JSON.stringify(join(ROOT, 'js', 'browser.js')))
      .replace("'@wllama/wllama/esm/index.js'", JSON.stringify(join(ROOT, 'node_modules', '@wllama', 'wllama', 'esm', 'index.js'))));
    const built = await bundleForBrowser(ROOT, { page: join(site, 'page-src.js') }, join(site, 'app'));
    if (built.errors.length) throw new Error(built.errors.map((e) => e.text).join('\n'));
    await mkdir(join(site, 'dist'), { recursive: true }); // the bundled loader looks in ../dist/ (as browser.test.js serves it)
    for (const b of ['simd', 'scalar', 'relaxed']) {
      for (const d of ['app', 'dist']) await copyFile(join(ROOT, 'dist', `tilelli-${b}.wasm`), join(site, d, `tilelli-${b}.wasm`));
    }
    await copyFile(join(ROOT, 'node_modules/@wllama/wllama/esm/wasm/wllama.wasm'), join(site, 'app', 'wllama.wasm'));
    for (const { name, lm } of models) await writeFile(join(site, 'app', `${name}.gguf`), lm.save({ gguf: 'tq2_0', vocabulary: true }));
    await writeFile(join(site, 'app', 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>lm</title><script type="module" src="page.js"></script>\n');
    const server = await serveStatic(site, { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm', '.gguf': 'application/octet-stream' });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const problems = [];
      watchPage(page, problems, `${server.origin}/`);
      page.setDefaultTimeout(1_800_000);
      const query = new URLSearchParams({ models: models.map((m) => m.name).join(','), rounds: String(rounds), steps: String(steps) });
      await page.goto(`${server.origin}/app/index.html?${query}`);
      await page.waitForFunction(() => window.benchResult !== undefined, null, { timeout: 1_800_000, polling: 1000 });
      const r = await page.evaluate(() => window.benchResult);
      if (!r.ok) throw new Error(`the page failed: ${r.error}\n${problems.join('\n')}`);
      return { results: r.r, chromium: browser.version() };
    } finally {
      await browser.close();
      await server.close();
    }
  } finally {
    await rm(site, { recursive: true, force: true });
  }
}
