/**
 * Per-token KL estimators between the policy and the frozen reference, and the adaptive KL
 * coefficient.
 *
 * Follows:
 *  - TRL `trl/trainer/ppo_trainer.py`: `kl = logprobs - ref_logprobs` (k1) or, with
 *    `logr = ref_logprobs - logprobs`, `kl = (exp(logr) - 1) - logr` (k3); the per-token reward
 *    is `-kl_coef * kl` plus the score on the last real token.
 *  - John Schulman, "Approximating KL Divergence" (2020), for k1 (unbiased, high variance,
 *    can be negative) and k3 (unbiased, ≥ 0, lower variance) with samples from the policy.
 *  - Ziegler et al. 2019, "Fine-Tuning Language Models from Human Preferences", and TRL
 *    `AdaptiveKLController`: β ← β·(1 + clip(KL/target − 1, −0.2, 0.2)·n/horizon).
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkSameShape, type Matrix } from './whiten';

export type KlEstimator = 'k1' | 'k3';

function klOne(lp: number, ref: number, estimator: KlEstimator): number {
  if (estimator === 'k1') return lp - ref;
  const logr = ref - lp;
  return Math.expm1(logr) - logr;
}

/** [B][T] per-token KL estimate from log-probabilities of the sampled tokens. */
export function klPerToken(logprobs: Matrix, refLogprobs: Matrix, estimator: KlEstimator): Matrix {
  checkSameShape('klPerToken', logprobs, refLogprobs);
  return logprobs.map((row, b) => row.map((lp, t) => klOne(lp, refLogprobs[b][t], estimator)));
}

/** Tensor version of {@link klPerToken}. */
export function klPerTokenT<T extends tf.Tensor>(logprobs: T, refLogprobs: T, estimator: KlEstimator): T {
  return tf.tidy(() => {
    if (estimator === 'k1') return tf.sub(logprobs, refLogprobs) as T;
    const logr = tf.sub(refLogprobs, logprobs);
    return tf.sub(tf.sub(tf.exp(logr), 1), logr) as T;
  });
}

/** Adaptive KL coefficient (Ziegler et al. 2019), TRL's `AdaptiveKLController`. */
export class AdaptiveKlController {
  constructor(
    public value: number,
    readonly target: number,
    readonly horizon: number,
  ) {}
  /** `currentKl`: the batch's mean KL (summed over tokens); `nSteps`: samples in the batch. */
  update(currentKl: number, nSteps: number): number {
    const error = Math.min(Math.max(currentKl / this.target - 1, -0.2), 0.2);
    this.value *= 1 + (error * nSteps) / this.horizon;
    return this.value;
  }
}
