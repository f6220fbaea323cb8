// browser-lm.test.js — the language model in Chromium: on a page's main thread (relaxed-SIMD and
// scalar builds) and in a module worker (loadLanguageModel, the package's worker-entry.js bundled
// as an app would), the trained character model writes Node's greedy and seeded tokens and gives
// Node's logits bit for bit, and a PyTorch golden fixture gives its greedy ids; the worker loads
// from URLs with progress; LanguageModel.fromURL streams the packed file; an AbortSignal cancels a
// long generation in the worker between two tokens, which then goes on with the same tokens.
//
// test/browser/lm-page.js and js/worker-entry.js are bundled into
// test-artifacts/browser-lm/site/app/ (git-ignored) beside copies of dist/*.wasm; the fixtures go
// under site/lm/. A node:http server on 127.0.0.1 serves it; Debian's Chromium through
// playwright-core opens lm.html; any console error, page error, failed or off-site request fails.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { init } from 'tilelli';

import { bundleForBrowser, CHROMIUM, launchChromium, serveStatic, watchPage, withoutStreamedAborts } from './harness.js';
import { randomConfig, randomWeights } from '../js/lm-random.js';
import { GOLDEN_CASE, lmSample } from './lm-sample.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const artifacts = join(root, 'test-artifacts', 'browser-lm');
const site = join(artifacts, 'site');
const fixtures = join(root, 'test', 'fixtures', 'lm');
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm',
  '.json': 'application/json', '.safetensors': 'application/octet-stream',
};

/** The sample's inputs as Node reads them: the packed charlm and the golden case. */
async function sampleFiles(tl) {
  const read = (name, file) => readFile(join(fixtures, name, file));
  const lm = tl.LanguageModel.load({ config: await read('charlm', 'config.json'), weights: await read('charlm', 'model.safetensors') });
  const packed = lm.save();
  lm.free();
  return {
    charlm: { weights: packed, tokenizer: await read('charlm', 'tokenizer.json') },
    golden: { config: await read(GOLDEN_CASE, 'config.json'), weights: await read(GOLDEN_CASE, 'model.safetensors'), golden: JSON.parse(await read(GOLDEN_CASE, 'golden.json')) },
  };
}

async function buildSite(files) {
  await rm(site, { recursive: true, force: true });
  await mkdir(join(site, 'app'), { recursive: true });
  await mkdir(join(site, 'lm', GOLDEN_CASE), { recursive: true });
  await copyFile(join(root, 'test', 'browser', 'lm.html'), join(site, 'lm.html'));
  for (const build of ['relaxed', 'simd', 'scalar']) await copyFile(join(root, 'dist', `tilelli-${build}.wasm`), join(site, 'app', `tilelli-${build}.wasm`));
  await writeFile(join(site, 'lm', 'charlm.safetensors'), files.charlm.weights);
  await writeFile(join(site, 'lm', 'tokenizer.json'), files.charlm.tokenizer);
  for (const f of ['config.json', 'model.safetensors', 'golden.json']) await copyFile(join(fixtures, GOLDEN_CASE, f), join(site, 'lm', GOLDEN_CASE, f));
  const result = await bundleForBrowser(root, { 'lm-page': 'test/browser/lm-page.js', 'lm-worker': 'js/worker-entry.js' }, join(site, 'app'));
  assert.deepEqual(result.warnings, [], 'esbuild warns about nothing');
  for (const [file, output] of Object.entries(result.metafile.outputs)) {
    if (!file.endsWith('.js')) continue;
    assert.ok(!Object.keys(output.inputs).includes('js/node.js'), `${file} bundles no js/node.js`);
  }
}

test('Chromium: the language model on the main thread and in a worker writes Node\'s tokens; URLs with progress; cancel reaches the worker',
  { timeout: 120_000 }, async (t) => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: scripts/setup.sh installs Debian's chromium (or set TILELLI_CHROMIUM)`);
    const started = performance.now();
    const tl = await init({ build: 'simd' });
    const files = await sampleFiles(tl);
    const expected = {
      simd: await lmSample((f) => tl.LanguageModel.load(f), files),
      scalar: await lmSample(async (f) => (await init({ build: 'scalar' })).LanguageModel.load(f), files),
    };
    assert.deepEqual(expected.simd.golden.greedy, files.golden.golden.greedy, 'Node gives the PyTorch golden\'s greedy ids');
    await buildSite(files);
    const server = await serveStatic(site, TYPES);
    const problems = [];
    let browser;
    try {
      browser = await launchChromium();
      const page = await browser.newPage({ viewport: { width: 900, height: 600 } });
      page.setDefaultTimeout(60_000);
      watchPage(page, problems, `${server.origin}/`);
      const workers = [];
      page.on('worker', (w) => workers.push(w.url()));
      await page.goto(`${server.origin}/lm.html`, { waitUntil: 'load' });
      await page.waitForFunction(() => window.lmReport !== undefined);
      const report = await page.evaluate(() => window.lmReport);
      await mkdir(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, 'page.png') });
      assert.ok(report.ok, `the page failed: ${report.error}\n${problems.join('\n')}`);

      assert.equal(report.main.relaxed.build, 'relaxed', 'Chromium runs the relaxed-SIMD build');
      assert.equal(report.main.scalar.build, 'scalar');
      // the relaxed build's integer dot products are exact: the SIMD128 numbers
      assert.deepEqual(report.main.relaxed.result, expected.simd, 'main thread, relaxed build: Node\'s tokens and logits');
      assert.deepEqual(report.main.scalar.result, expected.scalar, 'main thread, scalar build: Node\'s');
      assert.deepEqual(report.worker.bytes, expected.simd, 'in a worker: Node\'s tokens and logits');
      assert.deepEqual(report.main.relaxed.result.golden.greedy, files.golden.golden.greedy, 'the golden\'s greedy ids');
      assert.deepEqual(report.worker.urls.greedy, expected.simd.charlm.greedy, 'loaded from URLs in the worker');
      assert.deepEqual(report.worker.urls.last, { file: 'weights', loaded: files.charlm.weights.length, total: files.charlm.weights.length });
      assert.ok(report.worker.urls.events >= 2);
      assert.deepEqual(report.main.fromURL, expected.simd.charlm.logits, 'LanguageModel.fromURL in the page');

      const c = report.cancel;
      assert.equal(c.error, 'AbortError');
      assert.equal(c.tokensAfter, c.tokensAtAbort, 'no token after the abort');
      assert.ok(c.position > 4 + 4 && c.position < 4 + 3999, `the worker stopped mid-generation, at position ${c.position}`);
      const config = randomConfig({ hidden: 128, layers: 2, vocab: 256, context: 4096 });
      const node = tl.LanguageModel.load({ config, weights: randomWeights(config, 3) });
      assert.deepEqual(c.after, Array.from((await node.generate([1, 2, 3, 4], { maxNewTokens: 20, temperature: 1, seed: 11 })).tokens), 'after the cancel: Node\'s tokens');
      node.free();

      assert.ok(workers.some((u) => u.endsWith('/app/lm-worker.js')), `the worker bundle ran: ${workers.join(', ')}`);
      assert.deepEqual(server.requests.filter((r) => r.status !== 200), [], 'every request was served');
      // the streamed downloads were complete (progress, and the same numbers as Node's)
      assert.deepEqual(withoutStreamedAborts(problems, ['/lm/charlm.safetensors', '/lm/tokenizer.json']), [], 'no console error, page error or failed request');
      t.diagnostic(`greedy: ${JSON.stringify(report.main.relaxed.result.charlm.greedyText)}; cancel: ${JSON.stringify(c)}`);
    } finally {
      await browser?.close();
      await server.close();
    }
    t.diagnostic(`total ${Math.round(performance.now() - started)} ms`);
  });
