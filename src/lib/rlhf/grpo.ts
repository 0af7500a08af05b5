/**
 * GRPO and RLOO for a GPT policy: critic-free RL where each prompt is sampled G times and every
 * completion is judged against its group, in phases the UI can step through: rollout → score →
 * advantages → update (`iteration()` runs all four).
 *
 * Follows TRL (huggingface/trl):
 *  - `trl/trainer/grpo_trainer.py` (`GRPOTrainer`): each generation batch holds batchSize / G
 *    prompts repeated G times; completions end at the first end-of-text token (included in the
 *    completion and its length); `mask_truncated_completions` zeroes the mask of completions
 *    without one; old log-probs from a forward pass of the policy and reference log-probs from
 *    the frozen reference (only when β ≠ 0: β = 0 builds no reference model), both of
 *    logits / temperature; rewards from the reward source; group advantages (`scale_rewards`);
 *    then `num_iterations` (μ) gradient steps on the clipped token loss with the k3 KL
 *    (`loss_type` aggregation; 'dapo' divides by the batch's completion tokens counted before
 *    truncation masking, TRL's `num_items_in_batch`). Metric names are TRL's.
 *  - `trl/trainer/rloo_trainer.py` (`RLOOTrainer`): the same generation, then β times the k1 KL
 *    summed over each completion's (masked) tokens is subtracted from its reward, leave-one-out
 *    advantages, optional `normalize_advantages` (REINFORCE++), and μ steps on the
 *    sequence-level clipped loss. `reward` and `reward_std` are of the rewards before the KL
 *    term; `frac_reward_zero_std` of the groups of rewards after it.
 *  - Shao et al. 2024 (DeepSeekMath, GRPO); Ahmadian et al. 2024 ("Back to Basics", RLOO);
 *    Yu et al. 2025 (DAPO); Liu et al. 2025 (Dr. GRPO). The maths is in grpo-loss.ts.
 *
 * Our choices (differences from TRL, on purpose):
 *  - One generation batch per iteration and one gradient step per μ-iteration over the whole
 *    batch (TRL's defaults: gradient_accumulation_steps = steps_per_generation = 1), so a
 *    setting changed with `updateConfig` never meets a half-used batch.
 *  - Old log-probs are always recomputed (TRL reuses the current ones when μ = 1); the first
 *    ratio is then 1 up to float rounding, as in PPO here (ppo.ts).
 *  - Sequences are [eot] + prompt + completion, right-padded, and per-position log-probs are
 *    moved into completion-aligned [B, R] tensors as ppo.ts does; reused from there: sampling
 *    with the KV cache (`generate`), `logprobsOfTokens`, the Adam step and its ε (`PPO_ADAM`),
 *    the seeded `Rng`, the `RewardSource` interface and the all-or-nothing update.
 *
 * Read-backs: one per phase for rollout, one per gradient step in update.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Adam } from './adam';
import { GroupDivergedError, GroupPhaseError } from './errors';
import type { GPT } from '../model/gpt';
import { loraSpecOf } from '../model/lora';
import { deriveSeed, Rng, type RngState } from '../model/rng';
import { generate, type OnToken } from '../model/sampling';
import { logprobsAndEntropyT, logprobsOfTokens } from './entropy';
import { PPO_ADAM, type PpoTokenizer, type RewardInput, type RewardSource } from './ppo';
import { GRPO_SETTINGS, GrpoConfigError, type GroupConfig, type GrpoConfig } from './grpo-config';
import { RLOO_SETTINGS, RlooConfigError, type RlooConfig } from './rloo-config';
import {
  besselStd,
  groupStats,
  grpoAdvantages,
  grpoLossT,
  normalizeAdvantages,
  rlooAdvantages,
  rlooLossT,
} from './grpo-loss';
import { rewardPartMetrics } from './reward-functions';
import type { FieldProblems, SettingsTable } from '../settings/table';
import type { Matrix } from './whiten';
import {
  completionTensors,
  encodePromptIds,
  LiveConfig,
  queryIds,
  selectCompletion,
  unflatten,
  type CompletionTensors,
} from './policy-batch';

export type GroupAlgo = 'grpo' | 'rloo';
export type GroupPhase = 'rollout' | 'score' | 'advantages' | 'update';

// Defined in ./errors (free of TF.js, so the main thread can revive them); re-exported here.
export { GroupDivergedError, GroupPhaseError };

/** Metrics of one iteration, named as TRL's GRPOTrainer / RLOOTrainer log them. */
export interface GroupMetrics {
  iteration: number;
  reward: number;
  reward_std: number;
  frac_reward_zero_std: number;
  'completions/mean_length': number;
  'completions/min_length': number;
  'completions/max_length': number;
  'completions/clipped_ratio': number;
  /** GRPO: masked mean of the k3 KL in the loss; RLOO: masked mean of the k1 KL folded into the
   *  reward. null when β = 0 and no reference model exists. */
  kl: number | null;
  entropy: number;
  'clip_ratio/low_mean': number;
  'clip_ratio/high_mean': number;
  'clip_ratio/region_mean': number;
  loss: number;
  grad_norm: number;
  learning_rate: number;
  beta: number;
  /** Updates skipped so far in the run (this one included): batches where every completion was
   *  masked out (maskTruncatedCompletions, none ended), so the loss had no token to learn from. */
  skipped_updates: number;
  'time/iteration_s': number;
  /** Mean and Bessel std of each reward function's (or the one source's) scores, TRL's
   *  `rewards/<name>/mean|std`: the parts before weighting, so each rule's progress shows. */
  [part: `rewards/${string}`]: number;
}

export interface GroupRolloutResult {
  /** [B] the prompt of each completion (each prompt G times in a row). */
  prompts: string[];
  texts: string[];
  responseIds: number[][];
  finished: boolean[];
  groupSize: number;
  /** Largest |log-prob while sampling − log-prob of the training forward pass|: float noise. */
  logprobMismatch: number;
  seconds: number;
}

export interface GroupScoreResult {
  rewards: number[];
  /** Each reward function's scores (a weighted sum's parts; one part named `rewardName` otherwise). */
  parts: { name: string; scores: number[] }[];
  seconds: number;
}

/** One completion of a group, for the group inspector. */
export interface GroupCompletion {
  text: string;
  reward: number;
  advantage: number;
  /** Tokens, end-of-text included. */
  length: number;
  finished: boolean;
  /** Left out of the loss (mask_truncated_completions). */
  masked: boolean;
}

export interface GroupView {
  prompt: string;
  completions: GroupCompletion[];
  /** Bessel std of the group's rewards (RLOO: after the KL term). */
  std: number;
  /** All rewards of the group equal: it teaches nothing (flagged per group in every mode). */
  zeroStd: boolean;
}

export interface GroupAdvantagesResult {
  advantages: number[];
  groups: GroupView[];
  /** RLOO with β ≠ 0: per row, k1 KL summed over its masked tokens; else null. */
  klPerSequence: number[] | null;
  seconds: number;
}

export interface GroupUpdateStep {
  loss: number;
  /** Masked mean entropy (nats) of the policy at temperature. */
  entropy: number;
  /** GRPO: masked mean k3 KL in this step's loss (0 when β = 0); RLOO: 0 (its KL is in the reward). */
  kl: number;
  clipRatio: number;
  clipRatioLow: number;
  clipRatioHigh: number;
  gradNorm: number;
}

export interface GroupUpdateResult {
  /** The μ gradient steps; empty when the update was skipped. */
  steps: GroupUpdateStep[];
  /** No gradient step was taken: every completion was masked out (see `update`). */
  skipped: boolean;
  metrics: GroupMetrics;
  seconds: number;
}

export interface GroupIterationResult {
  metrics: GroupMetrics;
  rollout: GroupRolloutResult;
  score: GroupScoreResult;
  advantages: GroupAdvantagesResult;
  update: GroupUpdateResult;
}

/** Everything needed to resume exactly (plain data; typed arrays survive structured clone). */
export interface GroupState<C extends GroupConfig = GroupConfig> {
  version: 1;
  algo: GroupAlgo;
  config: C;
  iteration: number;
  adamStep: number;
  rng: RngState;
  promptOrder: number[];
  promptCursor: number;
  policy: Record<string, Float32Array>;
  adamM: Record<string, Float32Array>;
  adamV: Record<string, Float32Array>;
  history: GroupMetrics[];
}

export interface GroupTrainerOptions<C extends GroupConfig> {
  /** Starting policy. Copied: the trainer trains its own copy and never changes this model. */
  model: GPT;
  /** Frozen reference; default: a frozen copy of `model` when β ≠ 0, none when β = 0. Not
   *  owned, never changed. */
  reference?: GPT;
  reward: RewardSource;
  /** The reward's name in `rewards/<name>/mean|std` when the source has no parts of its own
   *  (TRL names a reward model by its checkpoint, a function by its name); default 'reward'. */
  rewardName?: string;
  tokenizer: PpoTokenizer;
  /** Prompt texts, visited in a seeded shuffled order, one epoch after another. */
  prompts: string[];
  config?: Partial<C>;
  /** Streams sampled tokens during rollout (row, token id, step). */
  onToken?: OnToken;
  /** Awaited between sampling steps and gradient steps: yield to the UI or throw to stop. */
  onStep?: (phase: GroupPhase, step: number) => Promise<void> | void;
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
  /** [B][R] 1 on completion tokens, 0 on padding and on masked truncated completions. */
  mask: Matrix;
  /** Completion tokens of the batch before truncation masking (TRL `num_items_in_batch`). */
  numItems: number;
  oldLogprobs: Matrix;
  refLogprobs: Matrix | null;
  rewards?: number[];
  partMetrics?: Record<`rewards/${string}`, number>;
  advantages?: number[];
  advMetrics?: Pick<GroupMetrics, 'reward' | 'reward_std' | 'frac_reward_zero_std' | 'kl'>;
  seconds: number;
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

/** torch.isclose(std, 0) with its default atol. */
const isZeroStd = (s: number) => Math.abs(s) <= 1e-8;

let trainerCounter = 0;

/** The shared machinery of GRPO and RLOO; use `GrpoTrainer` or `RlooTrainer`. */
abstract class GroupTrainer<C extends GroupConfig> {
  abstract readonly algo: GroupAlgo;
  /** Current settings and a change waiting for the next iteration boundary. */
  private readonly live: LiveConfig<C>;
  /** The policy being trained (trainable copy of the starting model). Use it to sample. */
  readonly policy: GPT;
  /** The frozen reference, or null when the run started with β = 0 and none was given. With
   *  LoRA it is the policy itself, run with its adapters off (`referenceForward`). */
  readonly reference: GPT | null;
  completedIterations = 0;
  /** Updates skipped for want of any unmasked token (`skipped_updates`). */
  skippedUpdates = 0;
  readonly history: GroupMetrics[] = [];

  private readonly ownsReference: boolean;
  private readonly reward: RewardSource;
  private readonly rewardName: string;
  private readonly tokenizer: PpoTokenizer;
  private readonly prompts: string[];
  private readonly promptIds: number[][];
  private readonly onToken?: OnToken;
  private readonly onStep?: GroupTrainerOptions<C>['onStep'];
  private rng: Rng;
  private promptOrder: number[] = [];
  private promptCursor = 0;
  private batch: Batch | null = null;
  private phase: GroupPhase = 'rollout';
  private readonly vars: { key: string; v: tf.Variable }[];
  /** The one Adam (src/lib/rlhf/adam.ts) over the policy's variables. */
  private readonly adam: Adam;
  private disposed = false;
  private inRollout = false;

  protected constructor(
    private readonly table: SettingsTable<C>,
    opts: GroupTrainerOptions<C>,
  ) {
    this.live = new LiveConfig(table.validate(opts.config ?? {}));
    const { blockSize, vocabSize: V } = opts.model.config;
    const fit = this.fitProblem(this.cfg, blockSize);
    if (fit) throw new RangeError(fit);
    if (opts.prompts.length === 0) throw new RangeError(`${table.what} trainer needs at least one prompt`);
    if (!(opts.tokenizer.eotId >= 0 && opts.tokenizer.eotId < V))
      throw new RangeError(`tokenizer end-of-text id ${opts.tokenizer.eotId} is outside the vocabulary [0, ${V})`);

    const id = trainerCounter++;
    const tag = `${table.what.toLowerCase()}${id}`;
    const lora = this.cfg.lora;
    this.policy = opts.model.clone({ trainable: !lora, namePrefix: `${tag}/policy/` });
    // LoRA: the base is frozen and the reference is the policy with its adapters off (no copy).
    if (lora) this.policy.addAdapters(loraSpecOf(this.cfg), this.cfg.seed);
    this.ownsReference = !lora && !opts.reference && this.cfg.beta !== 0;
    this.reference = lora
      ? this.policy
      : (opts.reference ??
        (this.cfg.beta !== 0 ? opts.model.clone({ trainable: false, namePrefix: `${tag}/ref/` }) : null));
    this.reward = opts.reward;
    this.rewardName = opts.rewardName ?? 'reward';
    this.tokenizer = opts.tokenizer;
    this.prompts = [...opts.prompts];
    this.promptIds = this.prompts.map((p) => this.encodePrompt(p));
    this.onToken = opts.onToken;
    this.onStep = opts.onStep;
    this.rng = new Rng(this.cfg.seed);
    this.vars = this.policy.lora
      ? [...this.policy.lora.adapters].flatMap(([name, ad]) => [
          { key: `${name}.lora_A`, v: ad.a },
          { key: `${name}.lora_B`, v: ad.b },
        ])
      : [...this.policy.params].map(([name, v]) => ({ key: name, v }));
    this.adam = new Adam(
      this.vars.map((x) => x.v),
      PPO_ADAM,
      `${tag}/adam`,
    );
  }

  /** The settings the current (or next) iteration runs with. */
  get config(): Readonly<C> {
    return this.cfg;
  }

  /** The settings from the next iteration on: a pending change, else the current ones. */
  get nextConfig(): Readonly<C> {
    return this.live.next;
  }

  /** The phase the next call must be. */
  get nextPhase(): GroupPhase {
    return this.phase;
  }

  /**
   * Change settings during a run: checked against the table (only live settings; not the seed)
   * and the model, then applied at the next iteration boundary, before the next rollout; an
   * iteration under way finishes with the settings it started with. β cannot rise from 0 when
   * the run has no reference model. Throws the table's error and changes nothing when bad.
   */
  updateConfig(change: Partial<C>): C {
    const next = this.table.update(this.nextConfig as C, change);
    const fit = this.fitProblem(next, this.policy.config.blockSize);
    if (fit) throw this.tableError({ maxCompletionLength: fit } as FieldProblems<C>);
    if (next.beta !== 0 && !this.reference)
      throw this.tableError({
        beta: 'cannot rise above 0: this run started with β = 0, so it has no reference model (start a new run)',
      } as FieldProblems<C>);
    this.live.stage(next, this.phase === 'rollout' && !this.inRollout);
    return next;
  }

  /** The table's own error (GrpoConfigError / RlooConfigError), with per-field messages. */
  private tableError(fields: FieldProblems<C>): Error {
    const Err = this.errorClass();
    return new Err(fields);
  }

  protected abstract errorClass(): new (fields: FieldProblems<C>) => Error;

  private applyPending(): void {
    this.live.apply();
  }

  private get cfg(): C {
    return this.live.current;
  }

  private fitProblem(c: GroupConfig, blockSize: number): string | null {
    return c.maxCompletionLength < blockSize
      ? null
      : `maxCompletionLength (${c.maxCompletionLength}) must be below the model context (${blockSize}) to leave room for the prompt`;
  }

  /** [eot] + prompt ids, cropped from the left to leave maxCompletionLength of room. */
  queryFor(promptIds: number[]): number[] {
    return queryIds(this.tokenizer.eotId, promptIds, this.policy.config.blockSize, this.cfg.maxCompletionLength);
  }

  encodePrompt(text: string): number[] {
    return encodePromptIds(this.tokenizer, text);
  }

  // ------------------------------------------------------------------------------ phases

  /** Sample G completions for each of batchSize / G prompts with the current policy. */
  async rollout(): Promise<GroupRolloutResult> {
    this.expect('rollout');
    this.applyPending();
    this.inRollout = true;
    try {
      return await this.sampleBatch();
    } finally {
      this.inRollout = false;
    }
  }

  private async sampleBatch(): Promise<GroupRolloutResult> {
    const t0 = performance.now();
    const c = this.cfg;
    const G = c.numGenerations;
    const B = c.batchSize;
    const eot = this.tokenizer.eotId;
    const promptIdx = Array.from({ length: B / G }, () => this.nextPrompt()).flatMap((i) =>
      new Array<number>(G).fill(i),
    );
    const promptIds = promptIdx.map((i) => this.promptIds[i]);
    const queries = promptIds.map((ids) => this.queryFor(ids));
    const rows = await generate(
      this.policy,
      queries,
      {
        maxNewTokens: c.maxCompletionLength,
        temperature: c.temperature,
        seed: this.rng.nextUint32(),
        decode: (ids) => this.tokenizer.decode(ids),
        onStep: this.onStep ? (s) => this.onStep!('rollout', s) : undefined,
      },
      eot,
      this.onToken,
    );
    const responses = rows.map((r) => r.ids);
    const finished = rows.map((r) => r.finished);
    const R = Math.max(...responses.map((r) => r.length));
    const L = Math.max(...queries.map((q, b) => q.length + responses[b].length));
    const mask = responses.map((r, b) =>
      Array.from({ length: R }, (_, j) => (j < r.length && (finished[b] || !c.maskTruncatedCompletions) ? 1 : 0)),
    );
    const batch: Batch = {
      prompts: promptIdx.map((i) => this.prompts[i]),
      promptIds,
      queries,
      responses,
      finished,
      texts: rows.map((r) => r.text),
      L,
      R,
      mask,
      numItems: responses.reduce((n, r) => n + r.length, 0),
      oldLogprobs: [],
      refLogprobs: null,
      seconds: 0,
    };
    // Old (and reference) log-probs by a plain forward pass, one read-back for both.
    const all = Array.from({ length: B }, (_, b) => b);
    const useRef = c.beta !== 0;
    const lp = tf.tidy(() => {
      const t = this.rowTensors(batch, all);
      const pick = (model: GPT) =>
        selectCompletion(logprobsOfTokens(model.forward(t.seq).logits, t.targets, c.temperature), t.sel);
      if (!useRef) return pick(this.policy);
      const ref =
        this.reference === this.policy ? this.policy.withoutAdapters(() => pick(this.policy)) : pick(this.reference!);
      return tf.concat([pick(this.policy), ref]);
    });
    const data = (await lp.data()) as Float32Array;
    lp.dispose();
    batch.oldLogprobs = unflatten(data, B, R);
    batch.refLogprobs = useRef ? unflatten(data, B, R, B * R) : null;
    let logprobMismatch = 0;
    rows.forEach((r, b) =>
      r.logprobs.forEach((l, j) => {
        logprobMismatch = Math.max(logprobMismatch, Math.abs(l - batch.oldLogprobs[b][j]));
      }),
    );
    batch.seconds = (performance.now() - t0) / 1000;
    this.batch = batch;
    this.phase = 'score';
    return {
      prompts: batch.prompts,
      texts: batch.texts,
      responseIds: responses,
      finished,
      groupSize: G,
      logprobMismatch,
      seconds: batch.seconds,
    };
  }

  /** Score every completion with the reward source. */
  async score(): Promise<GroupScoreResult> {
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
    b.rewards = [...raw];
    const parts = this.reward.lastParts?.() ?? [{ name: this.rewardName, scores: [...raw] }];
    b.partMetrics = rewardPartMetrics(
      parts.map((p) => p.name),
      parts.map((p) => p.scores),
    ) as Record<`rewards/${string}`, number>;
    const seconds = (performance.now() - t0) / 1000;
    b.seconds += seconds;
    this.phase = 'advantages';
    return { rewards: [...raw], parts: parts.map((p) => ({ name: p.name, scores: [...p.scores] })), seconds };
  }

  /** Group advantages (GRPO: scaled by the std; RLOO: leave-one-out after the KL term). */
  async advantages(): Promise<GroupAdvantagesResult> {
    this.expect('advantages');
    const t0 = performance.now();
    const b = this.batch!;
    const c = this.cfg;
    const G = c.numGenerations;
    const rewards = b.rewards!;
    let advantages: number[];
    let shaped = rewards; // the rewards the advantages come from
    let klPerSequence: number[] | null = null;
    let kl: number | null = null;
    if (this.algo === 'grpo') {
      advantages = grpoAdvantages(rewards, G, (c as unknown as GrpoConfig).scaleRewards);
    } else {
      if (b.refLogprobs) {
        // k1 = logπ_old − logπ_ref per token, summed over the completion's masked tokens.
        const perToken = b.oldLogprobs.map((row, i) => row.map((l, j) => (l - b.refLogprobs![i][j]) * b.mask[i][j]));
        klPerSequence = perToken.map((row) => row.reduce((a, x) => a + x, 0));
        const tokens = b.mask.flat().reduce((a, m) => a + m, 0);
        kl = klPerSequence.reduce((a, x) => a + x, 0) / Math.max(tokens, 1);
        shaped = rewards.map((r, i) => r - c.beta * klPerSequence![i]);
      }
      advantages = rlooAdvantages(shaped, G);
      if ((c as unknown as RlooConfig).normalizeAdvantages) advantages = normalizeAdvantages(advantages);
    }
    const { std } = groupStats(shaped, G);
    // GRPO's reward_std is the std it divides by ('batch': the batch's); RLOO's is of the raw rewards.
    const rewardStd =
      this.algo === 'grpo'
        ? (c as unknown as GrpoConfig).scaleRewards === 'batch'
          ? besselStd(rewards)
          : mean(std)
        : besselStd(rewards);
    b.advantages = advantages;
    b.advMetrics = {
      reward: mean(rewards),
      reward_std: rewardStd,
      // TRL flags the std it computed: the batch's for 'batch', else each group's.
      frac_reward_zero_std:
        this.algo === 'grpo' && (c as unknown as GrpoConfig).scaleRewards === 'batch'
          ? isZeroStd(rewardStd)
            ? 1
            : 0
          : mean(std.map((s) => (isZeroStd(s) ? 1 : 0))),
      kl,
    };
    const groups: GroupView[] = [];
    for (let g = 0; g < b.prompts.length; g += G) {
      groups.push({
        prompt: b.prompts[g],
        std: std[g],
        zeroStd: isZeroStd(std[g]),
        completions: Array.from({ length: G }, (_, k) => {
          const i = g + k;
          return {
            text: b.texts[i],
            reward: rewards[i],
            advantage: advantages[i],
            length: b.responses[i].length,
            finished: b.finished[i],
            masked: b.mask[i].every((m) => m === 0),
          };
        }),
      });
    }
    const seconds = (performance.now() - t0) / 1000;
    b.seconds += seconds;
    this.phase = 'update';
    return { advantages: [...advantages], groups, klPerSequence, seconds };
  }

  /**
   * μ = numIterations gradient steps over the whole batch. Throws GroupDivergedError (weights
   * and Adam moments as before the update) on a non-finite loss or gradient.
   *
   * Skipped when every completion is masked out (maskTruncatedCompletions on and none reached
   * end-of-text): the loss has no token, so its gradient is 0 and its masked means 0/0. No step
   * is taken (weights, Adam moments and step as before), the iteration still counts, and the
   * metrics log it: loss, gradient norm and clip ratios 0, `skipped_updates` + 1, entropy and
   * KL of the completions' own tokens (the truncated ones, which the loss would have masked).
   */
  async update(): Promise<GroupUpdateResult> {
    this.expect('update');
    const t0 = performance.now();
    const b = this.batch!;
    const c = this.cfg;
    const skipped = b.mask.every((row) => row.every((m) => m === 0));
    if (skipped) return this.finishUpdate(b, [], await this.skippedStep(b), t0);
    const weightsBefore = this.vars.map((x) => tf.clone(x.v));
    const adamBefore = this.adam.snapshot();
    const steps: GroupUpdateStep[] = [];
    try {
      for (let k = 0; k < c.numIterations; k++) {
        steps.push(await this.trainStep(b));
        await this.onStep?.('update', k);
      }
    } catch (e) {
      // All or nothing: the weights and moments of before the update.
      this.vars.forEach((x, i) => x.v.assign(weightsBefore[i]));
      this.adam.restore(adamBefore);
      this.batch = null;
      this.phase = 'rollout';
      throw e;
    } finally {
      tf.dispose([...weightsBefore, ...adamBefore.m, ...adamBefore.v]);
    }
    return this.finishUpdate(b, steps, null, t0);
  }

  /** The metrics of an update (its steps', or the skipped update's `skip` stats) and the next phase. */
  private finishUpdate(
    b: Batch,
    steps: GroupUpdateStep[],
    skip: GroupUpdateStep | null,
    t0: number,
  ): GroupUpdateResult {
    const c = this.cfg;
    if (skip) this.skippedUpdates++;
    const avg = (k: keyof GroupUpdateStep) => (skip ? skip[k] : mean(steps.map((s) => s[k])));
    const lengths = b.responses.map((r) => r.length);
    const seconds = (performance.now() - t0) / 1000;
    const metrics: GroupMetrics = {
      iteration: this.completedIterations,
      ...b.advMetrics!,
      ...b.partMetrics,
      'completions/mean_length': mean(lengths),
      'completions/min_length': Math.min(...lengths),
      'completions/max_length': Math.max(...lengths),
      'completions/clipped_ratio': mean(b.finished.map((f) => (f ? 0 : 1))),
      kl: this.algo === 'grpo' ? (b.refLogprobs ? avg('kl') : null) : b.advMetrics!.kl,
      entropy: avg('entropy'),
      'clip_ratio/low_mean': avg('clipRatioLow'),
      'clip_ratio/high_mean': avg('clipRatioHigh'),
      'clip_ratio/region_mean': avg('clipRatio'),
      loss: avg('loss'),
      grad_norm: avg('gradNorm'),
      learning_rate: c.learningRate,
      beta: c.beta,
      skipped_updates: this.skippedUpdates,
      'time/iteration_s': b.seconds + seconds,
    };
    this.history.push(metrics);
    this.completedIterations++;
    this.batch = null;
    this.phase = 'rollout';
    return { steps, skipped: skip !== null, metrics, seconds };
  }

  /**
   * The stats of a skipped update: no loss, gradient or clipping; the entropy of the policy and
   * (GRPO, β ≠ 0) the k3 KL to the reference over every completion token, truncated ones
   * included, by one forward pass without gradients.
   */
  private async skippedStep(b: Batch): Promise<GroupUpdateStep> {
    const c = this.cfg;
    const B = b.responses.length;
    const lengthMask = b.responses.map((r) => Array.from({ length: b.R }, (_, j) => (j < r.length ? 1 : 0)));
    const entropyT = tf.tidy(() => {
      const t = this.rowTensors(
        { ...b, mask: lengthMask },
        Array.from({ length: B }, (_, i) => i),
      );
      const { logits } = this.policy.forward(t.seq);
      return logprobsAndEntropyT(logits, t.targets, c.temperature, t.posMask).entropy.mean;
    });
    const entropy = (await entropyT.data())[0];
    entropyT.dispose();
    let kl = 0;
    if (this.algo === 'grpo' && b.refLogprobs) {
      let sum = 0;
      let n = 0;
      lengthMask.forEach((row, i) =>
        row.forEach((m, j) => {
          if (!m) return;
          const logr = b.refLogprobs![i][j] - b.oldLogprobs[i][j];
          sum += Math.exp(logr) - logr - 1;
          n++;
        }),
      );
      kl = sum / Math.max(n, 1);
    }
    return { loss: 0, entropy, kl, clipRatio: 0, clipRatioLow: 0, clipRatioHigh: 0, gradNorm: 0 };
  }

  /** rollout → score → advantages → update. */
  async iteration(): Promise<GroupIterationResult> {
    const rollout = await this.rollout();
    const score = await this.score();
    const advantages = await this.advantages();
    const update = await this.update();
    return { metrics: update.metrics, rollout, score, advantages, update };
  }

  /** Drop a half-done iteration. */
  abandonIteration(): void {
    this.batch = null;
    this.phase = 'rollout';
  }

  // ---------------------------------------------------------------------------- state

  /** Plain-data state between iterations; restore with `setState` on a trainer built from the
   *  same starting model (the reference is not stored: it is the starting model). */
  async getState(): Promise<GroupState<C>> {
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
    if (!this.inRollout) this.applyPending();
    return {
      version: 1,
      algo: this.algo,
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
  setState(state: GroupState<C>): void {
    this.expect('rollout', 'setState() works between iterations');
    const what = this.table.what;
    if (state?.version !== 1) throw new RangeError(`unknown ${what} state version ${state?.version}`);
    if (state.algo !== this.algo) throw new RangeError(`a ${state.algo} state cannot resume a ${this.algo} trainer`);
    const config = this.table.validate(state.config);
    const fit = this.fitProblem(config, this.policy.config.blockSize);
    if (fit) throw new RangeError(`${what} state: ${fit}`);
    if (config.beta !== 0 && !this.reference)
      throw new RangeError(`${what} state: β = ${config.beta} needs a reference model, and this trainer has none`);
    for (const { key, v } of this.vars)
      for (const [label, arr] of [
        ['weights', state.policy?.[key]],
        ['Adam m', state.adamM?.[key]],
        ['Adam v', state.adamV?.[key]],
      ] as const)
        if (!(arr instanceof Float32Array) || arr.length !== v.size)
          throw new RangeError(`${what} state: ${label} of ${key} missing or of the wrong size (model mismatch?)`);
    if (!state.promptOrder.every((i) => Number.isInteger(i) && i >= 0 && i < this.prompts.length))
      throw new RangeError(`${what} state: prompt order does not match the prompt set`);
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
    // Histories saved before `skipped_updates` existed had none skipped.
    this.skippedUpdates = state.history.at(-1)?.skipped_updates ?? 0;
    this.batch = null;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.policy.dispose();
    if (this.ownsReference) this.reference?.dispose();
    this.adam.dispose();
  }

  // ------------------------------------------------------------------------- internals

  private expect(phase: GroupPhase, what?: string): void {
    if (this.disposed) throw new GroupPhaseError(`this ${this.table.what} trainer was disposed`);
    if (this.phase !== phase)
      throw new GroupPhaseError(`${what ?? `${phase}() called`} but the next phase is ${this.phase}()`);
  }

  private nextPrompt(): number {
    if (this.promptCursor >= this.promptOrder.length) {
      const p = Array.from({ length: this.prompts.length }, (_, i) => i);
      for (let i = p.length - 1; i > 0; i--) {
        const j = this.rng.int(i + 1);
        [p[i], p[j]] = [p[j], p[i]];
      }
      this.promptOrder = p;
      this.promptCursor = 0;
    }
    return this.promptOrder[this.promptCursor++];
  }

  private rowTensors(batch: Batch, rows: number[]): CompletionTensors {
    return completionTensors(batch, rows, this.tokenizer.eotId);
  }

  /** One gradient step over the whole batch: loss, one read-back, finite check, clipped Adam. */
  private async trainStep(b: Batch): Promise<GroupUpdateStep> {
    const c = this.cfg;
    const B = b.responses.length;
    const rows = Array.from({ length: B }, (_, i) => i);
    const t = this.rowTensors(b, rows);
    const data = {
      mask: tf.tensor2d(b.mask, [B, b.R]),
      oldLp: tf.tensor2d(b.oldLogprobs, [B, b.R]),
      refLp: b.refLogprobs ? tf.tensor2d(b.refLogprobs, [B, b.R]) : null,
      adv: tf.tensor1d(b.advantages!),
    };
    const vars = this.vars.map((x) => x.v);
    const kept: { stats?: tf.Tensor1D } = {};
    this.policy.lora?.reseedDropout(deriveSeed(c.seed, this.adam.step));
    let grads: tf.NamedTensorMap | null = null;
    let readback: tf.Tensor1D | null = null;
    try {
      const res = tf.variableGrads(() => {
        const { logits } = this.policy.inTraining(() => this.policy.forward(t.seq));
        const both = logprobsAndEntropyT(logits, t.targets, c.temperature, t.posMask);
        const lp = selectCompletion(both.logprobs, t.sel);
        const ent = both.entropy;
        const r =
          this.algo === 'grpo'
            ? grpoLossT(lp, data.oldLp, c.beta !== 0 ? data.refLp : null, data.adv, data.mask, {
                epsilon: c.epsilon,
                epsilonHigh: c.epsilonHigh,
                beta: c.beta,
                lossType: (c as unknown as GrpoConfig).lossType,
                maxCompletionLength: c.maxCompletionLength,
                numItemsInBatch: b.numItems,
              })
            : { ...rlooLossT(lp, data.oldLp, data.adv, data.mask, c.epsilon, c.epsilonHigh), kl: tf.scalar(0) };
        kept.stats = tf.keep(
          tf.stack([r.loss, ent.mean, r.kl, r.clipRatio, r.clipRatioLow, r.clipRatioHigh]),
        ) as tf.Tensor1D;
        return r.loss;
      }, vars);
      grads = res.grads;
      res.value.dispose();
      readback = tf.tidy(() => {
        const norm = tf.sqrt(tf.addN(vars.map((v) => tf.sum(tf.square(grads![v.name])))));
        return tf.concat([kept.stats!, tf.reshape(norm, [1])]) as tf.Tensor1D;
      });
      const s = (await readback.data()) as Float32Array; // the one read-back of this step
      const [loss, entropy, kl, clipRatio, clipRatioLow, clipRatioHigh, gradNorm] = Array.from(s);
      if (!s.every(Number.isFinite))
        throw new GroupDivergedError(
          `${this.table.what} update diverged at iteration ${this.completedIterations}: loss ${loss}, gradient norm ${gradNorm}. The weights were left as before this update; check the reward for NaN/Inf, or lower the learning rate.`,
        );
      this.adam.apply(grads, gradNorm, { lr: c.learningRate, maxGradNorm: c.maxGradNorm });
      return { loss, entropy, kl, clipRatio, clipRatioLow, clipRatioHigh, gradNorm };
    } finally {
      tf.dispose([t.seq, t.targets, t.sel, t.posMask, data.mask, data.oldLp, data.adv]);
      data.refLp?.dispose();
      kept.stats?.dispose();
      if (grads) tf.dispose(grads);
      readback?.dispose();
    }
  }
}

/** GRPO (TRL `GRPOTrainer`). */
export class GrpoTrainer extends GroupTrainer<GrpoConfig> {
  readonly algo = 'grpo' as const;
  constructor(opts: GroupTrainerOptions<GrpoConfig>) {
    super(GRPO_SETTINGS, opts);
  }
  protected errorClass() {
    return GrpoConfigError;
  }
}

/** RLOO (TRL `RLOOTrainer`); with normalizeAdvantages, REINFORCE++-style advantages. */
export class RlooTrainer extends GroupTrainer<RlooConfig> {
  readonly algo = 'rloo' as const;
  constructor(opts: GroupTrainerOptions<RlooConfig>) {
    super(RLOO_SETTINGS, opts);
  }
  protected errorClass() {
    return RlooConfigError;
  }
}
