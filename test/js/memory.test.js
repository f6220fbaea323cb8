// memory.test.js — who owns wasm memory: calls leave nothing allocated, free() releases a
// matrix, and a matrix dropped without free() is reclaimed by the FinalizationRegistry (in a
// child process with --expose-gc, where garbage collection can be forced).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { init } from 'tilelli';

test('calls leave nothing allocated in wasm memory; free() gives a matrix back', async () => {
  const tl = await init();
  const w = Float32Array.from({ length: 64 * 100 }, (_, i) => Math.sin(i));
  const before = tl.memoryStats();
  assert.equal(before.liveBlocks, 0);
  for (let i = 0; i < 2000; i++) {
    tl.ternarySigns(w), tl.deadzoneStats(w), tl.ternaryValuesPerRow(w, [64, 100]);
    try { tl.absmeanScale([NaN]); } catch { /* errors must not leak either */ }
  }
  assert.deepEqual(tl.memoryStats().liveBlocks, 0);
  const m = tl.PackedMatrix.fromWeights(w, [64, 100], { format: 'tq1' });
  const held = tl.memoryStats().liveBytes;
  assert.ok(held >= m.byteLength + 64 * 4, `a matrix holds its bytes and scales (${held})`);
  m.matmulSparse([1, 2, 3]); // builds the column-major cache, owned by the matrix too
  m.free();
  assert.equal(tl.memoryStats().liveBytes, 0);
  assert.equal(tl.memoryStats().liveBlocks, 0);
});

test('matrices dropped without free() are reclaimed through the FinalizationRegistry', () => {
  const script = `
    import { init } from 'tilelli';
    const tl = await init();
    const w = new Float32Array(256 * 256).map((_, i) => Math.cos(i));
    for (let i = 0; i < 200; i++) tl.PackedMatrix.fromWeights(w, [256, 256]).matmulInt8(new Int8Array(256));
    const held = tl.memoryStats().liveBlocks;
    for (let round = 0; round < 50 && tl.memoryStats().liveBlocks > 0; round++) {
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    console.log(JSON.stringify({ held, after: tl.memoryStats().liveBlocks }));
  `;
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    encoding: 'utf8',
    timeout: 60_000,
  });
  const { held, after } = JSON.parse(out.trim().split('\n').pop());
  assert.ok(held > 0, 'the dropped matrices were still held before collection');
  assert.equal(after, 0, `all ${held} blocks reclaimed`);
});
