/**
 * Issue #19 item 4: speed and memory of Hugging Face-sized models on the TF.js wasm backend, in
 * Node (one thread, as the browser without cross-origin isolation), random weights (timing only):
 *  - distilgpt2-shaped GPT-2: 6 layers, width 768, 12 heads, vocab 50257, 1024 positions (82M);
 *  - SmolLM2-135M-shaped Llama: 30 layers, hidden 576, 9 heads, 3 kv heads, SwiGLU 1536,
 *    vocab 49152, rope_theta 100000, tied head (135M).
 * Per model: KV-cached sampling tokens/s (batch 1 and 8, 32 new tokens after a 4-token prompt),
 * one full training step (B4 × T64: forward, backward, Adam) in seconds, and memory: TF.js
 * `tf.memory().numBytes` after each phase, the peak bytes of one training step (`tf.profile`, on
 * the warm-up step, so the timed steps run unprofiled), and the wasm heap (it only grows, so its
 * size after a phase is the high-water mark so far). Not the browser worker path of `npm run
 * bench`: the same library code (GPT, generate, Adam) on the same backend, without the page.
 * Each time is given as wall-clock and as this process's CPU time (`process.cpuUsage`, user +
 * system): on a shared, busy machine the CPU time is what one free core would take.
 *
 *   nice npx tsx scripts/bench/hf-shapes.ts [--models distilgpt2,smollm2] [--repeats 2]
 *     [--new-tokens 32] [--batches 1,8] [--train-batch 4] [--train-t 64] [--out bench/hf-shapes.json]
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { setBackend } from '../experiments/pipeline-common';
import type { GPTConfig } from '../../src/lib/model/config';
import { GPT } from '../../src/lib/model/gpt';
import { Rng } from '../../src/lib/model/rng';
import { generate } from '../../src/lib/model/sampling';
import { setGemmPolicy } from '../../src/lib/model/kernels/gemm-kernel';
import { disableAttentionKernel } from '../../src/lib/model/kernels/attention-kernel';

const { values: a } = parseArgs({
  options: {
    models: { type: 'string', default: 'distilgpt2,smollm2' },
    repeats: { type: 'string', default: '2' },
    'new-tokens': { type: 'string', default: '32' },
    batches: { type: 'string', default: '1,8' },
    'train-batch': { type: 'string', default: '4' },
    'train-t': { type: 'string', default: '64' },
    out: { type: 'string', default: 'bench/hf-shapes.json' },
    'no-sample': { type: 'boolean', default: false },
    'no-profile': { type: 'boolean', default: false },
    /** A/B of memory: TF.js ops instead of our dense-product / attention kernels. */
    'no-gemm': { type: 'boolean', default: false },
    'no-attention-kernel': { type: 'boolean', default: false },
  },
});

/** The two shapes of the issue, as their Hugging Face config.json files give them. */
const SHAPES: Record<string, GPTConfig> = {
  distilgpt2: { vocabSize: 50257, blockSize: 1024, nLayer: 6, nHead: 12, nEmbd: 768, layerNormEps: 1e-5 },
  smollm2: {
    arch: 'llama',
    vocabSize: 49152,
    blockSize: 8192,
    nLayer: 30,
    nHead: 9,
    nKvHead: 3,
    nEmbd: 576,
    intermediateSize: 1536,
    ropeTheta: 100000,
    tieWordEmbeddings: true,
    layerNormEps: 1e-5,
  },
};

const repeats = Number(a.repeats);
const newTokens = Number(a['new-tokens']);
const batches = a['no-sample'] ? [] : a.batches!.split(',').map(Number);
const TB = Number(a['train-batch']);
const TT = Number(a['train-t']);

await setBackend('wasm');
if (a['no-gemm']) setGemmPolicy('never');
disableAttentionKernel(!!a['no-attention-kernel']);

/** Bytes of the wasm backend's heap (its ArrayBuffer), or null when the backend hides it. */
function wasmHeapBytes(): number | null {
  const w = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm;
  return w?.HEAPU8?.buffer.byteLength ?? null;
}

const mb = (n: number | null) => (n === null ? 'n/a' : `${(n / 2 ** 20).toFixed(0)} MiB`);
/** Seconds of CPU this process used since `from` (user + system). */
const cpuSince = (from: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1e6;
};
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];

interface ModelReport {
  model: string;
  params: number;
  sample: {
    batch: number;
    newTokens: number;
    ms: number[];
    cpuMs: number[];
    tokensPerSecond: number;
    tokensPerCpuSecond: number;
  }[];
  train: {
    batch: number;
    T: number;
    seconds: number[];
    cpuSeconds: number[];
    medianSeconds: number;
    medianCpuSeconds: number;
    losses: number[];
  };
  memory: {
    bytesAfterInit: number;
    bytesAfterSampling: number;
    trainStepPeakBytes: number;
    bytesAfterTraining: number;
    wasmHeapAfterInit: number | null;
    wasmHeapAfterSampling: number | null;
    wasmHeapAfterTraining: number | null;
    rssAfterTraining: number;
  };
}

async function benchModel(name: string): Promise<ModelReport> {
  const config = SHAPES[name];
  if (!config) throw new Error(`Unknown model "${name}"; choose from ${Object.keys(SHAPES).join(', ')}.`);
  let t = Date.now();
  const model = new GPT(config, { seed: 1, namePrefix: `${name}/` });
  const params = model.numParams();
  console.log(`${name}: ${(params / 1e6).toFixed(1)}M parameters, init ${((Date.now() - t) / 1000).toFixed(1)} s`);
  const bytesAfterInit = tf.memory().numBytes;
  const wasmHeapAfterInit = wasmHeapBytes();
  const rng = new Rng(3);
  const V = config.vocabSize;

  const sample: ModelReport['sample'] = [];
  for (const batch of batches) {
    const prompts = Array.from({ length: batch }, () => Array.from({ length: 4 }, () => rng.int(V)));
    const opts = { maxNewTokens: newTokens, temperature: 1, seed: 1, stopAtEot: false, useCache: true };
    await generate(model, prompts, { ...opts, maxNewTokens: 2 }, 0); // warm-up (kernels, cache shapes)
    const ms: number[] = [];
    const cpuMs: number[] = [];
    for (let r = 0; r < repeats; r++) {
      t = performance.now();
      const c = process.cpuUsage();
      await generate(model, prompts, opts, 0);
      ms.push(performance.now() - t);
      cpuMs.push(cpuSince(c) * 1000);
    }
    const tokensPerSecond = (batch * newTokens) / (median(ms) / 1000);
    const tokensPerCpuSecond = (batch * newTokens) / (median(cpuMs) / 1000);
    sample.push({ batch, newTokens, ms, cpuMs, tokensPerSecond, tokensPerCpuSecond });
    console.log(
      `${name}: sample b${batch} × ${newTokens} cached: wall ${ms.map((x) => x.toFixed(0)).join(', ')} ms → ${tokensPerSecond.toFixed(2)} tokens/s; CPU ${cpuMs.map((x) => x.toFixed(0)).join(', ')} ms → ${tokensPerCpuSecond.toFixed(2)} tokens/CPU-s`,
    );
  }
  const bytesAfterSampling = tf.memory().numBytes;
  const wasmHeapAfterSampling = wasmHeapBytes();

  const vars = model.trainableVariables();
  const opt = tf.train.adam(1e-4, 0.9, 0.95, 1e-8);
  const tokens = () =>
    tf.tensor2d(
      Int32Array.from({ length: TB * TT }, () => rng.int(V)),
      [TB, TT],
      'int32',
    );
  const x = tokens();
  const y = tokens();
  const losses: number[] = [];
  const step = async () => {
    const loss = opt.minimize(() => model.loss(x, y), true, vars)!;
    losses.push((await loss.data())[0]);
    loss.dispose();
  };
  // Warm-up step under tf.profile: its peak is the step's high-water mark of TF.js tensor bytes
  // (Adam's moments are created here too, so this is the first step's, the largest).
  t = performance.now();
  console.log(
    `${name}: before training: tf ${mb(tf.memory().numBytes)} in ${tf.memory().numTensors} tensors, wasm heap ${mb(wasmHeapBytes())}`,
  );
  let prof: { peakBytes: number };
  try {
    prof = a['no-profile'] ? (await step(), { peakBytes: NaN }) : await tf.profile(step);
  } catch (e) {
    // Out of wasm memory shows as a RuntimeError from inside the backend: say where it stood.
    console.log(
      `${name}: training step FAILED (${(e as Error).message.split('\n')[0]}): tf ${mb(tf.memory().numBytes)} in ${tf.memory().numTensors} tensors, wasm heap ${mb(wasmHeapBytes())}`,
    );
    throw e;
  }
  console.log(
    `${name}: warm-up train step (profiled) ${((performance.now() - t) / 1000).toFixed(1)} s, peak ${mb(prof.peakBytes)}`,
  );
  const seconds: number[] = [];
  const cpuSeconds: number[] = [];
  for (let r = 0; r < repeats; r++) {
    t = performance.now();
    const c = process.cpuUsage();
    await step();
    seconds.push((performance.now() - t) / 1000);
    cpuSeconds.push(cpuSince(c));
  }
  console.log(
    `${name}: train step B${TB}×T${TT} (fwd+bwd+Adam): wall ${seconds.map((s) => s.toFixed(2)).join(', ')} s, CPU ${cpuSeconds.map((s) => s.toFixed(2)).join(', ')} s; losses ${losses.map((l) => l.toFixed(3)).join(', ')}`,
  );
  const memory: ModelReport['memory'] = {
    bytesAfterInit,
    bytesAfterSampling,
    trainStepPeakBytes: prof.peakBytes,
    bytesAfterTraining: tf.memory().numBytes,
    wasmHeapAfterInit,
    wasmHeapAfterSampling,
    wasmHeapAfterTraining: wasmHeapBytes(),
    rssAfterTraining: process.memoryUsage().rss,
  };
  console.log(
    `${name}: memory: tf bytes init ${mb(memory.bytesAfterInit)}, after sampling ${mb(memory.bytesAfterSampling)}, ` +
      `train-step peak ${mb(memory.trainStepPeakBytes)}, after training ${mb(memory.bytesAfterTraining)}; wasm heap ` +
      `${mb(memory.wasmHeapAfterInit)} → ${mb(memory.wasmHeapAfterSampling)} → ${mb(memory.wasmHeapAfterTraining)}; RSS ${mb(memory.rssAfterTraining)}`,
  );
  tf.dispose([x, y]);
  opt.dispose();
  model.dispose();
  return {
    model: name,
    params,
    sample,
    train: {
      batch: TB,
      T: TT,
      seconds,
      cpuSeconds,
      medianSeconds: median(seconds),
      medianCpuSeconds: median(cpuSeconds),
      losses,
    },
    memory,
  };
}

const reports: ModelReport[] = [];
for (const name of a.models!.split(',')) reports.push(await benchModel(name.trim()));
mkdirSync(dirname(a.out!), { recursive: true });
writeFileSync(
  a.out!,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      backend: 'wasm (Node, 1 thread)',
      tfjs: '4.22.0',
      loadavg: os.loadavg(),
      reports,
    },
    null,
    2,
  ) + '\n',
);
console.log(`wrote ${a.out}`);
