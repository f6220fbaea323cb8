// protocol.js — the worker protocol, shared by both sides (js/worker.js and js/lm-worker.js on the
// caller's side, js/worker-entry.js inside the worker): the message types, the shape checks of
// what is posted, and how errors cross the boundary.
//
// Every request is { id, type, data } and gets exactly one { id, type: RESULT, data } or
// { id, type: ERROR, data: serialized error }. While START runs, the worker also posts, under the
// start's id, PROGRESS events and SNAPSHOT copies of the weights. A worker holds one training job
// or one language model: LM_LOAD posts PROGRESS events (the download) under its id, LM_GENERATE
// posts a TOKEN event per token under its id, and LM_CANCEL { id } aborts that load or generation
// (between two tokens) and answers at once.

import { TilelliError } from './errors.js';
import { STATUS } from './constants.js';
import { invalid, show } from './runtime.js';

export const MSG = Object.freeze({
  // requests
  START: 'start', PAUSE: 'pause', RESUME: 'resume', CANCEL: 'cancel', WEIGHTS: 'weights', EVALUATE: 'evaluate', EXPORT: 'export',
  // requests to a language-model worker
  LM_LOAD: 'lm-load', LM_GENERATE: 'lm-generate', LM_LOGITS: 'lm-logits', LM_RESET: 'lm-reset',
  LM_ACTIVATIONS: 'lm-activations', LM_SAVE: 'lm-save', LM_FREE: 'lm-free', LM_CANCEL: 'lm-cancel',
  // answers and events
  RESULT: 'result', ERROR: 'error', PROGRESS: 'progress', SNAPSHOT: 'snapshot', TOKEN: 'token',
});

/**
 * The compute threads' protocol (js/threads.js starts them, js/thread-worker.js runs in them): one
 * START { started: STARTED, module, memory, stack } to the worker, one STARTED back just before the
 * worker enters the core's loop (src/threads.c), where it stays; nothing else crosses. The worker
 * imports nothing (Deno checks each module a worker loads), so START carries the answer's name.
 */
export const MSG_THREAD = Object.freeze({ START: 'tilelli-thread-start', STARTED: 'tilelli-thread-started' });

const TRAINING = [MSG.START, MSG.PAUSE, MSG.RESUME, MSG.CANCEL, MSG.WEIGHTS, MSG.EVALUATE, MSG.EXPORT];
const LM = [MSG.LM_LOAD, MSG.LM_GENERATE, MSG.LM_LOGITS, MSG.LM_RESET, MSG.LM_ACTIVATIONS, MSG.LM_SAVE, MSG.LM_FREE, MSG.LM_CANCEL];
const REQUESTS = new Set([...TRAINING, ...LM]);

/** True for the requests a language-model worker answers. */
export const isLmRequest = (type) => LM.includes(type);

/** A request as the worker receives it, or a TilelliError naming what is wrong with it. */
export function checkRequest(message) {
  const { id, type } = message ?? {};
  if (!Number.isSafeInteger(id)) throw invalid(`tilelli worker: a request needs an integer id, got ${show(id)}`);
  if (!REQUESTS.has(type)) throw invalid(`tilelli worker: unknown request ${show(type)}`);
  return message;
}

export { invalid };

/**
 * A labelled set { x, labels } as posted: typed or plain arrays, x holding whole vectors of
 * `inputs` (when known) for each label. The values themselves (finite, classes in range) are
 * checked by the core when training starts.
 */
export function checkSet(set, inputs, what) {
  if (!set || typeof set !== 'object') throw invalid(`startTraining: ${what} must be { x, labels }`);
  const { x, labels } = set;
  if (!(ArrayBuffer.isView(x) || Array.isArray(x))) throw invalid(`startTraining: ${what}.x must be a Float32Array`);
  if (!(ArrayBuffer.isView(labels) || Array.isArray(labels))) throw invalid(`startTraining: ${what}.labels must be a Uint8Array or Uint32Array`);
  if (labels.length === 0 || (inputs !== undefined && x.length !== labels.length * inputs)) {
    throw new TilelliError('SIZE_MISMATCH',
      `startTraining: ${what}.x has ${x.length} values for ${labels.length} labels${inputs ? ` of ${inputs} inputs each` : ''}`,
      { status: STATUS.SIZE });
  }
  return set;
}

export function serializeError(e) {
  if (e instanceof TilelliError || (e && typeof e.code === 'string' && e.name === 'TilelliError')) {
    return { name: 'TilelliError', code: e.code, message: e.message, status: e.status };
  }
  return { name: e?.name ?? 'Error', message: e?.message ?? String(e), stack: e?.stack };
}

export function abortError(message, cause) {
  const e = new DOMException(message, 'AbortError');
  if (cause !== undefined) Object.defineProperty(e, 'cause', { value: cause, configurable: true, writable: true });
  return e;
}

/** The error the worker described, as the same class where we know it. */
export function reviveError(d) {
  if (d?.name === 'TilelliError' && typeof d.code === 'string') return new TilelliError(d.code, d.message, { status: d.status });
  if (d?.name === 'AbortError') return abortError(d.message);
  const Ctor = { TypeError, RangeError, SyntaxError }[d?.name] ?? Error;
  const e = new Ctor(`${d?.message ?? 'the worker failed'}`);
  if (d?.name && e.name !== d.name) e.name = d.name;
  if (d?.stack) Object.defineProperty(e, 'workerStack', { value: d.stack, configurable: true });
  return e;
}
