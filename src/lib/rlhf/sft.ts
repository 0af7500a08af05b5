/**
 * Supervised fine-tuning (SFT) of the policy on prompt → completion demonstrations.
 *
 * Follows:
 *  - Ouyang et al. 2022, "Training language models to follow instructions with human feedback"
 *    (InstructGPT), step 1: fine-tune the LM on demonstrations before reward modelling and RL.
 *  - TRL `trl/trainer/sft_trainer.py` (`SFTTrainer`) on prompt-completion data: the loss is the
 *    mean negative log-likelihood over completion tokens only (`completion_only_loss`: prompt
 *    tokens are masked out), EOS appended to the completion; it logs `loss`,
 *    `mean_token_accuracy` (argmax = target over completion tokens), `grad_norm`,
 *    `learning_rate`, `epoch`, and `eval_loss` / `eval_mean_token_accuracy`.
 *
 * `trainSft` trains the given (trainable) model in place; with `lora` on, only LoRA adapters
 * (model/lora.ts), added to the model when it has none, train and the base stays frozen. On any error, cancellation
 * included, the weights are restored to what they were; a non-finite loss or gradient throws
 * `TuneDivergedError`, bad data or settings `TuneInputError`, before anything changed.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT } from '../model/gpt';
import { splitByPrompt } from '../data/split';
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
import { SFT_SETTINGS, type SftConfig } from './sft-config';

export interface SftExample {
  prompt: string;
  completion: string;
}

export type { SftConfig };

/** The SFT table's defaults (src/lib/rlhf/sft-config.ts). */
export const DEFAULT_SFT_CONFIG: Readonly<SftConfig> = SFT_SETTINGS.defaults;

/** `partial` over the defaults, checked (every bad setting in one `TuneInputError`). */
export function resolveSftConfig(partial: Partial<SftConfig> = {}): SftConfig {
  return SFT_SETTINGS.validate(partial);
}

/** Refuses no examples and empty completions, saying which. */
export function checkSftExamples(examples: readonly SftExample[]): void {
  if (!Array.isArray(examples) || examples.length === 0)
    throw new TuneInputError(
      'SFT needs at least one demonstration (a prompt with a good completion). Write one below, edit a sample in the feedback studio, or import prompt-completion JSONL on the Data page.',
    );
  const empty = examples.filter((e) => typeof e?.completion !== 'string' || e.completion.trim() === '');
  if (empty.length) {
    const p = String(empty[0]?.prompt ?? '');
    throw new TuneInputError(
      `${empty.length} of ${examples.length} demonstration${examples.length === 1 ? ' has' : 's have'} an empty completion (the first for the prompt “${p.length > 40 ? p.slice(0, 40) + '…' : p}”). SFT learns from completions only: write one, or leave ${empty.length === 1 ? 'it' : 'them'} out. Nothing was changed.`,
    );
  }
  const badPrompt = examples.find((e) => typeof e.prompt !== 'string');
  if (badPrompt) throw new TuneInputError('Every demonstration needs a prompt (text, possibly empty).');
}

interface Batch {
  loss: number;
  accuracy: number;
  tokens: number;
}

/** Loss (mean NLL over completion tokens) and token accuracy of rows, no gradients. */
export async function evaluateSft(
  model: GPT,
  rows: readonly EncodedText[],
  eotId: number,
  batchSize = 16,
): Promise<{ loss: number; mean_token_accuracy: number }> {
  let nll = 0;
  let correct = 0;
  let tokens = 0;
  for (let i = 0; i < rows.length; i += batchSize) {
    const packed = packRows(rows.slice(i, i + batchSize), eotId);
    const out = tf.tidy(() => {
      const { logits } = model.forward(packed.seq);
      const lp = tf.sum(completionLogprobsT(logits, packed.targets, packed.mask));
      const hit = tf.sum(tf.mul(tf.cast(tf.equal(tf.argMax(logits, -1), packed.targets), 'float32'), packed.mask));
      return tf.stack([lp, hit, tf.sum(packed.mask)]);
    });
    const d = await out.data();
    out.dispose();
    disposeRows(packed);
    nll -= d[0];
    correct += d[1];
    tokens += d[2];
  }
  return { loss: nll / Math.max(tokens, 1), mean_token_accuracy: correct / Math.max(tokens, 1) };
}

/**
 * Fine-tune `model` in place on demonstrations. `checkpoint` is awaited before every step (the
 * engine yields and cancels there).
 */
export async function trainSft(
  model: GPT,
  examples: readonly SftExample[],
  opts: { tokenizer: OfflineTokenizer; config?: Partial<SftConfig> },
  onEvent?: (e: TuneEvent) => void,
  checkpoint?: () => Promise<void>,
): Promise<TuneResult> {
  const t0 = performance.now();
  const c = resolveSftConfig(opts.config);
  checkSftExamples(examples);
  const tok = opts.tokenizer;
  const eot = tok.eotId;
  const T = model.config.blockSize;
  const split = splitByPrompt(examples, c.valFraction, c.seed);
  const enc = (xs: readonly SftExample[]) =>
    xs.map((e) => encodeCompletion(tok, e.prompt, e.completion, T, c.appendEot));
  const evaluate = async (rows: readonly EncodedText[]) => {
    const ev = await evaluateSft(model, rows, eot);
    return { eval_loss: ev.loss, eval_mean_token_accuracy: ev.mean_token_accuracy };
  };
  const val = enc(split.val);
  const undoLora = prepareLora(model, c);
  try {
    return await runOfflineLoop(
      {
        method: 'sft',
        what: 'SFT',
        config: c,
        vars: trainableOf(model, 'trainSft'),
        train: enc(split.train),
        val,
        valPrompts: split.valPrompts,
        dropped: 0,
        initial: async () => (val.length ? evaluate(val) : {}),
        step: async (rows, adam, lr, step) => {
          const b = await sftStep(model, adam, rows, eot, lr, c, step);
          return { loss: b.loss, mean_token_accuracy: b.accuracy, num_tokens: b.tokens, grad_norm: b.gradNorm };
        },
        evaluate,
      },
      t0,
      onEvent,
      checkpoint,
    );
  } catch (e) {
    undoLora();
    throw e;
  }
}

/** One step: the mean NLL over completion tokens and the token accuracy (see `offlineStep`). */
async function sftStep(
  model: GPT,
  adam: Adam,
  rows: EncodedText[],
  eot: number,
  lr: number,
  c: SftConfig,
  step: number,
): Promise<Batch & { gradNorm: number }> {
  const packed = packRows(rows, eot);
  try {
    const { loss, gradNorm, extra } = await offlineStep(
      adam,
      () => {
        const { logits } = trainingForward(model, c.seed, step, () => model.forward(packed.seq));
        const n = tf.sum(packed.mask);
        const loss = tf.div(
          tf.neg(tf.sum(completionLogprobsT(logits, packed.targets, packed.mask))),
          tf.maximum(n, 1),
        ) as tf.Scalar;
        const hit = tf.sum(tf.mul(tf.cast(tf.equal(tf.argMax(logits, -1), packed.targets), 'float32'), packed.mask));
        return { loss, extra: tf.stack([tf.div(hit, tf.maximum(n, 1)), n]) as tf.Tensor1D };
      },
      { lr, maxGradNorm: c.maxGradNorm },
      (loss, gradNorm) =>
        new TuneDivergedError(
          `SFT diverged at step ${step + 1}: loss ${loss}, gradient norm ${gradNorm}. The weights were restored to those before training; lower the learning rate (now ${c.learningRate}).`,
        ),
    );
    const [accuracy, tokens] = extra;
    return { loss, accuracy, tokens, gradNorm };
  } finally {
    disposeRows(packed);
  }
}
