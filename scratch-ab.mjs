import { readFileSync } from 'node:fs';
import { instantiateServe } from './js/serve-core.js';
const files = process.argv.slice(2);
const tls = await Promise.all(files.map(async (f) => instantiateServe(await WebAssembly.compile(readFileSync(f)))));
for (const [name, w, batches] of [['mnist', 784, [1, 16]], ['wide', 1024, [1, 16]]]) {
  const bytes = readFileSync(`build/edge-bench/${name}.i2.tlm`);
  for (const act of ['float', 'int8']) {
    const ms = tls.map((tl) => tl.Model.load(bytes, { activations: act }));
    for (const b of batches) {
      const x = new Float32Array(w * b).map((_, i) => Math.sin(i));
      const reps = name === 'wide' ? (b === 1 ? 20 : 3) : 400;
      const t = files.map(() => []);
      for (let r = 0; r < 15; r++) for (let k = 0; k < ms.length; k++) { const t0 = performance.now(); for (let i = 0; i < reps; i++) ms[k].run(x); t[k].push((performance.now() - t0) / reps); }
      const med = (a) => a.sort((p, q) => p - q)[a.length >> 1];
      console.log(name, act, 'b' + b, t.map((a) => med(a).toFixed(4)).join(' '), 'ratio', (med(t[0]) / med(t[1])).toFixed(2));
    }
  }
}
