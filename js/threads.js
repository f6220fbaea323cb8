// threads.js — the workers of a threaded build (dist/tilelli-*-mt.wasm): can this runtime run
// them, how many by default, and starting them once per instance.
//
// The C core owns the parallel-for (src/threads.c): each worker instantiates the same module over
// the instance's shared memory, takes a stack the core allocated (the __stack_pointer export) and
// enters tl_threads_worker, which sleeps until a product posts tasks. JS only starts the workers
// and tells the core how many run (tl_threads_set). Calls stay synchronous on the calling thread.
//
// Shared memory needs: SharedArrayBuffer, a page that is crossOriginIsolated (COOP same-origin +
// COEP require-corp) where the runtime has that notion, a shared WebAssembly.Memory that can be
// posted to another thread, and a way to start workers (web Worker, Node worker_threads).
// Elsewhere (workerd, a page that is not isolated) the core runs on one thread, with the same
// results. Nothing here names a 'node:' module literally, so that browser bundlers accept it.

import { TilelliError } from './errors.js';
import { MSG_THREAD } from './protocol.js';

const isNode = typeof globalThis.process?.versions?.node === 'string' && typeof globalThis.Deno === 'undefined';
// Deno starts the workers through its node:worker_threads too: a web Worker that is alive keeps a
// Deno process from ending, an unref()'d worker_threads Worker does not.
const isDeno = typeof globalThis.Deno?.version?.deno === 'string';

/** Bytes of stack per worker (kernel slices need little: a few KiB of locals). */
const STACK_BYTES = 256 * 1024;
/** A worker that has not reached its loop by then is given up on (the others are used). */
const START_TIMEOUT_MS = 20000;

function nodeWorkerThreads() {
  if (typeof globalThis.process?.getBuiltinModule === 'function') return process.getBuiltinModule('node:worker_threads');
  const specifier = 'node:worker_threads';
  return import(/* webpackIgnore: true */ /* @vite-ignore */ specifier);
}

let unavailable; // threadsUnavailable()'s answer, probed once: it makes a shared memory and a channel

/** Why this runtime cannot run threads, or undefined when it can (probed once per process). */
export function threadsUnavailable() {
  if (unavailable === undefined) unavailable = probeThreads() ?? '';
  return unavailable || undefined;
}

function probeThreads() {
  if (typeof SharedArrayBuffer !== 'function') return 'no SharedArrayBuffer';
  if (globalThis.crossOriginIsolated === false) return 'the page is not crossOriginIsolated (send COOP same-origin and COEP require-corp)';
  if (!isNode && !isDeno && typeof globalThis.Worker !== 'function') return 'no Worker';
  try {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    if (!(memory.buffer instanceof SharedArrayBuffer)) return 'no shared WebAssembly.Memory';
    const { port1, port2 } = new MessageChannel();
    try {
      port1.postMessage(memory); // a DataCloneError where shared memory may not leave the thread
    } finally {
      port1.close();
      port2.close();
    }
  } catch (e) {
    return `a shared WebAssembly.Memory cannot be posted (${e.message})`;
  }
  return undefined;
}

/** Logical processors, or 1 when the runtime does not say. */
function cores() {
  if (isNode) {
    const os = globalThis.process.getBuiltinModule?.('node:os');
    if (os) return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  }
  const n = globalThis.navigator?.hardwareConcurrency;
  return Number.isSafeInteger(n) && n > 0 ? n : 1;
}

/** init()'s default: min(4, cores) where threads can run, else 1. */
export function defaultThreads() {
  return threadsUnavailable() ? 1 : Math.max(1, Math.min(4, cores()));
}

/** The threads option: a positive integer (at most 64, the core's limit), or the default. */
export function threadsOption(threads) {
  if (threads === undefined) return defaultThreads();
  if (!Number.isSafeInteger(threads) || threads < 1 || threads > 64) {
    throw new TilelliError('INVALID_ARGUMENT', `init: threads must be an integer from 1 to 64, got ${typeof threads === 'number' ? threads : typeof threads}`);
  }
  return threads;
}

async function spawn() {
  // the literal form that bundlers which understand workers (webpack 5, Vite, Parcel) recognize
  if (!isNode && !isDeno) return new Worker(new URL('./thread-worker.js', import.meta.url), { type: 'module', name: 'tilelli-thread' });
  const url = new URL('./thread-worker.js', import.meta.url);
  const wt = await nodeWorkerThreads();
  // no execArgv: the caller's (e.g. `node -e script`) would run again in the worker; V8 flags are
  // process-wide, so the worker compiles what the caller compiles
  const w = new wt.Worker(url, { execArgv: [] });
  w.unref(); // a sleeping worker does not keep the process alive
  return w;
}

/** Listen for type on a Node or web worker; returns the function that stops listening. */
function on(worker, type, fn) {
  if (typeof worker.on === 'function') {
    worker.on(type, fn);
    return () => worker.off(type, fn); // a Node worker with a 'message' listener keeps the process alive
  }
  const listener = type === 'message' ? (e) => fn(e.data) : fn;
  worker.addEventListener(type, listener);
  return () => worker.removeEventListener(type, listener);
}

/**
 * Start n - 1 workers over the instance (module, memory, exports: the calling thread is the n-th)
 * and tell the core how many threads run. Resolves to that number, which is smaller when workers
 * could not start (out of memory for a stack, a worker that failed to load): never an error.
 */
export async function startThreads(module, memory, exports, n) {
  const started = [];
  for (let id = 1; id < n; id++) {
    const stack = exports.tl_threads_stack(STACK_BYTES) >>> 0;
    if (!stack) break;
    started.push(spawn().then((worker) => new Promise((resolve) => {
      const offs = [];
      const done = (ok) => {
        clearTimeout(timer);
        for (const off of offs) off();
        if (!ok) worker.terminate();
        resolve(ok ? worker : null);
      };
      const timer = setTimeout(() => done(false), START_TIMEOUT_MS);
      offs.push(on(worker, 'message', (m) => { if (m?.type === MSG_THREAD.STARTED) done(true); }),
        on(worker, 'error', (e) => {
          e?.preventDefault?.(); // Deno and browsers: handled here (Deno would end the process)
          done(false);
        }));
      worker.postMessage({ type: MSG_THREAD.START, started: MSG_THREAD.STARTED, module, memory, stack });
    })).catch(() => null));
  }
  const workers = (await Promise.all(started)).filter(Boolean);
  // A worker posts STARTED just before it enters its loop; the core counts those that are in it.
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (exports.tl_threads_ready() < workers.length && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return exports.tl_threads_set(Math.min(n, workers.length + 1));
}
