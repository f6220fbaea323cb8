// page.js — the sample app of the browser test, bundled by esbuild with the package's "browser"
// entry (test/runtimes/browser.test.js builds it into <site>/app/page.js next to worker.js and
// copies of dist/*.wasm). It runs sample(tl) on the main thread and in a module worker, renders
// a summary as text, and exposes every result on window.tilelliReport for the test.
//
// How it finds the wasm: a bundle is one file, so the package's own
// `new URL('../dist/tilelli-*.wasm', import.meta.url)` now resolves against the bundle's URL
// (../dist/ from wherever the bundle is served), not into the package. The robust way for an app
// is to ship the .wasm files itself and say where they are, init({ url }), as the 'simd' and
// 'scalar' runs do with the copies next to the bundle. The 'default' run calls init() without
// options, to check that esbuild left that import.meta.url alone (the test serves a second copy
// at <site>/dist/, where it then points).
import { init, relaxedSupported, simdSupported } from 'tilelli';

import { sample } from '../runtimes/sample.js';

/** A copy of dist/tilelli-<build>.wasm next to this bundle. */
const wasm = (build) => new URL(`./tilelli-${build}.wasm`, import.meta.url).href;

/** Wrap WebAssembly.compileStreaming / compile to count how the loader compiles: with the server's
 * application/wasm every fetched build must stream. */
function countCompiles() {
  const counts = { streaming: 0, buffered: 0 };
  const { compileStreaming, compile } = WebAssembly;
  WebAssembly.compileStreaming = (...args) => { counts.streaming++; return compileStreaming.apply(WebAssembly, args); };
  WebAssembly.compile = (...args) => { counts.buffered++; return compile.apply(WebAssembly, args); };
  return counts;
}

/** Runs `runs` ([{ label, options }]) in a new module worker: { runs, compiled }. */
function inWorker(runs) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    const done = (fn, value) => { worker.terminate(); fn(value); };
    worker.onmessage = ({ data }) => (data.error ? done(reject, new Error(`worker: ${data.error}`)) : done(resolve, data));
    worker.onerror = (e) => done(reject, new Error(`worker error: ${e.message || 'the worker failed to load'}`));
    worker.onmessageerror = () => done(reject, new Error('worker: a message could not be deserialized'));
    worker.postMessage({ runs });
  });
}

function show(text) {
  document.getElementById('out').textContent += `${text}\n`;
}

function summary(where, run) {
  const r = run.result;
  return [
    `${where.padEnd(12)} ${run.label.padEnd(8)} tl.build=${run.build.padEnd(7)} tl.simd=${String(run.simd).padEnd(5)} version=${r.version}`,
    `    alpha=${r.alpha}  fracZero=${r.stats.fracZero}  signsChecksum=${r.signsChecksum}  lsq[0..2]=${r.lsq.slice(0, 2).join(', ')}`,
    `    i2.int8[0..4]=${r.products.i2.int8.slice(0, 4).join(', ')}  tq1.bytes=${r.products.tq1.bytes}  error=${r.error?.code}`,
  ].join('\n');
}

async function main() {
  addEventListener('unhandledrejection', (e) => console.error('unhandled rejection:', e.reason));
  const compiled = countCompiles();
  show(`userAgent: ${navigator.userAgent}\nsimdSupported(): ${simdSupported()}  relaxedSupported(): ${relaxedSupported()}\n`);

  const main = [];
  for (const [label, options] of [
    ['default', undefined],
    ['relaxed', { url: wasm('relaxed') }],
    ['simd', { url: wasm('simd') }],
    ['scalar', { simd: false, url: wasm('scalar') }],
  ]) {
    const tl = await init(options);
    const run = { label, build: tl.build, simd: tl.simd, result: sample(tl) };
    main.push(run);
    show(summary('main thread', run));
  }

  const worker = await inWorker([
    { label: 'relaxed', options: { url: wasm('relaxed') } },
    { label: 'simd', options: { url: wasm('simd') } },
    { label: 'scalar', options: { simd: false, url: wasm('scalar') } },
  ]);
  for (const run of worker.runs) show(summary('worker', run));

  return { main, worker: worker.runs, compiled: { main: { ...compiled }, worker: worker.compiled } };
}

// Only in a page: Node's `node --test` (no arguments) would import every .js file under test/.
// window.tilelli is the promise; window.tilelliReport its value once settled (what the test polls,
// with a timeout, rather than awaiting a promise that might never settle).
if (typeof document !== 'undefined') {
  window.tilelli = main().then(
    (report) => {
      document.getElementById('status').textContent = 'done';
      return { ok: true, ...report };
    },
    (e) => {
      document.getElementById('status').textContent = 'failed';
      show(`FAILED: ${e.name}: ${e.message}\n${e.stack}`);
      return { ok: false, error: `${e.name}: ${e.message}\n${e.stack}` };
    },
  ).then((report) => {
    window.tilelliReport = report;
    return report;
  });
}
