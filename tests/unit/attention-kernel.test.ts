/**
 * Our WebAssembly attention kernel (src/lib/model/kernels): the committed bytes are the build of
 * the committed AssemblyScript source; values and gradients equal TF.js's own softmax attention
 * (causal mask, key padding, cached keys); the GPT gives the same logits and gradients with and
 * without the kernel; a KV cache cannot be continued on a backend with the other layout.
 */
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { tf, useBackend, type TestBackend } from './tf-backends';
import { KERNELS, compile, moduleText } from '../../scripts/build-kernels';
import { readFileSync } from 'node:fs';
import {
  attentionKernelAvailable,
  attentionKernelReady,
  cachedAttention,
  disableAttentionKernel,
  selfAttention,
} from '../../src/lib/model/kernels/attention-kernel';
import { GPT } from '../../src/lib/model/gpt';
import { Rng } from '../../src/lib/model/rng';

test('the committed kernel modules are the builds of their sources', async () => {
  for (const k of KERNELS) {
    const fresh = moduleText(k, await compile(k.source, k.features));
    expect(readFileSync(k.module, 'utf8')).toBe(fresh);
  }
}, 60_000);

/**
 * Reference with TF.js ops: qkv [B·t, 3C] → heads, softmax(q·kᵀ/√hs + mask)·v → [B·t, C]. Keys
 * and values default to the new rows; `pad[b]` leading key columns masked (a query that would
 * see no key sees the causal ones, as the kernel does).
 */
function reference(
  qkv: tf.Tensor2D,
  B: number,
  t: number,
  nh: number,
  keys?: tf.Tensor3D,
  values?: tf.Tensor3D,
  pad?: number[],
): tf.Tensor2D {
  return tf.tidy(() => {
    const C = qkv.shape[1] / 3;
    const hs = C / nh;
    const heads = (x: tf.Tensor, n: number) => tf.transpose(tf.reshape(x, [B, n, nh, hs]), [0, 2, 1, 3]);
    const q = heads(tf.slice(qkv, [0, 0], [B * t, C]), t);
    const k = keys ? heads(keys, keys.shape[1]) : heads(tf.slice(qkv, [0, C], [B * t, C]), t);
    const v = values ? heads(values, values.shape[1]) : heads(tf.slice(qkv, [0, 2 * C], [B * t, C]), t);
    const L = k.shape[2] as number;
    const mask = new Float32Array(B * t * L);
    for (let b = 0; b < B; b++)
      for (let i = 0; i < t; i++) {
        const hi = L - t + i;
        const lo = (pad?.[b] ?? 0) > hi ? 0 : (pad?.[b] ?? 0);
        for (let j = 0; j < L; j++) if (j > hi || j < lo) mask[(b * t + i) * L + j] = -Infinity;
      }
    const s = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hs)), tf.tensor4d(mask, [B, 1, t, L]));
    const y = tf.matMul(tf.softmax(s), v); // [B, nh, t, hs]
    return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B * t, C]) as tf.Tensor2D;
  });
}

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

describe.each<TestBackend>(['cpu', 'wasm'])('attention kernel on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });
  afterEach(() => disableAttentionKernel(false));

  test('self-attention: values and d qkv equal TF.js softmax attention', () => {
    expect(attentionKernelAvailable(8)).toBe(true);
    expect(attentionKernelAvailable(6)).toBe(false); // head size not a multiple of 4
    expect(attentionKernelReady()).toBe(true);
    disableAttentionKernel(true);
    expect(attentionKernelAvailable(8)).toBe(false);
    expect(attentionKernelReady()).toBe(false);
    disableAttentionKernel(false);
    const [B, t, nh, hs] = [3, 7, 2, 8];
    const C = nh * hs;
    const qkv = tf.randomNormal([B * t, 3 * C], 0, 1, 'float32', 1) as tf.Tensor2D;
    const w = tf.randomNormal([B * t, C], 0, 1, 'float32', 2);
    const before = tf.memory().numTensors;
    const y = selfAttention(qkv, B, t, nh);
    const yRef = reference(qkv, B, t, nh);
    expect(maxDiff(y, yRef)).toBeLessThan(1e-5);
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(selfAttention(x as tf.Tensor2D, B, t, nh), w)))(qkv);
    const gRef = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(reference(x as tf.Tensor2D, B, t, nh), w)))(qkv);
    expect(maxDiff(g, gRef)).toBeLessThan(1e-5);
    expect(tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0])).toBeGreaterThan(0.01); // a gradient that can fail
    tf.dispose([y, yRef, g, gRef]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([qkv, w]);
  });

  test('cached attention: new queries over cached and new keys, with left padding', () => {
    const [B, P, t, nh, hs] = [3, 5, 2, 2, 8];
    const C = nh * hs;
    const L = P + t;
    const qkv = tf.randomNormal([B * t, 3 * C], 0, 1, 'float32', 3) as tf.Tensor2D;
    const keys = tf.randomNormal([B, L, C], 0, 1, 'float32', 4) as tf.Tensor3D;
    const values = tf.randomNormal([B, L, C], 0, 1, 'float32', 5) as tf.Tensor3D;
    const pad = [0, 2, 6]; // row 2: its first new query sees only padding keys → causal keys instead
    const y = cachedAttention(qkv, keys, values, nh, pad);
    const yRef = reference(qkv, B, t, nh, keys, values, pad);
    expect(maxDiff(y, yRef)).toBeLessThan(1e-5);
    // Padding matters: without it the rows that have some differ.
    const yNoPad = cachedAttention(qkv, keys, values, nh);
    expect(maxDiff(tf.slice(y, [t, 0], [t, C]), tf.slice(yNoPad, [t, 0], [t, C]))).toBeGreaterThan(1e-3);
    expect(maxDiff(tf.slice(y, [0, 0], [t, C]), tf.slice(yNoPad, [0, 0], [t, C]))).toBe(0);
    tf.dispose([qkv, keys, values, y, yRef, yNoPad]);
  });

  test('GPT: same logits and gradients with and without the kernel; caches keep their layout', () => {
    const config = { vocabSize: 40, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 };
    const model = new GPT(config, { seed: 3 });
    const rng = new Rng(9);
    const ids = tf.tensor2d(
      Array.from({ length: 2 * 12 }, () => rng.int(40)),
      [2, 12],
      'int32',
    );
    const targets = tf.tensor2d(
      Array.from({ length: 2 * 12 }, () => rng.int(40)),
      [2, 12],
      'int32',
    );
    const run = () => {
      const { value, grads } = tf.variableGrads(() => model.loss(ids, targets), model.trainableVariables());
      const logits = model.forward(ids).logits;
      return { loss: value, logits, grads };
    };
    const withKernel = run();
    disableAttentionKernel(true);
    const withTf = run();
    expect(maxDiff(withKernel.logits, withTf.logits)).toBeLessThan(1e-4);
    expect(maxDiff(withKernel.loss, withTf.loss)).toBeLessThan(1e-5);
    for (const name of Object.keys(withTf.grads))
      expect(maxDiff(withKernel.grads[name], withTf.grads[name])).toBeLessThan(1e-4);
    // Cached decoding (4 tokens, then 1, then 1) gives the full forward's logits on both paths.
    const full = model.forward(tf.slice(ids, [0, 0], [2, 6]) as tf.Tensor2D).logits; // TF.js path (kernel off)
    for (const off of [true, false]) {
      disableAttentionKernel(off);
      const c = model.createCache(2);
      const parts = [model.forwardCached(tf.slice(ids, [0, 0], [2, 4]) as tf.Tensor2D, c)];
      for (const p of [4, 5]) parts.push(model.forwardCached(tf.slice(ids, [0, p], [2, 1]) as tf.Tensor2D, c));
      expect(c.layout).toBe(off ? 'heads' : 'rows');
      const cached = tf.concat(parts, 1);
      expect(maxDiff(cached, full)).toBeLessThan(1e-4);
      tf.dispose([cached, ...parts]);
      c.dispose();
    }
    full.dispose();
    disableAttentionKernel(true);
    // A cache filled by the TF.js path ('heads') cannot be continued by the kernel ('rows').
    const cache = model.createCache(2);
    model.forwardCached(tf.slice(ids, [0, 0], [2, 4]) as tf.Tensor2D, cache).dispose();
    expect(cache.layout).toBe('heads');
    disableAttentionKernel(false);
    expect(() => model.forwardCached(tf.slice(ids, [0, 4], [2, 1]) as tf.Tensor2D, cache)).toThrow(
      /cache holds heads.*needs rows/,
    );
    cache.dispose();
    for (const r of [withKernel, withTf]) tf.dispose([r.loss, r.logits, ...Object.values(r.grads)]);
    tf.dispose([ids, targets]);
    model.dispose();
  });
});
