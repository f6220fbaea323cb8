// bundle.test.js — training in a bundled app, the way README "Bundled apps" says: the esbuild
// command of its sh block, run as written (node_modules/.bin/esbuild), bundles
// test/browser/bundle-app.js (as app.js: tilelli by name, "browser" condition) and
// tilelli/worker-entry.js as a second entry point beside it; dist/*.wasm is copied next to them. The app calls init({ url }) once and startTraining with no
// worker and no init option. Chromium runs it from a 127.0.0.1 server; every console error, page
// error or failed request fails the test.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { CHROMIUM, launchChromium, openIndex, serveStatic } from './harness.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const site = join(root, 'test-artifacts', 'browser', 'bundle-site');
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm' };

test('a bundled app trains in a worker with the README\'s two esbuild entry points and one init({ url })', { timeout: 90_000 }, async () => {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}`);
  await rm(site, { recursive: true, force: true });
  await mkdir(site, { recursive: true });
  // README's command, continuation lines joined
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Bundled apps'));
  const sh = /```sh\n([^`]*)```/.exec(section)[1].replace(/\\\n\s*/g, ' ').split('\n').filter(Boolean);
  assert.match(sh[0], /^esbuild app\.js tilelli\/worker-entry\.js /);
  assert.equal(sh[1], 'cp node_modules/tilelli/dist/*.wasm public/');
  await copyFile(join(root, 'test', 'browser', 'bundle-app.js'), join(site, 'app.js'));
  const args = sh[0].split(/\s+/).slice(1);
  await promisify(execFile)(join(root, 'node_modules', '.bin', 'esbuild'), [...args, '--log-level=warning'], { cwd: site });
  const pub = join(site, 'public');
  await copyFile(join(root, 'test', 'browser', 'bundle.html'), join(pub, 'index.html'));
  for (const name of ['tilelli-simd.wasm', 'tilelli-scalar.wasm']) await copyFile(join(root, 'dist', name), join(pub, name));
  const server = await serveStatic(join(site, 'public'), TYPES);
  const problems = [];
  let browser;
  try {
    browser = await launchChromium();
    const { page, workers } = await openIndex(browser, server, problems);
    await page.waitForFunction(() => window.bundleReport !== undefined);
    const report = await page.evaluate(() => window.bundleReport);
    assert.ok(report.ok, report.error);
    assert.equal(report.steps, 20 * 8);
    assert.ok(report.accuracy > 0.9, `accuracy ${report.accuracy}`);
    assert.ok(Math.abs(report.modelAccuracy - report.accuracy) <= 0.02, `the exported model ${report.modelAccuracy} vs ${report.accuracy}`);
    assert.deepEqual(workers, [`${server.origin}/worker-entry.js`]);
    const wasm = server.requests.filter((r) => r.path.endsWith('.wasm')).map((r) => r.path);
    assert.ok(wasm.length >= 2 && new Set(wasm).size === 1, `page and worker fetch the same wasm: ${wasm}`);
    assert.deepEqual(server.requests.filter((r) => r.status !== 200), [], 'every request was served');
    assert.deepEqual(problems, []);
  } finally {
    await browser?.close();
    await server.close();
  }
});
