/**
 * The decode step's residual add + LayerNorm (`layernorm.as.ts`, AssemblyScript; bytes in
 * `layernorm-wasm.ts`, built by `scripts/build-kernels.ts`) as a TF.js-facing function, for
 * `gpt.ts`'s KV-cached decoding on the wasm backend. Not differentiable: decoding records no
 * gradients.
 *
 * Why: a cached decode step at batch 16 runs ~210 TF.js kernels on [16, 128]-sized tensors, where
 * each kernel's fixed cost is most of its time; a residual add plus LayerNorm is 11 of them
 * (bias add, residual add, the 9 of `ops.layerNorm`). Here they are one call on copies in the
 * kernel's memory. The kernel does the wasm backend's float32 operations in the same order, so
 * the logits, and so the sampled tokens, are the same bits (tests/unit/layernorm-kernel.test.ts);
 * that holds for the wasm backend's kernels only, so it runs there only (a fixed rule).
 *
 * The module is under 1 KB, so it compiles synchronously anywhere.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LAYERNORM_WASM_BASE64 } from './layernorm-wasm';
import { f32Values } from './tensor-view';
import { GELU_TANH } from '../ops';
import { instantiateSync } from './wasm-module';

interface Exports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  // prettier-ignore
  addLayerNorm(x: number, y: number, bias: number, gamma: number, beta: number, xOut: number, hOut: number,
    N: number, C: number, eps: number): void;
  biasGeluArg(y: number, bias: number, zOut: number, sOut: number, N: number, C: number, a: number, c2: number): void;
}

let exportsCache: Exports | null = null;
let loadFailed = false;
let forcedOff = false;

function kernel(): Exports | null {
  if (forcedOff || loadFailed) return null;
  if (exportsCache) return exportsCache;
  exportsCache = instantiateSync<Exports>(LAYERNORM_WASM_BASE64);
  loadFailed = exportsCache === null;
  return exportsCache;
}

/** Whether the fused decode LayerNorm runs here: the wasm backend and the kernel loads. */
export function decodeLayerNormAvailable(): boolean {
  return tf.getBackend() === 'wasm' && kernel() !== null;
}

/**
 * For tests and benchmarks: force the TF.js ops (true) or allow the kernel again (false). gpt.ts's
 * wasm decode path (this kernel and the array KV cache) runs only where this kernel does.
 */
export function disableDecodeLayerNorm(off: boolean): void {
  forcedOff = off;
}

/**
 * r = x + (y + bias) (x + y without bias; x alone without y) and LayerNorm(r)·γ + β over the last
 * axis, for x, y [N, C]: returns both, { x: r, h }. Throws where {@link decodeLayerNormAvailable}
 * is false.
 */
export function addLayerNorm(
  x: tf.Tensor2D,
  y: tf.Tensor2D | null,
  bias: tf.Tensor1D | null,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  eps: number,
): { x: tf.Tensor2D; h: tf.Tensor2D } {
  const ex = kernel();
  if (!ex || !decodeLayerNormAvailable()) throw new Error('addLayerNorm: the kernel does not run here');
  const [N, C] = x.shape;
  if ((y && (y.shape[0] !== N || y.shape[1] !== C)) || gamma.size !== C || beta.size !== C || (bias && bias.size !== C))
    throw new RangeError('addLayerNorm: shapes do not match');
  const rowBytes = (N * C * 4 + 15) & ~15;
  const cBytes = (C * 4 + 15) & ~15;
  const base = ex.heapBase();
  const [px, py, pxo, pho] = [0, 1, 2, 3].map((i) => base + i * rowBytes);
  const [pb, pg, pbeta] = [0, 1, 2].map((i) => base + 4 * rowBytes + i * cBytes);
  const need = base + 4 * rowBytes + 3 * cBytes - ex.memory.buffer.byteLength;
  if (need > 0) ex.memory.grow(Math.ceil(need / 65536));
  const mem = ex.memory.buffer;
  new Float32Array(mem, px, N * C).set(f32Values(x));
  if (y) new Float32Array(mem, py, N * C).set(f32Values(y));
  if (bias) new Float32Array(mem, pb, C).set(f32Values(bias));
  new Float32Array(mem, pg, C).set(f32Values(gamma));
  new Float32Array(mem, pbeta, C).set(f32Values(beta));
  ex.addLayerNorm(px, y ? py : 0, bias ? pb : 0, pg, pbeta, pxo, pho, N, C, Math.fround(eps));
  // The wasm backend copies these views into its own heap.
  return {
    x: tf.tensor2d(new Float32Array(ex.memory.buffer, pxo, N * C), [N, C]),
    h: tf.tensor2d(new Float32Array(ex.memory.buffer, pho, N * C), [N, C]),
  };
}

/**
 * tanh-GELU of y + bias (y [N, C]) as `ops.geluTanh` computes it, z·σ(s): the bias add and s in
 * one kernel call, then TF.js's Sigmoid and Multiply (3 calls instead of 8). The same bits.
 * Throws where {@link decodeLayerNormAvailable} is false.
 */
export function biasGelu(y: tf.Tensor2D, bias: tf.Tensor1D | null): tf.Tensor2D {
  const ex = kernel();
  if (!ex || !decodeLayerNormAvailable()) throw new Error('biasGelu: the kernel does not run here');
  const [N, C] = y.shape;
  if (bias && bias.size !== C) throw new RangeError('biasGelu: shapes do not match');
  const rowBytes = (N * C * 4 + 15) & ~15;
  const base = ex.heapBase();
  const [py, pz, ps, pb] = [0, 1, 2, 3].map((i) => base + i * rowBytes);
  const need = pb + ((C * 4 + 15) & ~15) - ex.memory.buffer.byteLength;
  if (need > 0) ex.memory.grow(Math.ceil(need / 65536));
  const mem = ex.memory.buffer;
  new Float32Array(mem, py, N * C).set(f32Values(y));
  if (bias) new Float32Array(mem, pb, C).set(f32Values(bias));
  const f = Math.fround;
  ex.biasGeluArg(py, bias ? pb : 0, pz, ps, N, C, f(GELU_TANH.a), f(2 * GELU_TANH.c));
  return tf.tidy(() => {
    const z = tf.tensor2d(new Float32Array(ex.memory.buffer, pz, N * C), [N, C]);
    const s = tf.tensor2d(new Float32Array(ex.memory.buffer, ps, N * C), [N, C]);
    return tf.mul(z, tf.sigmoid(s));
  });
}
