// worker.test.js — startTraining (js/worker.js) in Node worker_threads: the MNIST MLP trained in a
// worker exactly as Network.fit trains it in-process, progress events, pause/resume, cancel through
// an AbortSignal (the worker is terminated, the weights of the last completed step remain),
// export to a packed model, a model as the starting point, and errors crossing the thread.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { init, TilelliError } from 'tilelli';

import { startTraining } from 'tilelli';

import { mnist } from './util.js';

const tl = await init();

const WIDTHS = [784, 256, 256, 10];

const DIGITS = mnist();

/** Fresh copies: startTraining takes (detaches) what it is given. */
const copy = ({ x, labels }, n = labels.length) => ({ x: x.slice(0, n * 784), labels: labels.slice(0, n) });

const RUN = {
  network: { widths: WIDTHS, activation: 'relu', quantizer: 'per_tensor', seed: 7 },
  optimizer: { type: 'adam', lr: 2e-3 },
  schedule: { type: 'cosine', warmupSteps: 10 },
  epochs: 1,
  batchSize: 64,
  seed: 3,
};
/** Runs too short for the warmup and cosine of RUN. */
const SHORT = { ...RUN, schedule: { type: 'constant' } };

/** The same run in this thread with Network.fit, stopped after `steps` steps when given. */
function trainInProcess(set, steps) {
  const net = tl.Network.create(RUN.network);
  net.setOptimizer(RUN.optimizer);
  net.setSchedule({ ...RUN.schedule, totalSteps: RUN.epochs * Math.ceil(set.labels.length / RUN.batchSize) });
  net.fit(set, { epochs: RUN.epochs, batchSize: RUN.batchSize, seed: RUN.seed, onStep: ({ step }) => step !== steps });
  return net;
}

const finite = (a) => a.every(Number.isFinite);
const exited = (worker) => new Promise((resolve) => worker.once('exit', resolve));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** Resolves with the first progress event that satisfies pred. */
function progressWhere(events, pred) {
  return new Promise((resolve) => {
    const check = () => {
      const e = events.find(pred);
      if (e) resolve(e);
      else setTimeout(check, 2);
    };
    check();
  });
}

test('one epoch of MNIST in a worker_thread: progress with every field, falling loss, > 85% test accuracy, fit\'s exact weights, an exported model that runs', { timeout: 60_000 }, async (t) => {
  const data = copy(DIGITS.train), testSet = copy(DIGITS.test);
  const { x, labels } = data;
  const events = [];
  const t0 = performance.now();
  const job = startTraining({ ...RUN, data, test: testSet, progressEvery: 10, onProgress: (e) => events.push(e) });
  // transferred, not copied: the caller's arrays are detached as soon as startTraining returns
  assert.equal(x.byteLength, 0);
  assert.equal(labels.byteLength, 0);
  assert.equal(testSet.x.byteLength, 0);
  assert.equal(x.buffer.detached ?? x.buffer.byteLength === 0, true);

  const result = await job.done;
  const trainMs = performance.now() - t0;
  const steps = Math.ceil(DIGITS.train.labels.length / 64);
  assert.equal(job.state, 'done');
  assert.deepEqual(Object.keys(result).sort(), ['accuracy', 'epochs', 'evaluatedOn', 'loss', 'losses', 'ms', 'steps']);
  assert.equal(result.steps, steps);
  assert.equal(result.epochs, 1);
  assert.equal(result.losses.length, 1);
  assert.equal(result.evaluatedOn, 'test');
  assert.ok(result.accuracy > 0.85, `test accuracy ${result.accuracy} after one epoch`);

  // progress: every 10 steps and at the epoch end, all fields
  assert.deepEqual(events.map((e) => e.step), [...Array.from({ length: Math.floor((steps - 1) / 10) }, (_, i) => (i + 1) * 10), steps]);
  for (const e of events) {
    assert.deepEqual(Object.keys(e).sort(), ['accuracy', 'accuracyOn', 'epoch', 'epochEnd', 'flipped', 'layers', 'loss', 'lr', 'ms', 'step', 'totalSteps'].sort());
    assert.equal(e.epoch, 0);
    assert.equal(e.totalSteps, steps);
    assert.ok(Number.isFinite(e.loss) && e.loss > 0);
    assert.ok(e.accuracy >= 0 && e.accuracy <= 1);
    assert.ok(e.flipped >= 0 && e.flipped <= 1, `flipped ${e.flipped}`);
    assert.ok(e.lr >= 0 && e.lr <= Math.fround(2e-3), `lr ${e.lr}`);
    assert.equal(e.layers.length, 3);
    for (const L of e.layers) {
      for (const k of ['alpha', 'fracNeg', 'fracZero', 'fracPos', 'fracBoundary', 'fracZeroInner', 'flipped']) assert.ok(Number.isFinite(L[k]), k);
      assert.ok(Math.abs(L.fracNeg + L.fracZero + L.fracPos - 1) < 1e-9);
    }
  }
  const last = events.at(-1);
  assert.equal(last.epochEnd, true);
  assert.equal(last.accuracyOn, 'test');
  assert.equal(last.accuracy, result.accuracy);
  assert.ok(events.slice(0, -1).every((e) => e.accuracyOn === 'batch' && !e.epochEnd));
  assert.ok(events[0].flipped > events.at(-2).flipped, 'fewer trits flip as the learning rate decays');
  assert.ok(events.at(-1).loss < events[0].loss / 2, `loss falls: ${events.map((e) => e.loss.toFixed(3)).join(' ')}`);

  // on demand, after the end: evaluate, weights, export
  const evaluated = await job.evaluate();
  assert.equal(evaluated.accuracy, result.accuracy);
  assert.equal(evaluated.count, DIGITS.test.labels.length);
  const onTrain = await job.evaluate(copy(DIGITS.train, 500));
  assert.equal(onTrain.count, 500);

  const weights = await job.weights();
  assert.equal(weights.step, steps);
  const reference = trainInProcess(copy(DIGITS.train));
  for (let k = 0; k < 3; k++) {
    const want = reference.getLayer(k);
    assert.deepEqual(weights[k].shape, [WIDTHS[k + 1], WIDTHS[k]]);
    assert.deepEqual(weights[k].weight, want.weight, `layer ${k}: the worker trains exactly as Network.fit`);
    assert.deepEqual(weights[k].bias, want.bias);
  }
  reference.free();

  const bytes = await job.export({ format: 'tq1' });
  assert.ok(bytes instanceof Uint8Array);
  const model = tl.Model.load(bytes);
  assert.equal(model.layers[0].weights, 'tq1');
  const predicted = model.predict(DIGITS.test.x);
  const accuracy = predicted.reduce((n, p, i) => n + (p === DIGITS.test.labels[i]), 0) / predicted.length;
  assert.ok(Math.abs(accuracy - evaluated.accuracy) <= 0.005, `the packed model's accuracy ${accuracy} vs the worker's ${evaluated.accuracy}`);
  model.free();

  const gone = exited(job.worker);
  await job.terminate();
  assert.equal(await gone, 1);
  assert.equal(job.worker.threadId, -1);
  await assert.rejects(job.evaluate(), { name: 'TilelliError', code: 'FREED' });
  assert.equal((await job.weights()).step, steps, 'the last snapshot outlives the worker');
  t.diagnostic(`one epoch (${steps} steps of 64, ${events.length} progress events) in a worker: ${Math.round(trainMs)} ms, test accuracy ${(result.accuracy * 100).toFixed(2)}%`);
});

test('pause() stops training between steps until resume(); evaluate answers while paused', { timeout: 30_000 }, async () => {
  const events = [];
  const job = startTraining({ ...RUN, data: copy(DIGITS.train), progressEvery: 1, onProgress: (e) => events.push(e) });
  await progressWhere(events, (e) => e.step >= 5);
  const paused = await job.pause();
  assert.equal(job.state, 'paused');
  const seen = events.length;
  assert.equal(events.at(-1).step, paused.step, 'no step ran after the acknowledged pause');
  await sleep(200);
  assert.equal(events.length, seen, 'no progress while paused');
  const evaluated = await job.evaluate(copy(DIGITS.test, 200));
  assert.equal(evaluated.step, paused.step);
  await sleep(50);
  const resumed = await job.resume();
  assert.equal(resumed.step, paused.step, 'steps did not advance while paused');
  assert.equal(job.state, 'training');
  const next = await progressWhere(events, (e) => e.step > paused.step);
  assert.equal(next.step, paused.step + 1);
  await job.terminate();
  await assert.rejects(job.done, { name: 'AbortError' });
  assert.equal(job.state, 'terminated');
});

test('cancel through an AbortSignal mid-epoch: AbortError, the worker is gone, the weights of the last completed step remain', { timeout: 30_000 }, async () => {
  const controller = new AbortController();
  const events = [];
  const job = startTraining({ ...RUN, data: copy(DIGITS.train), progressEvery: 5, signal: controller.signal, onProgress: (e) => events.push(e) });
  await progressWhere(events, (e) => e.step >= 20);
  const exit = exited(job.worker);
  controller.abort();
  assert.equal(job.state, 'cancelling');
  const error = await job.done.then(() => assert.fail('done resolved after a cancel'), (e) => e);
  assert.ok(error instanceof DOMException);
  assert.equal(error.name, 'AbortError');
  assert.equal(job.state, 'cancelled');
  assert.equal(job.worker.threadId, -1, 'the worker thread is no longer running');
  assert.equal(await exit, 1, 'its exit event fired');
  await assert.rejects(job.pause(), { name: 'TilelliError', code: 'FREED' });

  const weights = await job.weights();
  const steps = Math.ceil(DIGITS.train.labels.length / 64);
  assert.ok(weights.step >= 20 && weights.step < steps, `cancelled mid-epoch, at step ${weights.step}`);
  assert.equal(weights.length, 3);
  const reference = trainInProcess(copy(DIGITS.train), weights.step);
  assert.equal(reference.steps, weights.step);
  for (let k = 0; k < 3; k++) {
    assert.deepEqual(weights[k].shape, [WIDTHS[k + 1], WIDTHS[k]]);
    assert.equal(weights[k].weight.length, WIDTHS[k + 1] * WIDTHS[k]);
    assert.equal(weights[k].bias.length, WIDTHS[k + 1]);
    assert.ok(finite(weights[k].weight) && finite(weights[k].bias));
    assert.deepEqual(weights[k].weight, reference.getLayer(k).weight, `layer ${k} is the network after step ${weights.step}`);
  }
  reference.free();
});

test('an aborted signal before the start transfers nothing and rejects done', async () => {
  const data = copy(DIGITS.train, 64);
  const job = startTraining({ ...RUN, data, signal: AbortSignal.abort() });
  await assert.rejects(job.done, { name: 'AbortError' });
  assert.equal(data.x.length, 64 * 784, 'the arrays stay the caller\'s');
  assert.equal(job.worker, undefined);
});

test('an onProgress that throws does not stop training: onError (or console.error) gets each error', { timeout: 30_000 }, async () => {
  const errors = [];
  let calls = 0;
  const job = startTraining({
    ...SHORT, data: copy(DIGITS.train, 640), progressEvery: 2,
    onProgress: () => { calls++; throw new Error(`broken ${calls}`); },
    onError: (e) => errors.push(e.message),
  });
  const result = await job.done;
  assert.equal(result.steps, 10);
  assert.equal(calls, 5);
  assert.deepEqual(errors, ['broken 1', 'broken 2', 'broken 3', 'broken 4', 'broken 5']);
  await job.terminate();

  const logged = [];
  const original = console.error;
  console.error = (...args) => logged.push(args);
  try {
    const quiet = startTraining({ ...SHORT, data: copy(DIGITS.train, 256), progressEvery: 1, onProgress: () => { throw new Error('no UI'); } });
    assert.equal((await quiet.done).steps, 4);
    await quiet.terminate();
  } finally {
    console.error = original;
  }
  assert.equal(logged.length, 4);
  assert.match(String(logged[0][0]), /onProgress threw/);
  assert.equal(logged[0][1].message, 'no UI');
});

test('errors in the worker reject done with a TilelliError of the same code and message', { timeout: 30_000 }, async () => {
  // a NaN in the data: found before the first step
  const data = copy(DIGITS.train, 128);
  data.x[784 * 3 + 5] = NaN;
  const job = startTraining({ ...SHORT, data });
  const e = await job.done.then(() => assert.fail('trained on a NaN'), (err) => err);
  assert.ok(e instanceof TilelliError, `${e}`);
  assert.equal(e.code, 'NON_FINITE');
  assert.match(e.message, /x\[2357\] \(sample 3\) is not finite/);
  assert.equal(job.state, 'failed');
  await job.terminate();

  // a loss that overflows in the core: the core's own NON_FINITE, its message unchanged
  const huge = copy(DIGITS.train, 64);
  huge.x.fill(1e30, 0, 784);
  const core = startTraining({ ...SHORT, data: huge });
  const c = await core.done.then(() => assert.fail('trained through an overflow'), (err) => err);
  assert.ok(c instanceof TilelliError);
  assert.equal(c.code, 'NON_FINITE');
  assert.match(c.message, /^Network\.fit: /);
  // the failed step changed nothing: the weights are the initial ones
  const weights = await core.weights();
  assert.equal(weights.step, 0);
  const fresh = tl.Network.create(RUN.network);
  assert.deepEqual(weights[0].weight, fresh.getLayer(0).weight);
  fresh.free();
  await core.terminate();

  // an invalid option the worker finds (the activation), and a model file that is none
  const bad = startTraining({ ...SHORT, network: { ...SHORT.network, activation: 'tanh' }, data: copy(DIGITS.train, 64) });
  await assert.rejects(bad.done, (err) => err instanceof TilelliError && err.code === 'INVALID_ARGUMENT' && /activation/.test(err.message));
  await bad.terminate();
  const notModel = startTraining({ network: { model: new Uint8Array(64) }, data: copy(DIGITS.train, 64) });
  await assert.rejects(notModel.done, { name: 'TilelliError', code: 'PARSE' });
  await notModel.terminate();
});

test('startTraining rejects bad options synchronously, before taking the arrays', () => {
  const data = copy(DIGITS.train, 64);
  const cases = [
    [{ ...RUN, data: { x: data.x, labels: data.labels.subarray(0, 10) } }, 'SIZE_MISMATCH'],
    [{ ...RUN, data, epochs: 0 }, 'INVALID_ARGUMENT'],
    [{ ...RUN, data, batchSize: 1.5 }, 'INVALID_ARGUMENT'],
    [{ ...RUN, data, network: { widths: [784] } }, 'INVALID_ARGUMENT'],
    [{ ...RUN, data, test: { x: data.x } }, 'INVALID_ARGUMENT'],
    [{ ...RUN, data, onProgress: 'yes' }, 'INVALID_ARGUMENT'],
    [{ ...RUN, data, worker: 42 }, 'INVALID_ARGUMENT'],
  ];
  for (const [options, code] of cases) {
    let job;
    assert.throws(() => { job = startTraining(options); }, (e) => e instanceof TilelliError && e.code === code);
    assert.equal(job, undefined);
  }
  assert.equal(data.x.length, 64 * 784, 'nothing was transferred');
});

test('terminate() rejects what is pending with an AbortError; later calls are FREED', { timeout: 30_000 }, async () => {
  const job = startTraining({ ...RUN, data: copy(DIGITS.train), progressEvery: 1000 });
  const evaluating = job.evaluate(copy(DIGITS.test));
  const exporting = job.export();
  await job.terminate();
  await assert.rejects(job.done, { name: 'AbortError' });
  // each either answered before the terminate or was rejected by it
  for (const p of [evaluating, exporting]) await p.catch((e) => assert.equal(e.name, 'AbortError'));
  await assert.rejects(job.export(), { code: 'FREED' });
  await job.terminate(); // twice is a no-op
});

test('a packed model as the starting point: the worker\'s network computes what the model computes', { timeout: 30_000 }, async () => {
  const first = startTraining({ ...SHORT, data: copy(DIGITS.train, 1280) });
  await first.done;
  const bytes = await first.export();
  await first.terminate();
  const model = tl.Model.load(bytes);
  const predicted = model.predict(DIGITS.test.x);
  const expected = predicted.reduce((n, p, i) => n + (p === DIGITS.test.labels[i]), 0) / predicted.length;

  // lr 0: training leaves the weights as loaded
  const second = startTraining({ network: { model: bytes.slice() }, optimizer: { type: 'adam', lr: 0 }, data: copy(DIGITS.train, 64), test: copy(DIGITS.test) });
  const result = await second.done;
  assert.ok(Math.abs(result.accuracy - expected) <= 0.002, `from the model ${result.accuracy}, the model itself ${expected}`);
  const again = tl.Model.load(await second.export());
  const a = model.run(DIGITS.test.x.subarray(0, 784 * 50)), b = again.run(DIGITS.test.x.subarray(0, 784 * 50));
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-3 * (1 + Math.abs(a[i])), `output ${i}: ${a[i]} vs ${b[i]}`);
  model.free();
  again.free();
  await second.terminate();
});

test('options.worker: a URL of the worker entry (how bundled apps point at their copy)', { timeout: 30_000 }, async () => {
  const job = startTraining({ ...SHORT, data: copy(DIGITS.train, 128), worker: new URL('../../js/worker-entry.js', import.meta.url) });
  assert.equal((await job.done).steps, 2);
  await job.terminate();
});

test('an abort after done frees the idle worker; done stays resolved', { timeout: 30_000 }, async () => {
  const controller = new AbortController();
  const job = startTraining({ ...SHORT, data: copy(DIGITS.train, 64), signal: controller.signal });
  assert.equal((await job.done).steps, 1);
  const exit = exited(job.worker);
  controller.abort();
  assert.equal(await exit, 1);
  assert.equal(job.state, 'done');
  assert.equal((await job.done).steps, 1);
  assert.equal((await job.weights()).step, 1, 'the final snapshot remains');
  await assert.rejects(job.evaluate(), { code: 'FREED' });
});
