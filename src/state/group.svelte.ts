/**
 * GRPO and RLOO on the Train page: the settings (their tables, src/lib/rlhf/grpo-config.ts and
 * rloo-config.ts), a run in the worker one iteration per job so pause is responsive, live
 * TRL-named metrics, and each iteration's groups for the group inspector. Prompts and the reward
 * are the Train page's (the same reward sources as PPO: a reward model, a scripted labeller or
 * the user's JavaScript functions).
 *
 * Runs are saved like PPO runs (the `runs` store, tensors in chunks: `RunStore.saveGroup`) every
 * `checkpointEvery` iterations (the Train page's setting), on pause and when the page is hidden,
 * with their setup (settings, prompts, reward functions) and metric history; they are listed on
 * the Runs page with their algorithm, and the newest one of an algorithm can be resumed after a
 * reload (`resumeSaved`).
 */
import type { GroupEvent, GroupSetup, GroupStatus } from '../lib/engine/types';
import type { GroupRunSave } from '../lib/data/saved';
import { toStorageError } from '../lib/storage/db';
import type { GroupView } from '../lib/rlhf/grpo';
import { GRPO_SETTINGS, type GrpoConfig } from '../lib/rlhf/grpo-config';
import { RLOO_SETTINGS, type RlooConfig } from '../lib/rlhf/rloo-config';
import { JobCancelledError } from '../lib/engine/errors';
import { askPersistence } from './data.svelte';
import { engineState } from './engine.svelte';
import { notices } from './notices.svelte';
import { rewardFnState } from './reward-fn.svelte';
import { runStore, runsState } from './runs.svelte';
import { trainState } from './train.svelte';

export type GroupAlgo = 'grpo' | 'rloo';

export interface MetricRow {
  step: number;
  metrics: Record<string, number>;
}

/** Iterations whose groups the inspector keeps. */
const KEEP_GROUPS = 200;
let jobCounter = 0;

export class GroupRunState {
  algo = $state<GroupAlgo>('grpo');
  grpo = $state<GrpoConfig>({ ...GRPO_SETTINGS.defaults });
  rloo = $state<RlooConfig>({ ...RLOO_SETTINGS.defaults });

  /** The algorithm of the run in the engine, when there is one. */
  created = $state<GroupAlgo | null>(null);
  running = $state(false);
  iteration = $state(0);
  history = $state.raw<MetricRow[]>([]);
  /** Each iteration's groups (newest last), for the inspector. */
  groups = $state.raw<{ iteration: number; groups: GroupView[] }[]>([]);
  error = $state<string | null>(null);
  configError = $state<string | null>(null);
  /** Id of the run in the `runs` store (set when a run starts or is resumed). */
  runId = $state<string | null>(null);
  /** The newest saved run of the shown algorithm, offered for resuming when none is loaded. */
  savedRun = $state.raw<{ id: string; algo: GroupAlgo; iteration: number; updatedAt: number; name: string } | null>(
    null,
  );
  lastSavedIteration = $state<number | null>(null);
  busy = $state(false);

  private pauseRequested = false;
  private jobId: string | null = null;
  private setup: GroupSetup | null = null;
  private saving = false;
  private saveAfterIteration = false;

  readonly table = $derived(this.algo === 'grpo' ? GRPO_SETTINGS : RLOO_SETTINGS);

  /** The shown algorithm's settings. */
  config(): GrpoConfig | RlooConfig {
    return this.algo === 'grpo' ? this.grpo : this.rloo;
  }

  /** Edit a setting; during a run of this algorithm it applies from the next iteration (or is refused with a message). */
  async setConfig(key: string, value: unknown): Promise<void> {
    const c = this.config() as unknown as Record<string, unknown>;
    const prev = c[key];
    // A blur after a refused edit repeats the value the input shows again: nothing to do.
    if (JSON.stringify(prev) === JSON.stringify(value)) return;
    c[key] = value;
    this.configError = null;
    if (this.created !== this.algo) return;
    try {
      const next = await engineState.engine.groupUpdateConfig({ [key]: value });
      if (this.algo === 'grpo') this.grpo = { ...(next as GrpoConfig) };
      else this.rloo = { ...(next as RlooConfig) };
    } catch (e) {
      c[key] = prev;
      this.configError = (e as Error).message;
    }
  }

  /** A new run of the shown algorithm on the Train page's prompts and reward, then play. */
  async start(): Promise<void> {
    if (this.running) return;
    this.error = null;
    const ppo = trainState.buildSetup();
    try {
      const setup: GroupSetup = {
        algo: this.algo,
        config: $state.snapshot(this.config()),
        prompts: ppo.prompts,
        reward: ppo.reward,
        name: `${this.algo.toUpperCase()} · ${trainState.promptSet}`,
      };
      const status: GroupStatus = await engineState.engine.groupCreate(setup);
      this.created = status.algo;
      this.setup = status.setup;
      this.runId = crypto.randomUUID();
      this.savedRun = null;
      this.lastSavedIteration = null;
      this.iteration = 0;
      this.history = [];
      this.groups = [];
    } catch (e) {
      this.error = (e as Error).message;
      return;
    }
    await this.play();
  }

  /** Iterations until paused. */
  async play(): Promise<void> {
    if (!this.created || this.running) return;
    this.running = true;
    this.pauseRequested = false;
    try {
      while (!this.pauseRequested) {
        this.jobId = `group-${++jobCounter}`;
        const status = await engineState.engine.groupRun(this.jobId, { iterations: 1 }, (e) => this.onEvent(e));
        this.jobId = null;
        this.iteration = status.iteration;
        this.setup = status.setup;
        const every = trainState.checkpointEvery;
        if ((every > 0 && status.iteration % every === 0) || this.saveAfterIteration) {
          this.saveAfterIteration = false;
          await this.save();
        }
      }
    } catch (e) {
      if (!(e instanceof JobCancelledError)) this.error = (e as Error).message;
    } finally {
      this.running = false;
      this.jobId = null;
    }
    // Paused (or stopped by an error; a failed iteration is dropped): keep what was reached.
    if (this.created && this.lastSavedIteration !== this.iteration) await this.save();
  }

  /** Stop after the current iteration. */
  pause(): void {
    this.pauseRequested = true;
  }

  /** Stop now (a half-done iteration is dropped) and forget the run; its checkpoint stays saved. */
  async reset(): Promise<void> {
    this.pauseRequested = true;
    this.runId = null;
    if (this.jobId) await engineState.engine.cancel(this.jobId).catch(() => false);
    await engineState.engine.groupDispose().catch(() => undefined);
    this.created = null;
    this.setup = null;
    this.lastSavedIteration = null;
    this.iteration = 0;
    this.history = [];
    this.groups = [];
    this.error = null;
  }

  // ------------------------------------------------------------------ checkpoints

  /** Which saved run of the shown algorithm can be resumed (when no run of it is loaded). */
  async refresh(): Promise<void> {
    if (this.created === this.algo) return;
    const algo = this.algo;
    try {
      const r = await (await runStore()).latestGroup(algo);
      if (this.algo !== algo) return;
      this.savedRun = r
        ? { id: r.id, algo, iteration: r.state.iteration, updatedAt: r.updatedAt, name: r.setup.name ?? r.id }
        : null;
    } catch (e) {
      notices.add('error', toStorageError(e, 'read the saved runs').message);
    }
  }

  /** Save the run: state (weights and Adam in chunks), setup and metric history (between iterations only). */
  async save(): Promise<void> {
    // Only between iterations (no job in flight): the engine's state is whole then.
    if (!this.runId || !this.setup || !this.created || this.jobId || this.saving) return;
    this.saving = true;
    try {
      const state = await engineState.engine.groupState();
      const rec: GroupRunSave = {
        id: this.runId,
        kind: state.algo,
        setup: $state.snapshot(this.setup) as GroupSetup,
        state,
        history: this.history.filter((r) => r.step < state.iteration),
        updatedAt: Date.now(),
      };
      askPersistence();
      await (await runStore()).saveGroup(rec, runsState.currentParent());
      this.lastSavedIteration = state.iteration;
    } catch (e) {
      notices.add(
        'error',
        `The ${this.created?.toUpperCase()} checkpoint was not saved: ${toStorageError(e, 'save the run').message}`,
      );
    } finally {
      this.saving = false;
    }
  }

  /** Page hidden: save now if paused, else right after the current iteration. */
  onHidden(): void {
    if (!this.created) return;
    if (this.jobId) this.saveAfterIteration = true;
    else if (this.lastSavedIteration !== this.iteration) void this.save();
  }

  /** Rebuild the saved run offered in `savedRun` from its checkpoint (paused; press Resume to go on). */
  async resumeSaved(): Promise<boolean> {
    const saved = this.savedRun;
    if (!saved || this.running || this.busy) return false;
    this.busy = true;
    this.error = null;
    try {
      const loaded = await (await runStore()).loadGroup(saved.id);
      if (!loaded) throw new Error('The saved run is gone (deleted in another tab?).');
      const rec = loaded.run;
      const status = await engineState.engine.groupCreate(rec.setup, loaded.state);
      this.algo = status.algo;
      if (status.algo === 'grpo') this.grpo = { ...(status.config as GrpoConfig) };
      else this.rloo = { ...(status.config as RlooConfig) };
      this.created = status.algo;
      this.setup = status.setup;
      this.runId = rec.id;
      this.iteration = status.iteration;
      this.history = rec.history.filter((r) => r.step < status.iteration);
      this.groups = [];
      this.lastSavedIteration = status.iteration;
      this.savedRun = null;
      trainState.rewardKind = rec.setup.reward.kind;
      if (rec.setup.reward.kind === 'function') rewardFnState.functions = structuredClone(rec.setup.reward.functions);
      notices.add('info', `Resumed ${status.algo.toUpperCase()} run at iteration ${status.iteration}.`);
      return true;
    } catch (e) {
      this.error = (e as Error).message;
      return false;
    } finally {
      this.busy = false;
    }
  }

  private onEvent(e: GroupEvent): void {
    const m = e.metrics;
    const row: Record<string, number> = {};
    for (const [k, v] of Object.entries(m)) if (typeof v === 'number' && k !== 'iteration') row[k] = v;
    this.history = [...this.history, { step: m.iteration, metrics: row }];
    this.groups = [...this.groups, { iteration: m.iteration, groups: e.groups }].slice(-KEEP_GROUPS);
    this.iteration = m.iteration;
  }
}

export const groupState = new GroupRunState();
