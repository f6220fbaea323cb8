// lm-sample.js — the one language-model computation every runtime runs (Node, a Chromium page and
// a worker, Deno, workerd): the trained character model (packed) writing greedy and seeded text,
// its logits, and the greedy ids of a PyTorch golden fixture. Runtime tests compare the result with
// Node's, value for value. Plain ESM with no imports: each runtime passes its own way of making a
// model, `load(files)`, returning a tl.LanguageModel (main thread) or a loadLanguageModel() model
// (a worker): the calls below are awaited, so both work.
//
// files: { charlm: { weights: packed bytes, tokenizer: tokenizer.json }, golden: { config, weights,
// golden: golden.json parsed } }.

/** Runs the sample; returns plain JSON-able data. */
export async function lmSample(load, files) {
  const out = {};
  const lm = await load(files.charlm);
  try {
    const greedy = await lm.generate('hacker n. ', { maxNewTokens: 60 });
    await lm.reset();
    const sampled = await lm.generate('The ', { maxNewTokens: 40, temperature: 0.9, topK: 20, topP: 0.95, seed: 7 });
    await lm.reset();
    const logits = await lm.logits([74, 67, 69, 77]);
    out.charlm = {
      greedy: Array.from(greedy.tokens), greedyText: greedy.text, sampled: Array.from(sampled.tokens), sampledText: sampled.text,
      logits: Array.from(logits), position: lm.position,
    };
  } finally {
    await lm.free();
  }
  const g = files.golden.golden;
  const gm = await load({ config: files.golden.config, weights: files.golden.weights });
  try {
    let l = await gm.logits(g.prompt);
    const ids = [];
    for (let i = 0; i < g.greedy.length; i++) {
      let best = 0;
      for (let k = 1; k < l.length; k++) if (l[k] > l[best]) best = k;
      ids.push(best);
      l = await gm.logits([best]);
    }
    out.golden = { greedy: ids, last: Array.from(l) };
  } finally {
    await gm.free();
  }
  return out;
}

/** The golden fixture lmSample uses (test/fixtures/lm/<name>/). */
export const GOLDEN_CASE = 'gqa_tied_relu2';
