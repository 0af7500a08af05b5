import { describe, expect, it } from 'vitest';
import {
  compareRecords,
  InvalidRecordError,
  makeRecord,
  SCHEMA_VERSION,
  toDemonstration,
  toPairs,
  validateRecord,
  type NewRecordInput,
  type PreferenceRecord,
} from '../../src/lib/data/records';

const base = (texts: string[]): NewRecordInput => ({
  prompt: 'The movie was',
  responses: texts.map((text, i) => ({ text, tokenIds: [i, i + 1] })),
  modelId: 'tiny-gpt',
  checkpointId: 'base',
  sampling: { temperature: 0.8, topK: 40, topP: 0.95, maxNewTokens: 24 },
  seed: 7,
  annotator: { name: 'ana', kind: 'human' },
});

describe('toPairs', () => {
  it('pairwise A and B give one pair, tie / both-bad / skip give none', () => {
    const a = makeRecord(base(['good', 'bad']), 'pairwise', 'A');
    expect(toPairs(a)).toEqual([{ prompt: 'The movie was', chosen: 'good', rejected: 'bad' }]);
    const b = makeRecord(base(['good', 'bad']), 'pairwise', 'B');
    expect(toPairs(b)).toEqual([{ prompt: 'The movie was', chosen: 'bad', rejected: 'good' }]);
    for (const l of ['tie', 'both-bad', 'skip'] as const) {
      expect(toPairs(makeRecord(base(['good', 'bad']), 'pairwise', l))).toEqual([]);
    }
  });

  it('ranking of 4 gives 6 pairs in order, best first', () => {
    // order: response 2 best, then 0, then 3, then 1
    const r = makeRecord(base(['r0', 'r1', 'r2', 'r3']), 'ranking', { order: [2, 0, 3, 1] });
    const pairs = toPairs(r).map((p) => [p.chosen, p.rejected]);
    expect(pairs).toEqual([
      ['r2', 'r0'],
      ['r2', 'r3'],
      ['r2', 'r1'],
      ['r0', 'r3'],
      ['r0', 'r1'],
      ['r3', 'r1'],
    ]);
  });

  it('ranking of K gives C(K,2) pairs', () => {
    for (let K = 3; K <= 6; K++) {
      const texts = Array.from({ length: K }, (_, i) => `t${i}`);
      const r = makeRecord(base(texts), 'ranking', { order: texts.map((_, i) => i) });
      expect(toPairs(r)).toHaveLength((K * (K - 1)) / 2);
    }
  });

  it('rating gives pairs between different ratings with the difference as margin', () => {
    const flag = { offTopic: false, repetitive: false, offensive: false };
    const r = makeRecord(base(['x', 'y', 'z']), 'rating', { ratings: [6, 2, 6], flags: [flag, flag, flag] });
    expect(toPairs(r)).toEqual([
      { prompt: 'The movie was', chosen: 'x', rejected: 'y', margin: 4 },
      { prompt: 'The movie was', chosen: 'z', rejected: 'y', margin: 4 },
    ]);
  });

  it('edit gives edited ≻ original and a demonstration', () => {
    const r = makeRecord(base(['bad text']), 'edit', { edited: 'good text', editedTokenIds: [] });
    expect(toPairs(r)).toEqual([{ prompt: 'The movie was', chosen: 'good text', rejected: 'bad text' }]);
    expect(toDemonstration(r)).toMatchObject({ prompt: 'The movie was', completion: 'good text', source: 'edit' });
    const same = makeRecord(base(['same']), 'edit', { edited: 'same', editedTokenIds: [] });
    expect(toPairs(same)).toEqual([]);
  });

  it('identical texts make no pair', () => {
    expect(toPairs(makeRecord(base(['same', 'same']), 'pairwise', 'A'))).toEqual([]);
  });
});

describe('validateRecord', () => {
  const good = makeRecord(base(['a', 'b']), 'pairwise', 'A');
  const bad = (patch: Record<string, unknown>) => ({ ...good, ...patch });

  it('accepts a made record and stamps the schema version', () => {
    expect(validateRecord(good)).toEqual(good);
    expect(good.schemaVersion).toBe(SCHEMA_VERSION);
  });

  it.each([
    [{ mode: 'vote' }, /mode/],
    [{ label: 'C' }, /label/],
    [{ prompt: '' }, /prompt: must not be empty/],
    [{ responses: [{ text: 'a', tokenIds: [] }] }, /exactly 2/],
    [
      {
        responses: [
          { text: 'a', tokenIds: [1.5] },
          { text: 'b', tokenIds: [] },
        ],
      },
      /tokenIds\[0\]/,
    ],
    [{ sampling: { temperature: 1, topK: 0, topP: 2, maxNewTokens: 5 } }, /topP/],
    [{ annotator: { name: 'x', kind: 'robot' } }, /annotator.kind/],
    [{ annotator: { name: 'x', kind: 'labeller', labeller: { kind: 'magic' } } }, /annotator.labeller/],
    [{ schemaVersion: SCHEMA_VERSION + 1 }, /newer/],
    [{ createdAt: 'yesterday' }, /createdAt/],
  ])('rejects %j', (patch, msg) => {
    expect(() => validateRecord(bad(patch))).toThrow(InvalidRecordError);
    expect(() => validateRecord(bad(patch))).toThrow(msg);
  });

  it('checks ranking order is a permutation and rating ranges', () => {
    expect(() => makeRecord(base(['a', 'b', 'c']), 'ranking', { order: [0, 0, 1] })).toThrow(/permutation/);
    expect(() => makeRecord(base(['a', 'b']), 'ranking', { order: [0, 1] })).toThrow(/3–6/);
    const flag = { offTopic: false, repetitive: false, offensive: false };
    expect(() => makeRecord(base(['a']), 'rating', { ratings: [8], flags: [flag] })).toThrow(/≤ 7/);
    expect(() => makeRecord(base(['a', 'b']), 'rating', { ratings: [3], flags: [flag, flag] })).toThrow(/one rating/);
  });

  it('normalises a labeller annotator config (fills defaults)', () => {
    const r = makeRecord(
      { ...base(['a', 'b']), annotator: { name: 'bot', kind: 'labeller', labeller: { kind: 'sentiment' } as never } },
      'pairwise',
      'A',
    );
    const rec = r as PreferenceRecord;
    expect(rec.annotator).toEqual({
      name: 'bot',
      kind: 'labeller',
      labeller: { kind: 'sentiment', noise: 0, positionBias: 0, tieMargin: 0, polarity: 'positive', scoring: 'total' },
    });
  });
});

describe('per-response sampling settings (arena)', () => {
  it('validates and keeps each response its own settings and seed', () => {
    const rec = {
      id: 'r1',
      schemaVersion: 1,
      mode: 'pairwise',
      label: 'A',
      prompt: 'The movie was',
      responses: [
        { text: ' good', tokenIds: [1], sampling: { temperature: 0.6, topK: 0, topP: 1, maxNewTokens: 8 }, seed: 3 },
        { text: ' bad', tokenIds: [2], sampling: { temperature: 1.3, topK: 0, topP: 1, maxNewTokens: 8 }, seed: 4 },
      ],
      modelId: 'm',
      checkpointId: 'base',
      sampling: { temperature: 0.6, topK: 0, topP: 1, maxNewTokens: 8 },
      seed: 3,
      annotator: { name: 'me', kind: 'human' },
      createdAt: 1,
      updatedAt: 1,
    };
    const v = validateRecord(rec);
    expect(v.responses[1].sampling!.temperature).toBe(1.3);
    expect(v.responses[1].seed).toBe(4);
    expect(() => validateRecord({ ...rec, responses: [rec.responses[0], { ...rec.responses[1], seed: 1.5 }] })).toThrow(
      /seed/,
    );
  });
});

describe('compareRecords', () => {
  it('orders by time, then records saved together by content, whatever their random ids', () => {
    const at = (texts: string[], label: 'A' | 'B', now: number) => makeRecord(base(texts), 'pairwise', label, now);
    const batch = [
      at(['x', 'y'], 'A', 100),
      at(['a', 'b'], 'B', 100),
      at(['a', 'b'], 'A', 100),
      at(['m', 'n'], 'A', 50),
    ];
    const sorted = [...batch].sort(compareRecords);
    // The same records with other ids (another profile) sort into the same content order.
    const other = batch.map((r) => ({ ...r, id: `z-${r.id}` })).reverse();
    const content = (rs: PreferenceRecord[]) => rs.map((r) => [r.createdAt, r.responses[0].text, r.label]);
    expect(content([...other].sort(compareRecords))).toEqual(content(sorted));
    expect(content(sorted)).toEqual([
      [50, 'm', 'A'],
      [100, 'a', 'A'],
      [100, 'a', 'B'],
      [100, 'x', 'A'],
    ]);
  });
});
