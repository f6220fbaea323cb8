// workerd-lm.test.js — the language model in workerd (the Cloudflare Workers runtime), through the
// package's `workerd` condition: test/workerd/lm-worker.js runs lmSample (the packed character
// model's greedy and seeded tokens and logits, a PyTorch golden's greedy ids) on the default and
// scalar builds and must give Node's result value for value. The model files are modules of
// test/workerd/lm-config.capnp; esbuild keeps them and the wasm builds as imports.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';
import { init } from 'tilelli';

import { GOLDEN_CASE, lmSample } from './lm-sample.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const workerdBin = join(root, 'node_modules', '.bin', 'workerd');
const fixtures = join(root, 'test', 'fixtures', 'lm');
const MODULES = /\.(wasm|safetensors|json)$/;

test('workerd: the language model gives Node\'s tokens and logits on the default and scalar builds', { timeout: 60_000 }, async (t) => {
  const read = (name, file) => readFile(join(fixtures, name, file));
  const expected = {};
  let files;
  for (const build of ['simd', 'scalar']) {
    const tl = await init({ build });
    if (!files) {
      const lm = tl.LanguageModel.load({ config: await read('charlm', 'config.json'), weights: await read('charlm', 'model.safetensors') });
      files = {
        charlm: { weights: lm.save(), tokenizer: (await read('charlm', 'tokenizer.json')).toString() },
        golden: { config: (await read(GOLDEN_CASE, 'config.json')).toString(), weights: await read(GOLDEN_CASE, 'model.safetensors'), golden: JSON.parse(await read(GOLDEN_CASE, 'golden.json')) },
      };
      lm.free();
    }
    expected[build] = JSON.parse(JSON.stringify(await lmSample((f) => tl.LanguageModel.load(f), files)));
  }
  const dir = await mkdtemp(join(tmpdir(), 'tilelli-workerd-lm-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await copyFile(join(root, 'test', 'workerd', 'lm-config.capnp'), join(dir, 'config.capnp'));
  for (const b of ['relaxed', 'simd', 'scalar']) await copyFile(join(root, 'dist', `tilelli-${b}.wasm`), join(dir, `tilelli-${b}.wasm`));
  await writeFile(join(dir, 'charlm.safetensors'), files.charlm.weights);
  await copyFile(join(fixtures, 'charlm', 'tokenizer.json'), join(dir, 'tokenizer.json'));
  await copyFile(join(fixtures, GOLDEN_CASE, 'config.json'), join(dir, 'golden-config.json'));
  await copyFile(join(fixtures, GOLDEN_CASE, 'model.safetensors'), join(dir, 'golden-model.safetensors'));
  await copyFile(join(fixtures, GOLDEN_CASE, 'golden.json'), join(dir, 'golden.json'));
  const bundle = (want) => esbuild.build({
    absWorkingDir: root, entryPoints: [join(root, 'test', 'workerd', 'lm-worker.js')], outfile: join(dir, 'worker.bundle.js'),
    bundle: true, format: 'esm', platform: 'neutral', conditions: ['workerd', 'worker', 'browser'], metafile: true, logLevel: 'silent',
    define: { __TILELLI_LM_EXPECTED__: JSON.stringify(JSON.stringify(want)) },
    plugins: [{ name: 'modules', setup(build) { build.onResolve({ filter: MODULES }, (args) => ({ path: `./${basename(args.path)}`, external: true })); } }],
  });
  const workerdTest = () => new Promise((resolve, reject) => {
    execFile(workerdBin, ['test', 'config.capnp'], { cwd: dir, timeout: 60_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') reject(error);
      else resolve({ code: error ? error.code : 0, output: stdout + stderr });
    });
  });
  const result = await bundle(expected);
  assert.ok(Object.keys(result.metafile.inputs).includes('js/workerd.js'), 'the bundle uses the workerd entry');
  const started = performance.now();
  const run = await workerdTest();
  assert.equal(run.code, 0, `workerd test failed:\n${run.output}`);
  const line = run.output.split('\n').find((l) => l.includes('TILELLI_WORKERD_LM '));
  assert.ok(line, `the worker printed its result:\n${run.output}`);
  const r = JSON.parse(line.slice(line.indexOf('TILELLI_WORKERD_LM ') + 19));
  assert.equal(r.default.running, 'relaxed');
  assert.equal(r.scalar.running, 'scalar');
  assert.deepEqual(r.default.golden, files.golden.golden.greedy);
  t.diagnostic(`workerd test: ${(performance.now() - started).toFixed(0)} ms; greedy ${JSON.stringify(r.default.greedyText)}`);
  // the worker's check bites: one other token id in the expectation fails `workerd test`
  const wrong = structuredClone(expected);
  wrong.simd.charlm.sampled[3] += 1;
  await bundle(wrong);
  const bad = await workerdTest();
  assert.notEqual(bad.code, 0, 'workerd test passes with a wrong expectation');
  assert.match(bad.output, /differs from Node: \$\.charlm\.sampled\.3/);
});
