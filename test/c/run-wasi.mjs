// run-wasi.mjs — runs a C test compiled to standalone wasm (emcc -sSTANDALONE_WASM) under Node's
// WASI, so the same C tests check the SIMD128 and scalar wasm builds. Usage: node run-wasi.mjs t.wasm [args]
// Known trap: Node 20 crashed (SIGSEGV creating a catch context as WASI unwound proc_exit) after a
// test had grown its memory to ~40 MB; keep the wasm tests' allocations small.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';

const [file, ...args] = process.argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env: {}, preopens: { '/': '/' }, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
// emcc's standalone output may also import env.emscripten_notify_memory_growth: nothing to do here.
const env = { emscripten_notify_memory_growth() {} };
const instance = await WebAssembly.instantiate(module, { ...wasi.getImportObject(), env });
process.exitCode = wasi.start(instance);
