import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { tf, useBackend, type TestBackend } from './tf-backends';
import { GPT, parameterShapes } from '../../src/lib/model/gpt';
import { ModelLoadError } from '../../src/lib/model/errors';
import type { GPTConfig } from '../../src/lib/model/config';

interface Golden {
  config: GPTConfig;
  weights: Record<string, { shape: number[]; data: number[] }>;
  idx: number[][];
  targets: number[][];
  mask: number[][];
  logits: number[];
  loss: number;
  maskedLoss: number;
  grads: Record<string, number[]>;
  maskedGrads: Record<string, number[]>;
}

const golden = JSON.parse(readFileSync(new URL('../golden/gpt-tiny.json', import.meta.url), 'utf8')) as Golden;
const TOL = 1e-4;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function goldenModel(): GPT {
  const model = new GPT(golden.config, { seed: 0 });
  const map = new Map<string, tf.Tensor>();
  for (const [name, w] of Object.entries(golden.weights)) map.set(name, tf.tensor(w.data, w.shape));
  model.setWeights(map);
  tf.dispose([...map.values()]);
  return model;
}

const SMALL: GPTConfig = { vocabSize: 23, blockSize: 12, nLayer: 2, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 };

describe.each<TestBackend>(['cpu', 'wasm'])('GPT on %s', (backend) => {
  test('matches the PyTorch reference: logits, loss, gradients', async () => {
    await useBackend(backend);
    const model = goldenModel();
    const idx = tf.tensor2d(golden.idx, undefined, 'int32');
    const targets = tf.tensor2d(golden.targets, undefined, 'int32');
    const mask = tf.tensor2d(golden.mask);

    const { logits } = model.forward(idx);
    expect(logits.shape).toEqual([golden.idx.length, golden.config.blockSize, golden.config.vocabSize]);
    expect(maxAbsDiff(await logits.data(), golden.logits)).toBeLessThan(TOL);

    const vars = model.trainableVariables();
    for (const [lossFn, wantLoss, wantGrads] of [
      [() => model.loss(idx, targets), golden.loss, golden.grads],
      [() => model.loss(idx, targets, mask), golden.maskedLoss, golden.maskedGrads],
    ] as const) {
      const { value, grads } = tf.variableGrads(lossFn, vars);
      expect(Math.abs((await value.data())[0] - wantLoss)).toBeLessThan(TOL);
      for (const [name, want] of Object.entries(wantGrads)) {
        const g = grads[model.params.get(name)!.name];
        expect(maxAbsDiff(await g.data(), want), name).toBeLessThan(TOL);
      }
      tf.dispose([value, ...Object.values(grads)]);
    }
    tf.dispose([idx, targets, mask, logits]);
    model.dispose();
  });

  test('no tensors leak across forward, loss, cached forward and gradient calls', async () => {
    await useBackend(backend);
    const model = new GPT(SMALL, { seed: 3 });
    const idx = tf.tensor2d(
      [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
      ],
      undefined,
      'int32',
    );
    const run = () => {
      const out = model.forward(idx, { returnHidden: true });
      tf.dispose([out.logits, out.hidden!]);
      model.loss(idx, idx).dispose();
      const { value, grads } = tf.variableGrads(() => model.loss(idx, idx), model.trainableVariables());
      tf.dispose([value, ...Object.values(grads)]);
      const cache = model.createCache(2, [0, 1]);
      model.forwardCached(idx, cache).dispose();
      const headT = cache.headT; // the tied head's transpose, made once per cache
      expect(headT?.shape).toEqual([SMALL.nEmbd, SMALL.vocabSize]);
      const next = tf.slice(idx, [0, 0], [2, 1]);
      model.forwardCached(next, cache).dispose();
      expect(cache.headT).toBe(headT);
      next.dispose();
      cache.dispose();
      expect(cache.headT).toBeNull();
    };
    run();
    const before = tf.memory().numTensors;
    run();
    run();
    expect(tf.memory().numTensors).toBe(before);
    idx.dispose();
    model.dispose();
  });

  test('causal: changing a future token leaves earlier logits unchanged', async () => {
    await useBackend(backend);
    const model = new GPT(SMALL, { seed: 5 });
    const a = [3, 1, 4, 1, 5, 9, 2, 6];
    const b = [...a];
    b[5] = 7;
    const la = model.forward(tf.tensor2d([a], undefined, 'int32')).logits;
    const lb = model.forward(tf.tensor2d([b], undefined, 'int32')).logits;
    const V = SMALL.vocabSize;
    const da = await la.data();
    const db = await lb.data();
    expect(maxAbsDiff(da.slice(0, 5 * V), db.slice(0, 5 * V))).toBeLessThan(1e-6);
    expect(maxAbsDiff(da.slice(5 * V), db.slice(5 * V))).toBeGreaterThan(1e-3);
    model.dispose();
  });

  test('returnHidden gives [B, T, C] and training lowers the loss', async () => {
    await useBackend(backend);
    const model = new GPT(SMALL, { seed: 9 });
    const idx = tf.tensor2d([[1, 2, 3, 4, 5, 6]], undefined, 'int32');
    const targets = tf.tensor2d([[2, 3, 4, 5, 6, 7]], undefined, 'int32');
    const { hidden } = model.forward(idx, { returnHidden: true });
    expect(hidden!.shape).toEqual([1, 6, SMALL.nEmbd]);
    // hiddenStates: the same numbers without the LM head, and a gradient through them.
    const h2 = model.hiddenStates(idx);
    expect(Array.from(await h2.data())).toEqual(Array.from(await hidden!.data()));
    const w = model.params.get('transformer.h.0.mlp.c_fc.weight')!;
    const { grads } = tf.variableGrads(() => tf.sum(tf.square(model.hiddenStates(idx))) as tf.Scalar, [w]);
    expect(Math.max(...Array.from(await grads[w.name].data(), Math.abs))).toBeGreaterThan(0);
    tf.dispose([h2, hidden!, grads[w.name]]);
    const opt = tf.train.adam(1e-2, 0.9, 0.999, 1e-8);
    const first = (await model.loss(idx, targets).data())[0];
    for (let i = 0; i < 20; i++) opt.minimize(() => model.loss(idx, targets), false, model.trainableVariables());
    const last = (await model.loss(idx, targets).data())[0];
    expect(last).toBeLessThan(first * 0.5);
    opt.dispose();
    model.dispose();
  });
});

describe('GPT init, weights and copies', () => {
  test('seeded init: same seed gives the same weights on cpu and wasm, another seed differs', async () => {
    await useBackend('cpu');
    const a = new GPT(SMALL, { seed: 42 });
    const b = new GPT(SMALL, { seed: 43 });
    const wa = await a.params.get('transformer.h.1.mlp.c_fc.weight')!.data();
    const wb = await b.params.get('transformer.h.1.mlp.c_fc.weight')!.data();
    await useBackend('wasm');
    const c = new GPT(SMALL, { seed: 42 });
    for (const [name, v] of a.params)
      expect(Array.from(await c.params.get(name)!.data()), name).toEqual(Array.from(await v.data()));
    expect(maxAbsDiff(wa, wb)).toBeGreaterThan(0.01);
    for (const m of [a, b, c]) m.dispose();
  });

  test('GPT-2 init statistics, HF names and shapes, parameter count', async () => {
    await useBackend('cpu');
    const config: GPTConfig = { vocabSize: 300, blockSize: 32, nLayer: 4, nHead: 4, nEmbd: 64, layerNormEps: 1e-5 };
    const model = new GPT(config, { seed: 1 });
    expect([...model.params.keys()]).toEqual([...parameterShapes(config).keys()]);
    expect(model.params.get('transformer.h.0.attn.c_attn.weight')!.shape).toEqual([64, 192]);
    expect(model.params.get('transformer.h.3.mlp.c_proj.weight')!.shape).toEqual([256, 64]);
    const std = async (name: string) => {
      const d = await model.params.get(name)!.data();
      let s = 0;
      for (const x of d) s += x * x;
      return Math.sqrt(s / d.length);
    };
    expect(await std('transformer.wte.weight')).toBeCloseTo(0.02, 3);
    expect(await std('transformer.h.0.mlp.c_proj.weight')).toBeCloseTo(0.02 / Math.sqrt(8), 3);
    expect(Array.from(await model.params.get('transformer.h.2.ln_2.weight')!.data()).every((x) => x === 1)).toBe(true);
    expect(Array.from(await model.params.get('transformer.h.2.attn.c_attn.bias')!.data()).every((x) => x === 0)).toBe(
      true,
    );
    // 12·L·C² + 13·L·C + (V + T)·C + 2·C, as GPT-2 without a separate lm_head.
    const { nLayer: L, nEmbd: C, vocabSize: V, blockSize: T } = config;
    expect(model.numParams()).toBe(12 * L * C * C + 13 * L * C + (V + T) * C + 2 * C);
    model.dispose();
  });

  test('setWeights rejects wrong names and shapes with ModelLoadError and changes nothing', async () => {
    await useBackend('cpu');
    const model = new GPT(SMALL, { seed: 1 });
    const before = await model.params.get('transformer.wte.weight')!.data();
    const good = new Map<string, tf.Tensor>();
    for (const [name, v] of model.params) good.set(name, tf.zerosLike(v));
    const wrongShape = new Map(good);
    wrongShape.set('transformer.ln_f.bias', tf.zeros([SMALL.nEmbd + 1]));
    expect(() => model.setWeights(wrongShape)).toThrow(ModelLoadError);
    expect(() => model.setWeights(wrongShape)).toThrow(/transformer\.ln_f\.bias has shape \[17\]/);
    const missing = new Map(good);
    missing.delete('transformer.h.1.ln_1.weight');
    missing.set('lm_head.weight', tf.zeros([1]));
    expect(() => model.setWeights(missing)).toThrow(
      /missing transformer\.h\.1\.ln_1\.weight; unexpected lm_head\.weight/,
    );
    expect(Array.from(await model.params.get('transformer.wte.weight')!.data())).toEqual(Array.from(before));
    model.setWeights(good);
    expect(Array.from(await model.params.get('transformer.wte.weight')!.data()).every((x) => x === 0)).toBe(true);
    tf.dispose([...good.values(), ...wrongShape.values(), ...missing.values()]);
    model.dispose();
  });

  test('clone is a deep copy; a frozen clone has no trainable variables', async () => {
    await useBackend('cpu');
    const model = new GPT(SMALL, { seed: 1 });
    const ref = model.clone({ trainable: false });
    expect(ref.trainableVariables()).toEqual([]);
    const name = 'transformer.h.0.attn.c_proj.weight';
    const orig = Array.from(await model.params.get(name)!.data());
    expect(Array.from(await ref.params.get(name)!.data())).toEqual(orig);
    model.params.get(name)!.assign(tf.zerosLike(model.params.get(name)!));
    expect(Array.from(await ref.params.get(name)!.data())).toEqual(orig);
    model.dispose();
    ref.dispose();
  });
});
