/**
 * A GRPO or RLOO run of the bundled model with a scripted labeller as the reward, in Node on the
 * TF.js wasm backend (the trainer the Train page runs), logging TRL's metrics per iteration: the
 * healthy history the GRPO/RLOO run-health alarms must stay quiet on (issue 20).
 *
 *   npx tsx scripts/experiments/group-history.ts --algo grpo --iterations 30 --reward sentiment
 *   options: --config '{"beta":0.04}' --prompts static/prompts/reviews.json --out runs/grpo.json
 *
 * Writes `<out>`: { algo, reward, config, iterations, seconds, history } with `history` as the
 * page records it ({ step, metrics } with the metrics the alarms read, `GROUP_ALARM_METRICS`).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { GROUP_ALARM_METRICS } from '../../src/lib/rlhf/alarms';
import { GrpoTrainer, RlooTrainer } from '../../src/lib/rlhf/grpo';
import { defaultLabellerConfig, labellerFromConfig, type LabellerKind } from '../../src/lib/rlhf/labellers';
import { rewardFromFunction } from '../../src/lib/rlhf/ppo';
import { loadModel, readPrompts, setBackend, splitPrompts } from './pipeline-common';

const { values: a } = parseArgs({
  options: {
    algo: { type: 'string', default: 'grpo' },
    iterations: { type: 'string', default: '30' },
    reward: { type: 'string', default: 'sentiment' },
    model: { type: 'string', default: 'public/models/tiny-gpt' },
    prompts: { type: 'string', default: 'static/prompts/reviews.json' },
    config: { type: 'string', default: '{}' },
    out: { type: 'string', default: 'runs/group-history.json' },
    backend: { type: 'string', default: 'wasm' },
  },
  strict: true,
});

async function main(): Promise<void> {
  await setBackend(a.backend!);
  const { model, tok } = loadModel(a.model!);
  const { train } = splitPrompts(readPrompts(a.prompts!));
  const labeller = labellerFromConfig(defaultLabellerConfig(a.reward as LabellerKind));
  const opts = {
    model,
    reward: rewardFromFunction((text, prompt) => labeller.score(text, prompt)),
    tokenizer: tok,
    prompts: train,
    config: JSON.parse(a.config!),
  };
  const trainer = a.algo === 'rloo' ? new RlooTrainer(opts) : new GrpoTrainer(opts);
  const keep = new Set<string>(GROUP_ALARM_METRICS);
  const history: { step: number; metrics: Record<string, number> }[] = [];
  const t0 = performance.now();
  for (let i = 0; i < Number(a.iterations); i++) {
    const { metrics } = await trainer.iteration();
    const row: Record<string, number> = {};
    for (const [k, v] of Object.entries(metrics))
      if (keep.has(k) && typeof v === 'number' && Number.isFinite(v)) row[k] = Number(v.toPrecision(4));
    history.push({ step: metrics.iteration, metrics: row });
    console.log(`${a.algo} it ${metrics.iteration} ${JSON.stringify(row)}`);
  }
  const out = {
    algo: a.algo,
    reward: labeller.config,
    recordedWith: `npx tsx scripts/experiments/group-history.ts --algo ${a.algo} --iterations ${a.iterations} --reward ${a.reward} --config '${a.config}'`,
    config: trainer.config,
    iterations: history.length,
    seconds: Math.round((performance.now() - t0) / 1000),
    history,
  };
  writeFileSync(a.out!, JSON.stringify(out) + '\n');
  trainer.dispose();
  model.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
