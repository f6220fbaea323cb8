// Type declarations for tilelli's JS API. Hand-written, and type-checked against an example
// that calls every function (test/types/example.ts) so they cannot drift from js/index.js.

/** Float32 weights: a Float32Array, or a plain array / other numeric typed array (converted to float32). */
export type Weights = Float32Array | ArrayLike<number>;

/** The stable error codes (the C core's tl_status names). */
export type TilelliErrorCode =
  | 'NULL_POINTER'
  | 'EMPTY'
  | 'NON_FINITE'
  | 'RANK'
  | 'SHAPE'
  | 'OVERFLOW'
  | 'INVALID_BAND'
  | 'INVALID_ALPHA'
  | 'OUT_OF_MEMORY'
  | 'INVALID_ARGUMENT'
  /** Packed bytes are not valid for their format: an i2 code 3, a tq1 byte that is no
   *  encoding, a bitplane bit set in both planes, or padding that is not a zero trit; or a
   *  tokenizer file of a kind Tokenizer does not read. */
  | 'INVALID_FORMAT'
  /** A buffer's length does not match the shapes: packed bytes, activations, scales, an
   *  index list, or a sparse index that is not below cols. */
  | 'SIZE_MISMATCH'
  /** A trit is not -1, 0 or +1. */
  | 'INVALID_TRIT'
  /** A PackedMatrix, Model or Safetensors was used after free(). */
  | 'FREED'
  /** A file is malformed: truncated, a bad header, offsets out of range or overlapping, ... */
  | 'PARSE'
  /** A packed model file of a later format version than this library reads. */
  | 'UNSUPPORTED_VERSION'
  /** A checkpoint tensor of a dtype this library does not read (it reads F32, F16, BF16, I8, U8). */
  | 'INVALID_DTYPE';

/** Every error tilelli throws. After one, the instance keeps working. */
export class TilelliError extends Error {
  constructor(code: TilelliErrorCode, message: string, options?: { cause?: unknown; status?: number });
  readonly name: 'TilelliError';
  /** Stable, machine-readable: switch on this, not on the message. */
  readonly code: TilelliErrorCode;
  /** The C tl_status value (negative) when the error came from the core. */
  readonly status: number | undefined;
}

/** The shipped builds: relaxed SIMD, SIMD128, scalar. */
export type Build = 'relaxed' | 'simd' | 'scalar';

export interface InitOptions {
  /**
   * Force a build. Default: 'relaxed' where the runtime validates relaxed SIMD and the instance
   * passes its known-answer self-test, else 'simd' where SIMD128 validates, else 'scalar'.
   * Forcing one the runtime cannot run (or whose self-test fails) throws INVALID_ARGUMENT.
   */
  build?: Build;
  /** Older form of `build`: true is 'simd' (SIMD128), false is 'scalar'. */
  simd?: boolean;
  /** A compiled module of one of dist/tilelli-{relaxed,simd,scalar}.wasm (or a threaded -mt file), for runtimes that import .wasm. */
  module?: WebAssembly.Module;
  /** The bytes of one of the .wasm builds. */
  bytes?: BufferSource;
  /** Where to fetch (or, under Node, read) one of the .wasm builds. */
  url?: string | URL;
  /** Maximum wasm memory in bytes (default and upper limit 4 GiB). Allocations past it throw OUT_OF_MEMORY. */
  maxMemory?: number;
  /**
   * Threads for the products (the calling one included), 1 to 64. Default: min(4, cores) where a
   * shared wasm memory can be used (Node, Deno, pages that are crossOriginIsolated: COOP
   * same-origin + COEP require-corp), else 1. Where threads cannot run (workerd, a page that is
   * not isolated, the scalar build) the library runs on one thread, with the same results.
   * Workers start once, in init(); calls stay synchronous on the calling thread.
   */
  threads?: number;
}

/** The six numbers of the reference's deadzone_stats. */
export interface DeadzoneStats {
  /** Per-tensor AbsMean scale. */
  alpha: number;
  /** Fraction of weights rounding to -1. */
  fracNeg: number;
  /** Fraction rounding to 0. */
  fracZero: number;
  /** Fraction rounding to +1. */
  fracPos: number;
  /** Fraction with | |w/alpha| - 0.5 | < band: the deadzone-trap candidates. */
  fracBoundary: number;
  /** Fraction with w/alpha != 0 and |w/alpha| < 0.5 - band: deeply zero. */
  fracZeroInner: number;
}

/**
 * A packed ternary format (docs/FORMATS.md gives every byte; TL_FORMAT_VERSION 1):
 * - `'i2'`: 2 bits per weight (code = trit + 1), blocks of 64 weights in 16 bytes;
 * - `'tq1'`: 5 trits per byte in base 3 (1.6 bits per weight), blocks of 80 weights in 16 bytes;
 * - `'bitplane'`: a +1 plane and a -1 plane of 1 bit per weight, each padded to 128 bits per row.
 */
export type MatrixFormat = 'i2' | 'tq1' | 'bitplane';

/** The shape of a matrix: [rows, cols], both positive integers. */
export type MatrixShape = readonly [rows: number, cols: number];

/** Trits (-1, 0, +1): an Int8Array, or a plain array of integers (converted). */
export type Trits = Int8Array | readonly number[];

/** Bytes: a Uint8Array, or a plain array of integers 0..255 (converted). */
export type Bytes = Uint8Array | readonly number[];

/** One list of column indices: a Uint32Array, or a plain array of non-negative integers. */
export type ColumnIndices = Uint32Array | readonly number[];

/**
 * Scales of a matrix: one number (per tensor: the same value on every row), or one float32
 * per row. Stored as float32; each must be finite.
 */
export type MatrixScales = number | Weights;

/** Options of PackedMatrix.fromWeights. */
export interface FromWeightsOptions {
  /** The packed format. Default 'i2'. */
  format?: MatrixFormat;
  /** One AbsMean scale per row (ternarySignsPerRow) instead of one per tensor (ternarySigns). Default false. */
  perRow?: boolean;
}

/** Options of PackedMatrix.fromTrits and PackedMatrix.fromPacked. */
export interface FromTritsOptions {
  /** The packed format. Default 'i2'. */
  format?: MatrixFormat;
  /** One scale for every row, or one per row. Default 1. */
  scales?: MatrixScales;
}

/** Options of the products: `raw: true` returns the int32 accumulators instead of float outputs. */
export interface MatmulOptions {
  raw?: boolean;
}

/** Options of matmulInt8. */
export interface MatmulInt8Options extends MatmulOptions {
  /**
   * The per-vector activation scales s of quantizeActivations (one per batch vector, finite and
   * > 0): the float outputs are (acc * scale[r]) / s. Default: s = 1. Ignored with raw: true.
   */
  scales?: Weights;
}

/** quantizeActivations' result. */
export interface QuantizedActivations {
  /** batch x cols int8 values: clamp(round_half_even(x * s), -128, 127). */
  values: Int8Array;
  /** One scale per vector: s = 127 / max(max |x|, 1e-5), float32. */
  scales: Float32Array;
}

/**
 * A packed ternary matrix in wasm memory: rows x cols trits in one of the MatrixFormats plus one
 * float32 scale per row. Made by the static constructors (never with `new`), used by the
 * products, released by free() (or `using`, through Symbol.dispose). Outputs of the products are
 * batch x rows, batch-major (output b * rows + r is row r against vector b).
 *
 * Available as `tl.PackedMatrix` on an initialized instance: each instance has its own class,
 * and a matrix belongs to the instance that made it.
 */
declare class PackedMatrix {
  private constructor();

  /**
   * Quantize float32 weights [rows, cols] as the reference does (trits and AbsMean scale, per
   * tensor or per row) and pack them, in one call. Same trits and scales as ternarySigns (the
   * one alpha on every row) or ternarySignsPerRow.
   * @throws TilelliError NON_FINITE (a NaN or infinity in w), SIZE_MISMATCH (w.length is not
   *   rows * cols), INVALID_ARGUMENT (bad shape, format or options)
   */
  static fromWeights(w: Weights, shape: MatrixShape, options?: FromWeightsOptions): PackedMatrix;

  /**
   * Pack trits (rows x cols, row-major, each -1, 0 or +1) with the given scales.
   * @throws TilelliError INVALID_TRIT, SIZE_MISMATCH (trits or scales count), NON_FINITE (a scale),
   *   INVALID_ARGUMENT
   */
  static fromTrits(trits: Trits, shape: MatrixShape, options?: FromTritsOptions): PackedMatrix;

  /**
   * Adopt packed bytes of a format (e.g. what bytes() and scales() saved), validated first.
   * @throws TilelliError INVALID_FORMAT (a code that is no trit, overlapping bitplanes, nonzero
   *   padding), SIZE_MISMATCH (byte length or scales count), NON_FINITE (a scale), INVALID_ARGUMENT
   */
  static fromPacked(bytes: Bytes, shape: MatrixShape, options?: FromTritsOptions): PackedMatrix;

  /** Number of rows (outputs per activation vector). */
  readonly rows: number;
  /** Number of columns (the activation vector length). */
  readonly cols: number;
  /** The packed format. */
  readonly format: MatrixFormat;
  /** Size of the packed bytes: packedSize([rows, cols], format). */
  readonly byteLength: number;
  /** True once free() ran. */
  readonly freed: boolean;

  /** A copy of the packed bytes (byteLength of them; layout in docs/FORMATS.md). @throws FREED */
  bytes(): Uint8Array;
  /** A copy of the rows float32 scales (a per-tensor scale repeated on every row). @throws FREED */
  scales(): Float32Array;
  /** The trits, rows x cols, row-major. @throws FREED */
  /**
   * Sparse vectors (mostly zeros) read only their nonzero columns, through a column copy of the
   * trits built on first use (as many bytes as the i2 rows): the same outputs. false frees the copy
   * and keeps every product on the rows; true, the default, allows it again.
   */
  setColumnCopy(allow: boolean): void;
  trits(): Int8Array;

  /**
   * Binary activations, bit-packed: ceil(cols / 8) bytes per vector (bit j of byte k is element
   * 8k + j; bits past cols are ignored); batch = bits.length / ceil(cols / 8).
   * Returns acc * scale[r] as float32, or the int32 accumulators sum(trit where bit set) with raw.
   * @throws TilelliError SIZE_MISMATCH (length not a positive multiple), FREED, INVALID_ARGUMENT
   */
  matmulBinary(bits: Bytes, options?: { raw?: false }): Float32Array;
  matmulBinary(bits: Bytes, options: { raw: true }): Int32Array;
  matmulBinary(bits: Bytes, options?: MatmulOptions): Float32Array | Int32Array;

  /**
   * Sparse binary activations as active column indices: one list (batch 1), or an array of lists
   * (one per batch vector; an index repeated counts twice). Same outputs as matmulBinary.
   * @throws TilelliError SIZE_MISMATCH (an index >= cols), FREED, INVALID_ARGUMENT
   */
  matmulSparse(indices: ColumnIndices | readonly ColumnIndices[], options?: { raw?: false }): Float32Array;
  matmulSparse(indices: ColumnIndices | readonly ColumnIndices[], options: { raw: true }): Int32Array;
  matmulSparse(indices: ColumnIndices | readonly ColumnIndices[], options?: MatmulOptions): Float32Array | Int32Array;

  /**
   * int8 activations, batch x cols (e.g. quantizeActivations(x, cols).values). Returns
   * (acc * scale[r]) / s as float32 (s from options.scales, or 1), or the int32 accumulators
   * sum(trit * x) with raw.
   * @throws TilelliError SIZE_MISMATCH (length, scales count), INVALID_ALPHA (a scale not finite
   *   or 0), FREED, INVALID_ARGUMENT
   */
  matmulInt8(values: Trits, options?: MatmulInt8Options & { raw?: false }): Float32Array;
  matmulInt8(values: Trits, options: MatmulInt8Options & { raw: true }): Int32Array;
  matmulInt8(values: Trits, options?: MatmulInt8Options): Float32Array | Int32Array;

  /**
   * float32 activations, batch x cols: sum(+x where trit = +1, -x where trit = -1) * scale[r], with
   * each vector held in 23-bit fixed point (every x within max|x| * 2^-23) and summed exactly in
   * integers. Every build returns the same bits, and a vector's outputs are the same at any batch.
   * @throws TilelliError NON_FINITE, SIZE_MISMATCH, FREED, INVALID_ARGUMENT
   */
  matmulFloat(values: Weights): Float32Array;

  /** Release the wasm memory. A second call does nothing; any other use afterwards throws FREED. */
  free(): void;
  /** free(), for `using m = tl.PackedMatrix.fromWeights(...)`. */
  [Symbol.dispose](): void;
}

export type { PackedMatrix };

// Symbol.dispose is in TypeScript's lib only from 'esnext.disposable' on (Node >= 20 has it at run
// time); declaring it here lets the declarations type-check under older lib settings too. The
// declaration merges with lib.esnext.disposable's identical one where that lib is loaded.
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
}

/** What every instance holds, the serving one (tilelli/serve) included. */
export interface TilelliBase {
  /** True when a SIMD build is running (SIMD128, or relaxed SIMD, which includes it). */
  readonly simd: boolean;
  /** Which build is running. */
  readonly build: Build;
  /** How many threads run the products (1 where threads cannot run: see InitOptions.threads). */
  readonly threads: number;
  /** Library version, "MAJOR.MINOR.PATCH". */
  readonly version: string;
  /**
   * What this instance holds: bytes and blocks allocated by the library (matrices; nothing else
   * stays allocated between calls) and the size of its wasm memory, which never shrinks.
   */
  memoryStats(): { liveBytes: number; liveBlocks: number; wasmBytes: number };
  /** The error class (the same as the module export), for code that loaded tilelli with require(). */
  readonly TilelliError: typeof TilelliError;
}

/**
 * The serving API (init() of 'tilelli/serve'): the Model class alone, over the serving builds
 * (dist/tilelli-serve-relaxed.wasm, -simd.wasm), which start in about a third of the time.
 */
export interface TilelliServe extends TilelliBase {
  /** Packed model files: load, run, predict (the same class as Tilelli.Model). */
  readonly Model: typeof Model;
}

/** The whole API (init() of 'tilelli'). */
export interface Tilelli extends TilelliBase {
  /** max(mean(|w|), 1e-5), as a float32 value: the reference's absmean_scale. */
  absmeanScale(w: Weights): number;
  /** One AbsMean scale per row (first axis = rows, the rest flattened): absmean_scale_per_row. */
  absmeanScalePerRow(w: Weights, shape: readonly number[]): Float32Array;
  /** clamp(round(w / alpha), -1, 1) * alpha with the per-tensor scale: ternary_values. */
  ternaryValues(w: Weights): Float32Array;
  /** ternary_values_per_row: each row with its own scale. */
  ternaryValuesPerRow(w: Weights, shape: readonly number[]): Float32Array;
  /** The trits in {-1, 0, +1} and the per-tensor scale: ternary_signs. */
  ternarySigns(w: Weights): { trits: Int8Array; alpha: number };
  /** Per-row trits and one scale per row. */
  ternarySignsPerRow(w: Weights, shape: readonly number[]): { trits: Int8Array; alphas: Float32Array };
  /** ternarize_lsq forward with a given scale (finite, > 0 in float32): q * alpha. */
  ternarizeLsq(w: Weights, alpha: number): Float32Array;
  /** deadzone_stats(w, band): trit fractions and boundary-band occupancy. band defaults to 0.1. */
  deadzoneStats(w: Weights, band?: number): DeadzoneStats;

  /** Packed ternary matrices in this instance's wasm memory (static constructors only). */
  readonly PackedMatrix: typeof PackedMatrix;

  /**
   * Pack trits (rows x cols, row-major, each -1, 0 or +1) into a format's bytes (docs/FORMATS.md);
   * format defaults to 'i2'. @throws TilelliError INVALID_TRIT, SIZE_MISMATCH, INVALID_ARGUMENT
   */
  pack(trits: Trits, shape: MatrixShape, format?: MatrixFormat): Uint8Array;
  /**
   * Unpack a format's bytes (validated) into rows x cols trits. unpack(pack(t)) is t.
   * @throws TilelliError INVALID_FORMAT, SIZE_MISMATCH (byte length), INVALID_ARGUMENT
   */
  unpack(bytes: Bytes, shape: MatrixShape, format?: MatrixFormat): Int8Array;
  /** Bytes of a packed [rows, cols] matrix: rows * (bytes of one padded row). */
  packedSize(shape: MatrixShape, format?: MatrixFormat): number;
  /**
   * The BitNet b1.58 per-token activation quantizer, per vector of cols values (x holds batch
   * vectors): s = 127 / max(max |x|, 1e-5), values = clamp(round_half_even(x * s), -128, 127),
   * all in float32. Feed the result to PackedMatrix.matmulInt8(values, { scales }).
   * @throws TilelliError NON_FINITE, SIZE_MISMATCH (x.length not a positive multiple of cols),
   *   INVALID_ARGUMENT
   */
  quantizeActivations(x: Weights, cols: number): QuantizedActivations;

  /** safetensors checkpoints, validated by the C parser. */
  readonly Safetensors: typeof Safetensors;
  /** Packed model files: load, run, predict. */
  readonly Model: typeof Model;
  /** The packed model file (docs/FORMATS.md) of a layer list, built and written by the C core. */
  packModel(spec: ModelSpec): Uint8Array;
  /** A checkpoint plus an architecture description -> the packed model file. */
  packCheckpoint(checkpoint: Uint8Array | ArrayBuffer | Safetensors, arch: Architecture,
    options?: { format?: MatrixFormat; activations?: Activations; onProgress?: (p: { layer: number; of: number }) => void }): Uint8Array;
  /** Transformers with ternary projections (BitNet b1.58, Llama-style): load, logits, generate. */
  readonly LanguageModel: typeof LanguageModel;
  /** STE training of ternary MLPs on the main thread (see startTraining for a worker). */
  readonly Network: typeof Network;
  /** The packed format names, from the core's format table. */
  readonly formats: readonly MatrixFormat[];
}

/** Activation precision of a linear layer: float32 (the reference's numbers) or BitNet's per-token int8. */
export type Activations = 'float' | 'int8';

/** One tensor of a checkpoint. */
export interface TensorInfo {
  readonly name: string;
  /** Every byte-sized dtype of the safetensors spec; read() converts all but C64 to float32. */
  readonly dtype: 'F64' | 'F32' | 'F16' | 'BF16' | 'F8_E4M3' | 'F8_E5M2' | 'F8_E8M0' | 'I64' | 'I32' | 'I16' | 'I8'
    | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL' | 'C64';
  readonly shape: number[];
  readonly byteLength: number;
}

/** A safetensors checkpoint in wasm memory. Free it when done (or `using`). */
declare class Safetensors {
  private constructor();
  /** Parse and validate a whole file. @throws TilelliError PARSE, INVALID_DTYPE, OVERFLOW, OUT_OF_MEMORY */
  static open(bytes: Uint8Array | ArrayBuffer): Safetensors;
  readonly tensors: readonly TensorInfo[];
  readonly metadata: Readonly<Record<string, string>>;
  /** A tensor's description. @throws TilelliError INVALID_ARGUMENT (no such tensor), FREED */
  tensor(name: string): TensorInfo;
  /** A tensor's values as float32 (F16/BF16 widened exactly). */
  read(name: string): Float32Array;
  free(): void;
  [Symbol.dispose](): void;
}

/** A layer of a ModelSpec (see docs/FORMATS.md for what each computes). */
export type ModelLayer = { name?: string } & (
  | { type: 'linear'; matrix: PackedMatrix; bias?: Weights; activations?: Activations; quantizer?: RecordedQuantizer }
  | { type: 'bitlinear'; matrix: PackedMatrix; bias?: Weights; normWeight?: Weights; eps?: number; quantizer?: RecordedQuantizer }
  | { type: 'relu' | 'gelu' | 'silu' | 'softmax' }
  | { type: 'rmsnorm'; weight?: Weights; eps?: number }
  | { type: 'binarize'; threshold: number }
  | { type: 'binarize'; k: number });

/** How a layer's trits and scales were made (recorded in the file, informational). */
export type RecordedQuantizer = 'per_tensor' | 'per_row' | 'lsq' | 'lsq_paper';

export interface ModelSpec {
  /** Width of an input vector. */
  input: number;
  layers: ModelLayer[];
  metadata?: Record<string, string | number | boolean>;
}

/** The architecture description packCheckpoint (and the CLI's pack) read: tensor names, not matrices. */
export interface Architecture {
  input: number;
  layers: Array<
    | { type: 'linear'; name?: string; weight: string; bias?: string; quantizer?: 'per_tensor' | 'per_row'; activations?: Activations; format?: MatrixFormat }
    | { type: 'bitlinear'; name?: string; weight: string; bias?: string; norm_weight?: string; eps?: number; quantizer?: 'per_tensor' | 'per_row'; format?: MatrixFormat }
    | { type: 'relu' | 'gelu' | 'silu' | 'softmax'; name?: string }
    | { type: 'rmsnorm'; name?: string; weight?: string; eps?: number }
    | { type: 'binarize'; name?: string; threshold: number }
    | { type: 'binarize'; name?: string; k: number }>;
  metadata?: Record<string, string>;
}

/** A layer of a loaded model, as the core describes it (tl_model_describe). */
export interface ModelLayerInfo {
  readonly type: 'linear' | 'bitlinear' | 'relu' | 'gelu' | 'silu' | 'rmsnorm' | 'binarize' | 'softmax';
  readonly name?: string;
  readonly in: number;
  readonly out: number;
  /** linear, bitlinear: the packed format of the weights. */
  readonly weights?: MatrixFormat;
  /** linear, bitlinear: how the trits were made, when the file records it. */
  readonly quantizer?: RecordedQuantizer;
  /** linear, bitlinear: the activation precision it runs with. */
  readonly activations?: Activations;
  /** Byte counts of the layer's data (packed weights, scales, bias, norm weights), when present. */
  readonly packed?: number;
  readonly scales?: number;
  readonly bias?: number;
  readonly norm_weight?: number;
  readonly eps?: number;
  readonly k?: number;
  readonly threshold?: number;
}

/** A packed model in wasm memory. */
declare class Model {
  private constructor();
  /**
   * Load a packed model file: validated, nothing re-quantized. options.activations sets every linear
   * layer's activation precision whatever the file says.
   * @throws TilelliError PARSE, UNSUPPORTED_VERSION, INVALID_FORMAT, NON_FINITE (with what and where)
   */
  static load(bytes: Uint8Array | ArrayBuffer, options?: { activations?: Activations }): Model;
  /**
   * Download a packed model file (streamed; fetch in browsers, workers, Deno, Node) and load it.
   * onProgress after each chunk: total is the Content-Length when the server sent one. signal
   * aborts the download (the promise rejects with its AbortError).
   * @throws TilelliError INVALID_ARGUMENT (an HTTP error status), PARSE, UNSUPPORTED_VERSION
   */
  static fromURL(url: string | URL, options?: { onProgress?: (p: { loaded: number; total: number | undefined }) => void;
    signal?: AbortSignal; activations?: Activations }): Promise<Model>;
  /**
   * Load a packed model file from a fetch Response (what fromURL does after its fetch). With a
   * Content-Length (and no Content-Encoding) the body is written straight into the wasm memory the
   * model keeps, chunk by chunk: no whole copy of the file in JavaScript. A body longer or shorter
   * than its Content-Length is INVALID_ARGUMENT.
   * @throws TilelliError INVALID_ARGUMENT, OUT_OF_MEMORY, PARSE, UNSUPPORTED_VERSION
   */
  static fromResponse(response: Response, options?: { onProgress?: (p: { loaded: number; total: number | undefined }) => void;
    activations?: Activations }): Promise<Model>;
  /** True when the bytes start like a packed model file. */
  static isModelFile(bytes: Uint8Array | ArrayBuffer): boolean;
  readonly inputSize: number;
  readonly outputSize: number;
  readonly layers: readonly ModelLayerInfo[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly freed: boolean;
  /**
   * batch x outputSize outputs for batch x inputSize inputs; options.out receives them (no
   * allocation per call). @throws TilelliError SIZE_MISMATCH, NON_FINITE, FREED
   */
  run(input: Weights, options?: { out?: Float32Array }): Float32Array;
  /** The argmax of each output vector; options.out receives the outputs too (as for run()). */
  predict(input: Weights, options?: { out?: Float32Array }): Int32Array;
  /** Layer i's trits (out x in) and per-row scales. */
  trits(i: number): { trits: Int8Array; scales: Float32Array };
  /** The packed model file of this model (the core's writer). */
  save(): Uint8Array;
  /** The same model with every matrix repacked in another format. */
  convert(format: MatrixFormat): Model;
  /** Set every linear layer's activation precision. */
  setActivations(activations: Activations): void;
  /**
   * Sparse inputs: a layer whose input is mostly zeros (after a ReLU) reads only its nonzero
   * columns, through a column copy of its weights built on first use (as many bytes as the layer's
   * i2 weights): the same outputs, bit for bit. false frees the copies and keeps every layer on its
   * rows (less memory); true, the default, allows them again.
   */
  setColumnCopy(allow: boolean): void;
  /** Add or replace metadata entries (numbers and booleans are written as text). */
  addMetadata(metadata: Record<string, string | number | boolean>): void;
  free(): void;
  [Symbol.dispose](): void;
}

/** The quantizer of a trainable network's layers. */
export type NetworkQuantizer = 'per_tensor' | 'per_row' | 'lsq' | 'lsq_paper' | 'none';

/** A labelled set: n vectors of widths[0] values, and n class indices (cross-entropy) or n x outputs targets (MSE). */
export interface LabelledSet {
  x: Weights;
  labels?: ArrayLike<number>;
  targets?: Weights;
}

/** The training loop over one data set (C's tl_fit): what fit() and the training worker step. */
declare class Fit {
  private constructor();
  readonly count: number;
  /** Epochs completed. */
  readonly epoch: number;
  /** Samples taken so far in the current epoch. */
  readonly position: number;
  /** One optimizer step on the next mini-batch; its loss. */
  step(): number;
  /** Accuracy and loss on the last mini-batch, or on the whole set. */
  evaluate(options?: { whole?: boolean }): { accuracy: number; loss: number; count?: number };
  free(): void;
  [Symbol.dispose](): void;
}

/** An MLP of ternary linear layers trained with the straight-through estimator (src/train.c). */
declare class Network {
  private constructor();
  static create(options: { widths: number[]; activation?: TrainingActivation; quantizer?: NetworkQuantizer; seed?: number }): Network;
  /**
   * A network starting from a checkpoint's float weights (the shadow weights, not their trits)
   * and the architecture `tilelli pack --arch` reads: linear layers, one activation between them.
   * Integer and bool tensors of the checkpoint are ignored unless the architecture names them.
   * @throws TilelliError INVALID_ARGUMENT, SHAPE, INVALID_DTYPE, PARSE
   */
  static fromCheckpoint(checkpoint: Uint8Array | ArrayBuffer | Safetensors, architecture: Architecture,
    options?: { quantizer?: NetworkQuantizer; seed?: number }): Network;
  /** A network that computes what a packed model computes, to fine-tune it. */
  static fromModel(bytes: Uint8Array | ArrayBuffer, options?: { quantizer?: NetworkQuantizer; seed?: number }): Network;
  readonly widths: readonly number[];
  readonly config: Readonly<Record<string, unknown>>;
  readonly layerCount: number;
  readonly steps: number;
  /** The learning rate of the next step. */
  readonly lr: number;
  readonly freed: boolean;
  setLoss(loss: 'cross_entropy' | 'mse'): void;
  setOptimizer(options: { type?: 'adam' | 'adamw' | 'sgd'; lr?: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number; momentum?: number }): void;
  setSchedule(options: { type?: 'constant' | 'cosine'; warmupSteps?: number; totalSteps?: number }): void;
  setTequila(lambda: number): void;
  getLayer(k: number): { weight: Float32Array; bias: Float32Array; alpha: number };
  getGrads(k: number): { weight: Float32Array; bias: Float32Array; alpha: number };
  setLayer(k: number, layer: { weight: Weights; bias: Weights; alpha?: number }): void;
  gradients(x: Weights, targets: { labels?: ArrayLike<number>; targets?: Weights }): number;
  trainStep(x: Weights, targets: { labels?: ArrayLike<number>; targets?: Weights }): number;
  forward(x: Weights): Float32Array;
  evaluate(set: { x: Weights; labels: ArrayLike<number> }): { accuracy: number; loss: number; count: number };
  trits(k: number): { trits: Int8Array; scales: Float32Array };
  deadzoneStats(band?: number): DeadzoneStats[];
  loop(set: LabelledSet, options?: { batchSize?: number; seed?: number }): Fit;
  fit(set: LabelledSet, options?: { epochs?: number; batchSize?: number; seed?: number; onStep?: (s: { epoch: number; step: number; loss: number }) => boolean | void }): number[];
  /** The packed model file (a float32 network: ternarized per tensor). */
  toModel(options?: { format?: MatrixFormat; metadata?: Record<string, string | number | boolean> }): Uint8Array;
  free(): void;
  [Symbol.dispose](): void;
}

/** Load tilelli (the relaxed-SIMD, else SIMD128, else scalar build: see InitOptions.build) and return its API. */
export function init(options?: InitOptions): Promise<Tilelli>;

// The classes live on the API object (tl.Model, tl.Network, ...): each instance of the library
// binds its own. Their names are types here, for annotations.
export type { Safetensors, Model, Fit, Network };

/** True when this runtime validates WebAssembly SIMD128. */
export function simdSupported(): boolean;

/** True when this runtime validates WebAssembly relaxed SIMD (Node 20: only with --experimental-wasm-relaxed-simd). */
export function relaxedSupported(): boolean;

/**
 * The URL of a shipped build (true: 'simd', false: 'scalar'), of its threaded file ('simd-mt',
 * 'relaxed-mt') or of its serving file ('serve-simd', 'serve-relaxed').
 */
export function wasmUrl(build: Build | 'simd-mt' | 'relaxed-mt' | 'serve-simd' | 'serve-relaxed' | boolean): URL;

// ---------------------------------------------------------------------------------------------
// Training in a worker (js/worker.js, js/worker-entry.js)
// ---------------------------------------------------------------------------------------------

/** The activation between the layers of a trained MLP. */
export type TrainingActivation = 'relu' | 'gelu' | 'silu' | 'none';

/** How a trained layer's weights are ternarized: AbsMean per tensor or per row, LSQ's learned scale (with the paper's gradient for 'lsq_paper'), or float32 ('none'). */
export type TrainingQuantizer = 'per_tensor' | 'per_row' | 'lsq' | 'lsq_paper' | 'none';

/** Labelled samples: x holds labels.length rows of the network's input width. */
export interface TrainingSet {
  x: Float32Array;
  labels: Uint8Array | Uint32Array;
}

/** A new network: widths [inputs, hidden..., outputs]; initialized as PyTorch's nn.Linear from seed. */
export interface TrainingNetworkSpec {
  widths: readonly number[];
  /** Default 'relu'. */
  activation?: TrainingActivation;
  /** Default 'per_tensor'. */
  quantizer?: TrainingQuantizer;
  /** Default 0. */
  seed?: number;
}

/**
 * A packed model file (Network.toModel, job.export()) as the starting point: linear layers with
 * one activation (relu, gelu, silu) between them. The shadow weights are the trits times the
 * scales, set so that the quantizer gives back the same trits and scales (exactly for per-tensor
 * scales under 'per_tensor' and the LSQ quantizers, and for 'per_row'). The bytes are copied.
 */
export interface TrainingModelSpec {
  model: Uint8Array | ArrayBuffer;
  /** Default: the file's metadata.quantizer (Network.toModel writes it), else 'per_tensor'. */
  quantizer?: TrainingQuantizer;
  /** Default: the one the file uses. */
  activation?: TrainingActivation;
}

/**
 * A safetensors checkpoint and its architecture (what `tilelli pack --arch` reads) as the starting
 * point: the float weights become the shadow weights as they are (Network.fromCheckpoint), so
 * fine-tuning keeps them. The bytes are copied.
 */
export interface TrainingCheckpointSpec {
  checkpoint: Uint8Array | ArrayBuffer;
  architecture: Architecture;
  /** Default: the layers' own quantizer, else 'per_tensor'. */
  quantizer?: TrainingQuantizer;
  seed?: number;
}

export interface StartTrainingOptions {
  network: TrainingNetworkSpec | TrainingModelSpec | TrainingCheckpointSpec;
  /** Network.setOptimizer's options. Default Adam, lr 1e-3. */
  optimizer?: {
    type?: 'adam' | 'adamw' | 'sgd';
    lr?: number;
    beta1?: number;
    beta2?: number;
    eps?: number;
    weightDecay?: number;
    momentum?: number;
  };
  /** Linear warmup, then constant or cosine decay; totalSteps defaults to epochs * ceil(samples / batchSize). Default: constant, no warmup. */
  schedule?: { type?: 'constant' | 'cosine'; warmupSteps?: number; totalSteps?: number };
  /** Tequila's deadzone bias lambda (ternary quantizers only); 0 is off. */
  tequila?: number;
  /**
   * The training set. TRANSFERRED, not copied: when startTraining returns, the caller's x and
   * labels (their whole ArrayBuffers) are detached (length 0). Pass copies (x.slice()) to keep
   * yours. Checked in the worker: every x finite (else NON_FINITE), every label a class.
   */
  data: TrainingSet;
  /** Held-out samples (transferred too): the accuracy of epoch-end progress events and of the result. */
  test?: TrainingSet;
  /** Default 1. */
  epochs?: number;
  /** Default 64. */
  batchSize?: number;
  /** Seed of the shuffling: the same order as Network.fit with this seed. Default 0. */
  seed?: number;
  /** A progress event every this many steps, and one at each epoch end. Default 20. */
  progressEvery?: number;
  /**
   * Called on the main thread with each progress event. An exception it throws does not stop
   * training: it goes to onError, or to console.error.
   */
  onProgress?: (event: TrainingProgress) => void;
  /** Gets what onProgress threw. */
  onError?: (error: unknown) => void;
  /**
   * Cancels the job: the worker is asked for the weights of its last completed step (see
   * cancelTimeout), then terminated; done rejects with an AbortError DOMException.
   */
  signal?: AbortSignal;
  /** How long a cancel waits for the worker's final weights before terminating it anyway, in ms. Default 1000. */
  cancelTimeout?: number;
  /**
   * The worker to run in. Default: `new Worker(new URL('./worker-entry.js', import.meta.url),
   * { type: 'module' })` where Worker exists (browsers, Deno, Bun; webpack 5 and Vite bundle that
   * form), else a Node worker_threads Worker of the same file. A URL or string: the script to
   * start (e.g. js/worker-entry.js bundled as its own entry point, or a CSP-allowed copy). A
   * function: returns the Worker (web or worker_threads) or a promise of one.
   */
  worker?: string | URL | { postMessage(message: unknown, transfer?: unknown): void } | (() => unknown);
  /**
   * How the worker loads the wasm (init's options; a relative url is resolved against the page).
   * Default: the url of the latest init({ url }) in this thread (a bundled app says where the wasm
   * is once), else the shipped build next to the worker's loader.
   */
  init?: InitOptions;
  /** How long the worker computes before it yields to its event loop (to answer requests), in ms. Default 10. */
  chunkMs?: number;
}

/** Per layer: the deadzone statistics of its shadow weights, and the fraction of its trits that changed since the previous event. */
export interface TrainingLayerProgress extends DeadzoneStats {
  flipped: number;
}

/** A progress event (every progressEvery steps, and at each epoch end). */
export interface TrainingProgress {
  /** The epoch the last step belongs to, from 0. */
  epoch: number;
  /** Steps completed by this job. */
  step: number;
  /** epochs * ceil(samples / batchSize). */
  totalSteps: number;
  /** Mean training loss of the steps since the previous event. */
  loss: number;
  /** On the test set at epoch ends (when given), otherwise on the last batch after its step. */
  accuracy: number;
  accuracyOn: 'test' | 'batch';
  /** The learning rate of the last step. */
  lr: number;
  /** True for the event at an epoch's end. */
  epochEnd: boolean;
  /** One entry per layer. */
  layers: TrainingLayerProgress[];
  /** Fraction of all the network's trits that changed since the previous event (the first event: since the start), in [0, 1]. */
  flipped: number;
  /** Wall time since training started, pauses included, in ms. */
  ms: number;
}

/** What job.done resolves with. */
export interface TrainingResult {
  epochs: number;
  steps: number;
  /** The mean training loss of each epoch. */
  losses: number[];
  /** Accuracy and mean cross-entropy of the final weights, on the test set when given, else on the training set. */
  accuracy: number;
  loss: number;
  evaluatedOn: 'test' | 'train';
  /** Wall time of the training, pauses included, in ms. */
  ms: number;
}

/** job.evaluate()'s answer. */
export interface TrainingEvaluation {
  accuracy: number;
  /** Mean cross-entropy. */
  loss: number;
  /** Samples evaluated. */
  count: number;
  /** Steps completed when it was computed. */
  step: number;
}

/** One layer's float32 shadow weights. */
export interface TrainingLayerWeights {
  /** out x in, row-major. */
  weight: Float32Array;
  bias: Float32Array;
  /** The LSQ scale (other quantizers ignore it). */
  alpha: number;
  /** The trits and per-row scales the forward uses (the network's quantizer; float32: per tensor). */
  trits: Int8Array;
  scales: Float32Array;
  shape: [out: number, inputs: number];
}

/** Every layer's weights, and the step they are the result of. */
export type TrainingWeights = TrainingLayerWeights[] & { readonly step: number };

/** Options every job method takes: its own signal rejects that call (with an AbortError) without touching the job. */
export interface TrainingCallOptions {
  signal?: AbortSignal;
}

export type TrainingState = 'starting' | 'training' | 'paused' | 'done' | 'failed' | 'cancelling' | 'cancelled' | 'terminated';

/**
 * A training job in a worker. The worker answers requests between two steps. After done it stays
 * (idle; it does not keep a Node process alive) for evaluate, export and weights until
 * terminate(). Methods called after the worker is gone reject with TilelliError FREED, except
 * weights(), which then gives the latest weights the worker sent.
 */
export interface TrainingJob {
  /**
   * Resolves when the last epoch ends. Rejects with an AbortError DOMException after a cancel
   * (the signal) or terminate(), and with a TilelliError of the worker's code and message when
   * training failed in it (e.g. NON_FINITE).
   */
  readonly done: Promise<TrainingResult>;
  readonly state: TrainingState;
  /** Steps completed, as of the latest event or answer. */
  readonly step: number;
  /** Known from the first progress event; 0 before. */
  readonly totalSteps: number;
  /** The Worker (web) or worker_threads Worker (Node) the job runs in, once created. */
  readonly worker: unknown;
  /** Stop between two steps; resolves once the worker has stopped (no step runs until resume()). */
  pause(options?: TrainingCallOptions): Promise<{ step: number }>;
  resume(options?: TrainingCallOptions): Promise<{ step: number }>;
  /** Accuracy and loss of the current weights on data (copied, not transferred), or on the test set (else the training set). */
  evaluate(data?: TrainingSet, options?: TrainingCallOptions): Promise<TrainingEvaluation>;
  /** The packed model file of the current weights (Network.toModel): load it with tl.Model.load. */
  export(options?: TrainingCallOptions & { format?: MatrixFormat; metadata?: Record<string, string | number | boolean> }): Promise<Uint8Array>;
  /**
   * The weights as of the last completed step: asked of the worker (waiting at most timeout ms,
   * default 1000), else, and after the worker is gone, the latest it sent (at the start, at epoch
   * ends, at the end, at a cancel, before an error).
   */
  weights(options?: TrainingCallOptions & { timeout?: number }): Promise<TrainingWeights>;
  /** Terminate the worker now: what is pending (done too, if still training) rejects with an AbortError. Resolves once it is gone. */
  terminate(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

declare global {
  interface SymbolConstructor {
    readonly asyncDispose: unique symbol;
  }
}

/**
 * Train an MLP in a worker (a module Web Worker, or a Node worker_thread). Returns at once; bad
 * options throw a TilelliError (INVALID_ARGUMENT, SIZE_MISMATCH) before anything is transferred.
 */
export function startTraining(options: StartTrainingOptions): TrainingJob;

// ---------------------------------------------------------------------------------------------
// Tokenizers (js/tokenizer.js): plain JS, usable without init()
// ---------------------------------------------------------------------------------------------

/**
 * tilelli's character-level tokenizer file: one id per character, for small models.
 * `vocab[id]` is the token of that id: one character (one code point), or a special token
 * listed in `special` (matched whole in text, like a tokenizer.json's added tokens).
 *
 *     { "type": "char", "version": 1, "vocab": ["<unk>", "<bos>", "<eos>", "\n", " ", "a", ...],
 *       "special": ["<unk>", "<bos>", "<eos>"], "unk": "<unk>", "bos": "<bos>", "eos": "<eos>",
 *       "add_bos": true, "add_eos": false }
 *
 * A character not in vocab encodes to `unk`, or throws INVALID_ARGUMENT when there is none.
 * `add_bos` / `add_eos` (default false) say what encode adds when addSpecialTokens is on.
 */
export interface CharTokenizerJSON {
  type: 'char';
  version?: 1;
  vocab: string[];
  special?: string[];
  unk?: string;
  bos?: string;
  eos?: string;
  add_bos?: boolean;
  add_eos?: boolean;
}

/** A token written in tokenizer_config.json: its text, or { content }. */
export type ConfigToken = string | { content: string } | null;

/** The fields of a Hugging Face tokenizer_config.json that Tokenizer.fromJSON reads. */
export interface TokenizerConfig {
  bos_token?: ConfigToken;
  eos_token?: ConfigToken;
  unk_token?: ConfigToken;
  pad_token?: ConfigToken;
  [key: string]: unknown;
}

/** JSON as text, UTF-8 bytes or the parsed value. */
export type JSONSource<T> = string | Uint8Array | ArrayBuffer | T;

export interface EncodeOptions {
  /** Add what the file adds around a text: a tokenizer.json's post-processor (Llama 3: BOS
   *  first), a character file's add_bos / add_eos. Default true, as in Hugging Face's tokenizers. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave out special tokens (added tokens marked "special", a character file's "special"). Default false. */
  skipSpecialTokens?: boolean;
}

/** Streaming decode for generation: feed ids as they come, get text only when it is complete UTF-8. */
export interface TokenDecoder {
  /** The text completed by these ids ('' while a character is still cut in two). @throws TilelliError INVALID_ARGUMENT (an id) */
  push(ids: number | ArrayLike<number>): string;
  /** End of the stream: what is left (U+FFFD for an incomplete character); the decoder can then start again. */
  end(): string;
}

/**
 * A tokenizer: byte-level BPE from a Hugging Face tokenizer.json (model "BPE": vocab and merges
 * as "a b" or ["a", "b"], ignore_merges, byte_fallback, unk_token; pre-tokenizers ByteLevel,
 * Split (an Oniguruma regex, translated) and Sequence, as in the GPT-2 and Llama-3 families;
 * normalizers NFC/NFD/NFKC/NFKD/Lowercase; added tokens matched in the text before BPE, with
 * lstrip / rstrip / single_word; post-processors TemplateProcessing, ByteLevel, Roberta, Bert
 * and Sequence; the ByteLevel or Fuse decoder), or tilelli's character-level form
 * (CharTokenizerJSON). Encodings are those of Hugging Face's tokenizers; decoding does not
 * "clean up tokenization spaces", so decode(encode(text)) gives text back.
 */
export class Tokenizer {
  private constructor();
  /**
   * Read a tokenizer.json or a character tokenizer file. `config`: the model's
   * tokenizer_config.json, which names BOS / EOS / UNK / PAD where the tokenizer.json does not.
   * @throws TilelliError PARSE (not JSON, a missing or ill-typed field, a merge or token not in
   * the vocabulary), INVALID_FORMAT (a model, pre-tokenizer, normalizer, decoder,
   * post-processor or regex construct this library does not read), UNSUPPORTED_VERSION,
   * INVALID_ARGUMENT (neither text, bytes nor an object)
   */
  static fromJSON(json: JSONSource<object | CharTokenizerJSON>, config?: JSONSource<TokenizerConfig>): Tokenizer;
  readonly kind: 'bpe' | 'char';
  /** One more than the largest id: the rows an embedding table needs. */
  readonly vocabSize: number;
  /** From tokenizer_config.json, else the token a TemplateProcessing post-processor puts first (Llama 3), else undefined. */
  readonly bosId: number | undefined;
  /** From tokenizer_config.json, else the first special token among </s>, <|end_of_text|>, <|endoftext|>, <eos>, <|eos|>. */
  readonly eosId: number | undefined;
  readonly unkId: number | undefined;
  readonly padId: number | undefined;
  /** The ids skipSpecialTokens leaves out, ascending. */
  readonly specialIds: readonly number[];
  /** Text to token ids. @throws TilelliError INVALID_ARGUMENT (not a string; a character tokenizer without unk meeting an unknown character) */
  encode(text: string, options?: EncodeOptions): Uint32Array;
  /** Token ids to text (bytes that are not UTF-8 become U+FFFD). @throws TilelliError INVALID_ARGUMENT (an id not an integer in [0, vocabSize) or with no token) */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** A streaming decoder (TokenDecoder) over this tokenizer. */
  decoder(options?: DecodeOptions): TokenDecoder;
  /** The id of a vocabulary string (byte-level form for BPE: ' the' is 'Ġthe'), or undefined. */
  idOf(token: string): number | undefined;
  /** The vocabulary string of an id; undefined for an unused id below vocabSize. @throws TilelliError INVALID_ARGUMENT (out of range) */
  tokenOf(id: number): string | undefined;
  /** Is the id a special token? @throws TilelliError INVALID_ARGUMENT (out of range) */
  isSpecial(id: number): boolean;
}

/** The configuration a LanguageModel runs with (Hugging Face key names, as read from config.json). */
export interface LanguageModelConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  max_position_embeddings: number;
  /** The KV cache's length in tokens. */
  context: number;
  hidden_act: 'relu2' | 'silu';
  tie_word_embeddings: boolean;
  /** The projections' activation precision now (setActivations changes it). */
  tilelli_activations: Activations;
  /** How the token embedding and head are held; absent: float32. */
  tilelli_embedding?: 'float16' | 'int8';
  format: MatrixFormat;
  rms_norm_eps: number;
  rope_theta: number;
  bos_token_id?: number;
  eos_token_id?: number;
}

export interface GenerateOptions {
  /** Default 64. */
  maxNewTokens?: number;
  /** 0 (the default): greedy. */
  temperature?: number;
  /** 0 (the default): no limit. */
  topK?: number;
  /** 1 (the default): no limit. */
  topP?: number;
  /** The same seed gives the same tokens. Default: random. */
  seed?: number;
  /** Strings or token ids that end generation (the tokenizer's EOS ends it too). */
  stop?: string | number | ReadonlyArray<string | number>;
  /** Aborting rejects the promise with the signal's reason. */
  signal?: AbortSignal;
  onToken?: (token: { id: number; text: string; index: number }) => void;
}

export interface Generation {
  text: string;
  tokens: Uint32Array;
  promptTokens: number;
  stopReason: 'length' | 'stop' | 'eos' | 'context';
  prefillMs: number;
  decodeMs: number;
  tokensPerSecond: number;
}

declare class LanguageModel {
  private constructor();
  /**
   * A model from a Hugging Face config.json and a safetensors file of the same tensor names;
   * projections are quantized on load (per tensor, the reference's rule). A Hugging Face packed
   * BitNet checkpoint (quantization_config "bitnet": U8 projections and weight_scale) is read
   * without loss; a GGUF file (llama.cpp's bitnet architectures, TQ1_0 / TQ2_0 / I2_S projections)
   * carries its config: leave config out. embedding: how the token embedding and head are held
   * (float16: half the memory; int8: a quarter, per-row scales).
   * @throws TilelliError PARSE (config or weights malformed, a tensor missing: the message names it),
   *   SHAPE, NON_FINITE, FORMAT, DTYPE, VERSION, OUT_OF_MEMORY, INVALID_ARGUMENT
   */
  static load(files: { config?: JSONSource<object>; weights: Uint8Array | ArrayBuffer; tokenizer?: Tokenizer | JSONSource<object> },
    options?: { context?: number; activations?: Activations; format?: MatrixFormat; embedding?: 'float32' | 'float16' | 'int8' }): LanguageModel;
  /**
   * Download and load: the packed file's URL, or { weights, config, tokenizer } URLs; onProgress
   * after each chunk; signal aborts.
   */
  static fromURL(urls: string | URL | { weights: string | URL; config?: string | URL; tokenizer?: string | URL },
    options?: { context?: number; activations?: Activations; format?: MatrixFormat; signal?: AbortSignal;
      onProgress?: (p: { file: 'config' | 'tokenizer' | 'weights'; loaded: number; total: number | undefined }) => void }): Promise<LanguageModel>;
  readonly config: LanguageModelConfig;
  readonly vocabSize: number;
  readonly context: number;
  readonly tokenizer: Tokenizer | undefined;
  /** Tokens fed so far. */
  readonly position: number;
  readonly freed: boolean;
  /** Feed tokens; the logits of the last one, or of every one with { all: true }. */
  logits(tokens: ArrayLike<number>, options?: { all?: boolean }): Float32Array;
  /**
   * The packed file (safetensors: packed projections, the config in its metadata); load({ weights })
   * reads it. With gguf: a GGUF file with projections of that type (TQ types: float16 row scales,
   * rows of whole 256-weight blocks); vocabulary adds a placeholder vocabulary for llama.cpp-based
   * runtimes.
   */
  save(options?: { gguf?: 'tq1_0' | 'tq2_0' | 'i2_s'; vocabulary?: boolean }): Uint8Array;
  /** Generate after the tokens fed so far (reset() first for a fresh start). */
  generate(prompt: string | ArrayLike<number>, options?: GenerateOptions): Promise<Generation>;
  reset(): void;
  setActivations(activations: Activations): void;
  free(): void;
  [Symbol.dispose](): void;
}
export type { LanguageModel };

// ---------------------------------------------------------------------------------------------
// A language model in a worker (js/lm-worker.js): no init() needed on this side
// ---------------------------------------------------------------------------------------------

/** What loadLanguageModel loads: the packed file (URL or bytes), or the three files all as URLs or all as contents. */
export type LanguageModelSource =
  | string | URL | Uint8Array | ArrayBuffer
  | { weights: string | URL; config?: string | URL; tokenizer?: string | URL }
  | { weights: Uint8Array | ArrayBuffer; config?: JSONSource<object>; tokenizer?: JSONSource<object> };

export interface LoadLanguageModelOptions {
  /** The KV cache's length in tokens (LanguageModel.load's). */
  context?: number;
  activations?: Activations;
  format?: MatrixFormat;
  /** How the embedding and head are held (LanguageModel.load's; a config.json source only). */
  embedding?: 'float32' | 'float16' | 'int8';
  /** After each downloaded chunk (URL sources). */
  onProgress?: (p: { file: 'config' | 'tokenizer' | 'weights'; loaded: number; total: number | undefined }) => void;
  /** Aborts the load (rejects with an AbortError) and ends the worker. */
  signal?: AbortSignal;
  /** Transfer the bytes to the worker instead of copying them (the caller's buffer is detached). Default false. */
  transfer?: boolean;
  /** init() options for the worker; default: the wasm URL of the latest init({ url }). */
  init?: InitOptions;
  /** The worker entry (tilelli/worker-entry.js) as a URL, a Worker, or a function returning one. */
  worker?: string | URL | { postMessage(message: unknown, transfer?: unknown): void } | (() => unknown);
}

/** A token as generation streams it. */
export interface GeneratedToken {
  id: number;
  /** The text this token completes ('' while a UTF-8 character is cut in two; '' without a tokenizer). */
  text: string;
  index: number;
}

/** stream()'s tokens; leaving the loop early cancels the generation. */
export interface GenerationStream extends AsyncIterableIterator<GeneratedToken> {
  /** The Generation once it ends. */
  readonly result: Promise<Generation>;
}

/**
 * A LanguageModel in a worker (a module Web Worker, a Deno worker or a Node worker_thread).
 * Requests run one after another in the worker; the same seed gives the main thread's tokens.
 * After free() or a failure of the worker, calls reject with TilelliError FREED.
 */
export interface WorkerLanguageModel {
  readonly config: LanguageModelConfig;
  readonly vocabSize: number;
  readonly context: number;
  /** Tokens fed so far, as of the worker's latest answer. */
  readonly position: number;
  /** The model came with a tokenizer: text prompts work. */
  readonly hasTokenizer: boolean;
  readonly freed: boolean;
  /** The Worker (web) or worker_threads Worker (Node). */
  readonly worker: unknown;
  /**
   * LanguageModel.generate in the worker. onToken as each token arrives; signal rejects at once
   * with an AbortError and stops the worker between two tokens (what was fed stays in the cache).
   * @throws TilelliError of the worker (code and message), FREED after free()
   */
  generate(prompt: string | ArrayLike<number>, options?: GenerateOptions): Promise<Generation>;
  /** generate() as an async iterator of tokens. */
  stream(prompt: string | ArrayLike<number>, options?: Omit<GenerateOptions, 'onToken'>): GenerationStream;
  logits(tokens: ArrayLike<number>, options?: { all?: boolean; signal?: AbortSignal }): Promise<Float32Array>;
  reset(): Promise<void>;
  setActivations(activations: Activations): Promise<void>;
  /** The packed file (LanguageModel.save). */
  save(): Promise<Uint8Array>;
  /** Free the model and end the worker; what is pending rejects with an AbortError. */
  free(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Load a language model in a worker. Bad arguments throw a TilelliError at once; a failed load
 * rejects with the worker's TilelliError (PARSE, SHAPE, INVALID_ARGUMENT for HTTP errors, ...).
 */
export function loadLanguageModel(source: LanguageModelSource, options?: LoadLanguageModelOptions): Promise<WorkerLanguageModel>;
