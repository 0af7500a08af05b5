/**
 * Run-health alarms of GRPO and RLOO runs, over their histories with TRL's metric names
 * (GRPOTrainer / RLOOTrainer): groups with zero reward spread, every completion truncated (TRL's
 * `completions/clipped_ratio`; TRL PR #3138, OpenRLHF issue #236), entropy collapse (Cui et al.
 * 2025) and KL growing while the reward plateaus (TRL issue #204), with the thresholds and
 * condition functions PPO's alarms use (./alarm-core.ts).
 */
import type { RunMetricRow } from '../data/saved';
import {
  DEFAULT_ALARM_THRESHOLDS,
  entropyFall,
  fmt,
  klGrowthPlateau,
  scaled,
  series,
  type Alarm,
  type AlarmThresholds,
} from './alarm-core';

/** The GRPO/RLOO settings a suggestion may change (both tables have them, all live). */
export interface GroupAlarmConfig {
  temperature: number;
  beta: number;
  learningRate: number;
  maskTruncatedCompletions: boolean;
}

/** The metrics the GRPO/RLOO alarms read (TRL's GRPOTrainer / RLOOTrainer names). */
export const GROUP_ALARM_METRICS = [
  'frac_reward_zero_std',
  'completions/mean_length',
  'completions/clipped_ratio',
  'entropy',
  'kl',
  'reward',
] as const;

/**
 * The alarms that apply to a GRPO or RLOO run, over its history with TRL's metric names, with the
 * same thresholds and condition functions as PPO's, each confirmed at `confirmIterations`
 * iterations running: groups with zero spread (`frac_reward_zero_std` → 1), every completion
 * truncated (`completions/clipped_ratio` → 1, TRL's `clipped_ratio`; issue 20), entropy
 * collapse (Cui et al. 2025) and KL growing while the reward plateaus (TRL #204; only when the run
 * logs a KL, i.e. β > 0). These runs keep no checkpoints: a suggestion is a live change of the
 * settings from the next iteration.
 */
export function evaluateGroupAlarms(
  history: readonly RunMetricRow[],
  config: GroupAlarmConfig,
  thresholds: AlarmThresholds = DEFAULT_ALARM_THRESHOLDS,
): Alarm<GroupAlarmConfig>[] {
  const t = thresholds;
  const conditions = (h: readonly RunMetricRow[]) => groupConditions(h, config, t);
  const now = conditions(history);
  if (!now.length) return [];
  // Confirmed: the same condition also held after each of the confirmIterations − 1 iterations before.
  let h = history;
  let held = new Set(now.map((a) => a.id));
  for (let j = 1; j < t.confirmIterations && held.size; j++) {
    const last = h.reduce((m, r) => Math.max(m, r.step), -Infinity);
    h = h.filter((r) => r.step < last);
    const before = new Set(conditions(h).map((a) => a.id));
    held = new Set([...held].filter((id) => before.has(id)));
  }
  return now.filter((a) => held.has(a.id));
}

function groupConditions(
  history: readonly RunMetricRow[],
  c: GroupAlarmConfig,
  t: AlarmThresholds,
): Alarm<GroupAlarmConfig>[] {
  const out: Alarm<GroupAlarmConfig>[] = [];
  const lr = scaled(c.learningRate, 0.5, 1e-9, 1);
  const beta = scaled(Math.max(c.beta, 0.02), 2, 0, 100);
  const zero = series(history, 'frac_reward_zero_std');
  const zRecent = zero.slice(-3).map((p) => p.value);
  if (zero.length >= 3 && zRecent.every((v) => v >= t.zeroSpreadFrac)) {
    const temperature = scaled(c.temperature, 1.5, 0.05, 2);
    out.push({
      id: 'zero-spread',
      iteration: zero.at(-1)!.step,
      severity: 'critical',
      message: `${Math.round(zRecent.at(-1)! * 100)} % of the groups gave every completion the same reward: their advantages are 0, so these batches teach the policy nothing (the reward is too coarse for these prompts, or the samples too alike).`,
      suggestion: {
        text: `raise temperature to ${temperature} for more varied samples, or use a reward that tells the completions apart`,
        change: { temperature },
      },
    });
  }
  const clipped = series(history, 'completions/clipped_ratio');
  const cRecent = clipped.slice(-3).map((p) => p.value);
  if (clipped.length >= 3 && cRecent.every((v) => v >= t.lengthHigh)) {
    out.push({
      id: 'all-truncated',
      iteration: clipped.at(-1)!.step,
      severity: 'warning',
      message: `${Math.round(cRecent.at(-1)! * 100)} % of the completions hit the length limit without an end-of-text: truncated text teaches nothing about ending, and the reward judges unfinished answers.`,
      suggestion: c.maskTruncatedCompletions
        ? {
            text: `lower temperature to ${scaled(c.temperature, 0.8, 0.05, 2)} and add an over-long penalty reward function (DAPO's example)`,
            change: { temperature: scaled(c.temperature, 0.8, 0.05, 2) },
          }
        : {
            text: 'mask truncated completions (DAPO) so they stay out of the loss',
            change: { maskTruncatedCompletions: true },
          },
    });
  }
  const ent = series(history, 'entropy');
  const fall = entropyFall(ent, t);
  if (fall)
    out.push({
      id: 'entropy-collapse',
      iteration: ent.at(-1)!.step,
      severity: 'warning',
      message: `Policy entropy fell from ${fmt(fall.s0)} to ${fmt(fall.recent.at(-1)!)} nats per token: the policy has become nearly deterministic, so the G completions of a group agree and stop giving a signal.`,
      suggestion: {
        text: `raise β to ${beta} and lower the learning rate to ${lr}`,
        change: { beta, learningRate: lr },
      },
    });
  // TRL's `kl` is per token; times the mean completion length it is per completion, as PPO's.
  const kl = history
    .filter((r) => Number.isFinite(r.metrics.kl) && Number.isFinite(r.metrics['completions/mean_length']))
    .map((r) => ({ step: r.step, value: r.metrics.kl * r.metrics['completions/mean_length'] }));
  const reward = series(history, 'reward');
  const hit = kl.length
    ? klGrowthPlateau(
        kl.map((p) => p.value),
        reward.map((p) => p.value),
        t,
      )
    : null;
  if (hit)
    out.push({
      id: 'kl-reward-plateau',
      iteration: kl.at(-1)!.step,
      severity: 'warning',
      message: `Over the last ${t.window} iterations the KL grew from ${fmt(hit.dk.first)} to ${fmt(hit.dk.last)} nats per completion while the reward stayed flat (${fmt(hit.ds.first)} → ${fmt(hit.ds.last)}): the policy pays KL for nothing the reward values.`,
      suggestion: {
        text: `raise β to ${beta} and lower the learning rate to ${lr}`,
        change: { beta, learningRate: lr },
      },
    });
  return out;
}
