/**
 * Named errors of the trainers (SFT, DPO, PPO, GRPO/RLOO, reward model). Kept free of TF.js imports so the
 * main thread can register them in `src/lib/engine/errors.ts` (to revive them after they cross
 * the worker boundary) without loading TF.js.
 */

/** The data or the settings cannot train (no pairs, empty completions, bad numbers): nothing was changed. */
export class TuneInputError extends Error {
  override name = 'TuneInputError';
}

/** A non-finite loss or gradient: training stopped and the weights are those of before it started. */
export class TuneDivergedError extends Error {
  override name = 'TuneDivergedError';
}

/** PPO: a non-finite loss or gradient; the update was not applied. */
export class PpoDivergedError extends Error {
  override name = 'PpoDivergedError';
}

/** PPO: a phase was called out of order (e.g. update() before advantages()). */
export class PpoPhaseError extends Error {
  override name = 'PpoPhaseError';
}

/** A reward-model training problem the user can act on (too few pairs, divergence, …). */
export class RewardTrainingError extends Error {
  override name = 'RewardTrainingError';
}

/** GRPO/RLOO: a non-finite loss or gradient; the update was not applied. */
export class GroupDivergedError extends Error {
  override name = 'GroupDivergedError';
}

/** GRPO/RLOO: a phase was called out of order (e.g. update() before advantages()). */
export class GroupPhaseError extends Error {
  override name = 'GroupPhaseError';
}
