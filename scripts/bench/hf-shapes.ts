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
 * With LoRA (`--rl grpo,ppo`, the default): seconds per iteration of the real trainers
 * (src/lib/rlhf/grpo.ts GrpoTrainer, ppo.ts PpoTrainer; PEFT's default adapters: r 8, α 16,
 * dropout 0.05 on c_attn / q_proj,v_proj; the reference is the policy with adapters off; PPO's
 * value head on the frozen trunk), at settings a user would pick for such a model: GRPO 2
 * prompts × G 4 (batch 8: the app's default 16 ran out of wasm's 4 GB heap on distilgpt2, tf at
 * 2.8 GB, in its first iteration), PPO batch 8 (its defaults otherwise: 4 epochs × 2
 * minibatches), 32 new tokens, 16-token prompts, the tables' other defaults; the reward a JS
 * function (no reward model). The first iteration is the warm-up (profiled: its tf.memory peak); then the model
 * card's estimate (src/lib/rlhf/iteration-estimate.ts, from pieces timed as the app times them:
 * src/lib/engine/lora-timing.ts) is printed against the measured iteration.
 *
 *   nice npx tsx scripts/bench/hf-shapes.ts [--models distilgpt2,smollm2] [--repeats 2]
 *     [--new-tokens 32] [--batches 1,8] [--train-batch 4] [--train-t 64] [--out bench/hf-shapes.json]
 *     [--no-sample] [--no-train] [--rl grpo,ppo] [--rl-iterations 2] [--rl-new-tokens 32]
 *     [--prompt-tokens 16] [--grpo-batch 8] [--grpo-g 4] [--ppo-batch 8] [--cpu-pieces]
 *
 * The full-weight training step (B4 × T64, Adam on every weight) does not fit wasm's 4 GB heap at
 * these sizes (it ran out at 4096 MiB for both in session 8): use --no-train.
 *
 * Measured with LoRA (wasm, Node, 1 thread, random weights; 2026-12-03 on the shared 2-core machine,
 * `uptime` load 9–17, so wall-clock is mostly waiting: the CPU seconds are what one free core
 * takes). Per iteration, after a warm-up one:
 *  - distilgpt2 (82M), GRPO 2 prompts × G 4, 32 new tokens: 22.0 CPU-s (206 s wall); first
 *    iteration's tf peak 2863 MiB, wasm heap high-water 2987 MiB. The app's default batch 16 ran
 *    out of the 4 GB heap (tf 2779 MiB when it failed).
 *  - distilgpt2, PPO batch 8, 32 new tokens, 4 epochs × 2 minibatches: 63.5 CPU-s (186 s wall);
 *    tf peak 2014 MiB, heap 2987 MiB.
 *  - The model card's estimate, pieces timed in wall seconds in the same process: GRPO 253 s
 *    against 206 s measured (×1.23), PPO 239 s against 186 s (×1.28); sampling 0.40 s per step
 *    of 8 rows (20 tokens/s) while PPO ran.
 *  - Again at load 4–7, --no-profile --cpu-pieces: GRPO 20.7 CPU-s (32 s wall), PPO 56.9 CPU-s
 *    (69 s wall); sampling 0.115 CPU-s per step of 8 rows (70 tokens per CPU-s). The estimate
 *    with forward and step scaled from 2 rows by B / rows: GRPO ×1.29, PPO ×1.39; hence the line
 *    through 1 and 2 rows (src/lib/rlhf/iteration-estimate.ts), load 3: GRPO 20.6 against 20.2
 *    CPU-s (×1.02), PPO 61.8 against 54.6 CPU-s (×1.13); wall 21.3 s and 57.5 s.
 *  - smollm2 (135M), GRPO 1 prompt × G 2 (batch 2), 32 new tokens: 13.2 CPU-s (24 s wall);
 *    tf peak 2855 MiB, heap high-water 3246 MiB. Batch 4 (1 prompt × G 4) and batch 8 ran out of
 *    the 4 GB heap in the first update (tf 2224 / 2716 MiB when they failed). The estimate, pieces
 *    timed in CPU seconds (--cpu-pieces): 13.2 s against 13.2 s measured (×1.00); sampling
 *    0.079 CPU-s per step of 2 rows.
 *  - smollm2, PPO batch 4 (4 epochs × 2 minibatches of 2 rows), 32 new tokens, --no-profile
 *    (tf.profile of a 30-layer PPO iteration overflowed the call stack): 67.1 and 65.8 CPU-s in
 *    two runs (156 s / 77 s wall, load 8–12); heap high-water 3530 MiB. The estimate in CPU
 *    seconds (then still scaled from 2 rows by B / rows): 70.9 s against 65.8 s (×1.08);
 *    sampling 0.101 CPU-s per step of 4 rows.
 * So on wasm a GRPO/PPO run with LoRA on these models needs small batches (the app's default 16
 * does not fit); the memory plan (src/lib/model/memory.ts: W + k·A) counts neither the trainer's
 * copy of the weights nor the activations, which dominate at a 50k vocabulary.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { setBackend } from '../experiments/pipeline-common';
import { HF_SHAPES } from './hf-shapes-config';
import { GPT } from '../../src/lib/model/gpt';
import { Rng } from '../../src/lib/model/rng';
import { generate } from '../../src/lib/model/sampling';
import { setGemmPolicy } from '../../src/lib/model/kernels/gemm-kernel';
import { disableAttentionKernel } from '../../src/lib/model/kernels/attention-kernel';
import { GrpoTrainer } from '../../src/lib/rlhf/grpo';
import type { GrpoConfig } from '../../src/lib/rlhf/grpo-config';
import { PpoTrainer, type PpoTokenizer, type RewardSource } from '../../src/lib/rlhf/ppo';
import type { PpoConfig } from '../../src/lib/rlhf/ppo-config';
import { timeLoraPieces } from '../../src/lib/engine/lora-timing';
import {
  grpoIterationSeconds,
  ppoIterationSeconds,
  type GrpoEstimateSettings,
  type LoraTimings,
  type PpoEstimateSettings,
} from '../../src/lib/rlhf/iteration-estimate';

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
    /** Skip the full-weight training step (at these sizes it does not fit wasm's 4 GB heap). */
    'no-train': { type: 'boolean', default: false },
    /** Trainers to time with LoRA (GrpoTrainer, PpoTrainer), comma-separated; '' = none. */
    rl: { type: 'string', default: 'grpo,ppo' },
    'rl-iterations': { type: 'string', default: '2' },
    'rl-new-tokens': { type: 'string', default: '32' },
    'prompt-tokens': { type: 'string', default: '16' },
    'grpo-batch': { type: 'string', default: '8' },
    'grpo-g': { type: 'string', default: '4' },
    'ppo-batch': { type: 'string', default: '8' },
    /** Time the estimate's pieces in CPU seconds and compare with the iterations' CPU seconds. */
    'cpu-pieces': { type: 'boolean', default: false },
    /** A/B of memory: TF.js ops instead of our dense-product / attention kernels. */
    'no-gemm': { type: 'boolean', default: false },
    'no-attention-kernel': { type: 'boolean', default: false },
  },
});

/** The two shapes of the issue (./hf-shapes-config.ts). */
const SHAPES = HF_SHAPES;

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
  rl: RlReport[];
  /** Null with --no-train. */
  train: {
    batch: number;
    T: number;
    seconds: number[];
    cpuSeconds: number[];
    medianSeconds: number;
    medianCpuSeconds: number;
    losses: number[];
  } | null;
  memory: {
    bytesAfterInit: number;
    bytesAfterSampling: number;
    trainStepPeakBytes: number | null;
    bytesAfterTraining: number | null;
    wasmHeapAfterInit: number | null;
    wasmHeapAfterSampling: number | null;
    wasmHeapAfterTraining: number | null;
    rssAfterTraining: number;
  };
}

/** One trainer's iterations with LoRA (PEFT defaults: r 8, α 16, dropout 0.05, default targets). */
interface RlReport {
  algo: 'grpo' | 'ppo';
  settings: Record<string, unknown>;
  promptTokens: number;
  /** Per iteration (the first one is the warm-up, profiled unless --no-profile). */
  iterations: {
    wall: number;
    cpu: number;
    rolloutSeconds: number;
    updateSeconds: number;
    tfBytesAfter: number;
    wasmHeapAfter: number | null;
  }[];
  /** Median of the iterations after the first. */
  medianSeconds: number;
  medianCpuSeconds: number;
  /** tf.profile's peak tensor bytes of the first iteration (NaN with --no-profile). */
  peakBytes: number;
  wasmHeapHighWater: number | null;
  /** The model card's pieces, timed after the iterations, and its estimate from them. */
  pieces: LoraTimings;
  estimateSeconds: number;
}

const rlAlgos = a.rl ? (a.rl.split(',').map((x) => x.trim()) as ('grpo' | 'ppo')[]) : [];
const rlIterations = Number(a['rl-iterations']);
const rlNewTokens = Number(a['rl-new-tokens']);
const promptTokens = Number(a['prompt-tokens']);

/**
 * Seconds per GRPO or PPO iteration with LoRA on `model` (the real trainers: each clones the
 * model as its policy and puts the adapters on the clone; the reference is the clone with its
 * adapters off; PPO's value head sits on the frozen trunk). Prompts are random text of
 * `promptTokens` characters through a one-token-per-character tokenizer (random weights never
 * stop early, so every completion is `rlNewTokens` long: the worst case). Reward: a JS function
 * (the fraction of even token ids), as a rule-based reward would be; no reward model.
 */
async function benchRl(name: string, model: GPT, algo: 'grpo' | 'ppo'): Promise<RlReport> {
  const V = model.config.vocabSize;
  const tokenizer: PpoTokenizer = {
    eotId: V - 1,
    encode: (text) => [...text].map((ch) => (ch.charCodeAt(0) * 7919) % (V - 1)),
    decode: (ids) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join(''),
  };
  const rng = new Rng(11);
  const prompts = Array.from({ length: 64 }, () =>
    Array.from({ length: promptTokens }, () => String.fromCharCode(97 + rng.int(26))).join(''),
  );
  const reward: RewardSource = {
    score: async (batch) =>
      batch.map((x) => x.responseIds.filter((i) => i % 2 === 0).length / Math.max(1, x.responseIds.length)),
  };
  const lora = { lora: true };
  let settings: Record<string, unknown>;
  let iterate: () => Promise<{ rolloutSeconds: number; updateSeconds: number }>;
  let dispose: () => void;
  if (algo === 'grpo') {
    const config: Partial<GrpoConfig> = {
      ...lora,
      batchSize: Number(a['grpo-batch']),
      numGenerations: Number(a['grpo-g']),
      maxCompletionLength: rlNewTokens,
    };
    const t = new GrpoTrainer({ model, reward, tokenizer, prompts, config });
    settings = { ...t.config };
    iterate = async () => {
      const r = await t.iteration();
      return { rolloutSeconds: r.rollout.seconds, updateSeconds: r.update.seconds };
    };
    dispose = () => t.dispose();
  } else {
    const config: Partial<PpoConfig> = { ...lora, batchSize: Number(a['ppo-batch']), maxNewTokens: rlNewTokens };
    const t = new PpoTrainer({ model, reward, tokenizer, prompts, config });
    settings = { ...t.config };
    iterate = async () => {
      const r = await t.iteration();
      return { rolloutSeconds: r.rollout.seconds, updateSeconds: r.update.seconds };
    };
    dispose = () => t.dispose();
  }
  const iterations: RlReport['iterations'] = [];
  let peakBytes = NaN;
  for (let i = 0; i < rlIterations; i++) {
    const t0 = performance.now();
    const c = process.cpuUsage();
    let phases: { rolloutSeconds: number; updateSeconds: number };
    try {
      if (i === 0 && !a['no-profile']) {
        let out: typeof phases | undefined;
        const prof = await tf.profile(async () => {
          out = await iterate();
        });
        peakBytes = prof.peakBytes;
        phases = out!;
      } else phases = await iterate();
    } catch (e) {
      console.log(
        `${name}: ${algo} iteration ${i} FAILED (${(e as Error).message.split('\n')[0]}): tf ${mb(tf.memory().numBytes)}, wasm heap ${mb(wasmHeapBytes())}`,
      );
      dispose();
      throw e;
    }
    const it = {
      wall: (performance.now() - t0) / 1000,
      cpu: cpuSince(c),
      ...phases,
      tfBytesAfter: tf.memory().numBytes,
      wasmHeapAfter: wasmHeapBytes(),
    };
    iterations.push(it);
    console.log(
      `${name}: ${algo} LoRA iteration ${i}${i === 0 ? ' (warm-up' + (a['no-profile'] ? '' : ', profiled') + ')' : ''}: ` +
        `wall ${it.wall.toFixed(1)} s (rollout ${it.rolloutSeconds.toFixed(1)} s, update ${it.updateSeconds.toFixed(1)} s), ` +
        `CPU ${it.cpu.toFixed(1)} s; tf ${mb(it.tfBytesAfter)}, wasm heap ${mb(it.wasmHeapAfter)}; load ${os.loadavg()[0].toFixed(1)}`,
    );
  }
  dispose();
  const timed = iterations.length > 1 ? iterations.slice(1) : iterations;
  // The model card's estimate (src/lib/rlhf/iteration-estimate.ts) from the pieces timed as the
  // app times them (src/lib/engine/lora-timing.ts), against the iterations just measured.
  const t0 = performance.now();
  // On a shared machine wall-clock time follows the load; with --cpu-pieces the pieces are timed
  // in this process's CPU time (performance.now swapped for it while they run) and compared with
  // the iterations' CPU time: what one free core would take, which is what a user's tab sees.
  const wallNow = performance.now.bind(performance);
  if (a['cpu-pieces']) {
    const c0 = process.cpuUsage();
    performance.now = () => {
      const d = process.cpuUsage(c0);
      return (d.user + d.system) / 1000;
    };
  }
  let pieces: LoraTimings;
  try {
    pieces = await timeLoraPieces(model, {
      batch: settings.batchSize as number,
      promptTokens,
      newTokens: rlNewTokens,
      temperature: settings.temperature as number,
    });
  } finally {
    performance.now = wallNow;
  }
  const estimate =
    algo === 'grpo'
      ? grpoIterationSeconds(pieces, settings as unknown as GrpoEstimateSettings)
      : ppoIterationSeconds(pieces, settings as unknown as PpoEstimateSettings);
  const measured = median(timed.map((x) => (a['cpu-pieces'] ? x.cpu : x.wall)));
  console.log(
    `${name}: ${algo} estimate from timed pieces (${((performance.now() - t0) / 1000).toFixed(0)} s to time; ` +
      `${a['cpu-pieces'] ? 'CPU' : 'wall'} seconds): ` +
      `prefill ${pieces.prefill.toFixed(2)} s, decode ${pieces.decode.toFixed(3)} s/step, on ${pieces.rows} rows: forward ` +
      `${pieces.forward.toFixed(2)} s, train step ${pieces.trainStep.toFixed(2)} s → ${estimate.toFixed(1)} s per iteration; measured ${measured.toFixed(1)} s ` +
      `(estimate/measured ${(estimate / measured).toFixed(2)}; load ${os.loadavg()[0].toFixed(1)})`,
  );
  const report: RlReport = {
    algo,
    settings,
    promptTokens,
    iterations,
    medianSeconds: median(timed.map((x) => x.wall)),
    medianCpuSeconds: median(timed.map((x) => x.cpu)),
    peakBytes,
    wasmHeapHighWater: wasmHeapBytes(),
    pieces,
    estimateSeconds: estimate,
  };
  console.log(
    `${name}: ${algo} with LoRA: ${report.medianSeconds.toFixed(1)} s per iteration (CPU ${report.medianCpuSeconds.toFixed(1)} s); ` +
      `first iteration's tf peak ${mb(peakBytes)}; wasm heap high-water ${mb(report.wasmHeapHighWater)}`,
  );
  return report;
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

  const rl: RlReport[] = [];
  for (const algo of rlAlgos) rl.push(await benchRl(name, model, algo));
  if (a['no-train']) {
    const memory: ModelReport['memory'] = {
      bytesAfterInit,
      bytesAfterSampling,
      trainStepPeakBytes: null,
      bytesAfterTraining: null,
      wasmHeapAfterInit,
      wasmHeapAfterSampling,
      wasmHeapAfterTraining: wasmHeapBytes(),
      rssAfterTraining: process.memoryUsage().rss,
    };
    model.dispose();
    return { model: name, params, sample, rl, train: null, memory };
  }

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
    rl,
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
mkdirSync(dirname(a.out!), { recursive: true });
// Written after each model, so a later model's failure (e.g. out of wasm memory) keeps the rest.
for (const name of a.models!.split(',')) {
  reports.push(await benchModel(name.trim()));
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
}
