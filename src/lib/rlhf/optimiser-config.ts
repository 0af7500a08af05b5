/**
 * Rows every trainer's settings table shares: Adam's β1, β2 and ε, the learning-rate schedule
 * and gradient clipping (HF `TrainingArguments` names in camelCase). Each table spreads them.
 */
import type { FieldSpec } from '../settings/table';

type Row<V> = FieldSpec<V, object>;

export const ADAM_ROWS: { adamBeta1: Row<number>; adamBeta2: Row<number>; adamEpsilon: Row<number> } = {
  adamBeta1: { label: 'Adam β1', kind: 'number', min: 0, max: 1, maxExclusive: true, default: 0.9, help: "Adam's β1." },
  adamBeta2: {
    label: 'Adam β2',
    kind: 'number',
    min: 0,
    max: 1,
    maxExclusive: true,
    default: 0.999,
    help: "Adam's β2.",
  },
  adamEpsilon: {
    label: 'Adam ε',
    kind: 'number',
    min: 0,
    minExclusive: true,
    max: 1,
    default: 1e-8,
    help: "Adam's ε, explicit (TF.js's own default depends on the backend).",
  },
};

export const LR_SCHEDULE_ROW: Row<'linear' | 'constant'> = {
  label: 'learning-rate schedule',
  kind: 'choice',
  choices: ['linear', 'constant'],
  default: 'linear',
  help: "'linear' decays to 0 at the last planned step (HF Trainer's default); 'constant' keeps it.",
};

export const MAX_GRAD_NORM_ROW: Row<number> = {
  label: 'gradient clipping norm',
  kind: 'number',
  min: 0,
  max: 1e6,
  default: 1,
  help: 'Clip the global gradient norm to this; 0 = off.',
};
