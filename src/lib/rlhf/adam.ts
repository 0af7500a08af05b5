/**
 * The one Adam every trainer here uses (PPO `ppo.ts`, the reward model `reward-train.ts`, SFT
 * and DPO `offline-train.ts`): Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization",
 * with bias correction and ε passed explicitly (TF.js's default ε depends on the backend),
 * optional decoupled weight decay on tensors of rank ≥ 2 only (Loshchilov & Hutter 2019, AdamW,
 * applied to matrices as nanoGPT does), and clipping by the global gradient norm (as PyTorch's
 * `clip_grad_norm_`: scale `min(1, maxNorm / (norm + 1e-6))`).
 *
 * `adamUpdate` is the per-variable step (checked against PyTorch's AdamW,
 * tests/unit/adam.test.ts); `Adam` owns the moments of a list of variables and clips. On the
 * CPU-side backends (wasm, cpu) `Adam.apply` runs each variable's step as one pass of our wasm
 * kernel (model/kernels/adam-kernel.ts: the same float32 operations in the same order, so the
 * same bits) instead of ~15 TF.js kernels; elsewhere the TF.js ops of `adamUpdate`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedAdamAvailable, fusedAdamStep } from '../model/kernels/adam-kernel';

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

/** Decoupled weight decay of `p` under `h`: on matrices only (rank ≥ 2), else 0. */
function decayOf(p: tf.Variable, h: AdamStep): number {
  return h.weightDecay && h.weightDecay > 0 && p.shape.length >= 2 ? h.weightDecay : 0;
}

/**
 * {@link adamUpdate} of several variables, their gradients scaled by `scale` first, through the
 * fused wasm kernel (one pass per variable; model/kernels/adam-kernel.ts). Same result, bit for
 * bit. Only where `fusedAdamAvailable()`.
 */
export function adamUpdateFused(
  items: { p: tf.Variable; g: tf.Tensor; m: tf.Variable; v: tf.Variable }[],
  t: number,
  h: AdamStep,
  scale = 1,
): void {
  // The constants as float32, as TF.js receives them (JS numbers become float32 scalars).
  const f = Math.fround;
  fusedAdamStep(
    items.map((x) => ({ ...x, wd: f(decayOf(x.p, h)) })),
    f(scale),
    {
      beta1: f(h.beta1),
      oneMinusBeta1: f(1 - h.beta1),
      beta2: f(h.beta2),
      oneMinusBeta2: f(1 - h.beta2),
      eps: f(h.eps),
      lr: f(h.lr),
      bc1: f(1 - h.beta1 ** t),
      bc2: f(1 - h.beta2 ** t),
    },
  );
}

/** Adam's fixed hyper-parameters (the learning rate and the clipping norm are given per step). */
export interface AdamConfig {
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay (×lr), on matrices only; 0 or absent for none. */
  weightDecay?: number;
}

/** One step's learning rate and clipping norm (0 = no clipping). */
export interface AdamStepOptions {
  lr: number;
  maxGradNorm: number;
}

/** The factor that scales gradients of global norm `gradNorm` down to at most `maxGradNorm` (0 = off). */
export function clipScale(gradNorm: number, maxGradNorm: number): number {
  return maxGradNorm > 0 ? Math.min(1, maxGradNorm / (gradNorm + 1e-6)) : 1;
}

/** Adam over a fixed list of variables: their moments, the step count, global-norm clipping. */
export class Adam {
  /** First and second moments, one per variable, in `vars` order. */
  readonly m: tf.Variable[];
  readonly v: tf.Variable[];
  /** Steps taken (bias correction uses it); a checkpoint stores it with the moments. */
  step = 0;

  /** `name`, when given, names the moment variables `<name>-m/<var>` and `<name>-v/<var>`. */
  constructor(
    readonly vars: tf.Variable[],
    readonly config: AdamConfig,
    name?: string,
  ) {
    this.m = vars.map((p) => zerosSlot(p, name ? `${name}-m/${p.name}` : undefined));
    this.v = vars.map((p) => zerosSlot(p, name ? `${name}-v/${p.name}` : undefined));
  }

  /** Global L2 norm of the gradients of `vars` (a scalar tensor). */
  gradNorm(grads: tf.NamedTensorMap): tf.Scalar {
    return tf.tidy(() => tf.sqrt(tf.addN(this.vars.map((p) => tf.sum(tf.square(grads[p.name]))))) as tf.Scalar);
  }

  /**
   * One step, the gradients clipped by their global norm. `gradNorm` is that norm, read back
   * already (the trainers that check it is finite before any update), or a tensor: then the
   * scale is computed on the device and nothing is read back (the reward model checks after).
   */
  apply(grads: tf.NamedTensorMap, gradNorm: number | tf.Scalar, s: AdamStepOptions): void {
    const t = ++this.step;
    const h: AdamStep = { ...this.config, lr: s.lr };
    if (fusedAdamAvailable()) {
      // The scale as the TF.js path computes it (a device norm: the same float32 ops, read here).
      let scale: number;
      if (typeof gradNorm === 'number') scale = clipScale(gradNorm, s.maxGradNorm);
      else if (s.maxGradNorm > 0) {
        const st = tf.tidy(() => tf.minimum(1, tf.div(s.maxGradNorm, tf.add(gradNorm, 1e-6))));
        scale = st.dataSync()[0];
        st.dispose();
      } else scale = 1;
      const items = this.vars.map((p, i) => ({ p, g: grads[p.name], m: this.m[i], v: this.v[i] }));
      adamUpdateFused(items, t, h, scale);
      return;
    }
    tf.tidy(() => {
      let scale: number | tf.Tensor;
      if (typeof gradNorm === 'number') scale = clipScale(gradNorm, s.maxGradNorm);
      else scale = s.maxGradNorm > 0 ? tf.minimum(1, tf.div(s.maxGradNorm, tf.add(gradNorm, 1e-6))) : tf.scalar(1);
      this.vars.forEach((p, i) => {
        const g = scale === 1 ? grads[p.name] : tf.mul(grads[p.name], scale);
        adamUpdate(p, g, this.m[i], this.v[i], t, h);
      });
    });
  }

  /** Copies of the moments and the step count, to roll back with {@link restore}. */
  snapshot(): { m: tf.Tensor[]; v: tf.Tensor[]; step: number } {
    return { m: this.m.map((x) => tf.clone(x)), v: this.v.map((x) => tf.clone(x)), step: this.step };
  }

  /** Back to a {@link snapshot} (which the caller still disposes). */
  restore(s: { m: tf.Tensor[]; v: tf.Tensor[]; step: number }): void {
    this.m.forEach((x, i) => x.assign(s.m[i]));
    this.v.forEach((x, i) => x.assign(s.v[i]));
    this.step = s.step;
  }

  dispose(): void {
    tf.dispose([...this.m, ...this.v]);
  }
}
