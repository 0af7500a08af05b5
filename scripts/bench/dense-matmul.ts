/**
 * The floor under our training step on wasm: the plain 2-D matMuls of the default model
 * (4 layers × d128, B16 × T64 = 1024 rows, vocabulary 1281), forward and both gradient products,
 * timed one by one on TF.js's wasm backend (XNNPACK, SIMD, one thread), with their
 * multiply-adds per second. Their sum is what a step costs at least, whatever else is made fast.
 *
 *   npx tsx scripts/bench/dense-matmul.ts [--repeats 20]
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { setBackend } from '../experiments/pipeline-common';

const { values: a } = parseArgs({ options: { repeats: { type: 'string', default: '20' } } });
const REPEATS = Number(a.repeats);
if (!(REPEATS >= 1)) throw new Error(`--repeats must be ≥ 1, got ${a.repeats}`);

await setBackend('wasm');

async function time(f: () => tf.Tensor): Promise<number> {
  for (let i = 0; i < 3; i++) {
    const o = f();
    await o.data();
    o.dispose();
  }
  const ms: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const t0 = performance.now();
    const o = f();
    await o.data();
    o.dispose();
    ms.push(performance.now() - t0);
  }
  return ms.sort((p, q) => p - q)[Math.floor(ms.length / 2)];
}

// [rows, in, out, times per step]: c_attn, attn c_proj, mlp c_fc, mlp c_proj per layer; the LM head once.
const SHAPES: [number, number, number, number][] = [
  [1024, 128, 384, 4],
  [1024, 128, 128, 4],
  [1024, 128, 512, 4],
  [1024, 512, 128, 4],
  [1024, 128, 1281, 1],
];
let totalMs = 0;
let totalMacs = 0;
console.log('product (per step)               median ms   GMAC/s');
for (const [m, k, n, count] of SHAPES) {
  const A = tf.randomNormal([m, k]);
  const W = tf.randomNormal([k, n]);
  const dY = tf.randomNormal([m, n]);
  const WT = tf.transpose(W);
  const AT = tf.transpose(A);
  // Forward x·W, input gradient dY·Wᵀ, weight gradient Aᵀ·dY (transposes made beforehand, as ops.ts does).
  for (const [name, f] of [
    [`x·W     [${m},${k}]·[${k},${n}] ×${count}`, () => tf.matMul(A, W)],
    [`dY·Wᵀ   [${m},${n}]·[${n},${k}] ×${count}`, () => tf.matMul(dY, WT)],
    [`xᵀ·dY   [${k},${m}]·[${m},${n}] ×${count}`, () => tf.matMul(AT, dY)],
  ] as const) {
    const ms = await time(f);
    console.log(`${name.padEnd(34)} ${ms.toFixed(2).padStart(8)}   ${((m * k * n) / ms / 1e6).toFixed(1).padStart(6)}`);
    totalMs += count * ms;
    totalMacs += count * m * k * n;
  }
  tf.dispose([A, W, dY, WT, AT]);
}
console.log(
  `all dense products of one step: ${(totalMacs / 1e9).toFixed(2)} GMAC in ${totalMs.toFixed(0)} ms (${(totalMacs / totalMs / 1e6).toFixed(1)} GMAC/s)`,
);
