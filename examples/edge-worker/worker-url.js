// worker-url.js — the Cloudflare Workers / workerd entry that fetches the model once from
// env.MODEL_URL (a var in wrangler.toml, a text binding in config.capnp) on the first request and
// keeps it for the isolate's life; a failed fetch answers 503 and is tried again on the next
// request. Use it when the model is big (in workerd a data module costs start time and memory
// several times its size: bench/edge.mjs), or changes more often than the code. The response is
// handed over unread: its body goes chunk by chunk into the wasm memory the model keeps.
import { createHandler } from './handler.js';

async function fetchModel(env) {
  if (!env?.MODEL_URL) throw new Error('env.MODEL_URL is not set');
  const response = await fetch(env.MODEL_URL);
  if (!response.ok) throw new Error(`fetching ${env.MODEL_URL} gave HTTP ${response.status}`);
  return response; // read by Model.fromResponse straight into wasm memory
}

export default createHandler({ model: fetchModel, runtime: 'workerd' });
