/**
 * The Runs page: every training run (reward model, SFT, PPO, DPO) as a record, read from
 * IndexedDB (`src/lib/data/runs.ts`); 2–4 selected runs overlaid on one metric, sampled on the
 * same evaluation prompts with one seed (in a temporary model: the loaded model and a running
 * PPO job are untouched), and compared pairwise — by a scripted labeller, or blind by the user
 * (arena style: two anonymous samples, keys 1 / 2 / 0).
 *
 * SFT and DPO runs are saved here when they finish (`recordTuned`), with the tuned weights as
 * the run's checkpoint, so a reload keeps them and the user can adopt them again.
 */
import {
  emptyWinTable,
  makeEval,
  parentDeleted,
  RunStore,
  runMetricNames,
  tallyWin,
  type RunMetricRow,
  type RunParent,
  type RunRecord,
  type WinCell,
} from '../lib/data/runs';
import type { ModelFiles, SampleWeights, TuneSample, TuneSummary } from '../lib/engine/types';
import { defaultLabellerConfig, labellerFromConfig, type LabellerKind } from '../lib/rlhf/labellers';
import { Rng, shuffleInPlace } from '../lib/model/rng';
import { hasLoraRows, loraOf } from '../lib/model/lora-config';
import { getSetting } from '../lib/storage/db';
import { writeZip, type ZipEntry } from '../lib/data/zip';
import { askPersistence, download, getStores } from './data.svelte';
import { engineState } from './engine.svelte';
import { modelState } from './model.svelte';
import { notices } from './notices.svelte';

/** The prompts every run is evaluated on (the Train page's before/after prompts). */
export const RUN_EVAL_PROMPTS = [
  'The movie was',
  'Once upon a time,',
  'Could you please',
  'The food at this restaurant',
];
/** One seed and one sampler for every run, so samples differ only by the weights. */
export const RUN_SAMPLING = { maxNewTokens: 24, temperature: 0.7, topK: 40, seed: 4242 } as const;
export const JUDGE_LABELLERS: readonly LabellerKind[] = ['sentiment', 'length', 'keyword'];
export const MAX_SELECTED = 4;

export interface SampleColumn {
  runId: string;
  texts: string[] | null;
  error: string | null;
}

export interface BlindItem {
  prompt: number;
  /** Runs shown as 1 and 2 (indices into the selection). */
  left: number;
  right: number;
}

let jobCounter = 0;

/** The runs store of the app's database (also the Train page's, for PPO checkpoints). */
export async function runStore(): Promise<RunStore> {
  return new RunStore((await getStores()).db);
}

export class RunsState {
  runs = $state.raw<RunRecord[]>([]);
  skipped = $state.raw<string[]>([]);
  loaded = $state(false);
  /** Ids of the runs compared, in the order picked. */
  selected = $state<string[]>([]);
  metric = $state('');
  /** Which run's weights the loaded model came from (matched by model name). */
  loadedFrom = $state.raw<{ id: string; name: string; modelName: string } | null>(null);
  busy = $state<string | null>(null);
  /** Messages shown on a run's row (e.g. its weights are gone). */
  rowErrors = $state<Record<string, string>>({});

  samples = $state.raw<{ runIds: string[]; columns: SampleColumn[] } | null>(null);
  sampling = $state(false);

  judgeKind = $state<LabellerKind>('sentiment');
  judgeTable = $state.raw<{ runIds: string[]; labeller: LabellerKind; table: WinCell[][] } | null>(null);

  blind = $state.raw<{ runIds: string[]; queue: BlindItem[]; done: number; table: WinCell[][] } | null>(null);

  readonly selectedRuns = $derived(
    this.selected.map((id) => this.runs.find((r) => r.id === id)).filter((r): r is RunRecord => !!r),
  );
  /** Metrics present in every selected run first, then the others. */
  readonly metricOptions = $derived.by(() => {
    const sets = this.selectedRuns.map((r) => new Set(runMetricNames(r)));
    const all = [...new Set(sets.flatMap((s) => [...s]))].sort();
    const common = all.filter((m) => sets.every((s) => s.has(m)));
    return { common, other: all.filter((m) => !common.includes(m)) };
  });
  readonly chosenMetric = $derived(
    [...this.metricOptions.common, ...this.metricOptions.other].includes(this.metric)
      ? this.metric
      : (this.metricOptions.common[0] ?? this.metricOptions.other[0] ?? ''),
  );

  parentGone(run: RunRecord): boolean {
    return parentDeleted(run, this.runs);
  }

  async refresh(): Promise<void> {
    try {
      const { runs, skipped } = await (await runStore()).list();
      this.runs = runs;
      if (skipped.length && skipped.join() !== this.skipped.join())
        notices.add(
          'warning',
          `${skipped.length} saved run${skipped.length === 1 ? '' : 's'} could not be read and ${skipped.length === 1 ? 'is' : 'are'} left out (${skipped[0]}).`,
        );
      this.skipped = skipped;
      this.selected = this.selected.filter((id) => runs.some((r) => r.id === id));
      this.loaded = true;
    } catch (e) {
      notices.add('error', (e as Error).message);
    }
  }

  toggle(id: string): void {
    if (this.selected.includes(id)) this.selected = this.selected.filter((x) => x !== id);
    else if (this.selected.length < MAX_SELECTED) this.selected = [...this.selected, id];
  }

  /** What a new run starts from: the loaded model, or the run it was adopted from. */
  currentParent(): RunParent {
    const name = modelState.info?.name ?? 'the loaded model';
    const from = this.loadedFrom;
    if (from && from.modelName === modelState.info?.name) return { kind: 'run', id: from.id, name: from.name };
    return { kind: 'base', name };
  }

  /**
   * Save a finished SFT or DPO run: config, parent, history, the weights as a checkpoint, and
   * samples on the evaluation prompts before (step 0, the start model) and after, with their
   * diversity metrics. Returns the run's id and the samples, or null when it was not saved.
   */
  async recordTuned(
    summary: TuneSummary,
    history: RunMetricRow[],
    parent: RunParent,
  ): Promise<{ id: string; name: string; samples: TuneSample[] } | null> {
    const id = crypto.randomUUID();
    try {
      const files: ModelFiles = await engineState.engine.tuneExport();
      const samples = await engineState.engine.tuneSamples(RUN_EVAL_PROMPTS, RUN_SAMPLING.maxNewTokens);
      const what = summary.method.toUpperCase();
      const rec: RunRecord = {
        version: 1,
        id,
        kind: summary.method,
        name: `${what} of ${summary.baseName} · ${new Date(summary.createdAt).toLocaleTimeString()}`,
        createdAt: summary.createdAt,
        updatedAt: Date.now(),
        config: { ...summary.config, train: summary.train, val: summary.val, seconds: summary.seconds },
        parent,
        checkpointId: `ckpt-${id}`,
        history,
        evals: [
          makeEval(
            0,
            samples.map((s) => ({ prompt: s.prompt, text: s.base })),
          ),
          makeEval(
            summary.steps,
            samples.map((s) => ({ prompt: s.prompt, text: s.tuned })),
          ),
        ],
        status: 'finished',
      };
      askPersistence();
      await (await runStore()).save(rec, files);
      if (this.loaded) await this.refresh();
      return { id, name: rec.name, samples };
    } catch (e) {
      notices.add('error', `The ${summary.method.toUpperCase()} run was not saved: ${(e as Error).message}`);
      return null;
    }
  }

  async remove(run: RunRecord): Promise<void> {
    const children = this.runs.filter((r) => r.parent.kind === 'run' && r.parent.id === run.id);
    const extra = children.length
      ? ` ${children.length} run${children.length === 1 ? '' : 's'} started from it will stay, marked "parent deleted".`
      : '';
    if (!confirm(`Delete run "${run.name}" and its weights?${extra}`)) return;
    if (run.kind === 'reward') {
      const active = await getStores()
        .then((s) => getSetting<string>(s.db, 'activeRewardModel'))
        .catch(() => undefined);
      if (active === run.id) {
        notices.add('warning', 'This reward model is the active one: make another one active (Reward page) first.');
        return;
      }
    }
    this.busy = run.id;
    try {
      await (await runStore()).delete(run);
      if (this.loadedFrom?.id === run.id) this.loadedFrom = null;
      await this.refresh();
    } catch (e) {
      notices.add('error', (e as Error).message);
    } finally {
      this.busy = null;
    }
  }

  /** Download a run's model as a zip: model.safetensors, config.json, tokenizer.json (and its card). */
  async exportRun(run: RunRecord): Promise<void> {
    this.setRowError(run.id, null);
    this.busy = run.id;
    try {
      const files = await (await runStore()).loadCheckpoint(run);
      const entries: ZipEntry[] = [
        { name: 'model.safetensors', data: new Uint8Array(files.weights) },
        { name: 'config.json', data: files.config },
        { name: 'tokenizer.json', data: files.tokenizer },
      ];
      if (files.card) entries.push({ name: 'model_card.json', data: files.card });
      const zip = writeZip(entries);
      const slug =
        run.name
          .replace(/[^\w.-]+/g, '-')
          .replace(/^-+|-+$/g, '')
          .slice(0, 60) || 'model';
      download(`${slug}.zip`, new Blob([zip as Uint8Array<ArrayBuffer>], { type: 'application/zip' }));
    } catch (e) {
      this.setRowError(run.id, (e as Error).message);
    } finally {
      this.busy = null;
    }
  }

  /** Ask for a new name and rename the run (and the model its weights load as). */
  async rename(run: RunRecord): Promise<void> {
    const name = prompt(`New name for "${run.name}"`, run.name);
    if (name === null || name.trim() === run.name) return;
    this.busy = run.id;
    try {
      await (await runStore()).rename(run, name);
      await this.refresh();
    } catch (e) {
      this.setRowError(run.id, (e as Error).message);
    } finally {
      this.busy = null;
    }
  }

  private setRowError(id: string, msg: string | null): void {
    const next = { ...this.rowErrors };
    if (msg === null) delete next[id];
    else next[id] = msg;
    this.rowErrors = next;
  }

  /** The weights of a run for sampling; throws with a message a user can act on. */
  private async weightsOf(run: RunRecord): Promise<SampleWeights> {
    const store = await runStore();
    if (run.kind === 'reward')
      throw new Error('A reward model scores text; it does not write any. Compare it by its curves.');
    if (run.kind === 'ppo') {
      const saved = await store.loadPpo(run.id);
      if (!saved) throw new Error(`The weights of run "${run.name}" are gone. Its curves and samples stay readable.`);
      const c = saved.state.config;
      return { kind: 'params', params: saved.state.policy, ...(c.lora ? { lora: loraOf(c) } : {}) };
    }
    if (run.kind === 'grpo' || run.kind === 'rloo' || run.kind === 'online-dpo') {
      const saved = await store.loadGroup(run.id);
      if (!saved) throw new Error(`The weights of run "${run.name}" are gone. Its curves stay readable.`);
      const c = saved.state.config;
      return { kind: 'params', params: saved.state.policy, ...(hasLoraRows(c) && c.lora ? { lora: loraOf(c) } : {}) };
    }
    return { kind: 'files', files: await store.loadCheckpoint(run) };
  }

  /** The run's weights become the loaded model (start and reference of the next runs). */
  async adopt(run: RunRecord): Promise<void> {
    if (this.busy) return;
    this.setRowError(run.id, null);
    if (run.kind !== 'sft' && run.kind !== 'dpo' && run.kind !== 'pretrain') {
      this.setRowError(
        run.id,
        'Only SFT, DPO and pretraining runs can be loaded here; resume a PPO, GRPO, RLOO or online DPO run on the Train page.',
      );
      return;
    }
    this.busy = run.id;
    try {
      const files = await (await runStore()).loadCheckpoint(run);
      const info = await engineState.engine.loadModel(files);
      modelState.info = info;
      this.loadedFrom = { id: run.id, name: run.name, modelName: info.name };
      notices.add('info', `Now using ${info.name} from run "${run.name}": new runs start from it.`);
    } catch (e) {
      this.setRowError(run.id, `${(e as Error).message} The loaded model is unchanged.`);
    } finally {
      this.busy = null;
    }
  }

  /** The selected runs sampled on the evaluation prompts with one seed, side by side. */
  async sample(): Promise<void> {
    if (this.sampling) return;
    const runs = this.selectedRuns;
    this.sampling = true;
    this.judgeTable = null;
    this.blind = null;
    const columns: SampleColumn[] = [];
    try {
      for (const run of runs) {
        try {
          const weights = await this.weightsOf(run);
          const texts = await engineState.engine.sampleWith(`runs-sample-${++jobCounter}`, weights, {
            prompts: [...RUN_EVAL_PROMPTS],
            ...RUN_SAMPLING,
          });
          columns.push({ runId: run.id, texts, error: null });
        } catch (e) {
          columns.push({ runId: run.id, texts: null, error: (e as Error).message });
        }
        this.samples = { runIds: runs.map((r) => r.id), columns: [...columns] };
      }
    } finally {
      this.sampling = false;
    }
  }

  /** Columns that have texts (the runs that can be compared). */
  private comparable(): SampleColumn[] {
    return this.samples?.columns.filter((c) => c.texts) ?? [];
  }

  /** A scripted labeller judges every pair of runs on every prompt (seeded, so repeatable). */
  judge(): void {
    const cols = this.comparable();
    if (cols.length < 2) {
      notices.add('warning', 'Sample at least two runs that write text first.');
      return;
    }
    const labeller = labellerFromConfig(defaultLabellerConfig(this.judgeKind));
    const rng = new Rng(7);
    const table = emptyWinTable(cols.length);
    for (let i = 0; i < cols.length; i++)
      for (let j = i + 1; j < cols.length; j++)
        RUN_EVAL_PROMPTS.forEach((prompt, p) =>
          tallyWin(table, i, j, labeller.compare(cols[i].texts![p], cols[j].texts![p], prompt, rng)),
        );
    this.judgeTable = { runIds: cols.map((c) => c.runId), labeller: this.judgeKind, table };
  }

  /** Arena: every pair on every prompt, in a shuffled order with random sides. */
  startBlind(): void {
    const cols = this.comparable();
    if (cols.length < 2) {
      notices.add('warning', 'Sample at least two runs that write text first.');
      return;
    }
    // Deliberately unseeded: a blind test's order and sides are new each time, so a person who
    // repeats it cannot learn where each run sits. Nothing trains on these picks.
    const rng = new Rng(Date.now() % 1_000_000);
    const queue: BlindItem[] = [];
    for (let i = 0; i < cols.length; i++)
      for (let j = i + 1; j < cols.length; j++)
        for (let p = 0; p < RUN_EVAL_PROMPTS.length; p++)
          queue.push(rng.next() < 0.5 ? { prompt: p, left: i, right: j } : { prompt: p, left: j, right: i });
    shuffleInPlace(queue, rng);
    this.blind = { runIds: cols.map((c) => c.runId), queue, done: 0, table: emptyWinTable(cols.length) };
  }

  readonly blindCurrent = $derived.by(() => {
    const b = this.blind;
    if (!b || b.done >= b.queue.length) return null;
    const item = b.queue[b.done];
    const text = (k: number) => this.samples?.columns.find((c) => c.runId === b.runIds[k])?.texts?.[item.prompt] ?? '';
    return { item, prompt: RUN_EVAL_PROMPTS[item.prompt], left: text(item.left), right: text(item.right) };
  });

  /** The user's pick: 1 (left), 2 (right) or 0 (tie). */
  pick(choice: 1 | 2 | 0): void {
    const b = this.blind;
    const cur = this.blindCurrent;
    if (!b || !cur) return;
    const table = b.table.map((row) => row.map((c) => ({ ...c })));
    tallyWin(table, cur.item.left, cur.item.right, choice === 1 ? 'A' : choice === 2 ? 'B' : 'tie');
    this.blind = { ...b, done: b.done + 1, table };
  }

  runName(id: string): string {
    return this.runs.find((r) => r.id === id)?.name ?? 'deleted run';
  }
}

export const runsState = new RunsState();
