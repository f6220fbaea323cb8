// browser.js — the entry for browsers and web workers: the shipped builds are fetched next to
// this file (a bundler must copy dist/*.wasm, or pass init({ url }) / init({ module })).
import { instantiate } from './core.js';
import { compileFetched, makeInit, wasmUrl } from './loader.js';

export { TilelliError, relaxedSupported, simdSupported, wasmUrl } from './loader.js';
export { Tokenizer } from './tokenizer.js';
export const init = makeInit(instantiate, (build) => compileFetched(wasmUrl(build)));
export { startTraining } from './worker.js';
export { loadLanguageModel } from './lm-worker.js';
