/**
 * Rows the trainers that sample while they train share: GRPO and RLOO (grpo-config.ts
 * `groupFields`) and online DPO (online-dpo-config.ts). Each setting's kind, range, default and
 * live flag are declared once here; where the trainers explain a value differently (their TRL
 * defaults differ), the row takes its help line, and the learning rate its default, as arguments.
 * Every row may change while a run goes on but the seed. The offline trainers' rows are in
 * optimiser-config.ts (their gradient clipping allows 0 = off and is fixed for a run).
 */
import type { FieldSpec } from '../settings/table';

type Row<V> = FieldSpec<V, object>;

/** Longest completion in tokens (GRPO's `maxCompletionLength`, online DPO's `maxNewTokens`). */
export function completionLengthRow(label: string, help: string): Row<number> {
  return { label, kind: 'number', int: true, min: 1, max: 4096, live: true, default: 24, help };
}

/** Sampling temperature: 0.7 = PPO's default here, so runs compare on the same sampling. */
export function temperatureRow(help: string): Row<number> {
  return { kind: 'number', min: 0, minExclusive: true, max: 10, live: true, default: 0.7, help };
}

/** Adam learning rate with the trainer's own default and the reason for it. */
export function learningRateRow(value: number, help: string): Row<number> {
  return {
    label: 'learning rate',
    kind: 'number',
    min: 0,
    minExclusive: true,
    max: 1,
    live: true,
    default: value,
    help,
  };
}

export const MAX_GRAD_NORM_LIVE_ROW: Row<number> = {
  label: 'max gradient norm',
  kind: 'number',
  min: 0,
  minExclusive: true,
  max: 1e6,
  live: true,
  default: 1,
  help: 'Gradients are scaled down when their global norm exceeds this (TrainingArguments max_grad_norm, default 1).',
};

export const SAMPLING_SEED_ROW: Row<number> = {
  kind: 'number',
  int: true,
  min: 0,
  max: 0xffffffff,
  default: 0,
  help: 'Seed of prompt order and sampling: same seed and backend, same run. Fixed once a run starts.',
};
