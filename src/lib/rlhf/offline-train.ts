/**
 * Shared pieces of the offline trainers, SFT (`sft.ts`) and DPO (`dpo-train.ts`): encoding a
 * prompt and its completion, packing rows, per-sequence log-probabilities over completion
 * tokens only, one optimiser step (the shared `Adam` of `adam.ts`, the prompt split of
 * `data/split.ts`) with its single read-back, the epoch/batch loop with its events, and the
 * settings both share. Each trainer keeps its own maths (losses, metrics) in its own file.
 *
 * Follows:
 *  - TRL `trl/trainer/sft_trainer.py` (prompt-completion data: the loss covers completion tokens
 *    only, `completion_only_loss`; an EOS token is appended to the completion) and
 *    `trl/trainer/dpo_trainer.py` (`concatenated_forward`: chosen and rejected rows in one
 *    forward pass; `get_batch_logps`: log-probs of the completion tokens summed per sequence,
 *    averaged over them for `ipo`; prompt tokens masked out of the sum).
 *  - Hugging Face `Trainer` defaults: Adam(β₁ 0.9, β₂ 0.999), global-norm clipping at 1, a
 *    learning rate that decays linearly to 0 over the planned steps, `max_steps`.
 *
 * Inputs are laid out as everywhere else in the app (`rewardInputIds`, the PPO rollouts):
 * `[eot] + encodePrompt(prompt) + encode(completion) (+ eot)`, right-padded, so positions
 * count from 0 in every row. Logits at position t predict token t + 1, so completion token j
 * of a row whose completion starts at column s is scored at position s − 1 + j.
 */
import * as tf from '@tensorflow/tfjs-core';
import { GPT } from '../model/gpt';
import { loraSpecOf } from '../model/lora';
import { deriveSeed, permutation, Rng } from '../model/rng';
import { Adam, type AdamStepOptions } from './adam';
import { TuneDivergedError, TuneInputError } from './errors';
import type { OfflineConfig } from './offline-config';

/** What the trainers need of a tokenizer (`BpeTokenizer` fits). */
export interface OfflineTokenizer {
  readonly eotId: number;
  encode(text: string): number[];
  /** Used for prompts when present: strips trailing spaces into `heldBack`. */
  encodePrompt?(text: string): { ids: number[]; heldBack?: string };
}

/** One encoded text: `ids` = query + completion; completion tokens are `ids[start..]`. */
export interface EncodedText {
  ids: number[];
  start: number;
}

/**
 * `[eot] + prompt + completion (+ eot)`, fitted into `blockSize`: a completion longer than the
 * context loses its end (TRL truncates the same way), then the query is cropped from the left
 * (as PPO crops its queries). Trailing spaces held back from the prompt by `encodePrompt` are
 * given to the completion when it does not start with a space itself, so "The movie was " +
 * "great" reads as the model would see "The movie was great".
 */
export function encodeCompletion(
  tok: OfflineTokenizer,
  prompt: string,
  completion: string,
  blockSize: number,
  appendEot = true,
): EncodedText {
  let promptIds: number[];
  let text = completion;
  if (tok.encodePrompt) {
    const e = tok.encodePrompt(prompt);
    promptIds = e.ids;
    if (e.heldBack && !/^\s/.test(completion)) text = e.heldBack + completion;
  } else promptIds = tok.encode(prompt);
  let comp = tok.encode(text);
  if (appendEot) comp = [...comp, tok.eotId];
  if (comp.length === 0) throw new TuneInputError('A completion has no tokens.');
  comp = comp.slice(0, blockSize - 1); // at least one query token must stay
  const query = [tok.eotId, ...promptIds];
  const q = query.slice(Math.max(0, query.length - (blockSize - comp.length)));
  return { ids: [...q, ...comp], start: q.length };
}

/** Rows packed for one forward pass: seq and targets int32 [n, L], mask float [n, L]. */
export interface PackedRows {
  seq: tf.Tensor2D;
  targets: tf.Tensor2D;
  /** 1 at the positions whose next token is a completion token. */
  mask: tf.Tensor2D;
}

/** Right-pad rows (with `padId`) to the longest; targets are the rows shifted left by one. */
export function packRows(rows: readonly EncodedText[], padId: number): PackedRows {
  const n = rows.length;
  if (n === 0) throw new RangeError('packRows: no rows');
  const L = Math.max(...rows.map((r) => r.ids.length));
  const seq = new Int32Array(n * L).fill(padId);
  const targets = new Int32Array(n * L).fill(padId);
  const mask = new Float32Array(n * L);
  rows.forEach((r, i) => {
    seq.set(r.ids, i * L);
    targets.set(r.ids.slice(1), i * L);
    for (let p = Math.max(0, r.start - 1); p < r.ids.length - 1; p++) mask[i * L + p] = 1;
  });
  return {
    seq: tf.tensor2d(seq, [n, L], 'int32'),
    targets: tf.tensor2d(targets, [n, L], 'int32'),
    mask: tf.tensor2d(mask, [n, L]),
  };
}

export function disposeRows(p: PackedRows): void {
  tf.dispose([p.seq, p.targets, p.mask]);
}

/**
 * Per-sequence log-probability of the masked (completion) tokens, from logits [n, L, V]:
 * the sum over them, or their mean when `average` (TRL's `ipo`). Returns [n].
 */
export function completionLogprobsT(
  logits: tf.Tensor3D,
  targets: tf.Tensor2D,
  mask: tf.Tensor2D,
  average = false,
): tf.Tensor1D {
  return tf.tidy(() => {
    const lp = tf.sum(tf.mul(GPT.tokenLogprobs(logits, targets), mask), 1);
    return (average ? tf.div(lp, tf.maximum(tf.sum(mask, 1), 1)) : lp) as tf.Tensor1D;
  });
}

// ---------------------------------------------------------------------------------- settings

export type { OfflineConfig };

/** Steps the run will take: epochs × ceil(n / batch), capped by maxSteps. */
export function plannedSteps(n: number, c: OfflineConfig): number {
  const all = c.epochs * Math.ceil(n / c.batchSize);
  return c.maxSteps > 0 ? Math.min(all, c.maxSteps) : all;
}

export function learningRateAt(step: number, total: number, c: OfflineConfig): number {
  return c.lrSchedule === 'linear' ? c.learningRate * (1 - step / total) : c.learningRate;
}

/** Copies of the variables' values, to restore with {@link restoreVars}. */
export function snapshotVars(vars: readonly tf.Variable[]): tf.Tensor[] {
  return vars.map((v) => tf.clone(v));
}

export function restoreVars(vars: readonly tf.Variable[], snap: readonly tf.Tensor[]): void {
  vars.forEach((v, i) => v.assign(snap[i]));
}

/**
 * With `c.lora` on, puts fresh adapters on a model that has none (base frozen; seeded by
 * `c.seed`). Returns the undo: removes the adapters it added (on failure the model is as it was).
 */
export function prepareLora(model: GPT, c: OfflineConfig): () => void {
  if (!c.lora || model.lora) return () => {};
  model.addAdapters(loraSpecOf(c), c.seed);
  return () => model.removeAdapters();
}

/** `fn` (a loss) in training mode, with the LoRA dropout masks seeded by (seed, step). */
export function trainingForward<T>(model: GPT, seed: number, step: number, fn: () => T): T {
  model.lora?.reseedDropout(deriveSeed(seed, step));
  return model.inTraining(fn);
}

/** The model's variables to train (its adapters under LoRA); refuses a frozen model. */
export function trainableOf(model: GPT, what: string): tf.Variable[] {
  const vars = model.trainableVariables();
  if (vars.length === 0) throw new RangeError(`${what}: the model is frozen; pass a trainable clone`);
  return vars;
}

// ------------------------------------------------------------------------------ one step

/**
 * One optimiser step on `adam`'s variables: gradients of `lossFn`'s loss, their global norm, one read-back of loss,
 * norm and `extra` (a 1-D tensor of per-batch values the caller wants back), a finite check
 * (`diverged` makes the error, and nothing is applied), then clipped Adam. Returns the
 * read-back numbers.
 */
export async function offlineStep(
  adam: Adam,
  lossFn: () => { loss: tf.Scalar; extra: tf.Tensor1D },
  opts: AdamStepOptions,
  diverged: (loss: number, gradNorm: number) => Error,
): Promise<{ loss: number; gradNorm: number; extra: number[] }> {
  const kept: { extra?: tf.Tensor } = {};
  let grads: tf.NamedTensorMap | null = null;
  let readback: tf.Tensor | null = null;
  try {
    const res = tf.variableGrads(() => {
      const { loss, extra } = lossFn();
      kept.extra = tf.keep(extra);
      return loss;
    }, adam.vars);
    grads = res.grads;
    const norm = adam.gradNorm(grads);
    readback = tf.tidy(() => tf.concat([tf.reshape(res.value, [1]), tf.reshape(norm, [1]), kept.extra!]));
    tf.dispose([res.value, norm]);
    const d = Array.from(await readback.data());
    const [loss, gradNorm] = d;
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) throw diverged(loss, gradNorm);
    adam.apply(grads, gradNorm, opts);
    return { loss, gradNorm, extra: d.slice(2) };
  } finally {
    kept.extra?.dispose();
    if (grads) tf.dispose(grads);
    readback?.dispose();
  }
}

// ------------------------------------------------------------------------------ the loop

/** What a trainer hands {@link runOfflineLoop}: its data, and its maths as callbacks. */
export interface OfflineLoop<R> {
  method: 'sft' | 'dpo';
  /** 'SFT' or 'DPO', in messages. */
  what: string;
  config: OfflineConfig;
  vars: tf.Variable[];
  train: readonly R[];
  val: readonly R[];
  valPrompts: string[];
  /** Items left out before training (ties for DPO). */
  dropped: number;
  /** Metrics before the first step (step 0). */
  initial(): Promise<Record<string, number>>;
  /** One optimiser step on `batch`; its metrics, `grad_norm` included. */
  step(batch: R[], adam: Adam, lr: number, step: number): Promise<Record<string, number>>;
  /** Metrics on the held-out items, `eval_loss` among them. */
  evaluate(val: readonly R[]): Promise<Record<string, number>>;
}

/**
 * The loop SFT and DPO share (HF `Trainer`): seeded shuffles per epoch, batches, the learning
 * rate schedule, step and epoch events (`train_loss` and held-out metrics at each epoch's end),
 * `max_steps`. On any error, cancellation included, the weights are restored; a non-finite
 * held-out loss throws `TuneDivergedError`. `checkpoint` is awaited before every step; `t0` is
 * when the run began (for `seconds`).
 */
export async function runOfflineLoop<R>(
  loop: OfflineLoop<R>,
  t0: number,
  onEvent?: (e: TuneEvent) => void,
  checkpoint?: () => Promise<void>,
): Promise<TuneResult> {
  const { config: c, vars, train, val, method, what } = loop;
  const totalSteps = plannedSteps(train.length, c);
  const stepsPerEpoch = Math.ceil(train.length / c.batchSize);
  const initialWeights = snapshotVars(vars);
  const adam = new Adam(vars, {
    beta1: c.adamBeta1,
    beta2: c.adamBeta2,
    eps: c.adamEpsilon,
    weightDecay: c.weightDecay,
  });
  try {
    const initial = await loop.initial();
    onEvent?.({
      type: 'start',
      method,
      train: train.length,
      val: val.length,
      valPrompts: loop.valPrompts,
      dropped: loop.dropped,
      totalSteps,
      initial,
    });

    const rng = new Rng(c.seed + 1);
    const history: TuneMetricRow[] = [];
    let step = 0;
    let epoch = 0;
    let final: Record<string, number> = {};
    while (step < totalSteps) {
      epoch++;
      const order = permutation(train.length, rng);
      const epochRows: Record<string, number>[] = [];
      for (let s = 0; s < stepsPerEpoch && step < totalSteps; s++) {
        await checkpoint?.();
        const batch = order.slice(s * c.batchSize, (s + 1) * c.batchSize).map((i) => train[i]);
        const lr = learningRateAt(step, totalSteps, c);
        const m = await loop.step(batch, adam, lr, step);
        step++;
        const metrics = { ...m, learning_rate: lr, epoch: epoch - 1 + (s + 1) / stepsPerEpoch };
        epochRows.push(metrics);
        final = { ...metrics };
        if (step % c.logEvery === 0 || step === totalSteps) {
          const row = { step, metrics };
          history.push(row);
          onEvent?.({ type: 'step', row });
        }
      }
      const epochMetrics: Record<string, number> = { train_loss: meanMetrics(epochRows).loss, epoch };
      if (val.length) {
        const ev = await loop.evaluate(val);
        if (!Number.isFinite(ev.eval_loss))
          throw new TuneDivergedError(
            `${what} diverged: the held-out loss is ${ev.eval_loss} after epoch ${epoch}. The weights were restored; lower the learning rate (now ${c.learningRate}).`,
          );
        Object.assign(epochMetrics, ev);
      }
      Object.assign(final, epochMetrics);
      const row = { step, metrics: epochMetrics };
      history.push(row);
      onEvent?.({ type: 'epoch', epoch, row });
    }
    return {
      method,
      history,
      steps: step,
      epochs: epoch,
      train: train.length,
      val: val.length,
      valPrompts: loop.valPrompts,
      final,
      seconds: (performance.now() - t0) / 1000,
    };
  } catch (e) {
    restoreVars(vars, initialWeights);
    throw e;
  } finally {
    tf.dispose(initialWeights);
    adam.dispose();
  }
}

// ---------------------------------------------------------------------------------- events

/** One row of logged metrics (TRL's names), at an optimiser step. */
export interface TuneMetricRow {
  step: number;
  metrics: Record<string, number>;
}

export type TuneEvent =
  | {
      type: 'start';
      method: 'sft' | 'dpo';
      train: number;
      val: number;
      valPrompts: string[];
      /** Items left out (ties for DPO). */
      dropped: number;
      totalSteps: number;
      /** Metrics before the first step (step 0): on the validation set (`eval_…`) and/or the training set. */
      initial: Record<string, number>;
    }
  | { type: 'step'; row: TuneMetricRow }
  | { type: 'epoch'; epoch: number; row: TuneMetricRow };

export interface TuneResult {
  method: 'sft' | 'dpo';
  history: TuneMetricRow[];
  steps: number;
  epochs: number;
  train: number;
  val: number;
  valPrompts: string[];
  /** The last step's metrics, and the last evaluation's. */
  final: Record<string, number>;
  seconds: number;
}

/** Mean of each key over rows (keys missing in a row are skipped). */
export function meanMetrics(rows: readonly Record<string, number>[]): Record<string, number> {
  const sum: Record<string, number> = {};
  const n: Record<string, number> = {};
  for (const r of rows)
    for (const [k, v] of Object.entries(r)) {
      sum[k] = (sum[k] ?? 0) + v;
      n[k] = (n[k] ?? 0) + 1;
    }
  return Object.fromEntries(Object.keys(sum).map((k) => [k, sum[k] / n[k]]));
}
