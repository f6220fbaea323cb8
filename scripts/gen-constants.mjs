// gen-constants.mjs — js/constants.js from include/tilelli.h, so that no C constant is typed twice.
// Run by the CMake build; `node scripts/gen-constants.mjs --check` fails when js/constants.js is stale.
import { readFileSync, writeFileSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const header = readFileSync(new URL('include/tilelli.h', root), 'utf8');
const target = new URL('js/constants.js', root);

/** Members of `typedef enum tl_<name> { ... }` as [C name, value]. */
function enumMembers(name) {
  const m = header.match(new RegExp(`typedef enum ${name}\\s*\\{([^}]*)\\}`));
  if (!m) throw new Error(`gen-constants: no enum ${name} in tilelli.h`);
  const body = m[1].replace(/\/\*[\s\S]*?\*\//g, '');
  const out = [];
  let next = 0;
  for (const part of body.split(',')) {
    const e = part.trim().match(/^(\w+)(?:\s*=\s*(-?\d+))?$/);
    if (!e) continue;
    const value = e[2] === undefined ? next : Number(e[2]);
    out.push([e[1], value]);
    next = value + 1;
  }
  return out;
}

/** { lower-case name without the prefix: value } */
function table(name, prefix, lower = true) {
  return Object.fromEntries(enumMembers(name).map(([k, v]) => {
    const short = k.slice(prefix.length);
    return [lower ? short.toLowerCase() : short, v];
  }));
}

function define(name) {
  const m = header.match(new RegExp(`#define ${name}\\s+(?:\\(\\((?:size_t|uint32_t)\\))?(0x[0-9A-Fa-f]+|[\\d.e+-]+f?)\\)?`));
  if (!m) throw new Error(`gen-constants: no #define ${name}`);
  return Number(m[1].replace(/f$/, ''));
}

function structDoubles(name) {
  const m = header.match(new RegExp(`typedef struct ${name}\\s*\\{([\\s\\S]*?)\\}`));
  if (!m) throw new Error(`gen-constants: no struct ${name}`);
  const fields = [];
  for (const line of m[1].replace(/\/\*[\s\S]*?\*\//g, '').split(';')) {
    const d = line.trim().match(/^double\s+(\w+)$/);
    if (d) fields.push(d[1]);
  }
  return fields;
}

/** Exported functions whose result is unsigned (a pointer, size_t, uint32_t): wasm returns them
 * as i32, so the runtime reads them with >>> 0 (else anything past 2 GiB comes back negative). */
function unsignedFunctions() {
  const names = [];
  const re = /^(?:const\s+)?(\w+)\s*(\*?)\s*(tl_\w+)\s*\(/gm;
  for (const m of header.matchAll(re)) {
    if (m[2] === '*' || m[1] === 'size_t' || m[1] === 'uint32_t') names.push(m[3]);
  }
  return names.sort();
}

const status = Object.fromEntries(enumMembers('tl_status').map(([k, v]) => [k.replace(/^TL_(ERR_)?/, ''), v]));
const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
const constants = {
  STATUS: status,
  MAX_ELEMENTS: define('TL_MAX_ELEMENTS'),
  MAX_I8_COLS: define('TL_MAX_I8_COLS'),
  MAX_WIDTH: define('TL_MAX_WIDTH'),
  MODEL_VERSION: define('TL_MODEL_VERSION'),
  BUILD_FLAGS: { SIMD128: define('TL_BUILD_SIMD128'), RELAXED_SIMD: define('TL_BUILD_RELAXED_SIMD'), THREADS: define('TL_BUILD_THREADS') },
  QUANTIZER: table('tl_quantizer', 'TL_QUANT_'),
  ACTIVATION: table('tl_activation', 'TL_ACT_'),
  LOSS: table('tl_loss', 'TL_LOSS_'),
  OPTIMIZER: table('tl_optimizer', 'TL_OPT_'),
  SCHEDULE: table('tl_schedule', 'TL_SCHED_'),
  PRECISION: table('tl_precision', 'TL_PRECISION_'),
  GGUF_TYPE: table('tl_gguf_type', 'TL_GGUF_'),
  LM_GGUF_VOCAB: define('TL_LM_GGUF_VOCAB'),
  DTYPE: Object.fromEntries(Object.entries(table('tl_dtype', 'TL_DTYPE_', false)).map(([k, v]) => [v, k])),
  // tl_deadzone_stats: its leading doubles, in order (JS names)
  UNSIGNED_RESULTS: unsignedFunctions(),
  DEADZONE_FIELDS: structDoubles('tl_deadzone_stats').map(camel),
};

const text = `// constants.js — GENERATED from include/tilelli.h by scripts/gen-constants.mjs: do not edit.\n` +
  Object.entries(constants).map(([k, v]) => `export const ${k} = Object.freeze(${JSON.stringify(v)});\n`).join('');

if (process.argv.includes('--check')) {
  let old = '';
  try { old = readFileSync(target, 'utf8'); } catch {}
  if (old !== text) {
    console.error('js/constants.js is stale: run node scripts/gen-constants.mjs');
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
}
