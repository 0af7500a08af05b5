/**
 * The shapes of what the app saves in IndexedDB: run records (reward model, SFT, PPO, DPO),
 * saved PPO runs with their checkpoint, saved reward models, and model checkpoints' metadata.
 * `src/lib/storage/db.ts` types its stores with them (`RlhfDb`), so this file imports nothing
 * from storage (no import circle).
 *
 * A pretraining run (kind 'pretrain') is a `RunRecord` whose checkpoint holds the model's files
 * like an SFT run's; Adam's moments and the token streams are two more chunked values beside it
 * (`pretrainOptBlobId`, `pretrainDataBlobId`; see `src/lib/pretrain/checkpoint.ts`).
 *
 * A PPO checkpoint keeps its small fields (config, iteration, β, Adam step, RNG, prompt order,
 * history) in the run record and its tensors (policy, value model, both Adam moments) as one
 * binary value in the `chunks` store, split like SFT/DPO weights (`writeChunks` in db.ts; TabGPT
 * stores model state in 64 MB chunks because single giant values fail). `packPpoTensors` and
 * `unpackPpoTensors` turn the tensors into those bytes and back. GRPO, RLOO and online DPO runs are
 * kept the same way (`SavedGroupRun`: policy and Adam moments in chunks, `packGroupTensors`).
 */
import type {
  GroupSetup,
  GroupState,
  PpoEvalSample,
  PpoSetup,
  PpoState,
  RewardModelState,
  RewardModelSummary,
} from '../engine/types';

// ------------------------------------------------------------------------------- run records

export const RUN_RECORD_VERSION = 1;
export const RUN_KINDS = ['reward', 'sft', 'ppo', 'dpo', 'pretrain', 'grpo', 'rloo', 'online-dpo'] as const;
export type RunKind = (typeof RUN_KINDS)[number];
export const RUN_STATUSES = ['finished', 'running', 'paused', 'failed'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export interface RunMetricRow {
  step: number;
  metrics: Record<string, number>;
}

/** What a run started from: the base (loaded) model, or the weights of another run. */
export interface RunParent {
  kind: 'base' | 'run';
  id?: string;
  name: string;
}

export interface RunSample {
  prompt: string;
  text: string;
}

/** Samples on the evaluation prompts at one step, and their diversity metrics. */
export interface RunEval {
  step: number;
  samples: RunSample[];
  metrics: Record<string, number>;
}

export interface RunRecord {
  version: typeof RUN_RECORD_VERSION;
  id: string;
  kind: RunKind;
  name: string;
  createdAt: number;
  updatedAt: number;
  config: Record<string, unknown>;
  parent: RunParent;
  /** Where the weights are: a checkpoint (SFT/DPO), the PPO run itself, the reward model id; null: none. */
  checkpointId: string | null;
  history: RunMetricRow[];
  evals: RunEval[];
  status: RunStatus;
}

/** A model's files without the weights, kept beside the weight chunks. */
export interface CheckpointMeta {
  id: string;
  runId: string;
  name: string;
  config: string;
  tokenizer: string;
  card?: string;
  byteLength: number;
  createdAt: number;
}

// ------------------------------------------------------------------------------- reward models

/** A metric row of a trainer's history (reward model, PPO). */
export type MetricRow = RunMetricRow;

/** A reward model in the `rewardModels` store (its weights are small: they stay in the record). */
export interface SavedRewardModel {
  id: string;
  summary: RewardModelSummary;
  state: RewardModelState;
  history: MetricRow[];
}

// ------------------------------------------------------------------------------- PPO runs

/** Evaluation samples of a PPO run at one iteration. */
export interface EvalPoint {
  iteration: number;
  samples: PpoEvalSample[];
}

/** The tensor groups of a PPO checkpoint. */
export const PPO_TENSOR_GROUPS = ['policy', 'value', 'adamM', 'adamV'] as const;
export type PpoTensorGroup = (typeof PPO_TENSOR_GROUPS)[number];

/** A PPO state without its tensors (what the run record holds). */
export type PpoStateMeta = Omit<PpoState, PpoTensorGroup>;

/**
 * Where each tensor of a chunked checkpoint lies in its bytes (offsets in float32 elements): the
 * groups in their table's order, each group's tensors in insertion order, packed end to end.
 */
export interface TensorIndex<G extends string> {
  /** Id of the chunked value in the `chunks` store. */
  blobId: string;
  byteLength: number;
  entries: { group: G; name: string; offset: number; length: number }[];
}

/** The tensors of a checkpoint, by group. */
export type TensorGroups<G extends string> = Record<G, Record<string, Float32Array>>;

/** Tensor groups as one float32 byte array and its index (the format PPO, GRPO and RLOO runs share). */
export function packTensors<G extends string>(
  order: readonly G[],
  groups: TensorGroups<G>,
  blobId: string,
): { index: TensorIndex<G>; bytes: Uint8Array } {
  const entries: TensorIndex<G>['entries'] = [];
  let total = 0;
  for (const group of order)
    for (const [name, a] of Object.entries(groups[group])) {
      entries.push({ group, name, offset: total, length: a.length });
      total += a.length;
    }
  const all = new Float32Array(total);
  for (const e of entries) all.set(groups[e.group][e.name], e.offset);
  const bytes = new Uint8Array(all.buffer);
  return { index: { blobId, byteLength: bytes.byteLength, entries }, bytes };
}

/** The tensor groups back from their bytes; throws, naming the checkpoint (`what`), when they do not match the index. */
export function unpackTensors<G extends string>(
  order: readonly G[],
  index: TensorIndex<G>,
  bytes: Uint8Array,
  what: string,
): TensorGroups<G> {
  if (bytes.byteLength !== index.byteLength || bytes.byteLength % 4 !== 0)
    throw new RangeError(`${what} checkpoint: ${bytes.byteLength} bytes where ${index.byteLength} were saved`);
  // Copy into an aligned buffer (a view on chunk bytes may start at any offset).
  const all = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(all.buffer).set(bytes);
  const groups: Record<string, Record<string, Float32Array>> = Object.fromEntries(order.map((g) => [g, {}]));
  for (const e of index.entries) {
    if (!order.includes(e.group) || e.offset < 0 || e.offset + e.length > all.length)
      throw new RangeError(`${what} checkpoint: tensor ${e.group}/${e.name} lies outside the saved bytes`);
    groups[e.group][e.name] = all.slice(e.offset, e.offset + e.length);
  }
  return groups as TensorGroups<G>;
}

/** Where each tensor of a PPO checkpoint lies in its chunked bytes (offsets in float32 elements). */
export type PpoTensorIndex = TensorIndex<PpoTensorGroup>;

/** One record per PPO run in the `runs` store; its tensors are in `chunks` under `tensors.blobId`. */
export interface SavedPpoRun {
  id: string;
  kind: 'ppo';
  setup: PpoSetup;
  state: PpoStateMeta;
  tensors: PpoTensorIndex;
  history: MetricRow[];
  evals: EvalPoint[];
  updatedAt: number;
  /** First save time, and what the run started from (absent in saves older than the Runs page). */
  createdAt?: number;
  parent?: RunParent;
}

/** A record of the `runs` store is a PPO run (its tensors in chunks). */
export function isSavedPpoRun(x: RunRecord | SavedPpoRun | SavedGroupRun | undefined): x is SavedPpoRun {
  return x?.kind === 'ppo' && 'tensors' in x;
}

/** A PPO run as the Train page has it: the record's fields with the whole state, tensors included. */
export type PpoRunSave = Omit<SavedPpoRun, 'state' | 'tensors'> & { state: PpoState };

/** The ids of a pretraining run's optimiser state and token streams in the `chunks` store. */
export const pretrainOptBlobId = (runId: string): string => `pretrain-opt:${runId}`;
export const pretrainDataBlobId = (runId: string): string => `pretrain-data:${runId}`;

/** The id of the chunked tensors of PPO run `runId`. */
export const ppoBlobId = (runId: string): string => `ppo-state:${runId}`;

/** Split a PPO state into its record part and its tensors as one byte array. */
export function packPpoTensors(
  state: PpoState,
  blobId: string,
): { meta: PpoStateMeta; index: PpoTensorIndex; bytes: Uint8Array } {
  const { policy, value, adamM, adamV, ...meta } = state;
  return { meta, ...packTensors(PPO_TENSOR_GROUPS, { policy, value, adamM, adamV }, blobId) };
}

/** The whole PPO state back from its record part and its bytes; throws when they do not match. */
export function unpackPpoTensors(meta: PpoStateMeta, index: PpoTensorIndex, bytes: Uint8Array): PpoState {
  return { ...meta, ...unpackTensors(PPO_TENSOR_GROUPS, index, bytes, 'PPO') };
}

// ------------------------------------------------------------------------------- GRPO / RLOO / online DPO runs

/** The tensor groups of a GRPO, RLOO or online DPO checkpoint (no value model: that is the point). */
export const GROUP_TENSOR_GROUPS = ['policy', 'adamM', 'adamV'] as const;
export type GroupTensorGroup = (typeof GROUP_TENSOR_GROUPS)[number];

/** A GRPO/RLOO/online DPO state without its tensors (what the run record holds); one per algorithm. */
export type GroupStateMeta = GroupState extends infer S
  ? S extends unknown
    ? Omit<S, GroupTensorGroup>
    : never
  : never;

/** The algorithms saved as `SavedGroupRun`s (the record's `kind`). */
export type GroupRunKind = 'grpo' | 'rloo' | 'online-dpo';

/** How messages name a saved group run's algorithm. */
export const groupRunLabel = (kind: GroupRunKind): string =>
  kind === 'online-dpo' ? 'online DPO' : kind.toUpperCase();

/** Where each tensor of a GRPO/RLOO checkpoint lies in its chunked bytes (offsets in float32 elements). */
export type GroupTensorIndex = TensorIndex<GroupTensorGroup>;

/**
 * One record per GRPO, RLOO or online DPO run in the `runs` store (`kind` is the algorithm); its tensors are
 * in `chunks` under `tensors.blobId`. The setup carries the settings, prompts and reward (the
 * user's JavaScript functions included), `history` the metrics of every iteration (TRL's names).
 */
export interface SavedGroupRun {
  id: string;
  kind: GroupRunKind;
  setup: GroupSetup;
  state: GroupStateMeta;
  tensors: GroupTensorIndex;
  history: MetricRow[];
  updatedAt: number;
  createdAt: number;
  parent: RunParent;
}

/** A record of the `runs` store is a GRPO, RLOO or online DPO run (its tensors in chunks). */
export function isSavedGroupRun(x: unknown): x is SavedGroupRun {
  const r = x as SavedGroupRun | undefined;
  return (
    (r?.kind === 'grpo' || r?.kind === 'rloo' || r?.kind === 'online-dpo') &&
    typeof r === 'object' &&
    'tensors' in r &&
    'setup' in r
  );
}

/** A GRPO/RLOO run as the Train page has it: the record's fields with the whole state. */
export type GroupRunSave = Omit<SavedGroupRun, 'state' | 'tensors' | 'createdAt' | 'parent'> & {
  state: GroupState;
};

/** The id of the chunked tensors of GRPO/RLOO run `runId`. */
export const groupBlobId = (runId: string): string => `group-state:${runId}`;

/** Split a GRPO/RLOO state into its record part and its tensors as one byte array. */
export function packGroupTensors(
  state: GroupState,
  blobId: string,
): { meta: GroupStateMeta; index: GroupTensorIndex; bytes: Uint8Array } {
  const { policy, adamM, adamV, ...rest } = state;
  return { meta: rest as GroupStateMeta, ...packTensors(GROUP_TENSOR_GROUPS, { policy, adamM, adamV }, blobId) };
}

/** The whole GRPO/RLOO state back from its record part and its bytes; throws when they do not match. */
export function unpackGroupTensors(meta: GroupStateMeta, index: GroupTensorIndex, bytes: Uint8Array): GroupState {
  return { ...meta, ...unpackTensors(GROUP_TENSOR_GROUPS, index, bytes, groupRunLabel(meta.algo)) } as GroupState;
}
