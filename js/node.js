// node.js — the entry for Node: the shipped builds are read from disk.
import { readFile } from 'node:fs/promises';

import { instantiate } from './core.js';
import { makeInit, wasmUrl } from './loader.js';

const compileFile = async (url) => WebAssembly.compile(await readFile(url));

export { TilelliError, relaxedSupported, simdSupported, wasmUrl } from './loader.js';
export { Tokenizer } from './tokenizer.js';
export const init = makeInit(instantiate, (build) => compileFile(wasmUrl(build)), (url) =>
  (url.protocol === 'file:' ? compileFile(url) : import('./loader.js').then((l) => l.compileFetched(url))));
export { startTraining } from './worker.js';
export { loadLanguageModel } from './lm-worker.js';
