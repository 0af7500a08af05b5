/**
 * The critic-free bench case (`what: ['group']`, called from bench.ts): one GRPO and one RLOO
 * iteration with their defaults (src/lib/rlhf/grpo.ts; batch 16 × 24 tokens, as PPO's defaults)
 * timed like the PPO case, and the memory each trainer holds (policy, reference, Adam moments;
 * PPO's also a value model) measured the same way for PPO, GRPO and RLOO: TF.js bytes after
 * building the trainer and one iteration, minus before. What "no value model" saves shows as
 * the difference of those rows and of the iteration times.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT } from '../model/gpt';
import type { BpeTokenizer } from '../model/tokenizer';
import { GrpoTrainer, RlooTrainer } from '../rlhf/grpo';
import { defaultLabellerConfig, labellerFromConfig } from '../rlhf/labellers';
import { PpoTrainer, rewardFromFunction } from '../rlhf/ppo';
import type { BenchRequest, BenchRow } from './types';

const PROMPTS = ['The movie was', 'This book', 'The food was', 'I loved'];

export async function benchGroup(
  model: GPT,
  tok: BpeTokenizer,
  req: BenchRequest,
  yieldNow: () => Promise<void>,
): Promise<BenchRow[]> {
  const labeller = labellerFromConfig(defaultLabellerConfig('sentiment'));
  const reward = rewardFromFunction((t, p) => labeller.score(t, p));
  const warmup = req.warmup ?? 1;
  const iters = req.groupIterations ?? req.repeats ?? 3;
  const base = { model, reward, tokenizer: tok, prompts: PROMPTS, onStep: yieldNow };
  const makers = {
    PPO: () => new PpoTrainer({ ...base, config: req.ppoConfig ?? {} }),
    GRPO: () => new GrpoTrainer({ ...base, config: req.grpoConfig ?? {} }),
    RLOO: () => new RlooTrainer({ ...base, config: req.rlooConfig ?? {} }),
  };
  const rows: BenchRow[] = [];
  for (const [name, make] of Object.entries(makers)) {
    const bytes0 = tf.memory().numBytes;
    const trainer = make();
    try {
      // The PPO row here is memory only (its iteration time is the PPO case's row).
      const n = name === 'PPO' ? 1 : warmup + iters;
      const ms: number[] = [];
      let tensorsAfterFirst = 0;
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await trainer.iteration();
        if (i === 0) tensorsAfterFirst = tf.memory().numTensors;
        if (name === 'PPO' || i >= warmup) ms.push(performance.now() - t0);
      }
      const trainerBytes = tf.memory().numBytes - bytes0;
      const s = [...ms].sort((a, b) => a - b);
      rows.push({
        name: name === 'PPO' ? 'PPO trainer memory (for the critic-free rows)' : `${name} iteration (defaults)`,
        medianMs: s[Math.floor(s.length / 2)],
        minMs: s[0],
        maxMs: s[s.length - 1],
        n: s.length,
        value: trainerBytes / 1e6,
        unit: 'MB held by the trainer',
        ...(name === 'PPO' ? {} : { tensorsGrowth: tf.memory().numTensors - tensorsAfterFirst }),
      });
    } finally {
      trainer.dispose();
    }
  }
  return rows;
}
