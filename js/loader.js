// loader.js — the one loader every entry shares: options, the SIMD or scalar choice, caching.
//
// An entry (node.js, browser.js, deno.js, workerd.js, index.js) only says how to get the
// compiled module of a shipped build when init() is given none: makeInit(loadBuild) with
// loadBuild(simd) -> Promise<WebAssembly.Module>. `{ module }`, `{ bytes }` and `{ url }`
// work the same in every runtime.

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

/** The URL of a shipped wasm build, next to this package's js/ folder. */
export function wasmUrl(simd) {
  return new URL(`../dist/tilelli-${simd ? 'simd' : 'scalar'}.wasm`, import.meta.url);
}

/** Compile what fetch(url) returns, streaming when the server says application/wasm. */
export async function compileFetched(url) {
  const response = await fetch(url);
  if (!response.ok) throw new TilelliError('INVALID_ARGUMENT', `init: fetching ${url} gave HTTP ${response.status}`);
  if (typeof WebAssembly.compileStreaming === 'function' &&
      response.headers.get('content-type')?.startsWith('application/wasm')) {
    return WebAssembly.compileStreaming(response);
  }
  return WebAssembly.compile(await response.arrayBuffer());
}

/**
 * Make the init() of an entry.
 * @param {(simd: boolean) => Promise<WebAssembly.Module>} loadBuild the shipped build, compiled
 * @param {(url: URL) => Promise<WebAssembly.Module>} [loadUrl] how this runtime loads `{ url }`
 */
export function makeInit(loadBuild, loadUrl = compileFetched) {
  const cache = new Map(); // build or url -> Promise<WebAssembly.Module>: compile once per process
  const cached = (key, load) => {
    if (!cache.has(key)) {
      const p = load();
      p.catch(() => cache.delete(key));
      cache.set(key, p);
    }
    return cache.get(key);
  };

  return async function init(options = {}) {
    if (options === null || typeof options !== 'object') {
      throw new TilelliError('INVALID_ARGUMENT', `init: options must be an object, got ${options === null ? 'null' : typeof options}`);
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
      if (!(bytes instanceof ArrayBuffer || ArrayBuffer.isView(bytes))) {
        throw new TilelliError('INVALID_ARGUMENT', `init: bytes must be the wasm file (a Uint8Array or ArrayBuffer), got ${bytes === null ? 'null' : typeof bytes}`);
      }
      try {
        mod = await WebAssembly.compile(bytes);
      } catch (e) {
        throw new TilelliError('INVALID_ARGUMENT', `init: bytes is not a WebAssembly module (${e.message})`);
      }
    } else if (url !== undefined) {
      const where = new URL(url, globalThis.location?.href ?? import.meta.url);
      mod = await cached(where.href, () => loadUrl(where));
    } else {
      const useSimd = simd ?? simdSupported();
      if (useSimd && !simdSupported()) {
        throw new TilelliError('INVALID_ARGUMENT', 'init: simd: true was asked for, but this runtime has no WebAssembly SIMD128');
      }
      mod = await cached(useSimd ? 'simd' : 'scalar', () => loadBuild(useSimd));
    }
    return instantiate(mod, { maxMemory });
  };
}
