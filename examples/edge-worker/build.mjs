// build.mjs — bundle a Worker entry for plain workerd (wrangler bundles by itself: see README.md).
//
//   node build.mjs [entry.js] [--outdir build]
//
// esbuild bundles the entry as wrangler would (ESM, export conditions workerd / worker / browser:
// 'tilelli/serve' resolves to its js/serve-workerd.js) but keeps some imports as imports of
// modules that config.capnp declares: the wasm builds (workerd compiles wasm modules from its
// config only, no wasm from bytes at run time) and the packed model (a data module: an
// ArrayBuffer, no base64 in the JavaScript). The wasm files and model.tlm are copied next to the
// bundle, so config.capnp embeds everything from one folder.
import { copyFile, mkdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Bundle `entry` into outdir/worker.js and copy the modules it imports next to it.
 * @param {{ entry?: string, outdir: string, model?: string, define?: Record<string, string> }} options
 *   model: the packed model file to copy as outdir/model.tlm (when the entry imports it)
 * @returns {Promise<{ imports: string[], inputs: string[], bytes: number }>}
 */
export async function buildWorker({ entry = join(here, 'worker.js'), outdir, model = join(here, 'model.tlm'), define }) {
  entry = resolve(entry);
  outdir = resolve(outdir);
  await mkdir(outdir, { recursive: true });
  const wasmFiles = new Map(); // bundle import name -> file on disk
  const result = await esbuild.build({
    absWorkingDir: here,
    entryPoints: [entry],
    outfile: join(outdir, 'worker.js'),
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    minify: true,
    // tilelli's error messages name its classes ("new Model(...): a Model is made by its static
    // methods"): a minifier that renames classes would garble them unless names are kept.
    keepNames: true,
    define,
    metafile: true,
    logLevel: 'silent',
    plugins: [{
      name: 'worker-modules',
      setup(build) {
        build.onResolve({ filter: /\.wasm$/ }, (args) => {
          const name = basename(args.path);
          wasmFiles.set(name, resolve(args.resolveDir, args.path));
          return { path: `./${name}`, external: true };
        });
        build.onResolve({ filter: /\.tlm$/ }, () => ({ path: './model.tlm', external: true }));
      },
    }],
  });
  const [output] = Object.values(result.metafile.outputs);
  const imports = [...new Set(output.imports.map((i) => i.path))].sort();
  for (const [name, file] of wasmFiles) await copyFile(file, join(outdir, name));
  if (imports.includes('./model.tlm')) await copyFile(model, join(outdir, 'model.tlm'));
  return { imports, inputs: Object.keys(result.metafile.inputs), bytes: output.bytes };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--outdir');
  const outdir = resolve(at >= 0 ? args.splice(at, 2)[1] : join(here, 'build'));
  const entry = args[0] ? resolve(args[0]) : undefined;
  const { imports, bytes } = await buildWorker({ entry, outdir });
  console.log(`wrote ${join(outdir, 'worker.js')} (${(bytes / 1024).toFixed(1)} KiB), importing ${imports.join(', ')}`);
}
