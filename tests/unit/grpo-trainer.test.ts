/**
 * GrpoTrainer and RlooTrainer (src/lib/rlhf/grpo.ts) on tiny random GPTs with the TF.js cpu
 * backend. A one-token bandit (vocabulary 4, reward 1 for one token) must converge for both;
 * a character model (V = 16) checks the settings tables, the first-iteration invariants,
 * determinism, exact resume from getState/setState, no tensor growth, β = 0 without a reference
 * model, live setting changes at the next iteration boundary, truncation masking, the group
 * view and the all-or-nothing divergence guard.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { tf, useBackend, type TestBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import {
  DEFAULT_GRPO_CONFIG,
  GRPO_SETTINGS,
  GrpoConfigError,
  validateGrpoConfig,
  type GrpoConfig,
} from '../../src/lib/rlhf/grpo-config';
import { RLOO_SETTINGS, RlooConfigError, validateRlooConfig, type RlooConfig } from '../../src/lib/rlhf/rloo-config';
import {
  GroupDivergedError,
  GroupPhaseError,
  GrpoTrainer,
  RlooTrainer,
  type GroupMetrics,
} from '../../src/lib/rlhf/grpo';
import type { RewardSource } from '../../src/lib/rlhf/ppo';
import { PPO_SETTINGS } from '../../src/lib/rlhf/ppo-config';
import { REWARD_SETTINGS } from '../../src/lib/rlhf/reward-config';
import { SFT_SETTINGS } from '../../src/lib/rlhf/sft-config';
import { DPO_SETTINGS } from '../../src/lib/rlhf/dpo-config';

beforeAll(async () => {
  await useBackend('cpu');
});

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Metrics without the wall-clock time. */
function timeless(h: GroupMetrics[]): Omit<GroupMetrics, 'time/iteration_s'>[] {
  return h.map(({ 'time/iteration_s': _t, ...rest }) => rest);
}

async function weightsOf(t: GrpoTrainer | RlooTrainer): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const v of t.policy.params.values()) out.push(new Float32Array((await v.data()) as Float32Array));
  return out;
}

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

function banditModel(): GPT {
  return new GPT({ vocabSize: BV, blockSize: 4, nLayer: 1, nHead: 2, nEmbd: 8, layerNormEps: 1e-5 }, { seed: 5 });
}

/** Mean probability of the rewarded token after each prompt. */
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
  return mean(BANDIT_PROMPTS.map((_, i) => probs[i * BV + GOOD]));
}

const BANDIT = {
  numGenerations: 8,
  batchSize: 24,
  maxCompletionLength: 1,
  temperature: 1,
  learningRate: 3e-2,
  numIterations: 2,
  seed: 1,
};

describe.each<TestBackend>(['cpu', 'wasm'])(
  'one-token bandit (vocabulary 4, reward 1 for one token) on %s',
  (backend) => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    afterAll(async () => {
      await useBackend('cpu');
    });

    test('GRPO converges to the rewarded token', async () => {
      const base = banditModel();
      const before = await probGood(base);
      const t = new GrpoTrainer({
        model: base,
        reward: banditReward,
        tokenizer: banditTokenizer,
        prompts: BANDIT_PROMPTS,
        config: { ...BANDIT, beta: 0 },
      });
      for (let i = 0; i < 25 && (await probGood(t.policy)) < 0.95; i++) await t.iteration();
      const after = await probGood(t.policy);
      expect(before).toBeLessThan(0.5);
      expect(after).toBeGreaterThan(0.95);
      expect(t.history.at(-1)!.reward).toBeGreaterThan(t.history[0].reward);
      t.dispose();
      base.dispose();
    }, 60_000);

    test('RLOO converges to the rewarded token (with the KL folded into the reward)', async () => {
      const base = banditModel();
      const t = new RlooTrainer({
        model: base,
        reward: banditReward,
        tokenizer: banditTokenizer,
        prompts: BANDIT_PROMPTS,
        config: { ...BANDIT, beta: 0.01 },
      });
      for (let i = 0; i < 25 && (await probGood(t.policy)) < 0.95; i++) await t.iteration();
      expect(await probGood(t.policy)).toBeGreaterThan(0.95);
      expect(t.history.at(-1)!.kl).toBeGreaterThan(0); // the policy moved away from the reference
      t.dispose();
      base.dispose();
    }, 60_000);
  },
);

// ------------------------------------------------------------------- character model

const V = 16;
const EOT = 15;
const X = 3; // the rewarded token, 'd'
const tokenizer = {
  eotId: EOT,
  encode: (text: string) => [...text].map((ch) => ch.charCodeAt(0) - 97),
  decode: (ids: number[]) => ids.map((i) => (i === EOT ? '|' : String.fromCharCode(97 + i))).join(''),
};
const PROMPTS = ['ab', 'cfe', 'g', 'hijk', 'lm', 'no', 'bca', 'kk'];
const TINY: Partial<GrpoConfig> = {
  numGenerations: 4,
  batchSize: 8,
  maxCompletionLength: 6,
  temperature: 1,
  learningRate: 1e-2,
  numIterations: 2,
  beta: 0.05,
  seed: 3,
};

function tinyModel(seed = 1): GPT {
  return new GPT({ vocabSize: V, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 }, { seed });
}

/** Reward: how many times the completion emits X. */
const countX: RewardSource = {
  score: async (batch) => batch.map((x) => x.responseIds.filter((id) => id === X).length),
};

function grpo(model: GPT, config: Partial<GrpoConfig> = {}, reward: RewardSource = countX): GrpoTrainer {
  return new GrpoTrainer({ model, reward, tokenizer, prompts: PROMPTS, config: { ...TINY, ...config } });
}
function rloo(model: GPT, config: Partial<RlooConfig> = {}, reward: RewardSource = countX): RlooTrainer {
  return new RlooTrainer({ model, reward, tokenizer, prompts: PROMPTS, config: { ...TINY, ...config } });
}

describe('settings tables', () => {
  test('defaults pass, every field has help, URL names carry the prefixes, all but the seed are live', () => {
    expect(validateGrpoConfig({})).toEqual(DEFAULT_GRPO_CONFIG);
    expect(DEFAULT_GRPO_CONFIG).toMatchObject({
      lossType: 'dapo',
      scaleRewards: 'group',
      epsilon: 0.2,
      numIterations: 1,
    });
    expect(validateRlooConfig({}).normalizeAdvantages).toBe(false);
    expect(validateRlooConfig({}).beta).toBe(0.05);
    for (const table of [GRPO_SETTINGS, RLOO_SETTINGS] as const) {
      for (const k of table.keys) {
        expect(table.help(k as never)).toBeTruthy();
        // LoRA's rows (model/lora.ts) shape the model, so they are fixed once a run starts.
        expect(table.isLive(k as never)).toBe(k !== 'seed' && !k.startsWith('lora'));
      }
    }
    expect(GRPO_SETTINGS.urlName('numGenerations')).toBe('grpoNumGenerations');
    expect(RLOO_SETTINGS.urlName('normalizeAdvantages')).toBe('rlooNormalizeAdvantages');
    expect(GRPO_SETTINGS.parse('lossType', 'DR_GRPO')).toEqual({ ok: true, value: 'dr_grpo' });
    expect(GRPO_SETTINGS.parse('epsilonHigh', 'off')).toEqual({ ok: true, value: null });
  });

  test("URL names do not collide with the other trainers' tables", () => {
    const names = [PPO_SETTINGS, REWARD_SETTINGS, SFT_SETTINGS, DPO_SETTINGS, GRPO_SETTINGS, RLOO_SETTINGS].flatMap(
      (t) => {
        const table = t as unknown as typeof SFT_SETTINGS;
        return table.keys.map((k) => table.urlName(k)).filter((n) => n !== null);
      },
    );
    expect(names.length).toBeGreaterThan(40);
    expect(new Set(names).size).toBe(names.length);
  });

  test('one error per bad field; batchSize must be a multiple of numGenerations', () => {
    try {
      validateGrpoConfig({ batchSize: 10, numGenerations: 4, lossType: 'ppo', scaleRewards: true, typo: 1 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(GrpoConfigError);
      const f = (e as GrpoConfigError).fields;
      expect(Object.keys(f).sort()).toEqual(['_', 'batchSize', 'lossType', 'scaleRewards']);
      expect(f.batchSize).toMatch(/multiple of numGenerations \(4\)/);
    }
    expect(() => validateRlooConfig({ numGenerations: 1 })).toThrow(RlooConfigError);
  });
});

describe('GrpoTrainer and RlooTrainer', () => {
  test('first iteration: sampling and training log-probs agree, ratio 1 so nothing is clipped, KL 0', async () => {
    const base = tinyModel();
    for (const t of [grpo(base), rloo(base)]) {
      const roll = await t.rollout();
      expect(roll.logprobMismatch).toBeLessThan(1e-4);
      expect(roll.prompts.length).toBe(8);
      expect(roll.prompts[0]).toBe(roll.prompts[3]); // groups of G = 4 in a row
      expect(roll.prompts[4]).toBe(roll.prompts[7]);
      await t.score();
      const adv = await t.advantages();
      expect(adv.groups.length).toBe(2);
      const up = await t.update();
      expect(up.steps.length).toBe(2);
      expect(up.steps[0].clipRatio).toBe(0);
      // GRPO: the k3 KL of the first step's loss; RLOO: the k1 KL folded into the reward.
      expect(Math.abs(t.algo === 'grpo' ? up.steps[0].kl : up.metrics.kl!)).toBeLessThan(1e-5);
      expect(up.metrics.entropy).toBeGreaterThan(0);
      expect(up.metrics.learning_rate).toBe(1e-2);
      expect(up.metrics['completions/max_length']).toBeLessThanOrEqual(6);
      t.dispose();
    }
    base.dispose();
  }, 60_000);

  test('phases run in order', async () => {
    const base = tinyModel();
    const t = grpo(base);
    await expect(t.update()).rejects.toBeInstanceOf(GroupPhaseError);
    await t.rollout();
    await expect(t.getState()).rejects.toBeInstanceOf(GroupPhaseError);
    t.abandonIteration();
    expect(t.nextPhase).toBe('rollout');
    t.dispose();
    base.dispose();
  });

  test('rewarding token X makes it more frequent (GRPO, every loss type runs)', async () => {
    const base = tinyModel();
    const t = grpo(base, { lossType: 'grpo' });
    for (let i = 0; i < 12; i++) {
      if (i === 4) t.updateConfig({ lossType: 'bnpo' });
      if (i === 8) t.updateConfig({ lossType: 'dr_grpo', scaleRewards: 'batch' });
      await t.iteration();
    }
    const h = t.history;
    expect(mean(h.slice(-4).map((m) => m.reward))).toBeGreaterThan(mean(h.slice(0, 4).map((m) => m.reward)) + 0.5);
    t.dispose();
    base.dispose();
  }, 60_000);

  test('same seed → identical metric history; getState/setState resumes exactly', async () => {
    const base = tinyModel();
    for (const make of [
      (c: Partial<GrpoConfig>) => grpo(base, { epsilonHigh: 0.28, lossType: 'dr_grpo', ...c }),
      (c: Partial<GrpoConfig>) => rloo(base, { normalizeAdvantages: true, epsilonHigh: c.epsilonHigh, seed: c.seed }),
    ]) {
      const a = make({});
      for (let i = 0; i < 4; i++) await a.iteration();
      const b = make({});
      for (let i = 0; i < 2; i++) await b.iteration();
      const state = structuredClone(await b.getState()); // as IndexedDB would store it
      b.dispose();
      const c = make({ seed: 999, epsilonHigh: null, lossType: 'grpo' }); // config comes from the state
      c.setState(state as never);
      for (let i = 0; i < 2; i++) await c.iteration();
      const d = make({});
      for (let i = 0; i < 4; i++) await d.iteration();
      expect(timeless(d.history)).toEqual(timeless(a.history));
      expect(timeless(c.history)).toEqual(timeless(a.history));
      const [wa, wc] = [await weightsOf(a), await weightsOf(c)];
      wa.forEach((w, i) => expect(wc[i]).toEqual(w));
      for (const t of [a, c, d]) t.dispose();
    }
    base.dispose();
  }, 60_000);

  test('a state of the other algorithm or a different model is refused', async () => {
    const base = tinyModel();
    const a = grpo(base);
    const state = await a.getState();
    const r = rloo(base);
    expect(() => r.setState(state as never)).toThrow(/grpo state cannot resume a rloo trainer/);
    const other = new GPT({ vocabSize: V, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 8, layerNormEps: 1e-5 });
    const b = grpo(other);
    expect(() => b.setState(state)).toThrow(/wrong size/);
    for (const t of [a, r, b]) t.dispose();
    other.dispose();
    base.dispose();
  });

  test('no tensor growth over iterations; dispose frees everything', async () => {
    const base = tinyModel();
    for (const make of [() => grpo(base), () => rloo(base)]) {
      const start = tf.memory().numTensors;
      const t = make();
      await t.iteration();
      const after1 = tf.memory().numTensors;
      for (let i = 0; i < 8; i++) await t.iteration();
      expect(tf.memory().numTensors).toBe(after1);
      t.dispose();
      // GPT's constructor keeps its init tensors (gpt.ts): allow for the two copies made here.
      expect(tf.memory().numTensors - start).toBeLessThanOrEqual(2 * base.params.size);
    }
    base.dispose();
  }, 60_000);

  test('β = 0 builds no reference model; β cannot rise later without one', async () => {
    const base = tinyModel();
    const m0 = tf.memory().numTensors;
    const withRef = grpo(base, { beta: 0.1 });
    const withRefCount = tf.memory().numTensors - m0;
    expect(withRef.reference).not.toBeNull();
    withRef.dispose();
    const m1 = tf.memory().numTensors;
    const t = grpo(base, { beta: 0 });
    const noRefCount = tf.memory().numTensors - m1;
    expect(t.reference).toBeNull();
    expect(withRefCount - noRefCount).toBeGreaterThanOrEqual(base.params.size); // one GPT fewer
    await t.iteration();
    expect(t.history[0].kl).toBeNull();
    expect(() => t.updateConfig({ beta: 0.1 })).toThrow(/no reference model/);
    expect(t.nextConfig.beta).toBe(0);
    t.dispose();
    // A reference given by the caller allows β to change, and is not disposed with the trainer.
    const ref = base.clone({ trainable: false });
    const u = new GrpoTrainer({
      model: base,
      reference: ref,
      reward: countX,
      tokenizer,
      prompts: PROMPTS,
      config: { ...TINY, beta: 0 },
    });
    u.updateConfig({ beta: 0.2 });
    await u.iteration();
    expect(u.history[0].beta).toBe(0.2);
    expect(u.history[0].kl).not.toBeNull();
    u.dispose();
    expect(ref.params.size).toBeGreaterThan(0);
    ref.dispose();
    base.dispose();
  }, 60_000);

  test('updateConfig mid-run changes the next iteration, not the one under way', async () => {
    const base = tinyModel();
    const t = grpo(base);
    await t.iteration();
    expect(t.history[0].learning_rate).toBe(1e-2);
    await t.rollout();
    t.updateConfig({ learningRate: 5e-3, maxCompletionLength: 2, numGenerations: 2 });
    expect(t.config.learningRate).toBe(1e-2);
    expect(t.nextConfig.learningRate).toBe(5e-3);
    await t.score();
    const mid = await t.advantages();
    expect(mid.groups.length).toBe(2); // still G = 4
    await t.update();
    expect(t.history[1].learning_rate).toBe(1e-2);
    const next = await t.iteration();
    expect(next.metrics.learning_rate).toBe(5e-3);
    expect(next.metrics['completions/max_length']).toBeLessThanOrEqual(2);
    expect(next.advantages.groups.length).toBe(4); // 8 completions in groups of 2
    expect(next.rollout.groupSize).toBe(2);
    // Refused changes change nothing.
    expect(() => t.updateConfig({ seed: 9 })).toThrow(/seed: cannot change while the run goes on/);
    expect(() => t.updateConfig({ maxCompletionLength: 16 })).toThrow(/below the model context \(16\)/);
    expect(() => t.updateConfig({ batchSize: 7 })).toThrow(GrpoConfigError);
    expect(t.nextConfig.learningRate).toBe(5e-3);
    // A checkpoint carries the change.
    t.updateConfig({ epsilon: 0.1 });
    expect((await t.getState()).config.epsilon).toBe(0.1);
    t.dispose();
    base.dispose();
  }, 60_000);

  test('maskTruncatedCompletions leaves rows without end-of-text out of the loss', async () => {
    const base = tinyModel();
    const t = rloo(base, { maskTruncatedCompletions: true, maxCompletionLength: 2, batchSize: 16 });
    const { advantages, metrics } = await t.iteration();
    const all = advantages.groups.flatMap((g) => g.completions);
    expect(all.some((c) => !c.finished)).toBe(true);
    for (const c of all) expect(c.masked).toBe(!c.finished);
    expect(metrics['completions/clipped_ratio']).toBeCloseTo(mean(all.map((c) => (c.finished ? 0 : 1))), 10);
    t.dispose();
    base.dispose();
  }, 60_000);

  test('group view: a constant reward gives zero-spread groups and zero advantages', async () => {
    const base = tinyModel();
    const flat: RewardSource = { score: async (b) => b.map(() => 1) };
    const t = grpo(base, { beta: 0 }, flat);
    const r = await t.iteration();
    expect(r.metrics.frac_reward_zero_std).toBe(1);
    expect(r.metrics.reward_std).toBe(0);
    for (const g of r.advantages.groups) {
      expect(g.zeroStd).toBe(true);
      for (const c of g.completions) expect(c.advantage).toBe(0);
    }
    t.dispose();
    base.dispose();
  });

  test('a NaN reward throws GroupDivergedError and leaves the weights unchanged', async () => {
    const base = tinyModel();
    let poison = false;
    const reward: RewardSource = {
      score: async (batch) => batch.map((x, i) => (poison && i === 2 ? NaN : x.responseIds.length)),
    };
    const t = grpo(base, {}, reward);
    await t.iteration();
    const before = await weightsOf(t);
    const stateBefore = await t.getState();
    poison = true;
    await expect(t.iteration()).rejects.toBeInstanceOf(GroupDivergedError);
    const after = await weightsOf(t);
    before.forEach((w, i) => expect(after[i]).toEqual(w));
    expect((await t.getState()).adamStep).toBe(stateBefore.adamStep);
    expect(t.completedIterations).toBe(1);
    poison = false;
    await t.iteration(); // usable again
    t.dispose();
    base.dispose();
  }, 30_000);
});

// ------------------------------------------------------------------------------ LoRA

describe('LoRA (model/lora.ts)', () => {
  /** The bandit model with its tied head scaled up: at GPT-2 init (std 0.02) the head's logits
   *  are so small that only training wte itself (which LoRA leaves frozen) can move them far
   *  from uniform. */
  function loraBanditModel(): GPT {
    const m = banditModel();
    const wte = m.params.get('transformer.wte.weight')!;
    tf.tidy(() => wte.assign(tf.mul(wte, 15)));
    return m;
  }

  test('GRPO with LoRA: base frozen, adapters train, the reference is the policy with adapters off, reward rises', async () => {
    await useBackend('cpu');
    const base = loraBanditModel();
    const before = await probGood(base);
    const t = new GrpoTrainer({
      model: base,
      reward: banditReward,
      tokenizer: banditTokenizer,
      prompts: BANDIT_PROMPTS,
      config: {
        ...BANDIT,
        beta: 0.01,
        learningRate: 5e-2,
        lora: true,
        loraR: 4,
        loraAlpha: 8,
        loraTargetModules: ['c_attn', 'c_proj', 'c_fc'],
      },
    });
    expect(t.reference).toBe(t.policy); // no copy of the weights
    expect(t.policy.lora!.adapters.size).toBe(4); // c_proj names attn.c_proj and mlp.c_proj, as in PEFT
    const baseWeights = await weightsOf(t);
    const adapterBefore = t.policy.lora!.variables().map((v) => v.dataSync().slice());
    for (let i = 0; i < 30 && (await probGood(t.policy)) < 0.8; i++) await t.iteration();
    expect(await probGood(t.policy)).toBeGreaterThan(0.8);
    expect(before).toBeLessThan(0.5);
    expect(t.history.at(-1)!.reward).toBeGreaterThan(t.history[0].reward);
    expect(t.history.at(-1)!.kl).toBeGreaterThan(0); // measured against the adapters-off forward
    expect(await weightsOf(t)).toEqual(baseWeights);
    t.policy.lora!.variables().forEach((v, i) => expect(v.dataSync()).not.toEqual(adapterBefore[i]));
    // The adapters-off policy is the starting model.
    t.policy.lora!.enabled = false;
    expect(await probGood(t.policy)).toBeCloseTo(before, 6);
    t.policy.lora!.enabled = true;
    t.dispose();
    base.dispose();
  }, 60_000);

  test('RLOO with LoRA resumes exactly from getState/setState (the state holds the adapters only)', async () => {
    await useBackend('cpu');
    const base = tinyModel();
    const cfg = { lora: true, loraR: 2, loraTargetModules: ['c_attn', 'c_fc'] };
    const a = rloo(base, cfg);
    await a.iteration();
    const state = await a.getState();
    expect(Object.keys(state.policy).sort()).toEqual([
      'transformer.h.0.attn.c_attn.lora_A',
      'transformer.h.0.attn.c_attn.lora_B',
      'transformer.h.0.mlp.c_fc.lora_A',
      'transformer.h.0.mlp.c_fc.lora_B',
    ]);
    await a.iteration();
    const b = rloo(base, cfg);
    b.setState(state);
    await b.iteration();
    expect(timeless(b.history)).toEqual(timeless(a.history));
    a.dispose();
    b.dispose();
    base.dispose();
  }, 60_000);
});
