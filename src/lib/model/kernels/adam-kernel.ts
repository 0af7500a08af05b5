/**
 * The fused Adam step (`adam.as.ts`, AssemblyScript; bytes in `adam-wasm.ts`, built by
 * `scripts/build-kernels.ts`) as a function of TF.js variables, for `src/lib/rlhf/adam.ts` on the
 * CPU-side backends (wasm, cpu), where reading a tensor is a copy, not a GPU read-back.
 *
 * Why: TF.js runs Adam as ~15 kernels per variable, each a pass over the variable, and on wasm
 * the ones with a scalar operand are slow (profiled: ~15 % of a PPO update, 1,590 kernels per
 * step for the policy and value model; scripts/bench/profile-ppo.ts). Here each variable is one
 * pass: its parameter, gradient and moments are copied into the kernel's memory, updated there
 * and copied back as new tensors that the variables take (never written in place: a snapshot of
 * the moments or weights may share their buffers). Same float32 operations in the same order as
 * the TF.js ops, so the same bits (tests/unit/adam.test.ts).
 *
 * The module is under 1 KB, so it compiles synchronously anywhere (browsers refuse only modules
 * over 4 KB on the main thread).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ADAM_WASM_BASE64 } from './adam-wasm';
import { f32Values } from './tensor-view';
import { instantiateSync } from './wasm-module';

interface Exports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  // prettier-ignore
  adam(p: number, g: number, m: number, v: number, n: number, scale: number, b1: number, omb1: number,
    b2: number, omb2: number, bc1: number, bc2: number, eps: number, wd: number, lr: number): void;
}

let exportsCache: Exports | null = null;
let loadFailed = false;
let forcedOff = false;

function kernel(): Exports | null {
  if (forcedOff || loadFailed) return null;
  if (exportsCache) return exportsCache;
  exportsCache = instantiateSync<Exports>(ADAM_WASM_BASE64);
  loadFailed = exportsCache === null; // e.g. no wasm SIMD: the TF.js ops stay in use
  return exportsCache;
}

/** Whether the fused step runs here: a CPU-side backend (wasm, cpu) and the kernel loads. A fixed rule, never timed. */
export function fusedAdamAvailable(): boolean {
  const be = tf.getBackend();
  return (be === 'wasm' || be === 'cpu') && kernel() !== null;
}

/** For tests and benchmarks: force the TF.js ops (true) or allow the kernel again (false). */
export function disableFusedAdam(off: boolean): void {
  forcedOff = off;
}

/** Adam's per-step constants, as float32 (what TF.js makes of the JS numbers it is given). */
export interface FusedAdamStep {
  beta1: number;
  /** 1 − β1 rounded once from the float64 β1 (as `tf.mul(g, 1 - beta1)` does), likewise 1 − β2. */
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  eps: number;
  lr: number;
  /** Bias corrections 1 − β1ᵗ and 1 − β2ᵗ. */
  bc1: number;
  bc2: number;
}

/** Room for `floats` float32 values ×4 (p, g, m, v) from the heap base; returns the four offsets. */
function reserve(ex: Exports, floats: number): [number, number, number, number] {
  const base = ex.heapBase();
  const bytes = ((floats * 4 + 15) & ~15) >>> 0;
  const need = base + 4 * bytes - ex.memory.buffer.byteLength;
  if (need > 0) ex.memory.grow(Math.ceil(need / 65536));
  return [base, base + bytes, base + 2 * bytes, base + 3 * bytes];
}

/**
 * One Adam step of each variable `p[i]` with gradient `g[i]` (scaled by `scale` first when it is
 * not 1), moments `m[i]`, `v[i]` and decoupled weight decay `wd[i]` (0 = none). Variables are
 * replaced, not written in place. Throws where {@link fusedAdamAvailable} is false.
 */
export function fusedAdamStep(
  items: { p: tf.Variable; g: tf.Tensor; m: tf.Variable; v: tf.Variable; wd: number }[],
  scale: number,
  h: FusedAdamStep,
): void {
  const ex = kernel();
  if (!ex || !fusedAdamAvailable()) throw new Error('fusedAdamStep: the fused Adam kernel does not run here');
  const most = Math.max(0, ...items.map((x) => x.p.size));
  const [pp, pg, pm, pv] = reserve(ex, most);
  // The wasm backend copies what it is given into its own heap; the cpu backend keeps the array.
  const copyOut = tf.getBackend() !== 'wasm';
  for (const { p, g, m, v, wd } of items) {
    const n = p.size;
    if (g.size !== n || m.size !== n || v.size !== n) throw new RangeError(`fusedAdamStep: sizes differ for ${p.name}`);
    const mem = ex.memory.buffer;
    new Float32Array(mem, pp, n).set(f32Values(p));
    new Float32Array(mem, pg, n).set(f32Values(g));
    new Float32Array(mem, pm, n).set(f32Values(m));
    new Float32Array(mem, pv, n).set(f32Values(v));
    // prettier-ignore
    ex.adam(pp, pg, pm, pv, n, scale, h.beta1, h.oneMinusBeta1, h.beta2, h.oneMinusBeta2, h.bc1, h.bc2, h.eps, wd, h.lr);
    const out = ex.memory.buffer;
    for (const [variable, at] of [
      [p, pp],
      [m, pm],
      [v, pv],
    ] as const) {
      const view = new Float32Array(out, at, n);
      const t = tf.tensor(copyOut ? view.slice() : view, variable.shape, 'float32');
      variable.assign(t);
      t.dispose();
    }
  }
}
