/**
 * The RLHF maths: pure functions on plain `[batch][time]` arrays (mask 1 = real token, 0 =
 * padding), and the same maths on TF.js tensors (suffix `T`) for training steps with gradients.
 */
export { maskedMean, maskedVar, whiten, maskedMeanT, maskedVarT, whitenT, WHITEN_EPS, type Matrix } from './whiten';
export { gae, type GaeResult } from './gae';
export { klPerToken, klPerTokenT, AdaptiveKlController, type KlEstimator } from './kl';
export {
  ppoPolicyLoss,
  ppoValueLoss,
  ppoPolicyLossT,
  ppoValueLossT,
  type PolicyLossResult,
  type ValueLossResult,
} from './ppo-loss';
export {
  entropyFromLogits,
  entropyFromLogitsT,
  logprobsAndEntropyT,
  logprobsOfTokens,
  type EntropyResult,
} from './entropy';
export {
  bradleyTerryLoss,
  bradleyTerryLossT,
  negLogSigmoid,
  negLogSigmoidT,
  type BradleyTerryResult,
} from './bradley-terry';
export { dpoLoss, dpoLossT, type DpoLossType, type DpoResult } from './dpo';
export {
  RewardModel,
  rewardInputIds,
  rewardSource,
  rewardModelToSafetensors,
  rewardModelStateFromSafetensors,
  type RewardMode,
  type RewardModelState,
} from './reward-model';
export { trainRewardModel, splitByPrompt, RewardTrainingError, type RewardTrainEvent } from './reward-train';
export {
  distinctN,
  selfBleu,
  sentenceBleu,
  wordTokens,
  diversityMetrics,
  BLEU_SMOOTHING_EPSILON,
  type DiversityMetrics,
} from './diversity';
export { trainSft, evaluateSft, DEFAULT_SFT_CONFIG, type SftConfig, type SftExample } from './sft';
export { trainDpo, evaluateDpo, dpoMetrics, DEFAULT_DPO_CONFIG, type DpoConfig } from './dpo-train';
export {
  encodeCompletion,
  completionLogprobsT,
  type TuneEvent,
  type TuneMetricRow,
  type TuneResult,
} from './offline-train';
export { TuneInputError, TuneDivergedError } from './errors';
export {
  grpoAdvantages,
  rlooAdvantages,
  normalizeAdvantages,
  groupStats,
  besselStd,
  grpoLoss,
  grpoLossT,
  rlooLoss,
  rlooLossT,
  GROUP_STD_EPS,
  type GrpoLossOptions,
  type GrpoLossResult,
  type RlooLossResult,
  type GrpoLossType,
  type GrpoScaleRewards,
} from './grpo-loss';
export {
  onlineDpoPairs,
  onlineDpoLoss,
  onlineDpoLossT,
  applyMissingEosPenalty,
  OnlineDpoTrainer,
  ONLINE_DPO_STATS,
  type OnlineDpoMetrics,
  type OnlinePairView,
} from './online-dpo';
export { ONLINE_DPO_SETTINGS, OnlineDpoConfigError, type OnlineDpoConfig } from './online-dpo-config';
