// lm-import.test.js — the importers of tl.LanguageModel in both wasm builds against the PyTorch
// goldens (test/fixtures/lm-import, scripts/gen_lm_import_fixtures.py): Hugging Face packed BitNet
// checkpoints (bitlinear and autobitlinear scales), and the same models written by our GGUF writer
// as TQ2_0, TQ1_0 and I2_S and read back by the GGUF reader. Float activations within 1e-4 of each
// row's largest logit, int8 within 1e-3, greedy ids equal; typed errors.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';

import { TilelliError, init } from '../../js/node.js';

const dir = new URL('../fixtures/lm-import/', import.meta.url);
const read = (name, file) => readFileSync(new URL(`${name}/${file}`, dir));
const cases = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
const builds = [['simd', await init({ simd: true })], ['scalar', await init({ simd: false })]];
const files = (name) => ({ config: read(name, 'config.json'), weights: read(name, 'model.safetensors') });

function worst(got, want) {
  const mx = Math.max(...want.map(Math.abs));
  let d = 0;
  for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(got[i] - want[i]));
  return d / mx;
}

/** The golden's float and int8 logits (prompt, then steps one at a time) and its greedy ids. */
function checkGolden(load, g, label) {
  for (const [activations, key, tol] of [['float', 'logits_float', 1e-4], ['int8', 'logits_int8', 1e-3]]) {
    const lm = load({ activations });
    const rows = [lm.logits(g.prompt), ...g.steps.map((t) => lm.logits([t]))];
    rows.forEach((r, i) => assert.ok(worst(r, g[key][i]) < tol, `${label} ${activations} row ${i}: ${worst(r, g[key][i])}`));
    lm.free();
  }
  const lm = load({});
  let l = lm.logits(g.prompt);
  const greedy = [];
  for (let i = 0; i < g.greedy.length; i++) {
    const id = l.indexOf(Math.max(...l));
    greedy.push(id);
    l = lm.logits([id]);
  }
  assert.deepEqual(greedy, g.greedy, `${label}: greedy ids`);
  lm.free();
}

for (const [build, tl] of builds) {
  test(`${build}: Hugging Face packed checkpoints (${cases.length}): the PyTorch goldens`, () => {
    assert.ok(cases.length >= 5);
    for (const name of cases) {
      const g = JSON.parse(read(name, 'golden.json'));
      checkGolden((o) => tl.LanguageModel.load(files(name), o), g, name);
    }
  });

  test(`${build}: our GGUF files (TQ2_0, TQ1_0, I2_S) read back to the PyTorch goldens`, () => {
    for (const name of cases) {
      const g = JSON.parse(read(name, 'golden.json'));
      const src = tl.LanguageModel.load(files(name));
      // TQ blocks are 256 weights wide: only the 256-wide case; I2_S blocks are 128 weights of the
      // whole tensor: every case
      const types = src.config.hidden_size % 256 === 0 ? ['tq2_0', 'tq1_0', 'i2_s'] : ['i2_s'];
      for (const gguf of types) {
        const bytes = src.save({ gguf });
        assert.equal(String.fromCharCode(...bytes.subarray(0, 4)), 'GGUF');
        checkGolden((o) => tl.LanguageModel.load({ weights: bytes }, o), g, `${name} ${gguf}`);
        const lm = tl.LanguageModel.load({ weights: bytes });
        assert.deepEqual(lm.config, src.config, `${name} ${gguf}: the config from the GGUF metadata`);
        lm.free();
      }
      src.free();
    }
  });
}

test('a packed checkpoint and the float file it came from: the same logits (autobitlinear: bit for bit)', () => {
  const tl = builds[0][1];
  const a = tl.LanguageModel.load({ config: readFileSync(new URL('../fixtures/lm/gqa_tied_relu2/config.json', import.meta.url)),
    weights: readFileSync(new URL('../fixtures/lm/gqa_tied_relu2/model.safetensors', import.meta.url)) });
  const b = tl.LanguageModel.load(files('hf-gqa_tied_relu2-autobitlinear'));
  const toks = [1, 5, 9, 13, 2, 40, 7];
  assert.deepEqual(b.logits(toks, { all: true }), a.logits(toks, { all: true }));
  a.free(), b.free();
});

test('GGUF errors: typed, with what and where', () => {
  const tl = builds[0][1];
  const src = tl.LanguageModel.load(files('bitnet256'));
  const bytes = src.save({ gguf: 'tq2_0' });
  const code = (fn) => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof TilelliError);
      return [e.code, e.message];
    }
    assert.fail('no error');
  };
  let [c, m] = code(() => tl.LanguageModel.load({ weights: bytes.subarray(0, 5000) }));
  assert.equal(c, 'PARSE');
  assert.match(m, /run past the end|runs past the end/);
  [c, m] = code(() => tl.LanguageModel.load({ weights: bytes, config: read('bitnet256', 'config.json') }));
  assert.equal(c, 'INVALID_ARGUMENT');
  assert.match(m, /GGUF file carries its config/);
  [c, m] = code(() => src.save({ gguf: 'q4_0' }));
  assert.equal(c, 'INVALID_ARGUMENT');
  assert.match(m, /tq1_0, tq2_0, i2_s/);
  const small = tl.LanguageModel.load(files('hf-gqa_tied_relu2-autobitlinear'));
  [c, m] = code(() => small.save({ gguf: 'tq2_0' }));
  assert.equal(c, 'INVALID_ARGUMENT');
  assert.match(m, /cannot be written as TQ2_0/);
  // a version this reader does not know
  const v = bytes.slice();
  v[4] = 9;
  [c, m] = code(() => tl.LanguageModel.load({ weights: v }));
  assert.equal(c, 'UNSUPPORTED_VERSION');
  assert.match(m, /GGUF version 9/);
  // the placeholder vocabulary: a bigger file, the same model
  const withVocab = src.save({ gguf: 'tq2_0', vocabulary: true });
  assert.ok(withVocab.length > bytes.length);
  const r = tl.LanguageModel.load({ weights: withVocab });
  src.reset();
  assert.deepEqual(r.logits([1, 2, 3]), src.logits([1, 2, 3]));
  r.free(), src.free(), small.free();
});

test('embedding: float16 and int8 tables, kept by save() and GGUF, held in less memory from the packed file', () => {
  const tl = builds[0][1];
  const toks = [1, 5, 9, 13, 2, 40, 7];
  // what a model loaded from its packed file holds (the file, its tables where they lie, and the rest)
  const heldBy = (weights) => {
    const before = tl.memoryStats().liveBytes;
    const m = tl.LanguageModel.load({ weights });
    const held = tl.memoryStats().liveBytes - before;
    m.free();
    return held;
  };
  const a = tl.LanguageModel.load(files('bitnet256'));
  const heldF32 = heldBy(a.save()), table = 64 * 256;
  const ref = a.logits(toks, { all: true });
  for (const [embedding, tol] of [['float16', 1e-2], ['int8', 5e-2]]) {
    const b = tl.LanguageModel.load(files('bitnet256'), { embedding });
    const held = heldBy(b.save());
    assert.equal(b.config.tilelli_embedding, embedding);
    const got = b.logits(toks, { all: true });
    assert.ok(worst(got, ref) < tol && worst(got, ref) > 0, `${embedding}: ${worst(got, ref)}`);
    // the packed file and the GGUF file keep the table's form: the same logits
    const c = tl.LanguageModel.load({ weights: b.save() });
    assert.equal(c.config.tilelli_embedding, embedding);
    assert.deepEqual(c.logits(toks, { all: true }), got);
    const g = tl.LanguageModel.load({ weights: b.save({ gguf: 'i2_s' }) });
    if (embedding === 'float16') assert.deepEqual(g.logits(toks, { all: true }), got);
    const saved = heldF32 - held, want = embedding === 'int8' ? table * 3 - table / 256 * 4 : table * 2;
    assert.ok(saved >= want - 1024, `${embedding}: ${saved} bytes less held than float32 (want ${want})`);
    b.free(), c.free(), g.free();
  }
  assert.throws(() => tl.LanguageModel.load({ weights: a.save() }, { embedding: 'int8' }),
    (e) => e instanceof TilelliError && e.code === 'INVALID_ARGUMENT' && /keeps its tables' form/.test(e.message));
  assert.throws(() => tl.LanguageModel.load(files('bitnet256'), { embedding: 'bf16' }),
    (e) => e instanceof TilelliError && e.code === 'INVALID_ARGUMENT' && /float32, float16, int8/.test(e.message));
  a.free();
});

test('fromURL of a GGUF file: streamed into wasm memory, the same model as load()', async () => {
  const tl = builds[0][1];
  const { createServer } = await import('node:http');
  const src = tl.LanguageModel.load(files('bitnet256'));
  const bytes = src.save({ gguf: 'tq1_0' });
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
    res.end(bytes);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${server.address().port}/m.gguf`;
    const got = await tl.LanguageModel.fromURL(url);
    const want = tl.LanguageModel.load({ weights: bytes });
    const toks = [3, 1, 4, 1, 5, 9, 2, 6];
    assert.deepEqual(got.logits(toks, { all: true }), want.logits(toks, { all: true }));
    assert.deepEqual(got.config, want.config);
    await assert.rejects(tl.LanguageModel.fromURL(url, { embedding: 'int8' }),
      (e) => e instanceof TilelliError && e.code === 'INVALID_ARGUMENT' && /keeps its tables' form/.test(e.message));
    got.free(), want.free();
  } finally {
    server.close();
    src.free();
  }
});
