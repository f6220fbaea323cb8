// lm.test.js — tl.LanguageModel in both wasm builds: the PyTorch goldens of test/fixtures/lm (float
// activations within 1e-4 of each row's largest logit, int8 within 1e-3, greedy ids equal), the
// packed file round trip, generation (seeded, streamed text equal to the whole text, stop strings,
// abort), and typed errors.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';

import { Tokenizer, TilelliError, init } from '../../js/node.js';

const dir = new URL('../fixtures/lm/', import.meta.url);
const read = (name, file) => readFileSync(new URL(`${name}/${file}`, dir));
const cases = readdirSync(dir, { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== 'charlm').map((d) => d.name);
const builds = [['simd', await init({ simd: true })], ['scalar', await init({ simd: false })]];

function worst(got, want) {
  const mx = Math.max(...want.map(Math.abs));
  let d = 0;
  for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(got[i] - want[i]));
  return d / mx;
}

const files = (name) => ({ config: read(name, 'config.json'), weights: read(name, 'model.safetensors') });

for (const [build, tl] of builds) {
  test(`${build}: the PyTorch goldens of ${cases.length} tiny configs (GQA, MQA, tied, SiLU, squared ReLU)`, () => {
    assert.ok(cases.length >= 4);
    for (const name of cases) {
      const g = JSON.parse(read(name, 'golden.json'));
      for (const [activations, key, tol] of [['float', 'logits_float', 1e-4], ['int8', 'logits_int8', 1e-3]]) {
        const lm = tl.LanguageModel.load(files(name), { activations });
        const rows = [lm.logits(g.prompt), ...g.steps.map((t) => lm.logits([t]))];
        rows.forEach((r, i) => assert.ok(worst(r, g[key][i]) < tol, `${name} ${activations} row ${i}: ${worst(r, g[key][i])}`));
        assert.equal(lm.position, g.prompt.length + g.steps.length);
        lm.free();
      }
      const lm = tl.LanguageModel.load(files(name));
      let l = lm.logits(g.prompt);
      const greedy = [];
      for (let i = 0; i < g.greedy.length; i++) {
        const id = l.indexOf(Math.max(...l));
        greedy.push(id);
        l = lm.logits([id]);
      }
      assert.deepEqual(greedy, g.greedy, `${name}: greedy ids`);
      lm.free();
    }
  });

  test(`${build}: the trained character model: float logits, 40 greedy characters, the same through generate()`, async () => {
    const e = JSON.parse(read('charlm', 'expected.json'));
    const tokenizer = Tokenizer.fromJSON(read('charlm', 'tokenizer.json'));
    const lm = tl.LanguageModel.load({ ...files('charlm'), tokenizer }, { activations: 'float' });
    const rows = [lm.logits(e.prompt), ...e.steps.map((t) => lm.logits([t]))];
    rows.forEach((r, i) => assert.ok(worst(r, e.logits_float[i]) < 1e-4, `row ${i}`));
    lm.reset();
    const out = await lm.generate(e.prompt_text, { maxNewTokens: e.greedy_float.length });
    assert.deepEqual(Array.from(out.tokens), e.greedy_float);
    assert.equal(out.text, e.greedy_float_text);
    assert.equal(out.promptTokens, e.prompt.length);
    assert.equal(out.stopReason, 'length');
    lm.free();
  });
}

test('the packed file: save() and load({ weights }) give the same logits, a few times smaller', () => {
  const tl = builds[0][1];
  for (const name of ['charlm', cases[0]]) {
    const a = tl.LanguageModel.load(files(name));
    const packed = a.save();
    const b = tl.LanguageModel.load({ weights: packed });
    assert.deepEqual(b.config, a.config);
    const toks = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((t) => t % a.vocabSize);
    assert.deepEqual(b.logits(toks, { all: true }), a.logits(toks, { all: true }));
    if (name === 'charlm') {
      // the checkpoint holds 16 bits a weight (float16); the packed file 2-bit codes with a float32
      // scale a row, the embedding and norms in float32: under a fifth of that
      const st = files(name).weights, n = Number(st.readBigUInt64LE(0));
      const header = JSON.parse(st.subarray(8, 8 + n).toString('utf8'));
      const weights = Object.entries(header).filter(([k]) => k !== '__metadata__')
        .reduce((sum, [, t]) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
      assert.equal(8 + n + 2 * weights, st.length, 'a float16 checkpoint');
      assert.ok(packed.length * 8 < 16 / 5 * weights, `${packed.length} bytes for ${weights} weights`);
    }
    // a packed file converted to tq1 from the float file: the same trits, the same logits
    const c = tl.LanguageModel.load(files(name), { format: 'tq1' });
    c.reset(), a.reset();
    assert.deepEqual(c.logits(toks), a.logits(toks));
    assert.equal(tl.LanguageModel.load({ weights: c.save() }).config.format, 'tq1');
    a.free(), b.free(), c.free();
  }
});

test('generate: seeded sampling repeats, onToken streams the text, stop strings and ids, abort, context', async () => {
  const tl = builds[0][1];
  const tokenizer = Tokenizer.fromJSON(read('charlm', 'tokenizer.json'));
  const lm = tl.LanguageModel.load({ ...files('charlm'), tokenizer });
  const opts = { maxNewTokens: 30, temperature: 0.9, topK: 20, topP: 0.95, seed: 7 };
  const a = await lm.generate('The ', opts);
  lm.reset();
  let streamed = '';
  const b = await lm.generate('The ', { ...opts, onToken: ({ text }) => { streamed += text; } });
  assert.deepEqual(b.tokens, a.tokens);
  assert.equal(streamed, b.text);
  assert.equal(b.text, tokenizer.decode(b.tokens));
  lm.reset();
  const c = await lm.generate('The ', { ...opts, seed: 8 });
  assert.notDeepEqual(c.tokens, a.tokens, 'another seed, other text');
  // a stop string: the text ends before it
  lm.reset();
  const firstSpace = a.text.indexOf(' ');
  if (firstSpace > 0) {
    const s = await lm.generate('The ', { ...opts, stop: ' ' });
    assert.equal(s.stopReason, 'stop');
    assert.equal(s.text, a.text.slice(0, firstSpace));
  }
  // a stop id
  lm.reset();
  const id = a.tokens[3];
  const t = await lm.generate('The ', { ...opts, stop: [id] });
  assert.equal(t.stopReason, 'stop');
  assert.ok(!Array.from(t.tokens).includes(id));
  // the context (128) ends generation
  lm.reset();
  const long = await lm.generate('The ', { maxNewTokens: 500 });
  assert.equal(long.stopReason, 'context');
  assert.equal(lm.position, lm.context);
  // abort: rejects with the signal's reason
  lm.reset();
  const ac = new AbortController();
  ac.abort(new Error('stop now'));
  await assert.rejects(lm.generate('The ', { signal: ac.signal }), /stop now/);
  lm.free();
  await assert.rejects(lm.generate('The '), (e) => e instanceof TilelliError && e.code === 'FREED');
});

test('errors are typed and name what is wrong; the model stays usable', async () => {
  const tl = builds[0][1];
  const name = cases[0];
  const f = files(name);
  const cfg = JSON.parse(f.config);
  const bad = (config, re) => assert.throws(() => tl.LanguageModel.load({ ...f, config }),
    (e) => e instanceof TilelliError && re.test(e.message), `config ${JSON.stringify(config).slice(0, 60)}`);
  bad({ ...cfg, hidden_act: 'gelu' }, /hidden_act/);
  bad({ ...cfg, num_key_value_heads: 3 }, /num_key_value_heads/);
  bad({ ...cfg, vocab_size: cfg.vocab_size + 1 }, /model\.embed_tokens\.weight.*should be/);
  bad('{"vocab_size": ', /config: not valid JSON/);
  assert.throws(() => tl.LanguageModel.load({ config: f.config, weights: new Uint8Array(10) }), (e) => e instanceof TilelliError && /weights/.test(e.message));
  assert.throws(() => tl.LanguageModel.load({ weights: f.weights }), (e) => e instanceof TilelliError && /no config/.test(e.message));
  assert.throws(() => tl.LanguageModel.load(f, { activations: 'int4' }), (e) => e.code === 'INVALID_ARGUMENT');
  const lm = tl.LanguageModel.load(f, { context: 8 });
  assert.throws(() => lm.logits([cfg.vocab_size]), (e) => e.code === 'INVALID_ARGUMENT' && /tokens\[0\]/.test(e.message));
  assert.throws(() => lm.logits([]), (e) => e.code === 'INVALID_ARGUMENT');
  assert.throws(() => lm.logits(new Array(9).fill(1)), (e) => e.code === 'SIZE_MISMATCH' && /context of 8/.test(e.message));
  assert.equal(lm.position, 0);
  assert.equal(lm.logits([1, 2, 3]).length, cfg.vocab_size);
  await assert.rejects(lm.generate('text'), /needs a tokenizer/);
  lm.free();
  assert.throws(() => lm.logits([1]), (e) => e.code === 'FREED');
});

test('LanguageModel.fromURL: config, weights and tokenizer over HTTP with progress; the packed file alone; abort; 404', async () => {
  const { createServer } = await import('node:http');
  const tl = builds[0][1];
  const local = tl.LanguageModel.load(files('charlm'));
  const packed = local.save();
  const served = { '/config.json': read('charlm', 'config.json'), '/model.safetensors': read('charlm', 'model.safetensors'),
    '/tokenizer.json': read('charlm', 'tokenizer.json'), '/packed.safetensors': packed };
  let stall;
  const server = createServer((req, res) => {
    const body = served[req.url];
    if (req.url === '/slow') {
      res.writeHead(200, { 'content-length': 1000 });
      res.write(Buffer.alloc(10));
      stall = res;
    } else if (body) {
      // chunked (no Content-Length) for the tokenizer: the buffer grows
      res.writeHead(200, req.url === '/tokenizer.json' ? {} : { 'content-length': body.length });
      res.end(body);
    } else res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    const events = [];
    const lm = await tl.LanguageModel.fromURL({ config: `${base}/config.json`, weights: `${base}/model.safetensors`, tokenizer: `${base}/tokenizer.json` },
      { onProgress: (p) => events.push(p), activations: 'float' });
    assert.equal(lm.config.tilelli_activations, 'float');
    lm.setActivations('int8');
    assert.equal(lm.config.tilelli_activations, 'int8');
    lm.setActivations('float');
    assert.ok(lm.tokenizer, 'the tokenizer came too');
    const w = events.filter((e) => e.file === 'weights');
    assert.deepEqual(w.at(-1), { file: 'weights', loaded: served['/model.safetensors'].length, total: served['/model.safetensors'].length });
    assert.ok(events.some((e) => e.file === 'tokenizer' && e.total === undefined));
    local.setActivations('float');
    local.reset();
    assert.deepEqual(lm.logits([3, 4, 5]), local.logits([3, 4, 5]));
    const p = await tl.LanguageModel.fromURL(`${base}/packed.safetensors`);
    local.setActivations('int8');
    local.reset();
    assert.deepEqual(p.logits([3, 4, 5]), local.logits([3, 4, 5]));
    const ac = new AbortController();
    await assert.rejects(tl.LanguageModel.fromURL(`${base}/slow`, { signal: ac.signal, onProgress: () => ac.abort() }), (e) => e.name === 'AbortError');
    stall?.destroy();
    await assert.rejects(tl.LanguageModel.fromURL(`${base}/missing`), (e) => e instanceof TilelliError && /HTTP 404/.test(e.message));
    lm.free(), p.free(), local.free();
  } finally {
    server.closeAllConnections?.();
    await new Promise((resolve) => server.close(resolve));
  }
});
