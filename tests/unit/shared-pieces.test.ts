/**
 * The pieces every trainer shares (issue 15, "one of each"): the seeded permutation and seed
 * derivation (`model/rng.ts`), the prompt split (`data/split.ts`), and the `Adam` class around
 * the golden-tested `adamUpdate` (`rlhf/adam.ts`).
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { deriveSeed, permutation, Rng, shuffleInPlace } from '../../src/lib/model/rng';
import { splitByPrompt } from '../../src/lib/data/split';
import { Adam, adamUpdate, clipScale, zerosSlot } from '../../src/lib/rlhf/adam';

describe('seeded permutation', () => {
  it('is the Fisher–Yates stream the trainers drew before (j = rng.int(i + 1) from the end)', () => {
    // The loop PPO, the reward model and SFT/DPO each had, written out once more.
    const reference = (n: number, rng: Rng) => {
      const p = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [p[i], p[j]] = [p[j], p[i]];
      }
      return p;
    };
    for (const seed of [0, 1, 42]) expect(permutation(50, new Rng(seed))).toEqual(reference(50, new Rng(seed)));
    const p = permutation(50, new Rng(3));
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(p).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('shuffleInPlace of items is the permutation applied to them', () => {
    const items = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const order = permutation(items.length, new Rng(9));
    const shuffled = shuffleInPlace([...items], new Rng(9));
    expect(shuffled).toEqual(order.map((i) => items[i]));
  });
});

describe('deriveSeed', () => {
  it('is a function of its parts, and different parts give different seeds', () => {
    expect(deriveSeed(7, 0)).toBe(deriveSeed(7, 0));
    const seen = new Set<number>();
    for (let seed = 0; seed < 20; seed++) for (let n = 0; n < 50; n++) seen.add(deriveSeed(seed, n));
    expect(seen.size).toBe(1000);
    expect(deriveSeed(1, 2)).not.toBe(deriveSeed(2, 1));
    expect(deriveSeed(5)).not.toBe(deriveSeed(5, 0));
    // Large whole numbers (past 2³²) are told apart too; the result is a uint32, a valid sampling seed.
    expect(deriveSeed(2 ** 40)).not.toBe(deriveSeed(0));
    const s = deriveSeed(-3, 2 ** 45);
    expect(Number.isSafeInteger(s) && s >= 0 && s < 2 ** 32).toBe(true);
    expect(() => deriveSeed(1.5)).toThrow(/whole numbers/);
  });
});

describe('splitByPrompt (data/split.ts)', () => {
  it('works for any items with a prompt, held-out prompts on one side only', () => {
    const items = Array.from({ length: 40 }, (_, i) => ({ prompt: `p${i % 10}`, n: i }));
    const s = splitByPrompt(items, 0.3, 4);
    expect(s.valPrompts).toHaveLength(3);
    expect(s.val.every((x) => s.valPrompts.includes(x.prompt))).toBe(true);
    expect(s.train.some((x) => s.valPrompts.includes(x.prompt))).toBe(false);
    expect(s.train.length + s.val.length).toBe(40);
    // Input order kept on both sides.
    expect(s.train.map((x) => x.n)).toEqual([...s.train.map((x) => x.n)].sort((a, b) => a - b));
  });
});

describe('Adam (one optimiser for every trainer)', () => {
  const setup = () => {
    const w = tf.variable(
      tf.tensor2d([
        [0.5, -1],
        [2, 0.25],
      ]),
    );
    const b = tf.variable(tf.tensor1d([0.1, -0.2]));
    const grads = () => ({
      [w.name]: tf.tensor2d([
        [3, -4],
        [0, 12],
      ]),
      [b.name]: tf.tensor1d([1, -2]),
    });
    return { w, b, grads };
  };

  it('clips by the global norm, read back or on the device, and matches adamUpdate on scaled gradients', async () => {
    await tf.setBackend('cpu');
    const hyper = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
    const results: number[][] = [];
    for (const how of ['number', 'tensor', 'reference'] as const) {
      const { w, b, grads } = setup();
      const g = grads();
      const norm = Math.sqrt(9 + 16 + 144 + 1 + 4); // 13.19…
      if (how === 'reference') {
        const m = [zerosSlot(w), zerosSlot(w)];
        const mb = [zerosSlot(b), zerosSlot(b)];
        const scale = 1 / (norm + 1e-6);
        tf.tidy(() => {
          adamUpdate(w, tf.mul(g[w.name], scale), m[0], m[1], 1, { ...hyper, lr: 0.01 });
          adamUpdate(b, tf.mul(g[b.name], scale), mb[0], mb[1], 1, { ...hyper, lr: 0.01 });
        });
        tf.dispose([...m, ...mb]);
      } else {
        const adam = new Adam([w, b], hyper);
        const n = adam.gradNorm(g);
        expect(await n.array()).toBeCloseTo(norm, 4);
        adam.apply(g, how === 'number' ? norm : n, { lr: 0.01, maxGradNorm: 1 });
        expect(adam.step).toBe(1);
        n.dispose();
        adam.dispose();
      }
      results.push([...(await w.data()), ...(await b.data())]);
      tf.dispose([w, b, ...Object.values(g)]);
    }
    results[1].forEach((x, i) => expect(x).toBeCloseTo(results[0][i], 6));
    results[2].forEach((x, i) => expect(x).toBeCloseTo(results[0][i], 6));
  });

  it('clipScale: 1 under the norm or with clipping off, maxNorm / norm above it', () => {
    expect(clipScale(0.5, 1)).toBe(1);
    expect(clipScale(100, 0)).toBe(1);
    expect(clipScale(4, 2)).toBeCloseTo(0.5, 6);
  });

  it('restore goes back to a snapshot (moments and step), names its moments, frees them on dispose', async () => {
    await tf.setBackend('cpu');
    const { w, b, grads } = setup();
    const adam = new Adam([w, b], { beta1: 0.9, beta2: 0.999, eps: 1e-8 }, 'test-adam');
    expect(adam.m[0].name).toBe(`test-adam-m/${w.name}`);
    expect(adam.v[1].name).toBe(`test-adam-v/${b.name}`);
    const g = grads();
    adam.apply(g, 1, { lr: 0.01, maxGradNorm: 0 });
    const snap = adam.snapshot();
    const m0 = Array.from(await adam.m[0].data());
    adam.apply(g, 1, { lr: 0.01, maxGradNorm: 0 });
    expect(Array.from(await adam.m[0].data())).not.toEqual(m0);
    adam.restore(snap);
    expect(adam.step).toBe(1);
    expect(Array.from(await adam.m[0].data())).toEqual(m0);
    tf.dispose([...snap.m, ...snap.v, ...Object.values(g)]);
    const before = tf.memory().numTensors;
    adam.dispose();
    expect(tf.memory().numTensors).toBe(before - 4);
    tf.dispose([w, b]);
  });
});
