// fixtures.js — reader for the golden quantization fixtures in test/fixtures/quant/ (made by
// test/fixtures/gen_quant.py from the PyTorch reference; the format is documented at the top of
// that script). The JS twin of test/c/fixtures.c: Node's fs, no dependencies.
//
//   const set = loadFixtures();           // parses manifest.txt (metadata only)
//   for (const c of set.cases) {
//     const d = c.load();                 // { input, trits, values, rowAlphas, rowTrits, rowValues, lsq }
//   }

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The committed fixture directory. */
export const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/quant/', import.meta.url));

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The float32 with bit pattern `u`. */
export function f32FromBits(u) {
  u32Scratch[0] = u;
  return f32Scratch[0];
}

/** The bit pattern of `x` rounded to float32. */
export function f32Bits(x) {
  f32Scratch[0] = x;
  return u32Scratch[0];
}

/**
 * The fixtures' xorshift32 inputs: kind "uniform", "irwin4" or "cauchy", a nonzero seed.
 * @returns {Float32Array}
 */
export function prngFill(kind, seed, n) {
  let x = seed >>> 0;
  if (x === 0) throw new Error('prngFill: seed must be nonzero');
  const draw = () => { // the new state, as a two's-complement int32
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    return x | 0;
  };
  const out = new Float32Array(n);
  if (kind === 'uniform') {
    for (let k = 0; k < n; k++) out[k] = draw() / 2147483648;
  } else if (kind === 'irwin4') {
    for (let k = 0; k < n; k++) {
      const a = draw(), b = draw(), c = draw(), d = draw();
      out[k] = (((a + b) + c) + d) / 4294967296; // integer sums below 2^53: exact
    }
  } else if (kind === 'cauchy') {
    for (let k = 0; k < n; k++) {
      const a = draw(), b = draw();
      out[k] = a / b;
    }
  } else {
    throw new Error(`prngFill: unknown kind ${kind}`);
  }
  return out; // storing into a Float32Array rounds once, like Math.fround
}

function readF32(buf, off, n, what) {
  if (!Number.isSafeInteger(off) || off < 0 || off + 4 * n > buf.length) throw new Error(`${what}: out of range`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = dv.getFloat32(off + 4 * i, true);
  return out;
}

function readTrits(buf, off, n, what) {
  const nb = Math.ceil(n / 4);
  if (!Number.isSafeInteger(off) || off < 0 || off + nb > buf.length) throw new Error(`${what}: out of range`);
  const out = new Int8Array(n);
  for (let i = 0; i < n; i++) {
    const code = (buf[off + (i >> 2)] >> (2 * (i & 3))) & 3;
    if (code === 3) throw new Error(`${what}: bad trit code at ${i}`);
    out[i] = code - 1;
  }
  return out;
}

function parseOffset(tok, what) {
  if (!/^[0-9]+$/.test(tok)) throw new Error(`${what}: bad offset ${tok}`);
  return Number(tok);
}

function parseBits(tok, what) {
  if (!/^[0-9a-f]{8}$/.test(tok)) throw new Error(`${what}: bad float32 bit pattern ${tok}`);
  return f32FromBits(parseInt(tok, 16));
}

function parseNumber(tok, what) {
  const v = Number(tok);
  if (tok === '' || Number.isNaN(v)) throw new Error(`${what}: bad number ${tok}`);
  return v;
}

/**
 * Parse dir/manifest.txt. Each case carries its metadata and a `load()` that reads (or
 * regenerates) its arrays.
 */
export function loadFixtures(dir = FIXTURE_DIR) {
  const path = join(dir, 'manifest.txt');
  const lines = readFileSync(path, 'utf8').split('\n');
  const blobs = new Map();
  const blob = (name) => {
    if (!blobs.has(name)) blobs.set(name, readFileSync(join(dir, name)));
    return blobs.get(name);
  };
  const set = { dir, torch: undefined, numpy: undefined, cases: [] };
  let magic = false, declared, c = null;
  lines.forEach((raw, idx) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const t = line.split(/\s+/);
    const where = `${path}:${idx + 1}`;
    const bad = () => { throw new Error(`${where}: malformed '${t[0]}' line`); };
    if (!magic) {
      if (line !== 'tilelli-quant-fixtures 1') throw new Error(`${path}: not a version 1 fixture manifest`);
      magic = true;
      return;
    }
    if (!c) {
      if (t[0] === 'torch' && t.length === 2) set.torch = t[1];
      else if (t[0] === 'numpy' && t.length === 2) set.numpy = t[1];
      else if (t[0] === 'cases' && t.length === 2) declared = parseOffset(t[1], where);
      else if (t[0] === 'case' && t.length === 2) {
        c = {
          name: t[1], blob: undefined, shape: undefined, n: 0, rows: 0, input: undefined, alpha: undefined,
          off: {}, lsq: [], deadzone: [],
        };
      } else throw new Error(`${where}: unexpected '${t[0]}' outside a case`);
      return;
    }
    switch (t[0]) {
      case 'end': {
        for (const key of ['blob', 'shape', 'input', 'alpha']) if (c[key] === undefined) throw new Error(`${where}: case ${c.name} has no ${key}`);
        if (c.off.trits === undefined) throw new Error(`${where}: case ${c.name} has no trits`);
        if ((c.shape.length >= 2) !== (c.off.rowAlphas !== undefined && c.off.rowTrits !== undefined)) {
          throw new Error(`${where}: case ${c.name}: per-row results do not match its rank`);
        }
        set.cases.push(finishCase(c, blob));
        c = null;
        break;
      }
      case 'blob':
        if (t.length !== 2 || t[1].includes('/')) bad();
        c.blob = t[1];
        break;
      case 'shape': {
        const nd = Number(t[1]);
        if (!(nd >= 1) || t.length !== nd + 2) bad();
        c.shape = t.slice(2).map((d) => parseOffset(d, where));
        if (c.shape.some((d) => d < 1)) bad();
        c.n = c.shape.reduce((a, b) => a * b, 1);
        c.rows = nd >= 2 ? c.shape[0] : 0;
        break;
      }
      case 'input':
        if (t.length === 3 && t[1] === 'f32') c.input = { kind: 'f32', offset: parseOffset(t[2], where) };
        else if (t.length === 4 && t[1] === 'prng' && ['uniform', 'irwin4', 'cauchy'].includes(t[2])) {
          c.input = { kind: t[2], seed: parseOffset(t[3], where) };
        } else bad();
        break;
      case 'alpha':
        if (t.length !== 2) bad();
        c.alpha = parseBits(t[1], where);
        break;
      case 'trits': case 'values': case 'row_alphas': case 'row_trits': case 'row_values': {
        if (t.length !== 2) bad();
        const key = t[0].replace(/_([a-z])/, (_, ch) => ch.toUpperCase());
        c.off[key] = parseOffset(t[1], where);
        break;
      }
      case 'lsq':
        if (t.length !== 4) bad();
        c.lsq.push({
          alpha: parseBits(t[1], where), tritsOffset: parseOffset(t[2], where),
          valuesOffset: t[3] === '-' ? undefined : parseOffset(t[3], where),
        });
        break;
      case 'deadzone': {
        if (t.length !== 13) bad();
        const v = t.slice(1, 8).map((s) => parseNumber(s, where));
        const k = t.slice(8).map((s) => parseOffset(s, where));
        c.deadzone.push({
          band: v[0], alpha: v[1], fracNeg: v[2], fracZero: v[3], fracPos: v[4], fracBoundary: v[5], fracZeroInner: v[6],
          nNeg: k[0], nZero: k[1], nPos: k[2], nBoundary: k[3], nZeroInner: k[4],
        });
        break;
      }
      default:
        throw new Error(`${where}: unknown key '${t[0]}'`);
    }
  });
  if (!magic) throw new Error(`${path}: empty manifest`);
  if (c) throw new Error(`${path}: case ${c.name} has no 'end'`);
  if (declared !== set.cases.length) throw new Error(`${path}: ${set.cases.length} cases, header says ${declared}`);
  return set;
}

function finishCase(c, blob) {
  const { off } = c;
  const n = c.n;
  return {
    name: c.name, blob: c.blob, shape: c.shape, n, rows: c.rows, inputKind: c.input.kind, alpha: c.alpha,
    lsq: c.lsq.map(({ alpha }) => ({ alpha })), deadzone: c.deadzone,
    /** Read (or regenerate) the arrays; nothing is cached on the case. */
    load() {
      const b = blob(c.blob);
      const what = (k) => `case ${c.name}: ${k}`;
      const input = c.input.kind === 'f32' ? readF32(b, c.input.offset, n, what('input'))
        : prngFill(c.input.kind, c.input.seed, n);
      return {
        input,
        trits: readTrits(b, off.trits, n, what('trits')),
        values: off.values === undefined ? null : readF32(b, off.values, n, what('values')),
        rowAlphas: off.rowAlphas === undefined ? null : readF32(b, off.rowAlphas, c.rows, what('row_alphas')),
        rowTrits: off.rowTrits === undefined ? null : readTrits(b, off.rowTrits, n, what('row_trits')),
        rowValues: off.rowValues === undefined ? null : readF32(b, off.rowValues, n, what('row_values')),
        lsq: c.lsq.map((q) => ({
          alpha: q.alpha,
          trits: readTrits(b, q.tritsOffset, n, what('lsq trits')),
          values: q.valuesOffset === undefined ? null : readF32(b, q.valuesOffset, n, what('lsq values')),
        })),
      };
    },
  };
}
