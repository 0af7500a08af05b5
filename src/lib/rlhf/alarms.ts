/**
 * Run-health alarms (issue 20), one import for every trainer's: the shared core (types, the one
 * thresholds table `ALARM_SETTINGS`, noise helpers, episodes) in ./alarm-core.ts, PPO's alarms and
 * rollout statistics in ./ppo-alarms.ts, GRPO/RLOO's in ./group-alarms.ts, SFT/DPO's in
 * ./offline-alarms.ts. The files cite the sources of their alarms.
 */
export {
  ALARM_IDS,
  ALARM_SETTINGS,
  AlarmEpisodes,
  alarmTimeline,
  DEFAULT_ALARM_THRESHOLDS,
  GROUP_ALARM_IDS,
  OFFLINE_ALARM_IDS,
  robustStd,
  series,
  slope,
  stepNoise,
  type Alarm,
  type AlarmId,
  type AlarmSeverity,
  type AlarmSuggestion,
  type AlarmThresholds,
  type GroupAlarmId,
  type OfflineAlarmId,
} from './alarm-core';
export {
  entropyCollapse,
  evalScoreMetrics,
  evaluateAlarms,
  favouredWords,
  gradSpike,
  klRewardPlateau,
  klRunaway,
  lengthDrift,
  lexicalProxy,
  modeCollapse,
  negativeKl,
  pendingAlarms,
  PPO_ALARM_METRICS,
  PPO_ALARMS,
  ratioDrift,
  rewardHacking,
  rolloutStats,
  sustained,
  valueLossSpike,
  type AlarmCheck,
  type AlarmContext,
} from './ppo-alarms';
export { evaluateGroupAlarms, GROUP_ALARM_METRICS, type GroupAlarmConfig } from './group-alarms';
export { evaluateOfflineAlarms, type OfflineAlarmConfig } from './offline-alarms';
