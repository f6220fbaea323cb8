// workerd.test.js — the sample in workerd (the Cloudflare Workers runtime), through the package's
// `workerd` export condition. test/workerd/worker.js imports 'tilelli' by name; esbuild bundles it
// as wrangler would (conditions workerd, worker, browser; ESM) but keeps the two .wasm imports as
// module imports, which test/workerd/config.capnp declares as wasm modules: workerd compiles no
// wasm from bytes. `workerd test` then runs the worker's test() handler, which requests its own
// fetch handler for each build and compares the JSON with the Node result embedded at build time.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';
import { init } from 'tilelli';

import { sample } from './sample.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const workerdBin = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'workerd.cmd' : 'workerd');
const WASM = ['tilelli-relaxed.wasm', 'tilelli-simd.wasm', 'tilelli-scalar.wasm'];

/** Bundle the worker into dir/worker.bundle.js with `expected` embedded; returns its external imports. */
async function bundle(dir, expected) {
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: [join(root, 'test', 'workerd', 'worker.js')],
    outfile: join(dir, 'worker.bundle.js'),
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    define: { __TILELLI_EXPECTED__: JSON.stringify(JSON.stringify(expected)) },
    metafile: true,
    logLevel: 'silent',
    plugins: [{
      // js/workerd.js imports '../dist/tilelli-*.wasm': keep those as imports of modules named
      // as in config.capnp, next to the bundle.
      name: 'wasm-modules',
      setup(build) {
        build.onResolve({ filter: /\.wasm$/ }, (args) => ({ path: `./${basename(args.path)}`, external: true }));
      },
    }],
  });
  const [output] = Object.values(result.metafile.outputs);
  return { inputs: Object.keys(result.metafile.inputs), imports: output.imports.map((i) => i.path).sort() };
}

/** Run `workerd test config.capnp` in dir: { code, stdout, stderr }. */
function workerdTest(dir) {
  return new Promise((resolve, reject) => {
    execFile(workerdBin, ['test', 'config.capnp'], { cwd: dir, timeout: 60_000, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') reject(error); // spawn failure or timeout
        else resolve({ code: error ? error.code : 0, stdout, stderr });
      });
  });
}

test('a worker importing tilelli answers a request with the same sample as Node, on every build (relaxed by default)', async (t) => {
  const node = sample(await init());
  const expected = JSON.parse(JSON.stringify(node)); // what a JSON response can carry
  const dir = await mkdtemp(join(tmpdir(), 'tilelli-workerd-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await copyFile(join(root, 'test', 'workerd', 'config.capnp'), join(dir, 'config.capnp'));
  for (const name of WASM) await copyFile(join(root, 'dist', name), join(dir, name));

  const { inputs, imports } = await bundle(dir, expected);
  assert.ok(inputs.includes('js/workerd.js'), `the bundle uses the workerd entry: ${inputs.join(', ')}`);
  assert.deepEqual(imports, ['./tilelli-relaxed.wasm', './tilelli-scalar.wasm', './tilelli-simd.wasm']);

  const started = performance.now();
  const run = await workerdTest(dir);
  const output = run.stdout + run.stderr;
  assert.equal(run.code, 0, `workerd test failed:\n${output}`);
  assert.match(output, /\[ PASS \] main/);
  const line = output.split('\n').find((l) => l.includes('TILELLI_WORKERD_RESULT '));
  assert.ok(line, `the worker printed its result:\n${output}`);
  const results = JSON.parse(line.slice(line.indexOf('TILELLI_WORKERD_RESULT ') + 23));
  const scalarByName = results.scalarByName;
  delete results.scalarByName;
  assert.match(scalarByName, /bundles the relaxed and SIMD128 builds.*init\(\{ module: m \}\)/, 'init({ build: \'scalar\' }) says how to pass the scalar build');
  assert.deepEqual(Object.keys(results).sort(), ['default', 'relaxed', 'scalar', 'simd']);
  for (const [build, body] of Object.entries(results)) assert.deepEqual(body.sample, expected, `${build} build`);
  assert.equal(results.default.running, 'relaxed', 'workerd runs relaxed SIMD: init() picks that build');
  assert.equal(results.relaxed.running, 'relaxed');
  for (const [build, body] of Object.entries(results)) assert.equal(body.threads, 1, `workerd runs one thread (${build})`);
  assert.equal(results.simd.simd, true);
  assert.equal(results.scalar.simd, false);
  t.diagnostic(`workerd test: ${(performance.now() - started).toFixed(0)} ms`);

  // The worker's own check bites: a wrong expectation makes `workerd test` fail, naming the value.
  const wrong = structuredClone(expected);
  wrong.stats.fracBoundary += 1e-12; // a last-digit difference
  await bundle(dir, wrong);
  const bad = await workerdTest(dir);
  assert.notEqual(bad.code, 0, 'workerd test passes with a wrong expectation');
  assert.match(bad.stdout + bad.stderr, /differs from Node: \$\.stats\.fracBoundary/);
});
