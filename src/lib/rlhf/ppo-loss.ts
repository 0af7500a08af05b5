/**
 * PPO's clipped policy and value losses, on plain arrays and on TF.js tensors.
 *
 * Follows:
 *  - Schulman et al. 2017, "Proximal Policy Optimization Algorithms": the clipped surrogate
 *    L = E[min(ρ·Â, clip(ρ, 1−ε, 1+ε)·Â)], ρ = exp(logπ − logπ_old), maximised; written as a
 *    loss, max(−Â·ρ, −Â·clip(ρ)).
 *  - TRL `trl/trainer/ppo_trainer.py`: `pg_loss = masked_mean(max(pg_losses, pg_losses2))`,
 *    `pg_clipfrac = masked_mean(pg_losses2 > pg_losses)`, `approxkl = 0.5·mean(Δlogp²)` (masked
 *    here), and the clipped value loss `0.5·masked_mean(max((v−R)², (clip(v, v_old±c)−R)²))`
 *    with `vf_clipfrac = masked_mean(vf_losses2 > vf_losses1)`.
 *  - Huang et al. 2024, "The N Implementation Details of RLHF with PPO" (value clipping,
 *    masked means over response tokens).
 *
 * All inputs are [B][T] (or [B, T] tensors); `mask` is 1 on response tokens, 0 on padding.
 * The tensor versions return scalars the caller owns; only `loss` carries a useful gradient.
 * Log-probabilities on padding are ignored; other tensor inputs on padding must be finite
 * (masked means multiply by the mask, and NaN·0 is NaN).
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkSameShape, maskedMean, maskedMeanT, type Matrix } from './whiten';

export interface PolicyLossResult<S = number> {
  /** masked mean of max(−Â·ρ, −Â·clip(ρ, 1−c, 1+c)). */
  loss: S;
  /** Fraction of masked tokens where the clipped term is the larger loss (TRL `policy/clipfrac`). */
  clipfrac: S;
  /** 0.5·masked mean of (logπ − logπ_old)² (TRL `policy/approxkl`). */
  approxKl: S;
}

export interface ValueLossResult<S = number> {
  /** 0.5·masked mean of max((v−R)², (clip(v, v_old−c, v_old+c)−R)²). */
  loss: S;
  /** Fraction of masked tokens where the clipped error is the larger one (TRL `val/clipfrac`). */
  clipfrac: S;
}

export function ppoPolicyLoss(
  logprobs: Matrix,
  oldLogprobs: Matrix,
  advantages: Matrix,
  mask: Matrix,
  clipRange: number,
): PolicyLossResult {
  checkSameShape('ppoPolicyLoss', logprobs, oldLogprobs, advantages, mask);
  const losses: Matrix = [];
  const clipped: Matrix = [];
  const sqDiff: Matrix = [];
  for (let b = 0; b < logprobs.length; b++) {
    losses.push([]);
    clipped.push([]);
    sqDiff.push([]);
    for (let t = 0; t < logprobs[b].length; t++) {
      const diff = mask[b][t] === 0 ? 0 : logprobs[b][t] - oldLogprobs[b][t]; // ratio 1 on padding
      const ratio = Math.exp(diff);
      const adv = advantages[b][t];
      const l1 = -adv * ratio;
      const l2 = -adv * Math.min(Math.max(ratio, 1 - clipRange), 1 + clipRange);
      losses[b].push(Math.max(l1, l2));
      clipped[b].push(l2 > l1 ? 1 : 0);
      sqDiff[b].push(diff * diff);
    }
  }
  return {
    loss: maskedMean(losses, mask),
    clipfrac: maskedMean(clipped, mask),
    approxKl: 0.5 * maskedMean(sqDiff, mask),
  };
}

export function ppoValueLoss(
  values: Matrix,
  oldValues: Matrix,
  returns: Matrix,
  mask: Matrix,
  clipRangeValue: number,
): ValueLossResult {
  checkSameShape('ppoValueLoss', values, oldValues, returns, mask);
  const losses: Matrix = [];
  const clipped: Matrix = [];
  for (let b = 0; b < values.length; b++) {
    losses.push([]);
    clipped.push([]);
    for (let t = 0; t < values[b].length; t++) {
      const v = values[b][t];
      const old = oldValues[b][t];
      const ret = returns[b][t];
      const vClipped = Math.min(Math.max(v, old - clipRangeValue), old + clipRangeValue);
      const l1 = (v - ret) ** 2;
      const l2 = (vClipped - ret) ** 2;
      losses[b].push(Math.max(l1, l2));
      clipped[b].push(l2 > l1 ? 1 : 0);
    }
  }
  return { loss: 0.5 * maskedMean(losses, mask), clipfrac: maskedMean(clipped, mask) };
}

/**
 * Tensor version of {@link ppoPolicyLoss}. `oldLogprobs`, `advantages` and `mask` are data
 * (no gradient is taken through them); the gradient flows to `logprobs`.
 */
export function ppoPolicyLossT(
  logprobs: tf.Tensor,
  oldLogprobs: tf.Tensor,
  advantages: tf.Tensor,
  mask: tf.Tensor,
  clipRange: number,
): PolicyLossResult<tf.Scalar> {
  return tf.tidy(() => {
    // Δlogp is zeroed on padding so that filler log-probs there cannot overflow exp() into
    // Inf·0 = NaN (TRL fills both with INVALID_LOGPROB = 1 for the same reason).
    const diff = tf.mul(tf.sub(logprobs, oldLogprobs), tf.cast(mask, 'float32'));
    const ratio = tf.exp(diff);
    const negAdv = tf.neg(advantages);
    const l1 = tf.mul(negAdv, ratio);
    const l2 = tf.mul(negAdv, tf.clipByValue(ratio, 1 - clipRange, 1 + clipRange));
    return {
      loss: maskedMeanT(tf.maximum(l1, l2), mask),
      clipfrac: maskedMeanT(tf.cast(tf.greater(l2, l1), 'float32'), mask),
      approxKl: tf.mul(maskedMeanT(tf.square(diff), mask), 0.5) as tf.Scalar,
    };
  });
}

/** Tensor version of {@link ppoValueLoss}; the gradient flows to `values`. */
export function ppoValueLossT(
  values: tf.Tensor,
  oldValues: tf.Tensor,
  returns: tf.Tensor,
  mask: tf.Tensor,
  clipRangeValue: number,
): ValueLossResult<tf.Scalar> {
  return tf.tidy(() => {
    // clip(v, old − c, old + c) with tensor bounds: clipByValue only takes scalar bounds.
    const vClipped = tf.minimum(
      tf.maximum(values, tf.sub(oldValues, clipRangeValue)),
      tf.add(oldValues, clipRangeValue),
    );
    const l1 = tf.square(tf.sub(values, returns));
    const l2 = tf.square(tf.sub(vClipped, returns));
    return {
      loss: tf.mul(maskedMeanT(tf.maximum(l1, l2), mask), 0.5) as tf.Scalar,
      clipfrac: maskedMeanT(tf.cast(tf.greater(l2, l1), 'float32'), mask),
    };
  });
}
