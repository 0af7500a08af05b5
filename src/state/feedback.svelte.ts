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
 */
import type { GenerateResult, SamplingSettings } from '../lib/engine/types';
import { sentence, sentenceEnd } from '../lib/data/messages';
import { parsePromptSet, promptSetFromJsonl, type PromptSet } from '../lib/data/prompts';
import {
  makeRecord,
  newId,
  RANKING_MAX,
  RANKING_MIN,
  RATING_MAX_RESPONSES,
  toDemonstration,
  type Demonstration,
  type NewRecordInput,
  type PairwiseLabel,
  type PreferenceRecord,
  type RatingFlags,
  type ResponseSample,
  type SamplingSettings as RecordSampling,
} from '../lib/data/records';
import type { Choice, Judgement, Labeller } from '../lib/rlhf/labellers';
import { Rng } from '../lib/model/rng';
import { JobCancelledError } from '../lib/engine/errors';
import reviewsJson from '../../static/prompts/reviews.json';
import storiesJson from '../../static/prompts/stories.json';
import requestsJson from '../../static/prompts/requests.json';
import { annotators } from './annotators.svelte';
import { askPersistence, dataState, deleteAll, getStores, saveAll } from './data.svelte';
import { engineState } from './engine.svelte';
import { DEFAULT_SAMPLING, modelState } from './model.svelte';
import { notices } from './notices.svelte';

export const STUDIO_MODES = [
  { id: 'pairwise', label: 'Pairwise', hint: 'Two samples: pick the better one.' },
  { id: 'ranking', label: 'Ranking', hint: 'Order K samples from best to worst.' },
  { id: 'rating', label: 'Rating', hint: 'Rate each sample 1–7 and flag problems.' },
  { id: 'edit', label: 'Edit', hint: 'Rewrite a sample; saved as a demonstration and as edited ≻ original.' },
] as const;
export type StudioMode = (typeof STUDIO_MODES)[number]['id'];

/** Items kept ready ahead of the user. */
export const QUEUE_TARGET = 4;
/** Candidates drawn per kept pair when ordering by reward-model uncertainty. */
const UNCERTAINTY_POOL = 4;
/** Rows (samples) per `generate` call at most (the engine takes up to 64). */
const MAX_ROWS_PER_CALL = 16;
/** Pairs per `generate` call when a labeller labels the queue (2 rows each). */
const BATCH_PAIRS_PER_CALL = 24;

/** One arm of an arena comparison: the setting a sample came from, hidden until the vote. */
export interface Arm {
  name: string;
  temperature: number;
  seed: number;
}

export interface QueueItem {
  key: number;
  /** The settings fingerprint it was made with (`FeedbackState.configKey`). */
  config: string;
  mode: StudioMode;
  prompt: string;
  responses: ResponseSample[];
  /** Arena only: where each response came from, in display order. */
  arms: Arm[] | null;
  sampling: RecordSampling;
  seed: number;
  modelId: string;
  checkpointId: string;
  /** Pairwise, when ordering by uncertainty: |r_A − r_B| under the active reward model. */
  uncertainty?: number;
}

interface Done {
  item: QueueItem;
  record: PreferenceRecord | null;
  demo: Demonstration | null;
}

export interface Reveal {
  chosen: PairwiseLabel;
  arms: Arm[];
}

export interface PromptSource {
  id: string;
  set: PromptSet;
  builtIn: boolean;
}

export const BUNDLED_SETS: PromptSource[] = [
  { id: 'bundled:reviews', set: parsePromptSet(reviewsJson), builtIn: true },
  { id: 'bundled:stories', set: parsePromptSet(storiesJson), builtIn: true },
  { id: 'bundled:requests', set: parsePromptSet(requestsJson), builtIn: true },
];
const TYPED_ID = 'typed';

let itemCounter = 0;
let jobCounter = 0;
/** A fresh offset per visit, so two sessions with the same base seed do not label the same pairs. */
const SESSION_SALT = Math.floor(Math.random() * 1_000_000);

function recordSampling(s: SamplingSettings, temperature = s.temperature): RecordSampling {
  return { temperature, topK: s.topK, topP: s.topP, maxNewTokens: s.maxNewTokens };
}

function isCancel(e: unknown): boolean {
  return e instanceof JobCancelledError;
}

function toResponse(
  s: GenerateResult['samples'][number],
  arm?: { sampling: ResponseSample['sampling']; seed: number },
): ResponseSample {
  return arm
    ? { text: s.text, tokenIds: [...s.ids], sampling: arm.sampling, seed: arm.seed }
    : { text: s.text, tokenIds: [...s.ids] };
}

export class FeedbackState {
  mode = $state<StudioMode>('pairwise');
  /** Pairwise: compare two settings, hidden until the vote. */
  arena = $state(false);
  /** Pairwise: label first the pairs the active reward model is least sure about (active learning). */
  byUncertainty = $state(false);
  arenaTemps = $state<[number, number]>([0.6, 1.3]);
  rankK = $state(4);
  ratingK = $state(2);
  sampling = $state<SamplingSettings>({ ...DEFAULT_SAMPLING, maxNewTokens: 24 });

  sources = $state.raw<PromptSource[]>(BUNDLED_SETS);
  sourceId = $state(BUNDLED_SETS[0].id);
  typedText = $state('');

  current = $state.raw<QueueItem | null>(null);
  queue = $state.raw<QueueItem[]>([]);
  generating = $state(false);
  genError = $state<string | null>(null);
  saving = $state(false);
  /** Labels saved in this visit. */
  labelled = $state(0);
  history = $state.raw<Done[]>([]);
  reveal = $state.raw<Reveal | null>(null);
  /** Arena tally per arm name. */
  tally = $state.raw<Record<string, { wins: number; losses: number; ties: number }>>({});

  /** "Label the queue" with a scripted labeller. */
  batch = $state.raw<{ done: number; total: number; saved: number; running: boolean; message?: string } | null>(null);

  /** Whether the studio is on screen (the queue is only refilled then). */
  active = $state(false);

  private runningJob: { id: string; config: string } | null = null;
  private pumping = false;
  private batchJob: string | null = null;
  private batchCancelled = false;
  private promptRng = new Rng(SESSION_SALT);
  private batchNo = 0;
  private sourcesLoaded = false;
  private sourcesVersion = -1;

  get source(): PromptSource {
    return this.sources.find((s) => s.id === this.sourceId) ?? this.sources[0];
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
        return Math.min(RANKING_MAX, Math.max(RANKING_MIN, Math.round(this.rankK)));
      case 'rating':
        return Math.min(RATING_MAX_RESPONSES, Math.max(1, Math.round(this.ratingK)));
      case 'edit':
        return 1;
    }
  }

  /** Everything that changes what an item looks like; items made under another key are dropped. */
  get configKey(): string {
    const s = this.sampling;
    return JSON.stringify([
      this.mode,
      this.k,
      this.mode === 'pairwise' && this.arena ? this.arenaTemps : null,
      this.mode === 'pairwise' && this.byUncertainty,
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

  // -------------------------------------------------------------------------
  // Prompt sources

  async loadSources(): Promise<void> {
    if (this.sourcesLoaded && dataState.version === this.sourcesVersion) return;
    this.sourcesVersion = dataState.version;
    this.sourcesLoaded = true;
    try {
      const s = await getStores();
      const stored = (await s.prompts.getAll()).sort((a, b) => a.createdAt - b.createdAt);
      this.sources = [
        ...BUNDLED_SETS,
        ...stored.map((p) => ({
          id: p.id,
          set: { name: p.name, description: p.description, prompts: p.prompts },
          builtIn: false,
        })),
      ];
      const typed = stored.find((p) => p.id === TYPED_ID);
      if (typed && !this.typedText) this.typedText = typed.prompts.join('\n');
    } catch (e) {
      notices.add('error', (e as Error).message);
    }
  }
  selectSource(id: string): void {
    if (!this.sources.some((s) => s.id === id)) return;
    this.sourceId = id;
  }

  /** Save the typed prompts (one per line) as the "Typed prompts" set and use it. */
  async useTyped(): Promise<boolean> {
    let set: PromptSet;
    try {
      set = parsePromptSet({
        name: 'Typed prompts',
        description: 'Prompts you typed',
        prompts: this.typedText.split('\n').filter((l) => l.trim() !== ''),
      });
    } catch (e) {
      notices.add('error', (e as Error).message);
      return false;
    }
    return this.saveSource(TYPED_ID, set);
  }

  /** Import prompt-only JSONL (`{"prompt": …}` per line) or a prompt-set JSON file. */
  async importPrompts(file: File): Promise<boolean> {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const name = file.name.replace(/\.(jsonl?|txt)$/i, '') || 'imported prompts';
    let set: PromptSet | null = null;
    if (/\.json$/i.test(file.name)) {
      try {
        set = parsePromptSet(new TextDecoder().decode(bytes));
      } catch (e) {
        notices.add('error', `${file.name}: ${sentence((e as Error).message)} Nothing was imported.`);
        return false;
      }
    } else {
      const res = promptSetFromJsonl(bytes, name, { description: `Imported from ${file.name}` });
      if (!res.set) {
        const first = res.errors.slice(0, 5).map((e) => sentenceEnd(e.line ? `line ${e.line}: ${e.reason}` : e.reason));
        const more = res.errors.length > 5 ? ` (and ${res.errors.length - 5} more)` : '';
        notices.add('error', `${file.name} was not imported: ${first.join('; ')}${more}.`);
        return false;
      }
      set = res.set;
    }
    return this.saveSource(newId(), set);
  }

  private async saveSource(id: string, set: PromptSet): Promise<boolean> {
    try {
      const s = await getStores();
      askPersistence();
      await s.prompts.put({ ...set, id, createdAt: Date.now() });
      dataState.bump();
      this.sourcesLoaded = false;
      await this.loadSources();
      this.sourceId = id;
      return true;
    } catch (e) {
      notices.add('error', (e as Error).message);
      return false;
    }
  }

  private nextPrompts(n: number): string[] {
    const list = this.source.set.prompts;
    return Array.from({ length: n }, () => list[this.promptRng.int(list.length)]);
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
        !this.batch?.running &&
        !this.settingsProblem &&
        this.source.set.prompts.length > 0 &&
        (this.ready < QUEUE_TARGET || !this.current)
      ) {
        const config = this.configKey;
        // The first screen comes from a small call; later calls fill the queue.
        const want = this.current || this.ready > 0 ? QUEUE_TARGET - this.ready : 1;
        const ordered = this.byUncertainty && this.mode === 'pairwise';
        // Ordering by uncertainty draws a larger pool and keeps its least certain pairs.
        const pool = ordered ? Math.max(want, 1) * UNCERTAINTY_POOL : want;
        const n = Math.max(1, Math.min(pool, Math.floor(MAX_ROWS_PER_CALL / this.k)));
        this.generating = true;
        let items: QueueItem[];
        try {
          items = await this.makeItems(n, config);
          if (ordered) items = (await this.leastCertain(items)).slice(0, Math.max(1, want));
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

  /** Score both responses of each pair with the active reward model; most uncertain first. */
  private async leastCertain(items: QueueItem[]): Promise<QueueItem[]> {
    try {
      const flat = items.flatMap((it) => it.responses.map((r) => ({ prompt: it.prompt, response: r.text })));
      const scores = await engineState.engine.scoreResponses(flat);
      const scored = items.map((it, i) => ({ ...it, uncertainty: Math.abs(scores[2 * i] - scores[2 * i + 1]) }));
      return scored.sort((a, b) => a.uncertainty - b.uncertainty);
    } catch (e) {
      this.byUncertainty = false;
      notices.add('warning', `Ordering by uncertainty is off: ${(e as Error).message}`);
      return items;
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
    const prompts = this.nextPrompts(n);
    const seed = s.seed + SESSION_SALT + this.batchNo++ * 7919;
    const info = modelState.info!;
    const base = {
      modelId: info.name,
      checkpointId: info.source === 'bundled' ? 'base' : 'files',
      config,
      mode,
    };
    if (mode === 'pairwise' && this.arena) {
      const temps = [...this.arenaTemps];
      const results: GenerateResult[] = [];
      for (let arm = 0; arm < 2; arm++) {
        results.push(await this.generateRows(prompts, { ...s, temperature: temps[arm], seed: seed + arm }, config));
      }
      return prompts.map((_, i) => {
        const swap = this.promptRng.next() < 0.5;
        const order = swap ? [1, 0] : [0, 1];
        const arms = order.map((a) => ({
          name: `temperature ${temps[a].toFixed(2)}`,
          temperature: temps[a],
          seed: seed + a,
        }));
        return {
          ...base,
          key: ++itemCounter,
          prompt: results[0].samples[i].prompt,
          responses: order.map((a) =>
            toResponse(results[a].samples[i], { sampling: recordSampling(s, temps[a]), seed: seed + a }),
          ),
          arms,
          // The record's own setting is response A's; each response also carries its own.
          sampling: recordSampling(s, arms[0].temperature),
          seed: arms[0].seed,
        };
      });
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
  // Labels

  private input(item: QueueItem): NewRecordInput {
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
  private async commit(item: QueueItem, record: PreferenceRecord | null, demo: Demonstration | null) {
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

  private build<T>(fn: () => T): T | null {
    try {
      return fn();
    } catch (e) {
      notices.add('error', `This label could not be saved: ${(e as Error).message}`);
      return null;
    }
  }

  async vote(label: PairwiseLabel): Promise<boolean> {
    const item = this.current;
    if (!item || item.mode !== 'pairwise' || this.saving) return false;
    const record = this.build(() => makeRecord(this.input(item), 'pairwise', label));
    if (!record) return false;
    const ok = await this.commit(item, record, null);
    if (ok && item.arms) {
      this.reveal = { chosen: label, arms: item.arms };
      if (label === 'A' || label === 'B' || label === 'tie') {
        const t = { ...this.tally };
        const [a, b] = item.arms.map((x) => x.name);
        for (const n of [a, b]) t[n] ??= { wins: 0, losses: 0, ties: 0 };
        if (label === 'tie') {
          t[a] = { ...t[a], ties: t[a].ties + 1 };
          t[b] = { ...t[b], ties: t[b].ties + 1 };
        } else {
          const [w, l] = label === 'A' ? [a, b] : [b, a];
          t[w] = { ...t[w], wins: t[w].wins + 1 };
          t[l] = { ...t[l], losses: t[l].losses + 1 };
        }
        this.tally = t;
      }
    } else if (ok) this.reveal = null;
    return ok;
  }

  async rank(order: number[]): Promise<boolean> {
    const item = this.current;
    if (!item || item.mode !== 'ranking' || this.saving) return false;
    const record = this.build(() => makeRecord(this.input(item), 'ranking', { order: [...order] }));
    return record ? this.commit(item, record, null) : false;
  }

  async rate(ratings: number[], flags: RatingFlags[]): Promise<boolean> {
    const item = this.current;
    if (!item || item.mode !== 'rating' || this.saving) return false;
    const record = this.build(() =>
      makeRecord(this.input(item), 'rating', { ratings: [...ratings], flags: flags.map((f) => ({ ...f })) }),
    );
    return record ? this.commit(item, record, null) : false;
  }

  async edit(edited: string): Promise<boolean> {
    const item = this.current;
    if (!item || item.mode !== 'edit' || this.saving) return false;
    let editedTokenIds: number[] = [];
    try {
      editedTokenIds = await engineState.engine.tokenize(edited);
    } catch {
      /* the edit is still worth saving without ids; they can be recomputed from the text */
    }
    const record = this.build(() => makeRecord(this.input(item), 'edit', { edited, editedTokenIds }));
    if (!record) return false;
    return this.commit(item, record, toDemonstration(record));
  }

  /** Move on without a label (ranking, rating, edit; pairwise saves 'skip'). */
  async pass(): Promise<void> {
    const item = this.current;
    if (!item || this.saving) return;
    if (item.mode === 'pairwise') {
      await this.vote('skip');
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
      this.reveal = null;
    } catch (e) {
      notices.add('error', (e as Error).message);
    } finally {
      this.saving = false;
    }
  }

  // -------------------------------------------------------------------------
  // Scripted labellers

  /** What the current labeller says about the pair on screen. */
  judgeCurrent(labeller: Labeller): Judgement | null {
    const item = this.current;
    if (!item || item.mode !== 'pairwise') return null;
    return labeller.judge(item.responses[0].text, item.responses[1].text, item.prompt, new Rng(item.key));
  }

  /**
   * Generate `n` pairs with the current settings, in batches of many prompts
   * per `generate` call, label each with the current labeller and save each
   * batch (all of it or none). Cancellable; saved batches stay.
   */
  async labelQueue(n: number): Promise<void> {
    const labeller = annotators.labeller;
    if (!labeller || this.batch?.running || !this.modelReady) return;
    const total = Math.max(1, Math.min(5000, Math.floor(n)));
    this.batchCancelled = false;
    this.batch = { done: 0, total, saved: 0, running: true };
    if (this.runningJob) void engineState.engine.cancel(this.runningJob.id);
    const annotator = annotators.annotator;
    void annotators.persistCurrent();
    const s = $state.snapshot(this.sampling) as SamplingSettings;
    const info = modelState.info!;
    const rng = new Rng(s.seed + SESSION_SALT);
    let saved = 0;
    let message: string | undefined;
    try {
      while (saved < total && !this.batchCancelled) {
        const m = Math.min(BATCH_PAIRS_PER_CALL, total - saved);
        const prompts = this.nextPrompts(m);
        const seed = s.seed + SESSION_SALT + this.batchNo++ * 7919;
        const id = `label-queue-${++jobCounter}`;
        this.batchJob = id;
        const res = await engineState.engine.generate(
          id,
          { prompts: prompts.flatMap((p) => [p, p]), ...s, seed },
          (p) => {
            this.batch = { done: saved + (m * p.step) / p.total, total, saved, running: true };
          },
        );
        this.batchJob = null;
        const now = Date.now();
        const records = prompts.map((_, i) => {
          const [a, b] = [res.samples[2 * i], res.samples[2 * i + 1]];
          const choice: Choice = labeller.compare(a.text, b.text, a.prompt, rng);
          return makeRecord(
            {
              prompt: a.prompt,
              responses: [toResponse(a), toResponse(b)],
              modelId: info.name,
              checkpointId: info.source === 'bundled' ? 'base' : 'files',
              sampling: recordSampling(s),
              seed,
              annotator,
            },
            'pairwise',
            choice,
            now,
          );
        });
        await saveAll(records);
        saved += records.length;
        this.batch = { done: saved, total, saved, running: true };
      }
      message = this.batchCancelled
        ? `Stopped: ${saved} of ${total} pairs labelled and saved.`
        : `Done: ${saved} pairs labelled by ${annotator.name} and saved.`;
    } catch (e) {
      message = isCancel(e)
        ? `Stopped: ${saved} of ${total} pairs labelled and saved.`
        : `Stopped after ${saved} saved pairs: ${(e as Error).message}`;
      if (!isCancel(e)) notices.add('error', message);
    } finally {
      this.batchJob = null;
      this.batch = { done: saved, total, saved, running: false, message };
      void this.pump();
    }
  }

  cancelBatch(): void {
    this.batchCancelled = true;
    if (this.batchJob) void engineState.engine.cancel(this.batchJob);
  }
}

export const feedback = new FeedbackState();
