/**
 * Our dense matrix product (`gemm.as.ts`) as TF.js-facing functions, for the wasm backend's
 * training step (`ops.ts`): C = op(A)·op(B) (+ bias) with either operand transposed by the
 * packing, so dX = dY·Wᵀ and dW = Xᵀ·dY need no Transpose kernel.
 *
 * Two builds of one source: relaxed SIMD (`f32x4.relaxed_madd`, a fused multiply-add where the
 * CPU has one; Chromium ships it) and plain SIMD. The relaxed one is used where
 * `WebAssembly.validate` accepts it (Node 20 only behind `--experimental-wasm-relaxed-simd`), else
 * the plain one, else none (no wasm SIMD: the TF.js ops stay in use).
 *
 * Where it is used is measured, per shape, in the running process ({@link preferOurs}): XNNPACK
 * is faster for some shapes (and has threads), ours for others; each shape's choice is made once
 * from the best of a few timed runs of both.
 */
import * as tf from '@tensorflow/tfjs-core';
import { GEMM_RELAXED_WASM_BASE64 } from './gemm-relaxed-wasm';
import { GEMM_SIMD_WASM_BASE64 } from './gemm-simd-wasm';
import { decodeBase64 } from './wasm-module';

interface Exports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  fused(): number;
  // prettier-ignore
  gemm(a: number, b: number, c: number, bias: number, M: number, N: number, K: number,
    transA: number, transB: number, pa: number, pb: number): void;
}

export type GemmBuild = 'relaxed' | 'simd';

const loaded: Partial<Record<GemmBuild, Exports | null>> = {};
let forced: GemmBuild | 'off' | null = null;

function load(build: GemmBuild): Exports | null {
  if (build in loaded) return loaded[build]!;
  const bytes = decodeBase64(build === 'relaxed' ? GEMM_RELAXED_WASM_BASE64 : GEMM_SIMD_WASM_BASE64) as BufferSource;
  let ex: Exports | null = null;
  try {
    if (WebAssembly.validate(bytes)) ex = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as never;
  } catch {
    ex = null;
  }
  loaded[build] = ex;
  return ex;
}

/** Compile both builds asynchronously (browsers refuse big synchronous compiles on the main thread). */
export async function prepareGemmKernel(): Promise<GemmBuild | null> {
  for (const build of ['relaxed', 'simd'] as GemmBuild[]) {
    if (build in loaded) continue;
    const bytes = decodeBase64(build === 'relaxed' ? GEMM_RELAXED_WASM_BASE64 : GEMM_SIMD_WASM_BASE64) as BufferSource;
    try {
      loaded[build] = WebAssembly.validate(bytes)
        ? ((await WebAssembly.instantiate(bytes, {})).instance.exports as never)
        : null;
    } catch {
      loaded[build] = null;
    }
  }
  return gemmBuild();
}

/** The build in use: relaxed SIMD where valid, else plain SIMD, else null (or what {@link forceGemmBuild} chose). */
export function gemmBuild(): GemmBuild | null {
  if (forced === 'off') return null;
  if (forced) return load(forced) ? forced : null;
  if (load('relaxed')) return 'relaxed';
  if (load('simd')) return 'simd';
  return null;
}

/** For tests and benchmarks: use one build, none ('off'), or the automatic choice (null). Resets the per-shape choices. */
export function forceGemmBuild(build: GemmBuild | 'off' | null): void {
  forced = build;
  choices.clear();
}

/** Bump allocation in the kernel's memory from its heap base, for one call. */
function reserve(ex: Exports, bytes: number[]): number[] {
  let top = (ex.heapBase() + 15) & ~15;
  const at = bytes.map((n) => {
    const p = top;
    top += (n + 15) & ~15;
    return p;
  });
  const need = top - ex.memory.buffer.byteLength;
  if (need > 0) ex.memory.grow(Math.ceil(need / 65536));
  return at;
}

/**
 * C [M, N] = op(A)·op(B) (+ bias [N]) with A [M, K] (or [K, M] when transA) and B [K, N] (or
 * [N, K] when transB), row-major float32; on `build` (default: {@link gemmBuild}). Throws where no
 * build runs.
 */
export function gemm(
  a: Float32Array,
  b: Float32Array,
  M: number,
  N: number,
  K: number,
  transA = false,
  transB = false,
  bias: Float32Array | null = null,
  build: GemmBuild | null = gemmBuild(),
): Float32Array {
  const ex = build ? load(build) : null;
  if (!ex) throw new Error('gemm: no wasm SIMD build of the kernel runs here');
  if (a.length !== M * K || b.length !== K * N || (bias && bias.length !== N))
    throw new RangeError(`gemm: sizes do not match M ${M}, N ${N}, K ${K}`);
  const panelsA = Math.ceil(M / 4);
  const panelsB = Math.ceil(N / 8);
  const [pa, pb, pA, pB, pC, pBias] = reserve(ex, [
    16 * K * panelsA,
    32 * K * panelsB,
    a.byteLength,
    b.byteLength,
    M * N * 4,
    bias ? bias.byteLength : 0,
  ]);
  const mem = ex.memory.buffer;
  new Float32Array(mem, pA, a.length).set(a);
  new Float32Array(mem, pB, b.length).set(b);
  if (bias) new Float32Array(mem, pBias, bias.length).set(bias);
  ex.gemm(pA, pB, pC, bias ? pBias : 0, M, N, K, transA ? 1 : 0, transB ? 1 : 0, pa, pb);
  return new Float32Array(ex.memory.buffer, pC, M * N).slice();
}

// ------------------------------------------------------------------------ per-shape choice

const choices = new Map<string, boolean>();
/** Timed runs of each side when a shape is first seen, alternating (the best of each is kept). */
const TRIALS = 5;
/**
 * Ours must be this much faster to be used: on a busy machine single timings swing by more than
 * the difference, and a wrong choice for ours costs more (one thread) than a wrong one for TF.js.
 */
const MARGIN = 0.85;
/** Below this many multiply-adds a product stays on TF.js (copies and a trial cost more than it saves). */
export const GEMM_MIN_MACS = 1 << 20;

export type GemmPolicy = 'measure' | 'always' | 'never';
/**
 * 'never' by default: a choice made by timing differs between processes (our kernel and XNNPACK
 * round differently, ~1e-7 relative), and one seed must give the same run in every fresh profile
 * (tests/e2e/reproducible.test.ts). Measured whole-step gains were within this machine's noise, so
 * the kernel stays a benchmark A/B (`npm run bench`) until it wins clearly and by a fixed rule.
 */
let policy: GemmPolicy = 'never';

/** For tests and benchmarks: measure per shape, always use our kernel, or never (the default). */
export function setGemmPolicy(p: GemmPolicy): void {
  policy = p;
  choices.clear();
}

/** The policy in force (the backend's header names the kernel only when it may run). */
export function gemmPolicy(): GemmPolicy {
  return policy;
}

/** Best times of `a` and `b` over {@link TRIALS} alternating runs (so a burst of load hits both). */
function bestOfBoth(a: () => void, b: () => void): [number, number] {
  const best = [Infinity, Infinity];
  for (let i = 0; i < TRIALS; i++)
    [a, b].forEach((fn, j) => {
      const t0 = performance.now();
      fn();
      best[j] = Math.min(best[j], performance.now() - t0);
    });
  return best as [number, number];
}

/**
 * Whether op(A)[M, K]·op(B)[K, N] should run on our kernel: on the wasm backend, with a build
 * that runs here, for products of at least {@link GEMM_MIN_MACS}, where it was faster when this
 * shape (M to the next power of two) was first seen in this process, by a margin. TF.js's side is what
 * ops.ts did before (explicit transposes, then matMul; XNNPACK on the backend's threads), ours
 * includes the copies in and out of the backend. Trials run inside ops' forward and gradient
 * functions, where TF.js records nothing, and dispose what they make.
 */
export function preferOurs(M: number, N: number, K: number, transA: boolean, transB: boolean): boolean {
  if (policy === 'never' || !gemmBuild()) return false;
  if (policy === 'always') return true;
  if (tf.getBackend() !== 'wasm' || M * N * K < GEMM_MIN_MACS) return false;
  const key = `${2 ** Math.ceil(Math.log2(M))},${N},${K},${+transA},${+transB}`;
  const known = choices.get(key);
  if (known !== undefined) return known;
  const a = tf.randomUniform(transA ? [K, M] : [M, K]) as tf.Tensor2D;
  const b = tf.randomUniform(transB ? [N, K] : [K, N]) as tf.Tensor2D;
  const theirs = () =>
    tf.tidy(() => {
      tf.matMul(transA ? tf.transpose(a) : a, transB ? tf.transpose(b) : b).dataSync();
    });
  const ours = () => matMulOurs(a, b, transA, transB).dispose();
  theirs(); // warm both (XNNPACK builds its operator on first use)
  ours();
  const [msOurs, msTheirs] = bestOfBoth(ours, theirs);
  const win = msOurs < MARGIN * msTheirs;
  tf.dispose([a, b]);
  choices.set(key, win);
  return win;
}

/** The per-shape choices made so far: "M,N,K,transA,transB" → ours (for the bench's report). */
export function gemmChoices(): Record<string, boolean> {
  return Object.fromEntries(choices);
}

/** op(a)·op(b) of 2-D tensors through our kernel (+ bias [N]); not differentiable by itself. */
export function matMulOurs(
  a: tf.Tensor2D,
  b: tf.Tensor2D,
  transA = false,
  transB = false,
  bias: tf.Tensor1D | null = null,
): tf.Tensor2D {
  const [M, K] = transA ? [a.shape[1], a.shape[0]] : a.shape;
  const N = transB ? b.shape[0] : b.shape[1];
  const out = gemm(
    a.dataSync() as Float32Array,
    b.dataSync() as Float32Array,
    M,
    N,
    K,
    transA,
    transB,
    bias ? (bias.dataSync() as Float32Array) : null,
  );
  return tf.tensor2d(out, [M, N]);
}
