/**
 * Causal multi-head attention, forward and backward, for the TF.js wasm/cpu backends, in
 * AssemblyScript (compiled to WebAssembly with SIMD by `scripts/build-kernels.ts`; the result
 * is `attention-wasm.ts`, loaded by `attention-kernel.ts`).
 *
 * Why: TF.js 4.22's wasm BatchMatMul runs a plain loop whenever the batch is larger than 1, so
 * the attention products q·kᵀ and p·v of [B, nh, T, hs] tensors take ~40 % of a training step
 * (scripts/bench/profile-step.ts). Here each (batch, head, query) row is done at once: scores
 * over the allowed keys only (causal and key padding), softmax, and the weighted sum of values.
 *
 * Maths (Vaswani et al. 2017, "Attention is all you need"; the backward pass as in any autograd
 * of softmax attention, e.g. Dao et al. 2022, "FlashAttention", Algorithm 2 without tiling):
 *   s_j = c·(q·k_j) with c = 1/√hs,  p = softmax(s) over keys lo..hi,  y = Σ_j p_j v_j;
 *   dp_j = dy·v_j,  ds_j = p_j (dp_j − Σ_k p_k dp_k),
 *   dq = c·Σ_j ds_j k_j,  dk_j += c·ds_j q,  dv_j += p_j dy.
 * Keys allowed for query i of row b: j ≤ P + i (causal, P = L − t keys came before the queries)
 * and j ≥ pad[b] (left padding); a query that would see no key (a padding position) sees the
 * causal keys instead, which keeps its output finite (it is never used).
 *
 * Layout: rows of heads, as the fused projection makes them, so nothing is transposed or split:
 * q row (b, i) starts at q + (b·t + i)·sq floats and head h at + h·hs within it; k and v rows
 * (b, j) at (b·L + j)·skv; y row (b, i) at (b·t + i)·sy. With qkv = x·W_attn of shape
 * [B·t, 3C]: q = qkv, k = qkv + C, v = qkv + 2C, sq = skv = 3C, y [B·t, C] with sy = C. The
 * gradients dq, dk, dv use the strides of q, k, v (they may share one buffer, which the caller
 * zeroes: the kernel adds into it) and dy that of y. probs [B, nh, t, L] (0 outside the allowed
 * keys); pad i32 [B]. Scores are s_j = scale·(q·k_j). Pointers are byte offsets into this
 * module's memory, which the caller grows and fills. hs must be a multiple of 4.
 */

// @ts-nocheck: AssemblyScript, not TypeScript (v128, f32x4, load<T>, usize, …).

@inline function dot(a: usize, b: usize, hs: i32): f32 {
  let acc = f32x4.splat(0);
  for (let d = 0; d < hs; d += 4) {
    acc = f32x4.add(acc, f32x4.mul(v128.load(a + ((<usize>d) << 2)), v128.load(b + ((<usize>d) << 2))));
  }
  return f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
}

/** out[0..hs) += w · x[0..hs) */
@inline function axpy(out: usize, w: f32, x: usize, hs: i32): void {
  const ww = f32x4.splat(w);
  for (let d = 0; d < hs; d += 4) {
    const o = out + ((<usize>d) << 2);
    v128.store(o, f32x4.add(v128.load(o), f32x4.mul(ww, v128.load(x + ((<usize>d) << 2)))));
  }
}

@inline function firstKey(pad: usize, b: i32, hi: i32): i32 {
  const lo = load<i32>(pad + ((<usize>b) << 2));
  return lo > hi ? 0 : lo;
}

/** Byte address of float `row·stride + col` of a buffer at `base`. */
@inline function at(base: usize, row: i32, stride: i32, col: i32): usize {
  return base + ((<usize>(row * stride + col)) << 2);
}

/** [Σ a, Σ b, Σ c, Σ d]: the four horizontal sums at once. */
@inline function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7)); // a0+a2 b0+b2 a1+a3 b1+b3
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/**
 * out[j] = scale · (x · rows_j) for keys j = lo..hi (rows_j at `rows + j·stride` floats), four
 * keys at a time (x loaded once per four, one horizontal reduction per four).
 */
@inline function dots(out: usize, x: usize, rows: usize, stride: i32, lo: i32, hi: i32, hs: i32, scale: f32): void {
  const rowBytes = (<usize>stride) << 2;
  const sc = f32x4.splat(scale);
  let j = lo;
  for (; j + 3 <= hi; j += 4) {
    const r0 = rows + <usize>j * rowBytes;
    const r1 = r0 + rowBytes;
    const r2 = r1 + rowBytes;
    const r3 = r2 + rowBytes;
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    for (let d = 0; d < hs; d += 4) {
      const off = (<usize>d) << 2;
      const xv = v128.load(x + off);
      a0 = f32x4.add(a0, f32x4.mul(xv, v128.load(r0 + off)));
      a1 = f32x4.add(a1, f32x4.mul(xv, v128.load(r1 + off)));
      a2 = f32x4.add(a2, f32x4.mul(xv, v128.load(r2 + off)));
      a3 = f32x4.add(a3, f32x4.mul(xv, v128.load(r3 + off)));
    }
    v128.store(out + ((<usize>j) << 2), f32x4.mul(sc, hsum4(a0, a1, a2, a3)));
  }
  for (; j <= hi; j++) store<f32>(out + ((<usize>j) << 2), scale * dot(x, rows + <usize>j * rowBytes, hs));
}

/** out[0..hs) += Σ_j w[j] · rows_j for j = lo..hi, four rows per pass over out. */
@inline function combine(out: usize, w: usize, rows: usize, stride: i32, lo: i32, hi: i32, hs: i32): void {
  const rowBytes = (<usize>stride) << 2;
  let j = lo;
  for (; j + 3 <= hi; j += 4) {
    const r0 = rows + <usize>j * rowBytes;
    const r1 = r0 + rowBytes;
    const r2 = r1 + rowBytes;
    const r3 = r2 + rowBytes;
    const wj = w + ((<usize>j) << 2);
    const w0 = f32x4.splat(load<f32>(wj));
    const w1 = f32x4.splat(load<f32>(wj, 4));
    const w2 = f32x4.splat(load<f32>(wj, 8));
    const w3 = f32x4.splat(load<f32>(wj, 12));
    for (let d = 0; d < hs; d += 4) {
      const off = (<usize>d) << 2;
      const o = out + off;
      let acc = f32x4.add(v128.load(o), f32x4.mul(w0, v128.load(r0 + off)));
      acc = f32x4.add(acc, f32x4.mul(w1, v128.load(r1 + off)));
      acc = f32x4.add(acc, f32x4.mul(w2, v128.load(r2 + off)));
      acc = f32x4.add(acc, f32x4.mul(w3, v128.load(r3 + off)));
      v128.store(o, acc);
    }
  }
  for (; j <= hi; j++) axpy(out, load<f32>(w + ((<usize>j) << 2)), rows + <usize>j * rowBytes, hs);
}

export function forward(
  q: usize, k: usize, v: usize, y: usize, probs: usize, pad: usize,
  B: i32, nh: i32, t: i32, L: i32, hs: i32, sq: i32, skv: i32, sy: i32, scale: f32,
): void {
  const P = L - t;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nh; h++) {
      const hc = h * hs;
      const kb = at(k, b * L, skv, hc);
      const vb = at(v, b * L, skv, hc);
      for (let i = 0; i < t; i++) {
        const qi = at(q, b * t + i, sq, hc);
        const yi = at(y, b * t + i, sy, hc);
        const pr = probs + ((<usize>(((b * nh + h) * t + i) * L)) << 2);
        const hi = P + i;
        const lo = firstKey(pad, b, hi);
        memory.fill(pr, 0, (<usize>L) << 2);
        memory.fill(yi, 0, (<usize>hs) << 2);
        dots(pr, qi, kb, skv, lo, hi, hs, scale);
        let m: f32 = -Infinity;
        for (let j = lo; j <= hi; j++) m = max(m, load<f32>(pr + ((<usize>j) << 2)));
        let z: f32 = 0;
        for (let j = lo; j <= hi; j++) {
          const e = Mathf.exp(load<f32>(pr + ((<usize>j) << 2)) - m);
          store<f32>(pr + ((<usize>j) << 2), e);
          z += e;
        }
        const inv: f32 = 1 / z;
        for (let j = lo; j <= hi; j++) store<f32>(pr + ((<usize>j) << 2), load<f32>(pr + ((<usize>j) << 2)) * inv);
        combine(yi, pr, vb, skv, lo, hi, hs);
      }
    }
  }
}

/** Adds dq, dk, dv (zeroed by the caller) from dy and the forward's probs; `scratch` holds L floats. */
export function backward(
  q: usize, k: usize, v: usize, probs: usize, dy: usize, dq: usize, dk: usize, dv: usize,
  pad: usize, scratch: usize, B: i32, nh: i32, t: i32, L: i32, hs: i32, sq: i32, skv: i32, sy: i32, scale: f32,
): void {
  const P = L - t;
  const kvBytes = (<usize>skv) << 2;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nh; h++) {
      const hc = h * hs;
      const kb = at(k, b * L, skv, hc);
      const vb = at(v, b * L, skv, hc);
      const dkb = at(dk, b * L, skv, hc);
      const dvb = at(dv, b * L, skv, hc);
      for (let i = 0; i < t; i++) {
        const qi = at(q, b * t + i, sq, hc);
        const dyi = at(dy, b * t + i, sy, hc);
        const dqi = at(dq, b * t + i, sq, hc);
        const pr = probs + ((<usize>(((b * nh + h) * t + i) * L)) << 2);
        const hi = P + i;
        const lo = firstKey(pad, b, hi);
        // scratch[j] = dp_j = dy·v_j, then ds_j = scale · p_j (dp_j − Σ_k p_k dp_k).
        dots(scratch, dyi, vb, skv, lo, hi, hs, 1);
        let D: f32 = 0;
        for (let j = lo; j <= hi; j++) D += load<f32>(pr + ((<usize>j) << 2)) * load<f32>(scratch + ((<usize>j) << 2));
        for (let j = lo; j <= hi; j++) {
          const sj = scratch + ((<usize>j) << 2);
          store<f32>(sj, scale * load<f32>(pr + ((<usize>j) << 2)) * (load<f32>(sj) - D));
        }
        combine(dqi, scratch, kb, skv, lo, hi, hs);
        for (let j = lo; j <= hi; j++) {
          const jj = (<usize>j) << 2;
          axpy(dkb + <usize>j * kvBytes, load<f32>(scratch + jj), qi, hs);
          axpy(dvb + <usize>j * kvBytes, load<f32>(pr + jj), dyi, hs);
        }
      }
    }
  }
}

/** First free byte after the module's static data (Mathf.exp's table lives below it). */
export function heapBase(): usize {
  return (__heap_base + 15) & ~15;
}
