/**
 * Pretraining settings: one table (../settings/table.ts), URL prefix `pt` (`ptSteps`, `ptLr`, …).
 * Defaults are those of `scripts/pretrain.ts`, which trained the bundled model: peak lr 2e-3,
 * 100 warm-up steps then cosine decay to 0.1·lr, AdamW β2 0.95, weight decay 0.1 on matrices,
 * global-norm clip 1.0, batch 16 windows. Steps default to a short run a tab can finish.
 */
import { SettingsError, settingsTable, type FieldProblems } from '../settings/table';
import { PRESET_NAMES, type PresetName } from './presets';

export interface PretrainConfig {
  preset: PresetName;
  steps: number;
  batchSize: number;
  lr: number;
  minLrRatio: number;
  warmup: number;
  weightDecay: number;
  beta2: number;
  gradClip: number;
  evalEvery: number;
  evalWindows: number;
  sampleEvery: number;
  bigramK: number;
  seed: number;
}

export class PretrainConfigError extends SettingsError<PretrainConfig> {
  override name = 'PretrainConfigError';
  constructor(fields: FieldProblems<PretrainConfig>) {
    super('pretraining', fields);
  }
}

export const PRETRAIN_SETTINGS = settingsTable<PretrainConfig>(
  {
    preset: {
      kind: 'choice',
      choices: PRESET_NAMES,
      default: 'tiny',
      label: 'model size',
      help: 'Model size: tiny is the bundled model’s shape (4 layers, width 128, context 64).',
    },
    steps: {
      kind: 'number',
      int: true,
      min: 1,
      max: 1_000_000,
      default: 2000,
      help: 'Optimiser steps; the cosine schedule ends here.',
    },
    batchSize: {
      kind: 'number',
      int: true,
      min: 1,
      max: 512,
      default: 16,
      label: 'batch size',
      help: 'Random windows of context + 1 tokens per step.',
    },
    lr: {
      kind: 'number',
      min: 0,
      max: 1,
      minExclusive: true,
      default: 2e-3,
      label: 'learning rate',
      help: 'Peak learning rate, reached after the warm-up.',
    },
    minLrRatio: {
      kind: 'number',
      min: 0,
      max: 1,
      default: 0.1,
      label: 'final lr ratio',
      help: 'The cosine decays the learning rate to this share of the peak at the last step.',
    },
    warmup: {
      kind: 'number',
      int: true,
      min: 0,
      max: 1_000_000,
      default: 100,
      help: 'Steps of linear learning-rate warm-up.',
    },
    weightDecay: {
      kind: 'number',
      min: 0,
      max: 1,
      default: 0.1,
      label: 'weight decay',
      help: 'AdamW decoupled weight decay, on weight matrices only (not biases, LayerNorms).',
    },
    beta2: {
      kind: 'number',
      min: 0,
      max: 1,
      maxExclusive: true,
      default: 0.95,
      label: 'Adam β2',
      help: 'Decay of Adam’s second moment; 0.95 as nanoGPT and GPT-3 use for stability.',
    },
    gradClip: {
      kind: 'number',
      min: 0,
      max: 100,
      minExclusive: true,
      default: 1.0,
      label: 'gradient clip',
      help: 'Largest global gradient norm; larger gradients are scaled down to it.',
    },
    evalEvery: {
      kind: 'number',
      int: true,
      min: 1,
      max: 100_000,
      default: 50,
      label: 'validate every',
      help: 'Steps between validation-loss measurements.',
    },
    evalWindows: {
      kind: 'number',
      int: true,
      min: 1,
      max: 100_000,
      default: 64,
      label: 'validation windows',
      help: 'Windows of the validation split scored each time (the baselines use the same ones).',
    },
    sampleEvery: {
      kind: 'number',
      int: true,
      min: 1,
      max: 100_000,
      default: 100,
      label: 'sample every',
      help: 'Steps between samples from the prompts.',
    },
    bigramK: {
      kind: 'number',
      min: 0,
      max: 100,
      minExclusive: true,
      default: 0.1,
      label: 'bigram k',
      help: 'Add-k smoothing of the counting baselines: p(b | a) = (count(a b) + k) / (count(a) + k·V).',
    },
    seed: {
      kind: 'number',
      int: true,
      min: 0,
      max: 2 ** 31 - 1,
      default: 1337,
      help: 'Seeds the weights, the split and the batch order.',
    },
  },
  { what: 'pretraining', urlPrefix: 'pt', error: (fields) => new PretrainConfigError(fields) },
);

export const DEFAULT_PRETRAIN_CONFIG: Readonly<PretrainConfig> = PRETRAIN_SETTINGS.defaults;
