// deno.js — the same handler under `deno serve` (Deno's HTTP server calls the default export's
// fetch). The model is read from disk once, at start: MODEL (when --allow-env=MODEL is given) or
// model.tlm next to this file.
/* global Deno */
import { createHandler } from './handler.js';

const fromEnv = Deno.permissions.querySync({ name: 'env', variable: 'MODEL' }).state === 'granted' ? Deno.env.get('MODEL') : undefined;
const model = await Deno.readFile(fromEnv ?? new URL('./model.tlm', import.meta.url));

export default createHandler({ model, runtime: 'deno' });
