/**
 * Reward model (GPT trunk + scalar head at the last real token) and its Bradley–Terry
 * training: a trivially separable preference set is learnt in head and full mode, the
 * prompt split has no overlap, bad data and divergence fail with `RewardTrainingError`
 * leaving the previous weights intact, normalisation gives mean 0 / std 1, the training loss
 * is the array `bradleyTerryLoss` of the same rewards, and a training run leaks no tensors.
 * Tiny random GPT (1 layer, C = 16) so the file runs in seconds.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { tf, useBackend, type TestBackend } from './tf-backends';
import type { GPTConfig } from '../../src/lib/model/config';
import { GPT } from '../../src/lib/model/gpt';
import { Rng } from '../../src/lib/model/rng';
import type { TrainingPair } from '../../src/lib/data/records';
import { bradleyTerryLoss, bradleyTerryLossT } from '../../src/lib/rlhf/bradley-terry';
import {
  RewardModel,
  packBatch,
  rewardInputIds,
  rewardModelStateFromSafetensors,
  rewardModelToSafetensors,
  rewardSource,
} from '../../src/lib/rlhf/reward-model';
import {
  RewardTrainingError,
  evaluatePairs,
  misclassified,
  prefixRewards,
  splitByPrompt,
  trainRewardModel,
  type RewardTrainEvent,
} from '../../src/lib/rlhf/reward-train';

const EOT = 15;
const X = 7; // the "good" token
const CONFIG: GPTConfig = { vocabSize: 16, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 };

/** Texts are space-separated token ids; input = [eot, ...prompt, ...response]. */
const encode = (prompt: string, response: string): number[] => [EOT, ...ids(prompt), ...ids(response)];
const ids = (s: string): number[] => (s ? s.split(' ').map(Number) : []);

/**
 * `nPrompts` prompts × `perPrompt` pairs: the chosen response contains token X somewhere (or,
 * with `xLast`, as its last token), the rejected one does not (tokens from 0–6 and 8–13).
 */
function separablePairs(nPrompts: number, perPrompt: number, seed: number, xLast = false): TrainingPair[] {
  const rng = new Rng(seed);
  const other = () => {
    const t = rng.int(13);
    return t >= X ? t + 1 : t;
  };
  const out: TrainingPair[] = [];
  for (let p = 0; p < nPrompts; p++) {
    const prompt = `${p} ${other()}`; // distinct for p < 13
    for (let k = 0; k < perPrompt; k++) {
      const len = 3 + rng.int(4);
      const rejected = Array.from({ length: len }, other);
      const chosen = Array.from({ length: len }, other);
      chosen[xLast ? len - 1 : rng.int(len)] = X;
      out.push({ prompt, chosen: chosen.join(' '), rejected: rejected.join(' ') });
    }
  }
  return out;
}

function policy(seed = 1): GPT {
  return new GPT(CONFIG, { seed, trainable: false });
}

async function weightsOf(rm: RewardModel): Promise<Map<string, Float32Array>> {
  return (await rm.getState()).weights;
}

function sameWeights(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  for (const [k, v] of a) {
    const w = b.get(k)!;
    if (w.length !== v.length || v.some((x, i) => !Object.is(x, w[i]))) return false;
  }
  return a.size === b.size;
}

describe('splitByPrompt', () => {
  const pairs = separablePairs(10, 4, 3);
  test('no prompt on both sides; seeded; about 20% of prompts held out', () => {
    const s = splitByPrompt(pairs, 0.2, 5);
    const trainPrompts = new Set(s.train.map((p) => p.prompt));
    const valPrompts = new Set(s.val.map((p) => p.prompt));
    expect([...valPrompts].filter((p) => trainPrompts.has(p))).toEqual([]);
    expect(valPrompts.size).toBe(2);
    expect(s.valPrompts.sort()).toEqual([...valPrompts].sort());
    expect(s.train.length + s.val.length).toBe(pairs.length);
    expect(splitByPrompt(pairs, 0.2, 5)).toEqual(s);
    expect(splitByPrompt(pairs, 0.2, 6).valPrompts).not.toEqual(s.valPrompts);
  });
  test('at least one prompt each side', () => {
    const two = separablePairs(2, 4, 1);
    const s = splitByPrompt(two, 0.01, 0);
    expect(new Set(s.val.map((p) => p.prompt)).size).toBe(1);
    expect(new Set(s.train.map((p) => p.prompt)).size).toBe(1);
    expect(splitByPrompt(two, 0).val).toEqual([]);
  });
});

describe.each<TestBackend>(['cpu', 'wasm'])('reward model on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  test('packBatch right-pads and keeps the end of long rows', () => {
    const p = packBatch([[1, 2, 3], [4], [5, 6, 7, 8, 9]], 4, 0);
    expect(p.T).toBe(4);
    expect(Array.from(p.ids)).toEqual([1, 2, 3, 0, 4, 0, 0, 0, 6, 7, 8, 9]);
    expect(p.last).toEqual([2, 0, 3]);
  });

  test('score: padding and batch-mates do not change a reward; long rows are cropped to the last blockSize tokens', async () => {
    const base = policy();
    const rm = RewardModel.fromPolicy(base, { seed: 2 });
    const short = [EOT, 1, 2];
    const long = [EOT, 3, 4, 5, 6, 7, 8];
    const alone = await rm.score([short]);
    const together = await rm.score([short, long]);
    expect(together[0]).toBeCloseTo(alone[0], 5);
    // As PPO's reward source: [eot] + prompt + response, a final eot dropped, normalised.
    rm.normalisation = { gain: 2, bias: 1 };
    const src = rewardSource(rm, EOT);
    const viaSource = await src.score([
      { promptIds: [1], responseIds: [2, EOT] },
      { promptIds: [3, 4], responseIds: [5, 6, 7, 8] },
    ]);
    expect(viaSource[0]).toBeCloseTo(2 * alone[0] + 1, 5);
    expect(viaSource[1]).toBeCloseTo(2 * together[1] + 1, 5);
    rm.normalisation = { gain: 1, bias: 0 };
    const tooLong = Array.from({ length: 24 }, (_, i) => i % 14);
    const [a] = await rm.score([tooLong]);
    const [b] = await rm.score([tooLong.slice(-CONFIG.blockSize)]);
    expect(a).toBeCloseTo(b, 5);
    // Cached features give the same rewards.
    const cached = await rm.scoreCached([short, long]);
    expect(cached[0]).toBeCloseTo(together[0], 5);
    expect(cached[1]).toBeCloseTo(together[1], 5);
    // prefixRewards: one value per prefix, the last equals the whole text's reward.
    const pr = await prefixRewards(rm, long);
    expect(pr).toHaveLength(long.length);
    expect(pr[pr.length - 1]).toBeCloseTo(together[1], 4);
    expect(pr[2]).toBeCloseTo((await rm.score([long.slice(0, 3)]))[0], 4);
    const prLong = await prefixRewards(rm, tooLong);
    expect(prLong).toHaveLength(24);
    expect(prLong[23]).toBeCloseTo(a, 4);
    // Mean pooling: the reward is the mean of per-position rewards, prefixes included.
    const mean = RewardModel.fromPolicy(base, { seed: 2, pooling: 'mean' });
    const [m] = await mean.score([long]);
    const [m3] = await mean.score([long.slice(0, 3)]);
    const prMean = await prefixRewards(mean, long);
    expect(prMean[long.length - 1]).toBeCloseTo(m, 4);
    expect(prMean[2]).toBeCloseTo(m3, 4);
    expect((await mean.score([short, long]))[0]).toBeCloseTo((await mean.score([short]))[0], 5);
    expect(RewardModel.fromState(await mean.getState()).pooling).toBe('mean');
    mean.dispose();
    rm.dispose();
    base.dispose();
  });

  test('head mode ridge (headL2): shrinks the head, reports the Bradley–Terry loss without the penalty', async () => {
    const base = policy();
    const pairs = separablePairs(10, 8, 11, true);
    const run = async (headL2: number) => {
      const rm = RewardModel.fromPolicy(base, { mode: 'head', seed: 3 });
      const events: RewardTrainEvent[] = [];
      const res = await trainRewardModel(rm, pairs, { encode, seed: 1, headL2, epochs: 20 }, (e) => events.push(e));
      const w = Array.from(rm.headVariables()[0].dataSync());
      // The reported train loss is the mean BT loss of the epoch: recompute it from the rewards.
      const last = events.filter((e) => e.type === 'epoch').pop();
      if (!last || last.type !== 'epoch') throw new Error('no epoch event');
      rm.dispose();
      return { norm: Math.hypot(...w), res, last: last.metrics };
    };
    const free = await run(0);
    const ridge = await run(10);
    expect(ridge.norm).toBeLessThan(0.5 * free.norm);
    expect(ridge.res.best.eval_accuracy).toBeGreaterThanOrEqual(0.9);
    // With a strong ridge the rewards are small, so the BT loss stays near log 2 from below;
    // a loss that included the penalty would not have to.
    expect(ridge.last.loss).toBeLessThan(Math.log(2) + 1e-3);
    expect(ridge.last.loss).toBeGreaterThan(free.last.loss);
    await expect(
      trainRewardModel(RewardModel.fromPolicy(base, { mode: 'head' }), pairs, { encode, headL2: -1 }),
    ).rejects.toThrow(/head L2/);
    base.dispose();
  });

  test('head mode: ≥ 95% held-out accuracy on a separable set, no tensor leak, normalised', async () => {
    const base = policy();
    const rm = RewardModel.fromPolicy(base, { mode: 'head', seed: 3 });
    // X at the end: a random trunk carries little of the earlier tokens into the last position's
    // hidden state (a pretrained one does), and head mode only sees that state.
    const pairs = separablePairs(10, 8, 11, true);
    const normaliseOn = pairs.slice(0, 30).map((p) => encode(p.prompt, p.chosen));
    const before = tf.memory().numTensors;
    const events: RewardTrainEvent[] = [];
    const res = await trainRewardModel(rm, pairs, { encode, normaliseOn, seed: 1 }, (e) => events.push(e));
    expect(tf.memory().numTensors).toBe(before);
    expect(res.mode).toBe('head');
    expect(res.best.eval_accuracy).toBeGreaterThanOrEqual(0.95);
    // Head mode is a convex fit: no early stopping, the last epoch's head is kept.
    expect(res.stoppedEarly).toBe(false);
    expect(res.history).toHaveLength(60);
    expect(res.bestEpoch).toBe(60);
    const ev = await evaluatePairs(rm, res.split.val, encode);
    expect(ev.accuracy).toBeGreaterThanOrEqual(0.95);
    // Events: a start, per-epoch metrics with TRL names and reward distributions.
    expect(events[0].type).toBe('start');
    const epoch = events.find((e) => e.type === 'epoch')!;
    if (epoch.type !== 'epoch') throw new Error('no epoch event');
    for (const k of ['loss', 'accuracy', 'margin', 'mean_reward', 'eval_loss', 'eval_accuracy'] as const)
      expect(Number.isFinite(epoch.metrics[k])).toBe(true);
    expect(epoch.metrics.chosen_rewards).toHaveLength(res.split.train.length);
    expect(epoch.metrics.eval_chosen_rewards).toHaveLength(res.split.val.length);
    // Normalisation: mean 0, std 1 on the given texts.
    const z = await rm.scoreNormalised(normaliseOn);
    const mean = z.reduce((a, b) => a + b, 0) / z.length;
    const std = Math.sqrt(z.reduce((a, b) => a + (b - mean) ** 2, 0) / z.length);
    expect(mean).toBeCloseTo(0, 4);
    expect(std).toBeCloseTo(1, 4);
    // The trunk did not move in head mode.
    for (const [name, v] of base.params) {
      const d = tf.tidy(() => tf.max(tf.abs(tf.sub(v, rm.trunk.params.get(name)!))).dataSync()[0]);
      expect(d).toBe(0);
    }
    // misclassified: exactly the val pairs with r_c ≤ r_r.
    const wrong = await misclassified(rm, res.split.val, encode);
    expect(wrong.length).toBe(ev.chosen_rewards.filter((c, i) => !(c > ev.rejected_rewards[i])).length);
    rm.dispose();
    base.dispose();
  });

  test('full mode: ≥ 95% held-out accuracy on a separable set, no tensor leak', async () => {
    const base = policy();
    const rm = RewardModel.fromPolicy(base, { mode: 'full', seed: 3 });
    const pairs = separablePairs(10, 8, 12);
    const before = tf.memory().numTensors;
    // Without the linear probe: this checks that the trunk itself learns (a random trunk's
    // features give the probe little, and a small probed head slows the trunk's steps).
    const res = await trainRewardModel(rm, pairs, {
      encode,
      seed: 2,
      epochs: 12,
      learningRate: 3e-3,
      patience: 12,
      linearProbe: false,
    });
    expect(res.linearProbe).toBeUndefined();
    expect(tf.memory().numTensors).toBe(before);
    expect(res.best.eval_accuracy).toBeGreaterThanOrEqual(0.95);
    expect((await evaluatePairs(rm, res.split.val, encode)).accuracy).toBeGreaterThanOrEqual(0.95);
    // The trunk moved, the policy did not.
    const d = tf.tidy(
      () =>
        tf
          .max(
            tf.abs(
              tf.sub(
                base.params.get('transformer.h.0.mlp.c_fc.weight')!,
                rm.trunk.params.get('transformer.h.0.mlp.c_fc.weight')!,
              ),
            ),
          )
          .dataSync()[0],
    );
    expect(d).toBeGreaterThan(0);
    rm.dispose();
    base.dispose();
  }, 60_000);

  test('full mode fits the head on the frozen trunk first (linear probe), on the same split', async () => {
    const base = policy();
    const pairs = separablePairs(10, 8, 11, true);
    const head = RewardModel.fromPolicy(base, { mode: 'head', seed: 3 });
    const h = await trainRewardModel(head, pairs, { encode, seed: 1 });
    // Full mode, one epoch at a negligible learning rate: what is left is the probe's head.
    const full = RewardModel.fromPolicy(base, { mode: 'full', seed: 3 });
    const events: RewardTrainEvent[] = [];
    const f = await trainRewardModel(full, pairs, { encode, seed: 1, epochs: 1, learningRate: 1e-20 }, (e) =>
      events.push(e),
    );
    expect(f.mode).toBe('full');
    expect(f.split.val).toEqual(h.split.val);
    expect(f.linearProbe!.eval_accuracy).toBe(h.best.eval_accuracy);
    expect(f.linearProbe!.accuracy).toBe(h.best.accuracy);
    const wh = Array.from(head.scoreWeight.dataSync());
    const wf = Array.from(full.scoreWeight.dataSync());
    wf.forEach((x, i) => expect(x).toBeCloseTo(wh[i], 5));
    // The full run starts from the probed head: its epoch-0 validation is the probe's.
    const start = events[0];
    if (start.type !== 'start') throw new Error('no start event');
    expect(start.initial!.accuracy).toBeCloseTo(h.best.eval_accuracy!, 6);
    // Only the full run's own events reach the caller, and its features cache was cleared.
    expect(events.filter((e) => e.type === 'start')).toHaveLength(1);
    expect(full.cachedFeatureCount).toBe(0);
    head.dispose();
    full.dispose();
    base.dispose();
  }, 60_000);
});

describe('reward training: loss, errors, storage (cpu)', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  test('the training loss is the array bradleyTerryLoss of the same rewards', async () => {
    const base = policy();
    const rm = RewardModel.fromPolicy(base, { mode: 'full', seed: 4 });
    const pairs = separablePairs(4, 4, 21).map((p, i) => (i % 3 === 0 ? { ...p, margin: 1 } : p));
    const rewards = tf.tidy(() =>
      rm.scoreT(
        pairs.flatMap((p) => [encode(p.prompt, p.chosen)]).concat(pairs.map((p) => encode(p.prompt, p.rejected))),
      ),
    );
    const r = Array.from(await rewards.data());
    rewards.dispose();
    const c = r.slice(0, pairs.length);
    const rj = r.slice(pairs.length);
    const margins = pairs.map((p) => (p.margin ?? 0) * 0.5);
    const arr = bradleyTerryLoss(c, rj, margins, 0.01);
    const tensorLoss = tf.tidy(
      () => bradleyTerryLossT(tf.tensor1d(c), tf.tensor1d(rj), margins, 0.01).loss.dataSync()[0],
    );
    expect(tensorLoss).toBeCloseTo(arr.loss, 5);
    // One step over all pairs at a negligible learning rate: its logged loss is computed before
    // the update, on these weights.
    const steps: number[] = [];
    await trainRewardModel(
      rm,
      pairs,
      {
        encode,
        valFraction: 0,
        epochs: 1,
        batchSize: pairs.length,
        learningRate: 1e-20,
        centerCoef: 0.01,
        marginScale: 0.5,
        logEvery: 1,
        linearProbe: false, // the loss of these weights, not of a probed head
      },
      (e) => {
        if (e.type === 'step') steps.push(e.metrics.loss);
      },
    );
    expect(steps).toHaveLength(1);
    expect(steps[0]).toBeCloseTo(arr.loss, 4);
    const ev = await evaluatePairs(rm, pairs, encode, { centerCoef: 0.01, marginScale: 0.5 });
    expect(ev.loss).toBeCloseTo(arr.loss, 4);
    expect(ev.accuracy).toBeCloseTo(arr.accuracy, 6);
    rm.dispose();
    base.dispose();
  });

  test('too few pairs, all ties, one prompt, divergence and cancellation keep the previous weights', async () => {
    const base = policy();
    const rm = RewardModel.fromPolicy(base, { mode: 'full', seed: 5 });
    rm.normalisation = { gain: 2, bias: 0.5 };
    const w0 = await weightsOf(rm);
    const pairs = separablePairs(4, 4, 31);
    const before = tf.memory().numTensors;

    await expect(trainRewardModel(rm, pairs.slice(0, 5), { encode })).rejects.toThrow(
      /at least 8 preference pairs.*there are 5.*Label 3 more/,
    );
    const ties = pairs.map((p) => ({ ...p, rejected: p.chosen }));
    await expect(trainRewardModel(rm, ties, { encode })).rejects.toThrow(/No usable pairs: all 16 pairs are ties/);
    const onePrompt = pairs.map((p) => ({ ...p, prompt: '1 2' }));
    await expect(trainRewardModel(rm, onePrompt, { encode })).rejects.toThrow(/at least 2 different prompts/);
    await expect(trainRewardModel(rm, pairs, { encode, learningRate: -1 })).rejects.toThrow(RewardTrainingError);

    const err = await trainRewardModel(rm, pairs, { encode, learningRate: 1e30, epochs: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RewardTrainingError);
    expect((err as Error).name).toBe('RewardTrainingError');
    expect((err as Error).message).toMatch(/diverged.*previous weights were kept.*Lower the learning rate/);
    expect(sameWeights(w0, await weightsOf(rm))).toBe(true);
    expect(rm.normalisation).toEqual({ gain: 2, bias: 0.5 });

    // Head mode, NaN margin injected mid-data.
    const nan = pairs.map((p, i) => (i === 3 ? { ...p, margin: NaN } : p));
    await expect(trainRewardModel(rm, nan, { encode, mode: 'head' })).rejects.toThrow(/margin that is not a number/);

    // Cancelled after two steps.
    let calls = 0;
    const cancel = async () => {
      if (++calls > 2) throw new Error('cancelled');
    };
    await expect(trainRewardModel(rm, pairs, { encode, batchSize: 4 }, undefined, cancel)).rejects.toThrow('cancelled');
    expect(sameWeights(w0, await weightsOf(rm))).toBe(true);
    expect(rm.normalisation).toEqual({ gain: 2, bias: 0.5 });
    expect(tf.memory().numTensors).toBe(before);
    rm.dispose();
    base.dispose();
  });

  test('state and safetensors round trips give the same rewards', async () => {
    const base = policy();
    const rm = RewardModel.fromPolicy(base, { mode: 'head', seed: 6 });
    await trainRewardModel(rm, separablePairs(5, 4, 41), { encode, epochs: 5 });
    const texts = [encode('1 2', '3 7 4'), encode('5', '6 6 6 6')];
    const want = await rm.scoreNormalised(texts);
    const state = await rm.getState();
    expect(state.weights.get('score.weight')).toHaveLength(CONFIG.nEmbd);
    expect(state.weights.get('transformer.wte.weight')).toHaveLength(CONFIG.vocabSize * CONFIG.nEmbd);
    const copy = RewardModel.fromState(state);
    const fromFile = RewardModel.fromState(rewardModelStateFromSafetensors(rewardModelToSafetensors(state)));
    const cloned = rm.clone();
    for (const other of [copy, fromFile, cloned]) {
      const got = await other.scoreNormalised(texts);
      expect(got[0]).toBeCloseTo(want[0], 5);
      expect(got[1]).toBeCloseTo(want[1], 5);
      expect(other.mode).toBe('head');
      other.dispose();
    }
    expect(() => RewardModel.fromState({ ...state, weights: new Map([...state.weights].slice(1)) })).toThrow(/missing/);
    rm.dispose();
    base.dispose();
  });

  test('rewardInputIds: [eot] + encodePrompt(prompt) + encode(response)', () => {
    const tok = {
      eotId: 99,
      encode: (t: string) => [...t].map((ch) => ch.charCodeAt(0)),
      encodePrompt: (p: string) => ({ ids: [...p.trimEnd()].map((ch) => ch.charCodeAt(0)) }),
    };
    expect(rewardInputIds(tok, 'ab ', ' c')).toEqual([99, 97, 98, 32, 99]);
  });
});

describe('reward model with LoRA (model/lora.ts)', () => {
  test('full mode + LoRA: the trunk base stays as it was, adapters and head learn, held-out accuracy rises; stored merged', async () => {
    await useBackend('cpu');
    const base = policy();
    const rm = RewardModel.fromPolicy(base, { mode: 'full', seed: 3 });
    const trunkBefore = [...rm.trunk.params.values()].map((v) => v.dataSync().slice());
    const pairs = separablePairs(10, 8, 12);
    let initial = NaN;
    const res = await trainRewardModel(
      rm,
      pairs,
      {
        encode,
        seed: 2,
        epochs: 12,
        learningRate: 1e-2,
        patience: 12,
        linearProbe: false,
        lora: true,
        loraR: 4,
        loraTargetModules: ['c_attn', 'c_proj', 'c_fc'],
      },
      (e) => {
        if (e.type === 'start') initial = e.initial!.accuracy;
      },
    );
    expect(rm.trunk.lora!.adapters.size).toBe(4);
    [...rm.trunk.params.values()].forEach((v, i) => expect(v.dataSync()).toEqual(trunkBefore[i]));
    expect(rm.trunk.lora!.variables().every((v) => v.dataSync().some((x) => x !== 0))).toBe(true);
    expect(res.best.eval_accuracy).toBeGreaterThanOrEqual(0.75);
    expect(res.best.eval_accuracy).toBeGreaterThan(initial + 0.1);
    const losses = res.history.map((m) => m.loss);
    expect(losses.at(-1)!).toBeLessThan(losses[0]);
    // The stored state is a plain reward model with the adapters merged: same rewards.
    const state = await rm.getState();
    const again = RewardModel.fromState(state);
    const rows = pairs.slice(0, 6).map((p) => encode(p.prompt, p.chosen));
    const [a, b] = [await rm.score(rows), await again.score(rows)];
    a.forEach((x, i) => expect(b[i]).toBeCloseTo(x, 4));
    again.dispose();
    rm.dispose();
    base.dispose();
  }, 180_000);

  test('LoRA needs full mode; a failed LoRA run removes its adapters', async () => {
    await useBackend('cpu');
    const base = policy();
    const rm = RewardModel.fromPolicy(base, { mode: 'head', seed: 3 });
    await expect(trainRewardModel(rm, separablePairs(10, 8, 12), { encode, lora: true })).rejects.toThrow(
      /needs mode 'full'/,
    );
    expect(rm.trunk.lora).toBeNull();
    const full = RewardModel.fromPolicy(base, { mode: 'full', seed: 3 });
    await expect(
      trainRewardModel(full, separablePairs(10, 8, 12), { encode, lora: true, linearProbe: false }, undefined, () =>
        Promise.reject(new Error('cancelled')),
      ),
    ).rejects.toThrow(/cancelled/);
    expect(full.trunk.lora).toBeNull();
    expect(full.trainableVariables('full').length).toBe(full.trunk.params.size + 2);
    rm.dispose();
    full.dispose();
    base.dispose();
  }, 60_000);
});
