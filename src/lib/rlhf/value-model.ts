/**
 * The PPO value model (critic): a GPT trunk and a scalar head at every position.
 *
 * Follows:
 *  - TRL `trl/trainer/ppo_trainer.py`: the value model is a separate network (by default a copy
 *    of the reward model, `AutoModelForSequenceClassification`, whose `score` head is a linear
 *    map of the last hidden state), evaluated at every token rather than only the last one.
 *  - Huang et al. 2024, "The N Implementation Details of RLHF with PPO": the value network is
 *    initialised from the reward model (or the policy) trunk; a fresh head starts at zero so the
 *    first values carry no signal and no noise.
 *
 * Shapes: idx int32 [B, T] → hidden [B, T, C] (after ln_f) → values [B, T]. The value at
 * position t is V(state after tokens 0..t), i.e. the value of generating token t+1.
 *
 * The head is `score.weight` [1, C] and `score.bias` [1] (HF's GPT2ForSequenceClassification
 * name; HF has no bias there, ours starts at 0). It is applied as sum(hidden · w) + b, an
 * elementwise product and a sum, whose gradient needs no transposed matMul (slow on wasm).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT } from '../model/gpt';

/** A scalar head: weight [C] (row of HF's `score.weight` [1, C]) and bias. */
export interface ScalarHead {
  weight: Float32Array;
  bias: number;
}

let valueCounter = 0;

export class ValueModel {
  readonly trunk: GPT;
  /** [C] */
  readonly headWeight: tf.Variable<tf.Rank.R1>;
  /** [] */
  readonly headBias: tf.Variable<tf.Rank.R0>;

  /** The trunk is another model's, frozen and run with its LoRA adapters off ({@link ValueModel.onFrozenBase}). */
  readonly sharedTrunk: boolean;

  /**
   * Takes ownership of `trunk` (a trainable GPT; use {@link ValueModel.fromTrunk} to copy one).
   * `head` defaults to zeros.
   */
  constructor(trunk: GPT, head?: ScalarHead, shared = false) {
    this.sharedTrunk = shared;
    const C = trunk.config.nEmbd;
    if (head && head.weight.length !== C)
      throw new RangeError(`ValueModel: head weight has ${head.weight.length} entries, the trunk width is ${C}`);
    if (head && !(Number.isFinite(head.bias) && head.weight.every(Number.isFinite)))
      throw new RangeError('ValueModel: head weights must be finite');
    this.trunk = trunk;
    const id = valueCounter++;
    const w0 = head ? tf.tensor1d(head.weight, 'float32') : tf.zeros([C], 'float32');
    const b0 = tf.scalar(head?.bias ?? 0, 'float32');
    this.headWeight = tf.variable(w0, true, `value${id}/score.weight`) as tf.Variable<tf.Rank.R1>;
    this.headBias = tf.variable(b0, true, `value${id}/score.bias`);
    tf.dispose([w0, b0]); // the variables hold their own reference to the data
  }

  /** A value model on a trainable copy of `trunk` (the policy, or the reward model's trunk). */
  static fromTrunk(trunk: GPT, head?: ScalarHead): ValueModel {
    return new ValueModel(trunk.clone({ trainable: true }), head);
  }

  /**
   * A value head on `model`'s frozen base (its LoRA adapters off), which it neither copies nor
   * owns: a LoRA run's critic costs C + 1 parameters and no second trunk (the frozen trunk is
   * shared, as PEFT setups share it; only the head learns).
   */
  static onFrozenBase(model: GPT, head?: ScalarHead): ValueModel {
    return new ValueModel(model, head, true);
  }

  /** values [B, T] of idx int32 [B, T]; trainable under tf.variableGrads. */
  values(idx: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const run = () => this.trunk.hiddenStates(idx); // no LM head: its logits were never read
      return this.valuesOf(this.sharedTrunk ? this.trunk.withoutAdapters(run) : run());
    });
  }

  /** values [B, T] from the trunk's hidden state [B, T, C] (after ln_f). */
  valuesOf(hidden: tf.Tensor3D): tf.Tensor2D {
    return tf.tidy(() => tf.add(tf.sum(tf.mul(hidden, this.headWeight), -1), this.headBias) as tf.Tensor2D);
  }

  trainableVariables(): tf.Variable[] {
    if (this.sharedTrunk) return [this.headWeight, this.headBias];
    return [...this.trunk.trainableVariables(), this.headWeight, this.headBias];
  }

  /** Every parameter by name: the trunk's HF names (not when shared), then `score.weight` and `score.bias`. */
  namedVariables(): Map<string, tf.Variable> {
    const m = new Map<string, tf.Variable>(this.sharedTrunk ? [] : this.trunk.params);
    m.set('score.weight', this.headWeight);
    m.set('score.bias', this.headBias);
    return m;
  }

  dispose(): void {
    if (!this.sharedTrunk) this.trunk.dispose();
    this.headWeight.dispose();
    this.headBias.dispose();
  }
}
