// Type declarations of 'tilelli/serve' (js/serve.js, js/serve-workerd.js): init() gives the
// serving API, the Model class alone. Everything else is declared once, in index.d.ts.
import type { InitOptions, TilelliServe } from './index.js';

export { TilelliError, relaxedSupported, simdSupported, wasmUrl } from './index.js';
export type { InitOptions, Model, ModelLayerInfo, TilelliBase, TilelliErrorCode, TilelliServe } from './index.js';

/**
 * Load the serving build (relaxed SIMD where the runtime validates it and the instance passes its
 * self-test, else SIMD128) and return the serving API. InitOptions.build 'scalar' and threads are
 * not offered here: use 'tilelli'. `module`, `bytes` and `url` take any single-threaded build.
 */
export function init(options?: InitOptions): Promise<TilelliServe>;
