// models.mjs — packed models against onnxruntime-web, end to end: whole networks (MLPs with ReLU),
// not kernels. The same float network as an ONNX model in onnxruntime-web fp32 (wasm, 1 thread), as
// the int8 model onnxruntime's quantize_dynamic would make of it, and as tilelli packed models (i2,
// tq1, bitplane) with float and with int8 activations; in one process, interleaved, checked first.
//
//   node bench/models.mjs                  every network (~2-3 minutes)
//   node bench/models.mjs --quick          MNIST and the wide MLP only, shorter timing (~30-40 s)
//   node bench/models.mjs --browser        the same in headless Chromium (playwright-core)
//   node bench/models.mjs --networks mnist,wide --budget 4000
//   node bench/models.mjs --check          the checks only, no timing: MNIST and small odd shapes (~10 s)
//
// The work is in bench/models-core.mjs (shared with the Chromium page, bench/models-page/page.js);
// bench/README.md ("Models") says what each column is.
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { CHECK_NETWORKS, formatReport, NETWORKS, runBench } from './models-core.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const USAGE = 'usage: node bench/models.mjs [--quick | --check] [--browser] [--networks mnist,wide,bitnet-ffn,mlp512,mlp784w] [--budget ms per network and batch] [--threads 1]';
const QUICK = { networks: ['mnist', 'wide'], budgetMs: 2500 };
const CHECK = ['mnist', 'odd3', 'odd1'];
const FULL_BUDGET_MS = 9000;

/** The 2004 test digits of the project's split (sample i of each digit is test when i % 5 == 0). */
export function loadTestDigits() {
  const require = createRequire(join(ROOT, 'package.json'));
  const x = [];
  const labels = [];
  for (let d = 0; d < 10; d++) {
    const data = require(`mnist/src/digits/${d}.json`).data;
    for (let i = 0; i * 784 < data.length; i += 5) {
      x.push(data.slice(i * 784, (i + 1) * 784));
      labels.push(d);
    }
  }
  return { x: Float32Array.from(x.flat()), labels: Uint8Array.from(labels) };
}

async function mnistData() {
  const checkpoint = new Uint8Array(await readFile(join(ROOT, 'test', 'fixtures', 'mnist', 'mlp.safetensors')));
  return { checkpoint, ...loadTestDigits() };
}

function machine() {
  const c = cpus();
  return `${c.length} x ${c[0]?.model ?? '?'}, load average ${load()}`;
}

/** The 1-minute load average: on a shared machine, what else was running shows in the medians. */
const load = () => loadavg()[0].toFixed(1);

async function inNode({ networks, budgetMs, timing, threads }) {
  const { init } = await import('../js/node.js');
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.simd = true;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  // one thread by default, as onnxruntime-web here (--threads N: tilelli's threads; bench/threads.mjs compares them)
  const tl = await init({ simd: true, threads });
  console.log(`Node ${process.version}, ${machine()}; onnxruntime-web ${ort.env.versions?.web} (wasm, 1 thread); tilelli ${tl.version} (${{ relaxed: 'wasm relaxed SIMD', simd: 'wasm SIMD128', scalar: 'wasm scalar' }[tl.build]}, ${tl.threads} thread${tl.threads > 1 ? 's' : ''})`);
  return runBench({ tl, ort, mnist: await mnistData(), networks, budgetMs, timing, log: (l) => process.stderr.write(`${l}\n`) });
}

/** The same bench in headless Chromium: bench/models-page/page.js bundled with esbuild, served locally. */
async function inChromium({ networks, budgetMs, timing }) {
  const { bundleForBrowser, launchChromium, serveStatic, watchPage } = await import('../test/runtimes/harness.js');
  const site = join(tmpdir(), `tilelli-models-${process.pid}`);
  await rm(site, { recursive: true, force: true });
  await mkdir(join(site, 'dist'), { recursive: true });
  await mkdir(join(site, 'ort'), { recursive: true });
  try {
    await cp(join(ROOT, 'bench', 'models-page', 'index.html'), join(site, 'index.html'));
    for (const b of ['simd', 'scalar']) await cp(join(ROOT, 'dist', `tilelli-${b}.wasm`), join(site, 'dist', `tilelli-${b}.wasm`));
    const ortDist = join(ROOT, 'node_modules', 'onnxruntime-web', 'dist');
    for (const f of ['ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm']) await cp(join(ortDist, f), join(site, 'ort', f));
    const { checkpoint, x, labels } = await mnistData();
    await writeFile(join(site, 'mlp.safetensors'), checkpoint);
    await writeFile(join(site, 'digits.f32'), new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    await writeFile(join(site, 'labels.u8'), labels);
    const built = await bundleForBrowser(ROOT, { page: 'bench/models-page/page.js' }, join(site, 'app'));
    if (built.warnings.length) console.error(`esbuild warnings: ${built.warnings.map((w) => w.text).join('; ')}`);

    const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm', '.safetensors': 'application/octet-stream', '.f32': 'application/octet-stream', '.u8': 'application/octet-stream' };
    const server = await serveStatic(site, types);
    const problems = [];
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      watchPage(page, problems, `${server.origin}/`);
      page.on('console', (m) => m.type() === 'log' && process.stderr.write(`[page] ${m.text()}\n`));
      const version = browser.version();
      const q = new URLSearchParams({ budget: String(budgetMs), networks: networks?.join(',') ?? '', timing: timing ? '1' : '0' });
      await page.goto(`${server.origin}/index.html?${q}`, { waitUntil: 'load' });
      await page.waitForFunction(() => window.benchResult !== undefined, null, { timeout: 30 * 60_000, polling: 500 });
      const r = await page.evaluate(() => window.benchResult);
      if (!r.ok) throw new Error(`the page failed: ${r.error}`);
      console.log(`Chromium ${version} (headless, playwright-core), ${machine()}; onnxruntime-web ${r.ortVersion} (wasm, 1 thread); tilelli ${r.tilelliVersion} (${r.simd ? 'wasm SIMD128' : 'wasm scalar'})`);
      if (problems.length) console.log(`page problems:\n  ${problems.join('\n  ')}`);
      return r.result;
    } finally {
      await browser.close();
      await server.close();
    }
  } finally {
    await rm(site, { recursive: true, force: true });
  }
}

async function main() {
  let opts;
  try {
    ({ values: opts } = parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        check: { type: 'boolean', default: false },
        browser: { type: 'boolean', default: false },
        networks: { type: 'string' },
        budget: { type: 'string' },
        threads: { type: 'string', default: '1' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    console.error(`models.mjs: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  if (opts.help) return console.log(USAGE);
  const networks = opts.networks ? opts.networks.split(',').map((s) => s.trim()) : opts.check ? CHECK : opts.quick ? QUICK.networks : undefined;
  const known = [...NETWORKS, ...CHECK_NETWORKS].map((x) => x.key);
  for (const n of networks ?? []) {
    if (!known.includes(n)) {
      console.error(`models.mjs: no network "${n}" (have ${known.join(', ')})\n${USAGE}`);
      process.exit(2);
    }
  }
  const budgetMs = opts.budget ? Number(opts.budget) : opts.quick ? QUICK.budgetMs : FULL_BUDGET_MS;
  if (!(budgetMs >= 0)) {
    console.error(`models.mjs: bad --budget ${opts.budget}\n${USAGE}`);
    process.exit(2);
  }
  const t0 = performance.now();
  const timing = !opts.check;
  const result = opts.browser ? await inChromium({ networks, budgetMs, timing }) : await inNode({ networks, budgetMs, timing, threads: Number(opts.threads) });
  if (timing) console.log(`Times per call (one forward pass of the whole batch), medians of interleaved rounds; timing budget ${budgetMs} ms per network and batch.`);
  for (const line of formatReport(result)) console.log(line);
  console.log(`\nTotal ${((performance.now() - t0) / 1000).toFixed(0)} s (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC), load average at the end ${load()} on ${cpus().length} cores.`);
  if (result.failures.length) process.exitCode = 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
