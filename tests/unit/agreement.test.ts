import { describe, expect, it } from 'vitest';
import { agreement, agreementBetween, comparisonsOf, kappaFromConfusion } from '../../src/lib/rlhf/agreement';
import { makeRecord, type NewRecordInput, type PairwiseLabel } from '../../src/lib/data/records';

const input = (name: string, prompt: string, texts: string[]): NewRecordInput => ({
  prompt,
  responses: texts.map((text) => ({ text, tokenIds: [] })),
  modelId: 'm',
  checkpointId: 'c',
  sampling: { temperature: 1, topK: 0, topP: 1, maxNewTokens: 8 },
  seed: 0,
  annotator: { name, kind: 'human' },
});
/** Annotator `name` says the response `a${i}` ("first" in canonical order) or `b${i}` won; `swap` shows them B/A. */
const pick = (name: string, i: number, winner: 'a' | 'b', swap = false, now = 1) => {
  const texts = swap ? [`b${i}`, `a${i}`] : [`a${i}`, `b${i}`];
  const label: PairwiseLabel = texts[0].startsWith(winner) ? 'A' : 'B';
  return makeRecord(input(name, `p${i}`, texts), 'pairwise', label, now);
};

describe("Cohen's kappa", () => {
  it('matches a hand-computed example', () => {
    // ann1\ann2: (first,first)=4, (first,second)=1, (second,first)=2, (second,second)=3
    // pₒ = 7/10; row totals 5,5; column totals 6,4; pₑ = .5·.6 + .5·.4 = .5; κ = (.7−.5)/(1−.5) = .4
    const plan: ['a' | 'b', 'a' | 'b'][] = [
      ...Array<['a', 'a']>(4).fill(['a', 'a']),
      ['a', 'b'],
      ['b', 'a'],
      ['b', 'a'],
      ...Array<['b', 'b']>(3).fill(['b', 'b']),
    ];
    const ann1 = plan.map(([w], i) => pick('ann1', i, w));
    // ann2 saw every other pair in swapped positions: matching is by texts, not positions
    const ann2 = plan.map(([, w], i) => pick('ann2', i, w, i % 2 === 1));
    const res = agreement(ann1, ann2);
    expect(res.n).toBe(10);
    expect(res.rawAgreement).toBeCloseTo(0.7, 12);
    expect(res.expectedAgreement).toBeCloseTo(0.5, 12);
    expect(res.kappa).toBeCloseTo(0.4, 12);
    expect(res.confusion).toEqual([
      [4, 1, 0, 0],
      [2, 3, 0, 0],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
    ]);
    expect(agreementBetween([...ann1, ...ann2], 'ann1', 'ann2').kappa).toBeCloseTo(0.4, 12);
  });

  it('textbook 3×3 matrix', () => {
    // Fleiss-style example: n=100, pₒ=.7, pₑ=.34 → κ = .36/.66
    const m = [
      [25, 5, 0],
      [5, 25, 10],
      [5, 5, 20],
    ];
    const r = kappaFromConfusion(m);
    expect(r.rawAgreement).toBeCloseTo(0.7, 12);
    const pe = 0.3 * 0.35 + 0.4 * 0.35 + 0.3 * 0.3;
    expect(r.expectedAgreement).toBeCloseTo(pe, 12);
    expect(r.kappa).toBeCloseTo((0.7 - pe) / (1 - pe), 12);
  });

  it('κ is undefined (null, with a note) when everyone used one label', () => {
    const a = [0, 1, 2].map((i) => makeRecord(input('x', `p${i}`, ['u', 'v']), 'pairwise', 'tie'));
    const b = [0, 1, 2].map((i) => makeRecord(input('y', `p${i}`, ['v', 'u']), 'pairwise', 'tie'));
    const res = agreement(a, b);
    expect(res.n).toBe(3);
    expect(res.rawAgreement).toBe(1);
    expect(res.kappa).toBeNull();
    expect(res.note).toMatch(/undefined/);
  });

  it('no shared comparisons → n 0, nulls and a note', () => {
    const res = agreement([pick('x', 1, 'a')], [pick('y', 2, 'a')]);
    expect(res).toMatchObject({ n: 0, rawAgreement: null, kappa: null });
    expect(res.note).toMatch(/no comparisons in common/);
  });

  it('the latest judgement of a repeated comparison counts; skips are ignored', () => {
    const a = [pick('x', 1, 'a', false, 1), pick('x', 1, 'b', false, 5)];
    const b = [pick('y', 1, 'b'), makeRecord(input('y', 'p2', ['a2', 'b2']), 'pairwise', 'skip')];
    const res = agreement(a, [...b, makeRecord(input('x', 'p2', ['a2', 'b2']), 'pairwise', 'A')]);
    expect(res.n).toBe(1);
    expect(res.rawAgreement).toBe(1);
  });
});

describe('comparisonsOf', () => {
  it('ranking and rating records yield every pair', () => {
    const r = makeRecord(input('x', 'p', ['c', 'a', 'b']), 'ranking', { order: [0, 2, 1] });
    const cats = comparisonsOf(r).map((c) => [JSON.parse(c.key).slice(1).join(''), c.category]);
    // canonical pairs: (a,c): c ranked higher → second; (b,c): c → second; (a,b): b → second
    expect(cats).toEqual([
      ['ac', 'second'],
      ['bc', 'second'],
      ['ab', 'second'],
    ]);
    const f = { offTopic: false, repetitive: false, offensive: false };
    const rt = makeRecord(input('x', 'p', ['a', 'b', 'c']), 'rating', { ratings: [5, 5, 2], flags: [f, f, f] });
    expect(comparisonsOf(rt).map((c) => c.category)).toEqual(['tie', 'first', 'first']);
    expect(comparisonsOf(makeRecord(input('x', 'p', ['o']), 'edit', { edited: 'e', editedTokenIds: [] }))).toEqual([]);
  });
});
