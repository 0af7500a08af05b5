/**
 * Benchmarks that run inside the engine (in the worker, in the browser, as users run it):
 * sampling with and without the KV cache, one training step of the loaded model, one PPO
 * iteration (and its phases: rollout, reward scoring, reference and value forward passes,
 * update) and one reward-model step, and TF.js memory before and after. Timings are
 * medians over repeats after warm-up; every timed section ends with a read-back so the
 * GPU backends are measured, not just queued.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT } from '../model/gpt';
import type { BpeTokenizer } from '../model/tokenizer';
import { generate } from '../model/sampling';
import { Rng } from '../model/rng';
import { allowNarrowThreads, canNarrowThreads } from '../model/wasm-threads';
import { gemmBuild, matMulOurs, setGemmPolicy } from '../model/kernels/gemm-kernel';
import { disableFusedAdam, fusedAdamAvailable } from '../model/kernels/adam-kernel';
import { decodeLayerNormAvailable, disableDecodeLayerNorm } from '../model/kernels/layernorm-kernel';
import { labellerFromConfig, defaultLabellerConfig } from '../rlhf/labellers';
import { PpoTrainer, rewardFromFunction } from '../rlhf/ppo';
import { Adam } from '../rlhf/adam';
import { RewardModel } from '../rlhf/reward-model';
import { bradleyTerryLossT } from '../rlhf/bradley-terry';
import { benchGroup } from './bench-group';
import type { BenchRequest, BenchResult, BenchRow } from './types';

function stats(name: string, ms: number[], extra: Partial<BenchRow> = {}): BenchRow {
  const s = [...ms].sort((a, b) => a - b);
  return { name, medianMs: s[Math.floor(s.length / 2)], minMs: s[0], maxMs: s[s.length - 1], n: s.length, ...extra };
}

async function time(fn: () => Promise<void>, warmup: number, repeats: number): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

/**
 * GMAC/s of each dense product of a training step (rows × C → 3C, C, 4C; 4C → C; C → V), forward
 * and both gradients, on TF.js (explicit transposes, as ops.ts did) and on our kernel, the best
 * of `repeats` runs, interleaved.
 */
async function gemmRows(
  rowsN: number,
  C: number,
  V: number,
  repeats: number,
  yieldNow: () => Promise<void>,
): Promise<BenchRow[]> {
  const out: BenchRow[] = [];
  const build = gemmBuild();
  for (const [k, n] of [
    [C, 3 * C],
    [C, C],
    [C, 4 * C],
    [4 * C, C],
    [C, V],
  ]) {
    const X = tf.randomNormal([rowsN, k]) as tf.Tensor2D;
    const W = tf.randomNormal([k, n]) as tf.Tensor2D;
    const dY = tf.randomNormal([rowsN, n]) as tf.Tensor2D;
    for (const [name, theirs, ours] of [
      [`${rowsN}×${k}·${k}×${n}`, () => tf.matMul(X, W), () => matMulOurs(X, W)],
      [
        `${rowsN}×${n}·(${k}×${n})ᵀ`,
        () => tf.tidy(() => tf.matMul(dY, tf.transpose(W))),
        () => matMulOurs(dY, W, false, true),
      ],
      [
        `(${rowsN}×${k})ᵀ·${rowsN}×${n}`,
        () => tf.tidy(() => tf.matMul(tf.transpose(X), dY)),
        () => matMulOurs(X, dY, true, false),
      ],
    ] as const) {
      const t: number[] = [];
      const o: number[] = [];
      for (let i = 0; i < repeats + 1; i++) {
        for (const [f, into] of [
          [theirs, t],
          [ours, o],
        ] as const) {
          const t0 = performance.now();
          const r = f();
          r.dataSync();
          if (i > 0) into.push(performance.now() - t0);
          r.dispose();
        }
      }
      const gmac = (ms: number[]) => (rowsN * k * n) / Math.min(...ms) / 1e6;
      out.push({ ...stats(`  gemm ${name} TF.js`, t), value: gmac(t), unit: 'GMAC/s' });
      out.push({ ...stats(`  gemm ${name} ours (${build})`, o), value: gmac(o), unit: 'GMAC/s' });
      await yieldNow();
    }
    tf.dispose([X, W, dY]);
  }
  return out;
}

export async function runBench(
  model: GPT,
  tok: BpeTokenizer,
  req: BenchRequest,
  yieldNow: () => Promise<void>,
): Promise<BenchResult> {
  const rows: BenchRow[] = [];
  const memBefore = tf.memory();
  const warmup = req.warmup ?? 1;
  const repeats = req.repeats ?? 3;
  const newTokens = req.newTokens ?? 64;
  const want = new Set(req.what);
  const T = model.config.blockSize;

  if (want.has('sample')) {
    for (const batch of req.batches ?? [1, 16]) {
      for (const useCache of [true, false]) {
        const prompts = Array.from({ length: batch }, () => [tok.eotId, ...tok.encode('The movie was')]);
        const ms = await time(
          async () => {
            await generate(
              model,
              prompts,
              { maxNewTokens: Math.min(newTokens, T - 4), temperature: 1, seed: 1, stopAtEot: false, useCache },
              tok.eotId,
            );
            await yieldNow();
          },
          // Full recompute is only the slow reference the cache is compared with (8× at batch 16):
          // one run without warm-up is enough for the ratio and keeps `npm run bench` short.
          useCache ? warmup : 0,
          useCache ? repeats : 1,
        );
        const tokens = batch * Math.min(newTokens, T - 4);
        const row = stats(`sample b${batch} ${useCache ? 'cache' : 'no cache'}`, ms);
        rows.push({ ...row, value: (tokens / row.medianMs) * 1000, unit: 'tokens/s' });
      }
    }
    // A/B in this process: cached decoding on gpt.ts's wasm decode path (our kernels, the array
    // KV cache) and as TF.js ops, interleaved ABBA so a change in the machine's load hits both
    // (the same tokens either way).
    if (decodeLayerNormAvailable()) {
      const batch = Math.max(...(req.batches ?? [1, 16]));
      const prompts = Array.from({ length: batch }, () => [tok.eotId, ...tok.encode('The movie was')]);
      const opts = { maxNewTokens: Math.min(newTokens, T - 4), temperature: 1, seed: 1, stopAtEot: false };
      const ab = { kernels: [] as number[], tf: [] as number[] };
      try {
        for (let i = 0; i < 2 * (warmup + repeats); i++) {
          const arm = i % 4 === 0 || i % 4 === 3 ? 'kernels' : 'tf';
          disableDecodeLayerNorm(arm === 'tf');
          const t0 = performance.now();
          await generate(model, prompts, opts, tok.eotId);
          if (i >= 2 * warmup) ab[arm].push(performance.now() - t0);
          await yieldNow();
        }
      } finally {
        disableDecodeLayerNorm(false);
      }
      for (const [arm, label] of [
        ['kernels', 'wasm decode path'],
        ['tf', 'decode as TF.js ops'],
      ] as const) {
        const row = stats(`sample b${batch} cache A/B, ${label}`, ab[arm]);
        rows.push({ ...row, value: ((batch * opts.maxNewTokens) / row.medianMs) * 1000, unit: 'tokens/s' });
      }
    }
    // A/B in this process: cached decoding on the full wasm pool instead of one thread.
    if (canNarrowThreads()) {
      allowNarrowThreads(false);
      try {
        for (const batch of req.batches ?? [1, 16]) {
          const prompts = Array.from({ length: batch }, () => [tok.eotId, ...tok.encode('The movie was')]);
          const opts = { maxNewTokens: Math.min(newTokens, T - 4), temperature: 1, seed: 1, stopAtEot: false };
          const ms = await time(
            async () => {
              await generate(model, prompts, opts, tok.eotId);
              await yieldNow();
            },
            warmup,
            repeats,
          );
          const row = stats(`sample b${batch} cache, all threads`, ms);
          rows.push({ ...row, value: ((batch * opts.maxNewTokens) / row.medianMs) * 1000, unit: 'tokens/s' });
        }
      } finally {
        allowNarrowThreads(true);
      }
    }
  }

  if (want.has('train')) {
    const B = req.trainBatch ?? 16;
    const policy = model.clone({ trainable: true });
    const vars = policy.trainableVariables();
    const opt = tf.train.adam(1e-4, 0.9, 0.95, 1e-8);
    const rng = new Rng(7);
    const x = tf.tensor2d(
      Int32Array.from({ length: B * T }, () => rng.int(model.config.vocabSize)),
      [B, T],
      'int32',
    );
    const y = tf.tensor2d(
      Int32Array.from({ length: B * T }, () => rng.int(model.config.vocabSize)),
      [B, T],
      'int32',
    );
    const losses: number[] = [];
    const ms = await time(
      async () => {
        const loss = opt.minimize(() => policy.loss(x, y), true, vars);
        losses.push((await loss!.data())[0]);
        loss!.dispose();
        await yieldNow();
      },
      warmup,
      repeats,
    );
    rows.push({
      ...stats(`train step b${B}×${T} (fwd+bwd+Adam)`, ms),
      value: ((B * T) / stats('', ms).medianMs) * 1000,
      unit: 'tokens/s',
      losses,
    });
    // A/B in this process: the same step with our gemm kernel on every product where it was
    // measured faster (the app's default is TF.js for every product: kernels/gemm-kernel.ts), then
    // each dense product of the step alone, TF.js against ours.
    if (tf.getBackend() === 'wasm' && gemmBuild()) {
      setGemmPolicy('measure');
      try {
        const on = await time(
          async () => {
            const loss = opt.minimize(() => policy.loss(x, y), true, vars);
            await loss!.data();
            loss!.dispose();
            await yieldNow();
          },
          warmup,
          repeats,
        );
        rows.push({ ...stats(`train step b${B}×${T}, own kernel where measured faster`, on) });
      } finally {
        setGemmPolicy('never');
      }
      rows.push(...(await gemmRows(B * T, model.config.nEmbd, model.config.vocabSize, repeats, yieldNow)));
    }
    tf.dispose([x, y]);
    opt.dispose();
    policy.dispose();
  }

  if (want.has('reward')) {
    const rm = RewardModel.fromPolicy(model, { mode: 'full' });
    const vars = rm.trainableVariables('full');
    const opt = tf.train.adam(1e-4, 0.9, 0.999, 1e-8);
    const texts = Array.from({ length: 16 }, (_, i) => [
      tok.eotId,
      ...tok.encode(`The movie was ${i % 2 ? 'great' : 'awful'} and the plot was ${i}.`),
    ]);
    const ms = await time(
      async () => {
        const loss = opt.minimize(
          () => bradleyTerryLossT(rm.scoreT(texts.slice(0, 8)), rm.scoreT(texts.slice(8))).loss,
          true,
          vars,
        );
        await loss!.data();
        loss!.dispose();
        await yieldNow();
      },
      warmup,
      repeats,
    );
    rows.push(stats('reward-model step (8 pairs, full)', ms));
    opt.dispose();
    rm.dispose();
  }

  if (want.has('ppo')) {
    const labeller = labellerFromConfig(defaultLabellerConfig('sentiment'));
    const trainer = new PpoTrainer({
      model,
      reward: rewardFromFunction((t, p) => labeller.score(t, p)),
      tokenizer: tok,
      prompts: ['The movie was', 'This book', 'The food was', 'I loved'],
      config: req.ppoConfig ?? {},
      onStep: yieldNow,
    });
    const before = tf.memory().numTensors;
    const iters = req.ppoIterations ?? repeats;
    const ms: number[] = [];
    const phases = {
      rollout: [] as number[],
      score: [] as number[],
      advantages: [] as number[],
      update: [] as number[],
    };
    for (let i = 0; i < warmup + iters; i++) {
      const t0 = performance.now();
      const r = await trainer.iteration();
      if (i < warmup) continue;
      ms.push(performance.now() - t0);
      for (const k of Object.keys(phases) as (keyof typeof phases)[]) phases[k].push(r[k].seconds * 1000);
    }
    rows.push({ ...stats('PPO iteration (defaults)', ms), tensorsGrowth: tf.memory().numTensors - before });
    // Where an iteration's time goes (each phase times itself, src/lib/rlhf/ppo.ts).
    rows.push(stats('  PPO rollout (sampling + old log-probs)', phases.rollout));
    rows.push(stats('  PPO reward scoring', phases.score));
    rows.push(stats('  PPO reference + value forward, GAE', phases.advantages));
    rows.push(stats('  PPO update (minibatches × epochs)', phases.update));
    trainer.dispose();
    // A/B in this process: one Adam step over a PPO trainer's variables (policy and value model),
    // our fused kernel and TF.js ops alternately, on fixed random gradients.
    if (fusedAdamAvailable()) {
      const copies = [model.clone({ trainable: true }), model.clone({ trainable: true })];
      const vars = copies.flatMap((m) => m.trainableVariables());
      const adam = new Adam(vars, { beta1: 0.9, beta2: 0.999, eps: 1e-5 });
      const grads: tf.NamedTensorMap = {};
      for (const v of vars) grads[v.name] = tf.randomNormal(v.shape, 0, 1e-3);
      const ab = [[] as number[], [] as number[]];
      try {
        for (let i = 0; i < 2 * (2 + 4 * repeats); i++) {
          const arm = i % 4 === 0 || i % 4 === 3 ? 0 : 1;
          disableFusedAdam(arm === 1);
          const t0 = performance.now();
          adam.apply(grads, 2, { lr: 1e-6, maxGradNorm: 1 });
          await vars[0].data();
          if (i >= 4) ab[arm].push(performance.now() - t0);
        }
      } finally {
        disableFusedAdam(false);
        adam.dispose();
        tf.dispose(Object.values(grads));
        copies.forEach((m) => m.dispose());
      }
      const n = vars.reduce((a, v) => a + v.size, 0);
      rows.push(stats(`Adam step A/B (${(n / 1e6).toFixed(2)}M params), fused kernel`, ab[0]));
      rows.push(stats(`Adam step A/B (${(n / 1e6).toFixed(2)}M params), TF.js ops`, ab[1]));
      await yieldNow();
    }
    // A/B in this process: two fresh trainers with the same seed, one with Adam as our fused kernel
    // (kernels/adam-kernel.ts), one as TF.js ops. Both give the same bits, so their i-th
    // iterations train on the same batch; interleaved ABBA so a change in load hits both.
    if (fusedAdamAvailable()) {
      const twins = [0, 1].map(
        () =>
          new PpoTrainer({
            model,
            reward: rewardFromFunction((t, p) => labeller.score(t, p)),
            tokenizer: tok,
            prompts: ['The movie was', 'This book', 'The food was', 'I loved'],
            config: req.ppoConfig ?? {},
            onStep: yieldNow,
          }),
      );
      const ab = [
        { all: [] as number[], update: [] as number[] },
        { all: [] as number[], update: [] as number[] },
      ];
      try {
        for (let i = 0; i < 2 * (warmup + iters); i++) {
          const arm = i % 4 === 0 || i % 4 === 3 ? 0 : 1;
          disableFusedAdam(arm === 1);
          const t0 = performance.now();
          const r = await twins[arm].iteration();
          if (i < 2 * warmup) continue;
          ab[arm].all.push(performance.now() - t0);
          ab[arm].update.push(r.update.seconds * 1000);
        }
      } finally {
        disableFusedAdam(false);
        twins.forEach((t) => t.dispose());
      }
      for (const [arm, label] of ['Adam fused kernel', 'Adam as TF.js ops'].entries()) {
        rows.push(stats(`PPO iteration A/B, ${label}`, ab[arm].all));
        rows.push(stats(`  PPO update A/B, ${label}`, ab[arm].update));
      }
    }
  }

  // GRPO and RLOO beside PPO (bench-group.ts): iteration time and trainer memory.
  if (want.has('group')) rows.push(...(await benchGroup(model, tok, req, yieldNow)));

  const memAfter = tf.memory();
  return {
    backend: tf.getBackend(),
    rows,
    memory: {
      tensorsBefore: memBefore.numTensors,
      tensorsAfter: memAfter.numTensors,
      bytesBefore: memBefore.numBytes,
      bytesAfter: memAfter.numBytes,
    },
  };
}
