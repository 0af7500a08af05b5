/**
 * Run-health alarms of PPO runs: small pure functions over a run's metric history that name the
 * failures RLHF users lose days to, while the run goes on, each with one sentence of what it means
 * and a suggested change of the settings (issue 20). Metric names are TRL's (`PpoMetrics` in
 * ./ppo.ts); the rollout statistics (`rollouts/…`) come from `rolloutStats` below, computed by the
 * Train page from each iteration's completions. Thresholds, types and noise helpers are the shared
 * ones of ./alarm-core.ts. Sources of each alarm:
 *  - KL runaway: Ziegler et al. 2019, "Fine-Tuning Language Models from Human Preferences"
 *    (adaptive β holds the KL near a target; far past it, β cannot keep up).
 *  - KL growing while the reward plateaus, identical completions across prompts: TRL issue #204
 *    ("reward converged, KL keeps growing, every prompt gets the same answer").
 *  - Entropy collapse: Cui et al. 2025, "The Entropy Mechanism of Reinforcement Learning for
 *    Reasoning Language Models" (arXiv:2505.22617): entropy falls early and performance plateaus.
 *  - Mode collapse by distinct-n: Li et al. 2016 (distinct-n, see ./diversity.ts); TRL #204.
 *  - Length drift (to the maximum: every completion truncated, TRL's `completions/clipped_ratio`
 *    → 1; or to nothing): TRL PR #3138 (over-long completions collapsing into gibberish) and
 *    OpenRLHF issue #236.
 *  - Negative KL: TRL issues #235, #925 and #1161: the k1 estimate goes negative when the
 *    completions were sampled with settings (temperature, top-k, top-p, min-length) that differ
 *    from the distribution the policy's log-probabilities are computed with.
 *  - Gradient-norm and value-loss spikes: TRL issue #2980 (grad-norm and clip-ratio spikes).
 *  - `val/ratio` far from 1, approximate KL far from 0: TRL's PPO documentation ("ratio … too
 *    high like 2 or 1000 or too low like 0.1 means the updates between consecutive policies are
 *    too drastic"); Schulman et al. 2017 (PPO) for the approximate KL between policies.
 *  - Reward hacking, proxy up and gold down: Gao, Schulman & Hilton 2022, "Scaling Laws for Reward
 *    Model Overoptimization"; a lexical proxy dominating (the completions repeat the words the
 *    reward favours): open-r1 issue #373 (a format reward rising while the model outputs only the
 *    format).
 *
 * Noise: `evaluateAlarms` raises a condition only once it held after `confirmIterations`
 * iterations running (`sustained`; `pendingAlarms` lists the unconfirmed ones, for which the Train
 * page holds its checkpoints); val/ratio and approximate KL are not judged during
 * `warmupIterations`; the gold check compares the fall of the gold score (and the rise of the
 * proxy) with the run's own noise (`stepNoise`, the standard errors of the evaluation means);
 * spikes must clear the window's robust spread. Thresholds were checked against the six scripted
 * scenarios run at full size in the app (tests/fixtures/scenario-histories): the five healthy ones
 * raise nothing, and the staged collapse of over-optimisation (β = 0, lr 10×) raises what it
 * stages.
 */
import Sentiment from 'sentiment';
import type { RunMetricRow } from '../data/saved';
import { distinctN } from './diversity';
import type { LabellerConfig } from './labellers';
import { words } from './labellers';
import type { PpoConfig } from './ppo-config';
import {
  DEFAULT_ALARM_THRESHOLDS,
  entropyFall,
  fmt,
  klGrowthPlateau,
  mean,
  median,
  scaled,
  series,
  spike,
  start,
  stepNoise,
  type Alarm,
  type AlarmSuggestion,
  type AlarmThresholds,
  type Pt,
} from './alarm-core';

export interface AlarmContext {
  /** The run's PPO settings now (the suggestions are changes of them). */
  config: PpoConfig;
  thresholds?: AlarmThresholds;
}

export type AlarmCheck = (history: readonly RunMetricRow[], ctx: AlarmContext) => Alarm | null;

const th = (ctx: AlarmContext) => ctx.thresholds ?? DEFAULT_ALARM_THRESHOLDS;

/** Raise β (and keep the adaptive controller, aiming lower when it is on). */
function holdKl(c: PpoConfig): AlarmSuggestion {
  const klCoef = scaled(Math.max(c.klCoef, 0.05), 2, 0, 100);
  if (c.adaptiveKl === null)
    return {
      text: `raise klCoef to ${klCoef}, turn adaptive KL on (target 4 nats) and lower lr to ${scaled(c.lr, 0.5, 1e-9, 1)}`,
      change: { klCoef, adaptiveKl: { target: 4, horizon: 64 }, lr: scaled(c.lr, 0.5, 1e-9, 1) },
    };
  return {
    text: `raise klCoef to ${klCoef} and lower lr to ${scaled(c.lr, 0.5, 1e-9, 1)}`,
    change: { klCoef, lr: scaled(c.lr, 0.5, 1e-9, 1) },
  };
}

function lowerLr(c: PpoConfig, factor = 0.5): AlarmSuggestion {
  const lr = scaled(c.lr, factor, 1e-9, 1);
  return { text: `lower lr to ${lr}`, change: { lr } };
}

// ------------------------------------------------------------------------------- the alarms

/** `objective/kl` far past the adaptive target (or, with a fixed β, far past `klRunawayFixed` nats per token). */
export const klRunaway: AlarmCheck = (history, ctx) => {
  const t = th(ctx);
  const kl = series(history, 'objective/kl');
  const last = kl.at(-1);
  if (!last) return null;
  const c = ctx.config;
  // With a fixed β, per completion token (a sequence of 24 tokens may drift further than one of 8).
  const tokens = history.find((r) => r.step === last.step && Number.isFinite(r.metrics.response_length));
  const length = Math.max(1, tokens?.metrics.response_length ?? c.maxNewTokens);
  const limit = c.adaptiveKl ? t.klRunawayFactor * c.adaptiveKl.target : t.klRunawayFixed * length;
  if (!(last.value > limit)) return null;
  return {
    id: 'kl-runaway',
    iteration: last.step,
    severity: 'critical',
    message: c.adaptiveKl
      ? `KL to the reference is ${fmt(last.value)} nats, over ${t.klRunawayFactor}× the target of ${c.adaptiveKl.target}: the policy is drifting from the reference faster than β can hold it.`
      : `KL to the reference is ${fmt(last.value)} nats with a fixed β of ${c.klCoef}, ${fmt(last.value / length, 1)} nats per token: the policy has moved far from the reference and its text is likely degenerate.`,
    suggestion: holdKl(c),
  };
};

/** KL grows over the window while the reward stays flat (TRL #204), at 3 iterations running. */
export const klRewardPlateau: AlarmCheck = (history, ctx) => {
  const t = th(ctx);
  const kl = series(history, 'objective/kl').map((p) => p.value);
  const score = series(history, 'objective/scores').map((p) => p.value);
  const last = series(history, 'objective/kl').at(-1);
  const hit = last && klGrowthPlateau(kl, score, t);
  if (!last || !hit) return null;
  const { dk, ds } = hit;
  return {
    id: 'kl-reward-plateau',
    iteration: last.step,
    severity: 'warning',
    message: `Over the last ${t.window} iterations the KL grew from ${fmt(dk.first)} to ${fmt(dk.last)} nats while the reward stayed flat (${fmt(ds.first)} → ${fmt(ds.last)}): the policy pays KL for nothing the reward values, often by converging on one answer.`,
    suggestion: holdKl(ctx.config),
  };
};

/** Policy entropy fell to a fraction of where it started. */
export const entropyCollapse: AlarmCheck = (history, ctx) => {
  const t = th(ctx);
  const ent = series(history, 'policy/entropy_avg');
  const fall = entropyFall(ent, t);
  if (!fall) return null;
  const { s0, recent } = fall;
  const c = ctx.config;
  const entCoef = c.entCoef > 0 ? scaled(c.entCoef, 2, 0, 10) : 0.01;
  return {
    id: 'entropy-collapse',
    iteration: ent.at(-1)!.step,
    severity: 'warning',
    message: `Policy entropy fell from ${fmt(s0)} to ${fmt(recent.at(-1)!)} nats per token: the policy has become nearly deterministic and stops exploring.`,
    suggestion: {
      text: `add an entropy bonus (entCoef ${entCoef}) and lower lr to ${scaled(c.lr, 0.5, 1e-9, 1)}`,
      change: { entCoef, lr: scaled(c.lr, 0.5, 1e-9, 1) },
    },
  };
};

/** distinct-2 of the rollouts fell, or many prompts get the identical completion (TRL #204). */
export const modeCollapse: AlarmCheck = (history, ctx) => {
  const t = th(ctx);
  const d2 = series(history, 'rollouts/distinct_2');
  const same = series(history, 'rollouts/identical_frac');
  if (d2.length < t.minIterations && same.length < t.minIterations) return null;
  const lastSame = same.at(-1);
  const s0 = start(d2);
  const lastD = d2.at(-1);
  const identical = lastSame && lastSame.value >= t.identicalFrac && start(same) < t.identicalFrac;
  const fallen = lastD && s0 > 0 && d2.slice(-3).every((p) => p.value < t.distinctFloor * s0);
  if (!identical && !fallen) return null;
  const c = ctx.config;
  return {
    id: 'mode-collapse',
    iteration: (identical ? lastSame : lastD)!.step,
    severity: 'critical',
    message: identical
      ? `${Math.round(lastSame!.value * 100)} % of the rollout's completions are identical to another one: different prompts get the same answer (mode collapse).`
      : `Distinct-2 of the rollouts fell from ${fmt(s0)} to ${fmt(lastD!.value)}: the completions have become alike (mode collapse).`,
    suggestion: {
      text: `raise klCoef to ${scaled(Math.max(c.klCoef, 0.05), 2, 0, 100)} and add an entropy bonus (entCoef ${c.entCoef > 0 ? scaled(c.entCoef, 2, 0, 10) : 0.01})`,
      change: {
        klCoef: scaled(Math.max(c.klCoef, 0.05), 2, 0, 100),
        entCoef: c.entCoef > 0 ? scaled(c.entCoef, 2, 0, 10) : 0.01,
      },
    },
  };
};

/**
 * Completions drifting to the maximum length (truncated: no end-of-text, TRL's
 * `completions/clipped_ratio` → 1) or to nothing.
 */
export const lengthDrift: AlarmCheck = (history, ctx) => {
  const t = th(ctx);
  const len = series(history, 'response_length');
  if (len.length < t.minIterations) return null;
  const c = ctx.config;
  const eos = series(history, 'val/num_eos_tokens');
  const clipped = (p: Pt) => 1 - Math.min(1, p.value / c.batchSize);
  const len0 = start(len);
  const recent = len.slice(-3).map((p) => p.value);
  const clip0 = eos.length >= 3 ? mean(eos.slice(0, 3).map(clipped)) : NaN;
  const clipNow = eos.length >= 3 ? mean(eos.slice(-3).map(clipped)) : NaN;
  const toMax =
    recent.every((v) => v >= t.lengthHigh * c.maxNewTokens) &&
    len0 < 0.8 * c.maxNewTokens &&
    (!Number.isFinite(clipNow) || (clipNow >= t.lengthHigh && clip0 < 0.8));
  const toNothing = len0 > 0 && recent.every((v) => v < Math.max(1, t.lengthLow * len0));
  if (!toMax && !toNothing) return null;
  if (toMax)
    return {
      id: 'length-drift',
      iteration: len.at(-1)!.step,
      severity: 'warning',
      message: `Completions grew from ${fmt(len0, 1)} tokens to the maximum of ${c.maxNewTokens}${Number.isFinite(clipNow) ? `, ${Math.round(clipNow * 100)} % cut off without an end-of-text` : ''}: the reward favours length, and truncated text teaches nothing about ending.`,
      suggestion:
        c.missingEosPenalty === null
          ? { text: 'add the over-long penalty (missingEosPenalty 1)', change: { missingEosPenalty: 1 } }
          : {
              text: `raise missingEosPenalty to ${scaled(c.missingEosPenalty, 2, 0, 1e6)}`,
              change: { missingEosPenalty: scaled(c.missingEosPenalty, 2, 0, 1e6) },
            },
    };
  return {
    id: 'length-drift',
    iteration: len.at(-1)!.step,
    severity: 'warning',
    message: `Completions shrank from ${fmt(len0, 1)} tokens to ${fmt(recent.at(-1)!, 1)}: the policy found that saying (almost) nothing scores best, usually because the reward or the KL penalty punishes every token.`,
    suggestion: holdKl(c),
  };
};

/** `objective/kl` below zero beyond noise (TRL #235, #925, #1161). */
export const negativeKl: AlarmCheck = (history, ctx) => {
  const t = th(ctx);
  const kl = series(history, 'objective/kl');
  if (kl.length < 3) return null;
  const recent = kl.slice(-3).map((p) => p.value);
  if (!recent.every((v) => v < -t.negativeKl)) return null;
  const c = ctx.config;
  return {
    id: 'negative-kl',
    iteration: kl.at(-1)!.step,
    severity: 'warning',
    message: `The KL to the reference is negative (${fmt(mean(recent))} nats over the last 3 iterations), which a true KL never is: the usual cause is sampling settings (temperature, top-k, top-p, a minimum length) that differ from the distribution the log-probabilities are computed with.`,
    suggestion:
      c.klEstimator === 'k1'
        ? {
            text: "use the k3 KL estimator (never negative) and check that sampling uses the policy's own distribution",
            change: { klEstimator: 'k3' },
          }
        : { text: 'raise klCoef', change: { klCoef: scaled(Math.max(c.klCoef, 0.05), 2, 0, 100) } },
  };
};

/** The update's gradient norm far above its recent median (TRL #2980). */
export const gradSpike: AlarmCheck = (history, ctx) => {
  const s = spike(history, 'grad_norm', th(ctx));
  if (!s) return null;
  const lr = lowerLr(ctx.config);
  return {
    id: 'grad-spike',
    iteration: s.now.step,
    severity: 'warning',
    message: `The gradient norm jumped to ${fmt(s.now.value)}, ${fmt(s.now.value / s.base, 1)}× its recent median: one batch pushed the weights hard, the step before a divergence.`,
    suggestion: lr,
  };
};

/** The value loss far above its recent median (TRL #2980). */
export const valueLossSpike: AlarmCheck = (history, ctx) => {
  const s = spike(history, 'loss/value_avg', th(ctx));
  if (!s) return null;
  const c = ctx.config;
  const vfCoef = scaled(c.vfCoef, 0.5, 0, 100);
  return {
    id: 'value-loss-spike',
    iteration: s.now.step,
    severity: 'warning',
    message: `The value loss jumped to ${fmt(s.now.value)}, ${fmt(s.now.value / s.base, 1)}× its recent median: the returns changed faster than the value model can follow, so the advantages are noise.`,
    suggestion: {
      text: `lower lr to ${scaled(c.lr, 0.5, 1e-9, 1)} and vfCoef to ${vfCoef}`,
      change: { lr: scaled(c.lr, 0.5, 1e-9, 1), vfCoef },
    },
  };
};

/** `val/ratio` far from 1 or `policy/approxkl_avg` far from 0: the updates are too drastic. */
export const ratioDrift: AlarmCheck = (history, ctx) => {
  const t = th(ctx);
  // The first updates of a run move the policy most: not judged during the warm-up.
  const after = (p: Pt | undefined) => (p && p.step > t.warmupIterations ? p : undefined);
  const ratio = after(series(history, 'val/ratio').at(-1));
  const akl = after(series(history, 'policy/approxkl_avg').at(-1));
  const badRatio = ratio && Math.abs(ratio.value - 1) > t.ratioDeviation;
  const badKl = akl && akl.value > t.approxKlMax;
  if (!badRatio && !badKl) return null;
  const c = ctx.config;
  const change: Partial<PpoConfig> = { lr: scaled(c.lr, 0.5, 1e-9, 1) };
  if (c.targetKlEarlyStop === null) change.targetKlEarlyStop = 0.1;
  return {
    id: 'ratio-drift',
    iteration: (badRatio ? ratio : akl)!.step,
    severity: 'critical',
    message: badRatio
      ? `val/ratio is ${fmt(ratio!.value)}, far from 1: the updated policy differs so much from the one that sampled the rollout that the clipped objective no longer holds the step.`
      : `The approximate KL between the rollout policy and the updated one is ${fmt(akl!.value, 3)} nats per token, far from 0: each update moves the policy too far.`,
    suggestion: {
      text: `lower lr to ${change.lr}${change.targetKlEarlyStop ? ' and stop updates early past an approximate KL of 0.1' : ''}`,
      change,
    },
  };
};

interface EvalPt {
  step: number;
  score: number;
  gold: number;
  /** Standard errors of the two means over the evaluation's samples (NaN when not logged). */
  scoreSe: number;
  goldSe: number;
}

/**
 * The evaluation metrics the gold check reads, from one evaluation's samples: the mean proxy
 * score and gold score, and their standard errors (sample std / √n), `eval/score_se` and
 * `eval/gold_score_se`. The evaluation prompts are sampled with fixed seeds, so consecutive
 * evaluations are alike and their changes understate the noise of a mean of few samples; the
 * standard error states it.
 */
export function evalScoreMetrics(samples: readonly { score: number; gold: number | null }[]): Record<string, number> {
  const out: Record<string, number> = {};
  const se = (xs: number[]) =>
    xs.length > 1
      ? Math.sqrt((mean(xs.map((x) => (x - mean(xs)) ** 2)) * (xs.length / (xs.length - 1))) / xs.length)
      : NaN;
  const score = samples.map((s) => s.score).filter(Number.isFinite);
  const gold = samples.filter((s) => s.gold !== null && Number.isFinite(s.gold)).map((s) => s.gold!);
  if (score.length) out['eval/score'] = mean(score);
  if (score.length > 1) out['eval/score_se'] = se(score);
  if (gold.length) out['eval/gold_score'] = mean(gold);
  if (gold.length > 1) out['eval/gold_score_se'] = se(gold);
  return out;
}

/**
 * Proxy up, gold down at the newest of `evals`, beyond their noise: the gold score's mean over
 * the last 2 evaluations lies more than `noiseMargin` × its noise below its best 2-evaluation
 * mean before them, while the proxy's mean rose by more than `noiseMargin` × its noise over the
 * same span. The noise of one evaluation is the larger of `stepNoise` and the median standard
 * error of its mean; with two means of two evaluations each, their difference has that noise.
 */
function hackAt(evals: readonly EvalPt[], t: AlarmThresholds) {
  const n = evals.length;
  if (n < Math.max(t.hackEvals, 4)) return null;
  const K = 2;
  const gold = evals.map((e) => e.gold);
  const score = evals.map((e) => e.score);
  const mean2 = (xs: number[], i: number) => mean(xs.slice(i, i + K));
  let peak = 0;
  for (let i = 1; i + K <= n - K; i++) if (mean2(gold, i) > mean2(gold, peak)) peak = i;
  const goldPeak = mean2(gold, peak);
  const goldNow = mean2(gold, n - K);
  const scorePeak = mean2(score, peak);
  const scoreNow = mean2(score, n - K);
  // One evaluation's noise: the larger of the changes' spread and the median standard error.
  const noise = (xs: number[], se: number[]) => {
    const fin = se.filter(Number.isFinite);
    return Math.max(stepNoise(xs), fin.length ? median(fin) : 0);
  };
  const goldNoise = noise(
    gold,
    evals.map((e) => e.goldSe),
  );
  const scoreNoise = noise(
    score,
    evals.map((e) => e.scoreSe),
  );
  const hit = goldPeak - goldNow > t.noiseMargin * goldNoise && scoreNow - scorePeak > t.noiseMargin * scoreNoise;
  return hit ? { goldPeak, goldNow, scorePeak, scoreNow, goldNoise, peakStep: evals[peak].step } : null;
}

/**
 * The proxy reward rose while the gold score of the same evaluation samples fell (Gao et al.
 * 2022), both by more than their noise (see `hackAt`), at `confirmIterations` evaluations
 * running. Reads the `eval/score` and `eval/gold_score` rows.
 */
export const rewardHacking: AlarmCheck = (history, ctx) => {
  const t = th(ctx);
  const evals: EvalPt[] = history
    .filter((r) => Number.isFinite(r.metrics['eval/score']) && Number.isFinite(r.metrics['eval/gold_score']))
    .map((r) => ({
      step: r.step,
      score: r.metrics['eval/score'],
      gold: r.metrics['eval/gold_score'],
      scoreSe: r.metrics['eval/score_se'] ?? NaN,
      goldSe: r.metrics['eval/gold_score_se'] ?? NaN,
    }));
  const hits = Array.from({ length: t.confirmIterations }, (_, j) => hackAt(evals.slice(0, evals.length - j), t));
  const h = hits[0];
  if (!h || !hits.every((x) => x !== null)) return null;
  return {
    id: 'reward-hacking',
    iteration: evals.at(-1)!.step,
    severity: 'critical',
    message: `Reward hacking? Since iteration ${h.peakStep} the reward of the evaluation samples rose (${fmt(h.scorePeak)} → ${fmt(h.scoreNow)}) while the gold labeller's score of the same prompts fell (${fmt(h.goldPeak)} → ${fmt(h.goldNow)}, ${fmt((h.goldPeak - h.goldNow) / h.goldNoise, 1)}× its noise): the policy is exploiting the reward rather than getting better.`,
    suggestion: holdKl(ctx.config),
  };
};

/** The completions repeat the words the reward favours (open-r1 #373). Reads `rollouts/favoured_repeat_frac`. */
export const lexicalProxy: AlarmCheck = (history, ctx) => {
  const t = th(ctx);
  const rep = series(history, 'rollouts/favoured_repeat_frac');
  if (rep.length < t.minIterations) return null;
  const recent = rep.slice(-3).map((p) => p.value);
  if (!recent.every((v) => v >= t.favouredRepeat) || start(rep) >= t.favouredRepeat) return null;
  return {
    id: 'lexical-proxy',
    iteration: rep.at(-1)!.step,
    severity: 'warning',
    message: `${Math.round(recent.at(-1)! * 100)} % of the rollouts' words repeat a word the reward favours: the policy is farming the reward's lexicon rather than writing better text.`,
    suggestion: holdKl(ctx.config),
  };
};

/**
 * `check`, raised only when its condition also held after each of the `confirmIterations` − 1
 * iterations before (the history without its newest rows): one noisy iteration is not a failure.
 */
export function sustained(check: AlarmCheck): AlarmCheck {
  return (history, ctx) => {
    const a = check(history, ctx);
    if (!a) return null;
    let h = history;
    for (let j = 1; j < th(ctx).confirmIterations; j++) {
      const last = h.reduce((m, r) => Math.max(m, r.step), -Infinity);
      h = h.filter((r) => r.step < last);
      if (!h.length || !check(h, ctx)) return null;
    }
    return a;
  };
}

/** Every PPO alarm, in the order they are shown (the conditions; `evaluateAlarms` confirms them). */
export const PPO_ALARMS: readonly AlarmCheck[] = [
  klRunaway,
  ratioDrift,
  rewardHacking,
  modeCollapse,
  klRewardPlateau,
  entropyCollapse,
  lengthDrift,
  negativeKl,
  gradSpike,
  valueLossSpike,
  lexicalProxy,
];

/**
 * Spikes are single events (noise-aware by the window's spread); the gold check confirms over
 * evaluations itself. Every other condition must hold `confirmIterations` iterations running.
 */
const SINGLE_EVENT: ReadonlySet<AlarmCheck> = new Set([gradSpike, valueLossSpike, rewardHacking]);
const CONFIRMED_PPO_ALARMS = PPO_ALARMS.map((c) => (SINGLE_EVENT.has(c) ? c : sustained(c)));

/** The alarms raised by `history` now (quiet ones left out), each condition confirmed. */
export function evaluateAlarms(history: readonly RunMetricRow[], ctx: AlarmContext): Alarm[] {
  return CONFIRMED_PPO_ALARMS.map((check) => check(history, ctx)).filter((a): a is Alarm => a !== null);
}

/**
 * The conditions true at the newest iteration, confirmed or not: while one is pending the Train
 * page holds its checkpoint, so rewind still reaches one saved before the trouble began.
 */
export function pendingAlarms(history: readonly RunMetricRow[], ctx: AlarmContext): Alarm[] {
  return PPO_ALARMS.map((check) => check(history, ctx)).filter((a): a is Alarm => a !== null);
}

/** The metrics the PPO alarms read (what a recorded history needs to replay them). */
export const PPO_ALARM_METRICS = [
  'objective/kl',
  'objective/scores',
  'policy/entropy_avg',
  'policy/approxkl_avg',
  'val/ratio',
  'loss/value_avg',
  'grad_norm',
  'response_length',
  'val/num_eos_tokens',
  'rollouts/distinct_2',
  'rollouts/identical_frac',
  'rollouts/favoured_repeat_frac',
  'eval/score',
  'eval/gold_score',
  'eval/score_se',
  'eval/gold_score_se',
] as const;

// ------------------------------------------------------------------------------- rollout statistics

/**
 * Statistics of one rollout's completions, logged as metrics so the alarms can read them:
 * `rollouts/distinct_1`, `rollouts/distinct_2` (Li et al. 2016), `rollouts/identical_frac`
 * (the fraction of completions equal to another one of the batch, trimmed; empty ones count)
 * and, when `favoured` is given, `rollouts/favoured_repeat_frac` (the fraction of words that are
 * a favoured word already said earlier in the same completion).
 */
export function rolloutStats(texts: readonly string[], favoured?: (word: string) => boolean): Record<string, number> {
  const out: Record<string, number> = {};
  if (!texts.length) return out;
  out['rollouts/distinct_1'] = distinctN(texts, 1);
  out['rollouts/distinct_2'] = distinctN(texts, 2);
  const counts = new Map<string, number>();
  for (const t of texts) counts.set(t.trim(), (counts.get(t.trim()) ?? 0) + 1);
  out['rollouts/identical_frac'] = texts.filter((t) => counts.get(t.trim())! > 1).length / texts.length;
  if (favoured) {
    let total = 0;
    let repeats = 0;
    for (const t of texts) {
      const seen = new Set<string>();
      for (const w of words(t)) {
        total++;
        if (seen.has(w) && favoured(w)) repeats++;
        seen.add(w);
      }
    }
    out['rollouts/favoured_repeat_frac'] = total ? repeats / total : 0;
  }
  return out;
}

let analyzer: Sentiment | null = null;
const valence = new Map<string, number>();

/**
 * The words a scripted labeller rewards, or null when it has no lexicon (length, constitution):
 * AFINN words of the wanted polarity for sentiment, the included terms' words for keyword.
 */
export function favouredWords(config: LabellerConfig): ((word: string) => boolean) | null {
  if (config.kind === 'sentiment') {
    const sign = config.polarity === 'positive' ? 1 : -1;
    return (w) => {
      let v = valence.get(w);
      if (v === undefined) {
        analyzer ??= new Sentiment();
        v = analyzer.analyze(w).score;
        valence.set(w, v);
      }
      return sign * v > 0;
    };
  }
  if (config.kind === 'keyword') {
    const set = new Set(config.include.flatMap((term) => words(term)));
    return set.size ? (w) => set.has(w) : null;
  }
  return null;
}
