// instance.js — instantiate a tilelli wasm module: its memory, the relaxed-SIMD self-test, the
// threads, and the part of the API every build has (memoryStats, build, version...). What else
// the API holds is the caller's: js/core.js adds everything (the full builds), js/serve-core.js
// only the Model class (the serving builds, dist/tilelli-serve-*.wasm).

import { TilelliError } from './errors.js';
import { BUILD_FLAGS } from './constants.js';
import { Runtime } from './runtime.js';
import { relaxedSelfTest } from './selftest.js';

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the wasm32 limit
const INITIAL_PAGES = 16; // the module's declared minimum (-sINITIAL_MEMORY=1MB)

/**
 * Instantiate `module` and make its API.
 * @param {WebAssembly.Module} module
 * @param {{ maxMemory?: number, threads?: number }} options
 * @param {(rt: Runtime, build: string, threads: number) => object} createApi
 * @param {Function} [startThreads] js/threads.js's, for the threaded builds (absent: one thread)
 */
export async function instantiateWith(module, options, createApi, startThreads) {
  const maxPages = pagesFor(options.maxMemory);
  // a threaded build imports a shared memory (and its workers share it)
  const threaded = WebAssembly.Module.exports(module).some((e) => e.name === 'tl_threads_worker');
  const memory = new WebAssembly.Memory({ initial: Math.min(INITIAL_PAGES, maxPages), maximum: maxPages, shared: threaded });
  const imports = {
    env: {
      memory,
      // Views are made fresh for every call, so a grown (detached) buffer needs no bookkeeping.
      emscripten_notify_memory_growth() {},
    },
  };
  let instance;
  try {
    instance = await WebAssembly.instantiate(module, imports);
  } catch (e) {
    // a module that is not a tilelli build (other imports): name it instead of a raw LinkError
    throw new TilelliError('INVALID_ARGUMENT', `init: the module is not a tilelli build (${e.message})`);
  }
  if (typeof instance.exports._initialize !== 'function' || typeof instance.exports.tl_version !== 'function') {
    throw new TilelliError('INVALID_ARGUMENT', 'init: the module is not a tilelli build (it exports no tl_version)');
  }
  instance.exports._initialize();
  const build = buildName(instance.exports.tl_build_flags());
  const rt = new Runtime(instance.exports, memory, maxPages);
  if (build === 'relaxed') {
    // Validating is not enough: the engine must also compute the relaxed instructions right.
    const bad = relaxedSelfTest(rt);
    if (bad) {
      throw new TilelliError('INVALID_ARGUMENT', `init: the relaxed-SIMD build failed its self-test in this runtime (${bad}): ` +
        "this engine computes relaxed SIMD wrongly (Node 20: run with --no-liftoff); use init({ build: 'simd' })");
    }
  }
  if (threaded && !startThreads) {
    throw new TilelliError('INVALID_ARGUMENT', 'init: a threaded build was given to an entry that runs no threads (tilelli/serve): give a single-threaded build');
  }
  const threads = threaded && options.threads > 1 ? await startThreads(module, memory, instance.exports, options.threads) : 1;
  return createApi(rt, build, threads);
}

/** 'relaxed', 'simd' or 'scalar', from tl_build_flags(). */
function buildName(flags) {
  if (flags & BUILD_FLAGS.RELAXED_SIMD) return 'relaxed';
  return flags & BUILD_FLAGS.SIMD128 ? 'simd' : 'scalar';
}

function pagesFor(maxMemory) {
  if (maxMemory === undefined) return MAX_PAGES;
  if (typeof maxMemory !== 'number' || !Number.isFinite(maxMemory) || maxMemory < INITIAL_PAGES * PAGE) {
    throw new TilelliError('INVALID_ARGUMENT',
      `init: maxMemory must be a number of bytes >= ${INITIAL_PAGES * PAGE}, got ${maxMemory}`);
  }
  return Math.min(MAX_PAGES, Math.floor(maxMemory / PAGE));
}

/** What the API of every build holds. */
export function baseApi(rt, build, threads) {
  const x = rt.x;
  return {
    /**
     * What the instance holds: liveBytes / liveBlocks allocated by the library (matrices, and
     * nothing else between calls), and wasmBytes, the size of its wasm memory (which never shrinks).
     */
    memoryStats() {
      return {
        liveBytes: x.tl_mem_live_bytes(),
        liveBlocks: x.tl_mem_live_blocks(),
        wasmBytes: rt.memory.buffer.byteLength,
      };
    },
    /** The error class, here too for callers that loaded tilelli through require(). */
    TilelliError,
    /** True when a SIMD build is running (SIMD128, or relaxed SIMD, which includes it). */
    simd: rt.simd,
    /** Which build is running: 'relaxed' (relaxed SIMD), 'simd' (SIMD128) or 'scalar'. */
    build,
    /**
     * How many threads run the products (the calling one included): more than 1 only with a
     * threaded build where shared memory can be used (Node, Deno, crossOriginIsolated pages).
     */
    threads,
    /** Library version, "MAJOR.MINOR.PATCH". */
    version: ((v) => `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`)(x.tl_version()),
  };
}
