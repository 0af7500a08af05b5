/**
 * Fused ops with hand-written gradients for the GPT training step, chosen by measurement on the
 * TF.js 4.22 wasm backend (scripts/bench/profile-step.ts prints kernels per step and the top
 * kernels; the before/after numbers are in the perf note of issue 8).
 *
 * Why custom gradients pay on wasm: every tensor a built-in kernel saves for its gradient is
 * cloned (an Identity kernel that copies the buffer), and a chain of small elementwise ops each
 * saves its inputs. One customGrad op saves only what its gradient needs and recomputes the rest.
 *
 * Maths follows:
 *  - matMul: dA = dY·Bᵀ, dB = Aᵀ·dY (any linear-algebra text; PyTorch `mm` backward); 2-D
 *    products on wasm through our packed FMA kernel where it is measured faster (kernels/gemm.as.ts).
 *    With a frozen B (LoRA's base) only dA is needed: `linearFrozen` (PEFT/PyTorch likewise skip
 *    the weight gradient when `requires_grad` is off).
 *  - GELU, tanh form ("gelu_new" in Hugging Face transformers `activations.py`, Hendrycks &
 *    Gimpel 2016): 0.5·x·(1 + tanh(u)) with u = √(2/π)(x + 0.044715x³). Since
 *    1 + tanh(u) = 2σ(2u), this is exactly x·σ(2u); wasm's Sigmoid kernel is ~5× faster than Tanh.
 *  - LayerNorm (Ba et al. 2016) backward as in PyTorch's `layer_norm_backward`:
 *    dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·γ.
 *  - log-softmax cross-entropy gradient: d log p_t / d logits = onehot(t) − softmax(logits).
 */
import * as tf from '@tensorflow/tfjs-core';
import { matMulOurs, preferOurs } from './kernels/gemm-kernel';

type Args = (tf.Tensor | tf.GradSaveFunc)[];

/** Swap the last two axes (2-D or 4-D only: 5-D transposes are slow on wasm). */
export function transposeLast2<T extends tf.Tensor>(x: T): T {
  if (x.rank === 2) return tf.transpose(x) as T;
  if (x.rank === 4) return tf.transpose(x, [0, 1, 3, 2]) as T;
  throw new Error(`transposeLast2: rank ${x.rank} not supported`);
}

/**
 * op(a)·op(b) (+ bias) of 2-D tensors: through our wasm kernel (kernels/gemm-kernel.ts: packed,
 * fused multiply-add where relaxed SIMD runs) where it was measured faster for this shape on the
 * wasm backend, else TF.js with explicit transposes.
 */
function mm2(a: tf.Tensor2D, b: tf.Tensor2D, transA: boolean, transB: boolean, bias?: tf.Tensor1D): tf.Tensor2D {
  const [M, K] = transA ? [a.shape[1], a.shape[0]] : a.shape;
  const N = transB ? b.shape[0] : b.shape[1];
  if (preferOurs(M, N, K, transA, transB)) return matMulOurs(a, b, transA, transB, bias ?? null);
  const y = tf.matMul(transA ? tf.transpose(a) : a, transB ? tf.transpose(b) : b) as tf.Tensor2D;
  if (!bias) return y;
  const out = tf.add(y, bias) as tf.Tensor2D;
  y.dispose();
  return out;
}

/** op(a)·op(b) of 2-D or 4-D tensors: 2-D through {@link mm2}, 4-D with explicit transposes. */
function mmT(a: tf.Tensor, b: tf.Tensor, transA: boolean, transB: boolean): tf.Tensor {
  if (a.rank === 2 && b.rank === 2) return mm2(a as tf.Tensor2D, b as tf.Tensor2D, transA, transB);
  return tf.tidy(() => tf.matMul(transA ? transposeLast2(a) : a, transB ? transposeLast2(b) : b));
}

/**
 * a @ b (2-D, or 4-D with equal batch dims) whose gradient uses explicit transposes and plain
 * matMuls: TF.js's own gradient calls matMul with transposeA/transposeB, which is 10–20× slower
 * on wasm (measured: [1024,512]@[128,512]ᵀ 71 ms vs 6.5 ms via transpose + matMul). 2-D
 * products and both gradients go through our kernel where it is faster ({@link mm2}).
 */
export const matMul = tf.customGrad((...args: Args) => {
  const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: mmT(a, b, false, false),
    gradFunc: (dy: tf.Tensor, [sa, sb]: tf.Tensor[]) => [mmT(dy, sb, false, true), mmT(sa, dy, true, false)],
  };
}) as <T extends tf.Tensor>(a: T, b: tf.Tensor) => T;

/**
 * Column sums of x [N, C] as [C]. Computed as ones[1, N] @ x: on wasm a Sum over axis 0 is
 * 10–100× slower than this matMul (measured: [1024,512] 16.7 ms vs 0.1 ms).
 */
export function sumRows(x: tf.Tensor): tf.Tensor1D {
  const [n, c] = x.shape;
  return tf.reshape(tf.matMul(tf.ones([1, n]), x), [c]);
}

/** x [N, in] @ W [in, out] + b [out] as one op: bias gradient by sumRows, no broadcast Add node. */
export const linear = tf.customGrad((...args: Args) => {
  const [x, w, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: mm2(x, w, false, false, b),
    gradFunc: (dy: tf.Tensor, [sx, sw]: tf.Tensor[]) => [
      mm2(dy as tf.Tensor2D, sw as tf.Tensor2D, false, true),
      mm2(sx as tf.Tensor2D, dy as tf.Tensor2D, true, false),
      sumRows(dy),
    ],
  };
}) as (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;

/**
 * x [N, in] @ W [in, out] (+ b [out]) for a frozen W and b (LoRA's base weights, a tied head of
 * a LoRA model): the value of {@link linear} / {@link matMul}, but x is the op's only input, so
 * its gradient is dx = dY·Wᵀ alone. `linear`'s gradient also computes dW = xᵀ·dY and db, which
 * TF.js's tape discards when nobody asked for W (`tf.grads` over the adapters only) but a
 * customGrad computes every input's gradient eagerly: about a third of the backward products.
 * Saves nothing when W is a variable (it outlives the step); a computed W (e.g. a transposed
 * tied head made inside the forward) is saved so the tidy of the forward cannot free it.
 */
export function linearFrozen(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  const f = tf.customGrad((...args: Args) => {
    const [xi, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const keep = !(w instanceof tf.Variable);
    if (keep) save([w]);
    return {
      value: mm2(xi, w, false, false, b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        mm2(dy as tf.Tensor2D, (keep ? saved[0] : w) as tf.Tensor2D, false, true),
    };
  }) as (x: tf.Tensor2D) => tf.Tensor2D;
  return f(x);
}

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;
/** The tanh-GELU's constants √(2/π) and 0.044715, for kernels that must compute its bits (kernels/layernorm-kernel.ts). */
export const GELU_TANH = Object.freeze({ c: GELU_C, a: GELU_A });

/** σ(2u) for the tanh-GELU, with u = √(2/π)(x + 0.044715x³); x³ as x·x·x (pow is slow). */
function geluGate(x: tf.Tensor): tf.Tensor {
  return tf.sigmoid(tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), GELU_A)), 2 * GELU_C));
}

/** tanh-GELU ("gelu_new") of x, computed as x·σ(2u); saves only x for the gradient. */
export const geluTanh = tf.customGrad((...args: Args) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  return {
    value: tf.mul(x, geluGate(x)),
    gradFunc: (dy: tf.Tensor, [sx]: tf.Tensor[]) =>
      tf.tidy(() => {
        // d/dx x·s(x) = s + x·s·(1 − s)·2c(1 + 3a·x²)
        const s = geluGate(sx);
        const x2 = tf.mul(sx, sx);
        const du = tf.mul(tf.add(tf.mul(x2, 3 * GELU_A), 1), 2 * GELU_C);
        const ds = tf.mul(tf.mul(s, tf.sub(1, s)), tf.mul(sx, du));
        return tf.mul(dy, tf.add(s, ds));
      }),
  };
}) as <T extends tf.Tensor>(x: T) => T;

/**
 * LayerNorm over the last axis of x [N, C] with gain `gamma` [C] and `beta` [C]. Saves x̂ and
 * 1/σ for the gradient (two tensors instead of the ~8 the op chain would save).
 */
export function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor2D {
  const f = tf.customGrad((...args: Args) => {
    const [xi, g, b, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const mean = tf.mean(xi, -1, true);
    const xc = tf.sub(xi, mean);
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.mul(xc, xc), -1, true), eps)); // [N, 1]
    const xhat = tf.mul(xc, rstd);
    save([xhat, rstd, g]);
    return {
      value: tf.add(tf.mul(xhat, g), b),
      gradFunc: (dy: tf.Tensor, [sxhat, srstd, sg]: tf.Tensor[]) =>
        tf.tidy(() => {
          const gx = tf.mul(dy, sg); // dL/dx̂
          const dx = tf.mul(
            tf.sub(tf.sub(gx, tf.mean(gx, -1, true)), tf.mul(sxhat, tf.mean(tf.mul(gx, sxhat), -1, true))),
            srstd,
          );
          return [dx, sumRows(tf.mul(dy, sxhat)), sumRows(dy)];
        }),
    };
  }) as (x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D) => tf.Tensor2D;
  return f(x, gamma, beta);
}

/**
 * float32 one-hot. The wasm backend's OneHot kernel (TF.js 4.22) ignores dtype 'float32' and
 * writes int32 bit patterns into a float buffer (1 reads as 1.4e-45, measured here), so build
 * it as int32 and cast.
 */
export function oneHotF32(indices: tf.Tensor1D, depth: number): tf.Tensor2D {
  return tf.cast(tf.oneHot(indices, depth), 'float32') as tf.Tensor2D;
}

/**
 * Rows `ids` (int32 [N]) of w [V, C]. Forward is a gather. The gradient adds each row of dy into
 * row ids[n] of a [V, C] zero matrix: on the CPU-side backends (wasm, cpu) as a loop over the
 * read values (N·C additions, next to 2·N·V·C multiply-adds for the one-hot product: 30 ms a
 * step at B16×T64, V1281); elsewhere as (dyᵀ @ oneHot(ids))ᵀ, because wasm and some GPU
 * backends have no kernel for gather's own gradient (UnsortedSegmentSum). Transposing dy [N, C]
 * and the [C, V] product is cheaper than transposing the [N, V] one-hot.
 */
export function embed(ids: tf.Tensor1D, w: tf.Tensor2D): tf.Tensor2D {
  const f = tf.customGrad((...args: Args) => {
    const [wIn, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    save([ids]);
    return {
      value: tf.gather(wIn, ids),
      gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) => {
        const [V, C] = w.shape;
        const be = tf.getBackend();
        if (be === 'wasm' || be === 'cpu') {
          const g = new Float32Array(V * C);
          const d = dy.dataSync() as Float32Array;
          const idx = saved.dataSync();
          for (let n = 0; n < idx.length; n++) {
            const row = idx[n] * C;
            for (let c = 0; c < C; c++) g[row + c] += d[n * C + c];
          }
          return tf.tensor2d(g, [V, C]);
        }
        return tf.tidy(() => tf.transpose(tf.matMul(tf.transpose(dy), oneHotF32(saved as tf.Tensor1D, V))));
      },
    };
  }) as (w: tf.Tensor2D) => tf.Tensor2D;
  return f(w);
}

/**
 * log softmax(logits)[target] per row, logits [N, V], int32 targets [N]: returns [N].
 * Computed from the softmax kernel (fast on wasm, unlike Exp and LogSoftmax):
 * log p_t = x_t − max(x) + log max(p), where max(p) = p at the argmax ≥ 1/V never underflows.
 * Gradient: dy·(onehot(t) − p).
 */
export function pickedLogSoftmax(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const V = logits.shape[1];
  const f = tf.customGrad((...args: Args) => {
    const [x, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const p = tf.softmax(x);
    save([p, targets]);
    const xt = tf.sum(tf.mul(x, oneHotF32(targets, V)), -1);
    return {
      value: tf.add(tf.sub(xt, tf.max(x, -1)), tf.log(tf.max(p, -1))),
      gradFunc: (dy: tf.Tensor, [sp, st]: tf.Tensor[]) =>
        tf.tidy(() => tf.mul(tf.sub(oneHotF32(st as tf.Tensor1D, V), sp), tf.reshape(dy, [-1, 1]))),
    };
  }) as (x: tf.Tensor2D) => tf.Tensor1D;
  return f(logits);
}
