/**
 * The Pretrain page's state: the text (pasted, dropped files read in chunks, or the bundled sample:
 * `public/pretrain/sample.txt`, the first 200 KB of the app's own corpus `static/corpus/val.txt`,
 * written by `scripts/make-corpus.ts`), its stats and split, the settings (the `pt` table,
 * src/lib/pretrain/config.ts), the run in the worker (pause = cancel the job at a step boundary,
 * resume = run again) with its losses, baselines and samples, and "Use as base model".
 *
 * Only plain lib code runs here (decoding and parsing text); TF.js stays in the worker.
 */
import type { PretrainEvent, PretrainStatus } from '../lib/engine/types';
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

export interface TextSource {
  name: string;
  docs: string[];
  stats: TextStats;
  /** CSV: the column read, and the columns there are. */
  column?: string;
  columns?: string[];
}

export const SAMPLE_PROMPTS = ['Once upon a time,', 'The movie was', 'Could you please'];

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

  async addSample(): Promise<void> {
    this.loadingInput = true;
    try {
      const r = await fetch(new URL('pretrain/sample.txt', document.baseURI));
      if (!r.ok) throw new PretrainDataError(`Could not fetch the sample text (HTTP ${r.status}). Reload the page.`);
      this.add(this.source('sample.txt (the app’s corpus)', await readText(await r.blob(), 'sample.txt')));
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
      });
    } catch (e) {
      this.runError = (e as Error).message;
      return;
    } finally {
      this.preparing = false;
    }
    this.status = prepared;
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
      } else {
        this.samples = { step: e.step, samples: e.samples };
      }
    };
    try {
      this.status = await engineState.engine.pretrainRun(jobId, onEvent);
    } catch (e) {
      if (!(e instanceof JobCancelledError)) this.runError = (e as Error).message;
      this.status = await engineState.engine.pretrainStatus().catch(() => this.status);
    } finally {
      flush();
      this.running = null;
    }
  }

  pause(): void {
    if (this.running) void engineState.engine.cancel(this.running);
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
      notices.add('info', `${info.name} is now the base model (${info.numParams.toLocaleString('en')} parameters).`);
    } catch (e) {
      notices.add('error', (e as Error).message);
    }
  }
}

export const pretrainState = new PretrainState();
