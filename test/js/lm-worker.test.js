// lm-worker.test.js — loadLanguageModel: a LanguageModel in a Node worker_thread through the worker
// protocol. The same tokens and logits as the main thread (greedy and seeded sampling, the
// PyTorch goldens' greedy ids), loading from bytes and over HTTP with progress, tokens streamed
// (onToken and stream()), a cancel that reaches the worker mid-generation, typed errors, free.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { test } from 'node:test';

import { TilelliError, Tokenizer, init, loadLanguageModel } from 'tilelli';

import { randomConfig, randomWeights } from './lm-random.js';

const dir = new URL('../fixtures/lm/', import.meta.url);
const read = (name, file) => readFileSync(new URL(`${name}/${file}`, dir));
const cases = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && d.name !== 'charlm').map((d) => d.name);
const tl = await init();
const charlm = { config: read('charlm', 'config.json'), weights: read('charlm', 'model.safetensors'), tokenizer: read('charlm', 'tokenizer.json') };
const mainCharlm = tl.LanguageModel.load({ ...charlm, tokenizer: Tokenizer.fromJSON(charlm.tokenizer) });
const packed = mainCharlm.save();

test('the charlm model in a worker writes what the main thread writes: greedy and seeded, text and ids, onToken and stream()', { timeout: 60_000 }, async () => {
  const lm = await loadLanguageModel({ weights: packed, tokenizer: charlm.tokenizer });
  try {
    assert.equal(lm.hasTokenizer, true);
    assert.deepEqual(lm.config, mainCharlm.config);
    assert.equal(lm.context, 128);
    assert.equal(lm.vocabSize, 97);
    const main = tl.LanguageModel.load({ weights: packed, tokenizer: Tokenizer.fromJSON(charlm.tokenizer) });
    for (const opts of [{ maxNewTokens: 60 }, { maxNewTokens: 60, temperature: 0.8, topK: 40, seed: 5 }, { maxNewTokens: 50, temperature: 1.2, topP: 0.9, seed: 123456789 }]) {
      main.reset();
      await lm.reset();
      assert.equal(lm.position, 0);
      const want = await main.generate('hacker n. ', opts);
      const pieces = [];
      const got = await lm.generate('hacker n. ', { ...opts, onToken: (t) => pieces.push(t) });
      assert.deepEqual(got.tokens, want.tokens, `tokens of ${JSON.stringify(opts)}`);
      assert.equal(got.text, want.text);
      assert.deepEqual([got.stopReason, got.promptTokens], [want.stopReason, want.promptTokens]);
      assert.deepEqual(pieces.map((p) => p.id), Array.from(want.tokens), 'one onToken per token, in order');
      assert.deepEqual(pieces.map((p) => p.index), pieces.map((_, i) => i));
      assert.equal(pieces.map((p) => p.text).join(''), want.text);
      assert.equal(lm.position, main.position, 'position follows the worker');
      assert.ok(got.prefillMs >= 0 && got.decodeMs > 0 && got.tokensPerSecond > 0);
    }
    // token ids as the prompt, after what was fed (no reset): the KV cache carries over
    const ids = [74, 67, 69, 77];
    const want = await main.generate(ids, { maxNewTokens: 20, temperature: 0.7, seed: 9 });
    const got = await lm.generate(Uint32Array.from(ids), { maxNewTokens: 20, temperature: 0.7, seed: 9 });
    assert.deepEqual(got.tokens, want.tokens);
    // stream(): the same tokens as an async iterator, and the result
    main.reset();
    await lm.reset();
    const w2 = await main.generate('The ', { maxNewTokens: 30, temperature: 0.9, seed: 2 });
    const s = lm.stream('The ', { maxNewTokens: 30, temperature: 0.9, seed: 2 });
    const seen = [];
    for await (const t of s) seen.push(t.id);
    assert.deepEqual(seen, Array.from(w2.tokens));
    assert.equal((await s.result).text, w2.text);
    // logits: the main thread's, bit for bit
    main.reset();
    await lm.reset();
    assert.deepEqual(await lm.logits([3, 4, 5]), main.logits([3, 4, 5]));
    assert.deepEqual(await lm.logits([6, 7], { all: true }), main.logits([6, 7], { all: true }));
    assert.equal(lm.position, 5);
    // float activations, then the packed file back from the worker
    await lm.setActivations('float');
    assert.equal(lm.config.tilelli_activations, 'float');
    main.setActivations('float');
    main.reset();
    await lm.reset();
    assert.deepEqual(await lm.logits([9, 10]), main.logits([9, 10]));
    const saved = await lm.save();
    assert.ok(saved instanceof Uint8Array && saved.length === packed.length);
    main.free();
  } finally {
    await lm.free();
  }
  assert.equal(lm.freed, true);
  await assert.rejects(lm.generate('x'), (e) => e instanceof TilelliError && e.code === 'FREED');
  await lm.free(); // a second free does nothing
});

test(`the worker gives the PyTorch goldens' greedy ids of ${cases.length} tiny configs, as the main thread`, { timeout: 60_000 }, async () => {
  for (const name of cases) {
    const g = JSON.parse(read(name, 'golden.json'));
    const files = { config: read(name, 'config.json'), weights: read(name, 'model.safetensors') };
    const lm = await loadLanguageModel(files);
    try {
      let l = await lm.logits(g.prompt);
      const greedy = [];
      for (let i = 0; i < g.greedy.length; i++) {
        const id = l.indexOf(Math.max(...l));
        greedy.push(id);
        l = await lm.logits([id]);
      }
      assert.deepEqual(greedy, g.greedy, `${name}: greedy ids`);
      // generate's greedy (temperature 0) stops at the config's EOS: compare with the main thread
      const main = tl.LanguageModel.load(files);
      await lm.reset();
      assert.deepEqual((await lm.generate(g.prompt, { maxNewTokens: 8 })).tokens, (await main.generate(g.prompt, { maxNewTokens: 8 })).tokens, name);
      main.free();
    } finally {
      await lm.free();
    }
  }
});

test('loading over HTTP in the worker: progress per chunk, the same model; a 404 and a bad file are TilelliErrors of the worker', { timeout: 60_000 }, async () => {
  const served = { '/packed.safetensors': packed, '/config.json': charlm.config, '/model.safetensors': charlm.weights, '/tokenizer.json': charlm.tokenizer, '/bad.safetensors': new Uint8Array(64) };
  const server = createServer((req, res) => {
    const body = served[req.url];
    if (!body) return res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length });
    // in pieces, so that there are several chunks
    for (let at = 0; at < body.length; at += 1 << 16) res.write(body.subarray(at, at + (1 << 16)));
    res.end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    const events = [];
    const lm = await loadLanguageModel({ weights: `${base}/model.safetensors`, config: `${base}/config.json`, tokenizer: `${base}/tokenizer.json` },
      { onProgress: (p) => events.push(p), context: 64 });
    const w = events.filter((e) => e.file === 'weights');
    assert.ok(w.length >= 2, `${w.length} progress events for the weights`);
    assert.deepEqual(w.at(-1), { file: 'weights', loaded: charlm.weights.length, total: charlm.weights.length });
    assert.ok(w.every((e, i) => i === 0 || e.loaded > w[i - 1].loaded), 'loaded grows');
    assert.equal(lm.context, 64);
    const greedy = await lm.generate('hacker n. ', { maxNewTokens: 30 });
    mainCharlm.reset();
    assert.deepEqual(greedy.tokens, (await mainCharlm.generate('hacker n. ', { maxNewTokens: 30 })).tokens);
    await lm.free();

    const p = await loadLanguageModel(`${base}/packed.safetensors`);
    assert.equal(p.hasTokenizer, false);
    await assert.rejects(p.generate('text'), (e) => e instanceof TilelliError && e.code === 'INVALID_ARGUMENT' && /needs a tokenizer/.test(e.message));
    mainCharlm.reset();
    assert.deepEqual(await p.logits([1, 2, 3]), mainCharlm.logits([1, 2, 3]));
    await p.free();

    await assert.rejects(loadLanguageModel(`${base}/missing.safetensors`), (e) => e instanceof TilelliError && /HTTP 404/.test(e.message));
    let mainError;
    try { tl.LanguageModel.load({ weights: served['/bad.safetensors'] }); } catch (e) { mainError = e; }
    await assert.rejects(loadLanguageModel(`${base}/bad.safetensors`), (e) => e instanceof TilelliError && e.code === mainError.code &&
      e.message === mainError.message.replace('LanguageModel.load', 'LanguageModel.fromURL'));
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('a signal cancels a generation in the worker between two tokens; breaking out of stream() too; the model stays usable', { timeout: 60_000 }, async () => {
  const config = randomConfig({ hidden: 128, layers: 2, vocab: 256, context: 4096 });
  const weights = randomWeights(config, 3);
  const lm = await loadLanguageModel({ config, weights });
  try {
    const ac = new AbortController();
    const seen = [];
    const prompt = [1, 2, 3, 4];
    await assert.rejects(lm.generate(prompt, {
      maxNewTokens: 4000, temperature: 1, seed: 1, signal: ac.signal,
      onToken: (t) => { seen.push(t.id); if (seen.length === 5) ac.abort(new Error('enough')); },
    }), (e) => e.name === 'AbortError' && e.cause?.message === 'enough');
    const after = seen.length;
    // the next request runs once the worker has stopped: position says where it stopped
    const l = await lm.logits([7]);
    assert.equal(l.length, 256);
    assert.ok(lm.position > prompt.length + 4 && lm.position < prompt.length + 3999,
      `the worker stopped mid-generation (position ${lm.position}), not at the end (a full run feeds ${prompt.length + 3999})`);
    assert.equal(seen.length, after, 'no token after the promise settled');

    // break out of a stream: the worker stops too
    await lm.reset();
    let n = 0;
    for await (const t of lm.stream(prompt, { maxNewTokens: 4000, temperature: 1, seed: 1 })) {
      assert.equal(t.index, n);
      if (++n === 3) break;
    }
    await lm.reset();
    assert.equal(lm.position, 0);
    // an already aborted signal: nothing runs
    await assert.rejects(lm.generate(prompt, { signal: AbortSignal.abort() }), (e) => e.name === 'AbortError');
    // the model is intact: the same seeded tokens as the main thread
    const main = tl.LanguageModel.load({ config, weights });
    const want = await main.generate(prompt, { maxNewTokens: 40, temperature: 1, seed: 11 });
    assert.deepEqual((await lm.generate(prompt, { maxNewTokens: 40, temperature: 1, seed: 11 })).tokens, want.tokens);
    main.free();
  } finally {
    await lm.free();
  }
});

test('bad arguments throw at once; bad options and files reject with the worker\'s TilelliError', { timeout: 30_000 }, async () => {
  assert.throws(() => loadLanguageModel(42), (e) => e instanceof TilelliError && e.code === 'INVALID_ARGUMENT' && /packed file/.test(e.message));
  assert.throws(() => loadLanguageModel({ weights: 'http://127.0.0.1:1/x.safetensors', config: new Uint8Array(2) }), /config must be a URL like weights/);
  assert.throws(() => loadLanguageModel({ weights: packed, tokenizer: Tokenizer.fromJSON(charlm.tokenizer) }), /cannot cross to a worker/);
  assert.throws(() => loadLanguageModel(packed, { onProgress: 1 }), /onProgress must be a function/);
  await assert.rejects(loadLanguageModel(packed, { signal: AbortSignal.abort() }), (e) => e.name === 'AbortError');
  await assert.rejects(loadLanguageModel(packed, { activations: 'int4' }), (e) => e instanceof TilelliError && e.code === 'INVALID_ARGUMENT' && /activations must be one of/.test(e.message));
  await assert.rejects(loadLanguageModel({ config: '{"vocab_size": 3}', weights: charlm.weights }), (e) => e instanceof TilelliError && /LanguageModel\.load/.test(e.message));
  // transfer: the caller's buffer goes to the worker
  const copy = packed.slice();
  const lm = await loadLanguageModel(copy, { transfer: true });
  assert.equal(copy.byteLength, 0, 'transferred: detached here');
  await assert.rejects(lm.generate([1], { topK: 1.5 }), (e) => e instanceof TilelliError && /topK must be a non-negative integer/.test(e.message));
  await assert.rejects(lm.logits([]), (e) => e instanceof TilelliError && /tokens is empty/.test(e.message));
  await assert.rejects(lm.generate([1], { onToken: 3 }), /onToken must be a function/);
  // stream(): the worker's error ends the loop with it, and result rejects with it too
  const s = lm.stream([1], { temperature: -1 });
  await assert.rejects(async () => { for await (const _ of s); }, (e) => e instanceof TilelliError && /temperature must be a number/.test(e.message)); // eslint-disable-line no-unused-vars
  await assert.rejects(s.result, (e) => e instanceof TilelliError);
  // a caller's signal ends a stream with an AbortError
  const ac = new AbortController();
  const s2 = lm.stream([1], { maxNewTokens: 100, signal: ac.signal });
  await assert.rejects(async () => { for await (const _ of s2) ac.abort(); }, (e) => e.name === 'AbortError'); // eslint-disable-line no-unused-vars
  assert.equal(lm.position, 0);
  await lm.free();
});

test('load options reach the worker: embedding float16 and int8 give the main thread\'s config and logits', { timeout: 60_000 }, async () => {
  for (const embedding of ['float16', 'int8']) {
    const lm = await loadLanguageModel({ config: charlm.config, weights: charlm.weights }, { embedding, activations: 'float' });
    try {
      const main = tl.LanguageModel.load({ config: charlm.config, weights: charlm.weights }, { embedding, activations: 'float' });
      assert.equal(lm.config.tilelli_embedding, embedding);
      assert.deepEqual(lm.config, main.config);
      const ids = [74, 67, 69, 77, 12];
      assert.deepEqual(await lm.logits(ids), main.logits(ids), `${embedding}: the same logits`);
      main.free();
    } finally {
      await lm.free();
    }
  }
});
