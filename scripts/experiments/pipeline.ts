/**
 * The whole RLHF pipeline in Node on the TF.js wasm backend (one thread), as the app runs it:
 * a scripted labeller labels pairs of the base model's samples (with label noise), a reward
 * model learns them (Bradley–Terry), and PPO optimises the policy against that reward model
 * (Ouyang et al. 2022, "Training language models to follow instructions with human feedback";
 * Stiennon et al. 2020). The issue-6 bar: the labeller's own noise-free score of the policy's
 * samples rises by ≥ 1 std of the base model's score distribution, with KL ≤ 6 nats per
 * sequence and val/ratio near 1.
 *
 *   npx tsx scripts/experiments/pipeline.ts --pairs 300 --noise 0.1 --iterations 100
 *   options: --model public/models/tiny-gpt --prompts static/prompts/reviews.json
 *            --rm-mode full --rm-pooling mean --rm-lr 1e-4 --rm-weight-decay 0.1
 *            --config '{"klCoef":0.5}' --eval-samples 16 --eval-every 10 --out runs/pipeline
 *
 * Prompts: every 4th prompt is held out (never labelled, never trained on); pairs are sampled on
 * the rest. The gold score is the labeller's noise-free `score`; the proxy is the reward model's
 * normalised score. With `--eval-every K` the gold and proxy scores and KL of the held-out samples
 * are also logged every K iterations (`<out>/eval.jsonl`), which is the over-optimisation plot of
 * Gao, Schulman & Hilton 2022 ("Scaling laws for reward model overoptimization"): score vs √KL.
 *
 * The over-optimisation preset (static/scenarios/over-optimisation.json) is this run, seeds 0–4:
 *   npx tsx scripts/experiments/pipeline.ts --pairs 20 --noise 0.1 --labeller-config '{"scoring":"distinct"}' \
 *     --rm-mode head --rm-early-stopping --config '{"klCoef":0,"lr":5e-4}' --iterations 50 --eval-every 2 \
 *     --eval-samples 16 --seed S
 * (--rm-early-stopping: the proxy keeps the epoch that scored its 4 held-out pairs best; fitted to the end it
 * is a better proxy and the gold peak shows in fewer seeds.) With the bundled model the gold peak shows in
 * seeds 0, 1, 3 and 4; seed 2's gold rises 0.13 → 0.39 by iteration 4 and falls to 0.04, but its smoothed
 * rise is under the ¼-std rule (`goldPeak`).
 *
 * Writes `<out>/pairs.jsonl` (the labelled pairs, TRL explicit-prompt format, so DPO can train on
 * exactly the same data), `<out>/log.jsonl` (PPO metrics per iteration), `<out>/summary.json`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { TrainingPair } from '../../src/lib/data/records';
import {
  defaultLabellerConfig,
  labellerFromConfig,
  validateLabellerConfig,
  type LabellerKind,
} from '../../src/lib/rlhf/labellers';
import { goldPeak, type OveroptRow as EvalRow } from '../../src/lib/rlhf/overopt';
import { PpoTrainer } from '../../src/lib/rlhf/ppo';
import { validatePpoConfig } from '../../src/lib/rlhf/ppo-config';
import {
  RewardModel,
  rewardInputIds,
  rewardSource,
  type RewardMode,
  type RewardPooling,
} from '../../src/lib/rlhf/reward-model';
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
  type PolicyEvalOptions,
} from './pipeline-common';

const { values: a } = parseArgs({
  options: {
    pairs: { type: 'string', default: '300' },
    noise: { type: 'string', default: '0.1' },
    labeller: { type: 'string', default: 'sentiment' },
    /** JSON merged over the labeller's defaults, e.g. '{"scoring":"comparative"}'. */
    'labeller-config': { type: 'string', default: '{}' },
    iterations: { type: 'string', default: '100' },
    model: { type: 'string', default: 'public/models/tiny-gpt' },
    /** A pretraining checkpoint (scripts/pretrain.ts) instead of --model's weights (its config and tokenizer stay). */
    checkpoint: { type: 'string' },
    prompts: { type: 'string', default: 'static/prompts/reviews.json' },
    seed: { type: 'string', default: '0' },
    'rm-mode': { type: 'string', default: 'full' },
    'rm-pooling': { type: 'string', default: 'mean' },
    /** Default: full mode 1e-4, head mode the trainer's default. */
    'rm-lr': { type: 'string' },
    /** Default: full mode 0.1, head mode the trainer's default. */
    'rm-weight-decay': { type: 'string' },
    'rm-epochs': { type: 'string' },
    /** Head mode too: stop on the held-out split and keep the best epoch (the over-optimisation preset). */
    'rm-early-stopping': { type: 'boolean', default: false },
    config: { type: 'string', default: '{}' },
    'eval-samples': { type: 'string', default: '16' },
    'eval-seed': { type: 'string', default: '7' },
    'eval-every': { type: 'string', default: '0' },
    out: { type: 'string', default: 'runs/pipeline' },
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
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

async function main(): Promise<void> {
  await setBackend(a.backend!);
  const { model: base, tok, config, source } = loadModel(a.model!, { checkpoint: a.checkpoint });
  const { train, heldOut } = splitPrompts(readPrompts(a.prompts!));
  const seed = num('seed');
  const labellerConfig = validateLabellerConfig({
    ...defaultLabellerConfig(a.labeller as LabellerKind),
    ...JSON.parse(a['labeller-config']!),
    noise: num('noise'),
  });
  const gold = labellerFromConfig({ ...labellerConfig, noise: 0 });
  const goldScore = (text: string, prompt: string) => gold.score(text, prompt);
  mkdirSync(OUT, { recursive: true });
  console.log(
    `model ${source} (${base.numParams()} params, ${JSON.stringify(config)}), backend ${tf.getBackend()}; ${train.length} train / ${heldOut.length} held-out prompts; labeller ${JSON.stringify(labellerConfig)}`,
  );

  // 1. Labels: pairs of base-model samples on the training prompts, labelled with noise.
  const ppoConfig = validatePpoConfig({ seed, ...JSON.parse(a.config!) });
  const s = await samplePairs(base, tok, train, num('pairs'), {
    labeller: labellerConfig,
    maxNewTokens: ppoConfig.maxNewTokens,
    temperature: 1,
    seed,
  });
  const pairs = s.candidates.map(toPair) as TrainingPair[];
  const wrong = s.candidates.filter((c) => c.clean !== 'tie' && c.choice !== c.clean).length;
  writeFileSync(join(OUT, 'pairs.jsonl'), pairs.map((p) => JSON.stringify(p)).join('\n') + '\n');
  console.log(
    `1. labels: ${pairs.length} pairs (${s.ties} ties dropped, ${wrong} flipped by noise) from ${s.samples} samples in ${s.seconds.toFixed(1)} s`,
  );

  // 2. Reward model on those pairs; held-out test pairs on the held-out prompts, noise-free labels.
  const encode: RewardEncoder = (p, r) => rewardInputIds(tok, p, r);
  const rm = RewardModel.fromPolicy(base, {
    mode: a['rm-mode'] as RewardMode,
    seed,
    pooling: a['rm-pooling'] as RewardPooling,
  });
  const t0 = performance.now();
  const res = await trainRewardModel(rm, pairs, {
    encode,
    seed,
    ...(a['rm-lr'] !== undefined
      ? { learningRate: num('rm-lr') }
      : a['rm-mode'] === 'full'
        ? { learningRate: 1e-4 }
        : {}),
    ...(a['rm-weight-decay'] !== undefined
      ? { weightDecay: num('rm-weight-decay') }
      : a['rm-mode'] === 'full'
        ? { weightDecay: 0.1 }
        : {}),
    ...(a['rm-epochs'] !== undefined ? { epochs: num('rm-epochs') } : {}),
    ...(a['rm-early-stopping'] ? { earlyStopping: true } : {}),
    normaliseOn: s.candidates.slice(0, 128).map((c) => encode(c.prompt, c.a)),
  });
  const test = await samplePairs(base, tok, heldOut, 200, {
    labeller: labellerConfig,
    maxNewTokens: ppoConfig.maxNewTokens,
    temperature: 1,
    seed: seed + 999,
    keep: (c) => c.clean !== 'tie',
  });
  const ev = await evaluatePairs(
    rm,
    test.candidates.map((c) => ({ prompt: c.prompt, chosen: c.a, rejected: c.b })),
    encode,
  );
  let ok = 0;
  test.candidates.forEach((c, i) => {
    if (ev.chosen_rewards[i] > ev.rejected_rewards[i] === (c.clean === 'A')) ok++;
  });
  const rmAccuracy = ok / test.candidates.length;
  console.log(
    `2. reward model (${a['rm-mode']}, ${a['rm-pooling']} pooling): best epoch ${res.bestEpoch}, ${((performance.now() - t0) / 1000).toFixed(0)} s; held-out accuracy vs noise-free labels ${pct(rmAccuracy)} on ${test.candidates.length} pairs`,
  );

  // 3. PPO against the reward model.
  const trainer = new PpoTrainer({
    model: base,
    reference: base,
    reward: rewardSource(rm, tok.eotId),
    tokenizer: tok,
    prompts: train,
    config: ppoConfig,
  });
  const proxy = async (texts: string[], prompts: string[]) =>
    rm.scoreNormalised(texts.map((t, i) => encode(prompts[i], t)));
  const evalOpts: PolicyEvalOptions = {
    samples: num('eval-samples'),
    seed: num('eval-seed'),
    maxNewTokens: trainer.config.maxNewTokens,
    temperature: trainer.config.temperature,
    query: (p) => trainer.queryFor(trainer.encodePrompt(p)),
  };
  const evalRows: EvalRow[] = [];
  const evalLog = join(OUT, 'eval.jsonl');
  writeFileSync(evalLog, '');
  const evalAt = async (iteration: number, samples: number) => {
    const e = await evaluatePolicy(trainer.policy, base, tok, heldOut, goldScore, { ...evalOpts, samples });
    const flatPrompts = heldOut.flatMap((p) => Array.from({ length: samples }, () => p));
    const px = await proxy(e.texts, flatPrompts);
    const row = {
      iteration,
      gold: stats(e.scores).mean,
      proxy: stats(px).mean,
      kl: stats(e.kl).mean,
      sqrtKl: Math.sqrt(Math.max(0, stats(e.kl).mean)),
    };
    appendFileSync(evalLog, JSON.stringify(row) + '\n');
    evalRows.push(row);
    return { e, row };
  };
  const before = await evalAt(0, evalOpts.samples);
  const sBefore = stats(before.e.scores);
  console.log(
    `3. PPO ${JSON.stringify(trainer.config)}\n   base on held-out prompts: gold ${sBefore.mean.toFixed(3)} ± ${sBefore.std.toFixed(3)} (std), proxy ${before.row.proxy.toFixed(3)}, n = ${before.e.scores.length}`,
  );
  const logFile = join(OUT, 'log.jsonl');
  writeFileSync(logFile, '');
  const every = num('eval-every');
  const started = performance.now();
  const N = num('iterations');
  for (let i = 0; i < N; i++) {
    const r = await trainer.iteration();
    const m = r.metrics;
    appendFileSync(logFile, JSON.stringify(m) + '\n');
    console.log(
      `it ${String(i + 1).padStart(3)} score ${m['objective/scores'].toFixed(2).padStart(6)} kl ${m['objective/kl'].toFixed(3).padStart(6)} ratio ${m['val/ratio'].toFixed(3)} clip ${m['policy/clipfrac_avg'].toFixed(3)} ent ${m['policy/entropy_avg'].toFixed(2)} β ${m.beta.toFixed(3)} | ${m['time/iteration_s'].toFixed(2)} s/it`,
    );
    if (every > 0 && (i + 1) % every === 0 && i + 1 < N) {
      const { row } = await evalAt(i + 1, Math.max(4, Math.round(evalOpts.samples / 4)));
      console.log(
        `   eval @${i + 1}: gold ${row.gold.toFixed(3)} proxy ${row.proxy.toFixed(3)} KL ${row.kl.toFixed(2)} (√KL ${row.sqrtKl.toFixed(2)})`,
      );
    }
  }
  const trainSecs = (performance.now() - started) / 1000;
  const after = await evalAt(N, evalOpts.samples);
  const sAfter = stats(after.e.scores);
  const kl = stats(after.e.kl);
  const rise = (sAfter.mean - sBefore.mean) / sBefore.std;
  const last = trainer.history.slice(-10);
  const lastRatio = stats(last.map((m) => m['val/ratio'])).mean;
  for (const e of before.e.examples) console.log(`  base:   ${JSON.stringify(e)}`);
  for (const e of after.e.examples) console.log(`  policy: ${JSON.stringify(e)}`);
  console.log(
    `after ${N} iterations (${trainSecs.toFixed(0)} s, ${(trainSecs / N).toFixed(2)} s/it): gold ${sBefore.mean.toFixed(3)} → ${sAfter.mean.toFixed(3)} = rise ${rise.toFixed(2)} base std; proxy ${before.row.proxy.toFixed(3)} → ${after.row.proxy.toFixed(3)}; KL(policy ‖ base) ${kl.mean.toFixed(2)} nats/seq; val/ratio (last 10) ${lastRatio.toFixed(4)}`,
  );
  const peak = goldPeak(evalRows, sBefore.std);
  if (every > 0)
    console.log(
      `over-optimisation: smoothed gold peaks at iteration ${peak.peakIteration} (${peak.peakGold.toFixed(2)}, proxy ${peak.peakProxy.toFixed(2)}), ends at ${peak.endGold.toFixed(2)} (proxy ${peak.endProxy.toFixed(2)}): ${peak.shown ? 'gold turned down while proxy kept rising' : 'no gold peak'}`,
    );
  const pass = rise >= 1 && kl.mean <= 6 && Math.abs(lastRatio - 1) < 0.05;
  console.log(`bar (gold rise ≥ 1 std, KL ≤ 6 nats, ratio ≈ 1): ${pass ? 'PASS' : 'FAIL'}`);
  writeFileSync(
    join(OUT, 'summary.json'),
    JSON.stringify(
      {
        pairs: pairs.length,
        noise: num('noise'),
        labeller: labellerConfig,
        rm: { mode: a['rm-mode'], pooling: a['rm-pooling'], heldOutAccuracy: rmAccuracy, bestEpoch: res.bestEpoch },
        ppo: trainer.config,
        iterations: N,
        secondsPerIteration: trainSecs / N,
        backend: tf.getBackend(),
        heldOutPrompts: heldOut,
        before: { gold: sBefore, proxy: before.row.proxy },
        after: { gold: sAfter, proxy: after.row.proxy },
        riseInBaseStd: rise,
        heldOutKl: kl,
        ratioLast10: lastRatio,
        pass,
        overoptimisation: every > 0 ? peak : null,
        examplesBefore: before.e.examples,
        examplesAfter: after.e.examples,
      },
      null,
      2,
    ) + '\n',
  );
  trainer.dispose();
  rm.dispose();
  base.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
