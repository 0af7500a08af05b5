/**
 * The feedback studio: prompt sources, a queue of ready-made comparisons that
 * the engine fills ahead of the user, the four feedback modes, undo, and batch
 * labelling with a scripted labeller.
 *
 * - Never wait: `pump()` keeps `QUEUE_TARGET` items ready, generating several
 *   items per `generate` call (each call has a unique job id). Items made with
 *   settings the user has since changed are dropped, and a running generation
 *   with stale settings is cancelled.
 * - Saved at once: a label is committed to IndexedDB (`saveAll` resolves after
 *   the transaction) before the next item is shown; on failure the item stays
 *   and a notice says why.
 * - Seeded: the queue's prompts and sampling seeds come from `deriveSeed(seed, labels
 *   saved before this visit, generate call)`, so two fresh profiles see the same pairs
 *   and a later visit sees new ones.
 *
 * This file is the queue, undo and the settings; each mode's part lives in `feedback/`:
 * `pairwise` (votes, arena, uncertainty order), `ranking`, `rating`, `edit`, `scripted`
 * (labellers), `sources` (prompt sets); `studio.ts` holds what they share.
 */
import type { GenerateResult, SamplingSettings } from '../lib/engine/types';
import type { Demonstration, NewRecordInput, PreferenceRecord } from '../lib/data/records';
import { deriveSeed, Rng } from '../lib/model/rng';
import { JobCancelledError } from '../lib/engine/errors';
import { annotators } from './annotators.svelte';
import { deleteAll, getStores, saveAll } from './data.svelte';
import { engineState } from './engine.svelte';
import { DEFAULT_SAMPLING, modelState } from './model.svelte';
import { notices } from './notices.svelte';
import { EditMode } from './feedback/edit';
import { PairwiseMode } from './feedback/pairwise.svelte';
import { RankingMode } from './feedback/ranking.svelte';
import { RatingMode } from './feedback/rating.svelte';
import { ScriptedLabelling } from './feedback/scripted.svelte';
import { PromptSources } from './feedback/sources.svelte';
import {
  drawPrompts,
  recordSampling,
  toResponse,
  type QueueItem,
  type Studio,
  type StudioMode,
} from './feedback/studio';

export { STUDIO_MODES, type QueueItem, type StudioMode } from './feedback/studio';

/** Items kept ready ahead of the user. */
export const QUEUE_TARGET = 4;
/** Candidates drawn per kept pair when ordering by reward-model uncertainty. */
const UNCERTAINTY_POOL = 4;
/** Rows (samples) per `generate` call at most (the engine takes up to 64). */
const MAX_ROWS_PER_CALL = 16;

interface Done {
  item: QueueItem;
  record: PreferenceRecord | null;
  demo: Demonstration | null;
}

let itemCounter = 0;
let jobCounter = 0;

function isCancel(e: unknown): boolean {
  return e instanceof JobCancelledError;
}

export class FeedbackState implements Studio {
  mode = $state<StudioMode>('pairwise');
  sampling = $state<SamplingSettings>({ ...DEFAULT_SAMPLING, maxNewTokens: 24 });

  current = $state.raw<QueueItem | null>(null);
  queue = $state.raw<QueueItem[]>([]);
  generating = $state(false);
  genError = $state<string | null>(null);
  saving = $state(false);
  /** Labels saved in this visit. */
  labelled = $state(0);
  history = $state.raw<Done[]>([]);

  /** Whether the studio is on screen (the queue is only refilled then). */
  active = $state(false);

  // Each mode's part (see the file header).
  readonly sources = new PromptSources();
  readonly pairwise = new PairwiseMode(this);
  readonly ranking = new RankingMode(this);
  readonly rating = new RatingMode(this);
  readonly editing = new EditMode(this);
  readonly scripted = new ScriptedLabelling(this);

  private runningJob: { id: string; config: string } | null = null;
  private pumping = false;
  /** Labels saved before this visit's first generation (part of the queue's seeds). */
  private savedBefore: number | null = null;
  private batchNo = 0;

  get source() {
    return this.sources.current;
  }

  get prompts(): readonly string[] {
    return this.sources.current.set.prompts;
  }

  get modelReady(): boolean {
    return engineState.ready && modelState.status === 'ready' && modelState.info !== null;
  }

  /** Responses per item in the current mode. */
  get k(): number {
    switch (this.mode) {
      case 'pairwise':
        return 2;
      case 'ranking':
        return this.ranking.k;
      case 'rating':
        return this.rating.k;
      case 'edit':
        return 1;
    }
  }

  /** Everything that changes what an item looks like; items made under another key are dropped. */
  get configKey(): string {
    const s = this.sampling;
    const p = this.pairwise;
    return JSON.stringify([
      this.mode,
      this.k,
      this.mode === 'pairwise' && p.arena ? p.arenaTemps : null,
      this.mode === 'pairwise' && p.byUncertainty,
      s.maxNewTokens,
      s.temperature,
      s.topK,
      s.topP,
      s.seed,
      s.useCache,
      this.source.id,
      this.source.set.prompts.length,
      modelState.info?.name ?? '',
    ]);
  }

  /** Problems with the sampling settings, or null (the engine would refuse them). */
  get settingsProblem(): string | null {
    const s = this.sampling;
    if (!Number.isInteger(s.maxNewTokens) || s.maxNewTokens < 1 || s.maxNewTokens > 512)
      return 'Max new tokens must be a whole number from 1 to 512.';
    if (!Number.isInteger(s.topK) || s.topK < 0) return 'Top-k must be a whole number ≥ 0.';
    if (!Number.isSafeInteger(s.seed)) return 'The seed must be a whole number.';
    return null;
  }

  // ------------------------------------------------------------------------- the scenario runner's surface

  selectSource(id: string): void {
    this.sources.select(id);
  }

  get batch() {
    return this.scripted.batch;
  }

  labelQueue(n: number): Promise<void> {
    return this.scripted.labelQueue(n);
  }

  cancelBatch(): void {
    this.scripted.cancel();
  }

  isCancel(e: unknown): boolean {
    return isCancel(e);
  }

  cancelGeneration(): void {
    if (this.runningJob) void engineState.engine.cancel(this.runningJob.id);
  }

  // -------------------------------------------------------------------------
  // The queue

  /** Call when the page shows or the settings change: drop stale items and refill. */
  sync(): void {
    const key = this.configKey;
    // The item on screen stays when only sampling changed; another mode or K needs another item.
    if (this.current && (this.current.mode !== this.mode || this.current.responses.length !== this.k)) {
      this.current = null;
    }
    this.queue = this.queue.filter((q) => q.config === key);
    if (this.runningJob && this.runningJob.config !== key) void engineState.engine.cancel(this.runningJob.id);
    // An item made with old settings is replaced as soon as one with the new settings is ready.
    if (!this.current || (this.current.config !== key && this.queue.length > 0)) this.advance();
    void this.pump();
  }

  private advance(): void {
    const key = this.configKey;
    const i = this.queue.findIndex((q) => q.config === key);
    this.current = i >= 0 ? this.queue[i] : null;
    this.queue = i >= 0 ? [...this.queue.slice(0, i), ...this.queue.slice(i + 1)] : this.queue;
    void this.pump();
  }

  get ready(): number {
    const key = this.configKey;
    return this.queue.filter((q) => q.config === key).length;
  }

  /** Keep `QUEUE_TARGET` items ready (plus the one on screen). One generation at a time. */
  async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (
        this.active &&
        this.modelReady &&
        !this.scripted.running &&
        !this.settingsProblem &&
        this.source.set.prompts.length > 0 &&
        (this.ready < QUEUE_TARGET || !this.current)
      ) {
        const config = this.configKey;
        // The first screen comes from a small call; later calls fill the queue.
        const want = this.current || this.ready > 0 ? QUEUE_TARGET - this.ready : 1;
        const ordered = this.pairwise.byUncertainty && this.mode === 'pairwise';
        // Ordering by uncertainty draws a larger pool and keeps its least certain pairs.
        const pool = ordered ? Math.max(want, 1) * UNCERTAINTY_POOL : want;
        const n = Math.max(1, Math.min(pool, Math.floor(MAX_ROWS_PER_CALL / this.k)));
        this.generating = true;
        let items: QueueItem[];
        try {
          items = await this.makeItems(n, config);
          if (ordered) items = (await this.pairwise.leastCertain(items)).slice(0, Math.max(1, want));
          this.genError = null;
        } catch (e) {
          if (isCancel(e)) continue;
          this.genError = (e as Error).message;
          notices.add('error', `Could not generate samples: ${(e as Error).message}`);
          break;
        }
        if (config !== this.configKey) continue;
        this.queue = [...this.queue, ...items];
        if (!this.current || this.current.config !== config) {
          this.current = this.queue[0];
          this.queue = this.queue.slice(1);
        }
      }
    } finally {
      this.generating = false;
      this.pumping = false;
    }
  }

  private async generateRows(prompts: string[], s: SamplingSettings, config: string): Promise<GenerateResult> {
    const id = `feedback-${++jobCounter}`;
    this.runningJob = { id, config };
    try {
      return await engineState.engine.generate(id, { prompts, ...s });
    } finally {
      this.runningJob = null;
    }
  }

  private async makeItems(n: number, config: string): Promise<QueueItem[]> {
    const mode = this.mode;
    const k = this.k;
    const s = $state.snapshot(this.sampling) as SamplingSettings;
    const list = [...this.prompts];
    const info = modelState.info!;
    this.savedBefore ??= await (await getStores()).preferences.count();
    // One seed per generate call: the prompts, the sampling and the arena's sides follow from it.
    const seed = deriveSeed(s.seed, this.savedBefore, this.batchNo++);
    const rng = new Rng(seed);
    const prompts = drawPrompts(list, n, rng);
    const base = {
      modelId: info.name,
      checkpointId: info.source === 'bundled' ? 'base' : 'files',
      config,
      mode,
    };
    if (mode === 'pairwise' && this.pairwise.arena) {
      const gen = (p: string[], settings: SamplingSettings) => this.generateRows(p, settings, config);
      return this.pairwise.arenaItems(prompts, s, seed, rng, gen, base, () => ++itemCounter);
    }
    const rows = prompts.flatMap((p) => Array.from({ length: k }, () => p));
    const res = await this.generateRows(rows, { ...s, seed }, config);
    return prompts.map((_, i) => ({
      ...base,
      key: ++itemCounter,
      prompt: res.samples[i * k].prompt,
      responses: res.samples.slice(i * k, i * k + k).map((x) => toResponse(x)),
      arms: null,
      sampling: recordSampling(s),
      seed,
    }));
  }

  // -------------------------------------------------------------------------
  // Labels (each mode's part makes its record and calls `commit`)

  input(item: QueueItem): NewRecordInput {
    return {
      prompt: item.prompt,
      responses: item.responses,
      modelId: item.modelId,
      checkpointId: item.checkpointId,
      sampling: item.sampling,
      seed: item.seed,
      annotator: annotators.annotator,
    };
  }

  /** Save, then move on. Returns false (the item stays) when the save failed. */
  async commit(item: QueueItem, record: PreferenceRecord | null, demo: Demonstration | null): Promise<boolean> {
    this.saving = true;
    try {
      if (record) {
        await saveAll([record], demo ? [demo] : []);
        void annotators.persistCurrent();
        this.labelled++;
      }
      this.history = [...this.history.slice(-49), { item, record, demo }];
      if (this.current?.key === item.key) this.advance();
      return true;
    } catch (e) {
      notices.add('error', (e as Error).message);
      return false;
    } finally {
      this.saving = false;
    }
  }

  build<T>(fn: () => T): T | null {
    try {
      return fn();
    } catch (e) {
      notices.add('error', `This label could not be saved: ${(e as Error).message}`);
      return null;
    }
  }

  /** Move on without a label (ranking, rating, edit; pairwise saves 'skip'). */
  async pass(): Promise<void> {
    const item = this.current;
    if (!item || this.saving) return;
    if (item.mode === 'pairwise') {
      await this.pairwise.vote('skip');
      return;
    }
    await this.commit(item, null, null);
  }

  get canUndo(): boolean {
    return this.history.length > 0 && !this.saving;
  }

  /** Take back the last label (deleted from storage) and show its item again. */
  async undo(): Promise<void> {
    const last = this.history.at(-1);
    if (!last || this.saving) return;
    this.saving = true;
    try {
      if (last.record) {
        await deleteAll([last.record.id], last.demo ? [last.demo.id] : []);
        this.labelled = Math.max(0, this.labelled - 1);
      }
      this.history = this.history.slice(0, -1);
      if (this.current) this.queue = [this.current, ...this.queue];
      this.current = { ...last.item, config: this.configKey };
      this.pairwise.reveal = null;
    } catch (e) {
      notices.add('error', (e as Error).message);
    } finally {
      this.saving = false;
    }
  }
}

export const feedback = new FeedbackState();
