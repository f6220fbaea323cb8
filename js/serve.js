// serve.js — `tilelli/serve`, the serving entry: init() gives the Model class alone (load, run,
// predict, ...) over the serving builds (dist/tilelli-serve-relaxed.wasm, -simd.wasm: a third of
// the full wasm, and a third of its JavaScript in a bundle). For servers, workers and functions
// whose start time counts. This default entry reads the builds from disk in Node-like runtimes
// and fetches them elsewhere; js/serve-workerd.js imports them as modules.
import { compileAny } from './compile-any.js';
import { makeInit, serveBuild, wasmUrl } from './loader.js';
import { instantiateServe } from './serve-core.js';

export { TilelliError, relaxedSupported, simdSupported, wasmUrl } from './loader.js';
export const init = makeInit(instantiateServe, (build) => compileAny(wasmUrl(serveBuild(build))), compileAny, { threads: false });
