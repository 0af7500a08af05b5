/**
 * The alarms a saved run fired, for its report (issue 20, item 3): the run's saved metric history
 * replayed through the same pure checks the Train page ran after every iteration
 * (`src/lib/rlhf/alarms.ts`: `evaluateAlarms` for PPO, `evaluateGroupAlarms` for GRPO / RLOO,
 * `evaluateOfflineAlarms` for SFT / DPO), once per episode as `alarmTimeline` does. Alarms are not
 * stored with a run, so this is the one source; a dismissed alarm is listed too (it fired).
 */
import type { RunRecord } from '../data/saved';
import {
  alarmTimeline,
  evaluateAlarms,
  evaluateGroupAlarms,
  evaluateOfflineAlarms,
  type GroupAlarmConfig,
  type OfflineAlarmConfig,
} from '../rlhf/alarms';
import { PPO_SETTINGS } from '../rlhf/ppo-config';
import type { ReportAlarm } from './run-report';

/** Readable name of an alarm id (`kl-runaway` → "kl runaway"). */
const alarmName = (id: string) => id.replace(/^offline-/, '').replace(/-/g, ' ');

/** The alarms `run` fired, or undefined for a kind the alarms do not watch (reward models, pretraining). */
export function replayAlarms(run: RunRecord): ReportAlarm[] | undefined {
  const history = run.history ?? [];
  const c = run.config ?? {};
  const num = (k: string, d: number) => (typeof c[k] === 'number' ? (c[k] as number) : d);
  let fired: { id: string; iteration: number; message: string }[];
  if (run.kind === 'ppo') {
    // The saved config is the run's (validated when it ran); fields it lacks take the table's defaults.
    const config = { ...PPO_SETTINGS.defaults, ...c };
    fired = alarmTimeline(history, (h) => evaluateAlarms(h, { config }));
  } else if (run.kind === 'grpo' || run.kind === 'rloo') {
    const config: GroupAlarmConfig = {
      temperature: num('temperature', 1),
      beta: num('beta', 0),
      learningRate: num('learningRate', 1e-5),
      maskTruncatedCompletions: c.maskTruncatedCompletions === true,
    };
    fired = alarmTimeline(history, (h) => evaluateGroupAlarms(h, config));
  } else if (run.kind === 'sft' || run.kind === 'dpo') {
    const config: OfflineAlarmConfig = { learningRate: num('learningRate', 1e-4), epochs: num('epochs', 1) };
    fired = alarmTimeline(history, (h) => evaluateOfflineAlarms(h, config));
  } else return undefined;
  return fired.map((a) => ({ iteration: a.iteration, name: alarmName(a.id), message: a.message }));
}
