/**
 * Rollout history (issue 20, item 2): the page side of keeping every iteration's rollouts.
 *
 * - Writing: the Train page hands each finished iteration's packed batch (from the engine's
 *   `rollout` event field) to `record`; a `RolloutWriter` writes them in the background, one
 *   transaction at a time, so training never waits for IndexedDB; the size cap (a setting, in
 *   the `settings` store) drops the oldest iterations first, with a notice the first time.
 * - Browsing (`RolloutBrowser`, one per history view): one run's iterations are listed from keys
 *   only; the scrubber reads just the iteration on screen (a newer request supersedes one in
 *   flight), so a long history never loads at once. Search and sort work on that iteration's
 *   rows; a row opens its tokens.
 * - Export: JSONL, one completion per line, read iteration by iteration.
 */
import {
  filterRows,
  ROLLOUT_SETTINGS,
  ROLLOUT_SETTINGS_KEY,
  rolloutJsonl,
  rolloutRows,
  rowTokens,
  withBytes,
  type RolloutLog,
  type RolloutRow,
  type RolloutSettings,
  type RolloutSort,
} from '../lib/data/rollouts';
import { getSetting, putSetting, toStorageError } from '../lib/storage/db';
import { RolloutStore, RolloutWriter } from '../lib/storage/rollouts';
import { SettingsError } from '../lib/settings/table';
import { download, getStores } from './data.svelte';
import { notices } from './notices.svelte';

const MB = 1024 * 1024;
/** Failed writes in a row after which keeping stops for the visit. */
const MAX_FAILURES = 3;

let storePromise: Promise<RolloutStore> | null = null;
/** The app's rollout store (one, so its table of sizes is shared by the writer and the view). */
export function rolloutStore(): Promise<RolloutStore> {
  storePromise ??= getStores()
    .then((s) => new RolloutStore(s.db))
    .catch((e: unknown) => {
      storePromise = null;
      throw e;
    });
  return storePromise;
}

export class RolloutsState {
  keep = $state(ROLLOUT_SETTINGS.defaults.keep);
  capMb = $state(ROLLOUT_SETTINGS.defaults.capMb);
  settingsError = $state<string | null>(null);
  /** Bytes and iterations stored over all runs (after the latest write). */
  usage = $state.raw<{ bytes: number; iterations: number } | null>(null);
  exporting = $state(false);
  private settingsLoaded: Promise<void> | null = null;
  /** Failed writes in a row. */
  private failures = 0;
  /** Open history views, told about every committed write. */
  private readonly browsers = new Set<RolloutBrowser>();

  private writer = new RolloutWriter(
    () => rolloutStore(),
    () => this.capMb * MB,
    {
      onDropStart: () =>
        notices.add(
          'info',
          `The rollout history reached its ${this.capMb} MB cap: the oldest iterations are now dropped as new ones are kept. Change the cap under “Rollout history”.`,
        ),
      onWritten: (result, logs) => {
        this.failures = 0;
        this.usage = { bytes: result.totalBytes, iterations: result.iterations };
        for (const b of this.browsers) b.afterWrite(logs, result.dropped);
      },
      onError: (e, logs) => {
        const why = toStorageError(e, 'save the rollout history').message;
        // One notice, not one per iteration; after a few failures in a row keeping stops for this visit.
        if (++this.failures === 1)
          notices.add(
            'warning',
            `The rollouts of iteration ${logs.map((l) => l.iteration).join(', ')} were not kept: ${why} Training goes on.`,
          );
        else if (this.failures === MAX_FAILURES) {
          this.keep = false;
          notices.add('warning', `Stopped keeping rollouts for this visit after ${MAX_FAILURES} failed writes: ${why}`);
        }
      },
    },
  );

  /** A history view registers while it is on screen (returns the unregister function). */
  watch(b: RolloutBrowser): () => void {
    this.browsers.add(b);
    return () => this.browsers.delete(b);
  }

  /** Read the settings once (called before the first write and by the view). */
  loadSettings(): Promise<void> {
    this.settingsLoaded ??= (async () => {
      try {
        const saved = await getSetting<Partial<RolloutSettings>>((await getStores()).db, ROLLOUT_SETTINGS_KEY);
        const s = ROLLOUT_SETTINGS.validate(saved ?? {});
        this.keep = s.keep;
        this.capMb = s.capMb;
      } catch {
        // A broken or missing row: the defaults.
      }
      await this.refreshUsage();
    })();
    return this.settingsLoaded;
  }

  async refreshUsage(): Promise<void> {
    try {
      this.usage = await (await rolloutStore()).usage();
    } catch (e) {
      this.settingsError = (e as Error).message;
    }
  }

  /** Change a setting (checked by the table), save it, and trim at once when the cap went down. */
  async set<K extends keyof RolloutSettings>(key: K, value: RolloutSettings[K]): Promise<boolean> {
    let next: RolloutSettings;
    try {
      next = ROLLOUT_SETTINGS.validate({ keep: this.keep, capMb: this.capMb, [key]: value });
    } catch (e) {
      this.settingsError = e instanceof SettingsError ? e.message : String(e);
      return false;
    }
    this.settingsError = null;
    this.keep = next.keep;
    this.capMb = next.capMb;
    try {
      await putSetting((await getStores()).db, ROLLOUT_SETTINGS_KEY, { ...next });
      if (key === 'capMb') {
        await this.writer.flushed();
        const r = await (await rolloutStore()).trim(next.capMb * MB);
        if (r.dropped.length) {
          notices.add('info', `Dropped the ${r.dropped.length} oldest iterations to fit the new ${next.capMb} MB cap.`);
          for (const b of this.browsers) if (b.runId) await b.open(b.runId, b.iteration ?? undefined);
        }
        await this.refreshUsage();
      }
      return true;
    } catch (e) {
      this.settingsError = toStorageError(e, 'save the settings').message;
      return false;
    }
  }

  /** Keep one finished iteration (its `runId` filled in here); returns at once. */
  record(log: RolloutLog, runId: string): void {
    if (!this.keep) return;
    this.writer.add(withBytes({ ...log, runId }));
  }

  /** Resolves when every kept iteration so far is written (tests, export). */
  flushed(): Promise<void> {
    return this.writer.flushed();
  }

  /** A run went back to a checkpoint: forget its iterations after it (they will be run again). */
  async truncate(runId: string, afterIteration: number): Promise<void> {
    try {
      await this.writer.flushed();
      await (await rolloutStore()).deleteRun(runId, afterIteration);
      for (const b of this.browsers) if (b.runId === runId) await b.open(runId);
    } catch (e) {
      notices.add('warning', toStorageError(e, 'trim the rollout history').message);
    }
  }

  /** A run was deleted (its rows went with it): forget cached sizes and close its views. */
  forget(runId: string): void {
    void rolloutStore().then((s) => s.invalidate());
    for (const b of this.browsers) if (b.runId === runId) b.close();
  }

  /** Download a run's whole history as JSONL (read one iteration at a time). */
  async exportJsonl(runId: string | null): Promise<void> {
    if (!runId || this.exporting) return;
    this.exporting = true;
    try {
      await this.writer.flushed();
      const store = await rolloutStore();
      const parts: string[] = [];
      for (const it of await store.iterations(runId)) {
        const log = await store.get(runId, it);
        if (log) parts.push(rolloutJsonl(log).join('\n') + '\n');
      }
      if (!parts.length) {
        notices.add('info', 'No rollouts kept for this run yet.');
        return;
      }
      download(`rollouts-${runId.slice(0, 8)}.jsonl`, new Blob(parts, { type: 'application/jsonl' }));
    } catch (e) {
      notices.add('error', toStorageError(e, 'export the rollout history').message);
    } finally {
      this.exporting = false;
    }
  }
}

export const rolloutsState = new RolloutsState();

/** One history view's browsing state: which run, which iteration, search, sort, the row opened. */
export class RolloutBrowser {
  runId = $state<string | null>(null);
  iterations = $state.raw<number[]>([]);
  /** Position in `iterations` of the one on screen. */
  index = $state(0);
  log = $state.raw<RolloutLog | null>(null);
  rows = $state.raw<RolloutRow[]>([]);
  search = $state('');
  sort = $state<RolloutSort>('order');
  /** Row (index in the iteration) whose tokens are open. */
  selected = $state<number | null>(null);
  loading = $state(false);
  error = $state<string | null>(null);

  readonly visible = $derived(filterRows(this.rows, this.search, this.sort));
  readonly tokens = $derived(this.log && this.selected !== null ? rowTokens(this.log, this.selected) : null);
  readonly iteration = $derived(this.iterations[this.index] ?? null);

  /** The latest `show` request (older ones in flight are dropped when they land). */
  private want = 0;

  /** New iterations of this run join the scrubber (followed when the newest was on screen). */
  afterWrite(logs: readonly RolloutLog[], dropped: [string, number][]): void {
    if (!this.runId) return;
    const mine = logs.filter((l) => l.runId === this.runId).map((l) => l.iteration);
    const gone = new Set(dropped.filter((k) => k[0] === this.runId).map((k) => k[1]));
    if (!mine.length && !gone.size) return;
    const atEnd = this.index >= this.iterations.length - 1;
    const current = this.iteration;
    const next = [...new Set([...this.iterations.filter((i) => !gone.has(i)), ...mine])].sort((a, b) => a - b);
    this.iterations = next;
    if (atEnd || current === null || gone.has(current)) void this.show(next.length - 1);
    else this.index = next.indexOf(current);
  }

  /** Browse a run's history, at `iteration` (default the newest). */
  async open(runId: string, iteration?: number): Promise<void> {
    if (this.runId !== runId) {
      this.search = '';
      this.sort = 'order';
      this.selected = null;
    }
    this.runId = runId;
    this.error = null;
    void rolloutsState.loadSettings();
    try {
      const its = await (await rolloutStore()).iterations(runId);
      if (this.runId !== runId) return;
      this.iterations = its;
      const at = iteration !== undefined ? its.indexOf(iteration) : -1;
      await this.show(at >= 0 ? at : its.length - 1);
    } catch (e) {
      this.error = (e as Error).message;
    }
  }

  close(): void {
    this.runId = null;
    this.iterations = [];
    this.log = null;
    this.rows = [];
    this.selected = null;
    this.want++;
  }

  /** Show the iteration at position `index` (reads only that one from IndexedDB). */
  async show(index: number): Promise<void> {
    const runId = this.runId;
    if (!runId || !this.iterations.length) {
      this.log = null;
      this.rows = [];
      return;
    }
    const i = Math.max(0, Math.min(this.iterations.length - 1, Math.round(index)));
    this.index = i;
    const ticket = ++this.want;
    this.loading = true;
    try {
      const log = await (await rolloutStore()).get(runId, this.iterations[i]);
      if (ticket !== this.want) return; // superseded by a newer scrub position
      const keepRow = this.selected !== null && log && this.selected < log.prompts.length ? this.selected : null;
      this.log = log ?? null;
      this.rows = log ? rolloutRows(log) : [];
      this.selected = keepRow;
      this.error = log ? null : `Iteration ${this.iterations[i]} is no longer kept (dropped by the size cap).`;
    } catch (e) {
      if (ticket === this.want) this.error = (e as Error).message;
    } finally {
      if (ticket === this.want) this.loading = false;
    }
  }
}
