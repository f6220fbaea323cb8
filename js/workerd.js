// workerd.js — the entry for Cloudflare Workers (workerd) and other runtimes that refuse to
// compile wasm from bytes: the builds are imported as modules, which the bundler or the runtime
// turns into compiled WebAssembly.Module objects.
//
// Only the relaxed-SIMD build and its SIMD128 fallback are imported: workerd compiles every wasm
// module a worker declares when it starts the isolate, used or not, and its V8 runs both SIMD
// builds, so the scalar one would only cost start-up time and memory (about 1.5 ms of CPU and
// 2.7 MiB of RSS per isolate). A worker that wants it imports it and passes it:
//   import scalar from 'tilelli/tilelli-scalar.wasm';  await init({ module: scalar });
import relaxedModule from '../dist/tilelli-relaxed.wasm';
import simdModule from '../dist/tilelli-simd.wasm';

import { instantiate } from './core.js';
import { makeInit, TilelliError } from './loader.js';

export { TilelliError, relaxedSupported, simdSupported, wasmUrl } from './loader.js';
export { Tokenizer } from './tokenizer.js';
const modules = { relaxed: relaxedModule, simd: simdModule };
async function loadBuild(build) {
  if (modules[build]) return modules[build];
  throw new TilelliError('INVALID_ARGUMENT', `init: the workerd entry bundles the relaxed and SIMD128 builds, not '${build}': ` +
    `import it as a module (import m from 'tilelli/tilelli-${build}.wasm') and pass init({ module: m })`);
}
export const init = makeInit(instantiate, loadBuild, undefined, { threads: false }); // workerd runs no threads
