/**
 * GRPO scenarios on the Start page (definitions: src/lib/data/scenarios.ts, files in
 * `static/scenarios/grpo/`), run as a sequence of awaited stages with an `AbortSignal` for Stop,
 * as the RLHF scenario runner (scenario.svelte.ts) does:
 *
 * - verifiable: base (the held-out pass rate of the bundled model) → GRPO (the scenario's
 *   settings and seed, its JavaScript reward, the training prompts; the run is the Train page's,
 *   so its curves and group inspector are there) → final (the pass rate again, same prompts and
 *   sampling seed). The result line shows base and final pass rate.
 * - length-lab: one GRPO run per loss type, each from the bundled model with the same seed and
 *   reward; the mean completion length of every iteration is overlaid, one line per loss type
 *   (Liu et al. 2025, "Understanding R1-Zero-Like Training: A Critical Perspective").
 *
 * `?quick=1` (the scenario runner's setting) shrinks every stage.
 */
import {
  isGroupScenario,
  ScenarioError,
  validateGroupScenario,
  validateScenarioIndex,
  type GroupScenario,
} from '../lib/data/scenarios';
import { passRateSplit, type PassRateResult } from '../lib/rlhf/pass-rate';
import { JobCancelledError } from '../lib/engine/errors';
import type { GroupSetup } from '../lib/engine/types';
import type { GrpoLossType } from '../lib/rlhf/grpo-config';
import { PROMPT_SETS } from './train.svelte';
import { engineState } from './engine.svelte';
import { groupState } from './group.svelte';
import { modelState } from './model.svelte';
import { notices } from './notices.svelte';
import { router } from './router.svelte';
import { scenarioState } from './scenario.svelte';
import { until } from './reactive-wait.svelte';

export { isGroupScenario, type GroupScenario };

const files = import.meta.glob<unknown>('../../static/scenarios/grpo/*.json', { eager: true, import: 'default' });

function loadBundled(): GroupScenario[] {
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
    if (!byName.has(name))
      throw new ScenarioError(`grpo/index.json lists "${name}" but grpo/${name}.json is missing`, name);
    return validateGroupScenario(byName.get(name), `grpo/${name}.json`);
  });
}

/** The scenario as run: shrunk when `quick` (tests, slow machines). */
export function effectiveGroupScenario(s: GroupScenario, quick: boolean): GroupScenario {
  if (!quick) return s;
  return {
    ...s,
    grpo: { ...s.grpo, numGenerations: 2, batchSize: 4, maxCompletionLength: 8 },
    iterations: s.kind === 'length-lab' ? 3 : 2,
    evalSamples: 1,
  };
}

export interface GroupStage {
  id: string;
  label: string;
  status: 'waiting' | 'running' | 'done' | 'failed';
  done: number;
  total: number;
  note: string;
}

/** The stages a scenario runs, in order. */
export function groupStages(s: GroupScenario): Omit<GroupStage, 'status' | 'done' | 'note'>[] {
  if (s.kind === 'length-lab')
    return s.lossTypes.map((t) => ({ id: t, label: `GRPO, loss_type ${t}`, total: s.iterations }));
  return [
    { id: 'base', label: 'Base pass rate', total: 1 },
    { id: 'grpo', label: 'GRPO', total: s.iterations },
    { id: 'final', label: 'Held-out pass rate', total: 1 },
  ];
}

/** The user stopped the run. */
export class GroupScenarioStoppedError extends Error {
  override name = 'GroupScenarioStoppedError';
  constructor() {
    super('Stopped.');
  }
}

let jobCounter = 0;

export class GroupScenarioState {
  list = $state.raw<GroupScenario[]>([]);
  loadError = $state<string | null>(null);
  /** The GRPO scenario picked on the Start page (its card is open; "Copy link" writes its id), or none. */
  current = $state.raw<GroupScenario | null>(null);
  /** Set when a shared link (`scenario=<id>`) picked `current`: the Start page shows its card once. */
  fromLink = $state(false);

  running = $state.raw<GroupScenario | null>(null);
  stages = $state<GroupStage[]>([]);
  finished = $state(false);
  stopped = $state(false);
  error = $state<string | null>(null);
  /** Verifiable: the pass rates before and after, and the held-out prompts they were measured on. */
  base = $state.raw<PassRateResult | null>(null);
  final = $state.raw<PassRateResult | null>(null);
  heldOut = $state.raw<string[]>([]);
  seconds = $state(0);
  /** Length lab: mean completion length per iteration, one series per loss type. */
  lengths = $state.raw<{ name: string; points: { x: number; y: number }[] }[]>([]);

  private ctl: AbortController | null = null;
  private loaded = false;

  readonly busy = $derived(this.running !== null && !this.finished && !this.stopped && this.error === null);

  load(): void {
    if (this.loaded) return;
    this.loaded = true;
    try {
      this.list = loadBundled();
    } catch (e) {
      this.loadError = (e as Error).message;
      notices.add('error', this.loadError);
    }
  }

  select(id: string): boolean {
    this.load();
    const s = this.list.find((x) => x.id === id);
    if (!s) return false;
    this.current = s;
    return true;
  }

  /** An RLHF scenario was picked instead: no GRPO scenario is the current one (nor in links). */
  deselect(): void {
    this.current = null;
    this.fromLink = false;
  }

  /** Run a scenario (the RLHF runner must be idle; so must a GRPO run of the Train page). */
  async run(id: string): Promise<void> {
    if (!this.select(id) || this.busy || scenarioState.busy || groupState.running) return;
    const s = effectiveGroupScenario(this.current!, scenarioState.quick);
    this.running = this.current;
    this.stages = groupStages(s).map((x) => ({ ...x, status: 'waiting', done: 0, note: '' }));
    this.finished = false;
    this.stopped = false;
    this.error = null;
    this.base = null;
    this.final = null;
    this.lengths = [];
    this.seconds = 0;
    const ctl = new AbortController();
    this.ctl = ctl;
    let stage: GroupStage | null = null;
    try {
      await until(
        () =>
          (engineState.ready && modelState.status === 'ready') ||
          engineState.status === 'failed' ||
          modelState.status === 'failed',
        ctl.signal,
      );
      if (!(engineState.ready && modelState.status === 'ready'))
        throw new Error('The model could not be loaded; see the notices.');
      const prompts = PROMPT_SETS.find((p) => p.id === s.prompts)!.prompts;
      const { train, heldOut } = passRateSplit(prompts, s.seed);
      this.heldOut = heldOut;
      for (stage of this.stages) {
        stage.status = 'running';
        if (s.kind === 'length-lab') await this.lengthRun(s, stage, train, ctl.signal);
        else if (stage.id === 'grpo') await this.train(s, stage, ctl.signal);
        else await this.measure(s, stage, heldOut, ctl.signal);
        stage.status = 'done';
      }
      stage = null;
      this.finished = true;
      notices.add('info', `Scenario “${s.title}” finished.`);
    } catch (e) {
      if (e instanceof GroupScenarioStoppedError) return;
      const msg = (e as Error).message || 'The stage failed.';
      if (stage) {
        stage.status = 'failed';
        stage.note = msg;
      }
      this.error = msg;
    } finally {
      if (this.ctl === ctl) this.ctl = null;
    }
  }

  stop(): void {
    if (!this.busy) return;
    this.stopped = true;
    this.ctl?.abort(new GroupScenarioStoppedError());
  }

  /** Open the Train page (the GRPO run's curves and group inspector). */
  inspect(): void {
    router.go('train');
  }

  private setup(s: GroupScenario, train: string[], lossType?: GrpoLossType): GroupSetup {
    return {
      algo: 'grpo',
      config: { ...s.grpo, ...(lossType ? { lossType } : {}), seed: s.seed },
      prompts: train,
      reward: { kind: 'function', functions: s.rewardFunctions.map((f) => ({ ...f })) },
      name: `Scenario · ${s.title}${lossType ? ` · ${lossType}` : ''}`,
    };
  }

  private async train(s: GroupScenario, stage: GroupStage, signal: AbortSignal): Promise<void> {
    const t0 = performance.now();
    stage.note = 'Training the policy on the training prompts…';
    const onIteration = () => {
      stage.done = groupState.iteration;
      const m = groupState.history.at(-1)?.metrics;
      if (m)
        stage.note = `reward ${m.reward.toFixed(2)}, groups with zero spread ${(m.frac_reward_zero_std * 100).toFixed(0)} %`;
    };
    await groupState.playUntil(s.iterations, signal, onIteration);
    this.seconds = (performance.now() - t0) / 1000;
    stage.done = s.iterations;
    stage.note = `${s.iterations} iterations in ${this.seconds.toFixed(0)} s.`;
  }

  private async measure(s: GroupScenario, stage: GroupStage, heldOut: string[], signal: AbortSignal): Promise<void> {
    if (stage.id === 'base') {
      const prompts = PROMPT_SETS.find((p) => p.id === s.prompts)!.prompts;
      await groupState.createRun(this.setup(s, passRateSplit(prompts, s.seed).train));
    }
    stage.note = `Sampling ${s.evalSamples} completions of each of ${heldOut.length} held-out prompts…`;
    const r = await this.passRate(s, heldOut, signal);
    if (stage.id === 'base') this.base = r;
    else this.final = r;
    stage.done = 1;
    stage.note = `${pct(r.passRate)} pass (${r.passed} of ${r.total}).`;
  }

  private async passRate(s: GroupScenario, heldOut: string[], signal: AbortSignal): Promise<PassRateResult> {
    const jobId = `group-pass-${++jobCounter}`;
    const cancel = () => void engineState.engine.cancel(jobId).catch(() => false);
    signal.addEventListener('abort', cancel, { once: true });
    try {
      return await engineState.engine.groupPassRate(jobId, {
        prompts: heldOut,
        samples: s.evalSamples,
        seed: s.seed + 1000,
        threshold: s.passThreshold,
      });
    } catch (e) {
      signal.throwIfAborted();
      if (e instanceof JobCancelledError) throw new GroupScenarioStoppedError();
      throw e;
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  }

  private async lengthRun(s: GroupScenario, stage: GroupStage, train: string[], signal: AbortSignal): Promise<void> {
    await groupState.createRun(this.setup(s, train, stage.id as GrpoLossType));
    const series = { name: stage.id, points: [] as { x: number; y: number }[] };
    this.lengths = [...this.lengths, series];
    const onIteration = () => {
      stage.done = groupState.iteration;
      series.points = groupState.history.map((r) => ({ x: r.step + 1, y: r.metrics['completions/mean_length'] }));
      this.lengths = this.lengths.map((x) => (x.name === series.name ? { ...series } : x));
      const m = groupState.history.at(-1)?.metrics;
      if (m) stage.note = `length ${m['completions/mean_length'].toFixed(1)} tokens, reward ${m.reward.toFixed(2)}`;
    };
    await groupState.playUntil(s.iterations, signal, onIteration);
    stage.done = s.iterations;
  }
}

export const pct = (x: number) => `${(x * 100).toFixed(0)} %`;

export const groupScenarioState = new GroupScenarioState();
