/**
 * GRPO, RLOO and online DPO on the Train page: the settings (their tables,
 * src/lib/rlhf/grpo-config.ts, rloo-config.ts, online-dpo-config.ts), a run in the worker one
 * iteration per job so pause is responsive, live TRL-named metrics, and each iteration's groups
 * (GRPO / RLOO) or judged pairs (online DPO) for the inspectors. Prompts and the reward are the
 * Train page's (the same reward sources as PPO: a reward model, a scripted labeller or the
 * user's JavaScript functions). Each iteration's whole batch goes to the rollout history
 * (`rollouts.svelte.ts`) under the run's id. After every iteration the run-health alarms that
 * apply to GRPO / RLOO (`evaluateGroupAlarms` in src/lib/rlhf/alarms.ts) are evaluated; an alarm
 * offers its suggested change live (from the next iteration), not a rewind.
 *
 * GRPO / RLOO / online DPO runs are saved like PPO runs (the `runs` store, tensors in chunks: `RunStore.saveGroup`)
 * every `checkpointEvery` iterations (the Train page's setting), on pause and when the page is
 * hidden, with their setup (settings, prompts, reward functions) and metric history; they are
 * listed on the Runs page with their algorithm, and the newest one of an algorithm can be resumed
 * after a reload (`resumeSaved`). When the backend fails under a run (`DeviceLostError`: a lost
 * WebGPU device, a restarted backend), the run is paused at its last save, the page says so, and
 * Resume rebuilds it from that save on the new backend.
 */
import type { GroupEvent, GroupSetup, GroupStatus } from '../lib/engine/types';
import type { GroupRunSave } from '../lib/data/saved';
import { toStorageError } from '../lib/storage/db';
import type { GroupView } from '../lib/rlhf/grpo';
import { GRPO_SETTINGS, type GrpoConfig } from '../lib/rlhf/grpo-config';
import { RLOO_SETTINGS, type RlooConfig } from '../lib/rlhf/rloo-config';
import type { OnlinePairView } from '../lib/rlhf/online-dpo';
import { ONLINE_DPO_SETTINGS, type OnlineDpoConfig } from '../lib/rlhf/online-dpo-config';
import { DeviceLostError, JobCancelledError, NotReadyError } from '../lib/engine/errors';
import { AlarmEpisodes, evaluateGroupAlarms, type Alarm, type GroupAlarmConfig } from '../lib/rlhf/alarms';
import { askPersistence } from './data.svelte';
import { engineState } from './engine.svelte';
import { notices } from './notices.svelte';
import { rewardFnState } from './reward-fn.svelte';
import { runStore, runsState } from './runs.svelte';
import { backendLostMessage, runGone, trainState } from './train.svelte';
import { rolloutsState } from './rollouts.svelte';

export type GroupAlgo = 'grpo' | 'rloo' | 'online-dpo';

/** How the page names an algorithm. */
export const algoLabel = (a: GroupAlgo): string => (a === 'online-dpo' ? 'Online DPO' : a.toUpperCase());

export interface MetricRow {
  step: number;
  metrics: Record<string, number>;
}

/** An alarm as the GRPO/RLOO panel shows it. */
export interface GroupRunAlarm extends Alarm<GroupAlarmConfig> {
  dismissed: boolean;
  /** Its suggested change was applied to the run. */
  applied: boolean;
}

/** Iterations whose groups the inspector keeps. */
const KEEP_GROUPS = 200;
let jobCounter = 0;

export class GroupRunState {
  algo = $state<GroupAlgo>('grpo');
  grpo = $state<GrpoConfig>({ ...GRPO_SETTINGS.defaults });
  rloo = $state<RlooConfig>({ ...RLOO_SETTINGS.defaults });
  odpo = $state<OnlineDpoConfig>({ ...ONLINE_DPO_SETTINGS.defaults });

  /** The algorithm of the run in the engine, when there is one. */
  created = $state<GroupAlgo | null>(null);
  running = $state(false);
  iteration = $state(0);
  history = $state.raw<MetricRow[]>([]);
  /** Each iteration's groups (newest last), for the inspector. */
  groups = $state.raw<{ iteration: number; groups: GroupView[] }[]>([]);
  /** Online DPO: each iteration's judged pairs (newest last), for the pair inspector. */
  pairs = $state.raw<{ iteration: number; pairs: OnlinePairView[] }[]>([]);
  error = $state<string | null>(null);
  configError = $state<string | null>(null);
  /** Id of the run in the `runs` store and of its rollouts (set when a run starts or is resumed). */
  runId = $state<string | null>(null);
  /** The newest saved run of the shown algorithm, offered for resuming when none is loaded. */
  savedRun = $state.raw<{ id: string; algo: GroupAlgo; iteration: number; updatedAt: number; name: string } | null>(
    null,
  );
  lastSavedIteration = $state<number | null>(null);
  busy = $state(false);
  /** The backend failed under the run: the engine's copy is gone; Resume rebuilds it from its last save. */
  backendLost = $state(false);

  /** Alarms fired in this run (newest last); dismissed ones keep their chart marker. */
  alarms = $state.raw<GroupRunAlarm[]>([]);
  readonly openAlarms = $derived(this.alarms.filter((a) => !a.dismissed));
  readonly alarmMarkers = $derived(this.alarms.map((a) => ({ x: a.iteration, label: a.id })));

  private pauseRequested = false;
  private jobId: string | null = null;
  private episodes = new AlarmEpisodes();
  private setup: GroupSetup | null = null;
  private saving = false;
  private saveAfterIteration = false;

  readonly table = $derived(
    this.algo === 'grpo' ? GRPO_SETTINGS : this.algo === 'rloo' ? RLOO_SETTINGS : ONLINE_DPO_SETTINGS,
  );

  /** The shown algorithm's settings. */
  config(): GrpoConfig | RlooConfig | OnlineDpoConfig {
    return this.algo === 'grpo' ? this.grpo : this.algo === 'rloo' ? this.rloo : this.odpo;
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
      else if (this.algo === 'rloo') this.rloo = { ...(next as RlooConfig) };
      else this.odpo = { ...(next as OnlineDpoConfig) };
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
      await rolloutsState.loadSettings();
      const setup: GroupSetup = {
        algo: this.algo,
        config: $state.snapshot(this.config()),
        prompts: ppo.prompts,
        reward: ppo.reward,
        name: `${algoLabel(this.algo)} · ${trainState.promptSet}`,
      };
      const status: GroupStatus = await engineState.engine.groupCreate(setup);
      this.created = status.algo;
      this.setup = status.setup;
      this.runId = crypto.randomUUID();
      this.savedRun = null;
      this.backendLost = false;
      this.lastSavedIteration = null;
      this.iteration = 0;
      this.history = [];
      this.groups = [];
      this.pairs = [];
      this.clearAlarms();
    } catch (e) {
      this.error = (e as Error).message;
      return;
    }
    await this.play();
  }

  /**
   * A new run with the given setup, not started (the scenario runner drives it with
   * `playUntil`); its settings become the form's. Throws the engine's error.
   */
  async createRun(setup: GroupSetup): Promise<void> {
    if (this.running) throw new Error('A GRPO or RLOO run is going on: pause it first.');
    this.error = null;
    const status: GroupStatus = await engineState.engine.groupCreate(setup);
    this.algo = status.algo;
    this.takeConfig(status);
    this.created = status.algo;
    this.setup = status.setup;
    this.runId = crypto.randomUUID();
    this.savedRun = null;
    this.backendLost = false;
    this.lastSavedIteration = null;
    this.iteration = 0;
    this.history = [];
    this.groups = [];
    this.pairs = [];
    this.clearAlarms();
  }

  /**
   * Iterations until `iteration` reaches `target`; when `signal` aborts, the iteration under way
   * is cancelled (dropped) and the signal's reason is thrown. Other failures are thrown too.
   */
  async playUntil(target: number, signal: AbortSignal, onIteration?: () => void): Promise<void> {
    if (!this.created) throw new Error('No GRPO or RLOO run to play.');
    if (this.running) throw new Error('The run is already going on.');
    signal.throwIfAborted();
    this.running = true;
    this.pauseRequested = false;
    const cancel = () => {
      if (this.jobId) void engineState.engine.cancel(this.jobId).catch(() => false);
    };
    signal.addEventListener('abort', cancel, { once: true });
    try {
      while (this.iteration < target) {
        this.jobId = `group-${++jobCounter}`;
        const status = await engineState.engine.groupRun(this.jobId, { iterations: 1 }, (e) => this.onEvent(e));
        this.iteration = status.iteration;
        onIteration?.();
        signal.throwIfAborted();
      }
    } catch (e) {
      signal.throwIfAborted();
      this.error = (e as Error).message;
      throw e;
    } finally {
      signal.removeEventListener('abort', cancel);
      this.running = false;
      this.jobId = null;
    }
  }

  /** Iterations until paused. */
  async play(): Promise<void> {
    if (!this.created || this.running) return;
    if (!(await this.rebuildAfterLoss())) return;
    this.running = true;
    this.pauseRequested = false;
    try {
      while (!this.pauseRequested) {
        this.jobId = `group-${++jobCounter}`;
        const status = await engineState.engine.groupRun(
          this.jobId,
          { iterations: 1, keepRollouts: rolloutsState.keep },
          (e) => this.onEvent(e),
        );
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
      if (e instanceof DeviceLostError) await this.lostBackend(e);
      else if (e instanceof NotReadyError && this.created) await this.lostBackend(runGone(algoLabel(this.created)));
      else if (!(e instanceof JobCancelledError)) this.error = (e as Error).message;
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
    this.runId = null;
    this.setup = null;
    this.backendLost = false;
    this.lastSavedIteration = null;
    this.iteration = 0;
    this.history = [];
    this.groups = [];
    this.pairs = [];
    this.error = null;
    this.clearAlarms();
  }

  private clearAlarms(): void {
    this.alarms = [];
    this.episodes.reset();
  }

  /** Evaluate the alarms on the history (after each iteration); new ones are shown. */
  private checkAlarms(): void {
    const algo = this.created;
    // Online DPO logs other metrics (objective/…); the group alarms do not apply to it.
    if (!algo || algo === 'online-dpo') return;
    const config = algo === 'grpo' ? this.grpo : this.rloo;
    const fresh = this.episodes.next(evaluateGroupAlarms(this.history, config));
    if (fresh.length) this.alarms = [...this.alarms, ...fresh.map((a) => ({ ...a, dismissed: false, applied: false }))];
  }

  /** Apply an alarm's suggested change to the running run (from its next iteration). */
  async applySuggestion(alarm: GroupRunAlarm): Promise<boolean> {
    const algo = this.created;
    if (!algo || algo === 'online-dpo') return false;
    try {
      const next = await engineState.engine.groupUpdateConfig(alarm.suggestion.change);
      if (algo === 'grpo') this.grpo = { ...(next as GrpoConfig) };
      else this.rloo = { ...(next as RlooConfig) };
      this.configError = null;
      this.alarms = this.alarms.map((a) => (a === alarm ? { ...a, applied: true, dismissed: true } : a));
      return true;
    } catch (e) {
      this.configError = (e as Error).message;
      return false;
    }
  }

  /** Hide an alarm (its chart marker stays). */
  dismissAlarm(alarm: GroupRunAlarm): void {
    this.alarms = this.alarms.map((a) => (a === alarm ? { ...a, dismissed: true } : a));
  }

  // ------------------------------------------------------------------ checkpoints

  /** The settings form shows the engine's settings of `status`'s algorithm. */
  private takeConfig(status: GroupStatus): void {
    if (status.algo === 'grpo') this.grpo = { ...(status.config as GrpoConfig) };
    else if (status.algo === 'rloo') this.rloo = { ...(status.config as RlooConfig) };
    else this.odpo = { ...(status.config as OnlineDpoConfig) };
  }

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
    // After a backend failure the engine's run is gone: its last save is what is kept.
    if (!this.runId || !this.setup || !this.created || this.jobId || this.saving || this.backendLost) return;
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
        `The ${this.created ? algoLabel(this.created) : ''} checkpoint was not saved: ${toStorageError(e, 'save the run').message}`,
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
      this.takeConfig(status);
      this.created = status.algo;
      this.setup = status.setup;
      this.runId = rec.id;
      this.iteration = status.iteration;
      this.history = rec.history.filter((r) => r.step < status.iteration);
      this.groups = [];
      this.pairs = [];
      this.clearAlarms();
      this.lastSavedIteration = status.iteration;
      this.savedRun = null;
      this.backendLost = false;
      trainState.rewardKind = rec.setup.reward.kind;
      if (rec.setup.reward.kind === 'function') rewardFnState.functions = structuredClone(rec.setup.reward.functions);
      notices.add('info', `Resumed ${algoLabel(status.algo)} run at iteration ${status.iteration}.`);
      return true;
    } catch (e) {
      this.error = (e as Error).message;
      return false;
    } finally {
      this.busy = false;
    }
  }

  /**
   * The backend failed under the run (`DeviceLostError`): pause, show the run as it was at its
   * last save (what Resume rebuilds), and say so in one sentence.
   */
  private async lostBackend(e: Error): Promise<void> {
    this.pauseRequested = true;
    this.backendLost = true;
    const runId = this.runId;
    let saved: number | null = null;
    try {
      if (runId) saved = (await (await runStore()).loadGroup(runId))?.run.state.iteration ?? null;
    } catch {
      /* unreadable: Resume says so */
    }
    if (runId !== this.runId) return; // reset meanwhile
    const at = saved ?? 0;
    this.iteration = at;
    this.history = this.history.filter((r) => r.step < at);
    this.groups = this.groups.filter((g) => g.iteration < at);
    this.pairs = this.pairs.filter((p) => p.iteration < at);
    this.lastSavedIteration = saved;
    if (runId) void rolloutsState.truncate(runId, at);
    this.error = backendLostMessage(e, algoLabel(this.created ?? this.algo), saved);
    notices.add('warning', this.error);
  }

  /** After a backend failure: rebuild the run in the engine from its last save (the start when none). */
  private async rebuildAfterLoss(): Promise<boolean> {
    if (!this.backendLost) return true;
    const setup = this.setup;
    if (!setup || !this.runId || this.busy) return false;
    this.busy = true;
    try {
      const loaded = await (await runStore()).loadGroup(this.runId);
      const status = loaded
        ? await engineState.engine.groupCreate(loaded.run.setup, loaded.state)
        : await engineState.engine.groupCreate(setup);
      this.takeConfig(status);
      this.created = status.algo;
      this.setup = status.setup;
      this.iteration = status.iteration;
      this.history = (loaded?.run.history ?? []).filter((r) => r.step < status.iteration);
      this.groups = this.groups.filter((g) => g.iteration < status.iteration);
      this.pairs = this.pairs.filter((p) => p.iteration < status.iteration);
      this.lastSavedIteration = loaded ? status.iteration : null;
      this.backendLost = false;
      this.error = null;
      return true;
    } catch (e) {
      this.error = (e as Error).message;
      return false;
    } finally {
      this.busy = false;
    }
  }

  private onEvent(e: GroupEvent): void {
    if (e.rollout && this.runId) rolloutsState.record(e.rollout, this.runId);
    const m = e.metrics;
    const row: Record<string, number> = {};
    for (const [k, v] of Object.entries(m)) if (typeof v === 'number' && k !== 'iteration') row[k] = v;
    this.history = [...this.history, { step: m.iteration, metrics: row }];
    if (e.pairs) this.pairs = [...this.pairs, { iteration: m.iteration, pairs: e.pairs }].slice(-KEEP_GROUPS);
    else this.groups = [...this.groups, { iteration: m.iteration, groups: e.groups }].slice(-KEEP_GROUPS);
    this.iteration = m.iteration;
    this.checkAlarms();
  }
}

export const groupState = new GroupRunState();
