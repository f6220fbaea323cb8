// preprocess.js — from a drawing to the 784 inputs the MNIST model expects, the way MNIST itself
// was made: the ink's bounding box is scaled so that its longer side is 20 pixels, with
// antialiasing (each output pixel is the exact mean of the ink under it), and placed so that the
// ink's center of mass sits at the center of the 28 x 28 field.
//
// Pure functions on arrays, no DOM: the page (demo/draw.js) and the Node test
// (test/runtimes/demo.test.js) run the same code.

export const SIDE = 28;
/** The longer side of the ink's bounding box after scaling, as in MNIST. */
export const BOX = 20;
/** Ink below this does not count for the bounding box (it still counts for the mass). */
const INK_THRESHOLD = 0.05;

/**
 * The summed-area table of an image: S[(y * (w + 1)) + x] = sum of img over [0, x) x [0, y).
 * Float64, so that the differences below lose nothing that matters.
 */
function summedArea(img, w, h) {
  const S = new Float64Array((w + 1) * (h + 1));
  for (let y = 0; y < h; y++) {
    let row = 0;
    for (let x = 0; x < w; x++) {
      row += img[y * w + x];
      S[(y + 1) * (w + 1) + x + 1] = S[y * (w + 1) + x + 1] + row;
    }
  }
  return S;
}

/**
 * The integral of the (piecewise constant) image over [0, u] x [0, v], u and v real: inside a
 * cell that integral is bilinear in (u, v), so the bilinear interpolation of the table's four
 * corners gives it exactly.
 */
function integral(S, w, h, u, v) {
  u = Math.min(Math.max(u, 0), w);
  v = Math.min(Math.max(v, 0), h);
  const x = Math.min(Math.floor(u), w - 1), y = Math.min(Math.floor(v), h - 1);
  const fx = u - x, fy = v - y, W = w + 1;
  const a = S[y * W + x], b = S[y * W + x + 1], c = S[(y + 1) * W + x], d = S[(y + 1) * W + x + 1];
  return a * (1 - fx) * (1 - fy) + b * fx * (1 - fy) + c * (1 - fx) * fy + d * fx * fy;
}

/**
 * 784 model inputs (row-major 28 x 28, ink in [0, 1]) from an ink image (w x h, row-major,
 * values in [0, 1]). Returns null when there is no ink.
 */
export function toModelInput(ink, w, h) {
  let x0 = w, y0 = h, x1 = -1, y1 = -1, mass = 0, mx = 0, my = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = ink[y * w + x];
      if (v <= 0) continue;
      mass += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
      if (v >= INK_THRESHOLD) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  if (x1 < 0 || mass <= 0) return null;
  const cx = mx / mass, cy = my / mass;
  // Output pixels per input pixel. A dot or a tiny scribble is not blown up to the full box: its
  // box counts as at least a fifth of the canvas.
  const longer = Math.max(x1 - x0 + 1, y1 - y0 + 1, Math.max(w, h) / 5);
  const scale = BOX / longer;
  const S = summedArea(ink, w, h);
  const out = new Float32Array(SIDE * SIDE);
  const half = SIDE / 2, step = 1 / scale, area = step * step;
  for (let ty = 0; ty < SIDE; ty++) {
    const v0 = cy + (ty - half) * step, v1 = v0 + step;
    for (let tx = 0; tx < SIDE; tx++) {
      const u0 = cx + (tx - half) * step, u1 = u0 + step;
      const sum = integral(S, w, h, u1, v1) - integral(S, w, h, u0, v1) - integral(S, w, h, u1, v0) + integral(S, w, h, u0, v0);
      out[ty * SIDE + tx] = Math.min(1, Math.max(0, sum / area));
    }
  }
  return out;
}

/**
 * A 28 x 28 digit enlarged to a w x h ink image, each pixel a block (nearest neighbour): what
 * "load a test digit" paints on the 280 x 280 canvas.
 */
export function enlarge(digit, w, h) {
  const ink = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    const sy = Math.floor((y * SIDE) / h);
    for (let x = 0; x < w; x++) ink[y * w + x] = digit[sy * SIDE + Math.floor((x * SIDE) / w)];
  }
  return ink;
}

/** Ink as the canvas stores it: 8-bit levels (what getImageData gives back after putImageData). */
export function quantizeInk(ink) {
  return Float32Array.from(ink, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255) / 255);
}
