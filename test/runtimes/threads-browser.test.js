// threads-browser.test.js — threads in Chromium. The unbundled package (js/ and dist/, as installed)
// is served twice: with COOP same-origin + COEP require-corp (the page is crossOriginIsolated:
// init() starts workers, tl.threads > 1, the threaded build is fetched) and without (one thread,
// the single-threaded build, nothing else fetched). Both pages compute products big enough to be
// split (test/browser/threads-sample.js) with the default init() and with init({ threads: 1 }),
// and every digest equals Node's scalar build's.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { init } from 'tilelli';

import { CHROMIUM, ISOLATION_HEADERS, launchChromium, serveStatic, watchPage } from './harness.js';
import { threadsSample } from '../browser/threads-sample.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const site = join(root, 'test-artifacts', 'threads', 'site');
const WASM = ['tilelli-relaxed.wasm', 'tilelli-simd.wasm', 'tilelli-scalar.wasm', 'tilelli-relaxed-mt.wasm', 'tilelli-simd-mt.wasm'];
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm' };

async function buildSite() {
  await rm(site, { recursive: true, force: true });
  await cp(join(root, 'js'), join(site, 'pkg', 'js'), { recursive: true });
  await mkdir(join(site, 'pkg', 'dist'), { recursive: true });
  for (const name of WASM) await copyFile(join(root, 'dist', name), join(site, 'pkg', 'dist', name));
  await copyFile(join(root, 'test', 'browser', 'threads-sample.js'), join(site, 'threads-sample.js'));
  await writeFile(join(site, 'index.html'), `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tilelli threads</title><link rel="icon" href="data:,">
<script type="module">
  import { init } from './pkg/js/browser.js';
  import { threadsSample } from './threads-sample.js';
  try {
    const tl = await init();
    const one = await init({ threads: 1 });
    const t0 = performance.now();
    const threaded = threadsSample(tl);
    const t1 = performance.now();
    const single = threadsSample(one);
    const t2 = performance.now();
    window.report = { ok: true, isolated: crossOriginIsolated, build: tl.build, threads: tl.threads,
      oneThreads: one.threads, cores: navigator.hardwareConcurrency, threaded, single,
      ms: { threaded: t1 - t0, single: t2 - t1 } };
  } catch (e) {
    window.report = { ok: false, error: String(e && e.stack || e) };
  }
</script></head><body>threads</body></html>
`);
}

test('Chromium: an isolated page (COOP/COEP) runs threads, a page without runs one thread; both give Node\'s bits',
  { timeout: 120_000 }, async (t) => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}`);
    for (const name of WASM) assert.ok(existsSync(join(root, 'dist', name)), `no dist/${name}: build first (npm run build)`);
    const expected = threadsSample(await init({ build: 'scalar' }));
    await buildSite();
    const isolated = await serveStatic(site, TYPES, ISOLATION_HEADERS);
    const plain = await serveStatic(site, TYPES);
    const problems = [];
    let browser;
    try {
      browser = await launchChromium();
      const reports = {};
      for (const [name, server] of [['isolated', isolated], ['plain', plain]]) {
        const page = await browser.newPage();
        page.setDefaultTimeout(60_000);
        watchPage(page, problems, `${server.origin}/`);
        const workers = [];
        page.on('worker', (w) => workers.push(w.url()));
        await page.goto(`${server.origin}/index.html`, { waitUntil: 'load' });
        await page.waitForFunction(() => window.report !== undefined);
        reports[name] = { ...await page.evaluate(() => window.report), workers };
        await page.close();
      }
      const iso = reports.isolated, non = reports.plain;
      assert.ok(iso.ok, `the isolated page failed: ${iso.error}\n${problems.join('\n')}`);
      assert.ok(non.ok, `the plain page failed: ${non.error}\n${problems.join('\n')}`);

      assert.equal(iso.isolated, true);
      assert.equal(iso.build, 'relaxed');
      assert.equal(iso.threads, Math.min(4, iso.cores));
      assert.ok(iso.threads > 1, `${iso.cores} cores: threads run`);
      assert.equal(iso.oneThreads, 1);
      assert.equal(iso.workers.filter((u) => u.endsWith('/thread-worker.js')).length, iso.threads - 1, 'one worker per extra thread, started once');
      assert.deepEqual(iso.threaded, expected, 'threads give the scalar build\'s bits');
      assert.deepEqual(iso.single, expected, 'one thread gives the scalar build\'s bits');

      assert.equal(non.isolated, false);
      assert.equal(non.build, 'relaxed');
      assert.equal(non.threads, 1, 'not isolated: one thread, silently');
      assert.deepEqual(non.workers, [], 'no worker started');
      assert.deepEqual(non.threaded, expected);

      const fetched = (server) => server.requests.filter((r) => r.path.endsWith('.wasm')).map((r) => r.path).sort();
      assert.deepEqual(fetched(isolated), ['/pkg/dist/tilelli-relaxed-mt.wasm', '/pkg/dist/tilelli-relaxed.wasm']);
      assert.deepEqual(fetched(plain), ['/pkg/dist/tilelli-relaxed.wasm']);
      assert.deepEqual(problems, [], 'no console error, page error or failed request');
      t.diagnostic(`isolated page: ${iso.threads} threads ${iso.ms.threaded.toFixed(0)} ms, 1 thread ${iso.ms.single.toFixed(0)} ms (correctness run, not a benchmark)`);
    } finally {
      await browser?.close();
      await isolated.close();
      await plain.close();
    }
  });
