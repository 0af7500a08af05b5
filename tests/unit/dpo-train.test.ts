/**
 * DPO on a tiny random GPT (V = 16, C = 16, one layer, context 16) with a character tokenizer
 * ('a'…'o' = 0…14, end-of-text = 15), on a separable toy set (chosen completions use 'd',
 * rejected ones 'k'): margins and accuracy rise (held-out prompts too), the start equals the
 * reference (loss log 2, margins 0), sigmoid and ipo both train, bad input and divergence give
 * named errors with the weights restored, no tensor growth.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { tf, useBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import type { TrainingPair } from '../../src/lib/data/records';
import { Rng } from '../../src/lib/model/rng';
import { dpoLoss } from '../../src/lib/rlhf';
import { dpoMetrics, trainDpo, type DpoConfig } from '../../src/lib/rlhf/dpo-train';
import type { TuneEvent } from '../../src/lib/rlhf/offline-train';
import { TuneDivergedError, TuneInputError } from '../../src/lib/rlhf/errors';

const V = 16;
const EOT = 15;
const tokenizer = {
  eotId: EOT,
  encode: (text: string) => [...text].map((ch) => ch.charCodeAt(0) - 97),
};

function tinyModel(seed = 1): GPT {
  return new GPT({ vocabSize: V, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 }, { seed });
}

/** 24 prompts; for each, chosen = random letters with 'd' mixed in, rejected = the same with 'k'. */
function toyPairs(n = 24, seed = 5): TrainingPair[] {
  const rng = new Rng(seed);
  const letter = () => String.fromCharCode(97 + [0, 1, 2, 4, 5, 6, 7][rng.int(7)]);
  return Array.from({ length: n }, (_, i) => {
    const prompt = Array.from({ length: 2 + (i % 3) }, letter).join('') + String.fromCharCode(97 + (i % 8));
    const body = Array.from({ length: 3 }, letter);
    const chosen = body.map((c, j) => (j % 2 ? 'd' : c)).join('');
    const rejected = body.map((c, j) => (j % 2 ? 'k' : c)).join('');
    return { prompt, chosen, rejected };
  });
}

const FAST: Partial<DpoConfig> = {
  epochs: 8,
  learningRate: 3e-3,
  batchSize: 8,
  beta: 0.5,
  valFraction: 0.25,
  lrSchedule: 'constant',
};

async function weights(m: GPT): Promise<Float32Array[]> {
  return Promise.all([...m.params.values()].map(async (v) => new Float32Array((await v.data()) as Float32Array)));
}

beforeAll(async () => {
  await useBackend('cpu');
});

describe('trainDpo', () => {
  test('sigmoid: margins and accuracy rise on training and held-out prompts; starts at the reference; no tensor growth', async () => {
    const model = tinyModel();
    const events: TuneEvent[] = [];
    const start = tf.memory().numTensors;
    const res = await trainDpo(model, toyPairs(), { tokenizer, config: FAST }, (e) => events.push(e));
    expect(tf.memory().numTensors).toBe(start);

    const s = events[0];
    if (s.type !== 'start') throw new Error('first event is not start');
    // Policy = reference at the start: loss log 2, rewards and margins 0.
    expect(s.initial.loss).toBeCloseTo(Math.LN2, 5);
    expect(s.initial['rewards/margins']).toBeCloseTo(0, 5);
    expect(s.initial.eval_loss).toBeCloseTo(Math.LN2, 5);
    expect(s.val).toBeGreaterThan(0);
    expect(s.train + s.val).toBe(24);

    const steps = res.history.filter((r) => 'rewards/margins' in r.metrics && !('eval_loss' in r.metrics));
    expect(steps.length).toBe(res.steps);
    const last = steps[steps.length - 1].metrics;
    expect(last['rewards/margins']).toBeGreaterThan(0.5);
    expect(last['rewards/accuracies']).toBeGreaterThanOrEqual(0.9);
    expect(last.loss).toBeLessThan(Math.LN2 - 0.2);
    // Chosen log-probs rise relative to rejected ones.
    expect(last['logps/chosen'] - last['logps/rejected']).toBeGreaterThan(
      steps[0].metrics['logps/chosen'] - steps[0].metrics['logps/rejected'],
    );
    // Held out (prompts never trained on): the preference generalises.
    expect(res.final['eval_rewards/margins']).toBeGreaterThan(0.2);
    expect(res.final['eval_rewards/accuracies']).toBeGreaterThanOrEqual(0.8);
    model.dispose();
  }, 120_000);

  test('ipo trains too (per-token mean log-probs)', async () => {
    const model = tinyModel(3);
    const res = await trainDpo(model, toyPairs(16, 9), {
      tokenizer,
      config: { ...FAST, lossType: 'ipo', beta: 0.5, epochs: 6, valFraction: 0 },
    });
    const steps = res.history.filter((r) => 'loss' in r.metrics);
    // IPO's loss starts at (1/(2β))² = 1 and falls as the margin approaches 1/(2β).
    expect(steps[0].metrics.loss).toBeLessThanOrEqual(1.0001);
    expect(steps[steps.length - 1].metrics.loss).toBeLessThan(steps[0].metrics.loss);
    expect(steps[steps.length - 1].metrics['rewards/margins']).toBeGreaterThan(0);
    model.dispose();
  }, 60_000);

  test('metrics are TRL’s, computed by dpoLoss', () => {
    const pc = [-3, -4];
    const pr = [-5, -3.5];
    const rc = [-3.5, -4];
    const rr = [-4.5, -4];
    const m = dpoMetrics(pc, pr, rc, rr, { beta: 0.2, lossType: 'sigmoid', labelSmoothing: 0 });
    const want = dpoLoss(pc, pr, rc, rr, 0.2, 'sigmoid');
    expect(m.loss).toBeCloseTo(want.loss, 12);
    expect(m['rewards/chosen']).toBeCloseTo((0.2 * 0.5 + 0) / 2, 12);
    expect(m['rewards/rejected']).toBeCloseTo((0.2 * -0.5 + 0.2 * 0.5) / 2, 12);
    expect(m['rewards/accuracies']).toBe(0.5);
    expect(m['rewards/margins']).toBeCloseTo((0.2 - 0.1) / 2, 12);
    expect(m['logps/chosen']).toBe(-3.5);
    expect(m['logps/rejected']).toBe(-4.25);
  });

  test('a separate reference: the start is not log 2 when policy ≠ reference', async () => {
    const model = tinyModel(1);
    const ref = tinyModel(7);
    const events: TuneEvent[] = [];
    await trainDpo(
      model,
      toyPairs(8),
      { tokenizer, reference: ref, config: { ...FAST, epochs: 1, valFraction: 0 } },
      (e) => events.push(e),
    );
    const s = events[0];
    expect(s.type === 'start' && Math.abs(s.initial.loss - Math.LN2)).toBeGreaterThan(1e-4);
    model.dispose();
    ref.dispose();
  }, 30_000);

  test('no pairs or only ties: TuneInputError; weights unchanged', async () => {
    const model = tinyModel();
    const w0 = await weights(model);
    const err = await trainDpo(model, [], { tokenizer }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(TuneInputError);
    expect((err as Error).message).toMatch(/DPO needs preference pairs/);
    await expect(trainDpo(model, [{ prompt: 'a', chosen: 'bc', rejected: 'bc' }], { tokenizer })).rejects.toThrow(
      /No usable pairs/,
    );
    await expect(trainDpo(model, toyPairs(4), { tokenizer, config: { beta: 0 } })).rejects.toBeInstanceOf(
      TuneInputError,
    );
    expect(await weights(model)).toEqual(w0);
    model.dispose();
  });

  test('a NaN mid-training throws TuneDivergedError and restores the weights', async () => {
    const model = tinyModel();
    const w0 = await weights(model);
    const start = tf.memory().numTensors;
    let calls = 0;
    const poison = async () => {
      if (++calls === 2) {
        const v = model.params.get('transformer.h.0.mlp.c_fc.bias')!;
        const nan = tf.fill(v.shape, NaN);
        v.assign(nan);
        nan.dispose();
      }
    };
    await expect(
      trainDpo(model, toyPairs(), { tokenizer, config: { ...FAST, epochs: 2 } }, undefined, poison),
    ).rejects.toBeInstanceOf(TuneDivergedError);
    expect(await weights(model)).toEqual(w0);
    expect(tf.memory().numTensors).toBe(start);
    model.dispose();
  }, 30_000);
});

describe('engine: sftRun / dpoRun / tuneAdopt (in-thread, shipped model, wasm)', () => {
  test('SFT → adopt makes the tuned weights the loaded model; bad input is a named error that revives', async () => {
    const { engineWithBundledModel } = await import('./bundled-engine');
    const { reviveError } = await import('../../src/lib/engine/errors');
    const engine = await engineWithBundledModel('wasm');
    const demo = [{ prompt: 'The movie was', completion: ' a quiet triumph of zebra jazz.' }];
    const cfg = { epochs: 5, batchSize: 1, learningRate: 3e-3, valFraction: 0, lrSchedule: 'constant' as const };
    const firstLosses: number[] = [];
    const s1 = await engine.sftRun('sft-1', demo, cfg, (e) => {
      if (e.type === 'step') firstLosses.push(e.row.metrics.loss);
    });
    expect(s1.method).toBe('sft');
    expect(s1.steps).toBe(5);
    expect(firstLosses[firstLosses.length - 1]).toBeLessThan(firstLosses[0]);
    expect((await engine.tuneStatus())?.steps).toBe(5);
    const samples = await engine.tuneSamples(['The movie was'], 8);
    expect(samples).toHaveLength(1);

    // Before adopting, the loaded model is unchanged: a 1-step run starts from the original loss.
    const again: number[] = [];
    await engine.sftRun('sft-2', demo, { ...cfg, epochs: 1 }, (e) => {
      if (e.type === 'step') again.push(e.row.metrics.loss);
    });
    expect(again[0]).toBeCloseTo(firstLosses[0], 4);

    // Re-run the 5-step SFT, adopt it, and the next run starts from the tuned loss.
    await engine.sftRun('sft-3', demo, cfg);
    const info = await engine.tuneAdopt();
    expect(info.name).toBe('tiny-gpt + SFT');
    expect((await engine.modelInfo())?.name).toBe('tiny-gpt + SFT');
    expect(await engine.tuneStatus()).toBeNull();
    const after: number[] = [];
    await engine.sftRun('sft-4', demo, { ...cfg, epochs: 1 }, (e) => {
      if (e.type === 'step') after.push(e.row.metrics.loss);
    });
    expect(after[0]).toBeLessThan(firstLosses[0] * 0.7);

    // Bad input: named errors, and the tuned model of the last good run stays.
    const e1 = await engine.dpoRun('dpo-x', [], {}).catch((e: Error) => e);
    expect(e1).toBeInstanceOf(TuneInputError);
    const e2 = await engine.sftRun('sft-x', [{ prompt: 'a', completion: '' }], {}).catch((e: Error) => e);
    expect(e2).toBeInstanceOf(TuneInputError);
    expect((await engine.tuneStatus())?.steps).toBe(1);
    // Across the worker boundary the class comes back from its name.
    const plain = Object.assign(new Error((e1 as Error).message), { name: 'TuneInputError' });
    expect(reviveError(plain)).toBeInstanceOf(TuneInputError);
    expect(reviveError(Object.assign(new Error('x'), { name: 'TuneDivergedError' }))).toBeInstanceOf(TuneDivergedError);
    await engine.tuneDiscard();
    expect(await engine.tuneStatus()).toBeNull();
  }, 120_000);
});

describe('trainDpo with LoRA (model/lora.ts)', () => {
  test('the reference is the model with adapters off: starts at log 2; base unchanged; margins rise', async () => {
    const model = tinyModel();
    const w0 = await weights(model);
    const events: TuneEvent[] = [];
    const res = await trainDpo(
      model,
      toyPairs(),
      {
        tokenizer,
        config: { ...FAST, learningRate: 1e-2, lora: true, loraR: 4, loraTargetModules: ['c_attn', 'c_proj', 'c_fc'] },
      },
      (e) => events.push(e),
    );
    const s = events[0];
    if (s.type !== 'start') throw new Error('first event is not start');
    expect(s.initial.loss).toBeCloseTo(Math.LN2, 5); // fresh adapters (B = 0): policy = reference
    expect(await weights(model)).toEqual(w0);
    const steps = res.history.filter((r) => 'rewards/margins' in r.metrics && !('eval_loss' in r.metrics));
    const last = steps[steps.length - 1].metrics;
    expect(last.loss).toBeLessThan(Math.LN2 - 0.1);
    expect(last['rewards/margins']).toBeGreaterThan(0.2);
    expect(model.lora!.variables().every((v) => v.dataSync().some((x) => x !== 0))).toBe(true);
    model.dispose();
  }, 120_000);

  test('adapters already on the model (an imported adapter): the reference is the base, not the adapted start', async () => {
    const model = tinyModel();
    model.addAdapters({ r: 2, alpha: 4, dropout: 0, targetModules: null }, 7);
    for (const ad of model.lora!.adapters.values())
      tf.tidy(() => ad.b.assign(tf.randomNormal(ad.b.shape, 0, 1, 'float32', 3)));
    const events: TuneEvent[] = [];
    await trainDpo(model, toyPairs(8), { tokenizer, config: { ...FAST, epochs: 1, valFraction: 0 } }, (e) =>
      events.push(e),
    );
    const s = events[0];
    if (s.type !== 'start') throw new Error('first event is not start');
    expect(Math.abs(s.initial['rewards/margins'])).toBeGreaterThan(1e-3); // policy ≠ reference at the start
    model.dispose();
  }, 60_000);
});
