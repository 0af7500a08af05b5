/**
 * The instant first screen: runs a scenario's whole pipeline in Node on the TF.js wasm backend
 * (the same library code the worker runs) and writes samples of the base model next to
 * samples of the policy it trained, so the Start page can show real output before the worker
 * has loaded.
 *
 *   npx tsx scripts/make-first-screen.ts                       # first scenario of index.json
 *   npx tsx scripts/make-first-screen.ts --scenario never-say-x --out /tmp/x.json
 *   options: --iterations N (override) --ppo '{"lr":1e-4}' (merged over the scenario's)
 *            --samples 2 (per eval prompt) --eval-prompts 6 --model public/models/tiny-gpt
 *
 * Pipeline, as `src/state/scenario.svelte.ts` drives the app:
 * 1. label: `labels` pairs, two samples per prompt at the feedback studio's default sampling
 *    (temperature 0.8, top-k 40, top-p 0.95, 24 new tokens), judged by the scenario's labeller;
 * 2. reward model: `RewardModel.fromPolicy` + `trainRewardModel` with the scenario's settings
 *    over the Reward page's defaults (ties dropped, 20 % of prompts held out);
 * 3. PPO (`PpoTrainer`, reward = the reward model, normalised) for `iterations` iterations on
 *    every prompt of the set; it prints the mean reward and the labeller's (gold) score per
 *    iteration.
 * Then it samples the first `--eval-prompts` prompts from the base model and the policy (same
 * seeds) and writes `static/scenarios/first-screen.json`.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// Registers every gradient (tsx cannot resolve '@tensorflow/tfjs-core/dist/register_all_gradients').
import '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { TrainingPair } from '../src/lib/data/records';
import { validateScenario, validateScenarioIndex } from '../src/lib/data/scenarios';
import { GPT } from '../src/lib/model/gpt';
import { Rng } from '../src/lib/model/rng';
import { generate } from '../src/lib/model/sampling';
import { BpeTokenizer } from '../src/lib/model/tokenizer';
import { configFromHF, loadSafetensorsIntoModel } from '../src/lib/model/weights';
import { defaultLabellerConfig, labellerFromConfig } from '../src/lib/rlhf/labellers';
import { PpoTrainer } from '../src/lib/rlhf/ppo';
import { validatePpoConfig } from '../src/lib/rlhf/ppo-config';
import { RewardModel, rewardInputIds, rewardSource } from '../src/lib/rlhf/reward-model';
import { trainRewardModel } from '../src/lib/rlhf/reward-train';

const { values: a } = parseArgs({
  options: {
    scenario: { type: 'string' },
    iterations: { type: 'string' },
    ppo: { type: 'string', default: '{}' },
    samples: { type: 'string', default: '1' },
    'eval-prompts': { type: 'string', default: '6' },
    model: { type: 'string', default: 'public/models/tiny-gpt' },
    out: { type: 'string', default: 'static/scenarios/first-screen.json' },
  },
  strict: true,
});

/** The feedback studio's sampling (`feedback.sampling`: DEFAULT_SAMPLING with 24 new tokens). */
const LABEL_SAMPLING = { maxNewTokens: 24, temperature: 0.8, topK: 40, topP: 0.95 };
/** The Reward page's defaults (`DEFAULT_REWARD_SETTINGS` in src/state/reward.svelte.ts). */
const RM_DEFAULTS = { pooling: 'mean' as const, batchSize: 16, centerCoef: 0.01, valFraction: 0.2 };

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);

async function main(): Promise<void> {
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  setWasmPaths(fileURLToPath(new URL('../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url)));
  if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend did not initialise');
  await tf.ready();

  const dir = resolve('static/scenarios');
  const index = validateScenarioIndex(JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')));
  const id = a.scenario ?? index[0];
  const sc = validateScenario(JSON.parse(readFileSync(join(dir, `${id}.json`), 'utf8')), `${id}.json`);
  const iterations = a.iterations ? Number(a.iterations) : sc.iterations;
  const prompts = (
    JSON.parse(readFileSync(resolve(`static/prompts/${sc.prompts}.json`), 'utf8')) as { prompts: string[] }
  ).prompts;

  const mdir = resolve(a.model!);
  const cfg = configFromHF(JSON.parse(readFileSync(join(mdir, 'config.json'), 'utf8')));
  const base = new GPT(cfg, { trainable: false, namePrefix: 'base/' });
  loadSafetensorsIntoModel(base, readFileSync(join(mdir, 'model.safetensors')));
  const tok = BpeTokenizer.fromJSON(JSON.parse(readFileSync(join(mdir, 'tokenizer.json'), 'utf8')));
  const labeller = labellerFromConfig(sc.labeller);
  const proxy = (t: string, p: string) => labeller.score(t, p);
  // The gold score PPO's evaluation shows: the scenario's `gold` kind, else its labeller.
  const goldLabeller = sc.gold && sc.gold !== 'none' ? labellerFromConfig(defaultLabellerConfig(sc.gold)) : labeller;
  const gold = (t: string, p: string) => goldLabeller.score(t, p);
  const t0 = performance.now();
  const secs = () => ((performance.now() - t0) / 1000).toFixed(1);

  // 1. Label.
  const rng = new Rng(sc.seed);
  const pairs: TrainingPair[] = [];
  let ties = 0;
  for (let start = 0, call = 0; start < sc.labels; call++) {
    const m = Math.min(24, sc.labels - start);
    const ps = Array.from({ length: m }, () => prompts[Math.floor(rng.next() * prompts.length)]);
    const rows = await generate(
      base,
      ps.flatMap((p) => [p, p]).map((p) => [tok.eotId, ...tok.encodePrompt(p).ids]),
      { ...LABEL_SAMPLING, seed: sc.seed + call * 7919, decode: (ids) => tok.decode(ids) },
      tok.eotId,
    );
    ps.forEach((p, i) => {
      const [x, y] = [rows[2 * i].text, rows[2 * i + 1].text];
      const c = labeller.compare(x, y, p, rng);
      if (c === 'tie') ties++;
      else pairs.push(c === 'A' ? { prompt: p, chosen: x, rejected: y } : { prompt: p, chosen: y, rejected: x });
    });
    start += m;
  }
  console.log(`labelled ${sc.labels} pairs (${ties} ties) in ${secs()} s`);

  // 2. Reward model.
  const rmSettings = { ...RM_DEFAULTS, ...sc.rewardModel };
  const rm = RewardModel.fromPolicy(base, { mode: rmSettings.mode, seed: sc.seed, pooling: rmSettings.pooling });
  const res = await trainRewardModel(rm, pairs, {
    encode: (p, r) => rewardInputIds(tok, p, r),
    mode: rmSettings.mode,
    epochs: rmSettings.epochs,
    learningRate: rmSettings.learningRate,
    batchSize: rmSettings.batchSize,
    centerCoef: rmSettings.centerCoef,
    valFraction: rmSettings.valFraction,
    seed: sc.seed,
  });
  console.log(
    `reward model (${rmSettings.mode}): train acc ${(res.best.accuracy * 100).toFixed(1)}%, held-out ${res.best.eval_accuracy === undefined ? 'n/a' : (res.best.eval_accuracy * 100).toFixed(1) + '%'}; ${secs()} s`,
  );

  // 3. PPO.
  const config = validatePpoConfig({ ...sc.ppo, ...JSON.parse(a.ppo!), seed: sc.seed });
  const trainer = new PpoTrainer({
    model: base,
    reference: base,
    reward: rewardSource(rm, tok.eotId),
    tokenizer: tok,
    prompts,
    config,
  });
  for (let i = 0; i < iterations; i++) {
    const r = await trainer.iteration();
    const m = r.metrics;
    const g = mean(r.rollout.texts.map((t, j) => gold(t, r.rollout.prompts[j])));
    const px = mean(r.rollout.texts.map((t, j) => proxy(t, r.rollout.prompts[j])));
    console.log(
      `it ${String(i + 1).padStart(3)} reward ${m['objective/scores'].toFixed(2).padStart(6)} labeller ${px.toFixed(2).padStart(6)} gold ${g.toFixed(2).padStart(6)} kl ${m['objective/kl'].toFixed(2).padStart(6)} β ${m.beta.toFixed(3)} len ${m.response_length.toFixed(1)} | ${m['time/iteration_s'].toFixed(1)} s  e.g. ${JSON.stringify(r.rollout.prompts[0] + '|' + r.rollout.texts[0])}`,
    );
  }

  // 4. Samples: base vs policy on the same prompts and seeds.
  const evalPrompts = prompts.slice(0, Number(a['eval-prompts']));
  const flat = evalPrompts.flatMap((p) => Array.from({ length: Number(a.samples) }, () => p));
  const ids = flat.map((p) => trainer.queryFor(trainer.encodePrompt(p)));
  const opts = {
    maxNewTokens: config.maxNewTokens,
    temperature: config.temperature,
    seed: 2024,
    decode: (x: number[]) => tok.decode(x),
  };
  const before = await generate(base, ids, opts, tok.eotId);
  const after = await generate(trainer.policy, ids, opts, tok.eotId);
  const samples = flat.map((p, i) => ({
    prompt: p,
    base: before[i].text,
    policy: after[i].text,
    baseScore: proxy(before[i].text, p),
    policyScore: proxy(after[i].text, p),
  }));
  for (const s of samples)
    console.log(
      `  ${JSON.stringify(s.prompt)}\n    base   ${JSON.stringify(s.base)} (${s.baseScore})\n    policy ${JSON.stringify(s.policy)} (${s.policyScore})`,
    );
  const mb = mean(samples.map((s) => s.baseScore));
  const mp = mean(samples.map((s) => s.policyScore));
  console.log(`labeller score: base ${mb.toFixed(2)}, policy ${mp.toFixed(2)}; total ${secs()} s`);
  writeFileSync(
    resolve(a.out!),
    JSON.stringify(
      {
        scenario: sc.id,
        model: cfg && `tiny-gpt (${base.numParams()} parameters)`,
        iterations,
        labels: sc.labels,
        rewardModelAccuracy: res.best.eval_accuracy ?? res.best.accuracy,
        scoreName: `${sc.labeller.kind} score`,
        baseMean: mb,
        policyMean: mp,
        samples,
        generatedBy: `npx tsx scripts/make-first-screen.ts --scenario ${sc.id}${a.iterations ? ` --iterations ${iterations}` : ''}`,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`wrote ${a.out}`);
  trainer.dispose();
  rm.dispose();
  base.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
