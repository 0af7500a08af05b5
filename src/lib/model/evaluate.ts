/**
 * Language-model evaluation shared by the pretraining script, the tests that
 * check the shipped weights, and the app: the corpus as one token stream and
 * the mean next-token cross-entropy over consecutive windows of it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { GPT } from './gpt';
import type { BpeTokenizer } from './tokenizer';

/** Windows per forward pass when evaluating. */
export const EVAL_BATCH = 32;

/** One document per non-empty line, trimmed. */
export function splitDocs(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

/** <|endoftext|> doc1 <|endoftext|> doc2 … as one Int32Array, as GPT-2's training data. */
export function tokenizeDocs(tok: BpeTokenizer, docs: string[]): Int32Array {
  const out: number[] = [];
  for (const d of docs) {
    out.push(tok.eotId);
    for (const id of tok.encode(d)) out.push(id);
  }
  return Int32Array.from(out);
}

/** Windows of blockSize+1 tokens starting at `starts` → inputs x and next-token targets y, int32 [B, T]. */
export function batchFrom(ids: Int32Array, starts: number[], T: number): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const B = starts.length;
  const xs = new Int32Array(B * T);
  const ys = new Int32Array(B * T);
  starts.forEach((s, b) => {
    xs.set(ids.subarray(s, s + T), b * T);
    ys.set(ids.subarray(s + 1, s + T + 1), b * T);
  });
  return { x: tf.tensor2d(xs, [B, T], 'int32'), y: tf.tensor2d(ys, [B, T], 'int32') };
}

/** How `evaluateLoss` measures, in words (written next to the number in the training log). */
export function evalProcedure(T: number): string {
  return `mean next-token cross-entropy (nats) over consecutive non-overlapping windows of ${T}+1 tokens (stride ${T}) from the start of the tokenised val split (each document preceded by <|endoftext|>), batches of ${EVAL_BATCH}, float32`;
}

/** Mean next-token NLL over consecutive non-overlapping windows (stride T) of `ids`, at most `maxWindows`. */
export async function evaluateLoss(
  model: GPT,
  ids: Int32Array,
  maxWindows = Infinity,
): Promise<{ loss: number; windows: number; tokens: number }> {
  const T = model.config.blockSize;
  const total = Math.floor((ids.length - 1) / T);
  const windows = Math.min(total, maxWindows);
  let sum = 0;
  let count = 0;
  for (let w0 = 0; w0 < windows; w0 += EVAL_BATCH) {
    const starts: number[] = [];
    for (let w = w0; w < Math.min(windows, w0 + EVAL_BATCH); w++) starts.push(w * T);
    const { x, y } = batchFrom(ids, starts, T);
    const nllSum = tf.tidy(() => tf.sum(GPT.tokenNll(model.forward(x).logits, y)));
    sum += (await nllSum.data())[0];
    count += starts.length * T;
    tf.dispose([x, y, nllSum]);
  }
  return { loss: sum / count, windows, tokens: count };
}
