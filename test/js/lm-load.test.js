// lm-load.test.js — LanguageModel.fromURL streams: the JS memory it holds while downloading and
// loading a 42 MiB packed model (bench/lm-heap.mjs's measurement, in a fresh Node process) stays
// below issue 17's 1.5x of the file, and holds no copy of the file: reading the same download into
// one JS buffer first (how fromURL read it before) holds at least 0.8x of the file more. Nor does
// wasm memory: the packed file's weights are used where they were downloaded (tl_lm_load_owned),
// so the wasm memory is what the model holds (the file, its KV cache) and not a second copy.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { init } from 'tilelli';

import { SHAPES, measureLoad, packedRandomModel } from '../../bench/lm-heap.mjs';
import { randomWeights } from './lm-random.js';

test('fromURL holds less than 1.5x the file in JS memory, and no copy of it', { timeout: 120_000 }, async (t) => {
  const tl = await init();
  const made = await packedRandomModel(tl, SHAPES['bitnet-64m'], (c) => randomWeights(c, 1));
  try {
    const r = await measureLoad(made.file);
    const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;
    t.diagnostic(`file ${mib(r.size)}: fromURL peak ${mib(r.stream.peak)} (${(r.stream.peak / r.size).toFixed(2)}x), ` +
      `one JS buffer then load() ${mib(r.buffered.peak)} (${(r.buffered.peak / r.size).toFixed(2)}x); wasm memory ${mib(r.stream.wasm)}, ` +
      `of it held by the library ${mib(r.stream.live)}`);
    assert.ok(r.stream.samples > 100, `sampled after each chunk (${r.stream.samples})`);
    assert.ok(r.stream.peak < 1.5 * r.size, `fromURL's peak ${mib(r.stream.peak)} is under 1.5x the file (${mib(r.size)})`);
    assert.ok(r.buffered.peak - r.stream.peak > 0.8 * r.size, 'no copy of the file on the JS side');
    assert.equal(r.stream.vocab, SHAPES['bitnet-64m'].vocab_size, 'the model loaded');
    assert.ok(r.stream.live >= r.size, 'the model holds its file');
    assert.ok(r.stream.wasm - r.stream.live < 0.25 * r.size,
      `wasm memory ${mib(r.stream.wasm)} is what the model holds (${mib(r.stream.live)}), not a second copy of the file`);
  } finally {
    await made.cleanup();
  }
});
