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

export type PpoKlEstimator = 'k1' | 'k3';

export interface PpoConfig {
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

/**
 * Tuned with `scripts/experiments/ppo.ts --iterations 100 --reward sentiment` (raw AFINN totals,
 * base-model std ≈ 4): β starts at 0.5 and adapts towards 4 nats per sequence, ±5 % per
 * iteration at batch 16 (horizon 64 samples; Ziegler et al. used 10 000 with batches of 512 over
 * thousands of steps, far too slow for a 100-iteration run). A fixed β of TRL's 0.05 let the KL
 * run past 20 nats within 40 iterations (the policy learns to repeat "wonderful").
 */
export const DEFAULT_PPO_CONFIG: Readonly<PpoConfig> = Object.freeze({
  batchSize: 16,
  maxNewTokens: 24,
  temperature: 0.7,
  klCoef: 0.5,
  klEstimator: 'k1',
  adaptiveKl: { target: 4, horizon: 64 },
  missingEosPenalty: null,
  gamma: 1,
  lam: 0.95,
  whitenRewards: false,
  clipRange: 0.2,
  clipRangeValue: 0.2,
  vfCoef: 0.1,
  entCoef: 0,
  ppoEpochs: 4,
  miniBatches: 2,
  lr: 5e-5,
  maxGradNorm: 1,
  targetKlEarlyStop: null,
  seed: 0,
} satisfies PpoConfig);

/** One line per field, for tooltips and the settings table. */
export const PPO_CONFIG_HELP: Readonly<Record<keyof PpoConfig, string>> = Object.freeze({
  batchSize: 'Prompts per rollout: each iteration samples one response per prompt, then trains on them.',
  maxNewTokens: 'Longest response in tokens; prompt + response must fit the model context (64 for the bundled model).',
  temperature:
    'Sampling temperature; the PPO ratio and the KL use log-probabilities of logits / temperature, the distribution sampled from.',
  klCoef: 'β: weight of the per-token KL penalty −β·KL_t that keeps the policy close to the frozen reference.',
  klEstimator:
    "KL estimator per token: 'k1' = log π − log π_ref (unbiased, can be negative), 'k3' = (r − 1) − log r (≥ 0, lower variance).",
  adaptiveKl:
    'Adapt β towards a target KL (nats per sequence) over a horizon of samples (Ziegler et al. 2019); off = fixed β.',
  missingEosPenalty: 'Subtracted from the score of responses that never emit the end-of-text token; off = no penalty.',
  gamma: 'Discount γ of future rewards in GAE (1 = no discount: the score at the end counts fully for every token).',
  lam: 'GAE λ: 1 = Monte-Carlo returns (low bias, high variance), 0 = one-step TD (high bias, low variance).',
  whitenRewards: 'Scale the per-token rewards to unit variance (without shifting the mean) before GAE.',
  clipRange: 'ε of the clipped surrogate: the probability ratio is clipped to [1 − ε, 1 + ε].',
  clipRangeValue: 'How far new value predictions may move from the rollout values before the value loss is clipped.',
  vfCoef: 'Weight of the value loss in the combined loss (policy loss + vfCoef·value loss − entCoef·entropy).',
  entCoef: 'Weight of the entropy bonus: larger keeps sampling more varied; 0 = no bonus (TRL default).',
  ppoEpochs: 'Passes over each rollout batch during the update.',
  miniBatches: 'Minibatches per pass: each is one gradient step, so one update makes ppoEpochs × miniBatches steps.',
  lr: 'Adam learning rate of the policy and the value model.',
  maxGradNorm: 'Gradients are scaled down when their global norm (policy and value together) exceeds this.',
  targetKlEarlyStop:
    'Stop the update early when the approximate KL between the new and the rollout policy passes this; off = never.',
  seed: 'Seed of prompt order, sampling and minibatch shuffling: same seed and backend, same run.',
});

export class PpoConfigError extends Error {
  override name = 'PpoConfigError';
  /** Problem per field, for the UI to show next to each input. */
  readonly fields: Partial<Record<keyof PpoConfig | '_', string>>;
  constructor(fields: Partial<Record<keyof PpoConfig | '_', string>>) {
    super(
      'Invalid PPO settings: ' +
        Object.entries(fields)
          .map(([k, v]) => (k === '_' ? v : `${k}: ${v}`))
          .join('; '),
    );
    this.fields = fields;
  }
}

const KEYS = Object.keys(DEFAULT_PPO_CONFIG) as (keyof PpoConfig)[];

/**
 * Fill `partial` with the defaults and check every field. Returns a fresh config or throws a
 * `PpoConfigError` listing every bad field (unknown fields too, to catch typos).
 */
export function validatePpoConfig(partial: unknown = {}): PpoConfig {
  if (typeof partial !== 'object' || partial === null || Array.isArray(partial))
    throw new PpoConfigError({ _: 'settings must be an object' });
  const o = partial as Record<string, unknown>;
  const errors: Partial<Record<keyof PpoConfig | '_', string>> = {};
  const unknown = Object.keys(o).filter((k) => !(KEYS as string[]).includes(k));
  if (unknown.length) errors._ = `unknown setting${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`;
  const c = { ...DEFAULT_PPO_CONFIG } as PpoConfig;
  const get = <K extends keyof PpoConfig>(k: K): unknown => (o[k] === undefined ? DEFAULT_PPO_CONFIG[k] : o[k]);

  const num = (
    k: keyof PpoConfig,
    {
      min,
      max,
      int = false,
      minExclusive = false,
    }: { min: number; max: number; int?: boolean; minExclusive?: boolean },
  ): void => {
    const v = get(k);
    const range = `${minExclusive ? '>' : '≥'} ${min}${max < Infinity ? ` and ≤ ${max}` : ''}`;
    if (
      typeof v !== 'number' ||
      !Number.isFinite(v) ||
      (int && !Number.isInteger(v)) ||
      (minExclusive ? v <= min : v < min) ||
      v > max
    ) {
      errors[k] = `must be ${int ? 'a whole number' : 'a number'} ${range}, got ${JSON.stringify(v)}`;
      return;
    }
    (c as unknown as Record<string, unknown>)[k] = v;
  };
  const nullableNum = (k: 'missingEosPenalty' | 'targetKlEarlyStop', minExclusive: boolean): void => {
    const v = get(k);
    if (v === null) {
      c[k] = null;
      return;
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || (minExclusive ? v <= 0 : v < 0)) {
      errors[k] = `must be off (null) or a number ${minExclusive ? '> 0' : '≥ 0'}, got ${JSON.stringify(v)}`;
      return;
    }
    c[k] = v;
  };

  num('batchSize', { min: 2, max: 1024, int: true });
  num('maxNewTokens', { min: 1, max: 4096, int: true });
  num('temperature', { min: 0, max: 10, minExclusive: true });
  num('klCoef', { min: 0, max: 100 });
  num('gamma', { min: 0, max: 1 });
  num('lam', { min: 0, max: 1 });
  num('clipRange', { min: 0, max: 10, minExclusive: true });
  num('clipRangeValue', { min: 0, max: 1e6, minExclusive: true });
  num('vfCoef', { min: 0, max: 100 });
  num('entCoef', { min: 0, max: 10 });
  num('ppoEpochs', { min: 1, max: 100, int: true });
  num('miniBatches', { min: 1, max: 1024, int: true });
  num('lr', { min: 0, max: 1, minExclusive: true });
  num('maxGradNorm', { min: 0, max: 1e6, minExclusive: true });
  num('seed', { min: 0, max: 0xffffffff, int: true });
  nullableNum('missingEosPenalty', false);
  nullableNum('targetKlEarlyStop', true);

  const est = get('klEstimator');
  if (est === 'k1' || est === 'k3') c.klEstimator = est;
  else errors.klEstimator = `must be 'k1' or 'k3', got ${JSON.stringify(est)}`;

  const wr = get('whitenRewards');
  if (typeof wr === 'boolean') c.whitenRewards = wr;
  else errors.whitenRewards = `must be true or false, got ${JSON.stringify(wr)}`;

  const ak = get('adaptiveKl');
  if (ak === null) c.adaptiveKl = null;
  else if (typeof ak !== 'object' || Array.isArray(ak)) errors.adaptiveKl = 'must be off (null) or { target, horizon }';
  else {
    const { target, horizon } = ak as Record<string, unknown>;
    if (typeof target !== 'number' || !Number.isFinite(target) || target <= 0)
      errors.adaptiveKl = `target must be a number > 0 (nats per sequence), got ${JSON.stringify(target)}`;
    else if (typeof horizon !== 'number' || !Number.isFinite(horizon) || horizon <= 0)
      errors.adaptiveKl = `horizon must be a number > 0 (samples), got ${JSON.stringify(horizon)}`;
    else c.adaptiveKl = { target, horizon };
  }

  if (errors.batchSize === undefined && errors.miniBatches === undefined) {
    if (c.miniBatches > c.batchSize) errors.miniBatches = `must be ≤ batchSize (${c.batchSize}), got ${c.miniBatches}`;
    else if (c.batchSize % c.miniBatches !== 0)
      errors.miniBatches = `must divide batchSize (${c.batchSize}) evenly, got ${c.miniBatches}`;
  }
  if (Object.keys(errors).length) throw new PpoConfigError(errors);
  return c;
}
