/**
 * Seconds per iteration of PPO, GRPO and RLOO with their defaults, interleaved in one process (one
 * iteration of each in turn, `--rounds` times) on the TF.js wasm backend, so that each sees the
 * same machine load: the A/B behind "GRPO within the wall-clock of PPO's 100 iterations" on a
 * shared machine. The reward is a reward model of the issue-6 pipeline's shape (full mode, mean
 * pooling) on the bundled model; its weights do not matter for timing, so it is not trained.
 *
 *   npx tsx scripts/experiments/iteration-times.ts --rounds 5 [--algo ppo,grpo,rloo] [--warmup 1]
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { RewardModel, rewardSource } from '../../src/lib/rlhf/reward-model';
import { PIPELINE_ALGOS, PIPELINE_ALGO_NAMES, type PipelineAlgo, type PipelineAlgoName } from './pipeline-algos';
import { loadModel, readPrompts, setBackend, splitPrompts } from './pipeline-common';

const { values: a } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    algo: { type: 'string', default: 'ppo,grpo,rloo' },
    model: { type: 'string', default: 'public/models/tiny-gpt' },
    prompts: { type: 'string', default: 'static/prompts/reviews.json' },
    backend: { type: 'string', default: 'wasm' },
  },
  strict: true,
});

async function main(): Promise<void> {
  const names = a.algo!.split(',').map((s) => s.trim()) as PipelineAlgoName[];
  for (const n of names)
    if (!PIPELINE_ALGO_NAMES.includes(n))
      throw new Error(`--algo: unknown "${n}"; one of ${PIPELINE_ALGO_NAMES.join(', ')}`);
  await setBackend(a.backend!);
  const { model: base, tok } = loadModel(a.model!);
  const { train } = splitPrompts(readPrompts(a.prompts!));
  const rm = RewardModel.fromPolicy(base, { mode: 'full', seed: 0, pooling: 'mean' });
  const trainers = names.map((n) => {
    const algo: PipelineAlgo = PIPELINE_ALGOS[n];
    return {
      n,
      t: algo.create({
        model: base,
        reference: base,
        reward: rewardSource(rm, tok.eotId),
        tokenizer: tok,
        prompts: train,
        config: algo.validate({ seed: 0 }),
      }),
      s: [] as number[],
    };
  });
  const rounds = Number(a.rounds);
  const warmup = Number(a.warmup);
  for (let r = 0; r < warmup + rounds; r++) {
    const line: string[] = [];
    for (const x of trainers) {
      const t0 = performance.now();
      await x.t.iteration();
      const s = (performance.now() - t0) / 1000;
      if (r >= warmup) x.s.push(s);
      line.push(`${x.n} ${s.toFixed(2)} s`);
    }
    console.log(`round ${r + 1}${r < warmup ? ' (warm-up)' : ''}: ${line.join(', ')}`);
  }
  const mean = (xs: number[]) => xs.reduce((p, q) => p + q, 0) / xs.length;
  const ppo = trainers.find((x) => x.n === 'ppo');
  console.log(`backend ${tf.getBackend()}; mean s/it over ${rounds} interleaved rounds:`);
  for (const x of trainers)
    console.log(
      `  ${x.n.padEnd(5)} ${mean(x.s).toFixed(2)} s/it${ppo && x !== ppo ? `; PPO's 100 iterations = ${((100 * mean(ppo.s)) / mean(x.s)).toFixed(0)} ${x.n} iterations` : ''}`,
    );
  for (const x of trainers) x.t.dispose();
  rm.dispose();
  base.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
