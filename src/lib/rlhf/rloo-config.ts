/**
 * RLOO settings (TRL `RLOOConfig`, camel-cased as in grpo-config.ts, plus `normalize_advantages`
 * → `normalizeAdvantages`). The rows shared with GRPO come from `groupFields`; read by the form,
 * the URL (`rloo…` parameters), scenarios, the engine host and `RlooTrainer`.
 *
 * With `normalizeAdvantages` on, RLOO's advantages are whitened over the whole batch, the
 * REINFORCE++ recipe (Hu 2025, "REINFORCE++"), so the field's label names it too.
 */
import { SettingsError, settingsTable, type FieldProblems } from '../settings/table';
import { groupCross, groupFields, type GroupConfig } from './grpo-config';

export interface RlooConfig extends GroupConfig {
  normalizeAdvantages: boolean;
}

export class RlooConfigError extends SettingsError<RlooConfig> {
  override name = 'RlooConfigError';
  constructor(fields: FieldProblems<RlooConfig>) {
    super('RLOO', fields);
  }
}

/** Every RLOO setting with its default, range and help. */
export const RLOO_SETTINGS = settingsTable<RlooConfig>(
  {
    ...groupFields({
      numGenerations: 4,
      numGenerationsWhy: 'TRL default 2; 4 = the k of Ahmadian et al. 2024, a steadier leave-one-out baseline.',
      beta: 0.05,
      betaWhy: 'TRL default 0.05; β times the KL summed over the completion is subtracted from its reward.',
    }),
    normalizeAdvantages: {
      label: 'normalize advantages (REINFORCE++)',
      kind: 'boolean',
      live: true,
      default: false,
      help: 'Whiten the leave-one-out advantages over the whole batch, (A − mean) / (std + 1e-4), as REINFORCE++ does. TRL default off.',
    },
  },
  { what: 'RLOO', urlPrefix: 'rloo', cross: groupCross, error: (fields) => new RlooConfigError(fields) },
);

export const DEFAULT_RLOO_CONFIG: Readonly<RlooConfig> = RLOO_SETTINGS.defaults;

/** Fill `partial` with the defaults and check it; throws `RlooConfigError` listing every bad field. */
export function validateRlooConfig(partial: unknown = {}): RlooConfig {
  return RLOO_SETTINGS.validate(partial);
}
