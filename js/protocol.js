// protocol.js — the training worker's protocol, shared by both sides (js/worker.js on the caller's
// side, js/worker-entry.js inside the worker): the message types, the shape checks of what is
// posted, and how errors cross the boundary.
//
// Every request is { id, type, data } and gets exactly one { id, type: RESULT, data } or
// { id, type: ERROR, data: serialized error }. While START runs, the worker also posts, under the
// start's id, PROGRESS events and SNAPSHOT copies of the weights.

import { TilelliError } from './errors.js';
import { STATUS } from './constants.js';
import { invalid, show } from './runtime.js';

export const MSG = Object.freeze({
  // requests
  START: 'start', PAUSE: 'pause', RESUME: 'resume', CANCEL: 'cancel', WEIGHTS: 'weights', EVALUATE: 'evaluate', EXPORT: 'export',
  // answers and events
  RESULT: 'result', ERROR: 'error', PROGRESS: 'progress', SNAPSHOT: 'snapshot',
});

/**
 * The compute threads' protocol (js/threads.js starts them, js/thread-worker.js runs in them): one
 * START { started: STARTED, module, memory, stack } to the worker, one STARTED back just before the
 * worker enters the core's loop (src/threads.c), where it stays; nothing else crosses. The worker
 * imports nothing (Deno checks each module a worker loads), so START carries the answer's name.
 */
export const MSG_THREAD = Object.freeze({ START: 'tilelli-thread-start', STARTED: 'tilelli-thread-started' });

const REQUESTS = new Set([MSG.START, MSG.PAUSE, MSG.RESUME, MSG.CANCEL, MSG.WEIGHTS, MSG.EVALUATE, MSG.EXPORT]);

/** A request as the worker receives it, or a TilelliError naming what is wrong with it. */
export function checkRequest(message) {
  const { id, type } = message ?? {};
  if (!Number.isSafeInteger(id)) throw invalid(`training worker: a request needs an integer id, got ${show(id)}`);
  if (!REQUESTS.has(type)) throw invalid(`training worker: unknown request ${show(type)}`);
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
  const e = new Ctor(`${d?.message ?? 'the training worker failed'}`);
  if (d?.name && e.name !== d.name) e.name = d.name;
  if (d?.stack) Object.defineProperty(e, 'workerStack', { value: d.stack, configurable: true });
  return e;
}
