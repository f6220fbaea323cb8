// lm-page.js — the language-model app of test/runtimes/browser-lm.test.js, bundled by esbuild with
// the package's "browser" entry into <site>/app/lm-page.js, beside app/lm-worker.js (the bundled
// js/worker-entry.js) and copies of dist/*.wasm; the fixtures are served under <site>/lm/.
// It runs lmSample on the main thread (relaxed and scalar builds) and in a worker
// (loadLanguageModel, from bytes and from URLs with progress), loads the packed file with
// LanguageModel.fromURL, and cancels a long generation in the worker; everything goes to
// window.lmReport for the test.
import { init, loadLanguageModel } from 'tilelli';

import { randomConfig, randomWeights } from '../js/lm-random.js';
import { GOLDEN_CASE, lmSample } from '../runtimes/lm-sample.js';

const here = (path) => new URL(path, import.meta.url).href;
const wasm = (build) => here(`./tilelli-${build}.wasm`);
const site = (path) => new URL(path, document.baseURI).href;
const worker = here('./lm-worker.js');

async function bytes(path) {
  const r = await fetch(site(path));
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function main() {
  const files = {
    charlm: { weights: await bytes('lm/charlm.safetensors'), tokenizer: await bytes('lm/tokenizer.json') },
    golden: {
      config: await bytes(`lm/${GOLDEN_CASE}/config.json`), weights: await bytes(`lm/${GOLDEN_CASE}/model.safetensors`),
      golden: JSON.parse(new TextDecoder().decode(await bytes(`lm/${GOLDEN_CASE}/golden.json`))),
    },
  };
  const report = { main: {}, worker: {} };
  for (const build of ['relaxed', 'scalar']) {
    const tl = await init({ url: wasm(build) });
    report.main[build] = { build: tl.build, result: await lmSample((f) => tl.LanguageModel.load(f), files) };
  }
  const opts = { worker, init: { url: wasm('relaxed') } };
  report.worker.bytes = await lmSample((f) => loadLanguageModel(f, opts), files);

  // URLs: the worker downloads, with progress
  const events = [];
  const fromUrls = await loadLanguageModel({ weights: site('lm/charlm.safetensors'), tokenizer: site('lm/tokenizer.json') },
    { ...opts, onProgress: (p) => events.push(p) });
  const g = await fromUrls.generate('hacker n. ', { maxNewTokens: 60 });
  report.worker.urls = { greedy: Array.from(g.tokens), events: events.length, last: events.at(-1) };
  await fromUrls.free();

  // LanguageModel.fromURL on the main thread (the weights stream into wasm memory)
  const tl = await init({ url: wasm('relaxed') });
  const main = await tl.LanguageModel.fromURL(site('lm/charlm.safetensors'));
  report.main.fromURL = Array.from(main.logits([74, 67, 69, 77]));
  main.free();

  // cancel: a long generation of a random model, aborted after 5 tokens
  const config = randomConfig({ hidden: 128, layers: 2, vocab: 256, context: 4096 });
  const big = await loadLanguageModel({ config, weights: randomWeights(config, 3) }, opts);
  const ac = new AbortController();
  const seen = [];
  let error;
  try {
    await big.generate([1, 2, 3, 4], {
      maxNewTokens: 4000, temperature: 1, seed: 1, signal: ac.signal,
      onToken: (t) => { seen.push(t.id); if (seen.length === 5) ac.abort(); },
    });
  } catch (e) {
    error = e.name;
  }
  const tokensAtAbort = seen.length;
  await big.logits([7]); // answered once the worker has stopped
  report.cancel = { error, tokensAtAbort, tokensAfter: seen.length, position: big.position };
  await big.reset();
  const again = await big.generate([1, 2, 3, 4], { maxNewTokens: 20, temperature: 1, seed: 11 });
  report.cancel.after = Array.from(again.tokens);
  await big.free();
  return report;
}

main().then((report) => {
  window.lmReport = { ok: true, ...report };
  document.getElementById('status').textContent = 'done';
  document.getElementById('out').textContent = `${report.main.relaxed.result.charlm.greedyText}\n\n${JSON.stringify(report.cancel)}`;
}, (e) => {
  window.lmReport = { ok: false, error: `${e.name}: ${e.message}\n${e.stack}` };
  document.getElementById('status').textContent = 'failed';
});
