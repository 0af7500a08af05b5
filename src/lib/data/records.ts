/**
 * Feedback records: what the feedback studio saves, what the reward model and
 * DPO train on, and what the exporters write.
 *
 * One `PreferenceRecord` is one act of feedback on one prompt, in one of four
 * modes (as in InstructGPT, Ouyang et al. 2022, §3.4 and Appendix B, and the
 * Anthropic HH collection, Bai et al. 2022):
 *
 * | mode     | responses | label                                        | pairs (`toPairs`)               |
 * | -------- | --------- | -------------------------------------------- | ------------------------------- |
 * | pairwise | 2         | 'A' \| 'B' \| 'tie' \| 'both-bad' \| 'skip'  | A or B → 1; tie/both-bad/skip → 0 |
 * | ranking  | 3–6 (K)   | `{ order }`, indices best first              | all C(K,2)                      |
 * | rating   | 1–6       | `{ ratings (1–7), flags }` per response      | each pair with different ratings, margin = difference |
 * | edit     | 1         | `{ edited, editedTokenIds }`                 | edited ≻ original (if different)|
 *
 * Ties, "both bad" and skips give no pair: Bradley–Terry on a tie has no
 * direction, and "both bad" says nothing about which is better (the unpaired
 * KTO export uses it, see `jsonl.ts`). They are kept in storage so the counts,
 * the agreement statistics and the native export still see them.
 *
 * Plain data only (JSON-safe, structured-clone-safe): no classes, no Dates
 * (times are milliseconds since the epoch), no `undefined` values in optional
 * fields (leave them out), so a record round-trips through IndexedDB, Comlink
 * and the native JSONL export unchanged.
 */

import { validateLabellerConfig, type LabellerConfig } from '../rlhf/labellers';

/** Version of the record layout. Bump it, and add a migration, when a field changes meaning. */
export const SCHEMA_VERSION = 1;

export const FEEDBACK_MODES = ['pairwise', 'ranking', 'rating', 'edit'] as const;
export type FeedbackMode = (typeof FEEDBACK_MODES)[number];

export const PAIRWISE_LABELS = ['A', 'B', 'tie', 'both-bad', 'skip'] as const;
export type PairwiseLabel = (typeof PAIRWISE_LABELS)[number];

/** Ranking mode accepts this many responses. */
export const RANKING_MIN = 3;
export const RANKING_MAX = 6;
/** Rating scale (Likert 1–7, as in InstructGPT's labelling interface). */
export const RATING_MIN = 1;
export const RATING_MAX = 7;
/** Rating mode accepts this many responses. */
export const RATING_MAX_RESPONSES = 6;

/** One sampled response: its text and the token ids the model produced (empty when imported as text only). */
export interface ResponseSample {
  text: string;
  tokenIds: number[];
  /** The settings this response was sampled with, when they differ from the record's (arena). */
  sampling?: SamplingSettings;
  seed?: number;
}

export interface SamplingSettings {
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  maxNewTokens: number;
}

export type Annotator =
  | { name: string; kind: 'human' }
  | {
      name: string;
      kind: 'labeller';
      /** The scripted labeller's full config, noise and bias included, so the label can be reproduced. */
      labeller: LabellerConfig;
    };

export interface RatingFlags {
  offTopic: boolean;
  repetitive: boolean;
  offensive: boolean;
}

export interface RankingLabel {
  /** Response indices, best first; a permutation of 0..K-1. */
  order: number[];
}

export interface RatingLabel {
  /** One rating per response, `RATING_MIN`..`RATING_MAX` (integers). */
  ratings: number[];
  /** One set of flags per response. Flags do not change the pairs; the unpaired export counts a flagged response as bad. */
  flags: RatingFlags[];
}

export interface EditLabel {
  /** The user's edit of `responses[0]` (the original). */
  edited: string;
  /** Token ids of `edited` (empty if not tokenised yet). */
  editedTokenIds: number[];
}

interface RecordBase {
  /** Unique id (a UUID for records made in the app). */
  id: string;
  schemaVersion: number;
  prompt: string;
  responses: ResponseSample[];
  modelId: string;
  checkpointId: string;
  sampling: SamplingSettings;
  seed: number;
  annotator: Annotator;
  /** Milliseconds since the epoch. */
  createdAt: number;
  updatedAt: number;
}

export type PairwiseRecord = RecordBase & { mode: 'pairwise'; label: PairwiseLabel };
export type RankingRecord = RecordBase & { mode: 'ranking'; label: RankingLabel };
export type RatingRecord = RecordBase & { mode: 'rating'; label: RatingLabel };
export type EditRecord = RecordBase & { mode: 'edit'; label: EditLabel };

export type PreferenceRecord = PairwiseRecord | RankingRecord | RatingRecord | EditRecord;

export type DemonstrationSource = 'written' | 'edit' | 'import';

/** A prompt with a good completion, for SFT. */
export interface Demonstration {
  id: string;
  prompt: string;
  completion: string;
  source: DemonstrationSource;
  /** The edit record it came from, for `source: 'edit'`. */
  recordId?: string;
  createdAt: number;
}

/** One Bradley–Terry / DPO training pair. `margin` only where the feedback gives a strength (ratings). */
export interface TrainingPair {
  prompt: string;
  chosen: string;
  rejected: string;
  margin?: number;
}

export class InvalidRecordError extends Error {
  override name = 'InvalidRecordError';
}

/** A fresh id. `crypto.randomUUID` exists in browsers (secure contexts), workers and Node ≥ 19. */
export function newId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  // Fallback for insecure contexts (plain http on a LAN address): unique enough for local records.
  return `r-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

/**
 * The order trainers read records in: oldest first, records saved together (one batch of a
 * scripted labeller shares its `createdAt`) by their content, then id. Ids are random and the
 * store returns records in id order, so without this two fresh profiles that saved the same
 * labels would train on them in different orders (another split, other batches).
 */
export function compareRecords(a: PreferenceRecord, b: PreferenceRecord): number {
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt;
  const key = (r: PreferenceRecord) => JSON.stringify([r.prompt, r.responses.map((x) => x.text), r.mode, r.label]);
  const ka = key(a);
  const kb = key(b);
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

// ---------------------------------------------------------------------------
// Pairs

/**
 * Training pairs from one record (see the table at the top). Pairs whose two
 * texts are identical are dropped: they carry no signal and would only add
 * `log 2` to the loss. Order is deterministic: ranking pairs go (best, 2nd),
 * (best, 3rd), …, (2nd, 3rd), …; rating pairs go by response index i < j.
 */
export function toPairs(record: PreferenceRecord): TrainingPair[] {
  const { prompt, responses } = record;
  const out: TrainingPair[] = [];
  const push = (chosen: string, rejected: string, margin?: number) => {
    if (chosen === rejected) return;
    out.push(margin === undefined ? { prompt, chosen, rejected } : { prompt, chosen, rejected, margin });
  };
  switch (record.mode) {
    case 'pairwise':
      if (record.label === 'A') push(responses[0].text, responses[1].text);
      else if (record.label === 'B') push(responses[1].text, responses[0].text);
      break;
    case 'ranking': {
      const order = record.label.order;
      for (let i = 0; i < order.length; i++) {
        for (let j = i + 1; j < order.length; j++) push(responses[order[i]].text, responses[order[j]].text);
      }
      break;
    }
    case 'rating': {
      const r = record.label.ratings;
      for (let i = 0; i < r.length; i++) {
        for (let j = i + 1; j < r.length; j++) {
          if (r[i] > r[j]) push(responses[i].text, responses[j].text, r[i] - r[j]);
          else if (r[j] > r[i]) push(responses[j].text, responses[i].text, r[j] - r[i]);
        }
      }
      break;
    }
    case 'edit':
      push(record.label.edited, responses[0].text);
      break;
  }
  return out;
}

/** All pairs of many records, in record order. */
export function recordsToPairs(records: readonly PreferenceRecord[]): TrainingPair[] {
  return records.flatMap(toPairs);
}

/** The demonstration an edit record yields (the edited text is a good completion), or null for other modes. */
export function toDemonstration(record: PreferenceRecord): Demonstration | null {
  if (record.mode !== 'edit') return null;
  return {
    id: `demo-${record.id}`,
    prompt: record.prompt,
    completion: record.label.edited,
    source: 'edit',
    recordId: record.id,
    createdAt: record.createdAt,
  };
}

// ---------------------------------------------------------------------------
// Validation

type Obj = Record<string, unknown>;

function fail(path: string, msg: string): never {
  throw new InvalidRecordError(`${path}: ${msg}`);
}
function obj(x: unknown, path: string): Obj {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) fail(path, 'must be an object');
  return x as Obj;
}
function str(x: unknown, path: string, nonEmpty = false): string {
  if (typeof x !== 'string') fail(path, 'must be a string');
  if (nonEmpty && x.trim() === '') fail(path, 'must not be empty');
  return x;
}
function num(x: unknown, path: string, opts: { int?: boolean; min?: number; max?: number } = {}): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) fail(path, 'must be a finite number');
  if (opts.int && !Number.isInteger(x)) fail(path, 'must be an integer');
  if (opts.min !== undefined && x < opts.min) fail(path, `must be ≥ ${opts.min}`);
  if (opts.max !== undefined && x > opts.max) fail(path, `must be ≤ ${opts.max}`);
  return x;
}
function bool(x: unknown, path: string): boolean {
  if (typeof x !== 'boolean') fail(path, 'must be true or false');
  return x;
}
function arr(x: unknown, path: string): unknown[] {
  if (!Array.isArray(x)) fail(path, 'must be an array');
  return x;
}
function tokenIds(x: unknown, path: string): number[] {
  const a = arr(x, path);
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
      fail(`${path}[${i}]`, 'must be a token id (integer ≥ 0)');
  }
  return a as number[];
}

function validateSampling(x: unknown, path: string): SamplingSettings {
  const o = obj(x, path);
  return {
    temperature: num(o.temperature, `${path}.temperature`, { min: 0 }),
    topK: num(o.topK, `${path}.topK`, { int: true, min: 0 }),
    topP: num(o.topP, `${path}.topP`, { min: 0, max: 1 }),
    maxNewTokens: num(o.maxNewTokens, `${path}.maxNewTokens`, { int: true, min: 1 }),
  };
}

function validateAnnotator(x: unknown, path: string): Annotator {
  const o = obj(x, path);
  const name = str(o.name, `${path}.name`, true);
  if (o.kind === 'human') return { name, kind: 'human' };
  if (o.kind === 'labeller') {
    try {
      return { name, kind: 'labeller', labeller: validateLabellerConfig(o.labeller) };
    } catch (e) {
      fail(`${path}.labeller`, (e as Error).message);
    }
  }
  fail(`${path}.kind`, "must be 'human' or 'labeller'");
}

function responseCountError(mode: FeedbackMode, n: number): string | null {
  switch (mode) {
    case 'pairwise':
      return n === 2 ? null : `pairwise needs exactly 2 responses, got ${n}`;
    case 'ranking':
      return n >= RANKING_MIN && n <= RANKING_MAX
        ? null
        : `ranking needs ${RANKING_MIN}–${RANKING_MAX} responses, got ${n}`;
    case 'rating':
      return n >= 1 && n <= RATING_MAX_RESPONSES ? null : `rating needs 1–${RATING_MAX_RESPONSES} responses, got ${n}`;
    case 'edit':
      return n === 1 ? null : `edit needs exactly 1 response (the original), got ${n}`;
  }
}

/**
 * Check that `x` is a well-formed `PreferenceRecord` and return it as one
 * (a fresh object with only the known fields). Throws `InvalidRecordError`
 * naming the first bad field, e.g. `label.order: must be a permutation of 0..3`.
 */
export function validateRecord(x: unknown): PreferenceRecord {
  const o = obj(x, 'record');
  const mode = o.mode;
  if (!FEEDBACK_MODES.includes(mode as FeedbackMode)) fail('mode', `must be one of ${FEEDBACK_MODES.join(', ')}`);
  const responses = arr(o.responses, 'responses').map((r, i) => {
    const ro = obj(r, `responses[${i}]`);
    const out: ResponseSample = {
      text: str(ro.text, `responses[${i}].text`),
      tokenIds: tokenIds(ro.tokenIds, `responses[${i}].tokenIds`),
    };
    if (ro.sampling !== undefined) out.sampling = validateSampling(ro.sampling, `responses[${i}].sampling`);
    if (ro.seed !== undefined) out.seed = num(ro.seed, `responses[${i}].seed`, { int: true });
    return out;
  });
  const countErr = responseCountError(mode as FeedbackMode, responses.length);
  if (countErr) fail('responses', countErr);
  const schemaVersion = num(o.schemaVersion, 'schemaVersion', { int: true, min: 1 });
  if (schemaVersion > SCHEMA_VERSION) {
    fail('schemaVersion', `is ${schemaVersion}, newer than this app's ${SCHEMA_VERSION}: update the app to read it`);
  }
  const base: RecordBase = {
    id: str(o.id, 'id', true),
    schemaVersion,
    prompt: str(o.prompt, 'prompt', true),
    responses,
    modelId: str(o.modelId, 'modelId'),
    checkpointId: str(o.checkpointId, 'checkpointId'),
    sampling: validateSampling(o.sampling, 'sampling'),
    seed: num(o.seed, 'seed', { int: true }),
    annotator: validateAnnotator(o.annotator, 'annotator'),
    createdAt: num(o.createdAt, 'createdAt', { min: 0 }),
    updatedAt: num(o.updatedAt, 'updatedAt', { min: 0 }),
  };
  const K = responses.length;
  switch (mode as FeedbackMode) {
    case 'pairwise': {
      const label = o.label;
      if (!PAIRWISE_LABELS.includes(label as PairwiseLabel))
        fail('label', `must be one of ${PAIRWISE_LABELS.join(', ')}`);
      return { ...base, mode: 'pairwise', label: label as PairwiseLabel };
    }
    case 'ranking': {
      const l = obj(o.label, 'label');
      const order = arr(l.order, 'label.order').map((v, i) => num(v, `label.order[${i}]`, { int: true }));
      const sorted = [...order].sort((a, b) => a - b);
      if (sorted.length !== K || sorted.some((v, i) => v !== i)) {
        fail('label.order', `must be a permutation of 0..${K - 1}`);
      }
      return { ...base, mode: 'ranking', label: { order } };
    }
    case 'rating': {
      const l = obj(o.label, 'label');
      const ratings = arr(l.ratings, 'label.ratings').map((v, i) =>
        num(v, `label.ratings[${i}]`, { int: true, min: RATING_MIN, max: RATING_MAX }),
      );
      if (ratings.length !== K) fail('label.ratings', `needs one rating per response (${K}), got ${ratings.length}`);
      const flags = arr(l.flags, 'label.flags').map((f, i) => {
        const fo = obj(f, `label.flags[${i}]`);
        return {
          offTopic: bool(fo.offTopic, `label.flags[${i}].offTopic`),
          repetitive: bool(fo.repetitive, `label.flags[${i}].repetitive`),
          offensive: bool(fo.offensive, `label.flags[${i}].offensive`),
        };
      });
      if (flags.length !== K) fail('label.flags', `needs one entry per response (${K}), got ${flags.length}`);
      return { ...base, mode: 'rating', label: { ratings, flags } };
    }
    case 'edit': {
      const l = obj(o.label, 'label');
      return {
        ...base,
        mode: 'edit',
        label: {
          edited: str(l.edited, 'label.edited'),
          editedTokenIds: tokenIds(l.editedTokenIds, 'label.editedTokenIds'),
        },
      };
    }
  }
}

export const DEMONSTRATION_SOURCES: readonly DemonstrationSource[] = ['written', 'edit', 'import'];

/** Check that `x` is a well-formed `Demonstration`; throws `InvalidRecordError`. */
export function validateDemonstration(x: unknown): Demonstration {
  const o = obj(x, 'demonstration');
  if (!DEMONSTRATION_SOURCES.includes(o.source as DemonstrationSource)) {
    fail('source', `must be one of ${DEMONSTRATION_SOURCES.join(', ')}`);
  }
  const d: Demonstration = {
    id: str(o.id, 'id', true),
    prompt: str(o.prompt, 'prompt', true),
    completion: str(o.completion, 'completion', true),
    source: o.source as DemonstrationSource,
    createdAt: num(o.createdAt, 'createdAt', { min: 0 }),
  };
  if (o.recordId !== undefined) d.recordId = str(o.recordId, 'recordId', true);
  return d;
}

/** Defaults for building a record in the studio; spread and override. */
export interface NewRecordInput {
  prompt: string;
  responses: ResponseSample[];
  modelId: string;
  checkpointId: string;
  sampling: SamplingSettings;
  seed: number;
  annotator: Annotator;
}

/** Build a validated record with a fresh id and timestamps. */
export function makeRecord<M extends FeedbackMode>(
  input: NewRecordInput,
  mode: M,
  label: Extract<PreferenceRecord, { mode: M }>['label'],
  now = Date.now(),
): Extract<PreferenceRecord, { mode: M }> {
  const rec = { id: newId(), schemaVersion: SCHEMA_VERSION, ...input, mode, label, createdAt: now, updatedAt: now };
  return validateRecord(rec) as Extract<PreferenceRecord, { mode: M }>;
}
