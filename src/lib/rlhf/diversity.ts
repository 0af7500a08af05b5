/**
 * Diversity of a set of generated texts: distinct-n and self-BLEU.
 *
 * Follows:
 *  - Li et al. 2016, "A Diversity-Promoting Objective Function for Neural Conversation Models"
 *    (distinct-1/2): distinct n-grams over all texts ÷ total n-grams over all texts.
 *  - Zhu et al. 2018, "Texygen: A Benchmarking Platform for Text Generation Models" (self-BLEU,
 *    `utils/metrics/SelfBleu.py`): each text is the hypothesis and all the *other* texts are its
 *    references; sentence BLEU with uniform weights 1/maxN; the mean over texts. Texygen calls
 *    NLTK's `sentence_bleu(..., smoothing_function=SmoothingFunction().method1)`, so we smooth as
 *    that does.
 *  - Papineni et al. 2002, "BLEU: a Method for Automatic Evaluation of Machine Translation":
 *    clipped ("modified") n-gram precision — a hypothesis n-gram counts at most as often as it
 *    occurs in any single reference — and the brevity penalty BP = 1 if c > r else exp(1 − r/c),
 *    with r the reference length closest to c (the shorter one on a tie, as NLTK).
 *  - Chen & Cherry 2014, "A Systematic Comparison of Smoothing Techniques for Sentence-Level
 *    BLEU", method 1 (NLTK `SmoothingFunction.method1`): a precision with 0 matches becomes
 *    ε / (number of hypothesis n-grams), ε = 0.1, the count floored at 1. As in NLTK, a
 *    hypothesis with no unigram match at all scores 0.
 *
 * Tokenisation: whitespace. A text is split on runs of whitespace (`/\s+/`), empty pieces
 * dropped; case and punctuation are kept as they are ("great." and "great" are different tokens).
 * This is not NLTK's `word_tokenize`, so absolute numbers differ a little from Texygen's; the
 * trends (lower self-BLEU = more diverse) are what the charts show.
 *
 * Ranges: distinct-n in [0, 1] (0 when there is no n-gram at all); self-BLEU in [0, 1], NaN
 * for fewer than two texts (no references), higher = the texts are more alike.
 */

/** Whitespace tokens of a text (see the header). */
export function wordTokens(text: string): string[] {
  return text.split(/\s+/).filter((t) => t.length > 0);
}

/** Counts of the n-grams of a token list; keys join tokens with a space (tokens hold none). */
function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join(' ');
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

function checkN(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${what}: n must be a whole number ≥ 1, got ${n}`);
}

/**
 * distinct-n: distinct n-grams across all texts ÷ all n-grams across all texts
 * (0 when the texts hold no n-gram).
 */
export function distinctN(texts: readonly string[], n: number): number {
  checkN(n, 'distinctN');
  const seen = new Set<string>();
  let total = 0;
  for (const text of texts) {
    const toks = wordTokens(text);
    for (let i = 0; i + n <= toks.length; i++) {
      seen.add(toks.slice(i, i + n).join(' '));
      total++;
    }
  }
  return total === 0 ? 0 : seen.size / total;
}

/** The ε of Chen & Cherry's smoothing method 1 (NLTK's default). */
export const BLEU_SMOOTHING_EPSILON = 0.1;

/**
 * Sentence BLEU of tokenised `hypothesis` against tokenised `references`, uniform weights
 * 1/maxN over n = 1..maxN, smoothing method 1 (see the header).
 */
export function sentenceBleu(
  hypothesis: readonly string[],
  references: readonly (readonly string[])[],
  maxN = 4,
): number {
  checkN(maxN, 'sentenceBleu');
  if (references.length === 0) throw new RangeError('sentenceBleu: at least one reference is needed');
  const c = hypothesis.length;
  let logSum = 0;
  for (let n = 1; n <= maxN; n++) {
    const hyp = ngramCounts(hypothesis, n);
    // Most times each n-gram occurs in any one reference.
    const maxRef = new Map<string, number>();
    for (const ref of references) {
      for (const [g, k] of ngramCounts(ref, n)) if (hyp.has(g) && k > (maxRef.get(g) ?? 0)) maxRef.set(g, k);
    }
    let matches = 0;
    let total = 0;
    for (const [g, k] of hyp) {
      matches += Math.min(k, maxRef.get(g) ?? 0);
      total += k;
    }
    if (n === 1 && matches === 0) return 0;
    const p = matches === 0 ? BLEU_SMOOTHING_EPSILON / Math.max(1, total) : matches / Math.max(1, total);
    logSum += Math.log(p) / maxN;
  }
  // Closest reference length; on a tie the shorter.
  let r = references[0].length;
  for (const ref of references) {
    const d = Math.abs(ref.length - c);
    const best = Math.abs(r - c);
    if (d < best || (d === best && ref.length < r)) r = ref.length;
  }
  const bp = c > r ? 1 : c === 0 ? 0 : Math.exp(1 - r / c);
  return bp * Math.exp(logSum);
}

/**
 * Self-BLEU (Texygen): the mean over texts of the BLEU of each text against all the others.
 * NaN for fewer than two texts.
 */
export function selfBleu(texts: readonly string[], maxN = 4): number {
  checkN(maxN, 'selfBleu');
  if (texts.length < 2) return NaN;
  const toks = texts.map(wordTokens);
  let sum = 0;
  for (let i = 0; i < toks.length; i++) {
    sum += sentenceBleu(
      toks[i],
      toks.filter((_, j) => j !== i),
      maxN,
    );
  }
  return sum / toks.length;
}

/** The metrics the evaluation step reports, under their logged names. */
export interface DiversityMetrics {
  'eval/distinct_1': number;
  'eval/distinct_2': number;
  'eval/distinct_3': number;
  'eval/self_bleu': number;
}

/** distinct-1/2/3 and self-BLEU-4 of a set of samples (self-BLEU left out when NaN). */
export function diversityMetrics(texts: readonly string[]): Partial<DiversityMetrics> {
  const m: Partial<DiversityMetrics> = {
    'eval/distinct_1': distinctN(texts, 1),
    'eval/distinct_2': distinctN(texts, 2),
    'eval/distinct_3': distinctN(texts, 3),
  };
  const sb = selfBleu(texts, 4);
  if (Number.isFinite(sb)) m['eval/self_bleu'] = sb;
  return m;
}
