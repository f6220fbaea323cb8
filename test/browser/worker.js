// worker.js — the module worker of the browser test's sample app (bundled like page.js, served
// next to it): for each { label, options } the page posts, init(options) then sample(tl); posts
// back { runs, compiled } or { error }. `options.url` is an absolute URL of a copied build.
import { init } from 'tilelli';

import { sample } from '../runtimes/sample.js';

// Only in a worker: Node's `node --test` (no arguments) would import every .js file under test/.
if (typeof WorkerGlobalScope !== 'undefined' && self instanceof WorkerGlobalScope) {
  const compiled = { streaming: 0, buffered: 0 };
  const { compileStreaming, compile } = WebAssembly;
  WebAssembly.compileStreaming = (...args) => { compiled.streaming++; return compileStreaming.apply(WebAssembly, args); };
  WebAssembly.compile = (...args) => { compiled.buffered++; return compile.apply(WebAssembly, args); };

  self.addEventListener('unhandledrejection', (e) => console.error('unhandled rejection in the worker:', e.reason));
  self.onmessage = async ({ data }) => {
    try {
      const runs = [];
      for (const { label, options } of data.runs) {
        const tl = await init(options);
        runs.push({ label, build: tl.build, simd: tl.simd, result: sample(tl) });
      }
      self.postMessage({ runs, compiled });
    } catch (e) {
      self.postMessage({ error: `${e.name}: ${e.message}\n${e.stack}` });
    }
  };
}
