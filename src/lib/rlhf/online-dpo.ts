/**
 * Online DPO for a GPT policy: each iteration samples two completions per prompt from the
 * current policy, judges them with a reward source, and takes one DPO step on the pairs against
 * the frozen reference, in phases the UI can step through: rollout → score → pairs → update
 * (`iteration()` runs all four).
 *
 * Follows:
 *  - Guo et al. 2024, "Direct Language Model Alignment from Online AI Feedback" (OAIF): DPO on
 *    pairs sampled from the current policy and labelled online, instead of a fixed data set.
 *  - TRL (huggingface/trl) `trl/trainer/online_dpo_trainer.py` (`OnlineDPOTrainer.training_step`):
 *    B prompts are sampled twice, as rows [p_0 … p_{B−1}, p_0 … p_{B−1}]; completions end at the
 *    first end-of-text token (kept, `truncate_right`); `contain_eos_token` per row; the rewards
 *    of all 2B rows, minus `missing_eos_penalty` where no end-of-text came; row i is chosen over
 *    row i + B when its score is ≥ (ties go to the first); per-row sums of the completion
 *    log-probs of the policy (with gradient) and of the reference; logits = (π_c − π_r) −
 *    (ref_c − ref_r); loss mean −log σ(β·logits) ('sigmoid') or (logits − 1/(2β))² ('ipo', on
 *    sums, unlike offline IPO's token means); one optimiser step per generation batch. Logged
 *    with TRL's names: objective/kl = mean over rows of Σ_t (logπ − logπ_ref),
 *    objective/non_score_reward = −β·that, objective/rlhf_reward = scores + non_score_reward,
 *    objective/entropy = −mean Σ_t logπ, objective/scores(_margin), rewards/chosen|rejected
 *    (β·(logπ − logπ_ref) summed), rewards/accuracies, rewards/margins, logps/chosen|rejected,
 *    val/contain_eos_token, beta.
 *  - Rafailov et al. 2023 (DPO) and Azar et al. 2023 (IPO) for the losses (dpo.ts).
 *
 * Our choices (differences from TRL, on purpose):
 *  - Log-probabilities are of logits / temperature, as the sampling distribution and as GRPO
 *    and PPO here (TRL's older releases did the same; current ones use raw logits).
 *  - The KL and entropy metrics sum over completion tokens only (TRL sums padding positions
 *    too, which only adds float noise between equal models but is not a KL).
 *  - Shared with PPO and GRPO (policy-batch.ts): prompt → query, the settings change that waits
 *    for an iteration boundary, and the completion-token tensors; sampling with the KV cache
 *    (`generate`), `logprobsOfTokens`, the one Adam (`PPO_ADAM`), the seeded `Rng`, the
 *    `RewardSource` interface and the all-or-nothing update.
 *
 * Read-backs: one for the reference log-probs in rollout, one in update.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Adam } from './adam';
import { GroupDivergedError, GroupPhaseError } from './errors';
import type { GPT } from '../model/gpt';
import { permutation, Rng, type RngState } from '../model/rng';
import { generate, type OnToken } from '../model/sampling';
import { logprobsOfTokens } from './entropy';
import { dpoLossT, type DpoLossType } from './dpo';
import { PPO_ADAM, type PpoTokenizer, type RewardInput, type RewardSource } from './ppo';
import { ONLINE_DPO_SETTINGS, OnlineDpoConfigError, type OnlineDpoConfig } from './online-dpo-config';
import { completionTensors, encodePromptIds, LiveConfig, queryIds, selectCompletion, unflatten } from './policy-batch';
import type { Matrix } from './whiten';

export type OnlineDpoPhase = 'rollout' | 'score' | 'pairs' | 'update';

/** Metrics of one iteration, named as TRL's OnlineDPOTrainer logs them (plus a few of ours). */
export interface OnlineDpoMetrics {
  iteration: number;
  'objective/kl': number;
  'objective/entropy': number;
  'objective/non_score_reward': number;
  'objective/rlhf_reward': number;
  'objective/scores': number;
  'objective/scores_margin': number;
  'rewards/chosen': number;
  'rewards/rejected': number;
  'rewards/accuracies': number;
  'rewards/margins': number;
  'logps/chosen': number;
  'logps/rejected': number;
  'val/contain_eos_token': number;
  beta: number;
  loss: number;
  grad_norm: number;
  learning_rate: number;
  'completions/mean_length': number;
  'time/iteration_s': number;
}

/** One judged pair, for the pair inspector. */
export interface OnlinePairView {
  prompt: string;
  chosen: string;
  rejected: string;
  /** Scores after the missing-EOS penalty (what the pair was judged on). */
  chosenScore: number;
  rejectedScore: number;
  /** chosenScore − rejectedScore (≥ 0; 0 is a tie, which goes to the first sample). */
  margin: number;
  chosenFinished: boolean;
  rejectedFinished: boolean;
}

export interface OnlineDpoRolloutResult {
  /** [2B] prompt of each row: the B prompts, then the same B again. */
  prompts: string[];
  texts: string[];
  finished: boolean[];
  seconds: number;
}

export interface OnlineDpoPairsResult {
  /** Row of the chosen / rejected completion of pair i (i or i + B). */
  chosen: number[];
  rejected: number[];
  pairs: OnlinePairView[];
  seconds: number;
}

export interface OnlineDpoIterationResult {
  metrics: OnlineDpoMetrics;
  rollout: OnlineDpoRolloutResult;
  scores: number[];
  pairs: OnlineDpoPairsResult;
}

// ------------------------------------------------------------------------------- maths

/**
 * TRL's pairing: row i (first sample of prompt i) against row i + B; chosen when its score is ≥
 * the other's. `scores` has 2B entries.
 */
export function onlineDpoPairs(scores: number[]): { chosen: number[]; rejected: number[] } {
  if (scores.length === 0 || scores.length % 2 !== 0)
    throw new RangeError(`onlineDpoPairs: need 2B scores (two per prompt), got ${scores.length}`);
  const B = scores.length / 2;
  const chosen: number[] = [];
  const rejected: number[] = [];
  for (let i = 0; i < B; i++) {
    const firstWins = scores[i] >= scores[i + B];
    chosen.push(firstWins ? i : i + B);
    rejected.push(firstWins ? i + B : i);
  }
  return { chosen, rejected };
}

/** Scores minus `penalty` where the completion has no end-of-text (TRL missing_eos_penalty). */
export function applyMissingEosPenalty(scores: number[], containEos: boolean[], penalty: number | null): number[] {
  return scores.map((s, i) => (penalty !== null && !containEos[i] ? s - penalty : s));
}

export interface OnlineDpoLossOptions {
  beta: number;
  lossType: DpoLossType;
}

/** The loss and the per-iteration statistics of {@link onlineDpoLossT}, as tensors. */
export interface OnlineDpoLossT {
  loss: tf.Scalar;
  /** [10]: loss, rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins,
   *  logps/chosen, logps/rejected, objective/kl, objective/entropy, objective/non_score_reward. */
  stats: tf.Tensor1D;
}

export const ONLINE_DPO_STATS = [
  'loss',
  'rewards/chosen',
  'rewards/rejected',
  'rewards/accuracies',
  'rewards/margins',
  'logps/chosen',
  'logps/rejected',
  'objective/kl',
  'objective/entropy',
  'objective/non_score_reward',
] as const;

/**
 * TRL's online DPO loss from per-token completion log-probs: `logprobs` [2B, R] of the policy
 * (gradients flow through it), `refLogprobs` [2B, R] of the reference, `mask` [2B, R] (1 on
 * completion tokens), and the chosen / rejected row of each pair ([B] int32).
 */
export function onlineDpoLossT(
  logprobs: tf.Tensor2D,
  refLogprobs: tf.Tensor2D,
  mask: tf.Tensor2D,
  chosen: tf.Tensor1D,
  rejected: tf.Tensor1D,
  opts: OnlineDpoLossOptions,
): OnlineDpoLossT {
  return tf.tidy(() => {
    const sums = tf.sum(tf.mul(logprobs, mask), 1) as tf.Tensor1D;
    const refSums = tf.sum(tf.mul(refLogprobs, mask), 1) as tf.Tensor1D;
    // Rows picked by one-hot products, not tf.gather: gather's gradient needs UnsortedSegmentSum,
    // which the wasm backend lacks (tfjs 4.22).
    const n = sums.shape[0];
    const oc = tf.cast(tf.oneHot(chosen, n), 'float32');
    const or = tf.cast(tf.oneHot(rejected, n), 'float32');
    const pick = (oh: tf.Tensor, x: tf.Tensor1D) => tf.sum(tf.mul(oh, tf.expandDims(x, 0)), 1) as tf.Tensor1D;
    const pc = pick(oc, sums);
    const pr = pick(or, sums);
    const rc = pick(oc, refSums);
    const rr = pick(or, refSums);
    const d = dpoLossT(pc, pr, rc, rr, opts.beta, opts.lossType);
    const margins = tf.sub(d.chosenRewards, d.rejectedRewards);
    const kl = tf.mean(tf.sub(sums, refSums));
    const stats = tf.stack([
      d.loss,
      tf.mean(d.chosenRewards),
      tf.mean(d.rejectedRewards),
      tf.mean(tf.cast(tf.greater(margins, 0), 'float32')),
      tf.mean(margins),
      tf.mean(pc),
      tf.mean(pr),
      kl,
      tf.neg(tf.mean(sums)),
      tf.mul(kl, -opts.beta),
    ]) as tf.Tensor1D;
    return { loss: d.loss, stats };
  });
}

/**
 * Plain-array form of {@link onlineDpoLossT} for reference tests: the loss, its statistics by
 * TRL name, and the gradient of the loss with respect to `logprobs` ([2B][R]).
 */
export function onlineDpoLoss(
  logprobs: Matrix,
  refLogprobs: Matrix,
  mask: Matrix,
  scores: number[],
  opts: OnlineDpoLossOptions,
): { loss: number; stats: Record<(typeof ONLINE_DPO_STATS)[number], number>; grad: Matrix } {
  const { chosen, rejected } = onlineDpoPairs(scores);
  const lp = tf.tensor2d(logprobs);
  const ref = tf.tensor2d(refLogprobs);
  const m = tf.tensor2d(mask);
  const c = tf.tensor1d(chosen, 'int32');
  const r = tf.tensor1d(rejected, 'int32');
  try {
    const out = onlineDpoLossT(lp, ref, m, c, r, opts);
    const g = tf.grad((x: tf.Tensor) => onlineDpoLossT(x as tf.Tensor2D, ref, m, c, r, opts).loss)(lp);
    const s = out.stats.dataSync();
    const stats = Object.fromEntries(ONLINE_DPO_STATS.map((k, i) => [k, s[i]])) as Record<
      (typeof ONLINE_DPO_STATS)[number],
      number
    >;
    const grad = g.arraySync() as Matrix;
    tf.dispose([out.loss, out.stats, g]);
    return { loss: stats.loss, stats, grad };
  } finally {
    tf.dispose([lp, ref, m, c, r]);
  }
}

// ----------------------------------------------------------------------------- trainer

/** Everything needed to resume exactly (plain data). */
export interface OnlineDpoState {
  version: 1;
  /** Which trainer wrote it (saved runs share the GRPO/RLOO record shape, `SavedGroupRun`). */
  algo: 'online-dpo';
  config: OnlineDpoConfig;
  iteration: number;
  adamStep: number;
  rng: RngState;
  promptOrder: number[];
  promptCursor: number;
  policy: Record<string, Float32Array>;
  adamM: Record<string, Float32Array>;
  adamV: Record<string, Float32Array>;
  history: OnlineDpoMetrics[];
}

export interface OnlineDpoTrainerOptions {
  /** Starting policy. Copied: the trainer trains its own copy and never changes this model. */
  model: GPT;
  /** Frozen reference; default a frozen copy of `model`. Not owned, never changed. */
  reference?: GPT;
  reward: RewardSource;
  tokenizer: PpoTokenizer;
  /** Prompt texts, visited in a seeded shuffled order, one epoch after another. */
  prompts: string[];
  config?: Partial<OnlineDpoConfig>;
  onToken?: OnToken;
  /** Awaited between sampling steps and before the update: yield to the UI or throw to stop. */
  onStep?: (phase: OnlineDpoPhase, step: number) => Promise<void> | void;
}

interface Batch {
  prompts: string[];
  promptIds: number[][];
  queries: number[][];
  responses: number[][];
  finished: boolean[];
  texts: string[];
  L: number;
  R: number;
  mask: Matrix;
  refLogprobs: Matrix;
  scores?: number[];
  chosen?: number[];
  rejected?: number[];
  seconds: number;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

let trainerCounter = 0;

export class OnlineDpoTrainer {
  readonly algo = 'online-dpo' as const;
  /** The policy being trained (trainable copy of the starting model). */
  readonly policy: GPT;
  readonly reference: GPT;
  completedIterations = 0;
  readonly history: OnlineDpoMetrics[] = [];

  private readonly live: LiveConfig<OnlineDpoConfig>;
  private readonly ownsReference: boolean;
  private readonly reward: RewardSource;
  private readonly tokenizer: PpoTokenizer;
  private readonly prompts: string[];
  private readonly promptIds: number[][];
  private readonly onToken?: OnToken;
  private readonly onStep?: OnlineDpoTrainerOptions['onStep'];
  private rng: Rng;
  private promptOrder: number[] = [];
  private promptCursor = 0;
  private batch: Batch | null = null;
  private phase: OnlineDpoPhase = 'rollout';
  private inRollout = false;
  private readonly vars: { key: string; v: tf.Variable }[];
  private readonly adam: Adam;
  private disposed = false;

  constructor(opts: OnlineDpoTrainerOptions) {
    this.live = new LiveConfig(ONLINE_DPO_SETTINGS.validate(opts.config ?? {}));
    const { blockSize, vocabSize: V } = opts.model.config;
    const fit = fitProblem(this.cfg, blockSize);
    if (fit) throw new RangeError(fit);
    if (opts.prompts.length === 0) throw new RangeError('Online DPO trainer needs at least one prompt');
    if (!(opts.tokenizer.eotId >= 0 && opts.tokenizer.eotId < V))
      throw new RangeError(`tokenizer end-of-text id ${opts.tokenizer.eotId} is outside the vocabulary [0, ${V})`);
    const tag = `odpo${trainerCounter++}`;
    this.policy = opts.model.clone({ trainable: true, namePrefix: `${tag}/policy/` });
    this.ownsReference = !opts.reference;
    this.reference = opts.reference ?? opts.model.clone({ trainable: false, namePrefix: `${tag}/ref/` });
    this.reward = opts.reward;
    this.tokenizer = opts.tokenizer;
    this.prompts = [...opts.prompts];
    this.promptIds = this.prompts.map((p) => this.encodePrompt(p));
    this.onToken = opts.onToken;
    this.onStep = opts.onStep;
    this.rng = new Rng(this.cfg.seed);
    this.vars = [...this.policy.params].map(([key, v]) => ({ key, v }));
    this.adam = new Adam(
      this.vars.map((x) => x.v),
      PPO_ADAM,
      `${tag}/adam`,
    );
  }

  private get cfg(): OnlineDpoConfig {
    return this.live.current;
  }

  /** The settings the current (or next) iteration runs with. */
  get config(): Readonly<OnlineDpoConfig> {
    return this.cfg;
  }

  /** The settings from the next iteration on: a pending change, else the current ones. */
  get nextConfig(): Readonly<OnlineDpoConfig> {
    return this.live.next;
  }

  get nextPhase(): OnlineDpoPhase {
    return this.phase;
  }

  /**
   * Change settings during a run: checked against the table (live settings only; not the seed)
   * and the model's context, applied at the next iteration boundary. Throws
   * `OnlineDpoConfigError` and changes nothing when bad.
   */
  updateConfig(change: Partial<OnlineDpoConfig>): OnlineDpoConfig {
    const next = ONLINE_DPO_SETTINGS.update(this.live.next, change);
    const fit = fitProblem(next, this.policy.config.blockSize);
    if (fit) throw new OnlineDpoConfigError({ maxNewTokens: fit });
    this.live.stage(next, this.phase === 'rollout' && !this.inRollout);
    return next;
  }

  /** The model input for a prompt's ids: end-of-text + prompt, left-cut to leave room for the completion. */
  queryFor(promptIds: number[]): number[] {
    return queryIds(this.tokenizer.eotId, promptIds, this.policy.config.blockSize, this.cfg.maxNewTokens);
  }

  encodePrompt(text: string): number[] {
    return encodePromptIds(this.tokenizer, text);
  }

  // ------------------------------------------------------------------------------ phases

  /** Sample two completions for each of `batchSize` prompts; reference log-probs of each. */
  async rollout(): Promise<OnlineDpoRolloutResult> {
    this.expect('rollout');
    this.live.apply();
    this.inRollout = true;
    try {
      return await this.sampleBatch();
    } finally {
      this.inRollout = false;
    }
  }

  private async sampleBatch(): Promise<OnlineDpoRolloutResult> {
    const t0 = performance.now();
    const c = this.cfg;
    const eot = this.tokenizer.eotId;
    const first = Array.from({ length: c.batchSize }, () => this.nextPrompt());
    const promptIdx = [...first, ...first];
    const promptIds = promptIdx.map((i) => this.promptIds[i]);
    const queries = promptIds.map((ids) => this.queryFor(ids));
    const rows = await generate(
      this.policy,
      queries,
      {
        maxNewTokens: c.maxNewTokens,
        temperature: c.temperature,
        seed: this.rng.nextUint32(),
        decode: (ids) => this.tokenizer.decode(ids),
        onStep: this.onStep ? (s) => this.onStep!('rollout', s) : undefined,
      },
      eot,
      this.onToken,
    );
    const responses = rows.map((r) => r.ids);
    const R = Math.max(...responses.map((r) => r.length));
    const L = Math.max(...queries.map((q, b) => q.length + responses[b].length));
    const batch: Batch = {
      prompts: promptIdx.map((i) => this.prompts[i]),
      promptIds,
      queries,
      responses,
      finished: rows.map((r) => r.finished),
      texts: rows.map((r) => r.text),
      L,
      R,
      mask: responses.map((r) => Array.from({ length: R }, (_, j) => (j < r.length ? 1 : 0))),
      refLogprobs: [],
      seconds: 0,
    };
    const all = responses.map((_, i) => i);
    const lp = tf.tidy(() => {
      const t = completionTensors(batch, all, eot);
      return selectCompletion(logprobsOfTokens(this.reference.forward(t.seq).logits, t.targets, c.temperature), t.sel);
    });
    const data = (await lp.data()) as Float32Array;
    lp.dispose();
    batch.refLogprobs = unflatten(data, all.length, R);
    batch.seconds = (performance.now() - t0) / 1000;
    this.batch = batch;
    this.phase = 'score';
    return { prompts: batch.prompts, texts: batch.texts, finished: batch.finished, seconds: batch.seconds };
  }

  /** Score all 2B completions; the missing-EOS penalty applies here. */
  async score(): Promise<number[]> {
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
      throw new RangeError(`reward source returned ${raw?.length} scores for ${inputs.length} completions`);
    const bad = raw.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0)
      throw new GroupDivergedError(
        `Online DPO: the reward source returned a non-finite score (${raw[bad]}) for completion ${bad + 1} of iteration ${this.completedIterations}; nothing was learnt from this batch. Check the reward (a function that returns NaN, a reward model that diverged).`,
      );
    b.scores = applyMissingEosPenalty([...raw], b.finished, this.cfg.missingEosPenalty);
    b.seconds += (performance.now() - t0) / 1000;
    this.phase = 'pairs';
    return [...b.scores];
  }

  /** Chosen / rejected of each prompt's two completions (TRL: first wins ties). */
  async pairs(): Promise<OnlineDpoPairsResult> {
    this.expect('pairs');
    const t0 = performance.now();
    const b = this.batch!;
    const s = b.scores!;
    const { chosen, rejected } = onlineDpoPairs(s);
    b.chosen = chosen;
    b.rejected = rejected;
    const pairs = chosen.map((ci, i) => {
      const ri = rejected[i];
      return {
        prompt: b.prompts[ci],
        chosen: b.texts[ci],
        rejected: b.texts[ri],
        chosenScore: s[ci],
        rejectedScore: s[ri],
        margin: s[ci] - s[ri],
        chosenFinished: b.finished[ci],
        rejectedFinished: b.finished[ri],
      };
    });
    const seconds = (performance.now() - t0) / 1000;
    b.seconds += seconds;
    this.phase = 'update';
    return { chosen: [...chosen], rejected: [...rejected], pairs, seconds };
  }

  /**
   * One DPO step on the pairs. Throws GroupDivergedError (weights and Adam moments as before)
   * on a non-finite loss or gradient.
   */
  async update(): Promise<OnlineDpoMetrics> {
    this.expect('update');
    const t0 = performance.now();
    const b = this.batch!;
    const c = this.cfg;
    const rows = b.responses.map((_, i) => i);
    const t = completionTensors(b, rows, this.tokenizer.eotId);
    const data = {
      ref: tf.tensor2d(b.refLogprobs, [rows.length, b.R]),
      mask: tf.tensor2d(b.mask, [rows.length, b.R]),
      chosen: tf.tensor1d(b.chosen!, 'int32'),
      rejected: tf.tensor1d(b.rejected!, 'int32'),
    };
    const vars = this.vars.map((x) => x.v);
    const kept: { stats?: tf.Tensor1D } = {};
    let grads: tf.NamedTensorMap | null = null;
    let readback: tf.Tensor1D | null = null;
    try {
      await this.onStep?.('update', 0);
      const res = tf.variableGrads(() => {
        const { logits } = this.policy.forward(t.seq);
        const lp = selectCompletion(logprobsOfTokens(logits, t.targets, c.temperature), t.sel);
        const r = onlineDpoLossT(lp, data.ref, data.mask, data.chosen, data.rejected, c);
        kept.stats = tf.keep(r.stats);
        return r.loss;
      }, vars);
      grads = res.grads;
      res.value.dispose();
      readback = tf.tidy(() => {
        const norm = tf.sqrt(tf.addN(vars.map((v) => tf.sum(tf.square(grads![v.name])))));
        return tf.concat([kept.stats!, tf.reshape(norm, [1])]) as tf.Tensor1D;
      });
      const s = Array.from((await readback.data()) as Float32Array); // the one read-back
      const gradNorm = s[ONLINE_DPO_STATS.length];
      if (!s.every(Number.isFinite))
        throw new GroupDivergedError(
          `Online DPO update diverged at iteration ${this.completedIterations}: loss ${s[0]}, gradient norm ${gradNorm}. The weights were left as before this update; check the reward for NaN/Inf, or lower the learning rate.`,
        );
      this.adam.apply(grads, gradNorm, { lr: c.learningRate, maxGradNorm: c.maxGradNorm });
      const st = Object.fromEntries(ONLINE_DPO_STATS.map((k, i) => [k, s[i]])) as Record<
        (typeof ONLINE_DPO_STATS)[number],
        number
      >;
      const scores = b.scores!;
      const metrics: OnlineDpoMetrics = {
        iteration: this.completedIterations,
        'objective/kl': st['objective/kl'],
        'objective/entropy': st['objective/entropy'],
        'objective/non_score_reward': st['objective/non_score_reward'],
        'objective/rlhf_reward': mean(scores) + st['objective/non_score_reward'],
        'objective/scores': mean(scores),
        'objective/scores_margin': mean(b.chosen!.map((ci, i) => scores[ci] - scores[b.rejected![i]])),
        'rewards/chosen': st['rewards/chosen'],
        'rewards/rejected': st['rewards/rejected'],
        'rewards/accuracies': st['rewards/accuracies'],
        'rewards/margins': st['rewards/margins'],
        'logps/chosen': st['logps/chosen'],
        'logps/rejected': st['logps/rejected'],
        'val/contain_eos_token': mean(b.finished.map((f) => (f ? 1 : 0))),
        beta: c.beta,
        loss: st.loss,
        grad_norm: gradNorm,
        learning_rate: c.learningRate,
        'completions/mean_length': mean(b.responses.map((r) => r.length)),
        'time/iteration_s': b.seconds + (performance.now() - t0) / 1000,
      };
      this.history.push(metrics);
      this.completedIterations++;
      return metrics;
    } finally {
      tf.dispose([t.seq, t.targets, t.sel, t.posMask, data.ref, data.mask, data.chosen, data.rejected]);
      kept.stats?.dispose();
      if (grads) tf.dispose(grads);
      readback?.dispose();
      this.batch = null;
      this.phase = 'rollout';
    }
  }

  /** rollout → score → pairs → update. */
  async iteration(): Promise<OnlineDpoIterationResult> {
    const rollout = await this.rollout();
    const scores = await this.score();
    const pairs = await this.pairs();
    const metrics = await this.update();
    return { metrics, rollout, scores, pairs };
  }

  /** Drop a half-done iteration. */
  abandonIteration(): void {
    this.batch = null;
    this.phase = 'rollout';
  }

  // ---------------------------------------------------------------------------- state

  /** Plain-data state between iterations; restore with `setState` on a trainer built from the
   *  same starting model (the reference is the starting model and is not stored). */
  async getState(): Promise<OnlineDpoState> {
    this.expect('rollout', 'getState() works between iterations');
    const read = async (v: tf.Variable) => new Float32Array((await v.data()) as Float32Array);
    const policy: Record<string, Float32Array> = {};
    const adamM: Record<string, Float32Array> = {};
    const adamV: Record<string, Float32Array> = {};
    for (let i = 0; i < this.vars.length; i++) {
      const { key, v } = this.vars[i];
      policy[key] = await read(v);
      adamM[key] = await read(this.adam.m[i]);
      adamV[key] = await read(this.adam.v[i]);
    }
    if (!this.inRollout) this.live.apply();
    return {
      version: 1,
      algo: 'online-dpo',
      config: structuredClone(this.cfg),
      iteration: this.completedIterations,
      adamStep: this.adam.step,
      rng: this.rng.getState(),
      promptOrder: [...this.promptOrder],
      promptCursor: this.promptCursor,
      policy,
      adamM,
      adamV,
      history: this.history.map((m) => ({ ...m })),
    };
  }

  /** Restore a state from `getState` (checked completely before anything changes). */
  setState(state: OnlineDpoState): void {
    this.expect('rollout', 'setState() works between iterations');
    if (state?.version !== 1) throw new RangeError(`unknown online DPO state version ${state?.version}`);
    if (state.algo !== undefined && state.algo !== 'online-dpo')
      throw new RangeError(`a ${String(state.algo)} state cannot resume an online DPO run`);
    const config = ONLINE_DPO_SETTINGS.validate(state.config);
    const fit = fitProblem(config, this.policy.config.blockSize);
    if (fit) throw new RangeError(`online DPO state: ${fit}`);
    for (const { key, v } of this.vars)
      for (const arr of [state.policy?.[key], state.adamM?.[key], state.adamV?.[key]])
        if (!(arr instanceof Float32Array) || arr.length !== v.size)
          throw new RangeError(`online DPO state: ${key} missing or of the wrong size (model mismatch?)`);
    if (!state.promptOrder.every((i) => Number.isInteger(i) && i >= 0 && i < this.prompts.length))
      throw new RangeError('online DPO state: prompt order does not match the prompt set');
    const set = (target: tf.Variable, arr: Float32Array) => {
      const t = tf.tensor(arr, target.shape, 'float32');
      target.assign(t);
      t.dispose();
    };
    this.vars.forEach(({ key, v }, i) => {
      set(v, state.policy[key]);
      set(this.adam.m[i], state.adamM[key]);
      set(this.adam.v[i], state.adamV[key]);
    });
    this.live.reset(config);
    this.completedIterations = state.iteration;
    this.adam.step = state.adamStep;
    this.rng = Rng.fromState(state.rng);
    this.promptOrder = [...state.promptOrder];
    this.promptCursor = state.promptCursor;
    this.history.length = 0;
    this.history.push(...state.history.map((m) => ({ ...m })));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.policy.dispose();
    if (this.ownsReference) this.reference.dispose();
    this.adam.dispose();
  }

  // ------------------------------------------------------------------------- internals

  private expect(phase: OnlineDpoPhase, what?: string): void {
    if (this.disposed) throw new GroupPhaseError('this online DPO trainer was disposed');
    if (this.phase !== phase)
      throw new GroupPhaseError(`${what ?? `${phase}() called`} but the next phase is ${this.phase}()`);
  }

  private nextPrompt(): number {
    if (this.promptCursor >= this.promptOrder.length) {
      this.promptOrder = permutation(this.prompts.length, this.rng);
      this.promptCursor = 0;
    }
    return this.promptOrder[this.promptCursor++];
  }
}

function fitProblem(c: OnlineDpoConfig, blockSize: number): string | null {
  return c.maxNewTokens < blockSize
    ? null
    : `maxNewTokens (${c.maxNewTokens}) must be below the model context (${blockSize}) to leave room for the prompt`;
}
