/**
 * The over-optimisation chart's trend line (src/lib/rlhf/overopt.ts `loessTrend`): sorted by √KL
 * whatever order the evaluations come in, smooth, exact on a straight line, and close to the curve
 * behind noisy points.
 */
import { describe, expect, it } from 'vitest';
import { loessTrend, type XY } from '../../src/lib/rlhf/overopt';

/** A small seeded generator (mulberry32), so the noise is the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Sum of |Δy| along a curve: how much it goes up and down. */
const variation = (ps: readonly XY[]) => ps.slice(1).reduce((s, p, i) => s + Math.abs(p.y - ps[i].y), 0);

/** Gold-like curve: rises, peaks at x = 1, falls (Gao et al.'s shape). */
const gold = (x: number) => x * (2 - x);

/** √KL as a PPO run reports it: mostly growing, but going back and forth between evaluations. */
function zigzagRun(n: number, noise: number, seed = 1): XY[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const x = Math.max(0, (2 * i) / (n - 1) + (i % 2 ? -0.35 : 0.35) * r());
    return { x, y: gold(x) + noise * (r() - 0.5) };
  });
}

describe('loessTrend', () => {
  it('is sorted by x, from the smallest x to the largest, whatever the order of the points', () => {
    const pts = zigzagRun(25, 0.3);
    // The input really goes back and forth (the zig-zag a line in iteration order would draw).
    expect(pts.some((p, i) => i > 0 && p.x < pts[i - 1].x)).toBe(true);
    const t = loessTrend(pts);
    expect(t).toHaveLength(40);
    for (let i = 1; i < t.length; i++) expect(t[i].x).toBeGreaterThan(t[i - 1].x);
    expect(t[0].x).toBe(Math.min(...pts.map((p) => p.x)));
    expect(t.at(-1)!.x).toBe(Math.max(...pts.map((p) => p.x)));
    // The same points shuffled give the same curve.
    const shuffled = [...pts].reverse();
    expect(loessTrend(shuffled)).toEqual(t);
  });

  it('reproduces a straight line exactly (local linear fit)', () => {
    const pts = [3, 0.5, 2, 0, 1.5, 2.5, 1].map((x) => ({ x, y: 0.7 * x - 0.2 }));
    for (const p of loessTrend(pts, { samples: 11 })) expect(p.y).toBeCloseTo(0.7 * p.x - 0.2, 10);
  });

  it('is smooth: it follows the curve behind noisy points and goes up and down far less than they do', () => {
    const pts = zigzagRun(40, 0.6, 7);
    const t = loessTrend(pts);
    const sorted = [...pts].sort((a, b) => a.x - b.x);
    // The points, sorted by x, jump up and down with the noise; the trend rises and falls once, about
    // as far as the true curve does over the same x.
    const truth = variation(t.map((p) => ({ x: p.x, y: gold(p.x) })));
    expect(variation(sorted)).toBeGreaterThan(2.5 * truth);
    expect(variation(t)).toBeLessThan(1.15 * truth);
    const peak = t.reduce((k, p, i) => (p.y > t[k].y ? i : k), 0);
    for (let i = 1; i < t.length; i++) {
      if (i <= peak) expect(t[i].y).toBeGreaterThanOrEqual(t[i - 1].y - 1e-9);
      else expect(t[i].y).toBeLessThanOrEqual(t[i - 1].y + 1e-9);
    }
    expect(t[peak].x).toBeGreaterThan(0.7);
    expect(t[peak].x).toBeLessThan(1.3);
    // Close to the true curve away from the ends (noise ±0.3).
    for (const p of t.filter((q) => q.x > 0.3 && q.x < 1.7)) expect(Math.abs(p.y - gold(p.x))).toBeLessThan(0.15);
    // Second differences small: no kinks.
    for (let i = 2; i < t.length; i++) expect(Math.abs(t[i].y - 2 * t[i - 1].y + t[i - 2].y)).toBeLessThan(0.025);
  });

  it('bridges a gap in √KL without overshooting: stays within the points and follows their direction', () => {
    // One evaluation at the start, then a jump in KL (a PPO run's first update), then a cluster.
    const pts: XY[] = [
      { x: 0, y: 0 },
      { x: 0.1, y: -0.1 },
      { x: 3.5, y: -0.9 },
      { x: 4, y: -1.7 },
      { x: 4.6, y: -3.3 },
      { x: 4.8, y: -3.4 },
      { x: 5, y: -3.2 },
      { x: 5.5, y: -1.8 },
      { x: 6, y: -2.6 },
      { x: 7, y: -2.4 },
    ];
    const t = loessTrend(pts);
    for (const p of t) {
      expect(p.y).toBeLessThanOrEqual(0);
      expect(p.y).toBeGreaterThanOrEqual(-3.4);
    }
    // Across the gap it falls, as the points on either side say (a smoother may wobble a little).
    const gap = t.filter((p) => p.x > 0.2 && p.x < 3.5);
    expect(gap.at(-1)!.y).toBeLessThan(gap[0].y - 0.8);
    for (let i = 1; i < gap.length; i++) expect(gap[i].y).toBeLessThanOrEqual(gap[i - 1].y + 0.1);
  });

  it('few points or repeated x: the mean at each x; nothing for nothing; non-finite points left out', () => {
    expect(loessTrend([])).toEqual([]);
    expect(loessTrend([{ x: 1, y: 2 }])).toEqual([{ x: 1, y: 2 }]);
    expect(
      loessTrend([
        { x: 2, y: 1 },
        { x: 0, y: 3 },
        { x: 2, y: 3 },
        { x: NaN, y: 9 },
        { x: 1, y: Infinity },
      ]),
    ).toEqual([
      { x: 0, y: 3 },
      { x: 2, y: 2 },
    ]);
    // Many points on one x among others: a finite curve through their mean there.
    const t = loessTrend([
      { x: 0, y: 0 },
      { x: 1, y: 1 },
      { x: 1, y: 3 },
      { x: 1, y: 2 },
      { x: 2, y: 4 },
    ]);
    expect(t.every((p) => Number.isFinite(p.y))).toBe(true);
  });
});
