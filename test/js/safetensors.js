// safetensors.js — a small writer of safetensors files for the tests (by the published layout:
// u64 LE header length, JSON header padded with spaces to a multiple of 8, raw data).

const SIZES = { F32: 4, F16: 2, BF16: 2, I8: 1, U8: 1, F64: 8, I32: 4 };

/**
 * tensors: [{ name, dtype, shape, data: Uint8Array | typed array }]; metadata: { key: string }.
 * Returns the file bytes.
 */
export function writeSafetensors(tensors, metadata) {
  const header = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const parts = tensors.map((t) => {
    const data = t.data instanceof Uint8Array ? t.data : new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + data.length] };
    offset += data.length;
    return data;
  });
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8) json += ' ';
  const head = new TextEncoder().encode(json);
  const file = new Uint8Array(8 + head.length + offset);
  new DataView(file.buffer).setBigUint64(0, BigInt(head.length), true);
  file.set(head, 8);
  let at = 8 + head.length;
  for (const p of parts) {
    file.set(p, at);
    at += p.length;
  }
  return file;
}

export { SIZES };
