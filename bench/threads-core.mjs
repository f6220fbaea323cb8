// threads-core.mjs — bench/threads.mjs's measurements, runnable in Node and in a browser page (no
// Node modules): the same products on an instance with 1 thread and one with N, interleaved round by
// round; each line checks first that both give the same bits. Returns the lines; log(text) prints.

/** Deterministic values in [-1, 1) */
function floats(n, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function same(a, b) {
  if (a.length !== b.length) return false;
  const u = new Uint8Array(a.buffer, a.byteOffset, a.byteLength), v = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < u.length; i++) if (u[i] !== v[i]) return false;
  return true;
}

/** ms per call of f (wall, and process CPU when cpu() is given), calls repeated for about budget ms */
function timeCalls(f, budget, cpu) {
  const c0 = cpu?.(), t0 = performance.now();
  let n = 0;
  do {
    f();
    n++;
  } while (performance.now() - t0 < budget);
  return { wall: (performance.now() - t0) / n, cpu: cpu ? (cpu() - c0) / n : undefined };
}

/**
 * tl1: an instance on 1 thread, tlN: one on N threads (same build). opts: { rounds, budget, epochs,
 * check (no timing) }. mnist: { x, labels } training digits (784 floats each), or undefined to skip
 * the training line. cpu: () => ms of CPU the process has used (Node), or undefined. Throws when the
 * instances differ.
 *
 * With cpu, each line also prints the CPU time per call of both and N x CPU(1) / CPU(N): the
 * speedup the N threads would give if each had a core of its own (the work, spinning and repeated
 * table building included), a bound that a busy machine's wall-clock ratio cannot show.
 */
export function runThreadsBench({ tl1, tlN, opts, mnist, log, cpu }) {
  const lines = [];
  const compare = (one, many) => {
    one();
    many();
    const a = [], b = [], ca = [], cb = [];
    for (let r = 0; r < opts.rounds; r++) {
      const x = timeCalls(one, opts.budget, cpu), y = timeCalls(many, opts.budget, cpu);
      a.push(x.wall), b.push(y.wall), ca.push(x.cpu), cb.push(y.cpu);
    }
    return { one: median(a), many: median(b), cpuOne: cpu ? median(ca) : undefined, cpuMany: cpu ? median(cb) : undefined };
  };
  const line = (name, r, target) => {
    const ratio = r.one / r.many;
    const verdict = target ? (ratio >= target ? `MET (>= ${target}x)` : `NOT MET (>= ${target}x)`) : '(no target)';
    const cpuNote = r.cpuOne !== undefined
      ? ` | CPU/call ${r.cpuOne.toFixed(2)} vs ${r.cpuMany.toFixed(2)} ms: ${(tlN.threads * r.cpuOne / r.cpuMany).toFixed(2)}x with a core per thread`
      : '';
    log(`${name.padEnd(46)} ${tl1.build} 1 thread ${r.one.toFixed(3).padStart(9)} ms | ${tlN.build} ${tlN.threads} threads ${r.many.toFixed(3).padStart(9)} ms | ${ratio.toFixed(2)}x ${verdict}${cpuNote}`);
    lines.push({ name, ...r, ratio, target, met: target ? ratio >= target : undefined });
  };
  const check = (ok, what) => {
    if (!ok) throw new Error(`${what}: the ${tlN.threads}-thread instance differs from the 1-thread one`);
  };

  // GEMV 4096 x 4096
  {
    const rows = 4096, cols = 4096;
    const w = floats(rows * cols, 1);
    const m1 = tl1.PackedMatrix.fromWeights(w, [rows, cols], { format: 'i2' });
    const mN = tlN.PackedMatrix.fromWeights(w, [rows, cols], { format: 'i2' });
    const xf = floats(cols, 2);
    const xi = Int8Array.from(xf, (v) => Math.round(v * 127));
    check(same(m1.matmulInt8(xi, { raw: true }), mN.matmulInt8(xi, { raw: true })), 'GEMV int8');
    check(same(m1.matmulFloat(xf), mN.matmulFloat(xf)), 'GEMV float');
    if (!opts.check) {
      line('GEMV 4096x4096 i2, int8 activations', compare(() => m1.matmulInt8(xi, { raw: true }), () => mN.matmulInt8(xi, { raw: true })), 1.5);
      line('GEMV 4096x4096 i2, float activations', compare(() => m1.matmulFloat(xf), () => mN.matmulFloat(xf)));
    }
    m1.free();
    mN.free();
  }

  // wide MLP 1024-4096-4096-1024, batch 16
  {
    const widths = [1024, 4096, 4096, 1024];
    const layers = [], mats = [];
    for (let i = 0; i + 1 < widths.length; i++) {
      const m = tl1.PackedMatrix.fromWeights(floats(widths[i + 1] * widths[i], 10 + i), [widths[i + 1], widths[i]], { format: 'i2' });
      mats.push(m);
      layers.push({ type: 'linear', matrix: m, bias: floats(widths[i + 1], 20 + i).map((v) => v * 0.1) });
      if (i + 2 < widths.length) layers.push({ type: 'relu' });
    }
    const bytes = tl1.packModel({ input: widths[0], layers });
    for (const m of mats) m.free();
    const batch = 16, x = floats(batch * widths[0], 3);
    for (const activations of ['float', 'int8']) {
      const a = tl1.Model.load(bytes), b = tlN.Model.load(bytes);
      a.setActivations(activations);
      b.setActivations(activations);
      check(same(a.run(x), b.run(x)), `MLP ${activations}`);
      if (!opts.check) line(`MLP 1024-4096-4096-1024 batch 16, ${activations}`, compare(() => a.run(x), () => b.run(x)), 1.7);
      a.free();
      b.free();
    }
  }

  // MNIST training epoch (bench/train.mjs's network and batch)
  if (mnist) {
    const nets = [tl1, tlN].map((tl) => tl.Network.create({ widths: [784, 256, 256, 10], seed: 20240611 }));
    const epoch = (net) => {
      const c0 = cpu?.(), t0 = performance.now();
      net.fit({ x: mnist.x, labels: mnist.labels }, { epochs: 1, batchSize: 64, seed: 1 });
      return { wall: performance.now() - t0, cpu: cpu ? cpu() - c0 : undefined };
    };
    const a = [], b = [], ca = [], cb = [];
    for (let r = 0; r < (opts.check ? 1 : opts.epochs); r++) {
      const x = epoch(nets[0]), y = epoch(nets[1]);
      a.push(x.wall), b.push(y.wall), ca.push(x.cpu), cb.push(y.cpu);
      for (let k = 0; k < 3; k++) check(same(nets[0].getLayer(k).weight, nets[1].getLayer(k).weight), `MNIST layer ${k} after epoch ${r + 1}`);
    }
    if (!opts.check) {
      line('MNIST training epoch 784-256-256-10, batch 64',
        { one: median(a), many: median(b), cpuOne: cpu ? median(ca) : undefined, cpuMany: cpu ? median(cb) : undefined }, 1.4);
    }
    for (const net of nets) net.free();
  }
  return lines;
}
