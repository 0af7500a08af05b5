/**
 * Reward-model training settings: one table (src/lib/settings/table.ts) read by the Reward page,
 * the URL (`rm…` parameters), scenarios, the engine's reward host and `trainRewardModel`.
 *
 * Names follow TRL's `RewardConfig` / HF `TrainingArguments` in camelCase (`learningRate` =
 * `learning_rate`, `centerCoef` = `center_rewards_coefficient`, `maxGradNorm` =
 * `max_grad_norm`, …). Several defaults depend on the mode: a linear head on frozen features
 * ('head') is a small convex fit run to the end; fine-tuning the trunk too ('full') uses a lower
 * learning rate, weight decay and early stopping. Measured with
 * `npx tsx scripts/experiments/reward-model.ts` (the commands are in each help line).
 */
import { settingsTable } from '../settings/table';
import { LORA_ROWS, type LoraConfig } from '../model/lora-config';
import { ADAM_ROWS, LR_SCHEDULE_ROW, MAX_GRAD_NORM_ROW } from './optimiser-config';
import { MIN_PAIRS } from './reward-limits';
import { RewardTrainingError } from './errors';

import type { RewardMode, RewardPooling } from './reward-model';

export type { RewardMode, RewardPooling };

/** The reward model's settings (LoRA's rows included: model/lora.ts; LoRA needs mode 'full'). */
export interface RewardConfig extends LoraConfig {
  mode: RewardMode;
  pooling: RewardPooling;
  epochs: number;
  learningRate: number;
  lrSchedule: 'linear' | 'constant';
  batchSize: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  weightDecay: number;
  headL2: number;
  maxGradNorm: number;
  centerCoef: number;
  marginScale: number;
  valFraction: number;
  seed: number;
  earlyStopping: boolean;
  linearProbe: boolean;
  patience: number;
  logEvery: number;
  minPairs: number;
}

const byMode =
  <V>(head: V, full: V) =>
  (c: Partial<RewardConfig>): V =>
    c.mode === 'full' ? full : head;

export const REWARD_SETTINGS = settingsTable<RewardConfig>(
  {
    mode: {
      kind: 'choice',
      choices: ['head', 'full'],
      default: 'head',
      help: "'head' trains a linear head on the frozen policy's features (fast, good with few labels); 'full' fine-tunes the trunk too.",
    },
    pooling: {
      kind: 'choice',
      choices: ['last', 'mean'],
      default: 'mean',
      help: "Which hidden state the head reads: the last real token's (as HF) or the mean over the response. 'mean' held out better on 300 noisy pairs (reward-model.ts --pooling mean|last).",
    },
    epochs: {
      kind: 'number',
      int: true,
      min: 1,
      max: 500,
      default: byMode(60, 6),
      help: 'Passes over the training pairs (head 60: the convex fit runs to the end; full 6, with early stopping).',
    },
    learningRate: {
      label: 'learning rate',
      kind: 'number',
      min: 0,
      minExclusive: true,
      // No upper bound: a huge rate is the user's to try; training then stops with "diverged".
      max: Infinity,
      default: byMode(1e-2, 1e-4),
      url: 'rmLr',
      help: "Adam's peak step size (head 1e-2; full 1e-4: 3e-4 overfits 300 pairs, reward-model.ts --mode full --lr 1e-4|3e-4).",
    },
    batchSize: {
      label: 'batch size',
      kind: 'number',
      int: true,
      min: 1,
      max: 256,
      default: 16,
      url: 'rmBatch',
      help: 'Preference pairs per step.',
    },
    ...ADAM_ROWS,
    lrSchedule: LR_SCHEDULE_ROW,
    maxGradNorm: MAX_GRAD_NORM_ROW,
    weightDecay: {
      label: 'weight decay',
      kind: 'number',
      min: 0,
      max: 1,
      default: byMode(0, 0.1),
      help: "Decoupled weight decay (AdamW) on the trunk's matrices (full 0.1: best held-out accuracy on 300 noisy pairs, reward-model.ts --mode full --lr 1e-4 --weight-decay 0.1).",
    },
    headL2: {
      label: 'head L2',
      kind: 'number',
      min: 0,
      max: 1e6,
      default: byMode(10, 0),
      help: "Head mode: ridge penalty on the head's weights of standardised features; with 20–50 labels an unregularised head fits the noise (reward-model.ts --mode head --pairs 40).",
    },
    centerCoef: {
      label: 'centring coefficient',
      kind: 'number',
      min: 0,
      max: 10,
      default: 0.01,
      help: "TRL's center_rewards_coefficient: pulls the rewards' mean towards 0.",
    },
    marginScale: {
      label: 'margin scale',
      kind: 'number',
      min: 0,
      max: 100,
      default: 1,
      help: "Multiplies the pairs' margins (from rating differences); 0 ignores margins.",
    },
    valFraction: {
      label: 'validation fraction',
      kind: 'number',
      min: 0,
      max: 0.9,
      default: 0.2,
      help: 'Share of prompts held out for validation (split by prompt, seeded); 0 = none.',
    },
    seed: {
      kind: 'number',
      int: true,
      min: 0,
      max: 0xffffffff,
      default: 0,
      help: "Seed of the validation split, the head's initial weights and the batch order.",
    },
    earlyStopping: {
      label: 'early stopping',
      kind: 'boolean',
      default: byMode(false, true),
      help: "Stop after `patience` epochs without a better held-out result and keep the best epoch (full mode; head mode's convex fit runs to the end).",
    },
    linearProbe: {
      label: 'linear probe first',
      kind: 'boolean',
      default: true,
      help: 'Full mode: fit the head on the frozen trunk first, then train everything (LP-FT, Kumar et al. 2022): held-out 81.1 % → 83.8 % (reward-model.ts --mode full [--no-lpft], seeds 0–3).',
    },
    patience: {
      kind: 'number',
      int: true,
      min: 1,
      max: 100,
      default: 3,
      help: 'Epochs without a better held-out result before early stopping.',
    },
    logEvery: {
      label: 'log every',
      kind: 'number',
      int: true,
      min: 1,
      max: 10_000,
      default: 10,
      url: false,
      help: 'Report step metrics every N steps.',
    },
    minPairs: {
      label: 'minimum pairs',
      kind: 'number',
      int: true,
      min: 1,
      max: 10_000,
      default: MIN_PAIRS,
      url: false,
      help: 'Fewest usable pairs accepted.',
    },
    ...LORA_ROWS,
  },
  {
    what: 'reward-model',
    urlPrefix: 'rm',
    cross: (c, alone) =>
      c.lora && c.mode !== 'full' && !alone.lora && !alone.mode
        ? {
            lora: "needs mode 'full': LoRA trains adapters on the trunk, and head mode keeps the trunk frozen already",
          }
        : {},
    error: (fields, table) => new RewardTrainingError(`Reward model training: ${table.sentence(fields)}`),
  },
);

/** The defaults of one mode. */
export function rewardDefaults(mode: RewardMode = 'head'): RewardConfig {
  return { ...REWARD_SETTINGS.defaultsFor({ mode }), mode };
}
