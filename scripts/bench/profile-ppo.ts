/**
 * Profiles one PPO iteration of the bundled model at the default settings, the way `npm run
 * bench` runs it (src/lib/engine/bench.ts: sentiment labeller, four prompts): the time of each
 * phase, then one update's kernels (count and time per kernel type, the top shapes) and where a
 * minibatch step's time goes (loss + gradients, the clip's norm and read-back, Adam), and the
 * kernels of one KV-cached decode step at batch 16. Node, TF.js wasm backend, one thread.
 *
 *   npx tsx scripts/bench/profile-ppo.ts [--backend wasm] [--iterations 2] [--top 20]
 *     [--ab N]   first an A/B in this process: N iterations each of two same-seed trainers (the same
 *                batches), alternating, one with the fused Adam kernel (model/kernels/adam-kernel.ts)
 *                and one with the TF.js ops; and 2N cached
 *                samplings at batch 16, alternating, with and without gpt.ts's wasm decode path
 *                (kernels/layernorm-kernel.ts and the array KV cache)
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { loadModel, setBackend } from '../experiments/pipeline-common';
import { Adam } from '../../src/lib/rlhf/adam';
import { disableFusedAdam } from '../../src/lib/model/kernels/adam-kernel';
import { disableDecodeLayerNorm } from '../../src/lib/model/kernels/layernorm-kernel';
import { labellerFromConfig, defaultLabellerConfig } from '../../src/lib/rlhf/labellers';
import { PpoTrainer, rewardFromFunction } from '../../src/lib/rlhf/ppo';
import { generate } from '../../src/lib/model/sampling';

const { values: a } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    iterations: { type: 'string', default: '2' },
    top: { type: 'string', default: '20' },
    ab: { type: 'string', default: '0' },
  },
});

await setBackend(a.backend!);
const { model, tok } = loadModel('public/models/tiny-gpt');

/** Kernel table of a profile: count and summed time per kernel name, two top shapes each. */
function table(kernels: { name: string; kernelTimeMs: unknown; inputShapes: unknown }[], top: number): string {
  const by = new Map<string, { n: number; ms: number; shapes: Map<string, { n: number; ms: number }> }>();
  let total = 0;
  for (const k of kernels) {
    const t = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    total += t;
    const e = by.get(k.name) ?? { n: 0, ms: 0, shapes: new Map() };
    e.n++;
    e.ms += t;
    const sk = JSON.stringify(k.inputShapes);
    const s = e.shapes.get(sk) ?? { n: 0, ms: 0 };
    s.n++;
    s.ms += t;
    e.shapes.set(sk, s);
    by.set(k.name, e);
  }
  const lines = [`${kernels.length} kernels, summed kernel time ${total.toFixed(1)} ms`];
  for (const [name, e] of [...by.entries()].sort((p, q) => q[1].ms - p[1].ms).slice(0, top)) {
    const shapes = [...e.shapes.entries()]
      .sort((p, q) => q[1].ms - p[1].ms)
      .slice(0, 2)
      .map(([s, v]) => `${s} ×${v.n} ${v.ms.toFixed(1)}`)
      .join('; ');
    lines.push(`  ${name.padEnd(24)} ${String(e.n).padStart(5)} ${e.ms.toFixed(1).padStart(8)}   ${shapes}`);
  }
  return lines.join('\n');
}

// Adam's share: time every apply() (wasm kernels run synchronously, so wall time is kernel time).
let adamMs = 0;
let adamCalls = 0;
const apply = Adam.prototype.apply;
Adam.prototype.apply = function (this: Adam, ...args: Parameters<Adam['apply']>) {
  const t0 = performance.now();
  apply.apply(this, args);
  adamMs += performance.now() - t0;
  adamCalls++;
};

const labeller = labellerFromConfig(defaultLabellerConfig('sentiment'));
const makeTrainer = () =>
  new PpoTrainer({
    model,
    reward: rewardFromFunction((t, p) => labeller.score(t, p)),
    tokenizer: tok,
    prompts: ['The movie was', 'This book', 'The food was', 'I loved'],
    config: {},
  });
const trainer = makeTrainer();
console.log(`backend ${tf.getBackend()}, PPO defaults ${JSON.stringify(trainer.config)}`);
await trainer.iteration(); // warm-up
const med = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
if (Number(a.ab) > 0) {
  // Two trainers with the same seed: both Adam paths give the same bits, so iteration i of each
  // sees the same batch (the same lengths), and alternating them compares like with like.
  const twin = makeTrainer();
  await twin.iteration();
  const t = { fused: [] as number[][], tf: [] as number[][] };
  for (let i = 0; i < 2 * Number(a.ab); i++) {
    // ABBA order (fused, tf, tf, fused, …), so a drift in the machine's load favours neither; the
    // twins stay in step because each runs its own i-th iteration.
    const which = i % 4 === 0 || i % 4 === 3 ? 'fused' : 'tf';
    disableFusedAdam(which === 'tf');
    adamMs = 0;
    const t0 = performance.now();
    const r = await (which === 'fused' ? trainer : twin).iteration();
    t[which].push([performance.now() - t0, r.update.seconds * 1000, adamMs, r.metrics['loss/policy_avg']]);
    console.log(
      `  ${which}: ${t[which]
        .at(-1)!
        .slice(0, 3)
        .map((x) => x.toFixed(0))
        .join(' / ')} ms (iteration / update / Adam), policy loss ${t[which].at(-1)![3]}`,
    );
  }
  disableFusedAdam(false);
  twin.dispose();
  for (const k of ['fused', 'tf'] as const)
    console.log(
      `A/B ${k.padEnd(5)}: iteration median ${med(t[k].map((x) => x[0])).toFixed(0)} ms, update ${med(t[k].map((x) => x[1])).toFixed(0)} ms, Adam ${med(t[k].map((x) => x[2])).toFixed(0)} ms per iteration (${t[k].length} iterations)`,
    );
  const same = t.fused.every((x, i) => x[3] === t.tf[i]?.[3]);
  console.log(`the twins' policy losses are ${same ? 'identical' : 'DIFFERENT'} iteration by iteration`);
}
for (let i = 0; i < Number(a.iterations); i++) {
  adamMs = 0;
  adamCalls = 0;
  const t0 = performance.now();
  const r = await trainer.iteration();
  console.log(
    `iteration ${(performance.now() - t0).toFixed(0)} ms: rollout ${(r.rollout.seconds * 1000).toFixed(0)}, score ${(r.score.seconds * 1000).toFixed(0)}, advantages ${(r.advantages.seconds * 1000).toFixed(0)}, update ${(r.update.seconds * 1000).toFixed(0)} (${r.update.steps.length} steps; Adam ${adamMs.toFixed(0)} ms in ${adamCalls} calls)`,
  );
}

await trainer.rollout();
await trainer.score();
await trainer.advantages();
const prof = await tf.profile(async () => {
  await trainer.update();
});
console.log(
  `\none update (${trainer.config.ppoEpochs * trainer.config.miniBatches} minibatch steps): ${table(prof.kernels, Number(a.top))}`,
);

// Adam alone, profiled on the trainer's own variables with zero gradients.
{
  const adam = (trainer as unknown as { adam: Adam }).adam;
  const grads: tf.NamedTensorMap = {};
  for (const v of adam.vars) grads[v.name] = tf.zerosLike(v);
  const snap = adam.snapshot();
  const p = await tf.profile(() => adam.apply(grads, 1, { lr: 0, maxGradNorm: 1 }));
  adam.restore(snap);
  tf.dispose([...snap.m, ...snap.v, ...Object.values(grads)]);
  console.log(`\none Adam step over ${adam.vars.length} variables: ${table(p.kernels, 8)}`);
}
trainer.dispose();

// One cached decode at batch 16 (64 new tokens): kernels per token.
{
  const prompts = Array.from({ length: 16 }, () => [tok.eotId, ...tok.encode('The movie was')]);
  const opts = { maxNewTokens: 60, temperature: 1, seed: 1, stopAtEot: false };
  await generate(model, prompts, opts, tok.eotId);
  if (Number(a.ab) > 0) {
    const t = { fused: [] as number[], tf: [] as number[] };
    for (let i = 0; i < 4 * Number(a.ab); i++) {
      const which = i % 2 === 0 ? 'fused' : 'tf';
      disableDecodeLayerNorm(which === 'tf');
      const t0 = performance.now();
      await generate(model, prompts, opts, tok.eotId);
      t[which].push(performance.now() - t0);
    }
    disableDecodeLayerNorm(false);
    for (const k of ['fused', 'tf'] as const)
      console.log(
        `A/B sampling b16 cache, decode path ${k === 'fused' ? 'wasm kernels' : 'TF.js ops  '}: median ${med(t[k]).toFixed(0)} ms (${(((16 * 60) / med(t[k])) * 1000) | 0} tok/s), best ${Math.min(...t[k]).toFixed(0)} ms`,
      );
  }
  const t0 = performance.now();
  await generate(model, prompts, opts, tok.eotId);
  const ms = performance.now() - t0;
  const p = await tf.profile(async () => {
    await generate(model, prompts, opts, tok.eotId);
  });
  console.log(
    `\nsampling b16 cache, 60 tokens: ${ms.toFixed(0)} ms (${(((16 * 60) / ms) * 1000) | 0} tok/s); per token ${(p.kernels.length / 60).toFixed(0)} kernels; ${table(p.kernels, Number(a.top))}`,
  );
}
