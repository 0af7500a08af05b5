import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { diversityMetrics, distinctN, selfBleu, sentenceBleu, wordTokens } from '../../src/lib/rlhf';

interface Case {
  name: string;
  texts: string[];
  distinct: Record<string, number>;
  selfBleu4: number | null;
  selfBleu2: number | null;
  bleu4?: number[];
}
interface Golden {
  cases: Case[];
  published: { hypothesis: string; references: string[]; bleu4: number; nltkDocstring: number };
}

const golden = JSON.parse(readFileSync('tests/golden/diversity.json', 'utf8')) as Golden;

describe('diversity against scripts/golden/diversity_reference.py', () => {
  test.each(golden.cases)('$name: distinct-1..4', (c) => {
    for (const [n, want] of Object.entries(c.distinct)) expect(distinctN(c.texts, Number(n))).toBeCloseTo(want, 12);
  });

  test.each(golden.cases)('$name: self-BLEU (maxN 4 and 2) and per-text BLEU', (c) => {
    if (c.selfBleu4 === null) {
      expect(selfBleu(c.texts)).toBeNaN();
      return;
    }
    expect(selfBleu(c.texts)).toBeCloseTo(c.selfBleu4, 12);
    expect(selfBleu(c.texts, 2)).toBeCloseTo(c.selfBleu2!, 12);
    const toks = c.texts.map(wordTokens);
    c.bleu4!.forEach((want, i) => {
      const refs = toks.filter((_, j) => j !== i);
      expect(sentenceBleu(toks[i], refs, 4)).toBeCloseTo(want, 12);
    });
  });

  test("NLTK's published sentence_bleu example (Papineni et al.'s hypothesis 1)", () => {
    const p = golden.published;
    const got = sentenceBleu(wordTokens(p.hypothesis), p.references.map(wordTokens));
    expect(got).toBeCloseTo(p.nltkDocstring, 12);
  });
});

describe('diversity properties', () => {
  test('identical texts: self-BLEU 1; disjoint texts: self-BLEU 0 and distinct 1', () => {
    expect(selfBleu(['a b c d e', 'a b c d e'])).toBeCloseTo(1, 12);
    expect(selfBleu(['a b', 'c d', 'e f'])).toBe(0);
    expect(distinctN(['a b', 'c d'], 1)).toBe(1);
  });

  test('more repetition lowers distinct-n and raises self-BLEU', () => {
    const varied = ['the film was slow', 'I loved every scene', 'a dull plot and bad acting'];
    const samey = ['the film was slow', 'the film was slow and long', 'the film was slow indeed'];
    expect(distinctN(samey, 2)).toBeLessThan(distinctN(varied, 2));
    expect(selfBleu(samey)).toBeGreaterThan(selfBleu(varied));
  });

  test('whitespace tokenisation keeps case and punctuation', () => {
    expect(wordTokens('  Great.\tgreat \n great! ')).toEqual(['Great.', 'great', 'great!']);
    expect(distinctN(['', '   '], 1)).toBe(0);
  });

  test('bad n is a RangeError; no references is a RangeError', () => {
    expect(() => distinctN(['a'], 0)).toThrow(RangeError);
    expect(() => selfBleu(['a', 'b'], 1.5)).toThrow(RangeError);
    expect(() => sentenceBleu(['a'], [])).toThrow(RangeError);
  });

  test('diversityMetrics reports the logged names, self-BLEU only with two or more texts', () => {
    const m = diversityMetrics(['a b c', 'a b d']);
    expect(Object.keys(m).sort()).toEqual(['eval/distinct_1', 'eval/distinct_2', 'eval/distinct_3', 'eval/self_bleu']);
    expect(m['eval/distinct_1']).toBeCloseTo(4 / 6, 12);
    expect('eval/self_bleu' in diversityMetrics(['one text'])).toBe(false);
  });
});
