// index.js — the default entry, for runtimes no other condition names: Node-like runtimes read
// the shipped builds from disk, everything else fetches them. Prefer the specific entries
// (package.json "exports" picks them by condition).
import { instantiate } from './core.js';
import { compileAny } from './compile-any.js';
import { makeInit, wasmUrl } from './loader.js';

export { TilelliError, relaxedSupported, simdSupported, wasmUrl } from './loader.js';
export { Tokenizer } from './tokenizer.js';
export const init = makeInit(instantiate, (build) => compileAny(wasmUrl(build)), compileAny);
export { startTraining } from './worker.js';
export { loadLanguageModel } from './lm-worker.js';
