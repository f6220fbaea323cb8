// tlm.js — what the demo does with a packed model file (.tlm, docs/FORMATS.md) beyond
// tl.Model.load: read its header and blobs, repack it in another format, and run it with int8
// activations through PackedMatrix.matmulInt8 (BitNet's W1.58A8: int32 accumulators).
//
// Used by the page and by the Node test (test/runtimes/demo.test.js), on any initialized
// tilelli instance.

const MAGIC = 'TLML';

/**
 * The file's header and blobs: { input, metadata, layers }, each linear layer with in, out,
 * weights (its format), packed (Uint8Array), scales and bias (Float32Array, bias may be null).
 */
export function parseModel(bytes) {
  // a plain Uint8Array view (a Node Buffer's slice() would not copy)
  bytes = ArrayBuffer.isView(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (String.fromCharCode(...bytes.subarray(0, 4)) !== MAGIC) throw new Error('not a packed model file (no TLML magic)');
  const headerLength = Number(view.getBigUint64(8, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + headerLength)));
  const data = 16 + headerLength;
  const blob = (ref) => (ref ? bytes.slice(data + ref[0], data + ref[0] + ref[1]) : null);
  const floats = (ref) => (ref ? new Float32Array(blob(ref).buffer) : null);
  const layers = header.layers.map((L) => {
    if (L.type !== 'linear') return { type: L.type };
    return { type: 'linear', in: L.in, out: L.out, weights: L.weights, packed: blob(L.packed), scales: floats(L.scales), bias: floats(L.bias) };
  });
  return { input: header.input, metadata: header.metadata ?? {}, layers };
}

/** Number of weights and of float parameters (biases) of a parsed model. */
export function parameterCount(parsed) {
  let weights = 0, biases = 0;
  for (const L of parsed.layers) {
    if (L.type !== 'linear') continue;
    weights += L.in * L.out;
    biases += L.bias ? L.out : 0;
  }
  return { weights, biases };
}

/** The PackedMatrix of each linear layer, in `format` (default: the file's own). Free them. */
export function matrices(tl, parsed, format) {
  const made = [];
  try {
    for (const L of parsed.layers) {
      if (L.type !== 'linear') continue;
      const shape = [L.out, L.in];
      const m = tl.PackedMatrix.fromPacked(L.packed, shape, { format: L.weights, scales: L.scales });
      if (!format || format === L.weights) {
        made.push(m);
      } else {
        try {
          made.push(tl.PackedMatrix.fromTrits(m.trits(), shape, { format, scales: L.scales }));
        } finally {
          m.free();
        }
      }
    }
    return made;
  } catch (e) {
    for (const m of made) m.free();
    throw e;
  }
}

/** The same model, every matrix repacked in `format` (the trits and scales unchanged). */
export function repack(tl, parsed, format, metadata = {}) {
  const ms = matrices(tl, parsed, format);
  try {
    let k = 0;
    const layers = parsed.layers.map((L) => (L.type === 'linear'
      ? { type: 'linear', matrix: ms[k++], ...(L.bias ? { bias: L.bias } : {}) }
      : { type: L.type }));
    return tl.packModel({ input: parsed.input, layers, metadata: { ...parsed.metadata, ...metadata } });
  } finally {
    for (const m of ms) m.free();
  }
}

const ACTIVATIONS = {
  relu: (v) => (v > 0 ? v : 0),
  silu: (v) => v / (1 + Math.exp(-v)),
  // PyTorch's exact GELU, with erf from Abramowitz and Stegun 7.1.26 (|error| < 1.5e-7)
  gelu: (v) => {
    const z = Math.abs(v) / Math.SQRT2, t = 1 / (1 + 0.3275911 * z);
    const erf = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
    return (v * (1 + Math.sign(v) * erf)) / 2;
  },
};

/**
 * Runs a parsed model of linear layers and activations with int8 activations: before each
 * linear layer the activations are quantized per vector (tl.quantizeActivations: s = 127 /
 * max|x|), multiplied with the packed trits by matmulInt8 (exact int32 sums, then * scale / s),
 * and the bias is added in float32. Free it when done.
 */
export class Int8Runner {
  constructor(tl, parsed) {
    this.tl = tl;
    this.parsed = parsed;
    this.mats = matrices(tl, parsed);
    for (const L of parsed.layers) {
      if (L.type !== 'linear' && !ACTIVATIONS[L.type]) {
        this.free();
        throw new Error(`Int8Runner: layer type ${L.type} is not supported`);
      }
    }
  }

  /** Outputs (logits) for one or more input vectors. */
  run(x) {
    let v = x, width = this.parsed.input, k = 0;
    for (const L of this.parsed.layers) {
      if (L.type === 'linear') {
        const batch = v.length / width;
        const q = this.tl.quantizeActivations(v, width);
        const y = this.mats[k++].matmulInt8(q.values, { scales: q.scales });
        if (L.bias) for (let b = 0; b < batch; b++) for (let r = 0; r < L.out; r++) y[b * L.out + r] += L.bias[r];
        v = y;
        width = L.out;
      } else {
        const f = ACTIVATIONS[L.type];
        v = v.map(f);
      }
    }
    return v;
  }

  free() {
    for (const m of this.mats) m.free();
    this.mats = [];
  }
}

/** Argmax of each row of width n. */
export function argmax(outputs, n) {
  const out = new Int32Array(outputs.length / n);
  for (let b = 0; b < out.length; b++) {
    let best = 0;
    for (let c = 1; c < n; c++) if (outputs[b * n + c] > outputs[b * n + best]) best = c;
    out[b] = best;
  }
  return out;
}
