/**
 * Run-health alarms, the shared core: the types, the one thresholds table (`ALARM_SETTINGS`), the
 * noise helpers and the condition functions more than one trainer's alarms use, and the episodes
 * that turn raised alarms into new ones. The alarms themselves live by trainer: PPO in
 * ./ppo-alarms.ts, GRPO/RLOO in ./group-alarms.ts, SFT/DPO in ./offline-alarms.ts; ./alarms.ts
 * re-exports them all (issue 20).
 *
 * Every threshold lives in one settings table (`ALARM_SETTINGS`, the project's generic table), so
 * a reader finds them in one place with their reasons. Each trainer's file cites the sources of its
 * alarms; the shared conditions here: KL growing while the reward plateaus (TRL issue #204, "reward
 * converged, KL keeps growing, every prompt gets the same answer"), entropy collapse (Cui et al.
 * 2025, "The Entropy Mechanism of Reinforcement Learning for Reasoning Language Models",
 * arXiv:2505.22617) and spikes against the window's median (TRL issue #2980).
 *
 * Noise: a healthy run is noisy (16 rollouts, a few evaluation samples), so a trend must exceed the
 * run's own noise (`stepNoise`, from the metric's iteration-to-iteration changes) and spikes must
 * clear the window's robust spread (`robustStd`).
 *
 * An alarm is null (quiet) or an `Alarm`. `AlarmEpisodes` turns the alarms raised at each
 * iteration into new ones only: an alarm fires once per episode (the condition must have been
 * quiet for `quietIterations` before the same alarm fires again).
 */
import type { RunMetricRow } from '../data/saved';
import type { PpoConfig } from './ppo-config';
import { settingsTable } from '../settings/table';

export type AlarmSeverity = 'warning' | 'critical';

export const ALARM_IDS = [
  'kl-runaway',
  'kl-reward-plateau',
  'entropy-collapse',
  'mode-collapse',
  'length-drift',
  'negative-kl',
  'grad-spike',
  'value-loss-spike',
  'ratio-drift',
  'reward-hacking',
  'lexical-proxy',
] as const;
export type AlarmId = (typeof ALARM_IDS)[number];

export const OFFLINE_ALARM_IDS = ['offline-grad-spike', 'offline-overfit'] as const;
export type OfflineAlarmId = (typeof OFFLINE_ALARM_IDS)[number];

export const GROUP_ALARM_IDS = ['zero-spread', 'all-truncated', 'entropy-collapse', 'kl-reward-plateau'] as const;
export type GroupAlarmId = (typeof GROUP_ALARM_IDS)[number];

export interface AlarmSuggestion<C = PpoConfig> {
  /** What to change, in words ("raise klCoef to 1"). */
  text: string;
  /** The change of the settings (PPO's by default) that rewind applies. */
  change: Partial<C>;
}

export interface Alarm<C = PpoConfig> {
  id: AlarmId | OfflineAlarmId | GroupAlarmId;
  /** The iteration (completed iterations, the charts' x) at which it fired. */
  iteration: number;
  severity: AlarmSeverity;
  /** One sentence: what it means. */
  message: string;
  suggestion: AlarmSuggestion<C>;
}

/** The alarms' thresholds, with the reason of each in its help line. */
export interface AlarmThresholds {
  window: number;
  minIterations: number;
  quietIterations: number;
  confirmIterations: number;
  warmupIterations: number;
  noiseMargin: number;
  klRunawayFactor: number;
  klRunawayFixed: number;
  klRiseNats: number;
  plateauScore: number;
  entropyFloor: number;
  distinctFloor: number;
  identicalFrac: number;
  lengthHigh: number;
  lengthLow: number;
  negativeKl: number;
  spikeFactor: number;
  ratioDeviation: number;
  approxKlMax: number;
  hackEvals: number;
  zeroSpreadFrac: number;
  favouredRepeat: number;
  overfitRise: number;
}

export const ALARM_SETTINGS = settingsTable<AlarmThresholds>(
  {
    window: {
      kind: 'number',
      int: true,
      min: 3,
      max: 1000,
      default: 10,
      help: 'Iterations a trend alarm looks back over (KL growth, reward plateau, spikes against the median).',
    },
    minIterations: {
      kind: 'number',
      int: true,
      min: 1,
      max: 1000,
      default: 6,
      help: 'No trend alarm before this many iterations: the first ones are noisy and the value model is still learning.',
    },
    quietIterations: {
      kind: 'number',
      int: true,
      min: 1,
      max: 1000,
      default: 5,
      help: 'An alarm fires once per episode: it fires again only after its condition was quiet for this many iterations.',
    },
    confirmIterations: {
      kind: 'number',
      int: true,
      min: 1,
      max: 100,
      default: 2,
      help: 'An alarm fires only when its condition held after this many iterations running (evaluations, for the gold check): one noisy batch is not a failure. A blow-up keeps its condition, so it still fires one iteration later.',
    },
    warmupIterations: {
      kind: 'number',
      int: true,
      min: 0,
      max: 1000,
      default: 3,
      help: 'val/ratio and the approximate KL are not judged over the first iterations: the first updates of a run move the policy most (measured on the full-size scenarios: approximate KL 0.61 at iteration 1 of reward-hacking, while the value head is fresh).',
    },
    noiseMargin: {
      kind: 'number',
      min: 0,
      max: 100,
      default: 3,
      help: "A trend alarm (gold falling while the proxy rises, KL growing, a spike) fires only when the change exceeds this many times the run's own noise: the robust standard deviation (1.4826 × median absolute deviation) of the metric's iteration-to-iteration changes, divided by √2.",
    },
    klRunawayFactor: {
      kind: 'number',
      min: 1,
      max: 100,
      default: 3,
      help: 'With adaptive KL: alarm when objective/kl passes this many times the target (β cannot hold it).',
    },
    klRunawayFixed: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1e6,
      default: 5,
      help: "With a fixed β (the user's chosen leash, possibly 0): alarm when objective/kl passes this many nats per completion token. Measured at full size: reward-hacking (β 0.02) reaches 2.4; over-optimisation (β 0, a staged collapse) 7.8; a learning rate 100× the default about 12 within two iterations (8-token completions).",
    },
    klRiseNats: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1e6,
      default: 2,
      help: 'KL growth (nats per sequence, last third of the window against the first) that counts as "growing".',
    },
    plateauScore: {
      kind: 'number',
      min: 0,
      max: 100,
      default: 0.5,
      help: 'The reward has plateaued when its rise over the window (least-squares line) is below this many standard deviations of its values.',
    },
    entropyFloor: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1,
      default: 0.25,
      help: 'Entropy collapse: policy entropy below this fraction of its value at the start of the run.',
    },
    distinctFloor: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1,
      default: 0.4,
      help: 'Mode collapse: distinct-2 of the rollouts below this fraction of its value at the start.',
    },
    identicalFrac: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1,
      default: 0.5,
      help: 'Mode collapse: at least this fraction of a rollout’s completions are identical to another one (different prompts, same answer).',
    },
    lengthHigh: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1,
      default: 0.95,
      help: 'Length drift to the maximum: truncated completions (no end-of-text) reach this fraction after starting below 0.8 of it.',
    },
    lengthLow: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1,
      default: 0.2,
      help: 'Length drift to nothing: mean completion length below this fraction of its value at the start.',
    },
    negativeKl: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1e6,
      default: 0.5,
      help: 'Negative KL beyond noise: objective/kl below minus this many nats per sequence for 3 iterations running.',
    },
    spikeFactor: {
      kind: 'number',
      min: 1,
      minExclusive: true,
      max: 1e6,
      default: 5,
      help: 'A spike: grad_norm or loss/value_avg above this many times its median over the window before.',
    },
    ratioDeviation: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1e6,
      default: 0.5,
      help: 'val/ratio further than this from 1 (TRL: 2 or 0.1 means the updates are too drastic).',
    },
    approxKlMax: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1e6,
      default: 0.5,
      help: 'policy/approxkl_avg (nats per token between the rollout and the updated policy) above this, after the warm-up and two iterations running: steps too large. Measured: the full-size scenarios (but the staged collapse of over-optimisation) stay below 0.35 two iterations running (one iteration up to 0.89); a learning rate 100× the default gives 8–33.',
    },
    hackEvals: {
      kind: 'number',
      int: true,
      min: 3,
      max: 1000,
      default: 5,
      help: 'Evaluations needed before the proxy-up-gold-down check: the noise of the gold and proxy scores is estimated from them.',
    },
    zeroSpreadFrac: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1,
      default: 0.9,
      help: 'GRPO/RLOO: frac_reward_zero_std at or above this (3 iterations running): nearly every group got one reward for all its completions, so the advantages are 0 and the batch teaches nothing (TRL: frac_reward_zero_std → 1).',
    },
    favouredRepeat: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1,
      default: 0.3,
      help: 'Lexical proxy: the fraction of rollout words that repeat a word the reward favours (already said in the same completion).',
    },
    overfitRise: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 100,
      default: 0.1,
      help: 'SFT/DPO over-fitting: the held-out loss rose this fraction above its best while the training loss kept falling.',
    },
  },
  { what: 'alarm', urlPrefix: 'alarm' },
);

export const DEFAULT_ALARM_THRESHOLDS: Readonly<AlarmThresholds> = ALARM_SETTINGS.defaults;

// ------------------------------------------------------------------------------- helpers

export interface Pt {
  step: number;
  value: number;
}

/** The finite values of one metric, oldest first. */
export function series(history: readonly RunMetricRow[], key: string): Pt[] {
  const out: Pt[] = [];
  for (const r of history) {
    const v = r.metrics[key];
    if (typeof v === 'number' && Number.isFinite(v)) out.push({ step: r.step, value: v });
  }
  return out;
}

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

export function std(xs: readonly number[]): number {
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n ? (n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) : NaN;
}

/** Robust standard deviation: 1.4826 × the median absolute deviation (equals σ for normal noise). */
export function robustStd(xs: readonly number[]): number {
  const m = median(xs);
  return 1.4826 * median(xs.map((x) => Math.abs(x - m)));
}

/**
 * The noise of one point of a series, estimated from the series itself: the robust standard
 * deviation of its iteration-to-iteration changes divided by √2 (the change of two independent
 * points has √2 times their spread; a steady trend only shifts the changes' median, so it does
 * not count as noise). Falls back to the plain standard deviation of the changes when more than
 * half of them are equal (discrete scores); NaN below 3 points.
 */
export function stepNoise(xs: readonly number[]): number {
  if (xs.length < 3) return NaN;
  const d = xs.slice(1).map((x, i) => x - xs[i]);
  const r = robustStd(d);
  return (r > 0 ? r : std(d)) / Math.SQRT2;
}

/** Least-squares slope of ys over 0, 1, 2, … */
export function slope(ys: readonly number[]): number {
  const n = ys.length;
  const mx = (n - 1) / 2;
  const my = mean(ys);
  let num = 0;
  let den = 0;
  ys.forEach((y, i) => {
    num += (i - mx) * (y - my);
    den += (i - mx) ** 2;
  });
  return den ? num / den : 0;
}

/** Mean of the first and of the last third of `xs` (at least one value each). */
export function thirds(xs: readonly number[]): { first: number; last: number } {
  const k = Math.max(1, Math.floor(xs.length / 3));
  return { first: mean(xs.slice(0, k)), last: mean(xs.slice(-k)) };
}

/** The mean of the first `k` values: the run's starting level of a metric. */
export function start(pts: readonly Pt[], k = 3): number {
  return mean(pts.slice(0, k).map((p) => p.value));
}

export const fmt = (x: number, d = 2) => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(d));
/** A setting raised or lowered by `factor`, rounded to 3 significant digits and kept in its range. */
export function scaled(x: number, factor: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Number((x * factor).toPrecision(3))));
}

/**
 * The condition of "KL grows while the reward plateaus" on two metrics: over each of the last 3
 * windows, KL's last third exceeds its first by `klRiseNats` and by `noiseMargin` × its noise,
 * while the reward's least-squares rise stays under `plateauScore` standard deviations.
 */
export function klGrowthPlateau(
  kl: readonly number[],
  score: readonly number[],
  t: AlarmThresholds,
): { dk: { first: number; last: number }; ds: { first: number; last: number } } | null {
  const need = Math.max(t.minIterations, t.window) + 2;
  if (kl.length < need || score.length < need) return null;
  // The window ending `back` iterations ago: KL growth (thirds) and the reward's rise along its
  // least-squares line in units of its spread. One noisy iteration does not make a plateau.
  const at = (back: number) => {
    const end = (xs: readonly number[]) => xs.slice(xs.length - back - t.window, xs.length - back);
    const k = end(kl);
    const s = end(score);
    const dk = thirds(k);
    const rise = slope(s) * (s.length - 1);
    // Growth beyond the KL's own noise (the difference of two thirds' means), not only klRiseNats.
    const noise = stepNoise(k) * Math.sqrt(2 / Math.max(1, Math.floor(k.length / 3)));
    const grew = dk.last - dk.first > Math.max(t.klRiseNats, t.noiseMargin * (noise || 0));
    return { dk, ds: thirds(s), hit: grew && rise / (std(s) + 1e-9) < t.plateauScore };
  };
  if (![0, 1, 2].every((b) => at(b).hit)) return null;
  const { dk, ds } = at(0);
  return { dk, ds };
}

/** The condition of entropy collapse on one metric: below `entropyFloor` of its start, 3 iterations running. */
export function entropyFall(ent: readonly Pt[], t: AlarmThresholds): { s0: number; recent: number[] } | null {
  if (ent.length < t.minIterations) return null;
  const s0 = start(ent);
  const recent = ent.slice(-3).map((p) => p.value);
  return s0 > 0 && recent.every((v) => v < t.entropyFloor * s0) ? { s0, recent } : null;
}

/** The newest value of `key` far above its window's median and beyond the window's spread (TRL #2980), or null. */
export function spike(
  history: readonly RunMetricRow[],
  key: string,
  t: AlarmThresholds,
): { now: Pt; base: number } | null {
  const pts = series(history, key);
  if (pts.length < t.minIterations + 1) return null;
  const now = pts.at(-1)!;
  const before = pts.slice(-1 - t.window, -1).map((p) => Math.abs(p.value));
  const base = median(before);
  // Far above the median, and beyond the window's own spread (a noisy metric swings more).
  const far = Math.abs(now.value) > t.spikeFactor * base;
  const beyondNoise = Math.abs(now.value) - base > t.noiseMargin * robustStd(before);
  return base > 0 && far && beyondNoise ? { now, base } : null;
}

/**
 * Once per episode: `next` takes the alarms raised at one iteration and returns those that are
 * new. An alarm's episode ends when it has been quiet for `quietIterations` evaluations.
 */
export class AlarmEpisodes {
  /** Open episodes: id → evaluations quiet since the alarm was last raised. */
  private open = new Map<Alarm['id'], number>();
  constructor(private readonly quietIterations = DEFAULT_ALARM_THRESHOLDS.quietIterations) {}

  next<A extends Pick<Alarm, 'id'>>(raised: readonly A[]): A[] {
    const fresh: A[] = [];
    const ids = new Set(raised.map((a) => a.id));
    for (const [id, quiet] of this.open) {
      if (ids.has(id)) continue;
      if (quiet + 1 >= this.quietIterations) this.open.delete(id);
      else this.open.set(id, quiet + 1);
    }
    for (const a of raised) {
      if (!this.open.has(a.id)) fresh.push(a);
      this.open.set(a.id, 0);
    }
    return fresh;
  }

  /** Forget every episode (a rewind starts afresh from its checkpoint). */
  reset(): void {
    this.open.clear();
  }
}

/**
 * The alarms a whole history fires, once per episode, as if evaluated after each of its rows
 * (for a view that gets the history in batches, like the SFT and DPO curves).
 */
export function alarmTimeline<A extends Pick<Alarm, 'id'>>(
  history: readonly RunMetricRow[],
  evaluate: (prefix: readonly RunMetricRow[]) => A[],
  quietIterations = DEFAULT_ALARM_THRESHOLDS.quietIterations,
): A[] {
  const episodes = new AlarmEpisodes(quietIterations);
  const out: A[] = [];
  for (let n = 1; n <= history.length; n++) out.push(...episodes.next(evaluate(history.slice(0, n))));
  return out;
}
