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
  | 'INVALID_ARGUMENT';

/** Every error tilelli throws. After one, the instance keeps working. */
export class TilelliError extends Error {
  constructor(code: TilelliErrorCode, message: string, options?: { cause?: unknown; status?: number });
  readonly name: 'TilelliError';
  /** Stable, machine-readable: switch on this, not on the message. */
  readonly code: TilelliErrorCode;
  /** The C tl_status value (negative) when the error came from the core. */
  readonly status: number | undefined;
}

export interface InitOptions {
  /** Force the SIMD128 build (true) or the scalar build (false). Default: SIMD when the runtime validates it. */
  simd?: boolean;
  /** A compiled module of dist/tilelli-simd.wasm or dist/tilelli-scalar.wasm, for runtimes that import .wasm. */
  module?: WebAssembly.Module;
  /** The bytes of one of the .wasm builds. */
  bytes?: BufferSource;
  /** Where to fetch (or, under Node, read) one of the .wasm builds. */
  url?: string | URL;
  /** Maximum wasm memory in bytes (default and upper limit 4 GiB). Allocations past it throw OUT_OF_MEMORY. */
  maxMemory?: number;
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

export interface Tilelli {
  /** True when the SIMD128 build is running. */
  readonly simd: boolean;
  /** Library version, "MAJOR.MINOR.PATCH". */
  readonly version: string;

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
}

/** Load tilelli (SIMD128 build when supported) and return its API. */
export function init(options?: InitOptions): Promise<Tilelli>;

/** True when this runtime validates WebAssembly SIMD128. */
export function simdSupported(): boolean;

/** The URL of the shipped SIMD128 or scalar build. */
export function wasmUrl(simd: boolean): URL;
