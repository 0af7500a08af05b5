/**
 * The maths of the critic-free trainers, GRPO and RLOO: group advantages and the clipped losses,
 * on plain arrays (for reference tests and the UI) and on TF.js tensors (for training steps).
 *
 * Follows TRL (huggingface/trl):
 *  - `trl/trainer/grpo_trainer.py`, `GRPOTrainer._generate_and_score_completions`: advantages
 *    r − mean(group), divided by (std + 1e-4) where std is torch's Bessel-corrected `std()` of
 *    the group (`scale_rewards="group"`) or of the whole batch (`"batch"`), not divided for
 *    `"none"`; `frac_reward_zero_std` from `isclose(std, 0)`.
 *  - `GRPOTrainer._compute_loss`: per-token ratio exp(logπ − logπ_old), clamped to
 *    [1 − ε, 1 + ε_high]; per-token loss −min(ratio·A, clip(ratio)·A) + β·k3 with
 *    k3 = exp(ref − logπ) − (ref − logπ) − 1 (Schulman, "Approximating KL Divergence");
 *    aggregation by `loss_type`: 'grpo' mean over sequences of each sequence's masked mean
 *    (Shao et al. 2024, DeepSeekMath), 'bnpo' masked sum / mask sum, 'dr_grpo' masked sum /
 *    (B × max_completion_length) (Liu et al. 2025, Dr. GRPO), 'dapo' masked sum /
 *    `num_items_in_batch`, the completion tokens of the whole generation batch counted before
 *    `mask_truncated_completions` zeroes rows (Yu et al. 2025, DAPO). Clip metrics
 *    `clip_ratio/low_mean` (ratio < 1 − ε and A < 0), `high_mean` (ratio > 1 + ε_high and A > 0),
 *    `region_mean` (either), as masked means over tokens.
 *  - `trl/trainer/rloo_trainer.py`, `RLOOTrainer`: leave-one-out baseline
 *    (Σ_group r − r_i) / (G − 1) (Kool et al. 2019; Ahmadian et al. 2024), optional
 *    `normalize_advantages` (A − mean) / (std + 1e-4) over the batch; a sequence-level ratio
 *    exp(Σ_t logπ − Σ_t logπ_old) over masked tokens and the loss mean over sequences of
 *    −min(ratio·A, clip(ratio)·A); clip metrics as means over sequences.
 *
 * Denominators that can be 0 (an all-masked row or batch) are clamped to 1, as TRL does.
 * Inputs are [B][T] (or [B, T] tensors) with mask 1 on completion tokens; advantages are [B].
 * Log-probabilities on padding are ignored (the log-ratio is zeroed there before `exp`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkSameShape, type Matrix } from './whiten';
import type { GrpoLossType, GrpoScaleRewards } from './grpo-config';

export type { GrpoLossType, GrpoScaleRewards };

/** The ε TRL adds to the std before dividing (grpo_trainer.py, rloo_trainer.py). */
export const GROUP_STD_EPS = 1e-4;

function checkGroups(what: string, n: number, groupSize: number): void {
  if (!Number.isInteger(groupSize) || groupSize < 2)
    throw new RangeError(`${what}: groupSize must be a whole number ≥ 2, got ${groupSize}`);
  if (n % groupSize !== 0) throw new RangeError(`${what}: ${n} rewards do not split into groups of ${groupSize}`);
}

function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** torch's `std()`: Bessel-corrected (n − 1); NaN for a single value. */
export function besselStd(xs: readonly number[]): number {
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) ** 2;
  return Math.sqrt(s / (xs.length - 1));
}

/** Per row: the mean and the (Bessel) std of its group of `groupSize` consecutive rows. */
export function groupStats(rewards: readonly number[], groupSize: number): { mean: number[]; std: number[] } {
  checkGroups('groupStats', rewards.length, groupSize);
  const m: number[] = [];
  const s: number[] = [];
  for (let g = 0; g < rewards.length; g += groupSize) {
    const group = rewards.slice(g, g + groupSize);
    const gm = mean(group);
    const gs = besselStd(group);
    for (let i = 0; i < groupSize; i++) {
      m.push(gm);
      s.push(gs);
    }
  }
  return { mean: m, std: s };
}

/**
 * GRPO advantages of `rewards` [B] (groups of `groupSize` consecutive completions of one prompt):
 * r − mean(group), divided by (std + 1e-4) with the std of the group or of the batch.
 */
export function grpoAdvantages(rewards: number[], groupSize: number, scaleRewards: GrpoScaleRewards): number[] {
  const { mean: gm, std: gs } = groupStats(rewards, groupSize);
  const centred = rewards.map((r, i) => r - gm[i]);
  if (scaleRewards === 'none') return centred;
  if (scaleRewards === 'group') return centred.map((a, i) => a / (gs[i] + GROUP_STD_EPS));
  if (scaleRewards === 'batch') {
    const bs = besselStd(rewards);
    return centred.map((a) => a / (bs + GROUP_STD_EPS));
  }
  throw new RangeError(`grpoAdvantages: scaleRewards must be 'group', 'batch' or 'none', got ${String(scaleRewards)}`);
}

/** RLOO advantages: r_i − mean_{j≠i} r_j within each group of `groupSize` consecutive rows. */
export function rlooAdvantages(rewards: number[], groupSize: number): number[] {
  checkGroups('rlooAdvantages', rewards.length, groupSize);
  const out: number[] = [];
  for (let g = 0; g < rewards.length; g += groupSize) {
    const group = rewards.slice(g, g + groupSize);
    const sum = group.reduce((a, b) => a + b, 0);
    for (const r of group) out.push(r - (sum - r) / (groupSize - 1));
  }
  return out;
}

/** (A − mean) / (std + 1e-4) over the whole batch (RLOO's `normalize_advantages`, REINFORCE++). */
export function normalizeAdvantages(advantages: number[]): number[] {
  if (advantages.length < 2) throw new RangeError('normalizeAdvantages needs at least 2 advantages');
  const m = mean(advantages);
  const s = besselStd(advantages);
  return advantages.map((a) => (a - m) / (s + GROUP_STD_EPS));
}

export interface GrpoLossOptions {
  epsilon: number;
  /** Upper clip; null or undefined = epsilon. */
  epsilonHigh?: number | null;
  beta: number;
  lossType: GrpoLossType;
  /** 'dr_grpo' divides by B × this. */
  maxCompletionLength: number;
  /** 'dapo' divides by this: the completion tokens of the whole generation batch, counted before
   *  truncated rows are masked (TRL `num_items_in_batch`); default: the mask's sum. */
  numItemsInBatch?: number;
}

export interface GrpoLossResult<S = number> {
  loss: S;
  /** TRL `clip_ratio/region_mean`: masked mean of tokens clipped low or high. */
  clipRatio: S;
  /** TRL `clip_ratio/low_mean`: ratio < 1 − ε where A < 0. */
  clipRatioLow: S;
  /** TRL `clip_ratio/high_mean`: ratio > 1 + ε_high where A > 0. */
  clipRatioHigh: S;
  /** TRL `kl`: masked mean of the per-token k3; 0 when β = 0 (no reference). */
  kl: S;
}

function checkLossOptions(what: string, o: GrpoLossOptions): void {
  if (!(o.epsilon > 0)) throw new RangeError(`${what}: epsilon must be > 0, got ${o.epsilon}`);
  if (o.epsilonHigh != null && !(o.epsilonHigh > 0))
    throw new RangeError(`${what}: epsilonHigh must be > 0 or null, got ${o.epsilonHigh}`);
  if (!(o.beta >= 0)) throw new RangeError(`${what}: beta must be ≥ 0, got ${o.beta}`);
  if (!['grpo', 'bnpo', 'dr_grpo', 'dapo'].includes(o.lossType))
    throw new RangeError(`${what}: lossType must be 'grpo', 'bnpo', 'dr_grpo' or 'dapo', got ${String(o.lossType)}`);
  if (o.lossType === 'dr_grpo' && !(o.maxCompletionLength >= 1))
    throw new RangeError(`${what}: maxCompletionLength must be ≥ 1, got ${o.maxCompletionLength}`);
}

/** GRPO's clipped token loss with its four aggregations (see the file header). */
export function grpoLoss(
  logprobs: Matrix,
  oldLogprobs: Matrix,
  refLogprobs: Matrix | undefined,
  advantages: number[],
  mask: Matrix,
  opts: GrpoLossOptions,
): GrpoLossResult {
  checkLossOptions('grpoLoss', opts);
  checkSameShape('grpoLoss', logprobs, oldLogprobs, mask);
  if (opts.beta !== 0) {
    if (!refLogprobs) throw new RangeError('grpoLoss: refLogprobs are needed when beta ≠ 0');
    checkSameShape('grpoLoss', logprobs, refLogprobs);
  }
  const B = logprobs.length;
  if (advantages.length !== B) throw new RangeError(`grpoLoss: ${advantages.length} advantages for ${B} rows`);
  const lo = 1 - opts.epsilon;
  const hi = 1 + (opts.epsilonHigh ?? opts.epsilon);
  let total = 0;
  let tokens = 0;
  let perSeqMeans = 0;
  let low = 0;
  let high = 0;
  let klSum = 0;
  for (let b = 0; b < B; b++) {
    const a = advantages[b];
    let rowSum = 0;
    let rowTokens = 0;
    for (let t = 0; t < logprobs[b].length; t++) {
      const m = mask[b][t];
      const diff = m === 0 ? 0 : logprobs[b][t] - oldLogprobs[b][t];
      const ratio = Math.exp(diff);
      const clipped = Math.min(Math.max(ratio, lo), hi);
      let l = -Math.min(ratio * a, clipped * a);
      if (opts.beta !== 0) {
        const logr = m === 0 ? 0 : refLogprobs![b][t] - logprobs[b][t];
        const k3 = Math.exp(logr) - logr - 1;
        l += opts.beta * k3;
        klSum += k3 * m;
      }
      rowSum += l * m;
      rowTokens += m;
      if (ratio < lo && a < 0) low += m;
      if (ratio > hi && a > 0) high += m;
    }
    total += rowSum;
    tokens += rowTokens;
    perSeqMeans += rowSum / Math.max(rowTokens, 1);
  }
  let loss: number;
  switch (opts.lossType) {
    case 'grpo':
      loss = perSeqMeans / B;
      break;
    case 'bnpo':
      loss = total / Math.max(tokens, 1);
      break;
    case 'dr_grpo':
      loss = total / (B * opts.maxCompletionLength);
      break;
    case 'dapo':
      loss = total / Math.max(opts.numItemsInBatch ?? tokens, 1);
      break;
  }
  const n = Math.max(tokens, 1);
  return { loss, clipRatio: (low + high) / n, clipRatioLow: low / n, clipRatioHigh: high / n, kl: klSum / n };
}

/**
 * Tensor version of {@link grpoLoss}: logprobs, oldLogprobs, refLogprobs, mask [B, T]; advantages
 * [B]. The gradient flows to `logprobs`; the other inputs are data. Returns scalars the caller owns.
 */
export function grpoLossT(
  logprobs: tf.Tensor2D,
  oldLogprobs: tf.Tensor2D,
  refLogprobs: tf.Tensor2D | null,
  advantages: tf.Tensor1D,
  mask: tf.Tensor2D,
  opts: GrpoLossOptions,
): GrpoLossResult<tf.Scalar> {
  checkLossOptions('grpoLossT', opts);
  if (opts.beta !== 0 && !refLogprobs) throw new RangeError('grpoLossT: refLogprobs are needed when beta ≠ 0');
  return tf.tidy(() => {
    const B = logprobs.shape[0];
    const lo = 1 - opts.epsilon;
    const hi = 1 + (opts.epsilonHigh ?? opts.epsilon);
    const m = tf.cast(mask, 'float32');
    const adv = tf.expandDims(advantages, 1); // [B, 1]
    const ratio = tf.exp(tf.mul(tf.sub(logprobs, oldLogprobs), m));
    const l1 = tf.mul(ratio, adv);
    const l2 = tf.mul(tf.clipByValue(ratio, lo, hi), adv);
    let perToken: tf.Tensor = tf.neg(tf.minimum(l1, l2));
    let kl: tf.Scalar = tf.scalar(0);
    const tokens = tf.maximum(tf.sum(m), 1);
    if (opts.beta !== 0) {
      const logr = tf.mul(tf.sub(refLogprobs!, logprobs), m);
      const k3 = tf.sub(tf.sub(tf.exp(logr), logr), 1);
      perToken = tf.add(perToken, tf.mul(k3, opts.beta));
      kl = tf.div(tf.sum(tf.mul(k3, m)), tokens) as tf.Scalar;
    }
    const masked = tf.mul(perToken, m);
    let loss: tf.Scalar;
    switch (opts.lossType) {
      case 'grpo':
        loss = tf.mean(tf.div(tf.sum(masked, 1), tf.maximum(tf.sum(m, 1), 1))) as tf.Scalar;
        break;
      case 'bnpo':
        loss = tf.div(tf.sum(masked), tokens) as tf.Scalar;
        break;
      case 'dr_grpo':
        loss = tf.div(tf.sum(masked), B * opts.maxCompletionLength) as tf.Scalar;
        break;
      case 'dapo':
        loss = tf.div(
          tf.sum(masked),
          opts.numItemsInBatch === undefined ? tokens : Math.max(opts.numItemsInBatch, 1),
        ) as tf.Scalar;
        break;
    }
    const isLow = tf.mul(tf.cast(tf.logicalAnd(tf.less(ratio, lo), tf.less(adv, 0)), 'float32'), m);
    const isHigh = tf.mul(tf.cast(tf.logicalAnd(tf.greater(ratio, hi), tf.greater(adv, 0)), 'float32'), m);
    const low = tf.div(tf.sum(isLow), tokens) as tf.Scalar;
    const high = tf.div(tf.sum(isHigh), tokens) as tf.Scalar;
    return { loss, clipRatio: tf.add(low, high) as tf.Scalar, clipRatioLow: low, clipRatioHigh: high, kl };
  });
}

export interface RlooLossResult<S = number> {
  /** Mean over sequences of −min(ratio·A, clip(ratio)·A), ratio at the sequence level. */
  loss: S;
  /** Fraction of sequences clipped low or high (TRL `clip_ratio/region_mean`). */
  clipRatio: S;
  clipRatioLow: S;
  clipRatioHigh: S;
}

/** RLOO's sequence-level clipped loss (see the file header). */
export function rlooLoss(
  logprobs: Matrix,
  oldLogprobs: Matrix,
  advantages: number[],
  mask: Matrix,
  epsilon: number,
  epsilonHigh: number | null = null,
): RlooLossResult {
  checkSameShape('rlooLoss', logprobs, oldLogprobs, mask);
  const B = logprobs.length;
  if (advantages.length !== B) throw new RangeError(`rlooLoss: ${advantages.length} advantages for ${B} rows`);
  const lo = 1 - epsilon;
  const hi = 1 + (epsilonHigh ?? epsilon);
  let loss = 0;
  let low = 0;
  let high = 0;
  for (let b = 0; b < B; b++) {
    let diff = 0;
    for (let t = 0; t < logprobs[b].length; t++)
      if (mask[b][t] !== 0) diff += (logprobs[b][t] - oldLogprobs[b][t]) * mask[b][t];
    const ratio = Math.exp(diff);
    const a = advantages[b];
    loss += -Math.min(ratio * a, Math.min(Math.max(ratio, lo), hi) * a);
    if (ratio < lo && a < 0) low++;
    if (ratio > hi && a > 0) high++;
  }
  return { loss: loss / B, clipRatio: (low + high) / B, clipRatioLow: low / B, clipRatioHigh: high / B };
}

/** Tensor version of {@link rlooLoss}; the gradient flows to `logprobs`. */
export function rlooLossT(
  logprobs: tf.Tensor2D,
  oldLogprobs: tf.Tensor2D,
  advantages: tf.Tensor1D,
  mask: tf.Tensor2D,
  epsilon: number,
  epsilonHigh: number | null = null,
): RlooLossResult<tf.Scalar> {
  return tf.tidy(() => {
    const lo = 1 - epsilon;
    const hi = 1 + (epsilonHigh ?? epsilon);
    const m = tf.cast(mask, 'float32');
    const ratio = tf.exp(tf.sum(tf.mul(tf.sub(logprobs, oldLogprobs), m), 1)); // [B]
    const l1 = tf.mul(ratio, advantages);
    const l2 = tf.mul(tf.clipByValue(ratio, lo, hi), advantages);
    const loss = tf.mean(tf.neg(tf.minimum(l1, l2))) as tf.Scalar;
    const low = tf.mean(tf.cast(tf.logicalAnd(tf.less(ratio, lo), tf.less(advantages, 0)), 'float32')) as tf.Scalar;
    const high = tf.mean(
      tf.cast(tf.logicalAnd(tf.greater(ratio, hi), tf.greater(advantages, 0)), 'float32'),
    ) as tf.Scalar;
    return { loss, clipRatio: tf.add(low, high) as tf.Scalar, clipRatioLow: low, clipRatioHigh: high };
  });
}
