/**
 * Online DPO on the issue-6 task, in Node on the TF.js wasm backend (one thread), as the app runs
 * it: a scripted labeller labels pairs of the base model's samples (with label noise), a reward
 * model learns them (Bradley–Terry), and `OnlineDpoTrainer` (src/lib/rlhf/online-dpo.ts; TRL
 * `OnlineDPOTrainer`, Guo et al. 2024) samples two completions per prompt each iteration, lets
 * the reward model judge them, and takes a DPO step on the pairs. The measure is the one of
 * pipeline.ts: the noise-free labeller's score of held-out samples, before vs after, in base std,
 * and KL(policy ‖ base) per sequence, to put beside offline DPO's 0.2–0.87 base std (dpo.ts) and
 * PPO's 1.8 on the same pairs.
 *
 *   npx tsx scripts/experiments/online-dpo.ts --pairs 300 --noise 0.1 --iterations 100 --seed 0
 *   options: --model public/models/tiny-gpt --prompts static/prompts/reviews.json --labeller sentiment
 *            --config '{"beta":0.1,"learningRate":1e-4}' --eval-samples 16 --eval-seed 7 --eval-every 25
 *            --out runs/online-dpo --backend wasm
 *
 * `onlineDpoStage` is the RL stage alone (a base model, a reward source, prompts → the trained
 * trainer, its held-out gold lift and KL). `pipeline.ts --algo online-dpo` runs the same trainer
 * (its PIPELINE_ALGOS entry) in the pipeline's own loop, so that `--seconds ppo`, `--reward-fn`
 * and the summary.json of the other algorithms apply to it too.
 *
 * Writes `<out>/pairs.jsonl`, `<out>/log.jsonl` (TRL-named metrics per iteration) and
 * `<out>/summary.json`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import type { TrainingPair } from '../../src/lib/data/records';
import type { GPT } from '../../src/lib/model/gpt';
import type { BpeTokenizer } from '../../src/lib/model/tokenizer';
import {
  defaultLabellerConfig,
  labellerFromConfig,
  validateLabellerConfig,
  type LabellerKind,
} from '../../src/lib/rlhf/labellers';
import { OnlineDpoTrainer, type OnlineDpoMetrics } from '../../src/lib/rlhf/online-dpo';
import type { OnlineDpoConfig } from '../../src/lib/rlhf/online-dpo-config';
import type { RewardSource } from '../../src/lib/rlhf/ppo';
import { RewardModel, rewardInputIds, rewardSource } from '../../src/lib/rlhf/reward-model';
import { evaluatePairs, trainRewardModel, type RewardEncoder } from '../../src/lib/rlhf/reward-train';
import {
  evaluatePolicy,
  loadModel,
  readPrompts,
  samplePairs,
  setBackend,
  splitPrompts,
  stats,
  toPair,
} from './pipeline-common';

export interface OnlineDpoStageOptions {
  base: GPT;
  tok: BpeTokenizer;
  reward: RewardSource;
  train: string[];
  heldOut: string[];
  /** The noise-free score the lift is measured in. */
  gold: (text: string, prompt: string) => number;
  config: Partial<OnlineDpoConfig>;
  iterations: number;
  evalSamples: number;
  evalSeed: number;
  /** Called with each iteration's metrics (e.g. to append to a log). */
  onIteration?: (m: OnlineDpoMetrics) => void;
  /** Every K iterations (0 = never), the held-out gold lift and KL so far, with a quarter of the samples. */
  evalEvery?: number;
  onEval?: (row: { iteration: number; gold: number; riseInBaseStd: number; kl: number }) => void;
}

export interface OnlineDpoStageResult {
  trainer: OnlineDpoTrainer;
  before: { mean: number; std: number };
  after: { mean: number; std: number };
  riseInBaseStd: number;
  heldOutKl: { mean: number; std: number };
  secondsPerIteration: number;
  examplesBefore: string[];
  examplesAfter: string[];
}

/** Online DPO on `base` against `reward`; gold lift and KL on the held-out prompts (caller disposes the trainer). */
export async function onlineDpoStage(o: OnlineDpoStageOptions): Promise<OnlineDpoStageResult> {
  const trainer = new OnlineDpoTrainer({
    model: o.base,
    reference: o.base,
    reward: o.reward,
    tokenizer: o.tok,
    prompts: o.train,
    config: o.config,
  });
  const c = trainer.config;
  const evalOpts = {
    samples: o.evalSamples,
    seed: o.evalSeed,
    maxNewTokens: c.maxNewTokens,
    temperature: c.temperature,
    query: (p: string) => trainer.queryFor(trainer.encodePrompt(p)),
  };
  const before = await evaluatePolicy(o.base, o.base, o.tok, o.heldOut, o.gold, evalOpts);
  const t0 = performance.now();
  const every = o.evalEvery ?? 0;
  let evalSecs = 0;
  for (let i = 0; i < o.iterations; i++) {
    o.onIteration?.((await trainer.iteration()).metrics);
    if (every > 0 && (i + 1) % every === 0 && i + 1 < o.iterations) {
      const e0 = performance.now();
      const samples = Math.max(4, Math.round(o.evalSamples / 4));
      const mid = await evaluatePolicy(trainer.policy, o.base, o.tok, o.heldOut, o.gold, { ...evalOpts, samples });
      const sb = stats(before.scores);
      const g = stats(mid.scores).mean;
      o.onEval?.({ iteration: i + 1, gold: g, riseInBaseStd: (g - sb.mean) / sb.std, kl: stats(mid.kl).mean });
      evalSecs += (performance.now() - e0) / 1000;
    }
  }
  const secs = (performance.now() - t0) / 1000 - evalSecs;
  const after = await evaluatePolicy(trainer.policy, o.base, o.tok, o.heldOut, o.gold, evalOpts);
  const sb = stats(before.scores);
  const sa = stats(after.scores);
  return {
    trainer,
    before: sb,
    after: sa,
    riseInBaseStd: (sa.mean - sb.mean) / sb.std,
    heldOutKl: stats(after.kl),
    secondsPerIteration: secs / Math.max(1, o.iterations),
    examplesBefore: before.examples,
    examplesAfter: after.examples,
  };
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      pairs: { type: 'string', default: '300' },
      noise: { type: 'string', default: '0.1' },
      labeller: { type: 'string', default: 'sentiment' },
      iterations: { type: 'string', default: '100' },
      model: { type: 'string', default: 'public/models/tiny-gpt' },
      prompts: { type: 'string', default: 'static/prompts/reviews.json' },
      seed: { type: 'string', default: '0' },
      config: { type: 'string', default: '{}' },
      'eval-samples': { type: 'string', default: '16' },
      'eval-seed': { type: 'string', default: '7' },
      /** Held-out gold and KL every K iterations too (a quarter of the samples), to <out>/eval.jsonl. */
      'eval-every': { type: 'string', default: '0' },
      out: { type: 'string', default: 'runs/online-dpo' },
      backend: { type: 'string', default: 'wasm' },
    },
    strict: true,
  });
  const num = (k: keyof typeof a): number => {
    const v = Number(a[k]);
    if (!Number.isFinite(v)) throw new Error(`--${k} must be a number, got ${String(a[k])}`);
    return v;
  };
  const OUT = resolve(a.out!);
  mkdirSync(OUT, { recursive: true });
  await setBackend(a.backend!);
  const { model: base, tok, source } = loadModel(a.model!);
  const { train, heldOut } = splitPrompts(readPrompts(a.prompts!));
  const seed = num('seed');
  const labellerConfig = validateLabellerConfig({
    ...defaultLabellerConfig(a.labeller as LabellerKind),
    noise: num('noise'),
  });
  const gold = labellerFromConfig({ ...labellerConfig, noise: 0 });
  const config: Partial<OnlineDpoConfig> = { seed, ...JSON.parse(a.config!) };
  console.log(
    `model ${source}, backend ${tf.getBackend()}; ${train.length} train / ${heldOut.length} held-out prompts`,
  );

  // 1–2. Labels and the reward model, as pipeline.ts makes them (full mode, mean pooling, lr 1e-4, wd 0.1).
  const maxNewTokens = 24;
  const s = await samplePairs(base, tok, train, num('pairs'), {
    labeller: labellerConfig,
    maxNewTokens,
    temperature: 1,
    seed,
  });
  const pairs = s.candidates.map(toPair) as TrainingPair[];
  writeFileSync(join(OUT, 'pairs.jsonl'), pairs.map((p) => JSON.stringify(p)).join('\n') + '\n');
  const encode: RewardEncoder = (p, r) => rewardInputIds(tok, p, r);
  const rm = RewardModel.fromPolicy(base, { mode: 'full', seed, pooling: 'mean' });
  const t0 = performance.now();
  const res = await trainRewardModel(rm, pairs, {
    encode,
    seed,
    learningRate: 1e-4,
    weightDecay: 0.1,
    normaliseOn: s.candidates.slice(0, 128).map((c) => encode(c.prompt, c.a)),
  });
  const test = await samplePairs(base, tok, heldOut, 200, {
    labeller: labellerConfig,
    maxNewTokens,
    temperature: 1,
    seed: seed + 999,
    keep: (c) => c.clean !== 'tie',
  });
  const ev = await evaluatePairs(
    rm,
    test.candidates.map((c) => ({ prompt: c.prompt, chosen: c.a, rejected: c.b })),
    encode,
  );
  const rmAccuracy =
    test.candidates.filter((c, i) => ev.chosen_rewards[i] > ev.rejected_rewards[i] === (c.clean === 'A')).length /
    test.candidates.length;
  console.log(
    `reward model: ${pairs.length} pairs, best epoch ${res.bestEpoch}, ${((performance.now() - t0) / 1000).toFixed(0)} s, held-out accuracy ${(100 * rmAccuracy).toFixed(1)}%`,
  );

  // 3. Online DPO against the reward model.
  const logFile = join(OUT, 'log.jsonl');
  writeFileSync(logFile, '');
  writeFileSync(join(OUT, 'eval.jsonl'), '');
  const r = await onlineDpoStage({
    base,
    tok,
    reward: rewardSource(rm, tok.eotId),
    train,
    heldOut,
    gold: (text, prompt) => gold.score(text, prompt),
    config,
    iterations: num('iterations'),
    evalSamples: num('eval-samples'),
    evalSeed: num('eval-seed'),
    evalEvery: num('eval-every'),
    onEval: (row) => {
      appendFileSync(join(OUT, 'eval.jsonl'), JSON.stringify(row) + '\n');
      console.log(
        `   eval @${row.iteration}: gold ${row.gold.toFixed(3)} = rise ${row.riseInBaseStd.toFixed(2)} base std, KL ${row.kl.toFixed(2)}`,
      );
    },
    onIteration: (m) => {
      appendFileSync(logFile, JSON.stringify(m) + '\n');
      console.log(
        `it ${String(m.iteration + 1).padStart(3)} score ${m['objective/scores'].toFixed(2).padStart(6)} margin ${m['objective/scores_margin'].toFixed(2)} kl ${m['objective/kl'].toFixed(2).padStart(6)} acc ${m['rewards/accuracies'].toFixed(2)} loss ${m.loss.toFixed(3)} eos ${m['val/contain_eos_token'].toFixed(2)} | ${m['time/iteration_s'].toFixed(2)} s/it`,
      );
    },
  });
  for (const e of r.examplesBefore) console.log(`  base:   ${JSON.stringify(e)}`);
  for (const e of r.examplesAfter) console.log(`  policy: ${JSON.stringify(e)}`);
  console.log(
    `online DPO ${JSON.stringify(r.trainer.config)}: gold ${r.before.mean.toFixed(3)} → ${r.after.mean.toFixed(3)} = rise ${r.riseInBaseStd.toFixed(2)} base std; KL ${r.heldOutKl.mean.toFixed(2)} nats/seq; ${r.secondsPerIteration.toFixed(2)} s/it`,
  );
  writeFileSync(
    join(OUT, 'summary.json'),
    JSON.stringify(
      {
        algo: 'online-dpo',
        pairs: pairs.length,
        noise: num('noise'),
        labeller: labellerConfig,
        rm: { mode: 'full', pooling: 'mean', heldOutAccuracy: rmAccuracy, bestEpoch: res.bestEpoch },
        onlineDpo: r.trainer.config,
        iterations: num('iterations'),
        secondsPerIteration: r.secondsPerIteration,
        backend: tf.getBackend(),
        before: { gold: r.before },
        after: { gold: r.after },
        riseInBaseStd: r.riseInBaseStd,
        heldOutKl: r.heldOutKl,
        examplesBefore: r.examplesBefore,
        examplesAfter: r.examplesAfter,
      },
      null,
      2,
    ) + '\n',
  );
  r.trainer.dispose();
  rm.dispose();
  base.dispose();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href)
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
