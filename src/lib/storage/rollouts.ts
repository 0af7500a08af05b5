/**
 * The `rollouts` store (schema v3): every training iteration's rollouts (`RolloutLog`, see
 * `src/lib/data/rollouts.ts`), key [runId, iteration], under a size cap the user sets.
 *
 * - Size is counted from the `age` index alone ([createdAt, bytes]), so the cap never reads a
 *   record's arrays: the first write scans the index keys once into a table of sizes, later
 *   writes keep that table up to date, and it changes only after a transaction commits.
 * - Over the cap, the oldest iterations (any run) are dropped first, in the same transaction as
 *   the write; the newest iteration written is always kept.
 * - A failed write aborts its transaction (nothing half-written; the table of sizes stays right)
 *   and the next write works as if it never happened.
 * - `RolloutWriter` batches the page's writes: `add` returns at once, writes go one transaction
 *   at a time in the order added, so training never waits for the disk.
 */
import { STORES, toStorageError, writeTx, type Db } from './db';
import { rolloutLogProblem, type RolloutLog } from '../data/rollouts';

type Key = [string, number];
const keyId = (k: Key) => JSON.stringify(k);

export interface WriteResult {
  /** Keys dropped to stay under the cap (oldest first). */
  dropped: Key[];
  /** Bytes stored after the write (all runs). */
  totalBytes: number;
  /** Iterations stored after the write (all runs). */
  iterations: number;
}

/** Sizes of the stored rows: key → [createdAt, bytes]. */
type SizeTable = Map<string, { key: Key; createdAt: number; bytes: number }>;

export class RolloutStore {
  private sizes: SizeTable | null = null;

  constructor(private readonly db: Db) {}

  /** Read the sizes of every row from the `age` index (keys only). */
  private async loadSizes(): Promise<SizeTable> {
    if (this.sizes) return this.sizes;
    const sizes: SizeTable = new Map();
    try {
      const tx = this.db.transaction(STORES.rollouts, 'readonly');
      let cursor = await tx.store.index('age').openKeyCursor();
      while (cursor) {
        const [createdAt, bytes] = cursor.key;
        const key = cursor.primaryKey;
        sizes.set(keyId(key), { key, createdAt, bytes });
        cursor = await cursor.continue();
      }
      await tx.done;
    } catch (e) {
      throw toStorageError(e, 'read the rollout history', false);
    }
    this.sizes = sizes;
    return sizes;
  }

  /** Bytes stored and iterations kept, over all runs. */
  async usage(): Promise<{ bytes: number; iterations: number }> {
    const sizes = await this.loadSizes();
    let bytes = 0;
    for (const s of sizes.values()) bytes += s.bytes;
    return { bytes, iterations: sizes.size };
  }

  /**
   * Store `logs` (replacing rows of the same run and iteration) and drop the oldest rows while
   * more than `capBytes` are stored; one transaction, all or nothing.
   */
  async write(logs: readonly RolloutLog[], capBytes: number): Promise<WriteResult> {
    if (!logs.length) {
      const u = await this.usage();
      return { dropped: [], totalBytes: u.bytes, iterations: u.iterations };
    }
    for (const log of logs) {
      const why = rolloutLogProblem(log);
      if (why) throw new RangeError(`rollouts of iteration ${log?.iteration}: ${why}`);
    }
    const sizes = await this.loadSizes();
    // The table after this write, worked out first and applied only once the transaction commits.
    const next: SizeTable = new Map(sizes);
    for (const log of logs) {
      const key: Key = [log.runId, log.iteration];
      next.set(keyId(key), { key, createdAt: log.createdAt, bytes: log.bytes });
    }
    let total = 0;
    for (const s of next.values()) total += s.bytes;
    const newest = keyId([logs.at(-1)!.runId, logs.at(-1)!.iteration]);
    const dropped: Key[] = [];
    if (total > capBytes) {
      const byAge = [...next.values()].sort((a, b) => a.createdAt - b.createdAt || a.key[1] - b.key[1]);
      for (const s of byAge) {
        if (total <= capBytes) break;
        if (keyId(s.key) === newest) continue;
        total -= s.bytes;
        dropped.push(s.key);
        next.delete(keyId(s.key));
      }
    }
    await writeTx(this.db, [STORES.rollouts], 'save the rollout history', async (tx) => {
      const store = tx.objectStore(STORES.rollouts);
      const reqs: Promise<unknown>[] = [];
      try {
        for (const l of logs) reqs.push(store.put(l));
        for (const k of dropped) reqs.push(store.delete(k));
      } catch (e) {
        // A put that throws (e.g. DataCloneError) aborts the transaction: the requests queued
        // before it reject with AbortError, expected, not to be reported.
        for (const r of reqs) r.catch(() => {});
        throw e;
      }
      await Promise.all(reqs);
    });
    this.sizes = next;
    return { dropped, totalBytes: total, iterations: next.size };
  }

  /** Drop the oldest rows until at most `capBytes` are stored (after the user lowers the cap). */
  async trim(capBytes: number): Promise<WriteResult> {
    const sizes = await this.loadSizes();
    const next: SizeTable = new Map(sizes);
    let total = 0;
    for (const s of next.values()) total += s.bytes;
    const dropped: Key[] = [];
    for (const s of [...next.values()].sort((a, b) => a.createdAt - b.createdAt || a.key[1] - b.key[1])) {
      if (total <= capBytes) break;
      total -= s.bytes;
      dropped.push(s.key);
      next.delete(keyId(s.key));
    }
    if (dropped.length)
      await writeTx(this.db, [STORES.rollouts], 'trim the rollout history', async (tx) => {
        await Promise.all(dropped.map((k) => tx.objectStore(STORES.rollouts).delete(k)));
      });
    this.sizes = next;
    return { dropped, totalBytes: total, iterations: next.size };
  }

  /** The iterations kept for `runId`, ascending (keys only: no record is read). */
  async iterations(runId: string): Promise<number[]> {
    try {
      const keys = await this.db.getAllKeys(STORES.rollouts, IDBKeyRange.bound([runId, -Infinity], [runId, Infinity]));
      return keys.map((k) => k[1]);
    } catch (e) {
      throw toStorageError(e, 'read the rollout history', false);
    }
  }

  /** One iteration's rollouts; throws `StorageError` when the row is unreadable. */
  async get(runId: string, iteration: number): Promise<RolloutLog | undefined> {
    let row: RolloutLog | undefined;
    try {
      row = await this.db.get(STORES.rollouts, [runId, iteration]);
    } catch (e) {
      throw toStorageError(e, 'read the rollout history', false);
    }
    if (row === undefined) return undefined;
    const why = rolloutLogProblem(row);
    if (why) throw toStorageError(new Error(`iteration ${iteration}: ${why}`), 'read the rollout history', false);
    return row;
  }

  /** Delete a run's rows (all, or only those after `afterIteration`: a run resumed from a checkpoint). */
  async deleteRun(runId: string, afterIteration = -Infinity): Promise<number> {
    const range = IDBKeyRange.bound([runId, afterIteration], [runId, Infinity], true, false);
    const keys = await this.db.getAllKeys(STORES.rollouts, range).catch((e) => {
      throw toStorageError(e, 'read the rollout history', false);
    });
    if (!keys.length) return 0;
    await writeTx(this.db, [STORES.rollouts], 'delete the rollout history', (tx) =>
      tx.objectStore(STORES.rollouts).delete(range),
    );
    if (this.sizes) for (const k of keys) this.sizes.delete(keyId(k));
    return keys.length;
  }

  /** Forget the cached sizes (another tab may have written): the next call reads them again. */
  invalidate(): void {
    this.sizes = null;
  }
}

/** What the writer reports. */
export interface RolloutWriterEvents {
  /** The first time a write dropped old iterations to stay under the cap (once per writer). */
  onDropStart?(result: WriteResult): void;
  /** After every committed write. */
  onWritten?(result: WriteResult, logs: readonly RolloutLog[]): void;
  /** A write failed: its logs are lost, later writes go on. */
  onError?(error: Error, logs: readonly RolloutLog[]): void;
}

/**
 * Batches writes off the training loop: `add` queues and returns; queued logs go in one
 * transaction as soon as the previous one has committed, in the order added.
 */
export class RolloutWriter {
  private queue: RolloutLog[] = [];
  private running: Promise<void> | null = null;
  private dropping = false;

  constructor(
    private readonly store: () => Promise<RolloutStore>,
    private readonly capBytes: () => number,
    private readonly events: RolloutWriterEvents = {},
  ) {}

  add(log: RolloutLog): void {
    this.queue.push(log);
    this.running ??= this.drain().finally(() => (this.running = null));
  }

  /** Resolves once everything added so far is written (or failed). */
  async flushed(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    while (this.queue.length) {
      const logs = this.queue;
      this.queue = [];
      try {
        const store = await this.store();
        const result = await store.write(logs, this.capBytes());
        if (result.dropped.length && !this.dropping) {
          this.dropping = true;
          this.events.onDropStart?.(result);
        }
        this.events.onWritten?.(result, logs);
      } catch (e) {
        this.events.onError?.(e instanceof Error ? e : new Error(String(e)), logs);
      }
    }
  }
}
