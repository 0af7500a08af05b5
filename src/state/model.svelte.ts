/**
 * The model as the UI sees it: which one is loaded, sampling settings, the
 * samples of the last generation (streamed while they grow) and the token view.
 */
import type {
  GenerateResult,
  ModelInfo,
  ModelPlanView,
  PickedModelFile,
  SamplingSettings,
  TokenInfo,
} from '../lib/engine/types';
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

/** A message as one clean sentence: trimmed, ending in exactly one period (or ? / !). */
export function asSentence(message: string): string {
  const t = message.trim().replace(/\.{2,}$/, '.');
  return /[.?!]$/.test(t) ? t : `${t}.`;
}

export class ModelState {
  info = $state.raw<ModelInfo | null>(null);
  status = $state<'idle' | 'loading' | 'ready' | 'failed'>('idle');
  loadError = $state<string | null>(null);
  /** The plan of the latest pick, shown before (and after) it loads. */
  plan = $state.raw<ModelPlanView | null>(null);

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

  /** The latest load asked for; an older one that settles later changes nothing here. */
  private loadTicket = 0;

  async loadBundled(): Promise<void> {
    const ticket = ++this.loadTicket;
    this.status = 'loading';
    try {
      const base = new URL(`models/${BUNDLED_MODEL}/`, document.baseURI).href;
      const info = await engineState.engine.loadModelFromUrl(base, BUNDLED_MODEL);
      if (ticket !== this.loadTicket) return;
      this.info = info;
      this.status = 'ready';
    } catch (e) {
      if (ticket !== this.loadTicket) return;
      await this.settleFailedLoad();
      if (!this.info) this.loadError = (e as Error).message;
      notices.add('error', (e as Error).message);
    }
  }

  /**
   * After a failed load, show what the engine holds: the previous model (or the one it restored
   * after restarting its backend), or none.
   */
  private async settleFailedLoad(): Promise<void> {
    let info: ModelInfo | null = null;
    try {
      info = await engineState.engine.modelInfo();
    } catch {
      /* the engine did not answer: nothing is known to be loaded */
    }
    if (info?.name !== this.info?.name) {
      this.result = null;
      this.tokens = null;
    }
    this.info = info;
    this.status = info ? 'ready' : 'failed';
  }

  /**
   * Load a model from files the user picked (files or a folder, as they come from the Hub): the
   * engine plans it first from the headers (shown as `plan`), refuses what would not fit, then
   * reads the weights a tensor at a time; the current model stays if anything is wrong.
   * Picks are serialised: the latest wins, and the page always shows the engine's model.
   */
  async loadFiles(files: File[]): Promise<boolean> {
    const byName = (pred: (n: string) => boolean) => files.find((f) => pred(f.name.toLowerCase()));
    const adapterConfig = byName((n) => n === 'adapter_config.json');
    if (adapterConfig && !byName((n) => n === 'config.json'))
      return this.loadAdapter(
        adapterConfig,
        byName((n) => n.endsWith('.safetensors')),
      );
    const picked: PickedModelFile[] = files.map((f) => ({ path: f.webkitRelativePath || f.name, blob: f }));
    const ticket = ++this.loadTicket;
    this.status = 'loading';
    this.plan = null;
    try {
      const plan = await engineState.engine.planModelFiles(picked);
      if (ticket !== this.loadTicket) return false; // a newer pick came while this one was planned
      this.plan = plan;
      if (plan.refusal) throw new Error(plan.refusal);
      const info = await engineState.engine.loadModelFiles(picked);
      if (ticket !== this.loadTicket) return false; // the newer pick, queued after this one, settles the page
      this.info = info;
      this.status = 'ready';
      this.result = null;
      this.tokens = null;
      notices.add('info', `Loaded model ${info.name} (${info.numParams.toLocaleString('en')} parameters).`);
      return true;
    } catch (e) {
      if (ticket !== this.loadTicket) return false;
      const before = this.info?.name;
      await this.settleFailedLoad();
      const now = this.info
        ? this.info.name === before
          ? 'The previous model is still loaded.'
          : `The loaded model is ${this.info.name}.`
        : 'No model is loaded.';
      if (!this.info) this.loadError = asSentence((e as Error).message);
      notices.add('error', `The model was not loaded: ${asSentence((e as Error).message)} ${now}`);
      return false;
    }
  }

  /** A PEFT LoRA adapter merged into the loaded model (which stays if anything is wrong). */
  private async loadAdapter(config: File, weights: File | undefined): Promise<boolean> {
    if (!weights) {
      notices.add('error', 'To load a LoRA adapter, pick adapter_config.json and adapter_model.safetensors together.');
      return false;
    }
    this.status = 'loading';
    try {
      const name = weights.name.replace(/\.safetensors$/i, '');
      const info = await engineState.engine.loadAdapter({
        config: await config.text(),
        weights: await weights.arrayBuffer(),
        name: name === 'adapter_model' ? 'LoRA adapter' : name,
      });
      this.info = info;
      this.result = null;
      this.tokens = null;
      notices.add('info', `Merged the LoRA adapter: the loaded model is now ${info.name}.`);
      return true;
    } catch (e) {
      notices.add(
        'error',
        `The adapter was not loaded: ${asSentence((e as Error).message)} The previous model is still loaded.`,
      );
      return false;
    } finally {
      this.status = this.info ? 'ready' : 'failed';
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
