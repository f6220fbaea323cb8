// example.ts — uses every public function and type of tilelli through the package name, so
// `tsc -p test/types` fails when js/index.d.ts drifts from the API. The test suite also runs the
// compiled output (build/types/example.js) so the declared types are the ones returned at run time.
import { init, relaxedSupported, simdSupported, wasmUrl, TilelliError, Tokenizer } from 'tilelli';
import type {
  Build, DeadzoneStats, InitOptions, Tilelli, TilelliErrorCode, Weights, MatrixFormat, MatrixShape, PackedMatrix,
  QuantizedActivations, Safetensors, TensorInfo, Architecture, Model, ModelSpec,
  StartTrainingOptions, TrainingJob, TrainingProgress, TrainingResult, TrainingWeights, TrainingEvaluation,
  Network, TrainingCheckpointSpec,
  CharTokenizerJSON, TokenizerConfig, TokenDecoder, EncodeOptions, DecodeOptions,
} from 'tilelli';
import * as tilelli from 'tilelli';
import { init as initServe, TilelliError as ServeError } from 'tilelli/serve';
import type { TilelliServe } from 'tilelli/serve';

const options: InitOptions = { simd: simdSupported(), maxMemory: 64 * 1024 * 1024 };
const tl: Tilelli = await init(options);
const scalar: Tilelli = await init({ simd: false });
const url: URL = wasmUrl(true);
const build: Build = tl.build; // 'relaxed' where relaxedSupported() and the self-test passed
const forced: Build = (await init({ build: relaxedSupported() ? 'relaxed' : 'scalar' })).build;
const relaxedUrl: URL = wasmUrl('relaxed');
if (!['relaxed', 'simd', 'scalar'].includes(build) || !forced || !relaxedUrl.href.endsWith('tilelli-relaxed.wasm')) {
  throw new Error(`builds: ${build}, ${forced}, ${relaxedUrl.href}`);
}

const w: Weights = new Float32Array([0.5, -1.5, 2, -0.25, 0, 1, -1, 0.75]);
const plain: Weights = [0.5, -1.5, 2, -0.25];

const alpha: number = tl.absmeanScale(w);
const rowAlphas: Float32Array = tl.absmeanScalePerRow(w, [2, 4]);
const values: Float32Array = tl.ternaryValues(plain);
const rowValues: Float32Array = tl.ternaryValuesPerRow(w, [2, 2, 2]);
const signs: { trits: Int8Array; alpha: number } = tl.ternarySigns(w);
const rowSigns: { trits: Int8Array; alphas: Float32Array } = tl.ternarySignsPerRow(w, [4, 2]);
const lsq: Float32Array = tl.ternarizeLsq(w, 0.5);
const stats: DeadzoneStats = tl.deadzoneStats(w);
const stats2: DeadzoneStats = scalar.deadzoneStats(w, 0.25);

let code: TilelliErrorCode | undefined;
try {
  tl.absmeanScale([]);
} catch (e) {
  if (e instanceof TilelliError) code = e.code;
}

// Packed matrices: every constructor, property, method and format.
const shape: MatrixShape = [2, 4];
const formats: MatrixFormat[] = ['i2', 'tq1', 'bitplane'];
const fromWeights: PackedMatrix = tl.PackedMatrix.fromWeights(w, shape);
const perRowMatrix: PackedMatrix = tl.PackedMatrix.fromWeights([0.5, -1, 2, 0], [2, 2], { format: 'tq1', perRow: true });
const fromTrits: PackedMatrix = tl.PackedMatrix.fromTrits(new Int8Array([1, 0, -1, 1, 0, 0, 1, -1]), shape,
  { format: 'bitplane', scales: new Float32Array([0.5, 2]) });
const fromPacked: PackedMatrix = tl.PackedMatrix.fromPacked(fromWeights.bytes(), [fromWeights.rows, fromWeights.cols],
  { format: fromWeights.format, scales: fromWeights.scales() });
const packedTrits: Int8Array = fromPacked.trits();
const rows: number = fromPacked.rows + fromPacked.cols + fromPacked.byteLength;
const binary: Float32Array = fromTrits.matmulBinary(new Uint8Array([0b1011, 0b0110]));
const binaryAcc: Int32Array = fromTrits.matmulBinary([0b1011], { raw: true });
const sparse: Float32Array = fromTrits.matmulSparse([0, 1, 3]);
const sparseAcc: Int32Array = fromTrits.matmulSparse([new Uint32Array([0, 1, 3]), [1, 2]], { raw: true });
const quantized: QuantizedActivations = tl.quantizeActivations([0.1, -0.5, 0.25, 1, 2, -2, 0, 0.5], 4);
const int8: Float32Array = fromTrits.matmulInt8(quantized.values, { scales: quantized.scales });
const int8Acc: Int32Array = fromTrits.matmulInt8([1, -2, 3, 127], { raw: true });
const flag = Math.random() < 2;
const either: Float32Array | Int32Array = fromTrits.matmulInt8([1, -2, 3, 127], { raw: flag });
const floats: Float32Array = perRowMatrix.matmulFloat(new Float32Array([0.25, -1.5]));
const packed: Uint8Array = tl.pack([1, 0, -1, 1], [1, 4], 'tq1');
const unpacked: Int8Array = tl.unpack(packed, [1, 4], 'tq1');
const sizes: number[] = formats.map((f) => tl.packedSize([3, 100], f));
const defaultSize: number = tl.packedSize([1, 64]);
for (const m of [fromWeights, perRowMatrix, fromTrits]) m.free();
fromPacked[Symbol.dispose]();
const freed: boolean = fromPacked.freed && fromWeights.freed;
let freedCode: TilelliErrorCode | undefined;
try {
  fromPacked.bytes();
} catch (e) {
  if (e instanceof TilelliError) freedCode = e.code;
}

// Misuse the declarations must reject (never called: tsc fails if any line stops being an error).
export function misuse(): void {
  // @ts-expect-error: Model has no public constructor
  new tl.Model();
  // @ts-expect-error: a model runs on numbers, not strings
  tl.Model.load(new Uint8Array(0)).run('pixels');
  // @ts-expect-error: per-tensor signs have one alpha, not alphas
  tl.ternarySigns(w).alphas;
  // @ts-expect-error: a shape is required for per-row scales
  tl.absmeanScalePerRow(w);
  // @ts-expect-error: band is a number
  tl.deadzoneStats(w, '0.1');
  // @ts-expect-error: simd is a boolean
  void init({ simd: 'yes' });
  // @ts-expect-error: error codes are a closed set
  const bad: TilelliErrorCode = 'NOT_A_CODE';
  void bad;
  // @ts-expect-error: matrices come from the static constructors only
  new tl.PackedMatrix();
  // @ts-expect-error: PackedMatrix is exported as a type only (the class lives on an instance)
  void (null as unknown as typeof import('tilelli')).PackedMatrix;
  // @ts-expect-error: formats are a closed set
  tl.PackedMatrix.fromWeights(w, [2, 4], { format: 'i3' });
  // @ts-expect-error: a matrix shape is [rows, cols]
  tl.PackedMatrix.fromTrits([1, 0, -1], [1, 1, 3]);
  // @ts-expect-error: trits are an Int8Array or an array of numbers
  tl.PackedMatrix.fromTrits('1,0,-1', [1, 3]);
  // @ts-expect-error: raw accumulators are int32, not float32
  const accAsFloat: Float32Array = fromTrits.matmulBinary([1], { raw: true });
  void accAsFloat;
  // @ts-expect-error: float outputs are float32, not int32
  const floatAsAcc: Int32Array = fromTrits.matmulSparse([0]);
  void floatAsAcc;
  // @ts-expect-error: the float kernel has no raw option
  fromTrits.matmulFloat([1, 2, 3, 4], { raw: true });
  // @ts-expect-error: rows are read-only
  fromTrits.rows = 3;
  // @ts-expect-error: quantizeActivations needs cols
  tl.quantizeActivations([1, 2]);
  // @ts-expect-error: training labels are integers in a typed array, not strings
  startTraining({ network: { widths: [2, 2] }, data: { x: new Float32Array(2), labels: ['cat'] } });
  // @ts-expect-error: a network is widths or a model, not both missing
  startTraining({ network: {}, data: { x: new Float32Array(2), labels: new Uint8Array(1) } });
  // @ts-expect-error: the classes are on the API object (tl.Model), not module exports
  void tilelli.Model;
  // @ts-expect-error: accuracy is known after done, not on the job
  void job.accuracy;
  // @ts-expect-error: pack returns bytes, not trits
  const packedAsTrits: Int8Array = tl.pack([1], [1, 1]);
  void packedAsTrits;
}

const memory: { liveBytes: number; liveBlocks: number; wasmBytes: number } = tl.memoryStats();

// Checkpoints and models: a tiny checkpoint written by hand (safetensors layout), packed, run.
const header = new TextEncoder().encode('{"w":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]}}   ');
const file = new Uint8Array(8 + header.length + 32);
new DataView(file.buffer).setBigUint64(0, BigInt(header.length), true);
file.set(header, 8);
file.set(new Uint8Array(new Float32Array([1, -1, 0.2, 0.9, -0.7, 0.1, 0.5, -2]).buffer), 8 + header.length);
const st: Safetensors = tl.Safetensors.open(file);
const info: TensorInfo = st.tensor('w');
const wValues: Float32Array = st.read('w');
const arch: Architecture = { input: 4, layers: [{ type: 'linear', weight: 'w', quantizer: 'per_row' }, { type: 'softmax' }] };
const packedModel: Uint8Array = tl.packCheckpoint(st, arch, { format: 'tq1', onProgress: (p) => void p.layer });
st.free();
const model: Model = tl.Model.load(packedModel);
const probabilities: Float32Array = model.run([0.5, 0.25, -1, 2]);
const predicted: Int32Array = model.predict([0.5, 0.25, -1, 2, 1, 1, 1, 1]);
const layerTypes: string[] = model.layers.map((L) => L.type);
model.free();
// The serving entry: the Model class alone, the same class and errors.
const serving: TilelliServe = await initServe({ build: 'simd', maxMemory: 32 * 1024 * 1024 });
const served: Model = serving.Model.load(packedModel);
const servedProbabilities: Float32Array = served.run([0.5, 0.25, -1, 2]);
served.free();
if (ServeError !== TilelliError || servedProbabilities.some((v, i) => v !== probabilities[i]) || serving.threads !== 1) {
  throw new Error('tilelli/serve: another error class, other outputs or threads');
}
// @ts-expect-error the serving API has no training
void serving.Network;
const serveUrl: URL = wasmUrl('serve-simd');
void serveUrl;
// Fine-tuning from the checkpoint's float weights (the worker takes the same checkpoint and architecture).
const tunable: Network = tl.Network.fromCheckpoint(file, { input: 4, layers: [{ type: 'linear', weight: 'w' }] }, { quantizer: 'per_tensor', seed: 1 });
const tunedShadow: Float32Array = tunable.getLayer(0).weight;
tunable.free();
const checkpointSpec: TrainingCheckpointSpec = { checkpoint: file, architecture: { input: 4, layers: [{ type: 'linear', weight: 'w' }] } };
void checkpointSpec;
const fromUrl: Promise<Model> | undefined = 0 > 1 ? tl.Model.fromURL('m.tlm', { onProgress: ({ loaded, total }) => void (loaded + (total ?? 0)), signal: AbortSignal.timeout(1) }) : undefined;
void fromUrl;
const wideDtype: TensorInfo['dtype'] = 'I64';
void wideDtype;
const direct = tl.PackedMatrix.fromWeights(wValues, [2, 4]);
const spec: ModelSpec = { input: 4, layers: [{ type: 'rmsnorm' }, { type: 'bitlinear', matrix: direct, eps: 1e-5 }, { type: 'gelu' }] };
const specBytes: Uint8Array = tl.packModel(spec);
direct.free();

// Training in a worker (a worker_thread here): one step on four samples, then the model it made.
// Until the package entries export startTraining, it is taken from js/worker.js (next to them).
const startTraining: typeof tilelli.startTraining = tilelli.startTraining ??
  (await import(new URL('../../js/worker.js', import.meta.url).href)).startTraining;
const progress: TrainingProgress[] = [];
const trainingOptions: StartTrainingOptions = {
  network: { widths: [4, 8, 3], activation: 'relu', quantizer: 'per_tensor', seed: 1 },
  optimizer: { type: 'adam', lr: 1e-2 },
  schedule: { type: 'cosine', warmupSteps: 0 },
  data: { x: new Float32Array([1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 1]), labels: new Uint8Array([0, 1, 2, 0]) },
  epochs: 1,
  batchSize: 4,
  progressEvery: 1,
  onProgress: (p) => { progress.push(p); },
  signal: AbortSignal.timeout(30_000),
};
const job: TrainingJob = startTraining(trainingOptions);
const trained: TrainingResult = await job.done;
const evaluation: TrainingEvaluation = await job.evaluate();
const trainedWeights: TrainingWeights = await job.weights();
const trainedModel: Model = tl.Model.load(await job.export({ format: 'i2' }));
const trainedOutputs: Float32Array = trainedModel.run([1, 0, 0, 1]);
trainedModel.free();
await job.terminate();
const training = {
  steps: trained.steps, accuracy: evaluation.accuracy, weightsStep: trainedWeights.step, shapes: trainedWeights.map((L) => L.shape),
  flipped: progress.map((p) => p.flipped), outputs: trainedOutputs, state: job.state,
};

// Tokenizers: the character form typed, a tokenizer.json as text with its config, streaming decode.
const charFile: CharTokenizerJSON = {
  type: 'char', version: 1, vocab: ['<unk>', '<bos>', '<eos>', ' ', 'a', 'b', '日'], special: ['<unk>', '<bos>', '<eos>'],
  unk: '<unk>', bos: '<bos>', eos: '<eos>', add_bos: true,
};
const chars: Tokenizer = Tokenizer.fromJSON(charFile);
const encodeOptions: EncodeOptions = { addSpecialTokens: false };
const decodeOptions: DecodeOptions = { skipSpecialTokens: true };
const charIds: Uint32Array = chars.encode('ab 日', encodeOptions);
const bpeConfig: TokenizerConfig = { bos_token: { content: 'a' }, eos_token: 'b' };
const bpe: Tokenizer = Tokenizer.fromJSON(JSON.stringify({
  model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: [['a', 'b']] }, added_tokens: [], normalizer: null,
  pre_tokenizer: null, post_processor: null, decoder: { type: 'Fuse' },
}), new TextEncoder().encode(JSON.stringify(bpeConfig)));
const stream: TokenDecoder = chars.decoder(decodeOptions);
const streamed: string = [...chars.encode('日 ab')].map((id) => stream.push(id)).join('') + stream.end();
const tokenizer = {
  kind: chars.kind, vocabSize: chars.vocabSize, bos: chars.bosId, eos: chars.eosId, unk: chars.unkId, pad: chars.padId,
  specialIds: chars.specialIds, charIds, decoded: chars.decode(charIds, decodeOptions), streamed,
  idOf: chars.idOf('日'), tokenOf: chars.tokenOf(6), special: chars.isSpecial(0), bpe: Array.from(bpe.encode('abab')),
  bpeBos: bpe.bosId, bpeKind: bpe.kind,
};

export const summary = {
  tokenizer,
  training,
  memory, tensor: info, tunedShadow: Array.from(tunedShadow), probabilities, predicted, layerTypes, modelBytes: specBytes.length,
  simd: tl.simd, version: tl.version, url: url.href, alpha, rowAlphas, values, rowValues, signs, rowSigns, lsq,
  stats, stats2, code,
  matrices: {
    trits: packedTrits, rows, binary, binaryAcc, sparse, sparseAcc, quantized, int8, int8Acc, either, floats, packed,
    unpacked, sizes, defaultSize, freed, freedCode,
  },
};
