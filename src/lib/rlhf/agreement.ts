/**
 * Inter-annotator agreement: raw agreement and Cohen's κ (Cohen 1960) between
 * two annotators on the comparisons both of them judged.
 *
 * A "comparison" is a prompt and an unordered pair of response texts. Every
 * record yields comparisons:
 * - pairwise: its one pair, with its label ('skip' yields nothing);
 * - ranking: every pair of its K responses (the higher-ranked wins);
 * - rating: every pair (higher rating wins, equal ratings → 'tie');
 * - edit: nothing (an edit is not a judgement between two given texts).
 * The pair is put in a canonical order (texts sorted), and 'A'/'B' are
 * re-expressed in that order, so the two annotators may have seen the
 * responses in different positions. If one annotator judged the same
 * comparison twice, the most recently updated judgement counts.
 *
 * κ = (pₒ − pₑ) / (1 − pₑ), with pₒ the observed agreement and pₑ the agreement
 * expected by chance from each annotator's label frequencies. When pₑ = 1 (both
 * annotators used one and the same label for everything) κ is 0/0: we return
 * `kappa: null` and say why.
 */

import type { PreferenceRecord } from '../data/records';

/** Categories in canonical order: 'first' = the response whose text sorts first won. */
export const AGREEMENT_CATEGORIES = ['first', 'second', 'tie', 'both-bad'] as const;
export type AgreementCategory = (typeof AGREEMENT_CATEGORIES)[number];

export interface Comparison {
  /** prompt + the two texts in canonical order. */
  key: string;
  category: AgreementCategory;
  updatedAt: number;
}

export interface AgreementResult {
  /** Number of shared comparisons. */
  n: number;
  /** pₒ, or null when n = 0. */
  rawAgreement: number | null;
  /** pₑ, or null when n = 0. */
  expectedAgreement: number | null;
  /** Cohen's κ, or null when undefined (n = 0, or pₑ = 1). */
  kappa: number | null;
  categories: readonly AgreementCategory[];
  /** confusion[i][j] = comparisons annotator 1 put in category i and annotator 2 in category j. */
  confusion: number[][];
  /** Why κ (or everything) is null, for the UI. */
  note?: string;
}

function key(prompt: string, a: string, b: string): string {
  return JSON.stringify([prompt, a, b]);
}

/** The comparisons one record contributes (see the header). */
export function comparisonsOf(record: PreferenceRecord): Comparison[] {
  const { prompt, responses, updatedAt } = record;
  const out: Comparison[] = [];
  /** `winner`: index of the better response, or 'tie' / 'both-bad'. */
  const add = (i: number, j: number, winner: number | 'tie' | 'both-bad') => {
    const ti = responses[i].text;
    const tj = responses[j].text;
    if (ti === tj) return;
    const [first, second] = ti < tj ? [i, j] : [j, i];
    const category: AgreementCategory =
      winner === 'tie' || winner === 'both-bad' ? winner : winner === first ? 'first' : 'second';
    out.push({ key: key(prompt, responses[first].text, responses[second].text), category, updatedAt });
  };
  switch (record.mode) {
    case 'pairwise':
      if (record.label === 'A') add(0, 1, 0);
      else if (record.label === 'B') add(0, 1, 1);
      else if (record.label === 'tie' || record.label === 'both-bad') add(0, 1, record.label);
      break;
    case 'ranking': {
      const rank = new Map(record.label.order.map((idx, pos) => [idx, pos]));
      for (let i = 0; i < responses.length; i++) {
        for (let j = i + 1; j < responses.length; j++) add(i, j, rank.get(i)! < rank.get(j)! ? i : j);
      }
      break;
    }
    case 'rating': {
      const r = record.label.ratings;
      for (let i = 0; i < r.length; i++) {
        for (let j = i + 1; j < r.length; j++) add(i, j, r[i] === r[j] ? 'tie' : r[i] > r[j] ? i : j);
      }
      break;
    }
    case 'edit':
      break;
  }
  return out;
}

function latestByKey(records: readonly PreferenceRecord[]): Map<string, Comparison> {
  const m = new Map<string, Comparison>();
  for (const r of records) {
    for (const c of comparisonsOf(r)) {
      const old = m.get(c.key);
      if (!old || c.updatedAt >= old.updatedAt) m.set(c.key, c);
    }
  }
  return m;
}

/** Cohen's κ and raw agreement from a square confusion matrix. */
export function kappaFromConfusion(confusion: readonly (readonly number[])[]): {
  n: number;
  rawAgreement: number | null;
  expectedAgreement: number | null;
  kappa: number | null;
} {
  const k = confusion.length;
  let n = 0;
  let diag = 0;
  const rows = new Array<number>(k).fill(0);
  const cols = new Array<number>(k).fill(0);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const v = confusion[i][j];
      n += v;
      rows[i] += v;
      cols[j] += v;
      if (i === j) diag += v;
    }
  }
  if (n === 0) return { n, rawAgreement: null, expectedAgreement: null, kappa: null };
  const po = diag / n;
  let pe = 0;
  for (let i = 0; i < k; i++) pe += (rows[i] / n) * (cols[i] / n);
  // pe can exceed 1 by rounding only when it is 1.
  const kappa = pe >= 1 - 1e-12 ? null : (po - pe) / (1 - pe);
  return { n, rawAgreement: po, expectedAgreement: pe, kappa };
}

/** Agreement between two annotators' records (each list holds one annotator's records). */
export function agreement(
  recordsA: readonly PreferenceRecord[],
  recordsB: readonly PreferenceRecord[],
): AgreementResult {
  const a = latestByKey(recordsA);
  const b = latestByKey(recordsB);
  const K = AGREEMENT_CATEGORIES.length;
  const confusion = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  for (const [k, ca] of a) {
    const cb = b.get(k);
    if (!cb) continue;
    confusion[AGREEMENT_CATEGORIES.indexOf(ca.category)][AGREEMENT_CATEGORIES.indexOf(cb.category)]++;
  }
  const stats = kappaFromConfusion(confusion);
  const result: AgreementResult = { ...stats, categories: AGREEMENT_CATEGORIES, confusion };
  if (stats.n === 0) result.note = 'The two annotators have no comparisons in common.';
  else if (stats.kappa === null) {
    result.note =
      "Both annotators gave the same single answer every time, so chance agreement is 100% and Cohen's κ is undefined.";
  }
  return result;
}

/** Agreement between two annotators (by name) within one list of records. */
export function agreementBetween(records: readonly PreferenceRecord[], nameA: string, nameB: string): AgreementResult {
  return agreement(
    records.filter((r) => r.annotator.name === nameA),
    records.filter((r) => r.annotator.name === nameB),
  );
}
