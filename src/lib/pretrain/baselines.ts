/**
 * What counting alone achieves: the cross-entropy of a unigram and an add-k bigram model on the
 * same validation tokens the GPT is scored on, so the loss chart can show when the network beats
 * counting. Both are fitted on the training token stream with add-k (Lidstone) smoothing,
 * p(b | a) = (c(a, b) + k) / (c(a) + k·V) (Jurafsky & Martin, Speech and Language Processing,
 * 3rd ed., ch. 3.5), and bits per byte convert nats per token to a tokenizer-free unit:
 * bpb = total nats / (ln 2 × bytes).
 *
 * "The same tokens": `evaluateLoss` (../model/evaluate.ts) scores the targets of consecutive
 * non-overlapping windows of blockSize + 1 tokens; `evalTargets` lists exactly those positions.
 */

/** Positions of the targets `evaluateLoss` scores: window w predicts ids[w·T + 1 … w·T + T]. */
export function evalTargets(valLength: number, T: number, maxWindows = Infinity): { from: number; to: number } {
  const windows = Math.min(Math.floor((valLength - 1) / T), maxWindows);
  return { from: 1, to: windows * T + 1 };
}

export interface Baselines {
  /** Unigram cross-entropy, nats per token. */
  unigram: number;
  /** Add-k bigram cross-entropy, nats per token. */
  bigram: number;
  /** The smoothing constant used. */
  k: number;
  /** Targets scored. */
  tokens: number;
}

/**
 * Unigram and add-k bigram cross-entropy (nats / token) of `val`'s targets `[from, to)` (default
 * every token after the first), fitted on `train`, vocabulary `V`. The unigram uses the same k.
 */
export function countingBaselines(
  train: Int32Array,
  val: Int32Array,
  V: number,
  k: number,
  range: { from: number; to: number } = { from: 1, to: val.length },
): Baselines {
  if (!(k > 0)) throw new RangeError(`k must be > 0, got ${k}`);
  const uni = new Float64Array(V);
  for (let i = 0; i < train.length; i++) uni[train[i]]++;
  // Bigram counts in a map keyed a·V + b (V² can be far too large for an array).
  const pair = new Map<number, number>();
  const prev = new Float64Array(V);
  for (let i = 1; i < train.length; i++) {
    const key = train[i - 1] * V + train[i];
    pair.set(key, (pair.get(key) ?? 0) + 1);
    prev[train[i - 1]]++;
  }
  const N = train.length;
  let uniSum = 0;
  let biSum = 0;
  for (let i = range.from; i < range.to; i++) {
    const a = val[i - 1];
    const b = val[i];
    uniSum -= Math.log((uni[b] + k) / (N + k * V));
    biSum -= Math.log(((pair.get(a * V + b) ?? 0) + k) / (prev[a] + k * V));
  }
  const n = range.to - range.from;
  return { unigram: uniSum / n, bigram: biSum / n, k, tokens: n };
}

/** Bits per byte from nats per token, given how many tokens cover how many bytes. */
export function bitsPerByte(natsPerToken: number, tokens: number, bytes: number): number {
  return (natsPerToken * tokens) / (Math.LN2 * bytes);
}
