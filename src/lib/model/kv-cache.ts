/**
 * The key/value cache of `GPT.forwardCached` (./gpt.ts) for incremental decoding, both
 * architectures (GPT-2's and Llama's, ./llama.ts): what one batch has attended to so far.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { RowCache } from './kernels/attention-kernel';

/**
 * Key/value cache of one batch for incremental decoding. Rows may be left-padded:
 * `padding[b]` leading columns of row b are padding, masked out as keys, and the
 * row's positions count from its first real token.
 */
export class KVCache {
  /**
   * Per layer, keys and values: [B, L, C] rows when our attention kernel runs (wasm, cpu); on
   * other backends heads, keys already transposed [B, nh, hs, L] and values [B, nh, L, hs]
   * (`layout`).
   */
  keys: tf.Tensor[] = [];
  values: tf.Tensor[] = [];
  layout: 'rows' | 'heads' | null = null;
  /** Columns filled so far (padding included). */
  length = 0;
  /**
   * The tied head's transposed embedding [C, V], made at the first step and kept for the cache's
   * life: the weights do not change while a batch decodes, and transposing a 50,257 × 768 table
   * for every new token cost more than the step itself.
   */
  headT: tf.Tensor2D | null = null;
  /**
   * The wasm decode path's keys and values (`rows` layout), per layer, as plain arrays that grow
   * in place (kernels/attention-kernel.ts `RowCache`) instead of `keys`/`values` tensors.
   */
  rowData: RowCache[] | null = null;
  constructor(
    readonly batch: number,
    readonly padding: number[],
  ) {}
  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t.dispose();
    this.headT?.dispose();
    this.headT = null;
    this.rowData = null;
    this.keys = [];
    this.values = [];
    this.length = 0;
    this.layout = null;
  }
}
