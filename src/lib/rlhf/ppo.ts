/**
 * PPO for a GPT policy, in phases the UI can step through: rollout → score → advantages →
 * update (`iteration()` runs all four).
 *
 * Follows:
 *  - Schulman et al. 2017, "Proximal Policy Optimization Algorithms" (clipped surrogate), and
 *    Schulman et al. 2016 (GAE).
 *  - Ziegler et al. 2019, "Fine-Tuning Language Models from Human Preferences": per-token KL
 *    penalty to a frozen reference, the score added on the last token, adaptive β.
 *  - TRL `trl/trainer/ppo_trainer.py` (`PPOTrainer`): the loop below mirrors its `train()`:
 *    generate with the current policy at `temperature`; recompute the rollout log-probs with a
 *    plain forward pass of logits / temperature (reference log-probs too); values from a separate
 *    value model; `missing_eos_penalty`; rewards = −β·KL_t with the score on the last response
 *    token; optional reward whitening without mean shift; GAE; whitened advantages; then
 *    `num_ppo_epochs` passes over shuffled minibatches of one combined loss
 *    `pg_loss + vf_coef · vf_loss` with global-norm gradient clipping. Metric names are TRL's.
 *  - Huang et al. 2024, "The N Implementation Details of RLHF with PPO" (and the earlier
 *    "N Implementation Details of RLHF with PPO" blog, ICLR 2024): temperature in the training
 *    log-probs, recomputed (not sampled) old log-probs so the first ratio is exactly 1, values
 *    of the state *before* each response token, padding masked out of every mean, advantage
 *    whitening per batch, a fixed Adam epsilon.
 *
 * Our choices (differences from TRL, on purpose):
 *  - One combined loss (policy + vfCoef·value − entCoef·entropy) and one Adam over the policy and
 *    value variables, clipped by one global norm, as TRL's `PolicyAndValueWrapper` does: one
 *    backward pass, one clipping decision, one moment table to checkpoint. vfCoef sets the
 *    balance; the two networks share no weights, so each only sees its own loss term.
 *  - An entropy bonus (TRL's PPOTrainer has none; entCoef 0 reproduces it).
 *  - Sequences are [eot] + prompt + response, right-padded, so every row keeps positions
 *    0, 1, … as in sampling (our GPT has no attention mask or position ids for left padding).
 *    Response tokens then start at a different column per row; the per-position log-probs,
 *    values and entropies [b, L] are moved into response-aligned [b, R] tensors by a one-hot
 *    selection (an elementwise product and a sum, cheap to differentiate on every backend).
 *    Off-by-one: position t's logits and value belong to token t+1, so response token j of a
 *    row whose query has q tokens reads position q − 1 + j.
 *  - Prompt + response must fit the context: the query is cropped from the left to
 *    blockSize − maxNewTokens tokens, so sampling never slides its window and the training
 *    forward pass sees exactly what sampling saw.
 *  - The update is all-or-nothing: a non-finite loss or gradient in any minibatch step restores
 *    the weights and Adam moments of before the update and throws `PpoDivergedError`.
 *  - `val/ratio_var` is the population variance of the per-step mean ratios (TRL's `var()` is
 *    unbiased and gives NaN for a single step).
 *
 * Read-backs: one per phase for rollout and advantages, one per minibatch step in update.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Adam } from './adam';
import type { GPT } from '../model/gpt';
import { loraSpecOf } from '../model/lora';
import { deriveSeed, permutation, Rng, type RngState } from '../model/rng';
import { generate, type OnToken } from '../model/sampling';
import { logprobsAndEntropyT, logprobsOfTokens } from './entropy';
import { PpoDivergedError, PpoPhaseError } from './errors';
import { gae } from './gae';
import { AdaptiveKlController, klPerToken } from './kl';
import { PPO_SETTINGS, PpoConfigError, validatePpoConfig, type PpoConfig } from './ppo-config';
import { ppoPolicyLossT, ppoValueLossT } from './ppo-loss';
import { rewardPartMetrics } from './reward-functions';
import { ValueModel } from './value-model';
import { maskedMeanT, whiten, type Matrix } from './whiten';
import {
  completionTensors,
  encodePromptIds,
  LiveConfig,
  queryIds,
  selectCompletion,
  type CompletionTensors,
} from './policy-batch';

/** Adam's ε, fixed (TF.js's default depends on the backend); lm-human-preferences and the
 *  "N implementation details" reproductions use 1e-5. β1, β2 are PyTorch's defaults. */
export const PPO_ADAM = Object.freeze({ beta1: 0.9, beta2: 0.999, eps: 1e-5 });

/** Sample rows whose per-token data `advantages()` returns, for the UI's token view. */
export const TRACE_ROWS = 4;

// ----------------------------------------------------------------------------------- types

/** One response to score. */
export interface RewardInput {
  prompt: string;
  /** The prompt's token ids (without the leading end-of-text token). */
  promptIds: number[];
  /** Response ids, the end-of-text token included when the response ended with it. */
  responseIds: number[];
  /** Decoded response, without the end-of-text token. */
  text: string;
  /** Whether the response ended with the end-of-text token. */
  finished: boolean;
}

/** Anything that scores responses: a reward model, a scripted labeller's `score`, the user's functions. */
export interface RewardSource {
  score(batch: RewardInput[]): Promise<number[]>;
  /** A weighted sum's parts' scores of the last batch (logged as `rewards/<name>/mean|std`). */
  lastParts?(): { name: string; scores: number[] }[] | null;
}

/** A RewardSource from a plain `(text, prompt) → number`, e.g. a labeller's `score`. */
export function rewardFromFunction(fn: (text: string, prompt: string) => number): RewardSource {
  return { score: async (batch) => batch.map((x) => fn(x.text, x.prompt)) };
}

/** What the trainer needs of a tokenizer (`BpeTokenizer` fits). */
export interface PpoTokenizer {
  readonly eotId: number;
  encode(text: string): number[];
  decode(ids: number[]): string;
  /** Used instead of `encode` for prompts when present (strips trailing spaces). */
  encodePrompt?(text: string): { ids: number[] };
}

export type PpoPhase = 'rollout' | 'score' | 'advantages' | 'update';

// Defined in ./errors (free of TF.js, so the main thread can revive them); re-exported here.
export { PpoDivergedError, PpoPhaseError };

/** Metrics of one iteration, named as TRL logs them. */
export interface PpoMetrics {
  iteration: number;
  'objective/kl': number;
  'objective/entropy': number;
  'objective/non_score_reward': number;
  'objective/rlhf_reward': number;
  'objective/scores': number;
  'policy/approxkl_avg': number;
  'policy/clipfrac_avg': number;
  'loss/policy_avg': number;
  'loss/value_avg': number;
  'val/clipfrac_avg': number;
  'policy/entropy_avg': number;
  'val/ratio': number;
  'val/ratio_var': number;
  /** Mean global gradient norm (policy and value) of the update's steps, before clipping (TRL's `grad_norm`). */
  grad_norm: number;
  'val/num_eos_tokens': number;
  response_length: number;
  beta: number;
  'time/iteration_s': number;
  /** Per reward function of a weighted sum (TRL's names). */
  [part: `rewards/${string}`]: number;
}

export interface RolloutResult {
  prompts: string[];
  texts: string[];
  responseIds: number[][];
  finished: boolean[];
  /** Largest |log-prob while sampling − log-prob of the training forward pass| over all tokens:
   *  float noise (~1e-5) when sampling and training see the same inputs; large = a bug. */
  logprobMismatch: number;
  seconds: number;
}

export interface ScoreResult {
  /** Scores used as rewards (after the missing-EOS penalty). */
  scores: number[];
  /** Scores as the reward source returned them. */
  rawScores: number[];
  /** Which rows got the missing-EOS penalty. */
  penalised: boolean[];
  /** A weighted sum's parts' raw scores of this batch (null for a single source). */
  parts?: { name: string; scores: number[] }[] | null;
  seconds: number;
}

/** Per-token data of one sample, for the token view (arrays over response tokens). */
export interface SampleTrace {
  prompt: string;
  text: string;
  tokens: string[];
  logprobs: number[];
  refLogprobs: number[];
  kl: number[];
  rewards: number[];
  values: number[];
  returns: number[];
  /** Whitened. */
  advantages: number[];
  score: number;
}

/** Per-token data of every row of the batch (arrays over each row's response tokens). */
export interface BatchTokenData {
  responseIds: number[][];
  logprobs: number[][];
  refLogprobs: number[][];
  kl: number[][];
  /** Whitened. */
  advantages: number[][];
  /** Entropy (nats) of the policy's next-token distribution at the sampling temperature. */
  entropy: number[][];
}

export interface AdvantagesResult {
  samples: SampleTrace[];
  /** Every row's per-token data (the rollout history keeps it). */
  rows: BatchTokenData;
  /** Per row: KL summed over its tokens. */
  klPerSequence: number[];
  metrics: Pick<
    PpoMetrics,
    | 'objective/kl'
    | 'objective/entropy'
    | 'objective/non_score_reward'
    | 'objective/rlhf_reward'
    | 'objective/scores'
    | 'val/num_eos_tokens'
    | 'response_length'
    | 'beta'
  >;
  seconds: number;
}

export interface UpdateStep {
  epoch: number;
  minibatch: number;
  loss: number;
  policyLoss: number;
  valueLoss: number;
  entropy: number;
  approxKl: number;
  clipfrac: number;
  valueClipfrac: number;
  ratio: number;
  gradNorm: number;
}

export interface UpdateResult {
  steps: UpdateStep[];
  earlyStopped: boolean;
  metrics: PpoMetrics;
  seconds: number;
}

export interface IterationResult {
  metrics: PpoMetrics;
  rollout: RolloutResult;
  score: ScoreResult;
  advantages: AdvantagesResult;
  update: UpdateResult;
}

/** Everything needed to resume exactly (plain data; typed arrays survive structured clone). */
export interface PpoState {
  version: 1;
  config: PpoConfig;
  iteration: number;
  beta: number;
  adamStep: number;
  rng: RngState;
  promptOrder: number[];
  promptCursor: number;
  policy: Record<string, Float32Array>;
  value: Record<string, Float32Array>;
  /** Adam moments, keyed `policy/<name>` and `value/<name>`. */
  adamM: Record<string, Float32Array>;
  adamV: Record<string, Float32Array>;
  history: PpoMetrics[];
}

export interface PpoTrainerOptions {
  /** Starting policy. Copied: the trainer trains its own copy and never changes this model. */
  model: GPT;
  /** Frozen reference; default: a frozen copy of `model`. Not owned, never changed. */
  reference?: GPT;
  /** Value model (owned, disposed with the trainer); default: `model`'s trunk with a zero head. */
  valueModel?: ValueModel;
  reward: RewardSource;
  tokenizer: PpoTokenizer;
  /** Prompt texts, visited in a seeded shuffled order, one epoch after another. */
  prompts: string[];
  config?: Partial<PpoConfig>;
  /** Streams sampled tokens during rollout (row, token id, step). */
  onToken?: OnToken;
  /** Awaited between sampling steps and minibatch steps: yield to the UI or throw to stop. */
  onStep?: (phase: PpoPhase, step: number) => Promise<void> | void;
}

// ------------------------------------------------------------------------------ internals

interface Batch {
  promptIdx: number[];
  prompts: string[];
  promptIds: number[][];
  /** [eot] + prompt ids, cropped from the left to fit. */
  queries: number[][];
  responses: number[][];
  finished: boolean[];
  texts: string[];
  /** Padded sequence length and response length. */
  L: number;
  R: number;
  /** [B][R] 1 on response tokens. */
  mask: Matrix;
  /** [B][R] log-probs (at temperature) of the response tokens under the rollout policy. */
  oldLogprobs: Matrix;
  /** [B][R] entropy of the rollout policy (at temperature) before each response token. */
  entropy: Matrix;
  scores?: number[];
  refLogprobs?: Matrix;
  values?: Matrix;
  advantages?: Matrix;
  returns?: Matrix;
  beta?: number;
  advMetrics?: AdvantagesResult['metrics'];
  /** `rewards/<name>/mean|std` of the reward source's parts. */
  partMetrics?: Record<`rewards/${string}`, number>;
  seconds: number;
}

function emptyMatrix(B: number, R: number): Matrix {
  return Array.from({ length: B }, () => new Array<number>(R).fill(0));
}

function unflatten(data: Float32Array | Int32Array | Uint8Array, B: number, R: number, offset = 0): Matrix {
  return Array.from({ length: B }, (_, b) => Array.from(data.subarray(offset + b * R, offset + (b + 1) * R)));
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

let trainerCounter = 0;

/** Why `c` does not fit a model of context `blockSize`, or null. */
function fitsContext(c: PpoConfig, blockSize: number): string | null {
  return c.maxNewTokens < blockSize
    ? null
    : `maxNewTokens (${c.maxNewTokens}) must be below the model context (${blockSize}) to leave room for the prompt`;
}

// -------------------------------------------------------------------------------- trainer

export class PpoTrainer {
  /** Current settings and a validated change waiting for the next iteration boundary (`updateConfig`). */
  private readonly live: LiveConfig<PpoConfig>;
  /** The policy being trained (trainable copy of the starting model). Use it to sample. */
  readonly policy: GPT;
  readonly reference: GPT;
  readonly valueModel: ValueModel;
  /** Completed iterations. */
  completedIterations = 0;
  readonly history: PpoMetrics[] = [];

  private readonly ownsReference: boolean;
  private readonly reward: RewardSource;
  private readonly tokenizer: PpoTokenizer;
  private readonly prompts: string[];
  private readonly promptIds: number[][];
  private readonly onToken?: OnToken;
  private readonly onStep?: PpoTrainerOptions['onStep'];
  private rng: Rng;
  private klCtl: AdaptiveKlController;
  private promptOrder: number[] = [];
  private promptCursor = 0;
  private batch: Batch | null = null;
  private phase: PpoPhase = 'rollout';
  private readonly vars: { key: string; v: tf.Variable }[];
  /** One Adam over the policy and value variables (moments named `ppo<id>/adam-m/…`). */
  private readonly adam: Adam;
  private disposed = false;
  /** True while a rollout samples (its phase is still 'rollout'): a settings change waits. */
  private inRollout = false;

  constructor(opts: PpoTrainerOptions) {
    this.live = new LiveConfig(validatePpoConfig(opts.config ?? {}));
    const { blockSize } = opts.model.config;
    const fit = fitsContext(this.cfg, blockSize);
    if (fit) throw new RangeError(fit);
    if (opts.prompts.length === 0) throw new RangeError('PpoTrainer needs at least one prompt');
    const V = opts.model.config.vocabSize;
    if (!(opts.tokenizer.eotId >= 0 && opts.tokenizer.eotId < V))
      throw new RangeError(`tokenizer end-of-text id ${opts.tokenizer.eotId} is outside the vocabulary [0, ${V})`);
    const vc = opts.valueModel?.trunk.config;
    if (vc && (vc.blockSize < blockSize || vc.vocabSize !== V))
      throw new RangeError('the value model must share the policy vocabulary and have at least its context');

    const id = trainerCounter++;
    const lora = this.cfg.lora;
    this.policy = opts.model.clone({ trainable: !lora, namePrefix: `ppo${id}/policy/` });
    // LoRA: base frozen; the reference is the policy with adapters off and, unless a value model
    // is given, the critic is a head on that same frozen base: one trunk instead of three.
    if (lora) this.policy.addAdapters(loraSpecOf(this.cfg), this.cfg.seed);
    this.ownsReference = !lora && !opts.reference;
    this.reference = lora
      ? this.policy
      : (opts.reference ?? opts.model.clone({ trainable: false, namePrefix: `ppo${id}/ref/` }));
    this.valueModel =
      opts.valueModel ?? (lora ? ValueModel.onFrozenBase(this.policy) : ValueModel.fromTrunk(opts.model));
    this.reward = opts.reward;
    this.tokenizer = opts.tokenizer;
    this.prompts = [...opts.prompts];
    this.promptIds = this.prompts.map((p) => this.encodePrompt(p));
    this.onToken = opts.onToken;
    this.onStep = opts.onStep;
    this.rng = new Rng(this.config.seed);
    this.klCtl = this.makeKlController(this.config.klCoef);

    const policyVars: [string, tf.Variable][] = this.policy.lora
      ? [...this.policy.lora.adapters].flatMap(([name, ad]): [string, tf.Variable][] => [
          [`${name}.lora_A`, ad.a],
          [`${name}.lora_B`, ad.b],
        ])
      : [...this.policy.params];
    this.vars = [
      ...policyVars.map(([name, v]) => ({ key: `policy/${name}`, v })),
      ...[...this.valueModel.namedVariables()].map(([name, v]) => ({ key: `value/${name}`, v })),
    ];
    this.adam = new Adam(
      this.vars.map((x) => x.v),
      PPO_ADAM,
      `ppo${id}/adam`,
    );
  }

  /** The settings the current (or next) iteration runs with. */
  get config(): Readonly<PpoConfig> {
    return this.cfg;
  }

  /** The settings from the next iteration on: a pending change, else the current ones. */
  get nextConfig(): Readonly<PpoConfig> {
    return this.live.next;
  }

  /**
   * Change settings during a run. `change` is checked against the table (PPO_SETTINGS: only
   * live settings may change; the seed may not) and against the model's context, then applies
   * at the next iteration boundary, before the next rollout; an iteration already under way
   * finishes with the settings it started with. A new `klCoef` restarts β from it; a new
   * adaptive-KL target or horizon keeps β and adapts it towards the new target; turning the
   * adaptive controller off fixes β at `klCoef`. Throws `PpoConfigError` (or a `RangeError`
   * for a response that does not fit the context) and changes nothing when the change is bad.
   */
  updateConfig(change: Partial<PpoConfig>): PpoConfig {
    const next = PPO_SETTINGS.update(this.nextConfig as PpoConfig, change);
    const fit = fitsContext(next, this.policy.config.blockSize);
    if (fit) throw new PpoConfigError({ maxNewTokens: fit });
    this.live.stage(next, false);
    if (this.phase === 'rollout' && !this.inRollout) this.applyPending();
    return next;
  }

  private get cfg(): PpoConfig {
    return this.live.current;
  }

  /** At an iteration boundary: make a pending change the current settings. */
  private applyPending(): void {
    const change = this.live.apply();
    if (!change) return;
    const { prev, next } = change;
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    if (next.klCoef !== prev.klCoef || (prev.adaptiveKl && !next.adaptiveKl))
      this.klCtl = this.makeKlController(next.klCoef);
    else if (!same(next.adaptiveKl, prev.adaptiveKl)) this.klCtl = this.makeKlController(this.klCtl.value);
  }

  /** β now (changes after each iteration when adaptiveKl is on). */
  get beta(): number {
    return this.klCtl.value;
  }

  /** The phase the next call must be. */
  get nextPhase(): PpoPhase {
    return this.phase;
  }

  /** [eot] + prompt ids, cropped from the left to leave maxNewTokens of room in the context. */
  queryFor(promptIds: number[]): number[] {
    return queryIds(this.tokenizer.eotId, promptIds, this.policy.config.blockSize, this.config.maxNewTokens);
  }

  encodePrompt(text: string): number[] {
    return encodePromptIds(this.tokenizer, text);
  }

  // ------------------------------------------------------------------------------ phases

  /** Sample one response per prompt of the next batch with the current policy. */
  async rollout(): Promise<RolloutResult> {
    this.expect('rollout');
    this.applyPending();
    this.inRollout = true;
    try {
      return await this.sampleBatch();
    } finally {
      this.inRollout = false;
    }
  }

  private async sampleBatch(): Promise<RolloutResult> {
    const t0 = performance.now();
    const { batchSize: B, maxNewTokens, temperature } = this.config;
    const eot = this.tokenizer.eotId;
    const promptIdx = Array.from({ length: B }, () => this.nextPrompt());
    const promptIds = promptIdx.map((i) => this.promptIds[i]);
    const queries = promptIds.map((ids) => this.queryFor(ids));
    const seed = this.rng.nextUint32();
    const rows = await generate(
      this.policy,
      queries,
      {
        maxNewTokens,
        temperature,
        seed,
        decode: (ids) => this.tokenizer.decode(ids),
        onStep: this.onStep ? (s) => this.onStep!('rollout', s) : undefined,
      },
      eot,
      this.onToken,
    );
    const responses = rows.map((r) => r.ids);
    const R = Math.max(...responses.map((r) => r.length));
    const L = Math.max(...queries.map((q, b) => q.length + responses[b].length));
    const mask = responses.map((r) => Array.from({ length: R }, (_, j) => (j < r.length ? 1 : 0)));
    const partial: Batch = {
      promptIdx,
      prompts: promptIdx.map((i) => this.prompts[i]),
      promptIds,
      queries,
      responses,
      finished: rows.map((r) => r.finished),
      texts: rows.map((r) => r.text),
      L,
      R,
      mask,
      oldLogprobs: [],
      entropy: [],
      seconds: 0,
    };
    // Old log-probs recomputed by a plain forward pass (TRL does the same), so that the first
    // minibatch's ratio is 1 up to float rounding of identical computations.
    const rowsAll = Array.from({ length: B }, (_, b) => b);
    // The same pass gives each position's entropy (for the rollout history), in the same read-back.
    const lp = tf.tidy(() => {
      const t = this.rowTensors(partial, rowsAll);
      const { logits } = this.policy.forward(t.seq);
      const both = logprobsAndEntropyT(logits, t.targets, temperature, t.posMask);
      return tf.stack([selectCompletion(both.logprobs, t.sel), selectCompletion(both.entropy.perToken, t.sel)]);
    });
    const data = (await lp.data()) as Float32Array;
    lp.dispose();
    partial.oldLogprobs = unflatten(data, B, R);
    partial.entropy = unflatten(data, B, R, B * R);
    let logprobMismatch = 0;
    rows.forEach((r, b) =>
      r.logprobs.forEach((lpS, j) => {
        logprobMismatch = Math.max(logprobMismatch, Math.abs(lpS - partial.oldLogprobs[b][j]));
      }),
    );
    partial.seconds = (performance.now() - t0) / 1000;
    this.batch = partial;
    this.phase = 'score';
    return {
      prompts: partial.prompts,
      texts: partial.texts,
      responseIds: responses,
      finished: partial.finished,
      logprobMismatch,
      seconds: partial.seconds,
    };
  }

  /** Score the responses with the reward source; apply the missing-EOS penalty. */
  async score(): Promise<ScoreResult> {
    this.expect('score');
    const t0 = performance.now();
    const b = this.batch!;
    const inputs: RewardInput[] = b.prompts.map((prompt, i) => ({
      prompt,
      promptIds: b.promptIds[i],
      responseIds: b.responses[i],
      text: b.texts[i],
      finished: b.finished[i],
    }));
    const raw = await this.reward.score(inputs);
    if (!Array.isArray(raw) || raw.length !== inputs.length)
      throw new RangeError(`reward source returned ${raw?.length} scores for ${inputs.length} responses`);
    const penalty = this.config.missingEosPenalty;
    const penalised = b.finished.map((f) => penalty !== null && !f);
    b.scores = raw.map((s, i) => (penalised[i] ? s - penalty! : s));
    const parts = this.reward.lastParts?.() ?? null;
    if (parts)
      b.partMetrics = rewardPartMetrics(
        parts.map((p) => p.name),
        parts.map((p) => p.scores),
      ) as Record<`rewards/${string}`, number>;
    const seconds = (performance.now() - t0) / 1000;
    b.seconds += seconds;
    this.phase = 'advantages';
    return {
      scores: [...b.scores],
      rawScores: [...raw],
      penalised,
      parts: parts?.map((p) => ({ name: p.name, scores: [...p.scores] })) ?? null,
      seconds,
    };
  }

  /** Reference log-probs, per-token KL penalty, values, GAE, whitened advantages. */
  async advantages(): Promise<AdvantagesResult> {
    this.expect('advantages');
    const t0 = performance.now();
    const b = this.batch!;
    const { batchSize: B, temperature, klEstimator, gamma, lam } = this.config;
    const R = b.R;
    const rowsAll = Array.from({ length: B }, (_, i) => i);
    const both = tf.tidy(() => {
      const t = this.rowTensors(b, rowsAll);
      let ref: tf.Tensor2D;
      let values: tf.Tensor2D;
      if (this.reference === this.policy && this.valueModel.sharedTrunk && this.valueModel.trunk === this.policy) {
        // LoRA: one adapters-off forward gives the reference log-probs and the values.
        const out = this.policy.withoutAdapters(() => this.policy.forward(t.seq, { returnHidden: true }));
        ref = selectCompletion(logprobsOfTokens(out.logits, t.targets, temperature), t.sel);
        values = selectCompletion(this.valueModel.valuesOf(out.hidden!), t.sel);
      } else {
        const run = () => this.reference.forward(t.seq).logits;
        const logits = this.reference === this.policy ? this.policy.withoutAdapters(run) : run();
        ref = selectCompletion(logprobsOfTokens(logits, t.targets, temperature), t.sel);
        values = selectCompletion(this.valueModel.values(t.seq), t.sel);
      }
      return tf.stack([ref, values]);
    });
    const data = (await both.data()) as Float32Array; // one read-back
    both.dispose();
    const ref = unflatten(data, B, R, 0);
    const values = unflatten(data, B, R, B * R).map((row, i) => row.map((v, j) => v * b.mask[i][j]));
    const kl = klPerToken(b.oldLogprobs, ref, klEstimator).map((row, i) => row.map((k, j) => k * b.mask[i][j]));
    const beta = this.klCtl.value;
    const nonScore = kl.map((row) => row.map((k) => -beta * k));
    let rewards = nonScore.map((row) => [...row]);
    const scores = b.scores!;
    for (let i = 0; i < B; i++) rewards[i][b.responses[i].length - 1] += scores[i]; // last response token
    if (this.config.whitenRewards) rewards = whiten(rewards, b.mask, false);
    const { advantages, returns } = gae(rewards, values, b.mask, gamma, lam);
    const adv = whiten(advantages, b.mask);

    const sum = (row: number[]) => row.reduce((a, x) => a + x, 0);
    const klPerSequence = kl.map(sum);
    const nonScoreMean = mean(nonScore.map(sum));
    const scoreMean = mean(scores);
    const metrics: AdvantagesResult['metrics'] = {
      'objective/kl': mean(klPerSequence),
      'objective/entropy': mean(b.oldLogprobs.map((row, i) => -sum(row.map((l, j) => l * b.mask[i][j])))),
      'objective/non_score_reward': nonScoreMean,
      'objective/rlhf_reward': nonScoreMean + scoreMean,
      'objective/scores': scoreMean,
      'val/num_eos_tokens': b.responses.reduce((n, r) => n + r.filter((id) => id === this.tokenizer.eotId).length, 0),
      response_length: mean(b.responses.map((r) => r.length)),
      beta,
    };
    Object.assign(b, { refLogprobs: ref, values, advantages: adv, returns, beta, advMetrics: metrics });

    const samples: SampleTrace[] = [];
    for (let i = 0; i < Math.min(TRACE_ROWS, B); i++) {
      const n = b.responses[i].length;
      samples.push({
        prompt: b.prompts[i],
        text: b.texts[i],
        tokens: b.responses[i].map((id) => this.tokenizer.decode([id])),
        logprobs: b.oldLogprobs[i].slice(0, n),
        refLogprobs: ref[i].slice(0, n),
        kl: kl[i].slice(0, n),
        rewards: rewards[i].slice(0, n),
        values: values[i].slice(0, n),
        returns: returns[i].slice(0, n),
        advantages: adv[i].slice(0, n),
        score: scores[i],
      });
    }
    const lengths = b.responses.map((r) => r.length);
    const cut = (m: Matrix) => m.map((row, i) => row.slice(0, lengths[i]));
    const rows: BatchTokenData = {
      responseIds: b.responses.map((r) => [...r]),
      logprobs: cut(b.oldLogprobs),
      refLogprobs: cut(ref),
      kl: cut(kl),
      advantages: cut(adv),
      entropy: cut(b.entropy),
    };
    const seconds = (performance.now() - t0) / 1000;
    b.seconds += seconds;
    this.phase = 'update';
    return { samples, rows, klPerSequence, metrics, seconds };
  }

  /**
   * ppoEpochs passes over shuffled minibatches; one Adam step per minibatch. Throws
   * PpoDivergedError (weights and moments as before the update) on a non-finite loss or gradient.
   */
  async update(): Promise<UpdateResult> {
    this.expect('update');
    const t0 = performance.now();
    const b = this.batch!;
    const c = this.config;
    const mbSize = c.batchSize / c.miniBatches;
    const weightsBefore = this.vars.map((x) => tf.clone(x.v));
    const adamBefore = this.adam.snapshot();
    const steps: UpdateStep[] = [];
    let earlyStopped = false;
    try {
      outer: for (let epoch = 0; epoch < c.ppoEpochs; epoch++) {
        const order = this.shuffle(c.batchSize);
        for (let mb = 0; mb < c.miniBatches; mb++) {
          const rows = order.slice(mb * mbSize, (mb + 1) * mbSize);
          const step = await this.trainStep(b, rows);
          steps.push({ epoch, minibatch: mb, ...step });
          await this.onStep?.('update', steps.length - 1);
          if (c.targetKlEarlyStop !== null && step.approxKl > c.targetKlEarlyStop) {
            earlyStopped = true;
            break outer;
          }
        }
      }
    } catch (e) {
      // All or nothing: restore the weights and moments of before the update.
      this.vars.forEach((x, i) => x.v.assign(weightsBefore[i]));
      this.adam.restore(adamBefore);
      this.batch = null;
      this.phase = 'rollout';
      throw e;
    } finally {
      tf.dispose([...weightsBefore, ...adamBefore.m, ...adamBefore.v]);
    }

    const avg = (k: keyof UpdateStep) => mean(steps.map((s) => s[k]));
    const ratios = steps.map((s) => s.ratio);
    const ratioMean = mean(ratios);
    const seconds = (performance.now() - t0) / 1000;
    const metrics: PpoMetrics = {
      iteration: this.completedIterations,
      ...b.advMetrics!,
      ...b.partMetrics,
      'policy/approxkl_avg': avg('approxKl'),
      'policy/clipfrac_avg': avg('clipfrac'),
      'loss/policy_avg': avg('policyLoss'),
      'loss/value_avg': avg('valueLoss'),
      'val/clipfrac_avg': avg('valueClipfrac'),
      'policy/entropy_avg': avg('entropy'),
      'val/ratio': ratioMean,
      'val/ratio_var': mean(ratios.map((r) => (r - ratioMean) ** 2)),
      grad_norm: avg('gradNorm'),
      'time/iteration_s': b.seconds + seconds,
    };
    if (c.adaptiveKl) this.klCtl.update(metrics['objective/kl'], c.batchSize);
    this.history.push(metrics);
    this.completedIterations++;
    this.batch = null;
    this.phase = 'rollout';
    return { steps, earlyStopped, metrics, seconds };
  }

  /** rollout → score → advantages → update. */
  async iteration(): Promise<IterationResult> {
    const rollout = await this.rollout();
    const score = await this.score();
    const advantages = await this.advantages();
    const update = await this.update();
    return { metrics: update.metrics, rollout, score, advantages, update };
  }

  /** Drop a half-done iteration (e.g. after the user changed settings mid-way). */
  abandonIteration(): void {
    this.batch = null;
    this.phase = 'rollout';
  }

  // ---------------------------------------------------------------------------- state

  /** Plain-data state between iterations; restore with `setState` on a trainer built from the
   *  same starting model (the reference is not stored: it is the starting model). */
  async getState(): Promise<PpoState> {
    this.expect('rollout', 'getState() works between iterations');
    const read = async (v: tf.Variable) => new Float32Array((await v.data()) as Float32Array);
    const policy: Record<string, Float32Array> = {};
    const value: Record<string, Float32Array> = {};
    const adamM: Record<string, Float32Array> = {};
    const adamV: Record<string, Float32Array> = {};
    for (let i = 0; i < this.vars.length; i++) {
      const { key, v } = this.vars[i];
      const [which, ...rest] = key.split('/');
      (which === 'policy' ? policy : value)[rest.join('/')] = await read(v);
      adamM[key] = await read(this.adam.m[i]);
      adamV[key] = await read(this.adam.v[i]);
    }
    if (!this.inRollout) this.applyPending();
    return {
      version: 1,
      config: structuredClone(this.cfg),
      iteration: this.completedIterations,
      beta: this.klCtl.value,
      adamStep: this.adam.step,
      rng: this.rng.getState(),
      promptOrder: [...this.promptOrder],
      promptCursor: this.promptCursor,
      policy,
      value,
      adamM,
      adamV,
      history: this.history.map((m) => ({ ...m })),
    };
  }

  /** Restore a state from `getState` (checked completely before anything changes). */
  setState(state: PpoState): void {
    this.expect('rollout', 'setState() works between iterations');
    if (state?.version !== 1) throw new RangeError(`unknown PPO state version ${state?.version}`);
    const config = validatePpoConfig(state.config);
    if (fitsContext(config, this.policy.config.blockSize))
      throw new RangeError('the saved maxNewTokens does not fit this model');
    const source = (key: string): Float32Array | undefined => {
      const [which, ...rest] = key.split('/');
      return (which === 'policy' ? state.policy : state.value)?.[rest.join('/')];
    };
    for (let i = 0; i < this.vars.length; i++) {
      const { key, v } = this.vars[i];
      for (const [what, arr] of [
        ['weights', source(key)],
        ['Adam m', state.adamM?.[key]],
        ['Adam v', state.adamV?.[key]],
      ] as const) {
        if (!(arr instanceof Float32Array) || arr.length !== v.size)
          throw new RangeError(`PPO state: ${what} of ${key} missing or of the wrong size (model mismatch?)`);
      }
    }
    if (!state.promptOrder.every((i) => Number.isInteger(i) && i >= 0 && i < this.prompts.length))
      throw new RangeError('PPO state: prompt order does not match the prompt set');
    for (let i = 0; i < this.vars.length; i++) {
      const { key, v } = this.vars[i];
      const set = (target: tf.Variable, arr: Float32Array) => {
        const t = tf.tensor(arr, target.shape, 'float32');
        target.assign(t);
        t.dispose();
      };
      set(v, source(key)!);
      set(this.adam.m[i], state.adamM[key]);
      set(this.adam.v[i], state.adamV[key]);
    }
    this.live.reset(config);
    this.completedIterations = state.iteration;
    this.klCtl = this.makeKlController(state.beta);
    this.adam.step = state.adamStep;
    this.rng = Rng.fromState(state.rng);
    this.promptOrder = [...state.promptOrder];
    this.promptCursor = state.promptCursor;
    this.history.length = 0;
    this.history.push(...state.history.map((m) => ({ ...m })));
    this.batch = null;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.policy.dispose();
    if (this.ownsReference) this.reference.dispose();
    this.valueModel.dispose();
    this.adam.dispose();
  }

  // ------------------------------------------------------------------------- internals

  private expect(phase: PpoPhase, what?: string): void {
    if (this.disposed) throw new PpoPhaseError('this PPO trainer was disposed');
    if (this.phase !== phase)
      throw new PpoPhaseError(`${what ?? `${phase}() called`} but the next phase is ${this.phase}()`);
  }

  private makeKlController(beta: number): AdaptiveKlController {
    const a = this.cfg.adaptiveKl;
    return new AdaptiveKlController(beta, a?.target ?? 1, a?.horizon ?? 1);
  }

  private nextPrompt(): number {
    if (this.promptCursor >= this.promptOrder.length) {
      this.promptOrder = this.shuffle(this.prompts.length);
      this.promptCursor = 0;
    }
    return this.promptOrder[this.promptCursor++];
  }

  /** A permutation of 0..n-1 with the trainer's RNG (`permutation`, the shared shuffle). */
  private shuffle(n: number): number[] {
    return permutation(n, this.rng);
  }

  private rowTensors(batch: Batch, rows: number[]): CompletionTensors {
    return completionTensors(batch, rows, this.tokenizer.eotId);
  }

  /** One minibatch step: loss and gradients, one read-back, finite check, clipped Adam. */
  private async trainStep(b: Batch, rows: number[]): Promise<Omit<UpdateStep, 'epoch' | 'minibatch'>> {
    const c = this.config;
    const pick = (m: Matrix) =>
      tf.tensor2d(
        rows.map((r) => m[r]),
        [rows.length, b.R],
      );
    const t = this.rowTensors(b, rows);
    const data = {
      mask: pick(b.mask),
      oldLp: pick(b.oldLogprobs),
      adv: pick(b.advantages!),
      oldV: pick(b.values!),
      ret: pick(b.returns!),
    };
    const vars = this.vars.map((x) => x.v);
    const kept: { stats?: tf.Tensor1D } = {};
    let grads: tf.NamedTensorMap | null = null;
    let readback: tf.Tensor1D | null = null;
    try {
      this.policy.lora?.reseedDropout(deriveSeed(c.seed, this.adam.step));
      const res = tf.variableGrads(() => {
        const { logits } = this.policy.inTraining(() => this.policy.forward(t.seq));
        const both = logprobsAndEntropyT(logits, t.targets, c.temperature, t.posMask);
        const lp = selectCompletion(both.logprobs, t.sel);
        const ent = both.entropy;
        const values = selectCompletion(this.valueModel.values(t.seq), t.sel);
        const pol = ppoPolicyLossT(lp, data.oldLp, data.adv, data.mask, c.clipRange);
        const val = ppoValueLossT(values, data.oldV, data.ret, data.mask, c.clipRangeValue);
        const ratio = maskedMeanT(tf.exp(tf.mul(tf.sub(lp, data.oldLp), data.mask)), data.mask);
        // entCoef 0 (the default): the entropy is only a metric, so it stays off the gradient's path.
        const main = tf.add(pol.loss, tf.mul(val.loss, c.vfCoef));
        const loss = (c.entCoef === 0 ? main : tf.sub(main, tf.mul(ent.mean, c.entCoef))) as tf.Scalar;
        kept.stats = tf.keep(
          tf.stack([loss, pol.loss, val.loss, ent.mean, pol.approxKl, pol.clipfrac, val.clipfrac, ratio]),
        ) as tf.Tensor1D;
        return loss;
      }, vars);
      grads = res.grads;
      res.value.dispose();
      readback = tf.tidy(() => {
        const norm = tf.sqrt(tf.addN(vars.map((v) => tf.sum(tf.square(grads![v.name])))));
        return tf.concat([kept.stats!, tf.reshape(norm, [1])]) as tf.Tensor1D;
      });
      const s = (await readback.data()) as Float32Array; // the one read-back of this step
      const [loss, policyLoss, valueLoss, entropy, approxKl, clipfrac, valueClipfrac, ratio, gradNorm] = Array.from(s);
      if (!s.every(Number.isFinite))
        throw new PpoDivergedError(
          `PPO update diverged at iteration ${this.completedIterations}: loss ${loss}, policy loss ${policyLoss}, value loss ${valueLoss}, gradient norm ${gradNorm}. The weights were left as before this update; lower lr, check the reward for NaN/Inf, or lower klCoef.`,
        );
      this.adam.apply(grads, gradNorm, { lr: c.lr, maxGradNorm: c.maxGradNorm });
      return { loss, policyLoss, valueLoss, entropy, approxKl, clipfrac, valueClipfrac, ratio, gradNorm };
    } finally {
      tf.dispose([t.seq, t.targets, t.sel, t.posMask, ...Object.values(data)]);
      kept.stats?.dispose();
      if (grads) tf.dispose(grads);
      readback?.dispose();
    }
  }
}
