/**
 * The one typed engine interface. Two implementations sit behind it: the engine
 * in a Web Worker (through Comlink, `client.ts`) and the same engine in-thread
 * (fallback, and in tests). Everything that crosses it is plain data.
 */

export const BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];
export type BackendChoice = BackendName | 'auto';

export function isBackendChoice(x: unknown): x is BackendChoice {
  return x === 'auto' || (typeof x === 'string' && (BACKENDS as readonly string[]).includes(x));
}

export interface BackendInfo {
  /** The TF.js backend in use. */
  name: BackendName;
  /** What the user asked for. */
  requested: BackendChoice;
  /** Human-readable description of the device: GPU adapter, "WebAssembly SIMD, 1 thread", … */
  adapter: string;
  /** True when WebGPU runs on a software adapter (SwiftShader). */
  isFallbackAdapter: boolean;
  /** What happened on the way: backends skipped or failed, and why. */
  notes: string[];
  /** On wasm: the threads its pool runs (1 without cross-origin isolation). */
  threads?: number;
}

export interface EngineInitOptions {
  backend: BackendChoice;
  /** URL (browser) or directory path (Node) the TF.js `.wasm` files are served from, ending in `/`. */
  wasmPath: string;
  /** Milliseconds one backend may take to initialise before the next is tried. */
  backendTimeoutMs?: number;
  /** Threads for wasm (`?threads=`); default: the machine's cores where cross-origin isolated. */
  wasmThreads?: number;
}

/** Progress of a long job, reported through a `Comlink.proxy` callback. */
export interface JobProgress {
  jobId: string;
  step: number;
  total: number;
  message?: string;
}

export type ProgressCallback = (p: JobProgress) => void;

/** Events the engine reports without being asked (device lost, backend changed). */
export interface EngineEvent {
  kind: 'device-lost' | 'backend-changed';
  message: string;
  backend: BackendInfo;
}
export type EventCallback = (e: EngineEvent) => void;

/** Result of the probe computation used to check a backend gives the right numbers. */
export interface ProbeResult {
  backend: BackendName;
  values: number[];
}

/** The files of a model: HF-style `config.json`, `tokenizer.json`, `model.safetensors`, optional `card.json`. */
export interface ModelFiles {
  name: string;
  source: 'bundled' | 'files';
  config: string;
  tokenizer: string;
  weights: ArrayBuffer;
  card?: string;
}

/** Files the user picked for a model (a Hub folder or its files): handles, read in the worker a tensor at a time. */
export interface PickedModelFile {
  /** `webkitRelativePath` for a folder pick (`gpt2/config.json`), else the file's name. */
  path: string;
  blob: Blob;
}

/** A model's plan as shown before it loads (src/lib/model/memory.ts): sizes, what fits where, and why not. */
export interface ModelPlanView {
  /** The name it would load under. */
  name: string;
  /** config.json's model_type. */
  architecture: string;
  config: import('../model/config').GPTConfig;
  params: number;
  /** The files read, and those ignored ("name (why)"). */
  used: string[];
  ignored: string[];
  /** The weight files' bytes and dtypes. */
  fileBytes: number;
  dtypes: string[];
  /** The tokenizer's files and vocabulary size. */
  tokenizer: { files: string; vocabSize: number | null };
  uses: import('../model/memory').MemoryUse[];
  budgets: import('../model/memory').BackendBudget[];
  /** fits[use][budget]. */
  fits: boolean[][];
  /** Why the model would not load on the active backend; null when it would. */
  refusal: string | null;
}

/** What the model card shows beyond the config: where the model came from and how good it is. */
export interface ModelCard {
  description?: string;
  corpus?: string;
  licence?: string;
  /** Validation loss in nats per token. */
  valLoss?: number;
  trainSteps?: number;
  trainTokens?: number;
}

export interface ModelInfo {
  name: string;
  source: 'bundled' | 'files';
  config: import('../model/config').GPTConfig;
  numParams: number;
  weightsBytes: number;
  card?: ModelCard;
  /** The load's memory plan (src/lib/model/plan.ts): float32 weights, the KV cache of one full-context sample, Adam + gradients. */
  memory?: { weightsBytes: number; kvCacheBytes: number; trainingBytes: number };
}

export interface SamplingSettings {
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  /** Reuse keys and values between steps (off = recompute the window every step). */
  useCache: boolean;
}

export interface GenerateRequest extends SamplingSettings {
  /** One prompt per sample (repeat a prompt to get several samples of it). */
  prompts: string[];
}

export interface Sample {
  prompt: string;
  /** Prompt tokens the model saw (after the leading end-of-text token). */
  promptIds: number[];
  /** New tokens, the end-of-text token included when the sample stopped on it. */
  ids: number[];
  text: string;
  logprobs: number[];
  finished: boolean;
}

export interface GenerateResult {
  samples: Sample[];
  newTokens: number;
  seconds: number;
  tokensPerSecond: number;
}

/** Streaming progress of a generation: the text so far of every sample. */
export interface GenerateProgress {
  jobId: string;
  step: number;
  total: number;
  texts: string[];
}

export interface TokenInfo {
  id: number;
  text: string;
  /** log p of this token given what came before; null for the first token of the window. */
  logprob: number | null;
  /** The five most likely tokens at this position. */
  top: { id: number; text: string; logprob: number }[];
}

// ---------------------------------------------------------------- reward model

/** A reward model to train: its data and any settings of the reward-model table (reward-config.ts). */
export interface RewardTrainRequest extends Partial<import('../rlhf/reward-config').RewardConfig> {
  /** Id and name the new reward model is saved under. */
  id: string;
  name: string;
  pairs: import('../data/records').TrainingPair[];
  /** Ids of the preference records the pairs came from (stored with the model). */
  recordIds: string[];
  mode: 'head' | 'full';
}

export interface RewardModelSummary {
  id: string;
  name: string;
  createdAt: number;
  mode: 'head' | 'full';
  pairs: number;
  trainPairs: number;
  valPairs: number;
  bestEpoch: number;
  accuracy: number;
  evalAccuracy: number | null;
  normalisation: { gain: number; bias: number };
  seconds: number;
  recordIds: string[];
  valPrompts: string[];
}

export type RewardTrainEvent = import('../rlhf/reward-train').RewardTrainEvent;
export type RewardModelState = import('../rlhf/reward-model').RewardModelState;

export interface TokenReward {
  id: number;
  text: string;
  /** Normalised reward of the text up to and including this token. */
  reward: number;
  /** How much this token changed the reward. */
  delta: number;
}

export interface WrongPair {
  prompt: string;
  chosen: string;
  rejected: string;
  chosenReward: number;
  rejectedReward: number;
}

// ---------------------------------------------------------------- PPO

export type PpoConfig = import('../rlhf/ppo-config').PpoConfig;
export type PpoState = import('../rlhf/ppo').PpoState;
/** A GRPO / RLOO or online DPO trainer's state between iterations (`algo` tells which). */
export type GroupState = import('../rlhf/grpo').GroupState | import('../rlhf/online-dpo').OnlineDpoState;
export type PpoMetrics = import('../rlhf/ppo').PpoMetrics;
export type PpoPhase = import('../rlhf/ppo').PpoPhase;
export type LabellerConfig = import('../rlhf/labellers').LabellerConfig;

export interface PpoSetup {
  /** Prompts the policy trains on (visited in a seeded order). */
  prompts: string[];
  /** Fixed prompts sampled every few iterations to show how the text changes. */
  evalPrompts: string[];
  config: Partial<PpoConfig>;
  /** The reward: the active reward model, a scripted labeller's score used directly, or the user's
   *  JavaScript functions summed with weights (src/lib/rlhf/reward-functions.ts). */
  reward:
    | { kind: 'reward-model' }
    | { kind: 'labeller'; labeller: LabellerConfig }
    | { kind: 'function'; functions: import('../rlhf/reward-functions').RewardFunctionSpec[] };
  /** A noise-free labeller scoring the evaluation samples ("gold"), to spot reward hacking. */
  gold?: LabellerConfig;
  /** Samples per evaluation prompt (default 1); more make the eval means (gold, proxy, KL) steadier. */
  evalSamples?: number;
  /** Saved with checkpoints so a reload rebuilds the same run. */
  name?: string;
}

export interface PpoStatus {
  iteration: number;
  nextPhase: PpoPhase;
  config: PpoConfig;
  setup: PpoSetup;
}

// ---------------------------------------------------------------- GRPO / RLOO

/** The on-policy runs the group host owns: GRPO, RLOO (src/lib/rlhf/grpo.ts) and online DPO (online-dpo.ts). */
export type GroupRunAlgo = 'grpo' | 'rloo' | 'online-dpo';

/** A group-host run: the algorithm, its settings table's values, prompts, reward. */
export interface GroupSetup {
  algo: GroupRunAlgo;
  config:
    | Partial<import('../rlhf/grpo-config').GrpoConfig>
    | Partial<import('../rlhf/rloo-config').RlooConfig>
    | Partial<import('../rlhf/online-dpo-config').OnlineDpoConfig>;
  prompts: string[];
  reward: PpoSetup['reward'];
  name?: string;
}

export interface GroupStatus {
  algo: GroupRunAlgo;
  iteration: number;
  /** The settings of the next iteration. */
  config:
    | import('../rlhf/grpo-config').GrpoConfig
    | import('../rlhf/rloo-config').RlooConfig
    | import('../rlhf/online-dpo-config').OnlineDpoConfig;
  setup: GroupSetup;
}

export interface GroupRunRequest {
  iterations: number;
  /** Groups of each iteration sent to the page for the inspector (default 8). */
  groupsShown?: number;
  /** Send each iteration's whole batch (`rollout`) for the rollout history. */
  keepRollouts?: boolean;
}

/** Held-out pass rate of a GRPO / RLOO run's policy (src/lib/rlhf/pass-rate.ts). */
export interface GroupPassRateRequest {
  prompts: string[];
  /** Samples per prompt. */
  samples: number;
  /** Sampling seed (the same seed before and after training: a fair comparison). */
  seed: number;
  /** A completion passes when its reward is ≥ this. */
  threshold: number;
}

export type GroupEvent = {
  kind: 'iteration';
  metrics: import('../rlhf/grpo').GroupMetrics | import('../rlhf/online-dpo').OnlineDpoMetrics;
  /** GRPO / RLOO: the iteration's groups (online DPO: none). */
  groups: import('../rlhf/grpo').GroupView[];
  /** The whole batch, packed, when `keepRollouts` (its `runId` is empty: the page fills it in). */
  rollout?: import('../data/rollouts').RolloutLog;
  /** Online DPO: the iteration's judged pairs (GRPO / RLOO: none). */
  pairs?: import('../rlhf/online-dpo').OnlinePairView[];
};

export interface PpoRunRequest {
  /** Whole iterations to run (ignored when `phase` is set). */
  iterations: number;
  /** Run only the next phase (rollout → score → advantages → update). */
  phase?: boolean;
  /** Sample the evaluation prompts every N iterations (0 = never). */
  evalEvery?: number;
  /** Send each finished iteration's whole batch (`rollout` of the iteration / update event) for the rollout history. */
  keepRollouts?: boolean;
}

export interface PpoEvalSample {
  prompt: string;
  text: string;
  score: number;
  gold: number | null;
  /** KL to the reference of this sample (Σ over response tokens of log π − log π_ref at the sampling temperature, nats). */
  kl?: number;
}

export type PpoEvent =
  | {
      kind: 'iteration';
      metrics: PpoMetrics;
      prompts: string[];
      texts: string[];
      scores: number[];
      traces: import('../rlhf/ppo').SampleTrace[];
      /** The whole batch, packed, when `keepRollouts` (its `runId` is empty: the page fills it in). */
      rollout?: import('../data/rollouts').RolloutLog;
    }
  | {
      kind: 'phase';
      phase: PpoPhase;
      iteration: number;
      result:
        | import('../rlhf/ppo').RolloutResult
        | import('../rlhf/ppo').ScoreResult
        | import('../rlhf/ppo').AdvantagesResult
        | import('../rlhf/ppo').UpdateResult;
      /** With the update phase, when `keepRollouts`: the iteration's whole batch, packed. */
      rollout?: import('../data/rollouts').RolloutLog;
    }
  | {
      kind: 'eval';
      iteration: number;
      samples: PpoEvalSample[];
      /** Diversity of the samples: `eval/distinct_1..3`, `eval/self_bleu` (src/lib/rlhf/diversity.ts). */
      metrics?: Record<string, number>;
    };

// ---------------------------------------------------------------- benchmarks

export interface BenchRequest {
  what: ('sample' | 'train' | 'reward' | 'ppo' | 'group')[];
  warmup?: number;
  repeats?: number;
  newTokens?: number;
  batches?: number[];
  trainBatch?: number;
  ppoIterations?: number;
  ppoConfig?: Partial<PpoConfig>;
  /** The 'group' case (bench-group.ts): GRPO / RLOO iterations timed, and their settings. */
  groupIterations?: number;
  grpoConfig?: Partial<import('../rlhf/grpo-config').GrpoConfig>;
  rlooConfig?: Partial<import('../rlhf/rloo-config').RlooConfig>;
}

export interface BenchRow {
  name: string;
  medianMs: number;
  minMs: number;
  maxMs: number;
  n: number;
  value?: number;
  unit?: string;
  tensorsGrowth?: number;
  /** The training step's loss after each step, warm-up included (same seed: same numbers on any thread count). */
  losses?: number[];
}

export interface BenchResult {
  backend: string;
  rows: BenchRow[];
  memory: { tensorsBefore: number; tensorsAfter: number; bytesBefore: number; bytesAfter: number };
}

/** A model's files for the hand-off bundle (float32 weights with GPT2LMHeadModel names). */
export interface ExportedModel {
  name: string;
  which: 'base' | 'policy';
  /** PPO iterations behind the policy; null for the base model. */
  iteration: number | null;
  /** Hugging Face GPT-2 `config.json` text. */
  config: string;
  /** Hugging Face `tokenizers` `tokenizer.json` text. */
  tokenizer: string;
  /** safetensors bytes (a LoRA policy's base when `adapter` is given, else merged). */
  weights: ArrayBuffer;
  /** A LoRA policy exported as PEFT's adapter files, with the base in `weights`. */
  adapter?: { config: string; weights: ArrayBuffer };
}

// ---------------------------------------------------------------- SFT and DPO

export type SftExample = import('../rlhf/sft').SftExample;
export type SftConfig = import('../rlhf/sft').SftConfig;
export type DpoConfig = import('../rlhf/dpo-train').DpoConfig;
export type TuneEvent = import('../rlhf/offline-train').TuneEvent;

/** What a finished SFT or DPO run produced (plain data). */
export interface TuneSummary {
  method: 'sft' | 'dpo';
  /** The model it started from (and, for DPO, its reference). */
  baseName: string;
  createdAt: number;
  config: SftConfig | DpoConfig;
  steps: number;
  epochs: number;
  /** Training and held-out examples (SFT) or pairs (DPO). */
  train: number;
  val: number;
  valPrompts: string[];
  final: Record<string, number>;
  seconds: number;
}

/** One prompt sampled from the loaded model and from the tuned one (same seed). */
export interface TuneSample {
  prompt: string;
  base: string;
  tuned: string;
}

// ---------------------------------------------------------------- pretraining

export type PretrainConfig = import('../pretrain/config').PretrainConfig;

/** A pretraining run to prepare: documents already split (`src/lib/pretrain/text.ts`), with the loaded model's tokenizer. */
export interface PretrainRequest {
  train: string[];
  val: string[];
  /** A fresh model of `config.preset`, or a trainable copy of the loaded model (domain adaptation). */
  init: 'scratch' | 'continue';
  config?: Partial<PretrainConfig>;
  /** Sampled every `sampleEvery` steps (at most 8). */
  prompts?: string[];
  /** The name the model is adopted under, and where its text came from (for its card). */
  name?: string;
  corpus?: string;
  /** From scratch: the loaded model's tokenizer (default) or the one trained by `pretrainTokenizer`. */
  tokenizer?: 'loaded' | 'trained';
}

/** A byte-level BPE trained on the user's text (`pretrainTokenizer`). */
export interface TokenizerSummary {
  vocabSize: number;
  merges: number;
  /** The newest merges learned, newest last ("t he"). */
  newest: string[];
}

export interface TokenizerProgress {
  merges: number;
  numMerges: number;
  /** The newest merges learned, newest last. */
  newest: string[];
}

/** A pretraining run at a step boundary: the model as files, Adam's moments, the batch sampler's state. */
export interface PretrainSnapshot {
  status: PretrainStatus;
  files: ModelFiles;
  opt: import('../pretrain/checkpoint').PretrainOptState;
}

/** What a run trains on (sent once per run; a snapshot does not repeat it). */
export interface PretrainData {
  trainIds: Int32Array;
  valIds: Int32Array;
  prompts: string[];
}

export interface PretrainStatus {
  init: 'scratch' | 'continue';
  baseName: string;
  name: string;
  corpus: string;
  config: PretrainConfig;
  modelConfig: import('../model/config').GPTConfig;
  params: number;
  step: number;
  trainTokens: number;
  valTokens: number;
  /** UTF-8 bytes of the validation documents (one separator byte each), for bits per byte. */
  valBytes: number;
  /** Validation targets the loss and the baselines are scored on. */
  evalTokens: number;
  /** Counting baselines on the same validation targets: nats per token and bits per byte. */
  baselines: { unigram: number; bigram: number; unigramBpb: number; bigramBpb: number };
  lastLoss: number | null;
  lastValLoss: number | null;
  lastValBpb: number | null;
  /** Seconds spent in training steps. */
  seconds: number;
  /** The tokenizer: the loaded model's (its name) or one trained on the text. */
  tokenizer: { kind: 'loaded' | 'trained'; vocabSize: number };
  /** Ended by the user (Stop): it is not offered for resuming. */
  stopped?: boolean;
}

export type PretrainEvent =
  | { kind: 'step'; step: number; loss: number; lr: number; gradNorm: number; tokensPerSec: number }
  | { kind: 'eval'; step: number; valLoss: number; valBpb: number }
  | { kind: 'samples'; step: number; samples: { prompt: string; text: string }[] }
  | { kind: 'checkpoint'; snapshot: PretrainSnapshot };

export interface Engine {
  /** Answers at once; used to check the worker started. */
  ping(): Promise<'pong'>;
  /** Initialise TF.js with the backend choice; falls through to the next backend on failure. */
  init(opts: EngineInitOptions): Promise<BackendInfo>;
  /** Switch backend at run time (weights survive the switch). */
  setBackend(choice: BackendChoice): Promise<BackendInfo>;
  backendInfo(): Promise<BackendInfo | null>;
  /** Subscribe to unprompted events. */
  onEvent(cb: EventCallback): Promise<void>;
  /** A small fixed computation (matMul, softmax, reductions): same numbers on every backend. */
  probe(): Promise<ProbeResult>;
  /** A long job that does `steps` probe computations; used to exercise progress and cancel. */
  busyJob(jobId: string, steps: number, onProgress?: ProgressCallback): Promise<number>;
  /** Cancel a running job; its promise rejects with `JobCancelledError`. */
  cancel(jobId: string): Promise<boolean>;
  /** Load a model from its files; the model already loaded stays when this fails. */
  loadModel(files: ModelFiles): Promise<ModelInfo>;
  /**
   * A PEFT LoRA adapter (`adapter_config.json` text, `adapter_model.safetensors` bytes) merged into
   * the loaded model, which it then replaces; names, shapes, rank and target modules are checked
   * first (ModelLoadError), and on failure the loaded model stays.
   */
  loadAdapter(adapter: { config: string; weights: ArrayBuffer; name?: string }): Promise<ModelInfo>;
  /** Fetch the bundled model from the app's own origin (`baseUrl` ends in `/`) and load it. */
  loadModelFromUrl(baseUrl: string, name: string): Promise<ModelInfo>;
  /** The plan of a model from picked files (headers only, nothing allocated); throws on files it cannot read. */
  planModelFiles(files: PickedModelFile[]): Promise<ModelPlanView>;
  /** Load a model from picked files (Hub layout: sharded safetensors, tokenizer.json or vocab.json + merges.txt). */
  loadModelFiles(files: PickedModelFile[]): Promise<ModelInfo>;
  modelInfo(): Promise<ModelInfo | null>;
  /** Token ids of a text under the loaded model's tokenizer. */
  tokenize(text: string): Promise<number[]>;
  /** Sample from the model; `onProgress` streams the text as it grows. Cancellable. */
  generate(jobId: string, req: GenerateRequest, onProgress?: (p: GenerateProgress) => void): Promise<GenerateResult>;
  /** Per-token log-probabilities and top-5 alternatives of `promptIds ++ ids`, from `promptIds.length` on. */
  inspectTokens(promptIds: number[], ids: number[]): Promise<TokenInfo[]>;
  /** Train a reward model on preference pairs; it becomes active when training succeeds. */
  trainRewardModel(
    jobId: string,
    req: RewardTrainRequest,
    onEvent?: (e: RewardTrainEvent) => void,
  ): Promise<{ summary: RewardModelSummary; state: RewardModelState }>;
  /** Make a saved reward model the active one. */
  activateRewardModel(state: RewardModelState, summary: RewardModelSummary): Promise<void>;
  activeRewardModel(): Promise<RewardModelSummary | null>;
  /** Normalised rewards (base-model samples: mean 0, std 1) of responses. */
  scoreResponses(items: { prompt: string; response: string }[]): Promise<number[]>;
  /** Reward of every prefix of a response, for the per-token heatmap. */
  tokenRewards(prompt: string, response: string): Promise<TokenReward[]>;
  /** The pairs (e.g. the held-out ones) the active reward model gets wrong, worst first. */
  wrongPairs(pairs: import('../data/records').TrainingPair[]): Promise<WrongPair[]>;
  /** Start a PPO run on the loaded model (or rebuild one from a checkpoint's state). */
  ppoCreate(setup: PpoSetup, state?: PpoState): Promise<PpoStatus>;
  ppoStatus(): Promise<PpoStatus | null>;
  /** Run iterations or one phase; cancel with `cancel(jobId)` (a half-done iteration is dropped). */
  ppoRun(jobId: string, req: PpoRunRequest, onEvent?: (e: PpoEvent) => void): Promise<PpoStatus>;
  /** Change hyper-parameters; they apply from the next iteration. */
  ppoUpdateConfig(partial: Partial<PpoConfig>): Promise<PpoConfig>;
  /** Plain-data state between iterations, for checkpoints. */
  ppoState(): Promise<PpoState>;
  ppoEvaluate(): Promise<PpoEvalSample[]>;
  ppoDispose(): Promise<void>;
  /** Start a GRPO, RLOO or online DPO run on the loaded model (replacing the previous one), or resume a saved GRPO / RLOO state. */
  groupCreate(setup: GroupSetup, state?: GroupState): Promise<GroupStatus>;
  groupStatus(): Promise<GroupStatus | null>;
  /** Plain-data state between iterations, for checkpoints. */
  groupState(): Promise<GroupState>;
  /** Run iterations; cancel with `cancel(jobId)` (a half-done iteration is dropped). */
  groupRun(jobId: string, req: GroupRunRequest, onEvent?: (e: GroupEvent) => void): Promise<GroupStatus>;
  /** Change settings; they apply from the next iteration (the settings table says which may change). */
  groupUpdateConfig(
    change: Partial<import('../rlhf/grpo-config').GrpoConfig> &
      Partial<import('../rlhf/rloo-config').RlooConfig> &
      Partial<import('../rlhf/online-dpo-config').OnlineDpoConfig>,
  ): Promise<GroupStatus['config']>;
  groupDispose(): Promise<void>;
  /** Held-out pass rate of the run's policy under its reward; cancel with `cancel(jobId)`. */
  groupPassRate(jobId: string, req: GroupPassRateRequest): Promise<import('../rlhf/pass-rate').PassRateResult>;
  /** New code for the run's JavaScript reward functions (the run keeps its weights); used from the next batch. */
  ppoSetRewardFunctions(functions: import('../rlhf/reward-functions').RewardFunctionSpec[]): Promise<PpoStatus>;
  /** Benchmarks on the loaded model (see `bench.ts`). */
  bench(jobId: string, req: BenchRequest): Promise<BenchResult>;
  /** TF.js memory counters (tensors, bytes) for leak checks. */
  memory(): Promise<{ numTensors: number; numBytes: number }>;
  /**
   * The base model or the PPO policy as files (NotReadyError: no PPO run for 'policy'). A LoRA
   * policy comes merged (W + α/r·ΔW, default) or, with `lora: 'adapter'`, as the base plus PEFT's
   * adapter files.
   */
  exportModel(which: 'base' | 'policy', lora?: 'merged' | 'adapter'): Promise<ExportedModel>;
  /** SFT of a copy of the loaded model on demonstrations (loss on completion tokens only). Cancellable. */
  sftRun(
    jobId: string,
    examples: SftExample[],
    config: Partial<SftConfig>,
    onEvent?: (e: TuneEvent) => void,
  ): Promise<TuneSummary>;
  /** DPO of a copy of the loaded model on preference pairs; the loaded model is the frozen reference. */
  dpoRun(
    jobId: string,
    pairs: import('../data/records').TrainingPair[],
    config: Partial<DpoConfig>,
    onEvent?: (e: TuneEvent) => void,
  ): Promise<TuneSummary>;
  /** The last finished SFT/DPO run not yet adopted or discarded. */
  tuneStatus(): Promise<TuneSummary | null>;
  /** The same prompts from the loaded model and the tuned one (one seed), to compare. */
  tuneSamples(prompts: string[], maxNewTokens: number): Promise<TuneSample[]>;
  /** Make the tuned model the loaded one: the starting point and reference of PPO and DPO from now on. */
  tuneAdopt(): Promise<ModelInfo>;
  tuneDiscard(): Promise<void>;
  /** The finished SFT/DPO model as files (to save it as a run's checkpoint); NotReadyError if none. */
  tuneExport(): Promise<ModelFiles>;
  /**
   * Sample prompts from other weights (a saved run's) in a temporary model, disposed after:
   * the loaded model and a running PPO job are not touched. Cancellable.
   */
  sampleWith(jobId: string, weights: SampleWeights, req: SampleWithRequest): Promise<string[]>;
  /** Tokenise documents, count the baselines and build the model to pretrain (replaces an earlier run). */
  pretrainPrepare(req: PretrainRequest): Promise<PretrainStatus>;
  /** Train to the last step; cancelling the job pauses at a step boundary, and the next call goes on. */
  pretrainRun(jobId: string, onEvent?: (e: PretrainEvent) => void): Promise<PretrainStatus>;
  pretrainStatus(): Promise<PretrainStatus | null>;
  /** Load the pretrained model as the engine's model (the base of Feedback, Reward model and Train). */
  pretrainAdopt(): Promise<ModelInfo>;
  pretrainDispose(): Promise<void>;
  /** Train a byte-level BPE of `vocabSize` tokens on the documents (a cancellable job); kept for `tokenizer: 'trained'`. */
  pretrainTokenizer(
    jobId: string,
    docs: string[],
    vocabSize: number,
    onProgress?: (p: TokenizerProgress) => void,
  ): Promise<TokenizerSummary>;
  /** Forget the trained tokenizer (from scratch then uses the loaded model's). */
  pretrainClearTokenizer(): Promise<void>;
  /** The run at its current step (between jobs), for a checkpoint. */
  pretrainSnapshot(): Promise<PretrainSnapshot>;
  /** The run's token streams and prompts, saved once beside its checkpoints. */
  pretrainData(): Promise<PretrainData>;
  /** Rebuild a run from a checkpoint and its data (after a reload); `pretrainRun` then goes on from its step. */
  pretrainRestore(snapshot: PretrainSnapshot, data: PretrainData): Promise<PretrainStatus>;
  /**
   * Seconds per training step of a preset on the active backend: a couple of timed steps after a
   * warm-up one, on random tokens; cached per backend, preset, vocabulary and batch size.
   */
  pretrainTimeStep(
    preset: import('../pretrain/presets').PresetName,
    batchSize: number,
    vocabSize: number,
  ): Promise<number>;
  /**
   * The pieces of a GRPO / PPO iteration with LoRA timed on the loaded model and the active
   * backend (sampling prefill and decode step, forward, LoRA training step; ./lora-timing.ts), for
   * the model card's estimate (`../rlhf/iteration-estimate.ts`). A cancellable job; cached per
   * model, backend and shape.
   */
  timeLoraIteration(
    jobId: string,
    req: import('./lora-timing').LoraTimingRequest,
    onProgress?: ProgressCallback,
  ): Promise<import('../rlhf/iteration-estimate').LoraTimings>;
}

/**
 * Hooks for the end-to-end tests, kept out of `Engine` so the app cannot call them. The engine
 * object implements both; `EngineHandle.testHooks` (`rlhf.engine.testHooks` in the page) is this view of it.
 */
export interface EngineTestHooks {
  /** Destroy the WebGPU device to simulate a device loss (false: not on WebGPU). */
  debugLoseDevice(): Promise<boolean>;
  /** The next PPO reward batch is NaN, to exercise the divergence guard (false: no run). */
  debugPoisonPpo(): Promise<boolean>;
  /** The next model load fails as a wasm trap would, mid-build (the engine restarts the backend). */
  debugTrapNextLoad(): Promise<boolean>;
}

/** Weights to sample from: model files, or a PPO policy's parameters (the loaded model's architecture and tokenizer). */
export type SampleWeights =
  | { kind: 'files'; files: ModelFiles }
  | {
      kind: 'params';
      params: Record<string, Float32Array>;
      /** A LoRA run's settings: `params` are then its adapters (`<module>.lora_A|B`) on the loaded base. */
      lora?: import('../model/lora-config').LoraConfig;
    };

export interface SampleWithRequest {
  prompts: string[];
  maxNewTokens: number;
  temperature: number;
  topK: number;
  seed: number;
}
