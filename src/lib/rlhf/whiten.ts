/**
 * Masked statistics and whitening, on plain arrays and on TF.js tensors.
 *
 * Follows TRL `trl/core.py` (`masked_mean`, `masked_var`, `masked_whiten`), which PPO uses to
 * whiten advantages (and optionally rewards): masked mean, masked variance with Bessel's
 * correction n/(n-1) over the valid entries, `(x - mean) / sqrt(var + 1e-8)`, and with
 * `shift_mean=False` the mean added back. See also Huang et al. 2024, "The N Implementation
 * Details of RLHF with PPO", on advantage whitening.
 *
 * Differences from TRL, on purpose: positions where `mask` is 0 come out as 0 (TRL leaves them
 * and the trainer `masked_fill`s them afterwards), and fewer than two valid entries is an error
 * in the array version (TRL raises too) while the tensor version returns 0 there (no readback).
 */
import * as tf from '@tensorflow/tfjs-core';

/** `[batch][time]` numbers. */
export type Matrix = number[][];

/** Added to the variance before the square root, as TRL does. */
export const WHITEN_EPS = 1e-8;

/** Throws a RangeError unless every matrix has the shape of the first. */
export function checkSameShape(name: string, ...ms: Matrix[]): void {
  const [first] = ms;
  for (const m of ms) {
    if (m.length !== first.length || m.some((row, b) => row.length !== first[b].length)) {
      throw new RangeError(`${name}: inputs must have the same [batch][time] shape`);
    }
  }
}

/** Sum of mask-weighted x and of the mask. */
function maskedSums(x: Matrix, mask: Matrix): [number, number] {
  let s = 0;
  let n = 0;
  for (let b = 0; b < x.length; b++) {
    for (let t = 0; t < x[b].length; t++) {
      if (mask[b][t] === 0) continue; // padding may hold anything, even NaN
      s += x[b][t] * mask[b][t];
      n += mask[b][t];
    }
  }
  return [s, n];
}

/** sum(x·mask) / sum(mask). Throws when the mask is empty. */
export function maskedMean(x: Matrix, mask: Matrix): number {
  checkSameShape('maskedMean', x, mask);
  const [s, n] = maskedSums(x, mask);
  if (!(n > 0)) throw new RangeError('maskedMean: the mask selects no entry');
  return s / n;
}

/** Masked variance; `unbiased` multiplies by n/(n-1) (TRL's default) and needs n ≥ 2. */
export function maskedVar(x: Matrix, mask: Matrix, unbiased = true): number {
  const mean = maskedMean(x, mask);
  const centred = x.map((row) => row.map((v) => (v - mean) * (v - mean)));
  const variance = maskedMean(centred, mask);
  if (!unbiased) return variance;
  const [, n] = maskedSums(x, mask);
  if (!(n > 1)) throw new RangeError('maskedVar: the unbiased variance needs at least two masked entries');
  return (variance * n) / (n - 1);
}

/** (x - mean) / sqrt(var + 1e-8) over the masked entries, + mean if !shiftMean; 0 where mask is 0. */
export function whiten(x: Matrix, mask: Matrix, shiftMean = true): Matrix {
  const mean = maskedMean(x, mask);
  const scale = 1 / Math.sqrt(maskedVar(x, mask) + WHITEN_EPS);
  const add = shiftMean ? 0 : mean;
  return x.map((row, b) => row.map((v, t) => (mask[b][t] === 0 ? 0 : ((v - mean) * scale + add) * mask[b][t])));
}

/** Tensor masked mean: sum(x·mask) / sum(mask), a scalar. `mask` broadcasts against x. */
export function maskedMeanT(x: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const m = tf.cast(mask, 'float32');
    return tf.div(tf.sum(tf.mul(x, m)), tf.sum(tf.mul(tf.onesLike(x), m))) as tf.Scalar;
  });
}

/** Tensor masked variance (n/(n-1) when unbiased; n is clamped to ≥ 2 instead of throwing). */
export function maskedVarT(x: tf.Tensor, mask: tf.Tensor, unbiased = true): tf.Scalar {
  return tf.tidy(() => {
    const m = tf.cast(mask, 'float32');
    const mean = maskedMeanT(x, m);
    const variance = maskedMeanT(tf.square(tf.sub(x, mean)), m);
    if (!unbiased) return variance;
    const n = tf.maximum(tf.sum(tf.mul(tf.onesLike(x), m)), 2);
    return tf.div(tf.mul(variance, n), tf.sub(n, 1)) as tf.Scalar;
  });
}

/** Tensor version of {@link whiten}. Gradients flow through mean and variance, as in TRL. */
export function whitenT<T extends tf.Tensor>(x: T, mask: tf.Tensor, shiftMean = true): T {
  return tf.tidy(() => {
    const m = tf.cast(mask, 'float32');
    const mean = maskedMeanT(x, m);
    let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(maskedVarT(x, m), WHITEN_EPS)));
    if (!shiftMean) y = tf.add(y, mean);
    return tf.mul(y, m) as T;
  });
}
