// thread-worker.js — a compute thread of a threaded build (js/threads.js starts it): instantiate the
// module over the caller's shared memory, take the stack the core allocated for this thread, say
// so, and enter the core's worker loop (src/threads.c), which never returns. Nothing else runs
// here: the worker never calls the library's API.
import { MSG_THREAD } from './protocol.js';

const isNode = typeof globalThis.process?.versions?.node === 'string' && typeof globalThis.Deno === 'undefined';

async function start({ module, memory, stack }, post) {
  const imports = { env: { memory, emscripten_notify_memory_growth() {} } };
  const instance = await WebAssembly.instantiate(module, imports);
  instance.exports.__stack_pointer.value = stack;
  post({ type: MSG_THREAD.STARTED });
  instance.exports.tl_threads_worker();
}

function handler(post) {
  let started = false;
  return (message) => {
    if (started || message?.type !== MSG_THREAD.START) return;
    started = true;
    start(message, post).catch((e) => { throw e; }); // surfaces as the worker's error event
  };
}

if (isNode) {
  const specifier = 'node:worker_threads';
  const { parentPort } = globalThis.process.getBuiltinModule?.(specifier) ?? await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier);
  if (parentPort) parentPort.on('message', handler((m) => parentPort.postMessage(m)));
} else if (typeof globalThis.postMessage === 'function') {
  globalThis.addEventListener('message', ((h) => (event) => h(event.data))(handler((m) => globalThis.postMessage(m))));
}
