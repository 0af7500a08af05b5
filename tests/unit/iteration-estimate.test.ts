/**
 * The model card's "expect about N s per iteration" (src/lib/rlhf/iteration-estimate.ts): the
 * formula from timed pieces for GRPO and PPO with LoRA, its refusals, and the timing of the pieces
 * in the worker (src/lib/engine/lora-timing.ts) on a tiny model: positive times, the loaded model
 * untouched, nothing leaked, cancellable between pieces.
 */
import { describe, expect, test } from 'vitest';
import { tf, useBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import {
  batchTimes,
  formatAbout,
  grpoIterationSeconds,
  ppoIterationSeconds,
  largestBatchThatFits,
  MEMORY_MARGIN,
  stepBytesAtBatch,
  type LoraStepMemory,
  type LoraTimings,
} from '../../src/lib/rlhf/iteration-estimate';
import { DEFAULT_GRPO_CONFIG } from '../../src/lib/rlhf/grpo-config';
import { DEFAULT_PPO_CONFIG } from '../../src/lib/rlhf/ppo-config';
import { LORA_TIMING_STEPS, timeLoraPieces, timingRows } from '../../src/lib/engine/lora-timing';
import { InvalidInputError, JobCancelledError } from '../../src/lib/engine/errors';
import { engineWithBundledModel } from './bundled-engine';

const T: LoraTimings = {
  batch: 16,
  promptTokens: 8,
  newTokens: 24,
  rows: 16,
  prefill: 2,
  decode: 0.5,
  forward: 3,
  trainStep: 7,
  forwardOneRow: 0.1875,
  trainStepOneRow: 0.4375,
};

describe('the estimate from timed pieces', () => {
  test('GRPO: prefill + (T − 1)·decode + (1 + [β ≠ 0])·forward + μ·trainStep', () => {
    const s = { batchSize: 16, numGenerations: 4, maxCompletionLength: 24, beta: 0.04, numIterations: 1 };
    expect(grpoIterationSeconds(T, s)).toBeCloseTo(2 + 23 * 0.5 + 2 * 3 + 7, 10);
    // β = 0: no reference forward.
    expect(grpoIterationSeconds(T, { ...s, beta: 0 })).toBeCloseTo(2 + 23 * 0.5 + 3 + 7, 10);
    // μ = 3: three training steps over the batch.
    expect(grpoIterationSeconds(T, { ...s, numIterations: 3 })).toBeCloseTo(2 + 23 * 0.5 + 2 * 3 + 21, 10);
  });

  test('PPO: prefill + (T − 1)·decode + 2·forward + epochs·(trainStep + forward)', () => {
    const s = { batchSize: 16, maxNewTokens: 24, ppoEpochs: 4 };
    expect(ppoIterationSeconds(T, s)).toBeCloseTo(2 + 23 * 0.5 + 6 + 4 * 10, 10);
    expect(ppoIterationSeconds(T, { ...s, ppoEpochs: 1 })).toBeCloseTo(2 + 23 * 0.5 + 6 + 10, 10);
  });

  test('forward and training step go to the batch on the line through 1 row and the timed rows', () => {
    // Fixed part 0.2 s and 0.25 s a row: 1 row 0.45 s, 4 rows 1.2 s → 16 rows 0.2 + 16·0.25 = 4.2 s.
    const fit = batchTimes({ ...T, rows: 4, forward: 1.2, forwardOneRow: 0.45, trainStep: 2, trainStepOneRow: 0.5 });
    expect(fit.forward).toBeCloseTo(4.2, 10);
    expect(fit.trainStep).toBeCloseTo(0.5 + 15 * 0.5, 10);
    // Noise that makes more rows faster counts the rows as free, not negative.
    expect(batchTimes({ ...T, rows: 4, forward: 0.4, forwardOneRow: 0.5 }).forward).toBe(0.5);
    // Timed on one row only: that row's time × batch.
    expect(batchTimes({ ...T, rows: 1, forward: 0.3, trainStep: 0.5 })).toEqual({ forward: 4.8, trainStep: 8 });
    // Proportional times (no fixed part) give the batch's times exactly.
    const quarter = { ...T, rows: 4, forward: 0.75, trainStep: 1.75 };
    expect(batchTimes(quarter).forward).toBeCloseTo(3, 10);
    expect(batchTimes(quarter).trainStep).toBeCloseTo(7, 10);
    const g = { batchSize: 16, numGenerations: 4, maxCompletionLength: 24, beta: 0.04, numIterations: 1 };
    expect(grpoIterationSeconds(quarter, g)).toBeCloseTo(grpoIterationSeconds(T, g), 10);
    const p = { batchSize: 16, maxNewTokens: 24, ppoEpochs: 4 };
    expect(ppoIterationSeconds(quarter, p)).toBeCloseTo(ppoIterationSeconds(T, p), 10);
    expect(() => grpoIterationSeconds({ ...T, rows: 17 }, g)).toThrow(
      /rows must be a whole number from 1 to the batch/,
    );
    expect(() => grpoIterationSeconds({ ...T, rows: 0 }, g)).toThrow(/rows/);
  });

  test('the app defaults of both tables have one shape, so one timing serves both', () => {
    expect(DEFAULT_GRPO_CONFIG.batchSize).toBe(DEFAULT_PPO_CONFIG.batchSize);
    expect(DEFAULT_GRPO_CONFIG.maxCompletionLength).toBe(DEFAULT_PPO_CONFIG.maxNewTokens);
    const t = { ...T, batch: DEFAULT_GRPO_CONFIG.batchSize, newTokens: DEFAULT_GRPO_CONFIG.maxCompletionLength };
    expect(grpoIterationSeconds(t, DEFAULT_GRPO_CONFIG)).toBeGreaterThan(0);
    expect(ppoIterationSeconds(t, DEFAULT_PPO_CONFIG)).toBeGreaterThan(grpoIterationSeconds(t, DEFAULT_GRPO_CONFIG));
  });

  test('refuses timings of another shape and broken timings', () => {
    const s = { batchSize: 8, numGenerations: 4, maxCompletionLength: 24, beta: 0.04, numIterations: 1 };
    expect(() => grpoIterationSeconds(T, s)).toThrow(/timed at 16 rows × 24 new tokens, asked for 8 × 24/);
    expect(() => ppoIterationSeconds(T, { batchSize: 16, maxNewTokens: 32, ppoEpochs: 4 })).toThrow(/PPO estimate/);
    expect(() => ppoIterationSeconds({ ...T, decode: NaN }, { batchSize: 16, maxNewTokens: 24, ppoEpochs: 4 })).toThrow(
      /decode/,
    );
  });

  test('reads as a user would round it', () => {
    expect(formatAbout(3.24)).toBe('about 3.2 s');
    expect(formatAbout(42.4)).toBe('about 42 s');
    expect(formatAbout(200)).toBe('about 3 min');
    expect(formatAbout(9000)).toBe('about 2.5 h');
  });
});

describe('timing the pieces (worker side)', () => {
  const config = { vocabSize: 50, blockSize: 48, nLayer: 2, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 };

  test('positive times at the asked shape; the model is untouched and nothing leaks', async () => {
    await useBackend('cpu');
    const model = new GPT(config, { seed: 2, trainable: false });
    const before = [...model.params.values()].map((v) => v.dataSync().slice());
    const tensors = tf.memory().numTensors;
    const steps: number[] = [];
    const t = await timeLoraPieces(model, { batch: 4, promptTokens: 6, newTokens: 10 }, undefined, (d) =>
      steps.push(d),
    );
    expect(t).toMatchObject({ batch: 4, promptTokens: 6, newTokens: 10, rows: 4 });
    for (const k of ['prefill', 'decode', 'forward', 'trainStep', 'forwardOneRow', 'trainStepOneRow'] as const) {
      expect(Number.isFinite(t[k]), k).toBe(true);
      expect(t[k], k).toBeGreaterThan(0);
    }
    expect(steps).toEqual(Array.from({ length: LORA_TIMING_STEPS }, (_, i) => i + 1));
    // The step's peak bytes grow with the rows; held: the loaded model and the policy clone at least.
    const mem = t.memory!;
    expect(mem.stepBytesOneRow).toBeGreaterThan(0);
    expect(mem.stepBytes).toBeGreaterThan(mem.stepBytesOneRow);
    expect(mem.heldBytes).toBeGreaterThanOrEqual(2 * model.numParams() * 4);
    expect(mem.budgets).toEqual([]);
    expect(model.lora).toBeNull();
    [...model.params.values()].forEach((v, i) => expect(v.dataSync()).toEqual(before[i]));
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
  });

  test('rows timed: 4 of the batch for small models, 2 from 50M parameters on (wasm heap)', () => {
    expect(timingRows(1e6, 16)).toBe(4);
    expect(timingRows(1e6, 3)).toBe(3);
    expect(timingRows(82e6, 16)).toBe(2);
    expect(timingRows(135e6, 1)).toBe(1);
  });

  test('a batch larger than the timed rows: forward and training step on 4 rows of 9', async () => {
    await useBackend('cpu');
    const model = new GPT(config, { seed: 2, trainable: false });
    const t = await timeLoraPieces(model, { batch: 9, promptTokens: 4, newTokens: 6 });
    expect(t).toMatchObject({ batch: 9, rows: 4 });
    model.dispose();
  });

  test('a checkpoint that throws stops it between pieces and frees everything; bad shapes are refused', async () => {
    await useBackend('cpu');
    const model = new GPT(config, { seed: 2, trainable: false });
    const tensors = tf.memory().numTensors;
    let calls = 0;
    const stop = async () => {
      if (++calls === 5) throw new Error('cancelled');
    };
    await expect(timeLoraPieces(model, { batch: 2, promptTokens: 4, newTokens: 6 }, stop)).rejects.toThrow('cancelled');
    expect(tf.memory().numTensors).toBe(tensors);
    await expect(timeLoraPieces(model, { batch: 2, promptTokens: 30, newTokens: 30 })).rejects.toThrow(
      /do not fit the model's 48-token context/,
    );
    await expect(timeLoraPieces(model, { batch: 0, promptTokens: 4, newTokens: 6 })).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    await expect(timeLoraPieces(model, { batch: 4, promptTokens: 4, newTokens: 6, rows: 5 })).rejects.toThrow(
      /timed rows/,
    );
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
  });
});

describe('memory of the training step at the batch', () => {
  const MiB = 2 ** 20;
  const m: LoraStepMemory = {
    stepBytes: 400 * MiB, // 4 rows
    stepBytesOneRow: 160 * MiB, // 80 MiB a row beyond the first
    heldBytes: 700 * MiB,
    budgets: [],
  };
  test('the line through one row and the timed rows, plus what is held', () => {
    expect(stepBytesAtBatch(m, 4, 1)).toBe(860 * MiB);
    expect(stepBytesAtBatch(m, 4, 4)).toBe(1100 * MiB);
    expect(stepBytesAtBatch(m, 4, 16)).toBe((700 + 160 + 15 * 80) * MiB);
    // Timed on one row only: that row × batch.
    expect(stepBytesAtBatch({ ...m, stepBytes: 100 * MiB }, 1, 8)).toBe(1500 * MiB);
    // Noise that makes more rows look cheaper: no negative slope.
    expect(stepBytesAtBatch({ ...m, stepBytes: 100 * MiB }, 4, 16)).toBe(860 * MiB);
  });

  test('the largest batch that fits the budget with the margin', () => {
    const budget = 4096 * MiB; // room 0.9 × 4096 = 3686.4 MiB: 860 + (b − 1)·80 ≤ 3686.4 → b ≤ 36.33
    expect(MEMORY_MARGIN).toBe(0.9);
    expect(largestBatchThatFits(m, 4, budget)).toBe(36);
    expect(stepBytesAtBatch(m, 4, 36)).toBeLessThanOrEqual(budget * MEMORY_MARGIN);
    expect(stepBytesAtBatch(m, 4, 37)).toBeGreaterThan(budget * MEMORY_MARGIN);
    expect(largestBatchThatFits(m, 4, 800 * MiB)).toBe(0);
    expect(largestBatchThatFits(m, 4, null)).toBe(1024);
    expect(largestBatchThatFits({ ...m, stepBytes: 160 * MiB }, 4, budget)).toBe(1024);
    expect(largestBatchThatFits(m, 4, budget, 20)).toBe(20);
    expect(largestBatchThatFits(m, 4, budget, 1024, 1)).toBe(41); // 860 + 40·80 = 4060 ≤ 4096
  });
});

describe('Engine.timeLoraIteration (the model card’s Measure)', () => {
  test('times the loaded model once per shape and backend, reports progress, can be cancelled', async () => {
    const engine = await engineWithBundledModel('cpu');
    const progress: number[] = [];
    const req = { batch: 8, promptTokens: 8, newTokens: 12 };
    const a = await engine.timeLoraIteration('t1', req, (p) => progress.push(p.step / p.total));
    expect(a).toMatchObject({ batch: 8, promptTokens: 8, newTokens: 12, rows: 4 });
    expect(progress.at(-1)).toBe(1);
    expect(await engine.timeLoraIteration('t2', req)).toEqual(a); // cached: not timed again
    const b = await engine.timeLoraIteration('t3', { ...req, newTokens: 10 });
    expect(b.newTokens).toBe(10);
    // Cancelled between pieces: the job rejects as cancelled.
    const job = engine.timeLoraIteration('t4', { ...req, batch: 6 }, (p) => {
      if (p.step === 2) void engine.cancel('t4');
    });
    await expect(job).rejects.toBeInstanceOf(JobCancelledError);
    await expect(engine.timeLoraIteration('t5', { ...req, promptTokens: 60 })).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    // The loaded model still samples.
    const out = await engine.generate('g', {
      prompts: ['The movie was'],
      maxNewTokens: 4,
      temperature: 1,
      topK: 0,
      topP: 1,
      seed: 1,
      useCache: true,
    });
    expect(out.samples[0].ids.length).toBeGreaterThan(0);
  }, 120_000);
});
