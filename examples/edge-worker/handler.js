// handler.js — the request handler every entry shares: a Cloudflare Worker or plain workerd
// (worker.js, worker-url.js), `deno serve` (deno.js) and a Node HTTP server (node.js). It uses
// only the fetch API (Request, Response, URL) and the package's public API, so the entries differ
// only in how they get the model's bytes.
//
//   POST /predict              body: float32 little-endian (application/octet-stream), batch x
//                              input values back to back; or JSON (application/json): one input
//                              [x0, x1, ...], a batch [[...], [...]], a flat batch, or { "inputs": ... }
//        /predict?outputs=1    the model's outputs too (the logits), one array per input
//   GET  /model                what the model is: sizes, layers, metadata, the wasm build, memory
//
// A prediction answers 200 { "predictions": [7, 2, ...] }. Bad input answers 4xx with
// { "error": { "code", "message" } } and never reaches the model half-read: an empty body, a length
// that is not whole inputs, NaN or infinity (the library's NON_FINITE names the index), ragged or
// non-numeric JSON: 400; a body past maxBatch inputs: 413, before it is read (the Content-Length, or
// the stream counted chunk by chunk); another content type: 415.
//
// The model is loaded once per isolate (process): at module scope when the bytes are bundled, so
// that the runtime does it while it starts; on the first request when they are fetched, and kept.
import { init, TilelliError } from 'tilelli/serve';

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };
// A float in JSON takes at most about 25 characters ("-1.2345678901234567e-123,"); 32 bytes per
// value bounds a JSON batch of maxBatch inputs with room for spaces and brackets.
const JSON_BYTES_PER_VALUE = 32;
// The library's codes that mean "the input was wrong"; any other TilelliError is the server's.
const INPUT_CODES = new Set(['SIZE_MISMATCH', 'NON_FINITE', 'EMPTY', 'INVALID_ARGUMENT', 'SHAPE']);

class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const errorResponse = (status, code, message, headers) =>
  new Response(JSON.stringify({ error: { code, message } }), { status, headers: { ...JSON_HEADERS, ...headers } });

/**
 * The path and the query (without '?', '' when none) of a request's absolute URL, without building
 * a URL object: this runs on every request.
 */
function split(url) {
  const scheme = url.indexOf('://');
  let at = url.indexOf('/', scheme < 0 ? 0 : scheme + 3);
  if (at < 0) at = url.length;
  const q = url.indexOf('?', at), h = url.indexOf('#', at);
  const end = q >= 0 ? q : h >= 0 ? h : url.length;
  return { route: url.slice(at, end) || '/', query: q >= 0 ? url.slice(q + 1, h > q ? h : url.length) : '' };
}

/**
 * Read a request body of at most `limit` bytes (a Uint8Array); past it, a 413 before
 * (Content-Length) or while (chunked) reading.
 */
async function readBounded(request, limit) {
  const declared = request.headers.get('content-length');
  if (declared !== null) {
    const n = Number(declared);
    if (!Number.isSafeInteger(n) || n < 0) throw new HttpError(400, 'BAD_LENGTH', `Content-Length ${JSON.stringify(declared)} is not a byte count`);
    if (n > limit) throw new HttpError(413, 'TOO_LARGE', `the body has ${n} bytes; this server takes at most ${limit}`);
    // The HTTP layer holds the body to its declared length. bytes() where the runtime has it: in
    // workerd it measured 0 to 50 us less CPU per request than arrayBuffer().
    return typeof request.bytes === 'function' ? request.bytes() : new Uint8Array(await request.arrayBuffer());
  }
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw new HttpError(413, 'TOO_LARGE', `the body has more than ${limit} bytes; this server takes at most ${limit}`);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return all;
}

/** Write JSON inputs into `into` (a Float32Array of maxBatch inputs); returns the used part. */
function inputsFromJson(value, width, maxBatch, into) {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    if (!('inputs' in value)) throw new HttpError(400, 'BAD_JSON', 'the JSON body must be an array of numbers, an array of arrays, or { "inputs": ... }');
    value = value.inputs;
  }
  if (!Array.isArray(value) || value.length === 0) {
    throw new HttpError(400, Array.isArray(value) ? 'EMPTY' : 'BAD_JSON', `inputs must be a non-empty array, got ${Array.isArray(value) ? '[]' : JSON.stringify(value)?.slice(0, 40)}`);
  }
  const number = (v, where) => {
    if (typeof v !== 'number') throw new HttpError(400, 'NOT_A_NUMBER', `${where} is ${v === null ? 'null' : typeof v}, not a number`);
    return v;
  };
  if (Array.isArray(value[0])) {
    if (value.length > maxBatch) throw new HttpError(413, 'TOO_LARGE', `${value.length} inputs; this server takes at most ${maxBatch} per request`);
    for (let b = 0; b < value.length; b++) {
      const row = value[b];
      if (!Array.isArray(row) || row.length !== width) {
        throw new HttpError(400, 'RAGGED', `inputs[${b}] has ${Array.isArray(row) ? `${row.length} values` : `type ${typeof row}`}; every input has ${width} values`);
      }
      for (let c = 0; c < width; c++) into[b * width + c] = number(row[c], `inputs[${b}][${c}]`);
    }
    return into.subarray(0, value.length * width);
  }
  if (value.length % width) {
    throw new HttpError(400, 'SIZE_MISMATCH', `a flat input has ${value.length} values, not a multiple of ${width}`);
  }
  if (value.length > maxBatch * width) throw new HttpError(413, 'TOO_LARGE', `${value.length / width} inputs; this server takes at most ${maxBatch} per request`);
  for (let i = 0; i < value.length; i++) into[i] = number(value[i], `inputs[${i}]`);
  return into.subarray(0, value.length);
}

/**
 * The handler: an object with fetch(request, env), the shape workerd, `deno serve` and the Node
 * adapter call.
 * @param {object} options
 * @param {ArrayBuffer | Uint8Array | ((env: object) => Promise<ArrayBuffer | Uint8Array | Response>)} options.model
 *   the packed model file's bytes (loaded now, at module scope), or a function that gets them
 *   (called on the first request; a failure is answered with 503 and retried on the next request).
 *   A Response (the function's fetch, unread) is streamed into the wasm memory the model keeps
 *   (Model.fromResponse), so the isolate never holds the whole file in JavaScript
 * @param {string} [options.runtime] named in GET /model
 * @param {number} [options.maxBatch] inputs per request at most (default 64)
 * @param {'float' | 'int8'} [options.activations] the precision of every linear layer's input
 *   (Model.load's option; default: what the file says). int8 runs the MNIST MLP about 6 times
 *   faster at batch 1, with numbers that are no longer PyTorch's float ones
 * @param {WebAssembly.Module} [options.module] the tilelli build to run (init({ module })), such
 *   as the relaxed-SIMD serving build (import relaxed from 'tilelli/tilelli-serve-relaxed.wasm'):
 *   faster int8 activations, a longer cold start. Default: the one tilelli/serve picks
 */
export function createHandler({ model, runtime = 'unknown', maxBatch = 64, activations, module } = {}) {
  let loading = null; // Promise of the loaded state, kept for the isolate's life once it succeeds
  let loaded = null;

  async function load(file, source) {
    const tl = await init(module ? { module } : undefined);
    const opts = activations ? { activations } : undefined;
    let byteLength;
    let m;
    if (file instanceof Response) {
      // Streamed into the wasm memory the model keeps: no whole copy of the file in JavaScript.
      m = await tl.Model.fromResponse(file, { ...opts, onProgress: ({ loaded }) => { byteLength = loaded; } });
    } else {
      m = tl.Model.load(file, opts); // copied once into wasm memory, where the model keeps it
      byteLength = file.byteLength;
    }
    const width = m.inputSize;
    loaded = {
      tl, model: m, width, source,
      jsonInputs: new Float32Array(maxBatch * width), // reused: JSON inputs are written here
      outputs: new Float32Array(maxBatch * m.outputSize), // reused: every run writes its outputs here
      limits: { maxBatch, octetBytes: maxBatch * width * 4, jsonBytes: maxBatch * width * JSON_BYTES_PER_VALUE },
      describe: () => ({
        input: m.inputSize, output: m.outputSize, layers: m.layers, metadata: m.metadata, bytes: byteLength,
        source, runtime, build: { relaxed: 'relaxed-simd', simd: 'simd128', scalar: 'scalar' }[tl.build], threads: 1, version: tl.version,
        limits: loaded.limits, memory: tl.memoryStats(),
      }),
    };
    return loaded;
  }

  if (typeof model === 'function') {
    // fetched on first use
  } else if (model instanceof ArrayBuffer || ArrayBuffer.isView(model)) {
    loading = load(model, 'bundled');
    loading.catch(() => {}); // answered on each request (503), not an unhandled rejection at start
  } else {
    throw new TypeError('createHandler: model must be the model bytes or a function returning them');
  }

  function ready(env) {
    if (loaded) return loaded;
    if (!loading) {
      loading = Promise.resolve().then(() => model(env)).then((bytes) => load(bytes, 'fetched'));
      loading.catch(() => { loading = null; }); // retried on the next request
    }
    return loading;
  }

  async function predict(request, query, state) {
    const type = (request.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
    let x;
    if (type === 'application/octet-stream') {
      const body = await readBounded(request, state.limits.octetBytes);
      if (body.byteLength === 0) throw new HttpError(400, 'EMPTY', `the body is empty; send batch x ${state.width} float32 values`);
      if (body.byteLength % 4) throw new HttpError(400, 'SIZE_MISMATCH', `the body has ${body.byteLength} bytes, not whole float32 values`);
      // no copy where the bytes are aligned: the library reads them straight into wasm memory
      x = body.byteOffset % 4 ? new Float32Array(body.slice().buffer) : new Float32Array(body.buffer, body.byteOffset, body.byteLength / 4);
    } else if (type === 'application/json' || type.endsWith('+json')) {
      const body = await readBounded(request, state.limits.jsonBytes);
      if (body.byteLength === 0) throw new HttpError(400, 'EMPTY', 'the body is empty; send a JSON array of inputs');
      let value;
      try {
        value = JSON.parse(new TextDecoder().decode(body));
      } catch (e) {
        throw new HttpError(400, 'BAD_JSON', `the body is not JSON: ${e.message}`);
      }
      x = inputsFromJson(value, state.width, maxBatch, state.jsonInputs);
    } else {
      throw new HttpError(415, 'UNSUPPORTED_TYPE', `Content-Type ${type ? JSON.stringify(type) : 'is missing'}; send application/octet-stream (float32) or application/json`);
    }
    const { model: m } = state;
    // Model.run checks the rest (whole inputs, NaN and infinity: NON_FINITE names the index). One
    // run gives the predictions and the outputs, written into a buffer kept for the isolate.
    const out = state.outputs.subarray(0, Math.floor(x.length / state.width) * m.outputSize);
    const predictions = m.predict(x, { out });
    let body = `{"predictions":[${predictions.join(',')}]`;
    if (query && new URLSearchParams(query).get('outputs') === '1') {
      const rows = [];
      for (let b = 0; b < predictions.length; b++) rows.push(`[${out.subarray(b * m.outputSize, (b + 1) * m.outputSize).join(',')}]`);
      body += `,"outputs":[${rows.join(',')}]`;
    }
    return new Response(`${body}}`, { headers: JSON_HEADERS });
  }

  return {
    async fetch(request, env) {
      try {
        const { route, query } = split(request.url);
        if (route !== '/predict' && route !== '/model') throw new HttpError(404, 'NOT_FOUND', `no route ${route}: POST /predict, GET /model`);
        const method = route === '/predict' ? 'POST' : 'GET';
        if (request.method !== method) {
          return errorResponse(405, 'METHOD_NOT_ALLOWED', `${route} takes ${method}, not ${request.method}`, { allow: method });
        }
        let state;
        try {
          state = loaded ?? await ready(env);
        } catch (e) {
          return errorResponse(503, 'MODEL_UNAVAILABLE', `the model could not be loaded: ${e.code ? `${e.code} ` : ''}${e.message}`);
        }
        if (route === '/model') return new Response(JSON.stringify(state.describe()), { headers: JSON_HEADERS });
        return await predict(request, query, state);
      } catch (e) {
        if (e instanceof HttpError) return errorResponse(e.status, e.code, e.message);
        if (e instanceof TilelliError) {
          if (INPUT_CODES.has(e.code)) return errorResponse(400, e.code, e.message);
          return errorResponse(e.code === 'OUT_OF_MEMORY' ? 503 : 500, e.code, e.message);
        }
        return errorResponse(500, 'INTERNAL', String(e?.message ?? e));
      }
    },
  };
}
