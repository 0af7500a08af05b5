/**
 * Reading (and writing) Hugging Face tokenizer files for `BpeTokenizer` (./tokenizer.ts):
 * `tokenizer.json` in the layout of Hugging Face `tokenizers` (`model.vocab`, `model.merges`,
 * `added_tokens`, `pre_tokenizer`), and GPT-2's original `vocab.json` + `merges.txt` as
 * `transformers`' GPT2Tokenizer reads them. Only byte-level BPE is accepted (GPT-2, SmolLM2):
 * a file that is not, or is malformed, gets a `TokenizerError` that says why.
 *
 * What the files hold becomes plain data (`BpeParts`: vocab by id, merges as id pairs, added
 * tokens, pre-tokenisation steps); the tokenizer checks the vocab against its byte alphabet and
 * builds itself from them.
 *
 * No DOM and no Node APIs: this runs in the engine worker and under Vitest.
 */
import { TokenizerError } from './errors';

/** GPT-2's end-of-text token, the special token of every GPT-2 tokenizer file. */
export const EOT_TOKEN = '<|endoftext|>';

/** Hugging Face `tokenizers` JSON layout (the fields we write and read). */
export interface HFTokenizerJSON {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: HFAddedToken[];
  normalizer: null;
  pre_tokenizer: HFByteLevel | { type: 'Sequence'; pretokenizers: Record<string, unknown>[] };
  post_processor: null;
  decoder: HFByteLevel;
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: string[];
  };
}

export interface HFAddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** An added token as the tokenizer keeps it. */
export interface AddedToken {
  id: number;
  content: string;
  lstrip: boolean;
  rstrip: boolean;
}

export interface HFByteLevel {
  type: 'ByteLevel';
  add_prefix_space: boolean;
  trim_offsets: boolean;
  use_regex: boolean;
}

/** One step of pre-tokenisation (the `pre_tokenizer` of tokenizer.json). */
export type PreStep =
  { kind: 'byteLevel'; regex: boolean; prefixSpace: boolean } | { kind: 'digits'; individual: boolean };

/** How words are cut before BPE, with what decides the splitting beyond GPT-2's default. */
export interface EncodeOptions {
  steps: PreStep[];
  /** `model.ignore_merges`: a word that is itself in the vocab is one token (Llama 3 style). */
  ignoreMerges: boolean;
}

/** GPT-2's pre-tokenisation: its regex, then bytes (a tokenizer.json without `pre_tokenizer`). */
export const GPT2_STEPS: PreStep[] = [{ kind: 'byteLevel', regex: true, prefixSpace: false }];

/** What a tokenizer file holds, as `BpeTokenizer` is built from it. */
export interface BpeParts {
  /** Vocab strings by id (byte-level characters; added tokens as their text). */
  idToToken: string[];
  eotId: number;
  /** Merges as id pairs, by rank. */
  merges: [number, number][];
  added: AddedToken[];
  opts: EncodeOptions;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Read `pre_tokenizer`: ByteLevel, or a Sequence of Digits and ByteLevel. */
function parsePreTokenizer(pre: unknown): PreStep[] {
  if (pre === undefined || pre === null) return GPT2_STEPS;
  if (!isRecord(pre)) throw new TokenizerError('"pre_tokenizer" must be an object or null');
  const one = (p: unknown): PreStep => {
    if (isRecord(p) && p.type === 'ByteLevel') {
      return { kind: 'byteLevel', regex: p.use_regex !== false, prefixSpace: p.add_prefix_space === true };
    }
    if (isRecord(p) && p.type === 'Digits') return { kind: 'digits', individual: p.individual_digits === true };
    const type = isRecord(p) ? p.type : p;
    throw new TokenizerError(
      `pre_tokenizer type is ${JSON.stringify(type)}; only "ByteLevel" (GPT-2) and a "Sequence" of "Digits" and "ByteLevel" (SmolLM2) are supported`,
    );
  };
  if (pre.type === 'Sequence') {
    if (!Array.isArray(pre.pretokenizers)) throw new TokenizerError('a "Sequence" pre_tokenizer needs "pretokenizers"');
    const steps = pre.pretokenizers.map(one);
    if (steps.filter((st) => st.kind === 'byteLevel').length !== 1 || steps[steps.length - 1].kind !== 'byteLevel')
      throw new TokenizerError('a "Sequence" pre_tokenizer must end in its one "ByteLevel" step');
    return steps;
  }
  return [one(pre)];
}

/** The `pre_tokenizer` of tokenizer.json for the steps (`parsePreTokenizer` reads it back). */
export function preTokenizerJSON(steps: PreStep[]): HFTokenizerJSON['pre_tokenizer'] {
  const one = (st: PreStep): Record<string, unknown> =>
    st.kind === 'digits'
      ? { type: 'Digits', individual_digits: st.individual }
      : { type: 'ByteLevel', add_prefix_space: st.prefixSpace, trim_offsets: true, use_regex: st.regex };
  if (steps.length === 1 && steps[0].kind === 'byteLevel') return one(steps[0]) as unknown as HFByteLevel;
  return { type: 'Sequence', pretokenizers: steps.map(one) };
}

/**
 * Read the Hugging Face `tokenizer.json` layout (an object or its text); throws TokenizerError if
 * malformed. The end-of-text token is `<|endoftext|>`, or `eos` (the model's `eos_token_id`) when
 * the vocabulary has none.
 */
export function parseTokenizerJSON(json: unknown, eos?: number): BpeParts {
  if (typeof json === 'string') {
    try {
      json = JSON.parse(json);
    } catch (e) {
      throw new TokenizerError(`tokenizer JSON does not parse: ${(e as Error).message}`);
    }
  }
  if (!isRecord(json))
    throw new TokenizerError('tokenizer JSON must be an object (Hugging Face tokenizer.json layout)');
  const model = json.model;
  if (!isRecord(model)) throw new TokenizerError('tokenizer JSON has no "model" object');
  if (model.type !== undefined && model.type !== 'BPE') {
    throw new TokenizerError(`tokenizer model type is ${JSON.stringify(model.type)}; only "BPE" is supported`);
  }
  if (json.normalizer !== undefined && json.normalizer !== null) {
    const type = isRecord(json.normalizer) ? json.normalizer.type : json.normalizer;
    throw new TokenizerError(
      `normalizer ${JSON.stringify(type)} is not supported; only byte-level BPE tokenizers without a normalizer (GPT-2, SmolLM2) are`,
    );
  }
  if (model.byte_fallback === true)
    throw new TokenizerError('"byte_fallback" BPE (SentencePiece style) is not supported; only byte-level BPE is');
  const steps = parsePreTokenizer(json.pre_tokenizer);
  const vocab = model.vocab;
  if (!isRecord(vocab)) throw new TokenizerError('tokenizer "model.vocab" must be an object mapping token → id');
  const entries = Object.entries(vocab);
  const idToToken: string[] = new Array(entries.length);
  for (const [tok, id] of entries) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= entries.length) {
      throw new TokenizerError(
        `vocab id ${JSON.stringify(id)} of token ${JSON.stringify(tok)} is out of range: ids must be contiguous 0..${entries.length - 1}`,
      );
    }
    if (idToToken[id] !== undefined) {
      throw new TokenizerError(
        `vocab id ${id} is used twice (${JSON.stringify(idToToken[id])} and ${JSON.stringify(tok)}): ids must be contiguous and unique`,
      );
    }
    idToToken[id] = tok;
  }

  // Added tokens: in the vocab with the same id, or appended right after it.
  const addedList: AddedToken[] = [];
  const added = json.added_tokens;
  if (added !== undefined && added !== null) {
    if (!Array.isArray(added)) throw new TokenizerError('"added_tokens" must be an array');
    const beyond: { id: number; content: string }[] = [];
    for (const a of added) {
      if (!isRecord(a) || typeof a.content !== 'string' || typeof a.id !== 'number' || a.content === '') {
        throw new TokenizerError('each entry of "added_tokens" needs a string "content" and a number "id"');
      }
      if (a.single_word === true)
        throw new TokenizerError(`added token ${JSON.stringify(a.content)} has "single_word", which is not supported`);
      const inVocab = vocab[a.content];
      if (inVocab !== undefined && inVocab !== a.id) {
        throw new TokenizerError(`${a.content} has id ${a.id} in added_tokens but ${String(inVocab)} in the vocab`);
      }
      if (inVocab === undefined) {
        if (a.id < entries.length)
          throw new TokenizerError(
            `added token ${JSON.stringify(a.content)} has id ${a.id}, which the vocab gives to ${JSON.stringify(idToToken[a.id])}`,
          );
        beyond.push({ id: a.id, content: a.content });
      }
      addedList.push({ id: a.id, content: a.content, lstrip: a.lstrip === true, rstrip: a.rstrip === true });
    }
    beyond.sort((x, y) => x.id - y.id);
    for (const [k, b] of beyond.entries()) {
      if (b.id !== entries.length + k)
        throw new TokenizerError(
          `added token ${JSON.stringify(b.content)} has id ${b.id}; ids after the vocab must continue it contiguously from ${entries.length + k}`,
        );
      idToToken.push(b.content);
    }
  }
  // The end-of-text token: <|endoftext|>, else the model's eos id.
  let eotId = idToToken.indexOf(EOT_TOKEN);
  if (eotId < 0 && eos !== undefined && Number.isInteger(eos) && eos >= 0 && eos < idToToken.length) eotId = eos;
  if (eotId < 0) {
    throw new TokenizerError(`the vocab must contain ${EOT_TOKEN} (with the same id as in added_tokens)`);
  }
  if (!addedList.some((a) => a.id === eotId))
    addedList.push({ id: eotId, content: idToToken[eotId], lstrip: false, rstrip: false });

  const rawMerges = model.merges;
  if (!Array.isArray(rawMerges)) throw new TokenizerError('tokenizer "model.merges" must be an array');
  const tokenToId = new Map<string, number>();
  idToToken.forEach((t, i) => tokenToId.set(t, i));
  const merges: [number, number][] = rawMerges.map((m, rank) => {
    let pair: unknown[];
    if (typeof m === 'string') pair = m.split(' ');
    else if (Array.isArray(m))
      pair = m; // newer `tokenizers` write [left, right]
    else throw new TokenizerError(`merge #${rank} is ${JSON.stringify(m)}; merges must be strings "left right"`);
    if (pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      throw new TokenizerError(`merge #${rank} ${JSON.stringify(m)} must name exactly two tokens, as "left right"`);
    }
    const l = tokenToId.get(pair[0]);
    const r = tokenToId.get(pair[1]);
    if (l === undefined || r === undefined) {
      const unknown = l === undefined ? pair[0] : pair[1];
      throw new TokenizerError(
        `merge #${rank} ${JSON.stringify(m)} names ${JSON.stringify(unknown)}, which is not in the vocab`,
      );
    }
    return [l, r];
  });
  return {
    idToToken,
    eotId,
    merges,
    added: addedList,
    opts: { steps, ignoreMerges: model.ignore_merges === true },
  };
}

/**
 * GPT-2's original files as the tokenizer.json they amount to: `vocab.json` (token → id) and
 * `merges.txt` (a `#version` line, then one "left right" merge a line), with `<|endoftext|>` as
 * the special token, as `transformers`' GPT2Tokenizer reads them.
 */
export function vocabMergesJSON(vocab: unknown, mergesText: string): Record<string, unknown> {
  if (!isRecord(vocab)) throw new TokenizerError('vocab.json must be an object mapping token → id');
  const merges = mergesText
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .filter((line, i) => line.trim() !== '' && !(i === 0 && line.startsWith('#version')));
  const eot = vocab[EOT_TOKEN];
  const added =
    typeof eot === 'number'
      ? [{ id: eot, content: EOT_TOKEN, lstrip: false, rstrip: false, special: true, normalized: false }]
      : [];
  return { model: { type: 'BPE', vocab, merges }, added_tokens: added };
}
