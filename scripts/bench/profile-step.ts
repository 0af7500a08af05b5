/**
 * Profiles one training step of the default model (public/models/tiny-gpt config: 4 layers ×
 * d128, 4 heads, T64, vocab 1281) on B16 × T64 random tokens, the way `npm run bench` times it
 * (src/lib/engine/bench.ts: `opt.minimize(() => policy.loss(x, y))` with TF.js Adam, one batched
 * read-back). Node, TF.js wasm backend, one thread (as in the browser without cross-origin
 * isolation). Prints the median ms/step, kernels per step, the top kernels by total time and
 * whether tf.memory().numTensors grows.
 *
 *   npx tsx scripts/bench/profile-step.ts [--backend wasm] [--steps 10] [--batch 16] [--top 25]
 *     [--gpt path/to/other-gpt.ts]   A/B: profile another copy of the model module (same exports)
 *     [--attention kernel|tf|ab]      our wasm attention kernel (default where it runs), TF.js ops,
 *                                     or both, step by step alternately (an A/B on a busy machine)
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setBackend } from '../experiments/pipeline-common';
import { configFromHF } from '../../src/lib/model/weights';
import { GPT as DefaultGPT } from '../../src/lib/model/gpt';
import { Rng } from '../../src/lib/model/rng';
import { disableAttentionKernel } from '../../src/lib/model/kernels/attention-kernel';

const { values: a } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    steps: { type: 'string', default: '10' },
    batch: { type: 'string', default: '16' },
    top: { type: 'string', default: '25' },
    config: { type: 'string', default: 'public/models/tiny-gpt/config.json' },
    gpt: { type: 'string' },
    attention: { type: 'string', default: 'kernel' },
  },
});

await setBackend(a.backend!);
const config = configFromHF(JSON.parse(readFileSync(a.config!, 'utf8')));
const B = Number(a.batch);
const T = config.blockSize;
const GPT: typeof DefaultGPT = a.gpt ? ((await import(resolve(a.gpt))) as { GPT: typeof DefaultGPT }).GPT : DefaultGPT;
const model = new GPT(config, { seed: 1, namePrefix: 'prof/' });
const vars = model.trainableVariables();
const opt = tf.train.adam(1e-4, 0.9, 0.95, 1e-8);
const rng = new Rng(7);
const rand = () => Int32Array.from({ length: B * T }, () => rng.int(config.vocabSize));
const x = tf.tensor2d(rand(), [B, T], 'int32');
const y = tf.tensor2d(rand(), [B, T], 'int32');

async function step(): Promise<number> {
  const loss = opt.minimize(() => model.loss(x, y), true, vars)!;
  const v = (await loss.data())[0];
  loss.dispose();
  return v;
}

if (!['kernel', 'tf', 'ab'].includes(a.attention!)) throw new Error(`--attention must be kernel, tf or ab`);
disableAttentionKernel(a.attention === 'tf');
if (a.attention === 'ab') {
  const times = { kernel: [] as number[], tf: [] as number[] };
  for (let i = 0; i < 2 * Number(a.steps) + 2; i++) {
    const which = i % 2 === 0 ? 'kernel' : 'tf';
    disableAttentionKernel(which === 'tf');
    const t0 = performance.now();
    await step();
    if (i >= 2) times[which].push(performance.now() - t0);
  }
  const med = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
  console.log(
    `attention A/B, ${a.steps} steps each, alternating: kernel median ${med(times.kernel).toFixed(1)} ms, TF.js ops median ${med(times.tf).toFixed(1)} ms`,
  );
  disableAttentionKernel(false);
}

// Warm-up (creates Adam's moments), then timed steps.
await step();
await step();
const before = tf.memory().numTensors;
const ms: number[] = [];
let lastLoss = 0;
for (let i = 0; i < Number(a.steps); i++) {
  const t0 = performance.now();
  lastLoss = await step();
  ms.push(performance.now() - t0);
}
const growth = tf.memory().numTensors - before;
ms.sort((p, q) => p - q);

// One profiled step: kernel list with per-kernel times.
const prof = await tf.profile(async () => {
  await step();
});
const byName = new Map<string, { n: number; ms: number; shapes: Map<string, { n: number; ms: number }> }>();
let kernelMs = 0;
for (const k of prof.kernels) {
  const t = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
  kernelMs += t;
  const e = byName.get(k.name) ?? { n: 0, ms: 0, shapes: new Map() };
  e.n++;
  e.ms += t;
  const sk = JSON.stringify(k.inputShapes);
  const s = e.shapes.get(sk) ?? { n: 0, ms: 0 };
  s.n++;
  s.ms += t;
  e.shapes.set(sk, s);
  byName.set(k.name, e);
}

console.log(
  `backend ${tf.getBackend()}, B${B}×T${T}, ${config.nLayer}L d${config.nEmbd} h${config.nHead} V${config.vocabSize}`,
);
console.log(
  `train step: median ${ms[Math.floor(ms.length / 2)].toFixed(1)} ms (min ${ms[0].toFixed(1)}, max ${ms[ms.length - 1].toFixed(1)}, n ${ms.length}), loss ${lastLoss.toFixed(4)}`,
);
console.log(
  `kernels/step ${prof.kernels.length}, summed kernel time ${kernelMs.toFixed(1)} ms, tensors growth ${growth}`,
);
const top = [...byName.entries()].sort((p, q) => q[1].ms - p[1].ms).slice(0, Number(a.top));
console.log('kernel                     count   total ms   top shapes (count, ms)');
for (const [name, e] of top) {
  const shapes = [...e.shapes.entries()]
    .sort((p, q) => q[1].ms - p[1].ms)
    .slice(0, 2)
    .map(([s, v]) => `${s} ×${v.n} ${v.ms.toFixed(1)}`)
    .join('; ');
  console.log(`${name.padEnd(26)} ${String(e.n).padStart(5)} ${e.ms.toFixed(1).padStart(10)}   ${shapes}`);
}
tf.dispose([x, y]);
opt.dispose();
model.dispose();
