/**
 * The Adam update every trainer here uses (PPO `ppo.ts`, the reward model `reward-train.ts`, SFT
 * and DPO `offline-train.ts`): Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization",
 * with bias correction and ε passed explicitly (TF.js's default ε depends on the backend), and
 * optional decoupled weight decay on tensors of rank ≥ 2 only (Loshchilov & Hutter 2019, AdamW,
 * applied to matrices as nanoGPT does). Each trainer keeps its own moments and its own
 * gradient clipping; this is the per-variable step they share.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface AdamStep {
  beta1: number;
  beta2: number;
  eps: number;
  lr: number;
  /** Decoupled weight decay (×lr), on matrices only; 0 or absent for none. */
  weightDecay?: number;
}

/** A zero-filled, non-trainable variable shaped like `p` (an Adam moment). */
export function zerosSlot(p: tf.Variable, name?: string): tf.Variable {
  const z = tf.zerosLike(p);
  const out = tf.variable(z, false, name);
  z.dispose(); // the variable keeps its own reference to the data
  return out;
}

/**
 * One Adam step of `p` with gradient `g` (already clipped) and moments `m`, `v`; `t` is the step
 * number, from 1. Call inside `tf.tidy`.
 */
export function adamUpdate(p: tf.Variable, g: tf.Tensor, m: tf.Variable, v: tf.Variable, t: number, h: AdamStep): void {
  const bc1 = 1 - h.beta1 ** t;
  const bc2 = 1 - h.beta2 ** t;
  m.assign(tf.add(tf.mul(m, h.beta1), tf.mul(g, 1 - h.beta1)));
  v.assign(tf.add(tf.mul(v, h.beta2), tf.mul(tf.square(g), 1 - h.beta2)));
  let update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), h.eps));
  if (h.weightDecay && h.weightDecay > 0 && p.shape.length >= 2) update = tf.add(update, tf.mul(p, h.weightDecay));
  p.assign(tf.sub(p, tf.mul(update, h.lr)));
}
