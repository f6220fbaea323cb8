// example.ts — uses every public function and type of tilelli through the package name, so
// `tsc -p test/types` fails when js/index.d.ts drifts from the API. The test suite also runs the
// compiled output (build/types/example.js) so the declared types are the ones returned at run time.
import { init, simdSupported, wasmUrl, TilelliError } from 'tilelli';
import type { DeadzoneStats, InitOptions, Tilelli, TilelliErrorCode, Weights } from 'tilelli';

const options: InitOptions = { simd: simdSupported(), maxMemory: 64 * 1024 * 1024 };
const tl: Tilelli = await init(options);
const scalar: Tilelli = await init({ simd: false });
const url: URL = wasmUrl(true);

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

// Misuse the declarations must reject (never called: tsc fails if any line stops being an error).
export function misuse(): void {
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
}

export const summary = {
  simd: tl.simd, version: tl.version, url: url.href, alpha, rowAlphas, values, rowValues, signs, rowSigns, lsq,
  stats, stats2, code,
};
