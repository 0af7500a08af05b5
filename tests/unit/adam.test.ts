/**
 * Adam against PyTorch's AdamW (golden fixture from scripts/golden/adam_reference.py), on the cpu
 * and wasm backends, through the TF.js ops (`adamUpdate`) and the fused wasm kernel
 * (`adamUpdateFused`, model/kernels/adam-kernel.ts); then the fused kernel gives the same bits as
 * the TF.js ops over several steps, with clipping scales, weight decay and sizes that are not
 * multiples of the SIMD width, and `Adam.apply` takes it on the CPU-side backends.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { tf, useBackend, type TestBackend } from './tf-backends';
import { Adam, adamUpdate, adamUpdateFused, zerosSlot } from '../../src/lib/rlhf/adam';
import { disableFusedAdam, fusedAdamAvailable } from '../../src/lib/model/kernels/adam-kernel';
import { Rng } from '../../src/lib/model/rng';

interface Golden {
  hyper: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number };
  w: number[][];
  b: number[];
  grads: { w: number[][]; b: number[] }[];
  after: { w: number[][]; b: number[] }[];
}
const golden = JSON.parse(readFileSync('tests/golden/adam.json', 'utf8')) as Golden;

afterEach(() => disableFusedAdam(false));

describe.each<TestBackend>(['cpu', 'wasm'])('Adam on %s', (backend) => {
  for (const path of ['TF.js ops', 'fused kernel'] as const) {
    it(`${path}: matches PyTorch AdamW for three steps, weight decay on the matrix only`, async () => {
      await useBackend(backend);
      const w = tf.variable(tf.tensor2d(golden.w));
      const b = tf.variable(tf.tensor1d(golden.b));
      const slots = [w, b].map((p) => [zerosSlot(p), zerosSlot(p)] as const);
      const before = tf.memory().numTensors;
      for (const [i, g] of golden.grads.entries()) {
        tf.tidy(() => {
          const gw = tf.tensor2d(g.w);
          const gb = tf.tensor1d(g.b);
          if (path === 'TF.js ops') {
            adamUpdate(w, gw, slots[0][0], slots[0][1], i + 1, golden.hyper);
            adamUpdate(b, gb, slots[1][0], slots[1][1], i + 1, golden.hyper);
          } else {
            adamUpdateFused(
              [
                { p: w, g: gw, m: slots[0][0], v: slots[0][1] },
                { p: b, g: gb, m: slots[1][0], v: slots[1][1] },
              ],
              i + 1,
              golden.hyper,
            );
          }
        });
        const want = golden.after[i];
        const gotW = (await w.array()) as number[][];
        const gotB = (await b.array()) as number[];
        gotW.flat().forEach((x, j) => expect(x).toBeCloseTo(want.w.flat()[j], 5));
        gotB.forEach((x, j) => expect(x).toBeCloseTo(want.b[j], 5));
      }
      // Nothing leaks: the moments and parameters are replaced, not duplicated.
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([w, b, ...slots.flat()]);
    });
  }

  it('the fused kernel gives the same bits as the TF.js ops (scales, weight decay, ragged sizes, 5 steps)', async () => {
    await useBackend(backend);
    expect(fusedAdamAvailable()).toBe(true);
    const rng = new Rng(3);
    const shapes = [[7, 13], [5], [64, 33], [1], [4, 4]];
    const init = shapes.map((s) => Float32Array.from({ length: s.reduce((a, x) => a * x, 1) }, () => rng.next() - 0.5));
    const make = () => {
      const ps = shapes.map((s, i) => tf.variable(tf.tensor(init[i], s)));
      return { ps, ms: ps.map((p) => zerosSlot(p)), vs: ps.map((p) => zerosSlot(p)) };
    };
    const a = make();
    const b = make();
    const hyper = { beta1: 0.9, beta2: 0.95, eps: 1e-8, lr: 3e-3, weightDecay: 0.1 };
    for (let t = 1; t <= 5; t++) {
      const scale = [1, 0.37, 1, 0.0123, 0.9999][t - 1];
      const gs = shapes.map((s) =>
        tf.tensor(
          Float32Array.from({ length: s.reduce((x, y) => x * y, 1) }, () => (rng.next() - 0.5) * 10 ** (t - 3)),
          s,
        ),
      );
      tf.tidy(() =>
        a.ps.forEach((p, i) => adamUpdate(p, scale === 1 ? gs[i] : tf.mul(gs[i], scale), a.ms[i], a.vs[i], t, hyper)),
      );
      adamUpdateFused(
        b.ps.map((p, i) => ({ p, g: gs[i], m: b.ms[i], v: b.vs[i] })),
        t,
        hyper,
        scale,
      );
      tf.dispose(gs);
      for (const key of ['ps', 'ms', 'vs'] as const)
        a[key].forEach((x, i) => expect(Array.from(b[key][i].dataSync())).toEqual(Array.from(x.dataSync())));
    }
    tf.dispose([...a.ps, ...a.ms, ...a.vs, ...b.ps, ...b.ms, ...b.vs]);
  });

  it('Adam.apply: fused and TF.js paths agree bit for bit, clipping by a read norm or a device norm', async () => {
    await useBackend(backend);
    for (const how of ['number', 'tensor'] as const) {
      const out: number[][] = [];
      for (const off of [false, true]) {
        disableFusedAdam(off);
        expect(fusedAdamAvailable()).toBe(!off);
        const w = tf.variable(
          tf.tensor2d([
            [0.5, -1, 2],
            [3, 0.25, -0.75],
          ]),
        );
        const bias = tf.variable(tf.tensor1d([0.1, -0.2, 0.3]));
        const adam = new Adam([w, bias], { beta1: 0.9, beta2: 0.999, eps: 1e-5, weightDecay: 0.01 });
        const before = tf.memory().numTensors;
        for (let step = 0; step < 3; step++) {
          const g = {
            [w.name]: tf.tensor2d([
              [3, -4, 1],
              [0, 12, -2],
            ]),
            [bias.name]: tf.tensor1d([1, -2, step]),
          };
          const n = adam.gradNorm(g);
          adam.apply(g, how === 'number' ? n.dataSync()[0] : n, { lr: 0.01, maxGradNorm: 1 });
          tf.dispose([n, ...Object.values(g)]);
        }
        expect(tf.memory().numTensors).toBe(before);
        out.push([...w.dataSync(), ...bias.dataSync(), ...adam.m[0].dataSync(), ...adam.v[1].dataSync()]);
        adam.dispose();
        tf.dispose([w, bias]);
      }
      expect(out[0]).toEqual(out[1]);
    }
  });
});
