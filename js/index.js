// index.js — `init()`: pick the SIMD128 or scalar build, load it, return the API.
//
// Where the bytes come from: `{ module }` (a compiled WebAssembly.Module, for runtimes that
// import .wasm files), `{ bytes }`, `{ url }`, or by default the files in dist/ next to this
// package, read with node:fs under Node and fetched elsewhere.

import { instantiate } from './core.js';
import { TilelliError } from './errors.js';

export { TilelliError };

// The smallest module that uses a SIMD128 instruction: (func (result v128) i32.const 0 i8x16.splat).
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 8, 1, 6, 0, 65, 0, 253, 15, 11,
]);

/** True when this runtime validates WebAssembly SIMD128. */
export function simdSupported() {
  return WebAssembly.validate(SIMD_PROBE);
}

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/** The URL of a shipped wasm build. */
export function wasmUrl(simd) {
  return new URL(`../dist/tilelli-${simd ? 'simd' : 'scalar'}.wasm`, import.meta.url);
}

async function compileFrom(url) {
  if (isNode && url.protocol === 'file:') {
    const [{ readFile }, { fileURLToPath }] = await Promise.all([import('node:fs/promises'), import('node:url')]);
    return WebAssembly.compile(await readFile(fileURLToPath(url)));
  }
  const response = await fetch(url);
  if (!response.ok) throw new TilelliError('INVALID_ARGUMENT', `init: fetching ${url} gave HTTP ${response.status}`);
  if (typeof WebAssembly.compileStreaming === 'function' &&
      response.headers.get('content-type')?.startsWith('application/wasm')) {
    return WebAssembly.compileStreaming(response);
  }
  return WebAssembly.compile(await response.arrayBuffer());
}

const compiled = new Map(); // url -> Promise<WebAssembly.Module>, so repeated init() compiles once

/**
 * Load tilelli and return its API.
 * @param {import('./index.js').InitOptions} [options]
 */
export async function init(options = {}) {
  if (options === null || typeof options !== 'object') {
    throw new TilelliError('INVALID_ARGUMENT', `init: options must be an object, got ${typeof options}`);
  }
  const { simd, module, bytes, url, maxMemory } = options;
  if (simd !== undefined && typeof simd !== 'boolean') {
    throw new TilelliError('INVALID_ARGUMENT', `init: simd must be a boolean, got ${typeof simd}`);
  }
  let mod;
  if (module !== undefined) {
    if (!(module instanceof WebAssembly.Module)) {
      throw new TilelliError('INVALID_ARGUMENT', 'init: module must be a WebAssembly.Module');
    }
    mod = module;
  } else if (bytes !== undefined) {
    mod = await WebAssembly.compile(bytes);
  } else {
    const useSimd = simd ?? simdSupported();
    if (useSimd && !simdSupported()) {
      throw new TilelliError('INVALID_ARGUMENT', 'init: simd: true was asked for, but this runtime has no WebAssembly SIMD128');
    }
    const where = url !== undefined ? new URL(url, isNode ? `file://${process.cwd()}/` : globalThis.location?.href) : wasmUrl(useSimd);
    const key = where.href;
    if (!compiled.has(key)) {
      const p = compileFrom(where);
      p.catch(() => compiled.delete(key));
      compiled.set(key, p);
    }
    mod = await compiled.get(key);
  }
  return instantiate(mod, { maxMemory });
}
