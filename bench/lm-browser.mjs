// lm-browser.mjs — bench/lm.mjs --browser: the same prefill and decode tokens/s of
// tl.LanguageModel, measured in headless Chromium (Debian's, through playwright-core) on the main
// thread of a page (bench/lm-page/page.js, one thread, the relaxed-SIMD build by default), with the
// page's own wasm read bandwidth beside each model (build/bench-kernels.wasm).
//
// The models are bench/lm.mjs's ({ name, weights, config }): each is loaded once in Node and its
// packed file (save()) is what the page downloads, with LanguageModel.fromURL.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * Run the page. models: [{ name, files: { config, weights }, perToken }] (LanguageModel.load's files;
 * perToken: the bytes one decoded token reads, bench/lm.mjs's sizes()), tl: Node's API (to pack
 * them), embedding: how their tables are held (the packed file keeps it). Resolves to
 * { browser, build, rows }.
 */
export async function lmInChromium({ tl, models, tokens = 64, budget = 3000, build = 'relaxed', embedding = 'float32' }) {
  const { bundleForBrowser, launchChromium, serveStatic, watchPage, withoutStreamedAborts } = await import('../test/runtimes/harness.js');
  const site = await mkdtemp(join(tmpdir(), 'tilelli-lm-browser-'));
  try {
    await mkdir(join(site, 'dist'));
    await mkdir(join(site, 'models'));
    await copyFile(join(ROOT, 'bench', 'lm-page', 'index.html'), join(site, 'index.html'));
    for (const b of ['relaxed', 'simd', 'scalar']) await copyFile(join(ROOT, 'dist', `tilelli-${b}.wasm`), join(site, 'dist', `tilelli-${b}.wasm`));
    const benchWasm = process.env.TILELLI_BENCH_WASM || join(ROOT, 'build', 'bench-kernels.wasm');
    if (existsSync(benchWasm)) await copyFile(benchWasm, join(site, 'bench-kernels.wasm'));
    const query = new URLSearchParams({ models: models.map((m) => m.name).join(','), tokens: String(tokens), budget: String(budget), build });
    for (const m of models) {
      const lm = tl.LanguageModel.load(m.files, { context: 256, embedding });
      let packed;
      try {
        packed = lm.save();
      } catch (e) {
        if (e.code !== 'OUT_OF_MEMORY') throw e;
        throw new Error(`${m.name} with its table as ${embedding}: its packed file does not fit beside the model in Node's 4 GiB of wasm memory (try --embedding float16)`);
      } finally {
        lm.free();
      }
      await writeFile(join(site, 'models', `${m.name}.safetensors`), packed);
      query.set(`perToken.${m.name}`, String(m.perToken));
    }
    const built = await bundleForBrowser(ROOT, { page: 'bench/lm-page/page.js' }, join(site, 'app'));
    if (built.warnings.length) throw new Error(`esbuild warned: ${built.warnings.map((w) => w.text).join('; ')}`);
    const server = await serveStatic(site, {
      '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm', '.safetensors': 'application/octet-stream',
    });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const problems = [];
      watchPage(page, problems, `${server.origin}/`);
      page.on('console', (m) => m.type() === 'log' && process.stderr.write(`[page] ${m.text()}\n`));
      await page.goto(`${server.origin}/index.html?${query}`, { waitUntil: 'load' });
      await page.waitForFunction(() => window.benchResult !== undefined, null, { timeout: 60 * 60_000, polling: 500 });
      const r = await page.evaluate(() => window.benchResult);
      if (!r.ok) throw new Error(`the bench page failed: ${r.error}\n${problems.join('\n')}`);
      const left = withoutStreamedAborts(problems, models.map((m) => `/models/${m.name}.safetensors`)); // the models loaded: complete
      if (left.length) throw new Error(`page problems:\n  ${left.join('\n  ')}`);
      return { browser: browser.version(), ...r };
    } finally {
      await browser.close();
      await server.close();
    }
  } finally {
    await rm(site, { recursive: true, force: true });
  }
}

/** The table of an lmInChromium result, in bench/lm.mjs's columns (ternary weights from `ternary`). */
export function browserTable(r, ternary) {
  const lines = [
    `# Chromium ${r.browser} (headless, playwright-core, main thread), ${cpus().length} x ${cpus()[0]?.model}; tilelli ${r.version} (${r.build}, 1 thread); ` +
      `embedding/head held as ${r.rows[0]?.embedding ?? 'float32'}`,
    '',
    '| model | ternary weights | activations | prefill tok/s (64) | decode tok/s | bytes / token | limit tok/s | of limit |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const row of r.rows) {
    const gbps = row.bandwidth?.gbps;
    const limit = gbps ? (gbps * 1e9) / row.perToken : undefined;
    lines.push(`| ${row.name} | ${ternary[row.name] ?? '?'} | ${row.activations} | ${row.prefill.toFixed(0)} | ${row.decode.toFixed(1)} | ` +
      `${(row.perToken / 1048576).toFixed(1)} MiB | ${limit ? `${limit.toFixed(0)} (${gbps.toFixed(1)} GB/s)` : `n/a (${row.bandwidth?.error})`} | ` +
      `${limit ? `${((100 * row.decode) / limit).toFixed(0)}%` : 'n/a'} |`);
  }
  lines.push('', `Same measurement as the Node table (64-token prefill, then single decode steps; medians), in a page; the limit is the page's own wasm read`,
    `bandwidth (bench/bandwidth.c, 1 or 4 streams, the faster) over the bytes one decoded token reads. Load average at the end: ${loadavg()[0].toFixed(1)}.`);
  return lines;
}
