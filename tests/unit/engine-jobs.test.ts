/**
 * The engine's model, reward-model and PPO jobs, in-thread on a tiny model: what the
 * worker runs for the UI, through the same `Engine` interface.
 */
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { useBackend } from './tf-backends';
import { createEngine } from '../../src/lib/engine/engine';
import { JobCancelledError, ModelLoadError, NotReadyError } from '../../src/lib/engine/errors';
import type { Engine, ModelFiles } from '../../src/lib/engine/types';
import { GPT } from '../../src/lib/model/gpt';
import { trainBpe } from '../../src/lib/model/tokenizer';
import { configToHF, saveModelSafetensors } from '../../src/lib/model/weights';
import { defaultLabellerConfig } from '../../src/lib/rlhf/labellers';

const wasmPath = fileURLToPath(new URL('../../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url));

const TEXTS = [
  'The movie was great and I loved it.',
  'The movie was awful and boring.',
  'The food was good. The service was bad.',
  'Once upon a time, a fox lived by the river.',
];

async function tinyModelFiles(): Promise<ModelFiles> {
  const tok = trainBpe(TEXTS, 40);
  const config = { vocabSize: tok.vocabSize, blockSize: 32, nLayer: 1, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 };
  const model = new GPT(config, { seed: 3 });
  const weights = await saveModelSafetensors(model, 'F32');
  model.dispose();
  return {
    name: 'tiny',
    source: 'files',
    config: JSON.stringify(configToHF(config, tok.eotId)),
    tokenizer: JSON.stringify(tok.toJSON()),
    weights: weights.slice().buffer,
  };
}

async function engineWithModel(): Promise<Engine> {
  await useBackend('cpu');
  const engine = createEngine();
  await engine.init({ backend: 'cpu', wasmPath });
  await engine.loadModel(await tinyModelFiles());
  return engine;
}

describe('engine jobs', () => {
  it('generates seeded, streamed samples and keeps the old model when a load fails', async () => {
    const engine = await engineWithModel();
    const req = {
      prompts: ['The movie was ', 'Once'],
      maxNewTokens: 6,
      temperature: 1,
      topK: 0,
      topP: 1,
      seed: 5,
      useCache: true,
    };
    const steps: number[] = [];
    const a = await engine.generate('g1', req, (p) => steps.push(p.step));
    const b = await engine.generate('g2', req);
    expect(a.samples.map((s) => s.text)).toEqual(b.samples.map((s) => s.text));
    expect(a.samples[0].prompt).toBe('The movie was'); // trailing space held back
    expect(steps[0]).toBe(1);
    const files = await tinyModelFiles();
    await expect(engine.loadModel({ ...files, weights: files.weights.slice(0, 100) })).rejects.toThrow();
    await expect(engine.loadModel({ ...files, config: '{' })).rejects.toBeInstanceOf(ModelLoadError);
    expect((await engine.modelInfo())!.name).toBe('tiny');
    const tokens = await engine.inspectTokens(a.samples[0].promptIds, a.samples[0].ids);
    expect(tokens).toHaveLength(a.samples[0].ids.length);
    expect(tokens[0].top).toHaveLength(5);
  });

  it('trains a reward model, activates it, scores, and PPO runs iterations on it and on a labeller', async () => {
    const engine = await engineWithModel();
    await expect(engine.scoreResponses([{ prompt: 'x', response: 'y' }])).rejects.toBeInstanceOf(NotReadyError);
    const prompts = ['The movie was', 'The food was', 'The book was', 'The show was', 'My day was'];
    const pairs = prompts.flatMap((prompt) =>
      [0, 1, 2].map((i) => ({ prompt, chosen: ` great great${' !'.repeat(i)}`, rejected: ` awful${' .'.repeat(i)}` })),
    );
    const events: string[] = [];
    const { summary, state } = await engine.trainRewardModel(
      'rm',
      {
        id: 'rm-1',
        name: 'test',
        pairs,
        recordIds: [],
        mode: 'head',
        pooling: 'mean',
        epochs: 30,
        valFraction: 0.4,
        seed: 1,
      },
      (e) => events.push(e.type),
    );
    expect(events[0]).toBe('start');
    expect(events).toContain('epoch');
    expect(summary.valPairs).toBeGreaterThan(0);
    expect(state.weights.size).toBeGreaterThan(0);
    expect((await engine.activeRewardModel())!.id).toBe('rm-1');
    const [good, bad] = await engine.scoreResponses([
      { prompt: 'The movie was', response: ' great great' },
      { prompt: 'The movie was', response: ' awful' },
    ]);
    expect(good).toBeGreaterThan(bad);

    // Too few pairs: a clear error, and the active reward model stays.
    await expect(
      engine.trainRewardModel('rm2', { id: 'rm-2', name: 'x', pairs: pairs.slice(0, 3), recordIds: [], mode: 'head' }),
    ).rejects.toThrow(/pairs/);
    expect((await engine.activeRewardModel())!.id).toBe('rm-1');

    // PPO on the reward model: two iterations, then one phase at a time.
    await engine.ppoCreate({
      prompts,
      evalPrompts: prompts.slice(0, 2),
      config: { batchSize: 4, maxNewTokens: 6, miniBatches: 2, ppoEpochs: 1, seed: 2 },
      reward: { kind: 'reward-model' },
      gold: defaultLabellerConfig('sentiment'),
    });
    const seen: string[] = [];
    let status = await engine.ppoRun('ppo', { iterations: 2, evalEvery: 1 }, (e) => seen.push(e.kind));
    expect(status.iteration).toBe(2);
    expect(seen.filter((k) => k === 'iteration')).toHaveLength(2);
    expect(seen).toContain('eval');
    const phases: string[] = [];
    for (let i = 0; i < 4; i++) {
      status = await engine.ppoRun(`ph${i}`, { iterations: 1, phase: true }, (e) => {
        if (e.kind === 'phase') phases.push(e.phase);
      });
    }
    expect(phases).toEqual(['rollout', 'score', 'advantages', 'update']);
    expect(status.iteration).toBe(3);

    // Cancelling mid-run keeps the completed iterations; the state resumes.
    let n = 0;
    await expect(
      engine.ppoRun('ppo-c', { iterations: 50 }, (e) => {
        if (e.kind === 'iteration' && ++n === 1) void engine.cancel('ppo-c');
      }),
    ).rejects.toBeInstanceOf(JobCancelledError);
    const after = (await engine.ppoStatus())!;
    expect(after.iteration).toBeGreaterThanOrEqual(4);
    expect(after.nextPhase).toBe('rollout');
    const saved = await engine.ppoState();
    expect(saved.iteration).toBe(after.iteration);

    // Labeller reward, rebuilt from the saved state.
    const rebuilt = await engine.ppoCreate(
      {
        prompts,
        evalPrompts: [],
        config: saved.config,
        reward: { kind: 'labeller', labeller: defaultLabellerConfig('sentiment') },
      },
      saved,
    );
    expect(rebuilt.iteration).toBe(after.iteration);
    await engine.ppoDispose();
  });
});
