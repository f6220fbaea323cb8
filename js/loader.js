// loader.js — the one loader every entry shares: options, the choice of build, caching.
//
// An entry (node.js, browser.js, deno.js, workerd.js, index.js) only says how to get the
// compiled module of a shipped build when init() is given none: makeInit(loadBuild) with
// loadBuild(build) -> Promise<WebAssembly.Module>, build one of BUILDS. `{ module }`, `{ bytes }`
// and `{ url }` work the same in every runtime.
//
// The builds, fastest first: 'relaxed' (relaxed SIMD, dist/tilelli-relaxed.wasm), 'simd'
// (SIMD128) and 'scalar'. By default init() takes the relaxed build where the runtime validates
// relaxed SIMD and the instance passes its self-test (js/selftest.js), else SIMD128 where
// validated, else scalar.
//
// Threads: where a shared memory can be used (js/threads.js) and more than one thread is wanted
// (init({ threads }), by default min(4, cores)), the threaded file of the chosen build is loaded
// (dist/tilelli-relaxed-mt.wasm, dist/tilelli-simd-mt.wasm; the scalar build has none) and its
// workers are started once, here; elsewhere the single-threaded file, exactly as before.

import { TilelliError } from './errors.js';
import { relaxedSupported } from './selftest.js';
import { threadsOption, threadsUnavailable } from './threads.js';

export { TilelliError, relaxedSupported };

/** The shipped builds. */
export const BUILDS = Object.freeze(['relaxed', 'simd', 'scalar']);
/** The builds that have a serving file (dist/tilelli-serve-<build>.wasm: the Model API only). */
export const SERVE_BUILDS = Object.freeze(['relaxed', 'simd']);

/** The serving file of init()'s choice of build, for the `tilelli/serve` entries ('serve-simd'). */
export function serveBuild(build) {
  if (SERVE_BUILDS.includes(build)) return `serve-${build}`;
  throw new TilelliError('INVALID_ARGUMENT', `init: tilelli/serve has the ${SERVE_BUILDS.join(' and ')} builds, not '${build}': ` +
    "this runtime needs the full entry ('tilelli'), or init({ module }) with a build of your own");
}
/** The builds that have a threaded file (dist/tilelli-<build>-mt.wasm). */
const THREADED = Object.freeze(['relaxed', 'simd']);

// The smallest module that uses a SIMD128 instruction: (func (result v128) i32.const 0 i8x16.splat).
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 8, 1, 6, 0, 65, 0, 253, 15, 11,
]);

/** True when this runtime validates WebAssembly SIMD128. */
export function simdSupported() {
  return WebAssembly.validate(SIMD_PROBE);
}

/**
 * The URL of a shipped wasm build, next to this package's js/ folder.
 * @param {'relaxed' | 'simd' | 'scalar' | 'relaxed-mt' | 'simd-mt' | 'serve-relaxed' | 'serve-simd' | boolean} build
 * a build, the threaded file of one ('-mt') or the serving file of one ('serve-'); true and false
 * (older callers) mean 'simd' and 'scalar'
 */
export function wasmUrl(build) {
  const name = build === true ? 'simd' : build === false ? 'scalar' : build;
  let base = name;
  let known = BUILDS;
  if (typeof name === 'string' && name.endsWith('-mt')) {
    base = name.slice(0, -3);
    known = THREADED;
  } else if (typeof name === 'string' && name.startsWith('serve-')) {
    base = name.slice(6);
    known = SERVE_BUILDS;
  }
  if (!known.includes(base)) {
    throw new TilelliError('INVALID_ARGUMENT', `wasmUrl: build must be one of ${BUILDS.join(', ')}, ${THREADED.map((b) => `${b}-mt`).join(', ')}, ` +
      `${SERVE_BUILDS.map((b) => `serve-${b}`).join(', ')} (or a boolean), got ${String(build)}`);
  }
  return new URL(`../dist/tilelli-${name}.wasm`, import.meta.url);
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

// The { url } of the latest init() that had one: startTraining hands it to its worker, so a
// bundled app that says where the wasm is says it once.
let lastUrl;
export function lastInitUrl() { return lastUrl; }

/**
 * Make the init() of an entry.
 * @param {(module: WebAssembly.Module, options: object) => Promise<object>} instantiate the API
 * to make: js/core.js's (everything) or js/serve-core.js's (the Model class)
 * @param {(build: 'relaxed' | 'simd' | 'scalar' | 'relaxed-mt' | 'simd-mt') => Promise<WebAssembly.Module>} loadBuild
 * the shipped build (or its threaded file), compiled
 * @param {(url: URL) => Promise<WebAssembly.Module>} [loadUrl] how this runtime loads `{ url }`
 * @param {{ threads?: boolean }} [can] threads: false for a runtime that never runs threads (workerd)
 */
export function makeInit(instantiate, loadBuild, loadUrl = compileFetched, can = {}) {
  const cache = new Map(); // build or url -> Promise<WebAssembly.Module>: compile once per process
  let relaxedFailed = false; // the relaxed build failed once here (self-test, missing file): not tried again
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
    const { simd, build, module, bytes, url, maxMemory } = options;
    // threads: how many the caller wants (validated in every runtime), then how many can run here.
    // An entry that never runs threads validates the option without probing the runtime (Node:
    // ~4 ms of a cold start for a shared memory, a MessageChannel and node:os).
    const wantThreads = threadsOption(can.threads === false ? options.threads ?? 1 : options.threads);
    const threads = can.threads === false || threadsUnavailable() ? 1 : wantThreads;
    const load = (b) => (threads > 1 && THREADED.includes(b)
      ? cached(`${b}-mt`, () => loadBuild(`${b}-mt`))
      : cached(b, () => loadBuild(b)));
    const opts = { maxMemory, threads };
    if (simd !== undefined && typeof simd !== 'boolean') {
      throw new TilelliError('INVALID_ARGUMENT', `init: simd must be a boolean, got ${typeof simd}`);
    }
    if (build !== undefined && !BUILDS.includes(build)) {
      throw new TilelliError('INVALID_ARGUMENT', `init: build must be one of ${BUILDS.map((b) => `'${b}'`).join(', ')}, got ${typeof build === 'string' ? `'${build}'` : String(build)}`);
    }
    // simd (the older option) names a build too: true is 'simd' (SIMD128), false is 'scalar'
    const simdBuild = simd === undefined ? undefined : simd ? 'simd' : 'scalar';
    if (build !== undefined && simdBuild !== undefined && build !== simdBuild) {
      throw new TilelliError('INVALID_ARGUMENT', `init: build '${build}' and simd: ${simd} contradict each other (give one)`);
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
      lastUrl = where.href;
    } else {
      const wanted = build ?? simdBuild;
      if (wanted === 'relaxed' && !relaxedSupported()) {
        throw new TilelliError('INVALID_ARGUMENT', "init: build 'relaxed' was asked for, but this runtime has no WebAssembly relaxed SIMD " +
          '(Node 20: run node with --experimental-wasm-relaxed-simd --no-liftoff)');
      }
      if (wanted === 'simd' && !simdSupported()) {
        throw new TilelliError('INVALID_ARGUMENT', `init: ${build ? "build 'simd'" : 'simd: true'} was asked for, but this runtime has no WebAssembly SIMD128`);
      }
      if (wanted) return instantiate(await load(wanted), opts);
      if (relaxedSupported() && !relaxedFailed) {
        // The relaxed build where it compiles and passes its self-test; any failure (a wrong
        // engine, a bundle that left the file out) falls back to SIMD128, and later calls go
        // there directly.
        try {
          return await instantiate(await load('relaxed'), opts);
        } catch {
          relaxedFailed = true;
        }
      }
      const fallback = simdSupported() ? 'simd' : 'scalar';
      mod = await load(fallback);
    }
    return instantiate(mod, opts);
  };
}
