/**
 * Times the pieces of a GRPO / PPO iteration with LoRA on the loaded model, on the active
 * backend, for the model card's "expect about N s per iteration here"
 * (`../rlhf/iteration-estimate.ts` puts them together). Runs in the worker as a cancellable job.
 *
 * On a frozen copy of the model with LoRA adapters (the trainers train a copy too; the loaded
 * model is never touched), with random tokens that never end early:
 *  - sampling: `generate` of `batch` rows, timing each step through its `onStep` (the first step
 *    is the prefill and the first token; the later ones are cached decode steps; their median);
 *  - forward: the trainers' log-probs of the completion tokens (`logprobsOfTokens`), no gradient;
 *  - training step: the trainers' forward in training mode, log-probs and entropy
 *    (`logprobsAndEntropyT`), gradients of the adapters only and one Adam step (`Adam`, PPO_ADAM);
 *  forward and training step on a few of the batch's rows ({@link timingRows}): the estimate
 *  scales them to the batch, and the timing stays within memory where a whole batch would not.
 *  The training step's peak bytes over what was held before it (`tf.profile`'s peakBytes) are
 *  taken on the warm-ups at the same row counts, for "needs about X GiB at batch N" (the timed
 *  steps run unprofiled).
 * Each after a warm-up at the same shape (kernels compile per shape on WebGPU; the wasm heap
 * grows on the first big step), as the Pretrain page times its presets.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT } from '../model/gpt';
import { LORA_SETTINGS, loraSpecOf } from '../model/lora';
import { Rng } from '../model/rng';
import { generate } from '../model/sampling';
import { Adam } from '../rlhf/adam';
import { logprobsAndEntropyT, logprobsOfTokens } from '../rlhf/entropy';
import type { LoraStepMemory, LoraTimings } from '../rlhf/iteration-estimate';
import { PPO_ADAM } from '../rlhf/ppo';
import { InvalidInputError } from './errors';

export interface LoraTimingRequest {
  /** Rows sampled and trained on together (GRPO's and PPO's batchSize). */
  batch: number;
  promptTokens: number;
  /** New tokens per row (GRPO maxCompletionLength, PPO maxNewTokens). */
  newTokens: number;
  /** Sampling temperature of the log-probs (the trainers' default 0.7). */
  temperature?: number;
  /** Rows the forward and the training step are timed on (default {@link timingRows}; the estimate scales them). */
  rows?: number;
}

/**
 * Rows the forward and training step are timed on unless asked otherwise: 4, or 2 from 50M
 * parameters on. Measured on wasm (scripts/bench/hf-shapes.ts): SmolLM2-135M's GRPO update ran
 * out of the 4 GB heap at 4 rows of 49 tokens and fitted at 2; distilgpt2 (82M) fitted at 8.
 */
export function timingRows(numParams: number, batch: number): number {
  return Math.min(batch, numParams >= 50e6 ? 2 : 4);
}

/** The pieces of the timing, for progress: warm-ups and timed runs. */
export const LORA_TIMING_STEPS = 8;

let counter = 0;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Refuses shapes the model or the trainers cannot run. */
export function checkTimingRequest(model: GPT, req: LoraTimingRequest): void {
  const whole = (x: number, lo: number, hi: number) => Number.isInteger(x) && x >= lo && x <= hi;
  if (!whole(req.batch, 1, 1024)) throw new InvalidInputError('The batch must be a whole number from 1 to 1024.');
  if (!whole(req.promptTokens, 1, 4096) || !whole(req.newTokens, 2, 4096))
    throw new InvalidInputError('Prompt tokens must be 1–4096 and new tokens 2–4096.');
  if (req.rows !== undefined && !whole(req.rows, 1, req.batch))
    throw new InvalidInputError(`The timed rows must be a whole number from 1 to the batch (${req.batch}).`);
  const L = req.promptTokens + req.newTokens + 1;
  if (L > model.config.blockSize)
    throw new InvalidInputError(
      `${req.promptTokens} prompt + ${req.newTokens} new tokens do not fit the model's ${model.config.blockSize}-token context.`,
    );
}

/**
 * Time the pieces on `model` (not changed: a frozen copy with PEFT's default adapters is timed).
 * `checkpoint` is awaited between pieces and sampling steps (throws to cancel); `onStep` reports
 * pieces done out of {@link LORA_TIMING_STEPS}.
 */
export async function timeLoraPieces(
  model: GPT,
  req: LoraTimingRequest,
  checkpoint: () => Promise<void> = async () => {},
  onStep?: (done: number) => void,
  budgets: LoraStepMemory['budgets'] = [],
): Promise<LoraTimings> {
  checkTimingRequest(model, req);
  const { batch: B, promptTokens: P, newTokens: T } = req;
  const rows = req.rows ?? timingRows(model.numParams(), B);
  const temperature = req.temperature ?? 0.7;
  const V = model.config.vocabSize;
  const L = P + T + 1;
  const id = counter++;
  const copy = model.clone({ trainable: false, namePrefix: `lora-timing${id}/` });
  copy.addAdapters(loraSpecOf({ ...LORA_SETTINGS.defaults, lora: true }), 1);
  const adam = new Adam(copy.trainableVariables(), PPO_ADAM, `lora-timing${id}/adam`);
  const rng = new Rng(17);
  // Any id but the last: random weights and end-of-text never stop a row early this way (stopAtEot off too).
  const randomIds = (n: number) => Array.from({ length: n }, () => rng.int(V - 1));
  const seq = tf.tensor2d(
    Array.from({ length: rows }, () => randomIds(L)),
    [rows, L],
    'int32',
  );
  const targets = tf.tensor2d(
    Array.from({ length: rows }, () => randomIds(L)),
    [rows, L],
    'int32',
  );
  const mask = tf.ones([rows, L]) as tf.Tensor2D;
  let done = 0;
  const step = async () => {
    onStep?.(++done);
    await checkpoint();
  };
  try {
    await checkpoint();
    // Sampling: the first step is prefill + first token, the rest are cached decode steps.
    const sample = async (steps: number): Promise<number[]> => {
      const stamps: number[] = [performance.now()];
      await generate(
        copy,
        Array.from({ length: B }, () => randomIds(P + 1)),
        {
          maxNewTokens: steps,
          temperature,
          seed: rng.nextUint32(),
          stopAtEot: false,
          onStep: async () => {
            stamps.push(performance.now());
            await checkpoint();
          },
        },
        V - 1,
      );
      return stamps.slice(1).map((t, i) => (t - stamps[i]) / 1000);
    };
    await sample(2);
    await step();
    const s = await sample(4);
    const decode = median(s.slice(1));
    const prefill = s[0];
    await step();

    const forward = async () => {
      const t0 = performance.now();
      const lp = tf.tidy(() => logprobsOfTokens(copy.forward(seq).logits, targets, temperature));
      await lp.data();
      lp.dispose();
      return (performance.now() - t0) / 1000;
    };
    await forward();
    await step();
    const fwd = await forward();
    await step();
    // One row as well: what does not grow with the rows (the tied head's transpose, per-op
    // overheads) is then counted once, not scaled up with the batch.
    const one = { seq: tf.slice(seq, [0, 0], [1, L]), targets: tf.slice(targets, [0, 0], [1, L]) };
    const fwd1 = await (async () => {
      const t0 = performance.now();
      const lp = tf.tidy(() => logprobsOfTokens(copy.forward(one.seq).logits, one.targets, temperature));
      await lp.data();
      lp.dispose();
      return (performance.now() - t0) / 1000;
    })();
    await step();

    const vars = copy.trainableVariables();
    const train = async (x = seq, y = targets, m = mask) => {
      const t0 = performance.now();
      const kept: { ent?: tf.Scalar } = {};
      const { value, grads } = tf.variableGrads(() => {
        const { logits } = copy.inTraining(() => copy.forward(x));
        const both = logprobsAndEntropyT(logits, y, temperature, m);
        kept.ent = tf.keep(both.entropy.mean);
        return tf.neg(tf.mean(both.logprobs)) as tf.Scalar;
      }, vars);
      const norm = adam.gradNorm(grads);
      const n = (await norm.data())[0];
      adam.apply(grads, n, { lr: 1e-6, maxGradNorm: 1 });
      await kept.ent!.data();
      tf.dispose([value, norm, kept.ent!, ...Object.values(grads)]);
      await vars[0].data(); // the update has run
      return (performance.now() - t0) / 1000;
    };
    // Peak bytes of a step over what is held before it, on the warm-ups (profiling slows kernels).
    const peakOf = async (run: () => Promise<number>) => {
      const before = tf.memory().numBytes;
      const info = await tf.profile(async () => {
        await run();
        return [];
      });
      return Math.max(0, info.peakBytes - before);
    };
    const stepBytes = await peakOf(() => train());
    await step();
    const trainStep = await train();
    await step();
    const mask1 = tf.ones([1, L]) as tf.Tensor2D;
    const stepBytesOneRow = await peakOf(() => train(one.seq, one.targets, mask1));
    const trainStep1 = await train(one.seq, one.targets, mask1);
    tf.dispose([one.seq, one.targets, mask1]);
    await step();
    return {
      batch: B,
      promptTokens: P,
      newTokens: T,
      rows,
      prefill,
      decode,
      forward: fwd,
      trainStep,
      forwardOneRow: fwd1,
      trainStepOneRow: trainStep1,
      memory: {
        stepBytes,
        stepBytesOneRow,
        // The loaded model and the trainer's policy clone (grpo.ts / ppo.ts clone it under LoRA
        // too), and the adapters with Adam's moments and the rollback snapshot of both.
        heldBytes: 2 * model.numParams() * 4 + 6 * vars.reduce((n, v) => n + v.size * 4, 0),
        budgets,
      },
    };
  } finally {
    tf.dispose([seq, targets, mask]);
    adam.dispose();
    copy.dispose();
  }
}
