// index.cjs — CommonJS: tilelli is an ES module, but init() is asynchronous anyway, so
// require('tilelli').init() loads the ES module on first use and resolves to the same API.
// TilelliError is on the API object too (tl.TilelliError) for instanceof checks.
'use strict';

exports.init = (options) => import('./node.js').then((m) => m.init(options));
