/**
 * One Adam step of one variable in a single pass (AssemblyScript, plain SIMD; compiled by
 * `scripts/build-kernels.ts`, loaded by `adam-kernel.ts`, used by `src/lib/rlhf/adam.ts` on the
 * CPU-side backends). Replaces the ~15 TF.js kernels per variable of `adamUpdate` (scale, two
 * moments, bias corrections, sqrt, ε, weight decay, the step), each a full pass over memory.
 *
 * Kingma & Ba 2015 with decoupled weight decay (Loshchilov & Hutter 2019), in exactly the order
 * and float32 roundings of `adamUpdate`'s TF.js ops, one IEEE operation each (no fused
 * multiply-add), so both paths give the same bits:
 *
 *   g ← g·scale (when scale ≠ 1)        m ← m·β1 + g·(1−β1)        v ← v·β2 + (g·g)·(1−β2)
 *   u ← (m / bc1) / (√(v / bc2) + ε)    u ← u + p·wd (when wd ≠ 0)  p ← p − u·lr
 *
 * Pointers are byte offsets into this module's memory (16-byte aligned), n elements each.
 */

// @ts-nocheck: AssemblyScript, not TypeScript (v128, f32x4, load<T>, usize, …).

/** First byte above the static data (16-byte aligned): where the caller's buffers may start. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~15;
}

export function adam(
  p: usize,
  g: usize,
  m: usize,
  v: usize,
  n: i32,
  scale: f32,
  b1: f32,
  omb1: f32,
  b2: f32,
  omb2: f32,
  bc1: f32,
  bc2: f32,
  eps: f32,
  wd: f32,
  lr: f32,
): void {
  const useScale = scale != 1;
  const useWd = wd != 0;
  const vScale = f32x4.splat(scale);
  const vb1 = f32x4.splat(b1);
  const vomb1 = f32x4.splat(omb1);
  const vb2 = f32x4.splat(b2);
  const vomb2 = f32x4.splat(omb2);
  const vbc1 = f32x4.splat(bc1);
  const vbc2 = f32x4.splat(bc2);
  const veps = f32x4.splat(eps);
  const vwd = f32x4.splat(wd);
  const vlr = f32x4.splat(lr);
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const o = (<usize>i) << 2;
    let gi = v128.load(g + o);
    if (useScale) gi = f32x4.mul(gi, vScale);
    const mi = f32x4.add(f32x4.mul(v128.load(m + o), vb1), f32x4.mul(gi, vomb1));
    const vi = f32x4.add(f32x4.mul(v128.load(v + o), vb2), f32x4.mul(f32x4.mul(gi, gi), vomb2));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    let u = f32x4.div(f32x4.div(mi, vbc1), f32x4.add(f32x4.sqrt(f32x4.div(vi, vbc2)), veps));
    const pi = v128.load(p + o);
    if (useWd) u = f32x4.add(u, f32x4.mul(pi, vwd));
    v128.store(p + o, f32x4.sub(pi, f32x4.mul(u, vlr)));
  }
  for (let i = n4; i < n; i++) {
    const o = (<usize>i) << 2;
    let gi = load<f32>(g + o);
    if (useScale) gi = gi * scale;
    const mi: f32 = load<f32>(m + o) * b1 + gi * omb1;
    const vi: f32 = load<f32>(v + o) * b2 + gi * gi * omb2;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    let u: f32 = mi / bc1 / (sqrt<f32>(vi / bc2) + eps);
    const pi = load<f32>(p + o);
    if (useWd) u = u + pi * wd;
    store<f32>(p + o, pi - u * lr);
  }
}
