// newuser.test.js — what a new user hits first: the CLI checking inputs against the model,
// checkpoints as PyTorch writes them (every dtype, errors that say where), the types matching
// what ESM and CommonJS export, fine-tuning from a checkpoint's float weights in the worker,
// Model.fromURL over HTTP, and the smaller answers (bench's size line, a checkpoint given to
// run, an architecture with a JSON mistake, a bad label on the main thread).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import * as esm from 'tilelli';
import { init, startTraining, TilelliError } from 'tilelli';

import { writeSafetensors } from './safetensors.js';
import { mnist, tilelli } from './util.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixtures = join(root, 'test', 'fixtures', 'mnist');
const require = createRequire(import.meta.url);
const tl = await init();


async function tempDir(body) {
  const dir = await mkdtemp(join(tmpdir(), 'tilelli-newuser-'));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A 16-input, 3-output packed model (one linear layer). */
function smallModel() {
  const w = Float32Array.from({ length: 3 * 16 }, (_, i) => ((i * 7) % 5) - 2);
  const m = tl.PackedMatrix.fromWeights(w, [3, 16]);
  try {
    return tl.packModel({ input: 16, layers: [{ type: 'linear', matrix: m, bias: [0, 0, 0] }] });
  } finally {
    m.free();
  }
}


// ---------------------------------------------------------------------------------------------
// 1. tilelli run checks every input against the model
// ---------------------------------------------------------------------------------------------

test('tilelli run refuses inputs whose width is not the model\'s, and JSON that is ragged or not numbers', async () => {
  await tempDir(async (dir) => {
    const model = join(dir, 'm16.tlm');
    await writeFile(model, smallModel());
    const json = join(dir, 'in.json');
    const runJson = async (value) => {
      await writeFile(json, JSON.stringify(value));
      return tilelli('run', model, json);
    };
    // 5 vectors of 784 values for a 16-input model: 245 "predictions" before
    let r = await runJson(Array.from({ length: 5 }, () => Array(784).fill(0.5)));
    assert.equal(r.code, 1, r.stdout.slice(0, 200));
    assert.match(r.stderr, /in\.json: vector 0 has 784 values; the model's input is 16 \[SIZE_MISMATCH\]/);
    assert.equal(r.stdout, '');
    r = await runJson([Array(16).fill(0), Array(15).fill(0)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /in\.json: vector 1 has 15 values; the model's input is 16/);
    for (const [bad, shown] of [[null, 'null'], [true, 'true'], ['3', '"3"']]) {
      const row = Array(16).fill(1);
      row[4] = bad;
      r = await runJson([row]);
      assert.equal(r.code, 1, `${shown} in a vector`);
      assert.match(r.stderr, new RegExp(`in\\.json: vector 0, value 4 is ${shown}, not a number`));
    }
    r = await runJson([[Array(16).fill(0)]]);
    assert.equal(r.code, 1, 'a vector of arrays');
    r = await runJson({ x: [1, 2] });
    assert.equal(r.code, 1, 'an object');
    // a safetensors tensor [20, 784]: 980 "predictions" before
    const st = join(dir, 'in.safetensors');
    await writeFile(st, writeSafetensors([{ name: 'x', dtype: 'F32', shape: [20, 784], data: new Float32Array(20 * 784) }]));
    r = await tilelli('run', model, st);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /tensor "x" \[20, 784\] is not \[batch, 16\] or \[16\]/);
    // what is right still runs: 2 vectors, one flat vector, a [3, 16] tensor
    r = await runJson([Array(16).fill(0), Array(16).fill(1)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 2);
    r = await runJson(Array(16).fill(1));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 1);
    await writeFile(st, writeSafetensors([{ name: 'x', dtype: 'F16', shape: [3, 16], data: new Uint16Array(48) }]));
    r = await tilelli('run', model, st);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 3);
  });
});

// ---------------------------------------------------------------------------------------------
// 2. checkpoints as people have them
// ---------------------------------------------------------------------------------------------

/** A PyTorch-like state_dict: float weights beside an I64 counter, a BOOL mask, position ids, F64, F8. */
function stateDict() {
  const w = Float32Array.from({ length: 4 * 3 }, (_, i) => Math.sin(i + 1));
  return writeSafetensors([
    { name: 'fc.weight', dtype: 'F32', shape: [4, 3], data: w },
    { name: 'fc.bias', dtype: 'F32', shape: [4], data: new Float32Array([0.1, -0.2, 0.3, 0]) },
    { name: 'bn.num_batches_tracked', dtype: 'I64', shape: [], data: new BigInt64Array([1234n]) },
    { name: 'embeddings.position_ids', dtype: 'I64', shape: [1, 4], data: new BigInt64Array([0n, 1n, 2n, 3n]) },
    { name: 'attn.mask', dtype: 'BOOL', shape: [2, 2], data: new Uint8Array([1, 0, 0, 1]) },
    { name: 'head.weight64', dtype: 'F64', shape: [2, 3], data: new Float64Array([1, -2, 3.5, 0.25, -1e-3, 7]) },
    { name: 'q.e4m3', dtype: 'F8_E4M3', shape: [2], data: new Uint8Array([0x38, 0xb8]) },
    { name: 'ids32', dtype: 'I32', shape: [2], data: new Int32Array([-5, 7]) },
    { name: 'u16', dtype: 'U16', shape: [1], data: new Uint16Array([65535]) },
  ]);
}

test('a state_dict with I64, BOOL, F64 and F8 tensors opens whole: inspect lists all, stats skips buffers, pack uses what it needs', async () => {
  const st = tl.Safetensors.open(stateDict());
  try {
    assert.deepEqual(st.tensors.map((t) => t.dtype), ['F32', 'F32', 'I64', 'I64', 'BOOL', 'F64', 'F8_E4M3', 'I32', 'U16']);
    assert.deepEqual(Array.from(st.read('bn.num_batches_tracked')), [1234]);
    assert.deepEqual(Array.from(st.read('embeddings.position_ids')), [0, 1, 2, 3]);
    assert.deepEqual(Array.from(st.read('attn.mask')), [1, 0, 0, 1]);
    assert.deepEqual(Array.from(st.read('head.weight64')), Array.from(Float32Array.from([1, -2, 3.5, 0.25, -1e-3, 7])));
    assert.deepEqual(Array.from(st.read('q.e4m3')), [1, -1]);
    assert.deepEqual(Array.from(st.read('ids32')), [-5, 7]);
  } finally {
    st.free();
  }
  await tempDir(async (dir) => {
    const file = join(dir, 'sd.safetensors');
    await writeFile(file, stateDict());
    const info = await tilelli('inspect', file);
    assert.equal(info.code, 0, info.stderr);
    for (const [name, dtype] of [['bn.num_batches_tracked', 'I64'], ['attn.mask', 'BOOL'], ['head.weight64', 'F64'], ['q.e4m3', 'F8_E4M3']]) {
      assert.match(info.stdout, new RegExp(`${name.replace(/\./g, '\\.')}\\s+${dtype}\\s`), `inspect lists ${name}`);
    }
    const stats = await tilelli('stats', file, '--json');
    assert.equal(stats.code, 0, stats.stderr);
    assert.deepEqual(JSON.parse(stats.stdout).tensors.map((t) => t.name), ['fc.weight', 'head.weight64']);
    const arch = join(dir, 'arch.json');
    await writeFile(arch, JSON.stringify({ input: 3, layers: [{ type: 'linear', weight: 'fc.weight', bias: 'fc.bias' }] }));
    const packed = await tilelli('pack', file, '--arch', arch, '-o', join(dir, 'sd.tlm'));
    assert.equal(packed.code, 0, packed.stderr);
    await writeFile(arch, JSON.stringify({ input: 4, layers: [{ type: 'linear', weight: 'embeddings.position_ids' }] }));
    const refused = await tilelli('pack', file, '--arch', arch, '-o', join(dir, 'bad.tlm'));
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /tensor "embeddings\.position_ids" is I64, a float dtype \(.*\) was expected\) \[INVALID_DTYPE\]/);
  });
});

test('malformed checkpoints say what and where: the tensor, its dtype, byte offsets, expected and found', async () => {
  const header = (json, data = 0) => {
    let h = json;
    while ((8 + h.length) % 8) h += ' ';
    const b = new Uint8Array(8 + h.length + data);
    new DataView(b.buffer).setBigUint64(0, BigInt(h.length), true);
    b.set(new TextEncoder().encode(h), 8);
    return b;
  };
  const cases = [
    [new Uint8Array(0), 'PARSE', /0 bytes: a safetensors file starts with an 8-byte header length/],
    [new TextEncoder().encode('garbage, not a checkpoint at all'), 'PARSE', /byte 0: the header length \d+ runs past the end of the 32-byte file/],
    [header('{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}', 24), 'PARSE',
      /tensor "w": F32 shape of 6 elements needs 24 bytes, but data_offsets \[0, 20\] \(file bytes \d+\.\.\d+\) hold 20/],
    [header('{"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}', 1), 'INVALID_DTYPE', /tensor "w": dtype "F4" is not one of/],
    [header('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}', 8), 'PARSE', /the header \(bytes 8\.\.\d+\) is not valid JSON/],
  ];
  for (const [bytes, code, detail] of cases) {
    assert.throws(() => tl.Safetensors.open(bytes), (e) => e instanceof TilelliError && e.code === code && detail.test(e.message), String(detail));
  }
  // the packed model file says where too (src/model.c)
  const tlm = smallModel();
  for (const [bytes, detail] of [[new Uint8Array(0), /0 bytes: too short for a model file/],
    [tlm.subarray(0, tlm.length - 5), /layers\[0\]\.\w+ \[\d+, \d+\] runs past the \d+-byte data section/]]) {
    assert.throws(() => tl.Model.load(bytes), (e) => e instanceof TilelliError && e.code === 'PARSE' && detail.test(e.message), String(detail));
  }
  await tempDir(async (dir) => {
    const file = join(dir, 'empty.safetensors');
    await writeFile(file, new Uint8Array(0));
    const r = await tilelli('inspect', file);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /0 bytes: a safetensors file starts with an 8-byte header length\) \[PARSE\]/);
  });
});

// ---------------------------------------------------------------------------------------------
// 3. the types promise what ESM and CommonJS export
// ---------------------------------------------------------------------------------------------

/** The value exports js/index.d.ts declares, by the TypeScript compiler's own reading. */
function declaredValueExports() {
  const ts = require('typescript');
  const file = join(root, 'js', 'index.d.ts');
  const program = ts.createProgram([file], { strict: true, noEmit: true, types: [], lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'] });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(file));
  return checker.getExportsOfModule(moduleSymbol)
    .filter((s) => {
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
      const typeOnly = s.declarations?.some((d) => ts.isExportSpecifier(d) && (d.isTypeOnly || d.parent.parent.isTypeOnly));
      return !typeOnly && (target.flags & ts.SymbolFlags.Value) !== 0;
    })
    .map((s) => s.name).sort();
}

test('every value the types declare exists at run time, in ESM and in CommonJS, and nothing else is exported', async () => {
  const declared = declaredValueExports();
  assert.deepEqual(declared, ['TilelliError', 'Tokenizer', 'init', 'loadLanguageModel', 'relaxedSupported', 'simdSupported', 'startTraining', 'wasmUrl']);
  assert.deepEqual(Object.keys(esm).sort(), declared, 'the ESM entry');
  const cjs = require('tilelli'); // package.json "require": js/index.cjs
  assert.deepEqual(Object.keys(cjs).filter((k) => k !== 'module.exports').sort(), declared, 'the CommonJS entry');
  for (const name of declared) assert.equal(typeof cjs[name], 'function', `require('tilelli').${name}`);
  assert.equal(cjs.TilelliError, TilelliError, 'one class: instanceof works across import and require');
  assert.equal(cjs.startTraining, startTraining);
  const api = await cjs.init();
  assert.throws(() => api.absmeanScale([]), (e) => e instanceof cjs.TilelliError && e.code === 'EMPTY');
  assert.equal(api.TilelliError, TilelliError);
  // a CommonJS program, as a user writes it
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', `
    const { init, TilelliError, simdSupported, wasmUrl, startTraining } = require('tilelli');
    init().then((tl) => {
      let code;
      try { tl.absmeanScale([NaN]); } catch (e) { code = e instanceof TilelliError && e.code; }
      console.log(JSON.stringify([code, typeof simdSupported(), wasmUrl(false).href.endsWith('tilelli-scalar.wasm'), typeof startTraining]));
    });`], { cwd: root });
  assert.deepEqual(JSON.parse(stdout), ['NON_FINITE', 'boolean', true, 'function']);
});

test('everything reachable from init() is on the declared Tilelli interface', () => {
  const ts = require('typescript');
  const file = join(root, 'js', 'index.d.ts');
  const program = ts.createProgram([file], { strict: true, noEmit: true, types: [], lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'] });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(file));
  const tilelli = checker.getExportsOfModule(moduleSymbol).find((s) => s.name === 'Tilelli');
  const declared = checker.getDeclaredTypeOfSymbol(tilelli).getProperties().map((p) => p.name).sort();
  assert.deepEqual(Object.keys(tl).sort(), declared);
  for (const [cls, statics] of [['Model', ['load', 'fromURL', 'isModelFile']], ['Network', ['create', 'fromModel', 'fromCheckpoint']], ['Safetensors', ['open']]]) {
    for (const s of statics) assert.equal(typeof tl[cls][s], 'function', `tl.${cls}.${s}`);
    const type = checker.getTypeOfSymbol(checker.getDeclaredTypeOfSymbol(tilelli).getProperty(cls));
    for (const s of statics) assert.ok(type.getProperty(s), `the types declare ${cls}.${s}`);
  }
});

// ---------------------------------------------------------------------------------------------
// 4. fine-tuning from float weights, in the worker
// ---------------------------------------------------------------------------------------------

test('fine-tuning the MNIST checkpoint in the worker keeps its float weights and its accuracy (README lr)', async () => {
  const { train, test: testSet } = mnist();
  const checkpoint = new Uint8Array(await readFile(join(fixtures, 'mlp.safetensors')));
  const architecture = JSON.parse(await readFile(join(fixtures, 'architecture.json'), 'utf8'));

  // the starting point is the checkpoint's float tensors themselves
  const net = tl.Network.fromCheckpoint(checkpoint, architecture);
  const st = tl.Safetensors.open(checkpoint);
  try {
    assert.deepEqual(net.widths, [784, 256, 256, 10]);
    assert.deepEqual(net.getLayer(0).weight, st.read('fc1.weight'));
    assert.deepEqual(net.getLayer(2).bias, st.read('fc3.bias'));
  } finally {
    st.free();
  }
  const before = net.evaluate(testSet).accuracy;
  net.free();
  assert.equal(Math.round(before * 2004), 1890, 'the fixture model: 94.31% on the test digits');

  const job = startTraining({
    network: { checkpoint, architecture },
    optimizer: { type: 'adam', lr: 2e-4 }, schedule: { type: 'cosine' },
    data: { x: train.x.slice(), labels: train.labels.slice() }, test: { x: testSet.x.slice(), labels: testSet.labels.slice() },
    epochs: 2, batchSize: 64, seed: 1,
  });
  const weights0 = await job.weights();
  const { accuracy } = await job.done;
  assert.ok(accuracy >= before, `fine-tuned accuracy ${accuracy} >= the checkpoint's ${before}`);
  const finalWeights = await job.weights();
  assert.equal(finalWeights[0].shape.join(), '256,784');
  assert.ok(weights0.step <= finalWeights.step);
  await job.terminate();

  // the packed-model path starts from trits x alpha: not the checkpoint's floats
  const fromPacked = tl.Network.fromModel(tl.packCheckpoint(checkpoint, architecture));
  const ck = tl.Network.fromCheckpoint(checkpoint, architecture);
  assert.notDeepEqual(fromPacked.getLayer(0).weight, ck.getLayer(0).weight);
  fromPacked.free();
  ck.free();

  assert.throws(() => startTraining({ network: { checkpoint, architecture: { layers: [] } }, data: { x: new Float32Array(784), labels: [1] } }),
    (e) => e instanceof TilelliError && /network\.architecture must be/.test(e.message));
});

test('Network.fromCheckpoint names what it cannot train', () => {
  const ck = stateDict();
  assert.throws(() => tl.Network.fromCheckpoint(ck, { input: 4, layers: [{ type: 'linear', weight: 'embeddings.position_ids' }] }),
    (e) => e.code === 'INVALID_DTYPE' && /tensor "embeddings\.position_ids" is I64/.test(e.message));
  assert.throws(() => tl.Network.fromCheckpoint(ck, { input: 5, layers: [{ type: 'linear', weight: 'fc.weight' }] }),
    (e) => e.code === 'SHAPE' && /is \[4, 3\]; the input is 5/.test(e.message));
  assert.throws(() => tl.Network.fromCheckpoint(ck, { input: 3, layers: [{ type: 'linear', weight: 'fc.weight' }, { type: 'softmax' }] }),
    (e) => e.code === 'INVALID_ARGUMENT' && /"softmax" cannot be trained/.test(e.message));
  const net = tl.Network.fromCheckpoint(ck, { input: 3, layers: [{ type: 'linear', weight: 'fc.weight' }] }, { quantizer: 'lsq' });
  assert.deepEqual(net.getLayer(0).bias, new Float32Array(4), 'no bias: zeros');
  assert.equal(net.getLayer(0).alpha, tl.absmeanScale(net.getLayer(0).weight), 'a learned scale starts at the AbsMean');
  net.free();
});

// ---------------------------------------------------------------------------------------------
// 6. Model.fromURL
// ---------------------------------------------------------------------------------------------

test('Model.fromURL streams a model over HTTP with progress, and aborts', async () => {
  const bytes = smallModel();
  let stall;
  const server = createServer((req, res) => {
    if (req.url === '/m.tlm') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
      res.write(bytes.subarray(0, 100));
      setTimeout(() => res.end(bytes.subarray(100)), 20);
    } else if (req.url === '/slow.tlm') {
      res.writeHead(200, { 'content-length': bytes.length });
      res.write(bytes.subarray(0, 10));
      stall = res;
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    const events = [];
    const model = await tl.Model.fromURL(`${base}/m.tlm`, { onProgress: (p) => events.push(p) });
    assert.equal(model.inputSize, 16);
    assert.deepEqual(model.save(), tl.Model.load(bytes).save());
    model.free();
    assert.ok(events.length >= 2, 'one event per chunk');
    assert.deepEqual(events.at(-1), { loaded: bytes.length, total: bytes.length });
    assert.ok(events.every((e, i) => i === 0 || e.loaded > events[i - 1].loaded));

    const controller = new AbortController();
    const pending = tl.Model.fromURL(new URL('/slow.tlm', base), { signal: controller.signal, onProgress: () => controller.abort() });
    await assert.rejects(pending, (e) => e.name === 'AbortError');
    stall?.destroy();

    await assert.rejects(tl.Model.fromURL(`${base}/missing.tlm`), (e) => e instanceof TilelliError && /HTTP 404/.test(e.message));
    await assert.rejects(tl.Model.fromURL(`${base}/m.tlm`, { activations: 'int4' }), (e) => e instanceof TilelliError && e.code === 'INVALID_ARGUMENT');
  } finally {
    server.closeAllConnections?.();
    await new Promise((resolve) => server.close(resolve));
  }
});

// ---------------------------------------------------------------------------------------------
// 7. the smaller answers
// ---------------------------------------------------------------------------------------------

test('the CLI: a checkpoint given to run says to pack it; an architecture with a JSON mistake is exit 1 with its line; bench on a tiny model says larger', async () => {
  await tempDir(async (dir) => {
    const ck = join(fixtures, 'mlp.safetensors');
    const json = join(dir, 'in.json');
    await writeFile(json, JSON.stringify([Array(784).fill(0)]));
    const r = await tilelli('run', ck, json);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is a safetensors checkpoint, not a packed model: pack it first with "tilelli pack .*--arch/);

    const arch = join(dir, 'arch.json');
    await writeFile(arch, '{ "input": 784,\n  "layers": [ { "type": "linear", } ] }');
    const p = await tilelli('pack', ck, '--arch', arch, '-o', join(dir, 'x.tlm'));
    assert.equal(p.code, 1, 'a data error, not a usage error');
    assert.match(p.stderr, /arch\.json is not valid JSON at line 2/);
    assert.doesNotMatch(p.stderr, /Usage:/);

    const tiny = join(dir, 'tiny.tlm');
    await writeFile(tiny, smallModel());
    const b = await tilelli('bench', tiny, '--seconds', '0.1');
    assert.equal(b.code, 0, b.stderr);
    assert.doesNotMatch(b.stdout, /1\.0x smaller/);
    assert.match(b.stdout, /x larger: the file's headers and float parameters outweigh so few weights/);
  });
});

test('a bad label on the main thread is named as the worker names it', () => {
  const net = tl.Network.create({ widths: [2, 3] });
  try {
    assert.throws(() => net.trainStep([0, 1, 1, 0], { labels: [0, 7] }),
      (e) => e instanceof TilelliError && /labels\[1\] is 7, not a class in 0\.\.2/.test(e.message));
    assert.throws(() => net.fit({ x: [0, 1, 1, 0], labels: [0, 7] }),
      (e) => e instanceof TilelliError && /labels\[1\] is 7, not a class in 0\.\.2/.test(e.message));
  } finally {
    net.free();
  }
});

test('new on a class made by static methods says which to call, for every such class', () => {
  for (const [cls, arg] of [[tl.Network, { widths: [2, 3] }], [tl.Model, new Uint8Array(8)], [tl.PackedMatrix, [1, -1]]]) {
    assert.throws(() => new cls(arg), (e) => e instanceof TilelliError && e.code === 'INVALID_ARGUMENT' &&
      e.message.includes(`new ${cls.name}(...)`) && e.message.includes(`${cls.name}.create`));
  }
  // and the instance is still usable after
  const net = tl.Network.create({ widths: [2, 3] });
  net.free();
});
