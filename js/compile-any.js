// compile-any.js — for the entries no runtime condition names (js/index.js, js/serve.js): a
// wasm file read from disk in Node-like runtimes, fetched elsewhere. Its own file, so that the
// entries a bundler picks for a browser or workerd never see the import of node:fs.
import { compileFetched } from './loader.js';

/* global Deno */
const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/** Compile the wasm file at url. */
export async function compileAny(url) {
  // Deno first: it has a process global too, and its node:fs would load Deno's Node layer (tens
  // of ms at every start of a `deno serve`).
  if (typeof Deno !== 'undefined' && url.protocol === 'file:') return WebAssembly.compile(await Deno.readFile(url));
  if (isNode && url.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    return WebAssembly.compile(await readFile(url));
  }
  return compileFetched(url);
}
