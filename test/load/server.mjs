// server.mjs — a small HTTP inference server on the library, for the load test
// (test/js/load.test.js): the MNIST model of test/fixtures/mnist packed at startup, POST /predict
// with { x: [784 x batch numbers] } -> { predictions }, bad input -> 400 with the TilelliError's
// code, GET /stats -> memory figures (after a forced GC when run with --expose-gc). Listens on
// 127.0.0.1 only, on a free port it reports to its parent (IPC), and exits when the parent
// says so, disconnects, or after TILELLI_SERVER_MAX_SECONDS (default 120) whatever happens.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';

import { init, TilelliError } from 'tilelli';

const dir = new URL('../fixtures/mnist/', import.meta.url);
const MAX_BODY = 1 << 20;

const tl = await init();
const arch = JSON.parse(await readFile(new URL('architecture.json', dir), 'utf8'));
const model = tl.Model.load(tl.packCheckpoint(await readFile(new URL('mlp.safetensors', dir)), arch));

function stats() {
  globalThis.gc?.();
  const m = process.memoryUsage(), t = tl.memoryStats();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, ...t };
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function predict(body) {
  let req;
  try {
    req = JSON.parse(body);
  } catch {
    return [400, { code: 'PARSE', message: 'the body is not JSON' }];
  }
  try {
    if (!req || typeof req !== 'object' || !('x' in req)) return [400, { code: 'INVALID_ARGUMENT', message: 'give { x: [...] }' }];
    const x = Array.isArray(req.x) ? req.x.map((v) => (v === null ? NaN : v)) : req.x; // JSON has no NaN: null stands for it
    return [200, { predictions: Array.from(model.predict(x)) }];
  } catch (e) {
    if (e instanceof TilelliError) return [400, { code: e.code, message: e.message }];
    throw e;
  }
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') return send(res, 200, stats());
  if (req.method !== 'POST' || req.url !== '/predict') return send(res, 404, { message: 'POST /predict or GET /stats' });
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY) {
      send(res, 413, { message: `the body is past ${MAX_BODY} bytes` });
      req.destroy();
    } else {
      chunks.push(c);
    }
  });
  req.on('end', () => {
    if (size > MAX_BODY) return;
    try {
      const [status, body] = predict(Buffer.concat(chunks).toString('utf8'));
      send(res, status, body);
    } catch (e) {
      send(res, 500, { message: String(e?.message ?? e) });
    }
  });
});

const stop = () => server.close(() => { model.free(); process.exit(0); });
server.listen(0, '127.0.0.1', () => process.send?.({ port: server.address().port, input: model.inputSize }));
process.on('message', (m) => { if (m === 'stop') stop(); });
process.on('disconnect', stop);
setTimeout(() => process.exit(2), Number(process.env.TILELLI_SERVER_MAX_SECONDS ?? 120) * 1000).unref();
