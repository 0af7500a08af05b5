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
 * Other RL algorithms on the same labels and reward model (`--algo`, the table in pipeline-algos.ts;
 * each is the app's own trainer): `--algo grpo`, `--algo rloo`, `--algo online-dpo` (TRL
 * OnlineDPOTrainer: two samples per prompt judged by the same reward model), or several in one process, one after
 * the other from the same base model against the same reward model, e.g. `--algo ppo,grpo,rloo`
 * (`<out>/<algo>/` each). `--seconds S` caps each run's training wall-clock; `--seconds ppo` gives
 * every other algorithm the training time PPO took in this process (no iteration limit then), the
 * fair comparison on a shared machine. Per-algorithm settings: `--config '{"grpo":{"beta":0.1}}'`.
 * The issue-16 measurement (GRPO and RLOO against PPO's 100 iterations, seeds 0, 1, 2):
 *   npx tsx scripts/experiments/pipeline.ts --algo ppo,grpo,rloo --seconds ppo --seed S --out runs/algos-S
 * RLOO alone, 100 iterations with its defaults (`--algo rloo --iterations 100 --seed S`): gold
 * +1.58 / +1.35 / +1.31 base std at KL 3.84 / 2.30 / 2.77 nats (seeds 0 / 1 / 2; 433–477 s of
 * training for seeds 1–2 at load 8–15 on 2 cores).
 * GRPO against PPO's wall-clock (2026-12-03, `--algo ppo,grpo --seconds ppo`, wasm, shared 2-core
 * machine at load 8–21): seed 0: PPO 100 iterations in 2039 s, gold +1.79 base std at KL 4.11 nats
 * (PASS); GRPO with its defaults in the same 2041 s runs 823 iterations (2.48 s/it) to gold +2.55
 * std at KL 56.9 nats (FAIL): the policy writes "… It was the best part was the best part was the"
 * to the length limit. GRPO passes the bar early and then leaves it: 100 iterations (274 s, 13 % of
 * PPO's time) give +1.25 std at 2.7 nats (`--algo grpo,rloo --iterations 100`, grpo-config.ts's
 * header); its training KL (k3 per token × mean length, 10-iteration mean) passes 6 nats at
 * iteration 152 (470 s) and keeps rising (9 nats at 300, 13 at 400, 34 at 500, 82 at 800) while
 * the proxy reward rises (1.28 → 2.02), the completions run to the limit (13.8 → 22.8 tokens, 90 %
 * truncated) and the entropy falls 1.0 → 0.41. Why: β = 0.04 (TRL's default) is a fixed, weak
 * leash where PPO's adaptive KL controller (target 4 nats) tightens as KL grows, and a GRPO
 * iteration is one gradient step against PPO's 8, so the same seconds buy ~8× the updates; nothing
 * in the defaults stops a long run. Seed 1 at 100 iterations (`--algo grpo --seed 1`, rerun): +1.30
 * std at 2.89 nats, as before. Seed 1 for PPO's seconds (`--algo grpo --iterations 100000
 * --seconds 2039 --eval-every 50 --seed 1`, seed 0's PPO time: the PPO + GRPO run of seed 1 was
 * stopped to free a slot; the load fell to 3–4 meanwhile, so 0.5–1.7 s/it, more iterations than
 * PPO's load would allow); held-out gold (std) / KL (nats) every 50 iterations on 32 samples:
 * 50: +0.52 / 0.57, 100: +1.13 / 2.22, 150: +1.63 / 5.52 (inside the bar), 200: +2.31 / 11.2,
 * 400: +2.97 / 25.9, 800: +3.31 / 65.3, 1250: +3.39 / 73.0; at the end 1539 iterations
 * (1.32 s/it), +3.41 std at 81.7 nats (FAIL; 128 samples). Seed 2 was not run (time). So with its
 * defaults GRPO reaches the bar within PPO's time on seeds 0 and 1 (at 100–150 iterations, ≤ 15 %
 * of it) but does not stay in it: run for PPO's whole time it ends at 57 and 82 nats.
 * A probe, not a defaults change (that needs all 3 seeds): seed 0 with β 0.3 (`--config
 * '{"beta":0.3}'`, otherwise seed 1's command) holds the KL; every 50 iterations +0.53 / 0.29,
 * 150: +0.87 / 0.96, 300: +1.24 / 1.48, 650: +1.20 / 2.26, 1050: +1.30 / 1.99 (between +0.73 and
 * +1.39 from iteration 250 on, KL ≤ 2.5); at the end 2103 iterations (0.97 s/it), +1.33 std at
 * 2.63 nats (PASS; 128 samples).
 *
 * `--reward-fn FILE.js[=WEIGHT]` (repeatable): a reward function in JavaScript with TRL's shape,
 * `function reward(prompts, completions) { return completions.map(…) }`, as the app's (checked and
 * tried on two completions before anything trains; a bad file is refused naming the file and line),
 * added with its weight to the reward model's normalised score (`--rm-weight`, default 1;
 * `--rm-weight 0`: the functions alone, and no labels or reward model are made).
 *
 * Writes `<out>/pairs.jsonl` (the labelled pairs, TRL explicit-prompt format, so DPO can train on
 * exactly the same data), `<out>/log.jsonl` (the algorithm's metrics per iteration, with
 * `wall_s`, training seconds so far), `<out>/summary.json` (algorithm, settings, gold and proxy
 * before and after, KL, training wall-clock, every iteration's metrics).
 */

import * as tf from '@tensorflow/tfjs-core';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TrainingPair } from '../../src/lib/data/records';
import { functionRewardSource, RewardFunctionRunner } from '../../src/lib/engine/reward-fn-runner';
import {
  defaultLabellerConfig,
  labellerFromConfig,
  validateLabellerConfig,
  type LabellerKind,
} from '../../src/lib/rlhf/labellers';
import { goldPeak, type OveroptRow as EvalRow } from '../../src/lib/rlhf/overopt';
import type { RewardSource } from '../../src/lib/rlhf/ppo';
import { meanStd, type RewardFunctionSpec } from '../../src/lib/rlhf/reward-functions';
import {
  RewardModel,
  rewardInputIds,
  rewardSource,
  type RewardMode,
  type RewardPooling,
} from '../../src/lib/rlhf/reward-model';
import { evaluatePairs, trainRewardModel, type RewardEncoder } from '../../src/lib/rlhf/reward-train';
import {
  configFor,
  loadRewardFnFile,
  parsePipelineArgs,
  PIPELINE_ALGOS,
  PipelineArgsError,
  RewardFnFileError,
  type PipelineAlgo,
  type PipelineAlgoName,
  type PipelineArgs,
} from './pipeline-algos';
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

let a: PipelineArgs;
let OUT: string;
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** The reward model's normalised score (weight `rmWeight`) plus each function times its weight. */
function combinedReward(rm: RewardSource | null, rmWeight: number, fns: RewardFunctionSpec[]): RewardSource {
  if (!fns.length) return rm!;
  const f = functionRewardSource(fns, new RewardFunctionRunner());
  if (!rm || rmWeight === 0) return f;
  let last: { name: string; scores: number[] }[] | null = null;
  return {
    async score(batch) {
      const [r, s] = await Promise.all([rm.score(batch), f.score(batch)]);
      last = [{ name: 'reward_model', scores: r }, ...(f.lastParts() ?? [])];
      return r.map((x, i) => rmWeight * x + s[i]);
    },
    lastParts: () => last,
  };
}

async function main(): Promise<void> {
  a = parsePipelineArgs(process.argv.slice(2));
  OUT = resolve(a.out);
  // Reward-function files first: a bad one is refused before minutes of sampling.
  const fns: RewardFunctionSpec[] = [];
  for (const [i, arg] of a.rewardFns.entries()) fns.push(await loadRewardFnFile(arg, i));
  if (a.algos.length > 1 && Object.keys(a.config).length && !a.algos.some((n) => n in a.config))
    throw new Error(`--config with several algorithms: key it by algorithm, e.g. '{"${a.algos[0]}":{...}}'`);
  const configs = new Map(
    a.algos.map((n) => [n, PIPELINE_ALGOS[n].validate({ seed: a.seed, ...configFor(a.config, n) })] as const),
  );
  const labelSampling = PIPELINE_ALGOS[a.algos[0]].sampling(configs.get(a.algos[0])!);

  await setBackend(a.backend);
  const { model: base, tok, config, source } = loadModel(a.model, { checkpoint: a.checkpoint });
  const { train, heldOut } = splitPrompts(readPrompts(a.prompts));
  const seed = a.seed;
  const labellerConfig = validateLabellerConfig({
    ...defaultLabellerConfig(a.labeller as LabellerKind),
    ...a.labellerConfig,
    noise: a.noise,
  });
  const gold = labellerFromConfig({ ...labellerConfig, noise: 0 });
  const goldScore = (text: string, prompt: string) => gold.score(text, prompt);
  mkdirSync(OUT, { recursive: true });
  console.log(
    `model ${source} (${base.numParams()} params, ${JSON.stringify(config)}), backend ${tf.getBackend()}; ${train.length} train / ${heldOut.length} held-out prompts; labeller ${JSON.stringify(labellerConfig)}; algorithms ${a.algos.join(', ')}${fns.length ? `; reward functions ${fns.map((s) => `${s.name}×${s.weight}`).join(', ')}` : ''}`,
  );

  // 1–2. Labels and the reward model (skipped when the reward is the functions alone).
  let rm: RewardModel | null = null;
  let rmSummary: Record<string, unknown> | null = null;
  let pairCount = 0;
  const encode: RewardEncoder = (p, r) => rewardInputIds(tok, p, r);
  if (a.rmWeight !== 0) {
    // 1. Labels: pairs of base-model samples on the training prompts, labelled with noise.
    const s = await samplePairs(base, tok, train, a.pairs, {
      labeller: labellerConfig,
      maxNewTokens: labelSampling.maxNewTokens,
      temperature: 1,
      seed,
    });
    const pairs = s.candidates.map(toPair) as TrainingPair[];
    pairCount = pairs.length;
    const wrong = s.candidates.filter((c) => c.clean !== 'tie' && c.choice !== c.clean).length;
    writeFileSync(join(OUT, 'pairs.jsonl'), pairs.map((p) => JSON.stringify(p)).join('\n') + '\n');
    console.log(
      `1. labels: ${pairs.length} pairs (${s.ties} ties dropped, ${wrong} flipped by noise) from ${s.samples} samples in ${s.seconds.toFixed(1)} s`,
    );

    // 2. Reward model on those pairs; held-out test pairs on the held-out prompts, noise-free labels.
    rm = RewardModel.fromPolicy(base, {
      mode: a.rmMode as RewardMode,
      seed,
      pooling: a.rmPooling as RewardPooling,
    });
    const t0 = performance.now();
    const full = a.rmMode === 'full';
    const res = await trainRewardModel(rm, pairs, {
      encode,
      seed,
      ...(a.rmLr !== undefined ? { learningRate: a.rmLr } : full ? { learningRate: 1e-4 } : {}),
      ...(a.rmWeightDecay !== undefined ? { weightDecay: a.rmWeightDecay } : full ? { weightDecay: 0.1 } : {}),
      ...(a.rmEpochs !== undefined ? { epochs: a.rmEpochs } : {}),
      ...(a.rmEarlyStopping ? { earlyStopping: true } : {}),
      normaliseOn: s.candidates.slice(0, 128).map((c) => encode(c.prompt, c.a)),
    });
    const test = await samplePairs(base, tok, heldOut, 200, {
      labeller: labellerConfig,
      maxNewTokens: labelSampling.maxNewTokens,
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
    rmSummary = {
      mode: a.rmMode,
      pooling: a.rmPooling,
      heldOutAccuracy: rmAccuracy,
      bestEpoch: res.bestEpoch,
      weight: a.rmWeight,
    };
    console.log(
      `2. reward model (${a.rmMode}, ${a.rmPooling} pooling): best epoch ${res.bestEpoch}, ${((performance.now() - t0) / 1000).toFixed(0)} s; held-out accuracy vs noise-free labels ${pct(rmAccuracy)} on ${test.candidates.length} pairs`,
    );
  }

  // 3. Each algorithm against that reward, from the same base model.
  let ppoSeconds: number | null = null;
  const results: Record<string, unknown>[] = [];
  for (const name of a.algos) {
    const out = a.algos.length > 1 ? join(OUT, name) : OUT;
    mkdirSync(out, { recursive: true });
    const limit = a.seconds === 'ppo' ? (name === 'ppo' ? null : ppoSeconds) : a.seconds;
    const r = await runAlgo(name, configs.get(name)!, out, limit, limit !== null && a.seconds === 'ppo');
    if (name === 'ppo') ppoSeconds = r.trainSeconds as number;
    results.push(r);
  }
  if (results.length > 1) {
    console.log('\nalgorithm  iterations  train s   s/it   gold rise (base std)  KL (nats)  bar');
    for (const r of results)
      console.log(
        `${String(r.algo).padEnd(9)} ${String(r.iterations).padStart(11)} ${(r.trainSeconds as number).toFixed(0).padStart(8)} ${(r.secondsPerIteration as number).toFixed(2).padStart(6)} ${(r.riseInBaseStd as number).toFixed(2).padStart(21)} ${(r.heldOutKl as { mean: number }).mean.toFixed(2).padStart(10)}  ${r.pass ? 'PASS' : 'FAIL'}`,
      );
    writeFileSync(join(OUT, 'summary.json'), JSON.stringify({ algorithms: results.map(brief) }, null, 2) + '\n');
  }
  rm?.dispose();
  base.dispose();

  async function runAlgo(
    name: PipelineAlgoName,
    algoConfig: object,
    out: string,
    limitSeconds: number | null,
    timeOnly: boolean,
  ): Promise<Record<string, unknown>> {
    const algo: PipelineAlgo = PIPELINE_ALGOS[name];
    const reward = combinedReward(rm ? rewardSource(rm, tok.eotId) : null, a.rmWeight, fns);
    const trainer = algo.create({
      model: base,
      reference: base,
      reward,
      tokenizer: tok,
      prompts: train,
      config: algoConfig,
    });
    const sampling = algo.sampling(trainer.config);
    const proxy = async (texts: string[], prompts: string[]) =>
      rm ? rm.scoreNormalised(texts.map((t, i) => encode(prompts[i], t))) : texts.map(() => NaN);
    const fnMeans = async (texts: string[], prompts: string[]): Promise<Record<string, number>> => {
      if (!fns.length) return {};
      const runner = new RewardFunctionRunner();
      const parts = await runner.run(fns, { prompts, completions: texts });
      runner.dispose();
      return Object.fromEntries(fns.map((s, k) => [s.name, meanStd(parts[k]).mean]));
    };
    const evalOpts: PolicyEvalOptions = {
      samples: a.evalSamples,
      seed: a.evalSeed,
      maxNewTokens: sampling.maxNewTokens,
      temperature: sampling.temperature,
      query: (p) => trainer.queryFor(trainer.encodePrompt(p)),
    };
    const evalRows: EvalRow[] = [];
    const evalLog = join(out, 'eval.jsonl');
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
      return { e, row, fn: await fnMeans(e.texts, flatPrompts) };
    };
    const before = await evalAt(0, evalOpts.samples);
    const sBefore = stats(before.e.scores);
    console.log(
      `3. ${algo.label} ${JSON.stringify(trainer.config)}${limitSeconds !== null ? `, for ${limitSeconds.toFixed(0)} s of training` : ''}\n   base on held-out prompts: gold ${sBefore.mean.toFixed(3)} ± ${sBefore.std.toFixed(3)} (std), proxy ${before.row.proxy.toFixed(3)}, n = ${before.e.scores.length}`,
    );
    const logFile = join(out, 'log.jsonl');
    writeFileSync(logFile, '');
    const every = a.evalEvery;
    const N = timeOnly ? Infinity : a.iterations[name];
    let trainSecs = 0;
    const walls: number[] = [];
    let i = 0;
    for (; i < N && (limitSeconds === null || trainSecs < limitSeconds); i++) {
      const t0 = performance.now();
      const r = await trainer.iteration();
      trainSecs += (performance.now() - t0) / 1000;
      walls.push(trainSecs);
      const m: Record<string, number | null> = { ...(r.metrics as Record<string, number | null>), wall_s: trainSecs };
      appendFileSync(logFile, JSON.stringify(m) + '\n');
      console.log(
        `${name} it ${String(i + 1).padStart(3)} ${algo.line(m)} | ${(m['time/iteration_s'] ?? 0).toFixed(2)} s/it, ${trainSecs.toFixed(0)} s`,
      );
      if (every > 0 && (i + 1) % every === 0 && i + 1 < N) {
        const { row } = await evalAt(i + 1, Math.max(4, Math.round(evalOpts.samples / 4)));
        console.log(
          `   eval @${i + 1}: gold ${row.gold.toFixed(3)} proxy ${row.proxy.toFixed(3)} KL ${row.kl.toFixed(2)} (√KL ${row.sqrtKl.toFixed(2)})`,
        );
      }
    }
    const iterations = i;
    const after = await evalAt(iterations, evalOpts.samples);
    const sAfter = stats(after.e.scores);
    const kl = stats(after.e.kl);
    const rise = (sAfter.mean - sBefore.mean) / sBefore.std;
    const history = trainer.history as readonly Record<string, number | null>[];
    const lastRatio = algo.ratioMetric
      ? stats(history.slice(-10).map((m) => m[algo.ratioMetric!] as number)).mean
      : null;
    for (const e of before.e.examples) console.log(`  base:   ${JSON.stringify(e)}`);
    for (const e of after.e.examples) console.log(`  policy: ${JSON.stringify(e)}`);
    console.log(
      `${algo.label} after ${iterations} iterations (${trainSecs.toFixed(0)} s, ${(trainSecs / iterations).toFixed(2)} s/it): gold ${sBefore.mean.toFixed(3)} → ${sAfter.mean.toFixed(3)} = rise ${rise.toFixed(2)} base std; proxy ${before.row.proxy.toFixed(3)} → ${after.row.proxy.toFixed(3)}; KL(policy ‖ base) ${kl.mean.toFixed(2)} nats/seq${lastRatio !== null ? `; ${algo.ratioMetric} (last 10) ${lastRatio.toFixed(4)}` : ''}`,
    );
    const peak = goldPeak(evalRows, sBefore.std);
    if (every > 0)
      console.log(
        `over-optimisation: smoothed gold peaks at iteration ${peak.peakIteration} (${peak.peakGold.toFixed(2)}, proxy ${peak.peakProxy.toFixed(2)}), ends at ${peak.endGold.toFixed(2)} (proxy ${peak.endProxy.toFixed(2)}): ${peak.shown ? 'gold turned down while proxy kept rising' : 'no gold peak'}`,
      );
    const pass = rise >= 1 && kl.mean <= 6 && (lastRatio === null || Math.abs(lastRatio - 1) < 0.05);
    console.log(
      `bar (gold rise ≥ 1 std, KL ≤ 6 nats${lastRatio !== null ? ', ratio ≈ 1' : ''}): ${pass ? 'PASS' : 'FAIL'}`,
    );
    const summary = {
      algo: name,
      pairs: pairCount,
      noise: a.noise,
      labeller: labellerConfig,
      rm: rmSummary,
      rewardFunctions: fns.map((s) => ({ name: s.name, weight: s.weight, code: s.code })),
      config: trainer.config,
      // Older readers of PPO summaries read its settings here.
      ...(name === 'ppo' ? { ppo: trainer.config } : {}),
      iterations,
      wallClockLimitSeconds: limitSeconds,
      trainSeconds: trainSecs,
      secondsPerIteration: trainSecs / iterations,
      backend: tf.getBackend(),
      heldOutPrompts: heldOut,
      before: { gold: sBefore, proxy: before.row.proxy, rewardFunctions: before.fn },
      after: { gold: sAfter, proxy: after.row.proxy, rewardFunctions: after.fn },
      riseInBaseStd: rise,
      heldOutKl: kl,
      ratioLast10: lastRatio,
      pass,
      overoptimisation: every > 0 ? peak : null,
      examplesBefore: before.e.examples,
      examplesAfter: after.e.examples,
      history: history.map((m, k) => ({ ...m, wall_s: walls[k] })),
    };
    writeFileSync(join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    trainer.dispose();
    return summary;
  }
}

function brief(r: Record<string, unknown>): Record<string, unknown> {
  const { history: _h, heldOutPrompts: _p, examplesBefore: _b, examplesAfter: _a, ...rest } = r;
  return rest;
}

main().catch((e: unknown) => {
  // A bad command line or reward-function file: its message says it all.
  console.error(e instanceof PipelineArgsError || e instanceof RewardFnFileError ? `${e.name}: ${e.message}` : e);
  process.exit(1);
});
