// relaxed.test.js — the relaxed-SIMD build (dist/tilelli-relaxed.wasm) and how init() picks it.
//
// In this process (Node 20 validates relaxed SIMD only behind --experimental-wasm-relaxed-simd):
// init() gives the SIMD128 build, and forcing 'relaxed' is a clear TilelliError. In a child Node
// with --experimental-wasm-relaxed-simd --no-liftoff: init() gives 'relaxed', and every kernel
// (binary, sparse, int8 raw and scaled, float) on every format returns exactly what the scalar
// build returns, over shapes and batches that reach every path (4-row groups and their tails,
// partial blocks, the int16 flush of the relaxed dot, the batched tables). On a Node that runs
// relaxed SIMD without flags (22+), the same child runs without them.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { init, relaxedSupported, TilelliError, wasmUrl } from 'tilelli';

const NODE_FLAGS = ['--experimental-wasm-relaxed-simd', '--no-liftoff'];
// A Node that no longer knows the flag (relaxed SIMD shipped) refuses to start with it.
const CHILD_FLAGS = spawnSync(process.execPath, [...NODE_FLAGS, '-e', '0']).status === 0 ? NODE_FLAGS : ['--no-liftoff'];
const nodeMajor = Number(process.versions.node.split('.')[0]);

test('the relaxed build is shipped: it imports only its memory and exports what the other builds do', () => {
  const file = fileURLToPath(wasmUrl('relaxed'));
  assert.ok(existsSync(file), `no ${file}: build first (npm run build)`);
  assert.ok(readFileSync(file).length > 10_000);
  // Structure only (WebAssembly.Module needs relaxed SIMD to compile it): read the import and
  // export names from the binary's sections.
  const { imports, exports } = sections(readFileSync(file));
  assert.deepEqual(imports, ['env.memory']);
  const simd = new WebAssembly.Module(readFileSync(fileURLToPath(wasmUrl('simd'))));
  const want = WebAssembly.Module.exports(simd).map((e) => e.name).filter((n) => n.startsWith('tl_') || n === '_initialize');
  for (const name of want) assert.ok(exports.includes(name), `the relaxed build exports ${name}`);
});

test('Node 20 without flags: init() runs SIMD128; build: \'relaxed\' is a clear TilelliError', { skip: relaxedSupported() && 'this Node validates relaxed SIMD' }, async () => {
  assert.equal(relaxedSupported(), false);
  const tl = await init();
  assert.equal(tl.build, 'simd');
  assert.equal(tl.simd, true);
  await assert.rejects(init({ build: 'relaxed' }), (e) => {
    assert.ok(e instanceof TilelliError);
    assert.equal(e.code, 'INVALID_ARGUMENT');
    assert.match(e.message, /build 'relaxed' was asked for, but this runtime has no WebAssembly relaxed SIMD/);
    assert.match(e.message, /--experimental-wasm-relaxed-simd --no-liftoff/);
    return true;
  });
  // The module cannot even be compiled here: init({ bytes }) says so.
  await assert.rejects(init({ bytes: readFileSync(fileURLToPath(wasmUrl('relaxed'))) }), (e) =>
    e instanceof TilelliError && e.code === 'INVALID_ARGUMENT' && /bytes is not a WebAssembly module/.test(e.message));
});

test('init({ build }) and the older simd option pick the build; wrong values are named', async () => {
  assert.equal((await init({ build: 'simd' })).build, 'simd');
  assert.equal((await init({ build: 'scalar' })).build, 'scalar');
  assert.equal((await init({ simd: true })).build, 'simd');
  const scalar = await init({ simd: false });
  assert.equal(scalar.build, 'scalar');
  assert.equal(scalar.simd, false);
  await assert.rejects(init({ build: 'fast' }), /init: build must be one of 'relaxed', 'simd', 'scalar', got 'fast'/);
  await assert.rejects(init({ build: true }), /init: build must be one of .*got true/);
  await assert.rejects(init({ build: 'scalar', simd: true }), /build 'scalar' and simd: true contradict each other/);
  assert.throws(() => wasmUrl('fast'), /wasmUrl: build must be one of relaxed, simd, scalar/);
  assert.match(wasmUrl('relaxed').href, /dist\/tilelli-relaxed\.wasm$/);
  assert.match(wasmUrl(true).href, /dist\/tilelli-simd\.wasm$/);
});

// The child: init() (expected 'relaxed') against init({ build: 'scalar' }), every kernel.
const CHILD = `
import { init, relaxedSupported } from ${JSON.stringify(new URL('../../js/node.js', import.meta.url).href)};
let s = 12345;
const next = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
const relaxed = await init(), scalar = await init({ build: 'scalar' });
const out = { supported: relaxedSupported(), build: relaxed.build, simd: relaxed.simd, compared: 0, values: 0, mismatches: [] };
const same = (a, b) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
for (const [rows, cols] of [[48, 100], [9, 2373], [70, 1290], [5, 64], [130, 4200], [64, 65]]) {
  const trits = new Int8Array(rows * cols).map(() => (next() % 3) - 1);
  const scales = new Float32Array(rows).map(() => 0.01 + (next() % 1000) / 1000);
  for (const format of ['i2', 'tq1', 'bitplane']) {
    const [mr, ms] = [relaxed, scalar].map((tl) => tl.PackedMatrix.fromTrits(trits, [rows, cols], { format, scales }));
    for (const batch of [1, 2, 3, 4, 5, 17]) {
      const x8 = new Int8Array(batch * cols).map(() => (next() & 255) - 128);
      x8[0] = -128; x8[x8.length - 1] = 127;
      if (batch === 2) x8.fill(-128, cols); // vector 1: the most negative int16 partial sums
      const xs = new Float32Array(batch).map(() => 0.5 + (next() % 100) / 50);
      const xf = new Float32Array(batch * cols).map(() => ((next() | 0) / 2 ** 31) * 2);
      const bits = new Uint8Array(batch * Math.ceil(cols / 8)).map(() => next() & 255);
      const sparse = Array.from({ length: batch }, () => Array.from({ length: next() % 40 }, () => next() % cols));
      const q = relaxed.quantizeActivations(xf, cols);
      for (const [kind, run] of [
        ['int8 raw', (m) => m.matmulInt8(x8, { raw: true })],
        ['int8 scaled', (m) => m.matmulInt8(x8, { scales: xs })],
        ['int8 of quantized floats', (m) => m.matmulInt8(q.values, { scales: q.scales })],
        ['binary', (m) => m.matmulBinary(bits, { raw: true })],
        ['sparse', (m) => m.matmulSparse(sparse, { raw: true })],
        ['float', (m) => m.matmulFloat(xf)],
      ]) {
        const a = run(mr), b = run(ms);
        out.compared++;
        out.values += a.length;
        if (!same(a, b)) {
          const i = a.findIndex((v, k) => !Object.is(v, b[k]));
          out.mismatches.push(\`\${rows}x\${cols} \${format} batch \${batch} \${kind}: [\${i}] relaxed \${a[i]}, scalar \${b[i]}\`);
        }
      }
    }
    mr.free(); ms.free();
  }
}
const qs = scalar.quantizeActivations(new Float32Array(300).map((_, i) => Math.sin(i)), 100);
const qr = relaxed.quantizeActivations(new Float32Array(300).map((_, i) => Math.sin(i)), 100);
if (!same(qs.values, qr.values) || !same(qs.scales, qr.scales)) out.mismatches.push('quantizeActivations');
console.log(JSON.stringify(out));
`;

test('a child Node with relaxed SIMD enabled runs the relaxed build, equal to scalar on every kernel', { timeout: 120_000 }, () => {
  const flags = CHILD_FLAGS;
  const stdout = execFileSync(process.execPath, [...flags, '--no-warnings', '--input-type=module', '-e', CHILD], { encoding: 'utf8' });
  const out = JSON.parse(stdout.trim().split('\n').pop());
  assert.equal(out.supported, true, `relaxed SIMD validates with ${flags.join(' ')}`);
  assert.equal(out.build, 'relaxed', 'init() picks the relaxed build (its self-test passed)');
  assert.equal(out.simd, true, 'tl.simd stays true on the relaxed build');
  assert.deepEqual(out.mismatches, []);
  assert.equal(out.compared, 6 * 3 * 6 * 6, 'every shape, format, batch and kernel was compared');
  assert.ok(out.values > 100_000, `${out.values} values compared`);
});

test('Node 20 with the flag but Liftoff on: the relaxed build still passes its self-test and equals scalar', { skip: nodeMajor !== 20 && 'Node 20 only' }, () => {
  // The shipped kernels use i16x8.relaxed_dot (correct in Liftoff), not i32x4.relaxed_dot_..._add
  // (wrong in Node 20's Liftoff): so init() may pick relaxed here too, and must then be right.
  const stdout = execFileSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--no-warnings', '--input-type=module', '-e', CHILD], { encoding: 'utf8' });
  const out = JSON.parse(stdout.trim().split('\n').pop());
  assert.equal(out.build, 'relaxed');
  assert.deepEqual(out.mismatches, []);
});

/** Import names (module.name) and export names of a wasm binary, read from its sections. */
function sections(bytes) {
  let p = 8;
  const u32 = () => {
    let r = 0, shift = 0, b;
    do {
      b = bytes[p++];
      r |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    return r >>> 0;
  };
  const name = () => {
    const n = u32();
    const s = new TextDecoder().decode(bytes.subarray(p, p + n));
    p += n;
    return s;
  };
  const imports = [], exports = [];
  while (p < bytes.length) {
    const id = bytes[p++];
    const size = u32();
    const end = p + size;
    if (id === 2) {
      for (let n = u32(); n > 0; n--) {
        const full = `${name()}.${name()}`;
        const kind = bytes[p++];
        if (kind === 0) u32();
        else if (kind === 2) { const flags = bytes[p++]; u32(); if (flags & 1) u32(); }
        else throw new Error(`import kind ${kind} not read here`);
        imports.push(full);
      }
    } else if (id === 7) {
      for (let n = u32(); n > 0; n--) {
        exports.push(name());
        p++;
        u32();
      }
    }
    p = end;
  }
  return { imports, exports };
}

test('the self-test: a good engine passes; a wrong sum, a failing call or a missing export is described', async () => {
  // The test itself is C's (tl_build_selftest, src/selftest.c; test_kernels shows it catches a
  // wrong row and an int16 wrap): here, what the loader makes of its answers.
  const { relaxedSelfTest } = await import('../../js/selftest.js');
  const { Runtime } = await import('../../js/runtime.js');
  // Any build runs it: the SIMD128 one stands in for a good engine.
  const module = await WebAssembly.compile(readFileSync(fileURLToPath(wasmUrl('simd'))));
  const memory = new WebAssembly.Memory({ initial: 32, maximum: 1024 });
  const { exports } = await WebAssembly.instantiate(module, { env: { memory, emscripten_notify_memory_growth() {} } });
  exports._initialize();
  const before = exports.tl_mem_live_bytes();
  const check = (x) => relaxedSelfTest(new Runtime(x, memory, 1024));
  assert.equal(check(exports), null);
  assert.equal(exports.tl_mem_live_bytes(), before, 'nothing leaks');
  // An engine that got 2 sums wrong: C's detail (left by the failing test) is quoted.
  const detailOf = (r) => ({
    ...exports,
    tl_build_selftest() {
      exports.tl_model_load(1024, 3, 2048); // any call that leaves a detail ("3 bytes: too short...")
      return r;
    },
  });
  const wrong = check(detailOf(2));
  assert.match(wrong, /^2 wrong sums, the first /);
  assert.ok(wrong.length > '2 wrong sums, the first '.length, `the detail is quoted: ${wrong}`);
  assert.match(check(detailOf(-9)), /call failed with status -9/);
  assert.match(check({ ...exports, tl_build_selftest: undefined }), /could not run/);
});
