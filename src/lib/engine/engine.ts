/**
 * The engine: everything that touches TF.js, behind the `Engine` interface.
 * No DOM access: it runs in the worker (`src/workers/engine.worker.ts`), in
 * the main thread when no worker can start, and in Node under Vitest.
 */
import * as tf from '@tensorflow/tfjs-core';
import { activeWebGPUDevice, backendLimits, chooseBackend, configureWasm, resetBackend, smokeTest } from './backend';
import { budgets } from '../model/memory';
import { BackendInitError, DeviceLostError, EngineError, InvalidInputError } from './errors';
import { NotReadyError } from './errors';
import { ModelLoadError, WeightsFormatError } from '../model/errors';
import { TokenizerError } from '../model/tokenizer';
import { JobRegistry, type Checkpoint } from './jobs';
import { ModelSlot } from './model-slot';
import type { TrainingPair } from '../data/records';
import { RewardHost } from './reward-host';
import { PpoHost } from './ppo-host';
import { GroupHost } from './group-host';
import type { GrpoConfig } from '../rlhf/grpo-config';
import type { RlooConfig } from '../rlhf/rloo-config';
import type { PassRateResult } from '../rlhf/pass-rate';
import type { OnlineDpoConfig } from '../rlhf/online-dpo-config';
import { TuneHost, sampleWithWeights } from './tune-host';
import { PretrainHost } from './pretrain-host';
import type { SftConfig, SftExample, DpoConfig, TuneEvent, TuneSample, TuneSummary } from './types';
import type {
  PretrainData,
  PretrainEvent,
  PretrainRequest,
  PretrainSnapshot,
  PretrainStatus,
  TokenizerProgress,
  TokenizerSummary,
} from './types';
import type { PresetName } from '../pretrain/presets';
import { runBench } from './bench';
import type { GPT } from '../model/gpt';
import { LORA_TIMING_STEPS, checkTimingRequest, timeLoraPieces, type LoraTimingRequest } from './lora-timing';
import type { LoraTimings } from '../rlhf/iteration-estimate';
import type { RewardFunctionSpec } from '../rlhf/reward-functions';
import { generate } from '../model/sampling';
import { configToHF, saveModelSafetensors, writeSafetensors } from '../model/weights';
import { exportPeftAdapter, importPeftAdapter, mergedHfTensors } from '../model/lora-peft';
import type {
  BackendChoice,
  BackendInfo,
  Engine,
  EngineInitOptions,
  EngineTestHooks,
  EventCallback,
  ExportedModel,
  GenerateProgress,
  GenerateRequest,
  GenerateResult,
  ModelFiles,
  ModelInfo,
  ModelPlanView,
  PickedModelFile,
  BenchRequest,
  BenchResult,
  PpoConfig,
  GroupEvent,
  GroupPassRateRequest,
  GroupRunRequest,
  GroupSetup,
  GroupState,
  GroupStatus,
  PpoEvalSample,
  PpoEvent,
  PpoRunRequest,
  PpoSetup,
  PpoState,
  PpoStatus,
  ProbeResult,
  RewardModelState,
  RewardModelSummary,
  RewardTrainEvent,
  RewardTrainRequest,
  TokenInfo,
  TokenReward,
  WrongPair,
  ProgressCallback,
  SampleWeights,
  SampleWithRequest,
} from './types';
import { isBackendChoice } from './types';

/** A fixed computation touching matMul, softmax, exp/log and reductions; every backend must agree. */
export async function probeComputation(): Promise<number[]> {
  const out = tf.tidy(() => {
    const a = tf.tensor2d(
      Array.from({ length: 12 }, (_, i) => Math.sin(i + 1)),
      [3, 4],
    );
    const b = tf.tensor2d(
      Array.from({ length: 8 }, (_, i) => Math.cos(i * 0.7)),
      [4, 2],
    );
    const m = tf.matMul(a, b); // [3, 2]
    const s = tf.softmax(m); // rows sum to 1
    const lse = tf.logSumExp(m, 1); // [3]
    const t = tf.sum(tf.tanh(m));
    return tf.concat([tf.reshape(m, [-1]), tf.reshape(s, [-1]), lse, tf.reshape(t, [1])]);
  });
  const values = Array.from(await out.data());
  out.dispose();
  return values;
}

/** Limits a user can hit from the UI; each failure says what to change. */
export function validateGenerateRequest(req: GenerateRequest, vocabSize: number): void {
  const bad = (msg: string) => {
    throw new InvalidInputError(msg);
  };
  if (!Array.isArray(req.prompts) || req.prompts.length < 1 || req.prompts.length > 64)
    bad('Ask for 1 to 64 samples at a time.');
  if (req.prompts.some((p) => typeof p !== 'string' || p.length > 2000))
    bad('Each prompt must be text of at most 2,000 characters.');
  if (!Number.isInteger(req.maxNewTokens) || req.maxNewTokens < 1 || req.maxNewTokens > 512)
    bad('Max new tokens must be a whole number from 1 to 512.');
  if (!(req.temperature >= 0 && req.temperature <= 5)) bad('Temperature must be between 0 and 5.');
  if (!Number.isInteger(req.topK) || req.topK < 0 || req.topK > vocabSize)
    bad(`Top-k must be a whole number from 0 (off) to ${vocabSize}.`);
  if (!(req.topP > 0 && req.topP <= 1)) bad('Top-p must be above 0 and at most 1.');
  if (!Number.isSafeInteger(req.seed)) bad('The seed must be a whole number.');
}

/** An error's message as the inside of a sentence: no trailing period (the caller closes it). */
function sentence(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).trim().replace(/[.\s]+$/, '');
}

function lostWithin(device: GPUDevice, ms: number): Promise<boolean> {
  return Promise.race([device.lost.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
}

export class LocalEngine implements Engine, EngineTestHooks {
  private info: BackendInfo | null = null;
  private opts: EngineInitOptions | null = null;
  private listeners: EventCallback[] = [];
  private jobs = new JobRegistry();
  private watchedDevice: GPUDevice | null = null;
  private slot = new ModelSlot();
  private rewards = new RewardHost();
  private ppo = new PpoHost();
  private group = new GroupHost();
  private tune = new TuneHost();
  private pretrain = new PretrainHost();
  /** Model loads run one at a time, in the order they were asked for (`serialLoad`). */
  private loadQueue: Promise<unknown> = Promise.resolve();
  private loadSeq = 0;

  async init(opts: EngineInitOptions): Promise<BackendInfo> {
    if (!isBackendChoice(opts.backend)) throw new InvalidInputError(`Unknown backend "${String(opts.backend)}".`);
    this.opts = opts;
    configureWasm(opts.wasmPath, opts.wasmThreads);
    return this.switchTo(opts.backend);
  }

  async setBackend(choice: BackendChoice): Promise<BackendInfo> {
    if (!this.opts) throw new BackendInitError('The engine is not initialised yet; wait for it to start.');
    if (!isBackendChoice(choice)) throw new InvalidInputError(`Unknown backend "${String(choice)}".`);
    return this.switchTo(choice);
  }

  private async switchTo(choice: BackendChoice, exclude: BackendInfo['name'][] = []): Promise<BackendInfo> {
    const info = await chooseBackend({ requested: choice, timeoutMs: this.opts?.backendTimeoutMs, exclude });
    this.info = info;
    this.watchDevice();
    return info;
  }

  /** Watch the WebGPU device: when it is lost, fail running jobs and move to the next backend. */
  private watchDevice(): void {
    const device = activeWebGPUDevice();
    if (!device || device === this.watchedDevice) return;
    this.watchedDevice = device;
    void device.lost.then(async (lost) => {
      if (this.watchedDevice !== device) return; // a backend switch replaced it on purpose
      this.watchedDevice = null;
      const why = `The WebGPU device was lost (${lost.reason}${lost.message ? ': ' + lost.message : ''}).`;
      this.jobs.failAll(why);
      // Runs whose tensors lived on the device go too (the pages rebuild them from their saves).
      for (const drop of [() => this.ppo.dispose(), () => this.group.dispose()]) {
        try {
          drop();
        } catch {
          /* their tensors died with the device */
        }
      }
      resetBackend('webgpu');
      const requested = this.info?.requested ?? 'auto';
      let next: BackendInfo;
      try {
        next = await this.switchTo(requested, ['webgpu']);
      } catch (e) {
        this.emit({ kind: 'device-lost', message: `${why} ${(e as Error).message}`, backend: this.info! });
        return;
      }
      next.notes.unshift(`${why} Switched to ${next.name}.`);
      try {
        await this.slot.reload(); // the weights lived on the lost device
      } catch (e) {
        next.notes.push(`The model could not be rebuilt: ${(e as Error).message}`);
      }
      this.emit({ kind: 'device-lost', message: `${why} Now running on ${next.name}.`, backend: next });
    });
  }

  private emit(e: Parameters<EventCallback>[0]): void {
    for (const cb of this.listeners) {
      try {
        cb(e);
      } catch {
        /* a listener that throws must not stop the others */
      }
    }
  }

  async ping(): Promise<'pong'> {
    return 'pong';
  }

  async backendInfo(): Promise<BackendInfo | null> {
    return this.info;
  }

  async onEvent(cb: EventCallback): Promise<void> {
    this.listeners.push(cb);
  }

  async probe(): Promise<ProbeResult> {
    this.requireInit();
    const values = await probeComputation();
    return { backend: this.info!.name, values };
  }

  async busyJob(jobId: string, steps: number, onProgress?: ProgressCallback): Promise<number> {
    this.requireInit();
    if (!Number.isInteger(steps) || steps < 1 || steps > 1_000_000) {
      throw new InvalidInputError(`steps must be a whole number from 1 to 1,000,000 (got ${steps}).`);
    }
    return this.runJob(jobId, async (checkpoint) => {
      let acc = 0;
      for (let i = 0; i < steps; i++) {
        await checkpoint();
        const v = tf.tidy(() => tf.mean(tf.matMul(tf.ones([64, 64]), tf.ones([64, 64]))));
        acc += (await v.data())[0];
        v.dispose();
        onProgress?.({ jobId, step: i + 1, total: steps });
      }
      return acc;
    });
  }

  /**
   * Run a job. When the WebGPU device dies under it, the job's own read-back usually fails
   * first (an `AbortError` from `mapAsync`) before `device.lost` resolves; report it as the
   * device loss it is.
   */
  private async runJob<T>(jobId: string, body: (checkpoint: Checkpoint) => Promise<T>): Promise<T> {
    const device = activeWebGPUDevice();
    try {
      return await this.jobs.run(jobId, body);
    } catch (e) {
      if (device && !(e instanceof EngineError) && (await lostWithin(device, 500))) {
        throw new DeviceLostError(`The WebGPU device was lost during job ${jobId}; start it again.`);
      }
      throw e;
    }
  }

  async loadModel(files: ModelFiles): Promise<ModelInfo> {
    this.requireInit();
    return this.serialLoad(async () => files);
  }

  async loadAdapter(adapter: { config: string; weights: ArrayBuffer; name?: string }): Promise<ModelInfo> {
    this.requireInit();
    const { model, tokenizer, info } = this.slot.require();
    // Checked and merged on a copy: on any problem the loaded model stays as it was.
    const copy = model.clone({ trainable: false });
    let bytes: Uint8Array;
    try {
      importPeftAdapter(copy, adapter.config, new Uint8Array(adapter.weights));
      bytes = writeSafetensors(await mergedHfTensors(copy), 'F32', {
        format: 'pt',
        source: `rlhf-playground: ${info.name} with a LoRA adapter merged`,
      });
    } finally {
      copy.dispose();
    }
    const label = adapter.name?.trim() || 'LoRA adapter';
    return this.serialLoad(async () => ({
      name: `${info.name} + ${label}`,
      source: 'files',
      config: JSON.stringify(configToHF(model.config, tokenizer.eotId, 'F32')),
      tokenizer: JSON.stringify(tokenizer.toJSON()),
      weights: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
      card: JSON.stringify({
        description: `${info.name} with the LoRA adapter ${label} merged in (W + α/r·BA).`,
        corpus: info.card?.corpus,
        licence: info.card?.licence,
      }),
    }));
  }

  async loadModelFromUrl(baseUrl: string, name: string): Promise<ModelInfo> {
    this.requireInit();
    const get = async (file: string, optional = false): Promise<Response | null> => {
      let r: Response;
      try {
        r = await fetch(new URL(file, baseUrl));
      } catch (e) {
        if (optional) return null;
        throw new ModelLoadError(
          `Could not fetch ${file} of model ${name} (${(e as Error).message}). Reload the page.`,
        );
      }
      if (!r.ok) {
        if (optional) return null;
        throw new ModelLoadError(`Could not fetch ${file} of model ${name} (HTTP ${r.status}). Reload the page.`);
      }
      return r;
    };
    return this.serialLoad(async () => {
      const [config, tokenizer, weights, card] = await Promise.all([
        get('config.json'),
        get('tokenizer.json'),
        get('model.safetensors'),
        get('card.json', true),
      ]);
      return {
        name,
        source: 'bundled',
        config: await config!.text(),
        tokenizer: await tokenizer!.text(),
        weights: await weights!.arrayBuffer(),
        card: card ? await card.text() : undefined,
      };
    });
  }

  async planModelFiles(files: PickedModelFile[]): Promise<ModelPlanView> {
    this.requireInit();
    return this.slot.planPicked(files, backendLimits(this.info!.name));
  }

  async loadModelFiles(files: PickedModelFile[]): Promise<ModelInfo> {
    this.requireInit();
    return this.serialLoad(async () => files);
  }

  /**
   * Loads are serialised: each waits for the one before it, and one that a newer load overtook
   * while it waited (or fetched) is dropped: the latest pick wins.
   */
  private serialLoad(getFiles: () => Promise<ModelFiles | PickedModelFile[]>): Promise<ModelInfo> {
    const seq = ++this.loadSeq;
    const superseded = () =>
      new ModelLoadError('A newer model load replaced this one; the model it asked for was not loaded.');
    const run = async (): Promise<ModelInfo> => {
      if (seq !== this.loadSeq) throw superseded();
      const files = await getFiles();
      if (seq !== this.loadSeq) throw superseded();
      return this.loadTransaction(files);
    };
    const p = this.loadQueue.then(run, run);
    this.loadQueue = p.catch(() => undefined);
    return p;
  }

  /**
   * One load as a transaction: the new model is built aside and swapped in only on success.
   * A refusal (a file that does not fit) changes nothing. When the backend itself fails under
   * the build (a wasm trap, a lost device, a backend that no longer computes), it is restarted
   * and the previous model rebuilt from its kept files, and the error says so.
   */
  private async loadTransaction(files: ModelFiles | PickedModelFile[]): Promise<ModelInfo> {
    const backend = this.info!.name;
    try {
      if (Array.isArray(files)) return await this.slot.loadPicked(files, backendLimits(backend));
      return this.slot.load(files, backendLimits(backend));
    } catch (e) {
      if (e instanceof ModelLoadError || e instanceof WeightsFormatError || e instanceof TokenizerError) throw e;
      const trapped = e instanceof WebAssembly.RuntimeError;
      if (!trapped && (await this.backendComputes())) {
        throw new ModelLoadError(`The model could not be built on the ${backend} backend (${sentence(e)}).`);
      }
      throw await this.restartAfterFailedLoad(backend, e);
    }
  }

  /** Whether the backend still computes right; a lost GPU device may never answer, hence the timeout. */
  private async backendComputes(): Promise<boolean> {
    const answered = smokeTest().then(
      () => true,
      () => false,
    );
    return Promise.race([answered, new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
  }

  /** Restart the failed backend and restore the previous model; returns the error to report. */
  private async restartAfterFailedLoad(backend: BackendInfo['name'], cause: unknown): Promise<ModelLoadError> {
    const why = `The ${backend} backend failed while building the model (${sentence(cause)})`;
    const previous = this.slot.info?.name ?? null;
    this.jobs.failAll(`${why}; it was restarted.`);
    this.slot.drop();
    // Everything else on the backend dies with it: a PPO run (its checkpoints are saved) and an unadopted tuned model.
    for (const drop of [
      () => this.ppo.dispose(),
      () => this.group.dispose(),
      () => this.tune.discard(),
      () => this.pretrain.dispose(),
    ]) {
      try {
        drop();
      } catch {
        /* their tensors died with the backend */
      }
    }
    this.watchedDevice = null;
    resetBackend(backend);
    try {
      await this.switchTo(this.info?.requested ?? backend);
    } catch (e) {
      return new ModelLoadError(`${why}, and it could not be restarted (${sentence(e)}). Reload the page.`);
    }
    try {
      this.rewards.rebuild(); // the active reward model, from its kept weights
    } catch {
      /* scoring says there is no reward model; the saved one can be activated again */
    }
    if (!previous) return new ModelLoadError(`${why}; it was restarted.`);
    try {
      await this.slot.reload();
    } catch (e) {
      return new ModelLoadError(
        `${why}; it was restarted, but the previous model ${previous} could not be restored (${sentence(e)}). Reload the page.`,
      );
    }
    return new ModelLoadError(
      `${why}; it was restarted and the previous model ${previous} was restored from its files.`,
    );
  }

  async modelInfo(): Promise<ModelInfo | null> {
    return this.slot.info;
  }

  async tokenize(text: string): Promise<number[]> {
    if (typeof text !== 'string') throw new InvalidInputError('tokenize needs text.');
    return this.slot.require().tokenizer.encode(text);
  }

  async generate(
    jobId: string,
    req: GenerateRequest,
    onProgress?: (p: GenerateProgress) => void,
  ): Promise<GenerateResult> {
    this.requireInit();
    const { model, tokenizer } = this.slot.require();
    validateGenerateRequest(req, model.config.vocabSize);
    return this.runJob(jobId, async (checkpoint) => {
      // Every training document began after an end-of-text token, so prompts do too.
      const encoded = req.prompts.map((p) => tokenizer.encodePrompt(p));
      const promptIds = encoded.map((e) => [tokenizer.eotId, ...e.ids]);
      const partial: number[][] = req.prompts.map(() => []);
      const t0 = performance.now();
      const rows = await generate(
        model,
        promptIds,
        {
          maxNewTokens: req.maxNewTokens,
          temperature: req.temperature,
          topK: req.topK,
          topP: req.topP,
          seed: req.seed,
          useCache: req.useCache,
          decode: (ids) => tokenizer.decode(ids),
          onStep: async (step) => {
            onProgress?.({
              jobId,
              step: step + 1,
              total: req.maxNewTokens,
              texts: partial.map((ids) => tokenizer.decode(ids.filter((id) => id !== tokenizer.eotId))),
            });
            await checkpoint();
          },
        },
        tokenizer.eotId,
        (row, token) => partial[row].push(token),
      );
      const seconds = (performance.now() - t0) / 1000;
      const newTokens = rows.reduce((n, r) => n + r.ids.length, 0);
      return {
        samples: rows.map((r, i) => ({
          prompt: req.prompts[i].slice(0, req.prompts[i].length - encoded[i].heldBack.length),
          promptIds: promptIds[i].slice(1),
          ids: r.ids,
          text: r.text,
          logprobs: r.logprobs,
          finished: r.finished,
        })),
        newTokens,
        seconds,
        tokensPerSecond: newTokens / Math.max(seconds, 1e-9),
      };
    });
  }

  async inspectTokens(promptIds: number[], ids: number[]): Promise<TokenInfo[]> {
    this.requireInit();
    const { tokenizer } = this.slot.require();
    return this.slot.inspect([tokenizer.eotId, ...promptIds, ...ids], 1 + promptIds.length);
  }

  async trainRewardModel(
    jobId: string,
    req: RewardTrainRequest,
    onEvent?: (e: RewardTrainEvent) => void,
  ): Promise<{ summary: RewardModelSummary; state: RewardModelState }> {
    this.requireInit();
    const { model, tokenizer } = this.slot.require();
    return this.runJob(jobId, (checkpoint) => this.rewards.train(model, tokenizer, req, onEvent, checkpoint));
  }

  async activateRewardModel(state: RewardModelState, summary: RewardModelSummary): Promise<void> {
    this.requireInit();
    this.rewards.activate(state, summary);
  }

  async activeRewardModel(): Promise<RewardModelSummary | null> {
    return this.rewards.summary;
  }

  async scoreResponses(items: { prompt: string; response: string }[]): Promise<number[]> {
    const { tokenizer } = this.slot.require();
    return this.rewards.score(tokenizer, items);
  }

  async tokenRewards(prompt: string, response: string): Promise<TokenReward[]> {
    const { tokenizer } = this.slot.require();
    return this.rewards.tokenRewards(tokenizer, prompt, response);
  }

  async wrongPairs(pairs: TrainingPair[]): Promise<WrongPair[]> {
    const { tokenizer } = this.slot.require();
    return this.rewards.wrongPairs(tokenizer, pairs);
  }

  async ppoCreate(setup: PpoSetup, state?: PpoState): Promise<PpoStatus> {
    this.requireInit();
    const { model, tokenizer } = this.slot.require();
    return this.ppo.create(model, tokenizer, this.rewards, setup, state);
  }

  async ppoStatus(): Promise<PpoStatus | null> {
    return this.ppo.status();
  }

  async ppoRun(jobId: string, req: PpoRunRequest, onEvent?: (e: PpoEvent) => void): Promise<PpoStatus> {
    this.requireInit();
    return this.runJob(jobId, (checkpoint) => this.ppo.run(req, onEvent, checkpoint));
  }

  async ppoUpdateConfig(partial: Partial<PpoConfig>): Promise<PpoConfig> {
    return this.ppo.updateConfig(partial);
  }

  async ppoState(): Promise<PpoState> {
    return this.ppo.getState();
  }

  async ppoEvaluate(): Promise<PpoEvalSample[]> {
    return this.ppo.evaluate();
  }

  async groupCreate(setup: GroupSetup, state?: GroupState): Promise<GroupStatus> {
    this.requireInit();
    const { model, tokenizer } = this.slot.require();
    return this.group.create(model, tokenizer, this.rewards, setup, state);
  }

  async groupState(): Promise<GroupState> {
    return this.group.getState();
  }

  async groupStatus(): Promise<GroupStatus | null> {
    return this.group.status();
  }

  async groupRun(jobId: string, req: GroupRunRequest, onEvent?: (e: GroupEvent) => void): Promise<GroupStatus> {
    this.requireInit();
    return this.runJob(jobId, (checkpoint) => this.group.run(req, onEvent, checkpoint));
  }

  async groupUpdateConfig(
    change: Partial<GrpoConfig> & Partial<RlooConfig> & Partial<OnlineDpoConfig>,
  ): Promise<GroupStatus['config']> {
    return this.group.updateConfig(change);
  }

  async groupDispose(): Promise<void> {
    this.group.dispose();
  }

  async groupPassRate(jobId: string, req: GroupPassRateRequest): Promise<PassRateResult> {
    this.requireInit();
    return this.runJob(jobId, (checkpoint) => this.group.passRate(req, checkpoint));
  }

  async ppoDispose(): Promise<void> {
    this.ppo.dispose();
  }

  async ppoSetRewardFunctions(functions: RewardFunctionSpec[]): Promise<PpoStatus> {
    return this.ppo.setRewardFunctions(functions);
  }

  async bench(jobId: string, req: BenchRequest): Promise<BenchResult> {
    this.requireInit();
    const { model, tokenizer } = this.slot.require();
    return this.runJob(jobId, (checkpoint) => runBench(model, tokenizer, req, checkpoint));
  }

  async cancel(jobId: string): Promise<boolean> {
    return this.jobs.cancel(jobId);
  }

  // ------------------------------------------------------------------ EngineTestHooks

  async debugLoseDevice(): Promise<boolean> {
    const device = activeWebGPUDevice();
    if (!device) return false;
    device.destroy();
    return true;
  }

  async debugTrapNextLoad(): Promise<boolean> {
    this.slot.trapNextBuild = true;
    return true;
  }

  async debugPoisonPpo(): Promise<boolean> {
    if (!this.ppo.status()) return false;
    this.ppo.poisonNext = true;
    return true;
  }

  async memory(): Promise<{ numTensors: number; numBytes: number }> {
    const m = tf.memory();
    return { numTensors: m.numTensors, numBytes: m.numBytes };
  }

  async exportModel(which: 'base' | 'policy', lora: 'merged' | 'adapter' = 'merged'): Promise<ExportedModel> {
    this.requireInit();
    const { model, tokenizer, info } = this.slot.require();
    if (which !== 'base' && which !== 'policy')
      throw new InvalidInputError(`Unknown model "${String(which)}": ask for 'base' or 'policy'.`);
    let m = model;
    let iteration: number | null = null;
    if (which === 'policy') {
      const status = this.ppo.status();
      if (!status)
        throw new NotReadyError(
          'There is no PPO policy yet: start a run on the Train page (or resume one), or export the base model.',
        );
      m = this.ppo.require().policy;
      iteration = status.iteration;
    }
    const source = `rlhf-playground ${which}${iteration === null ? '' : ` after ${iteration} PPO iterations`} of ${info.name}`;
    // A LoRA policy: merged into one checkpoint, or the base (its params) plus PEFT's adapter files.
    const merged = m.lora && lora === 'merged';
    const bytes = merged
      ? writeSafetensors(await mergedHfTensors(m), 'F32', { format: 'pt', source: `${source}, LoRA merged` })
      : await saveModelSafetensors(m, 'F32', {
          source: m.lora ? `${info.name} (the base of the LoRA policy)` : source,
        });
    let adapter: ExportedModel['adapter'];
    if (m.lora && !merged) {
      const peft = await exportPeftAdapter(m, './model');
      const w = peft.safetensors;
      adapter = {
        config: JSON.stringify(peft.config, null, 2),
        weights: w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength) as ArrayBuffer,
      };
    }
    return {
      ...(adapter ? { adapter } : {}),
      name: info.name,
      which,
      iteration,
      config: JSON.stringify(configToHF(m.config, tokenizer.eotId, 'F32'), null, 2),
      tokenizer: JSON.stringify(tokenizer.toJSON()),
      weights: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
    };
  }

  async sftRun(
    jobId: string,
    examples: SftExample[],
    config: Partial<SftConfig>,
    onEvent?: (e: TuneEvent) => void,
  ): Promise<TuneSummary> {
    this.requireInit();
    const { model, tokenizer, info } = this.slot.require();
    return this.runJob(jobId, (checkpoint) =>
      this.tune.sft(model, tokenizer, info.name, examples, config ?? {}, onEvent, checkpoint),
    );
  }

  async dpoRun(
    jobId: string,
    pairs: TrainingPair[],
    config: Partial<DpoConfig>,
    onEvent?: (e: TuneEvent) => void,
  ): Promise<TuneSummary> {
    this.requireInit();
    const { model, tokenizer, info } = this.slot.require();
    return this.runJob(jobId, (checkpoint) =>
      this.tune.dpo(model, tokenizer, info.name, pairs, config ?? {}, onEvent, checkpoint),
    );
  }

  async tuneStatus(): Promise<TuneSummary | null> {
    return this.tune.status();
  }

  async tuneSamples(prompts: string[], maxNewTokens: number): Promise<TuneSample[]> {
    this.requireInit();
    const { model, tokenizer } = this.slot.require();
    if (!Array.isArray(prompts) || prompts.length > 16 || prompts.some((p) => typeof p !== 'string'))
      throw new InvalidInputError('Ask for 0 to 16 prompts of text.');
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1 || maxNewTokens > 256)
      throw new InvalidInputError('Max new tokens must be a whole number from 1 to 256.');
    return this.tune.samples(model, tokenizer, prompts, maxNewTokens);
  }

  async tuneAdopt(): Promise<ModelInfo> {
    this.requireInit();
    const { tokenizer, info: base } = this.slot.require();
    const files = await this.tune.files(tokenizer, base);
    const info = await this.serialLoad(async () => files); // replaces the loaded model only when the load succeeded
    this.tune.discard();
    return info;
  }

  async tuneDiscard(): Promise<void> {
    this.tune.discard();
  }

  async tuneExport(): Promise<ModelFiles> {
    this.requireInit();
    const { tokenizer, info } = this.slot.require();
    return this.tune.files(tokenizer, info);
  }

  async sampleWith(jobId: string, weights: SampleWeights, req: SampleWithRequest): Promise<string[]> {
    this.requireInit();
    return this.runJob(jobId, (checkpoint) => sampleWithWeights(this.slot, weights, req, checkpoint));
  }

  // ------------------------------------------------------------------ pretraining (pretrain-host.ts)

  async pretrainPrepare(req: PretrainRequest): Promise<PretrainStatus> {
    this.requireInit();
    const { model, tokenizer, info } = this.slot.require();
    return this.pretrain.prepare(tokenizer, { model, name: info.name }, req);
  }

  async pretrainRun(jobId: string, onEvent?: (e: PretrainEvent) => void): Promise<PretrainStatus> {
    this.requireInit();
    return this.runJob(jobId, (checkpoint) => this.pretrain.train(onEvent, checkpoint));
  }

  async pretrainStatus(): Promise<PretrainStatus | null> {
    return this.pretrain.status();
  }

  async pretrainAdopt(): Promise<ModelInfo> {
    this.requireInit();
    const files = await this.pretrain.files();
    return this.serialLoad(async () => files); // replaces the loaded model only when the load succeeded
  }

  async pretrainDispose(): Promise<void> {
    this.pretrain.dispose();
  }

  async pretrainTokenizer(
    jobId: string,
    docs: string[],
    vocabSize: number,
    onProgress?: (p: TokenizerProgress) => void,
  ): Promise<TokenizerSummary> {
    return this.runJob(jobId, (checkpoint) => this.pretrain.trainTokenizer(docs, vocabSize, onProgress, checkpoint));
  }

  async pretrainClearTokenizer(): Promise<void> {
    this.pretrain.clearTokenizer();
  }

  async pretrainSnapshot(): Promise<PretrainSnapshot> {
    this.requireInit();
    return this.pretrain.snapshot();
  }

  async pretrainData(): Promise<PretrainData> {
    return this.pretrain.data();
  }

  async pretrainRestore(snapshot: PretrainSnapshot, data: PretrainData): Promise<PretrainStatus> {
    this.requireInit();
    return this.pretrain.restore(snapshot, data);
  }

  async pretrainTimeStep(preset: PresetName, batchSize: number, vocabSize: number): Promise<number> {
    this.requireInit();
    return this.pretrain.timeStep(`${this.info!.name} ${this.info!.adapter}`, preset, batchSize, vocabSize);
  }

  /** Timed LoRA iteration pieces per loaded model (a new load is a new GPT), by backend and shape. */
  private loraTimings = new WeakMap<GPT, Map<string, LoraTimings>>();

  async timeLoraIteration(jobId: string, req: LoraTimingRequest, onProgress?: ProgressCallback): Promise<LoraTimings> {
    this.requireInit();
    const { model } = this.slot.require();
    checkTimingRequest(model, req);
    const key = `${this.info!.name} ${this.info!.adapter}|${req.batch}|${req.promptTokens}|${req.newTokens}|${req.temperature ?? ''}`;
    const cache = this.loraTimings.get(model) ?? new Map<string, LoraTimings>();
    this.loraTimings.set(model, cache);
    const cached = cache.get(key);
    if (cached) return cached;
    const t = await this.runJob(jobId, (checkpoint) =>
      timeLoraPieces(
        model,
        req,
        checkpoint,
        (done) => onProgress?.({ jobId, step: done, total: LORA_TIMING_STEPS }),
        budgets(backendLimits(this.info!.name)),
      ),
    );
    cache.set(key, t);
    return t;
  }

  private requireInit(): void {
    if (!this.info) throw new BackendInitError('The engine is not initialised yet; wait for it to start.');
  }
}

export function createEngine(): Engine & EngineTestHooks {
  return new LocalEngine();
}
