/**
 * PPO end to end on a one-token bandit: vocabulary 4, a trainable logits vector as the policy, a
 * trainable scalar as the value baseline, reward 1 for token 2 and 0 otherwise. Each iteration
 * samples a batch (seeded), computes advantages with GAE (T = 1) and whitens them, then runs a
 * few PPO epochs of clipped policy + clipped value loss with Adam. The policy must put > 0.9 on
 * token 2 within a bounded number of iterations, deterministically, without leaking tensors.
 */
import { describe, expect, test } from 'vitest';
import { tf, useBackend, type TestBackend } from './tf-backends';
import { Rng } from '../../src/lib/model/rng';
import { gae, logprobsOfTokens, ppoPolicyLossT, ppoValueLossT, whiten } from '../../src/lib/rlhf';

const VOCAB = 4;
const GOOD = 2;
const BATCH = 32;
const PPO_EPOCHS = 4;
const CLIP = 0.2;
const VF_COEF = 0.5;
const MAX_ITERS = 15;

let banditCount = 0;

interface Bandit {
  step(): Promise<{ probGood: number; clipfrac: number; loss: number }>;
  dispose(): void;
}

function makeBandit(seed: number): Bandit {
  // tf.variable shares the initial tensor's data; dispose the initial tensors so that they do not
  // count as leaks.
  const init = [tf.zeros([VOCAB]), tf.scalar(0)];
  const logits = tf.variable(init[0], true, `bandit_logits_${++banditCount}`);
  const value = tf.variable(init[1], true, `bandit_value_${banditCount}`);
  tf.dispose(init);
  // Adam with explicit epsilon: TF.js's default (backend epsilon) differs between float32
  // backends and would make the curves backend-dependent.
  const optimizer = tf.train.adam(0.1, 0.9, 0.999, 1e-8);
  const rng = new Rng(seed);
  const ones = Array.from({ length: BATCH }, () => [1]);

  async function step() {
    // Rollout: one read-back of the policy, sampling on the CPU with the seeded generator.
    const probsT = tf.softmax(logits);
    const probs = Array.from(await probsT.data());
    probsT.dispose();
    const v0 = (await value.data())[0];
    const tokens: number[][] = [];
    for (let i = 0; i < BATCH; i++) {
      let u = rng.next();
      let k = 0;
      while (k < VOCAB - 1 && u >= probs[k]) u -= probs[k++];
      tokens.push([k]);
    }
    const oldLogprobs = tokens.map(([k]) => [Math.log(probs[k])]);
    const rewards = tokens.map(([k]) => [k === GOOD ? 1 : 0]);
    const oldValues = tokens.map(() => [v0]);
    const { advantages, returns } = gae(rewards, oldValues, ones, 1, 0.95);
    const adv = whiten(advantages, ones);

    const [tokT, oldT, advT, oldVT, retT, maskT] = [
      tf.tensor2d(tokens, undefined, 'int32'),
      tf.tensor2d(oldLogprobs),
      tf.tensor2d(adv),
      tf.tensor2d(oldValues),
      tf.tensor2d(returns),
      tf.tensor2d(ones),
    ];
    let clipfrac = 0;
    let loss = 0;
    for (let epoch = 0; epoch < PPO_EPOCHS; epoch++) {
      let kept: tf.Scalar | null = null;
      const cost = optimizer.minimize(() => {
        const batchLogits = tf.mul(tf.ones([BATCH, 1, VOCAB]), logits) as tf.Tensor3D; // [B, 1, V]
        const lp = logprobsOfTokens(batchLogits, tokT as tf.Tensor2D);
        const pol = ppoPolicyLossT(lp, oldT, advT, maskT, CLIP);
        const vpred = tf.mul(tf.onesLike(oldVT), value);
        const val = ppoValueLossT(vpred, oldVT, retT, maskT, CLIP);
        kept = tf.keep(pol.clipfrac); // a metric out of the optimizer's tidy; disposed below
        return tf.add(pol.loss, tf.mul(val.loss, VF_COEF)) as tf.Scalar;
      }, true);
      const k = kept as tf.Scalar | null;
      // One read-back per step for all metrics.
      const both = tf.stack([cost!, k!]);
      const [l, c] = await both.data();
      loss = l;
      clipfrac = Math.max(clipfrac, c);
      tf.dispose([cost!, k!, both]);
    }
    tf.dispose([tokT, oldT, advT, oldVT, retT, maskT]);
    const after = tf.tidy(() => tf.softmax(logits));
    const probGood = (await after.data())[GOOD];
    after.dispose();
    return { probGood, clipfrac, loss };
  }

  return {
    step,
    dispose() {
      optimizer.dispose();
      tf.dispose([logits, value]);
    },
  };
}

async function train(seed: number, iters: number): Promise<number[]> {
  const bandit = makeBandit(seed);
  const curve: number[] = [];
  for (let i = 0; i < iters; i++) curve.push((await bandit.step()).probGood);
  bandit.dispose();
  return curve;
}

describe.each<TestBackend>(['cpu', 'wasm'])('PPO bandit on %s', (backend) => {
  test('converges to the rewarded token, clipping along the way, deterministically', async () => {
    await useBackend(backend);
    const bandit = makeBandit(1);
    const curve: number[] = [];
    let clipped = false;
    for (let i = 0; i < MAX_ITERS; i++) {
      const s = await bandit.step();
      curve.push(s.probGood);
      clipped ||= s.clipfrac > 0;
      if (s.probGood > 0.9) break;
    }
    bandit.dispose();
    expect(curve.at(-1)!).toBeGreaterThan(0.9);
    expect(clipped).toBe(true);
    // Same seed and backend, same curve.
    expect(await train(1, curve.length)).toEqual(curve);
  });

  test('no tensor growth over 20 iterations', async () => {
    await useBackend(backend);
    const start = tf.memory().numTensors;
    const bandit = makeBandit(3);
    await bandit.step(); // the first minimize creates Adam's moment variables
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) await bandit.step();
    expect(tf.memory().numTensors).toBe(before);
    bandit.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });
});
