/**
 * The decode step's fused residual add + LayerNorm (model/kernels/layernorm-kernel.ts) against
 * the TF.js ops it replaces on the wasm backend, bit for bit: `ops.layerNorm` alone, after a
 * residual add, and after a bias add and a residual add (as `linear` then `tf.add` compute them),
 * for widths that are and are not powers of two; the bias add + tanh-GELU likewise; then a GPT's
 * KV-cached decoding (these kernels and the array KV cache) gives the same
 * logits bits with the kernel as without it, and the same sampled tokens.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tf, useBackend } from './tf-backends';
import {
  addLayerNorm,
  biasGelu,
  decodeLayerNormAvailable,
  disableDecodeLayerNorm,
} from '../../src/lib/model/kernels/layernorm-kernel';
import { geluTanh, layerNorm } from '../../src/lib/model/ops';
import { GPT } from '../../src/lib/model/gpt';
import { generate } from '../../src/lib/model/sampling';
import { Rng } from '../../src/lib/model/rng';

function rand(rng: Rng, n: number, scale = 1, shift = 0): Float32Array {
  return Float32Array.from({ length: n }, () => (rng.next() - 0.5) * scale + shift);
}

afterEach(() => disableDecodeLayerNorm(false));

describe('fused decode LayerNorm on wasm', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  it('runs on wasm only, and can be switched off', async () => {
    expect(decodeLayerNormAvailable()).toBe(true);
    disableDecodeLayerNorm(true);
    expect(decodeLayerNormAvailable()).toBe(false);
    disableDecodeLayerNorm(false);
    await useBackend('cpu');
    expect(decodeLayerNormAvailable()).toBe(false);
    await useBackend('wasm');
  });

  for (const [N, C] of [
    [16, 128],
    [3, 96],
    [5, 768],
    [1, 7],
  ])
    it(`same bits as the TF.js ops, [${N}, ${C}]`, () => {
      const rng = new Rng(N * 1000 + C);
      const x = tf.tensor2d(rand(rng, N * C, 6, 0.4), [N, C]);
      const y = tf.tensor2d(rand(rng, N * C, 3), [N, C]);
      const bias = tf.tensor1d(rand(rng, C, 0.2));
      const gamma = tf.tensor1d(rand(rng, C, 1, 1));
      const beta = tf.tensor1d(rand(rng, C, 0.5));
      const before = tf.memory().numTensors;
      for (const how of ['alone', 'residual', 'bias and residual'] as const) {
        const want = tf.tidy(() => {
          const r = how === 'alone' ? x : tf.add(x, how === 'residual' ? y : tf.add(y, bias));
          return [r.dataSync(), layerNorm(r as tf.Tensor2D, gamma, beta, 1e-5).dataSync()];
        });
        const got = addLayerNorm(
          x,
          how === 'alone' ? null : y,
          how === 'bias and residual' ? bias : null,
          gamma,
          beta,
          1e-5,
        );
        expect(Array.from(got.x.dataSync())).toEqual(Array.from(want[0]));
        expect(Array.from(got.h.dataSync())).toEqual(Array.from(want[1]));
        tf.dispose([got.x, got.h]);
      }
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, y, bias, gamma, beta]);
    });

  it('bias add + tanh-GELU: the same bits as tf.add then ops.geluTanh, with and without bias', () => {
    const rng = new Rng(21);
    for (const [N, C] of [
      [16, 512],
      [3, 37],
    ]) {
      const y = tf.tensor2d(rand(rng, N * C, 8), [N, C]);
      const bias = tf.tensor1d(rand(rng, C, 1));
      const before = tf.memory().numTensors;
      for (const b of [bias, null]) {
        const want = tf.tidy(() => geluTanh(b ? tf.add(y, b) : y).dataSync());
        const got = biasGelu(y, b);
        expect(Array.from(got.dataSync())).toEqual(Array.from(want));
        got.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([y, bias]);
    }
  });

  it('KV-cached decoding: the same logits bits and tokens with the kernel as without', async () => {
    const config = { vocabSize: 97, blockSize: 24, nLayer: 2, nHead: 2, nEmbd: 32, layerNormEps: 1e-5 } as never;
    const model = new GPT(config, { seed: 4 });
    const prompts = [[1, 2, 3], [4], [5, 6, 7, 8, 9]]; // ragged: left padding in the cache
    const run = async (off: boolean) => {
      disableDecodeLayerNorm(off);
      const cache = model.createCache(1);
      const steps: number[][] = [];
      let ids = tf.tensor2d([[3, 1, 4, 1, 5]], [1, 5], 'int32');
      for (let s = 0; s < 6; s++) {
        const logits = model.forwardCached(ids, cache);
        steps.push(Array.from(logits.dataSync()));
        ids.dispose();
        ids = tf.tensor2d([[(s * 7) % 97]], [1, 1], 'int32');
        logits.dispose();
      }
      ids.dispose();
      cache.dispose();
      const rows = await generate(model, prompts, { maxNewTokens: 12, temperature: 1, seed: 9, stopAtEot: false }, 0);
      return { steps, tokens: rows.map((r) => [...r.ids, ...r.logprobs]) };
    };
    const on = await run(false);
    const off = await run(true);
    expect(on.steps).toEqual(off.steps);
    expect(on.tokens).toEqual(off.tokens);
    model.dispose();
  });
});
