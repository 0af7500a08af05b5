/**
 * Train stage (PPO): the run's setup, the loop that calls `ppoRun` one iteration (or one phase)
 * at a time so pause is responsive, live metric history, evaluation samples, per-token traces,
 * checkpoints in IndexedDB's `runs` store (one record per run), and the guards: divergence
 * rollback and the run-health alarms (`src/lib/rlhf/alarms.ts`: KL runaway, gold-vs-proxy
 * reward hacking, mode collapse, …), evaluated after every iteration, each offering a rewind to
 * the last checkpoint saved before it fired with its suggested change applied. While an alarm is
 * open (not dismissed), checkpoints are held so that checkpoint stays the one rewind reaches.
 * Each finished iteration's whole batch goes to the rollout history (`rollouts.svelte.ts`),
 * written in the background. When the backend fails under a run (a lost WebGPU device, a
 * restarted backend: `DeviceLostError`), the run in the engine is gone: the page pauses at its
 * last save, says so, and Resume rebuilds the run from that save on the new backend.
 *
 * Drawing is batched: worker events land in plain arrays and are copied into `$state.raw`
 * fields at most every `FLUSH_MS` (GAN Lab's "draw less often than you train").
 */
import reviewsJson from '../../static/prompts/reviews.json';
import storiesJson from '../../static/prompts/stories.json';
import requestsJson from '../../static/prompts/requests.json';
import type { PpoEvent, PpoPhase, PpoSetup, PpoStatus } from '../lib/engine/types';
import type { EvalPoint, MetricRow, PpoRunSave, SavedPpoRun } from '../lib/data/saved';
import type { AdvantagesResult, RolloutResult, SampleTrace, ScoreResult, UpdateResult } from '../lib/rlhf/ppo';
import { DEFAULT_PPO_CONFIG, type PpoConfig } from '../lib/rlhf/ppo-config';
import { defaultLabellerConfig, type LabellerKind } from '../lib/rlhf/labellers';
import { diversityMetrics } from '../lib/rlhf/diversity';
import {
  AlarmEpisodes,
  evaluateAlarms,
  evalScoreMetrics,
  favouredWords,
  pendingAlarms,
  rolloutStats,
  type Alarm,
} from '../lib/rlhf/alarms';
import { settingsTable } from '../lib/settings/table';
import { toStorageError } from '../lib/storage/db';
import {
  DeviceLostError,
  JobCancelledError,
  NotReadyError,
  PpoDivergedError,
  RewardFunctionError,
} from '../lib/engine/errors';
import { askPersistence } from './data.svelte';
import { engineState } from './engine.svelte';
import { notices } from './notices.svelte';
import { until } from './reactive-wait.svelte';
import { runStore, runsState } from './runs.svelte';
import { rewardFnState } from './reward-fn.svelte';
import { rolloutsState } from './rollouts.svelte';

export const PROMPT_SETS = [
  { id: 'reviews', name: reviewsJson.name, prompts: reviewsJson.prompts },
  { id: 'stories', name: storiesJson.name, prompts: storiesJson.prompts },
  { id: 'requests', name: requestsJson.name, prompts: requestsJson.prompts },
] as const;
export type PromptSetId = (typeof PROMPT_SETS)[number]['id'];

/** Labellers offered as a reward function (the constitution needs rules a user writes). */
export const REWARD_LABELLERS: readonly LabellerKind[] = ['sentiment', 'length', 'keyword'];
export const GOLD_LABELLERS: readonly LabellerKind[] = ['sentiment', 'length', 'keyword', 'constitution'];
export const EVAL_PROMPTS = 4;

/** The Train page's setup that a URL can carry (beside the PPO table). */
export interface TrainSetupSettings {
  promptSet: PromptSetId;
  labeller: LabellerKind;
  gold: LabellerKind | 'none';
  evalEvery: number;
  checkpointEvery: number;
}

export const TRAIN_SETUP_SETTINGS = settingsTable<TrainSetupSettings>(
  {
    promptSet: {
      kind: 'choice',
      choices: PROMPT_SETS.map((p) => p.id),
      default: 'reviews',
      url: 'prompts',
      help: 'Prompt set of the PPO run.',
    },
    labeller: {
      kind: 'choice',
      choices: REWARD_LABELLERS,
      default: 'sentiment',
      help: 'Scripted labeller used as the PPO reward function.',
    },
    gold: {
      kind: 'choice',
      choices: [...GOLD_LABELLERS, 'none'],
      default: 'sentiment',
      help: 'Noise-free gold labeller of the evaluation samples.',
    },
    evalEvery: {
      kind: 'number',
      int: true,
      min: 1,
      max: 10_000,
      default: 5,
      help: 'Sample the evaluation prompts every N iterations.',
    },
    checkpointEvery: {
      kind: 'number',
      int: true,
      min: 1,
      max: 10_000,
      default: 5,
      help: 'Save a checkpoint every K iterations.',
    },
  },
  { what: 'Train page', urlPrefix: '' },
);
const SETUP = TRAIN_SETUP_SETTINGS.defaults;
export const PHASES: readonly PpoPhase[] = ['rollout', 'score', 'advantages', 'update'];

const FLUSH_MS = 250;

/** An alarm as the page shows it: where rewind goes, and whether the user dismissed it. */
export interface RunAlarm extends Alarm {
  /** Iteration of the last checkpoint saved before it fired; null = the start of the run. */
  checkpoint: number | null;
  dismissed: boolean;
}

export type { EvalPoint, MetricRow };

export type PhaseResult =
  | { phase: 'rollout'; iteration: number; result: RolloutResult }
  | { phase: 'score'; iteration: number; result: ScoreResult }
  | { phase: 'advantages'; iteration: number; result: AdvantagesResult }
  | { phase: 'update'; iteration: number; result: UpdateResult };

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let jobCounter = 0;

export class TrainState {
  // ------------------------------------------------------------------ setup
  promptSet = $state<PromptSetId>(SETUP.promptSet);
  rewardKind = $state<PpoSetup['reward']['kind']>('labeller');
  labeller = $state<LabellerKind>(SETUP.labeller);
  gold = $state<LabellerKind | 'none'>(SETUP.gold);
  config = $state<PpoConfig>(structuredClone(DEFAULT_PPO_CONFIG) as PpoConfig);
  evalEvery = $state(SETUP.evalEvery);
  /** Samples per evaluation prompt (`PpoSetup.evalSamples`; more = steadier eval means). */
  evalSamples = $state(1);
  checkpointEvery = $state(SETUP.checkpointEvery);
  /** Name of the active reward model in the engine, if any. */
  activeRm = $state<string | null>(null);

  // ------------------------------------------------------------------ run
  runId = $state<string | null>(null);
  /** The setup the engine's run was created with. */
  setup = $state.raw<PpoSetup | null>(null);
  /** The loop is going (iterations or slow phases). */
  running = $state(false);
  /** A `ppoRun` call is in flight. */
  busy = $state(false);
  pauseRequested = $state(false);
  /** Play phase by phase, pausing between phases so each can be read. */
  slow = $state(false);
  iteration = $state(0);
  nextPhase = $state<PpoPhase>('rollout');
  currentPhase = $state<PpoPhase | null>(null);
  secondsPerIteration = $state<number | null>(null);
  configError = $state<string | null>(null);
  lastError = $state<string | null>(null);

  history = $state.raw<MetricRow[]>([]);
  evals = $state.raw<EvalPoint[]>([]);
  traces = $state.raw<SampleTrace[]>([]);
  latest = $state.raw<{ prompts: string[]; texts: string[]; scores: number[] } | null>(null);
  /** Results of the phases of the iteration being stepped (slow mode). */
  phaseLog = $state.raw<PhaseResult[]>([]);

  /** The run's reward functions differ from the editor's. */
  readonly rewardFnsChanged = $derived.by(() => {
    const r = this.setup?.reward;
    return r?.kind === 'function' && JSON.stringify(r.functions) !== JSON.stringify(rewardFnState.functions);
  });

  /** Give a paused run rewarded by JavaScript functions the editor's code (weights and history stay). */
  async applyRewardFunctions(): Promise<boolean> {
    if (!this.created || this.busy || this.setup?.reward.kind !== 'function' || rewardFnState.problem) return false;
    try {
      this.busy = true;
      const status = await engineState.engine.ppoSetRewardFunctions(rewardFnState.reward().functions);
      this.setup = status.setup;
      this.lastError = null;
      notices.add('info', 'The run uses the new reward functions from the next batch.');
      return true;
    } catch (e) {
      this.fail(e);
      return false;
    } finally {
      this.busy = false;
    }
  }

  // ------------------------------------------------------------------ checkpoints
  /** The newest saved PPO run, offered for resuming when no run is loaded. */
  savedRun = $state.raw<{ id: string; iteration: number; updatedAt: number; name: string } | null>(null);
  lastSavedIteration = $state<number | null>(null);
  saving = $state(false);
  /**
   * The backend failed under the run: the engine's copy is gone (or on a dead device), so the
   * run is paused at its last save and Resume rebuilds it from there first.
   */
  backendLost = $state(false);

  readonly prompts = $derived(PROMPT_SETS.find((s) => s.id === this.promptSet)!.prompts as readonly string[]);
  readonly created = $derived(this.runId !== null);

  // ------------------------------------------------------------------ alarms
  /** Alarms fired in this run's timeline (newest last); dismissed ones keep their chart marker. */
  alarms = $state.raw<RunAlarm[]>([]);
  readonly openAlarms = $derived(this.alarms.filter((a) => !a.dismissed));
  /** Where the charts mark the alarms. */
  readonly alarmMarkers = $derived(this.alarms.map((a) => ({ x: a.iteration, label: a.id })));

  private jobId: string | null = null;
  private rows: MetricRow[] = [];
  private evalRows: EvalPoint[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private saveAfterIteration = false;
  private iterStart = 0;
  private episodes = new AlarmEpisodes();
  /** An alarm condition holds at the newest iteration but is not confirmed yet (checkpoints wait). */
  private alarmPending = false;
  /** Rollout statistics of the iteration being stepped phase by phase (added to its metric row). */
  private pendingRollout: Record<string, number> = {};

  // ------------------------------------------------------------------ setup helpers

  buildSetup(): PpoSetup {
    const prompts = [...this.prompts];
    return {
      prompts,
      evalPrompts: prompts.slice(0, EVAL_PROMPTS),
      config: $state.snapshot(this.config),
      reward:
        this.rewardKind === 'reward-model'
          ? { kind: 'reward-model' }
          : this.rewardKind === 'function'
            ? rewardFnState.reward()
            : { kind: 'labeller', labeller: defaultLabellerConfig(this.labeller) },
      gold: this.gold === 'none' ? undefined : { ...defaultLabellerConfig(this.gold), noise: 0 },
      ...(this.evalSamples !== 1 ? { evalSamples: this.evalSamples } : {}),
      name: `PPO · ${this.promptSet} · ${this.rewardName()}`,
    };
  }

  private rewardName(): string {
    if (this.rewardKind === 'reward-model') return `RM ${this.activeRm ?? ''}`;
    if (this.rewardKind === 'function') return `JS ${rewardFnState.functions.map((f) => f.name).join('+')}`;
    return this.labeller;
  }

  /** After the model loads: which reward model is active, and whether a run can be resumed. */
  async refresh(): Promise<void> {
    try {
      const rm = await engineState.engine.activeRewardModel();
      this.activeRm = rm?.name ?? null;
      if (!this.created && this.rewardKind !== 'function') this.rewardKind = rm ? 'reward-model' : 'labeller';
    } catch {
      this.activeRm = null;
    }
    if (this.created) return;
    await rewardFnState.load();
    if (rewardFnState.selected && this.rewardKind !== 'function') this.rewardKind = 'function';
    try {
      const r = await (await runStore()).latestPpo();
      this.savedRun = r
        ? { id: r.id, iteration: r.state.iteration, updatedAt: r.updatedAt, name: r.setup.name ?? 'PPO run' }
        : null;
    } catch (e) {
      notices.add('error', toStorageError(e, 'read the saved runs').message);
    }
  }

  // ------------------------------------------------------------------ lifecycle

  private resetView(): void {
    this.rows = [];
    this.evalRows = [];
    this.history = [];
    this.evals = [];
    this.traces = [];
    this.latest = null;
    this.phaseLog = [];
    this.lastError = null;
    this.configError = null;
    this.secondsPerIteration = null;
    this.lastSavedIteration = null;
    this.alarms = [];
    this.alarmPending = false;
    this.episodes.reset();
  }

  private applyStatus(s: PpoStatus): void {
    this.iteration = s.iteration;
    this.nextPhase = s.nextPhase;
  }

  /** Create a new run and start the loop. */
  async start(): Promise<void> {
    if (!(await this.createRun())) return;
    // Iteration 0 (the starting model): where the over-optimisation chart's √KL axis begins.
    if (this.evalEvery > 0 && this.setup?.gold && !(await this.evaluateNow()) && this.lastError) return;
    void this.play();
  }

  /**
   * Evaluate now (between iterations), recorded like the periodic evaluations; once per
   * iteration. Used for the iteration-0 point of a run (Start, and the scenario runner).
   */
  async evaluateNow(): Promise<boolean> {
    if (!this.created || this.busy || this.nextPhase !== 'rollout') return false;
    if (this.evalRows.some((e) => e.iteration === this.iteration)) return true;
    this.busy = true;
    try {
      const samples = await engineState.engine.ppoEvaluate();
      if (!samples.length) return false;
      const metrics = diversityMetrics(samples.map((s) => s.text)) as Record<string, number>;
      this.onEvent({ kind: 'eval', iteration: this.iteration, samples, metrics });
      this.flush();
      return true;
    } catch (e) {
      if (e instanceof RewardFunctionError) this.rewardFailed(e);
      else this.fail(e);
      return false;
    } finally {
      this.busy = false;
    }
  }

  /** Rebuild the newest saved run from its checkpoint. */
  async resumeSaved(): Promise<boolean> {
    const saved = this.savedRun;
    if (!saved || this.busy) return false;
    try {
      this.busy = true;
      const loaded = await (await runStore()).loadPpo(saved.id);
      if (!loaded) throw new Error('The saved run is gone (deleted in another tab?).');
      const rec = loaded.run;
      const status = await engineState.engine.ppoCreate(rec.setup, loaded.state);
      this.resetView();
      this.setup = rec.setup;
      this.runId = rec.id;
      this.config = structuredClone(status.config);
      this.evalSamples = rec.setup.evalSamples ?? 1;
      this.rewardKind = rec.setup.reward.kind;
      if (rec.setup.reward.kind === 'function') rewardFnState.functions = structuredClone(rec.setup.reward.functions);
      this.restoreViewFrom(rec);
      this.applyStatus(status);
      this.lastSavedIteration = rec.state.iteration;
      this.savedRun = null;
      this.backendLost = false;
      notices.add('info', `Resumed PPO run at iteration ${status.iteration}.`);
      return true;
    } catch (e) {
      this.fail(e);
      return false;
    } finally {
      this.busy = false;
    }
  }

  private restoreViewFrom(rec: SavedPpoRun): void {
    const n = rec.state.iteration;
    // Iterations after the checkpoint will run again: their kept rollouts go.
    void rolloutsState.truncate(rec.id, n);
    this.rows = rec.history.filter((r) => r.step <= n);
    this.evalRows = rec.evals.filter((e) => e.iteration <= n);
    this.history = [...this.rows];
    this.evals = [...this.evalRows];
    const latest = this.evalRows.at(-1);
    this.latest = latest
      ? {
          prompts: latest.samples.map((s) => s.prompt),
          texts: latest.samples.map((s) => s.text),
          scores: latest.samples.map((s) => s.score),
        }
      : null;
  }

  /** Run iterations (or phases in slow mode) until paused. */
  async play(): Promise<void> {
    if (!this.created || this.running || this.busy) return;
    if (!(await this.rebuildAfterLoss())) return;
    this.running = true;
    this.pauseRequested = false;
    try {
      while (!this.pauseRequested && this.created) {
        const ok = this.slow ? await this.runPhase() : await this.runIteration();
        if (!ok) break;
        // Slow mode's pace, so a class can follow each phase (GAN Lab's slow step): not a poll.
        if (this.slow && !this.pauseRequested) await sleep(900);
      }
    } finally {
      this.running = false;
      this.pauseRequested = false;
    }
    if (this.created && this.nextPhase === 'rollout' && this.lastSavedIteration !== this.iteration) await this.save();
  }

  pause(): void {
    if (this.running) this.pauseRequested = true;
  }

  /** One whole iteration (finishing a half-stepped one first). */
  async step(): Promise<void> {
    if (!this.created || this.running || this.busy) return;
    if (!(await this.rebuildAfterLoss())) return;
    if (await this.runIteration()) if (this.lastSavedIteration !== this.iteration) await this.save();
  }

  /** Only the next phase: rollout → score → KL & advantages → update. */
  async stepPhase(): Promise<void> {
    if (!this.created || this.running || this.busy) return;
    if (!(await this.rebuildAfterLoss())) return;
    await this.runPhase();
  }

  /** Stop now (a half-done iteration is dropped) and forget the run; the checkpoint stays saved. */
  async reset(): Promise<void> {
    this.pauseRequested = true;
    if (this.jobId) await engineState.engine.cancel(this.jobId).catch(() => false);
    await until(() => !this.busy);
    try {
      await engineState.engine.ppoDispose();
    } catch {
      /* nothing to dispose */
    }
    this.runId = null;
    this.setup = null;
    this.backendLost = false;
    this.iteration = 0;
    this.nextPhase = 'rollout';
    this.currentPhase = null;
    this.resetView();
    await this.refresh();
  }

  /** Edit a hyper-parameter; during a run it applies from the next iteration. */
  async setConfig<K extends keyof PpoConfig>(key: K, value: PpoConfig[K]): Promise<void> {
    const prev = this.config[key];
    // A blur after a refused edit repeats the value the input shows again: nothing to do.
    if (JSON.stringify(prev) === JSON.stringify(value)) return;
    this.config[key] = value;
    this.configError = null;
    if (!this.created) return;
    try {
      const next = await engineState.engine.ppoUpdateConfig({ [key]: value } as Partial<PpoConfig>);
      this.config = structuredClone(next);
      if (this.setup) this.setup = { ...this.setup, config: next };
    } catch (e) {
      this.config[key] = prev;
      this.configError = (e as Error).message;
    }
  }

  /** Create a new run (`patch` over `buildSetup()`) without starting the loop; the scenario runner drives it with `playUntil`. */
  async createRun(patch: Partial<PpoSetup> = {}): Promise<boolean> {
    if (this.created || this.busy) return false;
    const setup: PpoSetup = { ...this.buildSetup(), ...patch };
    this.resetView();
    try {
      this.busy = true;
      await rolloutsState.loadSettings();
      const status = await engineState.engine.ppoCreate(setup);
      this.setup = setup;
      this.runId = crypto.randomUUID();
      this.savedRun = null;
      this.backendLost = false;
      this.applyStatus(status);
      return true;
    } catch (e) {
      this.fail(e);
      return false;
    } finally {
      this.busy = false;
    }
  }

  /** Like `play`, but stops by itself once `iteration` reaches `target` (scenario runner). */
  async playUntil(target: number): Promise<void> {
    if (!this.created || this.running || this.busy) return;
    if (!(await this.rebuildAfterLoss())) return;
    this.running = true;
    this.pauseRequested = false;
    try {
      while (!this.pauseRequested && this.created && this.iteration < target) {
        if (!(await this.runIteration())) break;
      }
    } finally {
      this.running = false;
      this.pauseRequested = false;
    }
    if (this.created && this.nextPhase === 'rollout' && this.lastSavedIteration !== this.iteration) await this.save();
  }

  // ------------------------------------------------------------------ running

  private async runIteration(): Promise<boolean> {
    this.phaseLog = [];
    // Whole iterations report no phase events (a half-stepped one does, as it finishes).
    this.currentPhase = this.nextPhase === 'rollout' ? null : this.nextPhase;
    return this.call({ iterations: 1, evalEvery: this.evalEvery });
  }

  private async runPhase(): Promise<boolean> {
    if (this.nextPhase === 'rollout') this.phaseLog = [];
    this.currentPhase = this.nextPhase;
    return this.call({ iterations: 1, phase: true, evalEvery: this.evalEvery });
  }

  private async call(req: {
    iterations: number;
    phase?: boolean;
    evalEvery: number;
    keepRollouts?: boolean;
  }): Promise<boolean> {
    const jobId = `ppo-${++jobCounter}`;
    this.jobId = jobId;
    this.busy = true;
    if (this.nextPhase === 'rollout') this.iterStart = performance.now();
    try {
      const status = await engineState.engine.ppoRun(jobId, { ...req, keepRollouts: rolloutsState.keep }, (e) =>
        this.onEvent(e),
      );
      this.applyStatus(status);
      this.flush();
      if (status.nextPhase === 'rollout') {
        this.checkAlarms();
        const due = this.checkpointEvery > 0 && status.iteration % this.checkpointEvery === 0;
        if (due || this.saveAfterIteration) {
          this.saveAfterIteration = false;
          this.busy = false;
          await this.save({ periodic: true });
        }
      }
      return true;
    } catch (e) {
      this.flush();
      if (e instanceof JobCancelledError) {
        try {
          const s = await engineState.engine.ppoStatus();
          if (s) this.applyStatus(s);
        } catch {
          /* run disposed */
        }
        return false;
      }
      this.busy = false;
      if (e instanceof PpoDivergedError) await this.rollback(e.message);
      else if (e instanceof DeviceLostError) await this.lostBackend(e);
      else if (e instanceof NotReadyError && this.created) await this.lostBackend(runGone('PPO'));
      else if (e instanceof RewardFunctionError) this.rewardFailed(e);
      else this.fail(e);
      return false;
    } finally {
      this.busy = false;
      this.jobId = null;
      this.currentPhase = null;
    }
  }

  private onEvent(e: PpoEvent): void {
    if (e.kind !== 'eval' && e.rollout && this.runId) rolloutsState.record(e.rollout, this.runId);
    if (e.kind === 'iteration') {
      this.pendingRollout = this.rolloutMetrics(e.traces.map((t) => t.text));
      this.pushMetrics(e.metrics as unknown as Record<string, number>);
      this.traces = e.traces;
      this.latest = { prompts: e.prompts, texts: e.texts, scores: e.scores };
    } else if (e.kind === 'phase') {
      const entry = { phase: e.phase, iteration: e.iteration, result: e.result } as PhaseResult;
      this.phaseLog = [...this.phaseLog.filter((p) => p.phase !== e.phase), entry];
      const i = PHASES.indexOf(e.phase);
      this.currentPhase = PHASES[(i + 1) % PHASES.length];
      if (entry.phase === 'rollout') {
        this.latest = { prompts: entry.result.prompts, texts: entry.result.texts, scores: [] };
        this.pendingRollout = this.rolloutMetrics(entry.result.texts);
      } else if (entry.phase === 'score' && this.latest) {
        this.latest = { ...this.latest, scores: entry.result.scores };
      } else if (entry.phase === 'advantages') {
        this.traces = entry.result.samples;
      } else if (entry.phase === 'update') {
        this.pushMetrics(entry.result.metrics as unknown as Record<string, number>);
      }
      this.flush();
    } else if (e.kind === 'eval') {
      const point: EvalPoint = { iteration: e.iteration, samples: e.samples };
      this.evalRows.push(point);
      // eval/score, eval/gold_score and their standard errors (the gold alarm's noise).
      const m: Record<string, number> = evalScoreMetrics(e.samples);
      // KL to the reference of the same samples (nats per sequence): the over-optimisation chart's √KL.
      const kls = e.samples.filter((s) => s.kl !== undefined && Number.isFinite(s.kl)).map((s) => s.kl!);
      if (kls.length) m['eval/kl'] = mean(kls);
      Object.assign(m, e.metrics ?? {}); // eval/distinct_1..3, eval/self_bleu
      this.rows.push({ step: e.iteration, metrics: m });
      this.scheduleFlush();
    }
  }

  /** `rolloutStats` of one rollout's completions, with the words the labeller favours. */
  private rolloutMetrics(texts: string[]): Record<string, number> {
    const reward = this.setup?.reward;
    const favoured = reward?.kind === 'labeller' ? favouredWords(reward.labeller) : null;
    return rolloutStats(texts, favoured ?? undefined);
  }

  private pushMetrics(m: Record<string, number>): void {
    const { iteration, ...rest } = m;
    this.rows.push({ step: iteration + 1, metrics: { ...rest, ...this.pendingRollout } });
    this.pendingRollout = {};
    const now = performance.now();
    this.secondsPerIteration = m['time/iteration_s'] ?? (now - this.iterStart) / 1000;
    this.iterStart = now;
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  /** Copy the collected rows into the reactive arrays (replaced, not pushed). */
  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.history.length !== this.rows.length) this.history = [...this.rows];
    if (this.evals.length !== this.evalRows.length) this.evals = [...this.evalRows];
  }

  /** Evaluate the alarms on the history (after each iteration); new ones are shown and hold checkpoints. */
  private checkAlarms(): void {
    if (!this.setup) return;
    // A condition not yet confirmed holds the checkpoint too: rewind must reach one from before it.
    this.alarmPending = pendingAlarms(this.rows, { config: this.config }).length > 0;
    const fresh = this.episodes.next(evaluateAlarms(this.rows, { config: this.config }));
    if (!fresh.length) return;
    const checkpoint = this.lastSavedIteration;
    this.alarms = [...this.alarms, ...fresh.map((a) => ({ ...a, checkpoint, dismissed: false }))];
  }

  /** Hide an alarm (its chart marker stays); checkpoints resume once no alarm is open. */
  dismissAlarm(alarm: RunAlarm): void {
    this.alarms = this.alarms.map((a) => (a === alarm ? { ...a, dismissed: true } : a));
  }

  /**
   * Go back to the last checkpoint saved before `alarm` fired (the start of the run when none
   * was saved), with its suggested change applied to the settings; the run stays paused there.
   */
  async rewind(alarm: RunAlarm): Promise<boolean> {
    const setup = this.setup;
    if (!setup || !this.runId) return false;
    this.pauseRequested = true;
    if (this.jobId) await engineState.engine.cancel(this.jobId).catch(() => false);
    await until(() => !this.busy && !this.running && !this.saving);
    this.busy = true;
    try {
      const loaded = await (await runStore()).loadPpo(this.runId);
      const rec = loaded?.run;
      const status = loaded
        ? await engineState.engine.ppoCreate(loaded.run.setup, loaded.state)
        : await engineState.engine.ppoCreate(setup);
      const fired = this.alarms;
      if (rec) this.restoreViewFrom(rec);
      else this.resetView();
      this.applyStatus(status);
      this.traces = [];
      this.phaseLog = [];
      this.lastSavedIteration = rec ? rec.state.iteration : null;
      const next = await engineState.engine.ppoUpdateConfig(alarm.suggestion.change);
      this.config = structuredClone(next);
      this.setup = { ...(rec?.setup ?? setup), config: next };
      // Alarms of the undone iterations go; conditions already true at the checkpoint stay quiet.
      this.alarms = fired.filter((a) => a.iteration <= status.iteration);
      this.episodes.reset();
      this.episodes.next(evaluateAlarms(this.rows, { config: next }));
      this.alarmPending = false;
      this.lastError = null;
      this.backendLost = false;
      notices.add(
        'info',
        `Rewound to ${rec ? `the checkpoint of iteration ${status.iteration}` : 'the start of the run'} and applied: ${alarm.suggestion.text}. Press Resume to go on.`,
      );
      return true;
    } catch (e) {
      this.fail(e);
      return false;
    } finally {
      this.busy = false;
    }
  }

  /**
   * The backend failed under the run (`DeviceLostError`: a lost WebGPU device, a restarted
   * backend): pause, show the run as it was at its last save (what Resume rebuilds), and say so.
   */
  private async lostBackend(e: Error): Promise<void> {
    this.pauseRequested = true;
    this.backendLost = true;
    const runId = this.runId;
    let rec: SavedPpoRun | null = null;
    try {
      if (runId) rec = (await (await runStore()).loadPpo(runId))?.run ?? null;
    } catch {
      /* unreadable: Resume says so */
    }
    if (runId !== this.runId) return; // reset meanwhile
    if (rec) this.restoreViewFrom(rec);
    else {
      this.resetView();
      if (runId) void rolloutsState.truncate(runId, 0);
    }
    this.iteration = rec?.state.iteration ?? 0;
    this.nextPhase = 'rollout';
    this.traces = [];
    this.phaseLog = [];
    this.lastSavedIteration = rec ? rec.state.iteration : null;
    this.lastError = backendLostMessage(e, 'PPO', rec ? rec.state.iteration : null);
    notices.add('warning', this.lastError);
  }

  /** After a backend failure: rebuild the run in the engine from its last save (the start when none). */
  private async rebuildAfterLoss(): Promise<boolean> {
    if (!this.backendLost) return true;
    const setup = this.setup;
    if (!setup || !this.runId) return false;
    this.busy = true;
    try {
      const loaded = await (await runStore()).loadPpo(this.runId);
      const status = loaded
        ? await engineState.engine.ppoCreate(loaded.run.setup, loaded.state)
        : await engineState.engine.ppoCreate(setup);
      if (loaded) this.restoreViewFrom(loaded.run);
      else this.resetView();
      this.config = structuredClone(status.config);
      this.setup = { ...(loaded?.run.setup ?? setup), config: status.config };
      this.applyStatus(status);
      this.lastSavedIteration = loaded ? loaded.run.state.iteration : null;
      this.episodes.reset();
      this.episodes.next(evaluateAlarms(this.rows, { config: this.config }));
      this.alarmPending = false;
      this.backendLost = false;
      this.lastError = null;
      return true;
    } catch (e) {
      this.fail(e);
      return false;
    } finally {
      this.busy = false;
    }
  }

  /** The user's reward function failed: pause, say where and what to do (the run keeps its weights). */
  private rewardFailed(e: Error): void {
    this.pauseRequested = true;
    this.fail(
      new Error(
        `${e.message} The run is paused at iteration ${this.iteration}; nothing was lost (no update was made on this batch). Fix the code, press “Apply to this run”, then Resume.`,
      ),
    );
  }

  private fail(e: unknown): void {
    const msg = (e as Error).message ?? String(e);
    this.lastError = msg;
    notices.add('error', msg);
  }

  // ------------------------------------------------------------------ checkpoints

  /** Save the run's state, setup, history and samples (only between iterations). */
  async save(opts: { periodic?: boolean } = {}): Promise<void> {
    // A save asked for while one is writing waits for it, then saves again if the run moved on since.
    let waited = false;
    while (this.inFlightSave) {
      waited = true;
      await this.inFlightSave;
    }
    // After a backend failure the engine's run is gone: its last save is what is kept.
    if (!this.runId || !this.setup || this.busy || this.nextPhase !== 'rollout' || this.backendLost) return;
    // Held while an alarm is open, so rewind still reaches the checkpoint from before it fired; a
    // periodic checkpoint also waits while a condition is pending (not yet confirmed). The save at
    // the end of a play or a step still happens then: the run's work is kept.
    if (this.openAlarms.length || (opts.periodic && this.alarmPending)) return;
    if (waited && this.lastSavedIteration === this.iteration) return;
    this.inFlightSave = this.writeCheckpoint(this.runId, this.setup);
    try {
      await this.inFlightSave;
    } finally {
      this.inFlightSave = null;
    }
  }

  private inFlightSave: Promise<void> | null = null;

  private async writeCheckpoint(runId: string, setup: PpoSetup): Promise<void> {
    this.saving = true;
    try {
      const state = await engineState.engine.ppoState();
      const rec: PpoRunSave = {
        id: runId,
        kind: 'ppo',
        setup: $state.snapshot(setup) as PpoSetup,
        state,
        history: this.rows.filter((r) => r.step <= state.iteration),
        evals: this.evalRows.filter((e) => e.iteration <= state.iteration),
        updatedAt: Date.now(),
      };
      askPersistence();
      // One transaction; a run saved before keeps its first save time and its parent.
      await (await runStore()).savePpo(rec, runsState.currentParent());
      this.lastSavedIteration = state.iteration;
    } catch (e) {
      notices.add('error', `The PPO checkpoint was not saved: ${toStorageError(e, 'save the PPO run').message}`);
    } finally {
      this.saving = false;
    }
  }

  /** Page hidden: save now if between iterations, else right after the current one. */
  onHidden(): void {
    if (!this.created) return;
    if (this.busy || this.nextPhase !== 'rollout') this.saveAfterIteration = true;
    else if (this.lastSavedIteration !== this.iteration) void this.save();
  }

  /** NaN/Inf in the update: pause and go back to the last checkpoint. */
  private async rollback(message: string): Promise<void> {
    this.pauseRequested = true;
    const setup = this.setup;
    if (!setup || !this.runId) return;
    try {
      const loaded = await (await runStore()).loadPpo(this.runId);
      const rec = loaded?.run;
      const status = loaded
        ? await engineState.engine.ppoCreate(loaded.run.setup, loaded.state)
        : await engineState.engine.ppoCreate(setup);
      if (rec) this.restoreViewFrom(rec);
      else {
        this.resetView();
        void rolloutsState.truncate(this.runId, 0);
      }
      this.applyStatus(status);
      this.traces = [];
      this.phaseLog = [];
      const where = rec ? `the checkpoint of iteration ${rec.state.iteration}` : 'the start';
      this.lastError = `Training diverged (NaN/Inf) and was paused; rolled back to ${where}. ${message}`;
      notices.add('warning', this.lastError);
    } catch (e) {
      this.fail(e);
    }
  }
}

/**
 * The one sentence shown when the backend fails under a run: which backend failed (the engine's
 * `DeviceLostError` says so, without its "start it again" tail from `JobRegistry.failAll`), where
 * the run is paused and what Resume does.
 */
export function backendLostMessage(e: Error, algo: string, savedIteration: number | null): string {
  const cause = e.message
    .replace(/\s*Job \S+ stopped; start it again\.$/, '')
    .replace(/; start it again\.$/, '')
    .replace(/\.$/, '');
  const where =
    savedIteration === null
      ? 'at its start (iteration 0; it had no save yet)'
      : `at iteration ${savedIteration}, its last save`;
  return `${cause}: the ${algo} run is paused ${where}; Resume continues it from there on the new backend.`;
}

/** The engine no longer holds the page's run: its backend was restarted while the run was paused. */
export function runGone(algo: string): Error {
  return new Error(`The engine no longer holds the ${algo} run (its backend was restarted while it was paused)`);
}

export const trainState = new TrainState();
