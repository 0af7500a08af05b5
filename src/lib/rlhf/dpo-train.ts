/**
 * Direct Preference Optimization of the policy on preference pairs, with the frozen starting
 * model as the reference (no reward model, no sampling).
 *
 * Follows:
 *  - Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is Secretly a
 *    Reward Model" (the `sigmoid` loss), Azar et al. 2023 (IPO, the `ipo` loss), Mitchell 2023
 *    (label smoothing): the losses themselves are `dpoLossT` in `dpo.ts`.
 *  - TRL `trl/trainer/dpo_trainer.py` (`DPOTrainer`): reference log-probs computed once before
 *    training (`precompute_ref_log_probs`); chosen and rejected rows in one forward pass
 *    (`concatenated_forward`); per-sequence log-probs summed over completion tokens, averaged
 *    for `ipo`; EOS appended to both completions; metrics `rewards/chosen`, `rewards/rejected`,
 *    `rewards/accuracies` (chosen reward > rejected reward), `rewards/margins`, `logps/chosen`,
 *    `logps/rejected`, and the same with an `eval_` prefix on held-out pairs.
 *
 * `trainDpo` trains the given (trainable) model in place. On any error, cancellation included,
 * the weights are restored; a non-finite loss or gradient throws `TuneDivergedError`; no pairs,
 * or only ties, throw `TuneInputError` before anything changed.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TrainingPair } from '../data/records';
import { splitByPrompt } from '../data/split';
import type { GPT } from '../model/gpt';
import { dpoLoss, dpoLossT, type DpoLossType } from './dpo';
import {
  completionLogprobsT,
  disposeRows,
  encodeCompletion,
  offlineStep,
  packRows,
  prepareLora,
  runOfflineLoop,
  trainableOf,
  trainingForward,
  type EncodedText,
  type OfflineTokenizer,
  type TuneEvent,
  type TuneResult,
} from './offline-train';
import type { Adam } from './adam';
import { TuneDivergedError, TuneInputError } from './errors';
import { DPO_SETTINGS, type DpoConfig } from './dpo-config';

export type { DpoConfig };

/** The DPO table's defaults (src/lib/rlhf/dpo-config.ts). */
export const DEFAULT_DPO_CONFIG: Readonly<DpoConfig> = DPO_SETTINGS.defaults;

/** `partial` over the defaults, checked (every bad setting in one `TuneInputError`). */
export function resolveDpoConfig(partial: Partial<DpoConfig> = {}): DpoConfig {
  return DPO_SETTINGS.validate(partial);
}

/** Pairs that carry a preference (chosen ≠ rejected); refuses none. */
export function usableDpoPairs(pairs: readonly TrainingPair[]): TrainingPair[] {
  if (!Array.isArray(pairs) || pairs.length === 0)
    throw new TuneInputError(
      'DPO needs preference pairs, and there are none. Label some on the Feedback page (a scripted labeller can label 50 in seconds) or import preference JSONL on the Data page.',
    );
  const usable = pairs.filter(
    (p) => typeof p?.chosen === 'string' && typeof p.rejected === 'string' && p.chosen !== p.rejected,
  );
  if (usable.length === 0)
    throw new TuneInputError(
      `No usable pairs: all ${pairs.length} have the same chosen and rejected text, which carries no preference. Label pairs where one response is better.`,
    );
  return usable;
}

interface EncodedPair {
  chosen: EncodedText;
  rejected: EncodedText;
  /** Reference log-probs (sum, or mean for ipo), filled before training. */
  refChosen: number;
  refRejected: number;
}

/** Per-row log-probs of `rows` under `model` (with its adapters off when `base`), in batches, no gradients. */
async function logprobsOf(
  model: GPT,
  rows: readonly EncodedText[],
  eot: number,
  average: boolean,
  batchSize: number,
  base = false,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < rows.length; i += batchSize) {
    const packed = packRows(rows.slice(i, i + batchSize), eot);
    const forward = () => model.forward(packed.seq).logits;
    const lp = tf.tidy(() =>
      completionLogprobsT(base ? model.withoutAdapters(forward) : forward(), packed.targets, packed.mask, average),
    );
    out.push(...(await lp.data()));
    lp.dispose();
    disposeRows(packed);
  }
  return out;
}

/** TRL's DPO metrics from per-pair policy and reference log-probs (no gradients). */
export function dpoMetrics(
  pc: number[],
  pr: number[],
  rc: number[],
  rr: number[],
  c: Pick<DpoConfig, 'beta' | 'lossType' | 'labelSmoothing'>,
  prefix = '',
): Record<string, number> {
  const { loss, chosenRewards, rejectedRewards } = dpoLoss(pc, pr, rc, rr, c.beta, c.lossType, c.labelSmoothing);
  const n = pc.length;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / n;
  return {
    [`${prefix}loss`]: loss,
    [`${prefix}rewards/chosen`]: mean(chosenRewards),
    [`${prefix}rewards/rejected`]: mean(rejectedRewards),
    [`${prefix}rewards/accuracies`]: chosenRewards.filter((x, i) => x > rejectedRewards[i]).length / n,
    [`${prefix}rewards/margins`]: mean(chosenRewards.map((x, i) => x - rejectedRewards[i])),
    [`${prefix}logps/chosen`]: mean(pc),
    [`${prefix}logps/rejected`]: mean(pr),
  };
}

/** Metrics of the pairs under the current policy (`eval_` prefix by default). */
export async function evaluateDpo(
  model: GPT,
  pairs: readonly EncodedPair[],
  eot: number,
  c: DpoConfig,
  prefix = 'eval_',
): Promise<Record<string, number>> {
  const avg = c.lossType === 'ipo';
  const lp = await logprobsOf(model, [...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)], eot, avg, 16);
  const n = pairs.length;
  return dpoMetrics(
    lp.slice(0, n),
    lp.slice(n),
    pairs.map((p) => p.refChosen),
    pairs.map((p) => p.refRejected),
    c,
    prefix,
  );
}

/**
 * DPO on `pairs`, training `model` in place. The reference is `opts.reference` or, by default,
 * `model` itself as it is before the first step (its log-probs are computed once up front);
 * with LoRA (`lora` on, or adapters already on the model) it is the model with its adapters off,
 * as TRL does with a PEFT model and no ref_model.
 * `checkpoint` is awaited before every step.
 */
export async function trainDpo(
  model: GPT,
  pairs: readonly TrainingPair[],
  opts: { tokenizer: OfflineTokenizer; config?: Partial<DpoConfig>; reference?: GPT },
  onEvent?: (e: TuneEvent) => void,
  checkpoint?: () => Promise<void>,
): Promise<TuneResult> {
  const t0 = performance.now();
  const c = resolveDpoConfig(opts.config);
  const usable = usableDpoPairs(pairs);
  const tok = opts.tokenizer;
  const eot = tok.eotId;
  const T = model.config.blockSize;
  const split = splitByPrompt(usable, c.valFraction, c.seed);
  const encode = (xs: readonly TrainingPair[]): EncodedPair[] =>
    xs.map((p) => ({
      chosen: encodeCompletion(tok, p.prompt, p.chosen, T, c.appendEot),
      rejected: encodeCompletion(tok, p.prompt, p.rejected, T, c.appendEot),
      refChosen: 0,
      refRejected: 0,
    }));
  const train = encode(split.train);
  const val = encode(split.val);
  const undoLora = prepareLora(model, c);
  try {
    return await dpoLoop(
      model,
      opts.reference,
      pairs.length - usable.length,
      split.valPrompts,
      train,
      val,
      eot,
      c,
      onEvent,
      checkpoint,
      t0,
    );
  } catch (e) {
    undoLora();
    throw e;
  }
}

async function dpoLoop(
  model: GPT,
  reference: GPT | undefined,
  dropped: number,
  valPrompts: string[],
  train: EncodedPair[],
  val: EncodedPair[],
  eot: number,
  c: DpoConfig,
  onEvent: ((e: TuneEvent) => void) | undefined,
  checkpoint: (() => Promise<void>) | undefined,
  t0: number,
): Promise<TuneResult> {
  const vars = trainableOf(model, 'trainDpo');
  const avg = c.lossType === 'ipo';

  // Reference log-probs, once (TRL `precompute_ref_log_probs`).
  const all = [...train, ...val];
  const lora = !reference && model.lora !== null;
  const ref = await logprobsOf(
    reference ?? model,
    [...all.map((p) => p.chosen), ...all.map((p) => p.rejected)],
    eot,
    avg,
    16,
    lora,
  );
  all.forEach((p, i) => {
    p.refChosen = ref[i];
    p.refRejected = ref[all.length + i];
  });
  if (!ref.every(Number.isFinite))
    throw new TuneDivergedError('DPO: the reference model gives non-finite log-probabilities; reload the model.');

  return runOfflineLoop(
    {
      method: 'dpo',
      what: 'DPO',
      config: c,
      vars,
      train,
      val,
      valPrompts,
      dropped,
      initial: async () => ({
        ...(await evaluateDpo(model, train, eot, c, '')),
        ...(val.length ? await evaluateDpo(model, val, eot, c) : {}),
      }),
      step: async (batch, adam, lr, step) => {
        const { metrics, gradNorm } = await dpoStep(model, adam, batch, eot, lr, c, step);
        return { ...metrics, grad_norm: gradNorm };
      },
      evaluate: (rows) => evaluateDpo(model, rows, eot, c),
    },
    t0,
    onEvent,
    checkpoint,
  );
}

/** One step on a batch of pairs: chosen and rejected in one forward pass (see `offlineStep`). */
async function dpoStep(
  model: GPT,
  adam: Adam,
  batch: EncodedPair[],
  eot: number,
  lr: number,
  c: DpoConfig,
  step: number,
): Promise<{ metrics: Record<string, number>; gradNorm: number }> {
  const n = batch.length;
  const packed = packRows([...batch.map((p) => p.chosen), ...batch.map((p) => p.rejected)], eot);
  const rc = tf.tensor1d(batch.map((p) => p.refChosen));
  const rr = tf.tensor1d(batch.map((p) => p.refRejected));
  try {
    const { gradNorm, extra: lp } = await offlineStep(
      adam,
      () => {
        const { logits } = trainingForward(model, c.seed, step, () => model.forward(packed.seq));
        const lp = completionLogprobsT(logits, packed.targets, packed.mask, c.lossType === 'ipo');
        const pc = tf.slice(lp, 0, n);
        const pr = tf.slice(lp, n, n);
        return { loss: dpoLossT(pc, pr, rc, rr, c.beta, c.lossType, c.labelSmoothing).loss, extra: lp };
      },
      { lr, maxGradNorm: c.maxGradNorm },
      (loss, gradNorm) =>
        new TuneDivergedError(
          `DPO diverged at step ${step + 1}: loss ${loss}, gradient norm ${gradNorm}. The weights were restored to those before training; lower the learning rate (now ${c.learningRate}) or β.`,
        ),
    );
    const metrics = dpoMetrics(
      lp.slice(0, n),
      lp.slice(n, 2 * n),
      batch.map((p) => p.refChosen),
      batch.map((p) => p.refRejected),
      c,
    );
    return { metrics, gradNorm };
  } finally {
    disposeRows(packed);
    tf.dispose([rc, rr]);
  }
}
