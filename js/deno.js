// deno.js — the entry for Deno: the shipped builds are read from disk (or fetched when remote).
/* global Deno */
import { instantiate } from './core.js';
import { compileFetched, makeInit, wasmUrl } from './loader.js';

const load = async (url) => (url.protocol === 'file:' ? WebAssembly.compile(await Deno.readFile(url)) : compileFetched(url));

export { TilelliError, relaxedSupported, simdSupported, wasmUrl } from './loader.js';
export { Tokenizer } from './tokenizer.js';
export const init = makeInit(instantiate, (build) => load(wasmUrl(build)), load);
export { startTraining } from './worker.js';
export { loadLanguageModel } from './lm-worker.js';
