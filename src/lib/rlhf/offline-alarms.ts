/**
 * Run-health alarms of SFT and DPO runs (offline trainers, TRL metric names): a `grad_norm`
 * spike (TRL issue #2980: grad-norm spikes) and over-fitting (`eval_loss` rising above its best
 * while `loss` falls). Thresholds and the spike condition are the shared ones of ./alarm-core.ts.
 */
import type { RunMetricRow } from '../data/saved';
import { DEFAULT_ALARM_THRESHOLDS, fmt, scaled, series, spike, type Alarm, type AlarmThresholds } from './alarm-core';

/** The settings an SFT or DPO alarm may suggest changing (both tables have them). */
export interface OfflineAlarmConfig {
  learningRate: number;
  epochs: number;
}

/**
 * The alarms that apply to SFT and DPO (offline trainers, TRL metric names): a `grad_norm`
 * spike (TRL #2980) and over-fitting (`eval_loss` rising above its best while `loss` falls). Their
 * runs are short and keep no checkpoint along the way, so these only warn; the suggestion is for
 * the next run.
 */
export function evaluateOfflineAlarms(
  history: readonly RunMetricRow[],
  config: OfflineAlarmConfig,
  thresholds: AlarmThresholds = DEFAULT_ALARM_THRESHOLDS,
): Alarm<OfflineAlarmConfig>[] {
  const out: Alarm<OfflineAlarmConfig>[] = [];
  const learningRate = scaled(config.learningRate, 0.5, 1e-9, 1);
  const s = spike(history, 'grad_norm', thresholds);
  if (s)
    out.push({
      id: 'offline-grad-spike',
      iteration: s.now.step,
      severity: 'warning',
      message: `The gradient norm jumped to ${fmt(s.now.value)}, ${fmt(s.now.value / s.base, 1)}× its recent median: one batch pushed the weights hard.`,
      suggestion: { text: `lower the learning rate to ${learningRate}`, change: { learningRate } },
    });
  const ev = series(history, 'eval_loss');
  const train = series(history, 'loss');
  if (ev.length >= 2 && train.length >= 2) {
    const best = Math.min(...ev.slice(0, -1).map((p) => p.value));
    const now = ev.at(-1)!;
    const trainBefore = train.filter((p) => p.step <= ev.at(-2)!.step).at(-1) ?? train[0];
    const trainNow = train.at(-1)!;
    if (best > 0 && now.value > (1 + thresholds.overfitRise) * best && trainNow.value < trainBefore.value) {
      const epochs = Math.max(1, config.epochs - 1);
      out.push({
        id: 'offline-overfit',
        iteration: now.step,
        severity: 'warning',
        message: `The held-out loss rose to ${fmt(now.value, 3)} from its best of ${fmt(best, 3)} while the training loss kept falling: the model is memorising the training examples.`,
        suggestion: {
          text: `train fewer epochs (${epochs}) or lower the learning rate to ${learningRate}`,
          change: { epochs, learningRate },
        },
      });
    }
  }
  return out;
}
