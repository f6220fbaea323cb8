// harness.js — what the Chromium tests share: a static server on 127.0.0.1, Debian's Chromium
// through playwright-core, and a watch on a page for anything that must fail a test (console
// errors, page errors, crashes, failed or off-site requests).
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';

import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.TILELLI_CHROMIUM || '/usr/bin/chromium';

/** The headers that make a page crossOriginIsolated (and so able to run threads). */
export const ISOLATION_HEADERS = Object.freeze({
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
});

/**
 * Serve dir on 127.0.0.1 and a free port, only files with a type in types; records each request.
 * headers: sent with every answer (e.g. ISOLATION_HEADERS).
 */
export async function serveStatic(dir, types, headers = {}) {
  const requests = [];
  const server = createServer(async (req, res) => {
    let path = null;
    try {
      path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {} // malformed: a 404 below
    const file = normalize(join(dir, path === '/' ? 'index.html' : path ?? ''));
    let status = 200;
    let type = types[extname(file)];
    let body;
    if (req.method !== 'GET' || path === null || !file.startsWith(dir + sep) || !type) {
      status = 404;
    } else {
      body = await readFile(file).catch(() => undefined);
      if (!body) status = 404;
    }
    if (status !== 200) {
      type = 'text/plain; charset=utf-8';
      body = 'not found';
    }
    requests.push({ path: path ?? req.url, status, type });
    res.writeHead(status, { ...headers, 'content-type': type, 'content-length': body.length, 'cache-control': 'no-store' });
    res.end(body);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const close = () => new Promise((resolve) => {
    server.close(resolve);
    server.closeAllConnections();
  });
  return { origin: `http://127.0.0.1:${server.address().port}`, requests, close };
}

/**
 * Bundle entry points as a browser app would: ESM, the package's "browser" condition, a metafile
 * (to check which entry was bundled), and no warnings allowed (the caller asserts on them).
 */
export function bundleForBrowser(root, entryPoints, outdir) {
  return esbuild.build({
    absWorkingDir: root, entryPoints, outdir, bundle: true, format: 'esm', platform: 'browser',
    conditions: ['browser'], metafile: true, logLevel: 'silent',
  });
}

/** Debian's Chromium, headless, with no background network. */
export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    // headless (the default) makes playwright pass --headless; chromiumSandbox: false (also the
    // default) passes --no-sandbox. Most of the rest are in playwright's own switches already;
    // kept here so the intent does not depend on its defaults.
    headless: true,
    chromiumSandbox: false,
    args: ['--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    timeout: 30_000,
  });
}

/** Push into problems everything on page that must fail a test; requests must start with origin. */
export function watchPage(page, problems, origin) {
  const where = (m) => (m.location()?.url ? ` (${m.location().url}:${m.location().lineNumber})` : '');
  // playwright 1.65 reports a dedicated worker's console on the page too (m.worker() says whose).
  page.on('console', (m) => m.type() === 'error' && problems.push(`${m.worker() ? 'worker ' : ''}console error: ${m.text()}${where(m)}`));
  page.on('pageerror', (e) => problems.push(`page error: ${e.stack || e.message}`));
  page.on('crash', () => problems.push('the page crashed'));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('request', (r) => {
    const url = r.url();
    if (!url.startsWith(origin) && !url.startsWith('data:') && !url.startsWith('blob:')) problems.push(`off-site request: ${url}`);
  });
}

/** A new page of browser on server's index.html, watched for problems; the workers it starts are listed. */
export async function openIndex(browser, server, problems, options = {}) {
  const page = await browser.newPage(options);
  page.setDefaultTimeout(60_000);
  watchPage(page, problems, `${server.origin}/`);
  const workers = [];
  page.on('worker', (w) => workers.push(w.url()));
  await page.goto(`${server.origin}/index.html`, { waitUntil: 'load' });
  return { page, workers };
}

/**
 * problems without the net::ERR_ABORTED "failures" of the given paths. Chromium reports a fetch
 * whose body was read to its end through its stream (getReader, BYOB or not, pipeTo, for await)
 * as failed with net::ERR_ABORTED in about half of the runs, every byte received (measured on
 * a 278 KB file: 11 of 20 reads; response.arrayBuffer() never). Call it only for downloads the
 * page confirms were complete (its progress said loaded === total).
 */
export function withoutStreamedAborts(problems, paths) {
  return problems.filter((p) => !(p.startsWith('request failed: ') && p.endsWith(' net::ERR_ABORTED') &&
    paths.some((path) => new URL(p.slice('request failed: '.length, -' net::ERR_ABORTED'.length)).pathname === path)));
}
