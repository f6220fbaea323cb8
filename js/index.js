// index.js — the default entry, for runtimes no other condition names: Node-like runtimes read
// the shipped builds from disk, everything else fetches them. Prefer the specific entries
// (package.json "exports" picks them by condition).
import { compileFetched, makeInit, wasmUrl } from './loader.js';

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

async function load(url) {
  if (isNode && url.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    return WebAssembly.compile(await readFile(url));
  }
  return compileFetched(url);
}

export { TilelliError, relaxedSupported, simdSupported, wasmUrl } from './loader.js';
export { Tokenizer } from './tokenizer.js';
export const init = makeInit((build) => load(wasmUrl(build)), load);
export { startTraining } from './worker.js';
export { loadLanguageModel } from './lm-worker.js';
