// worker.js — a Cloudflare Worker (ES module syntax) that imports tilelli by name. Its fetch
// handler answers GET /sample?build=relaxed|simd|scalar|default with the shared sample (deadzone stats, ternary
// matrix products in every format) as JSON. Its test handler, run by `workerd test`, sends itself
// those requests through a service binding and compares the answers with the Node result that the
// bundler embedded as __TILELLI_EXPECTED__ (test/runtimes/workerd.test.js), throwing on mismatch.
import { init } from 'tilelli';
// The package's workerd entry bundles the relaxed and SIMD128 builds; the scalar one is imported
// here and passed as a module, as a worker that wants it does.
import scalarModule from 'tilelli/tilelli-scalar.wasm';

import { sample } from '../runtimes/sample.js';

async function fetch(request) {
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.pathname !== '/sample') {
    return new Response('not found\n', { status: 404 });
  }
  const build = url.searchParams.get('build') ?? 'default';
  if (!['relaxed', 'simd', 'scalar', 'default'].includes(build)) {
    return new Response(`unknown build ${build}\n`, { status: 400 });
  }
  const tl = await init(build === 'default' ? {} : build === 'scalar' ? { module: scalarModule } : { build });
  return Response.json({ build, running: tl.build, simd: tl.simd, threads: tl.threads, sample: sample(tl) });
}

/** The path of the first difference between two JSON values, or null when they are equal. */
function firstDifference(got, want, path = '$') {
  if (Object.is(got, want)) return null;
  if (typeof got !== 'object' || typeof want !== 'object' || got === null || want === null ||
      Array.isArray(got) !== Array.isArray(want)) {
    return `${path}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`;
  }
  const keys = new Set([...Object.keys(got), ...Object.keys(want)]);
  if (Array.isArray(got) && got.length !== want.length) {
    return `${path}: got ${got.length} items, expected ${want.length}`;
  }
  for (const key of keys) {
    const d = firstDifference(got[key], want[key], Array.isArray(got) ? `${path}[${key}]` : `${path}.${key}`);
    if (d) return d;
  }
  return null;
}

export default {
  fetch,

  async test(controller, env) {
    // eslint-disable-next-line no-undef -- replaced by the bundler
    const expected = JSON.parse(__TILELLI_EXPECTED__);
    const results = {};
    for (const build of ['relaxed', 'simd', 'scalar', 'default']) {
      const response = await env.SELF.fetch(`http://tilelli.test/sample?build=${build}`);
      if (response.status !== 200) throw new Error(`/sample?build=${build}: HTTP ${response.status}`);
      const type = response.headers.get('content-type') ?? '';
      if (!type.startsWith('application/json')) throw new Error(`/sample?build=${build}: content-type ${type}`);
      const body = await response.json();
      const d = firstDifference(body.sample, expected);
      if (d) throw new Error(`workerd ${build} build differs from Node: ${d}`);
      if (build !== 'default' && body.running !== build) throw new Error(`/sample?build=${build}: tl.build is ${body.running}`);
      results[build] = body;
    }
    // The scalar build is not bundled by the entry: asking for it by name says how to get it.
    const refused = await init({ build: 'scalar' }).then(() => null, (e) => e);
    if (!refused || refused.code !== 'INVALID_ARGUMENT' || !/tilelli-scalar\.wasm/.test(refused.message)) {
      throw new Error(`init({ build: 'scalar' }) in workerd: expected INVALID_ARGUMENT naming tilelli-scalar.wasm, got ${refused?.code} ${refused?.message}`);
    }
    results.scalarByName = refused.message;
    const missing = await env.SELF.fetch('http://tilelli.test/elsewhere');
    if (missing.status !== 404) throw new Error(`/elsewhere: HTTP ${missing.status}, expected 404`);
    // One line the Node test reads back: what the worker answered, checked there too.
    console.log(`TILELLI_WORKERD_RESULT ${JSON.stringify(results)}`);
  },
};
