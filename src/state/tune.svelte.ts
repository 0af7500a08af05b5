/**
 * SFT and DPO beside PPO on the Train page: which method is shown, the data each trains on
 * (demonstrations from the `demonstrations` store and a small form; preference pairs from the
 * records, as the Reward page reads them), settings, the run in the worker with live TRL-named
 * metrics, and the finished model the user can adopt (it becomes the loaded model: the start
 * and reference of the next PPO or DPO run) or discard.
 *
 * Only types come from `src/lib/rlhf` here, so TF.js stays in the worker. Drawing is batched
 * (at most every `FLUSH_MS`).
 */
import {
  compareRecords,
  newId,
  recordsToPairs,
  type Demonstration,
  type PreferenceRecord,
  type TrainingPair,
} from '../lib/data/records';
import type { TuneEvent, TuneSample, TuneSummary } from '../lib/engine/types';
import { JobCancelledError, TuneInputError } from '../lib/engine/errors';
import { DPO_SETTINGS, type DpoConfig } from '../lib/rlhf/dpo-config';
import { SFT_SETTINGS, type SftConfig } from '../lib/rlhf/sft-config';
import { deleteAll, getStores, saveAll } from './data.svelte';
import { engineState } from './engine.svelte';
import { modelState } from './model.svelte';
import { notices } from './notices.svelte';
import { RUN_EVAL_PROMPTS, runsState } from './runs.svelte';

export type TuneMethod = 'ppo' | 'grpo' | 'rloo' | 'dpo' | 'sft';
export const TUNE_METHODS: readonly { id: TuneMethod; label: string; hint: string }[] = [
  { id: 'ppo', label: 'PPO', hint: 'Reinforcement learning against a reward model or a scripted reward.' },
  {
    id: 'grpo',
    label: 'GRPO',
    hint: 'Group-relative policy optimisation: G samples per prompt, the group as the baseline; no value model.',
  },
  { id: 'rloo', label: 'RLOO', hint: 'REINFORCE leave-one-out: each sample’s baseline is the mean of the others.' },
  { id: 'dpo', label: 'DPO', hint: 'Direct Preference Optimization on the preference pairs; no reward model.' },
  { id: 'sft', label: 'SFT', hint: 'Supervised fine-tuning on demonstrations (prompt → good completion).' },
];

export interface MetricRow {
  step: number;
  metrics: Record<string, number>;
}

/** The SFT and DPO forms' settings: the whole tables (src/lib/rlhf/sft-config.ts, dpo-config.ts). */
export type SftSettings = SftConfig;
export type DpoSettings = DpoConfig;

/** Prompts sampled before and after, to show what changed (the Runs page's evaluation prompts). */
export const COMPARE_PROMPTS = RUN_EVAL_PROMPTS;

const FLUSH_MS = 200;
let jobCounter = 0;

export class TuneState {
  method = $state<TuneMethod>('ppo');

  // ---------------------------------------------------------------- data
  records = $state.raw<PreferenceRecord[]>([]);
  demonstrations = $state.raw<Demonstration[]>([]);
  /** Only this annotator's labels ('' = everyone), as on the Reward page. */
  annotator = $state('');
  readonly annotators = $derived([...new Set(this.records.map((r) => r.annotator.name))].sort());
  readonly usable = $derived(
    this.annotator ? this.records.filter((r) => r.annotator.name === this.annotator) : this.records,
  );
  readonly pairs: TrainingPair[] = $derived(recordsToPairs(this.usable));
  loaded = $state(false);

  /** The demonstration form. */
  newPrompt = $state('The movie was');
  newCompletion = $state('');
  formError = $state<string | null>(null);

  // ---------------------------------------------------------------- settings
  sft = $state<SftSettings>({ ...SFT_SETTINGS.defaults });
  dpo = $state<DpoSettings>({ ...DPO_SETTINGS.defaults });

  // ---------------------------------------------------------------- run
  /** The running job. */
  running = $state.raw<{ method: 'sft' | 'dpo'; jobId: string } | null>(null);
  sftHistory = $state.raw<MetricRow[]>([]);
  dpoHistory = $state.raw<MetricRow[]>([]);
  sftStart = $state.raw<Extract<TuneEvent, { type: 'start' }> | null>(null);
  dpoStart = $state.raw<Extract<TuneEvent, { type: 'start' }> | null>(null);
  sftError = $state<string | null>(null);
  dpoError = $state<string | null>(null);
  /** Steps done and planned of the running job. */
  progress = $state.raw<{ step: number; total: number }>({ step: 0, total: 0 });
  /** The finished run's model, waiting to be adopted or discarded. */
  pending = $state.raw<TuneSummary | null>(null);
  samples = $state.raw<TuneSample[] | null>(null);
  sampling = $state(false);
  /** The run record the pending model was saved as (Runs page), or null when saving failed. */
  savedRunId = $state<string | null>(null);
  savedRunName = $state('');
  savingRun = $state(false);
  adopting = $state(false);

  async refresh(): Promise<void> {
    try {
      const s = await getStores();
      const [records, demos] = await Promise.all([s.preferences.getAll(), s.demonstrations.getAll()]);
      this.records = records.sort(compareRecords); // a fixed order: same labels, same run
      this.demonstrations = demos.sort((a, b) => a.createdAt - b.createdAt);
      this.loaded = true;
    } catch (e) {
      notices.add('error', (e as Error).message);
    }
    try {
      if (engineState.ready) this.pending = await engineState.engine.tuneStatus();
    } catch {
      /* no engine yet */
    }
  }

  /** Save the typed prompt → completion as a demonstration (at once, when the user acts). */
  async addDemonstration(): Promise<void> {
    this.formError = null;
    if (this.newCompletion.trim() === '') {
      this.formError = 'Write a completion: SFT learns the completion, so an empty one teaches nothing.';
      return;
    }
    const demo: Demonstration = {
      id: newId(),
      prompt: this.newPrompt,
      completion: this.newCompletion,
      source: 'written',
      createdAt: Date.now(),
    };
    try {
      await saveAll([], [demo]);
      this.demonstrations = [...this.demonstrations, demo];
      this.newCompletion = '';
    } catch (e) {
      this.formError = `Not saved: ${(e as Error).message}`;
    }
  }

  async removeDemonstration(id: string): Promise<void> {
    try {
      await deleteAll([], [id]);
      this.demonstrations = this.demonstrations.filter((d) => d.id !== id);
    } catch (e) {
      notices.add('error', (e as Error).message);
    }
  }

  async runSft(): Promise<void> {
    if (this.running) return;
    const examples = this.demonstrations.map((d) => ({ prompt: d.prompt, completion: d.completion }));
    await this.run('sft', (jobId, onEvent) =>
      engineState.engine.sftRun(jobId, examples, $state.snapshot(this.sft), onEvent),
    );
  }

  async runDpo(): Promise<void> {
    if (this.running) return;
    const pairs = $state.snapshot(this.pairs) as TrainingPair[];
    await this.run('dpo', (jobId, onEvent) =>
      engineState.engine.dpoRun(jobId, pairs, $state.snapshot(this.dpo), onEvent),
    );
  }

  private async run(
    method: 'sft' | 'dpo',
    call: (jobId: string, onEvent: (e: TuneEvent) => void) => Promise<TuneSummary>,
  ): Promise<void> {
    const jobId = `${method}-${++jobCounter}`;
    this.running = { method, jobId };
    const setHistory = (rows: MetricRow[]) => (method === 'sft' ? (this.sftHistory = rows) : (this.dpoHistory = rows));
    const setError = (msg: string | null) => (method === 'sft' ? (this.sftError = msg) : (this.dpoError = msg));
    setHistory([]);
    setError(null);
    if (method === 'sft') this.sftStart = null;
    else this.dpoStart = null;
    this.progress = { step: 0, total: 0 };
    const rows: MetricRow[] = [];
    let lastFlush = 0;
    const flush = () => {
      setHistory([...rows]);
      lastFlush = performance.now();
    };
    try {
      const summary = await call(jobId, (e) => {
        if (e.type === 'start') {
          if (method === 'sft') this.sftStart = e;
          else this.dpoStart = e;
          this.progress = { step: 0, total: e.totalSteps };
          // Step 0: the metrics before any update.
          rows.push({ step: 0, metrics: e.initial });
          flush();
          return;
        }
        rows.push(e.row);
        if (e.type === 'step') this.progress = { step: e.row.step, total: this.progress.total };
        if (e.type === 'epoch' || performance.now() - lastFlush > FLUSH_MS) flush();
      });
      flush();
      this.pending = summary;
      this.samples = null;
      this.savedRunId = null;
      notices.add(
        'info',
        `${method.toUpperCase()} finished: ${summary.steps} steps on ${summary.train} ${method === 'sft' ? 'demonstrations' : 'pairs'}. Compare samples, then use the tuned model or discard it.`,
      );
      // Every finished run is a record (Runs page): weights, history, evaluation samples.
      this.savingRun = true;
      try {
        const saved = await runsState.recordTuned(summary, [...rows], runsState.currentParent());
        if (saved) {
          this.savedRunId = saved.id;
          this.savedRunName = saved.name;
          if (this.pending === summary) this.samples = saved.samples;
        }
      } finally {
        this.savingRun = false;
      }
    } catch (e) {
      flush();
      if (!(e instanceof JobCancelledError))
        setError(`${(e as Error).message}${e instanceof TuneInputError ? '' : ' The loaded model is unchanged.'}`);
    } finally {
      this.running = null;
    }
  }

  cancel(): void {
    if (this.running) void engineState.engine.cancel(this.running.jobId);
  }

  async compare(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      this.samples = await engineState.engine.tuneSamples(COMPARE_PROMPTS, 24);
    } catch (e) {
      notices.add('error', (e as Error).message);
    } finally {
      this.sampling = false;
    }
  }

  /** The tuned model becomes the loaded one (start and reference of PPO and DPO from now on). */
  async adopt(): Promise<void> {
    if (this.adopting || !this.pending) return;
    this.adopting = true;
    try {
      const info = await engineState.engine.tuneAdopt();
      modelState.info = info;
      const runId = this.savedRunId;
      runsState.loadedFrom = runId ? { id: runId, name: this.savedRunName, modelName: info.name } : null;
      this.pending = null;
      this.samples = null;
      notices.add(
        'info',
        `Now using ${info.name}: sampling, reward models, PPO and DPO start from it (and DPO and PPO use it as their reference). Reload the page to go back to the bundled model.`,
      );
    } catch (e) {
      notices.add('error', `The tuned model was not loaded: ${(e as Error).message} The previous model stays.`);
    } finally {
      this.adopting = false;
    }
  }

  async discard(): Promise<void> {
    try {
      await engineState.engine.tuneDiscard();
      this.pending = null;
      this.samples = null;
    } catch (e) {
      notices.add('error', (e as Error).message);
    }
  }
}

export const tuneState = new TuneState();
