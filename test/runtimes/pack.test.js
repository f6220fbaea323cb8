// pack.test.js — the package as users get it: `npm pack` the repo, check what the tarball holds,
// install it offline into a fresh project outside the repo, and run the sample there from an ES
// module (import, the node entry) and from CommonJS (require, js/index.cjs). Both must give
// Node's numbers. Prints the gzipped sizes (level 9) of the JS and of each wasm build.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { init } from 'tilelli';

import { sample } from './sample.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const sampleSource = fileURLToPath(new URL('./sample.js', import.meta.url));

// npm and node inherit no npm_* variables (npm test sets some, naming this repo as the prefix).
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));

function run(file, args, options) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 120_000, maxBuffer: 16 << 20, env, shell: process.platform === 'win32', ...options },
      (error, stdout, stderr) => {
        if (error) reject(Object.assign(error, { message: `${error.message}\n${stdout}\n${stderr}` }));
        else resolve({ stdout, stderr });
      });
  });
}

async function listFiles(dir, base = dir) {
  const out = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...await listFiles(p, base));
    else out.push(relative(base, p).split(sep).join('/'));
  }
  return out.sort();
}

/** Every file path the package.json exports map (and main, module, types) points to. */
function exportedFiles(pkg) {
  const targets = [];
  const walk = (v) => {
    if (typeof v === 'string') targets.push(v.replace(/^\.\//, ''));
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(pkg.exports);
  walk([pkg.main, pkg.module, pkg.types]);
  return [...new Set(targets)];
}

const ESM = `import { init } from 'tilelli';
import { sample } from './sample.mjs';

const tl = await init();
console.log(JSON.stringify({ resolved: import.meta.resolve('tilelli'), simd: tl.simd, sample: sample(tl) }));
`;

const SERVE = `import { init as initFull } from 'tilelli';
import { init } from 'tilelli/serve';

const full = await initFull({ threads: 1 });
const w = new Float32Array(24 * 40).map((_, i) => Math.sin(i * 1.3));
const m = full.PackedMatrix.fromWeights(w, [24, 40]);
const bytes = full.packModel({ input: 40, layers: [{ type: 'linear', matrix: m }, { type: 'relu' }] });
const tl = await init();
const x = new Float32Array(3 * 40).map((_, i) => Math.cos(i));
const a = new Uint32Array(tl.Model.load(bytes).run(x).buffer), b = new Uint32Array(full.Model.load(bytes).run(x).buffer);
console.log(JSON.stringify({ resolved: import.meta.resolve('tilelli/serve'), keys: Object.keys(tl).sort(), same: a.every((v, i) => v === b[i]) }));
`;

const CJS = `'use strict';
const tilelli = require('tilelli');

(async () => {
  const { sample } = await import('./sample.mjs');
  const tl = await tilelli.init();
  console.log(JSON.stringify({ resolved: require.resolve('tilelli'), simd: tl.simd, sample: sample(tl) }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

test('the packed tarball installs offline and gives Node\'s numbers from import and require', async (t) => {
  const expected = JSON.parse(JSON.stringify(sample(await init()))); // what JSON output can carry
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
  const work = await realpath(await mkdtemp(join(tmpdir(), 'tilelli-pack-')));
  t.after(() => rm(work, { recursive: true, force: true }));
  const cache = join(work, 'npm-cache');

  // 1. npm pack, and what the tarball holds
  let started = performance.now();
  const packed = await run('npm', ['pack', '--json', '--pack-destination', work, '--cache', cache], { cwd: root });
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')));
  t.diagnostic(`npm pack: ${(performance.now() - started).toFixed(0)} ms, ${info.filename} ${info.size} bytes (${info.unpackedSize} unpacked, ${info.entryCount} files)`);
  const files = info.files.map((f) => f.path).sort();
  for (const need of ['package.json', 'README.md', 'dist/tilelli-relaxed.wasm', 'dist/tilelli-simd.wasm', 'dist/tilelli-scalar.wasm', 'dist/tilelli-relaxed-mt.wasm', 'dist/tilelli-simd-mt.wasm', 'js/thread-worker.js']) {
    assert.ok(files.includes(need), `the tarball holds ${need}`);
  }
  for (const name of await readdir(join(root, 'js'))) assert.ok(files.includes(`js/${name}`), `the tarball holds js/${name}`);
  for (const target of exportedFiles(pkg)) assert.ok(files.includes(target), `the tarball holds ${target}, which package.json names`);
  for (const f of files) {
    assert.match(f, /^(package\.json|README\.md|LICENSE(\.\w+)?|js\/[\w.-]+\.(js|cjs|d\.ts)|bin\/[\w.-]+\.js|dist\/[\w.-]+\.wasm|include\/[\w.-]+\.h)$/,
      `the tarball holds nothing else: ${f}`);
    assert.doesNotMatch(f, /^(test|src|bench|build|scripts|examples|demo|docs|wasm|node_modules|test-artifacts)\//, f);
  }

  // 2. a fresh project outside the repo installs it offline: no runtime dependencies to fetch
  const project = join(work, 'project');
  await mkdir(project);
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'tilelli-consumer', version: '0.0.0', private: true }, null, 2));
  started = performance.now();
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', '--cache', cache, join(work, info.filename)],
    { cwd: project });
  t.diagnostic(`npm install --offline: ${(performance.now() - started).toFixed(0)} ms`);
  const installed = join(project, 'node_modules', 'tilelli');
  assert.deepEqual(await listFiles(installed), files, 'the installed package is the tarball, file for file');
  const installedPkg = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8'));
  assert.equal(installedPkg.version, pkg.version);
  assert.match(JSON.parse(await readFile(join(project, 'package.json'), 'utf8')).dependencies.tilelli, /^file:.*\.tgz$/);

  // 3. the sample from ESM (import, node entry) and from CommonJS (require, index.cjs)
  await writeFile(join(project, 'sample.mjs'), await readFile(sampleSource, 'utf8'));
  await writeFile(join(project, 'esm.mjs'), ESM);
  await writeFile(join(project, 'cjs.cjs'), CJS);
  for (const [script, entry] of [['esm.mjs', 'js/node.js'], ['cjs.cjs', 'js/index.cjs']]) {
    started = performance.now();
    const { stdout } = await run(process.execPath, [script], { cwd: project });
    t.diagnostic(`node ${script}: ${(performance.now() - started).toFixed(0)} ms`);
    const out = JSON.parse(stdout);
    const resolved = out.resolved.startsWith('file:') ? fileURLToPath(out.resolved) : out.resolved;
    assert.equal(resolved, join(installed, ...entry.split('/')), `${script} resolves 'tilelli' to the installed ${entry}`);
    assert.equal(out.simd, true);
    assert.deepEqual(out.sample, expected, `${script}: the installed package gives Node's numbers`);
  }

  // The serving entry from the installed package: the same outputs as the full API's Model.
  await writeFile(join(project, 'serve.mjs'), SERVE);
  const served = JSON.parse((await run(process.execPath, ['serve.mjs'], { cwd: project })).stdout);
  assert.equal(fileURLToPath(served.resolved), join(installed, 'js', 'serve.js'), "'tilelli/serve' resolves to the installed js/serve.js");
  assert.deepEqual(served.keys, ['Model', 'TilelliError', 'build', 'memoryStats', 'simd', 'threads', 'version']);
  assert.equal(served.same, true, 'tilelli/serve runs the model as the full API does, bit for bit');

  // The CLI comes with the package as a bin: `npx tilelli` in the project.
  const help = await run(join(project, 'node_modules', '.bin', 'tilelli'), ['--help'], { cwd: project });
  assert.match(help.stdout, /Usage: tilelli <command>/);

  // 4. what a browser downloads, gzipped at level 9
  const gz = async (rel) => gzipSync(await readFile(join(installed, rel)), { level: 9 }).length;
  const js = files.filter((f) => /^js\/[^/]+\.js$/.test(f));
  const jsRaw = (await Promise.all(js.map((f) => readFile(join(installed, f))))).reduce((a, b) => a + b.length, 0);
  const jsEach = (await Promise.all(js.map(gz))).reduce((a, b) => a + b, 0);
  const jsAll = gzipSync(Buffer.concat(await Promise.all(js.map((f) => readFile(join(installed, f))))), { level: 9 }).length;
  t.diagnostic(`gzip -9: js/*.js (${js.length} files, ${jsRaw} bytes): ${jsEach} bytes gzipped one by one, ${jsAll} bytes concatenated`);
  for (const f of files.filter((f) => f.endsWith('.wasm'))) {
    t.diagnostic(`gzip -9: ${f} (${info.files.find((x) => x.path === f).size} bytes): ${await gz(f)} bytes`);
  }
});
