// deno-lm.test.js — the language model in Deno, through the package's `deno` entry: lmSample
// (the packed character model's greedy and seeded tokens and logits, a PyTorch golden's greedy
// ids) on the main thread and in a Deno worker (loadLanguageModel), compared with Node's value for
// value. Deno runs as in deno.test.js: from node_modules, nothing downloaded, a fresh DENO_DIR,
// and no permission but reading dist/, js/ (the worker's modules), the fixtures and the temp dir.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { init } from 'tilelli';

import { GOLDEN_CASE, lmSample } from './lm-sample.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const denoBin = join(root, 'node_modules', '.bin', 'deno');
const fixtures = join(root, 'test', 'fixtures', 'lm');

const SCRIPT = `import { init, loadLanguageModel } from 'tilelli';
import { GOLDEN_CASE, lmSample } from 'tilelli-test/lm-sample.js';

const fixtures = Deno.args[0];
const files = {
  charlm: { weights: await Deno.readFile('packed.safetensors'), tokenizer: await Deno.readFile(fixtures + '/charlm/tokenizer.json') },
  golden: {
    config: await Deno.readFile(fixtures + '/' + GOLDEN_CASE + '/config.json'), weights: await Deno.readFile(fixtures + '/' + GOLDEN_CASE + '/model.safetensors'),
    golden: JSON.parse(await Deno.readTextFile(fixtures + '/' + GOLDEN_CASE + '/golden.json')),
  },
};
const tl = await init();
const out = { build: tl.build, main: await lmSample((f) => tl.LanguageModel.load(f), files) };
out.worker = await lmSample((f) => loadLanguageModel(f), files);
console.log(JSON.stringify(out));
`;

test('Deno: the language model on the main thread and in a Deno worker writes Node\'s tokens and logits', { timeout: 60_000 }, async (t) => {
  const tl = await init({ build: 'simd' });
  const read = (name, file) => readFile(join(fixtures, name, file));
  const lm = tl.LanguageModel.load({ config: await read('charlm', 'config.json'), weights: await read('charlm', 'model.safetensors') });
  const packed = lm.save();
  lm.free();
  const files = {
    charlm: { weights: packed, tokenizer: await read('charlm', 'tokenizer.json') },
    golden: { config: await read(GOLDEN_CASE, 'config.json'), weights: await read(GOLDEN_CASE, 'model.safetensors'), golden: JSON.parse(await read(GOLDEN_CASE, 'golden.json')) },
  };
  const expected = JSON.parse(JSON.stringify(await lmSample((f) => tl.LanguageModel.load(f), files)));

  const dir = await mkdtemp(join(tmpdir(), 'tilelli-deno-lm-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'main.js'), SCRIPT);
  await writeFile(join(dir, 'packed.safetensors'), packed);
  await writeFile(join(dir, 'import_map.json'), JSON.stringify({
    imports: { tilelli: pathToFileURL(join(root, 'js', 'deno.js')).href, 'tilelli-test/': `${pathToFileURL(join(root, 'test', 'runtimes')).href}/` },
  }));
  const started = performance.now();
  const { stdout } = await new Promise((resolve, reject) => {
    execFile(denoBin, [
      'run', '--quiet', '--no-config', '--no-lock', '--no-remote', '--no-npm', '--cached-only', '--no-prompt',
      '--import-map=import_map.json', `--allow-read=${join(root, 'dist')},${join(root, 'js')},${fixtures},${dir}`, 'main.js', fixtures,
    ], {
      cwd: dir, timeout: 60_000, maxBuffer: 16 << 20,
      env: { PATH: process.env.PATH, HOME: dir, DENO_DIR: join(dir, 'deno-dir'), DENO_NO_UPDATE_CHECK: '1', DENO_NO_PACKAGE_JSON: '1', NO_COLOR: '1' },
    }, (error, out, err) => (error ? reject(Object.assign(error, { message: `${error.message}\n${out}\n${err}` })) : resolve({ stdout: out })));
  });
  const out = JSON.parse(stdout);
  t.diagnostic(`deno run: ${(performance.now() - started).toFixed(0)} ms, build ${out.build}`);
  assert.equal(out.build, 'relaxed');
  assert.deepEqual(out.main, expected, 'main thread: Node\'s tokens and logits');
  assert.deepEqual(out.worker, expected, 'in a Deno worker: Node\'s');
  assert.deepEqual(out.main.golden.greedy, files.golden.golden.greedy, 'the golden\'s greedy ids');
});
