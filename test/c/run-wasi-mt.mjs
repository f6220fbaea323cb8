// run-wasi-mt.mjs — runs a C test compiled as a threaded build (clang-19 -matomics, a shared imported
// memory, the worker exports of src/threads.c) under Node's WASI with `threads` threads: the workers
// instantiate the module over the same memory (WASI calls are refused there: workers only run kernel
// slices), take a stack the core allocated, and enter the core's worker loop; the test's main then
// runs with tl_threads_set(threads). Usage: node run-wasi-mt.mjs threads t.wasm [args]
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { WASI } from 'node:wasi';

const [threadsArg, file, ...args] = process.argv.slice(2);
const threads = Number(threadsArg);
const module = await WebAssembly.compile(await readFile(file));
const memoryImport = WebAssembly.Module.imports(module).find((i) => i.kind === 'memory');
if (!memoryImport) throw new Error(`${file} imports no memory: not a threaded build`);
// The linker's minimum is enough to start: the memory grows from there.
const memory = new WebAssembly.Memory({ initial: 256, maximum: 65536, shared: true });
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env: {}, preopens: { '/': '/' }, returnOnExit: true });
const instance = await WebAssembly.instantiate(module, { ...wasi.getImportObject(), env: { memory } });

const worker = `
const { parentPort, workerData: { module, memory, stack } } = require('node:worker_threads');
const imports = { env: { memory } };
for (const i of WebAssembly.Module.imports(module)) {
  if (i.kind !== 'function') continue;
  imports[i.module] ??= {};
  imports[i.module][i.name] = () => { throw new Error(i.name + ' called on a worker thread'); };
}
const instance = new WebAssembly.Instance(module, imports);
instance.exports.__stack_pointer.value = stack;
parentPort.postMessage('started');
instance.exports.tl_threads_worker();
`;
const workers = [];
for (let i = 1; i < threads; i++) {
  const stack = instance.exports.tl_threads_stack(256 * 1024) >>> 0;
  const w = new Worker(worker, { eval: true, workerData: { module, memory, stack } });
  workers.push(new Promise((resolve, reject) => {
    w.once('message', () => { w.unref(); resolve(); }); // unref'd once in its loop: the test's end ends the process
    w.once('error', reject);
  }));
}
await Promise.all(workers);
while (instance.exports.tl_threads_ready() < threads - 1) await new Promise((r) => setTimeout(r, 1));
const n = instance.exports.tl_threads_set(threads);
if (n !== threads) throw new Error(`tl_threads_set(${threads}) gave ${n}`);
// Node's WASI reads the memory from the exports: an imported one is given beside _start
process.exitCode = wasi.start({ exports: { memory, _start: instance.exports._start } });
