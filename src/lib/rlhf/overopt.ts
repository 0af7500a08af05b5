/**
 * Reward-model over-optimisation, as in Gao, Schulman & Hilton 2022, "Scaling laws for reward
 * model overoptimization" (arXiv:2210.10760, Fig. 1): plot the proxy reward (the learned reward
 * model the policy optimises) and the gold reward (the labeller the reward model was trained to
 * imitate) against d = √KL(π ‖ π_ref). The proxy keeps rising with d; the gold rises, peaks and
 * falls (Goodhart's law). Pure functions over evaluation rows, shared by the app's chart
 * (src/ui/train/OveroptChart.svelte) and the Node experiment scripts/experiments/pipeline.ts.
 *
 * The chart's trend line (`loessTrend`) is local linear regression, the LOESS of Cleveland 1979,
 * "Robust locally weighted regression and smoothing scatterplots" (JASA 74:829), with a Gaussian
 * kernel of fixed width instead of tricube weights over the nearest neighbours (so the curve has
 * no kinks where the set of neighbours changes) and without the robustness iterations.
 */

/** One evaluation: means over its samples. */
export interface OveroptRow {
  iteration: number;
  /** Mean gold (noise-free labeller) score. */
  gold: number;
  /** Mean proxy (reward-model) score. */
  proxy: number;
  /** Mean KL to the reference per sequence (nats). */
  kl: number;
  /** √max(0, kl): Gao et al.'s x axis. */
  sqrtKl: number;
}

/** What `goldPeak` finds (smoothed values). */
export interface GoldPeak {
  /** Gold peaked before the last evaluation, ended ≥ ¼ base std below the peak, proxy ended above its value there. */
  shown: boolean;
  peakIndex: number;
  peakIteration: number;
  peakSqrtKl: number;
  peakGold: number;
  peakProxy: number;
  endGold: number;
  endProxy: number;
}

/** An evaluation as the app stores it (src/state/train.svelte.ts `EvalPoint`). */
export interface EvalLike {
  iteration: number;
  samples: readonly { score: number; gold: number | null; kl?: number }[];
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Sample standard deviation (n − 1), as scripts/experiments/pipeline-common.ts `stats`. */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/** Moving average over a centred window of 3 (2 at the ends). */
export function smooth3(xs: readonly number[]): number[] {
  return xs.map((_, i) => mean(xs.slice(Math.max(0, i - 1), Math.min(xs.length, i + 2))));
}

/**
 * Did the gold score peak and turn down while the proxy kept rising (Gao et al. 2022, Fig. 1)?
 * Gold and proxy are smoothed over 3 evaluations (the evaluations use few samples). Shown when
 * the smoothed gold first rises at least a quarter of the base model's gold std above its start,
 * peaks before the last evaluation, ends at least that far below its peak, and the smoothed
 * proxy ends above its value at the peak. (Gold that only falls is a bad proxy, not a peak.)
 */
export function goldPeak(rows: readonly OveroptRow[], baseStd: number): GoldPeak {
  const g = smooth3(rows.map((r) => r.gold));
  const p = smooth3(rows.map((r) => r.proxy));
  let k = 0;
  g.forEach((x, i) => {
    if (x > g[k]) k = i;
  });
  const last = rows.length - 1;
  // A peak is a rise and a fall: gold first climbs a quarter of the base std above where it
  // started, then ends that far below its peak, while the proxy ends higher than at the peak.
  const rose = k > 0 && g[k] >= g[0] + 0.25 * baseStd;
  const shown = rows.length > 0 && rose && k < last && g[last] <= g[k] - 0.25 * baseStd && p[last] > p[k];
  return {
    shown,
    peakIndex: k,
    peakIteration: rows[k]?.iteration ?? 0,
    peakSqrtKl: rows[k]?.sqrtKl ?? NaN,
    peakGold: g[k] ?? NaN,
    peakProxy: p[k] ?? NaN,
    endGold: g[last] ?? NaN,
    endProxy: p[last] ?? NaN,
  };
}

/** The spread of the first evaluation's scores, the unit the chart measures change in. */
export interface OveroptBase {
  goldStd: number;
  proxyStd: number;
}

/** Rows of the evaluations that have gold scores and KL, in iteration order; and the first one's stds. */
export function overoptRows(evals: readonly EvalLike[]): { rows: OveroptRow[]; base: OveroptBase | null } {
  const rows: OveroptRow[] = [];
  let base: OveroptBase | null = null;
  const sorted = [...evals].sort((a, b) => a.iteration - b.iteration);
  for (const e of sorted) {
    const s = e.samples.filter(
      (x) => x.gold !== null && Number.isFinite(x.gold) && Number.isFinite(x.score) && Number.isFinite(x.kl),
    );
    if (!s.length) continue;
    const golds = s.map((x) => x.gold!);
    const proxies = s.map((x) => x.score);
    const kl = mean(s.map((x) => x.kl!));
    rows.push({
      iteration: e.iteration,
      gold: mean(golds),
      proxy: mean(proxies),
      kl,
      sqrtKl: Math.sqrt(Math.max(0, kl)),
    });
    base ??= { goldStd: sampleStd(golds), proxyStd: sampleStd(proxies) };
  }
  return { rows, base };
}

/** A usable unit: the std when it is a positive number, else 1 (raw units). */
export function unitOf(std: number | undefined): number {
  return std !== undefined && Number.isFinite(std) && std > 1e-9 ? std : 1;
}

/** Change since the first row, in units of the first evaluation's std (both series start at 0). */
export function standardise(
  rows: readonly OveroptRow[],
  base: OveroptBase | null,
): { iteration: number; x: number; gold: number; proxy: number }[] {
  if (!rows.length) return [];
  const gu = unitOf(base?.goldStd);
  const pu = unitOf(base?.proxyStd);
  const g0 = rows[0].gold;
  const p0 = rows[0].proxy;
  return rows.map((r) => ({
    iteration: r.iteration,
    x: r.sqrtKl,
    gold: (r.gold - g0) / gu,
    proxy: (r.proxy - p0) / pu,
  }));
}

/** Fixed decimals, without a minus sign on a rounded zero. */
const f = (x: number, d = 2): string => {
  const s = x.toFixed(d);
  return /^-0\.?0*$/.test(s) ? s.slice(1) : s;
};
/** " (1.2 std)" when the base std is usable, else nothing. */
const inStd = (x: number, std: number | undefined): string =>
  std !== undefined && Number.isFinite(std) && std > 1e-9 ? ` (${f(x / std, 1)} std)` : '';
const signed = (x: number, std: number | undefined): string =>
  `${x >= 0 ? 'rose' : 'fell'} by ${f(Math.abs(x))}${inStd(Math.abs(x), std)}`;

/** Index of the largest value (the first of equals). */
function argmax(xs: readonly number[]): number {
  let k = 0;
  xs.forEach((x, i) => {
    if (x > xs[k]) k = i;
  });
  return k;
}

/** The chart's data: standardised points, the gold peak to mark, and the one-sentence summary. */
export interface OveroptView {
  rows: OveroptRow[];
  base: OveroptBase | null;
  points: { iteration: number; x: number; gold: number; proxy: number }[];
  /** Row of the gold peak: the smoothed one when over-optimisation is shown, else the highest raw gold. */
  peakIndex: number;
  /** The gold peaked and fell while the proxy rose (`goldPeak(…).shown`). */
  shown: boolean;
  summary: string;
}

/**
 * One sentence for screen readers and the caption. When `goldPeak` shows over-optimisation it
 * says where the (smoothed) gold peaked on the √KL axis, how far it fell since and how the proxy
 * moved over the same stretch; otherwise it describes the raw evaluations.
 */
export function overoptView(evals: readonly EvalLike[]): OveroptView {
  const { rows, base } = overoptRows(evals);
  const points = standardise(rows, base);
  if (!rows.length)
    return { rows, base, points, peakIndex: -1, shown: false, summary: 'No evaluation with gold scores and KL yet.' };
  const gs = base?.goldStd;
  const ps = base?.proxyStd;
  const r0 = rows[0];
  const end = rows[rows.length - 1];
  if (rows.length === 1)
    return {
      rows,
      base,
      points,
      peakIndex: 0,
      shown: false,
      summary: `One evaluation so far (iteration ${r0.iteration}, √KL ${f(r0.sqrtKl)}): gold ${f(r0.gold)}, proxy ${f(r0.proxy)}.`,
    };
  const pk = goldPeak(rows, unitOf(gs));
  if (pk.shown) {
    const fell = pk.peakGold - pk.endGold;
    const summary =
      `Over-optimisation: the gold score peaked at √KL ${f(pk.peakSqrtKl)} (iteration ${pk.peakIteration}) ` +
      `and fell by ${f(fell)}${inStd(fell, gs)} by √KL ${f(end.sqrtKl)}, ` +
      `while the proxy ${signed(pk.endProxy - pk.peakProxy, ps)} (3-point averages).`;
    return { rows, base, points, peakIndex: pk.peakIndex, shown: true, summary };
  }
  const k = argmax(rows.map((r) => r.gold));
  const top = rows[k];
  const summary =
    k === rows.length - 1
      ? `No gold peak yet: since iteration ${r0.iteration} the gold score ${signed(end.gold - r0.gold, gs)} and the ` +
        `proxy ${signed(end.proxy - r0.proxy, ps)}, up to √KL ${f(end.sqrtKl)}.`
      : `The gold score was highest at √KL ${f(top.sqrtKl)} (iteration ${top.iteration}) and is ` +
        `${f(top.gold - end.gold)}${inStd(top.gold - end.gold, gs)} below that at √KL ${f(end.sqrtKl)}, while the ` +
        `proxy ${signed(end.proxy - top.proxy, ps)}: not (yet) a clear over-optimisation peak.`;
  return { rows, base, points, peakIndex: k, shown: false, summary };
}

/** A point of a scatter or a trend: x (here √KL) and y (a score). */
export interface XY {
  x: number;
  y: number;
}

/** How `loessTrend` smooths. */
export interface TrendOptions {
  /** Kernel width (the Gaussian's σ) as a share of the x range. Default 0.12. */
  bandwidth?: number;
  /**
   * Share of the points (at least 3) that lie within one σ of every x on the curve: where the
   * points are sparse the kernel widens to reach them, so a gap is bridged, not extrapolated
   * (LOESS's nearest-neighbour span). Default 0.25.
   */
  span?: number;
  /** Points on the curve, evenly spaced from the smallest x to the largest. Default 40. */
  samples?: number;
}

/**
 * A smoothed trend of y against x, sorted by x: at each of `samples` evenly spaced x from min to
 * max, the value there of a straight line fitted by least squares to all points, each weighted by
 * a Gaussian of its distance (σ = `bandwidth` × the x range, or the distance to the `span`·n-th
 * nearest point where that is larger), kept within the range of the points' y. The order the
 * points come in (iteration order, where KL goes back and forth) does not matter; a straight line
 * is reproduced exactly. Fewer than 3 distinct x: the mean y at each distinct x, joined.
 * Non-finite points are left out.
 */
export function loessTrend(points: readonly XY[], opts: TrendOptions = {}): XY[] {
  const pts = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
  if (!pts.length) return [];
  const distinct = new Map<number, number[]>();
  for (const p of pts) distinct.set(p.x, [...(distinct.get(p.x) ?? []), p.y]);
  if (distinct.size < 3) return [...distinct].map(([x, ys]) => ({ x, y: mean(ys) }));
  const lo = pts[0].x;
  const hi = pts[pts.length - 1].x;
  const h = (opts.bandwidth ?? 0.12) * (hi - lo);
  const k = Math.min(pts.length, Math.max(3, Math.ceil((opts.span ?? 0.25) * pts.length)));
  const yLo = Math.min(...pts.map((p) => p.y));
  const yHi = Math.max(...pts.map((p) => p.y));
  const samples = Math.max(2, Math.floor(opts.samples ?? 40));
  const out: XY[] = [];
  for (let i = 0; i < samples; i++) {
    const x0 = i === samples - 1 ? hi : lo + ((hi - lo) * i) / (samples - 1);
    const kth = pts.map((p) => Math.abs(p.x - x0)).sort((a, b) => a - b)[k - 1];
    const y = localLinear(pts, x0, Math.max(h, kth));
    out.push({ x: x0, y: Math.min(yHi, Math.max(yLo, y)) });
  }
  return out;
}

/** The local fit at x0: Gaussian-weighted (σ = h) least-squares line through the points, read at x0. */
function localLinear(pts: readonly XY[], x0: number, h: number): number {
  const w = pts.map((p) => Math.exp(-0.5 * ((p.x - x0) / h) ** 2));
  let sw = 0;
  let sx = 0;
  let sy = 0;
  pts.forEach((p, i) => {
    sw += w[i];
    sx += w[i] * p.x;
    sy += w[i] * p.y;
  });
  const mx = sx / sw;
  const my = sy / sw;
  let sxx = 0;
  let sxy = 0;
  pts.forEach((p, i) => {
    sxx += w[i] * (p.x - mx) ** 2;
    sxy += w[i] * (p.x - mx) * (p.y - my);
  });
  // All the weight on one x: no slope to fit, the weighted mean is the fit.
  return sxx > 1e-12 * h * h * sw ? my + (sxy / sxx) * (x0 - mx) : my;
}
