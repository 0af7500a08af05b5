/**
 * The user's JavaScript reward functions as PPO's reward (in-process here: Node has no Web
 * Worker): each function's `rewards/<name>/mean|std` is logged beside the weighted total, and a
 * function that throws fails the score phase with nothing updated, so the run can go on.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { useBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import { PpoTrainer } from '../../src/lib/rlhf/ppo';
import { meanStd, RewardFunctionError } from '../../src/lib/rlhf/reward-functions';
import { functionRewardSource, RewardFunctionRunner } from '../../src/lib/engine/reward-fn-runner';

const EOT = 15;
const tokenizer = {
  eotId: EOT,
  encode: (text: string) => [...text].map((ch) => ch.charCodeAt(0) - 97),
  decode: (ids: number[]) => ids.map((i) => (i === EOT ? '' : String.fromCharCode(97 + i))).join(''),
};
const PROMPTS = ['ab', 'cfe', 'g', 'hijk'];

function trainer(model: GPT, functions: { name: string; code: string; weight: number }[]) {
  const reward = functionRewardSource(functions, new RewardFunctionRunner());
  return new PpoTrainer({
    model,
    reward,
    tokenizer,
    prompts: PROMPTS,
    config: { batchSize: 4, maxNewTokens: 5, miniBatches: 1, ppoEpochs: 1, seed: 2 },
  });
}

async function weights(t: PpoTrainer): Promise<number[]> {
  const out: number[] = [];
  for (const v of t.policy.params.values()) out.push(...((await v.data()) as Float32Array));
  return out;
}

beforeAll(async () => {
  await useBackend('cpu');
});

describe('reward functions in PPO', () => {
  test('logs rewards/<name>/mean|std of each function and trains on their weighted sum', async () => {
    const model = new GPT(
      { vocabSize: 16, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 },
      { seed: 1 },
    );
    const t = trainer(model, [
      { name: 'count_d', code: 'const reward = (p, c) => c.map((x) => x.split("d").length - 1);', weight: 2 },
      {
        name: 'len',
        code: 'function reward(p, c, { completionIds }) { return completionIds.map((r) => r.length); }',
        weight: -0.5,
      },
    ]);
    const it = await t.iteration();
    const texts = it.rollout.texts;
    const counts = texts.map((x) => x.split('d').length - 1);
    const lens = it.rollout.responseIds.map((r) => r.length);
    expect(it.metrics['rewards/count_d/mean']).toBeCloseTo(meanStd(counts).mean, 12);
    expect(it.metrics['rewards/count_d/std']).toBeCloseTo(meanStd(counts).std, 12);
    expect(it.metrics['rewards/len/mean']).toBeCloseTo(meanStd(lens).mean, 12);
    expect(it.score.rawScores).toEqual(counts.map((c, i) => 2 * c - 0.5 * lens[i]));
    expect(t.history[0]['rewards/len/std']).toBe(it.metrics['rewards/len/std']);
    t.dispose();
    model.dispose();
  });

  test('a function that throws fails the score phase; no update is made and the run goes on', async () => {
    const model = new GPT(
      { vocabSize: 16, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 },
      { seed: 1 },
    );
    const t = trainer(model, [
      { name: 'bad', code: 'function reward(p, c) {\n  return c.map((x) => x.nope.length);\n}', weight: 1 },
    ]);
    const before = await weights(t);
    await t.rollout();
    const err = await t.score().catch((e) => e);
    expect(err).toBeInstanceOf(RewardFunctionError);
    expect(err.message).toMatch(/^Reward function "bad", line 2: TypeError/);
    expect(t.nextPhase).toBe('score'); // the batch is kept: a phase-by-phase run can retry it
    t.abandonIteration();
    expect(t.completedIterations).toBe(0);
    expect(await weights(t)).toEqual(before);
    t.dispose();
    model.dispose();
  });
});
