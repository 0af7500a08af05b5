/**
 * Every rollout kept (issue 20, item 2): one record per training iteration with its prompts,
 * completions, the reward of each source (and the gold score where there is one) and, per
 * response token, the log-prob under the policy and the reference, the KL estimate, the
 * advantage and the policy's entropy.
 *
 * Records are compact: the per-token numbers of all rows of an iteration are flat
 * `Float32Array`s (row b's tokens at `offsets[b] … offsets[b+1]`) and the token strings are one
 * joined string with cumulative end offsets, so an iteration is a handful of arrays, never an
 * object per token (structured clone and IndexedDB handle typed arrays as raw bytes).
 *
 * The JSONL export writes one completion per line with the names TRL's logs and OpenRLHF's
 * rollout dumps use where they exist (`prompt`, `completion`, `reward`, `kl`, `advantages`);
 * browsing completions per step is what TRL #2045 / PR #6568 asked for.
 */
import { settingsTable } from '../settings/table';

export type RolloutAlgo = 'ppo' | 'grpo' | 'rloo';

/** Per-token arrays of an iteration's rows, flat: row b's tokens are [offsets[b], offsets[b+1]). */
export interface RolloutTokens {
  /** [B + 1] token offsets of the rows. */
  offsets: Uint32Array;
  /** Every token's text, joined; token k is `text.slice(ends[k-1] ?? 0, ends[k])`. */
  text: string;
  /** [N] cumulative end (in UTF-16 units of `text`) of each token. */
  ends: Uint32Array;
  /** [N] log π(y_t) of the rollout policy (at the sampling temperature). */
  logprob: Float32Array;
  /** [N] log π_ref(y_t). */
  refLogprob: Float32Array;
  /** [N] the trainer's per-token KL estimate (k1 or k3). */
  kl: Float32Array;
  /** [N] whitened advantage (PPO: GAE per token; GRPO/RLOO: the sequence's advantage). */
  advantage: Float32Array;
  /** [N] entropy (nats) of the policy's next-token distribution at this position. */
  entropy: Float32Array;
}

/** One reward source's score of every row (a weighted sum's parts, or the one source). */
export interface RolloutSource {
  name: string;
  scores: Float32Array;
}

/** One iteration's rollouts: a row of the `rollouts` store, key [runId, iteration]. */
export interface RolloutLog {
  version: 1;
  runId: string;
  /** Iterations completed after this one's update (1 for the first), as the charts' step. */
  iteration: number;
  algo: RolloutAlgo;
  createdAt: number;
  /** Approximate size in bytes (`rolloutBytes`), summed by the size cap. */
  bytes: number;
  prompts: string[];
  completions: string[];
  /** [B] 1 when the completion ended with the end-of-text token. */
  finished: Uint8Array;
  /** [B] the reward the trainer used (after the missing-EOS penalty). */
  reward: Float32Array;
  sources: RolloutSource[];
  /** [B] the noise-free gold labeller's score, when the run has one. */
  gold: Float32Array | null;
  /** [B] KL to the reference summed over the row's tokens (nats). */
  klSum: Float32Array;
  /** [B] GRPO / RLOO: the group of each row (rows of a prompt share one). */
  group?: Int32Array;
  /** [B] GRPO / RLOO: the sequence advantage. */
  rowAdvantage?: Float32Array;
  tokens: RolloutTokens | null;
}

/** Settings of the rollout history (one table, as every setting; kept in the `settings` store). */
export interface RolloutSettings {
  keep: boolean;
  capMb: number;
}

export const ROLLOUT_SETTINGS = settingsTable<RolloutSettings>(
  {
    keep: {
      kind: 'boolean',
      default: true,
      url: false,
      help: "Keep every iteration's rollouts in this browser (prompts, completions, rewards, per-token numbers).",
    },
    capMb: {
      kind: 'number',
      min: 1,
      max: 4096,
      default: 50,
      url: false,
      label: 'size cap (MB)',
      help: 'Most space the rollout history may take, over all runs; the oldest iterations are dropped first.',
    },
  },
  { what: 'Rollout history', urlPrefix: 'rollouts' },
);

/** Key of the settings row. */
export const ROLLOUT_SETTINGS_KEY = 'rolloutHistory';

/** Approximate stored size: typed arrays' bytes, 2 bytes per string character, a little per value. */
export function rolloutBytes(log: Omit<RolloutLog, 'bytes'>): number {
  const str = (s: string) => 16 + 2 * s.length;
  let n = 128 + str(log.runId);
  for (const s of log.prompts) n += str(s);
  for (const s of log.completions) n += str(s);
  const arrays: (ArrayBufferView | null | undefined)[] = [
    log.finished,
    log.reward,
    log.gold,
    log.klSum,
    log.group,
    log.rowAdvantage,
  ];
  for (const src of log.sources) {
    n += str(src.name);
    arrays.push(src.scores);
  }
  const t = log.tokens;
  if (t) {
    n += str(t.text);
    arrays.push(t.offsets, t.ends, t.logprob, t.refLogprob, t.kl, t.advantage, t.entropy);
  }
  for (const a of arrays) if (a) n += 16 + a.byteLength;
  return n;
}

/** A log with its `bytes` filled in. */
export function withBytes(log: Omit<RolloutLog, 'bytes'>): RolloutLog {
  return { ...log, bytes: rolloutBytes(log) };
}

/** What the engine sends for one PPO iteration (plain arrays; `buildPpoLog` packs them). */
export interface PpoRolloutRows {
  prompts: string[];
  completions: string[];
  finished: boolean[];
  reward: number[];
  sources: { name: string; scores: number[] }[];
  gold: number[] | null;
  /** Per row, per token. */
  tokens: string[][];
  logprob: number[][];
  refLogprob: number[][];
  kl: number[][];
  advantage: number[][];
  entropy: number[][];
}

/** Pack per-row arrays into a compact log (flat typed arrays, one joined token string). */
export function packRolloutLog(
  runId: string,
  iteration: number,
  algo: RolloutAlgo,
  r: PpoRolloutRows,
  extra: { group?: number[]; rowAdvantage?: number[]; createdAt?: number } = {},
): RolloutLog {
  const B = r.prompts.length;
  const offsets = new Uint32Array(B + 1);
  for (let b = 0; b < B; b++) offsets[b + 1] = offsets[b] + (r.tokens[b]?.length ?? 0);
  const N = offsets[B];
  const flat = (rows: number[][]) => {
    const out = new Float32Array(N);
    for (let b = 0; b < B; b++) out.set(rows[b].slice(0, offsets[b + 1] - offsets[b]), offsets[b]);
    return out;
  };
  const ends = new Uint32Array(N);
  let text = '';
  let k = 0;
  for (let b = 0; b < B; b++)
    for (const tok of r.tokens[b] ?? []) {
      text += tok;
      ends[k++] = text.length;
    }
  const kl = flat(r.kl);
  const klSum = new Float32Array(B);
  for (let b = 0; b < B; b++) for (let i = offsets[b]; i < offsets[b + 1]; i++) klSum[b] += kl[i];
  return withBytes({
    version: 1,
    runId,
    iteration,
    algo,
    createdAt: extra.createdAt ?? Date.now(),
    prompts: [...r.prompts],
    completions: [...r.completions],
    finished: Uint8Array.from(r.finished, (f) => (f ? 1 : 0)),
    reward: Float32Array.from(r.reward),
    sources: r.sources.map((s) => ({ name: s.name, scores: Float32Array.from(s.scores) })),
    gold: r.gold ? Float32Array.from(r.gold) : null,
    klSum,
    ...(extra.group ? { group: Int32Array.from(extra.group) } : {}),
    ...(extra.rowAdvantage ? { rowAdvantage: Float32Array.from(extra.rowAdvantage) } : {}),
    tokens: N
      ? {
          offsets,
          text,
          ends,
          logprob: flat(r.logprob),
          refLogprob: flat(r.refLogprob),
          kl,
          advantage: flat(r.advantage),
          entropy: flat(r.entropy),
        }
      : null,
  });
}

/** The rows of a GRPO / RLOO iteration (no per-token numbers; the group and its advantage per row). */
export function packGroupLog(
  runId: string,
  iteration: number,
  algo: 'grpo' | 'rloo',
  r: {
    prompts: string[];
    completions: string[];
    finished: boolean[];
    reward: number[];
    sources: { name: string; scores: number[] }[];
    groupSize: number;
    advantages: number[];
    klPerSequence: number[] | null;
  },
): RolloutLog {
  const B = r.prompts.length;
  return withBytes({
    version: 1,
    runId,
    iteration,
    algo,
    createdAt: Date.now(),
    prompts: [...r.prompts],
    completions: [...r.completions],
    finished: Uint8Array.from(r.finished, (f) => (f ? 1 : 0)),
    reward: Float32Array.from(r.reward),
    sources: r.sources.map((s) => ({ name: s.name, scores: Float32Array.from(s.scores) })),
    gold: null,
    klSum: r.klPerSequence ? Float32Array.from(r.klPerSequence) : new Float32Array(B),
    group: Int32Array.from({ length: B }, (_, i) => Math.floor(i / Math.max(1, r.groupSize))),
    rowAdvantage: Float32Array.from(r.advantages),
    tokens: null,
  });
}

// ------------------------------------------------------------------------------ reading

/** A row of an iteration, for lists (numbers only; per-token data stays in the log). */
export interface RolloutRow {
  index: number;
  prompt: string;
  completion: string;
  reward: number;
  gold: number | null;
  kl: number;
  finished: boolean;
  tokenCount: number;
  /** Lower-cased prompt + completion, for search. */
  haystack: string;
}

export function rolloutRows(log: RolloutLog): RolloutRow[] {
  return log.prompts.map((prompt, i) => ({
    index: i,
    prompt,
    completion: log.completions[i],
    reward: log.reward[i],
    gold: log.gold ? log.gold[i] : null,
    kl: log.klSum[i],
    finished: log.finished[i] === 1,
    tokenCount: log.tokens ? log.tokens.offsets[i + 1] - log.tokens.offsets[i] : 0,
    haystack: `${prompt}\n${log.completions[i]}`.toLowerCase(),
  }));
}

export type RolloutSort = 'order' | 'reward-desc' | 'reward-asc' | 'kl-desc' | 'kl-asc';

/** Rows containing `search` (case-insensitive, prompt or completion), sorted. */
export function filterRows(rows: readonly RolloutRow[], search: string, sort: RolloutSort): RolloutRow[] {
  const needle = search.trim().toLowerCase();
  const out = needle ? rows.filter((r) => r.haystack.includes(needle)) : [...rows];
  const by = (f: (r: RolloutRow) => number, dir: 1 | -1) =>
    out.sort((a, b) => dir * ((f(a) || 0) - (f(b) || 0)) || a.index - b.index);
  if (sort === 'reward-desc') by((r) => r.reward, -1);
  else if (sort === 'reward-asc') by((r) => r.reward, 1);
  else if (sort === 'kl-desc') by((r) => r.kl, -1);
  else if (sort === 'kl-asc') by((r) => r.kl, 1);
  return out;
}

/** One row's per-token data, for the heatmap. */
export interface RowTokens {
  tokens: string[];
  logprob: Float32Array;
  refLogprob: Float32Array;
  kl: Float32Array;
  advantage: Float32Array;
  entropy: Float32Array;
}

export function rowTokens(log: RolloutLog, row: number): RowTokens | null {
  const t = log.tokens;
  if (!t || row < 0 || row >= log.prompts.length) return null;
  const a = t.offsets[row];
  const b = t.offsets[row + 1];
  const tokens: string[] = [];
  for (let k = a; k < b; k++) tokens.push(t.text.slice(k === 0 ? 0 : t.ends[k - 1], t.ends[k]));
  return {
    tokens,
    logprob: t.logprob.subarray(a, b),
    refLogprob: t.refLogprob.subarray(a, b),
    kl: t.kl.subarray(a, b),
    advantage: t.advantage.subarray(a, b),
    entropy: t.entropy.subarray(a, b),
  };
}

const round = (x: number) => (Number.isFinite(x) ? Math.round(x * 1e5) / 1e5 : null);
const list = (a: ArrayLike<number>) => Array.from(a, round);

/** JSONL lines of an iteration: one completion per line (numbers rounded to 5 decimals; NaN → null). */
export function rolloutJsonl(log: RolloutLog): string[] {
  return log.prompts.map((prompt, i) => {
    const t = rowTokens(log, i);
    const line: Record<string, unknown> = {
      run_id: log.runId,
      algo: log.algo,
      iteration: log.iteration,
      index: i,
      prompt,
      completion: log.completions[i],
      finished: log.finished[i] === 1,
      reward: round(log.reward[i]),
      rewards: Object.fromEntries(log.sources.map((s) => [s.name, round(s.scores[i])])),
      gold: log.gold ? round(log.gold[i]) : null,
      kl: round(log.klSum[i]),
    };
    if (log.group) line.group = log.group[i];
    if (log.rowAdvantage) line.advantage = round(log.rowAdvantage[i]);
    if (t) {
      line.tokens = t.tokens;
      line.logprobs = list(t.logprob);
      line.ref_logprobs = list(t.refLogprob);
      line.kl_per_token = list(t.kl);
      line.advantages = list(t.advantage);
      line.entropy = list(t.entropy);
    }
    return JSON.stringify(line);
  });
}

/** Why `x` (read back from storage) is not a usable log, or null. */
export function rolloutLogProblem(x: unknown): string | null {
  const r = x as Partial<RolloutLog> | null;
  if (!r || typeof r !== 'object') return 'not an object';
  if (r.version !== 1) return `unknown version ${String(r.version)}`;
  if (!Array.isArray(r.prompts) || !Array.isArray(r.completions) || r.prompts.length !== r.completions.length)
    return 'prompts and completions do not match';
  const B = r.prompts.length;
  if (!(r.reward instanceof Float32Array) || r.reward.length !== B) return 'rewards missing';
  if (!(r.klSum instanceof Float32Array) || r.klSum.length !== B) return 'KL missing';
  if (!(r.finished instanceof Uint8Array) || r.finished.length !== B) return 'finished flags missing';
  const t = r.tokens;
  if (t) {
    if (!(t.offsets instanceof Uint32Array) || t.offsets.length !== B + 1) return 'token offsets missing';
    const N = t.offsets[B];
    for (const k of ['ends', 'logprob', 'refLogprob', 'kl', 'advantage', 'entropy'] as const)
      if ((t[k] as ArrayLike<number> | undefined)?.length !== N) return `per-token ${k} missing`;
  }
  return null;
}
