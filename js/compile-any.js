// compile-any.js — for the entries no runtime condition names (js/index.js, js/serve.js): a
// wasm file read from disk in Node-like runtimes, fetched elsewhere. Its own file, so that the
// entries a bundler picks for a browser or workerd never see the import of node:fs.
import { compileFetched } from './loader.js';

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/** Compile the wasm file at url. */
export async function compileAny(url) {
  if (isNode && url.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    return WebAssembly.compile(await readFile(url));
  }
  return compileFetched(url);
}
