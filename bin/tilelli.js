#!/usr/bin/env node
// tilelli — the command line: inspect checkpoints and packed models, deadzone stats, pack, run,
// bench. `tilelli <command> --help` says more. Exit codes: 0 success, 1 the data was refused (a
// TilelliError: malformed file, wrong shape, ...), 2 a usage error, 3 a file could not be read
// or written.
import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';

import { init, TilelliError } from '../js/node.js';
import { MAX_ELEMENTS } from '../js/constants.js';

const EXIT = { ok: 0, data: 1, usage: 2, io: 3 };
const FLOAT_DTYPES = new Set(['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2']);

class UsageError extends Error {}
class IoError extends Error {}

const HELP = {
  main: `tilelli — ternary (BitNet b1.58) weights: checkpoints in, packed models out

Usage: tilelli <command> [options]

Commands:
  inspect <file>                 tensors of a .safetensors checkpoint, or layers of a packed model
  stats <checkpoint>             deadzone stats of every weight tensor (the reference's deadzone_stats)
  pack <checkpoint> --arch <a>   quantize and pack a checkpoint into a packed model file
  run <model> <input>            run a packed model on inputs; print predictions or outputs
  bench <model>                  latency and size of a packed model

Run "tilelli <command> --help" for a command's options.
Exit codes: 0 success, 1 invalid data, 2 usage error, 3 file not readable or writable.`,
  inspect: `Usage: tilelli inspect <file> [--json]

Prints the tensors of a safetensors checkpoint (name, dtype, shape, bytes) and its metadata,
or the layers of a packed model file (.tlm), with sizes.`,
  stats: `Usage: tilelli stats <checkpoint> [--band 0.1] [--all] [--json]

Deadzone statistics of every weight tensor (float, 2 or more dimensions; --all: every tensor but
complex ones, integer buffers read as numbers): alpha,
fractions of trits -1 / 0 / +1, the fraction within --band of the 0.5 rounding boundary, and the
fraction deeply zero. The same numbers as the reference's deadzone_stats(w, band).`,
  pack: `Usage: tilelli pack <checkpoint> --arch <architecture.json> [--format i2|tq1|bitplane]
       [--activations float|int8] [-o out.tlm]

Quantizes each linear layer's weight as the architecture says (per_tensor or per_row, the
reference's rule), packs it in the format (default i2), and writes the packed model file
(default: the checkpoint's name with .<format>.tlm). --activations int8 runs every linear layer
with BitNet's per-token int8 activations (default: as each layer says, float unless "int8").
The architecture:
  { "input": 784, "layers": [ { "type": "linear", "weight": "fc1.weight", "bias": "fc1.bias",
    "quantizer": "per_tensor", "activations": "float" }, { "type": "relu" }, ... ] }
Layer types: linear, bitlinear, relu, gelu, silu, rmsnorm, binarize, softmax (docs/FORMATS.md).`,
  run: `Usage: tilelli run <model.tlm> <input> [--tensor name] [--outputs] [--json] [-o file]

Input: a .safetensors file (the tensor --tensor, default the first; shape [batch, input] or
[input]), a .json file (an array of vectors of numbers, or one vector), or raw little-endian
float32 (.f32, .bin). Every vector must have exactly the model's input width (else exit 1).
Prints one prediction (argmax) per line; --outputs prints the output vectors instead; --json
writes { predictions, outputs } as JSON. -o writes to a file instead of stdout.`,
  bench: `Usage: tilelli bench <model.tlm> [--batch 1] [--seconds 2]

Times model.run on random inputs of the model's width: median latency per call and per sample,
and the model's size (packed file against float32 weights).`,
};

function fail(kind, message) {
  throw kind === 'usage' ? new UsageError(message) : new IoError(message);
}

async function read(path) {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    return fail('io', `cannot read ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
}

async function write(path, data) {
  try {
    await writeFile(path, data);
  } catch (e) {
    fail('io', `cannot write ${path}: ${e.message}`);
  }
}

/** A progress bar on stderr when it is a terminal; silent otherwise (pipes, CI logs). */
function progress(label, total) {
  const tty = process.stderr.isTTY;
  let last = -1;
  return {
    update(done) {
      if (!tty) return;
      const pct = Math.floor((100 * done) / total);
      if (pct === last) return;
      last = pct;
      const width = 30, full = Math.round((width * done) / total);
      process.stderr.write(`\r${label} [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${pct}%`);
    },
    done() { if (tty) process.stderr.write('\n'); },
  };
}

const fmtBytes = (n) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
const pad = (rows) => {
  // a loop, not Math.max(...column): a spread of 200k values overflows the call stack
  const w = rows[0].map((_, i) => rows.reduce((m, r) => Math.max(m, String(r[i]).length), 0));
  return rows.map((r) => r.map((c, i) => (typeof c === 'number' ? String(c).padStart(w[i]) : String(c).padEnd(w[i]))).join('  ')).join('\n');
};

const commands = {
  async inspect(tl, args, opts) {
    if (args.length !== 1) fail('usage', 'inspect takes one file');
    const bytes = await read(args[0]);
    if (tl.Model.isModelFile(bytes)) {
      const model = tl.Model.load(bytes);
      try {
        const info = { file: args[0], bytes: bytes.length, input: model.inputSize, output: model.outputSize, layers: model.layers, metadata: model.metadata };
        if (opts.json) return console.log(JSON.stringify(info, null, 2));
        console.log(`${basename(args[0])}: packed model, ${fmtBytes(bytes.length)}, input ${model.inputSize}, output ${model.outputSize}`);
        console.log(pad([['#', 'layer', 'name', 'shape', 'weights', 'activations'], ...model.layers.map((L, i) => [
          i, L.type, L.name ?? '', L.weights ? `${L.out} x ${L.in}` : `${L.out}`, L.weights ?? '', L.activations ?? ''])]));
        for (const [k, v] of Object.entries(model.metadata)) console.log(`metadata ${k}: ${v}`);
      } finally {
        model.free();
      }
      return undefined;
    }
    const st = tl.Safetensors.open(bytes);
    try {
      if (opts.json) return console.log(JSON.stringify({ file: args[0], bytes: bytes.length, tensors: st.tensors.map(({ index, ...t }) => t), metadata: st.metadata }, null, 2));
      console.log(`${basename(args[0])}: safetensors, ${fmtBytes(bytes.length)}, ${st.tensors.length} tensors`);
      console.log(pad([['name', 'dtype', 'shape', 'bytes'], ...st.tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, t.byteLength])]));
      for (const [k, v] of Object.entries(st.metadata)) console.log(`metadata ${k}: ${v}`);
    } finally {
      st.free();
    }
    return undefined;
  },

  async stats(tl, args, opts) {
    if (args.length !== 1) fail('usage', 'stats takes one checkpoint');
    const band = opts.band === undefined ? 0.1 : Number(opts.band);
    if (!Number.isFinite(band)) fail('usage', `--band must be a number, got ${opts.band}`);
    const st = tl.Safetensors.open(await read(args[0]));
    try {
      // weights are float tensors; integer and bool buffers (step counters, masks, ids) are skipped
      const usable = st.tensors.filter((t) => (opts.all ? t.dtype !== 'C64' : FLOAT_DTYPES.has(t.dtype) && t.shape.length >= 2));
      const skipped = st.tensors.length - usable.length;
      const rows = usable.map((t) => ({ name: t.name, shape: t.shape, ...tl.deadzoneStats(st.read(t.name), band) }));
      if (opts.json) return console.log(JSON.stringify({ band, tensors: rows }, null, 2));
      const pct = (v) => `${(100 * v).toFixed(2)}%`;
      console.log(`deadzone stats, band ${band}${skipped ? ` (${skipped} tensor${skipped > 1 ? 's' : ''} skipped: ${opts.all ? 'complex' : 'not float weights of 2 or more dimensions; --all includes them'})` : ''}`);
      console.log(pad([['tensor', 'shape', 'alpha', '-1', '0', '+1', 'boundary', 'zero inner'], ...rows.map((r) => [
        r.name, `[${r.shape.join(', ')}]`, r.alpha.toPrecision(7), pct(r.fracNeg), pct(r.fracZero), pct(r.fracPos), pct(r.fracBoundary), pct(r.fracZeroInner)])]));
    } finally {
      st.free();
    }
    return undefined;
  },

  async pack(tl, args, opts) {
    if (args.length !== 1) fail('usage', 'pack takes one checkpoint');
    if (!opts.arch) fail('usage', 'pack needs --arch <architecture.json>');
    const format = opts.format ?? 'i2';
    if (!tl.formats.includes(format)) fail('usage', `--format must be ${tl.formats.join(', ')}; got ${format}`);
    if (opts.activations !== undefined && !['float', 'int8'].includes(opts.activations)) {
      fail('usage', `--activations must be float or int8, got ${opts.activations}`);
    }
    const arch = parseJson(await read(opts.arch), opts.arch);
    if (!arch || typeof arch !== 'object' || Array.isArray(arch)) {
      throw new TilelliError('PARSE', `pack: ${opts.arch} must hold an object { "input", "layers": [...] }, not ${arch === null ? 'null' : Array.isArray(arch) ? 'an array' : typeof arch}`);
    }
    if (!Array.isArray(arch.layers)) throw new TilelliError('PARSE', `pack: ${opts.arch}: "layers" must be an array of layer objects`);
    const bad = arch.layers.findIndex((L) => !L || typeof L !== 'object' || Array.isArray(L));
    if (bad >= 0) throw new TilelliError('PARSE', `pack: ${opts.arch}: layers[${bad}] must be an object { "type", ... }, not ${JSON.stringify(arch.layers[bad])}`);
    const checkpoint = await read(args[0]);
    const bar = progress('packing', arch.layers.length);
    const file = tl.packCheckpoint(checkpoint, { ...arch, metadata: { ...(arch.metadata ?? {}), source: basename(args[0]) } },
      { format, activations: opts.activations, onProgress: ({ layer }) => bar.update(layer + 1) });
    bar.done();
    const out = opts.output ?? args[0].replace(/\.safetensors$/, '') + `.${format}.tlm`;
    await write(out, file);
    console.log(`wrote ${out}: ${fmtBytes(file.length)} (checkpoint ${fmtBytes(checkpoint.length)})`);
    return undefined;
  },

  async run(tl, args, opts) {
    if (args.length !== 2) fail('usage', 'run takes a model and an input file');
    const model = loadModel(tl, await read(args[0]), args[0]);
    try {
      const input = await readInput(tl, args[1], opts.tensor, model.inputSize);
      const batch = input.length / model.inputSize;
      const chunk = 256, outputs = new Float32Array(batch * model.outputSize);
      const bar = progress('running', batch);
      for (let b = 0; b < batch; b += chunk) {
        const n = Math.min(chunk, batch - b);
        outputs.set(model.run(input.subarray(b * model.inputSize, (b + n) * model.inputSize)), b * model.outputSize);
        bar.update(b + n);
      }
      bar.done();
      const predictions = [];
      for (let b = 0; b < batch; b++) {
        let best = 0;
        for (let c = 1; c < model.outputSize; c++) if (outputs[b * model.outputSize + c] > outputs[b * model.outputSize + best]) best = c;
        predictions.push(best);
      }
      const rows = [];
      for (let b = 0; b < batch; b++) rows.push(Array.from(outputs.subarray(b * model.outputSize, (b + 1) * model.outputSize)));
      const text = opts.json ? JSON.stringify({ predictions, outputs: rows })
        : opts.outputs ? rows.map((r) => r.join(' ')).join('\n') : predictions.join('\n');
      if (opts.output) await write(opts.output, `${text}\n`);
      else console.log(text);
    } finally {
      model.free();
    }
    return undefined;
  },

  async bench(tl, args, opts) {
    if (args.length !== 1) fail('usage', 'bench takes one model');
    const batch = Number(opts.batch ?? 1), seconds = Number(opts.seconds ?? 2);
    if (!Number.isSafeInteger(batch) || batch < 1) fail('usage', `--batch must be a positive integer, got ${opts.batch}`);
    if (!(seconds > 0)) fail('usage', `--seconds must be positive, got ${opts.seconds}`);
    const bytes = await read(args[0]);
    const model = loadModel(tl, bytes, args[0]);
    try {
      // the library's limit on one tensor (2^30 - 1 values), before allocating anything
      if (batch * Math.max(model.inputSize, model.outputSize) > MAX_ELEMENTS) {
        fail('usage', `--batch ${batch} x the model's width ${Math.max(model.inputSize, model.outputSize)} is past the limit of ${MAX_ELEMENTS} values per tensor`);
      }
      const x = new Float32Array(batch * model.inputSize).map((_, i) => ((i * 2654435761) % 1000) / 1000);
      model.run(x);
      const times = [], bar = progress('timing', seconds * 1000);
      const start = performance.now();
      while (performance.now() - start < seconds * 1000 || times.length < 5) {
        const t0 = performance.now();
        model.run(x);
        times.push(performance.now() - t0);
        bar.update(Math.min(seconds * 1000, performance.now() - start));
      }
      bar.done();
      times.sort((a, b) => a - b);
      const med = times[times.length >> 1];
      const weights = model.layers.filter((L) => L.weights).reduce((a, L) => a + L.in * L.out, 0);
      console.log(`${basename(args[0])}: ${model.layers.length} layers, ${weights} ternary weights, ${{ relaxed: 'wasm relaxed SIMD', simd: 'wasm SIMD128', scalar: 'wasm scalar' }[tl.build]}`);
      const ratio = (weights * 4) / bytes.length;
      const compare = ratio >= 1.05 ? `${ratio.toFixed(1)}x smaller` : ratio > 1 / 1.05 ? 'about the same size'
        : `${(1 / ratio).toFixed(1)}x larger: the file's headers and float parameters outweigh so few weights`;
      console.log(`size: ${fmtBytes(bytes.length)} packed, ${fmtBytes(weights * 4)} of weights as float32 (${compare})`);
      console.log(`latency: ${(med * 1000).toFixed(1)} us per call of batch ${batch} (median of ${times.length}), ${((med * 1000) / batch).toFixed(2)} us per sample`);
    } finally {
      model.free();
    }
    return undefined;
  },
};

/** JSON text of a file, or a data error (exit 1) with the line and column of the mistake. */
function parseJson(bytes, path) {
  const text = new TextDecoder().decode(bytes);
  try {
    return JSON.parse(text);
  } catch (e) {
    const at = Number(/position (\d+)/.exec(e.message)?.[1]);
    let where = '';
    if (Number.isFinite(at)) {
      const before = text.slice(0, at).split('\n');
      where = ` at line ${before.length}, column ${before.at(-1).length + 1}`;
    }
    throw new TilelliError('PARSE', `${path} is not valid JSON${where}: ${e.message}`);
  }
}

/** A packed model file; a checkpoint given instead says to pack it first. */
function loadModel(tl, bytes, path) {
  if (!tl.Model.isModelFile(bytes)) {
    let checkpoint = false;
    try {
      tl.Safetensors.open(bytes).free();
      checkpoint = true;
    } catch {}
    if (checkpoint) {
      throw new TilelliError('PARSE', `${path} is a safetensors checkpoint, not a packed model: pack it first with ` +
        `"tilelli pack ${path} --arch architecture.json", then run the .tlm file`);
    }
  }
  return tl.Model.load(bytes);
}

const sizeError = (message) => new TilelliError('SIZE_MISMATCH', `run: ${message}`);

/**
 * Input vectors from a safetensors, JSON or raw float32 file, checked against the model's input
 * width: every vector must have exactly `width` numbers, whatever the file's layout.
 */
async function readInput(tl, path, tensor, width) {
  const bytes = await read(path);
  if (path.endsWith('.json')) return jsonInput(parseJson(bytes, path), path, width);
  if (path.endsWith('.f32') || path.endsWith('.bin')) {
    if (bytes.length % 4) throw sizeError(`${path} has ${bytes.length} bytes, not whole float32 values`);
    const v = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    if (v.length === 0 || v.length % width) throw sizeError(`${path} holds ${v.length} float32 values, not whole vectors of the model's input ${width}`);
    return v;
  }
  const st = tl.Safetensors.open(bytes);
  try {
    if (!st.tensors.length) throw sizeError(`${path} holds no tensor`);
    const t = tensor === undefined ? st.tensors[0] : st.tensor(tensor);
    const where = `${path}: tensor "${t.name}" [${t.shape.join(', ')}]`;
    const last = t.shape.at(-1);
    if (t.shape.length === 0 || t.shape.length > 2 || last !== width || t.shape.includes(0)) {
      throw sizeError(`${where} is not [batch, ${width}] or [${width}] (the model's input is ${width} values)`);
    }
    return st.read(t.name);
  } finally {
    st.free();
  }
}

/** JSON input: one vector of numbers, or an array of vectors, each of `width` numbers. */
function jsonInput(data, path, width) {
  const vector = (row, b) => {
    const which = b === undefined ? 'the vector' : `vector ${b}`;
    if (!Array.isArray(row)) throw new TilelliError('INVALID_ARGUMENT', `run: ${path}: ${which} is ${row === null ? 'null' : typeof row}, not an array of ${width} numbers`);
    if (row.length !== width) throw sizeError(`${path}: ${which} has ${row.length} values; the model's input is ${width}`);
    row.forEach((v, i) => {
      if (typeof v !== 'number') throw new TilelliError('INVALID_ARGUMENT', `run: ${path}: ${which}, value ${i} is ${JSON.stringify(v)}, not a number`);
    });
    return row;
  };
  if (!Array.isArray(data) || data.length === 0) throw new TilelliError('INVALID_ARGUMENT', `run: ${path} must hold an array of vectors (or one vector) of ${width} numbers`);
  const rows = Array.isArray(data[0]) ? data.map((r, b) => vector(r, b)) : [vector(data)];
  const v = new Float32Array(rows.length * width);
  rows.forEach((r, b) => v.set(r, b * width));
  return v;
}

async function main(argv) {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(HELP.main);
    return command ? EXIT.ok : EXIT.usage;
  }
  if (!commands[command]) {
    console.error(`tilelli: unknown command "${command}"\n\n${HELP.main}`);
    return EXIT.usage;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' }, all: { type: 'boolean' },
        outputs: { type: 'boolean' }, band: { type: 'string' }, arch: { type: 'string' },
        format: { type: 'string' }, output: { type: 'string', short: 'o' }, tensor: { type: 'string' },
        activations: { type: 'string' },
        batch: { type: 'string' }, seconds: { type: 'string' },
      },
    });
  } catch (e) {
    console.error(`tilelli ${command}: ${e.message}\n\n${HELP[command]}`);
    return EXIT.usage;
  }
  if (parsed.values.help) {
    console.log(HELP[command]);
    return EXIT.ok;
  }
  try {
    const tl = await init();
    await commands[command](tl, parsed.positionals, parsed.values);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`tilelli ${command}: ${e.message}\n\n${HELP[command]}`);
      return EXIT.usage;
    }
    if (e instanceof IoError) {
      console.error(`tilelli ${command}: ${e.message}`);
      return EXIT.io;
    }
    if (e instanceof TilelliError) {
      console.error(`tilelli ${command}: ${e.message} [${e.code}]`);
      return EXIT.data;
    }
    // Anything else (a JS engine limit such as "Invalid array length", an allocation the
    // engine refused): still one line and exit 1, never a stack trace.
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    console.error(`tilelli ${command}: the input could not be processed (${what}) [INTERNAL]`);
    return EXIT.data;
  }
}

process.exitCode = await main(process.argv.slice(2));
