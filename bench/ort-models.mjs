// ort-models.mjs — build the ONNX models that bench/baselines.mjs and bench/models.mjs run in
// onnxruntime-web, as serialized ModelProto bytes, with no dependency: a minimal protobuf writer for
// the few ONNX messages these graphs need (field numbers from onnx/onnx.proto, noted beside each field).
//
//   matmulF32Model({ rows, cols, weights })          Y[batch, rows] = X[batch, cols] @ W[cols, rows]
//   matmulNBitsModel({ rows, cols, bits, blockSize, packed, scales, accuracyLevel })
//                                                     Y[batch, rows] = X[batch, cols] @ dequant(B)^T
//   packNBits(codes, rows, cols, bits, blockSize)    codes (one per byte, row-major [rows, cols]) to
//                                                     MatMulNBits' B layout [N, n_blocks, blob_size]
//   mlpF32Model({ input, layers })                   an MLP: MatMul + Add per linear layer, Relu between
//   mlpDynamicInt8Model({ input, layers })           the same MLP as onnxruntime's quantize_dynamic
//                                                     writes it: DynamicQuantizeLinear + MatMulInteger +
//                                                     Cast + Mul (+ Add) per linear layer
//
// The batch dimension of X and Y is symbolic ("batch"), so one session serves every batch size.
// Large initializers go in TensorProto.raw_data and are copied exactly once, into the final buffer.

// --- protobuf wire format ---------------------------------------------------------------------
//
// A message is built as a list of byte chunks (Uint8Array) plus its total length, so nesting a
// 180 MB initializer inside Tensor -> Graph -> Model never copies it until encode() joins the chunks.

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

class Msg {
  constructor() {
    this.chunks = [];
    this.length = 0;
  }
  push(bytes) {
    if (bytes.length > 0) {
      this.chunks.push(bytes);
      this.length += bytes.length;
    }
    return this;
  }
  /** varint field (int32/int64/enum/bool); values beyond 2^53 are not needed here. */
  varint(field, value) {
    return this.push(concatSmall(varintBytes((field << 3) | WIRE_VARINT), varintBytes(value)));
  }
  /** length-delimited field: bytes, a UTF-8 string, or a nested Msg. */
  bytes(field, value) {
    if (value instanceof Msg) {
      this.push(concatSmall(varintBytes((field << 3) | WIRE_LEN), varintBytes(value.length)));
      for (const c of value.chunks) this.push(c);
      return this;
    }
    const b = typeof value === 'string' ? new TextEncoder().encode(value) : value;
    this.push(concatSmall(varintBytes((field << 3) | WIRE_LEN), varintBytes(b.length)));
    return this.push(b);
  }
  float(field, value) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    return this.push(concatSmall(varintBytes((field << 3) | WIRE_FIXED32), b));
  }
  /** All chunks joined into one buffer (the only copy of large payloads). */
  encode() {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

function varintBytes(value) {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint out of range: ${value}`);
  const out = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Uint8Array.from(out);
}

function concatSmall(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

// --- ONNX messages ------------------------------------------------------------------------------

/** TensorProto.DataType values used here. */
export const DataType = Object.freeze({ FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6 });

/** AttributeProto.AttributeType values used here. */
const AttrType = Object.freeze({ FLOAT: 1, INT: 2 });

/** TensorProto with raw_data: little-endian bytes of a typed array (a view, not copied here). */
function tensorProto(name, dataType, dims, data) {
  const m = new Msg();
  for (const d of dims) m.varint(1, d); // dims = 1 (repeated int64, unpacked is accepted)
  m.varint(2, dataType); // data_type = 2
  m.bytes(8, name); // name = 8
  m.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)); // raw_data = 9
  return m;
}

/** ValueInfoProto for a tensor; a dim is a number (dim_value) or a string (dim_param). */
function valueInfo(name, elemType, dims) {
  const shape = new Msg(); // TensorShapeProto
  for (const d of dims) {
    const dim = new Msg(); // TensorShapeProto.Dimension
    if (typeof d === 'number') dim.varint(1, d); // dim_value = 1
    else dim.bytes(2, d); // dim_param = 2
    shape.bytes(1, dim); // dim = 1
  }
  const tensorType = new Msg().varint(1, elemType).bytes(2, shape); // elem_type = 1, shape = 2
  const type = new Msg().bytes(1, tensorType); // TypeProto.tensor_type = 1
  return new Msg().bytes(1, name).bytes(2, type); // name = 1, type = 2
}

/** AttributeProto: an int (integer-valued JS number) or a float ({ float: x }). */
function attribute(name, value) {
  const m = new Msg().bytes(1, name); // name = 1
  if (typeof value === 'object' && 'float' in value) {
    m.varint(20, AttrType.FLOAT).float(2, value.float); // type = 20, f = 2
  } else {
    m.varint(20, AttrType.INT).varint(3, value); // type = 20, i = 3
  }
  return m;
}

function nodeProto({ opType, domain = '', inputs, outputs, attributes = {}, name = opType }) {
  const m = new Msg();
  for (const i of inputs) m.bytes(1, i); // input = 1
  for (const o of outputs) m.bytes(2, o); // output = 2
  m.bytes(3, name); // name = 3
  m.bytes(4, opType); // op_type = 4
  for (const [k, v] of Object.entries(attributes)) m.bytes(5, attribute(k, v)); // attribute = 5
  if (domain) m.bytes(7, domain); // domain = 7
  return m;
}

/**
 * ModelProto bytes for a one-graph model.
 * @param {object} g
 * @param {object[]} g.nodes        { opType, domain, inputs, outputs, attributes }
 * @param {object[]} g.initializers { name, dataType, dims, data (typed array) }
 * @param {object[]} g.inputs       { name, elemType, dims }
 * @param {object[]} g.outputs      { name, elemType, dims }
 * @param {object}   g.opsets       domain -> version ('' is ai.onnx)
 */
export function encodeModel({ nodes, initializers = [], inputs, outputs, opsets, name = 'bench' }) {
  const graph = new Msg();
  for (const n of nodes) graph.bytes(1, nodeProto(n)); // node = 1
  graph.bytes(2, name); // name = 2
  for (const t of initializers) graph.bytes(5, tensorProto(t.name, t.dataType, t.dims, t.data)); // initializer = 5
  for (const v of inputs) graph.bytes(11, valueInfo(v.name, v.elemType, v.dims)); // input = 11
  for (const v of outputs) graph.bytes(12, valueInfo(v.name, v.elemType, v.dims)); // output = 12

  const model = new Msg();
  model.varint(1, 8); // ir_version = 1 (IR 8: opset 17 era, read by every recent ORT)
  model.bytes(2, 'tilelli-bench'); // producer_name = 2
  model.bytes(7, graph); // graph = 7
  for (const [domain, version] of Object.entries(opsets)) {
    const opset = new Msg();
    if (domain) opset.bytes(1, domain); // domain = 1
    opset.varint(2, version); // version = 2
    model.bytes(8, opset); // opset_import = 8
  }
  return model.encode();
}

// --- the two bench models ---------------------------------------------------------------------

/**
 * MatMul float32 with a constant right-hand side: Y[batch, rows] = X[batch, cols] @ W.
 * @param {{rows: number, cols: number, weights: Float32Array}} p  weights is W, row-major [cols, rows]
 */
export function matmulF32Model({ rows, cols, weights }) {
  if (weights.length !== rows * cols) throw new RangeError('weights must hold cols * rows floats');
  return encodeModel({
    nodes: [{ opType: 'MatMul', inputs: ['X', 'W'], outputs: ['Y'] }],
    initializers: [{ name: 'W', dataType: DataType.FLOAT, dims: [cols, rows], data: weights }],
    inputs: [{ name: 'X', elemType: DataType.FLOAT, dims: ['batch', cols] }],
    outputs: [{ name: 'Y', elemType: DataType.FLOAT, dims: ['batch', rows] }],
    opsets: { '': 17 },
  });
}

/** MatMulNBits' blob_size and n_blocks for a K (cols) and block size. */
export function nbitsLayout(cols, bits, blockSize) {
  const nBlocks = Math.ceil(cols / blockSize);
  const blobSize = Math.ceil((blockSize * bits) / 8);
  return { nBlocks, blobSize };
}

/**
 * Pack codes (one unsigned code per byte, row-major [rows, cols], each < 2^bits) into MatMulNBits'
 * B: uint8 [N = rows][n_blocks][blob_size], the codes of a block bit-packed along K, lowest bits
 * first (for 2 bits: code k in bits 2*(k%4) .. 2*(k%4)+1 of byte k/4 of the block). A partial last
 * block is padded with zero bits. bits must divide 8 (2, 4 or 8).
 */
export function packNBits(codes, rows, cols, bits, blockSize) {
  if (8 % bits !== 0) throw new RangeError(`bits must divide 8, got ${bits}`);
  const { nBlocks, blobSize } = nbitsLayout(cols, bits, blockSize);
  const perByte = 8 / bits;
  const out = new Uint8Array(rows * nBlocks * blobSize);
  for (let n = 0; n < rows; n++) {
    const src = n * cols;
    for (let k = 0; k < cols; k++) {
      const blk = Math.floor(k / blockSize);
      const inBlk = k - blk * blockSize;
      const byte = (n * nBlocks + blk) * blobSize + Math.floor(inBlk / perByte);
      out[byte] |= codes[src + k] << ((inBlk % perByte) * bits);
    }
  }
  return out;
}

/**
 * com.microsoft MatMulNBits: Y[batch, rows] = X[batch, cols] @ dequant(B)^T, where
 * dequant(B)[n][k] = (code[n][k] - zero_point) * scales[n * n_blocks + k / block_size] and, with no
 * zero_points input, zero_point = 2^(bits - 1) (2 for 2-bit codes, so codes 1, 2, 3 are -1, 0, +1).
 * @param {object} p
 * @param {Uint8Array}   p.packed  from packNBits: [rows, n_blocks, blob_size]
 * @param {Float32Array} p.scales  [rows * n_blocks]
 * @param {number} [p.accuracyLevel]  0 (unset: float compute) or 4 (A quantized to int8), see the spec
 */
export function matmulNBitsModel({ rows, cols, bits, blockSize, packed, scales, accuracyLevel = 0 }) {
  const { nBlocks, blobSize } = nbitsLayout(cols, bits, blockSize);
  if (packed.length !== rows * nBlocks * blobSize) throw new RangeError('packed has the wrong size');
  if (scales.length !== rows * nBlocks) throw new RangeError('scales has the wrong size');
  const attributes = { K: cols, N: rows, bits, block_size: blockSize };
  if (accuracyLevel) attributes.accuracy_level = accuracyLevel;
  return encodeModel({
    nodes: [
      {
        opType: 'MatMulNBits',
        domain: 'com.microsoft',
        inputs: ['X', 'B', 'scales'],
        outputs: ['Y'],
        attributes,
      },
    ],
    initializers: [
      { name: 'B', dataType: DataType.UINT8, dims: [rows, nBlocks, blobSize], data: packed },
      { name: 'scales', dataType: DataType.FLOAT, dims: [rows * nBlocks], data: scales },
    ],
    inputs: [{ name: 'X', elemType: DataType.FLOAT, dims: ['batch', cols] }],
    outputs: [{ name: 'Y', elemType: DataType.FLOAT, dims: ['batch', rows] }],
    opsets: { '': 17, 'com.microsoft': 1 },
  });
}

// --- multi-layer perceptrons (bench/models.mjs) ---------------------------------------------------
//
// A layer list: { type: 'linear', rows, cols, weights, bias? } | { type: 'relu' }. weights is
// row-major [rows = out, cols = in] as a PyTorch nn.Linear stores it, either float32 (mlpF32Model)
// or, for mlpDynamicInt8Model, int8 codes with one float32 scale for the tensor (w = code * scale,
// zero point 0: quantize_dynamic's symmetric int8 weights, per tensor). The graphs transpose it into
// MatMul's right-hand side [in, out] once, here. The input is "X" [batch, input], the output "Y".

function checkMlp(input, layers, fn) {
  if (!Number.isSafeInteger(input) || input < 1) throw new RangeError(`${fn}: input must be a positive integer`);
  let width = input;
  for (const [i, L] of layers.entries()) {
    if (L.type === 'relu') continue;
    if (L.type !== 'linear') throw new RangeError(`${fn}: layers[${i}].type must be linear or relu, got ${L.type}`);
    if (L.cols !== width) throw new RangeError(`${fn}: layers[${i}] takes ${L.cols} inputs, the layer before gives ${width}`);
    if (L.weights.length !== L.rows * L.cols) throw new RangeError(`${fn}: layers[${i}].weights must hold rows * cols values`);
    if (L.bias && L.bias.length !== L.rows) throw new RangeError(`${fn}: layers[${i}].bias must hold rows values`);
    width = L.rows;
  }
  return width;
}

/** [rows, cols] row-major to [cols, rows] row-major, in an array of the same type. */
function transpose(w, rows, cols) {
  const t = new w.constructor(rows * cols);
  for (let r = 0; r < rows; r++) {
    const src = r * cols;
    for (let c = 0; c < cols; c++) t[c * rows + r] = w[src + c];
  }
  return t;
}

/** Graph pieces shared by both MLPs: the linear layers call linear(i, L, x) -> output name. */
function mlpGraph({ input, layers, output, linear, opsets }) {
  const nodes = [];
  const initializers = [];
  let x = 'X';
  const last = layers.length - 1;
  for (const [i, L] of layers.entries()) {
    const y = i === last ? 'Y' : `h${i}`;
    if (L.type === 'relu') {
      nodes.push({ opType: 'Relu', inputs: [x], outputs: [y], name: `relu${i}` });
    } else {
      linear({ i, L, x, y, nodes, initializers });
    }
    x = y;
  }
  return encodeModel({
    nodes,
    initializers,
    inputs: [{ name: 'X', elemType: DataType.FLOAT, dims: ['batch', input] }],
    outputs: [{ name: 'Y', elemType: DataType.FLOAT, dims: ['batch', output] }],
    opsets,
  });
}

/** A float32 MLP: per linear layer MatMul(x, W^T) then Add(bias) when there is one. */
export function mlpF32Model({ input, layers }) {
  const output = checkMlp(input, layers, 'mlpF32Model');
  return mlpGraph({
    input,
    layers,
    output,
    opsets: { '': 17 },
    linear({ i, L, x, y, nodes, initializers }) {
      const w = `W${i}`;
      initializers.push({ name: w, dataType: DataType.FLOAT, dims: [L.cols, L.rows], data: transpose(L.weights, L.rows, L.cols) });
      const mm = L.bias ? `mm${i}` : y;
      nodes.push({ opType: 'MatMul', inputs: [x, w], outputs: [mm], name: `matmul${i}` });
      if (L.bias) {
        initializers.push({ name: `B${i}`, dataType: DataType.FLOAT, dims: [L.rows], data: L.bias });
        nodes.push({ opType: 'Add', inputs: [mm, `B${i}`], outputs: [y], name: `add${i}` });
      }
    },
  });
}

/**
 * The MLP as onnxruntime.quantization.quantize_dynamic (QInt8 weights, per tensor) writes it, per
 * linear layer:
 *   DynamicQuantizeLinear(x) -> x_q (uint8), x_scale, x_zero_point     (per tensor, asymmetric)
 *   MatMulInteger(x_q, W_q, x_zero_point, W_zero_point) -> int32        (W_q int8 [in, out], W_zp 0)
 *   Mul(x_scale, W_scale) -> s;  Cast(int32 -> float);  Mul(., s);  Add(bias)
 * layers[i].weights are int8 codes, layers[i].scale the float32 scale of the tensor.
 */
export function mlpDynamicInt8Model({ input, layers }) {
  const output = checkMlp(input, layers, 'mlpDynamicInt8Model');
  return mlpGraph({
    input,
    layers,
    output,
    opsets: { '': 17 },
    linear({ i, L, x, y, nodes, initializers }) {
      if (!(L.weights instanceof Int8Array)) throw new RangeError(`mlpDynamicInt8Model: layers[${i}].weights must be an Int8Array`);
      const n = (s) => `${s}${i}`;
      initializers.push(
        { name: n('W_q'), dataType: DataType.INT8, dims: [L.cols, L.rows], data: transpose(L.weights, L.rows, L.cols) },
        { name: n('W_scale'), dataType: DataType.FLOAT, dims: [], data: Float32Array.of(L.scale) },
        { name: n('W_zp'), dataType: DataType.INT8, dims: [], data: Int8Array.of(0) },
      );
      nodes.push(
        { opType: 'DynamicQuantizeLinear', inputs: [x], outputs: [n('x_q'), n('x_scale'), n('x_zp')], name: n('quant') },
        { opType: 'MatMulInteger', inputs: [n('x_q'), n('W_q'), n('x_zp'), n('W_zp')], outputs: [n('acc')], name: n('matmul') },
        { opType: 'Mul', inputs: [n('x_scale'), n('W_scale')], outputs: [n('scale')], name: n('scales') },
        { opType: 'Cast', inputs: [n('acc')], outputs: [n('acc_f')], attributes: { to: DataType.FLOAT }, name: n('cast') },
      );
      const mul = L.bias ? n('mul') : y;
      nodes.push({ opType: 'Mul', inputs: [n('acc_f'), n('scale')], outputs: [mul], name: n('rescale') });
      if (L.bias) {
        initializers.push({ name: n('B'), dataType: DataType.FLOAT, dims: [L.rows], data: L.bias });
        nodes.push({ opType: 'Add', inputs: [mul, n('B')], outputs: [y], name: n('add') });
      }
    },
  });
}
