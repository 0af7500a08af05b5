/**
 * GRPO settings (TRL `GRPOConfig`, camel-cased: `num_generations` → `numGenerations`,
 * `scale_rewards` → `scaleRewards`, `epsilon_high` → `epsilonHigh`, `num_iterations` →
 * `numIterations`, `loss_type` → `lossType`, `mask_truncated_completions` →
 * `maskTruncatedCompletions`, `max_completion_length` → `maxCompletionLength`, `learning_rate` →
 * `learningRate`, `max_grad_norm` → `maxGradNorm`). One table read by the form, the URL (`grpo…`
 * parameters), scenarios, the engine host and `GrpoTrainer`.
 *
 * The rows both critic-free trainers share (GRPO and RLOO, rloo-config.ts) are built by
 * `groupFields`. Defaults are TRL's where they make sense for the bundled ~1M-parameter model;
 * where they are not (learning rate, lengths, batch), each help line says where the value comes
 * from.
 *
 * Measured on the bundled model with the task of scripts/experiments/ppo.ts (sentiment labeller
 * as the reward, 100 iterations, wasm, held-out prompts; a copy of that script driving these
 * trainers): with the defaults GRPO lifts the held-out score by 1.61 / 1.21 / 1.30 base std at
 * 4.1 / 2.4 / 1.9 nats of KL (seeds 0 / 1 / 2), RLOO by 1.87 / 1.51 / 1.44 std at 7.2 / 4.0 /
 * 3.0 nats, about 1.1–2.3 s per iteration. GRPO at learningRate 2e-4 lifts 4.8 std but at 33
 * nats (seed 0), hence 5e-5.
 *
 * Time (scripts/experiments/iteration-times.ts, one process, iterations interleaved, wasm, bundled
 * model, shared 2-core machine at load ≈ 20): PPO 14.5 s, GRPO 4.1 s, RLOO 4.0 s per iteration with
 * the defaults, so PPO's 100 iterations buy ≈ 350 GRPO or RLOO iterations (no value model, one
 * gradient step per batch against PPO's ppoEpochs × miniBatches = 8). The issue-6 task end to end:
 * `npx tsx scripts/experiments/pipeline.ts --algo ppo,grpo,rloo --seconds ppo --seed S`.
 * Measured (`--algo grpo,rloo --iterations 100 --seed S`, 300 noisy pairs → reward model, 100
 * iterations ≈ 30 % of PPO's 100 by the times above): GRPO lifts held-out gold by 1.25 / 1.30 /
 * 1.00 base std at 2.7 / 2.9 / 3.6 nats (seeds 0 / 1 / 2; seed 2 is 0.996); RLOO 1.58 std at 3.8
 * nats (seed 0). Longer runs fit PPO's wall-clock (`--seconds ppo`) but were not measured.
 *
 * Every setting but the seed may change while a run goes on: `updateConfig` applies it at
 * the next iteration boundary, so shapes never change inside an iteration. One exception the
 * trainer enforces: β cannot go from 0 to > 0 in a run that started without a reference model.
 */
import { SettingsError, settingsTable, type FieldProblems, type TableSpec } from '../settings/table';
import { LORA_ROWS, type LoraConfig } from '../model/lora-config';

export type GrpoScaleRewards = 'group' | 'batch' | 'none';
export type GrpoLossType = 'grpo' | 'bnpo' | 'dr_grpo' | 'dapo';

/** The settings GRPO and RLOO share (LoRA's rows included: model/lora.ts). */
export interface GroupConfig extends LoraConfig {
  numGenerations: number;
  batchSize: number;
  maxCompletionLength: number;
  temperature: number;
  beta: number;
  epsilon: number;
  epsilonHigh: number | null;
  numIterations: number;
  maskTruncatedCompletions: boolean;
  learningRate: number;
  maxGradNorm: number;
  seed: number;
}

export interface GrpoConfig extends GroupConfig {
  scaleRewards: GrpoScaleRewards;
  lossType: GrpoLossType;
}

/** What differs between the GRPO and RLOO rows: the defaults TRL gives each. */
export interface GroupDefaults {
  numGenerations: number;
  numGenerationsWhy: string;
  beta: number;
  betaWhy: string;
}

/** The shared rows (`TableSpec` of `GroupConfig`), with the trainer's own defaults. */
export function groupFields(d: GroupDefaults): TableSpec<GroupConfig> {
  return {
    numGenerations: {
      label: 'generations per prompt',
      kind: 'number',
      int: true,
      min: 2,
      max: 64,
      live: true,
      default: d.numGenerations,
      help: `G: completions sampled per prompt; each is judged against the others of its group. ${d.numGenerationsWhy}`,
    },
    batchSize: {
      label: 'batch size',
      kind: 'number',
      int: true,
      min: 2,
      max: 1024,
      live: true,
      default: 16,
      help: 'Completions per iteration (batchSize / G prompts, each sampled G times); a multiple of numGenerations. 16 = the samples of one PPO iteration here.',
    },
    maxCompletionLength: {
      label: 'max completion length',
      kind: 'number',
      int: true,
      min: 1,
      max: 4096,
      live: true,
      default: 24,
      help: "Longest completion in tokens; prompt + completion must fit the model context. 24 = PPO's maxNewTokens here (TRL's 256 exceeds the bundled model's 64-token context).",
    },
    temperature: {
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 10,
      live: true,
      default: 0.7,
      help: "Sampling temperature; the ratio, KL and entropy use log-probabilities of logits / temperature. 0.7 = PPO's default here, so runs compare on the same sampling (TRL: 1.0).",
    },
    beta: {
      label: 'β',
      kind: 'number',
      min: 0,
      max: 100,
      live: true,
      default: d.beta,
      help: `β: weight of the KL to the frozen reference; 0 builds no reference model (less memory, faster). ${d.betaWhy}`,
    },
    epsilon: {
      label: 'ε',
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 10,
      live: true,
      default: 0.2,
      help: 'ε: the ratio is clipped below at 1 − ε (and above at 1 + ε unless epsilonHigh is set). TRL default 0.2.',
    },
    epsilonHigh: {
      label: 'ε high',
      kind: 'number-or-off',
      min: 0,
      minExclusive: true,
      max: 10,
      onValue: 0.28,
      live: true,
      default: null,
      help: "Upper clip 1 + ε_high (DAPO's clip-higher; the paper uses 0.28); off = ε, as TRL's default None.",
    },
    numIterations: {
      label: 'iterations per batch',
      kind: 'number',
      int: true,
      min: 1,
      max: 100,
      live: true,
      default: 1,
      help: 'μ: gradient steps over each generated batch (TRL num_iterations, default 1; with 1 the ratio stays 1 and nothing is clipped).',
    },
    maskTruncatedCompletions: {
      label: 'mask truncated completions',
      kind: 'boolean',
      live: true,
      default: false,
      help: 'Leave completions that never emit end-of-text out of the loss (DAPO recommends it). TRL default off.',
    },
    learningRate: {
      label: 'learning rate',
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1,
      live: true,
      default: 5e-5,
      help: "Adam learning rate. 5e-5 = PPO's here, measured: 1.2–1.9 base std of lift at 2–7 nats in 100 iterations; 2e-4 ran to 33 nats (TRL's 1e-6 is for billion-parameter models).",
    },
    maxGradNorm: {
      label: 'max gradient norm',
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1e6,
      live: true,
      default: 1,
      help: 'Gradients are scaled down when their global norm exceeds this (TrainingArguments max_grad_norm, default 1).',
    },
    seed: {
      kind: 'number',
      int: true,
      min: 0,
      max: 0xffffffff,
      default: 0,
      help: 'Seed of prompt order and sampling: same seed and backend, same run. Fixed once a run starts.',
    },
    ...LORA_ROWS,
  };
}

/** batchSize must be a multiple of numGenerations (TRL checks the same of its generation batch). */
export function groupCross<C extends GroupConfig>(c: C, alone: FieldProblems<C>): FieldProblems<C> {
  if (alone.batchSize || alone.numGenerations) return {};
  if (c.batchSize % c.numGenerations !== 0)
    return {
      batchSize: `must be a multiple of numGenerations (${c.numGenerations}), got ${c.batchSize}`,
    } as FieldProblems<C>;
  return {};
}

export class GrpoConfigError extends SettingsError<GrpoConfig> {
  override name = 'GrpoConfigError';
  constructor(fields: FieldProblems<GrpoConfig>) {
    super('GRPO', fields);
  }
}

/** Every GRPO setting with its default, range and help. */
export const GRPO_SETTINGS = settingsTable<GrpoConfig>(
  {
    ...groupFields({
      numGenerations: 4,
      numGenerationsWhy: 'TRL default 8; 4 here so that a batch of 16 covers 4 prompts.',
      beta: 0.04,
      betaWhy:
        "0.04 = DeepSeekMath's value and TRL's default until 0.18 (TRL now defaults to 0): a small model drifts fast without a leash.",
    }),
    scaleRewards: {
      label: 'scale rewards',
      kind: 'choice',
      choices: ['group', 'batch', 'none'],
      live: true,
      default: 'group',
      help: "Divide r − mean(group) by the std of the group ('group', TRL default), of the whole batch ('batch') or not at all ('none', Dr. GRPO).",
    },
    lossType: {
      label: 'loss type',
      kind: 'choice',
      choices: ['grpo', 'bnpo', 'dr_grpo', 'dapo'],
      live: true,
      default: 'dapo',
      help: "How token losses are averaged: 'grpo' per sequence then over sequences (length-biased); 'bnpo' over the batch's unmasked tokens; 'dr_grpo' over batch × maxCompletionLength; 'dapo' (TRL default) over all completion tokens of the batch.",
    },
  },
  { what: 'GRPO', urlPrefix: 'grpo', cross: groupCross, error: (fields) => new GrpoConfigError(fields) },
);

export const DEFAULT_GRPO_CONFIG: Readonly<GrpoConfig> = GRPO_SETTINGS.defaults;

/** Fill `partial` with the defaults and check it; throws `GrpoConfigError` listing every bad field. */
export function validateGrpoConfig(partial: unknown = {}): GrpoConfig {
  return GRPO_SETTINGS.validate(partial);
}
