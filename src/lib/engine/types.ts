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
}

export interface EngineInitOptions {
  backend: BackendChoice;
  /** URL (browser) or directory path (Node) the TF.js `.wasm` files are served from, ending in `/`. */
  wasmPath: string;
  /** Milliseconds one backend may take to initialise before the next is tried. */
  backendTimeoutMs?: number;
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
  /** Test hook: destroy the WebGPU device to simulate a device loss. */
  debugLoseDevice(): Promise<boolean>;
  /** Load a model from its files; the model already loaded stays when this fails. */
  loadModel(files: ModelFiles): Promise<ModelInfo>;
  /** Fetch the bundled model from the app's own origin (`baseUrl` ends in `/`) and load it. */
  loadModelFromUrl(baseUrl: string, name: string): Promise<ModelInfo>;
  modelInfo(): Promise<ModelInfo | null>;
  /** Sample from the model; `onProgress` streams the text as it grows. Cancellable. */
  generate(jobId: string, req: GenerateRequest, onProgress?: (p: GenerateProgress) => void): Promise<GenerateResult>;
  /** Per-token log-probabilities and top-5 alternatives of `promptIds ++ ids`, from `promptIds.length` on. */
  inspectTokens(promptIds: number[], ids: number[]): Promise<TokenInfo[]>;
  /** TF.js memory counters (tensors, bytes) for leak checks. */
  memory(): Promise<{ numTensors: number; numBytes: number }>;
}
