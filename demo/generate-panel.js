// generate-panel.js — panel 5: a ternary language model writing text in a Web Worker. The model is
// the character-level BitNet b1.58 transformer of test/fixtures/lm/charlm (trained on the Jargon
// File), packed at build time (models/charlm.safetensors, LanguageModel.save()); the page loads it
// with loadLanguageModel into a worker (the same bundle as the training worker) and streams the
// characters as the worker sends them, with tokens/s of the prefill and of the decode apart.
// Its context is 128 characters: longer texts are written in windows, each starting again from the
// last 64 characters (reset, prefill, decode). Stop aborts through an AbortSignal, which reaches
// the worker between two tokens.
import { loadLanguageModel } from 'tilelli';

const $ = (id) => document.getElementById(id);
const WINDOW_PROMPT = 64;

const rate = (tokens, ms) => (ms > 0 ? (tokens * 1000) / ms : 0);
const fmtRate = (r) => (r >= 100 ? r.toFixed(0) : r.toFixed(1));

export function generatePanel(app) {
  const ui = {
    prompt: $('gen-prompt'), temperature: $('gen-temperature'), topK: $('gen-topk'), length: $('gen-length'), seed: $('gen-seed'),
    run: $('gen-run'), stop: $('gen-stop'), out: $('gen-out'), status: $('gen-status'), stats: $('gen-stats'), bar: $('gen-bar'),
  };
  const state = {
    state: 'loading', loadEvents: 0, runs: 0, text: '', tokens: 0, windows: 0,
    prefill: { tokens: 0, ms: 0, tokensPerSecond: 0 }, decode: { tokens: 0, ms: 0, tokensPerSecond: 0 },
    model: null, lastError: null, loaded: {},
  };
  let lm = null, controller = null;

  const setState = (s) => {
    state.state = s;
    ui.run.disabled = s !== 'ready' && s !== 'done' && s !== 'stopped';
    ui.stop.disabled = s !== 'generating';
  };

  function showStats() {
    const { prefill: p, decode: d } = state;
    ui.stats.textContent = `prefill ${fmtRate(p.tokensPerSecond)} tokens/s (${p.tokens} prompt tokens in ${p.ms.toFixed(1)} ms) · ` +
      `decode ${fmtRate(d.tokensPerSecond)} tokens/s (${d.tokens} tokens in ${d.ms.toFixed(0)} ms)` +
      `${state.windows > 1 ? ` · ${state.windows} windows of the 128-character context` : ''}`;
  }

  async function load() {
    setState('loading');
    const t0 = performance.now();
    try {
      lm = await loadLanguageModel({ weights: app.siteUrl('models/charlm.safetensors'), tokenizer: app.siteUrl('models/charlm-tokenizer.json') }, {
        worker: app.workerUrl,
        init: { url: app.wasm },
        onProgress: ({ file, loaded, total }) => {
          state.loadEvents++;
          state.loaded[file] = { loaded, total };
          if (file === 'weights' && total) ui.bar.style.width = `${((100 * loaded) / total).toFixed(1)}%`;
          ui.status.textContent = `loading the model in a worker: ${file} ${(loaded / 1024).toFixed(0)}${total ? ` of ${(total / 1024).toFixed(0)}` : ''} KiB`;
        },
      });
      const c = lm.config;
      state.model = { layers: c.num_hidden_layers, hidden: c.hidden_size, heads: c.num_attention_heads, kvHeads: c.num_key_value_heads, vocab: c.vocab_size, context: lm.context, ms: performance.now() - t0 };
      ui.bar.style.width = '100%';
      ui.status.textContent = `Loaded in ${state.model.ms.toFixed(0)} ms: ${c.num_hidden_layers} layers, hidden ${c.hidden_size}, ${c.num_attention_heads} heads over ` +
        `${c.num_key_value_heads} KV heads, squared ReLU, ${c.vocab_size} characters, ternary projections packed 2 bits a weight (${c.format}), ` +
        `${c.tilelli_activations} activations. Press Generate.`;
      setState('ready');
    } catch (e) {
      state.lastError = e?.message ?? String(e);
      ui.status.textContent = `The model could not be loaded: ${state.lastError}`;
      console.error('language model:', e);
      setState('failed');
    }
  }

  async function generate() {
    if (!lm || state.state === 'generating') return;
    controller = new AbortController();
    const want = Math.max(1, Math.min(4000, Number(ui.length.value) || 200));
    const temperature = Math.max(0, Number(ui.temperature.value) || 0);
    const topK = Math.max(0, Math.floor(Number(ui.topK.value) || 0));
    const seed = Math.max(0, Math.floor(Number(ui.seed.value) || 0));
    Object.assign(state, { text: '', tokens: 0, windows: 0, prefill: { tokens: 0, ms: 0, tokensPerSecond: 0 }, decode: { tokens: 0, ms: 0, tokensPerSecond: 0 } });
    setState('generating');
    let text = ui.prompt.value || '\n';
    ui.out.textContent = '';
    const promptEl = document.createElement('span');
    promptEl.className = 'prompt';
    promptEl.textContent = text;
    const made = document.createElement('span');
    ui.out.append(promptEl, made);
    ui.status.textContent = `writing ${want} characters (temperature ${temperature}${topK ? `, top-k ${topK}` : ''}, seed ${seed}) …`;
    const t0 = performance.now();
    let seen = 0;
    ui.bar.style.width = '0';
    try {
      while (state.tokens < want) {
        await lm.reset();
        const window = text.slice(-WINDOW_PROMPT);
        const r = await lm.generate(window, {
          maxNewTokens: Math.min(want - state.tokens, lm.context - window.length), temperature, topK, seed: seed + state.windows,
          signal: controller.signal,
          onToken: ({ text: piece }) => {
            made.textContent += piece;
            state.text += piece;
            seen++;
            ui.bar.style.width = `${((100 * seen) / want).toFixed(1)}%`;
          },
        });
        state.windows++;
        text += r.text;
        state.tokens += r.tokens.length;
        state.prefill.tokens += r.promptTokens, state.prefill.ms += r.prefillMs;
        // the decode: every token after the first (the first comes from the prefill's logits)
        state.decode.tokens += Math.max(0, r.tokens.length - 1), state.decode.ms += r.decodeMs;
        state.prefill.tokensPerSecond = rate(state.prefill.tokens, state.prefill.ms);
        state.decode.tokensPerSecond = rate(state.decode.tokens, state.decode.ms);
        showStats();
        if (r.stopReason !== 'length' && r.stopReason !== 'context') break;
        if (r.tokens.length === 0) break;
      }
      state.runs++;
      setState('done');
      ui.status.textContent = `${state.tokens} characters in ${((performance.now() - t0) / 1000).toFixed(2)} s, in the worker.`;
    } catch (e) {
      if (e?.name === 'AbortError') {
        state.runs++;
        setState('stopped');
        ui.status.textContent = `stopped after ${state.text.length} characters.`;
        showStats();
      } else {
        state.lastError = e?.message ?? String(e);
        ui.status.textContent = `generation failed: ${state.lastError}`;
        console.error('generation failed:', e);
        setState('ready');
      }
    }
  }

  ui.run.addEventListener('click', () => { generate(); });
  ui.stop.addEventListener('click', () => controller?.abort());
  load();
  return state;
}
