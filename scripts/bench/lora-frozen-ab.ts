/**
 * A/B in one process: one LoRA training step (forward, backward over the adapters, Adam on the
 * adapters) with the frozen-base projection `linearFrozen` (src/lib/model/ops.ts: gradient dx
 * only) against the previous path (`linear` / `matMul`, whose custom gradient also computes
 * dW = xᵀ·dY and db for the frozen W, thrown away by the tape). Same model, same shapes, the
 * two paths alternated (A B A B …) so load drift hits both; wall and process CPU time.
 * The "before" path is the previous `GPT.linear` / `GPT.head` code, put back on the prototype
 * for its turns (GPT-2 models; a Llama model's projections also go through `GPT.linear`).
 *
 *   nice -n 10 npx tsx scripts/bench/lora-frozen-ab.ts [--model distilgpt2|smollm2] [--batch 4] [--t 64]
 *     [--repeats 3] [--targets c_attn,c_proj,c_fc]
 *
 * Measured (wasm, Node, 1 thread; random weights): see the commit message and issue #19's report.
 */
import * as tf from '@tensorflow/tfjs-core';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { setBackend } from '../experiments/pipeline-common';
import { GPT } from '../../src/lib/model/gpt';
import { linear, matMul } from '../../src/lib/model/ops';
import { Rng } from '../../src/lib/model/rng';
import { HF_SHAPES } from './hf-shapes-config';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: 'distilgpt2' },
    batch: { type: 'string', default: '4' },
    t: { type: 'string', default: '64' },
    repeats: { type: 'string', default: '3' },
    targets: { type: 'string', default: '' },
  },
});
const config = HF_SHAPES[a.model!];
if (!config) throw new Error(`Unknown model ${a.model}; choose from ${Object.keys(HF_SHAPES).join(', ')}`);
const B = Number(a.batch);
const T = Number(a.t);
const repeats = Number(a.repeats);

await setBackend('wasm');
console.log(
  `uptime: ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')} (${os.cpus().length} cores)`,
);

type Proto = Record<string, (...args: unknown[]) => unknown>;
const proto = GPT.prototype as unknown as Proto;
const after = { linear: proto.linear, head: proto.head };
/** The code of GPT.linear / GPT.head before linearFrozen (commit 6a8f791). */
const before = {
  linear(this: Proto & { params: Map<string, tf.Variable>; lora: GPT['lora'] }, x: tf.Tensor2D, name: string) {
    const w = this.p(name + '.weight') as tf.Tensor2D;
    const b = this.params.get(name + '.bias');
    const y = b ? linear(x, w, b as tf.Tensor as tf.Tensor1D) : matMul(x, w);
    return this.lora ? this.lora.apply(name, x, y) : y;
  },
  head(this: Proto, x: tf.Tensor2D, cache?: unknown) {
    const hidden = this.layerNorm(x, 'transformer.ln_f') as tf.Tensor2D;
    return { hidden, logits: matMul(hidden, this.tiedHeadT('transformer.wte.weight', cache) as tf.Tensor2D) };
  },
};
const use = (path: 'before' | 'after') => {
  const m = path === 'before' ? before : after;
  proto.linear = m.linear as Proto[string];
  proto.head = m.head as Proto[string];
};

let t0 = performance.now();
const model = new GPT(config, { seed: 1, namePrefix: 'ab/' });
const targets = a.targets ? a.targets.split(',') : null;
const lora = model.addAdapters({ r: 8, alpha: 16, dropout: 0.05, targetModules: targets }, 1);
console.log(
  `${a.model}: ${(model.numParams() / 1e6).toFixed(1)}M parameters, LoRA r8 on ${lora.targetModules.join(',')} ` +
    `(${lora.numParams()} trainable), init ${((performance.now() - t0) / 1000).toFixed(1)} s; step B${B}×T${T}`,
);
const rng = new Rng(3);
const ids = () =>
  tf.tensor2d(
    Int32Array.from({ length: B * T }, () => rng.int(config.vocabSize)),
    [B, T],
    'int32',
  );
const x = ids();
const y = ids();
const vars = model.trainableVariables();
const opt = tf.train.adam(1e-4);

async function step(): Promise<{ wall: number; cpu: number; loss: number }> {
  t0 = performance.now();
  const c = process.cpuUsage();
  const loss = opt.minimize(() => model.inTraining(() => model.loss(x, y)), true, vars)!;
  const l = (await loss.data())[0];
  loss.dispose();
  const d = process.cpuUsage(c);
  return { wall: (performance.now() - t0) / 1000, cpu: (d.user + d.system) / 1e6, loss: l };
}

const res: Record<'before' | 'after', { wall: number[]; cpu: number[] }> = {
  before: { wall: [], cpu: [] },
  after: { wall: [], cpu: [] },
};
for (const path of ['before', 'after'] as const) {
  use(path);
  // Warm-up (kernels, shapes, Adam's moments), profiled: its tf.memory peak above the bytes held
  // before the step is the step's own high-water mark (saved activations, gradients).
  const held = tf.memory().numBytes;
  let w = { wall: 0, cpu: 0, loss: 0 };
  const prof = await tf.profile(async () => {
    w = await step();
  });
  console.log(
    `warm-up ${path}: ${w.wall.toFixed(2)} s wall, loss ${w.loss.toFixed(4)}; step peak ` +
      `${((prof.peakBytes - held) / 2 ** 20).toFixed(0)} MiB above the ${(held / 2 ** 20).toFixed(0)} MiB held`,
  );
}
for (let r = 0; r < repeats; r++)
  for (const path of (r % 2 ? ['after', 'before'] : ['before', 'after']) as ('before' | 'after')[]) {
    use(path);
    const s = await step();
    res[path].wall.push(s.wall);
    res[path].cpu.push(s.cpu);
    console.log(`${path}: ${s.wall.toFixed(2)} s wall, ${s.cpu.toFixed(2)} s CPU`);
  }
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
for (const path of ['before', 'after'] as const)
  console.log(
    `${path}: median ${median(res[path].wall).toFixed(2)} s wall, ${median(res[path].cpu).toFixed(2)} s CPU per step`,
  );
console.log(
  `CPU time after/before: ${(median(res.after.cpu) / median(res.before.cpu)).toFixed(2)}; ` +
    `uptime now: ${os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')}`,
);
tf.dispose([x, y]);
opt.dispose();
model.dispose();
