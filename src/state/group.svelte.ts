/**
 * GRPO, RLOO and online DPO on the Train page: the settings (their tables,
 * src/lib/rlhf/grpo-config.ts, rloo-config.ts, online-dpo-config.ts), a run in the worker one
 * iteration per job so pause is responsive, live TRL-named metrics, and each iteration's groups
 * (GRPO / RLOO) or judged pairs (online DPO) for the inspectors. Prompts and the reward are the
 * Train page's (the same reward sources as PPO: a reward model, a scripted labeller or the
 * user's JavaScript functions). Each iteration's whole batch goes to the rollout history
 * (`rollouts.svelte.ts`) under the run's id. After every iteration the run-health alarms that
 * apply to GRPO / RLOO (`evaluateGroupAlarms` in src/lib/rlhf/alarms.ts) are evaluated; these runs
 * keep no checkpoint, so an alarm offers its suggested change live (from the next iteration), not a rewind.
 */
import type { GroupEvent, GroupSetup, GroupStatus } from '../lib/engine/types';
import type { GroupView } from '../lib/rlhf/grpo';
import { GRPO_SETTINGS, type GrpoConfig } from '../lib/rlhf/grpo-config';
import { RLOO_SETTINGS, type RlooConfig } from '../lib/rlhf/rloo-config';
import type { OnlinePairView } from '../lib/rlhf/online-dpo';
import { ONLINE_DPO_SETTINGS, type OnlineDpoConfig } from '../lib/rlhf/online-dpo-config';
import { JobCancelledError } from '../lib/engine/errors';
import { AlarmEpisodes, evaluateGroupAlarms, type Alarm, type GroupAlarmConfig } from '../lib/rlhf/alarms';
import { engineState } from './engine.svelte';
import { trainState } from './train.svelte';
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
  /** Id of the run in the engine (its rollouts are kept under it). */
  runId = $state<string | null>(null);
  running = $state(false);
  iteration = $state(0);
  history = $state.raw<MetricRow[]>([]);
  /** Each iteration's groups (newest last), for the inspector. */
  groups = $state.raw<{ iteration: number; groups: GroupView[] }[]>([]);
  /** Online DPO: each iteration's judged pairs (newest last), for the pair inspector. */
  pairs = $state.raw<{ iteration: number; pairs: OnlinePairView[] }[]>([]);
  error = $state<string | null>(null);
  configError = $state<string | null>(null);

  /** Alarms fired in this run (newest last); dismissed ones keep their chart marker. */
  alarms = $state.raw<GroupRunAlarm[]>([]);
  readonly openAlarms = $derived(this.alarms.filter((a) => !a.dismissed));
  readonly alarmMarkers = $derived(this.alarms.map((a) => ({ x: a.iteration, label: a.id })));

  private pauseRequested = false;
  private jobId: string | null = null;
  private episodes = new AlarmEpisodes();

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
      const status: GroupStatus = await engineState.engine.groupCreate({
        algo: this.algo,
        config: $state.snapshot(this.config()),
        prompts: ppo.prompts,
        reward: ppo.reward,
        name: `${algoLabel(this.algo)} · ${trainState.promptSet}`,
      });
      this.created = status.algo;
      this.runId = crypto.randomUUID();
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
    if (status.algo === 'grpo') this.grpo = { ...(status.config as GrpoConfig) };
    else this.rloo = { ...(status.config as RlooConfig) };
    this.created = status.algo;
    this.iteration = 0;
    this.history = [];
    this.groups = [];
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
        this.iteration = status.iteration;
      }
    } catch (e) {
      if (!(e instanceof JobCancelledError)) this.error = (e as Error).message;
    } finally {
      this.running = false;
      this.jobId = null;
    }
  }

  /** Stop after the current iteration. */
  pause(): void {
    this.pauseRequested = true;
  }

  /** Stop now (a half-done iteration is dropped) and forget the run. */
  async reset(): Promise<void> {
    this.pauseRequested = true;
    if (this.jobId) await engineState.engine.cancel(this.jobId).catch(() => false);
    await engineState.engine.groupDispose().catch(() => undefined);
    this.created = null;
    this.runId = null;
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
