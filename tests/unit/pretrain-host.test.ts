/**
 * Pretraining in the engine (in-thread, TF.js cpu): a model trained from scratch on a small text
 * learns it, pauses and resumes by step, beats the counting baselines it reports, and becomes the
 * loaded model; continuing the bundled model keeps its shape and tokenizer; bad input is refused.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { engineWithBundledModel } from './bundled-engine';
import { JobCancelledError, InvalidInputError } from '../../src/lib/engine/errors';
import type { PretrainEvent } from '../../src/lib/engine/types';
import { splitTrainVal, textDocuments } from '../../src/lib/pretrain/text';

const text = readFileSync('tests/fixtures/tiny-corpus/train.txt', 'utf8').split('\n').join('\n\n');
const { train, val } = splitTrainVal(textDocuments(text), 3);

describe('pretraining job', () => {
  it('trains from scratch: loss falls below the unigram line, pause and resume by step, adopt', async () => {
    const engine = await engineWithBundledModel('wasm');
    const config = {
      preset: 'micro' as const,
      steps: 40,
      batchSize: 8,
      warmup: 5,
      lr: 1e-2,
      evalEvery: 20,
      sampleEvery: 20,
      evalWindows: 8,
    };
    const status = await engine.pretrainPrepare({
      train,
      val,
      init: 'scratch',
      config,
      prompts: ['The cat'],
      name: 'mine',
    });
    expect(status.step).toBe(0);
    expect(status.modelConfig.nLayer).toBe(1);
    expect(status.baselines.bigram).toBeLessThan(status.baselines.unigram);
    expect(status.baselines.unigramBpb).toBeGreaterThan(0);
    expect(status.evalTokens).toBe(Math.min(8, Math.floor((status.valTokens - 1) / 32)) * 32);
    expect(status.evalTokens).toBeGreaterThan(100);

    const events: PretrainEvent[] = [];
    // Pause: cancel at step 25; the run keeps its state.
    await expect(
      engine.pretrainRun('p1', (e) => {
        events.push(e);
        if (e.kind === 'step' && e.step === 15) void engine.cancel('p1');
      }),
    ).rejects.toBeInstanceOf(JobCancelledError);
    const paused = (await engine.pretrainStatus())!;
    expect(paused.step).toBeGreaterThanOrEqual(15);
    expect(paused.step).toBeLessThan(40);
    const done = await engine.pretrainRun('p2', (e) => events.push(e));
    expect(done.step).toBe(40);
    const steps = events.filter((e) => e.kind === 'step').map((e) => e.step);
    expect(steps).toEqual(Array.from({ length: 40 }, (_, i) => i + 1)); // resumed where it paused, no step twice

    const evals = events.filter((e): e is Extract<PretrainEvent, { kind: 'eval' }> => e.kind === 'eval');
    expect(evals[0].step).toBe(0);
    expect(evals.at(-1)!.step).toBe(40);
    expect(evals.at(-1)!.valLoss).toBeLessThan(evals[0].valLoss - 1);
    expect(evals.at(-1)!.valLoss).toBeLessThan(status.baselines.unigram);
    expect(done.lastValBpb).toBeCloseTo((done.lastValLoss! * done.valTokens) / (Math.LN2 * done.valBytes), 10);
    const samples = events.filter((e) => e.kind === 'samples');
    expect(samples.map((e) => e.step)).toEqual([0, 20, 40]);

    const info = await engine.pretrainAdopt();
    expect(info.name).toBe('mine');
    expect(info.config.nEmbd).toBe(32);
    expect(info.card?.trainSteps).toBe(40);
    expect(info.card?.valLoss).toBeCloseTo(done.lastValLoss!, 6);
    const out = await engine.generate('g', {
      prompts: ['The cat'],
      maxNewTokens: 5,
      temperature: 0,
      topK: 0,
      topP: 1,
      seed: 1,
      useCache: true,
    });
    expect(out.samples[0].ids.length).toBeGreaterThan(0);
    await engine.pretrainDispose();
    expect(await engine.pretrainStatus()).toBeNull();
  }, 120_000);

  it('continues the loaded model with its shape; refuses text too short for a window', async () => {
    const engine = await engineWithBundledModel('wasm');
    const s = await engine.pretrainPrepare({
      train,
      val,
      init: 'continue',
      config: { steps: 2, batchSize: 2, evalWindows: 2 },
    });
    expect(s.modelConfig.nEmbd).toBe(128);
    expect(s.params).toBe(965_504);
    expect(s.name).toBe('tiny-gpt + pretraining');
    const done = await engine.pretrainRun('c');
    expect(done.step).toBe(2);
    await expect(
      engine.pretrainPrepare({ train: ['a few words'], val: ['more'], init: 'scratch', config: { preset: 'tiny' } }),
    ).rejects.toThrow(/one window of this model needs 66\. Add more text/);
    await expect(engine.pretrainPrepare({ train, val, init: 'scratch', config: { beta2: 2 } })).rejects.toThrow(
      /beta2: must be a number ≥ 0 and < 1/,
    );
    await expect(engine.pretrainPrepare({ train, val: [], init: 'scratch' })).rejects.toBeInstanceOf(InvalidInputError);
    // The refused requests left the earlier run as it was.
    expect((await engine.pretrainStatus())!.step).toBe(2);
  }, 120_000);
});
