/**
 * The Pretrain page's state: the text (pasted, dropped files read in chunks, or the bundled sample:
 * `public/pretrain/sample.txt`, the first 200 KB of the app's own corpus `static/corpus/val.txt`,
 * written by `scripts/make-corpus.ts`), its stats and split, the settings (the `pt` table,
 * src/lib/pretrain/config.ts), the run in the worker (pause = cancel the job at a step boundary,
 * resume = run again) with its losses, baselines and samples, and "Use as base model".
 *
 * Also: a byte-level BPE trained on the text in the worker (progress, cancel), the measured
 * seconds per step of each preset on the active backend, and checkpoints in IndexedDB — the run
 * is a `RunRecord` of kind 'pretrain' in the `runs` store, its model, Adam's moments and token
 * streams in `chunks` (`RunStore.savePretrain`) — saved every half minute of training and when it
 * pauses, stops or ends; after a reload the page offers to resume the newest unfinished run.
 *
 * Only plain lib code runs here (decoding and parsing text); TF.js stays in the worker.
 */
import type {
  PretrainEvent,
  PretrainSnapshot,
  PretrainStatus,
  TokenizerProgress,
  TokenizerSummary,
} from '../lib/engine/types';
import { makeEval, type RunMetricRow, type RunRecord, type RunStatus } from '../lib/data/runs';
import { packIds, packMoments, unpackIds, unpackMoments, type MomentIndex } from '../lib/pretrain/checkpoint';
import type { PresetName } from '../lib/pretrain/presets';
import type { RngState } from '../lib/model/rng';
import { JobCancelledError } from '../lib/engine/errors';
import { PRETRAIN_SETTINGS, type PretrainConfig } from '../lib/pretrain/config';
import {
  CHUNK_BYTES,
  ChunkDecoder,
  PretrainDataError,
  csvColumns,
  documentsOf,
  formatOf,
  splitTrainVal,
  textStats,
  type TextStats,
} from '../lib/pretrain/text';
import { engineState } from './engine.svelte';
import { modelState } from './model.svelte';
import { notices } from './notices.svelte';
import { askPersistence } from './data.svelte';
import { runStore, runsState } from './runs.svelte';

/** Vocabulary sizes offered for a tokenizer trained on the text. */
export const VOCAB_SIZES = [512, 1024, 2048, 4096, 8192] as const;

/** What a pretraining run record keeps in its config besides the settings (to resume it). */
interface SavedPretrainConfig {
  status: PretrainStatus;
  checkpoint: { step: number; rng: RngState; moments: MomentIndex; trainLength: number };
  prompts: string[];
}

export interface TextSource {
  name: string;
  docs: string[];
  stats: TextStats;
  /** CSV: the column read, and the columns there are. */
  column?: string;
  columns?: string[];
}

export const SAMPLE_PROMPTS = ['Once upon a time,', 'The movie was', 'Could you please'];

/** Texts bundled in `public/pretrain/` (where each comes from and its licence: THIRD_PARTY_NOTICES.md). */
export const SAMPLE_TEXTS = [
  { file: 'sample.txt', name: 'sample.txt (the app’s corpus)', label: 'The app’s corpus (WordNet example sentences)' },
  {
    file: 'devils-dictionary.txt',
    name: 'devils-dictionary.txt (Bierce, public domain)',
    label: 'The Devil’s Dictionary, Ambrose Bierce, 1911 (public domain)',
  },
  {
    file: 'kjv-genesis-exodus.txt',
    name: 'kjv-genesis-exodus.txt (public domain)',
    label: 'Genesis and Exodus, King James Version, 1611 (public domain)',
  },
] as const;
export type SampleFile = (typeof SAMPLE_TEXTS)[number]['file'];

export interface Point {
  x: number;
  y: number;
}

let jobCounter = 0;

/** Read a file as UTF-8 in chunks (a 50 MB file never becomes one giant decode call). */
async function readText(file: Blob, name: string): Promise<string> {
  const d = new ChunkDecoder(name);
  if (typeof file.stream === 'function') {
    const reader = file.stream().getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (let i = 0; i < value.length; i += CHUNK_BYTES) d.push(value.subarray(i, i + CHUNK_BYTES));
    }
  } else {
    d.push(new Uint8Array(await file.arrayBuffer()));
  }
  return d.end();
}

export class PretrainState {
  sources = $state.raw<TextSource[]>([]);
  pasted = $state('');
  /** The last refusal of input, shown next to the inputs. */
  inputError = $state<string | null>(null);
  loadingInput = $state(false);

  config = $state<PretrainConfig>({ ...PRETRAIN_SETTINGS.defaults });
  init = $state<'scratch' | 'continue'>('scratch');
  prompts = $state(SAMPLE_PROMPTS.join('\n'));

  status = $state.raw<PretrainStatus | null>(null);
  running = $state<string | null>(null);
  preparing = $state(false);
  runError = $state<string | null>(null);
  train = $state.raw<Point[]>([]);
  val = $state.raw<Point[]>([]);
  valBpb = $state<number | null>(null);
  tokensPerSec = $state<number | null>(null);
  lr = $state<number | null>(null);
  samples = $state.raw<{ step: number; samples: { prompt: string; text: string }[] } | null>(null);
  adopted = $state<string | null>(null);

  /** Tokenizer: the loaded model's, or a BPE trained here. */
  tokenizer = $state<'loaded' | 'trained'>('loaded');
  vocabSize = $state<number>(1024);
  tokJob = $state<string | null>(null);
  tokProgress = $state.raw<TokenizerProgress | null>(null);
  trainedTok = $state.raw<(TokenizerSummary & { documents: number }) | null>(null);
  tokError = $state<string | null>(null);

  /** Measured seconds per step, by `backend|preset|vocab|batch`; a string while measuring or on failure. */
  stepTimes = $state<Record<string, number | 'measuring' | 'failed'>>({});

  /** The run's record id in IndexedDB, and whether its token streams are saved yet. */
  runId = $state<string | null>(null);
  private dataSaved = false;
  private saveChain: Promise<void> = Promise.resolve();
  savedStep = $state<number | null>(null);
  saving = $state(false);
  /** An unfinished run found in IndexedDB, offered for resuming. */
  resumable = $state.raw<RunRecord | null>(null);
  restoring = $state(false);
  private stopRequested = false;

  readonly docs = $derived(this.sources.flatMap((s) => s.docs));
  readonly stats = $derived(textStats(this.docs));
  readonly preview = $derived(this.docs.slice(0, 6).join('\n\n').slice(0, 800));

  private add(source: TextSource): void {
    this.sources = [...this.sources, source];
    this.inputError = null;
  }

  private source(name: string, text: string, column?: string): TextSource {
    const format = formatOf(name);
    const columns = format === 'csv' ? csvColumns(text, name) : undefined;
    const docs = documentsOf(text, name, format, column);
    return {
      name,
      docs,
      stats: textStats(docs),
      column: format === 'csv' ? (column ?? (columns!.includes('text') ? 'text' : columns![0])) : undefined,
      columns,
    };
  }

  addPasted(): void {
    try {
      if (!this.pasted.trim()) throw new PretrainDataError('The text box is empty; paste some text first.');
      this.add(this.source(`pasted text ${this.sources.length + 1}`, this.pasted));
      this.pasted = '';
    } catch (e) {
      this.inputError = (e as Error).message;
    }
  }

  async addFiles(files: File[]): Promise<void> {
    this.loadingInput = true;
    try {
      for (const f of files) {
        try {
          this.add(this.source(f.name, await readText(f, f.name)));
        } catch (e) {
          this.inputError = (e as Error).message; // the other files still add up
        }
      }
    } finally {
      this.loadingInput = false;
    }
  }

  /** The bundled text picked to add. */
  sampleFile = $state<SampleFile>('sample.txt');

  async addSample(file: SampleFile = this.sampleFile): Promise<void> {
    const sample = SAMPLE_TEXTS.find((t) => t.file === file);
    if (!sample) return;
    this.loadingInput = true;
    try {
      const r = await fetch(new URL(`pretrain/${sample.file}`, document.baseURI));
      if (!r.ok) throw new PretrainDataError(`Could not fetch the sample text (HTTP ${r.status}). Reload the page.`);
      this.add(this.source(sample.name, await readText(await r.blob(), sample.file)));
    } catch (e) {
      this.inputError = (e as Error).message;
    } finally {
      this.loadingInput = false;
    }
  }

  remove(i: number): void {
    this.sources = this.sources.filter((_, j) => j !== i);
  }

  clear(): void {
    this.sources = [];
  }

  /** Split, send the documents to the worker, build the model; then train. */
  async start(): Promise<void> {
    if (this.running || this.preparing) return;
    this.runError = null;
    this.preparing = true;
    let prepared: PretrainStatus;
    try {
      const config = PRETRAIN_SETTINGS.validate($state.snapshot(this.config));
      const { train, val } = splitTrainVal(this.docs, config.seed);
      prepared = await engineState.engine.pretrainPrepare({
        train,
        val,
        init: this.init,
        config,
        prompts: this.prompts
          .split('\n')
          .map((p) => p.trim())
          .filter(Boolean),
        corpus: this.sources.map((s) => s.name).join(', '),
        tokenizer: this.init === 'scratch' ? this.tokenizer : 'loaded',
      });
    } catch (e) {
      this.runError = (e as Error).message;
      return;
    } finally {
      this.preparing = false;
    }
    this.status = prepared;
    this.runId = crypto.randomUUID();
    this.createdAt = null;
    this.dataSaved = false;
    this.savedStep = null;
    this.resumable = null;
    this.train = [];
    this.val = [];
    this.samples = null;
    this.valBpb = null;
    this.adopted = null;
    await this.resume();
  }

  async resume(): Promise<void> {
    if (this.running || !this.status) return;
    const jobId = `pretrain-${++jobCounter}`;
    this.running = jobId;
    this.runError = null;
    let pendingTrain: Point[] = [];
    let lastFlush = 0;
    const flush = () => {
      if (pendingTrain.length) this.train = [...this.train, ...pendingTrain];
      pendingTrain = [];
      lastFlush = performance.now();
    };
    const onEvent = (e: PretrainEvent) => {
      if (e.kind === 'step') {
        pendingTrain.push({ x: e.step, y: e.loss });
        this.tokensPerSec = e.tokensPerSec;
        this.lr = e.lr;
        if (performance.now() - lastFlush > 200) flush();
      } else if (e.kind === 'eval') {
        flush();
        this.val = [...this.val, { x: e.step, y: e.valLoss }];
        this.valBpb = e.valBpb;
      } else if (e.kind === 'samples') {
        this.samples = { step: e.step, samples: e.samples };
      } else {
        flush();
        this.save(e.snapshot, 'running');
      }
    };
    this.stopRequested = false;
    let failed = false;
    try {
      this.status = await engineState.engine.pretrainRun(jobId, onEvent);
    } catch (e) {
      failed = !(e instanceof JobCancelledError);
      if (failed) this.runError = (e as Error).message;
      this.status = await engineState.engine.pretrainStatus().catch(() => this.status);
    } finally {
      flush();
      this.running = null;
    }
    if (this.stopRequested && this.status) this.status = { ...this.status, stopped: true };
    // After a failure (a diverged step) the weights may be broken: the last good checkpoint stays.
    if (!failed) await this.checkpointNow();
  }

  pause(): void {
    if (this.running) void engineState.engine.cancel(this.running);
  }

  /** End the run: it keeps its weights (and can be used as the base model) but is not offered for resuming. */
  async stop(): Promise<void> {
    if (this.running) {
      this.stopRequested = true;
      this.pause();
      return;
    }
    if (!this.status) return;
    this.status = { ...this.status, stopped: true };
    await this.checkpointNow();
  }

  /** Whether the run can go on (paused before its last step, not stopped). */
  get canResume(): boolean {
    const st = this.status;
    return !this.running && st !== null && !st.stopped && st.step < st.config.steps;
  }

  /** Save the run as it is now (between jobs): after a pause, a stop, the end, or an error. */
  private async checkpointNow(): Promise<void> {
    if (!this.status || !this.runId || this.status.step === 0) return;
    try {
      const snap = await engineState.engine.pretrainSnapshot();
      if (this.stopRequested || this.status.stopped) snap.status.stopped = true;
      this.save(snap, snap.status.stopped || snap.status.step >= snap.status.config.steps ? 'finished' : 'paused');
      await this.saveChain;
    } catch (e) {
      notices.add('error', `The pretraining checkpoint was not saved: ${(e as Error).message}`);
    }
  }

  /** The run's metric history as rows of the Runs page (train loss every step, validation at its steps). */
  private history(): RunMetricRow[] {
    const rows = new Map<number, Record<string, number>>();
    const at = (step: number) => rows.get(step) ?? rows.set(step, {}).get(step)!;
    for (const p of this.train) at(p.x)['train/loss'] = p.y;
    for (const p of this.val) at(p.x)['eval/loss'] = p.y;
    return [...rows.entries()].sort((a, b) => a[0] - b[0]).map(([step, metrics]) => ({ step, metrics }));
  }

  /** Queue a checkpoint write (one at a time, in order); a failed one keeps the previous checkpoint. */
  private save(snap: PretrainSnapshot, runStatus: RunStatus): void {
    const id = this.runId;
    if (!id) return;
    const history = this.history();
    const samples = this.samples;
    const createdAt = this.resumable?.createdAt;
    this.saveChain = this.saveChain.then(async () => {
      this.saving = true;
      try {
        const st = snap.status;
        const { index, bytes } = packMoments(snap.opt.m, snap.opt.v);
        let dataBytes: Uint8Array | undefined;
        let trainLength = st.trainTokens;
        let prompts: string[] = [];
        if (!this.dataSaved) {
          const data = await engineState.engine.pretrainData();
          dataBytes = packIds(data.trainIds, data.valIds);
          trainLength = data.trainIds.length;
          prompts = data.prompts;
        } else prompts = this.savedPrompts;
        this.savedPrompts = prompts;
        const config: SavedPretrainConfig = {
          status: st,
          checkpoint: { step: snap.opt.step, rng: snap.opt.rng, moments: index, trainLength },
          prompts,
        };
        const now = Date.now();
        const rec: RunRecord = {
          version: 1,
          id,
          kind: 'pretrain',
          name: st.name,
          createdAt: this.createdAt ?? createdAt ?? now,
          updatedAt: now,
          config: { ...st.config, corpus: st.corpus, pretrain: config },
          parent:
            st.init === 'continue'
              ? runsState.currentParent()
              : {
                  kind: 'base',
                  name: `from scratch (${st.tokenizer.kind === 'trained' ? 'its own tokenizer' : `${st.baseName}’s tokenizer`})`,
                },
          checkpointId: `ckpt-${id}`,
          history,
          evals: samples ? [makeEval(samples.step, samples.samples)] : [],
          status: runStatus,
        };
        this.createdAt = rec.createdAt;
        askPersistence();
        await (await runStore()).savePretrain(rec, snap.files, bytes, dataBytes);
        this.dataSaved = true;
        this.savedStep = st.step;
        if (runsState.loaded) await runsState.refresh();
      } catch (e) {
        notices.add(
          'error',
          `The pretraining checkpoint at step ${snap.status.step} was not saved: ${(e as Error).message}`,
        );
      } finally {
        this.saving = false;
      }
    });
  }
  private savedPrompts: string[] = [];
  private createdAt: number | null = null;

  /** Look for an unfinished pretraining run saved in IndexedDB (after a reload) to offer resuming it. */
  async findResumable(): Promise<void> {
    if (this.status || this.resumable) return;
    try {
      const { runs } = await (await runStore()).list();
      const run = runs
        .filter((r) => r.kind === 'pretrain' && (r.status === 'paused' || r.status === 'running'))
        .sort((a, b) => b.updatedAt - a.updatedAt)[0];
      if (run && !this.status) this.resumable = run;
    } catch (e) {
      notices.add('warning', `Saved pretraining runs could not be read: ${(e as Error).message}`);
    }
  }

  /** Rebuild the saved run in the worker from its checkpoint and go on training. */
  async resumeSaved(): Promise<void> {
    const run = this.resumable;
    if (!run || this.running || this.restoring) return;
    this.restoring = true;
    this.runError = null;
    try {
      const saved = run.config.pretrain as SavedPretrainConfig | undefined;
      if (!saved?.status || !saved.checkpoint) throw new Error('The saved run has no checkpoint to resume from.');
      const { files, optBytes, dataBytes } = await (await runStore()).loadPretrain(run);
      const { m, v } = unpackMoments(saved.checkpoint.moments, optBytes);
      const { trainIds, valIds } = unpackIds(dataBytes, saved.checkpoint.trainLength);
      const snapshot: PretrainSnapshot = {
        status: saved.status,
        files,
        opt: { step: saved.checkpoint.step, rng: saved.checkpoint.rng, m, v },
      };
      this.status = await engineState.engine.pretrainRestore(snapshot, { trainIds, valIds, prompts: saved.prompts });
      this.runId = run.id;
      this.createdAt = run.createdAt;
      this.dataSaved = true;
      this.savedPrompts = saved.prompts;
      this.savedStep = saved.status.step;
      this.train = run.history
        .filter((r) => 'train/loss' in r.metrics)
        .map((r) => ({ x: r.step, y: r.metrics['train/loss'] }));
      this.val = run.history
        .filter((r) => 'eval/loss' in r.metrics)
        .map((r) => ({ x: r.step, y: r.metrics['eval/loss'] }));
      // Points after the checkpoint's step (logged before the page closed) are trained again.
      this.train = this.train.filter((p) => p.x <= saved.status.step);
      this.val = this.val.filter((p) => p.x <= saved.status.step);
      this.valBpb = saved.status.lastValBpb;
      const ev = run.evals.at(-1);
      this.samples = ev && ev.step <= saved.status.step ? { step: ev.step, samples: ev.samples } : null;
      this.adopted = null;
      this.resumable = null;
    } catch (e) {
      this.runError = `The saved run could not be resumed: ${(e as Error).message} It stays saved.`;
      return;
    } finally {
      this.restoring = false;
    }
    await this.resume();
  }

  /** The step the offered run was saved at, and its last step. */
  get resumableStep(): number | null {
    const saved = this.resumable?.config.pretrain as SavedPretrainConfig | undefined;
    return saved?.status?.step ?? null;
  }

  dismissResumable(): void {
    this.resumable = null;
  }

  /** Train a byte-level BPE on the text in the worker (cancellable), for runs from scratch. */
  async trainTokenizer(): Promise<void> {
    if (this.tokJob) return;
    const docs = this.docs;
    const jobId = `pretrain-tok-${++jobCounter}`;
    this.tokJob = jobId;
    this.tokError = null;
    this.tokProgress = null;
    try {
      const summary = await engineState.engine.pretrainTokenizer(jobId, docs, this.vocabSize, (p) => {
        this.tokProgress = p;
      });
      this.trainedTok = { ...summary, documents: docs.length };
      this.tokenizer = 'trained';
    } catch (e) {
      if (!(e instanceof JobCancelledError)) this.tokError = (e as Error).message;
    } finally {
      this.tokJob = null;
    }
  }

  cancelTokenizer(): void {
    if (this.tokJob) void engineState.engine.cancel(this.tokJob);
  }

  /** The vocabulary a run from scratch would have. */
  get runVocab(): number {
    if (this.init === 'scratch' && this.tokenizer === 'trained' && this.trainedTok) return this.trainedTok.vocabSize;
    return modelState.info?.config.vocabSize ?? 1281;
  }

  stepTimeKey(preset: PresetName): string {
    const b = engineState.info;
    return `${b?.name ?? '?'} ${b?.adapter ?? ''}|${preset}|${this.runVocab}|${this.config.batchSize}`;
  }

  /** Time a couple of training steps of `preset` in the worker (once per backend, preset, vocabulary and batch). */
  async measureStep(preset: PresetName): Promise<void> {
    const key = this.stepTimeKey(preset);
    if (key in this.stepTimes || this.running || this.tokJob || !engineState.ready) return;
    this.stepTimes = { ...this.stepTimes, [key]: 'measuring' };
    try {
      const secs = await engineState.engine.pretrainTimeStep(preset, this.config.batchSize, this.runVocab);
      this.stepTimes = { ...this.stepTimes, [key]: secs };
    } catch {
      this.stepTimes = { ...this.stepTimes, [key]: 'failed' };
    }
  }

  /** Load the pretrained model as the engine's model: Feedback, Reward model and Train use it. */
  async adopt(): Promise<void> {
    try {
      const info = await engineState.engine.pretrainAdopt();
      modelState.info = info;
      modelState.status = 'ready';
      modelState.result = null;
      modelState.tokens = null;
      this.adopted = info.name;
      if (this.runId && this.savedStep !== null)
        runsState.loadedFrom = { id: this.runId, name: this.status?.name ?? info.name, modelName: info.name };
      notices.add('info', `${info.name} is now the base model (${info.numParams.toLocaleString('en')} parameters).`);
    } catch (e) {
      notices.add('error', (e as Error).message);
    }
  }
}

export const pretrainState = new PretrainState();
