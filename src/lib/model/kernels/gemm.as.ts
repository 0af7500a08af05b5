/**
 * Dense single-precision matrix product C = op(A)·op(B) (+ bias), op = identity or transpose,
 * for the TF.js wasm backend's training step, in AssemblyScript (compiled twice by
 * `scripts/build-kernels.ts`: with relaxed SIMD, where `f32x4.relaxed_madd` becomes one fused
 * multiply-add instruction, and with plain SIMD, where it is a multiply and an add; loaded and
 * chosen by `gemm-kernel.ts`).
 *
 * Why: XNNPACK in TF.js 4.22's wasm build has no FMA (its wasm SIMD kernels multiply, then add),
 * and the transposed products of the backward pass (dX = dY·Wᵀ, dW = Xᵀ·dY) go through a
 * Transpose kernel first. Here a transpose is only the order in which the packing reads.
 *
 * Method (Goto & van de Geijn 2008, "Anatomy of high-performance matrix multiplication"; the
 * register tile of BLIS/XNNPACK-style micro-kernels): both operands are packed once, A into
 * panels of 4 rows ([K][4] per panel), B into panels of 8 columns ([K][8] per panel), zero-padded
 * at the edges. The micro-kernel keeps a 4×8 tile of C in 8 registers and per k does 2 vector
 * loads of B, 4 broadcast loads of A and 8 multiply-adds. Loop order: blocks of 64 columns
 * outside (their packed B stays in L2), row panels inside them, then the block's column panels
 * (the row panel's packed A stays in L1).
 *
 * Layout: row-major. A is [M, K] (transA 0) or [K, M] (transA 1); B is [K, N] (transB 0) or
 * [N, K] (transB 1); C is [M, N]; bias is [N] or 0 for none. pa and pb are scratch of
 * 16·K·⌈M/4⌉ and 32·K·⌈N/8⌉ bytes. Pointers are byte offsets into this module's memory, which
 * the caller grows and fills.
 */

// @ts-nocheck: AssemblyScript, not TypeScript (v128, f32x4, load<T>, usize, …).

@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Whether this build multiplies and adds in one instruction (relaxed SIMD). */
export function fused(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}

/** First byte above the static data: where the caller's buffers may start. */
export function heapBase(): usize {
  return __heap_base;
}

@inline function f(base: usize, i: i32): f32 {
  return load<f32>(base + ((<usize>i) << 2));
}

function packA(a: usize, M: i32, K: i32, transA: i32, pa: usize): void {
  for (let i0 = 0; i0 < M; i0 += 4) {
    const panel = pa + (<usize>(i0 >> 2)) * (<usize>K) * 16;
    const rows = min(4, M - i0);
    for (let k = 0; k < K; k++) {
      const out = panel + (<usize>k) * 16;
      if (transA) {
        if (rows == 4) v128.store(out, v128.load(a + ((<usize>(k * M + i0)) << 2)));
        else for (let r = 0; r < 4; r++) store<f32>(out + (<usize>r << 2), r < rows ? f(a, k * M + i0 + r) : 0);
      } else {
        for (let r = 0; r < 4; r++) store<f32>(out + (<usize>r << 2), r < rows ? f(a, (i0 + r) * K + k) : 0);
      }
    }
  }
}

function packB(b: usize, N: i32, K: i32, transB: i32, pb: usize): void {
  for (let j0 = 0; j0 < N; j0 += 8) {
    const panel = pb + (<usize>(j0 >> 3)) * (<usize>K) * 32;
    const cols = min(8, N - j0);
    for (let k = 0; k < K; k++) {
      const out = panel + (<usize>k) * 32;
      if (!transB && cols == 8) {
        const src = b + ((<usize>(k * N + j0)) << 2);
        v128.store(out, v128.load(src));
        v128.store(out + 16, v128.load(src + 16));
      } else {
        for (let c = 0; c < 8; c++) {
          const v: f32 = c < cols ? (transB ? f(b, (j0 + c) * K + k) : f(b, k * N + j0 + c)) : 0;
          store<f32>(out + (<usize>c << 2), v);
        }
      }
    }
  }
}

/** Store a 4×8 tile (rows r0..r3, halves lo/hi) at C[i0.., j0..], only the rows and columns inside C. */
@inline function storeTile(
  c: usize, N: i32, i0: i32, j0: i32, rows: i32, cols: i32,
  t0: v128, t1: v128, t2: v128, t3: v128, t4: v128, t5: v128, t6: v128, t7: v128,
): void {
  if (cols == 8) {
    const p = c + ((<usize>(i0 * N + j0)) << 2);
    const s = (<usize>N) << 2;
    v128.store(p, t0);
    v128.store(p + 16, t1);
    if (rows > 1) {
      v128.store(p + s, t2);
      v128.store(p + s + 16, t3);
    }
    if (rows > 2) {
      v128.store(p + 2 * s, t4);
      v128.store(p + 2 * s + 16, t5);
    }
    if (rows > 3) {
      v128.store(p + 3 * s, t6);
      v128.store(p + 3 * s + 16, t7);
    }
    return;
  }
  // A ragged right edge: through a 32-float scratch just above the packed panels (tile()).
  const tmp = memory.data(128, 16);
  v128.store(tmp, t0);
  v128.store(tmp + 16, t1);
  v128.store(tmp + 32, t2);
  v128.store(tmp + 48, t3);
  v128.store(tmp + 64, t4);
  v128.store(tmp + 80, t5);
  v128.store(tmp + 96, t6);
  v128.store(tmp + 112, t7);
  for (let r = 0; r < rows; r++)
    for (let q = 0; q < cols; q++)
      store<f32>(c + ((<usize>((i0 + r) * N + j0 + q)) << 2), load<f32>(tmp + ((<usize>(r * 8 + q)) << 2)));
}

/** C = op(A)·op(B) (+ bias): see the file header for layouts. */
export function gemm(
  a: usize, b: usize, c: usize, bias: usize,
  M: i32, N: i32, K: i32, transA: i32, transB: i32, pa: usize, pb: usize,
): void {
  packA(a, M, K, transA, pa);
  packB(b, N, K, transB, pb);
  // Blocks of NB column panels: the block's packed B stays in L2 while every row panel passes,
  // and each row panel's packed A (K·16 bytes) stays in L1 across the block's panels.
  for (let jb = 0; jb < N; jb += NB * 8) {
    const jend = min(N, jb + NB * 8);
    for (let i0 = 0; i0 < M; i0 += 4) {
      const apanel = pa + (<usize>(i0 >> 2)) * (<usize>K) * 16;
      const rows = min(4, M - i0);
      for (let j0 = jb; j0 < jend; j0 += 8) {
        microTile(apanel, pb + (<usize>(j0 >> 3)) * (<usize>K) * 32, c, bias, N, K, i0, j0, rows, min(8, N - j0));
      }
    }
  }
}

/** Column panels per block (64 columns: K·256 bytes of packed B, 32 KB at K = 128). */
const NB = 8;

/** One 4×8 tile of C from a packed A panel and a packed B panel. */
@inline function microTile(
  ap: usize, bq: usize, c: usize, bias: usize, N: i32, K: i32, i0: i32, j0: i32, rows: i32, cols: i32,
): void {
  let blo = f32x4.splat(0);
  let bhi = blo;
  if (bias) {
    if (cols == 8) {
      blo = v128.load(bias + ((<usize>j0) << 2));
      bhi = v128.load(bias + ((<usize>j0) << 2) + 16);
    } else {
      const tmp = memory.data(32, 16);
      for (let q = 0; q < 8; q++) store<f32>(tmp + (<usize>q << 2), q < cols ? f(bias, j0 + q) : 0);
      blo = v128.load(tmp);
      bhi = v128.load(tmp + 16);
    }
  }
  let c0 = blo, c1 = bhi, c2 = blo, c3 = bhi, c4 = blo, c5 = bhi, c6 = blo, c7 = bhi;
  for (let k = 0; k < K; k++) {
    const b0 = v128.load(bq);
    const b1 = v128.load(bq, 16);
    let x = v128.load32_splat(ap);
    c0 = madd(x, b0, c0);
    c1 = madd(x, b1, c1);
    x = v128.load32_splat(ap, 4);
    c2 = madd(x, b0, c2);
    c3 = madd(x, b1, c3);
    x = v128.load32_splat(ap, 8);
    c4 = madd(x, b0, c4);
    c5 = madd(x, b1, c5);
    x = v128.load32_splat(ap, 12);
    c6 = madd(x, b0, c6);
    c7 = madd(x, b1, c7);
    ap += 16;
    bq += 32;
  }
  storeTile(c, N, i0, j0, rows, cols, c0, c1, c2, c3, c4, c5, c6, c7);
}
