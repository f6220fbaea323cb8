// thread-worker.js — a compute thread of a threaded build (js/threads.js starts it): instantiate the
// module over the caller's shared memory, take the stack the core allocated for this thread, say
// so, and enter the core's worker loop (src/threads.c), which never returns. Nothing else runs
// here: the worker never calls the library's API.
//
// It imports nothing, so that a runtime which checks every module a worker loads (Deno's
// --allow-read) needs to allow this one file. The protocol's names (MSG_THREAD in js/protocol.js)
// arrive in the START message itself: { type, started, module, memory, stack }, answered with
// { type: started }.

// Node and Deno start this file as a node:worker_threads Worker (js/threads.js), browsers as a module Worker.
const nodeLike = typeof globalThis.process?.versions?.node === 'string' || typeof globalThis.Deno?.version?.deno === 'string';

async function start({ started, module, memory, stack }, post) {
  const imports = { env: { memory, emscripten_notify_memory_growth() {} } };
  const instance = await WebAssembly.instantiate(module, imports);
  instance.exports.__stack_pointer.value = stack;
  post({ type: started });
  instance.exports.tl_threads_worker();
}

function handler(post) {
  let running = false;
  return (message) => {
    if (running || typeof message?.started !== 'string') return;
    running = true;
    start(message, post).catch((e) => { throw e; }); // surfaces as the worker's error event
  };
}

const specifier = 'node:worker_threads';
const parentPort = nodeLike
  ? (globalThis.process?.getBuiltinModule?.(specifier) ?? await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier)).parentPort
  : undefined;
if (parentPort) {
  parentPort.on('message', handler((m) => parentPort.postMessage(m)));
} else if (typeof globalThis.postMessage === 'function') {
  globalThis.addEventListener('message', ((h) => (event) => h(event.data))(handler((m) => globalThis.postMessage(m))));
}
