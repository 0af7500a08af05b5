/**
 * The model as the UI sees it: which one is loaded, sampling settings, the
 * samples of the last generation (streamed while they grow) and the token view.
 */
import type { GenerateResult, ModelInfo, SamplingSettings, TokenInfo } from '../lib/engine/types';
import { JobCancelledError } from '../lib/engine/errors';
import { engineState } from './engine.svelte';
import { notices } from './notices.svelte';

export const BUNDLED_MODEL = 'tiny-gpt';

export const PRESET_PROMPTS = [
  'The movie was',
  'Once upon a time,',
  'Could you please',
  'The food at this restaurant',
  'I bought this phone and',
  'This book',
];

export const DEFAULT_SAMPLING: SamplingSettings = {
  maxNewTokens: 40,
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  seed: 1,
  useCache: true,
};

let jobCounter = 0;

export class ModelState {
  info = $state.raw<ModelInfo | null>(null);
  status = $state<'idle' | 'loading' | 'ready' | 'failed'>('idle');
  loadError = $state<string | null>(null);

  prompt = $state(PRESET_PROMPTS[0]);
  numSamples = $state(4);
  sampling = $state<SamplingSettings>({ ...DEFAULT_SAMPLING });

  /** Text of each sample as it streams in. */
  streaming = $state<string[]>([]);
  result = $state.raw<GenerateResult | null>(null);
  runningJob = $state<string | null>(null);
  progress = $state(0);
  /** Token view of one sample: its index and the per-token data. */
  tokens = $state.raw<{ sample: number; tokens: TokenInfo[] } | null>(null);

  async loadBundled(): Promise<void> {
    this.status = 'loading';
    try {
      const base = new URL(`models/${BUNDLED_MODEL}/`, document.baseURI).href;
      this.info = await engineState.engine.loadModelFromUrl(base, BUNDLED_MODEL);
      this.status = 'ready';
    } catch (e) {
      this.status = 'failed';
      this.loadError = (e as Error).message;
      notices.add('error', (e as Error).message);
    }
  }

  /** Load a model from files the user picked; the current model stays if anything is wrong. */
  async loadFiles(files: File[]): Promise<boolean> {
    const byName = (pred: (n: string) => boolean) => files.find((f) => pred(f.name.toLowerCase()));
    const config = byName((n) => n === 'config.json');
    const tokenizer = byName((n) => n === 'tokenizer.json');
    const weights = byName((n) => n.endsWith('.safetensors'));
    const card = byName((n) => n === 'card.json');
    const missing = [
      !config && 'config.json',
      !tokenizer && 'tokenizer.json',
      !weights && 'a .safetensors file',
    ].filter(Boolean);
    if (missing.length) {
      notices.add('error', `To load a model, pick its files together; missing: ${missing.join(', ')}.`);
      return false;
    }
    const prev = this.status;
    this.status = 'loading';
    try {
      this.info = await engineState.engine.loadModel({
        name: weights!.name.replace(/\.safetensors$/i, ''),
        source: 'files',
        config: await config!.text(),
        tokenizer: await tokenizer!.text(),
        weights: await weights!.arrayBuffer(),
        card: card ? await card.text() : undefined,
      });
      this.status = 'ready';
      this.result = null;
      this.tokens = null;
      notices.add('info', `Loaded model ${this.info.name} (${this.info.numParams.toLocaleString('en')} parameters).`);
      return true;
    } catch (e) {
      this.status = prev === 'loading' ? 'failed' : prev;
      notices.add('error', `The model was not loaded: ${(e as Error).message} The previous model is still loaded.`);
      return false;
    }
  }

  async generate(): Promise<void> {
    if (this.runningJob || this.status !== 'ready') return;
    const jobId = `generate-${++jobCounter}`;
    const prompts = Array.from({ length: this.numSamples }, () => this.prompt);
    this.runningJob = jobId;
    this.progress = 0;
    this.tokens = null;
    this.streaming = prompts.map(() => '');
    try {
      this.result = await engineState.engine.generate(jobId, { prompts, ...$state.snapshot(this.sampling) }, (p) => {
        this.streaming = p.texts;
        this.progress = p.step / p.total;
      });
    } catch (e) {
      if (!(e instanceof JobCancelledError)) notices.add('error', (e as Error).message);
    } finally {
      this.runningJob = null;
    }
  }

  cancel(): void {
    if (this.runningJob) void engineState.engine.cancel(this.runningJob);
  }

  async inspect(sample: number): Promise<void> {
    const s = this.result?.samples[sample];
    if (!s) return;
    if (this.tokens?.sample === sample) {
      this.tokens = null;
      return;
    }
    try {
      this.tokens = { sample, tokens: await engineState.engine.inspectTokens(s.promptIds, s.ids) };
    } catch (e) {
      notices.add('error', (e as Error).message);
    }
  }
}

export const modelState = new ModelState();
