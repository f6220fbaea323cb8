// deno.test.js — the sample in Deno, through the package's `deno` entry (js/deno.js, which reads
// the shipped builds with Deno.readFile). A script in a temp dir imports 'tilelli' through an
// import map to the entry package.json names for the deno condition, runs the sample on each
// build and prints JSON, which is compared with Node's. Deno comes from node_modules (the pinned
// npm package) and downloads nothing: no npm: or jsr: or remote specifiers, --no-remote --no-npm
// --cached-only, no config or package.json discovery, no update check, a fresh DENO_DIR, and no
// permission but reading dist/.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { availableParallelism } from 'node:os';

import { init } from 'tilelli';

import { sample } from './sample.js';
import { threadsSample } from '../browser/threads-sample.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const denoBin = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'deno.cmd' : 'deno');

const SCRIPT = `import { init } from 'tilelli';
import { sample } from 'tilelli-test/sample.js';
import { threadsSample } from 'tilelli-test-browser/threads-sample.js';

const out = {};
for (const [build, options] of [['relaxed', { build: 'relaxed' }], ['simd', { simd: true }], ['scalar', { simd: false }], ['default', {}]]) {
  const tl = await init(options);
  out[build] = { build: tl.build, simd: tl.simd, threads: tl.threads, sample: sample(tl) };
  if (build === 'default') out.split = threadsSample(tl); // products big enough to be split over the threads
}
let denied;
try {
  await Deno.readTextFile(new URL('../package.json', import.meta.resolve('tilelli')));
} catch (e) {
  denied = e.name;
}
out.runtime = { deno: Deno.version.deno, readOutsideDist: denied ?? 'allowed' };
console.log(JSON.stringify(out));
`;

function run(file, args, options) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 60_000, maxBuffer: 16 << 20, ...options }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { message: `${error.message}\n${stdout}\n${stderr}` }));
      else resolve({ stdout, stderr });
    });
  });
}

test('Deno runs the sample through the deno entry with the same numbers as Node, on every build (relaxed by default)', async (t) => {
  const expected = JSON.parse(JSON.stringify(sample(await init()))); // what JSON output can carry
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
  const entry = pkg.exports['.'].deno;
  assert.equal(entry, './js/deno.js');

  const dir = await mkdtemp(join(tmpdir(), 'tilelli-deno-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'main.js'), SCRIPT);
  await writeFile(join(dir, 'import_map.json'), JSON.stringify({
    imports: {
      tilelli: pathToFileURL(join(root, entry)).href,
      'tilelli-test/': pathToFileURL(join(root, 'test', 'runtimes')).href + '/',
      'tilelli-test-browser/': pathToFileURL(join(root, 'test', 'browser')).href + '/',
    },
  }, null, 2));

  const started = performance.now();
  const { stdout, stderr } = await run(denoBin, [
    'run', '--quiet', '--no-config', '--no-lock', '--no-remote', '--no-npm', '--cached-only', '--no-prompt',
    '--import-map=import_map.json', `--allow-read=${join(root, 'dist')},${join(root, 'js', 'thread-worker.js')}`, 'main.js',
  ], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      DENO_DIR: join(dir, 'deno-dir'),
      DENO_NO_UPDATE_CHECK: '1',
      DENO_NO_PACKAGE_JSON: '1',
      NO_COLOR: '1',
    },
  });
  t.diagnostic(`deno run: ${(performance.now() - started).toFixed(0)} ms`);
  const out = JSON.parse(stdout);
  t.diagnostic(`Deno ${out.runtime.deno}${stderr.trim() ? `; stderr: ${stderr.trim()}` : ''}`);
  assert.equal(out.runtime.readOutsideDist, 'NotCapable', 'Deno may read dist/ only');
  for (const build of ['relaxed', 'simd', 'scalar', 'default']) assert.deepEqual(out[build].sample, expected, `${build} build`);
  assert.equal(out.default.build, 'relaxed', 'Deno runs relaxed SIMD: init() picks that build');
  // Deno runs threads (workers over a shared memory): min(4, cores) by default, the same bits
  assert.equal(out.default.threads, Math.min(4, availableParallelism()));
  assert.ok(out.default.threads > 1 || availableParallelism() === 1);
  assert.deepEqual(out.split, threadsSample(await init({ build: 'scalar' })), 'split products give the scalar build\'s bits');
  assert.deepEqual([out.relaxed.build, out.simd.build, out.scalar.build], ['relaxed', 'simd', 'scalar']);
  assert.equal(out.simd.simd, true);
  assert.equal(out.scalar.simd, false);
});
