/**
 * Causal attention as one TF.js op with a hand-written gradient, computed by our own
 * WebAssembly kernel (`attention.as.ts`, AssemblyScript; bytes in `attention-wasm.ts`, built by
 * `scripts/build-kernels.ts`). Used by `gpt.ts` on the CPU-side backends (wasm, cpu), where
 * reading a tensor is a copy, not a GPU read-back; other backends keep the TF.js ops.
 *
 * Data cross into the kernel's own memory and back as copies (cheap next to the work: a few MB
 * per call at memcpy speed). The input and the probabilities (B·nh·t·t floats) are kept for the
 * backward pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ATTENTION_WASM_BASE64 } from './attention-wasm';
import { f32Values } from './tensor-view';
import { decodeBase64, instantiateSync } from './wasm-module';

interface Exports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  // prettier-ignore
  forward(q: number, k: number, v: number, y: number, probs: number, pad: number,
    B: number, nh: number, t: number, L: number, hs: number, sq: number, skv: number, sy: number, scale: number): void;
  // prettier-ignore
  backward(q: number, k: number, v: number, probs: number, dy: number, dq: number, dk: number, dv: number,
    pad: number, scratch: number, B: number, nh: number, t: number, L: number, hs: number, sq: number, skv: number,
    sy: number, scale: number): void;
}

let exportsCache: Exports | null = null;
let loadFailed = false;
let forcedOff = false;

/** The instantiated kernel (compiled synchronously on first use unless prepared), or null where it cannot run (e.g. no wasm SIMD). */
function kernel(): Exports | null {
  if (forcedOff || loadFailed) return null;
  if (exportsCache) return exportsCache;
  exportsCache = instantiateSync<Exports>(ATTENTION_WASM_BASE64);
  loadFailed = exportsCache === null; // e.g. no wasm SIMD: the TF.js ops stay in use
  return exportsCache;
}

/**
 * Compile and instantiate the kernel asynchronously, once: browsers refuse synchronous compiles of
 * modules over 4 KB on the main thread (the engine can run there, `?engine=main`). The engine
 * calls this when it sets up the wasm or cpu backend; elsewhere (Node, tests) the first use
 * compiles synchronously. A failure leaves the TF.js ops in use.
 */
export async function prepareAttentionKernel(): Promise<boolean> {
  if (exportsCache || loadFailed) return exportsCache !== null;
  try {
    const { instance } = await WebAssembly.instantiate(decodeBase64(ATTENTION_WASM_BASE64) as BufferSource, {});
    exportsCache = instance.exports as unknown as Exports;
  } catch {
    loadFailed = true;
  }
  return exportsCache !== null;
}

/** Whether the kernel runs here: a CPU-side backend, a multiple-of-4 head size, and the kernel loads. */
export function attentionKernelAvailable(headSize: number): boolean {
  const be = tf.getBackend();
  return (be === 'wasm' || be === 'cpu') && headSize % 4 === 0 && kernel() !== null;
}

/** Whether the kernel is compiled and not switched off (for describing the backend in the UI and the bench). */
export function attentionKernelReady(): boolean {
  return !forcedOff && exportsCache !== null;
}

/** For tests and benchmarks: force the TF.js path (true) or allow the kernel again (false). */
export function disableAttentionKernel(off: boolean): void {
  forcedOff = off;
}

/** Bump allocation in the kernel's memory, reset for every call (calls do not overlap: JS is single-threaded). */
class Arena {
  private top: number;
  constructor(private readonly ex: Exports) {
    this.top = ex.heapBase(); // below: the module's static data
  }
  alloc(bytes: number): number {
    const at = this.top;
    this.top += (bytes + 15) & ~15;
    const need = this.top - this.ex.memory.buffer.byteLength;
    if (need > 0) this.ex.memory.grow(Math.ceil(need / 65536));
    return at;
  }
  put(data: Float32Array | Int32Array): number {
    const at = this.alloc(data.byteLength);
    new Uint8Array(this.ex.memory.buffer, at, data.byteLength).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    return at;
  }
  zeros(n: number): number {
    const at = this.alloc(n * 4);
    new Float32Array(this.ex.memory.buffer, at, n).fill(0);
    return at;
  }
  get(at: number, n: number): Float32Array {
    return new Float32Array(this.ex.memory.buffer, at, n).slice();
  }
}

type Args = (tf.Tensor | tf.GradSaveFunc)[];

function f32(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

/**
 * Causal self-attention of the fused projection qkv [B·t, 3C] (q, k, v side by side, heads of
 * hs = C/nh columns each, as GPT-2's c_attn makes them), no padding; returns y [B·t, C] with the
 * heads side by side, ready for c_proj. Differentiable: the gradient is d qkv [B·t, 3C]. Replaces
 * the reshape, 4-D transpose, split, q scaling, two batched matMuls, softmax and the transpose
 * back of the TF.js formulation.
 */
export function selfAttention(qkv: tf.Tensor2D, B: number, t: number, nh: number): tf.Tensor2D {
  const C3 = qkv.shape[1];
  const C = C3 / 3;
  const hs = C / nh;
  const scale = 1 / Math.sqrt(hs);
  const pad = new Int32Array(B);
  const op = tf.customGrad((...args: Args) => {
    const [x] = args as [tf.Tensor2D];
    const ex = kernel()!;
    const mem = new Arena(ex);
    // What the backward needs stays here as plain arrays (saving tensors would copy them into
    // and out of the backend once more).
    const xs = f32(x);
    const px = mem.put(xs);
    const ppad = mem.put(pad);
    const py = mem.alloc(B * t * C * 4);
    const pp = mem.alloc(B * nh * t * t * 4);
    ex.forward(px, px + 4 * C, px + 8 * C, py, pp, ppad, B, nh, t, t, hs, C3, C3, C, scale);
    const probs = mem.get(pp, B * nh * t * t);
    return {
      value: tf.tensor2d(mem.get(py, B * t * C), [B * t, C]),
      gradFunc: (dy: tf.Tensor) => {
        const g = new Arena(ex);
        const gx = g.put(xs);
        const gp = g.put(probs);
        const gdy = g.put(f32(dy));
        const gpad = g.put(pad);
        const gd = g.zeros(B * t * C3);
        const scratch = g.alloc(t * 4);
        // prettier-ignore
        ex.backward(gx, gx + 4 * C, gx + 8 * C, gp, gdy, gd, gd + 4 * C, gd + 8 * C, gpad, scratch,
          B, nh, t, t, hs, C3, C3, C, scale);
        return [tf.tensor2d(g.get(gd, B * t * C3), [B * t, C3])];
      },
    };
  });
  return op(qkv) as tf.Tensor2D;
}

/**
 * Attention of the t new rows of qkv [B·t, 3C] over keys and values [B, L, C] (the cached ones
 * followed by the new ones, L ≥ t), with `padding[b]` leading key columns of row b masked;
 * returns y [B·t, C]. For sampling: not differentiable.
 */
export function cachedAttention(
  qkv: tf.Tensor2D,
  keys: tf.Tensor3D,
  values: tf.Tensor3D,
  nh: number,
  padding?: readonly number[],
): tf.Tensor2D {
  const [B, L, C] = keys.shape;
  const t = qkv.shape[0] / B;
  const hs = C / nh;
  const ex = kernel()!;
  const mem = new Arena(ex);
  const pq = mem.put(f32(qkv));
  const pk = mem.put(f32(keys));
  const pv = mem.put(f32(values));
  const ppad = mem.put(Int32Array.from(padding ?? new Array<number>(B).fill(0)));
  const py = mem.alloc(B * t * C * 4);
  const pp = mem.alloc(B * nh * t * L * 4);
  ex.forward(pq, pk, pv, py, pp, ppad, B, nh, t, L, hs, 3 * C, C, C, 1 / Math.sqrt(hs));
  return tf.tensor2d(mem.get(py, B * t * C), [B * t, C]);
}

/**
 * Keys and values of a decode cache kept as plain arrays, per layer [B, cap, C] (row b's column
 * j at (b·cap + j)·C), `length` columns filled: what `gpt.ts`'s wasm decode path keeps instead of
 * tensors, so a step appends its new columns in place (amortised growth) instead of a Slice and a
 * Concat kernel for each of keys and values per layer, and the attention reads them from here.
 */
export class RowCache {
  keys: Float32Array;
  values: Float32Array;
  cap: number;
  constructor(
    readonly B: number,
    readonly C: number,
    cap: number,
  ) {
    this.cap = Math.max(1, cap);
    this.keys = new Float32Array(B * this.cap * C);
    this.values = new Float32Array(B * this.cap * C);
  }

  /** Room for `L` columns per row (doubling, at most `limit`), keeping the first `filled`. */
  reserve(L: number, filled: number, limit: number): void {
    if (L <= this.cap) return;
    const cap = Math.max(L, Math.min(limit, 2 * this.cap));
    const { B, C } = this;
    for (const key of ['keys', 'values'] as const) {
      const old = this[key];
      const next = new Float32Array(B * cap * C);
      for (let b = 0; b < B; b++) next.set(old.subarray(b * this.cap * C, (b * this.cap + filled) * C), b * cap * C);
      this[key] = next;
    }
    this.cap = cap;
  }
}

/**
 * {@link cachedAttention} with the keys and values in `rows` (a {@link RowCache}): appends the t
 * new keys and values of qkv [B·t, 3C] after the P columns already there, then attends over all
 * L = P + t. The same kernel call on the same numbers as `cachedAttention` with the concatenated
 * tensors, so the same bits.
 */
export function cachedAttentionRows(
  qkv: tf.Tensor2D,
  rows: RowCache,
  P: number,
  limit: number,
  nh: number,
  padding?: readonly number[],
): tf.Tensor2D {
  const { B, C } = rows;
  const t = qkv.shape[0] / B;
  const L = P + t;
  const hs = C / nh;
  rows.reserve(L, P, limit);
  const ex = kernel()!;
  const mem = new Arena(ex);
  const pq = mem.put(f32Values(qkv));
  const pk = mem.alloc(B * L * C * 4);
  const pv = mem.alloc(B * L * C * 4);
  const ppad = mem.put(Int32Array.from(padding ?? new Array<number>(B).fill(0)));
  const py = mem.alloc(B * t * C * 4);
  const pp = mem.alloc(B * nh * t * L * 4);
  const heap = ex.memory.buffer;
  const q = new Float32Array(heap, pq, B * t * 3 * C);
  const k = new Float32Array(heap, pk, B * L * C);
  const v = new Float32Array(heap, pv, B * L * C);
  const cap = rows.cap;
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < t; j++) {
      const src = (b * t + j) * 3 * C;
      const dst = (b * cap + P + j) * C;
      rows.keys.set(q.subarray(src + C, src + 2 * C), dst);
      rows.values.set(q.subarray(src + 2 * C, src + 3 * C), dst);
    }
    k.set(rows.keys.subarray(b * cap * C, (b * cap + L) * C), b * L * C);
    v.set(rows.values.subarray(b * cap * C, (b * cap + L) * C), b * L * C);
  }
  ex.forward(pq, pk, pv, py, pp, ppad, B, nh, t, L, hs, 3 * C, C, C, 1 / Math.sqrt(hs));
  const y = new Float32Array(ex.memory.buffer, py, B * t * C);
  // The wasm backend copies what it is given into its heap; the cpu backend keeps the array.
  return tf.tensor2d(tf.getBackend() === 'wasm' ? y : y.slice(), [B * t, C]);
}
