/**
 * Batched, seeded sampling from a GPT with a key/value cache.
 *
 * Prompts of different lengths are left-padded: row b gets `pad_b` leading padding columns,
 * which the cache masks out as keys, and its positions count from its first real token, so
 * each row computes exactly what it would alone. (Running each prompt's prefill separately
 * would need one cache per row and could not batch the decode steps.)
 *
 * Per step the logits of the last column of every row are read back in one `data()` call and
 * the sampling decisions (temperature, top-k, top-p, the draw) happen in JS with our own
 * seeded RNG, so the same seed gives the same text on every backend where logits agree.
 *
 * Context longer than blockSize: without the cache each step sees the last blockSize tokens
 * (a sliding window, as nanoGPT's `generate`). With the cache, when it is full the window is
 * cropped to the last blockSize/2 tokens and re-prefilled, then decoding continues with the
 * cache; the two agree exactly until the first crop.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT, KVCache } from './gpt';
import { Rng } from './rng';
import { onOneThread } from './wasm-threads';

export interface SampleOptions {
  /** Most tokens to generate per row. */
  maxNewTokens: number;
  /** Softmax temperature; 0 = greedy (default 1). */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or undefined = all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = all). */
  topP?: number;
  /** RNG seed (default 0). Same seed, same model, same prompts → same output. */
  seed?: number;
  /** A row stops after it samples the end-of-text token (default true). */
  stopAtEot?: boolean;
  /** Reuse keys/values between steps (default true); false recomputes the window every step. */
  useCache?: boolean;
  /** Awaited after every step: yield to the event loop, report progress, or throw to stop. */
  onStep?: (step: number) => Promise<void> | void;
  /** Turns generated ids into text (e.g. `ids => tokenizer.decode(ids)`); text is '' without it. */
  decode?: (ids: number[]) => string;
}

export interface SampleRow {
  /** New tokens, the end-of-text token included when the row stopped on it. */
  ids: number[];
  /** Decoded new tokens, without the end-of-text token. */
  text: string;
  /** log p of each sampled token under log_softmax(logits / temperature), before top-k/top-p
   *  filtering (temperature 1 when greedy). */
  logprobs: number[];
  /** True when the row stopped on the end-of-text token. */
  finished: boolean;
}

export type OnToken = (row: number, tokenId: number, step: number) => void;

export interface PickOptions {
  temperature: number;
  topK: number;
  topP: number;
}

/**
 * Choose the next token from one row of logits (`logits[offset .. offset+V)`).
 * Returns the token and its log-probability under log_softmax(logits / T) (T = 1 if greedy).
 */
export function pickToken(
  logits: Float32Array,
  offset: number,
  V: number,
  opts: PickOptions,
  rng: Rng,
): { token: number; logprob: number } {
  const T = opts.temperature > 0 ? opts.temperature : 1;
  // z = logits / T and e = exp(z − max), each computed once per call into reused buffers (the
  // same float64 values in the same order as three separate passes: the same token and logprob).
  if (scratchZ.length < V) {
    scratchZ = new Float64Array(V);
    scratchE = new Float64Array(V);
  }
  const z = scratchZ;
  const e = scratchE;
  let max = -Infinity;
  let argmax = 0;
  for (let i = 0; i < V; i++) {
    z[i] = logits[offset + i] / T;
    if (z[i] > max) {
      max = z[i];
      argmax = i;
    }
  }
  let sumExp = 0;
  for (let i = 0; i < V; i++) sumExp += e[i] = Math.exp(z[i] - max);
  const logZ = max + Math.log(sumExp);
  if (!(opts.temperature > 0)) return { token: argmax, logprob: z[argmax] - logZ };

  // Candidate set: all tokens, or the top-k / top-p nucleus, in descending probability.
  let cand: number[] | null = null;
  const k = opts.topK > 0 && opts.topK < V ? opts.topK : V;
  if (k < V || opts.topP < 1) {
    cand = Array.from({ length: V }, (_, i) => i).sort((a, b) => z[b] - z[a] || a - b);
    cand.length = k;
    if (opts.topP < 1) {
      let mass = 0;
      let kept = 0;
      let total = 0;
      for (const i of cand) total += Math.exp(z[i] - logZ);
      while (kept < cand.length && (kept === 0 || mass < opts.topP * total)) mass += Math.exp(z[cand[kept++]] - logZ);
      cand.length = kept;
    }
  }
  const ids = cand ?? null;
  const n = ids ? ids.length : V;
  let norm = 0;
  if (ids) for (let j = 0; j < n; j++) norm += e[ids[j]];
  else norm = sumExp; // the same sum, in the same order
  let u = rng.next() * norm;
  let token = ids ? ids[n - 1] : n - 1; // fallback against rounding at the end of the sum
  for (let j = 0; j < n; j++) {
    const i = ids ? ids[j] : j;
    u -= e[i];
    if (u < 0) {
      token = i;
      break;
    }
  }
  return { token, logprob: z[token] - logZ };
}

/** pickToken's buffers (logits / T and their exponentials), grown to the largest vocabulary seen. */
let scratchZ = new Float64Array(0);
let scratchE = new Float64Array(0);

/** Left-pad the last `window` tokens of each context; returns ids [B, W] and padding per row. */
function padWindows(contexts: number[][], window: number, padId: number): { ids: tf.Tensor2D; padding: number[] } {
  const rows = contexts.map((c) => c.slice(Math.max(0, c.length - window)));
  const W = Math.max(...rows.map((r) => r.length));
  const flat = new Int32Array(rows.length * W).fill(padId);
  const padding = rows.map((r, b) => {
    flat.set(r, b * W + (W - r.length));
    return W - r.length;
  });
  return { ids: tf.tensor2d(flat, [rows.length, W], 'int32'), padding };
}

/** Run a (padded) window through a fresh cache; returns the last column's logits [B, V]. */
function prefill(
  model: GPT,
  contexts: number[][],
  window: number,
  padId: number,
): { cache: KVCache; last: tf.Tensor2D } {
  const { ids, padding } = padWindows(contexts, window, padId);
  const cache = model.createCache(contexts.length, padding);
  const logits = model.forwardCached(ids, cache);
  const [B, W, V] = logits.shape;
  const last = tf.tidy(() => tf.reshape(tf.slice(logits, [0, W - 1, 0], [B, 1, V]), [B, V]) as tf.Tensor2D);
  tf.dispose([ids, logits]);
  return { cache, last };
}

/**
 * Generate up to `opts.maxNewTokens` tokens after each prompt (an empty prompt starts from
 * the end-of-text token, as GPT-2 does). `onToken` is called for every sampled token of every
 * running row, in row order within a step, for streaming.
 */
export async function generate(
  model: GPT,
  promptIds: number[][],
  opts: SampleOptions,
  eotId: number,
  onToken?: OnToken,
): Promise<SampleRow[]> {
  const B = promptIds.length;
  const { blockSize, vocabSize: V } = model.config;
  const pick: PickOptions = { temperature: opts.temperature ?? 1, topK: opts.topK ?? 0, topP: opts.topP ?? 1 };
  if (!(pick.temperature >= 0)) throw new RangeError(`temperature must be ≥ 0, got ${pick.temperature}`);
  if (!(pick.topP > 0 && pick.topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${pick.topP}`);
  const stopAtEot = opts.stopAtEot ?? true;
  const useCache = opts.useCache ?? true;
  const rng = new Rng(opts.seed ?? 0);
  const contexts = promptIds.map((p) => (p.length ? [...p] : [eotId]));
  for (const c of contexts)
    for (const id of c)
      if (!Number.isInteger(id) || id < 0 || id >= V)
        throw new RangeError(`prompt token ${id} is outside the vocabulary [0, ${V})`);
  const rows: SampleRow[] = promptIds.map(() => ({ ids: [], text: '', logprobs: [], finished: false }));
  if (B === 0) return rows;

  let cache: KVCache | null = null;
  let last: tf.Tensor2D | null = null;
  try {
    for (let step = 0; step < opts.maxNewTokens; step++) {
      // Logits of the next token for every row: [B, V]. With the cache, on one thread: the
      // products are too small for the wasm pool to pay (wasm-threads.ts).
      if (!useCache) {
        const r = prefill(model, contexts, blockSize, eotId);
        r.cache.dispose();
        last = r.last;
      } else if (!cache) {
        ({ cache, last } = onOneThread(() => prefill(model, contexts, blockSize, eotId)));
      } else if (cache.length >= blockSize) {
        cache.dispose();
        ({ cache, last } = onOneThread(() => prefill(model, contexts, Math.max(1, Math.floor(blockSize / 2)), eotId)));
      } else {
        const kv = cache;
        last = onOneThread(() => {
          const next = tf.tensor2d(
            contexts.map((c) => [c[c.length - 1]]),
            [B, 1],
            'int32',
          );
          const logits = model.forwardCached(next, kv);
          const out = tf.reshape(logits, [B, V]) as tf.Tensor2D;
          tf.dispose([next, logits]);
          return out;
        });
      }
      const data = (await last!.data()) as Float32Array; // one read-back per step
      last!.dispose();
      last = null;
      for (let b = 0; b < B; b++) {
        const row = rows[b];
        if (row.finished) {
          contexts[b].push(eotId); // keeps the batch in step; never reported
          continue;
        }
        const { token, logprob } = pickToken(data, b * V, V, pick, rng);
        row.ids.push(token);
        row.logprobs.push(logprob);
        contexts[b].push(token);
        onToken?.(b, token, step);
        if (stopAtEot && token === eotId) row.finished = true;
      }
      if (rows.every((r) => r.finished)) break;
      await opts.onStep?.(step);
    }
  } finally {
    cache?.dispose();
    last?.dispose();
  }
  if (opts.decode) for (const r of rows) r.text = opts.decode(r.ids.filter((id) => id !== eotId));
  return rows;
}
