/**
 * The frozen-weight projection (`linearFrozen`, src/lib/model/ops.ts) that LoRA models use for
 * their base weights: same value as `linear` / `matMul`, the same gradient with respect to the
 * input, and no gradient at all for W (that is the saving). And end to end: the adapters'
 * gradients through the frozen path equal what the full-weight ops give. For ΔW = s·A·B on a
 * module with weight W, dL/dA = s·(dL/dW)·Bᵀ and dL/dB = s·Aᵀ·(dL/dW), where dL/dW is the
 * gradient of the merged model (W + ΔW) trained in full through `linear` / `matMul`.
 */
import { describe, expect, test } from 'vitest';
import { tf, useBackend, type TestBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import type { GPTConfig } from '../../src/lib/model/config';
import { linear, linearFrozen, matMul } from '../../src/lib/model/ops';
import { mergedTensors } from '../../src/lib/model/lora-peft';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, x) => Math.max(m, Math.abs(x)), 0);

describe.each<TestBackend>(['cpu', 'wasm'])('linearFrozen on %s', (backend) => {
  // 70×96 @ 96×130: large enough that the wasm backend may route it through our gemm kernel.
  const N = 70;
  const IN = 96;
  const OUT = 130;

  test('value and dL/dx equal linear (with bias) and matMul (without); W and b get no gradient', async () => {
    await useBackend(backend);
    const x = tf.randomNormal([N, IN], 0, 1, 'float32', 1) as tf.Tensor2D;
    const w = tf.variable(tf.randomNormal([IN, OUT], 0, 0.1, 'float32', 2), true) as tf.Variable<tf.Rank.R2>;
    const b = tf.variable(tf.randomNormal([OUT], 0, 0.1, 'float32', 3), false) as tf.Variable<tf.Rank.R1>;
    const r = tf.randomNormal([N, OUT], 0, 1, 'float32', 4); // a non-uniform upstream gradient
    const lossOf = (y: tf.Tensor) => tf.sum(tf.mul(y, r));
    for (const withBias of [true, false]) {
      const full = (xi: tf.Tensor) =>
        lossOf(withBias ? linear(xi as tf.Tensor2D, w, b) : matMul(xi as tf.Tensor2D, w as tf.Tensor2D));
      const frozen = (xi: tf.Tensor) => lossOf(linearFrozen(xi as tf.Tensor2D, w, withBias ? b : undefined));
      const yFull = withBias ? linear(x, w, b) : matMul(x, w as tf.Tensor2D);
      const yFrozen = linearFrozen(x, w, withBias ? b : undefined);
      expect(maxAbsDiff(await yFrozen.data(), await yFull.data())).toBe(0);
      const gFull = tf.grad(full)(x);
      const gFrozen = tf.grad(frozen)(x);
      const want = await gFull.data();
      expect(maxAbs(want)).toBeGreaterThan(0.1);
      expect(maxAbsDiff(await gFrozen.data(), want)).toBeLessThan(1e-5 * maxAbs(want));
      // W is not an input of the frozen op: the full op has a gradient for it, the frozen op none.
      const gw = tf.variableGrads(() => full(x) as tf.Scalar, [w]);
      expect(maxAbs(await gw.grads[w.name].data())).toBeGreaterThan(0.1);
      tf.dispose([gw.value, ...Object.values(gw.grads)]);
      expect(() => tf.variableGrads(() => frozen(x) as tf.Scalar, [w])).toThrow(/connection/);
      tf.dispose([yFull, yFrozen, gFull, gFrozen]);
    }
    tf.dispose([x, w, b, r]);
  });

  test('a W computed inside the forward (a transposed tied head) survives to the backward pass', async () => {
    await useBackend(backend);
    const x = tf.randomNormal([N, IN], 0, 1, 'float32', 5) as tf.Tensor2D;
    const wte = tf.variable(tf.randomNormal([OUT, IN], 0, 0.1, 'float32', 6), false);
    const r = tf.randomNormal([N, OUT], 0, 1, 'float32', 7);
    const before = tf.memory().numTensors;
    const g = tf.grad((xi: tf.Tensor) =>
      tf.sum(tf.mul(linearFrozen(xi as tf.Tensor2D, tf.transpose(wte) as tf.Tensor2D), r)),
    )(x);
    const gFull = tf.grad((xi: tf.Tensor) =>
      tf.sum(tf.mul(matMul(xi as tf.Tensor2D, tf.transpose(wte) as tf.Tensor2D), r)),
    )(x);
    const want = await gFull.data();
    expect(maxAbsDiff(await g.data(), want)).toBeLessThan(1e-5 * maxAbs(want));
    expect(tf.memory().numTensors).toBe(before + 2); // the two gradients; nothing saved leaks
    tf.dispose([x, wte, r, g, gFull]);
  });
});

/** The model's LoRA gradients (frozen base) against s·dW·Bᵀ and s·Aᵀ·dW of the merged model in full. */
async function checkAdapterGrads(config: GPTConfig, targets: string[] | null): Promise<void> {
  const model = new GPT(config, { seed: 3 });
  const lora = model.addAdapters({ r: 3, alpha: 6, dropout: 0, targetModules: targets }, 2);
  tf.tidy(() => {
    let k = 10;
    for (const ad of lora.adapters.values()) ad.b.assign(tf.randomNormal(ad.b.shape, 0, 0.2, 'float32', k++));
  });
  const B = 2;
  const T = 7;
  const ids = (seed: number) =>
    tf.tensor2d(
      Array.from({ length: B * T }, (_, i) => (i * 7 + seed * 3) % config.vocabSize),
      [B, T],
      'int32',
    );
  const idx = ids(1);
  const tgt = ids(2);
  const merged = new GPT(config, { init: 'zeros', namePrefix: 'merged-ref/' });
  const map = new Map([...(await mergedTensors(model))].map(([n, t]) => [n, tf.tensor(t.data, t.shape)]));
  merged.setWeights(map);
  tf.dispose([...map.values()]);

  const ours = tf.variableGrads(() => model.loss(idx, tgt), model.trainableVariables());
  const full = tf.variableGrads(() => merged.loss(idx, tgt), merged.trainableVariables());
  expect(Math.abs((await ours.value.data())[0] - (await full.value.data())[0])).toBeLessThan(1e-5);
  for (const [name, ad] of lora.adapters) {
    const dW = full.grads[`merged-ref/${name}.weight`];
    const [wantA, wantB] = tf.tidy(() => [
      tf.mul(tf.matMul(dW, ad.b, false, true), lora.scaling),
      tf.mul(tf.matMul(ad.a, dW, true, false), lora.scaling),
    ]);
    for (const [got, want, what] of [
      [ours.grads[ad.a.name], wantA, 'A'],
      [ours.grads[ad.b.name], wantB, 'B'],
    ] as const) {
      const w = await want.data();
      expect(maxAbs(w), `${name} ${what}`).toBeGreaterThan(1e-6);
      expect(maxAbsDiff(await got.data(), w), `${name} grad ${what}`).toBeLessThan(2e-4 * maxAbs(w) + 1e-7);
    }
    tf.dispose([wantA, wantB]);
  }
  tf.dispose([idx, tgt, ours.value, full.value, ...Object.values(ours.grads), ...Object.values(full.grads)]);
  model.dispose();
  merged.dispose();
}

const GPT2: GPTConfig = { vocabSize: 37, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 12, layerNormEps: 1e-5 };
const LLAMA: GPTConfig = {
  arch: 'llama',
  vocabSize: 29,
  blockSize: 16,
  nLayer: 2,
  nHead: 4,
  nEmbd: 16,
  layerNormEps: 1e-5,
  nKvHead: 2,
  intermediateSize: 24,
  ropeTheta: 10000,
  tieWordEmbeddings: false,
};

describe.each<TestBackend>(['cpu', 'wasm'])('LoRA gradients through the frozen base on %s', (backend) => {
  test('GPT-2: every projection targeted (with biases), tied head', async () => {
    await useBackend(backend);
    await checkAdapterGrads(GPT2, ['c_attn', 'c_proj', 'c_fc']);
  });
  test('Llama: every projection targeted, untied head (lm_head frozen, no bias)', async () => {
    await useBackend(backend);
    await checkAdapterGrads(LLAMA, ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
  });
  test('Llama: default targets, tied head', async () => {
    await useBackend(backend);
    await checkAdapterGrads({ ...LLAMA, tieWordEmbeddings: true }, null);
  });
});
