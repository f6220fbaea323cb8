// serve-core.js — the serving API: a tilelli serving build (dist/tilelli-serve-*.wasm, the
// exports tagged `serve` in wasm/exports.txt) wrapped with the Model class alone. It is the whole
// Model of the full API (load, fromURL, fromResponse, run, predict, trits, save, convert,
// metadata, activations), with none of the rest (quantizing, packing, training, language
// models): a third of the wasm and of the JavaScript, for runtimes where every start counts.

import { baseApi, instantiateWith } from './instance.js';
import { Model } from './model.js';
import { bindClass } from './runtime.js';

function createServeApi(rt, build, threads) {
  const Bound = bindClass(Model, rt);
  rt.classes[Model.label] = Bound;
  return { ...baseApi(rt, build, threads), Model: Bound };
}

/**
 * Instantiate a serving build (or any tilelli build: the full ones export the serving functions
 * too) with the serving API. One thread: a threaded build is refused.
 * @param {WebAssembly.Module} module
 * @param {{ maxMemory?: number }} [options]
 */
export function instantiateServe(module, options = {}) {
  return instantiateWith(module, options, createServeApi);
}
