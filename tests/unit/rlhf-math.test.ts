import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { tf, useBackend, type TestBackend } from './tf-backends';
import { Rng } from '../../src/lib/model/rng';
import {
  AdaptiveKlController,
  bradleyTerryLoss,
  bradleyTerryLossT,
  dpoLoss,
  dpoLossT,
  entropyFromLogits,
  entropyFromLogitsT,
  gae,
  klPerToken,
  klPerTokenT,
  logprobsAndEntropyT,
  logprobsOfTokens,
  maskedMean,
  maskedVar,
  ppoPolicyLoss,
  ppoPolicyLossT,
  ppoValueLoss,
  ppoValueLossT,
  whiten,
  whitenT,
  type DpoLossType,
  type Matrix,
} from '../../src/lib/rlhf';

type M = Matrix;
interface Golden {
  mask: M;
  gae: { rewards: M; values: M; cases: { gamma: number; lam: number; advantages: M; returns: M }[] };
  whiten: {
    x: M;
    weights: M;
    mean: number;
    var: number;
    varBiased: number;
    shift: M;
    shiftGrad: M;
    noShift: M;
    noShiftGrad: M;
  };
  kl: { logprobs: M; refLogprobs: M; k1: M; k3: M };
  policy: {
    logprobs: M;
    oldLogprobs: M;
    advantages: M;
    clipRange: number;
    loss: number;
    clipfrac: number;
    approxKl: number;
    grad: M;
  };
  value: {
    values: M;
    oldValues: M;
    returns: M;
    clipRangeValue: number;
    loss: number;
    clipfrac: number;
    grad: M;
  };
  entropy: { logits: number[][][]; perToken: M; mean: number; grad: number[][][] };
  logprobs: { tokens: M; weights: M; cases: { temperature: number; logprobs: M; grad: number[][][] }[] };
  bt: {
    chosen: number[];
    rejected: number[];
    cases: {
      name: string;
      margin: number | number[];
      centerCoef: number;
      loss: number;
      accuracy: number;
      gradChosen: number[];
      gradRejected: number[];
    }[];
  };
  dpo: {
    policyChosen: number[];
    policyRejected: number[];
    refChosen: number[];
    refRejected: number[];
    cases: {
      beta: number;
      lossType: DpoLossType;
      labelSmoothing: number;
      loss: number;
      chosenRewards: number[];
      rejectedRewards: number[];
      gradChosen: number[];
      gradRejected: number[];
    }[];
  };
}

const G = JSON.parse(readFileSync(new URL('../golden/rlhf-math.json', import.meta.url), 'utf8')) as Golden;
/** Array API (float64) against the float64 reference. */
const TOL_ARRAY = 1e-9;
/** Tensor API (float32) against the reference, relative to max(1, |expected|). */
const TOL_TENSOR = 1e-4;

type Nested = number | Nested[] | Float32Array | Int32Array;
function flat(x: Nested): number[] {
  if (typeof x === 'number') return [x];
  if (x instanceof Float32Array || x instanceof Int32Array) return Array.from(x);
  return x.flatMap((y) => flat(y));
}

/** Asserts |a − e| ≤ tol·max(1, |e|) elementwise. */
function expectClose(actual: Nested, expected: Nested, tol: number, what = ''): void {
  const a = flat(actual);
  const e = flat(expected);
  expect(a.length, what).toBe(e.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - e[i]) / Math.max(1, Math.abs(e[i])));
  expect(worst, what).toBeLessThanOrEqual(tol);
}

async function read(t: tf.Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

const t2 = (m: M) => tf.tensor2d(m);
const t1 = (v: number[]) => tf.tensor1d(v);

describe('RLHF maths, array API, against the PyTorch reference', () => {
  const mask = G.mask;

  test('gae', () => {
    for (const c of G.gae.cases) {
      const { advantages, returns } = gae(G.gae.rewards, G.gae.values, mask, c.gamma, c.lam);
      expectClose(advantages, c.advantages, TOL_ARRAY, `adv γ=${c.gamma} λ=${c.lam}`);
      expectClose(returns, c.returns, TOL_ARRAY, `ret γ=${c.gamma} λ=${c.lam}`);
    }
  });

  test('masked mean, var, whiten', () => {
    const w = G.whiten;
    expectClose(maskedMean(w.x, mask), w.mean, TOL_ARRAY);
    expectClose(maskedVar(w.x, mask), w.var, TOL_ARRAY);
    expectClose(maskedVar(w.x, mask, false), w.varBiased, TOL_ARRAY);
    expectClose(whiten(w.x, mask), w.shift, TOL_ARRAY);
    expectClose(whiten(w.x, mask, false), w.noShift, TOL_ARRAY);
  });

  test('kl k1 and k3', () => {
    expectClose(klPerToken(G.kl.logprobs, G.kl.refLogprobs, 'k1'), G.kl.k1, TOL_ARRAY);
    expectClose(klPerToken(G.kl.logprobs, G.kl.refLogprobs, 'k3'), G.kl.k3, TOL_ARRAY);
  });

  test('ppo policy and value losses', () => {
    const p = G.policy;
    const r = ppoPolicyLoss(p.logprobs, p.oldLogprobs, p.advantages, mask, p.clipRange);
    expectClose([r.loss, r.clipfrac, r.approxKl], [p.loss, p.clipfrac, p.approxKl], TOL_ARRAY);
    expect(p.clipfrac).toBeGreaterThan(0); // the fixture exercises clipping
    const v = G.value;
    const rv = ppoValueLoss(v.values, v.oldValues, v.returns, mask, v.clipRangeValue);
    expectClose([rv.loss, rv.clipfrac], [v.loss, v.clipfrac], TOL_ARRAY);
    expect(v.clipfrac).toBeGreaterThan(0);
  });

  test('entropy', () => {
    const r = entropyFromLogits(G.entropy.logits, mask);
    expectClose(r.perToken, G.entropy.perToken, TOL_ARRAY);
    expectClose(r.mean, G.entropy.mean, TOL_ARRAY);
  });

  test('bradley-terry', () => {
    for (const c of G.bt.cases) {
      const r = bradleyTerryLoss(G.bt.chosen, G.bt.rejected, c.margin, c.centerCoef);
      expectClose([r.loss, r.accuracy], [c.loss, c.accuracy], TOL_ARRAY, c.name);
    }
  });

  test('dpo sigmoid, label smoothing, ipo', () => {
    const d = G.dpo;
    for (const c of d.cases) {
      const r = dpoLoss(
        d.policyChosen,
        d.policyRejected,
        d.refChosen,
        d.refRejected,
        c.beta,
        c.lossType,
        c.labelSmoothing,
      );
      const what = `${c.lossType} β=${c.beta} ls=${c.labelSmoothing}`;
      expectClose(r.loss, c.loss, TOL_ARRAY, what);
      expectClose(r.chosenRewards, c.chosenRewards, TOL_ARRAY, what);
      expectClose(r.rejectedRewards, c.rejectedRewards, TOL_ARRAY, what);
    }
  });
});

describe('RLHF maths, array API, properties and errors', () => {
  test('gae with γ = λ = 1 gives returns = sum of future rewards, advantages = returns − values', () => {
    const rewards = [
      [0.1, 0.2, 1.0, 9],
      [0.5, 7, 7, 7],
    ];
    const values = [
      [0.3, -0.2, 0.4, 5],
      [1.0, 5, 5, 5],
    ];
    const mask = [
      [1, 1, 1, 0],
      [1, 0, 0, 0],
    ];
    const { advantages, returns } = gae(rewards, values, mask, 1, 1);
    expectClose(
      returns,
      [
        [1.3, 1.2, 1.0, 0],
        [0.5, 0, 0, 0],
      ],
      1e-12,
    );
    expectClose(
      advantages,
      [
        [1.0, 1.4, 0.6, 0],
        [-0.5, 0, 0, 0],
      ],
      1e-12,
    );
  });

  test('whitened entries have masked mean 0 and unbiased variance 1; padding is 0', () => {
    const w = whiten(G.whiten.x, G.mask);
    expect(Math.abs(maskedMean(w, G.mask))).toBeLessThan(1e-12);
    expect(Math.abs(maskedVar(w, G.mask) - 1)).toBeLessThan(1e-6);
    G.mask.forEach((row, b) => row.forEach((m, t) => m === 0 && expect(w[b][t]).toBe(0)));
  });

  test('k3 is never negative and is 0 where the policies agree', () => {
    const k3 = klPerToken(G.kl.logprobs, G.kl.refLogprobs, 'k3');
    expect(Math.min(...k3.flat())).toBeGreaterThanOrEqual(0);
    expect(klPerToken([[-1.5]], [[-1.5]], 'k3')[0][0]).toBe(0);
  });

  test('policy loss at ratio 1 is −mean(advantage), nothing clipped, approxKl 0', () => {
    const lp = [[-1, -2, -3]];
    const r = ppoPolicyLoss(lp, lp, [[1, -2, 4]], [[1, 1, 0]], 0.2);
    expect(r).toEqual({ loss: 0.5, clipfrac: 0, approxKl: 0 });
  });

  test('bradley-terry: equal rewards give log 2; huge margins stay finite', () => {
    expectClose(bradleyTerryLoss([0.3], [0.3]).loss, Math.LN2, 1e-15);
    expect(bradleyTerryLoss([0], [0], 1e4).loss).toBeCloseTo(1e4, 9);
    expect(bradleyTerryLoss([1e4], [0]).loss).toBe(0);
  });

  test('dpo at policy = reference: sigmoid loss log 2, ipo loss 1/(2β)²', () => {
    const lp = [-3, -4];
    expectClose(dpoLoss(lp, lp, lp, lp, 0.1, 'sigmoid').loss, Math.LN2, 1e-15);
    expectClose(dpoLoss(lp, lp, lp, lp, 0.1, 'ipo').loss, 25, 1e-15);
  });

  test('errors a caller can act on', () => {
    expect(() => gae([[1, 2]], [[1]], [[1, 1]], 1, 1)).toThrow(RangeError);
    expect(() => maskedMean([[1, 2]], [[0, 0]])).toThrow(/no entry/);
    expect(() => whiten([[1, 2]], [[1, 0]])).toThrow(/two/);
    expect(() => bradleyTerryLoss([1, 2], [1])).toThrow(RangeError);
    expect(() => dpoLoss([1], [1], [1], [1], 0, 'sigmoid')).toThrow(/beta/);
  });

  test('adaptive KL controller moves β towards the target, at most ±20% × n/horizon', () => {
    const c = new AdaptiveKlController(0.1, 6, 10000);
    expectClose(c.update(12, 100), 0.1 * (1 + (0.2 * 100) / 10000), 1e-15);
    const d = new AdaptiveKlController(0.1, 6, 10000);
    expectClose(d.update(5.4, 100), 0.1 * (1 - (0.1 * 100) / 10000), 1e-15);
  });
});

/** Checks that fn leaves no tensor behind. */
async function noLeak(fn: () => Promise<void>): Promise<void> {
  const before = tf.memory().numTensors;
  await fn();
  expect(tf.memory().numTensors).toBe(before);
}

function randMatrix(rng: Rng, B: number, T: number, scale = 1, shift = 0): M {
  return Array.from({ length: B }, () => Array.from({ length: T }, () => shift + scale * rng.normal()));
}
function randMask(rng: Rng, B: number, T: number): M {
  return Array.from({ length: B }, () => {
    const n = 1 + rng.int(T);
    return Array.from({ length: T }, (_, t) => (t < n ? 1 : 0));
  });
}

async function expectFiniteGrad(g: tf.Tensor): Promise<void> {
  expect((await read(g)).every(Number.isFinite)).toBe(true);
}

describe.each<TestBackend>(['cpu', 'wasm'])('RLHF maths, tensor API on %s', (backend) => {
  const mask = G.mask;

  test('matches the reference: values and gradients', async () => {
    await useBackend(backend);
    await noLeak(async () => {
      const m = t2(mask);
      // whiten (value and gradient of Σ w·whiten(x))
      const w = G.whiten;
      for (const shift of [true, false]) {
        const x = t2(w.x);
        const wt = t2(w.weights);
        const y = whitenT(x, m, shift);
        const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(whitenT(xx, m, shift), wt)))(x);
        expectClose(await read(y), shift ? w.shift : w.noShift, TOL_TENSOR, `whiten ${shift}`);
        expectClose(await read(g), shift ? w.shiftGrad : w.noShiftGrad, TOL_TENSOR, `whiten grad ${shift}`);
        tf.dispose([x, wt, y, g]);
      }
      // kl
      {
        const lp = t2(G.kl.logprobs);
        const ref = t2(G.kl.refLogprobs);
        const k1 = klPerTokenT(lp, ref, 'k1');
        const k3 = klPerTokenT(lp, ref, 'k3');
        expectClose(await read(k1), G.kl.k1, TOL_TENSOR, 'k1');
        expectClose(await read(k3), G.kl.k3, TOL_TENSOR, 'k3');
        tf.dispose([lp, ref, k1, k3]);
      }
      // policy loss
      {
        const p = G.policy;
        const [lp, old, adv] = [t2(p.logprobs), t2(p.oldLogprobs), t2(p.advantages)];
        const r = ppoPolicyLossT(lp, old, adv, m, p.clipRange);
        const g = tf.grad((x: tf.Tensor) => ppoPolicyLossT(x, old, adv, m, p.clipRange).loss)(lp);
        expectClose(
          [await read(r.loss), await read(r.clipfrac), await read(r.approxKl)].flat(),
          [p.loss, p.clipfrac, p.approxKl],
          TOL_TENSOR,
          'policy',
        );
        expectClose(await read(g), p.grad, TOL_TENSOR, 'policy grad');
        tf.dispose([lp, old, adv, r.loss, r.clipfrac, r.approxKl, g]);
      }
      // value loss
      {
        const v = G.value;
        const [vals, old, ret] = [t2(v.values), t2(v.oldValues), t2(v.returns)];
        const r = ppoValueLossT(vals, old, ret, m, v.clipRangeValue);
        const g = tf.grad((x: tf.Tensor) => ppoValueLossT(x, old, ret, m, v.clipRangeValue).loss)(vals);
        expectClose([await read(r.loss), await read(r.clipfrac)].flat(), [v.loss, v.clipfrac], TOL_TENSOR, 'value');
        expectClose(await read(g), v.grad, TOL_TENSOR, 'value grad');
        tf.dispose([vals, old, ret, r.loss, r.clipfrac, g]);
      }
      // entropy
      {
        const logits = tf.tensor3d(G.entropy.logits);
        const r = entropyFromLogitsT(logits, m as tf.Tensor2D);
        const g = tf.grad((x: tf.Tensor) => entropyFromLogitsT(x as tf.Tensor3D, m as tf.Tensor2D).mean)(logits);
        expectClose(await read(r.perToken), G.entropy.perToken, TOL_TENSOR, 'entropy');
        expectClose(await read(r.mean), G.entropy.mean, TOL_TENSOR, 'entropy mean');
        expectClose(await read(g), G.entropy.grad, TOL_TENSOR, 'entropy grad');
        tf.dispose([r.perToken, r.mean, g]);
        // token log-probs, tokens as numbers and as an int32 tensor
        const tokensT = tf.tensor2d(G.logprobs.tokens, undefined, 'int32');
        const wt = t2(G.logprobs.weights);
        for (const c of G.logprobs.cases) {
          const lp = logprobsOfTokens(logits, G.logprobs.tokens, c.temperature);
          const lp2 = logprobsOfTokens(logits, tokensT as tf.Tensor2D, c.temperature);
          const g2 = tf.grad((x: tf.Tensor) =>
            tf.sum(tf.mul(logprobsOfTokens(x as tf.Tensor3D, tokensT as tf.Tensor2D, c.temperature), wt)),
          )(logits);
          expectClose(await read(lp), c.logprobs, TOL_TENSOR, `logprobs T=${c.temperature}`);
          expectClose(await read(lp2), c.logprobs, TOL_TENSOR, `logprobs T=${c.temperature}`);
          expectClose(await read(g2), c.grad, TOL_TENSOR, `logprobs grad T=${c.temperature}`);
          // The fused version (one log-softmax for both): the same log-probs, gradients and, at
          // T = 1, the same entropy and entropy gradient.
          const f = logprobsAndEntropyT(logits, tokensT as tf.Tensor2D, c.temperature, m as tf.Tensor2D);
          expectClose(await read(f.logprobs), await read(lp2), 0, `fused logprobs T=${c.temperature}`);
          const fg = tf.grad((x: tf.Tensor) =>
            tf.sum(
              tf.mul(logprobsAndEntropyT(x as tf.Tensor3D, tokensT as tf.Tensor2D, c.temperature, m).logprobs, wt),
            ),
          )(logits);
          expectClose(await read(fg), c.grad, TOL_TENSOR, `fused logprobs grad T=${c.temperature}`);
          const scaled = tf.div(logits, c.temperature) as tf.Tensor3D;
          const want = entropyFromLogitsT(scaled, m as tf.Tensor2D);
          expectClose(await read(f.entropy.perToken), await read(want.perToken), TOL_TENSOR, 'fused entropy');
          expectClose(await read(f.entropy.mean), await read(want.mean), TOL_TENSOR, 'fused entropy mean');
          if (c.temperature === 1) {
            expectClose(await read(f.entropy.perToken), G.entropy.perToken, TOL_TENSOR, 'fused entropy T=1');
            const eg = tf.grad(
              (x: tf.Tensor) =>
                logprobsAndEntropyT(x as tf.Tensor3D, tokensT as tf.Tensor2D, 1, m as tf.Tensor2D).entropy.mean,
            )(logits);
            expectClose(await read(eg), G.entropy.grad, TOL_TENSOR, 'fused entropy grad');
            eg.dispose();
          }
          tf.dispose([
            lp,
            lp2,
            g2,
            f.logprobs,
            f.entropy.perToken,
            f.entropy.mean,
            fg,
            scaled,
            want.perToken,
            want.mean,
          ]);
        }
        tf.dispose([logits, tokensT, wt]);
      }
      // bradley-terry
      {
        const [ch, rj] = [t1(G.bt.chosen), t1(G.bt.rejected)];
        for (const c of G.bt.cases) {
          const r = bradleyTerryLossT(ch, rj, c.margin, c.centerCoef);
          const [gc, gr] = tf.grads(
            (a: tf.Tensor, b: tf.Tensor) =>
              bradleyTerryLossT(a as tf.Tensor1D, b as tf.Tensor1D, c.margin, c.centerCoef).loss,
          )([ch, rj]);
          expectClose([await read(r.loss), await read(r.accuracy)].flat(), [c.loss, c.accuracy], TOL_TENSOR, c.name);
          expectClose(await read(gc), c.gradChosen, TOL_TENSOR, `${c.name} grad chosen`);
          expectClose(await read(gr), c.gradRejected, TOL_TENSOR, `${c.name} grad rejected`);
          tf.dispose([r.loss, r.accuracy, gc, gr]);
        }
        tf.dispose([ch, rj]);
      }
      // dpo
      {
        const d = G.dpo;
        const [pc, pr, rc, rr] = [t1(d.policyChosen), t1(d.policyRejected), t1(d.refChosen), t1(d.refRejected)];
        for (const c of d.cases) {
          const what = `${c.lossType} β=${c.beta} ls=${c.labelSmoothing}`;
          const r = dpoLossT(pc, pr, rc, rr, c.beta, c.lossType, c.labelSmoothing);
          const [ga, gb] = tf.grads(
            (a: tf.Tensor, b: tf.Tensor) =>
              dpoLossT(a as tf.Tensor1D, b as tf.Tensor1D, rc, rr, c.beta, c.lossType, c.labelSmoothing).loss,
          )([pc, pr]);
          expectClose(await read(r.loss), c.loss, TOL_TENSOR, what);
          expectClose(await read(r.chosenRewards), c.chosenRewards, TOL_TENSOR, what);
          expectClose(await read(r.rejectedRewards), c.rejectedRewards, TOL_TENSOR, what);
          expectClose(await read(ga), c.gradChosen, TOL_TENSOR, `${what} grad chosen`);
          expectClose(await read(gb), c.gradRejected, TOL_TENSOR, `${what} grad rejected`);
          tf.dispose([r.loss, r.chosenRewards, r.rejectedRewards, ga, gb]);
        }
        tf.dispose([pc, pr, rc, rr]);
      }
      m.dispose();
    });
  });

  test('equals the array API on random inputs; gradients finite; no leaks', async () => {
    await useBackend(backend);
    const rng = new Rng(7);
    for (let trial = 0; trial < 5; trial++) {
      const B = 2 + rng.int(4);
      const T = 2 + rng.int(9);
      const V = 2 + rng.int(8);
      const maskA = randMask(rng, B, T);
      maskA[0] = maskA[0].map(() => 1); // at least two valid entries for the unbiased variance
      await noLeak(async () => {
        const m = t2(maskA);
        // whiten
        const x = randMatrix(rng, B, T, 3, 1);
        for (const shift of [true, false]) {
          const xt = t2(x);
          const y = whitenT(xt, m, shift);
          const g = tf.grad((a: tf.Tensor) => tf.sum(whitenT(a, m, shift)))(xt);
          expectClose(await read(y), whiten(x, maskA, shift), TOL_TENSOR, 'whiten');
          await expectFiniteGrad(g);
          tf.dispose([xt, y, g]);
        }
        // policy and value losses with a wide spread of ratios
        const old = randMatrix(rng, B, T, 1, -2);
        const lp = old.map((row) => row.map((o) => o + 0.4 * rng.normal()));
        const adv = randMatrix(rng, B, T);
        const want = ppoPolicyLoss(lp, old, adv, maskA, 0.2);
        const [lpT, oldT, advT] = [t2(lp), t2(old), t2(adv)];
        const got = ppoPolicyLossT(lpT, oldT, advT, m, 0.2);
        const g = tf.grad((a: tf.Tensor) => ppoPolicyLossT(a, oldT, advT, m, 0.2).loss)(lpT);
        expectClose(
          [await read(got.loss), await read(got.clipfrac), await read(got.approxKl)].flat(),
          [want.loss, want.clipfrac, want.approxKl],
          TOL_TENSOR,
          'policy',
        );
        await expectFiniteGrad(g);
        tf.dispose([got.loss, got.clipfrac, got.approxKl, g]);

        const ret = randMatrix(rng, B, T);
        const wantV = ppoValueLoss(lp, old, ret, maskA, 0.3);
        const retT = t2(ret);
        const gotV = ppoValueLossT(lpT, oldT, retT, m, 0.3);
        expectClose(
          [await read(gotV.loss), await read(gotV.clipfrac)].flat(),
          [wantV.loss, wantV.clipfrac],
          TOL_TENSOR,
          'value',
        );
        tf.dispose([gotV.loss, gotV.clipfrac, retT]);

        // KL
        for (const est of ['k1', 'k3'] as const) {
          const k = klPerTokenT(lpT, oldT, est);
          expectClose(await read(k), klPerToken(lp, old, est), TOL_TENSOR, est);
          k.dispose();
        }
        tf.dispose([lpT, oldT, advT]);

        // entropy and token log-probs
        const logits = Array.from({ length: B }, () => randMatrix(rng, T, V, 3));
        const tokens = Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(V)));
        const lt = tf.tensor3d(logits);
        const e = entropyFromLogitsT(lt, m as tf.Tensor2D);
        const wantE = entropyFromLogits(logits, maskA);
        expectClose(await read(e.perToken), wantE.perToken, TOL_TENSOR, 'entropy');
        expectClose(await read(e.mean), wantE.mean, TOL_TENSOR, 'entropy mean');
        const ge = tf.grad((a: tf.Tensor) => entropyFromLogitsT(a as tf.Tensor3D, m as tf.Tensor2D).mean)(lt);
        await expectFiniteGrad(ge);
        const lpTok = logprobsOfTokens(lt, tokens, 0.8);
        const wantTok = logits.map((row, b) =>
          row.map((l, t) => {
            const s = l.map((v) => v / 0.8);
            const mx = Math.max(...s);
            return s[tokens[b][t]] - mx - Math.log(s.reduce((acc, v) => acc + Math.exp(v - mx), 0));
          }),
        );
        expectClose(await read(lpTok), wantTok, TOL_TENSOR, 'logprobsOfTokens');
        const gl = tf.grad((a: tf.Tensor) => tf.sum(logprobsOfTokens(a as tf.Tensor3D, tokens, 0.8)))(lt);
        await expectFiniteGrad(gl);
        tf.dispose([lt, e.perToken, e.mean, ge, lpTok, gl]);

        // pairwise losses
        const N = 1 + rng.int(8);
        const ch = Array.from({ length: N }, () => 2 * rng.normal());
        const rj = Array.from({ length: N }, () => 2 * rng.normal());
        const [chT, rjT] = [t1(ch), t1(rj)];
        const bt = bradleyTerryLossT(chT, rjT, 0.3, 0.05);
        const wantBt = bradleyTerryLoss(ch, rj, 0.3, 0.05);
        expectClose(
          [await read(bt.loss), await read(bt.accuracy)].flat(),
          [wantBt.loss, wantBt.accuracy],
          TOL_TENSOR,
          'bt',
        );
        tf.dispose([bt.loss, bt.accuracy]);
        const refC = ch.map((v) => v - 0.5 * rng.normal());
        const refR = rj.map((v) => v - 0.5 * rng.normal());
        const [rcT, rrT] = [t1(refC), t1(refR)];
        for (const [lossType, ls] of [
          ['sigmoid', 0],
          ['sigmoid', 0.2],
          ['ipo', 0],
        ] as const) {
          const d = dpoLossT(chT, rjT, rcT, rrT, 0.3, lossType, ls);
          const wantD = dpoLoss(ch, rj, refC, refR, 0.3, lossType, ls);
          expectClose(await read(d.loss), wantD.loss, TOL_TENSOR, lossType);
          expectClose(await read(d.chosenRewards), wantD.chosenRewards, TOL_TENSOR, lossType);
          const [ga, gb] = tf.grads(
            (a: tf.Tensor, b: tf.Tensor) =>
              dpoLossT(a as tf.Tensor1D, b as tf.Tensor1D, rcT, rrT, 0.3, lossType, ls).loss,
          )([chT, rjT]);
          await expectFiniteGrad(ga);
          await expectFiniteGrad(gb);
          tf.dispose([d.loss, d.chosenRewards, d.rejectedRewards, ga, gb]);
        }
        tf.dispose([chT, rjT, rcT, rrT, m]);
      });
    }
  });

  test('filler log-probs on padding change nothing', async () => {
    await useBackend(backend);
    await noLeak(async () => {
      const p = G.policy;
      const old = p.oldLogprobs.map((row, b) => row.map((v, t) => (mask[b][t] ? v : -1e4)));
      const lp = p.logprobs.map((row, b) => row.map((v, t) => (mask[b][t] ? v : 0)));
      const r = ppoPolicyLoss(lp, old, p.advantages, mask, p.clipRange);
      expectClose([r.loss, r.clipfrac, r.approxKl], [p.loss, p.clipfrac, p.approxKl], TOL_ARRAY);
      const [lpT, oldT, advT, m] = [t2(lp), t2(old), t2(p.advantages), t2(mask)];
      const rt = ppoPolicyLossT(lpT, oldT, advT, m, p.clipRange);
      const g = tf.grad((x: tf.Tensor) => ppoPolicyLossT(x, oldT, advT, m, p.clipRange).loss)(lpT);
      expectClose(
        [await read(rt.loss), await read(rt.clipfrac), await read(rt.approxKl)].flat(),
        [p.loss, p.clipfrac, p.approxKl],
        TOL_TENSOR,
      );
      expectClose(await read(g), p.grad, TOL_TENSOR);
      tf.dispose([lpT, oldT, advT, m, rt.loss, rt.clipfrac, rt.approxKl, g]);
    });
  });

  test('extreme logits and rewards stay finite', async () => {
    await useBackend(backend);
    await noLeak(async () => {
      const logits = tf.tensor3d([[[1000, -1000, 0]], [[-50, -50, -50]]]);
      const mask = tf.tensor2d([[1], [1]]);
      const e = entropyFromLogitsT(logits, mask as tf.Tensor2D);
      const lp = logprobsOfTokens(logits, [[1], [2]]);
      expect((await read(e.perToken)).every(Number.isFinite)).toBe(true);
      expectClose(await read(e.perToken), [0, Math.log(3)], 1e-5);
      expect((await read(lp)).every(Number.isFinite)).toBe(true);
      const [ch, rj] = [t1([100, -100]), t1([-100, 100])];
      const bt = bradleyTerryLossT(ch, rj);
      expectClose(await read(bt.loss), 100, 1e-5);
      tf.dispose([logits, mask, e.perToken, e.mean, lp, ch, rj, bt.loss, bt.accuracy]);
    });
  });
});
