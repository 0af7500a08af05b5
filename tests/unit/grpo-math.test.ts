/**
 * GRPO / RLOO maths (src/lib/rlhf/grpo-loss.ts) against tests/golden/grpo.json, written by an
 * independent PyTorch implementation of TRL's formulas (scripts/golden/grpo_reference.py):
 * advantages in the three scale modes, leave-one-out advantages and their normalisation, the
 * four GRPO loss aggregations with β 0 and > 0, padded and truncated rows, and RLOO's
 * sequence-level loss. The array API (float64) must agree to 1e-6 relative; the tensor API
 * (float32, what training uses) to 1e-4, gradients included.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { tf, useBackend } from './tf-backends';
import {
  grpoAdvantages,
  grpoLoss,
  grpoLossT,
  groupStats,
  normalizeAdvantages,
  rlooAdvantages,
  rlooLoss,
  rlooLossT,
  type GrpoLossType,
  type GrpoScaleRewards,
  type Matrix,
} from '../../src/lib/rlhf';

interface LossCase {
  lossType: GrpoLossType;
  beta: number;
  epsilon: number;
  epsilonHigh: number | null;
  maxCompletionLength: number;
  loss: number;
  clipRatio: number;
  clipRatioLow: number;
  clipRatioHigh: number;
  kl: number;
  grad: Matrix;
}
interface Golden {
  advantages: {
    rewards: number[];
    groupSize: number;
    grpo: Record<GrpoScaleRewards, number[]>;
    std: Record<GrpoScaleRewards, number[]>;
    zeroStd: Record<GrpoScaleRewards, boolean[]>;
    rloo: number[];
    rlooNormalized: number[];
  }[];
  grpoLoss: {
    logprobs: Matrix;
    oldLogprobs: Matrix;
    refLogprobs: Matrix;
    advantages: number[];
    mask: Matrix;
    numItemsInBatch: number;
    cases: LossCase[];
  }[];
  rlooLoss: {
    logprobs: Matrix;
    oldLogprobs: Matrix;
    advantages: number[];
    mask: Matrix;
    cases: {
      epsilon: number;
      epsilonHigh: number | null;
      loss: number;
      clipRatio: number;
      clipRatioLow: number;
      clipRatioHigh: number;
      grad: Matrix;
    }[];
  }[];
}

const G = JSON.parse(readFileSync(new URL('../golden/grpo.json', import.meta.url), 'utf8')) as Golden;
const TOL_ARRAY = 1e-6;
const TOL_TENSOR = 1e-4;

/** |a − e| ≤ tol·max(|e|, floor) elementwise: relative, with an absolute floor for values near 0. */
function expectClose(actual: number | number[] | Matrix, expected: number | number[] | Matrix, tol: number, what = '') {
  const a = [actual].flat(2) as number[];
  const e = [expected].flat(2) as number[];
  expect(a.length, what).toBe(e.length);
  for (let i = 0; i < a.length; i++) {
    const bound = tol * Math.max(Math.abs(e[i]), 1e-3);
    expect(Math.abs(a[i] - e[i]), `${what} [${i}]: ${a[i]} vs ${e[i]}`).toBeLessThanOrEqual(bound);
  }
}

beforeAll(async () => {
  await useBackend('cpu');
});

describe('group advantages against the PyTorch reference', () => {
  test('grpoAdvantages in every scale mode, and the group std', () => {
    expect(G.advantages.length).toBeGreaterThanOrEqual(12);
    for (const c of G.advantages) {
      for (const scale of ['group', 'batch', 'none'] as const)
        expectClose(
          grpoAdvantages(c.rewards, c.groupSize, scale),
          c.grpo[scale],
          TOL_ARRAY,
          `${scale} G=${c.groupSize}`,
        );
      expectClose(groupStats(c.rewards, c.groupSize).std, c.std.group, TOL_ARRAY, `std G=${c.groupSize}`);
    }
    // The fixture has groups with zero spread: their advantages are exactly 0 ('group' and 'none').
    const flat = G.advantages.find((c) => c.zeroStd.group.some(Boolean))!;
    flat.zeroStd.group.forEach((z, i) => {
      if (z) expect(grpoAdvantages(flat.rewards, flat.groupSize, 'group')[i]).toBe(0);
    });
  });

  test('rlooAdvantages and their normalisation', () => {
    for (const c of G.advantages) {
      expectClose(rlooAdvantages(c.rewards, c.groupSize), c.rloo, TOL_ARRAY, `rloo G=${c.groupSize}`);
      expectClose(
        normalizeAdvantages(rlooAdvantages(c.rewards, c.groupSize)),
        c.rlooNormalized,
        TOL_ARRAY,
        `normalized G=${c.groupSize}`,
      );
    }
  });

  test('bad group sizes are refused with a message', () => {
    expect(() => grpoAdvantages([1, 2, 3], 2, 'group')).toThrow(/do not split into groups of 2/);
    expect(() => rlooAdvantages([1, 2], 1)).toThrow(/groupSize must be a whole number ≥ 2/);
    expect(() => grpoAdvantages([1, 2], 2, 'mean' as GrpoScaleRewards)).toThrow(/scaleRewards/);
  });
});

describe('grpoLoss against the PyTorch reference', () => {
  test('fixture covers every loss type, β 0 and > 0, ε_high, truncated rows', () => {
    const cases = G.grpoLoss.flatMap((f) => f.cases);
    expect(new Set(cases.map((c) => c.lossType))).toEqual(new Set(['grpo', 'bnpo', 'dr_grpo', 'dapo']));
    expect(new Set(cases.map((c) => c.beta)).size).toBe(2);
    expect(G.grpoLoss.some((f) => f.mask.some((row) => row.every((m) => m === 0)))).toBe(true);
    expect(cases.some((c) => c.clipRatioLow > 0) && cases.some((c) => c.clipRatioHigh > 0)).toBe(true);
  });

  test('array API: loss, clip ratios and KL', () => {
    for (const f of G.grpoLoss) {
      for (const c of f.cases) {
        const what = `${c.lossType} β=${c.beta} εh=${c.epsilonHigh} L=${c.maxCompletionLength}`;
        const r = grpoLoss(f.logprobs, f.oldLogprobs, c.beta ? f.refLogprobs : undefined, f.advantages, f.mask, {
          ...c,
          numItemsInBatch: f.numItemsInBatch,
        });
        expectClose(r.loss, c.loss, TOL_ARRAY, `${what} loss`);
        expectClose(r.clipRatio, c.clipRatio, TOL_ARRAY, `${what} region`);
        expectClose(r.clipRatioLow, c.clipRatioLow, TOL_ARRAY, `${what} low`);
        expectClose(r.clipRatioHigh, c.clipRatioHigh, TOL_ARRAY, `${what} high`);
        expectClose(r.kl, c.kl, TOL_ARRAY, `${what} kl`);
      }
    }
  });

  test("dapo without numItemsInBatch divides by the mask's tokens (= bnpo)", () => {
    const f = G.grpoLoss[1];
    const opts = { epsilon: 0.2, beta: 0.04, maxCompletionLength: 7 };
    const dapo = grpoLoss(f.logprobs, f.oldLogprobs, f.refLogprobs, f.advantages, f.mask, {
      ...opts,
      lossType: 'dapo',
    });
    const bnpo = grpoLoss(f.logprobs, f.oldLogprobs, f.refLogprobs, f.advantages, f.mask, {
      ...opts,
      lossType: 'bnpo',
    });
    expect(dapo.loss).toBeCloseTo(bnpo.loss, 12);
  });

  test('β ≠ 0 without reference log-probs is refused', () => {
    const f = G.grpoLoss[0];
    const opts = { epsilon: 0.2, beta: 0.1, lossType: 'grpo' as const, maxCompletionLength: 7 };
    expect(() => grpoLoss(f.logprobs, f.oldLogprobs, undefined, f.advantages, f.mask, opts)).toThrow(/refLogprobs/);
  });

  test('tensor API: values and gradient with respect to the log-probs', async () => {
    for (const f of G.grpoLoss) {
      for (const c of f.cases) {
        const what = `${c.lossType} β=${c.beta} εh=${c.epsilonHigh}`;
        const [old, ref, adv, mask] = [
          tf.tensor2d(f.oldLogprobs),
          tf.tensor2d(f.refLogprobs),
          tf.tensor1d(f.advantages),
          tf.tensor2d(f.mask),
        ];
        const lp = tf.tensor2d(f.logprobs);
        const opts = { ...c, numItemsInBatch: f.numItemsInBatch };
        const stats = tf.tidy(() => {
          const r = grpoLossT(lp, old, c.beta ? ref : null, adv, mask, opts);
          return tf.stack([r.loss, r.clipRatio, r.clipRatioLow, r.clipRatioHigh, r.kl]);
        });
        const grad = tf.grad(
          (x: tf.Tensor) => grpoLossT(x as tf.Tensor2D, old, c.beta ? ref : null, adv, mask, opts).loss,
        )(lp);
        const [loss, region, low, high, kl] = Array.from(await stats.data());
        expectClose(loss, c.loss, TOL_TENSOR, `${what} loss`);
        expectClose([region, low, high, kl], [c.clipRatio, c.clipRatioLow, c.clipRatioHigh, c.kl], TOL_TENSOR, what);
        expectClose(Array.from(await grad.data()), c.grad.flat(), TOL_TENSOR, `${what} grad`);
        tf.dispose([old, ref, adv, mask, lp, stats, grad]);
      }
    }
  });
});

describe('rlooLoss against the PyTorch reference', () => {
  test('array and tensor API, gradient included', async () => {
    expect(G.rlooLoss.flatMap((f) => f.cases).some((c) => c.clipRatio > 0)).toBe(true);
    for (const f of G.rlooLoss) {
      for (const c of f.cases) {
        const what = `rloo εh=${c.epsilonHigh}`;
        const r = rlooLoss(f.logprobs, f.oldLogprobs, f.advantages, f.mask, c.epsilon, c.epsilonHigh);
        expectClose(
          [r.loss, r.clipRatio, r.clipRatioLow, r.clipRatioHigh],
          [c.loss, c.clipRatio, c.clipRatioLow, c.clipRatioHigh],
          TOL_ARRAY,
          what,
        );
        const [old, adv, mask, lp] = [
          tf.tensor2d(f.oldLogprobs),
          tf.tensor1d(f.advantages),
          tf.tensor2d(f.mask),
          tf.tensor2d(f.logprobs),
        ];
        const stats = tf.tidy(() => {
          const t = rlooLossT(lp, old, adv, mask, c.epsilon, c.epsilonHigh);
          return tf.stack([t.loss, t.clipRatio, t.clipRatioLow, t.clipRatioHigh]);
        });
        const grad = tf.grad(
          (x: tf.Tensor) => rlooLossT(x as tf.Tensor2D, old, adv, mask, c.epsilon, c.epsilonHigh).loss,
        )(lp);
        expectClose(
          Array.from(await stats.data()),
          [c.loss, c.clipRatio, c.clipRatioLow, c.clipRatioHigh],
          TOL_TENSOR,
          what,
        );
        expectClose(Array.from(await grad.data()), c.grad.flat(), TOL_TENSOR, `${what} grad`);
        tf.dispose([old, adv, mask, lp, stats, grad]);
      }
    }
  });
});
