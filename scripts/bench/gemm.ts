/**
 * Our dense product (src/lib/model/kernels/gemm.as.ts) against TF.js's, per product of the
 * default model's training step (4 layers × d128, B16 × T64 = 1024 rows, vocabulary 1281):
 * forward x·W, input gradient dY·Wᵀ and weight gradient xᵀ·dY, each as ops.ts computes it on
 * TF.js (explicit transpose, then matMul: XNNPACK, one thread in Node) and through our kernel
 * (copies in and out included), interleaved in one process, with GMAC/s and the largest
 * difference of the values. In Node 20 the relaxed-SIMD build needs a V8 flag:
 *
 *   npx tsx scripts/bench/gemm.ts [--repeats 10]                                  (plain SIMD)
 *   node --experimental-wasm-relaxed-simd --import tsx scripts/bench/gemm.ts       (fused multiply-add)
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { setBackend } from '../experiments/pipeline-common';
import { gemmBuild, matMulOurs } from '../../src/lib/model/kernels/gemm-kernel';

const { values: a } = parseArgs({ options: { repeats: { type: 'string', default: '10' } } });
const REPEATS = Number(a.repeats);
if (!(REPEATS >= 1)) throw new Error(`--repeats must be ≥ 1, got ${a.repeats}`);

await setBackend('wasm');
console.log(`our kernel: ${gemmBuild() ?? 'none'} build`);

function bestMs(f: () => tf.Tensor): number {
  const ms: number[] = [];
  for (let i = 0; i < REPEATS + 2; i++) {
    const t0 = performance.now();
    const o = f();
    o.dataSync();
    const dt = performance.now() - t0;
    o.dispose();
    if (i >= 2) ms.push(dt);
  }
  return Math.min(...ms); // the best run: the least disturbed by other work on a shared machine
}

// [rows, in, out, times per step]: c_attn, attn c_proj, mlp c_fc, mlp c_proj per layer; the LM head once.
const SHAPES: [number, number, number, number][] = [
  [1024, 128, 384, 4],
  [1024, 128, 128, 4],
  [1024, 128, 512, 4],
  [1024, 512, 128, 4],
  [1024, 128, 1281, 1],
];
const total = { tf: 0, ours: 0, best: 0 };
console.log('product (per step)                  TF.js ms  GMAC/s    ours ms  GMAC/s   max |Δ|/max|y|');
for (const [m, k, n, count] of SHAPES) {
  const X = tf.randomNormal([m, k]) as tf.Tensor2D;
  const W = tf.randomNormal([k, n]) as tf.Tensor2D;
  const dY = tf.randomNormal([m, n]) as tf.Tensor2D;
  for (const [name, theirs, ours] of [
    [`x·W     [${m},${k}]·[${k},${n}] ×${count}`, () => tf.matMul(X, W), () => matMulOurs(X, W)],
    [
      `dY·Wᵀ   [${m},${n}]·[${n},${k}] ×${count}`,
      () => tf.tidy(() => tf.matMul(dY, tf.transpose(W))),
      () => matMulOurs(dY, W, false, true),
    ],
    [
      `xᵀ·dY   [${k},${m}]·[${m},${n}] ×${count}`,
      () => tf.tidy(() => tf.matMul(tf.transpose(X), dY)),
      () => matMulOurs(X, dY, true, false),
    ],
  ] as const) {
    const y0 = theirs();
    const y1 = ours();
    const d = tf.tidy(() => tf.div(tf.max(tf.abs(tf.sub(y0, y1))), tf.max(tf.abs(y0))).dataSync()[0]);
    tf.dispose([y0, y1]);
    const msT = bestMs(theirs);
    const msO = bestMs(ours);
    const g = (ms: number) => ((m * k * n) / ms / 1e6).toFixed(1).padStart(6);
    console.log(
      `${name.padEnd(36)}${msT.toFixed(2).padStart(8)}  ${g(msT)}  ${msO.toFixed(2).padStart(8)}  ${g(msO)}   ${d.toExponential(1)}`,
    );
    total.tf += count * msT;
    total.ours += count * msO;
    total.best += count * Math.min(msT, msO);
  }
  tf.dispose([X, W, dY]);
}
console.log(
  `dense products of one step: TF.js ${total.tf.toFixed(0)} ms, ours ${total.ours.toFixed(0)} ms, the faster of the two per product ${total.best.toFixed(0)} ms`,
);
