// demo.test.js — the demo page (demo/, `npm run demo`) in a real browser.
//
// 1. scripts/demo.mjs's buildDemo() builds the site into build/demo/ (git-ignored; the digits file
//    and the default model are reused when their inputs have not changed) and serveDemo() serves
//    it from 127.0.0.1 on a free port.
// 2. Debian's Chromium (/usr/bin/chromium, or $TILELLI_CHROMIUM) through playwright-core, with the
//    flags of browser.test.js. Any console error (page or worker), page error, failed, refused or
//    off-site request fails the test.
// 3. Draw, with the model trained at build time: a test digit (the first 7 of the test split that
//    the same model, run in Node on the same preprocessing, gets right) is loaded onto the canvas;
//    the page must name its class, and the 784 inputs it made from the canvas and the logits must
//    equal Node's. A stroke drawn with the mouse is classified too.
// 4. Train: one full epoch of the 7,996 training digits in the worker (of a 3-epoch run; an epoch
//    takes about a second here); the loss and accuracy charts and the three layer histograms must
//    have been redrawn as it ran; pause (no step while paused), resume, cancel.
// 5. Pack: the trained model is downloaded as i2 and tq1 files; Node loads them with tl.Model and
//    gets the page's predictions on all 2,004 test digits (tl.Model and the int8 path), and the
//    CLI (`tilelli run`) too. Then a test digit the downloaded model gets right in Node is drawn
//    on the page, which must say the same.
// 6. Kernels: the 1024 x 1024 GEMV benchmark runs; the three wasm builds give the same int32 sums.
// 7. Generate: the character language model, loaded in a worker, writes Node's greedy text (100
//    characters) with prefill and decode tokens/s; Stop ends a long sampled text.
// 8. Screenshots (test-artifacts/demo/, git-ignored): each panel at 1280 x 900, the whole page, and
//    the whole page at a phone's 390 x 844 (where nothing may scroll sideways).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { init } from 'tilelli';

import { decodeDigits, inputs, sample } from '../../demo/digits.js';
import { enlarge, toModelInput } from '../../demo/preprocess.js';
import { buildDemo, serveDemo } from '../../scripts/demo.mjs';
import { CHROMIUM, launchChromium, watchPage, withoutStreamedAborts } from './harness.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const artifacts = join(root, 'test-artifacts', 'demo');
const PAD = 280;

/** What the page makes of test digit i loaded onto its canvas, computed in Node. */
const padInput = (testSet, i) => toModelInput(enlarge(sample(testSet, i), PAD, PAD), PAD, PAD);

/** The first test digit of `label` that the model classifies right from the canvas, both ways. */
function pickDigit(tl, bytes, testSet, label) {
  const model = tl.Model.load(bytes), int8 = tl.Model.load(bytes, { activations: 'int8' });
  try {
    for (let i = 0; i < testSet.count; i++) {
      if (testSet.labels[i] !== label) continue;
      const x = padInput(testSet, i);
      if (model.predict(x)[0] === label && int8.predict(x)[0] === label) {
        return { index: i, label, input: x, logits: Array.from(model.run(x)) };
      }
    }
    throw new Error(`no test digit ${label} is classified right`);
  } finally {
    model.free();
    int8.free();
  }
}

test('the demo page: train in a worker, draw, download the packed model, benchmark; laptop and phone',
  { timeout: 120_000 }, async (t) => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: scripts/setup.sh installs Debian's chromium (or set TILELLI_CHROMIUM)`);
    const time = { start: performance.now() };
    const built = await buildDemo({ log: (line) => t.diagnostic(line.trim()) });
    time.built = performance.now();
    const tl = await init();
    const { test: testSet } = decodeDigits(await readFile(join(built.out, 'data', 'digits.bin')));
    const defaultModel = await readFile(join(built.out, 'models', 'default.tlm'));
    await mkdir(artifacts, { recursive: true });

    const server = await serveDemo({ dir: built.out, record: true });
    const problems = [];
    let browser;
    const report = {};
    try {
      browser = await launchChromium();
      time.launched = performance.now();
      const open = async (options) => {
        const page = await browser.newPage({ acceptDownloads: true, ...options });
        page.setDefaultTimeout(30_000);
        watchPage(page, problems, server.url);
        await page.goto(server.url, { waitUntil: 'load' });
        await page.waitForFunction(() => window.demo?.ready || window.demo?.failed);
        const failed = await page.evaluate(() => window.demo.failed);
        assert.equal(failed, undefined, `the page failed to start: ${failed}\n${problems.join('\n')}`);
        return page;
      };
      const page = await open({ viewport: { width: 1280, height: 900 } });
      time.loaded = performance.now();
      const demo = (fn, arg) => page.evaluate(fn, arg);
      assert.equal(await demo(() => crossOriginIsolated), true, 'the server makes the page cross-origin isolated');
      assert.equal((await demo(() => window.demo.model)).source, 'built-in');

      /** Load test digit i with the page's controls; returns the page's classification. */
      const loadDigit = async (i) => {
        await page.fill('#pad-index', String(i));
        await page.click('#pad-load');
        await page.waitForFunction((k) => window.demo.draw.last?.loaded?.index === k, i);
        return demo(() => window.demo.draw.last);
      };
      const checkDraw = (seen, want, what) => {
        assert.equal(seen.top3[0], want.label, `${what}: the page reads test digit #${want.index} as ${seen.top3[0]}, not ${want.label}`);
        assert.equal(seen.int8Class, want.label, `${what}: the int8 path reads #${want.index} as ${seen.int8Class}`);
        assert.equal(seen.input.length, 784);
        const diff = Math.max(...seen.input.map((v, k) => Math.abs(v - want.input[k])));
        assert.ok(diff < 1e-6, `${what}: the canvas gave other inputs than Node's preprocessing (max diff ${diff})`);
        assert.deepEqual(seen.logits, want.logits, `${what}: the page's logits are Node's`);
        assert.equal(seen.top3.length, 3);
        assert.ok(seen.probs[0] >= seen.probs[1] && seen.probs[1] >= seen.probs[2]);
        assert.ok(seen.latencyUs > 0 && seen.int8LatencyUs > 0);
      };

      // --- Draw, with the built-in model ---------------------------------------------------------
      const first = pickDigit(tl, defaultModel, testSet, 7);
      checkDraw(await loadDigit(first.index), first, 'built-in model');
      report.builtin = { index: first.index, accuracy: (await demo(() => window.demo.model)).accuracy };

      // A stroke with the mouse: a vertical line is a 1.
      await page.click('#pad-clear');
      const box = await page.locator('#pad').boundingBox();
      const before = await demo(() => window.demo.draw.classifications);
      await page.mouse.move(box.x + box.width * 0.52, box.y + box.height * 0.15);
      await page.mouse.down();
      for (let k = 1; k <= 12; k++) await page.mouse.move(box.x + box.width * (0.52 - k * 0.004), box.y + box.height * (0.15 + k * 0.058));
      await page.mouse.up();
      await page.waitForFunction((n) => window.demo.draw.classifications > n && window.demo.draw.last, before);
      await page.waitForTimeout(100); // the classification after the last move
      const stroke = await demo(() => window.demo.draw.last);
      assert.equal(stroke.loaded, null);
      assert.equal(stroke.top3[0], 1, `a vertical stroke is read as ${stroke.top3[0]} (top three ${stroke.top3})`);

      // --- Train ----------------------------------------------------------------------------------
      const draws0 = await demo(() => ({ ...window.demo.counters.draws }));
      await page.selectOption('#quantizer', 'per_tensor');
      await page.fill('#epochs', '3');
      await page.selectOption('#subset', '0');
      await page.selectOption('#start-from', 'scratch');
      const trainStart = performance.now();
      await page.click('#train-start');
      await page.waitForFunction(() => window.demo.train.epochEnds >= 1 && window.demo.train.exports >= 1);
      report.epochMs = performance.now() - trainStart;
      await page.waitForFunction(() => window.demo.train.weightsUpdates >= 2); // fetched at most every 400 ms
      const afterEpoch = await demo(() => ({ train: window.demo.train, draws: window.demo.counters.draws, model: window.demo.model }));
      assert.equal(afterEpoch.train.totalSteps, 3 * Math.ceil(7996 / 64));
      assert.ok(afterEpoch.train.events >= 25, `${afterEpoch.train.events} progress events in the first epoch`);
      assert.ok(afterEpoch.train.lossPoints >= 25, 'the loss chart has a point per event');
      assert.ok(afterEpoch.draws.loss - draws0.loss >= 25 && afterEpoch.draws.accuracy - draws0.accuracy >= 25, 'the charts were redrawn at each event');
      for (const k of [0, 1, 2]) {
        assert.ok(afterEpoch.draws[`hist${k}`] - draws0[`hist${k}`] >= 2, `layer ${k + 1}'s histogram was redrawn as training ran`);
      }
      assert.ok(afterEpoch.train.weightsUpdates >= 2);
      assert.ok(afterEpoch.train.testAccuracy[0] > 0.85, `test accuracy after one epoch: ${afterEpoch.train.testAccuracy[0]}`);
      assert.equal(afterEpoch.model.source, 'trained here', 'the epoch\'s model replaced the built-in one');
      assert.ok(afterEpoch.model.accuracy > 0.85);

      // pause: no step while paused; resume; cancel
      await page.click('#train-pause');
      await page.waitForFunction(() => window.demo.train.state === 'paused');
      const paused = await demo(() => ({ step: window.demo.train.step, events: window.demo.train.events, pausedAt: window.demo.train.pausedAt }));
      await page.waitForFunction(() => window.demo.train.weightsStep === window.demo.train.pausedAt);
      await page.waitForTimeout(300);
      await page.locator('#train').screenshot({ path: join(artifacts, 'train.png') });
      const still = await demo(() => ({ step: window.demo.train.step, events: window.demo.train.events }));
      assert.deepEqual(still, { step: paused.step, events: paused.events }, 'no progress while paused');
      assert.ok(paused.pausedAt < afterEpoch.train.totalSteps);
      await page.click('#train-pause'); // Resume
      await page.waitForFunction((s) => window.demo.train.state === 'training' && window.demo.train.step > s, paused.pausedAt);
      await page.click('#train-cancel');
      await page.waitForFunction(() => window.demo.train.state === 'cancelled');
      const cancelled = await demo(() => ({ train: window.demo.train, model: window.demo.model }));
      assert.ok(cancelled.train.step < cancelled.train.totalSteps, 'cancelled before the end');
      assert.equal(cancelled.model.source, 'trained here');
      report.train = { epochs: cancelled.train.epochEnds, pausedAt: paused.pausedAt, cancelledAt: cancelled.train.step, testAccuracy: cancelled.train.testAccuracy };

      // --- Pack: download, load in Node, same predictions -------------------------------------------
      const download = async (format) => {
        await page.selectOption('#pack-format', format);
        const [file] = await Promise.all([page.waitForEvent('download'), page.click('#pack-download')]);
        const path = join(artifacts, file.suggestedFilename());
        await file.saveAs(path);
        return { name: file.suggestedFilename(), path, bytes: new Uint8Array(await readFile(path)) };
      };
      const i2 = await download('i2');
      const tq1 = await download('tq1');
      assert.match(i2.name, /^tilelli-mnist-per-tensor-i2\.tlm$/);
      const sizes = await demo(() => window.demo.pack.sizes);
      assert.equal(sizes.i2, i2.bytes.length);
      assert.equal(sizes.tq1, tq1.bytes.length);
      assert.ok(sizes.tq1 < sizes.i2 && sizes.i2 < sizes.float32 / 10, `sizes ${JSON.stringify(sizes)}`);
      const pagePredictions = await demo((n) => window.demo.predictTest(0, n), testSet.count);
      const testX = inputs(testSet);
      for (const file of [i2, tq1]) {
        const model = tl.Model.load(file.bytes);
        const int8 = tl.Model.load(file.bytes, { activations: 'int8' });
        assert.equal(model.layers.find((L) => L.type === 'linear').weights, file === i2 ? 'i2' : 'tq1');
        assert.deepEqual(Array.from(model.predict(testX)), pagePredictions.model, `${file.name}: Node's tl.Model predicts as the page`);
        assert.deepEqual(Array.from(int8.predict(testX)), pagePredictions.int8, `${file.name}: Node's int8 path predicts as the page's`);
        model.free();
        int8.free();
      }
      const accuracy = pagePredictions.model.filter((p, i) => p === pagePredictions.labels[i]).length / testSet.count;
      assert.equal(accuracy, (await demo(() => window.demo.model.accuracy)));
      // the CLI reads the downloaded file too
      const some = 50;
      const inputsFile = join(artifacts, 'first-test-digits.json');
      await writeFile(inputsFile, JSON.stringify(Array.from({ length: some }, (_, i) => Array.from(sample(testSet, i)))));
      const cli = await promisify(execFile)(process.execPath, [join(root, 'bin', 'tilelli.js'), 'run', i2.path, inputsFile, '--json']);
      assert.deepEqual(JSON.parse(cli.stdout).predictions, pagePredictions.model.slice(0, some), 'tilelli run predicts as the page');
      report.download = { name: i2.name, bytes: i2.bytes.length, tq1: tq1.bytes.length, accuracy };

      // Draw again, with the model trained in the page: a test digit it gets right in Node.
      const second = pickDigit(tl, i2.bytes, testSet, 4);
      checkDraw(await loadDigit(second.index), second, 'trained model');
      report.trained = { index: second.index };

      // --- Kernels ------------------------------------------------------------------------------------
      await page.selectOption('#bench-size', '1024');
      await page.selectOption('#bench-format', 'i2');
      await page.click('#bench-run');
      await page.waitForFunction(() => window.demo.bench.runs >= 1);
      const bench = await demo(() => window.demo.bench.results);
      assert.equal(bench.n, 1024);
      // Chromium runs relaxed SIMD: a row for each of the three builds
      assert.deepEqual(bench.rows.map((r) => r.id), ['relaxed', 'simd', 'scalar', 'float']);
      for (const r of bench.rows) assert.ok(Number.isFinite(r.us) && r.us > 0, `${r.id}: ${r.us} µs`);
      assert.equal(bench.sameSums, true, 'the relaxed, SIMD128 and scalar builds give the same int32 sums');
      assert.ok(bench.relError < 0.05, `int8 activations move the outputs by ${bench.relError}`);
      report.bench = bench;

      // --- Generate: the character model in a worker, greedy text equal to Node's; Stop --------------
      await page.waitForFunction(() => ['ready', 'failed'].includes(window.demo.generate.state));
      const loaded = await demo(() => window.demo.generate);
      assert.equal(loaded.state, 'ready', `the language model loaded: ${loaded.lastError}`);
      assert.ok(loaded.loadEvents >= 2, 'progress while the model downloads');
      const lmBytes = (await stat(join(built.out, 'models', 'charlm.safetensors'))).size;
      assert.deepEqual(loaded.loaded.weights, { loaded: lmBytes, total: lmBytes }, 'the whole packed model arrived');
      assert.equal(loaded.loaded.tokenizer.loaded, loaded.loaded.tokenizer.total);
      const lmFiles = { weights: await readFile(join(built.out, 'models', 'charlm.safetensors')), tokenizer: await readFile(join(built.out, 'models', 'charlm-tokenizer.json')) };
      const nodeLm = tl.LanguageModel.load(lmFiles);
      const greedy = await nodeLm.generate('hacker n. ', { maxNewTokens: 100 });
      nodeLm.free();
      await page.fill('#gen-prompt', 'hacker n. ');
      await page.fill('#gen-temperature', '0');
      await page.fill('#gen-length', '100');
      await page.click('#gen-run');
      await page.waitForFunction(() => window.demo.generate.state === 'done');
      const written = await demo(() => window.demo.generate);
      assert.equal(written.text, greedy.text, 'greedy text in the page\'s worker is Node\'s');
      assert.equal(await page.locator('#gen-out').textContent(), `hacker n. ${greedy.text}`, 'the text is on the page');
      assert.ok(written.prefill.tokensPerSecond > 0 && written.decode.tokensPerSecond > 0);
      assert.equal(written.decode.tokens, 99);
      await page.locator('#generate').screenshot({ path: join(artifacts, 'generate.png') });
      // Stop: a long sampled text, stopped after some characters
      await page.fill('#gen-temperature', '0.8');
      await page.fill('#gen-length', '4000');
      await page.click('#gen-run');
      await page.waitForFunction(() => window.demo.generate.text.length >= 20);
      await page.click('#gen-stop');
      await page.waitForFunction(() => window.demo.generate.state === 'stopped');
      const stopped = await demo(() => window.demo.generate);
      assert.ok(stopped.text.length >= 20 && stopped.text.length < 4000, `stopped after ${stopped.text.length} characters`);
      await page.waitForTimeout(200);
      assert.equal((await demo(() => window.demo.generate.text)).length, stopped.text.length, 'nothing is written after Stop');
      report.generate = { decode: written.decode.tokensPerSecond, prefill: written.prefill.tokensPerSecond, stoppedAt: stopped.text.length };

      // --- Screenshots --------------------------------------------------------------------------------
      for (const id of ['draw', 'pack', 'kernels']) await page.locator(`#${id}`).screenshot({ path: join(artifacts, `${id}.png`) });
      await page.screenshot({ path: join(artifacts, 'laptop.png'), fullPage: true });
      await page.close();

      // --- A phone-sized viewport ---------------------------------------------------------------------
      const phone = await open({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
      await phone.fill('#pad-index', String(first.index));
      await phone.click('#pad-load');
      await phone.waitForFunction(() => window.demo.draw.last?.loaded);
      const widths = await phone.evaluate(() => ({ page: document.documentElement.scrollWidth, viewport: innerWidth }));
      assert.ok(widths.page <= widths.viewport, `nothing scrolls sideways on a phone: the page is ${widths.page} px wide in ${widths.viewport}`);
      await phone.screenshot({ path: join(artifacts, 'phone.png'), fullPage: true });
      await phone.close();
      time.done = performance.now();

      const bad = server.requests.filter((r) => r.status !== 200);
      assert.deepEqual(bad, [], 'every request was served');
      // the Generate panel's streamed downloads were complete (checked above)
      assert.deepEqual(withoutStreamedAborts(problems, ['/models/charlm.safetensors', '/models/charlm-tokenizer.json']), [],
        'no console error, page error, failed or off-site request');
    } finally {
      await browser?.close();
      await server.close();
    }
    const ms = (a, b) => `${Math.round(time[b] - time[a])} ms`;
    t.diagnostic(`build ${ms('start', 'built')}, launch ${ms('built', 'launched')}, page load ${ms('launched', 'loaded')}, ` +
      `the rest ${ms('loaded', 'done')}, total ${Math.round(performance.now() - time.start)} ms`);
    t.diagnostic(`built-in model: test accuracy ${(report.builtin.accuracy * 100).toFixed(2)}%; test digit #${report.builtin.index} (a 7) read right from the canvas`);
    t.diagnostic(`trained in the worker: epoch 1 in ${Math.round(report.epochMs)} ms (7,996 digits), test accuracy ${report.train.testAccuracy.map((a) => `${(a * 100).toFixed(2)}%`).join(', ')}; ` +
      `paused at step ${report.train.pausedAt}, cancelled at ${report.train.cancelledAt}`);
    t.diagnostic(`downloaded ${report.download.name} (${report.download.bytes} B; tq1 ${report.download.tq1} B): Node and the CLI predict as the page, ` +
      `accuracy ${(report.download.accuracy * 100).toFixed(2)}%; test digit #${report.trained.index} (a 4) read right`);
    t.diagnostic(`GEMV 1024 x 1024 i2: ${report.bench.rows.map((r) => `${r.id} ${r.us.toFixed(1)} µs`).join(', ')}`);
    t.diagnostic(`Generate (charlm in a worker): prefill ${report.generate.prefill.toFixed(0)} tokens/s, decode ${report.generate.decode.toFixed(0)} tokens/s; stopped after ${report.generate.stoppedAt} characters`);
    t.diagnostic(`screenshots: ${artifacts}/{train,draw,pack,kernels,generate,laptop,phone}.png`);
  });
