// bpe-fixtures.js — hand-made tokenizer.json files for the tokenizer tests (no model hub here):
// a small byte-level BPE trainer (most frequent pair first, incremental pair counts) learns merges
// from offline public-domain text (Debian's jargon-text and fortunes) plus a multilingual sample,
// and builders write GPT-2-style and Llama-3-style tokenizer.json objects around them, laid out as
// the Hugging Face files are. Independent of js/tokenizer.js: its own byte table and regexes.
import { readFileSync, readdirSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

/** GPT-2's bytes_to_unicode table, written from its definition. */
export const BYTE_CHARS = (() => {
  const keep = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(keep.includes(b) ? b : 256 + n++);
  return out;
})();

const encoder = new TextEncoder();
export const byteLevel = (s) => Array.from(encoder.encode(s), (b) => BYTE_CHARS[b]).join('');

// The pre-tokenizer regexes as the Hugging Face files write them (Oniguruma syntax) ...
export const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
export const LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
export const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
export const O200K_REGEX = "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// ... and, for training only, as JS regexes written by hand (case folding spelled out)
const TRAIN_SPLIT = {
  gpt2: /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu,
  llama3: /'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu,
};

/** Public-domain text available offline: the Jargon File and the fortune cookies. */
export function offlineText() {
  const jargon = gunzipSync(readFileSync('/usr/share/doc/jargon-text/jargon.txt.gz')).toString('utf8');
  const dir = '/usr/share/games/fortunes';
  const fortunes = readdirSync(dir).filter((f) => !f.includes('.')).sort()
    .map((f) => readFileSync(`${dir}/${f}`, 'utf8')).join('\n');
  return { jargon, fortunes };
}

/** Text in other scripts, with accents, combining marks, CJK, emoji, digits and odd spacing. */
export const MULTILINGUAL = [
  'Café, naïve façade, résumé, coöperate, Ångström, Øresund, smörgåsbord, jalapeño, crème brûlée.',
  'e\u0301te\u0301 (combining acute), n\u0303, a\u030A, Z\u0327, q\u0307\u0323: marks after their letters.',
  'Съешь же ещё этих мягких французских булок, да выпей чаю. Ελληνικά: Καλημέρα κόσμε.',
  '日本語のテキスト、東京都。中文：我们今天去北京。한국어 문장입니다. 漢字とかなが混ざった文。',
  'Emoji: 😀😃🙂 👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️ ✨ 🚀🚀🚀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛.',
  'العربية: مرحبا بالعالم. עברית: שלום עולם. हिन्दी: नमस्ते दुनिया. ไทย: สวัสดีชาวโลก',
  'Numbers 0123456789 12,345.678 3.14159 1e-10 2026-11-29 ٣٤٥ ४५६ ①②③ ¼ ½ ²³.',
  "Contractions: I'm, you're, he's, we've, they'll, I'd, don't, WON'T, IT'S, O'Neil's 'quoted'.",
  'Whitespace:\ttabs\t\tand  double  spaces,\u00a0nbsp,\u3000ideographic\u2003em space\n\nand\r\nlines \n  \n',
];

/**
 * Learn `count` merges from `text`, pre-split by the family's regex and mapped to byte-level
 * characters: each step merges the most frequent adjacent pair (ties: the smallest pair string).
 */
export function trainMerges(text, count, family = 'gpt2') {
  const counts = new Map();
  for (const m of text.matchAll(TRAIN_SPLIT[family])) {
    const w = byteLevel(m[0]);
    counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  const words = [...counts.keys()].map((w) => Array.from(w));
  const freq = [...counts.values()];
  const pairCount = new Map(), pairWords = new Map();
  const key = (a, b) => `${a} ${b}`; // byte-level symbols never hold a space
  const add = (wi, sign) => {
    const w = words[wi];
    for (let k = 0; k + 1 < w.length; k++) {
      const p = key(w[k], w[k + 1]);
      pairCount.set(p, (pairCount.get(p) ?? 0) + sign * freq[wi]);
      if (sign > 0) {
        if (!pairWords.has(p)) pairWords.set(p, new Set());
        pairWords.get(p).add(wi);
      }
    }
  };
  words.forEach((_, wi) => add(wi, 1));
  const merges = [];
  while (merges.length < count) {
    let best = null, bestCount = 0;
    for (const [p, c] of pairCount) {
      if (c > bestCount || (c === bestCount && c > 0 && p < best)) { best = p; bestCount = c; }
    }
    if (!best || bestCount < 2) break;
    const [a, b] = best.split(' ');
    merges.push([a, b]);
    for (const wi of pairWords.get(best)) {
      const w = words[wi];
      let has = false;
      for (let k = 0; k + 1 < w.length; k++) if (w[k] === a && w[k + 1] === b) { has = true; break; }
      if (!has) continue;
      add(wi, -1);
      const merged = [];
      for (let k = 0; k < w.length; k++) {
        if (k + 1 < w.length && w[k] === a && w[k + 1] === b) { merged.push(a + b); k++; } else merged.push(w[k]);
      }
      words[wi] = merged;
      add(wi, 1);
    }
    pairCount.delete(best);
  }
  return merges;
}

/** vocab: the 256 byte characters, then each merge's result in merge order, then extra tokens. */
export function vocabFor(merges, extra = []) {
  const vocab = {};
  let n = 0;
  for (const c of BYTE_CHARS) vocab[c] = n++;
  for (const [a, b] of merges) if (!(a + b in vocab)) vocab[a + b] = n++;
  for (const t of extra) if (!(t in vocab)) vocab[t] = n++;
  return vocab;
}

const added = (id, content, special = true, more = {}) =>
  ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special, ...more });

/** A GPT-2-style tokenizer.json: ByteLevel pre-tokenizer with its regex, "a b" merges, <|endoftext|>. */
export function gpt2Json(merges, { addPrefixSpace = false, mergeFormat = 'string', extraAdded = [] } = {}) {
  const vocab = vocabFor(merges, ['<|endoftext|>']);
  let next = Object.keys(vocab).length;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [added(vocab['<|endoftext|>'], '<|endoftext|>'), ...extraAdded.map((t) => added(next++, t.content, t.special, t))],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: addPrefixSpace, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, vocab,
      merges: mergeFormat === 'string' ? merges.map(([a, b]) => `${a} ${b}`) : merges.map((m) => [...m]),
    },
  };
}

export const LLAMA3_SPECIAL = ['<|begin_of_text|>', '<|end_of_text|>', '<|reserved_special_token_0|>',
  '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'];

/** A Llama-3-style tokenizer.json: Split(regex) + ByteLevel, ignore_merges, [a, b] merges, BOS template. */
export function llama3Json(merges, { regex = LLAMA3_REGEX, ignoreMerges = true, extraVocab = [], mergeFormat = 'pairs' } = {}) {
  const vocab = vocabFor(merges, extraVocab);
  let n = Object.keys(vocab).length;
  const special = LLAMA3_SPECIAL.map((t) => added(n++, t, true, { normalized: false }));
  const bos = special[0];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'Sequence',
      processors: [
        { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: bos.content, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [{ SpecialToken: { id: bos.content, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
            { SpecialToken: { id: bos.content, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
          special_tokens: { [bos.content]: { id: bos.content, ids: [bos.id], tokens: [bos.content] } },
        },
      ],
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: ignoreMerges, vocab,
      merges: mergeFormat === 'string' ? merges.map(([a, b]) => `${a} ${b}`) : merges.map((m) => [...m]),
    },
  };
}
