import { describe, expect, it } from 'vitest';
import {
  detectKind,
  firstLines,
  parseJsonl,
  preferenceRowsToRecords,
  sftRowsToDemonstrations,
  splitNative,
  toNativeJsonl,
  toTrlPreferenceJsonl,
  toTrlPromptJsonl,
  toTrlSftJsonl,
  toTrlUnpairedJsonl,
  TRL_MAPPING_NOTES,
  utf8,
} from '../../src/lib/data/jsonl';
import { makeRecord, type Demonstration, type NewRecordInput, type PreferenceRecord } from '../../src/lib/data/records';

const base = (texts: string[], prompt = 'The movie was'): NewRecordInput => ({
  prompt,
  responses: texts.map((text, i) => ({ text, tokenIds: [i] })),
  modelId: 'tiny-gpt',
  checkpointId: 'step-100',
  sampling: { temperature: 0.7, topK: 0, topP: 0.9, maxNewTokens: 32 },
  seed: 42,
  annotator: { name: 'ana', kind: 'human' },
});
const flag = { offTopic: false, repetitive: false, offensive: false };

function sampleRecords(): PreferenceRecord[] {
  return [
    makeRecord(base([' great fun.', ' dull.']), 'pairwise', 'A', 1000),
    makeRecord(base([' ok', ' fine']), 'pairwise', 'tie', 1001),
    makeRecord(base(['r0', 'r1', 'r2']), 'ranking', { order: [1, 2, 0] }, 1002),
    makeRecord(base(['x', 'y']), 'rating', { ratings: [7, 3], flags: [flag, { ...flag, repetitive: true }] }, 1003),
    makeRecord(base(['orig']), 'edit', { edited: 'better', editedTokenIds: [5, 6] }, 1004),
    makeRecord(
      {
        ...base([' <script>alert(1)</script>', ' "quoted"\nnew line \u2028 sep']),
        annotator: {
          name: 'sent-bot',
          kind: 'labeller',
          labeller: {
            kind: 'sentiment',
            noise: 0.1,
            positionBias: 0.2,
            tieMargin: 0,
            polarity: 'positive',
            scoring: 'total',
          },
        },
      },
      'pairwise',
      'B',
      1005,
    ),
  ];
}

const parseLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('TRL export', () => {
  it('preference lines carry exactly prompt/chosen/rejected (+ margin on every row when any pair has one)', () => {
    const recs = sampleRecords();
    const rows = parseLines(toTrlPreferenceJsonl(recs));
    // pairwise A:1, tie:0, ranking 3:3, rating 1, edit 1, pairwise B:1
    expect(rows).toHaveLength(7);
    for (const r of rows) expect(Object.keys(r).sort()).toEqual(['chosen', 'margin', 'prompt', 'rejected']);
    expect(rows[0]).toEqual({ prompt: 'The movie was', chosen: ' great fun.', rejected: ' dull.', margin: 0 });
    expect(rows[4]).toEqual({ prompt: 'The movie was', chosen: 'x', rejected: 'y', margin: 4 });
    const noMargin = parseLines(toTrlPreferenceJsonl(recs, { includeMargin: false }));
    for (const r of noMargin) expect(Object.keys(r).sort()).toEqual(['chosen', 'prompt', 'rejected']);
    const pairwiseOnly = parseLines(toTrlPreferenceJsonl(recs.slice(0, 2)));
    expect(Object.keys(pairwiseOnly[0]).sort()).toEqual(['chosen', 'prompt', 'rejected']);
  });

  it('exported preference JSONL parses back as the TRL preference kind', () => {
    const text = toTrlPreferenceJsonl(sampleRecords());
    expect(detectKind(firstLines(text))).toBe('preference');
    const res = parseJsonl(text, 'preference');
    expect(res.errors).toEqual([]);
    expect(res.records).toHaveLength(7);
    expect(res.records[6].chosen).toContain('\u2028');
    expect(text).not.toContain('\u2028'); // escaped in the file
  });

  it('unpaired rows: label is boolean and mapping follows the notes', () => {
    const rows = parseLines(toTrlUnpairedJsonl(sampleRecords()));
    for (const r of rows) {
      expect(Object.keys(r).sort()).toEqual(['completion', 'label', 'prompt']);
      expect(typeof r.label).toBe('boolean');
    }
    const byText = Object.fromEntries(rows.map((r) => [r.completion, r.label]));
    expect(byText[' great fun.']).toBe(true);
    expect(byText[' dull.']).toBe(false);
    expect(' ok' in byText).toBe(false); // tie → nothing
    expect(byText.r1).toBe(true); // ranking top half
    expect(byText.r0).toBe(false); // ranking bottom half
    expect('r2' in byText).toBe(false); // middle of odd K
    expect(byText.x).toBe(true);
    expect(byText.y).toBe(false); // rating 3 (and flagged)
    expect(byText.better).toBe(true);
    expect(byText.orig).toBe(false);
    expect(TRL_MAPPING_NOTES).toMatch(/Tie/);
  });

  it('prompt-only and SFT lines', () => {
    const p = parseLines(toTrlPromptJsonl(['a', 'b', 'a']));
    expect(p).toEqual([{ prompt: 'a' }, { prompt: 'b' }]);
    const s = parseLines(toTrlSftJsonl([{ prompt: 'p', completion: 'c' }]));
    expect(s).toEqual([{ prompt: 'p', completion: 'c' }]);
  });
});

describe('native format', () => {
  it('round-trips records and demonstrations to deep-equal values', () => {
    const prefs = sampleRecords();
    const demos: Demonstration[] = [
      { id: 'd1', prompt: 'Once upon a time,', completion: ' a fox.', source: 'written', createdAt: 5 },
      { id: 'd2', prompt: 'The movie was', completion: 'better', source: 'edit', recordId: prefs[4].id, createdAt: 6 },
    ];
    const text = toNativeJsonl({ preferences: prefs, demonstrations: demos });
    expect(JSON.parse(text.split('\n')[0])).toMatchObject({ format: 'rlhf-playground', version: 1 });
    expect(detectKind(text)).toBe('native');
    const res = parseJsonl(text, 'native');
    expect(res.errors).toEqual([]);
    const back = splitNative(res.records);
    expect(back.preferences).toStrictEqual(prefs);
    expect(back.demonstrations).toStrictEqual(demos);
    // bytes in, same result
    expect(parseJsonl(utf8(text), 'native').records).toStrictEqual(res.records);
  });

  it('needs the header, refuses newer versions and duplicate ids', () => {
    const rec = JSON.stringify(sampleRecords()[0]);
    expect(parseJsonl(rec + '\n', 'native').errors[0]).toMatchObject({
      line: 1,
      reason: expect.stringMatching(/not an RLHF/),
    });
    expect(parseJsonl('{"format":"rlhf-playground","version":99}\n', 'native').errors[0].reason).toMatch(
      /newer version/,
    );
    const dup = parseJsonl(`{"format":"rlhf-playground","version":1}\n${rec}\n${rec}\n`, 'native');
    expect(dup.errors).toEqual([{ line: 3, reason: expect.stringMatching(/duplicate id .*line 2/) }]);
    expect(dup.records).toEqual([]);
    const badRec = parseJsonl(`{"format":"rlhf-playground","version":1}\n{"mode":"pairwise"}\n`, 'native');
    expect(badRec.errors[0].line).toBe(2);
    expect(parseJsonl('', 'native').errors[0].reason).toMatch(/empty file/);
  });
});

describe('parseJsonl validation', () => {
  const ok = (p: string) => JSON.stringify({ prompt: p, chosen: 'yes', rejected: 'no' });

  it.each<[string, string | Uint8Array, number, RegExp]>([
    ['invalid JSON', `${ok('a')}\n{"prompt": "b", chosen}\n`, 2, /invalid JSON/],
    ['not an object', `${ok('a')}\n[1,2]\n`, 2, /an array/],
    [
      'wrong type',
      `${ok('a')}\n${ok('b')}\n{"prompt":"c","chosen":3,"rejected":"x"}\n`,
      3,
      /"chosen" must be a string/,
    ],
    ['missing field', `{"prompt":"a","chosen":"x"}\n`, 1, /missing "rejected"/],
    ['empty string', `${ok('a')}\n{"prompt":"  ","chosen":"x","rejected":"y"}\n`, 2, /"prompt" is empty/],
    ['unexpected key', `{"prompt":"a","chosen":"x","rejected":"y","score":1}\n`, 1, /unexpected key "score"/],
    ['bad margin', `{"prompt":"a","chosen":"x","rejected":"y","margin":"1"}\n`, 1, /margin/],
    ['same texts', `{"prompt":"a","chosen":"x","rejected":"x"}\n`, 1, /same text/],
    ['NUL byte', `${ok('a')}\n{"prompt":"a\u0000","chosen":"x","rejected":"y"}\n`, 2, /NUL/],
    ['replacement char', `${ok('a')}\n{"prompt":"caf\ufffd","chosen":"x","rejected":"y"}\n`, 2, /U\+FFFD/],
    ['duplicate', `${ok('a')}\n${ok('b')}\n${ok('a')}\n`, 3, /duplicate of line 1/],
    [
      'invalid UTF-8 bytes',
      new Uint8Array([...utf8(ok('a') + '\n'), 0x7b, 0xff, 0xfe, 0x7d, 0x0a]),
      2,
      /not valid UTF-8/,
    ],
  ])('%s → error on the right line, no records (all-or-nothing)', (_name, input, line, reason) => {
    const res = parseJsonl(input, 'preference');
    expect(res.ok).toBe(false);
    expect(res.records).toEqual([]);
    expect(res.errors).toHaveLength(1);
    expect(res.errors[0].line).toBe(line);
    expect(res.errors[0].reason).toMatch(reason);
  });

  it('valid-lines policy keeps the good lines', () => {
    const res = parseJsonl(`${ok('a')}\nnot json\n${ok('b')}\n`, 'preference', { policy: 'valid-lines' });
    expect(res.records.map((r) => r.prompt)).toEqual(['a', 'b']);
    expect(res.errors).toEqual([{ line: 2, reason: expect.stringMatching(/invalid JSON/) }]);
    expect(res.ok).toBe(false);
  });

  it('refuses an over-long line without parsing it (string and bytes)', () => {
    const huge = '{"prompt":"' + 'x'.repeat(10 * 1024 * 1024) + '","chosen":"a","rejected":"b"}';
    const text = `${ok('a')}\n${huge}\n${ok('b')}\n`;
    const res = parseJsonl(text, 'preference');
    expect(res.errors).toEqual([{ line: 2, reason: expect.stringMatching(/longer than 1 MB/) }]);
    const resBytes = parseJsonl(utf8(text), 'preference', { policy: 'valid-lines' });
    expect(resBytes.errors[0].line).toBe(2);
    expect(resBytes.records).toHaveLength(2);
    // multi-byte characters count as bytes
    const small = parseJsonl(`{"prompt":"${'é'.repeat(600)}","chosen":"a","rejected":"b"}`, 'preference', {
      maxLineBytes: 1000,
    });
    expect(small.errors[0].reason).toMatch(/longer than/);
  });

  it('strips a BOM, accepts CRLF, skips blank lines, keeps HTML as plain text', () => {
    const text = `\ufeff${ok('a')}\r\n\r\n{"prompt":"<b>x</b><script>alert(1)</script>","chosen":"<img src=x onerror=alert(1)>","rejected":"y"}\r\n`;
    const res = parseJsonl(text, 'preference');
    expect(res.errors).toEqual([]);
    expect(res.records).toEqual([
      { prompt: 'a', chosen: 'yes', rejected: 'no' },
      { prompt: '<b>x</b><script>alert(1)</script>', chosen: '<img src=x onerror=alert(1)>', rejected: 'y' },
    ]);
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...utf8(ok('a') + '\r\n')]);
    expect(parseJsonl(bytes, 'preference').records).toHaveLength(1);
  });

  it('empty file is an error', () => {
    expect(parseJsonl('\n\n', 'prompt').errors[0].reason).toMatch(/empty file/);
  });

  it('other TRL kinds validate their keys', () => {
    expect(parseJsonl('{"prompt":"p","completion":"c","label":true}', 'unpaired').records).toEqual([
      { prompt: 'p', completion: 'c', label: true },
    ]);
    expect(parseJsonl('{"prompt":"p","completion":"c","label":"yes"}', 'unpaired').errors[0].reason).toMatch(
      /true or false/,
    );
    expect(parseJsonl('{"prompt":"p","completion":"c"}', 'prompt-completion').records).toHaveLength(1);
    expect(parseJsonl('{"prompt":"p","completion":""}', 'prompt-completion').errors[0].reason).toMatch(/empty/);
    expect(parseJsonl('{"prompt":"p"}\n{"prompt":"q"}', 'prompt').records).toHaveLength(2);
  });
});

describe('detectKind', () => {
  it.each<[string, string | null]>([
    ['{"prompt":"a","chosen":"b","rejected":"c"}', 'preference'],
    ['{"prompt":"a","completion":"b","label":false}', 'unpaired'],
    ['{"prompt":"a","completion":"b"}', 'prompt-completion'],
    ['\ufeff{"prompt":"a"}', 'prompt'],
    ['{"format":"rlhf-playground","version":1}', 'native'],
    ['{"messages":[{"role":"user","content":"hi"}]}', null],
    ['not json', null],
    ['\n\n', null],
  ])('%s → %s', (line, kind) => {
    expect(detectKind(line)).toBe(kind);
  });
});

describe('imported rows → app data', () => {
  it('preference rows become valid pairwise records, SFT rows demonstrations', () => {
    const recs = preferenceRowsToRecords([{ prompt: 'p', chosen: 'c', rejected: 'r' }], { now: 10 });
    expect(recs[0]).toMatchObject({
      mode: 'pairwise',
      label: 'A',
      responses: [{ text: 'c' }, { text: 'r' }],
      createdAt: 10,
    });
    expect(parseLines(toTrlPreferenceJsonl(recs))).toEqual([{ prompt: 'p', chosen: 'c', rejected: 'r' }]);
    const demos = sftRowsToDemonstrations([{ prompt: 'p', completion: 'c' }], 3);
    expect(demos[0]).toMatchObject({ prompt: 'p', completion: 'c', source: 'import', createdAt: 3 });
  });
});
