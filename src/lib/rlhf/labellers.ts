/**
 * Scripted labellers: AI feedback without an AI (RLAIF in miniature, after
 * Bai et al. 2022, "Constitutional AI", and Lee et al. 2023, "RLAIF").
 *
 * Every labeller has
 * - `score(text, prompt)`: a plain number, higher = better. PPO can use it
 *   directly as a (gold) reward function; the reward model learns to imitate it.
 * - `compare(a, b, prompt, rng)`: 'A' | 'B' | 'tie', as a noisy, biased human
 *   would answer. `judge` gives the same answer with the reasons.
 *
 * How `judge` decides (the same for every labeller):
 * 1. Scores sA, sB. If |sA − sB| > `tieMargin`, the higher one wins.
 * 2. Otherwise the labeller's secondary key decides if it differs (sentiment:
 *    fewer negative words; others have none), so the noise-free labeller rarely
 *    says 'tie' on ordinary texts.
 * 3. Still tied: **position bias** — with probability `positionBias` the answer is
 *    'A' (the left/first response), otherwise 'tie'. 0 = no bias (ties stay ties),
 *    1 = every tie becomes 'A'. It acts only on close calls, as the position bias
 *    of human and LLM judges does (Zheng et al. 2023, "Judging LLM-as-a-judge").
 * 4. **Noise**: with probability `noise` an 'A' becomes 'B' and vice versa
 *    (ties are not flipped). 0.1 = "10% label noise".
 * Each call draws exactly two numbers from `rng` (bias, then noise), whatever the
 * branch, so a seeded run stays reproducible when the settings change.
 *
 * Configs are plain JSON (`LabellerConfig`), stored in every record the
 * labeller makes, so a label can be reproduced.
 */

import Sentiment from 'sentiment';

export type Choice = 'A' | 'B' | 'tie';

/** Anything with `next()` uniform in [0, 1): `Rng` from `src/lib/model/rng.ts` fits. */
export interface UniformSource {
  next(): number;
}

interface Knobs {
  /** Flip probability for A/B answers, 0–0.5. */
  noise: number;
  /** Probability of answering 'A' on a tie, 0–1. */
  positionBias: number;
  /** Score differences up to this count as a tie, ≥ 0. */
  tieMargin: number;
}

export interface SentimentConfig extends Knobs {
  kind: 'sentiment';
  /** Which way is better. 'negative' makes a grumpy labeller. */
  polarity: 'positive' | 'negative';
  /**
   * 'total': sum of AFINN-165 word valences (−5…+5 each, negated after "not",
   * "don't", …) in the response. Integers, easy to read; grows with repetition,
   * which PPO will discover (reward hacking; the KL penalty holds it back).
   * 'comparative': total divided by the number of words in the response.
   * 'distinct': comparative × the share of distinct words in the response, so praise that
   * repeats itself ("fabulous, fabulous, fabulous") counts for less and a text that only
   * repeats scores near 0: a reader who likes positive reviews but not degenerate ones (the
   * gold of the over-optimisation experiment).
   */
  scoring: 'total' | 'comparative' | 'distinct';
}

export interface LengthConfig extends Knobs {
  kind: 'length';
  prefer: 'longer' | 'shorter' | 'target';
  /** Target number of words, for `prefer: 'target'`. */
  targetWords: number;
}

export interface KeywordConfig extends Knobs {
  kind: 'keyword';
  /**
   * Words or phrases that earn +1 per occurrence (whole words, case-insensitive). A term of
   * punctuation only (no letters or digits, e.g. "!") counts each occurrence of those characters
   * anywhere in the text: `include: ["!"]` is a proxy labeller that loves exclamation marks.
   */
  include: string[];
  /** Words or phrases that cost −1 per occurrence. */
  avoid: string[];
}

export type ConstitutionRule = (
  | { kind: 'avoid-word'; word: string }
  | { kind: 'prefer-word'; word: string }
  | { kind: 'max-words'; n: number }
  | { kind: 'min-words'; n: number }
  | { kind: 'must-end-with-punctuation' }
  | { kind: 'avoid-repetition' }
) & {
  /** Shown to the user; `describeRule` writes one when left out. */
  description?: string;
};

export interface ConstitutionConfig extends Knobs {
  kind: 'constitution';
  /** Ordered, most important first. Each rule passes or fails; the first rule that one response passes and the other fails decides. */
  rules: ConstitutionRule[];
}

export type LabellerConfig = SentimentConfig | LengthConfig | KeywordConfig | ConstitutionConfig;
export type LabellerKind = LabellerConfig['kind'];
export const LABELLER_KINDS: readonly LabellerKind[] = ['sentiment', 'length', 'keyword', 'constitution'];

export interface Judgement {
  choice: Choice;
  scoreA: number;
  scoreB: number;
  /** The answer before noise. */
  clean: Choice;
  /** Noise flipped the answer. */
  flipped: boolean;
  /** Position bias turned a tie into 'A'. */
  biased: boolean;
  /** Why, in a few words (e.g. "rule 2: avoid the word “boring”"). */
  reason: string;
}

export interface Labeller {
  readonly config: LabellerConfig;
  score(text: string, prompt?: string): number;
  compare(a: string, b: string, prompt: string, rng: UniformSource): Choice;
  judge(a: string, b: string, prompt: string, rng: UniformSource): Judgement;
}

export class LabellerConfigError extends Error {
  override name = 'LabellerConfigError';
}

// ---------------------------------------------------------------------------
// Text helpers

/** Lower-case words (letters, digits, apostrophes). */
export function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
}

/** Occurrences of a word or phrase (word sequence) in `tokens`, whole words only. */
function countPhrase(tokens: string[], phrase: string[]): number {
  if (phrase.length === 0) return 0;
  let n = 0;
  outer: for (let i = 0; i + phrase.length <= tokens.length; i++) {
    for (let j = 0; j < phrase.length; j++) if (tokens[i + j] !== phrase[j]) continue outer;
    n++;
  }
  return n;
}

// ---------------------------------------------------------------------------
// Shared decision procedure

type Scorer = (text: string, prompt: string) => number;
/** Secondary key (higher = better), consulted when the scores are within `tieMargin`. */
type Secondary = (text: string, prompt: string) => number;

function makeLabeller(
  config: LabellerConfig,
  score: Scorer,
  describe: (winner: 'A' | 'B', a: string, b: string, prompt: string, sA: number, sB: number) => string,
  secondary?: Secondary,
): Labeller {
  // `+ 0` turns −0 (e.g. −|0|) into 0, so scores print and serialise as plain numbers.
  const scoreOf = (text: string, prompt: string) => score(text, prompt) + 0;
  const judge = (a: string, b: string, prompt: string, rng: UniformSource): Judgement => {
    const uBias = rng.next();
    const uNoise = rng.next();
    const scoreA = scoreOf(a, prompt);
    const scoreB = scoreOf(b, prompt);
    let clean: Choice = 'tie';
    let reason = 'scores tie';
    if (Math.abs(scoreA - scoreB) > config.tieMargin) {
      clean = scoreA > scoreB ? 'A' : 'B';
      reason = describe(clean, a, b, prompt, scoreA, scoreB);
    } else if (secondary) {
      const ka = secondary(a, prompt);
      const kb = secondary(b, prompt);
      if (ka !== kb) {
        clean = ka > kb ? 'A' : 'B';
        reason = 'scores tie; fewer negative words';
      }
    }
    let choice = clean;
    let biased = false;
    if (clean === 'tie' && uBias < config.positionBias) {
      choice = 'A';
      biased = true;
      reason += '; position bias picked A';
    }
    let flipped = false;
    if (choice !== 'tie' && uNoise < config.noise) {
      choice = choice === 'A' ? 'B' : 'A';
      flipped = true;
      reason += '; flipped by noise';
    }
    return { choice, scoreA, scoreB, clean, flipped, biased, reason };
  };
  return {
    config,
    score: (text, prompt = '') => scoreOf(text, prompt),
    judge,
    compare: (a, b, prompt, rng) => judge(a, b, prompt, rng).choice,
  };
}

// ---------------------------------------------------------------------------
// Sentiment (AFINN-165 via the `sentiment` package)

let analyzer: Sentiment | null = null;
function afinn(text: string): Sentiment.AnalysisResult {
  analyzer ??= new Sentiment();
  return analyzer.analyze(text);
}

/**
 * Sentiment of the response alone, but with negation seen across the prompt
 * boundary ("The movie was not" + " good" counts "good" as negated): the AFINN
 * total of prompt + response minus that of the prompt.
 */
export function sentimentOf(text: string, prompt = ''): { total: number; negativeWords: number; words: number } {
  const joined = prompt ? `${prompt} ${text}` : text;
  const full = afinn(joined);
  const p = prompt ? afinn(prompt) : null;
  return {
    total: full.score - (p?.score ?? 0),
    negativeWords: full.negative.length - (p?.negative.length ?? 0),
    words: words(text).length,
  };
}

function sentimentLabeller(c: SentimentConfig): Labeller {
  const sign = c.polarity === 'positive' ? 1 : -1;
  const score: Scorer = (text, prompt) => {
    const s = sentimentOf(text, prompt);
    if (c.scoring === 'total') return sign * s.total;
    if (s.words === 0) return 0;
    const perWord = s.total / s.words;
    return sign * (c.scoring === 'distinct' ? (perWord * new Set(words(text)).size) / s.words : perWord);
  };
  // Tie-break: fewer negative words for a positive labeller (more for a negative one).
  const secondary: Secondary = (text, prompt) => -sign * sentimentOf(text, prompt).negativeWords;
  return makeLabeller(
    c,
    score,
    (w, _a, _b, _p, sA, sB) => `${w} is more ${c.polarity} (${fmt(sA)} vs ${fmt(sB)})`,
    secondary,
  );
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(3);
}

// ---------------------------------------------------------------------------
// Length

function lengthLabeller(c: LengthConfig): Labeller {
  const score: Scorer = (text) => {
    const n = words(text).length;
    if (c.prefer === 'longer') return n;
    if (c.prefer === 'shorter') return -n;
    return -Math.abs(n - c.targetWords);
  };
  const what = c.prefer === 'target' ? `closer to ${c.targetWords} words` : c.prefer;
  return makeLabeller(c, score, (w) => `${w} is ${what}`);
}

// ---------------------------------------------------------------------------
// Keyword

function keywordLabeller(c: KeywordConfig): Labeller {
  const inc = c.include.map(words);
  const avo = c.avoid.map(words);
  // Punctuation-only terms ("!", "?!") are counted as literal substrings (non-overlapping).
  const count = (text: string, t: string[], term: string, phrase: string[]) =>
    phrase.length > 0 ? countPhrase(t, phrase) : text.split(term.trim()).length - 1;
  const score: Scorer = (text) => {
    const t = words(text);
    let s = 0;
    inc.forEach((p, i) => (s += count(text, t, c.include[i], p)));
    avo.forEach((p, i) => (s -= count(text, t, c.avoid[i], p)));
    return s;
  };
  return makeLabeller(c, score, (w, _a, _b, _p, sA, sB) => `${w} has a better keyword count (${sA} vs ${sB})`);
}

// ---------------------------------------------------------------------------
// Constitution

/** A default, human-readable description of a rule. */
export function describeRule(rule: ConstitutionRule): string {
  if (rule.description) return rule.description;
  switch (rule.kind) {
    case 'avoid-word':
      return `Avoid the word “${rule.word}”.`;
    case 'prefer-word':
      return `Use the word “${rule.word}”.`;
    case 'max-words':
      return `Use at most ${rule.n} words.`;
    case 'min-words':
      return `Use at least ${rule.n} words.`;
    case 'must-end-with-punctuation':
      return 'End with a full stop, question mark or exclamation mark.';
    case 'avoid-repetition':
      return 'Do not repeat the same two words in a row twice.';
  }
}

/** Whether `text` passes one rule. */
export function passesRule(rule: ConstitutionRule, text: string): boolean {
  const t = words(text);
  switch (rule.kind) {
    case 'avoid-word':
      return countPhrase(t, words(rule.word)) === 0;
    case 'prefer-word':
      return countPhrase(t, words(rule.word)) > 0;
    case 'max-words':
      return t.length <= rule.n;
    case 'min-words':
      return t.length >= rule.n;
    case 'must-end-with-punctuation':
      return /[.!?]["')\]]*$/.test(text.trimEnd());
    case 'avoid-repetition': {
      const seen = new Set<string>();
      for (let i = 0; i + 1 < t.length; i++) {
        const bigram = `${t[i]} ${t[i + 1]}`;
        if (seen.has(bigram)) return false;
        seen.add(bigram);
      }
      return true;
    }
  }
}

function constitutionLabeller(c: ConstitutionConfig): Labeller {
  const R = c.rules.length;
  // Pass/fail bits weighted 2^(R-1-i): comparing these sums is exactly "the first
  // rule that distinguishes decides", so score() and compare() agree.
  const score: Scorer = (text) => {
    let s = 0;
    for (let i = 0; i < R; i++) if (passesRule(c.rules[i], text)) s += 2 ** (R - 1 - i);
    return s;
  };
  const describe = (w: 'A' | 'B', a: string, b: string) => {
    for (let i = 0; i < R; i++) {
      if (passesRule(c.rules[i], a) !== passesRule(c.rules[i], b)) {
        return `rule ${i + 1} decides for ${w}: ${describeRule(c.rules[i])}`;
      }
    }
    return `${w} wins`;
  };
  return makeLabeller(c, score, describe);
}

// ---------------------------------------------------------------------------
// Config: defaults, validation, construction

export const DEFAULT_KNOBS: Knobs = { noise: 0, positionBias: 0, tieMargin: 0 };

/** A sensible config of each kind, for the UI's "new labeller" menu. */
export function defaultLabellerConfig(kind: LabellerKind): LabellerConfig {
  switch (kind) {
    case 'sentiment':
      return { kind, ...DEFAULT_KNOBS, polarity: 'positive', scoring: 'total' };
    case 'length':
      return { kind, ...DEFAULT_KNOBS, prefer: 'target', targetWords: 12 };
    case 'keyword':
      return { kind, ...DEFAULT_KNOBS, include: ['please', 'thank you'], avoid: ['hate'] };
    case 'constitution':
      return {
        kind,
        ...DEFAULT_KNOBS,
        rules: [
          { kind: 'avoid-word', word: 'hate' },
          { kind: 'avoid-repetition' },
          { kind: 'must-end-with-punctuation' },
          { kind: 'max-words', n: 30 },
        ],
      };
  }
}

type Obj = Record<string, unknown>;

function bad(msg: string): never {
  throw new LabellerConfigError(`Labeller config: ${msg}`);
}

function knob(o: Obj, key: keyof Knobs, min: number, max: number): number {
  const v = o[key] ?? DEFAULT_KNOBS[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    bad(`${key} must be a number from ${min} to ${max === Infinity ? '∞' : max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function wordList(v: unknown, key: string): string[] {
  if (!Array.isArray(v) || v.some((w) => typeof w !== 'string')) bad(`${key} must be a list of words`);
  const list = (v as string[]).map((w) => w.trim()).filter((w) => w !== '');
  // A term without letters or digits is punctuation, counted literally ("!"); no spaces inside.
  for (const w of list) if (words(w).length === 0 && /\s/.test(w)) bad(`${key}: “${w}” mixes punctuation and spaces`);
  return list;
}

function validateRule(x: unknown, i: number): ConstitutionRule {
  const where = `rule ${i + 1}`;
  if (typeof x !== 'object' || x === null) bad(`${where} must be an object`);
  const r = x as Obj;
  let desc: { description?: string } = {};
  if (r.description !== undefined) {
    if (typeof r.description !== 'string') bad(`${where}: description must be text`);
    if (r.description.trim() !== '') desc = { description: r.description };
  }
  const word = () => {
    if (typeof r.word !== 'string' || words(r.word).length === 0) bad(`${where} (${r.kind}) needs a word`);
    return r.word.trim();
  };
  const n = () => {
    if (typeof r.n !== 'number' || !Number.isInteger(r.n) || r.n < 0)
      bad(`${where} (${r.kind}) needs n, a whole number ≥ 0`);
    return r.n;
  };
  switch (r.kind) {
    case 'avoid-word':
    case 'prefer-word':
      return { kind: r.kind, word: word(), ...desc };
    case 'max-words':
    case 'min-words':
      return { kind: r.kind, n: n(), ...desc };
    case 'must-end-with-punctuation':
    case 'avoid-repetition':
      return { kind: r.kind, ...desc };
    default:
      bad(
        `${where}: unknown kind ${JSON.stringify(r.kind)} (use avoid-word, prefer-word, max-words, min-words, must-end-with-punctuation, avoid-repetition)`,
      );
  }
}

/**
 * Check a config (e.g. from the UI, from storage, or from an imported file),
 * fill in missing knobs with defaults and return a clean copy. Throws
 * `LabellerConfigError` with a message that names the bad field.
 */
export function validateLabellerConfig(x: unknown): LabellerConfig {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) bad('must be an object');
  const o = x as Obj;
  const knobs: Knobs = {
    noise: knob(o, 'noise', 0, 0.5),
    positionBias: knob(o, 'positionBias', 0, 1),
    tieMargin: knob(o, 'tieMargin', 0, Infinity),
  };
  switch (o.kind) {
    case 'sentiment': {
      const polarity = o.polarity ?? 'positive';
      const scoring = o.scoring ?? 'total';
      if (polarity !== 'positive' && polarity !== 'negative') bad("polarity must be 'positive' or 'negative'");
      if (scoring !== 'total' && scoring !== 'comparative' && scoring !== 'distinct')
        bad("scoring must be 'total', 'comparative' or 'distinct'");
      return { kind: 'sentiment', ...knobs, polarity, scoring };
    }
    case 'length': {
      const prefer = o.prefer ?? 'longer';
      if (prefer !== 'longer' && prefer !== 'shorter' && prefer !== 'target') {
        bad("prefer must be 'longer', 'shorter' or 'target'");
      }
      const targetWords = o.targetWords ?? 12;
      if (typeof targetWords !== 'number' || !Number.isInteger(targetWords) || targetWords < 1) {
        bad('targetWords must be a whole number ≥ 1');
      }
      return { kind: 'length', ...knobs, prefer, targetWords };
    }
    case 'keyword': {
      const include = wordList(o.include ?? [], 'include');
      const avoid = wordList(o.avoid ?? [], 'avoid');
      if (include.length + avoid.length === 0) bad('a keyword labeller needs at least one word to include or avoid');
      return { kind: 'keyword', ...knobs, include, avoid };
    }
    case 'constitution': {
      if (!Array.isArray(o.rules)) bad('rules must be a list');
      if (o.rules.length === 0) bad('a constitution needs at least one rule');
      if (o.rules.length > 30) bad('a constitution has at most 30 rules');
      return { kind: 'constitution', ...knobs, rules: o.rules.map(validateRule) };
    }
    default:
      bad(`unknown kind ${JSON.stringify(o.kind)} (use ${LABELLER_KINDS.join(', ')})`);
  }
}

/** Build a labeller from a (validated here) config. */
export function labellerFromConfig(config: unknown): Labeller {
  const c = validateLabellerConfig(config);
  switch (c.kind) {
    case 'sentiment':
      return sentimentLabeller(c);
    case 'length':
      return lengthLabeller(c);
    case 'keyword':
      return keywordLabeller(c);
    case 'constitution':
      return constitutionLabeller(c);
  }
}
