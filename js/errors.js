// errors.js — the one error type of the JS API.
//
// `code` is stable: for errors raised by the C core it is the name of its tl_status
// (tl_status_name: 'NON_FINITE', 'SHAPE', ...); the JS layer adds none of its own
// beyond those in the same table ('INVALID_ARGUMENT', 'OUT_OF_MEMORY').

export class TilelliError extends Error {
  /**
   * @param {string} code stable machine-readable code, e.g. 'NON_FINITE'
   * @param {string} message what was wrong, for people
   * @param {{ cause?: unknown, status?: number }} [options]
   */
  constructor(code, message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TilelliError';
    this.code = code;
    /** The C status value behind the error (a negative integer), when it came from the core. */
    this.status = options.status;
  }
}
