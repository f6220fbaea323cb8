// lm-worker.js — a Cloudflare Worker that runs the language-model sample (test/runtimes/lm-sample.js)
// with tilelli imported by name: its test handler (`workerd test`) loads the packed character model
// and a PyTorch golden fixture from data and text modules (lm-config.capnp), runs lmSample on the
// default build and on the scalar one, and compares each with the Node result the bundler embedded
// as __TILELLI_LM_EXPECTED__ (test/runtimes/workerd-lm.test.js), throwing on a mismatch.
import { init } from 'tilelli';
// the scalar build, which the package's workerd entry does not bundle, passed as a module
import scalarModule from 'tilelli/tilelli-scalar.wasm';

import charlm from './charlm.safetensors';
import tokenizer from './tokenizer.json';
import goldenConfig from './golden-config.json';
import goldenModel from './golden-model.safetensors';
import golden from './golden.json';
import { lmSample } from '../runtimes/lm-sample.js';

function firstDifference(got, want, path = '$') {
  if (Object.is(got, want)) return null;
  if (typeof got !== 'object' || typeof want !== 'object' || got === null || want === null) return `${path}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`;
  if (Array.isArray(got) && got.length !== want.length) return `${path}: got ${got.length} items, expected ${want.length}`;
  for (const key of new Set([...Object.keys(got), ...Object.keys(want)])) {
    const d = firstDifference(got[key], want[key], `${path}.${key}`);
    if (d) return d;
  }
  return null;
}

export default {
  async test() {
    // eslint-disable-next-line no-undef -- replaced by the bundler
    const expected = JSON.parse(__TILELLI_LM_EXPECTED__);
    const files = {
      charlm: { weights: new Uint8Array(charlm), tokenizer },
      golden: { config: goldenConfig, weights: new Uint8Array(goldenModel), golden: JSON.parse(golden) },
    };
    const results = {};
    for (const build of ['default', 'scalar']) {
      const tl = await init(build === 'default' ? {} : { module: scalarModule });
      const r = JSON.parse(JSON.stringify(await lmSample((f) => tl.LanguageModel.load(f), files)));
      const d = firstDifference(r, expected[build === 'scalar' ? 'scalar' : 'simd']);
      if (d) throw new Error(`workerd ${build} build differs from Node: ${d}`);
      results[build] = { running: tl.build, greedyText: r.charlm.greedyText, golden: r.golden.greedy };
    }
    console.log(`TILELLI_WORKERD_LM ${JSON.stringify(results)}`);
  },
};
