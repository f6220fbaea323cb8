// edge.mjs — examples/edge-worker where it runs: cold start, warm request time and memory per
// isolate in workerd, each as the difference from a no-op worker measured in the same run, for the
// MNIST MLP (784-256-256-10) and a wide MLP (1024-4096-4096-1024, random weights), beside the same
// networks in onnxruntime-web inside workerd, and the same handler under `deno serve`.
//
//   node bench/edge.mjs [--starts 5] [--rounds 10] [--per-round 200] [--budget-ms 1000] [--only workerd,ort,deno]
//
// What is timed (all on 127.0.0.1, one client, sequential requests, HTTP/1.1 keep-alive):
// - cold: from spawning the server to the first answer of POST /predict (one digit). workerd gets
//   a listening socket opened by this process (--socket-fd), so the request is sent right after the
//   spawn and waits in the socket's backlog: the time covers starting workerd, compiling the wasm
//   modules, evaluating the bundle (init(), Model.load and one warm-up predict at module scope) and
//   the first request. Deno prints its URL first; the time is spawn -> that print -> first answer.
//   `--starts` starts per server, interleaved; the median.
// - warm: `--rounds` rounds; in each, every server in turn answers `--per-round` requests of batch
//   1 then of batch 16 (float32 bodies, application/octet-stream), or as many as fit in
//   `--budget-ms` (at least 20) for the slow ones; the median of all.
// - CPU: the server process's CPU time (all threads, /proc/PID/task/*/schedstat) to its first answer,
//   and per warm request (per round: CPU used / requests); it does not grow while the server waits
//   for a CPU other jobs hold, so it is the steadier measure on a shared machine.
// - memory: the server process's resident set (VmRSS, /proc) right after its first answer (the model
//   loaded, before traffic leaves garbage; median over the starts), and after the warm traffic with
//   its peak (VmHWM). workerd runs one isolate here, so the difference from the no-op worker is what
//   the isolate holds for the model (wasm memory, compiled code, bundle, model bytes, JS heap).
//   GET /model adds the wasm memory the library reports (memoryStats().wasmBytes). The isolate as
//   V8 accounts it is read after one more start with workerd's inspector on: Runtime.getHeapUsage
//   (the JS heap reserved, array buffers' backing stores) plus that wasm memory. A no-op worker
//   that imports the wide model as a data module and does nothing with it shows what workerd itself
//   holds for a bundled model, before any library code runs; a no-op worker that reads the request
//   body (and answers the same JSON) shows what reading the input costs any worker, library aside;
//   a no-op worker that declares the MNIST worker's modules (its bundle as a text module, the wasm,
//   the model) without importing them shows what workerd spends holding them at start.
// onnxruntime-web 1.30 (wasm backend, 1 thread) is bundled the way workerd needs (its .wasm imported
// as a compiled module): first as is, which fails to create a session (the error is printed); then
// with a shim (env.wasm.wasmBinary set to a placeholder so that it uses its bundled glue, and
// WebAssembly.instantiate given the imported module instead of bytes), with which it runs. It runs the
// same ternary networks exported as PyTorch users export them: float32 MatMul + Add + Relu.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { Agent, createServer, request } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

import { init } from 'tilelli';

import { buildWorker } from '../examples/edge-worker/build.mjs';
import { bins, cpuOf, rssOf, startDeno, startWorkerd } from '../examples/edge-worker/servers.mjs';
import { encodeModel, DataType } from './ort-models.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORK = join(ROOT, 'build', 'edge-bench'); // git-ignored
const { values: opt } = parseArgs({
  options: {
    starts: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '10' },
    'per-round': { type: 'string', default: '200' },
    'budget-ms': { type: 'string', default: '1000' },
    only: { type: 'string', default: 'workerd,ort,deno' },
  },
});
const STARTS = Number(opt.starts), ROUNDS = Number(opt.rounds), PER_ROUND = Number(opt['per-round']), BUDGET_MS = Number(opt['budget-ms']);
const ONLY = new Set(opt.only.split(','));
const TARGETS = { coldMs: 5, warmMs: 0.1, wideMiB: 32 };

const tl = await init({ threads: 1 }); // builds the models here; the runtimes measured are workerd and Deno
await mkdir(WORK, { recursive: true });

// --- models -------------------------------------------------------------------------------------

/** xorshift32 floats, uniform in [-1, 1) (the stream the C tests and benches use). */
function uniform(n, seed) {
  let x = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = (x | 0) / 2 ** 31;
  }
  return out;
}

/** Layers [{ w (float32 [out, in]), out, in, bias }] -> the packed model and the ONNX float32 model. */
function bothModels(layers, input) {
  const mats = layers.map((L) => tl.PackedMatrix.fromWeights(L.w, [L.out, L.in], { format: 'i2' }));
  const spec = [];
  layers.forEach((L, i) => {
    spec.push({ type: 'linear', matrix: mats[i], bias: L.bias });
    if (i < layers.length - 1) spec.push({ type: 'relu' });
  });
  const tlm = tl.packModel({ input, layers: spec });
  // ONNX: the same ternary weights as float32 (trit * alpha), W transposed to [in, out] for X @ W.
  const nodes = [], initializers = [];
  let x = 'X';
  layers.forEach((L, i) => {
    const v = tl.ternaryValues(L.w);
    const t = new Float32Array(L.in * L.out);
    for (let r = 0; r < L.out; r++) for (let c = 0; c < L.in; c++) t[c * L.out + r] = v[r * L.in + c];
    initializers.push({ name: `W${i}`, dataType: DataType.FLOAT, dims: [L.in, L.out], data: t });
    initializers.push({ name: `B${i}`, dataType: DataType.FLOAT, dims: [L.out], data: L.bias });
    nodes.push({ opType: 'MatMul', inputs: [x, `W${i}`], outputs: [`M${i}`], name: `mm${i}` });
    const last = i === layers.length - 1;
    nodes.push({ opType: 'Add', inputs: [`M${i}`, `B${i}`], outputs: [last ? 'Y' : `A${i}`], name: `add${i}` });
    if (!last) nodes.push({ opType: 'Relu', inputs: [`A${i}`], outputs: [`R${i}`], name: `relu${i}` });
    x = `R${i}`;
  });
  const onnx = encodeModel({
    nodes, initializers, opsets: { '': 17 },
    inputs: [{ name: 'X', elemType: DataType.FLOAT, dims: ['batch', input] }],
    outputs: [{ name: 'Y', elemType: DataType.FLOAT, dims: ['batch', layers.at(-1).out] }],
  });
  for (const m of mats) m.free();
  return { tlm, onnx };
}

async function models() {
  const out = {};
  const files = (name) => ({ tlm: join(WORK, `${name}.i2.tlm`), onnx: join(WORK, `${name}.f32.onnx`) });
  // MNIST: the PyTorch fixture's float weights.
  {
    const f = files('mnist');
    if (!existsSync(f.onnx)) {
      const st = tl.Safetensors.open(await readFile(join(ROOT, 'test', 'fixtures', 'mnist', 'mlp.safetensors')));
      const layers = [1, 2, 3].map((k) => {
        const t = st.tensor(`fc${k}.weight`);
        return { w: st.read(`fc${k}.weight`), out: t.shape[0], in: t.shape[1], bias: st.read(`fc${k}.bias`) };
      });
      st.free();
      const { tlm, onnx } = bothModels(layers, 784);
      await writeFile(f.tlm, tlm);
      await writeFile(f.onnx, onnx);
    }
    out.mnist = { ...f, input: 784 };
  }
  // Wide: 1024-4096-4096-1024, uniform weights scaled like a fresh layer, small biases.
  {
    const f = files('wide');
    if (!existsSync(f.onnx)) {
      const widths = [1024, 4096, 4096, 1024];
      const layers = widths.slice(1).map((n, i) => {
        const m = widths[i];
        const w = uniform(n * m, 1000 + i);
        const s = 1 / Math.sqrt(m);
        for (let j = 0; j < w.length; j++) w[j] *= s;
        return { w, out: n, in: m, bias: uniform(n, 2000 + i).map((v) => v * 0.01) };
      });
      const { tlm, onnx } = bothModels(layers, 1024);
      await writeFile(f.tlm, tlm);
      await writeFile(f.onnx, onnx);
    }
    out.wide = { ...f, input: 1024 };
  }
  return out;
}

// --- the servers ----------------------------------------------------------------------------------

const NOOP = `// a worker that answers without reading the body or touching a model
const body = '{"predictions":[0]}';
const headers = { 'content-type': 'application/json; charset=utf-8' };
export default { fetch() { return new Response(body, { headers }); } };
`;

// The peer: onnxruntime-web's wasm backend, the ONNX model as a data module (under the module name
// model.tlm, which build.mjs copies the given file to), the same request handling as the example's
// fast path (float32 body, argmax, JSON). The shim: see the header of this file.
const ORT_ENTRY = (width, shim) => `import * as ort from 'onnxruntime-web/wasm';
import ortWasm from '${join(ROOT, 'node_modules', 'onnxruntime-web', 'dist', 'ort-wasm-simd-threaded.wasm')}';
import model from './model.tlm';
${shim ? `const instantiate = WebAssembly.instantiate.bind(WebAssembly);
WebAssembly.instantiate = (src, imports) => (src instanceof WebAssembly.Module ? instantiate(src, imports)
  : instantiate(ortWasm, imports).then((instance) => ({ instance, module: ortWasm })));
ort.env.wasm.wasmBinary = new Uint8Array(8);` : ''}
ort.env.wasm.numThreads = 1;
let session, error, width, classes;
const ready = ort.InferenceSession.create(new Uint8Array(model)).then(async (s) => {
  session = s;
  const probe = await s.run({ X: new ort.Tensor('float32', new Float32Array(${width}), [1, ${width}]) });
  width = ${width};
  classes = probe.Y.dims[1];
}, (e) => { error = e; });
const headers = { 'content-type': 'application/json; charset=utf-8' };
export default {
  async fetch(request) {
    await ready;
    if (error) return new Response(JSON.stringify({ error: { code: 'ORT', message: String(error.message ?? error) } }), { status: 503, headers });
    const x = new Float32Array(await request.arrayBuffer());
    const batch = x.length / width;
    const y = (await session.run({ X: new ort.Tensor('float32', x, [batch, width]) })).Y.data;
    const p = [];
    for (let b = 0; b < batch; b++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (y[b * classes + c] > y[b * classes + best]) best = c;
      p.push(best);
    }
    return new Response('{"predictions":[' + p.join(',') + ']}', { headers });
  },
};
`;

/** The config's modules: worker.js, the wasm files (names without "./"), the model as a data module. */
function modules(hasModel, wasm) {
  return [
    '(name = "worker.js", esModule = embed "worker.js")',
    ...wasm.map((w) => `(name = "${w}", wasm = embed "${w}")`),
    ...(hasModel ? ['(name = "model.tlm", data = embed "model.tlm")'] : []),
  ];
}

function capnp(mods, modelUrl) {
  const url = modelUrl ? `, bindings = [ (name = "MODEL_URL", text = "${modelUrl}") ], globalOutbound = "outbound"` : '';
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .w), (name = "outbound", network = (allow = ["local"])) ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ],
);
const w :Workerd.Worker = ( modules = [ ${mods.join(', ')} ]${url}, compatibilityDate = "2025-06-01" );
`;
}

/** Bundle an entry (a file, or source written to WORK/name/entry.js) into WORK/name with its config. */
async function workerdServer(name, { entry, source, model, modelUrl }) {
  const dir = join(WORK, name);
  await mkdir(dir, { recursive: true });
  if (source) {
    entry = join(dir, 'entry.js');
    await writeFile(entry, source);
  }
  const { imports } = await buildWorker({ entry, outdir: dir, model });
  const wasm = imports.filter((i) => i.endsWith('.wasm')).map((w) => w.slice(2));
  await writeFile(join(dir, 'config.capnp'), capnp(modules(imports.includes('./model.tlm'), wasm), modelUrl));
  return { name, runtime: 'workerd', start: () => startWorkerd({ cwd: dir }) };
}

/** The no-op worker with the modules of another server's config declared beside it (its bundle as
 * a text module, its wasm and its model), none imported: what workerd spends on holding them. */
async function workerdModulesOnly(name, of) {
  const dir = join(WORK, name), src = join(WORK, of);
  await mkdir(dir, { recursive: true });
  const files = (await readdir(src)).filter((f) => f !== 'config.capnp' && f !== 'entry.js');
  for (const f of files) await copyFile(join(src, f), join(dir, f === 'worker.js' ? 'bundle.js' : f));
  await writeFile(join(dir, 'worker.js'), NOOP);
  const mods = [...modules(files.includes('model.tlm'), files.filter((f) => f.endsWith('.wasm'))), '(name = "bundle.js", text = embed "bundle.js")'];
  await writeFile(join(dir, 'config.capnp'), capnp(mods));
  return { name, runtime: 'workerd', start: () => startWorkerd({ cwd: dir }) };
}

// --- the client -----------------------------------------------------------------------------------

function post(agent, origin, body) {
  return new Promise((resolve, reject) => {
    const req = request(`${origin}/predict`, {
      method: 'POST', agent, headers: { 'content-type': 'application/octet-stream', 'content-length': body.byteLength },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Send one request as soon as possible after the spawn, retrying refused connections every 1 ms. */
async function firstAnswer(server, body) {
  const agent = new Agent({ keepAlive: false });
  for (;;) {
    try {
      const r = await post(agent, server.origin, body);
      return { ...r, ms: performance.now() - server.startedAt };
    } catch (e) {
      if (e.code !== 'ECONNREFUSED' && e.code !== 'ECONNRESET') throw e;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[s.length >> 1] : NaN;
};

function digitsBody(n, width) {
  const require = createRequire(import.meta.url);
  const data = require('mnist/src/digits/7.json').data;
  const x = new Float32Array(n * width);
  for (let b = 0; b < n; b++) for (let c = 0; c < Math.min(784, width); c++) x[b * width + c] = data[(b * 5 % 100) * 784 + c];
  return new Uint8Array(x.buffer);
}

// --- main -----------------------------------------------------------------------------------------

const m = await models();
const example = join(ROOT, 'examples', 'edge-worker');
const families = []; // [{ title, runtime, servers: [{ name, start, width, model? }] }]
const notes = [];

if (ONLY.has('workerd') || ONLY.has('ort')) {
  const servers = [{ ...(await workerdServer('workerd-noop', { source: NOOP })), width: 784, base: true }];
  if (ONLY.has('workerd')) {
    servers.push({ ...(await workerdServer('workerd-tilelli-mnist', { entry: join(example, 'worker.js'), model: m.mnist.tlm })), width: 784, model: 'mnist', lib: 'tilelli' });
    servers.push({ ...(await workerdServer('workerd-tilelli-wide', { entry: join(example, 'worker.js'), model: m.wide.tlm })), width: 1024, model: 'wide', lib: 'tilelli' });
    // What bundling costs before any library code runs: the no-op worker importing the wide
    // model as a data module (workerd's own copies of it).
    const dataOnly = `import model from './model.tlm';
const body = '{"predictions":[' + (model.byteLength > 0 ? 0 : 1) + ']}';
const headers = { 'content-type': 'application/json; charset=utf-8' };
export default { fetch() { return new Response(body, { headers }); } };
`;
    servers.push({ ...(await workerdServer('workerd-noop-data-wide', { source: dataOnly, model: m.wide.tlm })), width: 1024, model: 'wide', lib: 'no-op + data module', dataOnly: true });
    // What any worker that looks at its input pays: the no-op worker reading the request body.
    const readBody = `const headers = { 'content-type': 'application/json; charset=utf-8' };
export default { async fetch(request) { const b = await request.arrayBuffer(); return new Response('{"predictions":[' + (b.byteLength > 0 ? 0 : 1) + ']}', { headers }); } };
`;
    servers.push({ ...(await workerdServer('workerd-noop-read', { source: readBody })), width: 784, lib: 'no-op reading the body', dataOnly: true });
    // What holding the MNIST worker's modules costs workerd before any of them runs.
    servers.push({ ...(await workerdModulesOnly('workerd-noop-modules-mnist', 'workerd-tilelli-mnist')), width: 784, model: 'mnist', lib: 'no-op + the modules, unused', dataOnly: true });
    // int8 activations (packed model file version 2): the same handler, createHandler({ activations }).
    const int8Entry = `import model from './model.tlm';
import { createHandler } from ${JSON.stringify(join(example, 'handler.js'))};
export default createHandler({ model, runtime: 'workerd', activations: 'int8' });
`;
    servers.push({ ...(await workerdServer('workerd-tilelli-mnist-int8', { source: int8Entry, model: m.mnist.tlm })), width: 784, model: 'mnist', lib: 'tilelli, int8 activations' });
    servers.push({ ...(await workerdServer('workerd-tilelli-wide-int8', { source: int8Entry, model: m.wide.tlm })), width: 1024, model: 'wide', lib: 'tilelli, int8 activations' });
    // The relaxed-SIMD serving build, which the worker imports and passes (createHandler({ module })):
    // faster int8 products, one more module and the build's self-test at every start.
    const relaxedEntry = `import model from './model.tlm';
import relaxed from ${JSON.stringify(join(ROOT, 'dist', 'tilelli-serve-relaxed.wasm'))};
import { createHandler } from ${JSON.stringify(join(example, 'handler.js'))};
export default createHandler({ model, runtime: 'workerd', activations: 'int8', module: relaxed });
`;
    servers.push({ ...(await workerdServer('workerd-tilelli-mnist-int8-relaxed', { source: relaxedEntry, model: m.mnist.tlm })), width: 784, model: 'mnist', lib: 'tilelli, int8, relaxed build' });
    servers.push({ ...(await workerdServer('workerd-tilelli-wide-int8-relaxed', { source: relaxedEntry, model: m.wide.tlm })), width: 1024, model: 'wide', lib: 'tilelli, int8, relaxed build' });
    // The URL entry: the model fetched from a server in this process on the first request.
    const store = createServer(async (req, res) => {
      const bytes = await readFile(req.url === '/wide.tlm' ? m.wide.tlm : m.mnist.tlm);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length }).end(bytes);
    });
    await new Promise((resolve) => store.listen(0, '127.0.0.1', resolve));
    store.unref();
    const at = `http://127.0.0.1:${store.address().port}`;
    servers.push({ ...(await workerdServer('workerd-tilelli-mnist-url', { entry: join(example, 'worker-url.js'), modelUrl: `${at}/mnist.tlm` })), width: 784, model: 'mnist', lib: 'tilelli, fetched' });
    servers.push({ ...(await workerdServer('workerd-tilelli-wide-url', { entry: join(example, 'worker-url.js'), modelUrl: `${at}/wide.tlm` })), width: 1024, model: 'wide', lib: 'tilelli, fetched' });
  }
  if (ONLY.has('ort')) {
    // As is: report whether it can create a session at all.
    const plain = await workerdServer('workerd-ort-plain', { source: ORT_ENTRY(784, false), model: m.mnist.onnx });
    const s = await plain.start();
    const r = await firstAnswer(s, digitsBody(1, 784));
    await s.stop();
    notes.push(r.status === 200
      ? 'onnxruntime-web 1.30 in workerd, bundled as is: runs'
      : `onnxruntime-web 1.30 in workerd, bundled as is (its .wasm imported as workerd requires): HTTP ${r.status}, ${JSON.parse(r.text).error.message}`);
    servers.push({ ...(await workerdServer('workerd-ort-mnist', { source: ORT_ENTRY(784, true), model: m.mnist.onnx })), width: 784, model: 'mnist', lib: 'onnxruntime-web (shim)' });
    servers.push({ ...(await workerdServer('workerd-ort-wide', { source: ORT_ENTRY(1024, true), model: m.wide.onnx })), width: 1024, model: 'wide', lib: 'onnxruntime-web (shim)' });
  }
  families.push({ title: 'workerd', servers });
}
if (ONLY.has('deno')) {
  const noopFile = join(WORK, 'deno-noop.js');
  await writeFile(noopFile, NOOP);
  const denoNoop = () => startDenoFile(bins.deno, noopFile);
  families.push({
    title: 'deno serve',
    servers: [
      { name: 'deno-noop', runtime: 'deno', start: denoNoop, width: 784, base: true },
      { name: 'deno-tilelli-mnist', runtime: 'deno', start: () => startDeno({ model: m.mnist.tlm }), width: 784, model: 'mnist', lib: 'tilelli' },
      { name: 'deno-tilelli-wide', runtime: 'deno', start: () => startDeno({ model: m.wide.tlm }), width: 1024, model: 'wide', lib: 'tilelli' },
    ],
  });
}

/** `deno serve` on a file that imports nothing (the no-op server), with the example's flags. */
async function startDenoFile(bin, file) {
  const startedAt = performance.now();
  const child = spawn(bin, ['serve', '--no-config', '--no-lock', '--no-remote', '--no-npm', '--host=127.0.0.1', '--port=0', file], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, HOME: WORK, DENO_DIR: join(WORK, 'deno-dir'), DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
  });
  let output = '';
  const origin = await new Promise((resolve, reject) => {
    const look = (d) => {
      output += d;
      const mm = output.match(/http:\/\/127\.0\.0\.1:(\d+)/);
      if (mm) resolve(`http://127.0.0.1:${mm[1]}`);
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.once('exit', () => reject(new Error(`deno exited: ${output}`)));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    origin, startedAt, pid: child.pid, rss: () => rssOf(child.pid), cpu: () => cpuOf(child.pid),
    stop: async () => { child.kill('SIGTERM'); await exited; },
  };
}

const results = new Map(); // name -> { cold, coldCpu, warm1, warm16, cpu1, cpu16, loaded: [], rss, peak, wasm }
for (const fam of families) {
  for (const s of fam.servers) results.set(s.name, { cold: [], coldCpu: [], warm1: [], warm16: [], cpu1: [], cpu16: [], loaded: [] });
}

// Cold: interleaved starts.
for (let i = 0; i < STARTS; i++) {
  for (const fam of families) {
    for (const s of fam.servers) {
      const server = await s.start();
      try {
        const r = await firstAnswer(server, digitsBody(1, s.width));
        if (r.status !== 200) throw new Error(`${s.name}: first answer HTTP ${r.status}: ${r.text}`);
        results.get(s.name).cold.push(r.ms);
        results.get(s.name).coldCpu.push(server.cpu());
        results.get(s.name).loaded.push(server.rss().rss);
      } finally {
        await server.stop();
      }
    }
  }
}

// Warm: every server of a family up at once, rounds interleaved.
for (const fam of families) {
  const up = [];
  try {
    for (const s of fam.servers) {
      const server = await s.start();
      up.push({ s, server, agent: new Agent({ keepAlive: true, maxSockets: 1 }) });
      await firstAnswer(server, digitsBody(1, s.width));
    }
    const bodies = new Map(up.map(({ s }) => [s.name, { 1: digitsBody(1, s.width), 16: digitsBody(16, s.width) }]));
    // A time for a wrong answer is worthless: each server's predictions on the 16 inputs must be
    // Node's (Model.load with the same activations; the float32 ONNX network may differ on a tie).
    for (const { s, server, agent } of up) {
      if (s.base || s.dataOnly) continue;
      const model = tl.Model.load(await readFile(m[s.model].tlm), s.lib.includes('int8') ? { activations: 'int8' } : undefined);
      const want = Array.from(model.predict(new Float32Array(bodies.get(s.name)[16].buffer)));
      model.free();
      const got = JSON.parse((await post(agent, server.origin, bodies.get(s.name)[16])).text).predictions;
      const differ = got.filter((p, i) => p !== want[i]).length;
      if (differ && !s.lib.startsWith('onnxruntime')) throw new Error(`${s.name}: predictions ${got} differ from Node's ${want}`);
      if (differ) notes.push(`${s.name}: ${differ} of 16 predictions differ from tilelli's in Node`);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const { s, server, agent } of up) {
        for (const batch of [1, 16]) {
          const body = bodies.get(s.name)[batch];
          const times = results.get(s.name)[`warm${batch}`];
          const end = performance.now() + BUDGET_MS;
          const cpu0 = server.cpu();
          let i = 0;
          for (; i < PER_ROUND && (i < 20 || performance.now() < end); i++) {
            const t0 = performance.now();
            const r = await post(agent, server.origin, body);
            times.push(performance.now() - t0);
            if (r.status !== 200) throw new Error(`${s.name}: HTTP ${r.status}: ${r.text}`);
          }
          results.get(s.name)[`cpu${batch}`].push((server.cpu() - cpu0) / i); // the server's CPU per request
        }
      }
    }
    for (const { s, server } of up) {
      const res = results.get(s.name);
      Object.assign(res, server.rss());
      if (s.lib?.startsWith('tilelli')) {
        const info = await (await fetch(`${server.origin}/model`)).json();
        res.wasm = info.memory.wasmBytes;
        res.build = info.build;
      }
    }
  } finally {
    for (const { server, agent } of up) {
      agent.destroy();
      await server.stop();
    }
  }
}

// Isolate memory as V8 accounts it: one more start of each workerd server with the inspector on,
// after its first answer the inspector's Runtime.getHeapUsage (the JS heap V8 reserved, and the
// backing stores of array buffers: the data module's bytes among them) plus the wasm memory the
// library reports (GET /model). What workerd holds outside the isolate (its copy of the config and
// of every embedded module, the compiled code) is in the RSS above, not here.
async function freePort() {
  const srv = createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}
async function heapUsage(port) {
  let list;
  for (let i = 0; i < 200 && !list?.length; i++) {
    list = await fetch(`http://127.0.0.1:${port}/json/list`).then((r) => r.json(), () => null);
    if (!list?.length) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (!list?.length) throw new Error(`no inspector on port ${port}`);
  // Node 20 has WebSocket only behind a flag: a child Node asks.
  const ask = `const ws = new WebSocket(process.argv[1]);
ws.onopen = () => ws.send(JSON.stringify({ id: 1, method: 'Runtime.getHeapUsage' }));
ws.onmessage = (e) => { const m = JSON.parse(e.data); if (m.id === 1) { console.log(JSON.stringify(m.result)); process.exit(0); } };`;
  const flags = typeof WebSocket === 'function' ? [] : ['--experimental-websocket'];
  const { stdout } = await promisify(execFile)(process.execPath, [...flags, '--no-warnings', '-e', ask, list[0].webSocketDebuggerUrl], { timeout: 10_000 });
  return JSON.parse(stdout);
}
for (const fam of families) {
  for (const s of fam.servers) {
    if (s.runtime !== 'workerd' || s.lib?.startsWith('onnxruntime')) continue;
    const port = await freePort();
    const server = await startWorkerd({ cwd: join(WORK, s.name), args: [`--inspector-addr=127.0.0.1:${port}`] });
    try {
      await firstAnswer(server, digitsBody(1, s.width));
      const heap = await heapUsage(port);
      const wasm = s.lib?.startsWith('tilelli') ? (await (await fetch(`${server.origin}/model`)).json()).memory.wasmBytes : 0;
      results.get(s.name).isolate = { heap: heap.totalSize, buffers: heap.backingStorageSize ?? NaN, wasm };
    } finally {
      await server.stop();
    }
  }
}

// --- report ---------------------------------------------------------------------------------------

const MiB = 2 ** 20;
const f = (v, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '-');
const sign = (v, d = 2) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(d)}` : '-');
const { stdout: cpu } = await promisify(execFile)('sh', ['-c', "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2; nproc"]).catch(() => ({ stdout: '' }));
console.log(`edge.mjs: ${STARTS} starts per server, ${ROUNDS} rounds of up to ${PER_ROUND} warm requests (${BUDGET_MS} ms) per batch size; ${cpu.trim().replace(/\n/, ', ')} CPUs; load ${(await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')}`);
console.log('Times in ms (medians). Memory in MiB: the process RSS right after the first answer (model loaded; median over the starts), and after the warm traffic (garbage included; peak in brackets).');
console.log('Δ = minus the no-op server of the same runtime, same run.\n');
console.log('| runtime | server | model | cold | Δ cold | warm b=1 | Δ b=1 | warm b=16 | Δ b=16 | RSS loaded | Δ | RSS after traffic [peak] | Δ | wasm memory |');
console.log('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
const deltas = {};
for (const fam of families) {
  const base = results.get(fam.servers.find((s) => s.base).name);
  for (const s of fam.servers) {
    const r = results.get(s.name);
    const d = {
      cold: median(r.cold) - median(base.cold), w1: median(r.warm1) - median(base.warm1),
      w16: median(r.warm16) - median(base.warm16), rss: (median(r.loaded) - median(base.loaded)) / MiB,
      rssAfter: (r.rss - base.rss) / MiB,
    };
    deltas[s.name] = d;
    console.log(`| ${fam.title} | ${s.base ? 'no-op' : s.lib} | ${s.model ?? '-'} | ${f(median(r.cold), 1)} | ${s.base ? '' : sign(d.cold, 1)} | ` +
      `${f(median(r.warm1), 3)} | ${s.base ? '' : sign(d.w1, 3)} | ${f(median(r.warm16), 3)} | ${s.base ? '' : sign(d.w16, 3)} | ` +
      `${f(median(r.loaded) / MiB, 1)} | ${s.base ? '' : sign(d.rss, 1)} | ${f(r.rss / MiB, 1)} [${f(r.peak / MiB, 1)}] | ${s.base ? '' : sign(d.rssAfter, 1)} | ` +
      `${r.wasm ? `${f(r.wasm / MiB, 1)} (${r.build})` : ''} |`);
  }
}
console.log('\nCPU time the server process used (all its threads, /proc/PID/task/*/schedstat), in ms: to its first answer (median over the starts),');
console.log('and per warm request (mean per round, median over rounds). Unlike the wall times above, it does not grow while the server waits for a CPU.\n');
console.log('| runtime | server | model | cold CPU | Δ | CPU per request b=1 | Δ | CPU per request b=16 | Δ |');
console.log('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const fam of families) {
  const base = results.get(fam.servers.find((s) => s.base).name);
  for (const s of fam.servers) {
    const r = results.get(s.name);
    const d = { cold: median(r.coldCpu) - median(base.coldCpu), c1: median(r.cpu1) - median(base.cpu1), c16: median(r.cpu16) - median(base.cpu16) };
    Object.assign(deltas[s.name], { cpuCold: d.cold, cpu1: d.c1, cpu16: d.c16 });
    console.log(`| ${fam.title} | ${s.base ? 'no-op' : s.lib} | ${s.model ?? '-'} | ${f(median(r.coldCpu), 1)} | ${s.base ? '' : sign(d.cold, 1)} | ` +
      `${f(median(r.cpu1), 3)} | ${s.base ? '' : sign(d.c1, 3)} | ${f(median(r.cpu16), 3)} | ${s.base ? '' : sign(d.c16, 3)} |`);
  }
}
console.log('\nIsolate memory as V8 accounts it (workerd, one more start with the inspector on, after the first answer), in MiB: the JS heap V8 reserved,');
console.log('the backing stores of array buffers (a data module\'s bytes among them) and the wasm memory; compiled code and workerd\'s own copies of the config\'s modules are outside.\n');
console.log('| runtime | server | model | JS heap | array buffers | wasm memory | isolate | Δ |');
console.log('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |');
for (const fam of families) {
  const baseServer = fam.servers.find((s) => s.base);
  const base = results.get(baseServer.name).isolate;
  if (!base) continue;
  const total = (i) => i.heap + i.buffers + i.wasm;
  for (const s of fam.servers) {
    const i = results.get(s.name).isolate;
    if (!i) continue;
    const d = (total(i) - total(base)) / MiB;
    if (deltas[s.name]) deltas[s.name].isolate = d;
    console.log(`| ${fam.title} | ${s.base ? 'no-op' : s.lib} | ${s.model ?? '-'} | ${f(i.heap / MiB, 1)} | ${f(i.buffers / MiB, 1)} | ${f(i.wasm / MiB, 1)} | ${f(total(i) / MiB, 1)} | ${s.base ? '' : sign(d, 1)} |`);
  }
}
console.log('');
for (const n of notes) console.log(n);
console.log('Threads: one everywhere (the library runs on the request\'s thread; workerd and deno serve here run one isolate).');
console.log('Physical limits: an isolate on Cloudflare Workers may hold 128 MB; the wide MLP is 96 MiB as float32 and ' +
  `${f((await readFile(m.wide.tlm)).length / MiB, 1)} MiB packed (i2).`);

const target = (what, value, limit, unit) => console.log(`${Number.isFinite(value) && value <= limit ? 'MET    ' : 'NOT MET'} ${what}: ${sign(value, unit === 'ms' && limit < 1 ? 3 : 1)} ${unit} (target <= ${limit} ${unit})`);
if (deltas['workerd-tilelli-mnist']) {
  target('workerd cold start, MNIST (first request: wasm instantiate, model load, predict) over the no-op worker', deltas['workerd-tilelli-mnist'].cold, TARGETS.coldMs, 'ms');
  const held = deltas['workerd-noop-modules-mnist'];
  if (held) console.log(`        of which workerd holding its modules (the no-op worker declaring the same bundle, wasm and model, unused): ${sign(held.cold, 1)} ms (CPU ${sign(held.cpuCold, 1)}); the library's own: ${sign(deltas['workerd-tilelli-mnist'].cold - held.cold, 1)} ms (CPU ${sign(deltas['workerd-tilelli-mnist'].cpuCold - held.cpuCold, 1)})`);
  target('workerd warm request, MNIST, batch 1, over the no-op worker (float activations: PyTorch\'s numbers)', deltas['workerd-tilelli-mnist'].w1, TARGETS.warmMs, 'ms');
  target('workerd warm request, MNIST, batch 1, over the no-op worker (int8 activations)', deltas['workerd-tilelli-mnist-int8'].w1, TARGETS.warmMs, 'ms');
  if (deltas['workerd-noop-read']) console.log(`        of which reading the request body (the no-op worker reading it, no library): ${sign(deltas['workerd-noop-read'].w1, 3)} ms`);
  console.log('The same, as CPU time (what a Worker is billed and limited by):');
  target('workerd cold start CPU, MNIST, over the no-op worker', deltas['workerd-tilelli-mnist'].cpuCold, TARGETS.coldMs, 'ms');
  target('workerd CPU per request, MNIST, batch 1, over the no-op worker (float activations)', deltas['workerd-tilelli-mnist'].cpu1, TARGETS.warmMs, 'ms');
  target('workerd CPU per request, MNIST, batch 1, over the no-op worker (int8 activations)', deltas['workerd-tilelli-mnist-int8'].cpu1, TARGETS.warmMs, 'ms');
  if (deltas['workerd-noop-read']) console.log(`        of which reading the request body: ${sign(deltas['workerd-noop-read'].cpu1, 3)} ms`);
}
if (deltas['workerd-tilelli-wide']) {
  target('workerd isolate memory with the wide MLP loaded, bundled (RSS after the first answer, over the no-op worker)', deltas['workerd-tilelli-wide'].rss, TARGETS.wideMiB, 'MiB');
  console.log(`        of which workerd's data module itself (the no-op worker importing the same model file): ${sign(deltas['workerd-noop-data-wide'].rss, 1)} MiB`);
  target('workerd isolate memory with the wide MLP loaded, fetched (RSS after the first answer, over the no-op worker)', deltas['workerd-tilelli-wide-url'].rss, TARGETS.wideMiB, 'MiB');
  if (deltas['workerd-tilelli-wide'].isolate !== undefined) {
    target('workerd isolate memory with the wide MLP loaded, bundled, as V8 accounts it (JS heap + array buffers + wasm memory, over the no-op worker)', deltas['workerd-tilelli-wide'].isolate, TARGETS.wideMiB, 'MiB');
    target('workerd isolate memory with the wide MLP loaded, fetched, as V8 accounts it', deltas['workerd-tilelli-wide-url'].isolate, TARGETS.wideMiB, 'MiB');
  }
}
