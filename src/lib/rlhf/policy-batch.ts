/**
 * Pieces the on-policy trainers share: PPO (ppo.ts), GRPO / RLOO (grpo.ts) and online DPO
 * (online-dpo.ts). Each samples completions of prompts from its policy, scores them, and learns
 * from log-probabilities of those completions; these helpers are the parts that were the same
 * code in each: how a prompt becomes the query the model continues, the settings change that
 * waits for an iteration boundary, and the tensors that pick the completion tokens out of a
 * forward pass over [query + completion] rows.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Matrix } from './whiten';

/** What prompt encoding needs of a tokenizer (`BpeTokenizer` fits). */
export interface PromptTokenizer {
  readonly eotId: number;
  encode(text: string): number[];
  /** Used instead of `encode` for prompts when present (strips trailing spaces). */
  encodePrompt?(text: string): { ids: number[] };
}

/** A prompt's token ids (the tokenizer's prompt encoding when it has one). */
export function encodePromptIds(tok: PromptTokenizer, text: string): number[] {
  return tok.encodePrompt ? tok.encodePrompt(text).ids : tok.encode(text);
}

/** [eot] + prompt ids, cropped from the left to leave `maxNewTokens` of room in the context. */
export function queryIds(eotId: number, promptIds: number[], blockSize: number, maxNewTokens: number): number[] {
  const q = [eotId, ...promptIds];
  const room = blockSize - maxNewTokens;
  return q.slice(Math.max(0, q.length - room));
}

/**
 * Settings of a run that change only at iteration boundaries: `stage` a checked change; it
 * becomes `current` at once when no iteration is under way, else at the next `apply()` (which a
 * trainer calls before its next rollout). An iteration therefore never sees two settings.
 */
export class LiveConfig<C> {
  private pending: C | null = null;
  constructor(public current: C) {}

  /** The settings from the next iteration on: a pending change, else the current ones. */
  get next(): C {
    return this.pending ?? this.current;
  }

  /** Keep `next` for the next boundary; `atBoundary`: no iteration is under way, apply it now. */
  stage(next: C, atBoundary: boolean): { prev: C; next: C } | null {
    this.pending = next;
    return atBoundary ? this.apply() : null;
  }

  /** At an iteration boundary: a pending change becomes current (null when there was none). */
  apply(): { prev: C; next: C } | null {
    const next = this.pending;
    if (next === null) return null;
    const prev = this.current;
    this.pending = null;
    this.current = next;
    return { prev, next };
  }

  /** Replace everything (resuming a saved state). */
  reset(c: C): void {
    this.current = c;
    this.pending = null;
  }
}

/** Rows of [query + completion], as the trainers keep them between phases. */
export interface CompletionRows {
  queries: number[][];
  responses: number[][];
  /** [B][R] loss mask per completion token (1 = in the loss). */
  mask: Matrix;
  /** Longest query + completion. */
  L: number;
  /** Longest completion. */
  R: number;
}

/** The tensors of `completionTensors` (dispose them, or build them inside `tf.tidy`). */
export interface CompletionTensors {
  /** int32 [b, L]: query + completion, right-padded with end-of-text. */
  seq: tf.Tensor2D;
  /** int32 [b, L]: the token each position predicts. */
  targets: tf.Tensor2D;
  /** [b, R, L]: sel[i, j, q_i − 1 + j] = 1 for completion token j. */
  sel: tf.Tensor3D;
  /** [b, L]: the loss mask at those positions. */
  posMask: tf.Tensor2D;
}

/** Tensors of the given rows of `batch` (see `CompletionTensors`). */
export function completionTensors(batch: CompletionRows, rows: number[], eotId: number): CompletionTensors {
  const { L, R } = batch;
  const n = rows.length;
  const seq = new Int32Array(n * L).fill(eotId);
  const targets = new Int32Array(n * L).fill(eotId);
  const sel = new Float32Array(n * R * L);
  const posMask = new Float32Array(n * L);
  rows.forEach((r, i) => {
    const q = batch.queries[r];
    const resp = batch.responses[r];
    const full = [...q, ...resp];
    seq.set(full, i * L);
    targets.set(full.slice(1), i * L);
    for (let j = 0; j < resp.length; j++) {
      const pos = q.length - 1 + j; // logits at pos predict token pos + 1 = completion token j
      sel[(i * R + j) * L + pos] = 1;
      posMask[i * L + pos] = batch.mask[r][j];
    }
  });
  return {
    seq: tf.tensor2d(seq, [n, L], 'int32'),
    targets: tf.tensor2d(targets, [n, L], 'int32'),
    sel: tf.tensor3d(sel, [n, R, L]),
    posMask: tf.tensor2d(posMask, [n, L]),
  };
}

/** x [b, L] → [b, R] at the completion positions (0 on padding). */
export function selectCompletion(x: tf.Tensor2D, sel: tf.Tensor3D): tf.Tensor2D {
  return tf.tidy(() => tf.sum(tf.mul(tf.expandDims(x, 1), sel), -1) as tf.Tensor2D);
}

/** Rows [B][R] of a flat read-back, from `offset`. */
export function unflatten(data: Float32Array, B: number, R: number, offset = 0): Matrix {
  return Array.from({ length: B }, (_, b) => Array.from(data.subarray(offset + b * R, offset + (b + 1) * R)));
}
