/** Reward-model errors, apart so the settings table and the trainer can both throw them. */

/** A reward-model training problem the user can act on (too few pairs, divergence, a bad setting, …). */
export class RewardTrainingError extends Error {
  override name = 'RewardTrainingError';
}
