/**
 * Our dense product (src/lib/model/kernels/gemm.as.ts through gemm-kernel.ts) against TF.js's
 * matMul on the cpu and wasm backends: every transpose combination, ragged edges (sizes that are
 * not multiples of the 4×8 tile), the fused bias, each build that runs here (plain SIMD in Node
 * 20; relaxed SIMD where `WebAssembly.validate` accepts it, e.g. Node with
 * --experimental-wasm-relaxed-simd, and Chromium: the bench and e2e use it there). Then the
 * fused ops of ops.ts (`linear`, `matMul`) give the same values and gradients with the kernel
 * forced on as with TF.js alone, and a GPT training step the same loss.
 *
 *   npx vitest run tests/unit/gemm-kernel.test.ts                          (plain SIMD build)
 *   npx vitest run tests/unit/gemm-kernel.test.ts --pool=forks --execArgv=--experimental-wasm-relaxed-simd
 *                                                                          (both builds)
 */
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { tf, useBackend, type TestBackend } from './tf-backends';
import {
  forceGemmBuild,
  gemm,
  gemmBuild,
  gemmChoices,
  matMulOurs,
  setGemmPolicy,
  type GemmBuild,
} from '../../src/lib/model/kernels/gemm-kernel';
import { linear, matMul } from '../../src/lib/model/ops';
import { GPT } from '../../src/lib/model/gpt';
import { Rng } from '../../src/lib/model/rng';

function rand(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
}

/** max |a − b| / max(1, max |b|). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  let scale = 1;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst / scale;
}

const builds = (['relaxed', 'simd'] as GemmBuild[]).filter((b) => {
  forceGemmBuild(b);
  const ok = gemmBuild() === b;
  forceGemmBuild(null);
  return ok;
});

test('the plain-SIMD build runs in Node; the relaxed one where this runtime validates it', () => {
  expect(builds).toContain('simd');
  const relaxedValid = builds.includes('relaxed');
  // Node 20 ships relaxed SIMD behind a flag: without it the automatic choice is the plain build.
  expect(gemmBuild()).toBe(relaxedValid ? 'relaxed' : 'simd');
});

describe.each<TestBackend>(['cpu', 'wasm'])('gemm kernel on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });
  afterEach(() => {
    forceGemmBuild(null);
    setGemmPolicy('never');
  });

  test.each(builds)('%s build: op(A)·op(B) + bias equals TF.js for every transpose and ragged sizes', (build) => {
    const rng = new Rng(11);
    for (const [M, N, K] of [
      [1, 1, 1],
      [5, 13, 7],
      [4, 8, 16],
      [33, 70, 129],
      [64, 128, 96],
    ]) {
      for (const transA of [false, true])
        for (const transB of [false, true]) {
          const a = rand(rng, M * K);
          const b = rand(rng, K * N);
          const bias = rand(rng, N);
          const want = tf.tidy(() => {
            const at = tf.tensor2d(a, transA ? [K, M] : [M, K]);
            const bt = tf.tensor2d(b, transB ? [N, K] : [K, N]);
            return tf.add(tf.matMul(at, bt, transA, transB), tf.tensor1d(bias)).dataSync();
          });
          const got = gemm(a, b, M, N, K, transA, transB, bias, build);
          expect(relErr(got, want), `${build} ${M}×${N}×${K} tA ${transA} tB ${transB}`).toBeLessThan(1e-5);
          const noBias = gemm(a, b, M, N, K, transA, transB, null, build);
          for (let i = 0; i < M; i++)
            for (let j = 0; j < N; j++) expect(noBias[i * N + j]).toBeCloseTo(got[i * N + j] - bias[j], 4);
        }
    }
  });

  test('bad sizes are refused with a message', () => {
    expect(() => gemm(new Float32Array(6), new Float32Array(6), 2, 3, 4)).toThrow(/sizes do not match/);
  });

  test('matMulOurs on tensors, and linear/matMul values and gradients, equal TF.js alone', async () => {
    const rng = new Rng(5);
    const x = tf.tensor2d(rand(rng, 37 * 24), [37, 24]);
    const w = tf.tensor2d(rand(rng, 24 * 19), [24, 19]);
    const b = tf.tensor1d(rand(rng, 19));
    const ours = matMulOurs(x, w, false, false, b);
    const want = tf.add(tf.matMul(x, w), b);
    expect(relErr(await ours.data(), await want.data())).toBeLessThan(1e-5);
    tf.dispose([ours, want]);

    const run = (policy: 'always' | 'never') => {
      setGemmPolicy(policy);
      const before = tf.memory().numTensors;
      const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(
          tf.mul(
            linear(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D),
            linear(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D),
          ),
        ),
      )([x, w, b]);
      const g2 = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.square(matMul(xx, ww))))([x, w]);
      const out = [...g, ...g2].map((t) => t.dataSync().slice());
      const y = tf.tidy(() => linear(x, w, b).dataSync().slice());
      tf.dispose([...g, ...g2]);
      expect(tf.memory().numTensors).toBe(before); // nothing leaks on either path
      return [y, ...out];
    };
    const a = run('always');
    const c = run('never');
    a.forEach((v, i) => expect(relErr(v, c[i]), `output ${i}`).toBeLessThan(1e-5));
    tf.dispose([x, w, b]);
  });

  test('measured choice: on wasm a big enough product is timed once per shape inside the op, leaks nothing', () => {
    setGemmPolicy('measure');
    const rng = new Rng(8);
    const x = tf.tensor2d(rand(rng, 300 * 128), [300, 128]);
    const w = tf.tensor2d(rand(rng, 128 * 64), [128, 64]);
    const b = tf.tensor1d(rand(rng, 64));
    const before = tf.memory().numTensors;
    const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(linear(xx as tf.Tensor2D, ww as tf.Tensor2D, b)))([
      x,
      w,
    ]);
    tf.dispose(g);
    expect(tf.memory().numTensors).toBe(before);
    const shapes = Object.keys(gemmChoices());
    if (backend === 'wasm')
      // forward [512 bucket, 64, 128], dX [.., 128, 64, tB], dW [128 bucket, 64, 512 rows, tA]
      expect(shapes.sort()).toEqual(['128,64,300,1,0', '512,128,64,0,1', '512,64,128,0,0']);
    else expect(shapes).toEqual([]); // measured on wasm only
    tf.dispose([x, w, b]);
  });

  test('a GPT training step gives the same loss and gradients with the kernel as without', () => {
    const model = new GPT(
      { vocabSize: 40, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 },
      { seed: 3 },
    );
    const rng = new Rng(2);
    const idx = tf.tensor2d(
      Int32Array.from({ length: 3 * 16 }, () => rng.int(40)),
      [3, 16],
      'int32',
    );
    const tgt = tf.tensor2d(
      Int32Array.from({ length: 3 * 16 }, () => rng.int(40)),
      [3, 16],
      'int32',
    );
    const vars = model.trainableVariables();
    const step = (policy: 'always' | 'never') => {
      setGemmPolicy(policy);
      const { value, grads } = tf.variableGrads(() => model.loss(idx, tgt), vars);
      const out = [value.dataSync()[0], ...vars.map((v) => grads[v.name].dataSync().slice())] as const;
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const [l1, ...g1] = step('always');
    const [l0, ...g0] = step('never');
    expect(Math.abs(l1 - l0)).toBeLessThan(1e-5 * Math.abs(l0));
    g1.forEach((g, i) => expect(relErr(g, g0[i]), vars[i].name).toBeLessThan(1e-4));
    tf.dispose([idx, tgt]);
    model.dispose();
  });
});
