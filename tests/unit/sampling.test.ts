import { describe, expect, test } from 'vitest';
import { tf, useBackend, type TestBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import { generate, pickToken } from '../../src/lib/model/sampling';
import { Rng } from '../../src/lib/model/rng';
import type { GPTConfig } from '../../src/lib/model/config';

const CONFIG: GPTConfig = { vocabSize: 29, blockSize: 24, nLayer: 2, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 };
const EOT = 28;
const decode = (ids: number[]) => ids.join(',');

/** Random weights larger than GPT-2 init, so the distributions are far from uniform. */
async function randomModel(seed: number): Promise<GPT> {
  const model = new GPT(CONFIG, { seed });
  const rng = new Rng(seed + 100);
  for (const v of model.params.values()) {
    if (v.shape.length === 2) v.assign(tf.tensor(rng.normalArray(v.size, 0.3), v.shape));
  }
  return model;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe.each<TestBackend>(['cpu', 'wasm'])('KV cache on %s', (backend) => {
  test('cached logits equal full-recompute logits, token by token', async () => {
    await useBackend(backend);
    const model = await randomModel(1);
    const seq = [5, 3, 8, 1, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2];
    const full = await model.forward(tf.tensor2d([seq], undefined, 'int32')).logits.data();
    const V = CONFIG.vocabSize;
    const cache = model.createCache(1);
    const pre = await model.forwardCached(tf.tensor2d([seq.slice(0, 4)], undefined, 'int32'), cache).data();
    expect(maxAbsDiff(pre, full.slice(0, 4 * V))).toBeLessThan(1e-4);
    for (let t = 4; t < seq.length; t++) {
      const step = await model.forwardCached(tf.tensor2d([[seq[t]]], undefined, 'int32'), cache).data();
      expect(maxAbsDiff(step, full.slice(t * V, (t + 1) * V)), `position ${t}`).toBeLessThan(1e-4);
    }
    expect(cache.length).toBe(seq.length);
    expect(() => model.forwardCached(tf.tensor2d([seq.slice(0, 9)], undefined, 'int32'), cache)).toThrow(
      /more than blockSize/,
    );
    cache.dispose();
    model.dispose();
  });

  test('a left-padded row computes what it computes alone', async () => {
    await useBackend(backend);
    const model = await randomModel(2);
    const V = CONFIG.vocabSize;
    const long = [4, 7, 1, 1, 8, 2];
    const short = [9, 3, 5];
    const cache = model.createCache(2, [0, 3]);
    const batched = await model
      .forwardCached(tf.tensor2d([long, [0, 0, 0, ...short]], undefined, 'int32'), cache)
      .data();
    const next = await model.forwardCached(tf.tensor2d([[6], [2]], undefined, 'int32'), cache).data();
    const alone = await model.forward(tf.tensor2d([[...short, 2]], undefined, 'int32')).logits.data();
    const alongLong = await model.forward(tf.tensor2d([[...long, 6]], undefined, 'int32')).logits.data();
    expect(maxAbsDiff(batched.slice(6 * V + 3 * V, 12 * V), alone.slice(0, 3 * V))).toBeLessThan(1e-4);
    expect(maxAbsDiff(next.slice(V, 2 * V), alone.slice(3 * V))).toBeLessThan(1e-4);
    expect(maxAbsDiff(next.slice(0, V), alongLong.slice(6 * V))).toBeLessThan(1e-4);
    cache.dispose();
    model.dispose();
  });
});

describe('generate', () => {
  const prompts = [[1, 2, 3, 4, 5], [7], [9, 9, 4]];

  test('same seed → same output; another seed → another output', async () => {
    await useBackend('cpu');
    const model = await randomModel(3);
    const opts = { maxNewTokens: 12, temperature: 1.2, seed: 7, stopAtEot: false, decode };
    const a = await generate(model, prompts, opts, EOT);
    const b = await generate(model, prompts, opts, EOT);
    const c = await generate(model, prompts, { ...opts, seed: 8 }, EOT);
    expect(b).toEqual(a);
    expect(c.map((r) => r.text)).not.toEqual(a.map((r) => r.text));
    expect(a[0].text).toBe(a[0].ids.join(','));
    expect(a.every((r) => r.ids.length === 12 && r.logprobs.length === 12 && !r.finished)).toBe(true);
    model.dispose();
  });

  test('greedy with cache equals greedy without cache; topK = 1 equals greedy', async () => {
    await useBackend('wasm');
    const model = await randomModel(4);
    const opts = { maxNewTokens: 16, temperature: 0, stopAtEot: false }; // 5 + 16 ≤ blockSize 24
    const cached = await generate(model, prompts, { ...opts, useCache: true }, EOT);
    const full = await generate(model, prompts, { ...opts, useCache: false }, EOT);
    expect(cached.map((r) => r.ids)).toEqual(full.map((r) => r.ids));
    for (let b = 0; b < prompts.length; b++)
      expect(maxAbsDiff(cached[b].logprobs, full[b].logprobs)).toBeLessThan(1e-4);
    const top1 = await generate(model, prompts, { ...opts, temperature: 1, topK: 1, seed: 3 }, EOT);
    expect(top1.map((r) => r.ids)).toEqual(cached.map((r) => r.ids));
    const tinyP = await generate(model, prompts, { ...opts, temperature: 1, topP: 1e-6, seed: 3 }, EOT);
    expect(tinyP.map((r) => r.ids)).toEqual(cached.map((r) => r.ids));
    model.dispose();
  });

  test('logprobs are log_softmax(logits / T) of the recomputed logits', async () => {
    await useBackend('cpu');
    const model = await randomModel(5);
    const T = 0.7;
    const rows = await generate(
      model,
      prompts,
      { maxNewTokens: 10, temperature: T, topK: 5, topP: 0.9, seed: 1, stopAtEot: false },
      EOT,
    );
    for (let b = 0; b < prompts.length; b++) {
      const seq = [...prompts[b], ...rows[b].ids];
      const logp = tf.tidy(() =>
        tf.logSoftmax(tf.div(model.forward(tf.tensor2d([seq], undefined, 'int32')).logits, T)),
      );
      const data = await logp.data();
      const V = CONFIG.vocabSize;
      rows[b].ids.forEach((id, j) => {
        const pos = prompts[b].length - 1 + j;
        expect(Math.abs(rows[b].logprobs[j] - data[pos * V + id])).toBeLessThan(1e-4);
      });
      logp.dispose();
    }
    model.dispose();
  });

  test('stops at the end-of-text token, and keeps going when told not to', async () => {
    await useBackend('cpu');
    const model = await randomModel(6);
    // ln_f weight 0 and bias = wte[EOT]: every position's logits peak at EOT.
    const wte = model.params.get('transformer.wte.weight')!;
    model.params.get('transformer.ln_f.weight')!.assign(tf.zeros([CONFIG.nEmbd]));
    model.params
      .get('transformer.ln_f.bias')!
      .assign(tf.tidy(() => tf.reshape(tf.slice(wte, [EOT, 0], [1, CONFIG.nEmbd]), [CONFIG.nEmbd])));
    const streamed: [number, number, number][] = [];
    const rows = await generate(
      model,
      [[1, 2], [3]],
      { maxNewTokens: 5, temperature: 0, decode },
      EOT,
      (row, id, step) => streamed.push([row, id, step]),
    );
    expect(rows).toEqual([
      { ids: [EOT], text: '', logprobs: [rows[0].logprobs[0]], finished: true },
      { ids: [EOT], text: '', logprobs: [rows[1].logprobs[0]], finished: true },
    ]);
    expect(streamed).toEqual([
      [0, EOT, 0],
      [1, EOT, 0],
    ]);
    const on = await generate(model, [[1, 2]], { maxNewTokens: 5, temperature: 0, stopAtEot: false }, EOT);
    expect(on[0].ids).toEqual([EOT, EOT, EOT, EOT, EOT]);
    expect(on[0].finished).toBe(false);
    model.dispose();
  });

  test('context longer than blockSize: prompt cropped, cache re-prefilled, no leak', async () => {
    await useBackend('wasm');
    const model = await randomModel(7);
    const longPrompt = Array.from({ length: 30 }, (_, i) => i % 20);
    const opts = { maxNewTokens: 40, temperature: 0.9, seed: 2, stopAtEot: false };
    await generate(model, [longPrompt, [1]], opts, EOT); // warm up kernels
    const before = tf.memory().numTensors;
    const cached = await generate(model, [longPrompt, [1]], opts, EOT);
    const full = await generate(model, [longPrompt, [1]], { ...opts, useCache: false }, EOT);
    expect(tf.memory().numTensors).toBe(before);
    for (const r of [...cached, ...full]) expect(r.ids.length).toBe(40);
    // Identical until the first crop of the cache: the long row starts full, so its first token agrees.
    expect(cached[0].ids[0]).toBe(full[0].ids[0]);
    expect(cached[1].ids.slice(0, 10)).toEqual(full[1].ids.slice(0, 10));
    model.dispose();
  });
});

describe('pickToken', () => {
  test('samples the softmax distribution; top-k and top-p restrict it', () => {
    const logits = Float32Array.from([0, Math.log(2), Math.log(3), Math.log(4), -50]);
    const rng = new Rng(11);
    const counts = [0, 0, 0, 0, 0];
    const N = 20000;
    for (let i = 0; i < N; i++) counts[pickToken(logits, 0, 5, { temperature: 1, topK: 0, topP: 1 }, rng).token]++;
    [1, 2, 3, 4].forEach((w, i) => expect(Math.abs(counts[i] / N - w / 10)).toBeLessThan(0.015));
    expect(counts[4]).toBe(0);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(pickToken(logits, 0, 5, { temperature: 1, topK: 2, topP: 1 }, rng).token);
    expect([...seen].sort()).toEqual([2, 3]);
    seen.clear();
    // p = 0.4, 0.3, 0.2, 0.1: top-p 0.65 keeps the two most likely (0.4 + 0.3 ≥ 0.65).
    for (let i = 0; i < 500; i++) seen.add(pickToken(logits, 0, 5, { temperature: 1, topK: 0, topP: 0.65 }, rng).token);
    expect([...seen].sort()).toEqual([2, 3]);
    const { token, logprob } = pickToken(logits, 0, 5, { temperature: 0, topK: 0, topP: 1 }, rng);
    expect(token).toBe(3);
    expect(logprob).toBeCloseTo(Math.log(0.4), 6);
  });
});
