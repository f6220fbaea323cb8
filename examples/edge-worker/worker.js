// worker.js — the Cloudflare Workers / workerd entry with the model bundled: model.tlm is a data
// module (an ArrayBuffer; wrangler.toml's rule, config.capnp's `data = embed`), loaded while the
// isolate starts. The wasm builds come in as compiled modules through the package's workerd entry.
import model from './model.tlm';

import { createHandler } from './handler.js';

export default createHandler({ model, runtime: 'workerd' });
