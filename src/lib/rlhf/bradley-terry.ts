/**
 * Bradley–Terry pairwise loss of a reward model.
 *
 * Follows:
 *  - Bradley & Terry 1952; Ouyang et al. 2022 (InstructGPT) reward-model loss
 *    −log σ(r_chosen − r_rejected).
 *  - TRL `trl/trainer/reward_trainer.py`: `-logsigmoid(r_c - r_r - margin).mean()` (margin from
 *    the data, Llama 2's "margin" term), plus `center_rewards_coefficient · mean((r_c + r_r)²)`
 *    (Eisenstein et al. 2023) which keeps rewards centred on 0.
 *
 * Accuracy is the fraction of pairs with r_chosen > r_rejected (ties count as wrong).
 */
import * as tf from '@tensorflow/tfjs-core';

export interface BradleyTerryResult<S = number> {
  loss: S;
  accuracy: S;
}

/** −log σ(x) = softplus(−x), computed without overflow. */
export function negLogSigmoid(x: number): number {
  return Math.max(-x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/**
 * −log σ(x) on tensors, as softplus(−x). Not `tf.neg(tf.logSigmoid(x))`: in TF.js 4.22
 * `logSigmoid`'s custom gradient closes over its input without saving it, so when that input
 * was made inside a `tf.tidy` the backward pass reads a disposed tensor ("Cannot read
 * properties of undefined (reading 'backend')", measured here on cpu and wasm). Softplus is a
 * kernel with a registered gradient that saves its input.
 */
export function negLogSigmoidT<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.softplus(tf.neg(x)) as T);
}

function checkPairs(name: string, chosen: number[], rejected: number[], margin: number | number[]): void {
  if (chosen.length !== rejected.length || (Array.isArray(margin) && margin.length !== chosen.length)) {
    throw new RangeError(`${name}: chosen, rejected (and a margin array) must have the same length`);
  }
  if (chosen.length === 0) throw new RangeError(`${name}: no pairs`);
}

/** Rewards [N] of the chosen and rejected answers; margin per pair or shared. */
export function bradleyTerryLoss(
  chosen: number[],
  rejected: number[],
  margin: number | number[] = 0,
  centerCoef = 0,
): BradleyTerryResult {
  checkPairs('bradleyTerryLoss', chosen, rejected, margin);
  const N = chosen.length;
  let loss = 0;
  let centre = 0;
  let correct = 0;
  for (let i = 0; i < N; i++) {
    const m = Array.isArray(margin) ? margin[i] : margin;
    loss += negLogSigmoid(chosen[i] - rejected[i] - m);
    centre += (chosen[i] + rejected[i]) ** 2;
    if (chosen[i] > rejected[i]) correct++;
  }
  return { loss: loss / N + (centerCoef * centre) / N, accuracy: correct / N };
}

/** Tensor version of {@link bradleyTerryLoss}: chosen, rejected [N]; gradients flow to both. */
export function bradleyTerryLossT(
  chosen: tf.Tensor1D,
  rejected: tf.Tensor1D,
  margin: number | number[] | tf.Tensor1D = 0,
  centerCoef = 0,
): BradleyTerryResult<tf.Scalar> {
  return tf.tidy(() => {
    const m = typeof margin === 'number' || Array.isArray(margin) ? tf.tensor(margin) : margin;
    let loss = tf.mean(negLogSigmoidT(tf.sub(tf.sub(chosen, rejected), m))) as tf.Scalar;
    if (centerCoef !== 0) loss = tf.add(loss, tf.mul(tf.mean(tf.square(tf.add(chosen, rejected))), centerCoef));
    return { loss, accuracy: tf.mean(tf.cast(tf.greater(chosen, rejected), 'float32')) as tf.Scalar };
  });
}
