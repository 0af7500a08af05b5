/**
 * Every training run is a record: reward model, SFT, PPO and DPO runs share one shape
 * (`RunRecord`) — config, what it started from (`parent`), the weights it produced
 * (`checkpointId`, in the `checkpoints` + `chunks` stores), the metric history and the
 * evaluation samples with their diversity metrics (distinct-n, self-BLEU; see
 * `src/lib/rlhf/diversity.ts`).
 *
 * SFT, DPO and pretraining runs are written here as `RunRecord`s in the `runs` store (a
 * pretraining run with its optimiser state and token streams too: `savePretrain`). PPO runs are saved
 * by the Train page through `savePpo` (`SavedPpoRun`, kind 'ppo', same store; its tensors in
 * chunks) and reward models stay in the `rewardModels` store; both are read as `RunRecord`s
 * through `ppoToRunRecord` and `rewardToRunRecord` (a link, no copy of their weights). GRPO, RLOO
 * and online DPO runs are saved like PPO runs (`saveGroup`, `SavedGroupRun`, kind 'grpo' / 'rloo' /
 * 'online-dpo', tensors in chunks) and read through `groupToRunRecord`. Records
 * read back are validated: a bad one is skipped with a notice (`RunList.skipped`), never a crash.
 * The shapes themselves live in `./saved.ts`. Every save and delete is one transaction.
 *
 * Run tracking in the manner of experiment trackers (e.g. TRL's `report_to` logs): metric names
 * are kept as each trainer logs them, so overlays of different kinds compare like with like.
 */
import {
  chunkRange,
  getBlobChunked,
  joinChunks,
  STORES,
  StorageError,
  toStorageError,
  writeChunks,
  writeTx,
  type Db,
} from '../storage/db';
import { diversityMetrics } from '../rlhf/diversity';
import type { GroupState, PpoState } from '../engine/types';
import {
  groupBlobId,
  groupRunLabel,
  isSavedGroupRun,
  isSavedPpoRun,
  packGroupTensors,
  packPpoTensors,
  ppoBlobId,
  pretrainDataBlobId,
  pretrainOptBlobId,
  RUN_KINDS,
  RUN_RECORD_VERSION,
  RUN_STATUSES,
  unpackGroupTensors,
  unpackPpoTensors,
  type CheckpointMeta,
  type GroupRunKind,
  type GroupRunSave,
  type PpoRunSave,
  type RunEval,
  type RunKind,
  type RunMetricRow,
  type RunParent,
  type RunRecord,
  type RunSample,
  type RunStatus,
  type SavedGroupRun,
  type SavedPpoRun,
} from './saved';

export { RUN_KINDS, RUN_RECORD_VERSION, RUN_STATUSES };
export type { CheckpointMeta, RunEval, RunKind, RunMetricRow, RunParent, RunRecord, RunSample, RunStatus };

/** The files of a checkpoint (same shape as the engine's `ModelFiles`). */
export interface CheckpointFiles {
  name: string;
  source: 'files';
  config: string;
  tokenizer: string;
  weights: ArrayBuffer;
  card?: string;
}

/** A record read back from storage is not a valid run. */
export class RunRecordError extends Error {
  override name = 'RunRecordError';
}

/** The weights of a run are gone (deleted, or the run never kept any). */
export class CheckpointMissingError extends StorageError {
  override name = 'CheckpointMissingError';
}

// ------------------------------------------------------------------------------- validation

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isNum = (x: unknown): x is number => typeof x === 'number' && !Number.isNaN(x);

function validateMetrics(x: unknown, where: string): Record<string, number> {
  if (!isObj(x)) throw new RunRecordError(`${where}: metrics are not an object`);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(x)) {
    // NaN is allowed in logs (a diverged step), other types are not.
    if (typeof v !== 'number') throw new RunRecordError(`${where}: metric "${k}" is not a number`);
    out[k] = v;
  }
  return out;
}

/** Check (and copy) a run record; throws `RunRecordError` saying what is wrong. */
export function validateRunRecord(x: unknown): RunRecord {
  if (!isObj(x)) throw new RunRecordError('not an object');
  const id = x.id;
  if (typeof id !== 'string' || !id) throw new RunRecordError('no id');
  const at = `run ${id}`;
  if (x.version !== RUN_RECORD_VERSION) throw new RunRecordError(`${at}: unknown version ${String(x.version)}`);
  if (!RUN_KINDS.includes(x.kind as RunKind)) throw new RunRecordError(`${at}: unknown kind ${String(x.kind)}`);
  if (typeof x.name !== 'string') throw new RunRecordError(`${at}: no name`);
  if (!isNum(x.createdAt) || !isNum(x.updatedAt)) throw new RunRecordError(`${at}: bad dates`);
  if (!isObj(x.config)) throw new RunRecordError(`${at}: no config`);
  const p = x.parent;
  if (!isObj(p) || (p.kind !== 'base' && p.kind !== 'run') || typeof p.name !== 'string')
    throw new RunRecordError(`${at}: bad parent`);
  if (p.kind === 'run' && typeof p.id !== 'string') throw new RunRecordError(`${at}: parent run without id`);
  if (x.checkpointId !== null && typeof x.checkpointId !== 'string') throw new RunRecordError(`${at}: bad checkpoint`);
  if (!RUN_STATUSES.includes(x.status as RunStatus)) throw new RunRecordError(`${at}: unknown status`);
  if (!Array.isArray(x.history)) throw new RunRecordError(`${at}: no history`);
  const history = x.history.map((r, i) => {
    if (!isObj(r) || !isNum(r.step)) throw new RunRecordError(`${at}: history row ${i} has no step`);
    return { step: r.step, metrics: validateMetrics(r.metrics, `${at}, history row ${i}`) };
  });
  if (!Array.isArray(x.evals)) throw new RunRecordError(`${at}: no evals`);
  const evals = x.evals.map((e, i) => {
    if (!isObj(e) || !isNum(e.step) || !Array.isArray(e.samples)) throw new RunRecordError(`${at}: bad eval ${i}`);
    const samples = e.samples.map((s) => {
      if (!isObj(s) || typeof s.prompt !== 'string' || typeof s.text !== 'string')
        throw new RunRecordError(`${at}: bad sample in eval ${i}`);
      return { prompt: s.prompt, text: s.text };
    });
    return { step: e.step, samples, metrics: validateMetrics(e.metrics, `${at}, eval ${i}`) };
  });
  return {
    version: RUN_RECORD_VERSION,
    id,
    kind: x.kind as RunKind,
    name: x.name,
    createdAt: x.createdAt,
    updatedAt: x.updatedAt,
    config: x.config,
    parent: p.kind === 'run' ? { kind: 'run', id: p.id as string, name: p.name } : { kind: 'base', name: p.name },
    checkpointId: (x.checkpointId as string | null) ?? null,
    history,
    evals,
    status: x.status as RunStatus,
  };
}

/** An evaluation point: the samples and their distinct-1/2/3 and self-BLEU. */
export function makeEval(step: number, samples: RunSample[]): RunEval {
  const m = diversityMetrics(samples.map((s) => s.text));
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(m)) if (typeof v === 'number') metrics[k] = v;
  return { step, samples, metrics };
}

// ------------------------------------------------------------------------------- other stores as runs

interface PpoLike {
  id: string;
  kind: 'ppo';
  setup: { name?: string; evalPrompts?: string[]; config?: unknown; reward?: unknown; baseName?: string };
  state: { iteration: number; config?: unknown };
  history: RunMetricRow[];
  evals: { iteration: number; samples: { prompt: string; text: string; score?: number; gold?: number | null }[] }[];
  updatedAt: number;
  /** Optional, newer PPO saves may carry these. */
  createdAt?: number;
  parent?: RunParent;
}

/** A PPO run saved by the Train page, read as a run record (its weights live in the record itself). */
export function ppoToRunRecord(x: unknown): RunRecord {
  if (!isObj(x) || x.kind !== 'ppo' || !isObj(x.setup) || !isObj(x.state))
    throw new RunRecordError(`PPO run ${isObj(x) ? String(x.id) : ''}: not a PPO run`);
  const r = x as unknown as PpoLike;
  if (!isNum(r.state.iteration)) throw new RunRecordError(`PPO run ${r.id}: no iteration`);
  const evals = (Array.isArray(r.evals) ? r.evals : []).map((e) => {
    const samples = e.samples.map((s) => ({ prompt: s.prompt, text: s.text }));
    const ev = makeEval(e.iteration, samples);
    const scores = e.samples.map((s) => s.score).filter(isNum);
    if (scores.length) ev.metrics['eval/score'] = scores.reduce((a, b) => a + b, 0) / scores.length;
    const golds = e.samples.map((s) => s.gold).filter(isNum);
    if (golds.length) ev.metrics['eval/gold'] = golds.reduce((a, b) => a + b, 0) / golds.length;
    return ev;
  });
  const rec: RunRecord = {
    version: RUN_RECORD_VERSION,
    id: r.id,
    kind: 'ppo',
    name: r.setup.name ?? 'PPO run',
    createdAt: r.createdAt ?? r.updatedAt,
    updatedAt: r.updatedAt,
    config: { ...(isObj(r.state.config) ? r.state.config : {}), reward: r.setup.reward },
    parent: r.parent ?? { kind: 'base', name: r.setup.baseName ?? 'the model loaded when it started' },
    checkpointId: r.id,
    history: Array.isArray(r.history) ? r.history : [],
    evals,
    status: 'paused',
  };
  return validateRunRecord(rec);
}

/** A GRPO, RLOO or online DPO run saved by the Train page, read as a run record (its weights are its own chunks). */
export function groupToRunRecord(x: unknown): RunRecord {
  if (!isSavedGroupRun(x) || !isObj(x.setup) || !isObj(x.state))
    throw new RunRecordError(
      `GRPO/RLOO/online DPO run ${isObj(x) ? String(x.id) : ''}: not a GRPO, RLOO or online DPO run`,
    );
  const what = groupRunLabel(x.kind);
  if (!isNum(x.state.iteration)) throw new RunRecordError(`${what} run ${x.id}: no iteration`);
  const rec: RunRecord = {
    version: RUN_RECORD_VERSION,
    id: x.id,
    kind: x.kind,
    name: x.setup.name ?? `${what} run`,
    createdAt: x.createdAt ?? x.updatedAt,
    updatedAt: x.updatedAt,
    config: { ...(isObj(x.state.config) ? x.state.config : {}), reward: x.setup.reward },
    parent: x.parent ?? { kind: 'base', name: 'the model loaded when it started' },
    checkpointId: x.id,
    history: Array.isArray(x.history) ? x.history : [],
    evals: [],
    status: 'paused',
  };
  return validateRunRecord(rec);
}

interface RewardLike {
  id: string;
  summary: {
    name: string;
    createdAt: number;
    mode: string;
    pairs: number;
    accuracy: number;
    evalAccuracy: number | null;
  };
  history?: RunMetricRow[];
}

/** A saved reward model read as a run record (linked by id; its weights stay in `rewardModels`). */
export function rewardToRunRecord(x: unknown): RunRecord {
  if (!isObj(x) || typeof x.id !== 'string' || !isObj(x.summary)) throw new RunRecordError('not a reward model');
  const r = x as unknown as RewardLike;
  const s = r.summary;
  const rec: RunRecord = {
    version: RUN_RECORD_VERSION,
    id: r.id,
    kind: 'reward',
    name: s.name,
    createdAt: s.createdAt,
    updatedAt: s.createdAt,
    config: { mode: s.mode, pairs: s.pairs },
    parent: { kind: 'base', name: 'the model loaded when it trained' },
    checkpointId: r.id,
    history: Array.isArray(r.history) ? r.history : [],
    evals: [],
    status: 'finished',
  };
  return validateRunRecord(rec);
}

// ------------------------------------------------------------------------------- store

export interface RunList {
  /** Newest first. */
  runs: RunRecord[];
  /** One line per record that could not be read (it stays stored, untouched). */
  skipped: string[];
}

/** Run records in the `runs` store (with PPO runs) and reward models from `rewardModels`. */
export class RunStore {
  constructor(private readonly db: Db) {}

  /** Save a run and (when given) its weights as its checkpoint, in one transaction: nothing is half-saved. */
  async save(record: RunRecord, files?: Omit<CheckpointFiles, 'source'>): Promise<RunRecord> {
    const rec = validateRunRecord(record);
    if (!files) {
      await writeTx(this.db, [STORES.runs], 'save the run', (tx) => tx.objectStore(STORES.runs).put(rec));
      return rec;
    }
    const checkpointId = rec.checkpointId;
    if (!checkpointId) throw new RunRecordError(`run ${rec.id}: weights given without a checkpoint id`);
    const meta: CheckpointMeta = {
      id: checkpointId,
      runId: rec.id,
      name: files.name,
      config: files.config,
      tokenizer: files.tokenizer,
      card: files.card,
      byteLength: files.weights.byteLength,
      createdAt: Date.now(),
    };
    await writeTx(this.db, [STORES.runs, STORES.checkpoints, STORES.chunks], 'save the run', (tx) =>
      Promise.all([
        writeChunks(tx.objectStore(STORES.chunks), checkpointId, new Uint8Array(files.weights)),
        tx.objectStore(STORES.checkpoints).put(meta),
        tx.objectStore(STORES.runs).put(rec),
      ]),
    );
    return rec;
  }

  /**
   * Save a PPO run (between iterations): the record with the state's small fields, and the
   * tensors (policy, value model, Adam moments) in chunks, in one transaction. A run saved before
   * keeps its first save time and its parent; a new one gets `parent`.
   */
  async savePpo(run: PpoRunSave, parent: RunParent): Promise<SavedPpoRun> {
    const { meta, index, bytes } = packPpoTensors(run.state, ppoBlobId(run.id));
    return this.saveChunkedRun(run.id, isSavedPpoRun, 'save the PPO run', bytes, (prev) => ({
      ...run,
      state: meta,
      tensors: index,
      createdAt: prev ? (prev.createdAt ?? prev.updatedAt) : (run.createdAt ?? run.updatedAt),
      parent: prev ? prev.parent : (run.parent ?? parent),
    }));
  }

  /**
   * Write a run record whose tensors are chunks of its own (PPO, GRPO, RLOO) and those bytes in one
   * transaction; `record` builds the record from the one saved before under this id (undefined
   * when there is none of that shape).
   */
  private saveChunkedRun<R extends SavedPpoRun | SavedGroupRun>(
    id: string,
    is: (x: Parameters<typeof isSavedPpoRun>[0]) => x is R,
    what: string,
    bytes: Uint8Array,
    record: (prev: R | undefined) => R,
  ): Promise<R> {
    return writeTx(this.db, [STORES.runs, STORES.chunks], what, async (tx) => {
      const runs = tx.objectStore(STORES.runs);
      const old = await runs.get(id);
      const rec = record(is(old) ? old : undefined);
      await Promise.all([writeChunks(tx.objectStore(STORES.chunks), rec.tensors.blobId, bytes), runs.put(rec)]);
      return rec;
    });
  }

  /**
   * A run record whose tensors are chunks of its own (PPO, GRPO, RLOO) and those bytes, read in one
   * transaction; `run` undefined when no record of that shape has this id, `bytes` undefined when
   * its chunks are gone.
   */
  private async readChunkedRun<R extends SavedPpoRun | SavedGroupRun>(
    id: string,
    is: (x: Parameters<typeof isSavedPpoRun>[0]) => x is R,
    what: string,
  ): Promise<{ run: R | undefined; bytes: Uint8Array | undefined }> {
    try {
      const tx = this.db.transaction([STORES.runs, STORES.chunks], 'readonly');
      const rec = await tx.objectStore(STORES.runs).get(id);
      const run = is(rec) ? rec : undefined;
      const bytes = run
        ? joinChunks(run.tensors.blobId, await tx.objectStore(STORES.chunks).getAll(chunkRange(run.tensors.blobId)))
        : undefined;
      await tx.done;
      return { run, bytes };
    } catch (e) {
      throw toStorageError(e, what, false);
    }
  }

  /** A saved PPO run with its whole state (tensors read back from the chunks), or undefined if there is none. */
  async loadPpo(id: string): Promise<{ run: SavedPpoRun; state: PpoState } | undefined> {
    const { run, bytes } = await this.readChunkedRun(id, isSavedPpoRun, 'read the PPO run');
    if (!run) return undefined;
    if (!bytes)
      throw new CheckpointMissingError(
        `The weights of PPO run "${run.setup.name ?? run.id}" are gone. Its curves and samples stay readable.`,
      );
    return { run, state: unpackPpoTensors(run.state, run.tensors, bytes) };
  }

  /**
   * Save a GRPO, RLOO or online DPO run (between iterations) as `savePpo` saves PPO's: the record with the
   * state's small fields, the tensors (policy, Adam moments) in chunks, one transaction. A run
   * saved before keeps its first save time and its parent.
   */
  async saveGroup(run: GroupRunSave, parent: RunParent): Promise<SavedGroupRun> {
    const { meta, index, bytes } = packGroupTensors(run.state, groupBlobId(run.id));
    return this.saveChunkedRun(run.id, isSavedGroupRun, `save the ${groupRunLabel(run.kind)} run`, bytes, (prev) => ({
      ...run,
      state: meta,
      tensors: index,
      createdAt: prev ? prev.createdAt : run.updatedAt,
      parent: prev ? prev.parent : parent,
    }));
  }

  /** A saved GRPO/RLOO/online DPO run with its whole state, or undefined if there is none with this id. */
  async loadGroup(id: string): Promise<{ run: SavedGroupRun; state: GroupState } | undefined> {
    const { run, bytes } = await this.readChunkedRun(id, isSavedGroupRun, 'read the run');
    if (!run) return undefined;
    if (!bytes)
      throw new CheckpointMissingError(
        `The weights of ${groupRunLabel(run.kind)} run "${run.setup.name ?? run.id}" are gone. Its curves stay readable.`,
      );
    return { run, state: unpackGroupTensors(run.state, run.tensors, bytes) };
  }

  /** The most recently saved GRPO, RLOO or online DPO run (without its tensors; of `algo` when given), or undefined. */
  async latestGroup(algo?: GroupRunKind): Promise<SavedGroupRun | undefined> {
    let rows: unknown[];
    try {
      rows = await this.db.getAll(STORES.runs);
    } catch (e) {
      throw toStorageError(e, 'read the saved runs', false);
    }
    return rows
      .filter(isSavedGroupRun)
      .filter((r) => !algo || r.kind === algo)
      .sort((a, b) => b.updatedAt - a.updatedAt)[0];
  }

  /** The most recently saved PPO run (without its tensors), or undefined if there is none. */
  async latestPpo(): Promise<SavedPpoRun | undefined> {
    let rows: (RunRecord | SavedPpoRun | SavedGroupRun)[];
    try {
      rows = await this.db.getAll(STORES.runs);
    } catch (e) {
      throw toStorageError(e, 'read the saved runs', false);
    }
    const ppo = rows.filter(isSavedPpoRun);
    return ppo.sort((a, b) => b.updatedAt - a.updatedAt)[0];
  }

  /** Every run, newest first; unreadable records are listed in `skipped`. */
  async list(): Promise<RunList> {
    let rows: unknown[];
    let rms: unknown[];
    try {
      [rows, rms] = await Promise.all([this.db.getAll(STORES.runs), this.db.getAll(STORES.rewardModels)]);
    } catch (e) {
      throw toStorageError(e, 'read the runs', false);
    }
    const runs: RunRecord[] = [];
    const skipped: string[] = [];
    const take = (fn: () => RunRecord) => {
      try {
        runs.push(fn());
      } catch (e) {
        skipped.push((e as Error).message);
      }
    };
    for (const r of rows)
      take(() =>
        isObj(r) && r.kind === 'ppo'
          ? ppoToRunRecord(r)
          : isObj(r) && (r.kind === 'grpo' || r.kind === 'rloo' || r.kind === 'online-dpo') && 'tensors' in r
            ? groupToRunRecord(r)
            : validateRunRecord(r),
      );
    for (const m of rms) take(() => rewardToRunRecord(m));
    runs.sort((a, b) => b.createdAt - a.createdAt || b.updatedAt - a.updatedAt);
    return { runs, skipped };
  }

  /**
   * Save a pretraining checkpoint in one transaction: the record, the model files as its
   * checkpoint, Adam's moments, and (the first time) the token streams. A failed write leaves
   * the previous checkpoint whole.
   */
  async savePretrain(
    record: RunRecord,
    files: Omit<CheckpointFiles, 'source'>,
    optBytes: Uint8Array,
    dataBytes?: Uint8Array,
  ): Promise<RunRecord> {
    const rec = validateRunRecord(record);
    if (rec.kind !== 'pretrain' || !rec.checkpointId)
      throw new RunRecordError(`run ${rec.id}: not a pretraining run with a checkpoint`);
    const checkpointId = rec.checkpointId;
    const meta: CheckpointMeta = {
      id: checkpointId,
      runId: rec.id,
      name: files.name,
      config: files.config,
      tokenizer: files.tokenizer,
      card: files.card,
      byteLength: files.weights.byteLength,
      createdAt: Date.now(),
    };
    await writeTx(
      this.db,
      [STORES.runs, STORES.checkpoints, STORES.chunks],
      'save the pretraining checkpoint',
      (tx) => {
        const chunks = tx.objectStore(STORES.chunks);
        const ops: Promise<unknown>[] = [
          writeChunks(chunks, checkpointId, new Uint8Array(files.weights)),
          writeChunks(chunks, pretrainOptBlobId(rec.id), optBytes),
          tx.objectStore(STORES.checkpoints).put(meta),
          tx.objectStore(STORES.runs).put(rec),
        ];
        if (dataBytes) ops.push(writeChunks(chunks, pretrainDataBlobId(rec.id), dataBytes));
        return Promise.all(ops);
      },
    );
    return rec;
  }

  /** What resuming a pretraining run needs: its model files, optimiser bytes and token streams. */
  async loadPretrain(run: RunRecord): Promise<{ files: CheckpointFiles; optBytes: Uint8Array; dataBytes: Uint8Array }> {
    const files = await this.loadCheckpoint(run);
    const [optBytes, dataBytes] = await Promise.all([
      getBlobChunked(this.db, pretrainOptBlobId(run.id)),
      getBlobChunked(this.db, pretrainDataBlobId(run.id)),
    ]);
    if (!optBytes || !dataBytes)
      throw new CheckpointMissingError(
        `The optimiser state or the text of run "${run.name}" is gone, so it cannot be resumed; its weights can still be used.`,
      );
    return { files, optBytes, dataBytes };
  }

  /**
   * Rename a run (a pretraining, SFT or DPO run's model is loaded under its checkpoint's name, so
   * that changes too), in one transaction. Reward models keep their own names on the Reward page.
   */
  async rename(run: Pick<RunRecord, 'id' | 'kind' | 'checkpointId'>, name: string): Promise<void> {
    const clean = name.trim().slice(0, 200);
    if (!clean) throw new RunRecordError('A run needs a name.');
    if (run.kind === 'reward') throw new RunRecordError('Rename a reward model on the Reward page.');
    await writeTx(this.db, [STORES.runs, STORES.checkpoints], 'rename the run', async (tx) => {
      const runs = tx.objectStore(STORES.runs);
      const rec = await runs.get(run.id);
      if (!rec) throw new RunRecordError('The run no longer exists.');
      if (isSavedPpoRun(rec)) await runs.put({ ...rec, setup: { ...rec.setup, name: clean } });
      else await runs.put({ ...rec, name: clean, updatedAt: Date.now() });
      if (run.kind !== 'ppo' && run.checkpointId) {
        const meta = await tx.objectStore(STORES.checkpoints).get(run.checkpointId);
        if (meta) await tx.objectStore(STORES.checkpoints).put({ ...meta, name: clean });
      }
    });
  }

  /** Delete a run and its weights in one transaction (reward models are deleted from their own store). */
  async delete(run: Pick<RunRecord, 'id' | 'kind' | 'checkpointId'>): Promise<void> {
    if (run.kind === 'reward') {
      await writeTx(this.db, [STORES.rewardModels], 'delete the reward model', (tx) =>
        tx.objectStore(STORES.rewardModels).delete(run.id),
      );
      return;
    }
    // A PPO/GRPO/RLOO/online DPO run's tensors are chunks of its own; an SFT/DPO run's weights are its checkpoint.
    const own = run.kind === 'ppo' || run.kind === 'grpo' || run.kind === 'rloo' || run.kind === 'online-dpo';
    const blobId =
      run.kind === 'ppo'
        ? ppoBlobId(run.id)
        : own
          ? groupBlobId(run.id)
          : run.checkpointId !== run.id
            ? run.checkpointId
            : null;
    await writeTx(
      this.db,
      [STORES.runs, STORES.checkpoints, STORES.chunks, STORES.rollouts],
      'delete the run',
      (tx) => {
        const ops: Promise<unknown>[] = [
          tx.objectStore(STORES.runs).delete(run.id),
          // Its rollout history (schema v3) goes with it.
          tx.objectStore(STORES.rollouts).delete(IDBKeyRange.bound([run.id, -Infinity], [run.id, Infinity])),
        ];
        if (blobId) {
          if (!own) ops.push(tx.objectStore(STORES.checkpoints).delete(blobId));
          ops.push(tx.objectStore(STORES.chunks).delete(chunkRange(blobId)));
        }
        if (run.kind === 'pretrain')
          for (const id of [pretrainOptBlobId(run.id), pretrainDataBlobId(run.id)])
            ops.push(tx.objectStore(STORES.chunks).delete(chunkRange(id)));
        return Promise.all(ops);
      },
    );
  }

  /** The model files of a run's checkpoint; `CheckpointMissingError` when they are gone. */
  async loadCheckpoint(run: Pick<RunRecord, 'name' | 'checkpointId'>): Promise<CheckpointFiles> {
    const gone = () =>
      new CheckpointMissingError(
        `The weights of run "${run.name}" are gone (deleted or never saved). Its curves and samples stay readable; train it again to get a model.`,
      );
    if (!run.checkpointId) throw gone();
    let meta: CheckpointMeta | undefined;
    try {
      meta = await this.db.get(STORES.checkpoints, run.checkpointId);
    } catch (e) {
      throw toStorageError(e, 'read the checkpoint', false);
    }
    if (!meta) throw gone();
    const bytes = await getBlobChunked(this.db, run.checkpointId);
    if (!bytes) throw gone();
    return {
      name: meta.name,
      source: 'files',
      config: meta.config,
      tokenizer: meta.tokenizer,
      card: meta.card,
      weights: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
    };
  }
}

/** The parent of `run` is a run that is not in `runs` any more. */
export function parentDeleted(run: RunRecord, runs: readonly RunRecord[]): boolean {
  return run.parent.kind === 'run' && !runs.some((r) => r.id === run.parent.id);
}

/** Metric names of a run: its history's and its evaluations' (diversity) ones. */
export function runMetricNames(run: RunRecord): string[] {
  const names = new Set<string>();
  for (const r of run.history) for (const k of Object.keys(r.metrics)) names.add(k);
  for (const e of run.evals) for (const k of Object.keys(e.metrics)) names.add(k);
  return [...names].sort();
}

/** The points of one metric over steps (history rows first, else evaluation points). */
export function runSeries(run: RunRecord, metric: string): { x: number; y: number }[] {
  const fromHistory = run.history
    .filter((r) => typeof r.metrics[metric] === 'number' && Number.isFinite(r.metrics[metric]))
    .map((r) => ({ x: r.step, y: r.metrics[metric] }));
  if (fromHistory.length) return fromHistory;
  return run.evals
    .filter((e) => typeof e.metrics[metric] === 'number' && Number.isFinite(e.metrics[metric]))
    .map((e) => ({ x: e.step, y: e.metrics[metric] }));
}

// ------------------------------------------------------------------------------- win rates

export interface WinCell {
  wins: number;
  losses: number;
  ties: number;
}

/** An n × n table; cell [i][j] is run i against run j. */
export function emptyWinTable(n: number): WinCell[][] {
  return Array.from({ length: n }, () => Array.from({ length: n }, () => ({ wins: 0, losses: 0, ties: 0 })));
}

/** Record one comparison of run i (as A) against run j (as B), in both cells. */
export function tallyWin(table: WinCell[][], i: number, j: number, choice: 'A' | 'B' | 'tie'): void {
  if (choice === 'tie') {
    table[i][j].ties++;
    table[j][i].ties++;
  } else if (choice === 'A') {
    table[i][j].wins++;
    table[j][i].losses++;
  } else {
    table[i][j].losses++;
    table[j][i].wins++;
  }
}

/** Win rate with ties counted half (NaN before any comparison). */
export function winRate(c: WinCell): number {
  const n = c.wins + c.losses + c.ties;
  return n ? (c.wins + c.ties / 2) / n : NaN;
}
