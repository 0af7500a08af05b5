import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { adamUpdate, zerosSlot } from '../../src/lib/rlhf/adam';

interface Golden {
  hyper: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number };
  w: number[][];
  b: number[];
  grads: { w: number[][]; b: number[] }[];
  after: { w: number[][]; b: number[] }[];
}
const golden = JSON.parse(readFileSync('tests/golden/adam.json', 'utf8')) as Golden;

describe('adamUpdate against PyTorch AdamW (scripts/golden/adam_reference.py)', () => {
  it('matches three steps, weight decay on the matrix only', async () => {
    await tf.setBackend('cpu');
    const w = tf.variable(tf.tensor2d(golden.w));
    const b = tf.variable(tf.tensor1d(golden.b));
    const slots = [w, b].map((p) => [zerosSlot(p), zerosSlot(p)] as const);
    const before = tf.memory().numTensors;
    for (const [i, g] of golden.grads.entries()) {
      tf.tidy(() => {
        adamUpdate(w, tf.tensor2d(g.w), slots[0][0], slots[0][1], i + 1, golden.hyper);
        adamUpdate(b, tf.tensor1d(g.b), slots[1][0], slots[1][1], i + 1, golden.hyper);
      });
      const want = golden.after[i];
      const gotW = (await w.array()) as number[][];
      const gotB = (await b.array()) as number[];
      gotW.flat().forEach((x, j) => expect(x).toBeCloseTo(want.w.flat()[j], 5));
      gotB.forEach((x, j) => expect(x).toBeCloseTo(want.b[j], 5));
    }
    // Nothing leaks: the moments and parameters are updated in place.
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([w, b, ...slots.flat()]);
  });
});
