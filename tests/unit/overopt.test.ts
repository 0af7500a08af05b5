/**
 * Over-optimisation (Gao, Schulman & Hilton 2022): the gold-peak logic and summary of
 * src/lib/rlhf/overopt.ts on hand-computed rows, and the engine's evaluation with several
 * samples per prompt and each sample's KL to the reference.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { engineWithBundledModel } from './bundled-engine';
import { InvalidInputError } from '../../src/lib/engine/errors';
import type { PpoSetup } from '../../src/lib/engine/types';
import { defaultLabellerConfig } from '../../src/lib/rlhf/labellers';
import {
  goldPeak,
  overoptRows,
  overoptView,
  sampleStd,
  smooth3,
  standardise,
  type EvalLike,
  type OveroptRow,
} from '../../src/lib/rlhf/overopt';

const row = (iteration: number, gold: number, proxy: number, kl = iteration): OveroptRow => ({
  iteration,
  gold,
  proxy,
  kl,
  sqrtKl: Math.sqrt(kl),
});

/** Rows over iterations 0, 5, 10, …, KL = iteration. */
const rows = (gold: number[], proxy: number[]) => gold.map((g, i) => row(5 * i, g, proxy[i]));

describe('goldPeak', () => {
  it('smooths over 3 evaluations (2 at the ends)', () => {
    expect(smooth3([0, 2, 4, 3, 1])).toEqual([1, 2, 3, 3 - 1 / 3, 2]);
    expect(smooth3([5])).toEqual([5]);
  });

  it('gold up then down while the proxy rises: shown, with the smoothed peak', () => {
    // Smoothed gold [1, 2, 3, 8/3, 2] peaks at index 2; smoothed proxy [0.5, 1, 2, 3, 3.5].
    const p = goldPeak(rows([0, 2, 4, 3, 1], [0, 1, 2, 3, 4]), 1);
    expect(p).toMatchObject({ shown: true, peakIndex: 2, peakIteration: 10, peakGold: 3, endGold: 2 });
    expect(p.peakSqrtKl).toBeCloseTo(Math.sqrt(10), 12);
    expect(p.peakProxy).toBe(2);
    expect(p.endProxy).toBe(3.5);
  });

  it('not shown: gold still rising, fall under a quarter of the base std, or proxy falling too', () => {
    expect(goldPeak(rows([0, 1, 2, 3, 4], [0, 1, 2, 3, 4]), 1).shown).toBe(false);
    // Fall of 1 (3 → 2) is less than 0.25 × 5.
    expect(goldPeak(rows([0, 2, 4, 3, 1], [0, 1, 2, 3, 4]), 5).shown).toBe(false);
    // Proxy falls after the peak as well: the policy just got worse, not over-optimised.
    expect(goldPeak(rows([0, 2, 4, 3, 1], [0, 1, 2, 1, 0]), 1).shown).toBe(false);
    expect(goldPeak([], 1).shown).toBe(false);
    // Gold only falls while the proxy rises: a bad proxy from the start, not a peak.
    expect(goldPeak(rows([4, 4, 3, 1, 0], [0, 1, 2, 3, 4]), 1).shown).toBe(false);
    // The same fall after a real rise is a peak.
    expect(goldPeak(rows([0, 2, 4, 1, 0], [0, 1, 2, 3, 4]), 1).shown).toBe(true);
  });
});

describe('overoptRows and standardise', () => {
  const evals: EvalLike[] = [
    {
      iteration: 5,
      samples: [
        { score: 2, gold: 6, kl: 3 },
        { score: 4, gold: 10, kl: 5 },
      ],
    },
    {
      iteration: 0,
      samples: [
        { score: 1, gold: 2, kl: 0.01 },
        { score: 3, gold: 4, kl: -0.01 },
        { score: 2, gold: 0, kl: 0 },
      ],
    },
    // No gold labeller, or no KL (an older run): left out.
    { iteration: 10, samples: [{ score: 5, gold: null, kl: 9 }] },
    { iteration: 15, samples: [{ score: 5, gold: 3 }] },
  ];

  it('means per evaluation in iteration order, √KL, and the first evaluation’s stds (n − 1)', () => {
    const { rows: r, base } = overoptRows(evals);
    expect(r.map((x) => x.iteration)).toEqual([0, 5]);
    expect(r[0]).toEqual({ iteration: 0, gold: 2, proxy: 2, kl: 0, sqrtKl: 0 });
    expect(r[1]).toEqual({ iteration: 5, gold: 8, proxy: 3, kl: 4, sqrtKl: 2 });
    expect(base!.goldStd).toBeCloseTo(2, 12); // gold 2, 4, 0
    expect(base!.proxyStd).toBeCloseTo(1, 12); // score 1, 3, 2
    expect(sampleStd([1, 3, 2])).toBeCloseTo(1, 12);
  });

  it('a negative mean KL (estimator noise) counts as √KL 0', () => {
    const { rows: r } = overoptRows([{ iteration: 0, samples: [{ score: 0, gold: 0, kl: -0.5 }] }]);
    expect(r[0].sqrtKl).toBe(0);
  });

  it('standardised: change since the first row in its stds; both series start at 0', () => {
    const { rows: r, base } = overoptRows(evals);
    const pts = standardise(r, base);
    expect(pts[0]).toEqual({ iteration: 0, x: 0, gold: 0, proxy: 0 });
    expect(pts[1].x).toBe(2);
    expect(pts[1].gold).toBeCloseTo(3, 12); // (8 − 2) / 2
    expect(pts[1].proxy).toBeCloseTo(1, 12); // (3 − 2) / 1
    // A spread of 0 (one sample) falls back to raw units.
    expect(standardise([row(0, 1, 1), row(1, 4, 2)], { goldStd: NaN, proxyStd: 0 })[1]).toMatchObject({
      gold: 3,
      proxy: 1,
    });
  });
});

describe('overoptView summary', () => {
  /** One evaluation per row, two samples each (gold ± 1, proxy ± 0.5: stds √2 and √0.5). */
  const toEvals = (gold: number[], proxy: number[], kl: number[]): EvalLike[] =>
    gold.map((g, i) => ({
      iteration: 5 * i,
      samples: [
        { score: proxy[i] - 0.5, gold: g - 1, kl: kl[i] },
        { score: proxy[i] + 0.5, gold: g + 1, kl: kl[i] },
      ],
    }));

  it('the over-optimisation case names the peak’s √KL and iteration, the fall and the proxy’s rise', () => {
    const v = overoptView(toEvals([0, 2, 4, 3, 1], [0, 1, 2, 3, 4], [0, 1, 4, 9, 16]));
    expect(v.shown).toBe(true);
    expect(v.peakIndex).toBe(2);
    expect(v.points).toHaveLength(5);
    expect(v.summary).toBe(
      'Over-optimisation: the gold score peaked at √KL 2.00 (iteration 10) and fell by 1.00 (0.7 std) by √KL 4.00, ' +
        'while the proxy rose by 1.50 (2.1 std) (3-point averages).',
    );
  });

  it('gold still rising: no peak yet, with the raw changes since the first evaluation', () => {
    const v = overoptView(toEvals([0, 1, 2], [0, 0.5, 1], [0, 1, 4]));
    expect(v.shown).toBe(false);
    expect(v.peakIndex).toBe(2);
    expect(v.summary).toBe(
      'No gold peak yet: since iteration 0 the gold score rose by 2.00 (1.4 std) and the proxy rose by 1.00 (1.4 std), up to √KL 2.00.',
    );
  });

  it('gold fell without the proxy rising: the raw peak, and not called over-optimisation', () => {
    const v = overoptView(toEvals([0, 3, 1], [0, 1, 0.5], [0, 1, 4]));
    expect(v.shown).toBe(false);
    expect(v.peakIndex).toBe(1);
    expect(v.summary).toMatch(
      /^The gold score was highest at √KL 1\.00 \(iteration 5\) and is 2\.00 \(1\.4 std\) below/,
    );
    expect(v.summary).toMatch(/proxy fell by 0\.50 \(0\.7 std\): not \(yet\)/);
  });

  it('one or no evaluation', () => {
    expect(overoptView([]).summary).toBe('No evaluation with gold scores and KL yet.');
    expect(overoptView([]).peakIndex).toBe(-1);
    expect(overoptView(toEvals([3], [1], [0])).summary).toBe(
      'One evaluation so far (iteration 0, √KL 0.00): gold 3.00, proxy 1.00.',
    );
  });
});

// ------------------------------------------------------------------ engine evaluation

const EVAL_PROMPTS = ['The movie was', 'This restaurant'];
const setup = (patch: Partial<PpoSetup> = {}): PpoSetup => ({
  prompts: ['The movie was', 'The food was', 'This book', 'This restaurant'],
  evalPrompts: EVAL_PROMPTS,
  config: { batchSize: 4, maxNewTokens: 8, miniBatches: 1, ppoEpochs: 1, lr: 1e-3, seed: 1 },
  reward: { kind: 'labeller', labeller: defaultLabellerConfig('sentiment') },
  gold: { ...defaultLabellerConfig('sentiment'), noise: 0 },
  ...patch,
});

describe('engine evaluation: samples per prompt and KL to the reference', () => {
  it('evalSamples copies per prompt (copy-major), distinct draws, KL ≈ 0 before training and > 0 after', async () => {
    const engine = await engineWithBundledModel();
    await engine.ppoCreate(setup({ evalSamples: 6 }));
    const before = await engine.ppoEvaluate();
    expect(before.map((s) => s.prompt)).toEqual(Array.from({ length: 6 }, () => EVAL_PROMPTS).flat());
    // The copies of one prompt are separate draws, not one sample repeated.
    const firstPrompt = before.filter((s) => s.prompt === EVAL_PROMPTS[0]).map((s) => s.text);
    expect(new Set(firstPrompt).size).toBeGreaterThan(1);
    for (const s of before) {
      expect(s.gold).not.toBeNull();
      // Policy = reference: Σ log π − log π_ref is 0 up to float rounding (tokens aligned).
      expect(Math.abs(s.kl!)).toBeLessThan(1e-3);
    }
    // Same seed, same policy: the evaluation repeats exactly (comparable across iterations),
    // and leaves no tensors behind.
    const tensors = tf.memory().numTensors;
    expect(tensors).toBeGreaterThan(0); // the engine's TF.js (the model's weights)
    expect((await engine.ppoEvaluate()).map((s) => s.text)).toEqual(before.map((s) => s.text));
    expect(tf.memory().numTensors).toBe(tensors);

    await engine.ppoRun('p', { iterations: 1 });
    const after = await engine.ppoEvaluate();
    const kls = after.map((s) => s.kl!);
    expect(kls.every(Number.isFinite)).toBe(true);
    // E_π[log π − log π_ref] = KL(π ‖ π_ref) > 0 once the policy has moved.
    expect(kls.reduce((a, b) => a + b, 0) / kls.length).toBeGreaterThan(0.1);
    await engine.ppoDispose();
  });

  it('one sample per prompt by default; a bad evalSamples is an InvalidInputError', async () => {
    const engine = await engineWithBundledModel();
    await engine.ppoCreate(setup());
    const one = await engine.ppoEvaluate();
    expect(one.map((s) => s.prompt)).toEqual(EVAL_PROMPTS);
    await engine.ppoCreate(setup({ evalSamples: 1 }));
    expect((await engine.ppoEvaluate()).map((s) => s.text)).toEqual(one.map((s) => s.text));
    for (const bad of [0, 1.5, 33])
      await expect(engine.ppoCreate(setup({ evalSamples: bad }))).rejects.toBeInstanceOf(InvalidInputError);
    await engine.ppoDispose();
  });
});
