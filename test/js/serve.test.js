// serve.test.js — `tilelli/serve`: the serving builds (dist/tilelli-serve-*.wasm) export exactly the
// functions wasm/exports.txt tags `serve`; their Model gives the same bits as the full scalar build
// (the scalar reference) for every layer type, format, batch and activation precision, in this
// process (SIMD128) and in a child Node with relaxed SIMD; the serving API holds the Model class and
// what every instance holds, and refuses what it does not offer with a clear error.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { init as initFull, wasmUrl } from 'tilelli';
import { init, TilelliError } from 'tilelli/serve';

const root = fileURLToPath(new URL('../..', import.meta.url));
const full = await initFull({ build: 'scalar' });

/** The names tagged `serve` in wasm/exports.txt, and all the names. */
function exportLists() {
  const lines = readFileSync(join(root, 'wasm', 'exports.txt'), 'utf8').split('\n').filter((l) => /^[a-z_0-9]+( serve)?$/.test(l));
  return { all: lines.map((l) => l.split(' ')[0]), serve: lines.filter((l) => l.endsWith(' serve')).map((l) => l.split(' ')[0]) };
}

test('the serving builds export exactly the functions tagged serve, and are a fraction of the full builds', async () => {
  const { all, serve } = exportLists();
  assert.ok(serve.length >= 20 && serve.length < all.length / 2, `${serve.length} of ${all.length} tagged`);
  for (const build of ['simd', 'relaxed']) {
    const bytes = readFileSync(fileURLToPath(wasmUrl(`serve-${build}`)));
    const fullBytes = readFileSync(fileURLToPath(wasmUrl(build)));
    assert.ok(bytes.length < fullBytes.length * 0.6, `serve-${build} is ${bytes.length} bytes, the full build ${fullBytes.length}`);
    if (build === 'relaxed') continue; // Node 20 compiles relaxed SIMD only behind a flag (the child test below)
    const names = WebAssembly.Module.exports(await WebAssembly.compile(bytes)).filter((e) => e.kind === 'function').map((e) => e.name);
    assert.deepEqual(names.filter((n) => n.startsWith('tl_')).sort(), [...serve].sort());
  }
});

test('the serving API: the Model class and what every instance holds; nothing else', async () => {
  const tl = await init();
  assert.deepEqual(Object.keys(tl).sort(), ['Model', 'TilelliError', 'build', 'memoryStats', 'simd', 'threads', 'version'].sort());
  assert.equal(tl.TilelliError, TilelliError);
  assert.equal(tl.threads, 1);
  assert.equal(tl.version, full.version);
  assert.ok(['simd', 'relaxed'].includes(tl.build));
  await assert.rejects(init({ build: 'scalar' }), (e) => e instanceof TilelliError && e.code === 'INVALID_ARGUMENT' && /tilelli\/serve has the relaxed and simd builds, not 'scalar'/.test(e.message));
  await assert.rejects(init({ build: 'fast' }), (e) => e.code === 'INVALID_ARGUMENT');
  // threads: accepted as everywhere (and checked), one is run
  assert.equal((await init({ threads: 4 })).threads, 1);
  await assert.rejects(init({ threads: 0 }), (e) => e.code === 'INVALID_ARGUMENT' && /threads must be an integer/.test(e.message));
  // a threaded build is refused by name; a full single-threaded build serves too (it exports more)
  const mt = await WebAssembly.compile(readFileSync(fileURLToPath(wasmUrl('simd-mt'))));
  await assert.rejects(init({ module: mt }), (e) => e.code === 'INVALID_ARGUMENT' && /threaded build/.test(e.message));
  const viaFull = await init({ bytes: readFileSync(fileURLToPath(wasmUrl('simd'))) });
  assert.deepEqual(Object.keys(viaFull).sort(), Object.keys(tl).sort());
});

test('the serving init never probes for threads (a shared memory, a channel: ~4 ms of a Node cold start)', () => {
  // a fresh process: the probe is made once per process, and the full entry above made it here
  const child = `
    const Memory = WebAssembly.Memory; let shared = 0;
    WebAssembly.Memory = function (d) { if (d.shared) shared++; return new Memory(d); };
    const channels = globalThis.MessageChannel; let made = 0;
    globalThis.MessageChannel = class extends channels { constructor() { super(); made++; } };
    const { init } = await import('tilelli/serve');
    const tl = await init();
    const afterServe = { shared, made };
    await (await import('tilelli')).init({ build: 'simd' });
    console.log(JSON.stringify({ serve: tl.threads, afterServe, afterFull: { shared, made } }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['--no-warnings', '--input-type=module', '-e', child], { cwd: root, encoding: 'utf8' }));
  assert.equal(out.serve, 1);
  assert.deepEqual(out.afterServe, { shared: 0, made: 0 });
  // the full entry's init probes: the counters see it
  assert.ok(out.afterFull.shared >= 1 && out.afterFull.made >= 1, JSON.stringify(out));
});

// The models compared: every layer type, every format, per-row and per-tensor scales (the child
// process below builds the same ones: this source is its too).
const MODELS = `
const floats = (n, seed, scale = 1) => { let s = seed >>> 0 || 1; const out = new Float32Array(n);
  for (let i = 0; i < n; i++) { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; out[i] = ((s | 0) / 2 ** 31) * scale; } return out; };
function models(tl) {
  const out = [];
  for (const format of ['i2', 'tq1', 'bitplane']) {
    const m1 = tl.PackedMatrix.fromWeights(floats(70 * 300, 1), [70, 300], { format, perRow: true });
    const m2 = tl.PackedMatrix.fromWeights(floats(33 * 70, 2), [33, 70], { format });
    const m3 = tl.PackedMatrix.fromWeights(floats(12 * 33, 3), [12, 33], { format, perRow: true });
    const m4 = tl.PackedMatrix.fromWeights(floats(7 * 12, 4), [7, 12], { format });
    out.push({ name: format, input: 300, bytes: tl.packModel({ input: 300, layers: [
      { type: 'rmsnorm', weight: floats(300, 5, 2), eps: 1e-6 },
      { type: 'linear', matrix: m1, bias: floats(70, 6) }, { type: 'gelu' }, { type: 'binarize', k: 9 },
      { type: 'linear', matrix: m2 }, { type: 'silu' },
      { type: 'bitlinear', matrix: m3, bias: floats(12, 7), normWeight: floats(33, 8, 1.5), eps: 1e-5 }, { type: 'relu' },
      { type: 'binarize', threshold: 0.05 }, { type: 'linear', matrix: m4, bias: floats(7, 9) }, { type: 'softmax' },
    ] }) });
    const w1 = tl.PackedMatrix.fromWeights(floats(256 * 300, 11), [256, 300], { format });
    const w2 = tl.PackedMatrix.fromWeights(floats(10 * 256, 12), [10, 256], { format, perRow: true });
    out.push({ name: format + ' mlp', input: 300, bytes: tl.packModel({ input: 300, layers: [
      { type: 'linear', matrix: w1, bias: floats(256, 13) }, { type: 'relu' }, { type: 'linear', matrix: w2 }] }) });
    for (const m of [m1, m2, m3, m4, w1, w2]) m.free();
  }
  return out;
}
/** Every model, activation precision and batch: the outputs of tl (a serving instance) and ref, as bits. */
function compare(tl, ref) {
  const mismatches = [];
  let values = 0;
  for (const { name, input, bytes } of models(ref)) {
    for (const activations of ['float', 'int8']) {
      const a = tl.Model.load(bytes, { activations }), b = ref.Model.load(bytes, { activations });
      for (const batch of [1, 2, 3, 5, 16]) {
        const x = floats(batch * input, 100 + batch, 3);
        const ya = new Uint32Array(a.run(x).buffer), yb = new Uint32Array(b.run(x).buffer);
        values += ya.length;
        const i = ya.findIndex((v, k) => v !== yb[k]);
        if (i >= 0 || ya.length !== yb.length) mismatches.push(name + ' ' + activations + ' batch ' + batch + ': [' + i + ']');
      }
      a.free(); b.free();
    }
  }
  return { mismatches, values };
}
`;
const { compare } = new Function(`${MODELS}; return { compare };`)();

test('the SIMD128 serving build runs every model as the scalar full build, bit for bit', async () => {
  const tl = await init({ build: 'simd' });
  assert.equal(tl.build, 'simd');
  const { mismatches, values } = compare(tl, full);
  assert.deepEqual(mismatches, []);
  assert.ok(values > 2500, `${values} outputs compared`);
});

test('the relaxed serving build (a child Node with relaxed SIMD) runs every model as the scalar full build', { timeout: 120_000 }, () => {
  const child = `
import { init as initFull } from 'tilelli';
import { init } from 'tilelli/serve';
${MODELS}
const tl = await init();
const full = await initFull({ build: 'scalar' });
console.log(JSON.stringify({ build: tl.build, ...compare(tl, full) }));
`;
  const stdout = execFileSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--no-liftoff', '--no-warnings', '--input-type=module', '-e', child],
    { encoding: 'utf8', cwd: root });
  const out = JSON.parse(stdout.trim().split('\n').pop());
  assert.equal(out.build, 'relaxed', 'init() picks the relaxed serving build where relaxed SIMD runs (its self-test passed)');
  assert.deepEqual(out.mismatches, []);
  assert.ok(out.values > 2500);
});
