/**
 * The pretraining step that `scripts/pretrain.ts` (Node) and the app's engine (the worker) share:
 * random windows of the token stream, next-token cross-entropy, AdamW with decoupled weight decay
 * on matrices only (β 0.9 / β2, ε 1e-8 given explicitly, as nanoGPT's `configure_optimizers`),
 * global-norm gradient clipping, and a learning rate with linear warm-up then cosine decay to
 * `minLr` (nanoGPT `train.py`, `get_lr`). Loshchilov & Hutter 2019 for AdamW.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT } from '../model/gpt';
import { batchFrom } from '../model/evaluate';
import type { Rng } from '../model/rng';

export interface Schedule {
  /** Peak learning rate. */
  lr: number;
  /** Final learning rate of the cosine. */
  minLr: number;
  /** Steps of linear warm-up. */
  warmup: number;
  /** Total steps: the cosine ends here. */
  steps: number;
}

/** Learning rate at `step` (0-based): linear warm-up, then cosine from lr to minLr at `steps`. */
export function lrAt(s: Schedule, step: number): number {
  if (step < s.warmup) return (s.lr * (step + 1)) / s.warmup;
  const progress = Math.min(1, (step - s.warmup) / Math.max(1, s.steps - s.warmup));
  return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}

export interface OptimiserSettings {
  beta2: number;
  weightDecay: number;
  gradClip: number;
}

export const BETA1 = 0.9;
/** Explicit: TF.js's default epsilon depends on the backend. */
export const ADAM_EPS = 1e-8;

/** AdamW on a GPT's parameters: the moments, and one step of the loss over a batch. */
export class PretrainOptimiser {
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  private readonly vars: [string, tf.Variable][];
  private readonly decayed: Set<string>;

  constructor(
    readonly model: GPT,
    public settings: OptimiserSettings,
    namePrefix = 'pretrain-adam',
  ) {
    this.vars = [...model.params.entries()];
    for (const [name, p] of this.vars) {
      this.m.set(name, tf.variable(tf.zerosLike(p), false, `${namePrefix}-m/${name}`));
      this.v.set(name, tf.variable(tf.zerosLike(p), false, `${namePrefix}-v/${name}`));
    }
    this.decayed = new Set(this.vars.filter(([, p]) => p.shape.length >= 2).map(([n]) => n));
  }

  /**
   * One AdamW step at Adam time `t` (1-based) and learning rate `lr` on the windows starting at
   * `starts` of `ids`; returns the loss before the step and the gradient norm before clipping.
   */
  async step(ids: Int32Array, starts: number[], t: number, lr: number): Promise<{ loss: number; gradNorm: number }> {
    const T = this.model.config.blockSize;
    const { beta2, weightDecay, gradClip } = this.settings;
    const { x, y } = batchFrom(ids, starts, T);
    const trainable = this.model.trainableVariables();
    const stats = tf.tidy(() => {
      const { value: loss, grads } = tf.variableGrads(() => this.model.loss(x, y), trainable);
      const sq = this.vars.map(([, p]) => tf.sum(tf.square(grads[p.name])));
      const norm = tf.sqrt(tf.addN(sq));
      const scale = tf.minimum(1, tf.div(gradClip, tf.add(norm, 1e-6))); // clip by global norm
      const bc1 = 1 - BETA1 ** t;
      const bc2 = 1 - beta2 ** t;
      for (const [name, p] of this.vars) {
        const g = tf.mul(grads[p.name], scale);
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        m.assign(tf.add(tf.mul(m, BETA1), tf.mul(g, 1 - BETA1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.mul(g, g), 1 - beta2)));
        let update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), ADAM_EPS));
        if (weightDecay > 0 && this.decayed.has(name)) update = tf.add(update, tf.mul(p, weightDecay));
        p.assign(tf.sub(p, tf.mul(update, lr)));
      }
      return tf.stack([loss, norm]);
    });
    const [loss, gradNorm] = await stats.data(); // one read-back per step
    tf.dispose([x, y, stats]);
    return { loss, gradNorm };
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** Starts of `batch` random windows of T + 1 tokens in a stream of `length` tokens. */
export function randomStarts(rng: Rng, length: number, T: number, batch: number): number[] {
  return Array.from({ length: batch }, () => rng.int(length - T - 1));
}
