/**
 * Byte-level BPE tokenizer, as in GPT-2 (Radford et al. 2019, openai/gpt-2
 * `encoder.py`) and the Hugging Face `tokenizers` ByteLevel/BPE pipeline.
 *
 * - Text is split on the added (special) tokens first (`<|endoftext|>`, and those a
 *   Hub tokenizer.json lists, e.g. SmolLM2's `<|im_start|>`; the longest match at the
 *   leftmost position wins, as `tokenizers`' added-vocabulary matcher does); each piece is
 *   pre-tokenised (GPT-2's regex; optionally digits split off first, as SmolLM2's
 *   `Sequence[Digits, ByteLevel]` does), each chunk ("word") is UTF-8 encoded and
 *   every byte becomes one base symbol; merges are then applied by rank.
 * - GPT-2's original `vocab.json` + `merges.txt` load through `fromVocabMerges`.
 * - Ids: 0..255 are the 256 byte symbols IN BYTE ORDER (id b = byte b; its
 *   vocab string is GPT-2's `bytes_to_unicode()[b]`, e.g. byte 0x20 → "Ġ").
 *   Then one id per merge, in merge order (256 + rank). `<|endoftext|>` is last.
 *   `fromJSON` also reads other layouts (e.g. GPT-2's own tokenizer.json): ids
 *   are taken from the vocab, so only the vocab itself must be consistent.
 * - The JSON layout is Hugging Face `tokenizers`' `tokenizer.json`; reading it (and GPT-2's
 *   vocab.json + merges.txt) is in ./hf-tokenizer.ts.
 *
 * No DOM and no Node APIs: this runs in the engine worker and under Vitest.
 */
import { TokenizerError } from './errors';
import {
  EOT_TOKEN,
  GPT2_STEPS,
  parseTokenizerJSON,
  preTokenizerJSON,
  vocabMergesJSON,
  type AddedToken,
  type EncodeOptions,
  type HFTokenizerJSON,
  type PreStep,
} from './hf-tokenizer';

export { EOT_TOKEN, TokenizerError };
export type { HFAddedToken, HFByteLevel, HFTokenizerJSON } from './hf-tokenizer';

/** GPT-2 pre-tokenisation regex (openai/gpt-2 `encoder.py`), with the `u` flag. */
const PRETOKENIZE_RE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Words longer than this are not cached (they are rare and would bloat the cache). */
const CACHE_MAX_WORD = 64;
/** The word cache is cleared when it grows past this many entries. */
const CACHE_MAX_ENTRIES = 100_000;

// ---------------------------------------------------------------------------
// GPT-2 bytes_to_unicode: printable bytes map to themselves, the others to
// code points 256+n, so every byte has a visible, non-space character.

function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b); // '!'..'~'
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b); // '¡'..'¬'
  for (let b = 0xae; b <= 0xff; b++) bs.push(b); // '®'..'ÿ'
  const table: string[] = new Array(256);
  for (const b of bs) table[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (table[b] === undefined) table[b] = String.fromCharCode(256 + n++);
  }
  return table;
}

/** `BYTE_TO_CHAR[b]` is the vocab character of byte b. */
export const BYTE_TO_CHAR: readonly string[] = bytesToUnicode();
const CHAR_TO_BYTE = new Map<string, number>(BYTE_TO_CHAR.map((c, b) => [c, b]));

const textEncoder = new TextEncoder();
const lenientDecoder = new TextDecoder('utf-8', { fatal: false });
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Split on runs of numeric characters (Rust's `char::is_numeric`, i.e. \p{N}), each digit alone if `individual`. */
function splitDigits(piece: string, individual: boolean): string[] {
  return piece.match(individual ? /\p{N}|[^\p{N}]+/gu : /\p{N}+|[^\p{N}]+/gu) ?? [];
}

/** GPT-2 pre-tokenisation of a text without special tokens. */
export function preTokenize(text: string): string[] {
  return text.match(PRETOKENIZE_RE) ?? [];
}

/** Pre-tokenise one piece of text (no added tokens in it) through the steps, in order; calls `emit` per word. */
function applySteps(piece: string, steps: PreStep[], emit: (word: string) => void, from = 0): void {
  if (from === steps.length) {
    emit(piece);
    return;
  }
  const st = steps[from];
  if (st.kind === 'digits') {
    for (const p of splitDigits(piece, st.individual)) applySteps(p, steps, emit, from + 1);
    return;
  }
  const q = st.prefixSpace && !piece.startsWith(' ') ? ` ${piece}` : piece;
  if (!st.regex) applySteps(q, steps, emit, from + 1);
  else for (const m of q.matchAll(PRETOKENIZE_RE)) applySteps(m[0], steps, emit, from + 1);
}

function bytesToVocabString(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i]];
  return s;
}

function vocabStringToBytes(token: string): Uint8Array | null {
  const out: number[] = [];
  for (const ch of token) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b === undefined) return null;
    out.push(b);
  }
  return Uint8Array.from(out);
}

// ---------------------------------------------------------------------------

export class BpeTokenizer {
  readonly vocabSize: number;
  readonly eotId: number;
  readonly eotToken: string = EOT_TOKEN;

  /** Vocab strings by id (byte-level characters; the special token as itself). */
  private readonly idToToken: string[];
  /** Raw bytes of each id (the special token: its UTF-8). */
  private readonly idToBytes: Uint8Array[];
  /** Id of each single byte. */
  private readonly byteToId: Int32Array;
  /** Merges as [left id, right id] in rank order. */
  private readonly merges: [number, number][];
  /** pair key (left * vocabSize + right) → rank; the merged id is `mergeResult[rank]`. */
  private readonly mergeRank = new Map<number, number>();
  private readonly mergeResult: Int32Array;
  private readonly cache = new Map<string, number[]>();
  /** Added tokens (special tokens), matched in the text before pre-tokenisation. */
  private readonly added: AddedToken[];
  /** Leftmost-longest matcher of the added tokens; null when there is only `<|endoftext|>` to split on. */
  private readonly addedRe: RegExp | null;
  private readonly addedIds = new Map<string, number>();
  private readonly opts: EncodeOptions;
  private readonly tokenToId: Map<string, number>;

  /**
   * Build from a vocab (id → byte-level string, ids contiguous from 0) and
   * merges as id pairs. Use `fromJSON` or `trainBpe` rather than this directly.
   * `added` lists the added tokens (default: `<|endoftext|>` at `eotId`).
   */
  private constructor(
    idToToken: string[],
    eotId: number,
    merges: [number, number][],
    added?: AddedToken[],
    opts: EncodeOptions = { steps: GPT2_STEPS, ignoreMerges: false },
  ) {
    this.idToToken = idToToken;
    this.vocabSize = idToToken.length;
    this.eotId = eotId;
    this.merges = merges;
    this.opts = opts;
    this.added = added ?? [{ id: eotId, content: idToToken[eotId], lstrip: false, rstrip: false }];
    const tokenToId = new Map<string, number>();
    idToToken.forEach((t, i) => tokenToId.set(t, i));
    this.tokenToId = tokenToId;
    for (const a of this.added) this.addedIds.set(a.content, a.id);
    // Longest first, so at one position the longest added token wins; lstrip/rstrip take the spaces beside it.
    const alternatives = [...this.added]
      .sort((a, b) => b.content.length - a.content.length)
      .map((a) => `${a.lstrip ? '\\s*' : ''}${escapeRegExp(a.content)}${a.rstrip ? '\\s*' : ''}`);
    this.addedRe = alternatives.length ? new RegExp(alternatives.join('|'), 'gu') : null;

    this.idToBytes = new Array(idToToken.length);
    this.byteToId = new Int32Array(256).fill(-1);
    const addedById = new Map(this.added.map((a) => [a.id, a.content]));
    for (let id = 0; id < idToToken.length; id++) {
      const special = addedById.get(id);
      if (special !== undefined) {
        this.idToBytes[id] = textEncoder.encode(special);
        continue;
      }
      const bytes = vocabStringToBytes(idToToken[id]);
      if (bytes === null || bytes.length === 0) {
        throw new TokenizerError(
          `vocab token ${JSON.stringify(idToToken[id])} (id ${id}) is not made of byte-level characters (GPT-2 bytes_to_unicode)`,
        );
      }
      this.idToBytes[id] = bytes;
      if (bytes.length === 1) this.byteToId[bytes[0]] = id;
    }
    for (let b = 0; b < 256; b++) {
      if (this.byteToId[b] < 0) {
        throw new TokenizerError(
          `vocab lacks the byte-level token for byte 0x${b.toString(16).padStart(2, '0')} (${JSON.stringify(BYTE_TO_CHAR[b])}); a byte-level BPE vocab needs all 256`,
        );
      }
    }
    this.mergeResult = new Int32Array(merges.length);
    merges.forEach(([l, r], rank) => {
      const merged = tokenToId.get(idToToken[l] + idToToken[r]);
      if (merged === undefined) {
        throw new TokenizerError(
          `merge #${rank} "${idToToken[l]} ${idToToken[r]}" produces "${idToToken[l] + idToToken[r]}", which is not in the vocab`,
        );
      }
      const key = l * this.vocabSize + r;
      if (!this.mergeRank.has(key)) this.mergeRank.set(key, rank);
      this.mergeResult[rank] = merged;
    });
  }

  /** Number of merges. */
  get numMerges(): number {
    return this.merges.length;
  }

  /**
   * Build from the Hugging Face `tokenizer.json` layout; throws TokenizerError if malformed.
   * The end-of-text token is `<|endoftext|>`, or `eos` (the model's `eos_token_id`) when the
   * vocabulary has none.
   */
  static fromJSON(json: unknown, eos?: number): BpeTokenizer {
    const p = parseTokenizerJSON(json, eos);
    return new BpeTokenizer(p.idToToken, p.eotId, p.merges, p.added, p.opts);
  }

  /**
   * GPT-2's original files: `vocab.json` (token → id) and `merges.txt` (a `#version` line, then
   * one "left right" merge a line), read as the same byte-level BPE with `<|endoftext|>` as its
   * special token, as `transformers`' GPT2Tokenizer reads them.
   */
  static fromVocabMerges(vocab: unknown, mergesText: string, eos?: number): BpeTokenizer {
    return BpeTokenizer.fromJSON(vocabMergesJSON(vocab, mergesText), eos);
  }

  /**
   * This tokenizer with its vocabulary padded to `size` ids, for a model whose embedding has more
   * rows than the tokenizer has tokens (see `paddedVocabRule`). The extra ids are never produced
   * by `encode`; sampled, each decodes as its placeholder name.
   */
  padTo(size: number): BpeTokenizer {
    if (size <= this.vocabSize) return this;
    const idToToken = this.idToToken.slice();
    const added = this.added.slice();
    for (let id = this.vocabSize; id < size; id++) {
      const content = `<|padded_vocab_${id}|>`;
      idToToken.push(content);
      added.push({ id, content, lstrip: false, rstrip: false });
    }
    return new BpeTokenizer(idToToken, this.eotId, this.merges, added, this.opts);
  }

  /** Hugging Face `tokenizers` layout; `fromJSON(toJSON())` encodes identically. */
  toJSON(): HFTokenizerJSON {
    const vocab: Record<string, number> = {};
    this.idToToken.forEach((t, i) => (vocab[t] = i));
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: this.added.map((a) => ({
        id: a.id,
        content: a.content,
        single_word: false,
        lstrip: a.lstrip,
        rstrip: a.rstrip,
        normalized: false,
        special: true,
      })),
      normalizer: null,
      pre_tokenizer: preTokenizerJSON(this.opts.steps),
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: this.opts.ignoreMerges,
        vocab,
        merges: this.merges.map(([l, r]) => `${this.idToToken[l]} ${this.idToToken[r]}`),
      },
    };
  }

  /** Text → ids. `<|endoftext|>` (and every other added token) in the text becomes its id. */
  encode(text: string): number[] {
    const out: number[] = [];
    const emit = (word: string) => {
      const ids = this.encodeWord(word);
      for (let i = 0; i < ids.length; i++) out.push(ids[i]);
    };
    const plain = (piece: string) => {
      if (piece.length > 0) applySteps(piece, this.opts.steps, emit);
    };
    let last = 0;
    if (this.addedRe) {
      this.addedRe.lastIndex = 0;
      for (const m of text.matchAll(this.addedRe)) {
        plain(text.slice(last, m.index));
        out.push(this.addedIds.get(m[0].trim())!);
        last = m.index + m[0].length;
      }
    }
    plain(text.slice(last));
    return out;
  }

  /**
   * Encode a prompt for generation. Trailing spaces and tabs are stripped and
   * returned as `heldBack`, and only the rest is encoded.
   *
   * Why: GPT-2 pre-tokenisation attaches a space to the word after it (" was",
   * " great"), so "The movie was " would end in a lone " " token that the
   * model almost never saw before a word, and sampling derails. Generating from
   * "The movie was" instead lets the first new token carry its own space
   * (" great"). The caller shows the prompt as typed and, when it joins prompt
   * and completion, drops `heldBack` if the completion starts with it.
   * `ids` may be empty (prompt of only spaces); callers then start from `eotId`.
   */
  encodePrompt(prompt: string): { ids: number[]; heldBack: string } {
    const m = /[ \t]+$/.exec(prompt);
    const heldBack = m ? m[0] : '';
    const rest = m ? prompt.slice(0, m.index) : prompt;
    return { ids: this.encode(rest), heldBack };
  }

  /** Ids → text. Invalid UTF-8 (e.g. a character cut in the middle) becomes U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    let n = 0;
    for (let i = 0; i < ids.length; i++) n += this.bytesOf(ids[i]).length;
    const buf = new Uint8Array(n);
    let o = 0;
    for (let i = 0; i < ids.length; i++) {
      const b = this.bytesOf(ids[i]);
      buf.set(b, o);
      o += b.length;
    }
    return lenientDecoder.decode(buf);
  }

  /**
   * One token's text, for the token view. A token that is not valid UTF-8 on its
   * own (part of a multi-byte character) shows its bytes as `\xNN`
   * (printable ASCII bytes as themselves).
   */
  decodeToken(id: number): string {
    const bytes = this.bytesOf(id);
    try {
      return strictDecoder.decode(bytes);
    } catch {
      let s = '';
      for (const b of bytes)
        s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
      return s;
    }
  }

  /** The vocab string of an id (byte-level characters, e.g. "Ġthe"). */
  idToTokenString(id: number): string {
    this.checkId(id);
    return this.idToToken[id];
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new TokenizerError(`token id ${id} is outside the vocabulary 0..${this.vocabSize - 1}`);
    }
  }

  private bytesOf(id: number): Uint8Array {
    this.checkId(id);
    return this.idToBytes[id];
  }

  /** BPE on one pre-tokenised chunk, with a cache. */
  private encodeWord(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached !== undefined) return cached;
    const bytes = textEncoder.encode(word);
    if (this.opts.ignoreMerges) {
      const whole = this.tokenToId.get(bytesToVocabString(bytes));
      if (whole !== undefined) return [whole];
    }
    let syms: number[] = new Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) syms[i] = this.byteToId[bytes[i]];
    const V = this.vocabSize;
    while (syms.length > 1) {
      // Lowest-ranked adjacent pair.
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < syms.length - 1; i++) {
        const r = this.mergeRank.get(syms[i] * V + syms[i + 1]);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const l = syms[best];
      const rt = syms[best + 1];
      const merged = this.mergeResult[bestRank];
      // Merge every non-overlapping occurrence, left to right.
      const next: number[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i < syms.length - 1 && syms[i] === l && syms[i + 1] === rt) {
          next.push(merged);
          i++;
        } else next.push(syms[i]);
      }
      syms = next;
    }
    if (word.length <= CACHE_MAX_WORD) {
      if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.clear();
      this.cache.set(word, syms);
    }
    return syms;
  }

  /** @internal used by `trainBpe`. */
  static fromMerges(merges: [number, number][]): BpeTokenizer {
    const idToToken: string[] = BYTE_TO_CHAR.slice();
    const seen = new Set(idToToken);
    for (const [l, r] of merges) {
      const t = idToToken[l] + idToToken[r];
      if (!seen.has(t)) {
        seen.add(t);
        idToToken.push(t);
      }
    }
    const eotId = idToToken.length;
    idToToken.push(EOT_TOKEN);
    return new BpeTokenizer(idToToken, eotId, merges);
  }
}

// ---------------------------------------------------------------------------
// Training

export interface TrainBpeOptions {
  /** Stop early when the most frequent pair occurs fewer times than this (default 2). */
  minFrequency?: number;
  /** Called every `progressEvery` merges (default 64) and at the end. */
  onProgress?: (info: { merges: number; numMerges: number; lastPair: string; lastCount: number }) => void;
  progressEvery?: number;
}

/** Count GPT-2 pre-tokenised chunks over many texts (`<|endoftext|>` is skipped). */
export function countWords(texts: Iterable<string>, counts = new Map<string, number>()): Map<string, number> {
  for (const text of texts) {
    for (const part of text.split(EOT_TOKEN)) {
      if (part.length === 0) continue;
      for (const w of preTokenize(part)) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  return counts;
}

/**
 * Learn byte-level BPE merges until the vocab holds `256 + numMerges` tokens
 * (then `<|endoftext|>` is added: `vocabSize = 256 + numMerges + 1`). In the rare
 * case that two merges spell the same token, both are kept and share one id, so
 * the merge list can be a little longer than `numMerges`. Training also stops
 * early when no pair occurs `minFrequency` times. Pure and deterministic: ties in pair
 * frequency go to the pair with the smaller left id, then the smaller right id.
 *
 * Method (as in Hugging Face `tokenizers`' BPE trainer): count the
 * pre-tokenised words once, then repeatedly merge the most frequent adjacent
 * pair over the word-count table, updating pair counts only for the words that
 * contain the merged pair.
 */
export function trainBpe(
  texts: Iterable<string> | Map<string, number>,
  numMerges: number,
  opts: TrainBpeOptions = {},
): BpeTokenizer {
  const steps = bpeTrainingSteps(texts, numMerges, opts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    opts.onProgress?.(r.value);
  }
}

/** Progress of BPE training: merges learned so far, and the newest merge. */
export type BpeProgress = Parameters<NonNullable<TrainBpeOptions['onProgress']>>[0];

/**
 * `trainBpe` that yields to the event loop between progress reports: `pause` is awaited every
 * `progressEvery` merges (it can throw to cancel, as an engine job's checkpoint does).
 */
export async function trainBpeAsync(
  texts: Iterable<string> | Map<string, number>,
  numMerges: number,
  opts: TrainBpeOptions & { pause: () => Promise<void> },
): Promise<BpeTokenizer> {
  const steps = bpeTrainingSteps(texts, numMerges, opts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    opts.onProgress?.(r.value);
    await opts.pause();
  }
}

/** The merge loop of `trainBpe` as a generator: yields a progress report every `progressEvery` merges. */
function* bpeTrainingSteps(
  texts: Iterable<string> | Map<string, number>,
  numMerges: number,
  opts: TrainBpeOptions,
): Generator<BpeProgress, BpeTokenizer> {
  const minFrequency = opts.minFrequency ?? 2;
  const progressEvery = opts.progressEvery ?? 64;
  const counts = texts instanceof Map ? texts : countWords(texts);
  // Sort words for a deterministic order independent of insertion order.
  const wordList = [...counts.keys()].sort();
  const words: number[][] = wordList.map((w) => Array.from(textEncoder.encode(w)));
  const freqs: number[] = wordList.map((w) => counts.get(w)!);

  // Pair keys: left * K + right, K fixed above any id we create.
  const K = 256 + numMerges + 1;
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (wi: number, sign: 1 | -1): void => {
    const w = words[wi];
    const f = freqs[wi] * sign;
    for (let i = 0; i < w.length - 1; i++) {
      const key = w[i] * K + w[i + 1];
      const c = (pairCount.get(key) ?? 0) + f;
      if (c === 0) pairCount.delete(key);
      else pairCount.set(key, c);
      if (sign > 0) {
        let s = pairWords.get(key);
        if (!s) pairWords.set(key, (s = new Set()));
        s.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1);

  const merges: [number, number][] = [];
  const tokenStr: string[] = BYTE_TO_CHAR.slice();
  const tokenId = new Map<string, number>(tokenStr.map((t, i) => [t, i]));
  while (tokenStr.length < 256 + numMerges) {
    let bestKey = -1;
    let bestCount = 0;
    for (const [key, c] of pairCount) {
      if (c > bestCount || (c === bestCount && key < bestKey)) {
        bestCount = c;
        bestKey = key;
      }
    }
    if (bestKey < 0 || bestCount < minFrequency) break;
    const l = Math.floor(bestKey / K);
    const r = bestKey % K;
    // Two merge paths can spell the same token ("a bc", "ab c"); like HF's
    // trainer, the second reuses the first one's id.
    const merged = tokenStr[l] + tokenStr[r];
    let newId = tokenId.get(merged);
    if (newId === undefined) {
      newId = tokenStr.length;
      tokenStr.push(merged);
      tokenId.set(merged, newId);
    }
    merges.push([l, r]);
    const affected = [...(pairWords.get(bestKey) ?? [])].sort((a, b) => a - b);
    pairWords.delete(bestKey);
    for (const wi of affected) {
      const w = words[wi];
      let has = false;
      for (let i = 0; i < w.length - 1; i++) {
        if (w[i] === l && w[i + 1] === r) {
          has = true;
          break;
        }
      }
      if (!has) continue; // stale entry
      addPairs(wi, -1);
      const next: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i < w.length - 1 && w[i] === l && w[i + 1] === r) {
          next.push(newId);
          i++;
        } else next.push(w[i]);
      }
      words[wi] = next;
      addPairs(wi, 1);
    }
    pairCount.delete(bestKey);
    if (merges.length % progressEvery === 0) {
      yield {
        merges: merges.length,
        numMerges,
        lastPair: `${tokenStr[l]} ${tokenStr[r]}`,
        lastCount: bestCount,
      };
    }
  }
  if (merges.length % progressEvery !== 0 && merges.length > 0) {
    const [l, r] = merges[merges.length - 1];
    yield { merges: merges.length, numMerges, lastPair: `${tokenStr[l]} ${tokenStr[r]}`, lastCount: 0 };
  }
  return BpeTokenizer.fromMerges(merges);
}
