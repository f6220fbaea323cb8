// node.test.js — the sample in Node on both builds (the reference the other runtimes are
// compared with), and through require() (the CommonJS entry).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

import { init } from 'tilelli';

import { sample } from './sample.js';

test('the sample gives the same numbers on the SIMD and scalar builds, and through require()', async (t) => {
  const simd = sample(await init({ simd: true }));
  const scalar = sample(await init({ simd: false }));
  assert.deepEqual(scalar, simd);
  assert.equal(simd.error.code, 'NON_FINITE');
  assert.ok(simd.products.i2.int8.length === 3 * 48);

  const require = createRequire(import.meta.url);
  const cjs = require('tilelli');
  const tl = await cjs.init();
  assert.deepEqual(sample(tl), simd);
  t.diagnostic(`Node ${process.version}: init() runs the ${tl.build} build`);
  assert.ok(tl.TilelliError, 'the CommonJS API carries the error class');
});
