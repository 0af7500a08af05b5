import { describe, expect, it } from 'vitest';
import {
  defaultLabellerConfig,
  describeRule,
  LabellerConfigError,
  labellerFromConfig,
  passesRule,
  sentimentOf,
  validateLabellerConfig,
  type LabellerConfig,
} from '../../src/lib/rlhf/labellers';
import { Rng } from '../../src/lib/model/rng';

const sentiment = (over: Partial<LabellerConfig> = {}) =>
  labellerFromConfig({ ...defaultLabellerConfig('sentiment'), ...over });

describe('sentiment labeller', () => {
  it('prefers the positive review, both ways round', () => {
    const l = sentiment();
    const good = 'The movie was wonderful and I loved it.';
    const bad = 'The movie was boring and awful.';
    expect(l.score(good)).toBeGreaterThan(0);
    expect(l.score(bad)).toBeLessThan(0);
    expect(l.compare(good, bad, '', new Rng(1))).toBe('A');
    expect(l.compare(bad, good, '', new Rng(1))).toBe('B');
  });

  it('handles negation, also across the prompt boundary', () => {
    expect(sentimentOf('not good').total).toBeLessThan(0);
    expect(sentimentOf(' good', 'The movie was not').total).toBeLessThan(0);
    expect(sentimentOf(' good', 'The movie was').total).toBeGreaterThan(0);
    // the prompt's own words do not count
    expect(sentimentOf(' fine.', 'I hated the').total).toBe(sentimentOf(' fine.').total);
  });

  it('negative polarity and comparative scoring', () => {
    const grumpy = sentiment({ polarity: 'negative' } as Partial<LabellerConfig>);
    expect(grumpy.compare('It was great.', 'It was bad.', '', new Rng(0))).toBe('B');
    const comp = sentiment({ scoring: 'comparative' } as Partial<LabellerConfig>);
    expect(comp.score('good')).toBeCloseTo(3, 6);
    expect(comp.score('good good good good good good')).toBeCloseTo(3, 6);
    expect(sentiment().score('good good')).toBe(6);
  });

  it("'distinct' scoring: per-word sentiment times the share of distinct words", () => {
    const d = sentiment({ scoring: 'distinct' } as Partial<LabellerConfig>);
    // No repetition: the same as per word.
    expect(d.score('a good film')).toBeCloseTo(1, 6);
    // "good good good good" is 3 per word, one distinct word in four.
    expect(d.score('good good good good')).toBeCloseTo(0.75, 6);
    // Varied praise beats the same praise repeated, though per word they tie.
    expect(d.compare('good, great, nice', 'great, great, great', '', new Rng(0))).toBe('A');
    expect(sentiment({ scoring: 'comparative' } as Partial<LabellerConfig>).score('great, great, great')).toBe(3);
    // A grumpy reader: repeated complaints are less convincing too (closer to 0).
    const g = sentiment({ scoring: 'distinct', polarity: 'negative' } as Partial<LabellerConfig>);
    expect(g.score('bad bad')).toBeCloseTo(1.5, 6);
    expect(g.score('bad')).toBeCloseTo(3, 6);
    expect(validateLabellerConfig({ kind: 'sentiment', scoring: 'distinct' })).toMatchObject({ scoring: 'distinct' });
    expect(() => validateLabellerConfig({ kind: 'sentiment', scoring: 'loud' })).toThrow(/scoring must be/);
  });

  it('breaks score ties by fewer negative words, else says tie', () => {
    const l = sentiment();
    // "good" (+3) and "bad" (−3) sum to 0, like a neutral text; the neutral one has no negative words.
    expect(l.score('good but bad')).toBe(l.score('the table'));
    expect(l.judge('good but bad', 'the table', '', new Rng(0))).toMatchObject({
      choice: 'B',
      reason: expect.stringMatching(/negative/),
    });
    expect(l.compare('the table', 'the chair', '', new Rng(0))).toBe('tie');
  });

  it('noise 0 is deterministic', () => {
    const l = sentiment();
    const rngA = new Rng(1);
    const rngB = new Rng(999);
    const pairs: [string, string][] = [
      ['I loved it.', 'I hated it.'],
      ['It was bad.', 'It was great.'],
      ['the table', 'the chair'],
    ];
    for (let i = 0; i < 50; i++) {
      for (const [a, b] of pairs) expect(l.compare(a, b, '', rngA)).toBe(l.compare(a, b, '', rngB));
    }
  });

  it('noise 0.1 flips about 10% of 2,000 comparisons', () => {
    const l = sentiment({ noise: 0.1 });
    const rng = new Rng(2024);
    let flips = 0;
    for (let i = 0; i < 2000; i++) if (l.compare('I loved it.', 'I hated it.', '', rng) === 'B') flips++;
    // Binomial(2000, 0.1): mean 200, sd 13.4; ±5 sd.
    expect(flips).toBeGreaterThan(133);
    expect(flips).toBeLessThan(267);
  });

  it('same seed, same noisy labels', () => {
    const l = sentiment({ noise: 0.3, positionBias: 0.5 });
    const run = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 100 }, (_, i) => l.compare(i % 2 ? 'good' : 'bad', 'the', '', rng)).join('');
    };
    expect(run(5)).toBe(run(5));
    expect(run(5)).not.toBe(run(6));
  });

  it('position bias moves ties toward A', () => {
    const count = (positionBias: number) => {
      const l = sentiment({ positionBias });
      const rng = new Rng(3);
      let a = 0;
      for (let i = 0; i < 1000; i++) if (l.compare('the table', 'the chair', '', rng) === 'A') a++;
      return a;
    };
    expect(count(0)).toBe(0);
    expect(count(1)).toBe(1000);
    const half = count(0.5);
    expect(half).toBeGreaterThan(420);
    expect(half).toBeLessThan(580);
    // bias does not touch clear decisions
    expect(sentiment({ positionBias: 1 }).compare('I hated it.', 'I loved it.', '', new Rng(0))).toBe('B');
  });

  it('is rarely a tie on review-like texts from the corpus style', () => {
    const l = sentiment();
    const texts = [
      ' wonderful, I loved every minute.',
      ' boring and far too long.',
      ' a disaster from start to finish.',
      ' charming and funny.',
      ' delicious, the staff were friendly.',
      ' cold and tasteless.',
      ' great value, it works perfectly.',
      ' broken after a week, very disappointed.',
    ];
    let ties = 0;
    let n = 0;
    for (const a of texts)
      for (const b of texts)
        if (a !== b) {
          n++;
          if (l.compare(a, b, 'The movie was', new Rng(0)) === 'tie') ties++;
        }
    expect(ties / n).toBeLessThan(0.1);
  });
});

describe('length and keyword labellers', () => {
  it('length: longer, shorter, target', () => {
    const rng = new Rng(0);
    const longer = labellerFromConfig({ kind: 'length', prefer: 'longer' });
    expect(longer.compare('one two three', 'one', '', rng)).toBe('A');
    const shorter = labellerFromConfig({ kind: 'length', prefer: 'shorter' });
    expect(shorter.compare('one two three', 'one', '', rng)).toBe('B');
    const target = labellerFromConfig({ kind: 'length', prefer: 'target', targetWords: 3 });
    expect(target.score('a b c')).toBe(0);
    expect(target.score('a b c d e')).toBe(-2);
    expect(target.compare('a b c d e f', 'a b', '', rng)).toBe('B');
  });

  it('keyword: counts include and avoid words and phrases, whole words only', () => {
    const l = labellerFromConfig({ kind: 'keyword', include: ['please', 'thank you'], avoid: ['now'] });
    expect(l.score('Please, thank you, please.')).toBe(3);
    expect(l.score('Do it now! Pleased?')).toBe(-1);
    expect(l.compare('Could you please help?', 'Help me now.', '', new Rng(0))).toBe('A');
  });

  it('keyword: a punctuation-only term counts its literal occurrences (the exclamation-mark proxy)', () => {
    const bang = labellerFromConfig({ kind: 'keyword', include: ['!'] });
    expect(bang.score('Great! Really great!!!')).toBe(4);
    expect(bang.score('No marks here.')).toBe(0);
    expect(bang.compare('Fine.', 'Fine!', '', new Rng(0))).toBe('B');
    const mixed = labellerFromConfig({ kind: 'keyword', include: ['wow', '?!'], avoid: ['.'] });
    // "wow" ×2 (whole words), "?!" ×1, "." ×2 → 2 + 1 − 2.
    expect(mixed.score('Wow?! wow. wowza.')).toBe(1);
    expect(() => labellerFromConfig({ kind: 'keyword', include: ['! ?'] })).toThrow(/mixes punctuation and spaces/);
  });
});

describe('constitution labeller', () => {
  const a = 'I hate this'; // has "hate", ends without punctuation
  const b = 'It was fine fine fine fine.'; // no "hate", repeats a bigram, ends with "."

  it('the first rule that distinguishes decides: order matters', () => {
    const hateFirst = labellerFromConfig({
      kind: 'constitution',
      rules: [{ kind: 'avoid-word', word: 'hate' }, { kind: 'avoid-repetition' }],
    });
    const repetitionFirst = labellerFromConfig({
      kind: 'constitution',
      rules: [{ kind: 'avoid-repetition' }, { kind: 'avoid-word', word: 'hate' }],
    });
    expect(hateFirst.compare(a, b, '', new Rng(0))).toBe('B');
    expect(repetitionFirst.compare(a, b, '', new Rng(0))).toBe('A');
    expect(repetitionFirst.judge(a, b, '', new Rng(0)).reason).toMatch(/rule 1/);
    // score agrees with compare (lexicographic weights)
    expect(hateFirst.score(b)).toBeGreaterThan(hateFirst.score(a));
    expect(repetitionFirst.score(a)).toBeGreaterThan(repetitionFirst.score(b));
  });

  it('rules pass and fail as described', () => {
    expect(passesRule({ kind: 'max-words', n: 3 }, 'one two three')).toBe(true);
    expect(passesRule({ kind: 'max-words', n: 3 }, 'one two three four')).toBe(false);
    expect(passesRule({ kind: 'min-words', n: 2 }, 'one')).toBe(false);
    expect(passesRule({ kind: 'must-end-with-punctuation' }, 'Done."')).toBe(true);
    expect(passesRule({ kind: 'must-end-with-punctuation' }, 'Done')).toBe(false);
    expect(passesRule({ kind: 'prefer-word', word: 'please' }, 'Please do.')).toBe(true);
    expect(passesRule({ kind: 'avoid-repetition' }, 'the cat and the dog')).toBe(true);
    expect(passesRule({ kind: 'avoid-repetition' }, 'the cat and the cat')).toBe(false);
    expect(describeRule({ kind: 'max-words', n: 5 })).toBe('Use at most 5 words.');
    expect(describeRule({ kind: 'avoid-repetition', description: 'No parroting.' })).toBe('No parroting.');
  });

  it('all rules equal → tie', () => {
    const l = labellerFromConfig(defaultLabellerConfig('constitution'));
    expect(l.compare('A fine day.', 'A good day.', '', new Rng(0))).toBe('tie');
  });
});

describe('labeller configs', () => {
  it('every default config is valid and round-trips through JSON', () => {
    for (const kind of ['sentiment', 'length', 'keyword', 'constitution'] as const) {
      const c = defaultLabellerConfig(kind);
      expect(validateLabellerConfig(JSON.parse(JSON.stringify(c)))).toEqual(c);
    }
  });

  it.each([
    [null, /must be an object/],
    [{ kind: 'oracle' }, /unknown kind "oracle"/],
    [{ kind: 'sentiment', noise: 0.7 }, /noise must be a number from 0 to 0.5/],
    [{ kind: 'sentiment', positionBias: -1 }, /positionBias/],
    [{ kind: 'sentiment', polarity: 'up' }, /polarity/],
    [{ kind: 'length', prefer: 'target', targetWords: 0 }, /targetWords/],
    [{ kind: 'keyword', include: [], avoid: [] }, /at least one word/],
    [{ kind: 'keyword', include: [3] }, /include must be a list of words/],
    [{ kind: 'constitution', rules: [] }, /at least one rule/],
    [{ kind: 'constitution', rules: [{ kind: 'max-words', n: -1 }] }, /rule 1 \(max-words\) needs n/],
    [{ kind: 'constitution', rules: [{ kind: 'avoid-word' }] }, /rule 1 \(avoid-word\) needs a word/],
    [{ kind: 'constitution', rules: [{ kind: 'be-nice' }] }, /rule 1: unknown kind/],
  ])('rejects %j', (config, msg) => {
    expect(() => labellerFromConfig(config)).toThrow(LabellerConfigError);
    expect(() => labellerFromConfig(config)).toThrow(msg);
  });
});
