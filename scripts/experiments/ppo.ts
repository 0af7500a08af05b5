/**
 * PPO with a scripted labeller as the reward function (reward-function mode), in Node on the
 * TF.js wasm backend (one thread): the issue-6 bar for the bundled model.
 *
 *   npx tsx scripts/experiments/ppo.ts --iterations 100 --reward sentiment
 *   options: --model public/models/tiny-gpt --prompts static/prompts/reviews.json
 *            --config '{"lr":1e-4,"klCoef":0.05}' --eval-samples 16 --eval-seed 7
 *            --out runs/ppo --backend wasm [--checkpoint runs/tiny-gpt/checkpoint.safetensors]
 *
 * Prompts: every 4th prompt of the set (indices 3, 7, …) is held out; PPO trains on the rest.
 * Reward: the labeller's noise-free `score(text, prompt)` (sentiment: AFINN total of the
 * response), used directly. Per iteration it prints the score, KL and seconds; at the end the
 * labeller's mean score of samples on the held-out prompts before (base model) vs after
 * (policy), in units of the base model's score std, and the KL of the policy to the base on
 * those samples. Bar: rise ≥ 1 std with KL ≤ 6 nats per sequence and val/ratio near 1.
 *
 * Writes `<out>/log.jsonl` (one line of TRL-named metrics per iteration, with the rollout
 * statistics of the run-health alarms) and
 * `<out>/summary.json`.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// Registers every gradient (tsx cannot resolve '@tensorflow/tfjs-core/dist/register_all_gradients').
import '@tensorflow/tfjs';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  defaultLabellerConfig,
  labellerFromConfig,
  LABELLER_KINDS,
  type LabellerKind,
} from '../../src/lib/rlhf/labellers';
import { PpoTrainer, rewardFromFunction } from '../../src/lib/rlhf/ppo';
import { favouredWords, rolloutStats } from '../../src/lib/rlhf/alarms';
import { validatePpoConfig } from '../../src/lib/rlhf/ppo-config';
import {
  evaluatePolicy,
  loadModel,
  readPrompts,
  setBackend,
  splitPrompts,
  stats,
  type PolicyEvalOptions,
} from './pipeline-common';

const { values: a } = parseArgs({
  options: {
    iterations: { type: 'string', default: '100' },
    reward: { type: 'string', default: 'sentiment' },
    model: { type: 'string', default: 'public/models/tiny-gpt' },
    /** Weights from a pretraining checkpoint (scripts/pretrain.ts) instead of <model>/model.safetensors. */
    checkpoint: { type: 'string' },
    prompts: { type: 'string', default: 'static/prompts/reviews.json' },
    config: { type: 'string', default: '{}' },
    'eval-samples': { type: 'string', default: '16' },
    'eval-seed': { type: 'string', default: '7' },
    out: { type: 'string', default: 'runs/ppo' },
    backend: { type: 'string', default: 'wasm' },
  },
  strict: true,
});

const ITERATIONS = Number(a.iterations);
const EVAL_SAMPLES = Number(a['eval-samples']);
const EVAL_SEED = Number(a['eval-seed']);
const OUT = resolve(a.out!);

async function main(): Promise<void> {
  await setBackend(a.backend!);
  const { model: base, tok, config, source } = loadModel(a.model!, { checkpoint: a.checkpoint });
  console.log(`weights from ${source}`);
  const { train, heldOut } = splitPrompts(readPrompts(a.prompts!));

  if (!(LABELLER_KINDS as readonly string[]).includes(a.reward!))
    throw new Error(`--reward must be one of ${LABELLER_KINDS.join(', ')}`);
  const labeller = labellerFromConfig(defaultLabellerConfig(a.reward as LabellerKind));
  const score = (text: string, prompt: string) => labeller.score(text, prompt);
  const ppoConfig = validatePpoConfig(JSON.parse(a.config!));

  const trainer = new PpoTrainer({
    model: base,
    reference: base,
    reward: rewardFromFunction(score),
    tokenizer: tok,
    prompts: train,
    config: ppoConfig,
  });
  mkdirSync(OUT, { recursive: true });
  const logFile = join(OUT, 'log.jsonl');
  writeFileSync(logFile, '');
  console.log(
    `model ${JSON.stringify(config)} (${base.numParams()} params), backend ${tf.getBackend()}; ${train.length} train / ${heldOut.length} held-out prompts; reward ${JSON.stringify(labeller.config)}`,
  );
  console.log(`ppo config ${JSON.stringify(trainer.config)}`);

  let t0 = performance.now();
  const evalOpts: PolicyEvalOptions = {
    samples: EVAL_SAMPLES,
    seed: EVAL_SEED,
    maxNewTokens: trainer.config.maxNewTokens,
    temperature: trainer.config.temperature,
    query: (p) => trainer.queryFor(trainer.encodePrompt(p)),
  };
  const before = await evaluatePolicy(base, base, tok, heldOut, score, evalOpts);
  const sBefore = stats(before.scores);
  console.log(
    `base model on held-out prompts: score ${sBefore.mean.toFixed(3)} ± ${sBefore.std.toFixed(3)} (std), n = ${before.scores.length} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  for (const e of before.examples) console.log(`  base: ${JSON.stringify(e)}`);

  const started = performance.now();
  for (let i = 0; i < ITERATIONS; i++) {
    const r = await trainer.iteration();
    const m = r.metrics;
    // The rollout statistics the Train page logs for the run-health alarms (src/lib/rlhf/alarms.ts).
    const rollouts = rolloutStats(r.rollout.texts, favouredWords(labeller.config) ?? undefined);
    appendFileSync(logFile, JSON.stringify({ ...m, ...rollouts }) + '\n');
    console.log(
      `it ${String(i + 1).padStart(3)} score ${m['objective/scores'].toFixed(2).padStart(6)} kl ${m['objective/kl'].toFixed(3).padStart(6)} ` +
        `rlhf ${m['objective/rlhf_reward'].toFixed(2).padStart(6)} ratio ${m['val/ratio'].toFixed(3)} clip ${m['policy/clipfrac_avg'].toFixed(3)} ` +
        `ent ${m['policy/entropy_avg'].toFixed(2)} vloss ${m['loss/value_avg'].toFixed(3)} len ${m.response_length.toFixed(1)} eos ${m['val/num_eos_tokens']} ` +
        `β ${m.beta.toFixed(3)} | ${m['time/iteration_s'].toFixed(2)} s/it (rollout ${r.rollout.seconds.toFixed(1)}, update ${r.update.seconds.toFixed(1)})${r.update.earlyStopped ? ' (early stop)' : ''}`,
    );
    if ((i + 1) % 10 === 0) console.log(`    e.g. ${JSON.stringify(r.rollout.prompts[0] + '|' + r.rollout.texts[0])}`);
  }
  const trainSecs = (performance.now() - started) / 1000;

  t0 = performance.now();
  const after = await evaluatePolicy(trainer.policy, base, tok, heldOut, score, evalOpts);
  const sAfter = stats(after.scores);
  const kl = stats(after.kl);
  const rise = (sAfter.mean - sBefore.mean) / sBefore.std;
  const last = trainer.history.slice(-10);
  const lastKl = stats(last.map((m) => m['objective/kl'])).mean;
  const lastRatio = stats(last.map((m) => m['val/ratio'])).mean;
  console.log(
    `after ${ITERATIONS} iterations (${trainSecs.toFixed(0)} s, ${(trainSecs / ITERATIONS).toFixed(2)} s/it):`,
  );
  for (const e of after.examples) console.log(`  policy: ${JSON.stringify(e)}`);
  console.log(
    `held-out score: before ${sBefore.mean.toFixed(3)} ± ${sBefore.std.toFixed(3)}, after ${sAfter.mean.toFixed(3)} ± ${sAfter.std.toFixed(3)} → rise ${rise.toFixed(2)} base std`,
  );
  console.log(
    `KL(policy ‖ base) on held-out samples ${kl.mean.toFixed(2)} nats/seq; training objective/kl (last 10 it) ${lastKl.toFixed(2)}; val/ratio (last 10) ${lastRatio.toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  const pass = rise >= 1 && kl.mean <= 6 && Math.abs(lastRatio - 1) < 0.05;
  console.log(`bar (rise ≥ 1 std, KL ≤ 6 nats, ratio ≈ 1): ${pass ? 'PASS' : 'FAIL'}`);
  writeFileSync(
    join(OUT, 'summary.json'),
    JSON.stringify(
      {
        iterations: ITERATIONS,
        secondsPerIteration: trainSecs / ITERATIONS,
        backend: tf.getBackend(),
        reward: labeller.config,
        config: trainer.config,
        heldOutPrompts: heldOut,
        evalSamplesPerPrompt: EVAL_SAMPLES,
        before: sBefore,
        after: sAfter,
        riseInBaseStd: rise,
        heldOutKl: kl,
        trainKlLast10: lastKl,
        ratioLast10: lastRatio,
        pass,
        examplesBefore: before.examples,
        examplesAfter: after.examples,
      },
      null,
      2,
    ) + '\n',
  );
  trainer.dispose();
  base.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
