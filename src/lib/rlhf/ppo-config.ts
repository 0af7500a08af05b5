/**
 * PPO settings: one serialisable table (plain JSON, seed included), defaults for the bundled
 * ~1M-parameter model, and a one-line explanation of each field for the UI.
 *
 * Names follow DESIGN.md (TRL's `PPOConfig` in camelCase where they overlap: `klCoef` =
 * `kl_coef`, `clipRange` = `cliprange`, `clipRangeValue` = `cliprange_value`, `vfCoef` =
 * `vf_coef`, `ppoEpochs` = `num_ppo_epochs`, `miniBatches` = `num_mini_batches`,
 * `missingEosPenalty` = `missing_eos_penalty`, `klEstimator` = `kl_estimator`,
 * `whitenRewards` = `whiten_rewards`). Defaults differ from TRL's where a 1M model trained from
 * scratch in a browser needs it (learning rate, batch size, temperature); see each help line.
 */

import { SettingsError, decimal, isOffText, settingsTable, type FieldProblems } from '../settings/table';
import { LORA_ROWS, type LoraConfig } from '../model/lora-config';

export type PpoKlEstimator = 'k1' | 'k3';

/** PPO's settings (LoRA's rows included: model/lora.ts). */
export interface PpoConfig extends LoraConfig {
  batchSize: number;
  maxNewTokens: number;
  temperature: number;
  klCoef: number;
  klEstimator: PpoKlEstimator;
  adaptiveKl: { target: number; horizon: number } | null;
  missingEosPenalty: number | null;
  gamma: number;
  lam: number;
  whitenRewards: boolean;
  clipRange: number;
  clipRangeValue: number;
  vfCoef: number;
  entCoef: number;
  ppoEpochs: number;
  miniBatches: number;
  lr: number;
  maxGradNorm: number;
  targetKlEarlyStop: number | null;
  seed: number;
}

const adaptiveKlProblem = (v: unknown): string | null => {
  if (v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) return 'must be off (null) or { target, horizon }';
  const { target, horizon, ...rest } = v as Record<string, unknown>;
  if (typeof target !== 'number' || !Number.isFinite(target) || target <= 0)
    return `target must be a number > 0 (nats per sequence), got ${JSON.stringify(target)}`;
  if (typeof horizon !== 'number' || !Number.isFinite(horizon) || horizon <= 0)
    return `horizon must be a number > 0 (samples), got ${JSON.stringify(horizon)}`;
  if (Object.keys(rest).length) return `has only target and horizon, got ${Object.keys(rest).join(', ')}`;
  return null;
};

/**
 * Tuned with `scripts/experiments/ppo.ts --iterations 100 --reward sentiment` (raw AFINN totals,
 * base-model std ≈ 4): β starts at 0.5 and adapts towards 4 nats per sequence, ±5 % per
 * iteration at batch 16 (horizon 64 samples; Ziegler et al. used 10 000 with batches of 512 over
 * thousands of steps, far too slow for a 100-iteration run). A fixed β of TRL's 0.05 let the KL
 * run past 20 nats within 40 iterations (the policy learns to repeat "wonderful").
 *
 * The table: every PPO setting with its default, range and help. Everything but the
 * seed may change while a run goes on: `PpoTrainer.updateConfig` applies it from the next
 * iteration (β and the adaptive-KL target rebuild the KL controller).
 */
export const PPO_SETTINGS = settingsTable<PpoConfig>(
  {
    batchSize: {
      kind: 'number',
      int: true,
      min: 2,
      max: 1024,
      live: true,
      default: 16,
      help: 'Prompts per rollout: each iteration samples one response per prompt, then trains on them.',
    },
    maxNewTokens: {
      kind: 'number',
      int: true,
      min: 1,
      max: 4096,
      live: true,
      default: 24,
      help: 'Longest response in tokens; prompt + response must fit the model context (64 for the bundled model).',
    },
    temperature: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 10,
      live: true,
      default: 0.7,
      help: 'Sampling temperature; the PPO ratio and the KL use log-probabilities of logits / temperature, the distribution sampled from.',
    },
    klCoef: {
      kind: 'number',
      min: 0,
      max: 100,
      live: true,
      default: 0.5,
      help: 'β: weight of the per-token KL penalty −β·KL_t that keeps the policy close to the frozen reference. Changed during a run, β restarts from this value.',
    },
    klEstimator: {
      kind: 'choice',
      choices: ['k1', 'k3'],
      live: true,
      default: 'k1',
      help: "KL estimator per token: 'k1' = log π − log π_ref (unbiased, can be negative), 'k3' = (r − 1) − log r (≥ 0, lower variance).",
    },
    adaptiveKl: {
      kind: 'custom',
      live: true,
      default: { target: 4, horizon: 64 },
      help: 'Adapt β towards a target KL (nats per sequence) over a horizon of samples (Ziegler et al. 2019); off = fixed β.',
      check: adaptiveKlProblem,
      format: (v) => (v === null ? 'off' : `${v.target},${v.horizon}`),
      parse: (raw) => {
        if (isOffText(raw)) return null;
        const parts = raw.trim().split(/[,:]/);
        return parts.length === 2 ? { target: decimal(parts[0]), horizon: decimal(parts[1]) } : raw;
      },
    },
    missingEosPenalty: {
      kind: 'number-or-off',
      min: 0,
      max: 1e6,
      onValue: 1,
      live: true,
      default: null,
      help: 'Subtracted from the score of responses that never emit the end-of-text token; off = no penalty.',
    },
    gamma: {
      kind: 'number',
      min: 0,
      max: 1,
      live: true,
      default: 1,
      help: 'Discount γ of future rewards in GAE (1 = no discount: the score at the end counts fully for every token).',
    },
    lam: {
      kind: 'number',
      min: 0,
      max: 1,
      live: true,
      default: 0.95,
      help: 'GAE λ: 1 = Monte-Carlo returns (low bias, high variance), 0 = one-step TD (high bias, low variance).',
    },
    whitenRewards: {
      kind: 'boolean',
      live: true,
      default: false,
      help: 'Scale the per-token rewards to unit variance (without shifting the mean) before GAE.',
    },
    clipRange: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 10,
      live: true,
      default: 0.2,
      help: 'ε of the clipped surrogate: the probability ratio is clipped to [1 − ε, 1 + ε].',
    },
    clipRangeValue: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1e6,
      live: true,
      default: 0.2,
      help: 'How far new value predictions may move from the rollout values before the value loss is clipped.',
    },
    vfCoef: {
      kind: 'number',
      min: 0,
      max: 100,
      live: true,
      default: 0.1,
      help: 'Weight of the value loss in the combined loss (policy loss + vfCoef·value loss − entCoef·entropy).',
    },
    entCoef: {
      kind: 'number',
      min: 0,
      max: 10,
      live: true,
      default: 0,
      help: 'Weight of the entropy bonus: larger keeps sampling more varied; 0 = no bonus (TRL default).',
    },
    ppoEpochs: {
      kind: 'number',
      int: true,
      min: 1,
      max: 100,
      live: true,
      default: 4,
      help: 'Passes over each rollout batch during the update.',
    },
    miniBatches: {
      kind: 'number',
      int: true,
      min: 1,
      max: 1024,
      live: true,
      default: 2,
      help: 'Minibatches per pass: each is one gradient step, so one update makes ppoEpochs × miniBatches steps.',
    },
    lr: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1,
      live: true,
      default: 5e-5,
      help: 'Adam learning rate of the policy and the value model.',
    },
    maxGradNorm: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1e6,
      live: true,
      default: 1,
      help: 'Gradients are scaled down when their global norm (policy and value together) exceeds this.',
    },
    targetKlEarlyStop: {
      kind: 'number-or-off',
      min: 0,
      minExclusive: true,
      max: 1e6,
      onValue: 0.1,
      live: true,
      default: null,
      help: 'Stop the update early when the approximate KL between the new and the rollout policy passes this; off = never.',
    },
    seed: {
      kind: 'number',
      int: true,
      min: 0,
      max: 0xffffffff,
      default: 0,
      help: 'Seed of prompt order, sampling and minibatch shuffling: same seed and backend, same run. Fixed once a run starts.',
    },
    ...LORA_ROWS,
  },
  {
    what: 'PPO',
    urlPrefix: '',
    cross: (c, alone) =>
      alone.batchSize || alone.miniBatches
        ? {}
        : c.miniBatches > c.batchSize
          ? { miniBatches: `must be ≤ batchSize (${c.batchSize}), got ${c.miniBatches}` }
          : c.batchSize % c.miniBatches !== 0
            ? { miniBatches: `must divide batchSize (${c.batchSize}) evenly, got ${c.miniBatches}` }
            : {},
    error: (fields) => new PpoConfigError(fields),
  },
);

/** The defaults for the bundled ~1M-parameter model (above). */
export const DEFAULT_PPO_CONFIG: Readonly<PpoConfig> = PPO_SETTINGS.defaults;

/** One line per field, for tooltips and the settings table. */
export const PPO_CONFIG_HELP: Readonly<Record<keyof PpoConfig, string>> = Object.freeze(
  Object.fromEntries(PPO_SETTINGS.keys.map((k) => [k, PPO_SETTINGS.help(k)])) as Record<keyof PpoConfig, string>,
);

export class PpoConfigError extends SettingsError<PpoConfig> {
  override name = 'PpoConfigError';
  constructor(fields: FieldProblems<PpoConfig>) {
    super('PPO', fields);
  }
}

/**
 * Fill `partial` with the defaults and check every field. Returns a fresh config or throws a
 * `PpoConfigError` listing every bad field (unknown fields too, to catch typos).
 */
export function validatePpoConfig(partial: unknown = {}): PpoConfig {
  return PPO_SETTINGS.validate(partial);
}
