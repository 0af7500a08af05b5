/**
 * DPO on noisy scripted preference pairs, in Node on the TF.js wasm backend (one thread): the
 * issue-7 comparison with PPO's gold-score lift on the bundled model.
 *
 *   npx tsx scripts/experiments/dpo.ts --pairs 300 --noise 0.1
 *   options: --model public/models/tiny-gpt --prompts static/prompts/reviews.json --labeller sentiment
 *            --config '{"beta":0.1,"learningRate":1e-4,"epochs":2}' --max-new-tokens 24 --temperature 1
 *            --eval-temperature 0.7
 *            --eval-samples 16 --eval-seed 7 --seed 0 --out runs/dpo --backend wasm
 *
 * Prompts: every 4th prompt of the set is held out (`splitPrompts`); pairs are sampled from the
 * base model on the rest and labelled by the labeller with `--noise` (`samplePairs`). DPO trains
 * a copy of the base model with the base as its frozen reference (`trainDpo`). At the end: the
 * noise-free labeller's mean score of samples on the held-out prompts before (base) vs after
 * (policy), in units of the base model's score std, and KL(policy ‖ base) per sequence.
 *
 * Writes `<out>/log.jsonl` (one line of TRL-named metrics per step or epoch) and `<out>/summary.json`.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultLabellerConfig, labellerFromConfig, type LabellerKind } from '../../src/lib/rlhf/labellers';
import { trainDpo, type DpoConfig } from '../../src/lib/rlhf/dpo-train';
import type { TrainingPair } from '../../src/lib/data/records';
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

const { values: a } = parseArgs({
  options: {
    pairs: { type: 'string', default: '300' },
    noise: { type: 'string', default: '0.1' },
    labeller: { type: 'string', default: 'sentiment' },
    model: { type: 'string', default: 'public/models/tiny-gpt' },
    prompts: { type: 'string', default: 'static/prompts/reviews.json' },
    config: { type: 'string', default: '{}' },
    'max-new-tokens': { type: 'string', default: '24' },
    temperature: { type: 'string', default: '1' },
    /** Sampling temperature of the gold evaluation: PPO's default (0.7), so the lifts compare. */
    'eval-temperature': { type: 'string', default: '0.7' },
    'eval-samples': { type: 'string', default: '16' },
    'eval-seed': { type: 'string', default: '7' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string', default: 'runs/dpo' },
    backend: { type: 'string', default: 'wasm' },
  },
  strict: true,
});

const out = resolve(a.out!);
mkdirSync(out, { recursive: true });
const logPath = join(out, 'log.jsonl');
writeFileSync(logPath, '');

await setBackend(a.backend!);
const { model: base, tok, source } = loadModel(a.model!);
const { train: trainPrompts, heldOut } = splitPrompts(readPrompts(a.prompts!));
const kind = a.labeller as LabellerKind;
const labellerConfig = { ...defaultLabellerConfig(kind), noise: Number(a.noise) };
const gold = labellerFromConfig({ ...labellerConfig, noise: 0 });
const maxNewTokens = Number(a['max-new-tokens']);
const temperature = Number(a.temperature);
const seed = Number(a.seed);
console.log(`model ${source}; ${trainPrompts.length} train / ${heldOut.length} held-out prompts; labeller ${kind}`);

const sampled = await samplePairs(base, tok, trainPrompts, Number(a.pairs), {
  labeller: labellerConfig,
  maxNewTokens,
  temperature,
  seed,
});
const pairs = sampled.candidates.map(toPair).filter((p): p is TrainingPair => p !== null);
const flipped = sampled.candidates.filter((c) => c.choice !== c.clean).length;
console.log(
  `${pairs.length} pairs (${flipped} labels differ from the noise-free labeller, ${sampled.ties} ties skipped) in ${sampled.seconds.toFixed(1)} s`,
);

const config: Partial<DpoConfig> = { valFraction: 0.1, seed, ...(JSON.parse(a.config!) as Partial<DpoConfig>) };
const policy = base.clone({ trainable: true, namePrefix: 'dpo/policy/' });
const result = await trainDpo(policy, pairs, { tokenizer: tok, config, reference: base }, (e) => {
  if (e.type === 'start') {
    console.log(`DPO: ${e.train} train / ${e.val} held-out pairs, ${e.totalSteps} steps`);
    appendFileSync(logPath, JSON.stringify({ step: 0, ...e.initial }) + '\n');
  } else {
    appendFileSync(logPath, JSON.stringify({ step: e.row.step, ...e.row.metrics }) + '\n');
    const m = e.row.metrics;
    if (e.type === 'epoch')
      console.log(
        `epoch ${e.epoch} step ${e.row.step}: train loss ${m.train_loss.toFixed(4)}` +
          (m.eval_loss === undefined
            ? ''
            : ` · eval loss ${m.eval_loss.toFixed(4)} margins ${m['eval_rewards/margins'].toFixed(4)} accuracy ${m['eval_rewards/accuracies'].toFixed(3)}`),
      );
  }
});

const evalOpts = {
  samples: Number(a['eval-samples']),
  seed: Number(a['eval-seed']),
  maxNewTokens,
  temperature: Number(a['eval-temperature']),
  query: (p: string) => {
    const q = [tok.eotId, ...tok.encodePrompt(p).ids];
    return q.slice(Math.max(0, q.length - (base.config.blockSize - maxNewTokens)));
  },
};
const score = (text: string, prompt: string) => gold.score(text, prompt);
const before = await evaluatePolicy(base, base, tok, heldOut, score, evalOpts);
const after = await evaluatePolicy(policy, base, tok, heldOut, score, evalOpts);
const b = stats(before.scores);
const f = stats(after.scores);
const kl = stats(after.kl);
const lift = (f.mean - b.mean) / (b.std || 1);
console.log(
  `held-out gold score: base ${b.mean.toFixed(3)} ± ${b.std.toFixed(3)} → DPO ${f.mean.toFixed(3)} (lift ${lift.toFixed(3)} base std); KL ${kl.mean.toFixed(3)} nats/sequence; ${result.seconds.toFixed(1)} s`,
);
after.examples.forEach((x) => console.log('  ' + x));
writeFileSync(
  join(out, 'summary.json'),
  JSON.stringify(
    {
      model: source,
      labeller: labellerConfig,
      pairs: pairs.length,
      flippedLabels: flipped,
      config: { ...config },
      steps: result.steps,
      seconds: result.seconds,
      final: result.final,
      heldOutPrompts: heldOut.length,
      goldBefore: b,
      goldAfter: f,
      liftInBaseStd: lift,
      klPerSequence: kl,
      examples: after.examples,
    },
    null,
    2,
  ),
);
policy.dispose();
base.dispose();
