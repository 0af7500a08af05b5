/**
 * Residual add and LayerNorm of a decode step in one pass (AssemblyScript, compiled by
 * `scripts/build-kernels.ts`, loaded by `layernorm-kernel.ts`, used by `gpt.ts`'s KV-cached
 * decoding on the wasm backend). Replaces the bias add, the residual add and the 9 TF.js kernels
 * of `ops.layerNorm`'s forward with one call: at batch 16 each of those kernels moves 8 KB, so
 * their fixed cost per call is most of a decode step's time.
 *
 * Same float32 operations in the same order as those TF.js ops on the wasm backend (its Mean
 * sums a row in order in float32, then divides; Rsqrt is 1/√ in float32), so the same bits:
 *
 *   r ← x + (y + bias)   (or x + y without bias; r = x when y is 0), written to xOut
 *   μ ← (Σ r) / C        c ← r − μ        σ⁻¹ ← 1 / √((Σ c·c) / C + ε)
 *   h ← (c·σ⁻¹)·γ + β    written to hOut
 *
 * Ba et al. 2016 (LayerNorm). Rows of C floats, row-major; pointers are byte offsets into this
 * module's memory; 0 for y or bias means none.
 */

// @ts-nocheck: AssemblyScript, not TypeScript (usize, load<T>, …).

/** First byte above the static data (16-byte aligned): where the caller's buffers may start. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~15;
}

@inline function at(base: usize, i: i32): usize {
  return base + ((<usize>i) << 2);
}

export function addLayerNorm(
  x: usize,
  y: usize,
  bias: usize,
  gamma: usize,
  beta: usize,
  xOut: usize,
  hOut: usize,
  N: i32,
  C: i32,
  eps: f32,
): void {
  const fc = <f32>C;
  for (let n = 0; n < N; n++) {
    const row = n * C;
    let s: f32 = 0;
    for (let j = 0; j < C; j++) {
      let r = load<f32>(at(x, row + j));
      if (y) {
        let yj = load<f32>(at(y, row + j));
        if (bias) yj = yj + load<f32>(at(bias, j));
        r = r + yj;
      }
      store<f32>(at(xOut, row + j), r);
      s += r;
    }
    const mean: f32 = s / fc;
    let s2: f32 = 0;
    for (let j = 0; j < C; j++) {
      const c: f32 = load<f32>(at(xOut, row + j)) - mean;
      store<f32>(at(hOut, row + j), c);
      s2 += c * c;
    }
    const rstd: f32 = <f32>1 / sqrt<f32>(s2 / fc + eps);
    for (let j = 0; j < C; j++) {
      const c = load<f32>(at(hOut, row + j));
      store<f32>(at(hOut, row + j), c * rstd * load<f32>(at(gamma, j)) + load<f32>(at(beta, j)));
    }
  }
}

/**
 * The decode step's c_fc bias add and the tanh-GELU's argument before its sigmoid, in one pass
 * (`ops.geluTanh` computes x·σ(2u), u = √(2/π)(x + 0.044715x³); Hendrycks & Gimpel 2016):
 *
 *   z ← y + bias      (or y without bias), written to zOut
 *   s ← (z + ((z·z)·z)·a)·c2   written to sOut (c2 = 2√(2/π)), the same float32 operations in
 *                               the same order as the TF.js ops, so σ(s) and z·σ(s) are their bits
 */
export function biasGeluArg(y: usize, bias: usize, zOut: usize, sOut: usize, N: i32, C: i32, a: f32, c2: f32): void {
  for (let n = 0; n < N; n++) {
    const row = n * C;
    for (let j = 0; j < C; j++) {
      let z = load<f32>(at(y, row + j));
      if (bias) z = z + load<f32>(at(bias, j));
      store<f32>(at(zOut, row + j), z);
      store<f32>(at(sOut, row + j), (z + z * z * z * a) * c2);
    }
  }
}
