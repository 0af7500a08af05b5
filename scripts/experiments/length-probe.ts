/**
 * Is a reward length-neutral on the bundled model? Samples the base model the way a GRPO run of
 * a scenario does (its prompts' training split, its temperature and completion length; the
 * app's `GrpoTrainer` rollout), scores the samples with the scenario's reward functions (or
 * `--fn FILE.js`) and prints the pass rate of the shorter and the longer half of the samples
 * (split at the median length in tokens) and the mean length of passing and failing ones.
 * The length-bias lab (static/scenarios/grpo/length-bias-lab.json) needs a reward whose pass
 * rate does not depend on length at base, so that any length drift in training comes from the
 * loss aggregation (Liu et al. 2025, "Understanding R1-Zero-Like Training"), not from the reward.
 *
 *   npx tsx scripts/experiments/length-probe.ts --scenario static/scenarios/grpo/length-bias-lab.json \
 *     --batches 16 [--fn reward.js] [--save runs/probe.jsonl] [--load runs/probe.jsonl]
 *
 * `--save` writes the samples (prompt, text, tokens, finished) as JSON lines; `--load` scores
 * saved samples instead of sampling, so many candidate rewards can be checked on one set.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { validateGroupScenario } from '../../src/lib/data/scenarios';
import { functionRewardSource, RewardFunctionRunner } from '../../src/lib/engine/reward-fn-runner';
import { GrpoTrainer } from '../../src/lib/rlhf/grpo';
import { validateGrpoConfig } from '../../src/lib/rlhf/grpo-config';
import { passRateSplit } from '../../src/lib/rlhf/pass-rate';
import type { RewardInput } from '../../src/lib/rlhf/ppo';
import { loadModel, readPrompts, setBackend } from './pipeline-common';

const { values: a } = parseArgs({
  options: {
    scenario: { type: 'string' },
    batches: { type: 'string', default: '16' },
    fn: { type: 'string', multiple: true },
    save: { type: 'string' },
    load: { type: 'string' },
    seed: { type: 'string', default: '0' },
    model: { type: 'string', default: 'public/models/tiny-gpt' },
    backend: { type: 'string', default: 'wasm' },
  },
  strict: true,
});

interface Sample {
  prompt: string;
  text: string;
  tokens: number;
  finished: boolean;
}

async function main(): Promise<void> {
  if (!a.scenario) throw new Error('--scenario static/scenarios/<id>.json is required');
  const sc = validateGroupScenario(JSON.parse(readFileSync(resolve(a.scenario), 'utf8')), a.scenario);
  let samples: Sample[];
  if (a.load) {
    samples = readFileSync(resolve(a.load), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Sample);
  } else {
    await setBackend(a.backend!);
    const { model, tok } = loadModel(a.model!);
    const { train } = passRateSplit(readPrompts(`static/prompts/${sc.prompts}.json`), sc.seed);
    const config = validateGrpoConfig({ ...sc.grpo, seed: Number(a.seed) });
    const t = new GrpoTrainer({
      model,
      reward: { score: async (b) => b.map(() => 0) },
      tokenizer: tok,
      prompts: train,
      config,
    });
    samples = [];
    const t0 = performance.now();
    for (let i = 0; i < Number(a.batches); i++) {
      const r = await t.rollout();
      r.texts.forEach((text, k) =>
        samples.push({ prompt: r.prompts[k], text, tokens: r.responseIds[k].length, finished: r.finished[k] }),
      );
      t.abandonIteration();
    }
    console.log(
      `${samples.length} samples (temperature ${config.temperature}, ≤ ${config.maxCompletionLength} tokens) in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    );
    t.dispose();
    model.dispose();
    if (a.save) {
      writeFileSync(resolve(a.save), '');
      for (const s of samples) appendFileSync(resolve(a.save), JSON.stringify(s) + '\n');
    }
  }
  const fns = a.fn?.length
    ? a.fn.map((f, i) => ({ name: `fn${i}`, code: readFileSync(resolve(f), 'utf8'), weight: 1 }))
    : sc.rewardFunctions;
  const runner = new RewardFunctionRunner();
  const sorted = [...samples.map((s) => s.tokens)].sort((x, y) => x - y);
  const median = sorted[Math.floor(sorted.length / 2)];
  for (const fn of fns) {
    const source = functionRewardSource([{ ...fn, weight: 1 }], runner);
    const inputs: RewardInput[] = samples.map((s) => ({
      prompt: s.prompt,
      promptIds: [],
      responseIds: new Array<number>(s.tokens).fill(0),
      text: s.text,
      finished: s.finished,
    }));
    const r = await source.score(inputs);
    const pass = r.map((x) => x >= sc.passThreshold);
    const rate = (keep: (s: Sample) => boolean) => {
      const idx = samples.map((s, i) => i).filter((i) => keep(samples[i]));
      return { n: idx.length, rate: idx.filter((i) => pass[i]).length / Math.max(idx.length, 1) };
    };
    const meanLen = (p: boolean) => {
      const l = samples.filter((_, i) => pass[i] === p).map((s) => s.tokens);
      return l.reduce((x, y) => x + y, 0) / Math.max(l.length, 1);
    };
    const all = rate(() => true);
    const short = rate((s) => s.tokens < median);
    const long = rate((s) => s.tokens >= median);
    // Groups of numGenerations consecutive samples (one prompt each): share with mixed rewards.
    const G = validateGrpoConfig(sc.grpo).numGenerations;
    let mixed = 0;
    for (let g = 0; g + G <= r.length; g += G) if (new Set(r.slice(g, g + G)).size > 1) mixed++;
    console.log(
      `${fn.name}: pass ${(all.rate * 100).toFixed(1)}% of ${all.n}; shorter than ${median} tokens ${(short.rate * 100).toFixed(1)}% (n ${short.n}), ${median}+ tokens ${(long.rate * 100).toFixed(1)}% (n ${long.n}); mean length passing ${meanLen(true).toFixed(1)}, failing ${meanLen(false).toFixed(1)}; mean reward ${(r.reduce((x, y) => x + y, 0) / r.length).toFixed(3)}; groups with spread ${mixed}/${Math.floor(r.length / G)}`,
    );
  }
  runner.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
