/**
 * PpoTrainer on a tiny random GPT (V = 16, C = 16, one layer, context 16) and a character
 * tokenizer ('a'…'o' = 0…14, end-of-text = 15). Checks learning (a reward for emitting one token
 * makes it more frequent), determinism, exact resume from getState/setState, no tensor growth,
 * the all-or-nothing divergence guard, and the first-iteration invariants (KL 0, ratio 1).
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { tf, useBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import { generate } from '../../src/lib/model/sampling';
import {
  PpoConfigError,
  DEFAULT_PPO_CONFIG,
  PPO_CONFIG_HELP,
  validatePpoConfig,
  type PpoConfig,
} from '../../src/lib/rlhf/ppo-config';
import {
  PpoDivergedError,
  PpoPhaseError,
  PpoTrainer,
  rewardFromFunction,
  type PpoMetrics,
  type RewardSource,
} from '../../src/lib/rlhf/ppo';
import { ValueModel } from '../../src/lib/rlhf/value-model';
import { entropyFromLogits } from '../../src/lib/rlhf/entropy';

const V = 16;
const EOT = 15;
const X = 3; // the rewarded token, 'd'
const tokenizer = {
  eotId: EOT,
  encode: (text: string) => [...text].map((ch) => ch.charCodeAt(0) - 97),
  decode: (ids: number[]) => ids.map((i) => (i === EOT ? '|' : String.fromCharCode(97 + i))).join(''),
};
const PROMPTS = ['ab', 'cfe', 'g', 'hijk', 'lm', 'no', 'bca', 'kk'];
const TINY: Partial<PpoConfig> = {
  batchSize: 8,
  maxNewTokens: 6,
  temperature: 1,
  miniBatches: 2,
  ppoEpochs: 2,
  lr: 1e-2,
  klCoef: 0.02,
  seed: 3,
};

function tinyModel(seed = 1): GPT {
  return new GPT({ vocabSize: V, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 }, { seed });
}

/** Reward: how many times the response emits X. */
const countX: RewardSource = {
  score: async (batch) => batch.map((x) => x.responseIds.filter((id) => id === X).length),
};

function makeTrainer(model: GPT, config: Partial<PpoConfig> = {}, reward: RewardSource = countX): PpoTrainer {
  return new PpoTrainer({ model, reward, tokenizer, prompts: PROMPTS, config: { ...TINY, ...config } });
}

/** Metrics without the wall-clock time. */
function timeless(h: PpoMetrics[]): Omit<PpoMetrics, 'time/iteration_s'>[] {
  return h.map(({ 'time/iteration_s': _t, ...rest }) => rest);
}

async function weightsOf(t: PpoTrainer): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const v of [...t.policy.params.values(), ...t.valueModel.namedVariables().values()])
    out.push(new Float32Array((await v.data()) as Float32Array));
  return out;
}

/** Fraction of X among tokens sampled by `model` (fixed seed, many rows). */
async function freqX(model: GPT): Promise<number> {
  const prompts = Array.from({ length: 32 }, (_, i) => [EOT, ...tokenizer.encode(PROMPTS[i % PROMPTS.length])]);
  const rows = await generate(model, prompts, { maxNewTokens: 6, temperature: 1, seed: 99 }, EOT);
  const ids = rows.flatMap((r) => r.ids);
  return ids.filter((i) => i === X).length / ids.length;
}

beforeAll(async () => {
  await useBackend('cpu');
});

describe('validatePpoConfig', () => {
  test('defaults pass, every field has help text', () => {
    expect(validatePpoConfig({})).toEqual(DEFAULT_PPO_CONFIG);
    for (const k of Object.keys(DEFAULT_PPO_CONFIG)) expect(PPO_CONFIG_HELP[k as keyof PpoConfig]).toBeTruthy();
    expect(JSON.parse(JSON.stringify(DEFAULT_PPO_CONFIG))).toEqual(DEFAULT_PPO_CONFIG);
  });
  test('one error per bad field', () => {
    try {
      validatePpoConfig({ lr: -1, klEstimator: 'k2', miniBatches: 3, adaptiveKl: { target: 0, horizon: 1 }, typo: 1 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(PpoConfigError);
      const f = (e as PpoConfigError).fields;
      expect(Object.keys(f).sort()).toEqual(['_', 'adaptiveKl', 'klEstimator', 'lr', 'miniBatches']);
      expect(f.miniBatches).toMatch(/divide batchSize/);
    }
    expect(validatePpoConfig({ missingEosPenalty: 1, targetKlEarlyStop: 0.1 }).missingEosPenalty).toBe(1);
  });
});

describe('PpoTrainer', () => {
  test('first iteration: KL 0 before any update, ratio 1 on the first minibatch', async () => {
    const base = tinyModel();
    const t = makeTrainer(base, { klEstimator: 'k3' });
    const roll = await t.rollout();
    expect(roll.logprobMismatch).toBeLessThan(1e-4); // training positions line up with sampling
    await t.score();
    const adv = await t.advantages();
    expect(Math.abs(adv.metrics['objective/kl'])).toBeLessThan(1e-5);
    for (const s of adv.samples) {
      for (const k of s.kl) expect(Math.abs(k)).toBeLessThan(1e-5);
      expect(s.tokens.length).toBe(s.logprobs.length);
    }
    const up = await t.update();
    expect(Math.abs(up.steps[0].ratio - 1)).toBeLessThan(1e-5);
    expect(up.steps[0].approxKl).toBeLessThan(1e-10);
    expect(up.steps[0].clipfrac).toBe(0);
    expect(up.steps.length).toBe(4);
    expect(up.metrics['val/ratio']).toBeGreaterThan(0.9);
    expect(up.metrics['val/ratio']).toBeLessThan(1.1);
    t.dispose();
    base.dispose();
  });

  test("rollout rows carry the rollout policy's per-token entropy at the temperature; the entropy bonus still trains", async () => {
    const temperature = 0.7;
    const base = tinyModel();
    const t = makeTrainer(base, { temperature });
    await t.rollout();
    await t.score();
    const adv = await t.advantages();
    // Recomputed apart: one forward pass per row over [query, response], entropy of softmax(z / T)
    // at the position before each response token.
    for (let i = 0; i < adv.samples.length; i++) {
      const q = t.queryFor(tokenizer.encode(adv.samples[i].prompt));
      const r = adv.rows.responseIds[i];
      const seq = tf.tensor2d([[...q, ...r]], undefined, 'int32');
      const logits = base.forward(seq).logits;
      const z = (await tf.div(logits, temperature).array()) as number[][][];
      const want = entropyFromLogits([z[0].slice(q.length - 1, q.length - 1 + r.length)], [r.map(() => 1)]);
      expect(adv.rows.entropy[i].length).toBe(r.length);
      adv.rows.entropy[i].forEach((h, j) => expect(h).toBeCloseTo(want.perToken[0][j], 4));
      tf.dispose([seq, logits]);
    }
    const up = await t.update();
    expect(up.metrics['policy/entropy_avg']).toBeGreaterThan(0);
    t.dispose();
    base.dispose();

    // entCoef > 0 keeps the entropy on the gradient's path: the same run ends with other weights.
    const after = async (entCoef: number) => {
      const m = tinyModel();
      const tr = makeTrainer(m, { entCoef });
      await tr.iteration();
      const w = await weightsOf(tr);
      tr.dispose();
      m.dispose();
      return w;
    };
    const [w0, w1] = [await after(0), await after(0.5)];
    const diff = Math.max(...w0.map((a, k) => Math.max(...a.map((x, n) => Math.abs(x - w1[k][n])))));
    expect(diff).toBeGreaterThan(1e-6);
  });

  test('phases run in order', async () => {
    const base = tinyModel();
    const t = makeTrainer(base);
    await expect(t.update()).rejects.toBeInstanceOf(PpoPhaseError);
    await t.rollout();
    await expect(t.getState()).rejects.toBeInstanceOf(PpoPhaseError);
    t.abandonIteration();
    expect(t.nextPhase).toBe('rollout');
    t.dispose();
    base.dispose();
  });

  test('updateConfig: β changed mid-run is the β of the next iteration, also mid-iteration and with adaptive KL', async () => {
    const base = tinyModel();
    const t = makeTrainer(base, { klCoef: 0.02, adaptiveKl: null });
    await t.iteration();
    expect(t.history[0].beta).toBe(0.02);
    t.updateConfig({ klCoef: 0.3 });
    await t.iteration();
    expect(t.history[1].beta).toBe(0.3);
    // Mid-iteration: the half-done iteration keeps its β, the next one takes the new one.
    await t.rollout();
    t.updateConfig({ klCoef: 0.7 });
    expect(t.config.klCoef).toBe(0.3);
    expect(t.nextConfig.klCoef).toBe(0.7);
    await t.score();
    await t.advantages();
    await t.update();
    expect(t.history[2].beta).toBe(0.3);
    await t.iteration();
    expect(t.history[3].beta).toBe(0.7);
    // Adaptive KL switched on keeps β and adapts it from there; a new klCoef restarts it.
    t.updateConfig({ adaptiveKl: { target: 1e-6, horizon: 8 } });
    await t.iteration();
    expect(t.history[4].beta).toBe(0.7);
    await t.iteration();
    expect(t.history[5].beta).toBeGreaterThan(0.7); // KL above the tiny target: β grows
    t.updateConfig({ klCoef: 0.05 });
    await t.iteration();
    expect(t.history[6].beta).toBe(0.05);
    // Switched off, β is klCoef again (not the adapted value).
    await t.iteration();
    expect(t.history[7].beta).not.toBe(0.05);
    t.updateConfig({ adaptiveKl: null });
    await t.iteration();
    expect(t.history[8].beta).toBe(0.05);
    // A checkpoint carries the change.
    t.updateConfig({ klCoef: 0.4 });
    expect((await t.getState()).config.klCoef).toBe(0.4);
    t.dispose();
    base.dispose();
  }, 60_000);

  test('updateConfig refuses bad and fixed settings with a message and changes nothing', async () => {
    const base = tinyModel();
    const t = makeTrainer(base, { adaptiveKl: null });
    await t.iteration();
    const before = structuredClone(t.config);
    expect(() => t.updateConfig({ klCoef: -1 })).toThrow(PpoConfigError);
    expect(() => t.updateConfig({ seed: 9 })).toThrow(/seed: cannot change while the run goes on/);
    expect(() => t.updateConfig({ maxNewTokens: 16 })).toThrow(/maxNewTokens.*below the model context \(16\)/);
    expect(() => t.updateConfig({ miniBatches: 3 })).toThrow(/divide batchSize/);
    const err = (() => {
      try {
        t.updateConfig({ lr: 0, typo: 1 } as Partial<PpoConfig>);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(PpoConfigError);
    expect(Object.keys((err as PpoConfigError).fields).sort()).toEqual(['_', 'lr']);
    expect(t.config).toEqual(before);
    expect(t.nextConfig).toEqual(before);
    await t.iteration();
    expect(t.history[1].beta).toBe(before.klCoef);
    // The same seed is no change.
    expect(t.updateConfig({ seed: before.seed, temperature: 0.5 }).temperature).toBe(0.5);
    t.dispose();
    base.dispose();
  }, 60_000);

  test('rewarding token X makes it more frequent', async () => {
    const base = tinyModel();
    const before = await freqX(base);
    const t = makeTrainer(base);
    for (let i = 0; i < 12; i++) await t.iteration();
    const after = await freqX(t.policy);
    expect(before).toBeLessThan(0.15);
    expect(after).toBeGreaterThan(before + 0.3);
    const h = t.history;
    expect(mean(h.slice(-5).map((m) => m['objective/scores']))).toBeGreaterThan(
      mean(h.slice(0, 5).map((m) => m['objective/scores'])) + 1,
    );
    expect(h.at(-1)!['objective/kl']).toBeGreaterThan(0);
    t.dispose();
    base.dispose();
  }, 60_000);

  test('same seed → identical metric history; getState/setState resumes exactly', async () => {
    const base = tinyModel();
    const a = makeTrainer(base, { adaptiveKl: { target: 0.5, horizon: 100 }, entCoef: 0.01 });
    for (let i = 0; i < 4; i++) await a.iteration();

    const b = makeTrainer(base, { adaptiveKl: { target: 0.5, horizon: 100 }, entCoef: 0.01 });
    for (let i = 0; i < 2; i++) await b.iteration();
    const state = structuredClone(await b.getState()); // as IndexedDB would store it
    b.dispose();
    const c = makeTrainer(base, { seed: 12345 }); // config comes from the state
    c.setState(state);
    for (let i = 0; i < 2; i++) await c.iteration();

    const d = makeTrainer(base, { adaptiveKl: { target: 0.5, horizon: 100 }, entCoef: 0.01 });
    for (let i = 0; i < 4; i++) await d.iteration();

    expect(timeless(d.history)).toEqual(timeless(a.history));
    expect(timeless(c.history)).toEqual(timeless(a.history));
    expect(c.beta).toBe(a.beta);
    expect(a.beta).not.toBe(TINY.klCoef); // the adaptive controller moved
    const [wa, wc] = [await weightsOf(a), await weightsOf(c)];
    wa.forEach((w, i) => expect(wc[i]).toEqual(w));
    for (const t of [a, c, d]) t.dispose();
    base.dispose();
  }, 60_000);

  test('no tensor growth over 20 iterations; dispose frees everything', async () => {
    const base = tinyModel();
    const start = tf.memory().numTensors;
    const t = makeTrainer(base, { targetKlEarlyStop: 0.5, ppoEpochs: 1, batchSize: 4, miniBatches: 1 });
    await t.iteration();
    const after1 = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) await t.iteration();
    expect(tf.memory().numTensors).toBe(after1);
    t.dispose();
    // GPT's constructor keeps its init tensors alive after assigning them to variables (gpt.ts),
    // so allow for those of the three copies the trainer made (policy, reference, value trunk).
    expect(tf.memory().numTensors - start).toBeLessThanOrEqual(3 * base.params.size);
    base.dispose();
  }, 60_000);

  test('a NaN reward throws PpoDivergedError and leaves the weights unchanged', async () => {
    const base = tinyModel();
    let poison = false;
    const reward: RewardSource = {
      score: async (batch) => batch.map((x, i) => (poison && i === 2 ? NaN : x.responseIds.length)),
    };
    const t = makeTrainer(base, {}, reward);
    await t.iteration();
    const before = await weightsOf(t);
    const stateBefore = await t.getState();
    poison = true;
    await expect(t.iteration()).rejects.toBeInstanceOf(PpoDivergedError);
    const after = await weightsOf(t);
    before.forEach((w, i) => expect(after[i]).toEqual(w));
    const stateAfter = await t.getState();
    expect(stateAfter.adamM).toEqual(stateBefore.adamM);
    expect(stateAfter.adamStep).toBe(stateBefore.adamStep);
    expect(t.completedIterations).toBe(1);
    expect(t.nextPhase).toBe('rollout');
    poison = false;
    await t.iteration(); // usable again
    t.dispose();
    base.dispose();
  }, 30_000);

  test('value model from a trunk with a given head; reward from a function; missing-EOS penalty', async () => {
    const base = tinyModel();
    const head = { weight: new Float32Array(16).fill(0.1), bias: 0.5 };
    const valueModel = ValueModel.fromTrunk(tinyModel(7), head);
    const idx = tf.tensor2d([[1, 2, 3]], [1, 3], 'int32');
    const vals = valueModel.values(idx);
    expect(vals.shape).toEqual([1, 3]);
    tf.dispose([idx, vals]);
    const t = new PpoTrainer({
      model: base,
      valueModel,
      reward: rewardFromFunction((text) => text.length),
      tokenizer,
      prompts: PROMPTS,
      config: { ...TINY, missingEosPenalty: 100, maxNewTokens: 2 },
    });
    await t.rollout();
    const s = await t.score();
    s.penalised.forEach((p, i) => expect(s.scores[i]).toBe(s.rawScores[i] - (p ? 100 : 0)));
    expect(s.penalised.some(Boolean)).toBe(true);
    const adv = await t.advantages();
    expect(adv.samples[0].values[0]).not.toBe(0); // the given head, not zeros
    await t.update();
    t.dispose();
    base.dispose();
  });
});

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

describe('PpoTrainer with LoRA (model/lora.ts)', () => {
  /** The tied head scaled up: at GPT-2 init (std 0.02) its logits stay near uniform unless wte
   *  itself trains, which LoRA leaves frozen. */
  function loraModel(): GPT {
    const m = tinyModel();
    const wte = m.params.get('transformer.wte.weight')!;
    tf.tidy(() => wte.assign(tf.mul(wte, 15)));
    return m;
  }
  const LORA: Partial<PpoConfig> = { lora: true, loraR: 4, loraTargetModules: ['c_attn', 'c_proj', 'c_fc'] };

  test('one trunk: the reference is the policy with adapters off, the critic a head on the frozen base; X gets more frequent', async () => {
    const base = loraModel();
    const before = await freqX(base);
    const t = makeTrainer(base, LORA);
    expect(t.reference).toBe(t.policy);
    expect(t.valueModel.trunk).toBe(t.policy);
    expect(t.valueModel.trainableVariables()).toHaveLength(2); // score.weight and score.bias
    const baseWeights = [...t.policy.params.values()].map((v) => v.dataSync().slice());
    const headBefore = t.valueModel.headWeight.dataSync().slice();
    for (let i = 0; i < 12; i++) await t.iteration();
    const after = await freqX(t.policy);
    expect(after).toBeGreaterThan(before + 0.2);
    const h = t.history;
    expect(mean(h.slice(-5).map((m) => m['objective/scores']))).toBeGreaterThan(
      mean(h.slice(0, 5).map((m) => m['objective/scores'])) + 0.5,
    );
    expect(h.at(-1)!['objective/kl']).toBeGreaterThan(0);
    [...t.policy.params.values()].forEach((v, i) => expect(v.dataSync()).toEqual(baseWeights[i]));
    expect(t.valueModel.headWeight.dataSync()).not.toEqual(headBefore);
    t.policy.lora!.enabled = false; // sampling awaits, so switch off by hand (withoutAdapters is synchronous)
    expect(await freqX(t.policy)).toBe(before);
    t.policy.lora!.enabled = true;
    t.dispose();
    // The trainer disposed its policy (and with it the shared trunk), not the starting model.
    expect(base.params.get('transformer.wte.weight')!.isDisposed).toBe(false);
    base.dispose();
  }, 60_000);

  test('getState holds the adapters and the value head only; setState resumes exactly', async () => {
    const base = loraModel();
    const a = makeTrainer(base, LORA);
    for (let i = 0; i < 2; i++) await a.iteration();
    const state = structuredClone(await a.getState());
    expect(Object.keys(state.policy).every((k) => /\.lora_[AB]$/.test(k))).toBe(true);
    expect(Object.keys(state.value).sort()).toEqual(['score.bias', 'score.weight']);
    for (let i = 0; i < 2; i++) await a.iteration();
    const c = makeTrainer(base, LORA);
    c.setState(state);
    for (let i = 0; i < 2; i++) await c.iteration();
    expect(timeless(c.history)).toEqual(timeless(a.history));
    // A full-weights trainer refuses a LoRA state.
    const full = makeTrainer(base);
    expect(() => full.setState(state)).toThrow(/missing or of the wrong size/);
    for (const t of [a, c, full]) t.dispose();
    base.dispose();
  }, 60_000);
});
