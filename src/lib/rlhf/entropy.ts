/**
 * Softmax entropy of next-token logits, and log-probabilities of chosen tokens.
 *
 * Follows TRL `trl/trainer/ppo_trainer.py`: `entropy = logsumexp(logits) − Σ softmax(logits)·logits`
 * (reported as `objective/entropy`, masked mean here), and `logprobs = log_softmax(logits /
 * temperature).gather(tokens)`, so the PPO ratio uses the distribution the rollout sampled from
 * (Huang et al. 2024, "The N Implementation Details of RLHF with PPO": temperature in training).
 *
 * Backend notes (TF.js 4.22): the token pick is a one-hot multiply-sum rather than a gather,
 * because the wasm backend has no kernel for gather's gradient (UnsortedSegmentSum); and the
 * one-hot is built as int32 and cast, because wasm's OneHot kernel ignores dtype 'float32'
 * (see `src/lib/model/gpt.ts`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { maskedMean, maskedMeanT, type Matrix } from './whiten';

export interface EntropyResult<M = Matrix, S = number> {
  /** [B][T] entropy (nats) of softmax(logits) at each position. */
  perToken: M;
  /** Masked mean of perToken. */
  mean: S;
}

function entropyOfRow(logits: number[]): number {
  const max = Math.max(...logits);
  let z = 0;
  for (const l of logits) z += Math.exp(l - max);
  const lse = max + Math.log(z);
  let h = 0;
  for (const l of logits) {
    const lp = l - lse;
    h -= Math.exp(lp) * lp;
  }
  return h;
}

/** Entropy of softmax over the last axis of `logits` [B][T][V]; masked mean over [B][T]. */
export function entropyFromLogits(logits: number[][][], mask: Matrix): EntropyResult {
  const perToken = logits.map((row) => row.map(entropyOfRow));
  return { perToken, mean: maskedMean(perToken, mask) };
}

/** Tensor version of {@link entropyFromLogits}: logits [B, T, V], mask [B, T]. */
export function entropyFromLogitsT(logits: tf.Tensor3D, mask: tf.Tensor2D): EntropyResult<tf.Tensor2D, tf.Scalar> {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits, -1);
    const perToken = tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1)) as tf.Tensor2D;
    return { perToken, mean: maskedMeanT(perToken, mask) };
  });
}

/**
 * {@link logprobsOfTokens} and the entropy of softmax(logits / temperature) from one
 * log-softmax: the two used to run it twice over [B, T, V] (about a quarter of the PPO rollout's
 * forward pass on wasm). The log-probs are the same ops as `logprobsOfTokens`, so they agree with
 * it exactly; differentiable like both.
 */
export function logprobsAndEntropyT(
  logits: tf.Tensor3D,
  tokens: tf.Tensor2D,
  temperature: number,
  mask: tf.Tensor2D,
): { logprobs: tf.Tensor2D; entropy: EntropyResult<tf.Tensor2D, tf.Scalar> } {
  if (!(temperature > 0)) throw new RangeError(`logprobsAndEntropyT: temperature must be > 0, got ${temperature}`);
  return tf.tidy(() => {
    const V = logits.shape[2];
    const oneHot = tf.cast(tf.oneHot(tf.cast(tokens, 'int32') as tf.Tensor2D, V), 'float32');
    const logp = tf.logSoftmax(temperature === 1 ? logits : tf.div(logits, temperature), -1);
    const logprobs = tf.sum(tf.mul(logp, oneHot), -1) as tf.Tensor2D;
    const perToken = tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1)) as tf.Tensor2D;
    return { logprobs, entropy: { perToken, mean: maskedMeanT(perToken, mask) } };
  });
}

/**
 * log softmax(logits / temperature) at `tokens`: logits [B, T, V], tokens [B, T] (int32 tensor
 * or numbers) → [B, T]. Differentiable with respect to logits on every backend.
 */
export function logprobsOfTokens(logits: tf.Tensor3D, tokens: tf.Tensor2D | number[][], temperature = 1): tf.Tensor2D {
  if (!(temperature > 0)) throw new RangeError(`logprobsOfTokens: temperature must be > 0, got ${temperature}`);
  return tf.tidy(() => {
    const V = logits.shape[2];
    const ids = Array.isArray(tokens) ? tf.tensor2d(tokens, undefined, 'int32') : tf.cast(tokens, 'int32');
    const oneHot = tf.cast(tf.oneHot(ids as tf.Tensor2D, V), 'float32');
    const scaled = temperature === 1 ? logits : tf.div(logits, temperature);
    return tf.sum(tf.mul(tf.logSoftmax(scaled, -1), oneHot), -1) as tf.Tensor2D;
  });
}
