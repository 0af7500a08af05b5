/**
 * Verifiable-reward scenarios: the held-out pass rate (src/lib/rlhf/pass-rate.ts) on a tiny
 * random GPT with a real JavaScript reward function (run in-process in Node by the app's runner),
 * `rewards/<fn>/mean|std` in GRPO/RLOO metrics, and the GRPO scenario files and their validator
 * (src/lib/data/scenarios.ts, static/scenarios/grpo/).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import { GrpoTrainer, RlooTrainer } from '../../src/lib/rlhf/grpo';
import { OnlineDpoTrainer } from '../../src/lib/rlhf/online-dpo';
import { evaluatePassRate, passRate, passRateSplit } from '../../src/lib/rlhf/pass-rate';
import { functionRewardSource, RewardFunctionRunner } from '../../src/lib/engine/reward-fn-runner';
import { compileRewardFunction } from '../../src/lib/rlhf/reward-functions';
import type { RewardSource } from '../../src/lib/rlhf/ppo';
import {
  isGroupScenario,
  ScenarioError,
  validateGroupScenario,
  validateScenarioIndex,
  type GroupScenario,
} from '../../src/lib/data/scenarios';

beforeAll(async () => {
  await useBackend('cpu');
});

const V = 16;
const EOT = 15;
const tokenizer = {
  eotId: EOT,
  encode: (text: string) => [...text].map((ch) => ch.charCodeAt(0) - 97),
  decode: (ids: number[]) => ids.map((i) => (i === EOT ? '' : String.fromCharCode(97 + i))).join(''),
};
const PROMPTS = ['ab', 'cfe', 'g', 'hijk', 'lm', 'no', 'bca', 'kk'];
const model = () =>
  new GPT({ vocabSize: V, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 }, { seed: 2 });

const HAS_A = {
  name: 'has_a',
  code: "function reward(prompts, completions) {\n  return completions.map((c) => (c.includes('a') ? 1 : 0));\n}\n",
  weight: 1,
};
const LEN = {
  name: 'length',
  code: 'const reward = (p, completions) => completions.map((c) => c.length);\n',
  weight: 0.5,
};

describe('passRate and the held-out split', () => {
  it('counts rewards at or above the threshold', () => {
    expect(passRate([1, 0, 1, 1], 1)).toBe(0.75);
    expect(passRate([0.5, 0.99, 1.2], 1)).toBeCloseTo(1 / 3);
    expect(passRate([-1, -2], -1.5)).toBe(0.5);
    expect(passRate([], 1)).toBeNaN();
  });

  it('holds out a quarter of the prompts, by prompt and seed, disjoint from training', () => {
    const prompts = Array.from({ length: 32 }, (_, i) => `p${i}`);
    const a = passRateSplit(prompts, 0);
    expect(a.heldOut).toHaveLength(8);
    expect(a.train).toHaveLength(24);
    expect(a.train.filter((p) => a.heldOut.includes(p))).toEqual([]);
    expect(passRateSplit(prompts, 0)).toEqual(a);
    expect(passRateSplit(prompts, 1).heldOut).not.toEqual(a.heldOut);
  });
});

describe('evaluatePassRate', () => {
  it('samples each prompt, scores with the reward function and counts passes; same seed, same result', async () => {
    const m = model();
    const runner = new RewardFunctionRunner();
    const reward = functionRewardSource([HAS_A], runner);
    const opts = {
      samples: 1,
      seed: 4,
      temperature: 1,
      maxNewTokens: 6,
      threshold: 1,
      chunk: 3,
      query: (p: string) => [EOT, ...tokenizer.encode(p)],
    };
    const r = await evaluatePassRate(m, tokenizer, reward, PROMPTS, opts);
    expect(r.total).toBe(PROMPTS.length);
    expect(r.examples.map((e) => e.prompt)).toEqual(PROMPTS);
    // Each verdict is the rule applied to the text, and the count is theirs.
    for (const e of r.examples) {
      expect(e.reward).toBe(e.text.includes('a') ? 1 : 0);
      expect(e.pass).toBe(e.reward >= 1);
    }
    expect(r.passed).toBe(r.examples.filter((e) => e.pass).length);
    expect(r.passRate).toBe(r.passed / r.total);
    expect(r.meanLength).toBeGreaterThan(0);
    expect(await evaluatePassRate(m, tokenizer, reward, PROMPTS, opts)).toEqual(r);
    // More samples per prompt: samples × prompts completions, one example per prompt.
    const r4 = await evaluatePassRate(m, tokenizer, reward, PROMPTS, { ...opts, samples: 4 });
    expect(r4.total).toBe(4 * PROMPTS.length);
    expect(r4.examples).toHaveLength(PROMPTS.length);
    await expect(evaluatePassRate(m, tokenizer, reward, [], opts)).rejects.toThrow(/no held-out prompts/);
    runner.dispose();
    m.dispose();
  });

  it("judges with each completion's finished flag, as training does: a completion cut off by the length limit is told so", async () => {
    const m = model();
    const runner = new RewardFunctionRunner();
    const FIN = {
      name: 'finished',
      code: 'function reward(p, c, { finished }) { return finished.map((f) => (f ? 1 : 0)); }',
      weight: 1,
    };
    const reward = functionRewardSource([FIN], runner);
    const opts = {
      samples: 1,
      seed: 4,
      temperature: 1,
      maxNewTokens: 3,
      threshold: 1,
      query: (p: string) => [EOT, ...tokenizer.encode(p)],
    };
    const seeds = [4, 5, 6, 7].map((seed) => evaluatePassRate(m, tokenizer, reward, PROMPTS, { ...opts, seed }));
    const examples = (await Promise.all(seeds)).flatMap((r) => r.examples);
    for (const e of examples) expect(e.reward).toBe(e.finished ? 1 : 0);
    // Both kinds occur on this random model with 3 new tokens (uniform-ish over 16 ids).
    expect(new Set(examples.map((e) => e.finished))).toEqual(new Set([true, false]));
    runner.dispose();
    m.dispose();
  });
});

describe('rewards/<fn>/mean|std in GRPO and RLOO metrics', () => {
  const TINY = { numGenerations: 4, batchSize: 8, maxCompletionLength: 6, temperature: 1, seed: 3 };

  it('logs each reward function before weighting (TRL names), beside every other TRL metric', async () => {
    const m = model();
    const runner = new RewardFunctionRunner();
    const reward = functionRewardSource([HAS_A, LEN], runner);
    const t = new GrpoTrainer({ model: m, reward, tokenizer, prompts: PROMPTS, config: TINY });
    await t.rollout();
    const score = await t.score();
    await t.advantages();
    const { metrics } = await t.update();
    const bessel = (xs: number[]) => {
      const mu = xs.reduce((a, b) => a + b, 0) / xs.length;
      return Math.sqrt(xs.reduce((a, b) => a + (b - mu) ** 2, 0) / (xs.length - 1));
    };
    expect(score.parts.map((p) => p.name)).toEqual(['has_a', 'length']);
    for (const p of score.parts) {
      const mu = p.scores.reduce((a, b) => a + b, 0) / p.scores.length;
      expect(metrics[`rewards/${p.name}/mean`]).toBeCloseTo(mu, 10);
      expect(metrics[`rewards/${p.name}/std`]).toBeCloseTo(bessel(p.scores), 10);
    }
    // The weighted sum is `reward`: has_a + 0.5 · length.
    const sum = score.parts[0].scores.map((a, i) => a + 0.5 * score.parts[1].scores[i]);
    expect(metrics.reward).toBeCloseTo(sum.reduce((a, b) => a + b, 0) / sum.length, 6);
    for (const k of [
      'reward',
      'reward_std',
      'frac_reward_zero_std',
      'completions/mean_length',
      'completions/min_length',
      'completions/max_length',
      'completions/clipped_ratio',
      'kl',
      'entropy',
      'clip_ratio/low_mean',
      'clip_ratio/high_mean',
      'clip_ratio/region_mean',
    ])
      expect(typeof metrics[k as keyof typeof metrics], k).toBe('number');
    t.dispose();
    runner.dispose();
    m.dispose();
  });

  it("GRPO, RLOO and online DPO hand each completion's finished flag to the reward functions", async () => {
    const m = model();
    const runner = new RewardFunctionRunner();
    const FIN = {
      name: 'finished',
      code: 'function reward(p, c, { finished }) { return finished.map((f) => (f ? 1 : 0)); }',
      weight: 1,
    };
    const reward = functionRewardSource([FIN], runner);
    const seen: boolean[] = [];
    for (const T of [GrpoTrainer, RlooTrainer]) {
      const t = new T({ model: m, reward, tokenizer, prompts: PROMPTS, config: TINY });
      const r = await t.rollout();
      expect((await t.score()).rewards).toEqual(r.finished.map((f) => (f ? 1 : 0)));
      seen.push(...r.finished);
      t.dispose();
    }
    const odpo = new OnlineDpoTrainer({
      model: m,
      reward,
      tokenizer,
      prompts: PROMPTS,
      config: { batchSize: 4, maxNewTokens: 6, temperature: 1, seed: 3, missingEosPenalty: null },
    });
    const r = await odpo.rollout();
    expect(await odpo.score()).toEqual(r.finished.map((f) => (f ? 1 : 0)));
    seen.push(...r.finished);
    odpo.dispose();
    // Both kinds occurred (6 new tokens of 16 ids: some stop, some are cut off).
    expect(new Set(seen)).toEqual(new Set([true, false]));
    runner.dispose();
    m.dispose();
  });

  it('a source without parts is logged under its name (default "reward")', async () => {
    const m = model();
    const count: RewardSource = { score: async (b) => b.map((x) => x.responseIds.length) };
    const named = new RlooTrainer({
      model: m,
      reward: count,
      rewardName: 'sentiment',
      tokenizer,
      prompts: PROMPTS,
      config: TINY,
    });
    const r = await named.iteration();
    expect(r.metrics['rewards/sentiment/mean']).toBeCloseTo(r.metrics.reward, 10);
    expect(Object.keys(r.metrics).filter((k) => k.startsWith('rewards/'))).toEqual([
      'rewards/sentiment/mean',
      'rewards/sentiment/std',
    ]);
    named.dispose();
    const plain = new GrpoTrainer({ model: m, reward: count, tokenizer, prompts: PROMPTS, config: TINY });
    expect((await plain.iteration()).metrics['rewards/reward/mean']).toBeGreaterThan(0);
    plain.dispose();
    m.dispose();
  });
});

// ------------------------------------------------------------------------- scenarios

const DIR = join(__dirname, '../../static/scenarios/grpo');
const read = (name: string): unknown => JSON.parse(readFileSync(join(DIR, name), 'utf8'));
const index = validateScenarioIndex(read('index.json'));
const shipped: GroupScenario[] = index.map((id) => validateGroupScenario(read(`${id}.json`), `${id}.json`));

/** Run a scenario's reward functions (weighted sum) on texts (`finished`: ended by itself). */
function score(s: GroupScenario, completions: string[], finished: boolean[]): number[] {
  const prompts = completions.map(() => 'p');
  return s.rewardFunctions.reduce(
    (acc, f, i) => {
      const out = compileRewardFunction(f, i)(prompts, completions, {
        completionIds: completions.map(() => []),
        finished,
      });
      return acc.map((a, j) => a + f.weight * (out as number[])[j]);
    },
    completions.map(() => 0),
  );
}

describe('shipped GRPO scenarios', () => {
  it('index.json lists every file once; at least two verifiable scenarios and the length-bias lab', () => {
    const files = readdirSync(DIR)
      .filter((f) => f.endsWith('.json') && f !== 'index.json')
      .map((f) => f.replace(/\.json$/, ''))
      .sort();
    expect([...index].sort()).toEqual(files);
    for (const [i, s] of shipped.entries()) expect(s.id).toBe(index[i]);
    expect(shipped.filter((s) => s.kind === 'verifiable').length).toBeGreaterThanOrEqual(2);
    const lab = shipped.find((s) => s.kind === 'length-lab');
    expect(lab?.kind === 'length-lab' && lab.lossTypes).toEqual(['grpo', 'dapo', 'dr_grpo']);
    expect(shipped.every(isGroupScenario)).toBe(true);
  });

  it.each(shipped.map((s) => [s.id, s] as const))('%s: its rule passes and fails the right texts', (_, s) => {
    // [completion, passes, cut off by the length limit (default: it ended by itself)]
    const cases: Record<string, [string, boolean, boolean?][]> = {
      'mention-word': [
        [' a fox met a friend by the lake.', true],
        [' the friends went home.', true],
        [' a fox met a friendly owl.', false],
        [' a fox went home.', false],
      ],
      'exact-words': [
        [' superb from start to finish.', true],
        [' dull.', false],
        [' it was a great movie indeed.', false],
      ],
      'one-sentence': [
        [' simply charming.', true],
        [' a delight, and the soup was good!', true],
        [' worth it?', true],
        [' amazing... ', true],
        [' simply charming. I loved it.', false],
        [' simply charming', false],
        [' and the soup was good.', false, true], // the length limit cut it after a full stop
        ['', false],
      ],
      'end-with-bang': [
        [' wonderful. What a lovely sequel!', true],
        [' great!  ', true],
        [' bad. What a pathetic film! The plot was dull.', false],
        [' splendid from start to finish.', false],
        [' one star, and', false],
        [' what a film! What a cast!', false, true], // the length limit cut it right after a "!"
      ],
      'length-bias-lab': [
        [' met a kind old man.', true],
        [' and a big dog ran home through the woods.', true],
        [' lived in a castle.', false],
        [' met a lonely robot.', false],
        [' ran home.', false],
      ],
    };
    const id = s.id;
    expect(cases[id], `no test cases for ${id}`).toBeDefined();
    const got = score(
      s,
      cases[id].map((c) => c[0]),
      cases[id].map((c) => !c[2]),
    );
    expect(got.map((r) => r >= s.passThreshold)).toEqual(cases[id].map((c) => c[1]));
    expect(s.evalSamples).toBeGreaterThanOrEqual(8);
    // Prompt plus completion fit the bundled model's 64-token context.
    expect(s.grpo.maxCompletionLength ?? 24).toBeLessThanOrEqual(48);
  });
});

describe('validateGroupScenario', () => {
  const good = read('mention-word.json') as Record<string, unknown>;
  it.each([
    ['kind', { kind: 'ppo' }, /"kind" must be "verifiable" or "length-lab"/],
    ['prompts', { prompts: 'poems' }, /"prompts" must be one of/],
    ['rewardFunctions', { rewardFunctions: [] }, /"rewardFunctions" Add at least one/],
    ['rewardFunctions[0].lang', { rewardFunctions: [{ name: 'a', code: 'x', lang: 'py' }] }, /not a reward-function/],
    ['passThreshold', { passThreshold: 'high' }, /must be a number/],
    ['grpo.seed', { grpo: { seed: 1 } }, /scenario's "seed"/],
    ['grpo.numGenerations', { grpo: { numGenerations: 1 } }, /numGenerations/],
    ['grpo.batchSize', { grpo: { numGenerations: 8, batchSize: 12 } }, /multiple of numGenerations/],
    ['grpo.warmup', { grpo: { warmup: 1 } }, /not a GRPO setting/],
    ['iterations', { iterations: 0 }, /whole number/],
    ['evalSamples', { evalSamples: 0 }, /whole number/],
    ['lossTypes', { lossTypes: ['grpo'] }, /belongs to length-lab/],
    ['colour', { colour: 'red' }, /not a scenario field/],
  ])('names the bad field: %s', (field, patch, msg) => {
    let err: unknown;
    try {
      validateGroupScenario({ ...good, ...patch }, 'bad.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ScenarioError);
    expect((err as ScenarioError).field).toBe(field);
    expect((err as Error).message).toMatch(/^bad\.json: /);
    expect((err as Error).message).toMatch(msg);
  });

  it('a length lab needs two distinct loss types and sets lossType per run', () => {
    const lab = { ...good, kind: 'length-lab', lossTypes: ['grpo', 'dapo'] };
    expect(validateGroupScenario(lab)).toMatchObject({ kind: 'length-lab', lossTypes: ['grpo', 'dapo'] });
    expect(() => validateGroupScenario({ ...lab, lossTypes: ['grpo', 'grpo'] })).toThrow(/twice/);
    expect(() => validateGroupScenario({ ...lab, lossTypes: ['grpo', 'ppo'] })).toThrow(/lossTypes\[1\]/);
    expect(() => validateGroupScenario({ ...lab, grpo: { lossType: 'dapo' } })).toThrow(/per run/);
  });

  it('returns a clean copy (weights default to 1)', () => {
    const fns = [{ name: 'x', code: 'const reward = (p, c) => c.map(() => 1);' }];
    const s = validateGroupScenario({ ...good, rewardFunctions: fns });
    expect(s.rewardFunctions).toEqual([{ ...fns[0], weight: 1 }]);
    expect(s.grpo).not.toBe(good.grpo);
  });
});
