// browser.test.js — the sample in Chromium: on a page's main thread (relaxed-SIMD, SIMD and scalar
// builds; init() without options must pick relaxed) and in a module worker, through the package's
// "browser" entry, compared value for value with Node.
//
// 1. esbuild bundles test/browser/page.js and worker.js (both import 'tilelli' by name and
//    test/runtimes/sample.js) as a browser app would be bundled: platform browser, ESM, the
//    "browser" condition. Into test-artifacts/browser/site/ (git-ignored): index.html, app/ (the
//    two bundles and copies of dist/*.wasm) and dist/ (copies again, where the bundled loader's
//    `new URL('../dist/…', import.meta.url)` points; see test/browser/page.js).
// 2. A node:http static server on 127.0.0.1 (a free port) serves that folder, .wasm as
//    application/wasm, and nothing else: no CDN, no network.
// 3. Debian's Chromium (/usr/bin/chromium, or $TILELLI_CHROMIUM), driven by playwright-core,
//    opens the page; every console error, page error, unhandled rejection, failed or off-site
//    request fails the test.
// 4. Screenshot of the rendered results: test-artifacts/browser/page.png.
// 5. A plain page with no bundler, as the README's install section shows: the package's js/ and
//    dist/ copied as they are (site/pkg/), imported with <script type="module"> from
//    ./pkg/js/browser.js; init() fetches ../dist/ next to it.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

import { init } from 'tilelli';

import { bundleForBrowser, CHROMIUM, launchChromium, serveStatic, watchPage } from './harness.js';
import { sample } from './sample.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const artifacts = join(root, 'test-artifacts', 'browser');
const site = join(artifacts, 'site');
const WASM = ['tilelli-relaxed.wasm', 'tilelli-simd.wasm', 'tilelli-scalar.wasm'];
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
};

/** Fresh site/: index.html, app/{page,worker}.js bundled, the wasm builds in app/ and dist/. */
async function buildSite() {
  await rm(site, { recursive: true, force: true });
  await mkdir(join(site, 'app'), { recursive: true });
  await mkdir(join(site, 'dist'), { recursive: true });
  await copyFile(join(root, 'test', 'browser', 'index.html'), join(site, 'index.html'));
  for (const name of WASM) {
    await copyFile(join(root, 'dist', name), join(site, 'app', name));
    await copyFile(join(root, 'dist', name), join(site, 'dist', name));
  }
  // The unbundled package, laid out as node_modules/tilelli is, and a plain page importing it.
  await cp(join(root, 'js'), join(site, 'pkg', 'js'), { recursive: true });
  await mkdir(join(site, 'pkg', 'dist'), { recursive: true });
  for (const name of WASM) await copyFile(join(root, 'dist', name), join(site, 'pkg', 'dist', name));
  await copyFile(join(root, 'test', 'runtimes', 'sample.js'), join(site, 'sample.js'));
  await writeFile(join(site, 'plain.html'), `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tilelli, no bundler</title><link rel="icon" href="data:,">
<script type="module">
  import { init } from './pkg/js/browser.js';
  import { sample } from './sample.js';
  try {
    const tl = await init();
    window.plainReport = { ok: true, build: tl.build, simd: tl.simd, result: sample(tl) };
  } catch (e) {
    window.plainReport = { ok: false, error: String(e && e.stack || e) };
  }
</script></head><body>plain page</body></html>
`);
  const result = await bundleForBrowser(root, { page: 'test/browser/page.js', worker: 'test/browser/worker.js' }, join(site, 'app'));
  assert.deepEqual(result.warnings, [], 'esbuild warns about nothing');
  const bundles = {};
  for (const [file, output] of Object.entries(result.metafile.outputs)) {
    const inputs = Object.keys(output.inputs);
    assert.ok(inputs.includes('js/browser.js'), `${file} uses the browser entry: ${inputs.join(', ')}`);
    for (const other of ['js/node.js', 'js/index.js', 'js/deno.js', 'js/workerd.js']) {
      assert.ok(!inputs.includes(other), `${file} bundles no ${other}`);
    }
    bundles[file] = output.bytes;
  }
  // esbuild keeps import.meta.url as it is in ESM output (it would stub it as `import_meta = {}`
  // in others): the loader's URL stays relative to the bundle. The page's 'default' run checks it works.
  const pageJs = await readFile(join(site, 'app', 'page.js'), 'utf8');
  assert.match(pageJs, /import\.meta\.url/);
  assert.doesNotMatch(pageJs, /import_meta\b/);
  return bundles;
}

test('Chromium runs the sample on the main thread (relaxed by default, SIMD, scalar) and in a module worker with Node\'s numbers',
  { timeout: 60_000 }, async (t) => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: scripts/setup.sh installs Debian's chromium (or set TILELLI_CHROMIUM)`);
    for (const name of WASM) {
      assert.ok(existsSync(join(root, 'dist', name)), `no dist/${name}: build first (npm run build)`);
    }
    const time = { start: performance.now() };
    const expected = sample(await init());

    const bundles = await buildSite();
    time.bundled = performance.now();
    const server = await serveStatic(site, TYPES);
    const problems = []; // console errors, page errors, failed and off-site requests
    let browser;
    try {
      browser = await launchChromium();
      time.launched = performance.now();
      const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
      page.setDefaultTimeout(20_000);
      watchPage(page, problems, `${server.origin}/`);

      await page.goto(`${server.origin}/index.html`, { waitUntil: 'load' });
      await page.waitForFunction(() => window.tilelliReport !== undefined);
      const report = await page.evaluate(() => window.tilelliReport);
      time.ran = performance.now();

      // Shown on the page before the screenshot: does each run equal Node's sample?
      const runs = report.ok
        ? [...report.main.map((r) => ({ where: 'main thread', ...r })), ...report.worker.map((r) => ({ where: 'worker', ...r }))]
        : [];
      const verdicts = runs.map((r) => `${r.where} ${r.label}: ${isDeepStrictEqual(r.result, expected) ? 'equal to' : 'DIFFERENT FROM'} Node's sample`);
      await page.evaluate((lines) => {
        document.getElementById('out').textContent += `\nCompared in Node (${lines.length} runs):\n${lines.join('\n')}\n`;
      }, verdicts);
      await mkdir(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, 'page.png'), fullPage: true });
      time.shot = performance.now();

      assert.ok(report.ok, `the page failed: ${report.error}\n${problems.join('\n')}`);
      // Chromium runs relaxed SIMD: init() without options picks that build (its self-test passed)
      assert.deepEqual(report.main.map((r) => [r.label, r.build, r.simd]),
        [['default', 'relaxed', true], ['relaxed', 'relaxed', true], ['simd', 'simd', true], ['scalar', 'scalar', false]]);
      assert.deepEqual(report.worker.map((r) => [r.label, r.build, r.simd]),
        [['relaxed', 'relaxed', true], ['simd', 'simd', true], ['scalar', 'scalar', false]]);
      for (const run of runs) assert.deepEqual(run.result, expected, `${run.where} ${run.label} gives Node's sample`);

      // The plain page: the package as installed, no bundler.
      await page.goto(`${server.origin}/plain.html`, { waitUntil: 'load' });
      await page.waitForFunction(() => window.plainReport !== undefined);
      const plain = await page.evaluate(() => window.plainReport);
      assert.ok(plain.ok, `the plain page failed: ${plain.error}`);
      assert.equal(plain.build, 'relaxed');
      assert.equal(plain.simd, true);
      assert.deepEqual(plain.result, expected, 'the unbundled package in a plain page gives Node\'s sample');

      // Each build was fetched once per context (init caches per URL) as application/wasm and compiled streaming.
      assert.deepEqual(report.compiled, { main: { streaming: 4, buffered: 0 }, worker: { streaming: 3, buffered: 0 } });
      const wasmRequests = server.requests.filter((r) => r.path.endsWith('.wasm')).map((r) => `${r.path} ${r.status} ${r.type}`).sort();
      assert.deepEqual(wasmRequests, [
        '/app/tilelli-relaxed.wasm 200 application/wasm', '/app/tilelli-relaxed.wasm 200 application/wasm',
        '/app/tilelli-scalar.wasm 200 application/wasm', '/app/tilelli-scalar.wasm 200 application/wasm',
        '/app/tilelli-simd.wasm 200 application/wasm', '/app/tilelli-simd.wasm 200 application/wasm',
        '/dist/tilelli-relaxed.wasm 200 application/wasm', '/pkg/dist/tilelli-relaxed.wasm 200 application/wasm',
      ]);
      assert.deepEqual(server.requests.filter((r) => r.status !== 200), [], 'every request was served');
      assert.deepEqual(problems, [], 'no console error, page error, unhandled rejection or failed request');
    } finally {
      await browser?.close();
      await server.close();
    }
    const ms = (a, b) => `${Math.round(time[b] - time[a])} ms`;
    t.diagnostic(`bundles: ${Object.entries(bundles).map(([f, b]) => `${f.split('/').pop()} ${b} B`).join(', ')}`);
    t.diagnostic(`bundle ${ms('start', 'bundled')}, launch ${ms('bundled', 'launched')}, page ${ms('launched', 'ran')}, ` +
      `screenshot ${ms('ran', 'shot')}, total ${Math.round(performance.now() - time.start)} ms`);
  });
