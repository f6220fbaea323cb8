// pack-panel.js — panel 3: the current model's size as float32 and as a packed model file in each
// format (the same trits and scales, repacked by Model.convert), and a button that downloads the file.

const $ = (id) => document.getElementById(id);
// What the page says of each format the library has (tl.formats, from the core's table).
const NOTES = { i2: '2 bits: 4 trits a byte', tq1: '5 trits a byte in base 3', bitplane: 'a +1 and a −1 bit plane' };

function bytesText(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(2)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

export function packPanel(app) {
  const { tl } = app;
  const ui = { body: $('sizes').tBodies[0], format: $('pack-format'), download: $('pack-download'), model: $('pack-model') };
  const FORMATS = tl.formats.map((id) => ({ id, note: NOTES[id] ?? '' }));
  // a format the page has no option for yet still gets one
  for (const { id } of FORMATS) {
    if (![...ui.format.options].some((o) => o.value === id)) ui.format.add(new Option(id, id));
  }
  const state = { sizes: null, downloads: 0, files: {} };

  function update(m) {
    const linear = m.model.layers.filter((L) => L.weights);
    const weights = linear.reduce((n, L) => n + L.in * L.out, 0), biases = linear.reduce((n, L) => n + (L.bias ? L.out : 0), 0);
    const float32 = (weights + biases) * 4;
    const files = {};
    const rows = [];
    for (const f of FORMATS) {
      // the file the Draw panel runs when it is in this format, else the same trits repacked
      if (linear.every((L) => L.weights === f.id)) {
        files[f.id] = m.bytes;
      } else {
        const other = m.model.convert(f.id);
        files[f.id] = other.save();
        other.free();
      }
      let packed = 0;
      for (const L of linear) packed += tl.packedSize([L.out, L.in], f.id);
      rows.push({ ...f, bytes: files[f.id].length, bits: (packed * 8) / weights });
    }
    state.files = files;
    state.sizes = { float32, ...Object.fromEntries(rows.map((r) => [r.id, r.bytes])) };
    const bar = (n) => `<div class="bar" style="width:${((100 * n) / float32).toFixed(2)}%"></div>`;
    ui.body.innerHTML =
      `<tr class="float"><td>float32</td><td class="n">32</td><td class="n">${bytesText(float32)}</td><td>${bar(float32)}</td></tr>` +
      rows.map((r) => `<tr><td><b>${r.id}</b><br><span class="ratio">${r.note}</span></td><td class="n">${r.bits.toFixed(2)}</td>` +
        `<td class="n">${bytesText(r.bytes)}<br><span class="ratio">${(float32 / r.bytes).toFixed(1)}× smaller</span></td><td>${bar(r.bytes)}</td></tr>`).join('');
    ui.model.innerHTML = `The current model (${m.label}) has ${weights.toLocaleString('en-US')} weights and ${biases.toLocaleString('en-US')} biases. ` +
      'Bits per weight count the padding of each row; the file adds the scales, the biases (float32) and a JSON header.';
    ui.download.disabled = false;
  }

  ui.download.addEventListener('click', () => {
    const format = ui.format.value;
    const bytes = state.files[format];
    if (!bytes) return;
    const m = app.current;
    const how = m.source === 'built-in' ? 'builtin' : m.quantizer === 'none' ? 'float32-ptq' : m.quantizer.replace('_', '-');
    const name = `tilelli-mnist-${how}-${format}.tlm`;
    const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    state.downloads++;
    state.lastDownload = { name, format, bytes: bytes.length, serial: m.serial };
  });

  app.onModel(update);
  return state;
}
