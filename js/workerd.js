// workerd.js — the entry for Cloudflare Workers (workerd) and other runtimes that refuse to
// compile wasm from bytes: the builds are imported as modules, which the bundler or the runtime
// turns into compiled WebAssembly.Module objects.
import relaxedModule from '../dist/tilelli-relaxed.wasm';
import simdModule from '../dist/tilelli-simd.wasm';
import scalarModule from '../dist/tilelli-scalar.wasm';

import { makeInit } from './loader.js';

export { TilelliError, relaxedSupported, simdSupported, wasmUrl } from './loader.js';
export { Tokenizer } from './tokenizer.js';
const modules = { relaxed: relaxedModule, simd: simdModule, scalar: scalarModule };
export const init = makeInit(async (build) => modules[build], undefined, { threads: false }); // workerd runs no threads
