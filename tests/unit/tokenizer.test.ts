import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BpeTokenizer, TokenizerError, trainBpe, BYTE_TO_CHAR } from '../../src/lib/model/tokenizer.ts';

const SHIPPED_PATH = fileURLToPath(new URL('../../public/models/tiny-gpt/tokenizer.json', import.meta.url));
const shippedJSON = JSON.parse(readFileSync(SHIPPED_PATH, 'utf8'));
const shipped = BpeTokenizer.fromJSON(shippedJSON);

const SENTENCES = [
  'The movie was wonderful and the acting was superb.',
  'The food was cold and the service was terrible.',
  'The plot was dull, but the music was lovely.',
  'Once upon a time, a little fox lived near the river.',
  'Could you please send me the report by Friday? Thank you so much.',
  'Give me the report now. Hurry up.',
  "It's the movie they've loved; we'll see what I'd do.",
];
const small = trainBpe(SENTENCES, 60, { minFrequency: 1 });

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Well-formed random strings: ASCII, Latin, CJK, emoji (astral), combining marks, whitespace, the special token. */
function randomString(r: () => number): string {
  const pieces = [
    () => String.fromCharCode(0x20 + Math.floor(r() * 95)),
    () => String.fromCodePoint(Math.floor(r() * 0x80)), // control chars included
    () => String.fromCodePoint(0xa0 + Math.floor(r() * 0x500)),
    () => String.fromCodePoint(0x300 + Math.floor(r() * 0x70)), // combining marks
    () => String.fromCodePoint(0x4e00 + Math.floor(r() * 0x5000)),
    () => String.fromCodePoint(0x1f300 + Math.floor(r() * 0x300)), // astral
    () => String.fromCodePoint(0x10000 + Math.floor(r() * 0xfffff)), // any astral, incl. unassigned
    () => [' ', '  ', '\t', '\n', '\r\n', '\u00a0', '\u3000'][Math.floor(r() * 7)],
    () => ["'s", "'ll", ' the', ' movie', 'was', '123', '<|endoftext|>', '<|endof', '|>'][Math.floor(r() * 9)],
  ];
  let s = '';
  const n = Math.floor(r() * 40);
  for (let i = 0; i < n; i++) {
    let cp = pieces[Math.floor(r() * pieces.length)]();
    if (/[\uD800-\uDFFF]/.test(cp) && !/[\uD800-\uDBFF][\uDC00-\uDFFF]/.test(cp)) cp = '?'; // no lone surrogates
    s += cp;
  }
  return s;
}

describe('round trip', () => {
  for (const [name, tok] of [
    ['small trained tokenizer', small],
    ['shipped tokenizer', shipped],
  ] as const) {
    it(`decode(encode(s)) === s for 2000 random Unicode strings (${name})`, () => {
      const r = mulberry32(name.length * 7919);
      for (let i = 0; i < 2000; i++) {
        const s = randomString(r);
        const ids = tok.encode(s);
        for (const id of ids) {
          expect(Number.isInteger(id) && id >= 0 && id < tok.vocabSize).toBe(true);
        }
        expect(tok.decode(ids)).toBe(s);
      }
    });
  }

  it('round-trips every single byte value as UTF-8 text pieces and the corpus sentences', () => {
    for (const s of SENTENCES) expect(shipped.decode(shipped.encode(s))).toBe(s);
    for (let cp = 0; cp < 0x800; cp++) {
      const s = String.fromCodePoint(cp);
      expect(shipped.decode(shipped.encode(s))).toBe(s);
    }
  });

  it('decode handles a character cut in the middle (non-fatal UTF-8)', () => {
    const ids = shipped.encode('🦊');
    expect(ids.length).toBeGreaterThan(1); // 4 bytes, no merge for it
    expect(shipped.decode(ids.slice(0, -1))).toBe('\uFFFD');
    expect(shipped.decodeToken(ids[0])).toMatch(/^\\x[0-9a-f]{2}$/);
  });
});

describe('shipped tokenizer', () => {
  it('has the documented layout: 256 bytes, merges, then <|endoftext|> last', () => {
    expect(shipped.vocabSize).toBe(256 + 1024 + 1);
    expect(shipped.eotId).toBe(shipped.vocabSize - 1);
    expect(shipped.eotToken).toBe('<|endoftext|>');
    expect(shippedJSON.model.vocab['<|endoftext|>']).toBe(shipped.eotId);
    expect(shippedJSON.added_tokens).toEqual([
      {
        id: shipped.eotId,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      },
    ]);
    expect(shippedJSON.model.merges).toHaveLength(1024);
    // Byte order: id b is byte b.
    for (let b = 0; b < 256; b++) expect(shippedJSON.model.vocab[BYTE_TO_CHAR[b]]).toBe(b);
    expect(shipped.encode('A')).toEqual([65]);
  });

  it('encodes <|endoftext|> as one token, and splits text around it', () => {
    expect(shipped.encode('<|endoftext|>')).toEqual([shipped.eotId]);
    const ids = shipped.encode('Hi.<|endoftext|><|endoftext|>Bye');
    expect(ids.filter((i) => i === shipped.eotId)).toHaveLength(2);
    expect(ids.indexOf(shipped.eotId)).toBe(shipped.encode('Hi.').length);
    expect(shipped.decodeToken(shipped.eotId)).toBe('<|endoftext|>');
  });

  it('has single tokens for common words with their leading space', () => {
    for (const w of [' the', ' movie', ' was', ' and', ' wonderful', ' terrible', ' you']) {
      const ids = shipped.encode(w);
      expect(ids, w).toHaveLength(1);
      expect(shipped.decodeToken(ids[0])).toBe(w);
    }
    const ids = shipped.encode('The movie was');
    expect(ids.map((i) => shipped.decodeToken(i))).toEqual(['The', ' movie', ' was']);
  });

  it('pre-tokenises like GPT-2 (contractions, digits, punctuation, spaces)', () => {
    const pieces = (s: string) => shipped.encode(s).map((i) => shipped.decodeToken(i));
    // "'s" is its own pre-token, so it can never merge with the word before.
    expect(pieces("fox's").join('|')).toMatch(/\|'s$|\|'\|s$/);
    // Two spaces before a word: a lone " " then " word".
    expect(pieces('a  the')).toEqual(['a', ' ', ' the']);
    // Letters and digits never share a token.
    for (const p of pieces('abc123def')) expect(/\p{L}/u.test(p) && /\p{N}/u.test(p)).toBe(false);
  });

  it('compresses corpus-like text to well under one token per character', () => {
    const text = SENTENCES.join(' ');
    expect(shipped.encode(text).length / text.length).toBeLessThan(0.3);
  });
});

describe('JSON', () => {
  it('fromJSON(toJSON()) encodes identically (through a JSON string)', () => {
    for (const tok of [small, shipped]) {
      const back = BpeTokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
      expect(back.vocabSize).toBe(tok.vocabSize);
      expect(back.eotId).toBe(tok.eotId);
      expect(back.toJSON()).toEqual(tok.toJSON());
      const r = mulberry32(5);
      for (let i = 0; i < 200; i++) {
        const s = randomString(r) + SENTENCES[i % SENTENCES.length];
        expect(back.encode(s)).toEqual(tok.encode(s));
      }
    }
  });

  it('follows the Hugging Face tokenizers layout', () => {
    const j = small.toJSON();
    expect(j.version).toBe('1.0');
    expect(j.pre_tokenizer).toEqual({
      type: 'ByteLevel',
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    });
    expect(j.decoder.type).toBe('ByteLevel');
    expect(j.model.type).toBe('BPE');
    for (const m of j.model.merges) expect(m).toMatch(/^\S+ \S+$/);
    // Every merge's result is in the vocab.
    for (const m of j.model.merges) expect(j.model.vocab[m.replace(' ', '')]).toBeTypeOf('number');
  });

  const clone = () => JSON.parse(JSON.stringify(shippedJSON));
  /** Give the token with this id a new name (id 1279 is the last merge's result, named by no merge). */
  const renameToken = (j: any, id: number, name: string) => {
    const old = Object.keys(j.model.vocab).find((k) => j.model.vocab[k] === id)!;
    delete j.model.vocab[old];
    j.model.vocab[name] = id;
    return j;
  };
  const bad: [string, (j: any) => unknown, RegExp][] = [
    ['not an object', () => 42, /must be an object/],
    ['missing model', (j) => ((j.model = undefined), j), /no "model"/],
    ['vocab missing', (j) => ((j.model.vocab = undefined), j), /model\.vocab/],
    ['merges not an array', (j) => ((j.model.merges = 'a b'), j), /merges" must be an array/],
    ['merges not strings', (j) => ((j.model.merges[3] = 17), j), /merge #3 .*must be strings/],
    ['merge with three parts', (j) => ((j.model.merges[0] = 'Ġ t h'), j), /merge #0 .*exactly two tokens/],
    [
      'merge naming an unknown token',
      (j) => ((j.model.merges[5] = 'Ġ zzzqqq'), j),
      /merge #5 .*"zzzqqq".*not in the vocab/,
    ],
    ['vocab ids not contiguous', (j) => ((j.model.vocab['Ġthe'] = 5000), j), /out of range.*contiguous/],
    ['vocab id used twice', (j) => ((j.model.vocab['Ġthe'] = 0), j), /used twice/],
    [
      'no <|endoftext|>',
      (j) => ((j.added_tokens = []), delete j.model.vocab['<|endoftext|>'], j),
      /must contain <\|endoftext\|>/,
    ],
    [
      'non-byte-level token',
      (j) => renameToken(j, 1279, 'hello world'),
      /"hello world" \(id 1279\) is not made of byte-level/,
    ],
    ['wrong model type', (j) => ((j.model.type = 'WordPiece'), j), /only "BPE"/],
    ['invalid JSON string', () => '{"model": ', /does not parse/],
  ];
  for (const [name, mutate, message] of bad) {
    it(`rejects malformed JSON: ${name}`, () => {
      let err: unknown;
      try {
        BpeTokenizer.fromJSON(mutate(clone()));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TokenizerError);
      expect((err as Error).name).toBe('TokenizerError');
      expect((err as Error).message).toMatch(message);
    });
  }

  it('rejects ids outside the vocab in decode', () => {
    expect(() => shipped.decode([shipped.vocabSize])).toThrow(TokenizerError);
    expect(() => shipped.decodeToken(-1)).toThrow(TokenizerError);
  });
});

describe('training', () => {
  it('is deterministic: same input, same merges; input order of words does not matter', () => {
    const a = trainBpe(SENTENCES, 80, { minFrequency: 1 }).toJSON();
    const b = trainBpe(SENTENCES, 80, { minFrequency: 1 }).toJSON();
    const c = trainBpe(SENTENCES.slice().reverse(), 80, { minFrequency: 1 }).toJSON();
    expect(a.model.merges).toHaveLength(80);
    expect(b.model.merges).toEqual(a.model.merges);
    expect(c.model.merges).toEqual(a.model.merges);
  });

  it('merges the most frequent pair first and breaks ties by the smaller ids', () => {
    const tok = trainBpe(['ab ab ab cd cd cd xy'], 3, { minFrequency: 1 });
    // Pre-tokens: "ab", " ab" ×2, " cd" ×3, " xy". Pair counts: (a,b)=3, (Ġ,c)=3, (c,d)=3, (Ġ,a)=2, ...
    // Ties at 3 go to the smaller left id: Ġ is byte 0x20 (id 32) < a (97) < c (99).
    // Then (a,b)=3 beats (Ġc,d)=3 because a (97) < Ġc (256); then (Ġc,d)=3.
    expect(tok.toJSON().model.merges).toEqual(['Ġ c', 'a b', 'Ġc d']);
  });

  it('reaches the requested vocab size and stops early below minFrequency', () => {
    expect(small.vocabSize).toBe(256 + 60 + 1);
    // Pre-tokens "abc" and " abc": (a,b) and (b,c) occur twice, (Ġ,a) once.
    const few = trainBpe(['abc abc'], 100); // minFrequency 2 by default
    expect(few.toJSON().model.merges).toEqual(['a b', 'ab c']);
    expect(few.vocabSize).toBe(256 + 2 + 1);
    expect(few.encode(' abc')).toEqual([32, 257]);
  });
});

describe('encodePrompt', () => {
  it('strips trailing spaces and tabs and returns them as heldBack', () => {
    const { ids, heldBack } = shipped.encodePrompt('The movie was ');
    expect(heldBack).toBe(' ');
    expect(ids).toEqual(shipped.encode('The movie was'));
    expect(ids.map((i) => shipped.decodeToken(i)).at(-1)).toBe(' was');
    expect(shipped.encodePrompt('Hello \t ').heldBack).toBe(' \t ');
  });

  it('leaves prompts without trailing space alone, and keeps newlines', () => {
    expect(shipped.encodePrompt('The movie was')).toEqual({ ids: shipped.encode('The movie was'), heldBack: '' });
    expect(shipped.encodePrompt('Hi\n')).toEqual({ ids: shipped.encode('Hi\n'), heldBack: '' });
    expect(shipped.encodePrompt('   ')).toEqual({ ids: [], heldBack: '   ' });
  });
});
