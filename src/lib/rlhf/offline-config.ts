/**
 * Settings shared by the offline trainers (SFT and DPO): HF `TrainingArguments` names in
 * camelCase. Each trainer's table (sft-config.ts, dpo-config.ts) spreads these rows and sets its
 * own defaults where they differ.
 */
import type { TableSpec } from '../settings/table';
import { ADAM_ROWS, LR_SCHEDULE_ROW, MAX_GRAD_NORM_ROW } from './optimiser-config';
import { TuneInputError } from './errors';
import { LORA_ROWS, type LoraConfig } from '../model/lora-config';

/** The offline trainers' settings (LoRA's rows included: model/lora.ts). */
export interface OfflineConfig extends LoraConfig {
  /** Passes over the training data. */
  epochs: number;
  /** Stop after this many optimiser steps (0 = no limit; HF `max_steps`). */
  maxSteps: number;
  learningRate: number;
  /** 'linear': decays to 0 at the last planned step (HF default); 'constant'. */
  lrSchedule: 'linear' | 'constant';
  /** Examples (SFT) or pairs (DPO) per step. */
  batchSize: number;
  adamBeta1: number;
  adamBeta2: number;
  /** Adam's ε, explicit (TF.js's default depends on the backend). */
  adamEpsilon: number;
  /** Decoupled weight decay (AdamW) on matrices; 0 = off. */
  weightDecay: number;
  /** Clip the global gradient norm to this; 0 = off. */
  maxGradNorm: number;
  /** Share of prompts held out for validation (split by prompt, seeded). */
  valFraction: number;
  /** Seeds the split and the batch order. */
  seed: number;
  /** Report step metrics every N steps. */
  logEvery: number;
  /** End every completion with the end-of-text token, so the model learns to stop. */
  appendEot: boolean;
}

/** The shared rows with a trainer's own defaults for epochs, learning rate and batch size. */
export function offlineFields(d: {
  epochs: number;
  learningRate: number;
  batchSize: number;
  why: string;
}): TableSpec<OfflineConfig> {
  return {
    epochs: {
      kind: 'number',
      int: true,
      min: 1,
      max: 1000,
      default: d.epochs,
      help: `Passes over the training data (default ${d.epochs}; ${d.why}).`,
    },
    maxSteps: {
      label: 'max steps',
      kind: 'number',
      int: true,
      min: 0,
      max: 1e9,
      default: 0,
      help: 'Stop after this many optimiser steps; 0 = no limit (HF max_steps).',
    },
    learningRate: {
      label: 'learning rate',
      kind: 'number',
      min: 0,
      minExclusive: true,
      max: 1,
      maxExclusive: true,
      default: d.learningRate,
      help: `Adam's peak step size (default ${d.learningRate}; higher than TRL's for a 1M-parameter model).`,
    },
    batchSize: {
      label: 'batch size',
      kind: 'number',
      int: true,
      min: 1,
      max: 256,
      default: d.batchSize,
      help: 'Examples (SFT) or pairs (DPO) per step.',
    },
    ...ADAM_ROWS,
    lrSchedule: LR_SCHEDULE_ROW,
    maxGradNorm: MAX_GRAD_NORM_ROW,
    weightDecay: {
      label: 'weight decay',
      kind: 'number',
      min: 0,
      max: 10,
      default: 0,
      help: 'Decoupled weight decay (AdamW) on matrices; 0 = off.',
    },
    valFraction: {
      label: 'held-out fraction',
      kind: 'number',
      min: 0,
      max: 0.9,
      default: 0.2,
      help: 'Share of prompts held out for validation (split by prompt, seeded).',
    },
    seed: {
      kind: 'number',
      int: true,
      min: 0,
      max: 0xffffffff,
      default: 0,
      help: 'Seeds the split and the batch order.',
    },
    logEvery: {
      label: 'log every',
      kind: 'number',
      int: true,
      min: 1,
      max: 10_000,
      default: 1,
      url: false,
      help: 'Report step metrics every N steps.',
    },
    appendEot: {
      label: 'append end-of-text',
      kind: 'boolean',
      default: true,
      help: 'End every completion with the end-of-text token, so the model learns to stop.',
    },
    ...LORA_ROWS,
  };
}

/** The offline trainers' error: `SFT: epochs must be …; learning rate must be ….` */
export function offlineError(what: string) {
  return (fields: Partial<Record<string, string>>, table: { sentence(f: typeof fields): string }) =>
    new TuneInputError(`${what}: ${table.sentence(fields)}`);
}
