/**
 * Reward model: a GPT trunk with a scalar head read at the last real token.
 *
 * Follows:
 *  - Ouyang et al. 2022 (InstructGPT) §3.5 and Stiennon et al. 2020: a copy of the language
 *    model with the unembedding replaced by a linear layer to one number, trained with the
 *    Bradley–Terry loss on preference pairs (see `reward-train.ts`).
 *  - Hugging Face `GPT2ForSequenceClassification` (what TRL's RewardTrainer trains): trunk
 *    parameters named `transformer.*`, head `score.weight` ([num_labels, C] = [1, C] in the
 *    PyTorch layout), score taken at the last non-padding token. We add `score.bias` (HF has
 *    none; a bias cancels in r_chosen − r_rejected, so loading into HF and ignoring it changes
 *    no preference).
 *  - Head init N(0, 1/√(C+1)), as the value/reward heads of TRL's PPO and CleanRL
 *    (`layer_init(nn.Linear(C, 1), std=1/np.sqrt(C+1))`), bias 0.
 *
 * Inputs are token ids `[eot] + prompt + response` (see {@link rewardInputIds}), right-padded
 * to the longest row of a batch: attention is causal, so padding after the last real token
 * cannot change its hidden state. Rows longer than blockSize keep their last blockSize tokens
 * (the end is where the score is read).
 *
 * Modes: 'head' trains only the head on a frozen trunk. The trunk's hidden state at the last
 * token of each text is computed once and cached (`features`), so head training is a
 * logistic regression on fixed C-dimensional features: seconds, even from 20–50 labels.
 * 'full' trains trunk and head together (slower; needs more pairs, generalises further).
 *
 * Pooling: 'last' (default, as above and as HF) or 'mean' — the head reads the mean of the
 * hidden states of all real tokens. Mean pooling is not what HF's class does, but a frozen
 * LM's last-token state mostly encodes "what comes next", not a verdict on the whole text;
 * averaging gives head mode features of the whole text (measured in
 * `scripts/experiments/reward-model.ts`). The head being linear, a mean-pooled reward is the
 * mean of per-position rewards, which `prefixRewards` uses.
 *
 * Normalisation: `scoreNormalised(x) = gain · score(x) + bias`, set after training so that
 * base-model samples score mean 0, std 1 (what PPO expects of its reward scale).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPTConfig } from '../model/config';
import { GPT, parameterShapes } from '../model/gpt';
import { Rng } from '../model/rng';
import { readSafetensors, writeSafetensors, type TensorRecord, type WriteDtype } from '../model/weights';
import { mergedTensors } from '../model/lora-peft';

export type RewardMode = 'head' | 'full';
export type RewardPooling = 'last' | 'mean';

/** Raw reward r ↦ gain·r + bias. */
export interface RewardNormalisation {
  gain: number;
  bias: number;
}

export const IDENTITY_NORMALISATION: RewardNormalisation = Object.freeze({ gain: 1, bias: 0 });

/** Name of the head's weight ([1, C] in storage and safetensors, as PyTorch's Linear). */
export const SCORE_WEIGHT = 'score.weight';
export const SCORE_BIAS = 'score.bias';

/** Layout version of {@link RewardModelState}. */
export const REWARD_MODEL_STATE_VERSION = 1;

/**
 * Everything needed to rebuild a reward model: plain data (a Map of Float32Arrays and JSON),
 * structured-clone-safe for IndexedDB and Comlink.
 */
export interface RewardModelState {
  version: number;
  config: GPTConfig;
  mode: RewardMode;
  /** Absent in states saved before pooling existed: 'last'. */
  pooling?: RewardPooling;
  normalisation: RewardNormalisation;
  /** HF names: `transformer.*` (trunk), `score.weight` (C values, shape [1, C]), `score.bias` (1 value). */
  weights: Map<string, Float32Array>;
  /** Fingerprint of the tokenizer it was trained with (engine/reward-host.ts `tokenizerFingerprint`);
   *  absent in states saved before it existed. */
  tokenizer?: string;
}

export interface RewardModelOptions {
  mode?: RewardMode;
  /** Seed of the head init (default 0). */
  seed?: number;
  /** Token used to right-pad rows (default 0; any id works, it is never attended to). */
  padId?: number;
  /** Where the head reads the trunk (default 'last'). */
  pooling?: RewardPooling;
}

/** Anything that encodes like `BpeTokenizer`. */
export interface PromptEncoder {
  readonly eotId: number;
  encode(text: string): number[];
  encodePrompt(prompt: string): { ids: number[] };
}

/**
 * Reward-model input ids of a prompt and a response: `[eot, ...encodePrompt(prompt).ids,
 * ...encode(response)]`, the same ids the engine feeds the policy when it samples (the
 * response was generated after the prompt ids, its text starts with its own space).
 */
export function rewardInputIds(tok: PromptEncoder, prompt: string, response: string): number[] {
  return [tok.eotId, ...tok.encodePrompt(prompt).ids, ...tok.encode(response)];
}

/** Packed batch: ids [B, T] right-padded, and the column of each row's last real token. */
export interface PackedBatch {
  ids: Int32Array;
  B: number;
  T: number;
  last: number[];
}

/** Right-pad rows to the longest, keeping the last `blockSize` tokens of longer rows. */
export function packBatch(idsBatch: readonly (readonly number[])[], blockSize: number, padId = 0): PackedBatch {
  const B = idsBatch.length;
  if (B === 0) throw new RangeError('packBatch: empty batch');
  const rows = idsBatch.map((r, i) => {
    if (r.length === 0) throw new RangeError(`packBatch: row ${i} has no tokens (inputs start with the eot token)`);
    return r.length > blockSize ? r.slice(r.length - blockSize) : r;
  });
  const T = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(B * T).fill(padId);
  rows.forEach((r, b) => ids.set(r, b * T));
  return { ids, B, T, last: rows.map((r) => r.length - 1) };
}

let instanceCounter = 0;
/** Most cached feature vectors kept (oldest dropped first). */
const FEATURE_CACHE_MAX = 50_000;

export class RewardModel {
  readonly trunk: GPT;
  /** [C, 1] */
  readonly scoreWeight: tf.Variable;
  /** [1] */
  readonly scoreBias: tf.Variable;
  mode: RewardMode;
  normalisation: RewardNormalisation = { ...IDENTITY_NORMALISATION };
  readonly padId: number;
  readonly pooling: RewardPooling;
  private readonly prefix: string;
  private readonly featureCache = new Map<string, Float32Array>();
  private disposed = false;

  /** Use {@link RewardModel.fromPolicy} or {@link RewardModel.fromState}. `trunk` becomes owned by the reward model. */
  private constructor(trunk: GPT, prefix: string, opts: RewardModelOptions) {
    this.trunk = trunk;
    this.prefix = prefix;
    this.mode = opts.mode ?? 'head';
    this.padId = opts.padId ?? 0;
    this.pooling = opts.pooling ?? 'last';
    const C = trunk.config.nEmbd;
    const rng = new Rng(opts.seed ?? 0);
    const w0 = tf.tensor2d(rng.normalArray(C, 1 / Math.sqrt(C + 1)), [C, 1]);
    const b0 = tf.zeros([1]);
    this.scoreWeight = tf.variable(w0, true, prefix + SCORE_WEIGHT);
    this.scoreBias = tf.variable(b0, true, prefix + SCORE_BIAS);
    tf.dispose([w0, b0]); // tf.variable copies the values
  }

  /** A reward model whose trunk is a copy of `policy` (the policy itself is not touched). */
  static fromPolicy(policy: GPT, opts: RewardModelOptions = {}): RewardModel {
    const prefix = `rm${instanceCounter++}/`;
    return new RewardModel(policy.clone({ trainable: true, namePrefix: prefix }), prefix, opts);
  }

  /** Rebuild a saved reward model. Checks every name and shape first. */
  static fromState(
    state: RewardModelState,
    opts: Omit<RewardModelOptions, 'mode' | 'seed' | 'pooling'> = {},
  ): RewardModel {
    if (state.version > REWARD_MODEL_STATE_VERSION)
      throw new RangeError(
        `Reward model state version ${state.version} is newer than this app's ${REWARD_MODEL_STATE_VERSION}.`,
      );
    const prefix = `rm${instanceCounter++}/`;
    const trunk = new GPT(state.config, { trainable: true, namePrefix: prefix, init: 'zeros' });
    const rm = new RewardModel(trunk, prefix, { ...opts, mode: state.mode, pooling: state.pooling ?? 'last' });
    try {
      rm.setWeights(state.weights);
    } catch (e) {
      rm.dispose();
      throw e;
    }
    rm.normalisation = { ...state.normalisation };
    return rm;
  }

  get config(): GPTConfig {
    return this.trunk.config;
  }

  /** Head variables [score.weight, score.bias]. */
  headVariables(): tf.Variable[] {
    return [this.scoreWeight, this.scoreBias];
  }

  /** Variables that training in `mode` updates (head only, or trunk + head). */
  trainableVariables(mode: RewardMode = this.mode): tf.Variable[] {
    if (mode === 'full') return [...this.trunk.trainableVariables(), ...this.headVariables()];
    if (!tf.getGradient(tf.BatchMatMul))
      throw new Error(
        "TF.js gradients are not registered: import '@tensorflow/tfjs-core/dist/register_all_gradients' once at start-up (in Node scripts: import '@tensorflow/tfjs').",
      );
    return this.headVariables();
  }

  numParams(): number {
    return this.trunk.numParams() + this.scoreWeight.size + this.scoreBias.size;
  }

  /**
   * Features [B, C]: trunk hidden state (after ln_f) at each row's last real token, or the
   * mean over its real tokens (pooling 'mean'). Differentiable (full-mode training); not cached.
   */
  pooledHiddenT(idsBatch: readonly (readonly number[])[]): tf.Tensor2D {
    this.checkAlive();
    const { ids, B, T, last } = packBatch(idsBatch, this.config.blockSize, this.padId);
    const sel = new Float32Array(B * T);
    if (this.pooling === 'mean') last.forEach((t, b) => sel.fill(1 / (t + 1), b * T, b * T + t + 1));
    else last.forEach((t, b) => (sel[b * T + t] = 1));
    return tf.tidy(() => {
      const idx = tf.tensor2d(ids, [B, T], 'int32');
      const hidden = this.trunk.hiddenStates(idx); // no LM head: its logits were never read
      // Select with a one-hot mask (mul + sum) rather than gather: wasm has no gather gradient.
      return tf.sum(tf.mul(hidden, tf.tensor3d(sel, [B, T, 1])), 1) as tf.Tensor2D;
    });
  }

  /**
   * Head on features [B, C] → rewards [B]. Differentiable. Written as sum(f · wᵀ) + b, whose
   * gradient needs no transposed matMul (slow on wasm).
   */
  headT(features: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() =>
      tf.add(tf.sum(tf.mul(features, tf.reshape(this.scoreWeight, [1, -1])), 1), this.scoreBias),
    ) as tf.Tensor1D;
  }

  /** Raw rewards [B] of a batch, differentiable through trunk and head. */
  scoreT(idsBatch: readonly (readonly number[])[]): tf.Tensor1D {
    return tf.tidy(() => this.headT(this.pooledHiddenT(idsBatch)));
  }

  /**
   * Cached trunk features (hidden state at the last token) of each row, computed in chunks
   * of `batchSize` rows of similar length, one read-back per chunk. Valid while the trunk
   * does not change; full-mode training and `setWeights` clear the cache.
   */
  async features(idsBatch: readonly (readonly number[])[], batchSize = 32): Promise<Float32Array[]> {
    this.checkAlive();
    const C = this.config.nEmbd;
    const keys = idsBatch.map((r) => this.cacheKey(r));
    const todo = [...new Set(keys.filter((k) => !this.featureCache.has(k)))];
    // Similar lengths together: less padding.
    const rowOf = new Map<string, readonly number[]>();
    keys.forEach((k, i) => rowOf.set(k, idsBatch[i]));
    todo.sort((a, b) => rowOf.get(a)!.length - rowOf.get(b)!.length);
    for (let i = 0; i < todo.length; i += batchSize) {
      const chunk = todo.slice(i, i + batchSize);
      const h = this.pooledHiddenT(chunk.map((k) => rowOf.get(k)!));
      const data = (await h.data()) as Float32Array;
      h.dispose();
      chunk.forEach((k, j) => this.featureCache.set(k, data.slice(j * C, (j + 1) * C)));
    }
    const out = keys.map((k) => this.featureCache.get(k)!);
    while (this.featureCache.size > FEATURE_CACHE_MAX) {
      this.featureCache.delete(this.featureCache.keys().next().value!);
    }
    return out;
  }

  /** Forget cached features (call after changing the trunk's weights from outside). */
  invalidateFeatures(): void {
    this.featureCache.clear();
  }

  get cachedFeatureCount(): number {
    return this.featureCache.size;
  }

  /** Raw rewards of a batch of id rows, in chunks of `batchSize`, one read-back per chunk. */
  async score(idsBatch: readonly (readonly number[])[], batchSize = 32): Promise<number[]> {
    this.checkAlive();
    const out = new Array<number>(idsBatch.length);
    const order = idsBatch.map((_, i) => i).sort((a, b) => idsBatch[a].length - idsBatch[b].length);
    for (let i = 0; i < order.length; i += batchSize) {
      const idx = order.slice(i, i + batchSize);
      const r = this.scoreT(idx.map((j) => idsBatch[j]));
      const data = await r.data();
      r.dispose();
      idx.forEach((j, k) => (out[j] = data[k]));
    }
    return out;
  }

  /** Raw rewards from cached features (head mode's fast path; same numbers as `score`). */
  async scoreCached(idsBatch: readonly (readonly number[])[]): Promise<number[]> {
    if (idsBatch.length === 0) return [];
    const feats = await this.features(idsBatch);
    const C = this.config.nEmbd;
    const flat = new Float32Array(feats.length * C);
    feats.forEach((f, i) => flat.set(f, i * C));
    const r = tf.tidy(() => this.headT(tf.tensor2d(flat, [feats.length, C])));
    const data = await r.data();
    r.dispose();
    return Array.from(data);
  }

  /** `gain · score + bias` (mean 0, std 1 on the base-model samples given at training time). */
  async scoreNormalised(idsBatch: readonly (readonly number[])[], batchSize = 32): Promise<number[]> {
    const { gain, bias } = this.normalisation;
    return (await this.score(idsBatch, batchSize)).map((r) => gain * r + bias);
  }

  /** Apply the normalisation to raw rewards. */
  normalise(raw: number): number {
    return this.normalisation.gain * raw + this.normalisation.bias;
  }

  /** Every parameter by HF name, head as [1, C] (PyTorch Linear layout; same values as [C, 1]). */
  private namedVariables(): Map<string, tf.Variable> {
    const m = new Map<string, tf.Variable>(this.trunk.params);
    m.set(SCORE_WEIGHT, this.scoreWeight);
    m.set(SCORE_BIAS, this.scoreBias);
    return m;
  }

  /** Shapes as stored: trunk shapes, `score.weight` [1, C], `score.bias` [1]. */
  static parameterShapes(config: GPTConfig): Map<string, number[]> {
    const s = parameterShapes(config);
    s.set(SCORE_WEIGHT, [1, config.nEmbd]);
    s.set(SCORE_BIAS, [1]);
    return s;
  }

  /**
   * Read all weights back (one `data()` per parameter) into a plain, storable state. A trunk
   * with LoRA adapters is stored merged (W + α/r·ΔW): a plain reward model anywhere it goes.
   */
  async getState(): Promise<RewardModelState> {
    this.checkAlive();
    const weights = new Map<string, Float32Array>();
    const merged = this.trunk.lora ? await mergedTensors(this.trunk) : null;
    for (const [name, v] of this.namedVariables())
      weights.set(name, merged?.get(name)?.data ?? ((await v.data()) as Float32Array));
    return {
      version: REWARD_MODEL_STATE_VERSION,
      config: { ...this.config },
      mode: this.mode,
      pooling: this.pooling,
      normalisation: { ...this.normalisation },
      weights,
    };
  }

  /** Replace all weights (names and sizes checked before anything changes). */
  setWeights(weights: Map<string, Float32Array>): void {
    this.checkAlive();
    const shapes = RewardModel.parameterShapes(this.config);
    const missing = [...shapes.keys()].filter((n) => !weights.has(n));
    const unknown = [...weights.keys()].filter((n) => !shapes.has(n));
    if (missing.length || unknown.length)
      throw new RangeError(
        `Reward model weights do not match the config:${missing.length ? ` missing ${missing.slice(0, 5).join(', ')}` : ''}${unknown.length ? ` unexpected ${unknown.slice(0, 5).join(', ')}` : ''}.`,
      );
    for (const [name, shape] of shapes) {
      const n = shape.reduce((a, b) => a * b, 1);
      if (weights.get(name)!.length !== n)
        throw new RangeError(`Reward model weight ${name} has ${weights.get(name)!.length} values, expected ${n}.`);
    }
    for (const [name, v] of this.namedVariables()) {
      const t = tf.tensor(weights.get(name)!, v.shape, 'float32');
      v.assign(t);
      t.dispose();
    }
    this.featureCache.clear();
  }

  /** Every variable: the named ones, then the trunk's LoRA adapters (if any). */
  private allVariables(): tf.Variable[] {
    return [...this.namedVariables().values(), ...(this.trunk.lora?.variables() ?? [])];
  }

  /** Copy of the current values of every variable (for restore). Caller disposes. */
  snapshot(): tf.Tensor[] {
    return this.allVariables().map((v) => tf.clone(v));
  }

  /** Restore a {@link snapshot}. `trunkChanged` false keeps the feature cache. */
  restore(snap: tf.Tensor[], trunkChanged = true): void {
    this.allVariables().forEach((v, i) => v.assign(snap[i]));
    if (trunkChanged) this.featureCache.clear();
  }

  /** Weights as safetensors tensors (HF names; normalisation etc. go in the metadata). */
  async toTensorRecords(): Promise<Map<string, TensorRecord>> {
    const state = await this.getState();
    return stateToTensorRecords(state);
  }

  /** Independent copy (own variables, same weights, mode and normalisation). */
  clone(): RewardModel {
    this.checkAlive();
    const prefix = `rm${instanceCounter++}/`;
    const rm = new RewardModel(this.trunk.clone({ trainable: true, namePrefix: prefix }), prefix, {
      mode: this.mode,
      padId: this.padId,
      pooling: this.pooling,
    });
    rm.scoreWeight.assign(this.scoreWeight);
    rm.scoreBias.assign(this.scoreBias);
    rm.normalisation = { ...this.normalisation };
    return rm;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.trunk.dispose();
    this.scoreWeight.dispose();
    this.scoreBias.dispose();
    this.featureCache.clear();
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  private checkAlive(): void {
    if (this.disposed) throw new Error('RewardModel: used after dispose()');
  }

  private cacheKey(ids: readonly number[]): string {
    const T = this.config.blockSize;
    return (ids.length > T ? ids.slice(ids.length - T) : ids).join(',');
  }
}

/** One response as the PPO trainer hands it over (`RewardInput` in `ppo.ts`). */
export interface RewardSourceInput {
  /** Prompt ids without the leading end-of-text token. */
  promptIds: number[];
  /** Response ids, the end-of-text token included when the response ended with it. */
  responseIds: number[];
}

/**
 * The reward model as PPO's `RewardSource`: scores `[eot] + promptIds + responseIds` (a final
 * end-of-text token dropped, as training texts have none), normalised unless `raw`.
 */
export function rewardSource(
  rm: RewardModel,
  eotId: number,
  opts: { raw?: boolean } = {},
): { score(batch: RewardSourceInput[]): Promise<number[]> } {
  return {
    score: async (batch) => {
      const ids = batch.map((x) => {
        const r = x.responseIds;
        const resp = r.length && r[r.length - 1] === eotId ? r.slice(0, -1) : r;
        return [eotId, ...x.promptIds, ...resp];
      });
      return opts.raw ? rm.score(ids) : rm.scoreNormalised(ids);
    },
  };
}

function stateToTensorRecords(state: RewardModelState): Map<string, TensorRecord> {
  const shapes = RewardModel.parameterShapes(state.config);
  const out = new Map<string, TensorRecord>();
  for (const [name, shape] of shapes) {
    const data = state.weights.get(name);
    if (!data) throw new RangeError(`Reward model state lacks ${name}`);
    out.set(name, { shape, data });
  }
  return out;
}

/**
 * A reward model as a safetensors file: HF `GPT2ForSequenceClassification` names
 * (`transformer.*`, `score.weight` [1, C]) plus `score.bias`; config, mode and normalisation
 * as JSON strings in the metadata.
 */
export function rewardModelToSafetensors(state: RewardModelState, dtype: WriteDtype = 'F32'): Uint8Array {
  return writeSafetensors(stateToTensorRecords(state), dtype, {
    format: 'pt',
    kind: 'reward-model',
    version: String(state.version),
    config: JSON.stringify(state.config),
    mode: state.mode,
    pooling: state.pooling ?? 'last',
    normalisation: JSON.stringify(state.normalisation),
  });
}

/** Inverse of {@link rewardModelToSafetensors}. */
export function rewardModelStateFromSafetensors(bytes: Uint8Array): RewardModelState {
  const file = readSafetensors(bytes);
  const md = file.metadata;
  if (md.kind !== 'reward-model' || !md.config)
    throw new RangeError('This safetensors file is not a reward model saved by this app (no reward-model metadata).');
  const weights = new Map<string, Float32Array>();
  for (const [name, t] of file.tensors) weights.set(name, Float32Array.from(t.data));
  return {
    version: Number(md.version ?? 1),
    config: JSON.parse(md.config) as GPTConfig,
    mode: md.mode === 'full' ? 'full' : 'head',
    pooling: md.pooling === 'mean' ? 'mean' : 'last',
    normalisation: md.normalisation
      ? (JSON.parse(md.normalisation) as RewardNormalisation)
      : { ...IDENTITY_NORMALISATION },
    weights,
  };
}
