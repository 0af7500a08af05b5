/**
 * Text in for the Pretrain page (decoding, formats, stats, split), the counting baselines against
 * Python (scripts/golden/pretrain_reference.py), the size presets and the settings table.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  ChunkDecoder,
  PretrainDataError,
  csvColumns,
  decodeUtf8,
  documentsOf,
  formatOf,
  parseCsv,
  splitTrainVal,
  textDocuments,
  textStats,
} from '../../src/lib/pretrain/text';
import { bitsPerByte, countingBaselines, evalTargets } from '../../src/lib/pretrain/baselines';
import { PRESETS, presetConfig, presetSize } from '../../src/lib/pretrain/presets';
import { PRETRAIN_SETTINGS, PretrainConfigError } from '../../src/lib/pretrain/config';
import { countParams } from '../../src/lib/model/plan';

const enc = (s: string) => new TextEncoder().encode(s);

describe('decoding text in chunks', () => {
  it('carries a multi-byte character split across chunks, at every chunk size', () => {
    const text = 'naïve café — 日本語 🎉 end';
    const bytes = enc(text);
    for (let size = 1; size <= 8; size++) expect(decodeUtf8(bytes, 'a.txt', size)).toBe(text);
  });

  it('refuses invalid UTF-8 (Latin-1 bytes) with the file name and the bytes', () => {
    const latin1 = Uint8Array.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x6f, 0x6b]); // "café ok" in Latin-1
    expect(() => decodeUtf8(latin1, 'old.txt', 4)).toThrow(PretrainDataError);
    expect(() => decodeUtf8(latin1, 'old.txt', 4)).toThrow(
      /old\.txt is not valid UTF-8 .*bytes 1 and 7.*Save it as UTF-8/,
    );
  });

  it('refuses a text cut inside a character at the end', () => {
    const cut = enc('ab日').subarray(0, 4);
    expect(() => decodeUtf8(cut, 'cut.txt')).toThrow(/cut\.txt is not valid UTF-8/);
  });

  it('refuses a binary file, an empty one and UTF-16', () => {
    expect(() => decodeUtf8(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 1]), 'pic.png')).toThrow(
      /pic\.png looks like a binary file \(a zero byte at byte 4\)/,
    );
    expect(() => decodeUtf8(new Uint8Array(0), 'e.txt')).toThrow(/e\.txt is empty/);
    expect(() => decodeUtf8(enc(' \n\n  \n'), 'blank.txt')).toThrow(/blank\.txt is empty/);
    expect(() => decodeUtf8(Uint8Array.from([0xff, 0xfe, 0x41, 0x00]), 'w.txt')).toThrow(/UTF-16/);
  });

  it('drops a UTF-8 byte-order mark', () => {
    const d = new ChunkDecoder('bom.txt');
    d.push(Uint8Array.from([0xef, 0xbb, 0xbf, 0x68, 0x69]));
    expect(d.end()).toBe('hi');
  });
});

describe('documents', () => {
  it('plain text: blocks between blank lines, CRLF too', () => {
    expect(textDocuments('One.\r\nStill one.\r\n\r\nTwo.\n  \nThree.\n\n\n')).toEqual([
      'One.\nStill one.',
      'Two.',
      'Three.',
    ]);
    expect(formatOf('notes.MD')).toBe('text');
    expect(formatOf('a.jsonl')).toBe('jsonl');
    expect(formatOf('a.csv')).toBe('csv');
  });

  it('JSON Lines: the text field; a bad line named by number', () => {
    expect(documentsOf('{"text":"a b"}\n\n{"text":" c ","id":2}\n', 'd.jsonl', 'jsonl')).toEqual(['a b', 'c']);
    expect(() => documentsOf('{"text":"a"}\n{"body":"b"}', 'd.jsonl', 'jsonl')).toThrow(
      /d\.jsonl, line 2: needs a "text" field/,
    );
    expect(() => documentsOf('{"text":"a"}\nnot json', 'd.jsonl', 'jsonl')).toThrow(/line 2: not valid JSON/);
  });

  it('CSV: the rows Python’s csv module reads (golden), a column by name', () => {
    const g = JSON.parse(readFileSync('tests/golden/pretrain.json', 'utf8')) as Golden;
    expect(parseCsv(g.csv.text, 'g.csv')).toEqual(g.csv.rows);
    expect(csvColumns(g.csv.text, 'g.csv')).toEqual(['id', 'text', 'note']);
    expect(documentsOf(g.csv.text, 'g.csv', 'csv')).toEqual([
      'Hello, world',
      'She said "hi"\nthen left',
      'unquoted text',
      'last "one"',
    ]);
    expect(documentsOf(g.csv.text, 'g.csv', 'csv', 'note')).toEqual(['plain', 'x', 'a,b', 'empty', 'end']);
    expect(() => documentsOf(g.csv.text, 'g.csv', 'csv', 'body')).toThrow(/no column "body"; its columns are "id"/);
    expect(() => parseCsv('a,b\n"open,2\n', 'u.csv')).toThrow(/quoted field that starts on line 2 never ends/);
  });

  it('a file with no documents is refused', () => {
    expect(() => documentsOf('id,text\n1,\n', 'e.csv', 'csv')).toThrow(/e\.csv holds no documents/);
  });
});

describe('stats and split', () => {
  it('counts bytes, characters (code points), lines and documents', () => {
    expect(textStats(['ab', 'é\n🎉'])).toEqual({ bytes: 3 + 2 + 1 + 4 + 1, characters: 5, lines: 3, documents: 2 });
  });

  it('keeps 5 % of documents (at least one) for validation, seeded, nothing lost', () => {
    const docs = Array.from({ length: 100 }, (_, i) => `doc ${i}`);
    const a = splitTrainVal(docs, 7);
    expect(a.val).toHaveLength(5);
    expect(a.train).toHaveLength(95);
    expect(new Set([...a.train, ...a.val]).size).toBe(100);
    expect(splitTrainVal(docs, 7)).toEqual(a);
    expect(splitTrainVal(docs, 8).val).not.toEqual(a.val);
    expect(splitTrainVal(['x', 'y', 'z'], 1).val).toHaveLength(1);
    expect(() => splitTrainVal(['only one'], 1)).toThrow(/1 document; it needs at least two/);
  });
});

interface Golden {
  V: number;
  T: number;
  windows: number;
  train: number[];
  val: number[];
  cases: { k: number; all: Stat; windows: Stat }[];
  bpb: { natsPerToken: number; tokens: number; bytes: number; bitsPerByte: number };
  csv: { text: string; rows: string[][] };
}
interface Stat {
  unigram: number;
  bigram: number;
  tokens: number;
}

describe('counting baselines against Python', () => {
  const g = JSON.parse(readFileSync('tests/golden/pretrain.json', 'utf8')) as Golden;
  const train = Int32Array.from(g.train);
  const val = Int32Array.from(g.val);
  for (const c of g.cases) {
    it(`unigram and add-${c.k} bigram on all targets and on the evaluated windows`, () => {
      const all = countingBaselines(train, val, g.V, c.k);
      expect(all.unigram).toBeCloseTo(c.all.unigram, 10);
      expect(all.bigram).toBeCloseTo(c.all.bigram, 10);
      expect(all.tokens).toBe(c.all.tokens);
      const w = countingBaselines(train, val, g.V, c.k, evalTargets(val.length, g.T, g.windows));
      expect(w.unigram).toBeCloseTo(c.windows.unigram, 10);
      expect(w.bigram).toBeCloseTo(c.windows.bigram, 10);
      expect(w.tokens).toBe(c.windows.tokens);
      expect(w.bigram).toBeLessThan(w.unigram); // the stream has bigram structure
    });
  }
  it('bits per byte', () => {
    expect(bitsPerByte(g.bpb.natsPerToken, g.bpb.tokens, g.bpb.bytes)).toBeCloseTo(g.bpb.bitsPerByte, 12);
  });
});

describe('presets and settings', () => {
  it('tiny is the bundled model: 965,504 parameters with its 1,281-token vocabulary', () => {
    const bundled = JSON.parse(readFileSync('public/models/tiny-gpt/config.json', 'utf8')) as {
      nanogpt: Record<string, number>;
    };
    const c = presetConfig('tiny', 1281);
    for (const k of ['blockSize', 'nLayer', 'nHead', 'nEmbd'] as const) expect(c[k]).toBe(bundled.nanogpt[k]);
    expect(presetSize('tiny', 1281).params).toBe(965_504);
    expect(presetSize('tiny', 1281).params).toBe(countParams(c));
    expect(presetSize('tiny', 1281).trainingBytes).toBe(965_504 * 16);
    const sizes = Object.keys(PRESETS).map((n) => presetSize(n as keyof typeof PRESETS, 1281).params);
    expect([...sizes].sort((a, b) => a - b)).toEqual(sizes);
  });

  it('defaults follow scripts/pretrain.ts; URL names take the pt prefix; bad values are named', () => {
    const d = PRETRAIN_SETTINGS.defaults;
    expect([d.lr, d.minLrRatio, d.warmup, d.weightDecay, d.beta2, d.gradClip, d.batchSize]).toEqual([
      2e-3, 0.1, 100, 0.1, 0.95, 1.0, 16,
    ]);
    expect(PRETRAIN_SETTINGS.urlName('lr')).toBe('ptLr');
    expect(() => PRETRAIN_SETTINGS.validate({ beta2: 1, preset: 'huge' })).toThrow(PretrainConfigError);
    expect(PRETRAIN_SETTINGS.problems({ beta2: 1 }).beta2).toMatch(/below 1|< 1/);
  });
});
