/**
 * Online DPO (src/lib/rlhf/online-dpo.ts): the loss step against tests/golden/online-dpo.json,
 * written by an independent PyTorch implementation of TRL's OnlineDPOTrainer formulas
 * (scripts/golden/online_dpo_reference.py): pairing with ties to the first sample, the
 * missing-EOS penalty, loss, gradient with respect to the per-token log-probs and every logged
 * statistic. Then the trainer on tiny random GPTs with the TF.js cpu backend: a one-token bandit
 * (vocabulary 4, reward 1 for one token) converges; on a character model the first iteration
 * has KL 0, a live setting applies at the next iteration boundary and shows in the metrics,
 * getState/setState resume exactly, no tensors leak, and a NaN reward leaves the weights as
 * they were.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { tf, useBackend, type TestBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import {
  applyMissingEosPenalty,
  onlineDpoLoss,
  onlineDpoPairs,
  OnlineDpoTrainer,
  type OnlineDpoMetrics,
} from '../../src/lib/rlhf/online-dpo';
import {
  DEFAULT_ONLINE_DPO_CONFIG,
  ONLINE_DPO_SETTINGS,
  OnlineDpoConfigError,
  type OnlineDpoConfig,
} from '../../src/lib/rlhf/online-dpo-config';
import { GroupDivergedError, GroupPhaseError } from '../../src/lib/rlhf/errors';
import type { RewardSource } from '../../src/lib/rlhf/ppo';
import type { DpoLossType } from '../../src/lib/rlhf/dpo';

beforeAll(async () => {
  await useBackend('cpu');
});

interface GoldenCase {
  beta: number;
  lossType: DpoLossType;
  missingEosPenalty: number | null;
  logprobs: number[][];
  refLogprobs: number[][];
  mask: number[][];
  rawScores: number[];
  containEos: boolean[];
  scores: number[];
  chosen: number[];
  rejected: number[];
  loss: number;
  grad: number[][];
  stats: Record<string, number>;
  'objective/scores': number;
  'objective/scores_margin': number;
}
const GOLDEN = JSON.parse(readFileSync(new URL('../golden/online-dpo.json', import.meta.url), 'utf8')) as {
  cases: GoldenCase[];
};

const close = (a: number, b: number, tol = 1e-5) =>
  expect(Math.abs(a - b)).toBeLessThanOrEqual(tol * (1 + Math.abs(b)));

describe('online DPO loss against the PyTorch reference of TRL', () => {
  test.each(GOLDEN.cases.map((c, i) => [i, c] as const))('case %i', (_, c) => {
    const scores = applyMissingEosPenalty(c.rawScores, c.containEos, c.missingEosPenalty);
    scores.forEach((s, i) => close(s, c.scores[i], 1e-12));
    expect(onlineDpoPairs(scores)).toEqual({ chosen: c.chosen, rejected: c.rejected });
    const r = onlineDpoLoss(c.logprobs, c.refLogprobs, c.mask, scores, { beta: c.beta, lossType: c.lossType });
    close(r.loss, c.loss);
    for (const [k, v] of Object.entries(c.stats)) close(r.stats[k as keyof typeof r.stats], v, 1e-5);
    r.grad.forEach((row, i) => row.forEach((g, j) => close(g, c.grad[i][j], 1e-5)));
  });

  test('the reference covers ties, the penalty and both loss types', () => {
    expect(GOLDEN.cases.some((c) => c.lossType === 'ipo')).toBe(true);
    expect(GOLDEN.cases.some((c) => c.missingEosPenalty !== null && c.containEos.includes(false))).toBe(true);
    const tie = GOLDEN.cases.find(
      (c) => c.rawScores.slice(c.rawScores.length / 2).join() === c.rawScores.slice(0, c.rawScores.length / 2).join(),
    );
    expect(tie?.chosen).toEqual(tie?.chosen.map((_, i) => i)); // ties go to the first sample
  });

  test('bad input is refused with a message', () => {
    expect(() => onlineDpoPairs([1, 2, 3])).toThrow(/two per prompt/);
    expect(() => onlineDpoPairs([])).toThrow(RangeError);
  });
});

// ------------------------------------------------------------------------------ bandit

const BV = 4;
const B_EOT = 3;
const GOOD = 2;
const banditTokenizer = {
  eotId: B_EOT,
  encode: (text: string) => [...text].map((ch) => ch.charCodeAt(0) - 97),
  decode: (ids: number[]) => ids.map((i) => 'abc|'[i]).join(''),
};
const BANDIT_PROMPTS = ['a', 'b', 'c'];
const banditReward: RewardSource = { score: async (batch) => batch.map((x) => (x.responseIds[0] === GOOD ? 1 : 0)) };

async function probGood(model: GPT): Promise<number> {
  const seq = tf.tensor2d(
    BANDIT_PROMPTS.map((p) => [B_EOT, ...banditTokenizer.encode(p)]),
    undefined,
    'int32',
  );
  const p = tf.tidy(() => {
    const { logits } = model.forward(seq as tf.Tensor2D);
    return tf.softmax(tf.squeeze(tf.slice(logits, [0, 1, 0], [-1, 1, -1]), [1]));
  });
  const probs = (await p.data()) as Float32Array;
  tf.dispose([seq, p]);
  return BANDIT_PROMPTS.reduce((s, _, i) => s + probs[i * BV + GOOD], 0) / BANDIT_PROMPTS.length;
}

describe.each<TestBackend>(['cpu', 'wasm'])(
  'one-token bandit (vocabulary 4, reward 1 for one token) on %s',
  (backend) => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    afterAll(async () => {
      await useBackend('cpu');
    });

    test('online DPO converges to the rewarded token', async () => {
      const base = new GPT(
        { vocabSize: BV, blockSize: 4, nLayer: 1, nHead: 2, nEmbd: 8, layerNormEps: 1e-5 },
        { seed: 5 },
      );
      const before = await probGood(base);
      const t = new OnlineDpoTrainer({
        model: base,
        reward: banditReward,
        tokenizer: banditTokenizer,
        prompts: BANDIT_PROMPTS,
        // One-token completions cannot end before the limit: no missing-EOS penalty (else the rewarded
        // token, never followed by end-of-text, would score as the end-of-text token does).
        config: {
          batchSize: 24,
          maxNewTokens: 1,
          temperature: 1,
          beta: 0.5,
          learningRate: 3e-2,
          missingEosPenalty: null,
          seed: 1,
        },
      });
      for (let i = 0; i < 40 && (await probGood(t.policy)) < 0.95; i++) await t.iteration();
      expect(before).toBeLessThan(0.5);
      expect(await probGood(t.policy)).toBeGreaterThan(0.95);
      const h = t.history;
      expect(h.at(-1)!['objective/scores']).toBeGreaterThan(h[0]['objective/scores']);
      expect(h.at(-1)!['objective/kl']).toBeGreaterThan(0); // it moved away from the reference
      t.dispose();
      base.dispose();
    }, 60_000);
  },
);

// ------------------------------------------------------------------- character model

const V = 16;
const EOT = 15;
const X = 3;
const tokenizer = {
  eotId: EOT,
  encode: (text: string) => [...text].map((ch) => ch.charCodeAt(0) - 97),
  decode: (ids: number[]) => ids.map((i) => (i === EOT ? '|' : String.fromCharCode(97 + i))).join(''),
};
const PROMPTS = ['ab', 'cfe', 'g', 'hijk', 'lm', 'no', 'bca', 'kk'];
const TINY: Partial<OnlineDpoConfig> = { batchSize: 4, maxNewTokens: 6, temperature: 1, learningRate: 1e-2, seed: 3 };
const countX: RewardSource = {
  score: async (batch) => batch.map((x) => x.responseIds.filter((id) => id === X).length),
};
const tinyModel = () =>
  new GPT({ vocabSize: V, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 }, { seed: 1 });
const trainer = (model: GPT, config: Partial<OnlineDpoConfig> = {}, reward = countX) =>
  new OnlineDpoTrainer({ model, reward, tokenizer, prompts: PROMPTS, config: { ...TINY, ...config } });
const timeless = (h: OnlineDpoMetrics[]) => h.map(({ 'time/iteration_s': _t, ...rest }) => rest);

async function weightsOf(t: OnlineDpoTrainer): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const v of t.policy.params.values()) out.push(new Float32Array((await v.data()) as Float32Array));
  return out;
}

describe('OnlineDpoTrainer', () => {
  test('settings table: TRL defaults where stated, URL prefix odpo, all but the seed live, errors per field', () => {
    expect(DEFAULT_ONLINE_DPO_CONFIG).toMatchObject({ beta: 0.1, lossType: 'sigmoid' });
    // Not TRL's (off): 1, measured on the issue-6 task (online-dpo-config.ts).
    expect(DEFAULT_ONLINE_DPO_CONFIG.missingEosPenalty).toBe(1);
    for (const k of ONLINE_DPO_SETTINGS.keys) expect(ONLINE_DPO_SETTINGS.isLive(k)).toBe(k !== 'seed');
    expect(ONLINE_DPO_SETTINGS.urlName('missingEosPenalty')).toBe('odpoMissingEosPenalty');
    expect(() => ONLINE_DPO_SETTINGS.validate({ beta: 0, lossType: 'hinge' })).toThrow(OnlineDpoConfigError);
    try {
      ONLINE_DPO_SETTINGS.validate({ beta: 0, lossType: 'hinge' });
    } catch (e) {
      expect(Object.keys((e as OnlineDpoConfigError).fields).sort()).toEqual(['beta', 'lossType']);
    }
  });

  test('first iteration: KL 0 before the update, pairs as TRL builds them, metrics named as TRL logs them', async () => {
    const base = tinyModel();
    const t = trainer(base);
    const ro = await t.rollout();
    expect(ro.prompts.slice(0, 4)).toEqual(ro.prompts.slice(4)); // the B prompts, then the same B again
    const scores = await t.score();
    const p = await t.pairs();
    p.pairs.forEach((pair, i) => {
      expect(pair.margin).toBeGreaterThanOrEqual(0);
      expect(pair.chosenScore).toBe(scores[p.chosen[i]]);
      expect([p.chosen[i], p.rejected[i]].sort((a, b) => a - b)).toEqual([i, i + 4]);
    });
    const m = await t.update();
    expect(Math.abs(m['objective/kl'])).toBeLessThan(1e-4);
    expect(Math.abs(m['rewards/margins'])).toBeLessThan(1e-4);
    close(m.loss, Math.log(2), 1e-4); // σ(0): nothing learnt yet
    expect(m['objective/scores_margin']).toBeGreaterThanOrEqual(0);
    for (const k of [
      'objective/kl',
      'objective/entropy',
      'objective/non_score_reward',
      'objective/rlhf_reward',
      'objective/scores',
      'objective/scores_margin',
      'rewards/chosen',
      'rewards/rejected',
      'rewards/accuracies',
      'rewards/margins',
      'logps/chosen',
      'logps/rejected',
      'val/contain_eos_token',
      'beta',
    ])
      expect(Number.isFinite(m[k as keyof OnlineDpoMetrics])).toBe(true);
    await expect(t.score()).rejects.toThrow(GroupPhaseError);
    t.dispose();
    base.dispose();
  });

  test('a live change applies at the next iteration boundary and shows in the metrics; bad ones change nothing', async () => {
    const base = tinyModel();
    const t = trainer(base);
    await t.rollout();
    t.updateConfig({ beta: 0.3, missingEosPenalty: 2 });
    expect(t.config.beta).toBe(0.1); // mid-iteration: still the old one
    await t.score();
    await t.pairs();
    expect((await t.update()).beta).toBe(0.1);
    const m = (await t.iteration()).metrics;
    expect(m.beta).toBe(0.3);
    expect(() => t.updateConfig({ seed: 9 })).toThrow(OnlineDpoConfigError);
    expect(() => t.updateConfig({ maxNewTokens: 16 })).toThrow(/model context/);
    expect(t.nextConfig.maxNewTokens).toBe(6);
    t.dispose();
    base.dispose();
  });

  test('missing EOS penalty: a completion without end-of-text is scored lower', async () => {
    const base = tinyModel();
    const t = trainer(base, { missingEosPenalty: 100, maxNewTokens: 2 });
    const ro = await t.rollout();
    const scores = await t.score();
    expect(ro.finished.some((f) => !f)).toBe(true);
    ro.finished.forEach((f, i) =>
      f ? expect(scores[i]).toBeGreaterThanOrEqual(0) : expect(scores[i]).toBeLessThan(-90),
    );
    t.dispose();
    base.dispose();
  });

  test('same seed → same history; getState/setState resumes exactly; no tensor growth', async () => {
    const base = tinyModel();
    const a = trainer(base);
    for (let i = 0; i < 2; i++) await a.iteration();
    const state = await a.getState();
    const n0 = tf.memory().numTensors;
    await a.iteration();
    await a.iteration();
    expect(tf.memory().numTensors).toBe(n0);
    const b = trainer(base);
    b.setState(state);
    await b.iteration();
    await b.iteration();
    expect(timeless(b.history)).toEqual(timeless(a.history));
    expect(await weightsOf(b)).toEqual(await weightsOf(a));
    a.dispose();
    b.dispose();
    base.dispose();
  }, 30_000);

  test('a NaN reward is refused with a message before any update; the weights stay as they were', async () => {
    const base = tinyModel();
    const t = trainer(base, {}, { score: async (batch) => batch.map((_, i) => (i === 2 ? NaN : 1)) });
    const before = await weightsOf(t);
    await expect(t.iteration()).rejects.toThrow(/non-finite score \(NaN\) for completion 3/);
    t.abandonIteration();
    expect(await weightsOf(t)).toEqual(before);
    expect(t.completedIterations).toBe(0);
    t.dispose();
    base.dispose();
  });
});
