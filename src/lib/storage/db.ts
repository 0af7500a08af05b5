/**
 * IndexedDB persistence through `idb` (Jake Archibald's promise wrapper).
 *
 * - Database `rlhf-playground`; its version is the number of entries in
 *   `MIGRATIONS`. Add a migration at the end to change the schema; never edit one
 *   that has shipped.
 * - Every write is one transaction and resolves only after it commits
 *   (`tx.done`): when `add` resolves, the feedback is on disk. A failed write
 *   aborts its transaction, so nothing is half-written; `addMany` is all or
 *   nothing.
 * - Errors come out as `StorageError` subclasses (`./errors.ts`) whose message
 *   says what to do, e.g. `QuotaExceededStorageError`.
 * - Records are validated before they are written (`validateRecord`), so a bad
 *   record never reaches the database.
 * - The stores are typed (`RlhfDb`, an idb `DBSchema`); the shapes of saved runs and
 *   models live in `src/lib/data/saved.ts`. A write that spans stores goes through
 *   `writeTx` (one transaction, all or nothing).
 */

import {
  openDB,
  type DBSchema,
  type IDBPDatabase,
  type IDBPObjectStore,
  type IDBPTransaction,
  type StoreNames,
} from 'idb';
import {
  PAIRWISE_LABELS,
  FEEDBACK_MODES,
  validateDemonstration,
  validateRecord,
  type Demonstration,
  type FeedbackMode,
  type PairwiseLabel,
  type PreferenceRecord,
} from '../data/records';
import type { PromptSet } from '../data/prompts';
import {
  packPpoTensors,
  ppoBlobId,
  type CheckpointMeta,
  type RunRecord,
  type SavedGroupRun,
  type SavedPpoRun,
  type SavedRewardModel,
} from '../data/saved';
import type { PpoState } from '../engine/types';
import type { LabellerConfig } from '../rlhf/labellers';
import {
  StorageError,
  StorageUnavailableError,
  RecordConflictError,
  toStorageError,
  UNAVAILABLE_MESSAGE,
} from './errors';

export * from './errors';

export const DB_NAME = 'rlhf-playground';

export const STORES = {
  preferences: 'preferences',
  demonstrations: 'demonstrations',
  annotators: 'annotators',
  prompts: 'prompts',
  settings: 'settings',
  runs: 'runs',
  checkpoints: 'checkpoints',
  rewardModels: 'rewardModels',
  chunks: 'chunks',
  rollouts: 'rollouts',
} as const;
export type StoreName = (typeof STORES)[keyof typeof STORES];

/** A chunked binary value's manifest: key [blobId, -1]. */
export interface ChunkManifest {
  blobId: string;
  index: -1;
  byteLength: number;
  chunkCount: number;
  chunkSize: number;
}

/** One chunk of a binary value: key [blobId, index ≥ 0]. */
export interface ChunkRow {
  blobId: string;
  index: number;
  data: ArrayBuffer;
}

/** A row of the `settings` store. */
export interface SettingRow {
  id: string;
  value: unknown;
}

/** The database's stores, their keys, values and indexes (idb `DBSchema`). */
export interface RlhfDb extends DBSchema {
  preferences: {
    key: string;
    value: PreferenceRecord;
    indexes: {
      annotator: string;
      mode: FeedbackMode;
      label: PairwiseLabel;
      createdAt: number;
      prompt: string;
      'annotator+createdAt': [string, number];
      'mode+createdAt': [FeedbackMode, number];
      'label+createdAt': [PairwiseLabel, number];
    };
  };
  demonstrations: { key: string; value: Demonstration; indexes: { createdAt: number; prompt: string } };
  annotators: { key: string; value: AnnotatorProfile };
  prompts: { key: string; value: StoredPromptSet };
  settings: { key: string; value: SettingRow };
  /** SFT/DPO run records, and PPO / GRPO / RLOO runs (`kind: 'ppo' | 'grpo' | 'rloo'`) as the Train page saves them. */
  runs: { key: string; value: RunRecord | SavedPpoRun | SavedGroupRun };
  checkpoints: { key: string; value: CheckpointMeta };
  rewardModels: { key: string; value: SavedRewardModel };
  /** Large binary values split into chunks: key [blobId, index]; index -1 is the manifest. */
  chunks: { key: [string, number]; value: ChunkManifest | ChunkRow };
  /** Every iteration's rollouts (`src/lib/data/rollouts.ts`): key [runId, iteration]; `age` is
   *  [createdAt, bytes], so the size cap sums and drops oldest-first from keys alone. */
  rollouts: {
    key: [string, number];
    value: import('../data/rollouts').RolloutLog;
    indexes: { age: [number, number] };
  };
}

export type Db = IDBPDatabase<RlhfDb>;
type UpgradeTx = IDBPTransaction<RlhfDb, StoreNames<RlhfDb>[], 'versionchange'>;
/** A store of a transaction that may write (a read-write one, or the upgrade's). */
type WritableStore<N extends StoreName> = IDBPObjectStore<
  RlhfDb,
  ArrayLike<StoreNames<RlhfDb>>,
  N,
  'readwrite' | 'versionchange'
>;

/** Schema migrations; entry i upgrades version i to i + 1. Async ones use only the upgrade transaction. */
export const MIGRATIONS: ReadonlyArray<(db: Db, tx: UpgradeTx) => void | Promise<void>> = [
  // v1
  (db) => {
    const prefs = db.createObjectStore(STORES.preferences, { keyPath: 'id' });
    prefs.createIndex('annotator', 'annotator.name');
    prefs.createIndex('mode', 'mode');
    // Only pairwise labels are strings; other modes' object labels are not valid keys and are left out of this index.
    prefs.createIndex('label', 'label');
    prefs.createIndex('createdAt', 'createdAt');
    prefs.createIndex('prompt', 'prompt');
    // Compound indexes so a filtered list pages in createdAt order without reading every record.
    prefs.createIndex('annotator+createdAt', ['annotator.name', 'createdAt']);
    prefs.createIndex('mode+createdAt', ['mode', 'createdAt']);
    prefs.createIndex('label+createdAt', ['label', 'createdAt']);

    const demos = db.createObjectStore(STORES.demonstrations, { keyPath: 'id' });
    demos.createIndex('createdAt', 'createdAt');
    demos.createIndex('prompt', 'prompt');

    db.createObjectStore(STORES.annotators, { keyPath: 'id' });
    db.createObjectStore(STORES.prompts, { keyPath: 'id' });
    db.createObjectStore(STORES.settings, { keyPath: 'id' });
    // Created now, filled by later work, so their existence needs no migration.
    db.createObjectStore(STORES.runs, { keyPath: 'id' });
    db.createObjectStore(STORES.checkpoints, { keyPath: 'id' });
    db.createObjectStore(STORES.rewardModels, { keyPath: 'id' });
    // Large binary values split into chunks: key [blobId, index]; index -1 is the manifest.
    db.createObjectStore(STORES.chunks, { keyPath: ['blobId', 'index'] });
  },
  // v2: a PPO run's tensors (policy, value model, Adam moments) move from its record into chunks.
  async (_db, tx) => {
    let cursor = await tx.objectStore(STORES.runs).openCursor();
    while (cursor) {
      const moved = inlinePpoToChunked(cursor.value);
      if (moved) {
        await Promise.all([
          writeChunks(tx.objectStore(STORES.chunks), moved.run.tensors.blobId, moved.bytes),
          cursor.update(moved.run),
        ]);
      }
      cursor = await cursor.continue();
    }
  },
  // v3: every iteration's rollouts (prompts, completions, rewards, per-token arrays), capped in size.
  (db) => {
    const rollouts = db.createObjectStore(STORES.rollouts, { keyPath: ['runId', 'iteration'] });
    rollouts.createIndex('age', ['createdAt', 'bytes']);
  },
];

/**
 * A PPO run saved before v2 (its whole state, tensors included, in the record) in the v2 shape,
 * or null when `x` is not one (other runs; a record too broken to convert stays as it is and
 * is reported when the runs are listed).
 */
export function inlinePpoToChunked(x: unknown): { run: SavedPpoRun; bytes: Uint8Array } | null {
  const r = x as { kind?: unknown; id?: unknown; state?: Partial<PpoState>; tensors?: unknown };
  if (r?.kind !== 'ppo' || typeof r.id !== 'string' || r.tensors !== undefined || typeof r.state !== 'object')
    return null;
  const st = r.state;
  const isMap = (m: unknown) =>
    typeof m === 'object' && m !== null && Object.values(m).every((a) => a instanceof Float32Array);
  if (!st || !isMap(st.policy) || !isMap(st.value) || !isMap(st.adamM) || !isMap(st.adamV)) return null;
  const { meta, index, bytes } = packPpoTensors(st as PpoState, ppoBlobId(r.id));
  return { run: { ...(r as unknown as SavedPpoRun), state: meta, tensors: index }, bytes };
}

export const DB_VERSION = MIGRATIONS.length;

/**
 * Open (and create or upgrade) the database. Another tab that opens a newer
 * version makes this connection close itself (`blocking`), so upgrades are not
 * stuck behind an old tab.
 */
export async function openDb(name: string = DB_NAME): Promise<Db> {
  if (typeof indexedDB === 'undefined') throw new StorageUnavailableError(UNAVAILABLE_MESSAGE);
  try {
    const db = await openDB<RlhfDb>(name, DB_VERSION, {
      upgrade(db, oldVersion, _newVersion, tx) {
        // Run the migrations in order, each after the one before has queued its requests; a
        // failing one aborts the upgrade, so the database stays at its old version, untouched.
        const from = (v: number): void | Promise<void> => {
          for (; v < DB_VERSION; v++) {
            const pending = MIGRATIONS[v](db, tx);
            if (pending) return pending.then(() => from(v + 1));
          }
        };
        void from(oldVersion)?.catch(() => {
          try {
            tx.abort();
          } catch {
            // already finished
          }
        });
      },
      blocking() {
        db.close();
      },
    });
    return db;
  } catch (e) {
    if (e instanceof Error && e.name === 'VersionError') {
      throw new StorageError(
        'The saved data was written by a newer version of the app. Reload the page to get the newest version.',
        { cause: e },
      );
    }
    throw toStorageError(e, 'open the database', false);
  }
}

/** Ask the browser not to evict our data under storage pressure. Resolves false where unsupported or refused. */
export async function requestPersistentStorage(): Promise<boolean> {
  const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
  if (!storage?.persist) return false;
  try {
    if (storage.persisted && (await storage.persisted())) return true;
    return await storage.persist();
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// Transactions

/**
 * One read-write transaction over `stores`: `fn` queues its requests, and this resolves with
 * its result after the commit. Any failing request (or a throw in `fn`) aborts the whole
 * transaction, so nothing is half-written, and comes out as a `StorageError` about `what`
 * ("save the run").
 */
export async function writeTx<const S extends StoreName[], R>(
  db: Db,
  stores: S,
  what: string,
  fn: (tx: IDBPTransaction<RlhfDb, S, 'readwrite'>) => Promise<R>,
): Promise<R> {
  let tx: IDBPTransaction<RlhfDb, S, 'readwrite'>;
  try {
    tx = db.transaction(stores, 'readwrite');
  } catch (e) {
    throw toStorageError(e, what);
  }
  try {
    const [result] = await Promise.all([fn(tx), tx.done]);
    return result;
  } catch (e) {
    try {
      tx.abort();
    } catch {
      // already finished or aborted
    }
    // The abort makes tx.done reject too; that rejection is expected.
    tx.done.catch(() => {});
    throw toStorageError(e, what);
  }
}

// ---------------------------------------------------------------------------
// A store of records with string ids

type RecordStoreName = 'preferences' | 'demonstrations' | 'annotators' | 'prompts';

/** The value type of store `N`. */
type Value<N extends StoreName> = RlhfDb[N]['value'];

export class RecordStore<N extends RecordStoreName> {
  constructor(
    protected readonly db: Db,
    protected readonly storeName: N,
    /** Validates (and may normalise) a value before it is written; throws on a bad one. */
    protected readonly validate: (x: unknown) => Value<N> = (x) => x as Value<N>,
    /** Noun for messages: "save the preference". */
    protected readonly noun = 'record',
  ) {}

  protected write<R>(what: string, fn: (tx: IDBPTransaction<RlhfDb, [N], 'readwrite'>) => Promise<R>): Promise<R> {
    return writeTx(this.db, [this.storeName], what, fn);
  }

  protected async read<R>(what: string, fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (e) {
      throw toStorageError(e, what, false);
    }
  }

  /** Add a new record; rejects with `RecordConflictError` if the id exists. Resolves after commit. */
  async add(record: Value<N>): Promise<Value<N>> {
    const value = this.validate(record);
    await this.write(`save the ${this.noun}`, (tx) => tx.store.add(value));
    return value;
  }

  /** Add many records in one transaction: all are saved, or (on any bad or conflicting record) none. */
  async addMany(records: readonly Value<N>[]): Promise<Value<N>[]> {
    const values = records.map((r, i) => {
      try {
        return this.validate(r);
      } catch (e) {
        throw new StorageError(
          `Could not save ${records.length} ${this.noun}s: item ${i + 1} is invalid (${(e as Error).message}). Nothing was saved.`,
          {
            cause: e,
          },
        );
      }
    });
    const ids = new Set<string>();
    for (const v of values) {
      if (ids.has(v.id))
        throw new RecordConflictError(
          `Could not save ${this.noun}s: the id "${v.id}" appears twice. Nothing was saved.`,
        );
      ids.add(v.id);
    }
    await this.write(`save ${values.length} ${this.noun}s`, (tx) => Promise.all(values.map((v) => tx.store.add(v))));
    return values;
  }

  /** Insert or replace. */
  async put(record: Value<N>): Promise<Value<N>> {
    const value = this.validate(record);
    await this.write(`save the ${this.noun}`, (tx) => tx.store.put(value));
    return value;
  }

  /** Replace an existing record; rejects with `RecordConflictError` if it does not exist. */
  async update(record: Value<N>): Promise<Value<N>> {
    const value = this.prepareUpdate(this.validate(record));
    await this.write(`update the ${this.noun}`, async (tx) => {
      const old = await tx.store.get(value.id);
      if (old === undefined) throw new RecordConflictError(`Could not update the ${this.noun}: it no longer exists.`);
      await tx.store.put(value);
    });
    return value;
  }

  protected prepareUpdate(value: Value<N>): Value<N> {
    return value;
  }

  /** Delete by id and return what was deleted (keep it for undo via `restore`), or undefined if absent. */
  async delete(id: string): Promise<Value<N> | undefined> {
    return this.write(`delete the ${this.noun}`, async (tx) => {
      const old = await tx.store.get(id);
      if (old !== undefined) await tx.store.delete(id);
      return old;
    });
  }

  /** Put back a record returned by `delete` (undo). */
  async restore(record: Value<N>): Promise<Value<N>> {
    return this.put(record);
  }

  async get(id: string): Promise<Value<N> | undefined> {
    return this.read(`read the ${this.noun}`, () => this.db.get(this.storeName, id));
  }

  /** Every record (ordered by id). For big stores prefer a paginated query. */
  async getAll(): Promise<Value<N>[]> {
    return this.read(`read the ${this.noun}s`, () => this.db.getAll(this.storeName));
  }

  async count(): Promise<number> {
    return this.read(`count the ${this.noun}s`, () => this.db.count(this.storeName));
  }

  async clear(): Promise<void> {
    await this.write(`delete all ${this.noun}s`, (tx) => tx.store.clear());
  }
}

// ---------------------------------------------------------------------------
// Preferences

export interface PreferenceQuery {
  /** Annotator name. */
  annotator?: string;
  mode?: FeedbackMode;
  /** Pairwise label (implies mode 'pairwise'). */
  label?: PairwiseLabel;
  /** Case-insensitive substring of the prompt, a response, an edit or the annotator name. */
  search?: string;
  /** Default 0. */
  offset?: number;
  /** Default 50. */
  limit?: number;
}

export interface PreferencePage {
  /** Newest first. */
  records: PreferenceRecord[];
  /** Number of records matching the filters (all pages). */
  total: number;
}

function matchesSearch(r: PreferenceRecord, needle: string): boolean {
  if (r.prompt.toLowerCase().includes(needle)) return true;
  if (r.annotator.name.toLowerCase().includes(needle)) return true;
  if (r.responses.some((x) => x.text.toLowerCase().includes(needle))) return true;
  return r.mode === 'edit' && r.label.edited.toLowerCase().includes(needle);
}

export class PreferenceStore extends RecordStore<'preferences'> {
  constructor(db: Db) {
    super(db, STORES.preferences, validateRecord, 'preference');
  }

  protected override prepareUpdate(value: PreferenceRecord): PreferenceRecord {
    return { ...value, updatedAt: Math.max(Date.now(), value.createdAt) };
  }

  /**
   * One page of records, newest first, filtered. One index narrows the scan (the
   * first of annotator, mode, label given); other filters and `search` are checked
   * record by record, which reads every candidate (fine for tens of thousands).
   */
  async list(q: PreferenceQuery = {}): Promise<PreferencePage> {
    const offset = Math.max(0, Math.floor(q.offset ?? 0));
    const limit = Math.max(0, Math.floor(q.limit ?? 50));
    const needle = q.search?.trim().toLowerCase() ?? '';
    let indexName: 'createdAt' | `${'annotator' | 'mode' | 'label'}+createdAt` = 'createdAt';
    let range: IDBKeyRange | null = null;
    const rest: ((r: PreferenceRecord) => boolean)[] = [];
    const byKey = (name: 'annotator' | 'mode' | 'label', value: string) => {
      if (indexName === 'createdAt') {
        indexName = `${name}+createdAt`;
        range = IDBKeyRange.bound([value, -Infinity], [value, Infinity]);
        return;
      }
      if (name === 'annotator') rest.push((r) => r.annotator.name === value);
      else if (name === 'mode') rest.push((r) => r.mode === value);
      else rest.push((r) => r.mode === 'pairwise' && r.label === value);
    };
    if (q.annotator !== undefined) byKey('annotator', q.annotator);
    if (q.mode !== undefined) byKey('mode', q.mode);
    if (q.label !== undefined) byKey('label', q.label);
    if (needle) rest.push((r) => matchesSearch(r, needle));

    return this.read('list the preferences', async () => {
      const tx = this.db.transaction(this.storeName, 'readonly');
      const index = tx.store.index(indexName);
      const records: PreferenceRecord[] = [];
      let total: number;
      if (rest.length === 0) {
        total = await index.count(range);
        if (limit > 0 && offset < total) {
          let cursor = await index.openCursor(range, 'prev');
          if (cursor && offset > 0) cursor = await cursor.advance(offset);
          while (cursor && records.length < limit) {
            records.push(cursor.value);
            cursor = await cursor.continue();
          }
        }
      } else {
        total = 0;
        let cursor = await index.openCursor(range, 'prev');
        while (cursor) {
          const r = cursor.value;
          if (rest.every((f) => f(r))) {
            if (total >= offset && records.length < limit) records.push(r);
            total++;
          }
          cursor = await cursor.continue();
        }
      }
      await tx.done;
      return { records, total };
    });
  }

  /** Number of pairwise records with each label. */
  async countsByLabel(): Promise<Record<PairwiseLabel, number>> {
    return this.read('count the preferences', async () => {
      const tx = this.db.transaction(this.storeName, 'readonly');
      const index = tx.store.index('label');
      const counts = await Promise.all(PAIRWISE_LABELS.map((l) => index.count(l)));
      await tx.done;
      return Object.fromEntries(PAIRWISE_LABELS.map((l, i) => [l, counts[i]])) as Record<PairwiseLabel, number>;
    });
  }

  /** Number of records in each mode. */
  async countsByMode(): Promise<Record<FeedbackMode, number>> {
    return this.read('count the preferences', async () => {
      const tx = this.db.transaction(this.storeName, 'readonly');
      const index = tx.store.index('mode');
      const counts = await Promise.all(FEEDBACK_MODES.map((m) => index.count(m)));
      await tx.done;
      return Object.fromEntries(FEEDBACK_MODES.map((m, i) => [m, counts[i]])) as Record<FeedbackMode, number>;
    });
  }

  /** Names of everyone (and every labeller) who gave feedback, sorted. */
  async annotatorNames(): Promise<string[]> {
    return this.read('read the annotators', async () => {
      const tx = this.db.transaction(this.storeName, 'readonly');
      const names: string[] = [];
      let cursor = await tx.store.index('annotator').openKeyCursor(null, 'nextunique');
      while (cursor) {
        names.push(cursor.key);
        cursor = await cursor.continue();
      }
      await tx.done;
      return names;
    });
  }
}

// ---------------------------------------------------------------------------
// The other stores

export class DemonstrationStore extends RecordStore<'demonstrations'> {
  constructor(db: Db) {
    super(db, STORES.demonstrations, validateDemonstration, 'demonstration');
  }
}

/** A saved annotator profile (a person, or a scripted labeller with its config). */
export interface AnnotatorProfile {
  id: string;
  name: string;
  kind: 'human' | 'labeller';
  labeller?: LabellerConfig;
}

/** A prompt set saved by the user (the bundled ones are read from `static/prompts/`). */
export interface StoredPromptSet extends PromptSet {
  id: string;
  createdAt: number;
}

/** A setting's value (the caller says its type: settings are small values of many kinds). */
export async function getSetting<T>(db: Db, key: string): Promise<T | undefined> {
  try {
    const row = await db.get(STORES.settings, key);
    return row?.value as T | undefined;
  } catch (e) {
    throw toStorageError(e, 'read the settings', false);
  }
}

export async function putSetting<T>(db: Db, key: string, value: T): Promise<void> {
  await writeTx(db, [STORES.settings], 'save the settings', (tx) =>
    tx.objectStore(STORES.settings).put({ id: key, value }),
  );
}

export interface Stores {
  db: Db;
  preferences: PreferenceStore;
  demonstrations: DemonstrationStore;
  annotators: RecordStore<'annotators'>;
  prompts: RecordStore<'prompts'>;
}

/** Open the database and wrap its stores. */
export async function openStores(name: string = DB_NAME): Promise<Stores> {
  const db = await openDb(name);
  return {
    db,
    preferences: new PreferenceStore(db),
    demonstrations: new DemonstrationStore(db),
    annotators: new RecordStore(db, STORES.annotators, undefined, 'annotator'),
    prompts: new RecordStore(db, STORES.prompts, undefined, 'prompt set'),
  };
}

// ---------------------------------------------------------------------------
// Chunked binary values (checkpoints)

/**
 * Chunk size for big binary values. Single multi-hundred-MB values fail in some
 * browsers; TabGPT stores model state in 64 MB chunks for that reason.
 */
export const CHUNK_SIZE = 64 * 1024 * 1024;

function blobRange(id: string): IDBKeyRange {
  return IDBKeyRange.bound([id, -1], [id, Infinity]);
}

/**
 * Queue the writes that store `bytes` under `id` in chunks (replacing any previous value) on the
 * `chunks` store of a transaction the caller owns, so a value and the record pointing to it are
 * written together. Copies each chunk before the transaction commits.
 */
export function writeChunks(store: WritableStore<'chunks'>, id: string, bytes: Uint8Array, chunkSize = CHUNK_SIZE) {
  if (!(chunkSize > 0)) throw new RangeError('chunkSize must be > 0');
  const chunkCount = Math.ceil(bytes.byteLength / chunkSize);
  const manifest: ChunkManifest = { blobId: id, index: -1, byteLength: bytes.byteLength, chunkCount, chunkSize };
  const writes: Promise<unknown>[] = [store.delete(blobRange(id)), store.put(manifest)];
  for (let i = 0; i < chunkCount; i++) {
    // slice() copies into a fresh ArrayBuffer holding only this chunk.
    const data = bytes.slice(i * chunkSize, Math.min(bytes.byteLength, (i + 1) * chunkSize)).buffer;
    writes.push(store.put({ blobId: id, index: i, data } satisfies ChunkRow));
  }
  return Promise.all(writes);
}

/** The rows of a chunked value joined again, or undefined if there is none; throws when parts are missing. */
export function joinChunks(id: string, rows: readonly (ChunkRow | ChunkManifest)[]): Uint8Array | undefined {
  const manifest = rows.find((r): r is ChunkManifest => r.index === -1);
  if (!manifest) return undefined;
  const chunks = rows.filter((r): r is ChunkRow => r.index >= 0);
  if (chunks.length !== manifest.chunkCount) {
    throw new StorageError(
      `The saved checkpoint "${id}" is incomplete (${chunks.length} of ${manifest.chunkCount} parts). Delete it and save again.`,
    );
  }
  const out = new Uint8Array(manifest.byteLength);
  for (const c of chunks) out.set(new Uint8Array(c.data), c.index * manifest.chunkSize);
  return out;
}

/** The chunk rows of value `id` (for `joinChunks`), in a transaction the caller owns. */
export function chunkRange(id: string): IDBKeyRange {
  return blobRange(id);
}

/** Store `bytes` under `id` in chunks, in one transaction (replacing any previous value). */
export async function putBlobChunked(db: Db, id: string, bytes: Uint8Array, chunkSize = CHUNK_SIZE): Promise<void> {
  if (!(chunkSize > 0)) throw new RangeError('chunkSize must be > 0');
  await writeTx(db, [STORES.chunks], 'save the checkpoint', (tx) =>
    writeChunks(tx.objectStore(STORES.chunks), id, bytes, chunkSize),
  );
}

/** Read a value stored by `putBlobChunked`, or undefined if there is none. */
export async function getBlobChunked(db: Db, id: string): Promise<Uint8Array | undefined> {
  try {
    return joinChunks(id, await db.getAll(STORES.chunks, blobRange(id)));
  } catch (e) {
    throw toStorageError(e, 'read the checkpoint', false);
  }
}

export async function deleteBlobChunked(db: Db, id: string): Promise<void> {
  await writeTx(db, [STORES.chunks], 'delete the checkpoint', (tx) =>
    tx.objectStore(STORES.chunks).delete(blobRange(id)),
  );
}
