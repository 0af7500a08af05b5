/**
 * Scenarios: the list (bundled from `static/scenarios/*.json`, ordered by `index.json`), the
 * selected one, and the one-click runner that drives the app's own stages in order:
 *
 * 1. label — a scripted labeller labels `labels` pairs through the feedback studio's batch
 *    labelling (`feedback.labelQueue`, saved to IndexedDB like any label), or, for `human`
 *    scenarios, the user labels on the Feedback page and the runner waits for the count;
 * 2. reward model — `rewardState.train()` on that annotator's records (saved, made active);
 * 3. PPO — `trainState` with the scenario's settings and seed, `iterations` iterations against
 *    the new reward model, the scenario's labeller as the gold score.
 *
 * Labels already saved by the scenario's annotator count towards `labels`, so a run that was
 * stopped (or is run again) only labels what is missing. Each stage can be paused (the job is
 * cancelled; what was saved stays), resumed, and inspected on its own page.
 * `?quick=1` in the URL shrinks every stage (tests, demos on slow machines).
 */
import { validateScenario, validateScenarioIndex, ScenarioError, type Scenario } from '../lib/data/scenarios';
import { defaultLabellerConfig } from '../lib/rlhf/labellers';
import { validatePpoConfig, type PpoConfig } from '../lib/rlhf/ppo-config';
import { settingsTable } from '../lib/settings/table';
import { REWARD_SETTINGS, type RewardConfig } from '../lib/rlhf/reward-config';
import { recordsToPairs, toPairs } from '../lib/data/records';
import { MIN_PAIRS, MIN_PROMPTS } from '../lib/rlhf/reward-limits';
import { annotators, DEFAULT_HUMAN } from './annotators.svelte';
import { dataState, getStores } from './data.svelte';
import { engineState } from './engine.svelte';
import { feedback } from './feedback.svelte';
import { modelState } from './model.svelte';
import { notices } from './notices.svelte';
import { rewardState } from './reward.svelte';
import { router } from './router.svelte';
import { trainState } from './train.svelte';
import { until, watch } from './reactive-wait.svelte';

export type { Scenario } from '../lib/data/scenarios';

// Bundled with the app (a few kB), so the list is there before anything loads.
const files = import.meta.glob<unknown>(
  ['../../static/scenarios/*.json', '!../../static/scenarios/first-screen.json'],
  {
    eager: true,
    import: 'default',
  },
);

function loadBundled(): Scenario[] {
  const byName = new Map<string, unknown>();
  for (const [path, json] of Object.entries(files))
    byName.set(
      path
        .split('/')
        .pop()!
        .replace(/\.json$/, ''),
      json,
    );
  const index = validateScenarioIndex(byName.get('index') ?? { scenarios: [] });
  return index.map((name) => {
    if (!byName.has(name)) throw new ScenarioError(`index.json lists "${name}" but ${name}.json is missing`, name);
    return validateScenario(byName.get(name), `${name}.json`);
  });
}

export const RUN_STAGES = [
  { id: 'label', label: 'Label', page: 'feedback' },
  { id: 'reward', label: 'Reward model', page: 'reward' },
  { id: 'ppo', label: 'PPO', page: 'train' },
] as const;
export type RunStageId = (typeof RUN_STAGES)[number]['id'];

export interface StageProgress {
  status: 'waiting' | 'running' | 'paused' | 'done' | 'failed';
  done: number;
  total: number;
  note: string;
}

const fresh = (): Record<RunStageId, StageProgress> => ({
  label: { status: 'waiting', done: 0, total: 0, note: '' },
  reward: { status: 'waiting', done: 0, total: 0, note: '' },
  ppo: { status: 'waiting', done: 0, total: 0, note: '' },
});

/** How scenarios run, as a URL can set it. */
export interface ScenarioRunSettings {
  quick: boolean;
}

export const SCENARIO_RUN_SETTINGS = settingsTable<ScenarioRunSettings>(
  {
    quick: {
      kind: 'boolean',
      default: false,
      help: 'Shrink every stage of a scenario (fewer labels, epochs and iterations): tests and slow machines.',
    },
  },
  { what: 'scenario', urlPrefix: '' },
);

/** The scenario as run: shrunk when `quick`. */
export function effectiveScenario(s: Scenario, quick: boolean): Scenario {
  if (!quick) return s;
  return {
    ...s,
    // 96: enough pairs after ties even for the reward-hacking proxy. With the 12,000-step model
    // 78% of its pairs tie (251 of 320, seed 5, 24 new tokens), so 64 labels gave 6–20 usable
    // pairs, sometimes below the 8 the reward model needs; 96 give about 21.
    labels: Math.min(s.labels, s.human ? 8 : 96),
    rewardModel: { ...s.rewardModel, epochs: Math.min(s.rewardModel.epochs, 4) },
    ppo: { ...s.ppo, batchSize: 4, maxNewTokens: 8, ppoEpochs: 1, miniBatches: 1 },
    iterations: 1,
    ...(s.evalEvery !== undefined ? { evalEvery: 1 } : {}),
    ...(s.evalSamples !== undefined ? { evalSamples: Math.min(s.evalSamples, 2) } : {}),
  };
}

/** Name of the annotator a scenario labels as. */
export function annotatorName(s: Scenario): string {
  return s.human ? DEFAULT_HUMAN : `${s.id}-bot`;
}

/** The user paused the run: the stage's job is cancelled, what it saved stays; resume runs it again. */
export class ScenarioPausedError extends Error {
  override name = 'ScenarioPausedError';
  constructor() {
    super('Paused.');
  }
}

/** The user stopped the run. */
export class ScenarioStoppedError extends Error {
  override name = 'ScenarioStoppedError';
  constructor() {
    super('Stopped.');
  }
}

/** A stage could not finish; the message says why and what to do. */
export class ScenarioStageError extends Error {
  override name = 'ScenarioStageError';
}

const fail = (msg: string): never => {
  throw new ScenarioStageError(msg);
};

export class ScenarioState {
  list = $state.raw<Scenario[]>([]);
  loaded = $state(false);
  loadError = $state<string | null>(null);
  current = $state.raw<Scenario | null>(null);

  /** Shrink every stage (`?quick=1`, set from the URL table). */
  quick = $state(SCENARIO_RUN_SETTINGS.defaults.quick);
  /**
   * PPO settings that win over the scenario's (e.g. from a shared link's `klCoef=…`); the β
   * slider wins over both.
   */
  /** Settings the URL gave: they win over the scenario's when it sets up the reward model and PPO. */
  urlOverrides = $state.raw<{ ppo: Partial<PpoConfig>; reward: Partial<RewardConfig> }>({ ppo: {}, reward: {} });
  /** β chosen on the card (scenarios with `betaSlider`), or null for the scenario's own. */
  beta = $state<number | null>(null);

  /** The scenario being run (or last run), its stages, and the runner's state. */
  running = $state.raw<Scenario | null>(null);
  stages = $state<Record<RunStageId, StageProgress>>(fresh());
  active = $state<RunStageId | null>(null);
  paused = $state(false);
  finished = $state(false);
  error = $state<string | null>(null);
  /** For human labelling: why the count did not move (ties, one prompt only), shown on the Feedback page. */
  labelHint = $state('');

  private pendingId: string | null = null;
  /** Aborted by `stop` (reason `ScenarioStoppedError`). */
  private runCtl: AbortController | null = null;
  /** The running stage's: aborted by `pause` and `stop`. */
  private stageCtl: AbortController | null = null;
  /** The PPO run this runner created (its samples are shown on the Start page). */
  ppoRunId = $state<string | null>(null);

  /** The run was stopped by the user. */
  private stoppedView = $state(false);
  /** A run is in progress (running or paused). */
  readonly busy = $derived(this.running !== null && !this.finished && this.error === null && !this.stoppedView);

  /** Load the list (bundled, so at once); safe to call more than once. */
  async load(): Promise<void> {
    if (this.loaded) return;
    try {
      this.list = loadBundled();
    } catch (e) {
      this.loadError = (e as Error).message;
      notices.add('error', this.loadError);
    }
    this.loaded = true;
    if (this.pendingId !== null) {
      const id = this.pendingId;
      this.pendingId = null;
      this.select(id);
    }
    if (!this.current && this.list.length) this.current = this.list[0];
  }

  /**
   * Make a scenario current. False for an unknown id. Before the list is loaded the id is
   * remembered and applied when it is (and loading starts).
   */
  select(id: string): boolean {
    if (!this.loaded) {
      this.pendingId = id;
      void this.load();
      return this.list.some((s) => s.id === id);
    }
    const s = this.list.find((x) => x.id === id);
    if (!s) return false;
    if (this.current?.id !== s.id) this.beta = null;
    this.current = s;
    return true;
  }

  /** β the run uses: the card's slider, else an override, else the scenario's klCoef, else the default. */
  betaOf(s: Scenario): number {
    return this.beta ?? this.urlOverrides.ppo.klCoef ?? s.ppo.klCoef ?? validatePpoConfig({}).klCoef;
  }

  /** Move the β slider; during the PPO stage of that scenario it applies from the next iteration. */
  async setBeta(v: number): Promise<void> {
    this.beta = v;
    if (this.active === 'ppo' && this.ppoRunId && trainState.runId === this.ppoRunId) {
      await trainState.setConfig('klCoef', v);
    }
  }

  // ------------------------------------------------------------------ runner

  /**
   * Run the current scenario (or `id`) from the start; labels already saved are reused. Each
   * stage is an awaited call that returns when it is done or throws: `ScenarioPausedError` (the
   * stage runs again after `resume`), `ScenarioStoppedError`, or `ScenarioStageError` with the
   * reason it failed.
   */
  async run(id?: string): Promise<void> {
    if (id !== undefined && !this.select(id)) return;
    const base = this.current;
    if (!base || this.busy) return;
    const s = effectiveScenario(base, this.quick);
    this.running = base;
    this.stages = fresh();
    this.stages.label.total = s.labels;
    this.stages.reward.total = s.rewardModel.epochs;
    this.stages.ppo.total = s.iterations;
    this.finished = false;
    this.error = null;
    this.labelHint = '';
    this.paused = false;
    this.stoppedView = false;
    this.ppoRunId = null;
    const run = new AbortController();
    this.runCtl = run;
    let stage: RunStageId | null = null;
    try {
      await this.modelReady(run.signal);
      for (const { id } of RUN_STAGES) {
        stage = id;
        this.active = id;
        await this.runStage(id, s, run.signal);
        this.stages[id].status = 'done';
      }
      this.active = null;
      this.finished = true;
      notices.add('info', `Scenario “${base.title}” finished: compare the samples before and after on the Start page.`);
    } catch (e) {
      if (e instanceof ScenarioStoppedError) return;
      const msg = (e as Error).message || 'The stage failed.';
      if (stage) {
        this.stages[stage].status = 'failed';
        this.stages[stage].note = msg;
      }
      this.error = msg;
    } finally {
      if (this.runCtl === run) this.runCtl = null;
    }
  }

  /** One stage, run again after each pause until it is done (or stopped, or failed). */
  private async runStage(stage: RunStageId, s: Scenario, runSignal: AbortSignal): Promise<void> {
    for (;;) {
      if (this.paused) {
        this.stages[stage].status = 'paused';
        await until(() => !this.paused, runSignal);
      }
      const ctl = new AbortController();
      const forward = () => ctl.abort(runSignal.reason);
      runSignal.addEventListener('abort', forward, { once: true });
      this.stageCtl = ctl;
      this.stages[stage].status = 'running';
      try {
        if (stage === 'label') await this.label(s, ctl.signal);
        else if (stage === 'reward') await this.trainReward(s, ctl.signal);
        else await this.ppo(s, ctl.signal);
        return;
      } catch (e) {
        if (!(e instanceof ScenarioPausedError)) throw e;
      } finally {
        runSignal.removeEventListener('abort', forward);
        this.stageCtl = null;
      }
    }
  }

  pause(): void {
    if (!this.busy || this.paused) return;
    this.paused = true;
    this.stageCtl?.abort(new ScenarioPausedError());
  }

  resume(): void {
    this.paused = false;
  }

  /** Stop the run; labels, reward model and the PPO checkpoint saved so far stay. */
  stop(): void {
    if (!this.running) return;
    this.stoppedView = true;
    if (this.active) this.stages[this.active].status = 'paused';
    this.active = null;
    this.paused = false;
    this.runCtl?.abort(new ScenarioStoppedError());
  }

  /** Open a stage's own page. */
  inspect(stage: RunStageId): void {
    router.go(RUN_STAGES.find((x) => x.id === stage)!.page);
  }

  /** Resolves when the engine and the model are ready; throws when either failed. */
  private async modelReady(signal: AbortSignal): Promise<void> {
    const p = this.stages.label;
    const failed = () => engineState.status === 'failed' || modelState.status === 'failed';
    const ready = () => engineState.ready && modelState.status === 'ready';
    if (!ready()) p.note = 'Waiting for the model to load…';
    await until(() => ready() || failed(), signal);
    if (!ready()) fail('The model could not be loaded; see the notices.');
    p.note = '';
  }

  private async countLabels(name: string): Promise<number> {
    const stores = await getStores();
    return (await stores.preferences.list({ annotator: name, limit: 0 })).total;
  }

  /**
   * The pairs `name`'s records give the reward model, how many prompts they span, and how many
   * records give none (`ties`: a tie, "both bad", or two equal texts).
   */
  private async usablePairs(name: string): Promise<{ pairs: number; prompts: number; ties: number }> {
    const stores = await getStores();
    const { records } = await stores.preferences.list({ annotator: name, limit: Number.MAX_SAFE_INTEGER });
    const pairs = recordsToPairs(records);
    return {
      pairs: pairs.length,
      prompts: new Set(pairs.map((x) => x.prompt)).size,
      ties: records.filter((r) => toPairs(r).length === 0).length,
    };
  }

  private async label(s: Scenario, signal: AbortSignal): Promise<void> {
    const p = this.stages.label;
    const name = annotatorName(s);
    await annotators.load();
    let profile = annotators.profiles.find((x) => x.name === name);
    if (s.human) {
      if (profile) await annotators.select(profile.id);
      else profile = (await annotators.create(name)) ?? undefined;
    } else if (profile) {
      if (!(await annotators.updateLabeller(profile.id, s.labeller))) fail('Could not set up the labeller.');
      await annotators.select(profile.id);
    } else {
      profile = (await annotators.create(name, s.labeller)) ?? undefined;
    }
    if (!profile) fail(`Could not create the annotator “${name}”.`);
    feedback.selectSource(`bundled:${s.prompts}`);
    signal.throwIfAborted();

    if (s.human) {
      // Count what the reward model can learn from: a tie, or two identical texts, is no preference,
      // and validation needs a second prompt.
      const need = Math.max(s.labels, MIN_PAIRS);
      // The version first, then the count: a label saved in between is counted on the next turn.
      let version = dataState.version;
      let u = await this.usablePairs(name);
      const enough = () => u.pairs >= need && u.prompts >= MIN_PROMPTS;
      if (!enough()) router.go('feedback');
      while (!enough()) {
        p.done = Math.min(u.pairs, need);
        this.labelHint =
          u.pairs < need
            ? u.ties > 0
              ? `${u.ties} label${u.ties === 1 ? '' : 's'} without a preference (a tie, “both bad”, or two equal texts) ${u.ties === 1 ? 'does' : 'do'} not count.`
              : ''
            : `All ${u.pairs} pairs share one prompt: label one for another prompt.`;
        p.note =
          u.pairs < need
            ? `Label ${need - u.pairs} more on the Feedback page (as “${name}”): ${u.pairs} of ${need}. ${this.labelHint}`
            : `On the Feedback page: ${this.labelHint}`;
        // The next saved (or deleted) label.
        await until(() => dataState.version !== version, signal);
        version = dataState.version;
        u = await this.usablePairs(name);
      }
      p.done = p.total = need;
      p.note = `${u.pairs} labels by you.`;
      this.labelHint = '';
      if (router.stage === 'feedback') router.go('start');
      return;
    }
    let have = await this.countLabels(name);
    const before = have;
    if (have < s.labels) {
      const need = s.labels - have;
      feedback.sampling.seed = s.seed;
      signal.throwIfAborted();
      const cancel = () => feedback.cancelBatch();
      signal.addEventListener('abort', cancel, { once: true });
      const stopWatch = watch(() => {
        const b = feedback.batch;
        if (b) p.done = have + b.saved;
        p.note = `${annotators.current?.name ?? name} is labelling pairs…`;
      });
      try {
        await feedback.labelQueue(need);
      } finally {
        stopWatch();
        signal.removeEventListener('abort', cancel);
      }
      have = await this.countLabels(name);
      p.done = Math.min(have, s.labels);
      signal.throwIfAborted();
      if (have < s.labels) fail(feedback.batch?.message ?? 'Labelling stopped.');
    }
    p.done = s.labels;
    p.note =
      before > 0
        ? `${have} labels by ${name} (${Math.min(before, s.labels)} saved earlier).`
        : `${have} labels by ${name}.`;
  }

  private async trainReward(s: Scenario, signal: AbortSignal): Promise<void> {
    const p = this.stages.reward;
    await rewardState.refresh();
    rewardState.annotator = annotatorName(s);
    // The scenario's settings, then the URL's (they win), over the table's defaults.
    const stated = { ...s.rewardModel, seed: s.seed, ...this.urlOverrides.reward };
    rewardState.settings = { ...REWARD_SETTINGS.defaultsFor(stated), ...stated };
    p.total = rewardState.settings.epochs;
    p.note = `Training on ${rewardState.pairs.length} pairs (${rewardState.settings.mode} mode)…`;
    signal.throwIfAborted();
    const cancel = () => rewardState.cancel();
    signal.addEventListener('abort', cancel, { once: true });
    const stopWatch = watch(() => {
      const total = rewardState.startInfo?.totalSteps ?? 0;
      const step = rewardState.history.at(-1)?.step ?? 0;
      p.done = total > 0 ? Math.min(p.total, (step / total) * p.total) : 0;
    });
    const prev = rewardState.activeId;
    try {
      await rewardState.train();
    } finally {
      stopWatch();
      signal.removeEventListener('abort', cancel);
    }
    signal.throwIfAborted();
    if (rewardState.lastError) fail(rewardState.lastError);
    if (rewardState.activeId === prev) fail('The reward model was not saved.');
    const a = rewardState.active;
    p.done = p.total;
    p.note = a
      ? `${a.name}: held-out accuracy ${a.evalAccuracy === null ? 'n/a' : `${(a.evalAccuracy * 100).toFixed(0)}%`}.`
      : 'Trained.';
  }

  private async ppo(s: Scenario, signal: AbortSignal): Promise<void> {
    const p = this.stages.ppo;
    if (!(this.ppoRunId && trainState.created && trainState.runId === this.ppoRunId)) {
      if (trainState.created) await trainState.reset();
      trainState.promptSet = s.prompts;
      await trainState.refresh();
      trainState.rewardKind = 'reward-model';
      const config: PpoConfig = validatePpoConfig({
        ...s.ppo,
        ...this.urlOverrides.ppo,
        klCoef: this.betaOf(s),
        seed: this.urlOverrides.ppo.seed ?? s.seed,
      });
      trainState.config = config;
      trainState.evalEvery = s.evalEvery ?? 1;
      trainState.evalSamples = s.evalSamples ?? 1;
      const gold =
        s.gold === 'none'
          ? undefined
          : s.gold
            ? { ...defaultLabellerConfig(s.gold), noise: 0 }
            : { ...s.labeller, noise: 0 };
      if (!(await trainState.createRun({ gold, name: `Scenario · ${s.title}` })))
        fail(trainState.lastError ?? 'The PPO run could not be created.');
      this.ppoRunId = trainState.runId;
      // Iteration 0 (the starting model): the "before" samples and the start of the √KL axis.
      if (gold) await trainState.evaluateNow();
      signal.throwIfAborted();
    }
    p.note = 'Training the policy…';
    signal.throwIfAborted();
    const pause = () => trainState.pause();
    signal.addEventListener('abort', pause, { once: true });
    const stopWatch = watch(() => {
      p.done = trainState.iteration;
    });
    try {
      await trainState.playUntil(s.iterations);
    } finally {
      stopWatch();
      signal.removeEventListener('abort', pause);
    }
    p.done = trainState.iteration;
    if (trainState.iteration >= s.iterations) {
      p.note = `${trainState.iteration} iterations.`;
      return;
    }
    signal.throwIfAborted();
    fail(trainState.lastError ?? 'PPO stopped.');
  }
}

export const scenarioState = new ScenarioState();
