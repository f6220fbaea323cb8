// index.cjs — CommonJS. Node loads ES modules from require() (Node >= 20.19, >= 22.12): then
// require('tilelli') is the very module `import` gives (node.js), with the same classes, so
// `e instanceof TilelliError` holds whichever way tilelli was loaded. On an older Node only
// init() is offered here (it imports the ES module on first use; tl.TilelliError is on the
// API object); the other exports say what to do.
'use strict';

if (process.features && process.features.require_module) {
  module.exports = require('./node.js');
} else {
  exports.init = (options) => import('./node.js').then((m) => m.init(options));
  const needs = (name) => () => {
    throw new Error(`tilelli: require('tilelli').${name} needs Node >= 20.19 (require of ES modules); ` +
      `on this Node use (await import('tilelli')).${name}${name === 'Tokenizer' ? '' : `, or tl.${name} after init()`}`);
  };
  for (const name of ['TilelliError', 'Tokenizer', 'startTraining', 'loadLanguageModel', 'relaxedSupported', 'simdSupported', 'wasmUrl']) {
    Object.defineProperty(exports, name, { enumerable: true, get: needs(name) });
  }
}
