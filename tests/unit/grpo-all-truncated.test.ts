/**
 * GRPO and RLOO (src/lib/rlhf/grpo.ts) with `maskTruncatedCompletions` on a batch where no
 * completion ends: every row hits maxCompletionLength without an end-of-text, so every row is
 * masked out of the loss. The loss has no token to learn from; before the fix the step's masked
 * entropy was 0/0 and the finite check threw a false GroupDivergedError. Now the trainer skips
 * the update (weights, Adam moments and step as before), logs it (`completions/clipped_ratio` 1,
 * `skipped_updates`, finite metrics), counts the iteration, resumes exactly from
 * getState/setState, and the "every completion truncated" alarm still fires. Online DPO (which
 * masks nothing, TRL's missing_eos_penalty instead) trains on such a batch.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { tf, useBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import type { GrpoConfig, GrpoLossType } from '../../src/lib/rlhf/grpo-config';
import { GrpoTrainer, RlooTrainer, type GroupMetrics, type GroupState } from '../../src/lib/rlhf/grpo';
import { OnlineDpoTrainer } from '../../src/lib/rlhf/online-dpo';
import type { RewardSource } from '../../src/lib/rlhf/ppo';
import { evaluateGroupAlarms } from '../../src/lib/rlhf/group-alarms';
import type { RunMetricRow } from '../../src/lib/data/saved';

beforeAll(async () => {
  await useBackend('cpu');
});

const V = 16;
const C = 16;
const EOT = 15;
const tokenizer = {
  eotId: EOT,
  encode: (text: string) => [...text].map((ch) => ch.charCodeAt(0) - 97),
  decode: (ids: number[]) => ids.map((i) => (i === EOT ? '|' : String.fromCharCode(97 + i))).join(''),
};
const PROMPTS = ['ab', 'cfe', 'g', 'hijk', 'lm', 'no', 'bca', 'kk'];

/** A tiny GPT that never emits end-of-text. Tied head: logit(eot) = h · wte[eot]; every hidden
 *  state carries ln_f's bias (3 in each coordinate) and wte[eot] is −1 everywhere, so
 *  logit(eot) ≈ −48 against ≈ 0 for the other tokens. */
function neverEnds(seed = 1): GPT {
  const m = new GPT({ vocabSize: V, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: C, layerNormEps: 1e-5 }, { seed });
  tf.tidy(() => {
    m.params.get('transformer.ln_f.bias')!.assign(tf.fill([C], 3));
    const wte = m.params.get('transformer.wte.weight')!;
    const eotRow = tf.reshape(tf.oneHot(tf.tensor1d([EOT], 'int32'), V), [V, 1]);
    wte.assign(tf.add(tf.mul(wte, tf.sub(1, eotRow)), tf.mul(eotRow, -1)));
  });
  return m;
}

/** Reward: the completion's first token id (spread within groups, so advantages are not 0). */
const firstToken: RewardSource = { score: async (batch) => batch.map((x) => x.responseIds[0]) };

const CFG: Partial<GrpoConfig> = {
  numGenerations: 4,
  batchSize: 8,
  maxCompletionLength: 2,
  temperature: 1,
  learningRate: 1e-2,
  numIterations: 2,
  beta: 0.05,
  maskTruncatedCompletions: true,
  seed: 3,
};

async function weightsOf(t: { policy: GPT }): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const v of t.policy.params.values()) out.push(new Float32Array((await v.data()) as Float32Array));
  return out;
}

const rows = (h: GroupMetrics[]): RunMetricRow[] =>
  h.map((m) => ({
    step: m.iteration,
    metrics: Object.fromEntries(Object.entries(m).filter(([, v]) => typeof v === 'number')) as Record<string, number>,
  }));

type Make = (base: GPT, config: Partial<GrpoConfig>) => GrpoTrainer | RlooTrainer;
const grpo: Make = (model, config) =>
  new GrpoTrainer({ model, reward: firstToken, tokenizer, prompts: PROMPTS, config: { ...CFG, ...config } });
const rloo: Make = (model, config) => {
  const { lossType: _l, scaleRewards: _s, ...rest } = { ...CFG, ...config };
  return new RlooTrainer({ model, reward: firstToken, tokenizer, prompts: PROMPTS, config: rest });
};

describe('every completion truncated, maskTruncatedCompletions on', () => {
  test.each<[string, Make, Partial<GrpoConfig>]>([
    ['GRPO grpo', grpo, { lossType: 'grpo' }],
    ['GRPO bnpo', grpo, { lossType: 'bnpo' }],
    ['GRPO dr_grpo', grpo, { lossType: 'dr_grpo' }],
    ['GRPO dapo', grpo, { lossType: 'dapo' as GrpoLossType }],
    ['GRPO β = 0', grpo, { beta: 0 }],
    ['RLOO', rloo, {}],
    ['RLOO β = 0, normalised', rloo, { beta: 0, normalizeAdvantages: true } as Partial<GrpoConfig>],
  ])(
    '%s: the update is skipped, not reported as diverged',
    async (_name, make, config) => {
      const base = neverEnds();
      const t = make(base, config);
      const before = await weightsOf(t);
      const adamBefore = (await t.getState()).adamStep;
      let tensors = 0;
      for (let i = 0; i < 4; i++) {
        const r = await t.iteration();
        if (i === 1) tensors = tf.memory().numTensors;
        if (i === 3) expect(tf.memory().numTensors).toBe(tensors); // the skip path leaks nothing
        expect(r.rollout.finished.every((f) => !f)).toBe(true); // the case under test
        expect(r.advantages.groups.flatMap((g) => g.completions).every((x) => x.masked)).toBe(true);
        expect(r.advantages.advantages.some((a) => a !== 0)).toBe(true); // there was a signal to mask
        expect(r.update.skipped).toBe(true);
        expect(r.update.steps).toEqual([]);
        const m = r.metrics;
        expect(m.iteration).toBe(i);
        expect(m.skipped_updates).toBe(i + 1);
        expect(m['completions/clipped_ratio']).toBe(1);
        expect(m.loss).toBe(0);
        expect(m.grad_norm).toBe(0);
        expect(m['clip_ratio/region_mean']).toBe(0);
        expect(m.entropy).toBeGreaterThan(0.5); // the policy's entropy over its (truncated) tokens
        expect(m.entropy).toBeLessThan(Math.log(V));
        for (const [k, v] of Object.entries(m)) if (v !== null) expect(Number.isFinite(v), k).toBe(true);
        if (config.beta === 0) expect(m.kl).toBeNull();
        else expect(m.kl).toBeGreaterThanOrEqual(0); // the policy has not moved from the reference
        if (t.algo === 'grpo' && config.beta !== 0) expect(m.kl).toBeLessThan(1e-5);
      }
      expect(t.completedIterations).toBe(4);
      expect(await weightsOf(t)).toEqual(before);
      const state = await t.getState();
      expect(state.adamStep).toBe(adamBefore);
      expect(state.iteration).toBe(4);

      // The alarm that names the cause still fires (3 iterations all truncated, confirmed at the 4th).
      const alarms = evaluateGroupAlarms(rows(t.history), {
        temperature: 1,
        beta: t.config.beta,
        learningRate: t.config.learningRate,
        maskTruncatedCompletions: true,
      });
      expect(alarms.map((a) => a.id)).toContain('all-truncated');

      // Resume: a fresh trainer from the state continues exactly, the skip count included.
      const resumed = make(base, config);
      (resumed as GrpoTrainer).setState(state as GroupState<GrpoConfig>); // the same class as `t`
      expect(resumed.skippedUpdates).toBe(4);
      const [a, b] = [await t.iteration(), await resumed.iteration()];
      const { 'time/iteration_s': _a, ...ma } = a.metrics;
      const { 'time/iteration_s': _b, ...mb } = b.metrics;
      expect(mb).toEqual(ma);
      expect(mb.skipped_updates).toBe(5);
      t.dispose();
      resumed.dispose();
      base.dispose();
    },
    60_000,
  );

  test('a batch with some finished completions still trains, and the skip count carries on', async () => {
    const base = neverEnds();
    const t = grpo(base, {});
    await t.iteration();
    expect(t.history[0].skipped_updates).toBe(1);
    // Longer completions of a model that can end: restore end-of-text and train normally.
    const fresh = new GPT(base.config, { seed: 1 });
    const u = grpo(fresh, { maxCompletionLength: 6 });
    const r = await u.iteration();
    expect(r.rollout.finished.some((f) => f)).toBe(true);
    expect(r.update.skipped).toBe(false);
    expect(r.update.steps.length).toBe(2);
    expect(r.metrics.skipped_updates).toBe(0);
    expect(r.metrics.grad_norm).toBeGreaterThan(0);
    [t, u, base, fresh].forEach((x) => x.dispose());
  }, 60_000);

  test('online DPO masks nothing: the same batch trains (missing-EOS penalty on both), finite', async () => {
    const base = neverEnds();
    const t = new OnlineDpoTrainer({
      model: base,
      reward: firstToken,
      tokenizer,
      prompts: PROMPTS,
      config: { batchSize: 4, maxNewTokens: 2, temperature: 1, learningRate: 1e-2, seed: 3 },
    });
    const before = await weightsOf(t);
    const r = await t.iteration();
    expect(r.metrics['val/contain_eos_token']).toBe(0);
    for (const [k, v] of Object.entries(r.metrics)) expect(Number.isFinite(v), k).toBe(true);
    expect(await weightsOf(t)).not.toEqual(before);
    t.dispose();
    base.dispose();
  }, 60_000);
});
