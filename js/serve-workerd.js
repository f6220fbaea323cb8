// serve-workerd.js — `tilelli/serve` for Cloudflare Workers (workerd) and other runtimes that
// compile no wasm from bytes: the serving build is imported as a module, which the bundler or the
// runtime turns into a compiled WebAssembly.Module.
//
// Only the SIMD128 serving build is imported. workerd decodes and validates every wasm module a
// worker declares when each isolate starts (about 11 us per KB here), and compiles each function
// when it first runs: the relaxed build would add its module and its self-test, which runs the
// int8 kernels a float model never calls (about 4 ms of a cold start, bench/edge.mjs). Relaxed
// SIMD speeds up int8 activations only (1.8-2.3x on large layers); a worker that wants it imports
// it and passes it:
//   import relaxed from 'tilelli/tilelli-serve-relaxed.wasm';  await init({ module: relaxed });
import simdModule from '../dist/tilelli-serve-simd.wasm';

import { makeInit, TilelliError } from './loader.js';
import { instantiateServe } from './serve-core.js';

export { TilelliError, relaxedSupported, simdSupported, wasmUrl } from './loader.js';
async function loadBuild(build) {
  if (build === 'simd') return simdModule;
  throw new TilelliError('INVALID_ARGUMENT', `init: the workerd entry of tilelli/serve bundles the SIMD128 serving build, not '${build}': ` +
    `import it as a module (import m from 'tilelli/tilelli-serve-${build}.wasm') and pass init({ module: m })`);
}
export const init = makeInit(instantiateServe, loadBuild, undefined, { threads: false });
