/**
 * Direct Preference Optimization losses on per-sequence log-probabilities.
 *
 * Follows:
 *  - Rafailov et al. 2023, "Direct Preference Optimization": L = −log σ(β·[(logπ(y_w) −
 *    logπ_ref(y_w)) − (logπ(y_l) − logπ_ref(y_l))]); implicit reward β·(logπ − logπ_ref).
 *  - Mitchell 2023, "A note on DPO with noisy preferences" (conservative DPO, label smoothing ε):
 *    −log σ(βh)·(1−ε) − log σ(−βh)·ε.
 *  - Azar et al. 2023, "A General Theoretical Paradigm to Understand Learning from Human
 *    Preferences" (IPO): (h − 1/(2β))².
 *  - TRL `trl/trainer/dpo_trainer.py` (`dpo_loss`): `logits = (pc − pr) − (rc − rr)`, the
 *    `sigmoid` and `ipo` loss types, `chosen_rewards = β·(pc − rc)` detached, loss = mean.
 *
 * Inputs are per-sequence log-probabilities [N] (sums over response tokens). For `ipo` TRL
 * averages over tokens instead of summing; pass per-token means to match it (`trainDpo` in
 * `dpo-train.ts` does).
 */
import * as tf from '@tensorflow/tfjs-core';
import { negLogSigmoid, negLogSigmoidT } from './bradley-terry';

export type DpoLossType = 'sigmoid' | 'ipo';

export interface DpoResult<S = number, V = number[]> {
  /** Mean loss over pairs. */
  loss: S;
  /** β·(logπ(chosen) − logπ_ref(chosen)) per pair (a metric: TF.js has no stop-gradient, so only
   *  differentiate `loss`). */
  chosenRewards: V;
  /** β·(logπ(rejected) − logπ_ref(rejected)) per pair. */
  rejectedRewards: V;
}

function checkDpoArgs(beta: number, lossType: DpoLossType, labelSmoothing: number): void {
  if (!(beta > 0)) throw new RangeError(`dpoLoss: beta must be > 0, got ${beta}`);
  if (lossType !== 'sigmoid' && lossType !== 'ipo') throw new RangeError(`dpoLoss: unknown loss type ${lossType}`);
  if (!(labelSmoothing >= 0 && labelSmoothing < 0.5)) {
    throw new RangeError(`dpoLoss: labelSmoothing must be in [0, 0.5), got ${labelSmoothing}`);
  }
}

export function dpoLoss(
  policyChosen: number[],
  policyRejected: number[],
  refChosen: number[],
  refRejected: number[],
  beta: number,
  lossType: DpoLossType,
  labelSmoothing = 0,
): DpoResult {
  const N = policyChosen.length;
  if ([policyRejected, refChosen, refRejected].some((a) => a.length !== N) || N === 0) {
    throw new RangeError('dpoLoss: the four log-probability arrays must be non-empty and of one length');
  }
  checkDpoArgs(beta, lossType, labelSmoothing);
  let loss = 0;
  for (let i = 0; i < N; i++) {
    const h = policyChosen[i] - policyRejected[i] - (refChosen[i] - refRejected[i]);
    loss +=
      lossType === 'ipo'
        ? (h - 1 / (2 * beta)) ** 2
        : negLogSigmoid(beta * h) * (1 - labelSmoothing) + negLogSigmoid(-beta * h) * labelSmoothing;
  }
  return {
    loss: loss / N,
    chosenRewards: policyChosen.map((p, i) => beta * (p - refChosen[i])),
    rejectedRewards: policyRejected.map((p, i) => beta * (p - refRejected[i])),
  };
}

/** Tensor version of {@link dpoLoss}: [N] tensors; gradients flow to the policy log-probs. */
export function dpoLossT(
  policyChosen: tf.Tensor1D,
  policyRejected: tf.Tensor1D,
  refChosen: tf.Tensor1D,
  refRejected: tf.Tensor1D,
  beta: number,
  lossType: DpoLossType,
  labelSmoothing = 0,
): DpoResult<tf.Scalar, tf.Tensor1D> {
  checkDpoArgs(beta, lossType, labelSmoothing);
  return tf.tidy(() => {
    const h = tf.sub(tf.sub(policyChosen, policyRejected), tf.sub(refChosen, refRejected));
    let losses: tf.Tensor;
    if (lossType === 'ipo') {
      losses = tf.square(tf.sub(h, 1 / (2 * beta)));
    } else {
      const bh = tf.mul(h, beta);
      losses = negLogSigmoidT(bh);
      if (labelSmoothing !== 0) {
        losses = tf.add(tf.mul(losses, 1 - labelSmoothing), tf.mul(negLogSigmoidT(tf.neg(bh)), labelSmoothing));
      }
    }
    return {
      loss: tf.mean(losses) as tf.Scalar,
      chosenRewards: tf.mul(tf.sub(policyChosen, refChosen), beta) as tf.Tensor1D,
      rejectedRewards: tf.mul(tf.sub(policyRejected, refRejected), beta) as tf.Tensor1D,
    };
  });
}
