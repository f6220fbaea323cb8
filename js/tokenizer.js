// tokenizer.js — text to token ids and back, in plain JS (string work; nothing here needs the
// wasm core, so Tokenizer is usable before and without init()).
//
// Two kinds, picked by Tokenizer.fromJSON from the file's shape:
// - 'bpe': a Hugging Face tokenizer.json whose model is BPE (vocab + merges), with the
//   pre-tokenizers of the GPT-2 family (ByteLevel with its regex) and of the Llama-3 family
//   (Sequence[Split(regex, Isolated), ByteLevel(use_regex: false)]), added tokens matched
//   before anything else, TemplateProcessing / ByteLevel / Roberta / Bert post-processors for
//   addSpecialTokens, and the ByteLevel decoder. Behaviour follows the Rust `tokenizers`
//   crate (regexes have Oniguruma's meaning: \s is Unicode White_Space, . stops only at \n).
// - 'char': our own small JSON form for character-level models (documented in index.d.ts):
//   { "type": "char", "vocab": [...], "special": [...], "unk", "bos", "eos", "add_bos", "add_eos" }.
//
// Decoding goes through bytes for both kinds: every id owns a byte string (a byte-level
// token's bytes, an added token's UTF-8), so decode() and the streaming decoder are one
// TextDecoder over the same bytes, and a character split over two tokens comes out whole.
import { TilelliError } from './errors.js';
import { STATUS } from './constants.js';

const parseError = (message) => new TilelliError('PARSE', message, { status: STATUS.PARSE });
const formatError = (message) => new TilelliError('INVALID_FORMAT', message, { status: STATUS.FORMAT });
const argError = (message) => new TilelliError('INVALID_ARGUMENT', message, { status: STATUS.ARGUMENT });

const show = (s) => JSON.stringify(s);
const isObject = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);
const utf8 = new TextEncoder();

// ---- GPT-2's byte <-> character table (bytes_to_unicode): printable Latin-1 bytes stand for
// themselves, the 68 others for U+0100.. in byte order.
const BYTE_CHAR = new Array(256);
const CHAR_BYTE = new Array(0x144); // char code -> byte (undefined: no byte)
{
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    BYTE_CHAR[b] = String.fromCharCode(printable ? b : 256 + n++);
    CHAR_BYTE[BYTE_CHAR[b].charCodeAt(0)] = b;
  }
}

function byteLevelString(text) {
  const bytes = utf8.encode(text);
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += BYTE_CHAR[bytes[i]];
  return s;
}

// GPT-2's pre-tokenizer regex as Oniguruma reads it (what the Rust crate runs): \s is Unicode
// White_Space, so U+0085 is a space and U+FEFF is not (JS's own \s says the opposite).
const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

// ---- Oniguruma patterns (tokenizer.json's Split "Regex") to JS RegExp. Covers what the
// GPT-2 / Llama-3 / Qwen families write; anything else is refused by name, not guessed.
const CLASS_ESCAPES = { s: '\\p{White_Space}', S: '\\P{White_Space}', d: '\\p{Nd}', D: '\\P{Nd}', w: '\\p{L}\\p{M}\\p{Nd}\\p{Pc}' };
const ESCAPES = { ...CLASS_ESCAPES, w: '[\\p{L}\\p{M}\\p{Nd}\\p{Pc}]', W: '[^\\p{L}\\p{M}\\p{Nd}\\p{Pc}]', A: '(?<![\\s\\S])', z: '(?![\\s\\S])' };
const isAsciiLetter = (c) => /^[A-Za-z]$/.test(c);
// Oniguruma folds case by Unicode's CaseFolding.txt: besides the other ASCII case, U+017F (long s)
// folds to s and U+212A (Kelvin sign) to k; no other character folds to an ASCII letter.
const FOLDS = { s: '\u017f', k: '\u212a' };
const otherCase = (c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()) + (FOLDS[c.toLowerCase()] ?? '');

function property(p, name, where) {
  for (const candidate of [name, `Script=${name}`]) {
    try {
      new RegExp(`\\p{${candidate}}`, 'u');
      return `\\${p}{${candidate}}`;
    } catch { /* try the next spelling */ }
  }
  throw formatError(`${where}: unknown Unicode property \\${p}{${name}}`);
}

/** Translate an Oniguruma pattern to a JS 'gu' RegExp, or throw INVALID_FORMAT naming the construct. */
export function translatePattern(src, where) {
  let out = '';
  const groups = []; // per open group: is it case-insensitive
  let ci = false;
  const unsupported = (what, at) =>
    formatError(`${where}: the regex ${show(src)} uses ${what} at offset ${at}, which this tokenizer does not translate`);
  // an escape at src[i] === '\\'; returns [text, next index]
  const escape = (i, inClass) => {
    const c = src[i + 1];
    if (c === undefined) throw unsupported('a trailing backslash', i);
    if (c === 'p' || c === 'P') {
      const m = /^\{(\^?)([A-Za-z_ =]+)\}/.exec(src.slice(i + 2));
      if (!m) throw unsupported(`\\${c} without {name}`, i);
      const p = m[1] ? (c === 'p' ? 'P' : 'p') : c;
      return [property(p, m[2].replace(/ /g, '_'), where), i + 2 + m[0].length];
    }
    if (c === 'x' && src[i + 2] === '{') {
      const end = src.indexOf('}', i);
      if (end < 0) throw unsupported('an unterminated \\x{', i);
      return [`\\u{${src.slice(i + 3, end)}}`, end + 1];
    }
    const table = inClass ? CLASS_ESCAPES : ESCAPES;
    if (Object.hasOwn(table, c)) return [table[c], i + 2];
    if ('rntfv'.includes(c) || /[\\^$.*+?()[\]{}|/\-'" #&~,:;<=>!@%`]/.test(c)) return [`\\${c}`, i + 2];
    if (c === 'x' || c === 'u') return [src.slice(i, i + (c === 'x' ? 4 : 6)), i + (c === 'x' ? 4 : 6)];
    throw unsupported(`\\${c}`, i);
  };
  for (let i = 0; i < src.length;) {
    const c = src[i];
    if (c === '\\') {
      const [text, next] = escape(i, false);
      out += text;
      i = next;
    } else if (c === '[') {
      let j = i + 1, body = '';
      if (src[j] === '^') { body += '^'; j++; }
      if (src[j] === ']') { body += '\\]'; j++; } // a leading ] is a literal in Oniguruma
      for (;;) {
        const d = src[j];
        if (d === undefined) throw unsupported('an unterminated character class', i);
        if (d === ']') break;
        if (d === '[') throw unsupported('a nested character class', j);
        if (d === '&' && src[j + 1] === '&') throw unsupported('a class intersection (&&)', j);
        if (d === '\\') {
          const [text, next] = escape(j, true);
          body += text;
          j = next;
          continue;
        }
        if (ci && isAsciiLetter(d) && src[j + 1] === '-' && isAsciiLetter(src[j + 2] ?? '') && (d <= 'Z') === (src[j + 2] <= 'Z')) {
          const a = d, b = src[j + 2];
          const flip = (c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase());
          body += `${a}-${b}${flip(a)}-${flip(b)}`;
          for (const [letter, fold] of Object.entries(FOLDS)) if (letter >= a.toLowerCase() && letter <= b.toLowerCase()) body += fold;
          j += 3;
          continue;
        }
        if (ci && src[j + 1] === '-' && src[j + 2] !== undefined && src[j + 2] !== ']') {
          if (isAsciiLetter(d) || isAsciiLetter(src[j + 2])) throw unsupported('a case-insensitive range between cases', j);
          body += src.slice(j, j + 3);
          j += 3;
          continue;
        }
        body += ci && isAsciiLetter(d) ? d + otherCase(d) : d === '/' ? '\\/' : d;
        j++;
      }
      out += `[${body}]`;
      i = j + 1;
    } else if (c === '(') {
      if (src[i + 1] === '?') {
        const rest = src.slice(i + 2);
        if (rest.startsWith('i:')) { groups.push(ci); ci = true; out += '(?:'; i += 4; continue; }
        if (rest.startsWith('-i:')) { groups.push(ci); ci = false; out += '(?:'; i += 5; continue; }
        const m = /^(?::|=|!|<=|<!|<[A-Za-z_]\w*>)/.exec(rest);
        if (!m) throw unsupported(`the group (?${rest.slice(0, 2)}`, i);
        groups.push(ci);
        out += `(?${m[0]}`;
        i += 2 + m[0].length;
      } else {
        groups.push(ci);
        out += '(';
        i++;
      }
    } else if (c === ')') {
      if (groups.length === 0) throw unsupported('an unbalanced )', i);
      ci = groups.pop();
      out += ')';
      i++;
    } else if (c === '*' || c === '+' || c === '?' || c === '}') {
      out += c;
      i++;
      if (src[i] === '+') throw unsupported('a possessive quantifier', i);
    } else if (c === '.') {
      out += '[^\\n]'; // Oniguruma's . stops only at \n
      i++;
    } else if (c === '^') {
      out += '(?<![^\\n])'; // Oniguruma's ^ and $ are line anchors, lines end at \n only
      i++;
    } else if (c === '$') {
      out += '(?![^\\n])';
      i++;
    } else {
      const cp = String.fromCodePoint(src.codePointAt(i));
      out += ci && isAsciiLetter(c) ? `[${c}${otherCase(c)}]` : c === '/' ? '\\/' : cp;
      i += cp.length;
    }
  }
  if (groups.length) throw unsupported('an unclosed (', src.length);
  try {
    return new RegExp(out, 'gu');
  } catch (e) {
    throw formatError(`${where}: the regex ${show(src)} does not compile (${e.message})`);
  }
}

// ---- Pre-tokenizers: each maps a list of pieces to a list of pieces, as in the Rust crate.

/** Split text at a regex's matches; `behavior` and `invert` as in the Split pre-tokenizer. */
function splitPieces(text, regex, behavior, invert) {
  const spans = []; // [start, end, isMatch]
  let prev = 0;
  regex.lastIndex = 0;
  for (const m of text.matchAll(regex)) {
    if (m[0].length === 0) continue;
    if (m.index > prev) spans.push([prev, m.index, false]);
    spans.push([m.index, m.index + m[0].length, true]);
    prev = m.index + m[0].length;
  }
  if (prev < text.length) spans.push([prev, text.length, false]);
  if (invert) for (const s of spans) s[2] = !s[2];
  const out = [];
  switch (behavior) {
    case 'Removed':
      for (const [a, b, isMatch] of spans) if (!isMatch) out.push(text.slice(a, b));
      break;
    case 'Isolated':
      for (const [a, b] of spans) out.push(text.slice(a, b));
      break;
    case 'MergedWithPrevious': {
      let start = 0;
      for (const [, b, isMatch] of spans) if (isMatch) { out.push(text.slice(start, b)); start = b; }
      if (start < text.length) out.push(text.slice(start));
      break;
    }
    case 'MergedWithNext': {
      // a match joins the piece that follows it, unless that is a match too
      let start = -1;
      for (const [a, b, isMatch] of spans) {
        if (isMatch) {
          if (start >= 0) out.push(text.slice(start, a));
          start = a;
        } else {
          out.push(text.slice(start >= 0 ? start : a, b));
          start = -1;
        }
      }
      if (start >= 0) out.push(text.slice(start));
      break;
    }
    case 'Contiguous': {
      for (let k = 0; k < spans.length;) {
        let j = k;
        while (j + 1 < spans.length && spans[j + 1][2] === spans[k][2]) j++;
        out.push(text.slice(spans[k][0], spans[j][1]));
        k = j + 1;
      }
      break;
    }
    default:
      throw new Error('unreachable');
  }
  return out;
}

const BEHAVIORS = ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];

/** Build a pre-tokenizer step (pieces => pieces) from its JSON. */
function makePreTokenizer(config, where) {
  if (config === null || config === undefined) return null;
  if (!isObject(config)) throw parseError(`${where} must be an object or null`);
  switch (config.type) {
    case 'ByteLevel': {
      const addPrefixSpace = config.add_prefix_space === true;
      const useRegex = config.use_regex !== false;
      return (pieces) => {
        const out = [];
        for (let piece of pieces) {
          if (addPrefixSpace && !piece.startsWith(' ')) piece = ' ' + piece;
          if (useRegex) {
            GPT2_PATTERN.lastIndex = 0;
            for (const m of piece.matchAll(GPT2_PATTERN)) out.push(byteLevelString(m[0]));
          } else if (piece.length) {
            out.push(byteLevelString(piece));
          }
        }
        return out;
      };
    }
    case 'Split': {
      const pattern = config.pattern;
      const behavior = config.behavior;
      if (!BEHAVIORS.includes(behavior)) throw formatError(`${where}.behavior is ${show(behavior)}, not one of ${BEHAVIORS.join(', ')}`);
      let regex;
      if (isObject(pattern) && typeof pattern.Regex === 'string') regex = translatePattern(pattern.Regex, `${where}.pattern`);
      else if (isObject(pattern) && typeof pattern.String === 'string' && pattern.String.length > 0) {
        regex = new RegExp(pattern.String.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'), 'gu');
      } else throw parseError(`${where}.pattern must be { "Regex": string } or { "String": non-empty string }`);
      const invert = config.invert === true;
      return (pieces) => pieces.flatMap((p) => splitPieces(p, regex, behavior, invert));
    }
    case 'Sequence': {
      if (!Array.isArray(config.pretokenizers)) throw parseError(`${where}.pretokenizers must be an array`);
      const steps = config.pretokenizers.map((c, k) => makePreTokenizer(c, `${where}.pretokenizers[${k}]`)).filter(Boolean);
      return (pieces) => steps.reduce((acc, step) => step(acc), pieces);
    }
    default:
      throw formatError(`${where}.type is ${show(config.type)}: this tokenizer reads the ByteLevel, Split and Sequence pre-tokenizers`);
  }
}

const NORMALIZERS = { NFC: 'NFC', NFD: 'NFD', NFKC: 'NFKC', NFKD: 'NFKD' };

function makeNormalizer(config, where) {
  if (config === null || config === undefined) return null;
  if (!isObject(config)) throw parseError(`${where} must be an object or null`);
  if (Object.hasOwn(NORMALIZERS, config.type)) return (s) => s.normalize(NORMALIZERS[config.type]);
  if (config.type === 'Lowercase') return (s) => s.toLowerCase();
  if (config.type === 'Sequence') {
    if (!Array.isArray(config.normalizers)) throw parseError(`${where}.normalizers must be an array`);
    const steps = config.normalizers.map((c, k) => makeNormalizer(c, `${where}.normalizers[${k}]`)).filter(Boolean);
    return (s) => steps.reduce((acc, f) => f(acc), s);
  }
  throw formatError(`${where}.type is ${show(config.type)}: this tokenizer reads the NFC, NFD, NFKC, NFKD, Lowercase and Sequence normalizers`);
}

// ---- Helpers shared by both kinds

function checkId(id, vocabSize, fn, index) {
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
    const at = index === undefined ? '' : ` at index ${index}`;
    throw argError(`${fn}: token id ${typeof id === 'number' ? id : show(String(id))}${at} is not an integer in [0, ${vocabSize})`);
  }
}

class Ids {
  constructor() { this.a = new Uint32Array(64); this.n = 0; }
  push(x) {
    if (this.n === this.a.length) { const b = new Uint32Array(this.n * 2); b.set(this.a); this.a = b; }
    this.a[this.n++] = x;
  }
  result() { return this.a.slice(0, this.n); }
}

// The Rust crate's single_word test (its regex crate's Unicode \w next to the match) and
// its lstrip / rstrip test (char::is_whitespace: White_Space)
const W = '[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]';
const WORD_BEFORE = new RegExp(`${W}$`, 'u'), WORD_AFTER = new RegExp(`^${W}`, 'u'), SPACE = /^\p{White_Space}$/u;

/** Leftmost-longest matcher of literal strings (added tokens) with the Rust crate's strip rules. */
class TokenSplitter {
  /** @param {{content: string, id: number, lstrip: boolean, rstrip: boolean, singleWord: boolean}[]} tokens */
  constructor(tokens) {
    this.byContent = new Map(tokens.map((t) => [t.content, t]));
    const alternatives = [...this.byContent.keys()].sort((a, b) => b.length - a.length)
      .map((s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'));
    this.regex = alternatives.length ? new RegExp(alternatives.join('|'), 'gu') : null;
  }

  /** [text, token|null, offset][] covering text; stripped whitespace goes to the token. */
  split(text) {
    if (!this.regex) return [[text, null, 0]];
    const out = [];
    let prev = 0;
    const re = this.regex;
    re.lastIndex = 0;
    for (let m; (m = re.exec(text));) {
      const token = this.byContent.get(m[0]);
      let start = m.index, end = start + m[0].length;
      if (token.singleWord && (WORD_BEFORE.test(text.slice(Math.max(0, start - 2), start)) || WORD_AFTER.test(text.slice(end, end + 2)))) {
        continue; // a match inside a word is no match (the scan goes on after it, as the Rust crate's)
      }
      // the Rust crate's lstrip / rstrip: the White_Space next to the token is part of it
      if (token.lstrip) while (start > prev && SPACE.test(text[start - 1])) start--;
      if (token.rstrip) while (end < text.length && SPACE.test(text[end])) end++;
      if (start > prev) out.push([text.slice(prev, start), null, prev]);
      out.push([m[0], token, m.index]);
      prev = end;
      re.lastIndex = end;
    }
    if (prev < text.length) out.push([text.slice(prev), null, prev]);
    return out;
  }
}

// ---- The streaming decoder

class TokenDecoder {
  constructor(tokenizer, skipSpecialTokens) {
    this.tokenizer = tokenizer;
    this.skip = skipSpecialTokens;
    this.text = new TextDecoder('utf-8', { ignoreBOM: true });
    this.first = true;
  }

  /** Feed one id (or several); returns the text they complete (maybe ''). */
  push(ids) {
    const list = typeof ids === 'number' ? [ids] : ids;
    if (!isIdList(list)) throw argError('TokenDecoder.push: ids must be a token id, an array or a typed array of them');
    const bytes = this.tokenizer._bytes(list, this.skip, this.first, 'TokenDecoder.push');
    if (bytes.length) this.first = false;
    return this.text.decode(bytes, { stream: true });
  }

  /** The end of the stream: an incomplete character left over comes out as U+FFFD. The decoder can be reused. */
  end() {
    this.first = true;
    return this.text.decode();
  }
}

// ---- The tokenizer

export class Tokenizer {
  /** @private use Tokenizer.fromJSON */
  constructor(spec) {
    for (const [key, value] of Object.entries(spec)) {
      // the tables stay out of console.log and JSON.stringify
      Object.defineProperty(this, key, { value, enumerable: !key.startsWith('_'), writable: false });
    }
    Object.freeze(this.specialIds);
  }

  /**
   * Read a tokenizer: a Hugging Face tokenizer.json (BPE model) or tilelli's character-level
   * form, as JSON text, UTF-8 bytes or a parsed object. `config` (optional) is the model's
   * tokenizer_config.json (or any object with bos_token / eos_token / unk_token / pad_token),
   * which names the BOS and EOS tokens a tokenizer.json does not.
   */
  static fromJSON(json, config) {
    const root = readJSON(json, 'Tokenizer.fromJSON');
    const cfg = config === undefined || config === null ? {} : readJSON(config, 'Tokenizer.fromJSON: config');
    if (!isObject(root)) throw parseError('Tokenizer.fromJSON: the tokenizer must be a JSON object');
    if (!isObject(cfg)) throw parseError('Tokenizer.fromJSON: config must be a JSON object');
    if (root.type === 'char') return new Tokenizer(readChar(root));
    if (Object.hasOwn(root, 'model')) return new Tokenizer(readHuggingFace(root, cfg));
    throw formatError('Tokenizer.fromJSON: neither a tokenizer.json (no "model") nor a character tokenizer ("type": "char")');
  }

  /** Text to token ids. */
  encode(text, options = {}) {
    if (typeof text !== 'string') throw argError(`Tokenizer.encode: text must be a string, got ${text === null ? 'null' : typeof text}`);
    const addSpecialTokens = readOptions(options, 'Tokenizer.encode', { addSpecialTokens: 'boolean' }).addSpecialTokens ?? true;
    const ids = new Ids();
    if (addSpecialTokens) for (const id of this._prefix) ids.push(id);
    for (const [piece, token, offset] of this._added.split(text)) {
      if (token) ids.push(token.id);
      else this._encodeText(piece, ids, offset);
    }
    if (addSpecialTokens) for (const id of this._suffix) ids.push(id);
    return ids.result();
  }

  /** Token ids to text. Invalid UTF-8 (a character cut off) becomes U+FFFD. */
  decode(ids, options = {}) {
    if (!isIdList(ids)) throw argError('Tokenizer.decode: ids must be an array or typed array of token ids');
    const { skipSpecialTokens = false } = readOptions(options, 'Tokenizer.decode', { skipSpecialTokens: 'boolean' });
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(this._bytes(ids, skipSpecialTokens, true, 'Tokenizer.decode'));
  }

  /** A streaming decoder for generation: push(id) returns only complete characters. */
  decoder(options = {}) {
    const { skipSpecialTokens = false } = readOptions(options, 'Tokenizer.decoder', { skipSpecialTokens: 'boolean' });
    return new TokenDecoder(this, skipSpecialTokens);
  }

  /** The id of a token (its vocabulary string), or undefined. */
  idOf(token) {
    if (typeof token !== 'string') throw argError(`Tokenizer.idOf: token must be a string, got ${typeof token}`);
    return this._ids.get(token);
  }

  /** The vocabulary string of an id (undefined for an unused id below vocabSize). */
  tokenOf(id) {
    checkId(id, this.vocabSize, 'Tokenizer.tokenOf');
    return this._tokens[id];
  }

  /** Is this id a special token (skipped by skipSpecialTokens)? */
  isSpecial(id) {
    checkId(id, this.vocabSize, 'Tokenizer.isSpecial');
    return this._special[id] === 1;
  }

  /** The bytes of ids, concatenated (with the decoder's separator when it joins with spaces). */
  _bytes(ids, skip, first, fn) {
    const { _offsets: offsets, _pool: pool, _special: special } = this;
    const n = ids.length;
    let total = 0;
    for (let k = 0; k < n; k++) {
      const id = ids[k];
      checkId(id, this.vocabSize, fn, k);
      if (offsets[id] === offsets[id + 1] && this._tokens[id] === undefined) {
        throw argError(`${fn}: token id ${id} at index ${k} is not in the vocabulary`);
      }
      if (!(skip && special[id])) total += offsets[id + 1] - offsets[id] + this._separator;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (let k = 0; k < n; k++) {
      const id = ids[k];
      if (skip && special[id]) continue;
      if (this._separator && !first) out[at++] = 0x20;
      first = false;
      out.set(pool.subarray(offsets[id], offsets[id + 1]), at);
      at += offsets[id + 1] - offsets[id];
    }
    return at === total ? out : out.subarray(0, at);
  }
}

function readJSON(json, where) {
  if (typeof json === 'string') {
    try { return JSON.parse(json); } catch (e) { throw new TilelliError('PARSE', `${where}: not JSON (${e.message})`, { status: STATUS.PARSE, cause: e }); }
  }
  if (json instanceof ArrayBuffer || ArrayBuffer.isView(json)) {
    const bytes = json instanceof ArrayBuffer ? new Uint8Array(json) : new Uint8Array(json.buffer, json.byteOffset, json.byteLength);
    let text;
    try { text = new TextDecoder('utf-8', { fatal: true }).decode(bytes); } catch (e) {
      throw new TilelliError('PARSE', `${where}: the bytes are not UTF-8`, { status: STATUS.PARSE, cause: e });
    }
    return readJSON(text, where);
  }
  if (isObject(json)) return json;
  throw argError(`${where}: expected JSON text, UTF-8 bytes or an object, got ${json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json}`);
}

function readOptions(options, fn, types) {
  if (options === undefined) return {};
  if (!isObject(options)) throw argError(`${fn}: options must be an object`);
  for (const [key, type] of Object.entries(types)) {
    if (options[key] !== undefined && typeof options[key] !== type) throw argError(`${fn}: ${key} must be a ${type}, got ${typeof options[key]}`);
  }
  return options;
}

const isIdList = (ids) => Array.isArray(ids) || (ArrayBuffer.isView(ids) && !(ids instanceof DataView) && typeof ids[0] !== 'bigint');

/** offsets + pool of every id's bytes (tokens[id] undefined for holes): write(token, pool, at) -> bytes written. */
function bytePool(tokens, write) {
  let bound = 0;
  for (let id = 0; id < tokens.length; id++) if (tokens[id] !== undefined) bound += tokens[id].length * 3;
  const pool = new Uint8Array(bound), offsets = new Uint32Array(tokens.length + 1);
  let at = 0;
  for (let id = 0; id < tokens.length; id++) {
    if (tokens[id] !== undefined) at += write(id, tokens[id], pool, at);
    offsets[id + 1] = at;
  }
  return { _pool: pool.slice(0, at), _offsets: offsets };
}

const writeUtf8 = (id, token, pool, at) => utf8.encodeInto(token, pool.subarray(at)).written;

function tokenName(value, where) {
  // tokenizer_config.json writes a token as a string or as { "content": string, ... }
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value.content === 'string') return value.content;
  throw parseError(`${where} must be a token string or { "content": string }`);
}

// ---- Hugging Face tokenizer.json

function readHuggingFace(root, cfg) {
  const model = root.model;
  if (!isObject(model)) throw parseError('tokenizer.json: "model" must be an object');
  if (model.type !== 'BPE' && !(model.type === undefined && Object.hasOwn(model, 'merges'))) {
    throw formatError(`tokenizer.json: model.type is ${show(model.type)}: this tokenizer reads BPE models only`);
  }
  if (model.dropout !== undefined && model.dropout !== null && model.dropout !== 0) {
    throw formatError('tokenizer.json: model.dropout is set: BPE dropout is random, and this tokenizer encodes deterministically');
  }
  for (const key of ['continuing_subword_prefix', 'end_of_word_suffix']) {
    if (model[key] !== undefined && model[key] !== null && model[key] !== '') {
      throw formatError(`tokenizer.json: model.${key} is ${show(model[key])}: this tokenizer reads BPE without subword affixes`);
    }
  }
  if (!isObject(model.vocab)) throw parseError('tokenizer.json: model.vocab must be an object of token -> id');
  if (!Array.isArray(model.merges)) throw parseError('tokenizer.json: model.merges must be an array');

  // BPE looks only at the model's own vocabulary (modelIds); idOf at the added tokens first
  const modelIds = new Map();
  const keys = Object.keys(model.vocab);
  let maxId = -1;
  for (let k = 0; k < keys.length; k++) {
    const id = model.vocab[keys[k]];
    if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) throw parseError(`tokenizer.json: model.vocab[${show(keys[k])}] is ${show(id)}, not a token id`);
    if (id > maxId) maxId = id;
  }
  const tokens = new Array(maxId + 1);
  for (let k = 0; k < keys.length; k++) {
    const token = keys[k], id = model.vocab[token];
    if (tokens[id] !== undefined) throw parseError(`tokenizer.json: model.vocab gives id ${id} to both ${show(tokens[id])} and ${show(token)}`);
    tokens[id] = token;
    modelIds.set(token, id);
  }
  const addedIdOf = new Map();
  const ids = {
    get: (token) => addedIdOf.get(token) ?? modelIds.get(token),
    has: (token) => addedIdOf.has(token) || modelIds.has(token),
  };

  // merges: "a b" or ["a", "b"]; rank = position in the list (a later duplicate wins, as in the Rust crate)
  const merges = new PairTable(model.merges.length);
  const list = model.merges;
  for (let rank = 0; rank < list.length; rank++) {
    const merge = list[rank];
    let left, right;
    if (typeof merge === 'string') {
      const space = merge.indexOf(' ');
      if (space < 0 || merge.indexOf(' ', space + 1) >= 0) throw parseError(`tokenizer.json: model.merges[${rank}] is ${show(merge)}, not two tokens separated by one space`);
      left = merge.slice(0, space);
      right = merge.slice(space + 1);
    } else if (Array.isArray(merge) && merge.length === 2 && typeof merge[0] === 'string' && typeof merge[1] === 'string') {
      [left, right] = merge;
    } else {
      throw parseError(`tokenizer.json: model.merges[${rank}] must be "a b" or ["a", "b"]`);
    }
    const a = modelIds.get(left), b = modelIds.get(right), merged = modelIds.get(left + right);
    if (a === undefined || b === undefined || merged === undefined) {
      const missing = a === undefined ? left : b === undefined ? right : left + right;
      throw parseError(`tokenizer.json: model.merges[${rank}] (${show(left + ' ' + right)}): ${show(missing)} is not in model.vocab`);
    }
    merges.set(a, b, rank, merged);
  }

  let unk;
  if (model.unk_token !== undefined && model.unk_token !== null) {
    unk = modelIds.get(model.unk_token);
    if (unk === undefined) throw parseError(`tokenizer.json: model.unk_token ${show(model.unk_token)} is not in model.vocab`);
  }

  // added tokens: matched in the text before the pre-tokenizer; their id may lie past the model's vocab
  const added = root.added_tokens ?? [];
  if (!Array.isArray(added)) throw parseError('tokenizer.json: "added_tokens" must be an array');
  const special = new Set();
  const addedTokens = added.map((t, k) => {
    const where = `tokenizer.json: added_tokens[${k}]`;
    if (!isObject(t) || typeof t.content !== 'string' || t.content === '' || !Number.isInteger(t.id) || t.id < 0 || t.id > 0x7fffffff) {
      throw parseError(`${where} must be { "id": token id, "content": non-empty string, ... }`);
    }
    if (tokens[t.id] !== undefined && tokens[t.id] !== t.content) {
      throw parseError(`${where}: id ${t.id} is ${show(t.content)} here and ${show(tokens[t.id])} in the vocabulary`);
    }
    tokens[t.id] = t.content;
    addedIdOf.set(t.content, t.id);
    if (t.special === true) special.add(t.id);
    return { content: t.content, id: t.id, lstrip: t.lstrip === true, rstrip: t.rstrip === true, singleWord: t.single_word === true, normalized: t.normalized ?? !t.special };
  });

  const normalizer = makeNormalizer(root.normalizer, 'tokenizer.json: normalizer');
  const preTokenizer = makePreTokenizer(root.pre_tokenizer, 'tokenizer.json: pre_tokenizer');
  const decoderKind = readDecoder(root.decoder, 'tokenizer.json: decoder');
  const { prefix, suffix } = readPostProcessor(root.post_processor, 'tokenizer.json: post_processor', ids, tokens);

  // Added tokens are matched in the raw text; those flagged "normalized" also in the normalized text.
  const rawSplitter = new TokenSplitter(normalizer ? addedTokens.filter((t) => !t.normalized) : addedTokens);
  const normSplitter = normalizer ? new TokenSplitter(addedTokens.filter((t) => t.normalized).map((t) => ({ ...t, content: normalizer(t.content) }))) : null;

  const vocabSize = tokens.length;
  const addedIds = new Set(addedTokens.map((t) => t.id));
  const pool = bytePool(tokens, decoderKind !== 'ByteLevel' ? writeUtf8 : (id, token, out, at) => {
    if (addedIds.has(id)) return writeUtf8(id, token, out, at);
    for (let k = 0; k < token.length; k++) {
      const b = CHAR_BYTE[token.charCodeAt(k)];
      if (b === undefined) return writeUtf8(id, token, out, at); // as the Rust decoder: a token it cannot map stays as text
      out[at + k] = b;
    }
    return token.length;
  });
  const specialFlags = new Uint8Array(vocabSize);
  for (const id of special) specialFlags[id] = 1;

  const named = (key) => {
    const name = tokenName(cfg[key], `Tokenizer.fromJSON: config.${key}`);
    if (name !== undefined && !ids.has(name)) throw parseError(`Tokenizer.fromJSON: config.${key} ${show(name)} is not in the vocabulary`);
    return name === undefined ? undefined : ids.get(name);
  };
  const firstSpecial = (names) => names.map((n) => ids.get(n)).find((id) => id !== undefined && special.has(id));
  const bpe = new BytePairEncoder({ modelIds, merges, unk, ignoreMerges: model.ignore_merges === true, byteFallback: model.byte_fallback === true, fuseUnk: model.fuse_unk === true });

  return {
    kind: 'bpe',
    vocabSize,
    bosId: named('bos_token') ?? (prefix.length ? prefix[0] : undefined),
    eosId: named('eos_token') ?? firstSpecial(['</s>', '<|end_of_text|>', '<|endoftext|>', '<eos>', '<|eos|>']),
    unkId: named('unk_token') ?? unk,
    padId: named('pad_token'),
    specialIds: [...special].sort((a, b) => a - b),
    _tokens: tokens,
    _ids: ids,
    _special: specialFlags,
    ...pool,
    _separator: decoderKind === 'join' ? 1 : 0,
    _prefix: prefix,
    _suffix: suffix,
    _added: rawSplitter,
    _encodeText(text, out) {
      const normalized = normalizer ? normalizer(text) : text;
      const sections = normSplitter ? normSplitter.split(normalized) : [[normalized, null]];
      for (const [section, token] of sections) {
        if (token) { out.push(token.id); continue; }
        if (section.length === 0) continue;
        const pieces = preTokenizer ? preTokenizer([section]) : [section];
        for (const piece of pieces) bpe.encodeWord(piece, out);
      }
    },
  };
}

function readDecoder(config, where) {
  if (config === null || config === undefined) return 'join'; // the Rust crate joins tokens with spaces
  if (!isObject(config)) throw parseError(`${where} must be an object or null`);
  if (config.type === 'ByteLevel') return 'ByteLevel';
  if (config.type === 'Fuse') return 'fuse';
  if (config.type === 'Sequence' && Array.isArray(config.decoders)) {
    const kinds = config.decoders.map((d, k) => readDecoder(d, `${where}.decoders[${k}]`));
    if (kinds.length === 1) return kinds[0];
    if (kinds.every((k) => k === 'ByteLevel' || k === 'fuse')) return kinds.includes('ByteLevel') ? 'ByteLevel' : 'fuse';
  }
  throw formatError(`${where}.type is ${show(config.type)}: this tokenizer reads the ByteLevel and Fuse decoders`);
}

function readPostProcessor(config, where, ids, tokens) {
  const prefix = [], suffix = [];
  if (config === null || config === undefined) return { prefix, suffix };
  if (!isObject(config)) throw parseError(`${where} must be an object or null`);
  const idOf = (name, at) => {
    const id = ids.get(name);
    if (id === undefined) throw parseError(`${at}: ${show(name)} is not in the vocabulary`);
    return id;
  };
  const pair = (value, at) => {
    if (!Array.isArray(value) || typeof value[0] !== 'string' || !Number.isInteger(value[1])) throw parseError(`${at} must be [token, id]`);
    if (ids.get(value[0]) !== value[1]) throw parseError(`${at}: ${show(value[0])} is not id ${value[1]} in the vocabulary`);
    return value[1];
  };
  switch (config.type) {
    case 'ByteLevel':
      break; // offsets only
    case 'TemplateProcessing': {
      if (!Array.isArray(config.single)) throw parseError(`${where}.single must be an array`);
      const specials = config.special_tokens ?? {};
      let seen = false;
      config.single.forEach((item, k) => {
        const at = `${where}.single[${k}]`;
        if (isObject(item) && isObject(item.Sequence)) {
          if (seen) throw formatError(`${at}: a template with the sequence twice`);
          seen = true;
        } else if (isObject(item) && isObject(item.SpecialToken) && typeof item.SpecialToken.id === 'string') {
          const name = item.SpecialToken.id;
          const entry = specials[name];
          const list = isObject(entry) && Array.isArray(entry.ids) ? entry.ids : [idOf(name, at)];
          for (const id of list) {
            if (!Number.isInteger(id) || tokens[id] === undefined) throw parseError(`${at}: the ids of ${show(name)} (${show(list)}) are not all in the vocabulary`);
            (seen ? suffix : prefix).push(id);
          }
        } else {
          throw parseError(`${at} must be { "SpecialToken": { "id": ... } } or { "Sequence": { "id": "A" } }`);
        }
      });
      if (!seen) throw formatError(`${where}.single has no { "Sequence": ... } item`);
      break;
    }
    case 'RobertaProcessing':
    case 'BertProcessing':
      prefix.push(pair(config.cls, `${where}.cls`));
      suffix.push(pair(config.sep, `${where}.sep`));
      break;
    case 'Sequence': {
      if (!Array.isArray(config.processors)) throw parseError(`${where}.processors must be an array`);
      config.processors.forEach((p, k) => {
        const r = readPostProcessor(p, `${where}.processors[${k}]`, ids, tokens);
        prefix.unshift(...r.prefix);
        suffix.push(...r.suffix);
      });
      break;
    }
    default:
      throw formatError(`${where}.type is ${show(config.type)}: this tokenizer reads the TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing and Sequence post-processors`);
  }
  return { prefix, suffix };
}

/** (left id, right id) -> (rank, merged id): open addressing in typed arrays (no per-merge objects). */
class PairTable {
  constructor(n) {
    let size = 16;
    while (size < n * 2) size *= 2;
    this.mask = size - 1;
    this.left = new Int32Array(size).fill(-1);
    this.right = new Int32Array(size);
    this.rank = new Int32Array(size);
    this.merged = new Int32Array(size);
  }

  slot(a, b) {
    let h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca6b)) & this.mask;
    while (this.left[h] !== -1 && (this.left[h] !== a || this.right[h] !== b)) h = (h + 1) & this.mask;
    return h;
  }

  set(a, b, rank, merged) {
    const h = this.slot(a, b);
    this.left[h] = a; this.right[h] = b; this.rank[h] = rank; this.merged[h] = merged;
  }

  /** The slot of the pair, or -1 when it is no merge. */
  find(a, b) {
    const h = this.slot(a, b);
    return this.left[h] === -1 ? -1 : h;
  }
}

/**
 * BPE over one pre-token: symbols in a linked list, candidate merges in a binary heap ordered
 * by (rank, position), stale candidates dropped when popped — the lowest-ranked pair, leftmost
 * first, as the Rust crate merges. O(n log n) in the word's length; results cached per word.
 */
class BytePairEncoder {
  constructor({ modelIds, merges, unk, ignoreMerges, byteFallback, fuseUnk }) {
    this.fuseUnk = fuseUnk;
    this.ids = modelIds;
    this.merges = merges;
    this.unk = unk;
    this.ignoreMerges = ignoreMerges;
    this.byteFallback = byteFallback;
    this.cache = new Map();
  }

  encodeWord(word, out) {
    let cached = this.cache.get(word);
    if (cached === undefined) {
      cached = this.merge(word);
      if (word.length <= 256) {
        if (this.cache.size >= 20000) this.cache.clear();
        this.cache.set(word, cached);
      }
    }
    for (let k = 0; k < cached.length; k++) out.push(cached[k]);
  }

  merge(word) {
    if (this.ignoreMerges) {
      const id = this.ids.get(word);
      if (id !== undefined) return [id];
    }
    // initial symbols: one per character (unknown ones by byte fallback, unk, or dropped)
    const sym = [];
    let afterUnk = false;
    for (const ch of word) {
      const id = this.ids.get(ch);
      if (id !== undefined) { sym.push(id); afterUnk = false; continue; }
      if (this.byteFallback) {
        const bytes = [...utf8.encode(ch)].map((b) => this.ids.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
        if (bytes.every((b) => b !== undefined)) { sym.push(...bytes); afterUnk = false; continue; }
      }
      if (this.unk === undefined) continue; // as the Rust crate: an unknown character without unk is dropped
      if (!(this.fuseUnk && afterUnk)) sym.push(this.unk);
      afterUnk = true;
    }
    const n = sym.length;
    if (n < 2) return sym;
    const id = Int32Array.from(sym);
    const next = new Int32Array(n), prev = new Int32Array(n);
    for (let k = 0; k < n; k++) { next[k] = k + 1 < n ? k + 1 : -1; prev[k] = k - 1; }
    const alive = new Uint8Array(n).fill(1);
    // heap of [rank, pos, mergedId] in three parallel arrays
    const heapRank = [], heapPos = [], heapId = [];
    const less = (i, j) => heapRank[i] < heapRank[j] || (heapRank[i] === heapRank[j] && heapPos[i] < heapPos[j]);
    const swap = (i, j) => {
      [heapRank[i], heapRank[j]] = [heapRank[j], heapRank[i]];
      [heapPos[i], heapPos[j]] = [heapPos[j], heapPos[i]];
      [heapId[i], heapId[j]] = [heapId[j], heapId[i]];
    };
    const table = this.merges;
    const push = (pos) => {
      const m = table.find(id[pos], id[next[pos]]);
      if (m < 0) return;
      let i = heapRank.length;
      heapRank.push(table.rank[m]); heapPos.push(pos); heapId.push(table.merged[m]);
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!less(i, p)) break;
        swap(i, p);
        i = p;
      }
    };
    const pop = () => {
      const last = heapRank.length - 1;
      swap(0, last);
      const r = [heapRank.pop(), heapPos.pop(), heapId.pop()];
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, rr = l + 1;
        let m = i;
        if (l < heapRank.length && less(l, m)) m = l;
        if (rr < heapRank.length && less(rr, m)) m = rr;
        if (m === i) break;
        swap(i, m);
        i = m;
      }
      return r;
    };
    for (let k = 0; k + 1 < n; k++) push(k);
    while (heapRank.length) {
      const [rank, pos, merged] = pop();
      if (!alive[pos] || next[pos] < 0) continue;
      const right = next[pos];
      const m = table.find(id[pos], id[right]);
      if (m < 0 || table.rank[m] !== rank || table.merged[m] !== merged) continue;
      id[pos] = merged;
      alive[right] = 0;
      next[pos] = next[right];
      if (next[pos] >= 0) prev[next[pos]] = pos;
      if (prev[pos] >= 0) push(prev[pos]);
      if (next[pos] >= 0) push(pos);
    }
    const result = [];
    for (let k = 0; k >= 0; k = next[k]) result.push(id[k]);
    return result;
  }
}

// ---- tilelli's character-level form

function readChar(root) {
  const where = 'character tokenizer';
  if (root.version !== undefined && root.version !== 1) {
    throw new TilelliError('UNSUPPORTED_VERSION', `${where}: version ${show(root.version)}; this library reads version 1`, { status: STATUS.VERSION });
  }
  if (!Array.isArray(root.vocab) || root.vocab.length === 0) throw parseError(`${where}: "vocab" must be a non-empty array of strings (id = index)`);
  const specialNames = root.special ?? [];
  if (!Array.isArray(specialNames) || !specialNames.every((s) => typeof s === 'string')) throw parseError(`${where}: "special" must be an array of strings`);
  const ids = new Map();
  const tokens = root.vocab.map((t, id) => {
    if (typeof t !== 'string' || t === '') throw parseError(`${where}: vocab[${id}] must be a non-empty string`);
    if (ids.has(t)) throw parseError(`${where}: vocab[${id}] ${show(t)} repeats vocab[${ids.get(t)}]`);
    if (!specialNames.includes(t) && [...t].length !== 1) {
      throw parseError(`${where}: vocab[${id}] ${show(t)} is not one character; list multi-character tokens in "special"`);
    }
    ids.set(t, id);
    return t;
  });
  const specialIds = specialNames.map((s) => {
    if (!ids.has(s)) throw parseError(`${where}: special token ${show(s)} is not in vocab`);
    return ids.get(s);
  });
  const named = (key) => {
    if (root[key] === undefined || root[key] === null) return undefined;
    if (typeof root[key] !== 'string' || !specialNames.includes(root[key])) throw parseError(`${where}: "${key}" must name a token listed in "special"`);
    return ids.get(root[key]);
  };
  const unkId = named('unk'), bosId = named('bos'), eosId = named('eos');
  for (const key of ['add_bos', 'add_eos']) {
    if (root[key] !== undefined && typeof root[key] !== 'boolean') throw parseError(`${where}: "${key}" must be a boolean`);
  }
  if (root.add_bos && bosId === undefined) throw parseError(`${where}: "add_bos" is true but no "bos" is named`);
  if (root.add_eos && eosId === undefined) throw parseError(`${where}: "add_eos" is true but no "eos" is named`);
  const special = new Uint8Array(tokens.length);
  for (const id of specialIds) special[id] = 1;
  return {
    kind: 'char',
    vocabSize: tokens.length,
    bosId, eosId, unkId, padId: undefined,
    specialIds: [...specialIds].sort((a, b) => a - b),
    _tokens: tokens,
    _ids: ids,
    _special: special,
    ...bytePool(tokens, writeUtf8),
    _separator: 0,
    _prefix: root.add_bos ? [bosId] : [],
    _suffix: root.add_eos ? [eosId] : [],
    _added: new TokenSplitter(specialIds.map((id) => ({ content: tokens[id], id }))),
    _encodeText(text, out, offset) {
      for (const ch of text) {
        const id = ids.get(ch);
        if (id !== undefined && !special[id]) out.push(id);
        else if (unkId !== undefined) out.push(unkId);
        else {
          const cp = ch.codePointAt(0).toString(16).toUpperCase().padStart(4, '0');
          throw argError(`Tokenizer.encode: ${show(ch)} (U+${cp}) is not in the vocabulary and the tokenizer has no "unk" (text[${offset}])`);
        }
        offset += ch.length;
      }
    },
  };
}
